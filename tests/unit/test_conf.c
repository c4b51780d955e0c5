/* Typed config values as tables (good input -> value, bad input -> error), and file parsing with
 * "file:line: message" errors for syntax errors, bad values and duplicate keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"

static void test_sizes(void **state)
{
	static const struct {
		const char *in;
		uint64_t kib;
	} good[] = {{"2G", 2097152}, {"512M", 524288},   {"1.5G", 1572864}, {"1024K", 1024},
	            {"4096", 4},     {"1T", 1073741824}, {"2GiB", 2097152}, {"2 gb", 2097152},
	            {"0", 0},        {"128MiB", 131072}};
	static const char *bad[] = {"", "G", "-1G", "2X", "abc", "1e400", "2G3", "..", "nan"};
	char err[CONF_ERR_LEN];
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(conf_parse_size_kib(good[i].in, &v, err, sizeof(err)), 0);
		assert_int_equal(v, good[i].kib);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 777;
		err[0] = '\0';
		assert_int_equal(conf_parse_size_kib(bad[i], &v, err, sizeof(err)), -EINVAL);
		assert_int_equal(v, 777);
		assert_true(strlen(err) > 0);
	}
}

static void test_durations(void **state)
{
	static const struct {
		const char *in;
		uint64_t ms;
	} good[] = {{"30s", 30000}, {"500ms", 500}, {"5m", 300000}, {"1h", 3600000},
	            {"2", 2000},    {"1.5s", 1500}, {"0", 0}};
	static const char *bad[] = {"", "s", "-5s", "5d", "5 parsecs"};
	char err[CONF_ERR_LEN];
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(conf_parse_duration_ms(good[i].in, &v, err, sizeof(err)), 0);
		assert_int_equal(v, good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(conf_parse_duration_ms(bad[i], &v, err, sizeof(err)), -EINVAL);
}

static void test_percent_bool_uint(void **state)
{
	char err[CONF_ERR_LEN];
	double d;
	uint64_t u;
	bool b;

	assert_int_equal(conf_parse_percent("80%", 100, &d, err, sizeof(err)), 0);
	assert_true(d == 80.0);
	assert_int_equal(conf_parse_percent("12.5", 100, &d, err, sizeof(err)), 0);
	assert_true(d == 12.5);
	assert_int_equal(conf_parse_percent("101%", 100, &d, err, sizeof(err)), -EINVAL);
	assert_int_equal(conf_parse_percent("80%%", 100, &d, err, sizeof(err)), -EINVAL);
	assert_int_equal(conf_parse_percent("-1%", 100, &d, err, sizeof(err)), -EINVAL);
	assert_int_equal(conf_parse_bool("Yes", &b, err, sizeof(err)), 0);
	assert_true(b);
	assert_int_equal(conf_parse_bool("off", &b, err, sizeof(err)), 0);
	assert_false(b);
	assert_int_equal(conf_parse_bool("maybe", &b, err, sizeof(err)), -EINVAL);
	assert_int_equal(conf_parse_uint("8", 1, 10, &u, err, sizeof(err)), 0);
	assert_int_equal(u, 8);
	assert_int_equal(conf_parse_uint("11", 1, 10, &u, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "out of range 1..10"));
	assert_int_equal(conf_parse_uint("3x", 1, 10, &u, err, sizeof(err)), -EINVAL);
	assert_int_equal(conf_parse_uint("-3", 0, 10, &u, err, sizeof(err)), -EINVAL);
	assert_int_equal(
	        conf_parse_uint("99999999999999999999999", 0, UINT64_MAX, &u, err, sizeof(err)),
	        -EINVAL);
	assert_int_equal(conf_parse_double("1.5", 1, 10, &d, err, sizeof(err)), 0);
	assert_int_equal(conf_parse_double("0.5", 1, 10, &d, err, sizeof(err)), -EINVAL);
}

static void test_ranges(void **state)
{
	char err[CONF_ERR_LEN];
	uint64_t lo, hi;

	assert_int_equal(conf_parse_uint_range("1..8", 1, 256, &lo, &hi, err, sizeof(err)), 0);
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 8);
	assert_int_equal(conf_parse_uint_range("4", 1, 256, &lo, &hi, err, sizeof(err)), 0);
	assert_int_equal(lo, 4);
	assert_int_equal(hi, 4);
	assert_int_equal(conf_parse_uint_range("8..1", 1, 256, &lo, &hi, err, sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "lower bound above upper bound"));
	assert_int_equal(conf_parse_uint_range("0..4", 1, 256, &lo, &hi, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(conf_parse_uint_range("1...4", 1, 256, &lo, &hi, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(conf_parse_size_range_kib("1G..16G", &lo, &hi, err, sizeof(err)), 0);
	assert_int_equal(lo, 1048576);
	assert_int_equal(hi, 16777216);
	assert_int_equal(conf_parse_size_range_kib("16G..1G", &lo, &hi, err, sizeof(err)), -EINVAL);
	assert_int_equal(conf_parse_size_range_kib("1G..lots", &lo, &hi, err, sizeof(err)),
	                 -EINVAL);
}

struct collected {
	int n;
	char last[128];
};

static int on_key(void *user, const char *section, const char *key, const char *value, char *err,
                  size_t errlen)
{
	struct collected *c = user;
	uint64_t v;

	if (strcmp(key, "size") == 0 && conf_parse_size_kib(value, &v, err, errlen) < 0)
		return -EINVAL;
	if (strcmp(key, "bad") == 0) {
		snprintf(err, errlen, "unknown key 'bad'");
		return -EINVAL;
	}
	c->n++;
	snprintf(c->last, sizeof(c->last), "%s.%s=%s", section, key, value);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void expect_error(const char *text, const char *want)
{
	char path[] = "/tmp/vscale-test-conf-XXXXXX";
	char err[512], full[600];
	struct collected c = {0};
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	write_file(path, text);
	assert_int_equal(conf_parse_file(path, on_key, &c, err, sizeof(err)), -EINVAL);
	snprintf(full, sizeof(full), "%s:%s", path, want);
	if (strcmp(err, full) != 0)
		fail_msg("got '%s', want '%s'", err, full);
	unlink(path);
}

static void test_file_errors(void **state)
{
	char path[] = "/tmp/vscale-test-conf-XXXXXX";
	char err[512];
	struct collected c = {0};
	int fd;

	expect_error("[a]\nsize = 2G\nsize2 = 1\nbad = 1\n", "4: unknown key 'bad'");
	expect_error("[a]\n\n# comment\nsize = 2Q\n",
	             "4: '2Q': unknown size unit (use K, M, G or T)");
	expect_error("[a]\nsize = 1G\nsize = 2G\n", "3: 'size' given twice in [a]");
	expect_error("[a]\nthis line has no equals sign\nbad = 1\n",
	             "2: syntax error (expected [section] or key = value)");
	expect_error("[a]\nsize = 1G\n[broken\n",
	             "3: syntax error (expected [section] or key = value)");

	fd = mkstemp(path);
	close(fd);
	write_file(path, "[a]\nsize = 1G\n[b]\nsize = 2G\nx = y ; inline comment\n");
	assert_int_equal(conf_parse_file(path, on_key, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.last, "b.x=y");
	unlink(path);
	assert_int_equal(conf_parse_file("/nonexistent/vscale.conf", on_key, &c, err, sizeof(err)),
	                 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/vscale.conf: No such file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sizes),
	        cmocka_unit_test(test_durations),
	        cmocka_unit_test(test_percent_bool_uint),
	        cmocka_unit_test(test_ranges),
	        cmocka_unit_test(test_file_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
