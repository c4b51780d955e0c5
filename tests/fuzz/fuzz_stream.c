/* libFuzzer target: a guest's byte stream through everything hostd does with it that needs no
 * libvirt: frame decoder -> wire decoders -> session rules (Hello first, rising seq) ->
 * policy_observe() -> policy_decide(), applying each decision as hostd would.
 *
 * Input: byte 0 picks a policy, bytes 1-5 the VM's size, the host's headroom and the host time
 * between samples, byte 6 the chunking; the rest is the stream. Whatever the guest sends, every
 * decision must stay within the policy's bounds and the host's headroom, change one resource
 * in the direction its action says, keep sizes on the memory grid, hold while busy or stale,
 * and carry a terminated reason text. */
#include "fuzz.h"

#include "frame.h"
#include "policy.h"
#include "sample.h"
#include "wire.h"

#define KIB_MIB     1024ull
#define GRANULE_KIB (128 * KIB_MIB)

struct vm_sim {
	struct policy p;
	struct policy_state st;
	struct vm_view view;
	struct host_view host;
	uint64_t now_ms, step_ms;
	bool hello;
	uint64_t last_seq;
};

static void pick_policy(struct policy *p, uint8_t b)
{
	char err[256];

	policy_default(p);
	switch (b % 3) {
	case 0: /* explicit bounds inside the domain's */
		p->vcpus_min = 2;
		p->vcpus_max = 6;
		p->mem_min_kib = 1024 * KIB_MIB;
		p->mem_max_kib = 4096 * KIB_MIB;
		break;
	case 1: /* windows of about a sample, steps of two */
		p->vcpus_min = 1;
		p->vcpus_max = 4;
		p->cpu_up_for_ms = p->cpu_down_for_ms = 1000;
		p->mem_up_for_ms = p->mem_down_for_ms = 1000;
		p->vcpu_cooldown_up_ms = p->vcpu_cooldown_down_ms = 0;
		p->mem_cooldown_up_ms = p->mem_cooldown_down_ms = 0;
		p->vcpu_step_up = p->vcpu_step_down = 2;
		p->mem_step_up_kib = 3 * GRANULE_KIB;
		p->mem_step_down_kib = 2 * GRANULE_KIB;
		p->stale_ms = 3000;
		break;
	default: /* bounds from the domain */
		p->cpu_up_for_ms = 2000;
		p->cpu_down_for_ms = 4000;
		p->mem_up_for_ms = 2000;
		p->mem_down_for_ms = 4000;
		break;
	}
	FUZZ_CHECK(policy_validate(p, err, sizeof(err)) == 0, "test policy invalid: %s", err);
}

static void setup(struct vm_sim *v, struct fuzz_in *in)
{
	memset(v, 0, sizeof(*v));
	pick_policy(&v->p, fuzz_u8(in));
	policy_state_init(&v->st);
	v->view.st = &v->st;
	v->view.vcpus = 1 + fuzz_u8(in) % 8;
	v->view.vcpus_dom_min = 1;
	v->view.vcpus_dom_max = 8;
	v->view.mem_kib = GRANULE_KIB * (4 + fuzz_u8(in) % 61); /* 512 MiB .. 8 GiB */
	v->view.mem_dom_min_kib = 1024 * KIB_MIB;
	v->view.mem_dom_max_kib = 8192 * KIB_MIB;
	v->view.mem_granule_kib = GRANULE_KIB;
	v->host.vcpus_free = (int8_t)fuzz_u8(in) % 12;
	v->host.mem_free_kib = (int64_t)((int8_t)fuzz_u8(in) % 32) * 256 * (int64_t)KIB_MIB;
	v->step_ms = 100 + 10 * (uint64_t)fuzz_u8(in);
	v->now_ms = 1000;
}

/* The bounds policy.h defines: the policy's, 0 meaning the domain's, capped by the domain. */
static void bounds(const struct vm_sim *v, uint32_t *lo, uint32_t *hi, uint64_t *mlo, uint64_t *mhi)
{
	const struct policy *p = &v->p;
	const struct vm_view *w = &v->view;

	*hi = p->vcpus_max && p->vcpus_max < w->vcpus_dom_max ? p->vcpus_max : w->vcpus_dom_max;
	*lo = p->vcpus_min ? p->vcpus_min : w->vcpus_dom_min;
	*lo = *lo < *hi ? *lo : *hi;
	*mhi = p->mem_max_kib && p->mem_max_kib < w->mem_dom_max_kib ? p->mem_max_kib
	                                                             : w->mem_dom_max_kib;
	*mlo = p->mem_min_kib ? p->mem_min_kib : w->mem_dom_min_kib;
	*mlo = *mlo < *mhi ? *mlo : *mhi;
}

static void check_decision(const struct vm_sim *v, const struct decision *d)
{
	const struct vm_view *w = &v->view;
	bool vcpus_same = d->vcpus_to == d->vcpus_from, mem_same = d->mem_to_kib == d->mem_from_kib;
	uint32_t lo, hi;
	uint64_t mlo, mhi;

	bounds(v, &lo, &hi, &mlo, &mhi);
	FUZZ_CHECK(strnlen(d->text, sizeof(d->text)) < sizeof(d->text), "reason not terminated");
	FUZZ_CHECK(d->vcpus_from == w->vcpus && d->mem_from_kib == w->mem_kib,
	           "from %u/%llu is not the allocation %u/%llu", d->vcpus_from,
	           (unsigned long long)d->mem_from_kib, w->vcpus, (unsigned long long)w->mem_kib);
	switch (d->action) {
	case ACTION_HOLD:
		FUZZ_CHECK(vcpus_same && mem_same, "a hold that changes something: %s", d->text);
		break;
	case ACTION_VCPU_UP:
		FUZZ_CHECK(mem_same && d->vcpus_to > d->vcpus_from && d->vcpus_to <= hi,
		           "vcpu-up %u -> %u (max %u): %s", d->vcpus_from, d->vcpus_to, hi,
		           d->text);
		FUZZ_CHECK(v->host.vcpus_free > 0 &&
		                   d->vcpus_to - d->vcpus_from <= (uint64_t)v->host.vcpus_free,
		           "vcpu-up by %u with %lld free", d->vcpus_to - d->vcpus_from,
		           (long long)v->host.vcpus_free);
		break;
	case ACTION_VCPU_DOWN:
		FUZZ_CHECK(mem_same && d->vcpus_to < d->vcpus_from && d->vcpus_to >= lo,
		           "vcpu-down %u -> %u (min %u): %s", d->vcpus_from, d->vcpus_to, lo,
		           d->text);
		break;
	case ACTION_MEM_UP:
		FUZZ_CHECK(vcpus_same && d->mem_to_kib > d->mem_from_kib && d->mem_to_kib <= mhi,
		           "mem-up %llu -> %llu (max %llu): %s",
		           (unsigned long long)d->mem_from_kib, (unsigned long long)d->mem_to_kib,
		           (unsigned long long)mhi, d->text);
		FUZZ_CHECK(v->host.mem_free_kib > 0 && d->mem_to_kib - d->mem_from_kib <=
		                                               (uint64_t)v->host.mem_free_kib,
		           "mem-up beyond the host's headroom: %s", d->text);
		break;
	case ACTION_MEM_DOWN:
		FUZZ_CHECK(vcpus_same && d->mem_to_kib < d->mem_from_kib && d->mem_to_kib >= mlo,
		           "mem-down %llu -> %llu (min %llu): %s",
		           (unsigned long long)d->mem_from_kib, (unsigned long long)d->mem_to_kib,
		           (unsigned long long)mlo, d->text);
		break;
	default:
		FUZZ_CHECK(0, "unknown action %d", (int)d->action);
	}
	FUZZ_CHECK(mem_same || d->mem_to_kib % GRANULE_KIB == 0, "memory %llu off the grid",
	           (unsigned long long)d->mem_to_kib);
	FUZZ_CHECK(!w->busy || d->action == ACTION_HOLD, "acted while busy: %s", d->text);
}

/* hostd's reaction to a decision: the new size, the cooldown clock, fresh runs */
static void apply(struct vm_sim *v, const struct decision *d)
{
	if (d->action == ACTION_HOLD)
		return;
	if (d->action == ACTION_VCPU_UP)
		v->view.last_vcpu_up_ms = v->now_ms;
	if (d->action == ACTION_VCPU_DOWN)
		v->view.last_vcpu_down_ms = v->now_ms;
	if (d->action == ACTION_MEM_UP)
		v->view.last_mem_up_ms = v->now_ms;
	if (d->action == ACTION_MEM_DOWN)
		v->view.last_mem_down_ms = v->now_ms;
	v->view.vcpus = d->vcpus_to;
	v->view.mem_kib = d->mem_to_kib;
	policy_state_reset_runs(&v->st);
}

static void on_sample(struct vm_sim *v, const struct sample *s)
{
	struct decision d;

	if (!v->hello || s->seq <= v->last_seq)
		return; /* vm_take_sample() refuses it */
	v->last_seq = s->seq;
	v->now_ms += v->step_ms;
	policy_observe(&v->p, &v->st, s, v->now_ms);
	policy_decide(&v->p, &v->view, &v->host, v->now_ms, &d);
	check_decision(v, &d);
	apply(v, &d);
	/* the same state seen after the stream went quiet: never act on stale data */
	policy_decide(&v->p, &v->view, &v->host, v->now_ms + v->p.stale_ms + 1, &d);
	check_decision(v, &d);
	FUZZ_CHECK(d.action == ACTION_HOLD && d.reason == REASON_NO_DATA, "acted on stale data: %s",
	           d.text);
}

static void on_frame(struct vm_sim *v, const struct frame *f)
{
	struct hello h;
	struct sample s;
	struct reply r;

	switch (f->type) {
	case FRAME_HELLO:
		if (wire_decode_hello(f->payload, f->len, &h) == 0 && h.protocol_version == 1) {
			v->hello = true;
			v->last_seq = 0;
			policy_state_reset_runs(&v->st);
		}
		break;
	case FRAME_SAMPLE:
		if (wire_decode_sample(f->payload, f->len, &s) == 0)
			on_sample(v, &s);
		break;
	case FRAME_REPLY: /* an operation ends (or starts): busy flips */
		if (wire_decode_reply(f->payload, f->len, &r) == 0)
			v->view.busy = !v->view.busy;
		break;
	default: /* refused by hostd; here it stands for a pause in the stream */
		v->now_ms += 10 * v->step_ms;
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm_sim v;
	struct fuzz_in in = {data, size};
	struct frame_dec dec;
	struct frame f;
	uint8_t chunk;

	setup(&v, &in);
	chunk = fuzz_u8(&in);
	frame_dec_init(&dec);
	while (in.left > 0) {
		size_t n, want = chunk ? chunk : 4096;
		const uint8_t *p = fuzz_bytes(&in, want, &n);

		while (n > 0) {
			size_t took = frame_dec_feed(&dec, p, n);

			p += took;
			n -= took;
			while (frame_dec_next(&dec, &f) == 1)
				on_frame(&v, &f);
		}
	}
	frame_dec_fini(&dec);
	return 0;
}
