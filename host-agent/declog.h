/* The decision log: one JSON object per line for every action and every change of hold reason,
 * appended to a file (default /var/lib/vscale/decisions.jsonl) for audit and tools. */
#ifndef VSCALE_DECLOG_H
#define VSCALE_DECLOG_H

#include <stdbool.h>
#include <stdint.h>

#include <stddef.h>

#include "ctlmsg.h"
#include "policy.h"

struct declog;

/* Opens path for appending (created 0640). NULL with errno set. Free with declog_close(). */
struct declog *declog_open(const char *path);
void declog_close(struct declog *dl);

/* outcome: "started", "done", "failed", "refused", "timeout", "dry-run", "hold". */
void declog_write(struct declog *dl, const char *vm, const char *uuid, const struct decision *d,
                  const char *outcome, const char *detail);

/* One line of the log into *ret (strings unescaped as written). 0, or -EINVAL when the line is
 * not a whole record (a torn last line). */
int declog_parse_line(const char *line, struct ctl_record *ret);

/* Reads back the newest records of the VM with this uuid ("" = every VM) from the log at path,
 * scanning at most the last DECLOG_SCAN_MAX bytes: up to max of them into ret, oldest first, the
 * count in *ret_n. Lines that do not parse (a torn last line) are skipped. 0 or -errno. */
#define DECLOG_SCAN_MAX (8u << 20)
int declog_read(const char *path, const char *uuid, struct ctl_record *ret, size_t max,
                size_t *ret_n);

#endif
