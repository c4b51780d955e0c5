/* What the simulator tests share: the simulated VM they run on and one run of a controller.
 * Header-only (static inline): include it after <cmocka.h>, "simulate.h" and "ctl.h". */
#ifndef VSCALE_TESTS_SIM_CHECK_H
#define VSCALE_TESTS_SIM_CHECK_H

#include "ctl.h"
#include "simulate.h"
#include "trace.h"

/* 1..16 vCPUs, 1..64 GiB on a 2 MiB grid, a sample a second; a vCPU comes in 1 s and goes in
 * 0.1 s, memory moves at 11 s per GiB either way. */
static inline struct sim_env sim_check_env(void)
{
	return (struct sim_env){.vcpus_min = 1,
	                        .vcpus_max = 16,
	                        .mem_min_kib = 1024 * 1024,
	                        .mem_max_kib = 64ull * 1024 * 1024,
	                        .granule_kib = 2048,
	                        .interval_ms = 1000,
	                        .vcpu_up_ms = 1000,
	                        .vcpu_down_ms = 100,
	                        .mem_up_ms_per_gib = 11000,
	                        .mem_down_ms_per_gib = 11000};
}

/* Runs c over t in e, which must succeed, then frees c's state; the caller frees *r with
 * sim_result_fini(). */
static inline void sim_check_run(const struct trace *t, const struct sim_env *e, struct ctl *c,
                                 struct sim_result *r)
{
	assert_int_equal(sim_run(t, e, c, r), 0);
	ctl_free(c);
}

#endif
