/* listen.h - the master's listening sockets: one SO_REUSEPORT socket per worker slot.
 * Owns binding and the bind error message. Called by the master only, at start-up; the
 * sockets are handed to workers across exec. Never allocates. */
#ifndef MITMD_MASTER_LISTEN_H
#define MITMD_MASTER_LISTEN_H

#include <stddef.h>
#include <stdint.h>

/* listen_open_all opens `n` non-blocking, close-on-exec TCP listeners on host:port with
 * SO_REUSEPORT, storing them in fds[0..n). With port 0 the first socket picks a free port
 * and the others join it; the port in use is stored in *bound_port. Returns 0, or -errno
 * with `err` holding a one-line message (all sockets opened so far are closed). */
int listen_open_all(const char *host, uint16_t port, int n, int *fds, uint16_t *bound_port,
                    char *err, size_t errlen);

/* listen_close_all closes fds[0..n) that are >= 0 and sets them to -1. */
void listen_close_all(int *fds, int n);

#endif
