/* Onlining hot-added CPUs and memory blocks, and offlining them on the host's request.
 *
 * Works on <root>/sys/devices/system/{cpu,memory} and <root>/proc/meminfo so tests run on a
 * fake tree. New memory is onlined as online_movable so that it can be removed later. What a
 * host request offlined is "held": not onlined again until the host asks for more, the hold
 * expires, or the host sends RELEASE. */
#ifndef VSCALE_HOTPLUG_H
#define VSCALE_HOTPLUG_H

#include <stdint.h>

#include "sample.h"

/* Ids beyond these are ignored (garbage or not ours). */
#define HOTPLUG_MAX_CPUS   8192u
#define HOTPLUG_MAX_BLOCKS (1u << 20)

struct hotplug_stats {
	unsigned cpus_onlined;   /* by the last scan */
	unsigned blocks_onlined; /* by the last scan */
	unsigned errors;         /* writes that failed in the last scan */
	unsigned holds_expired;  /* holds that ran out in the last scan (their items onlined) */
	unsigned holds_gone;     /* holds dropped because the host removed the item */
};

struct hotplug;

/* New hotplug handler under root (copied), or NULL with errno set; default_hold_ms applies to
 * requests that carry no hold. Free with hotplug_free(). */
struct hotplug *hotplug_new(const char *root, uint32_t default_hold_ms);
void hotplug_free(struct hotplug *h);

/* What hotplug_new() did to auto_online_blocks: 1 when it switched "offline" to
 * "online_movable", 0 when it left it alone (absent or already onlining), -errno when the switch
 * failed. For the caller to log. */
int hotplug_auto_online(const struct hotplug *h);

/* Onlines present-but-offline CPUs and offline memory blocks that are not held, and expires old
 * holds (re-onlining what they held). Returns 0 or -errno when the cpu or memory directory cannot
 * be read (no memory directory at all is fine: no memory hotplug). *ret may be NULL; it is filled
 * even on error, since the other half may have done work. */
int hotplug_scan(struct hotplug *h, uint64_t now_ms, struct hotplug_stats *ret);

/* Carries out one host request and fills *ret (same id). Never fails: errors are replies. */
void hotplug_handle(struct hotplug *h, const struct request *req, uint64_t now_ms,
                    struct reply *ret);

#endif
