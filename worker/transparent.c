/* transparent.c - see transparent.h. */
#include "worker/transparent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "shared/log.h"
#include "worker/conn.h"
#include "worker/proxy_req.h"
#include "worker/worker.h"

/* IP6T_SO_ORIGINAL_DST from linux/netfilter_ipv6/ip6_tables.h, whose userspace header does
 * not build next to glibc's netinet/in.h; the value is ABI (80, as SO_ORIGINAL_DST). */
#define TRANSPARENT_IP6T_SO_ORIGINAL_DST 80

struct transparent {
    char dest[INET6_ADDRSTRLEN + 8]; /* "addr:port" / "[addr]:port", for the records */
};

static_assert(sizeof(struct transparent) <= CONN_PROTO_STATE_MAX, "fits the protocol state");

static struct transparent *transparent_of(struct conn *c)
{
    return conn_proto_state(c);
}

/* transparent_same_addr returns whether `a` and `b` are the same address and port. */
static bool transparent_same_addr(const struct sockaddr_storage *a,
                                  const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

int transparent_original_dst(int fd, struct sockaddr_storage *out, socklen_t *len)
{
    struct sockaddr_storage self;
    socklen_t sl = sizeof(self);
    int rc;

    memset(out, 0, sizeof(*out));
    if (getsockname(fd, (struct sockaddr *)&self, &sl) == -1)
        return -errno;
    /* an IPv6 socket's IPv4 clients (v4-mapped) were redirected by the IPv4 NAT table */
    if (self.ss_family == AF_INET6 &&
        !IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&self)->sin6_addr)) {
        *len = sizeof(struct sockaddr_in6);
        rc = getsockopt(fd, SOL_IPV6, TRANSPARENT_IP6T_SO_ORIGINAL_DST, out, len);
    } else {
        *len = sizeof(struct sockaddr_in);
        rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, out, len);
    }
    if (rc == -1)
        return errno == ENOENT || errno == ENOPROTOOPT ? -ENOENT : -errno;
    if (self.ss_family == AF_INET6 && out->ss_family == AF_INET) {
        /* compare like with like: the socket's own v4-mapped address as IPv4 */
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&self;
        struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = s6->sin6_port};

        memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
        memset(&self, 0, sizeof(self));
        memcpy(&self, &s4, sizeof(s4));
    }
    /* conntrack without NAT reports the socket's own address: not redirected */
    if (transparent_same_addr(out, &self))
        return -ENOENT;
    return 0;
}

/* transparent_record records the connection as a flow that ended with `why` (no request was
 * read: the URL is the original destination). */
static void transparent_record(struct conn *c, const char *why)
{
    struct transparent *t = transparent_of(c);
    struct flow *f = &c->flow;

    if (f->t_start == 0)
        flow_begin(f);
    if (t->dest[0] != '\0')
        flow_str_set(f, &f->url, t->dest, strlen(t->dest));
    conn_record_error(c, why);
}

static void transparent_on_upstream(struct conn *c, int err, const char *why)
{
    if (err == 0) {
        proxy_req_start_sniff(c); /* as after an answered CONNECT */
        return;
    }
    transparent_record(c, why);
    worker_count(c->w, MSG_STAT_UPSTREAM_ERRORS);
    if (c->cl.fd >= 0) {
        /* reset, as the server would have: the client sees its connect fail, not a close
         * after a success (best effort: a plain close otherwise) */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};

        (void)setsockopt(c->cl.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    conn_close(c);
}

static bool transparent_step(struct conn *c)
{
    if (c->cl.failed) {
        conn_close(c); /* the client gave up while we dialled */
        return true;
    }
    return false; /* the dial's outcome comes through on_upstream */
}

static const struct conn_proto transparent_proto = {
    .name = "transparent",
    .state_size = sizeof(struct transparent),
    .step = transparent_step,
    .on_upstream = transparent_on_upstream,
};

void transparent_start(struct conn *c)
{
    struct transparent *t;
    struct sockaddr_storage dst;
    socklen_t len = sizeof(dst);
    char host[INET6_ADDRSTRLEN];
    uint16_t port;
    int err;

    conn_set_proto(c, &transparent_proto);
    t = transparent_of(c);
    err = transparent_original_dst(c->cl.fd, &dst, &len);
    if (err) {
        log_debug("conn %llu: no original destination: %s", (unsigned long long)c->id,
                  strerror(-err));
        transparent_record(c, err == -ENOENT
                                  ? "transparent mode: the connection was not redirected to "
                                    "mitmd (no original destination)"
                                  : "transparent mode: cannot read the original destination");
        worker_count(c->w, MSG_STAT_CLIENT_ERRORS);
        conn_close(c);
        return;
    }
    if (dst.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)&dst;

        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
        snprintf(t->dest, sizeof(t->dest), "%s:%u", host, (unsigned)port);
    } else {
        const struct sockaddr_in6 *a = (const void *)&dst;

        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
        snprintf(t->dest, sizeof(t->dest), "[%s]:%u", host, (unsigned)port);
    }
    /* an address literal: upstream_dial resolves nothing, and a TLS client's SNI (read by the
     * sniff after the dial) names the host for the certificate */
    if (upstream_set_target(c, host, strlen(host), port) != 0) {
        conn_close(c);
        return;
    }
    flow_set_target(&c->flow, c->upstream.host, c->upstream.port);
    log_debug("conn %llu: transparent to %s", (unsigned long long)c->id, t->dest);
    upstream_dial(c);
}
