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
#include <unistd.h>

#include <ev.h>

#include "actuate.h"
#include "declog.h"
#include "guestlink.h"
#include "hconf.h"
#include "headroom.h"
#include "log.h"
#include "stats.h"
#include "util.h"
#include "virt.h"
#include "vm.h"
#include "wire.h"

#ifndef VSCALE_VERSION
#define VSCALE_VERSION "0.1.0"
#endif

#define NODE_REFRESH_MS  5000
#define RECONNECT_MAX_MS 30000
#define HOUSEKEEPING_S   0.5

struct totals {
	uint64_t vcpus, mem_kib;                     /* what libvirt says the domains have */
	uint64_t vcpus_in_flight, mem_in_flight_kib; /* granted, not in libvirt's figures yet */
};

struct hostd {
	struct ev_loop *loop;
	const char *conf_path;
	bool conf_explicit;
	struct hconf *conf;
	struct virt *virt;
	bool virt_up;
	struct actuate act;
	struct declog *dlog;
	struct vm **vms;
	size_t nvms, capvms;
	struct totals alloc; /* every active domain: each housekeeping tick and after an action */
	struct virt_node node;
	uint64_t node_ms;
	ev_async wake;
	ev_timer housekeeping, reconnect;
	uint32_t reconnect_ms;
	ev_signal sigint, sigterm, sighup, sigusr1;
	uint64_t rejected;
	struct log_ratelimit reject_rl;
	/* since the last stats line: read to decision (µs), and the sample's age then (ms) */
	struct stats_hist decide_us, age_ms;
};

static struct hostd H; /* main owns the loop and everything on it */

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
	vm->enabled = rule ? rule->enabled : true;
	/* enabled = no is hands off: the channel has one consumer, leave it to whoever wants it */
	if (!chan[0] || !vm->enabled) {
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
	actuate_load_state(&H.act, vm, now);
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
	host_view(&host);
	policy_decide(&vm->policy, &view, &host, now, &d);
	actuate_decision(&H.act, vm, &d, now);
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
		log_info("vm '%s': guest agent %s connected (boot %s)", vm->name, h.agent_version,
		         h.boot_id);
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

	vm->hello = false;
	log_info("vm '%s': guest stream closed; holding until it is back", vm->name);
}

static const struct guestlink_ops link_ops = {
        .frame = on_frame,
        .down = on_link_down,
};

/* ---- libvirt connection and events ---- */

static void connect_virt(void)
{
	char err[512];
	uint64_t now = util_now_ms();

	if (virt_connect(H.virt, H.conf->host.uri, err, sizeof(err)) < 0) {
		log_warn("%s; retrying in %u ms", err, H.reconnect_ms);
		ev_timer_set(&H.reconnect, H.reconnect_ms / 1000.0, 0.0);
		ev_timer_start(H.loop, &H.reconnect);
		H.reconnect_ms = H.reconnect_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS
		                                                       : H.reconnect_ms * 2;
		return;
	}
	H.virt_up = true;
	H.reconnect_ms = 1000;
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
				remove_vm(i, "stopped");
		return;
	case VIRT_EV_REBOOTED:
		if (vm)
			log_info("vm '%s': rebooted", vm->name);
		return;
	case VIRT_EV_STARTED:
	case VIRT_EV_CHANGED:
		if (!e->uuid[0]) {
			sync_domains(now);
		} else if (virt_lookup(H.virt, e->uuid, &d) == 0) {
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

static void housekeeping_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	uint64_t now = util_now_ms();

	for (size_t i = 0; i < H.nvms; i++)
		actuate_check_timeout(&H.act, H.vms[i], now);
	refresh_totals(now);
	if (H.virt_up && !virt_connected(H.virt))
		conn_lost();
}

/* ---- signals, config ---- */

static void reload(void)
{
	struct hconf *c;
	char err[1024];

	if (hconf_load(H.conf_path, H.conf_explicit, &c, err, sizeof(err)) < 0) {
		log_err("reload: %s; keeping the running configuration", err);
		return;
	}
	if (strcmp(c->host.uri, H.conf->host.uri) != 0)
		log_warn("reload: uri changes take effect at restart");
	snprintf(c->host.uri, sizeof(c->host.uri), "%s", H.conf->host.uri);
	hconf_free(H.conf);
	H.conf = c;
	H.act.host = &H.conf->host;
	log_set_level(H.conf->host.log_level);
	for (size_t i = 0; i < H.nvms; i++) {
		configure_vm(H.vms[i]);
		/* runs were judged against the old thresholds */
		policy_state_reset_runs(&H.vms[i]->st);
	}
	log_info("configuration reloaded from %s", H.conf_path);
}

/* Counters since start; latencies since the last stats line, which starts a new window. */
static void log_stats(void)
{
	char decide[128], age[128];
	uint64_t samples = 0;

	for (size_t i = 0; i < H.nvms; i++)
		samples += H.vms[i]->n.samples;
	stats_format(&H.decide_us, "us", decide, sizeof(decide));
	stats_format(&H.age_ms, "ms", age, sizeof(age));
	log_info("stats: %zu vms, %llu samples, %llu rejected frames; read to decision %s; "
	         "sample age %s",
	         H.nvms, (unsigned long long)samples, (unsigned long long)H.rejected, decide, age);
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

static int setup(bool dry_run)
{
	char dlog_path[PATH_MAX + 32];
	int r;

	r = mkdir_p(H.conf->host.state_dir);
	if (r < 0) {
		log_err("cannot create %s: %s", H.conf->host.state_dir, strerror(-r));
		return 1;
	}
	if (H.conf->host.decision_log[0])
		snprintf(dlog_path, sizeof(dlog_path), "%s", H.conf->host.decision_log);
	else
		snprintf(dlog_path, sizeof(dlog_path), "%s/decisions.jsonl",
		         H.conf->host.state_dir);
	H.dlog = declog_open(dlog_path);
	if (!H.dlog)
		log_warn("decision log %s: %s; decisions go to this log only", dlog_path,
		         strerror(errno));
	H.virt = virt_new(virt_notify, NULL);
	if (!H.virt) {
		log_err("libvirt event loop: %s", strerror(errno));
		return 1;
	}
	H.act = (struct actuate){
	        .virt = H.virt, .host = &H.conf->host, .dlog = H.dlog, .dry_run = dry_run};
	H.reject_rl = (struct log_ratelimit){.burst = 10, .interval_ms = 10000};
	H.reconnect_ms = 1000;
	return 0;
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
	connect_virt();
	ev_run(H.loop, 0);
	log_info("stopping");
	while (H.nvms > 0)
		vm_free(H.vms[--H.nvms]);
	free(H.vms);
	virt_free(H.virt);
	declog_close(H.dlog);
	hconf_free(H.conf);
	return 0;
}
