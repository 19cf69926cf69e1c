/* conn.h - one client connection and its upstream: the fixed pool they come from, their
 * buffers, their ring ops and their lifecycle (open, pump, close, free when nothing is in
 * flight). Owns socket I/O scheduling for both legs and the per-connection state; the
 * protocol steps live in proxy_req.c, intercept.c and h1_relay.c. Never allocates after
 * conn_pool_init: pool exhaustion is answered 503 by the caller. */
#ifndef MITMD_WORKER_CONN_H
#define MITMD_WORKER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "shared/buf.h"
#include "shared/nameset.h"
#include "shared/target_parse.h"
#include "worker/dns.h"
#include "worker/flow.h"
#include "worker/h1_relay.h"
#include "worker/h2_relay.h"
#include "worker/ipc.h"
#include "worker/ring.h"
#include "worker/tls_conn.h"

#define CONN_BUF_SIZE (16 * 1024) /* tx and pout of each leg; the watermark of rx and pin */
#define CONN_PUMP_ROUNDS 16       /* bounded work per event (HAProxy budgets) */

struct worker;

enum conn_state {
    CONN_STATE_REQ_HEAD = 0, /* reading the proxy request head from the client */
    CONN_STATE_CONNECTING,   /* CONNECT: resolving and connecting the upstream */
    CONN_STATE_SNIFF,        /* 200 sent: the client's first bytes decide what follows */
    CONN_STATE_TUNNEL,       /* raw passthrough both ways (--ignore-hosts, non-HTTP) */
    CONN_STATE_TLS_UP,       /* client paused at ClientHello; upstream TLS handshake */
    CONN_STATE_CERT_WAIT,    /* waiting for the master to forge the leaf */
    CONN_STATE_TLS_CLIENT,   /* finishing the client handshake with the forged chain */
    CONN_STATE_RELAY,        /* h1 relay (plain or intercepted TLS) */
    CONN_STATE_CLOSING,      /* flushing what is queued, then closing both sides */
    CONN_STATE_CLOSED,       /* fds closed or closing; freed when nothing is in flight */
    CONN_STATE_COUNT         /* must be last */
};

/* struct conn_leg is one side (client or upstream). `rx` receives from the socket
 * (ciphertext when `tls_on`, else plaintext that is also the relay's input), `tx` holds what
 * goes to the socket, `pin`/`pout` are the relay's plaintext input/output. rx and pin can
 * hold a whole head of --max-header-size bytes, but are filled beyond CONN_BUF_SIZE only
 * while the protocol layer waits for the rest of a head (pages are touched lazily). */
struct conn_leg {
    int fd;
    bool tls_on;
    bool rd_eof;                /* recv returned 0 */
    bool failed;                /* recv/send error: stop using the socket */
    bool eof_told;              /* the protocol layer was told about the EOF/error */
    bool connected;             /* upstream: the TCP connect completed */
    bool tls_eof_fed;           /* tls_conn_feed_eof was called */
    bool tls_closed;            /* tls_conn_read returned 0 (close_notify or EOF) */
    int err;                    /* -errno of the failure, when `failed` */
    char why[TLS_CONN_WHY_MAX]; /* human reason of a TLS failure */
    unsigned gen; /* bumped when the socket is dropped: stale completions are ignored */
    unsigned recv_gen, send_gen;
    struct buf rx, tx, pin, pout;
    size_t recv_at;  /* rx->len when the recv was armed (see conn.c) */
    size_t send_len; /* bytes in the send in flight */
    struct ring_op recv_op, send_op, close_op, cancel_op, shut_op;
    struct tls_conn tls;
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

/* struct conn is one client connection (and its one upstream). Allocated from the pool. */
struct conn {
    struct worker *w;
    uint64_t id;
    unsigned inflight; /* ring ops and DNS queries in flight */
    enum conn_state state;
    struct conn *next, *prev; /* the worker's active list, or the free list */
    bool in_use;

    struct conn_leg cl, up;
    struct ring_op connect_op;
    struct dns_req dns;
    struct ipc_wait cert_wait;

    /* the upstream we are (or will be) connected to */
    char host[TARGET_HOST_MAX + 1];
    uint16_t port;
    bool host_is_ip;
    unsigned up_addr_idx; /* which of c->dns's addresses the upstream connect uses */
    bool is_connect;    /* the client sent CONNECT (vs absolute-form) */
    bool up_wanted;     /* the relay asked for an upstream and is waiting for it */
    bool up_retry;      /* connect to up.addr once the dropped upstream's connect ends */
    bool cl_shut;       /* close_notify queued to the client */
    bool hello_done;    /* intercept: the client's ClientHello was read */
    bool relay_on;      /* h1 relay initialised */
    bool up_tls_failed; /* intercept: upstream TLS failed, client gets 502 + why */
    char up_why[TLS_CONN_WHY_MAX];
    char sni[TLS_CONN_NAME_MAX];
    const char *connect_why; /* reason of a failed connect, for 502 */

    /* timing (CLOCK_MONOTONIC ns) */
    uint64_t t_state;   /* entered the current state */
    uint64_t t_io;      /* last byte moved on either leg */
    uint64_t t_head;    /* a partial request head started arriving; 0 = none */
    uint64_t t_connect; /* upstream connect started */
    uint64_t t_tls;     /* upstream TLS started */

    struct h1_relay relay;
    bool h2_on; /* the client and upstream chose h2: `h2` relays, not `relay` */
    struct h2_relay h2;
    bool h2_draining; /* h2_relay_drain was called (worker stopping) */
    struct flow flow;
};

/* struct conn_pool is the fixed set of connections and their buffers, made at start-up. */
struct conn_pool {
    struct conn *conns;
    size_t in_size;  /* capacity of each rx and pin */
    size_t per_conn; /* bytes of buffer storage per connection */
    uint8_t *bufs;   /* max * per_conn, mapped lazily */
    size_t bufs_len;
    int max;
    int used;
    struct conn *free_list; /* freed slots; never-used ones are conns[fresh..max) */
    int fresh;
    struct conn *active; /* doubly linked list of connections in use */
    uint64_t next_id;
};

/* conn_pool_init maps storage for `max` connections whose input buffers hold a request or
 * response head of `max_head` bytes (pages are touched on first use). Start-up only;
 * returns 0, -EINVAL or -ENOMEM. */
int conn_pool_init(struct conn_pool *p, int max, size_t max_head);

/* conn_pool_dispose unmaps the pool; every connection must be freed. */
void conn_pool_dispose(struct conn_pool *p);

/* conn_accept takes ownership of the accepted socket `fd`: it gets a connection from the
 * pool and starts reading the proxy request. When the pool is exhausted it answers 503 and
 * closes `fd`. Never fails visibly. */
void conn_accept(struct worker *w, int fd);

/* conn_set_state moves `c` to `next` (the only writer of c->state) and stamps t_state. */
void conn_set_state(struct conn *c, enum conn_state next);

/* conn_state_name returns a static name for `s`. */
const char *conn_state_name(enum conn_state s);

/* conn_pump advances `c` after any event: moves bytes between the socket buffers, TLS and
 * the protocol layer, then arms the recvs and sends that are due, or closes the connection
 * when it is done. It may free `c` (do not touch it afterwards). */
void conn_pump(struct conn *c);

/* conn_dispose frees what a connection holds outside the pool (TLS, HTTP/2 sessions); the
 * pool slot itself is untouched. Safe to call twice. */
void conn_dispose(struct conn *c);

/* conn_close closes both legs at once (cancelling what is in flight); `c` is freed when its
 * last op completes. */
void conn_close(struct conn *c);

/* conn_close_after_flush sends what is queued on the client leg, then closes. */
void conn_close_after_flush(struct conn *c);

/* conn_queue_client appends `n` bytes of `p` to the client's socket output (plaintext
 * answers before any TLS: 200/400/502/503). Returns 0 or -ENOSPC. */
int conn_queue_client(struct conn *c, const void *p, size_t n);

/* conn_up_open creates the upstream socket for `sa` and starts the connect through the
 * ring; conn_on_connected (proxy_req.c) runs on completion. Returns 0 or -errno. */
int conn_up_open(struct conn *c, const struct sockaddr *sa, socklen_t salen);

/* conn_up_drop closes the upstream socket (keeping the client), e.g. before the relay
 * reconnects to another host. Safe when there is no upstream. */
void conn_up_drop(struct conn *c);

/* conn_check_timeouts applies the connect, handshake, request-head and idle timeouts to
 * `c` at `now` (CLOCK_MONOTONIC ns). Called by the worker's tick; may free `c`. */
void conn_check_timeouts(struct conn *c, uint64_t now);

/* conn_is_idle returns whether `c` waits for a client's next request with nothing buffered
 * or in progress (safe to close when draining). */
bool conn_is_idle(const struct conn *c);

/* conn_tx_room returns how many bytes can be appended to `leg`'s tx without disturbing a
 * send in flight. */
size_t conn_tx_room(struct conn_leg *leg);

#endif
