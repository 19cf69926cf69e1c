/* conn.c - see conn.h.
 *
 * Buffers and ops in flight: a recv writes at rx's tail as it was when armed (`recv_at`);
 * readers may consume rx meanwhile (which can reset or compact it), so the completion moves
 * the new bytes to the current tail. Appends to tx while a send is in flight only use the
 * room after `len` (never compacting), so the bytes being sent never move. Nothing is freed
 * while `inflight` > 0 (STYLE.md "io_uring"). */
#include "worker/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/log.h"
#include "worker/access.h"
#include "worker/answer.h"
#include "worker/modes.h"
#include "worker/worker.h"

static_assert(offsetof(struct conn, proto_state) < offsetof(struct conn, flow),
              "the accept-time memset stops at the protocol state and never reaches the flow");
static_assert(offsetof(struct conn, flow) + sizeof(struct flow) <= sizeof(struct conn) &&
                  sizeof(struct flow) - offsetof(struct flow, arena) - FLOW_ARENA_SIZE < 16,
              "the flow's arena ends the connection: conn_trim gives back the pages after it");
static_assert(sizeof(struct conn) % 4096 == 0, "connections are whole pages");

static const char *const conn_state_names[CONN_STATE_COUNT] = {"open", "closing", "closed"};

const char *conn_state_name(enum conn_state s)
{
    return (unsigned)s < CONN_STATE_COUNT ? conn_state_names[s] : "?";
}

static void conn_set_state(struct conn *c, enum conn_state next)
{
    if (c->state == next)
        return;
    log_debug("conn %llu: %s -> %s (%s)", (unsigned long long)c->id, conn_state_name(c->state),
              conn_state_name(next), c->proto != NULL ? c->proto->name : "-");
    c->state = next;
}

void conn_set_proto(struct conn *c, const struct conn_proto *p)
{
    if (c->proto != NULL && c->proto->dispose != NULL)
        c->proto->dispose(c);
    log_debug("conn %llu: protocol %s -> %s", (unsigned long long)c->id,
              c->proto != NULL ? c->proto->name : "-", p->name);
    memset(c->proto_state, 0, p->state_size);
    c->proto = p;
    c->t_proto = flow_now_ns();
}

int conn_pool_init(struct conn_pool *p, int max, size_t max_head)
{
    size_t in, per;

    memset(p, 0, sizeof(*p));
    if (max_head > (1u << 30))
        return -EINVAL;
    /* a whole head plus one buffer of what follows it, page aligned */
    in = (max_head + CONN_IO_SIZE + 4095) & ~(size_t)4095;
    per = 2 * (2 * in + (size_t)CONN_IO_SIZE + CONN_BUF_SIZE);
    if (max <= 0 || (size_t)max > SIZE_MAX / per / 2)
        return -EINVAL;
    p->in_size = in;
    p->per_conn = per;
    p->conns = mmap(NULL, (size_t)max * sizeof(*p->conns), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p->conns == MAP_FAILED) {
        p->conns = NULL;
        return -ENOMEM;
    }
    p->bufs_len = (size_t)max * per;
    p->bufs = mmap(NULL, p->bufs_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p->bufs == MAP_FAILED) {
        munmap(p->conns, (size_t)max * sizeof(*p->conns));
        p->conns = NULL;
        p->bufs = NULL;
        return -ENOMEM;
    }
    p->max = max;
    /* no slot is written here: untouched slots (conns[fresh..max)) cost no memory, so an
     * idle worker's RSS does not grow with --max-conns */
    p->fresh = 0;
    p->next_id = 1;
    return 0;
}

void conn_pool_dispose(struct conn_pool *p)
{
    if (p->conns != NULL)
        munmap(p->conns, (size_t)p->max * sizeof(*p->conns));
    if (p->bufs != NULL)
        munmap(p->bufs, p->bufs_len);
    memset(p, 0, sizeof(*p));
}

int conn_queue_client(struct conn *c, const void *p, size_t n)
{
    if (leg_tx_room(&c->cl) < n)
        return -ENOSPC;
    memcpy(buf_tail(&c->cl.tx), p, n);
    buf_commit(&c->cl.tx, n);
    return 0;
}

void conn_record_error(struct conn *c, const char *why)
{
    struct flow *f = &c->flow;

    if (f->t_start == 0)
        flow_begin(f); /* nothing was parsed: the record still names the client */
    flow_set_error(f, why);
    f->t_done = flow_now_ns();
    worker_on_flow(c->w, f);
    flow_next(f);
}

bool conn_idle_expired(const struct conn *c, uint64_t now)
{
    return now - c->t_io >= (uint64_t)c->w->cfg->idle_timeout_s * 1000000000ull;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void conn_on_recv(struct ring_op *op, int res, uint32_t flags);
static void conn_on_send(struct ring_op *op, int res, uint32_t flags);
static void conn_on_close(struct ring_op *op, int res, uint32_t flags);
static void conn_on_cancel(struct ring_op *op, int res, uint32_t flags);
static void conn_on_again(struct ring_op *op, int res, uint32_t flags);

static void conn_leg_init(struct conn *c, struct conn_leg *leg, uint8_t *storage, size_t in)
{
    leg->c = c;
    leg->fd = -1;
    buf_init(&leg->rx, storage, in);
    buf_init(&leg->pin, storage + in, in);
    buf_init(&leg->tx, storage + 2 * in, CONN_IO_SIZE);
    buf_init(&leg->pout, storage + 2 * in + CONN_IO_SIZE, CONN_BUF_SIZE);
    /* rx and tx are the TLS ciphertext staging: records are decrypted straight from where
     * the recv put them and encrypted straight into what the send takes (no copies between
     * the socket buffers and a staging of its own; an idle connection's trim gives all of
     * these pages back) */
    tls_conn_set_io(&leg->tls, &leg->rx, &leg->tx, &leg->send_op.armed);
    ring_op_init(&leg->recv_op, conn_on_recv, &c->inflight);
    ring_op_init(&leg->send_op, conn_on_send, &c->inflight);
    ring_op_init(&leg->close_op, conn_on_close, &c->inflight);
    ring_op_init(&leg->cancel_op, conn_on_cancel, &c->inflight);
}

void conn_dispose(struct conn *c)
{
    if (c->proto != NULL && c->proto->dispose != NULL)
        c->proto->dispose(c);
    c->proto = NULL;
    tls_conn_dispose(&c->cl.tls);
    tls_conn_dispose(&c->up.tls);
    c->cl.tls_on = false;
    c->up.tls_on = false;
}

static void conn_free(struct conn *c)
{
    struct conn_pool *p = &c->w->pool;

    conn_dispose(c);
    flow_body_release(&c->flow);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        p->active = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->reclaimed)
        p->reclaiming--;
    c->in_use = false;
    c->prev = NULL;
    c->next = p->free_list;
    p->free_list = c;
    p->used--;
    worker_publish_load(c->w);
}

/* conn_release_check frees `c` when it is closed and nothing is in flight. Returns true if
 * it was freed. */
static bool conn_release_check(struct conn *c)
{
    if (c->state != CONN_STATE_CLOSED || c->inflight > 0)
        return false;
    conn_free(c);
    return true;
}

static void conn_set_nodelay(int fd)
{
    int one = 1;

    /* best effort: a failure only costs latency */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* conn_refuse answers 503 on a socket we cannot serve and closes it. */
static void conn_refuse(struct worker *w, int fd)
{
    char msg[512];
    ssize_t n = answer_format(msg, sizeof(msg), 503, "too many connections, retry later",
                              ANSWER_CONNECTION_LIMIT, NULL, NULL);

    /* the socket is fresh and empty: this non-blocking send cannot stall the loop */
    if (n > 0)
        (void)send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    close(fd);
    worker_count(w, MSG_STAT_CLIENT_ERRORS);
    worker_count(w, MSG_STAT_REFUSED);
}

static bool conn_may_grow(struct conn *c, const struct conn_leg *leg);

/* conn_is_reclaimable returns whether closing `c` loses no exchange: it is idle between
 * requests, or its client has not completed a request head (or handshake) yet. */
static bool conn_is_reclaimable(struct conn *c)
{
    return c->state == CONN_STATE_OPEN && (conn_is_idle(c) || conn_may_grow(c, &c->cl));
}

/* conn_reclaim closes up to CONN_RECLAIM_BATCH reclaimable connections quiet for at least
 * CONN_RECLAIM_QUIET_MS, the least recently active first (one scan of the pool, then their
 * slots free as their closes complete).
 * Returns how many it closed. */
static int conn_reclaim(struct worker *w)
{
    struct conn *pick[CONN_RECLAIM_BATCH];
    uint64_t now = flow_now_ns();
    int n = 0;

    for (struct conn *c = w->pool.active; c != NULL; c = c->next) {
        int i;

        /* quiet for a while: a client that just connected gets to send its request (when
         * only such are left, the next one over the limit gets the 503 that says why) */
        if (now - c->t_io < (uint64_t)CONN_RECLAIM_QUIET_MS * 1000000ull ||
            !conn_is_reclaimable(c))
            continue;
        if (n == CONN_RECLAIM_BATCH && c->t_io >= pick[n - 1]->t_io)
            continue;
        if (n < CONN_RECLAIM_BATCH)
            n++;
        for (i = n - 1; i > 0 && pick[i - 1]->t_io > c->t_io; i--)
            pick[i] = pick[i - 1]; /* kept sorted, oldest first */
        pick[i] = c;
    }
    for (int i = 0; i < n; i++) {
        log_debug("conn %llu: closed to make room (pool nearly full)",
                  (unsigned long long)pick[i]->id);
        pick[i]->reclaimed = true;
        w->pool.reclaiming++;
        conn_close(pick[i]);
        worker_count(w, MSG_STAT_RECLAIMED);
        conn_release_check(pick[i]);
    }
    return n;
}

void conn_accept(struct worker *w, int fd, const struct modes_conf *mode)
{
    struct conn_pool *p = &w->pool;
    struct conn *c = p->free_list;
    uint8_t *storage;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (c == NULL && p->fresh < p->max)
        c = &p->conns[p->fresh]; /* taken below; freed slots are reused first (warm pages) */
    worker_count(w, MSG_STAT_ACCEPTED);
    w->stats.v[MSG_LSTN_SLOT(mode->index, MSG_LSTN_ACCEPTED)]++; /* by listener (--mode) */
    if (c == NULL) {
        w->stats.v[MSG_LSTN_SLOT(mode->index, MSG_LSTN_REFUSED)]++;
        conn_refuse(w, fd);
        return;
    }
    if (c == p->free_list)
        p->free_list = c->next;
    else
        p->fresh++;
    storage = p->bufs + (size_t)(c - p->conns) * p->per_conn;
    memset(c, 0, offsetof(struct conn, proto_state));
    c->w = w;
    c->mode = mode;
    c->id = p->next_id++;
    c->in_use = true;
    c->next = p->active;
    if (p->active != NULL)
        p->active->prev = c;
    p->active = c;
    p->used++;
    conn_leg_init(c, &c->cl, storage, p->in_size);
    conn_leg_init(c, &c->up, storage + p->per_conn / 2, p->in_size);
    ring_op_init(&c->again_op, conn_on_again, &c->inflight);
    upstream_init(c);
    c->cl.fd = fd;
    c->state = CONN_STATE_OPEN;
    c->t_io = flow_now_ns();
        c->again_runs = 0;
    flow_init(&c->flow);
    c->flow.proxy_mode = mode->spec != NULL ? mode->spec->full_spec : NULL;
    c->flow.proxy_mode_in_line = w->cfg->n_modes > 1;
    c->flow.showhost = w->cfg->showhost;
    c->flow.replay_request = mode->client_replay;
    c->flow.bodies = w->bodies.limit != 0 ? &w->bodies : NULL;
    conn_set_nodelay(fd);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        flow_set_client(&c->flow, (struct sockaddr *)&ss, sl);
    log_debug("conn %llu: accepted fd %d", (unsigned long long)c->id, fd);
    if (access_admit(c, false)) /* block_global / block_private (worker/access.h) */
        mode->start(c);
    /* an accept that completed as the stop began (before its cancel landed): the kernel
     * took this client off the queue already, so it is served, as a draining connection
     * (its exchange ends with "Connection: close" or GOAWAY) - a 503 here loses a request
     * that no other worker can take (chaos SIGHUP row) */
    if (w->stopping && c->proto != NULL)
        conn_drain(c);
    conn_pump(c);
    /* nearly full: make room before the next accepts find no slot (closes complete later) */
    if (p->max >= 4 * CONN_RECLAIM_BATCH &&
        p->max - p->used + p->reclaiming < CONN_RECLAIM_BATCH)
        conn_reclaim(w);
}

/* conn_leg_close cancels everything in flight on `leg`'s socket and closes it through the
 * ring (falling back to close(2) when an earlier close op of this leg is still pending). */
static void conn_leg_close(struct conn *c, struct conn_leg *leg)
{
    struct ring *r = &c->w->ring;
    int fd = leg->fd;

    if (fd < 0)
        return;
    leg->fd = -1;
    leg->gen++;
    if (leg->recv_op.armed || leg->send_op.armed ||
        (leg == &c->up && c->upstream.connect_op.armed)) {
        if (ring_submit_cancel_fd(r, &leg->cancel_op, fd) != 0)
            (void)shutdown(fd, SHUT_RDWR); /* wakes the recv/send; no cancel slot left */
    }
    if (ring_submit_close(r, &leg->close_op, fd) != 0)
        close(fd);
}

void conn_close(struct conn *c)
{
    if (c->state == CONN_STATE_CLOSED)
        return;
    conn_leg_close(c, &c->cl);
    conn_leg_close(c, &c->up);
    conn_set_state(c, CONN_STATE_CLOSED);
    /* the protocol lets go of what outlives the sockets (a pending certificate wait) */
    if (c->proto != NULL && c->proto->dispose != NULL)
        c->proto->dispose(c);
    c->proto = NULL;
}

void conn_close_after_flush(struct conn *c)
{
    if (c->state != CONN_STATE_OPEN)
        return;
    conn_set_state(c, CONN_STATE_CLOSING);
}

void conn_drain(struct conn *c)
{
    if (c->state != CONN_STATE_OPEN)
        return;
    if (!c->draining) {
        c->draining = true;
        c->drained_proto = c->proto;
        if (c->proto->drain != NULL)
            c->proto->drain(c);
    }
    conn_pump(c);
}

/* conn_drained returns whether a draining `c` may close now: idle, and quiet for
 * CONN_DRAIN_QUIET_MS. An idle keep-alive connection is not closed the moment the drain
 * begins: its client may have sent a request already (the keep-alive race); one that arrives
 * meanwhile is served with "Connection: close". */
static bool conn_drained(struct conn *c)
{
    return c->draining && conn_is_idle(c) &&
           flow_now_ns() - c->t_io >= (uint64_t)CONN_DRAIN_QUIET_MS * 1000000ull;
}

void conn_up_drop(struct conn *c)
{
    struct conn_leg *up = &c->up;

    conn_leg_close(c, up);
    tls_conn_dispose(&up->tls);
    up->tls_on = false;
    up->rd_eof = up->failed = up->eof_told = false;
    up->tls_eof_fed = up->tls_closed = up->shut = false;
    up->connected = false;
    up->drained = false;
    up->why[0] = '\0';
    buf_init(&up->rx, up->rx.data, up->rx.cap);
    buf_init(&up->tx, up->tx.data, up->tx.cap);
    buf_init(&up->pin, up->pin.data, up->pin.cap);
    buf_init(&up->pout, up->pout.data, up->pout.cap);
}

/* ---- completions ------------------------------------------------------------------------ */

static void conn_on_recv(struct ring_op *op, int res, uint32_t flags)
{
    struct conn_leg *leg = (struct conn_leg *)((char *)op - offsetof(struct conn_leg, recv_op));
    struct conn *c = leg->c;

    (void)flags;
    if (c->state == CONN_STATE_CLOSED) {
        conn_release_check(c);
        return;
    }
    if (leg->recv_gen != leg->gen) {
        conn_pump(c); /* a dropped upstream's recv: re-arm for the new one */
        return;
    }
    if (res > 0) {
        struct buf *rx = &leg->rx;

        if (rx->len != leg->recv_at)
            memmove(rx->data + rx->len, rx->data + leg->recv_at, (size_t)res);
        buf_commit(rx, (size_t)res);
        leg->drained = (size_t)res < leg->recv_len;
        c->t_io = flow_now_ns();
        c->again_runs = 0;
        worker_count_add(c->w, leg == &c->cl ? MSG_STAT_CLIENT_RX_BYTES : MSG_STAT_UP_RX_BYTES,
                         (uint64_t)res);
    } else if (res == 0) {
        leg->rd_eof = true;
    } else if (res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
        leg->failed = true;
        leg->err = res;
    }
    conn_pump(c);
}

static void conn_on_send(struct ring_op *op, int res, uint32_t flags)
{
    struct conn_leg *leg = (struct conn_leg *)((char *)op - offsetof(struct conn_leg, send_op));
    struct conn *c = leg->c;

    (void)flags;
    if (c->state == CONN_STATE_CLOSED) {
        conn_release_check(c);
        return;
    }
    if (leg->send_gen != leg->gen) {
        conn_pump(c);
        return;
    }
    if (res > 0) {
        buf_consume(&leg->tx, (size_t)res);
        c->t_io = flow_now_ns();
        worker_count_add(c->w, leg == &c->cl ? MSG_STAT_CLIENT_TX_BYTES : MSG_STAT_UP_TX_BYTES,
                         (uint64_t)res);
    } else if (res != -EINTR && res != -EAGAIN && res != -ECANCELED) {
        leg->failed = true;
        leg->err = res;
    }
    conn_pump(c);
}

static void conn_on_close(struct ring_op *op, int res, uint32_t flags)
{
    struct conn_leg *leg = (struct conn_leg *)((char *)op - offsetof(struct conn_leg, close_op));

    (void)res;
    (void)flags;
    conn_release_check(leg->c);
}

static void conn_on_cancel(struct ring_op *op, int res, uint32_t flags)
{
    struct conn_leg *leg = (struct conn_leg *)((char *)op - offsetof(struct conn_leg, cancel_op));

    (void)res;
    (void)flags;
    conn_release_check(leg->c);
}

/* conn_on_again continues a pump that ran out of its budget (see conn_pump). */
static void conn_on_again(struct ring_op *op, int res, uint32_t flags)
{
    struct conn *c = (struct conn *)((char *)op - offsetof(struct conn, again_op));

    (void)res;
    (void)flags;
    conn_pump(c); /* frees a closed connection once nothing else is in flight */
}

/* ---- pumping ---------------------------------------------------------------------------- */

/* conn_may_grow returns whether the protocol waits for more bytes of a head from `leg`. */
static bool conn_may_grow(struct conn *c, const struct conn_leg *leg)
{
    return c->state == CONN_STATE_OPEN && c->proto->reads_head != NULL &&
           c->proto->reads_head(c, leg);
}

/* conn_leg_arm arms the recv and the send that `leg` needs. */
static void conn_leg_arm(struct conn *c, struct conn_leg *leg, bool want_read)
{
    struct ring *r = &c->w->ring;
    size_t room;

    if (leg->fd < 0 || leg->failed)
        return;
    if (!leg->send_op.armed && buf_used(&leg->tx) > 0) {
        leg->send_len = buf_used(&leg->tx);
        leg->send_gen = leg->gen;
        if (ring_submit_send(r, &leg->send_op, leg->fd, buf_head(&leg->tx), leg->send_len) != 0)
            leg->failed = true;
    }
    if (!want_read || leg->rd_eof || leg->recv_op.armed)
        return;
    if (buf_used(&leg->rx) >= CONN_IO_SIZE && !conn_may_grow(c, leg))
        return; /* backpressure: the consumer is behind */
    room = buf_room(&leg->rx);
    if (room == 0)
        return;
    if (room > CONN_IO_SIZE)
        room = CONN_IO_SIZE; /* touch the big input buffers only as far as needed */
    leg->recv_at = leg->rx.len;
    leg->recv_len = room;
    leg->recv_gen = leg->gen;
    /* A socket the last recv emptied rarely has bytes again by now (the peer answers what we
     * sent): wait for readiness rather than try a receive that finds nothing. */
    if ((leg->drained ? ring_submit_recv_polled : ring_submit_recv)(
            r, &leg->recv_op, leg->fd, buf_tail(&leg->rx), room) != 0)
        leg->failed = true;
}

/* conn_round runs transports, the protocol and egress once. Returns whether anything moved. */
static bool conn_round(struct conn *c)
{
    bool moved = false;

    moved |= transport_ingress(&c->cl, conn_may_grow(c, &c->cl));
    moved |= transport_ingress(&c->up, conn_may_grow(c, &c->up));
    if (c->state == CONN_STATE_OPEN)
        moved |= upstream_step(c); /* a dial through upstream mode's next proxy */
    if (c->state == CONN_STATE_OPEN && c->draining && c->drained_proto != c->proto) {
        /* drained before this protocol took over (mid-CONNECT or mid-handshake at a stop or
         * reload): without this it would serve keep-alive requests until the stop deadline */
        c->drained_proto = c->proto;
        if (c->proto->drain != NULL)
            c->proto->drain(c);
    }
    if (c->state == CONN_STATE_OPEN)
        moved |= c->proto->step(c);
    else if (c->state == CONN_STATE_CLOSING && c->proto != NULL && c->proto->flush != NULL)
        c->proto->flush(c);
    if (c->state == CONN_STATE_CLOSED)
        return false;
    moved |= transport_egress(&c->cl);
    moved |= transport_egress(&c->up);
    if (c->state == CONN_STATE_CLOSING)
        moved |= transport_shutdown(&c->cl);
    return moved;
}

/* conn_client_flushed returns whether everything for the client reached the kernel. */
static bool conn_client_flushed(struct conn *c)
{
    return c->cl.failed || c->cl.fd < 0 || !transport_has_output(&c->cl);
}

void conn_pump(struct conn *c)
{
    int round;

    for (round = 0; round < CONN_PUMP_ROUNDS && c->state != CONN_STATE_CLOSED; round++)
        if (!conn_round(c))
            break;
    /* the budget ran out while work was still moving (a burst of tiny TLS records, say: the
     * ciphertext is already out of the socket, so no recv completion would come back for it):
     * a NOP completion pumps again after the other connections' events of this batch */
    if (round == CONN_PUMP_ROUNDS && c->state != CONN_STATE_CLOSED && !c->again_op.armed &&
        c->again_runs < CONN_AGAIN_MAX) {
        c->again_runs++; /* bounded: a protocol that always reports progress cannot spin */
        if (ring_submit_nop(&c->w->ring, &c->again_op) != 0)
            log_warn("conn %llu: cannot queue the rest of its work", (unsigned long long)c->id);
    }
    if (c->state == CONN_STATE_OPEN && conn_drained(c))
        conn_close(c); /* a drained connection ends once its exchanges are over */
    if (c->state == CONN_STATE_CLOSED) {
        conn_release_check(c);
        return;
    }
    if (c->state == CONN_STATE_CLOSING) {
        conn_leg_arm(c, &c->cl, false);
        if (conn_client_flushed(c)) {
            conn_close(c);
            conn_release_check(c);
        }
        return;
    }
    conn_leg_arm(c, &c->cl, true);
    conn_leg_arm(c, &c->up, c->up.connected);
}

bool conn_is_idle(struct conn *c)
{
    /* whatever the protocol says, output still on its way to the client is not lost */
    if (c->state != CONN_STATE_OPEN || transport_has_output(&c->cl))
        return false;
    return c->proto->is_idle != NULL && c->proto->is_idle(c);
}

/* ---- timeouts ---------------------------------------------------------------------------- */

/* conn_leg_is_empty returns whether none of `leg`'s buffers holds a byte and no send is armed. */
static bool conn_leg_is_empty(const struct conn_leg *leg)
{
    return buf_used(&leg->rx) == 0 && buf_used(&leg->pin) == 0 && buf_used(&leg->tx) == 0 &&
           buf_used(&leg->pout) == 0 && !leg->send_op.armed;
}

/* conn_trim gives the pages of an idle connection's buffers back to the kernel once it has
 * been quiet for CONN_TRIM_IDLE_MS (and again only after new I/O): a held keep-alive or idle
 * connection then costs its TLS objects and its struct, not the buffers its last exchange
 * touched. An armed recv is harmless: the kernel copies into the address at completion, and
 * a page dropped here comes back zeroed on that first touch. */
static void conn_trim(struct conn *c, uint64_t now)
{
    struct conn_pool *p = &c->w->pool;

    if (c->t_trim == c->t_io || now - c->t_io < (uint64_t)CONN_TRIM_IDLE_MS * 1000000ull ||
        !conn_is_idle(c) || !conn_leg_is_empty(&c->cl) || !conn_leg_is_empty(&c->up))
        return;
    c->t_trim = c->t_io;
    /* best effort: a failure only keeps the pages */
    (void)madvise(p->bufs + (size_t)(c - p->conns) * p->per_conn, p->per_conn, MADV_DONTNEED);
    /* the flow arena past what the last exchange used, to the end of the struct (page
     * aligned: those pages are this connection's alone) */
    uintptr_t from = ((uintptr_t)(c->flow.arena + c->flow.arena_used) + 4095) & ~(uintptr_t)4095;
    uintptr_t to = (uintptr_t)(c + 1);

    if (to > from)
        (void)madvise((void *)from, to - from, MADV_DONTNEED);
}

void conn_check_timeouts(struct conn *c, uint64_t now)
{
    bool fired = false;

    switch (c->state) {
    case CONN_STATE_OPEN:
        conn_trim(c, now);
        fired = upstream_check_timeout(c, now);
        if (!fired && c->state == CONN_STATE_OPEN && c->proto->on_timeout != NULL)
            fired = c->proto->on_timeout(c, now);
        break;
    case CONN_STATE_CLOSING:
        fired = conn_idle_expired(c, now); /* a client that does not read its answer */
        if (fired)
            conn_close(c);
        break;
    default:
        return;
    }
    if (!fired)
        return;
    worker_count(c->w, MSG_STAT_TIMEOUTS);
    conn_pump(c);
}
