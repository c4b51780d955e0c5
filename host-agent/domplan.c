/* The `vscalectl enable` plan (contract in domplan.h): every check that can refuse a domain and
 * every count and size to write are settled here, so that a refused domain leaves the tree
 * untouched and the edits in domxml.c cannot fail but for memory. */
#include "domplan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "domvalue.h"

/* domplan_make()'s working state: the plan so far and where its reason goes */
struct planner {
	struct domplan p;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct planner *pl, const char *fmt, ...)
{
	va_list ap;

	if (pl->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(pl->err, pl->errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* An element's size (its text in its unit attribute) in KiB. */
static int node_kib(xmlNodePtr n, const char *what, uint64_t *ret, char *err, size_t errlen)
{
	char val[64], unit[16];
	bool has_unit = xmledit_attr(n, "unit", unit, sizeof(unit));

	xmledit_text(n, val, sizeof(val));
	return domvalue_size_kib(val, has_unit ? unit : NULL, what, ret, err, errlen);
}

static int elem_kib(struct planner *pl, xmlNodePtr n, const char *what, uint64_t *ret)
{
	return node_kib(n, what, ret, pl->err, pl->errlen);
}

static int find_parts(struct planner *pl, xmlDocPtr doc)
{
	struct domplan *p = &pl->p;
	char buf[64];
	xmlNodePtr os_type;

	p->root = xmlDocGetRootElement(doc);
	if (!p->root || p->root->ns || xmlStrcmp(p->root->name, (const xmlChar *)"domain") != 0)
		return fail(pl, "the root element is <%s>, not <domain>",
		            p->root ? (const char *)p->root->name : "");
	if (!xmledit_attr(p->root, "type", buf, sizeof(buf)))
		return fail(pl, "domain has no type");
	if (strcmp(buf, "kvm") != 0 && strcmp(buf, "qemu") != 0)
		return fail(pl, "domain type '%s' is not kvm or qemu", buf);
	os_type = xmledit_child(xmledit_child(p->root, "os"), "type");
	if (!os_type || !xmledit_attr(os_type, "arch", buf, sizeof(buf)))
		return fail(pl, "domain has no <os><type arch=...>");
	if (strcmp(buf, "x86_64") != 0)
		return fail(pl,
		            "arch '%s' is not x86_64 (the only one set up for vCPU and virtio-mem "
		            "hotplug)",
		            buf);
	xmledit_text(os_type, buf, sizeof(buf));
	if (strcmp(buf, "hvm") != 0)
		return fail(pl, "os type '%s' is not hvm", buf);
	p->features = xmledit_child(p->root, "features");
	if (!xmledit_child(p->features, "acpi"))
		return fail(pl, "domain has no <features><acpi/>: vCPU hotplug needs ACPI");
	p->devices = xmledit_child(p->root, "devices");
	p->vcpu = xmledit_child(p->root, "vcpu");
	p->memory = xmledit_child(p->root, "memory");
	if (!p->devices)
		return fail(pl, "domain has no <devices>");
	if (!p->vcpu)
		return fail(pl, "domain has no <vcpu>");
	if (!p->memory)
		return fail(pl, "domain has no <memory>");
	p->vcpus = xmledit_child(p->root, "vcpus");
	p->cur_mem = xmledit_child(p->root, "currentMemory");
	p->max_mem = xmledit_child(p->root, "maxMemory");
	p->cpu = xmledit_child(p->root, "cpu");
	p->topology = xmledit_child(p->cpu, "topology");
	p->numa = xmledit_child(p->cpu, "numa");
	return 0;
}

static int plan_topology(struct planner *pl)
{
	struct domplan *p = &pl->p;
	static const char *const names[] = {"dies", "clusters", "cores", "threads"};
	char buf[32];
	uint64_t per_socket = 1, v;

	if (!p->topology)
		return 0;
	if (!xmledit_attr(p->topology, "sockets", buf, sizeof(buf)) ||
	    !domvalue_parse_u64(buf, &v) || v == 0 || v > DOMXML_MAX_VCPUS)
		return fail(pl, "<topology> has no valid sockets");
	p->old_sockets = (uint32_t)v;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!xmledit_attr(p->topology, names[i], buf, sizeof(buf)))
			continue;
		if (!domvalue_parse_u64(buf, &v) || v == 0 || v > DOMXML_MAX_VCPUS)
			return fail(pl, "<topology> %s '%s' is not a count", names[i], buf);
		per_socket *= v;
	}
	if (per_socket > DOMXML_MAX_VCPUS || p->max_vcpus % per_socket)
		return fail(pl,
		            "max-vcpus %u is not a whole number of sockets of %" PRIu64
		            " vCPUs (<topology>)",
		            p->max_vcpus, per_socket);
	p->sockets = p->max_vcpus / (uint32_t)per_socket;
	return 0;
}

static int plan_vcpus(struct planner *pl, const struct domxml_enable_opts *o)
{
	struct domplan *p = &pl->p;
	char buf[32];
	uint64_t v;

	xmledit_text(p->vcpu, buf, sizeof(buf));
	if (!domvalue_parse_u64(buf, &v) || v == 0 || v > DOMXML_MAX_VCPUS)
		return fail(pl, "<vcpu> '%s' is not a vCPU count of 1 to %u", buf,
		            DOMXML_MAX_VCPUS);
	p->old_max_vcpus = p->cur_vcpus = (uint32_t)v;
	if (xmledit_attr(p->vcpu, "current", buf, sizeof(buf))) {
		if (!domvalue_parse_u64(buf, &v) || v == 0 || v > p->old_max_vcpus)
			return fail(pl, "<vcpu current='%s'> is not between 1 and %u", buf,
			            p->old_max_vcpus);
		p->cur_vcpus = (uint32_t)v;
	}
	p->max_vcpus = o->max_vcpus ? o->max_vcpus : p->old_max_vcpus;
	if (p->max_vcpus < p->cur_vcpus)
		return fail(pl, "max-vcpus %u is below the current %u", p->max_vcpus, p->cur_vcpus);
	if (p->max_vcpus < p->old_max_vcpus)
		return fail(pl, "max-vcpus %u is below the domain's maximum %u", p->max_vcpus,
		            p->old_max_vcpus);
	if (p->max_vcpus > DOMXML_MAX_VCPUS)
		return fail(pl, "max-vcpus %u is above %u", p->max_vcpus, DOMXML_MAX_VCPUS);
	return plan_topology(pl);
}

/* Reads the NUMA cells: which vCPUs they hold and their memory (the boot memory). */
static int plan_numa(struct planner *pl, uint64_t *ret_cells_kib)
{
	struct domplan *p = &pl->p;
	uint64_t sum = 0;

	for (xmlNodePtr c = xmledit_child(p->numa, "cell"); c; c = xmledit_next(c, "cell")) {
		char cpus[1024], mem[64], unit[16];
		uint64_t kib;
		int r;

		if (xmledit_attr(c, "cpus", cpus, sizeof(cpus)) &&
		    domvalue_parse_cpus(cpus, p->covered, p->max_vcpus) < 0)
			return fail(pl, "NUMA cell %d: cpus '%s' is not a list of vCPUs below %u",
			            p->ncells, cpus, p->max_vcpus);
		if (!xmledit_attr(c, "memory", mem, sizeof(mem)))
			return fail(pl, "NUMA cell %d has no memory", p->ncells);
		r = domvalue_size_kib(mem,
		                      xmledit_attr(c, "unit", unit, sizeof(unit)) ? unit : NULL,
		                      "NUMA cell memory", &kib, pl->err, pl->errlen);
		if (r < 0)
			return r;
		sum += kib;
		p->ncells++;
		p->last_cell = c;
	}
	*ret_cells_kib = sum;
	return 0;
}

/* The memory devices already there: libvirt counts them in <memory>. */
static int plan_devices(struct planner *pl)
{
	struct domplan *p = &pl->p;
	for (xmlNodePtr m = xmledit_child(p->devices, "memory"); m; m = xmledit_next(m, "memory")) {
		xmlNodePtr size = xmledit_child(xmledit_child(m, "target"), "size");
		char model[32] = "";
		uint64_t kib;
		int r;

		xmledit_attr(m, "model", model, sizeof(model));
		if (!size)
			return fail(pl, "memory device '%s' has no <target><size>", model);
		r = elem_kib(pl, size, "memory device size", &kib);
		if (r < 0)
			return r;
		p->devs_kib += kib;
		if (!p->vmem && strcmp(model, "virtio-mem") == 0)
			p->vmem = m;
	}
	return 0;
}

/* The virtio-mem size to add: the request, or the default within an existing <maxMemory>. */
static int plan_vmem_size(struct planner *pl, const struct domxml_enable_opts *o)
{
	struct domplan *p = &pl->p;
	uint64_t base = p->boot_kib + p->devs_kib, want, room;

	if (o->max_mem_kib) {
		want = o->max_mem_kib;
		if (want > DOMVALUE_SIZE_LIMIT_KIB)
			return fail(pl, "max-memory %s is too large", domvalue_human(want).s);
		if (want <= base)
			return fail(pl, "max-memory %s is not above the boot memory %s%s",
			            domvalue_human(want).s, domvalue_human(base).s,
			            p->devs_kib ? " (memory devices included)" : "");
		if ((want - base) % DOMXML_BLOCK_KIB)
			return fail(pl,
			            "max-memory %s: the virtio-mem part %s is not a multiple of "
			            "the %s block",
			            domvalue_human(want).s, domvalue_human(want - base).s,
			            domvalue_human(DOMXML_BLOCK_KIB).s);
		if (p->max_mem_kib && p->max_mem_kib < want)
			return fail(pl, "maxMemory %s is below the requested %s",
			            domvalue_human(p->max_mem_kib).s, domvalue_human(want).s);
	} else {
		room = p->boot_kib * DOMXML_DEFAULT_GROWTH;
		want = base + (room < DOMXML_DEFAULT_CAP_KIB ? room : DOMXML_DEFAULT_CAP_KIB);
		if (p->max_mem_kib && p->max_mem_kib < want)
			want = p->max_mem_kib;
		want = want > base ? base + (want - base) / DOMXML_BLOCK_KIB * DOMXML_BLOCK_KIB
		                   : base;
		if (want == base)
			return fail(pl, "maxMemory %s leaves no room for virtio-mem above %s",
			            domvalue_human(p->max_mem_kib).s, domvalue_human(base).s);
	}
	p->vmem_kib = want - base;
	p->total_kib = want;
	return 0;
}

static int plan_memory(struct planner *pl, const struct domxml_enable_opts *o)
{
	struct domplan *p = &pl->p;
	uint64_t cells_kib = 0;
	int r;

	r = elem_kib(pl, p->memory, "<memory>", &p->mem_kib);
	if (r == 0 && p->max_mem)
		r = elem_kib(pl, p->max_mem, "<maxMemory>", &p->max_mem_kib);
	/* only an edit when above the new total: left alone when unreadable */
	if (r == 0 && p->cur_mem)
		node_kib(p->cur_mem, "<currentMemory>", &p->cur_mem_kib, NULL, 0);
	if (r == 0)
		r = plan_numa(pl, &cells_kib);
	if (r == 0)
		r = plan_devices(pl);
	if (r < 0)
		return r;
	if (p->ncells > 0) {
		p->boot_kib = cells_kib;
	} else {
		if (p->mem_kib <= p->devs_kib)
			return fail(pl, "<memory> %s is not above its memory devices (%s)",
			            domvalue_human(p->mem_kib).s, domvalue_human(p->devs_kib).s);
		p->boot_kib = p->mem_kib - p->devs_kib;
	}
	if (!p->vmem)
		return plan_vmem_size(pl, o);
	p->total_kib = p->boot_kib + p->devs_kib;
	if (o->max_mem_kib && o->max_mem_kib != p->total_kib)
		return fail(pl, "domain already has a virtio-mem device: max memory is %s, not %s",
		            domvalue_human(p->total_kib).s, domvalue_human(o->max_mem_kib).s);
	if (p->max_mem_kib && p->max_mem_kib < p->total_kib)
		return fail(pl, "maxMemory %s is below the memory %s",
		            domvalue_human(p->max_mem_kib).s, domvalue_human(p->total_kib).s);
	return 0;
}

/* A guest over its hard limit is killed: refuse a limit below what it could reach. */
static int check_memtune(struct planner *pl)
{
	struct domplan *p = &pl->p;
	xmlNodePtr hard = xmledit_child(xmledit_child(p->root, "memtune"), "hard_limit");
	uint64_t kib;
	int r;

	if (!hard)
		return 0;
	r = elem_kib(pl, hard, "<memtune><hard_limit>", &kib);
	if (r == 0 && kib < p->total_kib)
		return fail(pl, "memtune hard_limit %s is below the max memory %s",
		            domvalue_human(kib).s, domvalue_human(p->total_kib).s);
	return r;
}

int domplan_make(xmlDocPtr doc, const struct domxml_enable_opts *o, struct domplan *ret_plan,
                 char *err, size_t errlen)
{
	struct planner pl = {.err = err, .errlen = errlen};
	int r = find_parts(&pl, doc);

	if (r == 0)
		r = plan_vcpus(&pl, o);
	if (r == 0)
		r = plan_memory(&pl, o);
	if (r == 0)
		r = check_memtune(&pl);
	if (r == 0)
		*ret_plan = pl.p;
	return r;
}
