/* A controller under simulation: vscale's policy driven as vscale-hostd drives it (vsctl.c), or
 * a baseline (baseline.c). The simulator (simulate.c) hands it one guest sample per interval with
 * the allocation it has and the operations that finished; the controller answers with the
 * allocation it wants. The simulator carries changes out with the modelled latency.
 *
 * Constructors fill a caller-owned struct ctl; free its state with ctl_free(). */
#ifndef VSCALE_SIM_CTL_H
#define VSCALE_SIM_CTL_H

#include <stdbool.h>
#include <stdint.h>

#include "sample.h"

/* The simulated VM, its bounds and how fast its resources change. */
struct sim_env {
	/* domain bounds; the minimum is also the boot size hostd takes for the lower bound */
	uint32_t vcpus_min, vcpus_max;
	uint64_t mem_min_kib, mem_max_kib;
	uint64_t granule_kib; /* memory sizes are multiples of this (virtio-mem block) */
	uint32_t interval_ms; /* guest sample interval = simulation step */
	/* latency from the decision to the guest reporting the change */
	uint64_t vcpu_up_ms, vcpu_down_ms;               /* per vCPU */
	uint64_t mem_up_ms_per_gib, mem_down_ms_per_gib; /* per GiB */
};

enum op_result { OP_RES_NONE, OP_RES_DONE, OP_RES_REFUSED };

struct ctl_in {
	uint64_t now_ms; /* host time, never 0 */
	const struct sample *s;
	uint32_t vcpus;                     /* granted now (what the guest reports) */
	uint64_t mem_kib;                   /* granted now */
	bool vcpu_busy, mem_busy;           /* a change of that resource is in flight */
	enum op_result vcpu_done, mem_done; /* a change finished before this sample */
};

/* The allocation the controller wants; equal to the current one when it holds. */
struct ctl_want {
	uint32_t vcpus;
	uint64_t mem_kib;
};

struct ctl;

struct ctl_ops {
	/* Called once per sample. */
	void (*step)(struct ctl *c, const struct ctl_in *in, struct ctl_want *ret);
	void (*free)(struct ctl *c);
};

struct ctl {
	const struct ctl_ops *ops;
	char name[32];
	/* the allocation it starts from; 0 = a warm start: the trace begins in the middle of the
	 * VM's life, so it starts sized for the first reading (as the oracle would be) */
	uint32_t boot_vcpus;
	uint64_t boot_mem_kib;
	/* the guest agent refuses a memory shrink that would leave less than this available
	 * (vscale-guestd checks the margin it is sent); 0 = the guest takes any shrink */
	uint64_t guest_shrink_margin_kib;
	bool guest_checks_shrink;
	/* not a controller but the bound on any: at every sample the smallest allocation that fits
	 * the demand (whole vCPUs, whole blocks, within bounds), in place at once */
	bool oracle;
	void *priv;
};

void ctl_free(struct ctl *c);

/* Memory sizes on the granule grid: smallest multiple >= kib, largest <= kib. */
uint64_t ctl_mem_up(const struct sim_env *env, uint64_t kib);
uint64_t ctl_mem_down(const struct sim_env *env, uint64_t kib);
/* v clamped into the domain bounds */
uint32_t ctl_clamp_vcpus(const struct sim_env *env, uint64_t v);
uint64_t ctl_clamp_mem(const struct sim_env *env, uint64_t kib);

#endif
