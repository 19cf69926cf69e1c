/* h2_window.c - receive-window autotuning of the HTTP/2 relay. A stream's window on the session
 * it receives from (the source) starts at H2_STAGE_SIZE, all its staging can hold. Over a long
 * path that caps the stream at one window per round trip (64 KiB / 50 ms = 1.3 MB/s), so a
 * window is grown when the sink takes the bytes faster than the window lets them come: the
 * bandwidth-delay product measured on the source's path (bytes taken over the time they took,
 * times the source session's round trip) is compared with the window, per half window taken.
 * A new stream starts at what earlier streams of its connection grew to (H2_WIN_FIRST while the
 * round trip is unknown), so only a connection's first transfer ramps up. A grown window is
 * backed by staging chunks reserved from the worker's pool before the peer may send into them,
 * within H2_WIN_CONN_MAX per connection and H2_WIN_WORKER_MAX per worker; the reservation goes
 * back when the stream ends (credit a peer was given cannot be taken back), the chunks as soon
 * as they drain. Called by h2_session.c (round trips, new streams) and h2_stream.c (bytes
 * taken); never does I/O or allocates. */
#include <nghttp2/nghttp2.h>

#include "worker/h2_relay_internal.h"

/* H2_WIN_CONN_CHUNKS: chunks one connection may reserve. */
#define H2_WIN_CONN_CHUNKS (H2_WIN_CONN_MAX / H2_CHUNK_PAYLOAD)

/* H2_WIN_STEP_MAX: a window grows at most this many times over at once (the first sample is a
 * single burst: it still takes 64 KiB to the 16 MiB cap). */
#define H2_WIN_STEP_MAX 256

/* H2_WIN_LIMITED: a window limits its stream when the path carried more than 1/H2_WIN_LIMITED
 * of it in a round trip. nghttp2 reopens a window once half of it was taken, so a window that
 * limits its stream lets through between half of it and all of it per round trip. */
#define H2_WIN_LIMITED 4

/* H2_WIN_ELAPSED_MAX caps an epoch's length and a round trip in the products below (no
 * overflow); H2_WIN_ELAPSED_MIN keeps a burst taken at once from dividing by zero. */
#define H2_WIN_ELAPSED_MAX (100ull * 1000000000ull)
#define H2_WIN_ELAPSED_MIN 1000ull

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

/* window_grow raises the window of direction `d` of `st` to `target`, or as far as the
 * connection's and the worker's chunks allow, and tells the source (WINDOW_UPDATE). Returns
 * whether it grew. */
static bool window_grow(struct h2_relay *r, struct h2_stream *st, enum h2_dir d, size_t target)
{
    struct h2_stage *s = &st->half[d].stage;
    struct h2_chunks *c = &r->_opts.pool->chunks;
    nghttp2_session *src = d == H2_REQ ? r->_cs : r->_us;
    int32_t id = d == H2_REQ ? st->cid : st->uid;
    size_t avail, need;

    if (st->half[d].ended)
        return false; /* the source sent all it will: no window to open */
    avail = H2_WIN_CONN_CHUNKS > r->_win_chunks ? H2_WIN_CONN_CHUNKS - r->_win_chunks : 0;
    if (c->n - c->resv < avail)
        avail = c->n - c->resv;
    if (h2_chunks_for_window(target) > s->resv + avail) /* as far as the bounds allow */
        target = s->resv + avail > 1 ? (s->resv + avail - 1) * H2_CHUNK_PAYLOAD : 0;
    if (target <= s->win)
        return false;
    need = h2_chunks_for_window(target) - s->resv;
    if (!h2_chunks_reserve(c, need))
        return false;
    if (nghttp2_session_set_local_window_size(src, NGHTTP2_FLAG_NONE, id, (int32_t)target) != 0) {
        h2_chunks_unreserve(c, need);
        return false;
    }
    s->resv += (uint32_t)need;
    r->_win_chunks += need;
    s->win = (uint32_t)target;
    if (r->_win_hint[d] < s->win)
        r->_win_hint[d] = s->win;
    return true;
}

void h2_window_open(struct h2_relay *r, struct h2_stream *st, enum h2_dir d)
{
    struct h2_stage *s = &st->half[d == H2_REQ ? H2_REQ : H2_RESP].stage;
    size_t left = H2_WIN_CONN_CHUNKS > r->_win_chunks ? H2_WIN_CONN_CHUNKS - r->_win_chunks : 0;
    size_t target = r->_win_hint[d == H2_REQ ? H2_REQ : H2_RESP];

    if (r->_rtt_ns[d == H2_REQ ? 0 : 1] == 0 && target < H2_WIN_FIRST)
        target = H2_WIN_FIRST; /* a new connection: the path is not known yet */
    if (target <= s->win)
        return; /* nothing learnt on this session: the common case */
    /* at most half of what the connection has left, so that streams in parallel share it */
    if (h2_chunks_for_window(target) > left / 2)
        target = left / 2 > 1 ? (left / 2 - 1) * H2_CHUNK_PAYLOAD : 0;
    (void)window_grow(r, st, d, target);
}

void h2_window_taken(struct h2_relay *r, struct h2_stream *st, enum h2_dir d, size_t n)
{
    struct h2_stage *s = &st->half[d == H2_REQ ? H2_REQ : H2_RESP].stage;
    uint64_t rtt = r->_rtt_ns[d == H2_REQ ? 0 : 1];
    uint64_t now, start, elapsed, bdp;
    size_t target;

    if (s->epoch_wait) {
        /* a grown window shows a round trip later: bytes before that measure the old one */
        now = flow_now_ns();
        if (now < s->epoch_ns)
            return;
        s->epoch_wait = false;
        s->epoch_ns = now;
        return;
    }
    s->epoch_bytes += (uint32_t)n;
    if (s->epoch_bytes < s->win / 2)
        return; /* the common case: one add and one compare */
    now = flow_now_ns();
    /* the first epoch starts with the head (t_response_first, or t_start for a request):
     * free, and the first window comes right behind it */
    start = s->epoch_ns != 0 ? s->epoch_ns
                             : (d == H2_REQ ? st->flow.t_start : st->flow.t_response_first);
    elapsed = start != 0 && now > start ? now - start : 0;
    if (elapsed > H2_WIN_ELAPSED_MAX)
        elapsed = H2_WIN_ELAPSED_MAX;
    if (elapsed < H2_WIN_ELAPSED_MIN)
        elapsed = H2_WIN_ELAPSED_MIN;
    if (rtt > H2_WIN_ELAPSED_MAX)
        rtt = H2_WIN_ELAPSED_MAX;
    /* the bandwidth-delay product of the source's path, as this epoch saw it */
    bdp = (uint64_t)s->epoch_bytes * rtt / elapsed;
    s->epoch_ns = now;
    s->epoch_bytes = 0;
    if (rtt == 0 || s->win >= H2_WIN_STREAM_MAX || H2_WIN_LIMITED * bdp <= s->win)
        return; /* the window does not limit the stream (or cannot grow) */
    /* H2_WIN_LIMITED times what the path carried per round trip, at least twice the window */
    target = H2_WIN_LIMITED * bdp > 2 * (uint64_t)s->win ? (size_t)(H2_WIN_LIMITED * bdp)
                                                         : 2 * (size_t)s->win;
    if (target > (size_t)s->win * H2_WIN_STEP_MAX)
        target = (size_t)s->win * H2_WIN_STEP_MAX;
    if (target > H2_WIN_STREAM_MAX)
        target = H2_WIN_STREAM_MAX;
    if (window_grow(r, st, d, target)) {
        s->epoch_ns = now + rtt;
        s->epoch_wait = true;
    }
}

void h2_window_release(struct h2_relay *r, struct h2_stream *st)
{
    struct h2_chunks *c = &r->_opts.pool->chunks;

    for (int d = 0; d < 2; d++) {
        size_t k = h2_stage_dispose(&st->half[d].stage, c);

        r->_win_chunks -= k <= r->_win_chunks ? k : r->_win_chunks;
    }
}
