/* tls_peer_cache.h - per-worker, fixed-size, direct-mapped cache of what mitmd reads from an
 * upstream leaf certificate (the names to forge, the subject O, the subject and issuer lines),
 * keyed by the leaf's CRYPTO_BUFFER (a resumed session keeps its leaf's buffer, and the client
 * context's buffer pool gives identical DERs one buffer), so that connections to an upstream
 * already seen skip the X.509 decoding. Owned by struct tls_ctx; used by tls_conn_peer.c only.
 * Never parses a certificate itself; never allocates after tls_peer_cache_init. */
#ifndef MITMD_WORKER_TLS_PEER_CACHE_H
#define MITMD_WORKER_TLS_PEER_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>

/* TLS_PEER_CACHE_SLOTS is the number of leaves remembered per worker (~2.3 KiB each, plus a
 * reference to the leaf's CRYPTO_BUFFER, which the session cache shares). */
#define TLS_PEER_CACHE_SLOTS 64
/* TLS_PEER_LEAF_MAX is the largest leaf DER filed: the references held stay under
 * TLS_PEER_CACHE_SLOTS * TLS_PEER_LEAF_MAX (1 MiB) whatever upstreams send. */
#define TLS_PEER_LEAF_MAX 16384
/* TLS_PEER_NAMES_MAX and TLS_PEER_NAMES_BYTES bound the names one entry holds (count, and
 * bytes with their NULs); a leaf with more is served by parsing, every time. */
#define TLS_PEER_NAMES_MAX 32
#define TLS_PEER_NAMES_BYTES 1536
/* TLS_PEER_TEXT_MAX bounds the O and each subject/issuer line held (with NUL); a longer one
 * is not held (the caller computes it). */
#define TLS_PEER_TEXT_MAX 256

/* struct tls_peer_info is what one leaf gives. A field whose `*_all` flag is false was too
 * big for the entry and must be computed from the certificate. */
struct tls_peer_info {
    bool names_all;                   /* names/n_names are every name (else: parse) */
    bool org_all, subject_all, issuer_all;
    uint16_t n_names;                 /* names packed in `names`, each NUL terminated */
    uint16_t name_off[TLS_PEER_NAMES_MAX];
    char names[TLS_PEER_NAMES_BYTES];
    uint16_t org_len;                 /* bytes of the subject O (UTF-8, may hold NULs) */
    char org[TLS_PEER_TEXT_MAX];
    char subject[TLS_PEER_TEXT_MAX];  /* RFC 2253 line, NUL terminated */
    char issuer[TLS_PEER_TEXT_MAX];
};

/* struct tls_peer_cache is embedded in struct tls_ctx. Fields are private to
 * tls_peer_cache.c, except the counters. */
struct tls_peer_cache {
    struct tls_peer_slot *_slots; /* TLS_PEER_CACHE_SLOTS, NULL before init */
    uint64_t hits, misses;
};

/* tls_peer_cache_init allocates the slots (lazily touched). Returns 0 or -ENOMEM. */
int tls_peer_cache_init(struct tls_peer_cache *pc);

/* tls_peer_cache_dispose drops every held leaf reference and frees the slots. Safe on a
 * zeroed or disposed struct. */
void tls_peer_cache_dispose(struct tls_peer_cache *pc);

/* tls_peer_cache_get returns the entry filed for the buffer `leaf` (the same buffer, not only
 * the same DER: cheap, and exact since an entry holds its buffer), or NULL (a miss, or `pc`
 * not initialised). The entry is owned by `pc` and valid until the next tls_peer_cache_put or
 * _dispose. Never allocates. */
const struct tls_peer_info *tls_peer_cache_get(struct tls_peer_cache *pc,
                                               const CRYPTO_BUFFER *leaf);

/* tls_peer_cache_put files a copy of `info` for `leaf`, taking its own reference to `leaf`
 * and replacing whatever held the slot, and returns the filed copy (valid as for
 * tls_peer_cache_get), or NULL when `pc` is not initialised or `leaf` is longer than
 * TLS_PEER_LEAF_MAX (nothing filed). Never allocates. */
const struct tls_peer_info *tls_peer_cache_put(struct tls_peer_cache *pc, CRYPTO_BUFFER *leaf,
                        const struct tls_peer_info *info);

/* tls_peer_info_add_name appends the NUL-terminated `name` (length `len`) to `pi`. Returns
 * false, leaving `pi` unchanged, when it does not fit (TLS_PEER_NAMES_MAX, _BYTES). */
bool tls_peer_info_add_name(struct tls_peer_info *pi, const char *name, size_t len);

/* tls_peer_info_name returns the `i`th name of `pi` (i < n_names), owned by `pi`. */
const char *tls_peer_info_name(const struct tls_peer_info *pi, size_t i);

#endif
