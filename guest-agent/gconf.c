/* vscale-guestd configuration. One table names every key, its parser and where it goes; the
 * config file ([guestd] section) and the command line both go through gconf_set(). */
#include "gconf.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"

enum kind { K_PATH, K_DURATION, K_COUNT, K_BOOL, K_PERCENT, K_LOGLEVEL };

static const struct key {
	const char *name;
	enum kind kind;
	size_t off;
	uint64_t min, max; /* K_COUNT */
	const char *help;
} keys[] = {
        {"device", K_PATH, offsetof(struct gconf, device), 0, 0,
         "virtio port, unix socket or FIFO to talk to the host; empty = find " GCONF_PORT_NAME},
        {"root", K_PATH, offsetof(struct gconf, root), 0, 0, "directory holding proc/ and sys/"},
        {"interval", K_DURATION, offsetof(struct gconf, interval_ms), 0, 0, "time between samples"},
        {"buffer", K_COUNT, offsetof(struct gconf, buffer_samples), 1, 3600,
         "samples kept while no host is connected (newest win)"},
        {"retry-max", K_DURATION, offsetof(struct gconf, retry_max_ms), 0, 0,
         "longest wait between attempts to reach the host"},
        {"hotplug", K_BOOL, offsetof(struct gconf, hotplug), 0, 0,
         "online hot-added CPUs and memory, act on host requests"},
        {"hold", K_DURATION, offsetof(struct gconf, hold_ms), 0, 0,
         "how long what a host request offlined stays offline before it is onlined again"},
        {"threads", K_BOOL, offsetof(struct gconf, collect.scan_threads), 0, 0,
         "scan per-thread CPU use (single-thread saturation)"},
        {"top-threads", K_COUNT, offsetof(struct gconf, collect.top_threads), 0, SAMPLE_MAX_THREADS,
         "hottest threads reported per sample"},
        {"saturation", K_PERCENT, offsetof(struct gconf, collect.saturation_pct), 0, 0,
         "a thread using this much of one CPU is hot"},
        {"saturation-samples", K_COUNT, offsetof(struct gconf, collect.saturation_samples), 1, 1000,
         "samples in a row a thread must be hot"},
        {"rest-idle", K_PERCENT, offsetof(struct gconf, collect.rest_idle_pct), 0, 0,
         "the other CPUs must be busy below this for saturation"},
        {"log-level", K_LOGLEVEL, offsetof(struct gconf, log_level), 0, 0,
         "err, warn, info or debug"},
};

void gconf_default(struct gconf *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->root, "/");
	c->interval_ms = 1000;
	c->buffer_samples = 60;
	c->retry_max_ms = 2000;
	c->hotplug = true;
	c->hold_ms = 120000;
	collect_opts_default(&c->collect);
	c->log_level = LOG_LVL_INFO;
}

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

int gconf_set(struct gconf *c, const char *name, const char *value, char *err, size_t errlen)
{
	const struct key *k = find_key(name);
	char *field;
	uint64_t v;
	int r = 0;

	if (!k) {
		snprintf(err, errlen, "unknown key '%s'", name);
		return -EINVAL;
	}
	field = (char *)c + k->off;
	switch (k->kind) {
	case K_PATH:
		/* absolute or empty: the daemon's cwd is no place to look, and a value printed by
		 * gconf_print() must read back (";x" would print as "key = ;x", a comment) */
		if (*value && *value != '/') {
			snprintf(err, errlen, "%s: '%s' is not an absolute path", name, value);
			return -EINVAL;
		}
		if (strlen(value) >= PATH_MAX) {
			snprintf(err, errlen, "%s: path too long", name);
			return -EINVAL;
		}
		strcpy(field, value);
		return 0;
	case K_DURATION:
		r = conf_parse_duration_ms(value, &v, err, errlen);
		if (r == 0 && v == 0 && strcmp(name, "interval") == 0) {
			snprintf(err, errlen, "interval must be above 0");
			return -EINVAL;
		}
		if (r == 0)
			*(uint64_t *)field = v;
		break;
	case K_COUNT:
		r = conf_parse_uint(value, k->min, k->max, &v, err, errlen);
		if (r == 0)
			*(unsigned *)field = (unsigned)v;
		break;
	case K_BOOL:
		r = conf_parse_bool(value, (bool *)field, err, errlen);
		break;
	case K_PERCENT:
		r = conf_parse_percent(value, 100, (double *)field, err, errlen);
		break;
	case K_LOGLEVEL:
		r = log_parse_level(value, (enum log_level *)field);
		if (r < 0)
			snprintf(err, errlen, "'%s' is not a log level (err, warn, info, debug)",
			         value);
		break;
	}
	return r;
}

static int on_key(void *user, const char *section, const char *key, const char *value, char *err,
                  size_t errlen)
{
	char sub[CONF_ERR_LEN];

	if (strcmp(section, "guestd") != 0) {
		snprintf(err, errlen, "unknown section [%s] (expected [guestd])", section);
		return -EINVAL;
	}
	if (gconf_set(user, key, value, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen, "%s", sub);
		return -EINVAL;
	}
	return 0;
}

int gconf_load(struct gconf *c, const char *path, bool must_exist, char *err, size_t errlen)
{
	int r = conf_parse_file(path, on_key, c, err, errlen);

	if (r == -ENOENT && !must_exist)
		return 0;
	return r;
}

void gconf_print(const struct gconf *c, FILE *out)
{
	fprintf(out, "[guestd]\n");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *k = &keys[i];
		const char *field = (const char *)c + k->off;

		fprintf(out, "# %s\n%s = ", k->help, k->name);
		switch (k->kind) {
		case K_PATH:
			fprintf(out, "%s\n", field);
			break;
		case K_DURATION:
			fprintf(out, "%llums\n", (unsigned long long)*(const uint64_t *)field);
			break;
		case K_COUNT:
			fprintf(out, "%u\n", *(const unsigned *)field);
			break;
		case K_BOOL:
			fprintf(out, "%s\n", *(const bool *)field ? "yes" : "no");
			break;
		case K_PERCENT:
			fprintf(out, "%g%%\n", *(const double *)field);
			break;
		case K_LOGLEVEL: {
			static const char *names[] = {[LOG_LVL_ERR] = "err",
			                              [LOG_LVL_WARN] = "warn",
			                              [LOG_LVL_INFO] = "info",
			                              [LOG_LVL_DEBUG] = "debug"};
			fprintf(out, "%s\n", names[*(const enum log_level *)field]);
			break;
		}
		}
	}
}
