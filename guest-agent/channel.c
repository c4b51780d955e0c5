/* Guest side of the host link. Opens the virtio-serial port (or a unix socket / FIFO for tests),
 * writes queued frames, decodes incoming ones, and when the host is gone (HUP, EOF, EPIPE) stops
 * watching the fd and probes again on a timer with exponential backoff. */
#include "channel.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "gconf.h"
#include "log.h"
#include "util.h"

#define RETRY_MIN_MS 100

int channel_find_port(const char *root, const char *port_name, char *ret_path, size_t cap)
{
	char dir[PATH_MAX], name[128];
	struct dirent *de;
	DIR *d;
	int r = -ENOENT;

	snprintf(dir, sizeof(dir), "/dev/virtio-ports/%s", port_name);
	if (access(dir, F_OK) == 0 && strlen(dir) < cap) {
		strcpy(ret_path, dir);
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s/sys/class/virtio-ports", root);
	d = opendir(dir);
	if (!d)
		return -ENOENT;
	while ((de = readdir(d))) {
		char rel[300];

		if (de->d_name[0] == '.')
			continue;
		snprintf(rel, sizeof(rel), "%s/name", de->d_name);
		if (util_read_file_at(dir, rel, name, sizeof(name)) <= 0)
			continue;
		name[strcspn(name, "\n")] = '\0';
		if (strcmp(name, port_name) == 0 &&
		    (size_t)snprintf(ret_path, cap, "/dev/%s", de->d_name) < cap) {
			r = 0;
			break;
		}
	}
	closedir(d);
	return r;
}

static int open_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/* Opens the link. Returns the fd, or -errno; -EAGAIN when the port exists but no host is on it. */
static int open_link(struct channel *ch)
{
	char dev[PATH_MAX];
	struct pollfd pfd;
	struct stat st;
	int fd;

	if (ch->path[0])
		snprintf(dev, sizeof(dev), "%s", ch->path);
	else if (channel_find_port("", GCONF_PORT_NAME, dev, sizeof(dev)) < 0)
		return -ENOENT;
	if (stat(dev, &st) < 0)
		return -errno;
	ch->is_socket = S_ISSOCK(st.st_mode);
	if (ch->is_socket)
		return open_socket(dev);
	fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	/* A virtio port with no host behind it polls HUP: keep the fd and probe it on the timer. */
	pfd.fd = fd;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP)) {
		ch->fd = fd;
		return -EAGAIN;
	}
	return fd;
}

static void arm_retry(struct channel *ch)
{
	ev_timer_stop(ch->loop, &ch->retry);
	ev_timer_set(&ch->retry, (double)ch->retry_ms / 1000.0, 0.0);
	ev_timer_start(ch->loop, &ch->retry);
	ch->retry_ms = ch->retry_ms * 2 > ch->retry_max_ms ? ch->retry_max_ms : ch->retry_ms * 2;
}

static void link_down(struct channel *ch, const char *why)
{
	ev_io_stop(ch->loop, &ch->io);
	if (ch->up) {
		log_info("host link down: %s", why);
		ch->downs++;
	}
	ch->up = false;
	ch->out_len = 0; /* a half-sent frame is resynchronised away by the host's decoder */
	frame_dec_reset(&ch->dec);
	/* a virtio port stays open: it is probed for the host coming back; a socket is redone */
	if (ch->is_socket && ch->fd >= 0) {
		close(ch->fd);
		ch->fd = -1;
	}
	ch->retry_ms = RETRY_MIN_MS;
	arm_retry(ch);
}

static void update_events(struct channel *ch)
{
	int want = EV_READ | (ch->out_len ? EV_WRITE : 0);

	if ((ch->io.events & (EV_READ | EV_WRITE)) == want && ev_is_active(&ch->io))
		return;
	ev_io_stop(ch->loop, &ch->io);
	ev_io_set(&ch->io, ch->fd, want);
	ev_io_start(ch->loop, &ch->io);
}

static void flush_out(struct channel *ch)
{
	while (ch->out_len > 0) {
		ssize_t n = write(ch->fd, ch->out, ch->out_len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				link_down(ch, strerror(errno));
			return;
		}
		memmove(ch->out, ch->out + n, ch->out_len - (size_t)n);
		ch->out_len -= (size_t)n;
	}
}

static void read_in(struct channel *ch)
{
	uint8_t buf[4096];

	for (;;) {
		ssize_t n = read(ch->fd, buf, sizeof(buf));
		size_t off = 0;
		struct frame f;

		if (n == 0) {
			link_down(ch, "host closed the channel");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				link_down(ch, strerror(errno));
			return;
		}
		while (off < (size_t)n) {
			off += frame_dec_feed(&ch->dec, buf + off, (size_t)n - off);
			while (ch->up && frame_dec_next(&ch->dec, &f) == 1)
				ch->on_frame(ch, &f, ch->user);
			if (!ch->up)
				return;
		}
	}
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct channel *ch = container_of(w, struct channel, io);

	if (revents & EV_READ)
		read_in(ch);
	if (ch->up && (revents & EV_WRITE))
		flush_out(ch);
	if (ch->up)
		update_events(ch);
}

static void try_up(struct channel *ch)
{
	int fd;

	if (ch->fd >= 0 && !ch->is_socket) {
		struct pollfd pfd = {.fd = ch->fd, .events = POLLOUT};

		if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP)) {
			arm_retry(ch);
			return;
		}
		fd = ch->fd;
	} else {
		fd = open_link(ch);
		if (fd < 0) {
			if (fd != -EAGAIN)
				log_debug("host link: %s", strerror(-fd));
			arm_retry(ch);
			return;
		}
		ch->fd = fd;
	}
	ch->up = true;
	ch->ups++;
	ch->retry_ms = RETRY_MIN_MS;
	log_info("host link up");
	update_events(ch);
	ch->on_up(ch, ch->user);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	try_up(container_of(w, struct channel, retry));
}

void channel_init(struct channel *ch, struct ev_loop *loop, const char *path, uint64_t retry_max_ms,
                  channel_up_fn on_up, channel_frame_fn on_frame, void *user)
{
	memset(ch, 0, offsetof(struct channel, out));
	ch->loop = loop;
	ch->fd = -1;
	snprintf(ch->path, sizeof(ch->path), "%s", path);
	ch->retry_ms = RETRY_MIN_MS;
	ch->retry_max_ms = retry_max_ms < RETRY_MIN_MS ? RETRY_MIN_MS : retry_max_ms;
	ch->on_up = on_up;
	ch->on_frame = on_frame;
	ch->user = user;
	frame_dec_init(&ch->dec);
	ev_io_init(&ch->io, io_cb, -1, EV_READ);
	ev_timer_init(&ch->retry, retry_cb, 0.0, 0.0);
	try_up(ch);
}

void channel_fini(struct channel *ch)
{
	ev_io_stop(ch->loop, &ch->io);
	ev_timer_stop(ch->loop, &ch->retry);
	if (ch->fd >= 0)
		close(ch->fd);
	ch->fd = -1;
	ch->up = false;
	frame_dec_fini(&ch->dec);
}

size_t channel_room(const struct channel *ch)
{
	return ch->up ? sizeof(ch->out) - ch->out_len : 0;
}

int channel_send(struct channel *ch, enum frame_type type, const uint8_t *payload, size_t len)
{
	int n;

	if (!ch->up)
		return -ENOTCONN;
	n = frame_encode(type, payload, len, ch->out + ch->out_len, sizeof(ch->out) - ch->out_len);
	if (n < 0)
		return n == -EMSGSIZE ? -ENOBUFS : n;
	ch->out_len += (size_t)n;
	flush_out(ch);
	if (!ch->up)
		return -ENOTCONN;
	update_events(ch);
	return 0;
}
