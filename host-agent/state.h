/* Per-VM state that survives a hostd restart, so it does not thrash: when each resource last
 * changed, what was granted, and the last action. One small file per VM under the state
 * directory, written atomically. */
#ifndef VSCALE_STATE_H
#define VSCALE_STATE_H

#include <stdbool.h>
#include <stdint.h>

struct vm_state {
	/* wall-clock ms since the epoch; 0 = never */
	uint64_t vcpu_up_ms, vcpu_down_ms, mem_up_ms, mem_down_ms;
	uint32_t vcpus_granted; /* 0 = unknown */
	bool paused;            /* the operator paused scaling (vscalectl pause) */
	char last_action[256];
};

/* Reads <dir>/<uuid>.state. 0, -ENOENT when there is none, -EINVAL when it does not parse. */
int state_load(const char *dir, const char *uuid, struct vm_state *ret);
/* Writes it atomically. 0 or -errno. */
int state_save(const char *dir, const char *uuid, const struct vm_state *s);

/* Converts between wall-clock and monotonic ms using the current offset (0 stays 0; a time in
 * the future or before boot is clamped). */
uint64_t state_wall_to_mono(uint64_t wall_ms, uint64_t now_wall_ms, uint64_t now_mono_ms);
uint64_t state_mono_to_wall(uint64_t mono_ms, uint64_t now_wall_ms, uint64_t now_mono_ms);

#endif
