/* Baseline controllers for vscale-sim: static peak provisioning, proxmox-vm-autoscale's default
 * rule and a MoM-style moving average (what each does, and where its figures come from, is in
 * baseline.h). */
#include "baseline.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define KIB_PER_MIB     1024ull
#define MOM_MAX_HISTORY 64

struct proxmox {
	struct proxmox_rule r;
	struct sim_env env;
	uint64_t last_check_ms; /* 0 = never */
	uint64_t last_vcpu_ms, last_mem_ms;
};

struct mom {
	struct mom_rule r;
	struct sim_env env;
	uint64_t last_sample_ms, last_decide_ms;
	double cores[MOM_MAX_HISTORY], used_kib[MOM_MAX_HISTORY];
	uint32_t n, next; /* samples held, ring position */
};

static uint64_t mem_used_kib(const struct sample *s)
{
	if (!SAMPLE_HAS(s, SF_MEM_TOTAL) || !SAMPLE_HAS(s, SF_MEM_AVAIL))
		return 0;
	return s->mem_total_kib > s->mem_avail_kib ? s->mem_total_kib - s->mem_avail_kib : 0;
}

static void hold(const struct ctl_in *in, struct ctl_want *ret)
{
	ret->vcpus = in->vcpus;
	ret->mem_kib = in->mem_kib;
}

static void free_priv(struct ctl *c)
{
	free(c->priv);
	c->priv = NULL;
}

/* ---- static peak ---- */

static void static_step(struct ctl *c, const struct ctl_in *in, struct ctl_want *ret)
{
	hold(in, ret);
}

static const struct ctl_ops static_ops = {.step = static_step};

int baseline_static_new(const struct sim_env *env, double peak_cores, double peak_mem_kib,
                        struct ctl *ret)
{
	*ret = (struct ctl){
	        .ops = &static_ops,
	        .boot_vcpus = ctl_clamp_vcpus(env, (uint64_t)ceil(peak_cores - 1e-9)),
	        .boot_mem_kib = ctl_clamp_mem(env, ctl_mem_up(env, (uint64_t)ceil(peak_mem_kib))),
	};
	snprintf(ret->name, sizeof(ret->name), "static-peak");
	return 0;
}

/* ---- proxmox-vm-autoscale ---- */

void baseline_proxmox_default(struct proxmox_rule *ret)
{
	*ret = (struct proxmox_rule){
	        .cpu_high_pct = 80,
	        .cpu_low_pct = 20,
	        .mem_high_pct = 85,
	        .mem_low_pct = 25,
	        .vcpu_step = 1,
	        .mem_step_kib = 512 * KIB_PER_MIB,
	        .check_ms = 300000,
	        .cooldown_ms = 300000,
	};
}

static bool cooled(uint64_t now, uint64_t last, uint64_t cooldown)
{
	return !last || now - last >= cooldown;
}

/* One reading against the two thresholds: +1, -1 or 0. */
static int verdict(double pct, double high, double low)
{
	return pct > high ? 1 : pct < low ? -1 : 0;
}

static void proxmox_step(struct ctl *c, const struct ctl_in *in, struct ctl_want *ret)
{
	struct proxmox *p = c->priv;
	const struct sample *s = in->s;
	uint64_t now = in->now_ms;
	int v;

	hold(in, ret);
	if (p->last_check_ms && now - p->last_check_ms < p->r.check_ms)
		return;
	p->last_check_ms = now;
	v = verdict(s->cpu_busy_pct, p->r.cpu_high_pct, p->r.cpu_low_pct);
	if (v && !in->vcpu_busy && cooled(now, p->last_vcpu_ms, p->r.cooldown_ms)) {
		int64_t want = (int64_t)in->vcpus + v * (int64_t)p->r.vcpu_step;

		ret->vcpus = ctl_clamp_vcpus(&p->env, want > 0 ? (uint64_t)want : 0);
		if (ret->vcpus != in->vcpus)
			p->last_vcpu_ms = now;
	}
	v = s->mem_total_kib ? verdict(100.0 * (double)mem_used_kib(s) / (double)s->mem_total_kib,
	                               p->r.mem_high_pct, p->r.mem_low_pct)
	                     : 0;
	if (v && !in->mem_busy && cooled(now, p->last_mem_ms, p->r.cooldown_ms)) {
		uint64_t want =
		        v > 0 ? in->mem_kib + p->r.mem_step_kib
		              : (in->mem_kib > p->r.mem_step_kib ? in->mem_kib - p->r.mem_step_kib
		                                                 : 0);

		ret->mem_kib = ctl_clamp_mem(&p->env, ctl_mem_up(&p->env, want));
		if (ret->mem_kib != in->mem_kib)
			p->last_mem_ms = now;
	}
}

static const struct ctl_ops proxmox_ops = {.step = proxmox_step, .free = free_priv};

int baseline_proxmox_new(const struct sim_env *env, const struct proxmox_rule *rule,
                         struct ctl *ret)
{
	struct proxmox *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->r = *rule;
	p->env = *env;
	*ret = (struct ctl){.ops = &proxmox_ops, .priv = p};
	snprintf(ret->name, sizeof(ret->name), "proxmox");
	return 0;
}

/* ---- MoM-style ---- */

void baseline_mom_default(struct mom_rule *ret)
{
	*ret = (struct mom_rule){
	        .sample_ms = 5000,
	        .decide_ms = 10000,
	        .history = 10,
	        .free_frac = 0.20,
	        .max_change_frac = 0.05,
	        .min_change_frac = 0.0025,
	};
}

static void mom_collect(struct mom *m, const struct sample *s)
{
	uint32_t cap = m->r.history < MOM_MAX_HISTORY ? m->r.history : MOM_MAX_HISTORY;

	m->cores[m->next] = s->cpu_busy_pct / 100.0 * s->cpus_online;
	m->used_kib[m->next] = (double)mem_used_kib(s);
	m->next = (m->next + 1) % cap;
	if (m->n < cap)
		m->n++;
}

static double mean(const double *v, uint32_t n)
{
	double sum = 0;

	for (uint32_t i = 0; i < n; i++)
		sum += v[i];
	return n ? sum / n : 0;
}

/* balloon.rules: aim at used + free share of the current size; shrink by at most max_change,
 * grow by at least max_change (or to the aim); skip changes below min_change. */
static uint64_t mom_mem(const struct mom *m, uint64_t cur)
{
	double c = (double)cur, aim = mean(m->used_kib, m->n) + m->r.free_frac * c, next;

	if (aim <= c)
		next = fmax(aim, c * (1 - m->r.max_change_frac));
	else
		next = fmax(aim, c * (1 + m->r.max_change_frac));
	if (fabs(next - c) <= m->r.min_change_frac * c)
		return cur;
	return ctl_clamp_mem(&m->env, ctl_mem_up(&m->env, (uint64_t)ceil(next)));
}

static uint32_t mom_vcpus(const struct mom *m, uint32_t cur)
{
	double aim = ceil(mean(m->cores, m->n) / (1 - m->r.free_frac) - 1e-9);

	if (aim > cur)
		return ctl_clamp_vcpus(&m->env, (uint64_t)cur + 1);
	if (aim < cur)
		return ctl_clamp_vcpus(&m->env, cur - 1);
	return cur;
}

static void mom_step(struct ctl *c, const struct ctl_in *in, struct ctl_want *ret)
{
	struct mom *m = c->priv;
	uint64_t now = in->now_ms;

	hold(in, ret);
	if (!m->last_sample_ms || now - m->last_sample_ms >= m->r.sample_ms) {
		m->last_sample_ms = now;
		mom_collect(m, in->s);
	}
	if (m->last_decide_ms && now - m->last_decide_ms < m->r.decide_ms)
		return;
	m->last_decide_ms = now;
	if (!in->vcpu_busy)
		ret->vcpus = mom_vcpus(m, in->vcpus);
	if (!in->mem_busy)
		ret->mem_kib = mom_mem(m, in->mem_kib);
}

static const struct ctl_ops mom_ops = {.step = mom_step, .free = free_priv};

int baseline_mom_new(const struct sim_env *env, const struct mom_rule *rule, struct ctl *ret)
{
	struct mom *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->r = *rule;
	m->env = *env;
	*ret = (struct ctl){.ops = &mom_ops, .priv = m};
	snprintf(ret->name, sizeof(ret->name), "mom");
	return 0;
}

/* ---- oracle (carried out by the simulator: ctl.oracle) ---- */

static const struct ctl_ops oracle_ops = {.step = static_step};

int baseline_oracle_new(struct ctl *ret)
{
	*ret = (struct ctl){.ops = &oracle_ops, .oracle = true};
	snprintf(ret->name, sizeof(ret->name), "oracle");
	return 0;
}
