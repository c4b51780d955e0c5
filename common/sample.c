/* struct sample as one line of JSON, for `vscale-guestd --once`, logs and the tools. Absent
 * figures are left out rather than printed as 0. */
#include "sample.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

struct out {
	char *buf;
	size_t cap, len;
	bool first;
	bool overflow;
};

static void emit(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->overflow = true;
		return;
	}
	o->len += (size_t)n;
}

static void key(struct out *o, const char *k)
{
	emit(o, "%s\"%s\":", o->first ? "" : ",", k);
	o->first = false;
}

static void num(struct out *o, const char *k, double v)
{
	key(o, k);
	emit(o, "%.2f", v);
}

static void u64(struct out *o, const char *k, unsigned long long v)
{
	key(o, k);
	emit(o, "%llu", v);
}

/* comm is sanitised printable ASCII (wire.c, collect.c); only quote and backslash need escapes */
static void str(struct out *o, const char *k, const char *s)
{
	key(o, k);
	emit(o, "\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			emit(o, "\\");
		emit(o, "%c", *s);
	}
	emit(o, "\"");
}

static void json_cpu(struct out *o, const struct sample *s)
{
	key(o, "cpu");
	emit(o, "{");
	o->first = true;
	if (SAMPLE_HAS(s, SF_CPU_ONLINE))
		u64(o, "online", s->cpus_online);
	if (SAMPLE_HAS(s, SF_CPU_PRESENT))
		u64(o, "present", s->cpus_present);
	if (SAMPLE_HAS(s, SF_CPU_BUSY))
		num(o, "busy_pct", s->cpu_busy_pct);
	if (SAMPLE_HAS(s, SF_CPU_STEAL))
		num(o, "steal_pct", s->cpu_steal_pct);
	if (SAMPLE_HAS(s, SF_LOAD)) {
		num(o, "load1", s->load1);
		num(o, "load5", s->load5);
		num(o, "load15", s->load15);
	}
	if (SAMPLE_HAS(s, SF_PSI_CPU_SOME))
		num(o, "psi_some_avg10", s->psi_cpu_some_avg10);
	if (SAMPLE_HAS(s, SF_PSI_CPU_FULL))
		num(o, "psi_full_avg10", s->psi_cpu_full_avg10);
	emit(o, "}");
	o->first = false;
}

static void json_mem(struct out *o, const struct sample *s)
{
	key(o, "mem");
	emit(o, "{");
	o->first = true;
	if (SAMPLE_HAS(s, SF_MEM_TOTAL))
		u64(o, "total_kib", s->mem_total_kib);
	if (SAMPLE_HAS(s, SF_MEM_AVAIL))
		u64(o, "available_kib", s->mem_avail_kib);
	if (SAMPLE_HAS(s, SF_MEM_FREE))
		u64(o, "free_kib", s->mem_free_kib);
	if (SAMPLE_HAS(s, SF_SWAP)) {
		u64(o, "swap_total_kib", s->swap_total_kib);
		u64(o, "swap_free_kib", s->swap_free_kib);
	}
	if (SAMPLE_HAS(s, SF_PSI_MEM_SOME))
		num(o, "psi_some_avg10", s->psi_mem_some_avg10);
	if (SAMPLE_HAS(s, SF_PSI_MEM_FULL))
		num(o, "psi_full_avg10", s->psi_mem_full_avg10);
	if (SAMPLE_HAS(s, SF_MEM_BLOCKS)) {
		u64(o, "blocks_online", s->mem_blocks_online);
		u64(o, "blocks_movable", s->mem_blocks_movable);
		u64(o, "block_size_kib", s->mem_block_kib);
	}
	emit(o, "}");
	o->first = false;
}

static void json_threads(struct out *o, const struct sample *s)
{
	key(o, "top_threads");
	emit(o, "[");
	for (uint32_t i = 0; i < s->nthreads && i < SAMPLE_MAX_THREADS; i++) {
		emit(o, "%s{", i ? "," : "");
		o->first = true;
		u64(o, "tid", s->threads[i].tid);
		str(o, "comm", s->threads[i].comm);
		num(o, "cpu_pct", s->threads[i].cpu_pct);
		emit(o, "}");
	}
	emit(o, "]");
	o->first = false;
}

int sample_to_json(const struct sample *s, char *buf, size_t cap)
{
	struct out o = {.buf = buf, .cap = cap, .first = true};

	if (cap == 0)
		return -EMSGSIZE;
	buf[0] = '\0';
	emit(&o, "{");
	u64(&o, "seq", s->seq);
	u64(&o, "mono_ms", s->mono_ms);
	if (SAMPLE_HAS(s, SF_INTERVAL))
		u64(&o, "interval_ms", s->interval_ms);
	json_cpu(&o, s);
	json_mem(&o, s);
	if (SAMPLE_HAS(s, SF_THREADS))
		json_threads(&o, s);
	if (SAMPLE_HAS(s, SF_SATURATED)) {
		key(&o, "saturated");
		emit(&o, "%s", s->saturated ? "true" : "false");
	}
	if (SAMPLE_HAS(s, SF_ROOTFS)) {
		u64(&o, "rootfs_size_kib", s->rootfs_size_kib);
		u64(&o, "rootfs_used_kib", s->rootfs_used_kib);
	}
	emit(&o, "}");
	return o.overflow ? -EMSGSIZE : (int)o.len;
}
