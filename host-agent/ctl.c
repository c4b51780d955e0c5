/* vscalectl: the operator's command line for vscale-hostd, over its control socket. Human tables
 * by default, --json for scripts. Exit status: 0 done, 1 failed (unknown VM, bad value, hostd
 * not running, permission denied), 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "control.h"
#include "ctlmsg.h"

#ifndef VSCALE_VERSION
#define VSCALE_VERSION "0.1.0"
#endif

#define DEFAULT_DIR    "/run/vscale"
#define TIMEOUT_MS     10000
#define ENABLE_TIMEOUT 60000
#define EXIT_FAIL      1
#define EXIT_USAGE     2

struct opts {
	const char *dir;
	bool json;
};

static volatile int stop;

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: vscalectl [--socket DIR] [--json] COMMAND [ARGS]\n"
	        "Talks to vscale-hostd, which scales the vCPUs and memory of running VMs.\n\n"
	        "Commands:\n"
	        "  status                  hostd, libvirt connection and host headroom\n"
	        "  list                    every VM hostd follows, one line each\n"
	        "  show VM                 everything about one VM, metering included\n"
	        "  history VM [-n N]       its newest N decisions (default 20)\n"
	        "  pause VM | resume VM    stop / restart scaling it (it keeps its size)\n"
	        "  set VM KEY=VALUE...     runtime policy override, until the next reload\n"
	        "  reload                  re-read the configuration (like SIGHUP)\n"
	        "  watch [VM]              stream decisions and events as they happen\n"
	        "  enable VM [--max-vcpus N] [--max-memory SIZE] [--dry-run]\n"
	        "                          make a defined domain scalable (persistent XML; shows\n"
	        "                          the diff; takes effect at its next boot)\n\n"
	        "Options:\n"
	        "  -s, --socket DIR        hostd's control directory (default " DEFAULT_DIR ")\n"
	        "  -j, --json              JSON output\n"
	        "  -h, --help              this text\n"
	        "      --version           print the version\n");
}

/* ---- output helpers ---- */

static void jstr(const char *key, const char *v, bool comma)
{
	printf("\"%s\":\"", key);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	printf("\"%s", comma ? "," : "");
}

static void jnum(const char *key, double v, bool comma)
{
	printf("\"%s\":%.17g%s", key, v, comma ? "," : "");
}

static void jbool(const char *key, bool v, bool comma)
{
	printf("\"%s\":%s%s", key, v ? "true" : "false", comma ? "," : "");
}

static const char *mib(uint64_t kib, char *buf, size_t cap)
{
	if (kib >= 1024ull * 1024 && kib % (1024ull * 1024) == 0)
		snprintf(buf, cap, "%" PRIu64 "G", kib / (1024 * 1024));
	else
		snprintf(buf, cap, "%" PRIu64 "M", kib / 1024);
	return buf;
}

static const char *when(uint64_t wall_ms, char *buf, size_t cap)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

static const char *duration(uint64_t ms, char *buf, size_t cap)
{
	uint64_t s = ms / 1000;

	if (s >= 86400)
		snprintf(buf, cap, "%" PRIu64 "d %" PRIu64 "h", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, cap, "%" PRIu64 "h %" PRIu64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, cap, "%" PRIu64 "m %" PRIu64 "s", s / 60, s % 60);
	return buf;
}

/* ---- the commands' output ---- */

static void json_host(const struct ctl_host *h)
{
	printf("{");
	jstr("version", h->version, true);
	jnum("uptime_s", (double)h->uptime_ms / 1000.0, true);
	jstr("uri", h->uri, true);
	jbool("connected", h->connected, true);
	jbool("dry_run", h->dry_run, true);
	jstr("config", h->config, true);
	jnum("vms", h->vms, true);
	jnum("vms_streaming", h->vms_streaming, true);
	jnum("host_cpus", h->cpus, true);
	jnum("host_mem_kib", (double)h->mem_total_kib, true);
	jnum("vcpus_allocated", (double)h->vcpus_allocated, true);
	jnum("mem_allocated_kib", (double)h->mem_allocated_kib, true);
	jnum("vcpus_free", (double)h->vcpus_free, true);
	jnum("mem_free_kib", (double)h->mem_free_kib, true);
	jnum("rejected_frames", (double)h->rejected_frames, true);
	jstr("decision_log", h->decision_log, false);
	printf("}");
}

static void print_status(const struct opts *o, const struct ctl_host *h)
{
	char a[32], b[32], c[32];

	if (o->json) {
		json_host(h);
		printf("\n");
		return;
	}
	printf("vscale-hostd %s%s, up %s, config %s\n", h->version, h->dry_run ? " (dry run)" : "",
	       duration(h->uptime_ms, a, sizeof(a)), h->config);
	printf("libvirt:   %s (%s)\n", h->uri, h->connected ? "connected" : "NOT connected");
	printf("VMs:       %u followed, %u with a guest agent session\n", h->vms, h->vms_streaming);
	printf("host:      %u CPUs, %s memory\n", h->cpus, mib(h->mem_total_kib, a, sizeof(a)));
	printf("allocated: %" PRIu64 " vCPUs, %s memory\n", h->vcpus_allocated,
	       mib(h->mem_allocated_kib, b, sizeof(b)));
	printf("headroom:  %" PRId64 " vCPUs, %s memory (after reserve and overcommit)\n",
	       h->vcpus_free,
	       h->mem_free_kib < 0 ? "0M" : mib((uint64_t)h->mem_free_kib, c, sizeof(c)));
	printf("rejected guest frames: %" PRIu64 "; decision log %s\n", h->rejected_frames,
	       h->decision_log);
}

static void json_vm(const struct ctl_vm *v)
{
	printf("{");
	jstr("name", v->name, true);
	jstr("uuid", v->uuid, true);
	jstr("policy", v->policy, true);
	jstr("state", v->state, true);
	jbool("paused", v->paused, true);
	jbool("enabled", v->enabled, true);
	jbool("streaming", v->streaming, true);
	jnum("vcpus", v->vcpus, true);
	jnum("vcpus_plugged", v->vcpus_plugged, true);
	jnum("vcpus_min", v->vcpus_min, true);
	jnum("vcpus_max", v->vcpus_max, true);
	jnum("mem_kib", (double)v->mem_kib, true);
	jnum("mem_min_kib", (double)v->mem_min_kib, true);
	jnum("mem_max_kib", (double)v->mem_max_kib, true);
	jstr("mem_mechanism", v->mem_mechanism, true);
	if (v->has_sample) {
		printf("\"guest\":{");
		jnum("sample_age_ms", (double)v->sample_age_ms, true);
		jnum("cpu_busy_pct", v->cpu_busy_pct, true);
		jnum("cpus_online", v->cpus_online, true);
		jnum("cpu_psi_some", v->cpu_psi_some, true);
		jnum("mem_total_kib", (double)v->guest_mem_total_kib, true);
		jnum("mem_available_kib", (double)v->guest_mem_available_kib, true);
		jnum("mem_psi_some", v->mem_psi_some, true);
		jbool("saturated", v->saturated, false);
		printf("},");
	}
	jstr("last_action", v->last_action, true);
	jstr("last_decision", v->last_decision, true);
	jstr("operation", v->op, true);
	jnum("samples", (double)v->samples, true);
	jnum("rejected_frames", (double)v->rejected, true);
	printf("\"operations\":{");
	jnum("ok", (double)v->ops_ok, true);
	jnum("failed", (double)v->ops_failed, true);
	jnum("refused", (double)v->ops_refused, true);
	jnum("timeout", (double)v->ops_timeout, false);
	printf("},\"metering\":{");
	jnum("vcpu_seconds", v->vcpu_seconds, true);
	jnum("gib_seconds", v->gib_seconds, false);
	printf("},");
	jstr("overrides", v->overrides, true);
	jstr("channel", v->channel, false);
	printf("}");
}

static void print_list(const struct opts *o, const struct ctl_reply *r)
{
	char a[32], b[32], cpu[16], avail[32];

	if (o->json) {
		printf("[");
		for (size_t i = 0; i < r->nvms; i++) {
			json_vm(&r->vms[i]);
			printf(i + 1 < r->nvms ? ",\n" : "");
		}
		printf("]\n");
		return;
	}
	if (r->nvms == 0) {
		printf("no running VMs\n");
		return;
	}
	printf("%-20s %-10s %-10s %-13s %-13s %5s %7s  %s\n", "VM", "STATE", "POLICY",
	       "VCPUS on/plg/max", "", "CPU", "AVAIL", "LAST ACTION");
	for (size_t i = 0; i < r->nvms; i++) {
		const struct ctl_vm *v = &r->vms[i];
		char vc[40], mem[72];

		snprintf(vc, sizeof(vc), "%u/%u/%u", v->vcpus, v->vcpus_plugged, v->vcpus_max);
		snprintf(mem, sizeof(mem), "%s/%s", mib(v->mem_kib, a, sizeof(a)),
		         mib(v->mem_max_kib, b, sizeof(b)));
		snprintf(cpu, sizeof(cpu), v->has_sample ? "%.0f%%" : "-", v->cpu_busy_pct);
		if (v->has_sample)
			mib(v->guest_mem_available_kib, avail, sizeof(avail));
		else
			snprintf(avail, sizeof(avail), "-");
		printf("%-20s %-10s %-10s %-13s %-13s %5s %7s  %s\n", v->name, v->state, v->policy,
		       vc, mem, cpu, avail, v->last_action[0] ? v->last_action : "-");
	}
}

static void print_show(const struct opts *o, const struct ctl_vm *v)
{
	char a[32], b[32], c[32];

	if (o->json) {
		json_vm(v);
		printf("\n");
		return;
	}
	printf("%s (%s)\n", v->name, v->uuid);
	printf("  state:       %s%s\n", v->state, v->op[0] ? "" : "");
	if (v->op[0])
		printf("  operation:   %s in flight\n", v->op);
	printf("  policy:      %s%s%s\n", v->policy, v->overrides[0] ? ", overrides: " : "",
	       v->overrides);
	printf("  vCPUs:       %u online by grant, %u plugged, policy %u..%u\n", v->vcpus,
	       v->vcpus_plugged, v->vcpus_min, v->vcpus_max);
	printf("  memory:      %s (%s), policy %s..%s\n", mib(v->mem_kib, a, sizeof(a)),
	       v->mem_mechanism, mib(v->mem_min_kib, b, sizeof(b)),
	       mib(v->mem_max_kib, c, sizeof(c)));
	if (v->has_sample) {
		printf("  guest:       cpu %.0f%% on %u online, pressure %.1f%%%s\n",
		       v->cpu_busy_pct, v->cpus_online, v->cpu_psi_some,
		       v->saturated ? ", one thread saturated" : "");
		printf("               memory %s of %s available, pressure %.1f%% (sample %.1f s old)\n",
		       mib(v->guest_mem_available_kib, a, sizeof(a)),
		       mib(v->guest_mem_total_kib, b, sizeof(b)), v->mem_psi_some,
		       (double)v->sample_age_ms / 1000.0);
	} else {
		printf("  guest:       no sample yet\n");
	}
	printf("  stream:      %s%s%s\n", v->streaming ? "connected" : "not connected",
	       v->channel[0] ? ", " : "", v->channel);
	printf("  decision:    %s\n", v->last_decision);
	printf("  last action: %s\n", v->last_action[0] ? v->last_action : "-");
	printf("  counters:    %" PRIu64 " samples, %" PRIu64
	       " rejected frames; operations %" PRIu64 " ok, %" PRIu64 " failed, %" PRIu64
	       " refused, %" PRIu64 " timed out\n",
	       v->samples, v->rejected, v->ops_ok, v->ops_failed, v->ops_refused, v->ops_timeout);
	printf("  metering:    %.1f vCPU-hours, %.2f GiB-hours allocated (%.0f vCPU-s, %.0f GiB-s)\n",
	       v->vcpu_seconds / 3600.0, v->gib_seconds / 3600.0, v->vcpu_seconds, v->gib_seconds);
}

static void json_record(const struct ctl_record *r)
{
	printf("{");
	jnum("time_ms", (double)r->time_ms, true);
	jstr("vm", r->vm, true);
	jstr("uuid", r->uuid, true);
	jstr("action", r->action, true);
	jstr("reason", r->reason, true);
	jstr("outcome", r->outcome, true);
	printf("\"vcpus\":[%u,%u],\"mem_kib\":[%" PRIu64 ",%" PRIu64 "],", r->vcpus_from,
	       r->vcpus_to, r->mem_from_kib, r->mem_to_kib);
	jstr("text", r->text, true);
	jstr("detail", r->detail, false);
	printf("}");
}

static void print_record(const struct ctl_record *r, bool with_vm)
{
	char t[32], a[32], b[32], change[80] = "";

	if (r->vcpus_from != r->vcpus_to)
		snprintf(change, sizeof(change), "vcpus %u -> %u", r->vcpus_from, r->vcpus_to);
	else if (r->mem_from_kib != r->mem_to_kib)
		snprintf(change, sizeof(change), "memory %s -> %s",
		         mib(r->mem_from_kib, a, sizeof(a)), mib(r->mem_to_kib, b, sizeof(b)));
	printf("%s %s%s%s%-9s %-9s %-10s %s%s%s%s%s\n", when(r->time_ms, t, sizeof(t)),
	       with_vm ? "vm '" : "", with_vm ? r->vm : "", with_vm ? "' " : "", r->action,
	       r->outcome, r->reason, change, change[0] ? ": " : "", r->text,
	       r->detail[0] ? " - " : "", r->detail);
}

static void print_history(const struct opts *o, const struct ctl_reply *r)
{
	if (o->json) {
		printf("[");
		for (size_t i = 0; i < r->nrecords; i++) {
			json_record(&r->records[i]);
			printf(i + 1 < r->nrecords ? ",\n" : "");
		}
		printf("]\n");
		return;
	}
	if (r->nrecords == 0)
		printf("no decisions recorded yet\n");
	for (size_t i = 0; i < r->nrecords; i++)
		print_record(&r->records[i], false);
}

/* ---- enable: the diff, shown before anything else ---- */

static int write_temp(char *tmpl, const char *text)
{
	int fd = mkstemp(tmpl);
	size_t len = text ? strlen(text) : 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text ? text : "", len) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

static void show_diff(const char *vm, const char *old_xml, const char *new_xml)
{
	char a[] = "/tmp/vscalectl-old-XXXXXX", b[] = "/tmp/vscalectl-new-XXXXXX", cmd[512];

	if (write_temp(a, old_xml) < 0 || write_temp(b, new_xml) < 0) {
		fprintf(stderr, "vscalectl: cannot write a temporary file for the diff\n");
		return;
	}
	fflush(stdout);
	snprintf(cmd, sizeof(cmd), "diff -u --label '%s (now)' --label '%s (scalable)' %s %s", "a",
	         "b", a, b);
	(void)vm;
	if (system(cmd) < 0)
		fprintf(stderr, "vscalectl: cannot run diff\n");
	unlink(a);
	unlink(b);
}

static void print_enable(const struct opts *o, const struct ctl_request *rq,
                         const struct ctl_reply *r)
{
	if (o->json) {
		printf("{");
		jstr("message", r->message, true);
		jstr("changes", r->changes ? r->changes : "", true);
		jstr("old_xml", r->old_xml ? r->old_xml : "", true);
		jstr("new_xml", r->new_xml ? r->new_xml : "", false);
		printf("}\n");
		return;
	}
	if (r->changes && strncmp(r->changes, "already", 7) != 0) {
		printf("%s", r->changes);
		show_diff(rq->vm, r->old_xml, r->new_xml);
	}
	printf("%s\n", r->message);
}

/* ---- watch ---- */

struct watch_ctx {
	const struct opts *o;
	const char *vm;
};

static int on_event(void *user, const struct ctl_event *e)
{
	struct watch_ctx *w = user;
	char t[32];

	if (w->vm && strcmp(w->vm, e->vm) != 0 && strcasecmp(w->vm, e->uuid) != 0)
		return 0;
	if (w->o->json) {
		printf("{");
		jstr("kind", e->kind, true);
		jnum("time_ms", (double)e->time_ms, true);
		jstr("vm", e->vm, true);
		jstr("uuid", e->uuid, true);
		if (e->has_record) {
			printf("\"record\":");
			json_record(&e->record);
			printf(",");
		}
		if (e->need_vcpus || e->need_mem_kib) {
			jnum("need_vcpus", e->need_vcpus, true);
			jnum("need_mem_kib", (double)e->need_mem_kib, true);
			jstr("peer", e->peer, true);
		}
		jstr("text", e->text, false);
		printf("}\n");
	} else if (e->has_record) {
		print_record(&e->record, true);
	} else {
		printf("%s %-10s %s%s%s%s\n", when(e->time_ms, t, sizeof(t)), e->kind,
		       e->vm[0] ? "vm '" : "", e->vm, e->vm[0] ? "': " : "", e->text);
	}
	fflush(stdout);
	return 0;
}

static void on_signal(int sig)
{
	stop = 1;
}

static int watch(const struct opts *o, const char *vm)
{
	struct watch_ctx w = {.o = o, .vm = vm};
	struct sigaction sa = {.sa_handler = on_signal};
	char err[512];

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (!o->json)
		fprintf(stderr, "watching vscale-hostd's events (Ctrl-C ends)\n");
	if (control_watch(o->dir, on_event, &w, &stop, err, sizeof(err)) < 0) {
		fprintf(stderr, "vscalectl: %s\n", err);
		return EXIT_FAIL;
	}
	return 0;
}

/* ---- argument parsing ---- */

static const struct {
	const char *name;
	enum ctl_op op;
	int min_args, max_args; /* after the command word; -1 = any */
} commands[] = {
        {"status", CTL_STATUS, 0, 0},   {"list", CTL_LIST, 0, 0},     {"show", CTL_SHOW, 1, 1},
        {"history", CTL_HISTORY, 1, 1}, {"pause", CTL_PAUSE, 1, 1},   {"resume", CTL_RESUME, 1, 1},
        {"set", CTL_SET, 2, -1},        {"reload", CTL_RELOAD, 0, 0}, {"enable", CTL_ENABLE, 1, 1},
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vscalectl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'vscalectl --help'.\n");
	return EXIT_USAGE;
}

/* Options after the command word: -n N (history), --max-vcpus, --max-memory, --dry-run
 * (enable). The rest are positional. */
static int parse_command_args(int argc, char **argv, struct ctl_request *rq, char **pos, int *npos)
{
	char err[256];
	uint64_t u;

	*npos = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;

		if (strcmp(a, "-n") == 0 && rq->op == CTL_HISTORY && has_val) {
			if (conf_parse_uint(argv[++i], 1, 1000, &u, err, sizeof(err)) < 0)
				return usage_error("-n: %s", err);
			rq->count = (uint32_t)u;
		} else if (strcmp(a, "--max-vcpus") == 0 && rq->op == CTL_ENABLE && has_val) {
			if (conf_parse_uint(argv[++i], 1, 4096, &u, err, sizeof(err)) < 0)
				return usage_error("--max-vcpus: %s", err);
			rq->max_vcpus = (uint32_t)u;
		} else if (strcmp(a, "--max-memory") == 0 && rq->op == CTL_ENABLE && has_val) {
			if (conf_parse_size_kib(argv[++i], &rq->max_mem_kib, err, sizeof(err)) < 0)
				return usage_error("--max-memory: %s", err);
		} else if (strcmp(a, "--dry-run") == 0 && rq->op == CTL_ENABLE) {
			rq->dry_run = true;
		} else if (a[0] == '-' && a[1]) {
			return usage_error("unknown option '%s' for this command", a);
		} else {
			pos[(*npos)++] = argv[i];
		}
	}
	return 0;
}

static int run(const struct opts *o, const struct ctl_request *rq)
{
	struct ctl_reply r;
	char err[512];
	int timeout = rq->op == CTL_ENABLE ? ENABLE_TIMEOUT : TIMEOUT_MS;

	if (control_call(o->dir, rq, timeout, &r, err, sizeof(err)) < 0) {
		fprintf(stderr, "vscalectl: %s\n", err);
		return EXIT_FAIL;
	}
	if (!r.ok) {
		fprintf(stderr, "vscalectl: %s\n", r.error);
		ctl_reply_fini(&r);
		return EXIT_FAIL;
	}
	switch (rq->op) {
	case CTL_STATUS:
		print_status(o, &r.host);
		break;
	case CTL_LIST:
		print_list(o, &r);
		break;
	case CTL_SHOW:
		if (r.nvms == 1)
			print_show(o, &r.vms[0]);
		break;
	case CTL_HISTORY:
		print_history(o, &r);
		break;
	case CTL_ENABLE:
		print_enable(o, rq, &r);
		break;
	case CTL_PAUSE:
	case CTL_RESUME:
	case CTL_SET:
	case CTL_RELOAD:
		if (o->json) {
			printf("{");
			jstr("message", r.message, false);
			printf("}\n");
		} else {
			printf("%s\n", r.message);
		}
		break;
	}
	ctl_reply_fini(&r);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {{"socket", required_argument, NULL, 's'},
	                                      {"json", no_argument, NULL, 'j'},
	                                      {"help", no_argument, NULL, 'h'},
	                                      {"version", no_argument, NULL, 'V'},
	                                      {0}};
	struct opts o = {.dir = DEFAULT_DIR};
	struct ctl_request rq = {0};
	char *pos[64];
	int c, npos, r;
	size_t i;

	/* options up to the command word only: the command's own come after it */
	while ((c = getopt_long(argc, argv, "+s:jh", lopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.dir = optarg;
			break;
		case 'j':
			o.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vscalectl %s\n", VSCALE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[optind], "watch") == 0) {
		if (argc - optind > 2)
			return usage_error("watch takes at most one VM, not '%s'",
			                   argv[optind + 2]);
		return watch(&o, argc - optind == 2 ? argv[optind + 1] : NULL);
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			break;
	if (i == sizeof(commands) / sizeof(commands[0]))
		return usage_error("unknown command '%s'", argv[optind]);
	rq.op = commands[i].op;
	if (argc - optind - 1 > (int)(sizeof(pos) / sizeof(pos[0])))
		return usage_error("%s: too many arguments", commands[i].name);
	r = parse_command_args(argc - optind - 1, argv + optind + 1, &rq, pos, &npos);
	if (r)
		return r;
	if (npos < commands[i].min_args ||
	    (commands[i].max_args >= 0 && npos > commands[i].max_args))
		return usage_error("wrong number of arguments for '%s'", commands[i].name);
	if (npos > 0) {
		if (strlen(pos[0]) >= sizeof(rq.vm))
			return usage_error("VM name too long: '%s'", pos[0]);
		snprintf(rq.vm, sizeof(rq.vm), "%s", pos[0]);
	}
	for (int k = 1; rq.op == CTL_SET && k < npos; k++) {
		if (rq.nset == CTL_SET_MAX)
			return usage_error("set: at most 16 KEY=VALUE at once, not '%s'", pos[k]);
		if (!strchr(pos[k], '=') || strlen(pos[k]) >= CTL_TEXT_LEN)
			return usage_error("set: '%s' is not KEY=VALUE", pos[k]);
		snprintf(rq.set[rq.nset++], CTL_TEXT_LEN, "%s", pos[k]);
	}
	return run(&o, &rq);
}
