/* Writes the binary seeds of the frame, wire and stream fuzz targets (tests/fuzz/corpus/) from
 * real messages, so the seeds follow proto/vscale.proto. The config targets' seeds are text files
 * kept by hand. Run after a wire change: fuzz-mkseeds tests/fuzz/corpus (make fuzz-seeds). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frame.h"
#include "sample.h"
#include "wire.h"

struct buf {
	uint8_t b[4 * FRAME_MAX_LEN];
	size_t len;
};

static const char *outdir;

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > sizeof(b->b)) {
		fprintf(stderr, "mkseeds: seed too large\n");
		exit(1);
	}
	memcpy(b->b + b->len, p, n);
	b->len += n;
}

static void put_u8(struct buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void save(const char *target, const char *name, const struct buf *b)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(b->b, 1, b->len, f) != b->len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void put_frame(struct buf *b, enum frame_type t, const uint8_t *p, int n)
{
	uint8_t f[FRAME_MAX_LEN];
	int m = frame_encode(t, p, (size_t)n, f, sizeof(f));

	if (n < 0 || m < 0) {
		fprintf(stderr, "mkseeds: cannot encode a seed message\n");
		exit(1);
	}
	put(b, f, (size_t)m);
}

static int hello(uint8_t *p)
{
	struct hello h = {.protocol_version = VSCALE_PROTOCOL_VERSION,
	                  .session_nonce = 0x1234567890abcdefull,
	                  .caps = CAP_CPU_ONLINE | CAP_MEM_ONLINE | CAP_MEM_OFFLINE | CAP_THREADS};

	strcpy(h.agent_version, "0.1.0");
	strcpy(h.boot_id, "2b18fb62-6f81-4820-a9a9-43daad21541a");
	return wire_encode_hello(&h, p, FRAME_MAX_PAYLOAD);
}

/* a full sample: every figure present */
static struct sample full_sample(uint64_t seq, float busy, uint64_t avail_kib, bool saturated)
{
	struct sample s = {.seq = seq, .mono_ms = 1000 * seq, .interval_ms = 1000};

	s.has = (1u << SF__COUNT) - 1;
	s.cpus_online = 2;
	s.cpus_present = 4;
	s.cpu_busy_pct = busy;
	s.cpu_steal_pct = 0.5f;
	s.load1 = 1.5f;
	s.load5 = 1.0f;
	s.load15 = 0.5f;
	s.psi_cpu_some_avg10 = 3.0f;
	s.psi_cpu_full_avg10 = 0.0f;
	s.mem_total_kib = 2097152;
	s.mem_avail_kib = avail_kib;
	s.mem_free_kib = avail_kib / 2;
	s.swap_total_kib = 1048576;
	s.swap_free_kib = 1048576;
	s.psi_mem_some_avg10 = 0.2f;
	s.psi_mem_full_avg10 = 0.1f;
	s.mem_blocks_online = 16;
	s.mem_blocks_movable = 8;
	s.mem_block_kib = 131072;
	s.rootfs_size_kib = 10485760;
	s.rootfs_used_kib = 2097152;
	s.saturated = saturated;
	s.nthreads = 2;
	s.threads[0] = (struct sample_thread){.tid = 138, .comm = "e2e-loadgen", .cpu_pct = 99.5f};
	s.threads[1] = (struct sample_thread){.tid = 1, .comm = "init", .cpu_pct = 0.5f};
	return s;
}

static int sample(uint8_t *p, const struct sample *s)
{
	return wire_encode_sample(s, p, FRAME_MAX_PAYLOAD);
}

static int reply(uint8_t *p)
{
	struct reply r = {.id = 7,
	                  .status = REPLY_PARTIAL,
	                  .has_vcpus_online = true,
	                  .vcpus_online = 2,
	                  .has_mem_total = true,
	                  .mem_total_kib = 1048576,
	                  .has_mem_offlined = true,
	                  .mem_offlined_kib = 262144};

	strcpy(r.reason, "2 of 4 blocks offlined");
	return wire_encode_reply(&r, p, FRAME_MAX_PAYLOAD);
}

static void frame_seeds(void)
{
	uint8_t p[FRAME_MAX_PAYLOAD];
	struct sample s = full_sample(1, 42.0f, 1048576, false);
	struct buf *b = calloc(1, sizeof(*b));

	/* raw: a session as guestd sends it, fed in chunks */
	put_u8(b, 0);
	put_u8(b, 7);
	put_frame(b, FRAME_HELLO, p, hello(p));
	put_frame(b, FRAME_SAMPLE, p, sample(p, &s));
	put_frame(b, FRAME_REPLY, p, reply(p));
	save("frame", "session", b);
	/* raw: garbage, a frame with a bad CRC, a good one, then half a frame */
	b->len = 0;
	put_u8(b, 0);
	put_u8(b, 1);
	put(b, "garbage VSC VSCL\x01", 17);
	put_frame(b, FRAME_SAMPLE, p, sample(p, &s));
	b->b[b->len - 1] ^= 0x55;
	put_frame(b, FRAME_HELLO, p, hello(p));
	put_frame(b, FRAME_SAMPLE, p, sample(p, &s));
	b->len -= 10;
	save("frame", "garbage-badcrc-partial", b);
	/* raw: an empty payload and the largest one */
	b->len = 0;
	put_u8(b, 0);
	put_u8(b, 200);
	put_frame(b, FRAME_REQUEST, p, 0);
	memset(p, 'V', sizeof(p));
	put_frame(b, FRAME_REPLY, p, FRAME_MAX_PAYLOAD);
	save("frame", "empty-and-largest", b);
	/* built: valid frame, garbage, corrupted frame, long patterned frame */
	b->len = 0;
	put_u8(b, 1);
	put_u8(b, 3);
	put(b, "\x00\x01\x05\x00hello", 9);       /* valid, 5 bytes from the input */
	put(b, "\x17garbage!", 9);                /* garbage, 1 + 0x17 / 3 bytes */
	put(b, "\x01\x01\x03\x00xyz\x02\x40", 9); /* corrupted: byte 6 ^= 0x41 */
	put(b, "\x00\x03\xff\xbf\x03VSCL", 9);    /* valid, 16383 bytes of "VSCL" */
	put(b, "\x04\x02\x00\x00\x03\x10", 6);    /* corrupted: length 4096 */
	save("frame", "built", b);
	free(b);
}

static void wire_seeds(void)
{
	struct buf *b = calloc(1, sizeof(*b));
	uint8_t p[FRAME_MAX_PAYLOAD];
	struct sample s = full_sample(9, 99.0f, 65536, true), bare = {.seq = 1, .mono_ms = 5};
	struct request rq[] = {
	        {.id = 1, .kind = REQ_SET_ONLINE_VCPUS, .vcpus = 3},
	        {.id = 2,
	         .kind = REQ_SHRINK_MEMORY,
	         .mem_total_kib = 1048576,
	         .mem_margin_kib = 262144,
	         .hold_ms = 60000},
	        {.id = 3, .kind = REQ_RELEASE},
	};
	char name[32];

	put_u8(b, 0);
	put(b, p, (size_t)hello(p));
	save("wire", "hello", b);
	b->len = 0;
	put_u8(b, 1);
	put(b, p, (size_t)sample(p, &s));
	save("wire", "sample-full", b);
	b->len = 0;
	put_u8(b, 1);
	put(b, p, (size_t)sample(p, &bare));
	save("wire", "sample-bare", b);
	for (size_t i = 0; i < 3; i++) {
		b->len = 0;
		put_u8(b, 2);
		put(b, p, (size_t)wire_encode_request(&rq[i], p, sizeof(p)));
		snprintf(name, sizeof(name), "request-%d", (int)rq[i].kind);
		save("wire", name, b);
	}
	b->len = 0;
	put_u8(b, 3);
	put(b, p, (size_t)reply(p));
	save("wire", "reply", b);
	/* encode direction: a valid struct sample as its bytes */
	b->len = 0;
	put_u8(b, 4 | 1);
	put(b, &s, sizeof(s));
	save("wire", "struct-sample", b);
	free(b);
}

/* header of fuzz_stream: policy, vcpus, memory, host vCPUs free, host memory free, step, chunk */
static void stream_seed(const char *name, const uint8_t hdr[7], float busy, uint64_t avail_kib,
                        bool saturated, int n)
{
	struct buf *b = calloc(1, sizeof(*b));
	uint8_t p[FRAME_MAX_PAYLOAD];

	put(b, hdr, 7);
	put_frame(b, FRAME_HELLO, p, hello(p));
	for (int i = 1; i <= n; i++) {
		struct sample s = full_sample((uint64_t)i, busy, avail_kib, saturated);

		if (!saturated)
			s.threads[0].cpu_pct = 10.0f;
		put_frame(b, FRAME_SAMPLE, p, sample(p, &s));
	}
	save("stream", name, b);
	free(b);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	frame_seeds();
	wire_seeds();
	stream_seed("cpu-high", (const uint8_t[7]){1, 2, 12, 4, 8, 90, 0}, 97.0f, 1048576, false,
	            12);
	stream_seed("cpu-low", (const uint8_t[7]){1, 4, 12, 4, 8, 90, 64}, 2.0f, 1048576, false,
	            12);
	stream_seed("mem-low", (const uint8_t[7]){0, 2, 8, 4, 8, 90, 0}, 30.0f, 65536, false, 12);
	stream_seed("mem-high", (const uint8_t[7]){1, 2, 30, 4, 8, 90, 0}, 30.0f, 2000000, false,
	            12);
	stream_seed("saturated", (const uint8_t[7]){2, 2, 12, 4, 8, 90, 0}, 55.0f, 1048576, true,
	            12);
	return 0;
}
