/* Bounds and the memory grid: which vCPU counts and memory sizes policy_decide() may aim at.
 * The policy's bounds win where set, the domain's (boot size .. libvirt maximum) fill in, and
 * the domain's maximum caps either way; memory bounds are moved onto the grid of sizes that
 * virtio-mem can reach from the boot size. */
#include "bounds.h"

uint64_t bounds_grid_up(const struct bounds *b, uint64_t kib)
{
	uint64_t k;

	if (kib <= b->grid_off_kib)
		return b->grid_off_kib;
	k = (kib - b->grid_off_kib) / b->granule_kib +
	    ((kib - b->grid_off_kib) % b->granule_kib != 0);
	if (k > (UINT64_MAX - b->grid_off_kib) / b->granule_kib)
		return UINT64_MAX;
	return b->grid_off_kib + k * b->granule_kib;
}

uint64_t bounds_grid_down(const struct bounds *b, uint64_t kib)
{
	if (kib < b->grid_off_kib)
		return 0;
	return kib - (kib - b->grid_off_kib) % b->granule_kib;
}

static void vcpu_range(struct bounds *b, const struct policy *p, const struct vm_view *vm)
{
	uint32_t dom_hi =
	        vm->vcpus_dom_max ? vm->vcpus_dom_max : vm->vcpus; /* unknown: no growth */
	uint32_t lo, hi;

	hi = p->vcpus_max && p->vcpus_max < dom_hi ? p->vcpus_max : dom_hi;
	hi = hi ? hi : 1;
	lo = p->vcpus_min ? p->vcpus_min : vm->vcpus_dom_min;
	lo = lo ? lo : 1;
	b->vcpus_hi = hi;
	b->vcpus_lo = lo < hi ? lo : hi;
}

static void mem_range(struct bounds *b, const struct policy *p, const struct vm_view *vm)
{
	uint64_t dom_hi = vm->mem_dom_max_kib ? vm->mem_dom_max_kib : vm->mem_kib;
	uint64_t lo, hi;

	b->granule_kib = vm->mem_granule_kib ? vm->mem_granule_kib : 1;
	b->grid_off_kib = vm->mem_dom_min_kib % b->granule_kib;
	hi = p->mem_max_kib && p->mem_max_kib < dom_hi ? p->mem_max_kib : dom_hi;
	lo = p->mem_min_kib ? p->mem_min_kib : vm->mem_dom_min_kib;
	/* never aim at nothing, whatever the domain reports */
	lo = lo > b->granule_kib ? lo : b->granule_kib;
	b->mem_hi_kib = bounds_grid_down(b, hi);
	b->mem_lo_kib = bounds_grid_up(b, lo < hi ? lo : hi);
	b->mem_fixed = !b->mem_hi_kib || b->mem_lo_kib > b->mem_hi_kib;
}

void bounds_init(struct bounds *ret, const struct policy *p, const struct vm_view *vm)
{
	vcpu_range(ret, p, vm);
	mem_range(ret, p, vm);
}

void policy_bounds(const struct policy *p, const struct vm_view *vm, struct policy_bounds *ret)
{
	struct bounds b;

	bounds_init(&b, p, vm);
	ret->vcpus_lo = b.vcpus_lo;
	ret->vcpus_hi = b.vcpus_hi;
	ret->mem_lo_kib = b.mem_fixed ? vm->mem_kib : b.mem_lo_kib;
	ret->mem_hi_kib = b.mem_fixed ? vm->mem_kib : b.mem_hi_kib;
}
