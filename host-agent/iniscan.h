/* Where inih will see sections and keys in an INI file. inih hands its handler only (section,
 * key, value); this scan reads the file with inih's own line rules (ini.c r55, same line buffer,
 * so the same line numbers as conf_parse_file()) so that a caller learns each section's header
 * line, which of two same-named sections a key is in, and the sections that have no keys. */
#ifndef VSCALE_INISCAN_H
#define VSCALE_INISCAN_H

#include <stddef.h>

#include "conf.h"

struct iniscan_section {
	char *name; /* exactly as inih passes it: untrimmed, "" before the first header */
	int line;   /* 0 for the unnamed one */
};

struct iniscan_key {
	char *name;
	size_t section; /* index in sections */
	int line;
};

struct iniscan {
	struct iniscan_section *sections; /* [0] is the unnamed section before any header */
	size_t nsections;
	struct iniscan_key *keys; /* in file order */
	size_t nkeys;
	size_t next_key; /* iniscan_next_key() resumes here */
	/* the first line inih would misread (too long, section name cut, text after "]", an
	 * indented line continuing a value); the scan stops there. 0 = none. */
	int err_line;
	char err[CONF_ERR_LEN];
};

/* Scans path into *s (free with iniscan_fini(), also after an error). Returns 0, or -errno with
 * "path: reason" in err when the file cannot be read. Lines inih would misread are not errors
 * here: they are in s->err_line and s->err. */
int iniscan_init(struct iniscan *s, const char *path, char *err, size_t errlen);
void iniscan_fini(struct iniscan *s);

/* The key inih is handing over now: the next scanned one with this section and name, or NULL
 * (a key past s->err_line, or the file changed after the scan). Call once per handler call. */
const struct iniscan_key *iniscan_next_key(struct iniscan *s, const char *section, const char *key);

#endif
