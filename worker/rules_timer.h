/* rules_timer.h - one io_uring timeout per connection for the rules' deadlines (inject_latency
 * holds, inject_fault stalls): the relay says when its next deadline is, the timer wakes the
 * connection then (conn_pump) and the relay acts on what is due. Owned by the HTTP/1.1 and
 * HTTP/2 connection glue (h1_conn.c, h2_conn.c); never sleeps, never allocates. */
#ifndef MITMD_WORKER_RULES_TIMER_H
#define MITMD_WORKER_RULES_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "worker/ring.h"

struct conn;

/* struct rules_timer is embedded in a protocol's state. Its ops count in c->inflight, so the
 * connection is freed only after the timer's completion. */
struct rules_timer {
    struct conn *c;
    struct ring_op op;        /* the IORING_OP_TIMEOUT */
    struct ring_op cancel_op; /* cancels `op` when an earlier deadline comes or at close */
    uint64_t armed_for;       /* deadline (CLOCK_MONOTONIC ns) `op` is armed for; 0 = none */
    bool cancelling;
    bool stopped;
};

/* rules_timer_init prepares `t` for connection `c` (nothing armed). */
void rules_timer_init(struct rules_timer *t, struct conn *c);

/* rules_timer_sync makes the timer fire at `deadline` (0: none wanted). An armed timer for a
 * later deadline is cancelled and re-armed; one for an earlier deadline fires first and is
 * re-synced by the next pump. */
void rules_timer_sync(struct rules_timer *t, uint64_t deadline);

/* rules_timer_stop cancels an armed timer for good (the protocol is being disposed). */
void rules_timer_stop(struct rules_timer *t);

#endif
