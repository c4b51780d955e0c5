/* Decisions into actions. Growth acts at once (libvirt first, the guest onlines what appears);
 * shrinking asks the guest first and resizes only after its ack, by what it actually freed.
 * Refused or partial shrinks are recorded and left to the cooldown, never retried in a loop.
 * vCPUs are taken away by offlining in the guest; they stay plugged (QEMU 7.2 under TCG cannot
 * unplug, PLATFORM.md), and a later scale-up onlines them again before plugging more. */
#include "actuate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"
#include "state.h"
#include "wire.h"

#define KEEP_OFFLINE_MS (24u * 3600u * 1000u) /* guest-side hold for offlined vCPUs */

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Every decision worth keeping: the decision log, and whoever listens (the event socket). */
static void note(struct actuate *a, struct vm *vm, const struct decision *d, const char *outcome,
                 const char *detail)
{
	declog_write(a->dlog, vm->name, vm->uuid, d, outcome, detail);
	if (a->on_record)
		a->on_record(a->user, vm, d, outcome, detail);
}

/* The VM's last-action line for status: a human summary, cut to fit. */
static void set_last_action(struct vm *vm, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void set_last_action(struct vm *vm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vm->last_action, sizeof(vm->last_action), fmt, ap);
	va_end(ap);
}

static double gib(uint64_t kib)
{
	return (double)kib / (1024.0 * 1024.0);
}

static void describe(const struct decision *d, char *buf, size_t cap)
{
	if (d->action == ACTION_VCPU_UP || d->action == ACTION_VCPU_DOWN)
		snprintf(buf, cap, "vcpus %u -> %u (%s)", d->vcpus_from, d->vcpus_to, d->text);
	else if (d->action == ACTION_MEM_UP || d->action == ACTION_MEM_DOWN)
		snprintf(buf, cap, "memory %.2f GiB -> %.2f GiB (%s)", gib(d->mem_from_kib),
		         gib(d->mem_to_kib), d->text);
	else
		snprintf(buf, cap, "hold (%s)", d->text);
}

/* Ends the operation in flight: counts, logs, declogs, persists, forgets stale runs. */
static void finish(struct actuate *a, struct vm *vm, const char *outcome, const char *detail,
                   uint64_t now_ms)
{
	const struct decision *d = &vm->op.decision;
	char what[400];

	describe(d, what, sizeof(what));
	if (!strcmp(outcome, "done"))
		vm->n.ops_ok++;
	else if (!strcmp(outcome, "refused"))
		vm->n.ops_refused++;
	else if (!strcmp(outcome, "timeout"))
		vm->n.ops_timeout++;
	else
		vm->n.ops_failed++;
	set_last_action(vm, "%s: %s%s%s", outcome, what, detail && *detail ? ": " : "",
	                detail ? detail : "");
	if (!strcmp(outcome, "done"))
		log_info("vm '%s': %s: done in %llu ms", vm->name, what,
		         (unsigned long long)(now_ms - vm->op.started_ms));
	else
		log_warn("vm '%s': %s: %s%s%s", vm->name, what, outcome, detail ? ": " : "",
		         detail ? detail : "");
	note(a, vm, d, outcome, detail);
	memset(&vm->op, 0, sizeof(vm->op));
	policy_state_reset_runs(&vm->st);
	actuate_save_state(a, vm, now_ms);
}

static int send_request(struct vm *vm, struct request *rq)
{
	uint8_t buf[256];
	int n;

	rq->id = vm->next_request_id++;
	n = wire_encode_request(rq, buf, sizeof(buf));
	if (n < 0)
		return n;
	return guestlink_send(&vm->link, FRAME_REQUEST, buf, (size_t)n);
}

static void start_op(struct actuate *a, struct vm *vm, enum op_kind kind, const struct decision *d,
                     uint64_t now_ms)
{
	vm->op.kind = kind;
	vm->op.started_ms = now_ms;
	vm->op.deadline_ms = now_ms + a->host->op_timeout_ms;
	vm->op.vcpus_from = d->vcpus_from;
	vm->op.vcpus_to = d->vcpus_to;
	vm->op.mem_from_kib = d->mem_from_kib;
	vm->op.mem_to_kib = d->mem_to_kib;
	vm->op.guest_total_before_kib =
	        SAMPLE_HAS(&vm->st.newest, SF_MEM_TOTAL) ? vm->st.newest.mem_total_kib : 0;
	vm->op.decision = *d;
}

/* Persists the grant a vCPU operation about to start will reach (and its cooldown stamp): a hostd
 * killed before the operation ends then takes it up where it stands instead of restating the old
 * grant, which would offline what was just plugged and plug it again. A grant above what is
 * plugged is not loaded back (actuate_load_state); finish() saves what came of it. */
static void save_intent(struct actuate *a, struct vm *vm, uint32_t vcpus, uint64_t now_ms)
{
	uint32_t granted = vm->vcpus;

	vm->vcpus = vcpus;
	actuate_save_state(a, vm, now_ms);
	vm->vcpus = granted;
}

static void refresh_dom(struct actuate *a, struct vm *vm)
{
	struct virt_dom d;

	if (virt_lookup(a->virt, vm->uuid, &d) == 0)
		vm_update_dom(vm, &d);
}

static void vcpu_up(struct actuate *a, struct vm *vm, const struct decision *d, uint64_t now_ms)
{
	char err[300];
	int r;

	start_op(a, vm, OP_VCPU_UP, d, now_ms);
	vm->last_vcpu_up_ms = now_ms;
	save_intent(a, vm, d->vcpus_to, now_ms);
	if (vm->dom.vcpus_cur >= d->vcpus_to) {
		/* plugged already (offlined by an earlier scale-down): the guest onlines them */
		struct request rq = {.kind = REQ_SET_ONLINE_VCPUS,
		                     .vcpus = d->vcpus_to,
		                     .hold_ms = KEEP_OFFLINE_MS};

		r = send_request(vm, &rq);
		vm->op.request_id = rq.id;
		if (r < 0) {
			snprintf(err, sizeof(err), "guest request not sent: %s", strerror(-r));
			finish(a, vm, "failed", err, now_ms);
		}
		return;
	}
	r = virt_set_vcpus(a->virt, vm->uuid, d->vcpus_to, a->host->persistent);
	if (r < 0) {
		snprintf(err, sizeof(err), "libvirt: %s", virt_last_error());
		finish(a, vm, "failed", err, now_ms);
		return;
	}
	refresh_dom(a, vm);
	/* done when the guest reports them online (actuate_on_sample) */
}

static void vcpu_down(struct actuate *a, struct vm *vm, const struct decision *d, uint64_t now_ms)
{
	struct request rq = {
	        .kind = REQ_SET_ONLINE_VCPUS, .vcpus = d->vcpus_to, .hold_ms = KEEP_OFFLINE_MS};
	char err[300];
	int r;

	start_op(a, vm, OP_VCPU_DOWN, d, now_ms);
	vm->last_vcpu_down_ms = now_ms;
	save_intent(a, vm, d->vcpus_to, now_ms);
	r = send_request(vm, &rq);
	vm->op.request_id = rq.id;
	if (r < 0) {
		snprintf(err, sizeof(err), "guest request not sent: %s", strerror(-r));
		finish(a, vm, "failed", err, now_ms);
	}
}

static void mem_up(struct actuate *a, struct vm *vm, const struct decision *d, uint64_t now_ms)
{
	char err[300];
	int r;

	start_op(a, vm, OP_MEM_UP, d, now_ms);
	vm->last_mem_up_ms = now_ms;
	actuate_save_state(a, vm, now_ms); /* a hostd killed now keeps the cooldown at restart */
	r = virt_set_memory(a->virt, vm->uuid, d->mem_to_kib, a->host->persistent);
	if (r < 0) {
		snprintf(err, sizeof(err), "libvirt: %s", virt_last_error());
		finish(a, vm, "failed", err, now_ms);
		return;
	}
	refresh_dom(a, vm);
	/* done when the guest's MemTotal grows (actuate_on_sample) */
}

static void mem_down(struct actuate *a, struct vm *vm, const struct decision *d, uint64_t now_ms)
{
	uint64_t total = vm->op.guest_total_before_kib;
	uint64_t cut = d->mem_from_kib - d->mem_to_kib;
	struct request rq = {.kind = REQ_SHRINK_MEMORY,
	                     .mem_margin_kib = vm->policy.mem_margin_kib};
	char err[300];
	int r;

	start_op(a, vm, OP_MEM_DOWN, d, now_ms);
	vm->last_mem_down_ms = now_ms;
	actuate_save_state(a, vm, now_ms);
	total = vm->op.guest_total_before_kib;
	if (total <= cut) {
		finish(a, vm, "failed", "no MemTotal from the guest", now_ms);
		return;
	}
	rq.mem_total_kib = total - cut; /* the guest's terms: its MemTotal after the cut */
	r = send_request(vm, &rq);
	vm->op.request_id = rq.id;
	if (r < 0) {
		snprintf(err, sizeof(err), "guest request not sent: %s", strerror(-r));
		finish(a, vm, "failed", err, now_ms);
	}
}

void actuate_decision(struct actuate *a, struct vm *vm, const struct decision *d, uint64_t now_ms)
{
	char what[400];

	vm->n.decisions[d->action]++;
	if (d->action == ACTION_HOLD) {
		/* log a hold only when its reason changes to one an operator must know about */
		if ((d->reason == REASON_HOST_FULL || d->reason == REASON_SATURATED ||
		     d->reason == REASON_NO_FIT) &&
		    vm->last_decision.reason != d->reason) {
			log_info("vm '%s': hold: %s", vm->name, d->text);
			note(a, vm, d, "hold", NULL);
		}
		vm->last_decision = *d;
		return;
	}
	vm->last_decision = *d;
	describe(d, what, sizeof(what));
	if (a->dry_run) {
		log_info("vm '%s': %s [dry run]", vm->name, what);
		note(a, vm, d, "dry-run", NULL);
		set_last_action(vm, "dry-run: %s", what);
		/* pace dry-run decisions by the same cooldowns */
		if (d->action == ACTION_VCPU_UP)
			vm->last_vcpu_up_ms = now_ms;
		else if (d->action == ACTION_VCPU_DOWN)
			vm->last_vcpu_down_ms = now_ms;
		else if (d->action == ACTION_MEM_UP)
			vm->last_mem_up_ms = now_ms;
		else
			vm->last_mem_down_ms = now_ms;
		policy_state_reset_runs(&vm->st);
		return;
	}
	log_info("vm '%s': %s", vm->name, what);
	note(a, vm, d, "started", NULL);
	switch (d->action) {
	case ACTION_VCPU_UP:
		vcpu_up(a, vm, d, now_ms);
		break;
	case ACTION_VCPU_DOWN:
		vcpu_down(a, vm, d, now_ms);
		break;
	case ACTION_MEM_UP:
		mem_up(a, vm, d, now_ms);
		break;
	case ACTION_MEM_DOWN:
		mem_down(a, vm, d, now_ms);
		break;
	case ACTION_HOLD:
		break;
	}
}

static void on_vcpu_reply(struct actuate *a, struct vm *vm, const struct reply *r, uint64_t now_ms)
{
	char detail[300];

	if (r->status == REPLY_ACK || r->status == REPLY_PARTIAL) {
		uint32_t online = r->has_vcpus_online ? r->vcpus_online : vm->op.vcpus_to;

		/* never grant more than plugged, never fewer than one */
		if (online > vm->dom.vcpus_cur)
			online = vm->dom.vcpus_cur;
		vm->vcpus = online ? online : 1;
		snprintf(detail, sizeof(detail), "%u online in the guest%s%s", vm->vcpus,
		         r->reason[0] ? "; " : "", r->reason);
		finish(a, vm, r->status == REPLY_ACK ? "done" : "partial", detail, now_ms);
		return;
	}
	snprintf(detail, sizeof(detail), "guest: %s", r->reason[0] ? r->reason : "no reason given");
	finish(a, vm, r->status == REPLY_REFUSED ? "refused" : "failed", detail, now_ms);
}

static void on_mem_reply(struct actuate *a, struct vm *vm, const struct reply *r, uint64_t now_ms)
{
	uint64_t from = vm->op.mem_from_kib, to = vm->op.mem_to_kib, granule;
	char detail[300];
	int rc;

	if (r->status != REPLY_ACK && r->status != REPLY_PARTIAL) {
		snprintf(detail, sizeof(detail), "guest: %s",
		         r->reason[0] ? r->reason : "no reason given");
		finish(a, vm, r->status == REPLY_REFUSED ? "refused" : "failed", detail, now_ms);
		return;
	}
	if (r->status == REPLY_PARTIAL) {
		/* take away only what the guest freed, rounded up to whole blocks */
		uint64_t freed = r->has_mem_offlined ? r->mem_offlined_kib : 0;

		granule = vm->dom.mem.granule_kib ? vm->dom.mem.granule_kib : 1024;
		freed = freed / granule * granule;
		if (freed == 0) {
			finish(a, vm, "refused", "guest freed nothing", now_ms);
			return;
		}
		to = from - (freed < from - to ? freed : from - to);
		vm->op.decision.mem_to_kib = to;
	}
	rc = virt_set_memory(a->virt, vm->uuid, to, a->host->persistent);
	if (rc < 0) {
		snprintf(detail, sizeof(detail), "libvirt: %s", virt_last_error());
		finish(a, vm, "failed", detail, now_ms);
		return;
	}
	refresh_dom(a, vm);
	snprintf(detail, sizeof(detail), "guest offlined %llu MiB%s%s",
	         (unsigned long long)(r->has_mem_offlined ? r->mem_offlined_kib / 1024 : 0),
	         r->reason[0] ? "; " : "", r->reason);
	finish(a, vm, r->status == REPLY_ACK ? "done" : "partial", detail, now_ms);
}

void actuate_on_reply(struct actuate *a, struct vm *vm, const struct reply *r, uint64_t now_ms)
{
	if (vm->op.kind == OP_NONE || r->id != vm->op.request_id) {
		log_debug("vm '%s': reply %llu matches no request in flight", vm->name,
		          (unsigned long long)r->id);
		return;
	}
	if (vm->op.kind == OP_VCPU_UP || vm->op.kind == OP_VCPU_DOWN)
		on_vcpu_reply(a, vm, r, now_ms);
	else if (vm->op.kind == OP_MEM_DOWN)
		on_mem_reply(a, vm, r, now_ms);
}

void actuate_on_sample(struct actuate *a, struct vm *vm, uint64_t now_ms)
{
	const struct sample *s = &vm->st.newest;
	char detail[200];

	if (vm->op.kind == OP_VCPU_UP && vm->op.request_id == 0 && SAMPLE_HAS(s, SF_CPU_ONLINE) &&
	    s->cpus_online >= vm->op.vcpus_to) {
		vm->vcpus = vm->op.vcpus_to;
		snprintf(detail, sizeof(detail), "%u online in the guest", s->cpus_online);
		finish(a, vm, "done", detail, now_ms);
	} else if (vm->op.kind == OP_MEM_UP && SAMPLE_HAS(s, SF_MEM_TOTAL) &&
	           vm->op.guest_total_before_kib &&
	           s->mem_total_kib >= vm->op.guest_total_before_kib +
	                                       (vm->op.mem_to_kib - vm->op.mem_from_kib) / 2) {
		snprintf(detail, sizeof(detail), "guest MemTotal %llu MiB",
		         (unsigned long long)s->mem_total_kib / 1024);
		finish(a, vm, "done", detail, now_ms);
	}
}

void actuate_on_session(struct actuate *a, struct vm *vm, uint64_t now_ms)
{
	if (vm->op.kind != OP_NONE && vm->op.request_id != 0)
		finish(a, vm, "failed", "guest session restarted before it replied", now_ms);
	if (vm->vcpus < vm->dom.vcpus_cur && !a->dry_run) {
		/* a rebooted or restarted guest onlines every plugged CPU: restate the grant */
		struct request rq = {.kind = REQ_SET_ONLINE_VCPUS,
		                     .vcpus = vm->vcpus,
		                     .hold_ms = KEEP_OFFLINE_MS};

		if (send_request(vm, &rq) == 0)
			log_info("vm '%s': asked the guest to keep %u of %u vCPUs online", vm->name,
			         vm->vcpus, vm->dom.vcpus_cur);
	}
}

void actuate_abort(struct actuate *a, struct vm *vm, const char *why, uint64_t now_ms)
{
	if (vm->op.kind != OP_NONE)
		finish(a, vm, "failed", why, now_ms);
}

void actuate_check_timeout(struct actuate *a, struct vm *vm, uint64_t now_ms)
{
	if (vm->op.kind == OP_NONE || now_ms < vm->op.deadline_ms)
		return;
	refresh_dom(a, vm);
	if (vm->op.kind == OP_VCPU_UP && vm->op.request_id == 0)
		vm->vcpus =
		        vm->dom.vcpus_cur < vm->op.vcpus_to ? vm->dom.vcpus_cur : vm->op.vcpus_to;
	finish(a, vm, "timeout", "not confirmed by the guest in time", now_ms);
}

void actuate_in_flight(const struct vm *vm, uint64_t *ret_vcpus, uint64_t *ret_mem_kib)
{
	*ret_vcpus = 0;
	*ret_mem_kib = 0;
	if (vm->op.kind == OP_VCPU_UP && vm->op.vcpus_to > vm->dom.vcpus_cur)
		*ret_vcpus = vm->op.vcpus_to - vm->dom.vcpus_cur;
	if (vm->op.kind == OP_MEM_UP && vm->op.mem_to_kib > vm_mem_kib(vm))
		*ret_mem_kib = vm->op.mem_to_kib - vm_mem_kib(vm);
}

void actuate_load_state(struct actuate *a, struct vm *vm, uint64_t now_ms)
{
	struct vm_state s;
	uint64_t wall = wall_ms();

	if (state_load(a->host->state_dir, vm->uuid, &s) < 0)
		return;
	vm->last_vcpu_up_ms = state_wall_to_mono(s.vcpu_up_ms, wall, now_ms);
	vm->last_vcpu_down_ms = state_wall_to_mono(s.vcpu_down_ms, wall, now_ms);
	vm->last_mem_up_ms = state_wall_to_mono(s.mem_up_ms, wall, now_ms);
	vm->last_mem_down_ms = state_wall_to_mono(s.mem_down_ms, wall, now_ms);
	if (s.vcpus_granted && s.vcpus_granted <= vm->dom.vcpus_cur)
		vm->vcpus = s.vcpus_granted;
	snprintf(vm->last_action, sizeof(vm->last_action), "%s", s.last_action);
	vm->paused = s.paused;
}

void actuate_save_state(struct actuate *a, struct vm *vm, uint64_t now_ms)
{
	struct vm_state s = {0};
	uint64_t wall = wall_ms();
	int r;

	if (a->dry_run)
		return;
	s.vcpu_up_ms = state_mono_to_wall(vm->last_vcpu_up_ms, wall, now_ms);
	s.vcpu_down_ms = state_mono_to_wall(vm->last_vcpu_down_ms, wall, now_ms);
	s.mem_up_ms = state_mono_to_wall(vm->last_mem_up_ms, wall, now_ms);
	s.mem_down_ms = state_mono_to_wall(vm->last_mem_down_ms, wall, now_ms);
	s.vcpus_granted = vm->vcpus;
	s.paused = vm->paused;
	snprintf(s.last_action, sizeof(s.last_action), "%s", vm->last_action);
	r = state_save(a->host->state_dir, vm->uuid, &s);
	if (r < 0 && log_ratelimit_ok(&vm->warn_rl, now_ms))
		log_warn("vm '%s': cannot save state in %s: %s", vm->name, a->host->state_dir,
		         strerror(-r));
}
