/* mb_resp.h - incremental reader of one HTTP/1.1 response for mitmd-bench: the head (parsed
 * by shared/h1_parse), then a Content-Length, chunked or close-delimited body that is
 * counted and discarded. Owns only the read state; the caller owns the bytes. Never
 * allocates and never copies body bytes; a head must fit in MB_RESP_HEAD_MAX. */
#ifndef MITMD_BENCH_MB_RESP_H
#define MITMD_BENCH_MB_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/h1_parse.h"

/* Largest response head accepted (also the size of a connection's receive buffer). */
#define MB_RESP_HEAD_MAX 8192

enum mb_resp_state {
    MB_RESP_STATE_HEAD = 0,     /* waiting for a complete status line and header block */
    MB_RESP_STATE_BODY_LENGTH,  /* discarding `remaining` Content-Length bytes */
    MB_RESP_STATE_BODY_CHUNKED, /* walking chunked framing, discarding chunk data */
    MB_RESP_STATE_BODY_EOF,     /* discarding bytes until the peer closes */
    MB_RESP_STATE_DONE,         /* one complete response was read */
    MB_RESP_STATE_COUNT         /* must be last */
};

/* struct mb_resp is the state of reading one response. */
struct mb_resp {
    enum mb_resp_state state;
    bool connect;        /* response to CONNECT: complete after the head */
    int status;          /* status code, valid after the head */
    bool keep_alive;     /* false when the connection cannot carry another request */
    uint64_t remaining;  /* bytes left in a Content-Length body */
    uint64_t body_bytes; /* payload bytes seen so far (chunk data only when chunked) */
    size_t head_bytes;   /* size of the final head, valid after the head */
    struct h1_chunk_decoder chunks;
};

/* mb_resp_init prepares `r` to read one response; `connect` is true for the answer to a
 * CONNECT, which is complete after its head (a 2xx starts the tunnel, RFC 9110 §9.3.6, and
 * anything else ends the attempt). */
void mb_resp_init(struct mb_resp *r, bool connect);

/* mb_resp_feed parses as much of `buf[0, len)` as it can. It returns the number of bytes
 * consumed (possibly 0 when the head is still incomplete: call again with more bytes
 * appended), or -EPROTO / -EMSGSIZE with `*why` set to a static string (malformed head or
 * framing, head over MB_RESP_HEAD_MAX). It never reads past `len`. Bytes after a complete
 * response are not consumed; check mb_resp_is_done. Interim 1xx responses are skipped. */
ssize_t mb_resp_feed(struct mb_resp *r, const uint8_t *buf, size_t len, const char **why);

/* mb_resp_eof tells `r` that the peer closed the stream. Returns 0 when that completes a
 * close-delimited body, or -EPIPE with `*why` set when the response was cut short. */
int mb_resp_eof(struct mb_resp *r, const char **why);

/* mb_resp_is_done returns true once one complete response has been read. */
bool mb_resp_is_done(const struct mb_resp *r);

/* mb_resp_state_name returns a static name for `s`, for error messages. */
const char *mb_resp_state_name(enum mb_resp_state s);

#endif
