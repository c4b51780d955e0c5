/* A policy's settings: the built-in defaults and the checks that reject contradictory ones, with
 * messages in config-file syntax so they can be pasted back. The engine that applies a policy is
 * verdict.c (one sample against the thresholds), runs.c (the stream's runs), bounds.c (the sizes
 * a VM may take) and decision.c (one decision); policy.h is the public API of all of them. */
#include "policy.h"

#include "conf.h"

#include <errno.h>
#include <stdio.h>

#define KIB_PER_MIB 1024ull
#define MIB(kib)    ((unsigned long long)((kib) / KIB_PER_MIB))

void policy_default(struct policy *p)
{
	*p = (struct policy){
	        .name = "default",
	        /* tuned with vscale-sim on the shipped traces (bench/RESULTS.md): the
	         * proxmox-vm-autoscale thresholds (80%, 15%) left ~30% more slack with no less
	         * under-provisioning, because scale-down came late and slow */
	        .cpu_up_pct = 92,
	        .cpu_down_pct = 40,
	        .cpu_psi_up_pct = 25,
	        .cpu_up_for_ms = 10000,
	        .cpu_down_for_ms = 30000,
	        .vcpu_step_up = 1,
	        .vcpu_step_down = 4,
	        .vcpu_cooldown_up_ms = 30000,
	        .vcpu_cooldown_down_ms = 30000,
	        .mem_up_avail_pct = 8,
	        .mem_down_avail_pct = 25,
	        .mem_psi_up_pct = 10,
	        .mem_up_for_ms = 2000,
	        .mem_down_for_ms = 30000,
	        .mem_step_up_kib = 768 * KIB_PER_MIB,
	        .mem_step_down_kib = 512 * KIB_PER_MIB,
	        .mem_margin_kib = 256 * KIB_PER_MIB,
	        .mem_cooldown_up_ms = 5000,
	        .mem_cooldown_down_ms = 30000,
	        .stale_ms = 5000,
	};
}

/* ---- validation ---- */

/* Durations and sizes in config-file syntax, so a message can be pasted back. */
static const char *conf_ms(char *buf, size_t cap, uint64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, cap, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, cap, "%llums", (unsigned long long)ms);
	return buf;
}

static const char *conf_size(char *buf, size_t cap, uint64_t kib)
{
	if (kib && kib % (KIB_PER_MIB * KIB_PER_MIB) == 0)
		snprintf(buf, cap, "%lluG",
		         (unsigned long long)(kib / (KIB_PER_MIB * KIB_PER_MIB)));
	else if (kib && kib % KIB_PER_MIB == 0)
		snprintf(buf, cap, "%lluM", MIB(kib));
	else
		snprintf(buf, cap, "%lluK", (unsigned long long)kib);
	return buf;
}

static int check_windows(const char *res, uint64_t up_ms, uint64_t down_ms, char *err,
                         size_t errlen)
{
	char a[32], b[32];

	if (down_ms >= up_ms)
		return 0;
	return conf_fail(
	        err, errlen,
	        "scale-down must not be faster than scale-up: %s-down-for %s < %s-up-for %s", res,
	        conf_ms(a, sizeof(a), down_ms), res, conf_ms(b, sizeof(b), up_ms));
}

static int check_bounds(const struct policy *p, char *err, size_t errlen)
{
	char a[32], b[32];

	if (p->vcpus_min && p->vcpus_max && p->vcpus_min > p->vcpus_max)
		return conf_fail(err, errlen, "vcpus: minimum %u > maximum %u",
		                 (unsigned)p->vcpus_min, (unsigned)p->vcpus_max);
	if (p->mem_min_kib && p->mem_max_kib && p->mem_min_kib > p->mem_max_kib)
		return conf_fail(err, errlen, "memory: minimum %s > maximum %s",
		                 conf_size(a, sizeof(a), p->mem_min_kib),
		                 conf_size(b, sizeof(b), p->mem_max_kib));
	return 0;
}

static int check_thresholds(const struct policy *p, char *err, size_t errlen)
{
	const struct {
		const char *key;
		double pct;
	} pcts[] = {
	        {"cpu-up", p->cpu_up_pct},
	        {"cpu-down", p->cpu_down_pct},
	        {"cpu-pressure-up", p->cpu_psi_up_pct},
	        {"mem-available-up", p->mem_up_avail_pct},
	        {"mem-available-down", p->mem_down_avail_pct},
	        {"mem-pressure-up", p->mem_psi_up_pct},
	};

	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
		if (!(pcts[i].pct >= 0 && pcts[i].pct <= 100)) /* NaN too */
			return conf_fail(err, errlen, "%s: %g%% is not within 0..100%%",
			                 pcts[i].key, pcts[i].pct);
	if (p->cpu_down_pct >= p->cpu_up_pct)
		return conf_fail(err, errlen, "cpu-down %g%% must be below cpu-up %g%%",
		                 p->cpu_down_pct, p->cpu_up_pct);
	if (p->mem_up_avail_pct >= p->mem_down_avail_pct)
		return conf_fail(err, errlen,
		                 "mem-available-up %g%% must be below mem-available-down %g%%",
		                 p->mem_up_avail_pct, p->mem_down_avail_pct);
	/* 0% pressure would count every sample as pressure: always scale up */
	if (p->cpu_psi_up_pct <= 0)
		return conf_fail(err, errlen, "cpu-pressure-up must be above 0%%");
	if (p->mem_psi_up_pct <= 0)
		return conf_fail(err, errlen, "mem-pressure-up must be above 0%%");
	return 0;
}

static int check_steps(const struct policy *p, char *err, size_t errlen)
{
	const struct {
		const char *key;
		uint64_t step;
	} steps[] = {
	        {"vcpu-step-up", p->vcpu_step_up},
	        {"vcpu-step-down", p->vcpu_step_down},
	        {"mem-step-up", p->mem_step_up_kib},
	        {"mem-step-down", p->mem_step_down_kib},
	};

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (!steps[i].step)
			return conf_fail(err, errlen, "%s must be above 0", steps[i].key);
	return 0;
}

/* One message: the first contradiction, bounds before thresholds, steps and windows. */
int policy_validate(const struct policy *p, char *err, size_t errlen)
{
	int r;

	r = check_bounds(p, err, errlen);
	if (r < 0)
		return r;
	r = check_thresholds(p, err, errlen);
	if (r < 0)
		return r;
	r = check_steps(p, err, errlen);
	if (r < 0)
		return r;
	if (!p->stale_ms)
		return conf_fail(err, errlen, "stale-after must be above 0");
	r = check_windows("cpu", p->cpu_up_for_ms, p->cpu_down_for_ms, err, errlen);
	if (r < 0)
		return r;
	return check_windows("mem", p->mem_up_for_ms, p->mem_down_for_ms, err, errlen);
}
