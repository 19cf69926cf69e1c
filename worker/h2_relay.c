/* h2_relay.c - HTTP/2 relay, public side: setting up and tearing down the two nghttp2
 * sessions (server toward the client, client toward the upstream), connection-level events
 * (EOF, errors, drain, timeouts) and the pump that moves bytes between the buffers and the
 * sessions under a work budget. Streams are h2_stream.c's, callbacks h2_session.c's. Called
 * only by the worker loop; never does I/O; stream slots come from struct h2_pool. */
#include "worker/h2_relay.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "worker/h1_relay.h"
#include "worker/h2_relay_internal.h"

static_assert((unsigned)H2_WANT_CLIENT_READ == (unsigned)H1_WANT_CLIENT_READ, "want bits match h1");
static_assert((unsigned)H2_WANT_UPSTREAM_READ == (unsigned)H1_WANT_UPSTREAM_READ,
              "want bits match h1");
static_assert((unsigned)H2_WANT_CLOSE == (unsigned)H1_WANT_CLOSE, "want bits match h1");
static_assert(H2_STAGE_SIZE == NGHTTP2_INITIAL_WINDOW_SIZE,
              "a peer may send a whole default window before it acknowledges our SETTINGS");

/* ---- session setup ------------------------------------------------------------------- */

int h2_relay_init(struct h2_relay *r, const struct h2_relay_opts *opts,
                  const struct flow *conn_flow, struct buf *client_in, struct buf *client_out,
                  struct buf *up_in, struct buf *up_out)
{
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    int err;

    memset(r, 0, sizeof(*r));
    if (opts == NULL || opts->pool == NULL)
        return -EINVAL;
    r->_opts = *opts;
    if (r->_opts.max_header_size == 0)
        r->_opts.max_header_size = H2_HEADER_SIZE_DEFAULT;
    if (r->_opts.max_header_size > UINT32_MAX)
        r->_opts.max_header_size = UINT32_MAX;
    r->_conn_flow = conn_flow;
    r->_client_in = client_in;
    r->_client_out = client_out;
    r->_up_in = up_in;
    r->_up_out = up_out;
    r->_ctrl_tokens = H2_CTRL_BURST;
    r->_ctrl_last_ns = flow_now_ns();
    r->_rst_tokens = H2_RST_BURST;
    r->_rst_last_ns = r->_ctrl_last_ns;

    err = h2_session_callbacks_new(&cb);
    if (err)
        return err;
    err = h2_session_option_new(r, &opt);
    if (err)
        goto out_del_cb;
    if (nghttp2_session_server_new2(&r->_cs, cb, r, opt) != 0) {
        err = -ENOMEM;
        goto out_del_opt;
    }
    if (r->_opts.up_serial) {
        /* before the bridge's SETTINGS arrive, too: one stream at a time */
        nghttp2_option_set_peer_max_concurrent_streams(opt, 1);
    }
    if (nghttp2_session_client_new2(&r->_us, cb, r, opt) != 0) {
        err = -ENOMEM;
        goto out_del_cs;
    }
    {
        nghttp2_settings_entry cs_set[] = {
            {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_CONCURRENT_STREAMS},
            {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STAGE_SIZE},
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)r->_opts.max_header_size},
            {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
        };
        nghttp2_settings_entry us_set[] = {
            {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}, /* server push refused (RFC 9113 §8.4) */
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STAGE_SIZE},
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)r->_opts.max_header_size},
            {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
        };

        if (nghttp2_submit_settings(r->_cs, NGHTTP2_FLAG_NONE, cs_set, 5) != 0 ||
            nghttp2_submit_settings(r->_us, NGHTTP2_FLAG_NONE, us_set, 4) != 0 ||
            nghttp2_session_set_local_window_size(r->_cs, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) !=
                0 ||
            nghttp2_session_set_local_window_size(r->_us, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) !=
                0) {
            err = -ENOMEM;
            goto out_del_us;
        }
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    r->_inited = true;
    return 0;
out_del_us:
    nghttp2_session_del(r->_us);
    r->_us = NULL;
out_del_cs:
    nghttp2_session_del(r->_cs);
    r->_cs = NULL;
out_del_opt:
    nghttp2_option_del(opt);
out_del_cb:
    nghttp2_session_callbacks_del(cb);
    return err;
}

void h2_relay_dispose(struct h2_relay *r)
{
    if (!r->_inited)
        return;
    r->_inited = false;
    r->_done = true;
    r->_client_dead = true;
    r->_up_dead = true;
    /* header references go back while their sessions exist; then the sessions go, as they
     * hold pointers to the streams as stream user data; then the streams */
    for (struct h2_stream *st = r->_live; st != NULL; st = st->next) {
        h2_fields_clear(&st->half[H2_REQ]);
        h2_fields_clear(&st->half[H2_RESP]);
    }
    nghttp2_session_del(r->_cs);
    nghttp2_session_del(r->_us);
    r->_cs = NULL;
    r->_us = NULL;
    while (r->_live != NULL)
        h2_stream_release(r, r->_live);
}

/* ---- connection-level events --------------------------------------------------------- */

/* h2_relay_finish marks the client side as done: every stream still open is reported with `why` and
 * the relay wants to close. */
void h2_relay_finish(struct h2_relay *r, const char *why)
{
    if (r->_done)
        return;
    r->_done = true;
    for (struct h2_stream *st = r->_live; st != NULL; st = st->next)
        h2_stream_report(st, why);
}

void h2_relay_upstream_gone(struct h2_relay *r, int status, const char *why)
{
    struct h2_stream *st, *next;

    if (r->_up_dead || !r->_inited)
        return;
    if (r->_why[0] == '\0')
        snprintf(r->_why, sizeof(r->_why), "%s", why);
    for (st = r->_live; st != NULL; st = st->next) {
        if (st->c_closed || st->answered || st->c_rst_sent)
            continue;
        if (st->head_open)
            continue; /* answered when its head completes (h2_forward_request) */
        if (!st->resp_head) {
            h2_stream_answer(r, st, status, why);
        } else if (!st->half[H2_RESP].ended) {
            flow_set_error(&st->flow, why);
            h2_rst_client(r, st, NGHTTP2_INTERNAL_ERROR);
        }
    }
    r->_up_dead = true;
    r->_u_pend = NULL;
    r->_u_pend_len = 0;
    for (st = r->_live; st != NULL; st = next) {
        next = st->next;
        st->u_closed = true;
        st->half[H2_REQ].deferred = false;
        h2_stream_maybe_release(r, st);
    }
    h2_goaway_client(r);
}

void h2_relay_upstream_failed(struct h2_relay *r, const char *why)
{
    if (!r->_inited)
        return;
    snprintf(r->_why, sizeof(r->_why), "%s", why != NULL ? why : "upstream unavailable");
    r->_up_failed = true;
    if (r->_live == NULL) {
        r->_up_dead = true;
        r->_u_pend = NULL;
        r->_u_pend_len = 0;
        return;
    }
    h2_relay_upstream_gone(r, 502, r->_why);
}

void h2_relay_upstream_eof(struct h2_relay *r)
{
    r->_up_eof = true;
    h2_relay_upstream_gone(r, 502, "upstream closed connection");
}

void h2_relay_upstream_error(struct h2_relay *r, const char *why)
{
    r->_up_eof = true;
    h2_relay_upstream_gone(r, 502, why != NULL ? why : "upstream connection failed");
}

/* live_upstream_stream returns the live stream sent upstream as `uid`, or NULL (also for 0, the
 * bridge's "the stream it dialed for is gone": see h2_stream_by_uid). */
static struct h2_stream *live_upstream_stream(struct h2_relay *r, int32_t uid)
{
    return r->_inited ? h2_stream_by_uid(r, uid) : NULL;
}

void h2_relay_upstream_note(struct h2_relay *r, int32_t uid, bool answered, const char *why)
{
    struct h2_stream *st = live_upstream_stream(r, uid);

    if (st == NULL)
        return;
    flow_set_error(&st->flow, why);
    if (answered)
        st->flow.answered = true;
}

void h2_relay_upstream_head(struct h2_relay *r, int32_t uid, int minor_version,
                            const char *reason, size_t reason_len)
{
    struct h2_stream *st = live_upstream_stream(r, uid);

    if (st == NULL)
        return;
    st->up_http10 = minor_version == 0;
    (void)flow_str_set(&st->flow, &st->flow.reason, reason, reason_len); /* full arena: "" */
}

void h2_relay_upstream_times(struct h2_relay *r, int32_t uid, int64_t connect_ns,
                             int64_t tls_ns)
{
    struct h2_stream *st = live_upstream_stream(r, uid);

    if (st == NULL)
        return;
    st->flow.connect_ns = connect_ns;
    st->flow.tls_ns = tls_ns;
}

void h2_relay_client_eof(struct h2_relay *r)
{
    r->_client_eof = true;
    r->_client_dead = true;
    h2_relay_finish(r, "client closed connection");
}

void h2_relay_client_error(struct h2_relay *r, const char *why)
{
    r->_client_eof = true;
    r->_client_dead = true;
    h2_relay_finish(r, why != NULL ? why : "client connection failed");
}

void h2_relay_drain(struct h2_relay *r)
{
    if (!r->_inited || r->_done)
        return;
    r->_closing = true;
    h2_goaway_client(r);
}

/* timeout_streams ends a connection that stopped moving: a half-received head or a response
 * under way is reset (CANCEL) with the flow's error naming the side that stalled, streams
 * without a response head are answered 504, and the client gets GOAWAY; the connection closes
 * once that is flushed. */
static void timeout_streams(struct h2_relay *r)
{
    for (struct h2_stream *st = r->_live; st != NULL; st = st->next) {
        const char *why;

        if (st->c_closed || st->answered || st->resp_done)
            continue;
        if (st->head_open)
            why = "request head timed out";
        else if (!st->resp_head)
            continue; /* 504 below */
        else if (h2_stage_used(&st->half[H2_RESP].stage) > 0 || st->half[H2_RESP].ended)
            why = "client did not read the response in time";
        else
            why = "upstream did not send the response in time";
        flow_set_error(&st->flow, why);
        h2_rst_client(r, st, NGHTTP2_CANCEL);
    }
    h2_relay_upstream_gone(r, 504, "upstream did not answer in time");
}

void h2_relay_timeout(struct h2_relay *r, enum h2_timeout which)
{
    if (!r->_inited || r->_done)
        return;
    if (r->_timed_out) {
        /* the first timeout's answers could not be delivered either: give up */
        h2_relay_finish(r, "connection timed out");
        return;
    }
    switch (which) {
    case H2_TIMEOUT_IDLE:
        r->_timed_out = true;
        r->_closing = true;
        if (!h2_relay_is_idle(r)) {
            timeout_streams(r);
            return;
        }
        h2_goaway_client(r);
        if (h2_upstream_is_usable(r))
            nghttp2_submit_goaway(r->_us, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
        return;
    case H2_TIMEOUT_REQUEST_HEAD:
        if (!h2_relay_is_reading_head(r))
            return;
        r->_timed_out = true;
        r->_closing = true;
        for (struct h2_stream *st = r->_live; st != NULL; st = st->next)
            if (st->head_open)
                flow_set_error(&st->flow, "request head timed out");
        if (h2_client_is_usable(r))
            nghttp2_session_terminate_session(r->_cs, NGHTTP2_NO_ERROR);
        return;
    case H2_TIMEOUT_UPSTREAM:
        r->_timed_out = true;
        r->_closing = true;
        timeout_streams(r);
        return;
    }
}

/* ---- pumping ------------------------------------------------------------------------- */

/* client_fatal handles a fatal error of the client session (bad preface, flood, callback
 * failure): GOAWAY with a matching code, counted; the session then finishes. */
static void client_fatal(struct h2_relay *r, int rv)
{
    uint32_t code = NGHTTP2_PROTOCOL_ERROR;
    /* flood patterns: ours (PING/SETTINGS/PRIORITY/empty DATA/RST_STREAM), nghttp2's queued
     * ACKs, CONTINUATION floods (CVE-2024-27316 class) and oversized SETTINGS */
    bool flood = r->_flood || rv == NGHTTP2_ERR_FLOODED ||
                 rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS || rv == NGHTTP2_ERR_TOO_MANY_SETTINGS;
    const char *why = "HTTP/2 protocol error from client";

    if (flood) {
        code = NGHTTP2_ENHANCE_YOUR_CALM;
        why = "HTTP/2 flood from client";
    } else if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
        why = "bad HTTP/2 client preface";
    }
    h2_count_client_error(r, flood);
    r->_closing = true;
    for (struct h2_stream *st = r->_live; st != NULL; st = st->next)
        flow_set_error(&st->flow, why);
    if (rv == NGHTTP2_ERR_NOMEM || nghttp2_session_terminate_session(r->_cs, code) != 0)
        h2_relay_finish(r, why);
}

/* flush_pending moves bytes nghttp2 serialised earlier into `out`. Returns true if any moved. */
static bool flush_pending(struct buf *out, const uint8_t **pend, size_t *len)
{
    size_t k;

    if (*len == 0)
        return false;
    k = buf_append(out, *pend, *len);
    *pend += k;
    *len -= k;
    if (*len == 0)
        *pend = NULL;
    return k > 0;
}

/* send_side serialises frames of `s` into `out` while it has room. Returns true on progress,
 * and sets `*fatal` to a fatal nghttp2 error. */
static bool send_side(nghttp2_session *s, struct buf *out, const uint8_t **pend, size_t *len,
                      int *fatal)
{
    bool progress = false;

    if (flush_pending(out, pend, len))
        progress = true;
    while (*len == 0 && buf_room(out) > 0) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(s, &p);
        size_t k;

        if (n < 0) {
            *fatal = (int)n;
            break;
        }
        if (n == 0)
            break;
        progress = true;
        k = buf_append(out, p, (size_t)n);
        if (k < (size_t)n) {
            *pend = p + k;
            *len = (size_t)n - k;
        }
    }
    return progress;
}

/* recv_side feeds up to H2_RECV_CHUNK bytes of `in` to `s`. */
static bool recv_side(nghttp2_session *s, struct buf *in, int *fatal)
{
    size_t n = buf_used(in);
    ssize_t rv;

    if (n == 0)
        return false;
    if (n > H2_RECV_CHUNK)
        n = H2_RECV_CHUNK;
    rv = nghttp2_session_mem_recv(s, buf_head(in), n);
    if (rv < 0) {
        *fatal = (int)rv;
        buf_consume(in, buf_used(in));
        return true;
    }
    buf_consume(in, (size_t)rv);
    return rv > 0;
}

static bool pump_round(struct h2_relay *r)
{
    bool progress = false;
    int fatal;

    if (h2_client_is_usable(r) && !r->_closing_recv) {
        fatal = 0;
        progress |= recv_side(r->_cs, r->_client_in, &fatal);
        if (fatal != 0) {
            r->_closing_recv = true;
            client_fatal(r, fatal);
        }
    } else if (buf_used(r->_client_in) > 0) {
        buf_consume(r->_client_in, buf_used(r->_client_in)); /* nobody reads it any more */
    }
    if (h2_upstream_is_usable(r)) {
        fatal = 0;
        progress |= recv_side(r->_us, r->_up_in, &fatal);
        if (fatal != 0) {
            char why[H2_RELAY_REASON_MAX];

            snprintf(why, sizeof(why), "upstream HTTP/2 error: %s", nghttp2_strerror(fatal));
            r->_stats.upstream_errors++;
            h2_relay_upstream_gone(r, 502, why);
        }
    } else if (buf_used(r->_up_in) > 0) {
        buf_consume(r->_up_in, buf_used(r->_up_in));
    }
    if (h2_upstream_is_usable(r)) {
        fatal = 0;
        progress |= send_side(r->_us, r->_up_out, &r->_u_pend, &r->_u_pend_len, &fatal);
        if (fatal != 0) {
            r->_stats.upstream_errors++;
            h2_relay_upstream_gone(r, 502, "upstream HTTP/2 session failed");
        }
    }
    if (h2_client_is_usable(r)) {
        fatal = 0;
        progress |= send_side(r->_cs, r->_client_out, &r->_c_pend, &r->_c_pend_len, &fatal);
        if (fatal != 0)
            h2_relay_finish(r, "HTTP/2 session to client failed");
    }
    return progress;
}

/* check_sessions notices sessions that have nothing more to do. */
static void check_sessions(struct h2_relay *r)
{
    if (h2_upstream_is_usable(r) && nghttp2_session_want_read(r->_us) == 0 &&
        nghttp2_session_want_write(r->_us) == 0 && r->_u_pend_len == 0)
        h2_relay_upstream_gone(r, 502,
                               r->_why[0] != '\0' ? r->_why : "upstream ended the HTTP/2 session");
    if (h2_client_is_usable(r) && nghttp2_session_want_read(r->_cs) == 0 &&
        nghttp2_session_want_write(r->_cs) == 0 && r->_c_pend_len == 0)
        h2_relay_finish(r, "connection closed");
}

/* run_deadlines sends held requests and ends stalled responses whose time came. */
static void run_deadlines(struct h2_relay *r)
{
    uint64_t now = flow_now_ns();
    struct h2_stream *st, *next;

    for (st = r->_live; st != NULL; st = next) {
        next = st->next;
        if ((st->held || st->stall) && st->due != 0 && now >= st->due)
            h2_stream_due(r, st, now);
    }
}

uint64_t h2_relay_deadline(const struct h2_relay *r)
{
    uint64_t first = 0;

    if (!r->_inited || r->_done || r->_n_timed == 0)
        return 0;
    for (const struct h2_stream *st = r->_live; st != NULL; st = st->next)
        if ((st->held || st->stall) && st->due != 0 && (first == 0 || st->due < first))
            first = st->due;
    return first;
}

unsigned h2_relay_pump(struct h2_relay *r)
{
    if (!r->_inited)
        return H2_WANT_CLOSE;
    if (r->_n_timed > 0 && !r->_done)
        run_deadlines(r);
    for (int round = 0; round < H2_PUMP_ROUNDS && !r->_done; round++) {
        bool progress = pump_round(r);

        check_sessions(r);
        if (!progress)
            break;
    }
    return h2_relay_wants(r);
}

static bool has_room(const struct buf *b) { return b->cap > buf_used(b); }

unsigned h2_relay_wants(const struct h2_relay *r)
{
    unsigned w = 0;

    if (!r->_inited || r->_done)
        return H2_WANT_CLOSE;
    if (!r->_client_dead && !r->_closing_recv && has_room(r->_client_in) &&
        nghttp2_session_want_read(r->_cs) != 0)
        w |= H2_WANT_CLIENT_READ;
    if (h2_upstream_is_usable(r) && has_room(r->_up_in) && nghttp2_session_want_read(r->_us) != 0)
        w |= H2_WANT_UPSTREAM_READ;
    if (r->_c_pend_len > 0 || (h2_upstream_is_usable(r) && r->_u_pend_len > 0))
        w |= H2_WANT_FLUSH;
    return w;
}

bool h2_relay_is_idle(const struct h2_relay *r) { return r->_live == NULL; }

bool h2_relay_is_reading_head(const struct h2_relay *r)
{
    return r->_inited && !r->_done && (!r->_preface_done || r->_heads_open > 0);
}

bool h2_relay_is_waiting_upstream(const struct h2_relay *r)
{
    for (const struct h2_stream *st = r->_live; st != NULL; st = st->next)
        if (st->uid > 0 && !st->resp_head && !st->c_closed && !st->u_closed)
            return true;
    return false;
}

const struct h2_relay_stats *h2_relay_stats(const struct h2_relay *r) { return &r->_stats; }
