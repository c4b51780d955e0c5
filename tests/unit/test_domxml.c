/* domxml_enable: the XML transform of `vscalectl enable`. Each output is checked by parsing it
 * (XPath), for idempotence, for lines of the input left byte-identical, and for the exact error
 * messages. Inputs in data/domxml/: a virt-install domain, real dumps of qemu:///system before
 * and after (plain, enabled), host-passthrough with a topology, two NUMA cells, a channel already.
 *
 *   test_domxml          the unit tests
 *   test_domxml virsh    every output defined on libvirt's test driver (test:///default, the
 *                        same domain XML parser as qemu:///system), re-dumped, and the re-dump
 *                        must be "already scalable"; exits 77 when virsh is missing */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "domxml.h"

#define GIB ((uint64_t)1024 * 1024)
#define MIB ((uint64_t)1024)

struct result {
	int r;
	char *xml, *changes;
	char err[256];
};

static char *load(const char *name)
{
	const char *dir = getenv("VSCALE_TEST_DATA");
	char path[512];
	FILE *f;
	char *buf;
	long len;

	snprintf(path, sizeof(path), "%s/domxml/%s", dir ? dir : "tests/data", name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return buf;
}

static void run(const char *xml, uint32_t max_vcpus, uint64_t max_mem_kib, struct result *res)
{
	struct domxml_enable_opts o = {.max_vcpus = max_vcpus, .max_mem_kib = max_mem_kib};

	memset(res, 0, sizeof(*res));
	res->r = domxml_enable(xml, &o, &res->xml, &res->changes, res->err, sizeof(res->err));
}

static void done(struct result *res)
{
	free(res->xml);
	free(res->changes);
}

/* The string value of an XPath expression on xml ("" when it selects nothing). */
static char *xp(const char *xml, const char *expr)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "out.xml", NULL, XML_PARSE_NONET);
	xmlXPathContextPtr ctx;
	xmlXPathObjectPtr o;
	char buf[512], *s;

	assert_non_null(doc);
	ctx = xmlXPathNewContext(doc);
	snprintf(buf, sizeof(buf), "string(%s)", expr);
	o = xmlXPathEvalExpression((const xmlChar *)buf, ctx);
	assert_non_null(o);
	s = strdup(o->stringval ? (const char *)o->stringval : "");
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return s;
}

static void assert_xp(const char *xml, const char *expr, const char *want)
{
	char *got = xp(xml, expr);

	if (strcmp(got, want) != 0)
		fail_msg("%s: got '%s', want '%s'", expr, got, want);
	free(got);
}

/* Every line of in appears in out in the same order, except exactly n_changed lines, each of
 * which contains one of the changed[] strings: untouched lines are byte-identical. */
static void assert_lines_kept(const char *in, const char *out, const char *const *changed,
                              int n_changed)
{
	const char *o = out;
	int missing = 0;

	while (*in) {
		size_t len = strcspn(in, "\n");
		const char *at = o;
		bool found = false;

		while (*at) {
			size_t olen = strcspn(at, "\n");

			if (olen == len && memcmp(at, in, len) == 0) {
				o = at + olen + (at[olen] == '\n');
				found = true;
				break;
			}
			at += olen + (at[olen] == '\n');
		}
		if (!found) {
			bool allowed = false;

			for (int i = 0; i < n_changed; i++)
				allowed |= memmem(in, len, changed[i], strlen(changed[i])) != NULL;
			if (!allowed)
				fail_msg("input line changed or moved: %.*s", (int)len, in);
			missing++;
		}
		in += len + (in[len] == '\n');
	}
	assert_int_equal(missing, n_changed);
}

static void assert_prefix(const char *s, const char *prefix)
{
	if (strncmp(s, prefix, strlen(prefix)) != 0)
		fail_msg("'%s' does not start with '%s'", s, prefix);
}

/* Removes the first occurrence of cut from s, in place. */
static void cut(char *s, const char *what)
{
	char *at = strstr(s, what);

	assert_non_null(at);
	memmove(at, at + strlen(what), strlen(at + strlen(what)) + 1);
}

static void assert_idempotent(const char *xml, uint32_t max_vcpus, uint64_t max_mem_kib)
{
	struct result again;

	run(xml, max_vcpus, max_mem_kib, &again);
	assert_int_equal(again.r, 0);
	assert_string_equal(again.xml, xml);
	assert_prefix(again.changes, "already scalable");
	done(&again);
}

static void test_virt_install_domain(void **state)
{
	static const char *const changed[] = {
	        "<memory unit='KiB'>2097152</memory>",
	        "<vcpu placement='static'>2</vcpu>",
	        "<cpu mode='host-passthrough' check='none' migratable='on'/>",
	};
	char *in = load("plain.xml");
	struct result res;

	run(in, 8, 0, &res);
	assert_int_equal(res.r, 0);
	assert_string_equal(
	        res.changes,
	        "vcpus: 2 -> max 8, current 2, hotpluggable\n"
	        "numa: cell 0 added (vCPUs 0-7, 2 GiB): virtio-mem needs one\n"
	        "maxMemory: 8 GiB, 16 slots (added)\n"
	        "memory: 2 GiB -> 8 GiB (libvirt counts memory devices in <memory>; the boot memory "
	        "stays 2 GiB)\n"
	        "virtio-mem: 6 GiB on NUMA node 0, 2 MiB blocks, none plugged at boot: memory 2 GiB "
	        "boot, up to 8 GiB\n"
	        "channel: org.vscale.agent.0 added (unix socket, path chosen by libvirt)\n");
	assert_xp(res.xml, "/domain/vcpu", "8");
	assert_xp(res.xml, "/domain/vcpu/@current", "2");
	assert_xp(res.xml, "/domain/vcpu/@placement", "static");
	assert_xp(res.xml, "count(/domain/vcpus/vcpu)", "8");
	assert_xp(res.xml, "count(/domain/vcpus/vcpu[@enabled='yes'])", "2");
	assert_xp(res.xml, "/domain/vcpus/vcpu[1]/@id", "0");
	assert_xp(res.xml, "/domain/vcpus/vcpu[1]/@hotpluggable", "no");
	assert_xp(res.xml, "count(/domain/vcpus/vcpu[position()>1][@hotpluggable='yes'])", "7");
	assert_xp(res.xml, "/domain/vcpus/vcpu[8]/@id", "7");
	assert_xp(res.xml, "/domain/maxMemory", "8388608");
	assert_xp(res.xml, "/domain/maxMemory/@slots", "16");
	assert_xp(res.xml, "/domain/maxMemory/@unit", "KiB");
	assert_xp(res.xml, "/domain/memory", "8388608");
	assert_xp(res.xml, "/domain/currentMemory", "2097152");
	assert_xp(res.xml, "/domain/cpu/@mode", "host-passthrough");
	assert_xp(res.xml, "/domain/cpu/@migratable", "on");
	assert_xp(res.xml, "/domain/cpu/numa/cell/@id", "0");
	assert_xp(res.xml, "/domain/cpu/numa/cell/@cpus", "0-7");
	assert_xp(res.xml, "/domain/cpu/numa/cell/@memory", "2097152");
	assert_xp(res.xml, "/domain/cpu/numa/cell/@unit", "KiB");
	assert_xp(res.xml, "count(/domain/devices/memory)", "1");
	assert_xp(res.xml, "/domain/devices/memory/@model", "virtio-mem");
	assert_xp(res.xml, "/domain/devices/memory/target/size", "6291456");
	assert_xp(res.xml, "/domain/devices/memory/target/size/@unit", "KiB");
	assert_xp(res.xml, "/domain/devices/memory/target/node", "0");
	assert_xp(res.xml, "/domain/devices/memory/target/block", "2048");
	assert_xp(res.xml, "/domain/devices/memory/target/requested", "0");
	/* libvirt's device order: the channel after the console, virtio-mem after the rng */
	assert_xp(res.xml, "name(/domain/devices/channel/preceding-sibling::*[1])", "console");
	assert_xp(res.xml, "/domain/devices/channel/@type", "unix");
	assert_xp(res.xml, "/domain/devices/channel/source/@mode", "bind");
	assert_xp(res.xml, "count(/domain/devices/channel/source/@path)", "0");
	assert_xp(res.xml, "/domain/devices/channel/target/@type", "virtio");
	assert_xp(res.xml, "/domain/devices/channel/target/@name", "org.vscale.agent.0");
	assert_xp(res.xml, "name(/domain/devices/*[last()])", "memory");
	/* untouched: the rest, the libosinfo metadata (libxml2-formatted) included */
	assert_lines_kept(in, res.xml, changed, 3);
	assert_non_null(strstr(res.xml,
	                       "    <libosinfo:libosinfo xmlns:libosinfo=\"http://libosinfo"
	                       ".org/xmlns/libvirt/domain/1.0\">\n      <libosinfo:os id="
	                       "\"http://debian.org/debian/12\"/>\n"));
	/* inserted lines are indented like their siblings */
	assert_non_null(strstr(res.xml,
	                       "\n  </metadata>\n  <maxMemory slots='16' unit='KiB'>"
	                       "8388608</maxMemory>\n  <memory unit='KiB'>8388608</memory>\n"));
	assert_non_null(strstr(res.xml,
	                       "  <cpu mode='host-passthrough' check='none' migratable='on'>\n"
	                       "    <numa>\n      <cell id='0' cpus='0-7' memory='2097152' "
	                       "unit='KiB'/>\n    </numa>\n  </cpu>\n  <clock"));
	assert_non_null(strstr(res.xml,
	                       "    </console>\n    <channel type='unix'>\n      <source "
	                       "mode='bind'/>\n      <target type='virtio' name='org.vscale."
	                       "agent.0'/>\n    </channel>\n    <input type='mouse'"));
	assert_idempotent(res.xml, 8, 0);
	assert_idempotent(res.xml, 0, 0);
	assert_idempotent(res.xml, 8, 8 * GIB);
	done(&res);
	free(in);
}

static void test_defaults(void **state)
{
	char *in = load("plain.xml");
	struct result res;

	run(in, 0, 0, &res);
	assert_int_equal(res.r, 0);
	/* the max stays 2: vcpu 1 becomes hotpluggable, none can be added */
	assert_prefix(res.changes,
	              "vcpus: 2 -> max 2, current 2, hotpluggable (no room to add one: "
	              "give --max-vcpus)\n");
	assert_xp(res.xml, "/domain/vcpu", "2");
	assert_xp(res.xml, "count(/domain/vcpu/@current)", "0");
	assert_xp(res.xml, "/domain/vcpus/vcpu[2]/@enabled", "yes");
	assert_xp(res.xml, "/domain/vcpus/vcpu[2]/@hotpluggable", "yes");
	assert_xp(res.xml, "/domain/maxMemory", "8388608"); /* 4x boot */
	assert_idempotent(res.xml, 0, 0);
	done(&res);
	free(in);
}

static void test_default_memory_bounds(void **state)
{
	const char *big = "<domain type='kvm'><name>big</name><memory unit='GiB'>32</memory>"
	                  "<vcpu>4</vcpu><os><type arch='x86_64'>hvm</type></os>"
	                  "<features><acpi/></features><devices/></domain>";
	const char *capped = "<domain type='kvm'><name>c</name>"
	                     "<maxMemory slots='8' unit='MiB'>3000</maxMemory>"
	                     "<memory unit='GiB'>1</memory><vcpu>1</vcpu>"
	                     "<os><type arch='x86_64'>hvm</type></os><features><acpi/></features>"
	                     "<devices/></domain>";
	struct result res;

	/* 4x 32 GiB would add 96 GiB: at most 64 GiB are added */
	run(big, 0, 0, &res);
	assert_int_equal(res.r, 0);
	assert_xp(res.xml, "/domain/maxMemory", "100663296");
	assert_xp(res.xml, "/domain/memory", "96");
	assert_xp(res.xml, "/domain/memory/@unit", "GiB");
	assert_xp(res.xml, "/domain/devices/memory/target/size", "67108864");
	done(&res);
	/* an existing <maxMemory> is a limit: the default stays within it, rounded to the block */
	run(capped, 0, 0, &res);
	assert_int_equal(res.r, 0);
	assert_xp(res.xml, "/domain/maxMemory", "3000");
	assert_xp(res.xml, "/domain/maxMemory/@slots", "8");
	assert_xp(res.xml, "/domain/devices/memory/target/size", "2023424"); /* 3000 - 1024 MiB */
	assert_xp(res.xml, "/domain/memory", "3072000"); /* not whole GiB: in KiB */
	assert_xp(res.xml, "/domain/memory/@unit", "KiB");
	assert_null(strstr(res.changes, "maxMemory"));
	/* no blanks in, none out */
	assert_null(strchr(res.xml, '\n'));
	assert_idempotent(res.xml, 0, 0);
	done(&res);
}

/* The real qemu:///system dump of a plain domain: the output is what libvirt itself writes back
 * after defining it (enabled.xml), less what libvirt adds (addresses), drops from an inactive
 * channel (<source mode='bind'/>) or moves (it sorts the virtio-serial controller after the
 * PCI ones on that define). */
static void test_qemu_dump_round_trip(void **state)
{
	static const char *const changed[] = {"<source mode='bind'/>"};
	char *in = load("qemu-plain.xml"), *libvirt = load("enabled.xml");
	struct result res;

	static const char vserial[] = "    <controller type='virtio-serial' index='0'>\n      "
	                              "<address type='pci' domain='0x0000' bus='0x01' slot='0x00' "
	                              "function='0x0'/>\n    </controller>\n";
	char *sorted = strdup(libvirt);

	run(in, 4, 2560 * MIB, &res);
	assert_int_equal(res.r, 0);
	assert_idempotent(res.xml, 4, 2560 * MIB);
	cut(res.xml, vserial);
	cut(sorted, vserial);
	assert_lines_kept(res.xml, sorted, changed, 1);
	free(sorted);
	done(&res);
	/* and the dump itself is scalable as it is */
	assert_idempotent(libvirt, 0, 0);
	assert_idempotent(libvirt, 4, 2560 * MIB);
	run(libvirt, 0, 0, &res);
	assert_string_equal(res.changes, "already scalable: vcpus 2, max 4; memory 512 MiB boot, "
	                                 "up to 2560 MiB with virtio-mem; channel "
	                                 "org.vscale.agent.0\n");
	done(&res);
	/* more vCPUs on an enabled domain: only those change */
	run(libvirt, 6, 0, &res);
	assert_int_equal(res.r, 0);
	assert_string_equal(res.changes, "vcpus: 4 -> max 6, current 2, hotpluggable\n"
	                                 "numa: cell 0 now holds vCPUs 0-5\n");
	assert_xp(res.xml, "count(/domain/vcpus/vcpu)", "6");
	assert_xp(res.xml, "/domain/cpu/numa/cell/@cpus", "0-5");
	done(&res);
	free(in);
	free(libvirt);
}

static void test_passthrough_with_topology(void **state)
{
	static const char *const changed[] = {
	        "<memory unit='MiB'>1024</memory>",
	        "<vcpu placement='static' current='2'>4</vcpu>",
	        "<topology sockets='2'",
	};
	char *in = load("passthrough.xml");
	struct result res;

	run(in, 8, 0, &res);
	assert_int_equal(res.r, 0);
	assert_non_null(strstr(res.changes, "cpu topology: sockets 2 -> 4\n"));
	assert_xp(res.xml, "/domain/cpu/@mode", "host-passthrough");
	assert_xp(res.xml, "/domain/cpu/topology/@sockets", "4");
	assert_xp(res.xml, "/domain/cpu/topology/@cores", "2");
	assert_xp(res.xml, "/domain/cpu/feature/@name", "vmx");
	assert_xp(res.xml, "name(/domain/cpu/*[last()])", "numa"); /* libvirt's order */
	assert_xp(res.xml, "/domain/cpu/numa/cell/@memory", "1048576");
	/* <memory> keeps its unit; the ballooned-down currentMemory is left alone */
	assert_xp(res.xml, "/domain/memory", "4096");
	assert_xp(res.xml, "/domain/memory/@unit", "MiB");
	assert_xp(res.xml, "/domain/currentMemory", "768");
	/* libvirt's escaping is kept in text and attributes */
	assert_non_null(strstr(res.xml, "<description>db &apos;primary&apos; &amp; &quot;replica"
	                                "&quot; &lt;host&gt;</description>"));
	assert_non_null(strstr(res.xml, "<source file='/srv/vm/db1 &apos;a&apos;.img'/>"));
	assert_lines_kept(in, res.xml, changed, 3);
	assert_idempotent(res.xml, 8, 0);
	done(&res);
	free(in);
}

static void test_two_numa_cells(void **state)
{
	static const char *const changed[] = {
	        "<memory unit='KiB'>4194304</memory>",
	        "<vcpu placement='static'>4</vcpu>",
	        "<cell id='1' cpus='2-3'",
	};
	char *in = load("numa2.xml");
	struct result res;

	run(in, 8, 8 * GIB, &res);
	assert_int_equal(res.r, 0);
	assert_non_null(strstr(res.changes, "numa: cell 1 now holds vCPUs 2-7\n"));
	assert_non_null(strstr(res.changes, "virtio-mem: 4 GiB on NUMA node 0 (of 2 cells), 2 MiB "
	                                    "blocks, none plugged at boot: memory 4 GiB boot, up "
	                                    "to 8 GiB\n"));
	assert_xp(res.xml, "count(/domain/cpu/numa/cell)", "2");
	assert_xp(res.xml, "/domain/cpu/numa/cell[1]/@cpus", "0-1");
	assert_xp(res.xml, "/domain/cpu/numa/cell[2]/@cpus", "2-7");
	assert_xp(res.xml, "sum(/domain/cpu/numa/cell/@memory)", "4194304");
	assert_xp(res.xml, "/domain/devices/memory/target/node", "0");
	assert_xp(res.xml, "/domain/devices/memory/target/size", "4194304");
	assert_xp(res.xml, "/domain/memory", "8388608");
	assert_xp(res.xml, "count(/domain/vcpus/vcpu[@enabled='yes'])", "4");
	assert_lines_kept(in, res.xml, changed, 3);
	assert_idempotent(res.xml, 8, 8 * GIB);
	done(&res);
	free(in);
}

static void test_channel_already_there(void **state)
{
	char *in = load("channel.xml");
	struct result res;

	run(in, 0, 2 * GIB, &res);
	assert_int_equal(res.r, 0);
	assert_null(strstr(res.changes, "channel"));
	assert_xp(res.xml, "count(/domain/devices/channel[target/@name='org.vscale.agent.0'])",
	          "1");
	assert_xp(res.xml,
	          "/domain/devices/channel[target/@name='org.vscale.agent.0']/source/@path",
	          "/run/vscale/chan1.agent");
	assert_xp(res.xml, "count(/domain/devices/controller[@type='virtio-serial'])", "1");
	/* no <cpu> before: one is added after <features> to hold the cell */
	assert_xp(res.xml, "name(/domain/cpu/preceding-sibling::*[1])", "features");
	assert_xp(res.xml, "count(/domain/cpu/@*)", "0");
	assert_xp(res.xml, "/domain/cpu/numa/cell/@cpus", "0-3");
	assert_xp(res.xml, "count(/domain/vcpus/vcpu[@enabled='yes'])", "1");
	assert_idempotent(res.xml, 0, 2 * GIB);
	done(&res);
	free(in);
}

static void test_vcpus_list(void **state)
{
	/* libvirt's default list (enabled ones fixed) is valid: kept as it is */
	const char *ok =
	        "<domain type='kvm'><name>v</name><memory>1048576</memory>"
	        "<vcpu current='2'>3</vcpu><vcpus><vcpu id='0' enabled='yes' hotpluggable='no'/>"
	        "<vcpu id='1' enabled='yes' hotpluggable='no'/>"
	        "<vcpu id='2' enabled='no' hotpluggable='yes'/></vcpus>"
	        "<os><type arch='x86_64'>hvm</type></os><features><acpi/></features><devices/>"
	        "</domain>";
	/* a disabled vCPU that is not hotpluggable: the list is rewritten */
	const char *bad =
	        "<domain type='kvm'><name>v</name><memory>1048576</memory>"
	        "<vcpu current='1'>2</vcpu><vcpus><vcpu id='0' enabled='yes' hotpluggable='no'/>"
	        "<vcpu id='1' enabled='no' hotpluggable='no'/></vcpus>"
	        "<os><type arch='x86_64'>hvm</type></os><features><acpi/></features><devices/>"
	        "</domain>";
	struct result res;

	run(ok, 0, 0, &res);
	assert_int_equal(res.r, 0);
	assert_null(strstr(res.changes, "vcpus"));
	assert_non_null(strstr(res.xml, "<vcpu id='1' enabled='yes' hotpluggable='no'/>"));
	done(&res);
	run(bad, 0, 0, &res);
	assert_int_equal(res.r, 0);
	assert_non_null(strstr(res.changes, "vcpus: 2 -> max 2, current 1, hotpluggable\n"));
	assert_xp(res.xml, "/domain/vcpus/vcpu[2]/@hotpluggable", "yes");
	assert_xp(res.xml, "count(/domain/vcpus/vcpu)", "2");
	done(&res);
}

static void test_memory_devices_counted(void **state)
{
	/* boot 1 GiB in the cell + a 512 MiB DIMM = <memory> 1.5 GiB */
	const char *dimm =
	        "<domain type='kvm'>\n  <name>d</name>\n"
	        "  <maxMemory slots='4' unit='GiB'>8</maxMemory>\n"
	        "  <memory unit='KiB'>1572864</memory>\n  <vcpu>2</vcpu>\n"
	        "  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n"
	        "  <features>\n    <acpi/>\n  </features>\n"
	        "  <cpu>\n    <numa>\n      <cell id='0' cpus='0-1' memory='1' unit='GiB'/>\n"
	        "    </numa>\n  </cpu>\n  <devices>\n    <memory model='dimm'>\n      <target>\n"
	        "        <size unit='MiB'>512</size>\n        <node>0</node>\n      </target>\n"
	        "    </memory>\n  </devices>\n</domain>\n";
	struct result res;

	run(dimm, 0, 4 * GIB, &res);
	assert_int_equal(res.r, 0);
	assert_xp(res.xml, "/domain/devices/memory[2]/target/size", "2621440"); /* 4 - 1.5 GiB */
	assert_xp(res.xml, "/domain/memory", "4194304");
	assert_xp(res.xml, "/domain/maxMemory", "8");
	/* into <devices> that ends with an element: indented like it */
	assert_non_null(strstr(res.xml,
	                       "    </memory>\n    <memory model='virtio-mem'>\n"
	                       "      <target>\n        <size unit='KiB'>2621440</size>\n"));
	assert_idempotent(res.xml, 0, 4 * GIB);
	done(&res);
}

static void test_document_form(void **state)
{
	/* a declaration, a comment before the root, no final newline, a CDATA and a namespace */
	const char *xml =
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- made by hand -->\n"
	        "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
	        "  <name>f</name>\n  <title><![CDATA[a <b>]]></title>\n"
	        "  <memory unit='KiB'>1048576</memory>\n  <vcpu current='1'>2</vcpu>\n"
	        "  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n"
	        "  <features>\n    <acpi/>\n  </features>\n  <devices>\n  </devices>\n"
	        "  <qemu:commandline>\n    <qemu:arg value='-no-hpet'/>\n  </qemu:commandline>\n"
	        "</domain>";
	struct result res;

	run(xml, 0, 0, &res);
	assert_int_equal(res.r, 0);
	assert_memory_equal(res.xml,
	                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- made by hand -->\n"
	                    "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/"
	                    "1.0'>\n  <name>f</name>\n  <title><![CDATA[a <b>]]></title>\n",
	                    189);
	assert_non_null(strstr(res.xml, "\n  <qemu:commandline>\n    <qemu:arg value='-no-hpet'/>\n"
	                                "  </qemu:commandline>\n</domain>"));
	assert_int_equal(res.xml[strlen(res.xml) - 1], '>');
	/* an empty <devices> gets its children one step deeper */
	assert_non_null(strstr(res.xml, "  <devices>\n    <channel type='unix'>\n"));
	assert_idempotent(res.xml, 0, 0);
	done(&res);
}

struct bad_case {
	const char *file; /* in data/domxml, or NULL for xml */
	const char *xml;
	uint32_t max_vcpus;
	uint64_t max_mem_kib;
	const char *err;
};

#define MINI_OPEN "<domain type='qemu'><name>m</name>"
#define MINI_CLOSE                                                                                 \
	"<os><type arch='x86_64'>hvm</type></os><features><acpi/></features><devices/></domain>"

static void test_refusals(void **state)
{
	static const struct bad_case cases[] = {
	        {"bad-arch.xml", NULL, 0, 0,
	         "arch 'aarch64' is not x86_64 (the only one set up for vCPU and virtio-mem hotplug)"},
	        {"bad-type.xml", NULL, 0, 0, "domain type 'xen' is not kvm or qemu"},
	        {"bad-nomem.xml", NULL, 0, 0, "domain has no <memory>"},
	        {"bad-noacpi.xml", NULL, 0, 0,
	         "domain has no <features><acpi/>: vCPU hotplug needs ACPI"},
	        {"passthrough.xml", NULL, 1, 0, "max-vcpus 1 is below the current 2"},
	        {"passthrough.xml", NULL, 3, 0, "max-vcpus 3 is below the domain's maximum 4"},
	        {"passthrough.xml", NULL, 7, 0,
	         "max-vcpus 7 is not a whole number of sockets of 2 vCPUs (<topology>)"},
	        {"plain.xml", NULL, 5000, 0, "max-vcpus 5000 is above 4096"},
	        {"plain.xml", NULL, 0, 2 * GIB,
	         "max-memory 2 GiB is not above the boot memory 2 GiB"},
	        {"plain.xml", NULL, 0, 2 * GIB + 1000,
	         "max-memory 2098152 KiB: the virtio-mem part 1000 KiB is not a multiple of the 2 "
	         "MiB block"},
	        {"enabled.xml", NULL, 0, 4 * GIB,
	         "domain already has a virtio-mem device: max memory is 2560 MiB, not 4 GiB"},
	        {"enabled.xml", NULL, 1, 0, "max-vcpus 1 is below the current 2"},
	        {NULL,
	         MINI_OPEN "<maxMemory slots='4' unit='GiB'>3</maxMemory>"
	                   "<memory unit='GiB'>1</memory><vcpu>1</vcpu>" MINI_CLOSE,
	         0, 8 * GIB, "maxMemory 3 GiB is below the requested 8 GiB"},
	        {NULL,
	         MINI_OPEN "<maxMemory slots='4' unit='GiB'>1</maxMemory>"
	                   "<memory unit='GiB'>1</memory><vcpu>1</vcpu>" MINI_CLOSE,
	         0, 0, "maxMemory 1 GiB leaves no room for virtio-mem above 1 GiB"},
	        {NULL,
	         MINI_OPEN "<memory unit='GiB'>1</memory><vcpu>1</vcpu>"
	                   "<memtune><hard_limit unit='GiB'>2</hard_limit></memtune>" MINI_CLOSE,
	         0, 0, "memtune hard_limit 2 GiB is below the max memory 4 GiB"},
	        {NULL, MINI_OPEN "<memory unit='XB'>1</memory><vcpu>1</vcpu>" MINI_CLOSE, 0, 0,
	         "<memory>: unknown unit 'XB'"},
	        {NULL, MINI_OPEN "<memory>1048576</memory><vcpu>two</vcpu>" MINI_CLOSE, 0, 0,
	         "<vcpu> 'two' is not a vCPU count of 1 to 4096"},
	        {NULL, MINI_OPEN "<memory>1048576</memory><vcpu current='3'>2</vcpu>" MINI_CLOSE, 0,
	         0, "<vcpu current='3'> is not between 1 and 2"},
	        {NULL, MINI_OPEN "<memory>1048576</memory>" MINI_CLOSE, 0, 0,
	         "domain has no <vcpu>"},
	        {NULL,
	         MINI_OPEN "<memory>1048576</memory><vcpu>2</vcpu><cpu><numa>"
	                   "<cell id='0' cpus='0-5' memory='1048576'/></numa></cpu>" MINI_CLOSE,
	         0, 0, "NUMA cell 0: cpus '0-5' is not a list of vCPUs below 2"},
	        {NULL, "<network><name>default</name></network>", 0, 0,
	         "the root element is <network>, not <domain>"},
	        {NULL, "<domain type='kvm'><name>x</name>", 0, 0,
	         "cannot parse the domain XML: line 1: "},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *c = &cases[i];
		char *xml = c->file ? load(c->file) : strdup(c->xml);
		struct domxml_enable_opts o = {c->max_vcpus, c->max_mem_kib};
		char *out = (char *)"untouched", *changes = (char *)"untouched", err[256] = "";
		int r = domxml_enable(xml, &o, &out, &changes, err, sizeof(err));

		if (r != -EINVAL || strncmp(err, c->err, strlen(c->err)) != 0)
			fail_msg("case %zu: r %d, err '%s', want '%s'", i, r, err, c->err);
		/* the parse error goes on with libxml2's own words; the others are exact */
		if (strncmp(c->err, "cannot parse", 12) != 0)
			assert_string_equal(err, c->err);
		else
			assert_true(strlen(err) > strlen(c->err));
		assert_string_equal(out, "untouched");
		assert_string_equal(changes, "untouched");
		free(xml);
	}
}

/* ---- virsh mode ------------------------------------------------------------------------- */

struct virsh_case {
	const char *file;
	uint32_t max_vcpus;
	uint64_t max_mem_kib;
};

/* Defines xml on test:///default and returns libvirt's inactive dump of it; NULL on refusal. */
static char *virsh_round_trip(const char *xml, const char *name)
{
	char path[] = "/tmp/vscale-domxml-XXXXXX", cmd[512];
	struct buf {
		char *p;
		size_t len;
	} b = {0};
	char chunk[4096];
	size_t n;
	int fd = mkstemp(path);
	FILE *p;

	if (fd < 0 || write(fd, xml, strlen(xml)) != (ssize_t)strlen(xml)) {
		perror("temp file");
		exit(1);
	}
	close(fd);
	snprintf(cmd, sizeof(cmd),
	         "virsh -q -c test:///default 'define %s; dumpxml --inactive %s' 2>&1", path, name);
	p = popen(cmd, "r");
	while (p && (n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
		b.p = realloc(b.p, b.len + n + 1);
		memcpy(b.p + b.len, chunk, n);
		b.len += n;
		b.p[b.len] = '\0';
	}
	if (!p || pclose(p) != 0) {
		fprintf(stderr, "%s: virsh refused it:\n%s\n", name, b.p ? b.p : "");
		free(b.p);
		b.p = NULL;
	}
	unlink(path);
	return b.p;
}

static int virsh_main(void)
{
	static const struct virsh_case cases[] = {
	        {"plain.xml", 8, 0},       {"plain.xml", 0, 0},         {"passthrough.xml", 8, 0},
	        {"numa2.xml", 8, 8 * GIB}, {"channel.xml", 0, 2 * GIB}, {"qemu-plain.xml", 4, 0},
	        {"enabled.xml", 16, 0},
	};
	int failed = 0;

	if (system("virsh --version >/dev/null 2>&1") != 0) {
		fprintf(stderr, "virsh not found: skipped\n");
		return 77;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct virsh_case *c = &cases[i];
		struct domxml_enable_opts o = {c->max_vcpus, c->max_mem_kib};
		char *in = load(c->file), *out = NULL, *changes = NULL, *name, *dump, err[256];
		char *out2 = NULL, *changes2 = NULL;
		int r = domxml_enable(in, &o, &out, &changes, err, sizeof(err));

		if (r < 0) {
			fprintf(stderr, "%s: %s\n", c->file, err);
			failed++;
			free(in);
			continue;
		}
		name = xp(out, "/domain/name");
		dump = virsh_round_trip(out, name);
		if (!dump) {
			failed++;
		} else if (domxml_enable(dump, NULL, &out2, &changes2, err, sizeof(err)) < 0 ||
		           strncmp(changes2, "already scalable", 16) != 0) {
			fprintf(stderr, "%s: libvirt's dump is not already scalable: %s%s\n",
			        c->file, changes2 ? changes2 : err, dump);
			failed++;
		} else {
			printf("%s (max-vcpus %u, max-memory %" PRIu64 " KiB): defined on "
			       "test:///default; its dump: %s",
			       c->file, c->max_vcpus, c->max_mem_kib, changes2);
		}
		free(out2);
		free(changes2);
		free(dump);
		free(name);
		free(out);
		free(changes);
		free(in);
	}
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_virt_install_domain),
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_default_memory_bounds),
	        cmocka_unit_test(test_qemu_dump_round_trip),
	        cmocka_unit_test(test_passthrough_with_topology),
	        cmocka_unit_test(test_two_numa_cells),
	        cmocka_unit_test(test_channel_already_there),
	        cmocka_unit_test(test_vcpus_list),
	        cmocka_unit_test(test_memory_devices_counted),
	        cmocka_unit_test(test_document_form),
	        cmocka_unit_test(test_refusals),
	};

	if (argc > 1 && strcmp(argv[1], "virsh") == 0)
		return virsh_main();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
