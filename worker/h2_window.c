/* h2_window.c - receive-window autotuning of the HTTP/2 relay. A stream's window on the session
 * it receives from (the source) starts at H2_STAGE_SIZE, all its staging can hold. Over a long
 * path that caps the stream at one window per round trip (64 KiB / 50 ms = 1.3 MB/s), so a
 * window is grown when the sink takes the bytes faster than the window lets them come: the
 * bandwidth-delay product measured on the source's path (bytes taken over the time they took,
 * times the source session's round trip) is compared with the window, per half window taken.
 * A grown window is backed by staging chunks reserved from the worker's pool before the peer
 * may send into them, within H2_WIN_CONN_MAX per connection and H2_WIN_WORKER_MAX per worker;
 * the reservation goes back when the stream ends, the chunks as soon as they drain. Called by
 * h2_session.c (round trips) and h2_stream.c (bytes taken); never does I/O or allocates. */
#include <nghttp2/nghttp2.h>

#include "worker/h2_relay_internal.h"

/* H2_WIN_CONN_CHUNKS: chunks one connection may reserve. */
#define H2_WIN_CONN_CHUNKS (H2_WIN_CONN_MAX / H2_CHUNK_PAYLOAD)

/* H2_WIN_FAST: a window limits its stream when the bytes taken per round trip exceed
 * 1/H2_WIN_FAST of it. Bytes come in window-sized bursts a round trip apart, so an epoch that
 * starts in the gap after a burst sees about half the real rate: a low bar still tells a window
 * that limits from one that does not (a stream that sends slowly takes far longer). */
#define H2_WIN_FAST 4

/* H2_WIN_ELAPSED_MAX caps an epoch's length in the products below (no overflow). */
#define H2_WIN_ELAPSED_MAX (100ull * 1000000000ull)

void h2_window_settings_sent(struct h2_relay *r, bool client)
{
    int i = client ? 0 : 1;

    if (r->_settings_ns[i] == 0)
        r->_settings_ns[i] = flow_now_ns();
}

void h2_window_settings_acked(struct h2_relay *r, bool client)
{
    int i = client ? 0 : 1;
    uint64_t now = flow_now_ns();

    if (r->_settings_ns[i] == 0 || now <= r->_settings_ns[i])
        return;
    r->_rtt_ns[i] = now - r->_settings_ns[i];
    r->_settings_ns[i] = 0;
}

/* window_grow raises the window of direction `d` of `st` H2_WIN_GROWTH-fold, or as far as the
 * connection's and the worker's chunks allow, and tells the source (WINDOW_UPDATE). */
static void window_grow(struct h2_relay *r, struct h2_stream *st, enum h2_dir d)
{
    struct h2_stage *s = &st->half[d].stage;
    struct h2_chunks *c = &r->_opts.pool->chunks;
    nghttp2_session *src = d == H2_REQ ? r->_cs : r->_us;
    int32_t id = d == H2_REQ ? st->cid : st->uid;
    size_t target = (size_t)s->win * H2_WIN_GROWTH;
    size_t avail, need;

    if (target > H2_WIN_STREAM_MAX)
        target = H2_WIN_STREAM_MAX;
    avail = H2_WIN_CONN_CHUNKS > r->_win_chunks ? H2_WIN_CONN_CHUNKS - r->_win_chunks : 0;
    if (c->n - c->resv < avail)
        avail = c->n - c->resv;
    if (h2_chunks_for_window(target) > s->resv + avail) /* as far as the bounds allow */
        target = s->resv + avail > 1 ? (s->resv + avail - 1) * H2_CHUNK_PAYLOAD : 0;
    if (target <= s->win)
        return;
    need = h2_chunks_for_window(target) - s->resv;
    if (!h2_chunks_reserve(c, need))
        return;
    if (nghttp2_session_set_local_window_size(src, NGHTTP2_FLAG_NONE, id, (int32_t)target) != 0) {
        h2_chunks_unreserve(c, need);
        return;
    }
    s->resv += (uint32_t)need;
    r->_win_chunks += need;
    s->win = (uint32_t)target;
}

void h2_window_taken(struct h2_relay *r, struct h2_stream *st, enum h2_dir d, size_t n)
{
    struct h2_stage *s = &st->half[d == H2_REQ ? H2_REQ : H2_RESP].stage;
    uint64_t rtt = r->_rtt_ns[d == H2_REQ ? 0 : 1];
    uint64_t now, start, elapsed;

    if (rtt > H2_WIN_ELAPSED_MAX)
        rtt = H2_WIN_ELAPSED_MAX;

    s->epoch_bytes += (uint32_t)n;
    if (s->epoch_bytes < s->win / 2)
        return; /* the common case: one add and one compare */
    now = flow_now_ns();
    start = s->epoch_ns != 0 ? s->epoch_ns
                             : (d == H2_REQ ? st->flow.t_start : st->flow.t_response_first);
    elapsed = start != 0 && now > start ? now - start : 0;
    if (elapsed > H2_WIN_ELAPSED_MAX)
        elapsed = H2_WIN_ELAPSED_MAX;
    /* bytes / elapsed * rtt > win / H2_WIN_FAST, without division */
    if (rtt > 0 && s->win < H2_WIN_STREAM_MAX &&
        elapsed * s->win < (uint64_t)H2_WIN_FAST * s->epoch_bytes * rtt)
        window_grow(r, st, d);
    s->epoch_ns = now;
    s->epoch_bytes = 0;
}

void h2_window_release(struct h2_relay *r, struct h2_stream *st)
{
    struct h2_chunks *c = &r->_opts.pool->chunks;

    for (int d = 0; d < 2; d++) {
        size_t k = h2_stage_dispose(&st->half[d].stage, c);

        r->_win_chunks -= k <= r->_win_chunks ? k : r->_win_chunks;
    }
}
