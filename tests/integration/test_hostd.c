/* End to end: the real vscale-hostd on libvirt's test driver (a node file written here whose
 * domains' vscale channels are this test's sockets) against fake guests. Asserts decisions and
 * their outcomes from hostd's decision log and the requests the guests received:
 * CPU growth to the policy max and back, single-thread saturation held, memory growth, a shrink
 * acked and one refused, no action on stale data, hostile input rejected while others go on,
 * config errors as file:line, SIGHUP with a bad file, a restart that picks VMs up again, and a
 * hostd killed -9 during a memory growth that keeps that growth's cooldown at restart.
 * Usage: test_hostd PATH-TO-vscale-hostd */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fakeguest.h"
#include "util.h"
#include "wire.h"

#include "check.h"

enum { CPU1, SAT1, MEM1, SHRINK1, REFUSE1, STALE1, HOSTILE1, MEMKILL1, NVM };
static const char *names[NVM] = {"cpu1",    "sat1",   "mem1",     "shrink1",
                                 "refuse1", "stale1", "hostile1", "memkill1"};
static struct fakeguest g[NVM];
static char dir[64] = "/tmp/vscale-hostd-it-XXXXXX";
static char declog_path[256], log_path[256], conf_path[256];

static void write_conf(const char *extra)
{
	char text[4096];

	snprintf(text, sizeof(text),
	         "[host]\nuri = test://%s/node.xml\nreserve-cpus = 0\nreserve-memory = 0\n"
	         "memory-total = 32G\n"
	         "interval = 200ms\nop-timeout = 3s\nstate-dir = %s/state\n"
	         "control-dir = %s/run\nmetrics = off\n\n"
	         "[policy fast]\nvcpus = 1..3\nmemory = 1G..3G\ncpu-up = 80%%\ncpu-down = 30%%\n"
	         "cpu-up-for = 1s\ncpu-down-for = 2s\nvcpu-cooldown-up = 1s\n"
	         "vcpu-cooldown-down = 1s\nmem-available-up = 15%%\nmem-available-down = 50%%\n"
	         "mem-up-for = 1s\nmem-down-for = 2s\nmem-step-up = 512M\nmem-step-down = 512M\n"
	         "mem-margin = 256M\nmem-cooldown-up = 1s\nmem-cooldown-down = 1500ms\n"
	         "stale-after = 1s\n\n"
	         /* first match wins: before [vm *]; a cooldown the kill phase outlasts */
	         "[vm memkill1]\npolicy = fast\nmem-cooldown-up = 30s\n\n"
	         "[vm *]\npolicy = fast\n%s",
	         dir, dir, dir, extra);
	check_write_file(conf_path, text);
}

/* ---- the decision log ---- */

/* what a real guest would see after plug/resize */
static void apply_entry(const struct check_entry *e)
{
	for (int i = 0; i < NVM; i++) {
		if (strcmp(e->vm, names[i]) || strcmp(e->outcome, "started"))
			continue;
		/* the guest kernel sees the new vCPU / memory: vscale-guestd onlines it */
		if (!strcmp(e->action, "vcpu-up") && e->v1 > g[i].cpus_present) {
			g[i].pending_cpus = e->v1;
			g[i].pending_seq = g[i].seq + 3;
		}
		/* memkill1's guest never sees its growth: the operation stays in flight until
		 * op-timeout, so the kill phase's SIGKILL lands in its middle */
		if (!strcmp(e->action, "mem-up") && i != MEMKILL1)
			g[i].mem_total_kib += e->m1 - e->m0;
	}
}

static struct check_entry entries[4096];
static struct check_declog declog = {
        .path = declog_path, .entries = entries, .cap = 4096, .apply = apply_entry};

static int count(const char *vm, const char *action, const char *outcome)
{
	int n = 0;

	for (int i = 0; i < declog.n; i++)
		if (!strcmp(entries[i].vm, vm) && (!action || !strcmp(entries[i].action, action)) &&
		    (!outcome || !strcmp(entries[i].outcome, outcome)))
			n++;
	return n;
}

static const struct check_entry *last(const char *vm, const char *action, const char *outcome)
{
	for (int i = declog.n; i-- > 0;)
		if (!strcmp(entries[i].vm, vm) && !strcmp(entries[i].action, action) &&
		    (!outcome || !strcmp(entries[i].outcome, outcome)))
			return &entries[i];
	return NULL;
}

/* Runs the fake guests for ms, a sample every 200 ms, following the decision log. */
static void run_for(int ms)
{
	uint64_t end = util_now_ms() + (uint64_t)ms, next = 0;

	while (util_now_ms() < end) {
		fg_step(g, NVM, &next);
		check_declog_follow(&declog);
	}
}

static bool have_sessions(unsigned sessions)
{
	for (int i = 0; i < NVM; i++)
		if (g[i].hellos_sent < sessions)
			return false;
	return true;
}

/* Runs the fake guests (a sample every 200 ms) until hostd has opened `sessions` sessions with
 * each, for at most ms (ten times that under a wrapper such as valgrind, where hostd starts
 * ~20x slower). */
static bool run_until_sessions(unsigned sessions, int ms)
{
	uint64_t end = util_now_ms() + (uint64_t)ms * (*check_wrapper() ? 10 : 1), next = 0;

	while (!have_sessions(sessions)) {
		if (util_now_ms() >= end)
			return false;
		fg_step(g, NVM, &next);
		check_declog_follow(&declog);
	}
	return true;
}

static bool log_has(const char *needle)
{
	char buf[1 << 20];

	return util_read_file(log_path, buf, sizeof(buf)) > 0 && strstr(buf, needle);
}

static void hostile_input(void)
{
	uint8_t junk[4096], payload[512], frame[600];
	struct sample s = {0};
	int n, m;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	fg_raw(&g[HOSTILE1], junk, sizeof(junk));
	/* a well-framed sample with absurd values: NaN busy is refused by the decoder */
	s.seq = 1000000;
	s.mono_ms = 1;
	s.cpu_busy_pct = 0.0f / 0.0f;
	s.has = 1u << SF_CPU_BUSY;
	n = wire_encode_sample(&s, payload, sizeof(payload));
	m = frame_encode(FRAME_SAMPLE, payload, (size_t)n, frame, sizeof(frame));
	fg_raw(&g[HOSTILE1], frame, (size_t)m);
	/* a replayed sequence number */
	s.cpu_busy_pct = 50;
	s.seq = 1;
	n = wire_encode_sample(&s, payload, sizeof(payload));
	m = frame_encode(FRAME_SAMPLE, payload, (size_t)n, frame, sizeof(frame));
	fg_raw(&g[HOSTILE1], frame, (size_t)m);
}

static void scenario(const char *bin)
{
	const struct check_entry *e;
	double stale_resume;
	pid_t pid;
	int st;

	write_conf("");
	for (int i = 0; i < NVM; i++) {
		char path[256];

		snprintf(path, sizeof(path), "%s/%s.sock", dir, names[i]);
		if (fg_init(&g[i], path, 1, 1900 * 1024) < 0) {
			perror(path);
			exit(2);
		}
	}
	g[CPU1].busy_pct = 95;
	g[SAT1].busy_pct = 100;
	g[SAT1].saturated = true;
	g[MEM1].avail_pct = 5;
	g[SHRINK1].avail_pct = 85;
	g[REFUSE1].avail_pct = 85;
	g[REFUSE1].reply_mode = FG_REFUSE;
	g[STALE1].avail_pct = 85;
	g[STALE1].busy_pct = 2;

	pid = check_start_daemon(bin, conf_path, log_path);
	CHECK(run_until_sessions(1, 1500), "hostd did not open every guest's stream");
	run_for(1600);
	g[STALE1].sending = false; /* 1.6 s of idle, under the 2 s down window: then silence */
	hostile_input();
	run_for(3000);
	g[STALE1].sending = true;
	stale_resume = check_now_wall();
	run_for(4000);
	g[CPU1].busy_pct = 3; /* load stops */
	run_for(6000);
	check_declog_follow(&declog);

	/* CPU: up step by step to the policy max, never beyond, then back down to the min */
	CHECK(count("cpu1", "vcpu-up", "done") == 2, "cpu1: %d vcpu-up done, want 2 (1->2->3)",
	      count("cpu1", "vcpu-up", "done"));
	e = last("cpu1", "vcpu-up", "done");
	CHECK(e && e->v1 == 3, "cpu1: last vcpu-up to %u, want 3", e ? e->v1 : 0);
	CHECK(count("cpu1", "vcpu-down", "done") >= 1, "cpu1 never scaled down");
	CHECK(g[CPU1].last_vcpus_req >= 1 && g[CPU1].cpus_online == 1,
	      "cpu1: guest has %u online after the load stopped, want 1", g[CPU1].cpus_online);
	/* an operation's outcome is logged with the decision that started it, never a hold */
	for (int i = 0; i < NVM; i++)
		CHECK(count(names[i], "hold", "done") == 0, "%s: a hold logged as done", names[i]);
	/* saturation: reported, no vCPU for it */
	CHECK(count("sat1", "vcpu-up", NULL) == 0, "sat1 got a vCPU for a single thread");
	CHECK(count("sat1", "hold", "hold") >= 1 && last("sat1", "hold", "hold") &&
	              !strcmp(last("sat1", "hold", "hold")->reason, "saturated"),
	      "sat1: no saturated hold in the decision log");
	/* memory growth to the policy max (3 GiB), never above */
	CHECK(count("mem1", "mem-up", "done") >= 1, "mem1 never grew");
	for (int i = 0; i < declog.n; i++)
		if (!strcmp(entries[i].vm, "mem1") && entries[i].m1 > 3145728)
			CHECK(0, "mem1 grew past the policy max: %llu", entries[i].m1);
	/* shrink: asked first, resized after the ack */
	CHECK(count("shrink1", "mem-down", "done") >= 1, "shrink1 never shrank");
	CHECK(g[SHRINK1].last_mem_req_kib > 0, "shrink1's guest was never asked");
	/* refused shrink: recorded, paced by the cooldown, not retried in a loop */
	CHECK(count("refuse1", "mem-down", "refused") >= 1, "refuse1: refusal not recorded");
	CHECK(g[REFUSE1].refusals <= 10, "refuse1 asked %u times in 15 s: a retry loop",
	      g[REFUSE1].refusals);
	CHECK(count("refuse1", "mem-down", "done") == 0, "refuse1 shrank although refused");
	/* stale data: nothing while silent, and a full window again after it resumed */
	for (int i = 0; i < declog.n; i++)
		if (!strcmp(entries[i].vm, "stale1") && strcmp(entries[i].action, "hold") &&
		    entries[i].ts < stale_resume + 1.8)
			CHECK(0, "stale1: %s at %.1f s after resuming: acted on a broken window",
			      entries[i].action, entries[i].ts - stale_resume);
	/* hostile input: rejected, counted, hostd alive, and the hostile VM still decided on */
	CHECK(log_has("vm 'hostile1': rejected"), "hostile input not reported in the log");
	CHECK(kill(pid, 0) == 0, "hostd died");

	/* SIGHUP with a broken config keeps the running one */
	check_write_file(conf_path, "[host]\nreserve-cpus = lots\n");
	kill(pid, SIGHUP);
	run_for(500);
	CHECK(log_has("keeping the running configuration"), "bad reload not reported");
	CHECK(kill(pid, 0) == 0, "hostd died on a bad reload");
	write_conf("");

	/* restart: cooldowns and the grant were persisted, and the VMs are picked up again (the
	 * test driver forgets its domains' sizes with the process, so no resizing is checked) */
	st = stop_child(pid);
	CHECK(st == 0, "hostd exit status %d on SIGTERM", st);
	{
		char path[300], buf[1024];

		snprintf(path, sizeof(path), "%s/state/22222222-0000-0000-0000-000000000000.state",
		         dir);
		CHECK(util_read_file(path, buf, sizeof(buf)) > 0 &&
		              strstr(buf, "vcpus_granted 1\n") && !strstr(buf, "vcpu_down_ms 0\n"),
		      "cpu1 state not persisted: '%s'", buf);
	}
	pid = check_start_daemon(bin, conf_path, log_path);
	run_until_sessions(2, 1500);
	for (int i = 0; i < NVM; i++)
		CHECK(g[i].hellos_sent == 2, "%s: %u sessions, want 2 (picked up after restart)",
		      names[i], g[i].hellos_sent);
	st = stop_child(pid);
	CHECK(st == 0, "hostd exit status %d on SIGTERM after restart", st);
}

/* ---- hostd killed -9 during a memory growth ---- */

/* The index of the first entry from `from` on for vm, action and outcome ("" outcome: any but
 * "started"), or -1. */
static int find_from(int from, const char *vm, const char *action, const char *outcome)
{
	for (int i = from; i < declog.n; i++)
		if (!strcmp(entries[i].vm, vm) && !strcmp(entries[i].action, action) &&
		    (*outcome ? !strcmp(entries[i].outcome, outcome)
		              : strcmp(entries[i].outcome, "started") != 0))
			return i;
	return -1;
}

/* The mem_up_ms (wall ms) in domain i's state file; 0 when the file or the key is missing. */
static unsigned long long state_mem_up_ms(int i)
{
	char path[300], buf[1024];
	unsigned long long ms = 0;
	const char *p;

	snprintf(path, sizeof(path), "%s/state/22222222-0000-0000-0000-00000000000%d.state", dir,
	         i);
	if (util_read_file(path, buf, sizeof(buf)) > 0 && (p = strstr(buf, "mem_up_ms ")))
		sscanf(p, "mem_up_ms %llu", &ms);
	return ms;
}

/* Runs the fake guests until hostd logs vm's first mem-up "started" from entry `from` on, for at
 * most ms (ten times that under a wrapper). Returns the entry's index or -1. */
static int run_until_mem_up(int from, const char *vm, int ms)
{
	uint64_t end = util_now_ms() + (uint64_t)ms * (*check_wrapper() ? 10 : 1), next = 0;
	int at = -1;

	while (at < 0 && util_now_ms() < end) {
		fg_step(g, NVM, &next);
		check_declog_follow(&declog);
		at = find_from(from, vm, "mem-up", "started");
	}
	return at;
}

/* memkill1's guest is short of memory (and never sees a growth arrive): hostd starts a mem-up,
 * is killed -9 in its middle, and must have saved the operation's stamp when it started, so that
 * the restarted hostd keeps the 30 s mem-cooldown-up although the guest is still short. */
static void mem_kill(const char *bin)
{
	unsigned hellos = g[MEMKILL1].hellos_sent;
	unsigned long long stamp;
	uint64_t end, next = 0;
	int at, done, st;
	pid_t pid;

	g[MEMKILL1].avail_pct = 5; /* of any MemTotal: short whatever hostd gives it */
	pid = check_start_daemon(bin, conf_path, log_path);
	at = run_until_mem_up(declog.n, "memkill1", 4000);
	CHECK(at >= 0, "memkill1: no mem-up started although its guest is short of memory");
	/* hostd writes the "started" line, then the state file (fsync, rename): let it get there;
	 * the operation lasts until op-timeout (3 s) since the guest's MemTotal never grows */
	if (at >= 0)
		run_for(200);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	if (at < 0)
		return;
	check_declog_follow(&declog);
	done = find_from(at, "memkill1", "mem-up", "");
	printf("memkill1: hostd killed -9 %s\n",
	       done < 0 ? "with its mem-up in flight" : "after its mem-up ended");
	if (done >= 0)
		printf("memkill1: mem-up outcome '%s' logged before the kill\n",
		       entries[done].outcome);
	stamp = state_mem_up_ms(MEMKILL1);
	CHECK(stamp && (double)stamp / 1000.0 > entries[at].ts - 3 &&
	              (double)stamp / 1000.0 < entries[at].ts + 3,
	      "memkill1: state file's mem_up_ms %llu, want the mem-up's start (ts %.3f)", stamp,
	      entries[at].ts);

	/* restarted: the guest is picked up again and still short, and no growth is decided */
	at = declog.n;
	pid = check_start_daemon(bin, conf_path, log_path);
	end = util_now_ms() + 1500 * (*check_wrapper() ? 10 : 1);
	while (g[MEMKILL1].hellos_sent == hellos && util_now_ms() < end) {
		fg_step(g, NVM, &next);
		check_declog_follow(&declog);
	}
	run_for(5000);
	CHECK(g[MEMKILL1].hellos_sent > hellos, "memkill1: not picked up again after the kill");
	CHECK(find_from(at, "memkill1", "mem-up", "started") < 0,
	      "memkill1: mem-up decided again within its 30 s cooldown after hostd was killed -9");
	st = stop_child(pid);
	CHECK(st == 0, "hostd exit status %d on SIGTERM after the kill", st);
	g[MEMKILL1].avail_pct = 40;
}

static void bad_configs(const char *bin)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
	        {"[host]\nreserve-memory = 2Q\n", ":2: reserve-memory: "},
	        {"[policy web]\nvcpus = 8..1\n", ":2: vcpus: "},
	        {"[vm web*]\npolicy = nosuch\n", ":2: "},
	        {"[hots]\nuri = x\n", ":1: unknown section [hots]"},
	};
	char out[256], cmd[1024], buf[4096];

	snprintf(out, sizeof(out), "%s/err.txt", dir);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		check_write_file(conf_path, cases[i].text);
		snprintf(cmd, sizeof(cmd), "%s %s --config %s --print-config >/dev/null 2>%s",
		         check_wrapper(), bin, conf_path, out);
		rc = system(cmd);
		CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "bad config %zu: exit %d", i,
		      WEXITSTATUS(rc));
		buf[0] = '\0';
		util_read_file(out, buf, sizeof(buf));
		snprintf(cmd, sizeof(cmd), "%s%s", conf_path, cases[i].want);
		CHECK(strstr(buf, cmd) != NULL, "bad config %zu: message '%s' lacks '%s'", i, buf,
		      cmd);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH-TO-vscale-hostd\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		return 2;
	snprintf(declog_path, sizeof(declog_path), "%s/state/decisions.jsonl", dir);
	snprintf(log_path, sizeof(log_path), "%s/hostd.log", dir);
	snprintf(conf_path, sizeof(conf_path), "%s/vscale.conf", dir);
	check_write_node(dir, names, NVM, "22222222");
	scenario(argv[1]);
	mem_kill(argv[1]);
	bad_configs(argv[1]);
	for (int i = 0; i < NVM; i++)
		fg_fini(&g[i]);
	check_finish(dir, 60);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
