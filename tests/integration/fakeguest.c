/* Fake guests speaking the vscale protocol from the guest's side over listening unix sockets:
 * the hostd end-to-end tests and the fan-in benchmark drive hostd with these. */
#include "fakeguest.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"
#include "wire.h"

int fg_init(struct fakeguest *g, const char *path, uint32_t cpus, uint64_t mem_total_kib)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	memset(g, 0, sizeof(*g));
	snprintf(g->path, sizeof(g->path), "%s", path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	g->fd = -1;
	g->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g->lfd < 0 || bind(g->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(g->lfd, 4) < 0)
		return -errno;
	g->sending = true;
	g->busy_pct = 10;
	g->avail_pct = 40;
	g->cpus_online = cpus;
	g->cpus_present = cpus;
	g->mem_total_kib = mem_total_kib;
	frame_dec_init(&g->dec);
	return 0;
}

void fg_fini(struct fakeguest *g)
{
	if (g->fd >= 0)
		close(g->fd);
	if (g->lfd >= 0)
		close(g->lfd);
	unlink(g->path);
	frame_dec_fini(&g->dec);
}

static void send_frame(struct fakeguest *g, enum frame_type t, const uint8_t *p, int n)
{
	uint8_t buf[FRAME_MAX_LEN];
	int m = frame_encode(t, p, (size_t)n, buf, sizeof(buf));

	if (g->fd >= 0 && m > 0 && send(g->fd, buf, (size_t)m, MSG_NOSIGNAL) != m) {
		close(g->fd);
		g->fd = -1;
	}
}

static void send_hello(struct fakeguest *g)
{
	struct hello h = {.protocol_version = VSCALE_PROTOCOL_VERSION,
	                  .session_nonce = util_random64(),
	                  .caps = CAP_CPU_ONLINE | CAP_MEM_ONLINE | CAP_MEM_OFFLINE | CAP_THREADS};
	uint8_t buf[256];
	int n;

	snprintf(h.agent_version, sizeof(h.agent_version), "fake");
	snprintf(h.boot_id, sizeof(h.boot_id), "fake-boot");
	n = wire_encode_hello(&h, buf, sizeof(buf));
	send_frame(g, FRAME_HELLO, buf, n);
	g->hellos_sent++;
}

static void answer(struct fakeguest *g, const struct request *rq)
{
	struct reply rp = {.id = rq->id};
	uint8_t buf[256];
	int n;

	g->requests++;
	if (g->reply_mode == FG_SILENT)
		return;
	if (g->reply_mode == FG_REFUSE) {
		rp.status = REPLY_REFUSED;
		snprintf(rp.reason, sizeof(rp.reason), "fake guest refuses");
		g->refusals++;
	} else {
		rp.status = REPLY_ACK;
		g->acks++;
		if (rq->kind == REQ_SET_ONLINE_VCPUS) {
			g->last_vcpus_req = rq->vcpus;
			if (rq->vcpus <= g->cpus_present)
				g->cpus_online = rq->vcpus;
			rp.has_vcpus_online = true;
			rp.vcpus_online = g->cpus_online;
		} else if (rq->kind == REQ_SHRINK_MEMORY) {
			g->last_mem_req_kib = rq->mem_total_kib;
			rp.has_mem_offlined = true;
			rp.mem_offlined_kib = g->mem_total_kib > rq->mem_total_kib
			                              ? g->mem_total_kib - rq->mem_total_kib
			                              : 0;
			g->mem_total_kib -= rp.mem_offlined_kib;
			rp.has_mem_total = true;
			rp.mem_total_kib = g->mem_total_kib;
		}
	}
	n = wire_encode_reply(&rp, buf, sizeof(buf));
	send_frame(g, FRAME_REPLY, buf, n);
}

static void read_from(struct fakeguest *g)
{
	uint8_t buf[4096];
	ssize_t n = recv(g->fd, buf, sizeof(buf), MSG_DONTWAIT);
	struct frame f;
	struct request rq;

	if (n == 0 || (n < 0 && errno != EAGAIN)) {
		close(g->fd);
		g->fd = -1;
		frame_dec_reset(&g->dec);
		return;
	}
	if (n < 0)
		return;
	frame_dec_feed(&g->dec, buf, (size_t)n);
	while (frame_dec_next(&g->dec, &f) == 1)
		if (f.type == FRAME_REQUEST && wire_decode_request(f.payload, f.len, &rq) == 0)
			answer(g, &rq);
}

void fg_poll(struct fakeguest *g, int n, int ms)
{
	struct pollfd p[2 * 64];
	int np = 0;

	if (n > 64)
		n = 64;
	for (int i = 0; i < n; i++) {
		p[np++] =
		        (struct pollfd){.fd = g[i].fd >= 0 ? g[i].fd : g[i].lfd, .events = POLLIN};
	}
	if (poll(p, (nfds_t)np, ms) <= 0)
		return;
	for (int i = 0; i < n; i++) {
		if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (g[i].fd < 0) {
			g[i].fd = accept4(g[i].lfd, NULL, NULL, SOCK_CLOEXEC);
			if (g[i].fd >= 0) {
				frame_dec_reset(&g[i].dec);
				send_hello(&g[i]);
			}
		} else {
			read_from(&g[i]);
		}
	}
}

void fg_tick(struct fakeguest *g, int n, uint64_t now_ms)
{
	for (int i = 0; i < n; i++) {
		struct sample s = {0};
		uint8_t buf[1024];
		int len;

		if (g[i].fd < 0 || !g[i].sending)
			continue;
		if (g[i].pending_cpus && g[i].seq >= g[i].pending_seq) {
			g[i].cpus_present = g[i].cpus_online = g[i].pending_cpus;
			g[i].pending_cpus = 0;
		}
		s.seq = ++g[i].seq;
		s.mono_ms = now_ms;
		s.interval_ms = g[i].interval_ms ? g[i].interval_ms : 200;
		s.cpus_online = g[i].cpus_online;
		s.cpus_present = g[i].cpus_present;
		s.cpu_busy_pct = (float)g[i].busy_pct;
		s.mem_total_kib = g[i].mem_total_kib;
		s.mem_avail_kib = (uint64_t)((double)g[i].mem_total_kib * g[i].avail_pct / 100.0);
		s.mem_free_kib = s.mem_avail_kib / 2;
		s.saturated = g[i].saturated;
		s.has = 1u << SF_CPU_ONLINE | 1u << SF_CPU_PRESENT | 1u << SF_CPU_BUSY |
		        1u << SF_MEM_TOTAL | 1u << SF_MEM_AVAIL | 1u << SF_MEM_FREE |
		        1u << SF_SATURATED | 1u << SF_THREADS | 1u << SF_INTERVAL;
		if (g[i].saturated) {
			s.nthreads = 1;
			s.threads[0] =
			        (struct sample_thread){.tid = g[i].hot_tid ? g[i].hot_tid : 4242,
			                               .comm = "spinner",
			                               .cpu_pct = 100.0f};
		}
		len = wire_encode_sample(&s, buf, sizeof(buf));
		send_frame(&g[i], FRAME_SAMPLE, buf, len);
	}
}

void fg_step(struct fakeguest *g, int n, uint64_t *next_ms)
{
	uint64_t now = util_now_ms();

	if (now >= *next_ms) {
		fg_tick(g, n, now);
		*next_ms = now + 200;
	}
	fg_poll(g, n, 20);
}

int fg_raw(struct fakeguest *g, const void *buf, size_t len)
{
	if (g->fd < 0)
		return -ENOTCONN;
	return send(g->fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}

unsigned fg_accept_close(struct fakeguest *g, bool hello, uint64_t now_ms)
{
	unsigned n = 0;
	int fd;

	if (g->fd >= 0)
		return 0;
	while ((fd = accept4(g->lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		n++;
		if (hello) {
			g->fd = fd;
			send_hello(g);
			fg_tick(g, 1, now_ms);
			fd = g->fd; /* -1 when a send failed and closed it */
			g->fd = -1;
		}
		if (fd >= 0)
			close(fd);
	}
	return n;
}
