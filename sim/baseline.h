/* The baselines vscale's policy is compared with, as simulated controllers (ctl.h). Each reads
 * only what the simulated guest reports (busy %, MemTotal - MemAvailable), as the real tools read
 * their VM's figures, and is bounded by the same domain bounds and memory granule.
 *
 *   static-peak  provisioned once for the trace's peak: ceil(peak cores) vCPUs and the peak
 *                memory rounded up to the granule; never changes.
 *   proxmox      the default rule of proxmox-vm-autoscale (config.yaml, autoscale.py): one check
 *                every 300 s on single readings; CPU busy > 80% adds a vCPU, < 20% removes one;
 *                memory used > 85% adds 512 MiB, < 25% removes 512 MiB; after a change that
 *                resource waits a 300 s cooldown.
 *   mom          in the style of oVirt MoM's balloon policy (doc/balloon.rules, mom-balloon.conf):
 *                a sample every 5 s, moving averages over the last 10, a decision every 10 s.
 *                Memory aims at used + 20% of the current size (min_guest_free_percent): a
 *                shrink moves at most 5% of the current size (max_balloon_change_percent), a
 *                growth at least 5% and straight to the aim when that is further; changes under
 *                0.25% are skipped. CPU, which MoM does not size, follows the same rule in vCPUs:
 *                aim = ceil(average busy cores / 0.8), at most one vCPU per decision.
 *   oracle       not a controller: the least any could allocate, the demand rounded up to whole
 *                vCPUs and blocks (within bounds) at every sample, with no delay. Its slack is
 *                what the bounds and the units force on every controller.
 *
 * Constructors fill a caller-owned struct ctl; free with ctl_free(). Return 0 or -ENOMEM. */
#ifndef VSCALE_SIM_BASELINE_H
#define VSCALE_SIM_BASELINE_H

#include "ctl.h"

struct proxmox_rule {
	double cpu_high_pct, cpu_low_pct, mem_high_pct, mem_low_pct;
	uint32_t vcpu_step;
	uint64_t mem_step_kib;
	uint64_t check_ms, cooldown_ms;
};

struct mom_rule {
	uint64_t sample_ms, decide_ms;
	uint32_t history;       /* samples in the moving average */
	double free_frac;       /* 0.20 */
	double max_change_frac; /* 0.05 */
	double min_change_frac; /* 0.0025 */
};

/* The defaults described above. */
void baseline_proxmox_default(struct proxmox_rule *ret);
void baseline_mom_default(struct mom_rule *ret);

int baseline_static_new(const struct sim_env *env, double peak_cores, double peak_mem_kib,
                        struct ctl *ret);
int baseline_proxmox_new(const struct sim_env *env, const struct proxmox_rule *rule,
                         struct ctl *ret);
int baseline_mom_new(const struct sim_env *env, const struct mom_rule *rule, struct ctl *ret);
int baseline_oracle_new(struct ctl *ret);

#endif
