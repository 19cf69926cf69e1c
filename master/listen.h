/* listen.h - the master's listening sockets: the listen host resolved (a numeric address or
 * a name such as localhost, which may give several addresses), bound, and a descriptor of
 * each socket per worker slot (the workers share its accept queue and balance through
 * shared/board.h). Owns resolution, binding and their error messages. Called by the master
 * only, at start-up (getaddrinfo blocks); the sockets are handed to workers across exec.
 * Never allocates past a call. */
#ifndef MITMD_MASTER_LISTEN_H
#define MITMD_MASTER_LISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define LISTEN_MAX_ADDRS 8

/* struct listen_addrs is what a listen host resolved to: distinct addresses, IPv4 first. */
struct listen_addrs {
    int n;
    struct sockaddr_storage ss[LISTEN_MAX_ADDRS];
    socklen_t len[LISTEN_MAX_ADDRS];
};

/* listen_resolve resolves `host` (numeric IPv4, IPv6 with or without brackets, or a name,
 * looked up with getaddrinfo) into `out` with `port` set, IPv4 addresses first, duplicates
 * dropped, at most LISTEN_MAX_ADDRS. Returns 0, or -EINVAL/-ENOENT with `err` holding a
 * one-line message naming --listen-host and the resolver's reason. Blocks on DNS. */
int listen_resolve(const char *host, uint16_t port, struct listen_addrs *out, char *err,
                   size_t errlen);

/* listen_format writes "127.0.0.1:8080 and [::1]:8080" (every address of `a`, with `port`)
 * into buf, truncated to `len`. */
void listen_format(const struct listen_addrs *a, uint16_t port, char *buf, size_t len);

/* listen_open_addrs opens one non-blocking, close-on-exec TCP listener on each address of
 * `a`, into fds[0..a->n). With port 0 the kernel picks a free port for the first and the
 * others take the same port; the port in use is stored in *bound_port. IPv6 sockets are
 * IPv6-only when there is more than one address. Returns 0, or -errno with `err` naming the
 * address (nothing is left open). For master.c once workers accept on several listeners. */
int listen_open_addrs(const struct listen_addrs *a, int *fds, uint16_t *bound_port, char *err,
                      size_t errlen);

/* listen_open_all resolves `host` and opens one TCP listener on its first address (IPv4
 * first: a worker takes one listener today) and stores `n` close-on-exec descriptors of it in
 * fds[0..n). With port 0 the kernel picks a free port; the port in use is stored in
 * *bound_port. Returns 0, or -errno with `err` holding a one-line message (nothing is left
 * open). No SO_REUSEPORT: a second mitmd on the same port fails to start instead of silently
 * sharing the traffic. Blocks on DNS for a name. */
int listen_open_all(const char *host, uint16_t port, int n, int *fds, uint16_t *bound_port,
                    char *err, size_t errlen);

/* listen_close_all closes fds[0..n) that are >= 0 and sets them to -1. */
void listen_close_all(int *fds, int n);

#endif
