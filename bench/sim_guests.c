/* N simulated guests in one process, for the hostd fan-in benchmark (bench/fanin.sh). Each
 * listens on DIR/gNNNNN.sock as QEMU's channel does, takes one connection, sends Hello and then
 * `rate` samples a second, the guests' sends spread evenly over each period. The figures stay
 * inside the default policy's hold band, so hostd decides HOLD and calls no libvirt verb.
 * Samples carry CLOCK_MONOTONIC ms so hostd can tell their age. epoll, non-blocking; reads and
 * discards whatever hostd sends. Prints one line when all listen and a summary at the end. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "frame.h"
#include "util.h"
#include "wire.h"

#define OUT_CAP 512 /* one frame in flight: a guest whose socket is full skips samples */

struct guest {
	int fd; /* listening until accepted, then the stream; -1 when gone */
	bool accepted;
	uint64_t seq;
	uint16_t out_off, out_len;
	uint8_t out[OUT_CAP];
};

struct sim {
	const char *dir;
	unsigned count;
	unsigned seconds;
	double rate;
	int ep;
	struct guest *g;
	unsigned listening, streams;
	uint64_t sent, skipped, lost; /* samples; samples not sent (socket full); streams closed */
	uint64_t max_late_us;         /* worst lag of a send behind its schedule */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void sock_path(const struct sim *S, unsigned i, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/g%05u.sock", S->dir, i);
}

static int listen_on(struct sim *S, unsigned i)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
	int fd;

	sock_path(S, i, sa.sun_path, sizeof(sa.sun_path));
	unlink(sa.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0 ||
	    epoll_ctl(S->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	S->g[i].fd = fd;
	return 0;
}

static void drop(struct sim *S, struct guest *g)
{
	if (g->fd < 0)
		return;
	close(g->fd); /* also leaves the epoll set */
	g->fd = -1;
	if (g->accepted)
		S->streams--;
	else
		S->listening--;
	S->lost++;
}

static void want_out(struct sim *S, struct guest *g, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
	                         .data.u32 = (uint32_t)(g - S->g)};

	epoll_ctl(S->ep, EPOLL_CTL_MOD, g->fd, &ev);
}

static void flush(struct sim *S, struct guest *g)
{
	while (g->out_off < g->out_len) {
		ssize_t n = send(g->fd, g->out + g->out_off, g->out_len - g->out_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				want_out(S, g, true);
				return;
			}
			drop(S, g);
			return;
		}
		g->out_off += (uint16_t)n;
	}
	g->out_off = g->out_len = 0;
}

/* Queues one frame; false when the previous one has not left yet. */
static bool queue(struct sim *S, struct guest *g, enum frame_type t, const uint8_t *p, int len)
{
	int n;

	if (len < 0 || g->out_len)
		return false;
	n = frame_encode(t, p, (size_t)len, g->out, sizeof(g->out));
	if (n < 0)
		return false;
	g->out_len = (uint16_t)n;
	g->out_off = 0;
	flush(S, g);
	return true;
}

static void send_hello(struct sim *S, struct guest *g)
{
	struct hello h = {.protocol_version = VSCALE_PROTOCOL_VERSION,
	                  .session_nonce = util_random64(),
	                  .caps = CAP_CPU_ONLINE | CAP_MEM_ONLINE | CAP_MEM_OFFLINE | CAP_THREADS};
	uint8_t buf[256];

	snprintf(h.agent_version, sizeof(h.agent_version), "sim");
	snprintf(h.boot_id, sizeof(h.boot_id), "sim-boot-%05u", (unsigned)(g - S->g));
	queue(S, g, FRAME_HELLO, buf, wire_encode_hello(&h, buf, sizeof(buf)));
}

/* A 1-vCPU, 2 GiB guest about half busy with 30% of its memory available: inside the default
 * policy's band (cpu 30%..80%, MemAvailable 15%..50%). Figures wobble a little per sample. */
static void fill_sample(struct sample *s, uint64_t seq, double rate, unsigned who)
{
	static const char *comm[] = {"postgres", "java", "nginx", "kworker/0:1", "sshd"};
	const uint64_t total = 2008096; /* 2 GiB minus what the kernel reserves */
	unsigned w = (unsigned)((seq * 7919u + who * 104729u) % 11u); /* 0..10 */

	memset(s, 0, sizeof(*s));
	s->seq = seq;
	s->mono_ms = util_now_ms();
	s->interval_ms = (uint32_t)(1000.0 / rate);
	s->cpus_online = s->cpus_present = 1;
	s->cpu_busy_pct = 45.0f + (float)w;
	s->cpu_steal_pct = 0.5f;
	s->load1 = 0.62f;
	s->load5 = 0.55f;
	s->load15 = 0.51f;
	s->psi_cpu_some_avg10 = 2.1f;
	s->mem_total_kib = total;
	s->mem_avail_kib = total * (25 + w) / 100;
	s->mem_free_kib = s->mem_avail_kib / 3;
	s->psi_mem_some_avg10 = 0.1f;
	s->mem_blocks_online = 16;
	s->mem_block_kib = 131072;
	s->rootfs_size_kib = 20511312;
	s->rootfs_used_kib = 6213308;
	s->nthreads = 5;
	for (unsigned i = 0; i < 5; i++) {
		s->threads[i].tid = 300 + 17 * i;
		snprintf(s->threads[i].comm, sizeof(s->threads[i].comm), "%s", comm[i]);
		s->threads[i].cpu_pct = 20.0f / (float)(i + 1);
	}
	s->has = 1u << SF_CPU_ONLINE | 1u << SF_CPU_PRESENT | 1u << SF_CPU_BUSY |
	         1u << SF_CPU_STEAL | 1u << SF_LOAD | 1u << SF_PSI_CPU_SOME |
	         1u << SF_PSI_CPU_FULL | 1u << SF_MEM_TOTAL | 1u << SF_MEM_AVAIL |
	         1u << SF_MEM_FREE | 1u << SF_SWAP | 1u << SF_PSI_MEM_SOME | 1u << SF_PSI_MEM_FULL |
	         1u << SF_MEM_BLOCKS | 1u << SF_ROOTFS | 1u << SF_SATURATED | 1u << SF_THREADS |
	         1u << SF_INTERVAL;
}

static void send_sample(struct sim *S, struct guest *g)
{
	struct sample s;
	uint8_t buf[OUT_CAP];

	if (g->fd < 0 || !g->accepted)
		return;
	fill_sample(&s, g->seq + 1, S->rate, (unsigned)(g - S->g));
	if (!queue(S, g, FRAME_SAMPLE, buf, wire_encode_sample(&s, buf, sizeof(buf)))) {
		S->skipped++;
		return;
	}
	g->seq++;
	S->sent++;
}

static void on_event(struct sim *S, const struct epoll_event *e)
{
	struct guest *g = &S->g[e->data.u32];
	struct epoll_event in = {.events = EPOLLIN, .data.u32 = e->data.u32};
	uint8_t buf[4096];
	int fd;

	if (g->fd < 0)
		return;
	if (!g->accepted) {
		fd = accept4(g->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		close(g->fd); /* one connection per guest: give the listening fd back */
		g->fd = fd;
		g->accepted = true;
		S->listening--;
		S->streams++;
		if (epoll_ctl(S->ep, EPOLL_CTL_ADD, fd, &in) < 0) {
			drop(S, g);
			return;
		}
		send_hello(S, g);
		return;
	}
	if (e->events & EPOLLOUT) {
		flush(S, g);
		if (g->fd >= 0 && !g->out_len)
			want_out(S, g, false);
	}
	if (g->fd >= 0 && (e->events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
		ssize_t n = recv(g->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			drop(S, g);
	}
}

/* Guest i's k-th sample is due at start + (k * count + i) * period / count: one global
 * sequence j = k * count + i walks the guests round-robin at an even pace. */
static void run(struct sim *S)
{
	const uint64_t period_us = (uint64_t)(1e6 / S->rate);
	uint64_t start = util_now_us(), end = start + (uint64_t)S->seconds * 1000000u, j = 0;
	struct epoll_event ev[256];

	while (!stop) {
		uint64_t now = util_now_us(), due;
		int timeout_ms, n;

		if (now >= end)
			break;
		for (;;) {
			due = start + j * period_us / S->count;
			if (due > now)
				break;
			if (now - due > S->max_late_us)
				S->max_late_us = now - due;
			send_sample(S, &S->g[j % S->count]);
			j++;
		}
		timeout_ms = (int)((due - now + 999) / 1000);
		n = epoll_wait(S->ep, ev, (int)ARRAY_SIZE(ev), timeout_ms);
		for (int i = 0; i < n; i++)
			on_event(S, &ev[i]);
	}
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: sim_guests --dir DIR --count N [--seconds S] [--rate R]\n"
	             "Simulates N vscale guests on DIR/gNNNNN.sock, R samples/s each (default 1),\n"
	             "for S seconds (default 60) or until SIGTERM.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"dir", required_argument, NULL, 'd'},     {"count", required_argument, NULL, 'n'},
	        {"seconds", required_argument, NULL, 's'}, {"rate", required_argument, NULL, 'r'},
	        {"help", no_argument, NULL, 'h'},          {0}};
	struct sim S = {.seconds = 60, .rate = 1.0};
	char path[PATH_MAX];
	int o, r;

	while ((o = getopt_long(argc, argv, "d:n:s:r:h", opts, NULL)) != -1) {
		switch (o) {
		case 'd':
			S.dir = optarg;
			break;
		case 'n':
			S.count = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			S.seconds = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			S.rate = strtod(optarg, NULL);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (!S.dir || S.count == 0 || S.count > 99999 || !(S.rate > 0 && S.rate <= 1000)) {
		usage(stderr);
		return 1;
	}
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	S.ep = epoll_create1(EPOLL_CLOEXEC);
	S.g = calloc(S.count, sizeof(*S.g));
	if (S.ep < 0 || !S.g) {
		perror("sim_guests");
		return 1;
	}
	for (unsigned i = 0; i < S.count; i++) {
		r = listen_on(&S, i);
		if (r < 0) {
			sock_path(&S, i, path, sizeof(path));
			fprintf(stderr, "sim_guests: %s: %s\n", path, strerror(-r));
			return 1;
		}
		S.listening++;
	}
	fprintf(stderr, "sim_guests: %u listening in %s\n", S.count, S.dir);
	run(&S);
	for (unsigned i = 0; i < S.count; i++) {
		if (S.g[i].fd >= 0)
			close(S.g[i].fd);
		sock_path(&S, i, path, sizeof(path));
		unlink(path);
	}
	fprintf(stderr,
	        "sim_guests: %u guests, %u connected at the end, %llu samples sent, %llu skipped "
	        "(socket full), %llu streams closed by the reader, sends at most %.1f ms late\n",
	        S.count, S.streams, (unsigned long long)S.sent, (unsigned long long)S.skipped,
	        (unsigned long long)S.lost, (double)S.max_late_us / 1000.0);
	free(S.g);
	close(S.ep);
	return 0;
}
