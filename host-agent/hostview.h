/* The host's figures the policy weighs and operators see: what every active domain holds
 * (h->alloc, grants in flight included), libvirt's node figures (h->node, read every 5 s at
 * most) and the headroom computed from them and the config. Nothing here allocates. */
#ifndef VSCALE_HOSTVIEW_H
#define VSCALE_HOSTVIEW_H

#include <stdint.h>

#include "hostd.h"
#include "policy.h"

/* Sums the VM table into h->alloc and, when libvirt is up and 5 s have passed, re-reads the
 * node figures. O(VMs): call it per tick and after a grant, not per sample. */
void hostview_refresh(struct hostd *h, uint64_t now_ms);
/* The headroom from the last refresh. */
void hostview_get(const struct hostd *h, struct host_view *ret);

#endif
