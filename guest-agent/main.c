/* vscale-guestd: samples the guest every interval and streams it to the host over the vscale
 * virtio port; onlines hot-added CPUs and memory; answers the host's requests. Wiring only: the
 * work is in collect.c, hotplug.c and channel.c. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "channel.h"
#include "collect.h"
#include "gconf.h"
#include "hotplug.h"
#include "log.h"
#include "util.h"
#include "wire.h"

#ifndef VSCALE_VERSION
#define VSCALE_VERSION "0.1.0"
#endif

struct guestd {
	struct ev_loop *loop;
	struct gconf conf;
	struct collector *coll;
	struct hotplug *hp; /* NULL when hotplug = no */
	struct channel ch;
	ev_timer tick;
	ev_signal sigint, sigterm;
	uint64_t seq;
	/* newest samples not yet sent; a ring that drops the oldest */
	struct sample *backlog;
	unsigned head, count;
	uint64_t dropped;
	char boot_id[40];
};

static void backlog_push(struct guestd *g, const struct sample *s)
{
	unsigned cap = g->conf.buffer_samples;

	if (g->count == cap) {
		g->head = (g->head + 1) % cap;
		g->count--;
		g->dropped++;
	}
	g->backlog[(g->head + g->count) % cap] = *s;
	g->count++;
}

/* Sends one sample; false when it could not be queued now. */
static bool send_sample(struct guestd *g, const struct sample *s)
{
	uint8_t buf[FRAME_MAX_PAYLOAD];
	int n = wire_encode_sample(s, buf, sizeof(buf));

	if (n < 0) {
		log_err("sample %llu does not encode: %s", (unsigned long long)s->seq,
		        strerror(-n));
		return true; /* dropping it is all we can do; don't block the backlog on it */
	}
	/* keep room for replies, which must not wait behind samples */
	if (channel_room(&g->ch) < (size_t)n + FRAME_HEADER_LEN + 1024)
		return false;
	return channel_send(&g->ch, FRAME_SAMPLE, buf, (size_t)n) == 0;
}

static void flush_backlog(struct guestd *g)
{
	while (g->count > 0 && send_sample(g, &g->backlog[g->head])) {
		g->head = (g->head + 1) % g->conf.buffer_samples;
		g->count--;
	}
}

static void on_up(struct channel *ch, void *user)
{
	struct guestd *g = user;
	struct hello h = {.protocol_version = VSCALE_PROTOCOL_VERSION,
	                  .session_nonce = util_random64(),
	                  .caps = CAP_THREADS};
	uint8_t buf[512];
	int n;

	snprintf(h.agent_version, sizeof(h.agent_version), "%s", VSCALE_VERSION);
	snprintf(h.boot_id, sizeof(h.boot_id), "%s", g->boot_id);
	if (g->hp)
		h.caps |= CAP_CPU_ONLINE | CAP_MEM_ONLINE | CAP_MEM_OFFLINE;
	n = wire_encode_hello(&h, buf, sizeof(buf));
	if (n < 0 || channel_send(ch, FRAME_HELLO, buf, (size_t)n) < 0)
		return;
	if (g->dropped)
		log_warn("%llu samples dropped while the host was away",
		         (unsigned long long)g->dropped);
	g->dropped = 0;
	flush_backlog(g);
}

static void on_request(struct guestd *g, const struct frame *f)
{
	struct request req;
	struct reply rep = {0};
	uint8_t buf[512];
	int n;

	if (wire_decode_request(f->payload, f->len, &req) < 0) {
		log_warn("host sent a request that does not decode; ignored");
		return;
	}
	if (g->hp) {
		hotplug_handle(g->hp, &req, util_now_ms(), &rep);
	} else {
		rep.id = req.id;
		rep.status = REPLY_REFUSED;
		snprintf(rep.reason, sizeof(rep.reason), "hotplug is off in the guest");
	}
	log_info("request %llu kind %d: status %d %s", (unsigned long long)req.id, (int)req.kind,
	         (int)rep.status, rep.reason);
	n = wire_encode_reply(&rep, buf, sizeof(buf));
	if (n < 0 || channel_send(&g->ch, FRAME_REPLY, buf, (size_t)n) < 0)
		log_warn("reply to request %llu not sent", (unsigned long long)req.id);
}

static void on_frame(struct channel *ch, const struct frame *f, void *user)
{
	struct guestd *g = user;

	if (f->type == FRAME_REQUEST)
		on_request(g, f);
	else
		log_debug("ignoring frame type %d from the host", (int)f->type);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct guestd *g = container_of(w, struct guestd, tick);
	uint64_t now = util_now_ms();
	struct sample s;

	if (g->hp) {
		struct hotplug_stats st;

		if (hotplug_scan(g->hp, now, &st) == 0 && (st.cpus_onlined || st.blocks_onlined))
			log_info("onlined %u CPUs and %u memory blocks", st.cpus_onlined,
			         st.blocks_onlined);
	}
	if (collect_sample(g->coll, now, &s) < 0)
		return;
	s.seq = ++g->seq;
	s.mono_ms = now;
	flush_backlog(g);
	if (g->count > 0 || !send_sample(g, &s))
		backlog_push(g, &s);
}

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static int run_once(struct gconf *c)
{
	struct collector *coll = collect_new(c->root, &c->collect);
	char json[4096];
	struct sample s;
	uint64_t wait_ms = c->interval_ms < 1000 ? c->interval_ms : 1000;
	int r;

	if (!coll) {
		fprintf(stderr, "vscale-guestd: %s: %s\n", c->root, strerror(errno));
		return 1;
	}
	/* two readings: rates (busy %, thread %) need an interval */
	collect_sample(coll, util_now_ms(), &s);
	usleep((useconds_t)wait_ms * 1000);
	r = collect_sample(coll, util_now_ms(), &s);
	collect_free(coll);
	if (r < 0) {
		fprintf(stderr, "vscale-guestd: nothing readable under %s: %s\n", c->root,
		        strerror(-r));
		return 1;
	}
	s.seq = 1;
	if (sample_to_json(&s, json, sizeof(json)) < 0)
		return 1;
	printf("%s\n", json);
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: vscale-guestd [OPTIONS]\n"
	        "Streams this VM's CPU, memory and thread metrics to vscale-hostd over virtio-serial\n"
	        "and onlines hot-added CPUs and memory.\n\n"
	        "  -c, --config FILE     config file (default " GCONF_DEFAULT_PATH ")\n"
	        "  -d, --device PATH     port, unix socket or FIFO (default: find " GCONF_PORT_NAME
	        ")\n"
	        "  -i, --interval DUR    time between samples, e.g. 1s, 500ms\n"
	        "  -r, --root DIR        read proc/ and sys/ under DIR (tests)\n"
	        "  -s, --set KEY=VALUE   any config key\n"
	        "      --no-hotplug      do not online CPUs or memory, refuse host requests\n"
	        "      --once            print one sample as JSON and exit\n"
	        "      --print-config    print the effective configuration and exit\n"
	        "  -v, --verbose         log at debug level\n"
	        "  -h, --help            this text\n"
	        "      --version         print the version\n");
}

/* Loads the config file, then applies the command line over it. 0, 1 (error) or 2 (exit 0). */
static int parse_args(int argc, char **argv, struct gconf *c, bool *once, bool *print)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"device", required_argument, NULL, 'd'},
	                                     {"interval", required_argument, NULL, 'i'},
	                                     {"root", required_argument, NULL, 'r'},
	                                     {"set", required_argument, NULL, 's'},
	                                     {"no-hotplug", no_argument, NULL, 'H'},
	                                     {"once", no_argument, NULL, 'O'},
	                                     {"print-config", no_argument, NULL, 'P'},
	                                     {"verbose", no_argument, NULL, 'v'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {0}};
	const char *config = GCONF_DEFAULT_PATH;
	bool explicit_config = false;
	char err[512];
	int o;

	/* first pass: only the config file, so the command line overrides it */
	while ((o = getopt_long(argc, argv, "c:d:i:r:s:vh", opts, NULL)) != -1) {
		if (o == 'c') {
			config = optarg;
			explicit_config = true;
		} else if (o == 'h') {
			usage(stdout);
			return 2;
		} else if (o == 'V') {
			printf("vscale-guestd %s\n", VSCALE_VERSION);
			return 2;
		} else if (o == '?') {
			usage(stderr);
			return 1;
		}
	}
	if (gconf_load(c, config, explicit_config, err, sizeof(err)) < 0) {
		fprintf(stderr, "vscale-guestd: %s\n", err);
		return 1;
	}
	optind = 1;
	while ((o = getopt_long(argc, argv, "c:d:i:r:s:vh", opts, NULL)) != -1) {
		const char *key = NULL, *val = optarg;
		char kv[256];

		switch (o) {
		case 'd':
			key = "device";
			break;
		case 'i':
			key = "interval";
			break;
		case 'r':
			key = "root";
			break;
		case 's': {
			char *eq = strchr(optarg, '=');

			if (!eq || (size_t)(eq - optarg) >= sizeof(kv)) {
				fprintf(stderr, "vscale-guestd: --set %s: expected KEY=VALUE\n",
				        optarg);
				return 1;
			}
			memcpy(kv, optarg, (size_t)(eq - optarg));
			kv[eq - optarg] = '\0';
			key = kv;
			val = eq + 1;
			break;
		}
		case 'H':
			c->hotplug = false;
			break;
		case 'O':
			*once = true;
			break;
		case 'P':
			*print = true;
			break;
		case 'v':
			c->log_level = LOG_LVL_DEBUG;
			break;
		}
		if (key && gconf_set(c, key, val, err, sizeof(err)) < 0) {
			fprintf(stderr, "vscale-guestd: command line: %s\n", err);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vscale-guestd: unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	return 0;
}

static int guestd_run(struct guestd *g)
{
	char rel[64];
	double iv = (double)g->conf.interval_ms / 1000.0;

	g->coll = collect_new(g->conf.root, &g->conf.collect);
	if (!g->coll) {
		log_err("cannot read %s: %s", g->conf.root, strerror(errno));
		return 1;
	}
	if (g->conf.hotplug) {
		g->hp = hotplug_new(g->conf.root, (uint32_t)g->conf.hold_ms);
		if (!g->hp)
			log_warn("hotplug disabled: %s", strerror(errno));
	}
	g->backlog = calloc(g->conf.buffer_samples, sizeof(*g->backlog));
	if (!g->backlog) {
		log_err("out of memory");
		return 1;
	}
	snprintf(rel, sizeof(rel), "proc/sys/kernel/random/boot_id");
	if (util_read_file_at(g->conf.root, rel, g->boot_id, sizeof(g->boot_id)) > 0)
		g->boot_id[strcspn(g->boot_id, "\n")] = '\0';
	g->loop = ev_default_loop(EVFLAG_AUTO);
	ev_signal_init(&g->sigint, stop_cb, SIGINT);
	ev_signal_init(&g->sigterm, stop_cb, SIGTERM);
	ev_signal_start(g->loop, &g->sigint);
	ev_signal_start(g->loop, &g->sigterm);
	ev_timer_init(&g->tick, tick_cb, 0.0, iv);
	ev_timer_start(g->loop, &g->tick);
	channel_init(&g->ch, g->loop, g->conf.device, g->conf.retry_max_ms, on_up, on_frame, g);
	log_info("vscale-guestd %s: sampling every %llu ms, %s", VSCALE_VERSION,
	         (unsigned long long)g->conf.interval_ms,
	         g->conf.device[0] ? g->conf.device : "port " GCONF_PORT_NAME);
	/* Type=notify: started once sampling is set up; the host may not be connected yet. A
	 * no-op without $NOTIFY_SOCKET (not under systemd). */
	sd_notifyf(0, "READY=1\nSTATUS=sampling every %llu ms",
	           (unsigned long long)g->conf.interval_ms);
	ev_run(g->loop, 0);
	log_info("stopping");
	sd_notify(0, "STOPPING=1");
	channel_fini(&g->ch);
	hotplug_free(g->hp);
	collect_free(g->coll);
	free(g->backlog);
	return 0;
}

int main(int argc, char **argv)
{
	static struct guestd g; /* holds the channel's 64 KiB buffer: keep it off the stack */
	bool once = false, print = false;
	int r;

	log_set_ident("vscale-guestd");
	gconf_default(&g.conf);
	r = parse_args(argc, argv, &g.conf, &once, &print);
	if (r)
		return r == 2 ? 0 : 1;
	log_set_level(g.conf.log_level);
	if (print) {
		gconf_print(&g.conf, stdout);
		return 0;
	}
	if (once)
		return run_once(&g.conf);
	signal(SIGPIPE, SIG_IGN);
	return guestd_run(&g);
}
