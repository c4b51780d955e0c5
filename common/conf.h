/* Typed value parsers for the INI config files, and a thin inih wrapper that reports the line.
 *
 * Every parser returns 0 and writes *ret on success, or -EINVAL and writes a short reason to err
 * ("expected a size like 2G"). Callers add "file:line: key: " in front. */
#ifndef VSCALE_CONF_H
#define VSCALE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONF_ERR_LEN 256
/* The longest line a config file may have: inih's buffer (INI_MAX_LINE) less newline and NUL.
 * A value is refused when "key = value" would not fit, so that a printed config reads back. */
#define CONF_LINE_MAX 198

/* Writes a printf-style message into err (when err is not NULL) and returns -EINVAL: the one way
 * parsers and validators report what is wrong. */
int conf_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "4096", "512K", "2M", "1.5G", "1T" (binary units, optional trailing B or iB) -> KiB. A bare
 * number is bytes. */
int conf_parse_size_kib(const char *s, uint64_t *ret_kib, char *err, size_t errlen);
/* "250ms", "30s", "5m", "1h", bare number = seconds -> ms. */
int conf_parse_duration_ms(const char *s, uint64_t *ret_ms, char *err, size_t errlen);
/* "80%" or "80" -> 80.0; 0..max_pct */
int conf_parse_percent(const char *s, double max_pct, double *ret_pct, char *err, size_t errlen);
/* decimal unsigned within [min, max] */
int conf_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret, char *err,
                    size_t errlen);
/* non-negative decimal number (e.g. "1.5") within [min, max] */
int conf_parse_double(const char *s, double min, double max, double *ret, char *err, size_t errlen);
/* yes/no/true/false/on/off/1/0 */
int conf_parse_bool(const char *s, bool *ret, char *err, size_t errlen);
/* "ADDRESS:PORT" with a numeric IPv4 address or a bracketed IPv6 one ("[::1]:9810"), port 0..65535.
 * ret may be NULL (check only). */
struct sockaddr_storage;
int conf_parse_listen(const char *s, struct sockaddr_storage *ret, unsigned *ret_len, char *err,
                      size_t errlen);
/* "1..8" -> lo=1, hi=8 (lo <= hi), or a single value "4" -> 4..4 */
int conf_parse_uint_range(const char *s, uint64_t min, uint64_t max, uint64_t *ret_lo,
                          uint64_t *ret_hi, char *err, size_t errlen);
/* "1G..16G" -> KiB */
int conf_parse_size_range_kib(const char *s, uint64_t *ret_lo, uint64_t *ret_hi, char *err,
                              size_t errlen);

/* Called for each key. Return 0 to go on, or -EINVAL with a message in err. */
typedef int (*conf_key_fn)(void *user, const char *section, const char *key, const char *value,
                           char *err, size_t errlen);

/* Parses path with inih. On the first error writes "path:line: message" into err and returns
 * -EINVAL; -errno when the file cannot be read (message in err too). Duplicate keys in a
 * section are reported as errors, and so are values starting with ';' (written back as
 * "key = ;..." they would read as a comment), lines longer than CONF_LINE_MAX (inih would cut
 * them in two silently) and values for which "key = value" would be. */
int conf_parse_file(const char *path, conf_key_fn fn, void *user, char *err, size_t errlen);

#endif
