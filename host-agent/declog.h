/* The decision log: one JSON object per line for every action and every change of hold reason,
 * appended to a file (default /var/lib/vscale/decisions.jsonl) for audit and tools. */
#ifndef VSCALE_DECLOG_H
#define VSCALE_DECLOG_H

#include <stdbool.h>
#include <stdint.h>

#include "policy.h"

struct declog;

/* Opens path for appending (created 0640). NULL with errno set. Free with declog_close(). */
struct declog *declog_open(const char *path);
void declog_close(struct declog *dl);

/* outcome: "started", "done", "failed", "refused", "timeout", "dry-run", "hold". */
void declog_write(struct declog *dl, const char *vm, const char *uuid, const struct decision *d,
                  const char *outcome, const char *detail);

#endif
