/* socks5.c - see socks5.h. The wire format is shared/socks5_parse; this file is the state
 * machine: GREETING -> [AUTH (RFC 1929, with --proxyauth)] -> REQUEST -> CONNECTING ->
 * proxy_req_start_sniff. */
#include "worker/socks5.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "shared/log.h"
#include "shared/socks5_parse.h"
#include "worker/access.h"
#include "worker/conn.h"
#include "worker/proxy_req.h"
#include "worker/worker.h"

static const char socks5_not_http[] =
    "mitmd listens for SOCKS5 here (--mode socks5), not for HTTP proxy requests.\n"
    "Use it as a SOCKS5 proxy, for example:\n"
    "  curl --socks5-hostname HOST:PORT --cacert ~/.mitmd/mitmd-ca-cert.pem https://example.com/\n";

enum socks5_phase {
    SOCKS5_GREETING = 0, /* reading VER NMETHODS METHODS */
    SOCKS5_AUTH,         /* username/password chosen (--proxyauth): reading RFC 1929's request */
    SOCKS5_REQUEST,      /* method chosen; reading VER CMD RSV ATYP DST.ADDR DST.PORT */
    SOCKS5_CONNECTING,   /* dialling the target; the reply waits for the outcome */
    SOCKS5_CLOSING,      /* a refusal is queued; closing after the flush */
};

struct socks5 {
    enum socks5_phase phase;
    uint64_t t_phase; /* the phase began (CLOCK_MONOTONIC ns): --request-timeout */
};

static_assert(sizeof(struct socks5) <= CONN_PROTO_STATE_MAX, "fits the protocol state");

static struct socks5 *socks5_of(struct conn *c)
{
    return conn_proto_state(c);
}

static void socks5_set_phase(struct conn *c, enum socks5_phase next)
{
    struct socks5 *s = socks5_of(c);

    s->phase = next;
    s->t_phase = flow_now_ns();
}

/* socks5_malformed closes a connection whose client broke the protocol: counted, recorded,
 * logged at debug level (a client can cause it at will). */
static bool socks5_malformed(struct conn *c, const char *why)
{
    char msg[FLOW_ERROR_MAX];

    snprintf(msg, sizeof(msg), "SOCKS5: %s", why);
    log_debug("conn %llu: %s", (unsigned long long)c->id, msg);
    worker_count(c->w, MSG_STAT_CLIENT_ERRORS);
    conn_record_error(c, msg);
    conn_close(c);
    return true;
}

/* socks5_refuse queues `reply` (a method selection of 2 bytes or a reply), records `why` and
 * closes once the client has it. */
static bool socks5_refuse(struct conn *c, const uint8_t *reply, size_t n, const char *why)
{
    log_debug("conn %llu: SOCKS5 refused: %s", (unsigned long long)c->id, why);
    conn_record_error(c, why);
    (void)conn_queue_client(c, reply, n); /* the first bytes on the leg: they fit */
    socks5_set_phase(c, SOCKS5_CLOSING);
    conn_close_after_flush(c);
    return true;
}

/* socks5_gave_up handles a leg with an incomplete message: a client that closed or failed
 * mid-message gives up (recorded once it sent anything). Returns whether it closed. */
static bool socks5_gave_up(struct conn *c)
{
    struct buf *rx = &c->cl.rx;

    if (!c->cl.failed && !c->cl.rd_eof)
        return false;
    if (buf_used(rx) > 0 || socks5_of(c)->phase == SOCKS5_REQUEST ||
        socks5_of(c)->phase == SOCKS5_AUTH)
        return socks5_malformed(c, "client closed the connection mid-handshake");
    conn_close(c);
    return true;
}

static bool socks5_greeting(struct conn *c)
{
    struct buf *rx = &c->cl.rx;
    struct socks5_greeting g;
    const char *why = NULL;
    uint8_t reply[2];
    ssize_t n;

    if (buf_used(rx) == 0)
        return socks5_gave_up(c);
    if (c->flow.t_start == 0)
        flow_begin(&c->flow); /* the first byte: an error is recorded from here */
    n = socks5_parse_greeting(buf_head(rx), buf_used(rx), &g, &why);
    if (n == -EAGAIN)
        return socks5_gave_up(c);
    if (n < 0) {
        const uint8_t *p = buf_head(rx);

        if (p[0] >= 'A' && p[0] <= 'Z') { /* an HTTP proxy client: say what this port is */
            worker_count(c->w, MSG_STAT_CLIENT_ERRORS);
            proxy_req_answer(c, 400, "HTTP request on a SOCKS5 listener", socks5_not_http);
            return true;
        }
        return socks5_malformed(c, why);
    }
    buf_consume(rx, (size_t)n);
    if (access_auth(c->w) != NULL) { /* --proxyauth: username/password only, as mitmproxy */
        if (!g.offers_userpass) {
            worker_count(c->w, MSG_STAT_AUTH_FAILED);
            socks5_format_method(reply, SOCKS5_METHOD_NONE);
            return socks5_refuse(c, reply, sizeof(reply),
                                 "SOCKS5: the client does not offer username/password "
                                 "authentication (RFC 1929), which --proxyauth requires");
        }
        socks5_format_method(reply, SOCKS5_METHOD_USERPASS);
        if (conn_queue_client(c, reply, sizeof(reply)) != 0) {
            conn_close(c);
            return true;
        }
        socks5_set_phase(c, SOCKS5_AUTH);
        return true;
    }
    if (!g.offers_no_auth) {
        socks5_format_method(reply, SOCKS5_METHOD_NONE);
        return socks5_refuse(c, reply, sizeof(reply),
                             g.offers_userpass
                                 ? "SOCKS5: the client offers only username/password "
                                   "authentication (RFC 1929), which mitmd takes only with "
                                   "--proxyauth"
                                 : "SOCKS5: no acceptable authentication method offered "
                                   "(mitmd accepts 'no authentication')");
    }
    socks5_format_method(reply, SOCKS5_METHOD_NO_AUTH);
    if (conn_queue_client(c, reply, sizeof(reply)) != 0) {
        conn_close(c);
        return true;
    }
    socks5_set_phase(c, SOCKS5_REQUEST);
    return true;
}

/* socks5_auth reads the RFC 1929 username/password request and checks it (--proxyauth). */
static bool socks5_auth(struct conn *c)
{
    struct buf *rx = &c->cl.rx;
    struct socks5_userpass up;
    const char *why = NULL;
    uint8_t reply[2];
    ssize_t n;
    bool ok;

    if (buf_used(rx) == 0)
        return socks5_gave_up(c);
    n = socks5_parse_userpass(buf_head(rx), buf_used(rx), &up, &why);
    if (n == -EAGAIN)
        return socks5_gave_up(c);
    if (n < 0)
        return socks5_malformed(c, why);
    buf_consume(rx, (size_t)n);
    ok = access_check_login(c->w, up.user, up.user_len, up.pass, up.pass_len);
    sodium_memzero(&up, sizeof(up));
    socks5_format_userpass_reply(reply, ok);
    if (!ok) /* RFC 1929 §2: a failure status, then the server closes */
        return socks5_refuse(c, reply, sizeof(reply), "SOCKS5: wrong user or password");
    if (conn_queue_client(c, reply, sizeof(reply)) != 0) {
        conn_close(c);
        return true;
    }
    socks5_set_phase(c, SOCKS5_REQUEST);
    return true;
}

/* socks5_flow_request records the request as "CONNECT host:port SOCKS5". */
static void socks5_flow_request(struct conn *c, const struct socks5_request *req)
{
    struct flow *f = &c->flow;
    char target[TARGET_HOST_MAX + 16];
    int n = snprintf(target, sizeof(target), req->atyp == SOCKS5_ATYP_IPV6 ? "[%s]:%u" : "%s:%u",
                     req->host, (unsigned)req->port);

    flow_str_set(f, &f->method, "CONNECT", 7);
    if (n > 0)
        flow_str_set(f, &f->url, target,
                     (size_t)n < sizeof(target) ? (size_t)n : sizeof(target) - 1);
    flow_str_set(f, &f->req_version, "SOCKS5", 6);
}

static bool socks5_request(struct conn *c)
{
    struct buf *rx = &c->cl.rx;
    struct socks5_request req;
    const char *why = NULL;
    uint8_t reply[SOCKS5_REPLY_LEN];
    ssize_t n;

    if (buf_used(rx) == 0)
        return socks5_gave_up(c);
    n = socks5_parse_request(buf_head(rx), buf_used(rx), &req, &why);
    if (n == -EAGAIN)
        return socks5_gave_up(c);
    if (n == -EAFNOSUPPORT) {
        worker_count(c->w, MSG_STAT_CLIENT_ERRORS);
        socks5_format_reply(reply, SOCKS5_REP_ATYP_NOT_SUPPORTED);
        return socks5_refuse(c, reply, sizeof(reply), "SOCKS5: address type not supported");
    }
    if (n < 0)
        return socks5_malformed(c, why);
    buf_consume(rx, (size_t)n);
    socks5_flow_request(c, &req);
    if (req.cmd != SOCKS5_CMD_CONNECT) {
        socks5_format_reply(reply, SOCKS5_REP_CMD_NOT_SUPPORTED);
        return socks5_refuse(c, reply, sizeof(reply),
                             req.cmd == SOCKS5_CMD_BIND ? "SOCKS5: BIND is not supported"
                             : req.cmd == SOCKS5_CMD_UDP_ASSOCIATE
                                 ? "SOCKS5: UDP ASSOCIATE is not supported"
                                 : "SOCKS5: command not supported");
    }
    if (upstream_set_target(c, req.host, req.host_len, req.port) != 0) {
        socks5_format_reply(reply, SOCKS5_REP_GENERAL_FAILURE);
        return socks5_refuse(c, reply, sizeof(reply), "SOCKS5: target name too long");
    }
    flow_set_target(&c->flow, c->upstream.host, c->upstream.port);
    log_debug("conn %llu: SOCKS5 CONNECT %s:%u", (unsigned long long)c->id, c->upstream.host,
              c->upstream.port);
    socks5_set_phase(c, SOCKS5_CONNECTING);
    upstream_dial(c);
    return true;
}

/* socks5_on_upstream: the dial ended; the reply says how. */
static void socks5_on_upstream(struct conn *c, int err, const char *why)
{
    uint8_t reply[SOCKS5_REPLY_LEN];
    char msg[FLOW_ERROR_MAX];
    uint8_t rep;

    if (socks5_of(c)->phase != SOCKS5_CONNECTING)
        return;
    if (err) {
        rep = socks5_reply_for_errno(err);
        snprintf(msg, sizeof(msg), "SOCKS5 %s: cannot connect to %s:%u: %s",
                 socks5_reply_name(rep), c->upstream.host, c->upstream.port, why);
        worker_count(c->w, MSG_STAT_UPSTREAM_ERRORS);
        socks5_format_reply(reply, rep);
        (void)socks5_refuse(c, reply, sizeof(reply), msg);
        return;
    }
    socks5_format_reply(reply, SOCKS5_REP_SUCCEEDED);
    if (conn_queue_client(c, reply, sizeof(reply)) != 0) {
        conn_close(c);
        return;
    }
    proxy_req_start_sniff(c); /* the client's first bytes decide, as after a CONNECT */
}

static bool socks5_step(struct conn *c)
{
    switch (socks5_of(c)->phase) {
    case SOCKS5_GREETING:
        return socks5_greeting(c);
    case SOCKS5_AUTH:
        return socks5_auth(c);
    case SOCKS5_REQUEST:
        return socks5_request(c);
    case SOCKS5_CONNECTING:
        if (c->cl.failed) {
            conn_close(c);
            return true;
        }
        return false;
    case SOCKS5_CLOSING:
        return false;
    }
    return false;
}

static bool socks5_on_timeout(struct conn *c, uint64_t now)
{
    struct socks5 *s = socks5_of(c);
    uint64_t limit = (uint64_t)c->w->cfg->request_timeout_s * 1000000000ull;

    if (s->phase != SOCKS5_GREETING && s->phase != SOCKS5_AUTH && s->phase != SOCKS5_REQUEST)
        return false; /* CONNECTING: the upstream's connect timeout applies */
    if (now - s->t_phase < limit)
        return false;
    if (buf_used(&c->cl.rx) > 0 || s->phase != SOCKS5_GREETING)
        conn_record_error(c, "SOCKS5: handshake timed out");
    conn_close(c);
    return true;
}

static bool socks5_is_idle(struct conn *c)
{
    return socks5_of(c)->phase == SOCKS5_GREETING && buf_used(&c->cl.rx) == 0;
}

static const struct conn_proto socks5_proto = {
    .name = "socks5",
    .state_size = sizeof(struct socks5),
    .step = socks5_step,
    .on_upstream = socks5_on_upstream,
    .on_timeout = socks5_on_timeout,
    .is_idle = socks5_is_idle,
};

void socks5_start(struct conn *c)
{
    conn_set_proto(c, &socks5_proto);
    socks5_set_phase(c, SOCKS5_GREETING);
}
