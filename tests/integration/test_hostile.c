/* Hostile guests against a running vscale-hostd (libvirt's test driver, fake guests on the
 * channels' unix sockets). Seven VMs at once: a well-behaved bystander, a guest that lies (100%
 * busy, no memory available, a 60 s sample interval, forever) and five attackers, one attack at
 * a time: garbage floods at full speed, frames at the size cap, frames split one byte at a time
 * and one left unfinished, valid frames with absurd values, replayed or backward sequence
 * numbers and flapping figures, and a channel opened and closed in a storm. Asserted in every
 * phase: hostd stays up, every bystander decision comes within 1 s of its sample, hostd's RSS
 * stays bounded, hostd's sample and rejected-frame counts (SIGUSR1 stats line) match what was
 * sent exactly, rejection warnings stay under the rate limit. For the liar: vCPUs never past the
 * policy max, memory never past the host reserve, its cooldowns between actions, no window met
 * by its interval claim. For junk and the storm: streams dropped and retried with backoff,
 * hostd's CPU low. Usage: test_hostile PATH-TO-vscale-hostd (VSCALE_TEST_DATA: tests/data).
 * hostd runs without check.h's wrapper: the figures asserted are its own (RSS, CPU, timing). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fakeguest.h"
#include "util.h"
#include "wire.h"

#include "check.h"

enum { BYST, LIAR, FLOOD, CAP, SLOW, ABSURD, STORM, NVM };
static const char *names[NVM] = {"bystander", "liar1",   "flood1", "cap1",
                                 "slow1",     "absurd1", "storm1"};
static struct fakeguest g[NVM];
static char dir[64] = "/tmp/vscale-hostile-XXXXXX";
static char declog_path[256], log_path[256], conf_path[256];
static pid_t hostd;

/* the liar's policy and the host (tests/data/hostile/vscale.conf.in) */
#define LIAR_VCPUS_MAX   4u
#define LIAR_MEM_MAX_KIB (8ull << 20)
#define HOST_TOTAL_KIB   (11ull << 20)
#define HOST_RESERVE_KIB (1536ull << 10)
#define OTHERS_KIB       (6ull << 20) /* the six 1 GiB domains */
#define VCPU_COOLDOWN_S  3.0
#define MEM_COOLDOWN_S   2.0
#define LIAR_WINDOW_S    1.0 /* cpu-up-for and mem-up-for */
/* per-VM warnings: a burst of 5, then one per 10 s (host-agent/vm.c) */
#define WARN_BURST      5
#define WARN_INTERVAL_S 10.0
/* hostd's RSS may grow by at most this over all the attacks; why: phase_end() */
#define RSS_SLACK_KIB (4u * 1024u)
/* AddressSanitizer's quarantine and shadow grow with every allocation, so RSS says nothing
 * there; LeakSanitizer checks for leaks when hostd exits instead (stop_child's status) */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_MEANINGFUL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_MEANINGFUL 0
#endif
#endif
#ifndef RSS_MEANINGFUL
#define RSS_MEANINGFUL 1
#endif

/* ---- set-up: the data files with @DIR@ replaced ---- */

static void from_template(const char *name, const char *out)
{
	const char *data = getenv("VSCALE_TEST_DATA");
	char in[512], text[16384], *p, *at;
	FILE *f;

	snprintf(in, sizeof(in), "%s/hostile/%s", data ? data : "tests/data", name);
	if (util_read_file(in, text, sizeof(text)) < 0) {
		perror(in);
		exit(2);
	}
	f = fopen(out, "w");
	if (!f) {
		perror(out);
		exit(2);
	}
	for (p = text; (at = strstr(p, "@DIR@")); p = at + 5)
		fprintf(f, "%.*s%s", (int)(at - p), p, dir);
	fputs(p, f);
	fclose(f);
}

static bool hostd_alive(void)
{
	int st;

	return waitpid(hostd, &st, WNOHANG) == 0;
}

/* ---- hostd's decision log, log and /proc ---- */

/* The liar's MemTotal follows what hostd gives it (its lie is what is available, not what it
 * has), so memory operations complete and cooldowns pace it. */
static void apply_entry(const struct check_entry *e)
{
	if (!strcmp(e->vm, names[LIAR]) && !strcmp(e->action, "mem-up") &&
	    !strcmp(e->outcome, "started") && e->m1 > e->m0)
		g[LIAR].mem_total_kib += e->m1 - e->m0;
}

static struct check_entry entries[65536];
static struct check_declog declog = {.path = declog_path,
                                     .entries = entries,
                                     .cap = (int)ARRAY_SIZE(entries),
                                     .apply = apply_entry};

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Lines of hostd's log between two offsets that contain needle. */
static int log_count(long from, long to, const char *needle)
{
	FILE *f = fopen(log_path, "r");
	char line[2048];
	int n = 0;

	if (!f)
		return 0;
	fseek(f, from, SEEK_SET);
	while (ftell(f) < to && fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static void proc_mem(unsigned long *ret_rss_kib, unsigned long *ret_hwm_kib)
{
	char path[64], buf[4096];
	const char *p;

	*ret_rss_kib = *ret_hwm_kib = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)hostd);
	if (util_read_file(path, buf, sizeof(buf)) < 0)
		return;
	if ((p = strstr(buf, "VmRSS:")))
		*ret_rss_kib = strtoul(p + 6, NULL, 10);
	if ((p = strstr(buf, "VmHWM:")))
		*ret_hwm_kib = strtoul(p + 6, NULL, 10);
}

/* hostd's user + system CPU time in seconds */
static double proc_cpu_s(void)
{
	char path[64], buf[2048];
	unsigned long ut = 0, stime = 0;
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)hostd);
	if (util_read_file(path, buf, sizeof(buf)) < 0 || !(p = strrchr(buf, ')')))
		return 0;
	/* after "pid (comm)": state is field 3; utime and stime are fields 14 and 15 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stime) != 2)
		return 0;
	return (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* ---- the well-behaved guests ---- */

/* the bystander alternates: one thread saturating its CPU, then calm; each saturated sample
 * after a calm one is a "hold saturated" decision in the decision log, which names the hot
 * thread: its tid is the index of the sample here (+1) */
static double byst_sat_sent[4096];
static int byst_nsat;
static bool byst_sat_next = true;
/* the liar's first sample: its windows count from there */
static double liar_first_sent;
/* the storm */
static bool storming, storm_hello;
static unsigned storm_accepts;

static void tick(uint64_t now)
{
	if (g[LIAR].fd >= 0 && !liar_first_sent)
		liar_first_sent = check_now_wall();
	if (g[BYST].fd >= 0) {
		g[BYST].saturated = byst_sat_next;
		g[BYST].busy_pct = byst_sat_next ? 100 : 50;
		if (byst_sat_next && byst_nsat < (int)ARRAY_SIZE(byst_sat_sent)) {
			byst_sat_sent[byst_nsat++] = check_now_wall();
			g[BYST].hot_tid = (uint32_t)byst_nsat;
		}
		fg_tick(&g[BYST], 1, now);
		byst_sat_next = !byst_sat_next;
	}
	fg_tick(&g[LIAR], 1, now);
}

static uint64_t next_tick;

/* One step of the loop: a sample every 200 ms from the bystander and the liar, the guests'
 * sockets polled for up to ms, the storm served, the decision log followed. */
static void step(int ms)
{
	uint64_t now = util_now_ms();

	if (now >= next_tick) {
		tick(now);
		next_tick = now + 200;
	}
	fg_poll(g, storming ? NVM - 1 : NVM, ms);
	if (storming)
		storm_accepts += fg_accept_close(&g[STORM], storm_hello, util_now_ms());
	check_declog_follow(&declog);
}

static void run_for(int ms)
{
	uint64_t end = util_now_ms() + (uint64_t)ms;

	while (util_now_ms() < end)
		step(storming ? 2 : 20);
}

/* ---- hostd's counters (the SIGUSR1 stats line) ---- */

struct counters {
	unsigned long long samples, rejected;
	unsigned long long good_sent; /* samples the bystander, the liar and the storm sent */
};

/* Lets hostd drain what was sent (the guests pause: nothing is sent for 400 ms), then asks for
 * its stats line and parses it. */
static struct counters hostd_counters(void)
{
	struct counters c = {0};
	long from = file_size(log_path);
	uint64_t end;
	char buf[1 << 16];
	const char *p, *last = NULL;
	FILE *f;
	size_t n;

	for (end = util_now_ms() + 400; util_now_ms() < end;)
		fg_poll(g, NVM, 20);
	c.good_sent = g[BYST].seq + g[LIAR].seq + g[STORM].seq;
	kill(hostd, SIGUSR1);
	for (end = util_now_ms() + 2000; util_now_ms() < end && !last;) {
		fg_poll(g, NVM, 20);
		f = fopen(log_path, "r");
		if (!f)
			continue;
		fseek(f, from, SEEK_SET);
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		for (p = buf; (p = strstr(p, "stats: ")); p++)
			last = p;
	}
	CHECK(last && sscanf(last, "stats: %*u vms, %llu samples, %llu rejected frames", &c.samples,
	                     &c.rejected) == 2,
	      "no stats line with samples and rejected frames after SIGUSR1");
	next_tick = util_now_ms();
	return c;
}

/* ---- hostile writers: child processes that write to an attacker's stream at full speed ---- */

struct shared {
	unsigned long long bytes, frames;
};
static struct shared *shm; /* [2]: one per attack running at once */

typedef void (*attack_fn)(int fd, uint64_t end_ms, struct shared *out);

static pid_t attack_start(attack_fn fn, int fd, int ms, int slot)
{
	pid_t pid;

	memset(&shm[slot], 0, sizeof(shm[slot]));
	pid = fork();
	if (pid == 0) {
		/* on 2 cores, hostd, the test's loop (the bystander's guest) and two flooders
		 * compete: a flooder stands for another VM's vCPU, not for the bystander's, so it
		 * gets what is left over */
		if (nice(19) < 0)
			perror("nice");
		fn(fd, util_now_ms() + (uint64_t)ms, &shm[slot]);
		_exit(0);
	}
	return pid;
}

/* Runs the loop while an attack runs, then reaps it. */
static void attack_wait(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, WNOHANG) == 0)
		step(20);
}

static bool write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Ends a garbage run: a header that claims the most a frame can hold waits for that many bytes;
 * this many zeros settle every such claim (the CRC fails), so the next attack starts clean. */
static void flush_claims(int fd, struct shared *out)
{
	static const uint8_t zeros[FRAME_MAX_LEN + 16];

	if (write_all(fd, zeros, sizeof(zeros)))
		out->bytes += sizeof(zeros);
}

static void garbage_random(int fd, uint64_t end_ms, struct shared *out)
{
	uint64_t buf[8192], s = 0x9e3779b97f4a7c15ull;

	while (util_now_ms() < end_ms) {
		for (size_t i = 0; i < ARRAY_SIZE(buf); i++)
			buf[i] = xorshift(&s);
		if (!write_all(fd, buf, sizeof(buf)))
			return;
		out->bytes += sizeof(buf);
	}
	flush_claims(fd, out);
}

/* Valid headers that claim a full-size payload, 12 bytes apart, with wrong CRCs: every one
 * makes the decoder wait for 16 KiB and check it. Some claim more than the cap. */
static void garbage_headers(int fd, uint64_t end_ms, struct shared *out)
{
	uint8_t buf[12 * 4096];

	for (size_t i = 0; i < sizeof(buf); i += 12) {
		uint16_t len = i % 120 == 0 ? FRAME_MAX_PAYLOAD + 1 : FRAME_MAX_PAYLOAD;

		memcpy(buf + i, "VSCL", 4);
		buf[i + 4] = FRAME_VERSION;
		buf[i + 5] = FRAME_SAMPLE;
		buf[i + 6] = (uint8_t)len;
		buf[i + 7] = (uint8_t)(len >> 8);
		memset(buf + i + 8, 0xa5, 4);
	}
	while (util_now_ms() < end_ms) {
		if (!write_all(fd, buf, sizeof(buf)))
			return;
		out->bytes += sizeof(buf);
	}
	flush_claims(fd, out);
}

/* ---- phases ---- */

struct phase {
	const char *name;
	double t0, t1;
	long log0, log1;
	unsigned long rss0, hwm0, rss1, hwm1;
	double cpu0, cpu1;
	struct counters c0, c1;
	int decl0;
};

static unsigned long base_rss, base_hwm;

static void phase_begin(struct phase *ph, const char *name)
{
	memset(ph, 0, sizeof(*ph));
	ph->name = name;
	ph->c0 = hostd_counters();
	proc_mem(&ph->rss0, &ph->hwm0);
	ph->cpu0 = proc_cpu_s();
	ph->log0 = file_size(log_path);
	ph->decl0 = declog.n;
	ph->t0 = check_now_wall();
}

/* The bystander's decisions: each "hold saturated" entry names the sample it answers. Checks
 * that every saturated sample sent in the phase got its decision, within 1 s. */
static void check_bystander(const struct phase *ph)
{
	static double answered[ARRAY_SIZE(byst_sat_sent)];
	double worst = 0, now = check_now_wall(); /* the decision log was read just before */
	int checked = 0, missing = 0;

	for (int i = 0; i < declog.n; i++) {
		const struct check_entry *e = &entries[i];

		if (!strcmp(e->vm, names[BYST]) && !strcmp(e->reason, "saturated") && e->tid >= 1 &&
		    e->tid <= (unsigned)byst_nsat && !answered[e->tid - 1])
			answered[e->tid - 1] = e->ts;
	}
	for (int k = 1; k < byst_nsat; k++) { /* the first is the session's first: no window */
		double sent = byst_sat_sent[k];

		if (sent < ph->t0 || sent > ph->t1)
			continue;
		/* sent in the phase's last second and not answered yet: its second is not over */
		if (!answered[k] && now - sent < 1.0)
			continue;
		if (!answered[k] || answered[k] - sent >= 1.0) {
			missing++;
			printf("  %-10s bystander sample %d: %s %.3f s after it was sent\n",
			       ph->name, k + 1, answered[k] ? "answered" : "no answer",
			       answered[k] ? answered[k] - sent : now - sent);
			continue;
		}
		checked++;
		if (answered[k] - sent > worst)
			worst = answered[k] - sent;
	}
	CHECK(checked >= 3, "%s: only %d bystander decisions to time", ph->name, checked);
	CHECK(missing == 0, "%s: %d bystander samples got no decision within 1 s", ph->name,
	      missing);
	printf("  %-10s bystander: %d decisions, slowest %.0f ms after its sample\n", ph->name,
	       checked, worst * 1000);
}

static void phase_end(struct phase *ph)
{
	ph->t1 = check_now_wall();
	run_for(1000); /* the decisions for the phase's last samples */
	ph->c1 = hostd_counters();
	proc_mem(&ph->rss1, &ph->hwm1);
	ph->cpu1 = proc_cpu_s();
	ph->log1 = file_size(log_path);
	CHECK(hostd_alive(), "%s: hostd died", ph->name);
	check_bystander(ph);
	/* why the bound holds: hostd keeps at most one frame (16 KiB) of undecoded input and 64 KiB
	 * of output per VM, and the protobuf arena is static; everything the attacks send (tens of
	 * MiB) passes through those. A leak of one byte per frame or per KiB would overrun it. */
	CHECK(!RSS_MEANINGFUL || ph->rss1 <= base_rss + RSS_SLACK_KIB,
	      "%s: hostd RSS %lu KiB, was %lu KiB at start", ph->name, ph->rss1, base_rss);
	CHECK(!RSS_MEANINGFUL || ph->hwm1 <= base_hwm + RSS_SLACK_KIB,
	      "%s: hostd peak RSS %lu KiB, was %lu at start", ph->name, ph->hwm1, base_hwm);
	printf("  %-10s RSS %lu -> %lu KiB (peak %lu), hostd CPU %.2f s in %.1f s, "
	       "samples +%llu, rejected +%llu\n",
	       ph->name, ph->rss0, ph->rss1, ph->hwm1, ph->cpu1 - ph->cpu0, ph->t1 - ph->t0,
	       ph->c1.samples - ph->c0.samples, ph->c1.rejected - ph->c0.rejected);
}

/* Warnings about one VM's input in a phase: at most the rate limiter's. */
static void check_warn_rate(const struct phase *ph, int vm)
{
	char needle[64];
	int n, ceiling;

	snprintf(needle, sizeof(needle), "vm '%s': rejected", names[vm]);
	n = log_count(ph->log0, ph->log1, needle);
	ceiling = WARN_BURST + (int)((ph->t1 - ph->t0 + 2.0) / WARN_INTERVAL_S) + 1;
	CHECK(n <= ceiling, "%s: %d rejection warnings for %s, ceiling %d", ph->name, n, names[vm],
	      ceiling);
	printf("  %-10s %s: %d rejection warnings logged\n", ph->name, names[vm], n);
}

/* A hostile guest's own frames: sequence numbers after the fake guest's Hello, and how many of
 * its samples hostd must accept (the rest of what it sends must be rejected). */
static uint64_t hseq[NVM];

static unsigned long long expected_samples(const struct phase *ph, unsigned long long hostile)
{
	return ph->c1.good_sent - ph->c0.good_sent + hostile;
}

/* hostd's counts over the phase are exactly what was sent: `rejected` frames refused, and the
 * good guests' samples plus the hostile guest's `accepted` ones counted. */
static void check_counts(const struct phase *ph, unsigned long long rejected,
                         unsigned long long accepted)
{
	unsigned long long r = ph->c1.rejected - ph->c0.rejected;
	unsigned long long n = ph->c1.samples - ph->c0.samples;

	CHECK(r == rejected, "%s: hostd rejected %llu frames, want %llu", ph->name, r, rejected);
	CHECK(n == expected_samples(ph, accepted), "%s: %llu samples counted, want %llu", ph->name,
	      n, expected_samples(ph, accepted));
}

static int encode_sample(const struct sample *smp, enum frame_type type, uint8_t *buf, size_t cap)
{
	uint8_t payload[FRAME_MAX_PAYLOAD];
	int n = wire_encode_sample(smp, payload, sizeof(payload));

	return n < 0 ? n : frame_encode(type, payload, (size_t)n, buf, cap);
}

/* A sample a pinned VM holds on: 10% busy, 40% of 1 GiB available. */
static struct sample plain_sample(uint64_t seq)
{
	struct sample smp = {.seq = seq,
	                     .interval_ms = 200,
	                     .cpus_online = 1,
	                     .cpus_present = 1,
	                     .cpu_busy_pct = 10,
	                     .mem_total_kib = 1 << 20,
	                     .mem_avail_kib = 400 << 10};

	smp.has = 1u << SF_CPU_ONLINE | 1u << SF_CPU_PRESENT | 1u << SF_CPU_BUSY |
	          1u << SF_MEM_TOTAL | 1u << SF_MEM_AVAIL | 1u << SF_INTERVAL;
	return smp;
}

/* Restarts an attack on every new connection until the phase's time is up: hostd may drop a
 * stream that carries only junk, and the attacker's writes then fail. */
static unsigned attack_for(attack_fn fn, int vm, int ms, unsigned long long *ret_bytes,
                           unsigned long long *ret_frames)
{
	uint64_t end = util_now_ms() + (uint64_t)ms;
	unsigned sessions = 0;

	*ret_bytes = *ret_frames = 0;
	while (util_now_ms() < end) {
		pid_t pid;

		if (g[vm].fd < 0) {
			step(20);
			continue;
		}
		sessions++;
		pid = attack_start(fn, g[vm].fd, (int)(end - util_now_ms()), 0);
		attack_wait(pid);
		*ret_bytes += shm[0].bytes;
		*ret_frames += shm[0].frames;
		/* hostd hung up: let the fake guest see it before the next accept */
		for (int i = 0; i < 5 && g[vm].fd >= 0 && util_now_ms() < end; i++)
			step(20);
	}
	return sessions;
}

static void phase_garbage(void)
{
	unsigned long long bytes, frames, total = 0;
	unsigned hellos0 = g[FLOOD].hellos_sent, sessions;
	struct phase ph;

	phase_begin(&ph, "garbage");
	sessions = attack_for(garbage_random, FLOOD, 2000, &bytes, &frames);
	total += bytes;
	sessions += attack_for(garbage_headers, FLOOD, 2000, &bytes, &frames);
	total += bytes;
	phase_end(&ph);
	printf("  %-10s flood1: %llu KiB of garbage written in %u sessions\n", ph.name, total >> 10,
	       sessions);
	CHECK(total > 0, "no garbage was sent");
	/* garbage holds no frame: every sample hostd counted is a good guest's */
	CHECK(ph.c1.samples - ph.c0.samples == expected_samples(&ph, 0),
	      "garbage: hostd counted %llu samples, the good guests sent %llu",
	      ph.c1.samples - ph.c0.samples, expected_samples(&ph, 0));
	/* a stream of junk is dropped, and retried with backoff: 100 ms, 200 ms, 400 ms, ... */
	CHECK(g[FLOOD].hellos_sent - hellos0 >= 2,
	      "garbage: flood1 was never dropped (%u sessions)", sessions);
	CHECK(g[FLOOD].hellos_sent - hellos0 <= 8,
	      "garbage: hostd reconnected to flood1 %u times in 4 s",
	      g[FLOOD].hellos_sent - hellos0);
	/* what 4 s of junk cost hostd: a few streams of 64 KiB at most */
	CHECK(ph.cpu1 - ph.cpu0 < 1.0, "garbage: hostd used %.2f s of CPU", ph.cpu1 - ph.cpu0);
	check_warn_rate(&ph, FLOOD);
}

/* Frames of exactly FRAME_MAX_PAYLOAD bytes with good CRCs: first payloads that are not
 * protobuf (each rejected), then real samples padded to the cap with an unknown field (each
 * accepted). */
static void cap_junk(int fd, uint64_t end_ms, struct shared *out)
{
	static uint8_t payload[FRAME_MAX_PAYLOAD], buf[FRAME_MAX_LEN];
	int n;

	memset(payload, 0xff, sizeof(payload)); /* a varint that never ends */
	n = frame_encode(FRAME_SAMPLE, payload, sizeof(payload), buf, sizeof(buf));
	while (util_now_ms() < end_ms && write_all(fd, buf, (size_t)n)) {
		out->bytes += (size_t)n;
		out->frames++;
	}
}

static uint64_t cap_seq;

static void cap_padded(int fd, uint64_t end_ms, struct shared *out)
{
	static uint8_t payload[FRAME_MAX_PAYLOAD], buf[FRAME_MAX_LEN];

	while (util_now_ms() < end_ms) {
		struct sample smp = plain_sample(++cap_seq);
		int n = wire_encode_sample(&smp, payload, sizeof(payload));
		size_t pad = FRAME_MAX_PAYLOAD - (size_t)n - 4; /* tag and length: 2 bytes each */

		/* field 1000, length-delimited: tag 1000 << 3 | 2 = 8002, varint c2 3e */
		payload[n] = 0xc2;
		payload[n + 1] = 0x3e;
		payload[n + 2] = (uint8_t)(0x80 | (pad & 0x7f));
		payload[n + 3] = (uint8_t)(pad >> 7);
		memset(payload + n + 4, 'p', pad);
		n = frame_encode(FRAME_SAMPLE, payload, FRAME_MAX_PAYLOAD, buf, sizeof(buf));
		if (!write_all(fd, buf, (size_t)n))
			return;
		out->bytes += (size_t)n;
		out->frames++;
	}
}

static void phase_cap(void)
{
	unsigned long long bytes, junk, padded;
	struct phase ph;
	unsigned sessions;

	phase_begin(&ph, "size-cap");
	sessions = attack_for(cap_junk, CAP, 1500, &bytes, &junk);
	cap_seq = hseq[CAP];
	sessions += attack_for(cap_padded, CAP, 1500, &bytes, &padded);
	hseq[CAP] += padded;
	phase_end(&ph);
	printf("  %-10s cap1: %llu rejected and %llu accepted frames of %d bytes\n", ph.name, junk,
	       padded, FRAME_MAX_LEN);
	CHECK(sessions == 2, "size-cap: cap1's stream was dropped (%u sessions)", sessions);
	CHECK(junk > 0 && padded > 0, "size-cap: nothing sent");
	check_counts(&ph, junk, padded); /* junk: not protobuf */
	check_warn_rate(&ph, CAP);
}

/* Valid samples one byte per write, first 1 ms apart (every byte its own read), then as fast as
 * the socket takes them; then the start of a frame that claims 16 KiB, and silence. */
static void split_bytes(int fd, uint64_t end_ms, struct shared *out)
{
	uint64_t half = util_now_ms() + (end_ms - util_now_ms()) / 2;
	uint8_t buf[256];

	while (util_now_ms() < end_ms) {
		struct sample smp = plain_sample(hseq[SLOW] + out->frames + 1);
		int n = encode_sample(&smp, FRAME_SAMPLE, buf, sizeof(buf));

		for (int i = 0; i < n; i++) {
			if (!write_all(fd, buf + i, 1))
				return;
			if (util_now_ms() < half)
				usleep(1000);
		}
		out->bytes += (size_t)n;
		out->frames++;
	}
	memset(buf, 0, sizeof(buf));
	frame_encode(FRAME_SAMPLE, buf, 100, buf, sizeof(buf));
	buf[6] = (uint8_t)FRAME_MAX_PAYLOAD;
	buf[7] = (uint8_t)(FRAME_MAX_PAYLOAD >> 8);
	write_all(fd, buf, FRAME_HEADER_LEN + 100);
}

static void phase_split(void)
{
	unsigned long long bytes, frames;
	struct phase ph;
	unsigned sessions;

	phase_begin(&ph, "split");
	sessions = attack_for(split_bytes, SLOW, 3000, &bytes, &frames);
	hseq[SLOW] += frames;
	run_for(1500); /* the unfinished frame waits */
	phase_end(&ph);
	printf("  %-10s slow1: %llu samples sent a byte at a time, then a frame left unfinished\n",
	       ph.name, frames);
	CHECK(sessions == 1, "split: slow1's stream was dropped");
	CHECK(frames > 10, "split: only %llu frames sent", frames);
	check_counts(&ph, 0, frames);
}

/* ---- absurd values ---- */

struct absurd {
	uint8_t buf[8192];
	size_t len;
	unsigned rejected, accepted;
};

static void put(struct absurd *a, int n, bool accepted)
{
	if (n <= 0) {
		fprintf(stderr, "cannot encode an absurd frame: %d\n", n);
		exit(2);
	}
	a->len += (size_t)n;
	if (accepted)
		a->accepted++;
	else
		a->rejected++;
}

static void put_sample(struct absurd *a, const struct sample *smp, bool accepted)
{
	put(a, encode_sample(smp, FRAME_SAMPLE, a->buf + a->len, sizeof(a->buf) - a->len),
	    accepted);
}

/* Samples whose figures no guest can have: each is rejected and leaves the sequence alone. */
static void bad_values(struct absurd *a, uint64_t seq)
{
	static const float nan = __builtin_nanf("");
	struct sample smp;

#define BAD(stmt)                                                                                  \
	do {                                                                                       \
		smp = plain_sample(seq);                                                           \
		stmt;                                                                              \
		put_sample(a, &smp, false);                                                        \
	} while (0)
	BAD(smp.cpu_busy_pct = nan);
	BAD(smp.cpu_busy_pct = -5);
	BAD(smp.cpu_busy_pct = 1e12f);
	BAD((smp.cpu_steal_pct = __builtin_inff(), smp.has |= 1u << SF_CPU_STEAL));
	BAD(smp.mem_avail_kib = smp.mem_total_kib + 1);
	BAD(smp.cpus_online = 0);
	BAD(smp.cpus_online = 2);
	BAD(smp.cpus_online = smp.cpus_present = 5000);
	BAD(smp.mem_total_kib = 0);
	BAD(smp.mem_total_kib = (1ull << 50) + 1);
	BAD(smp.interval_ms = 0);
	BAD(smp.interval_ms = 3600 * 1000 + 1);
	BAD((smp.load1 = -1, smp.has |= 1u << SF_LOAD));
	BAD((smp.psi_cpu_some_avg10 = 101, smp.has |= 1u << SF_PSI_CPU_SOME));
	BAD((smp.swap_total_kib = 1, smp.swap_free_kib = 2, smp.has |= 1u << SF_SWAP));
	BAD((smp.rootfs_size_kib = 1, smp.rootfs_used_kib = 2, smp.has |= 1u << SF_ROOTFS));
	BAD((smp.mem_blocks_online = 1, smp.mem_block_kib = 0, smp.has |= 1u << SF_MEM_BLOCKS));
	BAD((smp.nthreads = 1, smp.threads[0].cpu_pct = nan, smp.has |= 1u << SF_THREADS));
#undef BAD
}

/* Frames that break the session rules or are not what a guest sends: each is rejected. */
static void bad_session(struct absurd *a, uint64_t last_seq)
{
	static const uint8_t not_protobuf[40] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	                                         0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct sample smp = plain_sample(last_seq); /* replayed */
	struct hello h = {.protocol_version = 2, .session_nonce = 7};
	struct request rq = {.id = 1, .kind = REQ_SET_ONLINE_VCPUS, .vcpus = 64};
	struct reply rp = {.id = 1, .status = (enum reply_status)99};
	uint8_t payload[512];
	size_t room;
	int n;

	put_sample(a, &smp, false);
	smp.seq = last_seq - 3; /* backwards */
	put_sample(a, &smp, false);
	smp.seq = 0;
	put_sample(a, &smp, false);
	room = sizeof(a->buf) - a->len;
	put(a,
	    frame_encode(FRAME_SAMPLE, not_protobuf, sizeof(not_protobuf), a->buf + a->len, room),
	    false);
	n = wire_encode_hello(&h, payload, sizeof(payload));
	room = sizeof(a->buf) - a->len;
	put(a, frame_encode(FRAME_HELLO, payload, (size_t)n, a->buf + a->len, room), false);
	n = wire_encode_request(&rq, payload, sizeof(payload));
	room = sizeof(a->buf) - a->len;
	put(a, frame_encode(FRAME_REQUEST, payload, (size_t)n, a->buf + a->len, room), false);
	n = wire_encode_reply(&rp, payload, sizeof(payload));
	room = sizeof(a->buf) - a->len;
	put(a, frame_encode(FRAME_REPLY, payload, (size_t)n, a->buf + a->len, room), false);
	rp = (struct reply){.id = 1, .status = REPLY_ACK, .has_vcpus_online = true};
	n = wire_encode_reply(&rp, payload, sizeof(payload)); /* 0 vCPUs online */
	room = sizeof(a->buf) - a->len;
	put(a, frame_encode(FRAME_REPLY, payload, (size_t)n, a->buf + a->len, room), false);
}

/* Figures that are absurd but possible, or counters that go backwards where that is allowed:
 * each accepted. Advances *seq. */
static void odd_values(struct absurd *a, uint64_t *seq, uint64_t now_ms)
{
	struct sample smp = plain_sample(++*seq);

	smp.mem_total_kib = 1ull << 50; /* 1 EiB */
	smp.mem_avail_kib = 0;
	put_sample(a, &smp, true);
	smp = plain_sample(++*seq);
	smp.cpus_online = 64;
	smp.cpus_present = 4096;
	put_sample(a, &smp, true);
	smp = plain_sample(++*seq); /* the guest's clock runs backwards */
	smp.mono_ms = now_ms - 100;
	put_sample(a, &smp, true);
	smp = plain_sample(++*seq);
	smp.mono_ms = now_ms - 900;
	put_sample(a, &smp, true);
}

/* The liar's trick at full speed: saturated, calm, saturated, ... each claiming a 60 s interval,
 * so that one sample would meet any window. */
static void flapping(struct absurd *a, uint64_t *seq)
{
	for (int i = 0; i < 20; i++) {
		struct sample smp = plain_sample(++*seq);

		smp.interval_ms = 60000;
		if (i % 2 == 0) {
			smp.cpu_busy_pct = 100;
			smp.saturated = true;
			smp.nthreads = 1;
			smp.threads[0] =
			        (struct sample_thread){.tid = 1, .comm = "spin", .cpu_pct = 100};
			smp.has |= 1u << SF_SATURATED | 1u << SF_THREADS;
		} else {
			smp.cpu_busy_pct = 50;
		}
		put_sample(a, &smp, true);
	}
}

/* One round of everything above on absurd1's stream; adds what hostd must reject and accept. */
static bool absurd_round(bool flap, unsigned long long *rejected, unsigned long long *accepted)
{
	struct absurd a = {.len = 0};

	odd_values(&a, &hseq[ABSURD], util_now_ms());
	bad_values(&a, hseq[ABSURD] + 1);
	bad_session(&a, hseq[ABSURD]);
	if (flap)
		flapping(&a, &hseq[ABSURD]);
	if (fg_raw(&g[ABSURD], a.buf, a.len) < 0)
		return false;
	*rejected += a.rejected;
	*accepted += a.accepted;
	return true;
}

static void phase_absurd(void)
{
	unsigned long long rejected = 0, accepted = 0, flaps = 0;
	struct phase ph;
	int rounds = 0, sat_entries = 0, hello_lines;
	uint64_t end;

	phase_begin(&ph, "absurd");
	/* a Hello with control characters and quotes: accepted, printed safely */
	{
		struct hello h = {.protocol_version = VSCALE_PROTOCOL_VERSION, .session_nonce = 99};
		uint8_t payload[256], buf[300];
		int n;

		snprintf(h.agent_version, sizeof(h.agent_version), "evil\n\x1b[31m'\"");
		snprintf(h.boot_id, sizeof(h.boot_id), "\r\t%%s%%n");
		n = wire_encode_hello(&h, payload, sizeof(payload));
		n = frame_encode(FRAME_HELLO, payload, (size_t)n, buf, sizeof(buf));
		CHECK(fg_raw(&g[ABSURD], buf, (size_t)n) == 0, "absurd1 not connected");
		hseq[ABSURD] = 0; /* a new session */
	}
	for (end = util_now_ms() + 3000; util_now_ms() < end; rounds++) {
		if (!absurd_round(rounds % 4 == 0, &rejected, &accepted))
			break;
		flaps += rounds % 4 == 0 ? 10 : 0;
		step(rounds % 8 == 0 ? 1 : 0);
	}
	phase_end(&ph);
	for (int i = ph.decl0; i < declog.n; i++)
		sat_entries += !strcmp(entries[i].vm, names[ABSURD]);
	hello_lines = log_count(ph.log0, ph.log1, "vm 'absurd1': guest agent");
	printf("  %-10s absurd1: %d rounds, %llu frames rejected, %llu accepted, %llu saturated "
	       "flaps, %d decision-log lines\n",
	       ph.name, rounds, rejected, accepted, flaps, sat_entries);
	CHECK(g[ABSURD].fd >= 0, "absurd: absurd1's stream was lost");
	check_counts(&ph, rejected, accepted);
	/* a claimed interval does not stretch the pinned policy's 10 s CPU window: no saturated
	 * hold in 3 s, whatever the flapping */
	CHECK(sat_entries == 0, "absurd: %d decision-log lines for absurd1 in 3 s (flapping)",
	      sat_entries);
	CHECK(hello_lines == 1 && !log_count(ph.log0, ph.log1, "\x1b"),
	      "absurd: the odd Hello logged %d times, or with control characters", hello_lines);
	check_warn_rate(&ph, ABSURD);
}

/* A guest that starts a new session again and again: each Hello is valid and accepted. Not
 * asserted (hostd's main.c logs every session at info, without a rate limit): the figure is
 * printed. */
static void hello_spam(void)
{
	long from = file_size(log_path);
	uint8_t payload[256], buf[300];
	int lines, n;

	for (int i = 0; i < 200; i++) {
		struct hello h = {.protocol_version = VSCALE_PROTOCOL_VERSION,
		                  .session_nonce = 1000 + (uint64_t)i};

		snprintf(h.agent_version, sizeof(h.agent_version), "spam");
		n = wire_encode_hello(&h, payload, sizeof(payload));
		n = frame_encode(FRAME_HELLO, payload, (size_t)n, buf, sizeof(buf));
		if (fg_raw(&g[ABSURD], buf, (size_t)n) < 0)
			break;
	}
	hseq[ABSURD] = 0;
	run_for(500);
	lines = log_count(from, file_size(log_path), "vm 'absurd1': guest agent spam connected");
	printf("  %-10s absurd1: 200 Hellos in a burst, %d info lines logged for them\n",
	       "hello-spam", lines);
	CHECK(hostd_alive(), "hostd died after a burst of Hellos");
}

/* All at once: full-size junk frames on cap1 and fake headers on flood1 (two writers), absurd
 * rounds on absurd1, while the bystander and the liar go on. */
static void phase_together(void)
{
	unsigned long long rejected = 0, accepted = 0, junk;
	pid_t cap, flood = -1;
	struct phase ph;
	uint64_t end;
	int rounds = 0;

	phase_begin(&ph, "together");
	cap = attack_start(cap_junk, g[CAP].fd, 3000, 0);
	if (g[FLOOD].fd >= 0)
		flood = attack_start(garbage_headers, g[FLOOD].fd, 3000, 1);
	for (end = util_now_ms() + 3000; util_now_ms() < end; rounds++) {
		if (!absurd_round(false, &rejected, &accepted))
			break;
		step(rounds % 8 == 0 ? 1 : 0);
	}
	attack_wait(cap);
	if (flood > 0)
		attack_wait(flood);
	junk = shm[0].frames;
	phase_end(&ph);
	printf("  %-10s cap1 %llu full-size junk frames, flood1 %llu KiB of fake headers, absurd1 "
	       "%d rounds\n",
	       ph.name, junk, shm[1].bytes >> 10, rounds);
	CHECK(g[CAP].fd >= 0 && g[ABSURD].fd >= 0, "together: cap1's or absurd1's stream was lost");
	check_counts(&ph, rejected + junk, accepted); /* absurd and junk frames */
	check_warn_rate(&ph, CAP);
	check_warn_rate(&ph, ABSURD);
}

/* ---- the channel storm ---- */

static void phase_storm(void)
{
	unsigned accepts_close, accepts_hello;
	uint64_t end;
	struct phase ph;
	int closed_lines;

	phase_begin(&ph, "storm");
	close(g[STORM].fd); /* the session that lasted ends; hostd comes back in 100 ms */
	g[STORM].fd = -1;
	storming = true;
	storm_hello = false;
	storm_accepts = 0;
	run_for(3000);
	accepts_close = storm_accepts;
	storm_hello = true;
	storm_accepts = 0;
	run_for(3000);
	accepts_hello = storm_accepts;
	storming = false;
	phase_end(&ph);
	closed_lines = log_count(ph.log0, ph.log1, "vm 'storm1': guest stream closed");
	printf("  %-10s storm1: %u connections accepted and closed at once in 3 s, %u after a Hello "
	       "and a sample in 3 s; %d 'stream closed' lines\n",
	       ph.name, accepts_close, accepts_hello, closed_lines);
	/* backoff from 100 ms doubling to 5 s: 100, 300, 700, 1500, 3100 ms, ... after the first
	 * close, so about 5 in the first 3 s and 1 or 2 in the next; a spinning hostd makes
	 * thousands, one that retries every 100 ms about 30 per 3 s */
	CHECK(accepts_close >= 2 && accepts_close <= 8, "storm: %u connections in 3 s",
	      accepts_close);
	CHECK(accepts_hello <= 4, "storm: %u connections in 3 s with a Hello each", accepts_hello);
	CHECK(ph.cpu1 - ph.cpu0 < 0.5, "storm: hostd used %.2f s of CPU", ph.cpu1 - ph.cpu0);
	/* when the storm ends hostd comes back within its longest backoff */
	for (end = util_now_ms() + 8000; util_now_ms() < end && g[STORM].fd < 0;)
		step(20);
	CHECK(g[STORM].fd >= 0, "storm: hostd did not come back to storm1");
}

/* ---- the lying guest, over the whole run ---- */

static void check_liar(void)
{
	const uint64_t host_limit_kib = HOST_TOTAL_KIB - HOST_RESERVE_KIB - OTHERS_KIB;
	double last_vcpu = 0, last_mem = 0, first = 0, min_vcpu_gap = 1e9, min_mem_gap = 1e9;
	unsigned vcpus_max = 0, nvcpu = 0, nmem = 0, host_full = 0;
	unsigned long long mem_max = 0;

	for (int i = 0; i < declog.n; i++) {
		const struct check_entry *e = &entries[i];

		if (strcmp(e->vm, names[LIAR]))
			continue;
		vcpus_max = e->v1 > vcpus_max ? e->v1 : vcpus_max;
		mem_max = e->m1 > mem_max ? e->m1 : mem_max;
		host_full += !strcmp(e->reason, "host-full");
		if (strcmp(e->outcome, "started"))
			continue;
		if (!first)
			first = e->ts;
		if (!strcmp(e->action, "vcpu-up")) {
			if (last_vcpu && e->ts - last_vcpu < min_vcpu_gap)
				min_vcpu_gap = e->ts - last_vcpu;
			last_vcpu = e->ts;
			nvcpu++;
		} else if (!strcmp(e->action, "mem-up")) {
			if (last_mem && e->ts - last_mem < min_mem_gap)
				min_mem_gap = e->ts - last_mem;
			last_mem = e->ts;
			nmem++;
		}
	}
	printf("liar1: %u vcpu-up (closest %.2f s apart), %u mem-up (closest %.2f s apart), "
	       "vcpus max %u, memory max %llu MiB, first action %.2f s after its first sample\n",
	       nvcpu, min_vcpu_gap, nmem, min_mem_gap, vcpus_max, mem_max >> 10,
	       first - liar_first_sent);
	CHECK(vcpus_max <= LIAR_VCPUS_MAX, "liar1 got %u vCPUs, policy max %u", vcpus_max,
	      LIAR_VCPUS_MAX);
	CHECK(nvcpu == LIAR_VCPUS_MAX - 1, "liar1: %u vcpu-up, want %u (1 to the max)", nvcpu,
	      LIAR_VCPUS_MAX - 1);
	CHECK(mem_max <= host_limit_kib && mem_max <= LIAR_MEM_MAX_KIB,
	      "liar1 got %llu MiB, the host can give it %llu MiB", mem_max >> 10,
	      (unsigned long long)host_limit_kib >> 10);
	CHECK(mem_max == host_limit_kib, "liar1 stopped at %llu MiB before the host was full",
	      mem_max >> 10);
	CHECK(host_full >= 1, "liar1: no host-full hold in the decision log");
	/* cooldowns count from the start of an action; its decision-log line is written in the
	 * same call, ms-rounded (without them, actions would come one 1 s window apart) */
	CHECK(nvcpu >= 2 && min_vcpu_gap >= VCPU_COOLDOWN_S - 0.1,
	      "liar1: vcpu-up %.3f s apart, cooldown %.0f s", min_vcpu_gap, VCPU_COOLDOWN_S);
	CHECK(nmem >= 2 && min_mem_gap >= MEM_COOLDOWN_S - 0.1,
	      "liar1: mem-up %.3f s apart, cooldown %.0f s", min_mem_gap, MEM_COOLDOWN_S);
	/* its 60 s interval does not buy it the 1 s window: hostd credits a sample with at most
	 * 1.25 times the gap it saw before it, so the first action comes 0.8 s after the first
	 * sample with samples 200 ms apart (0.45 s at the earliest, whatever the gaps) */
	CHECK(first - liar_first_sent >= LIAR_WINDOW_S / 2,
	      "liar1 acted %.3f s after its first sample, window %.0f s", first - liar_first_sent,
	      LIAR_WINDOW_S);
}

/* Rejection warnings over the whole run: the rate limiter's ceiling per VM. */
static void check_warn_totals(double secs)
{
	long end = file_size(log_path);
	int ceiling = WARN_BURST + (int)(secs / WARN_INTERVAL_S) + 1;

	for (int i = 0; i < NVM; i++) {
		char needle[64];
		int n;

		snprintf(needle, sizeof(needle), "vm '%s': rejected", names[i]);
		n = log_count(0, end, needle);
		CHECK(n <= ceiling, "%s: %d rejection warnings in %.0f s, ceiling %d", names[i], n,
		      secs, ceiling);
	}
}

int main(int argc, char **argv)
{
	char path[300];
	double t_start;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH-TO-vscale-hostd\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	shm = mmap(NULL, 2 * sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
	           0);
	if (shm == MAP_FAILED || !mkdtemp(dir))
		return 2;
	snprintf(declog_path, sizeof(declog_path), "%s/state/decisions.jsonl", dir);
	snprintf(log_path, sizeof(log_path), "%s/hostd.log", dir);
	snprintf(conf_path, sizeof(conf_path), "%s/vscale.conf", dir);
	snprintf(path, sizeof(path), "%s/node.xml", dir);
	from_template("node.xml.in", path);
	from_template("vscale.conf.in", conf_path);
	for (int i = 0; i < NVM; i++) {
		snprintf(path, sizeof(path), "%s/%s.sock", dir, names[i]);
		if (fg_init(&g[i], path, 1, 900 * 1024) < 0) {
			perror(path);
			return 2;
		}
		g[i].sending = i == BYST || i == LIAR || i == STORM;
		g[i].reply_mode = FG_SILENT;
	}
	/* the liar: always 100% busy, nothing available, 64 CPUs online, a 60 s interval */
	g[LIAR].busy_pct = 100;
	g[LIAR].avail_pct = 0;
	g[LIAR].cpus_online = g[LIAR].cpus_present = 64;
	g[LIAR].mem_total_kib = 1900 * 1024;
	g[LIAR].interval_ms = 60000;
	g[LIAR].reply_mode = FG_ACK;

	t_start = check_now_wall();
	hostd = check_start_daemon(argv[1], conf_path, log_path);
	run_for(1500);
	for (int i = 0; i < NVM; i++)
		CHECK(g[i].hellos_sent == 1, "%s: %u sessions at start", names[i],
		      g[i].hellos_sent);
	g[STORM].sending = false; /* its samples come from the storm */
	proc_mem(&base_rss, &base_hwm);
	printf("hostd pid %d: RSS %lu KiB, peak %lu KiB after start%s\n", (int)hostd, base_rss,
	       base_hwm, RSS_MEANINGFUL ? "" : " (AddressSanitizer: RSS not bounded)");

	phase_garbage();
	phase_cap();
	phase_split();
	phase_absurd();
	hello_spam();
	phase_together();
	phase_storm();
	check_declog_follow(&declog);
	check_liar();
	check_warn_totals(check_now_wall() - t_start);

	CHECK(stop_child(hostd) == 0, "hostd did not stop cleanly");
	for (int i = 0; i < NVM; i++)
		fg_fini(&g[i]);
	check_finish(dir, 60);
	printf("%d passed, %d failed (%.0f s)\n", passed, failed, check_now_wall() - t_start);
	return failed ? 1 : 0;
}
