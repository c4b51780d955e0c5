/* libFuzzer target: vscale-hostd's config loader, hconf_load() (iniscan + inih + the key table +
 * validation), on a fuzzed vscale.conf and, after a line "#--conf.d--", a conf.d/ file.
 *
 * Invariants: a refused config says "file:line: message" with a line >= 1 in one of the files;
 * an accepted one has a valid "default" policy first, every rule's effective policy valid, and
 * prints (--print-config) as a config that loads again and prints the same. */
#include "fuzz.h"

#include "hconf.h"
#include "policy.h"

#define SPLIT "\n#--conf.d--\n"

static char main_path[300], extra_path[300], print_path[300], conf_d[300];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = fuzz_dir();
	char sub[300];

	snprintf(main_path, sizeof(main_path), "%s/vscale.conf", dir);
	snprintf(conf_d, sizeof(conf_d), "%s/conf.d", dir);
	snprintf(extra_path, sizeof(extra_path), "%s/10-fuzz.conf", conf_d);
	snprintf(sub, sizeof(sub), "%s/printed", dir);
	snprintf(print_path, sizeof(print_path), "%s/vscale.conf", sub);
	FUZZ_CHECK(mkdir(conf_d, 0700) == 0 && mkdir(sub, 0700) == 0, "mkdir: %s", strerror(errno));
	return 0;
}

static void check_error(const char *err)
{
	const char *files[] = {main_path, extra_path};
	int line = 0;

	for (size_t i = 0; i < 2; i++) {
		size_t n = strlen(files[i]);

		if (strncmp(err, files[i], n) == 0 && sscanf(err + n, ":%d: ", &line) == 1)
			break;
	}
	FUZZ_CHECK(line >= 1, "error without file:line: '%s'", err);
}

/* hconf_print() into a string (malloc'd), the first line (it names the file) left out */
static char *print_body(const struct hconf *c)
{
	char *text = NULL, *body;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	FUZZ_CHECK(f != NULL, "open_memstream");
	hconf_print(c, f);
	fclose(f);
	body = strchr(text, '\n');
	body = strdup(body ? body : "");
	free(text);
	return body;
}

static void check_loaded(const struct hconf *c)
{
	char err[1024], msg[256];
	struct hconf *again;
	struct policy p;
	char *body, *body2;
	FILE *f;

	FUZZ_CHECK(c->npolicies >= 1 && strcmp(c->policies[0].name, "default") == 0,
	           "policy 0 is not default");
	for (size_t i = 0; i < c->npolicies; i++)
		FUZZ_CHECK(policy_validate(&c->policies[i], msg, sizeof(msg)) == 0,
		           "policy '%s' accepted but invalid: %s", c->policies[i].name, msg);
	for (size_t i = 0; i < c->nrules; i++) {
		hconf_policy_for(c, c->rules[i].pattern, NULL, &p);
		FUZZ_CHECK(policy_validate(&p, msg, sizeof(msg)) == 0,
		           "vm '%s' gets an invalid policy: %s", c->rules[i].pattern, msg);
	}
	/* --print-config must be a config that means the same */
	f = fopen(print_path, "w");
	FUZZ_CHECK(f != NULL, "%s: %s", print_path, strerror(errno));
	hconf_print(c, f);
	fclose(f);
	FUZZ_CHECK(hconf_load(print_path, true, &again, err, sizeof(err)) == 0,
	           "the printed config does not load: %s", err);
	body = print_body(c);
	body2 = print_body(again);
	FUZZ_CHECK(strcmp(body, body2) == 0, "printed config changes when loaded:\n%s\n----\n%s",
	           body, body2);
	free(body);
	free(body2);
	hconf_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *split = memmem(data, size, SPLIT, strlen(SPLIT));
	size_t main_len = split ? (size_t)(split - data) : size;
	struct hconf *c = NULL;
	char err[1024];

	fuzz_write(main_path, data, main_len);
	if (split) {
		size_t off = main_len + strlen(SPLIT);

		fuzz_write(extra_path, data + off, size - off);
	} else if (unlink(extra_path) < 0 && errno != ENOENT) {
		FUZZ_CHECK(0, "unlink %s: %s", extra_path, strerror(errno));
	}
	err[0] = '\0';
	if (hconf_load(main_path, true, &c, err, sizeof(err)) < 0) {
		check_error(err);
		return 0;
	}
	check_loaded(c);
	hconf_free(c);
	return 0;
}
