/* The runs of struct policy_state (policy.h, which declares policy_state_init(),
 * policy_state_reset_runs() and policy_observe(), implemented in runs.c): when a condition's run
 * has held long enough to act on. Pure; nothing is allocated. Internal to the policy library. */
#ifndef VSCALE_RUNS_H
#define VSCALE_RUNS_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"

/* True when the run that started at since (0 = not running) has held for for_ms at now_ms. */
bool runs_held(const struct policy_state *st, uint64_t since, uint64_t now_ms, uint64_t for_ms);

#endif
