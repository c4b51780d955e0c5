/* Editing a libxml2 tree the way a person edits the file: new elements indented like their
 * siblings, blanks kept, and the tree written back in libvirt's own format (single-quoted
 * attributes, libvirt's escaping of text and attributes, <metadata> children as libxml2 dumps
 * them), so that a document libvirt wrote comes back byte-identical outside the edits.
 * libxml2 only. Element lookups match elements without a namespace; name NULL matches any.
 * Node arguments may be NULL (a failed allocation upstream): the call then does nothing. */
#ifndef VSCALE_XMLEDIT_H
#define VSCALE_XMLEDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>

struct xmledit {
	xmlDocPtr doc;
	bool pretty;   /* the document is indented: what is inserted is indented too */
	char step[16]; /* its indentation step ("  " by default) */
	bool oom;      /* an allocation failed: the tree misses an edit */
};

/* Reads xml with its blanks into x. 0; -EINVAL with "line N: libxml2's message" in err;
 * -ENOMEM. Free with xmledit_fini() (also after a failure). */
int xmledit_parse(struct xmledit *x, const char *xml, char *err, size_t errlen);
void xmledit_fini(struct xmledit *x);

xmlNodePtr xmledit_child(xmlNodePtr parent, const char *name);
xmlNodePtr xmledit_next(xmlNodePtr n, const char *name); /* the next sibling named so */
/* Copies an attribute's value into buf; false when absent. */
bool xmledit_attr(xmlNodePtr n, const char *name, char *buf, size_t cap);
bool xmledit_attr_is(xmlNodePtr n, const char *name, const char *val);
/* Copies n's text without surrounding blanks into buf. */
void xmledit_text(xmlNodePtr n, char *buf, size_t cap);

/* A new element not yet in the tree; NULL (and x->oom) on failure. */
xmlNodePtr xmledit_new(struct xmledit *x, const char *name);
/* Inserts n after or before ref, on a line of its own at ref's indentation. */
void xmledit_put_after(struct xmledit *x, xmlNodePtr ref, xmlNodePtr n);
void xmledit_put_before(struct xmledit *x, xmlNodePtr ref, xmlNodePtr n);
/* Makes n parent's last element child, one step deeper than parent when it had none (a
 * self-closing <cpu/> becomes <cpu>, n, </cpu> on three lines). Returns n. */
xmlNodePtr xmledit_append(struct xmledit *x, xmlNodePtr parent, xmlNodePtr n);
xmlNodePtr xmledit_add_child(struct xmledit *x, xmlNodePtr parent, const char *name);
void xmledit_clear(xmlNodePtr n); /* removes all of n's children */
void xmledit_set_attr(struct xmledit *x, xmlNodePtr n, const char *name, const char *val);
void xmledit_set_attr_u64(struct xmledit *x, xmlNodePtr n, const char *name, uint64_t v);
void xmledit_set_text(struct xmledit *x, xmlNodePtr n, const char *text);
void xmledit_set_text_u64(struct xmledit *x, xmlNodePtr n, uint64_t v);

/* Writes the tree in libvirt's format into a new NUL-terminated string (free()); an XML
 * declaration and the final newline are kept as in orig, the text x was parsed from.
 * 0 or -ENOMEM. */
int xmledit_write(const struct xmledit *x, const char *orig, char **ret);

#endif
