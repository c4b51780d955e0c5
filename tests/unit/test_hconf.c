/* vscale-hostd config: the key table's defaults against policy_default(), every key through a
 * file, conf.d/ order and first-match-wins, overrides, the print -> load round trip, and each bad
 * file reported as the exact "file:line: message". */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hconf.h"
#include "testdata.h"

/* $VSCALE_TEST_DATA/hconf/<rel> */
static const char *data(const char *rel)
{
	return testdata_path("hconf", rel);
}

static struct hconf *load_ok(const char *rel)
{
	struct hconf *c = NULL;
	char err[1024] = "";

	if (hconf_load(data(rel), true, &c, err, sizeof(err)) != 0)
		fail_msg("%s: %s", rel, err);
	assert_non_null(c);
	return c;
}

/* Every field, so a field added to struct policy and missed here shows up in review. */
static void assert_policy_equal(const struct policy *a, const struct policy *b)
{
	assert_string_equal(a->name, b->name);
	assert_int_equal(a->vcpus_min, b->vcpus_min);
	assert_int_equal(a->vcpus_max, b->vcpus_max);
	assert_int_equal(a->mem_min_kib, b->mem_min_kib);
	assert_int_equal(a->mem_max_kib, b->mem_max_kib);
	assert_true(a->cpu_up_pct == b->cpu_up_pct);
	assert_true(a->cpu_down_pct == b->cpu_down_pct);
	assert_true(a->cpu_psi_up_pct == b->cpu_psi_up_pct);
	assert_int_equal(a->cpu_up_for_ms, b->cpu_up_for_ms);
	assert_int_equal(a->cpu_down_for_ms, b->cpu_down_for_ms);
	assert_int_equal(a->vcpu_step_up, b->vcpu_step_up);
	assert_int_equal(a->vcpu_step_down, b->vcpu_step_down);
	assert_int_equal(a->vcpu_cooldown_up_ms, b->vcpu_cooldown_up_ms);
	assert_int_equal(a->vcpu_cooldown_down_ms, b->vcpu_cooldown_down_ms);
	assert_true(a->mem_up_avail_pct == b->mem_up_avail_pct);
	assert_true(a->mem_down_avail_pct == b->mem_down_avail_pct);
	assert_true(a->mem_psi_up_pct == b->mem_psi_up_pct);
	assert_int_equal(a->mem_up_for_ms, b->mem_up_for_ms);
	assert_int_equal(a->mem_down_for_ms, b->mem_down_for_ms);
	assert_int_equal(a->mem_step_up_kib, b->mem_step_up_kib);
	assert_int_equal(a->mem_step_down_kib, b->mem_step_down_kib);
	assert_int_equal(a->mem_margin_kib, b->mem_margin_kib);
	assert_int_equal(a->mem_cooldown_up_ms, b->mem_cooldown_up_ms);
	assert_int_equal(a->mem_cooldown_down_ms, b->mem_cooldown_down_ms);
	assert_int_equal(a->stale_ms, b->stale_ms);
}

static void assert_host_equal(const struct host_conf *a, const struct host_conf *b)
{
	assert_string_equal(a->uri, b->uri);
	assert_int_equal(a->reserve_cpus, b->reserve_cpus);
	assert_int_equal(a->reserve_mem_kib, b->reserve_mem_kib);
	assert_true(a->cpu_overcommit == b->cpu_overcommit);
	assert_int_equal(a->mem_total_kib, b->mem_total_kib);
	assert_int_equal(a->interval_ms, b->interval_ms);
	assert_int_equal(a->op_timeout_ms, b->op_timeout_ms);
	assert_int_equal(a->persistent, b->persistent);
	assert_int_equal(a->vcpu_unplug, b->vcpu_unplug);
	assert_string_equal(a->state_dir, b->state_dir);
	assert_string_equal(a->decision_log, b->decision_log);
	assert_int_equal(a->log_level, b->log_level);
	assert_int_equal(a->migration, b->migration);
	assert_int_equal(a->npeers, b->npeers);
	for (uint32_t i = 0; i < a->npeers; i++)
		assert_string_equal(a->peers[i], b->peers[i]);
	assert_int_equal(a->migration_rebalance, b->migration_rebalance);
	assert_int_equal(a->migration_max, b->migration_max);
	assert_int_equal(a->migration_cooldown_ms, b->migration_cooldown_ms);
	assert_int_equal(a->migration_timeout_ms, b->migration_timeout_ms);
	assert_true(a->high_watermark_pct == b->high_watermark_pct);
	assert_int_equal(a->high_watermark_for_ms, b->high_watermark_for_ms);
}

static void assert_defaults(const struct hconf *c)
{
	struct policy def, p;

	assert_string_equal(c->host.uri, "qemu:///system");
	assert_int_equal(c->host.reserve_cpus, 1);
	assert_int_equal(c->host.reserve_mem_kib, 2 * 1024 * 1024);
	assert_true(c->host.cpu_overcommit == 4.0);
	assert_int_equal(c->host.mem_total_kib, 0);
	assert_int_equal(c->host.interval_ms, 1000);
	assert_int_equal(c->host.op_timeout_ms, 30000);
	assert_false(c->host.persistent);
	assert_false(c->host.vcpu_unplug);
	assert_string_equal(c->host.state_dir, "/var/lib/vscale");
	assert_string_equal(c->host.decision_log, "");
	assert_int_equal(c->host.log_level, LOG_LVL_INFO);
	assert_int_equal(c->host.migration, MIGRATION_OFF);
	assert_int_equal(c->host.npeers, 0);
	assert_false(c->host.migration_rebalance);
	assert_int_equal(c->host.migration_max, 1);
	assert_int_equal(c->host.migration_cooldown_ms, 600000);
	assert_int_equal(c->host.migration_timeout_ms, 300000);
	assert_true(c->host.high_watermark_pct == 90);
	assert_int_equal(c->host.high_watermark_for_ms, 60000);

	/* the table's policy defaults and policy.c's must not drift apart */
	policy_default(&def);
	assert_int_equal(c->npolicies, 1);
	assert_policy_equal(&c->policies[0], &def);
	assert_int_equal(c->nrules, 0);
	/* no rules: every VM gets the default policy */
	assert_null(hconf_match(c, "web1", "0f8fad5b-d9cb-469f-a165-70867728950e"));
	hconf_policy_for(c, "web1", NULL, &p);
	assert_policy_equal(&p, &def);
}

static void test_defaults(void **state)
{
	struct hconf *c = NULL;
	char err[1024];

	/* a missing file is an empty config unless it was asked for */
	assert_int_equal(hconf_load("/nonexistent/vscale.conf", false, &c, err, sizeof(err)), 0);
	assert_defaults(c);
	assert_string_equal(c->path, "/nonexistent/vscale.conf");
	hconf_free(c);

	c = load_ok("empty/vscale.conf");
	assert_defaults(c);
	hconf_free(c);
	hconf_free(NULL);
}

static void test_missing_explicit(void **state)
{
	struct hconf *c = (struct hconf *)&c; /* must stay untouched */
	char err[1024];

	assert_int_equal(hconf_load("/nonexistent/vscale.conf", true, &c, err, sizeof(err)),
	                 -ENOENT);
	assert_string_equal(err, "/nonexistent/vscale.conf: No such file or directory");
	assert_ptr_equal(c, &c);
}

static void test_every_key(void **state)
{
	struct hconf *c = load_ok("full/vscale.conf");
	const struct policy *web = NULL, *small = NULL;

	assert_string_equal(c->host.uri, "test:///default");
	assert_int_equal(c->host.reserve_cpus, 2);
	assert_int_equal(c->host.reserve_mem_kib, 4 * 1024 * 1024);
	assert_true(c->host.cpu_overcommit == 2.5);
	assert_int_equal(c->host.mem_total_kib, 64ull * 1024 * 1024);
	assert_int_equal(c->host.interval_ms, 500);
	assert_int_equal(c->host.op_timeout_ms, 45000);
	assert_true(c->host.persistent);
	assert_true(c->host.vcpu_unplug);
	assert_string_equal(c->host.state_dir, "/tmp/vscale-state");
	assert_string_equal(c->host.decision_log, "/tmp/vscale-state/log.jsonl");
	assert_int_equal(c->host.log_level, LOG_LVL_DEBUG);

	/* default, web, small from the main file, early from conf.d/ */
	assert_int_equal(c->npolicies, 4);
	assert_string_equal(c->policies[0].name, "default");
	assert_true(c->policies[0].cpu_up_pct == 85);   /* [policy default] replaces the built-in */
	assert_true(c->policies[0].cpu_down_pct == 40); /* the rest from the built-in */
	for (size_t i = 0; i < c->npolicies; i++) {
		if (strcmp(c->policies[i].name, "web") == 0)
			web = &c->policies[i];
		if (strcmp(c->policies[i].name, "small") == 0)
			small = &c->policies[i];
	}
	assert_non_null(web);
	assert_int_equal(web->vcpus_min, 2);
	assert_int_equal(web->vcpus_max, 16);
	assert_int_equal(web->mem_min_kib, 2 * 1024 * 1024);
	assert_int_equal(web->mem_max_kib, 32 * 1024 * 1024);
	assert_true(web->cpu_up_pct == 70);
	assert_true(web->cpu_down_pct == 20);
	assert_true(web->cpu_psi_up_pct == 40);
	assert_int_equal(web->cpu_up_for_ms, 15000);
	assert_int_equal(web->cpu_down_for_ms, 300000);
	assert_int_equal(web->vcpu_step_up, 2);
	assert_int_equal(web->vcpu_step_down, 3);
	assert_int_equal(web->vcpu_cooldown_up_ms, 45000);
	assert_int_equal(web->vcpu_cooldown_down_ms, 600000);
	assert_true(web->mem_up_avail_pct == 12.5);
	assert_true(web->mem_down_avail_pct == 60);
	assert_true(web->mem_psi_up_pct == 20);
	assert_int_equal(web->mem_up_for_ms, 3000);
	assert_int_equal(web->mem_down_for_ms, 240000);
	assert_int_equal(web->mem_step_up_kib, 1024 * 1024);
	assert_int_equal(web->mem_step_down_kib, 768 * 1024);
	assert_int_equal(web->mem_margin_kib, 384 * 1024);
	assert_int_equal(web->mem_cooldown_up_ms, 25000);
	assert_int_equal(web->mem_cooldown_down_ms, 360000);
	assert_int_equal(web->stale_ms, 7000);

	/* a policy starts from the built-in defaults, not from [policy default] */
	assert_non_null(small);
	assert_int_equal(small->vcpus_min, 4);
	assert_int_equal(small->vcpus_max, 4);
	{
		struct policy def;

		policy_default(&def);
		assert_true(small->cpu_up_pct == def.cpu_up_pct);
		assert_true(def.cpu_up_pct != 85); /* else this proves nothing */
	}
	hconf_free(c);
}

static void test_rules_and_matching(void **state)
{
	struct hconf *c = load_ok("full/vscale.conf");
	const struct vm_rule *r;
	struct policy p;
	char dir[PATH_MAX];

	/* main file first, then conf.d/ by name; notes.txt and .hidden.conf are not read */
	assert_int_equal(c->nrules, 6);
	assert_string_equal(c->rules[0].pattern, "web-*");
	assert_string_equal(c->rules[1].pattern, "0F8FAD5B-D9CB-469F-A165-70867728950E");
	assert_string_equal(c->rules[2].pattern, "app-*");
	assert_string_equal(c->rules[3].pattern, "web-special");
	assert_string_equal(c->rules[4].pattern, "app-1");
	assert_string_equal(c->rules[5].pattern, "db-?");
	snprintf(dir, sizeof(dir), "%s", data("full/conf.d/20-late.conf"));
	assert_string_equal(c->rules[5].file, dir);
	assert_int_equal(c->rules[5].line, 1);
	assert_string_equal(c->rules[2].file, data("full/vscale.conf"));
	assert_int_equal(c->rules[2].line, 58); /* the [vm] section header in full/vscale.conf */

	/* glob on the name; first match wins, also over conf.d/ */
	r = hconf_match(c, "web-1", NULL);
	assert_ptr_equal(r, &c->rules[0]);
	assert_string_equal(r->channel, "/run/vscale/web.sock");
	assert_true(r->enabled);
	assert_ptr_equal(hconf_match(c, "web-special", NULL), &c->rules[0]);
	assert_ptr_equal(hconf_match(c, "web-", NULL), &c->rules[0]);
	assert_ptr_equal(hconf_match(c, "app-1", NULL), &c->rules[2]);
	assert_ptr_equal(hconf_match(c, "db-7", NULL), &c->rules[5]);
	assert_null(hconf_match(c, "db-17", NULL));
	assert_null(hconf_match(c, "xweb-1", NULL));
	assert_null(hconf_match(c, NULL, NULL));

	/* a UUID pattern matches the UUID in any case, and not the name */
	r = hconf_match(c, "billing", "0f8fad5b-d9cb-469f-a165-70867728950e");
	assert_ptr_equal(r, &c->rules[1]);
	assert_false(r->enabled);
	assert_string_equal(r->policy, "small");
	assert_null(hconf_match(c, "0F8FAD5B-D9CB-469F-A165-70867728950E", NULL));
	assert_null(hconf_match(c, "billing", "0f8fad5b-d9cb-469f-a165-70867728950f"));

	/* overrides go over the named policy, in order; the name stays the policy's */
	hconf_policy_for(c, "web-3", NULL, &p);
	assert_string_equal(p.name, "web");
	assert_true(p.cpu_up_pct == 90);
	assert_int_equal(p.vcpus_min, 4);
	assert_int_equal(p.vcpus_max, 8);
	assert_true(p.cpu_down_pct == 20);                 /* from web */
	assert_int_equal(p.mem_max_kib, 32 * 1024 * 1024); /* from web */

	/* a policy defined in conf.d/ after the rule that names it */
	hconf_policy_for(c, "app-2", NULL, &p);
	assert_string_equal(p.name, "early");
	assert_int_equal(p.mem_min_kib, 1024 * 1024);
	assert_int_equal(p.mem_max_kib, 4 * 1024 * 1024);

	/* a rule without a policy key: the default policy plus its overrides */
	assert_string_equal(c->rules[5].policy, "");
	hconf_policy_for(c, "db-1", NULL, &p);
	assert_string_equal(p.name, "default");
	assert_int_equal(p.mem_margin_kib, 1024 * 1024);
	assert_true(p.cpu_up_pct == 85);

	/* no rule: the default policy as configured */
	hconf_policy_for(c, "other", "0f8fad5b-d9cb-469f-a165-000000000000", &p);
	assert_policy_equal(&p, &c->policies[0]);
	hconf_free(c);
}

static char *print_to_string(const struct hconf *c)
{
	char *buf = NULL, *body;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	hconf_print(c, f);
	fclose(f);
	/* the first line names the file it came from */
	body = strdup(strchr(buf, '\n') + 1);
	free(buf);
	return body;
}

static void test_print_round_trip(void **state)
{
	struct hconf *a = load_ok("full/vscale.conf"), *b = NULL;
	char dir[] = "/tmp/vscale-test-hconf-XXXXXX", path[PATH_MAX], err[1024];
	char *text_a, *text_b;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vscale.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	hconf_print(a, f);
	fclose(f);
	if (hconf_load(path, true, &b, err, sizeof(err)) != 0)
		fail_msg("printed config does not load: %s", err);

	assert_host_equal(&a->host, &b->host);
	assert_int_equal(a->npolicies, b->npolicies);
	for (size_t i = 0; i < a->npolicies; i++)
		assert_policy_equal(&a->policies[i], &b->policies[i]);
	assert_int_equal(a->nrules, b->nrules);
	for (size_t i = 0; i < a->nrules; i++) {
		const struct vm_rule *x = &a->rules[i], *y = &b->rules[i];

		assert_string_equal(x->pattern, y->pattern);
		assert_string_equal(x->policy, y->policy);
		assert_int_equal(x->enabled, y->enabled);
		assert_string_equal(x->channel, y->channel);
		assert_int_equal(x->nov, y->nov);
		for (size_t j = 0; j < x->nov; j++) {
			assert_string_equal(x->ov[j].key, y->ov[j].key);
			assert_string_equal(x->ov[j].value, y->ov[j].value);
		}
	}
	text_a = print_to_string(a);
	text_b = print_to_string(b);
	assert_string_equal(text_a, text_b);
	/* every key is printed, in the file's syntax */
	assert_non_null(strstr(text_a, "\n[policy web]\nvcpus = 2..16\nmemory = 2G..32G\n"));
	assert_non_null(strstr(text_a, "\nmem-available-up = 12.5%\n"));
	assert_non_null(strstr(text_a, "\ncpu-overcommit = 2.5\n"));
	assert_non_null(strstr(text_a, "\n[policy small]\nvcpus = 4\nmemory = 0\n"));
	assert_non_null(strstr(text_a, "\n[vm db-?]\npolicy = default\nenabled = yes\nchannel = \n"
	                               "mem-margin = 1G\n"));

	free(text_a);
	free(text_b);
	hconf_free(a);
	hconf_free(b);
	unlink(path);
	rmdir(dir);
}

/* Loads rel, which must fail with -EINVAL and exactly "<file>:<where>". */
static void assert_load_error(const char *rel, const char *file_rel, const char *where)
{
	struct hconf *c = NULL;
	char err[PATH_MAX * 3], want[PATH_MAX * 3];

	snprintf(want, sizeof(want), "%s:%s", data(file_rel), where);
	assert_int_equal(hconf_load(data(rel), true, &c, err, sizeof(err)), -EINVAL);
	assert_null(c);
	assert_string_equal(err, want);
}

static void test_bad_files(void **state)
{
	static const struct {
		const char *file;
		const char *where; /* "line: message" */
	} cases[] = {
	        {"unknown-key", "3: unknown key 'frobnicate' in [host]"},
	        {"unknown-key-policy", "2: unknown key 'cpu-upp' in [policy web]"},
	        {"unknown-key-vm", "2: unknown key 'speed' in [vm x]"},
	        {"size", "2: reserve-memory: '2Q': unknown size unit (use K, M, G or T)"},
	        {"duration",
	         "3: interval: 'soon' is not a duration (expected e.g. 500ms, 30s, 5m)"},
	        {"zero-interval", "2: interval: '0' must be above 0"},
	        {"percent", "2: cpu-up: 120% is above 100%"},
	        {"uint", "2: reserve-cpus: 5000 is out of range 0..4096"},
	        {"double", "2: cpu-overcommit: 100 is out of range 0.1..64"},
	        {"bool", "2: persistent: 'maybe' is not a boolean (use yes or no)"},
	        {"log-level", "2: log-level: 'loud' is not a log level (err, warn, info, debug)"},
	        {"path", "2: state-dir: 'var/lib/vscale' is not an absolute path"},
	        {"empty-value", "2: uri: must not be empty"},
	        {"vcpus", "2: vcpus: range '8..2': lower bound above upper bound"},
	        {"memory",
	         "2: memory: range '1G..lots': 'lots' is not a size (expected e.g. 512M, 2G)"},
	        {"step", "2: vcpu-step-up: 0 is out of range 1..4096"},
	        {"vm-policy-name", "2: policy: 'no such' is not a policy name"},
	        {"unknown-section",
	         "4: unknown section [hots] (expected [host], [policy NAME] or [vm PATTERN])"},
	        {"empty-unknown-section",
	         "2: unknown section [bogus thing] (expected [host], [policy NAME] or [vm PATTERN])"},
	        {"policy-no-name", "1: [policy] needs a name: [policy NAME]"},
	        {"policy-name",
	         "1: policy name 'a/b' may use only letters, digits, '-', '_' and '.'"},
	        {"host-name", "1: [host] takes no name"},
	        {"vm-no-pattern", "1: [vm] needs a pattern: [vm PATTERN]"},
	        {"duplicate-key", "4: 'cpu-up' given twice in [policy web]"},
	        {"unknown-policy", "3: policy 'nosuch' is not defined"},
	        {"combo", "3: policy 'web': cpu-down 90% must be below cpu-up 80%"},
	        {"override-value", "5: cpu-up: 'lots' is not a percentage (expected e.g. 80%)"},
	        {"override-combo",
	         "4: vm 'web-*': policy 'web' with overrides: cpu-down 75% must be below cpu-up 70%"},
	        {"outside", "1: 'uri' is outside any section"},
	        {"glob-brackets", "1: text after ']' in a section header"},
	        /* the first problem in the file wins, whoever finds it */
	        {"syntax-first", "2: syntax error (expected [section] or key = value)"},
	        {"section-first",
	         "1: unknown section [hots] (expected [host], [policy NAME] or [vm PATTERN])"},
	        {"long-line", "2: line longer than 198 characters"},
	        {"continuation", "3: an indented line would continue the value above"},
	        {"migration-mode", "2: migration: 'sometimes' is not off, request or auto"},
	        {"peer-uri",
	         "2: peer: 'host2' is not a libvirt URI (e.g. qemu+tcp://host2/system)"},
	        {"peer-space", "2: peer: 'qemu+tcp://a b/system' is not a libvirt URI (e.g. "
	                       "qemu+tcp://host2/system)"},
	        {"peer-twice", "2: peer: 'qemu+tcp://a/system' is listed twice"},
	        {"peer-empty-entry",
	         "2: peer: an empty entry in 'qemu+tcp://a/system,,qemu+tcp://b/system'"},
	        {"peer-trailing-comma", "2: peer: an empty entry in 'qemu+tcp://a/system,'"},
	        {"peer-too-many", "2: peer: more than 8 peers"},
	        {"migration-max", "2: migration-max: 0 is out of range 1..64"},
	        {"migration-timeout", "2: migration-timeout: '0' must be above 0"},
	        {"migration-auto-no-peer", "4: migration = auto needs a peer = URI to move to"},
	        /* inih takes ';' as a comment: the value is empty, not ";80%" */
	        {"semicolon-value", "2: cpu-up: '' is not a percentage (expected e.g. 80%)"},
	};
	char rel[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(rel, sizeof(rel), "bad/%s.conf", cases[i].file);
		assert_load_error(rel, rel, cases[i].where);
	}
	/* found by fuzz_hconf: accepted before, and printed a config that did not load again */
	{
		struct hconf *c = NULL;
		char err[PATH_MAX * 3];

		assert_int_equal(hconf_load(data("bad/vm-twice.conf"), true, &c, err, sizeof(err)),
		                 -EINVAL);
		assert_non_null(strstr(err, "vm-twice.conf:4: [vm web-*] is already at "));
		assert_non_null(strstr(err, "vm-twice.conf:1"));
	}
}

/* The migration keys, a peer list replaced from conf.d/ (entries trimmed), and printed back. */
static void test_migration_keys(void **state)
{
	struct hconf *c = load_ok("migration/vscale.conf"), *off, *back = NULL;
	char dir[] = "/tmp/vscale-test-hconf-XXXXXX", path[PATH_MAX], err[1024];
	char *text;
	FILE *f;

	assert_int_equal(c->host.migration, MIGRATION_AUTO);
	assert_int_equal(c->host.npeers, 3);
	assert_string_equal(c->host.peers[0], "qemu+tcp://10.231.0.2/system");
	assert_string_equal(c->host.peers[1], "qemu+tls://host4.example/system?no_verify=1");
	assert_string_equal(c->host.peers[2], "qemu+tcp://h5/system");
	assert_true(c->host.migration_rebalance);
	assert_int_equal(c->host.migration_max, 3);
	assert_int_equal(c->host.migration_cooldown_ms, 90000);
	assert_int_equal(c->host.migration_timeout_ms, 120000);
	assert_true(c->host.high_watermark_pct == 85);
	assert_int_equal(c->host.high_watermark_for_ms, 45000);
	text = print_to_string(c);
	assert_non_null(strstr(text, "\nmigration = auto\n"));
	assert_non_null(strstr(text, "\npeer = qemu+tcp://10.231.0.2/system, "
	                             "qemu+tls://host4.example/system?no_verify=1, "
	                             "qemu+tcp://h5/system\n"));
	assert_non_null(strstr(text, "\nmigration-cooldown = 90s\n"));
	assert_non_null(strstr(text, "\nhigh-watermark = 85%\n"));
	free(text);
	/* printed, it loads back the same */
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vscale.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	hconf_print(c, f);
	fclose(f);
	if (hconf_load(path, true, &back, err, sizeof(err)) != 0)
		fail_msg("printed config does not load: %s", err);
	assert_host_equal(&c->host, &back->host);
	hconf_free(back);
	unlink(path);
	rmdir(dir);

	/* an empty peer takes the list away; only auto needs one */
	off = load_ok("migration-off/vscale.conf");
	assert_int_equal(off->host.migration, MIGRATION_REQUEST);
	assert_int_equal(off->host.npeers, 0);
	text = print_to_string(off);
	assert_non_null(strstr(text, "\nmigration = request\n"));
	assert_non_null(strstr(text, "\npeer = \n"));
	free(text);
	hconf_free(off);
	hconf_free(c);
}

static void test_duplicate_policy(void **state)
{
	char where[PATH_MAX * 2];

	/* in one file, and across the main file and conf.d/: both places named */
	snprintf(where, sizeof(where), "4: policy 'web' is already defined at %s:1",
	         data("bad/duplicate-policy.conf"));
	assert_load_error("bad/duplicate-policy.conf", "bad/duplicate-policy.conf", where);
	snprintf(where, sizeof(where), "2: policy 'web' is already defined at %s:4",
	         data("dup-policy/vscale.conf"));
	assert_load_error("dup-policy/vscale.conf", "dup-policy/conf.d/50-web.conf", where);
}

static void test_error_in_conf_d(void **state)
{
	/* the message names the conf.d file, not the main one */
	assert_load_error("bad-conf-d/vscale.conf", "bad-conf-d/conf.d/10-vm.conf",
	                  "3: mem-step-up: '0' must be above 0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_missing_explicit),
	        cmocka_unit_test(test_every_key),        cmocka_unit_test(test_rules_and_matching),
	        cmocka_unit_test(test_print_round_trip), cmocka_unit_test(test_bad_files),
	        cmocka_unit_test(test_duplicate_policy), cmocka_unit_test(test_error_in_conf_d),
	        cmocka_unit_test(test_migration_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
