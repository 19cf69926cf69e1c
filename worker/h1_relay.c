/* h1_relay.c - HTTP/1.1 relay: one client, one upstream, plaintext bytes in fixed buffers.
 * Owns the exchange state machine (enum h1_state), message framing while streaming, and the
 * error answers. Parsing is shared/h1_parse and shared/target_parse. No I/O but a map_local
 * file's reads (worker/maplocal.h); no allocation but a --modify-body buffer (bounded by
 * body_size_limit). */
#include "worker/h1_relay.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "worker/h1_head.h"
#include "worker/flow_body.h"
#include "worker/h1_record.h"
#include "worker/www_auth.h"

static void ws_message_from_client(void *arg, int opcode, uint64_t len);
static void ws_message_from_server(void *arg, int opcode, uint64_t len);

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

/* h1_transition_ok lists the edges of the state machine; anything may go to CLOSING. */
static inline bool h1_transition_ok(enum h1_state from, enum h1_state to)
{
    if (to == H1_STATE_CLOSING)
        return from != H1_STATE_CLOSING;
    switch (from) {
    case H1_STATE_REQ_HEAD:
        return to == H1_STATE_NEED_UPSTREAM || to == H1_STATE_REQ_BODY || to == H1_STATE_LOCAL;
    case H1_STATE_LOCAL:
        return to == H1_STATE_REQ_HEAD;
    case H1_STATE_NEED_UPSTREAM:
        return to == H1_STATE_REQ_BODY;
    case H1_STATE_REQ_BODY:
        return to == H1_STATE_RESP_HEAD || to == H1_STATE_RESP_BODY;
    case H1_STATE_RESP_HEAD:
        return to == H1_STATE_RESP_BODY;
    case H1_STATE_RESP_BODY:
        return to == H1_STATE_REQ_HEAD || to == H1_STATE_RAW;
    default:
        return false;
    }
}

static void h1_set_state(struct h1_relay *r, enum h1_state next)
{
    assert(h1_transition_ok(r->_state, next)); /* programmer error, not peer input */
    r->_state = next;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

static size_t head_limit(const struct h1_relay *r, const struct buf *in)
{
    size_t limit = r->_opts.max_header_size != 0 ? r->_opts.max_header_size : H1_HEAD_MAX_DEFAULT;

    return min_size(limit, in->cap);
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

static void copy_target(struct h1_target *dst, const char *host, size_t host_len, uint16_t port,
                        bool tls, bool is_ipv6)
{
    size_t n = min_size(host_len, sizeof(dst->host) - 1);

    memcpy(dst->host, host, n);
    dst->host[n] = '\0';
    dst->port = port;
    dst->tls = tls;
    dst->is_ipv6 = is_ipv6;
}

static bool same_target(const struct h1_target *a, const struct h1_target *b)
{
    return a->port == b->port && a->tls == b->tls && strcasecmp(a->host, b->host) == 0;
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

static void mb_free(struct h1_relay *r);
static bool mb_start(struct h1_relay *r, enum h1_body body, uint64_t content_length);
static enum h1_head_conn resp_conn(const struct h1_relay *r);
static void finish_exchange(struct h1_relay *r);
static int mb_append(struct h1_relay *r, const uint8_t *p, size_t n);
static size_t mb_payload(struct h1_relay *r);
static void req_done(struct h1_relay *r);

/* ---- flow reporting and error answers ------------------------------------------------ */

static void ensure_flow(struct h1_relay *r)
{
    if (!r->_flow_begun) {
        flow_begin(r->_flow);
        r->_flow_begun = true;
    }
}

/* report_flow finishes the exchange's record and hands it to the loop. */
static void report_flow(struct h1_relay *r)
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
    mb_free(r);
    if (r->_opts.on_flow != NULL)
        r->_opts.on_flow(r->_opts.on_flow_arg, f);
    flow_next(f);
    r->_flow_begun = false;
}

static void enter_closing(struct h1_relay *r)
{
    if (r->_state != H1_STATE_CLOSING)
        h1_set_state(r, H1_STATE_CLOSING);
}

/* close_quiet ends the connection without a record: nothing worth one was received. */
static void close_quiet(struct h1_relay *r)
{
    maplocal_answer_close(&r->_ml);
    r->_flow_begun = false;
    enter_closing(r);
}

/* abort_exchange ends the connection; the exchange in progress is reported with `why`. */
static void abort_exchange(struct h1_relay *r, const char *why)
{
    if (r->_flow_begun) {
        flow_set_error(r->_flow, why);
        report_flow(r);
    }
    enter_closing(r);
}

/* answer_error queues "<status>" with `why` as a text body for the client, records it as the
 * exchange's response and error, reports the flow and closes after the flush. Called only
 * before any byte of an upstream final response reached client_out. If part of an interim
 * (1xx) head is already there, an answer appended to it would be garbage to the client, so
 * the connection is closed instead with `why` as the flow's error. */
static void answer_error_body(struct h1_relay *r, int status, const char *why, const char *body);

static void answer_error(struct h1_relay *r, int status, const char *why)
{
    answer_error_body(r, status, why, NULL);
}

/* answer_error_body is answer_error with a body of its own (NULL: the reason and its hint). */
static void answer_error_body(struct h1_relay *r, int status, const char *why, const char *body)
{
    struct flow *f = r->_flow;
    const char *text = h1_status_reason(status);
    size_t blen = 0;
    ssize_t n;

    if (r->_resp_head_forward && r->_resp_head_moved > 0) {
        abort_exchange(r, why != NULL && why[0] != '\0' ? why : text);
        return;
    }
    if (why == NULL || why[0] == '\0')
        why = text;
    r->_answer_ext = NULL;
    n = answer_format(r->_answer, sizeof(r->_answer), status, why, NULL, body, &blen);
    r->_answer_len = n < 0 ? 0 : (size_t)n;
    r->_answer_off = 0;

    ensure_flow(r);
    answer_record(f, status, why, blen);
    if (f->t_response_first == 0)
        f->t_response_first = flow_now_ns();
    report_flow(r);
    enter_closing(r);
}

static bool flush_answer(struct h1_relay *r)
{
    const uint8_t *a = r->_answer_ext != NULL ? r->_answer_ext : (const uint8_t *)r->_answer;
    size_t n = buf_append(r->_client_out, a + r->_answer_off, r->_answer_len - r->_answer_off);

    r->_answer_off += n;
    return n > 0;
}

/* ---- request head ------------------------------------------------------------------- */

/* start_exchange sets up request and response tracking for a parsed head of `head_len`
 * bytes at the front of client_in. */
static void start_exchange(struct h1_relay *r, const struct h1_request *req, size_t head_len)
{
    size_t trailer_max = head_limit(r, r->_client_in);

    r->_resp_conn_set = false;
    r->_req_is_head = h1_method_is(req->method, req->method_len, "HEAD");
    r->_req_http10 = req->minor_version == 0;
    r->_req_upgrade = req->framing.upgrade;
    r->_req_keep_alive = req->framing.keep_alive;
    r->_req_head_len = head_len;
    r->_req_head_sent = 0;
    r->_req_head_done = false;
    r->_req_body = h1_request_body(req);
    r->_req_remaining = req->framing.content_length > 0 ? (uint64_t)req->framing.content_length : 0;
    h1_chunk_decoder_init(&r->_req_chunks, trailer_max);
    r->_req_done = false;

    r->_resp_head_len = 0;
    r->_resp_head_moved = 0;
    r->_resp_head_forward = false;
    r->_resp_interim = false;
    r->_resp_drop = false;
    r->_resp_body = H1_BODY_NONE;
    r->_resp_remaining = 0;
    h1_chunk_decoder_init(&r->_resp_chunks, head_limit(r, r->_up_in));
    r->_resp_keep_alive = false;
}

enum { RULES_GO = 0, RULES_DONE, RULES_LOCAL };

/* apply_request_rules runs the rules on the request just recorded (worker/rules.h). Returns
 * RULES_DONE when the request was answered or the connection aborted instead of forwarding
 * it, RULES_LOCAL when --map-local answers it, RULES_GO otherwise. */
static int apply_request_rules(struct h1_relay *r)
{
    struct rules_verdict *v = &r->_verdict;
    const struct flow *f = r->_flow;
    const char *why = NULL;
    struct target t;

    r->_mapped = r->_edits_on = r->_stall = false;
    r->_hold_until = r->_stall_due = 0;
    if (r->_opts.rules == NULL)
        return RULES_GO;
    memset(v, 0, sizeof(*v));
    (void)rules_on_request_head(r->_opts.rules, r->_flow, r->_opts.rng, v);
    if (v->block_status == 444 || v->fault == RULES_FAULT_RESET) {
        abort_exchange(r, v->block_status == 444 ? "closed by block_list (444)"
                                                 : "connection reset by inject_fault");
        return RULES_DONE;
    }
    if (v->block_status != 0 || v->fault == RULES_FAULT_STATUS) {
        answer_error(r, v->block_status != 0 ? v->block_status : v->fault_status,
                     v->block_status != 0 ? "blocked by block_list" : v->fault_why);
        return RULES_DONE;
    }
    if (v->map_local > 0)
        return RULES_LOCAL;
    if (v->url_changed && target_parse_request(flow_str_ptr(f, f->url), f->url.len, false, &t,
                                               &why) == 0 && t.form == TARGET_FORM_ABSOLUTE) {
        copy_target(&r->_target, t.host, t.host_len, t.port, t.tls, t.is_ipv6);
        r->_absolute = r->_mapped = true; /* the upstream, SNI and Host follow the new URL */
    }
    r->_edits_on = v->n_edits > 0;
    r->_stall = v->fault == RULES_FAULT_STALL;
    if (v->delay_ms > 0)
        r->_hold_until = flow_now_ns() + (uint64_t)v->delay_ms * 1000000ull;
    return RULES_GO;
}

/* start_local answers the request whose head (`head_len` bytes after `skip` blank bytes) is
 * at the front of client_in from --map-local: 403/404 as an error answer, otherwise the head
 * goes into the answer buffer and H1_STATE_LOCAL sends the file as client_out drains. */
static void start_local(struct h1_relay *r, const struct h1_request *req, size_t skip,
                        size_t head_len)
{
    struct maplocal_answer *a = &r->_ml;
    struct flow *f = r->_flow;
    ssize_t rg = h1_header_find(req->headers, req->num_headers, "Range", 0);
    const char *reason;
    char len[24];
    int n;

    start_exchange(r, req, head_len);
    rules_map_local(r->_opts.rules, &r->_verdict, f, rg >= 0 ? req->headers[rg].value : NULL,
                    rg >= 0 ? req->headers[rg].value_len : 0, r->_req_is_head, a);
    if (a->status == 403 || a->status == 404) {
        answer_error(r, a->status, a->why);
        return;
    }
    buf_consume(r->_client_in, skip + head_len);
    r->_req_head_done = true;
    /* a request body is not read: the connection closes after the answer */
    r->_local_close = r->_req_body != H1_BODY_NONE || !r->_req_keep_alive || r->_draining;
    reason = h1_status_reason(a->status);
    snprintf(len, sizeof(len), "%llu", (unsigned long long)a->length);
    n = snprintf(r->_answer, sizeof(r->_answer),
                 "HTTP/1.1 %d %s\r\nServer: mitmd\r\nContent-Length: %s\r\n"
                 "Accept-Ranges: bytes\r\n%s%s%s%s%s%s%s\r\n",
                 a->status, reason, len, a->ctype != NULL ? "Content-Type: " : "",
                 a->ctype != NULL ? a->ctype : "", a->ctype != NULL ? "\r\n" : "",
                 a->content_range[0] != '\0' ? "Content-Range: " : "", a->content_range,
                 a->content_range[0] != '\0' ? "\r\n" : "",
                 r->_local_close ? "Connection: close\r\n" : "");
    r->_answer_len = n > 0 && (size_t)n < sizeof(r->_answer) ? (size_t)n : 0;
    r->_answer_off = 0;
    f->status = a->status;
    flow_str_set(f, &f->resp_version, "HTTP/1.1", 8);
    flow_str_set(f, &f->reason, reason, strlen(reason));
    flow_add_header(f, FLOW_RESPONSE, "Server", 6, "mitmd", 5);
    flow_add_header(f, FLOW_RESPONSE, "Content-Length", 14, len, strlen(len));
    if (a->ctype != NULL)
        flow_add_header(f, FLOW_RESPONSE, "Content-Type", 12, a->ctype, strlen(a->ctype));
    if (a->content_range[0] != '\0')
        flow_add_header(f, FLOW_RESPONSE, "Content-Range", 13, a->content_range,
                        strlen(a->content_range));
    if (a->status == 416)
        flow_set_error(f, a->why);
    f->t_response_first = flow_now_ns();
    h1_set_state(r, H1_STATE_LOCAL);
}

/* step_local sends the map_local file once its head is out, as client_out has room. */
static bool step_local(struct h1_relay *r)
{
    struct buf *out = r->_client_out;
    ssize_t n;

    if (r->_answer_off < r->_answer_len)
        return false;
    if (r->_ml.left > 0) {
        size_t room = buf_room(out);

        if (room == 0)
            return false;
        n = maplocal_read(&r->_ml, buf_tail(out), room);
        if (n < 0) {
            abort_exchange(r, "map_local: reading the file failed");
            return true;
        }
        buf_commit(out, (size_t)n);
        r->_flow->resp_body_size += (uint64_t)n;
        if (r->_ml.left > 0)
            return n > 0;
    }
    report_flow(r);
    if (r->_local_close)
        enter_closing(r);
    else
        h1_set_state(r, H1_STATE_REQ_HEAD);
    return true;
}

/* apply_replay answers the request from the server replay recording (worker/replay.h), its
 * body (when part of the key) complete after the head of `head_len` bytes. Returns true when
 * it was answered or the connection ended instead of forwarding it. */
static bool apply_replay(struct h1_relay *r, const struct h1_request *req, size_t head_len)
{
    const uint8_t *body = buf_head(r->_client_in) + head_len;
    struct replay_answer a;
    size_t blen = 0;

    if (replay_h1_body(r->_opts.replay, req, head_len, buf_used(r->_client_in),
                       r->_client_in->cap, &blen) < 0)
        blen = 0; /* chunked or too large: keyed without it, so not matched unless ignored */
    switch (replay_match(r->_opts.replay, r->_flow, body, blen, &a)) {
    case REPLAY_FORWARD:
        return false;
    case REPLAY_KILL:
        abort_exchange(r, "not in the server replay recording: killed (server_replay_extra)");
        return true;
    case REPLAY_STATUS:
        answer_error(r, a.status, "not in the server replay recording (server_replay_extra)");
        return true;
    case REPLAY_ANSWER:
        break;
    }
    r->_flow->req_body_size = blen;
    flow_body_feed(r->_flow, FLOW_REQUEST, body, blen);
    buf_consume(r->_client_in, head_len + blen);
    r->_answer_ext = a.h1;
    r->_answer_len = a.entry->h1_len;
    r->_answer_off = 0;
    report_flow(r);
    if (!req->framing.keep_alive || r->_draining)
        enter_closing(r);
    return true;
}

static bool step_req_head(struct h1_relay *r)
{
    struct buf *in = r->_client_in;
    size_t used = buf_used(in);
    struct h1_header headers[H1_MAX_HEADERS];
    struct h1_request req;
    struct target t;
    const char *why = NULL;
    size_t skip;
    ssize_t n;
    int err;

    if (used == 0) {
        if (r->_client_eof) {
            close_quiet(r);
            return true;
        }
        return false;
    }
    if (r->_answer_off < r->_answer_len)
        return false; /* a replayed response is still going out */
    ensure_flow(r);
    n = h1_parse_request(buf_head(in), used, head_limit(r, in), &req, headers, H1_MAX_HEADERS,
                         &why);
    if (n == -EAGAIN) {
        if (used >= head_limit(r, in)) {
            answer_error(r, 431, "request header block too large");
            return true;
        }
        if (r->_client_eof) {
            close_quiet(r); /* the client gave up mid-head: nobody to answer */
            return true;
        }
        return false;
    }
    if (n < 0) {
        int status = h1_err_status(req.err);

        answer_error(r, status != 0 ? status : 400, why);
        return true;
    }
    if (r->_opts.replay != NULL && !r->_client_eof &&
        replay_h1_body(r->_opts.replay, &req, (size_t)n, used, in->cap, &skip) == 0)
        return false; /* server replay keys the body: wait for all of it (`skip`: unused) */
    if (h1_method_is(req.method, req.method_len, "CONNECT")) {
        h1_record_request(r, &req, NULL, false);
        answer_error(r, 400, "CONNECT is accepted only as the first request of a connection");
        return true;
    }
    err = target_parse_request(req.target, req.target_len, false, &t, &why);
    h1_record_request(r, &req, &t, err == 0);
    if (err != 0) {
        answer_error(r, 400, why);
        return true;
    }
    if (r->_fail_pending) {
        answer_error(r, 502, r->_fail_why);
        return true;
    }
    if (t.form == TARGET_FORM_ABSOLUTE) {
        if (!target_host_is_valid(t.host, t.host_len)) {
            answer_error(r, 400, "invalid host in request target");
            return true;
        }
        copy_target(&r->_target, t.host, t.host_len, t.port, t.tls, t.is_ipv6);
        r->_absolute = true;
    } else {
        if (!r->_has_upstream) {
            answer_error_body(r, 400, "not a proxy request (origin-form)", ANSWER_NOT_PROXY_BODY);
            return true;
        }
        r->_target = r->_upstream;
        r->_absolute = false;
    }
    if (r->_absolute && r->_opts.proxy_auth != NULL && /* --proxyauth (worker/access.h) */
        !r->_opts.proxy_auth(r->_opts.proxy_auth_arg, req.headers, req.num_headers, &why)) {
        answer_error(r, 407, why);
        return true;
    }
    if (r->_opts.www_auth != NULL && !www_auth_h1_passes(r, &req, &why)) {
        answer_error(r, 401, why); /* reverse, transparent: mitmd is the server (mitmproxy) */
        return true;
    }
    /* Blank lines before the request line (RFC 9112 §2.2) are not forwarded. */
    skip = (size_t)((const uint8_t *)req.method - buf_head(in));
    switch (apply_request_rules(r)) {
    case RULES_DONE:
        return true;
    case RULES_LOCAL:
        start_local(r, &req, skip, (size_t)n - skip);
        return true;
    default:
        break;
    }
    if (r->_opts.www_auth != NULL && www_auth_h1_drop(r) != 0) {
        answer_error(r, 500, "too many header edits to drop Authorization");
        return true;
    }
    if (r->_opts.replay != NULL && apply_replay(r, &req, (size_t)n))
        return true; /* answered from the server replay recording (worker/replay.h) */
    start_exchange(r, &req, (size_t)n - skip);
    /* --modify-body: a request body within body_size_limit is collected before it goes */
    r->_mb_req = r->_mb_req_head = false;
    if (r->_opts.rules != NULL && (r->_req_body == H1_BODY_LENGTH || r->_req_body == H1_BODY_CHUNKED) &&
        rules_body_wanted(r->_opts.rules, r->_flow)) {
        if (r->_req_body == H1_BODY_LENGTH && r->_req_remaining > rules_body_limit(r->_opts.rules))
            r->_flow->rules_note = "modify_body: body over body_size_limit, passed unchanged";
        else
            r->_mb_req = true;
    }
    buf_consume(in, skip);
    /* Bytes from the upstream before any request are not a response to this one: that
     * connection is out of step, so ask for a fresh one rather than misattribute them. */
    if (r->_up_connected && buf_used(r->_up_in) > 0)
        r->_up_connected = false;
    if (!r->_up_connected || (r->_absolute && !same_target(&r->_upstream, &r->_target)))
        h1_set_state(r, H1_STATE_NEED_UPSTREAM);
    else
        h1_set_state(r, H1_STATE_REQ_BODY);
    return true;
}

/* ---- request forwarding ------------------------------------------------------------- */

/* req_conn says what mitmd's Connection field tells the upstream. */
static enum h1_head_conn req_conn(const struct h1_relay *r)
{
    if (r->_req_upgrade)
        return H1_HEAD_CONN_UPGRADE;
    if (r->_req_http10) /* HTTP/1.0 closes by default */
        return r->_req_keep_alive ? H1_HEAD_CONN_KEEP_ALIVE : H1_HEAD_CONN_DEFAULT;
    return r->_req_keep_alive ? H1_HEAD_CONN_DEFAULT : H1_HEAD_CONN_CLOSE;
}

/* step_req_head_out writes the request head upstream (h1_head.h: origin-form, CRLF, no
 * hop-by-hop fields), parsing the buffered head again so that nothing is staged. */
static bool step_req_head_out(struct h1_relay *r)
{
    struct h1_emitter e = {.out = r->_up_out, .skip = r->_req_head_sent};
    struct h1_header headers[H1_MAX_HEADERS];
    struct h1_request req;
    struct target t;
    char host[TARGET_HOST_MAX + 16] = "";
    const char *why = NULL;
    ssize_t n;

    if (r->_mb_req_head) /* --modify-body: the head was taken into _mb */
        n = h1_parse_request(r->_mb, r->_mb_head, r->_mb_head, &req, headers, H1_MAX_HEADERS,
                             &why);
    else
        n = h1_parse_request(buf_head(r->_client_in), r->_req_head_len,
                             head_limit(r, r->_client_in), &req, headers, H1_MAX_HEADERS, &why);
    if (r->_mapped) /* map_remote: path and query come from the new URL */
        n = n < 0 ? n
                  : target_parse_request(flow_str_ptr(r->_flow, r->_flow->url),
                                         r->_flow->url.len, false, &t, &why);
    else if (n >= 0 && r->_absolute)
        n = target_parse_request(req.target, req.target_len, false, &t, &why);
    if (n < 0) {
        answer_error(r, 400, "request head changed while buffered");
        return true;
    }
    if (r->_absolute)
        h1_record_authority(&r->_target, host, sizeof(host));
    else if (r->_opts.host_rewrite != NULL)
        snprintf(host, sizeof(host), "%s", r->_opts.host_rewrite);
    h1_head_request(&e, &req, r->_absolute ? &t : NULL, host, req_conn(r),
                    r->_edits_on ? &r->_verdict : NULL);
    r->_req_head_sent += e.written;
    if (e.full)
        return e.written > 0;
    if (!r->_mb_req_head)
        buf_consume(r->_client_in, r->_req_head_len);
    r->_req_head_done = true;
    return true;
}

/* ---- --modify-body on the request ---------------------------------------------------- */

/* mbq_step collects the request body when --modify-body wants it (the head is taken from
 * client_in into _mb first), then lets the head go out (from _mb, with the new
 * Content-Length) and sends the rewritten body. Returns -1 when the request streams as
 * usual, else whether it made progress. */
static int mbq_step(struct h1_relay *r)
{
    struct buf *in = r->_client_in;
    const char *why = NULL;
    bool done = false;
    size_t n;

    if (!r->_mb_req)
        return -1;
    if (!r->_mb_req_head) { /* take the head */
        if (mb_append(r, buf_head(in), r->_req_head_len) != 0) {
            r->_mb_req = false;
            r->_flow->rules_note = "modify_body: out of memory, passed unchanged";
            mb_free(r);
            return -1;
        }
        buf_consume(in, r->_req_head_len);
        r->_mb_head = r->_req_head_len;
        r->_mb_req_head = r->_mb_on = true;
    }
    if (r->_mb_on) {
        n = buf_used(in);
        if (r->_req_body == H1_BODY_LENGTH) {
            if (n > r->_req_remaining)
                n = (size_t)r->_req_remaining;
        } else {
            uint64_t seen = 0;
            ssize_t c = n == 0 ? 0 : h1_chunk_decode_all(&r->_req_chunks, buf_head(in), n, &seen,
                                                         &why);

            if (c < 0) {
                answer_error(r, 400, why);
                return 1;
            }
            n = (size_t)c;
            done = h1_chunk_decoder_is_done(&r->_req_chunks);
        }
        if (n > 0 && mb_append(r, buf_head(in), n) != 0) {
            r->_flow->rules_note = "modify_body: out of memory, passed unchanged";
            done = false;
            goto overflow;
        }
        buf_consume(in, n);
        if (r->_req_body == H1_BODY_LENGTH) {
            r->_req_remaining -= n;
            done = r->_req_remaining == 0;
        }
        if (done) {
            size_t plen;
            uint8_t *out = NULL;
            size_t out_len = 0;

            r->_mb_on = false;
            plen = r->_req_body == H1_BODY_CHUNKED ? 0 : r->_mb_len - r->_mb_head;
            if (r->_req_body == H1_BODY_CHUNKED) { /* decode in place, as for responses */
                enum h1_body keep = r->_resp_body;

                r->_resp_body = H1_BODY_CHUNKED;
                plen = mb_payload(r);
                r->_resp_body = keep;
            }
            if (rules_body_apply(r->_opts.rules, r->_flow, r->_mb + r->_mb_head, plen, &out,
                                 &out_len) != 0) {
                r->_flow->rules_note = "modify_body: rewriting failed, passed unchanged";
                out = r->_mb + r->_mb_head;
                out_len = plen;
            } else {
                r->_mb_rewrite = true;
            }
            r->_mb_body = out;
            r->_mb_body_len = out_len;
            r->_mb_body_off = 0;
            r->_flow->req_body_size = out_len;
            snprintf(r->_mb_clen, sizeof(r->_mb_clen), "%zu", out_len);
            r->_mb_hdr[0] = (struct rules_header){"Content-Length", "content-length", 14,
                                                  r->_mb_clen, strlen(r->_mb_clen)};
            r->_mb_hdr[1] = (struct rules_header){"Transfer-Encoding", "transfer-encoding", 17,
                                                  "", 0};
            if (!r->_edits_on)
                r->_verdict.n_edits = 0;
            if (r->_verdict.n_edits + 2 <= RULES_MAX_PER_KIND) {
                r->_verdict.edits[r->_verdict.n_edits++] = &r->_mb_hdr[0];
                r->_verdict.edits[r->_verdict.n_edits++] = &r->_mb_hdr[1];
            }
            r->_edits_on = true;
            r->_req_body = H1_BODY_LENGTH;
            r->_req_remaining = 0;
            r->_mb_out = true;
            return 1;
        }
        if (r->_mb_len - r->_mb_head <= rules_body_limit(r->_opts.rules)) {
            if (r->_client_eof && buf_used(in) == 0) {
                abort_exchange(r, "client closed while sending the request body");
                return 1;
            }
            return n > 0;
        }
        r->_flow->rules_note = "modify_body: body over body_size_limit, passed unchanged";
    overflow: /* the head and the raw bytes collected go out, the rest streams as usual */
        r->_mb_on = false;
        r->_mb_body = r->_mb + r->_mb_head;
        r->_mb_body_len = r->_mb_len - r->_mb_head;
        r->_mb_body_off = 0;
        r->_mb_out = true;
        return 1;
    }
    if (!r->_req_head_done) {
        bool p = step_req_head_out(r);

        if (!r->_req_head_done)
            return p;
    }
    n = buf_append(r->_up_out, r->_mb_body + r->_mb_body_off, r->_mb_body_len - r->_mb_body_off);
    r->_mb_body_off += n;
    if (r->_mb_body_off < r->_mb_body_len)
        return n > 0;
    r->_mb_req = r->_mb_out = false; /* sent: the rest (nothing after a rewrite) as usual */
    if (r->_req_body == H1_BODY_LENGTH && r->_req_remaining == 0) {
        r->_req_head_done = true;
        mb_free(r);
        r->_mb_req_head = false;
        req_done(r);
    }
    return 1;
}

static bool response_started(const struct h1_relay *r)
{
    return r->_state == H1_STATE_RESP_BODY || r->_state == H1_STATE_RAW;
}

static void req_done(struct h1_relay *r)
{
    r->_req_done = true;
    r->_flow->t_request_sent = flow_now_ns();
    if (r->_state == H1_STATE_REQ_BODY)
        h1_set_state(r, H1_STATE_RESP_HEAD);
}

/* move_bytes copies up to `max` bytes from `in` to `out` as room allows, consuming them. */
static size_t move_bytes(struct buf *in, struct buf *out, uint64_t max)
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

/* move_chunked forwards chunked framing unchanged while the decoder tracks where the body
 * ends. Returns bytes moved, or -EPROTO / -EMSGSIZE with `*why` set. */
static ssize_t move_chunked(struct h1_chunk_decoder *d, struct buf *in, struct buf *out,
                            uint64_t *payload, const char **why)
{
    size_t n = min_size(buf_used(in), buf_room(out));
    uint64_t seen = 0;
    ssize_t c;

    if (n == 0)
        return 0;
    c = h1_chunk_decode_all(d, buf_head(in), n, &seen, why);
    if (c < 0)
        return c;
    *payload += seen;
    c = (ssize_t)buf_append(out, buf_head(in), (size_t)c);
    buf_consume(in, (size_t)c);
    return c;
}

static bool step_req_send(struct h1_relay *r)
{
    struct flow *f = r->_flow;
    const char *why = NULL;
    bool progress = false;
    ssize_t c;

    if (!r->_req_head_done || r->_mb_req) {
        int q;

        if (r->_hold_until != 0) { /* inject_latency: the ring timer pumps us then */
            if (flow_now_ns() < r->_hold_until)
                return false;
            r->_hold_until = 0;
        }
        if ((q = mbq_step(r)) >= 0) {
            if (r->_mb_req || !r->_req_head_done || r->_req_done)
                return q > 0;
            progress = true; /* an overflowed body streams on below */
        } else {
            progress = step_req_head_out(r);
        }
        if (!r->_req_head_done)
            return progress;
    }
    if (r->_req_done)
        return progress;
    switch (r->_req_body) {
    case H1_BODY_LENGTH:
        c = (ssize_t)move_bytes(r->_client_in, r->_up_out, r->_req_remaining);
        flow_body_feed(f, FLOW_REQUEST, buf_tail(r->_up_out) - c, (size_t)c);
        r->_req_remaining -= (uint64_t)c;
        f->req_body_size += (uint64_t)c;
        progress |= c > 0;
        if (r->_req_remaining == 0) {
            req_done(r);
            return true;
        }
        break;
    case H1_BODY_CHUNKED:
        c = move_chunked(&r->_req_chunks, r->_client_in, r->_up_out, &f->req_body_size, &why);
        if (c < 0) {
            if (response_started(r))
                abort_exchange(r, why);
            else
                answer_error(r, 400, why);
            return true;
        }
        flow_body_feed_chunked(f, FLOW_REQUEST, buf_tail(r->_up_out) - c, (size_t)c);
        progress |= c > 0;
        if (h1_chunk_decoder_is_done(&r->_req_chunks)) {
            req_done(r);
            return true;
        }
        break;
    default:
        req_done(r);
        return true;
    }
    if (r->_client_eof && buf_used(r->_client_in) == 0) {
        abort_exchange(r, "client closed while sending the request body");
        return true;
    }
    return progress;
}

/* ---- response ----------------------------------------------------------------------- */

static void bad_response(struct h1_relay *r, const char *why)
{
    char msg[H1_RELAY_REASON_MAX];

    snprintf(msg, sizeof(msg), "bad response from upstream: %s", why != NULL ? why : "malformed");
    answer_error(r, 502, msg);
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
            answer_error(r, 502, "upstream closed before responding");
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
            answer_error(r, 502, "upstream closed while responding");
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

        r->_websocket = up >= 0 && h1_token_list_has(resp.headers[up].value,
                                                     resp.headers[up].value_len, "websocket");
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
    (void)mb_start(r, body, r->_resp_remaining); /* --modify-body holds the head */
    h1_set_state(r, H1_STATE_RESP_BODY);
    return true;
}

/* resp_conn says what mitmd's Connection field tells the client about this response. */
static enum h1_head_conn resp_conn(const struct h1_relay *r)
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
            r->_resp_conn = resp_conn(r);
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
        r->_resp_conn_set = r->_resp_conn == H1_HEAD_CONN_CLOSE; /* kept: finish_exchange */
    else
        r->_resp_conn_set = false;
    r->_resp_interim = false;
    r->_resp_drop = false;
    return true;
}

/* finish_exchange reports a complete response and decides whether the connection goes on. */
static void finish_exchange(struct h1_relay *r)
{
    /* draining: close after a response that said so; one that went out as keep-alive before
     * the drain began is followed by one more exchange (its client may be sending already) */
    bool said_close = r->_resp_conn_set && r->_resp_conn == H1_HEAD_CONN_CLOSE;
    bool keep = r->_req_done && r->_req_keep_alive && r->_resp_keep_alive && !said_close;

    report_flow(r);
    if (!keep) {
        enter_closing(r);
        return;
    }
    h1_set_state(r, H1_STATE_REQ_HEAD);
}


/* ---- --modify-body on the response -------------------------------------------------- */

static void mb_free(struct h1_relay *r)
{
    if (r->_mb_rewrite)
        free(r->_mb_body);
    free(r->_mb);
    r->_mb = r->_mb_body = NULL;
    r->_mb_len = r->_mb_cap = r->_mb_head = r->_mb_body_len = r->_mb_body_off = 0;
    r->_mb_on = r->_mb_out = r->_mb_rewrite = false;
}

static int mb_append(struct h1_relay *r, const uint8_t *p, size_t n)
{
    if (r->_mb_len + n > r->_mb_cap) {
        size_t cap = r->_mb_cap == 0 ? 16384 : r->_mb_cap;
        uint8_t *g;

        while (cap < r->_mb_len + n)
            cap *= 2;
        g = realloc(r->_mb, cap);
        if (g == NULL)
            return -ENOMEM;
        r->_mb = g;
        r->_mb_cap = cap;
    }
    memcpy(r->_mb + r->_mb_len, p, n);
    r->_mb_len += n;
    return 0;
}

/* mb_start holds the parsed response head (`head_len` bytes at the front of up_in) when a
 * --modify-body spec wants its body. Returns true when the head was taken. */
static bool mb_start(struct h1_relay *r, enum h1_body body, uint64_t content_length)
{
    struct rules *rules = r->_opts.rules;

    if (rules == NULL || (body != H1_BODY_LENGTH && body != H1_BODY_CHUNKED) ||
        !rules_body_wanted(rules, r->_flow))
        return false;
    if (body == H1_BODY_LENGTH && content_length > rules_body_limit(rules)) {
        r->_flow->rules_note = "modify_body: body over body_size_limit, passed unchanged";
        return false;
    }
    mb_free(r); /* what the request body left */
    r->_mb_req_head = false;
    if (mb_append(r, buf_head(r->_up_in), r->_resp_head_len) != 0) {
        r->_flow->rules_note = "modify_body: out of memory, passed unchanged";
        mb_free(r);
        return false;
    }
    buf_consume(r->_up_in, r->_resp_head_len);
    r->_mb_head = r->_resp_head_len;
    r->_resp_head_len = 0;
    r->_resp_head_forward = false;
    r->_mb_on = true;
    return true;
}

/* mb_payload decodes the chunked body collected in _mb in place. Returns its length. */
static size_t mb_payload(struct h1_relay *r)
{
    struct h1_chunk_decoder d;
    uint8_t *p = r->_mb + r->_mb_head;
    size_t len = r->_mb_len - r->_mb_head, at = 0, out = 0;
    const char *why = NULL;

    if (r->_resp_body != H1_BODY_CHUNKED)
        return len;
    h1_chunk_decoder_init(&d, head_limit(r, r->_up_in));
    while (at < len && !h1_chunk_decoder_is_done(&d)) {
        size_t off = 0, dl = 0;
        ssize_t c = h1_chunk_decode(&d, p + at, len - at, &off, &dl, &why);

        if (c <= 0)
            break;
        memmove(p + out, p + at + off, dl); /* out <= at + off: compaction moves forward */
        out += dl;
        at += (size_t)c;
    }
    return out;
}

/* mb_finish rewrites the collected body and starts sending head and result. */
static void mb_finish(struct h1_relay *r)
{
    struct rules_verdict *v = &r->_verdict;
    size_t plen = mb_payload(r);
    uint8_t *out = NULL;
    size_t out_len = 0;

    r->_mb_on = false;
    if (rules_body_apply(r->_opts.rules, r->_flow, r->_mb + r->_mb_head, plen, &out, &out_len) !=
        0) {
        r->_flow->rules_note = "modify_body: rewriting failed, passed unchanged";
        out = r->_mb + r->_mb_head; /* the decoded body, unchanged */
        out_len = plen;
    } else {
        r->_mb_rewrite = true;
    }
    r->_mb_body = out;
    r->_mb_body_len = out_len;
    r->_mb_body_off = 0;
    r->_flow->resp_body_size = out_len;
    snprintf(r->_mb_clen, sizeof(r->_mb_clen), "%zu", out_len);
    r->_mb_hdr[0] = (struct rules_header){"Content-Length", "content-length", 14, r->_mb_clen,
                                          strlen(r->_mb_clen)};
    r->_mb_hdr[1] = (struct rules_header){"Transfer-Encoding", "transfer-encoding", 17, "", 0};
    if (!r->_edits_on)
        v->n_edits = 0;
    if (v->n_edits + 2 <= RULES_MAX_PER_KIND) {
        v->edits[v->n_edits++] = &r->_mb_hdr[0];
        v->edits[v->n_edits++] = &r->_mb_hdr[1];
    }
    r->_edits_on = true;
    r->_resp_body = H1_BODY_LENGTH;
    r->_resp_remaining = 0;
    r->_resp_head_moved = 0;
    r->_mb_out = true;
}

/* mb_overflow gives up on a body larger than body_size_limit: the head and the raw bytes
 * collected go out as they are, and the rest streams as usual. */
static void mb_overflow(struct h1_relay *r, const char *note)
{
    r->_flow->rules_note = note;
    r->_mb_on = false;
    r->_mb_body = r->_mb + r->_mb_head;
    r->_mb_body_len = r->_mb_len - r->_mb_head;
    r->_mb_body_off = 0;
    r->_resp_head_moved = 0;
    r->_mb_out = true;
}

/* mb_collect takes response body bytes from up_in into _mb. */
static bool mb_collect(struct h1_relay *r)
{
    struct buf *in = r->_up_in;
    size_t n = buf_used(in);
    const char *why = NULL;
    bool done = false;

    if (r->_resp_body == H1_BODY_LENGTH) {
        if (n > r->_resp_remaining)
            n = (size_t)r->_resp_remaining;
    } else {
        uint64_t seen = 0;
        ssize_t c = n == 0 ? 0 : h1_chunk_decode_all(&r->_resp_chunks, buf_head(in), n, &seen, &why);

        if (c < 0) {
            char msg[H1_RELAY_REASON_MAX];

            snprintf(msg, sizeof(msg), "bad response from upstream: %s", why);
            answer_error(r, 502, msg);
            return true;
        }
        n = (size_t)c;
        r->_flow->resp_body_size += seen;
        done = h1_chunk_decoder_is_done(&r->_resp_chunks);
    }
    if (n > 0 && mb_append(r, buf_head(in), n) != 0) {
        mb_overflow(r, "modify_body: out of memory, passed unchanged");
        return true; /* the bytes stay in up_in and stream after the collected ones */
    }
    buf_consume(in, n);
    if (r->_resp_body == H1_BODY_LENGTH) {
        r->_resp_remaining -= n;
        r->_flow->resp_body_size += n;
        done = r->_resp_remaining == 0;
    }
    if (done) {
        mb_finish(r);
        return true;
    }
    if (r->_mb_len - r->_mb_head > rules_body_limit(r->_opts.rules)) {
        mb_overflow(r, "modify_body: body over body_size_limit, passed unchanged");
        return true;
    }
    if (r->_up_eof && buf_used(in) == 0) {
        answer_error(r, 502, "upstream closed while responding");
        return true;
    }
    return n > 0;
}

/* mb_send writes the held head (with the new Content-Length after a rewrite) and the body. */
static bool mb_send(struct h1_relay *r)
{
    struct h1_header headers[H1_MAX_HEADERS];
    struct h1_response resp;
    const char *why = NULL;
    size_t n;

    if (r->_resp_head_moved != SIZE_MAX) {
        struct h1_emitter e = {.out = r->_client_out, .skip = r->_resp_head_moved};

        if (h1_parse_response(r->_mb, r->_mb_head, r->_mb_head, &resp, headers, H1_MAX_HEADERS,
                              &why) < 0) {
            answer_error(r, 502, "response head changed while buffered");
            return true;
        }
        if (!r->_resp_conn_set) {
            r->_resp_conn = resp_conn(r);
            r->_resp_conn_set = true;
        }
        h1_head_response(&e, &resp, r->_resp_conn, r->_edits_on ? &r->_verdict : NULL);
        r->_resp_head_moved += e.written;
        if (e.full)
            return e.written > 0;
        r->_resp_head_moved = SIZE_MAX; /* the head is out */
        r->_resp_conn_set = r->_resp_conn == H1_HEAD_CONN_CLOSE;
    }
    n = buf_append(r->_client_out, r->_mb_body + r->_mb_body_off,
                   r->_mb_body_len - r->_mb_body_off);
    r->_mb_body_off += n;
    if (r->_mb_body_off < r->_mb_body_len)
        return n > 0;
    if (r->_resp_body == H1_BODY_LENGTH && r->_resp_remaining == 0) { /* rewritten, or whole */
        mb_free(r);
        finish_exchange(r);
        return true;
    }
    /* after an overflow: the rest of the body streams as usual */
    r->_mb_out = false;
    r->_resp_head_moved = 0;
    return true;
}

static bool step_resp_body(struct h1_relay *r)
{
    struct flow *f = r->_flow;
    const char *why = NULL;
    bool progress = false;
    ssize_t c;

    if (r->_mb_out)
        return mb_send(r);
    if (r->_mb_on)
        return mb_collect(r);

    switch (r->_resp_body) {
    case H1_BODY_LENGTH:
        c = (ssize_t)move_bytes(r->_up_in, r->_client_out, r->_resp_remaining);
        flow_body_feed(f, FLOW_RESPONSE, buf_tail(r->_client_out) - c, (size_t)c);
        r->_resp_remaining -= (uint64_t)c;
        f->resp_body_size += (uint64_t)c;
        progress = c > 0;
        if (r->_resp_remaining == 0) {
            finish_exchange(r);
            return true;
        }
        break;
    case H1_BODY_CHUNKED:
        c = move_chunked(&r->_resp_chunks, r->_up_in, r->_client_out, &f->resp_body_size, &why);
        if (c < 0) {
            char msg[H1_RELAY_REASON_MAX];

            snprintf(msg, sizeof(msg), "bad response from upstream: %s", why);
            abort_exchange(r, msg);
            return true;
        }
        flow_body_feed_chunked(f, FLOW_RESPONSE, buf_tail(r->_client_out) - c, (size_t)c);
        progress = c > 0;
        if (h1_chunk_decoder_is_done(&r->_resp_chunks)) {
            finish_exchange(r);
            return true;
        }
        break;
    case H1_BODY_CLOSE:
        c = (ssize_t)move_bytes(r->_up_in, r->_client_out, UINT64_MAX);
        flow_body_feed(f, FLOW_RESPONSE, buf_tail(r->_client_out) - c, (size_t)c);
        f->resp_body_size += (uint64_t)c;
        progress = c > 0;
        if (r->_up_eof && buf_used(r->_up_in) == 0) {
            finish_exchange(r);
            return true;
        }
        return progress;
    case H1_BODY_TUNNEL:
        if (!r->_websocket)
            report_flow(r); /* a WebSocket's flow waits for its message counts */
        h1_set_state(r, H1_STATE_RAW);
        return true;
    default:
        finish_exchange(r);
        return true;
    }
    if (r->_up_eof && buf_used(r->_up_in) == 0) {
        abort_exchange(r, "upstream closed while responding");
        return true;
    }
    return progress;
}

static bool step_resp(struct h1_relay *r)
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
        answer_error(r, 504, "response held by inject_fault stall until the idle timeout");
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
    return move_bytes(in, out, n);
}

static bool step_raw(struct h1_relay *r)
{
    bool progress = false;

    progress |= raw_move(r, r->_client_in, r->_up_out, &r->_ws[0]) > 0;
    progress |= raw_move(r, r->_up_in, r->_client_out, &r->_ws[1]) > 0;
    if ((r->_client_eof && buf_used(r->_client_in) == 0) ||
        (r->_up_eof && buf_used(r->_up_in) == 0)) {
        report_flow(r); /* a WebSocket's, with its counts */
        enter_closing(r);
        return true;
    }
    return progress;
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
            progress |= flush_answer(r);
        switch (r->_state) {
        case H1_STATE_REQ_HEAD:
            progress |= step_req_head(r);
            break;
        case H1_STATE_REQ_BODY:
        case H1_STATE_RESP_HEAD:
        case H1_STATE_RESP_BODY:
            progress |= step_req_send(r);
            if (is_forwarding(r->_state))
                progress |= step_resp(r);
            break;
        case H1_STATE_RAW:
            progress |= step_raw(r);
            break;
        case H1_STATE_LOCAL:
            progress |= step_local(r);
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

void h1_relay_upstream_ready(struct h1_relay *r, const char *host, uint16_t port, bool tls)
{
    if (r->_state != H1_STATE_REQ_HEAD && r->_state != H1_STATE_NEED_UPSTREAM)
        return;
    copy_target(&r->_upstream, host != NULL ? host : "", host != NULL ? strlen(host) : 0, port,
                tls, host != NULL && strchr(host, ':') != NULL);
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
        answer_error(r, 502, why);
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
        close_quiet(r);
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
        answer_error(r, 502, why);
        break;
    case H1_STATE_RESP_BODY:
        abort_exchange(r, why);
        break;
    case H1_STATE_RAW:
        enter_closing(r);
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
        close_quiet(r);
    else
        abort_exchange(r, why);
}

void h1_relay_timeout(struct h1_relay *r, enum h1_timeout which)
{
    switch (which) {
    case H1_TIMEOUT_REQUEST_HEAD:
        if (r->_state != H1_STATE_REQ_HEAD)
            return;
        if (buf_used(r->_client_in) > 0)
            answer_error(r, 408, "request head not received in time");
        else
            close_quiet(r);
        break;
    case H1_TIMEOUT_UPSTREAM:
        if (r->_state == H1_STATE_NEED_UPSTREAM)
            answer_error(r, 504, "upstream connect timed out");
        else if (r->_state == H1_STATE_REQ_BODY || r->_state == H1_STATE_RESP_HEAD)
            answer_error(r, 504, "upstream timed out");
        else if (r->_state == H1_STATE_RESP_BODY)
            abort_exchange(r, "upstream timed out while responding");
        else if (r->_state == H1_STATE_LOCAL)
            abort_exchange(r, "the client did not take the map_local answer in time");
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
    mb_free(r);
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
