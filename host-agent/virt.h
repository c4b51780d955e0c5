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
#include <pthread.h>
#include <stdatomic.h>
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
	VIRT_EV_STARTED, /* started, restored */
	VIRT_EV_ARRIVED, /* started or resumed by an incoming live migration */
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

/* Starts libvirt's event thread (registered once per process; running while a handle exists)
 * and returns a handle, or NULL with errno. notify runs on that thread whenever an event is
 * queued. Free with virt_free(); the last one joins the thread. */
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
/* The persistent (inactive) definition of a domain by name or UUID, running or not: a new string
 * in *ret_xml (free()). 0, -ENOENT, -errno. */
int virt_persistent_xml(struct virt *v, const char *vm, char **ret_xml);
/* Defines (or redefines) a persistent domain from xml; a running domain keeps running with its
 * live definition until it next boots. 0 or -errno. */
int virt_define_xml(struct virt *v, const char *xml);

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

/* ---- migration ----
 * Peer capacity and live migration. Both block for seconds (a migration of a 512 MiB guest takes
 * 2-3 s here), so hostd never calls them on its main loop: it fills a struct virt_job and
 * virt_job_start() runs the job on a thread of its own. That thread opens its own connections
 * (the main one may be re-opened under it), and as its last act calls job->notify(job->user):
 * hostd's notify is an ev_async_send(), so the main loop wakes and reads the results after
 * virt_job_done() says the job ended. The verbs can also be called directly from any thread. */

#define VIRT_PEERS_MAX 8
#define VIRT_URI_LEN   256

struct virt_capacity {
	uint32_t cpus;          /* node CPUs */
	uint64_t mem_total_kib; /* as virt_node(): /proc/meminfo MemTotal */
	uint64_t mem_free_kib;  /* as virt_node(): MemFree + Buffers + Cached */
	uint32_t domains;       /* active domains */
	uint64_t vcpus_alloc;   /* their vCPUs plugged */
	uint64_t mem_alloc_kib; /* their memory, counted as for local domains (struct virt_mem) */
};

/* Connects to uri, reads its node figures and its active domains, disconnects. Blocking, any
 * thread. 0, or -errno with "uri: message" in err. */
int virt_capacity(const char *uri, struct virt_capacity *ret, char *err, size_t errlen);

struct virt_migration {
	uint64_t total_ms;   /* the migration call, start to end */
	int64_t downtime_ms; /* guest paused at switchover, from the target's job stats; -1 unknown
	                      */
	uint64_t data_kib;   /* data transferred, from the same stats; 0 unknown */
};

/* Live-migrates domain uuid from src_uri to dst_uri, peer to peer: LIVE | PEER2PEER |
 * PERSIST_DEST | UNDEFINE_SOURCE | AUTO_CONVERGE (a busy guest is slowed until the copy
 * converges) | ABORT_ON_ERROR. On success the domain runs (and is defined) on the target only;
 * *ret gets the figures. Blocking, any thread. 0 or -errno with libvirt's message in err. */
int virt_migrate(const char *src_uri, const char *uuid, const char *dst_uri,
                 struct virt_migration *ret, char *err, size_t errlen);

/* Aborts the job running on domain uuid (a migration, which then fails and leaves the domain
 * running here). Main thread, main connection; quick. 0 or -errno. */
int virt_migrate_abort(struct virt *v, const char *uuid);

enum virt_job_kind {
	VIRT_JOB_CAPACITY, /* virt_capacity() of every uris[i] */
	VIRT_JOB_MIGRATE,  /* virt_migrate(src_uri, uuid, uris[0]) */
};

/* One job for a worker thread; allocate it zeroed (calloc) and free it with virt_job_free(). The
 * fields under "results" are the worker's until virt_job_done() returns true. */
struct virt_job {
	enum virt_job_kind kind;
	char src_uri[VIRT_URI_LEN]; /* MIGRATE: the local libvirt */
	char uuid[VIRT_UUID_LEN];   /* MIGRATE: the domain */
	char uris[VIRT_PEERS_MAX][VIRT_URI_LEN];
	size_t nuris;
	virt_notify_fn notify; /* runs on the worker thread when the job ends; may be NULL */
	void *user;
	/* results: per uris[i], 0 or -errno and the message */
	int rc[VIRT_PEERS_MAX];
	char err[VIRT_PEERS_MAX][256];
	struct virt_capacity cap[VIRT_PEERS_MAX]; /* CAPACITY, where rc[i] == 0 */
	struct virt_migration mig;                /* MIGRATE, when rc[0] == 0 */
	/* the worker's */
	pthread_t thread;
	atomic_int state;
};

/* Runs job on a new thread. 0, or -errno when no thread could be made (job not started). */
int virt_job_start(struct virt_job *job);
/* True once the job has ended and its results can be read (main thread). */
bool virt_job_done(struct virt_job *job);
/* Frees job. One still running is handed to its worker, which frees it when its call returns
 * and then does not call notify. NULL is a no-op. */
void virt_job_free(struct virt_job *job);

#endif
