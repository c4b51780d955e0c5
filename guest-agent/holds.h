/* Holds: the CPUs or memory blocks a host request offlined, each with the time its hold runs
 * out. The periodic scan leaves a held item offline. A sorted array (id -> until_ms) on caller
 * storage: zero-initialise it, release with holds_fini(). No I/O, no clock. */
#ifndef VSCALE_HOLDS_H
#define VSCALE_HOLDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hold {
	uint32_t id;
	uint64_t until_ms;
};

struct holds {
	struct hold *v; /* sorted by id */
	size_t n, cap;
};

void holds_fini(struct holds *s);

bool holds_has(const struct holds *s, uint32_t id);

/* Makes room for `extra` more holds so that holds_put() cannot fail halfway through a request.
 * Returns 0 or -ENOMEM. */
int holds_reserve(struct holds *s, size_t extra);

/* Holds id until until_ms (a new hold or a new expiry); needs room from holds_reserve(). */
void holds_put(struct holds *s, uint32_t id, uint64_t until_ms);

/* Forgets the hold on id, if any. */
void holds_drop(struct holds *s, uint32_t id);

/* Forgets every hold (keeps the storage). */
void holds_clear(struct holds *s);

/* Drops holds on ids not in present (sorted ascending, n_present of them), adding one to *gone
 * for each, and holds that ran out by now_ms, adding one to *expired for each. */
void holds_expire(struct holds *s, const uint32_t *present, size_t n_present, uint64_t now_ms,
                  unsigned *gone, unsigned *expired);

#endif
