/* The integration tests' harness. CHECK: counts, reports where and why, and lets the run go on
 * so one failure does not hide the next; main() prints "N passed, N failed" at the end. Around
 * it: starting and stopping the daemons under test, the files they read, hostd's decision log
 * followed as it grows, and the test directory removed or its log shown at the end.
 * Header-only (static inline); the caller owns every buffer it passes. */
#ifndef VSCALE_TEST_CHECK_H
#define VSCALE_TEST_CHECK_H

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			passed++;                                                                  \
		} else {                                                                           \
			failed++;                                                                  \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
		}                                                                                  \
	} while (0)

/* The command the daemons under test run under, from VSCALE_TEST_WRAPPER (words split on
 * spaces), e.g. "valgrind --error-exitcode=99 --leak-check=full"; "" when unset. The ctest
 * entries labelled valgrind set it (tests/CMakeLists.txt). */
static inline const char *check_wrapper(void)
{
	const char *w = getenv("VSCALE_TEST_WRAPPER");

	return w ? w : "";
}

/* execl() for a daemon under test: runs bin with the arguments after arg0 (a NULL-terminated
 * list), under check_wrapper() when there is one. Returns only when the exec failed. */
static inline int check_execl(const char *bin, const char *arg0, ...)
{
	char *argv[64], *words = strdup(check_wrapper()), *save = NULL;
	const char *a;
	size_t n = 0;
	va_list ap;

	for (char *w = words ? strtok_r(words, " ", &save) : NULL; w && n < 32;
	     w = strtok_r(NULL, " ", &save))
		argv[n++] = w;
	argv[n] = (char *)(n ? bin : arg0);
	n++;
	va_start(ap, arg0);
	while ((a = va_arg(ap, const char *)) && n < 63)
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	return argv[0] == (char *)arg0 ? execv(bin, argv) : execvp(argv[0], argv);
}

/* Stops a daemon the test started: SIGTERM, up to 5 s (30 s under a wrapper: valgrind checks
 * for leaks at exit), then SIGKILL. Returns its exit status, 128 + signal, or -1 when it had to
 * be killed. */
static inline int stop_child(pid_t pid)
{
	int status = 0, tries = *check_wrapper() ? 300 : 50;

	kill(pid, SIGTERM);
	for (int i = 0; i < tries; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* Writes text to path, or ends the test run (exit 2: the harness is broken, not the code). */
static inline void check_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

/* Starts "bin --config conf" (under check_wrapper()) with its stderr appended to log_path. */
static inline pid_t check_start_daemon(const char *bin, const char *conf, const char *log_path)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(fd, 2);
		check_execl(bin, bin, "--config", conf, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* The string value of "key":"..." in one of hostd's decision-log lines ("" when absent; no
 * escapes: the tests' names have none). */
static inline void check_json_str(const char *line, const char *key, char *out, size_t cap)
{
	char pat[32];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	out[0] = '\0';
	p = strstr(line, pat);
	if (!p)
		return;
	for (p += strlen(pat); *p && *p != '"' && n + 1 < cap; p++)
		out[n++] = *p;
	out[n] = '\0';
}

/* Wall-clock seconds: the unit of the decision log's "ts". */
static inline double check_now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes dir/node.xml for libvirt's test driver: a host of 8 CPUs and 32 GiB with one balloon
 * domain per name (<memory> 4 GiB is the ceiling; they start at 2 GiB and 1 of 4 vCPUs) whose
 * vscale channel is the unix socket dir/NAME.sock. Domain i's UUID is
 * UUID8-0000-0000-0000-00000000000i (UUID8: 8 hex digits, the test's own). */
static inline void check_write_node(const char *dir, const char *const *names, int n,
                                    const char *uuid8)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/node.xml", dir);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(2);
	}
	fprintf(f, "<node><cpu><mhz>2000</mhz><model>x86_64</model><active>8</active><max>8</max>"
	           "<nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1</threads>"
	           "</cpu><memory>33554432</memory>\n");
	for (int i = 0; i < n; i++)
		fprintf(f,
		        "<domain type='test'><name>%s</name>"
		        "<uuid>%s-0000-0000-0000-00000000000%d</uuid>"
		        "<memory unit='KiB'>4194304</memory>"
		        "<currentMemory unit='KiB'>2097152</currentMemory>"
		        "<vcpu current='1'>4</vcpu><os><type arch='x86_64'>hvm</type></os>"
		        "<devices><channel type='unix'><source mode='bind' path='%s/%s.sock'/>"
		        "<target type='virtio' name='org.vscale.agent.0'/></channel>"
		        "<memballoon model='virtio'/></devices></domain>\n",
		        names[i], uuid8, i, dir, names[i]);
	fputs("</node>\n", f);
	fclose(f);
}

/* One line of hostd's decision log: the fields the tests read (0 / "" when absent). */
struct check_entry {
	double ts;
	char vm[32], action[16], reason[16], outcome[16];
	unsigned tid; /* of a saturated hold: the sample's hot thread */
	unsigned v0, v1;
	unsigned long long m0, m1;
};

/* hostd's decision log followed as it grows, into the caller's entries[cap]. */
struct check_declog {
	const char *path;
	struct check_entry *entries;
	int n, cap;
	long off; /* where the next line starts */
	/* called once for each new entry (NULL: nothing): what the test's fake guests see of a
	 * decision, e.g. MemTotal growing after a mem-up, as a real guest's would */
	void (*apply)(const struct check_entry *e);
};

static inline void check_declog_parse(const char *line, struct check_entry *e)
{
	const char *p;

	sscanf(line, "{\"ts\":%lf", &e->ts);
	check_json_str(line, "vm", e->vm, sizeof(e->vm));
	check_json_str(line, "action", e->action, sizeof(e->action));
	check_json_str(line, "reason", e->reason, sizeof(e->reason));
	check_json_str(line, "outcome", e->outcome, sizeof(e->outcome));
	if ((p = strstr(line, "\"vcpus\":[")))
		sscanf(p, "\"vcpus\":[%u,%u]", &e->v0, &e->v1);
	if ((p = strstr(line, "\"mem_kib\":[")))
		sscanf(p, "\"mem_kib\":[%llu,%llu]", &e->m0, &e->m1);
	if ((p = strstr(line, "(tid ")))
		sscanf(p, "(tid %u)", &e->tid);
}

/* Reads the decision-log lines written since the last call (none when the log does not exist
 * yet) until entries[] is full, calling d->apply on each. */
static inline void check_declog_follow(struct check_declog *d)
{
	FILE *f = fopen(d->path, "r");
	char line[4096];

	if (!f)
		return;
	fseek(f, d->off, SEEK_SET);
	/* hostd may be writing the last line as we read: take complete lines only, and read a
	 * torn one again next time (CI lost a decision to this) */
	while (d->n < d->cap && fgets(line, sizeof(line), f) && strchr(line, '\n')) {
		struct check_entry *e = &d->entries[d->n++];

		check_declog_parse(line, e);
		if (d->apply)
			d->apply(e);
		d->off = ftell(f);
	}
	fclose(f);
}

/* The end of a run: when a check failed, the last log_lines of dir/hostd.log on stderr and dir
 * kept for a look; otherwise dir removed. */
static inline void check_finish(const char *dir, int log_lines)
{
	char cmd[400];

	if (failed) {
		snprintf(cmd, sizeof(cmd), "tail -n %d %s/hostd.log >&2", log_lines, dir);
		if (system(cmd) != 0)
			fprintf(stderr, "(no hostd log)\n");
	} else {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
}

#endif
