/* The guest end of the host link: a virtio-serial port (or, for tests, a unix socket or FIFO),
 * framed with common/frame.c, on the caller's libev loop.
 *
 * While no host is connected a virtio port reports HUP and writes would block: the channel then
 * stops its I/O watcher and probes again on a timer with backoff. Each time the link comes up it
 * calls on_up, so the owner can send Hello and its backlog. */
#ifndef VSCALE_CHANNEL_H
#define VSCALE_CHANNEL_H

#include <ev.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "frame.h"

#define CHANNEL_OUTBUF (64 * 1024)

struct channel;
typedef void (*channel_up_fn)(struct channel *ch, void *user);
typedef void (*channel_frame_fn)(struct channel *ch, const struct frame *f, void *user);

struct channel {
	struct ev_loop *loop;
	ev_io io;
	ev_timer retry;
	int fd;
	bool up;
	bool is_socket;
	char path[PATH_MAX]; /* configured path; "" = find the port by name */
	uint64_t retry_ms, retry_max_ms;
	channel_up_fn on_up;
	channel_frame_fn on_frame;
	void *user;
	struct frame_dec dec;
	size_t out_len;
	uint8_t out[CHANNEL_OUTBUF];
	uint64_t ups, downs; /* times the link came up / went down */
};

/* Initialises ch (caller storage) and starts trying to reach the host. path "" means look up
 * the virtio port named port_name under root. Never fails: a missing port is retried. */
void channel_init(struct channel *ch, struct ev_loop *loop, const char *path, uint64_t retry_max_ms,
                  channel_up_fn on_up, channel_frame_fn on_frame, void *user);
/* Stops the watchers and closes the fd. */
void channel_fini(struct channel *ch);

/* Bytes of room in the output buffer (0 when the link is down). */
size_t channel_room(const struct channel *ch);
/* Queues one frame. -ENOTCONN when down, -ENOBUFS when it does not fit (nothing queued). */
int channel_send(struct channel *ch, enum frame_type type, const uint8_t *payload, size_t len);

/* Finds /dev/vportNpM whose name is port_name in <root>/sys/class/virtio-ports, or the udev
 * symlink /dev/virtio-ports/<name>. Writes the device path; 0 or -ENOENT. */
int channel_find_port(const char *root, const char *port_name, char *ret_path, size_t cap);

#endif
