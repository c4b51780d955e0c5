/* Fake guests for hostd tests and benchmarks: each listens on a unix socket as QEMU's channel
 * does, sends Hello then one Sample per interval with scripted figures, and answers Requests
 * like vscale-guestd would (tracking online vCPUs and MemTotal). Single-threaded, poll()-driven. */
#ifndef VSCALE_FAKEGUEST_H
#define VSCALE_FAKEGUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "frame.h"
#include "sample.h"

enum fg_reply_mode { FG_ACK, FG_REFUSE, FG_SILENT };

struct fakeguest {
	char path[108];
	int lfd, fd;
	struct frame_dec dec;
	bool sending; /* false: stay connected but send nothing (stale data) */
	uint64_t seq;
	/* what the guest reports */
	double busy_pct;
	double avail_pct; /* MemAvailable as % of MemTotal */
	uint32_t cpus_online, cpus_present;
	uint64_t mem_total_kib;
	bool saturated;
	uint32_t interval_ms; /* the sample interval the guest claims; 0 = 200 */
	uint32_t hot_tid;     /* the saturating thread's tid; 0 = 4242 */
	enum fg_reply_mode reply_mode;
	/* a hot-plugged vCPU comes online this many samples later, as on a real guest */
	uint32_t pending_cpus;
	uint64_t pending_seq;
	/* what happened */
	unsigned hellos_sent, requests, acks, refusals;
	uint32_t last_vcpus_req;
	uint64_t last_mem_req_kib;
};

/* Listens on path. 0 or -errno. */
int fg_init(struct fakeguest *g, const char *path, uint32_t cpus, uint64_t mem_total_kib);
void fg_fini(struct fakeguest *g);
/* Polls every guest for up to ms, accepting connections and answering requests. */
void fg_poll(struct fakeguest *g, int n, int ms);
/* Sends one sample from every connected, sending guest. */
void fg_tick(struct fakeguest *g, int n, uint64_t now_ms);
/* One turn of a test's loop: a sample from every guest once *next_ms is due (then due again
 * 200 ms later; 0 = now), and the guests polled for up to 20 ms. */
void fg_step(struct fakeguest *g, int n, uint64_t *next_ms);
/* Writes raw bytes (hostile input) to a connected guest's stream. */
int fg_raw(struct fakeguest *g, const void *buf, size_t len);
/* A channel storm: accepts every connection waiting on a guest that is not connected and closes
 * it at once, after a Hello and one sample when hello is true. Returns how many it accepted. */
unsigned fg_accept_close(struct fakeguest *g, bool hello, uint64_t now_ms);

#endif
