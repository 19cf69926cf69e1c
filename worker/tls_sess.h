/* tls_sess.h - upstream TLS session resumption of one worker: the cache keys, the bounded LRU
 * table of SSL_SESSIONs, and the policy that lets the names of one "*.D" certificate share
 * sessions. The cache is owned by struct tls_ctx; each client-role tls_conn has one link.
 * Called only from worker/tls_*.c. Never touches a socket; allocates only in
 * tls_sess_cache_init (and temporarily, to parse a peer certificate).
 *
 * Keys. Every session an upstream gives a connection is filed under its exact key
 * "verify_host|port|sni|addr", where addr is the address actually connected to
 * ("192.0.2.1:443", "[2001:db8::1]:443", "" when the caller did not give one): a ticket from
 * one address is never offered to another address with the same names. When the connection
 * verified its upstream (not -k), sent SNI == verify_host = "<one label>.D" and the
 * session's peer leaf has the subjectAltName dNSName "*.D", the session is also filed under
 * the wildcard key "*.d|port|*.d|addr" (d = D in lower case). A connection to another
 * "<label>.D" at the same address that misses its exact key then offers that session
 * (RFC 8446 §4.6.1: a client may resume for a new SNI when the original certificate is valid
 * for it), which saves the full handshake and the chain verification. Host names never
 * contain '*' (target_host_is_valid), so the two kinds of key cannot collide; a name with
 * one is never cached nor looked up. */
#ifndef MITMD_WORKER_TLS_SESS_H
#define MITMD_WORKER_TLS_SESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/base.h>

/* TLS_SESS_CACHE_SIZE is the cache size a worker uses (entries, LRU eviction). An
 * SSL_SESSION is about 2 KiB, so a full cache holds ~8 MiB of sessions per worker, plus
 * TLS_SESS_CACHE_SIZE * ~610 bytes of entries (touched only as they fill). */
#define TLS_SESS_CACHE_SIZE 4096
/* TLS_SESS_NONE ends a bucket chain or the LRU list. */
#define TLS_SESS_NONE UINT32_MAX
/* TLS_SESS_ADDR_MAX holds the address part of a key plus NUL: "[" IPv6 text (45) "%" scope
 * id (10 digits) "]:" port (5). */
#define TLS_SESS_ADDR_MAX 65
/* TLS_SESS_KEY_MAX holds "host|port|sni|addr" for the longest host and SNI (253 each) and
 * address, and so also a wildcard key "*.d|port|*.d|addr". */
#define TLS_SESS_KEY_MAX (253 + 1 + 5 + 1 + 253 + 1 + TLS_SESS_ADDR_MAX)

/* struct tls_sess_entry is one slot of the cache: in the chain of its hash bucket and in the
 * LRU list (indexes into the entry array). */
struct tls_sess_entry {
    SSL_SESSION *sess;           /* owned reference */
    uint64_t hash;               /* keyed hash of `key` */
    uint32_t next;               /* next entry of the same bucket */
    uint32_t newer, older;       /* LRU neighbours */
    char key[TLS_SESS_KEY_MAX];  /* an exact or a wildcard key */
};

/* struct tls_sess_cache is embedded in struct tls_ctx. Fields starting with '_' are private
 * to tls_sess.c; the counters may be read by anyone. */
struct tls_sess_cache {
    struct tls_sess_entry *_entry; /* _cap slots, [0, _used) in use */
    uint32_t *_bucket;             /* _nbuckets chain heads */
    uint32_t _cap, _nbuckets, _used;
    uint32_t _newest, _oldest; /* LRU list ends */
    uint8_t _hash_key[16];     /* random SipHash key (crypto_shorthash) */
    uint64_t hits, misses, evictions;
    /* wildcard_hits counts exact-key misses answered by a wildcard entry whose leaf
     * certificate was confirmed for the new name (tls_sess_take_wildcard). */
    uint64_t wildcard_hits;
};

/* enum tls_sess_wild says whether a link also files the sessions its upstream gives it under
 * its wildcard key. The leaf is parsed for it at most once per connection, and only after a
 * full handshake. */
enum tls_sess_wild {
    TLS_SESS_WILD_NO = 0,  /* not eligible, or decided: the exact key only */
    TLS_SESS_WILD_CHECK,   /* eligible: decide at the first new session */
    TLS_SESS_WILD_OFFERED, /* eligible, and the offered session came from the wildcard key */
    TLS_SESS_WILD_YES,     /* decided: the exact key and the wildcard key */
};

/* struct tls_sess_link is the session state of one client-role connection, embedded in
 * struct tls_conn. All fields are private to tls_sess.c. A zeroed link caches nothing. */
struct tls_sess_link {
    struct tls_sess_cache *_cache;
    enum tls_sess_wild _wild;
    bool _wild_offered;             /* the offered session is another name's */
    char _key[TLS_SESS_KEY_MAX];    /* exact key ("" = no caching) */
    char _wild_key[TLS_SESS_KEY_MAX]; /* wildcard key ("" = not eligible) */
};

/* tls_sess_cache_init allocates a cache of `cap` entries (> 0; untouched until used) and a
 * hash index of twice as many buckets (rounded up to a power of two), and picks a random
 * hash key. Returns 0, -EINVAL (cap 0 or too large) or -ENOMEM; on failure nothing is left
 * allocated. `s` need not be initialised. Allocates. */
int tls_sess_cache_init(struct tls_sess_cache *s, uint32_t cap);

/* tls_sess_cache_dispose frees every cached session and the table. Safe on a zeroed or
 * disposed struct. */
void tls_sess_cache_dispose(struct tls_sess_cache *s);

/* tls_sess_take returns a new reference to the session cached for `key` (the caller frees
 * it with SSL_SESSION_free), or NULL. Counts a hit or a miss; a hit becomes the most
 * recently used entry. O(1) expected (hash index). Never allocates. */
SSL_SESSION *tls_sess_take(struct tls_sess_cache *s, const char *key);

/* tls_sess_take_wildcard returns a new reference to the session cached under the wildcard
 * key `key` when the session's peer leaf certificate is valid for `host` (X509_check_host,
 * as the handshake would have checked it), or NULL. A confirmed hit counts in wildcard_hits
 * and becomes the most recently used entry; neither hits nor misses changes. Allocates
 * temporarily (parses the leaf on a hit). */
SSL_SESSION *tls_sess_take_wildcard(struct tls_sess_cache *s, const char *key, const char *host);

/* tls_sess_put stores `sess` under `key`, taking over the caller's reference in every case
 * (it is freed when the cache cannot hold it: empty or over-long key, zeroed cache).
 * Replaces an older session for the same key; evicts the least recently used entry when
 * full (O(1) expected). Never allocates, never fails visibly. */
void tls_sess_put(struct tls_sess_cache *s, const char *key, SSL_SESSION *sess);

/* tls_sess_has_dns_name is true when the peer leaf certificate of `sess` has a
 * subjectAltName dNSName equal to `name`/`len` (ASCII case-insensitive), e.g.
 * "*.example.test". False when there is no peer certificate or it does not parse.
 * Allocates temporarily (certificate parsing: call it once per connection at most). */
bool tls_sess_has_dns_name(const SSL_SESSION *sess, const char *name, size_t len);

/* tls_sess_addr_text writes the address part of a key for `dst`/`dstlen` into `out`
 * (capacity at least TLS_SESS_ADDR_MAX): "192.0.2.1:443", "[2001:db8::1]:443" or
 * "[fe80::1%2]:443" (scope id). dst == NULL writes "". Returns 0, or -EINVAL (`dstlen` too
 * short for its family, a family other than AF_INET/AF_INET6, or `cap` too small; out =
 * ""). Never allocates. */
int tls_sess_addr_text(const struct sockaddr *dst, socklen_t dstlen, char *out, size_t cap);

/* tls_sess_key_make writes the exact key "verify_host|port|sni|addr" into `out` (capacity
 * `cap`). NULL strings count as "". Returns 0, -EINVAL (a '*' in verify_host or sni: never
 * cached) or -ENAMETOOLONG (does not fit); out = "" on failure. Never allocates. */
int tls_sess_key_make(char *out, size_t cap, const char *verify_host, uint16_t port,
                      const char *sni, const char *addr);

/* tls_sess_wild_key_make writes the wildcard key "*.d|port|*.d|addr" for verify_host
 * "<label>.D" (d = D in lower case) into `out` when a connection may share sessions with
 * the other names of a "*.D" certificate: `verified` (not -k), an SNI sent and equal to
 * verify_host, one non-empty first label and at least two labels in D (RFC 6125 §6.4.3;
 * BoringSSL matches no wildcard with fewer), no '*'. Returns true when it wrote a key;
 * otherwise false with out = "". Never allocates. */
bool tls_sess_wild_key_make(char *out, size_t cap, bool verified, const char *verify_host,
                            uint16_t port, const char *sni, const char *addr);

/* tls_sess_link_init sets `l` up for a connection to `verify_host` (NULL = none) at
 * `port`, sending `sni` (NULL or "" = none), connected to `dst`/`dstlen` (NULL = unknown),
 * with the sessions of `cache`: it computes the exact key and, when eligible, the wildcard
 * key. A link that cannot be keyed (a '*' in a name) caches nothing. Returns 0 or -EINVAL
 * (`dst` malformed, see tls_sess_addr_text; `l` then caches nothing). Never allocates. */
int tls_sess_link_init(struct tls_sess_link *l, struct tls_sess_cache *cache, bool verified,
                       const char *sni, const char *verify_host, uint16_t port,
                       const struct sockaddr *dst, socklen_t dstlen);

/* tls_sess_link_offer offers `ssl` (a client SSL before its handshake) a cached session
 * for resumption with SSL_set_session: the one of the exact key, else (eligible links) the
 * wildcard key's when its certificate is valid for `verify_host`. Counts as tls_sess_take
 * and tls_sess_take_wildcard do. Returns 0 (also when there is nothing to offer) or -ENOMEM.
 * Allocates temporarily (a wildcard candidate's leaf is parsed). */
int tls_sess_link_offer(struct tls_sess_link *l, SSL *ssl, const char *verify_host);

/* tls_sess_link_file files `sess`, a session the upstream gave the connection `ssl` (after
 * the handshake in TLS 1.2, with each NewSessionTicket in TLS 1.3), under the link's exact
 * key, and under its wildcard key when the certificate is a "*.D" one for it (decided once
 * per link: from the leaf after a full handshake; yes after a resumption from the wildcard
 * entry, whose certificate tls_sess_take_wildcard checked; no after one from the exact
 * entry, so that warm connections never parse the leaf). Returns true when it took the
 * caller's reference (the new-session callback then returns 1), false when the link caches
 * nothing. */
bool tls_sess_link_file(struct tls_sess_link *l, const SSL *ssl, SSL_SESSION *sess);

/* tls_sess_link_is_across_names is true when the offered session was another name's (from
 * the wildcard key); the handshake may still have declined it. */
bool tls_sess_link_is_across_names(const struct tls_sess_link *l);

#endif
