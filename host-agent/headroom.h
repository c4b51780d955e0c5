/* Host headroom: what can still be granted to VMs. Pure arithmetic over figures the caller
 * gathers (libvirt node info, the config, the VMs' allocations and the grants in flight). */
#ifndef VSCALE_HEADROOM_H
#define VSCALE_HEADROOM_H

#include <stdint.h>

#include "policy.h"

struct headroom_input {
	uint32_t host_cpus;
	uint64_t host_mem_total_kib; /* capacity: config memory-total, else libvirt's */
	uint64_t host_mem_free_kib;  /* free + reclaimable now, from libvirt */
	uint32_t reserve_cpus;
	uint64_t reserve_mem_kib;
	double cpu_overcommit;
	uint64_t vcpus_allocated;   /* vCPUs plugged in every active domain */
	uint64_t mem_allocated_kib; /* memory of every active domain */
	uint64_t vcpus_in_flight;   /* grants started and not yet seen in the figures above */
	uint64_t mem_in_flight_kib;
	int capacity_model; /* 1: memory headroom = capacity - allocated; 0: free memory now */
};

/* vCPUs: (host CPUs - reserve) x overcommit - allocated - in flight.
 * Memory: (free now, or capacity - allocated) - reserve - in flight. Negative means over. */
void headroom_compute(const struct headroom_input *in, struct host_view *ret);

#endif
