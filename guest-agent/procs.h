/* The machine's processes and their threads' CPU ticks, in two phases: phase 1 reads one stat
 * file per process (whole-process ticks, thread count, start time); phase 2 reads the threads of
 * the multi-threaded processes whose ticks or thread count moved since the previous scan, or
 * that are new. A single-threaded process is its own thread: phase 1 has its figures. The
 * threads of a process that did not move used no CPU and are not read (see struct
 * thread_scan), so a scan costs a stat file per process plus one per thread of a busy process.
 * The small error this allows: a thread whose ticks cross a tick boundary while its process's
 * total does not is seen 1 tick late. */
#ifndef VSCALE_PROCS_H
#define VSCALE_PROCS_H

#include "threads.h"

struct procs;

/* The live system, through libproc2 (procps 4), which only reads the real /proc. Returns a new
 * source, or NULL with errno set; free with procs_free(). */
struct procs *procs_new(void);

/* Any proc-like tree (tests' fake trees): the same two phases parse <proc_dir>/<pid>/stat and
 * <proc_dir>/<pid>/task/<tid>/stat. proc_dir is copied and opened at each scan. Returns a new
 * source, or NULL with errno set; free with procs_free(). */
struct procs *procs_new_dir(const char *proc_dir);

void procs_free(struct procs *p);

/* Scans the processes, remembering their ticks for the next scan. *ret_scan points into p and
 * stays valid until the next procs_scan() or procs_free(). Returns 0 or -errno; a failed scan
 * leaves the memory of the previous one as it was. */
int procs_scan(struct procs *p, const struct thread_scan **ret_scan);

#endif
