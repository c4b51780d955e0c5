/* The key table of vscale-hostd's config: every key of [host], [policy NAME] and [vm PATTERN]
 * with its typed parser, the field it fills, its default text and its help line. Parsing a value,
 * applying the defaults and printing a section all walk this one table, so what is printed reads
 * back to the same values. No files, no sections, no allocation: hconf.c reads the files.
 *
 * Every function works on caller storage (a struct host_conf, policy or vm_rule, chosen by the
 * section); nothing here is freed. */
#ifndef VSCALE_HKEYS_H
#define VSCALE_HKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "policy.h"

/* Which struct a key's field is in: struct host_conf, struct policy or struct vm_rule. */
enum hkeys_section { HKEYS_HOST, HKEYS_POLICY, HKEYS_VM };

struct hkey; /* one row of the table */

/* The key called name in sec, or NULL when sec has none. */
const struct hkey *hkeys_find(enum hkeys_section sec, const char *name);

/* Parses value with k's parser into k's field of base (the struct of k's section). 0, or -EINVAL
 * with "key: reason" in err and the field unchanged. */
int hkeys_set(const struct hkey *k, void *base, const char *value, char *err, size_t errlen);

/* Writes the default of every key of sec into base (the struct of that section). */
void hkeys_set_defaults(enum hkeys_section sec, void *base);

/* Zeroes *p and gives it every [policy] default and the given name. */
void hkeys_init_policy(struct policy *p, const char *name);

/* Prints "key = value" for every key of sec from base, each after a "# help" line when help. */
void hkeys_print_section(FILE *out, enum hkeys_section sec, const void *base, bool help);

/* Letters, digits, '-', '_' and '.', at least one: what a [policy NAME] may be called (length is
 * checked apart). */
bool hkeys_valid_policy_name(const char *s);

#endif
