/* The sizes a VM may take: the policy's bounds (0 = the domain's) capped by the domain, and
 * memory on the VM's granule grid. policy.h declares the public view, policy_bounds(), which
 * bounds.c implements. Pure; the caller owns struct bounds, nothing to free. Internal to the
 * policy library. */
#ifndef VSCALE_BOUNDS_H
#define VSCALE_BOUNDS_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"

struct bounds {
	uint32_t vcpus_lo, vcpus_hi;
	/* Memory sizes live on a grid: grid_off_kib + k * granule_kib. The offset is the boot
	 * size modulo the granule, because virtio-mem plugs whole blocks on top of the boot
	 * memory; when the boot size is a multiple of the granule this is plain rounding. */
	uint64_t granule_kib, grid_off_kib;
	uint64_t mem_lo_kib, mem_hi_kib; /* the bounds, on the grid (lo rounded up, hi down) */
	bool mem_fixed;                  /* no grid point inside the bounds: never change memory */
};

/* Fills *ret with the bounds of policy p for the VM vm (its allocation and domain figures). */
void bounds_init(struct bounds *ret, const struct policy *p, const struct vm_view *vm);
/* Smallest grid point >= kib (UINT64_MAX when there is none). */
uint64_t bounds_grid_up(const struct bounds *b, uint64_t kib);
/* Largest grid point <= kib, or 0 when there is none. */
uint64_t bounds_grid_down(const struct bounds *b, uint64_t kib);

#endif
