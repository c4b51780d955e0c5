/* vscale-sim's trace readers: the Bitbrains quirks (`;`+tab, seconds under a [ms] header, all-zero
 * rows as missing data, capacity changing, CRLF), vscale's CSV with comments and gaps, linear
 * interpolation, and each bad file reported as the exact "file:line: message". */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testdata.h"
#include "trace.h"

/* $VSCALE_TEST_DATA/sim/<rel> */
static const char *data(const char *rel)
{
	return testdata_path("sim", rel);
}

static struct trace *load_ok(const char *rel, double max_gap_s)
{
	struct trace *t = NULL;
	char err[1024] = "";

	if (trace_load(data(rel), max_gap_s, &t, err, sizeof(err)) != 0)
		fail_msg("%s: %s", rel, err);
	assert_non_null(t);
	return t;
}

static void bitbrains_quirks(void **state)
{
	struct trace *t = load_ok("bitbrains-quirks.csv", 900);
	double cpu, mem;
	size_t i = 0;

	assert_string_equal(t->name, "bitbrains-quirks");
	assert_string_equal(t->format, "bitbrains");
	assert_int_equal(t->rows, 5);
	assert_int_equal(t->rows_missing, 1);
	assert_int_equal(t->n, 4);
	/* Unix seconds despite "[ms]" */
	assert_true(t->epoch_s == 1372629804.0);
	assert_true(t->pts[1].t_s == 300.0);
	assert_true(t->pts[2].t_s == 900.0);
	/* CPU demand = usage MHz / (capacity MHz / cores), cores changing 2 -> 4 */
	assert_float_equal(t->pts[0].cpu_cores, 1.0, 1e-9);
	assert_float_equal(t->pts[1].cpu_cores, 2.0, 1e-9);
	assert_float_equal(t->pts[2].cpu_cores, 0.5, 1e-9);
	assert_float_equal(t->pts[3].cpu_cores, 1.5, 1e-9);
	assert_float_equal(t->pts[3].mem_kib, 3145728.0, 1e-9);
	/* the all-zero row is missing data: a new segment, no interpolation across it */
	assert_true(t->pts[0].starts_segment);
	assert_false(t->pts[1].starts_segment);
	assert_true(t->pts[2].starts_segment);
	assert_false(t->pts[3].starts_segment);
	assert_int_equal(trace_segment_end(t, 0), 1);
	assert_int_equal(trace_segment_end(t, 2), 3);
	assert_float_equal(trace_covered_s(t), 600.0, 1e-9);
	assert_int_equal(t->cap_cores_max, 4);
	assert_int_equal(t->cap_mem_kib_max, 16777216);
	/* linear between readings */
	trace_demand_at(t, &i, 150, &cpu, &mem);
	assert_float_equal(cpu, 1.5, 1e-9);
	assert_float_equal(mem, 1572864.0, 1e-6);
	trace_demand_at(t, &i, 300, &cpu, &mem);
	assert_float_equal(cpu, 2.0, 1e-9);
	i = 2;
	trace_demand_at(t, &i, 1050, &cpu, &mem);
	assert_float_equal(cpu, 1.0, 1e-9);
	trace_free(t);
}

static void bitbrains_real_ms(void **state)
{
	struct trace *t = load_ok("bitbrains-ms.csv", 900);

	/* a file that really is in milliseconds is read as such */
	assert_int_equal(t->n, 2);
	assert_true(t->pts[1].t_s == 60.0);
	assert_float_equal(t->pts[0].cpu_cores, 0.5, 1e-9);
	assert_float_equal(t->pts[1].cpu_cores, 1.0, 1e-9);
	trace_free(t);
}

static void vscale_format_and_gaps(void **state)
{
	struct trace *t = load_ok("vscale-gap.csv", 900);
	double cpu, mem, peak_cpu, peak_mem;
	size_t i = 0;

	assert_string_equal(t->format, "vscale");
	assert_int_equal(t->n, 4);
	assert_float_equal(t->pts[0].mem_kib, 1048576.0, 1e-9);
	/* 1000 s between readings > max gap 900 s: missing data */
	assert_true(t->pts[2].starts_segment);
	assert_int_equal(trace_segment_end(t, 0), 1);
	trace_demand_at(t, &i, 50, &cpu, &mem);
	assert_float_equal(cpu, 2.0, 1e-9);
	assert_float_equal(mem, 1572864.0, 1e-6);
	trace_peak(t, &peak_cpu, &peak_mem);
	assert_float_equal(peak_cpu, 3.0, 1e-9);
	assert_float_equal(peak_mem, 2097152.0, 1e-9);
	trace_free(t);

	t = load_ok("vscale-gap.csv", 2000); /* the same gap is fine with a longer limit */
	assert_false(t->pts[2].starts_segment);
	assert_int_equal(trace_segment_end(t, 0), 3);
	trace_free(t);
}

static void bad_files(void **state)
{
	static const struct {
		const char *file, *msg;
	} cases[] = {
	        {"bad-fields.csv", ":3: expected 3 fields (time_s,cpu_cores,mem_bytes), got 2"},
	        {"bad-number.csv", ":3: CPU demand 'abc' is not a number"},
	        {"bad-negative.csv", ":3: memory demand -5 is negative"},
	        {"bad-time.csv", ":4: time 10 is not after the previous reading's 10"},
	        {"bad-header.csv", ":1: unknown trace format: expected the header "
	                           "\"time_s,cpu_cores,mem_bytes\" or a Bitbrains one"},
	        {"bad-empty.csv", ":2: empty file: expected a header line"},
	        {"bad-one.csv", ":2: 1 reading(s) with data; a trace needs at least two"},
	        {"bad-bitbrains-fields.csv", ":3: expected 11 fields separated by ';', got 5"},
	        {"bad-bitbrains-cores.csv",
	         ":2: CPU usage without CPU cores or capacity (cores 0, capacity 0.0 MHz)"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct trace *t = NULL;
		char err[1024] = "", want[PATH_MAX + 256];
		int r = trace_load(data(cases[i].file), 900, &t, err, sizeof(err));

		snprintf(want, sizeof(want), "%s%s", data(cases[i].file), cases[i].msg);
		if (r != -EINVAL || strncmp(err, want, strlen(want)) != 0)
			fail_msg("%s: got %d '%s', want '%s'", cases[i].file, r, err, want);
		assert_null(t);
	}
}

static void missing_file(void **state)
{
	struct trace *t = NULL;
	char err[1024] = "";

	assert_int_equal(trace_load(data("no-such.csv"), 900, &t, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no-such.csv: No such file or directory"));
	assert_null(t);
}

/* The eight shipped Bitbrains files: every one reads, and the quirks are there. */
static void shipped_bitbrains(void **state)
{
	static const char *const vms[] = {"vm1",   "vm151", "vm255", "vm256",
	                                  "vm319", "vm324", "vm337", "vm47"};
	const char *dir = getenv("VSCALE_SIM_TRACES");
	size_t missing = 0;

	assert_non_null(dir);
	for (size_t i = 0; i < sizeof(vms) / sizeof(vms[0]); i++) {
		struct trace *t = NULL;
		char path[PATH_MAX], err[1024];

		snprintf(path, sizeof(path), "%s/bitbrains/2013-7-%s.csv", dir, vms[i]);
		if (trace_load(path, 900, &t, err, sizeof(err)) != 0)
			fail_msg("%s", err);
		assert_string_equal(t->format, "bitbrains");
		assert_true(t->n > 2000);
		assert_true(t->epoch_s > 1372000000.0 && t->epoch_s < 1376000000.0); /* July 2013 */
		missing += t->rows_missing;
		trace_free(t);
	}
	assert_int_equal(missing, 163 + 432 + 404 + 12 + 13 + 5 + 1270);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(bitbrains_quirks),       cmocka_unit_test(bitbrains_real_ms),
	        cmocka_unit_test(vscale_format_and_gaps), cmocka_unit_test(bad_files),
	        cmocka_unit_test(missing_file),           cmocka_unit_test(shipped_bitbrains),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
