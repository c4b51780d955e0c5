/* Small helpers every binary uses: clocks, file reads, growing arrays, fd flags, container_of. */
#ifndef VSCALE_UTIL_H
#define VSCALE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define ARRAY_SIZE(a)                   (sizeof(a) / sizeof((a)[0]))

/* CLOCK_MONOTONIC in ms / µs */
uint64_t util_now_ms(void);
uint64_t util_now_us(void);

/* Reads a whole small file (at most cap-1 bytes) and NUL-terminates it. Returns the length or
 * -errno. A short read ends the file, as it does for /proc, /sys and regular files: one read(2)
 * per file in the common case. */
ssize_t util_read_file(const char *path, char *buf, size_t cap);
/* The same, relative to a directory fd (openat), or AT_FDCWD. */
ssize_t util_read_at(int dirfd, const char *rel, char *buf, size_t cap);
/* Same for dir + "/" + rel. */
ssize_t util_read_file_at(const char *dir, const char *rel, char *buf, size_t cap);
/* Writes s to an existing file (sysfs style: one write). Returns 0 or -errno. */
int util_write_file(const char *path, const char *s);
/* Writes data to path atomically (temp file, fsync, rename). Returns 0 or -errno. */
int util_write_atomic(const char *path, const void *data, size_t len);

/* Room for one more element in arr, an array of *cap elements of elem bytes, n of them used:
 * arr itself while n < *cap, else arr realloc()ed to twice *cap (first_cap when 0) with *cap
 * updated. NULL when out of memory: arr and *cap are unchanged and still the caller's. */
void *util_grow_array(void *arr, size_t *cap, size_t n, size_t elem, size_t first_cap);

int util_set_nonblock(int fd);
/* 64 random bits from getrandom(); falls back to time and pid. */
uint64_t util_random64(void);

#endif
