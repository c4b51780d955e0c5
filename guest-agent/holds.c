/* Hold bookkeeping for hotplug.c: a sorted array searched by binary search. Only holds_reserve()
 * allocates, so a request can reserve first and then put holds without a failure halfway. */
#include "holds.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Index of the first hold with an id >= id. */
static size_t lower_bound(const struct holds *s, uint32_t id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void holds_fini(struct holds *s)
{
	free(s->v);
	*s = (struct holds){0};
}

bool holds_has(const struct holds *s, uint32_t id)
{
	size_t i = lower_bound(s, id);

	return i < s->n && s->v[i].id == id;
}

int holds_reserve(struct holds *s, size_t extra)
{
	struct hold *v;
	size_t cap = s->n + extra;

	if (cap <= s->cap)
		return 0;
	v = realloc(s->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	s->cap = cap;
	return 0;
}

void holds_put(struct holds *s, uint32_t id, uint64_t until_ms)
{
	size_t i = lower_bound(s, id);

	if (i < s->n && s->v[i].id == id) {
		s->v[i].until_ms = until_ms;
		return;
	}
	assert(s->n < s->cap); /* holds_reserve() first */
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
	s->v[i] = (struct hold){.id = id, .until_ms = until_ms};
	s->n++;
}

void holds_drop(struct holds *s, uint32_t id)
{
	size_t i = lower_bound(s, id);

	if (i < s->n && s->v[i].id == id) {
		memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
		s->n--;
	}
}

void holds_clear(struct holds *s)
{
	s->n = 0;
}

void holds_expire(struct holds *s, const uint32_t *present, size_t n_present, uint64_t now_ms,
                  unsigned *gone, unsigned *expired)
{
	size_t i, j = 0;

	for (i = 0; i < s->n; i++) {
		uint32_t id = s->v[i].id;

		if (!n_present || !bsearch(&id, present, n_present, sizeof(*present), cmp_u32)) {
			(*gone)++;
			continue;
		}
		if (now_ms >= s->v[i].until_ms) {
			(*expired)++;
			continue;
		}
		s->v[j++] = s->v[i];
	}
	s->n = j;
}
