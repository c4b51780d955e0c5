/* The scaling policy engine: pure. Given a policy, a VM's recent samples and allocation, and the
 * host's headroom, it returns one decision with its reason. No I/O, no clock (now_ms is an
 * argument), no logging, no globals: its tests are tables. This is the public API of the whole
 * vscale_policy library: policy.c (defaults, validation), runs.c (policy_observe), bounds.c
 * (policy_bounds) and decision.c (policy_decide); verdict.h, runs.h and bounds.h are its
 * internals. Nothing here allocates. */
#ifndef VSCALE_POLICY_H
#define VSCALE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sample.h"

#define POLICY_NAME_LEN 64

struct policy {
	char name[POLICY_NAME_LEN];
	/* bounds; 0 = take it from the domain (boot size .. libvirt maximum) */
	uint32_t vcpus_min, vcpus_max;
	uint64_t mem_min_kib, mem_max_kib;

	/* CPU: up when busy >= cpu_up_pct or CPU PSI some avg10 >= cpu_psi_up_pct, held for
	 * cpu_up_for_ms; down when busy <= cpu_down_pct (and PSI below cpu_psi_up_pct) for
	 * cpu_down_for_ms */
	double cpu_up_pct, cpu_down_pct, cpu_psi_up_pct;
	uint64_t cpu_up_for_ms, cpu_down_for_ms;
	uint32_t vcpu_step_up, vcpu_step_down;
	uint64_t vcpu_cooldown_up_ms, vcpu_cooldown_down_ms;

	/* memory: up when MemAvailable <= mem_up_avail_pct of MemTotal or memory PSI some avg10 >=
	 * mem_psi_up_pct for mem_up_for_ms; down when MemAvailable >= mem_down_avail_pct for
	 * mem_down_for_ms and what is in use plus mem_margin_kib fits the smaller size */
	double mem_up_avail_pct, mem_down_avail_pct, mem_psi_up_pct;
	uint64_t mem_up_for_ms, mem_down_for_ms;
	uint64_t mem_step_up_kib, mem_step_down_kib, mem_margin_kib;
	uint64_t mem_cooldown_up_ms, mem_cooldown_down_ms;

	uint64_t stale_ms; /* newest sample older than this: hold, never shrink on missing data */
};

/* What the policy remembers of a VM's stream, updated by policy_observe() on every sample.
 *
 * NOTE (design, from the lead): no sample history is kept. hostd watches 10,000 streams in
 * 64 MiB, so instead of a ring of samples each "condition held for X" is tracked as the host
 * time of the first sample of the current unbroken run of samples satisfying it (0 = the
 * newest sample does not satisfy it). "Held for X" then means: since != 0 and
 * now - since + interval >= X (the first sample stands for the interval before it). Samples that
 * lack the figure a condition needs neither break nor extend its run. A gap longer than
 * stale_ms resets every run: missing data breaks continuity. */
struct policy_state {
	uint64_t last_ms;     /* host ms of the newest sample; 0 = none yet */
	uint32_t interval_ms; /* the guest's sample interval; 1000 if unsaid, at most 60000 */
	struct sample newest; /* the newest sample as received */

	uint64_t cpu_high_since, cpu_low_since; /* runs; 0 = not holding */
	uint64_t mem_low_since, mem_high_since;
	double cpu_low_max_busy_cores; /* highest busy CPUs (busy% x online / 100) in the low run */
	uint32_t cpu_low_max_hot;      /* most threads >= 50% of a CPU seen in the low run */
	uint64_t mem_high_max_used_kib; /* highest MemTotal - MemAvailable in the high run */
	/* host ms of the newest sample in the current high run where one thread saturated a CPU
	 * and the rest was low; 0 = none. A time, not a flag: a long high run that started
	 * single-threaded (configure, then make -j) must not block scale-up for good. */
	uint64_t saturated_ms;
};

/* Clears *st: no samples, no runs. */
void policy_state_init(struct policy_state *st);
/* Forgets the runs but keeps the newest sample: after an action, when the figures describe the
 * VM's old size, or a new guest session. */
void policy_state_reset_runs(struct policy_state *st);
/* Folds one sample received at host time host_ms into *st. Pure. */
void policy_observe(const struct policy *p, struct policy_state *st, const struct sample *s,
                    uint64_t host_ms);

struct vm_view {
	const struct policy_state *st;         /* never NULL */
	uint32_t vcpus;                        /* vCPUs allocated now */
	uint32_t vcpus_dom_min, vcpus_dom_max; /* boot size and libvirt maximum */
	uint64_t mem_kib;                      /* memory allocated now */
	uint64_t mem_dom_min_kib,
	        mem_dom_max_kib;  /* boot size and the most the mechanism reaches */
	uint64_t mem_granule_kib; /* sizes are multiples of this (virtio-mem block) */
	uint64_t last_vcpu_up_ms, last_vcpu_down_ms; /* host ms of the last change; 0 = never */
	uint64_t last_mem_up_ms, last_mem_down_ms;
	bool busy; /* an operation is in flight, the VM migrates, or it is paused by the operator */
};

struct host_view {
	int64_t vcpus_free;   /* vCPUs that can still be granted (after overcommit and reserve) */
	int64_t mem_free_kib; /* memory that can still be granted (after reserve and grants) */
};

enum action {
	ACTION_HOLD,
	ACTION_VCPU_UP,
	ACTION_VCPU_DOWN,
	ACTION_MEM_UP,
	ACTION_MEM_DOWN,
};

enum reason {
	REASON_WITHIN,    /* every figure inside its thresholds */
	REASON_NO_DATA,   /* no sample yet or stale */
	REASON_BUSY,      /* operation in flight, migrating or paused */
	REASON_COOLDOWN,  /* would act, but the resource's cooldown runs */
	REASON_AT_LIMIT,  /* would act, but the policy bound is reached */
	REASON_HOST_FULL, /* would grow, but the host has no headroom */
	REASON_SATURATED, /* one thread saturates a CPU: more vCPUs would not help */
	REASON_CPU_HIGH,  /* vCPU up: busy or CPU pressure */
	REASON_CPU_LOW,   /* vCPU down */
	REASON_MEM_LOW,   /* memory up: little available or memory pressure */
	REASON_MEM_HIGH,  /* memory down */
	REASON_NO_FIT,    /* would shrink, but in-use + margin does not fit (or, for vCPUs,
	                     the busy threads and the load would not fit below cpu-up) */
	REASON_BOUNDS,    /* outside the policy bounds (changed since): moving inside */
};

struct decision {
	enum action action;
	enum reason reason;
	/* from = the allocation now, in every decision; to = the target (= from unless the action
	 * changes that resource) */
	uint32_t vcpus_from, vcpus_to;
	uint64_t mem_from_kib, mem_to_kib;
	bool clipped;   /* the step was cut short by the host's headroom */
	bool saturated; /* the newest sample reports single-thread saturation, or it held vCPUs */
	char text[192]; /* human reason: "cpu 91% >= 80% for 10 s" */
};

/* Fills *p with the built-in defaults (name "default"). */
void policy_default(struct policy *p);

/* Checks a policy for contradictions (min > max, down threshold above up, ...). Returns 0 or
 * -EINVAL with a message in err. */
int policy_validate(const struct policy *p, char *err, size_t errlen);

/* Decides what to do for one VM now. Always fills *ret (HOLD with a reason when nothing). */
void policy_decide(const struct policy *p, const struct vm_view *vm, const struct host_view *host,
                   uint64_t now_ms, struct decision *ret);

/* The bounds policy_decide() works within for this VM: the policy's, 0 meaning the domain's,
 * capped by the domain, memory on the VM's granule grid (fixed memory: the current size). */
struct policy_bounds {
	uint32_t vcpus_lo, vcpus_hi;
	uint64_t mem_lo_kib, mem_hi_kib;
};
void policy_bounds(const struct policy *p, const struct vm_view *vm, struct policy_bounds *ret);

const char *policy_action_name(enum action a); /* "hold", "vcpu-up", ... */
const char *policy_reason_name(enum reason r); /* "within", "no-data", ... */

#endif
