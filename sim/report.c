/* Tables, JSON and gnuplot plots of simulation results (what each figure means is in
 * simulate.h; the goal's reading in goal.c). */
#include "report.h"

#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KIB_PER_GIB (1024.0 * 1024.0)

extern char **environ;

static void env_line(FILE *out, const struct sim_env *env)
{
	fprintf(out,
	        "   VM vCPUs %u..%u, memory %.2f..%.2f GiB in %llu KiB blocks; sample every %.1f s; "
	        "latency: +vCPU %.1f s, -vCPU %.1f s, memory %.1f s/GiB up, %.1f s/GiB down\n",
	        env->vcpus_min, env->vcpus_max, (double)env->mem_min_kib / KIB_PER_GIB,
	        (double)env->mem_max_kib / KIB_PER_GIB, (unsigned long long)env->granule_kib,
	        env->interval_ms / 1000.0, env->vcpu_up_ms / 1000.0, env->vcpu_down_ms / 1000.0,
	        env->mem_up_ms_per_gib / 1000.0, env->mem_down_ms_per_gib / 1000.0);
}

void report_table(FILE *out, const struct report_run *run, const struct report_trace *rt)
{
	const struct trace *t = rt->t;
	const struct sim_result *d = &rt->res[0];

	fprintf(out, "== %s (%s, %zu rows, %zu missing; %.1f h simulated; policy %s)\n", t->name,
	        t->format, t->rows, t->rows_missing, d->hours, run->policy);
	env_line(out, rt->env);
	fprintf(out, "%-12s %9s %9s %7s %7s %7s %7s %7s %7s %9s %9s %6s %6s\n", "", "vCPU-h",
	        "GiB-h", "slack", "slack", "slack", "under", "under", "under", "short", "short",
	        "vCPU", "mem");
	fprintf(out, "%-12s %9s %9s %7s %7s %7s %7s %7s %7s %9s %9s %6s %6s\n", "controller", "",
	        "", "CPU %", "mem %", "both %", "CPU %", "mem %", "any %", "core-h", "GiB-h",
	        "acts", "acts");
	for (size_t i = 0; i < rt->nres; i++) {
		const struct sim_result *r = &rt->res[i];

		fprintf(out,
		        "%-12s %9.1f %9.1f %7.1f %7.1f %7.1f %7.2f %7.2f %7.2f %9.2f %9.2f %6llu "
		        "%6llu\n",
		        r->ctl, r->vcpu_h, r->gib_h, r->cpu_slack_pct, r->mem_slack_pct,
		        goal_combined_slack(r), r->under_cpu_pct, r->under_mem_pct,
		        r->under_any_pct, r->short_core_h, r->short_gib_h,
		        (unsigned long long)r->vcpu_actions, (unsigned long long)r->mem_actions);
	}
	fprintf(out, "%-12s %9.1f %9.1f   (core-hours and GiB-hours demanded)\n", "demand",
	        d->demand_core_h, d->demand_gib_h);
	if (rt->have_goal)
		fprintf(out,
		        "goal (slack >= %.0f%% below proxmox, no more under-provisioned time): %s; "
		        "slack cut %.1f%% (CPU %.1f%%, memory %.1f%%); oracle's cut %.1f%%%s; "
		        "avoidable slack cut %.1f%%%s%s\n",
		        GOAL_SLACK_CUT_PCT, rt->goal.met ? "met" : "MISSED", rt->goal.cut_pct,
		        rt->goal.cpu_cut_pct, rt->goal.mem_cut_pct, rt->goal.oracle_cut_pct,
		        rt->goal.feasible ? "" : " (infeasible: judged on avoidable slack)",
		        rt->goal.avoidable_cut_pct, rt->goal.met ? "" : ": ", rt->goal.why);
	fputc('\n', out);
}

void report_summary(FILE *out, const struct report_trace *rts, size_t n)
{
	size_t met = 0;

	fprintf(out, "%-14s %7s %7s %7s %7s %7s %7s %7s %7s %7s  %s\n", "", "slack %", "", "",
	        "cut %", "", "under", "CPU %", "under", "mem %", "goal");
	fprintf(out, "%-14s %7s %7s %7s %7s %7s %7s %7s %7s %7s\n", "trace", "vscale", "proxmox",
	        "oracle", "vs px", "avoid.", "vscale", "proxmox", "vscale", "proxmox");
	for (size_t i = 0; i < n; i++) {
		const struct report_trace *rt = &rts[i];
		const struct sim_result *v = &rt->res[0], *p = NULL;

		for (size_t j = 1; j < rt->nres; j++)
			if (!strcmp(rt->res[j].ctl, "proxmox"))
				p = &rt->res[j];
		if (!p || !rt->have_goal)
			continue;
		met += rt->goal.met;
		fprintf(out, "%-14s %7.1f %7.1f %7.1f %7.1f %7.1f %7.2f %7.2f %7.2f %7.2f  %s%s\n",
		        rt->t->name, goal_combined_slack(v), goal_combined_slack(p),
		        goal_combined_slack(&rt->res[rt->nres - 1]), rt->goal.cut_pct,
		        rt->goal.avoidable_cut_pct, v->under_cpu_pct, p->under_cpu_pct,
		        v->under_mem_pct, p->under_mem_pct, rt->goal.met ? "met" : "MISSED",
		        rt->goal.feasible ? "" : " (infeasible)");
	}
	fprintf(out, "goal met on %zu of %zu traces\n", met, n);
}

/* ---- JSON ---- */

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void json_result(FILE *out, const struct sim_result *r)
{
	fprintf(out, "{\"controller\":");
	json_str(out, r->ctl);
	fprintf(out,
	        ",\"hours\":%.4f,\"vcpu_hours\":%.4f,\"gib_hours\":%.4f,"
	        "\"demand_core_hours\":%.4f,\"demand_gib_hours\":%.4f,"
	        "\"cpu_slack_pct\":%.4f,\"mem_slack_pct\":%.4f,\"combined_slack_pct\":%.4f,"
	        "\"under_cpu_pct\":%.4f,\"under_mem_pct\":%.4f,\"under_any_pct\":%.4f,"
	        "\"short_core_hours\":%.4f,\"short_gib_hours\":%.4f,"
	        "\"vcpu_actions\":%llu,\"mem_actions\":%llu,\"refused\":%llu}",
	        r->hours, r->vcpu_h, r->gib_h, r->demand_core_h, r->demand_gib_h, r->cpu_slack_pct,
	        r->mem_slack_pct, goal_combined_slack(r), r->under_cpu_pct, r->under_mem_pct,
	        r->under_any_pct, r->short_core_h, r->short_gib_h,
	        (unsigned long long)r->vcpu_actions, (unsigned long long)r->mem_actions,
	        (unsigned long long)r->refused);
}

static void json_trace(FILE *out, const struct report_trace *rt)
{
	fprintf(out, "{\"trace\":");
	json_str(out, rt->t->name);
	fprintf(out, ",\"format\":");
	json_str(out, rt->t->format);
	fprintf(out, ",\"rows\":%zu,\"rows_missing\":%zu,\"results\":[", rt->t->rows,
	        rt->t->rows_missing);
	for (size_t i = 0; i < rt->nres; i++) {
		if (i)
			fputc(',', out);
		json_result(out, &rt->res[i]);
	}
	fputc(']', out);
	if (rt->have_goal) {
		fprintf(out,
		        ",\"goal\":{\"met\":%s,\"feasible\":%s,\"slack_cut_pct\":%.4f,"
		        "\"cpu_slack_cut_pct\":%.4f,\"mem_slack_cut_pct\":%.4f,"
		        "\"oracle_slack_cut_pct\":%.4f,\"avoidable_slack_cut_pct\":%.4f,\"why\":",
		        rt->goal.met ? "true" : "false", rt->goal.feasible ? "true" : "false",
		        rt->goal.cut_pct, rt->goal.cpu_cut_pct, rt->goal.mem_cut_pct,
		        rt->goal.oracle_cut_pct, rt->goal.avoidable_cut_pct);
		json_str(out, rt->goal.why);
		fputc('}', out);
	}
	fputc('}', out);
}

void report_json(FILE *out, const struct report_run *run, const struct report_trace *rts, size_t n)
{
	const struct sim_env *env = run->env;

	fprintf(out, "{\"policy\":");
	json_str(out, run->policy);
	fprintf(out,
	        ",\"vm\":{\"vcpus_min\":%u,\"vcpus_max\":%u,\"mem_min_kib\":%llu,"
	        "\"mem_max_kib\":%llu,\"granule_kib\":%llu,\"interval_ms\":%u},\"traces\":[",
	        env->vcpus_min, env->vcpus_max, (unsigned long long)env->mem_min_kib,
	        (unsigned long long)env->mem_max_kib, (unsigned long long)env->granule_kib,
	        env->interval_ms);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', out);
		json_trace(out, &rts[i]);
	}
	fprintf(out, "]}\n");
}

/* ---- plots ---- */

static FILE *open_in(const char *dir, const char *name, const char *suffix, char *path, size_t cap)
{
	snprintf(path, cap, "%s/%s%s", dir, name, suffix);
	return fopen(path, "we");
}

static int write_demand(FILE *f, const struct trace *t, double scale)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct trace_point *p = &t->pts[i];

		if (p->starts_segment && i)
			fputc('\n', f); /* gnuplot breaks the line at missing data */
		fprintf(f, "%.4f %.4f %.4f\n", p->t_s / scale, p->cpu_cores,
		        p->mem_kib / KIB_PER_GIB);
	}
	return ferror(f) ? -EIO : 0;
}

static int write_alloc(FILE *f, const struct sim_result *r, double scale)
{
	for (size_t i = 0; i < r->npts; i++) {
		const struct sim_point *p = &r->pts[i];

		if (p->starts_segment && i)
			fputc('\n', f);
		fprintf(f, "%.4f %u %.4f\n", p->t_s / scale, p->vcpus,
		        (double)p->mem_kib / KIB_PER_GIB);
	}
	return ferror(f) ? -EIO : 0;
}

static const char *const colors[] = {"#1f5fbf", "#d62728", "#2ca02c", "#555555",
                                     "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

/* The oracle is the demand rounded up: it would hide the demand, and changes every sample. */
static bool plotted(const struct sim_result *r)
{
	return strcmp(r->ctl, "oracle") != 0;
}

static void write_panel(FILE *gp, const struct report_trace *rt, const char *dir, int col,
                        const char *ylabel)
{
	const char *name = rt->t->name;

	fprintf(gp, "set ylabel '%s'\n", ylabel);
	fprintf(gp,
	        "plot '%s/%s.demand.dat' using 1:%d with filledcurves y1=0 lc rgb '#c8c8c8' "
	        "title 'demand'",
	        dir, name, col);
	for (size_t i = 0; i < rt->nres; i++)
		if (plotted(&rt->res[i]))
			fprintf(gp,
			        ", \\\n  '%s/%s.%s.dat' using 1:%d with steps lw %s lc rgb '%s' title '%s'",
			        dir, name, rt->res[i].ctl, col, i == 0 ? "2" : "1.2",
			        colors[i % (sizeof(colors) / sizeof(colors[0]))], rt->res[i].ctl);
	fputc('\n', gp);
}

static int write_script(FILE *gp, const char *dir, const char *format,
                        const struct report_trace *rt, const char *unit)
{
	const char *name = rt->t->name;

	if (!strcmp(format, "svg"))
		fprintf(gp, "set terminal svg size 1200,760 dynamic font 'sans,11'\n");
	else
		fprintf(gp, "set terminal pngcairo size 1200,760 font 'sans,10'\n");
	fprintf(gp, "set output '%s/%s.%s'\n", dir, name, format);
	fprintf(gp,
	        "set multiplot layout 2,1 title '%s: demand and allocation (vscale policy vs "
	        "baselines)'\n",
	        name);
	fprintf(gp, "set key outside right top\nset grid\nset xlabel 'time (%s)'\n", unit);
	fprintf(gp, "set style fill transparent solid 0.6 noborder\nset yrange [0:*]\n");
	write_panel(gp, rt, dir, 2, "CPU (cores / vCPUs)");
	write_panel(gp, rt, dir, 3, "memory (GiB)");
	fprintf(gp, "unset multiplot\n");
	return ferror(gp) ? -EIO : 0;
}

/* gnuplot somewhere on PATH */
static bool have_gnuplot(void)
{
	const char *path = getenv("PATH");
	char buf[4096];

	while (path && *path) {
		size_t len = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/gnuplot", (int)len, path);
		if (access(buf, X_OK) == 0)
			return true;
		path += len + (path[len] == ':');
	}
	return false;
}

static int run_gnuplot(const char *script, char *err, size_t errlen)
{
	char *argv[] = {"gnuplot", (char *)script, NULL};
	pid_t pid;
	int st, r;

	r = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
	if (r != 0) {
		snprintf(err, errlen, "gnuplot: %s", strerror(r));
		return -r;
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(err, errlen, "gnuplot %s failed (status %d)", script, st);
		return -EIO;
	}
	return 0;
}

static int write_file(const char *dir, const char *name, const char *suffix,
                      int (*fn)(FILE *, const void *, double), const void *arg, double scale,
                      char *err, size_t errlen)
{
	char path[4096];
	FILE *f = open_in(dir, name, suffix, path, sizeof(path));
	int r;

	if (!f) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	r = fn(f, arg, scale);
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
	return r;
}

static int demand_fn(FILE *f, const void *arg, double scale)
{
	return write_demand(f, arg, scale);
}

static int alloc_fn(FILE *f, const void *arg, double scale)
{
	return write_alloc(f, arg, scale);
}

int report_plot(const char *dir, const char *format, const struct report_trace *rt, char *err,
                size_t errlen)
{
	const char *name = rt->t->name;
	double span_h = rt->t->n ? rt->t->pts[rt->t->n - 1].t_s / 3600.0 : 0;
	double scale = span_h > 72 ? 86400.0 : 3600.0;
	const char *unit = span_h > 72 ? "days" : "hours";
	char path[4096], suffix[64];
	FILE *gp;
	int r;

	if (strchr(dir, '\'') || strchr(name, '\'')) {
		snprintf(err, errlen, "%s/%s: a quote in the path cannot go into a gnuplot script",
		         dir, name);
		return -EINVAL;
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(-r));
		return r;
	}
	r = write_file(dir, name, ".demand.dat", demand_fn, rt->t, scale, err, errlen);
	for (size_t i = 0; r == 0 && i < rt->nres; i++) {
		if (!plotted(&rt->res[i]))
			continue;
		snprintf(suffix, sizeof(suffix), ".%s.dat", rt->res[i].ctl);
		r = write_file(dir, name, suffix, alloc_fn, &rt->res[i], scale, err, errlen);
	}
	if (r < 0)
		return r;
	gp = open_in(dir, name, ".gp", path, sizeof(path));
	if (!gp) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	r = write_script(gp, dir, format, rt, unit);
	if (fclose(gp) != 0 && r == 0)
		r = -errno;
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (!have_gnuplot())
		return 1;
	return run_gnuplot(path, err, errlen);
}
