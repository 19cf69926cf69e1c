/* h1_relay_internal.h - what the files of the HTTP/1.1 relay share: the state transitions, the
 * head limit, and the functions one file calls in another (h1_relay.c: public API, driving,
 * flow reporting, byte moves; h1_req.c: request side; h1_resp.c: response side; h1_answer.c:
 * mitmd's own answers; h1_modbody.c: --modify-body). Included only by worker/h1_*.c of the
 * relay; never by the rest of the worker. None of these functions does I/O or blocks. */
#ifndef MITMD_WORKER_H1_RELAY_INTERNAL_H
#define MITMD_WORKER_H1_RELAY_INTERNAL_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "worker/h1_relay.h"

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

/* h1_set_state is the only code that assigns r->_state. Returns nothing. */
static inline void h1_set_state(struct h1_relay *r, enum h1_state next)
{
    assert(h1_transition_ok(r->_state, next)); /* programmer error, not peer input */
    r->_state = next;
}

/* min_size returns the smaller of `a` and `b`. */
static inline size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* head_limit returns the largest head the relay accepts in `in`: --max-header-size (or
 * H1_HEAD_MAX_DEFAULT), at most the buffer's capacity. */
static inline size_t head_limit(const struct h1_relay *r, const struct buf *in)
{
    size_t limit = r->_opts.max_header_size != 0 ? r->_opts.max_header_size : H1_HEAD_MAX_DEFAULT;

    return min_size(limit, in->cap);
}

/* ---- h1_relay.c: flow reporting, targets, byte moves ------------------------------------ */

/* h1_relay_copy_target fills `dst` (the host truncated to its buffer, NUL-terminated).
 * Returns nothing. */
void h1_relay_copy_target(struct h1_target *dst, const char *host, size_t host_len, uint16_t port,
                          bool tls, bool is_ipv6);

/* h1_relay_ensure_flow begins the exchange's flow record once. Returns nothing. */
void h1_relay_ensure_flow(struct h1_relay *r);

/* h1_relay_report_flow finishes the exchange's record (if begun) and hands it to on_flow;
 * it closes a map_local file and frees the --modify-body buffer. Returns nothing. */
void h1_relay_report_flow(struct h1_relay *r);

/* h1_relay_enter_closing moves to H1_STATE_CLOSING unless already there. Returns nothing. */
void h1_relay_enter_closing(struct h1_relay *r);

/* h1_relay_close_quiet ends the connection without a record: nothing worth one was received.
 * Returns nothing. */
void h1_relay_close_quiet(struct h1_relay *r);

/* h1_relay_abort_exchange ends the connection; the exchange in progress is reported with
 * `why`. Returns nothing. */
void h1_relay_abort_exchange(struct h1_relay *r, const char *why);

/* h1_relay_move_bytes copies up to `max` bytes from `in` to `out` as room allows, consuming
 * them. Returns the bytes moved. */
size_t h1_relay_move_bytes(struct buf *in, struct buf *out, uint64_t max);

/* h1_relay_move_body moves up to `max` body bytes from `in` toward `out`'s socket: through
 * opts.pass while `out` is empty, else copied into `out`. Feeds them to the flow's body
 * capture for direction `dir` (flow_body_feed) before they leave `in`. Returns bytes moved. */
size_t h1_relay_move_body(struct h1_relay *r, struct buf *in, struct buf *out, uint64_t max,
                          enum flow_side dir);

/* h1_relay_move_chunked forwards chunked framing unchanged while the decoder `d` tracks where
 * the body ends, adding the payload bytes seen to `*payload`: through opts.pass while `out` is
 * empty, else copied into `out`. Feeds the bytes to the flow's body capture for direction
 * `dir` (flow_body_feed_chunked) before they leave `in`. Returns bytes moved, or -EPROTO /
 * -EMSGSIZE with `*why` set. */
ssize_t h1_relay_move_chunked(struct h1_relay *r, struct h1_chunk_decoder *d, struct buf *in,
                              struct buf *out, uint64_t *payload, enum flow_side dir,
                              const char **why);

/* ---- h1_req.c: the request side --------------------------------------------------------- */

/* h1_req_start_exchange sets up request and response tracking for a parsed head of
 * `head_len` bytes at the front of client_in. Returns nothing. */
void h1_req_start_exchange(struct h1_relay *r, const struct h1_request *req, size_t head_len);

/* h1_req_step_head parses and checks the next request head in client_in (H1_STATE_REQ_HEAD)
 * and answers it, or starts the exchange. Returns whether it made progress. */
bool h1_req_step_head(struct h1_relay *r);

/* h1_req_step_head_out writes the request head upstream (h1_head.h: origin-form, CRLF, no
 * hop-by-hop fields), parsing the buffered head again so that nothing is staged. Returns
 * whether it made progress; sets _req_head_done once all of it is out. */
bool h1_req_step_head_out(struct h1_relay *r);

/* h1_req_done marks the request as sent (and waits for the response head if no response
 * began). Returns nothing. */
void h1_req_done(struct h1_relay *r);

/* h1_req_step_send sends the request head and body upstream as up_out has room. Returns
 * whether it made progress. */
bool h1_req_step_send(struct h1_relay *r);

/* ---- h1_resp.c: the response side ------------------------------------------------------- */

/* h1_resp_conn returns what mitmd's Connection field tells the client about this response. */
enum h1_head_conn h1_resp_conn(const struct h1_relay *r);

/* h1_resp_finish reports a complete response and decides whether the connection goes on.
 * Returns nothing. */
void h1_resp_finish(struct h1_relay *r);

/* h1_resp_step reads the response head, writes it for the client and relays the body, once
 * the request head went out. Returns whether it made progress. */
bool h1_resp_step(struct h1_relay *r);

/* h1_resp_step_raw relays bytes both ways after 101 Switching Protocols (H1_STATE_RAW),
 * counting WebSocket messages. Returns whether it made progress. */
bool h1_resp_step_raw(struct h1_relay *r);

/* ---- h1_answer.c: mitmd's own answers --------------------------------------------------- */

/* h1_answer_error queues "<status>" with `why` as a text body for the client, records it as
 * the exchange's response and error, reports the flow and closes after the flush. Called only
 * before any byte of an upstream final response reached client_out; if part of an interim
 * head is already there the connection is closed instead. Returns nothing. */
void h1_answer_error(struct h1_relay *r, int status, const char *why);

/* h1_answer_error_body is h1_answer_error with a body of its own (NULL: the reason and its
 * hint). Returns nothing. */
void h1_answer_error_body(struct h1_relay *r, int status, const char *why, const char *body);

/* h1_answer_flush appends what client_out takes of the queued answer. Returns whether any
 * byte went. */
bool h1_answer_flush(struct h1_relay *r);

/* h1_answer_local answers the request whose head (`head_len` bytes after `skip` blank bytes)
 * is at the front of client_in from --map-local. Returns nothing. */
void h1_answer_local(struct h1_relay *r, const struct h1_request *req, size_t skip,
                     size_t head_len);

/* h1_answer_step_local sends the map_local file once its head is out (H1_STATE_LOCAL).
 * Returns whether it made progress. */
bool h1_answer_step_local(struct h1_relay *r);

/* h1_answer_replay answers the request from the server replay recording. Returns true when
 * it was answered or the connection ended instead of forwarding it, false to forward it. */
bool h1_answer_replay(struct h1_relay *r, const struct h1_request *req, size_t head_len);

/* ---- h1_modbody.c: --modify-body -------------------------------------------------------- */

/* h1_modbody_step_request collects, rewrites and sends a request body --modify-body wants.
 * Returns -1 when the request streams as usual, else whether it made progress (0 or 1). */
int h1_modbody_step_request(struct h1_relay *r);

/* h1_modbody_free frees the collection buffer and the rewritten body. Returns nothing. */
void h1_modbody_free(struct h1_relay *r);

/* h1_modbody_start holds the parsed response head when a --modify-body spec wants its body.
 * Returns true when the head was taken (allocates the collection buffer), false otherwise. */
bool h1_modbody_start(struct h1_relay *r, enum h1_body body, uint64_t content_length);

/* h1_modbody_collect takes response body bytes from up_in into the collection buffer.
 * Returns whether it made progress. */
bool h1_modbody_collect(struct h1_relay *r);

/* h1_modbody_send writes the held response head (with the new Content-Length after a
 * rewrite) and the body. Returns whether it made progress. */
bool h1_modbody_send(struct h1_relay *r);

#endif
