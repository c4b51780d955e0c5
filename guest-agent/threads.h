/* Per-thread CPU accounting and single-thread saturation detection.
 *
 * A thread source lists (tid, comm, utime+stime ticks) for every thread; threads_update()
 * turns two consecutive lists into % of one CPU per thread, keeps the hottest few and tracks
 * how long each thread has been hot. Pure bookkeeping apart from the source. */
#ifndef VSCALE_THREADS_H
#define VSCALE_THREADS_H

#include <stdbool.h>
#include <stdint.h>

#include "sample.h"

struct thread_tick {
	uint32_t tid;
	uint64_t ticks;       /* utime + stime, clock ticks */
	uint64_t start_ticks; /* start time after boot, clock ticks: tells a reused tid apart */
	char comm[SAMPLE_COMM_LEN];
};

struct threads;

/* New tracker; hz is clock ticks per second (sysconf(_SC_CLK_TCK)). Free with threads_free(). */
struct threads *threads_new(unsigned hz, double saturation_pct, unsigned saturation_samples,
                            double rest_idle_pct);
void threads_free(struct threads *t);

/* Feeds one full scan taken at now_ms. busy_cores is the whole VM's busy time over the same
 * interval in CPUs (e.g. 1.7), negative when unknown; cpus_online the online CPUs. Fills
 * ret->threads/nthreads (at most `top`, hottest first), ret->saturated and their `has` bits
 * (not on the first scan, which has no interval). A tid whose start_ticks changed or whose ticks
 * went back is a new thread (no rate yet); threads missing from the scan are forgotten. */
void threads_update(struct threads *t, const struct thread_tick *ticks, size_t n, uint64_t now_ms,
                    double busy_cores, unsigned cpus_online, unsigned top, struct sample *ret);

/* Thread sources: fill a growing array (*ticks, *cap, realloc'd as needed; the caller frees
 * *ticks) and return the count or -errno. */

/* The live system through libproc2. The source keeps libproc2's context and a /proc fd between
 * scans; returns a new source or NULL with errno set; free with threads_source_free(). */
struct thread_source;
struct thread_source *threads_source_new(void);
void threads_source_free(struct thread_source *src);
int threads_scan_libproc2(struct thread_source *src, struct thread_tick **ticks, size_t *cap);

/* Any proc-like tree: parses <proc_dir>/<pid>/task/<tid>/stat, one file per thread. */
int threads_scan_dir(const char *proc_dir, struct thread_tick **ticks, size_t *cap);

#endif
