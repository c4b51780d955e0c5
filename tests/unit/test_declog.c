/* The decision log read back: what declog_write() wrote comes back from declog_read(), newest N
 * of one VM, oldest first, escapes undone, torn lines skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "declog.h"

static char path[64];

static struct decision dec(enum action a, uint32_t from, uint32_t to, const char *text)
{
	struct decision d = {.action = a,
	                     .reason = REASON_CPU_HIGH,
	                     .vcpus_from = from,
	                     .vcpus_to = to,
	                     .mem_from_kib = 1048576,
	                     .mem_to_kib = 1048576};

	snprintf(d.text, sizeof(d.text), "%s", text);
	return d;
}

static int setup(void **state)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/vscale-declog-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	return 0;
}

static void roundtrip(void **state)
{
	struct declog *dl = declog_open(path);
	struct ctl_record r[8];
	size_t n = 0;
	struct decision d;

	assert_non_null(dl);
	for (uint32_t i = 1; i <= 5; i++) {
		d = dec(ACTION_VCPU_UP, i, i + 1, "cpu \"91%\" >= 80%\\ for 10 s");
		declog_write(dl, "web\n1", "u-1", &d, "started", NULL);
		d = dec(ACTION_HOLD, 9, 9, "other");
		declog_write(dl, "db", "u-2", &d, "hold", "detail");
	}
	declog_close(dl);

	assert_int_equal(declog_read(path, "u-1", r, 3, &n), 0);
	assert_int_equal(n, 3);
	/* the newest three, oldest first */
	assert_int_equal(r[0].vcpus_from, 3);
	assert_int_equal(r[2].vcpus_from, 5);
	assert_int_equal(r[2].vcpus_to, 6);
	assert_string_equal(r[2].vm, "web\n1");
	assert_string_equal(r[2].action, "vcpu-up");
	assert_string_equal(r[2].reason, "cpu-high");
	assert_string_equal(r[2].outcome, "started");
	assert_string_equal(r[2].text, "cpu \"91%\" >= 80%\\ for 10 s");
	assert_int_equal(r[2].mem_to_kib, 1048576);
	assert_true(r[2].time_ms > 1600000000000ull);

	assert_int_equal(declog_read(path, "u-2", r, 8, &n), 0);
	assert_int_equal(n, 5);
	assert_string_equal(r[4].detail, "detail");
	assert_int_equal(declog_read(path, "", r, 8, &n), 0);
	assert_int_equal(n, 8);
	assert_int_equal(declog_read(path, "nobody", r, 8, &n), 0);
	assert_int_equal(n, 0);
}

static void torn_line(void **state)
{
	struct declog *dl = declog_open(path);
	struct decision d = dec(ACTION_VCPU_UP, 1, 2, "x");
	struct ctl_record r[4];
	size_t n = 9;
	FILE *f;

	declog_write(dl, "web", "u-1", &d, "started", NULL);
	declog_close(dl);
	f = fopen(path, "a");
	fputs("{\"ts\":1.000,\"vm\":\"web\",\"uuid\":\"u-1\",\"action\":\"vcp", f);
	fclose(f);
	assert_int_equal(declog_read(path, "u-1", r, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(declog_read("/nonexistent/x", "u-1", r, 4, &n), -2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(roundtrip, setup, teardown),
	        cmocka_unit_test_setup_teardown(torn_line, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
