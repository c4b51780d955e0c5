/* Per-VM state in hostd: who the VM is, what libvirt says it has, its guest stream and session,
 * what the policy has seen, the operation in flight and when each resource last changed.
 * The VM table owns vms; a vm owns its guestlink. */
#ifndef VSCALE_VM_H
#define VSCALE_VM_H

#include <stdbool.h>
#include <stdint.h>

#include "guestlink.h"
#include "log.h"
#include "meter.h"
#include "policy.h"
#include "virt.h"

enum op_kind {
	OP_NONE,
	OP_VCPU_UP,   /* plugged or asked the guest to online; waits for the guest to report */
	OP_VCPU_DOWN, /* asked the guest to offline; waits for its reply */
	OP_MEM_UP,    /* resized; waits for the guest's MemTotal to grow */
	OP_MEM_DOWN,  /* asked the guest to offline; waits for its reply, then resizes */
};

struct vm_op {
	enum op_kind kind;
	struct decision decision; /* what started it: logged with the outcome */
	uint64_t request_id;      /* guest request we wait on; 0 = none */
	uint64_t started_ms, deadline_ms;
	uint32_t vcpus_from, vcpus_to;
	uint64_t mem_from_kib, mem_to_kib;
	uint64_t guest_total_before_kib; /* guest MemTotal when the op started */
};

struct vm_counters {
	uint64_t samples;
	uint64_t rejected;     /* frames that did not decode or broke the session rules */
	uint64_t decisions[5]; /* by enum action */
	uint64_t ops_ok, ops_failed, ops_refused, ops_timeout;
};

struct vm {
	char name[VIRT_NAME_LEN];
	char uuid[VIRT_UUID_LEN];
	struct virt_dom dom; /* as libvirt last described it */
	struct policy policy;
	bool enabled; /* a [vm] rule may turn scaling off */
	bool paused;  /* operator pause */
	bool seen;    /* marked during a re-list */

	struct guestlink link;
	bool hello;     /* this session said Hello */
	uint64_t nonce; /* session nonce from Hello */
	char boot_id[40];
	uint64_t last_seq;

	struct policy_state st;
	uint32_t vcpus; /* vCPUs granted: online in the guest by our decision (<= plugged) */
	uint64_t last_vcpu_up_ms, last_vcpu_down_ms, last_mem_up_ms, last_mem_down_ms;
	struct vm_op op;
	struct decision last_decision; /* the newest, holds included (for reason changes) */
	char last_action[256];         /* human line of the last action and its outcome */
	struct vm_counters n;
	struct log_ratelimit warn_rl;
	struct log_ratelimit hello_rl; /* "guest agent connected" lines */
	uint64_t next_request_id;

	char *overrides; /* heap "key=value ..." set by vscalectl, re-applied over the config's
	                    policy until a reload; NULL = none */
	struct meter_entry *meter; /* metering, owned by hostd's meter table */
	uint64_t metered_ms;       /* when the meter was last advanced; 0 = not yet */
};

/* New VM for a libvirt domain; the caller starts its link. Free with vm_free(). */
struct vm *vm_new(struct ev_loop *loop, const struct virt_dom *d,
                  const struct guestlink_ops *link_ops);
void vm_free(struct vm *vm);

/* Takes a fresh libvirt description: vCPU and memory figures, channel path. */
void vm_update_dom(struct vm *vm, const struct virt_dom *d);

/* The policy's view of this VM now. */
void vm_view(const struct vm *vm, struct vm_view *ret);

/* Session rules for guest frames: a Hello starts a session (runs forgotten); samples need one,
 * and their seq must grow. Returns 0 when the sample is accepted (and folded into the policy
 * state, its claimed interval capped by the time the host saw since the session's previous
 * sample), -EPROTO when it breaks the rules (caller counts and logs). */
int vm_take_hello(struct vm *vm, const struct hello *h);
int vm_take_sample(struct vm *vm, const struct sample *s, uint64_t now_ms);

/* Memory granted now, by the domain's mechanism. */
uint64_t vm_mem_kib(const struct vm *vm);

#endif
