/* Follows libvirt's running domains: connects (and reconnects) to libvirtd, lists the domains,
 * reacts to their events and keeps hostd's VM table in step, each VM configured from the config
 * and reading its guest stream. The decisions are stream.c's; libvirt itself is virt.c's. */
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "actuate.h"
#include "domains.h"
#include "guestlink.h"
#include "hconf.h"
#include "hostd.h"
#include "hostview.h"
#include "log.h"
#include "meter.h"
#include "migrate.h"
#include "policy.h"
#include "util.h"
#include "virt.h"
#include "vm.h"

/* RECONNECT_MAX_MS: a failed connect to libvirtd costs microseconds; retrying every 2 s at most
 * keeps hostd back within 5 s of libvirtd answering, however long it was gone (the warnings are
 * rate-limited). */
#define RECONNECT_FIRST_MS 250
#define RECONNECT_MAX_MS   2000

/* ---- the VM table ---- */

struct vm *domains_find(struct hostd *h, const char *uuid)
{
	for (size_t i = 0; i < h->nvms; i++)
		if (strcmp(h->vms[i]->uuid, uuid) == 0)
			return h->vms[i];
	return NULL;
}

void domains_remove(struct hostd *h, size_t i, const char *why)
{
	struct vm *vm = h->vms[i];

	log_info("vm '%s': %s; no longer managed", vm->name, why);
	ctlsrv_publish(h, "vm-removed", vm, "%s", why);
	actuate_abort(&h->act, vm, why, util_now_ms()); /* an operation in flight ends here */
	if (vm->meter && util_now_ms() > vm->metered_ms)
		meter_add(vm->meter, vm->vcpus, vm_mem_kib(vm), util_now_ms() - vm->metered_ms);
	vm_free(vm);
	h->vms[i] = h->vms[--h->nvms];
}

void domains_fini(struct hostd *h)
{
	while (h->nvms > 0)
		vm_free(h->vms[--h->nvms]);
	free(h->vms);
	h->vms = NULL;
	h->capvms = 0;
}

static const char *channel_of(const struct hostd *h, const struct vm *vm)
{
	const struct vm_rule *rule = hconf_match(h->conf, vm->name, vm->uuid);

	if (rule && rule->channel[0])
		return rule->channel;
	return vm->dom.has_channel ? vm->dom.channel_path : "";
}

void domains_configure_vm(struct hostd *h, struct vm *vm)
{
	const struct vm_rule *rule = hconf_match(h->conf, vm->name, vm->uuid);
	const char *chan = channel_of(h, vm);

	hconf_policy_for(h->conf, vm->name, vm->uuid, &vm->policy);
	ctlsrv_apply_overrides(vm);
	vm->enabled = rule ? rule->enabled : true;
	/* enabled = no is hands off: the channel has one consumer, leave it to whoever wants it;
	 * a VM on the move is read by the target's hostd next (migrate.c says why it stops here) */
	if (!chan[0] || !vm->enabled || migrate_moving(h->mig, vm->uuid)) {
		if (vm->link.started)
			guestlink_stop(&vm->link);
		return;
	}
	if (!vm->link.started || strcmp(vm->link.path, chan) != 0) {
		if (guestlink_start(&vm->link, chan) < 0)
			log_warn("vm '%s': channel path too long for a unix socket: %s", vm->name,
			         chan);
	}
}

void domains_reconfigure(struct hostd *h)
{
	for (size_t i = 0; i < h->nvms; i++) {
		struct vm *vm = h->vms[i];

		/* vscalectl set lasts until the config is read again */
		free(vm->overrides);
		vm->overrides = NULL;
		domains_configure_vm(h, vm);
		/* runs were judged against the old thresholds */
		policy_state_reset_runs(&vm->st);
	}
}

static const char *mem_mech_name(enum virt_mem_mech mech)
{
	return mech == VIRT_MEM_VIRTIO_MEM ? "virtio-mem"
	       : mech == VIRT_MEM_DIMM     ? "dimm"
	       : mech == VIRT_MEM_BALLOON  ? "balloon"
	                                   : "fixed memory";
}

/* A new VM in the table: metered from now, its persisted cooldowns loaded, announced. */
static void add_vm(struct hostd *h, const struct virt_dom *d, uint64_t now)
{
	struct vm **grown = util_grow_array(h->vms, &h->capvms, h->nvms, sizeof(*h->vms), 16);
	struct vm *vm;

	if (!grown) {
		log_err("out of memory adding vm '%s'", d->name);
		return;
	}
	h->vms = grown;
	vm = vm_new(h->loop, d, &h->link_ops);
	if (!vm) {
		log_err("out of memory adding vm '%s'", d->name);
		return;
	}
	vm->seen = true;
	h->vms[h->nvms++] = vm;
	if (h->meter)
		vm->meter = meter_get(h->meter, vm->uuid, vm->name);
	vm->metered_ms = now;
	actuate_load_state(&h->act, vm, now);
	ctlsrv_publish(h, "vm-added", vm, "vcpus %u, memory %llu MiB", vm->vcpus,
	               (unsigned long long)vm_mem_kib(vm) / 1024);
	domains_configure_vm(h, vm);
	if (vm->link.started)
		log_info("vm '%s': managed with policy '%s' (vcpus %u of %u, memory %llu MiB, %s), "
		         "stream %s",
		         vm->name, vm->policy.name, vm->vcpus, d->vcpus_max,
		         (unsigned long long)vm_mem_kib(vm) / 1024, mem_mech_name(d->mem.mech),
		         vm->link.path);
	else
		log_debug("vm '%s': no vscale channel; counted for headroom only", vm->name);
}

static void add_or_update(struct hostd *h, const struct virt_dom *d, uint64_t now)
{
	struct vm *vm = domains_find(h, d->uuid);

	if (!vm) {
		add_vm(h, d, now);
		return;
	}
	vm_update_dom(vm, d);
	vm->seen = true;
	domains_configure_vm(h, vm);
}

static void sync_domains(struct hostd *h, uint64_t now)
{
	struct virt_dom *doms = NULL;
	size_t n = 0;
	int r = virt_list(h->virt, &doms, &n);

	if (r < 0) {
		log_warn("cannot list domains: %s", virt_last_error());
		return;
	}
	for (size_t i = 0; i < h->nvms; i++)
		h->vms[i]->seen = false;
	for (size_t i = 0; i < n; i++)
		add_or_update(h, &doms[i], now);
	for (size_t i = h->nvms; i-- > 0;)
		if (!h->vms[i]->seen)
			domains_remove(h, i, "not running");
	free(doms);
}

/* ---- libvirt connection and events ---- */

void domains_connect(struct hostd *h)
{
	char err[512];
	uint64_t now = util_now_ms();

	if (virt_connect(h->virt, h->conf->host.uri, err, sizeof(err)) < 0) {
		if (log_ratelimit_ok(&h->virt_rl, now))
			log_warn("%s; retrying in %u ms", err, h->reconnect_ms);
		ev_timer_set(&h->reconnect, h->reconnect_ms / 1000.0, 0.0);
		ev_timer_start(h->loop, &h->reconnect);
		h->reconnect_ms = h->reconnect_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS
		                                                         : h->reconnect_ms * 2;
		return;
	}
	h->virt_up = true;
	h->reconnect_ms = RECONNECT_FIRST_MS;
	h->node_ms = 0;
	log_info("connected to %s", h->conf->host.uri);
	sync_domains(h, now);
	hostview_refresh(h, now);
}

static void reconnect_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	domains_connect(container_of(w, struct hostd, reconnect));
}

void domains_on_conn_lost(struct hostd *h)
{
	if (!h->virt_up)
		return;
	log_warn("lost the connection to %s; reconnecting", h->conf->host.uri);
	h->virt_up = false;
	virt_disconnect(h->virt);
	ev_timer_set(&h->reconnect, 0.5, 0.0);
	ev_timer_start(h->loop, &h->reconnect);
}

static void on_stopped(struct hostd *h, const struct virt_event *e, const struct vm *vm)
{
	for (size_t i = 0; i < h->nvms; i++)
		if (h->vms[i] == vm)
			domains_remove(h, i,
			               migrate_moving(h->mig, e->uuid) ? "migrated away"
			                                               : "stopped");
}

/* started, arrived or changed: the domain is described again (all of them when e names none) */
static void on_described(struct hostd *h, const struct virt_event *e, uint64_t now)
{
	struct virt_dom d;

	if (!e->uuid[0]) {
		sync_domains(h, now);
	} else if (virt_lookup(h->virt, e->uuid, &d) == 0) {
		if (e->kind == VIRT_EV_ARRIVED)
			migrate_arrived(h->mig, d.name, d.uuid, now);
		if (d.active)
			add_or_update(h, &d, now);
	}
}

static void handle_event(struct hostd *h, const struct virt_event *e, uint64_t now)
{
	struct vm *vm = e->uuid[0] ? domains_find(h, e->uuid) : NULL;

	switch (e->kind) {
	case VIRT_EV_CONN_LOST:
		domains_on_conn_lost(h);
		return;
	case VIRT_EV_STOPPED:
		on_stopped(h, e, vm);
		return;
	case VIRT_EV_REBOOTED:
		if (vm)
			log_info("vm '%s': rebooted", vm->name);
		return;
	case VIRT_EV_ARRIVED:
	case VIRT_EV_STARTED:
	case VIRT_EV_CHANGED:
		on_described(h, e, now);
		return;
	}
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct hostd *h = container_of(w, struct hostd, wake);
	struct virt_event ev[64];
	uint64_t now = util_now_ms();
	size_t n;

	while ((n = virt_drain(h->virt, ev, 64)) > 0)
		for (size_t i = 0; i < n; i++)
			if (h->virt_up || ev[i].kind != VIRT_EV_CONN_LOST)
				handle_event(h, &ev[i], now);
}

void domains_notify(void *user)
{
	struct hostd *h = user;

	ev_async_send(h->loop, &h->wake);
}

void domains_init(struct hostd *h)
{
	h->reconnect_ms = RECONNECT_FIRST_MS;
	h->virt_rl = (struct log_ratelimit){.burst = 5, .interval_ms = 60000};
	ev_async_init(&h->wake, wake_cb);
	ev_async_start(h->loop, &h->wake);
	ev_timer_init(&h->reconnect, reconnect_cb, 0.0, 0.0);
}
