/* mb_conn.c - one mitmd-bench client connection (TCP, CONNECT, TLS, HTTP/1.1; HTTP/2 in mb_h2).
 * Owns the per-connection state machine, its socket and SSL object, and the mapping of
 * BoringSSL results (mb_conn_tls_classify is the only caller of SSL_get_error). Called by
 * the owning bench thread only. Never blocks; allocates only the SSL object per
 * connection. */
#include "bench/mb_conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "shared/target_parse.h"

/* Work done per mb_conn_drive call before yielding to other connections. */
#define MB_CONN_DRIVE_BUDGET 64

static const uint8_t alpn_http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
static const uint8_t alpn_h2[] = {2, 'h', '2'};

static const char *const state_names[MB_CONN_STATE_COUNT] = {
    [MB_CONN_STATE_CLOSED] = "closed",
    [MB_CONN_STATE_CONNECTING] = "connecting",
    [MB_CONN_STATE_PROXY_SEND] = "proxy-send",
    [MB_CONN_STATE_PROXY_RECV] = "proxy-recv",
    [MB_CONN_STATE_TLS_HANDSHAKE] = "tls-handshake",
    [MB_CONN_STATE_IDLE] = "idle",
    [MB_CONN_STATE_REQ_SEND] = "request-send",
    [MB_CONN_STATE_RESP_RECV] = "response-recv",
    [MB_CONN_STATE_H2] = "http2",
};

const char *mb_conn_state_name(enum mb_conn_state s)
{
    if ((unsigned)s >= MB_CONN_STATE_COUNT)
        return "invalid";
    return state_names[s];
}

uint64_t mb_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void set_state(struct mb_conn *c, enum mb_conn_state next) { c->state = next; }

int mb_conn_init(struct mb_conn *c, struct mb_conn_env *env, unsigned id)
{
    memset(c, 0, sizeof(*c));
    c->env = env;
    c->id = id;
    c->fd = -1;
    buf_init(&c->rx, c->rx_store, sizeof(c->rx_store));
    buf_init(&c->tx, c->tx_store, sizeof(c->tx_store));
    set_state(c, MB_CONN_STATE_CLOSED);
    if (env->opts->h2)
        return mb_h2_init(&c->h2, c, env->opts->streams);
    return 0;
}

void mb_conn_dispose(struct mb_conn *c)
{
    mb_conn_close(c);
    mb_h2_dispose(&c->h2);
}

/* conn_limit_reached: the connection has been given all the requests it may carry. */
static bool conn_limit_reached(const struct mb_conn *c)
{
    unsigned rpc = c->env->opts->reqs_per_conn;

    return rpc != 0 && c->issued_on_conn >= rpc;
}

bool mb_conn_is_ready(const struct mb_conn *c)
{
    if (c->env->opts->h2) {
        if (c->state == MB_CONN_STATE_CLOSED)
            return c->h2.used == 0;
        return mb_h2_has_room(&c->h2) && !conn_limit_reached(c);
    }
    return (c->state == MB_CONN_STATE_IDLE || c->state == MB_CONN_STATE_CLOSED) && !c->req_pending;
}

bool mb_conn_is_closed(const struct mb_conn *c) { return c->state == MB_CONN_STATE_CLOSED; }

bool mb_conn_is_idle(const struct mb_conn *c)
{
    if (c->env->opts->h2)
        return c->h2.used == 0 &&
               (c->state == MB_CONN_STATE_CLOSED || c->state == MB_CONN_STATE_H2);
    return mb_conn_is_ready(c);
}

/* close_socket frees the SSL object and socket; `clean` sends a close_notify first. With
 * --h2, requests queued for a retry survive when `keep_queued` is set. */
static void close_socket(struct mb_conn *c, bool clean, bool keep_queued)
{
    if (c->ssl != NULL) {
        if (clean)
            (void)SSL_shutdown(c->ssl); /* best effort, non-blocking: result ignored */
        SSL_free(c->ssl);
        c->ssl = NULL;
        ERR_clear_error();
    }
    if (c->fd != -1) {
        close(c->fd); /* also removes it from the epoll set */
        c->fd = -1;
    }
    buf_init(&c->rx, c->rx_store, sizeof(c->rx_store));
    c->req_pending = false;
    if (c->env->opts->h2)
        mb_h2_reset(&c->h2, keep_queued);
    set_state(c, MB_CONN_STATE_CLOSED);
}

/* release closes `c` and drops everything it carried. */
static void release(struct mb_conn *c, bool clean) { close_socket(c, clean, false); }

void mb_conn_close(struct mb_conn *c) { release(c, false); }

/* fail counts one error for `c` and closes it. An error that belongs to a request counts
 * if that request was issued after warm-up; one on an idle connection counts if the
 * thread is recording now. */
static void fail(struct mb_conn *c, enum mb_err_kind kind, const char *what, const char *why)
{
    struct mb_stats *s = c->env->stats;
    bool saved = s->recording;

    if (c->state >= MB_CONN_STATE_CONNECTING && c->state <= MB_CONN_STATE_TLS_HANDSHAKE) {
        /* The connection never came up: the thread loop backs off on these. */
        c->env->setup_failed++;
        snprintf(c->env->setup_why, sizeof(c->env->setup_why), "%s: %s: %s", c->host, what, why);
    }
    /* HTTP/2: one error per request in flight; none in flight counts like an idle h1. */
    if (c->env->opts->h2 && mb_h2_fail_all(&c->h2, kind, what, why) != 0) {
        release(c, false);
        return;
    }
    if (!c->env->opts->h2 && (c->req_pending || c->state != MB_CONN_STATE_IDLE))
        s->recording = c->req_measured;
    mb_stats_error(s, kind, mb_now_ns(), "%s: %s: %s", c->host, what, why);
    s->recording = saved;
    release(c, false);
}

/* mb_conn_tls_classify maps an SSL_* result `ret` to 0 (progress), -EAGAIN (wait for the
 * socket), -EPIPE (peer closed: close_notify or EOF) or another -errno with `*why` set. */
static int mb_conn_tls_classify(struct mb_conn *c, int ret, const char **why)
{
    int err = SSL_get_error(c->ssl, ret);
    uint32_t e;

    switch (err) {
    case SSL_ERROR_NONE:
        return 0;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        *why = "peer sent close_notify";
        return -EPIPE;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (ret == 0 || errno == 0) {
            *why = "unexpected EOF";
            return -EPIPE;
        }
        *why = strerror(errno);
        return errno == EPIPE || errno == ECONNRESET ? -ECONNRESET : -EIO;
    case SSL_ERROR_SSL:
        e = ERR_peek_last_error();
        if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)
            *why = X509_verify_cert_error_string(SSL_get_verify_result(c->ssl));
        else
            *why = ERR_reason_error_string(e);
        if (*why == NULL)
            *why = "TLS error";
        ERR_clear_error();
        return -EPROTO;
    default:
        ERR_clear_error();
        *why = "unexpected SSL_get_error result";
        return -EPROTO;
    }
}

/* build_request_prefix writes the request head, without the final CRLF, into tx[]. */
static int build_request_prefix(struct mb_conn *c)
{
    const struct mb_opts *o = c->env->opts;
    bool v6 = strchr(c->host, ':') != NULL;
    char port[8] = "";
    char length[48] = "";
    int n;

    if (o->origin.port != 443)
        snprintf(port, sizeof(port), ":%u", (unsigned)o->origin.port);
    if (o->body_size > 0)
        snprintf(length, sizeof(length), "Content-Length: %llu\r\n",
                 (unsigned long long)o->body_size);
    n = snprintf((char *)c->tx_store, sizeof(c->tx_store),
                 "%s %s HTTP/1.1\r\nHost: %s%s%s%s\r\nUser-Agent: mitmd-bench/" MITMD_VERSION
                 "\r\nAccept: */*\r\n%s",
                 o->body_size > 0 ? "POST" : "GET", o->path, v6 ? "[" : "", c->host, v6 ? "]" : "",
                 port, length);
    /* Leave room for "Connection: close\r\n\r\n". */
    if (n < 0 || (size_t)n + 32 > sizeof(c->tx_store))
        return -EMSGSIZE;
    c->head_prefix_len = (size_t)n;
    return 0;
}

/* start_request fills tx[] for the next request and switches to sending it. */
static void start_request(struct mb_conn *c)
{
    const struct mb_opts *o = c->env->opts;
    bool last = o->reqs_per_conn != 0 && c->reqs_done + 1 >= o->reqs_per_conn;
    static const char close_tail[] = "Connection: close\r\n\r\n";
    size_t first_body;

    /* The head prefix stays in tx_store between requests; only its tail changes. */
    buf_init(&c->tx, c->tx_store, sizeof(c->tx_store));
    buf_commit(&c->tx, c->head_prefix_len);
    if (last)
        buf_append(&c->tx, close_tail, sizeof(close_tail) - 1);
    else
        buf_append(&c->tx, "\r\n", 2);
    first_body = o->body_size < c->env->body_chunk ? (size_t)o->body_size : c->env->body_chunk;
    first_body = buf_append(&c->tx, c->env->body, first_body);
    c->body_left = o->body_size - first_body;
    mb_resp_init(&c->resp, false);
    c->req_pending = false;
    c->resp_seen = false;
    set_state(c, MB_CONN_STATE_REQ_SEND);
}

static void tls_start(struct mb_conn *c)
{
    const struct mb_opts *o = c->env->opts;
    struct mb_conn_env *env = c->env;
    const char *why = "SSL_new failed";

    /* tx[] held the CONNECT request until now; from here on it holds the request head. */
    if (build_request_prefix(c) != 0) {
        fail(c, MB_ERR_PROTOCOL, "request", "request head too long");
        return;
    }
    c->ssl = SSL_new(env->ssl_ctx);
    if (c->ssl == NULL)
        goto out_fail;
    SSL_set_app_data(c->ssl, c);
    if (SSL_set_fd(c->ssl, c->fd) != 1)
        goto out_fail;
    if (!c->host_is_ip && SSL_set_tlsext_host_name(c->ssl, c->host) != 1) {
        why = "cannot set SNI";
        goto out_fail;
    }
    if (!o->insecure) {
        int ok = c->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host)
                               : SSL_set1_host(c->ssl, c->host);
        if (ok != 1) {
            why = "cannot set the name to verify";
            goto out_fail;
        }
    }
    if ((o->h2 ? SSL_set_alpn_protos(c->ssl, alpn_h2, sizeof(alpn_h2))
               : SSL_set_alpn_protos(c->ssl, alpn_http11, sizeof(alpn_http11))) != 0) {
        why = "cannot set ALPN"; /* SSL_set_alpn_protos returns 0 on success */
        goto out_fail;
    }
    if (o->resume && env->session != NULL && env->session_host == c->host_idx &&
        SSL_set_session(c->ssl, env->session) != 1) {
        why = "cannot set the session to resume";
        goto out_fail;
    }
    SSL_set_connect_state(c->ssl);
    set_state(c, MB_CONN_STATE_TLS_HANDSHAKE);
    return;
out_fail:
    ERR_clear_error();
    fail(c, MB_ERR_TLS, "tls setup", why);
}

int mb_conn_new_session(SSL *ssl, SSL_SESSION *session)
{
    struct mb_conn *c = SSL_get_app_data(ssl);

    if (c == NULL)
        return 0; /* not ours: BoringSSL keeps ownership */
    SSL_SESSION_free(c->env->session);
    c->env->session = session;
    c->env->session_host = c->host_idx;
    return 1;
}

/* socks5_request queues the greeting (no authentication) and, without waiting for the method
 * reply, the CONNECT request with the host name (RFC 1928 §3-4; the proxy resolves it). */
static void socks5_request(struct mb_conn *c)
{
    const struct mb_opts *o = c->env->opts;
    size_t hl = strlen(c->host), n = 0;
    uint8_t *p = c->tx_store;

    if (hl == 0 || hl > 255 || 3 + 7 + hl > sizeof(c->tx_store)) {
        fail(c, MB_ERR_PROXY, "SOCKS5", "host name longer than 255 bytes");
        return;
    }
    p[n++] = 5; /* VER */
    p[n++] = 1; /* NMETHODS */
    p[n++] = 0; /* NO AUTHENTICATION REQUIRED */
    p[n++] = 5; /* VER */
    p[n++] = 1; /* CMD: CONNECT */
    p[n++] = 0; /* RSV */
    p[n++] = 3; /* ATYP: DOMAINNAME */
    p[n++] = (uint8_t)hl;
    memcpy(p + n, c->host, hl);
    n += hl;
    p[n++] = (uint8_t)(o->origin.port >> 8);
    p[n++] = (uint8_t)(o->origin.port & 0xff);
    buf_init(&c->tx, c->tx_store, sizeof(c->tx_store));
    buf_commit(&c->tx, n);
    set_state(c, MB_CONN_STATE_PROXY_SEND);
}

/* socks5_reply checks the method reply and the CONNECT reply at the front of rx. Returns 1
 * when they are complete and consumed, 0 to read more, -1 with `*why` on a refusal. */
static int socks5_reply(struct mb_conn *c, const char **why)
{
    const uint8_t *p = buf_head(&c->rx);
    size_t used = buf_used(&c->rx), need = 2 + 5;
    static const char *const reps[] = {
        "succeeded", "general SOCKS server failure", "connection not allowed by ruleset",
        "network unreachable", "host unreachable", "connection refused", "TTL expired",
        "command not supported", "address type not supported",
    };

    if (used < 2)
        return 0;
    if (p[0] != 5) {
        *why = "not a SOCKS5 reply (is --proxy an HTTP proxy?)";
        return -1;
    }
    if (p[1] != 0) {
        *why = "proxy refused the method (no authentication)";
        return -1;
    }
    if (used < need)
        return 0;
    if (p[2] != 5) {
        *why = "not a SOCKS5 reply to the CONNECT";
        return -1;
    }
    if (p[3] != 0) {
        *why = p[3] < sizeof(reps) / sizeof(reps[0]) ? reps[p[3]] : "proxy refused the request";
        return -1;
    }
    /* BND.ADDR: IPv4 4, IPv6 16, name 1 + its length; then BND.PORT 2 */
    need = 2 + 4 + (p[5] == 1 ? 4 : p[5] == 4 ? 16 : 1 + (size_t)p[6]) + 2;
    if (used < need)
        return 0;
    buf_consume(&c->rx, need);
    return 1;
}

static void after_connect(struct mb_conn *c)
{
    const struct mb_opts *o = c->env->opts;
    bool v6 = strchr(c->host, ':') != NULL;
    int n;

    if (c->env->stats->recording)
        c->env->stats->connects++;
    if (!o->have_proxy) {
        tls_start(c);
        return;
    }
    if (o->proxy_socks5) {
        socks5_request(c);
        return;
    }
    /* RFC 9110 §9.3.6: the target is authority-form, Host repeats it. */
    n = snprintf((char *)c->tx_store, sizeof(c->tx_store),
                 "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n"
                 "User-Agent: mitmd-bench/" MITMD_VERSION "\r\n\r\n",
                 v6 ? "[" : "", c->host, v6 ? "]" : "", (unsigned)o->origin.port, v6 ? "[" : "",
                 c->host, v6 ? "]" : "", (unsigned)o->origin.port);
    if (n < 0 || (size_t)n >= sizeof(c->tx_store)) {
        fail(c, MB_ERR_PROXY, "CONNECT", "request too long");
        return;
    }
    buf_init(&c->tx, c->tx_store, sizeof(c->tx_store));
    buf_commit(&c->tx, (size_t)n);
    mb_resp_init(&c->resp, true);
    set_state(c, MB_CONN_STATE_PROXY_SEND);
}

/* open_socket starts the TCP connect for a new connection. */
static int open_socket(struct mb_conn *c, uint64_t now_ns)
{
    struct mb_conn_env *env = c->env;
    const struct mb_opts *o = env->opts;
    const struct mb_endpoint *dst = o->have_proxy ? &o->proxy : &o->origin;
    struct epoll_event ev;
    int one = 1, rc;

    c->host_idx = (unsigned)((env->host_base + env->host_seq * env->host_stride) % o->hosts);
    env->host_seq++;
    if (mb_opts_format_host(o->host_pattern, c->host_idx, c->host, sizeof(c->host)) != 0) {
        env->setup_failed++;
        snprintf(env->setup_why, sizeof(env->setup_why), "host name too long");
        mb_stats_error(env->stats, MB_ERR_CONNECT, now_ns, "host name too long");
        return -ENAMETOOLONG;
    }
    c->host_is_ip = target_host_is_ip(c->host, strlen(c->host));
    c->reqs_done = 0;
    c->issued_on_conn = 0;
    c->opened_ns = now_ns;
    c->progress_ns = now_ns;
    c->fd = socket(dst->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd == -1) {
        rc = -errno;
        goto out_error;
    }
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1) {
        rc = -errno;
        goto out_error;
    }
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;
    ev.data.ptr = c;
    if (epoll_ctl(env->epfd, EPOLL_CTL_ADD, c->fd, &ev) == -1) {
        rc = -errno;
        goto out_error;
    }
    set_state(c, MB_CONN_STATE_CONNECTING);
    if (connect(c->fd, (const struct sockaddr *)&dst->addr, dst->addr_len) == 0) {
        after_connect(c);
        return 0;
    }
    if (errno == EINPROGRESS)
        return 0;
    rc = -errno;
out_error:
    env->setup_failed++;
    snprintf(env->setup_why, sizeof(env->setup_why), "%s: connect to %s %s:%u: %s", c->host,
             o->have_proxy ? "proxy" : "origin", dst->host, (unsigned)dst->port, strerror(-rc));
    mb_stats_error(env->stats, MB_ERR_CONNECT, now_ns, "connect to %s:%u: %s", dst->host,
                   (unsigned)dst->port, strerror(-rc));
    release(c, false);
    return rc;
}

/* issue_h2 reserves a stream for the request, opening the connection first if needed. */
static int issue_h2(struct mb_conn *c, uint64_t start_ns, uint64_t now_ns)
{
    const char *why = NULL;
    bool measured = c->env->stats->recording;
    int rc;

    if (c->state == MB_CONN_STATE_CLOSED) {
        c->req_measured = measured; /* a failure to open counts against this request */
        rc = open_socket(c, now_ns);
        if (rc != 0)
            return rc;
        if (c->state == MB_CONN_STATE_CLOSED)
            return 0; /* failed while setting up TLS: counted, and ready again */
    }
    c->progress_ns = now_ns;
    c->issued_on_conn++;
    rc = mb_h2_submit(&c->h2, start_ns, measured, &why);
    if (rc == -EPROTO)
        fail(c, MB_ERR_PROTOCOL, "submitting request", why); /* counts this request too */
    return rc == -ENOBUFS ? rc : 0;
}

int mb_conn_issue(struct mb_conn *c, uint64_t start_ns, uint64_t now_ns)
{
    int rc;

    if (c->env->opts->h2)
        return issue_h2(c, start_ns, now_ns);
    c->req_start_ns = start_ns;
    c->req_measured = c->env->stats->recording;
    c->req_retried = false;
    c->progress_ns = now_ns;
    if (c->state == MB_CONN_STATE_IDLE) {
        c->issued_on_conn++;
        start_request(c);
        return 0;
    }
    c->req_pending = true;
    c->issued_on_conn++;
    rc = open_socket(c, now_ns); /* failures count under the current recording flag */
    if (rc != 0)
        c->req_pending = false;
    return rc;
}

/* write_out writes tx[] and then the body; returns 0 when all is written. */
static int write_out(struct mb_conn *c, bool tls, const char **why)
{
    while (buf_used(&c->tx) > 0 || c->body_left > 0) {
        bool from_tx = buf_used(&c->tx) > 0;
        const uint8_t *p;
        size_t n;
        int r;

        if (from_tx) {
            p = buf_head(&c->tx);
            n = buf_used(&c->tx);
        } else {
            p = c->env->body;
            n = c->body_left < c->env->body_chunk ? (size_t)c->body_left : c->env->body_chunk;
        }
        if (tls) {
            r = SSL_write(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
            if (r <= 0) {
                int rc = mb_conn_tls_classify(c, r, why);

                return rc == 0 ? -EAGAIN : rc;
            }
        } else {
            ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);

            if (w == -1) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return -EAGAIN;
                *why = strerror(errno);
                return -errno;
            }
            r = (int)w;
        }
        if (c->env->stats->recording)
            c->env->stats->bytes_tx += (uint64_t)r;
        if (from_tx)
            buf_consume(&c->tx, (size_t)r);
        else
            c->body_left -= (uint64_t)r;
    }
    return 0;
}

/* read_in appends what the socket has to rx; returns bytes read, -EAGAIN, -EPIPE on EOF,
 * -EMSGSIZE when rx is full, or another -errno. */
static int read_in(struct mb_conn *c, bool tls, const char **why)
{
    size_t room = buf_room(&c->rx);
    int r;

    if (room == 0) {
        *why = "response head larger than the receive buffer";
        return -EMSGSIZE;
    }
    if (room > INT32_MAX)
        room = INT32_MAX;
    if (tls) {
        r = SSL_read(c->ssl, buf_tail(&c->rx), (int)room);
        if (r <= 0) {
            int rc = mb_conn_tls_classify(c, r, why);

            return rc == 0 ? -EAGAIN : rc;
        }
    } else {
        ssize_t n = recv(c->fd, buf_tail(&c->rx), room, 0);

        if (n == 0) {
            *why = "proxy closed the connection";
            return -EPIPE;
        }
        if (n == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return -EAGAIN;
            *why = strerror(errno);
            return -errno;
        }
        r = (int)n;
    }
    buf_commit(&c->rx, (size_t)r);
    return r;
}

/* finish_response counts the completed response and decides whether to keep `c`. */
static void finish_response(struct mb_conn *c)
{
    struct mb_stats *s = c->env->stats;
    const struct mb_opts *o = c->env->opts;
    uint64_t now = mb_now_ns();

    c->reqs_done++;
    if (c->resp.status == 200) {
        if (c->req_measured) {
            s->requests++;
            mb_hist_record(&s->latency, now - c->req_start_ns);
        }
    } else {
        bool saved = s->recording;

        s->recording = c->req_measured;
        mb_stats_error(s, MB_ERR_STATUS, now, "%s: %s %s: status %d", c->host,
                       o->body_size > 0 ? "POST" : "GET", o->path, c->resp.status);
        s->recording = saved;
    }
    if (buf_used(&c->rx) != 0) {
        fail(c, MB_ERR_PROTOCOL, "response", "unexpected bytes after the response");
        return;
    }
    if (!c->resp.keep_alive || (o->reqs_per_conn != 0 && c->reqs_done >= o->reqs_per_conn)) {
        release(c, true);
        return;
    }
    set_state(c, MB_CONN_STATE_IDLE);
}

/* handshake_done counts the handshake and checks the negotiated protocol. */
static int handshake_done(struct mb_conn *c, const char **why)
{
    struct mb_stats *s = c->env->stats;
    const uint8_t *proto;
    unsigned proto_len;

    SSL_get0_alpn_selected(c->ssl, &proto, &proto_len);
    if (c->env->opts->h2 && (proto_len != 2 || memcmp(proto, "h2", 2) != 0)) {
        *why = "server did not select ALPN h2";
        return -EPROTO;
    }
    if (!c->env->opts->h2 && proto_len != 0 &&
        (proto_len != 8 || memcmp(proto, "http/1.1", 8) != 0)) {
        *why = "server selected an ALPN protocol other than http/1.1";
        return -EPROTO;
    }
    if (s->recording) {
        s->handshakes++;
        if (SSL_session_reused(c->ssl))
            s->resumed++;
        mb_hist_record(&s->handshake, mb_now_ns() - c->opened_ns);
    }
    return 0;
}

/* h2_reconnect closes a finished session; requests refused unprocessed by it go out again
 * on a new connection at once. Returns like step. */
static int h2_reconnect(struct mb_conn *c, bool clean)
{
    unsigned queued = mb_h2_queued(&c->h2);

    close_socket(c, clean, queued > 0);
    if (queued == 0)
        return 1;
    if (open_socket(c, mb_now_ns()) != 0 || c->state == MB_CONN_STATE_CLOSED) {
        mb_h2_reset(&c->h2, false); /* the failure was counted once, for all of them */
        return 1;
    }
    c->issued_on_conn = queued;
    /* Wait for the new socket's own events: the ones being handled were for the old one. */
    return -EAGAIN;
}

/* step_h2 writes what the HTTP/2 session has queued, then reads and feeds it what the
 * server sent; it returns like step. */
static int step_h2(struct mb_conn *c)
{
    struct mb_stats *s = c->env->stats;
    const char *why = NULL;
    const uint8_t *p;
    ssize_t n;
    int rc, r;

    for (;;) {
        n = mb_h2_next_out(&c->h2, &p, &why);
        if (n < 0) {
            fail(c, MB_ERR_PROTOCOL, "http/2 send", why);
            return 1;
        }
        if (n == 0)
            break;
        r = SSL_write(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
        if (r <= 0) {
            rc = mb_conn_tls_classify(c, r, &why);
            if (rc == -EAGAIN || rc == 0)
                break; /* EPOLLOUT will come; reading may still make progress */
            fail(c, rc == -EPROTO ? MB_ERR_TLS : MB_ERR_IO, "sending", why);
            return 1;
        }
        if (s->recording)
            s->bytes_tx += (uint64_t)r;
        mb_h2_sent(&c->h2, (size_t)r);
    }
    rc = read_in(c, true, &why);
    if (rc == -EAGAIN) {
        if (mb_h2_is_finished(&c->h2) || (c->h2.used == 0 && conn_limit_reached(c)))
            return h2_reconnect(c, true);
        return -EAGAIN;
    }
    if (rc == -EPIPE) {
        if (c->h2.used == mb_h2_queued(&c->h2))
            return h2_reconnect(c, false); /* closed with nothing in flight: not an error */
        fail(c, MB_ERR_PROTOCOL, "http/2", "connection closed with requests in flight");
        return 1;
    }
    if (rc < 0) {
        fail(c, rc == -EPROTO ? MB_ERR_TLS : MB_ERR_IO, "reading", why);
        return 1;
    }
    if (s->recording)
        s->bytes_rx += (uint64_t)rc;
    rc = mb_h2_recv(&c->h2, buf_head(&c->rx), buf_used(&c->rx), &why);
    buf_consume(&c->rx, buf_used(&c->rx));
    if (rc == 0)
        rc = mb_h2_submit_queued(&c->h2, &why); /* refused streams, if the session goes on */
    if (rc != 0) {
        fail(c, MB_ERR_PROTOCOL, "http/2", why);
        return 1;
    }
    return 0;
}

/* retry_request sends the request in flight again on a new connection when the reused
 * keep-alive connection it went out on closed (EOF or reset) before any byte of its response:
 * the server closed an idle connection as the request crossed (RFC 9112 §9.3.1 lets a client
 * retry an idempotent request then, as curl and browsers do). Only GETs (no --body), only on
 * a connection that had served a response, only once; counted in `retried`. Returns true if
 * the request went out again (or failed to open a connection, counted as a connect error),
 * false if the failure is the request's own and must be counted by the caller. */
static bool retry_request(struct mb_conn *c)
{
    uint64_t start_ns = c->req_start_ns;
    bool measured = c->req_measured;
    uint64_t now = mb_now_ns();

    if (c->env->opts->h2 || c->env->opts->body_size > 0 || c->reqs_done == 0 || c->resp_seen ||
        c->req_retried)
        return false;
    close_socket(c, false, false);
    if (measured)
        c->env->stats->retried++;
    c->req_start_ns = start_ns;
    c->req_measured = measured;
    c->req_retried = true;
    c->req_pending = true;
    if (open_socket(c, now) != 0) { /* counted as a connect error; `c` is closed */
        c->req_pending = false;
        return true;
    }
    c->issued_on_conn = 1;
    return true;
}

/* step runs one state's work; returns 0 to continue, -EAGAIN to wait for the socket,
 * or 1 when the connection is ready (idle or closed). Failures close `c`. */
static int step(struct mb_conn *c, uint32_t events)
{
    const char *why = NULL;
    int rc, soerr;
    socklen_t len = sizeof(soerr);
    ssize_t used;

    switch (c->state) {
    case MB_CONN_STATE_CLOSED:
        return 1;
    case MB_CONN_STATE_CONNECTING:
        if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0)
            return -EAGAIN;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
            soerr = errno;
        if (soerr != 0) {
            const struct mb_endpoint *dst =
                c->env->opts->have_proxy ? &c->env->opts->proxy : &c->env->opts->origin;
            char what[MB_OPTS_HOST_MAX + 32];

            snprintf(what, sizeof(what), "connect to %s %s:%u",
                     c->env->opts->have_proxy ? "proxy" : "origin", dst->host, (unsigned)dst->port);
            fail(c, MB_ERR_CONNECT, what, strerror(soerr));
            return 1;
        }
        after_connect(c);
        return c->state == MB_CONN_STATE_CLOSED ? 1 : 0;
    case MB_CONN_STATE_PROXY_SEND:
        rc = write_out(c, false, &why);
        if (rc == -EAGAIN)
            return rc;
        if (rc != 0) {
            fail(c, MB_ERR_PROXY, "sending CONNECT", why);
            return 1;
        }
        set_state(c, MB_CONN_STATE_PROXY_RECV);
        return 0;
    case MB_CONN_STATE_PROXY_RECV:
        rc = read_in(c, false, &why);
        if (rc == -EAGAIN)
            return rc;
        if (rc < 0) {
            fail(c, MB_ERR_PROXY, "reading CONNECT response", why);
            return 1;
        }
        if (c->env->opts->proxy_socks5) {
            rc = socks5_reply(c, &why);
            if (rc <= 0) {
                if (rc < 0)
                    fail(c, MB_ERR_PROXY, "SOCKS5", why);
                return rc < 0 ? 1 : 0;
            }
            if (buf_used(&c->rx) != 0) {
                fail(c, MB_ERR_PROXY, "SOCKS5", "proxy sent bytes before the TLS handshake");
                return 1;
            }
            tls_start(c);
            return c->state == MB_CONN_STATE_CLOSED ? 1 : 0;
        }
        used = mb_resp_feed(&c->resp, buf_head(&c->rx), buf_used(&c->rx), &why);
        if (used < 0) {
            fail(c, MB_ERR_PROXY, "CONNECT response", why);
            return 1;
        }
        buf_consume(&c->rx, (size_t)used);
        if (!mb_resp_is_done(&c->resp))
            return 0;
        if (c->resp.status < 200 || c->resp.status > 299) {
            char msg[48];

            snprintf(msg, sizeof(msg), "proxy answered status %d", c->resp.status);
            fail(c, MB_ERR_PROXY, "CONNECT", msg);
            return 1;
        }
        if (buf_used(&c->rx) != 0) {
            fail(c, MB_ERR_PROXY, "CONNECT", "proxy sent bytes before the TLS handshake");
            return 1;
        }
        tls_start(c);
        return c->state == MB_CONN_STATE_CLOSED ? 1 : 0;
    case MB_CONN_STATE_TLS_HANDSHAKE:
        rc = SSL_do_handshake(c->ssl);
        if (rc != 1) {
            rc = mb_conn_tls_classify(c, rc, &why);
            if (rc == -EAGAIN)
                return rc;
            fail(c, MB_ERR_TLS, "tls handshake", why != NULL ? why : "failed");
            return 1;
        }
        if (handshake_done(c, &why) != 0) {
            fail(c, MB_ERR_TLS, "tls handshake", why);
            return 1;
        }
        c->env->setup_ok++;
        if (c->env->opts->h2) {
            if (mb_h2_open(&c->h2, &why) != 0) {
                fail(c, MB_ERR_PROTOCOL, "http/2 session", why);
                return 1;
            }
            set_state(c, MB_CONN_STATE_H2);
            return 0;
        }
        if (!c->req_pending) {
            set_state(c, MB_CONN_STATE_IDLE);
            return 1;
        }
        start_request(c);
        return 0;
    case MB_CONN_STATE_IDLE:
        /* Process session tickets and notice a server closing an idle connection. */
        rc = read_in(c, true, &why);
        if (rc == -EAGAIN)
            return 1;
        if (rc == -EPIPE) {
            release(c, false);
            return 1;
        }
        if (rc < 0) {
            fail(c, MB_ERR_IO, "idle connection", why);
            return 1;
        }
        fail(c, MB_ERR_PROTOCOL, "idle connection", "server sent unsolicited data");
        return 1;
    case MB_CONN_STATE_REQ_SEND:
        rc = write_out(c, true, &why);
        if (rc == -EAGAIN)
            return rc;
        if (rc != 0) {
            if (rc != -EPROTO && retry_request(c))
                return c->state == MB_CONN_STATE_CLOSED ? 1 : -EAGAIN;
            fail(c, rc == -EPROTO ? MB_ERR_TLS : MB_ERR_IO, "sending request", why);
            return 1;
        }
        set_state(c, MB_CONN_STATE_RESP_RECV);
        return 0;
    case MB_CONN_STATE_RESP_RECV:
        rc = read_in(c, true, &why);
        if (rc == -EAGAIN)
            return rc;
        if (rc == -EPIPE) {
            if (mb_resp_eof(&c->resp, &why) != 0) {
                if (retry_request(c))
                    return c->state == MB_CONN_STATE_CLOSED ? 1 : -EAGAIN;
                fail(c, MB_ERR_PROTOCOL, "response", why);
                return 1;
            }
            c->resp.keep_alive = false;
            finish_response(c);
            return 1;
        }
        if (rc < 0) {
            if (rc != -EPROTO && rc != -EMSGSIZE && retry_request(c))
                return c->state == MB_CONN_STATE_CLOSED ? 1 : -EAGAIN;
            fail(c, rc == -EPROTO ? MB_ERR_TLS : MB_ERR_IO, "reading response", why);
            return 1;
        }
        c->resp_seen = true;
        if (c->env->stats->recording)
            c->env->stats->bytes_rx += (uint64_t)rc;
        used = mb_resp_feed(&c->resp, buf_head(&c->rx), buf_used(&c->rx), &why);
        if (used < 0) {
            fail(c, MB_ERR_PROTOCOL, "response", why);
            return 1;
        }
        buf_consume(&c->rx, (size_t)used);
        if (!mb_resp_is_done(&c->resp))
            return 0;
        finish_response(c);
        return c->state == MB_CONN_STATE_IDLE || c->state == MB_CONN_STATE_CLOSED ? 1 : 0;
    case MB_CONN_STATE_H2:
        return step_h2(c);
    case MB_CONN_STATE_COUNT:
        break;
    }
    return 1;
}

bool mb_conn_drive(struct mb_conn *c, uint32_t events, uint64_t now_ns)
{
    for (unsigned budget = MB_CONN_DRIVE_BUDGET; budget > 0; budget--) {
        enum mb_conn_state before = c->state;
        int rc = step(c, events);

        if (rc == 0 || c->state != before)
            c->progress_ns = now_ns;
        if (rc != 0)
            return false;
    }
    /* Edge-triggered epoll will not report this socket again until it has been drained,
     * so the caller must come back. */
    return true;
}

bool mb_conn_check_timeout(struct mb_conn *c, uint64_t now_ns)
{
    char what[64];

    if (c->state == MB_CONN_STATE_CLOSED || c->state == MB_CONN_STATE_IDLE)
        return false;
    if (c->state == MB_CONN_STATE_H2 && c->h2.used == 0)
        return false;
    if (now_ns - c->progress_ns < c->env->opts->timeout_ns)
        return false;
    snprintf(what, sizeof(what), "no progress in state %s", mb_conn_state_name(c->state));
    fail(c, MB_ERR_TIMEOUT, what, "timeout");
    return true;
}
