/* h2_relay.h - HTTP/2 relay between a client and one upstream, over plaintext: an nghttp2
 * server session toward the client, a client session toward the upstream, streams mapped one
 * to one, flow control end to end. Called only by the worker loop; never does I/O. nghttp2
 * allocates its own (bounded) state; streams and their body staging come from a struct
 * h2_pool made once per worker. Never buffers a body whole. */
#ifndef MITMD_WORKER_H2_RELAY_H
#define MITMD_WORKER_H2_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/buf.h"
#include "worker/flow.h"

/* Limits (RFC 9113 §6.5.2 settings we advertise, and what a connection may hold). */
/* SETTINGS_MAX_CONCURRENT_STREAMS toward the client. */
#define H2_MAX_CONCURRENT_STREAMS 100
/* Streams per connection, incl. those still closing upstream; more are refused with
 * RST_STREAM(REFUSED_STREAM). */
#define H2_MAX_LIVE_STREAMS 128
/* Body staging per stream and direction: the initial stream window, so a peer never overruns
 * it (a peer may use the default window before it acknowledges our SETTINGS). */
#define H2_STAGE_SIZE 65535
/* Receive-window autotuning (worker/h2_window.c): a stream whose sink takes its bytes faster
 * than its window allows over the source's round trip gets a larger window, backed by staging
 * chunks reserved from the worker's pool (worker/h2_stage.h) and given back when it ends. */
/* Largest window of one stream direction. */
#define H2_WIN_STREAM_MAX ((size_t)16 << 20)
/* Staging one connection may reserve beyond its slots (both sessions, every stream). */
#define H2_WIN_CONN_MAX ((size_t)16 << 20)
/* Staging one worker may reserve beyond its slots (all its connections): the chunk pool. */
#define H2_WIN_WORKER_MAX ((size_t)256 << 20)
/* Connection receive window on each side: the sum of the stagings a connection may hold, so
 * one stalled stream never blocks the others (the memory is the pool's slots and chunks,
 * reserved by the stream windows before a peer may use it). */
#define H2_CONN_WINDOW (H2_MAX_LIVE_STREAMS * H2_STAGE_SIZE + H2_WIN_CONN_MAX)
/* Header fields per header block; more are answered 431 (request) or 502 (response). */
#define H2_MAX_FIELDS 128
/* A reasonable h2_pool_new size for one worker. */
#define H2_POOL_STREAMS_DEFAULT 1024
/* A failure reason kept for answers (NUL included). */
#define H2_RELAY_REASON_MAX 256
/* PING, SETTINGS, PRIORITY and empty DATA frames a client may send at once, and per second
 * after that; beyond: GOAWAY(ENHANCE_YOUR_CALM), counted as a flood. */
#define H2_CTRL_BURST 1000
#define H2_CTRL_RATE 100

/* Bits of what the relay wants next, returned by h2_relay_pump and h2_relay_wants. The values
 * equal the H1_WANT_* bits of the same meaning, so the loop handles both relays alike. */
enum {
    H2_WANT_CLIENT_READ = 1u << 0,   /* receive more client bytes into client_in */
    H2_WANT_UPSTREAM_READ = 1u << 1, /* receive more upstream bytes into up_in */
    H2_WANT_CLOSE = 1u << 3,         /* flush client_out and up_out, then close both sides */
    H2_WANT_FLUSH = 1u << 5,         /* an output buffer is full and the relay holds more
                                      * (at most one frame per side): pump again once
                                      * client_out / up_out were drained */
};

/* enum h2_timeout names the timers the loop runs for the relay. Every timeout leads to
 * H2_WANT_CLOSE: once the answers below are flushed, or at the next timeout if the client does
 * not take them (a second timeout of any kind closes at once). */
enum h2_timeout {
    H2_TIMEOUT_IDLE = 0,     /* --idle-timeout: no I/O for that long. Idle (no stream open):
                              * GOAWAY(NO_ERROR) to both sides. Streams open: as
                              * H2_TIMEOUT_UPSTREAM */
    H2_TIMEOUT_REQUEST_HEAD, /* --request-timeout expired while h2_relay_is_reading_head:
                              * GOAWAY to the client, then close */
    H2_TIMEOUT_UPSTREAM,     /* the connection stopped moving with streams open: "504 Gateway
                              * Timeout" on every stream without a response head, RST_STREAM
                              * (CANCEL) on the others, GOAWAY */
};

/* h2_relay_flow_fn is called once per finished stream (completed, answered by mitmd, reset
 * or aborted) with its filled flow record (httpVersion "HTTP/2.0"). It runs inside a relay
 * call, must not call back into the relay, and must copy what it keeps. Same signature as
 * h1_relay_flow_fn. */
typedef void h2_relay_flow_fn(void *arg, const struct flow *f);

/* struct h2_pool is a worker's fixed set of stream slots (flow record + two H2_STAGE_SIZE
 * stagings each) and its H2_WIN_WORKER_MAX of staging chunks for grown windows, shared by all
 * its h2 relays. Opaque. */
struct h2_pool;

/* h2_pool_new allocates a pool of `nstreams` stream slots in one mapping and the chunks in
 * another (pages become resident only as slots and chunks are used; about 144 KiB of address
 * space per slot, H2_WIN_WORKER_MAX for the chunks). Call at worker
 * start. Returns NULL on allocation failure or if `nstreams` is 0 or overflows. */
struct h2_pool *h2_pool_new(size_t nstreams);

/* h2_pool_free frees `p`; every relay using it must have been disposed. NULL is a no-op. */
void h2_pool_free(struct h2_pool *p);

/* h2_pool_available returns the number of free slots in `p`. */
size_t h2_pool_available(const struct h2_pool *p);

struct h2_relay_opts {
    size_t max_header_size;    /* --max-header-size: SETTINGS_MAX_HEADER_LIST_SIZE both ways
                                * and the limit on received header blocks; 0 = 65536 */
    struct h2_pool *pool;      /* required; borrowed for the relay's life */
    struct replay *replay;     /* -S: server replay (worker/replay.h); NULL = none */
    struct rules *rules;       /* worker/rules.h, applied to every stream; NULL = none */
    uint64_t *rng;             /* the worker's PRNG state for the rules' percentages */
    uint32_t stall_ms;         /* inject_fault stall: how long a response is held (the idle
                                * timeout) */
    const char *host_rewrite;  /* reverse mode: :authority (and host) sent and recorded as this
                                * "host[:port]"; NULL keeps the client's. Borrowed. */
    /* the upstream is worker/h2_h1up.h's bridge to an HTTP/1.1 server: streams go to it one at
     * a time (nghttp2 queues the others in this relay), and responses are recorded as
     * "HTTP/1.1" (else "HTTP/2.0") */
    bool up_serial;
    const char *url_scheme;    /* the scheme recorded in URLs, as mitmproxy's request.scheme:
                                * the server's in reverse mode, else the client connection's
                                * (TLS: "https"); NULL = the client's :scheme */
    h2_relay_flow_fn *on_flow; /* may be NULL */
    void *on_flow_arg;
    /* reverse and transparent --proxyauth (worker/access.h access_check_www): every request
     * must pass it or get a 401; authorization is neither forwarded nor recorded. NULL = none */
    bool (*www_auth)(void *arg, const char *value, size_t len, size_t n, const char **why);
    void *www_auth_arg;
};

/* struct h2_relay_stats counts what happened on one connection; the loop adds it to the
 * worker's counters when the connection closes (h2_relay_stats). */
struct h2_relay_stats {
    uint64_t streams;         /* client streams accepted */
    uint64_t streams_refused; /* client streams refused: pool or H2_MAX_LIVE_STREAMS full,
                               * after GOAWAY, upstream refused */
    uint64_t client_resets;   /* RST_STREAM received from the client */
    uint64_t upstream_resets; /* RST_STREAM received from the upstream */
    uint64_t client_errors;   /* connections ended with a GOAWAY error to the client: bad
                               * preface, invalid frames, floods (incl. those below) */
    uint64_t client_floods;   /* of which floods: PING, SETTINGS, PRIORITY, empty DATA,
                               * RST_STREAM (rapid reset), CONTINUATION, queued ACKs */
    uint64_t upstream_errors; /* upstream protocol errors (GOAWAY with an error code sent or
                               * received, invalid frames) */
};

/* struct h2_stream is the relay's per-stream state (private: h2_relay_internal.h). */
struct h2_stream;
struct nghttp2_session;

/* struct h2_relay is embedded in the connection (about 500 bytes). All fields are private. */
struct h2_relay {
    struct h2_relay_opts _opts;
    const struct flow *_conn_flow; /* the loop's flow: connection fields for every stream */
    struct buf *_client_in, *_client_out, *_up_in, *_up_out;
    struct nghttp2_session *_cs; /* server session toward the client */
    struct nghttp2_session *_us; /* client session toward the upstream */
    const uint8_t *_c_pend;      /* serialised by nghttp2, not yet in client_out */
    size_t _c_pend_len;
    const uint8_t *_u_pend; /* same toward up_out */
    size_t _u_pend_len;
    struct h2_stream *_live; /* live streams, intrusive list */
    unsigned _n_live;
    unsigned _heads_open; /* client header blocks begun, not complete */
    unsigned _n_timed;    /* streams held by inject_latency or stalled by inject_fault */
    unsigned _n_bodies;   /* bodies buffered for --modify-body (at most H2_BODIES_MAX) */
    uint32_t _exchange_index;
    bool _conn_times_used; /* connect_ns/tls_ns were reported by a stream */
    bool _inited;
    bool _preface_done;             /* the client's preface and first SETTINGS were received */
    bool _client_eof, _client_dead; /* client closed / the client session is finished */
    bool _up_eof, _up_dead;         /* upstream closed / unusable */
    bool _up_failed;                /* never usable: every request is answered 502 */
    bool _up_goaway;                /* the upstream sent GOAWAY */
    bool _client_goaway_sent;
    bool _closing;      /* nothing new; close when both sessions are flushed */
    bool _closing_recv; /* the client session failed: its input is dropped */
    bool _done;         /* the client side is finished: H2_WANT_CLOSE */
    bool _flood;        /* a flood was detected in a callback */
    bool _timed_out;    /* a timeout was handled; the next one closes at once */
    bool _client_err_counted, _flood_counted;
    int32_t _up_last_id;   /* upstream GOAWAY last_stream_id */
    uint64_t _ctrl_tokens; /* PING/SETTINGS token bucket (H2_CTRL_*) */
    uint64_t _ctrl_last_ns;
    uint64_t _rst_tokens; /* RST_STREAM token bucket (rapid reset) */
    uint64_t _rst_last_ns;
    uint64_t _rtt_ns[2];      /* round trip of the client [0] and upstream [1] session, from
                               * our SETTINGS to its ACK; 0 = not measured yet */
    uint64_t _settings_ns[2]; /* when our SETTINGS went out, until the ACK */
    size_t _win_chunks;       /* staging chunks this connection's windows reserved */
    uint32_t _win_hint[2];    /* largest window a request [0] / response [1] body grew to:
                               * where the next stream's window starts */
    char _why[H2_RELAY_REASON_MAX]; /* why the upstream failed ("" = it did not) */
    struct h2_relay_stats _stats;
};

/* h2_relay_init prepares `r` for a client connection whose TLS ALPN chose "h2" on both sides
 * (an upstream is connected). It allocates the two nghttp2 sessions (nghttp2's allocator) and
 * queues the server SETTINGS toward the client (MAX_CONCURRENT_STREAMS 100, ENABLE_PUSH 0,
 * MAX_HEADER_LIST_SIZE) and the connection preface toward the upstream (ENABLE_PUSH 0); the
 * first h2_relay_pump writes them. The buffers, `conn_flow` and `opts->pool` are borrowed for
 * the relay's life: client_in holds plaintext received from the client (the relay consumes
 * it), client_out plaintext for the client (the relay appends, the loop drains), up_in and
 * up_out the same for the upstream. `conn_flow` is the loop's flow_init'ed record with the
 * connection fields (client, server, tls, cert, connect_ns, tls_ns); they are copied into each
 * stream's flow when it begins, so the loop may update them later. Returns 0, -EINVAL (no
 * pool) or -ENOMEM; on failure `r` needs no dispose (but h2_relay_dispose is harmless). */
int h2_relay_init(struct h2_relay *r, const struct h2_relay_opts *opts,
                  const struct flow *conn_flow, struct buf *client_in, struct buf *client_out,
                  struct buf *up_in, struct buf *up_out);

/* h2_relay_dispose reports every unfinished stream (error "connection closed"), returns the
 * streams to the pool and frees both sessions. Call when the connection is closed. Safe to
 * call twice. */
void h2_relay_dispose(struct h2_relay *r);

/* h2_relay_pump feeds client_in and up_in to the sessions, moves staged bodies across, and
 * appends what the sessions have to send to client_out and up_out as room allows. Call it
 * after bytes were committed to client_in or up_in, after client_out or up_out were drained,
 * and after each event below. It may call on_flow. Work per call is bounded. Returns the
 * H2_WANT_* bits (h2_relay_wants). */
unsigned h2_relay_pump(struct h2_relay *r);

/* h2_relay_wants returns what the relay waits for, as H2_WANT_* bits. Read bits are set only
 * when the matching input buffer has room and the session still reads. H2_WANT_CLOSE is set
 * once the relay's last bytes (e.g. a GOAWAY) are all in the output buffers. */
unsigned h2_relay_wants(const struct h2_relay *r);

/* h2_relay_upstream_failed tells the relay that the upstream is unusable from the start
 * (TLS handshake or verification failed) with reason `why` (copied): every request is
 * answered "502 Bad Gateway" with `why` as its body and flow error, nothing is written to
 * up_out, and the connection closes after a GOAWAY once the client is answered. */
void h2_relay_upstream_failed(struct h2_relay *r, const char *why);

/* h2_relay_upstream_eof records that the upstream closed its side. Streams without a response
 * are answered 502 ("upstream closed connection"), streams mid-response are reset
 * (INTERNAL_ERROR) with the flow's error set, then GOAWAY(NO_ERROR) to the client and close. */
void h2_relay_upstream_eof(struct h2_relay *r);

/* h2_relay_upstream_error is h2_relay_upstream_eof with reason `why` (copied). */
void h2_relay_upstream_error(struct h2_relay *r, const char *why);

/* h2_relay_upstream_note records on the stream sent upstream as `uid` (if still live) why its
 * response is mitmd's own (`answered`: e.g. worker/h2_h1up.h's 502) or why it is about to be
 * reset; the first reason recorded stays the flow's error. */
void h2_relay_upstream_note(struct h2_relay *r, int32_t uid, bool answered, const char *why);

/* h2_relay_upstream_head records on the stream sent upstream as `uid` (if still live) the
 * HTTP/1.x version (`minor_version` 0 or 1) and reason phrase (copied) of the final response
 * head an HTTP/1.1 server sent behind the bridge (opts.up_serial), recorded instead of
 * HTTP/1.1 and an empty reason. */
void h2_relay_upstream_head(struct h2_relay *r, int32_t uid, int minor_version,
                            const char *reason, size_t reason_len);

/* h2_relay_upstream_times records on the stream sent upstream as `uid` (if still live) the
 * connect and TLS handshake times (ns, -1: none) of the server connection opened for it (the
 * bridge's redial; the first connection's times go to the first stream). `uid` 0 (the stream is
 * gone) records nothing, as for the two functions above. */
void h2_relay_upstream_times(struct h2_relay *r, int32_t uid, int64_t connect_ns,
                             int64_t tls_ns);

/* h2_relay_client_eof records that the client closed its side: every open stream is reset
 * upstream (CANCEL) and reported with error "client closed connection"; then the relay wants
 * H2_WANT_CLOSE. */
void h2_relay_client_eof(struct h2_relay *r);

/* h2_relay_client_error is h2_relay_client_eof with reason `why` (copied). */
void h2_relay_client_error(struct h2_relay *r, const char *why);

/* h2_relay_timeout handles an expired timer (see enum h2_timeout). Ignored where it does not
 * apply. */
void h2_relay_timeout(struct h2_relay *r, enum h2_timeout which);

/* h2_relay_drain starts a graceful close (worker drain on SIGTERM): GOAWAY(NO_ERROR) to the
 * client with the last stream it processed; streams in flight finish, new ones are refused
 * (the client retries them elsewhere, RFC 9113 §6.8); then the relay wants H2_WANT_CLOSE. */
void h2_relay_drain(struct h2_relay *r);

/* h2_relay_is_idle returns whether no stream is open: the loop runs --idle-timeout. */
bool h2_relay_is_idle(const struct h2_relay *r);

/* h2_relay_is_reading_head returns whether the client preface or a request header block is
 * incomplete: the loop runs --request-timeout (slowloris) while this holds. */
bool h2_relay_is_reading_head(const struct h2_relay *r);

/* h2_relay_is_waiting_upstream returns whether some stream was sent upstream and has no
 * response head yet: the loop runs the upstream response timer while this holds. */
bool h2_relay_is_waiting_upstream(const struct h2_relay *r);

/* h2_relay_deadline returns when (CLOCK_MONOTONIC ns) a stream held by inject_latency is to
 * go upstream, or a response stalled by inject_fault is to end (504), whichever is first; 0
 * when none. The loop arms a ring timer for it and pumps the relay when it fires: the pump
 * acts on every deadline that passed. */
uint64_t h2_relay_deadline(const struct h2_relay *r);

/* h2_relay_stats returns the relay's counters (points into `r`). */
const struct h2_relay_stats *h2_relay_stats(const struct h2_relay *r);

#endif
