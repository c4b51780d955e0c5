/* vscale-hostd configuration. One table names every key of [host], [policy NAME] and [vm PATTERN]
 * with its parser, its field and its default text: defaults are parsed from that text and
 * hconf_print() walks the same table. inih (through common/conf.c) hands over keys only, so each
 * file is scanned first (iniscan.c) to learn where every section starts. */
#include "hconf.h"

#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <libgen.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "conf.h"
#include "iniscan.h"
#include "util.h"

#define MSG_LEN (PATH_MAX + CONF_ERR_LEN)

enum sec_kind { SEC_NONE, SEC_HOST, SEC_POLICY, SEC_VM };

enum kind {
	K_STR,      /* text of at most size-1 characters */
	K_PATH,     /* absolute path */
	K_POLICY,   /* a policy name; "default" is stored as "" */
	K_UINT,     /* uint32_t within min..max */
	K_SIZE,     /* uint64_t KiB */
	K_DURATION, /* uint64_t ms */
	K_PERCENT,  /* double 0..100 */
	K_DOUBLE,   /* double within min..max */
	K_BOOL,
	K_LOGLEVEL,
	K_VCPUS,     /* "lo..hi" or "n": uint32_t at off and off2, each within min..max */
	K_MEMORY,    /* "lo..hi" or "n" sizes: uint64_t KiB at off and off2 */
	K_LISTEN,    /* text: "ADDRESS:PORT" or "off" */
	K_MIGRATION, /* enum migration_mode */
	K_PEERS,     /* comma list of libvirt URIs: char[HCONF_PEERS_MAX][] at off, count at off2 */
};

#define F_EMPTY_OK 1u /* K_STR, K_PATH: "" is allowed */
#define F_POSITIVE 2u /* K_SIZE, K_DURATION: 0 is refused */

static const struct key {
	enum sec_kind sec;
	size_t off, size; /* the field in struct host_conf, policy or vm_rule */
	const char *name;
	enum kind kind;
	size_t off2;     /* upper bound of K_VCPUS, K_MEMORY */
	double min, max; /* K_UINT, K_DOUBLE, K_VCPUS */
	unsigned flags;
	const char *def; /* parsed like a value from the file */
	const char *help;
} keys[] = {
#define HOST(f) SEC_HOST, offsetof(struct host_conf, f), sizeof(((struct host_conf *)0)->f)
#define POL(f)  SEC_POLICY, offsetof(struct policy, f), sizeof(((struct policy *)0)->f)
#define VM(f)   SEC_VM, offsetof(struct vm_rule, f), sizeof(((struct vm_rule *)0)->f)
        {HOST(uri), "uri", K_STR, 0, 0, 0, 0, "qemu:///system", "libvirt connection URI"},
        {HOST(reserve_cpus), "reserve-cpus", K_UINT, 0, 0, 4096, 0, "1",
         "host CPUs never granted to VMs"},
        {HOST(reserve_mem_kib), "reserve-memory", K_SIZE, 0, 0, 0, 0, "2G",
         "host memory never granted to VMs"},
        {HOST(cpu_overcommit), "cpu-overcommit", K_DOUBLE, 0, 0.1, 64, 0, "4",
         "vCPUs granted per host CPU"},
        {HOST(mem_total_kib), "memory-total", K_SIZE, 0, 0, 0, 0, "0",
         "memory to share out; 0 = the host's memory"},
        {HOST(interval_ms), "interval", K_DURATION, 0, 0, 0, F_POSITIVE, "1s",
         "expected guest sample interval and decision tick"},
        {HOST(op_timeout_ms), "op-timeout", K_DURATION, 0, 0, 0, F_POSITIVE, "30s",
         "an operation not confirmed by then is recorded as failed"},
        {HOST(persistent), "persistent", K_BOOL, 0, 0, 0, 0, "no",
         "also write changes to the persistent domain definition"},
        {HOST(vcpu_unplug), "vcpu-unplug", K_BOOL, 0, 0, 0, 0, "no",
         "unplug vCPUs the guest offlined (KVM); no = keep them plugged and offline (TCG)"},
        {HOST(state_dir), "state-dir", K_PATH, 0, 0, 0, 0, "/var/lib/vscale",
         "per-VM cooldowns and last actions"},
        {HOST(decision_log), "decision-log", K_PATH, 0, 0, 0, F_EMPTY_OK, "",
         "JSON lines of every decision; empty = <state-dir>/decisions.jsonl"},
        {HOST(control_dir), "control-dir", K_PATH, 0, 0, 0, F_EMPTY_OK, "/run/vscale",
         "vscalectl's control and event sockets (root only); empty = none"},
        {HOST(metrics), "metrics", K_LISTEN, 0, 0, 0, 0, "127.0.0.1:9810",
         "Prometheus /metrics on ADDRESS:PORT; off = no HTTP endpoint"},
        {HOST(log_level), "log-level", K_LOGLEVEL, 0, 0, 0, 0, "info", "err, warn, info or debug"},
        {HOST(migration), "migration", K_MIGRATION, 0, 0, 0, 0, "off",
         "a VM the host cannot grow: off, request (ask a balancer) or auto (and move it)"},
        {HOST(peers), "peer", K_PEERS, offsetof(struct host_conf, npeers), 0, 0, 0, "",
         "libvirt URIs of the hosts VMs may move to, comma separated"},
        {HOST(migration_rebalance), "migration-rebalance", K_BOOL, 0, 0, 0, 0, "no",
         "also move a VM when the host stays above high-watermark; no = only for a scale-up"},
        {HOST(migration_max), "migration-max", K_UINT, 0, 1, 64, 0, "1",
         "migrations in flight at once"},
        {HOST(migration_cooldown_ms), "migration-cooldown", K_DURATION, 0, 0, 0, 0, "10m",
         "no new migration (or request) for a VM this long after the last"},
        {HOST(migration_timeout_ms), "migration-timeout", K_DURATION, 0, 0, 0, F_POSITIVE, "5m",
         "a migration still running after this is aborted"},
        {HOST(high_watermark_pct), "high-watermark", K_PERCENT, 0, 0, 0, 0, "90%",
         "the host is full when its vCPUs or memory are this much granted"},
        {HOST(high_watermark_for_ms), "high-watermark-for", K_DURATION, 0, 0, 0, 0, "1m",
         "how long above high-watermark before rebalancing"},

        {POL(vcpus_min), "vcpus", K_VCPUS, offsetof(struct policy, vcpus_max), 0, 4096, 0, "0",
         "vCPU range like 1..8; 0 = boot size .. libvirt maximum"},
        {POL(mem_min_kib), "memory", K_MEMORY, offsetof(struct policy, mem_max_kib), 0, 0, 0, "0",
         "memory range like 1G..16G; 0 = boot size .. most the domain reaches"},
        {POL(cpu_up_pct), "cpu-up", K_PERCENT, 0, 0, 0, 0, "92%", "add vCPUs when busy this much"},
        {POL(cpu_down_pct), "cpu-down", K_PERCENT, 0, 0, 0, 0, "40%",
         "remove vCPUs when busy at most this much"},
        {POL(cpu_psi_up_pct), "cpu-pressure-up", K_PERCENT, 0, 0, 0, 0, "25%",
         "add vCPUs when CPU pressure (some avg10) reaches this"},
        {POL(cpu_up_for_ms), "cpu-up-for", K_DURATION, 0, 0, 0, 0, "10s",
         "how long the CPU must stay high"},
        {POL(cpu_down_for_ms), "cpu-down-for", K_DURATION, 0, 0, 0, 0, "30s",
         "how long the CPU must stay low"},
        {POL(vcpu_step_up), "vcpu-step-up", K_UINT, 0, 1, 4096, 0, "1", "vCPUs added at a time"},
        {POL(vcpu_step_down), "vcpu-step-down", K_UINT, 0, 1, 4096, 0, "4",
         "vCPUs removed at a time"},
        {POL(vcpu_cooldown_up_ms), "vcpu-cooldown-up", K_DURATION, 0, 0, 0, 0, "30s",
         "no vCPU change for this long after adding"},
        {POL(vcpu_cooldown_down_ms), "vcpu-cooldown-down", K_DURATION, 0, 0, 0, 0, "30s",
         "no vCPU change for this long after removing"},
        {POL(mem_up_avail_pct), "mem-available-up", K_PERCENT, 0, 0, 0, 0, "8%",
         "add memory when MemAvailable falls to this share of MemTotal"},
        {POL(mem_down_avail_pct), "mem-available-down", K_PERCENT, 0, 0, 0, 0, "25%",
         "remove memory when MemAvailable stays at least this share"},
        {POL(mem_psi_up_pct), "mem-pressure-up", K_PERCENT, 0, 0, 0, 0, "10%",
         "add memory when memory pressure (some avg10) reaches this"},
        {POL(mem_up_for_ms), "mem-up-for", K_DURATION, 0, 0, 0, 0, "2s",
         "how long memory must stay short"},
        {POL(mem_down_for_ms), "mem-down-for", K_DURATION, 0, 0, 0, 0, "30s",
         "how long memory must stay plentiful"},
        {POL(mem_step_up_kib), "mem-step-up", K_SIZE, 0, 0, 0, F_POSITIVE, "768M",
         "memory added at a time"},
        {POL(mem_step_down_kib), "mem-step-down", K_SIZE, 0, 0, 0, F_POSITIVE, "512M",
         "memory removed at a time"},
        {POL(mem_margin_kib), "mem-margin", K_SIZE, 0, 0, 0, 0, "256M",
         "memory in use plus this must fit the smaller size"},
        {POL(mem_cooldown_up_ms), "mem-cooldown-up", K_DURATION, 0, 0, 0, 0, "5s",
         "no memory change for this long after adding"},
        {POL(mem_cooldown_down_ms), "mem-cooldown-down", K_DURATION, 0, 0, 0, 0, "30s",
         "no memory change for this long after removing"},
        {POL(stale_ms), "stale-after", K_DURATION, 0, 0, 0, F_POSITIVE, "5s",
         "hold when the newest sample is older than this"},

        {VM(policy), "policy", K_POLICY, 0, 0, 0, 0, "default", "the [policy NAME] to apply"},
        {VM(enabled), "enabled", K_BOOL, 0, 0, 0, 0, "yes", "no = never scale these VMs"},
        {VM(channel), "channel", K_PATH, 0, 0, 0, F_EMPTY_OK, "",
         "guest agent unix socket; empty = from the domain XML"},
#undef HOST
#undef POL
#undef VM
};

/* where a policy section is; line 0 = built in */
struct origin {
	char file[PATH_MAX];
	int line;
};

/* what a scanned section became */
struct placed {
	enum sec_kind kind; /* SEC_NONE: before any header, or the section had an error */
	size_t idx;         /* SEC_POLICY: index in policies; SEC_VM: index in rules */
};

struct load {
	struct hconf *c;
	struct origin *origins; /* one per policy */
	int *policy_lines;      /* one per rule: line of its policy key, 0 = none */
	/* the file being read */
	const char *file;
	struct iniscan scan;
	struct placed *placed; /* one per scanned section */
	int err_line;          /* first section error, else the scan's; 0 = none */
	char err_msg[MSG_LEN];
	struct origin migration; /* where [host] migration was last set, for validate() */
};

/* ---- values ---- */

static const struct key *find_key(enum sec_kind sec, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (keys[i].sec == sec && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool valid_policy_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
			return false;
	return true;
}

static int set_text(const struct key *k, char *field, const char *value, char *err, size_t errlen)
{
	if (!*value && !(k->flags & F_EMPTY_OK))
		return conf_fail(err, errlen, "must not be empty");
	if (k->kind == K_PATH && *value && *value != '/')
		return conf_fail(err, errlen, "'%s' is not an absolute path", value);
	if (k->kind == K_POLICY && !valid_policy_name(value))
		return conf_fail(err, errlen, "'%s' is not a policy name", value);
	if (strlen(value) >= k->size)
		return conf_fail(err, errlen, "'%s' is too long (at most %zu characters)", value,
		                 k->size - 1);
	if (k->kind == K_POLICY && strcmp(value, "default") == 0)
		value = "";
	strcpy(field, value);
	return 0;
}

static const char *const migration_modes[] = {
        [MIGRATION_OFF] = "off", [MIGRATION_REQUEST] = "request", [MIGRATION_AUTO] = "auto"};

static int set_migration(const char *value, enum migration_mode *ret, char *err, size_t errlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(migration_modes); i++) {
		if (strcmp(value, migration_modes[i]) == 0) {
			*ret = (enum migration_mode)i;
			return 0;
		}
	}
	return conf_fail(err, errlen, "'%s' is not off, request or auto", value);
}

/* "uri, uri": each a libvirt URI (scheme://...), listed once. Written only when all parse; ""
 * empties the list (a conf.d file can take the peers away). The parser refuses a key given
 * twice in a section, so several peers are one comma list, not repeated keys. */
static int set_peers(const char *value, char (*peers)[HCONF_URI_LEN], uint32_t *ret_n, char *err,
                     size_t errlen)
{
	char list[HCONF_PEERS_MAX][HCONF_URI_LEN];
	uint32_t n = 0;
	size_t line_len;

	for (const char *p = value; *value; p++) {
		size_t len = strcspn(p, ",");
		const char *s = p, *e = p + len;

		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (s == e)
			return conf_fail(err, errlen, "an empty entry in '%s'", value);
		if (n == HCONF_PEERS_MAX)
			return conf_fail(err, errlen, "more than %d peers", HCONF_PEERS_MAX);
		if (e - s >= HCONF_URI_LEN)
			return conf_fail(err, errlen, "'%.*s' is too long (at most %d characters)",
			                 (int)(e - s), s, HCONF_URI_LEN - 1);
		snprintf(list[n], sizeof(list[n]), "%.*s", (int)(e - s), s);
		/* no ';': printed as "a, ;b" the rest of the list would read as a comment */
		if (!strstr(list[n], "://") || strpbrk(list[n], " \t;"))
			return conf_fail(err, errlen,
			                 "'%s' is not a libvirt URI (e.g. qemu+tcp://host2/system)",
			                 list[n]);
		for (uint32_t i = 0; i < n; i++)
			if (strcmp(list[i], list[n]) == 0)
				return conf_fail(err, errlen, "'%s' is listed twice", list[n]);
		n++;
		p += len;
		if (!*p)
			break;
	}
	/* hconf_print() writes "peer = a, b": that line must fit too */
	line_len = strlen("peer = ") + (n ? 2 * (n - 1) : 0);
	for (uint32_t i = 0; i < n; i++)
		line_len += strlen(list[i]);
	if (line_len > CONF_LINE_MAX)
		return conf_fail(err, errlen,
		                 "the list is too long: \"peer = ...\" must fit in %d "
		                 "characters",
		                 CONF_LINE_MAX);
	memcpy(peers, list, n * sizeof(list[0]));
	*ret_n = n;
	return 0;
}

/* Parses value with k's parser into its field of base. On error writes "key: reason". */
static int set_value(const struct key *k, void *base, const char *value, char *err, size_t errlen)
{
	char *field = (char *)base + k->off, sub[CONF_ERR_LEN];
	uint64_t u, hi;
	int r = 0;

	switch (k->kind) {
	case K_STR:
	case K_PATH:
	case K_POLICY:
		r = set_text(k, field, value, sub, sizeof(sub));
		break;
	case K_MIGRATION:
		r = set_migration(value, (enum migration_mode *)field, sub, sizeof(sub));
		break;
	case K_PEERS:
		r = set_peers(value, (char(*)[HCONF_URI_LEN])field,
		              (uint32_t *)((char *)base + k->off2), sub, sizeof(sub));
		break;
	case K_LISTEN:
		if (strcmp(value, "off") != 0)
			r = conf_parse_listen(value, NULL, NULL, sub, sizeof(sub));
		if (r == 0)
			r = set_text(k, field, value, sub, sizeof(sub));
		break;
	case K_UINT:
		r = conf_parse_uint(value, k->min, k->max, &u, sub, sizeof(sub));
		if (r == 0)
			*(uint32_t *)field = (uint32_t)u;
		break;
	case K_SIZE:
	case K_DURATION:
		if (k->kind == K_SIZE)
			r = conf_parse_size_kib(value, &u, sub, sizeof(sub));
		else
			r = conf_parse_duration_ms(value, &u, sub, sizeof(sub));
		if (r == 0 && u == 0 && (k->flags & F_POSITIVE))
			r = conf_fail(sub, sizeof(sub), "'%s' must be above 0", value);
		if (r == 0)
			*(uint64_t *)field = u;
		break;
	case K_PERCENT:
		r = conf_parse_percent(value, 100, (double *)field, sub, sizeof(sub));
		break;
	case K_DOUBLE:
		r = conf_parse_double(value, k->min, k->max, (double *)field, sub, sizeof(sub));
		break;
	case K_BOOL:
		r = conf_parse_bool(value, (bool *)field, sub, sizeof(sub));
		break;
	case K_LOGLEVEL:
		if (log_parse_level(value, (enum log_level *)field) < 0)
			r = conf_fail(sub, sizeof(sub),
			              "'%s' is not a log level (err, warn, info, debug)", value);
		break;
	case K_VCPUS:
		r = conf_parse_uint_range(value, k->min, k->max, &u, &hi, sub, sizeof(sub));
		if (r == 0) {
			*(uint32_t *)field = (uint32_t)u;
			*(uint32_t *)((char *)base + k->off2) = (uint32_t)hi;
		}
		break;
	case K_MEMORY:
		r = conf_parse_size_range_kib(value, &u, &hi, sub, sizeof(sub));
		if (r == 0) {
			*(uint64_t *)field = u;
			*(uint64_t *)((char *)base + k->off2) = hi;
		}
		break;
	}
	if (r < 0)
		return conf_fail(err, errlen, "%s: %s", k->name, sub);
	return 0;
}

static void set_defaults(enum sec_kind sec, void *base)
{
	char err[CONF_ERR_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (keys[i].sec != sec)
			continue;
		if (set_value(&keys[i], base, keys[i].def, err, sizeof(err)) < 0)
			assert(!"a default in the key table does not parse");
	}
}

static void policy_from_table(struct policy *p, const char *name)
{
	memset(p, 0, sizeof(*p));
	set_defaults(SEC_POLICY, p);
	snprintf(p->name, sizeof(p->name), "%s", name);
}

/* Shortest fixed-point text that reads back as exactly v. */
static void format_double(double v, char *buf, size_t len)
{
	for (int prec = 0; prec <= 17; prec++) {
		snprintf(buf, len, "%.*f", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
	snprintf(buf, len, "%.17g", v);
}

static void format_size(uint64_t kib, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int u = 0;

	if (kib == 0) {
		snprintf(buf, len, "0");
		return;
	}
	while (u < 3 && kib % 1024 == 0) {
		kib /= 1024;
		u++;
	}
	snprintf(buf, len, "%llu%c", (unsigned long long)kib, units[u]);
}

static void format_duration(uint64_t ms, char *buf, size_t len)
{
	static const struct {
		uint64_t ms;
		const char *unit;
	} units[] = {{3600000, "h"}, {60000, "m"}, {1000, "s"}};

	for (size_t i = 0; i < ARRAY_SIZE(units) && ms; i++) {
		if (ms % units[i].ms == 0) {
			snprintf(buf, len, "%llu%s", (unsigned long long)(ms / units[i].ms),
			         units[i].unit);
			return;
		}
	}
	snprintf(buf, len, "%llu%s", (unsigned long long)ms, ms ? "ms" : "");
}

static const char *level_name(enum log_level lvl)
{
	switch (lvl) {
	case LOG_LVL_ERR:
		return "err";
	case LOG_LVL_WARN:
		return "warn";
	case LOG_LVL_INFO:
		return "info";
	default:
		return "debug";
	}
}

/* Writes k's field of base as text the parser reads back to the same value. */
static void format_value(const struct key *k, const void *base, char *buf, size_t len)
{
	const char *field = (const char *)base + k->off, *field2 = (const char *)base + k->off2;
	char a[32], b[32];

	switch (k->kind) {
	case K_STR:
	case K_PATH:
	case K_LISTEN:
		snprintf(buf, len, "%s", field);
		break;
	case K_MIGRATION:
		snprintf(buf, len, "%s", migration_modes[*(const enum migration_mode *)field]);
		break;
	case K_PEERS:
		buf[0] = '\0';
		for (uint32_t i = 0; i < *(const uint32_t *)field2; i++)
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? ", " : "",
			         field + i * HCONF_URI_LEN);
		break;
	case K_POLICY:
		snprintf(buf, len, "%s", *field ? field : "default");
		break;
	case K_UINT:
		snprintf(buf, len, "%u", *(const uint32_t *)field);
		break;
	case K_SIZE:
		format_size(*(const uint64_t *)field, buf, len);
		break;
	case K_DURATION:
		format_duration(*(const uint64_t *)field, buf, len);
		break;
	case K_PERCENT:
		format_double(*(const double *)field, a, sizeof(a));
		snprintf(buf, len, "%s%%", a);
		break;
	case K_DOUBLE:
		format_double(*(const double *)field, buf, len);
		break;
	case K_BOOL:
		snprintf(buf, len, "%s", *(const bool *)field ? "yes" : "no");
		break;
	case K_LOGLEVEL:
		snprintf(buf, len, "%s", level_name(*(const enum log_level *)field));
		break;
	case K_VCPUS: /* a single value when both ends agree */
		snprintf(a, sizeof(a), "%u", *(const uint32_t *)field);
		snprintf(b, sizeof(b), "%u", *(const uint32_t *)field2);
		break;
	case K_MEMORY:
		format_size(*(const uint64_t *)field, a, sizeof(a));
		format_size(*(const uint64_t *)field2, b, sizeof(b));
		break;
	}
	if (k->kind == K_VCPUS || k->kind == K_MEMORY) {
		if (strcmp(a, b) == 0)
			snprintf(buf, len, "%s", a);
		else
			snprintf(buf, len, "%s..%s", a, b);
	}
}

/* ---- building the config ---- */

static int add_policy(struct load *L, const char *name, int line)
{
	struct hconf *c = L->c;
	size_t n = c->npolicies + 1;
	struct origin *o = realloc(L->origins, n * sizeof(*o));
	struct policy *p;

	if (!o)
		return -ENOMEM;
	L->origins = o;
	p = realloc(c->policies, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	c->policies = p;
	policy_from_table(&p[n - 1], name);
	snprintf(o[n - 1].file, sizeof(o[n - 1].file), "%s", line ? L->file : "");
	o[n - 1].line = line;
	c->npolicies = n;
	return 0;
}

static int add_rule(struct load *L, const char *pattern, int line)
{
	struct hconf *c = L->c;
	size_t n = c->nrules + 1;
	int *pl = realloc(L->policy_lines, n * sizeof(*pl));
	struct vm_rule *r;

	if (!pl)
		return -ENOMEM;
	L->policy_lines = pl;
	r = realloc(c->rules, n * sizeof(*r));
	if (!r)
		return -ENOMEM;
	c->rules = r;
	r += n - 1;
	memset(r, 0, sizeof(*r));
	set_defaults(SEC_VM, r);
	snprintf(r->pattern, sizeof(r->pattern), "%s", pattern);
	snprintf(r->file, sizeof(r->file), "%s", L->file);
	r->line = line;
	pl[n - 1] = 0;
	c->nrules = n;
	return 0;
}

static int add_override(struct vm_rule *rule, const char *key, const char *value, char *err,
                        size_t errlen)
{
	struct vm_override *ov;

	if (strlen(value) >= sizeof(ov->value))
		return conf_fail(err, errlen, "%s: '%s' is too long (at most %zu characters)", key,
		                 value, sizeof(ov->value) - 1);
	ov = realloc(rule->ov, (rule->nov + 1) * sizeof(*ov));
	if (!ov)
		return conf_fail(err, errlen, "out of memory");
	rule->ov = ov;
	ov += rule->nov++;
	snprintf(ov->key, sizeof(ov->key), "%s", key);
	snprintf(ov->value, sizeof(ov->value), "%s", value);
	return 0;
}

static struct policy *find_policy(const struct hconf *c, const char *name)
{
	if (!*name)
		name = "default";
	for (size_t i = 0; i < c->npolicies; i++)
		if (strcmp(c->policies[i].name, name) == 0)
			return &c->policies[i];
	return NULL;
}

/* The rule's policy with its overrides, all of which parsed at load. */
static void effective_policy(const struct hconf *c, const struct vm_rule *rule, struct policy *ret)
{
	const struct policy *p = find_policy(c, rule->policy);
	char err[CONF_ERR_LEN];

	*ret = p ? *p : c->policies[0];
	for (size_t i = 0; i < rule->nov; i++) {
		const struct key *k = find_key(SEC_POLICY, rule->ov[i].key);

		if (k)
			set_value(k, ret, rule->ov[i].value, err, sizeof(err));
	}
}

int hconf_policy_set(struct policy *p, const char *key, const char *value, char *err, size_t errlen)
{
	const struct key *k = find_key(SEC_POLICY, key);

	if (!k)
		return conf_fail(err, errlen, "unknown policy key '%s'", key);
	return set_value(k, p, value, err, errlen);
}

/* ---- reading the files ---- */

static void section_error(struct load *L, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void section_error(struct load *L, int line, const char *fmt, ...)
{
	va_list ap;

	L->err_line = line;
	va_start(ap, fmt);
	vsnprintf(L->err_msg, sizeof(L->err_msg), fmt, ap);
	va_end(ap);
}

static int open_policy(struct load *L, const char *name, int line, size_t *ret_idx)
{
	struct policy *p = find_policy(L->c, name);
	size_t i = p ? (size_t)(p - L->c->policies) : L->c->npolicies;

	if (!valid_policy_name(name)) {
		section_error(L, line,
		              "policy name '%s' may use only letters, digits, '-', '_' and '.'",
		              name);
		return 0;
	}
	if (strlen(name) >= POLICY_NAME_LEN) {
		section_error(L, line, "policy name '%s' is longer than %d characters", name,
		              POLICY_NAME_LEN - 1);
		return 0;
	}
	if (p && L->origins[i].line) {
		section_error(L, line, "policy '%s' is already defined at %s:%d", name,
		              L->origins[i].file, L->origins[i].line);
		return 0;
	}
	if (!p && add_policy(L, name, line) < 0)
		return -ENOMEM;
	/* [policy default] replaces the built-in one; both start from the table */
	snprintf(L->origins[i].file, sizeof(L->origins[i].file), "%s", L->file);
	L->origins[i].line = line;
	*ret_idx = i;
	return 0;
}

static const struct vm_rule *find_rule(const struct hconf *c, const char *pattern)
{
	for (size_t i = 0; i < c->nrules; i++)
		if (strcmp(c->rules[i].pattern, pattern) == 0)
			return &c->rules[i];
	return NULL;
}

/* Creates what section i of the scan stands for, or notes why it cannot. */
static int open_section(struct load *L, size_t i)
{
	const struct iniscan_section *sec = &L->scan.sections[i];
	struct placed *pl = &L->placed[i];
	const struct vm_rule *dup;
	char buf[CONF_ERR_LEN], *kind, *arg;

	snprintf(buf, sizeof(buf), "%s", sec->name);
	kind = buf + strspn(buf, " \t");
	arg = kind + strcspn(kind, " \t");
	if (*arg)
		*arg++ = '\0';
	arg += strspn(arg, " \t");
	for (char *e = arg + strlen(arg); e > arg && strchr(" \t", e[-1]); e--)
		e[-1] = '\0';

	if (strcmp(kind, "host") == 0 && !*arg) {
		pl->kind = SEC_HOST;
	} else if (strcmp(kind, "host") == 0) {
		section_error(L, sec->line, "[host] takes no name");
	} else if (strcmp(kind, "policy") == 0 && !*arg) {
		section_error(L, sec->line, "[policy] needs a name: [policy NAME]");
	} else if (strcmp(kind, "policy") == 0) {
		pl->kind = SEC_POLICY;
		return open_policy(L, arg, sec->line, &pl->idx);
	} else if (strcmp(kind, "vm") == 0 && !*arg) {
		section_error(L, sec->line, "[vm] needs a pattern: [vm PATTERN]");
	} else if (strcmp(kind, "vm") == 0 && (dup = find_rule(L->c, arg))) {
		/* first match wins: a second one is dead, and --print-config would merge them */
		section_error(L, sec->line, "[vm %s] is already at %s:%d", arg, dup->file,
		              dup->line);
	} else if (strcmp(kind, "vm") == 0) {
		pl->kind = SEC_VM;
		pl->idx = L->c->nrules;
		return add_rule(L, arg, sec->line);
	} else {
		section_error(
		        L, sec->line,
		        "unknown section [%s%s%s] (expected [host], [policy NAME] or [vm PATTERN])",
		        kind, *arg ? " " : "", arg);
	}
	return 0;
}

static int set_rule_key(struct load *L, size_t idx, const char *key, const char *value, int line,
                        char *err, size_t errlen)
{
	struct vm_rule *rule = &L->c->rules[idx];
	const struct key *k = find_key(SEC_VM, key);
	struct policy scratch;
	int r;

	if (k) {
		r = set_value(k, rule, value, err, errlen);
		if (r == 0 && k->kind == K_POLICY)
			L->policy_lines[idx] = line;
		return r;
	}
	k = find_key(SEC_POLICY, key);
	if (!k)
		return conf_fail(err, errlen, "unknown key '%s' in [vm %s]", key, rule->pattern);
	/* the value alone is checked here; with its policy once every file is read */
	policy_from_table(&scratch, "default");
	r = set_value(k, &scratch, value, err, errlen);
	return r < 0 ? r : add_override(rule, key, value, err, errlen);
}

static int on_key(void *user, const char *section, const char *key, const char *value, char *err,
                  size_t errlen)
{
	struct load *L = user;
	const struct iniscan_key *sk = iniscan_next_key(&L->scan, section, key);
	const struct placed *sec;
	const struct key *k;
	struct policy *p;

	if (!sk) /* only when the file changed between the scan and inih */
		return conf_fail(err, errlen, "'%s' in [%s] changed while being read", key,
		                 section);
	sec = &L->placed[sk->section];
	if (sec->kind == SEC_NONE) /* or a section with an error, which is reported first */
		return conf_fail(err, errlen, "'%s' is outside any section", key);
	if (sec->kind == SEC_VM)
		return set_rule_key(L, sec->idx, key, value, sk->line, err, errlen);
	k = find_key(sec->kind, key);
	if (sec->kind == SEC_HOST && k && k->kind == K_MIGRATION) {
		snprintf(L->migration.file, sizeof(L->migration.file), "%s", L->file);
		L->migration.line = sk->line;
	}
	if (sec->kind == SEC_HOST)
		return k ? set_value(k, &L->c->host, value, err, errlen)
		         : conf_fail(err, errlen, "unknown key '%s' in [host]", key);
	p = &L->c->policies[sec->idx];
	return k ? set_value(k, p, value, err, errlen)
	         : conf_fail(err, errlen, "unknown key '%s' in [policy %s]", key, p->name);
}

/* The line in a "path:line: message" from conf_parse_file(), or INT_MAX. */
static int reported_line(const char *err, const char *path)
{
	size_t n = strlen(path);
	int line;

	if (strncmp(err, path, n) != 0 || sscanf(err + n, ":%d:", &line) != 1)
		return INT_MAX;
	return line;
}

/* Reads one file into L->c: scan it, open its sections, then the keys through inih. */
static int load_file(struct load *L, const char *path, char *err, size_t errlen)
{
	int r, line;

	L->file = path;
	r = iniscan_init(&L->scan, path, err, errlen);
	if (r < 0)
		goto out_fini;
	L->placed = calloc(L->scan.nsections, sizeof(*L->placed));
	if (!L->placed) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out_fini;
	}
	L->err_line = 0;
	for (size_t i = 1; i < L->scan.nsections && r == 0 && !L->err_line; i++)
		r = open_section(L, i);
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		goto out_fini;
	}
	if (!L->err_line && L->scan.err_line) {
		L->err_line = L->scan.err_line;
		snprintf(L->err_msg, sizeof(L->err_msg), "%s", L->scan.err);
	}
	r = conf_parse_file(path, on_key, L, err, errlen);
	if (r < 0 && r != -EINVAL)
		goto out_fini;
	/* both report their first problem: the earlier line wins, ours on a tie (a line too
	 * long for inih, which it reports one line late) */
	line = r < 0 ? reported_line(err, path) : INT_MAX;
	if (L->err_line && L->err_line <= line) {
		snprintf(err, errlen, "%s:%d: %s", path, L->err_line, L->err_msg);
		r = -EINVAL;
	}
out_fini:
	free(L->placed);
	L->placed = NULL;
	iniscan_fini(&L->scan);
	return r;
}

static int is_conf_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Reads <dir of path>/conf.d/<*.conf> in name order; a missing conf.d is fine. */
static int load_conf_d(struct load *L, const char *path, char *err, size_t errlen)
{
	char copy[PATH_MAX], dir[PATH_MAX], file[PATH_MAX];
	struct dirent **names;
	struct stat st;
	int n, r = 0;

	snprintf(copy, sizeof(copy), "%s", path);
	if (snprintf(dir, sizeof(dir), "%s/conf.d", dirname(copy)) >= (int)sizeof(dir)) {
		snprintf(err, errlen, "%s: %s", path, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	n = scandir(dir, &names, is_conf_name, by_name);
	if (n < 0) {
		if (errno == ENOENT)
			return 0;
		r = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(-r));
		return r;
	}
	for (int i = 0; i < n; i++) {
		if (r == 0 && snprintf(file, sizeof(file), "%s/%s", dir, names[i]->d_name) >=
		                      (int)sizeof(file)) {
			snprintf(err, errlen, "%s/%s: %s", dir, names[i]->d_name,
			         strerror(ENAMETOOLONG));
			r = -ENAMETOOLONG;
		}
		if (r == 0 && !(stat(file, &st) == 0 && S_ISDIR(st.st_mode)))
			r = load_file(L, file, err, errlen);
		free(names[i]);
	}
	free(names);
	return r;
}

/* Once every file is read: each policy, each rule's policy name, each rule with overrides. */
static int validate(const struct load *L, char *err, size_t errlen)
{
	const struct hconf *c = L->c;
	char msg[CONF_ERR_LEN];
	struct policy p;

	if (c->host.migration == MIGRATION_AUTO && c->host.npeers == 0)
		return conf_fail(err, errlen,
		                 "%s:%d: migration = auto needs a peer = URI to move to",
		                 L->migration.file, L->migration.line);
	for (size_t i = 0; i < c->npolicies; i++) {
		const struct origin *o = &L->origins[i];

		if (policy_validate(&c->policies[i], msg, sizeof(msg)) == 0)
			continue;
		if (o->line)
			return conf_fail(err, errlen, "%s:%d: policy '%s': %s", o->file, o->line,
			                 c->policies[i].name, msg);
		return conf_fail(err, errlen, "built-in policy '%s': %s", c->policies[i].name, msg);
	}
	for (size_t i = 0; i < c->nrules; i++) {
		const struct vm_rule *rule = &c->rules[i];

		if (!find_policy(c, rule->policy))
			return conf_fail(err, errlen, "%s:%d: policy '%s' is not defined",
			                 rule->file, L->policy_lines[i], rule->policy);
		if (!rule->nov)
			continue;
		effective_policy(c, rule, &p);
		if (policy_validate(&p, msg, sizeof(msg)) < 0)
			return conf_fail(err, errlen,
			                 "%s:%d: vm '%s': policy '%s' with overrides: %s",
			                 rule->file, rule->line, rule->pattern, p.name, msg);
	}
	return 0;
}

int hconf_load(const char *path, bool must_exist, struct hconf **ret, char *err, size_t errlen)
{
	struct load L = {0};
	struct hconf *c;
	int r;

	if (strlen(path) >= sizeof(c->path)) {
		snprintf(err, errlen, "%s: %s", path, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	strcpy(c->path, path);
	set_defaults(SEC_HOST, &c->host);
	L.c = c;
	r = add_policy(&L, "default", 0);
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		goto out_free;
	}
	r = load_file(&L, path, err, errlen);
	if (r == -ENOENT && !must_exist)
		r = 0;
	if (r == 0)
		r = load_conf_d(&L, path, err, errlen);
	if (r == 0)
		r = validate(&L, err, errlen);
	if (r < 0)
		goto out_free;
	free(L.origins);
	free(L.policy_lines);
	*ret = c;
	return 0;
out_free:
	free(L.origins);
	free(L.policy_lines);
	hconf_free(c);
	return r;
}

void hconf_free(struct hconf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nrules; i++)
		free(c->rules[i].ov);
	free(c->rules);
	free(c->policies);
	free(c);
}

/* 36 characters: hex digits with dashes at 8, 13, 18 and 23 */
static bool is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

const struct vm_rule *hconf_match(const struct hconf *c, const char *name, const char *uuid)
{
	for (size_t i = 0; i < c->nrules; i++) {
		const struct vm_rule *r = &c->rules[i];

		if (is_uuid(r->pattern) ? uuid && strcasecmp(r->pattern, uuid) == 0
		                        : name && fnmatch(r->pattern, name, 0) == 0)
			return r;
	}
	return NULL;
}

void hconf_policy_for(const struct hconf *c, const char *name, const char *uuid, struct policy *ret)
{
	const struct vm_rule *rule = hconf_match(c, name, uuid);

	if (rule)
		effective_policy(c, rule, ret);
	else
		*ret = c->policies[0];
}

static void print_keys(FILE *out, enum sec_kind sec, const void *base, bool help)
{
	char value[PATH_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (keys[i].sec != sec)
			continue;
		format_value(&keys[i], base, value, sizeof(value));
		if (help)
			fprintf(out, "# %s\n", keys[i].help);
		fprintf(out, "%s = %s\n", keys[i].name, value);
	}
}

void hconf_print(const struct hconf *c, FILE *out)
{
	fprintf(out, "# effective configuration from %s and its conf.d/\n\n[host]\n", c->path);
	print_keys(out, SEC_HOST, &c->host, true);
	for (size_t i = 0; i < c->npolicies; i++) {
		fprintf(out, "\n[policy %s]\n", c->policies[i].name);
		print_keys(out, SEC_POLICY, &c->policies[i], i == 0);
	}
	for (size_t i = 0; i < c->nrules; i++) {
		const struct vm_rule *r = &c->rules[i];

		fprintf(out, "\n[vm %s]\n", r->pattern);
		print_keys(out, SEC_VM, r, i == 0);
		for (size_t j = 0; j < r->nov; j++)
			fprintf(out, "%s = %s\n", r->ov[j].key, r->ov[j].value);
	}
}
