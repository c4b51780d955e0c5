/* vscale-sim: replays utilization traces through vscale's policy (the code hostd runs, with the
 * policy read from hostd's own config file) and through baselines, and reports allocation,
 * slack, under-provisioning and actions per trace. Wiring only: options, config, the loop. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline.h"
#include "conf.h"
#include "goal.h"
#include "hconf.h"
#include "policy.h"
#include "report.h"
#include "simulate.h"
#include "trace.h"
#include "vsctl.h"

#define KIB_PER_MIB 1024ull
#define KIB_PER_GIB (1024ull * 1024ull)
#define EXIT_GOAL   2

struct opts {
	const char *config, *policy, *vm, *plot_dir, *plot_format;
	bool json, check_goal, bounds_from_trace, log;
	uint64_t interval_ms; /* 0 = the config's [host] interval */
	uint64_t max_gap_ms;
	struct sim_env env;
};

static const char usage[] =
        "usage: vscale-sim [OPTIONS] TRACE.csv...\n"
        "Replays each trace through vscale's policy and baselines (static peak,\n"
        "proxmox-vm-autoscale's default rule, MoM-style moving average).\n"
        "\n"
        "  -c, --config FILE          hostd's config (vscale.conf): the policy and [host] interval\n"
        "  -p, --policy NAME          the [policy NAME] to run (default: 'default')\n"
        "      --vm NAME              the policy hostd would give VM NAME ([vm] rules, overrides)\n"
        "  -i, --interval DUR         guest sample interval (default: the config's, 1s)\n"
        "      --vcpus LO..HI         domain vCPU bounds (default 1..16)\n"
        "      --memory LO..HI        domain memory bounds (default 1G..64G); VMs boot at LO\n"
        "      --bounds-from-trace    take the maxima from the trace's capacity when it has one\n"
        "      --granule SIZE         memory block (default 2M, virtio-mem)\n"
        "      --vcpu-latency DUR     adding a vCPU until the guest has it (default 1s)\n"
        "      --vcpu-down-latency DUR  removing one (default 100ms)\n"
        "      --mem-latency DUR      per GiB added or removed (default 11s)\n"
        "      --max-gap DUR          readings further apart are missing data (default 15m)\n"
        "      --json                 JSON instead of tables\n"
        "      --plot DIR             write DIR/TRACE.png (gnuplot) with the data and script\n"
        "      --plot-format png|svg  (default png)\n"
        "      --check-goal           exit 2 when vscale misses issue 8's goal on a trace\n"
        "      --log                  print every action vscale's policy takes (stderr)\n"
        "  -h, --help\n";

enum {
	OPT_VM = 256,
	OPT_VCPUS,
	OPT_MEMORY,
	OPT_BOUNDS_TRACE,
	OPT_GRANULE,
	OPT_VCPU_LAT,
	OPT_VCPU_DOWN_LAT,
	OPT_MEM_LAT,
	OPT_MAX_GAP,
	OPT_JSON,
	OPT_PLOT,
	OPT_PLOT_FORMAT,
	OPT_CHECK_GOAL,
	OPT_LOG,
};

static const struct option long_opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"policy", required_argument, NULL, 'p'},
        {"vm", required_argument, NULL, OPT_VM},
        {"interval", required_argument, NULL, 'i'},
        {"vcpus", required_argument, NULL, OPT_VCPUS},
        {"memory", required_argument, NULL, OPT_MEMORY},
        {"bounds-from-trace", no_argument, NULL, OPT_BOUNDS_TRACE},
        {"granule", required_argument, NULL, OPT_GRANULE},
        {"vcpu-latency", required_argument, NULL, OPT_VCPU_LAT},
        {"vcpu-down-latency", required_argument, NULL, OPT_VCPU_DOWN_LAT},
        {"mem-latency", required_argument, NULL, OPT_MEM_LAT},
        {"max-gap", required_argument, NULL, OPT_MAX_GAP},
        {"json", no_argument, NULL, OPT_JSON},
        {"plot", required_argument, NULL, OPT_PLOT},
        {"plot-format", required_argument, NULL, OPT_PLOT_FORMAT},
        {"check-goal", no_argument, NULL, OPT_CHECK_GOAL},
        {"log", no_argument, NULL, OPT_LOG},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

static void defaults(struct opts *o)
{
	*o = (struct opts){
	        .plot_format = "png",
	        .max_gap_ms = 15 * 60 * 1000,
	        .env =
	                {
	                        .vcpus_min = 1,
	                        .vcpus_max = 16,
	                        .mem_min_kib = KIB_PER_GIB,
	                        .mem_max_kib = 64 * KIB_PER_GIB,
	                        .granule_kib = 2 * KIB_PER_MIB,
	                        .vcpu_up_ms = 1000,
	                        .vcpu_down_ms = 100,
	                        .mem_up_ms_per_gib = 11000,
	                        .mem_down_ms_per_gib = 11000,
	                },
	};
}

static int bad_opt(const char *opt, const char *arg, const char *why)
{
	fprintf(stderr, "vscale-sim: %s %s: %s\n", opt, arg, why);
	return -EINVAL;
}

static int duration(const char *opt, const char *arg, uint64_t *ret)
{
	char err[CONF_ERR_LEN];

	return conf_parse_duration_ms(arg, ret, err, sizeof(err)) < 0 ? bad_opt(opt, arg, err) : 0;
}

static int sizes(struct opts *o, int c, const char *arg)
{
	char err[CONF_ERR_LEN];
	uint64_t lo, hi;

	switch (c) {
	case OPT_VCPUS:
		if (conf_parse_uint_range(arg, 1, 4096, &lo, &hi, err, sizeof(err)) < 0)
			return bad_opt("--vcpus", arg, err);
		o->env.vcpus_min = (uint32_t)lo;
		o->env.vcpus_max = (uint32_t)hi;
		return 0;
	case OPT_MEMORY:
		if (conf_parse_size_range_kib(arg, &lo, &hi, err, sizeof(err)) < 0)
			return bad_opt("--memory", arg, err);
		if (!lo)
			return bad_opt("--memory", arg, "the minimum must be above 0");
		o->env.mem_min_kib = lo;
		o->env.mem_max_kib = hi;
		return 0;
	default: /* OPT_GRANULE */
		if (conf_parse_size_kib(arg, &lo, err, sizeof(err)) < 0)
			return bad_opt("--granule", arg, err);
		if (!lo)
			return bad_opt("--granule", arg, "must be above 0");
		o->env.granule_kib = lo;
		return 0;
	}
}

static int option(struct opts *o, int c, const char *arg)
{
	switch (c) {
	case 'c':
		o->config = arg;
		return 0;
	case 'p':
		o->policy = arg;
		return 0;
	case OPT_VM:
		o->vm = arg;
		return 0;
	case 'i':
		return duration("--interval", arg, &o->interval_ms);
	case OPT_VCPUS:
	case OPT_MEMORY:
	case OPT_GRANULE:
		return sizes(o, c, arg);
	case OPT_BOUNDS_TRACE:
		o->bounds_from_trace = true;
		return 0;
	case OPT_VCPU_LAT:
		return duration("--vcpu-latency", arg, &o->env.vcpu_up_ms);
	case OPT_VCPU_DOWN_LAT:
		return duration("--vcpu-down-latency", arg, &o->env.vcpu_down_ms);
	case OPT_MEM_LAT:
		if (duration("--mem-latency", arg, &o->env.mem_up_ms_per_gib) < 0)
			return -EINVAL;
		o->env.mem_down_ms_per_gib = o->env.mem_up_ms_per_gib;
		return 0;
	case OPT_MAX_GAP:
		return duration("--max-gap", arg, &o->max_gap_ms);
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_PLOT:
		o->plot_dir = arg;
		return 0;
	case OPT_PLOT_FORMAT:
		if (strcmp(arg, "png") && strcmp(arg, "svg"))
			return bad_opt("--plot-format", arg, "expected png or svg");
		o->plot_format = arg;
		return 0;
	case OPT_CHECK_GOAL:
		o->check_goal = true;
		return 0;
	case OPT_LOG:
		o->log = true;
		return 0;
	default:
		return -EINVAL;
	}
}

static int parse(int argc, char **argv, struct opts *o)
{
	int c;

	defaults(o);
	while ((c = getopt_long(argc, argv, "c:p:i:h", long_opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			exit(0);
		}
		if (c == '?' || option(o, c, optarg) < 0) {
			if (c == '?')
				fputs(usage, stderr);
			return -EINVAL;
		}
	}
	if (optind >= argc) {
		fputs(usage, stderr);
		return -EINVAL;
	}
	if (o->policy && o->vm) {
		fprintf(stderr, "vscale-sim: --policy and --vm both name a policy; give one\n");
		return -EINVAL;
	}
	return 0;
}

/* The policy hostd would run, from its config (or the built-in default). */
static int load_policy(const struct opts *o, struct policy *ret, uint64_t *ret_interval_ms,
                       char *desc, size_t desclen)
{
	struct hconf *c = NULL;
	char err[1024];
	size_t i;

	if (!o->config) {
		if (o->policy && strcmp(o->policy, "default")) {
			fprintf(stderr, "vscale-sim: --policy %s needs --config FILE\n", o->policy);
			return -EINVAL;
		}
		policy_default(ret);
		*ret_interval_ms = 1000; /* [host] interval's default */
		snprintf(desc, desclen, "'default' (built-in)");
		return 0;
	}
	if (hconf_load(o->config, true, &c, err, sizeof(err)) < 0) {
		fprintf(stderr, "vscale-sim: %s\n", err);
		return -EINVAL;
	}
	*ret_interval_ms = c->host.interval_ms;
	if (o->vm) {
		hconf_policy_for(c, o->vm, "", ret);
		snprintf(desc, desclen, "'%s' for vm '%s' from %s", ret->name, o->vm, o->config);
		hconf_free(c);
		return 0;
	}
	for (i = 0; i < c->npolicies; i++)
		if (!strcmp(c->policies[i].name, o->policy ? o->policy : "default"))
			break;
	if (i == c->npolicies) {
		fprintf(stderr, "vscale-sim: %s has no [policy %s]\n", o->config, o->policy);
		hconf_free(c);
		return -EINVAL;
	}
	*ret = c->policies[i];
	snprintf(desc, desclen, "'%s' from %s", ret->name, o->config);
	hconf_free(c);
	return 0;
}

static void free_results(struct report_trace *rt)
{
	for (size_t i = 0; i < rt->nres; i++)
		sim_result_fini(&rt->res[i]);
	rt->nres = 0;
}

/* How often vscale's policy gave each reason, holds included. */
static void log_counts(const char *trace, const struct vsctl_counts *n)
{
	fprintf(stderr, "%s decisions by reason:", trace);
	for (size_t i = 0; i < sizeof(n->reasons) / sizeof(n->reasons[0]); i++)
		if (n->reasons[i])
			fprintf(stderr, " %s %llu", policy_reason_name((enum reason)i),
			        (unsigned long long)n->reasons[i]);
	fputc('\n', stderr);
}

/* vscale, then the baselines, on one trace */
static int run_all(const struct opts *o, const struct policy *p, const struct sim_env *env,
                   struct report_trace *rt)
{
	struct proxmox_rule px;
	struct mom_rule mom;
	struct ctl ctls[5];
	double peak_cpu, peak_mem;
	int r = 0;
	size_t n = 0;

	baseline_proxmox_default(&px);
	baseline_mom_default(&mom);
	trace_peak(rt->t, &peak_cpu, &peak_mem);
	if (vsctl_new("vscale", p, env, &ctls[n]) == 0) {
		if (o->log)
			vsctl_set_log(&ctls[n], stderr, rt->t->name);
		n++;
	}
	if (n == 1 && baseline_proxmox_new(env, &px, &ctls[n]) == 0)
		n++;
	if (n == 2 && baseline_mom_new(env, &mom, &ctls[n]) == 0)
		n++;
	if (n == 3 && baseline_static_new(env, peak_cpu, peak_mem, &ctls[n]) == 0)
		n++;
	if (n == 4 && baseline_oracle_new(&ctls[n]) == 0)
		n++;
	if (n < 5)
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		r = sim_run(rt->t, env, &ctls[i], &rt->res[i]);
		if (r == 0)
			rt->nres++;
	}
	if (r == 0 && o->log)
		log_counts(rt->t->name, vsctl_counts(&ctls[0]));
	for (size_t i = 0; i < n; i++)
		ctl_free(&ctls[i]);
	if (r == 0) {
		goal_check(&rt->res[0], &rt->res[1], &rt->res[4], &rt->goal);
		rt->have_goal = true;
	}
	return r;
}

static void trace_bounds(const struct opts *o, const struct trace *t, struct sim_env *env)
{
	*env = o->env;
	if (!o->bounds_from_trace)
		return;
	if (t->cap_cores_max)
		env->vcpus_max = t->cap_cores_max;
	if (t->cap_mem_kib_max)
		env->mem_max_kib = t->cap_mem_kib_max / env->granule_kib * env->granule_kib;
	if (env->vcpus_min > env->vcpus_max)
		env->vcpus_min = env->vcpus_max;
	if (env->mem_min_kib > env->mem_max_kib)
		env->mem_min_kib = env->mem_max_kib;
}

static int check_env(const struct opts *o, const struct policy *p)
{
	if (o->env.mem_min_kib % o->env.granule_kib || o->env.mem_max_kib % o->env.granule_kib) {
		fprintf(stderr,
		        "vscale-sim: --memory bounds must be multiples of the %llu KiB "
		        "granule\n",
		        (unsigned long long)o->env.granule_kib);
		return -EINVAL;
	}
	if (!o->env.interval_ms) {
		fprintf(stderr, "vscale-sim: the sample interval must be above 0\n");
		return -EINVAL;
	}
	if (o->env.interval_ms > p->stale_ms) {
		fprintf(stderr,
		        "vscale-sim: a sample every %.1f s is longer than policy '%s' stale-after "
		        "%.1f s: hostd would restart its windows on every sample; sample faster "
		        "(--interval) or raise stale-after\n",
		        o->env.interval_ms / 1000.0, p->name, p->stale_ms / 1000.0);
		return -EINVAL;
	}
	return 0;
}

static int one_trace(const struct opts *o, const struct policy *p, const char *path,
                     struct report_trace *rt, struct sim_env *env)
{
	struct trace *t = NULL;
	char err[1024];
	int r;

	r = trace_load(path, (double)o->max_gap_ms / 1000.0, &t, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "vscale-sim: %s\n", err);
		return r;
	}
	trace_bounds(o, t, env);
	*rt = (struct report_trace){.t = t, .env = env};
	r = run_all(o, p, env, rt);
	if (r < 0) {
		fprintf(stderr, "vscale-sim: %s: simulation failed: %s\n", path, strerror(-r));
		free_results(rt);
		trace_free(t);
		rt->t = NULL;
	}
	return r;
}

static int plot(const struct opts *o, const struct report_trace *rt, bool *warned)
{
	char err[1024];
	int r = report_plot(o->plot_dir, o->plot_format, rt, err, sizeof(err));

	if (r < 0) {
		fprintf(stderr, "vscale-sim: plot: %s\n", err);
		return r;
	}
	if (r == 1 && !*warned) {
		fprintf(stderr,
		        "vscale-sim: gnuplot is not installed: no plots drawn; the data and the "
		        "gnuplot scripts are in %s/ (apt-get install gnuplot-nox, then gnuplot "
		        "%s/NAME.gp)\n",
		        o->plot_dir, o->plot_dir);
		*warned = true;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct policy p;
	struct report_run run = {0};
	struct report_trace *rts;
	struct sim_env *envs;
	uint64_t conf_interval_ms;
	size_t n = 0, ntraces;
	bool warned = false, goal_ok = true;
	int r = 0;

	if (parse(argc, argv, &o) < 0)
		return 1;
	if (load_policy(&o, &p, &conf_interval_ms, run.policy, sizeof(run.policy)) < 0)
		return 1;
	if (!o.interval_ms)
		o.interval_ms = conf_interval_ms;
	if (o.interval_ms > UINT32_MAX) {
		fprintf(stderr, "vscale-sim: the sample interval is too long\n");
		return 1;
	}
	o.env.interval_ms = (uint32_t)o.interval_ms;
	if (check_env(&o, &p) < 0)
		return 1;
	run.env = &o.env;
	ntraces = (size_t)(argc - optind);
	rts = calloc(ntraces, sizeof(*rts));
	envs = calloc(ntraces, sizeof(*envs));
	if (!rts || !envs) {
		fprintf(stderr, "vscale-sim: out of memory\n");
		free(rts);
		free(envs);
		return 1;
	}
	for (int i = optind; r == 0 && i < argc; i++) {
		r = one_trace(&o, &p, argv[i], &rts[n], &envs[n]);
		if (r < 0)
			break;
		if (!o.json)
			report_table(stdout, &run, &rts[n]);
		if (o.plot_dir)
			r = plot(&o, &rts[n], &warned);
		goal_ok = goal_ok && rts[n].goal.met;
		n++;
	}
	if (r == 0 && o.json)
		report_json(stdout, &run, rts, n);
	else if (r == 0 && n > 1)
		report_summary(stdout, rts, n);
	for (size_t i = 0; i < n; i++) {
		free_results(&rts[i]);
		trace_free((struct trace *)rts[i].t);
	}
	free(rts);
	free(envs);
	if (r < 0)
		return 1;
	return o.check_goal && !goal_ok ? EXIT_GOAL : 0;
}
