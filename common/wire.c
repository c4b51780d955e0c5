/* protobuf-c pack/unpack for the vscale messages; the only user of the generated code.
 * Decoding treats the bytes as hostile: unpacking allocates from a bounded per-thread arena (so a
 * frame can never make us allocate more than WIRE_ARENA bytes), and every figure is range-checked
 * before it reaches a struct the agents use. */
#include "wire.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vscale.pb-c.h"

#define WIRE_ARENA (128 * 1024)
#define MAX_CPUS   4096u
#define MAX_LOAD   1e6f
/* 2^50 KiB = 1 EiB: anything above is not memory a VM has */
#define MAX_KIB (1ull << 50)

struct arena {
	size_t used;
	_Alignas(16) unsigned char mem[WIRE_ARENA];
};

static _Thread_local struct arena arena;

static void *arena_alloc(void *data, size_t size)
{
	struct arena *a = data;
	size_t aligned = (size + 15) & ~(size_t)15;

	if (aligned < size || aligned > sizeof(a->mem) - a->used)
		return NULL;
	a->used += aligned;
	return a->mem + a->used - aligned;
}

static void arena_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr;
}

static ProtobufCAllocator *arena_reset(void)
{
	static _Thread_local ProtobufCAllocator alloc;

	arena.used = 0;
	alloc.alloc = arena_alloc;
	alloc.free = arena_free;
	alloc.allocator_data = &arena;
	return &alloc;
}

/* Copies a guest string, truncated, with anything unprintable replaced: it ends up in logs. */
static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t i;

	for (i = 0; src && src[i] && i + 1 < cap; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = '\0';
}

static bool pct_ok(float v)
{
	return isfinite(v) && v >= 0.0f && v <= 100.0f;
}

static bool psi_ok(float v)
{
	return pct_ok(v);
}

/* ---- Hello ---- */

static const struct {
	unsigned bit;
	const char *name;
} cap_names[] = {{CAP_CPU_ONLINE, "cpu-online"},
                 {CAP_MEM_ONLINE, "mem-online"},
                 {CAP_MEM_OFFLINE, "mem-offline"},
                 {CAP_THREADS, "threads"}};
#define NCAPS (sizeof(cap_names) / sizeof(cap_names[0]))

int wire_encode_hello(const struct hello *h, uint8_t *buf, size_t cap)
{
	Vscale__Hello m = VSCALE__HELLO__INIT;
	char *caps[NCAPS];
	size_t n = 0;

	m.protocol_version = h->protocol_version;
	m.agent_version = (char *)h->agent_version;
	m.boot_id = (char *)h->boot_id;
	m.session_nonce = h->session_nonce;
	for (size_t i = 0; i < NCAPS; i++)
		if (h->caps & cap_names[i].bit)
			caps[n++] = (char *)cap_names[i].name;
	m.n_capabilities = n;
	m.capabilities = caps;
	if (vscale__hello__get_packed_size(&m) > cap)
		return -EMSGSIZE;
	return (int)vscale__hello__pack(&m, buf);
}

int wire_decode_hello(const uint8_t *buf, size_t len, struct hello *ret)
{
	Vscale__Hello *m = vscale__hello__unpack(arena_reset(), len, buf);
	struct hello h = {0};

	if (!m)
		return -EBADMSG;
	h.protocol_version = m->protocol_version;
	h.session_nonce = m->session_nonce;
	copy_str(h.agent_version, sizeof(h.agent_version), m->agent_version);
	copy_str(h.boot_id, sizeof(h.boot_id), m->boot_id);
	for (size_t i = 0; i < m->n_capabilities; i++)
		for (size_t j = 0; j < NCAPS; j++)
			if (m->capabilities[i] &&
			    strcmp(m->capabilities[i], cap_names[j].name) == 0)
				h.caps |= cap_names[j].bit;
	*ret = h;
	return 0;
}

/* ---- Sample ---- */

#define PUT(msg, field, val)                                                                       \
	do {                                                                                       \
		(msg).has_##field = 1;                                                             \
		(msg).field = (val);                                                               \
	} while (0)

static void encode_cpu(const struct sample *s, Vscale__CpuStats *c)
{
	if (SAMPLE_HAS(s, SF_CPU_ONLINE))
		PUT(*c, online, s->cpus_online);
	if (SAMPLE_HAS(s, SF_CPU_PRESENT))
		PUT(*c, present, s->cpus_present);
	if (SAMPLE_HAS(s, SF_CPU_BUSY))
		PUT(*c, busy_pct, s->cpu_busy_pct);
	if (SAMPLE_HAS(s, SF_CPU_STEAL))
		PUT(*c, steal_pct, s->cpu_steal_pct);
	if (SAMPLE_HAS(s, SF_LOAD)) {
		PUT(*c, load1, s->load1);
		PUT(*c, load5, s->load5);
		PUT(*c, load15, s->load15);
	}
	if (SAMPLE_HAS(s, SF_PSI_CPU_SOME))
		PUT(*c, psi_some_avg10, s->psi_cpu_some_avg10);
	if (SAMPLE_HAS(s, SF_PSI_CPU_FULL))
		PUT(*c, psi_full_avg10, s->psi_cpu_full_avg10);
}

static void encode_mem(const struct sample *s, Vscale__MemStats *m)
{
	if (SAMPLE_HAS(s, SF_MEM_TOTAL))
		PUT(*m, total_kib, s->mem_total_kib);
	if (SAMPLE_HAS(s, SF_MEM_AVAIL))
		PUT(*m, available_kib, s->mem_avail_kib);
	if (SAMPLE_HAS(s, SF_MEM_FREE))
		PUT(*m, free_kib, s->mem_free_kib);
	if (SAMPLE_HAS(s, SF_SWAP)) {
		PUT(*m, swap_total_kib, s->swap_total_kib);
		PUT(*m, swap_free_kib, s->swap_free_kib);
	}
	if (SAMPLE_HAS(s, SF_PSI_MEM_SOME))
		PUT(*m, psi_some_avg10, s->psi_mem_some_avg10);
	if (SAMPLE_HAS(s, SF_PSI_MEM_FULL))
		PUT(*m, psi_full_avg10, s->psi_mem_full_avg10);
	if (SAMPLE_HAS(s, SF_MEM_BLOCKS)) {
		PUT(*m, blocks_online, s->mem_blocks_online);
		PUT(*m, blocks_movable, s->mem_blocks_movable);
		PUT(*m, block_size_kib, s->mem_block_kib);
	}
}

int wire_encode_sample(const struct sample *s, uint8_t *buf, size_t cap)
{
	Vscale__Sample m = VSCALE__SAMPLE__INIT;
	Vscale__CpuStats cpu = VSCALE__CPU_STATS__INIT;
	Vscale__MemStats mem = VSCALE__MEM_STATS__INIT;
	Vscale__ThreadStat th[SAMPLE_MAX_THREADS];
	Vscale__ThreadStat *thp[SAMPLE_MAX_THREADS];
	size_t nth = s->nthreads < SAMPLE_MAX_THREADS ? s->nthreads : SAMPLE_MAX_THREADS;

	m.seq = s->seq;
	m.mono_ms = s->mono_ms;
	encode_cpu(s, &cpu);
	encode_mem(s, &mem);
	m.cpu = &cpu;
	m.mem = &mem;
	if (SAMPLE_HAS(s, SF_THREADS)) {
		for (size_t i = 0; i < nth; i++) {
			vscale__thread_stat__init(&th[i]);
			th[i].tid = s->threads[i].tid;
			th[i].comm = (char *)s->threads[i].comm;
			th[i].cpu_pct = s->threads[i].cpu_pct;
			thp[i] = &th[i];
		}
		m.n_top_threads = nth;
		m.top_threads = thp;
	}
	if (SAMPLE_HAS(s, SF_SATURATED))
		PUT(m, saturated, s->saturated);
	if (SAMPLE_HAS(s, SF_ROOTFS)) {
		PUT(m, rootfs_size_kib, s->rootfs_size_kib);
		PUT(m, rootfs_used_kib, s->rootfs_used_kib);
	}
	if (SAMPLE_HAS(s, SF_INTERVAL))
		PUT(m, interval_ms, s->interval_ms);
	if (vscale__sample__get_packed_size(&m) > cap)
		return -EMSGSIZE;
	return (int)vscale__sample__pack(&m, buf);
}

static int decode_cpu(const Vscale__CpuStats *c, struct sample *s)
{
	if (c->has_online) {
		if (c->online == 0 || c->online > MAX_CPUS)
			return -EBADMSG;
		s->cpus_online = c->online;
		SAMPLE_SET(s, SF_CPU_ONLINE);
	}
	if (c->has_present) {
		if (c->present == 0 || c->present > MAX_CPUS ||
		    (c->has_online && c->online > c->present))
			return -EBADMSG;
		s->cpus_present = c->present;
		SAMPLE_SET(s, SF_CPU_PRESENT);
	}
	if (c->has_busy_pct) {
		if (!pct_ok(c->busy_pct))
			return -EBADMSG;
		s->cpu_busy_pct = c->busy_pct;
		SAMPLE_SET(s, SF_CPU_BUSY);
	}
	if (c->has_steal_pct) {
		if (!pct_ok(c->steal_pct))
			return -EBADMSG;
		s->cpu_steal_pct = c->steal_pct;
		SAMPLE_SET(s, SF_CPU_STEAL);
	}
	if (c->has_load1 && c->has_load5 && c->has_load15) {
		const float l[3] = {c->load1, c->load5, c->load15};

		for (int i = 0; i < 3; i++)
			if (!isfinite(l[i]) || l[i] < 0 || l[i] > MAX_LOAD)
				return -EBADMSG;
		s->load1 = l[0];
		s->load5 = l[1];
		s->load15 = l[2];
		SAMPLE_SET(s, SF_LOAD);
	}
	if (c->has_psi_some_avg10) {
		if (!psi_ok(c->psi_some_avg10))
			return -EBADMSG;
		s->psi_cpu_some_avg10 = c->psi_some_avg10;
		SAMPLE_SET(s, SF_PSI_CPU_SOME);
	}
	if (c->has_psi_full_avg10) {
		if (!psi_ok(c->psi_full_avg10))
			return -EBADMSG;
		s->psi_cpu_full_avg10 = c->psi_full_avg10;
		SAMPLE_SET(s, SF_PSI_CPU_FULL);
	}
	return 0;
}

static int decode_mem(const Vscale__MemStats *m, struct sample *s)
{
	if (m->has_total_kib) {
		if (m->total_kib == 0 || m->total_kib > MAX_KIB)
			return -EBADMSG;
		s->mem_total_kib = m->total_kib;
		SAMPLE_SET(s, SF_MEM_TOTAL);
	}
	if (m->has_available_kib) {
		if (m->available_kib > MAX_KIB ||
		    (m->has_total_kib && m->available_kib > m->total_kib))
			return -EBADMSG;
		s->mem_avail_kib = m->available_kib;
		SAMPLE_SET(s, SF_MEM_AVAIL);
	}
	if (m->has_free_kib) {
		if (m->free_kib > MAX_KIB || (m->has_total_kib && m->free_kib > m->total_kib))
			return -EBADMSG;
		s->mem_free_kib = m->free_kib;
		SAMPLE_SET(s, SF_MEM_FREE);
	}
	if (m->has_swap_total_kib && m->has_swap_free_kib) {
		if (m->swap_total_kib > MAX_KIB || m->swap_free_kib > m->swap_total_kib)
			return -EBADMSG;
		s->swap_total_kib = m->swap_total_kib;
		s->swap_free_kib = m->swap_free_kib;
		SAMPLE_SET(s, SF_SWAP);
	}
	if (m->has_psi_some_avg10) {
		if (!psi_ok(m->psi_some_avg10))
			return -EBADMSG;
		s->psi_mem_some_avg10 = m->psi_some_avg10;
		SAMPLE_SET(s, SF_PSI_MEM_SOME);
	}
	if (m->has_psi_full_avg10) {
		if (!psi_ok(m->psi_full_avg10))
			return -EBADMSG;
		s->psi_mem_full_avg10 = m->psi_full_avg10;
		SAMPLE_SET(s, SF_PSI_MEM_FULL);
	}
	if (m->has_blocks_online && m->has_blocks_movable && m->has_block_size_kib) {
		if (m->blocks_movable > m->blocks_online || m->block_size_kib == 0 ||
		    m->block_size_kib > MAX_KIB)
			return -EBADMSG;
		s->mem_blocks_online = m->blocks_online;
		s->mem_blocks_movable = m->blocks_movable;
		s->mem_block_kib = m->block_size_kib;
		SAMPLE_SET(s, SF_MEM_BLOCKS);
	}
	return 0;
}

int wire_decode_sample(const uint8_t *buf, size_t len, struct sample *ret)
{
	Vscale__Sample *m = vscale__sample__unpack(arena_reset(), len, buf);
	struct sample s;

	if (!m)
		return -EBADMSG;
	memset(&s, 0, sizeof(s));
	s.seq = m->seq;
	s.mono_ms = m->mono_ms;
	if (m->cpu && decode_cpu(m->cpu, &s) < 0)
		return -EBADMSG;
	if (m->mem && decode_mem(m->mem, &s) < 0)
		return -EBADMSG;
	if (m->n_top_threads > SAMPLE_MAX_THREADS)
		return -EBADMSG;
	for (size_t i = 0; i < m->n_top_threads; i++) {
		const Vscale__ThreadStat *t = m->top_threads[i];

		if (!pct_ok(t->cpu_pct))
			return -EBADMSG;
		s.threads[i].tid = t->tid;
		s.threads[i].cpu_pct = t->cpu_pct;
		copy_str(s.threads[i].comm, sizeof(s.threads[i].comm), t->comm);
	}
	s.nthreads = (uint32_t)m->n_top_threads;
	if (m->n_top_threads > 0 || m->has_saturated)
		SAMPLE_SET(&s, SF_THREADS);
	if (m->has_saturated) {
		s.saturated = m->saturated;
		SAMPLE_SET(&s, SF_SATURATED);
	}
	if (m->has_rootfs_size_kib && m->has_rootfs_used_kib) {
		if (m->rootfs_used_kib > m->rootfs_size_kib)
			return -EBADMSG;
		s.rootfs_size_kib = m->rootfs_size_kib;
		s.rootfs_used_kib = m->rootfs_used_kib;
		SAMPLE_SET(&s, SF_ROOTFS);
	}
	if (m->has_interval_ms) {
		if (m->interval_ms == 0 || m->interval_ms > 3600 * 1000)
			return -EBADMSG;
		s.interval_ms = m->interval_ms;
		SAMPLE_SET(&s, SF_INTERVAL);
	}
	*ret = s;
	return 0;
}

/* ---- Request / Reply ---- */

int wire_encode_request(const struct request *r, uint8_t *buf, size_t cap)
{
	Vscale__Request m = VSCALE__REQUEST__INIT;

	m.id = r->id;
	m.kind = (Vscale__Request__Kind)r->kind;
	if (r->vcpus)
		PUT(m, vcpus, r->vcpus);
	if (r->mem_total_kib)
		PUT(m, mem_total_kib, r->mem_total_kib);
	if (r->mem_margin_kib)
		PUT(m, mem_margin_kib, r->mem_margin_kib);
	if (r->hold_ms)
		PUT(m, hold_ms, r->hold_ms);
	if (vscale__request__get_packed_size(&m) > cap)
		return -EMSGSIZE;
	return (int)vscale__request__pack(&m, buf);
}

int wire_decode_request(const uint8_t *buf, size_t len, struct request *ret)
{
	Vscale__Request *m = vscale__request__unpack(arena_reset(), len, buf);
	struct request r = {0};

	if (!m)
		return -EBADMSG;
	r.id = m->id;
	r.kind = (enum request_kind)m->kind;
	r.vcpus = m->has_vcpus ? m->vcpus : 0;
	r.mem_total_kib = m->has_mem_total_kib ? m->mem_total_kib : 0;
	r.mem_margin_kib = m->has_mem_margin_kib ? m->mem_margin_kib : 0;
	r.hold_ms = m->has_hold_ms ? m->hold_ms : 0;
	if (r.vcpus > MAX_CPUS || r.mem_total_kib > MAX_KIB || r.mem_margin_kib > MAX_KIB)
		return -EBADMSG;
	*ret = r;
	return 0;
}

int wire_encode_reply(const struct reply *r, uint8_t *buf, size_t cap)
{
	Vscale__Reply m = VSCALE__REPLY__INIT;

	m.id = r->id;
	m.status = (Vscale__Reply__Status)r->status;
	if (r->reason[0])
		m.reason = (char *)r->reason;
	if (r->has_vcpus_online)
		PUT(m, vcpus_online, r->vcpus_online);
	if (r->has_mem_total)
		PUT(m, mem_total_kib, r->mem_total_kib);
	if (r->has_mem_offlined)
		PUT(m, mem_offlined_kib, r->mem_offlined_kib);
	if (vscale__reply__get_packed_size(&m) > cap)
		return -EMSGSIZE;
	return (int)vscale__reply__pack(&m, buf);
}

int wire_decode_reply(const uint8_t *buf, size_t len, struct reply *ret)
{
	Vscale__Reply *m = vscale__reply__unpack(arena_reset(), len, buf);
	struct reply r = {0};

	if (!m)
		return -EBADMSG;
	if ((int)m->status < REPLY_ACK || (int)m->status > REPLY_ERROR)
		return -EBADMSG;
	r.id = m->id;
	r.status = (enum reply_status)m->status;
	copy_str(r.reason, sizeof(r.reason), m->reason);
	if (m->has_vcpus_online) {
		if (m->vcpus_online == 0 || m->vcpus_online > MAX_CPUS)
			return -EBADMSG;
		r.has_vcpus_online = true;
		r.vcpus_online = m->vcpus_online;
	}
	if (m->has_mem_total_kib) {
		if (m->mem_total_kib > MAX_KIB)
			return -EBADMSG;
		r.has_mem_total = true;
		r.mem_total_kib = m->mem_total_kib;
	}
	if (m->has_mem_offlined_kib) {
		if (m->mem_offlined_kib > MAX_KIB)
			return -EBADMSG;
		r.has_mem_offlined = true;
		r.mem_offlined_kib = m->mem_offlined_kib;
	}
	*ret = r;
	return 0;
}
