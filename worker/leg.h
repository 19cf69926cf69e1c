/* leg.h - one side of a connection (the client's or the upstream's socket): its buffers, its
 * ring ops and its transport state. Types only, plus the inline room check that every writer of
 * `tx` uses. Owned by conn.c (sockets, ops) and transport.c (bytes through TLS or raw). */
#ifndef MITMD_WORKER_LEG_H
#define MITMD_WORKER_LEG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "shared/buf.h"
#include "worker/ring.h"
#include "worker/tls_conn.h"

/* CONN_BUF_SIZE is the plaintext side of a leg: pout's capacity and pin's watermark.
 * CONN_IO_SIZE is the socket side: tx's capacity, the most one recv asks for and rx's
 * watermark: up to four full TLS records per recv and per send. On 100 KiB bodies that costs
 * about 0.84x the CPU per request of 16 KiB socket operations (fewer, larger loopback
 * segments and completions; bench/RESULTS.md, 2026-12-03); tx/pout/rx/pin pages are touched
 * only as far as used and given back when the connection idles (conn_trim). */
#define CONN_BUF_SIZE (16 * 1024)
#define CONN_IO_SIZE (64 * 1024)

struct conn;

/* struct conn_leg is one side (client or upstream). `rx` receives from the socket
 * (ciphertext when `tls_on`, else plaintext that is also the protocol's input), `tx` holds
 * what goes to the socket, `pin`/`pout` are the protocol's plaintext input/output (see
 * transport.h: a raw leg reads from rx directly). rx and pin can hold a whole head of
 * --max-header-size bytes, but are filled beyond their watermarks only while the protocol
 * waits for the rest of a head (pages are touched lazily). */
struct conn_leg {
    struct conn *c; /* the owner (ring completions find the connection through it) */
    int fd;
    bool tls_on;
    bool rd_eof;                /* recv returned 0 */
    bool failed;                /* recv/send error: stop using the socket */
    bool eof_told;              /* the protocol was told about the EOF/error */
    bool fail_told;             /* client leg: the protocol was told about the error (it may
                                 * come after the EOF was told: a half-closed client whose
                                 * socket then resets while its response still flows) */
    bool connected;             /* upstream: the TCP connect completed */
    bool tls_eof_fed;           /* tls_conn_feed_eof was called */
    bool tls_closed;            /* tls_conn_read returned 0 (close_notify or EOF) */
    bool shut;                  /* close_notify queued */
    int err;                    /* -errno of the failure, when `failed` */
    char why[TLS_CONN_WHY_MAX]; /* human reason of a TLS failure */
    unsigned gen; /* bumped when the socket is dropped: stale completions are ignored */
    unsigned recv_gen, send_gen;
    struct buf rx, tx, pin, pout;
    size_t recv_at;  /* rx->len when the recv was armed (see conn.c) */
    size_t recv_len; /* bytes the recv in flight asked for */
    bool drained;    /* the last recv got less than it asked for: the socket was empty */
    size_t send_len; /* bytes in the send in flight */
    struct ring_op recv_op, send_op, close_op, cancel_op;
    struct tls_conn tls;
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

/* leg_tx_room returns how many bytes can be appended to `leg`'s tx without disturbing a send
 * in flight (no compaction while one is armed: the bytes being sent never move). */
static inline size_t leg_tx_room(struct conn_leg *leg)
{
    if (leg->send_op.armed)
        return leg->tx.cap - leg->tx.len;
    return buf_room(&leg->tx);
}

#endif
