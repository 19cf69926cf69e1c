/* rules_timer.c - see rules_timer.h. */
#include "worker/rules_timer.h"

#include <errno.h>
#include <stddef.h>

#include "shared/log.h"

#include "worker/conn.h"
#include "worker/flow.h"
#include "worker/worker.h"

static void rules_timer_fired(struct ring_op *op, int res, uint32_t flags)
{
    struct rules_timer *t = (struct rules_timer *)((char *)op - offsetof(struct rules_timer, op));

    (void)res;
    (void)flags;
    t->armed_for = 0;
    t->cancelling = false;
    conn_pump(t->c); /* the relay acts on what is due and re-syncs; frees a closed conn */
}

static void rules_timer_cancelled(struct ring_op *op, int res, uint32_t flags)
{
    struct rules_timer *t =
        (struct rules_timer *)((char *)op - offsetof(struct rules_timer, cancel_op));

    (void)res;
    (void)flags;
    if (t->stopped)
        conn_pump(t->c); /* releases the connection if this was its last op */
}

void rules_timer_init(struct rules_timer *t, struct conn *c)
{
    t->c = c;
    t->armed_for = 0;
    t->cancelling = t->stopped = false;
    ring_op_init(&t->op, rules_timer_fired, &c->inflight);
    ring_op_init(&t->cancel_op, rules_timer_cancelled, &c->inflight);
}

void rules_timer_sync(struct rules_timer *t, uint64_t deadline)
{
    struct ring *ring = &t->c->w->ring;
    uint64_t now, ms;

    if (deadline == 0 || t->stopped || t->cancelling)
        return;
    if (t->op.armed) {
        if (deadline >= t->armed_for || t->cancel_op.armed)
            return; /* fires first; the pump then re-syncs */
        if (ring_submit_cancel(ring, &t->cancel_op, &t->op) == 0)
            t->cancelling = true; /* the cancelled op completes and the pump re-arms */
        return;
    }
    now = flow_now_ns();
    ms = deadline > now ? (deadline - now + 999999) / 1000000 : 0;
    if (ring_submit_timeout(ring, &t->op, ms) != 0) {
        log_warn("conn %llu: cannot arm a rules timer: the worker tick acts on it",
                 (unsigned long long)t->c->id);
        return;
    }
    t->armed_for = deadline;
}

void rules_timer_stop(struct rules_timer *t)
{
    if (t->c == NULL || t->stopped)
        return;
    t->stopped = true;
    if (t->op.armed && !t->cancelling && !t->cancel_op.armed &&
        ring_submit_cancel(&t->c->w->ring, &t->cancel_op, &t->op) == 0)
        t->cancelling = true;
}
