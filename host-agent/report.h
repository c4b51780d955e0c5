/* What hostd tells operators about a VM: fills the control protocol's struct ctl_vm from a
 * struct vm, for vscalectl (list, show) and for /metrics alike. Pure: no I/O. */
#ifndef VSCALE_REPORT_H
#define VSCALE_REPORT_H

#include <stdint.h>

#include "ctlmsg.h"
#include "vm.h"

void report_vm(const struct vm *vm, uint64_t now_ms, struct ctl_vm *ret);

/* "virtio-mem", "dimm", "balloon", "fixed" */
const char *report_mech_name(enum virt_mem_mech m);

#endif
