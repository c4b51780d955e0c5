/* CSV trace readers (vscale's own three-column format and Bitbrains GWA-T-12) and demand lookup
 * with linear interpolation between readings. The readers keep every reading in memory (a month
 * at 300 s is 8,640 rows); bad content is reported as "file:line: what is wrong". */
#include "trace.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VSCALE_HEADER "time_s,cpu_cores,mem_bytes"
#define BB_PREFIX     "Timestamp [ms]"
#define BB_FIELDS     11
#define BB_MIN_FIELDS 7
/* a Bitbrains timestamp above this is in milliseconds after all (year 5138 in seconds) */
#define MS_THRESHOLD 1e11

enum bb_col {
	BB_TIME,
	BB_CORES,
	BB_CAP_MHZ,
	BB_USE_MHZ,
	BB_USE_PCT,
	BB_MEM_CAP_KB,
	BB_MEM_USE_KB,
};

static const char *const bb_names[BB_MIN_FIELDS] = {
        "timestamp",         "CPU cores",     "CPU capacity provisioned [MHZ]",
        "CPU usage [MHZ]",   "CPU usage [%]", "memory capacity provisioned [KB]",
        "memory usage [KB]",
};

struct reader {
	const char *path;
	unsigned line;
	char *err;
	size_t errlen;
	struct trace *t;
	size_t cap;
	bool have_prev;
	double prev_raw_t; /* the previous reading's timestamp, as written */
	bool gap_pending;  /* a missing row since the last reading */
	double ms_div;     /* 1, or 1000 when a Bitbrains file really is in ms */
	double max_gap_s;
};

__attribute__((format(printf, 2, 3))) static int bad(struct reader *r, const char *fmt, ...)
{
	int n = snprintf(r->err, r->errlen, "%s:%u: ", r->path, r->line);
	va_list ap;

	if (n >= 0 && (size_t)n < r->errlen) {
		va_start(ap, fmt);
		vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* Splits s in place at sep; returns the number of fields (at most max). */
static size_t split(char *s, char sep, char **fields, size_t max)
{
	size_t n = 0;

	for (;;) {
		char *next = strchr(s, sep);

		if (next)
			*next = '\0';
		if (n < max)
			fields[n] = trim(s);
		n++;
		if (!next)
			return n;
		s = next + 1;
	}
}

static int number(struct reader *r, const char *field, const char *what, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(field, &end);
	if (!*field || *end || errno || !isfinite(v))
		return bad(r, "%s '%s' is not a number", what, field);
	if (v < 0)
		return bad(r, "%s %s is negative", what, field);
	*ret = v;
	return 0;
}

static int push(struct reader *r, double raw_t, double cpu, double mem_kib)
{
	struct trace *t = r->t;
	struct trace_point *p;
	double t_s;

	if (r->have_prev && !(raw_t > r->prev_raw_t))
		return bad(r, "time %.17g is not after the previous reading's %.17g", raw_t,
		           r->prev_raw_t);
	if (t->n == t->cap_pts) {
		size_t cap = t->cap_pts ? t->cap_pts * 2 : 1024;
		struct trace_point *pts = realloc(t->pts, cap * sizeof(*pts));

		if (!pts)
			return -ENOMEM;
		t->pts = pts;
		t->cap_pts = cap;
	}
	if (!r->have_prev)
		t->epoch_s = raw_t / r->ms_div;
	t_s = raw_t / r->ms_div - t->epoch_s;
	p = &t->pts[t->n];
	p->t_s = t_s;
	p->cpu_cores = cpu;
	p->mem_kib = mem_kib;
	p->starts_segment =
	        t->n == 0 || r->gap_pending || t_s - t->pts[t->n - 1].t_s > r->max_gap_s;
	t->n++;
	r->have_prev = true;
	r->prev_raw_t = raw_t;
	r->gap_pending = false;
	return 0;
}

static int vscale_row(struct reader *r, char *line)
{
	char *f[3];
	double v[3];
	size_t n = split(line, ',', f, 3);
	static const char *const what[3] = {"time", "CPU demand", "memory demand"};
	int e;

	if (n != 3)
		return bad(r, "expected 3 fields (time_s,cpu_cores,mem_bytes), got %zu", n);
	for (size_t i = 0; i < 3; i++) {
		e = number(r, f[i], what[i], &v[i]);
		if (e < 0)
			return e;
	}
	r->t->rows++;
	return push(r, v[0], v[1], v[2] / 1024.0);
}

static bool all_zero(const double *v, size_t n)
{
	for (size_t i = 1; i < n; i++) /* the timestamp is never zero */
		if (v[i] != 0)
			return false;
	return true;
}

static int bitbrains_row(struct reader *r, char *line)
{
	char *f[BB_FIELDS];
	double v[BB_FIELDS];
	size_t n = split(line, ';', f, BB_FIELDS);
	size_t use = n < BB_FIELDS ? n : BB_FIELDS;
	double per_core_mhz;
	int e;

	if (n < BB_MIN_FIELDS || n > BB_FIELDS)
		return bad(r, "expected %d fields separated by ';', got %zu", BB_FIELDS, n);
	for (size_t i = 0; i < use; i++) {
		e = number(r, f[i], i < BB_MIN_FIELDS ? bb_names[i] : "field", &v[i]);
		if (e < 0)
			return e;
	}
	r->t->rows++;
	if (!r->have_prev && r->t->rows == 1 && v[BB_TIME] > MS_THRESHOLD)
		r->ms_div = 1000;
	if (all_zero(v, use)) {
		r->t->rows_missing++;
		r->gap_pending = r->have_prev;
		return 0;
	}
	if (v[BB_CORES] == 0 || v[BB_CAP_MHZ] == 0)
		return bad(r, "CPU usage without CPU cores or capacity (cores %s, capacity %s MHz)",
		           f[BB_CORES], f[BB_CAP_MHZ]);
	if (v[BB_CORES] != floor(v[BB_CORES]) || v[BB_CORES] > 4096)
		return bad(r, "CPU cores %s is not a core count", f[BB_CORES]);
	per_core_mhz = v[BB_CAP_MHZ] / v[BB_CORES];
	if ((uint32_t)v[BB_CORES] > r->t->cap_cores_max)
		r->t->cap_cores_max = (uint32_t)v[BB_CORES];
	if ((uint64_t)v[BB_MEM_CAP_KB] > r->t->cap_mem_kib_max)
		r->t->cap_mem_kib_max = (uint64_t)v[BB_MEM_CAP_KB];
	return push(r, v[BB_TIME], v[BB_USE_MHZ] / per_core_mhz, v[BB_MEM_USE_KB]);
}

static void set_name(struct trace *t, const char *path)
{
	const char *base = strrchr(path, '/');
	size_t len;

	base = base ? base + 1 : path;
	snprintf(t->name, sizeof(t->name), "%s", base);
	len = strlen(t->name);
	if (len > 4 && !strcmp(t->name + len - 4, ".csv"))
		t->name[len - 4] = '\0';
}

/* The first line that is not a comment decides the format. */
static int header(struct reader *r, char *line, bool *ret_bitbrains)
{
	char *s = trim(line);

	if (!strncmp(s, BB_PREFIX, strlen(BB_PREFIX))) {
		*ret_bitbrains = true;
		return 0;
	}
	if (!strcmp(s, VSCALE_HEADER)) {
		*ret_bitbrains = false;
		return 0;
	}
	return bad(r, "unknown trace format: expected the header \"" VSCALE_HEADER
	              "\" or a Bitbrains one (\"" BB_PREFIX ";\\tCPU cores;...\")");
}

static int read_rows(struct reader *r, FILE *f)
{
	bool have_header = false, bitbrains = false;
	char *line = NULL;
	size_t cap = 0;
	int e = 0;

	while (e == 0 && getline(&line, &cap, f) >= 0) {
		char *s = trim(line);

		r->line++;
		if (!*s || *s == '#')
			continue;
		if (!have_header) {
			e = header(r, s, &bitbrains);
			have_header = true;
			snprintf(r->t->format, sizeof(r->t->format), "%s",
			         bitbrains ? "bitbrains" : "vscale");
			continue;
		}
		e = bitbrains ? bitbrains_row(r, s) : vscale_row(r, s);
	}
	free(line);
	if (e == 0 && ferror(f))
		e = -EIO;
	if (e == 0 && !have_header)
		e = bad(r, "empty file: expected a header line");
	if (e == 0 && r->t->n < 2)
		e = bad(r, "%zu reading(s) with data; a trace needs at least two", r->t->n);
	return e;
}

int trace_load(const char *path, double max_gap_s, struct trace **ret, char *err, size_t errlen)
{
	struct reader r = {
	        .path = path, .err = err, .errlen = errlen, .ms_div = 1, .max_gap_s = max_gap_s};
	FILE *f;
	int e;

	r.t = calloc(1, sizeof(*r.t));
	if (!r.t)
		return -ENOMEM;
	set_name(r.t, path);
	f = fopen(path, "re");
	if (!f) {
		e = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-e));
		trace_free(r.t);
		return e;
	}
	e = read_rows(&r, f);
	fclose(f);
	if (e < 0) {
		if (e == -ENOMEM || e == -EIO)
			snprintf(err, errlen, "%s: %s", path, strerror(-e));
		trace_free(r.t);
		return e;
	}
	*ret = r.t;
	return 0;
}

void trace_free(struct trace *t)
{
	if (!t)
		return;
	free(t->pts);
	free(t);
}

void trace_demand_at(const struct trace *t, size_t *i, double t_s, double *ret_cpu_cores,
                     double *ret_mem_kib)
{
	const struct trace_point *a, *b;
	double w;

	while (*i + 1 < t->n && t->pts[*i + 1].t_s <= t_s)
		(*i)++;
	a = &t->pts[*i];
	if (*i + 1 >= t->n || t->pts[*i + 1].starts_segment || t_s <= a->t_s) {
		*ret_cpu_cores = a->cpu_cores;
		*ret_mem_kib = a->mem_kib;
		return;
	}
	b = a + 1;
	w = (t_s - a->t_s) / (b->t_s - a->t_s);
	*ret_cpu_cores = a->cpu_cores + w * (b->cpu_cores - a->cpu_cores);
	*ret_mem_kib = a->mem_kib + w * (b->mem_kib - a->mem_kib);
}

size_t trace_segment_end(const struct trace *t, size_t i)
{
	while (i + 1 < t->n && !t->pts[i + 1].starts_segment)
		i++;
	return i;
}

void trace_peak(const struct trace *t, double *ret_cpu_cores, double *ret_mem_kib)
{
	double cpu = 0, mem = 0;

	for (size_t i = 0; i < t->n; i++) {
		cpu = fmax(cpu, t->pts[i].cpu_cores);
		mem = fmax(mem, t->pts[i].mem_kib);
	}
	*ret_cpu_cores = cpu;
	*ret_mem_kib = mem;
}

double trace_covered_s(const struct trace *t)
{
	double s = 0;

	for (size_t i = 0; i < t->n; i++) {
		size_t e = trace_segment_end(t, i);

		s += t->pts[e].t_s - t->pts[i].t_s;
		i = e;
	}
	return s;
}
