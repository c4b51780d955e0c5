/* Onlines hot-added CPUs and memory blocks, and offlines them when the host asks: the policy
 * over sysfs.c (the kernel's files) and holds.c (what a request offlined). The periodic scan
 * leaves held items alone until the hold runs out, the host asks for more, or sends RELEASE.
 * Requests answer with a reply; nothing here logs. */
#include "hotplug.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holds.h"
#include "sysfs.h"

struct hotplug {
	struct sysfs sys;
	uint32_t default_hold_ms;
	int auto_online; /* see hotplug_auto_online() */
	struct holds cpu_holds, mem_holds;
	/* what the last full memory pass saw (see scan_memory()) */
	struct ids mem_seen;
	uint64_t mem_seen_total_kib, mem_full_ms;
};

#define MEM_FULL_MAX_AGE_MS 60000

/* The first failed write of an operation, and how many failed. */
struct failures {
	char first[80];
	unsigned n;
};

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

struct hotplug *hotplug_new(const char *root, uint32_t default_hold_ms)
{
	struct hotplug *h;

	h = calloc(1, sizeof(*h));
	if (!h)
		goto out_nomem;
	if (sysfs_init(&h->sys, root) < 0)
		goto out_free;
	h->default_hold_ms = default_hold_ms;
	h->auto_online = sysfs_switch_auto_online(&h->sys);
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
	holds_fini(&h->cpu_holds);
	holds_fini(&h->mem_holds);
	free(h->mem_seen.v);
	sysfs_fini(&h->sys);
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

	r = sysfs_list_cpus(&h->sys, &cpus);
	if (r < 0)
		return r;
	holds_expire(&h->cpu_holds, cpus.v, cpus.n, now_ms, &st->holds_gone, &st->holds_expired);
	for (i = 0; i < cpus.n; i++) {
		uint32_t id = cpus.v[i];

		if (holds_has(&h->cpu_holds, id) || sysfs_cpu_state(&h->sys, id) != ITEM_OFFLINE)
			continue;
		if (sysfs_set_cpu(&h->sys, id, true) == 0)
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

	r = sysfs_list_blocks(&h->sys, &blocks);
	if (r < 0 && r != -ENOENT)
		return r;
	holds_expire(&h->mem_holds, blocks.v, blocks.n, now_ms, &st->holds_gone,
	             &st->holds_expired);
	if (sysfs_read_meminfo(&h->sys, &total, &avail) < 0)
		total = 0;
	if (mem_unchanged(h, &blocks, holds_before, total, now_ms)) {
		free(blocks.v);
		return 0;
	}
	for (i = 0; i < blocks.n; i++) {
		uint32_t id = blocks.v[i];

		if (holds_has(&h->mem_holds, id) || sysfs_block_state(&h->sys, id) != ITEM_OFFLINE)
			continue;
		if (sysfs_online_block(&h->sys, id) == 0)
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

	r = sysfs_list_cpus(&h->sys, &v->ids);
	if (r < 0)
		return r;
	v->st = calloc(v->ids.n ? v->ids.n : 1, sizeof(*v->st));
	if (!v->st)
		return -ENOMEM;
	for (i = 0; i < v->ids.n; i++) {
		v->st[i] = sysfs_cpu_state(&h->sys, v->ids.v[i]);
		v->online += v->st[i] == ITEM_ONLINE || v->st[i] == ITEM_FIXED;
	}
	return 0;
}

static bool cpu_switch(const struct hotplug *h, struct cpu_view *v, size_t i, bool on,
                       struct failures *f)
{
	int r = sysfs_set_cpu(&h->sys, v->ids.v[i], on);

	if (r < 0) {
		fail_note(f, "cpu", v->ids.v[i], r);
		return false;
	}
	v->st[i] = on ? ITEM_ONLINE : ITEM_OFFLINE;
	if (on)
		v->online++;
	else
		v->online--;
	return true;
}

/* Offlines the highest CPUs (never cpu0) or onlines the lowest until `want` are online. What it
 * offlined is held; when it gets there, every CPU left offline is held too, so the scan keeps the
 * count at `want`. Returns how many CPUs it switched. Needs room for every CPU in the holds. */
static unsigned cpus_converge(struct hotplug *h, struct cpu_view *v, uint32_t want,
                              uint64_t until_ms, struct failures *f)
{
	unsigned changed = 0;
	size_t i;

	for (i = v->ids.n; i-- > 0 && v->online > want;) {
		if (v->st[i] == ITEM_ONLINE && v->ids.v[i] != 0 && cpu_switch(h, v, i, false, f)) {
			holds_put(&h->cpu_holds, v->ids.v[i], until_ms);
			changed++;
		}
	}
	for (i = 0; i < v->ids.n && v->online < want; i++) {
		if (v->st[i] == ITEM_OFFLINE && cpu_switch(h, v, i, true, f)) {
			holds_drop(&h->cpu_holds, v->ids.v[i]);
			changed++;
		}
	}
	for (i = 0; i < v->ids.n && v->online == want; i++)
		if (v->st[i] == ITEM_OFFLINE)
			holds_put(&h->cpu_holds, v->ids.v[i], until_ms);
	if (v->online < want)
		holds_clear(&h->cpu_holds); /* the host wants more than we could give: let the scan
		                               retry */
	return changed;
}

static void set_vcpus(struct hotplug *h, uint32_t want, uint64_t until_ms, struct reply *rep)
{
	struct cpu_view v = {0};
	struct failures f = {0};
	unsigned changed;
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
	changed = cpus_converge(h, &v, want, until_ms, &f);
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

/* What a shrink did. */
struct shrink_done {
	uint64_t offlined_kib;
	unsigned candidates; /* online movable blocks it came to */
	bool at_floor;       /* stopped because the next block would cut into the margin */
	struct failures f;
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
	r = sysfs_read_meminfo(&h->sys, &p->total_kib, &avail);
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
	r = sysfs_read_block_kib(&h->sys, &p->block_kib);
	if (r < 0) {
		reply_set(rep, REPLY_ERROR, "cannot read memory block size: %s", strerror(-r));
		return false;
	}
	p->need_kib = p->total_kib - target;
	p->floor_kib = used + margin; /* <= target < total */
	return true;
}

/* Offlines online Movable blocks from the highest down until the plan's need is gone, never
 * going under its floor, and holds them. A block that will not go (EBUSY: pinned pages) is
 * skipped for the next one. Needs room for every block in the holds. */
static void shrink_blocks(struct hotplug *h, const struct ids *blocks, const struct shrink_plan *p,
                          uint64_t until_ms, struct shrink_done *d)
{
	size_t i;
	int r;

	for (i = blocks->n; i-- > 0 && d->offlined_kib < p->need_kib;) {
		uint32_t id = blocks->v[i];

		if (sysfs_block_state(&h->sys, id) != ITEM_ONLINE ||
		    !sysfs_block_movable(&h->sys, id))
			continue;
		d->candidates++;
		d->at_floor = p->block_kib > p->total_kib - d->offlined_kib - p->floor_kib;
		if (d->at_floor)
			break;
		r = sysfs_offline_block(&h->sys, id);
		if (r < 0) {
			fail_note(&d->f, "memory", id, r);
			continue;
		}
		holds_put(&h->mem_holds, id, until_ms);
		d->offlined_kib += p->block_kib;
	}
}

static void shrink_reply(const struct shrink_plan *p, const struct shrink_done *d,
                         struct reply *rep)
{
	rep->mem_offlined_kib = d->offlined_kib;
	rep->mem_total_kib = p->total_kib - d->offlined_kib;
	if (d->offlined_kib >= p->need_kib) {
		reply_failures(rep, REPLY_ACK, "", &d->f);
	} else if (d->offlined_kib > 0) {
		char what[128];

		snprintf(what, sizeof(what), "offlined %llu of %llu MiB%s",
		         (unsigned long long)d->offlined_kib / 1024,
		         (unsigned long long)p->need_kib / 1024,
		         d->at_floor ? ", next block would cut into the margin" : "");
		reply_failures(rep, REPLY_PARTIAL, what, &d->f);
	} else if (!d->candidates) {
		reply_set(rep, REPLY_REFUSED, "no online movable memory block");
	} else {
		reply_failures(rep, REPLY_REFUSED,
		               d->at_floor ? "a block would cut into the margin" : "", &d->f);
	}
}

/* Brings MemTotal down to the request's target, keeping what is in use plus its margin. */
static void shrink_memory(struct hotplug *h, const struct request *req, uint64_t until_ms,
                          struct reply *rep)
{
	struct shrink_plan p;
	struct shrink_done d = {0};
	struct ids blocks = {0};
	int r;

	if (!shrink_check(h, req, &p, rep))
		return;
	r = sysfs_list_blocks(&h->sys, &blocks);
	if (r == 0)
		r = holds_reserve(&h->mem_holds, blocks.n);
	if (r < 0) {
		reply_set(rep, REPLY_ERROR, "cannot list memory blocks: %s", strerror(-r));
		goto out;
	}
	shrink_blocks(h, &blocks, &p, until_ms, &d);
	shrink_reply(&p, &d, rep);
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

		if (sysfs_cpu_state(&h->sys, id) != ITEM_OFFLINE)
			continue;
		r = sysfs_set_cpu(&h->sys, id, true);
		if (r < 0)
			fail_note(&f, "cpu", id, r);
	}
	for (i = 0; i < h->mem_holds.n; i++) {
		uint32_t id = h->mem_holds.v[i].id;

		if (sysfs_block_state(&h->sys, id) != ITEM_OFFLINE)
			continue;
		r = sysfs_online_block(&h->sys, id);
		if (r < 0)
			fail_note(&f, "memory", id, r);
	}
	holds_clear(&h->cpu_holds);
	holds_clear(&h->mem_holds);
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
