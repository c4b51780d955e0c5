/* The XML transform behind `vscalectl enable`: makes a defined domain scalable by editing its
 * persistent XML (hotpluggable vCPUs, maxMemory, a NUMA cell, a virtio-mem device, the vscale
 * channel). Pure: libxml2 only, no libvirt, no I/O, no globals of ours.
 *
 * The result is written in libvirt's own format (single-quoted attributes, libvirt's escaping of
 * text and attributes, <metadata> children as libxml2 dumps them), so the inactive XML of
 * virDomainGetXMLDesc() comes back byte-identical outside the edits and a unified diff of old
 * and new shows only them. Inserted elements are indented like their siblings.
 *
 * Memory accounting follows libvirt: <memory> is the total including memory devices (libvirt
 * rewrites it so on define, and test:///default refuses a <memory> below the devices); the
 * boot memory is the sum of the NUMA cells and stays as it was. The changes take effect at the
 * domain's next boot. */
#ifndef VSCALE_DOMXML_H
#define VSCALE_DOMXML_H

#include <stddef.h>
#include <stdint.h>

#define DOMXML_BLOCK_KIB       2048u /* virtio-mem block size */
#define DOMXML_SLOTS           16u   /* <maxMemory slots=...> when added */
#define DOMXML_MAX_VCPUS       4096u /* refused above */
#define DOMXML_DEFAULT_GROWTH  3u    /* default max memory: boot x (1 + this) */
#define DOMXML_DEFAULT_CAP_KIB ((uint64_t)64 * 1024 * 1024) /* ... adding at most 64 GiB */

struct domxml_enable_opts {
	uint32_t max_vcpus; /* 0: keep the domain's max (never below its current vCPUs) */
	/* what the guest can reach: boot memory + memory devices + the new virtio-mem device.
	 * 0: 4x the boot memory, adding at most DOMXML_DEFAULT_CAP_KIB, and within an existing
	 * <maxMemory>. When given, the virtio-mem part must be a multiple of DOMXML_BLOCK_KIB. */
	uint64_t max_mem_kib;
};

/* Makes the domain XML `xml` scalable. Returns 0 with a new NUL-terminated XML in *ret_xml and
 * a summary in *ret_changes, one line per change ending in '\n' (e.g. "vcpus: 2 -> max 8,
 * current 2, hotpluggable"); the caller frees both with free(). When nothing needs changing,
 * *ret_xml is a byte-identical copy of xml and *ret_changes starts with "already scalable".
 * Returns -EINVAL with a one-line reason in err (e.g. "domain has no <memory>", "max-vcpus 1
 * is below the current 2"), -ENOMEM on allocation failure; ret_* are written only on success.
 * o may be NULL (all defaults). Idempotent: applied to its own output it changes nothing. */
int domxml_enable(const char *xml, const struct domxml_enable_opts *o, char **ret_xml,
                  char **ret_changes, char *err, size_t errlen);

#endif
