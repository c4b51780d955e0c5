/* vscale-guestd configuration: defaults, /etc/vscale/guest.conf ([guestd] section, INI via inih)
 * and command-line overrides, all through one key table. */
#ifndef VSCALE_GCONF_H
#define VSCALE_GCONF_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "collect.h"
#include "log.h"

#define GCONF_DEFAULT_PATH "/etc/vscale/guest.conf"
#define GCONF_PORT_NAME    "org.vscale.agent.0"

struct gconf {
	char device[PATH_MAX]; /* "" = find the org.vscale.agent.0 port */
	char root[PATH_MAX];   /* where /proc and /sys are: "/" */
	uint64_t interval_ms;
	unsigned buffer_samples; /* newest samples kept while no host is connected */
	uint64_t retry_max_ms;   /* reconnect backoff cap */
	bool hotplug;            /* online hot-added CPUs and memory, serve host requests */
	uint64_t hold_ms;        /* default time what a request offlined stays offline */
	struct collect_opts collect;
	enum log_level log_level;
};

void gconf_default(struct gconf *c);
/* Sets one key ("interval", "device", ...) from its text. 0, or -EINVAL with a reason in err. */
int gconf_set(struct gconf *c, const char *key, const char *value, char *err, size_t errlen);
/* Reads a config file into c. A missing file is an error only when must_exist. Errors are
 * "file:line: message" in err. */
int gconf_load(struct gconf *c, const char *path, bool must_exist, char *err, size_t errlen);
/* Prints the effective configuration as a config file. */
void gconf_print(const struct gconf *c, FILE *out);

#endif
