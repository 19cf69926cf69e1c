/* buf.h - the one fixed-capacity byte buffer used for all I/O staging.
 * Owns nothing but the length arithmetic: storage is supplied by the caller (a pool slot,
 * a stack array) and never grows. Used by master and worker; never allocates. */
#ifndef MITMD_SHARED_BUF_H
#define MITMD_SHARED_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* struct buf holds bytes [off, len) of data[0, cap). Readers consume from off, writers
 * append at len. */
struct buf {
    uint8_t *data;
    size_t cap, len, off;
};

/* buf_init points `b` at caller-owned storage of `cap` bytes and empties it. */
static inline void buf_init(struct buf *b, uint8_t *storage, size_t cap)
{
    b->data = storage;
    b->cap = cap;
    b->len = 0;
    b->off = 0;
}

/* buf_used returns the number of unread bytes. */
static inline size_t buf_used(const struct buf *b)
{
    return b->len - b->off;
}

/* buf_head returns a pointer to the first unread byte. */
static inline uint8_t *buf_head(const struct buf *b)
{
    return b->data + b->off;
}

/* buf_tail returns where the next appended byte goes. */
static inline uint8_t *buf_tail(const struct buf *b)
{
    return b->data + b->len;
}

/* buf_compact moves unread bytes to the front so that all free space is at the tail. */
static inline void buf_compact(struct buf *b)
{
    if (b->off == 0)
        return;
    if (b->len > b->off)
        memmove(b->data, b->data + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
}

/* buf_room returns the free bytes at the tail, compacting first when that helps. */
static inline size_t buf_room(struct buf *b)
{
    if (b->off > 0 && b->len == b->cap)
        buf_compact(b);
    if (b->off == b->len) {
        b->off = 0;
        b->len = 0;
    }
    return b->cap - b->len;
}

/* buf_consume marks `n` unread bytes as read; `n` is clamped to buf_used. */
static inline void buf_consume(struct buf *b, size_t n)
{
    size_t used = buf_used(b);

    b->off += n < used ? n : used;
    if (b->off == b->len) {
        b->off = 0;
        b->len = 0;
    }
}

/* buf_commit records that `n` bytes were written at buf_tail (after a recv into it);
 * `n` is clamped to the room at the tail. */
static inline void buf_commit(struct buf *b, size_t n)
{
    size_t room = b->cap - b->len;

    b->len += n < room ? n : room;
}

/* buf_append copies as much of `src` as fits and returns the number of bytes copied. */
static inline size_t buf_append(struct buf *b, const void *src, size_t n)
{
    size_t room = buf_room(b);

    if (n > room)
        n = room;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return n;
}

#endif
