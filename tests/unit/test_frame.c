/* Framing: every valid stream split at every byte boundary decodes to the same frames; garbage
 * before, between and inside frames is skipped and counted; bad CRC, version, type and length
 * are rejected and the decoder resynchronises on the next magic. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

struct stream {
	uint8_t bytes[4 * FRAME_MAX_LEN];
	size_t len;
	int nframes;
	size_t lens[16];
	enum frame_type types[16];
};

static void add_frame(struct stream *s, enum frame_type t, size_t len, uint8_t fill)
{
	uint8_t payload[FRAME_MAX_PAYLOAD];
	int n;

	memset(payload, fill, len);
	for (size_t i = 0; i < len; i++)
		payload[i] = (uint8_t)(fill + i * 7);
	n = frame_encode(t, payload, len, s->bytes + s->len, sizeof(s->bytes) - s->len);
	assert_int_equal(n, FRAME_HEADER_LEN + len);
	s->len += (size_t)n;
	s->lens[s->nframes] = len;
	s->types[s->nframes] = t;
	s->nframes++;
}

static void add_bytes(struct stream *s, const void *b, size_t len)
{
	memcpy(s->bytes + s->len, b, len);
	s->len += len;
}

/* Feeds the stream in chunks of `chunk` bytes (0 = split at `split` into two parts) and checks
 * the decoded frames against what was encoded. */
static void decode_and_check(const struct stream *s, size_t split, size_t chunk,
                             struct frame_stats *ret_stats)
{
	static struct frame_dec d;
	size_t off = 0;
	int got = 0;

	frame_dec_fini(&d);
	frame_dec_init(&d);
	while (off < s->len) {
		size_t n = chunk ? chunk : (off < split ? split - off : s->len - off);
		size_t taken;
		struct frame f;

		if (n > s->len - off)
			n = s->len - off;
		taken = frame_dec_feed(&d, s->bytes + off, n);
		off += taken;
		while (frame_dec_next(&d, &f) == 1) {
			assert_true(got < s->nframes);
			assert_int_equal(f.type, s->types[got]);
			assert_int_equal(f.len, s->lens[got]);
			for (size_t i = 0; i < f.len; i++)
				assert_int_equal(f.payload[i], (uint8_t)(got + 1 + i * 7));
			got++;
		}
		if (taken == 0)
			fail_msg("decoder full with no frame to return");
	}
	assert_int_equal(got, s->nframes);
	if (ret_stats)
		*ret_stats = d.stats;
}

static void test_every_split(void **state)
{
	static struct stream s;

	memset(&s, 0, sizeof(s));
	add_frame(&s, FRAME_HELLO, 0, 1);
	add_frame(&s, FRAME_SAMPLE, 37, 2);
	add_frame(&s, FRAME_REQUEST, 1, 3);
	add_frame(&s, FRAME_REPLY, 300, 4);
	for (size_t split = 0; split <= s.len; split++)
		decode_and_check(&s, split, 0, NULL);
	for (size_t chunk = 1; chunk <= 64; chunk++)
		decode_and_check(&s, 0, chunk, NULL);
}

static void test_max_payload(void **state)
{
	static struct stream s;
	uint8_t big[FRAME_MAX_PAYLOAD + 1];
	uint8_t out[FRAME_MAX_LEN + 16];

	memset(&s, 0, sizeof(s));
	add_frame(&s, FRAME_SAMPLE, FRAME_MAX_PAYLOAD, 1);
	add_frame(&s, FRAME_SAMPLE, FRAME_MAX_PAYLOAD, 2);
	decode_and_check(&s, 0, 1000, NULL);
	decode_and_check(&s, 0, 1, NULL);
	memset(big, 0, sizeof(big));
	assert_int_equal(frame_encode(FRAME_SAMPLE, big, sizeof(big), out, sizeof(out)), -EMSGSIZE);
	assert_int_equal(frame_encode(FRAME_SAMPLE, big, 100, out, 50), -EMSGSIZE);
	assert_int_equal(frame_encode(0, big, 1, out, sizeof(out)), -EINVAL);
	assert_int_equal(frame_encode(FRAME_TYPE_MAX + 1, big, 1, out, sizeof(out)), -EINVAL);
}

static void test_garbage_between(void **state)
{
	static struct stream s;
	struct frame_stats st;
	const char junk1[] = "hello world, not a frame";
	const char junk2[] = "VSCVSCLVSC"; /* partial and fake magics */

	memset(&s, 0, sizeof(s));
	add_bytes(&s, junk1, sizeof(junk1));
	add_frame(&s, FRAME_SAMPLE, 20, 1);
	add_bytes(&s, junk2, sizeof(junk2) - 1);
	add_frame(&s, FRAME_SAMPLE, 5, 2);
	add_bytes(&s, "VS", 2);
	add_frame(&s, FRAME_REPLY, 9, 3);
	for (size_t split = 0; split <= s.len; split++) {
		decode_and_check(&s, split, 0, &st);
		assert_int_equal(st.frames, 3);
		assert_true(st.skipped_bytes >= sizeof(junk1) + 2);
	}
	for (size_t chunk = 1; chunk < 20; chunk++)
		decode_and_check(&s, 0, chunk, NULL);
}

static void test_corrupt_frames(void **state)
{
	static struct stream s;
	struct frame_stats st;
	size_t second;

	/* every byte of the middle frame flipped in turn: the first and last always decode */
	memset(&s, 0, sizeof(s));
	add_frame(&s, FRAME_SAMPLE, 10, 1);
	second = s.len;
	add_frame(&s, FRAME_SAMPLE, 10, 2);
	add_frame(&s, FRAME_SAMPLE, 10, 3);
	for (size_t i = second; i < second + FRAME_HEADER_LEN + 10; i++) {
		static struct frame_dec d;
		struct frame f;
		int got = 0, third = 0;

		s.bytes[i] ^= 0x5a;
		frame_dec_fini(&d);
		frame_dec_init(&d);
		assert_int_equal(frame_dec_feed(&d, s.bytes, s.len), s.len);
		while (frame_dec_next(&d, &f) == 1) {
			got++;
			if (f.payload[0] == 3)
				third = 1;
		}
		/* a flipped length byte may make the decoder wait for bytes that never come; the
		 * frame after it is then only recovered once more data arrives */
		assert_true(got >= 1);
		if (i != second + 6 && i != second + 7)
			assert_true(third);
		st = d.stats;
		assert_int_equal(st.frames, (uint64_t)got);
		s.bytes[i] ^= 0x5a;
	}
}

static void test_bad_header_fields(void **state)
{
	static struct frame_dec d;
	uint8_t buf[64], good[64];
	struct frame f;
	int n;

	n = frame_encode(FRAME_SAMPLE, "abc", 3, good, sizeof(good));
	assert_int_equal(n, FRAME_HEADER_LEN + 3);

	/* bad version */
	memcpy(buf, good, (size_t)n);
	buf[4] = 9;
	frame_dec_fini(&d);
	frame_dec_init(&d);
	frame_dec_feed(&d, buf, (size_t)n);
	frame_dec_feed(&d, good, (size_t)n);
	assert_int_equal(frame_dec_next(&d, &f), 1);
	assert_memory_equal(f.payload, "abc", 3);
	assert_int_equal(frame_dec_next(&d, &f), 0);
	assert_int_equal(d.stats.bad_frames, 1);

	/* oversized length: rejected at once, not waited for */
	memcpy(buf, good, (size_t)n);
	buf[6] = 0xff;
	buf[7] = 0xff;
	frame_dec_fini(&d);
	frame_dec_init(&d);
	frame_dec_feed(&d, buf, (size_t)n);
	frame_dec_feed(&d, good, (size_t)n);
	assert_int_equal(frame_dec_next(&d, &f), 1);
	assert_int_equal(d.stats.bad_frames, 1);

	/* unknown type */
	memcpy(buf, good, (size_t)n);
	buf[5] = 0;
	frame_dec_fini(&d);
	frame_dec_init(&d);
	frame_dec_feed(&d, buf, (size_t)n);
	frame_dec_feed(&d, good, (size_t)n);
	assert_int_equal(frame_dec_next(&d, &f), 1);
	assert_int_equal(frame_dec_next(&d, &f), 0);
}

static void test_garbage_flood_bounded(void **state)
{
	static struct frame_dec d;
	uint8_t junk[4096];
	uint8_t good[64];
	struct frame f;
	unsigned seed = 12345;
	int n;

	frame_dec_fini(&d);
	frame_dec_init(&d);
	/* 4 MiB of random bytes with magics sprinkled in: never a frame, never stuck */
	for (int round = 0; round < 1024; round++) {
		size_t off = 0;

		for (size_t i = 0; i < sizeof(junk); i++) {
			seed = seed * 1103515245u + 12345u;
			junk[i] = (uint8_t)(seed >> 16);
		}
		memcpy(junk + (round % 4000), "VSCL", 4);
		while (off < sizeof(junk)) {
			off += frame_dec_feed(&d, junk + off, sizeof(junk) - off);
			while (frame_dec_next(&d, &f) == 1)
				fail_msg("random bytes decoded as a frame");
		}
		assert_true(frame_dec_pending(&d) <= FRAME_MAX_LEN);
	}
	assert_true(d.stats.skipped_bytes > 4000000);
	/* a good frame after the flood still comes through (after any half-open fake frame) */
	n = frame_encode(FRAME_HELLO, "x", 1, good, sizeof(good));
	for (int i = 0; i < FRAME_MAX_LEN / n + 2; i++) {
		frame_dec_feed(&d, good, (size_t)n);
		if (frame_dec_next(&d, &f) == 1) {
			assert_int_equal(f.type, FRAME_HELLO);
			return;
		}
	}
	fail_msg("decoder never resynchronised after the flood");
}

static void test_buffer_grows_and_shrinks(void **state)
{
	static uint8_t big[FRAME_MAX_LEN];
	struct frame_dec d;
	struct frame f;
	uint8_t small[64];
	int n;

	frame_dec_init(&d);
	n = frame_encode(FRAME_SAMPLE, "abc", 3, small, sizeof(small));
	frame_dec_feed(&d, small, (size_t)n);
	assert_true(d.cap <= 512);
	assert_int_equal(frame_dec_next(&d, &f), 1);
	memset(big + FRAME_HEADER_LEN, 7, FRAME_MAX_PAYLOAD);
	n = frame_encode(FRAME_SAMPLE, big + FRAME_HEADER_LEN, FRAME_MAX_PAYLOAD, big, sizeof(big));
	assert_int_equal(frame_dec_feed(&d, big, (size_t)n), (size_t)n);
	assert_int_equal(d.cap, FRAME_MAX_LEN);
	assert_int_equal(frame_dec_next(&d, &f), 1);
	assert_int_equal(f.len, FRAME_MAX_PAYLOAD);
	/* drained: the next small frame gives the big buffer back */
	n = frame_encode(FRAME_SAMPLE, "abc", 3, small, sizeof(small));
	frame_dec_feed(&d, small, (size_t)n);
	assert_true(d.cap <= 4096);
	assert_int_equal(frame_dec_next(&d, &f), 1);
	assert_memory_equal(f.payload, "abc", 3);
	frame_dec_reset(&d);
	assert_int_equal(frame_dec_pending(&d), 0);
	frame_dec_fini(&d);
	assert_null(d.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_every_split),
	        cmocka_unit_test(test_max_payload),
	        cmocka_unit_test(test_garbage_between),
	        cmocka_unit_test(test_corrupt_frames),
	        cmocka_unit_test(test_bad_header_fields),
	        cmocka_unit_test(test_garbage_flood_bounded),
	        cmocka_unit_test(test_buffer_grows_and_shrinks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
