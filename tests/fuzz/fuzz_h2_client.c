/* fuzz_h2_client.c - libFuzzer target: arbitrary bytes as the client side of an h2_relay whose
 * upstream is a real nghttp2 server answering every request. Input: byte 0 picks the chunk
 * size the client bytes are fed in (1..256), the rest is the client's byte stream. Checks:
 * no crash or sanitizer report, buffers within capacity, every stream slot back in the pool
 * after dispose, and no byte toward the client once the relay wants to close. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "worker/flow.h"
#include "worker/h2_relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_BUF 16384
#define FZ_POOL 160
#define FZ_ROUNDS 64

struct fz {
    uint8_t mem[4][FZ_BUF];
    struct buf ci, co, ui, uo;
    nghttp2_session *origin;
    const uint8_t *pend;
    size_t pend_len;
    size_t flows;
};

static void on_flow(void *arg, const struct flow *f)
{
    struct fz *z = arg;
    char line[2048];

    z->flows++;
    if (flow_format_line(f, line, sizeof(line)) < 0)
        abort(); /* a flow record always formats into a generous buffer */
}

static ssize_t origin_body(nghttp2_session *s, int32_t id, uint8_t *out, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    static const char body[] = "ok";

    if (len < 2)
        return NGHTTP2_ERR_DEFERRED;
    memcpy(out, body, 2);
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return 2;
}

static int origin_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    nghttp2_nv nva[] = {{(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0}};
    nghttp2_data_provider prd = {.source = {.ptr = NULL}, .read_callback = origin_body};

    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0)
        nghttp2_submit_response(s, frame->hd.stream_id, nva, 1, &prd);
    return 0;
}

static void origin_step(struct fz *z)
{
    size_t n = buf_used(&z->uo);

    if (n > 0) {
        ssize_t rv = nghttp2_session_mem_recv(z->origin, buf_head(&z->uo), n);

        buf_consume(&z->uo, rv < 0 ? n : (size_t)rv);
    }
    for (int i = 0; i < FZ_ROUNDS; i++) {
        if (z->pend_len > 0) {
            size_t k = buf_append(&z->ui, z->pend, z->pend_len);

            z->pend += k;
            z->pend_len -= k;
            if (z->pend_len > 0)
                return;
        }
        {
            const uint8_t *d;
            ssize_t m = nghttp2_session_mem_send(z->origin, &d);

            if (m <= 0)
                return;
            z->pend = d;
            z->pend_len = (size_t)m;
        }
    }
}

static void check_bufs(const struct fz *z)
{
    const struct buf *b[4] = {&z->ci, &z->co, &z->ui, &z->uo};

    for (int i = 0; i < 4; i++)
        if (b[i]->off > b[i]->len || b[i]->len > b[i]->cap)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct h2_pool *pool;
    static struct fz z;
    struct h2_relay r;
    struct h2_relay_opts opts = {0};
    struct flow conn;
    nghttp2_session_callbacks *cb;
    size_t chunk, pos;
    unsigned wants = 0;

    if (size == 0)
        return 0;
    if (pool == NULL) {
        pool = h2_pool_new(FZ_POOL);
        if (pool == NULL)
            abort();
    }
    memset(&z, 0, sizeof(z));
    buf_init(&z.ci, z.mem[0], FZ_BUF);
    buf_init(&z.co, z.mem[1], FZ_BUF);
    buf_init(&z.ui, z.mem[2], FZ_BUF);
    buf_init(&z.uo, z.mem[3], FZ_BUF);
    flow_init(&conn);
    opts.pool = pool;
    opts.max_header_size = (data[0] & 1) ? 4096 : 0;
    opts.on_flow = on_flow;
    opts.on_flow_arg = &z;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return 0;
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, origin_frame_recv);
    if (nghttp2_session_server_new(&z.origin, cb, &z) != 0) {
        nghttp2_session_callbacks_del(cb);
        return 0;
    }
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(z.origin, NGHTTP2_FLAG_NONE, NULL, 0);
    if (h2_relay_init(&r, &opts, &conn, &z.ci, &z.co, &z.ui, &z.uo) != 0)
        abort();

    chunk = 1 + (size_t)data[0];
    for (pos = 1; pos < size && (wants & H2_WANT_CLOSE) == 0;) {
        size_t n = size - pos < chunk ? size - pos : chunk;

        n = buf_append(&z.ci, data + pos, n);
        pos += n;
        for (int i = 0; i < 4; i++) {
            wants = h2_relay_pump(&r);
            buf_consume(&z.co, buf_used(&z.co)); /* the client reads everything */
            origin_step(&z);
            check_bufs(&z);
        }
        if (n == 0 && buf_room(&z.ci) == 0)
            break; /* the relay stopped reading: nothing more can go in */
    }
    for (int i = 0; i < 8 && (wants & H2_WANT_CLOSE) == 0; i++) {
        wants = h2_relay_pump(&r);
        buf_consume(&z.co, buf_used(&z.co));
        origin_step(&z);
    }
    if (data[0] & 2)
        h2_relay_upstream_eof(&r);
    if (data[0] & 4)
        h2_relay_timeout(&r, H2_TIMEOUT_UPSTREAM);
    wants = h2_relay_pump(&r);
    if (wants & H2_WANT_CLOSE) {
        size_t before = buf_used(&z.co);

        /* a closing relay does not produce more */
        if ((h2_relay_pump(&r) & H2_WANT_CLOSE) == 0 || buf_used(&z.co) != before)
            abort();
    }
    h2_relay_client_eof(&r);
    if ((h2_relay_pump(&r) & H2_WANT_CLOSE) == 0)
        abort();
    h2_relay_dispose(&r);
    if (h2_pool_available(pool) != FZ_POOL)
        abort();
    nghttp2_session_del(z.origin);
    z.origin = NULL;
    return 0;
}
