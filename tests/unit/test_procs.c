/* The two-phase scan: on fake /proc trees, a process whose own stat did not move is kept and its
 * task files are not read (changing them alone changes nothing), while a process whose ticks,
 * thread count or start time changed is read again; on the live system, through libproc2 and
 * the plain parser, an idle child process is kept, a spinning thread is found, and a leader is
 * reported with its own ticks (libproc2 alone gives it the whole process's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "faketree.h"
#include "procs.h"

/* ---- fake trees ---- */

/* <proc>/<rel> = a stat line for id in process pid. */
static void put_stat(const struct faketree *t, const char *rel, unsigned id, const char *comm,
                     uint64_t ticks, unsigned nlwp, uint64_t start)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t->proc, rel);
	f = faketree_create(path);
	fprintf(f,
	        "%u (%s) S 1 %u %u 0 -1 4194304 120 0 0 0 %llu %llu 0 0 20 0 %u 0 %llu 12345678 250 "
	        "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
	        id, comm, id, id, (unsigned long long)(ticks - ticks / 3),
	        (unsigned long long)(ticks / 3), nlwp, (unsigned long long)start);
	fclose(f);
}

struct fproc {
	unsigned pid;
	unsigned nthreads;
	uint64_t start;
	uint64_t ticks[4]; /* thread i has tid pid + i */
	uint64_t reaped;   /* ticks of threads that exited: in the process's stat only */
};

/* Writes <pid>/stat (whole process) and <pid>/task/<tid>/stat for every thread. */
static void put_proc(const struct faketree *t, const struct fproc *p)
{
	uint64_t sum = p->reaped;
	char rel[64], comm[16];

	for (unsigned i = 0; i < p->nthreads; i++) {
		snprintf(rel, sizeof(rel), "%u/task/%u/stat", p->pid, p->pid + i);
		snprintf(comm, sizeof(comm), "t%u", p->pid + i);
		put_stat(t, rel, p->pid + i, comm, p->ticks[i], p->nthreads, p->start);
		sum += p->ticks[i];
	}
	snprintf(rel, sizeof(rel), "%u/stat", p->pid);
	snprintf(comm, sizeof(comm), "t%u", p->pid);
	put_stat(t, rel, p->pid, comm, sum, p->nthreads, p->start);
}

/* Rewrites one task stat alone, leaving <pid>/stat as it was. */
static void put_task_only(const struct faketree *t, const struct fproc *p, unsigned i,
                          uint64_t ticks)
{
	char rel[64], comm[16];

	snprintf(rel, sizeof(rel), "%u/task/%u/stat", p->pid, p->pid + i);
	snprintf(comm, sizeof(comm), "t%u", p->pid + i);
	put_stat(t, rel, p->pid + i, comm, ticks, p->nthreads, p->start);
}

static void rm_proc(const struct faketree *t, unsigned pid)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%u", t->proc, pid);
	faketree_rm(path);
}

static int setup(void **state)
{
	return faketree_setup(state, "procs", true);
}

static const struct thread_tick *find_tick(const struct thread_scan *s, uint32_t tid)
{
	for (size_t i = 0; i < s->nticks; i++) {
		if (s->ticks[i].tid == tid)
			return &s->ticks[i];
	}
	return NULL;
}

/* The tick of tid in s, which must be there. */
static const struct thread_tick *tick_of(const struct thread_scan *s, uint32_t tid)
{
	const struct thread_tick *x = find_tick(s, tid);

	assert_non_null(x);
	return x;
}

static bool is_kept(const struct thread_scan *s, uint32_t pid)
{
	for (size_t i = 0; i < s->nkept; i++) {
		if (s->kept[i] == pid)
			return true;
	}
	return false;
}

static const struct thread_scan *scan_ok(struct procs *p)
{
	const struct thread_scan *s = NULL;

	assert_int_equal(procs_scan(p, &s), 0);
	assert_non_null(s);
	for (size_t i = 1; i < s->nkept; i++)
		assert_true(s->kept[i - 1] < s->kept[i]);
	return s;
}

/* Three processes: 100 with 3 threads, 200 with one, 300 with 2. */
static void three_procs(const struct faketree *t, struct fproc p[3])
{
	p[0] = (struct fproc){.pid = 100, .nthreads = 3, .start = 50, .ticks = {10, 20, 30}};
	p[1] = (struct fproc){.pid = 200, .nthreads = 1, .start = 60, .ticks = {40}, .reaped = 5};
	p[2] = (struct fproc){.pid = 300, .nthreads = 2, .start = 70, .ticks = {1, 2}};
	for (unsigned i = 0; i < 3; i++)
		put_proc(t, &p[i]);
	put_stat(t, "self", 1, "not-a-pid", 0, 1, 1); /* ignored: not a pid */
}

/* The fake-tree tests' start: a scanner over t's proc, and three_procs() in it. */
static struct procs *start(const struct faketree *t, struct fproc f[3])
{
	struct procs *p = procs_new_dir(t->proc);

	assert_non_null(p);
	three_procs(t, f);
	return p;
}

static void test_first_scan_reads_all(void **state)
{
	struct faketree *t = *state;
	struct fproc f[3];
	struct procs *p = start(t, f);
	const struct thread_scan *s;
	const struct thread_tick *x;

	s = scan_ok(p);
	assert_int_equal(s->nprocs, 3);
	assert_int_equal(s->nkept, 0);
	assert_int_equal(s->nticks, 6);
	assert_int_equal(s->nprocs_read, 2);   /* the multi-threaded ones */
	assert_int_equal(s->nthreads_read, 5); /* 200 came from its own stat in phase 1 */
	/* a leader has its own ticks, not its process's */
	x = tick_of(s, 100);
	assert_int_equal(x->ticks, 10);
	assert_int_equal(x->tgid, 100);
	x = tick_of(s, 102);
	assert_int_equal(x->ticks, 30);
	assert_int_equal(x->tgid, 100);
	assert_string_equal(x->comm, "t102");
	/* a single-threaded process is its whole stat, reaped threads included */
	x = tick_of(s, 200);
	assert_int_equal(x->ticks, 45);
	assert_int_equal(x->tgid, 200);
	procs_free(p);
}

/* Changing an idle process's task stat alone changes nothing: phase 2 did not read it. */
static void test_idle_process_not_read(void **state)
{
	struct faketree *t = *state;
	struct fproc f[3];
	struct procs *p = start(t, f);
	const struct thread_scan *s;
	const struct thread_tick *x;

	scan_ok(p);
	s = scan_ok(p);
	assert_int_equal(s->nprocs, 3);
	assert_int_equal(s->nkept, 3);
	assert_int_equal(s->nticks, 0);
	assert_int_equal(s->nprocs_read, 0);
	assert_int_equal(s->nthreads_read, 0);

	put_task_only(t, &f[0], 1, 999);
	s = scan_ok(p);
	assert_int_equal(s->nkept, 3);
	assert_int_equal(s->nticks, 0);

	/* 100 moves (the process stat now agrees): its threads are read, the others stay kept */
	f[0].ticks[1] = 999;
	put_proc(t, &f[0]);
	s = scan_ok(p);
	assert_int_equal(s->nkept, 2);
	assert_true(is_kept(s, 200) && is_kept(s, 300));
	assert_int_equal(s->nprocs_read, 1);
	assert_int_equal(s->nthreads_read, 3);
	assert_int_equal(s->nticks, 3);
	x = tick_of(s, 101);
	assert_int_equal(x->ticks, 999);

	/* the single-threaded one moves */
	f[1].ticks[0] += 7;
	put_proc(t, &f[1]);
	s = scan_ok(p);
	assert_int_equal(s->nkept, 2);
	assert_int_equal(s->nticks, 1);
	assert_int_equal(s->nprocs_read, 0);
	x = tick_of(s, 200);
	assert_int_equal(x->ticks, 52);
	procs_free(p);
}

/* What else counts as moving: a new thread with no ticks yet, a thread that exited (its ticks
 * move into the process's reaped count, so the total stays), a new process with the same pid,
 * a new process; a gone process is neither read nor kept. */
static void test_what_moves(void **state)
{
	struct faketree *t = *state;
	struct fproc f[3], late = {.pid = 400, .nthreads = 2, .start = 80, .ticks = {3, 4}};
	struct procs *p = start(t, f);
	const struct thread_scan *s;
	char rel[PATH_MAX];

	scan_ok(p);

	f[2].nthreads = 3; /* 300 starts a thread */
	put_proc(t, &f[2]);
	s = scan_ok(p);
	assert_int_equal(s->nkept, 2);
	assert_int_equal(s->nticks, 3);
	assert_non_null(find_tick(s, 302));

	f[0].nthreads = 2; /* 102 exits: 100's total stays the same */
	f[0].reaped = f[0].ticks[2];
	snprintf(rel, sizeof(rel), "%s/100/task/102", t->proc);
	faketree_rm(rel);
	put_proc(t, &f[0]);
	s = scan_ok(p);
	assert_int_equal(s->nkept, 2);
	assert_int_equal(s->nticks, 2);
	assert_null(find_tick(s, 102));

	f[1].start = 61; /* 200 is a new process with the same pid and the same ticks */
	put_proc(t, &f[1]);
	put_proc(t, &late);
	rm_proc(t, 300);
	s = scan_ok(p);
	assert_int_equal(s->nprocs, 3);
	assert_int_equal(s->nkept, 1);
	assert_true(is_kept(s, 100));
	assert_non_null(find_tick(s, 200));
	assert_non_null(find_tick(s, 400));
	assert_non_null(find_tick(s, 401));
	assert_null(find_tick(s, 300));
	assert_int_equal(s->nticks, 3);

	s = scan_ok(p);
	assert_int_equal(s->nkept, 3);
	assert_int_equal(s->nticks, 0);
	procs_free(p);
}

/* A process that vanished between its stat and its task dir is dropped, and read again (as
 * new) when it shows up next time, so its threads are never silently missing. */
static void test_unreadable_tasks(void **state)
{
	struct faketree *t = *state;
	struct fproc f[3];
	struct procs *p = start(t, f);
	const struct thread_scan *s;
	char rel[PATH_MAX];

	snprintf(rel, sizeof(rel), "%s/300/task", t->proc);
	faketree_rm(rel);
	s = scan_ok(p);
	assert_int_equal(s->nprocs, 2);
	assert_null(find_tick(s, 300));
	put_proc(t, &f[2]);
	s = scan_ok(p);
	assert_int_equal(s->nkept, 2);
	assert_non_null(find_tick(s, 300));
	assert_non_null(find_tick(s, 301));
	procs_free(p);
}

static void test_missing_dir(void **state)
{
	struct procs *p = procs_new_dir("/nonexistent-vscale");
	const struct thread_scan *s = NULL;

	assert_non_null(p);
	assert_int_equal(procs_scan(p, &s), -ENOENT);
	assert_null(s);
	procs_free(p);
}

/* ---- live system ---- */

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0)
		;
}

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

/* The spinner's own CPU time in clock ticks, from its thread CPU clock. */
static uint64_t cpu_ticks(clockid_t clk, unsigned hz)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(clk, &ts), 0);
	return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) * hz / 1000000000ull;
}

/* A spinning pthread of this process: the ticks the scan reports for it over 1 s match what its
 * own CPU clock says it ran, read around each scan (so whatever else loads the machine, the
 * figure is checked, not a share of a core); the sleeping main thread, the thread group leader,
 * hardly moves. */
static void live_spinner(struct procs *p)
{
	unsigned hz = (unsigned)sysconf(_SC_CLK_TCK);
	uint64_t leader_t0, spin_t0, a0, a1, b0, b1, got, slack;
	const struct thread_scan *s;
	const struct thread_tick *x;
	clockid_t clk;
	pthread_t th;

	atomic_store(&spin_tid, 0);
	atomic_store(&spin_stop, false);
	assert_int_equal(pthread_create(&th, NULL, spin_main, NULL), 0);
	assert_int_equal(pthread_getcpuclockid(th, &clk), 0);
	while (!atomic_load(&spin_tid))
		sleep_ms(1);
	sleep_ms(100);

	a0 = cpu_ticks(clk, hz);
	s = scan_ok(p);
	a1 = cpu_ticks(clk, hz);
	assert_true(s->nprocs > 1);
	x = tick_of(s, (uint32_t)getpid());
	leader_t0 = x->ticks;
	x = tick_of(s, (uint32_t)atomic_load(&spin_tid));
	assert_int_equal(x->tgid, (uint32_t)getpid());
	spin_t0 = x->ticks;
	sleep_ms(1000);
	b0 = cpu_ticks(clk, hz);
	s = scan_ok(p);
	b1 = cpu_ticks(clk, hz);
	atomic_store(&spin_stop, true);
	pthread_join(th, NULL);

	assert_false(is_kept(s, (uint32_t)getpid()));
	x = tick_of(s, (uint32_t)atomic_load(&spin_tid));
	got = x->ticks - spin_t0;
	/* /proc rounds to whole ticks at both ends and splits user/system time by sampling */
	slack = 2 + (b1 - a0) / 20;
	if (b0 - a1 < hz / 10)
		fail_msg(
		        "the spinner ran only %llu ticks in 1 s: the machine is too loaded to test",
		        (unsigned long long)(b0 - a1));
	if (got + slack < b0 - a1 || got > b1 - a0 + slack)
		fail_msg("spinning thread: %llu ticks reported, its CPU clock says %llu..%llu",
		         (unsigned long long)got, (unsigned long long)(b0 - a1),
		         (unsigned long long)(b1 - a0));
	x = tick_of(s, (uint32_t)getpid());
	if (x->ticks - leader_t0 > hz / 5)
		fail_msg("main thread gained %llu ticks while sleeping",
		         (unsigned long long)(x->ticks - leader_t0));
}

static void *sleeper_main(void *arg)
{
	for (;;)
		pause();
	return NULL;
}

/* Spins once a byte arrives on the fd. */
static void *waiter_main(void *arg)
{
	volatile uint64_t x = 0;
	char c;

	if (read(*(int *)arg, &c, 1) != 1)
		return NULL;
	for (;;)
		x++;
	return NULL;
}

/* A child with 3 sleeping threads and one waiting on a pipe; returns its pid, *ret_go the fd
 * that starts the waiter spinning. */
static pid_t start_child(int *ret_go)
{
	int go[2], ready[2];
	pthread_t th;
	pid_t pid;
	char c = 0;

	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(go[1]);
		for (int i = 0; i < 3; i++)
			pthread_create(&th, NULL, sleeper_main, NULL);
		pthread_create(&th, NULL, waiter_main, &go[0]);
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(go[0]);
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*ret_go = go[1];
	return pid;
}

static size_t count_of(const struct thread_scan *s, uint32_t pid)
{
	size_t n = 0;

	for (size_t i = 0; i < s->nticks; i++)
		n += s->ticks[i].tgid == pid;
	return n;
}

/* An idle child is kept (none of its threads read); once one of its threads spins the child is
 * read, all 5 threads, the spinner with the ticks. */
static void live_idle_child(struct procs *p)
{
	const struct thread_scan *s;
	const struct thread_tick *x;
	uint64_t most = 0;
	char c = 1;
	pid_t child;
	int go;

	child = start_child(&go);
	sleep_ms(50);
	s = scan_ok(p);
	assert_int_equal(count_of(s, (uint32_t)child), 5);
	x = tick_of(s, (uint32_t)child);
	sleep_ms(200);
	s = scan_ok(p);
	assert_true(is_kept(s, (uint32_t)child));
	assert_int_equal(count_of(s, (uint32_t)child), 0);
	assert_true(s->nprocs_read < s->nprocs);

	assert_int_equal(write(go, &c, 1), 1);
	sleep_ms(500);
	s = scan_ok(p);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	close(go);
	assert_false(is_kept(s, (uint32_t)child));
	assert_int_equal(count_of(s, (uint32_t)child), 5);
	for (size_t i = 0; i < s->nticks; i++) {
		if (s->ticks[i].tgid == (uint32_t)child && s->ticks[i].tid != (uint32_t)child &&
		    s->ticks[i].ticks > most)
			most = s->ticks[i].ticks;
	}
	if (most < (uint64_t)sysconf(_SC_CLK_TCK) / 5)
		fail_msg("no thread of the child gained ticks (most %llu)",
		         (unsigned long long)most);
	/* the leader sleeps: its own ticks, not the spinner's */
	x = tick_of(s, (uint32_t)child);
	assert_true(x->ticks < most);
}

static void test_live_libproc2(void **state)
{
	struct procs *p = procs_new();

	assert_non_null(p);
	live_spinner(p);
	live_idle_child(p);
	procs_free(p);
}

static void test_live_dir(void **state)
{
	struct procs *p = procs_new_dir("/proc");

	assert_non_null(p);
	live_spinner(p);
	live_idle_child(p);
	procs_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_first_scan_reads_all, setup,
	                                        faketree_teardown),
	        cmocka_unit_test_setup_teardown(test_idle_process_not_read, setup,
	                                        faketree_teardown),
	        cmocka_unit_test_setup_teardown(test_what_moves, setup, faketree_teardown),
	        cmocka_unit_test_setup_teardown(test_unreadable_tasks, setup, faketree_teardown),
	        cmocka_unit_test(test_missing_dir),
	        cmocka_unit_test(test_live_libproc2),
	        cmocka_unit_test(test_live_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
