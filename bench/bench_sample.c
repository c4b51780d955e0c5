/* What one sample costs: a child process holds N threads (K of them spinning with --busy K, the
 * rest sleeping), then the collector on the live system is timed (median and p95 per sample, per
 * thread on the machine), the two-phase thread scan is timed alone with each phase's cost and
 * how many processes and threads it read (libproc2 and the plain /proc parser; warm, i.e. idle
 * processes kept, and cold, i.e. every process read as on a first scan), and optionally a real
 * vscale-guestd is run for a few seconds to read its resident memory. Prints figures; asserts
 * nothing. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "collect.h"
#include "procs.h"
#include "threads.h"
#include "util.h"

#define THREAD_STACK (64 * 1024)

struct stats {
	double median_us, p95_us;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static struct stats stats_of(double *us, unsigned n)
{
	struct stats s;
	unsigned p95 = n * 95 / 100;

	qsort(us, n, sizeof(*us), cmp_double);
	s.median_us = n % 2 ? us[n / 2] : (us[n / 2 - 1] + us[n / 2]) / 2;
	s.p95_us = us[p95 < n ? p95 : n - 1];
	return s;
}

static void *sleeper(void *arg)
{
	for (;;)
		pause();
	return NULL;
}

static void *spinner(void *arg)
{
	volatile uint64_t x = 0;

	for (;;)
		x++;
	return NULL;
}

/* Child: start n threads, the first `busy` of them spinning, report how many started on fd,
 * then sleep until killed. */
static void child_main(unsigned n, unsigned busy, int fd)
{
	pthread_attr_t attr;
	unsigned started = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	for (; started < n; started++) {
		pthread_t t;

		if (pthread_create(&t, &attr, started < busy ? spinner : sleeper, NULL) != 0)
			break;
	}
	if (write(fd, &started, sizeof(started)) != sizeof(started))
		_exit(1);
	for (;;)
		pause();
}

static pid_t start_threads(unsigned n, unsigned busy, unsigned *ret_started)
{
	struct pollfd pfd;
	int fds[2];
	pid_t pid;

	if (pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		child_main(n, busy, fds[1]);
	}
	close(fds[1]);
	pfd = (struct pollfd){.fd = fds[0], .events = POLLIN};
	if (pid < 0 || poll(&pfd, 1, 60000) != 1 ||
	    read(fds[0], ret_started, sizeof(*ret_started)) != sizeof(*ret_started)) {
		if (pid > 0)
			kill(pid, SIGKILL);
		close(fds[0]);
		return -1;
	}
	close(fds[0]);
	return pid;
}

static void print_line(const char *what, struct stats s, int nthreads)
{
	printf("%-20s median %8.1f us, p95 %8.1f us", what, s.median_us, s.p95_us);
	if (nthreads > 0)
		printf(", %5.2f us/thread (%d threads)", s.median_us / nthreads, nthreads);
	putchar('\n');
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0)
		;
}

/* Times collect_sample() on the live system; pace_ms: the time between samples (0: back to
 * back, which keeps caches warm and gives processes no time to move). */
static struct stats time_samples(bool threads, unsigned pace_ms, unsigned iters, double *us)
{
	struct collect_opts o;
	struct collector *c;
	struct sample s;

	collect_opts_default(&o);
	o.scan_threads = threads;
	c = collect_new("/", &o);
	if (!c) {
		fprintf(stderr, "bench_sample: collect_new: %s\n", strerror(errno));
		exit(1);
	}
	collect_sample(c, util_now_ms(), &s); /* warm up: maps sized, caches hot */
	for (unsigned i = 0; i < iters; i++) {
		uint64_t t0;

		if (pace_ms)
			sleep_ms(pace_ms);
		t0 = util_now_us();
		collect_sample(c, util_now_ms(), &s);
		us[i] = (double)(util_now_us() - t0);
	}
	collect_free(c);
	return stats_of(us, iters);
}

static struct procs *new_source(bool libproc2)
{
	struct procs *p = libproc2 ? procs_new() : procs_new_dir("/proc");

	if (!p) {
		fprintf(stderr, "bench_sample: thread source: %s\n", strerror(errno));
		exit(1);
	}
	return p;
}

struct scan_figures {
	struct stats total, procs, threads;    /* both phases, phase 1, phase 2 */
	struct stats procs_read, threads_read; /* phase 2's reads per scan */
	size_t nprocs, nkept, nticks;          /* of the last scan */
};

/* Times the two-phase scan; cold: a new source each time, so every process is read; pace_ms:
 * the time between scans (0: back to back, so hardly any process moves in between). */
static void time_scan(bool libproc2, bool cold, unsigned pace_ms, unsigned iters,
                      struct scan_figures *ret)
{
	double *v = calloc((size_t)iters * 5, sizeof(*v));
	struct procs *p = new_source(libproc2);
	const struct thread_scan *s = NULL;

	if (!v)
		exit(1);
	for (unsigned i = 0; i <= iters; i++) {
		uint64_t t0;
		int r;

		if (cold && i > 0) {
			procs_free(p);
			p = new_source(libproc2);
		}
		if (pace_ms && i > 0)
			sleep_ms(pace_ms);
		t0 = util_now_us();
		r = procs_scan(p, &s);
		if (r < 0) {
			fprintf(stderr, "bench_sample: scan: %s\n", strerror(-r));
			exit(1);
		}
		if (i == 0)
			continue; /* sizes the arrays, and for a warm scan gives the baseline */
		v[i - 1] = (double)(util_now_us() - t0);
		v[iters + i - 1] = (double)s->procs_us;
		v[2 * iters + i - 1] = (double)s->threads_us;
		v[3 * iters + i - 1] = (double)s->nprocs_read;
		v[4 * iters + i - 1] = (double)s->nthreads_read;
	}
	ret->nprocs = s->nprocs;
	ret->nkept = s->nkept;
	ret->nticks = s->nticks;
	ret->total = stats_of(v, iters);
	ret->procs = stats_of(v + iters, iters);
	ret->threads = stats_of(v + 2 * iters, iters);
	ret->procs_read = stats_of(v + 3 * iters, iters);
	ret->threads_read = stats_of(v + 4 * iters, iters);
	procs_free(p);
	free(v);
}

static void print_scan(const char *what, const struct scan_figures *f, size_t machine_threads)
{
	printf("%-26s median %8.1f us, p95 %8.1f us, %5.2f us/thread on the machine\n", what,
	       f->total.median_us, f->total.p95_us, f->total.median_us / (double)machine_threads);
	printf("  phase 1, processes:     median %8.1f us, p95 %8.1f us, %zu processes (last scan: "
	       "%zu kept)\n",
	       f->procs.median_us, f->procs.p95_us, f->nprocs, f->nkept);
	printf("  phase 2, their threads: median %8.1f us, p95 %8.1f us; per scan %.0f processes, "
	       "%.0f threads read (median; p95 %.0f, %.0f)",
	       f->threads.median_us, f->threads.p95_us, f->procs_read.median_us,
	       f->threads_read.median_us, f->procs_read.p95_us, f->threads_read.p95_us);
	if (f->threads_read.median_us > 0)
		printf(", %.2f us/thread read", f->threads.median_us / f->threads_read.median_us);
	putchar('\n');
}

static struct stats time_update(unsigned iters, double *us)
{
	struct procs *p = new_source(true);
	struct threads *t = threads_new((unsigned)sysconf(_SC_CLK_TCK), 95, 3, 50);
	const struct thread_scan *scan;
	struct sample s;

	if (!t || procs_scan(p, &scan) < 0) {
		fprintf(stderr, "bench_sample: thread source: %s\n", strerror(errno));
		exit(1);
	}
	threads_update(t, scan, 0, -1, 2, 5, &s);
	if (procs_scan(p, &scan) < 0) /* the steady state: idle processes kept */
		exit(1);
	for (unsigned i = 0; i < iters; i++) {
		uint64_t t0 = util_now_us();

		memset(&s, 0, sizeof(s));
		threads_update(t, scan, (i + 1) * 1000ull, -1, 2, 5, &s);
		us[i] = (double)(util_now_us() - t0);
	}
	threads_free(t);
	procs_free(p);
	return stats_of(us, iters);
}

/* "Key:   123 kB" from /proc/<pid>/<file>. */
static long proc_kib(pid_t pid, const char *file, const char *key)
{
	char path[64], buf[4096], *p;
	size_t klen = strlen(key);

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	if (util_read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, key, klen) == 0 && p[klen] == ':')
			return strtol(p + klen + 1, NULL, 10);
	}
	return -1;
}

static void print_tail(const char *path)
{
	char buf[1024];

	if (util_read_file(path, buf, sizeof(buf)) > 0)
		printf("  its stderr: %s%s", buf, buf[strlen(buf) - 1] == '\n' ? "" : "\n");
}

/* Nanoseconds pid has run on a CPU (first field of /proc/<pid>/schedstat), or -1. */
static double proc_cpu_ns(pid_t pid)
{
	char path[64], buf[128];

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	if (util_read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	return strtod(buf, NULL);
}

/* Runs guestd for 3 s with no host listening and reports its memory, and the CPU it used per
 * sample over its last 2 s (10 samples 200 ms apart: processes move as in real use). */
static void measure_guestd(const char *exe)
{
	/* RssFile is mostly shared libraries; Pss splits shared pages among their users */
	static const char *keys[] = {"VmRSS", "VmHWM", "RssAnon", "RssFile", "Pss"};
	char sock[64], errlog[64];
	double cpu0, cpu1;
	int status;
	pid_t pid;

	snprintf(sock, sizeof(sock), "/tmp/vscale-bench-%d.sock", (int)getpid());
	snprintf(errlog, sizeof(errlog), "/tmp/vscale-bench-%d.log", (int)getpid());
	printf("guestd: %s --device %s --interval 200ms (3 s, no host)\n", exe, sock);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
		}
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(exe, exe, "--device", sock, "--interval", "200ms", (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	if (pid < 0) {
		printf("  fork: %s\n", strerror(errno));
		return;
	}
	sleep(1);
	cpu0 = proc_cpu_ns(pid);
	sleep(2);
	cpu1 = proc_cpu_ns(pid);
	if (waitpid(pid, &status, WNOHANG) == pid) {
		printf("  NOTE: guestd exited within 3 s (status %d): options differ or it failed to "
		       "start; no memory figures\n",
		       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		print_tail(errlog);
		goto out_unlink;
	}
	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		long kib = proc_kib(pid, i < 4 ? "status" : "smaps_rollup", keys[i]);

		if (kib >= 0)
			printf("  %-8s %7ld KiB = %6.2f MiB\n", keys[i], kib, kib / 1024.0);
	}
	if (cpu0 >= 0 && cpu1 >= cpu0)
		printf("  CPU      %7.1f us per sample (whole daemon, schedstat over 10 samples)\n",
		       (cpu1 - cpu0) / 1000.0 / 10);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
out_unlink:
	unlink(sock);
	unlink(errlog);
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: bench_sample [--threads N] [--busy K] [--iterations I] [--paced P] "
	        "[--guestd PATH]\n"
	        "  --busy K   K of the N threads spin (default 0)\n"
	        "  --paced P  P more scans 1 s apart, as the daemon runs them (default 5)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned nthreads = 1000, busy = 0, iters = 200, paced = 5, started = 0;
	const char *guestd = NULL;
	struct scan_figures f;
	size_t machine;
	struct stats s;
	double *us;
	pid_t child;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--threads") == 0)
			nthreads = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--busy") == 0)
			busy = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--paced") == 0)
			paced = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--iterations") == 0)
			iters = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--guestd") == 0)
			guestd = argv[++i];
		else
			usage();
	}
	if (iters == 0 || busy > nthreads)
		usage();
	us = calloc(iters > paced ? iters : paced, sizeof(*us));
	if (!us)
		return 1;

	printf("bench_sample: %u threads in one process (%u spinning), %u iterations:", nthreads,
	       busy, iters);
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	putchar('\n');
	child = start_threads(nthreads, busy, &started);
	if (child < 0) {
		fprintf(stderr, "bench_sample: could not start the threads\n");
		return 1;
	}
	if (started < nthreads)
		printf("note: only %u of %u threads started\n", started, nthreads);

	time_scan(true, true, 0, 5, &f);
	machine = f.nticks;
	printf("threads on the machine: %zu, processes: %zu\n", machine, f.nprocs);
	s = time_samples(true, 0, iters, us);
	printf("sample cost: median %.1f us, p95 %.1f us, %.2f us/thread (%zu threads)\n",
	       s.median_us, s.p95_us, s.median_us / (double)machine, machine);
	if (paced) {
		s = time_samples(true, 1000, paced, us);
		printf("sample cost, 1 s apart: median %.1f us, p95 %.1f us, %.2f us/thread (%u "
		       "samples)\n",
		       s.median_us, s.p95_us, s.median_us / (double)machine, paced);
	}
	print_line("sample w/o threads:", time_samples(false, 0, iters, us), 0);
	time_scan(true, false, 0, iters, &f);
	print_scan("scan libproc2:", &f, machine);
	time_scan(false, false, 0, iters, &f);
	print_scan("scan dir /proc:", &f, machine);
	if (paced) {
		time_scan(true, false, 1000, paced, &f);
		print_scan("scan libproc2, 1 s apart:", &f, machine);
		time_scan(false, false, 1000, paced, &f);
		print_scan("scan dir /proc, 1 s apart:", &f, machine);
	}
	time_scan(true, true, 0, iters < 50 ? iters : 50, &f);
	print_scan("scan libproc2, cold:", &f, machine);
	time_scan(false, true, 0, iters < 50 ? iters : 50, &f);
	print_scan("scan dir /proc, cold:", &f, machine);
	print_line("threads_update:", time_update(iters, us), (int)machine);

	if (guestd)
		measure_guestd(guestd); /* while the threads still exist: the daemon scans them */
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	free(us);
	return 0;
}
