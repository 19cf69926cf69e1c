/* listen.c - see listen.h. */
#include "master/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "master/supervise.h"
#include "shared/log.h"

#define LISTEN_BACKLOG 4096

static void listen_set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* listen_add appends one address unless it is already there or `a` is full. */
static void listen_add(struct listen_addrs *a, const struct sockaddr *sa, socklen_t len)
{
    if (a->n >= LISTEN_MAX_ADDRS || len > sizeof(a->ss[0]))
        return;
    for (int i = 0; i < a->n; i++)
        if (a->len[i] == len && memcmp(&a->ss[i], sa, len) == 0)
            return;
    memset(&a->ss[a->n], 0, sizeof(a->ss[0]));
    memcpy(&a->ss[a->n], sa, len);
    a->len[a->n++] = len;
}

/* listen_resolve_as is listen_resolve with `what` naming the option in messages
 * ("--listen-host NAME", "--mode socks5@NAME:1080"). */
static int listen_resolve_as(const char *what, const char *host, uint16_t port,
                             struct listen_addrs *out, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char tmp[256];
    size_t hl = strlen(host);
    int rc;

    memset(out, 0, sizeof(*out));
    /* accept "[::1]" as well as "::1" */
    if (hl >= 2 && hl < sizeof(tmp) && host[0] == '[' && host[hl - 1] == ']') {
        memcpy(tmp, host + 1, hl - 2);
        tmp[hl - 2] = '\0';
        host = tmp;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", what,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -ENOENT;
    }
    /* IPv4 first: clients and docs say 127.0.0.1 more often than ::1. */
    for (int fam = 0; fam < 2; fam++)
        for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
            if (ai->ai_family == (fam == 0 ? AF_INET : AF_INET6))
                listen_add(out, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(res);
    if (out->n == 0) {
        snprintf(err, errlen, "%s: no IPv4 or IPv6 address", what);
        return -ENOENT;
    }
    for (int i = 0; i < out->n; i++)
        listen_set_port(&out->ss[i], port);
    return 0;
}

int listen_resolve(const char *host, uint16_t port, struct listen_addrs *out, char *err,
                   size_t errlen)
{
    char what[300];

    snprintf(what, sizeof(what), "--listen-host %s", host);
    return listen_resolve_as(what, host, port, out, err, errlen);
}

/* listen_format_one writes "1.2.3.4:80" or "[::1]:80". */
static void listen_format_one(const struct sockaddr_storage *ss, uint16_t port, char *buf,
                              size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, (unsigned)port);
    } else {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, (unsigned)port);
    }
}

void listen_format(const struct listen_addrs *a, uint16_t port, char *buf, size_t len)
{
    size_t used = 0;

    if (len == 0)
        return;
    buf[0] = '\0';
    for (int i = 0; i < a->n && used < len; i++) {
        char one[INET6_ADDRSTRLEN + 10];
        int w;

        listen_format_one(&a->ss[i], port, one, sizeof(one));
        w = snprintf(buf + used, len - used, "%s%s",
                     i == 0 ? "" : (i == a->n - 1 ? " and " : ", "), one);
        if (w < 0)
            return;
        used += (size_t)w;
    }
}

static int listen_one(const struct sockaddr_storage *ss, socklen_t len, bool v6only, int *out)
{
    int one = 1, fd, err;

    fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        (v6only && ss->ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
        bind(fd, (const struct sockaddr *)ss, len) == -1 || listen(fd, LISTEN_BACKLOG) == -1) {
        err = -errno;
        close(fd);
        return err;
    }
    *out = fd;
    return 0;
}

/* listen_bound_port returns the port `fd` is bound to, or -errno. */
static int listen_bound_port(int fd)
{
    struct sockaddr_storage got;
    socklen_t glen = sizeof(got);

    if (getsockname(fd, (struct sockaddr *)&got, &glen) == -1)
        return -errno;
    return ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                          : ((struct sockaddr_in6 *)&got)->sin6_port);
}

/* listen_open_addrs_v6 is listen_open_addrs with the IPv6-only choice made by the caller. */
static int listen_open_addrs_v6(const struct listen_addrs *a, bool v6only, int *fds,
                                uint16_t *bound_port, char *err, size_t errlen)
{
    struct listen_addrs b = *a;
    uint16_t port = 0;
    char where[INET6_ADDRSTRLEN + 10];
    int e;

    for (int i = 0; i < b.n; i++)
        fds[i] = -1;
    for (int i = 0; i < b.n; i++) {
        if (i > 0)
            listen_set_port(&b.ss[i], port);
        e = listen_one(&b.ss[i], b.len[i], v6only, &fds[i]);
        if (e == 0 && i == 0) {
            e = listen_bound_port(fds[0]);
            if (e >= 0) {
                port = (uint16_t)e;
                e = 0;
            }
        }
        if (e != 0) {
            listen_format_one(&b.ss[i], i == 0 ? ntohs(((struct sockaddr_in *)&b.ss[0])->sin_port)
                                               : port,
                              where, sizeof(where));
            snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(-e));
            listen_close_all(fds, b.n);
            return e;
        }
    }
    *bound_port = port;
    return 0;
}

int listen_open_addrs(const struct listen_addrs *a, int *fds, uint16_t *bound_port, char *err,
                      size_t errlen)
{
    return listen_open_addrs_v6(a, a->n > 1, fds, bound_port, err, errlen);
}

/* listen_port_of returns the port stored in `ss`. */
static uint16_t listen_port_of(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                          : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* listen_is_any is true for 0.0.0.0 and [::]. */
static bool listen_is_any(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* listen_clash is true when sockets on `a` and `b` (same port, not 0) cannot both be bound:
 * the same address, or a wildcard and any address of its family (IPv6 sockets are IPv6-only
 * when there are several, so the families do not meet). */
static bool listen_clash(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family || listen_port_of(a) != listen_port_of(b) ||
        listen_port_of(a) == 0)
        return false;
    if (listen_is_any(a) || listen_is_any(b))
        return true;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

int listen_set_plan(const struct config *cfg, struct listen_set *ls, char *err, size_t errlen)
{
    memset(ls, 0, sizeof(*ls));
    ls->n_modes = cfg->n_modes;
    for (int i = 0; i < CONFIG_MAX_MODES; i++)
        for (int k = 0; k < LISTEN_MAX_ADDRS; k++)
            ls->fd[i][k] = -1;
    for (int i = 0; i < cfg->n_modes; i++) {
        const struct mode_spec *m = &cfg->modes[i];
        char what[MODE_SPEC_FULL_MAX + 300];
        int e;

        if (m->has_listen_host)
            snprintf(what, sizeof(what), "--mode %s", m->full_spec);
        else
            snprintf(what, sizeof(what), "--listen-host %s", cfg->listen_host);
        ls->port[i] = config_mode_listen_port(cfg, i);
        e = listen_resolve_as(what, config_mode_listen_host(cfg, i), ls->port[i], &ls->addrs[i],
                              err, errlen);
        if (e != 0)
            return e;
    }
    /* mitmproxy: "Cannot spawn multiple servers on the same address" */
    for (int i = 0; i < ls->n_modes; i++)
        for (int k = 0; k < ls->addrs[i].n; k++)
            for (int j = 0; j < i; j++)
                for (int l = 0; l < ls->addrs[j].n; l++) {
                    char where[INET6_ADDRSTRLEN + 10];

                    if (!listen_clash(&ls->addrs[i].ss[k], &ls->addrs[j].ss[l]))
                        continue;
                    listen_format_one(&ls->addrs[i].ss[k], ls->port[i], where, sizeof(where));
                    snprintf(err, errlen, "--mode %s and --mode %s both listen on %s: give each "
                             "its own @PORT", cfg->modes[j].full_spec, cfg->modes[i].full_spec,
                             where);
                    return -EADDRINUSE;
                }
    return 0;
}

int listen_set_open(const struct config *cfg, struct listen_set *ls, int n, int *slot_fds,
                    char *err, size_t errlen)
{
    int total = 0, e;

    for (int i = 0; i < n; i++)
        slot_fds[i] = -1;
    e = listen_set_plan(cfg, ls, err, errlen);
    if (e != 0)
        return e;
    for (int i = 0; i < ls->n_modes; i++)
        total += ls->addrs[i].n;
    for (int i = 0; i < ls->n_modes; i++) {
        e = listen_open_addrs_v6(&ls->addrs[i], total > 1, ls->fd[i], &ls->port[i], err, errlen);
        if (e != 0) {
            if (cfg->modes[i].full_spec[0] != '\0' && cfg->n_modes > 1) {
                size_t used = strlen(err);

                snprintf(err + used, errlen > used ? errlen - used : 0, " (--mode %s)",
                         cfg->modes[i].full_spec);
            }
            goto out_close;
        }
        for (int k = 0; k < ls->addrs[i].n; k++)
            listen_set_port(&ls->addrs[i].ss[k], ls->port[i]);
    }
    /* Every slot holds the first socket: one accept queue, from which each worker takes
     * connections while it is not above its share (shared/board.h). */
    slot_fds[0] = ls->fd[0][0];
    ls->fd[0][0] = -1;
    for (int i = 1; i < n; i++) {
        slot_fds[i] = fcntl(slot_fds[0], F_DUPFD_CLOEXEC, 0);
        if (slot_fds[i] == -1) {
            e = -errno;
            snprintf(err, errlen, "cannot duplicate the listener: %s", strerror(errno));
            listen_close_all(slot_fds, n);
            goto out_close;
        }
    }
    return 0;
out_close:
    listen_set_close(ls);
    return e;
}

int listen_set_hand_over(struct listen_set *ls, struct supervise *s)
{
    int rc = 0;

    for (int i = 0; i < ls->n_modes; i++)
        for (int k = 0; k < ls->addrs[i].n; k++) {
            int e;

            if (ls->fd[i][k] < 0)
                continue;
            e = supervise_share_fd(s, ls->fd[i][k], config_listen_fd(i, k));
            ls->fd[i][k] = -1;
            if (e != 0) {
                log_error("cannot hand listener %d.%d to the workers: %s", i, k, strerror(-e));
                rc = e;
            }
        }
    return rc;
}

void listen_set_close(struct listen_set *ls)
{
    for (int i = 0; i < CONFIG_MAX_MODES; i++)
        listen_close_all(ls->fd[i], LISTEN_MAX_ADDRS);
}

void listen_set_announce(const struct listen_set *ls, const struct config *cfg, int workers,
                         FILE *out)
{
    char desc[MODE_SPEC_DESC_MAX], where[LISTEN_MAX_ADDRS * (INET6_ADDRSTRLEN + 16)];

    for (int i = 0; i < ls->n_modes; i++) {
        listen_format(&ls->addrs[i], ls->port[i], where, sizeof(where));
        fprintf(out, "mitmd: %s listening at %s.\n", mode_spec_describe(&cfg->modes[i], desc,
                                                                        sizeof(desc)), where);
    }
    if (ls->n_modes > 0 && ls->addrs[0].n > 0) {
        listen_format_one(&ls->addrs[0].ss[0], ls->port[0], where, sizeof(where));
        fprintf(out, "mitmd: listening on %s with %d worker%s\n", where, workers,
                workers == 1 ? "" : "s");
    }
    fflush(out);
}

void listen_close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}
