/* The simulation loop: for each step, finish operations whose latency has passed, build the
 * guest's sample, let the controller decide, start what it asked for, and integrate allocation
 * against demand over the step (the model is in simulate.h and guest.h). */
#include "simulate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest.h"

#define BASE_MS     1000000ull /* host time of the trace's first row: never 0 */
#define KIB_PER_GIB (1024.0 * 1024.0)

struct op {
	bool on;
	uint64_t from, to;
	uint64_t done_ms;
	enum op_result result;
};

/* Integrals over time, in unit-seconds. */
struct sums {
	double s, vcpu_s, gib_s, demand_core_s, demand_gib_s;
	double slack_core_s, slack_gib_s, short_core_s, short_gib_s;
	double under_cpu_s, under_mem_s, under_any_s;
};

struct run {
	const struct trace *t;
	const struct sim_env *env;
	struct ctl *c;
	struct sim_result *r;
	struct guest g;
	uint32_t vcpus;   /* granted */
	uint64_t mem_kib; /* granted */
	struct op vop, mop;
	enum op_result vdone, mdone;
	size_t cursor;
	struct sums sum;
};

static uint64_t lo(const struct op *o, uint64_t granted)
{
	return o->on ? (o->from < o->to ? o->from : o->to) : granted;
}

static uint64_t hi(const struct op *o, uint64_t granted)
{
	return o->on ? (o->from > o->to ? o->from : o->to) : granted;
}

static int push_point(struct sim_result *r, double t_s, int starts_segment, uint32_t vcpus,
                      uint64_t mem_kib)
{
	if (r->npts == r->cap_pts) {
		size_t cap = r->cap_pts ? r->cap_pts * 2 : 256;
		struct sim_point *p = realloc(r->pts, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		r->pts = p;
		r->cap_pts = cap;
	}
	r->pts[r->npts++] = (struct sim_point){
	        .t_s = t_s, .vcpus = vcpus, .mem_kib = mem_kib, .starts_segment = starts_segment};
	return 0;
}

static void finish_ops(struct run *u, uint64_t now)
{
	if (u->vop.on && now >= u->vop.done_ms) {
		u->vcpus = (uint32_t)(u->vop.result == OP_RES_REFUSED ? u->vop.from : u->vop.to);
		u->vdone = u->vop.result;
		u->vop.on = false;
	}
	if (u->mop.on && now >= u->mop.done_ms) {
		u->mem_kib = u->mop.result == OP_RES_REFUSED ? u->mop.from : u->mop.to;
		u->mdone = u->mop.result;
		u->mop.on = false;
	}
}

static void start_vcpus(struct run *u, uint32_t want, uint64_t now)
{
	const struct sim_env *env = u->env;
	uint64_t n;

	want = ctl_clamp_vcpus(env, want);
	if (u->vop.on || want == u->vcpus)
		return;
	n = want > u->vcpus ? want - u->vcpus : u->vcpus - want;
	u->vop = (struct op){.on = true, .from = u->vcpus, .to = want, .result = OP_RES_DONE};
	u->vop.done_ms = now + n * (want > u->vcpus ? env->vcpu_up_ms : env->vcpu_down_ms);
	u->r->vcpu_actions++;
}

static void start_mem(struct run *u, uint64_t want, double demand_kib, uint64_t now)
{
	const struct sim_env *env = u->env;
	double gib;

	want = ctl_clamp_mem(env, want);
	if (u->mop.on || want == u->mem_kib)
		return;
	gib = (double)(want > u->mem_kib ? want - u->mem_kib : u->mem_kib - want) / KIB_PER_GIB;
	u->mop = (struct op){.on = true, .from = u->mem_kib, .to = want, .result = OP_RES_DONE};
	u->r->mem_actions++;
	if (want < u->mem_kib && u->c->guest_checks_shrink &&
	    demand_kib + (double)u->c->guest_shrink_margin_kib > (double)want) {
		/* the guest agent refuses at once: in use + margin would not fit */
		u->mop.result = OP_RES_REFUSED;
		u->mop.to = u->mop.from;
		u->mop.done_ms = now;
		u->r->refused++;
		return;
	}
	u->mop.done_ms =
	        now +
	        (uint64_t)llround(gib * (double)(want > u->mem_kib ? env->mem_up_ms_per_gib
	                                                           : env->mem_down_ms_per_gib));
}

static void account(struct run *u, double dt_s, double cpu, double mem_kib)
{
	struct sums *s = &u->sum;
	double charged_v = (double)hi(&u->vop, u->vcpus), usable_v = (double)lo(&u->vop, u->vcpus);
	double charged_m = (double)hi(&u->mop, u->mem_kib) / KIB_PER_GIB;
	double usable_m = (double)lo(&u->mop, u->mem_kib) / KIB_PER_GIB;
	double mem = mem_kib / KIB_PER_GIB;
	bool under_cpu = cpu > usable_v + 1e-9, under_mem = mem > usable_m + 1e-12;

	s->s += dt_s;
	s->vcpu_s += charged_v * dt_s;
	s->gib_s += charged_m * dt_s;
	s->demand_core_s += cpu * dt_s;
	s->demand_gib_s += mem * dt_s;
	s->slack_core_s += fmax(0, charged_v - cpu) * dt_s;
	s->slack_gib_s += fmax(0, charged_m - mem) * dt_s;
	s->short_core_s += fmax(0, cpu - usable_v) * dt_s;
	s->short_gib_s += fmax(0, mem - usable_m) * dt_s;
	s->under_cpu_s += under_cpu ? dt_s : 0;
	s->under_mem_s += under_mem ? dt_s : 0;
	s->under_any_s += under_cpu || under_mem ? dt_s : 0;
}

/* The oracle's allocation: what fits the demand now, nothing to wait for. */
static void oracle(struct run *u, double cpu, double mem_kib)
{
	uint32_t v = ctl_clamp_vcpus(u->env, (uint64_t)ceil(cpu - 1e-9));
	uint64_t m = ctl_clamp_mem(u->env, ctl_mem_up(u->env, (uint64_t)ceil(mem_kib)));

	u->r->vcpu_actions += v != u->vcpus;
	u->r->mem_actions += m != u->mem_kib;
	u->vcpus = v;
	u->mem_kib = m;
}

/* One sample at host time now; integrates over the dt_ms after it. */
static int step(struct run *u, uint64_t trace_ms, uint64_t dt_ms)
{
	uint64_t now = BASE_MS + trace_ms;
	uint32_t v0 = (uint32_t)hi(&u->vop, u->vcpus);
	uint64_t m0 = hi(&u->mop, u->mem_kib);
	double cpu, mem;
	struct sample s;
	struct ctl_in in;
	struct ctl_want want;

	finish_ops(u, now);
	trace_demand_at(u->t, &u->cursor, (double)trace_ms / 1000.0, &cpu, &mem);
	if (u->c->oracle) {
		oracle(u, cpu, mem);
		goto account;
	}
	guest_sample(&u->g, cpu, mem, (uint32_t)lo(&u->vop, u->vcpus), lo(&u->mop, u->mem_kib), now,
	             &s);
	in = (struct ctl_in){.now_ms = now,
	                     .s = &s,
	                     .vcpus = u->vcpus,
	                     .mem_kib = u->mem_kib,
	                     .vcpu_busy = u->vop.on,
	                     .mem_busy = u->mop.on,
	                     .vcpu_done = u->vdone,
	                     .mem_done = u->mdone};
	u->vdone = u->mdone = OP_RES_NONE;
	u->c->ops->step(u->c, &in, &want);
	start_vcpus(u, want.vcpus, now);
	start_mem(u, want.mem_kib, mem, now);
account:
	u->r->samples++;
	account(u, (double)dt_ms / 1000.0, cpu, mem);
	if (hi(&u->vop, u->vcpus) != v0 || hi(&u->mop, u->mem_kib) != m0)
		return push_point(u->r, (double)trace_ms / 1000.0, 0,
		                  (uint32_t)hi(&u->vop, u->vcpus), hi(&u->mop, u->mem_kib));
	return 0;
}

static int segment(struct run *u, size_t first, size_t last)
{
	uint64_t ms0 = (uint64_t)llround(u->t->pts[first].t_s * 1000.0);
	uint64_t ms1 = (uint64_t)llround(u->t->pts[last].t_s * 1000.0);
	uint64_t iv = u->env->interval_ms;
	int e;

	if (ms1 <= ms0)
		return 0;
	u->cursor = first;
	e = push_point(u->r, (double)ms0 / 1000.0, 1, (uint32_t)hi(&u->vop, u->vcpus),
	               hi(&u->mop, u->mem_kib));
	for (uint64_t ms = ms0; e == 0 && ms < ms1; ms += iv)
		e = step(u, ms, ms1 - ms < iv ? ms1 - ms : iv);
	if (e == 0)
		e = push_point(u->r, (double)ms1 / 1000.0, 0, (uint32_t)hi(&u->vop, u->vcpus),
		               hi(&u->mop, u->mem_kib));
	return e;
}

static double pct(double part, double whole)
{
	return whole > 0 ? 100.0 * part / whole : 0;
}

static void summarize(const struct sums *s, struct sim_result *r)
{
	r->hours = s->s / 3600.0;
	r->vcpu_h = s->vcpu_s / 3600.0;
	r->gib_h = s->gib_s / 3600.0;
	r->demand_core_h = s->demand_core_s / 3600.0;
	r->demand_gib_h = s->demand_gib_s / 3600.0;
	r->cpu_slack_pct = pct(s->slack_core_s, s->vcpu_s);
	r->mem_slack_pct = pct(s->slack_gib_s, s->gib_s);
	r->under_cpu_pct = pct(s->under_cpu_s, s->s);
	r->under_mem_pct = pct(s->under_mem_s, s->s);
	r->under_any_pct = pct(s->under_any_s, s->s);
	r->short_core_h = s->short_core_s / 3600.0;
	r->short_gib_h = s->short_gib_s / 3600.0;
}

int sim_run(const struct trace *t, const struct sim_env *env, struct ctl *c, struct sim_result *ret)
{
	struct run u = {.t = t, .env = env, .c = c, .r = ret};
	int e = 0;

	memset(ret, 0, sizeof(*ret));
	snprintf(ret->ctl, sizeof(ret->ctl), "%s", c->name);
	if (!env->interval_ms || !env->vcpus_min || env->vcpus_min > env->vcpus_max ||
	    !env->mem_min_kib || env->mem_min_kib > env->mem_max_kib)
		return -EINVAL;
	guest_init(&u.g, env->interval_ms);
	if (c->boot_vcpus && c->boot_mem_kib) {
		u.vcpus = ctl_clamp_vcpus(env, c->boot_vcpus);
		u.mem_kib = ctl_clamp_mem(env, c->boot_mem_kib);
	} else if (t->n) {
		oracle(&u, t->pts[0].cpu_cores, t->pts[0].mem_kib);
		ret->vcpu_actions = ret->mem_actions = 0;
	}
	for (size_t i = 0; e == 0 && i < t->n; i++) {
		size_t last = trace_segment_end(t, i);

		e = segment(&u, i, last);
		i = last;
	}
	if (e < 0) {
		sim_result_fini(ret);
		return e;
	}
	summarize(&u.sum, ret);
	return 0;
}

void sim_result_fini(struct sim_result *r)
{
	free(r->pts);
	r->pts = NULL;
	r->npts = r->cap_pts = 0;
}
