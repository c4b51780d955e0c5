/* e2e-demo-view: the live terminal view of `make demo` (tests/e2e/demo.sh). Once a second it asks
 * the test guest's load controller for the guest's own figures (org.vscale.test.0 channel: CPUs,
 * busy %, MemTotal, MemAvailable, PSI), asks libvirt for what the domain holds (vscale_virt),
 * reads the demo's phase, and tails vscale-hostd's decision log and log. On a terminal it redraws
 * one screen with plain ANSI escapes; otherwise (CI, a file) it prints one line a second plus a
 * line per phase, decision and notable hostd message. Stops on SIGINT/SIGTERM. Test code. */
#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "declog.h"
#include "util.h"
#include "virt.h"

#define NDECISIONS 16 /* kept; as many as the terminal has rows for are shown */
#define NHOSTD     3
#define BAR_WIDTH  20

struct opts {
	const char *sock, *uri, *uuid, *name, *decisions, *hostd_log, *phase, *status_out;
	uint64_t t0_ms; /* wall clock ms the demo started, for elapsed times */
	double cpu_up, cpu_down, mem_up, mem_down;
	bool plain;
};

/* the guest's figures, from the load controller's "status" reply; -1 when absent */
struct guest {
	bool ok;
	double cpus_online, busy_pct, mem_total_kib, mem_avail_kib;
	double psi_cpu, psi_mem, spinners, held_mib;
	char line[512];
};

/* one decision: a "started" line and its outcome line are merged */
struct entry {
	double ts, ts_end;
	char action[16], reason[24], outcome[16], text[300], detail[CTL_TEXT_LEN];
	unsigned vcpus[2];
	unsigned long long mem_kib[2];
};

/* a file read as it grows, one complete line at a time */
struct tail {
	const char *path;
	long off;
	char part[4096];
	size_t len;
};

static volatile sig_atomic_t stop;
static struct opts O = {
        .uri = "qemu:///system", .cpu_up = 75, .cpu_down = 25, .mem_up = 20, .mem_down = 45};
static struct entry decisions[NDECISIONS];
static unsigned ndecisions;
static char hostd_lines[NHOSTD][300];
static unsigned nhostd;
static char phase[300] = "starting";
static double tick_wall_s; /* when this second's round began: the time every line shows */
static bool utf8;

static void on_signal(int sig)
{
	stop = 1;
}

static void noop(void *user)
{
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* "m:ss" since the demo started */
static const char *elapsed(double wall_s, char *buf, size_t cap)
{
	long s = (long)(wall_s - (double)O.t0_ms / 1000.0);

	if (s < 0)
		s = 0;
	snprintf(buf, cap, "%ld:%02ld", s / 60, s % 60);
	return buf;
}

/* The number after " key=" in a key=value line; -1 when absent. */
static double kv_num(const char *line, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = strstr(line, key); p; p = strstr(p + 1, key))
		if ((p == line || p[-1] == ' ') && p[klen] == '=')
			return strtod(p + klen + 1, NULL);
	return -1;
}

/* One tagged "status" request on the test channel: connect, ask, read the reply, close. Only
 * one client at a time is served (the demo script's load commands queue behind it), so the
 * connection is held for one request only. A late reply to a request given up on reaches the
 * next client, which drops it by its tag. */
static int poll_guest(struct guest *g, unsigned seq)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char tag[32], msg[64], buf[2048];
	size_t len = 0;
	uint64_t deadline = util_now_ms() + 2000;
	int fd, n, r = -ETIMEDOUT;

	g->ok = false;
	if (strlen(O.sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, O.sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto out_close;
	}
	snprintf(tag, sizeof(tag), "#view.%d.%u", (int)getpid(), seq);
	n = snprintf(msg, sizeof(msg), "%s status\n", tag);
	if (write(fd, msg, (size_t)n) != n) {
		r = -EIO;
		goto out_close;
	}
	while (!stop) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = (int64_t)(deadline - util_now_ms());
		char *nl;
		ssize_t got;

		while ((nl = memchr(buf, '\n', len))) {
			size_t used = (size_t)(nl - buf) + 1, tl = strlen(tag);

			*nl = '\0';
			if (strncmp(buf, tag, tl) == 0 &&
			    strncmp(buf + tl, " ok status ", 11) == 0) {
				snprintf(g->line, sizeof(g->line), "%s", buf + tl + 4);
				r = 0;
				goto out_close;
			}
			memmove(buf, buf + used, len - used);
			len -= used;
		}
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		if (len >= sizeof(buf) - 1)
			len = 0;
		got = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (got <= 0)
			break;
		len += (size_t)got;
	}
out_close:
	close(fd);
	if (r == 0) {
		g->ok = true;
		g->cpus_online = kv_num(g->line, "cpus_online");
		g->busy_pct = kv_num(g->line, "busy_pct");
		g->mem_total_kib = kv_num(g->line, "mem_total_kib");
		g->mem_avail_kib = kv_num(g->line, "mem_avail_kib");
		g->psi_cpu = kv_num(g->line, "psi_cpu_some10");
		g->psi_mem = kv_num(g->line, "psi_mem_some10");
		g->spinners = kv_num(g->line, "spinners");
		g->held_mib = kv_num(g->line, "held_mib");
	}
	return r;
}

/* a guest's text shown on a terminal: control characters as blanks */
static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* "vcpus 1 -> 2", "memory 512 -> 768 MiB", "hold (saturated)" */
static void describe(const struct entry *e, char *buf, size_t cap)
{
	if (!strncmp(e->action, "vcpu", 4))
		snprintf(buf, cap, "vcpus %u -> %u", e->vcpus[0], e->vcpus[1]);
	else if (!strncmp(e->action, "mem", 3))
		snprintf(buf, cap, "memory %llu -> %llu MiB", e->mem_kib[0] / 1024,
		         e->mem_kib[1] / 1024);
	else
		snprintf(buf, cap, "hold");
}

/* "done 1.2 s", "started", "hold", "failed" */
static void outcome(const struct entry *e, char *buf, size_t cap)
{
	if (e->ts_end > 0 && e->ts_end - e->ts < 1.0)
		snprintf(buf, cap, "%s %.0f ms", e->outcome, (e->ts_end - e->ts) * 1000.0);
	else if (e->ts_end > 0)
		snprintf(buf, cap, "%s %.1f s", e->outcome, e->ts_end - e->ts);
	else if (!strcmp(e->outcome, "hold"))
		snprintf(buf, cap, "%s", e->reason); /* why it holds */
	else
		snprintf(buf, cap, "%s", e->outcome);
}

static void print_entry(const struct entry *e, const char *prefix)
{
	char t[48], what[64], out[32];

	describe(e, what, sizeof(what));
	outcome(e, out, sizeof(out));
	printf("%6s  %s%s %s: %s%s%s\n", elapsed(e->ts_end > 0 ? e->ts_end : e->ts, t, sizeof(t)),
	       prefix, what, out, e->text, e->detail[0] ? "; " : "", e->detail);
}

static void add_decision(char *line)
{
	struct entry e = {0};
	struct ctl_record r;

	if (declog_parse_line(line, &r) < 0 || !r.action[0])
		return;
	e.ts = (double)r.time_ms / 1000.0;
	snprintf(e.action, sizeof(e.action), "%s", r.action);
	snprintf(e.reason, sizeof(e.reason), "%s", r.reason);
	snprintf(e.outcome, sizeof(e.outcome), "%s", r.outcome);
	snprintf(e.text, sizeof(e.text), "%s", r.text);
	snprintf(e.detail, sizeof(e.detail), "%s", r.detail);
	printable(e.text);
	printable(e.detail);
	e.vcpus[0] = r.vcpus_from;
	e.vcpus[1] = r.vcpus_to;
	e.mem_kib[0] = r.mem_from_kib;
	e.mem_kib[1] = r.mem_to_kib;
	if (strcmp(e.outcome, "started") != 0 && strcmp(e.outcome, "hold") != 0) {
		/* the outcome of the operation started last with the same sizes */
		for (unsigned i = ndecisions; i-- > 0;) {
			struct entry *s = &decisions[i];

			if (!strcmp(s->outcome, "started") && !strcmp(s->action, e.action) &&
			    s->vcpus[0] == e.vcpus[0] && s->vcpus[1] == e.vcpus[1] &&
			    s->mem_kib[0] == e.mem_kib[0] && s->mem_kib[1] == e.mem_kib[1]) {
				snprintf(s->outcome, sizeof(s->outcome), "%s", e.outcome);
				snprintf(s->detail, sizeof(s->detail), "%s", e.detail);
				s->ts_end = e.ts;
				if (O.plain)
					print_entry(s, ">> ");
				return;
			}
		}
	}
	if (ndecisions == NDECISIONS) {
		memmove(decisions, decisions + 1, sizeof(decisions[0]) * (NDECISIONS - 1));
		ndecisions--;
	}
	decisions[ndecisions++] = e;
	if (O.plain)
		print_entry(&e, ">> ");
}

/* hostd log lines worth showing next to the decisions: not the action and hold lines, which
 * the decision log already has */
static void add_hostd_line(char *line)
{
	char prefix[300], t[48];
	const char *msg = line;

	if (line[0] == '<' && line[1] && line[2] == '>')
		msg += 3; /* journald priority */
	snprintf(prefix, sizeof(prefix), "vm '%s': ", O.name);
	if (!strncmp(msg, prefix, strlen(prefix)))
		msg += strlen(prefix);
	else if (!strncmp(msg, "vm '", 4))
		return; /* another domain on this host (not managed: [vm *] enabled = no) */
	if (!*msg || strstr(msg, " -> ") || !strncmp(msg, "hold: ", 6) ||
	    !strncmp(msg, "stats: ", 7))
		return;
	if (nhostd == NHOSTD) {
		memmove(hostd_lines, hostd_lines + 1, sizeof(hostd_lines[0]) * (NHOSTD - 1));
		nhostd--;
	}
	snprintf(hostd_lines[nhostd++], sizeof(hostd_lines[0]), "%s", msg);
	if (O.plain)
		printf("%6s  hostd: %s\n", elapsed(tick_wall_s, t, sizeof(t)), msg);
}

/* Calls fn on each complete new line of t->path. */
static void tail_read(struct tail *t, void (*fn)(char *line))
{
	FILE *f;
	char *nl;
	size_t got;

	if (!t->path || !(f = fopen(t->path, "r")))
		return;
	if (fseek(f, t->off, SEEK_SET) == 0) {
		while ((got = fread(t->part + t->len, 1, sizeof(t->part) - 1 - t->len, f)) > 0) {
			t->off += (long)got;
			t->len += got;
			t->part[t->len] = '\0';
			while ((nl = memchr(t->part, '\n', t->len))) {
				size_t used = (size_t)(nl - t->part) + 1;

				*nl = '\0';
				fn(t->part);
				memmove(t->part, t->part + used, t->len - used);
				t->len -= used;
			}
			if (t->len == sizeof(t->part) - 1)
				t->len = 0; /* an overlong line: drop it */
		}
	}
	fclose(f);
}

static void read_phase(void)
{
	char buf[300], t[48];
	ssize_t n;

	if (!O.phase || (n = util_read_file(O.phase, buf, sizeof(buf))) <= 0)
		return;
	buf[strcspn(buf, "\n")] = '\0';
	if (strcmp(buf, phase) != 0) {
		snprintf(phase, sizeof(phase), "%s", buf);
		if (O.plain)
			printf("%6s  == %s\n", elapsed(tick_wall_s, t, sizeof(t)), phase);
	}
}

static void write_status(const struct guest *g, const struct virt_dom *d, bool have_dom)
{
	char buf[700];
	int n;

	if (!O.status_out || !g->ok)
		return;
	n = snprintf(buf, sizeof(buf), "%s plugged=%u mem_cur_kib=%llu\n", g->line,
	             have_dom ? d->vcpus_cur : 0,
	             have_dom ? (unsigned long long)d->mem.cur_kib : 0ull);
	if (n > 0 && (size_t)n < sizeof(buf))
		util_write_atomic(O.status_out, buf, (size_t)n);
}

/* ---- drawing ---- */

/* The screen is built in frame[]; every line is cut at the terminal's width (escape sequences
 * kept, so colours still reset), so that nothing wraps and the redraw stays in place. */
static char frame[16384];
static size_t flen;
static int frame_cols = 80, line_cols; /* terminal width; columns used on this line */

static void put(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void put(const char *fmt, ...)
{
	char buf[2048];
	bool esc = false;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (const char *p = buf; *p && flen + 1 < sizeof(frame); p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\033') {
			esc = true;
		} else if (esc) {
			esc = !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'));
		} else if (c == '\n') {
			line_cols = 0;
		} else {
			if ((c & 0xc0) != 0x80) /* not a UTF-8 continuation byte: a new column */
				line_cols++;
			if (line_cols > frame_cols - 1)
				continue; /* past the right edge */
		}
		frame[flen++] = (char)c;
	}
	frame[flen] = '\0';
}

/* the end of a screen line: clear the rest of it */
static void eol(void)
{
	put("\033[K\n");
}

static const char *full_block(void)
{
	return utf8 ? "\u2588" : "#";
}

static const char *empty_block(void)
{
	return utf8 ? "\u2591" : ".";
}

/* [#####.....] for pct in 0..100, coloured: green, yellow past warn, red past bad (or the
 * other way round when low is bad) */
static void bar(double pct, double warn, double bad, bool low_is_bad)
{
	int fill = pct < 0 ? 0 : pct > 100 ? BAR_WIDTH : (int)(pct * BAR_WIDTH / 100.0 + 0.5);
	bool is_bad = low_is_bad ? pct <= bad : pct >= bad;
	bool is_warn = low_is_bad ? pct <= warn : pct >= warn;
	const char *col = pct < 0 ? "" : is_bad ? "\033[31m" : is_warn ? "\033[33m" : "\033[32m";

	put("[%s", col);
	for (int i = 0; i < BAR_WIDTH; i++)
		put("%s", i < fill ? full_block() : empty_block());
	put("\033[0m]");
}

/* one box per vCPU: online, plugged but offline, not plugged */
static void vcpu_boxes(int online, int plugged, int max)
{
	put("[");
	for (int i = 0; i < max && i < 64; i++) {
		if (i < online)
			put("\033[32m%s%s\033[0m", full_block(), full_block());
		else if (i < plugged)
			put("\033[33m%s%s\033[0m", utf8 ? "\u2592" : "o", utf8 ? "\u2592" : "o");
		else
			put("%s%s", empty_block(), empty_block());
		if (i + 1 < max)
			put(" ");
	}
	put("]");
}

/* the terminal's size; 80x24 when it does not say */
static void term_size(int *ret_cols, int *ret_rows)
{
	struct winsize ws;

	*ret_cols = 80;
	*ret_rows = 24;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40 && ws.ws_row >= 10) {
		*ret_cols = ws.ws_col;
		*ret_rows = ws.ws_row;
	}
}

static const char *fmt_mib(double kib, char *buf, size_t cap)
{
	if (kib < 0)
		snprintf(buf, cap, "?");
	else
		snprintf(buf, cap, "%.0f MiB", kib / 1024.0);
	return buf;
}

static void draw_figures(const struct guest *g, const struct virt_dom *d, bool have_dom)
{
	double avail_pct = -1, ram_pct = -1;
	char a[32], b[32], c[32], e[32];

	if (g->ok && g->mem_total_kib > 0 && g->mem_avail_kib >= 0)
		avail_pct = 100.0 * g->mem_avail_kib / g->mem_total_kib;
	if (have_dom && d->mem.max_kib > 0)
		ram_pct = 100.0 * (double)d->mem.cur_kib / (double)d->mem.max_kib;
	put("vCPUs      ");
	vcpu_boxes(g->ok ? (int)g->cpus_online : 0, have_dom ? (int)d->vcpus_cur : 0,
	           have_dom ? (int)d->vcpus_max : 0);
	if (g->ok)
		put("  %.0f online in the guest", g->cpus_online);
	if (have_dom)
		put(", %u plugged (libvirt), max %u", d->vcpus_cur, d->vcpus_max);
	eol();
	put("CPU busy   ");
	bar(g->ok ? g->busy_pct : -1, O.cpu_up, 90, false);
	if (g->ok && g->busy_pct >= 0)
		put(" %5.1f %%", g->busy_pct);
	else
		put("     ? %%");
	put("   +vCPU >= %g %%, -vCPU <= %g %%", O.cpu_up, O.cpu_down);
	eol();
	put("RAM        ");
	bar(ram_pct, 200, 200, false);
	if (have_dom)
		put(" libvirt %s, guest MemTotal %s, virtio-mem %s of %s",
		    fmt_mib((double)d->mem.cur_kib, a, sizeof(a)),
		    fmt_mib(g->ok ? g->mem_total_kib : -1, b, sizeof(b)),
		    fmt_mib((double)d->mem.vmem_requested_kib, c, sizeof(c)),
		    fmt_mib((double)d->mem.vmem_size_kib, e, sizeof(e)));
	eol();
	put("available  ");
	bar(avail_pct, O.mem_up + 10, O.mem_up, true);
	if (avail_pct >= 0)
		put(" %5.1f %%  %-8s", avail_pct, fmt_mib(g->mem_avail_kib, a, sizeof(a)));
	else
		put("     ? %%          ");
	put(" +RAM <= %g %%, -RAM >= %g %%", O.mem_up, O.mem_down);
	eol();
	if (g->ok && g->psi_cpu >= 0 && g->psi_mem >= 0)
		put("PSI avg10  cpu some %s%5.1f %%\033[0m   memory some %s%5.1f %%\033[0m",
		    g->psi_cpu >= 10 ? "\033[33m" : "", g->psi_cpu,
		    g->psi_mem >= 10 ? "\033[33m" : "", g->psi_mem);
	else
		put("PSI avg10  ?");
	eol();
	put("load       ");
	if (g->ok)
		put("%.0f busy thread%s, %.0f MiB held (e2e-loadgen in the guest)", g->spinners,
		    g->spinners == 1 ? "" : "s", g->held_mib);
	eol();
}

static void draw(const struct guest *g, const struct virt_dom *d, bool have_dom)
{
	char t[48], what[64], out[32];
	int rows, shown;

	flen = 0;
	line_cols = 0;
	term_size(&frame_cols, &rows);
	/* everything but the decisions takes 16 rows (17 before the guest answers) */
	shown = rows - 16 - !g->ok;
	shown = shown < 3 ? 3 : shown > NDECISIONS ? NDECISIONS : shown;
	put("\033[H\033[1mvscale demo\033[0m  vm %s  %s  (Ctrl-C stops and cleans up)", O.name,
	    elapsed(tick_wall_s, t, sizeof(t)));
	eol();
	put("\033[1;36m");
	put("%s", phase);
	put("\033[0m");
	eol();
	eol();
	if (!g->ok) {
		put("\033[33mno answer from the guest's load controller yet (booting?)\033[0m");
		eol();
	}
	draw_figures(g, d, have_dom);
	eol();
	put("\033[1mdecisions\033[0m (vscale-hostd's decision log, newest last)");
	eol();
	for (int i = 0; i < shown; i++) {
		unsigned first = ndecisions > (unsigned)shown ? ndecisions - (unsigned)shown : 0;
		const struct entry *e = &decisions[first + (unsigned)i];
		char line[600];

		if (first + (unsigned)i >= ndecisions) {
			eol();
			continue;
		}
		describe(e, what, sizeof(what));
		outcome(e, out, sizeof(out));
		snprintf(line, sizeof(line), " %5s  %-22s %-12s %s%s%s",
		         elapsed(e->ts, t, sizeof(t)), what, out, e->text, e->detail[0] ? "; " : "",
		         e->detail);
		put("%s", !strcmp(e->outcome, "done")     ? "\033[32m"
		          : !strcmp(e->outcome, "hold")   ? "\033[33m"
		          : strcmp(e->outcome, "started") ? "\033[31m"
		                                          : "");
		put("%s", line);
		put("\033[0m");
		eol();
	}
	put("\033[1mhostd\033[0m");
	eol();
	for (unsigned i = 0; i < NHOSTD; i++) {
		put(" ");
		if (i < nhostd)
			put("%s", hostd_lines[i]);
		eol();
	}
	put("\033[J");
	fwrite(frame, 1, flen, stdout);
	fflush(stdout);
}

/* one line a second when stdout is not a terminal */
static void print_plain(const struct guest *g, const struct virt_dom *d, bool have_dom)
{
	char t[48];

	printf("%6s  ", elapsed(tick_wall_s, t, sizeof(t)));
	if (g->ok)
		printf("vcpus %.0f online", g->cpus_online);
	else
		printf("guest booting");
	if (have_dom)
		printf(" %u plugged", d->vcpus_cur);
	if (g->ok) {
		if (g->busy_pct >= 0)
			printf(" | busy %5.1f%%", g->busy_pct);
		else
			printf(" | busy     ?");
		printf(" | MemTotal %.0f MiB", g->mem_total_kib / 1024);
		if (have_dom)
			printf(" libvirt %llu MiB", (unsigned long long)d->mem.cur_kib / 1024);
		printf(" | avail %.0f%% | psi cpu %.1f mem %.1f | load %.0f threads %.0f MiB",
		       g->mem_total_kib > 0 ? 100.0 * g->mem_avail_kib / g->mem_total_kib : -1.0,
		       g->psi_cpu, g->psi_mem, g->spinners, g->held_mib);
	}
	printf("\n");
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: e2e-demo-view --sock TEST_SOCK --name VM --uuid UUID [--uri URI]\n"
	           "         [--decisions FILE] [--hostd-log FILE] [--phase FILE] [--status-out "
	           "FILE]\n"
	           "         [--t0-ms WALL_MS] [--cpu-up PCT --cpu-down PCT --mem-up PCT "
	           "--mem-down PCT] [--plain]\n");
}

static int parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"sock", required_argument, NULL, 's'},
	        {"uri", required_argument, NULL, 'U'},
	        {"uuid", required_argument, NULL, 'u'},
	        {"name", required_argument, NULL, 'n'},
	        {"decisions", required_argument, NULL, 'd'},
	        {"hostd-log", required_argument, NULL, 'l'},
	        {"phase", required_argument, NULL, 'p'},
	        {"status-out", required_argument, NULL, 'o'},
	        {"t0-ms", required_argument, NULL, 't'},
	        {"cpu-up", required_argument, NULL, 1},
	        {"cpu-down", required_argument, NULL, 2},
	        {"mem-up", required_argument, NULL, 3},
	        {"mem-down", required_argument, NULL, 4},
	        {"plain", no_argument, NULL, 'P'},
	        {"help", no_argument, NULL, 'h'},
	        {0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			O.sock = optarg;
			break;
		case 'U':
			O.uri = optarg;
			break;
		case 'u':
			O.uuid = optarg;
			break;
		case 'n':
			O.name = optarg;
			break;
		case 'd':
			O.decisions = optarg;
			break;
		case 'l':
			O.hostd_log = optarg;
			break;
		case 'p':
			O.phase = optarg;
			break;
		case 'o':
			O.status_out = optarg;
			break;
		case 't':
			O.t0_ms = strtoull(optarg, NULL, 10);
			break;
		case 1:
			O.cpu_up = strtod(optarg, NULL);
			break;
		case 2:
			O.cpu_down = strtod(optarg, NULL);
			break;
		case 3:
			O.mem_up = strtod(optarg, NULL);
			break;
		case 4:
			O.mem_down = strtod(optarg, NULL);
			break;
		case 'P':
			O.plain = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (!O.sock || !O.name || !O.uuid || optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	if (!O.t0_ms)
		O.t0_ms = wall_ms();
	return 0;
}

/* libvirt's view of the domain; reconnects at most every 5 s after a failure */
static bool lookup_domain(struct virt *v, struct virt_dom *ret)
{
	static uint64_t next_try_ms;
	char err[300];

	if (!v)
		return false;
	if (!virt_connected(v)) {
		if (util_now_ms() < next_try_ms)
			return false;
		next_try_ms = util_now_ms() + 5000;
		if (virt_connect(v, O.uri, err, sizeof(err)) < 0)
			return false;
	}
	return virt_lookup(v, O.uuid, ret) == 0 && ret->active;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	struct tail dlog = {0}, hlog = {0};
	struct virt *v;
	uint64_t next_ms;
	unsigned seq = 0;

	if (parse_args(argc, argv) < 0)
		return 2;
	setlocale(LC_ALL, "");
	utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (!O.plain && !isatty(STDOUT_FILENO))
		O.plain = true;
	setvbuf(stdout, NULL, O.plain ? _IOLBF : _IOFBF, 0);
	dlog.path = O.decisions;
	hlog.path = O.hostd_log;
	v = virt_new(noop, NULL);
	if (!O.plain)
		fputs("\033[?25l\033[H\033[2J", stdout); /* hide the cursor, clear */
	next_ms = util_now_ms();
	while (!stop) {
		struct guest g = {0};
		struct virt_dom d = {0};
		bool have_dom;
		int64_t left;

		tick_wall_s = (double)wall_ms() / 1000.0;
		read_phase();
		poll_guest(&g, seq++);
		have_dom = lookup_domain(v, &d);
		tail_read(&dlog, add_decision);
		tail_read(&hlog, add_hostd_line);
		write_status(&g, &d, have_dom);
		if (stop)
			break;
		if (O.plain)
			print_plain(&g, &d, have_dom);
		else
			draw(&g, &d, have_dom);
		next_ms += 1000;
		left = (int64_t)(next_ms - util_now_ms());
		if (left < 0) {
			next_ms = util_now_ms();
			continue;
		}
		poll(NULL, 0, (int)left); /* a signal cuts it short */
	}
	/* what arrived last still shows; the last frame stays on the screen */
	tail_read(&dlog, add_decision);
	tail_read(&hlog, add_hostd_line);
	if (!O.plain)
		fputs("\033[?25h\n", stdout);
	fflush(stdout);
	virt_free(v);
	return 0;
}
