/* Config parsing: inih does the INI syntax, this file the typed values ("2G", "30s", "80%",
 * "1..8") and the "file:line: message" errors. Every config value in vscale goes through one of
 * these parsers. */
#include "conf.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

int conf_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Parses a non-negative decimal number with an optional fraction; *end gets the rest. */
static int parse_number(const char *s, double *ret, const char **end)
{
	char *e;
	double v;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!(*s >= '0' && *s <= '9') && *s != '.')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &e);
	if (errno || e == s || !isfinite(v) || v < 0)
		return -EINVAL;
	while (*e == ' ' || *e == '\t')
		e++;
	*ret = v;
	*end = e;
	return 0;
}

int conf_parse_size_kib(const char *s, uint64_t *ret_kib, char *err, size_t errlen)
{
	static const struct {
		const char *suffix;
		double kib;
	} units[] = {
	        {"", 1.0 / 1024},     {"b", 1.0 / 1024},    {"k", 1},         {"kb", 1},
	        {"kib", 1},           {"m", 1024},          {"mb", 1024},     {"mib", 1024},
	        {"g", 1048576},       {"gb", 1048576},      {"gib", 1048576}, {"t", 1073741824.0},
	        {"tb", 1073741824.0}, {"tib", 1073741824.0}};
	const char *end;
	double v;

	if (parse_number(s, &v, &end) < 0)
		return conf_fail(err, errlen, "'%s' is not a size (expected e.g. 512M, 2G)", s);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].suffix) == 0) {
			double kib = v * units[i].kib;

			if (kib > 1e15)
				return conf_fail(err, errlen, "size '%s' is too large", s);
			*ret_kib = (uint64_t)llround(kib);
			return 0;
		}
	}
	return conf_fail(err, errlen, "'%s': unknown size unit (use K, M, G or T)", s);
}

int conf_parse_duration_ms(const char *s, uint64_t *ret_ms, char *err, size_t errlen)
{
	static const struct {
		const char *suffix;
		double ms;
	} units[] = {{"", 1000},   {"ms", 1},      {"s", 1000},   {"sec", 1000},
	             {"m", 60000}, {"min", 60000}, {"h", 3600000}};
	const char *end;
	double v;

	if (parse_number(s, &v, &end) < 0)
		return conf_fail(err, errlen,
		                 "'%s' is not a duration (expected e.g. 500ms, 30s, 5m)", s);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].suffix) == 0) {
			double ms = v * units[i].ms;

			if (ms > 1e12)
				return conf_fail(err, errlen, "duration '%s' is too long", s);
			*ret_ms = (uint64_t)llround(ms);
			return 0;
		}
	}
	return conf_fail(err, errlen, "'%s': unknown duration unit (use ms, s, m or h)", s);
}

int conf_parse_percent(const char *s, double max_pct, double *ret_pct, char *err, size_t errlen)
{
	const char *end;
	double v;

	if (parse_number(s, &v, &end) < 0 || (strcmp(end, "%") != 0 && *end != '\0'))
		return conf_fail(err, errlen, "'%s' is not a percentage (expected e.g. 80%%)", s);
	if (v > max_pct)
		return conf_fail(err, errlen, "%s is above %g%%", s, max_pct);
	*ret_pct = v;
	return 0;
}

int conf_parse_double(const char *s, double min, double max, double *ret, char *err, size_t errlen)
{
	const char *end;
	double v;

	if (parse_number(s, &v, &end) < 0 || *end != '\0')
		return conf_fail(err, errlen, "'%s' is not a number", s);
	if (v < min || v > max)
		return conf_fail(err, errlen, "%s is out of range %g..%g", s, min, max);
	*ret = v;
	return 0;
}

int conf_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret, char *err,
                    size_t errlen)
{
	unsigned long long v;
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!(*s >= '0' && *s <= '9'))
		return conf_fail(err, errlen, "'%s' is not a whole number", s);
	errno = 0;
	v = strtoull(s, &e, 10);
	while (*e == ' ' || *e == '\t')
		e++;
	if (errno || *e != '\0')
		return conf_fail(err, errlen, "'%s' is not a whole number", s);
	if (v < min || v > max)
		return conf_fail(err, errlen, "%llu is out of range %llu..%llu", v,
		                 (unsigned long long)min, (unsigned long long)max);
	*ret = v;
	return 0;
}

int conf_parse_bool(const char *s, bool *ret, char *err, size_t errlen)
{
	static const char *yes[] = {"yes", "true", "on", "1"};
	static const char *no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return conf_fail(err, errlen, "'%s' is not a boolean (use yes or no)", s);
}

/* Splits "a..b" into two strings in caller buffers; a value without ".." is both ends. */
static int split_range(const char *s, char *lo, char *hi, size_t cap)
{
	const char *dots = strstr(s, "..");
	size_t n;

	if (!dots) {
		if (strlen(s) >= cap)
			return -EINVAL;
		strcpy(lo, s);
		strcpy(hi, s);
		return 0;
	}
	n = (size_t)(dots - s);
	if (n >= cap || strlen(dots + 2) >= cap)
		return -EINVAL;
	memcpy(lo, s, n);
	lo[n] = '\0';
	strcpy(hi, dots + 2);
	return 0;
}

int conf_parse_uint_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret_lo,
                          uint64_t *ret_hi, char *err, size_t errlen)
{
	char lo_s[64], hi_s[64], sub[CONF_ERR_LEN];
	uint64_t lo, hi;

	if (split_range(s, lo_s, hi_s, sizeof(lo_s)) < 0)
		return conf_fail(err, errlen, "'%s' is not a range (expected e.g. 1..8)", s);
	if (conf_parse_uint(lo_s, min, max, &lo, sub, sizeof(sub)) < 0 ||
	    conf_parse_uint(hi_s, min, max, &hi, sub, sizeof(sub)) < 0)
		return conf_fail(err, errlen, "range '%s': %s", s, sub);
	if (lo > hi)
		return conf_fail(err, errlen, "range '%s': lower bound above upper bound", s);
	*ret_lo = lo;
	*ret_hi = hi;
	return 0;
}

int conf_parse_size_range_kib(const char *s, uint64_t *ret_lo, uint64_t *ret_hi, char *err,
                              size_t errlen)
{
	char lo_s[64], hi_s[64], sub[CONF_ERR_LEN];
	uint64_t lo, hi;

	if (split_range(s, lo_s, hi_s, sizeof(lo_s)) < 0)
		return conf_fail(err, errlen, "'%s' is not a size range (expected e.g. 1G..16G)",
		                 s);
	if (conf_parse_size_kib(lo_s, &lo, sub, sizeof(sub)) < 0 ||
	    conf_parse_size_kib(hi_s, &hi, sub, sizeof(sub)) < 0)
		return conf_fail(err, errlen, "range '%s': %s", s, sub);
	if (lo > hi)
		return conf_fail(err, errlen, "range '%s': lower bound above upper bound", s);
	*ret_lo = lo;
	*ret_hi = hi;
	return 0;
}

/* ---- file parsing ---- */

struct seen_key {
	char *name; /* "section\nkey" */
};

struct parse_ctx {
	conf_key_fn fn;
	void *user;
	FILE *f;
	int line;      /* lines read so far: the line inih is handing to on_key() */
	int fail_line; /* line of the first on_key() failure */
	char msg[CONF_ERR_LEN];
	bool failed;
	struct seen_key *seen;
	size_t nseen, capseen;
	char *buf; /* read_line()'s getline() buffer */
	size_t cap;
	int long_line; /* line longer than inih takes: reading stopped there; 0 = none */
};

static int remember_key(struct parse_ctx *p, const char *section, const char *key)
{
	char *name;

	for (size_t i = 0; i < p->nseen; i++) {
		const char *nl = strchr(p->seen[i].name, '\n');

		if ((size_t)(nl - p->seen[i].name) == strlen(section) &&
		    strncmp(p->seen[i].name, section, strlen(section)) == 0 &&
		    strcmp(nl + 1, key) == 0)
			return -EEXIST;
	}
	if (p->nseen == p->capseen) {
		size_t cap = p->capseen ? p->capseen * 2 : 32;
		struct seen_key *n = realloc(p->seen, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->seen = n;
		p->capseen = cap;
	}
	if (asprintf(&name, "%s\n%s", section, key) < 0)
		return -ENOMEM;
	p->seen[p->nseen++].name = name;
	return 0;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
	struct parse_ctx *p = user;
	int r;

	if (p->failed)
		return 1; /* inih reports the first failing line; keep only that message */
	r = remember_key(p, section, key);
	if (r == -EEXIST)
		snprintf(p->msg, sizeof(p->msg), "'%s' given twice in [%s]", key, section);
	else if (r < 0)
		snprintf(p->msg, sizeof(p->msg), "out of memory");
	else if (value[0] == ';') /* "key =;x": --print-config writes "key = ;x", a comment */
		snprintf(p->msg, sizeof(p->msg), "%s: a value cannot start with ';'", key);
	else if (strlen(key) + strlen(value) + 3 > CONF_LINE_MAX) /* "key=value" fitted */
		snprintf(p->msg, sizeof(p->msg), "%s: \"%s = VALUE\" is longer than %d characters",
		         key, key, CONF_LINE_MAX);
	else if (p->fn(p->user, section, key, value, p->msg, sizeof(p->msg)) == 0)
		return 1;
	p->failed = true;
	p->fail_line = p->line;
	return 0;
	return 1;
}

_Static_assert(CONF_LINE_MAX == INI_MAX_LINE - 2, "conf.h: CONF_LINE_MAX is inih's line less 2");

/* fgets for inih that counts lines, so on_key() knows which line it is looking at. A line that
 * does not fit inih's buffer (num bytes, newline and NUL included) ends the file: inih would cut
 * it in two lines silently, keeping a truncated value (and --print-config, adding " = ", would
 * cut it elsewhere). */
static char *read_line(char *str, int num, void *stream)
{
	struct parse_ctx *p = stream;
	ssize_t n;

	if (p->long_line || num < 1)
		return NULL;
	n = getline(&p->buf, &p->cap, p->f);
	if (n < 0)
		return NULL;
	p->line++;
	if (n > num - 1) {
		p->long_line = p->line;
		return NULL;
	}
	memcpy(str, p->buf, (size_t)n + 1);
	return str;
}

int conf_parse_file(const char *path, conf_key_fn fn, void *user, char *err, size_t errlen)
{
	struct parse_ctx p = {.fn = fn, .user = user};
	FILE *f;
	int line, r = 0;

	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	p.f = f;
	line = ini_parse_stream(read_line, &p, on_key, &p);
	fclose(f);
	if (line != 0) {
		/* inih returns the first bad line; it may be a syntax error before our failure */
		bool ours = p.failed && p.fail_line <= line;

		snprintf(err, errlen, "%s:%d: %s", path, ours ? p.fail_line : line,
		         ours ? p.msg : "syntax error (expected [section] or key = value)");
		r = -EINVAL;
	} else if (p.long_line) { /* inih saw nothing after it: any error of its came before */
		snprintf(err, errlen, "%s:%d: line longer than %d characters", path, p.long_line,
		         CONF_LINE_MAX);
		r = -EINVAL;
	}
	for (size_t i = 0; i < p.nseen; i++)
		free(p.seen[i].name);
	free(p.seen);
	free(p.buf);
	return r;
}

int conf_parse_listen(const char *s, struct sockaddr_storage *ret, unsigned *ret_len, char *err,
                      size_t errlen)
{
	const struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
	                               .ai_socktype = SOCK_STREAM};
	const char *colon = strrchr(s, ':'), *host = s;
	struct addrinfo *ai;
	char buf[64];
	size_t hl;
	int r;

	if (!colon || colon == s || !colon[1])
		return conf_fail(err, errlen, "'%s' is not ADDRESS:PORT (like 127.0.0.1:9810)", s);
	hl = (size_t)(colon - s);
	if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']') {
		host++;
		hl -= 2;
	}
	if (hl >= sizeof(buf))
		return conf_fail(err, errlen, "'%s': address too long", s);
	memcpy(buf, host, hl);
	buf[hl] = '\0';
	r = getaddrinfo(buf, colon + 1, &hints, &ai);
	if (r != 0)
		return conf_fail(err, errlen, "'%s' is not ADDRESS:PORT with a numeric address: %s",
		                 s, gai_strerror(r));
	if (ret) {
		memcpy(ret, ai->ai_addr, ai->ai_addrlen);
		*ret_len = (unsigned)ai->ai_addrlen;
	}
	freeaddrinfo(ai);
	return 0;
}
