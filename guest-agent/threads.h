/* Per-thread CPU accounting and single-thread saturation detection.
 *
 * A scan (procs.c) lists (tid, comm, utime+stime ticks) for the threads of every process whose
 * CPU time moved, and the pids of the processes that did not move; threads_update() turns two
 * consecutive scans into % of one CPU per thread, keeps the hottest few and tracks how long each
 * thread has been hot. Pure bookkeeping: no I/O. */
#ifndef VSCALE_THREADS_H
#define VSCALE_THREADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sample.h"

struct thread_tick {
	uint32_t tid;
	uint32_t tgid;        /* the thread's process */
	uint64_t ticks;       /* utime + stime, clock ticks */
	uint64_t start_ticks; /* start time after boot, clock ticks: tells a reused tid apart */
	char comm[SAMPLE_COMM_LEN];
};

/* One scan of the machine. Every process is either read (its threads are in ticks) or kept (its
 * pid is in kept): a kept process used no CPU since the previous scan, so its threads were not
 * read again and still have the ticks they had then. A process in neither list is gone. */
struct thread_scan {
	const struct thread_tick *ticks;
	size_t nticks;
	const uint32_t *kept; /* ascending */
	size_t nkept;

	/* what the scan cost, for benchmarks and debug logs */
	size_t nprocs;        /* processes listed (phase 1: one stat file each) */
	size_t nprocs_read;   /* multi-threaded processes whose threads were read (phase 2) */
	size_t nthreads_read; /* threads read in phase 2 */
	uint64_t procs_us;    /* phase 1 */
	uint64_t threads_us;  /* phase 2 */
};

struct threads;

/* New tracker; hz is clock ticks per second (sysconf(_SC_CLK_TCK)). Free with threads_free(). */
struct threads *threads_new(unsigned hz, double saturation_pct, unsigned saturation_samples,
                            double rest_idle_pct);
void threads_free(struct threads *t);

/* Feeds one scan taken at now_ms; every scan of one source goes to the same tracker, from the
 * source's first scan on (a kept process is only known from an earlier scan). busy_cores is the
 * whole VM's busy time over the same interval in CPUs (e.g. 1.7), negative when unknown;
 * cpus_online the online CPUs. Fills ret->threads/nthreads (at most `top`, hottest first),
 * ret->saturated and their `has` bits (not on the first scan, which has no interval). A tid
 * whose start_ticks changed or whose ticks went back is a new thread (no rate yet); the threads
 * of a kept process stay at 0 % (their hot streaks end); threads neither read nor in a kept
 * process are forgotten. */
void threads_update(struct threads *t, const struct thread_scan *scan, uint64_t now_ms,
                    double busy_cores, unsigned cpus_online, unsigned top, struct sample *ret);

#endif
