/* libFuzzer target: conf_parse_file() (inih + line tracking + duplicate keys) and every typed
 * value parser of common/conf.c, on the values of a fuzzed INI file.
 *
 * Invariants: a key reaches the callback at most once per section; an error names the file and
 * a line that exists; an accepted file has no line longer than inih takes; an accepted value is
 * within the parser's range and reads back the same when printed in its canonical form. */
#include "fuzz.h"

#include <ini.h>
#include <math.h>

#include "conf.h"

struct seen {
	char (*keys)[2 * INI_MAX_LINE + 2];
	size_t n, cap;
};

static void parse_back_size(uint64_t kib)
{
	char buf[64], err[CONF_ERR_LEN];
	uint64_t again;

	snprintf(buf, sizeof(buf), "%lluK", (unsigned long long)kib);
	FUZZ_CHECK(conf_parse_size_kib(buf, &again, err, sizeof(err)) == 0 && again == kib,
	           "size %s does not read back: %s", buf, err);
}

static void check_values(const char *v)
{
	char err[CONF_ERR_LEN], buf[128];
	uint64_t u, lo, hi, hi2;
	double d;
	bool b;

	if (conf_parse_size_kib(v, &u, err, sizeof(err)) == 0) {
		FUZZ_CHECK(u <= 1000000000000000ull, "size '%s' = %llu KiB", v,
		           (unsigned long long)u);
		parse_back_size(u);
	}
	if (conf_parse_duration_ms(v, &u, err, sizeof(err)) == 0) {
		FUZZ_CHECK(u <= 1000000000000ull, "duration '%s' = %llu ms", v,
		           (unsigned long long)u);
		snprintf(buf, sizeof(buf), "%llums", (unsigned long long)u);
		FUZZ_CHECK(conf_parse_duration_ms(buf, &lo, err, sizeof(err)) == 0 && lo == u,
		           "duration %s does not read back", buf);
	}
	if (conf_parse_percent(v, 100, &d, err, sizeof(err)) == 0) {
		FUZZ_CHECK(isfinite(d) && d >= 0 && d <= 100, "percent '%s' = %g", v, d);
		snprintf(buf, sizeof(buf), "%.17g%%", d);
		FUZZ_CHECK(conf_parse_percent(buf, 100, &d, err, sizeof(err)) == 0,
		           "percent %s does not read back", buf);
	}
	if (conf_parse_double(v, 0.1, 64, &d, err, sizeof(err)) == 0)
		FUZZ_CHECK(d >= 0.1 && d <= 64, "double '%s' = %g", v, d);
	if (conf_parse_uint(v, 1, 4096, &u, err, sizeof(err)) == 0)
		FUZZ_CHECK(u >= 1 && u <= 4096, "uint '%s' = %llu", v, (unsigned long long)u);
	if (conf_parse_bool(v, &b, err, sizeof(err)) == 0)
		FUZZ_CHECK(conf_parse_bool(b ? "yes" : "no", &b, err, sizeof(err)) == 0, "bool");
	if (conf_parse_uint_range(v, 0, 4096, &lo, &hi, err, sizeof(err)) == 0) {
		FUZZ_CHECK(lo <= hi && hi <= 4096, "range '%s' = %llu..%llu", v,
		           (unsigned long long)lo, (unsigned long long)hi);
		snprintf(buf, sizeof(buf), "%llu..%llu", (unsigned long long)lo,
		         (unsigned long long)hi);
		FUZZ_CHECK(conf_parse_uint_range(buf, 0, 4096, &u, &hi2, err, sizeof(err)) == 0 &&
		                   u == lo && hi2 == hi,
		           "range %s does not read back", buf);
	}
	if (conf_parse_size_range_kib(v, &lo, &hi, err, sizeof(err)) == 0) {
		FUZZ_CHECK(lo <= hi, "size range '%s' = %llu..%llu", v, (unsigned long long)lo,
		           (unsigned long long)hi);
		parse_back_size(lo);
		parse_back_size(hi);
	}
}

static int on_key(void *user, const char *section, const char *key, const char *value, char *err,
                  size_t errlen)
{
	struct seen *s = user;
	char name[sizeof(*s->keys)];

	snprintf(name, sizeof(name), "%s\n%s", section, key);
	for (size_t i = 0; i < s->n; i++)
		FUZZ_CHECK(strcmp(s->keys[i], name) != 0, "'%s' in [%s] handed over twice", key,
		           section);
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->keys = realloc(s->keys, s->cap * sizeof(*s->keys));
		FUZZ_CHECK(s->keys != NULL, "out of memory");
	}
	memcpy(s->keys[s->n++], name, sizeof(name));
	check_values(value);
	/* a key named "fail..." is refused, to walk the callback-error path */
	if (strncmp(key, "fail", 4) == 0)
		return conf_fail(err, errlen, "refused '%s'", key);
	return 0;
}

/* Lines in the file; *ret_longest gets the longest, its newline included. */
static int count_lines(const uint8_t *data, size_t size, size_t *ret_longest)
{
	size_t run = 0;
	int lines = 0;

	*ret_longest = 0;
	for (size_t i = 0; i < size; i++) {
		run++;
		if (data[i] == '\n' || i + 1 == size) {
			lines++;
			*ret_longest = run > *ret_longest ? run : *ret_longest;
			run = 0;
		}
	}
	return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[300];
	char err[512];
	struct seen seen = {0};
	size_t longest;
	int r, line, lines;

	if (!path[0])
		snprintf(path, sizeof(path), "%s/fuzz.conf", fuzz_dir());
	fuzz_write(path, data, size);
	err[0] = '\0';
	r = conf_parse_file(path, on_key, &seen, err, sizeof(err));
	FUZZ_CHECK(r == 0 || r == -EINVAL, "conf_parse_file returned %d: %s", r, err);
	lines = count_lines(data, size, &longest);
	if (r < 0) {
		size_t n = strlen(path);

		FUZZ_CHECK(strncmp(err, path, n) == 0 && sscanf(err + n, ":%d:", &line) == 1,
		           "error without file:line: '%s'", err);
		FUZZ_CHECK(line >= 1 && line <= lines, "line %d of %d: '%s'", line, lines, err);
	} else {
		/* inih would have cut a longer one in two, silently */
		FUZZ_CHECK(longest <= INI_MAX_LINE - 1, "a line of %zu bytes accepted", longest);
	}
	free(seen.keys);
	return 0;
}
