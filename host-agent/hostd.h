/* vscale-hostd's state, shared by main.c (the loop and the wiring), domains.c (libvirt and the
 * VM table), stream.c (guest frames and decisions), hostview.c (the host's figures) and ctlsrv.c
 * (the answers to vscalectl, the events and /metrics). One instance, owned by main(); everything
 * on it runs on the libev loop thread. */
#ifndef VSCALE_HOSTD_H
#define VSCALE_HOSTD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "actuate.h"
#include "control.h"
#include "declog.h"
#include "guestlink.h"
#include "hconf.h"
#include "meter.h"
#include "metrics.h"
#include "migrate.h"
#include "policy.h"
#include "stats.h"
#include "virt.h"
#include "vm.h"

struct totals {
	uint64_t vcpus, mem_kib;                     /* what libvirt says the domains have */
	uint64_t vcpus_in_flight, mem_in_flight_kib; /* granted, not in libvirt's figures yet */
};

struct hostd {
	struct ev_loop *loop;
	const char *conf_path;
	bool conf_explicit;
	bool dry_run;
	struct hconf *conf;
	struct virt *virt;
	bool virt_up;
	struct actuate act;
	struct migrate *mig; /* the migration state machine; main owns its storage */
	struct declog *dlog;
	char dlog_path[PATH_MAX + 32];
	struct vm **vms; /* the VM table (domains.c) */
	size_t nvms, capvms;
	struct guestlink_ops link_ops; /* stream.c's: each VM's guestlink points here */
	struct totals alloc; /* every active domain: each housekeeping tick and after an action */
	struct virt_node node;
	uint64_t node_ms;
	ev_async wake;
	ev_timer housekeeping, reconnect, watchdog;
	uint32_t reconnect_ms;        /* the next retry's delay: 250 ms doubling to 2 s */
	struct log_ratelimit virt_rl; /* "cannot connect" warnings */
	ev_signal sigint, sigterm, sighup, sigusr1;
	uint64_t rejected; /* guest frames refused, all VMs (each VM rate-limits its warnings) */
	/* since the last stats line: read to decision (µs), and the sample's age then (ms) */
	struct stats_hist decide_us, age_ms;

	uint64_t start_ms;
	uint64_t decisions[METRICS_ACTIONS][METRICS_REASONS]; /* evaluated, by action and reason */
	struct control *ctl;                                  /* NULL: control-dir is empty */
	struct metrics *metrics;                              /* NULL: metrics = off */
	struct meter *meter; /* NULL only when out of memory at start */
	uint64_t meter_saved_ms;
};

/* main.c */
/* Re-reads the config; 0, or -EINVAL with the message in err (the running config stays). */
int hostd_reload(struct hostd *h, char *err, size_t errlen);

/* ctlsrv.c */
extern const struct control_ops ctlsrv_control_ops;
extern const struct metrics_ops ctlsrv_metrics_ops;
/* actuate's on_record: publishes each decision-log line as a "decision" event */
void ctlsrv_on_record(void *user, const struct vm *vm, const struct decision *d,
                      const char *outcome, const char *detail);
/* Publishes an event of kind about vm (may be NULL) with a printf-style text. */
void ctlsrv_publish(struct hostd *h, const char *kind, const struct vm *vm, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Applies vm->overrides over vm->policy (after the config's policy was set). */
void ctlsrv_apply_overrides(struct vm *vm);

#endif
