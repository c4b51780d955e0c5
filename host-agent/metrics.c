/* GET /metrics in Prometheus text format 0.0.4. See metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "conf.h"
#include "log.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- a growable text buffer ---- */

struct text {
	char *s;
	size_t len, cap;
	bool oom;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->oom)
		return;
	for (;;) {
		size_t room = t->cap - t->len;

		va_start(ap, fmt);
		n = vsnprintf(t->s ? t->s + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap * 2 : 4096;
		while (cap - t->len <= (size_t)n)
			cap *= 2;
		char *s = realloc(t->s, cap);
		if (!s) {
			t->oom = true;
			return;
		}
		t->s = s;
		t->cap = cap;
	}
}

/* a label value: backslash, quote and newline escaped */
static void put_label(struct text *t, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			put(t, "\\%c", *v);
		else if (*v == '\n')
			put(t, "\\n");
		else
			put(t, "%c", *v);
	}
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* ---- per VM ---- */

enum vm_metric {
	VM_VCPUS,
	VM_VCPUS_PLUGGED,
	VM_VCPUS_MAX,
	VM_MEM,
	VM_MEM_MAX,
	VM_STREAMING,
	VM_PAUSED,
	VM_CPU_BUSY,
	VM_CPUS_ONLINE,
	VM_CPU_PSI,
	VM_GUEST_MEM_TOTAL,
	VM_GUEST_MEM_AVAIL,
	VM_MEM_PSI,
	VM_SATURATED,
	VM_SAMPLES,
	VM_REJECTED,
	VM_OPS,
	VM_VCPU_SECONDS,
	VM_GIB_SECONDS,
	VM_NMETRICS
};

static const struct {
	const char *name, *type, *help;
	bool guest; /* only with a sample */
} vm_metrics[VM_NMETRICS] = {
        [VM_VCPUS] = {"vscale_vm_vcpus", "gauge", "vCPUs granted (online by vscale's decision)"},
        [VM_VCPUS_PLUGGED] = {"vscale_vm_vcpus_plugged", "gauge", "vCPUs plugged in libvirt"},
        [VM_VCPUS_MAX] = {"vscale_vm_vcpus_max", "gauge", "most vCPUs the policy grants"},
        [VM_MEM] = {"vscale_vm_memory_bytes", "gauge", "memory allocated by libvirt"},
        [VM_MEM_MAX] = {"vscale_vm_memory_max_bytes", "gauge", "most memory the policy grants"},
        [VM_STREAMING] = {"vscale_vm_stream_up", "gauge", "1 when the guest agent is connected"},
        [VM_PAUSED] = {"vscale_vm_paused", "gauge", "1 when an operator paused scaling"},
        [VM_CPU_BUSY] = {"vscale_vm_guest_cpu_busy_ratio", "gauge", "guest CPU busy, 0..1", true},
        [VM_CPUS_ONLINE] = {"vscale_vm_guest_cpus_online", "gauge", "CPUs online in the guest",
                            true},
        [VM_CPU_PSI] = {"vscale_vm_guest_cpu_pressure_ratio", "gauge",
                        "guest CPU pressure, some avg10, 0..1", true},
        [VM_GUEST_MEM_TOTAL] = {"vscale_vm_guest_memory_total_bytes", "gauge", "guest MemTotal",
                                true},
        [VM_GUEST_MEM_AVAIL] = {"vscale_vm_guest_memory_available_bytes", "gauge",
                                "guest MemAvailable", true},
        [VM_MEM_PSI] = {"vscale_vm_guest_memory_pressure_ratio", "gauge",
                        "guest memory pressure, some avg10, 0..1", true},
        [VM_SATURATED] = {"vscale_vm_guest_saturated", "gauge", "1 when one thread saturates a CPU",
                          true},
        [VM_SAMPLES] = {"vscale_vm_samples_total", "counter", "guest samples accepted"},
        [VM_REJECTED] = {"vscale_vm_rejected_frames_total", "counter",
                         "guest frames rejected (bad bytes, values or sequence)"},
        [VM_OPS] = {"vscale_vm_operations_total", "counter", "scaling operations by outcome"},
        [VM_VCPU_SECONDS] = {"vscale_vm_vcpu_seconds_total", "counter",
                             "metering: vCPU-seconds allocated"},
        [VM_GIB_SECONDS] = {"vscale_vm_memory_gib_seconds_total", "counter",
                            "metering: GiB-seconds of memory allocated"},
};

static double vm_value(enum vm_metric m, const struct ctl_vm *v)
{
	switch (m) {
	case VM_VCPUS:
		return v->vcpus;
	case VM_VCPUS_PLUGGED:
		return v->vcpus_plugged;
	case VM_VCPUS_MAX:
		return v->vcpus_max;
	case VM_MEM:
		return (double)v->mem_kib * 1024.0;
	case VM_MEM_MAX:
		return (double)v->mem_max_kib * 1024.0;
	case VM_STREAMING:
		return v->streaming;
	case VM_PAUSED:
		return v->paused;
	case VM_CPU_BUSY:
		return v->cpu_busy_pct / 100.0;
	case VM_CPUS_ONLINE:
		return v->cpus_online;
	case VM_CPU_PSI:
		return v->cpu_psi_some / 100.0;
	case VM_GUEST_MEM_TOTAL:
		return (double)v->guest_mem_total_kib * 1024.0;
	case VM_GUEST_MEM_AVAIL:
		return (double)v->guest_mem_available_kib * 1024.0;
	case VM_MEM_PSI:
		return v->mem_psi_some / 100.0;
	case VM_SATURATED:
		return v->saturated;
	case VM_SAMPLES:
		return (double)v->samples;
	case VM_REJECTED:
		return (double)v->rejected;
	case VM_VCPU_SECONDS:
		return v->vcpu_seconds;
	case VM_GIB_SECONDS:
		return v->gib_seconds;
	case VM_OPS:
	case VM_NMETRICS:
		break;
	}
	return 0;
}

static void vm_labels(struct text *t, const char *name, const struct ctl_vm *v)
{
	put(t, "%s{vm=\"", name);
	put_label(t, v->name);
	put(t, "\",uuid=\"%s\"", v->uuid);
}

static void vm_lines(struct text *fam, const struct ctl_vm *v)
{
	static const char *const outcomes[] = {"ok", "failed", "refused", "timeout"};
	const uint64_t ops[] = {v->ops_ok, v->ops_failed, v->ops_refused, v->ops_timeout};

	for (int m = 0; m < VM_NMETRICS; m++) {
		if (vm_metrics[m].guest && !v->has_sample)
			continue;
		if (m == VM_OPS) {
			for (int o = 0; o < 4; o++) {
				vm_labels(&fam[m], vm_metrics[m].name, v);
				put(&fam[m], ",outcome=\"%s\"} %llu\n", outcomes[o],
				    (unsigned long long)ops[o]);
			}
			continue;
		}
		vm_labels(&fam[m], vm_metrics[m].name, v);
		put(&fam[m], "} %.17g\n", vm_value(m, v));
	}
}

/* ---- host ---- */

static void host_lines(struct text *t, const struct ctl_host *h)
{
	static const struct {
		const char *name, *help;
	} g[] = {
	        {"vscale_host_cpus", "host CPUs"},
	        {"vscale_host_memory_bytes", "host memory shared out to VMs"},
	        {"vscale_host_vcpus_allocated", "vCPUs allocated to running VMs"},
	        {"vscale_host_memory_allocated_bytes", "memory allocated to running VMs"},
	        {"vscale_host_vcpus_free", "vCPUs that can still be granted (headroom)"},
	        {"vscale_host_memory_free_bytes", "memory that can still be granted (headroom)"},
	        {"vscale_vms", "domains followed"},
	        {"vscale_vms_streaming", "domains with a guest agent session"},
	        {"vscale_libvirt_connected", "1 when connected to libvirt"},
	};
	const double v[] = {h->cpus,
	                    (double)h->mem_total_kib * 1024.0,
	                    (double)h->vcpus_allocated,
	                    (double)h->mem_allocated_kib * 1024.0,
	                    (double)h->vcpus_free,
	                    (double)h->mem_free_kib * 1024.0,
	                    h->vms,
	                    h->vms_streaming,
	                    h->connected};

	family(t, "vscale_build_info", "gauge", "vscale-hostd version");
	put(t, "vscale_build_info{version=\"");
	put_label(t, h->version);
	put(t, "\"} 1\n");
	family(t, "vscale_uptime_seconds", "gauge", "seconds since vscale-hostd started");
	put(t, "vscale_uptime_seconds %.3f\n", (double)h->uptime_ms / 1000.0);
	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		family(t, g[i].name, "gauge", g[i].help);
		put(t, "%s %.17g\n", g[i].name, v[i]);
	}
	family(t, "vscale_rejected_frames_total", "counter", "guest frames rejected, all VMs");
	put(t, "vscale_rejected_frames_total %llu\n", (unsigned long long)h->rejected_frames);
}

static void decision_lines(struct text *t, const struct metrics_ops *ops, void *user)
{
	family(t, "vscale_decisions_total", "counter",
	       "policy decisions evaluated, by action and reason");
	for (int a = 0; a < METRICS_ACTIONS; a++)
		for (int r = 0; r < METRICS_REASONS; r++) {
			uint64_t n = ops->decisions(user, (enum action)a, (enum reason)r);

			if (n)
				put(t, "vscale_decisions_total{action=\"%s\",reason=\"%s\"} %llu\n",
				    policy_action_name((enum action)a),
				    policy_reason_name((enum reason)r), (unsigned long long)n);
		}
}

char *metrics_render(const struct metrics_ops *ops, void *user)
{
	struct text out = {0}, fam[VM_NMETRICS] = {{0}};
	struct ctl_host h;
	struct ctl_vm v;
	bool oom;

	ops->host(user, &h);
	host_lines(&out, &h);
	decision_lines(&out, ops, user);
	/* one pass over the VMs, a buffer per family: the format wants each family together */
	for (size_t i = 0; ops->vm(user, i, &v); i++)
		vm_lines(fam, &v);
	for (int m = 0; m < VM_NMETRICS; m++) {
		family(&out, vm_metrics[m].name, vm_metrics[m].type, vm_metrics[m].help);
		if (fam[m].len)
			put(&out, "%s", fam[m].s);
		oom = fam[m].oom;
		free(fam[m].s);
		if (oom)
			out.oom = true;
	}
	if (out.oom) {
		free(out.s);
		return NULL;
	}
	return out.s;
}

/* ---- HTTP ---- */

struct metrics {
	struct ev_loop *loop;
	struct MHD_Daemon *d;
	const struct metrics_ops *ops;
	void *user;
	ev_io io;
	ev_timer tick;
	uint16_t port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, char *body,
                             enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, mode);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", CONTENT_TYPE);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
	struct metrics *m = cls;
	char *body;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n",
		             MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics") != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, "vscale-hostd: see /metrics\n",
		             MHD_RESPMEM_PERSISTENT);
	body = metrics_render(m->ops, m->user);
	if (!body)
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n",
		             MHD_RESPMEM_PERSISTENT);
	return reply(conn, MHD_HTTP_OK, body, MHD_RESPMEM_MUST_FREE);
}

static void run(struct metrics *m)
{
	MHD_UNSIGNED_LONG_LONG to;

	MHD_run(m->d);
	/* MHD's own timeouts (idle connections) */
	if (MHD_get_timeout(m->d, &to) == MHD_YES) {
		ev_timer_set(&m->tick, (double)to / 1000.0 + 0.001, 0.0);
		ev_timer_start(m->loop, &m->tick);
	}
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	run(w->data);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	run(w->data);
}

int metrics_parse_listen(const char *listen, char *err, size_t errlen)
{
	if (strcmp(listen, "off") == 0)
		return 0;
	return conf_parse_listen(listen, NULL, NULL, err, errlen);
}

struct metrics *metrics_open(struct ev_loop *loop, const char *listen,
                             const struct metrics_ops *ops, void *user, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	unsigned len;
	struct metrics *m;
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_EPOLL;

	char sub[256];

	if (conf_parse_listen(listen, &ss, &len, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen, "metrics: %s", sub);
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->loop = loop;
	m->ops = ops;
	m->user = user;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, m, MHD_OPTION_SOCK_ADDR, &ss,
	                        MHD_OPTION_CONNECTION_LIMIT, 32u, MHD_OPTION_CONNECTION_TIMEOUT,
	                        10u, MHD_OPTION_END);
	if (!m->d) {
		snprintf(err, errlen, "metrics: cannot listen on %s: %s", listen,
		         errno ? strerror(errno) : "libmicrohttpd refused");
		free(m);
		return NULL;
	}
	info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD);
	ev_io_init(&m->io, io_cb, info->epoll_fd, EV_READ);
	m->io.data = m;
	ev_io_start(loop, &m->io);
	ev_timer_init(&m->tick, tick_cb, 1.0, 0.0);
	m->tick.data = m;
	info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
	m->port = info ? info->port : 0;
	return m;
}

void metrics_close(struct metrics *m)
{
	if (!m)
		return;
	ev_io_stop(m->loop, &m->io);
	ev_timer_stop(m->loop, &m->tick);
	MHD_stop_daemon(m->d);
	free(m);
}

uint16_t metrics_port(const struct metrics *m)
{
	return m->port;
}
