/* The `vscalectl enable` transform (contract in domxml.h): checks a domain and plans every
 * change before touching anything, then edits the tree in place (vcpu, vcpus, topology, numa,
 * maxMemory, memory, devices) through xmledit, which writes it back in libvirt's format. */
#include "domxml.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmledit.h"

#define CHANNEL_NAME   "org.vscale.agent.0"
#define GIB_KIB        ((uint64_t)1024 * 1024)
#define SIZE_LIMIT_KIB ((uint64_t)1 << 50) /* an exbibyte: keeps every sum below overflow */

struct edit {
	struct xmledit x;
	xmlNodePtr root, features, devices, vcpu, vcpus, cpu, topology, numa, last_cell;
	xmlNodePtr memory, cur_mem, max_mem, vmem;
	uint32_t cur_vcpus, old_max_vcpus, max_vcpus;
	uint32_t old_sockets, sockets; /* <topology> sockets, 0 when there is none */
	int ncells;
	bool covered[DOMXML_MAX_VCPUS]; /* vCPUs in some NUMA cell */
	uint64_t mem_kib;               /* <memory> as given */
	uint64_t boot_kib;              /* the NUMA cells, or <memory> less the memory devices */
	uint64_t devs_kib;              /* the memory devices already there */
	uint64_t vmem_kib;              /* the virtio-mem device to add; 0 when there is one */
	uint64_t total_kib;             /* the new <memory>: boot + devices + vmem */
	uint64_t max_mem_kib;           /* <maxMemory>, 0 when none */
	FILE *changes;                  /* one line per change, into changes_buf */
	char *changes_buf;
	size_t changes_len;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct edit *e, const char *fmt, ...)
{
	va_list ap;

	if (e->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(e->err, e->errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A size for people: whole GiB or MiB when it is one, else KiB. */
struct human {
	char s[32];
};

static struct human human(uint64_t kib)
{
	struct human h;

	if (kib > 0 && kib % GIB_KIB == 0)
		snprintf(h.s, sizeof(h.s), "%" PRIu64 " GiB", kib / GIB_KIB);
	else if (kib > 0 && kib % 1024 == 0)
		snprintf(h.s, sizeof(h.s), "%" PRIu64 " MiB", kib / 1024);
	else
		snprintf(h.s, sizeof(h.s), "%" PRIu64 " KiB", kib);
	return h;
}

static bool parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*ret = v;
	return true;
}

/* Bytes per unit as libvirt's virScaleInteger reads them (case-insensitive: b, bytes, KB = 1000,
 * k = KiB = 1024, ... up to E); KiB when absent; 0 when unknown. */
static uint64_t unit_bytes(const char *u)
{
	static const char scales[] = "kmgtpe";
	const char *p;
	uint64_t base, v = 1;

	if (!u || !*u)
		return 1024;
	if (!strcasecmp(u, "b") || !strcasecmp(u, "bytes"))
		return 1;
	p = strchr(scales, u[0] | 0x20);
	if (!p)
		return 0;
	if (!u[1] || !strcasecmp(u + 1, "ib"))
		base = 1024;
	else if (!strcasecmp(u + 1, "b"))
		base = 1000;
	else
		return 0;
	for (long i = 0; i <= p - scales; i++)
		v *= base;
	return v;
}

/* value + unit -> KiB, rounded up as libvirt does */
static int size_kib(struct edit *e, const char *val, const char *unit, const char *what,
                    uint64_t *ret)
{
	uint64_t v, scale = unit_bytes(unit);

	if (!scale)
		return fail(e, "%s: unknown unit '%s'", what, unit);
	if (!parse_u64(val, &v))
		return fail(e, "%s: '%s' is not a size", what, val);
	if (v > SIZE_LIMIT_KIB * 1024 / scale)
		return fail(e, "%s: %s %s is too large", what, val, unit ? unit : "KiB");
	*ret = (v * scale + 1023) / 1024;
	return 0;
}

static int elem_kib(struct edit *e, xmlNodePtr n, const char *what, uint64_t *ret)
{
	char val[64], unit[16];
	bool has_unit = xmledit_attr(n, "unit", unit, sizeof(unit));

	xmledit_text(n, val, sizeof(val));
	return size_kib(e, val, has_unit ? unit : NULL, what, ret);
}

/* Rewrites a size element, in its own unit when the value is whole in it, else in KiB. */
static void set_size(struct edit *e, xmlNodePtr n, uint64_t kib)
{
	char unit[16];
	uint64_t per = 1;

	if (xmledit_attr(n, "unit", unit, sizeof(unit))) {
		per = unit_bytes(unit) / 1024;
		if (per == 0 || unit_bytes(unit) % 1024 || kib % per) {
			per = 1;
			xmledit_set_attr(&e->x, n, "unit", "KiB");
		}
	}
	xmledit_set_text_u64(&e->x, n, kib / per);
}

/* Parses a libvirt cpu list ("0-3,6,^2") into set[0..limit): -1 when malformed or out of
 * range, else 0. */
static int parse_cpus(const char *s, bool *set, unsigned limit)
{
	while (*s) {
		bool neg = *s == '^';
		unsigned long a, b;
		char *end;

		s += neg;
		if (*s < '0' || *s > '9')
			return -1;
		a = b = strtoul(s, &end, 10);
		if (*end == '-' && !neg) {
			if (end[1] < '0' || end[1] > '9')
				return -1;
			b = strtoul(end + 1, &end, 10);
		}
		if (a > b || b >= limit || (*end && *end != ','))
			return -1;
		for (unsigned long i = a; i <= b; i++)
			set[i] = !neg;
		s = *end ? end + 1 : end;
	}
	return 0;
}

static void format_cpus(const bool *set, unsigned n, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < n; i++) {
		unsigned j = i;

		if (!set[i])
			continue;
		while (j + 1 < n && set[j + 1])
			j++;
		if (j == i)
			len += snprintf(buf + len, len < cap ? cap - len : 0, "%s%u",
			                len ? "," : "", i);
		else
			len += snprintf(buf + len, len < cap ? cap - len : 0, "%s%u-%u",
			                len ? "," : "", i, j);
		i = j;
	}
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
	for (xmlNodePtr c = xmledit_child(e->devices, NULL); c; c = xmledit_next(c, NULL)) {
		first = first ? first : c;
		if (dev_rank(c->name) <= rank)
			after = c;
	}
	if (after)
		xmledit_put_after(&e->x, after, n);
	else if (first)
		xmledit_put_before(&e->x, first, n);
	else
		xmledit_append(&e->x, e->devices, n);
}

/* ---- checks and plan: nothing is edited here --------------------------------------------- */

static int find_parts(struct edit *e)
{
	char buf[64];
	xmlNodePtr os_type;

	e->root = xmlDocGetRootElement(e->x.doc);
	if (!e->root || e->root->ns || xmlStrcmp(e->root->name, (const xmlChar *)"domain") != 0)
		return fail(e, "the root element is <%s>, not <domain>",
		            e->root ? (const char *)e->root->name : "");
	if (!xmledit_attr(e->root, "type", buf, sizeof(buf)))
		return fail(e, "domain has no type");
	if (strcmp(buf, "kvm") != 0 && strcmp(buf, "qemu") != 0)
		return fail(e, "domain type '%s' is not kvm or qemu", buf);
	os_type = xmledit_child(xmledit_child(e->root, "os"), "type");
	if (!os_type || !xmledit_attr(os_type, "arch", buf, sizeof(buf)))
		return fail(e, "domain has no <os><type arch=...>");
	if (strcmp(buf, "x86_64") != 0)
		return fail(e,
		            "arch '%s' is not x86_64 (the only one set up for vCPU and virtio-mem "
		            "hotplug)",
		            buf);
	xmledit_text(os_type, buf, sizeof(buf));
	if (strcmp(buf, "hvm") != 0)
		return fail(e, "os type '%s' is not hvm", buf);
	e->features = xmledit_child(e->root, "features");
	if (!xmledit_child(e->features, "acpi"))
		return fail(e, "domain has no <features><acpi/>: vCPU hotplug needs ACPI");
	e->devices = xmledit_child(e->root, "devices");
	e->vcpu = xmledit_child(e->root, "vcpu");
	e->memory = xmledit_child(e->root, "memory");
	if (!e->devices)
		return fail(e, "domain has no <devices>");
	if (!e->vcpu)
		return fail(e, "domain has no <vcpu>");
	if (!e->memory)
		return fail(e, "domain has no <memory>");
	e->vcpus = xmledit_child(e->root, "vcpus");
	e->cur_mem = xmledit_child(e->root, "currentMemory");
	e->max_mem = xmledit_child(e->root, "maxMemory");
	e->cpu = xmledit_child(e->root, "cpu");
	e->topology = xmledit_child(e->cpu, "topology");
	e->numa = xmledit_child(e->cpu, "numa");
	return 0;
}

static int plan_topology(struct edit *e)
{
	static const char *const names[] = {"dies", "clusters", "cores", "threads"};
	char buf[32];
	uint64_t per_socket = 1, v;

	if (!e->topology)
		return 0;
	if (!xmledit_attr(e->topology, "sockets", buf, sizeof(buf)) || !parse_u64(buf, &v) ||
	    v == 0 || v > DOMXML_MAX_VCPUS)
		return fail(e, "<topology> has no valid sockets");
	e->old_sockets = (uint32_t)v;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!xmledit_attr(e->topology, names[i], buf, sizeof(buf)))
			continue;
		if (!parse_u64(buf, &v) || v == 0 || v > DOMXML_MAX_VCPUS)
			return fail(e, "<topology> %s '%s' is not a count", names[i], buf);
		per_socket *= v;
	}
	if (per_socket > DOMXML_MAX_VCPUS || e->max_vcpus % per_socket)
		return fail(e,
		            "max-vcpus %u is not a whole number of sockets of %" PRIu64
		            " vCPUs (<topology>)",
		            e->max_vcpus, per_socket);
	e->sockets = e->max_vcpus / (uint32_t)per_socket;
	return 0;
}

static int plan_vcpus(struct edit *e, const struct domxml_enable_opts *o)
{
	char buf[32];
	uint64_t v;

	xmledit_text(e->vcpu, buf, sizeof(buf));
	if (!parse_u64(buf, &v) || v == 0 || v > DOMXML_MAX_VCPUS)
		return fail(e, "<vcpu> '%s' is not a vCPU count of 1 to %u", buf, DOMXML_MAX_VCPUS);
	e->old_max_vcpus = e->cur_vcpus = (uint32_t)v;
	if (xmledit_attr(e->vcpu, "current", buf, sizeof(buf))) {
		if (!parse_u64(buf, &v) || v == 0 || v > e->old_max_vcpus)
			return fail(e, "<vcpu current='%s'> is not between 1 and %u", buf,
			            e->old_max_vcpus);
		e->cur_vcpus = (uint32_t)v;
	}
	e->max_vcpus = o->max_vcpus ? o->max_vcpus : e->old_max_vcpus;
	if (e->max_vcpus < e->cur_vcpus)
		return fail(e, "max-vcpus %u is below the current %u", e->max_vcpus, e->cur_vcpus);
	if (e->max_vcpus < e->old_max_vcpus)
		return fail(e, "max-vcpus %u is below the domain's maximum %u", e->max_vcpus,
		            e->old_max_vcpus);
	if (e->max_vcpus > DOMXML_MAX_VCPUS)
		return fail(e, "max-vcpus %u is above %u", e->max_vcpus, DOMXML_MAX_VCPUS);
	return plan_topology(e);
}

/* Reads the NUMA cells: which vCPUs they hold and their memory (the boot memory). */
static int plan_numa(struct edit *e, uint64_t *ret_cells_kib)
{
	uint64_t sum = 0;

	for (xmlNodePtr c = xmledit_child(e->numa, "cell"); c; c = xmledit_next(c, "cell")) {
		char cpus[1024], mem[64], unit[16];
		uint64_t kib;
		int r;

		if (xmledit_attr(c, "cpus", cpus, sizeof(cpus)) &&
		    parse_cpus(cpus, e->covered, e->max_vcpus) < 0)
			return fail(e, "NUMA cell %d: cpus '%s' is not a list of vCPUs below %u",
			            e->ncells, cpus, e->max_vcpus);
		if (!xmledit_attr(c, "memory", mem, sizeof(mem)))
			return fail(e, "NUMA cell %d has no memory", e->ncells);
		r = size_kib(e, mem, xmledit_attr(c, "unit", unit, sizeof(unit)) ? unit : NULL,
		             "NUMA cell memory", &kib);
		if (r < 0)
			return r;
		sum += kib;
		e->ncells++;
		e->last_cell = c;
	}
	*ret_cells_kib = sum;
	return 0;
}

/* The memory devices already there: libvirt counts them in <memory>. */
static int plan_devices(struct edit *e)
{
	for (xmlNodePtr m = xmledit_child(e->devices, "memory"); m; m = xmledit_next(m, "memory")) {
		xmlNodePtr size = xmledit_child(xmledit_child(m, "target"), "size");
		char model[32] = "";
		uint64_t kib;
		int r;

		xmledit_attr(m, "model", model, sizeof(model));
		if (!size)
			return fail(e, "memory device '%s' has no <target><size>", model);
		r = elem_kib(e, size, "memory device size", &kib);
		if (r < 0)
			return r;
		e->devs_kib += kib;
		if (!e->vmem && strcmp(model, "virtio-mem") == 0)
			e->vmem = m;
	}
	return 0;
}

/* The virtio-mem size to add: the request, or the default within an existing <maxMemory>. */
static int plan_vmem_size(struct edit *e, const struct domxml_enable_opts *o)
{
	uint64_t base = e->boot_kib + e->devs_kib, want, room;

	if (o->max_mem_kib) {
		want = o->max_mem_kib;
		if (want > SIZE_LIMIT_KIB)
			return fail(e, "max-memory %s is too large", human(want).s);
		if (want <= base)
			return fail(e, "max-memory %s is not above the boot memory %s%s",
			            human(want).s, human(base).s,
			            e->devs_kib ? " (memory devices included)" : "");
		if ((want - base) % DOMXML_BLOCK_KIB)
			return fail(e,
			            "max-memory %s: the virtio-mem part %s is not a multiple of "
			            "the %s block",
			            human(want).s, human(want - base).s, human(DOMXML_BLOCK_KIB).s);
		if (e->max_mem_kib && e->max_mem_kib < want)
			return fail(e, "maxMemory %s is below the requested %s",
			            human(e->max_mem_kib).s, human(want).s);
	} else {
		room = e->boot_kib * DOMXML_DEFAULT_GROWTH;
		want = base + (room < DOMXML_DEFAULT_CAP_KIB ? room : DOMXML_DEFAULT_CAP_KIB);
		if (e->max_mem_kib && e->max_mem_kib < want)
			want = e->max_mem_kib;
		want = want > base ? base + (want - base) / DOMXML_BLOCK_KIB * DOMXML_BLOCK_KIB
		                   : base;
		if (want == base)
			return fail(e, "maxMemory %s leaves no room for virtio-mem above %s",
			            human(e->max_mem_kib).s, human(base).s);
	}
	e->vmem_kib = want - base;
	e->total_kib = want;
	return 0;
}

static int plan_memory(struct edit *e, const struct domxml_enable_opts *o)
{
	uint64_t cells_kib = 0;
	int r;

	r = elem_kib(e, e->memory, "<memory>", &e->mem_kib);
	if (r == 0 && e->max_mem)
		r = elem_kib(e, e->max_mem, "<maxMemory>", &e->max_mem_kib);
	if (r == 0)
		r = plan_numa(e, &cells_kib);
	if (r == 0)
		r = plan_devices(e);
	if (r < 0)
		return r;
	if (e->ncells > 0) {
		e->boot_kib = cells_kib;
	} else {
		if (e->mem_kib <= e->devs_kib)
			return fail(e, "<memory> %s is not above its memory devices (%s)",
			            human(e->mem_kib).s, human(e->devs_kib).s);
		e->boot_kib = e->mem_kib - e->devs_kib;
	}
	if (!e->vmem)
		return plan_vmem_size(e, o);
	e->total_kib = e->boot_kib + e->devs_kib;
	if (o->max_mem_kib && o->max_mem_kib != e->total_kib)
		return fail(e, "domain already has a virtio-mem device: max memory is %s, not %s",
		            human(e->total_kib).s, human(o->max_mem_kib).s);
	if (e->max_mem_kib && e->max_mem_kib < e->total_kib)
		return fail(e, "maxMemory %s is below the memory %s", human(e->max_mem_kib).s,
		            human(e->total_kib).s);
	return 0;
}

/* A guest over its hard limit is killed: refuse a limit below what it could reach. */
static int check_memtune(struct edit *e)
{
	xmlNodePtr hard = xmledit_child(xmledit_child(e->root, "memtune"), "hard_limit");
	uint64_t kib;
	int r;

	if (!hard)
		return 0;
	r = elem_kib(e, hard, "<memtune><hard_limit>", &kib);
	if (r == 0 && kib < e->total_kib)
		return fail(e, "memtune hard_limit %s is below the max memory %s", human(kib).s,
		            human(e->total_kib).s);
	return r;
}

/* ---- edits ------------------------------------------------------------------------------ */

/* A <vcpus> list libvirt accepts for max N with C enabled: vcpu 0 enabled and not
 * hotpluggable, every disabled one hotpluggable, order on all enabled ones or none. */
static bool vcpus_valid(struct edit *e)
{
	uint32_t i = 0, enabled = 0, ordered = 0;
	char id[16], want[16];

	for (xmlNodePtr v = xmledit_child(e->vcpus, "vcpu"); v; v = xmledit_next(v, "vcpu"), i++) {
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
	return i == e->max_vcpus && enabled == e->cur_vcpus && (ordered == 0 || ordered == enabled);
}

/* vcpu 0 boots fixed; the other enabled ones are hotpluggable so they can be unplugged again
 * where the hypervisor allows (libvirt plugs them before the guest runs); the rest wait. */
static void write_vcpus(struct edit *e)
{
	if (!e->vcpus) {
		e->vcpus = xmledit_new(&e->x, "vcpus");
		xmledit_put_after(&e->x, e->vcpu, e->vcpus);
	}
	xmledit_clear(e->vcpus);
	for (uint32_t i = 0; i < e->max_vcpus && e->vcpus; i++) {
		xmlNodePtr v = xmledit_add_child(&e->x, e->vcpus, "vcpu");
		bool en = i < e->cur_vcpus;

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

	if (e->max_vcpus != e->old_max_vcpus) {
		xmledit_set_text_u64(&e->x, e->vcpu, e->max_vcpus);
		if (!xmlHasProp(e->vcpu, (const xmlChar *)"current"))
			xmledit_set_attr_u64(&e->x, e->vcpu, "current", e->cur_vcpus);
		changed = true;
	}
	if (!vcpus_valid(e)) {
		write_vcpus(e);
		changed = true;
	}
	if (changed)
		fprintf(e->changes, "vcpus: %u -> max %u, current %u, hotpluggable%s\n",
		        e->old_max_vcpus, e->max_vcpus, e->cur_vcpus,
		        e->max_vcpus == e->cur_vcpus ? " (no room to add one: give --max-vcpus)"
		                                     : "");
	if (e->topology && e->sockets != e->old_sockets) {
		xmledit_set_attr_u64(&e->x, e->topology, "sockets", e->sockets);
		fprintf(e->changes, "cpu topology: sockets %u -> %u\n", e->old_sockets, e->sockets);
	}
}

static void edit_numa(struct edit *e)
{
	bool set[DOMXML_MAX_VCPUS] = {false}, added = false;
	char cpus[1024], idx[16] = "?";

	if (!e->cpu) {
		e->cpu = xmledit_new(&e->x, "cpu");
		xmledit_put_after(&e->x, e->features, e->cpu);
	}
	if (!e->numa)
		e->numa = xmledit_add_child(&e->x, e->cpu, "numa");
	if (e->ncells == 0) {
		xmlNodePtr c = xmledit_add_child(&e->x, e->numa, "cell");

		for (uint32_t i = 0; i < e->max_vcpus; i++)
			set[i] = true;
		format_cpus(set, e->max_vcpus, cpus, sizeof(cpus));
		xmledit_set_attr(&e->x, c, "id", "0");
		xmledit_set_attr(&e->x, c, "cpus", cpus);
		xmledit_set_attr_u64(&e->x, c, "memory", e->boot_kib);
		xmledit_set_attr(&e->x, c, "unit", "KiB");
		fprintf(e->changes, "numa: cell 0 added (vCPUs %s, %s): virtio-mem needs one\n",
		        cpus, human(e->boot_kib).s);
		return;
	}
	/* vCPUs in no cell go to the last one */
	if (xmledit_attr(e->last_cell, "cpus", cpus, sizeof(cpus)))
		parse_cpus(cpus, set, e->max_vcpus);
	for (uint32_t i = 0; i < e->max_vcpus; i++) {
		added |= !e->covered[i];
		set[i] |= !e->covered[i];
	}
	if (!added)
		return;
	format_cpus(set, e->max_vcpus, cpus, sizeof(cpus));
	xmledit_set_attr(&e->x, e->last_cell, "cpus", cpus);
	xmledit_attr(e->last_cell, "id", idx, sizeof(idx));
	fprintf(e->changes, "numa: cell %s now holds vCPUs %s\n", idx, cpus);
}

static void edit_memory(struct edit *e)
{
	uint64_t cur;

	if (!e->max_mem) {
		e->max_mem = xmledit_new(&e->x, "maxMemory");
		xmledit_set_attr_u64(&e->x, e->max_mem, "slots", DOMXML_SLOTS);
		xmledit_set_attr(&e->x, e->max_mem, "unit", "KiB");
		xmledit_set_text_u64(&e->x, e->max_mem, e->total_kib);
		xmledit_put_before(&e->x, e->memory, e->max_mem);
		fprintf(e->changes, "maxMemory: %s, %u slots (added)\n", human(e->total_kib).s,
		        DOMXML_SLOTS);
	} else if (!xmlHasProp(e->max_mem, (const xmlChar *)"slots") ||
	           xmledit_attr_is(e->max_mem, "slots", "0")) {
		xmledit_set_attr_u64(&e->x, e->max_mem, "slots", DOMXML_SLOTS);
		fprintf(e->changes, "maxMemory: %u slots\n", DOMXML_SLOTS);
	}
	if (e->mem_kib != e->total_kib) {
		set_size(e, e->memory, e->total_kib);
		fprintf(e->changes,
		        "memory: %s -> %s (libvirt counts memory devices in <memory>; the boot "
		        "memory stays %s)\n",
		        human(e->mem_kib).s, human(e->total_kib).s, human(e->boot_kib).s);
	}
	if (e->cur_mem && elem_kib(e, e->cur_mem, "<currentMemory>", &cur) == 0 &&
	    cur > e->total_kib) {
		set_size(e, e->cur_mem, e->total_kib);
		fprintf(e->changes, "currentMemory: %s -> %s\n", human(cur).s,
		        human(e->total_kib).s);
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

	if (!e->vmem_kib)
		return;
	m = xmledit_new(&e->x, "memory");
	xmledit_set_attr(&e->x, m, "model", "virtio-mem");
	put_device(e, m);
	t = xmledit_add_child(&e->x, m, "target");
	add_size(e, t, "size", e->vmem_kib);
	xmledit_set_text(&e->x, xmledit_add_child(&e->x, t, "node"), "0");
	add_size(e, t, "block", DOMXML_BLOCK_KIB);
	add_size(e, t, "requested", 0);
	if (e->ncells > 1)
		snprintf(cells, sizeof(cells), " (of %d cells)", e->ncells);
	fprintf(e->changes,
	        "virtio-mem: %s on NUMA node 0%s, %s blocks, none plugged at boot: memory "
	        "%s boot, up to %s\n",
	        human(e->vmem_kib).s, cells, human(DOMXML_BLOCK_KIB).s, human(e->boot_kib).s,
	        human(e->total_kib).s);
}

static void edit_channel(struct edit *e)
{
	xmlNodePtr ch, t;

	for (ch = xmledit_child(e->devices, "channel"); ch; ch = xmledit_next(ch, "channel")) {
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

static int plan(struct edit *e, const struct domxml_enable_opts *o)
{
	int r = find_parts(e);

	if (r == 0)
		r = plan_vcpus(e, o);
	if (r == 0)
		r = plan_memory(e, o);
	if (r == 0)
		r = check_memtune(e);
	return r;
}

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
		        e->cur_vcpus, e->max_vcpus, human(e->boot_kib).s, human(e->total_kib).s,
		        CHANNEL_NAME);
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

int domxml_enable(const char *xml, const struct domxml_enable_opts *o, char **ret_xml,
                  char **ret_changes, char *err, size_t errlen)
{
	static const struct domxml_enable_opts defaults;
	struct edit *e = calloc(1, sizeof(*e));
	char msg[256], *out = NULL, *changes = NULL;
	int r;

	if (!e)
		return -ENOMEM;
	e->err = err;
	e->errlen = errlen;
	e->changes = open_memstream(&e->changes_buf, &e->changes_len);
	r = e->changes ? xmledit_parse(&e->x, xml, msg, sizeof(msg)) : -ENOMEM;
	if (r == -EINVAL)
		r = fail(e, "cannot parse the domain XML: %s", msg);
	if (r == 0)
		r = plan(e, o ? o : &defaults);
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
