/* fuzz_h2_h1up.c - libFuzzer target: arbitrary bytes as the HTTP/1.1 server under
 * worker/h2_h1up (the HTTP/2 -> HTTP/1.1 bridge) while a real nghttp2 client session, standing
 * for the relay, sends three requests in turn (GET, POST with a body and no length, HEAD).
 * Input: byte 0 picks the chunk size (1..256) the server bytes are fed in, the rest is the
 * server's byte stream (a new server connection, dialled when the bridge wants one, reads on
 * from the same stream); the server's close comes after the last byte. Checks: whatever the
 * server sends, the client only ever sees valid HTTP/2 from the bridge (its nghttp2 session
 * never rejects a frame and never sends a GOAWAY error), every stream ends, and what the bridge
 * wrote to the server starts with a request head that shared/h1_parse accepts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "shared/h1_parse.h"
#include "worker/h2_h1up.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CAP (96 * 1024)
#define FZ_UPLOAD 3000
#define FZ_SEEN 8192

struct fz {
    nghttp2_session *s;
    struct h2_h1up *b;
    struct buf up_in, up_out;
    uint8_t in_mem[FZ_CAP], out_mem[FZ_CAP];
    uint8_t seen[FZ_SEEN]; /* the first bytes the bridge wrote to the server */
    size_t seen_len;
    const uint8_t *pend;
    size_t pend_len;
    size_t uploaded;
    int closed;
};

static int on_invalid(nghttp2_session *s, const nghttp2_frame *frame, int err, void *ud)
{
    (void)s, (void)frame, (void)err, (void)ud;
    abort(); /* the bridge sent the relay something invalid */
}

static int on_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    (void)s, (void)ud;
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR)
        abort();
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct fz *z = ud;

    (void)s, (void)id, (void)code;
    z->closed++;
    return 0;
}

static ssize_t upload(nghttp2_session *s, int32_t id, uint8_t *out, size_t len, uint32_t *flags,
                      nghttp2_data_source *src, void *ud)
{
    struct fz *z = ud;
    size_t n = FZ_UPLOAD - z->uploaded;

    (void)s, (void)id, (void)src;
    if (n > len)
        n = len;
    memset(out, 'u', n);
    z->uploaded += n;
    if (z->uploaded == FZ_UPLOAD)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* pump moves bytes between the client session and the bridge until nothing moves. */
static void pump(struct fz *z)
{
    for (int round = 0; round < 2000; round++) {
        struct buf *to = h2_h1up_relay_out(z->b), *from = h2_h1up_relay_in(z->b);
        bool moved = false;
        const uint8_t *p;
        ssize_t n;
        size_t k;

        if (z->pend_len > 0) {
            k = buf_append(to, z->pend, z->pend_len);
            z->pend += k;
            z->pend_len -= k;
            moved |= k > 0;
        }
        while (z->pend_len == 0 && (n = nghttp2_session_mem_send(z->s, &p)) > 0) {
            k = buf_append(to, p, (size_t)n);
            moved = true;
            if (k < (size_t)n) {
                z->pend = p + k;
                z->pend_len = (size_t)n - k;
            }
        }
        moved |= h2_h1up_pump(z->b);
        if (h2_h1up_wants_dial(z->b)) { /* as worker/h2_conn.c: the old connection goes */
            buf_consume(&z->up_in, buf_used(&z->up_in));
            buf_consume(&z->up_out, buf_used(&z->up_out));
            h2_h1up_upstream_ready(z->b);
            moved = true;
        }
        if (buf_used(from) > 0) {
            n = nghttp2_session_mem_recv(z->s, buf_head(from), buf_used(from));
            if (n < 0)
                abort();
            buf_consume(from, (size_t)n);
            moved |= n > 0;
        }
        k = buf_used(&z->up_out); /* the server reads all it is sent */
        if (k > 0) {
            size_t keep = FZ_SEEN - z->seen_len < k ? FZ_SEEN - z->seen_len : k;

            memcpy(z->seen + z->seen_len, buf_head(&z->up_out), keep);
            z->seen_len += keep;
            buf_consume(&z->up_out, k);
            moved = true;
        }
        if (!moved)
            return;
    }
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fz z;
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    nghttp2_nv get[] = {NV(":method", "GET"), NV(":scheme", "http"), NV(":authority", "a.test"),
                        NV(":path", "/g"), NV("cookie", "a=1"), NV("cookie", "b=2")};
    nghttp2_nv post[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":authority", "a.test"),
                         NV(":path", "/p")};
    nghttp2_nv head[] = {NV(":method", "HEAD"), NV(":scheme", "http"), NV(":authority", "a.test"),
                         NV(":path", "/h")};
    nghttp2_data_provider prd = {.read_callback = upload};
    struct h1_header hdrs[H1_MAX_HEADERS];
    struct h1_request req;
    const char *why = NULL;
    size_t chunk, off = 1;

    if (size < 1)
        return 0;
    chunk = (size_t)data[0] + 1;
    memset(&z, 0, offsetof(struct fz, in_mem));
    z.seen_len = 0;
    buf_init(&z.up_in, z.in_mem, FZ_CAP);
    buf_init(&z.up_out, z.out_mem, FZ_CAP);
    z.b = h2_h1up_new(4096, &z.up_in, &z.up_out);
    if (z.b == NULL)
        return 0;
    h2_h1up_set_redial(z.b, true); /* a closed server connection is replaced (reverse mode) */
    if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
        abort();
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_option_set_peer_max_concurrent_streams(opt, 1); /* as the relay does */
    if (nghttp2_session_client_new2(&z.s, cb, &z, opt) != 0)
        abort();
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(z.s, NGHTTP2_FLAG_NONE, NULL, 0);
    if (nghttp2_submit_request(z.s, NULL, get, 6, NULL, NULL) < 0 ||
        nghttp2_submit_request(z.s, NULL, post, 4, &prd, NULL) < 0 ||
        nghttp2_submit_request(z.s, NULL, head, 4, NULL, NULL) < 0)
        abort();
    pump(&z);
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;

        if (buf_room(&z.up_in) < n)
            n = buf_room(&z.up_in);
        if (n == 0) {
            pump(&z);
            if (buf_room(&z.up_in) == 0)
                break; /* the bridge takes nothing more (a stalled response) */
            continue;
        }
        buf_append(&z.up_in, data + off, n);
        off += n;
        pump(&z);
    }
    /* the server closes: the bridge is told once its bytes were read, or while it waits for
     * the rest of a head (worker/h2_conn.c) */
    h2_h1up_upstream_eof(z.b, NULL);
    pump(&z);
    if (z.seen_len > 0 &&
        h1_parse_request(z.seen, z.seen_len, 0, &req, hdrs, H1_MAX_HEADERS, &why) <= 0)
        abort(); /* the first request the server got is not a complete, valid head */
    if (z.up_in.len > z.up_in.cap || z.up_out.len > z.up_out.cap)
        abort();
    nghttp2_session_del(z.s);
    h2_h1up_free(z.b);
    return 0;
}
