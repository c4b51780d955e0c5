/* When the host is full, the VM moves. A VM whose scale-up does not fit here (the policy holds
 * with host-full), or any VM of a host that stays above high-watermark (migration-rebalance),
 * becomes a migration request: VM, the size it needs after the scale-up, why. Requests go to
 * ops->request (hostd logs them and publishes them on the event socket for an external
 * balancer). With migration = auto hostd also acts: it asks every peer's libvirt for its capacity,
 * picks the peer with the most room for the VM at its new size, and live-migrates it there; the
 * hostd on the target picks the VM up and grows it when its own policy says so.
 *
 * Pure part (no I/O, no clock, tests are tables): migrate_room(), migrate_pick_peer(),
 * migrate_usage(), migrate_pick_rebalance(), migrate_verdict(), migrate_need_of().
 *
 * State machine (main thread): per VM, IDLE -> PROBING (capacity job on a worker) -> MOVING
 * (migration job on a worker) -> IDLE. A VM that is PROBING or MOVING is busy: hostd's policy
 * holds it. MOVING stops its guest stream (the guest then starts a new session with the target's
 * hostd, deterministically: see migrate.c). Success: ops->moved, the VM leaves this host's
 * table. Failure or timeout: logged, and migration-cooldown applies. Workers report back through
 * an ev_async embedded here (virt_job notify -> ev_async_send -> the loop calls
 * migrate_job_done()). At most migration-max VMs are PROBING or MOVING at once.
 *
 * The struct migrate is caller storage (migrate_init/migrate_fini); it owns its entries and jobs.
 */
#ifndef VSCALE_MIGRATE_H
#define VSCALE_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "declog.h"
#include "hconf.h"
#include "policy.h"
#include "virt.h"
#include "vm.h"

/* ---- pure ---- */

/* What a VM needs: its size after the scale-up (or its size now, for a rebalance). */
struct migrate_need {
	uint32_t vcpus;
	uint64_t mem_kib;
};

/* Room a peer has left once it took the VM, by this host's reserve and overcommit (peers are
 * expected to be configured alike): vCPUs (host CPUs - reserve) x overcommit - allocated - need;
 * memory min(free now, total - allocated) - reserve - need. score: the smaller of the two as a
 * share of the peer's capacity (0..1 when it fits). */
struct migrate_room {
	int64_t vcpus;
	int64_t mem_kib;
	double score;
	bool fits; /* both >= 0 */
};
void migrate_room(const struct host_conf *hc, const struct virt_capacity *cap,
                  const struct migrate_need *need, struct migrate_room *ret);

/* The peer (index in caps) with the highest score among those that answered (rc[i] == 0) and
 * fit; the first listed on a tie. -1 when none. */
int migrate_pick_peer(const struct host_conf *hc, const struct virt_capacity *caps, const int *rc,
                      size_t n, const struct migrate_need *need);

/* This host's grantable capacity and what is granted, for the watermark. */
struct migrate_usage {
	double vcpus_cap, vcpus_used;
	double mem_cap_kib, mem_used_kib;
	double pct; /* the higher of vCPUs and memory used, % of capacity (100 when no capacity) */
};
/* From the config, the node and the policy's headroom (which counts grants in flight):
 * capacity = (CPUs - reserve) x overcommit, (memory-total or the node's) - reserve; used =
 * capacity - headroom. */
void migrate_usage(const struct host_conf *hc, const struct virt_node *node,
                   const struct host_view *hv, struct migrate_usage *ret);

struct migrate_candidate {
	uint32_t vcpus;
	uint64_t mem_kib;
	bool eligible; /* enabled, nothing in flight, not migrating, past its cooldown */
};
/* The VM to move off a host above watermark_pct: the smallest (by its larger share of the
 * capacity) whose leaving brings the host under the watermark, else the largest. -1 when no
 * candidate is eligible. */
int migrate_pick_rebalance(const struct migrate_usage *u, double watermark_pct,
                           const struct migrate_candidate *c, size_t n);

/* What the state machine knows of one VM, for migrate_verdict(). */
struct migrate_vm_state {
	bool busy;             /* probing or moving */
	uint64_t last_ms;      /* host ms when its last migration (or attempt) ended; 0 = never */
	uint64_t requested_ms; /* host ms of its last request; 0 = never */
	struct migrate_need requested;
};

enum migrate_verdict {
	MIGRATE_NOTHING, /* migration off, already on the move, or this need was requested lately */
	MIGRATE_REQUEST, /* publish a request, do not move (mode request, cooldown, N in flight) */
	MIGRATE_PROBE,   /* ask the peers and move (the request is published with the choice) */
};

/* The rules, in order: off -> nothing; busy -> nothing; the same need requested within
 * migration-cooldown -> nothing; mode request -> request; within migration-cooldown of its last
 * migration -> request; migration-max in flight -> request; else probe. *ret_note says why a
 * request does not move the VM ("" for probe and nothing). */
enum migrate_verdict migrate_verdict(const struct host_conf *hc, const struct migrate_vm_state *vs,
                                     const struct migrate_need *need, size_t in_flight,
                                     uint64_t now_ms, char *ret_note, size_t note_len);

/* The VM's size after the scale-up it wants: the policy's decision with unlimited host headroom.
 * False when even then it would not grow (nothing to ask for). */
bool migrate_need_of(const struct policy *p, const struct vm_view *view, uint64_t now_ms,
                     struct migrate_need *ret);

/* ---- the state machine ---- */

struct migrate_request {
	const char *vm, *uuid;
	uint32_t vcpus;   /* needed: its size after the scale-up */
	uint64_t mem_kib; /* needed */
	const char *why;  /* "host-full: mem avail 12% <= 20% for 2 s; ..." or "rebalance: ..." */
	const char *peer; /* auto: the peer it moves to; "" = none */
	const char *note; /* why it does not move now; "" when it moves */
};

struct migrate_ops {
	/* A migration request. */
	void (*request)(void *user, const struct migrate_request *rq);
	/* VM uuid started or stopped moving (migrate_moving()): re-apply its configuration. */
	void (*changed)(void *user, const char *uuid);
	/* VM uuid runs on peer now: it leaves this host's table. */
	void (*moved)(void *user, const char *uuid, const char *peer);
	/* Runs a job: virt_job_start(). Tests finish jobs inline and call migrate_job_done(). */
	int (*start)(void *user, struct virt_job *job);
	/* Aborts the migration of VM uuid (timeout): virt_migrate_abort(). */
	int (*abort)(void *user, const char *uuid);
};

struct migrate_entry;

struct migrate {
	struct ev_loop *loop;         /* NULL in tests: no ev_async */
	ev_async done;                /* a worker ended a job */
	const struct host_conf *host; /* the running config; the caller updates it on reload */
	const struct migrate_ops *ops;
	void *user;
	struct declog *dlog; /* migrations are recorded there; may be NULL */
	bool dry_run;        /* requests only: nothing moves */
	struct migrate_entry **e;
	size_t n, cap;
	size_t in_flight;        /* entries probing or moving */
	uint64_t above_since_ms; /* host above high-watermark since; 0 = not above */
};

void migrate_init(struct migrate *m, struct ev_loop *loop, const struct host_conf *host,
                  const struct migrate_ops *ops, void *user, struct declog *dlog);
/* Frees every entry; jobs still running are left to their workers (their results dropped). */
void migrate_fini(struct migrate *m);

/* The policy held vm with host-full (d): request, and with migration = auto move it. */
void migrate_on_host_full(struct migrate *m, const struct vm *vm, const struct vm_view *view,
                          const struct decision *d, uint64_t now_ms);
/* Timeouts, and the watermark (migration-rebalance) over the VM table. hv: the headroom now. */
void migrate_tick(struct migrate *m, struct vm *const *vms, size_t nvms,
                  const struct virt_node *node, const struct host_view *hv, uint64_t now_ms);
/* A job of this module has ended (the ev_async callback calls it for each; tests directly). */
void migrate_job_done(struct migrate *m, struct virt_job *job, uint64_t now_ms);

/* VM (name, uuid) arrived here by live migration: its migration cooldown starts now, so a full
 * host does not send it straight back (or on) before migration-cooldown has passed. */
void migrate_arrived(struct migrate *m, const char *name, const char *uuid, uint64_t now_ms);
/* Probing or moving: hold its scaling. */
bool migrate_busy(const struct migrate *m, const char *uuid);
/* Moving: its guest stream is stopped. */
bool migrate_moving(const struct migrate *m, const char *uuid);

#endif
