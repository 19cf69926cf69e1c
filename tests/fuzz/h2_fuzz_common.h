/* h2_fuzz_common.h - what the two h2_relay fuzz targets share: the four staging buffers
 * between the relay and its two peers, the real nghttp2 peer's output pump, the buffer
 * invariants, and the drive loops (feed the fuzz input in chunks, then let things settle).
 * fuzz_h2_client.c fuzzes the client side against a real origin, fuzz_h2_upstream.c the
 * upstream side against a real client. Header-only (static inline): each target uses a part. */
#ifndef MITMD_TESTS_FUZZ_H2_FUZZ_COMMON_H
#define MITMD_TESTS_FUZZ_H2_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "worker/flow.h"
#include "worker/h2_relay.h"

#define FZ_BUF 16384
#define FZ_ROUNDS 64

/* struct fz_bufs: ci/co = client -> relay / relay -> client, ui/uo = upstream -> relay /
 * relay -> upstream; pend is what the real peer produced that did not fit yet. */
struct fz_bufs {
    uint8_t mem[4][FZ_BUF];
    struct buf ci, co, ui, uo;
    const uint8_t *pend;
    size_t pend_len;
};

/* fz_on_flow: every flow record the relay reports formats into a generous buffer. */
static inline void fz_on_flow(void *arg, const struct flow *f)
{
    char line[2048];

    (void)arg;
    if (flow_format_line(f, line, sizeof(line)) < 0)
        abort();
}

static inline void fz_bufs_init(struct fz_bufs *b)
{
    memset(b, 0, sizeof(*b));
    buf_init(&b->ci, b->mem[0], FZ_BUF);
    buf_init(&b->co, b->mem[1], FZ_BUF);
    buf_init(&b->ui, b->mem[2], FZ_BUF);
    buf_init(&b->uo, b->mem[3], FZ_BUF);
}

/* fz_prepare readies one run: the stream pool (made once, `pool_size` slots), the buffers,
 * the connection's flow and the relay options; bit 0 of `flags` (input byte 0) picks a
 * 4 KiB header limit. */
static inline void fz_prepare(struct h2_pool **pool, size_t pool_size, struct fz_bufs *b,
                              struct flow *conn, struct h2_relay_opts *opts, uint8_t flags)
{
    if (*pool == NULL) {
        *pool = h2_pool_new(pool_size);
        if (*pool == NULL)
            abort();
    }
    fz_bufs_init(b);
    flow_init(conn);
    memset(opts, 0, sizeof(*opts));
    opts->pool = *pool;
    opts->max_header_size = (flags & 1) ? 4096 : 0;
    opts->on_flow = fz_on_flow;
}

/* fz_check_bufs aborts when a staging buffer is outside its capacity. */
static inline void fz_check_bufs(const struct fz_bufs *b)
{
    const struct buf *all[4] = {&b->ci, &b->co, &b->ui, &b->uo};

    for (int i = 0; i < 4; i++)
        if (all[i]->off > all[i]->len || all[i]->len > all[i]->cap)
            abort();
}

/* fz_peer_step lets a real nghttp2 peer read what the relay wrote to it (`from`, all of
 * it) and write what it has into `to`, as far as it fits. strict: the peer must never fail
 * (the relay's output must be valid HTTP/2). */
static inline void fz_peer_step(struct fz_bufs *b, nghttp2_session *s, struct buf *from,
                                struct buf *to, bool strict)
{
    size_t n = buf_used(from);

    if (n > 0) {
        ssize_t rv = nghttp2_session_mem_recv(s, buf_head(from), n);

        if (rv < 0 && strict)
            abort(); /* the relay broke the protocol toward this peer */
        buf_consume(from, rv < 0 ? n : (size_t)rv);
    }
    for (int i = 0; i < FZ_ROUNDS; i++) {
        const uint8_t *d;
        ssize_t m;

        if (b->pend_len > 0) {
            size_t k = buf_append(to, b->pend, b->pend_len);

            b->pend += k;
            b->pend_len -= k;
            if (b->pend_len > 0)
                return;
        }
        m = nghttp2_session_mem_send(s, &d);
        if (m < 0 && strict)
            abort();
        if (m <= 0)
            return;
        b->pend = d;
        b->pend_len = (size_t)m;
    }
}

/* fz_round pumps the relay once, lets the fuzzed side read everything the relay sent it
 * (`drain`) and the real peer take its turn (`step`). Returns the relay's wants. */
static inline unsigned fz_round(struct h2_relay *r, struct buf *drain, void (*step)(void *),
                                void *arg)
{
    unsigned wants = h2_relay_pump(r);

    buf_consume(drain, buf_used(drain));
    step(arg);
    return wants;
}

/* fz_feed pushes data[1..size) into `in` in chunks of 1 + data[0] bytes with 4 rounds per
 * chunk, checking the buffers, until the input is used up, the relay stops reading or wants
 * to close. Returns the relay's last wants. */
static inline unsigned fz_feed(struct h2_relay *r, struct fz_bufs *b, const uint8_t *data,
                               size_t size, struct buf *in, struct buf *drain,
                               void (*step)(void *), void *arg, unsigned wants)
{
    size_t chunk = 1 + (size_t)data[0];

    for (size_t pos = 1; pos < size && (wants & H2_WANT_CLOSE) == 0;) {
        size_t n = size - pos < chunk ? size - pos : chunk;

        n = buf_append(in, data + pos, n);
        pos += n;
        for (int i = 0; i < 4; i++) {
            wants = fz_round(r, drain, step, arg);
            fz_check_bufs(b);
        }
        if (n == 0 && buf_room(in) == 0)
            break; /* the relay stopped reading: nothing more can go in */
    }
    return wants;
}

/* fz_settle runs up to 8 more rounds, until the relay wants to close. */
static inline unsigned fz_settle(struct h2_relay *r, struct buf *drain, void (*step)(void *),
                                 void *arg, unsigned wants)
{
    for (int i = 0; i < 8 && (wants & H2_WANT_CLOSE) == 0; i++)
        wants = fz_round(r, drain, step, arg);
    return wants;
}

/* fz_finish ends a run: the client goes away, the relay must want to close, and after
 * dispose every stream slot is back in `pool` (of `pool_size`). */
static inline void fz_finish(struct h2_relay *r, struct h2_pool *pool, size_t pool_size)
{
    h2_relay_client_eof(r);
    if ((h2_relay_pump(r) & H2_WANT_CLOSE) == 0)
        abort();
    h2_relay_dispose(r);
    if (h2_pool_available(pool) != pool_size)
        abort();
}

#endif
