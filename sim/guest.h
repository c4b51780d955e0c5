/* The simulated guest: what vscale-guestd would report for a VM whose work demands cpu_cores and
 * mem_kib while it has vcpus and mem_kib allocated. The model, and what it assumes:
 *
 *   CPU      busy % = min(demand, vCPUs) / vCPUs: the demand is spread over every vCPU (the trace
 *            has no per-thread figures, so no lone hot thread: never single-thread saturation).
 *            Demand above the vCPUs queues: CPU pressure "some" is the excess relative to the
 *            vCPUs, min(100, 100 x (demand - vCPUs) / vCPUs) %, 0 when the demand fits.
 *   memory   MemTotal = the allocation (no kernel reservation subtracted), MemAvailable =
 *            allocation - demand, clamped at 0: the trace's memory figure is what the guest needs;
 *            the rest, page cache included, is taken as reclaimable. Demand above the allocation
 *            stalls in reclaim: memory pressure "some" is the excess relative to the allocation,
 *            min(100, 100 x (demand - allocation) / allocation) %.
 *   PSI      each figure is an avg10 as the kernel keeps it: an exponential average with a 10 s
 *            time constant of the instantaneous share above, updated once per sample.
 *
 * A sample carries CPU online/present, busy %, CPU and memory PSI some, MemTotal, MemAvailable,
 * the saturation flag (false) and the interval; nothing else (steal, load, swap, threads, blocks)
 * is modelled, so those presence bits stay clear and the policy treats them as unknown. */
#ifndef VSCALE_SIM_GUEST_H
#define VSCALE_SIM_GUEST_H

#include <stdint.h>

#include "sample.h"

struct guest {
	uint32_t interval_ms;
	double keep; /* share of the PSI averages an interval keeps: exp(-interval / 10 s) */
	uint64_t seq;
	double psi_cpu_some, psi_mem_some; /* avg10, % */
};

void guest_init(struct guest *g, uint32_t interval_ms);

/* Builds the sample the guest sends at mono time now_ms and advances its PSI averages by one
 * interval. vcpus and mem_kib are what the guest can use now. */
void guest_sample(struct guest *g, double cpu_cores, double mem_kib, uint32_t vcpus,
                  uint64_t mem_kib_alloc, uint64_t now_ms, struct sample *ret);

#endif
