/* vscale-guestd config: defaults, every key through the file, and each bad file reported as
 * "file:line: message". */
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

#include "gconf.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	FILE *f;
	int fd;

	strcpy(path, "/tmp/vscale-test-gconf-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_defaults(void **state)
{
	struct gconf c;
	char err[256];

	gconf_default(&c);
	assert_string_equal(c.root, "/");
	assert_int_equal(c.interval_ms, 1000);
	assert_true(c.hotplug);
	assert_true(c.collect.scan_threads);
	/* a missing default file is fine; a missing explicit one is not */
	assert_int_equal(gconf_load(&c, "/nonexistent/guest.conf", false, err, sizeof(err)), 0);
	assert_int_equal(gconf_load(&c, "/nonexistent/guest.conf", true, err, sizeof(err)),
	                 -ENOENT);
}

static void test_all_keys(void **state)
{
	struct gconf c;
	char err[256];
	char *p = write_tmp("[guestd]\n"
	                    "device = /tmp/x.sock\n"
	                    "root = /tmp/root\n"
	                    "interval = 250ms\n"
	                    "buffer = 10\n"
	                    "retry-max = 5s\n"
	                    "hotplug = no\n"
	                    "hold = 1m\n"
	                    "threads = off\n"
	                    "top-threads = 3\n"
	                    "saturation = 90%\n"
	                    "saturation-samples = 5\n"
	                    "rest-idle = 40%\n"
	                    "log-level = debug\n");

	gconf_default(&c);
	assert_int_equal(gconf_load(&c, p, true, err, sizeof(err)), 0);
	assert_string_equal(c.device, "/tmp/x.sock");
	assert_string_equal(c.root, "/tmp/root");
	assert_int_equal(c.interval_ms, 250);
	assert_int_equal(c.buffer_samples, 10);
	assert_int_equal(c.retry_max_ms, 5000);
	assert_false(c.hotplug);
	assert_int_equal(c.hold_ms, 60000);
	assert_false(c.collect.scan_threads);
	assert_int_equal(c.collect.top_threads, 3);
	assert_true(c.collect.saturation_pct == 90.0);
	assert_int_equal(c.collect.saturation_samples, 5);
	assert_true(c.collect.rest_idle_pct == 40.0);
	assert_int_equal(c.log_level, LOG_LVL_DEBUG);
	unlink(p);
}

static void expect_error(const char *text, const char *want)
{
	struct gconf c;
	char err[512], full[600];
	char *p = write_tmp(text);

	gconf_default(&c);
	assert_int_equal(gconf_load(&c, p, true, err, sizeof(err)), -EINVAL);
	snprintf(full, sizeof(full), "%s:%s", p, want);
	if (strcmp(err, full) != 0)
		fail_msg("got '%s', want '%s'", err, full);
	unlink(p);
}

static void test_bad_files(void **state)
{
	expect_error("[guestd]\nintervall = 1s\n", "2: unknown key 'intervall'");
	expect_error("[guestd]\ninterval = 0\n", "2: interval must be above 0");
	expect_error("[guestd]\ninterval = fast\n",
	             "2: 'fast' is not a duration (expected e.g. 500ms, 30s, 5m)");
	expect_error("[agent]\ninterval = 1s\n", "2: unknown section [agent] (expected [guestd])");
	expect_error("[guestd]\n\nbuffer = 0\n", "3: 0 is out of range 1..3600");
	expect_error("[guestd]\ntop-threads = 9\n", "2: 9 is out of range 0..8");
	expect_error("[guestd]\nsaturation = 120%\n", "2: 120% is above 100%");
	expect_error("[guestd]\nhotplug = sometimes\n",
	             "2: 'sometimes' is not a boolean (use yes or no)");
	expect_error("[guestd]\nlog-level = loud\n",
	             "2: 'loud' is not a log level (err, warn, info, debug)");
}

static void test_print_roundtrip(void **state)
{
	struct gconf a, b;
	char err[256];
	char path[] = "/tmp/vscale-test-gconf-print-XXXXXX";
	FILE *f;
	int fd = mkstemp(path);

	gconf_default(&a);
	assert_int_equal(gconf_set(&a, "interval", "750ms", err, sizeof(err)), 0);
	assert_int_equal(gconf_set(&a, "device", "/dev/vport1p1", err, sizeof(err)), 0);
	f = fdopen(fd, "w");
	gconf_print(&a, f);
	fclose(f);
	gconf_default(&b);
	assert_int_equal(gconf_load(&b, path, true, err, sizeof(err)), 0);
	assert_int_equal(b.interval_ms, 750);
	assert_string_equal(b.device, "/dev/vport1p1");
	assert_memory_equal(&a.collect, &b.collect, sizeof(a.collect));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_all_keys),
	        cmocka_unit_test(test_bad_files),
	        cmocka_unit_test(test_print_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
