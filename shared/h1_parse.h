/* h1_parse.h - strict, zero-copy HTTP/1.x head parser, body framing rules and chunked decoder.
 * Owns the HTTP/1.x grammar (RFC 9112) and its request-smuggling defences; callers (worker
 * proxy_req, h1_relay) get pointers into their own buffers. Never allocates, never blocks,
 * never copies header bytes, keeps no global state. */
#ifndef MITMD_SHARED_H1_PARSE_H
#define MITMD_SHARED_H1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* H1_MAX_HEADERS is the most header fields a head may carry; one more is -EMSGSIZE with
 * `*why` "too many headers" (h2o H2O_MAX_HEADERS). */
#define H1_MAX_HEADERS 100
/* H1_HEAD_MAX_DEFAULT is the default limit on a whole head (start line, fields, final CRLF). */
#define H1_HEAD_MAX_DEFAULT (64 * 1024)
/* H1_REQUEST_LINE_MAX bounds the request line (without its CRLF): longer is a 414. */
#define H1_REQUEST_LINE_MAX (8 * 1024)
/* H1_CHUNK_LINE_MAX bounds one chunk-size line including its extensions (without CRLF). */
#define H1_CHUNK_LINE_MAX 4096

/* Line endings: a line of a request or response head ends in CRLF or in a lone LF (RFC 9112
 * §2.2 lets a recipient accept LF; testssl.sh and netcat users send it). A bare CR (not
 * followed by LF) anywhere in a head is malformed (-EPROTO); chunked framing stays strict
 * (CRLF only). The parser gives slices (method, target, version, status, reason, each
 * header's name and value) and never the line ends, so a relay that re-serialises a head
 * from them emits CRLF; one that forwards the head's raw bytes forwards the LFs too. Empty
 * lines (CRLF or LF) before a request line are skipped, as RFC 9112 §2.2 asks of servers;
 * they count toward the head limit and are part of the bytes consumed. Responses get no such
 * leniency. */

/* struct h1_header is one field line; both slices point into the parsed buffer. The name
 * keeps its case; the value has leading and trailing whitespace removed. */
struct h1_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* enum h1_err refines a failed parse so that the caller can pick the status to answer
 * (h1_err_status). It is H1_ERR_NONE after success and after -EAGAIN. */
enum h1_err {
    H1_ERR_NONE = 0,
    H1_ERR_MALFORMED,        /* -EPROTO: 400 (request) / 502 (response) */
    H1_ERR_URI_TOO_LONG,     /* -EMSGSIZE: request line over H1_REQUEST_LINE_MAX: 414 */
    H1_ERR_TOO_LARGE,        /* -EMSGSIZE: head over the caller's limit: 431 */
    H1_ERR_TOO_MANY_HEADERS, /* -EMSGSIZE: more than the header array holds: 431 */
    H1_ERR_NOT_IMPLEMENTED,  /* -EPROTO: request transfer coding we do not relay: 501 */
    H1_ERR_VERSION,          /* -EPROTO: HTTP/x.y other than 1.0 and 1.1: 505 */
    H1_ERR_COUNT             /* must be last */
};

/* h1_err_status returns the HTTP status a server answers a request parse error `e` with
 * (400, 414, 431, 501, 505), or 0 for H1_ERR_NONE. Errors in an upstream response are
 * answered 502 by the relay whatever `e` is. */
int h1_err_status(enum h1_err e);

/* h1_status_reason returns the standard reason phrase of `status` ("Bad Gateway"), or
 * "Unknown" for a code without one. Static storage; for the answers a proxy generates. */
const char *h1_status_reason(int status);

/* h1_err_name returns a static, lower-case name for `e` (for logs and flow records). */
const char *h1_err_name(enum h1_err e);

/* struct h1_framing is what the head says about the message body and the connection. */
struct h1_framing {
    int64_t content_length; /* Content-Length value, or -1 when absent */
    bool chunked;           /* Transfer-Encoding ends in "chunked" */
    bool has_te;            /* a Transfer-Encoding field was present (any value) */
    bool conn_close;        /* the Connection field lists "close" */
    bool keep_alive;        /* the connection may persist after this message: HTTP/1.1
                             * without "close", or HTTP/1.0 with "keep-alive"; false for a
                             * response whose Transfer-Encoding does not end in chunked.
                             * A body of kind H1_BODY_CLOSE always ends the connection. */
    bool expect_continue;   /* request: Expect: 100-continue (HTTP/1.1 only) */
    bool upgrade;           /* Connection lists "upgrade" and an Upgrade field is present */
    bool websocket;         /* the Upgrade field lists "websocket" (with `upgrade`) */
};

/* struct h1_request is a parsed request head; every slice points into the parsed buffer and
 * is valid while it is. */
struct h1_request {
    const char *method;
    size_t method_len;
    const char *target; /* request-target as sent; see target_parse.h */
    size_t target_len;
    int minor_version;         /* 0 or 1 */
    struct h1_header *headers; /* the caller's array */
    size_t num_headers;
    const char *host; /* value of the Host field, or NULL when absent */
    size_t host_len;
    struct h1_framing framing;
    bool bare_lf;    /* a line of the head (not a skipped empty line) ended in a lone LF:
                      * rebuild the head from the slices with CRLF before forwarding it */
    enum h1_err err; /* why a parse failed; H1_ERR_NONE otherwise */
};

/* struct h1_response is a parsed response head, like struct h1_request. */
struct h1_response {
    int minor_version;
    int status;         /* 100..999 */
    const char *reason; /* may be empty */
    size_t reason_len;
    struct h1_header *headers;
    size_t num_headers;
    struct h1_framing framing;
    bool bare_lf; /* a line of the head ended in a lone LF (see struct h1_request) */
    enum h1_err err;
};

/* h1_parse_request parses one HTTP/1.x request head at the start of `buf`. It fills `req`
 * with slices of `buf` (no copy, no allocation; valid while `buf` is) and stores at most
 * `max_headers` (usually H1_MAX_HEADERS) fields in the caller's `headers` array. `max_head`
 * limits the head in bytes (0 means H1_HEAD_MAX_DEFAULT); the limit is enforced on
 * incomplete input too, so a peer cannot make the caller buffer more than `max_head` bytes.
 * Returns the number of bytes of the head (the body, if any, starts there), -EAGAIN if the
 * head is incomplete, -EPROTO if it is malformed or unsafe to relay (smuggling defences:
 * Content-Length with Transfer-Encoding, conflicting or invalid Content-Length, a transfer
 * coding list not ending in a single "chunked", obs-fold, bare CR, control characters,
 * whitespace before a colon, several Host fields, no Host in HTTP/1.1 except on CONNECT),
 * or -EMSGSIZE if a limit was hit. On failure `*why` is a static string and `req->err` says
 * which status to answer. */
ssize_t h1_parse_request(const uint8_t *buf, size_t len, size_t max_head, struct h1_request *req,
                         struct h1_header *headers, size_t max_headers, const char **why);

/* h1_parse_response parses one HTTP/1.x response head at the start of `buf`, with the same
 * limits, returns and ownership as h1_parse_request. A Transfer-Encoding whose final coding
 * is not "chunked" makes the body close-delimited (RFC 9112 §6.3 item 4); Content-Length
 * together with Transfer-Encoding is rejected as in requests. */
ssize_t h1_parse_response(const uint8_t *buf, size_t len, size_t max_head, struct h1_response *resp,
                          struct h1_header *headers, size_t max_headers, const char **why);

/* enum h1_body says how a message body is delimited (RFC 9112 §6.3). */
enum h1_body {
    H1_BODY_NONE = 0, /* no body: the next message starts right after the head */
    H1_BODY_LENGTH,   /* exactly framing.content_length bytes */
    H1_BODY_CHUNKED,  /* chunked coding: feed the bytes to a struct h1_chunk_decoder */
    H1_BODY_CLOSE,    /* response only: until the server closes the connection */
    H1_BODY_TUNNEL,   /* response only: 101, or 2xx to CONNECT; both sides become a tunnel */
};

/* h1_body_name returns a static name for `b`. */
const char *h1_body_name(enum h1_body b);

/* h1_request_body returns how the body of the parsed request `req` is delimited: chunked,
 * Content-Length (when > 0), or none (no framing field, or Content-Length: 0; a request is
 * never close-delimited). */
enum h1_body h1_request_body(const struct h1_request *req);

/* h1_response_body returns how the body of `resp` is delimited, given the method of the
 * request it answers: none for HEAD and for 1xx (except 101), 204 and 304; tunnel for 101
 * and for 2xx to CONNECT; else chunked, Content-Length (none when it is 0), or
 * close-delimited. */
enum h1_body h1_response_body(const char *req_method, size_t req_method_len,
                              const struct h1_response *resp);

/* h1_method_is returns whether the method slice equals `name` (case-sensitive, as methods
 * are, RFC 9110 §9.1). Inline so that the length of a literal `name` is known when compiled:
 * the relays call it and h1_header_name_is for every request and field. */
static inline bool h1_method_is(const char *method, size_t method_len, const char *name)
{
    size_t n = __builtin_strlen(name);

    return method_len == n && __builtin_memcmp(method, name, n) == 0;
}

/* h1_name_ieq returns whether the `a_len` bytes at `a` equal the `b_len` bytes at `b`,
 * ignoring ASCII case. */
bool h1_name_ieq(const char *a, size_t a_len, const char *b, size_t b_len);

/* h1_header_name_is returns whether `h`'s name equals `name`, ignoring ASCII case. */
static inline bool h1_header_name_is(const struct h1_header *h, const char *name)
{
    return h1_name_ieq(h->name, h->name_len, name, __builtin_strlen(name));
}

/* h1_header_find returns the index of the first field at or after `from` named `name`
 * (ASCII case-insensitive), or -1. */
ssize_t h1_header_find(const struct h1_header *headers, size_t num_headers, const char *name,
                       size_t from);

/* h1_header_is_hop_by_hop returns whether a field of this name applies only to one
 * connection (Connection, Keep-Alive, Proxy-Connection, Proxy-Authenticate,
 * Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade; RFC 9110 §7.6.1), so a
 * proxy must not forward it blindly. Fields named by Connection are hop-by-hop too; see
 * h1_token_list_has. */
bool h1_header_is_hop_by_hop(const char *name, size_t name_len);

/* h1_token_list_has returns whether the comma-separated list `value` (a field value such as
 * Connection's) contains `token`, ignoring ASCII case and optional whitespace. */
bool h1_token_list_has(const char *value, size_t value_len, const char *token);

/* ---- chunked transfer coding (RFC 9112 §7.1) ---------------------------------------- */

enum h1_chunk_state {
    H1_CHUNK_SIZE_START = 0, /* expecting the first hex digit of a chunk size */
    H1_CHUNK_SIZE,           /* in the hex digits */
    H1_CHUNK_SIZE_WS,        /* whitespace after the size: only ';' may follow */
    H1_CHUNK_EXT,            /* in chunk extensions, up to CR */
    H1_CHUNK_SIZE_LF,        /* saw CR after the size line */
    H1_CHUNK_DATA,           /* in chunk-data */
    H1_CHUNK_DATA_CR,        /* expecting CR after chunk-data */
    H1_CHUNK_DATA_LF,        /* expecting LF after chunk-data */
    H1_CHUNK_TRAILER_START,  /* at the start of a trailer line (or the final CRLF) */
    H1_CHUNK_TRAILER_NAME,
    H1_CHUNK_TRAILER_VALUE,
    H1_CHUNK_TRAILER_LF, /* saw CR ending a trailer field line */
    H1_CHUNK_END_LF,     /* saw CR of the final empty line */
    H1_CHUNK_DONE,       /* the body has ended; further bytes belong to the next message */
    H1_CHUNK_ERROR,      /* sticky: the stream is malformed */
    H1_CHUNK_STATE_COUNT /* must be last */
};

/* struct h1_chunk_decoder walks the chunked framing of one body incrementally. Embed it and
 * set it up with h1_chunk_decoder_init; it holds no pointer and needs no disposal. Fields
 * start with '_' : read them through the functions below. */
struct h1_chunk_decoder {
    enum h1_chunk_state _state;
    uint64_t _remaining;     /* chunk-data bytes left in the current chunk */
    uint64_t _payload_total; /* chunk-data bytes seen in the whole body */
    size_t _line_len;        /* bytes of the current size line */
    size_t _trailer_len;     /* bytes of the trailer section so far */
    size_t _max_trailer;
    const char *_why; /* reason for H1_CHUNK_ERROR */
    int _err;         /* -EPROTO or -EMSGSIZE in H1_CHUNK_ERROR */
};

/* h1_chunk_decoder_init prepares `d` for a new body. `max_trailer` limits the trailer
 * section in bytes, final CRLF included (0 means H1_HEAD_MAX_DEFAULT). */
void h1_chunk_decoder_init(struct h1_chunk_decoder *d, size_t max_trailer);

/* h1_chunk_decode consumes bytes of a chunked body from `buf`: framing, and at most one run
 * of chunk-data, which it reports as `buf[*data_off, *data_off + *data_len)` (*data_len is 0
 * when the consumed bytes were all framing). Returns the number of bytes consumed, which is
 * less than `len` when it stopped after a data run (call again with the rest) or when the
 * body ended (h1_chunk_decoder_is_done; the rest belongs to the next message). Returns
 * -EPROTO with `*why` set if the framing is malformed (non-hex or empty size, size over
 * 2^63-1, bare CR/LF, control characters, overlong size line) and -EMSGSIZE if the trailer
 * section exceeds its limit; the decoder then stays in error. Never allocates or copies. */
ssize_t h1_chunk_decode(struct h1_chunk_decoder *d, const uint8_t *buf, size_t len,
                        size_t *data_off, size_t *data_len, const char **why);

/* h1_chunk_decode_all calls h1_chunk_decode until `buf` is used up or the body ends, and
 * adds the chunk-data bytes seen to `*payload` (not reset). Returns bytes consumed or a
 * negative errno as h1_chunk_decode does. */
ssize_t h1_chunk_decode_all(struct h1_chunk_decoder *d, const uint8_t *buf, size_t len,
                            uint64_t *payload, const char **why);

/* h1_chunk_decoder_is_done returns whether the final chunk and trailer section were read. */
bool h1_chunk_decoder_is_done(const struct h1_chunk_decoder *d);

/* h1_chunk_decoder_payload returns the chunk-data bytes seen so far in this body. */
uint64_t h1_chunk_decoder_payload(const struct h1_chunk_decoder *d);

#endif
