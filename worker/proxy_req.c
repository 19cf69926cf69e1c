/* proxy_req.c - see proxy_req.h. */
#include "worker/proxy_req.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "shared/h1_parse.h"
#include "shared/log.h"
#include "shared/target_parse.h"
#include "worker/access.h"
#include "worker/answer.h"
#include "worker/conn.h"
#include "worker/h1_conn.h"
#include "worker/intercept.h"
#include "worker/onboarding.h"
#include "worker/tls_peek.h"
#include "worker/tunnel.h"
#include "worker/worker.h"

static const char proxy_req_established[] = "HTTP/1.1 200 Connection established\r\n\r\n";

/* the body of the 407 (the challenge field is answer_format's) */
static const char proxy_req_auth_body[] =
    "mitmd requires proxy authentication (--proxyauth): send Basic credentials, e.g.\n"
    "  curl --proxy-user USER:PASS -x http://HOST:PORT https://example.com/\n";

enum proxy_req_phase {
    PROXY_REQ_HEAD = 0,   /* reading the proxy request head from the client */
    PROXY_REQ_CONNECTING, /* CONNECT: resolving and connecting the upstream */
    PROXY_REQ_SNIFF,      /* 200 sent: the client's first bytes decide what follows */
};

struct proxy_req {
    enum proxy_req_phase phase;
    uint64_t t_phase; /* the phase began (CLOCK_MONOTONIC ns) */
};

static_assert(sizeof(struct proxy_req) <= CONN_PROTO_STATE_MAX, "fits the protocol state");

static struct proxy_req *proxy_req_of(struct conn *c)
{
    return conn_proto_state(c);
}

static void proxy_req_set_phase(struct conn *c, enum proxy_req_phase next)
{
    struct proxy_req *p = proxy_req_of(c);

    p->phase = next;
    p->t_phase = flow_now_ns();
}

/* proxy_req_flow_request records the parsed first request head of `c` (method, target as
 * sent, version, fields) in its flow, which proxy_req_head began. */
static void proxy_req_flow_request(struct conn *c, const struct h1_request *req)
{
    struct flow *f = &c->flow;

    flow_str_set(f, &f->method, req->method, req->method_len);
    flow_str_set(f, &f->url, req->target, req->target_len);
    flow_str_set(f, &f->req_version, req->minor_version == 0 ? "HTTP/1.0" : "HTTP/1.1", 8);
    for (size_t i = 0; i < req->num_headers; i++)
        if ((access_auth(c->w) == NULL ||
             !h1_header_name_is(&req->headers[i], "Proxy-Authorization")) && /* a secret */
            flow_add_header(f, FLOW_REQUEST, req->headers[i].name, req->headers[i].name_len,
                            req->headers[i].value, req->headers[i].value_len) != 0)
            break;
}

void proxy_req_answer(struct conn *c, int status, const char *why, const char *body)
{
    char msg[ANSWER_MAX + 1024];
    struct flow *f = &c->flow;
    size_t blen = 0;
    ssize_t n = answer_format(msg, sizeof(msg), status, why, NULL, body, &blen);

    if (n > 0)
        (void)conn_queue_client(c, msg, (size_t)n); /* the first bytes on the leg: they fit */
    log_debug("conn %llu: answered %d: %s", (unsigned long long)c->id, status, why);
    if (f->t_start == 0)
        flow_begin(f); /* nothing was parsed: the record still names the client */
    answer_record(f, status, why, blen);
    f->t_response_first = f->t_done = flow_now_ns();
    worker_on_flow(c->w, f);
    flow_next(f);
    conn_close_after_flush(c);
}

/* proxy_req_is_sslv2_hello returns whether `p` starts like an SSLv2-format ClientHello: a
 * two-byte record header with the high bit set, then message type 1 (CLIENT-HELLO). */
static bool proxy_req_is_sslv2_hello(const uint8_t *p, size_t n)
{
    return n >= 3 && (p[0] & 0x80) != 0 && p[2] == 0x01;
}

/* proxy_req_looks_like_http returns whether `p` starts like an HTTP/1 request line (a method
 * token of upper-case letters, then a space): such bytes get the relay's 400 when malformed
 * instead of being tunnelled raw, unrecorded. */
static bool proxy_req_looks_like_http(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n && i < 20 && p[i] >= 'A' && p[i] <= 'Z')
        i++;
    return i > 0 && i < n && p[i] == ' ';
}

/* proxy_req_on_upstream: the CONNECT's eager dial ended. */
static void proxy_req_on_upstream(struct conn *c, int err, const char *why)
{
    char body[TLS_CONN_WHY_MAX + TARGET_HOST_MAX + 64];

    if (proxy_req_of(c)->phase != PROXY_REQ_CONNECTING)
        return;
    if (err) {
        snprintf(body, sizeof(body), "mitmd: cannot connect to %s:%u: %s\n", c->upstream.host,
                 c->upstream.port, why);
        proxy_req_answer(c, 502, why, body);
        return;
    }
    if (conn_queue_client(c, proxy_req_established, sizeof(proxy_req_established) - 1)) {
        conn_close(c);
        return;
    }
    proxy_req_set_phase(c, PROXY_REQ_SNIFF);
}

/* proxy_req_connect handles a parsed CONNECT head of `n` bytes. */
static bool proxy_req_connect(struct conn *c, const struct h1_request *req, ssize_t n)
{
    const char *why = NULL;
    struct target t;

    proxy_req_flow_request(c, req);
    if (!access_check_request(c->w, req->headers, req->num_headers, &why)) {
        log_debug("conn %llu: CONNECT refused: %s", (unsigned long long)c->id, why);
        proxy_req_answer(c, 407, why, proxy_req_auth_body); /* RFC 9110 §15.5.8 */
        return true;
    }
    why = NULL;
    if (target_parse_connect(req->target, req->target_len, &t, &why) != 0 ||
        upstream_set_target(c, t.host, t.host_len, t.port) != 0) {
        char body[256];

        snprintf(body, sizeof(body), "mitmd: bad CONNECT target: %s\n",
                 why != NULL ? why : "invalid");
        proxy_req_answer(c, 400, "bad CONNECT target", body);
        return true;
    }
    buf_consume(&c->cl.rx, (size_t)n);
    flow_set_target(&c->flow, c->upstream.host, c->upstream.port);
    if (onboarding_connect(c)) /* CONNECT mitm.it: no upstream (worker/onboarding.h) */
        return true;
    log_debug("conn %llu: CONNECT %s:%u", (unsigned long long)c->id, c->upstream.host,
              c->upstream.port);
    proxy_req_set_phase(c, PROXY_REQ_CONNECTING);
    upstream_dial(c);
    return true;
}

/* proxy_req_is_connect returns 1 when the bytes in `p` start a CONNECT request line, 0 when
 * they cannot, and -EAGAIN while too few bytes arrived to tell. Blank lines before the
 * request line are skipped (RFC 9112 §2.2). */
static int proxy_req_is_connect(const uint8_t *p, size_t n)
{
    static const char m[] = "CONNECT ";
    size_t i = 0, k;

    while (i < n && (p[i] == '\r' || p[i] == '\n'))
        i++;
    for (k = 0; k < sizeof(m) - 1 && i + k < n; k++)
        if (p[i + k] != (uint8_t)m[k])
            return 0;
    return k == sizeof(m) - 1 ? 1 : -EAGAIN;
}

/* proxy_req_head reads the client's first request head. Only a CONNECT is parsed here; any
 * other first request goes to the HTTP/1.1 relay, which parses it once and forwards an
 * absolute-form request, or answers a malformed or origin-form one (the relay's answers:
 * 400, 431, and the "this is a proxy" 400). */
static bool proxy_req_head(struct conn *c)
{
    struct h1_header headers[H1_MAX_HEADERS];
    struct h1_request req;
    const char *why = NULL;
    struct buf *rx = &c->cl.rx;
    ssize_t n;
    int status, is_connect;

    if (c->cl.failed || (c->cl.rd_eof && buf_used(rx) == 0)) {
        conn_close(c);
        return true;
    }
    if (buf_used(rx) == 0)
        return false;
    is_connect = proxy_req_is_connect(buf_head(rx), buf_used(rx));
    if (is_connect == -EAGAIN && !c->cl.rd_eof)
        return false;
    if (is_connect != 1) {
        if (h1_conn_start_proxy(c) != 0)
            conn_close(c);
        return true;
    }
    if (c->flow.t_start == 0)
        flow_begin(&c->flow); /* the request's first byte: an error answer is recorded */
    n = h1_parse_request(buf_head(rx), buf_used(rx), c->w->cfg->max_header_size, &req, headers,
                         H1_MAX_HEADERS, &why);
    if (n == -EAGAIN) {
        if (buf_used(rx) < rx->cap && !c->cl.rd_eof)
            return false;
        if (c->cl.rd_eof)
            proxy_req_answer(c, 400, "incomplete request head", NULL);
        else
            proxy_req_answer(c, 431, "request head too large", NULL);
        return true;
    }
    if (n < 0) {
        status = h1_err_status(req.err);
        proxy_req_answer(c, status != 0 ? status : 400, why != NULL ? why : "malformed request",
                         NULL);
        return true;
    }
    return proxy_req_connect(c, &req, n);
}

/* proxy_req_sniff decides what follows the 200 from the client's first bytes. */
static bool proxy_req_sniff(struct conn *c)
{
    struct buf *rx = &c->cl.rx;
    struct h1_header headers[H1_MAX_HEADERS];
    struct h1_request req;
    const char *why = NULL;
    char sni[TLS_CONN_NAME_MAX];
    ssize_t n;

    if (c->cl.failed || (c->cl.rd_eof && buf_used(rx) == 0) || c->up.failed) {
        conn_close(c);
        return true;
    }
    if (buf_used(rx) == 0) {
        if (buf_used(&c->up.rx) > 0 || c->up.rd_eof) {
            tunnel_start(c, "passthrough (the server spoke first)"); /* not HTTP */
            return true;
        }
        return false;
    }
    if (tls_peek_is_client_hello(buf_head(rx), buf_used(rx))) {
        if (worker_has_host_rules(c->w)) {
            n = tls_peek_client_hello_sni(buf_head(rx), buf_used(rx), sni, sizeof(sni));
            if (n == -EAGAIN && buf_used(rx) < rx->cap && !c->cl.rd_eof)
                return false;
            if (worker_host_passes(c->w, c->upstream.host, n > 0 ? sni : NULL)) {
                log_debug("conn %llu: %s (SNI %s) not intercepted: passthrough",
                          (unsigned long long)c->id, c->upstream.host, n > 0 ? sni : "-");
                tunnel_start(c, c->w->n_allow_re > 0 && c->w->n_ignore_re == 0
                                    ? "passthrough (not in --allow-hosts)"
                                    : "passthrough (--ignore-hosts)");
                return true;
            }
        }
        if (intercept_start(c) != 0)
            conn_close(c);
        return true;
    }
    if (proxy_req_is_sslv2_hello(buf_head(rx), buf_used(rx))) {
        /* an SSLv2-format ClientHello: no TLS 1.2+ server accepts it, and relaying it raw would
         * hand the client the origin's own certificate, uninspected */
        conn_record_error(c, "SSLv2-format ClientHello refused (TLS 1.2 or newer only)");
        conn_close(c);
        return true;
    }
    n = h1_parse_request(buf_head(rx), buf_used(rx), c->w->cfg->max_header_size, &req, headers,
                         H1_MAX_HEADERS, &why);
    if (n == -EPROTO && !proxy_req_looks_like_http(buf_head(rx), buf_used(rx))) {
        tunnel_start(c, "passthrough (neither TLS nor HTTP)"); /* relayed untouched */
        return true;
    }
    /* HTTP, well-formed or not: the relay forwards it or answers 400 with the reason */
    if (h1_conn_start(c) != 0) {
        conn_close(c);
        return true;
    }
    h1_relay_upstream_ready(h1_conn_relay(c), c->upstream.host, c->upstream.port, false);
    return true;
}

static bool proxy_req_step(struct conn *c)
{
    switch (proxy_req_of(c)->phase) {
    case PROXY_REQ_HEAD:
        return proxy_req_head(c);
    case PROXY_REQ_CONNECTING:
        if (c->cl.failed) {
            conn_close(c);
            return true;
        }
        return false;
    case PROXY_REQ_SNIFF:
        return proxy_req_sniff(c);
    }
    return false;
}

static bool proxy_req_reads_head(struct conn *c, const struct conn_leg *leg)
{
    return leg == &c->cl && proxy_req_of(c)->phase == PROXY_REQ_HEAD;
}

static bool proxy_req_on_timeout(struct conn *c, uint64_t now)
{
    struct proxy_req *p = proxy_req_of(c);
    uint64_t head_ns = (uint64_t)c->w->cfg->request_timeout_s * 1000000000ull;

    switch (p->phase) {
    case PROXY_REQ_HEAD:
        if (now - p->t_phase < head_ns)
            return false;
        if (buf_used(&c->cl.rx) > 0)
            proxy_req_answer(c, 408, "request head timeout",
                             "mitmd: the request head did not arrive in time\n");
        else
            conn_close(c);
        return true;
    case PROXY_REQ_SNIFF:
        if (!conn_idle_expired(c, now))
            return false;
        conn_close(c);
        return true;
    default:
        return false; /* CONNECTING: the upstream's connect timeout applies */
    }
}

static bool proxy_req_is_idle(struct conn *c)
{
    return proxy_req_of(c)->phase == PROXY_REQ_HEAD && buf_used(&c->cl.rx) == 0;
}

static const struct conn_proto proxy_req_proto = {
    .name = "proxy-request",
    .state_size = sizeof(struct proxy_req),
    .step = proxy_req_step,
    .reads_head = proxy_req_reads_head,
    .on_upstream = proxy_req_on_upstream,
    .on_timeout = proxy_req_on_timeout,
    .is_idle = proxy_req_is_idle,
};

void proxy_req_start(struct conn *c)
{
    conn_set_proto(c, &proxy_req_proto);
    proxy_req_set_phase(c, PROXY_REQ_HEAD);
}

void proxy_req_start_sniff(struct conn *c)
{
    conn_set_proto(c, &proxy_req_proto);
    proxy_req_set_phase(c, PROXY_REQ_SNIFF);
}
