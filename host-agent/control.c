/* nanomsg REQ/REP + PUB over ipc:// for hostd and vscalectl. See control.h. */
#include "control.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/pubsub.h>
#include <nanomsg/reqrep.h>

#include "log.h"

#define REQUEST_MAX (64 * 1024) /* a request is a few hundred bytes */

struct control {
	struct ev_loop *loop;
	const struct control_ops *ops;
	void *user;
	int rep, pub; /* nanomsg sockets, -1 = none */
	ev_io rep_io;
	char rep_path[PATH_MAX], pub_path[PATH_MAX];
};

static int sock_path(const char *dir, const char *name, char *buf, size_t cap)
{
	struct sockaddr_un sun;

	if ((size_t)snprintf(buf, cap, "%s/%s", dir, name) >= cap ||
	    strlen(buf) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	return 0;
}

/* Plain connect(2) to a unix socket: tells "nobody there" from "permission denied" from "up",
 * which nanomsg's asynchronous connect cannot. */
static int probe(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = 0;

	if (fd < 0)
		return -errno;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		r = -errno;
	close(fd);
	return r;
}

static int make_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (stat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	/* an existing directory may have been made by someone else: make it ours only */
	if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) < 0)
		return -errno;
	return 0;
}

static int bind_one(int proto, const char *path, char *err, size_t errlen)
{
	char url[PATH_MAX + 8];
	mode_t old;
	int s, r;

	r = probe(path);
	if (r == 0) {
		snprintf(err, errlen, "%s is in use: is another vscale-hostd running?", path);
		return -EADDRINUSE;
	}
	unlink(path); /* stale, from a hostd that died */
	s = nn_socket(AF_SP, proto);
	if (s < 0)
		goto fail;
	snprintf(url, sizeof(url), "ipc://%s", path);
	old = umask(0177);
	r = nn_bind(s, url);
	umask(old);
	if (r < 0) {
		nn_close(s);
		goto fail;
	}
	if (chmod(path, 0600) < 0)
		log_warn("chmod 0600 %s: %s", path, strerror(errno));
	return s;
fail:
	snprintf(err, errlen, "cannot bind %s: %s", path, nn_strerror(nn_errno()));
	return -1;
}

static void answer(struct control *c, const void *msg, size_t len)
{
	struct ctl_request rq;
	struct ctl_reply rep = {0};
	uint8_t *buf = NULL;
	size_t n = 0;

	if (ctl_decode_request(msg, len, &rq) < 0) {
		rep.ok = false;
		snprintf(rep.error, sizeof(rep.error),
		         "request does not decode (version mismatch?)");
	} else {
		c->ops->request(c->user, &rq, &rep);
	}
	if (ctl_encode_reply(&rep, &buf, &n) < 0) {
		log_err("control: out of memory encoding a reply");
		ctl_reply_fini(&rep);
		return; /* the client times out */
	}
	ctl_reply_fini(&rep);
	if (nn_send(c->rep, buf, n, NN_DONTWAIT) < 0)
		log_debug("control: reply not sent: %s", nn_strerror(nn_errno()));
	free(buf);
}

static void rep_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct control *c = w->data;

	for (;;) {
		void *msg = NULL;
		int n = nn_recv(c->rep, &msg, NN_MSG, NN_DONTWAIT);

		if (n < 0) {
			if (nn_errno() != EAGAIN)
				log_warn("control: %s", nn_strerror(nn_errno()));
			return;
		}
		answer(c, msg, (size_t)n);
		nn_freemsg(msg);
	}
}

struct control *control_open(struct ev_loop *loop, const char *dir, const struct control_ops *ops,
                             void *user, char *err, size_t errlen)
{
	struct control *c = calloc(1, sizeof(*c));
	int fd, maxsz = REQUEST_MAX, r;
	size_t sz = sizeof(fd);

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->loop = loop;
	c->ops = ops;
	c->user = user;
	c->rep = c->pub = -1;
	r = make_dir(dir);
	if (r < 0) {
		snprintf(err, errlen, "control directory %s: %s", dir, strerror(-r));
		goto fail;
	}
	if (sock_path(dir, CONTROL_REQ_NAME, c->rep_path, sizeof(c->rep_path)) < 0 ||
	    sock_path(dir, CONTROL_PUB_NAME, c->pub_path, sizeof(c->pub_path)) < 0) {
		snprintf(err, errlen, "control directory %s: path too long for a unix socket", dir);
		goto fail;
	}
	c->rep = bind_one(NN_REP, c->rep_path, err, errlen);
	if (c->rep < 0)
		goto fail;
	c->pub = bind_one(NN_PUB, c->pub_path, err, errlen);
	if (c->pub < 0)
		goto fail;
	nn_setsockopt(c->rep, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsz, sizeof(maxsz));
	if (nn_getsockopt(c->rep, NN_SOL_SOCKET, NN_RCVFD, &fd, &sz) < 0) {
		snprintf(err, errlen, "control socket: %s", nn_strerror(nn_errno()));
		goto fail;
	}
	ev_io_init(&c->rep_io, rep_cb, fd, EV_READ);
	c->rep_io.data = c;
	ev_io_start(loop, &c->rep_io);
	return c;
fail:
	control_close(c);
	return NULL;
}

void control_close(struct control *c)
{
	if (!c)
		return;
	if (c->rep >= 0) {
		ev_io_stop(c->loop, &c->rep_io);
		nn_close(c->rep);
		unlink(c->rep_path);
	}
	if (c->pub >= 0) {
		nn_close(c->pub);
		unlink(c->pub_path);
	}
	free(c);
}

void control_publish(struct control *c, const struct ctl_event *e)
{
	uint8_t *buf;
	size_t n;

	if (!c || ctl_encode_event(e, &buf, &n) < 0)
		return;
	if (nn_send(c->pub, buf, n, NN_DONTWAIT) < 0 && nn_errno() != EAGAIN)
		log_debug("control: event not published: %s", nn_strerror(nn_errno()));
	free(buf);
}

/* ---- the client (vscalectl) ---- */

static int client_check(const char *path, char *err, size_t errlen)
{
	int r = probe(path);

	switch (r) {
	case 0:
		return 0;
	case -ENOENT:
		snprintf(err, errlen, "vscale-hostd is not running (no %s)", path);
		break;
	case -ECONNREFUSED:
		snprintf(err, errlen, "vscale-hostd is not running (nobody listens on %s)", path);
		break;
	case -EACCES:
	case -EPERM:
		snprintf(err, errlen,
		         "permission denied: %s is for root only (run vscalectl as root)", path);
		break;
	default:
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
	}
	return r;
}

static int client_socket(int proto, const char *path, char *err, size_t errlen)
{
	char url[PATH_MAX + 8];
	int s = nn_socket(AF_SP, proto), r;

	if (s < 0) {
		r = -nn_errno();
		snprintf(err, errlen, "nanomsg: %s", nn_strerror(-r));
		return r;
	}
	snprintf(url, sizeof(url), "ipc://%s", path);
	if (nn_connect(s, url) < 0) {
		r = -nn_errno();
		snprintf(err, errlen, "connect %s: %s", path, nn_strerror(-r));
		nn_close(s);
		return r;
	}
	return s;
}

int control_call(const char *dir, const struct ctl_request *rq, int timeout_ms,
                 struct ctl_reply *ret, char *err, size_t errlen)
{
	char path[PATH_MAX];
	uint8_t *buf;
	void *msg = NULL;
	size_t len;
	int s, n, r, unlimited = -1;

	if (sock_path(dir, CONTROL_REQ_NAME, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	r = client_check(path, err, errlen);
	if (r < 0)
		return r;
	s = client_socket(NN_REQ, path, err, errlen);
	if (s < 0)
		return s;
	nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
	nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, &timeout_ms, sizeof(timeout_ms));
	nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &unlimited, sizeof(unlimited));
	r = ctl_encode_request(rq, &buf, &len);
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	n = nn_send(s, buf, len, 0);
	free(buf);
	if (n >= 0)
		n = nn_recv(s, &msg, NN_MSG, 0);
	if (n < 0) {
		r = -nn_errno();
		if (r == -ETIMEDOUT)
			snprintf(err, errlen, "vscale-hostd did not answer within %d ms",
			         timeout_ms);
		else
			snprintf(err, errlen, "%s: %s", path, nn_strerror(-r));
		goto out;
	}
	r = ctl_decode_reply(msg, (size_t)n, ret);
	nn_freemsg(msg);
	if (r < 0)
		snprintf(err, errlen, "vscale-hostd's reply does not decode (version mismatch?)");
out:
	nn_close(s);
	return r;
}

int control_watch(const char *dir, int (*fn)(void *user, const struct ctl_event *e), void *user,
                  volatile int *stop, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int s, r, tick = 200;

	if (sock_path(dir, CONTROL_PUB_NAME, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -ENAMETOOLONG;
	}
	r = client_check(path, err, errlen);
	if (r < 0)
		return r;
	s = client_socket(NN_SUB, path, err, errlen);
	if (s < 0)
		return s;
	nn_setsockopt(s, NN_SUB, NN_SUB_SUBSCRIBE, "", 0);
	nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &tick, sizeof(tick));
	r = 0;
	while (!*stop) {
		struct ctl_event e;
		void *msg = NULL;
		int n = nn_recv(s, &msg, NN_MSG, 0);

		if (n < 0) {
			if (nn_errno() == ETIMEDOUT || nn_errno() == EINTR)
				continue;
			r = -nn_errno();
			snprintf(err, errlen, "%s: %s", path, nn_strerror(-r));
			break;
		}
		if (ctl_decode_event(msg, (size_t)n, &e) == 0 && fn(user, &e) != 0) {
			nn_freemsg(msg);
			break;
		}
		nn_freemsg(msg);
	}
	nn_close(s);
	return r;
}
