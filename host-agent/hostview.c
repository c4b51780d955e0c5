/* Gathers the host-wide figures behind each decision: the VM table's allocation and the grants
 * still in flight, libvirt's node figures, and the headroom (headroom.c) that follows from them
 * and the [host] config. */
#include "hostview.h"

#include "actuate.h"
#include "headroom.h"
#include "hostd.h"
#include "virt.h"
#include "vm.h"

#define NODE_REFRESH_MS 5000

/* O(VMs), so not per sample: with 10,000 VMs a walk per decision was most of hostd's CPU. */
void hostview_refresh(struct hostd *h, uint64_t now_ms)
{
	struct totals t = {0};

	for (size_t i = 0; i < h->nvms; i++) {
		const struct vm *vm = h->vms[i];
		uint64_t v, m;

		t.vcpus += vm->dom.vcpus_cur;
		t.mem_kib += vm_mem_kib(vm);
		if (vm->op.kind == OP_NONE)
			continue;
		actuate_in_flight(vm, &v, &m);
		t.vcpus_in_flight += v;
		t.mem_in_flight_kib += m;
	}
	h->alloc = t;
	if (h->virt_up && (h->node_ms == 0 || now_ms - h->node_ms >= NODE_REFRESH_MS)) {
		if (virt_node(h->virt, &h->node) == 0)
			h->node_ms = now_ms;
	}
}

void hostview_get(const struct hostd *h, struct host_view *ret)
{
	const struct host_conf *hc = &h->conf->host;
	struct headroom_input in = {
	        .host_cpus = h->node.cpus,
	        .host_mem_total_kib = hc->mem_total_kib ? hc->mem_total_kib : h->node.mem_total_kib,
	        .host_mem_free_kib = h->node.mem_free_kib,
	        .reserve_cpus = hc->reserve_cpus,
	        .reserve_mem_kib = hc->reserve_mem_kib,
	        .cpu_overcommit = hc->cpu_overcommit,
	        .vcpus_allocated = h->alloc.vcpus,
	        .mem_allocated_kib = h->alloc.mem_kib,
	        .vcpus_in_flight = h->alloc.vcpus_in_flight,
	        .mem_in_flight_kib = h->alloc.mem_in_flight_kib,
	        .capacity_model = hc->mem_total_kib != 0,
	};

	headroom_compute(&in, ret);
}
