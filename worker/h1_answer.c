/* h1_answer.c - the answers the HTTP/1.1 relay writes itself instead of forwarding: error
 * answers (400/407/431/502/504...), --map-local files (worker/maplocal.h, H1_STATE_LOCAL) and
 * server replay (worker/replay.h). Called through h1_relay_internal.h; no I/O but a map_local
 * file's reads, no allocation. */
#include "worker/h1_relay_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "worker/flow_body.h"

/* h1_answer_error queues "<status>" with `why` as a text body for the client, records it as
 * the exchange's response and error, reports the flow and closes after the flush. Called only
 * before any byte of an upstream final response reached client_out. If part of an interim
 * (1xx) head is already there, an answer appended to it would be garbage to the client, so
 * the connection is closed instead with `why` as the flow's error. */
void h1_answer_error(struct h1_relay *r, int status, const char *why)
{
    h1_answer_error_body(r, status, why, NULL);
}

/* h1_answer_error_body is h1_answer_error with a body of its own (NULL: the reason and its
 * hint). */
void h1_answer_error_body(struct h1_relay *r, int status, const char *why, const char *body)
{
    struct flow *f = r->_flow;
    const char *text = h1_status_reason(status);
    size_t blen = 0;
    ssize_t n;

    if (r->_resp_head_forward && r->_resp_head_moved > 0) {
        h1_relay_abort_exchange(r, why != NULL && why[0] != '\0' ? why : text);
        return;
    }
    if (why == NULL || why[0] == '\0')
        why = text;
    r->_answer_ext = NULL;
    n = answer_format(r->_answer, sizeof(r->_answer), status, why, NULL, body, &blen);
    r->_answer_len = n < 0 ? 0 : (size_t)n;
    r->_answer_off = 0;

    h1_relay_ensure_flow(r);
    answer_record(f, status, why, blen);
    if (f->t_response_first == 0)
        f->t_response_first = flow_now_ns();
    h1_relay_report_flow(r);
    h1_relay_enter_closing(r);
}

bool h1_answer_flush(struct h1_relay *r)
{
    const uint8_t *a = r->_answer_ext != NULL ? r->_answer_ext : (const uint8_t *)r->_answer;
    size_t n = buf_append(r->_client_out, a + r->_answer_off, r->_answer_len - r->_answer_off);

    r->_answer_off += n;
    return n > 0;
}


/* h1_answer_local answers the request whose head (`head_len` bytes after `skip` blank bytes) is
 * at the front of client_in from --map-local: 403/404 as an error answer, otherwise the head
 * goes into the answer buffer and H1_STATE_LOCAL sends the file as client_out drains. */
void h1_answer_local(struct h1_relay *r, const struct h1_request *req, size_t skip,
                     size_t head_len)
{
    struct maplocal_answer *a = &r->_ml;
    struct flow *f = r->_flow;
    ssize_t rg = h1_header_find(req->headers, req->num_headers, "Range", 0);
    const char *reason;
    char len[24];
    int n;

    h1_req_start_exchange(r, req, head_len);
    rules_map_local(r->_opts.rules, &r->_verdict, f, rg >= 0 ? req->headers[rg].value : NULL,
                    rg >= 0 ? req->headers[rg].value_len : 0, r->_req_is_head, a);
    if (a->status == 403 || a->status == 404) {
        h1_answer_error(r, a->status, a->why);
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

/* h1_answer_step_local sends the map_local file once its head is out, as client_out has room. */
bool h1_answer_step_local(struct h1_relay *r)
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
            h1_relay_abort_exchange(r, "map_local: reading the file failed");
            return true;
        }
        buf_commit(out, (size_t)n);
        r->_flow->resp_body_size += (uint64_t)n;
        if (r->_ml.left > 0)
            return n > 0;
    }
    h1_relay_report_flow(r);
    if (r->_local_close)
        h1_relay_enter_closing(r);
    else
        h1_set_state(r, H1_STATE_REQ_HEAD);
    return true;
}

/* h1_answer_replay answers the request from the server replay recording (worker/replay.h), its
 * body (when part of the key) complete after the head of `head_len` bytes. Returns true when
 * it was answered or the connection ended instead of forwarding it. */
bool h1_answer_replay(struct h1_relay *r, const struct h1_request *req, size_t head_len)
{
    const uint8_t *body = NULL;
    struct replay_answer a;
    size_t blen = 0, raw = 0, hl;
    enum replay_verdict vd;
    int whole;

    if (h1_held_state(r->_held) == H1_HELD_WHOLE) /* held out of client_in (worker/h1_held.h) */
        whole = replay_h1_body(r->_opts.replay, req, r->_held->p, 0, r->_held->len, r->_held->len,
                               &body, &blen, &raw);
    else if (h1_held_state(r->_held) != H1_HELD_OFF)
        whole = -1;
    else
        whole = replay_h1_body(r->_opts.replay, req, buf_head(r->_client_in), head_len,
                               buf_used(r->_client_in), r->_client_in->cap, &body, &blen, &raw);
    if (h1_held_state(r->_held) != H1_HELD_OFF)
        raw = 0; /* none of the body is in client_in */
    if (whole != 1) { /* too large, malformed, or cut short by the client's EOF */
        body = NULL;
        blen = raw = 0;
    }
    /* a body that cannot be keyed is in no recording (its key would be an empty body's) */
    vd = whole != 1 && replay_needs_body(r->_opts.replay)
             ? replay_miss(r->_opts.replay, &a)
             : replay_match(r->_opts.replay, r->_flow, body, blen, &a);
    switch (vd) {
    case REPLAY_FORWARD:
        return false;
    case REPLAY_KILL:
        h1_relay_abort_exchange(r,
                                "not in the server replay recording: killed (server_replay_extra)");
        return true;
    case REPLAY_STATUS:
        h1_answer_error(r, a.status, "not in the server replay recording (server_replay_extra)");
        return true;
    case REPLAY_ANSWER:
        break;
    }
    r->_flow->req_body_size = blen;
    flow_body_feed(r->_flow, FLOW_REQUEST, body, blen);
    buf_consume(r->_client_in, head_len + raw);
    r->_answer_ext = a.h1;
    r->_answer_len = a.entry->h1_len;
    r->_answer_off = 0;
    if ((hl = buf_room(r->_client_out)) > 0 && /* server_replay_refresh: a new head */
        (hl = replay_h1_head(r->_opts.replay, &a, time(NULL), buf_tail(r->_client_out), hl)) > 0) {
        buf_commit(r->_client_out, hl);
        r->_answer_ext = a.body;
        r->_answer_len = a.entry->body_len;
    }
    h1_relay_report_flow(r);
    /* a body not consumed here (not whole in the buffer) must not be read as a request */
    if (whole != 1 || !req->framing.keep_alive || r->_draining)
        h1_relay_enter_closing(r);
    return true;
}

