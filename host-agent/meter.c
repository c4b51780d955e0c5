/* The metering table: an array of entries sorted by UUID (binary search), one line per entry in
 * the file: "UUID VCPU_SECONDS GIB_SECONDS NAME". */
#include "meter.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct meter {
	char path[PATH_MAX];
	struct meter_entry **e; /* sorted by uuid; entries are heap and never move */
	size_t n, cap;
};

static int cmp_uuid(const char *uuid, const struct meter_entry *e)
{
	return strcmp(uuid, e->uuid);
}

/* index of uuid, or where it would go (and *found = false) */
static size_t find(const struct meter *m, const char *uuid, int *found)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_uuid(uuid, m->e[mid]);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = 0;
	return lo;
}

static struct meter_entry *insert(struct meter *m, const char *uuid)
{
	int found;
	size_t i = find(m, uuid, &found);
	struct meter_entry *e, **grown;

	if (found)
		return m->e[i];
	grown = util_grow_array(m->e, &m->cap, m->n, sizeof(*grown), 64);
	if (!grown)
		return NULL;
	m->e = grown;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	snprintf(e->uuid, sizeof(e->uuid), "%s", uuid);
	memmove(m->e + i + 1, m->e + i, (m->n - i) * sizeof(*m->e));
	m->e[i] = e;
	m->n++;
	return e;
}

static int parse_line(struct meter *m, char *line)
{
	char uuid[64], name[256] = "";
	double v, g;
	struct meter_entry *e;

	if (sscanf(line, "%63s %lf %lf %255[^\n]", uuid, &v, &g, name) < 3 || v < 0 || g < 0 ||
	    strlen(uuid) >= sizeof(e->uuid))
		return -EINVAL;
	e = insert(m, uuid);
	if (!e)
		return -ENOMEM;
	e->vcpu_seconds = v;
	e->gib_seconds = g;
	snprintf(e->name, sizeof(e->name), "%s", name);
	return 0;
}

struct meter *meter_new(const char *dir, char *err, size_t errlen)
{
	struct meter *m = calloc(1, sizeof(*m));
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0;

	if (!m)
		return NULL;
	err[0] = '\0';
	snprintf(m->path, sizeof(m->path), "%s/metering", dir);
	f = fopen(m->path, "re");
	if (!f)
		return m; /* first start */
	while (getline(&line, &cap, f) > 0) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (parse_line(m, line) < 0) {
			snprintf(err, errlen, "%s:%d: not a metering line (UUID VCPU_S GIB_S NAME)",
			         m->path, lineno);
			break;
		}
	}
	free(line);
	fclose(f);
	return m;
}

void meter_free(struct meter *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->e[i]);
	free(m->e);
	free(m);
}

struct meter_entry *meter_get(struct meter *m, const char *uuid, const char *name)
{
	struct meter_entry *e = insert(m, uuid);

	size_t i;

	if (!e || !name)
		return e;
	/* one line per entry: a name is not allowed to break it */
	for (i = 0; name[i] && i + 1 < sizeof(e->name); i++)
		e->name[i] = (unsigned char)name[i] < 0x20 ? '?' : name[i];
	e->name[i] = '\0';
	return e;
}

void meter_add(struct meter_entry *e, uint32_t vcpus, uint64_t mem_kib, uint64_t dt_ms)
{
	double s = (double)dt_ms / 1000.0;

	e->vcpu_seconds += vcpus * s;
	e->gib_seconds += (double)mem_kib / (1024.0 * 1024.0) * s;
}

int meter_save(struct meter *m)
{
	size_t cap = 128 + m->n * 340, n;
	char *buf = malloc(cap);
	int r;

	if (!buf)
		return -ENOMEM;
	n = (size_t)snprintf(buf, cap, "# vscale metering: UUID vCPU-seconds GiB-seconds name\n");
	for (size_t i = 0; i < m->n; i++) {
		const struct meter_entry *e = m->e[i];

		n += (size_t)snprintf(buf + n, cap - n, "%s %.3f %.3f %s\n", e->uuid,
		                      e->vcpu_seconds, e->gib_seconds, e->name);
	}
	r = util_write_atomic(m->path, buf, n);
	free(buf);
	return r;
}
