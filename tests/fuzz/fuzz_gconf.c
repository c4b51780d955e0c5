/* libFuzzer target: vscale-guestd's config loader, gconf_load(), on a fuzzed guest.conf.
 *
 * Invariants: a refused config says "file:line: message" with a line >= 1; an accepted one has
 * every value in its key's range, and prints (--print-config) as a config that loads again and
 * prints the same. */
#include "fuzz.h"

#include "gconf.h"

static char path[300], print_path[300];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	snprintf(path, sizeof(path), "%s/guest.conf", fuzz_dir());
	snprintf(print_path, sizeof(print_path), "%s/printed.conf", fuzz_dir());
	return 0;
}

static char *print(const struct gconf *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	FUZZ_CHECK(f != NULL, "open_memstream");
	gconf_print(c, f);
	fclose(f);
	return text;
}

static void check_loaded(const struct gconf *c)
{
	const struct collect_opts *o = &c->collect;
	struct gconf again;
	char err[1024], *text, *text2;

	FUZZ_CHECK(c->interval_ms > 0 && c->buffer_samples >= 1 && c->buffer_samples <= 3600,
	           "interval %llu, buffer %u", (unsigned long long)c->interval_ms,
	           c->buffer_samples);
	FUZZ_CHECK(o->top_threads <= SAMPLE_MAX_THREADS && o->saturation_samples >= 1 &&
	                   o->saturation_samples <= 1000,
	           "top-threads %u, saturation-samples %u", o->top_threads, o->saturation_samples);
	FUZZ_CHECK(o->saturation_pct >= 0 && o->saturation_pct <= 100 && o->rest_idle_pct >= 0 &&
	                   o->rest_idle_pct <= 100,
	           "saturation %g%%, rest-idle %g%%", o->saturation_pct, o->rest_idle_pct);
	FUZZ_CHECK(c->log_level == LOG_LVL_ERR || c->log_level == LOG_LVL_WARN ||
	                   c->log_level == LOG_LVL_INFO || c->log_level == LOG_LVL_DEBUG,
	           "log level %d", (int)c->log_level);
	text = print(c);
	fuzz_write(print_path, text, strlen(text));
	gconf_default(&again);
	FUZZ_CHECK(gconf_load(&again, print_path, true, err, sizeof(err)) == 0,
	           "the printed config does not load: %s", err);
	text2 = print(&again);
	FUZZ_CHECK(strcmp(text, text2) == 0, "printed config changes when loaded:\n%s\n----\n%s",
	           text, text2);
	free(text);
	free(text2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct gconf c;
	char err[1024];
	int line = 0;

	fuzz_write(path, data, size);
	gconf_default(&c);
	err[0] = '\0';
	if (gconf_load(&c, path, true, err, sizeof(err)) < 0) {
		size_t n = strlen(path);

		FUZZ_CHECK(strncmp(err, path, n) == 0 && sscanf(err + n, ":%d: ", &line) == 1 &&
		                   line >= 1,
		           "error without file:line: '%s'", err);
		return 0;
	}
	check_loaded(&c);
	return 0;
}
