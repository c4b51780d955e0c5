/* The collector on fake /proc + /sys trees built under /tmp: every figure of a full tree, rates
 * from rewritten /proc/stat snapshots, absent figures for missing files, memory block counts
 * re-read only when MemTotal or the set of blocks changes, and single-thread saturation from
 * fake /proc/<pid>/stat + task trees (a spinning thread on an otherwise idle VM, all CPUs busy,
 * a thread that exits, an idle process whose task files are not read). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "collect.h"
#include "faketree.h"

static void __attribute__((format(printf, 3, 4)))
put(const struct faketree *t, const char *rel, const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t->root, rel);
	f = faketree_create(path);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

static void rm_rel(const struct faketree *t, const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", t->root, rel);
	faketree_rm(path);
}

/* /proc/stat with the aggregate line and ncpu cpuN lines. */
static void put_stat(const struct faketree *t, unsigned ncpu, uint64_t user, uint64_t system,
                     uint64_t idle, uint64_t iowait, uint64_t irq, uint64_t softirq, uint64_t steal,
                     uint64_t guest)
{
	char buf[4096];
	int len;

	len = snprintf(buf, sizeof(buf), "cpu  %llu 0 %llu %llu %llu %llu %llu %llu %llu 0\n",
	               (unsigned long long)user, (unsigned long long)system,
	               (unsigned long long)idle, (unsigned long long)iowait,
	               (unsigned long long)irq, (unsigned long long)softirq,
	               (unsigned long long)steal, (unsigned long long)guest);
	for (unsigned i = 0; i < ncpu; i++)
		len += snprintf(buf + len, sizeof(buf) - (size_t)len, "cpu%u 1 0 1 1 0 0 0 0 0 0\n",
		                i);
	snprintf(buf + len, sizeof(buf) - (size_t)len,
	         "intr 12345 0 0\nctxt 999\nbtime 1700000000\nprocesses 4242\n");
	put(t, "proc/stat", "%s", buf);
}

static void put_block(const struct faketree *t, unsigned n, const char *state, const char *zones)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "sys/devices/system/memory/memory%u/state", n);
	put(t, rel, "%s\n", state);
	snprintf(rel, sizeof(rel), "sys/devices/system/memory/memory%u/valid_zones", n);
	put(t, rel, "%s\n", zones);
}

static void put_meminfo(const struct faketree *t, uint64_t total_kib)
{
	put(t, "proc/meminfo",
	    "MemTotal:        %llu kB\n"
	    "MemFree:         1000000 kB\n"
	    "MemAvailable:    3000000 kB\n"
	    "Buffers:           12345 kB\n"
	    "SwapCached:            0 kB\n"
	    "SwapTotal:       1048572 kB\n"
	    "SwapFree:         524288 kB\n"
	    "HugePages_Total:       0\n",
	    (unsigned long long)total_kib);
}

static void build_full(struct faketree *t)
{
	put_stat(t, 2, 100, 100, 700, 100, 0, 0, 0, 0);
	put(t, "sys/devices/system/cpu/online", "0-1\n");
	put(t, "sys/devices/system/cpu/present", "0-3,6\n");
	put(t, "proc/loadavg", "0.50 0.25 1.75 1/100 1234\n");
	put(t, "proc/pressure/cpu",
	    "some avg10=1.50 avg60=0.80 avg300=0.10 total=123456\n"
	    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
	put(t, "proc/pressure/memory",
	    "some avg10=2.25 avg60=1.00 avg300=0.50 total=99\n"
	    "full avg10=0.75 avg60=0.20 avg300=0.05 total=42\n");
	put_meminfo(t, 4046848);
	put(t, "sys/devices/system/memory/block_size_bytes", "8000000\n");
	put(t, "sys/devices/system/memory/auto_online_blocks", "online_movable\n");
	put(t, "sys/devices/system/memory/power/async", "disabled\n");
	put_block(t, 0, "online", "none"); /* spans DMA and DMA32 */
	put_block(t, 1, "online", "Normal");
	put_block(t, 2, "online", "Movable");
	put_block(t, 3, "offline", "Normal Movable");
	put_block(t, 32, "online", "Movable");
	put_block(t, 33, "going-offline", "Movable");
}

static int setup(void **state)
{
	return faketree_setup(state, "collect", false);
}

static struct collector *new_collector(const struct faketree *t, bool threads)
{
	struct collect_opts o;
	struct collector *c;

	collect_opts_default(&o);
	o.scan_threads = threads;
	o.top_threads = 3;
	c = collect_new(t->root, &o);
	assert_non_null(c);
	return c;
}

static void online_3(const struct faketree *t)
{
	put_block(t, 3, "online", "Movable");
}

static void offline_32_mem(const struct faketree *t)
{
	put_block(t, 32, "offline", "Movable");
	put_meminfo(t, 4046848 - 131072);
}

static void add_40(const struct faketree *t)
{
	put_block(t, 40, "online", "Movable");
}

static void swap_40_41(const struct faketree *t)
{
	rm_rel(t, "sys/devices/system/memory/memory40");
	put_block(t, 41, "online", "Normal");
}

static void remove_41(const struct faketree *t)
{
	rm_rel(t, "sys/devices/system/memory/memory41");
}

/* Block counts are re-read when MemTotal or the set of blocks changes, and at least every
 * 60 s; a state change with neither (impossible on a real kernel, where onlining changes
 * MemTotal) shows only at the periodic read, which proves the counts are reused. */
static void test_mem_blocks_reread(void **state)
{
	static const struct {
		uint64_t now_ms;
		void (*change)(const struct faketree *t);
		unsigned online, movable;
	} steps[] = {
	        {1000, NULL, 4, 2},
	        {2000, online_3, 4, 2},        /* same set, same MemTotal: reused */
	        {60999, NULL, 4, 2},           /* not 60 s yet */
	        {61000, NULL, 5, 3},           /* periodic full read */
	        {62000, offline_32_mem, 4, 2}, /* MemTotal changed */
	        {63000, add_40, 5, 3},         /* a new block */
	        {64000, swap_40_41, 5, 2},     /* same count, another block */
	        {65000, remove_41, 4, 2},      /* a block fewer */
	        {66000, NULL, 4, 2},
	};
	struct faketree *t = *state;
	struct collector *c;
	struct sample s;

	build_full(t);
	c = new_collector(t, false);
	for (unsigned i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (steps[i].change)
			steps[i].change(t);
		assert_int_equal(collect_sample(c, steps[i].now_ms, &s), 0);
		assert_true(SAMPLE_HAS(&s, SF_MEM_BLOCKS));
		assert_int_equal(s.mem_block_kib, 131072);
		if (s.mem_blocks_online != steps[i].online ||
		    s.mem_blocks_movable != steps[i].movable)
			fail_msg("step %u: %u online, %u movable; want %u, %u", i,
			         s.mem_blocks_online, s.mem_blocks_movable, steps[i].online,
			         steps[i].movable);
	}
	/* the directory goes away: absent at once, not the old counts */
	rm_rel(t, "sys/devices/system/memory");
	assert_int_equal(collect_sample(c, 67000, &s), 0);
	assert_false(SAMPLE_HAS(&s, SF_MEM_BLOCKS));
	collect_free(c);
}

static void test_full_tree(void **state)
{
	struct faketree *t = *state;
	struct collector *c;
	struct statvfs vfs;
	struct sample s;

	build_full(t);
	c = new_collector(t, false);
	assert_int_equal(collect_sample(c, 5000, &s), 0);
	assert_int_equal(s.mono_ms, 5000);
	/* first call: no rates, no interval */
	assert_false(SAMPLE_HAS(&s, SF_INTERVAL));
	assert_false(SAMPLE_HAS(&s, SF_CPU_BUSY));
	assert_false(SAMPLE_HAS(&s, SF_CPU_STEAL));
	assert_false(SAMPLE_HAS(&s, SF_THREADS));
	assert_false(SAMPLE_HAS(&s, SF_SATURATED));

	assert_true(SAMPLE_HAS(&s, SF_CPU_ONLINE));
	assert_int_equal(s.cpus_online, 2);
	assert_true(SAMPLE_HAS(&s, SF_CPU_PRESENT));
	assert_int_equal(s.cpus_present, 5);
	assert_true(SAMPLE_HAS(&s, SF_LOAD));
	assert_float_equal(s.load1, 0.50, 1e-6);
	assert_float_equal(s.load5, 0.25, 1e-6);
	assert_float_equal(s.load15, 1.75, 1e-6);
	assert_true(SAMPLE_HAS(&s, SF_PSI_CPU_SOME));
	assert_true(SAMPLE_HAS(&s, SF_PSI_CPU_FULL));
	assert_float_equal(s.psi_cpu_some_avg10, 1.50, 1e-6);
	assert_float_equal(s.psi_cpu_full_avg10, 0.0, 1e-6);
	assert_true(SAMPLE_HAS(&s, SF_PSI_MEM_SOME));
	assert_true(SAMPLE_HAS(&s, SF_PSI_MEM_FULL));
	assert_float_equal(s.psi_mem_some_avg10, 2.25, 1e-6);
	assert_float_equal(s.psi_mem_full_avg10, 0.75, 1e-6);
	assert_true(SAMPLE_HAS(&s, SF_MEM_TOTAL));
	assert_true(SAMPLE_HAS(&s, SF_MEM_AVAIL));
	assert_true(SAMPLE_HAS(&s, SF_MEM_FREE));
	assert_true(SAMPLE_HAS(&s, SF_SWAP));
	assert_int_equal(s.mem_total_kib, 4046848);
	assert_int_equal(s.mem_free_kib, 1000000);
	assert_int_equal(s.mem_avail_kib, 3000000);
	assert_int_equal(s.swap_total_kib, 1048572);
	assert_int_equal(s.swap_free_kib, 524288);
	assert_true(SAMPLE_HAS(&s, SF_MEM_BLOCKS));
	assert_int_equal(s.mem_block_kib, 131072);
	assert_int_equal(s.mem_blocks_online, 4);
	assert_int_equal(s.mem_blocks_movable, 2);
	assert_true(SAMPLE_HAS(&s, SF_ROOTFS));
	assert_int_equal(statvfs(t->root, &vfs), 0);
	assert_int_equal(s.rootfs_size_kib, (uint64_t)vfs.f_blocks * vfs.f_frsize / 1024);
	assert_true(s.rootfs_used_kib <= s.rootfs_size_kib);

	/* 1 s later: user +60 (30 of it guest time, already inside user), system +20, idle +80,
	 * iowait +20, irq +5, softirq +5, steal +10: total 200, busy 90, steal 10 */
	put_stat(t, 2, 160, 120, 780, 120, 5, 5, 10, 30);
	assert_int_equal(collect_sample(c, 6000, &s), 0);
	assert_true(SAMPLE_HAS(&s, SF_INTERVAL));
	assert_int_equal(s.interval_ms, 1000);
	assert_true(SAMPLE_HAS(&s, SF_CPU_BUSY));
	assert_true(SAMPLE_HAS(&s, SF_CPU_STEAL));
	assert_float_equal(s.cpu_busy_pct, 45.0, 1e-4);
	assert_float_equal(s.cpu_steal_pct, 5.0, 1e-4);
	assert_false(SAMPLE_HAS(&s, SF_THREADS)); /* scan_threads off */

	/* counters went back (a CPU went away): no rate this time, rates again after */
	put_stat(t, 2, 100, 100, 700, 100, 0, 0, 0, 0);
	assert_int_equal(collect_sample(c, 7000, &s), 0);
	assert_false(SAMPLE_HAS(&s, SF_CPU_BUSY));
	assert_false(SAMPLE_HAS(&s, SF_CPU_STEAL));
	assert_true(SAMPLE_HAS(&s, SF_CPU_ONLINE));
	put_stat(t, 2, 200, 100, 800, 100, 0, 0, 0, 0);
	assert_int_equal(collect_sample(c, 8000, &s), 0);
	assert_float_equal(s.cpu_busy_pct, 50.0, 1e-4);
	assert_float_equal(s.cpu_steal_pct, 0.0, 1e-4);
	collect_free(c);
}

static void test_missing_files(void **state)
{
	struct faketree *t = *state;
	struct collector *c;
	struct sample s;

	build_full(t);
	rm_rel(t, "proc/pressure");
	rm_rel(t, "sys/devices/system/memory");
	rm_rel(t, "sys/devices/system/cpu/online");
	put(t, "proc/meminfo", "MemTotal: 2048 kB\nMemFree: 1024 kB\nSwapTotal: 0 kB\n");
	c = new_collector(t, true);
	assert_int_equal(collect_sample(c, 1000, &s), 0);
	put_stat(t, 3, 200, 100, 800, 100, 0, 0, 0, 0);
	assert_int_equal(collect_sample(c, 2000, &s), 0);

	assert_false(SAMPLE_HAS(&s, SF_PSI_CPU_SOME));
	assert_false(SAMPLE_HAS(&s, SF_PSI_CPU_FULL));
	assert_false(SAMPLE_HAS(&s, SF_PSI_MEM_SOME));
	assert_false(SAMPLE_HAS(&s, SF_PSI_MEM_FULL));
	assert_false(SAMPLE_HAS(&s, SF_MEM_BLOCKS));
	assert_int_equal(s.mem_blocks_online, 0);
	assert_false(SAMPLE_HAS(&s, SF_MEM_AVAIL));
	assert_false(SAMPLE_HAS(&s, SF_SWAP)); /* SwapFree missing */

	assert_true(SAMPLE_HAS(&s, SF_CPU_ONLINE)); /* counted from the cpuN lines */
	assert_int_equal(s.cpus_online, 3);
	assert_true(SAMPLE_HAS(&s, SF_CPU_PRESENT));
	assert_true(SAMPLE_HAS(&s, SF_CPU_BUSY));
	assert_float_equal(s.cpu_busy_pct, 50.0, 1e-4);
	assert_true(SAMPLE_HAS(&s, SF_LOAD));
	assert_true(SAMPLE_HAS(&s, SF_MEM_TOTAL));
	assert_int_equal(s.mem_total_kib, 2048);
	assert_true(SAMPLE_HAS(&s, SF_MEM_FREE));
	assert_true(SAMPLE_HAS(&s, SF_ROOTFS));
	/* no /proc/<pid> dirs: the scan worked and found nobody */
	assert_true(SAMPLE_HAS(&s, SF_THREADS));
	assert_int_equal(s.nthreads, 0);
	assert_true(SAMPLE_HAS(&s, SF_SATURATED));
	assert_false(s.saturated);
	collect_free(c);
}

static void test_garbage_files(void **state)
{
	struct faketree *t = *state;
	struct collector *c;
	struct sample s;

	build_full(t);
	put(t, "sys/devices/system/cpu/online", "zero\n");
	put(t, "sys/devices/system/cpu/present", "3-1\n");
	put(t, "proc/loadavg", "\n");
	put(t, "proc/pressure/cpu", "some avg=1\n");
	put(t, "sys/devices/system/memory/block_size_bytes", "\n");
	c = new_collector(t, false);
	assert_int_equal(collect_sample(c, 1000, &s), 0);
	assert_int_equal(s.cpus_online, 2); /* fell back to the cpuN lines */
	assert_false(SAMPLE_HAS(&s, SF_CPU_PRESENT));
	assert_false(SAMPLE_HAS(&s, SF_LOAD));
	assert_false(SAMPLE_HAS(&s, SF_PSI_CPU_SOME));
	assert_false(SAMPLE_HAS(&s, SF_MEM_BLOCKS));
	assert_true(SAMPLE_HAS(&s, SF_PSI_MEM_SOME));
	collect_free(c);
}

static void test_nothing_readable(void **state)
{
	struct faketree *t = *state;
	struct collect_opts o;
	struct collector *c;
	struct sample s;

	collect_opts_default(&o);
	o.scan_threads = false;
	/* a root with no proc or sys at all; rootfs alone still counts as a figure */
	c = collect_new(t->root, &o);
	assert_non_null(c);
	assert_int_equal(collect_sample(c, 1, &s), 0);
	assert_true(SAMPLE_HAS(&s, SF_ROOTFS));
	assert_int_equal(s.has, 1u << SF_ROOTFS);
	collect_free(c);

	assert_null(collect_new("/nonexistent-vscale-root", &o));
	assert_int_equal(errno, ENOENT);
}

/* ---- threads in a fake /proc ---- */

struct fake_thread {
	unsigned pid, tid;
	const char *comm;
	uint64_t utime, stime;
	uint64_t start;
};

static void put_stat_line(const struct faketree *t, const char *rel, unsigned id, unsigned pid,
                          const char *comm, uint64_t utime, uint64_t stime, unsigned nlwp,
                          uint64_t start)
{
	put(t, rel,
	    "%u (%s) R 1 %u %u 0 -1 4194304 120 0 0 0 %llu %llu 0 0 20 0 %u 0 %llu 12345678 "
	    "250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
	    id, comm, pid, pid, (unsigned long long)utime, (unsigned long long)stime, nlwp,
	    (unsigned long long)start);
}

/* Writes every thread's task/<tid>/stat, and each process's own stat with the sum of its
 * threads (its leader, or first thread, gives name and start time). */
static void put_threads(const struct faketree *t, const struct fake_thread *th, unsigned n)
{
	char rel[128];

	for (unsigned i = 0; i < n; i++) {
		uint64_t utime = 0, stime = 0;
		const struct fake_thread *lead = NULL;
		unsigned nlwp = 0;
		bool first = true;

		for (unsigned j = 0; j < n; j++) {
			if (th[j].pid != th[i].pid)
				continue;
			if (j < i)
				first = false;
			nlwp++;
			utime += th[j].utime;
			stime += th[j].stime;
			if (!lead || th[j].tid == th[j].pid)
				lead = &th[j];
		}
		snprintf(rel, sizeof(rel), "proc/%u/task/%u/stat", th[i].pid, th[i].tid);
		put_stat_line(t, rel, th[i].tid, th[i].pid, th[i].comm, th[i].utime, th[i].stime,
		              nlwp, th[i].start);
		if (!first)
			continue;
		snprintf(rel, sizeof(rel), "proc/%u/stat", th[i].pid);
		put_stat_line(t, rel, th[i].pid, th[i].pid, lead->comm, utime, stime, nlwp,
		              lead->start);
	}
}

/* /proc/stat for ncpu CPUs after `step` intervals of 1 s with busy_cpus CPUs busy. */
static void put_stat_busy(const struct faketree *t, unsigned ncpu, unsigned step, double busy_cpus,
                          unsigned hz)
{
	uint64_t busy = (uint64_t)(step * busy_cpus * hz);
	uint64_t idle = (uint64_t)step * ncpu * hz - busy;

	put_stat(t, ncpu, 1000 + busy, 500, 10000 + idle, 0, 0, 0, 0, 0);
}

/* A process with 3 threads; the worker with a ')' and a space in its name spins on one CPU of
 * two while the VM is otherwise idle: saturated once it has been hot for 3 samples. */
static void test_spinning_thread(void **state)
{
	struct faketree *t = *state;
	unsigned hz = (unsigned)sysconf(_SC_CLK_TCK);
	struct fake_thread th[3] = {
	        {100, 100, "server", 50, 20, 4000},
	        {100, 101, "srv) work", 900, 100, 4100},
	        {100, 102, "logger", 10, 10, 4100},
	};
	struct collector *c;
	struct sample s;

	build_full(t);
	put(t, "proc/1/stat",
	    "1 (init) S 0 1 1 0 -1 4194560 1 0 0 0 7 3 0 0 20 0 1 0 "
	    "1 1 1 1 1 1 1 1 1 1 1 1 1 1 0 0 0 17 0 0 0 0\n");
	put(t, "proc/100/cmdline", "server\n"); /* other files in a pid dir are ignored */
	c = new_collector(t, true);
	for (unsigned step = 0; step <= 5; step++) {
		put_stat_busy(t, 2, step, 1.0, hz);
		put_threads(t, th, 3);
		assert_int_equal(collect_sample(c, 10000 + step * 1000, &s), 0);
		/* the worker uses a whole CPU per interval, split between user and system */
		th[1].utime += hz * 3 / 4;
		th[1].stime += hz - hz * 3 / 4;
		th[2].utime += 1;
		if (step == 0) {
			assert_false(SAMPLE_HAS(&s, SF_THREADS));
			assert_false(SAMPLE_HAS(&s, SF_SATURATED));
			continue;
		}
		assert_true(SAMPLE_HAS(&s, SF_CPU_BUSY));
		assert_float_equal(s.cpu_busy_pct, 50.0, 1e-3);
		assert_true(SAMPLE_HAS(&s, SF_THREADS));
		assert_true(SAMPLE_HAS(&s, SF_SATURATED));
		assert_int_equal(s.nthreads, 2);
		assert_int_equal(s.threads[0].tid, 101);
		assert_string_equal(s.threads[0].comm, "srv) work");
		assert_float_equal(s.threads[0].cpu_pct, 100.0, 1e-3);
		assert_int_equal(s.threads[1].tid, 102);
		assert_string_equal(s.threads[1].comm, "logger");
		assert_float_equal(s.threads[1].cpu_pct, 100.0 / hz, 1e-3);
		if (s.saturated != (step >= 3))
			fail_msg("step %u: saturated %d", step, s.saturated);
	}
	collect_free(c);
}

/* Both CPUs busy with two spinning threads: hot, but not single-thread saturation. */
static void test_all_cpus_busy(void **state)
{
	struct faketree *t = *state;
	unsigned hz = (unsigned)sysconf(_SC_CLK_TCK);
	struct fake_thread th[4] = {
	        {200, 200, "a", 0, 0, 1},
	        {200, 201, "a-1", 0, 0, 1},
	        {300, 300, "b", 0, 0, 1},
	        {300, 301, "b-1", 0, 0, 1},
	};
	struct collector *c;
	struct sample s;

	build_full(t);
	c = new_collector(t, true);
	for (unsigned step = 0; step <= 5; step++) {
		put_stat_busy(t, 2, step, 2.0, hz);
		put_threads(t, th, 4);
		assert_int_equal(collect_sample(c, 1000 + step * 1000, &s), 0);
		th[1].utime += hz;
		th[3].stime += hz;
		th[0].utime += hz / 50;
		if (step == 0)
			continue;
		assert_float_equal(s.cpu_busy_pct, 100.0, 1e-3);
		assert_true(SAMPLE_HAS(&s, SF_SATURATED));
		assert_false(s.saturated);
		assert_int_equal(s.nthreads, 3);
		assert_float_equal(s.threads[0].cpu_pct, 100.0, 1e-3);
		assert_float_equal(s.threads[1].cpu_pct, 100.0, 1e-3);
		assert_int_equal(s.threads[2].tid, 200);
	}
	collect_free(c);
}

/* One visible spinner, but /proc/stat says both CPUs are busy (work the scan cannot see, such
 * as short-lived processes): the VM-wide figure wins, so no saturation. */
static void test_busy_beyond_threads(void **state)
{
	struct faketree *t = *state;
	unsigned hz = (unsigned)sysconf(_SC_CLK_TCK);
	struct fake_thread th = {500, 500, "spin", 0, 0, 1};
	struct collector *c;
	struct sample s;

	build_full(t);
	c = new_collector(t, true);
	for (unsigned step = 0; step <= 5; step++) {
		put_stat_busy(t, 2, step, 1.9, hz);
		put_threads(t, &th, 1);
		assert_int_equal(collect_sample(c, 1000 + step * 1000, &s), 0);
		th.utime += hz;
	}
	assert_int_equal(s.nthreads, 1);
	assert_float_equal(s.threads[0].cpu_pct, 100.0, 1e-3);
	assert_true(SAMPLE_HAS(&s, SF_SATURATED));
	assert_false(s.saturated);
	collect_free(c);
}

/* A hot thread exits, another starts with many ticks already: no spike, and the exited one is
 * no longer listed; a saturation streak does not survive the exit. */
static void test_thread_exits(void **state)
{
	struct faketree *t = *state;
	unsigned hz = (unsigned)sysconf(_SC_CLK_TCK);
	struct fake_thread th[3] = {
	        {400, 400, "main", 0, 0, 1},
	        {400, 401, "hot", 0, 0, 1},
	        {400, 402, "late", 5000, 5000, 9},
	};
	struct fake_thread live[3];
	struct collector *c;
	struct sample s;

	build_full(t);
	c = new_collector(t, true);
	for (unsigned step = 0; step <= 4; step++) {
		put_stat_busy(t, 2, step, 1.0, hz);
		put_threads(t, th, 2);
		assert_int_equal(collect_sample(c, 1000 + step * 1000, &s), 0);
		th[1].utime += hz;
	}
	assert_true(s.saturated);
	assert_int_equal(s.threads[0].tid, 401);

	rm_rel(t, "proc/400/task/401");
	live[0] = th[0];
	live[1] = th[2];
	put_stat_busy(t, 2, 5, 1.0, hz);
	put_threads(t, live, 2);
	assert_int_equal(collect_sample(c, 6000, &s), 0);
	assert_true(SAMPLE_HAS(&s, SF_THREADS));
	assert_int_equal(s.nthreads, 0);
	assert_false(s.saturated);

	/* tid 401 comes back as a new thread (new start time) already hot: streak starts over */
	th[1].start = 50;
	for (unsigned step = 6; step <= 8; step++) {
		put_stat_busy(t, 2, step, 1.0, hz);
		live[2] = th[1];
		put_threads(t, live, 3);
		assert_int_equal(collect_sample(c, 1000 + step * 1000, &s), 0);
		th[1].utime += hz;
		assert_false(s.saturated);
	}
	collect_free(c);
}

/* Process 700's threads are idle, so after the first samples its task files are not read:
 * rewriting one of them alone changes nothing, while process 100's spinner is still found and
 * saturates. Once 700's own stat agrees, its thread is read and measured from the figures it
 * had when last read. */
static void test_idle_process_skipped(void **state)
{
	struct faketree *t = *state;
	unsigned hz = (unsigned)sysconf(_SC_CLK_TCK);
	struct fake_thread th[4] = {
	        {100, 100, "server", 5, 5, 10},
	        {100, 101, "spin", 0, 0, 11},
	        {700, 700, "idle", 3, 3, 20},
	        {700, 701, "idle-w", 1, 1, 21},
	};
	struct collector *c;
	struct sample s;

	build_full(t);
	c = new_collector(t, true);
	for (unsigned step = 0; step <= 5; step++) {
		put_stat_busy(t, 2, step, 1.0, hz);
		if (step == 5)
			th[3].utime += hz / 2;
		put_threads(t, th, 4);
		if (step == 3) /* a whole CPU for 701, in its task file only */
			put_stat_line(t, "proc/700/task/701/stat", 701, 700, "idle-w", 1 + hz, 1, 2,
			              21);
		assert_int_equal(collect_sample(c, 1000 + step * 1000, &s), 0);
		th[1].utime += hz;
		if (step == 0)
			continue;
		assert_true(SAMPLE_HAS(&s, SF_SATURATED));
		if (s.saturated != (step >= 3))
			fail_msg("step %u: saturated %d", step, s.saturated);
		assert_int_equal(s.threads[0].tid, 101);
		assert_float_equal(s.threads[0].cpu_pct, 100.0, 1e-3);
		if (step < 5) {
			assert_int_equal(s.nthreads, 1);
			continue;
		}
		assert_int_equal(s.nthreads, 2);
		assert_int_equal(s.threads[1].tid, 701);
		assert_float_equal(s.threads[1].cpu_pct, 100.0 * (hz / 2) / hz, 1e-3);
	}
	collect_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_full_tree, setup, faketree_teardown),
	        cmocka_unit_test_setup_teardown(test_missing_files, setup, faketree_teardown),
	        cmocka_unit_test_setup_teardown(test_garbage_files, setup, faketree_teardown),
	        cmocka_unit_test_setup_teardown(test_nothing_readable, setup, faketree_teardown),
	        cmocka_unit_test_setup_teardown(test_spinning_thread, setup, faketree_teardown),
	        cmocka_unit_test_setup_teardown(test_all_cpus_busy, setup, faketree_teardown),
	        cmocka_unit_test_setup_teardown(test_busy_beyond_threads, setup, faketree_teardown),
	        cmocka_unit_test_setup_teardown(test_thread_exits, setup, faketree_teardown),
	        cmocka_unit_test_setup_teardown(test_idle_process_skipped, setup,
	                                        faketree_teardown),
	        cmocka_unit_test_setup_teardown(test_mem_blocks_reread, setup, faketree_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
