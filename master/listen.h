/* listen.h - the master's listening socket: one socket, a descriptor of it per worker slot
 * (the workers share its accept queue and balance through shared/board.h).
 * Owns binding and the bind error message. Called by the master only, at start-up; the
 * sockets are handed to workers across exec. Never allocates. */
#ifndef MITMD_MASTER_LISTEN_H
#define MITMD_MASTER_LISTEN_H

#include <stddef.h>
#include <stdint.h>

/* listen_open_all opens one non-blocking, close-on-exec TCP listener on host:port and
 * stores `n` close-on-exec descriptors of it in fds[0..n). With port 0 the kernel picks a
 * free port; the port in use is stored in *bound_port. Returns 0, or -errno with `err`
 * holding a one-line message (nothing is left open). No SO_REUSEPORT: a second mitmd on the
 * same port fails to start instead of silently sharing the traffic. */
int listen_open_all(const char *host, uint16_t port, int n, int *fds, uint16_t *bound_port,
                    char *err, size_t errlen);

/* listen_close_all closes fds[0..n) that are >= 0 and sets them to -1. */
void listen_close_all(int *fds, int n);

#endif
