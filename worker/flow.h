/* flow.h - the record of one HTTP exchange and its two text forms (console line, JSON Lines).
 * Owns struct flow and its fixed per-exchange arena. The connection's protocols set the
 * connection fields, the relays (HTTP/1.1, HTTP/2) and mitmd's own answers the exchange
 * fields; formatting writes into a caller buffer. Never allocates. */
#ifndef MITMD_WORKER_FLOW_H
#define MITMD_WORKER_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#define FLOW_ARENA_SIZE 8192      /* method, URL, versions, reason, header names and values */
#define FLOW_MAX_HEADERS 64       /* per message; more are dropped and set `truncated` */
#define FLOW_HOST_MAX 256         /* server_host, sni (NUL included) */
#define FLOW_ALPN_MAX 32
#define FLOW_TLS_VERSION_MAX 16
#define FLOW_CERT_NAME_MAX 256    /* cert_subject, cert_issuer (NUL included) */
#define FLOW_ERROR_MAX 256        /* error text (NUL included) */

/* struct flow_str names bytes [off, off + len) of the owning flow's arena; {0, 0} is "". */
struct flow_str {
    uint32_t off, len;
};

struct flow_header {
    struct flow_str name, value;
};

/* enum flow_side picks the request or the response message of a flow. */
enum flow_side { FLOW_REQUEST = 0, FLOW_RESPONSE };

/* struct flow is one exchange. Embed it in the connection; flow_init it once, then the relay
 * calls flow_begin for each exchange. Fields marked "loop" survive flow_begin; all others are
 * reset by it. Strings are bounded and silently truncated; arena overflow sets `truncated`. */
struct flow {
    /* loop: connection fields */
    struct sockaddr_storage client_addr; /* ss_family == 0: unknown */
    struct sockaddr_storage server_addr; /* ss_family == 0: not connected */
    char server_host[FLOW_HOST_MAX];     /* the name the upstream was reached by, "" unknown */
    char target_host[FLOW_HOST_MAX];     /* the target the client addressed, "" unknown: the
                                          * CONNECT / SOCKS / reverse target, the transparent
                                          * destination (mitmproxy's request.host); redials
                                          * (map_remote) do not change it */
    uint16_t target_port;                /* its port, 0 unknown */
    bool showhost;                       /* flow lines print the URL as recorded (the Host
                                          * field's authority), not the target's: --showhost */
    bool replay_request;                 /* client replay (-C) sent the requests: lines say
                                          * [replay] for the client, records "is_replay":
                                          * "request" (mitmproxy's) */
    bool tls;                            /* the client side is TLS (JSON "tls" is null if not) */
    char sni[FLOW_HOST_MAX];
    char alpn[FLOW_ALPN_MAX];
    char tls_version[FLOW_TLS_VERSION_MAX]; /* "TLSv1.3" */
    char cert_subject[FLOW_CERT_NAME_MAX];  /* upstream leaf, "CN=..." */
    char cert_issuer[FLOW_CERT_NAME_MAX];
    /* loop: upstream connect / TLS handshake durations in ns, -1 = not applicable. They are
     * reported by the next finished exchange only, then reset to -1 by flow_next (HAR: -1
     * for a reused connection). */
    int64_t connect_ns;
    int64_t tls_ns;
    uint32_t exchange_index;             /* 0 for the first exchange on this connection */
    const char *proxy_mode;              /* the listener's --mode spec ("socks5@1080"; static
                                          * for the worker's life), NULL unknown: mitmproxy's
                                          * client_conn.proxy_mode */
    bool proxy_mode_in_line;             /* also in the console line (several listeners) */
    /* loop: body capture for -w and HAR (--set save_bodies, worker/flow_body.h); NULL = off.
     * `body` is matched to the exchange by t_start and released by flow_body_release. */
    struct flow_body_cfg *bodies;
    struct flow_body *body;

    /* relay: exchange fields */
    struct timespec started;             /* CLOCK_REALTIME at the request's first byte */
    uint64_t t_start;                    /* CLOCK_MONOTONIC ns at the request's first byte */
    uint64_t t_request_sent;             /* request (head + body) handed to the upstream; 0 = not */
    uint64_t t_response_first;           /* first response byte seen; 0 = not */
    uint64_t t_done;                     /* exchange finished; 0 = not */
    struct flow_str method, url, req_version;
    bool url_from_host;                  /* url's authority came from the Host field or
                                          * :authority (not an absolute target, not the reverse
                                          * rewrite): flow lines show target_host instead unless
                                          * showhost, as mitmdump shows request.url */
    struct flow_str resp_version, reason;
    int status;                          /* 0 = no response at all */
    bool answered;                       /* the response was made by mitmd itself (an error) */
    bool replayed;                       /* the response came from -S's recording (mitmproxy's
                                          * is_replay "response"): lines say [replay] */
    uint64_t req_body_size;              /* body bytes, chunk framing excluded */
    uint64_t resp_body_size;
    struct flow_header req_headers[FLOW_MAX_HEADERS];
    struct flow_header resp_headers[FLOW_MAX_HEADERS];
    uint16_t n_req_headers, n_resp_headers;
    bool truncated;                      /* something did not fit the arena or header table */
    bool websocket;                      /* a WebSocket upgrade: the counts below are set */
    uint64_t ws_messages[2];             /* WebSocket data messages: [0] client to server,
                                          * [1] server to client */
    uint64_t ws_bytes[2];                /* their payload bytes, the same way */
    const char *rules_note;              /* static: what a rule did not do (modify_body on a
                                          * body over body_size_limit); NULL = nothing */
    char error[FLOW_ERROR_MAX];          /* "" = no error */
    uint32_t arena_used;
    char arena[FLOW_ARENA_SIZE];
};

/* flow_init clears every field of `f` (connection fields too); connect_ns and tls_ns become
 * -1. Never fails. */
void flow_init(struct flow *f);

/* flow_begin starts a new exchange on the same connection: it clears the exchange fields and
 * the arena and stamps `started` (CLOCK_REALTIME) and `t_start` (CLOCK_MONOTONIC). Connection
 * fields are kept. */
void flow_begin(struct flow *f);

/* flow_next is called after a finished exchange was reported: it increments exchange_index
 * and sets connect_ns and tls_ns to -1 so that later exchanges on the same upstream connection
 * report them as not applicable. */
void flow_next(struct flow *f);

/* flow_now_ns returns CLOCK_MONOTONIC in nanoseconds (never 0). */
uint64_t flow_now_ns(void);

/* flow_set_client copies the client's address (`len` bytes, at most sockaddr_storage). */
void flow_set_client(struct flow *f, const struct sockaddr *sa, socklen_t len);

/* flow_set_server records the upstream: the name it was reached by (`host`, may be NULL) and
 * its address (`sa` may be NULL when unknown). */
void flow_set_server(struct flow *f, const char *host, const struct sockaddr *sa, socklen_t len);

/* flow_set_target records the target the client addressed (`host` NULL: unknown; `port` 0:
 * unknown), which flow lines show unless showhost (see flow_format_line); it is also the
 * server (flow_set_server with no address) until a dial names one. */
void flow_set_target(struct flow *f, const char *host, uint16_t port);

/* flow_set_tls records the client-side TLS details and sets `tls`; NULL strings become "". */
void flow_set_tls(struct flow *f, const char *sni, const char *alpn, const char *version);

/* flow_set_cert records the upstream leaf certificate's subject and issuer (NULL = ""). */
void flow_set_cert(struct flow *f, const char *subject, const char *issuer);

/* flow_set_error copies `why` (truncated to FLOW_ERROR_MAX - 1 bytes) as the exchange's
 * error; the first error of an exchange wins, later calls are ignored. */
void flow_set_error(struct flow *f, const char *why);

/* FLOW_ANSWER_CTYPE is the content type of the answers mitmd makes itself (400, 502, ...). */
#define FLOW_ANSWER_CTYPE "text/plain; charset=utf-8"

/* flow_set_answer records an answer mitmd made itself: `status` and `reason`, HTTP/1.1, the
 * headers Content-Type FLOW_ANSWER_CTYPE, Content-Length `clen` and Connection: close, a
 * body of `body_len` bytes, and `error` as the exchange's error (flow_set_error). */
void flow_set_answer(struct flow *f, int status, const char *reason, const char *clen,
                     uint64_t body_len, const char *error);

/* flow_str_set copies `n` bytes of `p` into the arena and points `*dst` at them. If they do
 * not fit, copies what fits, sets `truncated` and returns -ENOSPC; otherwise returns 0. */
int flow_str_set(struct flow *f, struct flow_str *dst, const void *p, size_t n);

/* flow_add_header appends one header to the request or response table. Returns 0, or
 * -ENOSPC (table full or arena full: the header is dropped and `truncated` set). */
int flow_add_header(struct flow *f, enum flow_side side, const void *name, size_t name_len,
                    const void *value, size_t value_len);

/* flow_str_ptr returns the first byte of `s` inside `f`'s arena (not NUL-terminated). */
static inline const char *flow_str_ptr(const struct flow *f, struct flow_str s)
{
    return f->arena + s.off;
}

/* flow_format_size writes a mitmdump-like size ("512b", "1.2k", "10.0m", "3.0g") into `out`
 * (NUL-terminated). Returns the length, or -ENOSPC if `cap` is too small. */
ssize_t flow_format_size(uint64_t bytes, char *out, size_t cap);

/* flow_format_ws_message writes one console line for a WebSocket data message of the
 * exchange `f` (its upgrade request), as mitmdump prints them: "CLIENT -> WebSocket text
 * message -> URL SIZE\n" (<- for the server's). Returns the length, or -ENOSPC. */
ssize_t flow_format_ws_message(const struct flow *f, bool from_client, int opcode, uint64_t len,
                               char *buf, size_t cap);

/* flow_phases computes the send, wait and receive phases of `f` in ns (-1 when a phase did
 * not happen), as HAR defines them: wait starts when the request was sent, or at the start
 * when the response came first (an early or interim response). */
void flow_phases(const struct flow *f, int64_t *send, int64_t *wait, int64_t *receive);

/* flow_format_line writes the console line for `f`, ending in '\n' (no NUL):
 *   "127.0.0.1:54321: GET https://host/path HTTP/1.1 << 200 OK 1.2k 35ms"
 * with " error: <text>" appended when `error` is set, and "<< error: <text>" in place of the
 * status when there was no response. The URL is mitmdump's: with `url_from_host` and a known
 * target_host, the authority is the target's (target_host, target_port), unless `showhost`
 * (then the URL as recorded). Non-printable bytes are written as \xNN. Returns the
 * number of bytes written, or -ENOSPC (nothing usable written) if `cap` is too small. */
ssize_t flow_format_line(const struct flow *f, char *out, size_t cap);

/* FLOW_JSON_COMPACT_STR bounds each string of a compact JSON record (input bytes). */
#define FLOW_JSON_COMPACT_STR 256
/* FLOW_JSON_COMPACT_MAX is the most a compact JSON record takes: its 15 strings of at most
 * FLOW_JSON_COMPACT_STR bytes escaped to 6 bytes each (16 counted), plus the fixed fields. A
 * buffer of at least this size always receives a record. */
#define FLOW_JSON_COMPACT_MAX (16 * (FLOW_JSON_COMPACT_STR * 6 + 2) + 2048)

/* flow_format_json writes one JSON object (HAR entry field names, plus client/server/tls/
 * error) followed by '\n' (no NUL). Arbitrary header bytes are escaped: control characters
 * as \uXXXX, invalid UTF-8 bytes as U+FFFD. If the full record does not fit `cap`, a compact
 * one is written instead: no headers, each string cut to FLOW_JSON_COMPACT_STR bytes, and
 * "truncated": true; with cap >= FLOW_JSON_COMPACT_MAX that always fits. Returns bytes
 * written or -ENOSPC. */
ssize_t flow_format_json(const struct flow *f, char *out, size_t cap);

#endif
