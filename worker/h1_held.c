/* h1_held.c - see h1_held.h. */
#include "worker/h1_held.h"

#include <stdlib.h>
#include <string.h>

#include "worker/replay.h"

/* H1_HELD_RAW_MAX: raw bytes of one held body (chunked framing included): twice the payload
 * bound leaves room for the framing of small chunks. */
#define H1_HELD_RAW_MAX ((size_t)2 * REPLAY_BODY_MAX)

static size_t worker_held; /* bytes held by this worker (one worker per process) */

size_t h1_held_worker_bytes(void)
{
    return worker_held;
}

bool h1_held_wanted(const struct h1_request *req, const struct buf *in, size_t head_len)
{
    switch (h1_request_body(req)) {
    case H1_BODY_CHUNKED:
        return true;
    case H1_BODY_LENGTH:
        return req->framing.content_length > 0 &&
               (uint64_t)req->framing.content_length > in->cap - head_len;
    default:
        return false;
    }
}

/* held_append copies `n` bytes into `h`, growing it (doubling) within the per-body and
 * per-worker bounds. Returns 0, or -1 when it would go beyond them or memory ran out. */
static int held_append(struct h1_held *h, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (h->len + n > H1_HELD_RAW_MAX)
        return -1;
    if (h->len + n > h->cap) {
        size_t want = h->cap == 0 ? 16384 : h->cap;
        uint8_t *g;

        while (want < h->len + n)
            want *= 2;
        if (want > H1_HELD_RAW_MAX)
            want = H1_HELD_RAW_MAX;
        if (worker_held - h->cap + want > H1_HELD_BYTES_MAX)
            return -1;
        g = realloc(h->p, want);
        if (g == NULL)
            return -1;
        worker_held += want - h->cap;
        h->p = g;
        h->cap = want;
    }
    memcpy(h->p + h->len, p, n);
    h->len += n;
    return 0;
}

/* cut_from removes `n` bytes at offset `at` of `in`'s used bytes, moving what follows down. */
static void cut_from(struct buf *in, size_t at, size_t n)
{
    uint8_t *p = buf_head(in) + at;
    size_t after = buf_used(in) - at - n;

    memmove(p, p + n, after);
    in->len -= n;
}

enum h1_held_state h1_held_state(const struct h1_held *h)
{
    return h != NULL ? h->state : H1_HELD_OFF;
}

int h1_held_take(struct h1_held **hp, const struct h1_request *req, struct buf *in,
                 size_t head_len, bool eof, const char **why)
{
    size_t avail = buf_used(in) > head_len ? buf_used(in) - head_len : 0, n = avail;
    const uint8_t *p = buf_head(in) + head_len;
    struct h1_held *h = *hp;

    if (h == NULL) {
        if ((h = calloc(1, sizeof(*h))) == NULL) {
            *why = "out of memory holding the request body for server replay";
            return -1;
        }
        *hp = h;
        h->state = H1_HELD_TAKING;
        h->chunked = h1_request_body(req) == H1_BODY_CHUNKED;
        if (h->chunked)
            h1_chunk_decoder_init(&h->dec, 0);
        else
            h->left = req->framing.content_length > 0 ? (uint64_t)req->framing.content_length : 0;
        if (!h->chunked && h->left > REPLAY_BODY_MAX) {
            h->state = H1_HELD_FAILED; /* no recording holds a body this large */
            *why = "request body larger than any recorded one";
            return -1;
        }
    }
    if (h->state == H1_HELD_WHOLE)
        return 1;
    if (h->state == H1_HELD_FAILED)
        return -1;
    if (h->chunked) {
        ssize_t c = avail == 0 ? 0 : h1_chunk_decode_all(&h->dec, p, avail, &h->payload, why);

        if (c < 0) {
            h->state = H1_HELD_FAILED;
            return -1;
        }
        n = (size_t)c;
    } else if (n > h->left) {
        n = (size_t)h->left;
    }
    if (held_append(h, p, n) != 0 || h->payload > REPLAY_BODY_MAX) {
        h->state = H1_HELD_FAILED; /* what fitted stays held, to be forwarded first */
        *why = "request body too large to hold for server replay";
        return -1;
    }
    cut_from(in, head_len, n);
    if (!h->chunked)
        h->left -= n;
    if (h->chunked ? h1_chunk_decoder_is_done(&h->dec) : h->left == 0) {
        h->state = H1_HELD_WHOLE;
        return 1;
    }
    if (eof) {
        h->state = H1_HELD_FAILED;
        *why = "the client closed before the end of the request body";
        return -1;
    }
    return 0;
}

struct buf *h1_held_src(struct h1_held *h)
{
    if (h == NULL || h->len == 0)
        return NULL;
    if (!h->src_on) {
        buf_init(&h->src, h->p, h->cap);
        buf_commit(&h->src, h->len);
        h->src_on = true;
    }
    return buf_used(&h->src) > 0 ? &h->src : NULL;
}

void h1_held_free(struct h1_held **hp)
{
    struct h1_held *h = *hp;

    if (h == NULL)
        return;
    free(h->p);
    worker_held -= h->cap <= worker_held ? h->cap : worker_held;
    free(h);
    *hp = NULL;
}
