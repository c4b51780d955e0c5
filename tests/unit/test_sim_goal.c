/* Issue 8's goal as a property of the policy: on every shipped trace (sim/traces/synthetic and
 * sim/traces/bitbrains), vscale's policy leaves at least 30% less slack than the
 * proxmox-vm-autoscale rule with no more under-provisioned time (sim/goal.h says how the goal is
 * read, and how a trace where no controller can reach it is judged).
 *
 * Usage: test_sim_goal TRACES_DIR [CONFIG]. With CONFIG the policy is its [policy default], read
 * by hostd's own config code; without, the built-in policy_default(). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "baseline.h"
#include "goal.h"
#include "hconf.h"
#include "sim_check.h"
#include "simulate.h"
#include "trace.h"
#include "vsctl.h"

#define SHIPPED_TRACES 13 /* 5 synthetic + 8 Bitbrains */

static const char *traces_dir, *config;

static void load_policy(struct policy *p)
{
	struct hconf *c = NULL;
	char err[1024];

	if (!config) {
		policy_default(p);
		return;
	}
	if (hconf_load(config, true, &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	*p = c->policies[0]; /* "default", replaced by the file's [policy default] */
	assert_string_equal(p->name, "default");
	hconf_free(c);
}

/* Runs one trace; returns whether the goal was met, printing the figures either way. */
static bool one(const char *path, const struct policy *p)
{
	struct sim_env e = sim_check_env();
	struct proxmox_rule px;
	struct sim_result v, x, o;
	struct trace *t = NULL;
	struct ctl c;
	struct goal g;
	char err[1024];

	if (trace_load(path, 900, &t, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(vsctl_new("vscale", p, &e, &c), 0);
	sim_check_run(t, &e, &c, &v);
	baseline_proxmox_default(&px);
	assert_int_equal(baseline_proxmox_new(&e, &px, &c), 0);
	sim_check_run(t, &e, &c, &x);
	assert_int_equal(baseline_oracle_new(&c), 0);
	sim_check_run(t, &e, &c, &o);
	goal_check(&v, &x, &o, &g);
	printf("%-14s slack %5.1f%% vs proxmox %5.1f%% (cut %5.1f%%, avoidable %5.1f%%%s), "
	       "under CPU %.2f%% vs %.2f%%, memory %.2f%% vs %.2f%%: %s%s%s\n",
	       t->name, goal_combined_slack(&v), goal_combined_slack(&x), g.cut_pct,
	       g.avoidable_cut_pct, g.feasible ? "" : ", infeasible", v.under_cpu_pct,
	       x.under_cpu_pct, v.under_mem_pct, x.under_mem_pct, g.met ? "met" : "MISSED",
	       g.met ? "" : ": ", g.why);
	sim_result_fini(&v);
	sim_result_fini(&x);
	sim_result_fini(&o);
	trace_free(t);
	return g.met;
}

static int csv_only(const struct dirent *d)
{
	size_t len = strlen(d->d_name);

	return len > 4 && !strcmp(d->d_name + len - 4, ".csv");
}

static void goal_on_every_trace(void **state)
{
	static const char *const sub[] = {"synthetic", "bitbrains"};
	struct policy p;
	size_t n = 0, missed = 0;

	load_policy(&p);
	printf("policy '%s' %s\n", p.name, config ? config : "(built-in)");
	for (size_t s = 0; s < sizeof(sub) / sizeof(sub[0]); s++) {
		char dir[PATH_MAX], path[PATH_MAX + 256];
		struct dirent **ents;
		int k = 0;

		snprintf(dir, sizeof(dir), "%s/%s", traces_dir, sub[s]);
		k = scandir(dir, &ents, csv_only, alphasort);
		if (k < 0)
			fail_msg("%s: %s", dir, strerror(errno));
		for (int i = 0; i < k; i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
			missed += !one(path, &p);
			n++;
			free(ents[i]);
		}
		free(ents);
	}
	assert_int_equal(n, SHIPPED_TRACES);
	if (missed)
		fail_msg("the goal was missed on %zu of %zu traces", missed, n);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(goal_on_every_trace),
	};

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: test_sim_goal TRACES_DIR [CONFIG]\n");
		return 2;
	}
	traces_dir = argv[1];
	config = argc == 3 ? argv[2] : NULL;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
