/* Persisted per-VM state: "key value" lines in <state-dir>/<uuid>.state, written with
 * util_write_atomic() (temp file, fsync, rename) so a crash leaves the old or the new file. */
#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int path_for(const char *dir, const char *uuid, char *buf, size_t cap)
{
	/* the uuid comes from libvirt; still, never let it name another directory */
	if (strchr(uuid, '/') || strstr(uuid, ".."))
		return -EINVAL;
	if ((size_t)snprintf(buf, cap, "%s/%s.state", dir, uuid) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

int state_load(const char *dir, const char *uuid, struct vm_state *ret)
{
	char path[4096], buf[2048], *line, *save = NULL;
	struct vm_state s = {0};
	ssize_t n;
	int r = path_for(dir, uuid, path, sizeof(path));

	if (r < 0)
		return r;
	n = util_read_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *val = strchr(line, ' ');

		if (!val)
			return -EINVAL;
		*val++ = '\0';
		if (!strcmp(line, "vcpu_up_ms"))
			s.vcpu_up_ms = strtoull(val, NULL, 10);
		else if (!strcmp(line, "vcpu_down_ms"))
			s.vcpu_down_ms = strtoull(val, NULL, 10);
		else if (!strcmp(line, "mem_up_ms"))
			s.mem_up_ms = strtoull(val, NULL, 10);
		else if (!strcmp(line, "mem_down_ms"))
			s.mem_down_ms = strtoull(val, NULL, 10);
		else if (!strcmp(line, "vcpus_granted"))
			s.vcpus_granted = (uint32_t)strtoul(val, NULL, 10);
		else if (!strcmp(line, "paused"))
			s.paused = strcmp(val, "1") == 0;
		else if (!strcmp(line, "last_action"))
			snprintf(s.last_action, sizeof(s.last_action), "%s", val);
		/* unknown keys: written by a newer version; ignore */
	}
	*ret = s;
	return 0;
}

int state_save(const char *dir, const char *uuid, const struct vm_state *s)
{
	char path[4096], buf[1024];
	int r = path_for(dir, uuid, path, sizeof(path));
	int n;

	if (r < 0)
		return r;
	n = snprintf(buf, sizeof(buf),
	             "vcpu_up_ms %llu\nvcpu_down_ms %llu\nmem_up_ms %llu\nmem_down_ms %llu\n"
	             "vcpus_granted %u\npaused %d\nlast_action %s\n",
	             (unsigned long long)s->vcpu_up_ms, (unsigned long long)s->vcpu_down_ms,
	             (unsigned long long)s->mem_up_ms, (unsigned long long)s->mem_down_ms,
	             s->vcpus_granted, s->paused ? 1 : 0, s->last_action);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -EMSGSIZE;
	return util_write_atomic(path, buf, (size_t)n);
}

uint64_t state_wall_to_mono(uint64_t wall_ms, uint64_t now_wall_ms, uint64_t now_mono_ms)
{
	uint64_t age;

	if (wall_ms == 0)
		return 0;
	age = wall_ms > now_wall_ms ? 0 : now_wall_ms - wall_ms;
	/* older than this boot: keep it at 1 ms, which is "long ago" but not "never" */
	return age >= now_mono_ms ? 1 : now_mono_ms - age;
}

uint64_t state_mono_to_wall(uint64_t mono_ms, uint64_t now_wall_ms, uint64_t now_mono_ms)
{
	if (mono_ms == 0)
		return 0;
	return now_wall_ms - (now_mono_ms > mono_ms ? now_mono_ms - mono_ms : 0);
}
