/* struct vm -> struct ctl_vm. See report.h. */
#include "report.h"

#include <stdio.h>
#include <string.h>

const char *report_mech_name(enum virt_mem_mech m)
{
	switch (m) {
	case VIRT_MEM_VIRTIO_MEM:
		return "virtio-mem";
	case VIRT_MEM_DIMM:
		return "dimm";
	case VIRT_MEM_BALLOON:
		return "balloon";
	case VIRT_MEM_NONE:
		break;
	}
	return "fixed";
}

static const char *op_name(enum op_kind k)
{
	switch (k) {
	case OP_VCPU_UP:
		return "vcpu-up";
	case OP_VCPU_DOWN:
		return "vcpu-down";
	case OP_MEM_UP:
		return "mem-up";
	case OP_MEM_DOWN:
		return "mem-down";
	case OP_NONE:
		break;
	}
	return "";
}

/* one word for the list: why the VM is or is not scaling now */
static const char *state_of(const struct vm *vm)
{
	if (!vm->enabled)
		return "disabled";
	if (vm->paused)
		return "paused";
	if (!vm->link.started)
		return "no-channel";
	if (!vm->hello)
		return "no-stream";
	if (vm->op.kind != OP_NONE)
		return "busy";
	return "active";
}

static void guest_figures(const struct vm *vm, uint64_t now_ms, struct ctl_vm *v)
{
	const struct sample *s = &vm->st.newest;

	if (!vm->st.last_ms)
		return;
	v->has_sample = true;
	v->sample_age_ms = now_ms > vm->st.last_ms ? now_ms - vm->st.last_ms : 0;
	v->cpu_busy_pct = SAMPLE_HAS(s, SF_CPU_BUSY) ? s->cpu_busy_pct : 0;
	v->cpus_online = SAMPLE_HAS(s, SF_CPU_ONLINE) ? s->cpus_online : 0;
	v->cpu_psi_some = SAMPLE_HAS(s, SF_PSI_CPU_SOME) ? s->psi_cpu_some_avg10 : 0;
	v->guest_mem_total_kib = SAMPLE_HAS(s, SF_MEM_TOTAL) ? s->mem_total_kib : 0;
	v->guest_mem_available_kib = SAMPLE_HAS(s, SF_MEM_AVAIL) ? s->mem_avail_kib : 0;
	v->mem_psi_some = SAMPLE_HAS(s, SF_PSI_MEM_SOME) ? s->psi_mem_some_avg10 : 0;
	v->saturated = SAMPLE_HAS(s, SF_SATURATED) && s->saturated;
}

void report_vm(const struct vm *vm, uint64_t now_ms, struct ctl_vm *ret)
{
	struct ctl_vm *v = ret;
	struct vm_view view;
	struct policy_bounds b;

	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", vm->name);
	snprintf(v->uuid, sizeof(v->uuid), "%s", vm->uuid);
	snprintf(v->policy, sizeof(v->policy), "%s", vm->policy.name);
	snprintf(v->state, sizeof(v->state), "%s", state_of(vm));
	v->paused = vm->paused;
	v->enabled = vm->enabled;
	v->streaming = vm->hello;
	vm_view(vm, &view);
	policy_bounds(&vm->policy, &view, &b);
	v->vcpus = vm->vcpus;
	v->vcpus_plugged = vm->dom.vcpus_cur;
	v->vcpus_min = b.vcpus_lo;
	v->vcpus_max = b.vcpus_hi;
	v->mem_kib = vm_mem_kib(vm);
	v->mem_min_kib = b.mem_lo_kib;
	v->mem_max_kib = b.mem_hi_kib;
	snprintf(v->mem_mechanism, sizeof(v->mem_mechanism), "%s",
	         report_mech_name(vm->dom.mem.mech));
	guest_figures(vm, now_ms, v);
	snprintf(v->last_action, sizeof(v->last_action), "%s", vm->last_action);
	snprintf(v->last_decision, sizeof(v->last_decision), "%s (%s)%s%s",
	         policy_action_name(vm->last_decision.action),
	         policy_reason_name(vm->last_decision.reason),
	         vm->last_decision.text[0] ? ": " : "", vm->last_decision.text);
	snprintf(v->op, sizeof(v->op), "%s", op_name(vm->op.kind));
	v->samples = vm->n.samples;
	v->rejected = vm->n.rejected;
	v->ops_ok = vm->n.ops_ok;
	v->ops_failed = vm->n.ops_failed;
	v->ops_refused = vm->n.ops_refused;
	v->ops_timeout = vm->n.ops_timeout;
	if (vm->meter) {
		v->vcpu_seconds = vm->meter->vcpu_seconds;
		v->gib_seconds = vm->meter->gib_seconds;
	}
	snprintf(v->overrides, sizeof(v->overrides), "%s", vm->overrides ? vm->overrides : "");
	snprintf(v->channel, sizeof(v->channel), "%s", vm->link.started ? vm->link.path : "");
}
