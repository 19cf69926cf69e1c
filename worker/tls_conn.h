/* tls_conn.h - one TLS connection (either leg of an intercepted connection) over bounded
 * in-memory ciphertext staging: the caller feeds received ciphertext in and takes
 * ciphertext to send out; io_uring does all socket I/O. Owns the SSL, its staging, the
 * ClientHello pause and the mapping of every BoringSSL error to -errno plus a human reason
 * (tls_conn_classify, the only caller of SSL_get_error). Never touches a socket, never
 * blocks; allocates only in tls_conn_init_* (and inside BoringSSL while handshaking).
 *
 * Typical use, client leg (server role):
 *     tls_conn_init_server(c, ctx); loop { feed; tls_conn_handshake } until -EINPROGRESS;
 *     read tls_conn_sni / tls_conn_alpn_offers, connect upstream, get the forged leaf,
 *     tls_conn_set_chain + tls_conn_set_alpn_choice; loop { tls_conn_handshake; take; feed }
 *     until 0; then tls_conn_read / tls_conn_write.
 * Upstream leg (client role): tls_conn_init_client_addr(...) then the same handshake loop (it
 * never returns -EINPROGRESS); tls_conn_peer_names gives the names for the forged leaf
 * (from the resumed session's certificate when the handshake was resumed).
 * After every call, take the pending ciphertext (tls_conn_pending/tls_conn_take) and send
 * it: output is bounded, and write/handshake return -EAGAIN while the staging is full. */
#ifndef MITMD_WORKER_TLS_CONN_H
#define MITMD_WORKER_TLS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/base.h>

#include "shared/buf.h"
#include "worker/tls_ctx.h"

/* TLS_CONN_IN_CAP is the inbound ciphertext staging: one largest TLS record (RFC 8446
 * §5.2: 2^14 + 256 + header) fits, so one feed is enough for one record. */
#define TLS_CONN_IN_CAP 17408
/* TLS_CONN_OUT_CAP is the outbound ciphertext staging. tls_conn_write encrypts only while
 * a whole record fits, so ciphertext never piles up beyond this (plus a handshake flight
 * held inside BoringSSL until there is room). */
#define TLS_CONN_OUT_CAP 17408
/* TLS_CONN_NAME_MAX holds one DNS name or IP text plus NUL (= MSG_MAX_NAME_LEN + 1). */
#define TLS_CONN_NAME_MAX 254
/* TLS_CONN_WHY_MAX bounds the composed human reason ("tls handshake failed: ..."). */
#define TLS_CONN_WHY_MAX 160

enum tls_conn_role {
    TLS_CONN_ROLE_NONE = 0,
    TLS_CONN_ROLE_SERVER, /* toward the client: mitmd presents the forged chain */
    TLS_CONN_ROLE_CLIENT, /* toward the upstream: mitmd verifies the real chain */
};

enum tls_conn_state {
    TLS_CONN_STATE_HANDSHAKE = 0, /* handshaking, needs more input or output room */
    TLS_CONN_STATE_PAUSED,        /* server: ClientHello read, waiting for tls_conn_set_chain */
    TLS_CONN_STATE_OPEN,          /* handshake done: read/write */
    TLS_CONN_STATE_CLOSED,        /* close_notify or EOF received; writes may still go out */
    TLS_CONN_STATE_FAILED,        /* fatal error; only tls_conn_take and _dispose are useful */
    TLS_CONN_STATE_COUNT
};

/* struct tls_conn is embedded in struct conn (two per intercepted connection). All fields
 * are private; use the accessors below. A zeroed struct may be passed to _dispose. */
struct tls_conn {
    SSL *_ssl;
    struct tls_ctx *_ctx;
    BIO *_bio;            /* one staging BIO, read side = _in, write side = _out */
    uint8_t *_mem;        /* storage of _in and _out (one allocation), or NULL */
    struct buf _in, _out; /* own staging: ciphertext fed-but-unread, produced-but-untaken */
    struct buf *_ib, *_ob; /* the staging in use: &_in/&_out, or the caller's (set_io) */
    struct buf *_ext_in, *_ext_out; /* tls_conn_set_io's buffers, kept across inits */
    const bool *_ext_pinned;        /* true while _ext_out's head is being sent */
    bool _in_eof;         /* tls_conn_feed_eof was called */
    bool _chain_set;      /* server: tls_conn_set_chain done, let the callback pass */
    bool _clean_close;    /* close_notify received (vs. bare EOF) */
    bool _rd_starved;     /* SSL_read wanted input and none was fed since (skip the call) */
    bool _user_chain;     /* server: serving an operator's --certs chain, not a forged one */
    bool _client_cert;    /* client: a client_certs certificate is set for this upstream */
    size_t _wpend;        /* plaintext length of an SSL_write that must be retried */
    enum tls_conn_role _role;
    enum tls_conn_state _state;
    char _sni[TLS_CONN_NAME_MAX];          /* server: client's SNI ("" = none) */
    uint8_t _alpn_offer[TLS_CTX_ALPN_MAX]; /* server: client's ALPN list, wire format */
    size_t _alpn_offer_len;
    char _alpn_choice[TLS_CTX_ALPN_MAX];  /* server: protocol to select ("" = none) */
    struct tls_sess_link _sess;           /* client: its upstream sessions (tls_sess.h) */
    char _why[TLS_CONN_WHY_MAX];          /* last composed reason */
};

/* tls_conn_init_server prepares `c` to accept one TLS connection from a client with the
 * server context of `t`. Returns 0 or -ENOMEM. `t` must outlive `c`. Allocates (the SSL and,
 * unless tls_conn_set_staging gave storage, the staging, ~35 KiB). `c` is zeroed before its
 * first init (it keeps only tls_conn_set_io's buffers across inits). On failure `c` needs no dispose
 * (but it is safe). The same holds for the client inits below. */
int tls_conn_init_server(struct tls_conn *c, struct tls_ctx *t);

/* tls_conn_init_client_addr prepares `c` to connect to an upstream with the client context
 * of `t`. `sni` is sent as server_name (NULL, "" or an IP literal = none, RFC 6066 §3).
 * `verify_host` is the name or IP literal (IPv6 with or without brackets) the certificate
 * must match; NULL = `sni`. Unless `t` is insecure, a verify_host is required (-EINVAL
 * otherwise). `alpn`/`alpn_len` is the client's own offer (wire format, e.g. from
 * tls_conn_alpn_offers of the client leg); it is reduced to what `t` allows and offered
 * upstream (nothing when nothing remains). `dst`/`dstlen` is the address the upstream
 * socket is connected to (AF_INET or AF_INET6; NULL = unknown): it is part of the session
 * keys, so a session from one address is never offered to another. A cached session for
 * (verify_host, port, SNI, dst) is offered for resumption; when there is none, verification
 * is on (not -k) and `sni` == verify_host = "<one label>.D" (a DNS name with at least two
 * labels in D), a session filed under the wildcard key of D at the same port and address
 * is offered instead if its leaf certificate is valid for verify_host (tls_sess.h). The
 * forged leaf's names still come from that certificate (tls_conn_peer_names) plus the
 * client's SNI, which the caller adds. A verify_host or `sni` containing '*' is never
 * cached nor looked up. Returns 0, -EINVAL (bad argument, including a `dst` of another
 * family or too short for its family) or -ENOMEM. Allocates. */
int tls_conn_init_client_addr(struct tls_conn *c, struct tls_ctx *t, const char *sni,
                              const char *verify_host, uint16_t port, const uint8_t *alpn,
                              size_t alpn_len, const struct sockaddr *dst, socklen_t dstlen);

/* tls_conn_init_client is tls_conn_init_client_addr with an unknown address (dst = NULL):
 * its sessions are keyed apart from every session keyed with an address. Kept for callers
 * that do not know the connected address. */
int tls_conn_init_client(struct tls_conn *c, struct tls_ctx *t, const char *sni,
                         const char *verify_host, uint16_t port, const uint8_t *alpn,
                         size_t alpn_len);

/* tls_conn_dispose frees the SSL and the staging. Safe on a zeroed or disposed struct. */
void tls_conn_dispose(struct tls_conn *c);

/* tls_conn_feed copies up to `n` bytes of received ciphertext into the inbound staging and
 * returns how many it took (0 when the staging is full: call tls_conn_handshake or
 * tls_conn_read to drain it, then feed the rest). Never fails, never allocates. */
size_t tls_conn_feed(struct tls_conn *c, const uint8_t *p, size_t n);

/* tls_conn_feed_eof records that the peer closed its side (recv returned 0). Once the
 * staged input is used up, the handshake fails with "connection closed during TLS
 * handshake" and tls_conn_read returns 0. */
void tls_conn_feed_eof(struct tls_conn *c);

/* TLS_CONN_STAGING_SIZE is the own staging allocated per init without tls_conn_set_io. */
#define TLS_CONN_STAGING_SIZE (TLS_CONN_IN_CAP + TLS_CONN_OUT_CAP)

/* tls_conn_set_io makes the caller's buffers the ciphertext staging of `c` (zeroed, or
 * disposed), kept across later _init/_dispose cycles, instead of an allocation per init: the
 * BIO reads received ciphertext straight from `in` (consuming it) and appends records straight
 * to `out`, so nothing is fed or taken (tls_conn_feed, _take and _in_room return 0,
 * tls_conn_pending 0, tls_conn_is_quiet true: the caller sees its buffers). While `*out_pinned`
 * (may be NULL) is true, `out` is never compacted: its head is being sent. `in` must hold a
 * whole record (TLS_CONN_IN_CAP) and `out` at least TLS_CONN_OUT_CAP. The connection pool's
 * legs use their socket buffers this way (two copies less per byte each way). */
void tls_conn_set_io(struct tls_conn *c, struct buf *in, struct buf *out, const bool *out_pinned);

/* tls_conn_is_quiet returns whether no ciphertext is staged in either direction (the staging
 * may then lose its contents: the connection pool's trim). */
bool tls_conn_is_quiet(const struct tls_conn *c);

/* tls_conn_in_room returns how many bytes tls_conn_feed would take now. */
size_t tls_conn_in_room(struct tls_conn *c);

/* tls_conn_pending returns the number of ciphertext bytes waiting to be sent. */
size_t tls_conn_pending(const struct tls_conn *c);

/* tls_conn_take moves up to `cap` bytes of pending ciphertext into `out` and returns how
 * many (0 = nothing pending). The caller sends them in order. Never fails. */
size_t tls_conn_take(struct tls_conn *c, uint8_t *out, size_t cap);

/* tls_conn_handshake advances the handshake with the staged input. Returns:
 *   0            handshake complete (also on later calls);
 *   -EAGAIN      needs more input, or output room (take the pending ciphertext first);
 *   -EINPROGRESS (server only) the ClientHello has been read: SNI and ALPN offers are
 *                available; call tls_conn_set_chain (and tls_conn_set_alpn_choice), then
 *                call tls_conn_handshake again;
 *   -EPROTO      fatal: `*why` = "certificate verify failed: <reason>", "tls handshake
 *                failed: <reason>" or "connection closed during TLS handshake". Pending
 *                output (an alert) may still be taken and sent.
 * `*why` (may be NULL) points into `c` or to a static string; valid until the next call on
 * `c`. Never blocks. */
int tls_conn_handshake(struct tls_conn *c, const char **why);

/* tls_conn_set_chain sets the chain served to the client: `leaf_der` (copied; identical
 * DERs are shared through the context's pool) followed by the context's CA, with the
 * context's leaf key. Call it while tls_conn_handshake returns -EINPROGRESS (server role).
 * Returns 0, -EINVAL (wrong role/state or empty DER), -ENOMEM, or -EPROTO when BoringSSL
 * rejects the chain (e.g. the leaf does not match the key). */
int tls_conn_set_chain(struct tls_conn *c, const uint8_t *leaf_der, size_t leaf_len);

#define TLS_CONN_EXTRA_MAX 8 /* upstream certificates appended to a forged chain */

/* tls_conn_set_chain_extra is tls_conn_set_chain with the certificates `peer` (a client-role
 * connection whose handshake completed; NULL: none) received from its server appended after
 * the CA, at most TLS_CONN_EXTRA_MAX: mitmproxy's add_upstream_certs_to_client_chain. A peer
 * without certificates adds nothing. Same returns. */
int tls_conn_set_chain_extra(struct tls_conn *c, const uint8_t *leaf_der, size_t leaf_len,
                             const struct tls_conn *peer);

/* tls_conn_set_user_chain serves, instead of a forged chain, the operator's --certs entry
 * (tls_ctx certs, certcache/certstore.h) matching the client's SNI, else the first of
 * `names[0..n)` that one matches (the names the forged certificate would carry). Only valid
 * while paused (after -EINPROGRESS), like tls_conn_set_chain. Returns 0 (set: call
 * tls_conn_handshake again), -ENOENT (no entry matches: forge as usual), -EINVAL (not paused)
 * or -EPROTO. Never allocates. */
int tls_conn_set_user_chain(struct tls_conn *c, const char *const *names, size_t n);

/* tls_conn_is_user_chain is true when tls_conn_set_user_chain installed an operator's chain. */
bool tls_conn_is_user_chain(const struct tls_conn *c);

/* tls_conn_is_client_cert_set is true when the client role has a client_certs certificate to
 * present (whether or not the upstream asked for one). */
bool tls_conn_is_client_cert_set(const struct tls_conn *c);

/* tls_conn_set_alpn_choice sets the protocol to select for the client (the one the
 * upstream negotiated); NULL or "" = none (HTTP/1.1 without ALPN). It is selected only if
 * the client offered it. Call before resuming the handshake. Names longer than
 * TLS_CTX_ALPN_MAX - 1 are ignored (= none). */
void tls_conn_set_alpn_choice(struct tls_conn *c, const char *proto);

/* tls_conn_read decrypts into `out` (capacity `cap` > 0). Returns bytes > 0; 0 when the
 * peer closed (close_notify or EOF: see tls_conn_is_clean_close); -EAGAIN when more input
 * is needed (or output room: post-handshake messages may need to answer); -EPROTO with
 * `*why` on a fatal error; -EINVAL before the handshake is complete. Processes
 * post-handshake messages (session tickets: BoringSSL servers send them with their first
 * write, so a client files its upstream session while reading the first response).
 * Cheap when nothing can be read: after an -EAGAIN for want of input, it returns -EAGAIN
 * without calling SSL_read until tls_conn_feed takes bytes or tls_conn_feed_eof is called
 * (and BoringSSL holds no buffered plaintext or record). */
ssize_t tls_conn_read(struct tls_conn *c, uint8_t *out, size_t cap, const char **why);

/* tls_conn_write encrypts a prefix of `p`/`n` into the outbound staging and returns the
 * number of plaintext bytes consumed (> 0), or -EAGAIN when the staging has no room for a
 * record (take the pending ciphertext, then call again offering at least the same bytes),
 * or -EPROTO with `*why`. n == 0 returns 0. Only valid once the handshake is complete. */
ssize_t tls_conn_write(struct tls_conn *c, const uint8_t *p, size_t n, const char **why);

/* tls_conn_shutdown queues a close_notify alert (take and send it, then close). Returns 0,
 * -EAGAIN (no output room yet) or -EPROTO. Idempotent. */
int tls_conn_shutdown(struct tls_conn *c);

/* tls_conn_classify maps the result `ret` of an SSL_* call on `c` to 0, -EAGAIN,
 * -EINPROGRESS (server paused at ClientHello), -ESHUTDOWN (close_notify), -ECONNRESET (EOF
 * without close_notify) or -EPROTO with `*why` composed into `c`. It is the only caller of
 * SSL_get_error; tls_conn.c's functions use it and translate the result for their caller.
 * Clears BoringSSL's thread error queue. */
int tls_conn_classify(struct tls_conn *c, int ret, const char **why);

/* Accessors. Strings are owned by `c` and valid until tls_conn_dispose. */

/* tls_conn_state returns the state (for traces). tls_conn_state_name names it. */
enum tls_conn_state tls_conn_state(const struct tls_conn *c);
const char *tls_conn_state_name(enum tls_conn_state s);

/* tls_conn_sni returns the client's SNI (server role; "" when none), or the SNI sent
 * (client role; "" when none). */
const char *tls_conn_sni(const struct tls_conn *c);

/* tls_conn_alpn_offers returns the client's ALPN list in wire format and its length in
 * `*len` (server role, after -EINPROGRESS; *len = 0 when the client sent none). */
const uint8_t *tls_conn_alpn_offers(const struct tls_conn *c, size_t *len);

/* tls_conn_alpn returns the negotiated protocol copied into `out` (capacity `cap`, NUL
 * terminated) and its length; 0 and "" when none was negotiated or it does not fit. */
size_t tls_conn_alpn(const struct tls_conn *c, char *out, size_t cap);

/* tls_conn_version returns "TLSv1.2", "TLSv1.3" (static strings), or "" before the
 * handshake completes. */
const char *tls_conn_version(const struct tls_conn *c);

/* tls_conn_is_session_reused is true when the handshake resumed a session (client role:
 * one from the exact key or, for another name under the same wildcard certificate, from
 * the wildcard key). */
bool tls_conn_is_session_reused(const struct tls_conn *c);

/* tls_conn_is_resumed_across_names is true when the handshake resumed a session made for
 * another name under the same wildcard certificate (client role). */
bool tls_conn_is_resumed_across_names(const struct tls_conn *c);

/* tls_conn_is_clean_close is true when the peer sent close_notify (false for a bare EOF,
 * which may mean a truncated response). */
bool tls_conn_is_clean_close(const struct tls_conn *c);

/* tls_conn_peer_names collects the names of the peer's leaf certificate (client role,
 * after the handshake): the subject CN, then every DNS SAN and IP SAN (as text), skipping
 * duplicates, names longer than TLS_CONN_NAME_MAX - 1 and anything the forge would refuse
 * (not a host name, "*."-wildcard host name or IP literal: e.g. a CN "admin@example.com").
 * `names` has `*n` slots on entry; on return `*n` is the number stored. `org` (capacity
 * `orglen`, may be NULL/0) receives the subject O, "" if none. Returns 0; -E2BIG when names
 * were left out for lack of slots (the first *n are stored); -ENOENT when there is no peer
 * certificate; -ENOMEM. Allocates temporarily (certificate parsing). */
int tls_conn_peer_names(const struct tls_conn *c, char names[][TLS_CONN_NAME_MAX], size_t *n,
                        char *org, size_t orglen);

/* tls_conn_peer_subject and tls_conn_peer_issuer write the peer leaf's subject/issuer as
 * one RFC 2253 line ("CN=example.test,O=Example") into `out` (capacity `cap`, truncated,
 * NUL terminated). Return 0 or -ENOENT (no peer certificate; out = ""). Allocate
 * temporarily. */
int tls_conn_peer_subject(const struct tls_conn *c, char *out, size_t cap);
int tls_conn_peer_issuer(const struct tls_conn *c, char *out, size_t cap);

#endif
