/* upstream.c - see upstream.h. A dial: dns_resolve -> for each address: socket + connect
 * through the ring -> the protocol's on_upstream. A connect that is cancelled while a new one
 * is wanted (the relay moved to another host) completes first; the new connect starts then
 * (`retry`), so one ring op is never armed twice. */
#include "worker/upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/base64.h>

#include "shared/h1_parse.h"
#include "shared/log.h"
#include "worker/conn.h"
#include "worker/modes.h"
#include "worker/worker.h"

static void upstream_on_connect(struct ring_op *op, int res, uint32_t flags);

void upstream_init(struct conn *c)
{
    ring_op_init(&c->upstream.connect_op, upstream_on_connect, &c->inflight);
    c->upstream.via = c->mode != NULL ? c->mode->via : NULL;
}

/* upstream_dial_host and upstream_dial_port name what the TCP connect goes to: the target, or
 * upstream mode's next proxy. */
static const char *upstream_dial_host(const struct upstream *u)
{
    return u->via != NULL ? u->via->host : u->host;
}

static uint16_t upstream_dial_port(const struct upstream *u)
{
    return u->via != NULL ? u->via->port : u->port;
}

int upstream_set_target(struct conn *c, const char *host, size_t len, uint16_t port)
{
    struct upstream *u = &c->upstream;

    if (len > TARGET_HOST_MAX)
        return -ENAMETOOLONG;
    memcpy(u->host, host, len);
    u->host[len] = '\0';
    u->port = port;
    u->host_is_ip = target_host_is_ip(u->host, len);
    u->via_plain = false;
    return 0;
}

void upstream_via_set_auth(struct upstream_via *v)
{
    size_t n = v->auth != NULL ? strlen(v->auth) : 0;

    v->auth_value[0] = '\0';
    if (n == 0 || n > UPSTREAM_VIA_AUTH_MAX)
        return;
    memcpy(v->auth_value, "Basic ", 6);
    EVP_EncodeBlock((uint8_t *)v->auth_value + 6, (const uint8_t *)v->auth, n);
}

void upstream_dial_plain_via(struct conn *c)
{
    c->upstream.via_plain = c->upstream.via != NULL;
}

const char *upstream_errno_why(int err)
{
    switch (-err) {
    case ECONNREFUSED:
        return "connection refused";
    case ETIMEDOUT:
    case ECANCELED:
        return "connect timeout";
    case ENETUNREACH:
        return "network unreachable";
    case EHOSTUNREACH:
        return "host unreachable";
    case ECONNRESET:
        return "connection reset";
    case ELOOP:
        return "proxy loop detected: the target is this mitmd's own listener";
    case EAFNOSUPPORT:
        return "connect_addr is not of the server's address family (IPv4 / IPv6)";
    case EADDRNOTAVAIL:
        return "no local address to connect from (connect_addr not on this machine, or no "
               "free local port)";
    default:
        return strerror(-err);
    }
}

/* upstream_done ends the dial and tells the protocol. */
static void upstream_done(struct conn *c, int err, const char *why)
{
    char msg[TLS_CONN_WHY_MAX + TARGET_HOST_MAX];

    c->upstream.dialing = false;
    c->upstream.via_wait = false;
    if (err && c->upstream.via != NULL && strstr(why, "upstream proxy") == NULL) {
        snprintf(msg, sizeof(msg), "cannot reach the upstream proxy %s:%u: %s",
                 c->upstream.via->host, c->upstream.via->port, why);
        why = msg;
    }
    if (err)
        log_debug("conn %llu: upstream %s:%u failed: %s", (unsigned long long)c->id,
                  c->upstream.host, c->upstream.port, why);
    else
        log_debug("conn %llu: connected to %s:%u", (unsigned long long)c->id, c->upstream.host,
                  c->upstream.port);
    if (c->state != CONN_STATE_CLOSED && c->proto != NULL && c->proto->on_upstream != NULL)
        c->proto->on_upstream(c, err, why);
}

/* upstream_bind binds `fd` to --set connect_addr (port chosen at connect time:
 * IP_BIND_ADDRESS_NO_PORT, so that many connections can share the address) when it is set.
 * Returns 0, -EAFNOSUPPORT when `family` is not the address's, or -errno. */
static int upstream_bind(const struct config *cfg, int fd, int family)
{
    int one = 1;

    if (cfg->connect_addr_len == 0)
        return 0;
    if (family != cfg->connect_addr.ss_family)
        return -EAFNOSUPPORT;
    (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&cfg->connect_addr, cfg->connect_addr_len) != 0)
        return -errno;
    return 0;
}

/* upstream_open creates the upstream socket for `sa` and starts the connect. Returns 0 or
 * -errno. */
static int upstream_open(struct conn *c, const struct sockaddr *sa, socklen_t salen)
{
    int fd, err, one = 1;

    if (c->up.fd >= 0 || c->upstream.connect_op.armed)
        conn_up_drop(c);
    if ((size_t)salen > sizeof(c->up.addr))
        return -EINVAL;
    memmove(&c->up.addr, sa, salen);
    c->up.addrlen = salen;
    if (c->upstream.connect_op.armed) {
        c->upstream.retry = true; /* the old connect is being cancelled: connect after it */
        return 0;
    }
    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd == -1)
        return -errno;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* latency only */
    err = upstream_bind(c->w->cfg, fd, sa->sa_family);
    if (err) {
        close(fd);
        return err;
    }
    err = ring_submit_connect(&c->w->ring, &c->upstream.connect_op, fd,
                              (struct sockaddr *)&c->up.addr, salen);
    if (err) {
        close(fd);
        return err;
    }
    c->up.fd = fd;
    c->up.connected = false;
    c->upstream.t_connect = flow_now_ns();
    return 0;
}

/* upstream_is_self returns whether `sa` is the address the client reached mitmd on (the
 * same port on the same address, or on another loopback address of the same family):
 * connecting there would make each hop open two more connections until descriptors run out. */
static bool upstream_is_self(struct conn *c, const struct sockaddr_storage *sa)
{
    struct sockaddr_storage me;
    socklen_t len = sizeof(me);

    if (getsockname(c->cl.fd, (struct sockaddr *)&me, &len) != 0 || me.ss_family != sa->ss_family)
        return false;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        const struct sockaddr_in *b = (const struct sockaddr_in *)&me;
        bool loop_a = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        bool loop_b = (ntohl(b->sin_addr.s_addr) >> 24) == 127;

        return a->sin_port == b->sin_port &&
               (a->sin_addr.s_addr == b->sin_addr.s_addr || (loop_a && loop_b));
    }
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)&me;

        return a->sin6_port == b->sin6_port &&
               memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
    }
    return false;
}

/* upstream_via_send queues "CONNECT target" for the next proxy on the upstream leg, with
 * Proxy-Authorization when --upstream-auth is set. Returns 0 or -ENOSPC. */
static int upstream_via_send(struct conn *c)
{
    const struct upstream *u = &c->upstream;
    char req[2 * TARGET_HOST_MAX + UPSTREAM_VIA_AUTH_VALUE_MAX + 128];
    bool v6 = strchr(u->host, ':') != NULL;
    int n;

    n = snprintf(req, sizeof(req), "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n",
                 v6 ? "[" : "", u->host, v6 ? "]" : "", (unsigned)u->port, v6 ? "[" : "",
                 u->host, v6 ? "]" : "", (unsigned)u->port);
    if (u->via->auth_value[0] != '\0' && n > 0 && (size_t)n < sizeof(req))
        n += snprintf(req + n, sizeof(req) - (size_t)n, "Proxy-Authorization: %s\r\n",
                      u->via->auth_value);
    if (n > 0 && (size_t)n < sizeof(req))
        n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    if (n <= 0 || (size_t)n >= sizeof(req) || leg_tx_room(&c->up) < (size_t)n)
        return -ENOSPC;
    memcpy(buf_tail(&c->up.tx), req, (size_t)n);
    buf_commit(&c->up.tx, (size_t)n);
    return 0;
}

/* upstream_connect_next starts connecting to address addr_idx and, if that cannot even
 * start, to the ones after it. Returns 0 (a connect is in flight), or the last -errno. */
static int upstream_connect_next(struct conn *c, int err)
{
    struct upstream *u = &c->upstream;
    struct sockaddr_storage ss;
    const struct sockaddr *sa;
    socklen_t salen;

    for (; (sa = dns_req_addr(&u->dns, u->addr_idx, &salen)) != NULL; u->addr_idx++) {
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, sa, salen);
        if (ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons(upstream_dial_port(u));
        else
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(upstream_dial_port(u));
        flow_set_server(&c->flow, u->host, (struct sockaddr *)&ss, salen);
        if (upstream_is_self(c, &ss))
            return -ELOOP;
        err = upstream_open(c, (struct sockaddr *)&ss, salen);
        if (err == 0)
            return 0;
    }
    return err;
}

static void upstream_on_dns(struct dns_req *req, int err, const struct sockaddr *sa,
                            socklen_t salen, const char *why)
{
    struct conn *c = (struct conn *)((char *)req - offsetof(struct conn, upstream.dns));
    int e;

    (void)sa; /* dns_req_addr(req, 0) */
    (void)salen;
    c->inflight--;
    if (c->state == CONN_STATE_CLOSED || !c->upstream.dialing) {
        conn_pump(c); /* frees it when nothing else is in flight */
        return;
    }
    if (err) {
        upstream_done(c, -EHOSTUNREACH, why != NULL ? why : "DNS lookup failed");
    } else {
        c->upstream.addr_idx = 0;
        e = upstream_connect_next(c, -EHOSTUNREACH);
        if (e)
            upstream_done(c, e, upstream_errno_why(e));
    }
    conn_pump(c);
}

void upstream_dial(struct conn *c)
{
    struct upstream *u = &c->upstream;
    int err;

    if (c->up.fd >= 0)
        conn_up_drop(c);
    u->dns.done = upstream_on_dns;
    u->t_start = flow_now_ns();
    u->dialing = true;
    u->via_wait = false;
    err = dns_resolve(&c->w->dns, &u->dns, upstream_dial_host(u));
    if (err) {
        upstream_done(c, err, "cannot start the DNS lookup");
        return;
    }
    c->inflight++;
}

static void upstream_on_connect(struct ring_op *op, int res, uint32_t flags)
{
    struct conn *c = (struct conn *)((char *)op - offsetof(struct conn, upstream.connect_op));
    struct upstream *u = &c->upstream;

    (void)flags;
    if (c->state == CONN_STATE_CLOSED) {
        conn_pump(c); /* frees it when nothing else is in flight */
        return;
    }
    if (c->up.fd < 0) {
        /* a dropped upstream's connect; a new one may be waiting for it to end */
        if (u->retry) {
            int err;

            u->retry = false;
            err = upstream_open(c, (struct sockaddr *)&c->up.addr, c->up.addrlen);
            if (err)
                upstream_done(c, err, upstream_errno_why(err));
        }
        conn_pump(c);
        return;
    }
    if (!u->dialing) {
        conn_pump(c); /* the dial already ended (timed out): ignore */
        return;
    }
    if (res < 0) {
        conn_up_drop(c);
        /* the name has more addresses (an AAAA after a refused A, ...): try the next one */
        if (res != -ECANCELED && dns_req_addr(&u->dns, u->addr_idx + 1, &(socklen_t){0})) {
            log_debug("conn %llu: %s:%u address %u failed (%s), trying the next",
                      (unsigned long long)c->id, u->host, u->port, u->addr_idx,
                      upstream_errno_why(res));
            u->addr_idx++;
            res = upstream_connect_next(c, res);
            if (res == 0) {
                conn_pump(c);
                return;
            }
        }
        upstream_done(c, res, upstream_errno_why(res));
        conn_pump(c);
        return;
    }
    c->up.connected = true;
    c->flow.connect_ns = (int64_t)(flow_now_ns() - u->t_connect);
    if (u->via != NULL && !u->via_plain) {
        res = upstream_via_send(c);
        if (res == 0)
            u->via_wait = true; /* upstream_step reads the answer */
        else
            upstream_done(c, res, "cannot send CONNECT to the upstream proxy");
        conn_pump(c);
        return;
    }
    upstream_done(c, 0, NULL);
    conn_pump(c);
}

bool upstream_step(struct conn *c)
{
    struct upstream *u = &c->upstream;
    struct h1_header headers[H1_MAX_HEADERS];
    struct h1_response resp;
    struct buf *in = &c->up.rx; /* the answer comes in the clear, before any TLS */
    const char *why = NULL;
    char msg[TLS_CONN_WHY_MAX + TARGET_HOST_MAX];
    ssize_t n;

    if (!u->via_wait)
        return false;
    n = buf_used(in) > 0 ? h1_parse_response(buf_head(in), buf_used(in),
                                             c->w->cfg->max_header_size, &resp, headers,
                                             H1_MAX_HEADERS, &why)
                         : -EAGAIN;
    if (n == -EAGAIN && !c->up.failed && !c->up.rd_eof)
        return false;
    if (n == -EAGAIN) {
        snprintf(msg, sizeof(msg), "the upstream proxy %s:%u closed the connection before "
                 "answering CONNECT", u->via->host, u->via->port);
    } else if (n < 0) {
        snprintf(msg, sizeof(msg), "the upstream proxy %s:%u sent a malformed answer: %s",
                 u->via->host, u->via->port, why != NULL ? why : "?");
    } else if (resp.status < 200 || resp.status > 299) {
        /* the next hop's refusal, e.g. "407 Proxy Authentication Required", in the reason */
        snprintf(msg, sizeof(msg), "the upstream proxy %s:%u refused CONNECT %s:%u: %d %.*s",
                 u->via->host, u->via->port, u->host, u->port, resp.status,
                 (int)(resp.reason_len > 80 ? 80 : resp.reason_len), resp.reason);
    } else {
        buf_consume(in, (size_t)n); /* what follows is the target's */
        upstream_done(c, 0, NULL);
        return true;
    }
    conn_up_drop(c);
    upstream_done(c, -EPROTO, msg);
    return true;
}

bool upstream_check_timeout(struct conn *c, uint64_t now)
{
    struct upstream *u = &c->upstream;

    if (!u->dialing || now - u->t_start < (uint64_t)c->w->cfg->connect_timeout_s * 1000000000ull)
        return false;
    conn_up_drop(c);
    upstream_done(c, -ETIMEDOUT, "connect timeout");
    return true;
}

int upstream_tls_h1_start(struct conn *c, const char **why)
{
    static const uint8_t alpn_h1[] = "\x08http/1.1";
    const char *host = c->upstream.host;
    int err;

    /* RFC 6066 §3: no SNI for an IP literal; the certificate is verified for it all the same */
    err = tls_conn_init_client_addr(&c->up.tls, &c->w->tls, c->upstream.host_is_ip ? NULL : host,
                                    host, c->upstream.port, alpn_h1, sizeof(alpn_h1) - 1,
                                    (const struct sockaddr *)&c->up.addr, c->up.addrlen);
    if (err) {
        log_warn("conn %llu: cannot start TLS to %s: %s", (unsigned long long)c->id, host,
                 strerror(-err));
        *why = "cannot start the upstream TLS handshake";
        return err;
    }
    c->up.tls_on = true;
    c->upstream.t_tls = flow_now_ns();
    return 0;
}

int upstream_tls_step(struct conn *c, const char **why)
{
    int r = transport_handshake(&c->up, why);

    if (r == -EAGAIN) {
        if (!c->up.failed && !c->up.rd_eof)
            return -EAGAIN;
        *why = "upstream closed the connection during the TLS handshake";
        return -ECONNRESET;
    }
    if (r != 0 && *why == NULL)
        *why = "upstream TLS handshake failed";
    return r;
}

bool upstream_tls_timed_out(const struct conn *c, uint64_t now, const char **why)
{
    if (now - c->upstream.t_tls < (uint64_t)c->w->cfg->handshake_timeout_s * 1000000000ull)
        return false;
    *why = "upstream TLS handshake timed out";
    return true;
}

void upstream_note_tls(struct conn *c, bool as_record_tls)
{
    char subj[FLOW_CERT_NAME_MAX], iss[FLOW_CERT_NAME_MAX], alpn[TLS_CTX_ALPN_MAX];

    c->flow.tls_ns = (int64_t)(flow_now_ns() - c->upstream.t_tls);
    if (as_record_tls) {
        tls_conn_alpn(&c->up.tls, alpn, sizeof(alpn));
        flow_set_tls(&c->flow, c->upstream.host_is_ip ? "" : c->upstream.host, alpn,
                     tls_conn_version(&c->up.tls));
    }
    tls_conn_peer_subject(&c->up.tls, subj, sizeof(subj));
    tls_conn_peer_issuer(&c->up.tls, iss, sizeof(iss));
    flow_set_cert(&c->flow, subj, iss);
    worker_count(c->w, MSG_STAT_UP_TLS);
    if (tls_conn_is_session_reused(&c->up.tls))
        worker_count(c->w, MSG_STAT_UP_RESUMED);
}
