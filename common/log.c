/* The one logger: "<N>message" to stderr, which journald turns into priorities, or
 * "ident[level]: message" when stderr is a terminal. Plus a token bucket for noisy warnings. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum log_level max_level = LOG_LVL_INFO;
static const char *ident = "vscale";

void log_set_level(enum log_level lvl)
{
	max_level = lvl;
}

void log_set_ident(const char *s)
{
	ident = s;
}

int log_parse_level(const char *s, enum log_level *ret)
{
	static const struct {
		const char *name;
		enum log_level lvl;
	} names[] = {{"err", LOG_LVL_ERR},      {"error", LOG_LVL_ERR}, {"warn", LOG_LVL_WARN},
	             {"warning", LOG_LVL_WARN}, {"info", LOG_LVL_INFO}, {"debug", LOG_LVL_DEBUG}};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*ret = names[i].lvl;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *level_name(enum log_level lvl)
{
	switch (lvl) {
	case LOG_LVL_ERR:
		return "error";
	case LOG_LVL_WARN:
		return "warning";
	case LOG_LVL_INFO:
		return "info";
	default:
		return "debug";
	}
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int saved = errno;

	if (lvl > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "%s[%s]: %s\n", ident, level_name(lvl), line);
	else
		fprintf(stderr, "<%d>%s\n", (int)lvl, line);
	errno = saved;
}

bool log_ratelimit_ok(struct log_ratelimit *rl, unsigned long long now_ms)
{
	if (rl->last_ms == 0) {
		rl->tokens = rl->burst;
		rl->last_ms = now_ms;
	}
	if (rl->interval_ms > 0 && now_ms > rl->last_ms) {
		unsigned long long refill = (now_ms - rl->last_ms) / rl->interval_ms;

		if (refill > 0) {
			rl->tokens =
			        refill >= rl->burst ? rl->burst : rl->tokens + (unsigned)refill;
			if (rl->tokens > rl->burst)
				rl->tokens = rl->burst;
			rl->last_ms += refill * rl->interval_ms;
		}
	}
	if (rl->tokens > 0) {
		rl->tokens--;
		return true;
	}
	rl->suppressed++;
	return false;
}
