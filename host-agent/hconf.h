/* vscale-hostd configuration: /etc/vscale/vscale.conf plus conf.d/NAME.conf beside it, INI via
 * inih.
 *
 *   [host]          reserve-cpus, reserve-memory, cpu-overcommit, uri, interval, ...
 *   [policy NAME]   bounds, thresholds, windows, steps, cooldowns (see policy.h)
 *   [vm PATTERN]    binds VMs (name glob or UUID) to a policy, with per-VM overrides
 *
 * Parsed into a fresh struct and validated whole; the caller swaps it in. Every error is
 * "file:line: message". Defaults live in one table (hkeys.c); policy "default" always exists.
 *
 * Every [policy NAME] starts from the built-in defaults (not from [policy default], which only
 * replaces the built-in default policy); a name is defined once across all files. [host] may
 * appear in several files: later values win. A PATTERN of 36 hex digits and dashes is a UUID,
 * matched case-insensitively against the domain's UUID; anything else is an fnmatch() glob on
 * the domain name ("[...]" cannot be written inside a section header). */
#ifndef VSCALE_HCONF_H
#define VSCALE_HCONF_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"
#include "policy.h"

#define HCONF_DEFAULT_PATH "/etc/vscale/vscale.conf"

/* [host] migration: off; request = publish migration requests for a balancer; auto = publish
 * and move the VM to the peer with the most room (migrate.c) */
enum migration_mode { MIGRATION_OFF, MIGRATION_REQUEST, MIGRATION_AUTO };
#define HCONF_PEERS_MAX 8   /* = VIRT_PEERS_MAX */
#define HCONF_URI_LEN   256 /* = VIRT_URI_LEN */

struct host_conf {
	char uri[256];            /* libvirt URI: qemu:///system */
	uint32_t reserve_cpus;    /* host CPUs never granted to VMs */
	uint64_t reserve_mem_kib; /* host memory never granted to VMs */
	double cpu_overcommit;    /* vCPUs granted per host CPU */
	uint64_t mem_total_kib;   /* 0 = read the host's memory; else use this capacity */
	uint64_t interval_ms;     /* expected guest sample interval; also the decision tick */
	uint64_t op_timeout_ms;   /* an operation not confirmed by then is recorded as failed */
	bool persistent;          /* also write vCPU/memory changes to the persistent definition */
	bool vcpu_unplug; /* unplug offlined vCPUs; QEMU 7.2 under TCG cannot (PLATFORM.md) */
	char state_dir[PATH_MAX];    /* per-VM cooldowns and last actions: /var/lib/vscale */
	char decision_log[PATH_MAX]; /* JSON lines; "" = state_dir/decisions.jsonl */
	char control_dir[PATH_MAX];  /* nanomsg sockets for vscalectl; "" = none */
	char metrics[64];            /* "ADDRESS:PORT" of /metrics, or "off" */
	enum log_level log_level;
	/* migration (migrate.c) */
	enum migration_mode migration;
	char peers[HCONF_PEERS_MAX][HCONF_URI_LEN]; /* libvirt URIs VMs may move to */
	uint32_t npeers;
	bool migration_rebalance;       /* also move VMs off a host above the watermark */
	uint32_t migration_max;         /* migrations in flight at once */
	uint64_t migration_cooldown_ms; /* per VM, after a migration or a failed attempt */
	uint64_t migration_timeout_ms;  /* a migration running longer is aborted */
	double high_watermark_pct;      /* host use (vCPUs or memory) at which it counts as full */
	uint64_t high_watermark_for_ms; /* how long above it before rebalancing */
};

/* One [vm PATTERN] section. Overrides are kept as text and applied over the named policy by
 * hconf_policy_for(); they were all checked at load time. */
struct vm_override {
	char key[48];
	char value[128];
};

struct vm_rule {
	char pattern[256];            /* fnmatch glob on the name, or a UUID */
	char policy[POLICY_NAME_LEN]; /* "" = default */
	bool enabled;                 /* enabled = no: never scaled */
	char channel[PATH_MAX];       /* "" = from the domain XML; else this unix socket */
	struct vm_override *ov;
	size_t nov;
	char file[PATH_MAX]; /* where the section is, for messages */
	int line;
};

struct hconf {
	char path[PATH_MAX]; /* main file */
	struct host_conf host;
	struct policy *policies; /* [0] is "default" */
	size_t npolicies;
	struct vm_rule *rules; /* in file order: main file, then conf.d/ sorted; first match wins */
	size_t nrules;
};

/* Loads path and <dir of path>/conf.d/NAME.conf (sorted by name). A missing main file is an error
 * only when must_exist (an empty config is valid). Returns 0 and a new config in *ret (free with
 * hconf_free()), or -EINVAL / -errno with "file:line: message" in err. */
int hconf_load(const char *path, bool must_exist, struct hconf **ret, char *err, size_t errlen);
void hconf_free(struct hconf *c);

/* The first [vm] rule matching the name or UUID, or NULL. */
const struct vm_rule *hconf_match(const struct hconf *c, const char *name, const char *uuid);
/* The effective policy for a VM: its rule's policy (or default) with the rule's overrides. */
void hconf_policy_for(const struct hconf *c, const char *name, const char *uuid,
                      struct policy *ret);

/* Sets one [policy] key (as written in a file) on *p: a runtime override. 0, or -EINVAL with
 * "key: what is wrong" in err; the caller validates the whole policy after. */
int hconf_policy_set(struct policy *p, const char *key, const char *value, char *err,
                     size_t errlen);

/* Prints the effective config (every key, defaults included) in config-file syntax. */
void hconf_print(const struct hconf *c, FILE *out);

#endif
