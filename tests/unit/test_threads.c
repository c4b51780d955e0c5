/* Per-thread accounting: threads_update() fed hand-made scans (rates, clamping, top-N order,
 * hot streaks and saturation, tid reuse, exited threads, 5000 threads, and processes the scan
 * kept: their threads stay known at 0 %). The sources of scans are tested in test_procs.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <stdio.h>

#include "threads.h"

#define HZ 100 /* tests of threads_update pick their own tick rate */

static void set_tick(struct thread_tick *t, uint32_t tid, uint64_t ticks, uint64_t start,
                     const char *comm)
{
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	t->ticks = ticks;
	t->start_ticks = start;
	snprintf(t->comm, sizeof(t->comm), "%s", comm);
}

static struct threads *new_tracker(void)
{
	struct threads *t = threads_new(HZ, 95, 3, 50);

	assert_non_null(t);
	return t;
}

/* Feeds a scan that read every process. */
static void update(struct threads *t, const struct thread_tick *ticks, size_t n, uint64_t now_ms,
                   double busy_cores, unsigned cpus, unsigned top, struct sample *s)
{
	struct thread_scan scan = {.ticks = ticks, .nticks = n};

	memset(s, 0, sizeof(*s));
	threads_update(t, &scan, now_ms, busy_cores, cpus, top, s);
}

/* Feeds a scan that read the threads in ticks and kept the processes in kept (ascending). */
static void update_kept(struct threads *t, const struct thread_tick *ticks, size_t n,
                        const uint32_t *kept, size_t nkept, uint64_t now_ms, struct sample *s)
{
	struct thread_scan scan = {.ticks = ticks, .nticks = n, .kept = kept, .nkept = nkept};

	memset(s, 0, sizeof(*s));
	threads_update(t, &scan, now_ms, -1, 2, 5, s);
}

static const struct sample_thread *find_tid(const struct sample *s, uint32_t tid)
{
	for (uint32_t i = 0; i < s->nthreads; i++) {
		if (s->threads[i].tid == tid)
			return &s->threads[i];
	}
	return NULL;
}

static void test_first_update_has_no_rates(void **state)
{
	struct threads *t = new_tracker();
	struct thread_tick tk[1];
	struct sample s;

	set_tick(&tk[0], 10, 500, 1, "a");
	update(t, tk, 1, 1000, 1.0, 2, 5, &s);
	assert_false(SAMPLE_HAS(&s, SF_THREADS));
	assert_false(SAMPLE_HAS(&s, SF_SATURATED));
	assert_int_equal(s.nthreads, 0);
	threads_free(t);
}

static void test_rates_and_clamping(void **state)
{
	static const struct {
		uint64_t t0, t1;
		float want; /* < 0: not listed */
	} rows[] = {
	        {1000, 1050, 50.0f},  /* half a CPU */
	        {1000, 1102, 100.0f}, /* rounding noise above one CPU is clamped */
	        {1000, 1400, 100.0f}, /* 4 CPUs' worth cannot be one thread: clamped */
	        {1000, 1001, 1.0f},   {1000, 1000, -1}, /* idle: not listed */
	        {1000, 900, -1},                        /* went backwards: no rate */
	};
	struct thread_tick a[6], b[6];
	struct threads *t = new_tracker();
	struct sample s;

	for (unsigned i = 0; i < 6; i++) {
		set_tick(&a[i], 100 + i, rows[i].t0, 7, "w");
		set_tick(&b[i], 100 + i, rows[i].t1, 7, "w");
	}
	update(t, a, 6, 10000, -1, 4, 8, &s);
	update(t, b, 6, 11000, -1, 4, 8, &s);
	assert_true(SAMPLE_HAS(&s, SF_THREADS));
	assert_int_equal(s.nthreads, 4);
	for (unsigned i = 0; i < 6; i++) {
		const struct sample_thread *st = find_tid(&s, 100 + i);

		if (rows[i].want < 0) {
			assert_null(st);
			continue;
		}
		assert_non_null(st);
		assert_float_equal(st->cpu_pct, rows[i].want, 0.01);
	}
	/* same deltas over 2 s: half the rate */
	for (unsigned i = 0; i < 6; i++)
		b[i].ticks += 50;
	update(t, b, 6, 13000, -1, 4, 8, &s);
	assert_int_equal(s.nthreads, 6);
	assert_float_equal(s.threads[0].cpu_pct, 25.0, 0.01);
	threads_free(t);
}

static void test_top_n_order(void **state)
{
	/* deltas (ticks per 1 s at HZ 100 = %) in scan order */
	static const unsigned deltas[20] = {3,  70, 12, 0, 55, 99, 1,  40, 81, 7,
	                                    64, 0,  90, 2, 33, 18, 77, 5,  60, 45};
	static const unsigned want[8] = {99, 90, 81, 77, 70, 64, 60, 55};
	struct thread_tick a[20], b[20];
	struct threads *t = new_tracker();
	struct sample s;

	for (unsigned i = 0; i < 20; i++) {
		set_tick(&a[i], 1000 + i, 5000, 1, "t");
		set_tick(&b[i], 1000 + i, 5000 + deltas[i], 1, "t");
		snprintf(b[i].comm, sizeof(b[i].comm), "t%u", deltas[i]);
	}
	update(t, a, 20, 1000, -1, 8, 5, &s);
	update(t, b, 20, 2000, -1, 8, 5, &s);
	assert_int_equal(s.nthreads, 5);
	for (unsigned i = 0; i < 5; i++) {
		char comm[16];

		assert_float_equal(s.threads[i].cpu_pct, want[i], 0.01);
		snprintf(comm, sizeof(comm), "t%u", want[i]);
		assert_string_equal(s.threads[i].comm, comm);
	}

	/* asking for more than fit in a sample gives SAMPLE_MAX_THREADS */
	for (unsigned i = 0; i < 20; i++)
		b[i].ticks += deltas[i];
	update(t, b, 20, 3000, -1, 8, 100, &s);
	assert_int_equal(s.nthreads, SAMPLE_MAX_THREADS);
	for (unsigned i = 0; i < SAMPLE_MAX_THREADS; i++)
		assert_float_equal(s.threads[i].cpu_pct, want[i], 0.01);

	/* top 0: no list, the flags still come */
	for (unsigned i = 0; i < 20; i++)
		b[i].ticks += deltas[i];
	update(t, b, 20, 4000, -1, 8, 0, &s);
	assert_int_equal(s.nthreads, 0);
	assert_true(SAMPLE_HAS(&s, SF_THREADS));
	assert_true(SAMPLE_HAS(&s, SF_SATURATED));
	threads_free(t);
}

/* One hot thread (tid 1) and an idle one (tid 2) on 2 CPUs; hot[] says per step how many ticks
 * tid 1 used, sat[] the expected flag. */
static void test_streak_and_saturation(void **state)
{
	static const struct {
		unsigned hot_ticks;
		bool sat;
	} steps[] = {
	        {100, false}, {100, false}, {100, true}, /* hot for 3 samples */
	        {100, true},  {50, false},               /* cools down once: streak restarts */
	        {96, false},  {100, false}, {95, true},  /* 95 % counts as hot */
	        {94, false},
	};
	struct thread_tick tk[2];
	struct threads *t = new_tracker();
	uint64_t now = 1000;
	struct sample s;

	set_tick(&tk[0], 1, 0, 5, "spin");
	set_tick(&tk[1], 2, 0, 5, "idle");
	update(t, tk, 2, now, -1, 2, 3, &s);
	for (unsigned i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		tk[0].ticks += steps[i].hot_ticks;
		now += 1000;
		update(t, tk, 2, now, steps[i].hot_ticks / 100.0 + 0.05, 2, 3, &s);
		assert_true(SAMPLE_HAS(&s, SF_SATURATED));
		if (s.saturated != steps[i].sat)
			fail_msg("step %u: saturated %d, want %d", i, s.saturated, steps[i].sat);
		assert_int_equal(s.nthreads, 1);
		assert_int_equal(s.threads[0].tid, 1);
	}
	threads_free(t);
}

/* The rest of the VM decides: a hot thread on a busy VM is not single-thread saturation. */
static void test_saturation_needs_idle_rest(void **state)
{
	static const struct {
		double busy_cores; /* < 0: unknown, the threads' sum is used */
		unsigned cpus;
		unsigned nhot;
		bool sat;
	} rows[] = {
	        {1.0, 2, 1, true},  /* the other CPU is idle */
	        {1.45, 2, 1, true}, /* other 45 % < 50 % */
	        {1.6, 2, 1, false}, /* other 60 % */
	        {2.0, 2, 2, false}, /* both CPUs busy: two hot threads */
	        {-1, 2, 1, true},   /* unknown busy: 1 thread at 100 % */
	        {-1, 2, 2, false},  /* unknown busy: 2 threads at 100 % */
	        {2.0, 4, 1, true},  /* 1 of 3 other CPUs busy: 33 % */
	        {3.0, 4, 1, false}, /* 2 of 3: 67 % */
	        {1.0, 1, 1, true},  /* one CPU: rest capacity counts as 1 */
	        {1.0, 0, 1, true},  /* online unknown */
	        {0.0, 2, 0, false}, /* nothing hot at all */
	        {-1, 2, 0, false},
	};

	for (unsigned r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		struct thread_tick tk[3];
		struct threads *t = new_tracker();
		struct sample s;

		for (unsigned i = 0; i < 3; i++)
			set_tick(&tk[i], 50 + i, 0, 1, "x");
		update(t, tk, 3, 0, -1, rows[r].cpus, 5, &s);
		for (unsigned k = 1; k <= 3; k++) {
			for (unsigned i = 0; i < rows[r].nhot; i++)
				tk[i].ticks += 100;
			update(t, tk, 3, k * 1000, rows[r].busy_cores, rows[r].cpus, 5, &s);
		}
		if (s.saturated != rows[r].sat)
			fail_msg("row %u: saturated %d, want %d", r, s.saturated, rows[r].sat);
		assert_int_equal(s.nthreads, rows[r].nhot);
		threads_free(t);
	}
}

static void test_tid_reuse_and_exit(void **state)
{
	struct thread_tick tk[3];
	struct threads *t = new_tracker();
	struct sample s;

	set_tick(&tk[0], 7, 500, 10, "old");
	set_tick(&tk[1], 8, 100, 10, "old8");
	set_tick(&tk[2], 9, 100, 10, "nine");
	update(t, tk, 3, 1000, -1, 2, 5, &s);

	/* tid 7 reused by a thread with fewer ticks, tid 8 by one with more: neither is a rate */
	set_tick(&tk[0], 7, 20, 90, "new");
	set_tick(&tk[1], 8, 400, 95, "new8");
	tk[2].ticks += 10;
	update(t, tk, 3, 2000, -1, 2, 5, &s);
	assert_int_equal(s.nthreads, 1);
	assert_int_equal(s.threads[0].tid, 9);

	/* from now on the new threads have rates */
	tk[0].ticks += 100;
	tk[1].ticks += 30;
	update(t, tk, 3, 3000, -1, 2, 5, &s);
	assert_int_equal(s.nthreads, 2);
	assert_int_equal(s.threads[0].tid, 7);
	assert_string_equal(s.threads[0].comm, "new");
	assert_float_equal(s.threads[0].cpu_pct, 100.0, 0.01);
	assert_int_equal(s.threads[1].tid, 8);

	/* tid 9 exits; when the same numbers come back the old entry must be gone (no rate) */
	update(t, tk, 2, 4000, -1, 2, 5, &s);
	assert_null(find_tid(&s, 9));
	tk[2].ticks += 50;
	update(t, tk, 3, 5000, -1, 2, 5, &s);
	assert_null(find_tid(&s, 9));
	tk[2].ticks += 50;
	update(t, tk, 3, 6000, -1, 2, 5, &s);
	assert_non_null(find_tid(&s, 9));
	threads_free(t);
}

static void test_hot_streak_lost_on_reuse(void **state)
{
	struct thread_tick tk[1];
	struct threads *t = new_tracker();
	struct sample s;
	uint64_t now = 0;

	set_tick(&tk[0], 3, 0, 1, "a");
	update(t, tk, 1, now, -1, 2, 5, &s);
	for (int i = 0; i < 2; i++) {
		tk[0].ticks += 100;
		update(t, tk, 1, now += 1000, -1, 2, 5, &s);
	}
	assert_false(s.saturated);
	/* a different thread with the same tid: its streak starts from zero */
	tk[0].start_ticks = 2;
	tk[0].ticks += 100;
	update(t, tk, 1, now += 1000, -1, 2, 5, &s);
	assert_false(s.saturated);
	for (int i = 0; i < 2; i++) {
		tk[0].ticks += 100;
		update(t, tk, 1, now += 1000, -1, 2, 5, &s);
		assert_false(s.saturated);
	}
	tk[0].ticks += 100;
	update(t, tk, 1, now += 1000, -1, 2, 5, &s);
	assert_true(s.saturated);
	threads_free(t);
}

/* 5000 threads with scattered tids; half exit; then every survivor in turn must still have its
 * baseline (it shows up when it is made hot), which exercises growth and deletion. */
static void test_many_threads(void **state)
{
	enum { N = 5000 };
	struct thread_tick *tk = calloc(N, sizeof(*tk));
	struct threads *t = threads_new(HZ, 95, 3, 50);
	uint64_t now = 1000;
	struct sample s;
	size_t m = 0;

	assert_non_null(tk);
	assert_non_null(t);
	for (uint32_t i = 0; i < N; i++)
		set_tick(&tk[i], (i * 7919u) % 4194304u + 1, 1000, 1, "m");
	update(t, tk, N, now, -1, 64, 8, &s);
	for (uint32_t i = 0; i < N; i++)
		tk[i].ticks += i % 97; /* 0..96 % */
	update(t, tk, N, now += 1000, -1, 64, 8, &s);
	assert_int_equal(s.nthreads, 8);
	assert_float_equal(s.threads[0].cpu_pct, 96.0, 0.01);
	assert_float_equal(s.threads[7].cpu_pct, 96.0, 0.01);

	/* keep the odd ones */
	for (uint32_t i = 1; i < N; i += 2)
		tk[m++] = tk[i];
	update(t, tk, m, now += 1000, -1, 64, 8, &s);
	assert_int_equal(s.nthreads, 0);
	for (size_t g = 0; g < m; g += 8) {
		size_t end = g + 8 < m ? g + 8 : m;

		for (size_t i = g; i < end; i++)
			tk[i].ticks += 100;
		update(t, tk, m, now += 1000, -1, 64, 8, &s);
		assert_int_equal(s.nthreads, end - g);
		for (size_t i = g; i < end; i++) {
			if (!find_tid(&s, tk[i].tid))
				fail_msg("tid %u (index %zu) lost its baseline", tk[i].tid, i);
		}
	}
	/* the evens come back with many more ticks: they were dropped, so they get no rate */
	for (uint32_t i = N; i-- > 0;) {
		if (i % 2)
			tk[i] = tk[i / 2];
		else
			set_tick(&tk[i], (i * 7919u) % 4194304u + 1, 999999, 1, "m");
	}
	update(t, tk, N, now += 1000, -1, 64, 8, &s);
	assert_int_equal(s.nthreads, 0);
	threads_free(t);
	free(tk);
}

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Random churn at a high load factor, so probe chains wrap around the end of the table and
 * deletions shift entries across it. Each round a few survivors get hot; exactly those must be
 * listed: a lost entry has no rate, a stale one gives a rate to a thread that came back. */
static void test_churn(void **state)
{
	enum { POOL = 1200, ROUNDS = 3000 };
	struct member {
		uint32_t tid;
		uint64_t ticks;
		bool in, was_in;
	} *pool = calloc(POOL, sizeof(*pool));
	struct thread_tick *tk = calloc(POOL, sizeof(*tk));
	struct threads *t = new_tracker();
	uint64_t rng = 88172645463325252ull;
	size_t hot[8];
	struct sample s;

	assert_non_null(pool);
	assert_non_null(tk);
	for (unsigned i = 0; i < POOL; i++) {
		pool[i].tid = (uint32_t)(rng_next(&rng) % 4194303) + 1;
		for (unsigned j = 0; j < i; j++) {
			if (pool[j].tid == pool[i].tid) {
				i--;
				break;
			}
		}
		pool[i].in = i % 2 == 0;
	}
	for (unsigned r = 0; r < ROUNDS; r++) {
		unsigned nhot = 0;
		size_t n = 0;

		for (unsigned i = 0; i < POOL; i++) {
			pool[i].was_in = pool[i].in;
			if (rng_next(&rng) % 100 < 4)
				pool[i].in = !pool[i].in;
			if (!pool[i].in)
				continue;
			if (!pool[i].was_in)
				pool[i].ticks += 50; /* comes back having run: still no rate */
			else if (nhot < 8 && rng_next(&rng) % 50 == 0) {
				pool[i].ticks += 100;
				hot[nhot++] = i;
			}
			set_tick(&tk[n++], pool[i].tid, pool[i].ticks, 1, "c");
		}
		update(t, tk, n, 1000 + r * 1000ull, -1, 4, 8, &s);
		if (r == 0)
			continue;
		if (s.nthreads != nhot)
			fail_msg("round %u: %u threads listed, want %u", r, s.nthreads, nhot);
		for (unsigned i = 0; i < nhot; i++) {
			if (!find_tid(&s, pool[hot[i]].tid))
				fail_msg("round %u: tid %u lost", r, pool[hot[i]].tid);
		}
	}
	threads_free(t);
	free(tk);
	free(pool);
}

/* ---- processes the scan kept ---- */

static void set_tick_of(struct thread_tick *t, uint32_t tgid, uint32_t tid, uint64_t ticks,
                        uint64_t start, const char *comm)
{
	set_tick(t, tid, ticks, start, comm);
	t->tgid = tgid;
}

/* Process 100 (threads 101, 102) and process 200 (thread 200). While 100 is kept its threads
 * keep their baselines; once it is neither read nor kept they are forgotten. */
static void test_kept_process(void **state)
{
	struct thread_tick tk[3];
	struct threads *t = new_tracker();
	const uint32_t kept100[] = {100}, kept_both[] = {100, 200};
	struct sample s;

	set_tick_of(&tk[0], 100, 101, 1000, 1, "w1");
	set_tick_of(&tk[1], 100, 102, 2000, 1, "w2");
	set_tick_of(&tk[2], 200, 200, 300, 1, "solo");
	update(t, tk, 3, 1000, -1, 2, 5, &s);

	/* 100 kept, 200 read and busy: only 200 is listed */
	tk[2].ticks += 40;
	update_kept(t, &tk[2], 1, kept100, 1, 2000, &s);
	assert_true(SAMPLE_HAS(&s, SF_THREADS));
	assert_int_equal(s.nthreads, 1);
	assert_int_equal(s.threads[0].tid, 200);
	assert_float_equal(s.threads[0].cpu_pct, 40.0, 0.01);

	/* both kept: nothing listed, nothing forgotten */
	update_kept(t, NULL, 0, kept_both, 2, 3000, &s);
	assert_true(SAMPLE_HAS(&s, SF_THREADS));
	assert_int_equal(s.nthreads, 0);

	/* 100 moves: 101 used 30 ticks in the last second, measured from the kept baseline */
	tk[0].ticks += 30;
	update_kept(t, tk, 2, &kept_both[1], 1, 4000, &s);
	assert_int_equal(s.nthreads, 1);
	assert_int_equal(s.threads[0].tid, 101);
	assert_float_equal(s.threads[0].cpu_pct, 30.0, 0.01);

	/* 100 read without 102 (it exited): 102 is forgotten, so coming back it has no rate */
	tk[0].ticks += 10;
	update_kept(t, tk, 1, &kept_both[1], 1, 5000, &s);
	assert_int_equal(s.nthreads, 1);
	tk[0].ticks += 10;
	tk[1].ticks += 20;
	update_kept(t, tk, 2, &kept_both[1], 1, 6000, &s);
	assert_int_equal(s.nthreads, 1);
	assert_int_equal(s.threads[0].tid, 101);

	/* 200 neither read nor kept (it exited): forgotten */
	update_kept(t, tk, 2, NULL, 0, 7000, &s);
	tk[2].ticks += 50;
	update_kept(t, &tk[2], 1, kept100, 1, 8000, &s);
	assert_int_equal(s.nthreads, 0);
	tk[2].ticks += 50;
	update_kept(t, &tk[2], 1, kept100, 1, 9000, &s);
	assert_int_equal(s.nthreads, 1);
	assert_float_equal(s.threads[0].cpu_pct, 50.0, 0.01);
	threads_free(t);
}

/* A kept process used no CPU: its hot thread's streak ends, and starts over when it is read
 * hot again. */
static void test_kept_ends_streak(void **state)
{
	static const bool read[] = {true, true, false, true, true, true, false, true};
	static const bool want[] = {false, false, false, false, false, true, false, false};
	const uint32_t kept[] = {7};
	struct thread_tick tk[2];
	struct threads *t = new_tracker();
	uint64_t now = 1000;
	struct sample s;

	set_tick_of(&tk[0], 7, 7, 0, 1, "main");
	set_tick_of(&tk[1], 7, 8, 0, 1, "spin");
	update(t, tk, 2, now, -1, 2, 5, &s);
	for (unsigned i = 0; i < sizeof(read) / sizeof(read[0]); i++) {
		now += 1000;
		if (read[i]) {
			tk[1].ticks += 100;
			update_kept(t, tk, 2, NULL, 0, now, &s);
		} else {
			update_kept(t, NULL, 0, kept, 1, now, &s);
		}
		if (s.saturated != want[i])
			fail_msg("step %u: saturated %d, want %d", i, s.saturated, want[i]);
	}
	threads_free(t);
}

/* tid 11 of kept process 10 is reused by a thread of new process 20: no rate at first, then the
 * entry belongs to 20 and survives while 20 is kept and 10 is gone. */
static void test_kept_tid_reuse(void **state)
{
	const uint32_t kept10[] = {10}, kept20[] = {20};
	struct thread_tick tk[2];
	struct threads *t = new_tracker();
	struct sample s;

	set_tick_of(&tk[0], 10, 10, 100, 1, "p10");
	set_tick_of(&tk[1], 10, 11, 100, 1, "p10-w");
	update(t, tk, 2, 1000, -1, 2, 5, &s);
	update_kept(t, NULL, 0, kept10, 1, 2000, &s);

	set_tick_of(&tk[0], 20, 20, 5, 900, "p20");
	set_tick_of(&tk[1], 20, 11, 500, 950, "p20-w");
	update_kept(t, tk, 2, kept10, 1, 3000, &s);
	assert_int_equal(s.nthreads, 0); /* 500 ticks from another thread are no rate */

	update_kept(t, NULL, 0, kept20, 1, 4000, &s); /* 10 exited, 20 idle */
	tk[1].ticks += 100;
	update_kept(t, tk, 2, NULL, 0, 5000, &s);
	assert_int_equal(s.nthreads, 1);
	assert_int_equal(s.threads[0].tid, 11);
	assert_string_equal(s.threads[0].comm, "p20-w");
	assert_float_equal(s.threads[0].cpu_pct, 100.0, 0.01);
	threads_free(t);
}
int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_first_update_has_no_rates),
	        cmocka_unit_test(test_rates_and_clamping),
	        cmocka_unit_test(test_top_n_order),
	        cmocka_unit_test(test_streak_and_saturation),
	        cmocka_unit_test(test_saturation_needs_idle_rest),
	        cmocka_unit_test(test_tid_reuse_and_exit),
	        cmocka_unit_test(test_hot_streak_lost_on_reuse),
	        cmocka_unit_test(test_many_threads),
	        cmocka_unit_test(test_churn),
	        cmocka_unit_test(test_kept_process),
	        cmocka_unit_test(test_kept_ends_streak),
	        cmocka_unit_test(test_kept_tid_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
