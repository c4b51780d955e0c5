/* Prometheus text exposition over HTTP (libmicrohttpd), GET /metrics, on hostd's libev loop:
 * MHD runs in external-select mode through its epoll fd, so rendering reads hostd's state on the
 * loop thread with no locks. Off when the listen address is "off".
 *
 * Families: host headroom and allocation, per VM vCPUs / memory / guest figures / operations /
 * metering, decisions by action and reason, rejected guest frames. */
#ifndef VSCALE_METRICS_H
#define VSCALE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "ctlmsg.h"
#include "policy.h"

#define METRICS_ACTIONS 5  /* enum action */
#define METRICS_REASONS 13 /* enum reason */

struct metrics_ops {
	void (*host)(void *user, struct ctl_host *ret);
	/* VM number i (0..), false past the last */
	bool (*vm)(void *user, size_t i, struct ctl_vm *ret);
	/* decisions evaluated since start, by action and reason */
	uint64_t (*decisions)(void *user, enum action a, enum reason r);
};

struct metrics;

/* Listens on listen ("127.0.0.1:9810", "[::1]:9810"; port 0 = any free port). NULL with a
 * message in err. Free with metrics_close(). */
struct metrics *metrics_open(struct ev_loop *loop, const char *listen,
                             const struct metrics_ops *ops, void *user, char *err, size_t errlen);
void metrics_close(struct metrics *m);
/* The port actually bound. */
uint16_t metrics_port(const struct metrics *m);

/* Renders the whole exposition into a new NUL-terminated buffer (free()); NULL on out of memory.
 * Public for tests. */
char *metrics_render(const struct metrics_ops *ops, void *user);

/* Checks a listen address ("off" included). 0 or -EINVAL with a message. */
int metrics_parse_listen(const char *listen, char *err, size_t errlen);

#endif
