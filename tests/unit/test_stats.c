/* Latency histograms: small values are exact, every quantile is at or above the true one and
 * within 1/16 of it, the maximum is exact, the whole uint64_t range is accepted, and an empty
 * histogram reports zeros. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stats.h"

static struct stats_hist h;

static void test_empty(void **state)
{
	char buf[128];

	stats_init(&h);
	assert_int_equal(stats_quantile(&h, 0.5), 0);
	assert_int_equal(stats_quantile(&h, 0.99), 0);
	stats_format(&h, "us", buf, sizeof(buf));
	assert_string_equal(buf, "p50 0 p99 0 max 0 us (0)");
}

static void test_small_values_exact(void **state)
{
	stats_init(&h);
	for (uint64_t v = 1; v <= 20; v++)
		stats_add(&h, v);
	assert_int_equal(stats_quantile(&h, 0.5), 10);
	assert_int_equal(stats_quantile(&h, 0.05), 1);
	assert_int_equal(stats_quantile(&h, 1.0), 20);
	assert_int_equal(h.max, 20);
	assert_int_equal(h.count, 20);
}

/* One value alone: every quantile lies in its bucket, never above the maximum. */
static void test_bounded_error(void **state)
{
	for (uint64_t v = 0; v < (1ull << 40); v = v * 9 / 8 + 1) {
		uint64_t q;

		stats_init(&h);
		stats_add(&h, v);
		stats_add(&h, v + v / 32); /* same or next bucket */
		q = stats_quantile(&h, 0.5);
		assert_true(q >= v);
		assert_true(q <= v + v / 16);
	}
}

static void test_uniform(void **state)
{
	uint64_t p50, p99;

	stats_init(&h);
	for (uint64_t v = 1; v <= 100000; v++)
		stats_add(&h, v);
	p50 = stats_quantile(&h, 0.5);
	p99 = stats_quantile(&h, 0.99);
	assert_true(p50 >= 50000 && p50 <= 50000 + 50000 / 16);
	assert_true(p99 >= 99000 && p99 <= 100000);
	assert_int_equal(h.max, 100000);
}

static void test_whole_range(void **state)
{
	char buf[128];

	stats_init(&h);
	stats_add(&h, UINT64_MAX);
	stats_add(&h, 0);
	assert_int_equal(stats_quantile(&h, 0.5), 0);
	assert_true(stats_quantile(&h, 1.0) == UINT64_MAX);
	stats_init(&h);
	stats_add(&h, 1ull << 63);
	assert_true(stats_quantile(&h, 0.99) == 1ull << 63);
	stats_format(&h, "ms", buf, sizeof(buf));
	assert_string_equal(buf, "p50 9223372036854775808 p99 9223372036854775808 max "
	                         "9223372036854775808 ms (1)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_empty),         cmocka_unit_test(test_small_values_exact),
	        cmocka_unit_test(test_bounded_error), cmocka_unit_test(test_uniform),
	        cmocka_unit_test(test_whole_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
