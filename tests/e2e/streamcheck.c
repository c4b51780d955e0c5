/* e2e-streamcheck: the host end of the e2e test guest's two channels, for shell scripts.
 *
 *   e2e-streamcheck watch SOCK [SECONDS]
 *       Connects to the org.vscale.agent.0 channel's unix socket, decodes the guest agent's
 *       stream with common/ and prints one line per frame ("hello ...", "sample ...", "reply ...")
 *       as key=value words, each with t_ms (host CLOCK_REALTIME, ms), plus "error ..." lines for
 *       what breaks the protocol (undecodable message, sequence going backwards in a session).
 *       Runs SECONDS (0: until SIGTERM/SIGINT; exits 0) or until EOF (exits 3).
 *   e2e-streamcheck cmd SOCK [-t SECONDS] COMMAND...
 *       Sends each COMMAND as a line to the load controller (org.vscale.test.0 channel) with a
 *       tag, prints each reply without it, drops stale lines. Exits 0 when every reply is "ok",
 *       1 when one is not, 2 on timeout or when the socket does not answer. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chansock.h"
#include "frame.h"
#include "util.h"
#include "wire.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct watch {
	bool in_session;
	uint64_t last_seq;
	unsigned hellos, samples, replies, errors;
};

static void print_hello(struct watch *w, const struct frame *f)
{
	struct hello h;

	if (wire_decode_hello(f->payload, f->len, &h) < 0) {
		printf("error t_ms=%" PRIu64 " what=hello-does-not-decode len=%zu\n", wall_ms(),
		       f->len);
		w->errors++;
		return;
	}
	w->in_session = true;
	w->last_seq = 0;
	w->hellos++;
	printf("hello t_ms=%" PRIu64 " proto=%u agent=%s nonce=%016" PRIx64 " boot=%s caps=0x%x\n",
	       wall_ms(), h.protocol_version, h.agent_version[0] ? h.agent_version : "-",
	       h.session_nonce, h.boot_id[0] ? h.boot_id : "-", h.caps);
}

static void print_sample(struct watch *w, const struct frame *f)
{
	struct sample s;
	char top[256] = "-";
	size_t off = 0;

	if (wire_decode_sample(f->payload, f->len, &s) < 0) {
		printf("error t_ms=%" PRIu64 " what=sample-does-not-decode len=%zu\n", wall_ms(),
		       f->len);
		w->errors++;
		return;
	}
	if (!w->in_session)
		printf("warn t_ms=%" PRIu64 " what=sample-before-hello seq=%" PRIu64 "\n",
		       wall_ms(), s.seq);
	else if (w->last_seq && s.seq <= w->last_seq) {
		printf("error t_ms=%" PRIu64 " what=seq-not-increasing seq=%" PRIu64
		       " last=%" PRIu64 "\n",
		       wall_ms(), s.seq, w->last_seq);
		w->errors++;
	}
	w->last_seq = s.seq;
	w->samples++;
	for (uint32_t i = 0; i < s.nthreads && off < sizeof(top) - 40; i++)
		off += (size_t)snprintf(top + off, sizeof(top) - off, "%s%u:%s:%.0f", i ? "," : "",
		                        s.threads[i].tid, s.threads[i].comm, s.threads[i].cpu_pct);
#define NUM(field, val) (SAMPLE_HAS(&s, field) ? (double)(val) : -1.0)
	printf("sample t_ms=%" PRIu64 " seq=%" PRIu64 " mono_ms=%" PRIu64
	       " cpus=%.0f present=%.0f busy=%.1f steal=%.1f load1=%.2f psi_cpu=%.1f"
	       " mem_total_kib=%.0f mem_avail_kib=%.0f mem_free_kib=%.0f psi_mem=%.1f"
	       " blocks=%.0f movable=%.0f saturated=%d top=%s\n",
	       wall_ms(), s.seq, s.mono_ms, NUM(SF_CPU_ONLINE, s.cpus_online),
	       NUM(SF_CPU_PRESENT, s.cpus_present), NUM(SF_CPU_BUSY, s.cpu_busy_pct),
	       NUM(SF_CPU_STEAL, s.cpu_steal_pct), NUM(SF_LOAD, s.load1),
	       NUM(SF_PSI_CPU_SOME, s.psi_cpu_some_avg10), NUM(SF_MEM_TOTAL, s.mem_total_kib),
	       NUM(SF_MEM_AVAIL, s.mem_avail_kib), NUM(SF_MEM_FREE, s.mem_free_kib),
	       NUM(SF_PSI_MEM_SOME, s.psi_mem_some_avg10), NUM(SF_MEM_BLOCKS, s.mem_blocks_online),
	       NUM(SF_MEM_BLOCKS, s.mem_blocks_movable),
	       SAMPLE_HAS(&s, SF_SATURATED) ? (int)s.saturated : -1, top);
#undef NUM
}

static int cmd_watch(const char *path, unsigned seconds)
{
	struct frame_dec dec;
	struct watch w = {0};
	uint64_t end = seconds ? util_now_ms() + (uint64_t)seconds * 1000 : 0;
	int fd = chansock_open("e2e-streamcheck", path, &stop), rc = 0;

	if (fd < 0)
		return 2;
	frame_dec_init(&dec);
	printf("connected t_ms=%" PRIu64 " path=%s\n", wall_ms(), path);
	while (!stop && (!end || util_now_ms() < end)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint8_t buf[4096];
		struct frame f;
		ssize_t n;

		if (poll(&p, 1, 200) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			printf("eof t_ms=%" PRIu64 "\n", wall_ms());
			rc = 3;
			break;
		}
		for (size_t off = 0; off < (size_t)n;) {
			off += frame_dec_feed(&dec, buf + off, (size_t)n - off);
			while (frame_dec_next(&dec, &f) == 1) {
				if (f.type == FRAME_HELLO)
					print_hello(&w, &f);
				else if (f.type == FRAME_SAMPLE)
					print_sample(&w, &f);
				else
					printf("frame t_ms=%" PRIu64 " type=%d len=%zu\n",
					       wall_ms(), (int)f.type, f.len);
			}
		}
	}
	printf("end t_ms=%" PRIu64 " hellos=%u samples=%u errors=%u bad_frames=%" PRIu64
	       " skipped_bytes=%" PRIu64 "\n",
	       wall_ms(), w.hellos, w.samples, w.errors, dec.stats.bad_frames,
	       dec.stats.skipped_bytes);
	frame_dec_fini(&dec);
	close(fd);
	return rc;
}

/* Reads one line into buf within the deadline; 1, or 0 on timeout/EOF. */
static int read_line(int fd, char *buf, size_t cap, size_t *len, uint64_t deadline, char **ret)
{
	for (;;) {
		char *nl = memchr(buf, '\n', *len);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = (int64_t)(deadline - util_now_ms());
		ssize_t n;

		if (nl) {
			*nl = '\0';
			*ret = buf;
			return 1;
		}
		if (*len >= cap - 1)
			*len = 0; /* an overlong line: drop it */
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return 0;
		n = read(fd, buf + *len, cap - 1 - *len);
		if (n <= 0)
			return 0;
		*len += (size_t)n;
	}
}

static int cmd_send(const char *path, unsigned timeout_s, char **cmds, int ncmds)
{
	char buf[4096], tag[32], *line;
	size_t len = 0;
	int fd = chansock_open("e2e-streamcheck", path, &stop), rc = 0;

	if (fd < 0)
		return 2;
	for (int i = 0; i < ncmds && rc != 2; i++) {
		uint64_t deadline = util_now_ms() + (uint64_t)timeout_s * 1000;
		char msg[1024];
		int n, got = 0;

		snprintf(tag, sizeof(tag), "#%d.%d", (int)getpid(), i);
		n = snprintf(msg, sizeof(msg), "%s %s\n", tag, cmds[i]);
		if (n <= 0 || (size_t)n >= sizeof(msg) || write(fd, msg, (size_t)n) != n) {
			fprintf(stderr, "e2e-streamcheck: cannot send '%s'\n", cmds[i]);
			rc = 2;
			break;
		}
		while (!got && read_line(fd, buf, sizeof(buf), &len, deadline, &line)) {
			size_t used = strlen(line) + 1, tl = strlen(tag);

			if (strncmp(line, tag, tl) == 0 && line[tl] == ' ') {
				printf("%s\n", line + tl + 1);
				if (strncmp(line + tl + 1, "ok", 2) != 0)
					rc = 1;
				got = 1;
			}
			memmove(buf, buf + used, len - used);
			len -= used;
		}
		if (!got) {
			fprintf(stderr, "e2e-streamcheck: no reply to '%s' within %u s\n", cmds[i],
			        timeout_s);
			rc = 2;
		}
	}
	close(fd);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: e2e-streamcheck watch SOCK [SECONDS]\n"
	           "       e2e-streamcheck cmd SOCK [-t SECONDS] COMMAND...\n");
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (argc >= 3 && strcmp(argv[1], "watch") == 0)
		return cmd_watch(argv[2], argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 0);
	if (argc >= 4 && strcmp(argv[1], "cmd") == 0) {
		unsigned timeout_s = 10;
		int first = 3;

		if (strcmp(argv[3], "-t") == 0 && argc >= 6) {
			timeout_s = (unsigned)strtoul(argv[4], NULL, 10);
			first = 5;
		}
		return cmd_send(argv[2], timeout_s ? timeout_s : 10, argv + first, argc - first);
	}
	usage(argc > 1 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
	return argc > 1 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
}
