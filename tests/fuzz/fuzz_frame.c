/* libFuzzer target: the frame decoder (common/frame.c) on hostile byte streams.
 *
 * Input byte 0 picks the mode, byte 1 seeds the chunk sizes the stream is fed in.
 *  raw (even byte 0): the rest is the stream. Every frame returned, encoded again, equals the
 *    input bytes it came from; skipped + frame bytes + pending = bytes fed; and the result does
 *    not depend on how the stream was cut into chunks (compared with one-shot feeding).
 *  built (odd byte 0): the rest is a list of operations that build a stream of valid frames,
 *    garbage and frames with a corrupted header, then padding that settles any undecided bytes.
 *    The decoder must return exactly the valid frames, in order, count one bad frame per
 *    corrupted one and skip exactly the other bytes. Garbage never holds a 'V', so no magic can
 *    start inside it (see build()); a drained decoder then gives its large buffer back. */
#include "fuzz.h"

#include "frame.h"

#define MAX_STREAM (8 * FRAME_MAX_LEN)

struct got {
	enum frame_type type;
	size_t start, len; /* where in the stream the frame starts; payload length */
};

struct run {
	struct got *frames;
	size_t nframes, cap;
	struct frame_stats stats;
	size_t pending;
};

/* xorshift32: the chunk sizes, reproducible from one input byte */
static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static size_t chunk_len(uint32_t *rng)
{
	uint32_t r = next_rand(rng);

	switch (r % 4) {
	case 0:
		return 1 + (r >> 8) % 3; /* a header split anywhere */
	case 1:
		return 1 + (r >> 8) % 64;
	case 2:
		return 1 + (r >> 8) % 4096;
	default:
		return 1 + (r >> 8) % (2 * FRAME_MAX_LEN); /* more than the decoder takes */
	}
}

/* Checks one returned frame against the stream and records it. */
static void take(struct run *run, const struct frame_dec *d, const struct frame *f,
                 const uint8_t *stream, size_t fed, size_t *frame_bytes)
{
	static uint8_t again[FRAME_MAX_LEN];
	size_t start = (size_t)d->stats.skipped_bytes + *frame_bytes;
	int n;

	FUZZ_CHECK(f->type >= FRAME_HELLO && f->type <= FRAME_TYPE_MAX, "type %d", (int)f->type);
	FUZZ_CHECK(f->len <= FRAME_MAX_PAYLOAD, "len %zu", f->len);
	FUZZ_CHECK(start + FRAME_HEADER_LEN + f->len <= fed, "frame at %zu+%zu past %zu fed", start,
	           f->len, fed);
	n = frame_encode(f->type, f->payload, f->len, again, sizeof(again));
	FUZZ_CHECK(n == (int)(FRAME_HEADER_LEN + f->len), "re-encode gave %d", n);
	FUZZ_CHECK(memcmp(again, stream + start, (size_t)n) == 0,
	           "frame at %zu (type %d, %zu bytes) re-encodes differently", start, (int)f->type,
	           f->len);
	*frame_bytes += (size_t)n;
	if (run->nframes == run->cap) {
		run->cap = run->cap ? run->cap * 2 : 64;
		run->frames = realloc(run->frames, run->cap * sizeof(*run->frames));
		FUZZ_CHECK(run->frames != NULL, "out of memory");
	}
	run->frames[run->nframes++] = (struct got){f->type, start, f->len};
}

/* Decodes stream fed in chunks (seeded by rng; 0 = as much as the decoder takes at once). */
static void decode(const uint8_t *stream, size_t len, uint32_t rng, struct run *run,
                   struct frame_dec *d)
{
	size_t off = 0, frame_bytes = 0;
	struct frame f;

	memset(run, 0, sizeof(*run));
	while (off < len) {
		size_t want = rng ? chunk_len(&rng) : len - off;
		size_t took;

		if (want > len - off)
			want = len - off;
		took = frame_dec_feed(d, stream + off, want);
		off += took;
		/* the documented contract: less than asked only when full; then drain and go on */
		FUZZ_CHECK(took == want || frame_dec_pending(d) > 0, "feed took %zu of %zu", took,
		           want);
		while (frame_dec_next(d, &f) == 1)
			take(run, d, &f, stream, off, &frame_bytes);
		FUZZ_CHECK(frame_dec_pending(d) <= FRAME_MAX_LEN, "pending %zu",
		           frame_dec_pending(d));
	}
	run->stats = d->stats;
	run->pending = frame_dec_pending(d);
	FUZZ_CHECK(run->stats.frames == run->nframes, "stats say %llu frames, got %zu",
	           (unsigned long long)run->stats.frames, run->nframes);
	FUZZ_CHECK(run->stats.skipped_bytes + frame_bytes + run->pending == len,
	           "skipped %llu + frames %zu + pending %zu != %zu fed",
	           (unsigned long long)run->stats.skipped_bytes, frame_bytes, run->pending, len);
}

static void same_runs(const struct run *a, const struct run *b)
{
	FUZZ_CHECK(a->nframes == b->nframes, "%zu frames chunked, %zu in one go", a->nframes,
	           b->nframes);
	for (size_t i = 0; i < a->nframes; i++)
		FUZZ_CHECK(a->frames[i].start == b->frames[i].start &&
		                   a->frames[i].len == b->frames[i].len &&
		                   a->frames[i].type == b->frames[i].type,
		           "frame %zu differs with chunking", i);
	FUZZ_CHECK(a->stats.bad_frames == b->stats.bad_frames &&
	                   a->stats.skipped_bytes == b->stats.skipped_bytes &&
	                   a->pending == b->pending,
	           "counters differ with chunking");
}

static void raw_mode(const uint8_t *stream, size_t len, uint32_t seed)
{
	struct frame_dec d1, d2;
	struct run chunked, whole;

	frame_dec_init(&d1);
	frame_dec_init(&d2);
	decode(stream, len, seed, &chunked, &d1);
	decode(stream, len, 0, &whole, &d2);
	same_runs(&chunked, &whole);
	frame_dec_fini(&d1);
	frame_dec_fini(&d2);
	free(chunked.frames);
	free(whole.frames);
}

/* ---- built streams ---- */

struct built {
	uint8_t *buf;
	size_t len;
	struct got want[4096];
	size_t nwant;
	size_t bad;
};

static void no_magic(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == 'V')
			p[i] = 'v';
}

/* exactly one valid frame, nothing before or after */
static bool one_frame(const uint8_t *p, size_t n)
{
	uint8_t again[FRAME_MAX_LEN];
	size_t len;

	if (n < FRAME_HEADER_LEN || p[5] < FRAME_HELLO || p[5] > FRAME_TYPE_MAX)
		return false;
	len = (size_t)p[6] | (size_t)p[7] << 8;
	if (len != n - FRAME_HEADER_LEN)
		return false;
	return frame_encode((enum frame_type)p[5], p + FRAME_HEADER_LEN, len, again,
	                    sizeof(again)) == (int)n &&
	       memcmp(again, p, n) == 0;
}

/* Appends one frame; its payload comes from the input, or for long ones repeats a short
 * pattern from the input (so a small input reaches the 16 KiB limit). */
static size_t put_frame(struct built *b, struct fuzz_in *in, bool corrupt)
{
	static uint8_t payload[FRAME_MAX_PAYLOAD];
	enum frame_type type = (enum frame_type)(FRAME_HELLO + fuzz_u8(in) % FRAME_TYPE_MAX);
	uint16_t spec = fuzz_u16(in);
	size_t len, n;
	int r;

	if (spec & 0x8000) {
		const uint8_t *pat = fuzz_bytes(in, 1 + fuzz_u8(in) % 8, &n);

		len = (spec & 0x7fff) % (FRAME_MAX_PAYLOAD + 1);
		for (size_t i = 0; i < len; i++)
			payload[i] = n ? pat[i % n] : (uint8_t)i;
	} else {
		memcpy(payload, fuzz_bytes(in, spec % 256, &len), len);
	}
	if (b->len + 2 * FRAME_MAX_LEN > MAX_STREAM || b->nwant == 4096) /* padding fits too */
		return 0;
	r = frame_encode(type, payload, len, b->buf + b->len, FRAME_MAX_LEN);
	FUZZ_CHECK(r == (int)(FRAME_HEADER_LEN + len), "encode %d", r);
	if (corrupt) {
		uint8_t *f = b->buf + b->len;
		size_t at = 4 + fuzz_u8(in) % 8; /* version, type, length or CRC */

		f[at] ^= fuzz_u8(in) | 1u;
		no_magic(f + 4, (size_t)r - 4); /* the only magic is at its start */
		if (!one_frame(f, (size_t)r))
			b->bad++;
		else
			corrupt = false; /* undone by no_magic(): a valid frame after all */
	}
	if (!corrupt)
		b->want[b->nwant++] = (struct got){type, b->len, len};
	b->len += (size_t)r;
	return (size_t)r;
}

static void build(struct built *b, struct fuzz_in *in)
{
	while (in->left > 0) {
		uint8_t op = fuzz_u8(in);
		size_t n;

		if (op % 3 == 0 && put_frame(b, in, false) == 0)
			break;
		if (op % 3 == 1 && put_frame(b, in, true) == 0)
			break;
		if (op % 3 == 2) {
			const uint8_t *g = fuzz_bytes(in, 1 + op / 3, &n);

			if (b->len + n > MAX_STREAM - FRAME_MAX_LEN)
				break;
			memcpy(b->buf + b->len, g, n);
			no_magic(b->buf + b->len, n);
			b->len += n;
		}
	}
	/* settles a corrupted header whose length reaches past the end */
	memset(b->buf + b->len, 'z', FRAME_MAX_LEN);
	b->len += FRAME_MAX_LEN;
}

static void built_mode(struct fuzz_in *in, uint32_t seed)
{
	static struct built b;
	static uint8_t buf[MAX_STREAM];
	size_t frame_bytes = 0;
	struct frame_dec d;
	struct run run;

	b.buf = buf;
	b.len = b.nwant = b.bad = 0;
	build(&b, in);
	frame_dec_init(&d);
	decode(b.buf, b.len, seed, &run, &d);
	FUZZ_CHECK(run.nframes == b.nwant, "%zu frames decoded, %zu valid ones sent", run.nframes,
	           b.nwant);
	for (size_t i = 0; i < b.nwant; i++) {
		FUZZ_CHECK(run.frames[i].start == b.want[i].start &&
		                   run.frames[i].type == b.want[i].type &&
		                   run.frames[i].len == b.want[i].len,
		           "frame %zu: got type %d len %zu at %zu, sent type %d len %zu at %zu", i,
		           (int)run.frames[i].type, run.frames[i].len, run.frames[i].start,
		           (int)b.want[i].type, b.want[i].len, b.want[i].start);
		frame_bytes += FRAME_HEADER_LEN + b.want[i].len;
	}
	FUZZ_CHECK(run.stats.bad_frames == b.bad, "%llu bad frames counted, %zu sent",
	           (unsigned long long)run.stats.bad_frames, b.bad);
	FUZZ_CHECK(run.pending == 0 && run.stats.skipped_bytes == b.len - frame_bytes,
	           "pending %zu, skipped %llu of %zu non-frame bytes", run.pending,
	           (unsigned long long)run.stats.skipped_bytes, b.len - frame_bytes);
	/* drained: one more byte and the decoder holds no more than an idle stream needs */
	FUZZ_CHECK(frame_dec_feed(&d, "x", 1) == 1 && d.cap <= 4096, "idle decoder keeps %zu bytes",
	           d.cap);
	frame_dec_fini(&d);
	free(run.frames);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t mode = fuzz_u8(&in);
	uint32_t seed = 0x9e3779b9u ^ fuzz_u8(&in);

	if (mode & 1)
		built_mode(&in, seed);
	else
		raw_mode(in.p, in.left, seed);
	return 0;
}
