/* Values in libvirt's domain XML as libvirt reads and writes them: sizes with a unit (the units
 * of virScaleInteger, rounded up to KiB), vCPU lists ("0-3,6,^2"), and sizes as people read
 * them in messages. Pure string work: no libxml2, no I/O, no allocation; every result goes to
 * caller storage. */
#ifndef VSCALE_DOMVALUE_H
#define VSCALE_DOMVALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DOMVALUE_SIZE_LIMIT_KIB                                                                    \
	((uint64_t)1 << 50) /* an exbibyte: keeps every sum below overflow */

/* A size for people: whole GiB or MiB when it is one, else KiB ("4 GiB", "2097424 KiB"). */
struct domvalue_human {
	char s[32];
};
struct domvalue_human domvalue_human(uint64_t kib);

/* A plain decimal number (digits only, nothing after them); false when s is not one. */
bool domvalue_parse_u64(const char *s, uint64_t *ret);

/* Bytes per unit as libvirt's virScaleInteger reads them (case-insensitive: b, bytes, KB = 1000,
 * k = KiB = 1024, ... up to E); KiB when u is NULL or empty; 0 when unknown. */
uint64_t domvalue_unit_bytes(const char *u);

/* val in unit (NULL: KiB) -> KiB in *ret_kib, rounded up as libvirt does, at most
 * DOMVALUE_SIZE_LIMIT_KIB. -EINVAL with "what: reason" in err when the unit is unknown, val is
 * not a number or the size is too large. */
int domvalue_size_kib(const char *val, const char *unit, const char *what, uint64_t *ret_kib,
                      char *err, size_t errlen);

/* Adds a libvirt cpu list to set[0..limit) (a '^' entry removes). 0, or -EINVAL when it is
 * malformed or names a vCPU at or above limit (set may then be partly written). */
int domvalue_parse_cpus(const char *s, bool *set, unsigned limit);
/* Writes set[0..n) as a cpu list of ranges ("0-3,6") into buf, truncated to cap. */
void domvalue_format_cpus(const bool *set, unsigned n, char *buf, size_t cap);

#endif
