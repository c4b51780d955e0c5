/* Onlines hot-added CPUs and memory blocks under a root directory, and offlines them when the
 * host asks. What a request offlined is held (id -> expiry, sorted arrays) so the periodic scan
 * leaves it alone until the hold runs out, the host asks for more, or sends RELEASE. Every id
 * comes from a directory listing, is bounded, and every sysfs read is checked before use. */
#include "hotplug.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define CPU_DIR "/sys/devices/system/cpu"
#define MEM_DIR "/sys/devices/system/memory"
#define MEMINFO "/proc/meminfo"

struct ids {
	uint32_t *v; /* sorted ascending */
	size_t n, cap;
};

struct hold {
	uint32_t id;
	uint64_t until_ms;
};

struct holds {
	struct hold *v; /* sorted by id */
	size_t n, cap;
};

struct hotplug {
	char *cpu_dir; /* <root>/sys/devices/system/cpu */
	char *mem_dir; /* <root>/sys/devices/system/memory */
	char *meminfo; /* <root>/proc/meminfo */
	uint32_t default_hold_ms;
	int auto_online; /* see hotplug_auto_online() */
	struct holds cpu_holds, mem_holds;
	/* what the last full memory pass saw (see scan_memory()) */
	struct ids mem_seen;
	uint64_t mem_seen_total_kib, mem_full_ms;
};

#define MEM_FULL_MAX_AGE_MS 60000

enum item_state {
	ST_UNKNOWN, /* unreadable or unexpected content: leave alone */
	ST_ONLINE,
	ST_OFFLINE,
	ST_FIXED, /* CPU without an online file: online and cannot be offlined */
};

/* The first failed write of an operation, and how many failed. */
struct failures {
	char first[80];
	unsigned n;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int ids_push(struct ids *s, uint32_t id)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint32_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = id;
	return 0;
}

static bool ids_has(const struct ids *s, uint32_t id)
{
	return s->n && bsearch(&id, s->v, s->n, sizeof(*s->v), cmp_u32);
}

/* "cpu12" with prefix "cpu" -> 12. Rejects "cpufreq", "cpu", leading zeros and ids >= max. */
static bool parse_id(const char *name, const char *prefix, uint32_t max, uint32_t *ret)
{
	size_t len = strlen(prefix);
	const char *p = name + len;
	uint32_t id = 0;

	if (strncmp(name, prefix, len) != 0 || !*p || (p[0] == '0' && p[1]))
		return false;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		id = id * 10 + (uint32_t)(*p - '0');
		if (id >= max)
			return false;
	}
	*ret = id;
	return true;
}

/* Lists the <prefix>N entries of dir into *ret, sorted. */
static int list_ids(const char *dir, const char *prefix, uint32_t max, struct ids *ret)
{
	struct ids s = {0};
	struct dirent *de;
	uint32_t id;
	DIR *d;
	int r = 0;

	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!parse_id(de->d_name, prefix, max, &id))
			continue;
		r = ids_push(&s, id);
		if (r < 0)
			break;
	}
	closedir(d);
	if (r < 0) {
		free(s.v);
		return r;
	}
	if (s.n)
		qsort(s.v, s.n, sizeof(*s.v), cmp_u32);
	*ret = s;
	return 0;
}

static size_t holds_lower(const struct holds *s, uint32_t id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool holds_has(const struct holds *s, uint32_t id)
{
	size_t i = holds_lower(s, id);

	return i < s->n && s->v[i].id == id;
}

/* Makes room for `extra` more holds so that holds_put() cannot fail halfway through a request. */
static int holds_reserve(struct holds *s, size_t extra)
{
	struct hold *v;
	size_t cap = s->n + extra;

	if (cap <= s->cap)
		return 0;
	v = realloc(s->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	s->cap = cap;
	return 0;
}

static void holds_put(struct holds *s, uint32_t id, uint64_t until_ms)
{
	size_t i = holds_lower(s, id);

	if (i < s->n && s->v[i].id == id) {
		s->v[i].until_ms = until_ms;
		return;
	}
	assert(s->n < s->cap); /* holds_reserve() first */
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
	s->v[i] = (struct hold){.id = id, .until_ms = until_ms};
	s->n++;
}

static void holds_drop(struct holds *s, uint32_t id)
{
	size_t i = holds_lower(s, id);

	if (i < s->n && s->v[i].id == id) {
		memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
		s->n--;
	}
}

/* Drops holds on items no longer present and holds that ran out (the scan then onlines those). */
static void holds_expire(struct holds *s, const struct ids *present, uint64_t now_ms,
                         struct hotplug_stats *st)
{
	size_t i, j = 0;

	for (i = 0; i < s->n; i++) {
		if (!ids_has(present, s->v[i].id)) {
			st->holds_gone++;
			continue;
		}
		if (now_ms >= s->v[i].until_ms) {
			st->holds_expired++;
			continue;
		}
		s->v[j++] = s->v[i];
	}
	s->n = j;
}

static void fail_note(struct failures *f, const char *what, uint32_t id, int r)
{
	if (!f->n++)
		snprintf(f->first, sizeof(f->first), "%s%u: %s", what, id, strerror(-r));
}

static void __attribute__((format(printf, 3, 4)))
reply_set(struct reply *rep, enum reply_status status, const char *fmt, ...)
{
	va_list ap;

	rep->status = status;
	va_start(ap, fmt);
	vsnprintf(rep->reason, sizeof(rep->reason), fmt, ap);
	va_end(ap);
}

/* Same as reply_set() with the failures as reason ("" when none). */
static void reply_failures(struct reply *rep, enum reply_status status, const char *what,
                           const struct failures *f)
{
	if (!f->n)
		reply_set(rep, status, "%s", what);
	else if (f->n == 1)
		reply_set(rep, status, "%s%s%s", what, *what ? "; " : "", f->first);
	else
		reply_set(rep, status, "%s%s%s (and %u more)", what, *what ? "; " : "", f->first,
		          f->n - 1);
}

/* Reads a small sysfs file with surrounding whitespace trimmed. */
static int read_word(const char *path, char *buf, size_t cap)
{
	char *p;
	ssize_t n;

	n = util_read_file(path, buf, cap);
	if (n < 0)
		return (int)n;
	while (n > 0 && strchr(" \t\r\n", buf[n - 1]))
		buf[--n] = '\0';
	for (p = buf; *p == ' ' || *p == '\t'; p++)
		;
	memmove(buf, p, strlen(p) + 1);
	return 0;
}

static int item_path(char *buf, const char *dir, const char *prefix, uint32_t id, const char *file)
{
	if ((size_t)snprintf(buf, PATH_MAX, "%s/%s%u/%s", dir, prefix, id, file) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static enum item_state cpu_state(const struct hotplug *h, uint32_t id)
{
	char path[PATH_MAX], buf[16];
	int r;

	if (item_path(path, h->cpu_dir, "cpu", id, "online") < 0)
		return ST_UNKNOWN;
	r = read_word(path, buf, sizeof(buf));
	if (r == -ENOENT)
		return ST_FIXED;
	if (r < 0)
		return ST_UNKNOWN;
	if (!strcmp(buf, "1"))
		return ST_ONLINE;
	if (!strcmp(buf, "0"))
		return ST_OFFLINE;
	return ST_UNKNOWN;
}

static int cpu_write(const struct hotplug *h, uint32_t id, const char *val)
{
	char path[PATH_MAX];
	int r;

	r = item_path(path, h->cpu_dir, "cpu", id, "online");
	return r < 0 ? r : util_write_file(path, val);
}

static enum item_state mem_state(const struct hotplug *h, uint32_t id)
{
	char path[PATH_MAX], buf[32];

	if (item_path(path, h->mem_dir, "memory", id, "state") < 0 ||
	    read_word(path, buf, sizeof(buf)) < 0)
		return ST_UNKNOWN;
	if (!strcmp(buf, "online"))
		return ST_ONLINE;
	if (!strcmp(buf, "offline"))
		return ST_OFFLINE;
	return ST_UNKNOWN; /* "going-offline" or garbage */
}

/* For an online block, valid_zones names the zone it is in. */
static bool mem_movable(const struct hotplug *h, uint32_t id)
{
	char path[PATH_MAX], buf[64];

	if (item_path(path, h->mem_dir, "memory", id, "valid_zones") < 0 ||
	    read_word(path, buf, sizeof(buf)) < 0)
		return false;
	return !strncmp(buf, "Movable", 7) && (!buf[7] || buf[7] == ' ');
}

static int mem_write(const struct hotplug *h, uint32_t id, const char *val)
{
	char path[PATH_MAX];
	int r;

	r = item_path(path, h->mem_dir, "memory", id, "state");
	return r < 0 ? r : util_write_file(path, val);
}

/* Movable if the kernel lets us (so the host can take it back), else wherever it fits. */
static int mem_online(const struct hotplug *h, uint32_t id)
{
	int r = mem_write(h, id, "online_movable");

	return r == -EINVAL ? mem_write(h, id, "online") : r;
}

/* Decimal or hex digits only: strtoull alone would accept a sign and leading junk. */
static bool parse_u64(const char *s, int base, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	if (base == 16 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (!*s || !strchr(base == 16 ? "0123456789abcdefABCDEF" : "0123456789", *s))
		return false;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno)
		return false;
	*ret = v;
	return true;
}

static bool meminfo_field(const char *text, const char *key, uint64_t *ret)
{
	size_t len = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, len) && p[len] == ':')
			return parse_u64(p + len + 1, 10, ret);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

static int read_meminfo(const struct hotplug *h, uint64_t *ret_total_kib, uint64_t *ret_avail_kib)
{
	char buf[8192];
	uint64_t total, avail;
	ssize_t n;

	n = util_read_file(h->meminfo, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	if (!meminfo_field(buf, "MemTotal", &total) ||
	    !meminfo_field(buf, "MemAvailable", &avail) || total == 0)
		return -EINVAL;
	*ret_total_kib = total;
	*ret_avail_kib = avail;
	return 0;
}

static int read_block_kib(const struct hotplug *h, uint64_t *ret)
{
	char path[PATH_MAX], buf[32];
	uint64_t bytes;
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/block_size_bytes", h->mem_dir) >= sizeof(path))
		return -ENAMETOOLONG;
	r = read_word(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	if (!parse_u64(buf, 16, &bytes) || bytes < 4096 || bytes > (UINT64_C(1) << 40))
		return -EINVAL;
	*ret = bytes / 1024;
	return 0;
}

static char *join(const char *root, size_t len, const char *rel)
{
	size_t rlen = strlen(rel);
	char *s = malloc(len + rlen + 1);

	if (s) {
		memcpy(s, root, len);
		memcpy(s + len, rel, rlen + 1);
	}
	return s;
}

/* If the kernel adds hot-plugged memory offline, make it online new blocks movable itself. */
static int auto_online_switch(const struct hotplug *h)
{
	char path[PATH_MAX], buf[32];
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/auto_online_blocks", h->mem_dir) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	r = read_word(path, buf, sizeof(buf));
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	if (strcmp(buf, "offline") != 0)
		return 0;
	r = util_write_file(path, "online_movable");
	return r < 0 ? r : 1;
}

struct hotplug *hotplug_new(const char *root, uint32_t default_hold_ms)
{
	struct hotplug *h;
	size_t len = strlen(root);

	while (len > 0 && root[len - 1] == '/')
		len--;
	h = calloc(1, sizeof(*h));
	if (!h)
		goto out_nomem;
	h->cpu_dir = join(root, len, CPU_DIR);
	h->mem_dir = join(root, len, MEM_DIR);
	h->meminfo = join(root, len, MEMINFO);
	if (!h->cpu_dir || !h->mem_dir || !h->meminfo)
		goto out_free;
	h->default_hold_ms = default_hold_ms;
	h->auto_online = auto_online_switch(h);
	return h;
out_free:
	hotplug_free(h);
out_nomem:
	errno = ENOMEM;
	return NULL;
}

void hotplug_free(struct hotplug *h)
{
	if (!h)
		return;
	free(h->cpu_holds.v);
	free(h->mem_holds.v);
	free(h->mem_seen.v);
	free(h->cpu_dir);
	free(h->mem_dir);
	free(h->meminfo);
	free(h);
}

int hotplug_auto_online(const struct hotplug *h)
{
	return h->auto_online;
}

static int scan_cpus(struct hotplug *h, uint64_t now_ms, struct hotplug_stats *st)
{
	struct ids cpus;
	size_t i;
	int r;

	r = list_ids(h->cpu_dir, "cpu", HOTPLUG_MAX_CPUS, &cpus);
	if (r < 0)
		return r;
	holds_expire(&h->cpu_holds, &cpus, now_ms, st);
	for (i = 0; i < cpus.n; i++) {
		uint32_t id = cpus.v[i];

		if (holds_has(&h->cpu_holds, id) || cpu_state(h, id) != ST_OFFLINE)
			continue;
		if (cpu_write(h, id, "1") == 0)
			st->cpus_onlined++;
		else
			st->errors++;
	}
	free(cpus.v);
	return 0;
}

/* True when nothing can have gone offline since the last full pass: same blocks, same MemTotal,
 * no hold ended, and that pass is under a minute old. Reading every block's state costs ~7 µs a
 * block (1.4 ms a tick with 192 blocks); hot-added memory always shows up as new blocks, and a
 * block offlined by someone else lowers MemTotal. The minute bounds what this could miss. */
static bool mem_unchanged(const struct hotplug *h, const struct ids *blocks, size_t holds_before,
                          uint64_t total_kib, uint64_t now_ms)
{
	return h->mem_full_ms && now_ms - h->mem_full_ms < MEM_FULL_MAX_AGE_MS &&
	       h->mem_holds.n == holds_before && total_kib == h->mem_seen_total_kib &&
	       blocks->n == h->mem_seen.n &&
	       (blocks->n == 0 ||
	        !memcmp(blocks->v, h->mem_seen.v, blocks->n * sizeof(*blocks->v)));
}

static int scan_memory(struct hotplug *h, uint64_t now_ms, struct hotplug_stats *st)
{
	struct ids blocks = {0};
	uint64_t total = 0, avail;
	size_t i, holds_before = h->mem_holds.n;
	int r;

	r = list_ids(h->mem_dir, "memory", HOTPLUG_MAX_BLOCKS, &blocks);
	if (r < 0 && r != -ENOENT)
		return r;
	holds_expire(&h->mem_holds, &blocks, now_ms, st);
	if (read_meminfo(h, &total, &avail) < 0)
		total = 0;
	if (mem_unchanged(h, &blocks, holds_before, total, now_ms)) {
		free(blocks.v);
		return 0;
	}
	for (i = 0; i < blocks.n; i++) {
		uint32_t id = blocks.v[i];

		if (holds_has(&h->mem_holds, id) || mem_state(h, id) != ST_OFFLINE)
			continue;
		if (mem_online(h, id) == 0)
			st->blocks_onlined++;
		else
			st->errors++;
	}
	free(h->mem_seen.v);
	h->mem_seen = blocks;
	/* onlining changes MemTotal: let the next pass compare with what the kernel shows then */
	h->mem_seen_total_kib = st->blocks_onlined ? 0 : total;
	h->mem_full_ms = now_ms ? now_ms : 1;
	return 0;
}

int hotplug_scan(struct hotplug *h, uint64_t now_ms, struct hotplug_stats *ret)
{
	struct hotplug_stats st = {0};
	int r_cpu, r_mem;

	r_cpu = scan_cpus(h, now_ms, &st);
	r_mem = scan_memory(h, now_ms, &st);
	if (ret)
		*ret = st;
	return r_cpu < 0 ? r_cpu : r_mem;
}

/* The listed CPUs with their states, and how many of them are online. */
struct cpu_view {
	struct ids ids;
	enum item_state *st;
	uint32_t online;
};

static int cpu_view_read(const struct hotplug *h, struct cpu_view *v)
{
	size_t i;
	int r;

	r = list_ids(h->cpu_dir, "cpu", HOTPLUG_MAX_CPUS, &v->ids);
	if (r < 0)
		return r;
	v->st = calloc(v->ids.n ? v->ids.n : 1, sizeof(*v->st));
	if (!v->st)
		return -ENOMEM;
	for (i = 0; i < v->ids.n; i++) {
		v->st[i] = cpu_state(h, v->ids.v[i]);
		v->online += v->st[i] == ST_ONLINE || v->st[i] == ST_FIXED;
	}
	return 0;
}

static bool cpu_switch(const struct hotplug *h, struct cpu_view *v, size_t i, bool on,
                       struct failures *f)
{
	int r = cpu_write(h, v->ids.v[i], on ? "1" : "0");

	if (r < 0) {
		fail_note(f, "cpu", v->ids.v[i], r);
		return false;
	}
	v->st[i] = on ? ST_ONLINE : ST_OFFLINE;
	if (on)
		v->online++;
	else
		v->online--;
	return true;
}

/* Offlines the highest CPUs (never cpu0) or onlines the lowest until `want` are online. What it
 * offlined is held; when it gets there, every CPU left offline is held too, so the scan keeps the
 * count at `want`. */
static void set_vcpus(struct hotplug *h, uint32_t want, uint64_t until_ms, struct reply *rep)
{
	struct cpu_view v = {0};
	struct failures f = {0};
	unsigned changed = 0;
	size_t i;
	int r;

	r = cpu_view_read(h, &v);
	if (r == 0 && (want == 0 || want > v.ids.n)) {
		reply_set(rep, REPLY_REFUSED, "%u vcpus requested, %zu present (1..%zu)", want,
		          v.ids.n, v.ids.n);
		goto out;
	}
	if (r == 0)
		r = holds_reserve(&h->cpu_holds, v.ids.n);
	if (r < 0) {
		reply_set(rep, REPLY_ERROR, "cannot read cpus: %s", strerror(-r));
		goto out;
	}
	for (i = v.ids.n; i-- > 0 && v.online > want;) {
		if (v.st[i] == ST_ONLINE && v.ids.v[i] != 0 && cpu_switch(h, &v, i, false, &f)) {
			holds_put(&h->cpu_holds, v.ids.v[i], until_ms);
			changed++;
		}
	}
	for (i = 0; i < v.ids.n && v.online < want; i++) {
		if (v.st[i] == ST_OFFLINE && cpu_switch(h, &v, i, true, &f)) {
			holds_drop(&h->cpu_holds, v.ids.v[i]);
			changed++;
		}
	}
	for (i = 0; i < v.ids.n && v.online == want; i++)
		if (v.st[i] == ST_OFFLINE)
			holds_put(&h->cpu_holds, v.ids.v[i], until_ms);
	if (v.online < want)
		h->cpu_holds.n = 0; /* the host wants more than we could give: let the scan retry */
	rep->has_vcpus_online = true;
	rep->vcpus_online = v.online;
	if (v.online == want)
		reply_failures(rep, REPLY_ACK, "", &f);
	else if (changed)
		reply_failures(rep, REPLY_PARTIAL, "", &f);
	else
		reply_failures(rep, REPLY_ERROR, f.n ? "" : "no cpu can be changed", &f);
out:
	free(v.st);
	free(v.ids.v);
}

/* How much a shrink must offline and how low it may go. */
struct shrink_plan {
	uint64_t total_kib, need_kib, floor_kib, block_kib;
};

/* Checks the request against meminfo. Returns false when *rep already is the answer. */
static bool shrink_check(const struct hotplug *h, const struct request *req, struct shrink_plan *p,
                         struct reply *rep)
{
	uint64_t avail, used, target = req->mem_total_kib, margin = req->mem_margin_kib;
	int r;

	if (target == 0) {
		reply_set(rep, REPLY_ERROR, "no target memory size");
		return false;
	}
	r = read_meminfo(h, &p->total_kib, &avail);
	if (r < 0) {
		reply_set(rep, REPLY_ERROR, "cannot read meminfo: %s", strerror(-r));
		return false;
	}
	rep->has_mem_total = rep->has_mem_offlined = true;
	rep->mem_total_kib = p->total_kib;
	rep->mem_offlined_kib = 0;
	if (target >= p->total_kib) {
		reply_set(rep, REPLY_ACK, "%s", "");
		return false;
	}
	used = avail < p->total_kib ? p->total_kib - avail : 0;
	if (margin > target || used > target - margin) {
		reply_set(rep, REPLY_REFUSED, "in use %llu MiB + margin %llu MiB > target %llu MiB",
		          (unsigned long long)used / 1024, (unsigned long long)margin / 1024,
		          (unsigned long long)target / 1024);
		return false;
	}
	r = read_block_kib(h, &p->block_kib);
	if (r < 0) {
		reply_set(rep, REPLY_ERROR, "cannot read memory block size: %s", strerror(-r));
		return false;
	}
	p->need_kib = p->total_kib - target;
	p->floor_kib = used + margin; /* <= target < total */
	return true;
}

/* Offlines online Movable blocks from the highest down until total - target is gone, never
 * going under what is in use plus the margin. A block that will not go (EBUSY: pinned pages) is
 * skipped for the next one. */
static void shrink_memory(struct hotplug *h, const struct request *req, uint64_t until_ms,
                          struct reply *rep)
{
	struct shrink_plan p;
	struct ids blocks = {0};
	struct failures f = {0};
	uint64_t offlined = 0;
	unsigned candidates = 0;
	bool at_floor = false;
	size_t i;
	int r;

	if (!shrink_check(h, req, &p, rep))
		return;
	r = list_ids(h->mem_dir, "memory", HOTPLUG_MAX_BLOCKS, &blocks);
	if (r == 0)
		r = holds_reserve(&h->mem_holds, blocks.n);
	if (r < 0) {
		reply_set(rep, REPLY_ERROR, "cannot list memory blocks: %s", strerror(-r));
		goto out;
	}
	for (i = blocks.n; i-- > 0 && offlined < p.need_kib;) {
		uint32_t id = blocks.v[i];

		if (mem_state(h, id) != ST_ONLINE || !mem_movable(h, id))
			continue;
		candidates++;
		at_floor = p.block_kib > p.total_kib - offlined - p.floor_kib;
		if (at_floor)
			break;
		r = mem_write(h, id, "offline");
		if (r < 0) {
			fail_note(&f, "memory", id, r);
			continue;
		}
		holds_put(&h->mem_holds, id, until_ms);
		offlined += p.block_kib;
	}
	rep->mem_offlined_kib = offlined;
	rep->mem_total_kib = p.total_kib - offlined;
	if (offlined >= p.need_kib) {
		reply_failures(rep, REPLY_ACK, "", &f);
	} else if (offlined > 0) {
		char what[128];

		snprintf(what, sizeof(what), "offlined %llu of %llu MiB%s",
		         (unsigned long long)offlined / 1024, (unsigned long long)p.need_kib / 1024,
		         at_floor ? ", next block would cut into the margin" : "");
		reply_failures(rep, REPLY_PARTIAL, what, &f);
	} else if (!candidates) {
		reply_set(rep, REPLY_REFUSED, "no online movable memory block");
	} else {
		reply_failures(rep, REPLY_REFUSED,
		               at_floor ? "a block would cut into the margin" : "", &f);
	}
out:
	free(blocks.v);
}

/* Onlines what is still held and offline, then forgets every hold. */
static void release(struct hotplug *h, struct reply *rep)
{
	struct failures f = {0};
	size_t i;
	int r;

	for (i = 0; i < h->cpu_holds.n; i++) {
		uint32_t id = h->cpu_holds.v[i].id;

		if (cpu_state(h, id) != ST_OFFLINE)
			continue;
		r = cpu_write(h, id, "1");
		if (r < 0)
			fail_note(&f, "cpu", id, r);
	}
	for (i = 0; i < h->mem_holds.n; i++) {
		uint32_t id = h->mem_holds.v[i].id;

		if (mem_state(h, id) != ST_OFFLINE)
			continue;
		r = mem_online(h, id);
		if (r < 0)
			fail_note(&f, "memory", id, r);
	}
	h->cpu_holds.n = 0;
	h->mem_holds.n = 0;
	reply_failures(rep, f.n ? REPLY_PARTIAL : REPLY_ACK, "", &f);
}

void hotplug_handle(struct hotplug *h, const struct request *req, uint64_t now_ms,
                    struct reply *ret)
{
	uint32_t hold_ms = req->hold_ms ? req->hold_ms : h->default_hold_ms;
	uint64_t until_ms = now_ms > UINT64_MAX - hold_ms ? UINT64_MAX : now_ms + hold_ms;

	memset(ret, 0, sizeof(*ret));
	ret->id = req->id;
	switch (req->kind) {
	case REQ_SET_ONLINE_VCPUS:
		set_vcpus(h, req->vcpus, until_ms, ret);
		break;
	case REQ_SHRINK_MEMORY:
		shrink_memory(h, req, until_ms, ret);
		break;
	case REQ_RELEASE:
		release(h, ret);
		break;
	default:
		reply_set(ret, REPLY_ERROR, "unknown request (kind %d)", (int)req->kind);
		break;
	}
}
