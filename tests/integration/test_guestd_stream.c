/* Integration: runs the real vscale-guestd against a unix socket this test listens on, decodes
 * its stream with common/, then goes away (closes and stops listening) and comes back. Checks
 * Hello on each session with a new nonce, samples with real figures, no sample lost across the
 * gap (they were buffered), host requests answered even after garbage, and a clean SIGTERM exit.
 * Usage: test_guestd_stream PATH-TO-vscale-guestd */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "util.h"
#include "wire.h"

#include "check.h"

struct conn {
	int fd;
	struct frame_dec dec;
};

static int listen_on(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	unlink(path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
		perror("listen");
		exit(2);
	}
	return fd;
}

static int accept_within(int lfd, int ms)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};

	if (poll(&p, 1, ms) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* Next frame within ms, or 0 on timeout/EOF. */
static int next_frame(struct conn *c, struct frame *f, int ms)
{
	uint64_t deadline = util_now_ms() + (uint64_t)ms;

	for (;;) {
		uint8_t buf[4096];
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int64_t left = (int64_t)(deadline - util_now_ms());
		ssize_t n;

		if (frame_dec_next(&c->dec, f) == 1)
			return 1;
		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return 0;
		n = read(c->fd, buf, sizeof(buf));
		if (n <= 0)
			return 0;
		frame_dec_feed(&c->dec, buf, (size_t)n);
	}
}

static void send_request(struct conn *c, const struct request *rq)
{
	uint8_t payload[256], frame[512];
	int n = wire_encode_request(rq, payload, sizeof(payload));
	int m = frame_encode(FRAME_REQUEST, payload, (size_t)n, frame, sizeof(frame));

	if (write(c->fd, frame, (size_t)m) != m)
		perror("write");
}

/* Reads until a Reply with this id; samples on the way update *last_seq when given. */
static int wait_reply(struct conn *c, uint64_t id, struct reply *ret, uint64_t *last_seq)
{
	struct sample s;
	struct frame f;

	while (next_frame(c, &f, 5000)) {
		if (f.type == FRAME_SAMPLE && last_seq &&
		    wire_decode_sample(f.payload, f.len, &s) == 0)
			*last_seq = s.seq;
		if (f.type == FRAME_REPLY && wire_decode_reply(f.payload, f.len, ret) == 0 &&
		    ret->id == id)
			return 0;
	}
	return -1;
}

static pid_t start_guestd(const char *bin, const char *conf, const char *sock, const char *root,
                          bool hotplug)
{
	pid_t pid = fork();

	if (pid == 0) {
		check_execl(bin, bin, "--config", conf, "--device", sock, "--interval", "200ms",
		            "--root", root, "--set", "retry-max=300ms",
		            hotplug ? "--verbose" : "--no-hotplug", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Session 1 and 2 on the live system: stream, gap, resume with nothing lost. */
static void test_stream_and_reconnect(const char *bin, const char *dir)
{
	char sock[256], conf[256];
	struct conn c = {0};
	struct frame f;
	struct hello h1 = {0}, h2 = {0};
	struct sample s;
	struct reply rp;
	uint64_t last_seq = 0, back_ms = 0;
	int lfd, samples = 0;
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/guest.sock", dir);
	snprintf(conf, sizeof(conf), "%s/guest.conf", dir);
	lfd = listen_on(sock);
	pid = start_guestd(bin, conf, sock, "/", false);

	c.fd = accept_within(lfd, 5000);
	CHECK(c.fd >= 0, "guestd did not connect within 5 s");
	if (c.fd < 0)
		goto out;
	frame_dec_reset(&c.dec);
	CHECK(next_frame(&c, &f, 3000) && f.type == FRAME_HELLO, "first frame is not Hello");
	CHECK(wire_decode_hello(f.payload, f.len, &h1) == 0, "Hello does not decode");
	CHECK(h1.protocol_version == VSCALE_PROTOCOL_VERSION, "protocol version %u",
	      h1.protocol_version);
	CHECK(h1.session_nonce != 0, "nonce is 0");
	while (samples < 4 && next_frame(&c, &f, 3000)) {
		if (f.type != FRAME_SAMPLE)
			continue;
		CHECK(wire_decode_sample(f.payload, f.len, &s) == 0, "sample does not decode");
		CHECK(last_seq == 0 || s.seq == last_seq + 1, "seq %llu after %llu",
		      (unsigned long long)s.seq, (unsigned long long)last_seq);
		CHECK(SAMPLE_HAS(&s, SF_CPU_ONLINE) && s.cpus_online >= 1, "no online CPUs");
		CHECK(SAMPLE_HAS(&s, SF_MEM_TOTAL) && s.mem_total_kib > 0, "no MemTotal");
		CHECK(SAMPLE_HAS(&s, SF_MEM_AVAIL), "no MemAvailable");
		last_seq = s.seq;
		samples++;
	}
	CHECK(samples == 4, "only %d samples in the first session", samples);
	/* a request while hotplug is off: refused, with a reason */
	send_request(&c, &(struct request){.id = 11, .kind = REQ_SET_ONLINE_VCPUS, .vcpus = 1});
	CHECK(wait_reply(&c, 11, &rp, &last_seq) == 0, "no reply to request 11");
	CHECK(rp.status == REPLY_REFUSED && strstr(rp.reason, "hotplug"), "reply %d '%s'",
	      (int)rp.status, rp.reason);

	/* the host goes away for 1.5 s: close and stop listening */
	close(c.fd);
	close(lfd);
	unlink(sock);
	usleep(1500000);
	lfd = listen_on(sock);
	c.fd = accept_within(lfd, 5000);
	back_ms = util_now_ms();
	CHECK(c.fd >= 0, "guestd did not come back within 5 s");
	if (c.fd < 0)
		goto out;
	frame_dec_reset(&c.dec);
	CHECK(next_frame(&c, &f, 3000) && f.type == FRAME_HELLO, "no Hello after reconnect");
	CHECK(wire_decode_hello(f.payload, f.len, &h2) == 0, "second Hello does not decode");
	CHECK(h2.session_nonce != h1.session_nonce, "same nonce on a new session");
	CHECK(strcmp(h1.boot_id, h2.boot_id) == 0 && h1.boot_id[0], "boot id changed or empty");
	/* the samples taken while we were away come first, with no gap */
	samples = 0;
	while (samples < 10 && next_frame(&c, &f, 3000)) {
		if (f.type != FRAME_SAMPLE || wire_decode_sample(f.payload, f.len, &s) < 0)
			continue;
		/* one sample may have been in our socket buffer when we closed it */
		if (samples == 0) {
			CHECK(s.seq <= last_seq + 2,
			      "first sample after the gap is %llu, last seen "
			      "%llu: samples lost",
			      (unsigned long long)s.seq, (unsigned long long)last_seq);
			CHECK(s.mono_ms + 1000 < back_ms,
			      "first sample after the gap was taken at "
			      "%llu, reconnect at %llu: the gap was not buffered",
			      (unsigned long long)s.mono_ms, (unsigned long long)back_ms);
		} else
			CHECK(s.seq == last_seq + 1, "seq %llu after %llu",
			      (unsigned long long)s.seq, (unsigned long long)last_seq);
		last_seq = s.seq;
		samples++;
	}
	CHECK(samples == 10, "only %d samples in the second session", samples);
	close(c.fd);
out:
	CHECK(stop_child(pid) == 0, "guestd did not exit 0 on SIGTERM");
	close(lfd);
	frame_dec_fini(&c.dec);
}

static void mkfile(const char *dir, const char *rel, const char *text)
{
	char path[512], *slash;
	FILE *f;

	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (slash = strchr(path + strlen(dir) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

/* A fake root with 2 online CPUs: the host asks for 1 after sending garbage. */
static void test_requests_on_fake_root(const char *bin, const char *dir)
{
	char sock[256], conf[256], root[256], cpu1[512], buf[16];
	struct conn c = {0};
	struct reply rp;
	struct frame f;
	int lfd;
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/fake.sock", dir);
	snprintf(conf, sizeof(conf), "%s/guest.conf", dir);
	snprintf(root, sizeof(root), "%s/root", dir);
	mkfile(root, "proc/stat",
	       "cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 50 0 50 500 0 0 0 0 0 0\n"
	       "cpu1 50 0 50 500 0 0 0 0 0 0\n");
	mkfile(root, "proc/meminfo",
	       "MemTotal: 1048576 kB\nMemFree: 524288 kB\n"
	       "MemAvailable: 786432 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n");
	mkfile(root, "proc/loadavg", "0.10 0.20 0.30 1/100 1234\n");
	mkfile(root, "sys/devices/system/cpu/online", "0-1\n");
	mkfile(root, "sys/devices/system/cpu/present", "0-1\n");
	mkfile(root, "sys/devices/system/cpu/cpu0/topology/core_id", "0\n");
	mkfile(root, "sys/devices/system/cpu/cpu1/online", "1\n");

	lfd = listen_on(sock);
	pid = start_guestd(bin, conf, sock, root, true);
	c.fd = accept_within(lfd, 5000);
	CHECK(c.fd >= 0, "guestd (fake root) did not connect");
	if (c.fd < 0)
		goto out;
	frame_dec_reset(&c.dec);
	CHECK(next_frame(&c, &f, 3000) && f.type == FRAME_HELLO, "no Hello (fake root)");
	{
		static const char junk[] = "garbage\0VSCL\x01\x03\xff\xff junk";

		CHECK(write(c.fd, junk, sizeof(junk) - 1) == (ssize_t)sizeof(junk) - 1,
		      "write garbage");
	}
	send_request(&c, &(struct request){.id = 21, .kind = REQ_SET_ONLINE_VCPUS, .vcpus = 1});
	CHECK(wait_reply(&c, 21, &rp, NULL) == 0, "no reply to request 21 after garbage");
	CHECK(rp.status == REPLY_ACK, "SET_ONLINE_VCPUS(1): status %d '%s'", (int)rp.status,
	      rp.reason);
	CHECK(rp.has_vcpus_online && rp.vcpus_online == 1, "vcpus_online %u", rp.vcpus_online);
	snprintf(cpu1, sizeof(cpu1), "%s/sys/devices/system/cpu/cpu1/online", root);
	CHECK(util_read_file(cpu1, buf, sizeof(buf)) > 0 && buf[0] == '0', "cpu1 not offlined");
	/* held: a scan (every 200 ms) must not online it again */
	usleep(600000);
	CHECK(util_read_file(cpu1, buf, sizeof(buf)) > 0 && buf[0] == '0',
	      "cpu1 onlined again while held");
	send_request(&c, &(struct request){.id = 22, .kind = REQ_RELEASE});
	CHECK(wait_reply(&c, 22, &rp, NULL) == 0 && rp.status == REPLY_ACK, "RELEASE not acked");
	CHECK(util_read_file(cpu1, buf, sizeof(buf)) > 0 && buf[0] == '1', "cpu1 not back online");
	close(c.fd);
out:
	CHECK(stop_child(pid) == 0, "guestd (fake root) did not exit 0 on SIGTERM");
	close(lfd);
	frame_dec_fini(&c.dec);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/vscale-guestd-it-XXXXXX";
	char conf[300], cmd[400];

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH-TO-vscale-guestd\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		return 2;
	snprintf(conf, sizeof(conf), "%s/guest.conf", dir);
	mkfile(dir, "guest.conf", "# test config\n[guestd]\nbuffer = 30\n");
	(void)conf;
	test_stream_and_reconnect(argv[1], dir);
	test_requests_on_fake_root(argv[1], dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
