/* What one sample costs: a child process holds N sleeping threads, then the collector on the live
 * system is timed (median and p95 per sample, per thread scanned), the two thread sources are
 * timed alone (libproc2 vs the plain /proc parser), and optionally a real vscale-guestd is run
 * for a few seconds to read its resident memory. Prints figures; asserts nothing. */
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
#include <unistd.h>

#include <libproc2/pids.h>

#include "collect.h"
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

/* Child: start n sleeping threads, report how many started on fd, then sleep until killed. */
static void child_main(unsigned n, int fd)
{
	pthread_attr_t attr;
	unsigned started = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	for (; started < n; started++) {
		pthread_t t;

		if (pthread_create(&t, &attr, sleeper, NULL) != 0)
			break;
	}
	if (write(fd, &started, sizeof(started)) != sizeof(started))
		_exit(1);
	for (;;)
		pause();
}

static pid_t start_sleepers(unsigned n, unsigned *ret_started)
{
	struct pollfd pfd;
	int fds[2];
	pid_t pid;

	if (pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		child_main(n, fds[1]);
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

static struct stats time_samples(bool threads, unsigned iters, double *us)
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
		uint64_t t0 = util_now_us();

		collect_sample(c, util_now_ms(), &s);
		us[i] = (double)(util_now_us() - t0);
	}
	collect_free(c);
	return stats_of(us, iters);
}

/* Times one thread source; returns the thread count of the last scan. */
static int time_scan(struct thread_source *src, unsigned iters, double *us, struct stats *ret)
{
	struct thread_tick *ticks = NULL;
	size_t cap = 0;
	int n = 0;

	for (unsigned i = 0; i <= iters; i++) {
		uint64_t t0 = util_now_us();

		n = src ? threads_scan_libproc2(src, &ticks, &cap)
		        : threads_scan_dir("/proc", &ticks, &cap);
		if (i > 0) /* the first one sizes the array */
			us[i - 1] = (double)(util_now_us() - t0);
		if (n < 0) {
			fprintf(stderr, "bench_sample: scan: %s\n", strerror(-n));
			exit(1);
		}
	}
	free(ticks);
	*ret = stats_of(us, iters);
	return n;
}

static struct stats time_update(unsigned iters, double *us)
{
	struct thread_source *src = threads_source_new();
	struct threads *t = threads_new((unsigned)sysconf(_SC_CLK_TCK), 95, 3, 50);
	struct thread_tick *ticks = NULL;
	size_t cap = 0;
	struct sample s;
	int n;

	if (!src || !t || (n = threads_scan_libproc2(src, &ticks, &cap)) < 0) {
		fprintf(stderr, "bench_sample: thread source: %s\n", strerror(errno));
		exit(1);
	}
	threads_update(t, ticks, (size_t)n, 0, -1, 2, 5, &s);
	for (unsigned i = 0; i < iters; i++) {
		uint64_t t0 = util_now_us();

		memset(&s, 0, sizeof(s));
		threads_update(t, ticks, (size_t)n, (i + 1) * 1000ull, -1, 2, 5, &s);
		us[i] = (double)(util_now_us() - t0);
	}
	free(ticks);
	threads_free(t);
	threads_source_free(src);
	return stats_of(us, iters);
}

/* "Key:   123 kB" from /proc/<pid>/<file>. */
/* What a scan that skips the threads of idle processes would start from: one stat file per
 * process (libproc2, tasks only). Returns the process count. */
static int time_reap_processes(unsigned iters, double *us, struct stats *ret)
{
	enum pids_item items[] = {PIDS_ID_TID, PIDS_NLWP, PIDS_TICS_ALL};
	struct pids_info *info = NULL;
	struct pids_fetch *f = NULL;
	int n;

	if (procps_pids_new(&info, items, 3) < 0) {
		fprintf(stderr, "bench_sample: procps_pids_new failed\n");
		exit(1);
	}
	for (unsigned i = 0; i <= iters; i++) {
		uint64_t t0 = util_now_us();

		f = procps_pids_reap(info, PIDS_FETCH_TASKS_ONLY);
		if (i > 0)
			us[i - 1] = (double)(util_now_us() - t0);
		if (!f) {
			fprintf(stderr, "bench_sample: procps_pids_reap failed\n");
			exit(1);
		}
	}
	*ret = stats_of(us, iters);
	n = f->counts->total;
	procps_pids_unref(&info);
	return n;
}

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

/* Runs guestd for 3 s with no host listening and reports its memory. */
static void measure_guestd(const char *exe)
{
	/* RssFile is mostly shared libraries; Pss splits shared pages among their users */
	static const char *keys[] = {"VmRSS", "VmHWM", "RssAnon", "RssFile", "Pss"};
	char sock[64], errlog[64];
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
	sleep(3);
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
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
out_unlink:
	unlink(sock);
	unlink(errlog);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_sample [--threads N] [--iterations K] [--guestd PATH]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned nthreads = 1000, iters = 200, started = 0;
	const char *guestd = NULL;
	struct thread_source *src;
	struct stats s;
	double *us;
	pid_t child;
	int n;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--threads") == 0)
			nthreads = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--iterations") == 0)
			iters = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--guestd") == 0)
			guestd = argv[++i];
		else
			usage();
	}
	if (iters == 0)
		usage();
	us = calloc(iters, sizeof(*us));
	if (!us)
		return 1;

	printf("bench_sample: %u sleeping threads, %u iterations:", nthreads, iters);
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	putchar('\n');
	child = start_sleepers(nthreads, &started);
	if (child < 0) {
		fprintf(stderr, "bench_sample: could not start the sleeping threads\n");
		return 1;
	}
	if (started < nthreads)
		printf("note: only %u of %u threads started\n", started, nthreads);

	src = threads_source_new();
	if (!src) {
		fprintf(stderr, "bench_sample: threads_source_new: %s\n", strerror(errno));
		return 1;
	}
	n = time_scan(src, iters, us, &s);
	printf("threads on the machine: %d\n", n);
	s = time_samples(true, iters, us);
	printf("sample cost: median %.1f us, p95 %.1f us, %.2f us/thread (%d threads)\n",
	       s.median_us, s.p95_us, s.median_us / n, n);
	print_line("sample w/o threads:", time_samples(false, iters, us), 0);
	n = time_scan(src, iters, us, &s);
	print_line("scan libproc2:", s, n);
	n = time_scan(NULL, iters, us, &s);
	print_line("scan dir /proc:", s, n);
	print_line("threads_update:", time_update(iters, us), n);
	n = time_reap_processes(iters, us, &s);
	printf("%-20s median %8.1f us, p95 %8.1f us, %5.2f us/process (%d processes)\n",
	       "libproc2 procs only:", s.median_us, s.p95_us, s.median_us / n, n);
	threads_source_free(src);

	if (guestd)
		measure_guestd(guestd); /* while the sleepers still exist: the daemon scans them */
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	free(us);
	return 0;
}
