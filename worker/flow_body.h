/* flow_body.h - the request and response bodies of an exchange, captured for -w and HAR
 * (--set save_bodies=SIZE). Owns one capture object per flow with a body, allocated on the
 * first body byte, holding at most SIZE bytes a side (the rest is counted, not kept), freed
 * by flow_body_release when the exchange was recorded. Called by the relays (feed), the
 * worker (release) and the record writers (flow_body_get). Never does I/O. */
#ifndef MITMD_WORKER_FLOW_BODY_H
#define MITMD_WORKER_FLOW_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/h1_parse.h"
#include "worker/flow.h"

#define FLOW_BODY_MAX (1u << 20)          /* the largest save_bodies (1 MiB) */
#define FLOW_BODY_BUDGET (64ull << 20)    /* capture bytes a worker holds at once, at most */
#define FLOW_BODY_FIRST 4096              /* first allocation of a side; doubles up to SIZE */

/* struct flow_body_cfg is a worker's capture setting and accounting (one per worker; flows
 * point at it through flow->bodies). */
struct flow_body_cfg {
    uint32_t limit;       /* save_bodies: bytes kept per body; 0 = off */
    uint64_t in_use;      /* bytes of capture buffers allocated now */
    uint64_t budget;      /* in_use may not exceed this (FLOW_BODY_BUDGET) */
    uint64_t not_kept;    /* bodies (or their rest) not kept because the budget was used up */
};

/* struct flow_body_side is one captured body. */
struct flow_body_side {
    uint8_t *data;        /* `len` bytes kept, NULL before the first byte */
    uint32_t len, cap;
    uint64_t total;       /* body bytes seen (decoded: chunk framing excluded) */
    bool chunked_on;      /* `dec` walks a chunked body */
    struct h1_chunk_decoder dec;
};

/* struct flow_body is the capture of one flow (heap, owned by the flow through flow->body). */
struct flow_body {
    uint64_t t_start;     /* the exchange it belongs to (flow->t_start) */
    struct flow_body_side side[2]; /* [FLOW_REQUEST], [FLOW_RESPONSE] */
};

/* flow_body_cfg_init sets up a worker's capture with `limit` bytes a body (clamped to
 * FLOW_BODY_MAX; 0 = off). */
void flow_body_cfg_init(struct flow_body_cfg *c, uint64_t limit);

/* flow_body_feed records `n` payload bytes of `side`'s body of `f` (a no-op when capture is
 * off). Allocates the capture on first use and grows it up to the limit; without memory (or
 * over the worker budget) the bytes are counted but not kept. Never fails. */
void flow_body_feed(struct flow *f, enum flow_side side, const void *p, size_t n);

/* flow_body_feed_chunked is flow_body_feed for bytes of a chunked body with its framing, as
 * relayed: the payload is taken out with a chunk decoder of its own. */
void flow_body_feed_chunked(struct flow *f, enum flow_side side, const void *p, size_t n);

/* flow_body_get returns `f`'s capture of `side` for the current exchange, or NULL when none
 * (capture off, or no body byte seen). Borrowed until flow_body_release. */
const struct flow_body_side *flow_body_get(const struct flow *f, enum flow_side side);

/* flow_body_side_truncated returns whether a body was longer than what was kept. */
static inline bool flow_body_side_truncated(const struct flow_body_side *s)
{
    return s->total > s->len;
}

/* flow_body_release frees `f`'s capture (NULL body: no-op). Called once the exchange was
 * recorded, and when a connection or stream holding a flow ends. */
void flow_body_release(struct flow *f);

#endif
