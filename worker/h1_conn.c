/* h1_conn.c - see h1_conn.h. */
#include "worker/h1_conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "worker/access.h"
#include "worker/conn.h"
#include "worker/modes.h"
#include "worker/rules_timer.h"
#include "worker/onboarding.h"
#include "worker/worker.h"

struct h1_conn {
    struct h1_relay relay;
    bool up_wanted;  /* the relay asked for an upstream and waits for the dial */
    bool up_tls;     /* the upstream being dialled speaks TLS (https:// target) */
    bool up_shaking; /* its TLS handshake is in progress (worker/upstream.h) */
    uint64_t t_head; /* a partial request head started arriving; 0 = none */
    struct rules_timer timer; /* inject_latency / stall deadlines (worker/rules_timer.h) */
    bool started;    /* the relay has begun an exchange on this connection */
};

static_assert(sizeof(struct h1_conn) <= CONN_PROTO_STATE_MAX, "fits the protocol state");

static struct h1_conn *h1_conn_of(struct conn *c)
{
    return conn_proto_state(c);
}

struct h1_relay *h1_conn_relay(struct conn *c)
{
    return &h1_conn_of(c)->relay;
}

/* h1_conn_tell reports each leg's end (EOF or failure) to the relay once. Returns whether it
 * told anything. */
static bool h1_conn_tell(struct conn *c, struct h1_relay *r)
{
    struct conn_leg *cl = &c->cl, *up = &c->up;
    bool told = false;

    /* a head cut off by the client's FIN is told at once: nothing more will complete it */
    bool cl_eof = cl->tls_on ? cl->tls_closed : cl->rd_eof;

    /* a failure is told even after the EOF was: a client that half-closed and then reset
     * while its response still flowed would otherwise leave the response waiting on a dead
     * socket (and the upstream open) until the idle timeout */
    if (cl->failed && !cl->fail_told) {
        cl->eof_told = cl->fail_told = told = true;
        h1_relay_client_error(r, cl->why[0] ? cl->why : "client connection failed");
    } else if (!cl->eof_told && (transport_is_done(cl) ||
                                 (cl_eof && h1_relay_state(r) == H1_STATE_REQ_HEAD))) {
        cl->eof_told = told = true;
        h1_relay_client_eof(r);
    }
    if (!up->eof_told && up->connected && (up->failed || transport_is_done(up))) {
        up->eof_told = told = true;
        /* an intercepted upstream that fails before the first exchange (a TLS 1.3 server
         * refusing our client certificate alerts after its handshake) is the first request's
         * 502, with the reason, rather than a silent close */
        if (up->failed && c->cl.tls_on && !h1_conn_of(c)->started &&
            h1_relay_state(r) == H1_STATE_REQ_HEAD)
            h1_relay_upstream_failed(r, up->why[0] ? up->why : "upstream connection failed");
        else if (up->failed)
            h1_relay_upstream_error(r, up->why[0] ? up->why : "upstream connection failed");
        else
            h1_relay_upstream_eof(r);
    }
    return told;
}

/* h1_conn_dial starts the upstream the relay's current request needs: plain, or TLS for an
 * https:// target (an absolute https:// URL sent in the clear, or a new connection for an
 * intercepted client whose upstream closed). */
static void h1_conn_dial(struct conn *c, struct h1_conn *h)
{
    const struct h1_target *t = h1_relay_target(&h->relay);

    h->up_wanted = true;
    h->up_tls = t->tls;
    h->up_shaking = false;
    (void)upstream_set_target(c, t->host, strlen(t->host), t->port); /* fits: same bound */
    if (h1_relay_wants_via(&h->relay))
        upstream_dial_plain_via(c);
    upstream_dial(c);
}

/* h1_conn_up_failed answers the waiting request 502 with `why`. */
static void h1_conn_up_failed(struct conn *c, struct h1_conn *h, const char *why)
{
    char msg[TLS_CONN_WHY_MAX];

    snprintf(msg, sizeof(msg), "%s", why); /* `why` may live in the leg we drop */
    h->up_wanted = h->up_shaking = false;
    conn_up_drop(c);
    h1_relay_upstream_failed(&h->relay, msg);
}

/* h1_conn_up_ready hands the connected (and, for TLS, verified) upstream to the relay. */
static void h1_conn_up_ready(struct conn *c, struct h1_conn *h)
{
    h->up_wanted = false;
    h1_relay_set_up_in(&h->relay, transport_in(&c->up));
    h1_relay_upstream_ready(&h->relay, c->upstream.host, c->upstream.port, h->up_tls);
}

/* h1_conn_shake advances the upstream TLS handshake. Returns whether it made progress. */
static bool h1_conn_shake(struct conn *c, struct h1_conn *h)
{
    const char *why = NULL;
    int r = upstream_tls_step(c, &why);

    if (r == -EAGAIN)
        return false;
    if (r != 0) {
        h1_conn_up_failed(c, h, why);
        return true;
    }
    h->up_shaking = false;
    /* the record's TLS details are the upstream's for https:// in the clear */
    upstream_note_tls(c, !c->cl.tls_on);
    h1_conn_up_ready(c, h);
    return true;
}

static bool h1_conn_step(struct conn *c)
{
    struct h1_conn *h = h1_conn_of(c);
    bool moved = h->up_shaking ? h1_conn_shake(c, h) : false;
    unsigned wants;

    /* http://mitm.it/ (worker/onboarding.h): answered here, never relayed */
    if (h1_relay_state(&h->relay) == H1_STATE_REQ_HEAD) {
        int ob = onboarding_step(c);

        if (ob > 0)
            return true;
        if (ob < 0) { /* its head is still arriving: --request-timeout runs as for any head */
            if (h->t_head == 0)
                h->t_head = flow_now_ns();
            return false;
        }
    }
    moved |= h1_conn_tell(c, &h->relay);
    wants = h1_relay_pump(&h->relay);
    moved |= h1_relay_progressed(&h->relay);
    if (h1_relay_state(&h->relay) != H1_STATE_REQ_HEAD)
        h->started = true;
    if (h1_relay_is_reading_head(&h->relay)) {
        if (h->t_head == 0)
            h->t_head = flow_now_ns();
    } else {
        h->t_head = 0;
    }
    if ((wants & H1_WANT_UPSTREAM) && !h->up_wanted) {
        h1_conn_dial(c, h);
        moved = true;
    }
    if (wants & H1_WANT_CLOSE) {
        conn_close_after_flush(c);
        moved = true;
    }
    rules_timer_sync(&h->timer, h1_relay_deadline(&h->relay));
    return moved;
}

static void h1_conn_on_upstream(struct conn *c, int err, const char *why)
{
    struct h1_conn *h = h1_conn_of(c);
    char msg[H1_RELAY_REASON_MAX];

    if (!h->up_wanted)
        return;
    if (err) {
        snprintf(msg, sizeof(msg), "cannot connect to %s:%u: %s", c->upstream.host,
                 c->upstream.port, why);
        h->up_wanted = false;
        h1_relay_upstream_failed(&h->relay, msg);
        return;
    }
    if (!h->up_tls) {
        h1_conn_up_ready(c, h);
        return;
    }
    if (upstream_tls_h1_start(c, &why) != 0) {
        h1_conn_up_failed(c, h, why);
        return;
    }
    h->up_shaking = true;
}

static bool h1_conn_reads_head(struct conn *c, const struct conn_leg *leg)
{
    enum h1_state st = h1_relay_state(&h1_conn_of(c)->relay);

    return leg == &c->cl ? st == H1_STATE_REQ_HEAD : st == H1_STATE_RESP_HEAD;
}

static bool h1_conn_on_timeout(struct conn *c, uint64_t now)
{
    struct h1_conn *h = h1_conn_of(c);
    uint64_t head_ns = (uint64_t)c->w->cfg->request_timeout_s * 1000000000ull;
    const char *why = NULL;

    if (h->up_shaking && upstream_tls_timed_out(c, now, &why)) {
        h1_conn_up_failed(c, h, why);
        return true;
    }
    if (h->t_head != 0 && now - h->t_head >= head_ns) {
        h1_relay_timeout(&h->relay, H1_TIMEOUT_REQUEST_HEAD);
        h->t_head = 0;
        return true;
    }
    if (!conn_idle_expired(c, now))
        return false;
    if (h1_relay_state(&h->relay) == H1_STATE_REQ_HEAD)
        conn_close(c);
    else
        h1_relay_timeout(&h->relay, H1_TIMEOUT_UPSTREAM);
    return true;
}

static bool h1_conn_is_idle(struct conn *c)
{
    struct conn_leg *cl = &c->cl;

    return h1_relay_state(&h1_conn_of(c)->relay) == H1_STATE_REQ_HEAD &&
           buf_used(transport_in(cl)) == 0 && buf_used(&cl->rx) == 0 &&
           !transport_has_output(cl);
}

static void h1_conn_drain(struct conn *c)
{
    h1_relay_drain(&h1_conn_of(c)->relay);
}

static void h1_conn_flush(struct conn *c)
{
    (void)h1_relay_pump(&h1_conn_of(c)->relay); /* lets a pending answer reach client_out */
}

static void h1_conn_dispose(struct conn *c)
{
    struct h1_conn *h = h1_conn_of(c);

    rules_timer_stop(&h->timer);
    h1_relay_dispose(&h->relay);
}

static const struct conn_proto h1_conn_proto = {
    .name = "http/1.1",
    .state_size = sizeof(struct h1_conn),
    .step = h1_conn_step,
    .reads_head = h1_conn_reads_head,
    .on_upstream = h1_conn_on_upstream,
    .on_timeout = h1_conn_on_timeout,
    .is_idle = h1_conn_is_idle,
    .drain = h1_conn_drain,
    .flush = h1_conn_flush,
    .dispose = h1_conn_dispose,
};

/* h1_conn_pass is the relay's h1_relay_pass_fn: `out` names the leg whose socket the bytes go
 * to. */
static ssize_t h1_conn_pass(void *arg, struct buf *out, const uint8_t *p, size_t n)
{
    struct conn *c = arg;

    if (out == &c->cl.pout)
        return transport_pass(&c->cl, p, n);
    if (out == &c->up.pout && c->up.fd >= 0)
        return transport_pass(&c->up, p, n);
    return -EAGAIN;
}

/* h1_conn_begin starts the relay; `proxy`: it serves the client's own proxy requests, which
 * --proxyauth guards (worker/access.h). */
static int h1_conn_begin(struct conn *c, bool proxy)
{
    struct h1_relay_opts o;
    struct h1_conn *h;

    conn_set_proto(c, &h1_conn_proto);
    h = h1_conn_of(c);
    memset(&o, 0, sizeof(o));
    o.max_header_size = c->w->cfg->max_header_size;
    o.client_tls = modes_url_is_tls(c); /* reverse mode: the server's scheme */
    o.host_rewrite = c->mode != NULL && c->mode->host_rewrite[0] != '\0' ? c->mode->host_rewrite
                                                                       : NULL;
    o.rules = c->w->rules;
    o.replay = c->w->replay;
    o.rng = &c->w->rules_rng;
    o.stall_ms = (uint32_t)c->w->cfg->idle_timeout_s * 1000u;
    rules_timer_init(&h->timer, c);
    o.on_flow = worker_on_flow;
    o.on_flow_arg = c->w;
    o.websocket_raw = !c->w->cfg->websocket;
    if (c->w->cfg->websocket_message_lines) {
        o.on_ws_message = worker_on_ws_message;
        o.on_ws_arg = c->w;
    }
    if (proxy && access_auth(c->w) != NULL && !c->mode->client_replay) { /* mitmd's own */
        o.proxy_auth = access_h1_check;
        o.proxy_auth_arg = c->w;
    }
    o.pass = h1_conn_pass;
    o.pass_arg = c;
    if (c->upstream.via != NULL) { /* upstream mode */
        o.via_absolute = true;
        o.via_auth = c->upstream.via->auth_value;
    }
    if (access_auth(c->w) != NULL && access_is_www(c)) { /* reverse, transparent: 401 */
        o.www_auth = access_check_www;
        o.www_auth_arg = c->w;
    }
    h1_relay_init(&h->relay, &o, &c->flow, transport_in(&c->cl), &c->cl.pout,
                  transport_in(&c->up), &c->up.pout);
    return 0;
}

int h1_conn_start(struct conn *c)
{
    return h1_conn_begin(c, false);
}

int h1_conn_start_proxy(struct conn *c)
{
    return h1_conn_begin(c, true);
}
