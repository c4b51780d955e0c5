/* Per-thread CPU accounting: two thread sources (libproc2 on the live /proc, and a plain parser
 * of <proc>/<pid>/task/<tid>/stat for fake trees) and the bookkeeping that turns consecutive
 * scans into % of one CPU per thread, the hottest few, and the single-thread saturation flag.
 * The tid map is open addressing with linear probing and backward-shift deletion, so entries
 * of exited threads are dropped without tombstones. */
#include "threads.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libproc2/pids.h>

#include "util.h"

#define MAP_MIN_BITS 10
#define DIRENT_BUF   4096
#define STAT_BUF     512

struct tentry {
	uint64_t ticks;
	uint64_t start_ticks;
	uint32_t tid;    /* 0: empty slot (tid 0 never shows in /proc) */
	uint16_t streak; /* consecutive hot samples, saturating */
	uint16_t gen;    /* scan that last saw the thread */
};

struct threads {
	unsigned hz;
	double saturation_pct;
	unsigned saturation_samples;
	double rest_idle_pct;

	struct tentry *slots;
	unsigned bits; /* cap = 1 << bits */
	size_t count;
	uint16_t gen;

	bool have_prev;
	uint64_t prev_ms;
};

/* The hottest few of one scan, hottest first. */
struct topk {
	unsigned n, cap;
	float pct[SAMPLE_MAX_THREADS];
	size_t idx[SAMPLE_MAX_THREADS];
};

static size_t map_home(uint32_t tid, unsigned bits)
{
	return (uint32_t)(tid * 2654435761u) >> (32 - bits);
}

static struct tentry *map_probe(struct tentry *slots, unsigned bits, uint32_t tid)
{
	size_t mask = ((size_t)1 << bits) - 1;
	size_t i = map_home(tid, bits);

	while (slots[i].tid && slots[i].tid != tid)
		i = (i + 1) & mask;
	return &slots[i];
}

static int map_grow(struct threads *t)
{
	unsigned bits = t->slots ? t->bits + 1 : MAP_MIN_BITS;
	size_t old_cap = t->slots ? (size_t)1 << t->bits : 0;
	struct tentry *slots;

	slots = calloc((size_t)1 << bits, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < old_cap; i++) {
		if (t->slots[i].tid)
			*map_probe(slots, bits, t->slots[i].tid) = t->slots[i];
	}
	free(t->slots);
	t->slots = slots;
	t->bits = bits;
	return 0;
}

/* Returns the entry of tid, adding an empty one (is_new) when absent; NULL when out of memory. */
static struct tentry *map_get(struct threads *t, uint32_t tid, bool *is_new)
{
	struct tentry *e = map_probe(t->slots, t->bits, tid);

	*is_new = !e->tid;
	if (e->tid)
		return e;
	if ((t->count + 1) * 4 > ((size_t)3 << t->bits)) {
		if (map_grow(t) < 0)
			return NULL;
		e = map_probe(t->slots, t->bits, tid);
	}
	memset(e, 0, sizeof(*e));
	e->tid = tid;
	t->count++;
	return e;
}

/* Backward-shift deletion: moves later members of the probe chain into the hole. */
static void map_delete(struct threads *t, size_t hole)
{
	size_t mask = ((size_t)1 << t->bits) - 1;
	size_t j = hole;

	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!t->slots[j].tid)
			break;
		home = map_home(t->slots[j].tid, t->bits);
		/* the entry at j may fill the hole unless its home lies cyclically in (hole, j] */
		if (hole <= j ? (hole < home && home <= j) : (hole < home || home <= j))
			continue;
		t->slots[hole] = t->slots[j];
		hole = j;
	}
	t->slots[hole].tid = 0;
	t->count--;
}

static void map_sweep(struct threads *t)
{
	size_t cap = (size_t)1 << t->bits;

	for (size_t i = 0; i < cap;) {
		if (t->slots[i].tid && t->slots[i].gen != t->gen)
			map_delete(t, i); /* slot i now holds a shifted entry: look again */
		else
			i++;
	}
}

struct threads *threads_new(unsigned hz, double saturation_pct, unsigned saturation_samples,
                            double rest_idle_pct)
{
	struct threads *t;

	if (hz == 0) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->hz = hz;
	t->saturation_pct = saturation_pct;
	t->saturation_samples = saturation_samples ? saturation_samples : 1;
	t->rest_idle_pct = rest_idle_pct;
	if (map_grow(t) < 0) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

void threads_free(struct threads *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t);
}

static void topk_add(struct topk *k, float pct, size_t idx)
{
	unsigned i;

	if (k->n == k->cap && (k->n == 0 || pct <= k->pct[k->n - 1]))
		return;
	if (k->n < k->cap)
		k->n++;
	for (i = k->n - 1; i > 0 && k->pct[i - 1] < pct; i--) {
		k->pct[i] = k->pct[i - 1];
		k->idx[i] = k->idx[i - 1];
	}
	k->pct[i] = pct;
	k->idx[i] = idx;
}

/* % of one CPU over interval_ms, clamped to [0, 100]; negative when there is no rate. */
static double thread_pct(const struct threads *t, const struct tentry *e, bool is_new,
                         const struct thread_tick *tk, uint64_t interval_ms)
{
	double pct;

	if (is_new || !interval_ms || e->start_ticks != tk->start_ticks || tk->ticks < e->ticks)
		return -1;
	pct = (double)(tk->ticks - e->ticks) * 100.0 * 1000.0 / ((double)t->hz * interval_ms);
	return pct > 100.0 ? 100.0 : pct;
}

static void fill_saturation(const struct threads *t, double hot_pct, double busy_cores,
                            unsigned cpus_online, struct sample *ret)
{
	unsigned rest_cpus = cpus_online > 1 ? cpus_online - 1 : 1;
	double other_cores = busy_cores - hot_pct / 100.0;

	if (other_cores < 0)
		other_cores = 0;
	ret->saturated = hot_pct >= 0 && other_cores * 100.0 / rest_cpus < t->rest_idle_pct;
	SAMPLE_SET(ret, SF_SATURATED);
}

void threads_update(struct threads *t, const struct thread_tick *ticks, size_t n, uint64_t now_ms,
                    double busy_cores, unsigned cpus_online, unsigned top, struct sample *ret)
{
	uint64_t interval_ms = t->have_prev && now_ms > t->prev_ms ? now_ms - t->prev_ms : 0;
	struct topk k = {.cap = top < SAMPLE_MAX_THREADS ? top : SAMPLE_MAX_THREADS};
	double total_pct = 0, hot_pct = -1;
	size_t seen = 0;

	t->gen++;
	for (size_t i = 0; i < n; i++) {
		const struct thread_tick *tk = &ticks[i];
		struct tentry *e;
		bool is_new;
		double pct;

		if (!tk->tid)
			continue;
		e = map_get(t, tk->tid, &is_new);
		if (!e || (!is_new && e->gen == t->gen))
			continue; /* out of memory, or a duplicate tid in one scan */
		pct = thread_pct(t, e, is_new, tk, interval_ms);
		e->ticks = tk->ticks;
		e->start_ticks = tk->start_ticks;
		e->gen = t->gen;
		seen++;
		if (pct >= t->saturation_pct)
			e->streak += e->streak < UINT16_MAX;
		else if (interval_ms)
			e->streak = 0; /* no interval (same now_ms): keep the streak as it was */
		if (pct <= 0)
			continue;
		total_pct += pct;
		topk_add(&k, (float)pct, i);
		if (e->streak >= t->saturation_samples && pct > hot_pct)
			hot_pct = pct;
	}
	if (t->count > seen)
		map_sweep(t);
	t->have_prev = true;
	t->prev_ms = now_ms;
	if (!interval_ms)
		return;

	ret->nthreads = k.n;
	for (unsigned i = 0; i < k.n; i++) {
		struct sample_thread *st = &ret->threads[i];

		st->tid = ticks[k.idx[i]].tid;
		st->cpu_pct = k.pct[i];
		memcpy(st->comm, ticks[k.idx[i]].comm, SAMPLE_COMM_LEN);
		st->comm[SAMPLE_COMM_LEN - 1] = '\0';
	}
	SAMPLE_SET(ret, SF_THREADS);
	fill_saturation(t, hot_pct, busy_cores >= 0 ? busy_cores : total_pct / 100.0, cpus_online,
	                ret);
}

/* ---- thread sources ---- */

static int ticks_reserve(struct thread_tick **ticks, size_t *cap, size_t n)
{
	struct thread_tick *p;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 256;
	p = realloc(*ticks, ncap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	*ticks = p;
	*cap = ncap;
	return 0;
}

/* Reads <dirfd>/rel into buf (NUL-terminated): one openat, one read unless buf fills up. */
static ssize_t read_small_at(int dirfd, const char *rel, char *buf, size_t cap)
{
	size_t len = 0;
	int fd;

	fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < cap - 1) {
		ssize_t r = read(fd, buf + len, cap - 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			r = -errno;
			close(fd);
			return r;
		}
		len += (size_t)r;
		if (r == 0 || len < cap - 1)
			break; /* a short read is the end of a /proc, /sys or regular file */
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

static bool parse_u64(const char **p, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (uint64_t)(*s++ - '0');
	*p = s;
	*ret = v;
	return true;
}

/* Parses one stat line: "tid (comm) S f4 ... f13 utime stime ... f21 starttime ...". comm may
 * hold spaces and ')', so the fields start after the LAST ')'. */
static int parse_task_stat(const char *buf, size_t len, struct thread_tick *t)
{
	const char *open = memchr(buf, '(', len);
	const char *close = memrchr(buf, ')', len);
	const char *p;
	uint64_t v, utime = 0, stime = 0;
	size_t clen;

	if (!open || !close || close < open)
		return -EINVAL;
	clen = (size_t)(close - open - 1);
	if (clen > SAMPLE_COMM_LEN - 1)
		clen = SAMPLE_COMM_LEN - 1;
	memcpy(t->comm, open + 1, clen);
	t->comm[clen] = '\0';
	p = close + 1;
	for (unsigned field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -EINVAL;
		if (field != 14 && field != 15 && field != 22) {
			while (*p && *p != ' ')
				p++;
			continue;
		}
		if (!parse_u64(&p, &v))
			return -EINVAL;
		if (field == 14)
			utime = v;
		else if (field == 15)
			stime = v;
		else
			t->start_ticks = v;
	}
	t->ticks = utime + stime;
	return 0;
}

/* A /proc entry name that is a pid or tid: digits only, at most 10 of them. */
static bool parse_id(const char *name, uint32_t *ret)
{
	const char *p = name;
	uint64_t v;

	if (!parse_u64(&p, &v) || *p || p - name > 10 || v == 0 || v > UINT32_MAX)
		return false;
	*ret = (uint32_t)v;
	return true;
}

/* rel = id + suffix; id passed parse_id(), so 10 digits at most. */
static void join_id(char rel[32], const char *id, const char *suffix)
{
	size_t ilen = strlen(id), slen = strlen(suffix);

	memcpy(rel, id, ilen);
	memcpy(rel + ilen, suffix, slen + 1);
}

/* Appends the threads of one process (taskfd = <proc>/<pid>/task). */
static int scan_tasks(int taskfd, struct thread_tick **ticks, size_t *cap, size_t *n)
{
	char dbuf[DIRENT_BUF] __attribute__((aligned(8)));
	char rel[32], sbuf[STAT_BUF];
	ssize_t nread;

	while ((nread = getdents64(taskfd, dbuf, sizeof(dbuf))) > 0) {
		for (ssize_t off = 0; off < nread;) {
			struct dirent64 *d = (struct dirent64 *)(dbuf + off);
			ssize_t len;
			uint32_t tid;

			off += d->d_reclen;
			if (!parse_id(d->d_name, &tid))
				continue;
			join_id(rel, d->d_name, "/stat");
			len = read_small_at(taskfd, rel, sbuf, sizeof(sbuf));
			if (len <= 0)
				continue; /* exited since the listing */
			if (ticks_reserve(ticks, cap, *n) < 0)
				return -ENOMEM;
			if (parse_task_stat(sbuf, (size_t)len, &(*ticks)[*n]) < 0)
				continue;
			(*ticks)[(*n)++].tid = tid;
		}
	}
	return nread < 0 ? -errno : 0;
}

int threads_scan_dir(const char *proc_dir, struct thread_tick **ticks, size_t *cap)
{
	char dbuf[DIRENT_BUF] __attribute__((aligned(8)));
	char rel[32];
	ssize_t nread;
	size_t n = 0;
	int procfd, r = 0;

	procfd = open(proc_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procfd < 0)
		return -errno;
	while (r == 0 && (nread = getdents64(procfd, dbuf, sizeof(dbuf))) > 0) {
		for (ssize_t off = 0; r == 0 && off < nread;) {
			struct dirent64 *d = (struct dirent64 *)(dbuf + off);
			uint32_t pid;
			int taskfd;

			off += d->d_reclen;
			if (!parse_id(d->d_name, &pid))
				continue;
			join_id(rel, d->d_name, "/task");
			taskfd = openat(procfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (taskfd < 0)
				continue; /* exited since the listing */
			r = scan_tasks(taskfd, ticks, cap, &n);
			close(taskfd);
		}
	}
	if (r == 0 && nread < 0)
		r = -errno;
	close(procfd);
	return r < 0 ? r : (int)n;
}

/* libproc2 fills a thread group leader from /proc/<pid>/stat, i.e. with the whole process's
 * ticks; for a leader with other threads the source reads the leader's own task/<tid>/stat.
 * Every item comes from the stat file, so libproc2 opens one file per thread. */
static enum pids_item source_items[] = {PIDS_ID_TID,   PIDS_ID_TGID,    PIDS_NLWP,
                                        PIDS_TICS_ALL, PIDS_TICS_BEGAN, PIDS_CMD};
enum { SRC_TID, SRC_TGID, SRC_NLWP, SRC_TICS, SRC_BEGAN, SRC_CMD };

/* A single-threaded leader's /proc/<pid>/stat also counts the threads the process has already
 * reaped; this bit in start_ticks keeps that count apart from the leader's own task count so a
 * switch between the two (threads starting or ending) restarts the rate instead of faking one. */
#define START_WHOLE_PROCESS (UINT64_C(1) << 63)

struct thread_source {
	struct pids_info *info;
	int proc_fd;
};

struct thread_source *threads_source_new(void)
{
	struct thread_source *src;
	int r;

	src = calloc(1, sizeof(*src));
	if (!src)
		return NULL;
	src->proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src->proc_fd < 0) {
		r = -errno;
		goto out_free;
	}
	r = procps_pids_new(&src->info, source_items, (int)ARRAY_SIZE(source_items));
	if (r < 0)
		goto out_close;
	return src;
out_close:
	close(src->proc_fd);
out_free:
	free(src);
	errno = -r;
	return NULL;
}

void threads_source_free(struct thread_source *src)
{
	if (!src)
		return;
	if (src->info)
		procps_pids_unref(&src->info);
	if (src->proc_fd >= 0)
		close(src->proc_fd);
	free(src);
}

static void copy_comm(char *dst, const char *src)
{
	size_t len = src ? strnlen(src, SAMPLE_COMM_LEN - 1) : 0;

	if (len)
		memcpy(dst, src, len);
	dst[len] = '\0';
}

static int read_leader(int proc_fd, uint32_t tid, struct thread_tick *t)
{
	char rel[48], sbuf[STAT_BUF];
	ssize_t len;

	snprintf(rel, sizeof(rel), "%u/task/%u/stat", tid, tid);
	len = read_small_at(proc_fd, rel, sbuf, sizeof(sbuf));
	if (len <= 0)
		return len < 0 ? (int)len : -ENODATA;
	return parse_task_stat(sbuf, (size_t)len, t);
}

int threads_scan_libproc2(struct thread_source *src, struct thread_tick **ticks, size_t *cap)
{
	struct pids_fetch *f;
	size_t n = 0;

	f = procps_pids_reap(src->info, PIDS_FETCH_THREADS_TOO);
	if (!f)
		return errno ? -errno : -EIO;
	for (int i = 0; i < f->counts->total; i++) {
		struct pids_result *h = f->stacks[i]->head;
		struct thread_tick *t;
		int tid = h[SRC_TID].result.s_int;

		if (tid <= 0)
			continue;
		if (ticks_reserve(ticks, cap, n) < 0)
			return -ENOMEM;
		t = &(*ticks)[n];
		t->tid = (uint32_t)tid;
		if (tid == h[SRC_TGID].result.s_int && h[SRC_NLWP].result.s_int > 1) {
			if (read_leader(src->proc_fd, t->tid, t) < 0)
				continue;
		} else {
			t->ticks = h[SRC_TICS].result.ull_int;
			t->start_ticks = h[SRC_BEGAN].result.ull_int;
			if (tid == h[SRC_TGID].result.s_int)
				t->start_ticks |= START_WHOLE_PROCESS;
			copy_comm(t->comm, h[SRC_CMD].result.str);
		}
		n++;
	}
	return (int)n;
}
