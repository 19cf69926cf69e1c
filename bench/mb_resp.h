/* mb_resp.h - incremental HTTP/1.1 response reader for mitmd-bench (head, then a
 * Content-Length, chunked or close-delimited body that is counted and discarded).
 * Owns only parse state; the caller owns the bytes. Never allocates and never copies body
 * bytes; a head must fit in the caller's receive buffer. */
#ifndef MITMD_BENCH_MB_RESP_H
#define MITMD_BENCH_MB_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest chunk-size line we accept (hex digits, extensions and CRLF). */
#define MB_RESP_MAX_CHUNK_LINE 1024

enum mb_resp_state {
    MB_RESP_STATE_HEAD = 0,     /* waiting for a complete status line and header block */
    MB_RESP_STATE_BODY_LENGTH,  /* discarding `remaining` Content-Length bytes */
    MB_RESP_STATE_CHUNK_SIZE,   /* waiting for a chunk-size line */
    MB_RESP_STATE_CHUNK_DATA,   /* discarding `remaining` chunk bytes */
    MB_RESP_STATE_CHUNK_CRLF,   /* waiting for the CRLF after chunk data */
    MB_RESP_STATE_TRAILERS,     /* waiting for the empty line ending the trailer section */
    MB_RESP_STATE_BODY_EOF,     /* discarding bytes until the peer closes */
    MB_RESP_STATE_DONE,         /* one complete response was read */
    MB_RESP_STATE_COUNT         /* must be last */
};

/* struct mb_resp is the state of reading one response. */
struct mb_resp {
    enum mb_resp_state state;
    bool head_only;         /* response to CONNECT or HEAD: never a body */
    int status;             /* status code, valid after the head */
    bool keep_alive;        /* false when the peer said Connection: close (or HTTP/1.0) */
    uint64_t remaining;     /* bytes left in the current Content-Length body or chunk */
    uint64_t body_bytes;    /* body bytes (chunk payload only) seen so far */
    size_t head_bytes;      /* size of the head, valid after the head */
};

/* mb_resp_init prepares `r` to read one response. `head_only` is true for the response to a
 * CONNECT (a 2xx carries no body, RFC 9110 §9.3.6) or a HEAD request. */
void mb_resp_init(struct mb_resp *r, bool head_only);

/* mb_resp_feed parses as much of `buf[0, len)` as it can. It returns the number of bytes
 * consumed (possibly 0 when the head or a chunk line is still incomplete: call again with
 * more bytes appended), or -EPROTO / -EMSGSIZE with `*why` set to a static string. It never
 * reads past `len`. Bytes after a complete response are not consumed; check
 * mb_resp_is_done. A head larger than the caller's buffer shows up as 0 consumed on a full
 * buffer; the caller reports that. */
ssize_t mb_resp_feed(struct mb_resp *r, const uint8_t *buf, size_t len, const char **why);

/* mb_resp_eof tells `r` that the peer closed the stream. Returns 0 when that completes a
 * close-delimited body, or -EPIPE with `*why` set when the response was cut short. */
int mb_resp_eof(struct mb_resp *r, const char **why);

/* mb_resp_is_done returns true once one complete response has been read. */
bool mb_resp_is_done(const struct mb_resp *r);

/* mb_resp_state_name returns a static name for `s`, for error messages. */
const char *mb_resp_state_name(enum mb_resp_state s);

#endif
