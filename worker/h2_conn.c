/* h2_conn.c - see h2_conn.h. */
#include "worker/h2_conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "worker/access.h"
#include "worker/conn.h"
#include "worker/h2_h1up.h"
#include "worker/h2_relay.h"
#include "worker/modes.h"
#include "worker/rules_timer.h"
#include "worker/worker.h"

struct h2_conn {
    struct h2_relay relay;
    bool on;         /* relay initialised: dispose it */
    uint64_t t_head; /* a request head started arriving on some stream; 0 = none */
    struct rules_timer timer; /* inject_latency / stall deadlines (worker/rules_timer.h) */
    struct h2_relay_stats told; /* what h2_conn_report added to the worker's counters */
    struct h2_h1up *bridge;     /* the upstream speaks HTTP/1.1 (worker/h2_h1up.h); NULL: h2 */
    bool dialing;               /* the bridge's new server connection is being dialled */
    bool shaking;               /* ... and its TLS handshake is in progress (upstream.h) */
};

static_assert(sizeof(struct h2_conn) <= CONN_PROTO_STATE_MAX, "fits the protocol state");

/* struct h2_conn_mark is where the relay's buffers (and the bridge's) stood before a pump:
 * the four of the two legs, and with a bridge the two between it and the relay. */
struct h2_conn_mark {
    size_t len[6], off[6];
    int n;
};

static struct h2_conn *h2_conn_of(struct conn *c)
{
    return conn_proto_state(c);
}

static void h2_conn_mark(struct conn *c, struct h2_conn_mark *m)
{
    struct h2_h1up *br = h2_conn_of(c)->bridge;
    const struct buf *b[6] = {&c->cl.pin, &c->cl.pout, transport_in(&c->up), &c->up.pout};

    m->n = 4;
    if (br != NULL) {
        b[m->n++] = h2_h1up_relay_in(br);
        b[m->n++] = h2_h1up_relay_out(br);
    }
    for (int i = 0; i < m->n; i++) {
        m->len[i] = b[i]->len;
        m->off[i] = b[i]->off;
    }
}

/* h2_conn_mark_moved returns whether a buffer changed between the marks `a` and `b` (taken
 * with the same bridge). */
static bool h2_conn_mark_moved(const struct h2_conn_mark *a, const struct h2_conn_mark *b)
{
    for (int i = 0; i < a->n; i++)
        if (a->len[i] != b->len[i] || a->off[i] != b->off[i])
            return true;
    return false;
}

/* h2_conn_tell_bridge reports the HTTP/1.1 server's end (EOF or failure) to the bridge once:
 * when all it sent was read, or at once while a response head is incomplete (nothing more
 * will complete it). */
static bool h2_conn_tell_bridge(struct conn *c, struct h2_h1up *br)
{
    struct conn_leg *up = &c->up;
    bool up_eof = up->tls_on ? up->tls_closed : up->rd_eof;

    if (up->eof_told || !up->connected ||
        !(up->failed || transport_is_done(up) || (up_eof && h2_h1up_is_reading_head(br))))
        return false;
    up->eof_told = true;
    h2_h1up_upstream_eof(br, up->failed ? (up->why[0] ? up->why : "upstream connection failed")
                                        : NULL);
    return true;
}

/* h2_conn_tell reports each leg's end (EOF or failure) to the relay once. */
static bool h2_conn_tell(struct conn *c, struct h2_relay *r)
{
    struct conn_leg *cl = &c->cl, *up = &c->up;
    bool told = false;

    /* a failure is told even after the EOF was (see h1_conn_tell) */
    if (cl->failed && !cl->fail_told) {
        cl->eof_told = cl->fail_told = told = true;
        h2_relay_client_error(r, cl->why[0] ? cl->why : "client connection failed");
    } else if (!cl->eof_told && transport_is_done(cl)) {
        cl->eof_told = told = true;
        h2_relay_client_eof(r);
    }
    if (h2_conn_of(c)->bridge != NULL)
        return h2_conn_tell_bridge(c, h2_conn_of(c)->bridge) || told;
    if (!up->eof_told && up->connected && (up->failed || transport_is_done(up))) {
        up->eof_told = told = true;
        if (up->failed)
            h2_relay_upstream_error(r, up->why[0] ? up->why : "upstream connection failed");
        else
            h2_relay_upstream_eof(r);
    }
    return told;
}

/* h2_conn_bridge_note records the bridge's reason on the relay's stream (worker/h2_h1up.h). */
static void h2_conn_bridge_note(void *arg, int32_t id, bool answered, const char *why)
{
    h2_relay_upstream_note(&((struct h2_conn *)arg)->relay, id, answered, why);
}

/* h2_conn_bridge_head records the server's response version and reason on the relay's stream
 * (worker/h2_h1up.h). */
static void h2_conn_bridge_head(void *arg, int32_t id, int minor_version, const char *reason,
                                size_t reason_len)
{
    h2_relay_upstream_head(&((struct h2_conn *)arg)->relay, id, minor_version, reason,
                           reason_len);
}

/* h2_conn_bridge_ready hands the new server connection to the bridge, after recording its
 * TLS handshake (`tls`: counters, server certificate) and its times on the stream it was
 * opened for. */
static void h2_conn_bridge_ready(struct conn *c, struct h2_conn *h, bool tls)
{
    if (tls)
        upstream_note_tls(c, false);
    h2_relay_upstream_times(&h->relay, h2_h1up_stream(h->bridge), c->flow.connect_ns,
                            tls ? c->flow.tls_ns : -1);
    h->dialing = h->shaking = false;
    h2_h1up_upstream_ready(h->bridge);
}

/* h2_conn_bridge_failed answers the bridge's waiting stream 502 with `why`. */
static void h2_conn_bridge_failed(struct conn *c, struct h2_conn *h, const char *why)
{
    char msg[TLS_CONN_WHY_MAX];

    snprintf(msg, sizeof(msg), "%s", why); /* `why` may live in the leg we drop */
    h->dialing = h->shaking = false;
    conn_up_drop(c);
    worker_count(c->w, MSG_STAT_UPSTREAM_ERRORS);
    h2_h1up_upstream_failed(h->bridge, msg);
}

/* h2_conn_bridge_dial starts a new server connection for the bridge (the mode's target; the
 * old connection is dropped) when its next stream wants one, and advances the TLS handshake of
 * an https:// one. Returns whether anything changed. */
static bool h2_conn_bridge_dial(struct conn *c, struct h2_conn *h)
{
    const char *why = NULL;
    int r;

    if (h->shaking) {
        r = upstream_tls_step(c, &why);
        if (r == -EAGAIN)
            return false;
        if (r != 0)
            h2_conn_bridge_failed(c, h, why);
        else
            h2_conn_bridge_ready(c, h, true);
        return true;
    }
    if (h->dialing || !h2_h1up_wants_dial(h->bridge))
        return false;
    h->dialing = true;
    conn_up_drop(c);
    upstream_dial(c); /* may call h2_conn_on_upstream at once */
    return true;
}

static void h2_conn_on_upstream(struct conn *c, int err, const char *why)
{
    struct h2_conn *h = h2_conn_of(c);
    char msg[TLS_CONN_WHY_MAX];

    if (!h->dialing)
        return;
    if (err) {
        snprintf(msg, sizeof(msg), "cannot connect to %s:%u: %s", c->upstream.host,
                 c->upstream.port, why);
        h2_conn_bridge_failed(c, h, msg);
        return;
    }
    if (!modes_url_is_tls(c)) {
        h2_conn_bridge_ready(c, h, false);
        return;
    }
    /* verified as the URL names the server (reverse mode) */
    if (upstream_tls_h1_start(c, &why) != 0) {
        h2_conn_bridge_failed(c, h, why);
        return;
    }
    h->shaking = true;
}

static bool h2_conn_step(struct conn *c)
{
    struct h2_conn *h = h2_conn_of(c);
    struct h2_conn_mark before, after;
    bool moved = h2_conn_tell(c, &h->relay);
    unsigned wants;

    h2_conn_mark(c, &before);
    wants = h2_relay_pump(&h->relay);
    if (h->bridge != NULL && h2_h1up_pump(h->bridge))
        wants = h2_relay_pump(&h->relay); /* what the bridge answered goes on at once */
    if (h->bridge != NULL)
        moved |= h2_conn_bridge_dial(c, h);
    h2_conn_mark(c, &after);
    /* the relay's only outputs are its buffers and its wants */
    moved |= h2_conn_mark_moved(&before, &after);
    if (h2_relay_is_reading_head(&h->relay)) {
        if (h->t_head == 0)
            h->t_head = flow_now_ns();
    } else {
        h->t_head = 0;
    }
    if (wants & H2_WANT_CLOSE) {
        conn_close_after_flush(c);
        moved = true;
    }
    rules_timer_sync(&h->timer, h2_relay_deadline(&h->relay));
    return moved;
}

static bool h2_conn_on_timeout(struct conn *c, uint64_t now)
{
    struct h2_conn *h = h2_conn_of(c);
    uint64_t head_ns = (uint64_t)c->w->cfg->request_timeout_s * 1000000000ull;
    const char *why = NULL;

    if (h->shaking && upstream_tls_timed_out(c, now, &why)) {
        h2_conn_bridge_failed(c, h, why);
        return true;
    }
    if (h->t_head != 0 && now - h->t_head >= head_ns) {
        h2_relay_timeout(&h->relay, H2_TIMEOUT_REQUEST_HEAD);
        h->t_head = 0;
        return true;
    }
    if (!conn_idle_expired(c, now))
        return false;
    h2_relay_timeout(&h->relay,
                     h2_relay_is_idle(&h->relay) ? H2_TIMEOUT_IDLE : H2_TIMEOUT_UPSTREAM);
    return true;
}

static bool h2_conn_is_idle(struct conn *c)
{
    return h2_relay_is_idle(&h2_conn_of(c)->relay) && buf_used(&c->cl.pin) == 0 &&
           buf_used(&c->cl.tx) == 0 && !c->cl.send_op.armed;
}

static void h2_conn_drain(struct conn *c)
{
    h2_relay_drain(&h2_conn_of(c)->relay); /* GOAWAY: streams in flight finish, no new ones */
}

static void h2_conn_flush(struct conn *c)
{
    (void)h2_relay_pump(&h2_conn_of(c)->relay); /* flushes the GOAWAY */
}

/* h2_conn_report adds what the relay counted since the last report to the worker's counters:
 * on each stats tick and when the connection closes, so that a long-lived connection shows. */
static void h2_conn_report(struct conn *c)
{
    struct h2_conn *h = h2_conn_of(c);
    const struct h2_relay_stats *st;
    struct h2_relay_stats *t = &h->told;
    uint64_t *v = c->w->stats.v;

    if (!h->on)
        return;
    st = h2_relay_stats(&h->relay);
    v[MSG_STAT_CLIENT_ERRORS] += st->client_errors - t->client_errors;
    v[MSG_STAT_UPSTREAM_ERRORS] += st->upstream_errors - t->upstream_errors;
    v[MSG_STAT_H2_STREAMS] += st->streams - t->streams;
    v[MSG_STAT_H2_REFUSED] += st->streams_refused - t->streams_refused;
    v[MSG_STAT_H2_RESETS] += st->client_resets + st->upstream_resets - t->client_resets -
                             t->upstream_resets;
    v[MSG_STAT_H2_CLIENT_ERRORS] += st->client_errors - t->client_errors;
    v[MSG_STAT_H2_FLOODS] += st->client_floods - t->client_floods;
    *t = *st;
}

static void h2_conn_dispose(struct conn *c)
{
    struct h2_conn *h = h2_conn_of(c);

    rules_timer_stop(&h->timer);
    if (!h->on)
        return;
    h2_conn_report(c);
    h2_relay_dispose(&h->relay);
    h2_h1up_free(h->bridge);
    h->bridge = NULL;
    h->on = false;
}

/* h2_conn_reads_head: the bridge waits for the rest of a response head from its server. */
static bool h2_conn_reads_head(struct conn *c, const struct conn_leg *leg)
{
    struct h2_h1up *br = h2_conn_of(c)->bridge;

    return br != NULL && leg == &c->up && h2_h1up_is_reading_head(br);
}

static const struct conn_proto h2_conn_proto = {
    .name = "h2",
    .state_size = sizeof(struct h2_conn),
    .step = h2_conn_step,
    .reads_head = h2_conn_reads_head,
    .on_upstream = h2_conn_on_upstream,
    .on_timeout = h2_conn_on_timeout,
    .is_idle = h2_conn_is_idle,
    .drain = h2_conn_drain,
    .flush = h2_conn_flush,
    .dispose = h2_conn_dispose,
    .report = h2_conn_report,
};

/* h2_conn_begin starts the relay; `h1up`: its upstream is an HTTP/1.1 server, reached through
 * a bridge (worker/h2_h1up.h) allocated here. */
static int h2_conn_begin(struct conn *c, bool h1up)
{
    struct h2_relay_opts o;
    struct h2_conn *h;
    struct buf *up_in = &c->up.pin, *up_out = &c->up.pout;
    int err;

    conn_set_proto(c, &h2_conn_proto);
    h = h2_conn_of(c);
    if (h1up) {
        h->bridge = h2_h1up_new(c->w->cfg->max_header_size, transport_in(&c->up), &c->up.pout);
        if (h->bridge == NULL)
            return -ENOMEM;
        /* reverse mode: a new server connection when the server closed the last one */
        h2_h1up_set_redial(h->bridge, c->mode != NULL && (c->mode->server_plain ||
                                                          c->mode->server_tls));
        h2_h1up_set_on_note(h->bridge, h2_conn_bridge_note, h);
        h2_h1up_set_on_head(h->bridge, h2_conn_bridge_head, h);
        up_in = h2_h1up_relay_in(h->bridge);
        up_out = h2_h1up_relay_out(h->bridge);
    }
    memset(&o, 0, sizeof(o));
    o.up_serial = h1up;
    /* reverse mode: the server's scheme; other modes: the client's TLS (https) */
    o.url_scheme = modes_url_is_tls(c) ? "https" : "http";
    o.max_header_size = c->w->cfg->max_header_size;
    o.pool = c->w->h2_pool;
    o.replay = c->w->replay;
    o.host_rewrite = c->mode != NULL && c->mode->host_rewrite[0] != '\0' ? c->mode->host_rewrite
                                                                        : NULL;
    o.rules = rules_is_empty(c->w->rules) ? NULL : c->w->rules;
    o.rng = &c->w->rules_rng;
    o.stall_ms = (uint32_t)c->w->cfg->idle_timeout_s * 1000u;
    rules_timer_init(&h->timer, c);
    o.on_flow = worker_on_flow;
    o.on_flow_arg = c->w;
    if (access_auth(c->w) != NULL && access_is_www(c)) { /* reverse, transparent: 401 */
        o.www_auth = access_check_www;
        o.www_auth_arg = c->w;
    }
    err = h2_relay_init(&h->relay, &o, &c->flow, &c->cl.pin, &c->cl.pout, up_in, up_out);
    if (err) {
        h2_h1up_free(h->bridge);
        h->bridge = NULL;
        return err;
    }
    h->on = true;
    return 0;
}

int h2_conn_start(struct conn *c)
{
    return h2_conn_begin(c, false);
}

int h2_conn_start_h1up(struct conn *c)
{
    return h2_conn_begin(c, true);
}

int h2_conn_start_failed(struct conn *c, const char *why)
{
    int err = h2_conn_begin(c, false);

    if (err)
        return err;
    h2_relay_upstream_failed(&h2_conn_of(c)->relay, why);
    return 0;
}
