/* vscale's policy (host-agent/policy.c, linked, not copied) as a simulated controller, driven
 * the way vscale-hostd drives it: every sample goes through policy_observe() (vm_take_sample),
 * a finished operation forgets the runs (actuate.c finish()), then policy_decide() sees a
 * vm_view built like vm.c's vm_view() and a host with unlimited headroom (one VM, room on the
 * host). A decision sets its resource's last-change time when it starts, as actuate.c does. */
#ifndef VSCALE_SIM_VSCTL_H
#define VSCALE_SIM_VSCTL_H

#include <stdio.h>

#include "ctl.h"
#include "policy.h"

/* Counts of the decisions taken, by enum action and enum reason (holds included). */
struct vsctl_counts {
	uint64_t actions[5];
	uint64_t reasons[16];
};

/* Fills *ret with a controller named name that runs policy p on env. Returns 0 or -ENOMEM. */
int vsctl_new(const char *name, const struct policy *p, const struct sim_env *env, struct ctl *ret);

/* Writes every action vscale's policy takes to log (NULL: none), one line each with the trace
 * time (s since the first row) and hostd's wording: "vcpus 1 -> 2 (cpu 91% >= 80% for 10 s)". */
void vsctl_set_log(struct ctl *c, FILE *log, const char *trace_name);

/* The decision counts so far. */
const struct vsctl_counts *vsctl_counts(const struct ctl *c);

#endif
