/* hostd's side of each guest's stream: every frame a guestlink hands up becomes VM state (Hello,
 * sample, reply), a sample is decided on there and then, and what the guest sent wrong is
 * counted and rejected. The callbacks live in h->link_ops: a VM's guestlink points there, so
 * container_of() leads back to h. Nothing here allocates. */
#ifndef VSCALE_STREAM_H
#define VSCALE_STREAM_H

#include "hostd.h"

/* Fills h->link_ops; call it before the first vm_new(). */
void stream_init(struct hostd *h);
/* Logs the stats line: counters since start, latencies since the last line (a new window). */
void stream_log_stats(struct hostd *h);

#endif
