/* Connecting to a guest channel's unix socket from the host, retried while QEMU starts. */
#include "chansock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int chansock_open(const char *prog, const char *path, const volatile sig_atomic_t *stop)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "%s: %s: path too long\n", prog, path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	for (int i = 0; i < 100 && !*stop; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			break;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		usleep(100000);
	}
	fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
	return -1;
}
