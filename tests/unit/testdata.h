/* Where the unit tests' data files are: $VSCALE_TEST_DATA (tests/data, set by ctest).
 * Header-only (static inline); include after <cmocka.h>. */
#ifndef VSCALE_TESTS_TESTDATA_H
#define VSCALE_TESTS_TESTDATA_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* $VSCALE_TEST_DATA/<sub>/<rel>, in a static buffer the next call overwrites; fails the test
 * when VSCALE_TEST_DATA is not set. */
static inline const char *testdata_path(const char *sub, const char *rel)
{
	static char path[PATH_MAX];
	const char *dir = getenv("VSCALE_TEST_DATA");

	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, rel);
	return path;
}

#endif
