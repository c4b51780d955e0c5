/* The `vscalectl enable` transform (contract in domxml.h): domplan checks the domain and plans
 * every change before anything is touched; here the plan is applied to the tree in place (vcpu,
 * vcpus, topology, numa, maxMemory, memory, devices), one summary line per change, and xmledit
 * writes the tree back in libvirt's format. */
#include "domxml.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domplan.h"
#include "domvalue.h"
#include "xmledit.h"

#define CHANNEL_NAME "org.vscale.agent.0"

struct edit {
	struct xmledit x;
	struct domplan p; /* what the domain has and gets; its nodes are in x's tree */
	FILE *changes;    /* one line per change, into changes_buf */
	char *changes_buf;
	size_t changes_len;
};

/* Rewrites a size element, in its own unit when the value is whole in it, else in KiB. */
static void set_size(struct edit *e, xmlNodePtr n, uint64_t kib)
{
	char unit[16];
	uint64_t per = 1;

	if (xmledit_attr(n, "unit", unit, sizeof(unit))) {
		per = domvalue_unit_bytes(unit) / 1024;
		if (per == 0 || domvalue_unit_bytes(unit) % 1024 || kib % per) {
			per = 1;
			xmledit_set_attr(&e->x, n, "unit", "KiB");
		}
	}
	xmledit_set_text_u64(&e->x, n, kib / per);
}

/* libvirt's order of devices in <devices>; unknown ones rank first */
static int dev_rank(const xmlChar *name)
{
	static const char *const order[] = {
	        "emulator",  "disk",        "controller", "lease",    "filesystem", "interface",
	        "smartcard", "serial",      "parallel",   "console",  "channel",    "input",
	        "tpm",       "graphics",    "sound",      "audio",    "video",      "hostdev",
	        "redirdev",  "redirfilter", "hub",        "watchdog", "memballoon", "rng",
	        "panic",     "shmem",       "memory",     "iommu",    "vsock",      "crypto",
	};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (xmlStrcmp(name, (const xmlChar *)order[i]) == 0)
			return (int)i;
	return -1;
}

/* Puts device n where libvirt would write it: after the last device of its kind or before. */
static void put_device(struct edit *e, xmlNodePtr n)
{
	xmlNodePtr after = NULL, first = NULL;
	int rank;

	if (!n)
		return;
	rank = dev_rank(n->name);
	for (xmlNodePtr c = xmledit_child(e->p.devices, NULL); c; c = xmledit_next(c, NULL)) {
		first = first ? first : c;
		if (dev_rank(c->name) <= rank)
			after = c;
	}
	if (after)
		xmledit_put_after(&e->x, after, n);
	else if (first)
		xmledit_put_before(&e->x, first, n);
	else
		xmledit_append(&e->x, e->p.devices, n);
}

/* ---- edits ------------------------------------------------------------------------------ */

/* A <vcpus> list libvirt accepts for max N with C enabled: vcpu 0 enabled and not
 * hotpluggable, every disabled one hotpluggable, order on all enabled ones or none. */
static bool vcpus_valid(struct edit *e)
{
	uint32_t i = 0, enabled = 0, ordered = 0;
	char id[16], want[16];

	for (xmlNodePtr v = xmledit_child(e->p.vcpus, "vcpu"); v;
	     v = xmledit_next(v, "vcpu"), i++) {
		bool en = xmledit_attr_is(v, "enabled", "yes"),
		     hp = xmledit_attr_is(v, "hotpluggable", "yes");

		snprintf(want, sizeof(want), "%u", i);
		if (!xmledit_attr(v, "id", id, sizeof(id)) || strcmp(id, want) != 0)
			return false;
		if ((i == 0 && (!en || hp)) || (!en && !hp))
			return false;
		enabled += en;
		ordered += en && xmledit_attr(v, "order", id, sizeof(id));
	}
	return i == e->p.max_vcpus && enabled == e->p.cur_vcpus &&
	       (ordered == 0 || ordered == enabled);
}

/* vcpu 0 boots fixed; the other enabled ones are hotpluggable so they can be unplugged again
 * where the hypervisor allows (libvirt plugs them before the guest runs); the rest wait. */
static void write_vcpus(struct edit *e)
{
	if (!e->p.vcpus) {
		e->p.vcpus = xmledit_new(&e->x, "vcpus");
		xmledit_put_after(&e->x, e->p.vcpu, e->p.vcpus);
	}
	xmledit_clear(e->p.vcpus);
	for (uint32_t i = 0; i < e->p.max_vcpus && e->p.vcpus; i++) {
		xmlNodePtr v = xmledit_add_child(&e->x, e->p.vcpus, "vcpu");
		bool en = i < e->p.cur_vcpus;

		xmledit_set_attr_u64(&e->x, v, "id", i);
		xmledit_set_attr(&e->x, v, "enabled", en ? "yes" : "no");
		xmledit_set_attr(&e->x, v, "hotpluggable", i > 0 ? "yes" : "no");
		if (en)
			xmledit_set_attr_u64(&e->x, v, "order", i + 1);
	}
}

static void edit_vcpus(struct edit *e)
{
	bool changed = false;

	if (e->p.max_vcpus != e->p.old_max_vcpus) {
		xmledit_set_text_u64(&e->x, e->p.vcpu, e->p.max_vcpus);
		if (!xmlHasProp(e->p.vcpu, (const xmlChar *)"current"))
			xmledit_set_attr_u64(&e->x, e->p.vcpu, "current", e->p.cur_vcpus);
		changed = true;
	}
	if (!vcpus_valid(e)) {
		write_vcpus(e);
		changed = true;
	}
	if (changed)
		fprintf(e->changes, "vcpus: %u -> max %u, current %u, hotpluggable%s\n",
		        e->p.old_max_vcpus, e->p.max_vcpus, e->p.cur_vcpus,
		        e->p.max_vcpus == e->p.cur_vcpus ? " (no room to add one: give --max-vcpus)"
		                                         : "");
	if (e->p.topology && e->p.sockets != e->p.old_sockets) {
		xmledit_set_attr_u64(&e->x, e->p.topology, "sockets", e->p.sockets);
		fprintf(e->changes, "cpu topology: sockets %u -> %u\n", e->p.old_sockets,
		        e->p.sockets);
	}
}

static void edit_numa(struct edit *e)
{
	bool set[DOMXML_MAX_VCPUS] = {false}, added = false;
	char cpus[1024], idx[16] = "?";

	if (!e->p.cpu) {
		e->p.cpu = xmledit_new(&e->x, "cpu");
		xmledit_put_after(&e->x, e->p.features, e->p.cpu);
	}
	if (!e->p.numa)
		e->p.numa = xmledit_add_child(&e->x, e->p.cpu, "numa");
	if (e->p.ncells == 0) {
		xmlNodePtr c = xmledit_add_child(&e->x, e->p.numa, "cell");

		for (uint32_t i = 0; i < e->p.max_vcpus; i++)
			set[i] = true;
		domvalue_format_cpus(set, e->p.max_vcpus, cpus, sizeof(cpus));
		xmledit_set_attr(&e->x, c, "id", "0");
		xmledit_set_attr(&e->x, c, "cpus", cpus);
		xmledit_set_attr_u64(&e->x, c, "memory", e->p.boot_kib);
		xmledit_set_attr(&e->x, c, "unit", "KiB");
		fprintf(e->changes, "numa: cell 0 added (vCPUs %s, %s): virtio-mem needs one\n",
		        cpus, domvalue_human(e->p.boot_kib).s);
		return;
	}
	/* vCPUs in no cell go to the last one */
	if (xmledit_attr(e->p.last_cell, "cpus", cpus, sizeof(cpus)))
		domvalue_parse_cpus(cpus, set, e->p.max_vcpus);
	for (uint32_t i = 0; i < e->p.max_vcpus; i++) {
		added |= !e->p.covered[i];
		set[i] |= !e->p.covered[i];
	}
	if (!added)
		return;
	domvalue_format_cpus(set, e->p.max_vcpus, cpus, sizeof(cpus));
	xmledit_set_attr(&e->x, e->p.last_cell, "cpus", cpus);
	xmledit_attr(e->p.last_cell, "id", idx, sizeof(idx));
	fprintf(e->changes, "numa: cell %s now holds vCPUs %s\n", idx, cpus);
}

static void edit_memory(struct edit *e)
{
	if (!e->p.max_mem) {
		e->p.max_mem = xmledit_new(&e->x, "maxMemory");
		xmledit_set_attr_u64(&e->x, e->p.max_mem, "slots", DOMXML_SLOTS);
		xmledit_set_attr(&e->x, e->p.max_mem, "unit", "KiB");
		xmledit_set_text_u64(&e->x, e->p.max_mem, e->p.total_kib);
		xmledit_put_before(&e->x, e->p.memory, e->p.max_mem);
		fprintf(e->changes, "maxMemory: %s, %u slots (added)\n",
		        domvalue_human(e->p.total_kib).s, DOMXML_SLOTS);
	} else if (!xmlHasProp(e->p.max_mem, (const xmlChar *)"slots") ||
	           xmledit_attr_is(e->p.max_mem, "slots", "0")) {
		xmledit_set_attr_u64(&e->x, e->p.max_mem, "slots", DOMXML_SLOTS);
		fprintf(e->changes, "maxMemory: %u slots\n", DOMXML_SLOTS);
	}
	if (e->p.mem_kib != e->p.total_kib) {
		set_size(e, e->p.memory, e->p.total_kib);
		fprintf(e->changes,
		        "memory: %s -> %s (libvirt counts memory devices in <memory>; the boot "
		        "memory stays %s)\n",
		        domvalue_human(e->p.mem_kib).s, domvalue_human(e->p.total_kib).s,
		        domvalue_human(e->p.boot_kib).s);
	}
	if (e->p.cur_mem && e->p.cur_mem_kib > e->p.total_kib) {
		set_size(e, e->p.cur_mem, e->p.total_kib);
		fprintf(e->changes, "currentMemory: %s -> %s\n", domvalue_human(e->p.cur_mem_kib).s,
		        domvalue_human(e->p.total_kib).s);
	}
}

static void add_size(struct edit *e, xmlNodePtr parent, const char *name, uint64_t kib)
{
	xmlNodePtr n = xmledit_add_child(&e->x, parent, name);

	xmledit_set_attr(&e->x, n, "unit", "KiB");
	xmledit_set_text_u64(&e->x, n, kib);
}

static void edit_vmem(struct edit *e)
{
	xmlNodePtr m, t;
	char cells[48] = "";

	if (!e->p.vmem_kib)
		return;
	m = xmledit_new(&e->x, "memory");
	xmledit_set_attr(&e->x, m, "model", "virtio-mem");
	put_device(e, m);
	t = xmledit_add_child(&e->x, m, "target");
	add_size(e, t, "size", e->p.vmem_kib);
	xmledit_set_text(&e->x, xmledit_add_child(&e->x, t, "node"), "0");
	add_size(e, t, "block", DOMXML_BLOCK_KIB);
	add_size(e, t, "requested", 0);
	if (e->p.ncells > 1)
		snprintf(cells, sizeof(cells), " (of %d cells)", e->p.ncells);
	fprintf(e->changes,
	        "virtio-mem: %s on NUMA node 0%s, %s blocks, none plugged at boot: memory "
	        "%s boot, up to %s\n",
	        domvalue_human(e->p.vmem_kib).s, cells, domvalue_human(DOMXML_BLOCK_KIB).s,
	        domvalue_human(e->p.boot_kib).s, domvalue_human(e->p.total_kib).s);
}

static void edit_channel(struct edit *e)
{
	xmlNodePtr ch, t;

	for (ch = xmledit_child(e->p.devices, "channel"); ch; ch = xmledit_next(ch, "channel")) {
		t = xmledit_child(ch, "target");
		if (xmledit_attr_is(t, "type", "virtio") &&
		    xmledit_attr_is(t, "name", CHANNEL_NAME))
			return;
	}
	/* no path: libvirt picks one per domain (a fixed one breaks migration on one host) */
	ch = xmledit_new(&e->x, "channel");
	xmledit_set_attr(&e->x, ch, "type", "unix");
	put_device(e, ch);
	xmledit_set_attr(&e->x, xmledit_add_child(&e->x, ch, "source"), "mode", "bind");
	t = xmledit_add_child(&e->x, ch, "target");
	xmledit_set_attr(&e->x, t, "type", "virtio");
	xmledit_set_attr(&e->x, t, "name", CHANNEL_NAME);
	fprintf(e->changes, "channel: %s added (unix socket, path chosen by libvirt)\n",
	        CHANNEL_NAME);
}

/* ---- the transform ---------------------------------------------------------------------- */

static void edit(struct edit *e)
{
	edit_vcpus(e);
	edit_numa(e);
	edit_memory(e);
	edit_vmem(e);
	edit_channel(e);
}

/* The changes written, or what makes the domain scalable already when there are none. */
static int summary(struct edit *e, char **ret_changes)
{
	bool none = ftell(e->changes) == 0;
	bool bad;

	if (none)
		fprintf(e->changes,
		        "already scalable: vcpus %u, max %u; memory %s boot, up to %s with "
		        "virtio-mem; channel %s\n",
		        e->p.cur_vcpus, e->p.max_vcpus, domvalue_human(e->p.boot_kib).s,
		        domvalue_human(e->p.total_kib).s, CHANNEL_NAME);
	bad = ferror(e->changes);
	if (fclose(e->changes) != 0 || bad) {
		e->changes = NULL;
		return -ENOMEM;
	}
	e->changes = NULL;
	*ret_changes = e->changes_buf;
	e->changes_buf = NULL;
	return none;
}

/* Parses xml into e and plans its edits: 0, -EINVAL with the reason in err, -ENOMEM. */
static int read_domain(struct edit *e, const char *xml, const struct domxml_enable_opts *o,
                       char *err, size_t errlen)
{
	char msg[256];
	int r = xmledit_parse(&e->x, xml, msg, sizeof(msg));

	if (r == -EINVAL) {
		if (errlen > 0)
			snprintf(err, errlen, "cannot parse the domain XML: %s", msg);
		return r;
	}
	if (r < 0)
		return r;
	return domplan_make(e->x.doc, o, &e->p, err, errlen);
}

int domxml_enable(const char *xml, const struct domxml_enable_opts *o, char **ret_xml,
                  char **ret_changes, char *err, size_t errlen)
{
	static const struct domxml_enable_opts defaults;
	struct edit *e = calloc(1, sizeof(*e));
	char *out = NULL, *changes = NULL;
	int r;

	if (!e)
		return -ENOMEM;
	e->changes = open_memstream(&e->changes_buf, &e->changes_len);
	r = e->changes ? read_domain(e, xml, o ? o : &defaults, err, errlen) : -ENOMEM;
	if (r < 0)
		goto out;
	edit(e);
	r = e->x.oom ? -ENOMEM : summary(e, &changes);
	if (r < 0)
		goto out;
	/* nothing changed: the input itself, not a rewrite of it */
	if (r == 1)
		out = strdup(xml);
	else if (xmledit_write(&e->x, xml, &out) < 0)
		out = NULL;
	r = out ? 0 : -ENOMEM;
	if (r < 0)
		goto out;
	*ret_xml = out;
	*ret_changes = changes;
	changes = NULL;
out:
	free(changes);
	if (e->changes)
		fclose(e->changes);
	free(e->changes_buf);
	xmledit_fini(&e->x);
	free(e);
	return r;
}
