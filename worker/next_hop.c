/* next_hop.c - see next_hop.h. HEAD (client's CONNECT) -> DIAL (TCP to the next hop) -> REPLY
 * (our CONNECT sent, reading its answer head) -> proxy_req_start_sniff. The next hop speaks
 * in the clear on c->up (its raw input is transport_in(&c->up)); TLS to the origin starts
 * only after its 200, inside the tunnel, as the intercept would do after a direct dial. */
#include "worker/next_hop.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/base64.h>

#include "shared/h1_parse.h"
#include "shared/log.h"
#include "shared/target_parse.h"
#include "worker/answer.h"
#include "worker/conn.h"
#include "worker/proxy_req.h"
#include "worker/worker.h"

#define NEXT_HOP_AUTH_MAX 512 /* --upstream-auth USER:PASS, before base64 */

static const char next_hop_established[] = "HTTP/1.1 200 Connection established\r\n\r\n";

enum next_hop_phase {
    NEXT_HOP_HEAD = 0, /* reading the client's CONNECT head */
    NEXT_HOP_DIAL,     /* connecting to the next-hop proxy */
    NEXT_HOP_REPLY,    /* our CONNECT sent; reading the next hop's answer */
    NEXT_HOP_DONE,     /* answered; closing */
};

struct next_hop {
    enum next_hop_phase phase;
    uint64_t t_phase;
    char host[TARGET_HOST_MAX + 1]; /* the client's CONNECT target */
    uint16_t port;
    bool is_ipv6;
};

static_assert(sizeof(struct next_hop) <= CONN_PROTO_STATE_MAX, "fits the protocol state");

static struct next_hop *next_hop_of(struct conn *c)
{
    return conn_proto_state(c);
}

static void next_hop_set_phase(struct conn *c, enum next_hop_phase next)
{
    struct next_hop *h = next_hop_of(c);

    h->phase = next;
    h->t_phase = flow_now_ns();
}

/* next_hop_answer answers the client in the clear (and records it) and stops. */
static void next_hop_answer(struct conn *c, int status, const char *why, const char *body)
{
    next_hop_set_phase(c, NEXT_HOP_DONE);
    worker_count(c->w, status >= 500 ? MSG_STAT_UPSTREAM_ERRORS : MSG_STAT_CLIENT_ERRORS);
    proxy_req_answer(c, status, why, body);
}

/* next_hop_flow_request records the client's request head in the flow. */
static void next_hop_flow_request(struct conn *c, const struct h1_request *req)
{
    struct flow *f = &c->flow;

    flow_str_set(f, &f->method, req->method, req->method_len);
    flow_str_set(f, &f->url, req->target, req->target_len);
    flow_str_set(f, &f->req_version, req->minor_version == 0 ? "HTTP/1.0" : "HTTP/1.1", 8);
    for (size_t i = 0; i < req->num_headers; i++)
        if (flow_add_header(f, FLOW_REQUEST, req->headers[i].name, req->headers[i].name_len,
                            req->headers[i].value, req->headers[i].value_len) != 0)
            break;
}

/* next_hop_connect takes the client's CONNECT of `n` bytes and dials the next hop. */
static bool next_hop_connect(struct conn *c, const struct h1_request *req, ssize_t n)
{
    const struct mode_spec *m = &c->w->cfg->proxy_mode;
    struct next_hop *h = next_hop_of(c);
    const char *why = NULL;
    struct target t;

    next_hop_flow_request(c, req);
    if (target_parse_connect(req->target, req->target_len, &t, &why) != 0 ||
        t.host_len > TARGET_HOST_MAX) {
        next_hop_answer(c, 400, "bad CONNECT target", NULL);
        return true;
    }
    memcpy(h->host, t.host, t.host_len);
    h->host[t.host_len] = '\0';
    h->port = t.port;
    h->is_ipv6 = t.is_ipv6;
    buf_consume(&c->cl.rx, (size_t)n);
    (void)upstream_set_target(c, m->host, strlen(m->host), m->port); /* bounded alike */
    log_debug("conn %llu: CONNECT %s:%u via %s:%u", (unsigned long long)c->id, h->host, h->port,
              m->host, m->port);
    next_hop_set_phase(c, NEXT_HOP_DIAL);
    upstream_dial(c);
    return true;
}

/* next_hop_head parses the client's first request head. */
static bool next_hop_head(struct conn *c)
{
    struct h1_header headers[H1_MAX_HEADERS];
    struct h1_request req;
    struct buf *rx = &c->cl.rx;
    const char *why = NULL;
    ssize_t n;
    int status;

    if (c->cl.failed || (c->cl.rd_eof && buf_used(rx) == 0)) {
        conn_close(c);
        return true;
    }
    if (buf_used(rx) == 0)
        return false;
    if (c->flow.t_start == 0)
        flow_begin(&c->flow);
    n = h1_parse_request(buf_head(rx), buf_used(rx), c->w->cfg->max_header_size, &req, headers,
                         H1_MAX_HEADERS, &why);
    if (n == -EAGAIN) {
        if (buf_used(rx) < rx->cap && !c->cl.rd_eof)
            return false;
        next_hop_answer(c, c->cl.rd_eof ? 400 : 431,
                        c->cl.rd_eof ? "incomplete request head" : "request head too large", NULL);
        return true;
    }
    if (n < 0) {
        status = h1_err_status(req.err);
        next_hop_answer(c, status != 0 ? status : 400, why != NULL ? why : "malformed request",
                        NULL);
        return true;
    }
    if (h1_method_is(req.method, req.method_len, "CONNECT"))
        return next_hop_connect(c, &req, n);
    next_hop_flow_request(c, &req);
    if (target_is_origin_form(req.target, req.target_len)) {
        next_hop_answer(c, 400, "not a proxy request (origin-form)", NULL);
        return true;
    }
    next_hop_answer(c, 501, "plain HTTP in upstream mode is not supported yet",
                    "mitmd --mode upstream forwards HTTPS (CONNECT) through the next proxy; "
                    "plain http:// requests are not supported yet in this mode\n");
    return true;
}

/* next_hop_send_connect queues our CONNECT for the next hop on the upstream leg. */
static int next_hop_send_connect(struct conn *c)
{
    struct next_hop *h = next_hop_of(c);
    const char *auth = c->w->cfg->upstream_auth;
    char req[TARGET_HOST_MAX * 2 + NEXT_HOP_AUTH_MAX * 2 + 128];
    uint8_t b64[NEXT_HOP_AUTH_MAX * 2];
    char authority[TARGET_HOST_MAX + 16];
    int n;

    snprintf(authority, sizeof(authority), h->is_ipv6 ? "[%s]:%u" : "%s:%u", h->host,
             (unsigned)h->port);
    n = snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", authority, authority);
    if (auth != NULL) {
        size_t alen = strlen(auth);

        if (alen > NEXT_HOP_AUTH_MAX) /* config_parse bounds it; kept for the buffer's sake */
            return -E2BIG;
        EVP_EncodeBlock(b64, (const uint8_t *)auth, alen);
        n += snprintf(req + n, sizeof(req) - (size_t)n, "Proxy-Authorization: Basic %s\r\n",
                      (const char *)b64);
    }
    n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    if (n < 0 || (size_t)n >= sizeof(req) || buf_room(&c->up.pout) < (size_t)n)
        return -ENOSPC;
    memcpy(buf_tail(&c->up.pout), req, (size_t)n);
    buf_commit(&c->up.pout, (size_t)n);
    return 0;
}

static void next_hop_on_upstream(struct conn *c, int err, const char *why)
{
    const struct mode_spec *m = &c->w->cfg->proxy_mode;
    char body[TLS_CONN_WHY_MAX + TARGET_HOST_MAX + 96];
    char msg[ANSWER_WHY_MAX];

    if (next_hop_of(c)->phase != NEXT_HOP_DIAL)
        return;
    if (err) {
        snprintf(msg, sizeof(msg), "cannot connect to the upstream proxy %s:%u: %s", m->host,
                 m->port, why);
        snprintf(body, sizeof(body), "mitmd: %s\n", msg);
        next_hop_answer(c, 502, msg, body);
        return;
    }
    if (next_hop_send_connect(c) != 0) {
        next_hop_answer(c, 502, "cannot send CONNECT to the upstream proxy", NULL);
        return;
    }
    next_hop_set_phase(c, NEXT_HOP_REPLY);
}

/* next_hop_reply reads the next hop's answer to our CONNECT. */
static bool next_hop_reply(struct conn *c)
{
    const struct mode_spec *m = &c->w->cfg->proxy_mode;
    struct next_hop *h = next_hop_of(c);
    struct h1_header headers[H1_MAX_HEADERS];
    struct h1_response resp;
    struct buf *in = transport_in(&c->up);
    const char *why = NULL;
    char msg[ANSWER_WHY_MAX];
    ssize_t n;

    if (c->cl.failed) {
        conn_close(c);
        return true;
    }
    n = buf_used(in) > 0 ? h1_parse_response(buf_head(in), buf_used(in),
                                             c->w->cfg->max_header_size, &resp, headers,
                                             H1_MAX_HEADERS, &why)
                         : -EAGAIN;
    if (n == -EAGAIN) {
        if (!c->up.failed && !c->up.rd_eof)
            return false;
        snprintf(msg, sizeof(msg), "the upstream proxy %s:%u closed the connection before "
                 "answering CONNECT", m->host, m->port);
        next_hop_answer(c, 502, msg, NULL);
        return true;
    }
    if (n < 0) {
        snprintf(msg, sizeof(msg), "the upstream proxy %s:%u sent a malformed answer: %s",
                 m->host, m->port, why != NULL ? why : "?");
        next_hop_answer(c, 502, msg, NULL);
        return true;
    }
    if (resp.status < 200 || resp.status > 299) {
        /* the next hop's refusal, e.g. "407 Proxy Authentication Required", in the reason */
        snprintf(msg, sizeof(msg), "the upstream proxy %s:%u refused CONNECT %s:%u: %d %.*s",
                 m->host, m->port, h->host, h->port, resp.status,
                 (int)(resp.reason_len > 80 ? 80 : resp.reason_len), resp.reason);
        next_hop_answer(c, 502, msg, NULL);
        return true;
    }
    buf_consume(in, (size_t)n); /* what follows the head is the origin's (server first) */
    if (conn_queue_client(c, next_hop_established, sizeof(next_hop_established) - 1) != 0) {
        conn_close(c);
        return true;
    }
    /* from here the tunnel is the origin: the intercept names and verifies it */
    (void)upstream_set_target(c, h->host, strlen(h->host), h->port);
    flow_set_server(&c->flow, h->host, (const struct sockaddr *)&c->up.addr, c->up.addrlen);
    proxy_req_start_sniff(c);
    return true;
}

static bool next_hop_step(struct conn *c)
{
    switch (next_hop_of(c)->phase) {
    case NEXT_HOP_HEAD:
        return next_hop_head(c);
    case NEXT_HOP_DIAL:
        if (c->cl.failed) {
            conn_close(c);
            return true;
        }
        return false;
    case NEXT_HOP_REPLY:
        return next_hop_reply(c);
    case NEXT_HOP_DONE:
        return false;
    }
    return false;
}

static bool next_hop_reads_head(struct conn *c, const struct conn_leg *leg)
{
    enum next_hop_phase p = next_hop_of(c)->phase;

    return (leg == &c->cl && p == NEXT_HOP_HEAD) || (leg == &c->up && p == NEXT_HOP_REPLY);
}

static bool next_hop_on_timeout(struct conn *c, uint64_t now)
{
    struct next_hop *h = next_hop_of(c);
    uint64_t limit = (uint64_t)c->w->cfg->request_timeout_s * 1000000000ull;

    if (h->phase == NEXT_HOP_HEAD && now - h->t_phase >= limit) {
        if (buf_used(&c->cl.rx) > 0)
            next_hop_answer(c, 408, "request head timeout", NULL);
        else
            conn_close(c);
        return true;
    }
    if (h->phase == NEXT_HOP_REPLY && now - h->t_phase >= limit) {
        next_hop_answer(c, 504, "the upstream proxy did not answer CONNECT in time", NULL);
        return true;
    }
    return false; /* DIAL: the connect timeout applies */
}

static bool next_hop_is_idle(struct conn *c)
{
    return next_hop_of(c)->phase == NEXT_HOP_HEAD && buf_used(&c->cl.rx) == 0;
}

static const struct conn_proto next_hop_proto = {
    .name = "upstream-proxy",
    .state_size = sizeof(struct next_hop),
    .step = next_hop_step,
    .reads_head = next_hop_reads_head,
    .on_upstream = next_hop_on_upstream,
    .on_timeout = next_hop_on_timeout,
    .is_idle = next_hop_is_idle,
};

void next_hop_start(struct conn *c)
{
    conn_set_proto(c, &next_hop_proto);
    next_hop_set_phase(c, NEXT_HOP_HEAD);
}
