/* Issue 8's goal for the default policy, as a checkable property of one trace's results:
 * vscale's slack at least 30% below the proxmox-vm-autoscale rule's, with no more
 * under-provisioned time.
 *
 * Slack is the combined figure (goal_combined_slack()). Under-provisioned time is judged per
 * resource: vscale's CPU and memory shares may each not exceed proxmox's.
 *
 * Some traces leave no controller room for a 30% cut: when the demand sits far below the domain's
 * minimum (1 vCPU, the boot memory), the minimum is most of every allocation. The oracle (the
 * demand rounded up, at every sample) shows it: when even its slack is not 30% below proxmox's,
 * the trace is "infeasible" and the cut is judged on the avoidable slack instead, the slack above
 * the oracle's (percentage points): vscale's must be at least 30% below proxmox's. */
#ifndef VSCALE_SIM_GOAL_H
#define VSCALE_SIM_GOAL_H

#include <stdbool.h>

#include "simulate.h"

#define GOAL_SLACK_CUT_PCT 30.0

struct goal {
	bool met;
	bool feasible;                   /* the oracle itself cuts slack by 30% */
	double cut_pct;                  /* combined slack cut vs the baseline, % of its slack */
	double cpu_cut_pct, mem_cut_pct; /* the same per resource */
	double oracle_cut_pct;           /* the oracle's combined cut */
	double avoidable_cut_pct;        /* cut of the slack above the oracle's */
	char why[256];                   /* what missed, or "" */
};

/* Combined slack %: CPU and memory slack %, each of its own allocation, averaged with equal
 * weight (a vCPU-hour and a GiB-hour have no common unit). */
double goal_combined_slack(const struct sim_result *r);

/* Judges vscale's result against the baseline's, the oracle's giving the bound. */
void goal_check(const struct sim_result *vscale, const struct sim_result *base,
                const struct sim_result *oracle, struct goal *ret);

#endif
