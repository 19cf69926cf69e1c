/* tls_ctx.h - the per-worker TLS contexts, built once at worker start and shared by every
 * tls_conn of that worker: the server side (toward clients: forged chains, paused at the
 * ClientHello, session tickets) and the client side (toward upstreams: trust store, ALPN,
 * bounded session cache, with wildcard entries shared by the names one "*.D" certificate
 * covers). Owned by struct worker; used by tls_conn.c only through this header. Never loads
 * a file or allocates a context after tls_ctx_init. */
#ifndef MITMD_WORKER_TLS_CTX_H
#define MITMD_WORKER_TLS_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>

/* TLS_CTX_SYSTEM_CA_FILE is Debian's bundle of trusted roots (package ca-certificates). */
#define TLS_CTX_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
/* TLS_CTX_SESS_CACHE_SIZE bounds the upstream session cache (entries, LRU eviction). An
 * SSL_SESSION is about 2 KiB, so a full cache holds ~8 MiB of sessions per worker, plus
 * TLS_CTX_SESS_CACHE_SIZE * ~550 bytes of entries (touched only as they fill). */
#define TLS_CTX_SESS_CACHE_SIZE 4096
/* TLS_CTX_SESS_BUCKETS is the size of the cache's hash index (a power of two, twice the
 * entries: chains stay ~1 long). */
#define TLS_CTX_SESS_BUCKETS 8192
/* TLS_CTX_SESS_NONE ends a bucket chain or the LRU list. */
#define TLS_CTX_SESS_NONE UINT32_MAX
/* TLS_CTX_SESS_KEY_MAX holds "host|port|sni" for the longest host and SNI (253 each), and
 * so also a wildcard key "*.d|port|*.d" (tls_conn_init_client). */
#define TLS_CTX_SESS_KEY_MAX 520
/* TLS_CTX_TICKET_KEY_LEN is the size of the session ticket key material (BoringSSL: 48). */
#define TLS_CTX_TICKET_KEY_LEN 48
/* TLS_CTX_ALPN_MAX bounds a wire-format ALPN list (length-prefixed protocol names). */
#define TLS_CTX_ALPN_MAX 256
/* TLS_CTX_ALPN_DEFAULT is what mitmd relays today: HTTP/1.1 only (h2 comes with h2_relay). */
#define TLS_CTX_ALPN_DEFAULT "\x08http/1.1"

/* struct tls_ctx_opts is what tls_ctx_init needs; all pointers are borrowed for the call. */
struct tls_ctx_opts {
    const uint8_t *ca_cert_der;  /* CA certificate (from MSG_HELLO); sent after every leaf */
    size_t ca_cert_der_len;      /* 0 = serve the leaf alone (tests) */
    const uint8_t *leaf_key_der; /* leaf private key, PKCS#8 DER (from MSG_HELLO) */
    size_t leaf_key_der_len;
    const char *system_ca_file;   /* NULL = TLS_CTX_SYSTEM_CA_FILE; "" = no system roots */
    const char *upstream_ca_file; /* --upstream-ca (PEM, may hold several), NULL = none */
    bool insecure;                /* -k: do not verify upstream certificates at all */
    const uint8_t *alpn_allowed;  /* wire format, e.g. "\x02h2\x08http/1.1"; NULL =
                                   * TLS_CTX_ALPN_DEFAULT. Offered upstream only if the
                                   * client offered them too. */
    size_t alpn_allowed_len;
    /* ticket_key, when non-NULL, is TLS_CTX_TICKET_KEY_LEN bytes shared by all workers (the
     * master picks it at start) so a client resumes on whichever worker accepts it.
     * NULL = a random per-worker key (resumption then works only on the same worker). */
    const uint8_t *ticket_key;
};

/* struct tls_sess_entry is one slot of the upstream session cache: in the chain of its
 * hash bucket and in the LRU list (indexes into the entry array). */
struct tls_sess_entry {
    SSL_SESSION *sess;              /* owned reference */
    uint64_t hash;                  /* keyed hash of `key` */
    uint32_t next;                  /* next entry of the same bucket */
    uint32_t newer, older;          /* LRU neighbours */
    char key[TLS_CTX_SESS_KEY_MAX]; /* "host|port|sni" or "*.d|port|*.d" */
};

/* struct tls_ctx is embedded in struct worker. Fields are private to worker/tls_*.c. */
struct tls_ctx {
    SSL_CTX *_server;          /* toward clients: TLS_with_buffers_method, no X509 code */
    SSL_CTX *_client;          /* toward upstreams: X509 verification */
    CRYPTO_BUFFER_POOL *_pool; /* dedups identical leaf DERs across connections */
    CRYPTO_BUFFER *_ca;        /* CA certificate, NULL when the chain is the leaf alone */
    EVP_PKEY *_leaf_key;       /* the one leaf key all forged certificates share */
    BIO_METHOD *_bio_method;   /* the staging BIO of tls_conn.c */
    bool _insecure;
    uint8_t _alpn_allowed[TLS_CTX_ALPN_MAX];
    size_t _alpn_allowed_len;
    struct tls_sess_entry *_sess; /* TLS_CTX_SESS_CACHE_SIZE slots, [0, _sess_used) in use */
    uint32_t *_sess_bucket;       /* TLS_CTX_SESS_BUCKETS chain heads */
    uint32_t _sess_used;
    uint32_t _sess_newest, _sess_oldest;             /* LRU list ends */
    uint8_t _sess_hash_key[16];                      /* random SipHash key (crypto_shorthash) */
    uint64_t sess_hits, sess_misses, sess_evictions; /* counters, readable by the worker */
    /* sess_wildcard_hits counts exact-key misses answered by a wildcard entry whose leaf
     * certificate was confirmed for the new name (tls_ctx_sess_take_wildcard). */
    uint64_t sess_wildcard_hits;
};

/* tls_ctx_init builds both contexts from `o`: parses the CA certificate and the PKCS#8 leaf
 * key, loads the system roots and `o->upstream_ca_file` once (blocking file reads: call it
 * at worker start, before the loop), and configures TLS 1.2-1.3, ALPN, tickets and the
 * session cache. Returns 0, or -EINVAL (bad DER, unreadable or empty CA file, bad ALPN
 * list) or -ENOMEM, with `*why` set to a static string; on failure nothing is left
 * allocated. `t` need not be initialised. Allocates (also the session cache's entry array
 * and hash index, ~2.3 MiB of address space, touched as the cache fills). */
int tls_ctx_init(struct tls_ctx *t, const struct tls_ctx_opts *o, const char **why);

/* tls_ctx_dispose frees everything tls_ctx_init made, including cached sessions. Call it
 * after every tls_conn of `t` is disposed. Safe on a zeroed struct. */
void tls_ctx_dispose(struct tls_ctx *t);

/* tls_ctx_alpn_filter writes to `out` (wire format, capacity `cap`) the protocols of the
 * wire-format list `offer` that `t` allows, in the order of `offer`. Returns the length
 * written (0 = nothing in common, or `offer` malformed). Never allocates. */
size_t tls_ctx_alpn_filter(const struct tls_ctx *t, const uint8_t *offer, size_t offer_len,
                           uint8_t *out, size_t cap);

/* The upstream session cache. tls_conn files every session an upstream gives it under the
 * exact key "verify_host|port|sni". When the connection verified its upstream (not -k), sent
 * SNI == verify_host = "<one label>.D" and the session's peer leaf has the subjectAltName
 * dNSName "*.D", the same session is also filed under the wildcard key "*.d|port|*.d" (d =
 * D in lower case). A connection to another "<label>.D" that misses its exact key then
 * offers that session (RFC 8446 §4.6.1: a client may resume for a new SNI when the
 * original certificate is valid for it), which saves the full handshake and the chain
 * verification. Host names never contain '*' (target_host_is_valid), so the two kinds of
 * key cannot collide; tls_conn_init_client caches nothing for a name that has one. */

/* tls_ctx_sess_take returns a new reference to the cached upstream session for `key` (the
 * caller frees it with SSL_SESSION_free), or NULL. Counts a hit or a miss; a hit becomes
 * the most recently used entry. O(1) expected (hash index). Used by tls_conn_init_client. */
SSL_SESSION *tls_ctx_sess_take(struct tls_ctx *t, const char *key);

/* tls_ctx_sess_take_wildcard returns a new reference to the session cached under the
 * wildcard key `key` ("*.d|port|*.d") when the session's peer leaf certificate is valid for
 * `host` (X509_check_host, as the handshake would have checked it), or NULL. A confirmed
 * hit counts in sess_wildcard_hits and becomes the most recently used entry; neither
 * sess_hits nor sess_misses changes. Allocates temporarily (parses the leaf on a hit). */
SSL_SESSION *tls_ctx_sess_take_wildcard(struct tls_ctx *t, const char *key, const char *host);

/* tls_ctx_sess_has_dns_name is true when the peer leaf certificate of `sess` has a
 * subjectAltName dNSName equal to `name`/`len` (ASCII case-insensitive), e.g.
 * "*.example.test". False when there is no peer certificate or it does not parse.
 * Allocates temporarily (certificate parsing: call it once per connection at most). */
bool tls_ctx_sess_has_dns_name(const SSL_SESSION *sess, const char *name, size_t len);

/* tls_ctx_sess_put stores `sess` under `key`, taking over the caller's reference in every
 * case (it is freed when the cache cannot hold it). Replaces an older session for the same
 * key; evicts the least recently used entry when full (O(1) expected). Never allocates,
 * never fails visibly. */
void tls_ctx_sess_put(struct tls_ctx *t, const char *key, SSL_SESSION *sess);

#endif
