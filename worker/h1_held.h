/* h1_held.h - a request body an HTTP/1.1 exchange holds for server replay's key, when it does
 * not fit the client buffer or is chunked: its raw bytes (framing included) are taken out of
 * the client buffer as they arrive (a chunked body is decoded once, incrementally, only to find
 * its end), up to REPLAY_BODY_MAX of payload per body and H1_HELD_BYTES_MAX per worker. Once
 * complete the body is keyed; forwarded, the held bytes go upstream first (h1_held_src), then
 * the client buffer again. Owns the malloc'd bytes; used by worker/h1_req.c, h1_answer.c and
 * h1_modbody.c. */
#ifndef MITMD_WORKER_H1_HELD_H
#define MITMD_WORKER_H1_HELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/buf.h"
#include "shared/h1_parse.h"

/* H1_HELD_BYTES_MAX: raw request-body bytes one worker holds at once over all its HTTP/1.1
 * connections; a body that would go beyond is not held (server_replay_extra, as a body that
 * cannot be keyed), so the memory does not grow with the number of connections. */
#define H1_HELD_BYTES_MAX ((size_t)64 << 20)

enum h1_held_state {
    H1_HELD_OFF = 0, /* nothing held */
    H1_HELD_TAKING,  /* taking the body's bytes as they arrive */
    H1_HELD_WHOLE,   /* the whole body is held */
    H1_HELD_FAILED,  /* cannot be keyed (too large, over the worker's bound, malformed framing,
                      * the client's EOF): what was taken is still forwarded first */
};

/* struct h1_held is one exchange's held request body, malloc'd by h1_held_take (NULL: none). */
struct h1_held {
    enum h1_held_state state;
    bool chunked;
    uint8_t *p;                 /* malloc'd raw bytes */
    size_t len, cap;            /* held, allocated */
    uint64_t left;              /* Content-Length: bytes still to take */
    uint64_t payload;           /* chunked: payload bytes seen */
    struct h1_chunk_decoder dec;/* chunked: finds the body's end */
    struct buf src;             /* over p[0, len): what h1_held_src hands the sender */
    bool src_on;                /* src was set up (forwarding) */
};

/* h1_held_wanted returns whether server replay must hold the body of `req` (head of
 * `head_len` bytes at the front of `in`) rather than wait for it in `in`: a chunked body, or a
 * Content-Length body that cannot fit `in`. */
bool h1_held_wanted(const struct h1_request *req, const struct buf *in, size_t head_len);

/* h1_held_take moves the body bytes that arrived after the head (`head_len` bytes at the front
 * of `in`) into `h`, up to the body's end: bytes after it (a pipelined request) stay in `in`
 * behind the head. The first call starts holding for `req`. Returns 1 when the whole body is
 * held, 0 when more must arrive (or `eof`: the client ended it early, then -1), -1 when it
 * cannot be keyed (see H1_HELD_FAILED; the reason in `*why`). The first call allocates `*hp`
 * (out of memory: -1 with `*hp` NULL). */
int h1_held_take(struct h1_held **hp, const struct h1_request *req, struct buf *in,
                 size_t head_len, bool eof, const char **why);

/* h1_held_state returns the state of `h` (H1_HELD_OFF for NULL). */
enum h1_held_state h1_held_state(const struct h1_held *h);

/* h1_held_src returns the held bytes as a buffer to send the body from (the sender consumes
 * it), or NULL when none are left (or `h` is NULL): the rest of the body is then in the client
 * buffer. */
struct buf *h1_held_src(struct h1_held *h);

/* h1_held_free gives the bytes and `*hp` back and sets it NULL; NULL is a no-op. */
void h1_held_free(struct h1_held **hp);

/* h1_held_worker_bytes returns the raw bytes this worker holds now. */
size_t h1_held_worker_bytes(void);

#endif
