/* hostd's VM table kept in step with libvirt: the connection (connect, lost, retry with backoff),
 * libvirt's domain events woken onto the loop, and the config applied to each VM (policy,
 * enabled, which stream to read). The table (h->vms) owns its vms; domains_fini() frees them.
 * Everything runs on the loop thread except domains_notify(). */
#ifndef VSCALE_DOMAINS_H
#define VSCALE_DOMAINS_H

#include <stddef.h>
#include <stdint.h>

#include "hostd.h"

/* Prepares h's wake (ev_async, started) and reconnect timer; connects nothing. */
void domains_init(struct hostd *h);
/* Frees every VM and the table. */
void domains_fini(struct hostd *h);
/* virt_new()'s notify with user = h: runs on libvirt's event thread, only wakes the loop. */
void domains_notify(void *user);

/* Connects to the config's uri and lists the running domains; on failure retries on a timer,
 * 250 ms doubling to 2 s, the warnings rate-limited. */
void domains_connect(struct hostd *h);
/* The connection is gone: drops it and reconnects in 0.5 s. A no-op while not connected. */
void domains_on_conn_lost(struct hostd *h);

/* The VM with this uuid, or NULL. */
struct vm *domains_find(struct hostd *h, const char *uuid);
/* Stops managing h->vms[i] (logged and published with why) and frees it; the last VM takes its
 * place in the table. */
void domains_remove(struct hostd *h, size_t i, const char *why);
/* Applies the config to vm: policy (vscalectl's overrides over it), enabled, its stream. */
void domains_configure_vm(struct hostd *h, struct vm *vm);
/* After a reload: drops vscalectl's overrides, re-applies the config to every VM and restarts
 * the policy's runs. */
void domains_reconfigure(struct hostd *h);

#endif
