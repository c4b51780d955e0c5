/* The host end of a guest stream (host-agent/guestlink.c) against a unix socket this test
 * listens on: frames are handed up; a stream of junk (bytes that do not frame, or fake headers)
 * is dropped and reported once it passes the limits, not read on; a good frame between junk
 * starts the count again; and reconnects back off, starting over only after a session that
 * lasted. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "guestlink.h"
#include "util.h"

static struct {
	int frames, downs, junks;
	struct frame_stats junk;
} seen;

static void on_frame(struct guestlink *gl, const struct frame *f)
{
	seen.frames++;
}

static void on_down(struct guestlink *gl)
{
	seen.downs++;
}

static void on_junk(struct guestlink *gl, const struct frame_stats *since)
{
	seen.junks++;
	seen.junk = *since;
}

static const struct guestlink_ops ops = {.frame = on_frame, .down = on_down, .junk = on_junk};

struct rig {
	struct ev_loop *loop;
	struct guestlink gl;
	char path[108];
	int lfd, fd; /* the guest's side */
};

static void rig_accept(struct rig *r)
{
	for (int i = 0; i < 400 && r->fd < 0; i++) {
		ev_run(r->loop, EVRUN_NOWAIT);
		r->fd = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (r->fd < 0)
			usleep(5000);
	}
	assert_true(r->fd >= 0);
	ev_run(r->loop, EVRUN_NOWAIT);
	assert_true(r->gl.up);
}

static int setup(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct rig *r = calloc(1, sizeof(*r));

	snprintf(r->path, sizeof(r->path), "/tmp/vscale-test-guestlink-%d.sock", (int)getpid());
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", r->path);
	unlink(r->path);
	r->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(r->lfd >= 0);
	assert_int_equal(bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(r->lfd, 4), 0);
	r->fd = -1;
	r->loop = ev_loop_new(EVFLAG_AUTO);
	memset(&seen, 0, sizeof(seen));
	guestlink_init(&r->gl, r->loop, &ops);
	assert_int_equal(guestlink_start(&r->gl, r->path), 0);
	rig_accept(r);
	*state = r;
	return 0;
}

static int teardown(void **state)
{
	struct rig *r = *state;

	guestlink_stop(&r->gl);
	if (r->fd >= 0)
		close(r->fd);
	close(r->lfd);
	unlink(r->path);
	ev_loop_destroy(r->loop);
	free(r);
	return 0;
}

/* Writes len bytes from the guest's side while the loop runs. False when the host hung up. */
static bool guest_write(struct rig *r, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(r->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN)
			return false;
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		}
		ev_run(r->loop, EVRUN_NOWAIT);
	}
	for (int i = 0; i < 4; i++)
		ev_run(r->loop, EVRUN_NOWAIT);
	return true;
}

static void good_frame(struct rig *r)
{
	uint8_t buf[64];
	int n = frame_encode(FRAME_SAMPLE, "abc", 3, buf, sizeof(buf));

	assert_true(guest_write(r, buf, (size_t)n));
}

static void test_frames_handed_up(void **state)
{
	struct rig *r = *state;

	good_frame(r);
	good_frame(r);
	assert_int_equal(seen.frames, 2);
	assert_int_equal(seen.junks, 0);
}

static void test_garbage_dropped(void **state)
{
	struct rig *r = *state;
	uint8_t junk[4096];
	size_t sent = 0;

	memset(junk, 'x', sizeof(junk));
	while (sent < 4 * GUESTLINK_JUNK_BYTES && guest_write(r, junk, sizeof(junk)))
		sent += sizeof(junk);
	assert_int_equal(seen.junks, 1);
	assert_int_equal(seen.downs, 1);
	assert_true(seen.junk.skipped_bytes > GUESTLINK_JUNK_BYTES);
	assert_true(seen.junk.skipped_bytes <= GUESTLINK_JUNK_BYTES + sizeof(junk));
	assert_false(r->gl.up);
	assert_int_equal(r->gl.junk_drops, 1);
	/* the host hung up: the guest sees the end of the stream */
	assert_int_equal(recv(r->fd, junk, sizeof(junk), 0), 0);
}

/* Headers that claim 16 KiB with wrong CRCs: each costs the decoder a 16 KiB CRC, so the stream
 * goes after GUESTLINK_JUNK_FRAMES of them, not after megabytes. */
static void test_fake_headers_dropped(void **state)
{
	struct rig *r = *state;
	uint8_t buf[12 * 64];

	for (size_t i = 0; i < sizeof(buf); i += 12)
		memcpy(buf + i, "VSCL\x01\x02\x00\x40\xa5\xa5\xa5\xa5", 12);
	for (int i = 0; i < 100 && r->gl.up; i++)
		guest_write(r, buf, sizeof(buf));
	assert_int_equal(seen.junks, 1);
	assert_true(seen.junk.bad_frames > GUESTLINK_JUNK_FRAMES);
	assert_true(r->gl.dec.stats.bad_frames <= GUESTLINK_JUNK_FRAMES + 4);
}

static void test_good_frame_restarts_count(void **state)
{
	struct rig *r = *state;
	uint8_t junk[GUESTLINK_JUNK_BYTES / 2];

	memset(junk, 'x', sizeof(junk));
	for (int i = 0; i < 6; i++) {
		assert_true(guest_write(r, junk, sizeof(junk)));
		good_frame(r);
	}
	assert_int_equal(seen.frames, 6);
	assert_int_equal(seen.junks, 0);
	assert_true(r->gl.up);
}

/* Each session that ends at once doubles the wait; one that lasted starts it over. */
static void test_backoff(void **state)
{
	struct rig *r = *state;
	uint32_t want = 200;

	for (int i = 0; i < 3; i++, want *= 2) {
		close(r->fd);
		r->fd = -1;
		for (int j = 0; j < 10 && r->gl.up; j++)
			ev_run(r->loop, EVRUN_NOWAIT);
		assert_false(r->gl.up);
		assert_int_equal(r->gl.retry_ms, want); /* the one after the wait now running */
		rig_accept(r);
	}
	r->gl.connected_ms = util_now_ms() - 6000; /* this session lasted */
	close(r->fd);
	r->fd = -1;
	for (int j = 0; j < 10 && r->gl.up; j++)
		ev_run(r->loop, EVRUN_NOWAIT);
	assert_int_equal(r->gl.retry_ms, 200);
	assert_int_equal(seen.downs, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_frames_handed_up, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_garbage_dropped, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_fake_headers_dropped, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_good_frame_restarts_count, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_backoff, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
