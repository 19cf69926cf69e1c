/* h1_relay.c - HTTP/1.1 relay: one client, one upstream, plaintext bytes in fixed buffers.
 * Owns the exchange state machine (enum h1_state) and its driving (h1_relay_pump), the
 * events from the loop, flow reporting and the byte moves; the request side is h1_req.c, the
 * response side h1_resp.c, mitmd's own answers h1_answer.c, --modify-body h1_modbody.c
 * (shared through h1_relay_internal.h). Parsing is shared/h1_parse and shared/target_parse.
 * No I/O but closing a map_local file; no allocation (h1_modbody.c holds the relay's one
 * buffer). */
#include "worker/h1_relay.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "worker/flow_body.h"
#include "worker/h1_relay_internal.h"

static const char *const state_names[H1_STATE_COUNT] = {
    [H1_STATE_REQ_HEAD] = "req_head",   [H1_STATE_NEED_UPSTREAM] = "need_upstream",
    [H1_STATE_REQ_BODY] = "req_body",   [H1_STATE_RESP_HEAD] = "resp_head",
    [H1_STATE_RESP_BODY] = "resp_body", [H1_STATE_RAW] = "raw",
    [H1_STATE_CLOSING] = "closing",    [H1_STATE_LOCAL] = "local",
};

const char *h1_state_name(enum h1_state s)
{
    if ((unsigned)s >= H1_STATE_COUNT)
        return "invalid";
    return state_names[s];
}


/* buf_has_room is buf_room without the compaction, for const queries. */
static bool buf_has_room(const struct buf *b)
{
    return b->cap > buf_used(b);
}

static void buf_drop_all(struct buf *b)
{
    buf_consume(b, buf_used(b));
}

static void copy_reason(char *dst, size_t cap, const char *why)
{
    size_t n = why == NULL ? 0 : strnlen(why, cap - 1);

    if (n > 0)
        memcpy(dst, why, n);
    dst[n] = '\0';
}

void h1_relay_copy_target(struct h1_target *dst, const char *host, size_t host_len, uint16_t port,
                          bool tls, bool is_ipv6)
{
    size_t n = min_size(host_len, sizeof(dst->host) - 1);

    memcpy(dst->host, host, n);
    dst->host[n] = '\0';
    dst->port = port;
    dst->tls = tls;
    dst->is_ipv6 = is_ipv6;
}

void h1_relay_init(struct h1_relay *r, const struct h1_relay_opts *opts, struct flow *flow,
                   struct buf *client_in, struct buf *client_out, struct buf *up_in,
                   struct buf *up_out)
{
    memset(r, 0, sizeof(*r));
    r->_state = H1_STATE_REQ_HEAD;
    r->_opts = *opts;
    r->_flow = flow;
    r->_client_in = client_in;
    r->_client_out = client_out;
    r->_up_in = up_in;
    r->_up_out = up_out;
    r->_ml.fd = -1;
}

/* ---- flow reporting ---------------------------------------------------------------- */

void h1_relay_ensure_flow(struct h1_relay *r)
{
    if (!r->_flow_begun) {
        flow_begin(r->_flow);
        r->_flow_begun = true;
    }
}

/* h1_relay_report_flow finishes the exchange's record and hands it to the loop. */
void h1_relay_report_flow(struct h1_relay *r)
{
    struct flow *f = r->_flow;

    if (!r->_flow_begun)
        return;
    if (r->_websocket) { /* RFC 6455 messages counted while relayed */
        f->websocket = true;
        for (int d = 0; d < 2; d++) {
            f->ws_messages[d] = r->_ws[d].messages;
            f->ws_bytes[d] = r->_ws[d].bytes;
        }
    }
    f->t_done = flow_now_ns();
    maplocal_answer_close(&r->_ml);
    h1_modbody_free(r);
    h1_held_free(&r->_held);
    if (r->_opts.on_flow != NULL)
        r->_opts.on_flow(r->_opts.on_flow_arg, f);
    flow_next(f);
    r->_flow_begun = false;
}

void h1_relay_enter_closing(struct h1_relay *r)
{
    if (r->_state != H1_STATE_CLOSING)
        h1_set_state(r, H1_STATE_CLOSING);
}

/* h1_relay_close_quiet ends the connection without a record: nothing worth one was received. */
void h1_relay_close_quiet(struct h1_relay *r)
{
    maplocal_answer_close(&r->_ml);
    r->_flow_begun = false;
    h1_relay_enter_closing(r);
}

/* h1_relay_abort_exchange ends the connection; the exchange in progress is reported with `why`. */
void h1_relay_abort_exchange(struct h1_relay *r, const char *why)
{
    if (r->_flow_begun) {
        flow_set_error(r->_flow, why);
        h1_relay_report_flow(r);
    }
    h1_relay_enter_closing(r);
}

/* ---- moving bytes ------------------------------------------------------------------- */

/* h1_relay_move_bytes copies up to `max` bytes from `in` to `out` as room allows, consuming
 * them. */
size_t h1_relay_move_bytes(struct buf *in, struct buf *out, uint64_t max)
{
    size_t n = min_size(buf_used(in), buf_room(out));

    if (max < n)
        n = (size_t)max;
    if (n == 0)
        return 0;
    n = buf_append(out, buf_head(in), n);
    buf_consume(in, n);
    return n;
}

size_t h1_relay_move_body(struct h1_relay *r, struct buf *in, struct buf *out, uint64_t max,
                          enum flow_side dir)
{
    size_t n = buf_used(in);
    ssize_t w = -EAGAIN;

    if (max < n)
        n = (size_t)max;
    if (n == 0)
        return 0;
    if (r->_opts.pass != NULL && buf_used(out) == 0)
        w = r->_opts.pass(r->_opts.pass_arg, out, buf_head(in), n);
    if (w == 0)
        return 0; /* no room toward the socket now: the bytes wait in `in` */
    if (w < 0) { /* passing does not apply: copy */
        w = (ssize_t)min_size(n, buf_room(out));
        if (w == 0)
            return 0;
        buf_append(out, buf_head(in), (size_t)w);
    }
    flow_body_feed(r->_flow, dir, buf_head(in), (size_t)w);
    buf_consume(in, (size_t)w);
    return (size_t)w;
}

/* h1_relay_pass_chunked offers the chunked bytes at the head of `in` (up to where the body
 * ends) to opts.pass; the decoder `d` advances over what was taken only. Returns bytes taken,
 * 0 when the writer has no room now, -EAGAIN when passing does not apply (copy instead), or
 * -EPROTO / -EMSGSIZE with `*why` set. */
static ssize_t h1_relay_pass_chunked(struct h1_relay *r, struct h1_chunk_decoder *d,
                                     struct buf *in, struct buf *out, uint64_t *payload,
                                     const char **why)
{
    struct h1_chunk_decoder t = *d;
    uint64_t seen = 0;
    ssize_t c = h1_chunk_decode_all(&t, buf_head(in), buf_used(in), &seen, why);
    ssize_t w;

    if (c <= 0) {
        *d = t; /* the error stays the decoder's, as on the copying path */
        return c;
    }
    w = r->_opts.pass(r->_opts.pass_arg, out, buf_head(in), (size_t)c);
    if (w <= 0)
        return w == 0 ? 0 : -EAGAIN;
    if (w == c) {
        *d = t;
        *payload += seen;
        return w;
    }
    seen = 0; /* part taken: the decoder goes over exactly that part */
    c = h1_chunk_decode_all(d, buf_head(in), (size_t)w, &seen, why);
    if (c < 0)
        return c;
    *payload += seen;
    return w;
}

ssize_t h1_relay_move_chunked(struct h1_relay *r, struct h1_chunk_decoder *d, struct buf *in,
                              struct buf *out, uint64_t *payload, enum flow_side dir,
                              const char **why)
{
    size_t n;
    uint64_t seen = 0;
    ssize_t c = -EAGAIN;

    if (buf_used(in) == 0)
        return 0;
    if (r->_opts.pass != NULL && buf_used(out) == 0)
        c = h1_relay_pass_chunked(r, d, in, out, payload, why);
    if (c == -EAGAIN) { /* passing does not apply: copy */
        n = min_size(buf_used(in), buf_room(out));
        if (n == 0)
            return 0;
        c = h1_chunk_decode_all(d, buf_head(in), n, &seen, why);
        if (c < 0)
            return c;
        *payload += seen;
        c = (ssize_t)buf_append(out, buf_head(in), (size_t)c);
    }
    if (c <= 0)
        return c;
    flow_body_feed_chunked(r->_flow, dir, buf_head(in), (size_t)c);
    buf_consume(in, (size_t)c);
    return c;
}

/* ---- driving ------------------------------------------------------------------------ */

static bool is_forwarding(enum h1_state s)
{
    return s == H1_STATE_REQ_BODY || s == H1_STATE_RESP_HEAD || s == H1_STATE_RESP_BODY;
}

unsigned h1_relay_pump(struct h1_relay *r)
{
    bool progress = true;

    /* Every step that reports progress moved bytes between bounded buffers or advanced the
     * state; a new exchange needs new upstream bytes, so the loop ends within the buffers'
     * capacity. */
    r->_progressed = false;
    while (progress) {
        progress = false;
        if (r->_answer_off < r->_answer_len)
            progress |= h1_answer_flush(r);
        switch (r->_state) {
        case H1_STATE_REQ_HEAD:
            progress |= h1_req_step_head(r);
            break;
        case H1_STATE_REQ_BODY:
        case H1_STATE_RESP_HEAD:
        case H1_STATE_RESP_BODY:
            progress |= h1_req_step_send(r);
            if (is_forwarding(r->_state))
                progress |= h1_resp_step(r);
            break;
        case H1_STATE_RAW:
            progress |= h1_resp_step_raw(r);
            break;
        case H1_STATE_LOCAL:
            progress |= h1_answer_step_local(r);
            break;
        default:
            break;
        }
        r->_progressed |= progress;
    }
    return h1_relay_wants(r);
}

bool h1_relay_progressed(const struct h1_relay *r)
{
    return r->_progressed;
}

unsigned h1_relay_wants(const struct h1_relay *r)
{
    unsigned w = 0;

    switch (r->_state) {
    case H1_STATE_CLOSING:
        return r->_answer_off == r->_answer_len ? H1_WANT_CLOSE : 0;
    case H1_STATE_NEED_UPSTREAM:
        w |= H1_WANT_UPSTREAM;
        break;
    case H1_STATE_LOCAL:
        break;
    case H1_STATE_RAW:
        w |= H1_WANT_RAW;
        /* fall through */
    case H1_STATE_REQ_BODY:
    case H1_STATE_RESP_HEAD:
    case H1_STATE_RESP_BODY:
        if (r->_up_connected && !r->_up_eof && buf_has_room(r->_up_in))
            w |= H1_WANT_UPSTREAM_READ;
        break;
    default:
        break;
    }
    if (!r->_client_eof && buf_has_room(r->_client_in))
        w |= H1_WANT_CLIENT_READ;
    return w;
}

/* ---- events ------------------------------------------------------------------------- */

void h1_relay_drain(struct h1_relay *r)
{
    r->_draining = true;
}

void h1_relay_set_up_in(struct h1_relay *r, struct buf *up_in)
{
    r->_up_in = up_in;
}

bool h1_relay_wants_via(const struct h1_relay *r)
{
    return r->_opts.via_absolute && r->_absolute && !r->_target.tls;
}

void h1_relay_upstream_ready(struct h1_relay *r, const char *host, uint16_t port, bool tls)
{
    if (r->_state != H1_STATE_REQ_HEAD && r->_state != H1_STATE_NEED_UPSTREAM)
        return;
    r->_up_via = r->_state == H1_STATE_NEED_UPSTREAM && h1_relay_wants_via(r);
    h1_relay_copy_target(&r->_upstream, host != NULL ? host : "", host != NULL ? strlen(host) : 0,
                         port, tls, host != NULL && strchr(host, ':') != NULL);
    if (!r->_has_upstream || !r->_mapped) /* a mapped request's upstream is not home */
        r->_home = r->_upstream;
    r->_has_upstream = true;
    r->_up_connected = true;
    r->_up_eof = false;
    r->_fail_pending = false;
    buf_drop_all(r->_up_in);
    buf_drop_all(r->_up_out);
    if (r->_state == H1_STATE_NEED_UPSTREAM)
        h1_set_state(r, H1_STATE_REQ_BODY);
}

void h1_relay_upstream_failed(struct h1_relay *r, const char *why)
{
    switch (r->_state) {
    case H1_STATE_REQ_HEAD:
        r->_fail_pending = true;
        r->_up_connected = false;
        copy_reason(r->_fail_why, sizeof(r->_fail_why), why);
        break;
    case H1_STATE_NEED_UPSTREAM:
        h1_answer_error(r, 502, why);
        break;
    default:
        h1_relay_upstream_error(r, why);
        break;
    }
}

/* idle_upstream_lost handles the upstream going away between exchanges. A plain-HTTP
 * upstream is simply reconnected for the next request. An intercepted TLS upstream's close is
 * mirrored to an idle client instead (it retries on a new connection, as after any keep-alive
 * close), because a new upstream TLS session could not reuse the client's handshake. */
static void idle_upstream_lost(struct h1_relay *r)
{
    if (r->_state == H1_STATE_REQ_HEAD && r->_upstream.tls && buf_used(r->_client_in) == 0)
        h1_relay_close_quiet(r);
}

void h1_relay_upstream_eof(struct h1_relay *r)
{
    r->_up_eof = true;
    r->_up_connected = false;
    idle_upstream_lost(r);
}

void h1_relay_upstream_error(struct h1_relay *r, const char *why)
{
    r->_up_eof = true;
    r->_up_connected = false;
    switch (r->_state) {
    case H1_STATE_NEED_UPSTREAM:
    case H1_STATE_REQ_BODY:
    case H1_STATE_RESP_HEAD:
        h1_answer_error(r, 502, why);
        break;
    case H1_STATE_RESP_BODY:
        h1_relay_abort_exchange(r, why);
        break;
    case H1_STATE_RAW:
        h1_relay_enter_closing(r);
        break;
    default:
        idle_upstream_lost(r); /* or the next request asks for a new upstream */
        break;
    }
}

void h1_relay_client_eof(struct h1_relay *r)
{
    r->_client_eof = true;
}

void h1_relay_client_error(struct h1_relay *r, const char *why)
{
    r->_client_eof = true;
    if (r->_state == H1_STATE_CLOSING)
        return;
    if (r->_state == H1_STATE_REQ_HEAD)
        h1_relay_close_quiet(r);
    else
        h1_relay_abort_exchange(r, why);
}

void h1_relay_timeout(struct h1_relay *r, enum h1_timeout which)
{
    switch (which) {
    case H1_TIMEOUT_REQUEST_HEAD:
        if (r->_state != H1_STATE_REQ_HEAD)
            return;
        if (buf_used(r->_client_in) > 0)
            h1_answer_error(r, 408, "request head not received in time");
        else
            h1_relay_close_quiet(r);
        break;
    case H1_TIMEOUT_UPSTREAM:
        if (r->_state == H1_STATE_NEED_UPSTREAM)
            h1_answer_error(r, 504, "upstream connect timed out");
        else if (r->_state == H1_STATE_REQ_BODY || r->_state == H1_STATE_RESP_HEAD)
            h1_answer_error(r, 504, "upstream timed out");
        else if (r->_state == H1_STATE_RESP_BODY)
            h1_relay_abort_exchange(r, "upstream timed out while responding");
        else if (r->_state == H1_STATE_LOCAL)
            h1_relay_abort_exchange(r, "the client did not take the map_local answer in time");
        break;
    }
}

/* ---- queries ------------------------------------------------------------------------ */

uint64_t h1_relay_deadline(const struct h1_relay *r)
{
    if (r->_hold_until != 0 && !r->_req_head_done && r->_state != H1_STATE_CLOSING)
        return r->_hold_until;
    if (r->_stall && r->_stall_due != 0 && r->_state != H1_STATE_CLOSING)
        return r->_stall_due;
    return 0;
}

void h1_relay_dispose(struct h1_relay *r)
{
    maplocal_answer_close(&r->_ml);
    h1_modbody_free(r);
    h1_held_free(&r->_held);
}

const struct h1_target *h1_relay_target(const struct h1_relay *r)
{
    return &r->_target;
}

enum h1_state h1_relay_state(const struct h1_relay *r)
{
    return r->_state;
}

bool h1_relay_is_reading_head(const struct h1_relay *r)
{
    return r->_state == H1_STATE_REQ_HEAD && buf_used(r->_client_in) > 0;
}

bool h1_relay_is_raw(const struct h1_relay *r)
{
    return r->_state == H1_STATE_RAW;
}
