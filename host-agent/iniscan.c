/* A pre-scan of an INI file that mirrors inih's line rules, so config loaders know the line of
 * every section header and key (conf_parse_file() reports lines only for errors) and catch the
 * lines inih would silently cut short. */
#include "iniscan.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* inih's section buffer (ini.c MAX_SECTION): longer names are cut without a word */
#define INIH_MAX_SECTION 50

static char *lskip(const char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	return (char *)s;
}

static char *rstrip(char *s)
{
	char *p = s + strlen(s);

	while (p > s && isspace((unsigned char)p[-1]))
		*--p = '\0';
	return s;
}

/* First of chars in s, or the start of an inline comment (";" after whitespace), or the end. */
static char *find_chars_or_comment(const char *s, const char *chars)
{
	bool was_space = false;

	while (*s && (!chars || !strchr(chars, *s)) &&
	       !(was_space && strchr(INI_INLINE_COMMENT_PREFIXES, *s))) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return (char *)s;
}

static void misread(struct iniscan *s, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void misread(struct iniscan *s, int line, const char *fmt, ...)
{
	va_list ap;

	s->err_line = line;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
}

static int push_section(struct iniscan *s, const char *name, int line)
{
	struct iniscan_section *n = realloc(s->sections, (s->nsections + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	s->sections = n;
	n[s->nsections].name = strdup(name);
	if (!n[s->nsections].name)
		return -ENOMEM;
	n[s->nsections++].line = line;
	return 0;
}

static int push_key(struct iniscan *s, const char *name, int line)
{
	struct iniscan_key *n = realloc(s->keys, (s->nkeys + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	s->keys = n;
	n[s->nkeys].name = strdup(name);
	if (!n[s->nkeys].name)
		return -ENOMEM;
	n[s->nkeys].section = s->nsections - 1;
	n[s->nkeys++].line = line;
	return 0;
}

/* start points after "[", end at the "]" */
static int scan_header(struct iniscan *s, char *start, char *end, int line)
{
	const char *rest = lskip(end + 1);

	if (*rest && !strchr(INI_START_COMMENT_PREFIXES, *rest)) {
		misread(s, line, "text after ']' in a section header");
		return 0;
	}
	*end = '\0';
	if (strlen(start) >= INIH_MAX_SECTION) {
		misread(s, line, "section name longer than %d characters", INIH_MAX_SECTION - 1);
		return 0;
	}
	return push_section(s, start, line);
}

/* true when buf holds only the start of a line longer than inih takes */
static bool too_long(const char *buf, FILE *f)
{
	int ch;

	if (strlen(buf) < INI_MAX_LINE - 1 || buf[INI_MAX_LINE - 2] == '\n')
		return false;
	ch = getc(f);
	if (ch == EOF)
		return false;
	ungetc(ch, f);
	return true;
}

static int scan_stream(struct iniscan *s, FILE *f)
{
	char buf[INI_MAX_LINE], *start, *end;
	bool continues = false; /* an indented line continues the previous key's value */
	int line = 0, r = 0;

	while (r == 0 && !s->err_line && fgets(buf, sizeof(buf), f)) {
		line++;
		if (too_long(buf, f)) {
			misread(s, line, "line longer than %d characters", INI_MAX_LINE - 2);
			break;
		}
		start = buf;
		if (line == 1 && strncmp(start, "\xEF\xBB\xBF", 3) == 0)
			start += 3;
		start = lskip(rstrip(start));
		if (!*start || strchr(INI_START_COMMENT_PREFIXES, *start))
			continue;
		if (continues && start > buf) { /* conf.c would call it the key given twice */
			misread(s, line, "an indented line would continue the value above");
			break;
		}
		if (*start == '[') {
			end = find_chars_or_comment(start + 1, "]");
			if (*end == ']') { /* else inih reports a syntax error */
				r = scan_header(s, start + 1, end, line);
				continues = false;
			}
			continue;
		}
		end = find_chars_or_comment(start, "=:");
		if (*end != '=' && *end != ':')
			continue; /* inih reports a syntax error */
		*end = '\0';
		r = push_key(s, rstrip(start), line);
		continues = *start != '\0';
	}
	return r;
}

int iniscan_init(struct iniscan *s, const char *path, char *err, size_t errlen)
{
	FILE *f;
	int r;

	memset(s, 0, sizeof(*s));
	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	r = push_section(s, "", 0);
	if (r == 0)
		r = scan_stream(s, f);
	fclose(f);
	if (r < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
	return r;
}

void iniscan_fini(struct iniscan *s)
{
	for (size_t i = 0; i < s->nsections; i++)
		free(s->sections[i].name);
	for (size_t i = 0; i < s->nkeys; i++)
		free(s->keys[i].name);
	free(s->sections);
	free(s->keys);
	memset(s, 0, sizeof(*s));
}

const struct iniscan_key *iniscan_next_key(struct iniscan *s, const char *section, const char *key)
{
	for (size_t i = s->next_key; i < s->nkeys; i++) {
		const struct iniscan_key *k = &s->keys[i];

		if (strcmp(k->name, key) == 0 &&
		    strcmp(s->sections[k->section].name, section) == 0) {
			s->next_key = i + 1;
			return k;
		}
	}
	return NULL;
}
