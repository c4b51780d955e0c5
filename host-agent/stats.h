/* Latency histograms for hostd's stats line: log-linear buckets (exact below 32, then 16 per
 * power of two, so a quantile is within 1/16 of the truth), fixed size, no allocation, so
 * adding a value on every sample costs a few instructions. Units are the caller's. */
#ifndef VSCALE_STATS_H
#define VSCALE_STATS_H

#include <stddef.h>
#include <stdint.h>

#define STATS_SUB_BITS 4 /* 16 buckets per power of two */
#define STATS_BUCKETS  ((64 - STATS_SUB_BITS + 1) << STATS_SUB_BITS)

struct stats_hist {
	uint64_t count;
	uint64_t max;
	uint64_t bucket[STATS_BUCKETS];
};

/* Empties h (caller storage). */
void stats_init(struct stats_hist *h);
/* Counts one value. */
void stats_add(struct stats_hist *h, uint64_t v);
/* The q-quantile (0 < q <= 1): the top of the bucket holding it, never above the maximum.
 * 0 when h is empty. */
uint64_t stats_quantile(const struct stats_hist *h, double q);
/* Writes "p50 A p99 B max C UNIT (N)" into buf; returns snprintf's result. */
int stats_format(const struct stats_hist *h, const char *unit, char *buf, size_t cap);

#endif
