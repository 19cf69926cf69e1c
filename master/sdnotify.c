/* sdnotify.c - see sdnotify.h. The protocol is systemd's sd_notify(3): newline-separated
 * VAR=VALUE assignments in one datagram. */
#include "master/sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shared/log.h"

int sdnotify_open(struct sdnotify *n)
{
    const char *path = getenv("NOTIFY_SOCKET");
    size_t len;

    memset(n, 0, sizeof(*n));
    n->fd = -1;
    if (path == NULL || path[0] == '\0')
        return 0;
    len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(n->addr.sun_path)) {
        log_warn("NOTIFY_SOCKET '%s': not an absolute path or @name; no notifications", path);
        return -EINVAL;
    }
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, path, len);
    if (path[0] == '@')
        n->addr.sun_path[0] = '\0'; /* abstract namespace: no terminating NUL counted */
    n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (n->fd == -1) {
        int e = -errno;

        log_warn("NOTIFY_SOCKET: socket: %s; no notifications", strerror(errno));
        return e;
    }
    return 0;
}

int sdnotify_send(struct sdnotify *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    int len;

    if (n->fd == -1)
        return 0;
    va_start(ap, fmt);
    len = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof(msg))
        return -EMSGSIZE;
    if (sendto(n->fd, msg, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT,
               (const struct sockaddr *)&n->addr, n->addr_len) == -1)
        return -errno;
    return 0;
}

int sdnotify_reloading(struct sdnotify *n, const char *status)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return sdnotify_send(n, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%s",
                         (unsigned long long)ts.tv_sec * 1000000ull +
                             (unsigned long long)ts.tv_nsec / 1000u,
                         status);
}

void sdnotify_close(struct sdnotify *n)
{
    if (n->fd != -1)
        close(n->fd);
    n->fd = -1;
}
