/* Metering: counters add up, survive a save and load, stay sorted for lookups, and a damaged
 * file is reported as file:line with what parsed before kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "meter.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/vscale-meter-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void adds_and_persists(void **state)
{
	char err[256];
	struct meter *m = meter_new(dir, err, sizeof(err));
	struct meter_entry *a, *b;

	assert_non_null(m);
	assert_string_equal(err, "");
	/* inserted out of order: lookups still find each */
	for (int i = 99; i >= 0; i--) {
		char uuid[40];

		snprintf(uuid, sizeof(uuid), "uuid-%03d", i);
		assert_non_null(meter_get(m, uuid, "vm"));
	}
	a = meter_get(m, "uuid-042", "web\nx");
	assert_string_equal(a->name, "web?x");
	meter_add(a, 2, 4 * 1024 * 1024, 1500); /* 2 vCPUs, 4 GiB for 1.5 s */
	assert_true(a->vcpu_seconds > 2.999 && a->vcpu_seconds < 3.001);
	assert_true(a->gib_seconds > 5.999 && a->gib_seconds < 6.001);
	b = meter_get(m, "uuid-042", NULL);
	assert_ptr_equal(a, b);
	assert_int_equal(meter_save(m), 0);
	meter_free(m);

	m = meter_new(dir, err, sizeof(err));
	assert_string_equal(err, "");
	a = meter_get(m, "uuid-042", NULL);
	assert_true(a->vcpu_seconds > 2.999 && a->vcpu_seconds < 3.001);
	assert_string_equal(a->name, "web?x");
	meter_free(m);
}

static void damaged_file(void **state)
{
	char path[128], err[256];
	struct meter *m;
	FILE *f;

	snprintf(path, sizeof(path), "%s/metering", dir);
	f = fopen(path, "w");
	fputs("# header\nu-1 10.5 2.25 web\nu-2 oops\nu-3 1 1 db\n", f);
	fclose(f);
	m = meter_new(dir, err, sizeof(err));
	assert_non_null(m);
	assert_non_null(strstr(err, "metering:3: not a metering line"));
	assert_true(meter_get(m, "u-1", NULL)->vcpu_seconds == 10.5);
	meter_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(adds_and_persists, setup, teardown),
	        cmocka_unit_test_setup_teardown(damaged_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
