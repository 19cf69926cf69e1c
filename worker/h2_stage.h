/* h2_stage.h - the body staging of one direction of an HTTP/2 stream, and the worker's pool of
 * chunks it grows into. A stage is the stream slot's fixed H2_STAGE_SIZE bytes, plus, once the
 * stream's receive window grew past them (worker/h2_window.c), a chain of chunks taken from the
 * pool as bytes arrive and given back as they drain: an idle stream holds none. Called only by
 * worker/h2_*.c; never does I/O; never allocates after h2_chunks_init (the pool is one mapping). */
#ifndef MITMD_WORKER_H2_STAGE_H
#define MITMD_WORKER_H2_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/buf.h"

/* H2_CHUNK_SIZE is the size of one pool chunk (header included): a page multiple, so that idle
 * chunks can be given back to the kernel. */
#define H2_CHUNK_SIZE 16384

/* struct h2_chunk is one link of a stage's chain; its payload follows it in the chunk. */
struct h2_chunk {
    struct h2_chunk *next;
    uint32_t off, len; /* unread bytes are [off, len) of the payload */
};

/* H2_CHUNK_PAYLOAD is the body bytes one chunk holds. */
#define H2_CHUNK_PAYLOAD (H2_CHUNK_SIZE - sizeof(struct h2_chunk))

/* struct h2_chunks is a worker's chunk pool: one reservation of `n` chunks, pages touched only
 * as chunks are used. Window grants reserve chunks (h2_chunks_reserve) before the peer may send
 * into them, so taking a reserved chunk never fails. */
struct h2_chunks {
    uint8_t *mem;
    size_t n;     /* chunks in the mapping */
    size_t hw;    /* chunks ever handed out since the last trim (bump allocation) */
    size_t used;  /* chunks in some stage's chain */
    size_t resv;  /* chunks reserved by window grants (>= what those chains hold) */
    struct h2_chunk *free_list;
};

/* h2_chunks_init maps room for `n` chunks (address space only; MAP_NORESERVE). Returns 0,
 * -EINVAL (n is 0 or overflows) or -ENOMEM. */
int h2_chunks_init(struct h2_chunks *c, size_t n);

/* h2_chunks_dispose unmaps the pool; every stage using it must have been disposed. Safe on a
 * pool that was never initialised (zeroed). */
void h2_chunks_dispose(struct h2_chunks *c);

/* h2_chunks_reserve reserves `k` chunks for a window grant. Returns false (nothing reserved)
 * when the pool cannot back them. */
bool h2_chunks_reserve(struct h2_chunks *c, size_t k);

/* h2_chunks_unreserve gives back `k` reserved chunks. */
void h2_chunks_unreserve(struct h2_chunks *c, size_t k);

/* h2_chunks_for_window returns the chunks a stage must have reserved so that `win` bytes
 * always fit (beyond the fixed base): a chain may hold the whole window, misaligned. */
static inline size_t h2_chunks_for_window(size_t win)
{
    return (win + H2_CHUNK_PAYLOAD - 1) / H2_CHUNK_PAYLOAD + 1;
}

/* struct h2_stage is one direction's staging: body bytes received from the source session
 * and not yet taken by the sink session. Bytes go to `base` while the chain is empty, else to
 * the chain; they are read from `base` first, so the order is kept. */
struct h2_stage {
    struct buf base;         /* the slot's fixed bytes */
    struct h2_chunk *head, *tail;
    size_t chain_len;        /* bytes in the chain */
    uint32_t chain_chunks;   /* chunks in the chain */
    uint32_t win;            /* bytes the source may have staged or in flight: the stream's
                              * receive window (H2_STAGE_SIZE until it grows) */
    uint32_t resv;           /* chunks reserved for the chain (0 = base only) */
    uint32_t epoch_bytes;    /* worker/h2_window.c: bytes the sink took this epoch */
    bool epoch_wait;         /* the epoch starts at epoch_ns (a round trip after a growth) */
    uint64_t epoch_ns;       /* start of the epoch; 0 = the stream's head */
};

/* h2_stage_init points `s` at the slot's `cap` fixed bytes, with an empty chain and window
 * `cap`. */
void h2_stage_init(struct h2_stage *s, uint8_t *base, size_t cap);

/* h2_stage_used returns the staged bytes. */
static inline size_t h2_stage_used(const struct h2_stage *s)
{
    return buf_used(&s->base) + s->chain_len;
}

/* h2_stage_append stages `n` bytes: all of them or none. Returns 0, or -ENOSPC when they would
 * go beyond the window (a peer overran it: nghttp2 would have caught that, so not expected). */
int h2_stage_append(struct h2_stage *s, struct h2_chunks *c, const uint8_t *p, size_t n);

/* h2_stage_peek sets `*p` to the oldest staged bytes and returns how many are contiguous there
 * (0 when the stage is empty). Valid until the next append or consume. */
size_t h2_stage_peek(const struct h2_stage *s, const uint8_t **p);

/* h2_stage_consume drops the `n` oldest staged bytes (clamped to h2_stage_used); drained chunks
 * go back to `c`. */
void h2_stage_consume(struct h2_stage *s, struct h2_chunks *c, size_t n);

/* h2_stage_read copies up to `len` of the oldest staged bytes to `out` and consumes them.
 * Returns the bytes copied. */
size_t h2_stage_read(struct h2_stage *s, struct h2_chunks *c, uint8_t *out, size_t len);

/* h2_stage_dispose gives the chain's chunks and the stage's reservation back to `c` and
 * returns how many chunks were reserved (for the connection's own count). */
size_t h2_stage_dispose(struct h2_stage *s, struct h2_chunks *c);

#endif
