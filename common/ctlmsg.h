/* The control protocol between vscalectl and vscale-hostd, as plain C: requests, replies and the
 * events hostd publishes (proto/vscale.proto CtlRequest, CtlReply, Event), and their encoding.
 * wire.c and ctlmsg.c are the only users of the generated code.
 *
 * Encoders return a new buffer in *ret_buf (free()) and its length; decoders fill caller storage
 * and, for a reply, heap arrays that ctl_reply_fini() frees. All return 0 or -errno (-EBADMSG for
 * bytes that do not decode). Strings are truncated to the fields' sizes. */
#ifndef VSCALE_CTLMSG_H
#define VSCALE_CTLMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_NAME_LEN 256
#define CTL_TEXT_LEN 256
#define CTL_SET_MAX  16

enum ctl_op {
	CTL_STATUS = 1,
	CTL_LIST,
	CTL_SHOW,
	CTL_HISTORY,
	CTL_PAUSE,
	CTL_RESUME,
	CTL_SET,
	CTL_RELOAD,
	CTL_ENABLE,
};

struct ctl_request {
	enum ctl_op op;
	char vm[CTL_NAME_LEN]; /* name or UUID */
	char set[CTL_SET_MAX][CTL_TEXT_LEN];
	size_t nset;
	uint32_t count;
	uint32_t max_vcpus;
	uint64_t max_mem_kib;
	bool dry_run;
};

struct ctl_host {
	char version[32];
	uint64_t uptime_ms;
	char uri[CTL_NAME_LEN];
	bool connected, dry_run;
	char config[CTL_NAME_LEN];
	uint32_t vms, vms_streaming;
	uint32_t cpus;
	uint64_t mem_total_kib;
	uint64_t vcpus_allocated, mem_allocated_kib;
	int64_t vcpus_free, mem_free_kib;
	uint64_t rejected_frames;
	char decision_log[CTL_NAME_LEN];
};

struct ctl_vm {
	char name[CTL_NAME_LEN];
	char uuid[40];
	char policy[64];
	char state[16];
	bool paused, enabled, streaming;
	uint32_t vcpus, vcpus_plugged, vcpus_min, vcpus_max;
	uint64_t mem_kib, mem_min_kib, mem_max_kib;
	char mem_mechanism[16];
	bool has_sample; /* the guest figures below are set */
	uint64_t sample_age_ms;
	float cpu_busy_pct, cpu_psi_some, mem_psi_some;
	uint32_t cpus_online;
	uint64_t guest_mem_total_kib, guest_mem_available_kib;
	bool saturated;
	char last_action[CTL_TEXT_LEN];
	char last_decision[CTL_TEXT_LEN];
	char op[32];
	uint64_t samples, rejected, ops_ok, ops_failed, ops_refused, ops_timeout;
	double vcpu_seconds, gib_seconds;
	char overrides[CTL_TEXT_LEN * 2]; /* "key=value key=value" */
	char channel[CTL_NAME_LEN];
};

struct ctl_record {
	uint64_t time_ms; /* wall clock */
	char vm[CTL_NAME_LEN];
	char uuid[40];
	char action[16], reason[16], outcome[16];
	uint32_t vcpus_from, vcpus_to;
	uint64_t mem_from_kib, mem_to_kib;
	char text[192];
	char detail[CTL_TEXT_LEN];
};

struct ctl_reply {
	bool ok;
	char error[512];
	char message[512];
	bool has_host;
	struct ctl_host host;
	struct ctl_vm *vms; /* heap, nvms */
	size_t nvms;
	struct ctl_record *records; /* heap, nrecords */
	size_t nrecords;
	char *old_xml, *new_xml, *changes; /* heap or NULL */
};

struct ctl_event {
	char kind[24]; /* decision, vm-added, vm-removed, guest-up, guest-down, paused, resumed,
	                  set, reload, migration-request */
	uint64_t time_ms;
	char vm[CTL_NAME_LEN];
	char uuid[40];
	bool has_record;
	struct ctl_record record;
	char text[CTL_TEXT_LEN];
	uint32_t need_vcpus;
	uint64_t need_mem_kib;
	char peer[CTL_NAME_LEN];
};

const char *ctl_op_name(enum ctl_op op); /* "status", ... */

int ctl_encode_request(const struct ctl_request *r, uint8_t **ret_buf, size_t *ret_len);
int ctl_decode_request(const uint8_t *buf, size_t len, struct ctl_request *ret);

int ctl_encode_reply(const struct ctl_reply *r, uint8_t **ret_buf, size_t *ret_len);
/* *ret is zeroed first; on success free its arrays with ctl_reply_fini(). */
int ctl_decode_reply(const uint8_t *buf, size_t len, struct ctl_reply *ret);
void ctl_reply_fini(struct ctl_reply *r);

int ctl_encode_event(const struct ctl_event *e, uint8_t **ret_buf, size_t *ret_len);
int ctl_decode_event(const uint8_t *buf, size_t len, struct ctl_event *ret);

#endif
