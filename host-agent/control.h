/* hostd's control plane: a nanomsg REP socket at <dir>/control answering vscalectl, and a PUB
 * socket at <dir>/events streaming decisions and events. The ONLY file that includes nanomsg.
 *
 * Root only: <dir> is made mode 0700 and both sockets 0600, so another user cannot connect at
 * all (vscalectl checks first and says so). Requests are answered on the libev loop, one at a
 * time, through ops->request; events are published without blocking (a slow subscriber loses
 * events, hostd never waits). */
#ifndef VSCALE_CONTROL_H
#define VSCALE_CONTROL_H

#include <stddef.h>

#include <ev.h>

#include "ctlmsg.h"

struct control_ops {
	/* Fills *rep (zeroed; heap fields are freed by control.c with ctl_reply_fini()). */
	void (*request)(void *user, const struct ctl_request *rq, struct ctl_reply *rep);
};

struct control;

/* Binds both sockets under dir (created if missing). NULL with a message in err, e.g. when
 * another hostd already serves dir. Free with control_close(). */
struct control *control_open(struct ev_loop *loop, const char *dir, const struct control_ops *ops,
                             void *user, char *err, size_t errlen);
/* Closes both sockets and removes their files. NULL is a no-op. */
void control_close(struct control *c);

/* Publishes one event to every subscriber. NULL c is a no-op. */
void control_publish(struct control *c, const struct ctl_event *e);

/* vscalectl's side (same file: it is the only nanomsg user). Socket paths under dir. */
#define CONTROL_REQ_NAME "control"
#define CONTROL_PUB_NAME "events"

/* Sends rq to the hostd serving dir and waits up to timeout_ms for *ret (ctl_reply_fini() it).
 * 0, or -errno with a human message in err: hostd not running, permission denied, timeout. */
int control_call(const char *dir, const struct ctl_request *rq, int timeout_ms,
                 struct ctl_reply *ret, char *err, size_t errlen);

/* Subscribes to dir's events and calls fn for each until fn returns non-zero or *stop is set
 * (checked at least every 200 ms). 0 at the end, -errno with a message in err. */
int control_watch(const char *dir, int (*fn)(void *user, const struct ctl_event *e), void *user,
                  volatile int *stop, char *err, size_t errlen);

#endif
