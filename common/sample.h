/* The messages of proto/vscale.proto as plain C structs: what the agents work with. wire.c is the
 * only translator to and from the generated protobuf-c code. Presence of a figure is a bit in
 * `has`: a figure the guest could not read is absent, never zero. */
#ifndef VSCALE_SAMPLE_H
#define VSCALE_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VSCALE_PROTOCOL_VERSION 1
#define SAMPLE_MAX_THREADS      8
#define SAMPLE_COMM_LEN         16

enum sample_field {
	SF_CPU_ONLINE,
	SF_CPU_PRESENT,
	SF_CPU_BUSY,
	SF_CPU_STEAL,
	SF_LOAD,
	SF_PSI_CPU_SOME,
	SF_PSI_CPU_FULL,
	SF_MEM_TOTAL,
	SF_MEM_AVAIL,
	SF_MEM_FREE,
	SF_SWAP,
	SF_PSI_MEM_SOME,
	SF_PSI_MEM_FULL,
	SF_MEM_BLOCKS,
	SF_ROOTFS,
	SF_SATURATED,
	SF_THREADS,
	SF_INTERVAL,
	SF__COUNT
};

#define SAMPLE_HAS(s, f)   ((((s)->has) >> (f)) & 1u)
#define SAMPLE_SET(s, f)   ((s)->has |= (1u << (f)))
#define SAMPLE_CLEAR(s, f) ((s)->has &= ~(1u << (f)))

struct sample_thread {
	uint32_t tid;
	char comm[SAMPLE_COMM_LEN];
	float cpu_pct; /* % of one CPU */
};

struct sample {
	uint64_t seq;
	uint64_t mono_ms;
	uint32_t has; /* bit per enum sample_field */
	uint32_t interval_ms;

	uint32_t cpus_online;
	uint32_t cpus_present;
	float cpu_busy_pct;  /* whole VM, 0..100 */
	float cpu_steal_pct; /* 0..100 */
	float load1, load5, load15;
	float psi_cpu_some_avg10, psi_cpu_full_avg10;

	uint64_t mem_total_kib, mem_avail_kib, mem_free_kib;
	uint64_t swap_total_kib, swap_free_kib;
	float psi_mem_some_avg10, psi_mem_full_avg10;
	uint32_t mem_blocks_online, mem_blocks_movable;
	uint64_t mem_block_kib;

	uint64_t rootfs_size_kib, rootfs_used_kib;

	bool saturated;
	uint32_t nthreads; /* entries used in threads[], hottest first */
	struct sample_thread threads[SAMPLE_MAX_THREADS];
};

enum hello_cap {
	CAP_CPU_ONLINE = 1u << 0,
	CAP_MEM_ONLINE = 1u << 1,
	CAP_MEM_OFFLINE = 1u << 2,
	CAP_THREADS = 1u << 3,
};

struct hello {
	uint32_t protocol_version;
	char agent_version[32];
	char boot_id[40];
	uint64_t session_nonce;
	uint32_t caps; /* enum hello_cap bits */
};

enum request_kind {
	REQ_SET_ONLINE_VCPUS = 1,
	REQ_SHRINK_MEMORY = 2,
	REQ_RELEASE = 3,
};

struct request {
	uint64_t id;
	enum request_kind kind;
	uint32_t vcpus;         /* SET_ONLINE_VCPUS; 0 = absent */
	uint64_t mem_total_kib; /* SHRINK_MEMORY; 0 = absent */
	uint64_t mem_margin_kib;
	uint32_t hold_ms; /* 0 = agent default */
};

enum reply_status {
	REPLY_ACK = 1,
	REPLY_REFUSED = 2,
	REPLY_PARTIAL = 3,
	REPLY_ERROR = 4,
};

struct reply {
	uint64_t id;
	enum reply_status status;
	char reason[128];
	bool has_vcpus_online, has_mem_total, has_mem_offlined;
	uint32_t vcpus_online;
	uint64_t mem_total_kib;
	uint64_t mem_offlined_kib;
};

/* Writes the sample as one line of JSON (no newline), absent figures left out. Returns the
 * length written (excluding the NUL) or -EMSGSIZE when cap is too small. */
int sample_to_json(const struct sample *s, char *buf, size_t cap);

#endif
