/* h1_head.h - writes the HTTP/1.1 heads the relay forwards: request heads in origin-form
 * (RFC 9112 §3.2.1), response heads, both with CRLF line ends whatever the peer used, without
 * the hop-by-hop fields (RFC 9110 §7.6.1: Connection, Keep-Alive, Proxy-*, TE, Trailer,
 * Upgrade, and every field Connection names) and with mitmd's own Connection field for its
 * hop. Transfer-Encoding is kept: bodies are forwarded in the framing they came in. Writes
 * through a struct h1_emitter into a caller's buffer; no allocation, no I/O. */
#ifndef MITMD_WORKER_H1_HEAD_H
#define MITMD_WORKER_H1_HEAD_H

#include <stdbool.h>
#include <stddef.h>

#include "shared/buf.h"
#include "shared/h1_parse.h"
#include "shared/target_parse.h"
#include "worker/rules.h"

/* struct h1_emitter appends a virtual byte stream to `out`, skipping the first `skip` bytes
 * (written by an earlier call): a head is produced again on each call instead of being staged,
 * so it needs no memory beyond the output buffer. `written` counts bytes appended by this
 * call; `full` is set when `out` ran out of room (the rest is produced next time). */
struct h1_emitter {
    struct buf *out;
    size_t skip;
    size_t written;
    bool full;
};

/* enum h1_head_conn is what mitmd's Connection field says for the next hop. */
enum h1_head_conn {
    H1_HEAD_CONN_DEFAULT = 0, /* nothing: the version's default (HTTP/1.1 keep-alive) */
    H1_HEAD_CONN_CLOSE,       /* "Connection: close" */
    H1_HEAD_CONN_KEEP_ALIVE,  /* "Connection: keep-alive" (an HTTP/1.0 hop that keeps it) */
    H1_HEAD_CONN_UPGRADE,     /* "Connection: upgrade", and Upgrade is kept */
};

/* h1_head_request writes `req` for the upstream. `abs` is the parsed absolute-form target (its
 * path and query become the target), or NULL for an origin-form target that goes as sent.
 * `host_field` ("host[:port]"), when not NULL or "", replaces the Host field (absolute-form,
 * and a reverse proxy's server name); otherwise the client's Host goes as sent. */
void h1_head_request(struct h1_emitter *e, const struct h1_request *req, const struct target *abs,
                     const char *host_field, enum h1_head_conn conn,
                     const struct rules_verdict *edits);

/* h1_head_request_via writes `req` for upstream mode's next proxy: in absolute-form
 * ("http://" `authority` and the path and query of `abs`), Host set to `authority`, and
 * Proxy-Authorization: `proxy_auth` when not NULL or "" (the client's own never goes on). */
void h1_head_request_via(struct h1_emitter *e, const struct h1_request *req,
                         const struct target *abs, const char *authority, const char *proxy_auth,
                         enum h1_head_conn conn, const struct rules_verdict *edits);

/* h1_head_response writes the response head `resp` for the client. */
void h1_head_response(struct h1_emitter *e, const struct h1_response *resp, enum h1_head_conn conn,
                      const struct rules_verdict *edits);

/* In both, `edits` (NULL: none) are --modify-headers results: the fields it drops are left
 * out, then each edit with a value is appended. */

/* h1_head_field_is_forwarded returns whether a field of a head with these `headers` goes to
 * the next hop: false for the hop-by-hop fields and the fields named by Connection (except
 * Upgrade when `upgrade`; a name of 128 bytes or more is not looked for in Connection).
 * Transfer-Encoding is forwarded (an HTTP/2 hop drops it too: worker/h2_h1up.c). */
bool h1_head_field_is_forwarded(const struct h1_header *headers, size_t num_headers,
                                const struct h1_header *h, bool upgrade);

#endif
