/* fuzz_h2_upstream.c - libFuzzer target: arbitrary bytes as the upstream side of an h2_relay
 * (a hostile origin) while a real nghttp2 client sends three requests (GET, POST with a body
 * and trailers, GET). Input: byte 0 picks the chunk size (1..256) the origin bytes are fed in,
 * the rest is the origin's byte stream (its SETTINGS first, as a real server would). Checks:
 * whatever the origin sends, the client only ever sees valid HTTP/2 from the relay (its strict
 * nghttp2 session never fails and never sends a GOAWAY error), buffers stay within capacity and
 * every stream slot is back in the pool after dispose. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "worker/flow.h"
#include "worker/h2_relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_BUF 16384
#define FZ_POOL 16
#define FZ_ROUNDS 64
#define FZ_UPLOAD 1000

struct fz {
    uint8_t mem[4][FZ_BUF];
    struct buf ci, co, ui, uo;
    nghttp2_session *client;
    const uint8_t *pend;
    size_t pend_len;
    size_t uploaded;
};

static void on_flow(void *arg, const struct flow *f)
{
    char line[2048];

    if (flow_format_line(f, line, sizeof(line)) < 0)
        abort();
}

/* the client session must never need to complain about what the relay sent it */
static int client_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR)
        abort();
    return 0;
}

static int client_invalid_frame(nghttp2_session *s, const nghttp2_frame *frame, int err, void *ud)
{
    abort(); /* the relay relayed something invalid to the client */
}

static ssize_t upload_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct fz *z = ud;
    size_t n = FZ_UPLOAD - z->uploaded;

    if (n > len)
        n = len;
    memset(out, 'u', n);
    z->uploaded += n;
    if (z->uploaded == FZ_UPLOAD) {
        nghttp2_nv t[] = {{(uint8_t *)"x-t", (uint8_t *)"1", 3, 1, 0}};

        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (nghttp2_submit_trailer(s, id, t, 1) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return (ssize_t)n;
}

static void client_step(struct fz *z)
{
    size_t n = buf_used(&z->co);

    if (n > 0) {
        ssize_t rv = nghttp2_session_mem_recv(z->client, buf_head(&z->co), n);

        if (rv < 0)
            abort(); /* the relay broke the client side of the protocol */
        buf_consume(&z->co, (size_t)rv);
    }
    for (int i = 0; i < FZ_ROUNDS; i++) {
        if (z->pend_len > 0) {
            size_t k = buf_append(&z->ci, z->pend, z->pend_len);

            z->pend += k;
            z->pend_len -= k;
            if (z->pend_len > 0)
                return;
        }
        {
            const uint8_t *d;
            ssize_t m = nghttp2_session_mem_send(z->client, &d);

            if (m < 0)
                abort();
            if (m == 0)
                return;
            z->pend = d;
            z->pend_len = (size_t)m;
        }
    }
}

static int client_new(struct fz *z)
{
    nghttp2_session_callbacks *cb;
    nghttp2_data_provider prd = {.source = {.ptr = NULL}, .read_callback = upload_read};
    nghttp2_nv get_a[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
        {(uint8_t *)":authority", (uint8_t *)"a.test", 10, 6, 0},
        {(uint8_t *)":path", (uint8_t *)"/a", 5, 2, 0},
    };
    nghttp2_nv post_b[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
        {(uint8_t *)":authority", (uint8_t *)"a.test", 10, 6, 0},
        {(uint8_t *)":path", (uint8_t *)"/b", 5, 2, 0},
    };

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, client_frame_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, client_invalid_frame);
    if (nghttp2_session_client_new(&z->client, cb, z) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -1;
    }
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(z->client, NGHTTP2_FLAG_NONE, NULL, 0);
    nghttp2_submit_request(z->client, NULL, get_a, 4, NULL, NULL);  /* stream 1 */
    nghttp2_submit_request(z->client, NULL, post_b, 4, &prd, NULL); /* stream 3 */
    get_a[3].value = (uint8_t *)"/c";
    nghttp2_submit_request(z->client, NULL, get_a, 4, NULL, NULL); /* stream 5 */
    return 0;
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
    if (client_new(&z) != 0)
        return 0;
    if (h2_relay_init(&r, &opts, &conn, &z.ci, &z.co, &z.ui, &z.uo) != 0)
        abort();
    /* the requests reach the relay before the origin says anything */
    for (int i = 0; i < 4; i++) {
        client_step(&z);
        wants = h2_relay_pump(&r);
        buf_consume(&z.uo, buf_used(&z.uo)); /* the origin reads everything */
    }
    chunk = 1 + (size_t)data[0];
    for (pos = 1; pos < size && (wants & H2_WANT_CLOSE) == 0;) {
        size_t n = size - pos < chunk ? size - pos : chunk;

        n = buf_append(&z.ui, data + pos, n);
        pos += n;
        for (int i = 0; i < 4; i++) {
            wants = h2_relay_pump(&r);
            buf_consume(&z.uo, buf_used(&z.uo));
            client_step(&z);
            check_bufs(&z);
        }
        if (n == 0 && buf_room(&z.ui) == 0)
            break;
    }
    if (data[0] & 2)
        h2_relay_upstream_eof(&r);
    if (data[0] & 4)
        h2_relay_timeout(&r, H2_TIMEOUT_UPSTREAM);
    for (int i = 0; i < 8 && (wants & H2_WANT_CLOSE) == 0; i++) {
        wants = h2_relay_pump(&r);
        buf_consume(&z.uo, buf_used(&z.uo));
        client_step(&z);
    }
    h2_relay_client_eof(&r);
    if ((h2_relay_pump(&r) & H2_WANT_CLOSE) == 0)
        abort();
    h2_relay_dispose(&r);
    if (h2_pool_available(pool) != FZ_POOL)
        abort();
    nghttp2_session_del(z.client);
    z.client = NULL;
    return 0;
}
