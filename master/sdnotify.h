/* sdnotify.h - the sd_notify protocol (systemd Type=notify), without libsystemd: one
 * datagram per state change to the AF_UNIX socket named by $NOTIFY_SOCKET. Owns that
 * socket. Called by the master only; never blocks (a full or missing receiver loses the
 * message, which systemd tolerates). Does nothing when $NOTIFY_SOCKET is unset. */
#ifndef MITMD_MASTER_SDNOTIFY_H
#define MITMD_MASTER_SDNOTIFY_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

struct sdnotify {
    int fd; /* -1: not under a service manager */
    struct sockaddr_un addr;
    socklen_t addr_len;
};

/* sdnotify_open reads $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace) and
 * opens a datagram socket for it. Returns 0 (also when the variable is unset: `n->fd` is
 * then -1) or -errno/-EINVAL (logged; the master runs on without notifications). */
int sdnotify_open(struct sdnotify *n);

/* sdnotify_send sends `fmt` (printf) as one datagram, e.g. "READY=1\nSTATUS=serving".
 * Returns 0, or -errno (not logged). No-op returning 0 when not under a manager. */
int sdnotify_send(struct sdnotify *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* sdnotify_reloading sends RELOADING=1 with MONOTONIC_USEC (systemd 253's reload
 * protocol) and `status` as STATUS. Returns as sdnotify_send. */
int sdnotify_reloading(struct sdnotify *n, const char *status);

/* sdnotify_close closes the socket; safe on a closed one. */
void sdnotify_close(struct sdnotify *n);

#endif
