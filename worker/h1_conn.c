/* h1_conn.c - see h1_conn.h. */
#include "worker/h1_conn.h"

#include <stdio.h>
#include <string.h>

#include "worker/conn.h"
#include "worker/worker.h"

struct h1_conn {
    struct h1_relay relay;
    bool up_wanted; /* the relay asked for an upstream and waits for the dial */
    uint64_t t_head; /* a partial request head started arriving; 0 = none */
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

    if (!cl->eof_told && (cl->failed || transport_is_done(cl))) {
        cl->eof_told = told = true;
        if (cl->failed)
            h1_relay_client_error(r, cl->why[0] ? cl->why : "client connection failed");
        else
            h1_relay_client_eof(r);
    }
    if (!up->eof_told && up->connected && (up->failed || transport_is_done(up))) {
        up->eof_told = told = true;
        if (up->failed)
            h1_relay_upstream_error(r, up->why[0] ? up->why : "upstream connection failed");
        else
            h1_relay_upstream_eof(r);
    }
    return told;
}

/* h1_conn_dial starts the upstream the relay's current request needs. */
static void h1_conn_dial(struct conn *c, struct h1_conn *h)
{
    const struct h1_target *t = h1_relay_target(&h->relay);

    h->up_wanted = true;
    if (t->tls) {
        /* an absolute https:// URL sent in the clear: we do not originate TLS for it */
        h->up_wanted = false;
        h1_relay_upstream_failed(&h->relay, "https:// URLs must be requested through CONNECT");
        return;
    }
    (void)upstream_set_target(c, t->host, strlen(t->host), t->port); /* fits: same bound */
    upstream_dial(c);
}

static bool h1_conn_step(struct conn *c)
{
    struct h1_conn *h = h1_conn_of(c);
    bool moved = h1_conn_tell(c, &h->relay);
    unsigned wants = h1_relay_pump(&h->relay);

    moved |= h1_relay_progressed(&h->relay);
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
    return moved;
}

static void h1_conn_on_upstream(struct conn *c, int err, const char *why)
{
    struct h1_conn *h = h1_conn_of(c);
    char msg[H1_RELAY_REASON_MAX];

    if (!h->up_wanted)
        return;
    h->up_wanted = false;
    if (err) {
        snprintf(msg, sizeof(msg), "cannot connect to %s:%u: %s", c->upstream.host,
                 c->upstream.port, why);
        h1_relay_upstream_failed(&h->relay, msg);
        return;
    }
    h1_relay_upstream_ready(&h->relay, c->upstream.host, c->upstream.port, false);
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

static void h1_conn_flush(struct conn *c)
{
    (void)h1_relay_pump(&h1_conn_of(c)->relay); /* lets a pending answer reach client_out */
}

static const struct conn_proto h1_conn_proto = {
    .name = "http/1.1",
    .state_size = sizeof(struct h1_conn),
    .step = h1_conn_step,
    .reads_head = h1_conn_reads_head,
    .on_upstream = h1_conn_on_upstream,
    .on_timeout = h1_conn_on_timeout,
    .is_idle = h1_conn_is_idle,
    .flush = h1_conn_flush,
};

int h1_conn_start(struct conn *c)
{
    struct h1_relay_opts o;
    struct h1_conn *h;

    conn_set_proto(c, &h1_conn_proto);
    h = h1_conn_of(c);
    memset(&o, 0, sizeof(o));
    o.max_header_size = c->w->cfg->max_header_size;
    o.client_tls = c->cl.tls_on;
    o.on_flow = worker_on_flow;
    o.on_flow_arg = c->w;
    h1_relay_init(&h->relay, &o, &c->flow, transport_in(&c->cl), &c->cl.pout,
                  transport_in(&c->up), &c->up.pout);
    return 0;
}
