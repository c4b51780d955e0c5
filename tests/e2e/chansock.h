/* The host end of a guest channel: QEMU's unix socket for it, connected to by the host-side e2e
 * and benchmark tools (tests/e2e/streamcheck.c, bench/guestpoll.c). */
#ifndef VSCALE_E2E_CHANSOCK_H
#define VSCALE_E2E_CHANSOCK_H

#include <signal.h>

/* Connects to the unix socket at path, retrying for up to 10 s (the socket appears when QEMU
 * starts) or until *stop is set. Returns the fd (the caller closes it), or -1 after saying why
 * on stderr as "prog: path: reason". */
int chansock_open(const char *prog, const char *path, const volatile sig_atomic_t *stop);

#endif
