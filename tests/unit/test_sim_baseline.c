/* vscale-sim's baselines and accounting on tiny traces whose figures are computed by hand in the
 * comments: static peak, the proxmox-vm-autoscale rule (checks every 300 s, +-1 vCPU, +512 MiB),
 * MoM's moving average, the oracle, operation latency (charged vs usable) and the
 * under-provisioned share; and vscale's policy against proxmox on a sudden jump. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "baseline.h"
#include "sim_check.h"
#include "simulate.h"
#include "trace.h"
#include "vsctl.h"

#define GIB_KIB (1024.0 * 1024.0)

/* A trace in memory: readings at t_s with cpu cores and mem GiB; one segment. */
static struct trace *make(const double (*rows)[3], size_t n)
{
	struct trace *t = test_calloc(1, sizeof(*t));

	t->pts = test_calloc(n, sizeof(*t->pts));
	t->n = t->cap_pts = t->rows = n;
	snprintf(t->name, sizeof(t->name), "hand");
	for (size_t i = 0; i < n; i++)
		t->pts[i] = (struct trace_point){.t_s = rows[i][0],
		                                 .cpu_cores = rows[i][1],
		                                 .mem_kib = rows[i][2] * GIB_KIB,
		                                 .starts_segment = i == 0};
	return t;
}

static void unmake(struct trace *t)
{
	test_free(t->pts);
	test_free(t);
}

enum who { STATIC_PEAK, PROXMOX, MOM, ORACLE, VSCALE };

/* A figure of struct sim_result a run must show: a count (uint64_t) equal to value, or a double
 * within tol of it (assert_float_equal). */
struct want {
	const char *figure; /* the field's name; NULL ends a list */
	size_t off;
	bool count;
	double value, tol;
};

#define FIGURE(f, v, t)                                                                            \
	{                                                                                          \
#f, offsetof(struct sim_result, f), false, (v), (t)                                \
	}
#define COUNT(f, v)                                                                                \
	{                                                                                          \
#f, offsetof(struct sim_result, f), true, (v), 0                                   \
	}
#define MAX_WANTS 8

/* One controller over a hand-made trace, and what its run must show. */
struct hand_case {
	const char *name;
	const double (*rows)[3];
	size_t nrows;
	enum who who;
	double peak_cores, peak_gib; /* STATIC_PEAK's sizing */
	struct want wants[MAX_WANTS];
};

/* Runs hc's controller over hc's trace in sim_check_env(); the caller frees *r with
 * sim_result_fini(). */
static void run_hand(const struct hand_case *hc, struct sim_result *r)
{
	struct trace *t = make(hc->rows, hc->nrows);
	struct sim_env e = sim_check_env();
	struct proxmox_rule px;
	struct mom_rule m;
	struct policy p;
	struct ctl c;

	switch (hc->who) {
	case STATIC_PEAK:
		assert_int_equal(
		        baseline_static_new(&e, hc->peak_cores, hc->peak_gib * GIB_KIB, &c), 0);
		break;
	case PROXMOX:
		baseline_proxmox_default(&px);
		assert_int_equal(baseline_proxmox_new(&e, &px, &c), 0);
		break;
	case MOM:
		baseline_mom_default(&m);
		assert_int_equal(baseline_mom_new(&e, &m, &c), 0);
		break;
	case ORACLE:
		assert_int_equal(baseline_oracle_new(&c), 0);
		break;
	case VSCALE:
		policy_default(&p);
		assert_int_equal(vsctl_new("vscale", &p, &e, &c), 0);
		break;
	}
	sim_check_run(t, &e, &c, r);
	unmake(t);
}

static void check_wants(const struct sim_result *r, const struct want *w)
{
	for (size_t i = 0; i < MAX_WANTS && w[i].figure; i++) {
		const char *at = (const char *)r + w[i].off;
		uint64_t n;
		double x;

		if (w[i].count) {
			memcpy(&n, at, sizeof(n));
			assert_int_equal(n, (uint64_t)w[i].value);
		} else {
			memcpy(&x, at, sizeof(x));
			assert_float_equal(x, w[i].value, w[i].tol);
		}
	}
}

static const struct hand_case cases[] = {
        /* cpu 0.5 -> 1.5 cores and mem 1 -> 1.5 GiB over an hour: peak 2 vCPUs and 1.5 GiB all
         * along. CPU slack = (2 - mean 1.0) / 2 = 50%; memory = (1.5 - 1.25) / 1.5 = 16.7%. */
        {.name = "static_peak",
         .rows = (const double[][3]){{0, 0.5, 1.0}, {3600, 1.5, 1.5}},
         .nrows = 2,
         .who = STATIC_PEAK,
         .peak_cores = 1.5,
         .peak_gib = 1.5,
         .wants = {FIGURE(hours, 1.0, 1e-9), FIGURE(vcpu_h, 2.0, 1e-9), FIGURE(gib_h, 1.5, 1e-9),
                   FIGURE(cpu_slack_pct, 50.0, 0.01),
                   FIGURE(mem_slack_pct, 100.0 * 0.25 / 1.5, 0.01),
                   FIGURE(under_any_pct, 0.0, 1e-12), COUNT(vcpu_actions, 0),
                   COUNT(mem_actions, 0)}},
        /* Constant 3 cores and 2 GiB for an hour; warm start sized for the first reading (3
         * vCPUs, 2 GiB). Check at t=0: busy 100% > 80% -> 4 vCPUs (1 s), used 100% > 85% ->
         * 2.5 GiB (0.5 GiB x 11 s = 5.5 s, done at the t=6 sample). t=300...: 75% and 80%,
         * inside the band. The larger size is charged from the start: 4.0 vCPU-h and 2.5 GiB-h
         * exactly. Demand == usable is not under. */
        {.name = "proxmox_up",
         .rows = (const double[][3]){{0, 3.0, 2.0}, {3600, 3.0, 2.0}},
         .nrows = 2,
         .who = PROXMOX,
         .wants = {COUNT(vcpu_actions, 1), COUNT(mem_actions, 1), FIGURE(vcpu_h, 4.0, 1e-9),
                   FIGURE(gib_h, 2.5, 1e-9), FIGURE(cpu_slack_pct, 25.0, 1e-6),
                   FIGURE(mem_slack_pct, 20.0, 1e-6), FIGURE(under_any_pct, 0.0, 1e-12)}},
        /* 3 cores for 600 s, then 0.2 cores to 1800 s; 0.5 GiB (below the 1 GiB floor) all
         * along. Checks: t=0 3 -> 4 vCPUs (busy 100%); t=300 75% holds; t=600 5% -> 3; t=900
         * 6.7% -> 2; t=1200 10% -> 1; t=1500 20% is not < 20%: holds. Each shrink charges the
         * larger size for its 0.1 s (one 1 s step): vCPU-s = 4 x 600 + (4 + 3 x 299) +
         * (3 + 2 x 299) + (2 + 1 x 599) = 4503. Memory: used 50% holds at 1 GiB: 0.5 GiB-h,
         * slack 50%. */
        {.name = "proxmox_down",
         .rows = (const double[][3]){{0, 3.0, 0.5},
                                     {599, 3.0, 0.5},
                                     {600, 0.2, 0.5},
                                     {1800, 0.2, 0.5}},
         .nrows = 4,
         .who = PROXMOX,
         .wants = {COUNT(vcpu_actions, 4), COUNT(mem_actions, 0),
                   FIGURE(vcpu_h, 4503.0 / 3600.0, 1e-9), FIGURE(gib_h, 0.5, 1e-9),
                   FIGURE(mem_slack_pct, 50.0, 1e-6)}},
        /* MoM: 3 cores constant on a warm 3 vCPUs: the average (3 cores) aims at ceil(3 / 0.8) =
         * 4: +1 vCPU at t=0, then holds (3 cores of 4 aims at 4 again). Memory 0.5 GiB at the
         * 1 GiB floor: aim 0.5 + 20% x 1 = 0.7 GiB, below the floor: no change. */
        {.name = "mom_average",
         .rows = (const double[][3]){{0, 3.0, 0.5}, {600, 3.0, 0.5}},
         .nrows = 2,
         .who = MOM,
         .wants = {COUNT(vcpu_actions, 1), COUNT(mem_actions, 0),
                   FIGURE(vcpu_h, 4.0 * 600 / 3600.0, 1e-9), FIGURE(cpu_slack_pct, 25.0, 1e-6)}},
        /* The oracle: 1.5 cores and 1.5 GiB -> 2 vCPUs and 1.5 GiB (on the 2 MiB grid), at
         * once. */
        {.name = "oracle_bound",
         .rows = (const double[][3]){{0, 1.5, 1.5}, {3600, 1.5, 1.5}},
         .nrows = 2,
         .who = ORACLE,
         .wants = {FIGURE(vcpu_h, 2.0, 1e-9), FIGURE(gib_h, 1.5, 1e-9),
                   FIGURE(cpu_slack_pct, 25.0, 1e-6), FIGURE(mem_slack_pct, 0.0, 1e-6),
                   FIGURE(under_any_pct, 0.0, 1e-12)}},
};

/* One row of cases[], its test's initial state. */
static void run_case(void **state)
{
	const struct hand_case *hc = *state;
	struct sim_result r;

	run_hand(hc, &r);
	check_wants(&r, hc->wants);
	sim_result_fini(&r);
}

/* 0.5 cores to t=299, then 3 cores to 1200 s, 0.5 GiB. proxmox: t=0 busy 50% holds; t=300
 * busy 100% -> 2 vCPUs (done 301); t=600 -> 3 (done 601); t=900 (3 of 3 cores, 100%) -> 4.
 * Demand exceeds what the guest can use from 300 to 601: 301 of 1200 s = 25.08%; shortfall 2 core-s
 * + 300 x 1 = 302 core-s. vscale's policy reacts within seconds: far less under-provisioned time on
 * the same trace. */
static void jump_under_provisioned(void **state)
{
	static const double rows[][3] = {
	        {0, 0.5, 0.5}, {299, 0.5, 0.5}, {300, 3.0, 0.5}, {1200, 3.0, 0.5}};
	const struct hand_case px = {.rows = rows, .nrows = 4, .who = PROXMOX};
	const struct hand_case vs = {.rows = rows, .nrows = 4, .who = VSCALE};
	struct sim_result r, v;

	run_hand(&px, &r);
	assert_int_equal(r.vcpu_actions, 3);
	assert_float_equal(r.under_cpu_pct, 100.0 * 301.0 / 1200.0, 1e-6);
	assert_float_equal(r.under_mem_pct, 0.0, 1e-12);
	assert_float_equal(r.under_any_pct, r.under_cpu_pct, 1e-12);
	assert_float_equal(r.short_core_h, 302.0 / 3600.0, 1e-9);

	run_hand(&vs, &v);
	assert_true(v.vcpu_actions >= 2);
	assert_true(v.under_cpu_pct < r.under_cpu_pct / 2);
	sim_result_fini(&v);
	sim_result_fini(&r);
}

/* An environment that cannot run is refused. */
static void bad_env(void **state)
{
	static const double rows[][3] = {{0, 1, 1}, {10, 1, 1}};
	struct trace *t = make(rows, 2);
	struct sim_env e = sim_check_env();
	struct sim_result r;
	struct ctl c;

	e.interval_ms = 0;
	assert_int_equal(baseline_oracle_new(&c), 0);
	assert_int_equal(sim_run(t, &e, &c, &r), -EINVAL);
	sim_result_fini(&r);
	unmake(t);
}

#define HAND_TEST(i)                                                                               \
	{                                                                                          \
		cases[i].name, run_case, NULL, NULL, (void *)&cases[i]                             \
	}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        HAND_TEST(0),
	        HAND_TEST(1),
	        HAND_TEST(2),
	        cmocka_unit_test(jump_under_provisioned),
	        HAND_TEST(3),
	        HAND_TEST(4),
	        cmocka_unit_test(bad_env),
	};

	_Static_assert(sizeof(cases) / sizeof(cases[0]) == 5, "every case in tests[]");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
