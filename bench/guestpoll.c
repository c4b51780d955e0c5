/* guestpoll: the e2e guest's own figures at a steady pace, for the real-VM benchmarks
 * (bench/guestpoll.sh). Connects to the unix socket of the guest's load-controller channel
 * (org.vscale.test.0, tests/e2e/loadgen.c), sends "#<pid>.<n> status" every INTERVAL ms, the
 * next one only once the last is answered (requests never queue up in the guest), and prints
 * each of its own replies, line-buffered, as
 *   sent_us=<CLOCK_REALTIME us at the send> t_us=<us at the reply> <the reply, tag removed>
 * Lines with another tag (left in the channel by an earlier connection) are dropped. The channel
 * takes one connection at a time, so COMMAND, when given, is sent through this one: once, as the
 * next request after SIGUSR1, its reply printed like the others.
 *   guestpoll SOCK [INTERVAL_MS [SECONDS [COMMAND]]]   (defaults 20 ms, 0 = until SIGTERM/INT)
 * Exits 0 when stopped or done, 2 when the socket cannot be reached or a reply takes 10 s. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chansock.h"

#define REPLY_TIMEOUT_US (10 * 1000000ull)

static volatile sig_atomic_t stop, send_cmd;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		send_cmd = 1;
	else
		stop = 1;
}

static uint64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct poller {
	int fd;
	char tag[32];     /* "#<pid>.<n> " of the request in flight */
	bool waiting;     /* a request is in flight */
	uint64_t sent_us; /* when it was sent */
	char buf[4096];   /* bytes read, not yet a whole line */
	size_t len;
	unsigned long long n; /* requests sent */
};

static int send_request(struct poller *p, const char *what)
{
	char msg[1100];
	int n;

	snprintf(p->tag, sizeof(p->tag), "#%d.%llu ", (int)getpid(), ++p->n);
	n = snprintf(msg, sizeof(msg), "%s%s\n", p->tag, what);
	if (n < 0 || (size_t)n >= sizeof(msg)) {
		errno = EMSGSIZE;
		return -1;
	}
	p->sent_us = wall_us();
	if (write(p->fd, msg, (size_t)n) != n)
		return -1;
	p->waiting = true;
	return 0;
}

/* Prints the lines in buf that answer the request in flight; drops the others. */
static void take_lines(struct poller *p, uint64_t now_us)
{
	char *nl;

	while ((nl = memchr(p->buf, '\n', p->len)) != NULL) {
		size_t used = (size_t)(nl - p->buf) + 1, tl = strlen(p->tag);

		*nl = '\0';
		if (p->waiting && strncmp(p->buf, p->tag, tl) == 0) {
			printf("sent_us=%" PRIu64 " t_us=%" PRIu64 " %s\n", p->sent_us, now_us,
			       p->buf + tl);
			p->waiting = false;
		}
		memmove(p->buf, p->buf + used, p->len - used);
		p->len -= used;
	}
	if (p->len >= sizeof(p->buf) - 1)
		p->len = 0; /* an overlong line: drop it */
}

/* Reads what arrived; 0, or -1 at EOF or error. */
static int read_some(struct poller *p)
{
	ssize_t n = read(p->fd, p->buf + p->len, sizeof(p->buf) - 1 - p->len);

	if (n <= 0)
		return n < 0 && errno == EINTR ? 0 : -1;
	p->len += (size_t)n;
	take_lines(p, wall_us());
	return 0;
}

static int run(struct poller *p, uint64_t interval_us, uint64_t end_us, const char *cmd)
{
	uint64_t next_us = wall_us();

	while (!stop && (!end_us || wall_us() < end_us)) {
		struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
		uint64_t now = wall_us();
		int wait_ms;

		if (p->waiting && now - p->sent_us > REPLY_TIMEOUT_US) {
			fprintf(stderr, "guestpoll: no reply within 10 s\n");
			return 2;
		}
		if (!p->waiting && cmd && send_cmd) {
			send_cmd = 0;
			if (send_request(p, cmd) < 0) {
				fprintf(stderr, "guestpoll: send: %s\n", strerror(errno));
				return 2;
			}
		} else if (!p->waiting && now >= next_us) {
			if (send_request(p, "status") < 0) {
				fprintf(stderr, "guestpoll: send: %s\n", strerror(errno));
				return 2;
			}
			next_us = now + interval_us;
		}
		wait_ms = p->waiting ? 100 : (int)((next_us - now + 999) / 1000);
		if (poll(&pfd, 1, wait_ms) > 0 && read_some(p) < 0) {
			fprintf(stderr, "guestpoll: the channel closed\n");
			return 2;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	struct poller p = {.fd = -1};
	uint64_t interval_ms = 20, seconds = 0;
	int rc;

	if (argc < 2 || argc > 5) {
		fprintf(stderr, "usage: guestpoll SOCK [INTERVAL_MS [SECONDS [COMMAND]]]\n");
		return 2;
	}
	if (argc > 2)
		interval_ms = strtoull(argv[2], NULL, 10);
	if (argc > 3)
		seconds = strtoull(argv[3], NULL, 10);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	p.fd = chansock_open("guestpoll", argv[1], &stop);
	if (p.fd < 0)
		return 2;
	rc = run(&p, interval_ms * 1000, seconds ? wall_us() + seconds * 1000000 : 0,
	         argc > 4 ? argv[4] : NULL);
	close(p.fd);
	return rc;
}
