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

#include "tests/fuzz/h2_fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_POOL 16
#define FZ_UPLOAD 1000

struct fz {
    struct fz_bufs b;
    nghttp2_session *client;
    size_t uploaded;
};

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

/* client_step: the strict client reads what the relay sent it and sends what it has. */
static void client_step(void *arg)
{
    struct fz *z = arg;

    fz_peer_step(&z->b, z->client, &z->b.co, &z->b.ci, true);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct h2_pool *pool;
    static struct fz z;
    struct h2_relay r;
    struct h2_relay_opts opts;
    struct flow conn;
    unsigned wants = 0;

    if (size == 0)
        return 0;
    memset(&z, 0, sizeof(z));
    fz_prepare(&pool, FZ_POOL, &z.b, &conn, &opts, data[0]);
    if (client_new(&z) != 0)
        return 0;
    if (h2_relay_init(&r, &opts, &conn, &z.b.ci, &z.b.co, &z.b.ui, &z.b.uo) != 0)
        abort();
    /* the requests reach the relay before the origin says anything (it reads everything) */
    for (int i = 0; i < 4; i++) {
        client_step(&z);
        wants = h2_relay_pump(&r);
        buf_consume(&z.b.uo, buf_used(&z.b.uo));
    }
    wants = fz_feed(&r, &z.b, data, size, &z.b.ui, &z.b.uo, client_step, &z, wants);
    if (data[0] & 2)
        h2_relay_upstream_eof(&r);
    if (data[0] & 4)
        h2_relay_timeout(&r, H2_TIMEOUT_UPSTREAM);
    fz_settle(&r, &z.b.uo, client_step, &z, wants);
    fz_finish(&r, pool, FZ_POOL);
    nghttp2_session_del(z.client);
    z.client = NULL;
    return 0;
}
