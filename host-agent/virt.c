/* libvirt behind one file: connection with keepalive, lifecycle events, domain XML parsing and
 * the scaling verbs (vCPUs; memory by virtio-mem, DIMM or balloon).
 *
 * Event loop choice: libvirt's default event implementation runs on a thread of its own rather
 * than being bridged onto libev. The verbs below are blocking RPCs made from the main thread; with
 * a bridge, libvirt's keepalive and stream I/O would only progress while the main loop spins, and
 * a bridge must never hold a lock across libvirt callbacks (PLATFORM.md: a naive bridge
 * deadlocked). A dedicated thread keeps keepalive alive during a slow call, and costs one mutex
 * and one ev_async wake-up per event: events are rare (lifecycle, device changes). */
#include "virt.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#define QUEUE_CAP 4096

struct virt {
	virConnectPtr conn;
	int cb_ids[8];
	int ncb;
	bool close_cb;
	virt_notify_fn notify;
	void *user;
	pthread_mutex_t lock; /* guards the queue: written on libvirt's thread, read on main */
	struct virt_event queue[QUEUE_CAP];
	size_t qhead, qlen;
	bool overflow;
};

static _Thread_local char last_error[512];

const char *virt_last_error(void)
{
	return last_error;
}

static void quiet_errors(void *data, virErrorPtr e)
{
	(void)data;
	(void)e; /* libvirt prints every error to stderr by default; we log what matters */
}

/* Maps the last libvirt error to -errno and keeps its message. */
static int last_err(void)
{
	virErrorPtr e = virGetLastError();
	int r = -EIO;

	if (!e) {
		snprintf(last_error, sizeof(last_error), "unknown libvirt error");
		return r;
	}
	snprintf(last_error, sizeof(last_error), "%s", e->message ? e->message : "libvirt error");
	switch (e->code) {
	case VIR_ERR_NO_DOMAIN:
		r = -ENOENT;
		break;
	case VIR_ERR_NO_SUPPORT:
		r = -EOPNOTSUPP;
		break;
	case VIR_ERR_OPERATION_INVALID:
	case VIR_ERR_INVALID_ARG:
		r = -EINVAL;
		break;
	case VIR_ERR_OPERATION_TIMEOUT:
		r = -ETIMEDOUT;
		break;
	case VIR_ERR_SYSTEM_ERROR:
		r = e->int1 > 0 ? -e->int1 : -EIO;
		break;
	default:
		break;
	}
	virResetLastError();
	return r;
}

/* ---- event thread and queue ---- */

/* The event implementation is registered once per process; the thread runs while a virt handle
 * exists and is joined by the last virt_free(), so nothing of ours outlives the daemon's exit
 * (valgrind counts a detached thread's TLS still running at exit as possibly lost). */
static pthread_mutex_t loop_lock = PTHREAD_MUTEX_INITIALIZER;
static int loop_registered; /* 1 ok, -errno failed, 0 not yet */
static unsigned loop_users; /* virt handles alive */
static pthread_t loop_thread;
static atomic_bool loop_quit;

static void *event_thread(void *arg)
{
	(void)arg;
	while (!atomic_load(&loop_quit))
		if (virEventRunDefaultImpl() < 0)
			virResetLastError();
	return NULL;
}

static void loop_wake(int timer, void *opaque)
{
	(void)timer;
	(void)opaque; /* firing is the point: the thread sees loop_quit after this iteration */
}

static int event_loop_start(void)
{
	int r = 0;

	pthread_mutex_lock(&loop_lock);
	if (loop_registered == 0) {
		virSetErrorFunc(NULL, quiet_errors);
		loop_registered = virEventRegisterDefaultImpl() < 0 ? last_err() : 1;
	}
	if (loop_registered < 0) {
		r = loop_registered;
	} else if (loop_users == 0) {
		atomic_store(&loop_quit, false);
		r = -pthread_create(&loop_thread, NULL, event_thread, NULL);
	}
	if (r == 0)
		loop_users++;
	pthread_mutex_unlock(&loop_lock);
	return r;
}

static void event_loop_stop(void)
{
	int timer;

	pthread_mutex_lock(&loop_lock);
	if (--loop_users == 0) {
		atomic_store(&loop_quit, true);
		/* a timeout due now wakes the loop out of poll() */
		timer = virEventAddTimeout(0, loop_wake, NULL, NULL);
		pthread_join(loop_thread, NULL);
		if (timer >= 0)
			virEventRemoveTimeout(timer);
	}
	pthread_mutex_unlock(&loop_lock);
}

static void push_event(struct virt *v, enum virt_event_kind kind, virDomainPtr dom)
{
	struct virt_event *e;

	pthread_mutex_lock(&v->lock);
	if (v->qlen == QUEUE_CAP) {
		v->overflow = true;
	} else {
		e = &v->queue[(v->qhead + v->qlen) % QUEUE_CAP];
		e->kind = kind;
		e->uuid[0] = '\0';
		if (dom)
			virDomainGetUUIDString(dom, e->uuid);
		v->qlen++;
	}
	pthread_mutex_unlock(&v->lock);
	v->notify(v->user);
}

size_t virt_drain(struct virt *v, struct virt_event *ev, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&v->lock);
	if (v->overflow && max > 0) {
		/* lost events: ask for a full re-read instead */
		ev[n].kind = VIRT_EV_CHANGED;
		ev[n].uuid[0] = '\0';
		n++;
		v->overflow = false;
	}
	while (n < max && v->qlen > 0) {
		ev[n++] = v->queue[v->qhead];
		v->qhead = (v->qhead + 1) % QUEUE_CAP;
		v->qlen--;
	}
	pthread_mutex_unlock(&v->lock);
	return n;
}

static int on_lifecycle(virConnectPtr c, virDomainPtr dom, int event, int detail, void *opaque)
{
	struct virt *v = opaque;

	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
		push_event(v,
		           detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED ? VIRT_EV_ARRIVED
		                                                       : VIRT_EV_STARTED,
		           dom);
		break;
	case VIR_DOMAIN_EVENT_RESUMED:
		push_event(v,
		           detail == VIR_DOMAIN_EVENT_RESUMED_MIGRATED ? VIRT_EV_ARRIVED
		                                                       : VIRT_EV_CHANGED,
		           dom);
		break;
	case VIR_DOMAIN_EVENT_STOPPED:
		push_event(v, VIRT_EV_STOPPED, dom);
		break;
	case VIR_DOMAIN_EVENT_SUSPENDED:
	case VIR_DOMAIN_EVENT_CRASHED:
	case VIR_DOMAIN_EVENT_PMSUSPENDED:
		push_event(v, VIRT_EV_CHANGED, dom);
		break;
	default:
		break; /* defined, undefined, shutdown-requested: nothing to do until it stops */
	}
	return 0;
}

static void on_reboot(virConnectPtr c, virDomainPtr dom, void *opaque)
{
	push_event(opaque, VIRT_EV_REBOOTED, dom);
}

static void on_device(virConnectPtr c, virDomainPtr dom, const char *alias, void *opaque)
{
	push_event(opaque, VIRT_EV_CHANGED, dom);
}

static void on_mem_size(virConnectPtr c, virDomainPtr dom, const char *alias,
                        unsigned long long size, void *opaque)
{
	push_event(opaque, VIRT_EV_CHANGED, dom);
}

static void on_close(virConnectPtr c, int reason, void *opaque)
{
	push_event(opaque, VIRT_EV_CONN_LOST, NULL);
}

/* ---- connection ---- */

struct virt *virt_new(virt_notify_fn notify, void *user)
{
	struct virt *v;
	int r = event_loop_start();

	if (r < 0) {
		errno = -r;
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		event_loop_stop();
		errno = ENOMEM;
		return NULL;
	}
	v->notify = notify;
	v->user = user;
	pthread_mutex_init(&v->lock, NULL);
	return v;
}

void virt_free(struct virt *v)
{
	if (!v)
		return;
	virt_disconnect(v);
	event_loop_stop();
	pthread_mutex_destroy(&v->lock);
	free(v);
}

int virt_connect(struct virt *v, const char *uri, char *err, size_t errlen)
{
	static const struct {
		int id;
		virConnectDomainEventGenericCallback cb;
	} events[] = {
	        {VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle)},
	        {VIR_DOMAIN_EVENT_ID_REBOOT, VIR_DOMAIN_EVENT_CALLBACK(on_reboot)},
	        {VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, VIR_DOMAIN_EVENT_CALLBACK(on_device)},
	        {VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, VIR_DOMAIN_EVENT_CALLBACK(on_device)},
	        {VIR_DOMAIN_EVENT_ID_MEMORY_DEVICE_SIZE_CHANGE,
	         VIR_DOMAIN_EVENT_CALLBACK(on_mem_size)},
	};
	int r;

	virt_disconnect(v);
	v->conn = virConnectOpen(uri);
	if (!v->conn) {
		r = last_err();
		snprintf(err, errlen, "cannot connect to %s: %s", uri, last_error);
		return r;
	}
	/* 2 s interval, 3 misses: a frozen libvirtd is noticed in about 8 s. Drivers without
	 * keepalive (test:///) refuse; that is fine. */
	if (virConnectSetKeepAlive(v->conn, 2, 3) < 0)
		virResetLastError();
	if (virConnectRegisterCloseCallback(v->conn, on_close, v, NULL) == 0)
		v->close_cb = true;
	else
		virResetLastError();
	v->ncb = 0;
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		int id = virConnectDomainEventRegisterAny(v->conn, NULL, events[i].id, events[i].cb,
		                                          v, NULL);
		if (id >= 0)
			v->cb_ids[v->ncb++] = id;
		else
			virResetLastError(); /* e.g. an older driver without that event */
	}
	return 0;
}

void virt_disconnect(struct virt *v)
{
	if (!v->conn)
		return;
	for (int i = 0; i < v->ncb; i++)
		virConnectDomainEventDeregisterAny(v->conn, v->cb_ids[i]);
	v->ncb = 0;
	if (v->close_cb)
		virConnectUnregisterCloseCallback(v->conn, on_close);
	v->close_cb = false;
	virConnectClose(v->conn);
	virResetLastError();
	v->conn = NULL;
}

bool virt_connected(const struct virt *v)
{
	return v->conn && virConnectIsAlive(v->conn) == 1;
}

/* ---- domain XML ---- */

static uint64_t unit_kib(const char *unit)
{
	if (!unit || !strcasecmp(unit, "KiB") || !strcasecmp(unit, "k"))
		return 1024;
	if (!strcasecmp(unit, "b") || !strcasecmp(unit, "bytes"))
		return 1;
	if (!strcasecmp(unit, "KB"))
		return 1000;
	if (!strcasecmp(unit, "MiB") || !strcasecmp(unit, "M"))
		return 1024ull * 1024;
	if (!strcasecmp(unit, "MB"))
		return 1000ull * 1000;
	if (!strcasecmp(unit, "GiB") || !strcasecmp(unit, "G"))
		return 1024ull * 1024 * 1024;
	if (!strcasecmp(unit, "GB"))
		return 1000ull * 1000 * 1000;
	if (!strcasecmp(unit, "TiB") || !strcasecmp(unit, "T"))
		return 1024ull * 1024 * 1024 * 1024;
	return 0;
}

static xmlNodePtr first(xmlXPathContextPtr ctx, xmlNodePtr at, const char *expr)
{
	xmlXPathObjectPtr o;
	xmlNodePtr n = NULL;

	ctx->node = at;
	o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	if (o && o->nodesetval && o->nodesetval->nodeNr > 0)
		n = o->nodesetval->nodeTab[0];
	xmlXPathFreeObject(o);
	return n;
}

static int count(xmlXPathContextPtr ctx, xmlNodePtr at, const char *expr)
{
	xmlXPathObjectPtr o;
	int n = 0;

	ctx->node = at;
	o = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
	if (o && o->nodesetval)
		n = o->nodesetval->nodeNr;
	xmlXPathFreeObject(o);
	return n;
}

/* Copies the text or attribute value of the first match; "" when none. */
static void text(xmlXPathContextPtr ctx, xmlNodePtr at, const char *expr, char *buf, size_t cap)
{
	xmlNodePtr n = first(ctx, at, expr);
	xmlChar *s = n ? xmlNodeGetContent(n) : NULL;

	snprintf(buf, cap, "%s", s ? (const char *)s : "");
	xmlFree(s);
}

static uint64_t number(xmlXPathContextPtr ctx, xmlNodePtr at, const char *expr)
{
	char buf[64];

	text(ctx, at, expr, buf, sizeof(buf));
	return strtoull(buf, NULL, 10);
}

/* A size element (value + unit attribute) in KiB; 0 when absent. */
static uint64_t size_kib(xmlXPathContextPtr ctx, xmlNodePtr at, const char *expr)
{
	xmlNodePtr n = first(ctx, at, expr);
	xmlChar *val, *unit;
	uint64_t v = 0, mult;

	if (!n)
		return 0;
	val = xmlNodeGetContent(n);
	unit = xmlGetProp(n, (const xmlChar *)"unit");
	mult = unit_kib((const char *)unit);
	if (val && mult)
		v = (uint64_t)(strtod((const char *)val, NULL) * (double)mult / 1024.0);
	xmlFree(val);
	xmlFree(unit);
	return v;
}

static void parse_memory(xmlXPathContextPtr ctx, xmlNodePtr root, struct virt_mem *m)
{
	xmlNodePtr vmem = first(ctx, root, "devices/memory[@model='virtio-mem']");
	uint64_t memory = size_kib(ctx, root, "memory");
	uint64_t current = size_kib(ctx, root, "currentMemory");
	uint64_t max_mem = size_kib(ctx, root, "maxMemory");
	uint64_t slots = number(ctx, root, "maxMemory/@slots");
	uint64_t numa = 0, dimm_kib = 0;
	int dimms = count(ctx, root, "devices/memory[@model='dimm']");
	int ncells = count(ctx, root, "cpu/numa/cell");

	memset(m, 0, sizeof(*m));
	for (int i = 1; i <= ncells; i++) {
		char expr[64];
		xmlNodePtr cell;
		xmlChar *mem, *unit;

		snprintf(expr, sizeof(expr), "cpu/numa/cell[%d]", i);
		cell = first(ctx, root, expr);
		mem = xmlGetProp(cell, (const xmlChar *)"memory");
		unit = xmlGetProp(cell, (const xmlChar *)"unit");
		if (mem)
			numa += strtoull((const char *)mem, NULL, 10) *
			        unit_kib((const char *)unit) / 1024;
		xmlFree(mem);
		xmlFree(unit);
	}
	if (dimms > 0)
		dimm_kib = size_kib(ctx, root, "devices/memory[@model='dimm'][1]/target/size");
	/* boot memory: the NUMA cells when described, else <memory> less the devices in it */
	m->base_kib = numa ? numa : memory;
	if (vmem) {
		xmlNodePtr alias = first(ctx, vmem, "alias/@name");
		xmlChar *a = alias ? xmlNodeGetContent(alias) : NULL;

		m->mech = VIRT_MEM_VIRTIO_MEM;
		m->vmem_size_kib = size_kib(ctx, vmem, "target/size");
		m->vmem_requested_kib = size_kib(ctx, vmem, "target/requested");
		m->vmem_current_kib = size_kib(ctx, vmem, "target/current");
		m->granule_kib = size_kib(ctx, vmem, "target/block");
		snprintf(m->vmem_alias, sizeof(m->vmem_alias), "%s", a ? (const char *)a : "");
		xmlFree(a);
		m->cur_kib = m->base_kib + m->vmem_requested_kib + (uint64_t)dimms * dimm_kib;
		m->max_kib = m->base_kib + m->vmem_size_kib + (uint64_t)dimms * dimm_kib;
	} else if (slots > 0 && max_mem > 0) {
		m->mech = VIRT_MEM_DIMM;
		m->dimms = (unsigned)dimms;
		m->granule_kib = dimm_kib ? dimm_kib : 256 * 1024;
		m->cur_kib = m->base_kib + (uint64_t)dimms * dimm_kib;
		m->max_kib = max_mem;
		m->slots_free = slots > (uint64_t)dimms ? (unsigned)(slots - (uint64_t)dimms) : 0;
		/* the most DIMMs can reach is also bounded by the free slots */
		if (m->cur_kib + m->slots_free * m->granule_kib < m->max_kib)
			m->max_kib = m->cur_kib + m->slots_free * m->granule_kib;
	} else if (count(ctx, root, "devices/memballoon[@model!='none']") > 0) {
		m->mech = VIRT_MEM_BALLOON;
		/* the balloon only takes memory away from <memory>: scale between half of it and
		 * all of it unless the policy sets other bounds */
		m->base_kib = memory / 2;
		m->cur_kib = current ? current : memory;
		m->max_kib = memory;
		m->granule_kib = 1024;
	} else {
		m->mech = VIRT_MEM_NONE;
		m->cur_kib = current ? current : memory;
		m->max_kib = m->cur_kib;
		m->granule_kib = 1024;
	}
	if (m->granule_kib == 0)
		m->granule_kib = 1024;
}

static void parse_channel(xmlXPathContextPtr ctx, xmlNodePtr root, struct virt_dom *d)
{
	xmlNodePtr ch = first(ctx, root,
	                      "devices/channel[target/@type='virtio' and "
	                      "target/@name='" VIRT_PORT_NAME "']");
	char buf[32];

	d->has_channel = ch != NULL;
	d->channel_path[0] = '\0';
	d->channel_connected = false;
	if (!ch)
		return;
	text(ctx, ch, "@type", buf, sizeof(buf));
	if (strcmp(buf, "unix") == 0)
		text(ctx, ch, "source/@path", d->channel_path, sizeof(d->channel_path));
	text(ctx, ch, "target/@state", buf, sizeof(buf));
	d->channel_connected = strcmp(buf, "connected") == 0;
}

int virt_parse_xml(const char *xml, struct virt_dom *ret)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
	                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlXPathContextPtr ctx;
	xmlNodePtr root;
	struct virt_dom d;
	char buf[32];
	int r = -EINVAL;

	if (!doc)
		return -EINVAL;
	root = xmlDocGetRootElement(doc);
	ctx = xmlXPathNewContext(doc);
	if (!root || !ctx || xmlStrcmp(root->name, (const xmlChar *)"domain") != 0)
		goto out;
	memset(&d, 0, sizeof(d));
	text(ctx, root, "name", d.name, sizeof(d.name));
	text(ctx, root, "uuid", d.uuid, sizeof(d.uuid));
	text(ctx, root, "@id", buf, sizeof(buf));
	d.id = buf[0] ? atoi(buf) : -1;
	d.active = d.id >= 0;
	d.vcpus_max = (uint32_t)number(ctx, root, "vcpu");
	text(ctx, root, "vcpu/@current", buf, sizeof(buf));
	d.vcpus_cur = buf[0] ? (uint32_t)atoi(buf) : d.vcpus_max;
	if (!d.name[0] || !d.uuid[0] || d.vcpus_max == 0)
		goto out;
	parse_memory(ctx, root, &d.mem);
	parse_channel(ctx, root, &d);
	*ret = d;
	r = 0;
out:
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return r;
}

static int dom_info(virDomainPtr dom, struct virt_dom *ret)
{
	char *xml = virDomainGetXMLDesc(dom, 0);
	int r;

	if (!xml)
		return last_err();
	r = virt_parse_xml(xml, ret);
	free(xml);
	if (r < 0)
		snprintf(last_error, sizeof(last_error), "domain XML does not parse");
	return r;
}

int virt_list(struct virt *v, struct virt_dom **ret, size_t *n)
{
	virDomainPtr *doms = NULL;
	struct virt_dom *out;
	int nd, m = 0;

	if (!v->conn)
		return -ENOTCONN;
	nd = virConnectListAllDomains(v->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (nd < 0)
		return last_err();
	out = calloc(nd ? (size_t)nd : 1, sizeof(*out));
	for (int i = 0; i < nd; i++) {
		if (out && dom_info(doms[i], &out[m]) == 0)
			m++;
		virDomainFree(doms[i]);
	}
	free(doms);
	if (!out)
		return -ENOMEM;
	*ret = out;
	*n = (size_t)m;
	return 0;
}

static virDomainPtr lookup(struct virt *v, const char *uuid)
{
	virDomainPtr d;

	if (!v->conn) {
		snprintf(last_error, sizeof(last_error), "not connected");
		return NULL;
	}
	d = virDomainLookupByUUIDString(v->conn, uuid);
	if (!d)
		last_err();
	return d;
}

int virt_lookup(struct virt *v, const char *uuid, struct virt_dom *ret)
{
	virDomainPtr d = lookup(v, uuid);
	int r;

	if (!d)
		return -ENOENT;
	r = dom_info(d, ret);
	if (r == 0 && virDomainIsActive(d) != 1)
		ret->active = false;
	virDomainFree(d);
	return r;
}

int virt_persistent_xml(struct virt *v, const char *vm, char **ret_xml)
{
	virDomainPtr d;
	char *xml;

	if (!v->conn)
		return -ENOTCONN;
	d = virDomainLookupByName(v->conn, vm);
	if (!d)
		d = virDomainLookupByUUIDString(v->conn, vm);
	if (!d) {
		snprintf(last_error, sizeof(last_error), "no domain named '%s'", vm);
		return -ENOENT;
	}
	xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE);
	virDomainFree(d);
	if (!xml)
		return last_err();
	*ret_xml = xml;
	return 0;
}

int virt_define_xml(struct virt *v, const char *xml)
{
	virDomainPtr d;

	if (!v->conn)
		return -ENOTCONN;
	d = virDomainDefineXML(v->conn, xml);
	if (!d)
		return last_err();
	virDomainFree(d);
	return 0;
}

/* Node CPUs and memory over any connection: the main one, or a peer's (migration). */
static int node_of(virConnectPtr conn, struct virt_node *ret)
{
	virNodeInfo info;
	virNodeMemoryStatsPtr params = NULL;
	int nparams = 0;
	struct virt_node n = {0};

	if (virNodeGetInfo(conn, &info) < 0)
		return last_err();
	n.cpus = info.cpus;
	/* /proc/meminfo (virNodeGetMemoryStats) rather than per-NUMA sysfs (virNodeGetInfo), which
	 * disagree here (PLATFORM.md); config memory-total overrides both */
	if (virNodeGetMemoryStats(conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, NULL, &nparams, 0) == 0 &&
	    nparams > 0 && (params = calloc((size_t)nparams, sizeof(*params))) &&
	    virNodeGetMemoryStats(conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, params, &nparams, 0) ==
	            0) {
		for (int i = 0; i < nparams; i++) {
			if (!strcmp(params[i].field, VIR_NODE_MEMORY_STATS_TOTAL))
				n.mem_total_kib = params[i].value;
			else if (!strcmp(params[i].field, VIR_NODE_MEMORY_STATS_FREE) ||
			         !strcmp(params[i].field, VIR_NODE_MEMORY_STATS_BUFFERS) ||
			         !strcmp(params[i].field, VIR_NODE_MEMORY_STATS_CACHED))
				n.mem_free_kib += params[i].value;
		}
	} else {
		unsigned long long free_b;

		virResetLastError();
		n.mem_total_kib = info.memory;
		free_b = virNodeGetFreeMemory(conn);
		if (free_b == 0)
			virResetLastError();
		n.mem_free_kib = free_b / 1024;
	}
	free(params);
	*ret = n;
	return 0;
}

int virt_node(struct virt *v, struct virt_node *ret)
{
	return v->conn ? node_of(v->conn, ret) : -ENOTCONN;
}

/* ---- actions ---- */

int virt_set_vcpus(struct virt *v, const char *uuid, uint32_t n, bool persistent)
{
	virDomainPtr d = lookup(v, uuid);
	unsigned flags = VIR_DOMAIN_AFFECT_LIVE | (persistent ? VIR_DOMAIN_AFFECT_CONFIG : 0);
	int r = 0;

	if (!d)
		return -ENOENT;
	if (virDomainSetVcpusFlags(d, n, flags) < 0)
		r = last_err();
	virDomainFree(d);
	return r;
}

/* The domain's live XML as a document with an XPath context. 0 or -errno; free both. */
static int live_doc(virDomainPtr d, xmlDocPtr *ret_doc, xmlXPathContextPtr *ret_ctx)
{
	char *xml = virDomainGetXMLDesc(d, 0);
	xmlDocPtr doc;

	if (!xml)
		return last_err();
	doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL, XML_PARSE_NONET);
	free(xml);
	if (!doc)
		return -EINVAL;
	*ret_ctx = xmlXPathNewContext(doc);
	if (!*ret_ctx) {
		xmlFreeDoc(doc);
		return -ENOMEM;
	}
	*ret_doc = doc;
	return 0;
}

/* Rewrites <requested> in the live virtio-mem element (which carries alias and address, both
 * needed: PLATFORM.md) and hands it to virDomainUpdateDeviceFlags. */
static int set_virtio_mem(virDomainPtr d, uint64_t requested_kib, bool persistent)
{
	xmlDocPtr doc;
	xmlXPathContextPtr ctx;
	xmlNodePtr dev, req;
	xmlBufferPtr buf;
	char val[32];
	int r = live_doc(d, &doc, &ctx);

	if (r < 0)
		return r;
	r = -EINVAL;
	dev = first(ctx, xmlDocGetRootElement(doc), "devices/memory[@model='virtio-mem']");
	req = dev ? first(ctx, dev, "target/requested") : NULL;
	buf = xmlBufferCreate();
	if (!req || !buf)
		goto out;
	snprintf(val, sizeof(val), "%llu", (unsigned long long)requested_kib);
	xmlNodeSetContent(req, (const xmlChar *)val);
	xmlSetProp(req, (const xmlChar *)"unit", (const xmlChar *)"KiB");
	if (xmlNodeDump(buf, doc, dev, 0, 0) < 0)
		goto out;
	r = 0;
	if (virDomainUpdateDeviceFlags(d, (const char *)xmlBufferContent(buf),
	                               VIR_DOMAIN_AFFECT_LIVE) < 0)
		r = last_err();
	(void)persistent; /* the persistent definition keeps its boot-time request */
out:
	xmlBufferFree(buf);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return r;
}

static int attach_dimm(virDomainPtr d, uint64_t size_kib, bool persistent)
{
	char xml[256];
	unsigned flags = VIR_DOMAIN_AFFECT_LIVE | (persistent ? VIR_DOMAIN_AFFECT_CONFIG : 0);

	snprintf(xml, sizeof(xml),
	         "<memory model='dimm'><target><size unit='KiB'>%llu</size><node>0</node>"
	         "</target></memory>",
	         (unsigned long long)size_kib);
	return virDomainAttachDeviceFlags(d, xml, flags) < 0 ? last_err() : 0;
}

/* Detaches the last DIMM by alias; the guest must have it offline (movable): else error 9. */
static int detach_last_dimm(virDomainPtr d, bool persistent)
{
	xmlDocPtr doc;
	xmlXPathContextPtr ctx;
	char alias[64];
	unsigned flags = VIR_DOMAIN_AFFECT_LIVE | (persistent ? VIR_DOMAIN_AFFECT_CONFIG : 0);
	int r = live_doc(d, &doc, &ctx);

	if (r < 0)
		return r;
	r = -ENOENT;
	text(ctx, xmlDocGetRootElement(doc), "devices/memory[@model='dimm'][last()]/alias/@name",
	     alias, sizeof(alias));
	if (alias[0])
		r = virDomainDetachDeviceAlias(d, alias, flags) < 0 ? last_err() : 0;
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return r;
}

static uint64_t round_to(uint64_t v, uint64_t granule)
{
	return granule ? (v + granule / 2) / granule * granule : v;
}

int virt_set_memory(struct virt *v, const char *uuid, uint64_t target_kib, bool persistent)
{
	virDomainPtr d = lookup(v, uuid);
	struct virt_dom info;
	const struct virt_mem *m = &info.mem;
	int r;

	if (!d)
		return -ENOENT;
	r = dom_info(d, &info);
	if (r < 0)
		goto out;
	if (target_kib > m->max_kib)
		target_kib = m->max_kib;
	if (target_kib < m->base_kib && m->mech != VIRT_MEM_BALLOON)
		target_kib = m->base_kib;
	switch (m->mech) {
	case VIRT_MEM_VIRTIO_MEM:
		r = set_virtio_mem(d, round_to(target_kib - m->base_kib, m->granule_kib),
		                   persistent);
		break;
	case VIRT_MEM_DIMM: {
		uint64_t want = round_to(target_kib - m->base_kib, m->granule_kib) / m->granule_kib;

		for (unsigned k = m->dimms; r == 0 && k < want; k++)
			r = attach_dimm(d, m->granule_kib, persistent);
		for (unsigned k = m->dimms; r == 0 && k > want; k--)
			r = detach_last_dimm(d, persistent);
		break;
	}
	case VIRT_MEM_BALLOON:
		r = virDomainSetMemoryFlags(d, target_kib,
		                            VIR_DOMAIN_AFFECT_LIVE |
		                                    (persistent ? VIR_DOMAIN_AFFECT_CONFIG : 0)) < 0
		            ? last_err()
		            : 0;
		break;
	case VIRT_MEM_NONE:
		snprintf(last_error, sizeof(last_error), "the domain has no way to resize memory");
		r = -EOPNOTSUPP;
		break;
	}
out:
	virDomainFree(d);
	return r;
}

/* ---- migration ----
 * Blocking verbs for a worker thread, and the worker. Each verb opens connections of its own:
 * the main connection may be closed and re-opened by the main thread at any time, and libvirt
 * errors land in this thread's last_error, copied into the caller's err before returning. */

enum { JOB_IDLE, JOB_RUNNING, JOB_DONE, JOB_ORPHANED }; /* virt_job.state */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Opens uri with keepalive so that a peer that stops answering fails the call instead of
 * hanging it. NULL with the message in err. */
static virConnectPtr open_peer(const char *uri, char *err, size_t errlen)
{
	virConnectPtr c = virConnectOpen(uri);

	if (!c) {
		last_err();
		snprintf(err, errlen, "cannot connect to %s: %s", uri, last_error);
		return NULL;
	}
	if (virConnectSetKeepAlive(c, 2, 3) < 0)
		virResetLastError();
	return c;
}

/* What the active domains of c hold: vCPUs plugged and memory as hostd counts it locally. */
static int domains_of(virConnectPtr c, struct virt_capacity *cap)
{
	virDomainPtr *doms = NULL;
	struct virt_dom d;
	int n = virConnectListAllDomains(c, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);

	if (n < 0)
		return last_err();
	for (int i = 0; i < n; i++) {
		if (dom_info(doms[i], &d) == 0) {
			cap->domains++;
			cap->vcpus_alloc += d.vcpus_cur;
			cap->mem_alloc_kib += d.mem.cur_kib;
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	return 0;
}

int virt_capacity(const char *uri, struct virt_capacity *ret, char *err, size_t errlen)
{
	struct virt_capacity cap = {0};
	struct virt_node node;
	virConnectPtr c = open_peer(uri, err, errlen);
	int r;

	if (!c)
		return -EHOSTUNREACH;
	r = node_of(c, &node);
	if (r == 0)
		r = domains_of(c, &cap);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", uri, last_error);
	} else {
		cap.cpus = node.cpus;
		cap.mem_total_kib = node.mem_total_kib;
		cap.mem_free_kib = node.mem_free_kib;
		*ret = cap;
	}
	virConnectClose(c);
	virResetLastError();
	return r;
}

/* The target's record of the incoming migration: downtime and bytes. Best effort: a migration
 * that worked stays a success when this cannot be read. */
static void target_stats(const char *dst_uri, const char *uuid, struct virt_migration *m)
{
	char err[256];
	virConnectPtr c = open_peer(dst_uri, err, sizeof(err));
	virDomainPtr d = c ? virDomainLookupByUUIDString(c, uuid) : NULL;
	virTypedParameterPtr params = NULL;
	int nparams = 0, type;
	unsigned long long v;

	if (d && virDomainGetJobStats(d, &type, &params, &nparams,
	                              VIR_DOMAIN_JOB_STATS_COMPLETED) == 0) {
		if (virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DOWNTIME, &v) == 1)
			m->downtime_ms = (int64_t)v;
		if (virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DATA_PROCESSED, &v) ==
		    1)
			m->data_kib = v / 1024;
		virTypedParamsFree(params, nparams);
	}
	if (d)
		virDomainFree(d);
	if (c)
		virConnectClose(c);
	virResetLastError();
}

int virt_migrate(const char *src_uri, const char *uuid, const char *dst_uri,
                 struct virt_migration *ret, char *err, size_t errlen)
{
	const unsigned flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |
	                       VIR_MIGRATE_UNDEFINE_SOURCE | VIR_MIGRATE_AUTO_CONVERGE |
	                       VIR_MIGRATE_ABORT_ON_ERROR;
	struct virt_migration m = {.downtime_ms = -1};
	virConnectPtr c = open_peer(src_uri, err, errlen);
	virDomainPtr d;
	uint64_t t0;
	int r = 0;

	if (!c)
		return -ENOTCONN;
	d = virDomainLookupByUUIDString(c, uuid);
	if (!d) {
		r = last_err();
		snprintf(err, errlen, "%s", last_error);
		goto out_close;
	}
	t0 = mono_ms();
	/* peer to peer: the source libvirtd connects to dst_uri itself; the data goes to the
	 * address the target's qemu.conf names (migration_host), else the target's hostname */
	if (virDomainMigrateToURI3(d, dst_uri, NULL, 0, flags) < 0) {
		r = last_err();
		snprintf(err, errlen, "%s", last_error);
	}
	m.total_ms = mono_ms() - t0;
	virDomainFree(d);
	if (r == 0) {
		target_stats(dst_uri, uuid, &m);
		*ret = m;
	}
out_close:
	virConnectClose(c);
	virResetLastError();
	return r;
}

int virt_migrate_abort(struct virt *v, const char *uuid)
{
	virDomainPtr d = lookup(v, uuid);
	int r = 0;

	if (!d)
		return -ENOENT;
	if (virDomainAbortJob(d) < 0)
		r = last_err();
	virDomainFree(d);
	return r;
}

static void *job_main(void *arg)
{
	struct virt_job *job = arg;
	virt_notify_fn notify = job->notify;
	void *user = job->user;
	int running = JOB_RUNNING;

	if (job->kind == VIRT_JOB_CAPACITY) {
		for (size_t i = 0; i < job->nuris; i++)
			job->rc[i] = virt_capacity(job->uris[i], &job->cap[i], job->err[i],
			                           sizeof(job->err[i]));
	} else {
		job->rc[0] = virt_migrate(job->src_uri, job->uuid, job->uris[0], &job->mig,
		                          job->err[0], sizeof(job->err[0]));
	}
	/* the last touch of job unless it was orphaned, in which case it is ours to free */
	if (atomic_compare_exchange_strong(&job->state, &running, JOB_DONE)) {
		if (notify)
			notify(user);
	} else {
		free(job);
	}
	return NULL;
}

int virt_job_start(struct virt_job *job)
{
	int r;

	if (job->nuris == 0 || job->nuris > VIRT_PEERS_MAX)
		return -EINVAL;
	atomic_store(&job->state, JOB_RUNNING);
	r = pthread_create(&job->thread, NULL, job_main, job);
	if (r)
		atomic_store(&job->state, JOB_IDLE);
	return -r;
}

bool virt_job_done(struct virt_job *job)
{
	return atomic_load(&job->state) == JOB_DONE;
}

void virt_job_free(struct virt_job *job)
{
	pthread_t t;
	int running = JOB_RUNNING;

	if (!job)
		return;
	if (atomic_load(&job->state) == JOB_IDLE) {
		free(job); /* never started */
		return;
	}
	t = job->thread;
	if (atomic_compare_exchange_strong(&job->state, &running, JOB_ORPHANED)) {
		pthread_detach(t); /* the worker frees job when its call returns */
		return;
	}
	pthread_join(t, NULL);
	free(job);
}
