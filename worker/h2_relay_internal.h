/* h2_relay_internal.h - what the files of the HTTP/2 relay share: the stream and pool layout,
 * the limits, and the functions one file calls in another (h2_stream.c: pool, streams, bodies;
 * h2_forward.c: forwarding heads; h2_session.c: nghttp2 callbacks; h2_relay.c: public API and
 * pumping). Included only by worker/h2_*.c; never by the rest of the worker. */
#ifndef MITMD_WORKER_H2_RELAY_INTERNAL_H
#define MITMD_WORKER_H2_RELAY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "worker/flow.h"
#include "worker/h2_relay.h"
#include "worker/h2_stage.h"
#include "worker/maplocal.h"
#include "worker/rules.h"

#define H2_HEADER_SIZE_DEFAULT 65536
#define H2_PUMP_ROUNDS 64    /* per h2_relay_pump call (HAProxy-style work budget) */
#define H2_RECV_CHUNK 16384  /* bytes fed to one mem_recv call */
#define H2_FIELD_OVERHEAD 32 /* RFC 9113 §6.5.2: name + value + 32 per field */
#define H2_RST_BURST 500     /* incoming RST_STREAM token bucket (rapid reset, */
#define H2_RST_RATE 30       /* CVE-2023-44487); nghttp2's own (1000, 33/s) backs it */
#define H2_NGHTTP2_RST_BURST 1000
#define H2_NGHTTP2_RST_RATE 33
#define H2_MAX_OUTBOUND_ACK 1000 /* queued SETTINGS/PING ACKs before FLOODED */

enum h2_dir {
    H2_REQ = 0, /* client -> upstream */
    H2_RESP,    /* upstream -> client */
};

/* struct h2_field is a received header field, kept by reference until forwarded. */
struct h2_field {
    nghttp2_rcbuf *name, *value;
};

/* struct h2_half is one direction of a stream: the header block being received (or trailers
 * waiting for the body to drain) and the body staging. */
struct h2_half {
    struct h2_stage stage; /* body received from the source, not yet taken by the sink */
    struct h2_field fields[H2_MAX_FIELDS];
    uint16_t n_fields;
    size_t fields_size; /* RFC 9113 §6.5.2 size of the block */
    bool fields_over;   /* too many or too large: the block is refused */
    bool ended;         /* END_STREAM received from the source */
    bool has_trailers;  /* `fields` are trailers for after the body */
    bool deferred;      /* the sink's data source returned NGHTTP2_ERR_DEFERRED */
};

/* H2_BODIES_MAX: bodies one connection buffers at once for --modify-body; more pass unchanged
 * (with a note in their flow), so a connection holds at most this many x body_size_limit. */
#define H2_BODIES_MAX 8

/* H2_HELD_BYTES_MAX: bytes one worker holds in collected bodies at once, over all its
 * connections (--modify-body and server replay's keyed request bodies); a body that would go
 * beyond passes unchanged (--modify-body) or is server_replay_extra (replay), so the memory
 * held does not grow with the number of connections. */
#define H2_HELD_BYTES_MAX ((size_t)64 << 20)

/* struct h2_body is one direction's --modify-body buffering: the header block is copied and
 * held, the body collected whole (up to body_size_limit), rewritten, then sent from `buf`. */
struct h2_body {
    bool on;          /* collecting: the head is held, nothing was forwarded */
    bool out;         /* `buf` is being sent (the result, or what was collected on overflow) */
    uint8_t *buf;     /* malloc'd */
    size_t len, cap, off;
    uint8_t *hdr;     /* malloc'd copy of the names and values of `nva` */
    nghttp2_nv nva[H2_MAX_FIELDS];
    size_t nv;
    char clen[24];    /* the new content-length value */
};

/* struct h2_stream is one client stream and its upstream twin, in a pool slot followed by
 * the two stagings. */
struct h2_stream {
    struct h2_stream *next, *prev; /* relay's live list; `next` links the pool's free list */
    struct h2_relay *r;
    int32_t cid;     /* client stream id */
    int32_t uid;     /* upstream stream id, 0 = not submitted */
    bool c_closed;   /* the client session closed the stream */
    bool u_closed;   /* the upstream stream closed, was never opened, or is abandoned */
    bool head_open;  /* the request header block is being received */
    bool client_rst; /* the client sent RST_STREAM */
    bool resp_head;  /* a final response head was submitted to the client */
    bool resp_done;  /* END_STREAM was sent to the client */
    bool answered;   /* the response is mitmd's own */
    bool u_rst_sent; /* a RST_STREAM went upstream (ours, or nghttp2's on bad input) */
    bool c_rst_sent; /* we reset the client stream (once) */
    bool reported;   /* on_flow was called */
    bool up_http10;  /* behind the bridge: the server's final response head was HTTP/1.0 */
    bool held;       /* inject_latency: the request waits until `due` to go upstream */
    bool stall;      /* inject_fault stall: the response is dropped until `due`, then 504 */
    bool local;      /* the answer is map_local's (`ml`) */
    bool replay_wait; /* server replay keys the request body: it is held whole (`body`) */
    uint64_t due;    /* CLOCK_MONOTONIC ns of the held or stalled stream's deadline */
    struct maplocal_answer ml;
    struct rules_verdict verdict; /* the rules' verdict on the request head */
    struct h2_body body[2];       /* --modify-body, by direction */
    struct h2_half half[2];
    char answer[H2_RELAY_REASON_MAX + 1];
    size_t answer_len, answer_off;
    const uint8_t *answer_ext; /* a replayed body (worker/replay_h2.c) instead of `answer` */
    struct flow flow;
};

struct h2_pool {
    uint8_t *mem;
    size_t map_len;
    size_t slot_size;
    size_t n, used_hw, n_free;
    struct h2_stream *free_list;
    struct h2_chunks chunks; /* staging beyond the slots, for grown windows (h2_window.c) */
};

/* ---- h2_stream.c: pool, stream lifecycle, local answers, bodies -------------------------- */

/* H2_POOL_LIGHT_STREAMS: a connection holding fewer streams than this may use the pool's
 * reserve (its last eighth); heavier ones are refused (REFUSED_STREAM, retried by clients) once
 * only the reserve is left. */
#define H2_POOL_LIGHT_STREAMS 16

/* h2_pool_may_take returns whether a connection that holds `held` streams may take one more
 * from `p` (see H2_POOL_LIGHT_STREAMS). */
bool h2_pool_may_take(const struct h2_pool *p, size_t held);

/* h2_pool_get returns a cleared stream with its two stagings set up, or NULL when exhausted. */
struct h2_stream *h2_pool_get(struct h2_pool *p);

/* h2_upstream_is_usable is true while the upstream session exists and is not dead. */
bool h2_upstream_is_usable(const struct h2_relay *r);

/* h2_client_is_usable is true while the client session exists, is not dead and the relay
 * is not done. */
bool h2_client_is_usable(const struct h2_relay *r);

/* h2_fields_clear drops the references of the header block kept in `h`. */
void h2_fields_clear(struct h2_half *h);

/* h2_fields_to_nv lists the fields of `h` for nghttp2 in `nva` (H2_MAX_FIELDS entries; names
 * and values borrowed from `h`), leaving out proxy-authorization (the client's credentials for
 * mitmd never reach an origin, as on HTTP/1.1). Returns the count. */
size_t h2_fields_to_nv(const struct h2_half *h, nghttp2_nv *nva);

/* h2_vec_is returns whether `v` holds exactly the bytes of `s`. Inline: the HTTP/1.1 bridge
 * (worker/h2_h1up.c) uses it too and links none of the relay. */
static inline bool h2_vec_is(nghttp2_vec v, const char *s)
{
    size_t n = __builtin_strlen(s);

    return v.len == n && __builtin_memcmp(v.base, s, n) == 0;
}

/* h2_field_find returns the value of the first field of `h` named `name` (borrowed from `h`),
 * or {NULL, 0}. */
nghttp2_vec h2_field_find(const struct h2_half *h, const char *name);

/* h2_stream_error sets the flow error of `st` to "<prefix>: <HTTP/2 error name of code>". */
void h2_stream_error(struct h2_stream *st, const char *prefix, uint32_t code);

/* h2_stream_report calls on_flow for `st` once, with `why` as its error unless a complete
 * response was relayed. */
void h2_stream_report(struct h2_stream *st, const char *why);

/* h2_half_discard drops what `d` staged and tells the source session the bytes were
 * consumed, so that its connection window stays open. */
void h2_half_discard(struct h2_relay *r, struct h2_stream *st, enum h2_dir d);

/* h2_stream_release reports `st` (if not yet), drops its header blocks, unlinks it from the
 * relay and returns it to the pool. */
void h2_stream_release(struct h2_relay *r, struct h2_stream *st);

/* h2_stream_maybe_release releases `st` once both its client and upstream streams closed. */
void h2_stream_maybe_release(struct h2_relay *r, struct h2_stream *st);

/* h2_stream_by_uid returns the live stream whose upstream id is `uid`, or NULL; NULL for
 * `uid` <= 0 (a stream that never went upstream has uid 0, so 0 names none). */
struct h2_stream *h2_stream_by_uid(const struct h2_relay *r, int32_t uid);

/* h2_flow_from_conn starts a stream's flow with the connection's fields. */
void h2_flow_from_conn(struct h2_relay *r, struct flow *f);

/* h2_rst_client resets the client stream (if still open) with `code`. */
void h2_rst_client(struct h2_relay *r, struct h2_stream *st, uint32_t code);

/* h2_rst_upstream resets (or cancels, if its HEADERS are still queued) the upstream stream. */
void h2_rst_upstream(struct h2_relay *r, struct h2_stream *st, uint32_t code);

/* h2_goaway_client tells the client, once, that no stream after the last processed one will
 * be served (RFC 9113 §6.8); the client session finishes when its streams have. */
void h2_goaway_client(struct h2_relay *r);

/* h2_stream_answer responds to the client stream with `status` and `why` (plus "\n") as a
 * text/plain body, records it in the flow, and abandons the upstream stream. */
void h2_stream_answer(struct h2_relay *r, struct h2_stream *st, int status, const char *why);

/* h2_half_kick resumes the sink's data source after bytes or the end arrived. */
void h2_half_kick(struct h2_relay *r, struct h2_stream *st, enum h2_dir d);

/* h2_half_stage appends a received body chunk to direction `d` of `st`; the source's window
 * guarantees room. Returns 0 or -ENOSPC (a peer overran its window: nghttp2 would have caught
 * it, so never expected). */
int h2_half_stage(struct h2_relay *r, struct h2_stream *st, enum h2_dir d, const uint8_t *p,
                  size_t n);

/* h2_half_read is the sink session's data source (nghttp2_data_source_read_callback) for the
 * staged body of a stream: it takes staged bytes, opens the source's window by as much, and
 * ends the body (with trailers) once the source ended. Returns the bytes copied to `out`, or
 * NGHTTP2_ERR_DEFERRED when nothing is staged yet. */
ssize_t h2_half_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len, uint32_t *flags,
                     nghttp2_data_source *src, void *ud);

/* h2_body_hold decides whether the body of `d` is collected for --modify-body; if so it copies
 * the head (`nva`, `nv`) to send later (allocates the copy). Returns true when the head is
 * held, false when the body streams as usual. */
bool h2_body_hold(struct h2_relay *r, struct h2_stream *st, enum h2_dir d, const nghttp2_nv *nva,
                  size_t nv);

/* h2_body_feed collects a DATA chunk of a body held for --modify-body (the source's window is
 * opened at once). Past body_size_limit the held head goes out with what was collected and the
 * rest streams as usual. */
void h2_body_feed(struct h2_relay *r, struct h2_stream *st, enum h2_dir d, const uint8_t *p,
                  size_t n);

/* h2_body_end rewrites a held body whose source ended and sends the head and the result. */
void h2_body_end(struct h2_relay *r, struct h2_stream *st, enum h2_dir d);

/* ---- h2_forward.c: forwarding heads -------------------------------------------------------- */

/* h2_forward_request submits the complete request head of `st` upstream (or answers it
 * locally when it cannot go), with the request body as data source unless `end_stream`. */
void h2_forward_request(struct h2_relay *r, struct h2_stream *st, bool end_stream);

/* h2_stream_due acts on the deadline of a held or stalled stream that passed (at `now`):
 * a held request goes upstream, a stalled response is answered 504. */
void h2_stream_due(struct h2_relay *r, struct h2_stream *st, uint64_t now);

/* h2_forward_response_head submits the response head of `st` to the client, with the
 * response body as data source unless `end_stream`. */
void h2_forward_response_head(struct h2_relay *r, struct h2_stream *st, bool end_stream);

/* ---- h2_session.c: nghttp2 callbacks and session options ----------------------------------- */

/* h2_count_client_error counts the client's protocol error (or flood) once per connection. */
void h2_count_client_error(struct h2_relay *r, bool flood);

/* h2_session_callbacks_new makes the callback set both sessions share. Returns 0 or -ENOMEM. */
int h2_session_callbacks_new(nghttp2_session_callbacks **out);

/* h2_session_option_new makes the nghttp2 options of `r`'s sessions (manual window updates,
 * flood limits, header block size). Returns 0 or -ENOMEM. */
int h2_session_option_new(const struct h2_relay *r, nghttp2_option **out);

/* ---- h2_window.c: receive-window autotuning ------------------------------------------- */

/* H2_WIN_FIRST: the window of a stream opened before its source session's round trip was
 * measured (the connection's first requests): what one more round trip at 64 KiB would cost
 * on a long path is worth a reservation for that long. */
#define H2_WIN_FIRST ((size_t)1 << 20)

/* h2_window_settings_sent notes that our SETTINGS went out on the client (`client` true) or
 * upstream session: its ACK times the session's round trip. */
void h2_window_settings_sent(struct h2_relay *r, bool client);

/* h2_window_settings_acked takes the round-trip sample when the peer acknowledged our
 * SETTINGS. */
void h2_window_settings_acked(struct h2_relay *r, bool client);

/* h2_window_taken accounts `n` bytes of direction `d` of `st` that the sink took (and the
 * source's window reopened by): once per half window (an epoch) it estimates the source path's
 * bandwidth-delay product (bytes taken over the epoch's time, times the source session's round
 * trip); a window below H2_WIN_LIMITED (h2_window.c: 4) times that grows to it
 * (WINDOW_UPDATE), at least doubling, at most H2_WIN_STEP_MAX-fold (256), within the
 * connection's and the worker's staging bounds. Never allocates (chunks are reserved, not
 * taken). */
void h2_window_taken(struct h2_relay *r, struct h2_stream *st, enum h2_dir d, size_t n);

/* h2_window_open starts the window of direction `d` of a new stream `st` (its stream exists
 * on the source session) at what earlier streams of the connection grew to (1 MiB while the
 * session's round trip is not measured yet), within half of the connection's staging left: a
 * stream does not ramp up from 64 KiB again. */
void h2_window_open(struct h2_relay *r, struct h2_stream *st, enum h2_dir d);

/* h2_window_may_open returns whether h2_window_open could start a new stream's direction `d`
 * above H2_STAGE_SIZE (an unmeasured round trip, or a window learnt on the connection): the
 * common case skips the stream lookup. */
static inline bool h2_window_may_open(const struct h2_relay *r, enum h2_dir d)
{
    int i = d == H2_REQ ? 0 : 1;

    return r->_rtt_ns[i] == 0 || r->_win_hint[i] > H2_STAGE_SIZE;
}

/* h2_window_release drops what the stagings of `st` hold and their reservations (the
 * connection's count and the pool's). */
void h2_window_release(struct h2_relay *r, struct h2_stream *st);

/* ---- h2_relay.c: connection-level events --------------------------------------------------- */

/* h2_relay_finish marks the client side as done: every stream still open is reported with
 * `why` and the relay wants to close. */
void h2_relay_finish(struct h2_relay *r, const char *why);

/* h2_relay_upstream_gone handles an upstream that cannot serve any more (once): streams
 * without a response head are answered `status` with `why`, those in mid-response are reset,
 * every stream's upstream half is closed, and the client gets GOAWAY. */
void h2_relay_upstream_gone(struct h2_relay *r, int status, const char *why);

#endif
