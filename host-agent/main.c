/* vscale-hostd: follows libvirt's running domains, reads each one's vscale guest stream, asks
 * the policy what to do on every sample and has actuate.c do it. Wiring only: the options, the
 * modules set up and torn down, the loop's timers and signals. The VM table and libvirt's events
 * are in domains.c, the guest frames and decisions in stream.c, the host's figures in
 * hostview.c, the decisions themselves in decision.c (policy.h), the actions in actuate.c. */
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
#include "domains.h"
#include "hconf.h"
#include "hostd.h"
#include "hostview.h"
#include "log.h"
#include "migrate.h"
#include "stream.h"
#include "util.h"
#include "virt.h"
#include "vm.h"

#ifndef VSCALE_VERSION
#define VSCALE_VERSION "0.1.0"
#endif

#define HOUSEKEEPING_S 0.5
#define METER_SAVE_MS  60000

static struct hostd H; /* main owns the loop and everything on it */

/* this host's VMs on the move (migrate.c) */
static struct migrate MIG;

/* ---- migration (migrate.c) ---- */

/* A migration request for a balancer: logged, and published as a "migration-request" event. */
static void mig_request(void *user, const struct migrate_request *rq)
{
	struct hostd *h = user;
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
	control_publish(h->ctl, &e);
}

static void mig_changed(void *user, const char *uuid)
{
	struct hostd *h = user;
	struct vm *vm = domains_find(h, uuid);

	/* its stream stops for a move, and starts again if it failed */
	if (vm)
		domains_configure_vm(h, vm);
}

static void mig_moved(void *user, const char *uuid, const char *peer)
{
	struct hostd *h = user;
	char why[VIRT_URI_LEN + 16];

	snprintf(why, sizeof(why), "migrated to %s", peer);
	for (size_t i = 0; i < h->nvms; i++) {
		if (strcmp(h->vms[i]->uuid, uuid) == 0) {
			domains_remove(h, i, why);
			break;
		}
	}
	hostview_refresh(h, util_now_ms());
}

static int mig_start(void *user, struct virt_job *job)
{
	return virt_job_start(job);
}

static int mig_abort(void *user, const char *uuid)
{
	struct hostd *h = user;

	return virt_migrate_abort(h->virt, uuid);
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
	h->mig->host = &h->conf->host;
	log_set_level(h->conf->host.log_level);
	domains_reconfigure(h);
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

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (w->signum == SIGHUP) {
		reload();
	} else if (w->signum == SIGUSR1) {
		stream_log_stats(&H);
	} else {
		ev_break(loop, EVBREAK_ALL);
	}
}

/* ---- timers ---- */

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
	hostview_refresh(&H, now);
	hostview_get(&H, &hv);
	migrate_tick(&MIG, H.vms, H.nvms, &H.node, &hv, now);
	if (H.virt_up && !virt_connected(H.virt))
		domains_on_conn_lost(&H);
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

/* ---- setup and teardown ---- */

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
	H.virt = virt_new(domains_notify, &H);
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
	stream_init(&H);
	migrate_init(&MIG, H.loop, &H.conf->host, &mig_ops, &H, H.dlog);
	MIG.dry_run = dry_run;
	H.mig = &MIG;
	return open_operator_ports();
}

/* The loop's own watchers: libvirt's wake and retry timer, housekeeping, signals. */
static void start_watchers(void)
{
	domains_init(&H);
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
}

static void teardown(void)
{
	meter_tick(util_now_ms(), true);
	domains_fini(&H);
	metrics_close(H.metrics);
	control_close(H.ctl);
	meter_free(H.meter);
	migrate_fini(&MIG);
	virt_free(H.virt);
	declog_close(H.dlog);
	hconf_free(H.conf);
}

/* ---- options ---- */

struct options {
	bool dry_run, print, verbose;
};

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

/* Fills *ret and H's config path. false: exit now with *ret_status (help, version, misuse). */
static bool parse_options(int argc, char **argv, struct options *ret, int *ret_status)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"dry-run", no_argument, NULL, 'n'},
	                                     {"print-config", no_argument, NULL, 'P'},
	                                     {"verbose", no_argument, NULL, 'v'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {0}};
	int o;

	H.conf_path = HCONF_DEFAULT_PATH;
	while ((o = getopt_long(argc, argv, "c:nvh", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			H.conf_path = optarg;
			H.conf_explicit = true;
			break;
		case 'n':
			ret->dry_run = true;
			break;
		case 'P':
			ret->print = true;
			break;
		case 'v':
			ret->verbose = true;
			break;
		case 'h':
			usage(stdout);
			*ret_status = 0;
			return false;
		case 'V':
			printf("vscale-hostd %s\n", VSCALE_VERSION);
			*ret_status = 0;
			return false;
		default:
			usage(stderr);
			*ret_status = 1;
			return false;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vscale-hostd: unexpected argument '%s'\n", argv[optind]);
		*ret_status = 1;
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	struct options opt = {0};
	char err[1024];
	int status;

	log_set_ident("vscale-hostd");
	if (!parse_options(argc, argv, &opt, &status))
		return status;
	if (hconf_load(H.conf_path, H.conf_explicit, &H.conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "vscale-hostd: %s\n", err);
		return 1;
	}
	if (opt.print) {
		hconf_print(H.conf, stdout);
		hconf_free(H.conf);
		return 0;
	}
	log_set_level(opt.verbose ? LOG_LVL_DEBUG : H.conf->host.log_level);
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	H.loop = ev_default_loop(EVFLAG_AUTO);
	if (setup(opt.dry_run))
		return 1;
	start_watchers();
	log_info("vscale-hostd %s%s: config %s", VSCALE_VERSION, opt.dry_run ? " (dry run)" : "",
	         H.conf_path);
	H.start_ms = util_now_ms();
	H.meter_saved_ms = H.start_ms;
	domains_connect(&H);
	start_watchdog();
	sd_notifyf(0, "READY=1\nSTATUS=following %zu domains\nMAINPID=%lu", H.nvms,
	           (unsigned long)getpid());
	ev_run(H.loop, 0);
	log_info("stopping");
	sd_notify(0, "STOPPING=1");
	teardown();
	return 0;
}
