/* conn.h - one client connection and its upstream: the fixed pool they come from, their two
 * legs (buffers, ring ops, transport), their lifecycle (open, pump, drain, close, free when
 * nothing is in flight) and the protocol currently driving them. Names no protocol: each
 * protocol (proxy request, tunnel, intercept handshake, relays) is a struct conn_proto whose
 * operations the loop calls. Never allocates after conn_pool_init: pool exhaustion is
 * answered 503. */
#ifndef MITMD_WORKER_CONN_H
#define MITMD_WORKER_CONN_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/flow.h"
#include "worker/leg.h"
#include "worker/transport.h"
#include "worker/upstream.h"

#define CONN_PUMP_ROUNDS 16         /* bounded work per event (HAProxy budgets) */
#define CONN_AGAIN_MAX 1024         /* budget-exhausted pumps continued without a socket event */
#define CONN_RECLAIM_BATCH 16       /* connections closed by one conn_reclaim scan */
#define CONN_RECLAIM_QUIET_MS 1000  /* ... each quiet for at least this long */
#define CONN_TRIM_IDLE_MS 1000     /* an idle connection's buffer pages are dropped after this */
#define CONN_DRAIN_QUIET_MS 500     /* a draining idle connection closes after this much quiet */
#define CONN_PROTO_STATE_MAX 4352   /* bytes of per-protocol state in every connection (the
                                     * struct stays 6 pages: the flow after it has room) */

struct worker;
struct conn;
struct modes_conf;

enum conn_state {
    CONN_STATE_OPEN = 0, /* a protocol drives the connection */
    CONN_STATE_CLOSING,  /* flushing what is queued for the client, then closing */
    CONN_STATE_CLOSED,   /* fds closed or closing; freed when nothing is in flight */
    CONN_STATE_COUNT     /* must be last */
};

/* struct conn_proto is a protocol's operation table (HAProxy's mux ops, nginx's handler
 * swap). The loop calls these and knows no protocol by name; a protocol keeps its own state in
 * conn_proto_state(c). Only `name` and `step` are required. */
struct conn_proto {
    const char *name;
    size_t state_size; /* bytes of conn_proto_state(c) it uses (zeroed when it starts) */
    /* step advances the protocol over what the legs hold. Returns true when it moved bytes or
     * changed state (the loop runs again), false when it waits for I/O. */
    bool (*step)(struct conn *c);
    /* reads_head: whether the protocol waits for the rest of a head on `leg`, so that its
     * input may grow past its watermark (up to --max-header-size). */
    bool (*reads_head)(struct conn *c, const struct conn_leg *leg);
    /* on_upstream: the dial begun with upstream_dial ended: `err` 0 (c->up is connected) or
     * -errno with a human `why`. */
    void (*on_upstream)(struct conn *c, int err, const char *why);
    /* on_timeout checks the protocol's deadlines at `now` (CLOCK_MONOTONIC ns) and acts on
     * an expired one. Returns true when one fired (the loop counts it). */
    bool (*on_timeout)(struct conn *c, uint64_t now);
    /* is_idle: nothing in progress; closing now loses nothing (a stopping worker does). */
    bool (*is_idle)(struct conn *c);
    /* drain: finish what is in flight, take nothing new (HTTP/2 GOAWAY). */
    void (*drain)(struct conn *c);
    /* flush: while CONN_STATE_CLOSING, let pending output (an answer, a GOAWAY) reach pout. */
    void (*flush)(struct conn *c);
    /* dispose frees what the protocol holds outside its state (sessions, waits). */
    void (*dispose)(struct conn *c);
    /* report (may be NULL): add what the protocol counted since its last report to the
     * worker's counters (each stats tick: a long-lived connection shows before it closes). */
    void (*report)(struct conn *c);
};

/* conn_start_fn starts the first protocol of an accepted connection (the listener's mode). */
typedef void conn_start_fn(struct conn *c);

/* struct conn is one client connection (and its one upstream). Allocated from the pool,
 * page aligned and a whole number of pages, with the flow (its arena last) at the end: an idle
 * connection's trim gives back every page past what its last exchange used of the arena. */
struct conn {
    alignas(4096) struct worker *w;
    const struct modes_conf *mode; /* the mode of the listener it came in on (worker/modes.h) */
    uint64_t id;
    unsigned inflight; /* ring ops and DNS queries in flight */
    enum conn_state state;
    struct conn *next, *prev; /* the worker's active list, or the free list */
    bool in_use;
    bool draining; /* conn_drain was called: close once idle */
    const struct conn_proto *drained_proto; /* the protocol whose drain ran: one started after
                                             * the drain (HTTP after CONNECT and the TLS
                                             * handshake) is drained when it takes over */
    bool reclaimed; /* closed by conn_reclaim to make room (counted in pool.reclaiming) */

    const struct conn_proto *proto;
    struct conn_leg cl, up;
    struct upstream upstream; /* where the upstream leg goes (upstream.h) */
    struct ring_op again_op;  /* a NOP that pumps again after a pump ran out of its budget */
    unsigned again_runs;      /* such NOPs since the last socket completion (bounded) */

    uint64_t t_proto; /* the current protocol started (CLOCK_MONOTONIC ns) */
    uint64_t t_io;    /* last byte moved on either leg */
    uint64_t t_trim;  /* t_io when conn_trim last dropped the buffers' pages */

    alignas(16) unsigned char proto_state[CONN_PROTO_STATE_MAX];
    struct flow flow; /* the exchange in progress; fields before proto_state are zeroed at
                       * accept; last, so that its arena's unused pages end the struct */
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
    int reclaiming;      /* closed by conn_reclaim, slot not yet free */
    uint64_t next_id;
};

/* conn_pool_init maps storage for `max` connections whose input buffers hold a request or
 * response head of `max_head` bytes (pages are touched on first use). Start-up only;
 * returns 0, -EINVAL or -ENOMEM. */
int conn_pool_init(struct conn_pool *p, int max, size_t max_head);

/* conn_pool_dispose unmaps the pool; every connection must be freed. */
void conn_pool_dispose(struct conn_pool *p);

/* conn_accept takes ownership of the socket `fd` accepted on a listener of `mode` (borrowed
 * for the connection's life): it gets a connection from the pool, lets mode->start set its
 * first protocol and pumps it. When the pool is exhausted or the worker stops it answers 503
 * and closes `fd`. When the pool is nearly full it first closes the least recently active
 * connections that carry no exchange (idle keep-alive, or still waiting for a request head
 * or a TLS handshake: what a slowloris client holds), as nginx does with its reusable
 * connections, so that new clients get served rather than a 503; a connection quiet for less
 * than CONN_RECLAIM_QUIET_MS is never taken. Never fails visibly. */
void conn_accept(struct worker *w, int fd, const struct modes_conf *mode);

/* conn_set_proto makes `p` drive `c`: the previous protocol is disposed and p->state_size
 * bytes of protocol state are zeroed for `p` to fill. */
void conn_set_proto(struct conn *c, const struct conn_proto *p);

/* conn_proto_state returns the CONN_PROTO_STATE_MAX bytes of per-protocol state of `c`. */
static inline void *conn_proto_state(struct conn *c)
{
    return c->proto_state;
}

/* conn_state_name returns a static name for `s`. */
const char *conn_state_name(enum conn_state s);

/* conn_pump advances `c` after any event: transports, protocol step and egress in bounded
 * rounds until nothing moves, then arms the recvs and sends that are due, or closes the
 * connection when it is done. It may free `c` (do not touch it afterwards). */
void conn_pump(struct conn *c);

/* conn_dispose frees what a connection holds outside the pool (the protocol's sessions, TLS);
 * the pool slot itself is untouched. Safe to call twice. */
void conn_dispose(struct conn *c);

/* conn_close closes both legs at once (cancelling what is in flight); `c` is freed when its
 * last op completes. */
void conn_close(struct conn *c);

/* conn_close_after_flush sends what is queued on the client leg, then closes. */
void conn_close_after_flush(struct conn *c);

/* conn_drain asks `c` to finish what is in flight and close (graceful stop and reload): the
 * protocol's drain runs (HTTP/1.1: "Connection: close" on the next response; HTTP/2: GOAWAY),
 * and the connection closes once it is idle and quiet for CONN_DRAIN_QUIET_MS (the worker's
 * tick calls conn_drain again while it stops). */
void conn_drain(struct conn *c);

/* conn_queue_client appends `n` bytes of `p` to the client's socket output (plaintext
 * answers before any TLS: 200/400/502/503). Returns 0 or -ENOSPC. */
int conn_queue_client(struct conn *c, const void *p, size_t n);

/* conn_up_drop closes the upstream socket (keeping the client) and empties its buffers and
 * transport, e.g. before the relay reconnects to another host. Safe when there is none. */
void conn_up_drop(struct conn *c);

/* conn_check_timeouts applies the upstream connect timeout and the protocol's deadlines to
 * `c` at `now` (CLOCK_MONOTONIC ns). Called by the worker's tick; may free `c`. */
void conn_check_timeouts(struct conn *c, uint64_t now);

/* conn_is_idle returns whether `c` may be closed without losing anything in progress. */
bool conn_is_idle(struct conn *c);

/* conn_record_error reports the exchange in progress of `c` (or an empty one naming the
 * client) as a flow that ended with `why` and no response: the client speaks something mitmd
 * cannot answer in (a refused handshake, a bad PROXY header, a malformed SOCKS greeting). */
void conn_record_error(struct conn *c, const char *why);

/* conn_idle_expired returns whether no byte moved on `c` for --idle-timeout at `now`. */
bool conn_idle_expired(const struct conn *c, uint64_t now);

#endif
