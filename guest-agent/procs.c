/* The two-phase scan of processes and threads (see procs.h) with two back ends: libproc2 on the
 * live /proc (reap, then select of the moving pids) and a plain parser of any proc-like tree.
 * Both feed the same decision (add_proc) and bookkeeping (commit), so tests on fake trees
 * exercise the algorithm the daemon runs. The previous scan's processes are kept sorted by pid
 * and looked up by binary search. */
#include "procs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libproc2/pids.h>

#include "util.h"

#define DIRENT_BUF   4096
#define STAT_BUF     512
#define SELECT_BATCH 255 /* procps 4.0.2 refuses more pids per select (FILL_ID_MAX) */

/* A single-threaded process is read from /proc/<pid>/stat, which also counts the threads the
 * process has already reaped; this bit in start_ticks keeps that count apart from the same
 * thread's own task count so a switch between the two (threads starting or ending) restarts
 * the rate instead of faking one. */
#define START_WHOLE_PROCESS (UINT64_C(1) << 63)

enum proc_state {
	PROC_KEPT,    /* did not move: threads not read */
	PROC_READ,    /* threads in this scan's ticks */
	PROC_PENDING, /* moved, threads not read yet; still pending after phase 2: gone */
};

struct proc_rec {
	uint64_t ticks; /* whole process: live and reaped threads */
	uint64_t start_ticks;
	uint32_t pid;
	uint32_t nlwp;
	enum proc_state state;
};

struct procs {
	struct pids_info *info; /* NULL: plain parser of proc_dir */
	int proc_fd;            /* live /proc, for leaders' own task stat */
	char *proc_dir;

	struct proc_rec *prev, *cur; /* previous scan's (ascending pid) and this scan's */
	size_t nprev, ncur, prev_cap, cur_cap;
	struct thread_tick *ticks;
	size_t nticks, ticks_cap;
	uint32_t *kept;
	size_t kept_cap;

	struct thread_scan scan;
};

/* arr with room for want elements (capacity doubles), or NULL when out of memory (arr stays). */
static void *reserve(void *arr, size_t *cap, size_t want, size_t size)
{
	size_t ncap = *cap ? *cap : 64;
	void *v;

	if (want <= *cap)
		return arr;
	while (ncap < want)
		ncap *= 2;
	v = realloc(arr, ncap * size);
	if (v)
		*cap = ncap;
	return v;
}

/* A new zeroed slot at the end of this scan's ticks, or NULL. */
static struct thread_tick *add_tick(struct procs *p)
{
	struct thread_tick *v = reserve(p->ticks, &p->ticks_cap, p->nticks + 1, sizeof(*v));

	if (!v)
		return NULL;
	p->ticks = v;
	memset(&v[p->nticks], 0, sizeof(*v));
	return &v[p->nticks++];
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

/* Parses one stat line: "pid (comm) S f4 ... f13 utime stime ... f20 num_threads f21 starttime
 * ...". comm may hold spaces and ')', so the fields start after the LAST ')'. */
static int parse_stat(const char *buf, size_t len, struct thread_tick *t, uint32_t *ret_nlwp)
{
	const char *open = memchr(buf, '(', len);
	const char *close = memrchr(buf, ')', len);
	const char *p;
	uint64_t v, utime = 0, stime = 0, nlwp = 0;
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
		if (field != 14 && field != 15 && field != 20 && field != 22) {
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
		else if (field == 20)
			nlwp = v;
		else
			t->start_ticks = v;
	}
	t->ticks = utime + stime;
	if (ret_nlwp)
		*ret_nlwp = nlwp > UINT32_MAX ? UINT32_MAX : (uint32_t)nlwp;
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

static const struct proc_rec *find_prev(const struct procs *p, uint32_t pid)
{
	size_t lo = 0, hi = p->nprev;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->prev[mid].pid == pid)
			return &p->prev[mid];
		if (p->prev[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Phase 1, one process: whole holds its figures from /proc/<pid>/stat (tid = tgid = pid). Kept
 * when its ticks, thread count and start match the previous scan; a moved single-threaded
 * process is its own thread; a moved multi-threaded one is left for phase 2. */
static int add_proc(struct procs *p, const struct thread_tick *whole, uint32_t nlwp)
{
	const struct proc_rec *old = find_prev(p, whole->tgid);
	struct proc_rec *rec;
	struct thread_tick *t;

	rec = reserve(p->cur, &p->cur_cap, p->ncur + 1, sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	p->cur = rec;
	rec = &p->cur[p->ncur++];
	*rec = (struct proc_rec){.ticks = whole->ticks,
	                         .start_ticks = whole->start_ticks,
	                         .pid = whole->tgid,
	                         .nlwp = nlwp,
	                         .state = PROC_PENDING};
	if (old && old->ticks == rec->ticks && old->start_ticks == rec->start_ticks &&
	    old->nlwp == nlwp) {
		rec->state = PROC_KEPT;
		return 0;
	}
	if (nlwp > 1)
		return 0;
	t = add_tick(p);
	if (!t)
		return -ENOMEM;
	*t = *whole;
	t->start_ticks |= START_WHOLE_PROCESS;
	rec->state = PROC_READ;
	return 0;
}

static int cmp_rec(const void *a, const void *b)
{
	uint32_t x = ((const struct proc_rec *)a)->pid, y = ((const struct proc_rec *)b)->pid;

	return (x > y) - (x < y);
}

/* Ends a scan: processes still pending are gone (or unreadable: the next scan reads them as
 * new), this scan's processes become the previous ones, and the kept pids are listed. */
static int commit(struct procs *p)
{
	struct proc_rec *swap;
	size_t n = 0, nkept = 0, cap;
	bool sorted = true;
	uint32_t *kept;

	for (size_t i = 0; i < p->ncur; i++) {
		if (p->cur[i].state == PROC_PENDING)
			continue;
		if (n > 0 && p->cur[n - 1].pid >= p->cur[i].pid)
			sorted = false;
		p->cur[n++] = p->cur[i];
	}
	kept = reserve(p->kept, &p->kept_cap, n ? n : 1, sizeof(*kept));
	if (!kept)
		return -ENOMEM;
	p->kept = kept;
	if (!sorted)
		qsort(p->cur, n, sizeof(*p->cur), cmp_rec); /* /proc lists pids in order: rare */
	for (size_t i = 0; i < n; i++) {
		if (p->cur[i].state == PROC_KEPT)
			kept[nkept++] = p->cur[i].pid;
	}
	swap = p->prev;
	p->prev = p->cur;
	p->cur = swap;
	cap = p->prev_cap;
	p->prev_cap = p->cur_cap;
	p->cur_cap = cap;
	p->nprev = n;
	p->ncur = 0;

	p->scan.ticks = p->ticks;
	p->scan.nticks = p->nticks;
	p->scan.kept = kept;
	p->scan.nkept = nkept;
	p->scan.nprocs = n;
	return 0;
}

/* ---- plain parser of a proc-like tree ---- */

static int procs_dir(struct procs *p, int procfd)
{
	char dbuf[DIRENT_BUF] __attribute__((aligned(8)));
	char rel[32], sbuf[STAT_BUF];
	ssize_t nread;

	while ((nread = getdents64(procfd, dbuf, sizeof(dbuf))) > 0) {
		for (ssize_t off = 0; off < nread;) {
			struct dirent64 *d = (struct dirent64 *)(dbuf + off);
			struct thread_tick whole = {0};
			uint32_t pid, nlwp;
			ssize_t len;
			int r;

			off += d->d_reclen;
			if (!parse_id(d->d_name, &pid))
				continue;
			snprintf(rel, sizeof(rel), "%u/stat", pid);
			len = util_read_at(procfd, rel, sbuf, sizeof(sbuf));
			if (len <= 0 || parse_stat(sbuf, (size_t)len, &whole, &nlwp) < 0)
				continue; /* exited since the listing, or not a process */
			whole.tid = whole.tgid = pid;
			r = add_proc(p, &whole, nlwp);
			if (r < 0)
				return r;
		}
	}
	return nread < 0 ? -errno : 0;
}

/* Appends the threads of process pid (taskfd = <proc>/<pid>/task). */
static int read_tasks(struct procs *p, int taskfd, uint32_t pid)
{
	char dbuf[DIRENT_BUF] __attribute__((aligned(8)));
	char rel[32], sbuf[STAT_BUF];
	ssize_t nread;

	while ((nread = getdents64(taskfd, dbuf, sizeof(dbuf))) > 0) {
		for (ssize_t off = 0; off < nread;) {
			struct dirent64 *d = (struct dirent64 *)(dbuf + off);
			struct thread_tick *t;
			ssize_t len;
			uint32_t tid;

			off += d->d_reclen;
			if (!parse_id(d->d_name, &tid))
				continue;
			snprintf(rel, sizeof(rel), "%u/stat", tid);
			len = util_read_at(taskfd, rel, sbuf, sizeof(sbuf));
			if (len <= 0)
				continue; /* exited since the listing */
			t = add_tick(p);
			if (!t)
				return -ENOMEM;
			if (parse_stat(sbuf, (size_t)len, t, NULL) < 0) {
				p->nticks--;
				continue;
			}
			t->tid = tid;
			t->tgid = pid;
		}
	}
	return nread < 0 ? -errno : 0;
}

static int threads_dir(struct procs *p, int procfd)
{
	char rel[32];

	for (size_t i = 0; i < p->ncur; i++) {
		struct proc_rec *rec = &p->cur[i];
		size_t before = p->nticks;
		int taskfd, r;

		if (rec->state != PROC_PENDING)
			continue;
		snprintf(rel, sizeof(rel), "%u/task", rec->pid);
		taskfd = openat(procfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (taskfd < 0)
			continue; /* exited since phase 1 */
		r = read_tasks(p, taskfd, rec->pid);
		close(taskfd);
		if (r == -ENOMEM)
			return r;
		if (p->nticks > before)
			rec->state = PROC_READ;
	}
	return 0;
}

/* ---- libproc2 on the live /proc ---- */

/* Every item comes from the stat file. In phase 2 libproc2 fills a thread group leader from
 * /proc/<pid>/stat, i.e. with the whole process's ticks, so the leader's own task/<pid>/stat is
 * read here instead. */
static enum pids_item source_items[] = {PIDS_ID_TID,   PIDS_ID_TGID,    PIDS_NLWP,
                                        PIDS_TICS_ALL, PIDS_TICS_BEGAN, PIDS_CMD};
enum { SRC_TID, SRC_TGID, SRC_NLWP, SRC_TICS, SRC_BEGAN, SRC_CMD };

static void copy_comm(char *dst, const char *src)
{
	size_t len = src ? strnlen(src, SAMPLE_COMM_LEN - 1) : 0;

	if (len)
		memcpy(dst, src, len);
	dst[len] = '\0';
}

static int procs_libproc2(struct procs *p)
{
	struct pids_fetch *f;

	f = procps_pids_reap(p->info, PIDS_FETCH_TASKS_ONLY);
	if (!f)
		return errno ? -errno : -EIO;
	for (int i = 0; i < f->counts->total; i++) {
		struct pids_result *h = f->stacks[i]->head;
		int pid = h[SRC_TGID].result.s_int, nlwp = h[SRC_NLWP].result.s_int;
		struct thread_tick whole = {0};
		int r;

		if (pid <= 0)
			continue;
		whole.tid = whole.tgid = (uint32_t)pid;
		whole.ticks = h[SRC_TICS].result.ull_int;
		whole.start_ticks = h[SRC_BEGAN].result.ull_int;
		copy_comm(whole.comm, h[SRC_CMD].result.str);
		r = add_proc(p, &whole, nlwp > 0 ? (uint32_t)nlwp : 1);
		if (r < 0)
			return r;
	}
	return 0;
}

static int read_leader(int proc_fd, uint32_t tid, struct thread_tick *t)
{
	char rel[48], sbuf[STAT_BUF];
	ssize_t len;

	snprintf(rel, sizeof(rel), "%u/task/%u/stat", tid, tid);
	len = util_read_at(proc_fd, rel, sbuf, sizeof(sbuf));
	if (len <= 0)
		return len < 0 ? (int)len : -ENODATA;
	return parse_stat(sbuf, (size_t)len, t, NULL);
}

/* Phase 2 for up to SELECT_BATCH processes: pids[i] is p->cur[idx[i]]. libproc2 returns the
 * threads process by process, in the order of pids. Its cost per thread is about twice the plain
 * parser's: procps 4.0.2-4.0.6 OR PIDS_SELECT_PID_THREADS (0x10001) into the read flags, whose
 * low bit is PROC_FILLMEM, so each thread also costs a stat() and a statm read (and each process
 * a status read). */
static int select_batch(struct procs *p, unsigned *pids, const size_t *idx, unsigned n)
{
	struct pids_fetch *f;
	unsigned at = 0;

	f = procps_pids_select(p->info, pids, (int)n, PIDS_SELECT_PID_THREADS);
	if (!f)
		return errno ? -errno : -EIO;
	for (int i = 0; i < f->counts->total; i++) {
		struct pids_result *h = f->stacks[i]->head;
		int tid = h[SRC_TID].result.s_int, tgid = h[SRC_TGID].result.s_int;
		struct thread_tick *t;
		unsigned j = at;

		while (j < n && pids[j] != (unsigned)tgid)
			j++;
		if (tid <= 0 || j == n)
			continue;
		at = j;
		t = add_tick(p);
		if (!t)
			return -ENOMEM;
		t->tid = (uint32_t)tid;
		t->tgid = (uint32_t)tgid;
		if (tid == tgid) {
			if (read_leader(p->proc_fd, t->tid, t) < 0) {
				p->nticks--;
				continue;
			}
		} else {
			t->ticks = h[SRC_TICS].result.ull_int;
			t->start_ticks = h[SRC_BEGAN].result.ull_int;
			copy_comm(t->comm, h[SRC_CMD].result.str);
		}
		p->cur[idx[at]].state = PROC_READ;
	}
	return 0;
}

static int threads_libproc2(struct procs *p)
{
	unsigned pids[SELECT_BATCH];
	size_t idx[SELECT_BATCH];

	for (size_t i = 0; i < p->ncur;) {
		unsigned n = 0;
		int r;

		for (; i < p->ncur && n < SELECT_BATCH; i++) {
			if (p->cur[i].state != PROC_PENDING)
				continue;
			pids[n] = p->cur[i].pid;
			idx[n++] = i;
		}
		if (n == 0)
			break;
		r = select_batch(p, pids, idx, n);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- the source ---- */

struct procs *procs_new(void)
{
	struct procs *p;
	int r;

	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->proc_fd < 0) {
		r = -errno;
		goto out_free;
	}
	r = procps_pids_new(&p->info, source_items, (int)ARRAY_SIZE(source_items));
	if (r < 0)
		goto out_close;
	return p;
out_close:
	close(p->proc_fd);
out_free:
	free(p);
	errno = -r;
	return NULL;
}

struct procs *procs_new_dir(const char *proc_dir)
{
	struct procs *p;

	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->proc_fd = -1;
	p->proc_dir = strdup(proc_dir);
	if (!p->proc_dir) {
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

void procs_free(struct procs *p)
{
	if (!p)
		return;
	if (p->info)
		procps_pids_unref(&p->info);
	if (p->proc_fd >= 0)
		close(p->proc_fd);
	free(p->proc_dir);
	free(p->prev);
	free(p->cur);
	free(p->ticks);
	free(p->kept);
	free(p);
}

int procs_scan(struct procs *p, const struct thread_scan **ret_scan)
{
	uint64_t t0 = util_now_us(), t1;
	size_t nprocs_read = 0, nthreads;
	int procfd = -1, r;

	p->ncur = 0;
	p->nticks = 0;
	if (p->info) {
		r = procs_libproc2(p);
	} else {
		procfd = open(p->proc_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (procfd < 0)
			return -errno;
		r = procs_dir(p, procfd);
	}
	t1 = util_now_us();
	nthreads = p->nticks;
	for (size_t i = 0; i < p->ncur; i++)
		nprocs_read += p->cur[i].state == PROC_PENDING;
	if (r == 0)
		r = p->info ? threads_libproc2(p) : threads_dir(p, procfd);
	if (procfd >= 0)
		close(procfd);
	for (size_t i = 0; r == 0 && i < p->ncur; i++)
		nprocs_read -= p->cur[i].state == PROC_PENDING;
	if (r == 0)
		r = commit(p);
	if (r < 0)
		return r;
	p->scan.nprocs_read = nprocs_read;
	p->scan.nthreads_read = p->nticks - nthreads;
	p->scan.procs_us = t1 - t0;
	p->scan.threads_us = util_now_us() - t1;
	*ret_scan = &p->scan;
	return 0;
}
