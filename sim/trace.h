/* Utilization traces for vscale-sim: what a VM demanded over time, read from CSV.
 *
 * Two formats, told apart by the first line:
 *   vscale:    "time_s,cpu_cores,mem_bytes" then one row per reading (seconds, cores, bytes);
 *              '#' lines are comments.
 *   Bitbrains: the GWA-T-12 per-VM files ("Timestamp [ms];\tCPU cores;\t..."): `;`+tab
 *              separated, Unix SECONDS despite the header, CPU demand = usage MHz / (capacity
 *              MHz / cores), memory demand = usage KB. Rows of all zeros (VM off or not
 *              monitored) are missing data, not idleness; cores and capacity may change.
 *
 * Missing data (a zero row, or two readings further apart than max_gap_s) ends a segment: the
 * simulator does not interpolate across it. trace_load() returns a new trace; free it with
 * trace_free(). Errors are "file:line: what is wrong". */
#ifndef VSCALE_SIM_TRACE_H
#define VSCALE_SIM_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct trace_point {
	double t_s;          /* seconds since the first row */
	double cpu_cores;    /* CPU demand, cores */
	double mem_kib;      /* memory demand, KiB */
	bool starts_segment; /* missing data before this row: no interpolation from the previous */
};

struct trace {
	char name[128];  /* file name without directory and .csv */
	char format[16]; /* "vscale" or "bitbrains" */
	struct trace_point *pts;
	size_t n, cap_pts;        /* readings kept, and room for them */
	size_t rows;              /* data rows read, missing ones included */
	size_t rows_missing;      /* all-zero rows (Bitbrains) */
	double epoch_s;           /* the first row's own timestamp */
	uint32_t cap_cores_max;   /* most cores the trace says the VM had; 0 = not said */
	uint64_t cap_mem_kib_max; /* most memory it says the VM had; 0 = not said */
};

/* Reads a trace file. Consecutive readings more than max_gap_s apart start a new segment.
 * Returns 0 and a new trace in *ret, -EINVAL with "file:line: message" in err for bad content,
 * or -errno when the file cannot be read. A trace needs at least two readings. */
int trace_load(const char *path, double max_gap_s, struct trace **ret, char *err, size_t errlen);
void trace_free(struct trace *t);

/* Demand at time t_s, linear between the readings around it (i is a cursor the caller keeps,
 * start it at 0 and move forward only; t_s must lie within a segment). */
void trace_demand_at(const struct trace *t, size_t *i, double t_s, double *ret_cpu_cores,
                     double *ret_mem_kib);

/* The segment that starts at index i ends at the returned index (inclusive). */
size_t trace_segment_end(const struct trace *t, size_t i);

/* Peak demand over the whole trace. */
void trace_peak(const struct trace *t, double *ret_cpu_cores, double *ret_mem_kib);

/* Seconds covered by segments (missing data excluded). */
double trace_covered_s(const struct trace *t);

#endif
