/* Host end of a guest stream. Connects to the channel's unix socket, reads with a small stack
 * buffer into an on-demand decoder (thousands of these exist at once), drops a stream that
 * carries only junk, and reconnects with exponential backoff from 100 ms to 5 s when the guest
 * side goes away. The backoff starts over only after a session that lasted 5 s: a guest that
 * accepts and closes (or floods) at once is retried ever more slowly, not every 100 ms. */
#include "guestlink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000
#define OUT_MAX      (64 * 1024)

void guestlink_init(struct guestlink *gl, struct ev_loop *loop, const struct guestlink_ops *ops)
{
	memset(gl, 0, sizeof(*gl));
	gl->loop = loop;
	gl->ops = ops;
	gl->fd = -1;
	frame_dec_init(&gl->dec);
}

static void schedule_retry(struct guestlink *gl)
{
	ev_timer_stop(gl->loop, &gl->retry);
	ev_timer_set(&gl->retry, gl->retry_ms / 1000.0, 0.0);
	ev_timer_start(gl->loop, &gl->retry);
	gl->retry_ms = gl->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : gl->retry_ms * 2;
}

static void drop(struct guestlink *gl);

/* The stream ended or was dropped: reconnect, soon only if the session lasted. */
static void lost(struct guestlink *gl)
{
	bool lasted = util_now_ms() - gl->connected_ms >= RETRY_MAX_MS;

	drop(gl);
	if (lasted)
		gl->retry_ms = RETRY_MIN_MS;
	schedule_retry(gl);
}

static void drop(struct guestlink *gl)
{
	bool was_up = gl->up;

	ev_io_stop(gl->loop, &gl->io);
	if (gl->fd >= 0)
		close(gl->fd);
	gl->fd = -1;
	gl->up = false;
	free(gl->out);
	gl->out = NULL;
	gl->out_len = 0;
	frame_dec_reset(&gl->dec);
	if (was_up && gl->ops->down)
		gl->ops->down(gl);
}

static void set_events(struct guestlink *gl)
{
	int want = EV_READ | (gl->out_len ? EV_WRITE : 0);

	if ((gl->io.events & (EV_READ | EV_WRITE)) == want && ev_is_active(&gl->io))
		return;
	ev_io_stop(gl->loop, &gl->io);
	ev_io_set(&gl->io, gl->fd, want);
	ev_io_start(gl->loop, &gl->io);
}

static bool flush(struct guestlink *gl)
{
	while (gl->out_len > 0) {
		ssize_t n = send(gl->fd, gl->out, gl->out_len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN;
		}
		memmove(gl->out, gl->out + n, gl->out_len - (size_t)n);
		gl->out_len -= (size_t)n;
	}
	free(gl->out);
	gl->out = NULL;
	return true;
}

/* True when the stream went on too long without a good frame; *ret_since says what it sent. */
static bool junk_only(const struct guestlink *gl, struct frame_stats *ret_since)
{
	ret_since->frames = 0;
	ret_since->bad_frames = gl->dec.stats.bad_frames - gl->at_good.bad_frames;
	ret_since->skipped_bytes = gl->dec.stats.skipped_bytes - gl->at_good.skipped_bytes;
	return ret_since->bad_frames > GUESTLINK_JUNK_FRAMES ||
	       ret_since->skipped_bytes > GUESTLINK_JUNK_BYTES;
}

/* Feeds one read to the decoder and hands up its frames. False when the stream is gone (junk,
 * or the frame handler stopped it). */
static bool take(struct guestlink *gl, const uint8_t *buf, size_t n)
{
	struct frame_stats since;
	size_t off = 0;
	struct frame f;

	while (off < n) {
		size_t took = frame_dec_feed(&gl->dec, buf + off, n - off);

		off += took;
		while (gl->fd >= 0 && frame_dec_next(&gl->dec, &f) == 1) {
			gl->at_good = gl->dec.stats;
			gl->ops->frame(gl, &f);
		}
		if (gl->fd < 0)
			return false; /* the frame handler stopped us */
		if (junk_only(gl, &since)) {
			gl->junk_drops++;
			if (gl->ops->junk)
				gl->ops->junk(gl, &since);
			if (gl->fd >= 0)
				lost(gl);
			return false;
		}
		if (took == 0)
			break; /* out of memory: drop the rest of this read */
	}
	return true;
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct guestlink *gl = container_of(w, struct guestlink, io);
	uint8_t buf[4096];

	if ((revents & EV_WRITE) && !flush(gl))
		goto gone;
	if (revents & EV_READ) {
		/* bounded: one read per wake-up keeps one chatty guest from starving the rest */
		ssize_t n = recv(gl->fd, buf, sizeof(buf), 0);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			goto gone;
		if (n < 0)
			return;
		gl->rx_us = util_now_us();
		gl->bytes_in += (size_t)n;
		if (!take(gl, buf, (size_t)n))
			return;
	}
	set_events(gl);
	return;
gone:
	lost(gl);
}

static void try_connect(struct guestlink *gl)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	strcpy(sa.sun_path, gl->path); /* length checked in guestlink_start() */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		schedule_retry(gl);
		return;
	}
	gl->fd = fd;
	gl->up = true;
	gl->connects++;
	gl->connected_ms = util_now_ms();
	gl->at_good = gl->dec.stats;
	ev_io_init(&gl->io, on_io, fd, EV_READ);
	ev_io_start(gl->loop, &gl->io);
	if (gl->ops->up)
		gl->ops->up(gl);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct guestlink *gl = container_of(w, struct guestlink, retry);

	if (gl->started && gl->fd < 0)
		try_connect(gl);
}

int guestlink_start(struct guestlink *gl, const char *path)
{
	guestlink_stop(gl);
	if (strlen(path) >= sizeof(gl->path))
		return -ENAMETOOLONG;
	strcpy(gl->path, path);
	gl->started = true;
	gl->retry_ms = RETRY_MIN_MS;
	ev_timer_init(&gl->retry, on_retry, 0.0, 0.0);
	try_connect(gl);
	return 0;
}

void guestlink_stop(struct guestlink *gl)
{
	gl->started = false;
	ev_timer_stop(gl->loop, &gl->retry);
	drop(gl);
	frame_dec_fini(&gl->dec);
}

int guestlink_send(struct guestlink *gl, enum frame_type type, const uint8_t *payload, size_t len)
{
	uint8_t *nb;
	int n;

	if (gl->fd < 0)
		return -ENOTCONN;
	if (gl->out_len + FRAME_HEADER_LEN + len > OUT_MAX)
		return -ENOBUFS;
	nb = realloc(gl->out, gl->out_len + FRAME_HEADER_LEN + len);
	if (!nb)
		return -ENOMEM;
	gl->out = nb;
	n = frame_encode(type, payload, len, gl->out + gl->out_len, FRAME_HEADER_LEN + len);
	if (n < 0)
		return n;
	gl->out_len += (size_t)n;
	if (!flush(gl)) {
		lost(gl);
		return -ENOTCONN;
	}
	set_events(gl);
	return 0;
}
