/* The hypervisor seam: the ONLY interface to libvirt. A handful of verbs returning 0 / -errno,
 * plus lifecycle events queued from libvirt's event thread for the main loop to drain.
 *
 * Threading: libvirt's default event loop runs on a thread of its own (see virt.c for why);
 * every verb here is called from the main thread. The notify callback given to virt_new() is
 * the only thing that runs on libvirt's thread: it must be async-signal-safe-ish (ev_async_send).
 */
#ifndef VSCALE_VIRT_H
#define VSCALE_VIRT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIRT_UUID_LEN  37
#define VIRT_NAME_LEN  256
#define VIRT_PORT_NAME "org.vscale.agent.0"

enum virt_mem_mech {
	VIRT_MEM_NONE,       /* fixed size */
	VIRT_MEM_VIRTIO_MEM, /* virtio-mem requested size */
	VIRT_MEM_DIMM,       /* pc-dimm attach/detach */
	VIRT_MEM_BALLOON,    /* balloon within <memory> */
};

struct virt_mem {
	enum virt_mem_mech mech;
	uint64_t base_kib;    /* boot memory (<memory> minus devices) */
	uint64_t cur_kib;     /* allocated now: base + plugged devices, or the balloon target */
	uint64_t max_kib;     /* the most the mechanism can reach */
	uint64_t granule_kib; /* sizes are multiples of this */
	/* virtio-mem */
	uint64_t vmem_size_kib, vmem_requested_kib, vmem_current_kib;
	char vmem_alias[64];
	/* DIMM */
	unsigned dimms;      /* pc-dimm devices plugged */
	unsigned slots_free; /* memory slots left */
};

struct virt_dom {
	char name[VIRT_NAME_LEN];
	char uuid[VIRT_UUID_LEN];
	int id; /* -1 when inactive */
	bool active;
	uint32_t vcpus_cur, vcpus_max;
	struct virt_mem mem;
	bool has_channel;       /* has a virtio channel named VIRT_PORT_NAME */
	char channel_path[108]; /* its unix socket (source mode='bind'), "" if not unix */
	bool channel_connected; /* the guest has the port open (state='connected') */
};

enum virt_event_kind {
	VIRT_EV_STARTED, /* started, resumed from migration in, restored */
	VIRT_EV_STOPPED, /* shut down, destroyed, crashed, migrated away, saved */
	VIRT_EV_REBOOTED,
	VIRT_EV_CHANGED,   /* device, vCPU or memory change: re-read the domain ("" uuid: all) */
	VIRT_EV_CONN_LOST, /* the connection closed: reconnect */
};

struct virt_event {
	enum virt_event_kind kind;
	char uuid[VIRT_UUID_LEN]; /* "" for CONN_LOST */
};

struct virt_node {
	uint32_t cpus;
	uint64_t mem_total_kib; /* /proc/meminfo MemTotal via virNodeGetMemoryStats */
	uint64_t mem_free_kib;  /* MemFree + Buffers + Cached there (reclaimable) */
};

typedef void (*virt_notify_fn)(void *user);

struct virt;

/* Starts libvirt's event thread (once per process) and returns a handle, or NULL with errno.
 * notify runs on that thread whenever an event is queued. Free with virt_free(). */
struct virt *virt_new(virt_notify_fn notify, void *user);
void virt_free(struct virt *v);

/* Opens uri with keepalive and lifecycle/close callbacks. 0 or -errno (message in err). */
int virt_connect(struct virt *v, const char *uri, char *err, size_t errlen);
void virt_disconnect(struct virt *v);
bool virt_connected(const struct virt *v);

/* Pops up to max queued events (main thread). Returns how many. */
size_t virt_drain(struct virt *v, struct virt_event *ev, size_t max);

/* All active domains, parsed from their live XML. *ret is a new array (free()) of *n. */
int virt_list(struct virt *v, struct virt_dom **ret, size_t *n);
int virt_lookup(struct virt *v, const char *uuid, struct virt_dom *ret);
int virt_node(struct virt *v, struct virt_node *ret);

/* Sets the live vCPU count (and the persistent one when persistent). -ETIMEDOUT when libvirt
 * gave up waiting for the guest to release a vCPU (TCG): pending, re-read the domain later. */
int virt_set_vcpus(struct virt *v, const char *uuid, uint32_t n, bool persistent);
/* Moves the domain's memory towards target_kib with its mechanism (rounded to the granule and
 * clipped to [base, max]). 0 or -errno. */
int virt_set_memory(struct virt *v, const char *uuid, uint64_t target_kib, bool persistent);

/* Parses one domain XML (live) into *ret; exposed for tests. 0 or -EINVAL. */
int virt_parse_xml(const char *xml, struct virt_dom *ret);

/* The last libvirt error message (main thread), for logs. */
const char *virt_last_error(void);

#endif
