/* Per-VM bookkeeping: the libvirt description, the guest session rules (Hello first, growing
 * sequence numbers, a new nonce means a new session) and the view handed to the policy. */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* what the policy assumes a sample covers when the guest does not say */
#define DEFAULT_INTERVAL_MS 1000u

struct vm *vm_new(struct ev_loop *loop, const struct virt_dom *d,
                  const struct guestlink_ops *link_ops)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	snprintf(vm->name, sizeof(vm->name), "%s", d->name);
	snprintf(vm->uuid, sizeof(vm->uuid), "%s", d->uuid);
	vm->dom = *d;
	vm->vcpus = d->vcpus_cur;
	vm->enabled = true;
	vm->warn_rl.burst = 5;
	vm->warn_rl.interval_ms = 10000;
	vm->hello_rl.burst = 5;
	vm->hello_rl.interval_ms = 60000;
	vm->next_request_id = 1;
	policy_state_init(&vm->st);
	guestlink_init(&vm->link, loop, link_ops);
	return vm;
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	guestlink_stop(&vm->link);
	free(vm->overrides);
	free(vm);
}

void vm_update_dom(struct vm *vm, const struct virt_dom *d)
{
	/* More plugged than granted is normal after a guest-only scale-down (no unplug on TCG).
	 * Fewer plugged than granted, or a plug count changed while we had nothing in flight,
	 * means someone else changed the VM: follow libvirt. */
	if (d->vcpus_cur < vm->vcpus ||
	    (vm->op.kind == OP_NONE && d->vcpus_cur != vm->dom.vcpus_cur))
		vm->vcpus = d->vcpus_cur;
	vm->dom = *d;
}

uint64_t vm_mem_kib(const struct vm *vm)
{
	return vm->dom.mem.cur_kib;
}

void vm_view(const struct vm *vm, struct vm_view *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->st = &vm->st;
	ret->vcpus = vm->vcpus;
	ret->vcpus_dom_min = 1;
	ret->vcpus_dom_max = vm->dom.vcpus_max;
	ret->mem_kib = vm_mem_kib(vm);
	ret->mem_dom_min_kib = vm->dom.mem.base_kib;
	ret->mem_dom_max_kib = vm->dom.mem.max_kib;
	ret->mem_granule_kib = vm->dom.mem.granule_kib;
	ret->last_vcpu_up_ms = vm->last_vcpu_up_ms;
	ret->last_vcpu_down_ms = vm->last_vcpu_down_ms;
	ret->last_mem_up_ms = vm->last_mem_up_ms;
	ret->last_mem_down_ms = vm->last_mem_down_ms;
	ret->busy = vm->op.kind != OP_NONE || vm->paused || !vm->enabled;
}

int vm_take_hello(struct vm *vm, const struct hello *h)
{
	if (h->protocol_version != 1)
		return -EPROTO;
	vm->hello = true;
	vm->nonce = h->session_nonce;
	vm->last_seq = 0;
	snprintf(vm->boot_id, sizeof(vm->boot_id), "%s", h->boot_id);
	policy_state_reset_runs(&vm->st);
	return 0;
}

/* The policy lets the first sample of a run stand for the interval the guest says it covers.
 * Taken on trust, a guest claiming 60 s would meet any window with one sample, and one that
 * flaps at full speed would get a decision (and a decision-log line) per sample. A sample
 * covers at most the time the host saw since the session's previous sample (a quarter more
 * absorbs jitter, so an honest guest loses nothing); the session's first covers nothing. Call
 * before last_seq takes the sample. */
static void cap_interval(const struct vm *vm, struct sample *s, uint64_t now_ms)
{
	uint64_t gap = vm->last_seq && now_ms > vm->st.last_ms ? now_ms - vm->st.last_ms : 0;
	uint64_t cap = gap + gap / 4;
	uint32_t claimed = SAMPLE_HAS(s, SF_INTERVAL) ? s->interval_ms : DEFAULT_INTERVAL_MS;

	if (cap == 0)
		cap = 1; /* 0 would mean "unsaid" */
	if (claimed > cap) {
		s->interval_ms = (uint32_t)cap;
		SAMPLE_SET(s, SF_INTERVAL);
	}
}

int vm_take_sample(struct vm *vm, const struct sample *s, uint64_t now_ms)
{
	struct sample seen;

	if (!vm->hello || s->seq <= vm->last_seq)
		return -EPROTO; /* before Hello, replayed, or going backwards */
	seen = *s;
	cap_interval(vm, &seen, now_ms);
	vm->last_seq = s->seq;
	vm->n.samples++;
	policy_observe(&vm->policy, &vm->st, &seen, now_ms);
	return 0;
}
