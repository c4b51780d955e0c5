/* The plan behind `vscalectl enable`: reads a domain's parsed XML, checks that it can be made
 * scalable and decides the counts and sizes the edits write (max vCPUs, sockets, the boot
 * memory, the virtio-mem size, the new <memory>) before anything is touched. Reads the tree only;
 * libxml2 (through xmledit) and domvalue, no I/O, no globals. domxml.c applies the plan.
 *
 * A plan owns nothing: its nodes point into the document it was made from, which must outlive
 * it. Memory accounting follows libvirt (see domxml.h). */
#ifndef VSCALE_DOMPLAN_H
#define VSCALE_DOMPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domxml.h"
#include "xmledit.h"

struct domplan {
	/* the domain's elements, NULL when absent (root, features, devices, vcpu and memory
	 * never are); the edits fill in the ones they add */
	xmlNodePtr root, features, devices, vcpu, vcpus, cpu, topology, numa, last_cell;
	xmlNodePtr memory, cur_mem, max_mem, vmem; /* vmem: its first virtio-mem device */
	uint32_t cur_vcpus, old_max_vcpus, max_vcpus;
	uint32_t old_sockets, sockets; /* <topology> sockets, 0 when there is none */
	int ncells;
	bool covered[DOMXML_MAX_VCPUS]; /* vCPUs in some NUMA cell */
	uint64_t mem_kib;               /* <memory> as given */
	uint64_t cur_mem_kib;           /* <currentMemory>, 0 when none or unreadable */
	uint64_t boot_kib;              /* the NUMA cells, or <memory> less the memory devices */
	uint64_t devs_kib;              /* the memory devices already there */
	uint64_t vmem_kib;              /* the virtio-mem device to add; 0 when there is one */
	uint64_t total_kib;             /* the new <memory>: boot + devices + vmem */
	uint64_t max_mem_kib;           /* <maxMemory>, 0 when none */
};

/* Checks the domain in doc and plans its edits for o (not NULL). 0 with the plan in *ret_plan;
 * -EINVAL with a one-line reason in err (e.g. "domain has no <memory>", "max-vcpus 1 is below
 * the current 2"). *ret_plan is written only on success. */
int domplan_make(xmlDocPtr doc, const struct domxml_enable_opts *o, struct domplan *ret_plan,
                 char *err, size_t errlen);

#endif
