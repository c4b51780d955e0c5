/* Decision log writer: JSON lines with wall-clock time, VM, action, reason, sizes before and
 * after, outcome. One write(2) per line on an O_APPEND fd, so lines never interleave. */
#include "declog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* ---- reading it back: only our own flat lines, so a field finder is enough ---- */

/* the text after "key": in line, or NULL */
static const char *field(const char *line, const char *key)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	return p ? p + strlen(pat) : NULL;
}

static int get_str(const char *line, const char *key, char *out, size_t cap)
{
	const char *p = field(line, key);
	size_t n = 0;

	if (!p || *p++ != '"')
		return -EINVAL;
	for (; *p && *p != '"'; p++) {
		char c = *p;

		if (c == '\\') {
			p++;
			if (*p == 'u') {
				unsigned v;

				if (sscanf(p + 1, "%4x", &v) != 1)
					return -EINVAL;
				c = (char)v;
				p += 4;
			} else if (*p) {
				c = *p;
			} else {
				return -EINVAL;
			}
		}
		if (n + 1 < cap)
			out[n++] = c;
	}
	out[n] = '\0';
	return *p == '"' ? 0 : -EINVAL;
}

int declog_parse_line(const char *line, struct ctl_record *r)
{
	const char *p;
	double ts;
	unsigned long long a, b;

	memset(r, 0, sizeof(*r));
	if (!(p = field(line, "ts")) || sscanf(p, "%lf", &ts) != 1)
		return -EINVAL;
	r->time_ms = (uint64_t)(ts * 1000.0 + 0.5);
	if (get_str(line, "vm", r->vm, sizeof(r->vm)) < 0 ||
	    get_str(line, "uuid", r->uuid, sizeof(r->uuid)) < 0 ||
	    get_str(line, "action", r->action, sizeof(r->action)) < 0 ||
	    get_str(line, "reason", r->reason, sizeof(r->reason)) < 0 ||
	    get_str(line, "text", r->text, sizeof(r->text)) < 0 ||
	    get_str(line, "outcome", r->outcome, sizeof(r->outcome)) < 0 ||
	    get_str(line, "detail", r->detail, sizeof(r->detail)) < 0)
		return -EINVAL;
	if (!(p = field(line, "vcpus")) || sscanf(p, "[%llu,%llu]", &a, &b) != 2)
		return -EINVAL;
	r->vcpus_from = (uint32_t)a;
	r->vcpus_to = (uint32_t)b;
	if (!(p = field(line, "mem_kib")) || sscanf(p, "[%llu,%llu]", &a, &b) != 2)
		return -EINVAL;
	r->mem_from_kib = a;
	r->mem_to_kib = b;
	return 0;
}

int declog_read(const char *path, const char *uuid, struct ctl_record *ret, size_t max,
                size_t *ret_n)
{
	char pat[64], *buf, *end;
	struct stat st;
	size_t len, n = 0;
	off_t from;
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out_close;
	}
	len = (size_t)st.st_size < DECLOG_SCAN_MAX ? (size_t)st.st_size : DECLOG_SCAN_MAX;
	from = st.st_size - (off_t)len;
	buf = malloc(len + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out_close;
	}
	got = pread(fd, buf, len, from);
	if (got < 0) {
		r = -errno;
		goto out_free;
	}
	buf[got] = '\0';
	snprintf(pat, sizeof(pat), "\"uuid\":\"%s\"", uuid);
	/* newest first, from the end; a line cut by the scan window does not parse and is skipped
	 */
	end = buf + got;
	while (end > buf && n < max) {
		char *start = end - 1;

		while (start > buf && start[-1] != '\n')
			start--;
		*end = '\0';
		if (end > start && (!*uuid || strstr(start, pat)) &&
		    declog_parse_line(start, &ret[n]) == 0)
			n++;
		end = start > buf ? start - 1 : buf;
	}
	for (size_t i = 0; i < n / 2; i++) {
		struct ctl_record t = ret[i];

		ret[i] = ret[n - 1 - i];
		ret[n - 1 - i] = t;
	}
	*ret_n = n;
out_free:
	free(buf);
out_close:
	close(fd);
	return r;
}
