/* libFuzzer target: the wire decoders (common/wire.c) on hostile payloads, and sample_to_json()
 * on what they accept (hostd logs it).
 *
 * Input byte 0 picks the message (Hello, Sample, Request, Reply); bit 2 picks the direction:
 *  decode (clear): the rest is a payload. Whatever decodes must hold its validated ranges, encode
 *    again into one frame, decode to the same struct, and encode to the same bytes.
 *  encode (set): the rest fills a struct sample directly. When it is in the ranges the decoder
 *    promises, encode -> decode must accept it and give it back: the decoder refuses nothing
 *    that is valid. */
#include "fuzz.h"

#include <math.h>
#include <stddef.h>

#include "frame.h"
#include "sample.h"
#include "wire.h"

#define MAX_CPUS 4096u
#define MAX_KIB  (1ull << 50)

static bool printable(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

static bool pct_ok(float v)
{
	return isfinite(v) && v >= 0.0f && v <= 100.0f;
}

/* The ranges wire.h promises for a decoded sample; NULL when it holds, else what breaks. */
static const char *sample_invalid(const struct sample *s)
{
	if (s->has >> SF__COUNT)
		return "unknown presence bits";
	if (SAMPLE_HAS(s, SF_CPU_ONLINE) && (s->cpus_online == 0 || s->cpus_online > MAX_CPUS))
		return "cpus_online";
	if (SAMPLE_HAS(s, SF_CPU_PRESENT) &&
	    (s->cpus_present == 0 || s->cpus_present > MAX_CPUS ||
	     (SAMPLE_HAS(s, SF_CPU_ONLINE) && s->cpus_online > s->cpus_present)))
		return "cpus_present";
	if ((SAMPLE_HAS(s, SF_CPU_BUSY) && !pct_ok(s->cpu_busy_pct)) ||
	    (SAMPLE_HAS(s, SF_CPU_STEAL) && !pct_ok(s->cpu_steal_pct)) ||
	    (SAMPLE_HAS(s, SF_PSI_CPU_SOME) && !pct_ok(s->psi_cpu_some_avg10)) ||
	    (SAMPLE_HAS(s, SF_PSI_CPU_FULL) && !pct_ok(s->psi_cpu_full_avg10)) ||
	    (SAMPLE_HAS(s, SF_PSI_MEM_SOME) && !pct_ok(s->psi_mem_some_avg10)) ||
	    (SAMPLE_HAS(s, SF_PSI_MEM_FULL) && !pct_ok(s->psi_mem_full_avg10)))
		return "a percentage";
	if (SAMPLE_HAS(s, SF_LOAD))
		for (int i = 0; i < 3; i++) {
			float l = i == 0 ? s->load1 : i == 1 ? s->load5 : s->load15;

			if (!isfinite(l) || l < 0 || l > 1e6f)
				return "a load average";
		}
	if (SAMPLE_HAS(s, SF_MEM_TOTAL) && (s->mem_total_kib == 0 || s->mem_total_kib > MAX_KIB))
		return "mem_total";
	if (SAMPLE_HAS(s, SF_MEM_AVAIL) &&
	    (s->mem_avail_kib > MAX_KIB ||
	     (SAMPLE_HAS(s, SF_MEM_TOTAL) && s->mem_avail_kib > s->mem_total_kib)))
		return "mem_avail";
	if (SAMPLE_HAS(s, SF_MEM_FREE) &&
	    (s->mem_free_kib > MAX_KIB ||
	     (SAMPLE_HAS(s, SF_MEM_TOTAL) && s->mem_free_kib > s->mem_total_kib)))
		return "mem_free";
	if (SAMPLE_HAS(s, SF_SWAP) &&
	    (s->swap_total_kib > MAX_KIB || s->swap_free_kib > s->swap_total_kib))
		return "swap";
	if (SAMPLE_HAS(s, SF_MEM_BLOCKS) && (s->mem_blocks_movable > s->mem_blocks_online ||
	                                     s->mem_block_kib == 0 || s->mem_block_kib > MAX_KIB))
		return "memory blocks";
	if (SAMPLE_HAS(s, SF_ROOTFS) && s->rootfs_used_kib > s->rootfs_size_kib)
		return "rootfs";
	if (SAMPLE_HAS(s, SF_INTERVAL) && (s->interval_ms == 0 || s->interval_ms > 3600 * 1000))
		return "interval";
	if (s->nthreads > SAMPLE_MAX_THREADS || (s->nthreads && !SAMPLE_HAS(s, SF_THREADS)))
		return "nthreads";
	for (uint32_t i = 0; i < s->nthreads; i++)
		if (!pct_ok(s->threads[i].cpu_pct) ||
		    !printable(s->threads[i].comm, sizeof(s->threads[i].comm)))
			return "a thread";
	return NULL;
}

/* Field by field (padding is not part of the value); floats by their bits. */
static bool same_sample(const struct sample *a, const struct sample *b)
{
#define EQ(f) (memcmp(&a->f, &b->f, sizeof(a->f)) == 0)
	if (!(EQ(seq) && EQ(mono_ms) && EQ(has) && EQ(interval_ms) && EQ(cpus_online) &&
	      EQ(cpus_present) && EQ(cpu_busy_pct) && EQ(cpu_steal_pct) && EQ(load1) && EQ(load5) &&
	      EQ(load15) && EQ(psi_cpu_some_avg10) && EQ(psi_cpu_full_avg10) && EQ(mem_total_kib) &&
	      EQ(mem_avail_kib) && EQ(mem_free_kib) && EQ(swap_total_kib) && EQ(swap_free_kib) &&
	      EQ(psi_mem_some_avg10) && EQ(psi_mem_full_avg10) && EQ(mem_blocks_online) &&
	      EQ(mem_blocks_movable) && EQ(mem_block_kib) && EQ(rootfs_size_kib) &&
	      EQ(rootfs_used_kib) && EQ(saturated) && EQ(nthreads)))
		return false;
	for (uint32_t i = 0; i < a->nthreads && i < SAMPLE_MAX_THREADS; i++)
		if (!(EQ(threads[i].tid) && EQ(threads[i].cpu_pct) &&
		      strcmp(a->threads[i].comm, b->threads[i].comm) == 0))
			return false;
	return true;
#undef EQ
}

/* The JSON a decoded sample is logged as: fits a log line, one line, strings closed, brackets
 * balanced outside them (a guest's thread name must not end a string or an object). */
static void check_json(const struct sample *s)
{
	char json[4096];
	int n = sample_to_json(s, json, sizeof(json));
	int depth = 0;
	bool in_str = false;

	FUZZ_CHECK(n > 0 && (size_t)n == strlen(json), "sample_to_json gave %d", n);
	for (int i = 0; i < n; i++) {
		char ch = json[i];

		FUZZ_CHECK(ch >= 0x20 && ch < 0x7f, "byte %d of the JSON is %#x", i,
		           (unsigned)(uint8_t)ch);
		if (in_str && ch == '\\')
			i++; /* the escaped character */
		else if (ch == '"')
			in_str = !in_str;
		else if (!in_str)
			depth += (ch == '{' || ch == '[') - (ch == '}' || ch == ']');
		FUZZ_CHECK(depth >= 0, "unbalanced JSON: %s", json);
	}
	FUZZ_CHECK(depth == 0 && !in_str, "unbalanced JSON: %s", json);
}

/* decode -> encode -> decode -> encode for one message type */
#define ROUND_TRIP(T, enc, dec, same, check)                                                       \
	do {                                                                                       \
		static uint8_t b1[FRAME_MAX_PAYLOAD], b2[FRAME_MAX_PAYLOAD];                       \
		struct T m1, m2;                                                                   \
		int n1, n2;                                                                        \
                                                                                                   \
		if (dec(p, len, &m1) < 0)                                                          \
			return;                                                                    \
		check(&m1);                                                                        \
		n1 = enc(&m1, b1, sizeof(b1));                                                     \
		FUZZ_CHECK(n1 >= 0, "a decoded " #T " does not encode into one frame: %d", n1);    \
		FUZZ_CHECK(dec(b1, (size_t)n1, &m2) == 0, "a re-encoded " #T " does not decode");  \
		FUZZ_CHECK(same(&m1, &m2), #T " changed in the round trip");                       \
		n2 = enc(&m2, b2, sizeof(b2));                                                     \
		FUZZ_CHECK(n1 == n2 && memcmp(b1, b2, (size_t)n1) == 0,                            \
		           #T " encodes differently the second time");                             \
	} while (0)

static void check_sample(const struct sample *s)
{
	const char *bad = sample_invalid(s);

	FUZZ_CHECK(!bad, "decoded sample out of range: %s", bad);
	check_json(s);
}

static void check_hello(const struct hello *h)
{
	FUZZ_CHECK(printable(h->agent_version, sizeof(h->agent_version)) &&
	                   printable(h->boot_id, sizeof(h->boot_id)),
	           "unprintable Hello strings");
	FUZZ_CHECK((h->caps & ~(unsigned)(CAP_CPU_ONLINE | CAP_MEM_ONLINE | CAP_MEM_OFFLINE |
	                                  CAP_THREADS)) == 0,
	           "unknown capability bits %#x", h->caps);
}

static void check_request(const struct request *r)
{
	FUZZ_CHECK(r->vcpus <= MAX_CPUS && r->mem_total_kib <= MAX_KIB &&
	                   r->mem_margin_kib <= MAX_KIB,
	           "request out of range");
}

static void check_reply(const struct reply *r)
{
	FUZZ_CHECK(r->status >= REPLY_ACK && r->status <= REPLY_ERROR, "status %d", (int)r->status);
	FUZZ_CHECK(printable(r->reason, sizeof(r->reason)), "unprintable reason");
	FUZZ_CHECK(!r->has_vcpus_online || (r->vcpus_online >= 1 && r->vcpus_online <= MAX_CPUS),
	           "vcpus_online %u", r->vcpus_online);
	FUZZ_CHECK((!r->has_mem_total || r->mem_total_kib <= MAX_KIB) &&
	                   (!r->has_mem_offlined || r->mem_offlined_kib <= MAX_KIB),
	           "reply memory out of range");
}

static bool same_hello(const struct hello *a, const struct hello *b)
{
	return a->protocol_version == b->protocol_version && a->session_nonce == b->session_nonce &&
	       a->caps == b->caps && strcmp(a->agent_version, b->agent_version) == 0 &&
	       strcmp(a->boot_id, b->boot_id) == 0;
}

static bool same_request(const struct request *a, const struct request *b)
{
	return a->id == b->id && a->kind == b->kind && a->vcpus == b->vcpus &&
	       a->mem_total_kib == b->mem_total_kib && a->mem_margin_kib == b->mem_margin_kib &&
	       a->hold_ms == b->hold_ms;
}

static bool same_reply(const struct reply *a, const struct reply *b)
{
	return a->id == b->id && a->status == b->status && strcmp(a->reason, b->reason) == 0 &&
	       a->has_vcpus_online == b->has_vcpus_online && a->vcpus_online == b->vcpus_online &&
	       a->has_mem_total == b->has_mem_total && a->mem_total_kib == b->mem_total_kib &&
	       a->has_mem_offlined == b->has_mem_offlined &&
	       a->mem_offlined_kib == b->mem_offlined_kib;
}

static void decode_mode(unsigned msg, const uint8_t *p, size_t len)
{
	switch (msg) {
	case 0:
		ROUND_TRIP(hello, wire_encode_hello, wire_decode_hello, same_hello, check_hello);
		break;
	case 1:
		ROUND_TRIP(sample, wire_encode_sample, wire_decode_sample, same_sample,
		           check_sample);
		break;
	case 2:
		ROUND_TRIP(request, wire_encode_request, wire_decode_request, same_request,
		           check_request);
		break;
	default:
		ROUND_TRIP(reply, wire_encode_reply, wire_decode_reply, same_reply, check_reply);
		break;
	}
}

/* What the encoder sends of s, as the decoder gives it back: absent figures zero, threads only
 * with SF_THREADS, which a saturation flag implies and no thread and no flag clears. */
static void normalise(struct sample *s)
{
	struct sample n = {.seq = s->seq, .mono_ms = s->mono_ms, .has = s->has};

#define KEEP(bit, ...)                                                                             \
	do {                                                                                       \
		if (SAMPLE_HAS(s, bit)) {                                                          \
			__VA_ARGS__;                                                               \
		}                                                                                  \
	} while (0)
	KEEP(SF_CPU_ONLINE, n.cpus_online = s->cpus_online);
	KEEP(SF_CPU_PRESENT, n.cpus_present = s->cpus_present);
	KEEP(SF_CPU_BUSY, n.cpu_busy_pct = s->cpu_busy_pct);
	KEEP(SF_CPU_STEAL, n.cpu_steal_pct = s->cpu_steal_pct);
	KEEP(SF_LOAD, n.load1 = s->load1; n.load5 = s->load5; n.load15 = s->load15);
	KEEP(SF_PSI_CPU_SOME, n.psi_cpu_some_avg10 = s->psi_cpu_some_avg10);
	KEEP(SF_PSI_CPU_FULL, n.psi_cpu_full_avg10 = s->psi_cpu_full_avg10);
	KEEP(SF_MEM_TOTAL, n.mem_total_kib = s->mem_total_kib);
	KEEP(SF_MEM_AVAIL, n.mem_avail_kib = s->mem_avail_kib);
	KEEP(SF_MEM_FREE, n.mem_free_kib = s->mem_free_kib);
	KEEP(SF_SWAP, n.swap_total_kib = s->swap_total_kib; n.swap_free_kib = s->swap_free_kib);
	KEEP(SF_PSI_MEM_SOME, n.psi_mem_some_avg10 = s->psi_mem_some_avg10);
	KEEP(SF_PSI_MEM_FULL, n.psi_mem_full_avg10 = s->psi_mem_full_avg10);
	KEEP(SF_MEM_BLOCKS, n.mem_blocks_online = s->mem_blocks_online;
	     n.mem_blocks_movable = s->mem_blocks_movable; n.mem_block_kib = s->mem_block_kib);
	KEEP(SF_ROOTFS, n.rootfs_size_kib = s->rootfs_size_kib;
	     n.rootfs_used_kib = s->rootfs_used_kib);
	KEEP(SF_SATURATED, n.saturated = s->saturated);
	KEEP(SF_INTERVAL, n.interval_ms = s->interval_ms);
	KEEP(SF_THREADS, n.nthreads = s->nthreads;
	     memcpy(n.threads, s->threads, sizeof(n.threads)));
#undef KEEP
	if (SAMPLE_HAS(&n, SF_SATURATED))
		SAMPLE_SET(&n, SF_THREADS);
	if (n.nthreads == 0 && !SAMPLE_HAS(&n, SF_SATURATED))
		SAMPLE_CLEAR(&n, SF_THREADS);
	*s = n;
}

static void encode_mode(const uint8_t *p, size_t len)
{
	static uint8_t buf[FRAME_MAX_PAYLOAD];
	struct sample s, back;
	int n;

	memset(&s, 0, sizeof(s));
	memcpy(&s, p, len < sizeof(s) ? len : sizeof(s));
	s.has &= (1u << SF__COUNT) - 1;
	s.saturated = p && len > offsetof(struct sample, saturated) &&
	              (p[offsetof(struct sample, saturated)] & 1); /* a bool holds 0 or 1 */
	for (size_t i = 0; i < SAMPLE_MAX_THREADS; i++)
		s.threads[i].comm[SAMPLE_COMM_LEN - 1] = '\0';
	normalise(&s);
	if (sample_invalid(&s))
		return;
	n = wire_encode_sample(&s, buf, sizeof(buf));
	FUZZ_CHECK(n >= 0, "a valid sample does not encode: %d", n);
	FUZZ_CHECK(wire_decode_sample(buf, (size_t)n, &back) == 0,
	           "the decoder refuses a valid sample");
	FUZZ_CHECK(same_sample(&s, &back), "a valid sample changed through the wire");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 4)
		encode_mode(data + 1, size - 1);
	else
		decode_mode(data[0] & 3, data + 1, size - 1);
	return 0;
}
