/* h1_req.c - the request side of the HTTP/1.1 relay: parsing and checking a request head
 * (target, proxy auth, rules, replay), choosing the upstream, writing the head upstream
 * (worker/h1_head.h) and streaming the request body with its framing. Called by the other
 * worker/h1_*.c files of the relay through h1_relay_internal.h; no I/O, no allocation. */
#include "worker/h1_relay_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "worker/flow_body.h"
#include "worker/h1_head.h"
#include "worker/h1_record.h"
#include "worker/www_auth.h"

static bool same_target(const struct h1_target *a, const struct h1_target *b)
{
    return a->port == b->port && a->tls == b->tls && strcasecmp(a->host, b->host) == 0;
}

/* ---- request head ------------------------------------------------------------------- */

/* h1_req_start_exchange sets up request and response tracking for a parsed head of
 * `head_len` bytes at the front of client_in. */
void h1_req_start_exchange(struct h1_relay *r, const struct h1_request *req, size_t head_len)
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

/* replay_body_ready says whether server replay can look up the request whose head of
 * `head_len` bytes is at the front of client_in: its body (part of the key, or consumed by a
 * replayed answer) is whole in client_in, held (worker/h1_held.h: a chunked body, decoded once
 * as it arrives, or one larger than client_in), or cannot be keyed. False while more must
 * arrive. */
static bool replay_body_ready(struct h1_relay *r, const struct h1_request *req, size_t head_len)
{
    struct buf *in = r->_client_in;
    const uint8_t *b;
    size_t bl, raw;
    const char *why = NULL;

    if (h1_held_state(r->_held) != H1_HELD_OFF || h1_held_wanted(req, in, head_len))
        return h1_held_take(&r->_held, req, in, head_len, r->_client_eof, &why) != 0;
    return r->_client_eof ||
           replay_h1_body(r->_opts.replay, req, buf_head(in), head_len, buf_used(in), in->cap, &b,
                          &bl, &raw) != 0;
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
        h1_relay_abort_exchange(r, v->block_status == 444 ? "closed by block_list (444)"
                                                 : "connection reset by inject_fault");
        return RULES_DONE;
    }
    if (v->block_status != 0 || v->fault == RULES_FAULT_STATUS) {
        h1_answer_error(r, v->block_status != 0 ? v->block_status : v->fault_status,
                        v->block_status != 0 ? "blocked by block_list" : v->fault_why);
        return RULES_DONE;
    }
    if (v->map_local > 0)
        return RULES_LOCAL;
    if (v->url_changed && target_parse_request(flow_str_ptr(f, f->url), f->url.len, false, &t,
                                               &why) == 0 && t.form == TARGET_FORM_ABSOLUTE) {
        h1_relay_copy_target(&r->_target, t.host, t.host_len, t.port, t.tls, t.is_ipv6);
        r->_absolute = r->_mapped = true; /* the upstream, SNI and Host follow the new URL */
    }
    r->_edits_on = v->n_edits > 0;
    r->_stall = v->fault == RULES_FAULT_STALL;
    if (v->delay_ms > 0)
        r->_hold_until = flow_now_ns() + (uint64_t)v->delay_ms * 1000000ull;
    return RULES_GO;
}


bool h1_req_step_head(struct h1_relay *r)
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
            h1_relay_close_quiet(r);
            return true;
        }
        return false;
    }
    if (r->_answer_off < r->_answer_len)
        return false; /* a replayed response is still going out */
    h1_relay_ensure_flow(r);
    n = h1_parse_request(buf_head(in), used, head_limit(r, in), &req, headers, H1_MAX_HEADERS,
                         &why);
    if (n == -EAGAIN) {
        if (used >= head_limit(r, in)) {
            h1_answer_error(r, 431, "request header block too large");
            return true;
        }
        if (r->_client_eof) {
            h1_relay_close_quiet(r); /* the client gave up mid-head: nobody to answer */
            return true;
        }
        return false;
    }
    if (n < 0) {
        int status = h1_err_status(req.err);

        h1_answer_error(r, status != 0 ? status : 400, why);
        return true;
    }
    if (r->_opts.replay != NULL && !replay_body_ready(r, &req, (size_t)n))
        return false; /* server replay keys the body: wait for all of it */
    if (h1_method_is(req.method, req.method_len, "CONNECT")) {
        h1_record_request(r, &req, NULL, false);
        h1_answer_error(r, 400, "CONNECT is accepted only as the first request of a connection");
        return true;
    }
    err = target_parse_request(req.target, req.target_len, false, &t, &why);
    h1_record_request(r, &req, &t, err == 0);
    if (err != 0) {
        h1_answer_error(r, 400, why);
        return true;
    }
    if (r->_fail_pending) {
        h1_answer_error(r, 502, r->_fail_why);
        return true;
    }
    if (t.form == TARGET_FORM_ABSOLUTE) {
        if (!target_host_is_valid(t.host, t.host_len)) {
            h1_answer_error(r, 400, "invalid host in request target");
            return true;
        }
        h1_relay_copy_target(&r->_target, t.host, t.host_len, t.port, t.tls, t.is_ipv6);
        r->_absolute = true;
    } else {
        if (!r->_has_upstream || r->_up_via) { /* the next proxy needs absolute-form */
            h1_answer_error_body(r, 400, "not a proxy request (origin-form)",
                                 ANSWER_NOT_PROXY_BODY);
            return true;
        }
        r->_target = r->_home;
        r->_absolute = false;
    }
    if (r->_absolute && r->_opts.proxy_auth != NULL && /* --proxyauth (worker/access.h) */
        !r->_opts.proxy_auth(r->_opts.proxy_auth_arg, req.headers, req.num_headers, &why)) {
        h1_answer_error(r, 407, why);
        return true;
    }
    if (r->_opts.www_auth != NULL && !www_auth_h1_passes(r, &req, &why)) {
        h1_answer_error(r, 401, why); /* reverse, transparent: mitmd is the server (mitmproxy) */
        return true;
    }
    /* Blank lines before the request line (RFC 9112 §2.2) are not forwarded. */
    skip = (size_t)((const uint8_t *)req.method - buf_head(in));
    switch (apply_request_rules(r)) {
    case RULES_DONE:
        return true;
    case RULES_LOCAL:
        h1_answer_local(r, &req, skip, (size_t)n - skip);
        return true;
    default:
        break;
    }
    if (r->_opts.www_auth != NULL && www_auth_h1_drop(r) != 0) {
        h1_answer_error(r, 500, "too many header edits to drop Authorization");
        return true;
    }
    if (r->_opts.replay != NULL && h1_answer_replay(r, &req, (size_t)n))
        return true; /* answered from the server replay recording (worker/replay.h) */
    h1_req_start_exchange(r, &req, (size_t)n - skip);
    /* --modify-body: a request body within body_size_limit is collected before it goes */
    r->_mb_req = r->_mb_req_head = false;
    if (r->_opts.rules != NULL && (r->_req_body == H1_BODY_LENGTH || r->_req_body == H1_BODY_CHUNKED) &&
        rules_body_wanted(r->_opts.rules, r->_flow)) {
        if (r->_req_body == H1_BODY_LENGTH && r->_req_remaining > rules_body_limit(r->_opts.rules))
            r->_flow->rules_note = rules_body_limit_note(r->_opts.rules);
        else
            r->_mb_req = true;
    }
    buf_consume(in, skip);
    /* Bytes from the upstream before any request are not a response to this one: that
     * connection is out of step, so ask for a fresh one rather than misattribute them. */
    if (r->_up_connected && buf_used(r->_up_in) > 0)
        r->_up_connected = false;
    if (!r->_up_connected ||
        (!same_target(&r->_upstream, &r->_target) && /* origin-form: back home after a */
         !(r->_up_via && h1_relay_wants_via(r))))   /* mapped request; the next proxy takes
                                                      * any plain host */
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

/* h1_req_step_head_out writes the request head upstream (h1_head.h: origin-form, CRLF, no
 * hop-by-hop fields), parsing the buffered head again so that nothing is staged. */
bool h1_req_step_head_out(struct h1_relay *r)
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
        h1_answer_error(r, 400, "request head changed while buffered");
        return true;
    }
    if (r->_absolute)
        h1_record_authority(&r->_target, host, sizeof(host));
    else if (r->_opts.host_rewrite != NULL)
        snprintf(host, sizeof(host), "%s", r->_opts.host_rewrite);
    if (r->_up_via) /* upstream mode: absolute-form to the next proxy (mitmproxy) */
        h1_head_request_via(&e, &req, &t, host, r->_opts.via_auth, req_conn(r),
                            r->_edits_on ? &r->_verdict : NULL);
    else
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


static bool response_started(const struct h1_relay *r)
{
    return r->_state == H1_STATE_RESP_BODY || r->_state == H1_STATE_RAW;
}

void h1_req_done(struct h1_relay *r)
{
    r->_req_done = true;
    r->_flow->t_request_sent = flow_now_ns();
    if (r->_state == H1_STATE_REQ_BODY)
        h1_set_state(r, H1_STATE_RESP_HEAD);
}


bool h1_req_step_send(struct h1_relay *r)
{
    struct flow *f = r->_flow;
    const char *why = NULL;
    bool progress = false;
    struct buf *src;
    ssize_t c;

    if (!r->_req_head_done || r->_mb_req) {
        int q;

        if (r->_hold_until != 0) { /* inject_latency: the ring timer pumps us then */
            if (flow_now_ns() < r->_hold_until)
                return false;
            r->_hold_until = 0;
        }
        if ((q = h1_modbody_step_request(r)) >= 0) {
            if (r->_mb_req || !r->_req_head_done || r->_req_done)
                return q > 0;
            progress = true; /* an overflowed body streams on below */
        } else {
            progress = h1_req_step_head_out(r);
        }
        if (!r->_req_head_done)
            return progress;
    }
    if (r->_req_done)
        return progress;
    if ((src = h1_held_src(r->_held)) == NULL) /* a body held for server replay goes first */
        src = r->_client_in;
    switch (r->_req_body) {
    case H1_BODY_LENGTH:
        c = (ssize_t)h1_relay_move_body(r, src, r->_up_out, r->_req_remaining, FLOW_REQUEST);
        r->_req_remaining -= (uint64_t)c;
        f->req_body_size += (uint64_t)c;
        progress |= c > 0;
        if (r->_req_remaining == 0) {
            h1_req_done(r);
            return true;
        }
        break;
    case H1_BODY_CHUNKED:
        c = h1_relay_move_chunked(r, &r->_req_chunks, src, r->_up_out, &f->req_body_size,
                                  FLOW_REQUEST, &why);
        if (c < 0) {
            if (response_started(r))
                h1_relay_abort_exchange(r, why);
            else
                h1_answer_error(r, 400, why);
            return true;
        }
        progress |= c > 0;
        if (h1_chunk_decoder_is_done(&r->_req_chunks)) {
            h1_req_done(r);
            return true;
        }
        break;
    default:
        h1_req_done(r);
        return true;
    }
    if (r->_client_eof && buf_used(r->_client_in) == 0 && h1_held_src(r->_held) == NULL) {
        h1_relay_abort_exchange(r, "client closed while sending the request body");
        return true;
    }
    return progress;
}

