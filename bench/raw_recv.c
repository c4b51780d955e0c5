/* The fan-in benchmark's baseline: what it costs just to receive the bytes hostd receives.
 * Connects to the same N sockets (DIR/gNNNNN.sock from sim_guests) with the same default socket
 * buffers and reads them as hostd does (level-triggered epoll, one 4 KiB read per wake-up),
 * discarding the bytes: no framing, no decoding, no policy. bench/fanin.sh measures its CPU
 * from outside; it prints only when all are connected and, at the end, what it read. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

#define CONNECT_WAIT_MS 30000

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int connect_to(const char *dir, unsigned i)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/g%05u.sock", dir, i);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/* Connects to every socket, retrying the missing ones for a while. Returns how many. */
static unsigned connect_all(const char *dir, unsigned count, int ep, int *fds)
{
	uint64_t give_up = util_now_ms() + CONNECT_WAIT_MS;
	unsigned connected = 0;

	while (!stop) {
		for (unsigned i = 0; i < count; i++) {
			struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};

			if (fds[i] >= 0)
				continue;
			fds[i] = connect_to(dir, i);
			if (fds[i] < 0)
				continue;
			if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
				close(fds[i]);
				fds[i] = -1;
				continue;
			}
			connected++;
		}
		if (connected == count || util_now_ms() > give_up)
			break;
		usleep(100000);
	}
	return connected;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
	                                     {"count", required_argument, NULL, 'n'},
	                                     {"seconds", required_argument, NULL, 's'},
	                                     {0}};
	const char *dir = NULL;
	unsigned count = 0, seconds = 60, open_fds;
	unsigned long long bytes = 0;
	struct epoll_event ev[256];
	struct rlimit rl;
	uint64_t end;
	int o, ep, *fds;

	while ((o = getopt_long(argc, argv, "d:n:s:", opts, NULL)) != -1) {
		if (o == 'd')
			dir = optarg;
		else if (o == 'n')
			count = (unsigned)strtoul(optarg, NULL, 10);
		else if (o == 's')
			seconds = (unsigned)strtoul(optarg, NULL, 10);
		else
			return 1;
	}
	if (!dir || count == 0 || count > 99999) {
		fprintf(stderr, "Usage: raw_recv --dir DIR --count N [--seconds S]\n");
		return 1;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	ep = epoll_create1(EPOLL_CLOEXEC);
	fds = malloc(count * sizeof(*fds));
	if (ep < 0 || !fds) {
		perror("raw_recv");
		return 1;
	}
	for (unsigned i = 0; i < count; i++)
		fds[i] = -1;
	open_fds = connect_all(dir, count, ep, fds);
	fprintf(stderr, "raw_recv: %u of %u connected\n", open_fds, count);
	end = util_now_ms() + (uint64_t)seconds * 1000u;
	while (!stop && open_fds > 0 && util_now_ms() < end) {
		int n = epoll_wait(ep, ev, (int)ARRAY_SIZE(ev), 1000);

		for (int i = 0; i < n; i++) {
			unsigned k = ev[i].data.u32;
			uint8_t buf[4096];
			ssize_t r = recv(fds[k], buf, sizeof(buf), 0);

			if (r > 0) {
				bytes += (unsigned long long)r;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				close(fds[k]);
				fds[k] = -1;
				open_fds--;
			}
		}
	}
	fprintf(stderr, "raw_recv: %llu bytes read\n", bytes);
	for (unsigned i = 0; i < count; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	close(ep);
	return 0;
}
