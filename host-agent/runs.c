/* The runs: what the policy remembers of a VM's sample stream. policy_observe() folds each sample
 * into one run per condition ("busy >= cpu-up since t", verdict.c decides each sample) and into
 * the aggregates a shrink needs (peak load and hot threads over the low run, peak memory in use
 * over the plentiful run). No sample history: struct policy_state is fixed-size (the design note
 * in policy.h). Pure: the host time comes in as an argument. */
#include "runs.h"

#include <string.h>

#include "verdict.h"

#define DEFAULT_INTERVAL_MS 1000u
/* A guest's claimed sample interval widens the window-coverage slack; trust at most this. */
#define MAX_INTERVAL_MS 60000u

void policy_state_init(struct policy_state *st)
{
	memset(st, 0, sizeof(*st));
}

void policy_state_reset_runs(struct policy_state *st)
{
	st->cpu_high_since = st->cpu_low_since = 0;
	st->mem_low_since = st->mem_high_since = 0;
	st->cpu_low_max_busy_cores = 0;
	st->cpu_low_max_hot = 0;
	st->mem_high_max_used_kib = 0;
	st->saturated_ms = 0;
}

/* Starts, extends or breaks one run. True when the sample belongs to the run (its figures go
 * into the run's aggregates); *ret_started when it is the run's first. */
static bool run(uint64_t *since, enum verdict v, uint64_t host_ms, bool *ret_started)
{
	*ret_started = false;
	if (v == VERDICT_ABSENT)
		return false;
	if (v == VERDICT_NO) {
		*since = 0;
		return false;
	}
	if (!*since) {
		*since = host_ms;
		*ret_started = true;
	}
	return true;
}

static uint32_t interval_of(const struct sample *s)
{
	if (!SAMPLE_HAS(s, SF_INTERVAL) || !s->interval_ms)
		return DEFAULT_INTERVAL_MS;
	return s->interval_ms < MAX_INTERVAL_MS ? s->interval_ms : MAX_INTERVAL_MS;
}

void policy_observe(const struct policy *p, struct policy_state *st, const struct sample *s,
                    uint64_t host_ms)
{
	bool started;

	host_ms = host_ms ? host_ms : 1; /* 0 means "none" in every field */
	if (st->last_ms && (host_ms < st->last_ms || host_ms - st->last_ms > p->stale_ms))
		policy_state_reset_runs(st); /* missing data breaks continuity */
	st->last_ms = host_ms;
	st->interval_ms = interval_of(s);
	st->newest = *s;

	if (run(&st->cpu_high_since, verdict_cpu_high(p, s), host_ms, &started)) {
		if (started)
			st->saturated_ms = 0;
		if (verdict_one_thread(p, s))
			st->saturated_ms = host_ms;
	}
	if (run(&st->cpu_low_since, verdict_cpu_low(p, s), host_ms, &started)) {
		double cores = s->cpu_busy_pct / 100.0 * s->cpus_online;
		uint32_t hot = verdict_hot_threads(s);

		if (started || cores > st->cpu_low_max_busy_cores)
			st->cpu_low_max_busy_cores = cores;
		if (started || hot > st->cpu_low_max_hot)
			st->cpu_low_max_hot = hot;
	}
	run(&st->mem_low_since, verdict_mem_low(p, s), host_ms, &started);
	if (run(&st->mem_high_since, verdict_mem_high(p, s), host_ms, &started)) {
		uint64_t used = verdict_mem_used_kib(s);

		if (started || used > st->mem_high_max_used_kib)
			st->mem_high_max_used_kib = used;
	}
}

/* The run's first sample stands for the interval before it, so N samples 1 s apart hold for
 * N s: held when now - since + interval >= for_ms (written so that nothing overflows). */
bool runs_held(const struct policy_state *st, uint64_t since, uint64_t now_ms, uint64_t for_ms)
{
	uint64_t age_ms = now_ms > since ? now_ms - since : 0;

	return since && (age_ms >= for_ms || for_ms - age_ms <= st->interval_ms);
}
