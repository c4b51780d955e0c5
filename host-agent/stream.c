/* Guest frames: decodes each one, feeds the VM's session (vm.c) and the operation in flight
 * (actuate.c), asks the policy on every sample and hands its decision to actuate.c and, when the
 * host is full, to migrate.c. Guest bytes are hostile: a bad frame is counted and rejected, with
 * a rate-limited warning. */
#include "stream.h"

#include "actuate.h"
#include "frame.h"
#include "guestlink.h"
#include "hostd.h"
#include "hostview.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "policy.h"
#include "stats.h"
#include "util.h"
#include "vm.h"
#include "wire.h"

/* a VM's guestlink points at h->link_ops */
static struct hostd *hostd_of(const struct guestlink *gl)
{
	return container_of(gl->ops, struct hostd, link_ops);
}

static void decide(struct hostd *h, struct vm *vm, uint64_t now)
{
	struct vm_view view;
	struct host_view host;
	struct decision d;

	if (!h->virt_up)
		return; /* no actions without libvirt; the stream keeps the policy state warm */
	vm_view(vm, &view);
	view.busy = view.busy || migrate_busy(h->mig, vm->uuid); /* no scaling while it migrates */
	hostview_get(h, &host);
	policy_decide(&vm->policy, &view, &host, now, &d);
	if (d.action < METRICS_ACTIONS && d.reason < METRICS_REASONS)
		h->decisions[d.action][d.reason]++;
	actuate_decision(&h->act, vm, &d, now);
	if (d.reason == REASON_HOST_FULL)
		migrate_on_host_full(h->mig, vm, &view, &d, now);
	if (d.action != ACTION_HOLD)
		hostview_refresh(h, now); /* the next VM's decision must see this grant */
}

static void reject(struct hostd *h, struct vm *vm, const char *what, uint64_t now)
{
	vm->n.rejected++;
	h->rejected++;
	if (log_ratelimit_ok(&vm->warn_rl, now))
		log_warn("vm '%s': rejected %s from the guest (%llu so far)", vm->name, what,
		         (unsigned long long)vm->n.rejected);
}

/* The sample's age compares the guest's CLOCK_MONOTONIC with ours: it means something only
 * when both share a clock, as simulated guests on this host do (bench/fanin.sh); for a real
 * VM it is noise, so nothing but the stats line uses it. */
static void note_latency(struct hostd *h, const struct guestlink *gl, const struct sample *s)
{
	uint64_t now_us = util_now_us();

	stats_add(&h->decide_us, now_us - gl->rx_us);
	if (s->mono_ms && s->mono_ms <= now_us / 1000)
		stats_add(&h->age_ms, now_us / 1000 - s->mono_ms);
}

static void on_hello(struct hostd *h, struct vm *vm, const struct frame *f, uint64_t now)
{
	struct hello hl;

	if (wire_decode_hello(f->payload, f->len, &hl) < 0 || vm_take_hello(vm, &hl) < 0) {
		reject(h, vm, "a Hello", now);
		return;
	}
	/* a guest can say Hello in a loop: the log must not follow it */
	if (log_ratelimit_ok(&vm->hello_rl, now))
		log_info("vm '%s': guest agent %s connected (boot %s)", vm->name, hl.agent_version,
		         hl.boot_id);
	ctlsrv_publish(h, "guest-up", vm, "guest agent %s", hl.agent_version);
	actuate_on_session(&h->act, vm, now);
}

static void on_sample(struct hostd *h, struct vm *vm, const struct frame *f, uint64_t now)
{
	struct sample s;

	if (wire_decode_sample(f->payload, f->len, &s) < 0) {
		reject(h, vm, "a sample with bad values", now);
		return;
	}
	if (vm_take_sample(vm, &s, now) < 0) {
		reject(h, vm, "a sample out of sequence or before Hello", now);
		return;
	}
	actuate_on_sample(&h->act, vm, now);
	decide(h, vm, now);
	note_latency(h, &vm->link, &s);
}

static void on_frame(struct guestlink *gl, const struct frame *f)
{
	struct hostd *h = hostd_of(gl);
	struct vm *vm = container_of(gl, struct vm, link);
	uint64_t now = util_now_ms();
	struct reply r;

	switch (f->type) {
	case FRAME_HELLO:
		on_hello(h, vm, f, now);
		break;
	case FRAME_SAMPLE:
		on_sample(h, vm, f, now);
		break;
	case FRAME_REPLY:
		if (wire_decode_reply(f->payload, f->len, &r) < 0) {
			reject(h, vm, "a reply", now);
			return;
		}
		actuate_on_reply(&h->act, vm, &r, now);
		break;
	default:
		reject(h, vm, "a frame of a type guests do not send", now);
		break;
	}
}

static void on_link_down(struct guestlink *gl)
{
	struct vm *vm = container_of(gl, struct vm, link);

	if (vm->hello)
		ctlsrv_publish(hostd_of(gl), "guest-down", vm, "guest stream closed");
	vm->hello = false;
	log_info("vm '%s': guest stream closed; holding until it is back", vm->name);
}

/* the stream brought no good frame for too long: guestlink drops it and retries with backoff */
static void on_junk(struct guestlink *gl, const struct frame_stats *since)
{
	struct vm *vm = container_of(gl, struct vm, link);

	/* not a frame: the decoder's counters (stats line) have the bad frames already */
	if (log_ratelimit_ok(&vm->warn_rl, util_now_ms()))
		log_warn("vm '%s': a stream without a good frame (%llu bad frames, %llu bytes that "
		         "do not frame); reconnecting",
		         vm->name, (unsigned long long)since->bad_frames,
		         (unsigned long long)since->skipped_bytes);
}

void stream_init(struct hostd *h)
{
	h->link_ops = (struct guestlink_ops){
	        .frame = on_frame,
	        .down = on_link_down,
	        .junk = on_junk,
	};
}

void stream_log_stats(struct hostd *h)
{
	char decide_s[128], age_s[128];
	uint64_t samples = 0, bad = 0, skipped = 0;

	for (size_t i = 0; i < h->nvms; i++) {
		samples += h->vms[i]->n.samples;
		bad += h->vms[i]->link.dec.stats.bad_frames;
		skipped += h->vms[i]->link.dec.stats.skipped_bytes;
	}
	stats_format(&h->decide_us, "us", decide_s, sizeof(decide_s));
	stats_format(&h->age_ms, "ms", age_s, sizeof(age_s));
	log_info("stats: %zu vms, %llu samples, %llu rejected frames (decoder: %llu bad frames, "
	         "%llu bytes skipped); read to decision %s; sample age %s",
	         h->nvms, (unsigned long long)samples, (unsigned long long)h->rejected,
	         (unsigned long long)bad, (unsigned long long)skipped, decide_s, age_s);
	stats_init(&h->decide_us);
	stats_init(&h->age_ms);
}
