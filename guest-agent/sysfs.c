/* Reads and writes the kernel's CPU and memory-block hotplug files under a root directory. Every
 * id comes from a directory listing and is bounded, and every sysfs read is checked before use:
 * anything unexpected reads as ITEM_UNKNOWN or an error, never as a state to act on. */
#include "sysfs.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotplug.h"
#include "util.h"

#define CPU_DIR "/sys/devices/system/cpu"
#define MEM_DIR "/sys/devices/system/memory"
#define MEMINFO "/proc/meminfo"

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int ids_push(struct ids *s, uint32_t id)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint32_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = id;
	return 0;
}

/* "cpu12" with prefix "cpu" -> 12. Rejects "cpufreq", "cpu", leading zeros and ids >= max. */
static bool parse_id(const char *name, const char *prefix, uint32_t max, uint32_t *ret)
{
	size_t len = strlen(prefix);
	const char *p = name + len;
	uint32_t id = 0;

	if (strncmp(name, prefix, len) != 0 || !*p || (p[0] == '0' && p[1]))
		return false;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		id = id * 10 + (uint32_t)(*p - '0');
		if (id >= max)
			return false;
	}
	*ret = id;
	return true;
}

/* Lists the <prefix>N entries of dir into *ret, sorted. */
static int list_ids(const char *dir, const char *prefix, uint32_t max, struct ids *ret)
{
	struct ids s = {0};
	struct dirent *de;
	uint32_t id;
	DIR *d;
	int r = 0;

	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!parse_id(de->d_name, prefix, max, &id))
			continue;
		r = ids_push(&s, id);
		if (r < 0)
			break;
	}
	closedir(d);
	if (r < 0) {
		free(s.v);
		return r;
	}
	if (s.n)
		qsort(s.v, s.n, sizeof(*s.v), cmp_u32);
	*ret = s;
	return 0;
}

/* Reads a small sysfs file with surrounding whitespace trimmed. */
static int read_word(const char *path, char *buf, size_t cap)
{
	char *p;
	ssize_t n;

	n = util_read_file(path, buf, cap);
	if (n < 0)
		return (int)n;
	while (n > 0 && strchr(" \t\r\n", buf[n - 1]))
		buf[--n] = '\0';
	for (p = buf; *p == ' ' || *p == '\t'; p++)
		;
	memmove(buf, p, strlen(p) + 1);
	return 0;
}

static int item_path(char *buf, const char *dir, const char *prefix, uint32_t id, const char *file)
{
	if ((size_t)snprintf(buf, PATH_MAX, "%s/%s%u/%s", dir, prefix, id, file) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* Decimal or hex digits only: strtoull alone would accept a sign and leading junk. */
static bool parse_u64(const char *s, int base, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	if (base == 16 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (!*s || !strchr(base == 16 ? "0123456789abcdefABCDEF" : "0123456789", *s))
		return false;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno)
		return false;
	*ret = v;
	return true;
}

static char *join(const char *root, size_t len, const char *rel)
{
	size_t rlen = strlen(rel);
	char *s = malloc(len + rlen + 1);

	if (s) {
		memcpy(s, root, len);
		memcpy(s + len, rel, rlen + 1);
	}
	return s;
}

int sysfs_init(struct sysfs *s, const char *root)
{
	size_t len = strlen(root);

	while (len > 0 && root[len - 1] == '/')
		len--;
	s->cpu_dir = join(root, len, CPU_DIR);
	s->mem_dir = join(root, len, MEM_DIR);
	s->meminfo = join(root, len, MEMINFO);
	if (!s->cpu_dir || !s->mem_dir || !s->meminfo)
		return -ENOMEM;
	return 0;
}

void sysfs_fini(struct sysfs *s)
{
	free(s->cpu_dir);
	free(s->mem_dir);
	free(s->meminfo);
}

int sysfs_switch_auto_online(const struct sysfs *s)
{
	char path[PATH_MAX], buf[32];
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/auto_online_blocks", s->mem_dir) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	r = read_word(path, buf, sizeof(buf));
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	if (strcmp(buf, "offline") != 0)
		return 0;
	r = util_write_file(path, "online_movable");
	return r < 0 ? r : 1;
}

int sysfs_list_cpus(const struct sysfs *s, struct ids *ret)
{
	return list_ids(s->cpu_dir, "cpu", HOTPLUG_MAX_CPUS, ret);
}

int sysfs_list_blocks(const struct sysfs *s, struct ids *ret)
{
	return list_ids(s->mem_dir, "memory", HOTPLUG_MAX_BLOCKS, ret);
}

enum item_state sysfs_cpu_state(const struct sysfs *s, uint32_t id)
{
	char path[PATH_MAX], buf[16];
	int r;

	if (item_path(path, s->cpu_dir, "cpu", id, "online") < 0)
		return ITEM_UNKNOWN;
	r = read_word(path, buf, sizeof(buf));
	if (r == -ENOENT)
		return ITEM_FIXED;
	if (r < 0)
		return ITEM_UNKNOWN;
	if (!strcmp(buf, "1"))
		return ITEM_ONLINE;
	if (!strcmp(buf, "0"))
		return ITEM_OFFLINE;
	return ITEM_UNKNOWN;
}

int sysfs_set_cpu(const struct sysfs *s, uint32_t id, bool online)
{
	char path[PATH_MAX];
	int r;

	r = item_path(path, s->cpu_dir, "cpu", id, "online");
	return r < 0 ? r : util_write_file(path, online ? "1" : "0");
}

enum item_state sysfs_block_state(const struct sysfs *s, uint32_t id)
{
	char path[PATH_MAX], buf[32];

	if (item_path(path, s->mem_dir, "memory", id, "state") < 0 ||
	    read_word(path, buf, sizeof(buf)) < 0)
		return ITEM_UNKNOWN;
	if (!strcmp(buf, "online"))
		return ITEM_ONLINE;
	if (!strcmp(buf, "offline"))
		return ITEM_OFFLINE;
	return ITEM_UNKNOWN; /* "going-offline" or garbage */
}

bool sysfs_block_movable(const struct sysfs *s, uint32_t id)
{
	char path[PATH_MAX], buf[64];

	if (item_path(path, s->mem_dir, "memory", id, "valid_zones") < 0 ||
	    read_word(path, buf, sizeof(buf)) < 0)
		return false;
	return !strncmp(buf, "Movable", 7) && (!buf[7] || buf[7] == ' ');
}

static int block_write(const struct sysfs *s, uint32_t id, const char *val)
{
	char path[PATH_MAX];
	int r;

	r = item_path(path, s->mem_dir, "memory", id, "state");
	return r < 0 ? r : util_write_file(path, val);
}

int sysfs_online_block(const struct sysfs *s, uint32_t id)
{
	int r = block_write(s, id, "online_movable");

	return r == -EINVAL ? block_write(s, id, "online") : r;
}

int sysfs_offline_block(const struct sysfs *s, uint32_t id)
{
	return block_write(s, id, "offline");
}

static bool meminfo_field(const char *text, const char *key, uint64_t *ret)
{
	size_t len = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, len) && p[len] == ':')
			return parse_u64(p + len + 1, 10, ret);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

int sysfs_read_meminfo(const struct sysfs *s, uint64_t *ret_total_kib, uint64_t *ret_avail_kib)
{
	char buf[8192];
	uint64_t total, avail;
	ssize_t n;

	n = util_read_file(s->meminfo, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	if (!meminfo_field(buf, "MemTotal", &total) ||
	    !meminfo_field(buf, "MemAvailable", &avail) || total == 0)
		return -EINVAL;
	*ret_total_kib = total;
	*ret_avail_kib = avail;
	return 0;
}

int sysfs_read_block_kib(const struct sysfs *s, uint64_t *ret_kib)
{
	char path[PATH_MAX], buf[32];
	uint64_t bytes;
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/block_size_bytes", s->mem_dir) >= sizeof(path))
		return -ENAMETOOLONG;
	r = read_word(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	if (!parse_u64(buf, 16, &bytes) || bytes < 4096 || bytes > (UINT64_C(1) << 40))
		return -EINVAL;
	*ret_kib = bytes / 1024;
	return 0;
}
