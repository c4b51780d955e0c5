/* The key table of vscale-hostd's config: every key of [host], [policy NAME] and [vm PATTERN]
 * with its parser, its field and its default text. Defaults are parsed from that text, values
 * from the files go through the same parsers, and printing walks the same table with formatters
 * that write text the parsers read back to the same value. */
#include "hkeys.h"

#include <assert.h>
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "hconf.h"
#include "log.h"
#include "util.h"

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

static const struct hkey {
	enum hkeys_section sec;
	size_t off, size; /* the field in struct host_conf, policy or vm_rule */
	const char *name;
	enum kind kind;
	size_t off2;     /* upper bound of K_VCPUS, K_MEMORY */
	double min, max; /* K_UINT, K_DOUBLE, K_VCPUS */
	unsigned flags;
	const char *def; /* parsed like a value from the file */
	const char *help;
} keys[] = {
#define HOST(f) HKEYS_HOST, offsetof(struct host_conf, f), sizeof(((struct host_conf *)0)->f)
#define POL(f)  HKEYS_POLICY, offsetof(struct policy, f), sizeof(((struct policy *)0)->f)
#define VM(f)   HKEYS_VM, offsetof(struct vm_rule, f), sizeof(((struct vm_rule *)0)->f)
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

/* ---- parsing values ---- */

const struct hkey *hkeys_find(enum hkeys_section sec, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (keys[i].sec == sec && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

bool hkeys_valid_policy_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
			return false;
	return true;
}

static int set_text(const struct hkey *k, char *field, const char *value, char *err, size_t errlen)
{
	if (!*value && !(k->flags & F_EMPTY_OK))
		return conf_fail(err, errlen, "must not be empty");
	if (k->kind == K_PATH && *value && *value != '/')
		return conf_fail(err, errlen, "'%s' is not an absolute path", value);
	if (k->kind == K_POLICY && !hkeys_valid_policy_name(value))
		return conf_fail(err, errlen, "'%s' is not a policy name", value);
	if (strlen(value) >= k->size)
		return conf_fail(err, errlen, "'%s' is too long (at most %zu characters)", value,
		                 k->size - 1);
	if (k->kind == K_POLICY && strcmp(value, "default") == 0)
		value = "";
	strcpy(field, value);
	return 0;
}

static int set_listen(const struct hkey *k, char *field, const char *value, char *err,
                      size_t errlen)
{
	int r = 0;

	if (strcmp(value, "off") != 0)
		r = conf_parse_listen(value, NULL, NULL, err, errlen);
	return r < 0 ? r : set_text(k, field, value, err, errlen);
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

/* The entry s..e of the peer list value, trimmed, into list[n] when it is a new libvirt URI. */
static int parse_peer(const char *value, const char *s, const char *e, char (*list)[HCONF_URI_LEN],
                      uint32_t n, char *err, size_t errlen)
{
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
	return 0;
}

/* The length of the line "peer = a, b" that hconf_print() writes for these peers. */
static size_t peers_line_len(char (*list)[HCONF_URI_LEN], uint32_t n)
{
	size_t len = strlen("peer = ") + (n ? 2 * (n - 1) : 0);

	for (uint32_t i = 0; i < n; i++)
		len += strlen(list[i]);
	return len;
}

/* "uri, uri": each a libvirt URI (scheme://...), listed once. Written only when all parse; ""
 * empties the list (a conf.d file can take the peers away). The parser refuses a key given
 * twice in a section, so several peers are one comma list, not repeated keys. */
static int set_peers(const char *value, char (*peers)[HCONF_URI_LEN], uint32_t *ret_n, char *err,
                     size_t errlen)
{
	char list[HCONF_PEERS_MAX][HCONF_URI_LEN];
	uint32_t n = 0;
	int r;

	for (const char *p = value; *value; p++) {
		size_t len = strcspn(p, ",");

		r = parse_peer(value, p, p + len, list, n, err, errlen);
		if (r < 0)
			return r;
		n++;
		p += len;
		if (!*p)
			break;
	}
	/* hconf_print() writes "peer = a, b": that line must fit too */
	if (peers_line_len(list, n) > CONF_LINE_MAX)
		return conf_fail(err, errlen,
		                 "the list is too long: \"peer = ...\" must fit in %d "
		                 "characters",
		                 CONF_LINE_MAX);
	memcpy(peers, list, n * sizeof(list[0]));
	*ret_n = n;
	return 0;
}

/* K_UINT, K_SIZE, K_DURATION, K_PERCENT, K_DOUBLE */
static int set_number(const struct hkey *k, char *field, const char *value, char *err,
                      size_t errlen)
{
	uint64_t u;
	int r;

	if (k->kind == K_PERCENT)
		return conf_parse_percent(value, 100, (double *)field, err, errlen);
	if (k->kind == K_DOUBLE)
		return conf_parse_double(value, k->min, k->max, (double *)field, err, errlen);
	if (k->kind == K_UINT) {
		r = conf_parse_uint(value, k->min, k->max, &u, err, errlen);
		if (r == 0)
			*(uint32_t *)field = (uint32_t)u;
		return r;
	}
	if (k->kind == K_SIZE)
		r = conf_parse_size_kib(value, &u, err, errlen);
	else
		r = conf_parse_duration_ms(value, &u, err, errlen);
	if (r == 0 && u == 0 && (k->flags & F_POSITIVE))
		r = conf_fail(err, errlen, "'%s' must be above 0", value);
	if (r == 0)
		*(uint64_t *)field = u;
	return r;
}

/* K_VCPUS, K_MEMORY: "lo..hi" or "n" into the fields at off and off2 */
static int set_range(const struct hkey *k, void *base, const char *value, char *err, size_t errlen)
{
	char *lo = (char *)base + k->off, *hi = (char *)base + k->off2;
	uint64_t a, b;
	int r;

	if (k->kind == K_VCPUS)
		r = conf_parse_uint_range(value, k->min, k->max, &a, &b, err, errlen);
	else
		r = conf_parse_size_range_kib(value, &a, &b, err, errlen);
	if (r < 0)
		return r;
	if (k->kind == K_VCPUS) {
		*(uint32_t *)lo = (uint32_t)a;
		*(uint32_t *)hi = (uint32_t)b;
	} else {
		*(uint64_t *)lo = a;
		*(uint64_t *)hi = b;
	}
	return 0;
}

int hkeys_set(const struct hkey *k, void *base, const char *value, char *err, size_t errlen)
{
	char *field = (char *)base + k->off, sub[CONF_ERR_LEN];
	int r = 0;

	switch (k->kind) {
	case K_STR:
	case K_PATH:
	case K_POLICY:
		r = set_text(k, field, value, sub, sizeof(sub));
		break;
	case K_LISTEN:
		r = set_listen(k, field, value, sub, sizeof(sub));
		break;
	case K_MIGRATION:
		r = set_migration(value, (enum migration_mode *)field, sub, sizeof(sub));
		break;
	case K_PEERS:
		r = set_peers(value, (char(*)[HCONF_URI_LEN])field,
		              (uint32_t *)((char *)base + k->off2), sub, sizeof(sub));
		break;
	case K_UINT:
	case K_SIZE:
	case K_DURATION:
	case K_PERCENT:
	case K_DOUBLE:
		r = set_number(k, field, value, sub, sizeof(sub));
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
	case K_MEMORY:
		r = set_range(k, base, value, sub, sizeof(sub));
		break;
	}
	if (r < 0)
		return conf_fail(err, errlen, "%s: %s", k->name, sub);
	return 0;
}

void hkeys_set_defaults(enum hkeys_section sec, void *base)
{
	char err[CONF_ERR_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (keys[i].sec != sec)
			continue;
		if (hkeys_set(&keys[i], base, keys[i].def, err, sizeof(err)) < 0)
			assert(!"a default in the key table does not parse");
	}
}

void hkeys_init_policy(struct policy *p, const char *name)
{
	memset(p, 0, sizeof(*p));
	hkeys_set_defaults(HKEYS_POLICY, p);
	snprintf(p->name, sizeof(p->name), "%s", name);
}

/* ---- formatting values ---- */

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

/* n URIs of HCONF_URI_LEN characters each as "a, b" */
static void format_peers(const char *peers, uint32_t n, char *buf, size_t len)
{
	buf[0] = '\0';
	for (uint32_t i = 0; i < n; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? ", " : "",
		         peers + i * HCONF_URI_LEN);
}

/* K_VCPUS, K_MEMORY: a single value when both ends agree, else "lo..hi" */
static void format_range(const struct hkey *k, const void *base, char *buf, size_t len)
{
	const char *lo = (const char *)base + k->off, *hi = (const char *)base + k->off2;
	char a[32], b[32];

	if (k->kind == K_VCPUS) {
		snprintf(a, sizeof(a), "%u", *(const uint32_t *)lo);
		snprintf(b, sizeof(b), "%u", *(const uint32_t *)hi);
	} else {
		format_size(*(const uint64_t *)lo, a, sizeof(a));
		format_size(*(const uint64_t *)hi, b, sizeof(b));
	}
	if (strcmp(a, b) == 0)
		snprintf(buf, len, "%s", a);
	else
		snprintf(buf, len, "%s..%s", a, b);
}

/* Writes k's field of base as text the parser reads back to the same value. */
static void format_value(const struct hkey *k, const void *base, char *buf, size_t len)
{
	const char *field = (const char *)base + k->off;
	char pct[32];

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
		format_peers(field, *(const uint32_t *)((const char *)base + k->off2), buf, len);
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
		format_double(*(const double *)field, pct, sizeof(pct));
		snprintf(buf, len, "%s%%", pct);
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
	case K_VCPUS:
	case K_MEMORY:
		format_range(k, base, buf, len);
		break;
	}
}

void hkeys_print_section(FILE *out, enum hkeys_section sec, const void *base, bool help)
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
