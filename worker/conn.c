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
#include "worker/intercept.h"
#include "worker/proxy_req.h"
#include "worker/worker.h"

static const char *const conn_state_names[CONN_STATE_COUNT] = {
    "req_head",  "connecting", "sniff", "tunnel",  "tls_up",
    "cert_wait", "tls_client", "relay", "closing", "closed",
};

const char *conn_state_name(enum conn_state s)
{
    return (unsigned)s < CONN_STATE_COUNT ? conn_state_names[s] : "?";
}

void conn_set_state(struct conn *c, enum conn_state next)
{
    if (c->state == next)
        return;
    log_debug("conn %llu: %s -> %s", (unsigned long long)c->id, conn_state_name(c->state),
              conn_state_name(next));
    c->state = next;
    c->t_state = flow_now_ns();
}

int conn_pool_init(struct conn_pool *p, int max, size_t max_head)
{
    size_t in, per;

    memset(p, 0, sizeof(*p));
    if (max_head > (1u << 30))
        return -EINVAL;
    /* a whole head plus one buffer of what follows it, page aligned */
    in = (max_head + CONN_BUF_SIZE + 4095) & ~(size_t)4095;
    per = 2 * (2 * in + 2 * (size_t)CONN_BUF_SIZE);
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

/* ---- small helpers -------------------------------------------------------------------- */

size_t conn_tx_room(struct conn_leg *leg)
{
    if (leg->send_op.armed)
        return leg->tx.cap - leg->tx.len; /* no compaction under a send in flight */
    return buf_room(&leg->tx);
}

/* conn_tx_append copies what fits of `p` to the leg's tx. Returns bytes copied. */
static size_t conn_tx_append(struct conn_leg *leg, const void *p, size_t n)
{
    size_t room = conn_tx_room(leg);

    if (n > room)
        n = room;
    memcpy(buf_tail(&leg->tx), p, n);
    buf_commit(&leg->tx, n);
    return n;
}

int conn_queue_client(struct conn *c, const void *p, size_t n)
{
    if (conn_tx_room(&c->cl) < n)
        return -ENOSPC;
    conn_tx_append(&c->cl, p, n);
    return 0;
}

static void conn_set_nodelay(int fd)
{
    int one = 1;

    /* best effort: a failure only costs latency */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void conn_on_recv(struct ring_op *op, int res, uint32_t flags);
static void conn_on_send(struct ring_op *op, int res, uint32_t flags);
static void conn_on_aux(struct ring_op *op, int res, uint32_t flags);
static void conn_on_connect(struct ring_op *op, int res, uint32_t flags);

static void conn_leg_init(struct conn *c, struct conn_leg *leg, uint8_t *storage, size_t in)
{
    leg->fd = -1;
    buf_init(&leg->rx, storage, in);
    buf_init(&leg->pin, storage + in, in);
    buf_init(&leg->tx, storage + 2 * in, CONN_BUF_SIZE);
    buf_init(&leg->pout, storage + 2 * in + CONN_BUF_SIZE, CONN_BUF_SIZE);
    ring_op_init(&leg->recv_op, conn_on_recv, c);
    ring_op_init(&leg->send_op, conn_on_send, c);
    ring_op_init(&leg->close_op, conn_on_aux, c);
    ring_op_init(&leg->cancel_op, conn_on_aux, c);
    ring_op_init(&leg->shut_op, conn_on_aux, c);
}

void conn_dispose(struct conn *c)
{
    if (c->h2_on) {
        const struct h2_relay_stats *st = h2_relay_stats(&c->h2);

        uint64_t *v = c->w->stats.v;

        v[MSG_STAT_CLIENT_ERRORS] += st->client_errors;
        v[MSG_STAT_UPSTREAM_ERRORS] += st->upstream_errors;
        v[MSG_STAT_H2_STREAMS] += st->streams;
        v[MSG_STAT_H2_REFUSED] += st->streams_refused;
        v[MSG_STAT_H2_RESETS] += st->client_resets + st->upstream_resets;
        v[MSG_STAT_H2_CLIENT_ERRORS] += st->client_errors;
        v[MSG_STAT_H2_FLOODS] += st->client_floods;
        h2_relay_dispose(&c->h2);
        c->h2_on = false;
    }
    intercept_dispose(c);
}

static void conn_free(struct conn *c)
{
    struct conn_pool *p = &c->w->pool;

    conn_dispose(c);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        p->active = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
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

void conn_accept(struct worker *w, int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 41\r\nConnection: close\r\n\r\n"
                               "mitmd: too many connections, retry later\n";
    struct conn_pool *p = &w->pool;
    struct conn *c = p->free_list;
    uint8_t *storage;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (c == NULL && p->fresh < p->max)
        c = &p->conns[p->fresh]; /* taken below; freed slots are reused first (warm pages) */
    worker_count(w, MSG_STAT_ACCEPTED);
    if (c == NULL || w->stopping) {
        /* the socket is fresh and empty: this non-blocking send cannot stall the loop */
        (void)send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        close(fd);
        worker_count(w, MSG_STAT_CLIENT_ERRORS);
        return;
    }
    if (c == p->free_list)
        p->free_list = c->next;
    else
        p->fresh++;
    storage = p->bufs + (size_t)(c - p->conns) * p->per_conn;
    memset(c, 0, offsetof(struct conn, flow));
    c->w = w;
    c->id = p->next_id++;
    c->in_use = true;
    c->next = p->active;
    if (p->active != NULL)
        p->active->prev = c;
    p->active = c;
    p->used++;
    conn_leg_init(c, &c->cl, storage, p->in_size);
    conn_leg_init(c, &c->up, storage + p->per_conn / 2, p->in_size);
    ring_op_init(&c->connect_op, conn_on_connect, c);
    ipc_wait_init(&c->cert_wait, NULL); /* not waiting */
    c->cl.fd = fd;
    c->state = CONN_STATE_REQ_HEAD;
    c->t_state = c->t_io = flow_now_ns();
    flow_init(&c->flow);
    conn_set_nodelay(fd);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        flow_set_client(&c->flow, (struct sockaddr *)&ss, sl);
    log_debug("conn %llu: accepted fd %d", (unsigned long long)c->id, fd);
    conn_pump(c);
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
    if (leg->recv_op.armed || leg->send_op.armed || (leg == &c->up && c->connect_op.armed)) {
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
    log_debug("conn %llu: close in state %s", (unsigned long long)c->id, conn_state_name(c->state));
    ipc_cert_cancel(&c->w->ipc, &c->cert_wait);
    conn_leg_close(c, &c->cl);
    conn_leg_close(c, &c->up);
    conn_set_state(c, CONN_STATE_CLOSED);
}

void conn_close_after_flush(struct conn *c)
{
    if (c->state == CONN_STATE_CLOSING || c->state == CONN_STATE_CLOSED)
        return;
    conn_set_state(c, CONN_STATE_CLOSING);
}

void conn_up_drop(struct conn *c)
{
    struct conn_leg *up = &c->up;

    conn_leg_close(c, up);
    tls_conn_dispose(&up->tls);
    up->tls_on = false;
    up->rd_eof = up->failed = up->eof_told = false;
    up->connected = false;
    buf_init(&up->rx, up->rx.data, up->rx.cap);
    buf_init(&up->tx, up->tx.data, up->tx.cap);
    buf_init(&up->pin, up->pin.data, up->pin.cap);
    buf_init(&up->pout, up->pout.data, up->pout.cap);
}

int conn_up_open(struct conn *c, const struct sockaddr *sa, socklen_t salen)
{
    int fd, err;

    if (c->up.fd >= 0 || c->connect_op.armed)
        conn_up_drop(c);
    if ((size_t)salen > sizeof(c->up.addr))
        return -EINVAL;
    if (c->connect_op.armed) {
        /* the old connect is still being cancelled: connect when it has completed */
        memmove(&c->up.addr, sa, salen);
        c->up.addrlen = salen;
        c->up_retry = true;
        c->t_connect = flow_now_ns();
        return 0;
    }
    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd == -1)
        return -errno;
    conn_set_nodelay(fd);
    memmove(&c->up.addr, sa, salen);
    c->up.addrlen = salen;
    err =
        ring_submit_connect(&c->w->ring, &c->connect_op, fd, (struct sockaddr *)&c->up.addr, salen);
    if (err) {
        close(fd);
        return err;
    }
    c->up.fd = fd;
    c->up.connected = false;
    c->t_connect = flow_now_ns();
    return 0;
}

/* ---- completions ------------------------------------------------------------------------ */

static struct conn_leg *conn_leg_of(struct conn *c, struct ring_op *op)
{
    if (op == &c->cl.recv_op || op == &c->cl.send_op)
        return &c->cl;
    return &c->up;
}

static void conn_on_recv(struct ring_op *op, int res, uint32_t flags)
{
    struct conn *c = op->conn;
    struct conn_leg *leg = conn_leg_of(c, op);

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
        c->t_io = flow_now_ns();
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
    struct conn *c = op->conn;
    struct conn_leg *leg = op == &c->cl.send_op ? &c->cl : &c->up;

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
    } else if (res != -EINTR && res != -EAGAIN && res != -ECANCELED) {
        leg->failed = true;
        leg->err = res;
    }
    conn_pump(c);
}

static void conn_on_aux(struct ring_op *op, int res, uint32_t flags)
{
    (void)res;
    (void)flags;
    conn_release_check(op->conn);
}

static void conn_on_connect(struct ring_op *op, int res, uint32_t flags)
{
    struct conn *c = op->conn;

    (void)flags;
    if (c->state == CONN_STATE_CLOSED) {
        conn_release_check(c);
        return;
    }
    if (c->up.fd < 0) {
        /* a dropped upstream's connect; a new one may be waiting for it to end */
        if (c->up_retry) {
            int err;

            c->up_retry = false;
            err = conn_up_open(c, (struct sockaddr *)&c->up.addr, c->up.addrlen);
            if (err)
                proxy_req_on_connected(c, err);
        }
        conn_pump(c);
        return;
    }
    proxy_req_on_connected(c, res);
    conn_pump(c);
}

/* ---- pumping ---------------------------------------------------------------------------- */

/* conn_leg_wants_more returns whether the protocol layer waits for more bytes from `leg`
 * (e.g. the rest of a head), so that its input may grow past the CONN_BUF_SIZE watermark. */
static bool conn_leg_wants_more(const struct conn *c, const struct conn_leg *leg)
{
    bool client = leg == &c->cl;

    switch (c->state) {
    case CONN_STATE_REQ_HEAD:
    case CONN_STATE_TLS_UP:
    case CONN_STATE_TLS_CLIENT:
        return true;
    case CONN_STATE_RELAY:
        if (c->h2_on)
            return false; /* nghttp2 consumes header blocks incrementally */
        if (client)
            return h1_relay_state(&c->relay) == H1_STATE_REQ_HEAD;
        return h1_relay_state(&c->relay) == H1_STATE_RESP_HEAD;
    default:
        return false;
    }
}

/* conn_tls_ingress feeds received ciphertext into an open TLS leg and decrypts into pin. */
static void conn_tls_ingress(struct conn *c, struct conn_leg *leg)
{
    const char *why = NULL;
    enum tls_conn_state st;
    ssize_t n;

    if (!leg->tls_on)
        return;
    st = tls_conn_state(&leg->tls);
    if (st != TLS_CONN_STATE_OPEN && st != TLS_CONN_STATE_CLOSED)
        return; /* handshakes are driven by intercept.c */
    for (int i = 0; i < 8; i++) {
        size_t used = buf_used(&leg->rx);

        if (used > 0)
            buf_consume(&leg->rx, tls_conn_feed(&leg->tls, buf_head(&leg->rx), used));
        if (leg->rd_eof && buf_used(&leg->rx) == 0 && !leg->tls_eof_fed) {
            tls_conn_feed_eof(&leg->tls);
            leg->tls_eof_fed = true;
        }
        if (leg->tls_closed || leg->failed)
            return;
        if (buf_room(&leg->pin) == 0 ||
            (buf_used(&leg->pin) >= CONN_BUF_SIZE && !conn_leg_wants_more(c, leg)))
            return;
        n = tls_conn_read(&leg->tls, buf_tail(&leg->pin), buf_room(&leg->pin), &why);
        if (n > 0) {
            buf_commit(&leg->pin, (size_t)n);
            continue;
        }
        if (n == 0) {
            leg->tls_closed = true;
            return;
        }
        if (n == -EAGAIN) {
            if (buf_used(&leg->rx) == 0)
                return;
            continue;
        }
        leg->failed = true;
        leg->err = -EPROTO;
        snprintf(leg->why, sizeof(leg->why), "%s", why != NULL ? why : "TLS error");
        log_debug("conn %llu: %s TLS error: %s", (unsigned long long)c->id,
                  leg == &c->cl ? "client" : "upstream", leg->why);
        return;
    }
}

/* conn_egress moves the leg's relay output toward the socket (through TLS when on) and
 * pending ciphertext into tx. */
static void conn_egress(struct conn_leg *leg)
{
    const char *why = NULL;
    ssize_t n;
    size_t room;

    if (leg->tls_on) {
        enum tls_conn_state st = tls_conn_state(&leg->tls);

        for (int i = 0; i < 8; i++) {
            room = conn_tx_room(leg);
            if (tls_conn_pending(&leg->tls) > 0 && room > 0)
                buf_commit(&leg->tx, tls_conn_take(&leg->tls, buf_tail(&leg->tx), room));
            if ((st != TLS_CONN_STATE_OPEN && st != TLS_CONN_STATE_CLOSED) ||
                buf_used(&leg->pout) == 0)
                break;
            n = tls_conn_write(&leg->tls, buf_head(&leg->pout), buf_used(&leg->pout), &why);
            if (n > 0) {
                buf_consume(&leg->pout, (size_t)n);
                continue;
            }
            if (n != -EAGAIN) {
                leg->failed = true;
                leg->err = -EPROTO;
                snprintf(leg->why, sizeof(leg->why), "%s", why != NULL ? why : "TLS error");
            }
            if (tls_conn_pending(&leg->tls) == 0 || conn_tx_room(leg) == 0)
                break;
        }
        return;
    }
    if (buf_used(&leg->pout) > 0)
        buf_consume(&leg->pout, conn_tx_append(leg, buf_head(&leg->pout), buf_used(&leg->pout)));
}

/* conn_h2_step pumps the h2 relay and reports leg events to it. */
static void conn_h2_step(struct conn *c)
{
    struct conn_leg *cl = &c->cl, *up = &c->up;
    unsigned wants;

    if (!cl->eof_told) {
        if (cl->failed) {
            cl->eof_told = true;
            h2_relay_client_error(&c->h2, cl->why[0] ? cl->why : "client connection failed");
        } else if (cl->tls_closed && buf_used(&cl->pin) == 0) {
            cl->eof_told = true;
            h2_relay_client_eof(&c->h2);
        }
    }
    if (!up->eof_told && up->connected) {
        if (up->failed) {
            up->eof_told = true;
            h2_relay_upstream_error(&c->h2, up->why[0] ? up->why : "upstream connection failed");
        } else if (up->tls_closed && buf_used(&up->pin) == 0) {
            up->eof_told = true;
            h2_relay_upstream_eof(&c->h2);
        }
    }
    wants = h2_relay_pump(&c->h2);
    if (h2_relay_is_reading_head(&c->h2)) {
        if (c->t_head == 0)
            c->t_head = flow_now_ns();
    } else {
        c->t_head = 0;
    }
    if (wants & H2_WANT_CLOSE)
        conn_close_after_flush(c);
}

/* conn_relay_step pumps the h1 relay and reports leg events to it. */
static void conn_relay_step(struct conn *c)
{
    struct conn_leg *cl = &c->cl, *up = &c->up;
    struct buf *cin = cl->tls_on ? &cl->pin : &cl->rx;
    struct buf *uin = up->tls_on ? &up->pin : &up->rx;
    unsigned wants;

    if (c->h2_on) {
        conn_h2_step(c);
        return;
    }

    if (!cl->eof_told) {
        if (cl->failed) {
            cl->eof_told = true;
            h1_relay_client_error(&c->relay, cl->why[0] ? cl->why : "client connection failed");
        } else if ((cl->tls_on ? cl->tls_closed : cl->rd_eof) && buf_used(cin) == 0) {
            cl->eof_told = true;
            h1_relay_client_eof(&c->relay);
        }
    }
    if (!up->eof_told && up->connected) {
        if (up->failed) {
            up->eof_told = true;
            h1_relay_upstream_error(&c->relay, up->why[0] ? up->why : "upstream connection failed");
        } else if ((up->tls_on ? up->tls_closed : up->rd_eof) && buf_used(uin) == 0) {
            up->eof_told = true;
            h1_relay_upstream_eof(&c->relay);
        }
    }
    wants = h1_relay_pump(&c->relay);
    if (h1_relay_is_reading_head(&c->relay)) {
        if (c->t_head == 0)
            c->t_head = flow_now_ns();
    } else {
        c->t_head = 0;
    }
    if ((wants & H1_WANT_UPSTREAM) && !c->up_wanted) {
        c->up_wanted = true;
        proxy_req_upstream_needed(c);
    }
    if (wants & H1_WANT_CLOSE)
        conn_close_after_flush(c);
}

/* conn_sig summarises the buffers and state so that conn_pump can tell whether a round
 * changed anything. */
static uint64_t conn_sig(const struct conn *c)
{
    const struct buf *b[8] = {&c->cl.rx, &c->cl.tx, &c->cl.pin, &c->cl.pout,
                              &c->up.rx, &c->up.tx, &c->up.pin, &c->up.pout};
    uint64_t s = (uint64_t)c->state * 1000003u;

    for (int i = 0; i < 8; i++)
        s = s * 31 + b[i]->len * 7 + b[i]->off;
    if (c->cl.tls_on)
        s = s * 31 + tls_conn_pending(&c->cl.tls) + (uint64_t)tls_conn_state(&c->cl.tls) * 131;
    if (c->up.tls_on)
        s = s * 31 + tls_conn_pending(&c->up.tls) + (uint64_t)tls_conn_state(&c->up.tls) * 131;
    s = s * 31 + (c->relay_on ? (uint64_t)h1_relay_state(&c->relay) : 77);
    if (c->h2_on)
        s = s * 31 + h2_relay_wants(&c->h2);
    s = s * 31 + c->cl.eof_told * 2 + c->up.eof_told * 4 + c->up.connected * 8;
    return s;
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
    if (buf_used(&leg->rx) >= CONN_BUF_SIZE && !conn_leg_wants_more(c, leg))
        return; /* backpressure: the consumer is behind */
    room = buf_room(&leg->rx);
    if (room == 0)
        return;
    if (room > CONN_BUF_SIZE)
        room = CONN_BUF_SIZE; /* touch the big input buffers only as far as needed */
    leg->recv_at = leg->rx.len;
    leg->recv_gen = leg->gen;
    if (ring_submit_recv(r, &leg->recv_op, leg->fd, buf_tail(&leg->rx), room) != 0)
        leg->failed = true;
}

void conn_pump(struct conn *c)
{
    uint64_t before;
    bool up_read;

    if (c->state == CONN_STATE_CLOSED) {
        conn_release_check(c);
        return;
    }
    for (int round = 0; round < CONN_PUMP_ROUNDS; round++) {
        before = conn_sig(c);
        conn_tls_ingress(c, &c->cl);
        conn_tls_ingress(c, &c->up);
        switch (c->state) {
        case CONN_STATE_REQ_HEAD:
        case CONN_STATE_CONNECTING:
        case CONN_STATE_SNIFF:
        case CONN_STATE_TUNNEL:
            proxy_req_step(c);
            break;
        case CONN_STATE_TLS_UP:
        case CONN_STATE_CERT_WAIT:
        case CONN_STATE_TLS_CLIENT:
            intercept_step(c);
            break;
        case CONN_STATE_RELAY:
            conn_relay_step(c);
            break;
        case CONN_STATE_CLOSING:
            if (c->h2_on)
                (void)h2_relay_pump(&c->h2); /* flushes the GOAWAY */
            else if (c->relay_on)
                (void)h1_relay_pump(&c->relay); /* lets a pending answer reach client_out */
            break;
        default:
            break;
        }
        if (c->state == CONN_STATE_CLOSED)
            break;
        conn_egress(&c->cl);
        conn_egress(&c->up);
        if (c->state == CONN_STATE_CLOSING && c->cl.tls_on && !c->cl_shut &&
            buf_used(&c->cl.pout) == 0 && tls_conn_state(&c->cl.tls) == TLS_CONN_STATE_OPEN) {
            /* close_notify after the last response bytes; best effort */
            if (tls_conn_shutdown(&c->cl.tls) != -EAGAIN)
                c->cl_shut = true;
            conn_egress(&c->cl);
        }
        if (conn_sig(c) == before)
            break;
    }
    if (c->state == CONN_STATE_CLOSED) {
        conn_release_check(c);
        return;
    }
    if (c->state == CONN_STATE_CLOSING) {
        conn_leg_arm(c, &c->cl, false);
        if (c->cl.failed || c->cl.fd < 0 ||
            (buf_used(&c->cl.tx) == 0 && !c->cl.send_op.armed && buf_used(&c->cl.pout) == 0 &&
             (!c->cl.tls_on || tls_conn_pending(&c->cl.tls) == 0))) {
            conn_close(c);
            conn_release_check(c);
        }
        return;
    }
    if ((c->cl.failed && c->state != CONN_STATE_RELAY) ||
        (c->w->stopping && conn_is_idle(c))) {
        /* a stopping worker ends keep-alive connections as soon as an exchange is over, not
         * only when its tick finds them idle: a busy client would keep them to the deadline */
        conn_close(c);
        conn_release_check(c);
        return;
    }
    up_read = c->up.connected && c->state != CONN_STATE_CONNECTING;
    conn_leg_arm(c, &c->cl, true);
    conn_leg_arm(c, &c->up, up_read);
}

bool conn_is_idle(const struct conn *c)
{
    const struct buf *cin = c->cl.tls_on ? &c->cl.pin : &c->cl.rx;

    switch (c->state) {
    case CONN_STATE_REQ_HEAD:
        return buf_used(&c->cl.rx) == 0;
    case CONN_STATE_RELAY:
        if (c->h2_on)
            return h2_relay_is_idle(&c->h2) && buf_used(&c->cl.pin) == 0 &&
                   buf_used(&c->cl.tx) == 0 && !c->cl.send_op.armed;
        return h1_relay_state(&c->relay) == H1_STATE_REQ_HEAD && buf_used(cin) == 0 &&
               buf_used(&c->cl.rx) == 0 && buf_used(&c->cl.tx) == 0 && buf_used(&c->cl.pout) == 0 &&
               !c->cl.send_op.armed;
    default:
        return false;
    }
}

/* ---- timeouts ---------------------------------------------------------------------------- */

void conn_check_timeouts(struct conn *c, uint64_t now)
{
    const struct config *cfg = c->w->cfg;
    uint64_t s = 1000000000ull;
    uint64_t idle = (uint64_t)cfg->idle_timeout_s * s;

    switch (c->state) {
    case CONN_STATE_REQ_HEAD:
        if (now - c->t_state < (uint64_t)cfg->request_timeout_s * s)
            return;
        worker_count(c->w, MSG_STAT_TIMEOUTS);
        if (buf_used(&c->cl.rx) > 0) {
            proxy_req_answer(c, 408, "Request Timeout",
                             "mitmd: the request head did not arrive in time\n",
                             "request head timeout");
        } else {
            conn_close(c);
        }
        break;
    case CONN_STATE_CONNECTING:
        if (now - c->t_state < (uint64_t)cfg->connect_timeout_s * s)
            return;
        worker_count(c->w, MSG_STAT_TIMEOUTS);
        proxy_req_connect_timeout(c);
        break;
    case CONN_STATE_TLS_UP:
    case CONN_STATE_CERT_WAIT:
    case CONN_STATE_TLS_CLIENT:
        if (now - c->t_state < (uint64_t)cfg->handshake_timeout_s * s)
            return;
        worker_count(c->w, MSG_STAT_TIMEOUTS);
        intercept_handshake_timeout(c);
        break;
    case CONN_STATE_RELAY:
        if (c->h2_on) {
            if (c->t_head != 0 && now - c->t_head >= (uint64_t)cfg->request_timeout_s * s) {
                worker_count(c->w, MSG_STAT_TIMEOUTS);
                h2_relay_timeout(&c->h2, H2_TIMEOUT_REQUEST_HEAD);
                c->t_head = 0;
            } else if (now - c->t_io >= idle) {
                worker_count(c->w, MSG_STAT_TIMEOUTS);
                h2_relay_timeout(&c->h2,
                                 h2_relay_is_idle(&c->h2) ? H2_TIMEOUT_IDLE : H2_TIMEOUT_UPSTREAM);
            } else {
                return;
            }
            break;
        }
        if (c->up_wanted && c->connect_op.armed &&
            now - c->t_connect >= (uint64_t)cfg->connect_timeout_s * s) {
            worker_count(c->w, MSG_STAT_TIMEOUTS);
            proxy_req_connect_timeout(c);
            break;
        }
        if (c->t_head != 0 && now - c->t_head >= (uint64_t)cfg->request_timeout_s * s) {
            worker_count(c->w, MSG_STAT_TIMEOUTS);
            h1_relay_timeout(&c->relay, H1_TIMEOUT_REQUEST_HEAD);
            c->t_head = 0;
            break;
        }
        if (now - c->t_io < idle)
            return;
        worker_count(c->w, MSG_STAT_TIMEOUTS);
        if (h1_relay_state(&c->relay) == H1_STATE_REQ_HEAD)
            conn_close(c);
        else
            h1_relay_timeout(&c->relay, H1_TIMEOUT_UPSTREAM);
        break;
    case CONN_STATE_SNIFF:
    case CONN_STATE_TUNNEL:
    case CONN_STATE_CLOSING:
        if (now - c->t_io < idle)
            return;
        worker_count(c->w, MSG_STAT_TIMEOUTS);
        conn_close(c);
        break;
    default:
        return;
    }
    conn_pump(c);
}
