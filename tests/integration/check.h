/* The integration tests' assertion: counts, reports where and why, and lets the run go on so
 * one failure does not hide the next. main() prints "N passed, N failed" at the end. */
#ifndef VSCALE_TEST_CHECK_H
#define VSCALE_TEST_CHECK_H

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
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

#endif
