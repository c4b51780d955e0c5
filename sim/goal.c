/* The goal check (what it reads the goal as is in goal.h). */
#include "goal.h"

#include <stdio.h>

#define EPS_PCT 1e-9

double goal_combined_slack(const struct sim_result *r)
{
	return (r->cpu_slack_pct + r->mem_slack_pct) / 2.0;
}

static double cut(double ours, double theirs)
{
	return theirs > 0 ? 100.0 * (theirs - ours) / theirs : 0;
}

void goal_check(const struct sim_result *vs, const struct sim_result *base,
                const struct sim_result *oracle, struct goal *ret)
{
	double o = goal_combined_slack(oracle);
	struct goal g = {0};
	double judged;

	g.cut_pct = cut(goal_combined_slack(vs), goal_combined_slack(base));
	g.cpu_cut_pct = cut(vs->cpu_slack_pct, base->cpu_slack_pct);
	g.mem_cut_pct = cut(vs->mem_slack_pct, base->mem_slack_pct);
	g.oracle_cut_pct = cut(o, goal_combined_slack(base));
	g.avoidable_cut_pct = cut(goal_combined_slack(vs) - o, goal_combined_slack(base) - o);
	g.feasible = g.oracle_cut_pct >= GOAL_SLACK_CUT_PCT;
	judged = g.feasible ? g.cut_pct : g.avoidable_cut_pct;
	if (judged < GOAL_SLACK_CUT_PCT)
		snprintf(g.why, sizeof(g.why), "%sslack cut %.1f%% < %.0f%%",
		         g.feasible ? "" : "avoidable ", judged, GOAL_SLACK_CUT_PCT);
	else if (vs->under_cpu_pct > base->under_cpu_pct + EPS_PCT)
		snprintf(g.why, sizeof(g.why), "CPU under-provisioned %.3f%% > %s's %.3f%%",
		         vs->under_cpu_pct, base->ctl, base->under_cpu_pct);
	else if (vs->under_mem_pct > base->under_mem_pct + EPS_PCT)
		snprintf(g.why, sizeof(g.why), "memory under-provisioned %.3f%% > %s's %.3f%%",
		         vs->under_mem_pct, base->ctl, base->under_mem_pct);
	g.met = !g.why[0];
	*ret = g;
}
