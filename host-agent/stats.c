/* Log-linear histograms (HdrHistogram's idea, minus the configurability): values below 32 have
 * a bucket each; above, each power of two [2^e, 2^(e+1)) is cut into 16 equal buckets. 976
 * counters cover all of uint64_t, so nothing is clamped and nothing is allocated. */
#include "stats.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SUB (1u << STATS_SUB_BITS)

static unsigned bucket_of(uint64_t v)
{
	unsigned e;

	if (v < 2 * SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* >= STATS_SUB_BITS + 1 */
	return (e - STATS_SUB_BITS + 1) * SUB + (unsigned)((v >> (e - STATS_SUB_BITS)) & (SUB - 1));
}

/* The largest value that falls in bucket b. */
static uint64_t bucket_top(unsigned b)
{
	unsigned e, shift;

	if (b < 2 * SUB)
		return b;
	e = b / SUB + STATS_SUB_BITS - 1;
	shift = e - STATS_SUB_BITS;
	return (((uint64_t)(SUB + b % SUB) + 1) << shift) - 1;
}

void stats_init(struct stats_hist *h)
{
	memset(h, 0, sizeof(*h));
}

void stats_add(struct stats_hist *h, uint64_t v)
{
	h->bucket[bucket_of(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

uint64_t stats_quantile(const struct stats_hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	rank = (uint64_t)ceil(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (unsigned b = 0; b < STATS_BUCKETS; b++) {
		seen += h->bucket[b];
		if (seen >= rank)
			return bucket_top(b) < h->max ? bucket_top(b) : h->max;
	}
	return h->max;
}

int stats_format(const struct stats_hist *h, const char *unit, char *buf, size_t cap)
{
	return snprintf(buf, cap, "p50 %llu p99 %llu max %llu %s (%llu)",
	                (unsigned long long)stats_quantile(h, 0.50),
	                (unsigned long long)stats_quantile(h, 0.99), (unsigned long long)h->max,
	                unit, (unsigned long long)h->count);
}
