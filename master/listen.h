/* listen.h - the master's listening sockets: one listener per --mode, each with one socket per
 * address its listen host resolves to (a numeric address, or a name such as localhost, which
 * gives 127.0.0.1 and ::1). Owns resolution, the check that no two listeners take the same
 * address, binding, the start-up lines, and their error messages. Called by the master only,
 * at start-up (getaddrinfo blocks); the sockets go to every worker across exec (the workers
 * share each socket's accept queue and balance through shared/board.h) at the descriptors
 * config_listen_fd() names. Never allocates past a call. */
#ifndef MITMD_MASTER_LISTEN_H
#define MITMD_MASTER_LISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "shared/config.h"

#define LISTEN_MAX_ADDRS CONFIG_MODE_MAX_ADDRS

struct supervise;

/* struct listen_addrs is what a listen host resolved to: distinct addresses, IPv4 first. */
struct listen_addrs {
    int n;
    struct sockaddr_storage ss[LISTEN_MAX_ADDRS];
    socklen_t len[LISTEN_MAX_ADDRS];
};

/* struct listen_set is every listener of a mitmd: listener i serves cfg->modes[i]. */
struct listen_set {
    int n_modes;
    struct listen_addrs addrs[CONFIG_MAX_MODES]; /* each mode's addresses, ports set */
    uint16_t port[CONFIG_MAX_MODES];  /* requested (0: any), after listen_set_open in use */
    int fd[CONFIG_MAX_MODES][LISTEN_MAX_ADDRS]; /* -1: none (or handed over) */
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
 * address (nothing is left open). */
int listen_open_addrs(const struct listen_addrs *a, int *fds, uint16_t *bound_port, char *err,
                      size_t errlen);

/* listen_set_plan resolves the listen host of every mode of `cfg` (its "@HOST", else
 * --listen-host) into `ls` (no socket opened; every fd -1) and refuses two listeners on the
 * same address and port (the same address, or a wildcard of the same family; port 0 never
 * clashes). Returns 0, or -ENOENT/-EINVAL/-EADDRINUSE with `err` holding one line that names
 * the --mode specs (the caller exits 2). Blocks on DNS. */
int listen_set_plan(const struct config *cfg, struct listen_set *ls, char *err, size_t errlen);

/* listen_set_open plans `cfg`'s listeners (listen_set_plan) and opens them all: no
 * SO_REUSEPORT, so a second mitmd on the same port fails to start instead of silently sharing
 * the traffic; IPv6 sockets are IPv6-only when there is more than one socket. slot_fds[0..n)
 * get descriptors of the first socket (mode 0, first address) for the supervisor's `n`
 * worker slots (its own fd 4); the other sockets stay in `ls` for listen_set_hand_over. With
 * port 0 the kernel picks a port (ls->port has it). Returns 0, or -errno with `err` holding a
 * one-line message naming the address (nothing is left open). */
int listen_set_open(const struct config *cfg, struct listen_set *ls, int n, int *slot_fds,
                    char *err, size_t errlen);

/* listen_set_hand_over moves every socket still in `ls` into `s` (supervise_share_fd) at the
 * descriptor config_listen_fd() names, for every worker started from now on. Returns 0 or
 * -errno (logged); the sockets are owned by `s` either way. */
int listen_set_hand_over(struct listen_set *ls, struct supervise *s);

/* listen_set_close closes the sockets still in `ls`. */
void listen_set_close(struct listen_set *ls);

/* listen_set_announce prints the start-up lines to `out` once every worker is ready: one per
 * listener in mitmproxy 10's words ("SOCKS v5 proxy listening at 127.0.0.1:1080."), then
 * "mitmd: listening on ADDR:PORT with N workers" naming the first listener's first address
 * (the line scripts wait for). */
void listen_set_announce(const struct listen_set *ls, const struct config *cfg, int workers,
                         FILE *out);

/* listen_close_all closes fds[0..n) that are >= 0 and sets them to -1. */
void listen_close_all(int *fds, int n);

#endif
