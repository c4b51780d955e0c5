/* The scaling policy as tables: a sample history (fed through policy_observe), a VM and a host
 * in, one decision (action, reason, targets, text) out. Plus policy_validate's messages, the run
 * bookkeeping (gaps, absent figures, resets) and a seeded random walk that checks invariants. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

#define NOW_MS 10000000ull
#define MIB    1024ull
#define ALL_FIGURES                                                                                \
	((1u << SF_CPU_ONLINE) | (1u << SF_CPU_BUSY) | (1u << SF_PSI_CPU_SOME) |                   \
	 (1u << SF_MEM_TOTAL) | (1u << SF_MEM_AVAIL) | (1u << SF_PSI_MEM_SOME) |                   \
	 (1u << SF_SATURATED) | (1u << SF_THREADS) | (1u << SF_INTERVAL))
#define BIT(f) (1u << (f))

/* Sets one policy field: {offsetof(struct policy, f), type, value}; type 0 ends the list. */
struct poke {
	size_t off;
	char type; /* 'd' double, 'u' uint32_t, 'U' uint64_t */
	double v;
};
#define PD(f, v)                                                                                   \
	{                                                                                          \
		offsetof(struct policy, f), 'd', (v)                                               \
	}
#define PU(f, v)                                                                                   \
	{                                                                                          \
		offsetof(struct policy, f), 'u', (v)                                               \
	}
#define PU64(f, v)                                                                                 \
	{                                                                                          \
		offsetof(struct policy, f), 'U', (v)                                               \
	}

/* A history of n samples 1 s apart, the newest age_ms before NOW_MS. */
struct hist {
	unsigned n;
	uint64_t age_ms;
	float busy, avail; /* busy %, MemAvailable in % of MemTotal */
	float psi_cpu, psi_mem;
	bool saturated;
	unsigned nhot; /* threads listed first ("spin", tid 77, 78, ...) at hot_pct (0 = 100) */
	float hot_pct;
	unsigned dip_at; /* 1 = the newest sample, 2 the one before...; it has dip_busy/avail */
	float dip_busy, dip_avail;
	unsigned sat_from, sat_to; /* 1-based from the newest: only these are saturated (0 = all) */
	uint32_t absent, absent_first; /* SF_ bits missing from every / the oldest sample */
};

struct vmspec {
	uint32_t vcpus, dom_min, dom_max;    /* 0: 2, 1, 8 */
	uint64_t mem_mib, min_mib, max_mib;  /* 0: 2048, 1024, 8192 */
	uint64_t granule_mib;                /* 0: 128 */
	uint64_t vcpu_up_ago, vcpu_down_ago; /* ms before NOW_MS; 0 = never */
	uint64_t mem_up_ago, mem_down_ago;
	bool busy;
};

struct hostspec {
	bool set; /* false: plenty */
	int64_t vcpus_free, mem_free_mib;
};

struct expect {
	enum action action;
	enum reason reason;
	uint32_t vcpus_to;   /* checked for vCPU actions; else vcpus_to must equal from */
	uint64_t mem_to_mib; /* checked for memory actions; else mem_to must equal from */
	bool clipped, saturated;
	const char *text; /* substring; NULL = not checked */
};

struct row {
	const char *name;
	struct hist h;
	struct vmspec vm;
	struct hostspec host;
	struct poke pol[4];
	struct expect want;
};

static void apply_pokes(struct policy *p, const struct poke *pk, size_t n)
{
	for (size_t i = 0; i < n && pk[i].type; i++) {
		char *f = (char *)p + pk[i].off;

		if (pk[i].type == 'd')
			*(double *)f = pk[i].v;
		else if (pk[i].type == 'u')
			*(uint32_t *)f = (uint32_t)pk[i].v;
		else
			*(uint64_t *)f = (uint64_t)pk[i].v;
	}
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t ago(uint64_t ms)
{
	return ms ? NOW_MS - ms : 0;
}

static void make_vm(const struct vmspec *v, struct vm_view *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->vcpus = v->vcpus ? v->vcpus : 2;
	ret->vcpus_dom_min = v->dom_min ? v->dom_min : 1;
	ret->vcpus_dom_max = v->dom_max ? v->dom_max : 8;
	ret->mem_kib = (v->mem_mib ? v->mem_mib : 2048) * MIB;
	ret->mem_dom_min_kib = (v->min_mib ? v->min_mib : 1024) * MIB;
	ret->mem_dom_max_kib = (v->max_mib ? v->max_mib : 8192) * MIB;
	ret->mem_granule_kib = (v->granule_mib ? v->granule_mib : 128) * MIB;
	ret->last_vcpu_up_ms = ago(v->vcpu_up_ago);
	ret->last_vcpu_down_ms = ago(v->vcpu_down_ago);
	ret->last_mem_up_ms = ago(v->mem_up_ago);
	ret->last_mem_down_ms = ago(v->mem_down_ago);
	ret->busy = v->busy;
}

/* Sample i (0 = oldest) of the history, for a VM of `vcpus` and `mem_kib` whose guest sees
 * 64 MiB less (kernel reserve). */
static void make_sample(const struct hist *h, unsigned i, uint32_t vcpus, uint64_t mem_kib,
                        struct sample *s)
{
	unsigned back = h->n - i; /* 1 = newest */
	bool dip = h->dip_at && back == h->dip_at;
	float avail = dip ? h->dip_avail : h->avail;
	unsigned k = 0;

	memset(s, 0, sizeof(*s));
	s->seq = i + 1;
	s->has = ALL_FIGURES & ~h->absent & ~(i == 0 ? h->absent_first : 0);
	s->interval_ms = 1000;
	s->cpus_online = vcpus;
	s->cpu_busy_pct = dip ? h->dip_busy : h->busy;
	s->psi_cpu_some_avg10 = h->psi_cpu;
	s->psi_mem_some_avg10 = h->psi_mem;
	s->mem_total_kib = mem_kib - 64 * MIB;
	s->mem_avail_kib = (uint64_t)((double)s->mem_total_kib * avail / 100.0);
	s->saturated = h->saturated && (!h->sat_from || (back >= h->sat_to && back <= h->sat_from));
	for (; k < h->nhot && k + 1 < SAMPLE_MAX_THREADS; k++) {
		s->threads[k].tid = 77 + k;
		snprintf(s->threads[k].comm, sizeof(s->threads[k].comm), "spin");
		s->threads[k].cpu_pct = h->hot_pct ? h->hot_pct : 100;
	}
	s->threads[k].tid = 5;
	snprintf(s->threads[k].comm, sizeof(s->threads[k].comm), "bash");
	s->threads[k].cpu_pct = 1;
	s->nthreads = k + 1;
}

static void observe_hist(const struct policy *p, const struct hist *h, const struct vm_view *vm,
                         struct policy_state *st)
{
	for (unsigned i = 0; i < h->n; i++) {
		struct sample s;

		make_sample(h, i, vm->vcpus, vm->mem_kib, &s);
		policy_observe(p, st, &s, NOW_MS - h->age_ms - (uint64_t)(h->n - 1 - i) * 1000);
	}
}

/* The policy the tables are written against: explicit figures (the defaults of vscale 0.1), so a
 * change of the built-in defaults (tuned with vscale-sim) does not rewrite every row. */
static void table_policy(struct policy *p)
{
	policy_default(p);
	p->cpu_up_pct = 80;
	p->cpu_down_pct = 30;
	p->cpu_psi_up_pct = 25;
	p->cpu_up_for_ms = 10000;
	p->cpu_down_for_ms = 60000;
	p->vcpu_step_up = 1;
	p->vcpu_step_down = 1;
	p->vcpu_cooldown_up_ms = 30000;
	p->vcpu_cooldown_down_ms = 120000;
	p->mem_up_avail_pct = 15;
	p->mem_down_avail_pct = 50;
	p->mem_psi_up_pct = 10;
	p->mem_up_for_ms = 5000;
	p->mem_down_for_ms = 120000;
	p->mem_step_up_kib = 512 * MIB;
	p->mem_step_down_kib = 256 * MIB;
	p->mem_margin_kib = 256 * MIB;
	p->mem_cooldown_up_ms = 20000;
	p->mem_cooldown_down_ms = 180000;
	p->stale_ms = 5000;
}

static void decide_row(const struct row *r, struct policy_state *st, struct decision *d)
{
	struct policy p;
	struct vm_view vm;
	struct host_view host = {64, 64 * 1024 * MIB};

	table_policy(&p);
	apply_pokes(&p, r->pol, sizeof(r->pol) / sizeof(r->pol[0]));
	assert_int_equal(policy_validate(&p, NULL, 0), 0);
	make_vm(&r->vm, &vm);
	if (r->host.set)
		host = (struct host_view){r->host.vcpus_free, r->host.mem_free_mib * (int64_t)MIB};
	policy_state_init(st);
	observe_hist(&p, &r->h, &vm, st);
	vm.st = st;
	policy_decide(&p, &vm, &host, NOW_MS, d);
}

static bool is_vcpu(enum action a)
{
	return a == ACTION_VCPU_UP || a == ACTION_VCPU_DOWN;
}

static bool is_mem(enum action a)
{
	return a == ACTION_MEM_UP || a == ACTION_MEM_DOWN;
}

static bool check_row(const struct row *r)
{
	const struct expect *w = &r->want;
	struct policy_state st;
	struct decision d;
	bool ok;

	decide_row(r, &st, &d);
	ok = d.action == w->action && d.reason == w->reason && d.clipped == w->clipped &&
	     d.saturated == w->saturated &&
	     d.vcpus_to == (is_vcpu(w->action) ? w->vcpus_to : d.vcpus_from) &&
	     d.mem_to_kib == (is_mem(w->action) ? w->mem_to_mib * MIB : d.mem_from_kib) &&
	     (!w->text || strstr(d.text, w->text));
	if (!ok)
		print_error(
		        "%s: got %s/%s vcpus %u->%u mem %llu->%llu MiB clipped %d saturated %d "
		        "\"%s\"; want %s/%s vcpus %u mem %llu MiB clipped %d saturated %d \"%s\"\n",
		        r->name, policy_action_name(d.action), policy_reason_name(d.reason),
		        d.vcpus_from, d.vcpus_to, (unsigned long long)(d.mem_from_kib / MIB),
		        (unsigned long long)(d.mem_to_kib / MIB), d.clipped, d.saturated, d.text,
		        policy_action_name(w->action), policy_reason_name(w->reason), w->vcpus_to,
		        (unsigned long long)w->mem_to_mib, w->clipped, w->saturated,
		        w->text ? w->text : "");
	return ok;
}

/* Baselines: a calm VM (busy 50%, 40% available) and busy / idle ones. */
#define CALM(n_)   .n = (n_), .busy = 50, .avail = 40
#define HOT(n_)    .n = (n_), .busy = 91, .avail = 40
#define IDLE(n_)   .n = (n_), .busy = 10, .avail = 40
#define PLENTY(n_) .n = (n_), .busy = 50, .avail = 80
#define SHORT(n_)  .n = (n_), .busy = 50, .avail = 10
#define WANT(a, r, ...)                                                                            \
	{                                                                                          \
		.action = (a), .reason = (r), __VA_ARGS__                                          \
	}

static const struct row rows[] = {
        /* missing data */
        {"no samples",
         {.n = 0},
         {0},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_NO_DATA, .text = "no sample yet")},
        {"stale idle history: never shrink on missing data",
         {.n = 200, .age_ms = 7000, .busy = 5, .avail = 90},
         {.vcpus = 4, .mem_mib = 4096},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_NO_DATA, .text = "no sample for 7 s")},
        {"stale hot history: no growth either",
         {HOT(30), .age_ms = 5001},
         {0},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_NO_DATA)},
        {"just fresh enough",
         {HOT(30), .age_ms = 5000},
         {0},
         {0},
         {{0}},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 3)},
        {"busy VM: hold", {HOT(30)}, {.busy = true}, {0}, {{0}}, WANT(ACTION_HOLD, REASON_BUSY)},

        /* CPU up */
        {"cpu high 10 s: up by one",
         {HOT(10)},
         {0},
         {0},
         {{0}},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 3, .text = "cpu 91% >= 80% for 10 s")},
        {"cpu high 9 s: window not covered",
         {HOT(9)},
         {0},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_WITHIN, .text = "cpu 91% mem avail 40%")},
        {"cpu high but one sample dips",
         {HOT(15), .dip_at = 3, .dip_busy = 60, .dip_avail = 40},
         {0},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_WITHIN)},
        {"dip older than the window does not matter",
         {HOT(25), .dip_at = 12, .dip_busy = 60, .dip_avail = 40},
         {0},
         {0},
         {{0}},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 3)},
        {"first sample without busy is skipped (11 samples)",
         {HOT(11), .absent_first = BIT(SF_CPU_BUSY) | BIT(SF_PSI_CPU_SOME)},
         {0},
         {0},
         {{0}},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 3)},
        {"first sample without busy is skipped (10 samples)",
         {HOT(10), .absent_first = BIT(SF_CPU_BUSY) | BIT(SF_PSI_CPU_SOME)},
         {0},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_WITHIN)},
        {"cpu pressure triggers up",
         {CALM(10), .psi_cpu = 30},
         {0},
         {0},
         {{0}},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 3, .text = "cpu pressure 30% >= 25%")},
        {"cpu pressure just below",
         {CALM(10), .psi_cpu = 24.9f},
         {0},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_WITHIN)},
        {"at the domain max",
         {HOT(10)},
         {.vcpus = 8},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_AT_LIMIT, .text = "vcpus at max 8")},
        {"at the policy max",
         {HOT(10)},
         {.vcpus = 4},
         {0},
         {PU(vcpus_max, 4)},
         WANT(ACTION_HOLD, REASON_AT_LIMIT, .text = "vcpus at max 4")},
        {"policy max above the domain max is capped",
         {HOT(10)},
         {.vcpus = 8},
         {0},
         {PU(vcpus_max, 16)},
         WANT(ACTION_HOLD, REASON_AT_LIMIT, .text = "vcpus at max 8")},
        {"step cut at the domain max",
         {HOT(10)},
         {.vcpus = 7},
         {0},
         {PU(vcpus_max, 16), PU(vcpu_step_up, 4)},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 8)},
        {"cooldown after an up",
         {HOT(10)},
         {.vcpu_up_ago = 10000},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_COOLDOWN, .text = "vcpu cooldown 20 s left")},
        {"cooldown after a down",
         {HOT(10)},
         {.vcpu_down_ago = 29999},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_COOLDOWN)},
        {"cooldown over",
         {HOT(10)},
         {.vcpu_up_ago = 30000, .vcpu_down_ago = 200000},
         {0},
         {{0}},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 3)},
        {"memory changes do not cool vCPUs",
         {HOT(10)},
         {.mem_up_ago = 1000},
         {0},
         {{0}},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 3)},
        {"host full", {HOT(10)}, {0}, {true, 0, 4096}, {{0}}, WANT(ACTION_HOLD, REASON_HOST_FULL)},
        {"host over-committed",
         {HOT(10)},
         {0},
         {true, -3, 4096},
         {{0}},
         WANT(ACTION_HOLD, REASON_HOST_FULL)},
        {"step 2 clipped to the one free vCPU",
         {HOT(10)},
         {0},
         {true, 1, 4096},
         {PU(vcpu_step_up, 2)},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 3, .clipped = true)},
        {"step 2 with 2 free is not clipped",
         {HOT(10)},
         {0},
         {true, 2, 4096},
         {PU(vcpu_step_up, 2)},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 4)},

        /* single-thread saturation */
        {"one thread saturates the only vCPU: hold",
         {.n = 10, .busy = 100, .avail = 40, .saturated = true, .nhot = 1},
         {.vcpus = 1},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_SATURATED, .saturated = true,
              .text = "thread 'spin' (tid 77) saturates one CPU; more vCPUs would not help")},
        {"one thread pins the only vCPU before the guest's streak flags it: hold",
         {.n = 10, .busy = 100, .avail = 40, .nhot = 1},
         {.vcpus = 1},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_SATURATED, .saturated = true)},
        {"the hottest thread at 80%, not flagged: up",
         {.n = 10, .busy = 100, .avail = 40, .nhot = 1, .hot_pct = 80},
         {.vcpus = 1},
         {0},
         {{0}},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 2)},
        {"saturated, the rest low on 2 vCPUs: hold",
         {.n = 10, .busy = 85, .avail = 40, .saturated = true, .nhot = 1},
         {.vcpus = 2},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_SATURATED, .saturated = true)},
        {"saturated but the rest is busy too: up",
         {.n = 10, .busy = 95, .avail = 40, .saturated = true, .nhot = 1},
         {.vcpus = 2},
         {0},
         {{0}},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 3, .saturated = true)},
        {"saturated but tasks wait for a CPU: up",
         {.n = 10, .busy = 100, .avail = 40, .psi_cpu = 40, .saturated = true, .nhot = 1},
         {.vcpus = 1},
         {0},
         {{0}},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 2, .saturated = true)},
        {"saturated in the up window only once: hold",
         {.n = 30,
          .busy = 100,
          .avail = 40,
          .saturated = true,
          .sat_from = 9,
          .sat_to = 9,
          .nhot = 1},
         {.vcpus = 1},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_SATURATED, .saturated = true)},
        {"saturated long ago in the same high run: up",
         {.n = 40,
          .busy = 100,
          .avail = 40,
          .saturated = true,
          .sat_from = 40,
          .sat_to = 30,
          .nhot = 1,
          .hot_pct = 60},
         {.vcpus = 1},
         {0},
         {{0}},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 2)},
        {"saturation does not stop memory up",
         {.n = 10, .busy = 100, .avail = 10, .saturated = true, .nhot = 1},
         {.vcpus = 1},
         {0},
         {{0}},
         WANT(ACTION_MEM_UP, REASON_MEM_LOW, .mem_to_mib = 2560, .saturated = true)},
        {"saturation flag shown while within",
         {CALM(10), .saturated = true, .nhot = 1},
         {0},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_WITHIN, .saturated = true)},

        /* memory up */
        {"memory low 5 s: up by 512 MiB",
         {SHORT(5)},
         {0},
         {0},
         {{0}},
         WANT(ACTION_MEM_UP, REASON_MEM_LOW, .mem_to_mib = 2560,
              .text = "mem avail 10% <= 15% for 5 s")},
        {"memory low 4 s: not yet", {SHORT(4)}, {0}, {0}, {{0}}, WANT(ACTION_HOLD, REASON_WITHIN)},
        {"memory pressure triggers up",
         {CALM(5), .psi_mem = 12},
         {0},
         {0},
         {{0}},
         WANT(ACTION_MEM_UP, REASON_MEM_LOW, .mem_to_mib = 2560,
              .text = "mem pressure 12% >= 10%")},
        {"memory step rounded up to the granule",
         {SHORT(5)},
         {0},
         {0},
         {PU64(mem_step_up_kib, 300 * MIB)},
         WANT(ACTION_MEM_UP, REASON_MEM_LOW, .mem_to_mib = 2432)},
        {"grid anchored at an unaligned boot size",
         {SHORT(5)},
         {.mem_mib = 2024, .min_mib = 1000, .max_mib = 8168},
         {0},
         {PU64(mem_step_up_kib, 300 * MIB)},
         WANT(ACTION_MEM_UP, REASON_MEM_LOW, .mem_to_mib = 2408)},
        {"step under a granule still grows one granule",
         {SHORT(5)},
         {0},
         {0},
         {PU64(mem_step_up_kib, 1 * MIB)},
         WANT(ACTION_MEM_UP, REASON_MEM_LOW, .mem_to_mib = 2176)},
        {"memory up capped at the domain max",
         {SHORT(5)},
         {.mem_mib = 7936},
         {0},
         {{0}},
         WANT(ACTION_MEM_UP, REASON_MEM_LOW, .mem_to_mib = 8192)},
        {"memory up capped at an unaligned policy max",
         {SHORT(5)},
         {0},
         {0},
         {PU64(mem_max_kib, 2500 * MIB)},
         WANT(ACTION_MEM_UP, REASON_MEM_LOW, .mem_to_mib = 2432)},
        {"memory at max",
         {SHORT(5)},
         {.mem_mib = 8192},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_AT_LIMIT, .text = "memory at max 8192 MiB")},
        {"memory cooldown counts from the last down",
         {SHORT(5)},
         {.mem_down_ago = 10000},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_COOLDOWN, .text = "memory cooldown 10 s left")},
        {"memory host full (less than a granule)",
         {SHORT(5)},
         {0},
         {true, 8, 100},
         {{0}},
         WANT(ACTION_HOLD, REASON_HOST_FULL, .text = "the host has 100 MiB free")},
        {"memory clipped to the granules free",
         {SHORT(5)},
         {0},
         {true, 8, 300},
         {{0}},
         WANT(ACTION_MEM_UP, REASON_MEM_LOW, .mem_to_mib = 2304, .clipped = true)},

        /* priorities */
        {"memory up before cpu up",
         {.n = 10, .busy = 95, .avail = 10},
         {0},
         {0},
         {{0}},
         WANT(ACTION_MEM_UP, REASON_MEM_LOW, .mem_to_mib = 2560)},
        {"memory blocked at max: cpu up still acts",
         {.n = 10, .busy = 95, .avail = 10},
         {.mem_mib = 8192},
         {0},
         {{0}},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 3)},
        {"blocked memory up is reported over within",
         {SHORT(10)},
         {.mem_mib = 8192},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_AT_LIMIT)},
        {"no cpu down while memory is short",
         {.n = 100, .busy = 5, .avail = 10},
         {.vcpus = 4, .mem_mib = 8192},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_AT_LIMIT)},
        {"memory down before cpu down",
         {.n = 130, .busy = 5, .avail = 80},
         {.vcpus = 4, .mem_mib = 4096},
         {0},
         {{0}},
         WANT(ACTION_MEM_DOWN, REASON_MEM_HIGH, .mem_to_mib = 3840)},

        /* memory down */
        {"memory plenty 120 s: down by 256 MiB",
         {PLENTY(120)},
         {.mem_mib = 4096},
         {0},
         {{0}},
         WANT(ACTION_MEM_DOWN, REASON_MEM_HIGH, .mem_to_mib = 3840,
              .text = "mem avail 80% >= 50% for 120 s")},
        {"memory plenty 119 s: not yet",
         {PLENTY(119)},
         {.mem_mib = 4096},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_WITHIN)},
        {"memory down cooldown",
         {PLENTY(120)},
         {.mem_mib = 4096, .mem_up_ago = 100000},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_COOLDOWN)},
        {"memory down to in use + margin + kernel",
         {PLENTY(120)},
         {.mem_mib = 4096},
         {0},
         {PU64(mem_step_down_kib, 4096 * MIB)},
         WANT(ACTION_MEM_DOWN, REASON_MEM_HIGH, .mem_to_mib = 1152)},
        {"memory down keeps the run's peak use",
         {PLENTY(120), .dip_at = 60, .dip_busy = 50, .dip_avail = 52},
         {.mem_mib = 4096},
         {0},
         {PU64(mem_step_down_kib, 4096 * MIB)},
         WANT(ACTION_MEM_DOWN, REASON_MEM_HIGH, .mem_to_mib = 2304)},
        {"memory down: in use + margin does not fit",
         {.n = 120, .busy = 50, .avail = 55},
         {0},
         {0},
         {PU64(mem_margin_kib, 1024 * MIB)},
         WANT(ACTION_HOLD, REASON_NO_FIT,
              .text = "in use 892 MiB + margin 1024 MiB + kernel 64 MiB = 1980 MiB, have 2048 MiB")},
        {"memory down: would free crumbs (under a sixteenth of a step): hold",
         {PLENTY(120)},
         {.mem_mib = 4096, .granule_mib = 2},
         {0},
         {PU64(mem_margin_kib, 3220 * MIB)},
         WANT(ACTION_HOLD, REASON_NO_FIT, .text = "would free only 4 MiB")},
        {"memory down: a sixteenth of a step is worth it",
         {PLENTY(120)},
         {.mem_mib = 4096, .granule_mib = 2},
         {0},
         {PU64(mem_margin_kib, 3200 * MIB)},
         WANT(ACTION_MEM_DOWN, REASON_MEM_HIGH, .mem_to_mib = 4072)},
        {"memory down capped at the domain min",
         {PLENTY(120)},
         {.mem_mib = 1152},
         {0},
         {{0}},
         WANT(ACTION_MEM_DOWN, REASON_MEM_HIGH, .mem_to_mib = 1024)},
        {"memory down capped at the policy min",
         {PLENTY(120)},
         {.mem_mib = 4096},
         {0},
         {PU64(mem_min_kib, 3072 * MIB), PU64(mem_step_down_kib, 4096 * MIB)},
         WANT(ACTION_MEM_DOWN, REASON_MEM_HIGH, .mem_to_mib = 3072)},
        {"memory at min: within",
         {PLENTY(120)},
         {.mem_mib = 1024},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_WITHIN)},
        {"memory plenty under pressure: no down",
         {PLENTY(120), .psi_mem = 15},
         {.mem_mib = 4096},
         {0},
         {{0}},
         WANT(ACTION_MEM_UP, REASON_MEM_LOW, .mem_to_mib = 4608)},

        /* CPU down */
        {"cpu idle 60 s: down by one",
         {IDLE(60)},
         {.vcpus = 4},
         {0},
         {{0}},
         WANT(ACTION_VCPU_DOWN, REASON_CPU_LOW, .vcpus_to = 3, .text = "cpu 10% <= 30% for 60 s")},
        {"cpu idle 59 s: not yet",
         {IDLE(59)},
         {.vcpus = 4},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_WITHIN)},
        {"cpu down keeps projected busy below cpu-up",
         {.n = 60, .busy = 30, .avail = 40},
         {.vcpus = 4},
         {0},
         {PU(vcpu_step_down, 3)},
         WANT(ACTION_VCPU_DOWN, REASON_CPU_LOW, .vcpus_to = 2)},
        {"projected busy exactly at cpu-up is not enough",
         {.n = 60, .busy = 20, .avail = 40},
         {.vcpus = 4},
         {0},
         {PU(vcpu_step_down, 3)},
         WANT(ACTION_VCPU_DOWN, REASON_CPU_LOW, .vcpus_to = 2)},
        {"cpu down keeps a vCPU per hot thread",
         {.n = 60, .busy = 25, .avail = 40, .nhot = 4, .hot_pct = 50},
         {.vcpus = 8},
         {0},
         {PU(vcpu_step_down, 7)},
         WANT(ACTION_VCPU_DOWN, REASON_CPU_LOW, .vcpus_to = 4)},
        {"hot threads leave no room: no-fit",
         {.n = 60, .busy = 50, .avail = 40, .nhot = 3, .hot_pct = 50},
         {.vcpus = 3},
         {0},
         {PD(cpu_down_pct, 60)},
         WANT(ACTION_HOLD, REASON_NO_FIT, .text = "3 hot threads need a vcpu each")},
        {"load leaves no room: no-fit",
         {.n = 60, .busy = 60, .avail = 40},
         {.vcpus = 2},
         {0},
         {PD(cpu_down_pct, 60)},
         WANT(ACTION_HOLD, REASON_NO_FIT, .text = "the load needs 2 vcpus to stay below 80%")},
        {"cpu down cooldown",
         {IDLE(60)},
         {.vcpus = 4, .vcpu_up_ago = 100000},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_COOLDOWN)},
        {"cpu idle at the domain min: within",
         {IDLE(60)},
         {.vcpus = 2, .dom_min = 2},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_WITHIN)},
        {"cpu idle at the policy min: within",
         {IDLE(60)},
         {.vcpus = 3},
         {0},
         {PU(vcpus_min, 3)},
         WANT(ACTION_HOLD, REASON_WITHIN)},
        {"cpu down by a big step stops at the min",
         {IDLE(60)},
         {.vcpus = 6},
         {0},
         {PU(vcpus_min, 3), PU(vcpu_step_down, 5)},
         WANT(ACTION_VCPU_DOWN, REASON_CPU_LOW, .vcpus_to = 3)},
        /* pressure is a 10 s average: after a burst it lingers on an idle VM */
        {"idle under lingering cpu pressure: neither down nor up",
         {IDLE(60), .psi_cpu = 30},
         {.vcpus = 4},
         {0},
         {{0}},
         WANT(ACTION_HOLD, REASON_WITHIN)},
        {"busier than cpu-down under cpu pressure: up",
         {.n = 10, .busy = 45, .avail = 40, .psi_cpu = 30},
         {.vcpus = 4},
         {0},
         {{0}},
         WANT(ACTION_VCPU_UP, REASON_CPU_HIGH, .vcpus_to = 5)},

        /* bounds that moved under a running VM */
        {"below the policy min: up to it",
         {CALM(3)},
         {.vcpus = 2},
         {0},
         {PU(vcpus_min, 4)},
         WANT(ACTION_VCPU_UP, REASON_BOUNDS, .vcpus_to = 4, .text = "vcpus 2 below min 4")},
        {"below the policy min, host short: part way",
         {CALM(3)},
         {.vcpus = 2},
         {true, 1, 4096},
         {PU(vcpus_min, 4)},
         WANT(ACTION_VCPU_UP, REASON_BOUNDS, .vcpus_to = 3, .clipped = true)},
        {"above the policy max: down to it",
         {CALM(3)},
         {.vcpus = 6},
         {0},
         {PU(vcpus_max, 4)},
         WANT(ACTION_VCPU_DOWN, REASON_BOUNDS, .vcpus_to = 4)},
        {"memory below the policy min: up to it",
         {CALM(3)},
         {0},
         {0},
         {PU64(mem_min_kib, 3072 * MIB)},
         WANT(ACTION_MEM_UP, REASON_BOUNDS, .mem_to_mib = 3072)},
        {"memory above the policy max: down to it",
         {CALM(3)},
         {.mem_mib = 4096},
         {0},
         {PU64(mem_max_kib, 3072 * MIB)},
         WANT(ACTION_MEM_DOWN, REASON_BOUNDS, .mem_to_mib = 3072)},
        {"memory above the max but in use: only down to what fits",
         {.n = 3, .busy = 50, .avail = 20},
         {.mem_mib = 4096},
         {0},
         {PU64(mem_max_kib, 3072 * MIB)},
         WANT(ACTION_MEM_DOWN, REASON_BOUNDS, .mem_to_mib = 3584)},
};

static void test_table(void **state)
{
	unsigned failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		failed += !check_row(&rows[i]);
	assert_int_equal(failed, 0);
}

/* ---- runs: gaps, absent figures, resets ---- */

static void feed(const struct policy *p, struct policy_state *st, const struct sample *s,
                 uint64_t from_ms, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		policy_observe(p, st, s, from_ms + i * 1000);
}

static enum action decide_at(const struct policy *p, const struct policy_state *st, uint64_t now_ms,
                             struct decision *d)
{
	struct vm_view vm;
	struct host_view host = {64, 64 * 1024 * MIB};

	make_vm(&(struct vmspec){0}, &vm);
	vm.last_vcpu_up_ms = vm.last_vcpu_down_ms = vm.last_mem_up_ms = vm.last_mem_down_ms = 0;
	vm.st = st;
	policy_decide(p, &vm, &host, now_ms, d);
	return d->action;
}

static void test_runs(void **state)
{
	const struct hist hot = {HOT(1)};
	struct policy p;
	struct policy_state st;
	struct sample s, bare;
	struct decision d;

	(void)state;
	table_policy(&p);
	make_sample(&hot, 0, 2, 2048 * MIB, &s);
	bare = s;
	bare.has &= ~(BIT(SF_CPU_BUSY) | BIT(SF_PSI_CPU_SOME));

	/* 10 s of high: up; the same with a 6 s hole in the middle: the run restarts */
	policy_state_init(&st);
	feed(&p, &st, &s, 1000000, 10);
	assert_int_equal(decide_at(&p, &st, 1009000, &d), ACTION_VCPU_UP);
	policy_state_init(&st);
	feed(&p, &st, &s, 1000000, 5);
	feed(&p, &st, &s, 1010000, 6);
	assert_int_equal(decide_at(&p, &st, 1015000, &d), ACTION_HOLD);
	assert_int_equal(d.reason, REASON_WITHIN);
	feed(&p, &st, &s, 1016000, 4);
	assert_int_equal(decide_at(&p, &st, 1019000, &d), ACTION_VCPU_UP);

	/* samples without the figure neither break nor extend the run */
	policy_state_init(&st);
	feed(&p, &st, &s, 1000000, 3);
	feed(&p, &st, &bare, 1003000, 4);
	feed(&p, &st, &s, 1007000, 3);
	assert_int_equal(decide_at(&p, &st, 1009000, &d), ACTION_VCPU_UP);
	policy_state_init(&st);
	feed(&p, &st, &bare, 1000000, 12);
	assert_int_equal(decide_at(&p, &st, 1011000, &d), ACTION_HOLD);
	assert_true(st.cpu_high_since == 0);

	/* a reset (after an action) forgets the runs but not the newest sample */
	policy_state_init(&st);
	feed(&p, &st, &s, 1000000, 20);
	policy_state_reset_runs(&st);
	assert_int_equal(decide_at(&p, &st, 1019500, &d), ACTION_HOLD);
	assert_int_equal(d.reason, REASON_WITHIN);
	assert_string_equal(d.text, "cpu 91% mem avail 40%");
	feed(&p, &st, &s, 1020000, 10);
	assert_int_equal(decide_at(&p, &st, 1029000, &d), ACTION_VCPU_UP);

	/* time going backwards breaks the run too */
	policy_state_init(&st);
	feed(&p, &st, &s, 1000000, 8);
	feed(&p, &st, &s, 990000, 3);
	assert_true(st.cpu_high_since == 990000);

	/* a guest claiming a long interval widens the slack only up to a minute */
	policy_state_init(&st);
	s.interval_ms = 3600 * 1000;
	p.cpu_up_for_ms = 100000;
	p.cpu_down_for_ms = 100000;
	feed(&p, &st, &s, 1000000, 1);
	assert_int_equal(decide_at(&p, &st, 1039000, &d), ACTION_HOLD);
	assert_int_equal(decide_at(&p, &st, 1040000, &d), ACTION_HOLD); /* stale by now */
	assert_int_equal(d.reason, REASON_NO_DATA);
	p.stale_ms = 60000;
	assert_int_equal(decide_at(&p, &st, 1040000, &d), ACTION_VCPU_UP);
}

/* ---- validation ---- */

static void test_validate(void **state)
{
	static const struct {
		struct poke pk[2];
		const char *msg; /* NULL = valid */
	} cases[] = {
	        {{{0}}, NULL},
	        {{PU(vcpus_min, 16)}, NULL},
	        {{PU(vcpus_min, 4), PU(vcpus_max, 4)}, NULL},
	        {{PU(vcpus_min, 8), PU(vcpus_max, 4)}, "vcpus: minimum 8 > maximum 4"},
	        {{PU64(mem_min_kib, 4 * 1024 * MIB), PU64(mem_max_kib, 2 * 1024 * MIB)},
	         "memory: minimum 4G > maximum 2G"},
	        {{PU64(mem_min_kib, 1536 * MIB), PU64(mem_max_kib, 1024 * MIB)},
	         "memory: minimum 1536M > maximum 1G"},
	        {{PD(cpu_down_pct, 80)}, "cpu-down 80% must be below cpu-up 80%"},
	        {{PD(cpu_up_pct, 25)}, "cpu-down 30% must be below cpu-up 25%"},
	        {{PD(mem_up_avail_pct, 50)},
	         "mem-available-up 50% must be below mem-available-down 50%"},
	        {{PD(cpu_up_pct, 120)}, "cpu-up: 120% is not within 0..100%"},
	        {{PD(mem_down_avail_pct, -1)}, "mem-available-down: -1% is not within 0..100%"},
	        {{PD(mem_psi_up_pct, NAN)}, "mem-pressure-up: nan% is not within 0..100%"},
	        {{PD(cpu_psi_up_pct, 0)}, "cpu-pressure-up must be above 0%"},
	        {{PD(mem_psi_up_pct, 0)}, "mem-pressure-up must be above 0%"},
	        {{PU(vcpu_step_up, 0)}, "vcpu-step-up must be above 0"},
	        {{PU(vcpu_step_down, 0)}, "vcpu-step-down must be above 0"},
	        {{PU64(mem_step_up_kib, 0)}, "mem-step-up must be above 0"},
	        {{PU64(mem_step_down_kib, 0)}, "mem-step-down must be above 0"},
	        {{PU64(stale_ms, 0)}, "stale-after must be above 0"},
	        {{PU64(cpu_down_for_ms, 5000)},
	         "scale-down must not be faster than scale-up: cpu-down-for 5s < cpu-up-for 10s"},
	        {{PU64(mem_down_for_ms, 1500)},
	         "scale-down must not be faster than scale-up: mem-down-for 1500ms < mem-up-for 5s"},
	        {{PU64(cpu_down_for_ms, 10000)}, NULL},
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy p;
		int r;

		table_policy(&p);
		apply_pokes(&p, cases[i].pk, 2);
		strcpy(err, "untouched");
		r = policy_validate(&p, err, sizeof(err));
		if (!cases[i].msg) {
			if (r != 0)
				fail_msg("case %zu: unexpected error \"%s\"", i, err);
			continue;
		}
		if (r != -EINVAL || strcmp(err, cases[i].msg) != 0)
			fail_msg("case %zu: got %d \"%s\", want \"%s\"", i, r, err, cases[i].msg);
	}
	/* a short buffer truncates, never overflows */
	{
		struct policy p;

		table_policy(&p);
		p.stale_ms = 0;
		memset(err, 'x', sizeof(err));
		assert_int_equal(policy_validate(&p, err, 6), -EINVAL);
		assert_string_equal(err, "stale");
		assert_int_equal(err[6], 'x');
	}
}

static void test_names(void **state)
{
	static const char *const actions[] = {"hold", "vcpu-up", "vcpu-down", "mem-up", "mem-down"};
	static const char *const reasons[] = {
	        "within",   "no-data", "busy",    "cooldown", "at-limit", "host-full", "saturated",
	        "cpu-high", "cpu-low", "mem-low", "mem-high", "no-fit",   "bounds"};

	(void)state;
	for (int i = 0; i < 5; i++)
		assert_string_equal(policy_action_name((enum action)i), actions[i]);
	for (int i = 0; i < 13; i++)
		assert_string_equal(policy_reason_name((enum reason)i), reasons[i]);
	assert_string_equal(policy_action_name((enum action)5), "unknown");
	assert_string_equal(policy_reason_name((enum reason)13), "unknown");
	assert_string_equal(policy_reason_name((enum reason) - 1), "unknown");
}

/* ---- invariants over random views ---- */

static uint64_t lcg_state;

static uint32_t rnd(uint32_t n) /* 0..n-1 */
{
	lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
	return n ? (uint32_t)((lcg_state >> 33) % n) : 0;
}

static float rnd_pct(float centre)
{
	float v = centre + (float)rnd(21) - 10;

	return v < 0 ? 0 : v > 100 ? 100 : v;
}

struct counts {
	unsigned by_action[5];
	unsigned by_reason[REASON_BOUNDS + 1];
	unsigned clipped;
};

/* Bounds as documented, computed independently: the policy's (0 = the domain's), capped by the
 * domain's maximum, at least one vCPU, lo capped to hi. */
static void ref_bounds(const struct policy *p, const struct vm_view *vm, uint64_t *vlo,
                       uint64_t *vhi, uint64_t *mlo, uint64_t *mhi)
{
	uint64_t dom_hi = vm->vcpus_dom_max ? vm->vcpus_dom_max : vm->vcpus;

	*vhi = p->vcpus_max && p->vcpus_max < dom_hi ? p->vcpus_max : dom_hi;
	*vhi = *vhi ? *vhi : 1;
	*vlo = p->vcpus_min ? p->vcpus_min : vm->vcpus_dom_min;
	*vlo = *vlo ? *vlo : 1;
	*vlo = min_u64(*vlo, *vhi);
	dom_hi = vm->mem_dom_max_kib ? vm->mem_dom_max_kib : vm->mem_kib;
	*mhi = p->mem_max_kib && p->mem_max_kib < dom_hi ? p->mem_max_kib : dom_hi;
	*mlo = min_u64(p->mem_min_kib ? p->mem_min_kib : vm->mem_dom_min_kib, *mhi);
}

static void random_case(struct counts *n)
{
	static const float levels[] = {0, 10, 25, 50, 85, 100};
	struct policy p;
	struct policy_state st;
	struct vm_view vm = {0};
	struct host_view host;
	struct decision d;
	uint64_t t = 1 + rnd(1000000), g, off, vlo, vhi, mlo, mhi, k_lo, k_hi;
	unsigned nsamples = rnd(4) ? 5 + rnd(300) : rnd(5);
	float busy = levels[rnd(6)], avail = levels[rnd(6)];
	bool stale;

	table_policy(&p);
	p.vcpus_min = rnd(3) ? 0 : rnd(6);
	p.vcpus_max = rnd(3) ? 0 : p.vcpus_min + rnd(8);
	p.mem_min_kib = rnd(3) ? 0 : rnd(8192) * MIB;
	p.mem_max_kib = rnd(3) ? 0 : p.mem_min_kib + rnd(8192) * MIB;
	p.vcpu_step_up = 1 + rnd(4);
	p.vcpu_step_down = 1 + rnd(4);
	p.mem_step_up_kib = (1 + rnd(1024)) * MIB;
	p.mem_step_down_kib = (1 + rnd(1024)) * MIB;
	p.cpu_down_for_ms = p.cpu_up_for_ms + rnd(60000);
	p.mem_down_for_ms = p.mem_up_for_ms + rnd(120000);
	assert_int_equal(policy_validate(&p, NULL, 0), 0);

	vm.vcpus = rnd(20);
	vm.vcpus_dom_min = rnd(4);
	vm.vcpus_dom_max = rnd(8) ? vm.vcpus + rnd(8) : rnd(20);
	vm.mem_granule_kib = rnd(5) ? (uint64_t)(1u << rnd(8)) * MIB : rnd(3);
	vm.mem_dom_min_kib = rnd(4096) * MIB + rnd(2) * rnd(1024);
	vm.mem_dom_max_kib = rnd(6) ? vm.mem_dom_min_kib + rnd(16384) * MIB : 0;
	g = vm.mem_granule_kib ? vm.mem_granule_kib : 1;
	off = vm.mem_dom_min_kib % g;
	/* mostly on the grid, sometimes anywhere */
	vm.mem_kib = rnd(5) ? off + rnd((uint32_t)min_u64(24576 * MIB / g, UINT32_MAX)) * g
	                    : rnd(24576) * MIB;
	vm.mem_kib = vm.mem_kib ? vm.mem_kib : g;
	/* mostly inside the bounds, where the load-driven steps act */
	ref_bounds(&p, &vm, &vlo, &vhi, &mlo, &mhi);
	if (rnd(8))
		vm.vcpus = (uint32_t)(vlo + rnd((uint32_t)(vhi - vlo + 1)));
	k_lo = mlo > off ? (mlo - off + g - 1) / g : 0;
	k_hi = mhi >= off ? (mhi - off) / g : 0;
	if (rnd(8) && mhi >= off && k_lo <= k_hi && off + k_lo * g > 0)
		vm.mem_kib = off + (k_lo + rnd((uint32_t)min_u64(k_hi - k_lo + 1, UINT32_MAX))) * g;
	ref_bounds(&p, &vm, &vlo, &vhi, &mlo, &mhi);
	vm.busy = !rnd(20);

	policy_state_init(&st);
	for (unsigned i = 0; i < nsamples; i++) {
		struct sample s = {0};

		s.has = ALL_FIGURES & (rnd(10) ? ~0u : (uint32_t)rnd(1u << SF__COUNT));
		s.interval_ms = rnd(20) ? 1000 : rnd(100000);
		s.cpus_online = rnd(10) ? vm.vcpus : rnd(64);
		s.cpu_busy_pct = rnd_pct(busy);
		s.psi_cpu_some_avg10 = rnd(5) ? 0 : rnd_pct(30);
		s.psi_mem_some_avg10 = rnd(5) ? 0 : rnd_pct(15);
		s.mem_total_kib =
		        rnd(10) ? vm.mem_kib - min_u64(vm.mem_kib / 2, 64 * MIB) : rnd(3) * MIB;
		s.mem_avail_kib = (uint64_t)((double)s.mem_total_kib * rnd_pct(avail) / 100.0);
		s.saturated = !rnd(4);
		s.nthreads = rnd(SAMPLE_MAX_THREADS + 1);
		for (unsigned k = 0; k < s.nthreads; k++) {
			s.threads[k].tid = rnd(100000);
			s.threads[k].cpu_pct = (float)rnd(101);
			for (unsigned c = 0; k == 0 && c + 1 < SAMPLE_COMM_LEN; c++)
				s.threads[k].comm[c] = (char)(rnd(3) ? 'a' + rnd(26) : rnd(256));
		}
		t += rnd(30) ? 1000 : rnd(10000);
		policy_observe(&p, &st, &s, t);
	}
	vm.st = &st;
	vm.last_vcpu_up_ms = rnd(3) ? 0 : t - rnd(200000) % (t + 1);
	vm.last_vcpu_down_ms = rnd(3) ? 0 : t - rnd(200000) % (t + 1);
	vm.last_mem_up_ms = rnd(3) ? 0 : t - rnd(200000) % (t + 1);
	vm.last_mem_down_ms = rnd(3) ? 0 : t - rnd(200000) % (t + 1);
	host.vcpus_free = (int64_t)rnd(10) - 2;
	host.mem_free_kib = ((int64_t)rnd(4096) - 256) * (int64_t)MIB;
	t += rnd(4) ? rnd(1500) : rnd(10000);
	policy_decide(&p, &vm, &host, t, &d);

	stale = !st.last_ms || t - st.last_ms > p.stale_ms;
	assert_true(d.vcpus_from == vm.vcpus && d.mem_from_kib == vm.mem_kib);
	assert_true(d.text[0] && memchr(d.text, '\0', sizeof(d.text)));
	assert_string_not_equal(policy_action_name(d.action), "unknown");
	assert_string_not_equal(policy_reason_name(d.reason), "unknown");
	if (stale)
		assert_true(d.action == ACTION_HOLD && d.reason == REASON_NO_DATA);
	if (vm.busy)
		assert_int_equal(d.action, ACTION_HOLD);
	if (!is_vcpu(d.action))
		assert_int_equal(d.vcpus_to, d.vcpus_from);
	if (!is_mem(d.action))
		assert_true(d.mem_to_kib == d.mem_from_kib);
	if (d.clipped)
		assert_true(d.action == ACTION_VCPU_UP || d.action == ACTION_MEM_UP);
	switch (d.action) {
	case ACTION_VCPU_UP:
		assert_true(d.vcpus_to > d.vcpus_from && d.vcpus_to <= vhi);
		assert_true(host.vcpus_free > 0 && d.vcpus_to - d.vcpus_from <= host.vcpus_free);
		assert_true(d.vcpus_to >= vlo || d.clipped);
		break;
	case ACTION_VCPU_DOWN:
		assert_true(d.vcpus_to < d.vcpus_from && d.vcpus_to >= vlo && d.vcpus_to >= 1);
		assert_true(d.vcpus_to <= vhi || d.vcpus_from > vhi);
		break;
	case ACTION_MEM_UP:
		assert_true(d.mem_to_kib > d.mem_from_kib && d.mem_to_kib <= mhi);
		assert_true((int64_t)(d.mem_to_kib - d.mem_from_kib) <= host.mem_free_kib);
		assert_true(d.mem_to_kib >= mlo || d.clipped);
		assert_true(d.mem_to_kib >= off && (d.mem_to_kib - off) % g == 0);
		break;
	case ACTION_MEM_DOWN:
		assert_true(d.mem_to_kib < d.mem_from_kib && d.mem_to_kib >= mlo);
		assert_true(d.mem_to_kib > 0 && (d.mem_to_kib - off) % g == 0);
		/* from inside the bounds a shrink stays inside; from above it only comes closer */
		assert_true(d.mem_to_kib <= mhi || d.mem_from_kib > mhi);
		break;
	case ACTION_HOLD:
		break;
	}
	if (d.action != ACTION_HOLD && d.vcpus_from >= vlo && d.vcpus_from <= vhi)
		assert_true(d.vcpus_to >= vlo && d.vcpus_to <= vhi);
	n->by_action[d.action]++;
	n->by_reason[d.reason]++;
	n->clipped += d.clipped;
}

static void test_random(void **state)
{
	struct counts n = {0};

	(void)state;
	lcg_state = 20240601;
	for (int i = 0; i < 100000; i++)
		random_case(&n);
	for (int a = 0; a < 5; a++)
		print_message("%s %u ", policy_action_name((enum action)a), n.by_action[a]);
	for (int r = 0; r <= REASON_BOUNDS; r++)
		print_message("%s %u ", policy_reason_name((enum reason)r), n.by_reason[r]);
	print_message("clipped %u\n", n.clipped);
	/* a walk that never reaches an outcome checks nothing there */
	for (int a = 0; a < 5; a++)
		assert_true(n.by_action[a] > 500);
	for (int r = 0; r <= REASON_BOUNDS; r++)
		assert_true(n.by_reason[r] > 100);
	assert_true(n.clipped > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_table),    cmocka_unit_test(test_runs),
	        cmocka_unit_test(test_validate), cmocka_unit_test(test_names),
	        cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
