/* Wire encode/decode: every message round-trips with presence kept (absent stays absent), and
 * hostile payloads (truncated, NaN, negative, out-of-range, too many threads, random bytes) are
 * rejected without writing the output. */
#include <math.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sample.h"
#include "vscale.pb-c.h"
#include "wire.h"

static void full_sample(struct sample *s)
{
	memset(s, 0, sizeof(*s));
	s->seq = 42;
	s->mono_ms = 123456789;
	s->interval_ms = 1000;
	s->cpus_online = 2;
	s->cpus_present = 4;
	s->cpu_busy_pct = 87.5f;
	s->cpu_steal_pct = 1.25f;
	s->load1 = 1.5f;
	s->load5 = 1.0f;
	s->load15 = 0.5f;
	s->psi_cpu_some_avg10 = 12.0f;
	s->psi_cpu_full_avg10 = 0.5f;
	s->mem_total_kib = 2048 * 1024;
	s->mem_avail_kib = 1024 * 1024;
	s->mem_free_kib = 512 * 1024;
	s->swap_total_kib = 0;
	s->swap_free_kib = 0;
	s->psi_mem_some_avg10 = 3.0f;
	s->psi_mem_full_avg10 = 1.0f;
	s->mem_blocks_online = 16;
	s->mem_blocks_movable = 8;
	s->mem_block_kib = 131072;
	s->rootfs_size_kib = 10000;
	s->rootfs_used_kib = 5000;
	s->saturated = true;
	s->nthreads = 2;
	s->threads[0] = (struct sample_thread){.tid = 77, .comm = "spin", .cpu_pct = 99.5f};
	s->threads[1] = (struct sample_thread){.tid = 78, .comm = "idle \"q\"", .cpu_pct = 0.5f};
	s->has = (1u << SF__COUNT) - 1;
}

static void test_sample_roundtrip(void **state)
{
	struct sample in, out;
	uint8_t buf[2048];
	int n;

	full_sample(&in);
	n = wire_encode_sample(&in, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(wire_decode_sample(buf, (size_t)n, &out), 0);
	assert_int_equal(out.has, in.has);
	assert_int_equal(out.seq, 42);
	assert_int_equal(out.cpus_present, 4);
	assert_true(out.cpu_busy_pct == 87.5f);
	assert_int_equal(out.mem_avail_kib, 1024 * 1024);
	assert_int_equal(out.mem_blocks_movable, 8);
	assert_int_equal(out.nthreads, 2);
	assert_string_equal(out.threads[0].comm, "spin");
	assert_int_equal(out.threads[1].tid, 78);
	assert_true(out.saturated);
	/* too small a buffer */
	assert_int_equal(wire_encode_sample(&in, buf, 10), -EMSGSIZE);
}

static void test_sample_absent_stays_absent(void **state)
{
	struct sample in, out;
	uint8_t buf[2048];
	int n;

	memset(&in, 0, sizeof(in));
	in.seq = 1;
	in.mono_ms = 5;
	in.mem_total_kib = 1000;
	SAMPLE_SET(&in, SF_MEM_TOTAL);
	n = wire_encode_sample(&in, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(wire_decode_sample(buf, (size_t)n, &out), 0);
	assert_int_equal(out.has, 1u << SF_MEM_TOTAL);
	assert_false(SAMPLE_HAS(&out, SF_CPU_BUSY));
	assert_false(SAMPLE_HAS(&out, SF_MEM_AVAIL));
	assert_false(SAMPLE_HAS(&out, SF_SATURATED));
}

/* Encodes a protobuf Sample straight from the generated code, so values our encoder would never
 * produce can be sent. */
static int raw_sample(Vscale__CpuStats *cpu, Vscale__MemStats *mem, size_t nthreads, uint8_t *buf)
{
	Vscale__Sample m = VSCALE__SAMPLE__INIT;
	static Vscale__ThreadStat th[20];
	static Vscale__ThreadStat *thp[20];

	m.seq = 1;
	m.mono_ms = 1;
	m.cpu = cpu;
	m.mem = mem;
	for (size_t i = 0; i < nthreads; i++) {
		vscale__thread_stat__init(&th[i]);
		th[i].tid = (uint32_t)i;
		th[i].cpu_pct = 1;
		thp[i] = &th[i];
	}
	m.n_top_threads = nthreads;
	m.top_threads = thp;
	return (int)vscale__sample__pack(&m, buf);
}

static void expect_rejected(Vscale__CpuStats *cpu, Vscale__MemStats *mem, size_t nthreads)
{
	uint8_t buf[4096];
	struct sample out;
	int n = raw_sample(cpu, mem, nthreads, buf);

	memset(&out, 0xab, sizeof(out));
	assert_int_equal(wire_decode_sample(buf, (size_t)n, &out), -EBADMSG);
	assert_int_equal(out.seq, 0xababababababababull); /* untouched */
}

static void test_sample_hostile_values(void **state)
{
	Vscale__CpuStats c;
	Vscale__MemStats m;
	const float bad_pct[] = {NAN, INFINITY, -1.0f, 1e12f, 100.01f};

	for (size_t i = 0; i < sizeof(bad_pct) / sizeof(bad_pct[0]); i++) {
		vscale__cpu_stats__init(&c);
		c.has_busy_pct = 1;
		c.busy_pct = bad_pct[i];
		expect_rejected(&c, NULL, 0);
		vscale__cpu_stats__init(&c);
		c.has_psi_some_avg10 = 1;
		c.psi_some_avg10 = bad_pct[i];
		expect_rejected(&c, NULL, 0);
	}
	vscale__cpu_stats__init(&c);
	c.has_online = c.has_present = 1;
	c.online = 8;
	c.present = 4; /* more online than present */
	expect_rejected(&c, NULL, 0);
	c.online = 0;
	expect_rejected(&c, NULL, 0);

	vscale__mem_stats__init(&m);
	m.has_total_kib = m.has_available_kib = 1;
	m.total_kib = 1000;
	m.available_kib = 2000; /* more available than total */
	expect_rejected(NULL, &m, 0);
	m.available_kib = 0;
	m.total_kib = 0;
	expect_rejected(NULL, &m, 0);
	m.total_kib = UINT64_MAX;
	expect_rejected(NULL, &m, 0);

	expect_rejected(NULL, NULL, SAMPLE_MAX_THREADS + 1);
}

static void test_garbage_payloads(void **state)
{
	uint8_t buf[512];
	struct sample s;
	struct hello h;
	struct request rq;
	struct reply rp;
	unsigned seed = 99;
	int accepted = 0;

	/* random bytes: must never crash; the decoders are free to accept what happens to parse */
	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)(round % 200);

		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (uint8_t)(seed >> 16);
		}
		accepted += wire_decode_sample(buf, len, &s) == 0;
		accepted += wire_decode_hello(buf, len, &h) == 0;
		accepted += wire_decode_request(buf, len, &rq) == 0;
		accepted += wire_decode_reply(buf, len, &rp) == 0;
	}
	/* required fields make nearly all random input invalid */
	assert_true(accepted < 20000);
}

static void test_truncated(void **state)
{
	struct sample in, out;
	uint8_t buf[2048];
	int n, ok = 0;

	full_sample(&in);
	n = wire_encode_sample(&in, buf, sizeof(buf));
	for (int len = 0; len < n; len++)
		ok += wire_decode_sample(buf, (size_t)len, &out) == 0;
	/* a cut inside a field never parses; a cut between fields may drop optional ones */
	assert_true(ok < n / 2);
}

static void test_hello_request_reply(void **state)
{
	struct hello h = {.protocol_version = 1,
	                  .session_nonce = 0xdeadbeefcafeull,
	                  .caps = CAP_THREADS | CAP_MEM_OFFLINE};
	struct hello h2;
	struct request rq = {.id = 7,
	                     .kind = REQ_SHRINK_MEMORY,
	                     .mem_total_kib = 1 << 20,
	                     .mem_margin_kib = 1 << 18,
	                     .hold_ms = 5000};
	struct request rq2;
	struct reply rp = {.id = 7,
	                   .status = REPLY_PARTIAL,
	                   .has_mem_offlined = true,
	                   .mem_offlined_kib = 131072,
	                   .has_mem_total = true,
	                   .mem_total_kib = 900000};
	struct reply rp2;
	uint8_t buf[512];
	int n;

	strcpy(h.agent_version, "0.1.0");
	strcpy(h.boot_id, "abc\x01\x7f");
	n = wire_encode_hello(&h, buf, sizeof(buf));
	assert_int_equal(wire_decode_hello(buf, (size_t)n, &h2), 0);
	assert_int_equal(h2.session_nonce, h.session_nonce);
	assert_int_equal(h2.caps, h.caps);
	assert_string_equal(h2.boot_id, "abc??"); /* control characters never reach a log */

	n = wire_encode_request(&rq, buf, sizeof(buf));
	assert_int_equal(wire_decode_request(buf, (size_t)n, &rq2), 0);
	assert_int_equal(rq2.kind, REQ_SHRINK_MEMORY);
	assert_int_equal(rq2.mem_margin_kib, 1 << 18);
	assert_int_equal(rq2.hold_ms, 5000);
	assert_int_equal(rq2.vcpus, 0);

	strcpy(rp.reason, "only 1 of 2 blocks");
	n = wire_encode_reply(&rp, buf, sizeof(buf));
	assert_int_equal(wire_decode_reply(buf, (size_t)n, &rp2), 0);
	assert_int_equal(rp2.status, REPLY_PARTIAL);
	assert_true(rp2.has_mem_offlined);
	assert_false(rp2.has_vcpus_online);
	assert_string_equal(rp2.reason, "only 1 of 2 blocks");

	/* a reply with an unknown status is refused */
	{
		Vscale__Reply m = VSCALE__REPLY__INIT;

		m.id = 1;
		m.status = (Vscale__Reply__Status)9;
		n = (int)vscale__reply__pack(&m, buf);
		assert_int_equal(wire_decode_reply(buf, (size_t)n, &rp2), -EBADMSG);
	}
}

static void test_json(void **state)
{
	struct sample s;
	char json[2048];
	int n;

	full_sample(&s);
	n = sample_to_json(&s, json, sizeof(json));
	assert_true(n > 0);
	assert_non_null(strstr(json, "\"busy_pct\":87.50"));
	assert_non_null(strstr(json, "\"comm\":\"idle \\\"q\\\"\""));
	assert_non_null(strstr(json, "\"saturated\":true"));
	assert_int_equal(sample_to_json(&s, json, 20), -EMSGSIZE);
	memset(&s, 0, sizeof(s));
	n = sample_to_json(&s, json, sizeof(json));
	assert_string_equal(json, "{\"seq\":0,\"mono_ms\":0,\"cpu\":{},\"mem\":{}}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sample_roundtrip),
	        cmocka_unit_test(test_sample_absent_stays_absent),
	        cmocka_unit_test(test_sample_hostile_values),
	        cmocka_unit_test(test_garbage_payloads),
	        cmocka_unit_test(test_truncated),
	        cmocka_unit_test(test_hello_request_reply),
	        cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
