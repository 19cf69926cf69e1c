/* transport.c - see transport.h. */
#include "worker/transport.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define TRANSPORT_ROUNDS 8 /* record-sized steps per call (HAProxy budgets) */

struct buf *transport_in(struct conn_leg *leg)
{
    return leg->tls_on ? &leg->pin : &leg->rx;
}

static void transport_fail(struct conn_leg *leg, const char *why)
{
    leg->failed = true;
    leg->err = -EPROTO;
    snprintf(leg->why, sizeof(leg->why), "%s", why != NULL ? why : "TLS error");
}

/* transport_feed tells the TLS connection about the socket's EOF (or failure) once the
 * ciphertext before it is read. The ciphertext itself needs no feeding: rx and tx are the TLS
 * staging (conn.c: tls_conn_set_io). Returns whether it told now. */
static bool transport_feed(struct conn_leg *leg)
{
    if ((leg->rd_eof || leg->failed) && buf_used(&leg->rx) == 0 && !leg->tls_eof_fed) {
        tls_conn_feed_eof(&leg->tls);
        leg->tls_eof_fed = true;
        return true;
    }
    return false;
}

bool transport_ingress(struct conn_leg *leg, bool may_grow)
{
    const char *why = NULL;
    enum tls_conn_state st;
    bool moved = false;
    ssize_t n;

    if (!leg->tls_on)
        return false;
    st = tls_conn_state(&leg->tls);
    if (st != TLS_CONN_STATE_OPEN && st != TLS_CONN_STATE_CLOSED)
        return false; /* handshakes are driven by transport_handshake */
    for (int i = 0; i < TRANSPORT_ROUNDS; i++) {
        moved |= transport_feed(leg);
        if (leg->tls_closed || leg->failed)
            return moved;
        if (buf_room(&leg->pin) == 0 || (buf_used(&leg->pin) >= CONN_BUF_SIZE && !may_grow))
            return moved;
        n = tls_conn_read(&leg->tls, buf_tail(&leg->pin), buf_room(&leg->pin), &why);
        if (n > 0) {
            buf_commit(&leg->pin, (size_t)n);
            moved = true;
            continue;
        }
        if (n == 0) {
            leg->tls_closed = true;
            return true;
        }
        if (n == -EAGAIN) {
            if (transport_feed(leg))
                continue; /* the EOF after the last whole record */
            return moved;
        }
        transport_fail(leg, why);
        return true;
    }
    return moved;
}

bool transport_egress(struct conn_leg *leg)
{
    const char *why = NULL;
    enum tls_conn_state st;
    bool moved = false;
    ssize_t n;

    if (!leg->tls_on) {
        size_t used = buf_used(&leg->pout), room = leg_tx_room(leg);

        n = (ssize_t)(used < room ? used : room);
        if (n == 0)
            return false;
        memcpy(buf_tail(&leg->tx), buf_head(&leg->pout), (size_t)n);
        buf_commit(&leg->tx, (size_t)n);
        buf_consume(&leg->pout, (size_t)n);
        return true;
    }
    st = tls_conn_state(&leg->tls);
    for (int i = 0; i < TRANSPORT_ROUNDS; i++) {
        if ((st != TLS_CONN_STATE_OPEN && st != TLS_CONN_STATE_CLOSED) ||
            buf_used(&leg->pout) == 0 || leg->failed)
            break;
        n = tls_conn_write(&leg->tls, buf_head(&leg->pout), buf_used(&leg->pout), &why);
        if (n > 0) {
            buf_consume(&leg->pout, (size_t)n);
            moved = true;
            continue;
        }
        if (n != -EAGAIN) {
            transport_fail(leg, why);
            return true;
        }
        break; /* tx has no room for a record: the send in flight makes some */
    }
    return moved;
}

ssize_t transport_pass(struct conn_leg *leg, const uint8_t *p, size_t n)
{
    const char *why = NULL;
    size_t done = 0;
    ssize_t w;

    if (buf_used(&leg->pout) > 0 || leg->failed || leg->shut)
        return -EAGAIN;
    if (!leg->tls_on) {
        size_t room = leg_tx_room(leg);

        done = n < room ? n : room;
        memcpy(buf_tail(&leg->tx), p, done);
        buf_commit(&leg->tx, done);
        return (ssize_t)done;
    }
    if (tls_conn_state(&leg->tls) != TLS_CONN_STATE_OPEN)
        return -EAGAIN;
    for (int i = 0; i < TRANSPORT_ROUNDS && done < n; i++) {
        w = tls_conn_write(&leg->tls, p + done, n - done, &why);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w != -EAGAIN) {
            /* as transport_egress reports a failure as progress: what was taken, else
             * -EAGAIN, so the relay copies (progress) and its next round sees the failure */
            transport_fail(leg, why);
            return done > 0 ? (ssize_t)done : -EAGAIN;
        }
        break; /* tx has no room for a record */
    }
    return (ssize_t)done;
}

int transport_handshake(struct conn_leg *leg, const char **why)
{
    int r;

    *why = NULL;
    (void)transport_feed(leg);
    r = tls_conn_handshake(&leg->tls, why);
    if (r == 0 || r == -EAGAIN || r == -EINPROGRESS)
        return r;
    return -EPROTO;
}

bool transport_shutdown(struct conn_leg *leg)
{
    if (!leg->tls_on || leg->shut || buf_used(&leg->pout) > 0 ||
        tls_conn_state(&leg->tls) != TLS_CONN_STATE_OPEN)
        return false;
    /* close_notify after the last response bytes; best effort */
    if (tls_conn_shutdown(&leg->tls) == -EAGAIN)
        return false;
    leg->shut = true;
    (void)transport_egress(leg);
    return true;
}

bool transport_is_done(struct conn_leg *leg)
{
    bool eof = leg->tls_on ? leg->tls_closed : leg->rd_eof;

    return eof && buf_used(transport_in(leg)) == 0;
}

bool transport_has_output(struct conn_leg *leg)
{
    return buf_used(&leg->tx) > 0 || leg->send_op.armed || buf_used(&leg->pout) > 0;
}
