/* Values in libvirt's domain XML (contract in domvalue.h): sizes and their units read the way
 * libvirt's virScaleInteger reads them, so a size means here what it means to libvirt, and
 * vCPU lists in libvirt's range syntax. */
#include "domvalue.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GIB_KIB ((uint64_t)1024 * 1024)

struct domvalue_human domvalue_human(uint64_t kib)
{
	struct domvalue_human h;

	if (kib > 0 && kib % GIB_KIB == 0)
		snprintf(h.s, sizeof(h.s), "%" PRIu64 " GiB", kib / GIB_KIB);
	else if (kib > 0 && kib % 1024 == 0)
		snprintf(h.s, sizeof(h.s), "%" PRIu64 " MiB", kib / 1024);
	else
		snprintf(h.s, sizeof(h.s), "%" PRIu64 " KiB", kib);
	return h;
}

bool domvalue_parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*ret = v;
	return true;
}

uint64_t domvalue_unit_bytes(const char *u)
{
	static const char scales[] = "kmgtpe";
	const char *p;
	uint64_t base, v = 1;

	if (!u || !*u)
		return 1024;
	if (!strcasecmp(u, "b") || !strcasecmp(u, "bytes"))
		return 1;
	p = strchr(scales, u[0] | 0x20);
	if (!p)
		return 0;
	if (!u[1] || !strcasecmp(u + 1, "ib"))
		base = 1024;
	else if (!strcasecmp(u + 1, "b"))
		base = 1000;
	else
		return 0;
	for (long i = 0; i <= p - scales; i++)
		v *= base;
	return v;
}

__attribute__((format(printf, 3, 4))) static int invalid(char *err, size_t errlen, const char *fmt,
                                                         ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int domvalue_size_kib(const char *val, const char *unit, const char *what, uint64_t *ret_kib,
                      char *err, size_t errlen)
{
	uint64_t v, scale = domvalue_unit_bytes(unit);

	if (!scale)
		return invalid(err, errlen, "%s: unknown unit '%s'", what, unit);
	if (!domvalue_parse_u64(val, &v))
		return invalid(err, errlen, "%s: '%s' is not a size", what, val);
	if (v > DOMVALUE_SIZE_LIMIT_KIB * 1024 / scale)
		return invalid(err, errlen, "%s: %s %s is too large", what, val,
		               unit ? unit : "KiB");
	*ret_kib = (v * scale + 1023) / 1024;
	return 0;
}

int domvalue_parse_cpus(const char *s, bool *set, unsigned limit)
{
	while (*s) {
		bool neg = *s == '^';
		unsigned long a, b;
		char *end;

		s += neg;
		if (*s < '0' || *s > '9')
			return -EINVAL;
		a = b = strtoul(s, &end, 10);
		if (*end == '-' && !neg) {
			if (end[1] < '0' || end[1] > '9')
				return -EINVAL;
			b = strtoul(end + 1, &end, 10);
		}
		if (a > b || b >= limit || (*end && *end != ','))
			return -EINVAL;
		for (unsigned long i = a; i <= b; i++)
			set[i] = !neg;
		s = *end ? end + 1 : end;
	}
	return 0;
}

void domvalue_format_cpus(const bool *set, unsigned n, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < n; i++) {
		unsigned j = i;

		if (!set[i])
			continue;
		while (j + 1 < n && set[j + 1])
			j++;
		if (j == i)
			len += snprintf(buf + len, len < cap ? cap - len : 0, "%s%u",
			                len ? "," : "", i);
		else
			len += snprintf(buf + len, len < cap ? cap - len : 0, "%s%u-%u",
			                len ? "," : "", i, j);
		i = j;
	}
}
