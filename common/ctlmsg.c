/* Control messages <-> protobuf-c. Mechanical by design: every C field maps to one proto field,
 * set on encode, read (absent = zero) on decode. The peer is local and root, but a reply can hold
 * 10,000 VMs, so buffers are sized by protobuf-c, not fixed. */
#include "ctlmsg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vscale.pb-c.h"

/* scalar presence on encode */
#define PUT(m, f, v)                                                                               \
	do {                                                                                       \
		(m)->has_##f = 1;                                                                  \
		(m)->f = (v);                                                                      \
	} while (0)
/* strings: the generated structs want char *, we never write through it */
#define PUTS(m, f, v)  ((m)->f = (char *)(v))
#define GETS(dst, src) snprintf((dst), sizeof(dst), "%s", (src) ? (src) : "")

static const char *const op_names[] = {
        [CTL_STATUS] = "status",   [CTL_LIST] = "list",     [CTL_SHOW] = "show",
        [CTL_HISTORY] = "history", [CTL_PAUSE] = "pause",   [CTL_RESUME] = "resume",
        [CTL_SET] = "set",         [CTL_RELOAD] = "reload", [CTL_ENABLE] = "enable",
};

const char *ctl_op_name(enum ctl_op op)
{
	if ((unsigned)op < sizeof(op_names) / sizeof(op_names[0]) && op_names[op])
		return op_names[op];
	return "?";
}

static int pack(const ProtobufCMessage *m, uint8_t **ret_buf, size_t *ret_len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);

	if (!buf)
		return -ENOMEM;
	*ret_len = protobuf_c_message_pack(m, buf);
	*ret_buf = buf;
	return 0;
}

/* ---- request ---- */

int ctl_encode_request(const struct ctl_request *r, uint8_t **ret_buf, size_t *ret_len)
{
	Vscale__CtlRequest m = VSCALE__CTL_REQUEST__INIT;
	char *set[CTL_SET_MAX];

	m.op = (Vscale__CtlRequest__Op)r->op;
	if (r->vm[0])
		PUTS(&m, vm, r->vm);
	for (size_t i = 0; i < r->nset && i < CTL_SET_MAX; i++)
		set[i] = (char *)r->set[i];
	m.n_set = r->nset < CTL_SET_MAX ? r->nset : CTL_SET_MAX;
	m.set = set;
	PUT(&m, count, r->count);
	PUT(&m, max_vcpus, r->max_vcpus);
	PUT(&m, max_memory_kib, r->max_mem_kib);
	PUT(&m, dry_run, r->dry_run);
	return pack(&m.base, ret_buf, ret_len);
}

int ctl_decode_request(const uint8_t *buf, size_t len, struct ctl_request *ret)
{
	Vscale__CtlRequest *m = vscale__ctl_request__unpack(NULL, len, buf);
	struct ctl_request r = {0};

	if (!m)
		return -EBADMSG;
	if ((int)m->op < CTL_STATUS || (int)m->op > CTL_ENABLE || m->n_set > CTL_SET_MAX) {
		vscale__ctl_request__free_unpacked(m, NULL);
		return -EBADMSG;
	}
	r.op = (enum ctl_op)m->op;
	GETS(r.vm, m->vm);
	for (size_t i = 0; i < m->n_set; i++)
		GETS(r.set[i], m->set[i]);
	r.nset = m->n_set;
	r.count = m->count;
	r.max_vcpus = m->max_vcpus;
	r.max_mem_kib = m->max_memory_kib;
	r.dry_run = m->dry_run;
	vscale__ctl_request__free_unpacked(m, NULL);
	*ret = r;
	return 0;
}

/* ---- pieces ---- */

static void put_host(const struct ctl_host *h, Vscale__HostInfo *m)
{
	PUTS(m, version, h->version);
	PUT(m, uptime_ms, h->uptime_ms);
	PUTS(m, uri, h->uri);
	PUT(m, connected, h->connected);
	PUT(m, dry_run, h->dry_run);
	PUTS(m, config, h->config);
	PUT(m, vms, h->vms);
	PUT(m, vms_streaming, h->vms_streaming);
	PUT(m, cpus, h->cpus);
	PUT(m, mem_total_kib, h->mem_total_kib);
	PUT(m, vcpus_allocated, h->vcpus_allocated);
	PUT(m, mem_allocated_kib, h->mem_allocated_kib);
	PUT(m, vcpus_free, h->vcpus_free);
	PUT(m, mem_free_kib, h->mem_free_kib);
	PUT(m, rejected_frames, h->rejected_frames);
	PUTS(m, decision_log, h->decision_log);
}

static void get_host(const Vscale__HostInfo *m, struct ctl_host *h)
{
	GETS(h->version, m->version);
	h->uptime_ms = m->uptime_ms;
	GETS(h->uri, m->uri);
	h->connected = m->connected;
	h->dry_run = m->dry_run;
	GETS(h->config, m->config);
	h->vms = m->vms;
	h->vms_streaming = m->vms_streaming;
	h->cpus = m->cpus;
	h->mem_total_kib = m->mem_total_kib;
	h->vcpus_allocated = m->vcpus_allocated;
	h->mem_allocated_kib = m->mem_allocated_kib;
	h->vcpus_free = m->vcpus_free;
	h->mem_free_kib = m->mem_free_kib;
	h->rejected_frames = m->rejected_frames;
	GETS(h->decision_log, m->decision_log);
}

static void put_vm(const struct ctl_vm *v, Vscale__VmInfo *m)
{
	PUTS(m, name, v->name);
	PUTS(m, uuid, v->uuid);
	PUTS(m, policy, v->policy);
	PUTS(m, state, v->state);
	PUT(m, paused, v->paused);
	PUT(m, enabled, v->enabled);
	PUT(m, streaming, v->streaming);
	PUT(m, vcpus, v->vcpus);
	PUT(m, vcpus_plugged, v->vcpus_plugged);
	PUT(m, vcpus_min, v->vcpus_min);
	PUT(m, vcpus_max, v->vcpus_max);
	PUT(m, mem_kib, v->mem_kib);
	PUT(m, mem_min_kib, v->mem_min_kib);
	PUT(m, mem_max_kib, v->mem_max_kib);
	PUTS(m, mem_mechanism, v->mem_mechanism);
	if (v->has_sample) {
		PUT(m, sample_age_ms, v->sample_age_ms);
		PUT(m, cpu_busy_pct, v->cpu_busy_pct);
		PUT(m, cpus_online, v->cpus_online);
		PUT(m, cpu_psi_some, v->cpu_psi_some);
		PUT(m, guest_mem_total_kib, v->guest_mem_total_kib);
		PUT(m, guest_mem_available_kib, v->guest_mem_available_kib);
		PUT(m, mem_psi_some, v->mem_psi_some);
		PUT(m, saturated, v->saturated);
	}
	PUTS(m, last_action, v->last_action);
	PUTS(m, last_decision, v->last_decision);
	PUTS(m, op, v->op);
	PUT(m, samples, v->samples);
	PUT(m, rejected, v->rejected);
	PUT(m, ops_ok, v->ops_ok);
	PUT(m, ops_failed, v->ops_failed);
	PUT(m, ops_refused, v->ops_refused);
	PUT(m, ops_timeout, v->ops_timeout);
	PUT(m, vcpu_seconds, v->vcpu_seconds);
	PUT(m, gib_seconds, v->gib_seconds);
	PUTS(m, channel, v->channel);
}

static void get_vm(const Vscale__VmInfo *m, struct ctl_vm *v)
{
	GETS(v->name, m->name);
	GETS(v->uuid, m->uuid);
	GETS(v->policy, m->policy);
	GETS(v->state, m->state);
	v->paused = m->paused;
	v->enabled = m->enabled;
	v->streaming = m->streaming;
	v->vcpus = m->vcpus;
	v->vcpus_plugged = m->vcpus_plugged;
	v->vcpus_min = m->vcpus_min;
	v->vcpus_max = m->vcpus_max;
	v->mem_kib = m->mem_kib;
	v->mem_min_kib = m->mem_min_kib;
	v->mem_max_kib = m->mem_max_kib;
	GETS(v->mem_mechanism, m->mem_mechanism);
	v->has_sample = m->has_sample_age_ms;
	v->sample_age_ms = m->sample_age_ms;
	v->cpu_busy_pct = m->cpu_busy_pct;
	v->cpus_online = m->cpus_online;
	v->cpu_psi_some = m->cpu_psi_some;
	v->guest_mem_total_kib = m->guest_mem_total_kib;
	v->guest_mem_available_kib = m->guest_mem_available_kib;
	v->mem_psi_some = m->mem_psi_some;
	v->saturated = m->saturated;
	GETS(v->last_action, m->last_action);
	GETS(v->last_decision, m->last_decision);
	GETS(v->op, m->op);
	v->samples = m->samples;
	v->rejected = m->rejected;
	v->ops_ok = m->ops_ok;
	v->ops_failed = m->ops_failed;
	v->ops_refused = m->ops_refused;
	v->ops_timeout = m->ops_timeout;
	v->vcpu_seconds = m->vcpu_seconds;
	v->gib_seconds = m->gib_seconds;
	v->overrides[0] = '\0';
	for (size_t i = 0; i < m->n_overrides; i++) {
		size_t n = strlen(v->overrides);

		snprintf(v->overrides + n, sizeof(v->overrides) - n, "%s%s", n ? " " : "",
		         m->overrides[i]);
	}
	GETS(v->channel, m->channel);
}

static void put_record(const struct ctl_record *r, Vscale__Record *m)
{
	PUT(m, time_ms, r->time_ms);
	PUTS(m, vm, r->vm);
	PUTS(m, uuid, r->uuid);
	PUTS(m, action, r->action);
	PUTS(m, reason, r->reason);
	PUTS(m, outcome, r->outcome);
	PUT(m, vcpus_from, r->vcpus_from);
	PUT(m, vcpus_to, r->vcpus_to);
	PUT(m, mem_from_kib, r->mem_from_kib);
	PUT(m, mem_to_kib, r->mem_to_kib);
	PUTS(m, text, r->text);
	PUTS(m, detail, r->detail);
}

static void get_record(const Vscale__Record *m, struct ctl_record *r)
{
	r->time_ms = m->time_ms;
	GETS(r->vm, m->vm);
	GETS(r->uuid, m->uuid);
	GETS(r->action, m->action);
	GETS(r->reason, m->reason);
	GETS(r->outcome, m->outcome);
	r->vcpus_from = m->vcpus_from;
	r->vcpus_to = m->vcpus_to;
	r->mem_from_kib = m->mem_from_kib;
	r->mem_to_kib = m->mem_to_kib;
	GETS(r->text, m->text);
	GETS(r->detail, m->detail);
}

/* ---- reply ---- */

/* The VM overrides travel as repeated strings; split ours on spaces into ov (pointers into
 * copy). */
static size_t split_overrides(char *copy, char **ov, size_t cap)
{
	size_t n = 0;
	char *save = NULL;

	for (char *t = strtok_r(copy, " ", &save); t && n < cap; t = strtok_r(NULL, " ", &save))
		ov[n++] = t;
	return n;
}

struct vm_slot {
	Vscale__VmInfo m;
	char ovcopy[CTL_TEXT_LEN * 2];
	char *ov[CTL_SET_MAX];
};

int ctl_encode_reply(const struct ctl_reply *r, uint8_t **ret_buf, size_t *ret_len)
{
	Vscale__CtlReply m = VSCALE__CTL_REPLY__INIT;
	Vscale__HostInfo host = VSCALE__HOST_INFO__INIT;
	struct vm_slot *vms = NULL;
	Vscale__VmInfo **vmp = NULL;
	Vscale__Record *recs = NULL, **recp = NULL;
	int ret = -ENOMEM;

	m.ok = r->ok;
	if (r->error[0])
		PUTS(&m, error, r->error);
	if (r->message[0])
		PUTS(&m, message, r->message);
	if (r->has_host) {
		put_host(&r->host, &host);
		m.host = &host;
	}
	if (r->nvms) {
		vms = calloc(r->nvms, sizeof(*vms));
		vmp = calloc(r->nvms, sizeof(*vmp));
		if (!vms || !vmp)
			goto out;
	}
	for (size_t i = 0; i < r->nvms; i++) {
		vscale__vm_info__init(&vms[i].m);
		put_vm(&r->vms[i], &vms[i].m);
		snprintf(vms[i].ovcopy, sizeof(vms[i].ovcopy), "%s", r->vms[i].overrides);
		vms[i].m.n_overrides = split_overrides(vms[i].ovcopy, vms[i].ov, CTL_SET_MAX);
		vms[i].m.overrides = vms[i].ov;
		vmp[i] = &vms[i].m;
	}
	m.n_vms = r->nvms;
	m.vms = vmp;
	if (r->nrecords) {
		recs = calloc(r->nrecords, sizeof(*recs));
		recp = calloc(r->nrecords, sizeof(*recp));
		if (!recs || !recp)
			goto out;
	}
	for (size_t i = 0; i < r->nrecords; i++) {
		vscale__record__init(&recs[i]);
		put_record(&r->records[i], &recs[i]);
		recp[i] = &recs[i];
	}
	m.n_records = r->nrecords;
	m.records = recp;
	PUTS(&m, old_xml, r->old_xml);
	PUTS(&m, new_xml, r->new_xml);
	PUTS(&m, changes, r->changes);
	ret = pack(&m.base, ret_buf, ret_len);
out:
	free(vms);
	free(vmp);
	free(recs);
	free(recp);
	return ret;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int ctl_decode_reply(const uint8_t *buf, size_t len, struct ctl_reply *ret)
{
	Vscale__CtlReply *m = vscale__ctl_reply__unpack(NULL, len, buf);
	struct ctl_reply r = {0};

	memset(ret, 0, sizeof(*ret));
	if (!m)
		return -EBADMSG;
	r.ok = m->ok;
	GETS(r.error, m->error);
	GETS(r.message, m->message);
	if (m->host) {
		r.has_host = true;
		get_host(m->host, &r.host);
	}
	if (m->n_vms && !(r.vms = calloc(m->n_vms, sizeof(*r.vms))))
		goto oom;
	for (size_t i = 0; i < m->n_vms; i++)
		get_vm(m->vms[i], &r.vms[i]);
	r.nvms = m->n_vms;
	if (m->n_records && !(r.records = calloc(m->n_records, sizeof(*r.records))))
		goto oom;
	for (size_t i = 0; i < m->n_records; i++)
		get_record(m->records[i], &r.records[i]);
	r.nrecords = m->n_records;
	r.old_xml = dup_or_null(m->old_xml);
	r.new_xml = dup_or_null(m->new_xml);
	r.changes = dup_or_null(m->changes);
	if ((m->old_xml && !r.old_xml) || (m->new_xml && !r.new_xml) || (m->changes && !r.changes))
		goto oom;
	vscale__ctl_reply__free_unpacked(m, NULL);
	*ret = r;
	return 0;
oom:
	vscale__ctl_reply__free_unpacked(m, NULL);
	ctl_reply_fini(&r);
	return -ENOMEM;
}

void ctl_reply_fini(struct ctl_reply *r)
{
	free(r->vms);
	free(r->records);
	free(r->old_xml);
	free(r->new_xml);
	free(r->changes);
	r->vms = NULL;
	r->records = NULL;
	r->old_xml = r->new_xml = r->changes = NULL;
	r->nvms = r->nrecords = 0;
}

/* ---- event ---- */

int ctl_encode_event(const struct ctl_event *e, uint8_t **ret_buf, size_t *ret_len)
{
	Vscale__Event m = VSCALE__EVENT__INIT;
	Vscale__Record rec = VSCALE__RECORD__INIT;

	PUTS(&m, kind, e->kind);
	PUT(&m, time_ms, e->time_ms);
	if (e->vm[0])
		PUTS(&m, vm, e->vm);
	if (e->uuid[0])
		PUTS(&m, uuid, e->uuid);
	if (e->has_record) {
		put_record(&e->record, &rec);
		m.record = &rec;
	}
	if (e->text[0])
		PUTS(&m, text, e->text);
	if (e->need_vcpus)
		PUT(&m, need_vcpus, e->need_vcpus);
	if (e->need_mem_kib)
		PUT(&m, need_mem_kib, e->need_mem_kib);
	if (e->peer[0])
		PUTS(&m, peer, e->peer);
	return pack(&m.base, ret_buf, ret_len);
}

int ctl_decode_event(const uint8_t *buf, size_t len, struct ctl_event *ret)
{
	Vscale__Event *m = vscale__event__unpack(NULL, len, buf);
	struct ctl_event e = {0};

	if (!m)
		return -EBADMSG;
	GETS(e.kind, m->kind);
	e.time_ms = m->time_ms;
	GETS(e.vm, m->vm);
	GETS(e.uuid, m->uuid);
	if (m->record) {
		e.has_record = true;
		get_record(m->record, &e.record);
	}
	GETS(e.text, m->text);
	e.need_vcpus = m->need_vcpus;
	e.need_mem_kib = m->need_mem_kib;
	GETS(e.peer, m->peer);
	vscale__event__free_unpacked(m, NULL);
	*ret = e;
	return 0;
}
