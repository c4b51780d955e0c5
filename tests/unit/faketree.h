/* Fake /proc and /sys trees for the guest-side unit tests (test_collect, test_procs): a fresh
 * directory under /tmp per test, files written with their parent directories, subtrees
 * removed. Header-only (static inline); include after <cmocka.h>. The tree is the test's cmocka
 * state: faketree_setup() allocates and creates it, faketree_teardown() removes and frees it. */
#ifndef VSCALE_TESTS_FAKETREE_H
#define VSCALE_TESTS_FAKETREE_H

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct faketree {
	char root[64]; /* /tmp/vscale-<name>-XXXXXX */
	char proc[80]; /* root/proc */
};

/* Creates the directories above path; fails the test when one cannot be made. */
static inline void faketree_mkdir_p(const char *path)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", dir, strerror(errno));
		*p = '/';
	}
}

/* Opens path for writing (the caller fcloses it), creating the directories above it; fails the
 * test when it cannot. */
static inline FILE *faketree_create(const char *path)
{
	FILE *f;

	faketree_mkdir_p(path);
	f = fopen(path, "w");
	if (!f)
		fail_msg("fopen %s: %s", path, strerror(errno));
	return f;
}

static inline int faketree_rm_one(const char *path, const struct stat *st, int flag,
                                  struct FTW *ftw)
{
	return remove(path);
}

/* Removes path and everything below it; nothing when it does not exist. */
static inline void faketree_rm(const char *path)
{
	nftw(path, faketree_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* cmocka setup: *state = a new tree /tmp/vscale-<name>-XXXXXX, with its proc directory made
 * when with_proc. 0, or -1 (nothing left behind). */
static inline int faketree_setup(void **state, const char *name, bool with_proc)
{
	struct faketree *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	snprintf(t->root, sizeof(t->root), "/tmp/vscale-%s-XXXXXX", name);
	if (!mkdtemp(t->root)) {
		free(t);
		return -1;
	}
	snprintf(t->proc, sizeof(t->proc), "%s/proc", t->root);
	if (with_proc && mkdir(t->proc, 0755) < 0) {
		rmdir(t->root);
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

/* cmocka teardown: removes the tree and frees it. */
static inline int faketree_teardown(void **state)
{
	struct faketree *t = *state;

	faketree_rm(t->root);
	free(t);
	return 0;
}

#endif
