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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void *event_thread(void *arg)
{
	(void)arg;
	for (;;)
		if (virEventRunDefaultImpl() < 0)
			virResetLastError();
	return NULL;
}

static int event_loop_start(void)
{
	static pthread_mutex_t once_lock = PTHREAD_MUTEX_INITIALIZER;
	static int started; /* 1 ok, -errno failed */
	pthread_t t;
	int r;

	pthread_mutex_lock(&once_lock);
	if (started == 0) {
		virSetErrorFunc(NULL, quiet_errors);
		if (virEventRegisterDefaultImpl() < 0) {
			started = last_err();
		} else {
			r = pthread_create(&t, NULL, event_thread, NULL);
			started = r ? -r : 1;
			if (!r)
				pthread_detach(t);
		}
	}
	r = started < 0 ? started : 0;
	pthread_mutex_unlock(&once_lock);
	return r;
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
		push_event(v, VIRT_EV_STARTED, dom);
		break;
	case VIR_DOMAIN_EVENT_RESUMED:
		push_event(v,
		           detail == VIR_DOMAIN_EVENT_RESUMED_MIGRATED ? VIRT_EV_STARTED
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
	if (!v)
		return NULL;
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

int virt_node(struct virt *v, struct virt_node *ret)
{
	virNodeInfo info;
	virNodeMemoryStatsPtr params = NULL;
	int nparams = 0;
	struct virt_node n = {0};

	if (!v->conn)
		return -ENOTCONN;
	if (virNodeGetInfo(v->conn, &info) < 0)
		return last_err();
	n.cpus = info.cpus;
	/* /proc/meminfo (virNodeGetMemoryStats) rather than per-NUMA sysfs (virNodeGetInfo), which
	 * disagree here (PLATFORM.md); config memory-total overrides both */
	if (virNodeGetMemoryStats(v->conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, NULL, &nparams, 0) ==
	            0 &&
	    nparams > 0 && (params = calloc((size_t)nparams, sizeof(*params))) &&
	    virNodeGetMemoryStats(v->conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, params, &nparams, 0) ==
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
		free_b = virNodeGetFreeMemory(v->conn);
		if (free_b == 0)
			virResetLastError();
		n.mem_free_kib = free_b / 1024;
	}
	free(params);
	*ret = n;
	return 0;
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
