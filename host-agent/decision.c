/* The decision: policy_decide() turns a VM's runs (runs.c), its allocation and bounds (bounds.c)
 * and the host's headroom into one decision with its reason. Pure (no I/O, clock, logging,
 * globals or allocation), so its tests are tables. A threshold counts only after it held for its
 * window; scale-down waits longer than scale-up, and memory shortage (OOM risk) is looked at
 * before CPU. */
#include "policy.h"

#include "bounds.h"
#include "runs.h"
#include "verdict.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define KIB_PER_MIB 1024ull
#define MIB(kib)    ((unsigned long long)((kib) / KIB_PER_MIB))

/* ---- small arithmetic ---- */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* ---- the context, and the reason text ---- */

struct ctx {
	const struct policy *p;
	const struct vm_view *vm;
	const struct policy_state *st;
	const struct host_view *host;
	uint64_t now_ms;
	const struct sample *newest;
	struct bounds b;
	bool mem_short; /* memory-low held: CPU figures are distorted by stalls */
};

enum step { STEP_NONE, STEP_BLOCKED, STEP_ACT };

typedef enum step (*step_fn)(struct ctx *c, struct decision *d);

static bool held(const struct ctx *c, uint64_t since, uint64_t for_ms)
{
	return runs_held(c->st, since, c->now_ms, for_ms);
}

/* ms left of a cooldown counted from the later of two change times (0 = never changed). */
static uint64_t cooldown_left(const struct ctx *c, uint64_t last_a_ms, uint64_t last_b_ms,
                              uint64_t cooldown_ms)
{
	uint64_t last = max_u64(last_a_ms, last_b_ms);

	if (!last)
		return 0;
	return sat_sub(sat_add(last, cooldown_ms), c->now_ms);
}

__attribute__((format(printf, 2, 3))) static void append(struct decision *d, const char *fmt, ...)
{
	size_t len = strnlen(d->text, sizeof(d->text));
	va_list ap;

	if (len + 1 >= sizeof(d->text))
		return;
	va_start(ap, fmt);
	vsnprintf(d->text + len, sizeof(d->text) - len, fmt, ap);
	va_end(ap);
}

/* "10 s", "2.5 s" */
static void append_dur(struct decision *d, uint64_t ms)
{
	if (ms % 1000 == 0)
		append(d, "%llu s", (unsigned long long)(ms / 1000));
	else
		append(d, "%.1f s", (double)ms / 1000.0);
}

static enum step hold(struct decision *d, enum reason r)
{
	d->action = ACTION_HOLD;
	d->reason = r;
	d->vcpus_to = d->vcpus_from;
	d->mem_to_kib = d->mem_from_kib;
	return STEP_BLOCKED;
}

static enum step cooling(struct decision *d, const char *what, uint64_t left_ms)
{
	append(d, "; %s cooldown ", what);
	append_dur(d, (left_ms + 999) / 1000 * 1000);
	append(d, " left");
	return hold(d, REASON_COOLDOWN);
}

/* ---- growth, shared by the load-driven steps and the bounds step ---- */

static enum step grow_vcpus(const struct ctx *c, struct decision *d, uint64_t want, enum reason why)
{
	int64_t free_vcpus = c->host->vcpus_free;
	uint64_t target;

	if (free_vcpus <= 0) {
		append(d, "; the host has no vCPU free");
		return hold(d, REASON_HOST_FULL);
	}
	target = min_u64(want, sat_add(c->vm->vcpus, (uint64_t)free_vcpus));
	d->action = ACTION_VCPU_UP;
	d->reason = why;
	d->vcpus_to = (uint32_t)target; /* <= want <= vcpus_hi */
	d->clipped = target < want;
	if (d->clipped)
		append(d, " (cut to %u by host headroom)", d->vcpus_to);
	return STEP_ACT;
}

/* want is on the grid; what the host can give is rounded down to the grid. */
static enum step grow_mem(const struct ctx *c, struct decision *d, uint64_t want, enum reason why)
{
	uint64_t cur = c->vm->mem_kib;
	uint64_t free_kib = c->host->mem_free_kib > 0 ? (uint64_t)c->host->mem_free_kib : 0;
	uint64_t target = want;

	if (sat_add(cur, free_kib) < want)
		target = bounds_grid_down(&c->b, cur + free_kib);
	if (target <= cur) {
		append(d, "; the host has %llu MiB free", MIB(free_kib));
		return hold(d, REASON_HOST_FULL);
	}
	d->action = ACTION_MEM_UP;
	d->reason = why;
	d->mem_to_kib = target;
	d->clipped = target < want;
	if (d->clipped)
		append(d, " (cut to %llu MiB by host headroom)", MIB(target));
	return STEP_ACT;
}

/* What the guest needs, in allocation terms: the most in use over the mem-high run (or now, when
 * there is none), plus the margin, plus the kernel's share: the guest's MemTotal is smaller than
 * the allocation by what the kernel reserved, and the newest MemTotal gives that overhead.
 * False when the newest sample has no memory figures. */
static bool mem_fit(const struct ctx *c, uint64_t *ret_used, uint64_t *ret_fit)
{
	const struct sample *s = c->newest;
	uint64_t used;

	if (!SAMPLE_HAS(s, SF_MEM_TOTAL) || !SAMPLE_HAS(s, SF_MEM_AVAIL))
		return false;
	used = verdict_mem_used_kib(s);
	if (c->st->mem_high_since)
		used = max_u64(used, c->st->mem_high_max_used_kib);
	*ret_used = used;
	*ret_fit = sat_add(sat_add(used, c->p->mem_margin_kib),
	                   sat_sub(c->vm->mem_kib, s->mem_total_kib));
	return true;
}

static enum step no_fit(const struct ctx *c, struct decision *d, uint64_t used_kib,
                        uint64_t fit_kib)
{
	uint64_t margin = c->p->mem_margin_kib;

	append(d, "; in use %llu MiB + margin %llu MiB + kernel %llu MiB = %llu MiB, have %llu MiB",
	       MIB(used_kib), MIB(margin), MIB(sat_sub(fit_kib, sat_add(used_kib, margin))),
	       MIB(fit_kib), MIB(d->mem_from_kib));
	return hold(d, REASON_NO_FIT);
}

/* ---- the steps, in priority order ---- */

/* Bounds changed under a running VM (new config, or a size changed by hand): move inside them
 * first, regardless of load or cooldown. Growth is still limited by the host, and memory never
 * shrinks below what the guest uses. */
static enum step mem_bounds(struct ctx *c, struct decision *d)
{
	uint64_t cur = c->vm->mem_kib, used, fit, target;

	if (c->b.mem_fixed || (cur >= c->b.mem_lo_kib && cur <= c->b.mem_hi_kib))
		return STEP_NONE;
	if (cur < c->b.mem_lo_kib) {
		append(d, "memory %llu MiB below min %llu MiB", MIB(cur), MIB(c->b.mem_lo_kib));
		return grow_mem(c, d, c->b.mem_lo_kib, REASON_BOUNDS);
	}
	append(d, "memory %llu MiB above max %llu MiB", MIB(cur), MIB(c->b.mem_hi_kib));
	if (!mem_fit(c, &used, &fit)) {
		append(d, "; memory in use unknown");
		return hold(d, REASON_NO_FIT);
	}
	target = max_u64(c->b.mem_hi_kib, bounds_grid_up(&c->b, fit));
	if (target >= cur)
		return no_fit(c, d, used, fit);
	d->action = ACTION_MEM_DOWN;
	d->reason = REASON_BOUNDS;
	d->mem_to_kib = target;
	return STEP_ACT;
}

static enum step vcpu_bounds(struct ctx *c, struct decision *d)
{
	uint32_t cur = c->vm->vcpus;

	if (cur < c->b.vcpus_lo) {
		append(d, "vcpus %u below min %u", cur, c->b.vcpus_lo);
		return grow_vcpus(c, d, c->b.vcpus_lo, REASON_BOUNDS);
	}
	if (cur <= c->b.vcpus_hi)
		return STEP_NONE;
	append(d, "vcpus %u above max %u", cur, c->b.vcpus_hi);
	d->action = ACTION_VCPU_DOWN;
	d->reason = REASON_BOUNDS;
	d->vcpus_to = c->b.vcpus_hi;
	return STEP_ACT;
}

static enum step mem_up(struct ctx *c, struct decision *d)
{
	const struct policy *p = c->p;
	uint64_t cur = c->vm->mem_kib, left, step;
	double pct;

	if (!held(c, c->st->mem_low_since, p->mem_up_for_ms))
		return STEP_NONE;
	c->mem_short = true;
	if (verdict_avail_pct(c->newest, &pct) && pct <= p->mem_up_avail_pct)
		append(d, "mem avail %.0f%% <= %g%% for ", pct, p->mem_up_avail_pct);
	else if (verdict_psi_mem_high(p, c->newest))
		append(d, "mem pressure %.0f%% >= %g%% for ", c->newest->psi_mem_some_avg10,
		       p->mem_psi_up_pct);
	else
		append(d, "memory low for ");
	append_dur(d, p->mem_up_for_ms);
	if (c->b.mem_fixed || cur >= c->b.mem_hi_kib) {
		append(d, "; memory at max %llu MiB", MIB(c->b.mem_hi_kib));
		return hold(d, REASON_AT_LIMIT);
	}
	left = cooldown_left(c, c->vm->last_mem_up_ms, c->vm->last_mem_down_ms,
	                     p->mem_cooldown_up_ms);
	if (left)
		return cooling(d, "memory", left);
	/* grow = min(hi, round_up(cur + step)); a step under a granule still grows one */
	step = max_u64(p->mem_step_up_kib, c->b.granule_kib);
	return grow_mem(c, d, min_u64(c->b.mem_hi_kib, bounds_grid_up(&c->b, sat_add(cur, step))),
	                REASON_MEM_LOW);
}

static enum step saturated(struct ctx *c, struct decision *d)
{
	const struct sample_thread *t = verdict_top_thread(c->newest);
	char comm[SAMPLE_COMM_LEN];
	size_t i;

	d->saturated = true;
	if (!t) {
		append(d, "one thread saturates one CPU; more vCPUs would not help");
		return hold(d, REASON_SATURATED);
	}
	/* guest text goes into logs: printable ASCII only */
	for (i = 0; i + 1 < sizeof(comm) && t->comm[i]; i++)
		comm[i] = t->comm[i] >= 0x20 && t->comm[i] < 0x7f && t->comm[i] != '\'' ? t->comm[i]
		                                                                        : '?';
	comm[i] = '\0';
	append(d, "thread '%s' (tid %u) saturates one CPU; more vCPUs would not help", comm,
	       (unsigned)t->tid);
	return hold(d, REASON_SATURATED);
}

static enum step cpu_up(struct ctx *c, struct decision *d)
{
	const struct policy *p = c->p;
	const struct sample *s = c->newest;
	uint64_t left, step;

	if (!held(c, c->st->cpu_high_since, p->cpu_up_for_ms))
		return STEP_NONE;
	/* single-thread saturation within the last up window of the run */
	if (verdict_one_thread(p, s) ||
	    (c->st->saturated_ms && sat_add(c->st->saturated_ms, p->cpu_up_for_ms) >= c->now_ms))
		return saturated(c, d);
	if (SAMPLE_HAS(s, SF_CPU_BUSY) && s->cpu_busy_pct >= p->cpu_up_pct)
		append(d, "cpu %.0f%% >= %g%% for ", s->cpu_busy_pct, p->cpu_up_pct);
	else if (verdict_psi_cpu_high(p, s))
		append(d, "cpu pressure %.0f%% >= %g%% for ", s->psi_cpu_some_avg10,
		       p->cpu_psi_up_pct);
	else
		append(d, "cpu high for ");
	append_dur(d, p->cpu_up_for_ms);
	if (c->vm->vcpus >= c->b.vcpus_hi) {
		append(d, "; vcpus at max %u", c->b.vcpus_hi);
		return hold(d, REASON_AT_LIMIT);
	}
	left = cooldown_left(c, c->vm->last_vcpu_up_ms, c->vm->last_vcpu_down_ms,
	                     p->vcpu_cooldown_up_ms);
	if (left)
		return cooling(d, "vcpu", left);
	step = p->vcpu_step_up ? p->vcpu_step_up : 1; /* unvalidated policy: still a step */
	return grow_vcpus(c, d, min_u64(sat_add(c->vm->vcpus, step), c->b.vcpus_hi),
	                  REASON_CPU_HIGH);
}

/* Shrink target = max(lo, cur - step, in use + margin + kernel share), rounded up to the grid:
 * rounding up never crosses lo (on the grid) and never eats into the margin. */
static enum step mem_down(struct ctx *c, struct decision *d)
{
	const struct policy *p = c->p;
	uint64_t cur = c->vm->mem_kib, used, fit, target, left;
	double pct;

	if (c->b.mem_fixed || cur <= c->b.mem_lo_kib ||
	    !held(c, c->st->mem_high_since, p->mem_down_for_ms))
		return STEP_NONE;
	if (verdict_avail_pct(c->newest, &pct))
		append(d, "mem avail %.0f%% >= %g%% for ", pct, p->mem_down_avail_pct);
	else
		append(d, "memory plenty for ");
	append_dur(d, p->mem_down_for_ms);
	left = cooldown_left(c, c->vm->last_mem_up_ms, c->vm->last_mem_down_ms,
	                     p->mem_cooldown_down_ms);
	if (left)
		return cooling(d, "memory", left);
	if (!mem_fit(c, &used, &fit)) {
		append(d, "; memory in use unknown");
		return hold(d, REASON_NO_FIT);
	}
	target = max_u64(c->b.mem_lo_kib,
	                 sat_sub(cur, max_u64(p->mem_step_down_kib, c->b.granule_kib)));
	target = bounds_grid_up(&c->b, max_u64(target, fit));
	if (target >= cur)
		return no_fit(c, d, used, fit);
	/* each shrink costs the guest an offlining pass and the host a resize: freeing crumbs
	 * (under a sixteenth of a step: 32 MiB by default) is not worth it. vscale-sim: a quarter
	 * step cost the goal on small VMs; a sixteenth cut vm1's memory actions from 7,620 to 4,720
	 */
	if (cur - target < p->mem_step_down_kib / 16 && target > c->b.mem_lo_kib) {
		append(d, "; would free only %llu MiB",
		       (unsigned long long)((cur - target) / 1024));
		return hold(d, REASON_NO_FIT);
	}
	d->action = ACTION_MEM_DOWN;
	d->reason = REASON_MEM_HIGH;
	d->mem_to_kib = target;
	return STEP_ACT;
}

/* The fewest vCPUs that keep the low run's peak load strictly below cpu-up (so a shrink does not
 * bounce straight back up) and give each hot thread a vCPU of its own. */
static uint64_t vcpus_needed(const struct ctx *c)
{
	double n = 1;

	if (c->p->cpu_up_pct > 0)
		n = floor(c->st->cpu_low_max_busy_cores * 100.0 / c->p->cpu_up_pct + 1e-9) + 1;
	if (!(n < (double)UINT32_MAX)) /* NaN too */
		n = UINT32_MAX;
	return max_u64((uint64_t)n, c->st->cpu_low_max_hot);
}

/* Not while memory is short: reclaim and swap stalls make idle-looking CPU figures. A shrink
 * that the load or the hot threads would not fit is held as NO_FIT, like memory's. */
static enum step cpu_down(struct ctx *c, struct decision *d)
{
	const struct policy *p = c->p;
	const struct sample *s = c->newest;
	uint64_t cur = c->vm->vcpus, need, target, left;

	if (c->mem_short || cur <= c->b.vcpus_lo ||
	    !held(c, c->st->cpu_low_since, p->cpu_down_for_ms))
		return STEP_NONE;
	if (SAMPLE_HAS(s, SF_CPU_BUSY))
		append(d, "cpu %.0f%% <= %g%% for ", s->cpu_busy_pct, p->cpu_down_pct);
	else
		append(d, "cpu low for ");
	append_dur(d, p->cpu_down_for_ms);
	left = cooldown_left(c, c->vm->last_vcpu_up_ms, c->vm->last_vcpu_down_ms,
	                     p->vcpu_cooldown_down_ms);
	if (left)
		return cooling(d, "vcpu", left);
	need = vcpus_needed(c);
	target = max_u64(max_u64(c->b.vcpus_lo, sat_sub(cur, p->vcpu_step_down)), need);
	if (target >= cur) {
		if (c->st->cpu_low_max_hot >= cur)
			append(d, "; %u hot threads need a vcpu each", c->st->cpu_low_max_hot);
		else
			append(d, "; the load needs %llu vcpus to stay below %g%%",
			       (unsigned long long)need, p->cpu_up_pct);
		return hold(d, REASON_NO_FIT);
	}
	d->action = ACTION_VCPU_DOWN;
	d->reason = REASON_CPU_LOW;
	d->vcpus_to = (uint32_t)target; /* < cur */
	return STEP_ACT;
}

static void within(const struct ctx *c, struct decision *d)
{
	const struct sample *s = c->newest;
	double pct;

	if (SAMPLE_HAS(s, SF_CPU_BUSY))
		append(d, "cpu %.0f%%", s->cpu_busy_pct);
	else
		append(d, "cpu n/a");
	if (verdict_avail_pct(s, &pct))
		append(d, " mem avail %.0f%%", pct);
	else
		append(d, " mem avail n/a");
	hold(d, REASON_WITHIN);
}

/* Never act, least of all shrink, on missing data. True when *d now says why not. */
static bool no_data(const struct ctx *c, struct decision *d)
{
	uint64_t age_ms;

	if (!c->st || !c->st->last_ms) {
		d->reason = REASON_NO_DATA;
		append(d, "no sample yet");
		return true;
	}
	age_ms = sat_sub(c->now_ms, c->st->last_ms);
	if (age_ms <= c->p->stale_ms)
		return false;
	d->reason = REASON_NO_DATA;
	append(d, "no sample for %llu s", (unsigned long long)(age_ms / 1000));
	return true;
}

/* The first step that acts decides. A blocked step (cooldown, limit, ...) lets lower ones act;
 * if none does, the first blocked one is the most useful thing to report. */
static void run_steps(struct ctx *c, const struct decision *base, struct decision *ret)
{
	/* memory first: a shortage risks OOM, a CPU shortage only slowness */
	static const step_fn steps[] = {mem_bounds, vcpu_bounds, mem_up,
	                                cpu_up,     mem_down,    cpu_down};
	struct decision first_blocked = *base;
	bool blocked = false;

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct decision d = *base;
		enum step r = steps[i](c, &d);

		if (r == STEP_ACT) {
			*ret = d;
			return;
		}
		if (r == STEP_BLOCKED && !blocked) {
			first_blocked = d;
			blocked = true;
		}
	}
	*ret = first_blocked; /* still the base when no step blocked */
	if (!blocked)
		within(c, ret);
}

void policy_decide(const struct policy *p, const struct vm_view *vm, const struct host_view *host,
                   uint64_t now_ms, struct decision *ret)
{
	struct ctx c = {.p = p, .vm = vm, .st = vm->st, .host = host, .now_ms = now_ms};
	struct decision base = {.action = ACTION_HOLD};

	base.vcpus_from = base.vcpus_to = vm->vcpus;
	base.mem_from_kib = base.mem_to_kib = vm->mem_kib;
	*ret = base;
	if (no_data(&c, ret))
		return;
	c.newest = &c.st->newest;
	base.saturated = SAMPLE_HAS(c.newest, SF_SATURATED) && c.newest->saturated;
	*ret = base;
	if (vm->busy) {
		ret->reason = REASON_BUSY;
		append(ret, "operation in flight, migrating or paused");
		return;
	}
	bounds_init(&c.b, p, vm);
	run_steps(&c, &base, ret);
}

const char *policy_action_name(enum action a)
{
	static const char *const names[] = {
	        [ACTION_HOLD] = "hold",           [ACTION_VCPU_UP] = "vcpu-up",
	        [ACTION_VCPU_DOWN] = "vcpu-down", [ACTION_MEM_UP] = "mem-up",
	        [ACTION_MEM_DOWN] = "mem-down",
	};

	if ((size_t)a >= sizeof(names) / sizeof(names[0]) || !names[a])
		return "unknown";
	return names[a];
}

const char *policy_reason_name(enum reason r)
{
	static const char *const names[] = {
	        [REASON_WITHIN] = "within",       [REASON_NO_DATA] = "no-data",
	        [REASON_BUSY] = "busy",           [REASON_COOLDOWN] = "cooldown",
	        [REASON_AT_LIMIT] = "at-limit",   [REASON_HOST_FULL] = "host-full",
	        [REASON_SATURATED] = "saturated", [REASON_CPU_HIGH] = "cpu-high",
	        [REASON_CPU_LOW] = "cpu-low",     [REASON_MEM_LOW] = "mem-low",
	        [REASON_MEM_HIGH] = "mem-high",   [REASON_NO_FIT] = "no-fit",
	        [REASON_BOUNDS] = "bounds",
	};

	if ((size_t)r >= sizeof(names) / sizeof(names[0]) || !names[r])
		return "unknown";
	return names[r];
}
