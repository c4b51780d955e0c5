/* Per-thread accounting: threads_update() fed hand-made scans (rates, clamping, top-N order,
 * hot streaks and saturation, tid reuse, exited threads, 5000 threads), and both thread sources
 * on the live system, where a spinning pthread must show up hot and the sleeping main thread
 * must not (libproc2 reports a leader with its whole process's ticks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

static void update(struct threads *t, const struct thread_tick *ticks, size_t n, uint64_t now_ms,
                   double busy_cores, unsigned cpus, unsigned top, struct sample *s)
{
	memset(s, 0, sizeof(*s));
	threads_update(t, ticks, n, now_ms, busy_cores, cpus, top, s);
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

/* ---- live system ---- */

static atomic_int spin_tid;
static atomic_bool spin_stop;

static void *spin_main(void *arg)
{
	volatile uint64_t x = 0;

	atomic_store(&spin_tid, (int)syscall(SYS_gettid));
	while (!atomic_load(&spin_stop))
		x++;
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0)
		;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const struct thread_tick *find_tick(const struct thread_tick *tk, int n, uint32_t tid)
{
	for (int i = 0; i < n; i++) {
		if (tk[i].tid == tid)
			return &tk[i];
	}
	return NULL;
}

static int scan(struct thread_source *src, struct thread_tick **tk, size_t *cap)
{
	return src ? threads_scan_libproc2(src, tk, cap) : threads_scan_dir("/proc", tk, cap);
}

/* A spinning pthread shows >= 50 % (2-core machine, other tests may run); the sleeping main
 * thread, which is the thread group leader, stays low. */
static void live_spinner(struct thread_source *src)
{
	unsigned hz = (unsigned)sysconf(_SC_CLK_TCK);
	struct thread_tick *tk = NULL;
	struct threads *t = threads_new(hz, 95, 3, 50);
	uint64_t leader_t0, spin_t0;
	const struct sample_thread *st;
	const struct thread_tick *x;
	size_t cap = 0;
	pthread_t th;
	struct sample s;
	int n;

	assert_non_null(t);
	atomic_store(&spin_tid, 0);
	atomic_store(&spin_stop, false);
	assert_int_equal(pthread_create(&th, NULL, spin_main, NULL), 0);
	while (!atomic_load(&spin_tid))
		sleep_ms(1);
	sleep_ms(100);

	n = scan(src, &tk, &cap);
	assert_true(n > 1);
	update(t, tk, (size_t)n, now_ms(), -1, 2, SAMPLE_MAX_THREADS, &s);
	x = find_tick(tk, n, (uint32_t)getpid());
	assert_non_null(x);
	leader_t0 = x->ticks;
	x = find_tick(tk, n, (uint32_t)atomic_load(&spin_tid));
	assert_non_null(x);
	spin_t0 = x->ticks;
	sleep_ms(1000);
	n = scan(src, &tk, &cap);
	assert_true(n > 1);
	update(t, tk, (size_t)n, now_ms(), -1, 2, SAMPLE_MAX_THREADS, &s);
	atomic_store(&spin_stop, true);
	pthread_join(th, NULL);

	st = find_tid(&s, (uint32_t)atomic_load(&spin_tid));
	assert_non_null(st);
	if (st->cpu_pct < 50)
		fail_msg("spinning thread at %.1f %%", st->cpu_pct);
	x = find_tick(tk, n, (uint32_t)atomic_load(&spin_tid));
	assert_true(x->ticks - spin_t0 >= hz / 2);
	/* the leader sleeps: its own ticks hardly move (libproc2 alone would add the spinner's) */
	x = find_tick(tk, n, (uint32_t)getpid());
	assert_non_null(x);
	if (x->ticks - leader_t0 > hz / 5)
		fail_msg("main thread gained %llu ticks while sleeping",
		         (unsigned long long)(x->ticks - leader_t0));
	st = find_tid(&s, (uint32_t)getpid());
	assert_true(!st || st->cpu_pct < 20);
	free(tk);
	threads_free(t);
}

static void test_live_libproc2(void **state)
{
	struct thread_source *src = threads_source_new();

	assert_non_null(src);
	live_spinner(src);
	threads_source_free(src);
}

static void test_live_dir(void **state)
{
	live_spinner(NULL);
}

static void test_scan_dir_missing(void **state)
{
	struct thread_tick *tk = NULL;
	size_t cap = 0;

	assert_int_equal(threads_scan_dir("/nonexistent-vscale", &tk, &cap), -ENOENT);
	free(tk);
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
	        cmocka_unit_test(test_live_libproc2),
	        cmocka_unit_test(test_live_dir),
	        cmocka_unit_test(test_scan_dir_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
