/* Framing for the guest byte stream: a fixed header with magic, version, type, length and a zlib
 * CRC, then the payload. The decoder is incremental, bounded by FRAME_MAX_LEN, and after any bad
 * header or CRC it rescans from the byte after the bad magic, so garbage costs bytes, not sync. */
#include "frame.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const uint8_t magic[4] = {'V', 'S', 'C', 'L'};

static uint32_t frame_crc(const uint8_t *hdr, const uint8_t *payload, size_t len)
{
	uLong crc = crc32(0L, Z_NULL, 0);

	crc = crc32(crc, hdr + 4, 4); /* version, type, length */
	if (len > 0)
		crc = crc32(crc, payload, (uInt)len);
	return (uint32_t)crc;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int frame_encode(enum frame_type type, const void *payload, size_t len, uint8_t *buf, size_t cap)
{
	if (type < FRAME_HELLO || type > FRAME_TYPE_MAX)
		return -EINVAL;
	if (len > FRAME_MAX_PAYLOAD || cap < FRAME_HEADER_LEN + len)
		return -EMSGSIZE;
	memcpy(buf, magic, 4);
	buf[4] = FRAME_VERSION;
	buf[5] = (uint8_t)type;
	put_le16(buf + 6, (uint16_t)len);
	if (len > 0)
		memmove(buf + FRAME_HEADER_LEN, payload, len);
	put_le32(buf + 8, frame_crc(buf, buf + FRAME_HEADER_LEN, len));
	return (int)(FRAME_HEADER_LEN + len);
}

#define DEC_MIN_CAP  512
#define DEC_KEEP_CAP 4096 /* a drained buffer larger than this is given back */

void frame_dec_init(struct frame_dec *d)
{
	memset(d, 0, sizeof(*d));
}

void frame_dec_fini(struct frame_dec *d)
{
	free(d->buf);
	d->buf = NULL;
	d->cap = d->start = d->end = 0;
}

void frame_dec_reset(struct frame_dec *d)
{
	d->start = d->end = 0;
	if (d->cap > DEC_KEEP_CAP) {
		free(d->buf);
		d->buf = NULL;
		d->cap = 0;
	}
}

/* Makes room for `want` more bytes: compacts, then grows up to FRAME_MAX_LEN. */
static void make_room(struct frame_dec *d, size_t want)
{
	size_t need, cap;
	uint8_t *nb;

	if (d->start == d->end && d->cap > DEC_KEEP_CAP && want <= DEC_KEEP_CAP) {
		/* drained after a large frame: give the memory back */
		free(d->buf);
		d->buf = NULL;
		d->cap = d->start = d->end = 0;
	}
	if (d->end + want <= d->cap)
		return;
	if (d->start > 0) {
		memmove(d->buf, d->buf + d->start, d->end - d->start);
		d->end -= d->start;
		d->start = 0;
	}
	need = d->end + want;
	if (need <= d->cap || d->cap >= FRAME_MAX_LEN)
		return;
	cap = d->cap ? d->cap : DEC_MIN_CAP;
	while (cap < need && cap < FRAME_MAX_LEN)
		cap *= 2;
	if (cap > FRAME_MAX_LEN)
		cap = FRAME_MAX_LEN;
	nb = realloc(d->buf, cap);
	if (!nb)
		return; /* take what fits; the caller retries */
	d->buf = nb;
	d->cap = cap;
}

size_t frame_dec_feed(struct frame_dec *d, const void *data, size_t len)
{
	size_t room;

	make_room(d, len);
	room = d->cap - d->end;
	if (len > room)
		len = room;
	if (len > 0)
		memcpy(d->buf + d->end, data, len);
	d->end += len;
	return len;
}

size_t frame_dec_pending(const struct frame_dec *d)
{
	return d->end - d->start;
}

/* Moves start to the next magic. When there is none, drops everything but a tail that could be
 * the first bytes of a magic. Returns true when a magic is at start. */
static bool find_magic(struct frame_dec *d)
{
	const uint8_t *base = d->buf + d->start;
	size_t avail = d->end - d->start;
	const uint8_t *m;
	size_t keep;

	if (avail == 0)
		return false;
	m = memmem(base, avail, magic, sizeof(magic));

	if (m) {
		d->stats.skipped_bytes += (size_t)(m - base);
		d->start += (size_t)(m - base);
		return true;
	}
	keep = avail < sizeof(magic) - 1 ? avail : sizeof(magic) - 1;
	while (keep > 0 && memcmp(base + avail - keep, magic, keep) != 0)
		keep--;
	d->stats.skipped_bytes += avail - keep;
	d->start += avail - keep;
	return false;
}

int frame_dec_next(struct frame_dec *d, struct frame *ret)
{
	for (;;) {
		const uint8_t *h;
		size_t len;

		if (!find_magic(d) || d->end - d->start < FRAME_HEADER_LEN)
			return 0;
		h = d->buf + d->start;
		len = (size_t)h[6] | (size_t)h[7] << 8;
		if (h[4] != FRAME_VERSION || h[5] < FRAME_HELLO || h[5] > FRAME_TYPE_MAX ||
		    len > FRAME_MAX_PAYLOAD) {
			d->stats.bad_frames++;
			d->start++;
			d->stats.skipped_bytes++;
			continue;
		}
		if (d->end - d->start < FRAME_HEADER_LEN + len)
			return 0;
		if (get_le32(h + 8) != frame_crc(h, h + FRAME_HEADER_LEN, len)) {
			d->stats.bad_frames++;
			d->start++;
			d->stats.skipped_bytes++;
			continue;
		}
		ret->type = (enum frame_type)h[5];
		ret->payload = h + FRAME_HEADER_LEN;
		ret->len = len;
		d->start += FRAME_HEADER_LEN + len;
		d->stats.frames++;
		if (d->start == d->end)
			d->start = d->end =
			        0; /* the payload stays where it is until the next feed */
		return 1;
	}
}
