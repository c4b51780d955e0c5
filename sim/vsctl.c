/* vscale's policy engine under simulation, step for step as vscale-hostd's on_frame() runs it:
 * vm_take_sample() -> actuate_on_sample() -> decide(). Only the I/O is gone. The two small pieces
 * of hostd that live outside policy.c (the interval cap of vm.c and the view) are mirrored here
 * because their library links libvirt: keep them in step with vm.c. */
#include "vsctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define HOST_UNLIMITED ((int64_t)1 << 50)

struct vsctl {
	struct policy p;
	struct sim_env env;
	struct policy_state st;
	uint64_t last_vcpu_up_ms, last_vcpu_down_ms, last_mem_up_ms, last_mem_down_ms;
	bool op; /* an operation in flight: hostd runs one per VM */
	struct vsctl_counts n;
	FILE *log;
	char trace[128];
	uint64_t t0_ms; /* host time of the first sample */
};

/* vm.c's vm_view() with the simulated domain's figures */
static void view(const struct vsctl *v, const struct ctl_in *in, struct vm_view *ret)
{
	*ret = (struct vm_view){
	        .st = &v->st,
	        .vcpus = in->vcpus,
	        .vcpus_dom_min = v->env.vcpus_min,
	        .vcpus_dom_max = v->env.vcpus_max,
	        .mem_kib = in->mem_kib,
	        .mem_dom_min_kib = v->env.mem_min_kib,
	        .mem_dom_max_kib = v->env.mem_max_kib,
	        .mem_granule_kib = v->env.granule_kib,
	        .last_vcpu_up_ms = v->last_vcpu_up_ms,
	        .last_vcpu_down_ms = v->last_vcpu_down_ms,
	        .last_mem_up_ms = v->last_mem_up_ms,
	        .last_mem_down_ms = v->last_mem_down_ms,
	        .busy = v->op,
	};
}

/* actuate_decision(): the resource's change time is set when the operation starts */
static void start(struct vsctl *v, const struct decision *d, uint64_t now, struct ctl_want *want)
{
	switch (d->action) {
	case ACTION_VCPU_UP:
		v->last_vcpu_up_ms = now;
		want->vcpus = d->vcpus_to;
		break;
	case ACTION_VCPU_DOWN:
		v->last_vcpu_down_ms = now;
		want->vcpus = d->vcpus_to;
		break;
	case ACTION_MEM_UP:
		v->last_mem_up_ms = now;
		want->mem_kib = d->mem_to_kib;
		break;
	case ACTION_MEM_DOWN:
		v->last_mem_down_ms = now;
		want->mem_kib = d->mem_to_kib;
		break;
	case ACTION_HOLD:
		return;
	}
	v->op = true;
}

/* vm.c's cap_interval(): a sample covers at most the host time since the previous one (plus a
 * quarter); the session's first covers nothing. */
static void cap_interval(const struct vsctl *v, struct sample *s, uint64_t now_ms)
{
	uint64_t gap = v->st.last_ms && now_ms > v->st.last_ms ? now_ms - v->st.last_ms : 0;
	uint64_t cap = gap + gap / 4;
	uint32_t claimed = SAMPLE_HAS(s, SF_INTERVAL) ? s->interval_ms : 1000u;

	if (cap == 0)
		cap = 1;
	if (claimed > cap) {
		s->interval_ms = (uint32_t)cap;
		SAMPLE_SET(s, SF_INTERVAL);
	}
}

/* actuate.c's describe(), with the trace time in front */
static void log_action(struct vsctl *v, const struct decision *d, uint64_t now)
{
	double t = (double)(now - v->t0_ms) / 1000.0;

	if (d->action == ACTION_VCPU_UP || d->action == ACTION_VCPU_DOWN)
		fprintf(v->log, "%s %10.0f s  vcpus %u -> %u (%s)\n", v->trace, t, d->vcpus_from,
		        d->vcpus_to, d->text);
	else
		fprintf(v->log, "%s %10.0f s  memory %.2f GiB -> %.2f GiB (%s)\n", v->trace, t,
		        (double)d->mem_from_kib / (1024.0 * 1024.0),
		        (double)d->mem_to_kib / (1024.0 * 1024.0), d->text);
}

static void step(struct ctl *c, const struct ctl_in *in, struct ctl_want *ret)
{
	struct vsctl *v = c->priv;
	struct host_view host = {.vcpus_free = HOST_UNLIMITED, .mem_free_kib = HOST_UNLIMITED};
	struct vm_view vm;
	struct decision d;
	struct sample seen = *in->s;

	ret->vcpus = in->vcpus;
	ret->mem_kib = in->mem_kib;
	if (!v->t0_ms)
		v->t0_ms = in->now_ms;
	cap_interval(v, &seen, in->now_ms);
	policy_observe(&v->p, &v->st, &seen, in->now_ms); /* vm_take_sample() */
	if (v->op && (in->vcpu_done != OP_RES_NONE || in->mem_done != OP_RES_NONE)) {
		v->op = false; /* finish(): done or refused, the runs describe the old size */
		policy_state_reset_runs(&v->st);
	}
	view(v, in, &vm);
	policy_decide(&v->p, &vm, &host, in->now_ms, &d);
	v->n.actions[d.action]++;
	if ((size_t)d.reason < sizeof(v->n.reasons) / sizeof(v->n.reasons[0]))
		v->n.reasons[d.reason]++;
	if (v->log && d.action != ACTION_HOLD)
		log_action(v, &d, in->now_ms);
	start(v, &d, in->now_ms, ret);
}

static void vsctl_free(struct ctl *c)
{
	free(c->priv);
	c->priv = NULL;
}

static const struct ctl_ops vsctl_ops = {.step = step, .free = vsctl_free};

int vsctl_new(const char *name, const struct policy *p, const struct sim_env *env, struct ctl *ret)
{
	struct vsctl *v = calloc(1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	v->p = *p;
	v->env = *env;
	policy_state_init(&v->st);
	*ret = (struct ctl){
	        .ops = &vsctl_ops,
	        .guest_checks_shrink = true,
	        .guest_shrink_margin_kib = p->mem_margin_kib,
	        .priv = v,
	};
	snprintf(ret->name, sizeof(ret->name), "%s", name);
	return 0;
}

const struct vsctl_counts *vsctl_counts(const struct ctl *c)
{
	return &((const struct vsctl *)c->priv)->n;
}

void vsctl_set_log(struct ctl *c, FILE *log, const char *trace_name)
{
	struct vsctl *v = c->priv;

	v->log = log;
	snprintf(v->trace, sizeof(v->trace), "%s", trace_name);
}
