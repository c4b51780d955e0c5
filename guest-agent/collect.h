/* The guest's metric collector: /proc and /sys under a root directory -> struct sample.
 *
 * With root "/" per-thread CPU comes through libproc2 (procps 4); with any other root (a fake
 * tree in tests) the same two-phase scan (procs.h) parses <root>/proc/<pid>/stat and, for the
 * processes that moved, <root>/proc/<pid>/task/<tid>/stat, because libproc2 only reads the real
 * /proc. Everything else is parsed under root in both cases. */
#ifndef VSCALE_COLLECT_H
#define VSCALE_COLLECT_H

#include <stdint.h>

#include "sample.h"

struct collect_opts {
	unsigned top_threads;        /* threads reported per sample, <= SAMPLE_MAX_THREADS */
	double saturation_pct;       /* a thread at >= this % of one CPU is hot (95) */
	unsigned saturation_samples; /* ... for this many consecutive samples (3) */
	double rest_idle_pct;        /* ... while the other CPUs are busy below this % (50) */
	bool scan_threads;           /* false: no per-thread scan, no saturation flag */
};

void collect_opts_default(struct collect_opts *o);

struct collector;

/* Returns a new collector reading under root (copied), or NULL with errno set. Free with
 * collect_free(). */
struct collector *collect_new(const char *root, const struct collect_opts *opts);
void collect_free(struct collector *c);

/* Takes one sample at guest monotonic time now_ms. Rates (busy %, thread %) are over the time
 * since the previous call; the first call has no rates (those fields absent). Figures that
 * cannot be read are absent. Returns 0, or -errno only when nothing at all could be read. */
int collect_sample(struct collector *c, uint64_t now_ms, struct sample *ret);

#endif
