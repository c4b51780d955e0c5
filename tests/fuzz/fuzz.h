/* Helpers shared by the libFuzzer targets: an invariant check that aborts with a message (so
 * libFuzzer saves the input as a crash), a byte reader over the fuzz input, and scratch files
 * for the parsers that take a path. Every target is one .c with LLVMFuzzerTestOneInput. */
#ifndef VSCALE_FUZZ_H
#define VSCALE_FUZZ_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static inline void fuzz_dir_remove(void);

/* An invariant, not an assert(): it stays on in every build and names what broke. */
#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FUZZ INVARIANT %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			fuzz_dir_remove();                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Consumes the fuzz input from the front; past the end every read is 0. */
struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v = 0;

	if (in->left) {
		v = *in->p++;
		in->left--;
	}
	return v;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	uint16_t lo = fuzz_u8(in);

	return (uint16_t)(lo | (uint16_t)fuzz_u8(in) << 8);
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint32_t lo = fuzz_u16(in);

	return lo | (uint32_t)fuzz_u16(in) << 16;
}

/* Up to n bytes from the input; *ret_n says how many. */
static inline const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t n, size_t *ret_n)
{
	const uint8_t *p = in->p;

	if (n > in->left)
		n = in->left;
	in->p += n;
	in->left -= n;
	*ret_n = n;
	return p;
}

/* A scratch directory for this process, removed at exit and when a check or a sanitizer
 * fails. In /dev/shm when there is one: rewriting a file thousands of times a second on a disk
 * file system costs more than the parsing (ext4 flushes a truncated file on close); else under
 * $TMPDIR. Returns its path; aborts when it cannot be made. */
static char fuzz_dir_path[256];

void __sanitizer_set_death_callback(void (*callback)(void));

static inline void fuzz_dir_remove(void)
{
	char cmd[300];

	if (!fuzz_dir_path[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_dir_path);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_path);
	fuzz_dir_path[0] = '\0';
}

static inline const char *fuzz_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	struct stat st;

	if (fuzz_dir_path[0])
		return fuzz_dir_path;
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	snprintf(fuzz_dir_path, sizeof(fuzz_dir_path), "%s/vscale-fuzz-XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fuzz_dir_path)) {
		perror(fuzz_dir_path);
		abort();
	}
	atexit(fuzz_dir_remove);
	__sanitizer_set_death_callback(fuzz_dir_remove);
	return fuzz_dir_path;
}

/* Writes len bytes to path (made or truncated). Aborts on I/O errors: they are not findings. */
static inline void fuzz_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");

	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

#endif
