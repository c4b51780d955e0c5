/* e2e-loadgen: the load controller of the e2e test guest. Reads newline commands from the virtio
 * port org.vscale.test.0 (the host end is that channel's unix socket) and makes load: busy
 * threads, one single busy thread, memory allocated and touched. Answers one line per command.
 * Test code: small, no dependency beyond libc, and it never exits because the host went away.
 *
 * Commands (an optional first word "#TAG" is echoed back so the host can match its reply):
 *   ping | status | uptime | counter
 *                   status also gives what the demo view draws: CPUs present, busy % over the
 *                   last second, PSI cpu/memory some avg10 (-1 when the kernel has no PSI)
 *   spin N          N busy threads (replaces the running ones; 0 stops them)
 *   spin1           exactly one busy thread (single-thread saturation)
 *   stop            stop every busy thread
 *   alloc SIZE [RATE]  allocate and touch SIZE more (512M, 1G), RATE per second (default: at once)
 *   free            release all memory held
 *   agent kill|stop|start   SIGKILL vscale-guestd (respawned) / keep it down / let it run again
 * Replies: "ok <command> ..." or "err <command> <reason>". */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PORT_NAME   "org.vscale.test.0"
#define MAX_SPIN    64
#define CHUNK_BYTES (16ull << 20)
#define MAX_CHUNKS  4096
#define AGENT_HOLD  "/run/e2e/agent.hold"

struct spinner {
	pthread_t tid;
	atomic_bool stop;
};

static struct spinner spinners[MAX_SPIN];
static int nspin;

/* memory: the worker thread grows or shrinks what is held toward target_bytes */
static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mem_cond = PTHREAD_COND_INITIALIZER;
static void *chunks[MAX_CHUNKS];
static unsigned nchunks;          /* under mem_lock */
static uint64_t target_bytes;     /* under mem_lock */
static uint64_t rate_bytes_per_s; /* under mem_lock; 0 = as fast as possible */
static uint64_t counter;          /* ticks once a second in the main loop */
static double busy_pct = -1;      /* all CPUs busy over the last tick, as vscale-guestd counts */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *spin_main(void *arg)
{
	struct spinner *s = arg;
	volatile uint64_t x = 0;

	while (!atomic_load_explicit(&s->stop, memory_order_relaxed))
		x++;
	return NULL;
}

static void spin_set(int n)
{
	for (int i = 0; i < nspin; i++)
		atomic_store(&spinners[i].stop, true);
	for (int i = 0; i < nspin; i++)
		pthread_join(spinners[i].tid, NULL);
	nspin = 0;
	for (int i = 0; i < n && i < MAX_SPIN; i++) {
		atomic_store(&spinners[i].stop, false);
		if (pthread_create(&spinners[i].tid, NULL, spin_main, &spinners[i]) != 0)
			break;
		nspin++;
	}
}

/* One chunk more (touched page by page, so it is really backed) or one less. */
static void *mem_main(void *arg)
{
	long page = sysconf(_SC_PAGESIZE);

	pthread_mutex_lock(&mem_lock);
	for (;;) {
		uint64_t held = (uint64_t)nchunks * CHUNK_BYTES;

		if (held + CHUNK_BYTES <= target_bytes && nchunks < MAX_CHUNKS) {
			uint64_t rate = rate_bytes_per_s;
			char *p;

			pthread_mutex_unlock(&mem_lock);
			p = mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE,
			         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p != MAP_FAILED)
				for (uint64_t off = 0; off < CHUNK_BYTES; off += (uint64_t)page)
					p[off] = (char)(off / (uint64_t)page) | 1;
			if (rate)
				usleep((useconds_t)(CHUNK_BYTES * 1000000ull / rate));
			pthread_mutex_lock(&mem_lock);
			if (p == MAP_FAILED) {
				target_bytes = held; /* give up: what we have is the most we get */
				continue;
			}
			chunks[nchunks++] = p;
		} else if (held > target_bytes && nchunks > 0) {
			munmap(chunks[--nchunks], CHUNK_BYTES);
		} else {
			pthread_cond_wait(&mem_cond, &mem_lock);
		}
	}
	return NULL;
}

/* "512M", "1G", "64k", plain bytes. 0 on a bad size. */
static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (end == s)
		return 0;
	switch (toupper((unsigned char)*end)) {
	case 'G':
		return v << 30;
	case 'M':
		return v << 20;
	case 'K':
		return v << 10;
	case '\0':
		return v;
	}
	return 0;
}

static uint64_t meminfo_kib(const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	uint64_t v = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtoull(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static double uptime_s(void)
{
	double up = 0;
	FILE *f = fopen("/proc/uptime", "r");

	if (f) {
		if (fscanf(f, "%lf", &up) != 1)
			up = 0;
		fclose(f);
	}
	return up;
}

/* Signals every process named comm; returns how many. */
static int signal_comm(const char *comm, int sig)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[300], name[64] = "";
		FILE *f;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f))
			name[strcspn(name, "\n")] = '\0';
		fclose(f);
		if (strcmp(name, comm) == 0 && kill(atoi(de->d_name), sig) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* "some avg10" (or "full avg10") of /proc/pressure/WHAT; -1 when absent (no PSI). */
static double psi_avg10(const char *what, const char *kind)
{
	char path[64], line[256];
	double v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/pressure/%s", what);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		size_t klen = strlen(kind);
		char *p = strstr(line, "avg10=");

		if (strncmp(line, kind, klen) == 0 && line[klen] == ' ' && p) {
			v = strtod(p + 6, NULL);
			break;
		}
	}
	fclose(f);
	return v;
}

/* CPUs the kernel knows (plugged): the count in /sys/devices/system/cpu/present ("0-3"). */
static int cpus_present(void)
{
	char buf[256];
	int n = 0;
	FILE *f = fopen("/sys/devices/system/cpu/present", "r");

	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	for (char *save, *tok = strtok_r(buf, ",\n", &save); tok;
	     tok = strtok_r(NULL, ",\n", &save)) {
		int a = atoi(tok), b = a;
		char *dash = strchr(tok, '-');

		if (dash)
			b = atoi(dash + 1);
		n += b >= a ? b - a + 1 : 0;
	}
	return n;
}

static void cmd_agent(const char *what, char *out, size_t cap)
{
	int n;

	if (strcmp(what, "kill") == 0) {
		n = signal_comm("vscale-guestd", SIGKILL);
		snprintf(out, cap, "ok agent kill killed=%d", n);
	} else if (strcmp(what, "stop") == 0) {
		FILE *f = fopen(AGENT_HOLD, "w");

		if (f)
			fclose(f);
		n = signal_comm("vscale-guestd", SIGTERM);
		snprintf(out, cap, "%s agent stop stopped=%d", f ? "ok" : "err", n);
	} else if (strcmp(what, "start") == 0) {
		unlink(AGENT_HOLD);
		snprintf(out, cap, "ok agent start");
	} else {
		snprintf(out, cap, "err agent expected kill, stop or start");
	}
}

static void cmd_status(char *out, size_t cap)
{
	uint64_t held, target;

	pthread_mutex_lock(&mem_lock);
	held = (uint64_t)nchunks * CHUNK_BYTES;
	target = target_bytes;
	pthread_mutex_unlock(&mem_lock);
	snprintf(out, cap,
	         "ok status uptime_s=%.1f cpus_online=%ld mem_total_kib=%llu mem_avail_kib=%llu "
	         "counter=%llu spinners=%d held_mib=%llu target_mib=%llu pid=%d "
	         "cpus_present=%d busy_pct=%.1f psi_cpu_some10=%.2f psi_mem_some10=%.2f "
	         "psi_mem_full10=%.2f",
	         uptime_s(), sysconf(_SC_NPROCESSORS_ONLN),
	         (unsigned long long)meminfo_kib("MemTotal"),
	         (unsigned long long)meminfo_kib("MemAvailable"), (unsigned long long)counter,
	         nspin, (unsigned long long)(held >> 20), (unsigned long long)(target >> 20),
	         (int)getpid(), cpus_present(), busy_pct, psi_avg10("cpu", "some"),
	         psi_avg10("memory", "some"), psi_avg10("memory", "full"));
}

static void cmd_alloc(const char *size, const char *rate, char *out, size_t cap)
{
	uint64_t bytes = size ? parse_size(size) : 0, r = rate ? parse_size(rate) : 0;

	if (!bytes || (rate && !r)) {
		snprintf(out, cap, "err alloc expected SIZE [RATE], e.g. alloc 512M 64M");
		return;
	}
	pthread_mutex_lock(&mem_lock);
	target_bytes += bytes;
	rate_bytes_per_s = r;
	pthread_cond_signal(&mem_cond);
	snprintf(out, cap, "ok alloc target_mib=%llu", (unsigned long long)(target_bytes >> 20));
	pthread_mutex_unlock(&mem_lock);
}

/* Runs one command line (modified in place); writes the reply without a newline. */
static void run_command(char *line, char *out, size_t cap)
{
	char *argv[4] = {0};
	int argc = 0;

	for (char *tok = strtok(line, " \t\r"); tok && argc < 4; tok = strtok(NULL, " \t\r"))
		argv[argc++] = tok;
	if (argc == 0) {
		snprintf(out, cap, "err empty command");
	} else if (strcmp(argv[0], "ping") == 0) {
		snprintf(out, cap, "ok ping pong");
	} else if (strcmp(argv[0], "status") == 0) {
		cmd_status(out, cap);
	} else if (strcmp(argv[0], "uptime") == 0) {
		snprintf(out, cap, "ok uptime %.1f", uptime_s());
	} else if (strcmp(argv[0], "counter") == 0) {
		snprintf(out, cap, "ok counter %llu", (unsigned long long)counter);
	} else if (strcmp(argv[0], "spin") == 0 && argc == 2) {
		int n = atoi(argv[1]);

		spin_set(n < 0 ? 0 : n > MAX_SPIN ? MAX_SPIN : n);
		snprintf(out, cap, "ok spin %d", nspin);
	} else if (strcmp(argv[0], "spin1") == 0) {
		spin_set(1);
		snprintf(out, cap, "ok spin1");
	} else if (strcmp(argv[0], "stop") == 0) {
		spin_set(0);
		snprintf(out, cap, "ok stop");
	} else if (strcmp(argv[0], "alloc") == 0) {
		cmd_alloc(argv[1], argv[2], out, cap);
	} else if (strcmp(argv[0], "free") == 0) {
		pthread_mutex_lock(&mem_lock);
		target_bytes = 0;
		pthread_cond_signal(&mem_cond);
		pthread_mutex_unlock(&mem_lock);
		snprintf(out, cap, "ok free");
	} else if (strcmp(argv[0], "agent") == 0 && argc == 2) {
		cmd_agent(argv[1], out, cap);
	} else {
		snprintf(out, cap, "err %s unknown command or arguments", argv[0]);
	}
}

/* Writes all of buf, waiting at most 1 s for room (no host: writes would block). */
static void write_reply(int fd, const char *buf, size_t len)
{
	uint64_t deadline = now_ms() + 1000;

	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			break;
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int64_t left = (int64_t)(deadline - now_ms());

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
	}
	if (len > 0)
		fprintf(stderr, "e2e-loadgen: reply dropped (%zu bytes not written)\n", len);
}

/* Handles one line: "#TAG command ..." is answered "#TAG reply". */
static void handle_line(int out_fd, char *line)
{
	char reply[512], msg[600], *cmd = line, *tag = NULL;
	int n;

	if (line[0] == '#') {
		tag = line;
		cmd = line + strcspn(line, " \t");
		if (*cmd)
			*cmd++ = '\0';
	}
	run_command(cmd, reply, sizeof(reply));
	n = snprintf(msg, sizeof(msg), "%s%s%s\n", tag ? tag : "", tag ? " " : "", reply);
	if (n > 0)
		write_reply(out_fd, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
}

/* /dev/vportNpM whose sysfs name is name; 0 or -ENOENT. */
static int find_port(const char *name, char *ret, size_t cap)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *de;
	int r = -ENOENT;

	if (!d)
		return r;
	while ((de = readdir(d))) {
		char path[300], buf[128] = "";
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
		if (strcmp(buf, name) == 0) {
			snprintf(ret, cap, "/dev/%s", de->d_name);
			r = 0;
			break;
		}
	}
	closedir(d);
	return r;
}

/* busy_pct from /proc/stat's "cpu" line since the previous call (busy = not idle, iowait or
 * steal, like vscale-guestd). Keeps the last figure when the counters went back (CPU offlined). */
static void update_busy(void)
{
	static unsigned long long prev_total, prev_idle, prev_steal;
	unsigned long long v[8] = {0}, total = 0, idle, steal;
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (!f)
		return;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
	           &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 4)
		return;
	for (int i = 0; i < 8; i++)
		total += v[i];
	idle = v[3] + v[4];
	steal = v[7];
	if (prev_total && total > prev_total && idle >= prev_idle && steal >= prev_steal &&
	    idle - prev_idle + steal - prev_steal <= total - prev_total)
		busy_pct =
		        100.0 *
		        (double)(total - prev_total - (idle - prev_idle) - (steal - prev_steal)) /
		        (double)(total - prev_total);
	prev_total = total;
	prev_idle = idle;
	prev_steal = steal;
}

static void tick(void)
{
	static uint64_t next;
	uint64_t now = now_ms();

	if (!next)
		next = now + 1000;
	if (now >= next)
		update_busy();
	while (now >= next) {
		counter++;
		next += 1000;
	}
}

/* The command loop. A virtio port with no host polls HUP and reads EOF: wait and try again. */
static int serve(int in_fd, int out_fd, bool is_port)
{
	char buf[1024];
	size_t len = 0;

	for (;;) {
		struct pollfd p = {.fd = in_fd, .events = POLLIN};
		int r = poll(&p, 1, 1000);
		ssize_t n;

		tick();
		if (r < 0 && errno != EINTR)
			return 1;
		if (r <= 0)
			continue;
		if (!(p.revents & POLLIN)) {
			if (!is_port)
				return 0; /* stdin closed */
			usleep(200000);   /* HUP: no host */
			continue;
		}
		n = read(in_fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			if (!is_port)
				return 0; /* stdin closed */
			len = 0;
			usleep(200000);
			continue;
		}
		len += (size_t)n;
		buf[len] = '\0';
		for (char *nl; (nl = memchr(buf, '\n', len));) {
			size_t used = (size_t)(nl - buf) + 1;

			*nl = '\0';
			handle_line(out_fd, buf);
			memmove(buf, buf + used, len - used);
			len -= used;
		}
		if (len == sizeof(buf) - 1) {
			fprintf(stderr, "e2e-loadgen: line too long, dropped\n");
			len = 0;
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: e2e-loadgen [--device PATH | --port NAME | --stdio] [-e COMMAND]...\n"
	           "Load controller of the vscale e2e test guest; commands on the virtio port\n"
	           "(default " PORT_NAME "), one per line. -e runs a command at start.\n");
}

int main(int argc, char **argv)
{
	const char *device = NULL, *port = PORT_NAME;
	bool stdio = false;
	char path[300], reply[512];
	pthread_t mem_tid;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	if (pthread_create(&mem_tid, NULL, mem_main, NULL) != 0) {
		fprintf(stderr, "e2e-loadgen: cannot start the memory thread\n");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
			device = argv[++i];
		} else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			port = argv[++i];
		} else if (strcmp(argv[i], "--stdio") == 0) {
			stdio = true;
		} else if (strcmp(argv[i], "-e") == 0 && i + 1 < argc) {
			char cmd[256];

			snprintf(cmd, sizeof(cmd), "%s", argv[++i]);
			run_command(cmd, reply, sizeof(reply));
			fprintf(stderr, "e2e-loadgen: %s: %s\n", argv[i], reply);
		} else {
			usage(strcmp(argv[i], "--help") == 0 ? stdout : stderr);
			return strcmp(argv[i], "--help") == 0 ? 0 : 2;
		}
	}
	if (stdio)
		return serve(STDIN_FILENO, STDOUT_FILENO, false);
	while (!device) {
		if (find_port(port, path, sizeof(path)) == 0) {
			device = path;
			break;
		}
		usleep(200000);
	}
	fd = open(device, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		fprintf(stderr, "e2e-loadgen: %s: %s\n", device, strerror(errno));
		return 1;
	}
	fprintf(stderr, "e2e-loadgen: serving %s\n", device);
	return serve(fd, fd, true);
}
