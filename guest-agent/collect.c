/* The guest's metric collector: /proc and /sys under a root directory -> struct sample.
 * Every file is opened relative to a directory fd kept on the root (one openat per file), read
 * into the collector's scratch buffer and parsed in place; a figure that cannot be read is left
 * absent. Rates (busy %, steal %, per-thread %) come from the previous call's counters; memory
 * block counts are reused until MemTotal or the set of blocks changes (read_mem_blocks). */
#include "collect.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "procs.h"
#include "threads.h"
#include "util.h"

#define SCRATCH_LEN 8192 /* /proc/stat with a long intr line is cut: only the head is used */
#define DIRENT_BUF  4096
#define MEM_DIR     "sys/devices/system/memory"
#define CPU_DIR     "sys/devices/system/cpu"

#define MEM_BLOCKS_MAX_AGE_MS 60000 /* see read_mem_blocks() */

struct cpu_times {
	uint64_t total; /* user..steal: guest time is already inside user and nice */
	uint64_t idle;  /* idle + iowait */
	uint64_t steal;
};

/* Memory block counts of the last full read, and what they were read under. */
struct mem_blocks {
	bool valid;
	uint32_t count; /* memoryN entries */
	uint64_t hash;  /* of their numbers */
	uint64_t mem_total_kib;
	uint64_t read_ms;
	uint64_t block_kib;
	uint32_t online, movable;
};

struct collector {
	int root_fd;
	struct collect_opts opts;

	struct threads *threads;
	struct procs *procs;

	bool have_prev;
	uint64_t prev_ms;
	bool have_cpu;
	struct cpu_times prev_cpu;
	struct mem_blocks blocks;

	char scratch[SCRATCH_LEN];
};

void collect_opts_default(struct collect_opts *o)
{
	o->top_threads = 5;
	o->saturation_pct = 95;
	o->saturation_samples = 3;
	o->rest_idle_pct = 50;
	o->scan_threads = true;
}

static char *next_line(char *p)
{
	p = strchr(p, '\n');
	return p ? p + 1 : NULL;
}

/* "cpu  user nice system idle iowait irq softirq steal guest guest_nice": at least 4 values. */
static int parse_cpu_line(const char *p, struct cpu_times *ret)
{
	uint64_t v[8] = {0};
	unsigned n;
	char *end;

	p += 3;
	for (n = 0; n < 8; n++) {
		v[n] = strtoull(p, &end, 10);
		if (end == p)
			break;
		p = end;
	}
	if (n < 4)
		return -EINVAL;
	ret->total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
	ret->idle = v[3] + v[4];
	ret->steal = v[7];
	return 0;
}

/* Counts the "cpuN" lines (online CPUs); -ENODATA when the buffer was cut among them. */
static int count_cpu_lines(char *p)
{
	int n = 0;

	for (p = next_line(p); p && *p; p = next_line(p)) {
		if (strncmp(p, "cpu", 3) != 0)
			return n;
		n++;
	}
	return -ENODATA;
}

static void rate_cpu(struct collector *c, const struct cpu_times *now, struct sample *ret)
{
	const struct cpu_times *old = &c->prev_cpu;
	uint64_t dt, didle, dsteal;

	if (!c->have_cpu || now->total <= old->total || now->idle < old->idle ||
	    now->steal < old->steal)
		return; /* first call, or counters went back (CPU unplugged): no rate this time */
	dt = now->total - old->total;
	didle = now->idle - old->idle;
	dsteal = now->steal - old->steal;
	if (didle + dsteal > dt)
		return;
	ret->cpu_busy_pct = (float)((double)(dt - didle - dsteal) * 100.0 / (double)dt);
	ret->cpu_steal_pct = (float)((double)dsteal * 100.0 / (double)dt);
	SAMPLE_SET(ret, SF_CPU_BUSY);
	SAMPLE_SET(ret, SF_CPU_STEAL);
}

static int read_proc_stat(struct collector *c, struct sample *ret, int *ret_cpu_lines)
{
	struct cpu_times now;
	ssize_t len;

	*ret_cpu_lines = -ENODATA;
	len = util_read_at(c->root_fd, "proc/stat", c->scratch, sizeof(c->scratch));
	if (len < 0)
		return (int)len;
	if (strncmp(c->scratch, "cpu ", 4) != 0 || parse_cpu_line(c->scratch, &now) < 0)
		return -EINVAL;
	rate_cpu(c, &now, ret);
	c->prev_cpu = now;
	c->have_cpu = true;
	*ret_cpu_lines = count_cpu_lines(c->scratch);
	return 0;
}

/* "0-3,5\n" -> 5. */
static int parse_cpu_list(const char *p, uint32_t *ret)
{
	uint32_t n = 0;

	while (*p && *p != '\n') {
		unsigned long a, b;
		char *end;

		a = strtoul(p, &end, 10);
		if (end == p)
			return -EINVAL;
		b = a;
		p = end;
		if (*p == '-') {
			b = strtoul(p + 1, &end, 10);
			if (end == p + 1 || b < a)
				return -EINVAL;
			p = end;
		}
		n += (uint32_t)(b - a + 1);
		if (*p == ',')
			p++;
		else if (*p && *p != '\n')
			return -EINVAL;
	}
	if (n == 0)
		return -EINVAL;
	*ret = n;
	return 0;
}

static int read_cpu_list(struct collector *c, const char *rel, uint32_t *ret)
{
	char buf[256];
	ssize_t len = util_read_at(c->root_fd, rel, buf, sizeof(buf));

	return len < 0 ? (int)len : parse_cpu_list(buf, ret);
}

static void read_cpus(struct collector *c, int cpu_lines, struct sample *ret)
{
	if (read_cpu_list(c, CPU_DIR "/online", &ret->cpus_online) == 0) {
		SAMPLE_SET(ret, SF_CPU_ONLINE);
	} else if (cpu_lines > 0) {
		ret->cpus_online = (uint32_t)cpu_lines;
		SAMPLE_SET(ret, SF_CPU_ONLINE);
	}
	if (read_cpu_list(c, CPU_DIR "/present", &ret->cpus_present) == 0)
		SAMPLE_SET(ret, SF_CPU_PRESENT);
}

static int read_loadavg(struct collector *c, struct sample *ret)
{
	char buf[128];
	ssize_t len = util_read_at(c->root_fd, "proc/loadavg", buf, sizeof(buf));
	char *p = buf, *end;
	float v[3];

	if (len < 0)
		return (int)len;
	for (int i = 0; i < 3; i++) {
		v[i] = strtof(p, &end);
		if (end == p)
			return -EINVAL;
		p = end;
	}
	ret->load1 = v[0];
	ret->load5 = v[1];
	ret->load15 = v[2];
	SAMPLE_SET(ret, SF_LOAD);
	return 0;
}

/* "some avg10=1.23 avg60=... total=N\nfull avg10=..." -> the two avg10 figures. */
static int read_psi(struct collector *c, const char *rel, float *some, float *full,
                    enum sample_field some_bit, enum sample_field full_bit, struct sample *ret)
{
	char buf[256];
	ssize_t len = util_read_at(c->root_fd, rel, buf, sizeof(buf));

	if (len < 0)
		return (int)len;
	for (char *p = buf; p && *p; p = next_line(p)) {
		bool is_some = strncmp(p, "some avg10=", 11) == 0;
		char *end;
		float v;

		if (!is_some && strncmp(p, "full avg10=", 11) != 0)
			continue;
		v = strtof(p + 11, &end);
		if (end == p + 11)
			continue;
		*(is_some ? some : full) = v;
		SAMPLE_SET(ret, is_some ? some_bit : full_bit);
	}
	return 0;
}

static int read_meminfo(struct collector *c, struct sample *ret)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
	        {"MemTotal:", offsetof(struct sample, mem_total_kib)},
	        {"MemFree:", offsetof(struct sample, mem_free_kib)},
	        {"MemAvailable:", offsetof(struct sample, mem_avail_kib)},
	        {"SwapTotal:", offsetof(struct sample, swap_total_kib)},
	        {"SwapFree:", offsetof(struct sample, swap_free_kib)},
	};
	unsigned found = 0;
	ssize_t len;

	len = util_read_at(c->root_fd, "proc/meminfo", c->scratch, sizeof(c->scratch));
	if (len < 0)
		return (int)len;
	for (char *p = c->scratch; p && *p; p = next_line(p)) {
		for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			size_t klen = strlen(keys[i].key);
			char *end;
			uint64_t v;

			if (strncmp(p, keys[i].key, klen) != 0)
				continue;
			v = strtoull(p + klen, &end, 10);
			if (end != p + klen) {
				memcpy((char *)ret + keys[i].off, &v, sizeof(v));
				found |= 1u << i;
			}
			break;
		}
	}
	if (found & 1u)
		SAMPLE_SET(ret, SF_MEM_TOTAL);
	if (found & 2u)
		SAMPLE_SET(ret, SF_MEM_FREE);
	if (found & 4u)
		SAMPLE_SET(ret, SF_MEM_AVAIL);
	if ((found & 24u) == 24u)
		SAMPLE_SET(ret, SF_SWAP);
	return found ? 0 : -EINVAL;
}

/* "memoryN" with N at most 10 digits. */
static bool parse_block_name(const char *name, uint64_t *ret)
{
	size_t len = strlen(name);
	uint64_t n = 0;

	if (len < 7 || len > 16 || strncmp(name, "memory", 6) != 0)
		return false;
	for (name += 6; *name; name++) {
		if (*name < '0' || *name > '9')
			return false;
		n = n * 10 + (uint64_t)(*name - '0');
	}
	*ret = n;
	return true;
}

/* Order-free signature of the memoryN entries: their count and a sum of mixed numbers. */
static int list_blocks(int memfd, uint32_t *ret_count, uint64_t *ret_hash)
{
	char dbuf[DIRENT_BUF] __attribute__((aligned(8)));
	uint64_t hash = 0, n;
	uint32_t count = 0;
	ssize_t nread;

	while ((nread = getdents64(memfd, dbuf, sizeof(dbuf))) > 0) {
		for (ssize_t off = 0; off < nread;) {
			struct dirent64 *d = (struct dirent64 *)(dbuf + off);

			off += d->d_reclen;
			if (!parse_block_name(d->d_name, &n))
				continue;
			count++;
			n = (n + 1) * 0x9e3779b97f4a7c15ull; /* splitmix64-style mixing */
			n = (n ^ (n >> 30)) * 0xbf58476d1ce4e5b9ull;
			n = (n ^ (n >> 27)) * 0x94d049bb133111ebull;
			hash += n ^ (n >> 31);
		}
	}
	if (nread < 0)
		return -errno;
	*ret_count = count;
	*ret_hash = hash;
	return 0;
}

/* One memoryN directory: its state and, when online, the zone it is in. */
static void count_block(int memfd, const char *name, struct mem_blocks *b)
{
	size_t nlen = strlen(name);
	char rel[32], buf[64];

	memcpy(rel, name, nlen);
	memcpy(rel + nlen, "/state", sizeof("/state"));
	if (util_read_at(memfd, rel, buf, sizeof(buf)) < 0 || strncmp(buf, "online", 6) != 0 ||
	    (buf[6] != '\n' && buf[6] != '\0'))
		return;
	b->online++;
	memcpy(rel + nlen, "/valid_zones", sizeof("/valid_zones"));
	if (util_read_at(memfd, rel, buf, sizeof(buf)) >= 0 && strncmp(buf, "Movable", 7) == 0 &&
	    (buf[7] == '\n' || buf[7] == ' ' || buf[7] == '\0'))
		b->movable++;
}

/* The full read: block size and two files per block. */
static int count_blocks(int memfd, struct mem_blocks *b)
{
	char dbuf[DIRENT_BUF] __attribute__((aligned(8)));
	char buf[64], *end;
	ssize_t nread;
	uint64_t n;

	if (util_read_at(memfd, "block_size_bytes", buf, sizeof(buf)) < 0)
		return -ENODATA;
	b->block_kib = strtoull(buf, &end, 16) / 1024;
	if (end == buf || b->block_kib == 0)
		return -EINVAL;
	b->online = b->movable = 0;
	if (lseek(memfd, 0, SEEK_SET) < 0)
		return -errno;
	while ((nread = getdents64(memfd, dbuf, sizeof(dbuf))) > 0) {
		for (ssize_t off = 0; off < nread;) {
			struct dirent64 *d = (struct dirent64 *)(dbuf + off);

			off += d->d_reclen;
			if (parse_block_name(d->d_name, &n))
				count_block(memfd, d->d_name, b);
		}
	}
	return nread < 0 ? -errno : 0;
}

/* Reading every block's state costs two sysfs files per block (~1.7 ms for 192 blocks), so the
 * counts are reused while the set of blocks and MemTotal stay the same: onlining or offlining a
 * block changes MemTotal, adding or removing one changes the set. What this misses, one block
 * offlined and another of the same size onlined between two samples, is caught by a full read
 * at least every MEM_BLOCKS_MAX_AGE_MS. */
static int read_mem_blocks(struct collector *c, uint64_t now_ms, struct sample *ret)
{
	struct mem_blocks *b = &c->blocks;
	uint64_t hash, mem_total_kib = SAMPLE_HAS(ret, SF_MEM_TOTAL) ? ret->mem_total_kib : 0;
	uint32_t count;
	int memfd, r;

	memfd = openat(c->root_fd, MEM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (memfd < 0) {
		b->valid = false;
		return -errno;
	}
	r = list_blocks(memfd, &count, &hash);
	if (r == 0 && (!b->valid || b->count != count || b->hash != hash || !mem_total_kib ||
	               b->mem_total_kib != mem_total_kib || now_ms < b->read_ms ||
	               now_ms - b->read_ms >= MEM_BLOCKS_MAX_AGE_MS)) {
		r = count_blocks(memfd, b);
		b->count = count;
		b->hash = hash;
		b->mem_total_kib = mem_total_kib;
		b->read_ms = now_ms;
	}
	close(memfd);
	b->valid = r == 0;
	if (r < 0)
		return r;
	ret->mem_block_kib = b->block_kib;
	ret->mem_blocks_online = b->online;
	ret->mem_blocks_movable = b->movable;
	SAMPLE_SET(ret, SF_MEM_BLOCKS);
	return 0;
}

static int read_rootfs(struct collector *c, struct sample *ret)
{
	struct statvfs st;

	if (fstatvfs(c->root_fd, &st) < 0)
		return -errno;
	ret->rootfs_size_kib = (uint64_t)st.f_blocks * st.f_frsize / 1024;
	ret->rootfs_used_kib = (uint64_t)(st.f_blocks - st.f_bfree) * st.f_frsize / 1024;
	SAMPLE_SET(ret, SF_ROOTFS);
	return 0;
}

static void scan_threads(struct collector *c, uint64_t now_ms, struct sample *ret)
{
	const struct thread_scan *scan;
	double busy_cores = -1;

	if (procs_scan(c->procs, &scan) < 0)
		return;
	if (SAMPLE_HAS(ret, SF_CPU_BUSY) && SAMPLE_HAS(ret, SF_CPU_ONLINE))
		busy_cores = ret->cpu_busy_pct * ret->cpus_online / 100.0;
	threads_update(c->threads, scan, now_ms, busy_cores,
	               SAMPLE_HAS(ret, SF_CPU_ONLINE) ? ret->cpus_online : 0, c->opts.top_threads,
	               ret);
}

int collect_sample(struct collector *c, uint64_t now_ms, struct sample *ret)
{
	int cpu_lines, r, err = 0;

	memset(ret, 0, sizeof(*ret));
	ret->mono_ms = now_ms;
	if (c->have_prev && now_ms > c->prev_ms) {
		uint64_t d = now_ms - c->prev_ms;

		ret->interval_ms = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
		SAMPLE_SET(ret, SF_INTERVAL);
	}
	c->have_prev = true;
	c->prev_ms = now_ms;

	if ((r = read_proc_stat(c, ret, &cpu_lines)) < 0)
		err = r;
	read_cpus(c, cpu_lines, ret);
	if ((r = read_loadavg(c, ret)) < 0 && !err)
		err = r;
	read_psi(c, "proc/pressure/cpu", &ret->psi_cpu_some_avg10, &ret->psi_cpu_full_avg10,
	         SF_PSI_CPU_SOME, SF_PSI_CPU_FULL, ret);
	if ((r = read_meminfo(c, ret)) < 0 && !err)
		err = r;
	read_psi(c, "proc/pressure/memory", &ret->psi_mem_some_avg10, &ret->psi_mem_full_avg10,
	         SF_PSI_MEM_SOME, SF_PSI_MEM_FULL, ret);
	read_mem_blocks(c, now_ms, ret);
	read_rootfs(c, ret);
	if (c->threads)
		scan_threads(c, now_ms, ret);

	if ((ret->has & ~(1u << SF_INTERVAL)) == 0)
		return err ? err : -ENODATA;
	return 0;
}

/* libproc2 reads only the real /proc: a fake tree gets the plain parser, same algorithm. */
static struct procs *new_procs(const char *root)
{
	struct procs *p;
	char *dir;

	if (strcmp(root, "/") == 0)
		return procs_new();
	if (asprintf(&dir, "%s/proc", root) < 0) {
		errno = ENOMEM;
		return NULL;
	}
	p = procs_new_dir(dir);
	free(dir);
	return p;
}

struct collector *collect_new(const char *root, const struct collect_opts *opts)
{
	struct collector *c;
	int r = -ENOMEM;

	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->opts = *opts;
	c->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->root_fd < 0) {
		r = -errno;
		goto out_free;
	}
	if (!opts->scan_threads)
		return c;

	c->threads = threads_new((unsigned)sysconf(_SC_CLK_TCK), opts->saturation_pct,
	                         opts->saturation_samples, opts->rest_idle_pct);
	if (!c->threads)
		goto out_close;
	c->procs = new_procs(root);
	if (!c->procs) {
		r = -errno;
		goto out_free_threads;
	}
	return c;
out_free_threads:
	threads_free(c->threads);
out_close:
	close(c->root_fd);
out_free:
	free(c);
	errno = -r;
	return NULL;
}

void collect_free(struct collector *c)
{
	if (!c)
		return;
	procs_free(c->procs);
	threads_free(c->threads);
	if (c->root_fd >= 0)
		close(c->root_fd);
	free(c);
}
