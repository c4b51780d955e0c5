/* vscale-sim-synth OUTDIR: writes the five synthetic traces shipped in sim/traces/synthetic/
 * (diurnal, bursty, step, ramp, spiky): 48 h, one reading a minute, in vscale-sim's CSV format.
 * Deterministic: a fixed-seed PRNG of our own (splitmix64), no libc rand(), so the committed
 * files can be checked against a fresh run. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define HOURS  48
#define STEP_S 60
#define GIB    (1024.0 * 1024.0 * 1024.0)
#define TWO_PI 6.283185307179586

struct rng {
	uint64_t s;
};

static uint64_t next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static double unif(struct rng *r)
{
	return (double)(next(r) >> 11) / 9007199254740992.0;
}

/* uniform in [-a, a] */
static double noise(struct rng *r, double a)
{
	return (2 * unif(r) - 1) * a;
}

struct point {
	double cpu, mem_gib;
};

typedef struct point (*shape_fn)(struct rng *r, double t_s, void *state);

/* Working hours: 0 at night, 1 at mid-afternoon. */
static double daylight(double t_s)
{
	double d = sin(TWO_PI * (t_s / 86400.0 - 0.30));

	return d > 0 ? pow(d, 1.5) : 0;
}

static struct point diurnal(struct rng *r, double t_s, void *state)
{
	double d = daylight(t_s);

	return (struct point){0.4 + 2.6 * d + noise(r, 0.15), 1.5 + 4.0 * d + noise(r, 0.05)};
}

/* Events (bursts, spikes): a start chance per minute, a length and a height. */
struct events {
	double chance, min_len_s, max_len_s, min_h, max_h, mem_min_gib, mem_max_gib;
	double until_s, height, mem_gib;
};

static void event_tick(struct rng *r, struct events *e, double t_s)
{
	if (t_s < e->until_s)
		return;
	e->height = e->mem_gib = 0;
	if (unif(r) >= e->chance)
		return;
	e->until_s = t_s + e->min_len_s + unif(r) * (e->max_len_s - e->min_len_s);
	e->height = e->min_h + unif(r) * (e->max_h - e->min_h);
	e->mem_gib = e->mem_min_gib + unif(r) * (e->mem_max_gib - e->mem_min_gib);
}

static struct point bursty(struct rng *r, double t_s, void *state)
{
	struct events *e = state;

	event_tick(r, e, t_s);
	return (struct point){0.3 + e->height + noise(r, 0.1), 2.0 + e->mem_gib + noise(r, 0.03)};
}

static struct point spiky(struct rng *r, double t_s, void *state)
{
	struct events *e = state;

	event_tick(r, e, t_s);
	return (struct point){0.8 + e->height + noise(r, 0.2), 3.0 + e->mem_gib + noise(r, 0.02)};
}

static struct point step(struct rng *r, double t_s, void *state)
{
	static const double cpu[] = {0.5, 3.5, 1.5, 6.0, 0.5, 2.5, 5.0, 1.0};
	static const double mem[] = {1.5, 6.0, 3.0, 10.0, 2.0, 4.0, 8.0, 1.5};
	size_t phase = (size_t)(t_s / (6 * 3600.0)) % 8;

	return (struct point){cpu[phase] + noise(r, 0.1), mem[phase] + noise(r, 0.03)};
}

static struct point ramp(struct rng *r, double t_s, void *state)
{
	double f = t_s / (HOURS * 3600.0);

	return (struct point){0.2 + 6.8 * f + noise(r, 0.15), 1.0 + 13.0 * f + noise(r, 0.04)};
}

static int write_trace(const char *dir, const char *name, const char *what, shape_fn fn,
                       void *state, uint64_t seed)
{
	struct rng r = {.s = seed};
	char path[4096];
	FILE *f;
	int e = 0;

	snprintf(path, sizeof(path), "%s/%s.csv", dir, name);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "vscale-sim-synth: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	fprintf(f, "# synthetic trace '%s': %s\n", name, what);
	fprintf(f, "# written by vscale-sim-synth (sim/synth.c); 48 h, one reading a minute\n");
	fprintf(f, "time_s,cpu_cores,mem_bytes\n");
	for (int t = 0; t <= HOURS * 3600; t += STEP_S) {
		struct point p = fn(&r, t, state);

		fprintf(f, "%d,%.3f,%.0f\n", t, fmax(0.0, p.cpu), fmax(0.0, p.mem_gib) * GIB);
	}
	if (ferror(f))
		e = -EIO;
	if (fclose(f) != 0 && e == 0)
		e = -errno;
	if (e < 0)
		fprintf(stderr, "vscale-sim-synth: %s: %s\n", path, strerror(-e));
	return e;
}

int main(int argc, char **argv)
{
	struct events bursts = {.chance = 1.0 / 120,
	                        .min_len_s = 600,
	                        .max_len_s = 2400,
	                        .min_h = 2,
	                        .max_h = 6,
	                        .mem_min_gib = 1,
	                        .mem_max_gib = 3};
	struct events spikes = {.chance = 1.0 / 20,
	                        .min_len_s = 60,
	                        .max_len_s = 180,
	                        .min_h = 3,
	                        .max_h = 7,
	                        .mem_min_gib = 0,
	                        .mem_max_gib = 2};
	int e = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: vscale-sim-synth OUTDIR\n");
		return 1;
	}
	e |= write_trace(argv[1], "diurnal",
	                 "working-hours load, 0.4 to 3 cores and 1.5 to 5.5 GiB, two days", diurnal,
	                 NULL, 1);
	e |= write_trace(argv[1], "bursty",
	                 "0.3 cores and 2 GiB with bursts of 2-6 cores and 1-3 GiB lasting "
	                 "10-40 min, about one every 2 h",
	                 bursty, &bursts, 2);
	e |= write_trace(argv[1], "step", "6 h plateaus between 0.5 and 6 cores, 1.5 and 10 GiB",
	                 step, NULL, 3);
	e |= write_trace(argv[1], "ramp",
	                 "slow ramp from 0.2 to 7 cores and 1 to 14 GiB over two days", ramp, NULL,
	                 4);
	e |= write_trace(argv[1], "spiky",
	                 "0.8 cores and 3 GiB with 1-3 min spikes of 3-7 cores and up to 2 GiB, "
	                 "about one every 20 min",
	                 spiky, &spikes, 5);
	return e ? 1 : 0;
}
