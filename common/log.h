/* The one logger. Writes "<N>message" lines to stderr (journald reads the priority prefix) or
 * plain lines with a level name when stderr is a terminal. */
#ifndef VSCALE_LOG_H
#define VSCALE_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

void log_set_level(enum log_level lvl);
/* "err", "warn", "info", "debug"; returns -EINVAL for anything else. */
int log_parse_level(const char *s, enum log_level *ret);
void log_set_ident(const char *ident);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* Token bucket for rate-limited warnings: at most `burst` messages, refilled one per
 * `interval_ms`. Returns true when the caller may log; counts what it suppressed. */
struct log_ratelimit {
	unsigned burst;
	unsigned interval_ms;
	unsigned tokens;
	unsigned long long last_ms;
	unsigned long long suppressed;
};
bool log_ratelimit_ok(struct log_ratelimit *rl, unsigned long long now_ms);

#endif
