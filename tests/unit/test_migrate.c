/* Migration as tables: the room a peer has after taking a VM and which peer is picked, the
 * host's use against the watermark and which VM a rebalance moves, when a need becomes nothing,
 * a request or a move, the need itself (the policy with unlimited headroom); then the state
 * machine through fake ops that finish jobs inline: probe -> move -> moved, failure and
 * cooldown, migration-max, timeouts, no room, request mode, dry run, rebalance. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "migrate.h"

#define MIB    1024ull
#define GIB    (1024ull * 1024)
#define NOW_MS 10000000ull

static void conf(struct host_conf *hc)
{
	memset(hc, 0, sizeof(*hc));
	snprintf(hc->uri, sizeof(hc->uri), "qemu:///system");
	hc->reserve_cpus = 1;
	hc->reserve_mem_kib = 1 * GIB;
	hc->cpu_overcommit = 2;
	hc->op_timeout_ms = 30000;
	hc->migration = MIGRATION_AUTO;
	snprintf(hc->peers[0], sizeof(hc->peers[0]), "qemu+tcp://p1/system");
	snprintf(hc->peers[1], sizeof(hc->peers[1]), "qemu+tcp://p2/system");
	hc->npeers = 2;
	hc->migration_max = 1;
	hc->migration_cooldown_ms = 600000;
	hc->migration_timeout_ms = 300000;
	hc->high_watermark_pct = 90;
	hc->high_watermark_for_ms = 10000;
}

/* ---- pure ---- */

struct cap_spec {
	uint32_t cpus;
	uint64_t vcpus_alloc;
	uint64_t total_gib, free_gib, alloc_gib;
};

static struct virt_capacity cap_of(const struct cap_spec *s)
{
	return (struct virt_capacity){.cpus = s->cpus,
	                              .mem_total_kib = s->total_gib * GIB,
	                              .mem_free_kib = s->free_gib * GIB,
	                              .vcpus_alloc = s->vcpus_alloc,
	                              .mem_alloc_kib = s->alloc_gib * GIB};
}

static void test_pick_peer(void **state)
{
	static const struct {
		const char *name;
		struct cap_spec cap[3];
		int rc[3];
		size_t n;
		uint32_t vcpus;
		uint64_t mem_mib;
		int want;
	} rows[] = {
	        {"the roomier of two",
	         {{8, 10, 32, 20, 10}, {8, 2, 32, 30, 2}},
	         {0, 0},
	         2,
	         2,
	         2048,
	         1},
	        {"one did not answer",
	         {{8, 10, 32, 20, 10}, {8, 2, 32, 30, 2}},
	         {0, -EHOSTUNREACH},
	         2,
	         2,
	         2048,
	         0},
	        {"none answered", {{8, 0, 32, 30, 0}}, {-ECONNREFUSED}, 1, 1, 1024, -1},
	        {"memory too small everywhere",
	         {{8, 0, 32, 30, 2}, {8, 0, 16, 15, 0}},
	         {0, 0},
	         2,
	         1,
	         40 * 1024,
	         -1},
	        /* (2 - 1 reserved) x 2 = 2 vCPUs, 2 allocated */
	        {"no vCPU left", {{2, 2, 32, 30, 0}}, {0}, 1, 1, 1024, -1},
	        {"exactly full after it still fits", {{2, 1, 32, 30, 0}}, {0}, 1, 1, 1024, 0},
	        /* free now (4G) is less than unallocated (32G): 4 - 1 reserve = 3G */
	        {"free memory counts when lower", {{8, 0, 32, 4, 0}}, {0}, 1, 1, 3 * 1024, 0},
	        {"free memory counts when lower, over",
	         {{8, 0, 32, 4, 0}},
	         {0},
	         1,
	         1,
	         3 * 1024 + 1,
	         -1},
	        /* unallocated (32 - 30) is less than free (31) */
	        {"allocated counts when higher", {{8, 0, 32, 31, 30}}, {0}, 1, 1, 1024, 0},
	        {"allocated counts when higher, over", {{8, 0, 32, 31, 30}}, {0}, 1, 1, 1025, -1},
	        {"a tie goes to the first listed",
	         {{8, 2, 32, 30, 2}, {8, 2, 32, 30, 2}},
	         {0, 0},
	         2,
	         1,
	         1024,
	         0},
	        {"the smaller share decides",
	         {{64, 0, 32, 30, 20}, {8, 4, 64, 60, 4}},
	         {0, 0},
	         2,
	         2,
	         1024,
	         1},
	        {"no peers", {{0}}, {0}, 0, 1, 1024, -1},
	};
	struct host_conf hc;

	conf(&hc);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct virt_capacity caps[3];
		struct migrate_need need = {rows[i].vcpus, rows[i].mem_mib * MIB};
		int got;

		for (size_t k = 0; k < 3; k++)
			caps[k] = cap_of(&rows[i].cap[k]);
		got = migrate_pick_peer(&hc, caps, rows[i].rc, rows[i].n, &need);
		if (got != rows[i].want)
			fail_msg("%s: picked %d, want %d", rows[i].name, got, rows[i].want);
	}
}

static void test_room(void **state)
{
	struct host_conf hc;
	struct cap_spec s = {8, 10, 32, 20, 10};
	struct virt_capacity cap = cap_of(&s);
	struct migrate_need need = {2, 2 * GIB};
	struct migrate_room room;

	conf(&hc);
	migrate_room(&hc, &cap, &need, &room);
	/* (8 - 1) x 2 = 14 - 10 - 2; min(20, 32 - 10) - 1 - 2 = 17 GiB */
	assert_int_equal(room.vcpus, 2);
	assert_int_equal(room.mem_kib, 17 * GIB);
	assert_true(room.fits);
	assert_true(room.score > 0.14 && room.score < 0.15); /* 2 / 14 < 17 / 31 */
	need.vcpus = 5;
	migrate_room(&hc, &cap, &need, &room);
	assert_int_equal(room.vcpus, -1);
	assert_false(room.fits);
}

static void test_usage_and_rebalance(void **state)
{
	struct host_conf hc;
	struct virt_node node = {.cpus = 4, .mem_total_kib = 8 * GIB};
	struct host_view hv = {.vcpus_free = 0, .mem_free_kib = 1 * GIB};
	struct migrate_usage u;
	struct migrate_candidate c[] = {
	        {1, 1 * GIB, true},
	        {2, 2 * GIB, true},
	        {1, 512 * MIB, false},
	};
	struct migrate_candidate none[] = {{1, GIB, false}};

	conf(&hc);
	hc.reserve_cpus = 0;
	hc.reserve_mem_kib = 0;
	hc.cpu_overcommit = 1;
	migrate_usage(&hc, &node, &hv, &u);
	assert_true(u.vcpus_cap == 4 && u.vcpus_used == 4);
	assert_true(u.mem_cap_kib == 8.0 * GIB && u.mem_used_kib == 7.0 * GIB);
	assert_true(u.pct == 100);
	/* without VM 0: vCPUs 75%, memory 75%: the smallest that gets under 90% */
	assert_int_equal(migrate_pick_rebalance(&u, 90, c, 3), 0);
	/* none gets under 50% (without VM 1: vCPUs 50%, memory 62.5%): the largest */
	assert_int_equal(migrate_pick_rebalance(&u, 50, c, 3), 1);
	assert_int_equal(migrate_pick_rebalance(&u, 90, none, 1), -1);
	assert_int_equal(migrate_pick_rebalance(&u, 90, c, 0), -1);

	/* memory-total is the capacity when set; reserves come off the capacity */
	hc.mem_total_kib = 4 * GIB;
	hc.reserve_mem_kib = 2 * GIB;
	hv.vcpus_free = 3;
	hv.mem_free_kib = 1 * GIB;
	migrate_usage(&hc, &node, &hv, &u);
	assert_true(u.mem_cap_kib == 2.0 * GIB);
	assert_true(u.pct == 50);
	/* no capacity at all: full */
	hc.reserve_cpus = 4;
	migrate_usage(&hc, &node, &hv, &u);
	assert_true(u.pct == 100);
	assert_int_equal(migrate_pick_rebalance(&u, 90, c, 3), -1);
}

static void test_verdict(void **state)
{
	static const struct {
		const char *name;
		enum migration_mode mode;
		bool busy;
		uint64_t last_ago, requested_ago; /* 0 = never */
		bool same_need;
		size_t in_flight;
		enum migrate_verdict want;
		const char *note;
	} rows[] = {
	        {"off", MIGRATION_OFF, false, 0, 0, false, 0, MIGRATE_NOTHING, ""},
	        {"auto", MIGRATION_AUTO, false, 0, 0, false, 0, MIGRATE_PROBE, ""},
	        {"already on the move", MIGRATION_AUTO, true, 0, 0, false, 0, MIGRATE_NOTHING, ""},
	        {"request mode", MIGRATION_REQUEST, false, 0, 0, false, 0, MIGRATE_REQUEST,
	         "migration = request"},
	        {"asked lately for the same", MIGRATION_REQUEST, false, 0, 1000, true, 0,
	         MIGRATE_NOTHING, ""},
	        {"asked lately for other", MIGRATION_REQUEST, false, 0, 1000, false, 0,
	         MIGRATE_REQUEST, "migration = request"},
	        {"asked a cooldown ago", MIGRATION_AUTO, false, 0, 600000, true, 0, MIGRATE_PROBE,
	         ""},
	        {"cooldown after a move", MIGRATION_AUTO, false, 60000, 0, false, 0,
	         MIGRATE_REQUEST, "migration cooldown, 540 s left"},
	        {"cooldown over", MIGRATION_AUTO, false, 600000, 0, false, 0, MIGRATE_PROBE, ""},
	        {"max in flight", MIGRATION_AUTO, false, 0, 0, false, 1, MIGRATE_REQUEST,
	         "1 migration in flight"},
	        {"the same need, asked lately, in auto", MIGRATION_AUTO, false, 0, 5000, true, 0,
	         MIGRATE_NOTHING, ""},
	};
	struct host_conf hc;

	conf(&hc);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct migrate_need need = {2, 1 * GIB};
		struct migrate_vm_state vs = {
		        .busy = rows[i].busy,
		        .last_ms = rows[i].last_ago ? NOW_MS - rows[i].last_ago : 0,
		        .requested_ms = rows[i].requested_ago ? NOW_MS - rows[i].requested_ago : 0,
		        .requested = {2, rows[i].same_need ? 1 * GIB : 2 * GIB},
		};
		char note[128];
		enum migrate_verdict v;

		hc.migration = rows[i].mode;
		v = migrate_verdict(&hc, &vs, &need, rows[i].in_flight, NOW_MS, note, sizeof(note));
		if (v != rows[i].want || strcmp(note, rows[i].note) != 0)
			fail_msg("%s: verdict %d '%s', want %d '%s'", rows[i].name, v, note,
			         rows[i].want, rows[i].note);
	}
}

/* ---- a VM whose guest reports n samples 1 s apart up to NOW_MS ---- */

struct testvm {
	struct vm vm;
	struct vm_view view;
};

static void make_vm_at(struct testvm *t, const char *name, const char *uuid, unsigned n, float busy,
                       float avail_pct, uint64_t now_ms)
{
	struct virt_mem *m = &t->vm.dom.mem;

	memset(t, 0, sizeof(*t));
	snprintf(t->vm.name, sizeof(t->vm.name), "%s", name);
	snprintf(t->vm.uuid, sizeof(t->vm.uuid), "%s", uuid);
	policy_default(&t->vm.policy);
	/* what the tables below count on, whatever the defaults become */
	t->vm.policy.cpu_up_pct = 80;
	t->vm.policy.cpu_up_for_ms = 10000;
	t->vm.policy.cpu_down_pct = 30;
	t->vm.policy.cpu_down_for_ms = 60000;
	t->vm.policy.vcpu_step_up = 1;
	t->vm.policy.mem_up_avail_pct = 15;
	t->vm.policy.mem_up_for_ms = 5000;
	t->vm.policy.mem_step_up_kib = 512 * MIB;
	t->vm.policy.mem_down_avail_pct = 50;
	t->vm.policy.mem_down_for_ms = 120000;
	policy_state_init(&t->vm.st);
	t->vm.enabled = true;
	t->vm.link.started = true;
	t->vm.vcpus = 1;
	t->vm.dom.vcpus_cur = 1;
	t->vm.dom.vcpus_max = 4;
	m->mech = VIRT_MEM_VIRTIO_MEM;
	m->base_kib = m->cur_kib = 512 * MIB;
	m->max_kib = 2560 * MIB;
	m->granule_kib = 2 * MIB;
	for (unsigned i = 0; i < n; i++) {
		struct sample s = {.seq = i + 1, .interval_ms = 1000, .cpus_online = 1};

		s.has = (1u << SF_CPU_ONLINE) | (1u << SF_CPU_BUSY) | (1u << SF_MEM_TOTAL) |
		        (1u << SF_MEM_AVAIL) | (1u << SF_INTERVAL);
		s.cpu_busy_pct = busy;
		s.mem_total_kib = 448 * MIB;
		s.mem_avail_kib = (uint64_t)(448.0 * MIB * avail_pct / 100);
		policy_observe(&t->vm.policy, &t->vm.st, &s, now_ms - (n - 1 - i) * 1000ull);
	}
	vm_view(&t->vm, &t->view);
}

static void make_vm(struct testvm *t, const char *name, const char *uuid, unsigned n, float busy,
                    float avail_pct)
{
	make_vm_at(t, name, uuid, n, busy, avail_pct, NOW_MS);
}

static void test_need_of(void **state)
{
	struct testvm t;
	struct migrate_need need;

	/* memory short for 10 s (15% for 5 s, step 512M) */
	make_vm(&t, "m", "u", 10, 10, 5);
	assert_true(migrate_need_of(&t.vm.policy, &t.view, NOW_MS, &need));
	assert_int_equal(need.vcpus, 1);
	assert_int_equal(need.mem_kib, 1024 * MIB);
	/* CPU busy for 15 s (80% for 10 s, one vCPU) */
	make_vm(&t, "c", "u", 15, 95, 60);
	assert_true(migrate_need_of(&t.vm.policy, &t.view, NOW_MS, &need));
	assert_int_equal(need.vcpus, 2);
	assert_int_equal(need.mem_kib, 512 * MIB);
	/* nothing to grow */
	make_vm(&t, "w", "u", 15, 50, 40);
	assert_false(migrate_need_of(&t.vm.policy, &t.view, NOW_MS, &need));
}

/* ---- the state machine, with jobs finished by the test ---- */

struct fake {
	unsigned requests, changed, moved, aborts;
	char req_vm[64], req_why[256], req_peer[256], req_note[160];
	struct migrate_need req_need;
	char moved_uuid[64], moved_peer[256];
	struct virt_job *jobs[8];
	unsigned njobs;
	int start_rc;
};

static void f_request(void *user, const struct migrate_request *rq)
{
	struct fake *f = user;

	f->requests++;
	snprintf(f->req_vm, sizeof(f->req_vm), "%s", rq->vm);
	snprintf(f->req_why, sizeof(f->req_why), "%s", rq->why);
	snprintf(f->req_peer, sizeof(f->req_peer), "%s", rq->peer);
	snprintf(f->req_note, sizeof(f->req_note), "%s", rq->note);
	f->req_need = (struct migrate_need){rq->vcpus, rq->mem_kib};
}

static void f_changed(void *user, const char *uuid)
{
	((struct fake *)user)->changed++;
}

static void f_moved(void *user, const char *uuid, const char *peer)
{
	struct fake *f = user;

	f->moved++;
	snprintf(f->moved_uuid, sizeof(f->moved_uuid), "%s", uuid);
	snprintf(f->moved_peer, sizeof(f->moved_peer), "%s", peer);
}

static int f_start(void *user, struct virt_job *job)
{
	struct fake *f = user;

	if (f->start_rc)
		return f->start_rc;
	assert_true(f->njobs < 8);
	f->jobs[f->njobs++] = job;
	return 0;
}

static int f_abort(void *user, const char *uuid)
{
	((struct fake *)user)->aborts++;
	return 0;
}

static const struct migrate_ops fake_ops = {f_request, f_changed, f_moved, f_start, f_abort};

static const struct decision host_full = {.action = ACTION_HOLD,
                                          .reason = REASON_HOST_FULL,
                                          .vcpus_from = 1,
                                          .vcpus_to = 1,
                                          .mem_from_kib = 512 * MIB,
                                          .mem_to_kib = 512 * MIB,
                                          .text = "mem avail 5% <= 15% for 5 s; the host has "
                                                  "0 MiB free"};

/* The newest job, which the test now finishes. */
static struct virt_job *last_job(struct fake *f)
{
	assert_true(f->njobs > 0);
	return f->jobs[f->njobs - 1];
}

static void finish_probe(struct migrate *m, struct fake *f, uint64_t now, uint64_t p1_free_gib,
                         uint64_t p2_free_gib)
{
	struct virt_job *job = last_job(f);

	assert_int_equal(job->kind, VIRT_JOB_CAPACITY);
	assert_int_equal(job->nuris, 2);
	assert_string_equal(job->uris[0], "qemu+tcp://p1/system");
	assert_string_equal(job->uris[1], "qemu+tcp://p2/system");
	job->cap[0] = (struct virt_capacity){
	        .cpus = 8, .mem_total_kib = 32 * GIB, .mem_free_kib = p1_free_gib * GIB};
	job->cap[1] = (struct virt_capacity){
	        .cpus = 8, .mem_total_kib = 32 * GIB, .mem_free_kib = p2_free_gib * GIB};
	migrate_job_done(m, job, now);
}

static void setup_sm(struct migrate *m, struct fake *f, struct host_conf *hc)
{
	memset(f, 0, sizeof(*f));
	conf(hc);
	migrate_init(m, NULL, hc, &fake_ops, f, NULL);
}

static void test_move(void **state)
{
	struct host_conf hc;
	struct migrate m;
	struct fake f;
	struct testvm t;
	struct virt_job *job;

	setup_sm(&m, &f, &hc);
	make_vm(&t, "web1", "uuid-1", 10, 10, 5);
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, NOW_MS);
	/* probing: busy, not moving, no request until a peer is chosen */
	assert_int_equal(f.njobs, 1);
	assert_true(migrate_busy(&m, "uuid-1"));
	assert_false(migrate_moving(&m, "uuid-1"));
	assert_false(migrate_busy(&m, "uuid-2"));
	assert_int_equal(f.requests, 0);
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, NOW_MS + 1000);
	assert_int_equal(f.njobs, 1);

	finish_probe(&m, &f, NOW_MS + 1500, 4, 20);
	assert_int_equal(f.requests, 1);
	assert_string_equal(f.req_vm, "web1");
	assert_string_equal(f.req_peer, "qemu+tcp://p2/system");
	assert_string_equal(f.req_note, "");
	assert_non_null(strstr(f.req_why, "host-full: mem avail 5%"));
	assert_int_equal(f.req_need.vcpus, 1);
	assert_int_equal(f.req_need.mem_kib, 1024 * MIB);
	/* moving: the stream stops (changed), a migration job to p2 */
	assert_int_equal(f.njobs, 2);
	job = last_job(&f);
	assert_int_equal(job->kind, VIRT_JOB_MIGRATE);
	assert_string_equal(job->src_uri, "qemu:///system");
	assert_string_equal(job->uuid, "uuid-1");
	assert_string_equal(job->uris[0], "qemu+tcp://p2/system");
	assert_true(migrate_moving(&m, "uuid-1"));
	assert_int_equal(f.changed, 1);
	assert_int_equal(m.in_flight, 1);

	job->mig = (struct virt_migration){.total_ms = 2600, .downtime_ms = 120, .data_kib = 1000};
	migrate_job_done(&m, job, NOW_MS + 4000);
	assert_int_equal(f.moved, 1);
	assert_string_equal(f.moved_uuid, "uuid-1");
	assert_string_equal(f.moved_peer, "qemu+tcp://p2/system");
	assert_int_equal(f.changed, 1); /* gone: no stream to restart */
	assert_false(migrate_busy(&m, "uuid-1"));
	assert_int_equal(m.in_flight, 0);
	migrate_fini(&m);
}

static void test_failure_cooldown(void **state)
{
	struct host_conf hc;
	struct migrate m;
	struct fake f;
	struct testvm t;
	struct virt_job *job;
	uint64_t t0 = NOW_MS;

	setup_sm(&m, &f, &hc);
	make_vm(&t, "web1", "uuid-1", 10, 10, 5);
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, t0);
	finish_probe(&m, &f, t0 + 500, 20, 4);
	job = last_job(&f);
	assert_string_equal(job->uris[0], "qemu+tcp://p1/system");
	job->rc[0] = -EIO;
	snprintf(job->err[0], sizeof(job->err[0]), "boom");
	migrate_job_done(&m, job, t0 + 3000);
	assert_int_equal(f.moved, 0);
	assert_int_equal(f.changed, 2); /* stopped, then started again */
	assert_false(migrate_busy(&m, "uuid-1"));

	/* the same need was asked for: quiet; a bigger one: a request that says why it stays */
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, t0 + 4000);
	assert_int_equal(f.requests, 1);
	t.vm.policy.mem_step_up_kib = 1024 * MIB;
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, t0 + 5000);
	assert_int_equal(f.requests, 2);
	assert_string_equal(f.req_note, "migration cooldown, 598 s left");
	assert_int_equal(f.njobs, 2);
	/* the cooldown and the request's memory over: it tries again */
	make_vm_at(&t, "web1", "uuid-1", 10, 10, 5, t0 + 5000 + 600000);
	t.vm.policy.mem_step_up_kib = 1024 * MIB;
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, t0 + 5000 + 600000);
	assert_int_equal(f.njobs, 3);
	assert_true(migrate_busy(&m, "uuid-1"));
	migrate_fini(&m);
}

/* A VM that just arrived by migration is not sent on (or back) before its cooldown. */
static void test_arrived(void **state)
{
	struct host_conf hc;
	struct migrate m;
	struct fake f;
	struct testvm t;
	uint64_t t0 = NOW_MS;

	setup_sm(&m, &f, &hc);
	make_vm(&t, "web1", "uuid-1", 10, 10, 5);
	migrate_arrived(&m, "web1", "uuid-1", t0);
	assert_false(migrate_busy(&m, "uuid-1"));
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, t0 + 1000);
	assert_int_equal(f.njobs, 0);
	assert_int_equal(f.requests, 1);
	assert_string_equal(f.req_note, "migration cooldown, 599 s left");
	/* another VM is not held by it */
	make_vm(&t, "db1", "uuid-2", 10, 10, 5);
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, t0 + 1000);
	assert_int_equal(f.njobs, 1);
	finish_probe(&m, &f, t0 + 1500, 0, 0); /* no peer has room: db1 stays, nothing in flight */
	assert_false(migrate_busy(&m, "uuid-2"));
	/* after the cooldown the arrived VM moves like any other */
	make_vm_at(&t, "web1", "uuid-1", 10, 10, 5, t0 + 601000);
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, t0 + 601000);
	assert_int_equal(f.njobs, 2);
	assert_true(migrate_busy(&m, "uuid-1"));
	migrate_fini(&m);
}

static void test_limits(void **state)
{
	struct host_conf hc;
	struct migrate m;
	struct fake f;
	struct testvm a, b;

	setup_sm(&m, &f, &hc);
	make_vm(&a, "a", "uuid-a", 10, 10, 5);
	make_vm(&b, "b", "uuid-b", 10, 10, 5);
	migrate_on_host_full(&m, &a.vm, &a.view, &host_full, NOW_MS);
	migrate_on_host_full(&m, &b.vm, &b.view, &host_full, NOW_MS);
	assert_int_equal(f.njobs, 1);
	assert_int_equal(f.requests, 1);
	assert_string_equal(f.req_vm, "b");
	assert_string_equal(f.req_note, "1 migration in flight");
	assert_false(migrate_busy(&m, "uuid-b"));

	/* no peer has room: a request without a peer, no move, no cooldown */
	finish_probe(&m, &f, NOW_MS + 500, 1, 1);
	assert_int_equal(f.requests, 2);
	assert_string_equal(f.req_vm, "a");
	assert_string_equal(f.req_peer, "");
	assert_string_equal(f.req_note, "no peer has room for 1 vCPUs, 1024 MiB");
	assert_int_equal(f.njobs, 1);
	assert_false(migrate_busy(&m, "uuid-a"));
	assert_int_equal(m.in_flight, 0);

	/* a worker that cannot start: a request, nothing busy */
	f.start_rc = -EAGAIN;
	hc.migration_max = 2;
	b.vm.policy.mem_step_up_kib = 1024 * MIB;
	migrate_on_host_full(&m, &b.vm, &b.view, &host_full, NOW_MS + 1000);
	assert_string_equal(f.req_note, "cannot start a worker thread");
	assert_false(migrate_busy(&m, "uuid-b"));
	migrate_fini(&m);
}

static void test_timeouts(void **state)
{
	struct host_conf hc;
	struct migrate m;
	struct fake f;
	struct testvm t;
	struct virt_node node = {.cpus = 4, .mem_total_kib = 8 * GIB};
	struct host_view hv = {8, 4 * GIB};
	struct vm *vms[1] = {&t.vm};

	setup_sm(&m, &f, &hc);
	make_vm(&t, "web1", "uuid-1", 10, 10, 5);
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, NOW_MS);
	migrate_tick(&m, vms, 1, &node, &hv, NOW_MS + 29999);
	assert_true(migrate_busy(&m, "uuid-1"));
	migrate_tick(&m, vms, 1, &node, &hv, NOW_MS + 30000);
	assert_false(migrate_busy(&m, "uuid-1"));
	assert_string_equal(f.req_note, "the peers did not answer within 30 s");
	f.njobs = 0; /* freed by the timeout */

	/* a move past migration-timeout is aborted, once */
	make_vm_at(&t, "web1", "uuid-1", 10, 10, 5, NOW_MS + 40000);
	t.vm.policy.mem_step_up_kib = 1024 * MIB;
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, NOW_MS + 40000);
	finish_probe(&m, &f, NOW_MS + 41000, 10, 20);
	assert_true(migrate_moving(&m, "uuid-1"));
	migrate_tick(&m, vms, 1, &node, &hv, NOW_MS + 41000 + 300000);
	migrate_tick(&m, vms, 1, &node, &hv, NOW_MS + 42000 + 300000);
	assert_int_equal(f.aborts, 1);
	assert_true(migrate_moving(&m, "uuid-1"));
	migrate_fini(&m);
}

static void test_modes(void **state)
{
	struct host_conf hc;
	struct migrate m;
	struct fake f;
	struct testvm t;

	setup_sm(&m, &f, &hc);
	hc.migration = MIGRATION_REQUEST;
	make_vm(&t, "web1", "uuid-1", 10, 10, 5);
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, NOW_MS);
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, NOW_MS + 1000);
	assert_int_equal(f.requests, 1);
	assert_string_equal(f.req_note, "migration = request");
	assert_int_equal(f.njobs, 0);
	assert_false(migrate_busy(&m, "uuid-1"));

	hc.migration = MIGRATION_AUTO;
	m.dry_run = true;
	t.vm.policy.mem_step_up_kib = 1024 * MIB;
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, NOW_MS + 2000);
	assert_int_equal(f.requests, 2);
	assert_string_equal(f.req_note, "dry run");
	assert_int_equal(f.njobs, 0);

	hc.migration = MIGRATION_OFF;
	t.vm.policy.mem_step_up_kib = 2048 * MIB;
	migrate_on_host_full(&m, &t.vm, &t.view, &host_full, NOW_MS + 3000);
	assert_int_equal(f.requests, 2);
	migrate_fini(&m);
}

static void test_rebalance(void **state)
{
	struct host_conf hc;
	struct migrate m;
	struct fake f;
	struct testvm a, b;
	struct vm *vms[2] = {&a.vm, &b.vm};
	struct virt_node node = {.cpus = 3, .mem_total_kib = 16 * GIB};
	struct host_view full = {.vcpus_free = 0, .mem_free_kib = 8 * GIB}; /* vCPUs 100% */
	struct host_view ok = {.vcpus_free = 2, .mem_free_kib = 8 * GIB};

	setup_sm(&m, &f, &hc);
	hc.migration_rebalance = true;
	make_vm(&a, "a", "uuid-a", 3, 10, 60);
	make_vm(&b, "b", "uuid-b", 3, 10, 60);
	b.vm.op.kind = OP_VCPU_UP; /* busy: not a candidate */
	migrate_tick(&m, vms, 2, &node, &full, NOW_MS);
	migrate_tick(&m, vms, 2, &node, &full, NOW_MS + 9999);
	assert_int_equal(f.njobs, 0);
	/* dipping under the watermark restarts the window */
	migrate_tick(&m, vms, 2, &node, &ok, NOW_MS + 10000);
	migrate_tick(&m, vms, 2, &node, &full, NOW_MS + 11000);
	migrate_tick(&m, vms, 2, &node, &full, NOW_MS + 20999);
	assert_int_equal(f.njobs, 0);
	migrate_tick(&m, vms, 2, &node, &full, NOW_MS + 21000);
	assert_int_equal(f.njobs, 1);
	assert_true(migrate_busy(&m, "uuid-a"));
	assert_false(migrate_busy(&m, "uuid-b"));
	finish_probe(&m, &f, NOW_MS + 22000, 10, 20);
	assert_string_equal(f.req_vm, "a");
	assert_string_equal(f.req_why, "rebalance: host at 100% >= 90% for 10 s");
	assert_int_equal(f.req_need.vcpus, 1);
	assert_int_equal(f.req_need.mem_kib, 512 * MIB);
	/* not without migration-rebalance */
	migrate_fini(&m);
	setup_sm(&m, &f, &hc);
	migrate_tick(&m, vms, 2, &node, &full, NOW_MS);
	migrate_tick(&m, vms, 2, &node, &full, NOW_MS + 60000);
	assert_int_equal(f.njobs, 0);
	migrate_fini(&m);
}

/* ---- the libvirt side, on libvirt's test driver: capacity, a refused migration, the worker ----
 */

static void test_virt_verbs(void **state)
{
	struct virt_capacity cap;
	struct virt_migration mig;
	char err[256] = "";

	assert_int_equal(virt_capacity("test:///default", &cap, err, sizeof(err)), 0);
	assert_true(cap.cpus > 0);
	assert_true(cap.mem_total_kib > 0);
	assert_true(cap.domains >= 1); /* the driver's running domain "test" */
	assert_true(cap.vcpus_alloc >= cap.domains);
	assert_true(cap.mem_alloc_kib > 0);
	/* nothing listens on port 1 */
	assert_true(virt_capacity("qemu+tcp://127.0.0.1:1/system", &cap, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "cannot connect to qemu+tcp://127.0.0.1:1/system"));
	/* the test driver cannot migrate: an error with libvirt's message, nothing else */
	err[0] = '\0';
	assert_true(virt_migrate("test:///default", "6695eb01-f6a4-8304-79aa-97f2502e193f",
	                         "qemu+tcp://127.0.0.1:1/system", &mig, err, sizeof(err)) < 0);
	assert_true(err[0] != '\0');
}

static atomic_int notified;

static void count_notify(void *user)
{
	atomic_fetch_add(&notified, 1);
}

static void test_virt_job(void **state)
{
	struct virt_job *job = calloc(1, sizeof(*job));
	int i;

	assert_non_null(job);
	job->kind = VIRT_JOB_CAPACITY;
	snprintf(job->uris[0], sizeof(job->uris[0]), "test:///default");
	snprintf(job->uris[1], sizeof(job->uris[1]), "qemu+tcp://127.0.0.1:1/system");
	job->nuris = 2;
	job->notify = count_notify;
	assert_false(virt_job_done(job));
	assert_int_equal(virt_job_start(job), 0);
	for (i = 0; i < 1000 && !virt_job_done(job); i++)
		usleep(10000);
	assert_true(virt_job_done(job));
	assert_int_equal(job->rc[0], 0);
	assert_true(job->cap[0].cpus > 0);
	assert_true(job->rc[1] < 0);
	assert_true(job->err[1][0] != '\0');
	for (i = 0; i < 100 && atomic_load(&notified) == 0; i++)
		usleep(10000); /* notify runs just after the job is marked done */
	assert_int_equal(atomic_load(&notified), 1);
	virt_job_free(job);

	/* freed while running: its worker frees it and does not notify */
	job = calloc(1, sizeof(*job));
	assert_non_null(job);
	job->kind = VIRT_JOB_CAPACITY;
	snprintf(job->uris[0], sizeof(job->uris[0]), "test:///default");
	job->nuris = 1;
	job->notify = count_notify;
	assert_int_equal(virt_job_start(job), 0);
	virt_job_free(job);
	usleep(300000);
	/* a job never started is just freed; one without URIs does not start */
	job = calloc(1, sizeof(*job));
	assert_non_null(job);
	assert_int_equal(virt_job_start(job), -EINVAL);
	virt_job_free(job);
	virt_job_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pick_peer),
	        cmocka_unit_test(test_room),
	        cmocka_unit_test(test_usage_and_rebalance),
	        cmocka_unit_test(test_verdict),
	        cmocka_unit_test(test_need_of),
	        cmocka_unit_test(test_move),
	        cmocka_unit_test(test_failure_cooldown),
	        cmocka_unit_test(test_arrived),
	        cmocka_unit_test(test_limits),
	        cmocka_unit_test(test_timeouts),
	        cmocka_unit_test(test_modes),
	        cmocka_unit_test(test_rebalance),
	        cmocka_unit_test(test_virt_verbs),
	        cmocka_unit_test(test_virt_job),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
