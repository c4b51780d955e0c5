/* Decision log writer: JSON lines with wall-clock time, VM, action, reason, sizes before and
 * after, outcome. One write(2) per line on an O_APPEND fd, so lines never interleave. */
#include "declog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct declog {
	int fd;
};

struct declog *declog_open(const char *path)
{
	struct declog *dl = calloc(1, sizeof(*dl));

	if (!dl)
		return NULL;
	dl->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (dl->fd < 0) {
		int e = errno;

		free(dl);
		errno = e;
		return NULL;
	}
	return dl;
}

void declog_close(struct declog *dl)
{
	if (!dl)
		return;
	close(dl->fd);
	free(dl);
}

/* JSON string body: quotes, backslashes and control characters escaped */
static size_t escape(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	for (; *s && n + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
	return n;
}

void declog_write(struct declog *dl, const char *vm, const char *uuid, const struct decision *d,
                  const char *outcome, const char *detail)
{
	char line[2048], evm[600], etext[400], edetail[600];
	struct timespec ts;
	int n;

	if (!dl)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	escape(evm, sizeof(evm), vm);
	escape(etext, sizeof(etext), d->text);
	escape(edetail, sizeof(edetail), detail ? detail : "");
	n = snprintf(line, sizeof(line),
	             "{\"ts\":%lld.%03ld,\"vm\":\"%s\",\"uuid\":\"%s\",\"action\":\"%s\","
	             "\"reason\":\"%s\",\"vcpus\":[%u,%u],\"mem_kib\":[%llu,%llu],"
	             "\"clipped\":%s,\"saturated\":%s,\"text\":\"%s\",\"outcome\":\"%s\","
	             "\"detail\":\"%s\"}\n",
	             (long long)ts.tv_sec, ts.tv_nsec / 1000000, evm, uuid,
	             policy_action_name(d->action), policy_reason_name(d->reason), d->vcpus_from,
	             d->vcpus_to, (unsigned long long)d->mem_from_kib,
	             (unsigned long long)d->mem_to_kib, d->clipped ? "true" : "false",
	             d->saturated ? "true" : "false", etext, outcome, edetail);
	if (n > 0 && (size_t)n < sizeof(line) && write(dl->fd, line, (size_t)n) != n) {
		/* the log is best effort: a full disk must not stop scaling */
	}
}
