/* mb_conn.h - one mitmd-bench client connection: TCP connect, optional proxy CONNECT, TLS
 * handshake, then HTTP/1.1 requests and responses (or HTTP/2 streams through mb_h2), on a
 * non-blocking socket driven by edge-triggered epoll. Owns the socket, the SSL object and
 * fixed rx/tx buffers embedded in the struct (memory per connection is bounded); counts into
 * its thread's mb_stats. Called only by the bench thread that owns the connection. Allocates
 * only per connection (the SSL object), never per HTTP/1.1 request. */
#ifndef MITMD_BENCH_MB_CONN_H
#define MITMD_BENCH_MB_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "bench/mb_h2.h"
#include "bench/mb_opts.h"
#include "bench/mb_resp.h"
#include "bench/mb_stats.h"
#include "shared/buf.h"

#define MB_CONN_RX_CAP MB_RESP_HEAD_MAX /* largest response head (and CONNECT response) */
#define MB_CONN_TX_CAP 2048             /* request head, plus the start of a body */

enum mb_conn_state {
    MB_CONN_STATE_CLOSED = 0,    /* no socket; opened by the next mb_conn_issue */
    MB_CONN_STATE_CONNECTING,    /* TCP connect in progress */
    MB_CONN_STATE_PROXY_SEND,    /* writing the CONNECT request */
    MB_CONN_STATE_PROXY_RECV,    /* reading the CONNECT response head */
    MB_CONN_STATE_TLS_HANDSHAKE, /* client handshake in progress */
    MB_CONN_STATE_IDLE,          /* established, no request in flight */
    MB_CONN_STATE_REQ_SEND,      /* writing request head and body */
    MB_CONN_STATE_RESP_RECV,     /* reading the response */
    MB_CONN_STATE_H2,            /* --h2: session open, streams multiplexed */
    MB_CONN_STATE_COUNT          /* must be last */
};

/* struct mb_conn_env is what all connections of one bench thread share. The thread owns
 * it; connections borrow it for their whole life. */
struct mb_conn_env {
    const struct mb_opts *opts;
    SSL_CTX *ssl_ctx;    /* shared by all threads, read-only after start */
    int epfd;            /* the thread's epoll instance */
    const uint8_t *body; /* filler for request bodies, `body_chunk` bytes */
    size_t body_chunk;
    struct mb_stats *stats; /* the thread's counters */
    SSL_SESSION *session;   /* --resume: newest session, owned here, or NULL */
    unsigned session_host;  /* host index `session` was made for */
    unsigned host_base;     /* this thread's first host index */
    unsigned host_stride;   /* number of threads: indexes stay distinct across threads */
    uint64_t host_seq;      /* connections opened so far by this thread */
    /* Connection set-ups (TCP connect, CONNECT, TLS handshake), warm-up included: the thread
     * loop backs off while they fail and gives up when none succeeds (mb_loop.c). */
    uint64_t setup_ok;                  /* handshakes completed */
    uint64_t setup_failed;              /* connections that failed before that */
    char setup_why[MB_STATS_ERROR_MAX]; /* the latest failure, e.g. "h: connect to ...: ..." */
};

struct mb_conn {
    struct mb_conn_env *env;
    enum mb_conn_state state;
    int fd;
    SSL *ssl;
    unsigned id;       /* index within the thread, for messages */
    bool queued;       /* owned by the thread loop: on its ready or retry list */
    bool again_queued; /* owned by the thread loop: on its drive-again list */
    bool req_pending;  /* a request waits for the connection to come up */
    bool req_measured; /* the request in flight was issued after warm-up */
    bool req_retried;  /* the request in flight is already a retry (retry_request) */
    bool resp_seen;    /* a byte of the response in flight has arrived */
    bool host_is_ip;
    unsigned host_idx;
    unsigned reqs_done;      /* responses read on this connection */
    unsigned issued_on_conn; /* requests given to this connection since it was opened */
    uint64_t opened_ns;      /* connect start */
    uint64_t progress_ns;    /* last successful I/O, for --timeout */
    uint64_t req_start_ns;   /* issue (or intended) time of the request in flight */
    uint64_t body_left;      /* body bytes still to write after tx[] */
    size_t head_prefix_len;  /* request head bytes before the optional Connection line */
    struct mb_resp resp;
    struct mb_h2 h2; /* --h2 only */
    struct buf rx;   /* response bytes not yet parsed */
    struct buf tx;   /* CONNECT request, or request head + start of the body */
    char host[MB_OPTS_HOST_MAX];
    uint8_t rx_store[MB_CONN_RX_CAP];
    uint8_t tx_store[MB_CONN_TX_CAP];
};

/* mb_conn_init prepares `c` (closed) as connection `id` of the thread owning `env`. With
 * --h2 it allocates the stream slots. Returns 0 or -ENOMEM. */
int mb_conn_init(struct mb_conn *c, struct mb_conn_env *env, unsigned id);

/* mb_conn_dispose closes `c` and frees what mb_conn_init allocated. */
void mb_conn_dispose(struct mb_conn *c);

/* mb_conn_issue starts one request whose latency counts from `start_ns`: at once on an
 * idle connection, or after connecting on a closed one. Returns 0 when the request is in
 * flight (its outcome is counted later; call mb_conn_drive next), or -errno when it failed
 * at once (counted, and `c` is closed again: retry later, not in a tight loop). `c` must
 * be ready. */
int mb_conn_issue(struct mb_conn *c, uint64_t start_ns, uint64_t now_ns);

/* mb_conn_drive advances `c` after epoll reported `events` for its socket (or after
 * mb_conn_issue, with 0), until it needs more I/O. Results and failures are counted in the
 * thread's stats; a failed connection is closed. Returns true if it stopped only because
 * its work budget ran out: the caller must drive it again soon, as epoll will not report
 * the socket again. Never blocks. */
bool mb_conn_drive(struct mb_conn *c, uint32_t events, uint64_t now_ns);

/* mb_conn_is_ready returns true when `c` can take a new request (HTTP/1.1: idle, or closed
 * with nothing pending; HTTP/2: a free stream slot). */
bool mb_conn_is_ready(const struct mb_conn *c);

/* mb_conn_is_closed returns true when `c` has no socket: its next request starts with a
 * TCP connect. */
bool mb_conn_is_closed(const struct mb_conn *c);

/* mb_conn_is_idle returns true when `c` has no request in flight or pending. */
bool mb_conn_is_idle(const struct mb_conn *c);

/* mb_conn_check_timeout fails `c` with a timeout error if it has been waiting for I/O for
 * longer than --timeout. Returns true if it did. */
bool mb_conn_check_timeout(struct mb_conn *c, uint64_t now_ns);

/* mb_conn_close releases the socket and SSL object of `c` without counting anything (end of
 * the run). Safe on a closed connection. */
void mb_conn_close(struct mb_conn *c);

/* mb_conn_state_name returns a static name for `s`, for error messages. */
const char *mb_conn_state_name(enum mb_conn_state s);

/* mb_conn_new_session is the SSL_CTX new-session callback for --resume: it keeps the
 * newest session in the connection's env. Returns 1 (the session is taken). */
int mb_conn_new_session(SSL *ssl, SSL_SESSION *session);

/* mb_now_ns returns CLOCK_MONOTONIC in nanoseconds. */
uint64_t mb_now_ns(void);

#endif
