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

int listen_resolve(const char *host, uint16_t port, struct listen_addrs *out, char *err,
                   size_t errlen)
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
        snprintf(err, errlen, "--listen-host %s: %s", host,
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
        snprintf(err, errlen, "--listen-host %s: no IPv4 or IPv6 address", host);
        return -ENOENT;
    }
    for (int i = 0; i < out->n; i++)
        listen_set_port(&out->ss[i], port);
    return 0;
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

int listen_open_addrs(const struct listen_addrs *a, int *fds, uint16_t *bound_port, char *err,
                      size_t errlen)
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
        e = listen_one(&b.ss[i], b.len[i], b.n > 1, &fds[i]);
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

int listen_open_all(const char *host, uint16_t port, int n, int *fds, uint16_t *bound_port,
                    char *err, size_t errlen)
{
    struct listen_addrs a;
    int i, e;

    for (i = 0; i < n; i++)
        fds[i] = -1;
    e = listen_resolve(host, port, &a, err, errlen);
    if (e != 0)
        return e;
    a.n = 1; /* one listener per worker today (supervise.c's fd contract) */
    e = listen_open_addrs(&a, &fds[0], &port, err, errlen);
    if (e != 0)
        return e;
    /* Every slot holds the same socket: one accept queue, from which each worker takes
     * connections while it is not above its share (shared/board.h). */
    for (i = 1; i < n; i++) {
        fds[i] = fcntl(fds[0], F_DUPFD_CLOEXEC, 0);
        if (fds[i] == -1) {
            e = -errno;
            snprintf(err, errlen, "cannot duplicate the listener: %s", strerror(errno));
            listen_close_all(fds, n);
            return e;
        }
    }
    *bound_port = port;
    return 0;
}

void listen_close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}
