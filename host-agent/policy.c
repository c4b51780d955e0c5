/* The scaling policy: policy_observe() folds each guest sample into runs ("busy >= 80% since
 * t"), policy_decide() turns those runs, the VM's allocation and the host's headroom into one
 * decision with its reason. Pure (no I/O, clock, logging, globals or allocation), so its tests
 * are tables. A threshold counts only after it held for its window; scale-down waits longer than
 * scale-up, and memory shortage (OOM risk) is looked at before CPU. */
#include "policy.h"

#include "conf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define KIB_PER_MIB         1024ull
#define DEFAULT_INTERVAL_MS 1000u
/* A guest's claimed sample interval widens the window-coverage slack; trust at most this. */
#define MAX_INTERVAL_MS 60000u
/* A thread this busy (% of one CPU) needs a vCPU of its own: scale-down never goes below the
 * number of such threads. */
#define HOT_THREAD_PCT 50.0
/* a thread this busy, with the rest of the VM idle, is single-thread saturation */
#define LONE_THREAD_PCT 90.0

#define MIB(kib) ((unsigned long long)((kib) / KIB_PER_MIB))

void policy_default(struct policy *p)
{
	*p = (struct policy){
	        .name = "default",
	        /* tuned with vscale-sim on the shipped traces (bench/RESULTS.md): the
	         * proxmox-vm-autoscale thresholds (80%, 15%) left ~30% more slack with no less
	         * under-provisioning, because scale-down came late and slow */
	        .cpu_up_pct = 92,
	        .cpu_down_pct = 40,
	        .cpu_psi_up_pct = 25,
	        .cpu_up_for_ms = 10000,
	        .cpu_down_for_ms = 30000,
	        .vcpu_step_up = 1,
	        .vcpu_step_down = 4,
	        .vcpu_cooldown_up_ms = 30000,
	        .vcpu_cooldown_down_ms = 30000,
	        .mem_up_avail_pct = 8,
	        .mem_down_avail_pct = 25,
	        .mem_psi_up_pct = 10,
	        .mem_up_for_ms = 2000,
	        .mem_down_for_ms = 30000,
	        .mem_step_up_kib = 768 * KIB_PER_MIB,
	        .mem_step_down_kib = 512 * KIB_PER_MIB,
	        .mem_margin_kib = 256 * KIB_PER_MIB,
	        .mem_cooldown_up_ms = 5000,
	        .mem_cooldown_down_ms = 30000,
	        .stale_ms = 5000,
	};
}

/* ---- validation ---- */

/* Durations and sizes in config-file syntax, so a message can be pasted back. */
static const char *conf_ms(char *buf, size_t cap, uint64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, cap, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, cap, "%llums", (unsigned long long)ms);
	return buf;
}

static const char *conf_size(char *buf, size_t cap, uint64_t kib)
{
	if (kib && kib % (KIB_PER_MIB * KIB_PER_MIB) == 0)
		snprintf(buf, cap, "%lluG",
		         (unsigned long long)(kib / (KIB_PER_MIB * KIB_PER_MIB)));
	else if (kib && kib % KIB_PER_MIB == 0)
		snprintf(buf, cap, "%lluM", MIB(kib));
	else
		snprintf(buf, cap, "%lluK", (unsigned long long)kib);
	return buf;
}

static int check_windows(const char *res, uint64_t up_ms, uint64_t down_ms, char *err,
                         size_t errlen)
{
	char a[32], b[32];

	if (down_ms >= up_ms)
		return 0;
	return conf_fail(
	        err, errlen,
	        "scale-down must not be faster than scale-up: %s-down-for %s < %s-up-for %s", res,
	        conf_ms(a, sizeof(a), down_ms), res, conf_ms(b, sizeof(b), up_ms));
}

int policy_validate(const struct policy *p, char *err, size_t errlen)
{
	const struct {
		const char *key;
		double pct;
	} pcts[] = {
	        {"cpu-up", p->cpu_up_pct},
	        {"cpu-down", p->cpu_down_pct},
	        {"cpu-pressure-up", p->cpu_psi_up_pct},
	        {"mem-available-up", p->mem_up_avail_pct},
	        {"mem-available-down", p->mem_down_avail_pct},
	        {"mem-pressure-up", p->mem_psi_up_pct},
	};
	const struct {
		const char *key;
		uint64_t step;
	} steps[] = {
	        {"vcpu-step-up", p->vcpu_step_up},
	        {"vcpu-step-down", p->vcpu_step_down},
	        {"mem-step-up", p->mem_step_up_kib},
	        {"mem-step-down", p->mem_step_down_kib},
	};
	char a[32], b[32];
	int r;

	if (p->vcpus_min && p->vcpus_max && p->vcpus_min > p->vcpus_max)
		return conf_fail(err, errlen, "vcpus: minimum %u > maximum %u",
		                 (unsigned)p->vcpus_min, (unsigned)p->vcpus_max);
	if (p->mem_min_kib && p->mem_max_kib && p->mem_min_kib > p->mem_max_kib)
		return conf_fail(err, errlen, "memory: minimum %s > maximum %s",
		                 conf_size(a, sizeof(a), p->mem_min_kib),
		                 conf_size(b, sizeof(b), p->mem_max_kib));
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
		if (!(pcts[i].pct >= 0 && pcts[i].pct <= 100)) /* NaN too */
			return conf_fail(err, errlen, "%s: %g%% is not within 0..100%%",
			                 pcts[i].key, pcts[i].pct);
	if (p->cpu_down_pct >= p->cpu_up_pct)
		return conf_fail(err, errlen, "cpu-down %g%% must be below cpu-up %g%%",
		                 p->cpu_down_pct, p->cpu_up_pct);
	if (p->mem_up_avail_pct >= p->mem_down_avail_pct)
		return conf_fail(err, errlen,
		                 "mem-available-up %g%% must be below mem-available-down %g%%",
		                 p->mem_up_avail_pct, p->mem_down_avail_pct);
	/* 0% pressure would count every sample as pressure: always scale up */
	if (p->cpu_psi_up_pct <= 0)
		return conf_fail(err, errlen, "cpu-pressure-up must be above 0%%");
	if (p->mem_psi_up_pct <= 0)
		return conf_fail(err, errlen, "mem-pressure-up must be above 0%%");
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (!steps[i].step)
			return conf_fail(err, errlen, "%s must be above 0", steps[i].key);
	if (!p->stale_ms)
		return conf_fail(err, errlen, "stale-after must be above 0");
	r = check_windows("cpu", p->cpu_up_for_ms, p->cpu_down_for_ms, err, errlen);
	if (r < 0)
		return r;
	return check_windows("mem", p->mem_up_for_ms, p->mem_down_for_ms, err, errlen);
}

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

/* ---- per-sample verdicts ---- */

enum verdict { V_ABSENT, V_NO, V_YES };

static bool avail_pct(const struct sample *s, double *ret_pct)
{
	if (!SAMPLE_HAS(s, SF_MEM_TOTAL) || !SAMPLE_HAS(s, SF_MEM_AVAIL) || !s->mem_total_kib)
		return false;
	*ret_pct = (double)s->mem_avail_kib * 100.0 / (double)s->mem_total_kib;
	return true;
}

static bool psi_cpu_high(const struct policy *p, const struct sample *s)
{
	return SAMPLE_HAS(s, SF_PSI_CPU_SOME) && s->psi_cpu_some_avg10 >= p->cpu_psi_up_pct;
}

static bool psi_mem_high(const struct policy *p, const struct sample *s)
{
	return SAMPLE_HAS(s, SF_PSI_MEM_SOME) && s->psi_mem_some_avg10 >= p->mem_psi_up_pct;
}

static bool has_online(const struct sample *s)
{
	return SAMPLE_HAS(s, SF_CPU_ONLINE) && s->cpus_online;
}

/* Either figure over its threshold makes a sample high; absent when it has neither. */
static enum verdict cpu_high(const struct policy *p, const struct sample *s)
{
	bool busy = SAMPLE_HAS(s, SF_CPU_BUSY);

	if (!busy && !SAMPLE_HAS(s, SF_PSI_CPU_SOME))
		return V_ABSENT;
	/* CPU pressure is a 10 s average and lingers after a burst: it counts only while the VM is
	 * busier than cpu-down now (bench/reaction.sh saw an idle guest get two more vCPUs on the
	 * pressure its finished load had left) */
	bool psi = psi_cpu_high(p, s) && (!busy || s->cpu_busy_pct > p->cpu_down_pct);

	return (busy && s->cpu_busy_pct >= p->cpu_up_pct) || psi ? V_YES : V_NO;
}

/* Needs the online count too: a shrink must know how many CPUs the busy % is of. */
static enum verdict cpu_low(const struct policy *p, const struct sample *s)
{
	if (!SAMPLE_HAS(s, SF_CPU_BUSY) || !has_online(s))
		return V_ABSENT;
	return s->cpu_busy_pct <= p->cpu_down_pct && !psi_cpu_high(p, s) ? V_YES : V_NO;
}

static enum verdict mem_low(const struct policy *p, const struct sample *s)
{
	double pct;
	bool have = avail_pct(s, &pct);

	if (!have && !SAMPLE_HAS(s, SF_PSI_MEM_SOME))
		return V_ABSENT;
	return (have && pct <= p->mem_up_avail_pct) || psi_mem_high(p, s) ? V_YES : V_NO;
}

/* Plenty available and, as for CPU, no pressure: under reclaim stalls the figure lies. */
static enum verdict mem_high(const struct policy *p, const struct sample *s)
{
	double pct;

	if (!avail_pct(s, &pct))
		return V_ABSENT;
	return pct >= p->mem_down_avail_pct && !psi_mem_high(p, s) ? V_YES : V_NO;
}

static const struct sample_thread *top_thread(const struct sample *s)
{
	return SAMPLE_HAS(s, SF_THREADS) && s->nthreads ? &s->threads[0] : NULL;
}

/* The guest flags a thread that saturates one CPU while the rest idles, by its own threshold.
 * The host checks the rest by its own: what the other threads use, spread over the other vCPUs,
 * stays below cpu-up, and no task waits for a CPU (pressure below cpu-pressure-up). Only then
 * would more vCPUs not help. Without busy % or online count the guest's word stands. */
/* One thread pins a CPU while the rest of the VM idles, so more vCPUs would not help. The guest
 * flags it after its streak (several samples); the host also sees it in any one sample from the
 * hottest thread, so a cpu-up-for shorter than the guest's streak cannot outrun it. Tasks waiting
 * for a CPU (pressure) mean more vCPUs would help after all. */
static bool one_thread(const struct policy *p, const struct sample *s)
{
	const struct sample_thread *top = top_thread(s);
	bool flagged = SAMPLE_HAS(s, SF_SATURATED) && s->saturated;
	double rest_cores, ncpu;

	if (psi_cpu_high(p, s))
		return false;
	if (!SAMPLE_HAS(s, SF_CPU_BUSY) || !has_online(s))
		return flagged;
	if (!flagged && (!top || top->cpu_pct < LONE_THREAD_PCT))
		return false;
	ncpu = s->cpus_online;
	rest_cores = s->cpu_busy_pct / 100.0 * ncpu - (top ? top->cpu_pct / 100.0 : 1.0);
	return rest_cores * 100.0 < p->cpu_up_pct * (ncpu > 1 ? ncpu - 1 : 1);
}

static uint32_t hot_threads(const struct sample *s)
{
	uint32_t hot = 0;

	for (uint32_t i = 0; SAMPLE_HAS(s, SF_THREADS) && i < s->nthreads && i < SAMPLE_MAX_THREADS;
	     i++)
		hot += s->threads[i].cpu_pct >= HOT_THREAD_PCT;
	return hot;
}

/* ---- runs ---- */

void policy_state_init(struct policy_state *st)
{
	memset(st, 0, sizeof(*st));
}

void policy_state_reset_runs(struct policy_state *st)
{
	st->cpu_high_since = st->cpu_low_since = 0;
	st->mem_low_since = st->mem_high_since = 0;
	st->cpu_low_max_busy_cores = 0;
	st->cpu_low_max_hot = 0;
	st->mem_high_max_used_kib = 0;
	st->saturated_ms = 0;
}

/* Starts, extends or breaks one run. True when the sample belongs to the run (its figures go
 * into the run's aggregates); *ret_started when it is the run's first. */
static bool run(uint64_t *since, enum verdict v, uint64_t host_ms, bool *ret_started)
{
	*ret_started = false;
	if (v == V_ABSENT)
		return false;
	if (v == V_NO) {
		*since = 0;
		return false;
	}
	if (!*since) {
		*since = host_ms;
		*ret_started = true;
	}
	return true;
}

static uint32_t interval_of(const struct sample *s)
{
	if (!SAMPLE_HAS(s, SF_INTERVAL) || !s->interval_ms)
		return DEFAULT_INTERVAL_MS;
	return s->interval_ms < MAX_INTERVAL_MS ? s->interval_ms : MAX_INTERVAL_MS;
}

void policy_observe(const struct policy *p, struct policy_state *st, const struct sample *s,
                    uint64_t host_ms)
{
	bool started;

	host_ms = host_ms ? host_ms : 1; /* 0 means "none" in every field */
	if (st->last_ms && (host_ms < st->last_ms || host_ms - st->last_ms > p->stale_ms))
		policy_state_reset_runs(st); /* missing data breaks continuity */
	st->last_ms = host_ms;
	st->interval_ms = interval_of(s);
	st->newest = *s;

	if (run(&st->cpu_high_since, cpu_high(p, s), host_ms, &started)) {
		if (started)
			st->saturated_ms = 0;
		if (one_thread(p, s))
			st->saturated_ms = host_ms;
	}
	if (run(&st->cpu_low_since, cpu_low(p, s), host_ms, &started)) {
		double cores = s->cpu_busy_pct / 100.0 * s->cpus_online;
		uint32_t hot = hot_threads(s);

		if (started || cores > st->cpu_low_max_busy_cores)
			st->cpu_low_max_busy_cores = cores;
		if (started || hot > st->cpu_low_max_hot)
			st->cpu_low_max_hot = hot;
	}
	run(&st->mem_low_since, mem_low(p, s), host_ms, &started);
	if (run(&st->mem_high_since, mem_high(p, s), host_ms, &started)) {
		uint64_t used = sat_sub(s->mem_total_kib, s->mem_avail_kib);

		if (started || used > st->mem_high_max_used_kib)
			st->mem_high_max_used_kib = used;
	}
}

/* ---- decision ---- */

struct ctx {
	const struct policy *p;
	const struct vm_view *vm;
	const struct policy_state *st;
	const struct host_view *host;
	uint64_t now_ms;
	const struct sample *newest;
	uint32_t vcpus_lo, vcpus_hi;
	/* Memory sizes live on a grid: grid_off_kib + k * granule_kib. The offset is the boot
	 * size modulo the granule, because virtio-mem plugs whole blocks on top of the boot
	 * memory; when the boot size is a multiple of the granule this is plain rounding. */
	uint64_t granule_kib, grid_off_kib;
	uint64_t mem_lo_kib, mem_hi_kib; /* the bounds, on the grid (lo rounded up, hi down) */
	bool mem_fixed;                  /* no grid point inside the bounds: never change memory */
	bool mem_short;                  /* memory-low held: CPU figures are distorted by stalls */
};

enum step { STEP_NONE, STEP_BLOCKED, STEP_ACT };

typedef enum step (*step_fn)(struct ctx *c, struct decision *d);

/* Smallest grid point >= x (UINT64_MAX when there is none). */
static uint64_t grid_up(const struct ctx *c, uint64_t x)
{
	uint64_t k;

	if (x <= c->grid_off_kib)
		return c->grid_off_kib;
	k = (x - c->grid_off_kib) / c->granule_kib + ((x - c->grid_off_kib) % c->granule_kib != 0);
	if (k > (UINT64_MAX - c->grid_off_kib) / c->granule_kib)
		return UINT64_MAX;
	return c->grid_off_kib + k * c->granule_kib;
}

/* Largest grid point <= x, or 0 when there is none. */
static uint64_t grid_down(const struct ctx *c, uint64_t x)
{
	if (x < c->grid_off_kib)
		return 0;
	return x - (x - c->grid_off_kib) % c->granule_kib;
}

/* Policy bounds, 0 meaning the domain's; the domain's maximum caps the policy's either way. */
static void set_bounds(struct ctx *c)
{
	const struct policy *p = c->p;
	const struct vm_view *vm = c->vm;
	uint32_t dom_hi =
	        vm->vcpus_dom_max ? vm->vcpus_dom_max : vm->vcpus; /* unknown: no growth */
	uint64_t mdom_hi = vm->mem_dom_max_kib ? vm->mem_dom_max_kib : vm->mem_kib;
	uint32_t lo, hi;
	uint64_t mlo, mhi;

	hi = p->vcpus_max && p->vcpus_max < dom_hi ? p->vcpus_max : dom_hi;
	hi = hi ? hi : 1;
	lo = p->vcpus_min ? p->vcpus_min : vm->vcpus_dom_min;
	lo = lo ? lo : 1;
	c->vcpus_hi = hi;
	c->vcpus_lo = lo < hi ? lo : hi;

	c->granule_kib = vm->mem_granule_kib ? vm->mem_granule_kib : 1;
	c->grid_off_kib = vm->mem_dom_min_kib % c->granule_kib;
	mhi = p->mem_max_kib && p->mem_max_kib < mdom_hi ? p->mem_max_kib : mdom_hi;
	/* never aim at nothing, whatever the domain reports */
	mlo = max_u64(p->mem_min_kib ? p->mem_min_kib : vm->mem_dom_min_kib, c->granule_kib);
	c->mem_hi_kib = grid_down(c, mhi);
	c->mem_lo_kib = grid_up(c, min_u64(mlo, mhi));
	c->mem_fixed = !c->mem_hi_kib || c->mem_lo_kib > c->mem_hi_kib;
}

void policy_bounds(const struct policy *p, const struct vm_view *vm, struct policy_bounds *ret)
{
	struct ctx c = {.p = p, .vm = vm};

	set_bounds(&c);
	ret->vcpus_lo = c.vcpus_lo;
	ret->vcpus_hi = c.vcpus_hi;
	ret->mem_lo_kib = c.mem_fixed ? vm->mem_kib : c.mem_lo_kib;
	ret->mem_hi_kib = c.mem_fixed ? vm->mem_kib : c.mem_hi_kib;
}

/* "Held for for_ms": the run started at since (0 = not running) and its first sample stands for
 * the interval before it, so N samples 1 s apart hold for N s. */
static bool held(const struct ctx *c, uint64_t since, uint64_t for_ms)
{
	return since && sat_add(sat_sub(c->now_ms, since), c->st->interval_ms) >= for_ms;
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
		target = grid_down(c, cur + free_kib);
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
	used = sat_sub(s->mem_total_kib, s->mem_avail_kib);
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

	if (c->mem_fixed || (cur >= c->mem_lo_kib && cur <= c->mem_hi_kib))
		return STEP_NONE;
	if (cur < c->mem_lo_kib) {
		append(d, "memory %llu MiB below min %llu MiB", MIB(cur), MIB(c->mem_lo_kib));
		return grow_mem(c, d, c->mem_lo_kib, REASON_BOUNDS);
	}
	append(d, "memory %llu MiB above max %llu MiB", MIB(cur), MIB(c->mem_hi_kib));
	if (!mem_fit(c, &used, &fit)) {
		append(d, "; memory in use unknown");
		return hold(d, REASON_NO_FIT);
	}
	target = max_u64(c->mem_hi_kib, grid_up(c, fit));
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

	if (cur < c->vcpus_lo) {
		append(d, "vcpus %u below min %u", cur, c->vcpus_lo);
		return grow_vcpus(c, d, c->vcpus_lo, REASON_BOUNDS);
	}
	if (cur <= c->vcpus_hi)
		return STEP_NONE;
	append(d, "vcpus %u above max %u", cur, c->vcpus_hi);
	d->action = ACTION_VCPU_DOWN;
	d->reason = REASON_BOUNDS;
	d->vcpus_to = c->vcpus_hi;
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
	if (avail_pct(c->newest, &pct) && pct <= p->mem_up_avail_pct)
		append(d, "mem avail %.0f%% <= %g%% for ", pct, p->mem_up_avail_pct);
	else if (psi_mem_high(p, c->newest))
		append(d, "mem pressure %.0f%% >= %g%% for ", c->newest->psi_mem_some_avg10,
		       p->mem_psi_up_pct);
	else
		append(d, "memory low for ");
	append_dur(d, p->mem_up_for_ms);
	if (c->mem_fixed || cur >= c->mem_hi_kib) {
		append(d, "; memory at max %llu MiB", MIB(c->mem_hi_kib));
		return hold(d, REASON_AT_LIMIT);
	}
	left = cooldown_left(c, c->vm->last_mem_up_ms, c->vm->last_mem_down_ms,
	                     p->mem_cooldown_up_ms);
	if (left)
		return cooling(d, "memory", left);
	/* grow = min(hi, round_up(cur + step)); a step under a granule still grows one */
	step = max_u64(p->mem_step_up_kib, c->granule_kib);
	return grow_mem(c, d, min_u64(c->mem_hi_kib, grid_up(c, sat_add(cur, step))),
	                REASON_MEM_LOW);
}

static enum step saturated(struct ctx *c, struct decision *d)
{
	const struct sample_thread *t = top_thread(c->newest);
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
	if (one_thread(p, s) ||
	    (c->st->saturated_ms && sat_add(c->st->saturated_ms, p->cpu_up_for_ms) >= c->now_ms))
		return saturated(c, d);
	if (SAMPLE_HAS(s, SF_CPU_BUSY) && s->cpu_busy_pct >= p->cpu_up_pct)
		append(d, "cpu %.0f%% >= %g%% for ", s->cpu_busy_pct, p->cpu_up_pct);
	else if (psi_cpu_high(p, s))
		append(d, "cpu pressure %.0f%% >= %g%% for ", s->psi_cpu_some_avg10,
		       p->cpu_psi_up_pct);
	else
		append(d, "cpu high for ");
	append_dur(d, p->cpu_up_for_ms);
	if (c->vm->vcpus >= c->vcpus_hi) {
		append(d, "; vcpus at max %u", c->vcpus_hi);
		return hold(d, REASON_AT_LIMIT);
	}
	left = cooldown_left(c, c->vm->last_vcpu_up_ms, c->vm->last_vcpu_down_ms,
	                     p->vcpu_cooldown_up_ms);
	if (left)
		return cooling(d, "vcpu", left);
	step = p->vcpu_step_up ? p->vcpu_step_up : 1; /* unvalidated policy: still a step */
	return grow_vcpus(c, d, min_u64(sat_add(c->vm->vcpus, step), c->vcpus_hi), REASON_CPU_HIGH);
}

/* Shrink target = max(lo, cur - step, in use + margin + kernel share), rounded up to the grid:
 * rounding up never crosses lo (on the grid) and never eats into the margin. */
static enum step mem_down(struct ctx *c, struct decision *d)
{
	const struct policy *p = c->p;
	uint64_t cur = c->vm->mem_kib, used, fit, target, left;
	double pct;

	if (c->mem_fixed || cur <= c->mem_lo_kib ||
	    !held(c, c->st->mem_high_since, p->mem_down_for_ms))
		return STEP_NONE;
	if (avail_pct(c->newest, &pct))
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
	target =
	        max_u64(c->mem_lo_kib, sat_sub(cur, max_u64(p->mem_step_down_kib, c->granule_kib)));
	target = grid_up(c, max_u64(target, fit));
	if (target >= cur)
		return no_fit(c, d, used, fit);
	/* each shrink costs the guest an offlining pass and the host a resize: freeing crumbs
	 * (under a sixteenth of a step: 32 MiB by default) is not worth it. vscale-sim: a quarter
	 * step cost the goal on small VMs; a sixteenth cut vm1's memory actions from 7,620 to 4,720
	 */
	if (cur - target < p->mem_step_down_kib / 16 && target > c->mem_lo_kib) {
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

	if (c->mem_short || cur <= c->vcpus_lo ||
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
	target = max_u64(max_u64(c->vcpus_lo, sat_sub(cur, p->vcpu_step_down)), need);
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
	if (avail_pct(s, &pct))
		append(d, " mem avail %.0f%%", pct);
	else
		append(d, " mem avail n/a");
	hold(d, REASON_WITHIN);
}

void policy_decide(const struct policy *p, const struct vm_view *vm, const struct host_view *host,
                   uint64_t now_ms, struct decision *ret)
{
	/* memory first: a shortage risks OOM, a CPU shortage only slowness */
	static const step_fn steps[] = {mem_bounds, vcpu_bounds, mem_up,
	                                cpu_up,     mem_down,    cpu_down};
	struct ctx c = {.p = p, .vm = vm, .st = vm->st, .host = host, .now_ms = now_ms};
	struct decision base = {.action = ACTION_HOLD}, first_blocked = base;
	bool blocked = false;
	uint64_t age_ms;

	base.vcpus_from = base.vcpus_to = vm->vcpus;
	base.mem_from_kib = base.mem_to_kib = vm->mem_kib;
	*ret = base;
	if (!c.st || !c.st->last_ms) {
		ret->reason = REASON_NO_DATA;
		append(ret, "no sample yet");
		return;
	}
	/* never act, least of all shrink, on missing data */
	age_ms = sat_sub(now_ms, c.st->last_ms);
	if (age_ms > p->stale_ms) {
		ret->reason = REASON_NO_DATA;
		append(ret, "no sample for %llu s", (unsigned long long)(age_ms / 1000));
		return;
	}
	c.newest = &c.st->newest;
	base.saturated = SAMPLE_HAS(c.newest, SF_SATURATED) && c.newest->saturated;
	*ret = base;
	if (vm->busy) {
		ret->reason = REASON_BUSY;
		append(ret, "operation in flight, migrating or paused");
		return;
	}
	set_bounds(&c);
	/* a blocked step (cooldown, limit, ...) lets lower ones act; if none does, the first
	 * blocked one is the most useful thing to report */
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct decision d = base;
		enum step r = steps[i](&c, &d);

		if (r == STEP_ACT) {
			*ret = d;
			return;
		}
		if (r == STEP_BLOCKED && !blocked) {
			first_blocked = d;
			blocked = true;
		}
	}
	if (blocked) {
		*ret = first_blocked;
		return;
	}
	within(&c, ret);
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
