/* Metering for usage-based billing: per VM (by UUID) the vCPU-seconds and GiB-seconds allocated,
 * kept across hostd restarts and VM restarts in one file, <state-dir>/metering, rewritten
 * atomically (meter_save) every minute and at exit, so a crash loses at most that minute.
 *
 * Entries are never dropped: a stopped VM keeps its totals for when it comes back and for the
 * billing system reading them. The table owns its entries; pointers from meter_get() stay valid
 * until meter_free(). */
#ifndef VSCALE_METER_H
#define VSCALE_METER_H

#include <stddef.h>
#include <stdint.h>

struct meter_entry {
	char uuid[40];
	char name[256]; /* the VM's name when last seen, for humans */
	double vcpu_seconds;
	double gib_seconds;
};

struct meter;

/* Loads <dir>/metering when present. NULL on out of memory; a file that does not parse is
 * reported in err (file:line) and the table starts with what parsed before the bad line. */
struct meter *meter_new(const char *dir, char *err, size_t errlen);
void meter_free(struct meter *m);

/* The entry for uuid, made when new (name updated). NULL on out of memory. */
struct meter_entry *meter_get(struct meter *m, const char *uuid, const char *name);

/* Adds dt_ms of an allocation of vcpus and mem_kib to e. */
void meter_add(struct meter_entry *e, uint32_t vcpus, uint64_t mem_kib, uint64_t dt_ms);

/* Writes the table. 0 or -errno. */
int meter_save(struct meter *m);

#endif
