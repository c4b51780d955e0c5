/* vscale-sim's output: a human table per trace, JSON for scripts, and a gnuplot plot of demand
 * against each controller's allocation. Nothing here allocates what the caller must free. */
#ifndef VSCALE_SIM_REPORT_H
#define VSCALE_SIM_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "ctl.h"
#include "goal.h"
#include "simulate.h"
#include "trace.h"

#define REPORT_MAX_CTL 8

/* One trace's run: results[0] is vscale's policy, the rest baselines; goal compares results[0]
 * with the result named "proxmox". */
struct report_trace {
	const struct trace *t;
	const struct sim_env *env;
	struct sim_result res[REPORT_MAX_CTL];
	size_t nres;
	struct goal goal;
	bool have_goal;
};

/* What was simulated with what, for the headers. */
struct report_run {
	char policy[160]; /* "'default' (built-in)" or "'web' from FILE" */
	const struct sim_env *env;
};

void report_table(FILE *out, const struct report_run *run, const struct report_trace *rt);
/* A one-line-per-trace summary of vscale against proxmox, after every table. */
void report_summary(FILE *out, const struct report_trace *rts, size_t n);

/* JSON: one document with a "traces" array. */
void report_json(FILE *out, const struct report_run *run, const struct report_trace *rts, size_t n);

/* Writes DIR/NAME.{demand,CTL}.dat and DIR/NAME.gp, then runs gnuplot on it to make
 * DIR/NAME.FORMAT (png or svg). Returns 0, 1 when gnuplot is not installed (data and script
 * written, nothing plotted), or -errno with a message in err. */
int report_plot(const char *dir, const char *format, const struct report_trace *rt, char *err,
                size_t errlen);

#endif
