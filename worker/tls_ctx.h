/* tls_ctx.h - the per-worker TLS contexts, built once at worker start and shared by every
 * tls_conn of that worker: the server side (toward clients: forged chains, paused at the
 * ClientHello, session tickets) and the client side (toward upstreams: trust store, ALPN),
 * plus the upstream session cache (tls_sess.h). Owned by struct worker; used by tls_conn.c
 * only through this header. Never loads a file or allocates after tls_ctx_init. */
#ifndef MITMD_WORKER_TLS_CTX_H
#define MITMD_WORKER_TLS_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>

#include "certcache/certstore.h"
#include "worker/tls_peer_cache.h"
#include "worker/tls_sess.h"

/* TLS_CTX_SYSTEM_CA_FILE is Debian's bundle of trusted roots (package ca-certificates). */
#define TLS_CTX_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
/* TLS_CTX_TICKET_KEY_LEN is the size of the session ticket key material (BoringSSL: 48). */
#define TLS_CTX_TICKET_KEY_LEN 48
/* TLS_CTX_ALPN_MAX bounds a wire-format ALPN list (length-prefixed protocol names). */
#define TLS_CTX_ALPN_MAX 256
/* TLS_CTX_ALPN_DEFAULT is the list allowed when tls_ctx_opts gives none: HTTP/1.1 only (the
 * worker gives "\x02h2\x08http/1.1" unless HTTP/2 is turned off). */
#define TLS_CTX_ALPN_DEFAULT "\x08http/1.1"

/* TLS_CTX_CIPHERS_DEFAULT is the TLS 1.2 cipher list of both contexts when tls_ctx_opts gives
 * none: Mozilla's "intermediate" configuration without DHE (BoringSSL has none), i.e. ECDHE
 * with an AEAD only (AES-GCM, ChaCha20-Poly1305); no CBC, no RSA key exchange. TLS 1.3 suites
 * are not configurable in BoringSSL and all three are AEADs. */
#define TLS_CTX_CIPHERS_DEFAULT                                                                    \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

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
    /* ciphers_client and ciphers_server are TLS 1.2 cipher lists in OpenSSL syntax
     * ("ECDHE-RSA-AES128-GCM-SHA256:..."), named as mitmproxy's options: ciphers_client for
     * the connections with clients (mitmd's server role), ciphers_server for the connections
     * with upstream servers (mitmd's client role). NULL = TLS_CTX_CIPHERS_DEFAULT. A list
     * with a name BoringSSL does not know, or that leaves no cipher, fails tls_ctx_init. */
    const char *ciphers_client;
    const char *ciphers_server;
    /* version_client_min/max bound the TLS versions accepted from clients, version_server_*
     * those offered upstream (mitmproxy's tls_version_client_* / tls_version_server_*), as
     * protocol numbers (TLS1_VERSION ... TLS1_3_VERSION); 0 = mitmd's default, TLS 1.2 as
     * the minimum and TLS 1.3 as the maximum. A minimum above its maximum fails tls_ctx_init. */
    uint16_t version_client_min, version_client_max;
    uint16_t version_server_min, version_server_max;
    /* certs_bundle_file is the master's certificate bundle (certcache/certstore.h: --certs,
     * client_certs and the onboarding files), read once here; NULL = none. */
    const char *certs_bundle_file;
};

/* struct tls_ctx is embedded in struct worker. Fields are private to worker/tls_*.c. */
struct tls_ctx {
    SSL_CTX *_server;          /* toward clients: TLS_with_buffers_method, no X509 code */
    SSL_CTX *_client;          /* toward upstreams: X509 verification */
    CRYPTO_BUFFER_POOL *_pool; /* dedups identical DERs: forged leaves, upstream certificates */
    CRYPTO_BUFFER *_ca;        /* CA certificate, NULL when the chain is the leaf alone */
    EVP_PKEY *_leaf_key;       /* the one leaf key all forged certificates share */
    BIO_METHOD *_bio_method;   /* the staging BIO of tls_conn.c */
    bool _insecure;
    bool _client_certs_by_host; /* client_certs=DIR: the client certificate depends on the host */
    bool _has_server_certs;     /* --certs given: look them up at each ClientHello */
    bool _has_client_certs;     /* client_certs given: look them up at each upstream */
    uint8_t _alpn_allowed[TLS_CTX_ALPN_MAX];
    size_t _alpn_allowed_len;
    /* sess is the upstream session cache (tls_sess.h); its counters are readable by the
     * worker. */
    struct tls_sess_cache sess;
    /* peer holds the names and lines read from upstream leaves (tls_peer_cache.h). */
    struct tls_peer_cache peer;
    /* certs holds the operator's certificates (--certs: served instead of a forged chain;
     * client_certs: presented upstream) and the onboarding files; read-only after init. */
    struct certstore certs;
};

/* tls_ctx_init builds both contexts from `o`: parses the CA certificate and the PKCS#8 leaf
 * key, loads the system roots and `o->upstream_ca_file` once (blocking file reads: call it
 * at worker start, before the loop), and configures TLS 1.2-1.3, the TLS 1.2 ciphers, ALPN,
 * tickets and the session cache, and reads `o->certs_bundle_file`. Returns 0, or -EINVAL (bad
 * DER, unreadable or empty CA file, bad ALPN list, bad cipher list, unreadable or malformed
 * bundle) or -ENOMEM, with `*why` set to a static string; on failure nothing is left
 * allocated. `t` need not be initialised. Allocates (also the session cache's entry array
 * and hash index, ~2.5 MiB of address space, touched as the cache fills, and the peer
 * cache's slots, ~150 KiB). */
int tls_ctx_init(struct tls_ctx *t, const struct tls_ctx_opts *o, const char **why);

/* tls_ctx_dispose frees everything tls_ctx_init made, including cached sessions. Call it
 * after every tls_conn of `t` is disposed. Safe on a zeroed struct. */
void tls_ctx_dispose(struct tls_ctx *t);

/* tls_ctx_alpn_filter writes to `out` (wire format, capacity `cap`) the protocols of the
 * wire-format list `offer` that `t` allows, in the order of `offer`. Returns the length
 * written (0 = nothing in common, or `offer` malformed). Never allocates. */
size_t tls_ctx_alpn_filter(const struct tls_ctx *t, const uint8_t *offer, size_t offer_len,
                           uint8_t *out, size_t cap);

/* tls_ctx_alpn_next reads the protocol at `*off` of the wire-format ALPN list `p`/`n`
 * (RFC 7301 §3.1: uint8-prefixed, non-empty names). Returns true and sets `*proto`/`*len`
 * (pointing into `p`) and advances `*off` when a well-formed entry is there; false at the
 * end of the list or at a malformed entry. The one ALPN list parser of worker/tls_*.c.
 * Never allocates. */
bool tls_ctx_alpn_next(const uint8_t *p, size_t n, size_t *off, const uint8_t **proto,
                       size_t *len);

#endif
