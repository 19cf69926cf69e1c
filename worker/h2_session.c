/* h2_session.c - the nghttp2 callbacks of the HTTP/2 relay, shared by the server session
 * (toward the client) and the client session (toward the upstream): header blocks, DATA,
 * frames received and sent, stream closes, the RST_STREAM and control-frame budgets; and the
 * session options. Called only by nghttp2 from h2_relay.c's pump; never does I/O. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "worker/flow_body.h"
#include "worker/h2_relay_internal.h"

/* ---- callbacks shared by both sessions ----------------------------------------------- */

static bool is_client(const struct h2_relay *r, const nghttp2_session *s) { return s == r->_cs; }

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
    struct h2_relay *r = ud;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    struct h2_half *h;
    nghttp2_vec nv = nghttp2_rcbuf_get_buf(name), vv = nghttp2_rcbuf_get_buf(value);
    size_t limit = r->_opts.max_header_size;

    if (st == NULL)
        return 0;
    h = &st->half[is_client(r, s) ? H2_REQ : H2_RESP];
    h->fields_size += nv.len + vv.len + H2_FIELD_OVERHEAD;
    if (h->n_fields >= H2_MAX_FIELDS || h->fields_size > limit) {
        h->fields_over = true;
        return 0;
    }
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    h->fields[h->n_fields].name = name;
    h->fields[h->n_fields].value = value;
    h->n_fields++;
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    struct h2_relay *r = ud;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    bool from_client = is_client(r, s);
    enum h2_dir d = from_client ? H2_REQ : H2_RESP;
    bool sink_gone;

    if (st == NULL) {
        nghttp2_session_consume(s, id, len);
        return 0;
    }
    if (from_client)
        st->flow.req_body_size += len;
    else if (!st->stall)
        st->flow.resp_body_size += len;
    /* a response stalled by inject_fault is dropped as it comes (the client gets 504 later) */
    if (from_client || !st->stall)
        flow_body_feed(&st->flow, from_client ? FLOW_REQUEST : FLOW_RESPONSE, data, len);
    sink_gone = from_client ? (st->u_closed || st->answered || !h2_upstream_is_usable(r))
                            : (st->c_closed || st->answered || st->stall || !h2_client_is_usable(r));
    if (sink_gone) {
        nghttp2_session_consume(s, id, len);
        return 0;
    }
    if (st->body[d].on) { /* --modify-body collects it whole */
        nghttp2_session_consume(s, id, len);
        h2_body_feed(r, st, d, data, len);
        return 0;
    }
    if (h2_half_stage(r, st, d, data, len) != 0) {
        nghttp2_session_consume(s, id, len);
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR);
        return 0;
    }
    h2_half_kick(r, st, d);
    return 0;
}

/* bucket_take takes one token from a bucket of `burst` tokens refilled at `rate` per second.
 * Returns false when the bucket is empty (the peer floods). */
static bool bucket_take(uint64_t *tokens, uint64_t *last_ns, uint64_t burst, uint64_t rate)
{
    uint64_t now = flow_now_ns();
    uint64_t elapsed = now - *last_ns;
    uint64_t add;

    if (elapsed > 1000000000ull * burst / rate)
        elapsed = 1000000000ull * burst / rate;
    add = elapsed * rate / 1000000000ull;
    if (add > 0) {
        *tokens += add;
        *last_ns += add * 1000000000ull / rate;
        if (*tokens >= burst) {
            *tokens = burst;
            *last_ns = now;
        }
    }
    if (*tokens == 0)
        return false;
    (*tokens)--;
    return true;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct h2_relay *r = ud;
    int32_t id = frame->hd.stream_id;
    struct h2_stream *st;

    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (!is_client(r, s)) {
        st = nghttp2_session_get_stream_user_data(s, id);
        if (st != NULL) {
            h2_fields_clear(&st->half[H2_RESP]);
            if (st->flow.t_response_first == 0)
                st->flow.t_response_first = flow_now_ns();
        }
        return 0;
    }
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        st = nghttp2_session_get_stream_user_data(s, id);
        if (st != NULL)
            h2_fields_clear(&st->half[H2_REQ]); /* trailers follow */
        return 0;
    }
    st = NULL;
    if (r->_n_live < H2_MAX_LIVE_STREAMS && !r->_up_goaway && !r->_closing &&
        h2_pool_may_take(r->_opts.pool, r->_n_live))
        st = h2_pool_get(r->_opts.pool);
    if (st == NULL) {
        r->_stats.streams_refused++;
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    st->r = r;
    st->cid = id;
    st->head_open = true;
    st->next = r->_live;
    st->prev = NULL;
    if (r->_live != NULL)
        r->_live->prev = st;
    r->_live = st;
    r->_n_live++;
    r->_heads_open++;
    r->_stats.streams++;
    h2_flow_from_conn(r, &st->flow);
    if (nghttp2_session_set_stream_user_data(s, id, st) != 0) {
        st->c_closed = st->u_closed = true;
        h2_stream_release(r, st);
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
    }
    return 0;
}

static void client_frame_recv(struct h2_relay *r, const nghttp2_frame *frame)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(r->_cs, frame->hd.stream_id);
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (st == NULL)
            return;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            st->head_open = false;
            if (r->_heads_open > 0)
                r->_heads_open--;
            if (!end && h2_window_may_open(r, H2_REQ))
                h2_window_open(r, st, H2_REQ);
            h2_forward_request(r, st, end);
            return;
        }
        /* trailers (RFC 9113 §8.1): forwarded after the staged body */
        st->half[H2_REQ].has_trailers = !st->half[H2_REQ].fields_over;
        if (!st->half[H2_REQ].has_trailers)
            h2_fields_clear(&st->half[H2_REQ]);
        st->half[H2_REQ].ended = true;
        h2_body_end(r, st, H2_REQ);
        h2_half_kick(r, st, H2_REQ);
        return;
    case NGHTTP2_DATA:
        if (st != NULL && end) {
            st->half[H2_REQ].ended = true;
            h2_body_end(r, st, H2_REQ);
            h2_half_kick(r, st, H2_REQ);
        }
        return;
    case NGHTTP2_RST_STREAM:
        r->_stats.client_resets++;
        if (st != NULL)
            st->client_rst = true;
        return;
    default:
        return;
    }
}


static void upstream_frame_recv(struct h2_relay *r, const nghttp2_frame *frame)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(r->_us, frame->hd.stream_id);
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (st == NULL)
            return;
        if (!st->resp_head && !st->body[H2_RESP].on) {
            h2_forward_response_head(r, st, end);
            return;
        }
        st->half[H2_RESP].has_trailers = !st->half[H2_RESP].fields_over;
        if (!st->half[H2_RESP].has_trailers)
            h2_fields_clear(&st->half[H2_RESP]);
        st->half[H2_RESP].ended = true;
        h2_body_end(r, st, H2_RESP);
        h2_half_kick(r, st, H2_RESP);
        return;
    case NGHTTP2_DATA:
        if (st != NULL && end) {
            st->half[H2_RESP].ended = true;
            h2_body_end(r, st, H2_RESP);
            h2_half_kick(r, st, H2_RESP);
        }
        return;
    case NGHTTP2_RST_STREAM:
        r->_stats.upstream_resets++;
        return;
    case NGHTTP2_GOAWAY:
        r->_up_goaway = true;
        r->_up_last_id = frame->goaway.last_stream_id;
        if (frame->goaway.error_code != NGHTTP2_NO_ERROR) {
            r->_stats.upstream_errors++;
            snprintf(r->_why, sizeof(r->_why), "upstream sent GOAWAY: %s",
                     nghttp2_http2_strerror(frame->goaway.error_code));
        }
        /* tell the client: streams the upstream processed finish; the others are refused
         * one by one (REFUSED_STREAM) as nghttp2 closes them */
        h2_goaway_client(r);
        return;
    default:
        return;
    }
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct h2_relay *r = ud;

    if (frame->hd.type == NGHTTP2_SETTINGS && (frame->hd.flags & NGHTTP2_FLAG_ACK) != 0)
        h2_window_settings_acked(r, is_client(r, s)); /* the session's round trip */

    if (is_client(r, s)) {
        bool ctrl = false;

        switch (frame->hd.type) {
        case NGHTTP2_PING:
        case NGHTTP2_SETTINGS:
            ctrl = (frame->hd.flags & NGHTTP2_FLAG_ACK) == 0;
            if (frame->hd.type == NGHTTP2_SETTINGS)
                r->_preface_done = true;
            break;
        case NGHTTP2_PRIORITY:
            ctrl = true;
            break;
        case NGHTTP2_RST_STREAM:
            /* rapid reset (CVE-2023-44487): stricter than nghttp2's own limiter, so that it
             * is answered ENHANCE_YOUR_CALM and counted as a flood */
            if (!bucket_take(&r->_rst_tokens, &r->_rst_last_ns, H2_RST_BURST, H2_RST_RATE)) {
                r->_flood = true;
                return NGHTTP2_ERR_CALLBACK_FAILURE;
            }
            break;
        case NGHTTP2_DATA:
            /* empty DATA frames without END_STREAM (CVE-2019-9518) */
            ctrl = frame->hd.length == 0 && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0;
            break;
        default:
            break;
        }
        if (ctrl &&
            !bucket_take(&r->_ctrl_tokens, &r->_ctrl_last_ns, H2_CTRL_BURST, H2_CTRL_RATE)) {
            r->_flood = true;
            return NGHTTP2_ERR_CALLBACK_FAILURE; /* -> GOAWAY ENHANCE_YOUR_CALM */
        }
        client_frame_recv(r, frame);
    } else {
        upstream_frame_recv(r, frame);
    }
    return 0;
}

static void client_stream_closed(struct h2_relay *r, struct h2_stream *st, uint32_t code)
{
    bool normal = code == NGHTTP2_NO_ERROR && st->resp_done;
    bool head_open = st->head_open;

    st->c_closed = true;
    if (st->head_open) {
        st->head_open = false;
        if (r->_heads_open > 0)
            r->_heads_open--;
    }
    if (!normal) {
        if (st->client_rst)
            h2_stream_error(st, "client reset stream", code);
        else if (head_open && code == NGHTTP2_PROTOCOL_ERROR)
            /* nghttp2 rejected the request head (RFC 9113 §8.1.1), e.g. RFC 8441 :protocol,
             * which we never enable: browsers then use WebSockets over HTTP/1.1 */
            flow_set_error(&st->flow, "malformed HTTP/2 request (extended CONNECT and "
                                      "WebSocket over HTTP/2 are not supported): PROTOCOL_ERROR");
        else if (code != NGHTTP2_NO_ERROR)
            h2_stream_error(st, "stream error", code);
        else
            flow_set_error(&st->flow, "stream closed before the response ended");
        h2_rst_upstream(r, st, code == NGHTTP2_NO_ERROR ? NGHTTP2_CANCEL : code);
        h2_half_discard(r, st, H2_REQ);
    }
    h2_half_discard(r, st, H2_RESP);
    h2_stream_report(st, NULL);
    h2_stream_maybe_release(r, st);
}

static void upstream_stream_closed(struct h2_relay *r, struct h2_stream *st, uint32_t code)
{
    st->u_closed = true;
    if (!st->c_closed && !st->answered && !st->half[H2_RESP].ended) {
        if (!st->resp_head && code == NGHTTP2_REFUSED_STREAM) {
            /* not processed: the client may retry (RFC 9113 §8.7) */
            r->_stats.streams_refused++;
            flow_set_error(&st->flow, "upstream refused stream");
            h2_rst_client(r, st, NGHTTP2_REFUSED_STREAM);
        } else if (!st->resp_head) {
            char why[FLOW_ERROR_MAX];

            if (st->u_rst_sent)
                /* nghttp2 reset it: the response broke RFC 9113 §8 (e.g. a connection
                 * header, a bad :status); we never cancel a stream the client still wants */
                snprintf(why, sizeof(why), "invalid HTTP/2 response from upstream: %s",
                         nghttp2_http2_strerror(code));
            else if (code == NGHTTP2_NO_ERROR)
                snprintf(why, sizeof(why), "upstream closed stream without a response");
            else
                snprintf(why, sizeof(why), "upstream reset stream: %s",
                         nghttp2_http2_strerror(code));
            h2_stream_answer(r, st, 502, why);
        } else {
            h2_stream_error(st,
                         st->u_rst_sent ? "invalid HTTP/2 response from upstream"
                                        : "upstream reset stream",
                         code);
            h2_rst_client(r, st, code == NGHTTP2_NO_ERROR ? NGHTTP2_INTERNAL_ERROR : code);
        }
    } else if (!st->c_closed && st->resp_done && !st->half[H2_REQ].ended) {
        /* RFC 9113 §8.1: the response is complete, the rest of the request is not wanted */
        h2_rst_client(r, st, NGHTTP2_NO_ERROR);
    }
    h2_half_discard(r, st, H2_REQ);
    h2_stream_maybe_release(r, st);
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct h2_relay *r = ud;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, id);

    if (st == NULL)
        return 0;
    if (is_client(r, s)) {
        if (!st->c_closed)
            client_stream_closed(r, st, code);
    } else if (!st->u_closed) {
        upstream_stream_closed(r, st, code);
    }
    return 0;
}

void h2_count_client_error(struct h2_relay *r, bool flood)
{
    if (!r->_client_err_counted) {
        r->_client_err_counted = true;
        r->_stats.client_errors++;
    }
    if (flood && !r->_flood_counted) {
        r->_flood_counted = true;
        r->_stats.client_floods++;
    }
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct h2_relay *r = ud;
    struct h2_stream *st;
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0, opens, ends;

    if (frame->hd.type == NGHTTP2_SETTINGS && (frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
        h2_window_settings_sent(r, is_client(r, s)); /* its ACK times the round trip */
        return 0;
    }
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        uint32_t code = frame->goaway.error_code;

        if (is_client(r, s)) {
            r->_client_goaway_sent = true;
            if (code != NGHTTP2_NO_ERROR)
                h2_count_client_error(r, code == NGHTTP2_ENHANCE_YOUR_CALM);
        } else if (code != NGHTTP2_NO_ERROR) {
            /* nghttp2 found the upstream broke the protocol (RFC 9113 §5.4.1) */
            r->_stats.upstream_errors++;
            if (r->_why[0] == '\0')
                snprintf(r->_why, sizeof(r->_why), "upstream HTTP/2 protocol error: %s",
                         nghttp2_http2_strerror(code));
        }
        return 0;
    }
    if (frame->hd.type == NGHTTP2_RST_STREAM && !is_client(r, s)) {
        st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
        if (st != NULL)
            st->u_rst_sent = true;
        return 0;
    }
    /* an upstream request HEADERS opens the response's window; the end of a message is noted:
     * one stream lookup for both (a GET's HEADERS does both) */
    opens = frame->hd.type == NGHTTP2_HEADERS && !is_client(r, s) &&
            frame->headers.cat == NGHTTP2_HCAT_REQUEST && h2_window_may_open(r, H2_RESP);
    ends = end && (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA);
    if (!opens && !ends)
        return 0;
    st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    if (opens)
        h2_window_open(r, st, H2_RESP); /* the response may use it from its first byte */
    if (!ends)
        return 0;
    if (is_client(r, s)) {
        st->resp_done = true;
        if (st->u_closed && !st->half[H2_REQ].ended)
            h2_rst_client(r, st, NGHTTP2_NO_ERROR); /* RFC 9113 §8.1 */
    } else {
        st->flow.t_request_sent = flow_now_ns();
    }
    return 0;
}

static int on_frame_not_send(nghttp2_session *s, const nghttp2_frame *frame, int lib_error,
                             void *ud)
{
    struct h2_relay *r = ud;
    struct h2_stream *st;

    if (is_client(r, s) || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    /* a queued request never left (cancelled, or refused after GOAWAY): its stream was never
     * created, so no close callback comes */
    st = h2_stream_by_uid(r, frame->hd.stream_id);
    if (st == NULL || st->u_closed)
        return 0;
    upstream_stream_closed(r, st, NGHTTP2_REFUSED_STREAM);
    return 0;
}

/* ---- session setup ------------------------------------------------------------------- */

int h2_session_callbacks_new(nghttp2_session_callbacks **out)
{
    nghttp2_session_callbacks *cb;

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -ENOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_frame_not_send);
    *out = cb;
    return 0;
}

int h2_session_option_new(const struct h2_relay *r, nghttp2_option **out)
{
    nghttp2_option *opt;
    size_t block = r->_opts.max_header_size * 2 + 4096;

    if (nghttp2_option_new(&opt) != 0)
        return -ENOMEM;
    /* windows open only when the other side took the bytes (nghttp2_session_consume) */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, H2_MAX_OUTBOUND_ACK);
    nghttp2_option_set_stream_reset_rate_limit(opt, H2_NGHTTP2_RST_BURST, H2_NGHTTP2_RST_RATE);
    nghttp2_option_set_max_send_header_block_length(opt, block > 65536 ? block : 65536);
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
    *out = opt;
    return 0;
}
