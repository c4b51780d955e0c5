/* What one guest sample says against a policy's thresholds: the four conditions whose runs
 * policy_observe() keeps (CPU high, CPU low, memory low, memory plentiful) and the figures behind
 * them, which policy_decide() also quotes. Pure and stateless; a sample that lacks the figure a
 * condition needs leaves it absent, not false. Nothing is allocated; a returned thread points
 * into the caller's sample. Internal to the policy library: other modules include policy.h. */
#ifndef VSCALE_VERDICT_H
#define VSCALE_VERDICT_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"
#include "sample.h"

enum verdict { VERDICT_ABSENT, VERDICT_NO, VERDICT_YES };

/* busy >= cpu-up, or CPU pressure >= cpu-pressure-up while busier than cpu-down */
enum verdict verdict_cpu_high(const struct policy *p, const struct sample *s);
/* busy <= cpu-down and no CPU pressure; absent without the online count */
enum verdict verdict_cpu_low(const struct policy *p, const struct sample *s);
/* available <= mem-available-up, or memory pressure >= mem-pressure-up */
enum verdict verdict_mem_low(const struct policy *p, const struct sample *s);
/* available >= mem-available-down and no memory pressure */
enum verdict verdict_mem_high(const struct policy *p, const struct sample *s);

/* MemAvailable in % of MemTotal; false when the sample lacks either (or MemTotal is 0). */
bool verdict_avail_pct(const struct sample *s, double *ret_pct);
/* MemTotal - MemAvailable, 0 when the guest reports more available than total. */
uint64_t verdict_mem_used_kib(const struct sample *s);
bool verdict_psi_cpu_high(const struct policy *p, const struct sample *s);
bool verdict_psi_mem_high(const struct policy *p, const struct sample *s);

/* The hottest thread the sample lists, or NULL. */
const struct sample_thread *verdict_top_thread(const struct sample *s);
/* One thread saturates a CPU while the rest of the VM idles: more vCPUs would not help. */
bool verdict_one_thread(const struct policy *p, const struct sample *s);
/* Threads busy enough to need a vCPU of their own. */
uint32_t verdict_hot_threads(const struct sample *s);

#endif
