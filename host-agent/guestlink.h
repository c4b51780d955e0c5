/* The host end of one guest stream: a unix socket (the channel's socket that QEMU listens on,
 * or a fake guest's in tests), framed with common/frame.c, on the caller's libev loop.
 *
 * It connects, decodes frames and hands each one up; bytes that do not frame or decode are
 * counted, never trusted. A stream that goes on without a good frame (more than
 * GUESTLINK_JUNK_FRAMES bad frames or GUESTLINK_JUNK_BYTES skipped bytes since the last good
 * one) is not a vscale agent: it is dropped and reported. When the stream ends it reconnects
 * with backoff until stopped; the backoff starts over only after a session that lasted. */
#ifndef VSCALE_GUESTLINK_H
#define VSCALE_GUESTLINK_H

#include <ev.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "frame.h"

/* A legitimate stream has at most one cut frame (a session's start) between good frames. The
 * decoder checks the CRC of every candidate frame, up to 16 KiB each: read on, fake headers 12
 * bytes apart kept hostd busy at 4.7 MB/s, random bytes only at 1.4 GB/s (test_hostile). */
#define GUESTLINK_JUNK_FRAMES 16
#define GUESTLINK_JUNK_BYTES  (4 * FRAME_MAX_LEN)

struct guestlink;

struct guestlink_ops {
	void (*up)(struct guestlink *gl);
	void (*down)(struct guestlink *gl); /* after the stream is closed, also after junk() */
	void (*frame)(struct guestlink *gl, const struct frame *f);
	/* optional: the stream is being dropped for junk; *since is what the decoder rejected
	 * since the last good frame */
	void (*junk)(struct guestlink *gl, const struct frame_stats *since);
};

struct guestlink {
	struct ev_loop *loop;
	ev_io io;
	ev_timer retry;
	int fd;
	bool up;
	bool started;
	char path[108]; /* sun_path: a longer path cannot be connected to */
	uint32_t retry_ms;
	const struct guestlink_ops *ops;
	struct frame_dec dec;
	uint8_t *out; /* pending output (requests are rare and small); NULL when empty */
	size_t out_len;
	uint64_t bytes_in;
	uint64_t connects;
	uint64_t junk_drops;        /* streams dropped for junk */
	uint64_t connected_ms;      /* CLOCK_MONOTONIC ms of the last connect */
	struct frame_stats at_good; /* the decoder's counters after the last good frame */
	uint64_t rx_us; /* CLOCK_MONOTONIC µs when the read that completed the frame being handed
	                 * up returned (for latency figures) */
};

/* Prepares gl (caller storage); nothing happens until guestlink_start(). */
void guestlink_init(struct guestlink *gl, struct ev_loop *loop, const struct guestlink_ops *ops);
/* Connects to path now and again whenever the stream ends. -ENAMETOOLONG for a path that does
 * not fit a unix socket address. */
int guestlink_start(struct guestlink *gl, const char *path);
/* Disconnects and stops retrying; frees the buffers. gl may be started again. */
void guestlink_stop(struct guestlink *gl);
/* Sends one frame. 0, -ENOTCONN, or -ENOBUFS when too much is already queued. */
int guestlink_send(struct guestlink *gl, enum frame_type type, const uint8_t *payload, size_t len);

#endif
