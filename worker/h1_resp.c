/* h1_resp.c - the response side of the HTTP/1.1 relay: parsing the upstream's response head
 * (interim, final, 101), writing it for the client (worker/h1_head.h), streaming the body
 * with its framing, finishing the exchange (keep-alive or close), and the raw two-way relay
 * after an upgrade (WebSocket message counts). Called through h1_relay_internal.h; no I/O,
 * no allocation. */
#include "worker/h1_relay_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "worker/flow_body.h"
#include "worker/h1_head.h"
#include "worker/h1_record.h"

static void ws_message_from_client(void *arg, int opcode, uint64_t len);
static void ws_message_from_server(void *arg, int opcode, uint64_t len);

/* ---- response ----------------------------------------------------------------------- */

static void bad_response(struct h1_relay *r, const char *why)
{
    char msg[H1_RELAY_REASON_MAX];

    snprintf(msg, sizeof(msg), "bad response from upstream: %s", why != NULL ? why : "malformed");
    h1_answer_error(r, 502, msg);
}

static bool step_resp_head(struct h1_relay *r)
{
    struct buf *in = r->_up_in;
    size_t used = buf_used(in);
    size_t limit = head_limit(r, in);
    struct h1_header headers[H1_MAX_HEADERS];
    struct h1_response resp;
    const char *why = NULL;
    enum h1_body body;
    ssize_t n;

    if (used == 0) {
        if (r->_up_eof) {
            h1_answer_error(r, 502, "upstream closed before responding");
            return true;
        }
        return false;
    }
    if (r->_flow->t_response_first == 0)
        r->_flow->t_response_first = flow_now_ns();
    n = h1_parse_response(buf_head(in), used, limit, &resp, headers, H1_MAX_HEADERS, &why);
    if (n == -EAGAIN) {
        if (used >= limit) {
            bad_response(r, "response head too large");
            return true;
        }
        if (r->_up_eof) {
            h1_answer_error(r, 502, "upstream closed while responding");
            return true;
        }
        return false;
    }
    if (n < 0) {
        bad_response(r, why);
        return true;
    }
    r->_resp_head_len = (size_t)n;
    r->_resp_head_moved = 0;
    r->_resp_head_forward = true;
    if (resp.status < 200 && resp.status != 101) {
        /* Interim response (RFC 9110 §15.2): relay it, keep waiting for the final one; an
         * HTTP/1.0 client must not be sent one. */
        r->_resp_interim = true;
        r->_resp_drop = r->_req_http10;
        return true;
    }
    body = h1_response_body(r->_req_is_head ? "HEAD" : "GET", r->_req_is_head ? 4 : 3, &resp);
    if (body == H1_BODY_TUNNEL && !r->_req_upgrade) {
        r->_resp_head_forward = false;
        bad_response(r, "101 Switching Protocols without an Upgrade request");
        return true;
    }
    h1_record_response(r, &resp);
    if (body == H1_BODY_TUNNEL) {
        ssize_t up = h1_header_find(resp.headers, resp.num_headers, "Upgrade", 0);

        r->_websocket = !r->_opts.websocket_raw && up >= 0 &&
                        h1_token_list_has(resp.headers[up].value, resp.headers[up].value_len,
                                          "websocket");
        memset(r->_ws, 0, sizeof(r->_ws));
        if (r->_websocket && r->_opts.on_ws_message != NULL) {
            r->_ws[0].on_message = ws_message_from_client;
            r->_ws[1].on_message = ws_message_from_server;
            r->_ws[0].arg = r->_ws[1].arg = r;
        }
    }
    r->_edits_on = false;
    if (r->_opts.rules != NULL) { /* --modify-headers on the response */
        memset(&r->_verdict, 0, sizeof(r->_verdict));
        rules_on_response_head(r->_opts.rules, r->_flow, &r->_verdict);
        r->_edits_on = r->_verdict.n_edits > 0;
    }
    r->_resp_interim = false;
    r->_resp_body = body;
    r->_resp_remaining =
        resp.framing.content_length > 0 ? (uint64_t)resp.framing.content_length : 0;
    r->_resp_keep_alive = resp.framing.keep_alive && body != H1_BODY_CLOSE;
    (void)h1_modbody_start(r, body, r->_resp_remaining); /* --modify-body holds the head */
    h1_set_state(r, H1_STATE_RESP_BODY);
    return true;
}

/* h1_resp_conn says what mitmd's Connection field tells the client about this response. */
enum h1_head_conn h1_resp_conn(const struct h1_relay *r)
{
    if (r->_resp_interim)
        return H1_HEAD_CONN_DEFAULT;
    if (r->_resp_body == H1_BODY_TUNNEL)
        return H1_HEAD_CONN_UPGRADE;
    if (!r->_req_keep_alive || !r->_resp_keep_alive || r->_draining)
        return H1_HEAD_CONN_CLOSE;
    return r->_req_http10 ? H1_HEAD_CONN_KEEP_ALIVE : H1_HEAD_CONN_DEFAULT;
}

/* step_resp_head_out writes the parsed response head for the client (h1_head.h), or drops
 * an interim one an HTTP/1.0 client must not see, then consumes it from up_in. */
static bool step_resp_head_out(struct h1_relay *r)
{
    struct h1_emitter e = {.out = r->_client_out, .skip = r->_resp_head_moved};
    struct h1_header headers[H1_MAX_HEADERS];
    struct h1_response resp;
    const char *why = NULL;

    if (!r->_resp_drop) {
        if (h1_parse_response(buf_head(r->_up_in), r->_resp_head_len, head_limit(r, r->_up_in),
                              &resp, headers, H1_MAX_HEADERS, &why) < 0) {
            bad_response(r, "response head changed while buffered");
            return true;
        }
        if (!r->_resp_conn_set) { /* fixed once: the head may be written over several calls */
            r->_resp_conn = h1_resp_conn(r);
            r->_resp_conn_set = true;
        }
        h1_head_response(&e, &resp, r->_resp_conn, r->_edits_on ? &r->_verdict : NULL);
        r->_resp_head_moved += e.written;
        if (e.full)
            return e.written > 0;
    }
    buf_consume(r->_up_in, r->_resp_head_len);
    r->_resp_head_len = 0;
    r->_resp_head_forward = false;
    if (!r->_resp_interim)
        r->_resp_conn_set = r->_resp_conn == H1_HEAD_CONN_CLOSE; /* kept: h1_resp_finish */
    else
        r->_resp_conn_set = false;
    r->_resp_interim = false;
    r->_resp_drop = false;
    return true;
}

/* h1_resp_finish reports a complete response and decides whether the connection goes on. */
void h1_resp_finish(struct h1_relay *r)
{
    /* draining: close after a response that said so; one that went out as keep-alive before
     * the drain began is followed by one more exchange (its client may be sending already) */
    bool said_close = r->_resp_conn_set && r->_resp_conn == H1_HEAD_CONN_CLOSE;
    bool keep = r->_req_done && r->_req_keep_alive && r->_resp_keep_alive && !said_close;

    h1_relay_report_flow(r);
    if (!keep) {
        h1_relay_enter_closing(r);
        return;
    }
    h1_set_state(r, H1_STATE_REQ_HEAD);
}


static bool step_resp_body(struct h1_relay *r)
{
    struct flow *f = r->_flow;
    const char *why = NULL;
    bool progress = false;
    ssize_t c;

    if (r->_mb_out)
        return h1_modbody_send(r);
    if (r->_mb_on)
        return h1_modbody_collect(r);

    switch (r->_resp_body) {
    case H1_BODY_LENGTH:
        c = (ssize_t)h1_relay_move_body(r, r->_up_in, r->_client_out, r->_resp_remaining,
                                        FLOW_RESPONSE);
        r->_resp_remaining -= (uint64_t)c;
        f->resp_body_size += (uint64_t)c;
        progress = c > 0;
        if (r->_resp_remaining == 0) {
            h1_resp_finish(r);
            return true;
        }
        break;
    case H1_BODY_CHUNKED:
        c = h1_relay_move_chunked(r, &r->_resp_chunks, r->_up_in, r->_client_out,
                                  &f->resp_body_size, FLOW_RESPONSE, &why);
        if (c < 0) {
            char msg[H1_RELAY_REASON_MAX];

            snprintf(msg, sizeof(msg), "bad response from upstream: %s", why);
            h1_relay_abort_exchange(r, msg);
            return true;
        }
        progress = c > 0;
        if (h1_chunk_decoder_is_done(&r->_resp_chunks)) {
            h1_resp_finish(r);
            return true;
        }
        break;
    case H1_BODY_CLOSE:
        c = (ssize_t)h1_relay_move_body(r, r->_up_in, r->_client_out, UINT64_MAX, FLOW_RESPONSE);
        f->resp_body_size += (uint64_t)c;
        progress = c > 0;
        if (r->_up_eof && buf_used(r->_up_in) == 0) {
            h1_resp_finish(r);
            return true;
        }
        return progress;
    case H1_BODY_TUNNEL:
        if (!r->_websocket)
            h1_relay_report_flow(r); /* a WebSocket's flow waits for its message counts */
        h1_set_state(r, H1_STATE_RAW);
        return true;
    default:
        h1_resp_finish(r);
        return true;
    }
    if (r->_up_eof && buf_used(r->_up_in) == 0) {
        h1_relay_abort_exchange(r, "upstream closed while responding");
        return true;
    }
    return progress;
}

bool h1_resp_step(struct h1_relay *r)
{
    bool progress = false;

    if (!r->_req_head_done)
        return false; /* nothing was asked yet: leave early upstream bytes where they are */
    if (r->_stall && r->_state != H1_STATE_RESP_BODY) { /* inject_fault stall */
        uint64_t now = flow_now_ns();

        if (r->_stall_due == 0)
            r->_stall_due = now + (uint64_t)r->_opts.stall_ms * 1000000ull;
        if (now < r->_stall_due)
            return false;
        r->_stall = false;
        h1_answer_error(r, 504, "response held by inject_fault stall until the idle timeout");
        return true;
    }
    if (!r->_resp_head_forward && r->_state != H1_STATE_RESP_BODY) {
        progress = step_resp_head(r);
        if (!r->_resp_head_forward)
            return progress;
    }
    if (r->_resp_head_forward) {
        progress |= step_resp_head_out(r);
        if (r->_resp_head_forward)
            return progress;
    }
    if (r->_state == H1_STATE_RESP_BODY)
        progress |= step_resp_body(r);
    return progress;
}

/* ws_message_from_client / _from_server report one WebSocket message (ws_frame.h). */
static void ws_message_from_client(void *arg, int opcode, uint64_t len)
{
    struct h1_relay *r = arg;

    r->_opts.on_ws_message(r->_opts.on_ws_arg, r->_flow, true, opcode, len);
}

static void ws_message_from_server(void *arg, int opcode, uint64_t len)
{
    struct h1_relay *r = arg;

    r->_opts.on_ws_message(r->_opts.on_ws_arg, r->_flow, false, opcode, len);
}

/* raw_move moves what fits from `in` to `out`, counting WebSocket messages in `ws` on the
 * way. Returns bytes moved. */
static size_t raw_move(struct h1_relay *r, struct buf *in, struct buf *out,
                       struct ws_frame_count *ws)
{
    size_t n = min_size(buf_used(in), buf_room(out));

    if (r->_websocket && n > 0)
        ws_frame_count_feed(ws, buf_head(in), n);
    return h1_relay_move_bytes(in, out, n);
}

bool h1_resp_step_raw(struct h1_relay *r)
{
    bool progress = false;

    progress |= raw_move(r, r->_client_in, r->_up_out, &r->_ws[0]) > 0;
    progress |= raw_move(r, r->_up_in, r->_client_out, &r->_ws[1]) > 0;
    if ((r->_client_eof && buf_used(r->_client_in) == 0) ||
        (r->_up_eof && buf_used(r->_up_in) == 0)) {
        h1_relay_report_flow(r); /* a WebSocket's, with its counts */
        h1_relay_enter_closing(r);
        return true;
    }
    return progress;
}

