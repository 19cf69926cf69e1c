/* tls_sess.c - the upstream session cache (a fixed entry array with a keyed-hash index and an
 * LRU list), its keys (exact and wildcard, both with the connected address) and the wildcard
 * reuse policy (see tls_sess.h). tls_conn.c calls it from its new-session callback and when
 * it starts a client-role SSL; tls_ctx.c embeds the cache. Never touches a socket. */
#include "worker/tls_sess.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include <openssl/err.h>
#include <openssl/pool.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "shared/shorthash.h"

/* TLS_SESS_CAP_MAX bounds a cache so that the bucket count (twice it, a power of two) fits
 * in uint32_t and indexes never reach TLS_SESS_NONE. */
#define TLS_SESS_CAP_MAX (1u << 24)

_Static_assert(sizeof(((struct tls_sess_cache *)0)->_hash_key) == crypto_shorthash_KEYBYTES,
               "the session cache's hash key is a crypto_shorthash key");
_Static_assert(TLS_SESS_CACHE_SIZE <= TLS_SESS_CAP_MAX, "the default cache size is allowed");

/* ---- the table ------------------------------------------------------------------------ */

int tls_sess_cache_init(struct tls_sess_cache *s, uint32_t cap)
{
    uint32_t nb = 1;

    memset(s, 0, sizeof(*s));
    if (cap == 0 || cap > TLS_SESS_CAP_MAX)
        return -EINVAL;
    while (nb < 2 * cap) /* chains stay ~1 long */
        nb <<= 1;
    s->_entry = calloc(cap, sizeof(*s->_entry));
    s->_bucket = calloc(nb, sizeof(*s->_bucket));
    if (s->_entry == NULL || s->_bucket == NULL)
        goto out_free;
    for (uint32_t b = 0; b < nb; b++)
        s->_bucket[b] = TLS_SESS_NONE;
    s->_cap = cap;
    s->_nbuckets = nb;
    s->_newest = s->_oldest = TLS_SESS_NONE;
    /* A random key: upstream names come from clients, who must not be able to aim many keys
     * at one bucket. */
    if (RAND_bytes(s->_hash_key, sizeof(s->_hash_key)) != 1)
        goto out_free;
    return 0;
out_free:
    free(s->_entry);
    free(s->_bucket);
    memset(s, 0, sizeof(*s));
    ERR_clear_error();
    return -ENOMEM;
}

void tls_sess_cache_dispose(struct tls_sess_cache *s)
{
    for (uint32_t i = 0; s->_entry != NULL && i < s->_used; i++)
        SSL_SESSION_free(s->_entry[i].sess);
    free(s->_entry);
    free(s->_bucket);
    s->_entry = NULL;
    s->_bucket = NULL;
    s->_cap = s->_nbuckets = s->_used = 0;
}

/* sess_hash returns the keyed hash (SipHash-2-4) of `key`/`len`. */
static uint64_t sess_hash(const struct tls_sess_cache *s, const char *key, size_t len)
{
    return shorthash64(key, len, s->_hash_key);
}

static uint32_t *sess_bucket_of(struct tls_sess_cache *s, uint64_t hash)
{
    return &s->_bucket[hash & (s->_nbuckets - 1)];
}

/* sess_find returns the index of the entry holding `key` (hash `hash`), or TLS_SESS_NONE. */
static uint32_t sess_find(struct tls_sess_cache *s, const char *key, uint64_t hash)
{
    for (uint32_t i = *sess_bucket_of(s, hash); i != TLS_SESS_NONE; i = s->_entry[i].next)
        if (s->_entry[i].hash == hash && strcmp(s->_entry[i].key, key) == 0)
            return i;
    return TLS_SESS_NONE;
}

/* sess_lru_unlink takes entry `i` out of the LRU list. */
static void sess_lru_unlink(struct tls_sess_cache *s, uint32_t i)
{
    struct tls_sess_entry *e = &s->_entry[i];

    if (e->newer != TLS_SESS_NONE)
        s->_entry[e->newer].older = e->older;
    else
        s->_newest = e->older;
    if (e->older != TLS_SESS_NONE)
        s->_entry[e->older].newer = e->newer;
    else
        s->_oldest = e->newer;
}

/* sess_lru_push makes entry `i` (not in the list) the most recently used. */
static void sess_lru_push(struct tls_sess_cache *s, uint32_t i)
{
    struct tls_sess_entry *e = &s->_entry[i];

    e->newer = TLS_SESS_NONE;
    e->older = s->_newest;
    if (s->_newest != TLS_SESS_NONE)
        s->_entry[s->_newest].newer = i;
    else
        s->_oldest = i;
    s->_newest = i;
}

/* sess_bucket_unlink takes entry `i` out of its bucket's chain. */
static void sess_bucket_unlink(struct tls_sess_cache *s, uint32_t i)
{
    uint32_t *link = sess_bucket_of(s, s->_entry[i].hash);

    while (*link != TLS_SESS_NONE && *link != i)
        link = &s->_entry[*link].next;
    if (*link == i)
        *link = s->_entry[i].next;
}

/* sess_lookup returns the index of the entry for `key`, or TLS_SESS_NONE. Counts nothing
 * and leaves the LRU order alone. */
static uint32_t sess_lookup(struct tls_sess_cache *s, const char *key)
{
    size_t klen = strlen(key);

    if (s->_entry == NULL || klen == 0 || klen >= TLS_SESS_KEY_MAX)
        return TLS_SESS_NONE;
    return sess_find(s, key, sess_hash(s, key, klen));
}

/* sess_use makes entry `i` the most recently used and returns a new reference to its
 * session. */
static SSL_SESSION *sess_use(struct tls_sess_cache *s, uint32_t i)
{
    sess_lru_unlink(s, i);
    sess_lru_push(s, i);
    SSL_SESSION_up_ref(s->_entry[i].sess);
    return s->_entry[i].sess;
}

SSL_SESSION *tls_sess_take(struct tls_sess_cache *s, const char *key)
{
    uint32_t i = sess_lookup(s, key);

    if (i == TLS_SESS_NONE) {
        s->misses++;
        return NULL;
    }
    s->hits++;
    return sess_use(s, i);
}

/* sess_peer_leaf parses the peer leaf certificate of `sess` (the caller frees it with
 * X509_free), or returns NULL. */
static X509 *sess_peer_leaf(const SSL_SESSION *sess)
{
    const STACK_OF(CRYPTO_BUFFER) *certs = SSL_SESSION_get0_peer_certificates(sess);

    if (certs == NULL || sk_CRYPTO_BUFFER_num(certs) == 0)
        return NULL;
    return X509_parse_from_buffer(sk_CRYPTO_BUFFER_value(certs, 0));
}

SSL_SESSION *tls_sess_take_wildcard(struct tls_sess_cache *s, const char *key, const char *host)
{
    uint32_t i = sess_lookup(s, key);
    X509 *leaf;
    bool ok;

    if (i == TLS_SESS_NONE)
        return NULL;
    /* Defence in depth: the entry was filed for "*.D", but only the certificate says which
     * names the session may serve (X509_check_host also refuses a wildcard for a label such
     * as "a_b" that the handshake's own verification would refuse). */
    leaf = sess_peer_leaf(s->_entry[i].sess);
    ok = leaf != NULL && X509_check_host(leaf, host, strlen(host), 0, NULL) == 1;
    X509_free(leaf);
    ERR_clear_error();
    if (!ok)
        return NULL;
    s->wildcard_hits++;
    return sess_use(s, i);
}

bool tls_sess_has_dns_name(const SSL_SESSION *sess, const char *name, size_t len)
{
    X509 *leaf = sess_peer_leaf(sess);
    GENERAL_NAMES *sans;
    bool found = false;

    if (leaf == NULL) {
        ERR_clear_error();
        return false;
    }
    sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    for (size_t i = 0; sans != NULL && !found && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);

        if (g->type != GEN_DNS)
            continue;
        found = (size_t)ASN1_STRING_length(g->d.dNSName) == len &&
                strncasecmp((const char *)ASN1_STRING_get0_data(g->d.dNSName), name, len) == 0;
    }
    GENERAL_NAMES_free(sans);
    X509_free(leaf);
    ERR_clear_error();
    return found;
}

void tls_sess_put(struct tls_sess_cache *s, const char *key, SSL_SESSION *sess)
{
    size_t klen = strlen(key);
    struct tls_sess_entry *e;
    uint64_t hash;
    uint32_t i, *head;

    if (s->_entry == NULL || klen == 0 || klen >= TLS_SESS_KEY_MAX) {
        SSL_SESSION_free(sess);
        return;
    }
    hash = sess_hash(s, key, klen);
    i = sess_find(s, key, hash);
    if (i != TLS_SESS_NONE) {
        /* A newer session for the same upstream (TLS 1.3 sends several tickets). */
        e = &s->_entry[i];
        SSL_SESSION_free(e->sess);
        e->sess = sess;
        sess_lru_unlink(s, i);
        sess_lru_push(s, i);
        return;
    }
    if (s->_used < s->_cap) {
        i = s->_used++;
    } else {
        i = s->_oldest; /* full: reuse the least recently used slot */
        sess_bucket_unlink(s, i);
        sess_lru_unlink(s, i);
        SSL_SESSION_free(s->_entry[i].sess);
        s->evictions++;
    }
    e = &s->_entry[i];
    e->sess = sess;
    e->hash = hash;
    memcpy(e->key, key, klen + 1);
    head = sess_bucket_of(s, hash);
    e->next = *head;
    *head = i;
    sess_lru_push(s, i);
}

/* ---- keys ----------------------------------------------------------------------------- */

int tls_sess_addr_text(const struct sockaddr *dst, socklen_t dstlen, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    int n;

    if (cap == 0)
        return -EINVAL;
    out[0] = '\0';
    if (dst == NULL)
        return 0;
    if (cap < TLS_SESS_ADDR_MAX)
        return -EINVAL;
    if (dst->sa_family == AF_INET && (size_t)dstlen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)dst;

        if (inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)) == NULL)
            return -EINVAL;
        n = snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    } else if (dst->sa_family == AF_INET6 && (size_t)dstlen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)dst;

        if (inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)) == NULL)
            return -EINVAL;
        /* A link-local address names a different host on each interface. */
        if (in6->sin6_scope_id != 0)
            n = snprintf(out, cap, "[%s%%%u]:%u", ip, (unsigned)in6->sin6_scope_id,
                         (unsigned)ntohs(in6->sin6_port));
        else
            n = snprintf(out, cap, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    } else {
        return -EINVAL;
    }
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return -EINVAL; /* cannot happen: cap >= TLS_SESS_ADDR_MAX */
    }
    return 0;
}

int tls_sess_key_make(char *out, size_t cap, const char *verify_host, uint16_t port,
                      const char *sni, const char *addr)
{
    int n;

    if (cap == 0)
        return -ENAMETOOLONG;
    out[0] = '\0';
    verify_host = verify_host != NULL ? verify_host : "";
    sni = sni != NULL ? sni : "";
    addr = addr != NULL ? addr : "";
    /* '*' is in no valid host name (target_host_is_valid); a name with one could pose as a
     * wildcard key, so it is neither cached nor looked up. */
    if (strchr(verify_host, '*') != NULL || strchr(sni, '*') != NULL)
        return -EINVAL;
    n = snprintf(out, cap, "%s|%u|%s|%s", verify_host, (unsigned)port, sni, addr);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return -ENAMETOOLONG;
    }
    return 0;
}

bool tls_sess_wild_key_make(char *out, size_t cap, bool verified, const char *verify_host,
                            uint16_t port, const char *sni, const char *addr)
{
    const char *dot;
    char d[256];
    size_t n;
    int w;

    if (cap == 0)
        return false;
    out[0] = '\0';
    if (!verified || verify_host == NULL || sni == NULL || sni[0] == '\0' ||
        strcmp(sni, verify_host) != 0 || strchr(verify_host, '*') != NULL)
        return false;
    dot = strchr(verify_host, '.');
    if (dot == NULL || dot == verify_host)
        return false;
    n = strlen(dot + 1);
    if (n == 0 || n >= sizeof(d) || strchr(dot + 1, '.') == NULL || dot[n] == '.')
        return false;
    for (size_t i = 0; i <= n; i++)
        d[i] = (char)tolower((unsigned char)dot[1 + i]);
    w = snprintf(out, cap, "*.%s|%u|*.%s|%s", d, (unsigned)port, d, addr != NULL ? addr : "");
    if (w < 0 || (size_t)w >= cap) {
        out[0] = '\0';
        return false;
    }
    return true;
}

/* ---- one connection's link ------------------------------------------------------------ */

int tls_sess_link_init(struct tls_sess_link *l, struct tls_sess_cache *cache, bool verified,
                       const char *sni, const char *verify_host, uint16_t port,
                       const struct sockaddr *dst, socklen_t dstlen)
{
    char addr[TLS_SESS_ADDR_MAX];
    int err;

    memset(l, 0, sizeof(*l));
    l->_cache = cache;
    if (sni != NULL && sni[0] == '\0')
        sni = NULL;
    err = tls_sess_addr_text(dst, dstlen, addr, sizeof(addr));
    if (err)
        return err;
    if (tls_sess_key_make(l->_key, sizeof(l->_key), verify_host, port, sni, addr) != 0)
        return 0; /* not cacheable: the link files and offers nothing */
    if (verify_host != NULL &&
        tls_sess_wild_key_make(l->_wild_key, sizeof(l->_wild_key), verified, verify_host, port,
                               sni, addr))
        l->_wild = TLS_SESS_WILD_CHECK;
    return 0;
}

/* link_pick returns a new reference to the session to offer, or NULL. */
static SSL_SESSION *link_pick(struct tls_sess_link *l, const char *verify_host)
{
    SSL_SESSION *sess = NULL;

    if (l->_cache == NULL)
        return NULL;
    if (l->_key[0] != '\0')
        sess = tls_sess_take(l->_cache, l->_key);
    if (sess == NULL && l->_wild_key[0] != '\0' && verify_host != NULL) {
        sess = tls_sess_take_wildcard(l->_cache, l->_wild_key, verify_host);
        if (sess != NULL)
            l->_wild = TLS_SESS_WILD_OFFERED;
        l->_wild_offered = sess != NULL;
    }
    return sess;
}

int tls_sess_link_offer(struct tls_sess_link *l, SSL *ssl, const char *verify_host)
{
    SSL_SESSION *sess = link_pick(l, verify_host);
    int ok;

    if (sess == NULL)
        return 0;
    ok = SSL_set_session(ssl, sess);
    SSL_SESSION_free(sess); /* the SSL holds its own reference */
    if (ok != 1) {
        ERR_clear_error();
        return -ENOMEM;
    }
    return 0;
}

/* wild_decide says whether the sessions of `ssl` go under the wildcard key too. A full
 * handshake (verified: eligible links are never -k) decides from the leaf: does it name
 * "*.D" exactly? A handshake resumed from the wildcard entry keeps the certificate
 * tls_sess_take_wildcard checked; one resumed from the exact entry is left alone (its first
 * full handshake filed the wildcard entry already), so that warm connections never parse
 * the leaf. */
static enum tls_sess_wild wild_decide(const struct tls_sess_link *l, const SSL *ssl,
                                      const SSL_SESSION *sess)
{
    const char *bar = strchr(l->_wild_key, '|');

    if (SSL_session_reused(ssl) == 1)
        return l->_wild == TLS_SESS_WILD_OFFERED ? TLS_SESS_WILD_YES : TLS_SESS_WILD_NO;
    if (bar == NULL)
        return TLS_SESS_WILD_NO;
    return tls_sess_has_dns_name(sess, l->_wild_key, (size_t)(bar - l->_wild_key))
               ? TLS_SESS_WILD_YES
               : TLS_SESS_WILD_NO;
}

bool tls_sess_link_file(struct tls_sess_link *l, const SSL *ssl, SSL_SESSION *sess)
{
    if (l->_cache == NULL || l->_key[0] == '\0')
        return false;
    if (l->_wild == TLS_SESS_WILD_CHECK || l->_wild == TLS_SESS_WILD_OFFERED)
        l->_wild = wild_decide(l, ssl, sess);
    if (l->_wild == TLS_SESS_WILD_YES) {
        SSL_SESSION_up_ref(sess);
        tls_sess_put(l->_cache, l->_wild_key, sess);
    }
    tls_sess_put(l->_cache, l->_key, sess);
    return true;
}

bool tls_sess_link_is_across_names(const struct tls_sess_link *l)
{
    return l->_wild_offered;
}
