/* listen.c - see listen.h. */
#include "master/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096

/* listen_addr fills `ss` from a numeric IPv4/IPv6 host. Returns 0 or -EINVAL. */
static int listen_addr(const char *host, uint16_t port, struct sockaddr_storage *ss,
                       socklen_t *len)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    char tmp[64];
    size_t hl = strlen(host);

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *len = sizeof(*in4);
        return 0;
    }
    /* accept "[::1]" as well as "::1" */
    if (hl >= 2 && hl < sizeof(tmp) && host[0] == '[' && host[hl - 1] == ']') {
        memcpy(tmp, host + 1, hl - 2);
        tmp[hl - 2] = '\0';
        host = tmp;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof(*in6);
        return 0;
    }
    return -EINVAL;
}

static int listen_one(const struct sockaddr_storage *ss, socklen_t len, int *out)
{
    int one = 1, fd, err;

    fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        bind(fd, (const struct sockaddr *)ss, len) == -1 || listen(fd, LISTEN_BACKLOG) == -1) {
        err = -errno;
        close(fd);
        return err;
    }
    *out = fd;
    return 0;
}

int listen_open_all(const char *host, uint16_t port, int n, int *fds, uint16_t *bound_port,
                    char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int i, e;

    for (i = 0; i < n; i++)
        fds[i] = -1;
    if (listen_addr(host, port, &ss, &len) != 0) {
        snprintf(err, errlen, "--listen-host %s: not a numeric IPv4 or IPv6 address", host);
        return -EINVAL;
    }
    e = listen_one(&ss, len, &fds[0]);
    if (e != 0) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", host, (unsigned)port, strerror(-e));
        return e;
    }
    {
        struct sockaddr_storage got;
        socklen_t glen = sizeof(got);

        if (getsockname(fds[0], (struct sockaddr *)&got, &glen) == -1) {
            e = -errno;
            snprintf(err, errlen, "getsockname: %s", strerror(errno));
            listen_close_all(fds, n);
            return e;
        }
        port = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                              : ((struct sockaddr_in6 *)&got)->sin6_port);
    }
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
