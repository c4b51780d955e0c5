/* Byte-stream framing for the guest channel: encoder and incremental decoder. No I/O.
 *
 * A frame is a 12-byte header then the payload:
 *   magic "VSCL" (4) | version u8 | type u8 | length u16 LE | crc32 u32 LE
 * The CRC (zlib crc32) covers version, type, length and the payload. Payloads are at most
 * FRAME_MAX_PAYLOAD bytes. The decoder takes any chunk size and, on a bad header or CRC,
 * rescans for the next magic, counting what it skipped.
 */
#ifndef VSCALE_FRAME_H
#define VSCALE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_VERSION     1
#define FRAME_HEADER_LEN  12
#define FRAME_MAX_PAYLOAD 16384
#define FRAME_MAX_LEN     (FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD)

enum frame_type {
	FRAME_HELLO = 1,
	FRAME_SAMPLE = 2,
	FRAME_REQUEST = 3,
	FRAME_REPLY = 4,
};
#define FRAME_TYPE_MAX FRAME_REPLY

/* Writes one frame into buf (cap bytes). Returns the frame length, or -EMSGSIZE when the payload
 * is over the cap or the frame does not fit, -EINVAL for an unknown type. */
int frame_encode(enum frame_type type, const void *payload, size_t len, uint8_t *buf, size_t cap);

struct frame {
	enum frame_type type;
	const uint8_t *payload; /* points into the decoder; valid until the next feed/next call */
	size_t len;
};

struct frame_stats {
	uint64_t frames;        /* good frames returned */
	uint64_t skipped_bytes; /* bytes dropped while looking for a magic */
	uint64_t bad_frames;    /* magic found but version, type, length or CRC wrong */
};

/* Decoder state in caller storage. Its buffer grows on demand up to FRAME_MAX_LEN and is given
 * back when it drains, so an idle stream costs a few hundred bytes (hostd keeps thousands). */
struct frame_dec {
	uint8_t *buf; /* owned; NULL until the first feed */
	size_t cap;
	size_t start; /* first unconsumed byte */
	size_t end;   /* one past the last buffered byte */
	struct frame_stats stats;
};

void frame_dec_init(struct frame_dec *d);
/* Frees the buffer; the decoder may be initialised again. */
void frame_dec_fini(struct frame_dec *d);
/* Drops buffered bytes (a new session) and keeps the counters. */
void frame_dec_reset(struct frame_dec *d);

/* Copies up to len bytes in; returns how many were taken (less than len when the buffer is at
 * FRAME_MAX_LEN or memory ran out: call frame_dec_next() until it returns 0, then feed the
 * rest). */
size_t frame_dec_feed(struct frame_dec *d, const void *data, size_t len);

/* Returns 1 and fills *ret when a whole valid frame is buffered, 0 when more bytes are needed.
 * Garbage and bad frames are skipped and counted in d->stats, never returned. */
int frame_dec_next(struct frame_dec *d, struct frame *ret);

/* Bytes buffered and not yet returned as a frame (a partial frame or undecided garbage). */
size_t frame_dec_pending(const struct frame_dec *d);

#endif
