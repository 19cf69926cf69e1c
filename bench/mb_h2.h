/* mb_h2.h - the HTTP/2 side of a mitmd-bench connection (--h2): an nghttp2 client session
 * with up to --streams concurrent requests, fed from and drained into the connection's TLS.
 * Owns the nghttp2 session and a fixed table of stream slots allocated at startup. Called
 * by mb_conn only, on the owning bench thread. nghttp2 allocates per stream internally;
 * this module allocates only in mb_h2_init (slots) and mb_h2_open (the session). */
#ifndef MITMD_BENCH_MB_H2_H
#define MITMD_BENCH_MB_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>

struct mb_conn;

/* struct mb_h2_stream is one request slot: reserved by mb_h2_submit, given a stream id when
 * the session is up, released when the stream closes. */
struct mb_h2_stream {
    struct mb_h2 *h2;
    int32_t id; /* 0 while queued before the session exists */
    bool in_use;
    bool measured;      /* issued after warm-up */
    int status;         /* :status, 0 until the response HEADERS */
    uint64_t start_ns;  /* latency counts from here */
    uint64_t body_left; /* request body bytes still to hand to nghttp2 */
    unsigned retries;   /* times the server refused it unprocessed (REFUSED_STREAM) */
};

/* A request the server refused without processing it (RFC 9113 §8.7: GOAWAY past its last
 * stream id, or REFUSED_STREAM) is queued again, at most this many times, keeping its start
 * time so that the retry shows in its latency. */
#define MB_H2_MAX_RETRIES 3

struct mb_h2 {
    struct mb_conn *conn;         /* owner, for stats and the body filler */
    nghttp2_session *session;     /* NULL until mb_h2_open */
    struct mb_h2_stream *streams; /* `cap` slots */
    unsigned cap, used;
    const uint8_t *out; /* bytes from nghttp2_session_mem_send not yet written */
    size_t out_len;
    bool goaway; /* the server will take no new streams */
};

/* mb_h2_init allocates `cap` stream slots for connection `conn`. Returns 0 or -ENOMEM. */
int mb_h2_init(struct mb_h2 *h, struct mb_conn *conn, unsigned cap);

/* mb_h2_dispose frees the slots and any session. Safe after a failed init. */
void mb_h2_dispose(struct mb_h2 *h);

/* mb_h2_open starts a client session on an established TLS connection (ALPN h2): queues the
 * connection preface and SETTINGS, then every request reserved before. Returns 0, or
 * -ENOMEM/-EPROTO with `*why` set. Allocates the nghttp2 session. */
int mb_h2_open(struct mb_h2 *h, const char **why);

/* mb_h2_reset frees the session and empties every slot without counting anything (the
 * caller has counted in-flight requests with mb_h2_fail_all first if it needs to), except
 * that with `keep_queued` the requests queued for a retry stay, for the next session. */
void mb_h2_reset(struct mb_h2 *h, bool keep_queued);

/* mb_h2_queued returns how many reserved requests have no stream yet (waiting for a
 * session, or refused and queued for a retry). */
unsigned mb_h2_queued(const struct mb_h2 *h);

/* mb_h2_submit_queued submits every queued request on the open session (unless the server
 * sent GOAWAY). Returns 0 or -EPROTO with `*why` set. */
int mb_h2_submit_queued(struct mb_h2 *h, const char **why);

/* mb_h2_fail_all counts one error of `kind` per request in flight (by its warm-up flag)
 * with reason "`what`: `why`" and empties the slots. Returns how many it counted. */
unsigned mb_h2_fail_all(struct mb_h2 *h, int kind, const char *what, const char *why);

/* mb_h2_has_room returns true when another request fits (a free slot, no GOAWAY). */
bool mb_h2_has_room(const struct mb_h2 *h);

/* mb_h2_submit reserves a slot for a request whose latency counts from `start_ns`, and
 * submits it at once if the session is open. Returns 0, -ENOBUFS when no slot is free, or
 * -EPROTO with `*why` set if nghttp2 refused the request. */
int mb_h2_submit(struct mb_h2 *h, uint64_t start_ns, bool measured, const char **why);

/* mb_h2_recv feeds `len` decrypted bytes to the session; completed streams are counted in
 * the connection's stats. Returns 0 or -EPROTO with `*why` set (the connection is broken). */
int mb_h2_recv(struct mb_h2 *h, const uint8_t *data, size_t len, const char **why);

/* mb_h2_next_out points `*p` at the next bytes to write and returns their length (0 when
 * nghttp2 has nothing to send), or -EPROTO with `*why` set. The bytes stay valid until
 * mb_h2_sent has consumed them all. */
ssize_t mb_h2_next_out(struct mb_h2 *h, const uint8_t **p, const char **why);

/* mb_h2_sent records that `n` bytes from mb_h2_next_out were written. */
void mb_h2_sent(struct mb_h2 *h, size_t n);

/* mb_h2_is_finished returns true when the session wants neither to read nor to write
 * (after GOAWAY, once the last stream has closed): the connection can be closed. */
bool mb_h2_is_finished(const struct mb_h2 *h);

#endif
