/* The virt layer: domain XML parsing for every memory mechanism and the channel, and the verbs
 * against libvirt's own test driver (test:///default and a node file with our channel), which
 * implements listing, SetVcpusFlags, SetMemoryFlags and node info for real. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "virt.h"

static const char *virtio_mem_xml =
        "<domain type='qemu' id='3'><name>vm1</name>"
        "<uuid>aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee</uuid>"
        "<maxMemory slots='4' unit='KiB'>3145728</maxMemory>"
        "<memory unit='KiB'>1572864</memory><currentMemory unit='KiB'>786432</currentMemory>"
        "<vcpu placement='static' current='1'>4</vcpu>"
        "<cpu><numa><cell id='0' cpus='0-3' memory='524288' unit='KiB'/></numa></cpu>"
        "<devices>"
        "<channel type='unix'><source mode='bind' "
        "path='/var/lib/libvirt/qemu/channel/target/domain-3-vm1/org.vscale.agent.0'/>"
        "<target type='virtio' name='org.vscale.agent.0' state='disconnected'/></channel>"
        "<memory model='virtio-mem'><target><size unit='KiB'>1048576</size><node>0</node>"
        "<block unit='KiB'>2048</block><requested unit='KiB'>262144</requested>"
        "<current unit='KiB'>262144</current></target><alias name='virtiomem0'/>"
        "<address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></memory>"
        "</devices></domain>";

static void test_parse_virtio_mem(void **state)
{
	struct virt_dom d;

	assert_int_equal(virt_parse_xml(virtio_mem_xml, &d), 0);
	assert_string_equal(d.name, "vm1");
	assert_int_equal(d.id, 3);
	assert_true(d.active);
	assert_int_equal(d.vcpus_cur, 1);
	assert_int_equal(d.vcpus_max, 4);
	assert_int_equal(d.mem.mech, VIRT_MEM_VIRTIO_MEM);
	assert_int_equal(d.mem.base_kib, 524288);
	assert_int_equal(d.mem.cur_kib, 524288 + 262144);
	assert_int_equal(d.mem.max_kib, 524288 + 1048576);
	assert_int_equal(d.mem.granule_kib, 2048);
	assert_string_equal(d.mem.vmem_alias, "virtiomem0");
	assert_true(d.has_channel);
	assert_false(d.channel_connected);
	assert_string_equal(d.channel_path,
	                    "/var/lib/libvirt/qemu/channel/target/domain-3-vm1/org.vscale.agent.0");
}

static void test_parse_dimm_and_balloon(void **state)
{
	const char *dimm =
	        "<domain type='qemu' id='1'><name>d</name>"
	        "<uuid>aaaaaaaa-bbbb-cccc-dddd-000000000001</uuid>"
	        "<maxMemory slots='4' unit='MiB'>4096</maxMemory><memory unit='MiB'>1536</memory>"
	        "<vcpu>2</vcpu><cpu><numa><cell id='0' cpus='0-1' memory='1' unit='GiB'/></numa>"
	        "</cpu><devices><memory model='dimm'><target><size unit='MiB'>512</size>"
	        "<node>0</node></target><alias name='dimm0'/></memory></devices></domain>";
	const char *balloon =
	        "<domain type='qemu' id='2'><name>b</name>"
	        "<uuid>aaaaaaaa-bbbb-cccc-dddd-000000000002</uuid>"
	        "<memory unit='KiB'>2097152</memory><currentMemory unit='KiB'>1048576</currentMemory>"
	        "<vcpu>2</vcpu><devices><memballoon model='virtio'/></devices></domain>";
	const char *fixed = "<domain type='qemu'><name>f</name>"
	                    "<uuid>aaaaaaaa-bbbb-cccc-dddd-000000000003</uuid>"
	                    "<memory unit='KiB'>2097152</memory><vcpu>1</vcpu>"
	                    "<devices><memballoon model='none'/></devices></domain>";
	struct virt_dom d;

	assert_int_equal(virt_parse_xml(dimm, &d), 0);
	assert_int_equal(d.mem.mech, VIRT_MEM_DIMM);
	assert_int_equal(d.mem.base_kib, 1048576);
	assert_int_equal(d.mem.cur_kib, 1048576 + 524288);
	assert_int_equal(d.mem.granule_kib, 524288);
	assert_int_equal(d.mem.slots_free, 3);
	/* 1.5 GiB plugged + 3 free slots of 512 MiB: 3 GiB, below maxMemory's 4 GiB */
	assert_int_equal(d.mem.max_kib, 3145728);
	assert_false(d.has_channel);

	assert_int_equal(virt_parse_xml(balloon, &d), 0);
	assert_int_equal(d.mem.mech, VIRT_MEM_BALLOON);
	assert_int_equal(d.mem.cur_kib, 1048576);
	assert_int_equal(d.mem.max_kib, 2097152);

	assert_int_equal(virt_parse_xml(fixed, &d), 0);
	assert_int_equal(d.mem.mech, VIRT_MEM_NONE);
	assert_false(d.active);
	assert_int_equal(d.id, -1);
}

static void test_parse_garbage(void **state)
{
	struct virt_dom d;

	assert_int_equal(virt_parse_xml("", &d), -EINVAL);
	assert_int_equal(virt_parse_xml("<domain>", &d), -EINVAL);
	assert_int_equal(virt_parse_xml("<network><name>x</name></network>", &d), -EINVAL);
	assert_int_equal(virt_parse_xml("<domain><name>x</name></domain>", &d), -EINVAL);
}

static int notified;

static void notify(void *user)
{
	__atomic_add_fetch(&notified, 1, __ATOMIC_SEQ_CST);
}

static const struct virt_dom *find(const struct virt_dom *d, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(d[i].name, name) == 0)
			return &d[i];
	return NULL;
}

static void test_node_file_verbs(void **state)
{
	char uri[512], err[256];
	const char *data = getenv("VSCALE_TEST_DATA");
	struct virt *v = virt_new(notify, NULL);
	struct virt_dom *doms = NULL, d;
	const struct virt_dom *web;
	struct virt_node node;
	size_t n = 0;

	assert_non_null(v);
	assert_non_null(data);
	snprintf(uri, sizeof(uri), "test://%s/virt/node.xml", data);
	assert_int_equal(virt_connect(v, uri, err, sizeof(err)), 0);
	assert_true(virt_connected(v));
	assert_int_equal(virt_list(v, &doms, &n), 0);
	assert_int_equal(n, 2);
	web = find(doms, n, "web1");
	assert_non_null(web);
	assert_true(web->has_channel);
	assert_false(web->channel_connected); /* the test driver drops target/@state */
	assert_string_equal(web->channel_path, "/tmp/vscale-virt-test-web1.sock");
	assert_int_equal(web->vcpus_cur, 1);
	assert_int_equal(web->vcpus_max, 4);
	assert_int_equal(web->mem.mech, VIRT_MEM_BALLOON);
	assert_int_equal(web->mem.cur_kib, 1048576);
	assert_false(find(doms, n, "db1")->has_channel);

	/* the verbs change what libvirt reports */
	assert_int_equal(virt_set_vcpus(v, web->uuid, 3, false), 0);
	assert_int_equal(virt_set_memory(v, web->uuid, 2097152, false), 0);
	assert_int_equal(virt_lookup(v, web->uuid, &d), 0);
	assert_int_equal(d.vcpus_cur, 3);
	assert_int_equal(d.mem.cur_kib, 2097152);
	/* beyond the domain's maximum: libvirt refuses, memory is clipped to the ceiling */
	assert_true(virt_set_vcpus(v, web->uuid, 9, false) < 0);
	assert_true(strlen(virt_last_error()) > 0);
	assert_int_equal(virt_set_memory(v, web->uuid, 99999999, false), 0);
	assert_int_equal(virt_lookup(v, web->uuid, &d), 0);
	assert_int_equal(d.mem.cur_kib, 4194304);

	assert_int_equal(virt_lookup(v, "00000000-0000-0000-0000-000000000000", &d), -ENOENT);
	assert_int_equal(virt_set_vcpus(v, "00000000-0000-0000-0000-000000000000", 1, false),
	                 -ENOENT);

	assert_int_equal(virt_node(v, &node), 0);
	assert_int_equal(node.cpus, 8);
	assert_true(node.mem_total_kib > 0);
	free(doms);
	virt_disconnect(v);
	assert_false(virt_connected(v));
	assert_int_equal(virt_list(v, &doms, &n), -ENOTCONN);
	virt_free(v);
}

static void test_connect_failure(void **state)
{
	struct virt *v = virt_new(notify, NULL);
	char err[256];

	assert_true(virt_connect(v, "test:///nonexistent/node.xml", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "cannot connect to test:///nonexistent/node.xml"));
	assert_false(virt_connected(v));
	virt_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_virtio_mem),
	        cmocka_unit_test(test_parse_dimm_and_balloon),
	        cmocka_unit_test(test_parse_garbage),
	        cmocka_unit_test(test_node_file_verbs),
	        cmocka_unit_test(test_connect_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
