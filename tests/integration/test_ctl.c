/* The operator's side end to end: the real vscale-hostd on libvirt's test driver with two fake
 * guests, driven by the real vscalectl. Checks every command's output and exit status (unknown VM,
 * bad key and value, bad reload with file:line), pause and resume with their events on `watch`,
 * history from the decision log, runtime overrides, /metrics over HTTP, metering that grows and
 * survives a hostd restart, `enable` on a domain's persistent XML, and that a non-root user is
 * refused with a clear message.
 * Usage: test_ctl PATH-TO-vscale-hostd PATH-TO-vscalectl */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fakeguest.h"
#include "util.h"

#include "check.h"

enum { WEB, DB, NVM };
static const char *names[NVM] = {"web", "db"};
static struct fakeguest g[NVM];
static char dir[64] = "/tmp/vscale-ctl-it-XXXXXX";
static char conf_path[256], log_path[256], ctl_dir[256];
static const char *hostd_bin, *ctl_bin;
static char out[1 << 16];

static void write_conf(const char *policy_extra)
{
	char text[2048];

	snprintf(text, sizeof(text),
	         "[host]\nuri = test://%s/node.xml\nreserve-cpus = 0\nreserve-memory = 0\n"
	         "memory-total = 32G\ninterval = 200ms\nstate-dir = %s/state\n"
	         "control-dir = %s\nmetrics = 127.0.0.1:0\n\n"
	         "[policy fast]\nvcpus = 1..3\ncpu-up-for = 1s\nvcpu-cooldown-up = 1s\n"
	         "stale-after = 1s\n%s\n[vm *]\npolicy = fast\n",
	         dir, dir, ctl_dir, policy_extra);
	check_write_file(conf_path, text);
}

/* Runs vscalectl with args (a shell word list); its stdout+stderr in out, its exit status. */
static int ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int ctl(const char *fmt, ...)
{
	char args[1024], cmd[1500];
	va_list ap;
	FILE *p;
	size_t n;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "%s --socket %s %s 2>&1", ctl_bin, ctl_dir, args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs the guests for ms, a sample every 200 ms */
static void run_for(int ms)
{
	uint64_t end = util_now_ms() + (uint64_t)ms, next = 0;

	while (util_now_ms() < end)
		fg_step(g, NVM, &next);
}

/* Runs the fake guests until hostd answers for vm (a daemon under valgrind takes seconds to
 * start); false after 30 s. */
static bool wait_vm(const char *vm)
{
	for (int i = 0; i < 300; i++) {
		if (ctl("--json show %s", vm) == 0)
			return true;
		run_for(100);
	}
	return false;
}

static int metrics_port(void)
{
	char buf[1 << 16], *p;
	int port = 0;

	if (util_read_file(log_path, buf, sizeof(buf)) <= 0)
		return 0;
	/* the newest start's line */
	for (p = strstr(buf, "(port "); p; p = strstr(p + 1, "(port "))
		port = atoi(p + 6);
	return port;
}

/* GET path from 127.0.0.1:port; the whole response in out. 0 or -1. */
static int http_get(int port, const char *path)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	char req[256];
	size_t n = 0;
	ssize_t r;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
	if (write(fd, req, strlen(req)) < 0) {
		close(fd);
		return -1;
	}
	while (n + 1 < sizeof(out) && (r = read(fd, out + n, sizeof(out) - 1 - n)) > 0) {
		/* keep the guests served while hostd answers */
		n += (size_t)r;
	}
	out[n] = '\0';
	close(fd);
	return 0;
}

/* The number after the first "<before><name><after>" in out; -1 when there is none. */
static double number_after(const char *before, const char *name, const char *after)
{
	char pat[256];
	const char *p;

	snprintf(pat, sizeof(pat), "%s%s%s", before, name, after);
	p = strstr(out, pat);
	return p ? atof(p + strlen(pat)) : -1;
}

/* the value of the sample line that starts with name_and_labels */
static double metric(const char *name_and_labels)
{
	return number_after("\n", name_and_labels, "");
}

/* the number of "key": in a JSON reply */
static double json_num(const char *key)
{
	return number_after("\"", key, "\":");
}

static void commands(void)
{
	int rc;

	rc = ctl("status");
	CHECK(rc == 0 && strstr(out, "connected") && strstr(out, "2 followed"), "status: rc %d: %s",
	      rc, out);
	rc = ctl("list");
	CHECK(rc == 0 && strstr(out, "web") && strstr(out, "db") && strstr(out, "fast"),
	      "list: rc %d: %s", rc, out);
	rc = ctl("--json list");
	CHECK(rc == 0 && out[0] == '[' && strstr(out, "\"name\":\"web\""), "list --json: %s", out);
	rc = ctl("show web");
	CHECK(rc == 0 && strstr(out, "metering:") && strstr(out, "policy 1..3"), "show: rc %d: %s",
	      rc, out);
	rc = ctl("show nope");
	CHECK(rc == 1 && strstr(out, "no running VM 'nope'"), "show unknown: rc %d: %s", rc, out);
	rc = ctl("frobnicate");
	CHECK(rc == 2 && strstr(out, "unknown command"), "bad command: rc %d: %s", rc, out);
	rc = ctl("show");
	CHECK(rc == 2, "show without VM: rc %d: %s", rc, out);

	rc = ctl("set web cpu-up=90%% vcpu-step-up=2");
	CHECK(rc == 0 && strstr(out, "cpu-up=90%") && strstr(out, "until"), "set: rc %d: %s", rc,
	      out);
	rc = ctl("--json show web");
	CHECK(rc == 0 && strstr(out, "\"overrides\":\"cpu-up=90% vcpu-step-up=2\""),
	      "override shown: %s", out);
	rc = ctl("set web cpu-up=200%%");
	CHECK(rc == 1 && strstr(out, "cpu-up"), "set bad value: rc %d: %s", rc, out);
	rc = ctl("set web no-such-key=1");
	CHECK(rc == 1 && strstr(out, "unknown policy key 'no-such-key'"), "set bad key: rc %d: %s",
	      rc, out);
	rc = ctl("set web cpu-down=95%%");
	CHECK(rc == 1, "set contradicting cpu-up: rc %d: %s", rc, out);
	rc = ctl("set web cpu-up");
	CHECK(rc == 2, "set without '=': rc %d: %s", rc, out);
}

static void pause_watch_history(void)
{
	char cmd[600], buf[8192];
	FILE *w;
	int rc, fd;
	size_t n;

	/* a watcher first, so the pause's event reaches it */
	snprintf(cmd, sizeof(cmd), "timeout 6 %s --socket %s --json watch > %s/watch.out 2>&1 &",
	         ctl_bin, ctl_dir, dir);
	CHECK(system(cmd) == 0, "watch did not start");
	run_for(800);
	rc = ctl("pause web");
	CHECK(rc == 0 && strstr(out, "paused"), "pause: rc %d: %s", rc, out);
	rc = ctl("list");
	CHECK(rc == 0 && strstr(out, "paused"), "list after pause: %s", out);
	/* paused: load does not scale it */
	g[WEB].busy_pct = 99;
	run_for(2500);
	rc = ctl("--json show web");
	CHECK(rc == 0 && json_num("vcpus") == 1, "paused VM scaled: %s", out);
	rc = ctl("resume web");
	CHECK(rc == 0 && strstr(out, "resumed"), "resume: rc %d: %s", rc, out);
	run_for(3000);
	rc = ctl("--json show web");
	/* the fake guest does not online what is plugged: the grant shows in libvirt's count */
	CHECK(rc == 0 && json_num("vcpus_plugged") >= 2, "resumed VM did not scale: %s", out);
	rc = ctl("history web");
	CHECK(rc == 0 && strstr(out, "vcpu-up"), "history: rc %d: %s", rc, out);
	rc = ctl("--json history web -n 1");
	CHECK(rc == 0 && out[0] == '[' && strstr(out, "\"vm\":\"web\"") && !strstr(out, "},\n{"),
	      "history -n 1: %s", out);
	run_for(3500); /* the watcher's timeout ends it */
	snprintf(cmd, sizeof(cmd), "%s/watch.out", dir);
	fd = open(cmd, O_RDONLY);
	n = fd >= 0 ? (size_t)read(fd, buf, sizeof(buf) - 1) : 0;
	buf[n < sizeof(buf) ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
	CHECK(strstr(buf, "\"kind\":\"paused\"") && strstr(buf, "\"kind\":\"resumed\"") &&
	              strstr(buf, "\"kind\":\"decision\"") && strstr(buf, "\"action\":\"vcpu-up\""),
	      "watch saw: %s", buf);
	(void)w;
}

static void metrics_and_metering(void)
{
	int port = metrics_port();
	double v1, v2;

	CHECK(port > 0, "no metrics port in the log");
	CHECK(http_get(port, "/metrics") == 0, "GET /metrics failed");
	CHECK(strstr(out, "200 OK") && strstr(out, "text/plain; version=0.0.4"),
	      "metrics status: %.200s", out);
	CHECK(metric("vscale_vm_vcpus{vm=\"db\",uuid=\"33333333-0000-0000-0000-000000000001\"} ") ==
	              1,
	      "vscale_vm_vcpus for db");
	CHECK(metric("vscale_host_cpus ") == 8, "host cpus");
	CHECK(strstr(out, "vscale_decisions_total{action=\"vcpu-up\",reason=\"cpu-high\"}"),
	      "decisions by action and reason missing");
	CHECK(strstr(out, "# TYPE vscale_vm_vcpu_seconds_total counter"), "metering family");
	CHECK(metric("vscale_vm_guest_cpu_busy_ratio{vm=\"web\",uuid=\"33333333-0000-0000-0000-"
	             "000000000000\"} ") > 0.9,
	      "guest busy ratio");
	v1 = metric("vscale_vm_vcpu_seconds_total{vm=\"db\",uuid=\"33333333-0000-0000-0000-"
	            "000000000001\"} ");
	CHECK(v1 > 0, "metering vcpu seconds %f", v1);
	CHECK(http_get(port, "/nope") == 0 && strstr(out, "404"), "404 for other paths");
	run_for(1500);
	CHECK(http_get(port, "/metrics") == 0, "GET /metrics failed");
	v2 = metric("vscale_vm_vcpu_seconds_total{vm=\"db\",uuid=\"33333333-0000-0000-0000-"
	            "000000000001\"} ");
	/* db has 1 vCPU: 1.5 s adds about 1.5 vCPU-seconds */
	CHECK(v2 >= v1 + 1.0 && v2 <= v1 + 3.0, "metering grew %f -> %f", v1, v2);
}

static void reload_errors(void)
{
	int rc;

	write_conf("cpu-up = 250%\n");
	rc = ctl("reload");
	CHECK(rc == 1 && strstr(out, "vscale.conf:") && strstr(out, "cpu-up"),
	      "bad reload: rc %d: %s", rc, out);
	write_conf("");
	rc = ctl("reload");
	CHECK(rc == 0 && strstr(out, "reloaded"), "reload: rc %d: %s", rc, out);
	rc = ctl("--json show web");
	CHECK(rc == 0 && strstr(out, "\"overrides\":\"\""), "reload keeps overrides: %s", out);
}

/* The test driver's domains are type 'test', which enable refuses: the XML edit itself is tested
 * in test_domxml, and on a real domain by the e2e smoke test. Here: the errors reach the user. */
static void enable(void)
{
	int rc;

	rc = ctl("enable web --dry-run --max-vcpus 8 --max-memory 8G");
	CHECK(rc == 1 && strstr(out, "web: domain type 'test' is not kvm or qemu"),
	      "enable on a test domain: rc %d: %s", rc, out);
	rc = ctl("enable nope");
	CHECK(rc == 1 && strstr(out, "no domain named 'nope'"), "enable unknown: rc %d: %s", rc,
	      out);
	rc = ctl("enable web --max-vcpus 0");
	CHECK(rc == 2 && strstr(out, "--max-vcpus"), "enable --max-vcpus 0: rc %d: %s", rc, out);
	rc = ctl("enable web --max-memory lots");
	CHECK(rc == 2 && strstr(out, "--max-memory"), "enable --max-memory lots: rc %d: %s", rc,
	      out);
}

static void not_root(void)
{
	int rc;

	if (geteuid() != 0)
		return; /* the directory is ours then; nothing to refuse */
	rc = system("command -v setpriv >/dev/null");
	if (rc != 0)
		return;
	rc = ctl("status");
	CHECK(rc == 0, "status as root");
	{
		char cmd[600];
		FILE *p;
		size_t n;
		int st;

		snprintf(
		        cmd, sizeof(cmd),
		        "setpriv --reuid=65534 --regid=65534 --clear-groups %s --socket %s status 2>&1",
		        ctl_bin, ctl_dir);
		p = popen(cmd, "r");
		n = p ? fread(out, 1, sizeof(out) - 1, p) : 0;
		out[n] = '\0';
		st = p ? pclose(p) : -1;
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(out, "permission denied"),
		      "non-root: %s", out);
	}
}

int main(int argc, char **argv)
{
	pid_t pid;
	double before, after;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PATH-TO-vscale-hostd PATH-TO-vscalectl\n", argv[0]);
		return 2;
	}
	hostd_bin = argv[1];
	ctl_bin = argv[2];
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		return 2;
	snprintf(conf_path, sizeof(conf_path), "%s/vscale.conf", dir);
	snprintf(log_path, sizeof(log_path), "%s/hostd.log", dir);
	snprintf(ctl_dir, sizeof(ctl_dir), "%s/run", dir);
	check_write_node(dir, names, NVM, "33333333");
	write_conf("");
	for (int i = 0; i < NVM; i++) {
		char path[128];

		snprintf(path, sizeof(path), "%s/%s.sock", dir, names[i]);
		if (fg_init(&g[i], path, 1, 2097152) < 0)
			return 2;
		g[i].busy_pct = 20;
		g[i].avail_pct = 40;
	}
	rc = ctl("status");
	CHECK(rc == 1 && strstr(out, "not running"), "no hostd: rc %d: %s", rc, out);

	pid = check_start_daemon(hostd_bin, conf_path, log_path);
	CHECK(wait_vm("db"), "hostd does not answer for db: %s", out);
	run_for(1500);
	commands();
	pause_watch_history();
	metrics_and_metering();
	reload_errors();
	enable();
	not_root();

	/* metering survives a restart */
	rc = ctl("--json show db");
	before = json_num("vcpu_seconds");
	CHECK(stop_child(pid) == 0, "hostd did not exit cleanly");
	pid = check_start_daemon(hostd_bin, conf_path, log_path);
	CHECK(wait_vm("db"), "restarted hostd does not answer for db: %s", out);
	run_for(1000);
	rc = ctl("--json show db");
	after = json_num("vcpu_seconds");
	CHECK(rc == 0 && before > 0 && after >= before, "metering across restart: %f -> %f", before,
	      after);
	CHECK(stop_child(pid) == 0, "hostd did not exit cleanly");
	rc = ctl("status");
	CHECK(rc == 1 && strstr(out, "not running"), "after stop: rc %d: %s", rc, out);

	for (int i = 0; i < NVM; i++)
		fg_fini(&g[i]);
	check_finish(dir, 40);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
