/* The kernel's view of hot-pluggable CPUs and memory blocks under a root directory:
 * <root>/sys/devices/system/{cpu,memory} and <root>/proc/meminfo, so tests run on a fake tree.
 * Lists item ids, reads and writes their states, reads MemTotal / MemAvailable and the memory
 * block size. No policy: what to switch and what to hold is hotplug.c's job. */
#ifndef VSCALE_SYSFS_H
#define VSCALE_SYSFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sysfs {
	char *cpu_dir; /* <root>/sys/devices/system/cpu */
	char *mem_dir; /* <root>/sys/devices/system/memory */
	char *meminfo; /* <root>/proc/meminfo */
};

/* Item ids from a directory listing, sorted ascending. The caller frees v with free(). */
struct ids {
	uint32_t *v;
	size_t n, cap;
};

enum item_state {
	ITEM_UNKNOWN, /* unreadable or unexpected content: leave alone */
	ITEM_ONLINE,
	ITEM_OFFLINE,
	ITEM_FIXED, /* CPU without an online file: online and cannot be offlined */
};

/* Fills *s with the paths under root (a trailing '/' is ignored). Returns 0 or -ENOMEM; either
 * way release with sysfs_fini(), which copes with a half-filled *s. */
int sysfs_init(struct sysfs *s, const char *root);
void sysfs_fini(struct sysfs *s);

/* If the kernel adds hot-plugged memory offline ("offline" in auto_online_blocks), switches it to
 * "online_movable". Returns 1 when it switched, 0 when it left it alone (absent or already
 * onlining), -errno when the switch failed. */
int sysfs_switch_auto_online(const struct sysfs *s);

/* The cpuN (N < HOTPLUG_MAX_CPUS) / memoryN (N < HOTPLUG_MAX_BLOCKS) entries, sorted, into *ret
 * (the caller frees ret->v). Returns 0 or -errno; *ret is written only on success. */
int sysfs_list_cpus(const struct sysfs *s, struct ids *ret);
int sysfs_list_blocks(const struct sysfs *s, struct ids *ret);

enum item_state sysfs_cpu_state(const struct sysfs *s, uint32_t id);
/* Writes cpuN/online. Returns 0 or -errno. */
int sysfs_set_cpu(const struct sysfs *s, uint32_t id, bool online);

/* ITEM_ONLINE, ITEM_OFFLINE or ITEM_UNKNOWN (also for "going-offline"). */
enum item_state sysfs_block_state(const struct sysfs *s, uint32_t id);
/* True when an online block's valid_zones says it is in the Movable zone. */
bool sysfs_block_movable(const struct sysfs *s, uint32_t id);
/* Onlines a block movable if the kernel lets us (so the host can take it back), else wherever
 * it fits. Returns 0 or -errno. */
int sysfs_online_block(const struct sysfs *s, uint32_t id);
/* Returns 0 or -errno (EBUSY: the block holds pinned pages). */
int sysfs_offline_block(const struct sysfs *s, uint32_t id);

/* MemTotal and MemAvailable in KiB. Returns 0, -errno, or -EINVAL when either is missing or
 * MemTotal is 0. Out-params are written only on success. */
int sysfs_read_meminfo(const struct sysfs *s, uint64_t *ret_total_kib, uint64_t *ret_avail_kib);
/* The memory block size (block_size_bytes, hex) in KiB; -EINVAL outside 4 KiB..1 TiB. */
int sysfs_read_block_kib(const struct sysfs *s, uint64_t *ret_kib);

#endif
