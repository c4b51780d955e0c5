/* In-place edits of a libxml2 tree with its blanks, written back in libvirt's format (contract in
 * xmledit.h). Why a writer of our own: libxml2 always writes attributes in double quotes and
 * leaves ' and " raw in text, while libvirt writes single quotes and &apos; / &quot;, so
 * xmlDocDump would change every line of a libvirt domain and bury the edits in the diff. */
#include "xmledit.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

int xmledit_parse(struct xmledit *x, const char *xml, char *err, size_t errlen)
{
	const xmlError *e;
	size_t len = strlen(xml);
	xmlNodePtr root, first;
	char msg[256];

	memset(x, 0, sizeof(*x));
	if (len > INT_MAX) {
		snprintf(err, errlen, "the document is too large");
		return -EINVAL;
	}
	xmlResetLastError();
	x->doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL,
	                       XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!x->doc) {
		e = xmlGetLastError();
		if (e && e->code == XML_ERR_NO_MEMORY)
			return -ENOMEM;
		snprintf(msg, sizeof(msg), "%s", e && e->message ? e->message : "unknown error");
		msg[strcspn(msg, "\n")] = '\0';
		snprintf(err, errlen, "line %d: %s", e ? e->line : 0, msg);
		return -EINVAL;
	}
	/* indented when the root's first child starts a line; the step is that indentation */
	root = xmlDocGetRootElement(x->doc);
	first = xmledit_child(root, NULL);
	x->pretty = first && first->prev && first->prev->type == XML_TEXT_NODE &&
	            strchr((const char *)first->prev->content, '\n');
	snprintf(x->step, sizeof(x->step), "  ");
	if (x->pretty) {
		const char *s = strrchr((const char *)first->prev->content, '\n') + 1;
		size_t n = strspn(s, " \t");

		if (n > 0 && n < sizeof(x->step))
			snprintf(x->step, sizeof(x->step), "%.*s", (int)n, s);
	}
	return 0;
}

void xmledit_fini(struct xmledit *x)
{
	xmlFreeDoc(x->doc);
	x->doc = NULL;
}

static bool is_elem(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && !n->ns &&
	       (!name || xmlStrcmp(n->name, (const xmlChar *)name) == 0);
}

xmlNodePtr xmledit_child(xmlNodePtr parent, const char *name)
{
	for (xmlNodePtr n = parent ? parent->children : NULL; n; n = n->next)
		if (is_elem(n, name))
			return n;
	return NULL;
}

xmlNodePtr xmledit_next(xmlNodePtr n, const char *name)
{
	for (n = n ? n->next : NULL; n; n = n->next)
		if (is_elem(n, name))
			return n;
	return NULL;
}

bool xmledit_attr(xmlNodePtr n, const char *name, char *buf, size_t cap)
{
	xmlChar *v = n ? xmlGetNoNsProp(n, (const xmlChar *)name) : NULL;

	if (!v)
		return false;
	snprintf(buf, cap, "%s", (const char *)v);
	xmlFree(v);
	return true;
}

bool xmledit_attr_is(xmlNodePtr n, const char *name, const char *val)
{
	char buf[256];

	return xmledit_attr(n, name, buf, sizeof(buf)) && strcmp(buf, val) == 0;
}

void xmledit_text(xmlNodePtr n, char *buf, size_t cap)
{
	xmlChar *v = n ? xmlNodeGetContent(n) : NULL;
	const char *s = v ? (const char *)v : "";
	size_t len;

	s += strspn(s, " \t\r\n");
	len = strlen(s);
	while (len > 0 && strchr(" \t\r\n", s[len - 1]))
		len--;
	snprintf(buf, cap, "%.*s", (int)len, s);
	xmlFree(v);
}

/* ---- inserting ----------------------------------------------------------------------------- */

/* The blanks after the last newline of the text just before n: its indentation. */
static void indent_of(xmlNodePtr n, char *buf, size_t cap)
{
	const char *s = "", *nl;

	if (n->prev && n->prev->type == XML_TEXT_NODE && n->prev->content)
		s = (const char *)n->prev->content;
	nl = strrchr(s, '\n');
	s = nl ? nl + 1 : "";
	snprintf(buf, cap, "%.*s", (int)strspn(s, " \t"), s);
}

/* A newline and indent as a text node next to n (libxml2 merges adjacent text nodes). */
static void add_blank(struct xmledit *x, xmlNodePtr n, const char *indent, bool before)
{
	char buf[128];
	xmlNodePtr t;

	if (!x->pretty || !n)
		return;
	snprintf(buf, sizeof(buf), "\n%s", indent);
	t = xmlNewDocText(x->doc, (const xmlChar *)buf);
	if (!t)
		x->oom = true;
	else if (before)
		xmlAddPrevSibling(n, t);
	else
		xmlAddNextSibling(n, t);
}

xmlNodePtr xmledit_new(struct xmledit *x, const char *name)
{
	xmlNodePtr n = xmlNewDocNode(x->doc, NULL, (const xmlChar *)name, NULL);

	x->oom |= !n;
	return n;
}

void xmledit_put_after(struct xmledit *x, xmlNodePtr ref, xmlNodePtr n)
{
	char ind[96];

	if (!ref || !n)
		return;
	indent_of(ref, ind, sizeof(ind));
	xmlAddNextSibling(ref, n);
	add_blank(x, n, ind, true);
}

void xmledit_put_before(struct xmledit *x, xmlNodePtr ref, xmlNodePtr n)
{
	char ind[96];

	if (!ref || !n)
		return;
	indent_of(ref, ind, sizeof(ind));
	xmlAddPrevSibling(ref, n);
	add_blank(x, ref, ind, true);
}

static bool blank_only(xmlNodePtr parent)
{
	for (xmlNodePtr c = parent->children; c; c = c->next)
		if (c->type != XML_TEXT_NODE || !c->content ||
		    ((const char *)c->content)[strspn((const char *)c->content, " \t\r\n")])
			return false;
	return true;
}

xmlNodePtr xmledit_append(struct xmledit *x, xmlNodePtr parent, xmlNodePtr n)
{
	xmlNodePtr last = NULL;
	char ind[96], sub[128];

	if (!parent || !n) {
		xmlFreeNode(n);
		return NULL;
	}
	for (xmlNodePtr c = parent->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			last = c;
	if (last) {
		xmledit_put_after(x, last, n);
		return n;
	}
	if (blank_only(parent))
		xmledit_clear(parent);
	xmlAddChild(parent, n);
	indent_of(parent, ind, sizeof(ind));
	snprintf(sub, sizeof(sub), "%s%s", ind, x->step);
	add_blank(x, n, sub, true);
	add_blank(x, n, ind, false);
	return n;
}

xmlNodePtr xmledit_add_child(struct xmledit *x, xmlNodePtr parent, const char *name)
{
	return parent ? xmledit_append(x, parent, xmledit_new(x, name)) : NULL;
}

void xmledit_clear(xmlNodePtr n)
{
	while (n && n->children) {
		xmlNodePtr c = n->children;

		xmlUnlinkNode(c);
		xmlFreeNode(c);
	}
}

void xmledit_set_attr(struct xmledit *x, xmlNodePtr n, const char *name, const char *val)
{
	if (n && !xmlSetProp(n, (const xmlChar *)name, (const xmlChar *)val))
		x->oom = true;
}

void xmledit_set_attr_u64(struct xmledit *x, xmlNodePtr n, const char *name, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	xmledit_set_attr(x, n, name, buf);
}

void xmledit_set_text(struct xmledit *x, xmlNodePtr n, const char *text)
{
	xmlNodePtr t;

	if (!n)
		return;
	xmledit_clear(n);
	t = xmlNewDocText(x->doc, (const xmlChar *)text);
	if (!t)
		x->oom = true;
	else
		xmlAddChild(n, t);
}

void xmledit_set_text_u64(struct xmledit *x, xmlNodePtr n, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	xmledit_set_text(x, n, buf);
}

/* ---- writing back in libvirt's format -------------------------------------------------------- */

/* As libvirt's virBufferEscapeString, for text and attribute values alike: the five entities,
 * and control characters other than tab, newline and CR dropped. */
static void put_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '\'':
			fputs("&apos;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t' || *s == '\r')
				fputc(*s, f);
			break;
		}
	}
}

static void put_qname(FILE *f, xmlNsPtr ns, const xmlChar *name)
{
	if (ns && ns->prefix)
		fprintf(f, "%s:", (const char *)ns->prefix);
	fputs((const char *)name, f);
}

/* libxml2's own dump: how libvirt writes <metadata> children, and anything unusual */
static void put_raw(FILE *f, xmlDocPtr doc, xmlNodePtr n)
{
	xmlBufferPtr b = xmlBufferCreate();

	if (b && xmlNodeDump(b, doc, n, 0, 0) >= 0)
		fwrite(xmlBufferContent(b), 1, (size_t)xmlBufferLength(b), f);
	else
		fputc('\0', f); /* no room: the NUL check in xmledit_write() reports it */
	xmlBufferFree(b);
}

static void put_node(FILE *f, xmlDocPtr doc, xmlNodePtr n);

static void put_element(FILE *f, xmlDocPtr doc, xmlNodePtr n)
{
	bool raw = is_elem(n, "metadata") && n->parent == xmlDocGetRootElement(doc);

	fputc('<', f);
	put_qname(f, n->ns, n->name);
	for (xmlAttrPtr a = n->properties; a; a = a->next) {
		xmlChar *v = xmlNodeGetContent((xmlNodePtr)a);

		fputc(' ', f);
		put_qname(f, a->ns, a->name);
		fputs("='", f);
		put_escaped(f, v ? (const char *)v : "");
		fputc('\'', f);
		xmlFree(v);
	}
	/* libvirt writes namespace declarations after the attributes */
	for (xmlNsPtr ns = n->nsDef; ns; ns = ns->next) {
		fprintf(f, " xmlns%s%s='", ns->prefix ? ":" : "",
		        ns->prefix ? (const char *)ns->prefix : "");
		put_escaped(f, ns->href ? (const char *)ns->href : "");
		fputc('\'', f);
	}
	if (!n->children) {
		fputs("/>", f);
		return;
	}
	fputc('>', f);
	for (xmlNodePtr c = n->children; c; c = c->next) {
		if (raw)
			put_raw(f, doc, c);
		else
			put_node(f, doc, c);
	}
	fputs("</", f);
	put_qname(f, n->ns, n->name);
	fputc('>', f);
}

static void put_node(FILE *f, xmlDocPtr doc, xmlNodePtr n)
{
	const char *content = n->content ? (const char *)n->content : "";

	switch (n->type) {
	case XML_ELEMENT_NODE:
		put_element(f, doc, n);
		break;
	case XML_TEXT_NODE:
		put_escaped(f, content);
		break;
	case XML_CDATA_SECTION_NODE:
		fprintf(f, "<![CDATA[%s]]>", content);
		break;
	case XML_COMMENT_NODE:
		fprintf(f, "<!--%s-->", content);
		break;
	default: /* processing instructions, entity references, a DTD */
		put_raw(f, doc, n);
		break;
	}
}

int xmledit_write(const struct xmledit *x, const char *orig, char **ret)
{
	size_t len = strlen(orig), size = 0;
	const char *decl_end = strncmp(orig, "<?xml", 5) == 0 ? strstr(orig, "?>") : NULL;
	char *out = NULL;
	FILE *f = open_memstream(&out, &size);
	bool bad;

	if (!f)
		return -ENOMEM;
	/* libxml2 keeps no node for the declaration nor the blanks between top-level nodes */
	if (decl_end)
		fprintf(f, "%.*s\n", (int)(decl_end + 2 - orig), orig);
	for (xmlNodePtr n = x->doc->children; n; n = n->next) {
		put_node(f, x->doc, n);
		if (n->next || (len > 0 && orig[len - 1] == '\n'))
			fputc('\n', f);
	}
	bad = ferror(f);
	if (fclose(f) != 0 || bad || !out || strlen(out) != size) {
		free(out);
		return -ENOMEM;
	}
	*ret = out;
	return 0;
}
