/* Per-thread CPU accounting: the bookkeeping that turns consecutive scans into % of one CPU per
 * thread, the hottest few, and the single-thread saturation flag. The tid map is open addressing
 * with linear probing and backward-shift deletion, so entries of exited threads are dropped
 * without tombstones; entries of threads whose process the scan kept (did not read) stay. */
#include "threads.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAP_MIN_BITS 10

struct tentry {
	uint64_t ticks;
	uint64_t start_ticks;
	uint32_t tid;    /* 0: empty slot (tid 0 never shows in /proc) */
	uint32_t tgid;   /* its process: kept with it when the scan did not read the process */
	uint16_t streak; /* consecutive hot samples, saturating */
	uint16_t gen;    /* scan that last saw the thread */
};

struct threads {
	unsigned hz;
	double saturation_pct;
	unsigned saturation_samples;
	double rest_idle_pct;

	struct tentry *slots;
	unsigned bits; /* cap = 1 << bits */
	size_t count;
	uint16_t gen;

	bool have_prev;
	uint64_t prev_ms;
};

/* The hottest few of one scan, hottest first. */
struct topk {
	unsigned n, cap;
	float pct[SAMPLE_MAX_THREADS];
	size_t idx[SAMPLE_MAX_THREADS];
};

static size_t map_home(uint32_t tid, unsigned bits)
{
	return (uint32_t)(tid * 2654435761u) >> (32 - bits);
}

static struct tentry *map_probe(struct tentry *slots, unsigned bits, uint32_t tid)
{
	size_t mask = ((size_t)1 << bits) - 1;
	size_t i = map_home(tid, bits);

	while (slots[i].tid && slots[i].tid != tid)
		i = (i + 1) & mask;
	return &slots[i];
}

static int map_grow(struct threads *t)
{
	unsigned bits = t->slots ? t->bits + 1 : MAP_MIN_BITS;
	size_t old_cap = t->slots ? (size_t)1 << t->bits : 0;
	struct tentry *slots;

	slots = calloc((size_t)1 << bits, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < old_cap; i++) {
		if (t->slots[i].tid)
			*map_probe(slots, bits, t->slots[i].tid) = t->slots[i];
	}
	free(t->slots);
	t->slots = slots;
	t->bits = bits;
	return 0;
}

/* Returns the entry of tid, adding an empty one (is_new) when absent; NULL when out of memory. */
static struct tentry *map_get(struct threads *t, uint32_t tid, bool *is_new)
{
	struct tentry *e = map_probe(t->slots, t->bits, tid);

	*is_new = !e->tid;
	if (e->tid)
		return e;
	if ((t->count + 1) * 4 > ((size_t)3 << t->bits)) {
		if (map_grow(t) < 0)
			return NULL;
		e = map_probe(t->slots, t->bits, tid);
	}
	memset(e, 0, sizeof(*e));
	e->tid = tid;
	t->count++;
	return e;
}

/* Backward-shift deletion: moves later members of the probe chain into the hole. */
static void map_delete(struct threads *t, size_t hole)
{
	size_t mask = ((size_t)1 << t->bits) - 1;
	size_t j = hole;

	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!t->slots[j].tid)
			break;
		home = map_home(t->slots[j].tid, t->bits);
		/* the entry at j may fill the hole unless its home lies cyclically in (hole, j] */
		if (hole <= j ? (hole < home && home <= j) : (hole < home || home <= j))
			continue;
		t->slots[hole] = t->slots[j];
		hole = j;
	}
	t->slots[hole].tid = 0;
	t->count--;
}

static bool is_kept(const struct thread_scan *scan, uint32_t pid)
{
	size_t lo = 0, hi = scan->nkept;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (scan->kept[mid] == pid)
			return true;
		if (scan->kept[mid] < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Drops the entries this scan did not list, unless their process was kept: those threads used
 * no CPU over the interval, which ends a hot streak. */
static void map_sweep(struct threads *t, const struct thread_scan *scan, uint64_t interval_ms)
{
	size_t cap = (size_t)1 << t->bits;

	for (size_t i = 0; i < cap;) {
		struct tentry *e = &t->slots[i];

		if (!e->tid || e->gen == t->gen) {
			i++;
		} else if (is_kept(scan, e->tgid)) {
			e->gen = t->gen;
			if (interval_ms)
				e->streak = 0;
			i++;
		} else {
			map_delete(t, i); /* slot i now holds a shifted entry: look again */
		}
	}
}

struct threads *threads_new(unsigned hz, double saturation_pct, unsigned saturation_samples,
                            double rest_idle_pct)
{
	struct threads *t;

	if (hz == 0) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->hz = hz;
	t->saturation_pct = saturation_pct;
	t->saturation_samples = saturation_samples ? saturation_samples : 1;
	t->rest_idle_pct = rest_idle_pct;
	if (map_grow(t) < 0) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

void threads_free(struct threads *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t);
}

static void topk_add(struct topk *k, float pct, size_t idx)
{
	unsigned i;

	if (k->n == k->cap && (k->n == 0 || pct <= k->pct[k->n - 1]))
		return;
	if (k->n < k->cap)
		k->n++;
	for (i = k->n - 1; i > 0 && k->pct[i - 1] < pct; i--) {
		k->pct[i] = k->pct[i - 1];
		k->idx[i] = k->idx[i - 1];
	}
	k->pct[i] = pct;
	k->idx[i] = idx;
}

/* % of one CPU over interval_ms, clamped to [0, 100]; negative when there is no rate. */
static double thread_pct(const struct threads *t, const struct tentry *e, bool is_new,
                         const struct thread_tick *tk, uint64_t interval_ms)
{
	double pct;

	if (is_new || !interval_ms || e->start_ticks != tk->start_ticks || tk->ticks < e->ticks)
		return -1;
	pct = (double)(tk->ticks - e->ticks) * 100.0 * 1000.0 / ((double)t->hz * interval_ms);
	return pct > 100.0 ? 100.0 : pct;
}

static void fill_saturation(const struct threads *t, double hot_pct, double busy_cores,
                            unsigned cpus_online, struct sample *ret)
{
	unsigned rest_cpus = cpus_online > 1 ? cpus_online - 1 : 1;
	double other_cores = busy_cores - hot_pct / 100.0;

	if (other_cores < 0)
		other_cores = 0;
	ret->saturated = hot_pct >= 0 && other_cores * 100.0 / rest_cpus < t->rest_idle_pct;
	SAMPLE_SET(ret, SF_SATURATED);
}

void threads_update(struct threads *t, const struct thread_scan *scan, uint64_t now_ms,
                    double busy_cores, unsigned cpus_online, unsigned top, struct sample *ret)
{
	const struct thread_tick *ticks = scan->ticks;
	uint64_t interval_ms = t->have_prev && now_ms > t->prev_ms ? now_ms - t->prev_ms : 0;
	struct topk k = {.cap = top < SAMPLE_MAX_THREADS ? top : SAMPLE_MAX_THREADS};
	double total_pct = 0, hot_pct = -1;
	size_t seen = 0;

	t->gen++;
	for (size_t i = 0; i < scan->nticks; i++) {
		const struct thread_tick *tk = &ticks[i];
		struct tentry *e;
		bool is_new;
		double pct;

		if (!tk->tid)
			continue;
		e = map_get(t, tk->tid, &is_new);
		if (!e || (!is_new && e->gen == t->gen))
			continue; /* out of memory, or a duplicate tid in one scan */
		pct = thread_pct(t, e, is_new, tk, interval_ms);
		e->ticks = tk->ticks;
		e->start_ticks = tk->start_ticks;
		e->tgid = tk->tgid;
		e->gen = t->gen;
		seen++;
		if (pct >= t->saturation_pct)
			e->streak += e->streak < UINT16_MAX;
		else if (interval_ms)
			e->streak = 0; /* no interval (same now_ms): keep the streak as it was */
		if (pct <= 0)
			continue;
		total_pct += pct;
		topk_add(&k, (float)pct, i);
		if (e->streak >= t->saturation_samples && pct > hot_pct)
			hot_pct = pct;
	}
	if (t->count > seen)
		map_sweep(t, scan, interval_ms);
	t->have_prev = true;
	t->prev_ms = now_ms;
	if (!interval_ms)
		return;

	ret->nthreads = k.n;
	for (unsigned i = 0; i < k.n; i++) {
		struct sample_thread *st = &ret->threads[i];

		st->tid = ticks[k.idx[i]].tid;
		st->cpu_pct = k.pct[i];
		memcpy(st->comm, ticks[k.idx[i]].comm, SAMPLE_COMM_LEN);
		st->comm[SAMPLE_COMM_LEN - 1] = '\0';
	}
	SAMPLE_SET(ret, SF_THREADS);
	fill_saturation(t, hot_pct, busy_cores >= 0 ? busy_cores : total_pct / 100.0, cpus_online,
	                ret);
}
