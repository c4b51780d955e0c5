/* Tests for hotplug.c on a fake sysfs + /proc/meminfo tree built in a temp dir: scan onlining,
 * holds and their expiry, SET_ONLINE_VCPUS, SHRINK_MEMORY, RELEASE and failing writes. A write
 * that must fail (we run as root, so modes do not stop writes) goes to a symlink to a sealed
 * memfd: it reads fine, and opening it for writing fails with EPERM. A file can also be watched:
 * this program's write() logs what goes to it and refuses one value with a chosen errno, as the
 * kernel refuses online_movable with EINVAL for a block that cannot join ZONE_MOVABLE. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "hotplug.h"

#define MIB_KIB   1024u
#define BLOCK_KIB (128u * MIB_KIB)
#define CPU       "sys/devices/system/cpu/"
#define MEM       "sys/devices/system/memory/"

/* A file whose writes are logged, one of whose values the "kernel" refuses. */
struct watch {
	dev_t dev;
	ino_t ino;
	const char *refuse; /* this value fails with refuse_errno; NULL: none does */
	int refuse_errno;
	char log[128]; /* every value written, each followed by '|' */
};

struct tree {
	char root[64]; /* mkdtemp() path */
	int sealed_fds[8];
	unsigned nsealed;
	struct watch watches[4];
	unsigned nwatches;
};

static struct tree *T;

static void mkdirs(const char *rel)
{
	char path[PATH_MAX];
	char *p;

	snprintf(path, sizeof(path), "%s/%s", T->root, rel);
	for (p = path + strlen(T->root) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
		*p = '/';
	}
	assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

static void put(const char *rel, const char *content)
{
	char path[PATH_MAX], dir[PATH_MAX];
	char *slash;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s", rel);
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		mkdirs(dir);
	}
	snprintf(path, sizeof(path), "%s/%s", T->root, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
}

static const char *get(const char *rel)
{
	static char buf[256];
	char path[PATH_MAX];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", T->root, rel);
	f = fopen(path, "r");
	if (!f)
		return "<missing>";
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* rel reads `content`, and every write to it fails (EPERM). */
static void put_unwritable(const char *rel, const char *content)
{
	char path[PATH_MAX], target[64];
	int fd;

	assert_true(T->nsealed < 8);
	fd = memfd_create("unwritable", MFD_ALLOW_SEALING | MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW), 0);
	T->sealed_fds[T->nsealed++] = fd;
	snprintf(target, sizeof(target), "/proc/self/fd/%d", fd);
	put(rel, ""); /* creates the directories */
	snprintf(path, sizeof(path), "%s/%s", T->root, rel);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(target, path), 0);
}

/* Watches rel (which must exist): its writes are logged, and writing `refuse` (may be NULL) fails
 * with refuse_errno. Returns the log. */
static const char *watch(const char *rel, const char *refuse, int refuse_errno)
{
	char path[PATH_MAX];
	struct watch *w;
	struct stat st;

	assert_true(T->nwatches < 4);
	snprintf(path, sizeof(path), "%s/%s", T->root, rel);
	assert_int_equal(stat(path, &st), 0);
	w = &T->watches[T->nwatches++];
	w->dev = st.st_dev;
	w->ino = st.st_ino;
	w->refuse = refuse;
	w->refuse_errno = refuse_errno;
	return w->log;
}

static struct watch *watch_find(int fd)
{
	struct stat st;
	unsigned i;

	if (!T || !T->nwatches || fstat(fd, &st) < 0)
		return NULL;
	for (i = 0; i < T->nwatches; i++)
		if (T->watches[i].dev == st.st_dev && T->watches[i].ino == st.st_ino)
			return &T->watches[i];
	return NULL;
}

/* Every write() of the code under test lands here (the program's own definition wins over
 * libc's); all but a refused value go on to the kernel. */
ssize_t write(int fd, const void *buf, size_t n)
{
	struct watch *w = watch_find(fd);

	if (w) {
		size_t len = strlen(w->log);

		snprintf(w->log + len, sizeof(w->log) - len, "%.*s|", (int)n, (const char *)buf);
		if (w->refuse && n == strlen(w->refuse) && !memcmp(buf, w->refuse, n)) {
			errno = w->refuse_errno;
			return -1;
		}
	}
	return syscall(SYS_write, fd, buf, n);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_rel(const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", T->root, rel);
	assert_int_equal(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void put_block(unsigned id, const char *state, const char *zone)
{
	char rel[128];

	snprintf(rel, sizeof(rel), MEM "memory%u/state", id);
	put(rel, state);
	snprintf(rel, sizeof(rel), MEM "memory%u/valid_zones", id);
	put(rel, zone);
}

static const char *block_state(unsigned id)
{
	char rel[128];

	snprintf(rel, sizeof(rel), MEM "memory%u/state", id);
	return get(rel);
}

static void put_meminfo(unsigned total_mib, unsigned avail_mib)
{
	char buf[256];

	snprintf(buf, sizeof(buf),
	         "MemTotal:       %u kB\nMemFree:         1000 kB\nMemAvailable:   %u kB\n"
	         "Buffers:           0 kB\n",
	         total_mib * MIB_KIB, avail_mib * MIB_KIB);
	put("proc/meminfo", buf);
}

/* cpu0 (no online file) + cpu1..3 online; memory0-3 online Normal, 4-7 online Movable, 128 MiB
 * blocks; 1 GiB total, 128 MiB in use. */
static int setup(void **state)
{
	unsigned i;

	T = calloc(1, sizeof(*T));
	assert_non_null(T);
	snprintf(T->root, sizeof(T->root), "/tmp/test_hotplug.XXXXXX");
	assert_non_null(mkdtemp(T->root));
	mkdirs(CPU "cpu0");
	mkdirs(CPU "cpufreq");
	mkdirs(CPU "cpuidle");
	put(CPU "present", "0-3\n");
	put(CPU "cpu1/online", "1\n");
	put(CPU "cpu2/online", "1\n");
	put(CPU "cpu3/online", "1\n");
	put(MEM "block_size_bytes", "8000000\n");
	put(MEM "auto_online_blocks", "online\n");
	for (i = 0; i < 8; i++)
		put_block(i, "online\n", i < 4 ? "Normal\n" : "Movable\n");
	put_meminfo(1024, 896);
	*state = T;
	return 0;
}

static int teardown(void **state)
{
	unsigned i;

	assert_int_equal(nftw(T->root, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	for (i = 0; i < T->nsealed; i++)
		close(T->sealed_fds[i]);
	free(T);
	T = NULL;
	return 0;
}

static struct hotplug *new_hotplug(void)
{
	struct hotplug *h = hotplug_new(T->root, 60000);

	assert_non_null(h);
	return h;
}

static struct reply handle(struct hotplug *h, enum request_kind kind, uint32_t vcpus,
                           uint64_t total_kib, uint64_t margin_kib, uint32_t hold_ms,
                           uint64_t now_ms)
{
	struct request req = {.id = 42,
	                      .kind = kind,
	                      .vcpus = vcpus,
	                      .mem_total_kib = total_kib,
	                      .mem_margin_kib = margin_kib,
	                      .hold_ms = hold_ms};
	struct reply rep;

	memset(&rep, 0xa5, sizeof(rep));
	hotplug_handle(h, &req, now_ms, &rep);
	assert_int_equal(rep.id, 42);
	assert_non_null(memchr(rep.reason, '\0', sizeof(rep.reason)));
	return rep;
}

static struct reply set_vcpus(struct hotplug *h, uint32_t n, uint32_t hold_ms, uint64_t now_ms)
{
	return handle(h, REQ_SET_ONLINE_VCPUS, n, 0, 0, hold_ms, now_ms);
}

static struct reply shrink(struct hotplug *h, unsigned target_mib, unsigned margin_mib)
{
	return handle(h, REQ_SHRINK_MEMORY, 0, (uint64_t)target_mib * MIB_KIB,
	              (uint64_t)margin_mib * MIB_KIB, 0, 1000);
}

static struct hotplug_stats scan(struct hotplug *h, uint64_t now_ms)
{
	struct hotplug_stats st;

	memset(&st, 0xa5, sizeof(st));
	assert_int_equal(hotplug_scan(h, now_ms, &st), 0);
	return st;
}

static void test_scan_onlines_cpu_and_block(void **state)
{
	struct hotplug_stats st;
	struct hotplug *h;

	put(CPU "cpu2/online", "0\n");
	put(CPU "cpu3/online", "0\n");
	put_block(8, "offline\n", "Normal Movable\n");
	h = new_hotplug();
	st = scan(h, 1000);
	assert_int_equal(st.cpus_onlined, 2);
	assert_int_equal(st.blocks_onlined, 1);
	assert_int_equal(st.errors, 0);
	assert_string_equal(get(CPU "cpu2/online"), "1");
	assert_string_equal(get(CPU "cpu3/online"), "1");
	assert_string_equal(block_state(8), "online_movable");
	assert_string_equal(block_state(7), "online\n"); /* untouched */
	assert_string_equal(get(CPU "cpu0/online"), "<missing>");

	put_block(8, "online\n", "Movable\n");
	st = scan(h, 2000);
	assert_int_equal(st.cpus_onlined + st.blocks_onlined + st.errors, 0);
	hotplug_free(h);
}

/* Block states are re-read only when the block set or MemTotal changed, or a minute passed. */
static void test_scan_skips_unchanged_memory(void **state)
{
	struct hotplug_stats st;
	struct hotplug *h = new_hotplug();

	st = scan(h, 1000); /* the first pass reads everything */
	assert_int_equal(st.blocks_onlined, 0);
	/* offlined behind our back with MemTotal and the set unchanged: seen within the minute */
	put_block(6, "offline\n", "Normal Movable\n");
	st = scan(h, 2000);
	assert_int_equal(st.blocks_onlined, 0);
	assert_string_equal(block_state(6), "offline\n");
	st = scan(h, 1000 + 60000);
	assert_int_equal(st.blocks_onlined, 1);
	assert_string_equal(block_state(6), "online_movable");
	/* MemTotal moved: read at once (the pass after onlining re-learns MemTotal first) */
	st = scan(h, 61200);
	put_block(5, "offline\n", "Normal Movable\n");
	st = scan(h, 61300);
	assert_int_equal(st.blocks_onlined, 0); /* same set, same MemTotal: not looked at */
	put_meminfo(896, 768);
	st = scan(h, 61500);
	assert_int_equal(st.blocks_onlined, 1);
	assert_string_equal(block_state(5), "online_movable");
	/* a new block (hot-added memory): read at once */
	st = scan(h, 62000);
	put_block(9, "offline\n", "Normal Movable\n");
	st = scan(h, 62500);
	assert_int_equal(st.blocks_onlined, 1);
	assert_string_equal(block_state(9), "online_movable");
	hotplug_free(h);
}

/* A new block is written online_movable first. Only EINVAL (the kernel cannot put it in
 * ZONE_MOVABLE) falls back to plain online; any other error is a failed write. */
static void test_scan_online_movable_fallback(void **state)
{
	struct hotplug_stats st;
	struct hotplug *h = new_hotplug();
	const char *moved, *fell_back, *busy;

	put_block(8, "offline\n", "Normal Movable\n");
	put_block(9, "offline\n", "Normal\n");
	put_block(10, "offline\n", "Normal Movable\n");
	moved = watch(MEM "memory8/state", NULL, 0);
	fell_back = watch(MEM "memory9/state", "online_movable", EINVAL);
	busy = watch(MEM "memory10/state", "online_movable", EBUSY);
	st = scan(h, 1000);
	assert_int_equal(st.blocks_onlined, 2);
	assert_int_equal(st.errors, 1);
	assert_string_equal(moved, "online_movable|");
	assert_string_equal(block_state(8), "online_movable");
	assert_string_equal(fell_back, "online_movable|online|");
	assert_string_equal(block_state(9), "online");
	assert_string_equal(busy, "online_movable|"); /* (O_TRUNC emptied the fake file) */
	hotplug_free(h);
}

/* RELEASE onlines a held block the same way. */
static void test_release_online_movable_fallback(void **state)
{
	struct hotplug *h = new_hotplug();
	const char *log;

	log = watch(MEM "memory7/state", "online_movable", EINVAL);
	assert_int_equal(shrink(h, 896, 0).status, REPLY_ACK);
	assert_int_equal(handle(h, REQ_RELEASE, 0, 0, 0, 0, 2000).status, REPLY_ACK);
	assert_string_equal(log, "offline|online_movable|online|");
	assert_string_equal(block_state(7), "online");
	hotplug_free(h);
}

static void test_auto_online_blocks(void **state)
{
	struct hotplug *h;

	h = new_hotplug();
	assert_int_equal(hotplug_auto_online(h), 0);
	assert_string_equal(get(MEM "auto_online_blocks"), "online\n");
	hotplug_free(h);

	put(MEM "auto_online_blocks", "offline\n");
	h = new_hotplug();
	assert_int_equal(hotplug_auto_online(h), 1);
	assert_string_equal(get(MEM "auto_online_blocks"), "online_movable");
	hotplug_free(h);

	put_unwritable(MEM "auto_online_blocks", "offline\n");
	h = new_hotplug();
	assert_int_equal(hotplug_auto_online(h), -EPERM);
	hotplug_free(h);

	rm_rel(MEM "auto_online_blocks");
	h = new_hotplug();
	assert_int_equal(hotplug_auto_online(h), 0);
	hotplug_free(h);
}

static void test_set_vcpus_down_holds(void **state)
{
	struct hotplug_stats st;
	struct reply rep;
	struct hotplug *h = new_hotplug();

	rep = set_vcpus(h, 2, 0, 1000);
	assert_int_equal(rep.status, REPLY_ACK);
	assert_true(rep.has_vcpus_online);
	assert_int_equal(rep.vcpus_online, 2);
	assert_string_equal(get(CPU "cpu3/online"), "0");
	assert_string_equal(get(CPU "cpu2/online"), "0");
	assert_string_equal(get(CPU "cpu1/online"), "1\n");

	st = scan(h, 2000);
	assert_int_equal(st.cpus_onlined, 0);
	assert_string_equal(get(CPU "cpu3/online"), "0");
	assert_string_equal(get(CPU "cpu2/online"), "0");

	/* down to 1: cpu1 goes, cpu0 never does */
	rep = set_vcpus(h, 1, 0, 3000);
	assert_int_equal(rep.status, REPLY_ACK);
	assert_int_equal(rep.vcpus_online, 1);
	assert_string_equal(get(CPU "cpu1/online"), "0");
	st = scan(h, 4000);
	assert_int_equal(st.cpus_onlined, 0);
	hotplug_free(h);
}

static void test_set_vcpus_never_cpu0(void **state)
{
	struct hotplug *h = new_hotplug();
	struct reply rep;

	put(CPU "cpu0/online", "1\n"); /* kernels that can offline cpu0 show the file */
	put_unwritable(CPU "cpu1/online", "1\n");
	rep = set_vcpus(h, 1, 0, 1000);
	assert_int_equal(rep.status, REPLY_PARTIAL);
	assert_int_equal(rep.vcpus_online, 2);
	assert_string_equal(get(CPU "cpu0/online"), "1\n");
	assert_string_equal(get(CPU "cpu2/online"), "0");
	hotplug_free(h);
}

static void test_set_vcpus_holds_other_offline_cpus(void **state)
{
	struct hotplug *h = new_hotplug();
	struct reply rep;

	/* 3 online, cpu3 offline but not held: asking for 3 must keep it offline */
	put(CPU "cpu3/online", "0\n");
	rep = set_vcpus(h, 3, 0, 1000);
	assert_int_equal(rep.status, REPLY_ACK);
	assert_int_equal(rep.vcpus_online, 3);
	assert_int_equal(scan(h, 2000).cpus_onlined, 0);
	assert_string_equal(get(CPU "cpu3/online"), "0\n");
	hotplug_free(h);
}

static void test_hold_expiry(void **state)
{
	struct hotplug_stats st;
	struct hotplug *h = new_hotplug();

	assert_int_equal(set_vcpus(h, 2, 5000, 1000).status, REPLY_ACK);
	assert_int_equal(shrink(h, 896, 0).status, REPLY_ACK); /* memory7, default hold 60 s */
	st = scan(h, 5999);
	assert_int_equal(st.cpus_onlined, 0);
	assert_int_equal(st.holds_expired, 0);
	assert_string_equal(get(CPU "cpu3/online"), "0");

	st = scan(h, 6000);
	assert_int_equal(st.cpus_onlined, 2);
	assert_int_equal(st.holds_expired, 2);
	assert_int_equal(st.blocks_onlined, 0);
	assert_string_equal(get(CPU "cpu2/online"), "1");
	assert_string_equal(get(CPU "cpu3/online"), "1");
	assert_string_equal(block_state(7), "offline");

	st = scan(h, 1000 + 60000);
	assert_int_equal(st.blocks_onlined, 1);
	assert_int_equal(st.holds_expired, 1);
	assert_string_equal(block_state(7), "online_movable");
	hotplug_free(h);
}

static void test_set_vcpus_up_releases(void **state)
{
	struct hotplug *h = new_hotplug();
	struct reply rep;

	assert_int_equal(set_vcpus(h, 2, 0, 1000).status, REPLY_ACK);
	rep = set_vcpus(h, 3, 0, 2000);
	assert_int_equal(rep.status, REPLY_ACK);
	assert_int_equal(rep.vcpus_online, 3);
	assert_string_equal(get(CPU "cpu2/online"), "1");
	assert_string_equal(get(CPU "cpu3/online"), "0"); /* still held */
	assert_int_equal(scan(h, 3000).cpus_onlined, 0);
	assert_string_equal(get(CPU "cpu3/online"), "0");

	rep = set_vcpus(h, 4, 0, 4000);
	assert_int_equal(rep.status, REPLY_ACK);
	assert_int_equal(rep.vcpus_online, 4);
	assert_string_equal(get(CPU "cpu3/online"), "1");
	/* nothing is held any more */
	put(CPU "cpu2/online", "0\n");
	assert_int_equal(scan(h, 5000).cpus_onlined, 1);
	hotplug_free(h);
}

static void test_set_vcpus_refused(void **state)
{
	struct hotplug *h = new_hotplug();
	struct reply rep;

	mkdirs(CPU "cpu01"); /* none of these is a CPU: still 4 present */
	mkdirs(CPU "cpu3x");
	mkdirs(CPU "cpu8192");
	rep = set_vcpus(h, 0, 0, 1000);
	assert_int_equal(rep.status, REPLY_REFUSED);
	assert_true(rep.reason[0]);
	rep = set_vcpus(h, 5, 0, 1000);
	assert_int_equal(rep.status, REPLY_REFUSED);
	assert_non_null(strstr(rep.reason, "4 present"));
	assert_string_equal(get(CPU "cpu1/online"), "1\n");
	assert_string_equal(get(CPU "cpu3/online"), "1\n");
	hotplug_free(h);
}

static void test_set_vcpus_write_failures(void **state)
{
	struct hotplug *h = new_hotplug();
	struct reply rep;

	/* cpu3 cannot be offlined: cpu2 and cpu1 go instead, and 1 is out of reach */
	put_unwritable(CPU "cpu3/online", "1\n");
	rep = set_vcpus(h, 1, 0, 1000);
	assert_int_equal(rep.status, REPLY_PARTIAL);
	assert_int_equal(rep.vcpus_online, 2);
	assert_non_null(strstr(rep.reason, "cpu3"));
	assert_non_null(strstr(rep.reason, strerror(EPERM)));
	assert_string_equal(get(CPU "cpu2/online"), "0");
	assert_string_equal(get(CPU "cpu1/online"), "0");
	/* what was offlined is held even though the request fell short */
	assert_int_equal(scan(h, 2000).cpus_onlined, 0);

	/* nothing else can be offlined: ERROR */
	rep = set_vcpus(h, 1, 0, 3000);
	assert_int_equal(rep.status, REPLY_ERROR);
	assert_int_equal(rep.vcpus_online, 2);
	assert_non_null(strstr(rep.reason, "cpu3"));
	hotplug_free(h);
}

static void test_shrink_refused_in_use(void **state)
{
	struct hotplug *h = new_hotplug();
	struct reply rep;
	unsigned i;

	put_meminfo(2048, 1236); /* 812 MiB in use */
	rep = shrink(h, 768, 256);
	assert_int_equal(rep.status, REPLY_REFUSED);
	assert_string_equal(rep.reason, "in use 812 MiB + margin 256 MiB > target 768 MiB");
	for (i = 0; i < 8; i++)
		assert_string_equal(block_state(i), "online\n");
	hotplug_free(h);
}

/* The reply and the tree after a shrink of 1 GiB (8 blocks) to 768 MiB: memory7 and memory6
 * offlined, the six below untouched, and what was offlined held against the scan. */
static void assert_top_two_offlined(struct hotplug *h, const struct reply *rep)
{
	assert_true(rep->has_mem_offlined && rep->has_mem_total);
	assert_int_equal(rep->mem_offlined_kib, 2 * BLOCK_KIB);
	assert_int_equal(rep->mem_total_kib, 768 * MIB_KIB);
	assert_string_equal(block_state(7), "offline");
	assert_string_equal(block_state(6), "offline");
	for (unsigned i = 0; i < 6; i++)
		assert_string_equal(block_state(i), "online\n");
	assert_int_equal(scan(h, 2000).blocks_onlined, 0);
	assert_string_equal(block_state(7), "offline");
}

static void test_shrink_ack(void **state)
{
	struct hotplug *h = new_hotplug();
	struct reply rep;

	rep = shrink(h, 768, 128);
	assert_int_equal(rep.status, REPLY_ACK);
	assert_top_two_offlined(h, &rep);

	/* a target at or above the total changes nothing */
	rep = shrink(h, 1024, 0);
	assert_int_equal(rep.status, REPLY_ACK);
	assert_int_equal(rep.mem_offlined_kib, 0);
	assert_int_equal(rep.mem_total_kib, 1024 * MIB_KIB);
	assert_string_equal(block_state(5), "online\n");
	hotplug_free(h);
}

static void test_shrink_partial_and_nothing_movable(void **state)
{
	struct hotplug *h = new_hotplug();
	struct reply rep;
	unsigned i;

	for (i = 4; i < 7; i++)
		put_block(i, "online\n", "Normal\n");
	rep = shrink(h, 768, 0); /* needs 256 MiB, only memory7 is movable */
	assert_int_equal(rep.status, REPLY_PARTIAL);
	assert_int_equal(rep.mem_offlined_kib, BLOCK_KIB);
	assert_int_equal(rep.mem_total_kib, 896 * MIB_KIB);
	assert_string_equal(block_state(7), "offline");
	for (i = 0; i < 7; i++)
		assert_string_equal(block_state(i), "online\n");

	rep = shrink(h, 768, 0); /* nothing movable and online left */
	assert_int_equal(rep.status, REPLY_REFUSED);
	assert_int_equal(rep.mem_offlined_kib, 0);
	hotplug_free(h);
}

/* Stops before the block that would take MemTotal under in use + margin, and says so. */
static void test_shrink_partial_at_margin(void **state)
{
	struct hotplug *h = new_hotplug();
	struct reply rep;

	/* 600 MiB in use + 100 margin: 1024 -> 768 is fine, a third block would leave 640 < 700 */
	put_meminfo(1024, 424);
	rep = shrink(h, 700, 100);
	assert_int_equal(rep.status, REPLY_PARTIAL);
	assert_string_equal(rep.reason,
	                    "offlined 256 of 324 MiB, next block would cut into the margin");
	assert_top_two_offlined(h, &rep);
	hotplug_free(h);
}

/* Going down to exactly in use + margin is allowed. */
static void test_shrink_down_to_margin(void **state)
{
	struct hotplug *h = new_hotplug();
	struct reply rep;

	put_meminfo(1024, 356); /* 668 MiB in use + 100 margin = the 768 MiB target */
	rep = shrink(h, 768, 100);
	assert_int_equal(rep.status, REPLY_ACK);
	assert_string_equal(rep.reason, "");
	assert_int_equal(rep.mem_offlined_kib, 2 * BLOCK_KIB);
	assert_string_equal(block_state(6), "offline");
	assert_string_equal(block_state(5), "online\n");
	hotplug_free(h);
}

static void test_shrink_keeps_margin(void **state)
{
	struct hotplug *h = new_hotplug();
	struct reply rep;

	/* 600 MiB in use + 100 margin <= 768 target, but a 512 MiB block would go under */
	put(MEM "block_size_bytes", "0x20000000\n"); /* 512 MiB */
	put_meminfo(1024, 424);
	rep = shrink(h, 768, 100);
	assert_int_equal(rep.status, REPLY_REFUSED);
	assert_string_equal(rep.reason, "a block would cut into the margin");
	assert_int_equal(rep.mem_offlined_kib, 0);
	assert_string_equal(block_state(7), "online\n");
	hotplug_free(h);
}

static void test_shrink_skips_failing_block(void **state)
{
	struct hotplug *h = new_hotplug();
	struct reply rep;

	put_unwritable(MEM "memory7/state", "online\n");
	rep = shrink(h, 896, 0);
	assert_int_equal(rep.status, REPLY_ACK);
	assert_int_equal(rep.mem_offlined_kib, BLOCK_KIB);
	assert_string_equal(block_state(6), "offline");
	assert_non_null(strstr(rep.reason, "memory7"));

	/* all movable blocks fail or are gone: refused, with the reason */
	put_unwritable(MEM "memory5/state", "online\n");
	put_unwritable(MEM "memory4/state", "online\n");
	rep = shrink(h, 768, 0);
	assert_int_equal(rep.status, REPLY_REFUSED);
	assert_non_null(strstr(rep.reason, "memory7"));
	assert_non_null(strstr(rep.reason, "and 2 more"));
	hotplug_free(h);
}

static void test_release(void **state)
{
	struct hotplug *h = new_hotplug();
	struct reply rep;

	assert_int_equal(set_vcpus(h, 2, 0, 1000).status, REPLY_ACK);
	assert_int_equal(shrink(h, 768, 0).status, REPLY_ACK);
	put(CPU "cpu1/online", "0\n"); /* offline but never held: RELEASE leaves it to the scan */
	rep = handle(h, REQ_RELEASE, 0, 0, 0, 0, 2000);
	assert_int_equal(rep.status, REPLY_ACK);
	assert_string_equal(get(CPU "cpu2/online"), "1");
	assert_string_equal(get(CPU "cpu3/online"), "1");
	assert_string_equal(get(CPU "cpu1/online"), "0\n");
	assert_string_equal(block_state(7), "online_movable");
	assert_string_equal(block_state(6), "online_movable");
	assert_string_equal(block_state(5), "online\n");
	/* no holds left: the scan onlines whatever is offline */
	put(CPU "cpu3/online", "0\n");
	put_block(7, "offline\n", "Movable\n");
	assert_int_equal(scan(h, 3000).cpus_onlined, 2);
	assert_int_equal(scan(h, 3000).blocks_onlined, 0); /* already done by the first */
	assert_string_equal(block_state(7), "online_movable");
	hotplug_free(h);
}

static void test_held_item_removed(void **state)
{
	struct hotplug_stats st;
	struct hotplug *h = new_hotplug();

	assert_int_equal(shrink(h, 896, 0).status, REPLY_ACK);
	assert_int_equal(set_vcpus(h, 3, 0, 1000).status, REPLY_ACK);
	rm_rel(MEM "memory7");
	rm_rel(CPU "cpu3");
	st = scan(h, 2000);
	assert_int_equal(st.holds_gone, 2);
	assert_int_equal(st.blocks_onlined + st.cpus_onlined, 0);

	/* plugged again later: a new item, not held */
	put_block(7, "offline\n", "Movable\n");
	put(CPU "cpu3/online", "0\n");
	st = scan(h, 3000);
	assert_int_equal(st.blocks_onlined, 1);
	assert_int_equal(st.cpus_onlined, 1);
	assert_string_equal(block_state(7), "online_movable");
	hotplug_free(h);
}

static void test_weird_sysfs(void **state)
{
	struct hotplug_stats st;
	struct hotplug *h = new_hotplug();

	put(CPU "cpu1/online", "banana");
	put(CPU "cpu2/online", "");
	put(CPU "cpu99999/online", "0\n"); /* id out of range: ignored */
	put(CPU "cpu01/online", "0\n");    /* not a kernel name */
	put(CPU "cpu3x/online", "0\n");
	put_block(3, "going-offline\n", "Normal\n");
	put_block(9, "offline", "Movable");
	mkdirs(MEM "memory10/state"); /* a directory: unreadable */
	put_block(2000000, "offline\n", "Movable\n");
	st = scan(h, 1000);
	assert_int_equal(st.cpus_onlined, 0);
	assert_int_equal(st.blocks_onlined, 1);
	assert_int_equal(st.errors, 0);
	assert_string_equal(get(CPU "cpu1/online"), "banana");
	assert_string_equal(get(CPU "cpu99999/online"), "0\n");
	assert_string_equal(get(CPU "cpu01/online"), "0\n");
	assert_string_equal(block_state(9), "online_movable");
	assert_string_equal(block_state(2000000), "offline\n");

	/* unwritable offline block: counted as an error, others still onlined */
	put_unwritable(MEM "memory11/state", "offline\n");
	put_block(12, "offline\n", "Movable\n");
	st = scan(h, 2000);
	assert_int_equal(st.errors, 1);
	assert_int_equal(st.blocks_onlined, 1);

	/* garbage meminfo and block size: errors, not crashes */
	put("proc/meminfo", "MemTotal: -5 kB\nMemAvailable: x\n");
	assert_int_equal(shrink(h, 512, 0).status, REPLY_ERROR);
	put_meminfo(1024, 896);
	put(MEM "block_size_bytes", "zz\n");
	assert_int_equal(shrink(h, 512, 0).status, REPLY_ERROR);
	assert_int_equal(handle(h, REQ_SHRINK_MEMORY, 0, 0, 0, 0, 1).status, REPLY_ERROR);
	hotplug_free(h);
}

static void test_unknown_request(void **state)
{
	struct hotplug *h = new_hotplug();
	struct reply rep;

	rep = handle(h, (enum request_kind)77, 0, 0, 0, 0, 1000);
	assert_int_equal(rep.status, REPLY_ERROR);
	assert_non_null(strstr(rep.reason, "unknown request"));
	hotplug_free(h);
}

static void test_no_memory_dir(void **state)
{
	struct hotplug *h;

	rm_rel("sys/devices/system/memory");
	h = new_hotplug();
	put(CPU "cpu2/online", "0\n");
	assert_int_equal(scan(h, 1000).cpus_onlined, 1);
	assert_int_equal(shrink(h, 512, 0).status, REPLY_ERROR);
	hotplug_free(h);
	hotplug_free(NULL);

	rm_rel("sys/devices/system/cpu");
	h = new_hotplug();
	assert_int_equal(hotplug_scan(h, 1000, NULL), -ENOENT);
	assert_int_equal(set_vcpus(h, 1, 0, 1000).status, REPLY_ERROR);
	hotplug_free(h);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        TEST(test_scan_onlines_cpu_and_block),
	        TEST(test_scan_skips_unchanged_memory),
	        TEST(test_scan_online_movable_fallback),
	        TEST(test_release_online_movable_fallback),
	        TEST(test_auto_online_blocks),
	        TEST(test_set_vcpus_down_holds),
	        TEST(test_set_vcpus_never_cpu0),
	        TEST(test_set_vcpus_holds_other_offline_cpus),
	        TEST(test_hold_expiry),
	        TEST(test_set_vcpus_up_releases),
	        TEST(test_set_vcpus_refused),
	        TEST(test_set_vcpus_write_failures),
	        TEST(test_shrink_refused_in_use),
	        TEST(test_shrink_ack),
	        TEST(test_shrink_partial_and_nothing_movable),
	        TEST(test_shrink_partial_at_margin),
	        TEST(test_shrink_down_to_margin),
	        TEST(test_shrink_keeps_margin),
	        TEST(test_shrink_skips_failing_block),
	        TEST(test_release),
	        TEST(test_held_item_removed),
	        TEST(test_weird_sysfs),
	        TEST(test_unknown_request),
	        TEST(test_no_memory_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
