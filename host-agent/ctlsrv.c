/* hostd's answers to the operator: vscalectl requests, the events it publishes, and the figures
 * behind /metrics, all read from struct hostd on the loop thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "domains.h"
#include "domxml.h"
#include "hostd.h"
#include "hostview.h"
#include "log.h"
#include "report.h"
#include "util.h"

#ifndef VSCALE_VERSION
#define VSCALE_VERSION "0.1.0"
#endif

#define HISTORY_DEFAULT 20
#define HISTORY_MAX     1000

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* cut to fit: reports carry paths that can be longer than the protocol's fields */
static void copy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int fail(struct ctl_reply *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct ctl_reply *rep, const char *fmt, ...)
{
	va_list ap;

	rep->ok = false;
	va_start(ap, fmt);
	vsnprintf(rep->error, sizeof(rep->error), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- events ---- */

void ctlsrv_publish(struct hostd *h, const char *kind, const struct vm *vm, const char *fmt, ...)
{
	struct ctl_event e = {0};
	va_list ap;

	if (!h->ctl)
		return;
	snprintf(e.kind, sizeof(e.kind), "%s", kind);
	e.time_ms = wall_ms();
	if (vm) {
		snprintf(e.vm, sizeof(e.vm), "%s", vm->name);
		snprintf(e.uuid, sizeof(e.uuid), "%s", vm->uuid);
	}
	va_start(ap, fmt);
	vsnprintf(e.text, sizeof(e.text), fmt, ap);
	va_end(ap);
	control_publish(h->ctl, &e);
}

void ctlsrv_on_record(void *user, const struct vm *vm, const struct decision *d,
                      const char *outcome, const char *detail)
{
	struct hostd *h = user;
	struct ctl_event e = {0};
	struct ctl_record *r = &e.record;

	if (!h->ctl)
		return;
	snprintf(e.kind, sizeof(e.kind), "decision");
	e.time_ms = wall_ms();
	snprintf(e.vm, sizeof(e.vm), "%s", vm->name);
	snprintf(e.uuid, sizeof(e.uuid), "%s", vm->uuid);
	e.has_record = true;
	r->time_ms = e.time_ms;
	snprintf(r->vm, sizeof(r->vm), "%s", vm->name);
	snprintf(r->uuid, sizeof(r->uuid), "%s", vm->uuid);
	snprintf(r->action, sizeof(r->action), "%s", policy_action_name(d->action));
	snprintf(r->reason, sizeof(r->reason), "%s", policy_reason_name(d->reason));
	snprintf(r->outcome, sizeof(r->outcome), "%s", outcome);
	r->vcpus_from = d->vcpus_from;
	r->vcpus_to = d->vcpus_to;
	r->mem_from_kib = d->mem_from_kib;
	r->mem_to_kib = d->mem_to_kib;
	snprintf(r->text, sizeof(r->text), "%s", d->text);
	snprintf(r->detail, sizeof(r->detail), "%s", detail ? detail : "");
	control_publish(h->ctl, &e);
}

/* ---- runtime overrides (vscalectl set) ---- */

void ctlsrv_apply_overrides(struct vm *vm)
{
	char copy[CTL_TEXT_LEN * 2], err[256], *save = NULL;

	if (!vm->overrides)
		return;
	snprintf(copy, sizeof(copy), "%s", vm->overrides);
	for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(t, '=');

		if (eq) {
			*eq = '\0';
			/* each was checked when set; a reload clears them */
			hconf_policy_set(&vm->policy, t, eq + 1, err, sizeof(err));
		}
	}
}

/* "key=value key=value" with key replaced or appended */
static int put_override(struct vm *vm, const char *key, const char *value)
{
	char out[CTL_TEXT_LEN * 2] = "", copy[CTL_TEXT_LEN * 2], *save = NULL;
	size_t klen = strlen(key), n = 0;
	char *s;

	snprintf(copy, sizeof(copy), "%s", vm->overrides ? vm->overrides : "");
	for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
		if (!(strncmp(t, key, klen) == 0 && t[klen] == '='))
			n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", n ? " " : "", t);
	if (n + klen + strlen(value) + 3 > sizeof(out))
		return -ENOSPC;
	snprintf(out + n, sizeof(out) - n, "%s%s=%s", n ? " " : "", key, value);
	s = strdup(out);
	if (!s)
		return -ENOMEM;
	free(vm->overrides);
	vm->overrides = s;
	return 0;
}

/* ---- requests ---- */

static struct vm *find(struct hostd *h, const char *which)
{
	for (size_t i = 0; i < h->nvms; i++)
		if (strcmp(h->vms[i]->name, which) == 0 || strcasecmp(h->vms[i]->uuid, which) == 0)
			return h->vms[i];
	return NULL;
}

static struct vm *need_vm(struct hostd *h, const struct ctl_request *rq, struct ctl_reply *rep)
{
	struct vm *vm;

	if (!rq->vm[0]) {
		fail(rep, "%s: which VM? (a name or UUID)", ctl_op_name(rq->op));
		return NULL;
	}
	vm = find(h, rq->vm);
	if (!vm)
		fail(rep,
		     "no running VM '%s' is managed by vscale-hostd (vscalectl list shows them)",
		     rq->vm);
	return vm;
}

static void fill_host(struct hostd *h, struct ctl_host *ret)
{
	const struct host_conf *hc = &h->conf->host;
	struct host_view hv;

	memset(ret, 0, sizeof(*ret));
	snprintf(ret->version, sizeof(ret->version), "%s", VSCALE_VERSION);
	ret->uptime_ms = util_now_ms() - h->start_ms;
	copy(ret->uri, sizeof(ret->uri), hc->uri);
	ret->connected = h->virt_up;
	ret->dry_run = h->dry_run;
	copy(ret->config, sizeof(ret->config), h->conf_path);
	ret->vms = (uint32_t)h->nvms;
	for (size_t i = 0; i < h->nvms; i++)
		ret->vms_streaming += h->vms[i]->hello;
	ret->cpus = h->node.cpus;
	ret->mem_total_kib = hc->mem_total_kib ? hc->mem_total_kib : h->node.mem_total_kib;
	ret->vcpus_allocated = h->alloc.vcpus;
	ret->mem_allocated_kib = h->alloc.mem_kib;
	hostview_get(h, &hv);
	ret->vcpus_free = hv.vcpus_free;
	ret->mem_free_kib = hv.mem_free_kib;
	ret->rejected_frames = h->rejected;
	copy(ret->decision_log, sizeof(ret->decision_log), h->dlog_path);
}

/* report_vm() plus what only hostd knows: whether the VM is on the move */
static void report(const struct hostd *h, const struct vm *vm, uint64_t now_ms, struct ctl_vm *ret)
{
	report_vm(vm, now_ms, ret);
	if (h->mig && migrate_moving(h->mig, vm->uuid))
		snprintf(ret->state, sizeof(ret->state), "migrating");
	else if (h->mig && migrate_busy(h->mig, vm->uuid))
		snprintf(ret->state, sizeof(ret->state), "probing-peers");
}

static int do_list(struct hostd *h, const struct ctl_request *rq, struct ctl_reply *rep)
{
	uint64_t now = util_now_ms();

	if (h->nvms && !(rep->vms = calloc(h->nvms, sizeof(*rep->vms))))
		return fail(rep, "out of memory");
	for (size_t i = 0; i < h->nvms; i++)
		report(h, h->vms[i], now, &rep->vms[i]);
	rep->nvms = h->nvms;
	return 0;
}

static int do_show(struct hostd *h, const struct ctl_request *rq, struct ctl_reply *rep)
{
	struct vm *vm = need_vm(h, rq, rep);

	if (!vm)
		return -ENOENT;
	rep->vms = calloc(1, sizeof(*rep->vms));
	if (!rep->vms)
		return fail(rep, "out of memory");
	report(h, vm, util_now_ms(), rep->vms);
	rep->nvms = 1;
	return 0;
}

static int do_history(struct hostd *h, const struct ctl_request *rq, struct ctl_reply *rep)
{
	struct vm *vm = need_vm(h, rq, rep);
	size_t max = rq->count ? rq->count : HISTORY_DEFAULT, n = 0;
	int r;

	if (!vm)
		return -ENOENT;
	if (max > HISTORY_MAX)
		max = HISTORY_MAX;
	rep->records = calloc(max, sizeof(*rep->records));
	if (!rep->records)
		return fail(rep, "out of memory");
	r = declog_read(h->dlog_path, vm->uuid, rep->records, max, &n);
	if (r == -ENOENT)
		n = 0; /* nothing decided yet */
	else if (r < 0)
		return fail(rep, "decision log %s: %s", h->dlog_path, strerror(-r));
	rep->nrecords = n;
	return 0;
}

static int do_pause(struct hostd *h, const struct ctl_request *rq, struct ctl_reply *rep)
{
	struct vm *vm = need_vm(h, rq, rep);
	bool pause = rq->op == CTL_PAUSE;

	if (!vm)
		return -ENOENT;
	if (vm->paused == pause) {
		snprintf(rep->message, sizeof(rep->message), "vm '%s': already %s", vm->name,
		         pause ? "paused" : "scaling");
		return 0;
	}
	vm->paused = pause;
	actuate_save_state(&h->act, vm, util_now_ms());
	log_info("vm '%s': scaling %s by the operator", vm->name, pause ? "paused" : "resumed");
	ctlsrv_publish(h, pause ? "paused" : "resumed", vm, "by the operator");
	snprintf(rep->message, sizeof(rep->message),
	         pause ? "vm '%s': scaling paused; it keeps its size until resumed"
	               : "vm '%s': scaling resumed",
	         vm->name);
	return 0;
}

static int do_set(struct hostd *h, const struct ctl_request *rq, struct ctl_reply *rep)
{
	struct vm *vm = need_vm(h, rq, rep);
	struct policy p;
	char err[512];

	if (!vm)
		return -ENOENT;
	if (rq->nset == 0)
		return fail(rep, "set: nothing to set (KEY=VALUE...)");
	p = vm->policy;
	for (size_t i = 0; i < rq->nset; i++) {
		char kv[CTL_TEXT_LEN], *eq;

		snprintf(kv, sizeof(kv), "%s", rq->set[i]);
		eq = strchr(kv, '=');
		if (!eq || eq == kv || strchr(kv, ' '))
			return fail(rep, "'%s' is not KEY=VALUE", rq->set[i]);
		*eq = '\0';
		if (hconf_policy_set(&p, kv, eq + 1, err, sizeof(err)) < 0)
			return fail(rep, "%s", err);
	}
	if (policy_validate(&p, err, sizeof(err)) < 0)
		return fail(rep, "vm '%s': %s", vm->name, err);
	for (size_t i = 0; i < rq->nset; i++) {
		char kv[CTL_TEXT_LEN], *eq;

		snprintf(kv, sizeof(kv), "%s", rq->set[i]);
		eq = strchr(kv, '=');
		*eq = '\0';
		if (put_override(vm, kv, eq + 1) < 0)
			return fail(rep, "vm '%s': too many overrides; put them in a [vm] section",
			            vm->name);
	}
	domains_configure_vm(h, vm);
	policy_state_reset_runs(&vm->st);
	log_info("vm '%s': runtime override %s", vm->name, vm->overrides);
	ctlsrv_publish(h, "set", vm, "%s", vm->overrides);
	snprintf(rep->message, sizeof(rep->message),
	         "vm '%s': %s (until the configuration is reloaded)", vm->name, vm->overrides);
	return 0;
}

static int do_reload(struct hostd *h, const struct ctl_request *rq, struct ctl_reply *rep)
{
	char err[1024];

	if (hostd_reload(h, err, sizeof(err)) < 0) {
		log_err("reload: %s; keeping the running configuration", err);
		return fail(rep, "%s; the running configuration is unchanged", err);
	}
	snprintf(rep->message, sizeof(rep->message), "configuration reloaded from %s",
	         h->conf_path);
	return 0;
}

/* Makes a defined domain scalable: its persistent XML through domxml_enable(), defined unless a
 * dry run. The reply carries both XMLs for the operator's diff. */
static int do_enable(struct hostd *h, const struct ctl_request *rq, struct ctl_reply *rep)
{
	struct domxml_enable_opts o = {.max_vcpus = rq->max_vcpus, .max_mem_kib = rq->max_mem_kib};
	char err[512];
	int r;

	if (!rq->vm[0])
		return fail(rep, "enable: which domain? (a name or UUID)");
	if (!h->virt_up)
		return fail(rep, "not connected to %s", h->conf->host.uri);
	r = virt_persistent_xml(h->virt, rq->vm, &rep->old_xml);
	if (r < 0)
		return fail(rep, "%s: %s", rq->vm, virt_last_error());
	r = domxml_enable(rep->old_xml, &o, &rep->new_xml, &rep->changes, err, sizeof(err));
	if (r < 0)
		return fail(rep, "%s: %s", rq->vm, err);
	if (strncmp(rep->changes, "already scalable", 16) == 0) {
		snprintf(rep->message, sizeof(rep->message), "domain '%s' is already scalable",
		         rq->vm);
		return 0;
	}
	if (rq->dry_run) {
		snprintf(rep->message, sizeof(rep->message), "dry run: domain '%s' not changed",
		         rq->vm);
		return 0;
	}
	if (h->dry_run)
		return fail(rep, "vscale-hostd runs with --dry-run: domain '%s' not changed",
		            rq->vm);
	if (virt_define_xml(h->virt, rep->new_xml) < 0)
		return fail(rep, "%s: libvirt refused the new definition: %s", rq->vm,
		            virt_last_error());
	log_info("domain '%s': made scalable (takes effect at its next boot)", rq->vm);
	snprintf(rep->message, sizeof(rep->message),
	         "domain '%s' is now scalable; the change takes effect at its next boot "
	         "(shut it down and start it again)",
	         rq->vm);
	return 0;
}

static void on_request(void *user, const struct ctl_request *rq, struct ctl_reply *rep)
{
	struct hostd *h = user;
	int r = 0;

	rep->ok = true;
	switch (rq->op) {
	case CTL_STATUS:
		break;
	case CTL_LIST:
		r = do_list(h, rq, rep);
		break;
	case CTL_SHOW:
		r = do_show(h, rq, rep);
		break;
	case CTL_HISTORY:
		r = do_history(h, rq, rep);
		break;
	case CTL_PAUSE:
	case CTL_RESUME:
		r = do_pause(h, rq, rep);
		break;
	case CTL_SET:
		r = do_set(h, rq, rep);
		break;
	case CTL_RELOAD:
		r = do_reload(h, rq, rep);
		break;
	case CTL_ENABLE:
		r = do_enable(h, rq, rep);
		break;
	}
	if (r < 0)
		rep->ok = false;
	rep->has_host = true;
	fill_host(h, &rep->host);
	log_debug("control: %s %s: %s", ctl_op_name(rq->op), rq->vm, rep->ok ? "ok" : rep->error);
}

const struct control_ops ctlsrv_control_ops = {.request = on_request};

/* ---- /metrics ---- */

static void metrics_host(void *user, struct ctl_host *ret)
{
	fill_host(user, ret);
}

static bool metrics_vm(void *user, size_t i, struct ctl_vm *ret)
{
	struct hostd *h = user;

	if (i >= h->nvms)
		return false;
	report(h, h->vms[i], util_now_ms(), ret);
	return true;
}

static uint64_t metrics_decisions(void *user, enum action a, enum reason r)
{
	struct hostd *h = user;

	return h->decisions[a][r];
}

const struct metrics_ops ctlsrv_metrics_ops = {
        .host = metrics_host, .vm = metrics_vm, .decisions = metrics_decisions};
