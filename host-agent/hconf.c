/* vscale-hostd configuration: reads the main file and conf.d/, turns each section into the
 * [host] settings, a policy or a [vm] rule, validates the whole, and matches VMs to rules. Keys
 * and their values go through the key table (hkeys.c). inih (through common/conf.c) hands over
 * keys only, so each file is scanned first (iniscan.c) to learn where every section starts. */
#include "hconf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "conf.h"
#include "hkeys.h"
#include "iniscan.h"

#define MSG_LEN (PATH_MAX + CONF_ERR_LEN)

/* where a policy section is; line 0 = built in */
struct origin {
	char file[PATH_MAX];
	int line;
};

/* what a scanned section became */
struct placed {
	bool open;               /* false: before any header, or the section had an error */
	enum hkeys_section kind; /* when open */
	size_t idx;              /* HKEYS_POLICY: index in policies; HKEYS_VM: index in rules */
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
	hkeys_init_policy(&p[n - 1], name);
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
	hkeys_set_defaults(HKEYS_VM, r);
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
		const struct hkey *k = hkeys_find(HKEYS_POLICY, rule->ov[i].key);

		if (k)
			hkeys_set(k, ret, rule->ov[i].value, err, sizeof(err));
	}
}

int hconf_policy_set(struct policy *p, const char *key, const char *value, char *err, size_t errlen)
{
	const struct hkey *k = hkeys_find(HKEYS_POLICY, key);

	if (!k)
		return conf_fail(err, errlen, "unknown policy key '%s'", key);
	return hkeys_set(k, p, value, err, errlen);
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

	if (!hkeys_valid_policy_name(name)) {
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

/* Splits the section name in buf, in place, into its first word and the trimmed rest. */
static void split_header(char *buf, char **ret_kind, char **ret_arg)
{
	char *kind = buf + strspn(buf, " \t"), *arg = kind + strcspn(kind, " \t");

	if (*arg)
		*arg++ = '\0';
	arg += strspn(arg, " \t");
	for (char *e = arg + strlen(arg); e > arg && strchr(" \t", e[-1]); e--)
		e[-1] = '\0';
	*ret_kind = kind;
	*ret_arg = arg;
}

/* Creates what section i of the scan stands for, or notes why it cannot. */
static int open_section(struct load *L, size_t i)
{
	const struct iniscan_section *sec = &L->scan.sections[i];
	struct placed *pl = &L->placed[i];
	const struct vm_rule *dup;
	char buf[CONF_ERR_LEN], *kind, *arg;

	snprintf(buf, sizeof(buf), "%s", sec->name);
	split_header(buf, &kind, &arg);
	if (strcmp(kind, "host") == 0 && !*arg) {
		pl->open = true;
		pl->kind = HKEYS_HOST;
	} else if (strcmp(kind, "host") == 0) {
		section_error(L, sec->line, "[host] takes no name");
	} else if (strcmp(kind, "policy") == 0 && !*arg) {
		section_error(L, sec->line, "[policy] needs a name: [policy NAME]");
	} else if (strcmp(kind, "policy") == 0) {
		pl->open = true;
		pl->kind = HKEYS_POLICY;
		return open_policy(L, arg, sec->line, &pl->idx);
	} else if (strcmp(kind, "vm") == 0 && !*arg) {
		section_error(L, sec->line, "[vm] needs a pattern: [vm PATTERN]");
	} else if (strcmp(kind, "vm") == 0 && (dup = find_rule(L->c, arg))) {
		/* first match wins: a second one is dead, and --print-config would merge them */
		section_error(L, sec->line, "[vm %s] is already at %s:%d", arg, dup->file,
		              dup->line);
	} else if (strcmp(kind, "vm") == 0) {
		pl->open = true;
		pl->kind = HKEYS_VM;
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
	const struct hkey *k = hkeys_find(HKEYS_VM, key);
	struct policy scratch;
	int r;

	if (k) {
		r = hkeys_set(k, rule, value, err, errlen);
		if (r == 0 && strcmp(key, "policy") == 0) /* validate() names its line */
			L->policy_lines[idx] = line;
		return r;
	}
	k = hkeys_find(HKEYS_POLICY, key);
	if (!k)
		return conf_fail(err, errlen, "unknown key '%s' in [vm %s]", key, rule->pattern);
	/* the value alone is checked here; with its policy once every file is read */
	hkeys_init_policy(&scratch, "default");
	r = hkeys_set(k, &scratch, value, err, errlen);
	return r < 0 ? r : add_override(rule, key, value, err, errlen);
}

static int on_key(void *user, const char *section, const char *key, const char *value, char *err,
                  size_t errlen)
{
	struct load *L = user;
	const struct iniscan_key *sk = iniscan_next_key(&L->scan, section, key);
	const struct placed *sec;
	const struct hkey *k;
	struct policy *p;

	if (!sk) /* only when the file changed between the scan and inih */
		return conf_fail(err, errlen, "'%s' in [%s] changed while being read", key,
		                 section);
	sec = &L->placed[sk->section];
	if (!sec->open) /* or a section with an error, which is reported first */
		return conf_fail(err, errlen, "'%s' is outside any section", key);
	if (sec->kind == HKEYS_VM)
		return set_rule_key(L, sec->idx, key, value, sk->line, err, errlen);
	k = hkeys_find(sec->kind, key);
	if (sec->kind == HKEYS_HOST && strcmp(key, "migration") == 0) { /* for validate() */
		snprintf(L->migration.file, sizeof(L->migration.file), "%s", L->file);
		L->migration.line = sk->line;
	}
	if (sec->kind == HKEYS_HOST)
		return k ? hkeys_set(k, &L->c->host, value, err, errlen)
		         : conf_fail(err, errlen, "unknown key '%s' in [host]", key);
	p = &L->c->policies[sec->idx];
	return k ? hkeys_set(k, p, value, err, errlen)
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
	hkeys_set_defaults(HKEYS_HOST, &c->host);
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

void hconf_print(const struct hconf *c, FILE *out)
{
	fprintf(out, "# effective configuration from %s and its conf.d/\n\n[host]\n", c->path);
	hkeys_print_section(out, HKEYS_HOST, &c->host, true);
	for (size_t i = 0; i < c->npolicies; i++) {
		fprintf(out, "\n[policy %s]\n", c->policies[i].name);
		hkeys_print_section(out, HKEYS_POLICY, &c->policies[i], i == 0);
	}
	for (size_t i = 0; i < c->nrules; i++) {
		const struct vm_rule *r = &c->rules[i];

		fprintf(out, "\n[vm %s]\n", r->pattern);
		hkeys_print_section(out, HKEYS_VM, r, i == 0);
		for (size_t j = 0; j < r->nov; j++)
			fprintf(out, "%s = %s\n", r->ov[j].key, r->ov[j].value);
	}
}
