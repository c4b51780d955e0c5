/* Replays a trace through one controller and measures what it allocated against what the trace
 * demanded.
 *
 * Time: the guest sends a sample every env->interval_ms; demand between two trace readings is
 * interpolated linearly; missing data (trace.h) is skipped: no sample, nothing counted, the
 * clock jumps (hostd would see the stream go stale and restart its windows, as
 * policy_observe() does for a gap longer than stale-after).
 *
 * Start: the trace begins in the middle of the VM's life, so autoscalers start sized for its first
 * reading (whole vCPUs and blocks, within bounds); static-peak starts (and stays) at the peak.
 *
 * Changes: a controller's new size starts an operation on that resource that the guest reports
 * done at the first sample at least its latency later (env: per vCPU, per GiB). While it runs
 * the host holds the larger size (charged) and the guest can use the smaller (usable): growth
 * counts once the guest has it, a shrink takes the guest's use away at once. A guest agent that
 * checks shrinks (ctl.guest_checks_shrink, vscale-guestd) refuses one that would leave less than
 * its margin above the demand, as guestd does when it is asked.
 *
 * Measures, integrated step by step over the time simulated:
 *   slack %             integral of max(0, charged - demand) / integral of charged, CPU and
 *                       memory separately
 *   under-provisioned % share of the time the demand exceeds the usable size: CPU, memory, and
 *                       either
 *   shortfall           integral of max(0, demand - usable): core-hours and GiB-hours
 *   actions             operations started, by resource (refused shrinks counted apart) */
#ifndef VSCALE_SIM_SIMULATE_H
#define VSCALE_SIM_SIMULATE_H

#include <stddef.h>
#include <stdint.h>

#include "ctl.h"
#include "trace.h"

/* One point of the allocation over time (charged sizes), for plots; a new segment after
 * missing data has starts_segment set. */
struct sim_point {
	double t_s;
	uint32_t vcpus;
	uint64_t mem_kib;
	int starts_segment;
};

struct sim_result {
	char ctl[32];
	double hours;         /* time simulated */
	double vcpu_h, gib_h; /* charged */
	double demand_core_h, demand_gib_h;
	double cpu_slack_pct, mem_slack_pct;
	double under_cpu_pct, under_mem_pct, under_any_pct;
	double short_core_h, short_gib_h;
	uint64_t vcpu_actions, mem_actions, refused;
	uint64_t samples;
	struct sim_point *pts; /* every change of the charged allocation */
	size_t npts, cap_pts;
};

/* Runs c over t. Returns 0 and fills *ret (free its points with sim_result_fini()), or
 * -ENOMEM / -EINVAL (an env that cannot run: zero interval or bounds). */
int sim_run(const struct trace *t, const struct sim_env *env, struct ctl *c,
            struct sim_result *ret);
void sim_result_fini(struct sim_result *r);

#endif
