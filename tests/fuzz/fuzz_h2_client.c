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

#include "tests/fuzz/h2_fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_POOL 160

struct fz {
    struct fz_bufs b;
    nghttp2_session *origin;
};

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

/* origin_step: the origin reads what the relay sent upstream and answers (lenient: the
 * client side is the hostile one, the relay may forward a client's nonsense upstream). */
static void origin_step(void *arg)
{
    struct fz *z = arg;

    fz_peer_step(&z->b, z->origin, &z->b.uo, &z->b.ui, false);
}

static int origin_new(struct fz *z)
{
    nghttp2_session_callbacks *cb;

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, origin_frame_recv);
    if (nghttp2_session_server_new(&z->origin, cb, z) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -1;
    }
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(z->origin, NGHTTP2_FLAG_NONE, NULL, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct h2_pool *pool;
    static struct fz z;
    struct h2_relay r;
    struct h2_relay_opts opts;
    struct flow conn;
    unsigned wants;

    if (size == 0)
        return 0;
    memset(&z, 0, sizeof(z));
    fz_prepare(&pool, FZ_POOL, &z.b, &conn, &opts, data[0]);
    if (origin_new(&z) != 0)
        return 0;
    if (h2_relay_init(&r, &opts, &conn, &z.b.ci, &z.b.co, &z.b.ui, &z.b.uo) != 0)
        abort();

    wants = fz_feed(&r, &z.b, data, size, &z.b.ci, &z.b.co, origin_step, &z, 0);
    fz_settle(&r, &z.b.co, origin_step, &z, wants);
    if (data[0] & 2)
        h2_relay_upstream_eof(&r);
    if (data[0] & 4)
        h2_relay_timeout(&r, H2_TIMEOUT_UPSTREAM);
    wants = h2_relay_pump(&r);
    if (wants & H2_WANT_CLOSE) {
        size_t before = buf_used(&z.b.co);

        /* a closing relay does not produce more */
        if ((h2_relay_pump(&r) & H2_WANT_CLOSE) == 0 || buf_used(&z.b.co) != before)
            abort();
    }
    fz_finish(&r, pool, FZ_POOL);
    nghttp2_session_del(z.origin);
    z.origin = NULL;
    return 0;
}
