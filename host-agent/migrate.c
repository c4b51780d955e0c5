/* Migration requests and live migration to a peer when this host cannot grow a VM.
 *
 * The guest stream at switchover: the source stops reading the VM's channel when the move
 * starts, not when the stream ends at switchover. The virtio-serial port state migrates with the
 * guest, and QEMU on the target tells the guest only about a change of host connection between
 * the two sides. Had the source kept reading, the target's hostd (connected to the incoming QEMU
 * before the switchover) would see the old session go on with no Hello, which its session rules
 * refuse. Disconnected first, the guest sees the target's hostd connect, and its agent opens a
 * new session there (Hello, then the samples it buffered meanwhile). The VM is busy during the
 * move, so the source loses nothing it would act on; a failed move restarts the stream here. */
#include "migrate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

_Static_assert(HCONF_PEERS_MAX == VIRT_PEERS_MAX, "peers in the config and in a job");
_Static_assert(HCONF_URI_LEN == VIRT_URI_LEN, "peer URIs in the config and in a job");

#define MIB(kib) ((unsigned long long)(kib) / 1024)

/* ---- pure ---- */

static double max_d(double a, double b)
{
	return a > b ? a : b;
}

static double cpu_capacity(const struct host_conf *hc, uint32_t cpus)
{
	return cpus > hc->reserve_cpus
	               ? floor((double)(cpus - hc->reserve_cpus) * hc->cpu_overcommit)
	               : 0;
}

void migrate_room(const struct host_conf *hc, const struct virt_capacity *cap,
                  const struct migrate_need *need, struct migrate_room *ret)
{
	double vcap = cpu_capacity(hc, cap->cpus);
	int64_t unalloc = (int64_t)cap->mem_total_kib - (int64_t)cap->mem_alloc_kib;
	int64_t mem = (int64_t)cap->mem_free_kib < unalloc ? (int64_t)cap->mem_free_kib : unalloc;
	double mcap = (double)cap->mem_total_kib - (double)hc->reserve_mem_kib;

	ret->vcpus = (int64_t)vcap - (int64_t)cap->vcpus_alloc - (int64_t)need->vcpus;
	ret->mem_kib = mem - (int64_t)hc->reserve_mem_kib - (int64_t)need->mem_kib;
	ret->fits = ret->vcpus >= 0 && ret->mem_kib >= 0;
	ret->score = vcap > 0 && mcap > 0
	                     ? fmin((double)ret->vcpus / vcap, (double)ret->mem_kib / mcap)
	                     : -1;
}

int migrate_pick_peer(const struct host_conf *hc, const struct virt_capacity *caps, const int *rc,
                      size_t n, const struct migrate_need *need)
{
	struct migrate_room room;
	double best = 0;
	int pick = -1;

	for (size_t i = 0; i < n; i++) {
		if (rc[i] != 0)
			continue;
		migrate_room(hc, &caps[i], need, &room);
		if (room.fits && (pick < 0 || room.score > best)) {
			pick = (int)i;
			best = room.score;
		}
	}
	return pick;
}

void migrate_usage(const struct host_conf *hc, const struct virt_node *node,
                   const struct host_view *hv, struct migrate_usage *ret)
{
	uint64_t total = hc->mem_total_kib ? hc->mem_total_kib : node->mem_total_kib;

	ret->vcpus_cap = cpu_capacity(hc, node->cpus);
	ret->mem_cap_kib = total > hc->reserve_mem_kib ? (double)(total - hc->reserve_mem_kib) : 0;
	ret->vcpus_used = ret->vcpus_cap - (double)hv->vcpus_free;
	ret->mem_used_kib = ret->mem_cap_kib - (double)hv->mem_free_kib;
	if (ret->vcpus_cap <= 0 || ret->mem_cap_kib <= 0)
		ret->pct = 100;
	else
		ret->pct = 100 * max_d(ret->vcpus_used / ret->vcpus_cap,
		                       ret->mem_used_kib / ret->mem_cap_kib);
}

/* The larger of a VM's shares of the capacity, in % */
static double share_pct(const struct migrate_usage *u, uint32_t vcpus, uint64_t mem_kib)
{
	return 100 * max_d((double)vcpus / u->vcpus_cap, (double)mem_kib / u->mem_cap_kib);
}

int migrate_pick_rebalance(const struct migrate_usage *u, double watermark_pct,
                           const struct migrate_candidate *c, size_t n)
{
	int fit = -1, largest = -1;
	double fit_share = 0, largest_share = 0;

	if (u->vcpus_cap <= 0 || u->mem_cap_kib <= 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		double share = share_pct(u, c[i].vcpus, c[i].mem_kib);
		double after =
		        100 * max_d((u->vcpus_used - c[i].vcpus) / u->vcpus_cap,
		                    (u->mem_used_kib - (double)c[i].mem_kib) / u->mem_cap_kib);

		if (!c[i].eligible)
			continue;
		if (after < watermark_pct && (fit < 0 || share < fit_share)) {
			fit = (int)i;
			fit_share = share;
		}
		if (largest < 0 || share > largest_share) {
			largest = (int)i;
			largest_share = share;
		}
	}
	return fit >= 0 ? fit : largest;
}

static bool within(uint64_t since_ms, uint64_t span_ms, uint64_t now_ms)
{
	return since_ms && now_ms < since_ms + span_ms;
}

enum migrate_verdict migrate_verdict(const struct host_conf *hc, const struct migrate_vm_state *vs,
                                     const struct migrate_need *need, size_t in_flight,
                                     uint64_t now_ms, char *ret_note, size_t note_len)
{
	uint64_t cool = hc->migration_cooldown_ms;

	ret_note[0] = '\0';
	if (hc->migration == MIGRATION_OFF || vs->busy)
		return MIGRATE_NOTHING;
	if (within(vs->requested_ms, cool, now_ms) && vs->requested.vcpus == need->vcpus &&
	    vs->requested.mem_kib == need->mem_kib)
		return MIGRATE_NOTHING;
	if (hc->migration == MIGRATION_REQUEST) {
		snprintf(ret_note, note_len, "migration = request");
		return MIGRATE_REQUEST;
	}
	if (within(vs->last_ms, cool, now_ms)) {
		snprintf(ret_note, note_len, "migration cooldown, %llu s left",
		         (unsigned long long)(vs->last_ms + cool - now_ms + 999) / 1000);
		return MIGRATE_REQUEST;
	}
	if (in_flight >= hc->migration_max) {
		snprintf(ret_note, note_len, "%zu migration%s in flight", in_flight,
		         in_flight == 1 ? "" : "s");
		return MIGRATE_REQUEST;
	}
	return MIGRATE_PROBE;
}

bool migrate_need_of(const struct policy *p, const struct vm_view *view, uint64_t now_ms,
                     struct migrate_need *ret)
{
	const struct host_view unlimited = {.vcpus_free = INT32_MAX, .mem_free_kib = INT64_MAX / 4};
	struct decision d;

	policy_decide(p, view, &unlimited, now_ms, &d);
	if (d.action != ACTION_VCPU_UP && d.action != ACTION_MEM_UP)
		return false;
	ret->vcpus = d.vcpus_to;
	ret->mem_kib = d.mem_to_kib;
	return true;
}

/* ---- the state machine ---- */

enum mig_state { MIG_IDLE, MIG_PROBING, MIG_MOVING };

struct migrate_entry {
	char uuid[VIRT_UUID_LEN];
	char name[VIRT_NAME_LEN];
	enum mig_state state;
	struct migrate_vm_state vs;
	struct migrate_need need; /* of the attempt in flight */
	char why[256];
	struct decision d; /* what the decision log records the attempt under */
	uint64_t started_ms, deadline_ms;
	bool aborted;
	char peer[VIRT_URI_LEN];
	struct virt_job *job;
};

static struct migrate_entry *find(const struct migrate *m, const char *uuid)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->e[i]->uuid, uuid) == 0)
			return m->e[i];
	return NULL;
}

static struct migrate_entry *find_or_add(struct migrate *m, const char *name, const char *uuid)
{
	struct migrate_entry *e = find(m, uuid), **grown;

	if (e)
		return e;
	grown = util_grow_array(m->e, &m->cap, m->n, sizeof(*grown), 8);
	if (!grown)
		return NULL;
	m->e = grown;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	snprintf(e->uuid, sizeof(e->uuid), "%s", uuid);
	snprintf(e->name, sizeof(e->name), "%s", name);
	m->e[m->n++] = e;
	return e;
}

static void job_notify(void *user)
{
	struct migrate *m = user;

	ev_async_send(m->loop, &m->done); /* on the worker thread: only wake the loop */
}

static void on_done(struct ev_loop *loop, ev_async *w, int revents)
{
	struct migrate *m = container_of(w, struct migrate, done);
	uint64_t now = util_now_ms();

	for (size_t i = 0; i < m->n; i++) {
		struct virt_job *job = m->e[i]->job;

		if (job && virt_job_done(job))
			migrate_job_done(m, job, now); /* never removes entries: i stays valid */
	}
}

void migrate_init(struct migrate *m, struct ev_loop *loop, const struct host_conf *host,
                  const struct migrate_ops *ops, void *user, struct declog *dlog)
{
	memset(m, 0, sizeof(*m));
	m->loop = loop;
	m->host = host;
	m->ops = ops;
	m->user = user;
	m->dlog = dlog;
	if (loop) {
		ev_async_init(&m->done, on_done);
		ev_async_start(loop, &m->done);
	}
}

void migrate_fini(struct migrate *m)
{
	if (m->loop)
		ev_async_stop(m->loop, &m->done);
	for (size_t i = 0; i < m->n; i++) {
		virt_job_free(m->e[i]->job);
		free(m->e[i]);
	}
	free(m->e);
	m->e = NULL;
	m->n = m->cap = m->in_flight = 0;
}

static void request(struct migrate *m, struct migrate_entry *e, const char *peer, const char *note,
                    uint64_t now_ms)
{
	struct migrate_request rq = {.vm = e->name,
	                             .uuid = e->uuid,
	                             .vcpus = e->need.vcpus,
	                             .mem_kib = e->need.mem_kib,
	                             .why = e->why,
	                             .peer = peer,
	                             .note = note};

	e->vs.requested_ms = now_ms;
	e->vs.requested = e->need;
	m->ops->request(m->user, &rq);
}

static struct virt_job *new_job(struct migrate *m, enum virt_job_kind kind)
{
	struct virt_job *job = calloc(1, sizeof(*job));

	if (!job)
		return NULL;
	job->kind = kind;
	job->notify = m->loop ? job_notify : NULL;
	job->user = m;
	return job;
}

/* Back to IDLE; cooldown: the attempt was a move (done or failed), which starts the cooldown. */
static void settle(struct migrate *m, struct migrate_entry *e, bool cooldown, uint64_t now_ms)
{
	virt_job_free(e->job); /* one still running is its worker's to free */
	e->job = NULL;
	e->state = MIG_IDLE;
	m->in_flight--;
	if (cooldown)
		e->vs.last_ms = now_ms;
}

static void start_probe(struct migrate *m, struct migrate_entry *e, uint64_t now_ms)
{
	const struct host_conf *hc = m->host;
	struct virt_job *job = new_job(m, VIRT_JOB_CAPACITY);
	int r;

	if (!job) {
		request(m, e, "", "out of memory", now_ms);
		return;
	}
	for (uint32_t i = 0; i < hc->npeers; i++)
		snprintf(job->uris[i], sizeof(job->uris[i]), "%s", hc->peers[i]);
	job->nuris = hc->npeers;
	r = m->ops->start(m->user, job);
	if (r < 0) {
		virt_job_free(job);
		request(m, e, "", "cannot start a worker thread", now_ms);
		log_warn("vm '%s': migration: no worker thread: %s", e->name, strerror(-r));
		return;
	}
	e->job = job;
	e->state = MIG_PROBING;
	e->started_ms = now_ms;
	e->deadline_ms = now_ms + hc->op_timeout_ms;
	m->in_flight++;
	log_info("vm '%s': %s; asking %u peer%s for room for %u vCPUs, %llu MiB", e->name, e->why,
	         hc->npeers, hc->npeers == 1 ? "" : "s", e->need.vcpus, MIB(e->need.mem_kib));
}

/* Acts on a need: request, or probe the peers (with a request once a peer is chosen). */
static void consider(struct migrate *m, const char *name, const char *uuid,
                     const struct migrate_need *need, const struct decision *d, uint64_t now_ms)
{
	struct migrate_entry *e = find_or_add(m, name, uuid);
	enum migrate_verdict v;
	char note[128];

	if (!e)
		return;
	e->vs.busy = e->state != MIG_IDLE;
	v = migrate_verdict(m->host, &e->vs, need, m->in_flight, now_ms, note, sizeof(note));
	if (v == MIGRATE_PROBE && m->dry_run) {
		v = MIGRATE_REQUEST;
		snprintf(note, sizeof(note), "dry run");
	}
	if (v == MIGRATE_NOTHING)
		return;
	e->need = *need;
	e->d = *d;
	snprintf(e->why, sizeof(e->why), "%s", d->text);
	if (v == MIGRATE_REQUEST)
		request(m, e, "", note, now_ms);
	else
		start_probe(m, e, now_ms);
}

void migrate_on_host_full(struct migrate *m, const struct vm *vm, const struct vm_view *view,
                          const struct decision *d, uint64_t now_ms)
{
	struct migrate_need need;
	struct decision rec = *d;

	if (m->host->migration == MIGRATION_OFF ||
	    !migrate_need_of(&vm->policy, view, now_ms, &need))
		return;
	/* the peer must hold every vCPU plugged, granted or not */
	if (need.vcpus < vm->dom.vcpus_cur)
		need.vcpus = vm->dom.vcpus_cur;
	snprintf(rec.text, sizeof(rec.text), "host-full: %.180s", d->text);
	consider(m, vm->name, vm->uuid, &need, &rec, now_ms);
}

static void start_move(struct migrate *m, struct migrate_entry *e, const char *peer,
                       uint64_t now_ms)
{
	const struct host_conf *hc = m->host;
	struct virt_job *job = new_job(m, VIRT_JOB_MIGRATE);
	char detail[VIRT_URI_LEN + 160];
	int r = -ENOMEM;

	snprintf(e->peer, sizeof(e->peer), "%s", peer);
	if (job) {
		snprintf(job->src_uri, sizeof(job->src_uri), "%s", hc->uri);
		snprintf(job->uuid, sizeof(job->uuid), "%s", e->uuid);
		snprintf(job->uris[0], sizeof(job->uris[0]), "%s", e->peer);
		job->nuris = 1;
		r = m->ops->start(m->user, job);
	}
	if (r < 0) {
		virt_job_free(job);
		log_warn("vm '%s': migration to %s not started: %s", e->name, e->peer,
		         strerror(-r));
		settle(m, e, true, now_ms);
		return;
	}
	virt_job_free(e->job); /* the capacity job, done */
	e->job = job;
	e->state = MIG_MOVING;
	e->started_ms = now_ms;
	e->deadline_ms = now_ms + hc->migration_timeout_ms;
	e->aborted = false;
	snprintf(detail, sizeof(detail), "to %s: needs %u vCPUs, %llu MiB", e->peer, e->need.vcpus,
	         MIB(e->need.mem_kib));
	log_info("vm '%s': migrating %s", e->name, detail);
	declog_write(m->dlog, e->name, e->uuid, &e->d, "migrating", detail);
	m->ops->changed(m->user, e->uuid); /* stops its guest stream: see the top of this file */
}

static void probe_done(struct migrate *m, struct migrate_entry *e, uint64_t now_ms)
{
	const struct virt_job *job = e->job;
	struct migrate_room room;
	char note[160];
	int pick;

	for (size_t i = 0; i < job->nuris; i++) {
		if (job->rc[i] < 0) {
			log_warn("vm '%s': migration: peer %s: %s", e->name, job->uris[i],
			         job->err[i]);
			continue;
		}
		migrate_room(m->host, &job->cap[i], &e->need, &room);
		log_debug("vm '%s': peer %s: %u CPUs, %u domains with %llu vCPUs, %llu MiB free: "
		          "room after %lld vCPUs, %lld MiB%s",
		          e->name, job->uris[i], job->cap[i].cpus, job->cap[i].domains,
		          (unsigned long long)job->cap[i].vcpus_alloc,
		          MIB(job->cap[i].mem_free_kib), (long long)room.vcpus,
		          (long long)room.mem_kib / 1024, room.fits ? "" : " (does not fit)");
	}
	pick = migrate_pick_peer(m->host, job->cap, job->rc, job->nuris, &e->need);
	if (pick < 0) {
		snprintf(note, sizeof(note), "no peer has room for %u vCPUs, %llu MiB",
		         e->need.vcpus, MIB(e->need.mem_kib));
		request(m, e, "", note, now_ms);
		settle(m, e, false, now_ms);
		return;
	}
	request(m, e, job->uris[pick], "", now_ms);
	start_move(m, e, job->uris[pick], now_ms);
}

static void move_done(struct migrate *m, struct migrate_entry *e, uint64_t now_ms)
{
	const struct virt_job *job = e->job;
	const struct virt_migration *mig = &job->mig;
	char detail[VIRT_URI_LEN + 300], peer[VIRT_URI_LEN], uuid[VIRT_UUID_LEN];

	if (job->rc[0] < 0) {
		snprintf(detail, sizeof(detail), "to %s: %s", e->peer, job->err[0]);
		log_warn("vm '%s': migration %s; migration-cooldown %llu s", e->name, detail,
		         (unsigned long long)m->host->migration_cooldown_ms / 1000);
		declog_write(m->dlog, e->name, e->uuid, &e->d, "migrate-failed", detail);
		settle(m, e, true, now_ms);
		m->ops->changed(m->user, e->uuid); /* its guest stream again */
		return;
	}
	snprintf(detail, sizeof(detail), "to %s in %llu ms, downtime %lld ms, %llu MiB sent",
	         e->peer, (unsigned long long)mig->total_ms, (long long)mig->downtime_ms,
	         MIB(mig->data_kib));
	log_info("vm '%s': migrated %s", e->name, detail);
	declog_write(m->dlog, e->name, e->uuid, &e->d, "migrated", detail);
	snprintf(peer, sizeof(peer), "%s", e->peer);
	snprintf(uuid, sizeof(uuid), "%s", e->uuid);
	settle(m, e, true, now_ms);
	m->ops->moved(m->user, uuid, peer);
}

void migrate_job_done(struct migrate *m, struct virt_job *job, uint64_t now_ms)
{
	struct migrate_entry *e = NULL;

	for (size_t i = 0; i < m->n && !e; i++)
		if (m->e[i]->job == job)
			e = m->e[i];
	if (!e)
		return;
	if (e->state == MIG_PROBING)
		probe_done(m, e, now_ms);
	else if (e->state == MIG_MOVING)
		move_done(m, e, now_ms);
}

static void check_deadline(struct migrate *m, struct migrate_entry *e, uint64_t now_ms)
{
	char note[96];

	if (e->state == MIG_IDLE || now_ms < e->deadline_ms)
		return;
	if (e->state == MIG_PROBING) {
		snprintf(note, sizeof(note), "the peers did not answer within %llu s",
		         (unsigned long long)m->host->op_timeout_ms / 1000);
		log_warn("vm '%s': migration: %s", e->name, note);
		request(m, e, "", note, now_ms);
		settle(m, e, false, now_ms); /* the worker frees its job when it ends */
	} else if (!e->aborted) {
		e->aborted = true;
		log_warn("vm '%s': migration to %s still running after %llu s: aborting", e->name,
		         e->peer, (unsigned long long)m->host->migration_timeout_ms / 1000);
		if (m->ops->abort(m->user, e->uuid) < 0)
			log_warn("vm '%s': abort: %s", e->name, virt_last_error());
	}
}

/* Moves one VM off a host that stayed above the watermark for high-watermark-for. */
static void rebalance(struct migrate *m, struct vm *const *vms, size_t nvms,
                      const struct virt_node *node, const struct host_view *hv, uint64_t now_ms)
{
	const struct host_conf *hc = m->host;
	struct migrate_candidate *c;
	struct migrate_usage u;
	struct migrate_need need;
	struct decision d = {.action = ACTION_HOLD, .reason = REASON_HOST_FULL};
	int pick;

	migrate_usage(hc, node, hv, &u);
	if (u.pct < hc->high_watermark_pct) {
		m->above_since_ms = 0;
		return;
	}
	if (!m->above_since_ms)
		m->above_since_ms = now_ms;
	if (now_ms - m->above_since_ms < hc->high_watermark_for_ms || nvms == 0)
		return;
	m->above_since_ms = now_ms; /* at most one move per window */
	c = calloc(nvms, sizeof(*c));
	if (!c)
		return;
	for (size_t i = 0; i < nvms; i++) {
		const struct vm *vm = vms[i];
		const struct migrate_entry *e = find(m, vm->uuid);

		c[i].vcpus = vm->dom.vcpus_cur;
		c[i].mem_kib = vm_mem_kib(vm);
		c[i].eligible = vm->link.started && vm->enabled && !vm->paused &&
		                vm->op.kind == OP_NONE &&
		                (!e || (e->state == MIG_IDLE &&
		                        !within(e->vs.last_ms, hc->migration_cooldown_ms, now_ms)));
	}
	pick = migrate_pick_rebalance(&u, hc->high_watermark_pct, c, nvms);
	free(c);
	if (pick < 0)
		return;
	need.vcpus = vms[pick]->dom.vcpus_cur;
	need.mem_kib = vm_mem_kib(vms[pick]);
	d.vcpus_from = d.vcpus_to = vms[pick]->vcpus;
	d.mem_from_kib = d.mem_to_kib = need.mem_kib;
	snprintf(d.text, sizeof(d.text), "rebalance: host at %.0f%% >= %g%% for %llu s", u.pct,
	         hc->high_watermark_pct, (unsigned long long)hc->high_watermark_for_ms / 1000);
	consider(m, vms[pick]->name, vms[pick]->uuid, &need, &d, now_ms);
}

void migrate_tick(struct migrate *m, struct vm *const *vms, size_t nvms,
                  const struct virt_node *node, const struct host_view *hv, uint64_t now_ms)
{
	const struct host_conf *hc = m->host;

	for (size_t i = 0; i < m->n; i++)
		check_deadline(m, m->e[i], now_ms);
	if (hc->migration != MIGRATION_OFF && hc->migration_rebalance && node->cpus)
		rebalance(m, vms, nvms, node, hv, now_ms);
	/* forget VMs with nothing in flight and nothing to remember */
	for (size_t i = m->n; i-- > 0;) {
		struct migrate_entry *e = m->e[i];

		if (e->state == MIG_IDLE &&
		    !within(e->vs.last_ms, hc->migration_cooldown_ms, now_ms) &&
		    !within(e->vs.requested_ms, hc->migration_cooldown_ms, now_ms)) {
			free(e);
			m->e[i] = m->e[--m->n];
		}
	}
}

void migrate_arrived(struct migrate *m, const char *name, const char *uuid, uint64_t now_ms)
{
	struct migrate_entry *e = find_or_add(m, name, uuid);

	if (!e) {
		log_warn("vm '%s': out of memory; it arrived by migration without a cooldown",
		         name);
		return;
	}
	if (e->state != MIG_IDLE)
		return; /* ours, on its way out and back (a failed move): settle() decides */
	e->vs.last_ms = now_ms;
	log_info(
	        "vm '%s': arrived by live migration; it stays at least %llu s (migration-cooldown)",
	        name, (unsigned long long)m->host->migration_cooldown_ms / 1000);
}

bool migrate_busy(const struct migrate *m, const char *uuid)
{
	const struct migrate_entry *e = find(m, uuid);

	return e && e->state != MIG_IDLE;
}

bool migrate_moving(const struct migrate *m, const char *uuid)
{
	const struct migrate_entry *e = find(m, uuid);

	return e && e->state == MIG_MOVING;
}
