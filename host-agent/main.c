/* vscale-hostd: follows libvirt's running domains, reads each one's vscale guest stream, asks
 * the policy what to do on every sample and has actuate.c do it. Wiring only: the decisions are
 * in policy.c, the actions in actuate.c, libvirt in virt.c. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include <systemd/sd-daemon.h>

#include "actuate.h"
#include "declog.h"
#include "guestlink.h"
#include "hconf.h"
#include "headroom.h"
#include "hostd.h"
#include "log.h"
#include "migrate.h"
#include "report.h"
#include "stats.h"
#include "util.h"
#include "virt.h"
#include "vm.h"
#include "wire.h"

#ifndef VSCALE_VERSION
#define VSCALE_VERSION "0.1.0"
#endif

/* RECONNECT_MAX_MS: a failed connect to libvirtd costs microseconds; retrying every 2 s at most
 * keeps hostd back within 5 s of libvirtd answering, however long it was gone (the warnings are
 * rate-limited). */
#define NODE_REFRESH_MS  5000
#define RECONNECT_MAX_MS 2000
#define HOUSEKEEPING_S   0.5
#define METER_SAVE_MS    60000

static struct hostd H; /* main owns the loop and everything on it */

/* this host's VMs on the move (migrate.c) */
static struct migrate MIG;

/* ---- the VM table ---- */

static struct vm *find_vm(const char *uuid)
{
	for (size_t i = 0; i < H.nvms; i++)
		if (strcmp(H.vms[i]->uuid, uuid) == 0)
			return H.vms[i];
	return NULL;
}

static void remove_vm(size_t i, const char *why)
{
	struct vm *vm = H.vms[i];

	log_info("vm '%s': %s; no longer managed", vm->name, why);
	ctlsrv_publish(&H, "vm-removed", vm, "%s", why);
	actuate_abort(&H.act, vm, why, util_now_ms()); /* an operation in flight ends here */
	if (vm->meter && util_now_ms() > vm->metered_ms)
		meter_add(vm->meter, vm->vcpus, vm_mem_kib(vm), util_now_ms() - vm->metered_ms);
	vm_free(vm);
	H.vms[i] = H.vms[--H.nvms];
}

static const char *channel_of(const struct vm *vm)
{
	const struct vm_rule *rule = hconf_match(H.conf, vm->name, vm->uuid);

	if (rule && rule->channel[0])
		return rule->channel;
	return vm->dom.has_channel ? vm->dom.channel_path : "";
}

/* Applies the config to a VM: policy, enabled, and the stream it should read. */
static void configure_vm(struct vm *vm)
{
	const struct vm_rule *rule = hconf_match(H.conf, vm->name, vm->uuid);
	const char *chan = channel_of(vm);

	hconf_policy_for(H.conf, vm->name, vm->uuid, &vm->policy);
	ctlsrv_apply_overrides(vm);
	vm->enabled = rule ? rule->enabled : true;
	/* enabled = no is hands off: the channel has one consumer, leave it to whoever wants it;
	 * a VM on the move is read by the target's hostd next (migrate.c says why it stops here) */
	if (!chan[0] || !vm->enabled || migrate_moving(&MIG, vm->uuid)) {
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

static const struct guestlink_ops link_ops;

static void add_or_update(const struct virt_dom *d, uint64_t now)
{
	struct vm *vm = find_vm(d->uuid);

	if (vm) {
		vm_update_dom(vm, d);
		vm->seen = true;
		configure_vm(vm);
		return;
	}
	if (H.nvms == H.capvms) {
		size_t cap = H.capvms ? H.capvms * 2 : 16;
		struct vm **n = realloc(H.vms, cap * sizeof(*n));

		if (!n) {
			log_err("out of memory adding vm '%s'", d->name);
			return;
		}
		H.vms = n;
		H.capvms = cap;
	}
	vm = vm_new(H.loop, d, &link_ops);
	if (!vm) {
		log_err("out of memory adding vm '%s'", d->name);
		return;
	}
	vm->seen = true;
	H.vms[H.nvms++] = vm;
	if (H.meter)
		vm->meter = meter_get(H.meter, vm->uuid, vm->name);
	vm->metered_ms = now;
	actuate_load_state(&H.act, vm, now);
	ctlsrv_publish(&H, "vm-added", vm, "vcpus %u, memory %llu MiB", vm->vcpus,
	               (unsigned long long)vm_mem_kib(vm) / 1024);
	configure_vm(vm);
	if (vm->link.started)
		log_info("vm '%s': managed with policy '%s' (vcpus %u of %u, memory %llu MiB, %s), "
		         "stream %s",
		         vm->name, vm->policy.name, vm->vcpus, d->vcpus_max,
		         (unsigned long long)vm_mem_kib(vm) / 1024,
		         d->mem.mech == VIRT_MEM_VIRTIO_MEM ? "virtio-mem"
		         : d->mem.mech == VIRT_MEM_DIMM     ? "dimm"
		         : d->mem.mech == VIRT_MEM_BALLOON  ? "balloon"
		                                            : "fixed memory",
		         vm->link.path);
	else
		log_debug("vm '%s': no vscale channel; counted for headroom only", vm->name);
}

static void sync_domains(uint64_t now)
{
	struct virt_dom *doms = NULL;
	size_t n = 0;
	int r = virt_list(H.virt, &doms, &n);

	if (r < 0) {
		log_warn("cannot list domains: %s", virt_last_error());
		return;
	}
	for (size_t i = 0; i < H.nvms; i++)
		H.vms[i]->seen = false;
	for (size_t i = 0; i < n; i++)
		add_or_update(&doms[i], now);
	for (size_t i = H.nvms; i-- > 0;)
		if (!H.vms[i]->seen)
			remove_vm(i, "not running");
	free(doms);
}

/* ---- decisions ---- */

/* O(VMs), so not per sample: with 10,000 VMs a walk per decision was most of hostd's CPU. */
static void refresh_totals(uint64_t now)
{
	struct totals t = {0};

	for (size_t i = 0; i < H.nvms; i++) {
		const struct vm *vm = H.vms[i];
		uint64_t v, m;

		t.vcpus += vm->dom.vcpus_cur;
		t.mem_kib += vm_mem_kib(vm);
		if (vm->op.kind == OP_NONE)
			continue;
		actuate_in_flight(vm, &v, &m);
		t.vcpus_in_flight += v;
		t.mem_in_flight_kib += m;
	}
	H.alloc = t;
	if (H.virt_up && (H.node_ms == 0 || now - H.node_ms >= NODE_REFRESH_MS)) {
		if (virt_node(H.virt, &H.node) == 0)
			H.node_ms = now;
	}
}

static void host_view(struct host_view *ret)
{
	const struct host_conf *hc = &H.conf->host;
	struct headroom_input in = {
	        .host_cpus = H.node.cpus,
	        .host_mem_total_kib = hc->mem_total_kib ? hc->mem_total_kib : H.node.mem_total_kib,
	        .host_mem_free_kib = H.node.mem_free_kib,
	        .reserve_cpus = hc->reserve_cpus,
	        .reserve_mem_kib = hc->reserve_mem_kib,
	        .cpu_overcommit = hc->cpu_overcommit,
	        .vcpus_allocated = H.alloc.vcpus,
	        .mem_allocated_kib = H.alloc.mem_kib,
	        .vcpus_in_flight = H.alloc.vcpus_in_flight,
	        .mem_in_flight_kib = H.alloc.mem_in_flight_kib,
	        .capacity_model = hc->mem_total_kib != 0,
	};

	headroom_compute(&in, ret);
}

static void decide(struct vm *vm, uint64_t now)
{
	struct vm_view view;
	struct host_view host;
	struct decision d;

	if (!H.virt_up)
		return; /* no actions without libvirt; the stream keeps the policy state warm */
	vm_view(vm, &view);
	view.busy = view.busy || migrate_busy(&MIG, vm->uuid); /* no scaling while it migrates */
	host_view(&host);
	policy_decide(&vm->policy, &view, &host, now, &d);
	if (d.action < METRICS_ACTIONS && d.reason < METRICS_REASONS)
		H.decisions[d.action][d.reason]++;
	actuate_decision(&H.act, vm, &d, now);
	if (d.reason == REASON_HOST_FULL)
		migrate_on_host_full(&MIG, vm, &view, &d, now);
	if (d.action != ACTION_HOLD)
		refresh_totals(now); /* the next VM's decision must see this grant */
}

/* ---- guest frames ---- */

static void reject(struct vm *vm, const char *what, uint64_t now)
{
	vm->n.rejected++;
	H.rejected++;
	if (log_ratelimit_ok(&vm->warn_rl, now))
		log_warn("vm '%s': rejected %s from the guest (%llu so far)", vm->name, what,
		         (unsigned long long)vm->n.rejected);
}

/* The sample's age compares the guest's CLOCK_MONOTONIC with ours: it means something only
 * when both share a clock, as simulated guests on this host do (bench/fanin.sh); for a real
 * VM it is noise, so nothing but the stats line uses it. */
static void note_latency(const struct guestlink *gl, const struct sample *s)
{
	uint64_t now_us = util_now_us();

	stats_add(&H.decide_us, now_us - gl->rx_us);
	if (s->mono_ms && s->mono_ms <= now_us / 1000)
		stats_add(&H.age_ms, now_us / 1000 - s->mono_ms);
}

static void on_frame(struct guestlink *gl, const struct frame *f)
{
	struct vm *vm = container_of(gl, struct vm, link);
	uint64_t now = util_now_ms();
	struct hello h;
	struct sample s;
	struct reply r;

	switch (f->type) {
	case FRAME_HELLO:
		if (wire_decode_hello(f->payload, f->len, &h) < 0 || vm_take_hello(vm, &h) < 0) {
			reject(vm, "a Hello", now);
			return;
		}
		/* a guest can say Hello in a loop: the log must not follow it */
		if (log_ratelimit_ok(&vm->hello_rl, now))
			log_info("vm '%s': guest agent %s connected (boot %s)", vm->name,
			         h.agent_version, h.boot_id);
		ctlsrv_publish(&H, "guest-up", vm, "guest agent %s", h.agent_version);
		actuate_on_session(&H.act, vm, now);
		break;
	case FRAME_SAMPLE:
		if (wire_decode_sample(f->payload, f->len, &s) < 0) {
			reject(vm, "a sample with bad values", now);
			return;
		}
		if (vm_take_sample(vm, &s, now) < 0) {
			reject(vm, "a sample out of sequence or before Hello", now);
			return;
		}
		actuate_on_sample(&H.act, vm, now);
		decide(vm, now);
		note_latency(gl, &s);
		break;
	case FRAME_REPLY:
		if (wire_decode_reply(f->payload, f->len, &r) < 0) {
			reject(vm, "a reply", now);
			return;
		}
		actuate_on_reply(&H.act, vm, &r, now);
		break;
	default:
		reject(vm, "a frame of a type guests do not send", now);
		break;
	}
}

static void on_link_down(struct guestlink *gl)
{
	struct vm *vm = container_of(gl, struct vm, link);

	if (vm->hello)
		ctlsrv_publish(&H, "guest-down", vm, "guest stream closed");
	vm->hello = false;
	log_info("vm '%s': guest stream closed; holding until it is back", vm->name);
}

/* the stream brought no good frame for too long: guestlink drops it and retries with backoff */
static void on_junk(struct guestlink *gl, const struct frame_stats *since)
{
	struct vm *vm = container_of(gl, struct vm, link);

	/* not a frame: the decoder's counters (stats line) have the bad frames already */
	if (log_ratelimit_ok(&vm->warn_rl, util_now_ms()))
		log_warn("vm '%s': a stream without a good frame (%llu bad frames, %llu bytes that "
		         "do not frame); reconnecting",
		         vm->name, (unsigned long long)since->bad_frames,
		         (unsigned long long)since->skipped_bytes);
}

static const struct guestlink_ops link_ops = {
        .frame = on_frame,
        .down = on_link_down,
        .junk = on_junk,
};

/* ---- libvirt connection and events ---- */

static void connect_virt(void)
{
	char err[512];
	uint64_t now = util_now_ms();

	if (virt_connect(H.virt, H.conf->host.uri, err, sizeof(err)) < 0) {
		if (log_ratelimit_ok(&H.virt_rl, now))
			log_warn("%s; retrying in %u ms", err, H.reconnect_ms);
		ev_timer_set(&H.reconnect, H.reconnect_ms / 1000.0, 0.0);
		ev_timer_start(H.loop, &H.reconnect);
		H.reconnect_ms = H.reconnect_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS
		                                                       : H.reconnect_ms * 2;
		return;
	}
	H.virt_up = true;
	H.reconnect_ms = 250;
	H.node_ms = 0;
	log_info("connected to %s", H.conf->host.uri);
	sync_domains(now);
	refresh_totals(now);
}

static void reconnect_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	connect_virt();
}

static void conn_lost(void)
{
	if (!H.virt_up)
		return;
	log_warn("lost the connection to %s; reconnecting", H.conf->host.uri);
	H.virt_up = false;
	virt_disconnect(H.virt);
	ev_timer_set(&H.reconnect, 0.5, 0.0);
	ev_timer_start(H.loop, &H.reconnect);
}

static void handle_event(const struct virt_event *e, uint64_t now)
{
	struct virt_dom d;
	struct vm *vm = e->uuid[0] ? find_vm(e->uuid) : NULL;

	switch (e->kind) {
	case VIRT_EV_CONN_LOST:
		conn_lost();
		return;
	case VIRT_EV_STOPPED:
		for (size_t i = 0; i < H.nvms; i++)
			if (H.vms[i] == vm)
				remove_vm(i, migrate_moving(&MIG, e->uuid) ? "migrated away"
				                                           : "stopped");
		return;
	case VIRT_EV_REBOOTED:
		if (vm)
			log_info("vm '%s': rebooted", vm->name);
		return;
	case VIRT_EV_ARRIVED:
	case VIRT_EV_STARTED:
	case VIRT_EV_CHANGED:
		if (!e->uuid[0]) {
			sync_domains(now);
		} else if (virt_lookup(H.virt, e->uuid, &d) == 0) {
			if (e->kind == VIRT_EV_ARRIVED)
				migrate_arrived(&MIG, d.name, d.uuid, now);
			if (d.active)
				add_or_update(&d, now);
		}
		return;
	}
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct virt_event ev[64];
	uint64_t now = util_now_ms();
	size_t n;

	while ((n = virt_drain(H.virt, ev, 64)) > 0)
		for (size_t i = 0; i < n; i++)
			if (H.virt_up || ev[i].kind != VIRT_EV_CONN_LOST)
				handle_event(&ev[i], now);
}

/* runs on libvirt's event thread: only wake the main loop */
static void virt_notify(void *user)
{
	ev_async_send(H.loop, &H.wake);
}

/* Metering: each VM's allocation since the last tick, then the table to disk once a minute. */
static void meter_tick(uint64_t now, bool save)
{
	int r;

	for (size_t i = 0; i < H.nvms; i++) {
		struct vm *vm = H.vms[i];

		if (vm->meter && now > vm->metered_ms)
			meter_add(vm->meter, vm->vcpus, vm_mem_kib(vm), now - vm->metered_ms);
		vm->metered_ms = now;
	}
	if (!H.meter || H.dry_run || (!save && now - H.meter_saved_ms < METER_SAVE_MS))
		return;
	H.meter_saved_ms = now;
	r = meter_save(H.meter);
	if (r < 0)
		log_warn("metering: cannot save in %s: %s", H.conf->host.state_dir, strerror(-r));
}

static void housekeeping_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	uint64_t now = util_now_ms();
	struct host_view hv;

	meter_tick(now, false);
	for (size_t i = 0; i < H.nvms; i++)
		actuate_check_timeout(&H.act, H.vms[i], now);
	refresh_totals(now);
	host_view(&hv);
	migrate_tick(&MIG, H.vms, H.nvms, &H.node, &hv, now);
	if (H.virt_up && !virt_connected(H.virt))
		conn_lost();
}

/* ---- migration (migrate.c) ---- */

/* A migration request for a balancer: logged, and published as a "migration-request" event. */
static void mig_request(void *user, const struct migrate_request *rq)
{
	struct ctl_event e = {0};
	struct timespec ts;

	log_info("vm '%s': migration request: needs %u vCPUs, %llu MiB (%s)%s%s%s%s", rq->vm,
	         rq->vcpus, (unsigned long long)rq->mem_kib / 1024, rq->why,
	         rq->peer[0] ? "; moving to " : "", rq->peer, rq->note[0] ? "; not moving: " : "",
	         rq->note);
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(e.kind, sizeof(e.kind), "migration-request");
	e.time_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	snprintf(e.vm, sizeof(e.vm), "%s", rq->vm);
	snprintf(e.uuid, sizeof(e.uuid), "%s", rq->uuid);
	snprintf(e.text, sizeof(e.text), "%s%s%s", rq->why, rq->note[0] ? "; not moving: " : "",
	         rq->note);
	e.need_vcpus = rq->vcpus;
	e.need_mem_kib = rq->mem_kib;
	snprintf(e.peer, sizeof(e.peer), "%s", rq->peer);
	control_publish(H.ctl, &e);
}

static void mig_changed(void *user, const char *uuid)
{
	struct vm *vm = find_vm(uuid);

	if (vm)
		configure_vm(vm); /* its stream stops for a move, and starts again if it failed */
}

static void mig_moved(void *user, const char *uuid, const char *peer)
{
	char why[VIRT_URI_LEN + 16];

	snprintf(why, sizeof(why), "migrated to %s", peer);
	for (size_t i = 0; i < H.nvms; i++) {
		if (strcmp(H.vms[i]->uuid, uuid) == 0) {
			remove_vm(i, why);
			break;
		}
	}
	refresh_totals(util_now_ms());
}

static int mig_start(void *user, struct virt_job *job)
{
	return virt_job_start(job);
}

static int mig_abort(void *user, const char *uuid)
{
	return virt_migrate_abort(H.virt, uuid);
}

static const struct migrate_ops mig_ops = {
        .request = mig_request,
        .changed = mig_changed,
        .moved = mig_moved,
        .start = mig_start,
        .abort = mig_abort,
};

/* ---- signals, config ---- */

int hostd_reload(struct hostd *h, char *err, size_t errlen)
{
	struct hconf *c;

	sd_notify(0, "RELOADING=1");
	if (hconf_load(h->conf_path, h->conf_explicit, &c, err, errlen) < 0) {
		sd_notify(0, "READY=1");
		return -EINVAL;
	}
	if (strcmp(c->host.uri, h->conf->host.uri) != 0)
		log_warn("reload: uri changes take effect at restart");
	if (strcmp(c->host.control_dir, h->conf->host.control_dir) != 0 ||
	    strcmp(c->host.metrics, h->conf->host.metrics) != 0)
		log_warn("reload: control-dir and metrics changes take effect at restart");
	snprintf(c->host.uri, sizeof(c->host.uri), "%s", h->conf->host.uri);
	snprintf(c->host.control_dir, sizeof(c->host.control_dir), "%s", h->conf->host.control_dir);
	snprintf(c->host.metrics, sizeof(c->host.metrics), "%s", h->conf->host.metrics);
	hconf_free(h->conf);
	h->conf = c;
	h->act.host = &h->conf->host;
	MIG.host = &h->conf->host;
	log_set_level(h->conf->host.log_level);
	for (size_t i = 0; i < h->nvms; i++) {
		struct vm *vm = h->vms[i];

		/* vscalectl set lasts until the config is read again */
		free(vm->overrides);
		vm->overrides = NULL;
		configure_vm(vm);
		/* runs were judged against the old thresholds */
		policy_state_reset_runs(&vm->st);
	}
	log_info("configuration reloaded from %s", h->conf_path);
	ctlsrv_publish(h, "reload", NULL, "configuration reloaded from %s", h->conf_path);
	sd_notify(0, "READY=1");
	return 0;
}

static void reload(void)
{
	char err[1024];

	if (hostd_reload(&H, err, sizeof(err)) < 0)
		log_err("reload: %s; keeping the running configuration", err);
}

void hostd_configure_vm(struct hostd *h, struct vm *vm)
{
	configure_vm(vm);
}

void hostd_host_view(struct hostd *h, struct host_view *ret)
{
	host_view(ret);
}

/* Counters since start; latencies since the last stats line, which starts a new window. */
static void log_stats(void)
{
	char decide[128], age[128];
	uint64_t samples = 0, bad = 0, skipped = 0;

	for (size_t i = 0; i < H.nvms; i++) {
		samples += H.vms[i]->n.samples;
		bad += H.vms[i]->link.dec.stats.bad_frames;
		skipped += H.vms[i]->link.dec.stats.skipped_bytes;
	}
	stats_format(&H.decide_us, "us", decide, sizeof(decide));
	stats_format(&H.age_ms, "ms", age, sizeof(age));
	log_info("stats: %zu vms, %llu samples, %llu rejected frames (decoder: %llu bad frames, "
	         "%llu bytes skipped); read to decision %s; sample age %s",
	         H.nvms, (unsigned long long)samples, (unsigned long long)H.rejected,
	         (unsigned long long)bad, (unsigned long long)skipped, decide, age);
	stats_init(&H.decide_us);
	stats_init(&H.age_ms);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (w->signum == SIGHUP) {
		reload();
	} else if (w->signum == SIGUSR1) {
		log_stats();
	} else {
		ev_break(loop, EVBREAK_ALL);
	}
}

static int mkdir_p(const char *dir)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* One fd per VM stream: thousands of VMs need more than the usual soft limit of 1024. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_debug("cannot raise the fd limit to %llu: %s", (unsigned long long)rl.rlim_max,
		          strerror(errno));
	else
		log_debug("fd limit raised to %llu", (unsigned long long)rl.rlim_max);
}

/* systemd's watchdog: a ping from the loop, so a wedged loop (a hung libvirt call) is restarted */
static void watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	sd_notifyf(0, "WATCHDOG=1\nSTATUS=following %zu domains%s", H.nvms,
	           H.virt_up ? "" : ", libvirt not connected");
}

static void start_watchdog(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return;
	ev_timer_init(&H.watchdog, watchdog_cb, 0.0, (double)usec / 2e6);
	ev_timer_again(H.loop, &H.watchdog);
	log_debug("systemd watchdog: ping every %.1f s", (double)usec / 2e6);
}

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: vscale-hostd [OPTIONS]\n"
	        "Scales the vCPUs and memory of running VMs live, from their vscale-guestd streams.\n\n"
	        "  -c, --config FILE   main config (default " HCONF_DEFAULT_PATH
	        "; conf.d/ beside it)\n"
	        "  -n, --dry-run       decide and log, change nothing\n"
	        "      --print-config  print the effective configuration and exit\n"
	        "  -v, --verbose       log at debug level\n"
	        "  -h, --help          this text\n"
	        "      --version       print the version\n");
}

/* Metering table, control sockets, /metrics: what operators talk to. */
static int open_operator_ports(void)
{
	const struct host_conf *hc = &H.conf->host;
	char err[1024];

	H.meter = meter_new(hc->state_dir, err, sizeof(err));
	if (!H.meter) {
		log_err("metering: out of memory");
		return 1;
	}
	if (err[0])
		log_warn("metering: %s; starting from what parsed", err);
	if (hc->control_dir[0]) {
		H.ctl = control_open(H.loop, hc->control_dir, &ctlsrv_control_ops, &H, err,
		                     sizeof(err));
		if (!H.ctl) {
			log_err("%s", err);
			return 1;
		}
		log_info("control sockets in %s", hc->control_dir);
	}
	if (strcmp(hc->metrics, "off") != 0) {
		H.metrics = metrics_open(H.loop, hc->metrics, &ctlsrv_metrics_ops, &H, err,
		                         sizeof(err));
		if (!H.metrics) {
			log_err("%s", err);
			return 1;
		}
		log_info("metrics on http://%s/metrics (port %u)", hc->metrics,
		         metrics_port(H.metrics));
	}
	return 0;
}

static int setup(bool dry_run)
{
	char *dlog_path = H.dlog_path;
	size_t dlog_cap = sizeof(H.dlog_path);
	int r;

	H.dry_run = dry_run;
	r = mkdir_p(H.conf->host.state_dir);
	if (r < 0) {
		log_err("cannot create %s: %s", H.conf->host.state_dir, strerror(-r));
		return 1;
	}
	if (H.conf->host.decision_log[0])
		snprintf(dlog_path, dlog_cap, "%s", H.conf->host.decision_log);
	else
		snprintf(dlog_path, dlog_cap, "%s/decisions.jsonl", H.conf->host.state_dir);
	H.dlog = declog_open(dlog_path);
	if (!H.dlog)
		log_warn("decision log %s: %s; decisions go to this log only", dlog_path,
		         strerror(errno));
	H.virt = virt_new(virt_notify, NULL);
	if (!H.virt) {
		log_err("libvirt event loop: %s", strerror(errno));
		return 1;
	}
	H.act = (struct actuate){.virt = H.virt,
	                         .host = &H.conf->host,
	                         .dlog = H.dlog,
	                         .dry_run = dry_run,
	                         .on_record = ctlsrv_on_record,
	                         .user = &H};
	H.reject_rl = (struct log_ratelimit){.burst = 10, .interval_ms = 10000};
	migrate_init(&MIG, H.loop, &H.conf->host, &mig_ops, NULL, H.dlog);
	MIG.dry_run = dry_run;
	H.mig = &MIG;
	H.reconnect_ms = 250;
	H.virt_rl = (struct log_ratelimit){.burst = 5, .interval_ms = 60000};
	return open_operator_ports();
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"dry-run", no_argument, NULL, 'n'},
	                                     {"print-config", no_argument, NULL, 'P'},
	                                     {"verbose", no_argument, NULL, 'v'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {0}};
	bool dry_run = false, print = false, verbose = false;
	char err[1024];
	int o;

	log_set_ident("vscale-hostd");
	H.conf_path = HCONF_DEFAULT_PATH;
	while ((o = getopt_long(argc, argv, "c:nvh", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			H.conf_path = optarg;
			H.conf_explicit = true;
			break;
		case 'n':
			dry_run = true;
			break;
		case 'P':
			print = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vscale-hostd %s\n", VSCALE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vscale-hostd: unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	if (hconf_load(H.conf_path, H.conf_explicit, &H.conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "vscale-hostd: %s\n", err);
		return 1;
	}
	if (print) {
		hconf_print(H.conf, stdout);
		hconf_free(H.conf);
		return 0;
	}
	log_set_level(verbose ? LOG_LVL_DEBUG : H.conf->host.log_level);
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	H.loop = ev_default_loop(EVFLAG_AUTO);
	if (setup(dry_run))
		return 1;
	ev_async_init(&H.wake, wake_cb);
	ev_async_start(H.loop, &H.wake);
	ev_timer_init(&H.reconnect, reconnect_cb, 0.0, 0.0);
	ev_timer_init(&H.housekeeping, housekeeping_cb, HOUSEKEEPING_S, HOUSEKEEPING_S);
	ev_timer_start(H.loop, &H.housekeeping);
	ev_signal_init(&H.sigint, signal_cb, SIGINT);
	ev_signal_init(&H.sigterm, signal_cb, SIGTERM);
	ev_signal_init(&H.sighup, signal_cb, SIGHUP);
	ev_signal_init(&H.sigusr1, signal_cb, SIGUSR1);
	ev_signal_start(H.loop, &H.sigint);
	ev_signal_start(H.loop, &H.sigterm);
	ev_signal_start(H.loop, &H.sighup);
	ev_signal_start(H.loop, &H.sigusr1);
	log_info("vscale-hostd %s%s: config %s", VSCALE_VERSION, dry_run ? " (dry run)" : "",
	         H.conf_path);
	H.start_ms = util_now_ms();
	H.meter_saved_ms = H.start_ms;
	connect_virt();
	start_watchdog();
	sd_notifyf(0, "READY=1\nSTATUS=following %zu domains\nMAINPID=%lu", H.nvms,
	           (unsigned long)getpid());
	ev_run(H.loop, 0);
	log_info("stopping");
	sd_notify(0, "STOPPING=1");
	meter_tick(util_now_ms(), true);
	while (H.nvms > 0)
		vm_free(H.vms[--H.nvms]);
	free(H.vms);
	metrics_close(H.metrics);
	control_close(H.ctl);
	meter_free(H.meter);
	migrate_fini(&MIG);
	virt_free(H.virt);
	declog_close(H.dlog);
	hconf_free(H.conf);
	return 0;
}
