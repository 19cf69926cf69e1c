/* h1_relay.h - HTTP/1.1 relay state machine between a client and one upstream, over plaintext.
 * Owns request/response framing, keep-alive, pipelining order, upgrades and the error answers
 * (400/408/431/501/502/504...). Called only by the worker loop; never does I/O, never
 * allocates: it moves bytes between four caller-owned struct bufs and fills a struct flow. */
#ifndef MITMD_WORKER_H1_RELAY_H
#define MITMD_WORKER_H1_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/buf.h"
#include "shared/h1_parse.h"
#include "shared/target_parse.h"
#include "shared/ws_frame.h"
#include "worker/answer.h"
#include "worker/flow.h"
#include "worker/h1_head.h"
#include "worker/h1_held.h"
#include "worker/replay.h"
#include "worker/maplocal.h"
#include "worker/rules.h"

#define H1_RELAY_REASON_MAX 256 /* a failure reason kept for a later 502 (NUL included) */

enum h1_state {
    H1_STATE_REQ_HEAD = 0,  /* waiting for a complete request head from the client */
    H1_STATE_NEED_UPSTREAM, /* head parsed; the loop must connect h1_relay_target() first */
    H1_STATE_REQ_BODY,      /* sending the request head and body upstream; no response yet */
    H1_STATE_RESP_HEAD,     /* request sent, waiting for the (final) response head */
    H1_STATE_RESP_BODY,     /* relaying the response (request body may still be flowing) */
    H1_STATE_RAW,           /* after 101 Switching Protocols: raw two-way relay */
    H1_STATE_CLOSING,       /* flush the buffers, then close both sides */
    H1_STATE_LOCAL,         /* answering from --map-local (the file, as client_out drains) */
    H1_STATE_COUNT          /* must be last */
};

/* Bits of what the relay wants next, returned by h1_relay_pump and h1_relay_wants. */
enum {
    H1_WANT_CLIENT_READ = 1u << 0,   /* receive more client bytes into client_in */
    H1_WANT_UPSTREAM_READ = 1u << 1, /* receive more upstream bytes into up_in */
    H1_WANT_UPSTREAM = 1u << 2,      /* close any old upstream, connect h1_relay_target(), then
                                      * call h1_relay_upstream_ready or _upstream_failed */
    H1_WANT_CLOSE = 1u << 3,         /* flush client_out and up_out, then close both sides */
    H1_WANT_RAW = 1u << 4,           /* upgraded (101): bytes are relayed raw both ways */
};

/* enum h1_timeout names the timers the loop runs for the relay. */
enum h1_timeout {
    H1_TIMEOUT_REQUEST_HEAD = 0, /* --request-timeout expired while a head was incomplete */
    H1_TIMEOUT_UPSTREAM,         /* the upstream did not answer (connect or response) in time */
};

/* h1_relay_flow_fn is called once per finished exchange (completed, answered with an error,
 * or aborted after the response began) with the filled flow record. It runs inside a relay
 * call, must not call back into the relay, and must copy what it keeps. */
typedef void h1_relay_flow_fn(void *arg, const struct flow *f);

/* h1_relay_ws_fn is called for each WebSocket data message relayed after an upgrade: `f` is
 * the upgrade's exchange, `from_client` its direction, `opcode` 1 text or 2 binary. */
typedef void h1_relay_ws_fn(void *arg, const struct flow *f, bool from_client, int opcode,
                            uint64_t len);

/* h1_relay_pass_fn writes body bytes `p`/`n` of the input buffer straight toward the socket
 * that output buffer `out` (client_out or up_out) feeds, skipping the copy into `out`; the relay
 * calls it only while `out` is empty. Returns the bytes taken (> 0), 0 when there is no room
 * now (the relay keeps the bytes and tries again on its next step), or -EAGAIN when passing
 * does not apply (the relay copies into `out`). See transport_pass. */
typedef ssize_t h1_relay_pass_fn(void *arg, struct buf *out, const uint8_t *p, size_t n);

/* h1_relay_auth_fn decides whether a proxy request with fields `headers` may pass
 * (--proxyauth, worker/access.h); on false `*why` holds a static reason for the 407. */
typedef bool h1_relay_auth_fn(void *arg, const struct h1_header *headers, size_t n,
                              const char **why);

/* h1_relay_www_fn decides whether a request passes --proxyauth on a reverse or transparent
 * listener (access_check_www): `n` Authorization fields, the first one's value. */
typedef bool h1_relay_www_fn(void *arg, const char *value, size_t len, size_t n,
                             const char **why);

struct h1_relay_opts {
    size_t max_header_size;    /* --max-header-size; 0 = H1_HEAD_MAX_DEFAULT */
    bool client_tls;           /* origin-form URLs get "https" (intercepted TLS) or "http" */
    const char *host_rewrite;  /* origin-form requests: Host sent (and recorded) as this
                                * "host[:port]" (reverse proxy, keep_host_header=false); NULL
                                * keeps the client's. Borrowed for the relay's life. */
    struct rules *rules;       /* --modify-headers, block_list, map_remote...; NULL = none */
    struct replay *replay;     /* -S: server replay (worker/replay.h); NULL = none */
    uint64_t *rng;             /* the worker's PRNG state for the rules' percentages */
    uint32_t stall_ms;         /* inject_fault stall: how long a response is held (the idle
                                * timeout) before 504 */
    h1_relay_flow_fn *on_flow; /* may be NULL */
    void *on_flow_arg;
    bool websocket_raw;        /* --set websocket=false: a 101 to WebSocket is relayed as
                                * opaque bytes, its flow is no WebSocket (no counts) */
    h1_relay_ws_fn *on_ws_message; /* --set websocket_message_lines; NULL = not called */
    void *on_ws_arg;
    h1_relay_auth_fn *proxy_auth; /* absolute-form requests must pass it or get a 407 (the
                                   * client's own proxy requests); NULL = no check */
    void *proxy_auth_arg;
    h1_relay_www_fn *www_auth; /* every request must pass it or get a 401 (reverse and
                                * transparent --proxyauth); its Authorization is neither
                                * forwarded nor recorded. NULL = no check */
    void *www_auth_arg;
    h1_relay_pass_fn *pass;    /* body bytes skip the output buffers; NULL = always copied */
    void *pass_arg;
    bool via_absolute;         /* upstream mode: a plain http:// absolute-form request goes to
                                * the next proxy in absolute-form (mitmproxy), not through a
                                * CONNECT; its connection serves any such request */
    const char *via_auth;      /* the next proxy's Proxy-Authorization value, or NULL */
};

/* struct h1_target is an upstream identity: where a request goes. */
struct h1_target {
    char host[TARGET_HOST_MAX + 1]; /* no IPv6 brackets, NUL-terminated */
    uint16_t port;
    bool tls;
    bool is_ipv6;
};

/* struct h1_relay is embedded in the connection. All fields are private. */
struct h1_relay {
    enum h1_state _state;
    struct h1_relay_opts _opts;
    struct flow *_flow;
    struct buf *_client_in, *_client_out, *_up_in, *_up_out;

    struct h1_target _upstream; /* what the upstream is (or was last) connected to */
    bool _has_upstream;         /* _upstream is set */
    struct h1_target _home;     /* the target the client addressed (the CONNECT, SOCKS,
                                 * transparent or reverse target, or the first absolute
                                 * one): origin-form requests go here, even after a
                                 * map_remote request moved the upstream elsewhere */
    bool _up_connected;         /* the upstream connection is usable */
    bool _up_via;               /* it ends at the next proxy (via_absolute): plain requests to
                                 * any host go on it in absolute-form */
    bool _up_eof, _client_eof;
    bool _fail_pending;         /* answer the next request head 502 with _fail_why */
    char _fail_why[H1_RELAY_REASON_MAX];

    /* current exchange */
    bool _flow_begun;
    struct h1_target _target;   /* request target (absolute-form, or _upstream) */
    bool _absolute;             /* the request head is rebuilt in origin-form */
    bool _req_is_head;          /* method HEAD: the response has no body */
    bool _req_http10;
    bool _req_upgrade;
    bool _req_keep_alive;
    size_t _req_head_len;       /* bytes of the request head in client_in */
    size_t _req_head_sent;      /* bytes of the (possibly rebuilt) head appended to up_out */
    bool _req_head_done;
    enum h1_body _req_body;
    uint64_t _req_remaining;    /* Content-Length bytes left */
    struct h1_chunk_decoder _req_chunks;
    bool _req_done;

    size_t _resp_head_len;      /* response head bytes in up_in still to forward */
    size_t _resp_head_moved;    /* bytes of that head already in client_out */
    bool _resp_head_forward;    /* the parsed head is being forwarded */
    bool _resp_interim;         /* the head being forwarded is a 1xx interim response */
    bool _resp_drop;            /* the interim head is dropped (HTTP/1.0 client) */
    enum h1_body _resp_body;
    uint64_t _resp_remaining;
    struct h1_chunk_decoder _resp_chunks;
    bool _resp_keep_alive;

    char _answer[ANSWER_MAX]; /* pending error answer, appended as client_out allows */
    const uint8_t *_answer_ext; /* or a replayed response (worker/replay.h) instead */
    size_t _answer_len, _answer_off;
    bool _progressed; /* the last h1_relay_pump moved bytes or changed state */
    bool _mapped;     /* map_remote re-targeted the request: its URL is the flow's */
    bool _draining;   /* h1_relay_drain: responses say Connection: close, then we close */
    bool _resp_conn_set;               /* _resp_conn is fixed for the head being written */
    enum h1_head_conn _resp_conn;      /* the Connection field of that head */
    bool _websocket;  /* RAW after a WebSocket upgrade: messages are counted, the flow is
                       * reported when the connection ends */
    struct ws_frame_count _ws[2]; /* [0] client to server, [1] server to client */
    bool _edits_on;   /* _verdict holds header edits for the head being written */
    struct rules_verdict _verdict; /* the rules' verdict on the current head */
    uint64_t _hold_until; /* inject_latency: the request head goes upstream then; 0 = now */
    uint64_t _stall_due;  /* inject_fault stall: 504 then (set once the request is sent) */
    bool _stall;          /* the current response is held by inject_fault stall */
    bool _local_close;    /* close after the map_local answer (a request body was left) */
    struct maplocal_answer _ml; /* the map_local answer being sent (H1_STATE_LOCAL) */
    struct h1_held *_held;      /* a request body held for server replay's key (h1_held.h) */
    /* --modify-body on the response: the head and raw body collected in _mb (malloc'd, at
     * most body_size_limit + one buffer), then the head and _mb_body sent */
    bool _mb_on, _mb_out, _mb_rewrite;
    bool _mb_req;      /* the request body is wanted by --modify-body (decided at its head) */
    bool _mb_req_head; /* the request head is in _mb (sent from there) */
    uint8_t *_mb;
    size_t _mb_len, _mb_cap, _mb_head;
    uint8_t *_mb_body; /* the rewritten body (malloc'd), or raw bytes inside _mb */
    size_t _mb_body_len, _mb_body_off;
    struct rules_header _mb_hdr[2]; /* Content-Length: new, Transfer-Encoding removed */
    char _mb_clen[24];
};

/* h1_relay_init prepares `r` for a new client connection. The four buffers and `flow` are
 * borrowed for the relay's life: client_in holds plaintext received from the client (the relay
 * consumes it), client_out plaintext for the client (the relay appends, the loop drains), and
 * up_in / up_out the same for the upstream. `flow` must be flow_init'ed, with the connection
 * fields set by the loop. The relay starts with no upstream: call h1_relay_upstream_ready when
 * one is connected (intercepted CONNECT), or let absolute-form requests ask for one. */
void h1_relay_init(struct h1_relay *r, const struct h1_relay_opts *opts, struct flow *flow,
                   struct buf *client_in, struct buf *client_out, struct buf *up_in,
                   struct buf *up_out);

/* h1_relay_pump moves as many bytes as the buffers allow, in both directions, and advances
 * the state machine. Call it after bytes were committed to client_in or up_in, after
 * client_out or up_out were drained, and after each event below. It may call on_flow. Work
 * per call is bounded by the buffer sizes. Returns the H1_WANT_* bits (h1_relay_wants). */
unsigned h1_relay_pump(struct h1_relay *r);

/* h1_relay_progressed returns whether the last h1_relay_pump moved bytes or advanced the
 * state (the loop runs again while something moves). */
bool h1_relay_progressed(const struct h1_relay *r);

/* h1_relay_wants returns what the relay waits for, as H1_WANT_* bits. Read bits are set only
 * when the matching input buffer has room. H1_WANT_CLOSE is set once the relay's last bytes
 * (e.g. an error answer) are all in client_out. */
unsigned h1_relay_wants(const struct h1_relay *r);

/* h1_relay_drain makes the relay finish gracefully (reload, stop): every response head not
 * yet begun says "Connection: close" and the connection closes after it; a response whose
 * head already went out as keep-alive is followed by one more exchange, so that a client
 * never has its next request cut by our close (the keep-alive race). */
void h1_relay_drain(struct h1_relay *r);

/* h1_relay_set_up_in makes `up_in` (borrowed like the others) the relay's upstream input
 * from now on: the loop calls it when a new upstream connection has another transport (TLS
 * where the last one was raw, or the reverse). Call it before h1_relay_upstream_ready. */
void h1_relay_set_up_in(struct h1_relay *r, struct buf *up_in);

/* h1_relay_wants_via returns whether the upstream the relay asks for (H1_WANT_UPSTREAM) is
 * upstream mode's next proxy itself, for a plain http:// request in absolute-form (see
 * h1_relay_opts.via_absolute). */
bool h1_relay_wants_via(const struct h1_relay *r);

/* h1_relay_upstream_ready tells the relay that an upstream connection to `host`:`port`
 * (`tls`: over TLS) is established; `host` is copied (truncated to TARGET_HOST_MAX). Bytes
 * left in up_in and up_out from an earlier upstream are discarded. A request waiting in
 * H1_STATE_NEED_UPSTREAM is forwarded by the next h1_relay_pump. */
void h1_relay_upstream_ready(struct h1_relay *r, const char *host, uint16_t port, bool tls);

/* h1_relay_upstream_failed tells the relay that the upstream could not be reached or its TLS
 * handshake or verification failed; `why` (copied) is the human reason, e.g. "certificate
 * verify failed: certificate has expired". Waiting for a request head: the next complete
 * request head is answered "502 Bad Gateway" with `why` as the body, then the connection
 * closes. In H1_STATE_NEED_UPSTREAM: the waiting request is answered so at once. Later in an
 * exchange it acts as h1_relay_upstream_error. */
void h1_relay_upstream_failed(struct h1_relay *r, const char *why);

/* h1_relay_upstream_eof records that the upstream closed its side (FIN or TLS close_notify).
 * This ends a close-delimited response; before or inside a response it is answered 502
 * ("upstream closed before responding") or ends the connection with the flow's error set.
 * Between exchanges it marks the upstream unusable: the next request asks for a new one
 * (H1_WANT_UPSTREAM), except that an idle client of a TLS upstream is closed instead (a
 * client retries a request on a new connection after a keep-alive close). */
void h1_relay_upstream_eof(struct h1_relay *r);

/* h1_relay_upstream_error records a failed upstream connection (reset, TLS error) with
 * reason `why` (copied): 502 "<why>" when no response byte was forwarded yet, otherwise the
 * connection closes and the flow carries the error. */
void h1_relay_upstream_error(struct h1_relay *r, const char *why);

/* h1_relay_client_eof records that the client closed its side. Complete requests already
 * received are still answered; then the relay wants H1_WANT_CLOSE. */
void h1_relay_client_eof(struct h1_relay *r);

/* h1_relay_client_error records that the client connection failed (reset, TLS error): the
 * exchange in progress, if any, is reported with `why` as its error and the relay closes. */
void h1_relay_client_error(struct h1_relay *r, const char *why);

/* h1_relay_timeout handles an expired timer. H1_TIMEOUT_REQUEST_HEAD: a partial request head
 * is answered "408 Request Timeout"; with no byte received the connection just closes.
 * H1_TIMEOUT_UPSTREAM: "504 Gateway Timeout" when no response byte was forwarded, otherwise
 * the connection closes with the flow's error set. Ignored where it does not apply. */
void h1_relay_timeout(struct h1_relay *r, enum h1_timeout which);

/* h1_relay_deadline returns when (CLOCK_MONOTONIC ns) the relay has something to do without
 * I/O: a request held by inject_latency goes upstream, or a response stalled by inject_fault
 * ends in 504; 0 when nothing is timed. The loop arms a ring timer and pumps then. */
uint64_t h1_relay_deadline(const struct h1_relay *r);

/* h1_relay_dispose closes what the relay holds outside its buffers (a map_local file). Call
 * when the connection closes; safe twice. */
void h1_relay_dispose(struct h1_relay *r);

/* h1_relay_target returns the upstream the current request needs (valid in
 * H1_STATE_NEED_UPSTREAM; otherwise the last target). Points into `r`. */
const struct h1_target *h1_relay_target(const struct h1_relay *r);

/* h1_relay_state returns the current state. */
enum h1_state h1_relay_state(const struct h1_relay *r);

/* h1_relay_is_reading_head returns whether part of a request head was received and the rest
 * is awaited: the loop runs --request-timeout (slowloris) while this holds, and the idle
 * timeout while the relay waits in H1_STATE_REQ_HEAD with nothing received. */
bool h1_relay_is_reading_head(const struct h1_relay *r);

/* h1_relay_is_raw returns whether the connection was upgraded (101) to a raw relay. */
bool h1_relay_is_raw(const struct h1_relay *r);

/* h1_state_name returns a static name for `s` (for traces and flow records). */
const char *h1_state_name(enum h1_state s);

#endif
