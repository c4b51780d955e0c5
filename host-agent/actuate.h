/* Carries out the policy's decisions on one VM and follows each operation to its end: libvirt
 * calls, guest requests and their replies, confirmation from the guest's own figures, timeouts.
 * One operation in flight per VM. Every action is logged with VM, before -> after and reason,
 * written to the decision log, and the VM's cooldown state is persisted. */
#ifndef VSCALE_ACTUATE_H
#define VSCALE_ACTUATE_H

#include <stdbool.h>
#include <stdint.h>

#include "declog.h"
#include "hconf.h"
#include "policy.h"
#include "virt.h"
#include "vm.h"

struct actuate {
	struct virt *virt;
	const struct host_conf *host; /* the running config's [host] */
	struct declog *dlog;          /* may be NULL */
	bool dry_run;
	/* called after each decision-log line (may be NULL): hostd publishes it as an event */
	void (*on_record)(void *user, const struct vm *vm, const struct decision *d,
	                  const char *outcome, const char *detail);
	void *user;
};

/* Acts on a decision (HOLD only records changes of reason). */
void actuate_decision(struct actuate *a, struct vm *vm, const struct decision *d, uint64_t now_ms);
/* A guest Reply arrived. */
void actuate_on_reply(struct actuate *a, struct vm *vm, const struct reply *r, uint64_t now_ms);
/* A sample was accepted: completes operations waiting for the guest's figures. */
void actuate_on_sample(struct actuate *a, struct vm *vm, uint64_t now_ms);
/* A new guest session (Hello): re-asserts the granted vCPU count, fails requests in flight. */
void actuate_on_session(struct actuate *a, struct vm *vm, uint64_t now_ms);
/* Ends the operation in flight, if any, as failed with why (the VM stopped or left). */
void actuate_abort(struct actuate *a, struct vm *vm, const char *why, uint64_t now_ms);
/* Fails operations past their deadline. */
void actuate_check_timeout(struct actuate *a, struct vm *vm, uint64_t now_ms);

/* Loads / saves the VM's persisted cooldowns and grant. */
void actuate_load_state(struct actuate *a, struct vm *vm, uint64_t now_ms);
void actuate_save_state(struct actuate *a, struct vm *vm, uint64_t now_ms);

/* vCPUs and memory granted but not yet visible in libvirt's figures (for headroom). */
void actuate_in_flight(const struct vm *vm, uint64_t *ret_vcpus, uint64_t *ret_mem_kib);

#endif
