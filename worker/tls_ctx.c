/* tls_ctx.c - builds the per-worker server and client SSL_CTXs once, and keeps the bounded
 * upstream session cache (exact and wildcard keys, see tls_ctx.h). The callbacks that need
 * a connection (ClientHello pause, ALPN choice, new session) live in tls_conn.c and are
 * installed through tls_conn_internal.h. Never touches a socket; file reads happen only in
 * tls_ctx_init. */
#include "worker/tls_ctx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pool.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "shared/shorthash.h"
#include "worker/tls_conn_internal.h"

/* TLS_CTX_SERVER_SESS_CACHE bounds BoringSSL's internal cache of server sessions (TLS 1.2
 * session IDs); tickets need no server state. */
#define TLS_CTX_SERVER_SESS_CACHE 1024

_Static_assert(sizeof(((struct tls_ctx *)0)->_sess_hash_key) == crypto_shorthash_KEYBYTES,
               "the session cache's hash key is a crypto_shorthash key");
_Static_assert((TLS_CTX_SESS_BUCKETS & (TLS_CTX_SESS_BUCKETS - 1)) == 0,
               "TLS_CTX_SESS_BUCKETS is a power of two");
_Static_assert(TLS_CTX_SESS_CACHE_SIZE < TLS_CTX_SESS_NONE, "entry indexes fit in uint32_t");

/* alpn_next reads the protocol at `*off` of the wire list `p`/`n`. Returns true and sets
 * `*proto`/`*len` (and advances `*off`) when a well-formed, non-empty entry is there. */
static bool alpn_next(const uint8_t *p, size_t n, size_t *off, const uint8_t **proto, size_t *len)
{
    size_t l;

    if (*off >= n)
        return false;
    l = p[*off];
    if (l == 0 || l > n - *off - 1)
        return false;
    *proto = p + *off + 1;
    *len = l;
    *off += 1 + l;
    return true;
}

/* alpn_is_valid is true when `p`/`n` is a complete, non-empty wire-format list. */
static bool alpn_is_valid(const uint8_t *p, size_t n)
{
    size_t off = 0, len;
    const uint8_t *proto;

    if (n == 0)
        return false;
    while (off < n)
        if (!alpn_next(p, n, &off, &proto, &len))
            return false;
    return true;
}

/* alpn_contains is true when the wire list `p`/`n` holds `proto`/`len`. */
static bool alpn_contains(const uint8_t *p, size_t n, const uint8_t *proto, size_t len)
{
    size_t off = 0, l;
    const uint8_t *q;

    while (alpn_next(p, n, &off, &q, &l))
        if (l == len && memcmp(q, proto, len) == 0)
            return true;
    return false;
}

size_t tls_ctx_alpn_filter(const struct tls_ctx *t, const uint8_t *offer, size_t offer_len,
                           uint8_t *out, size_t cap)
{
    size_t off = 0, len, w = 0;
    const uint8_t *proto;

    if (offer == NULL || !alpn_is_valid(offer, offer_len))
        return 0;
    while (alpn_next(offer, offer_len, &off, &proto, &len)) {
        if (!alpn_contains(t->_alpn_allowed, t->_alpn_allowed_len, proto, len))
            continue;
        if (alpn_contains(out, w, proto, len)) /* offered twice: keep the first */
            continue;
        if (cap - w < 1 + len)
            break;
        out[w] = (uint8_t)len;
        memcpy(out + w + 1, proto, len);
        w += 1 + len;
    }
    return w;
}

/* ctx_set_versions limits `ctx` to TLS 1.2 and 1.3. Returns 0 or -EINVAL. */
static int ctx_set_versions(SSL_CTX *ctx)
{
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
        return -EINVAL;
    return 0;
}

/* ctx_init_server builds the context that faces clients. No X509 code: chains are
 * CRYPTO_BUFFERs set per connection once the forged leaf is known. */
static int ctx_init_server(struct tls_ctx *t, const struct tls_ctx_opts *o, const char **why)
{
    t->_server = SSL_CTX_new(TLS_with_buffers_method());
    if (t->_server == NULL) {
        *why = "cannot create the server TLS context";
        return -ENOMEM;
    }
    if (ctx_set_versions(t->_server) != 0) {
        *why = "cannot limit the server TLS versions";
        return -EINVAL;
    }
    SSL_CTX_set_mode(t->_server, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    tls_conn_install_server_callbacks(t->_server);
    /* Stateless tickets let clients resume with mitmd; one ticket per handshake is enough
     * for a client that opens connections one after another. */
    SSL_CTX_set_session_cache_mode(t->_server, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(t->_server, TLS_CTX_SERVER_SESS_CACHE);
    if (SSL_CTX_set_num_tickets(t->_server, 1) != 1) {
        *why = "cannot configure session tickets";
        return -EINVAL;
    }
    if (o->ticket_key != NULL &&
        SSL_CTX_set_tlsext_ticket_keys(t->_server, o->ticket_key, TLS_CTX_TICKET_KEY_LEN) != 1) {
        *why = "cannot set the session ticket key";
        return -EINVAL;
    }
    return 0;
}

/* ctx_load_roots adds the trust anchors of PEM file `path` to the client context. */
static int ctx_load_roots(struct tls_ctx *t, const char *path, const char *what, const char **why)
{
    if (SSL_CTX_load_verify_locations(t->_client, path, NULL) != 1) {
        *why = what;
        return -EINVAL;
    }
    return 0;
}

/* ctx_init_client builds the context that faces upstreams: verification against the
 * roots loaded here, once, unless `insecure`. */
static int ctx_init_client(struct tls_ctx *t, const struct tls_ctx_opts *o, const char **why)
{
    const char *sys = o->system_ca_file != NULL ? o->system_ca_file : TLS_CTX_SYSTEM_CA_FILE;
    int err;

    t->_client = SSL_CTX_new(TLS_method());
    if (t->_client == NULL) {
        *why = "cannot create the client TLS context";
        return -ENOMEM;
    }
    if (ctx_set_versions(t->_client) != 0) {
        *why = "cannot limit the client TLS versions";
        return -EINVAL;
    }
    SSL_CTX_set_mode(t->_client, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o->insecure) {
        SSL_CTX_set_verify(t->_client, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(t->_client, SSL_VERIFY_PEER, NULL);
        if (sys[0] != '\0') {
            err = ctx_load_roots(t, sys,
                                 "cannot load the system CA file " TLS_CTX_SYSTEM_CA_FILE
                                 " (or the one given)",
                                 why);
            if (err)
                return err;
        }
        if (o->upstream_ca_file != NULL) {
            err = ctx_load_roots(t, o->upstream_ca_file,
                                 "cannot load --upstream-ca (no PEM certificate in it)", why);
            if (err)
                return err;
        }
        if (sys[0] == '\0' && o->upstream_ca_file == NULL) {
            *why = "no trusted CA for upstream verification (give --upstream-ca or -k)";
            return -EINVAL;
        }
        /* Like curl: a trusted intermediate (or a pinned leaf) in --upstream-ca is enough;
         * the chain need not end at a self-signed root. */
        if (X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(t->_client),
                                        X509_V_FLAG_PARTIAL_CHAIN) != 1) {
            *why = "cannot configure upstream verification";
            return -EINVAL;
        }
    }
    /* Our own cache (tls_ctx_sess_*) keyed by host|port|sni (and *.d|port|*.d for wildcard
     * certificates); BoringSSL's internal client cache would not know which upstream a
     * session belongs to. */
    SSL_CTX_set_session_cache_mode(t->_client, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    tls_conn_install_client_callbacks(t->_client);
    return 0;
}

/* ctx_parse_identity parses the CA certificate (checked to be X.509) and the leaf key. */
static int ctx_parse_identity(struct tls_ctx *t, const struct tls_ctx_opts *o, const char **why)
{
    CBS cbs;

    t->_pool = CRYPTO_BUFFER_POOL_new();
    if (t->_pool == NULL) {
        *why = "out of memory";
        return -ENOMEM;
    }
    if (o->ca_cert_der != NULL && o->ca_cert_der_len > 0) {
        const uint8_t *p = o->ca_cert_der;
        X509 *x = d2i_X509(NULL, &p, (long)o->ca_cert_der_len);

        if (x == NULL || p != o->ca_cert_der + o->ca_cert_der_len) {
            X509_free(x);
            *why = "the CA certificate is not valid DER";
            return -EINVAL;
        }
        X509_free(x);
        t->_ca = CRYPTO_BUFFER_new(o->ca_cert_der, o->ca_cert_der_len, t->_pool);
        if (t->_ca == NULL) {
            *why = "out of memory";
            return -ENOMEM;
        }
    }
    if (o->leaf_key_der == NULL || o->leaf_key_der_len == 0) {
        *why = "no leaf private key";
        return -EINVAL;
    }
    CBS_init(&cbs, o->leaf_key_der, o->leaf_key_der_len);
    t->_leaf_key = EVP_parse_private_key(&cbs);
    if (t->_leaf_key == NULL || CBS_len(&cbs) != 0) {
        *why = "the leaf private key is not valid PKCS#8 DER";
        return -EINVAL;
    }
    return 0;
}

/* sess_cache_init allocates the session cache's entries (untouched until used) and hash
 * index, and picks the hash key. Returns 0 or -ENOMEM. */
static int sess_cache_init(struct tls_ctx *t)
{
    t->_sess = calloc(TLS_CTX_SESS_CACHE_SIZE, sizeof(*t->_sess));
    t->_sess_bucket = calloc(TLS_CTX_SESS_BUCKETS, sizeof(*t->_sess_bucket));
    if (t->_sess == NULL || t->_sess_bucket == NULL)
        return -ENOMEM;
    for (size_t b = 0; b < TLS_CTX_SESS_BUCKETS; b++)
        t->_sess_bucket[b] = TLS_CTX_SESS_NONE;
    t->_sess_used = 0;
    t->_sess_newest = t->_sess_oldest = TLS_CTX_SESS_NONE;
    /* A random key: upstream names come from clients, who must not be able to aim many
     * keys at one bucket. */
    if (RAND_bytes(t->_sess_hash_key, sizeof(t->_sess_hash_key)) != 1)
        return -ENOMEM;
    return 0;
}

int tls_ctx_init(struct tls_ctx *t, const struct tls_ctx_opts *o, const char **why)
{
    const char *ignored;
    int err;

    if (why == NULL)
        why = &ignored;
    memset(t, 0, sizeof(*t));
    ERR_clear_error();
    if (o->alpn_allowed != NULL) {
        if (!alpn_is_valid(o->alpn_allowed, o->alpn_allowed_len) ||
            o->alpn_allowed_len > sizeof(t->_alpn_allowed)) {
            *why = "malformed ALPN protocol list";
            return -EINVAL;
        }
        memcpy(t->_alpn_allowed, o->alpn_allowed, o->alpn_allowed_len);
        t->_alpn_allowed_len = o->alpn_allowed_len;
    } else {
        t->_alpn_allowed_len = sizeof(TLS_CTX_ALPN_DEFAULT) - 1;
        memcpy(t->_alpn_allowed, TLS_CTX_ALPN_DEFAULT, t->_alpn_allowed_len);
    }
    t->_insecure = o->insecure;
    err = sess_cache_init(t);
    if (err) {
        *why = "out of memory";
        goto out_dispose;
    }
    err = ctx_parse_identity(t, o, why);
    if (err)
        goto out_dispose;
    t->_bio_method = tls_conn_bio_method_new();
    if (t->_bio_method == NULL) {
        *why = "out of memory";
        err = -ENOMEM;
        goto out_dispose;
    }
    err = ctx_init_server(t, o, why);
    if (err)
        goto out_dispose;
    err = ctx_init_client(t, o, why);
    if (err)
        goto out_dispose;
    ERR_clear_error();
    return 0;
out_dispose:
    ERR_clear_error();
    tls_ctx_dispose(t);
    return err;
}

void tls_ctx_dispose(struct tls_ctx *t)
{
    for (uint32_t i = 0; t->_sess != NULL && i < t->_sess_used; i++)
        SSL_SESSION_free(t->_sess[i].sess);
    free(t->_sess);
    free(t->_sess_bucket);
    t->_sess = NULL;
    t->_sess_bucket = NULL;
    t->_sess_used = 0;
    SSL_CTX_free(t->_client);
    SSL_CTX_free(t->_server);
    BIO_meth_free(t->_bio_method);
    EVP_PKEY_free(t->_leaf_key);
    CRYPTO_BUFFER_free(t->_ca);
    CRYPTO_BUFFER_POOL_free(t->_pool);
    t->_client = NULL;
    t->_server = NULL;
    t->_bio_method = NULL;
    t->_leaf_key = NULL;
    t->_ca = NULL;
    t->_pool = NULL;
}

/* sess_hash returns the keyed hash (SipHash-2-4) of `key`/`len`. */
static uint64_t sess_hash(const struct tls_ctx *t, const char *key, size_t len)
{
    return shorthash64(key, len, t->_sess_hash_key);
}

static uint32_t *sess_bucket_of(struct tls_ctx *t, uint64_t hash)
{
    return &t->_sess_bucket[hash & (TLS_CTX_SESS_BUCKETS - 1)];
}

/* sess_find returns the index of the entry holding `key` (hash `hash`), or
 * TLS_CTX_SESS_NONE. */
static uint32_t sess_find(struct tls_ctx *t, const char *key, uint64_t hash)
{
    for (uint32_t i = *sess_bucket_of(t, hash); i != TLS_CTX_SESS_NONE; i = t->_sess[i].next)
        if (t->_sess[i].hash == hash && strcmp(t->_sess[i].key, key) == 0)
            return i;
    return TLS_CTX_SESS_NONE;
}

/* sess_lru_unlink takes entry `i` out of the LRU list. */
static void sess_lru_unlink(struct tls_ctx *t, uint32_t i)
{
    struct tls_sess_entry *e = &t->_sess[i];

    if (e->newer != TLS_CTX_SESS_NONE)
        t->_sess[e->newer].older = e->older;
    else
        t->_sess_newest = e->older;
    if (e->older != TLS_CTX_SESS_NONE)
        t->_sess[e->older].newer = e->newer;
    else
        t->_sess_oldest = e->newer;
}

/* sess_lru_push makes entry `i` (not in the list) the most recently used. */
static void sess_lru_push(struct tls_ctx *t, uint32_t i)
{
    struct tls_sess_entry *e = &t->_sess[i];

    e->newer = TLS_CTX_SESS_NONE;
    e->older = t->_sess_newest;
    if (t->_sess_newest != TLS_CTX_SESS_NONE)
        t->_sess[t->_sess_newest].newer = i;
    else
        t->_sess_oldest = i;
    t->_sess_newest = i;
}

/* sess_bucket_unlink takes entry `i` out of its bucket's chain. */
static void sess_bucket_unlink(struct tls_ctx *t, uint32_t i)
{
    uint32_t *link = sess_bucket_of(t, t->_sess[i].hash);

    while (*link != TLS_CTX_SESS_NONE && *link != i)
        link = &t->_sess[*link].next;
    if (*link == i)
        *link = t->_sess[i].next;
}

/* sess_lookup returns the index of the entry for `key`, or TLS_CTX_SESS_NONE. Counts
 * nothing and leaves the LRU order alone. */
static uint32_t sess_lookup(struct tls_ctx *t, const char *key)
{
    size_t klen = strlen(key);

    if (t->_sess == NULL || klen == 0 || klen >= TLS_CTX_SESS_KEY_MAX)
        return TLS_CTX_SESS_NONE;
    return sess_find(t, key, sess_hash(t, key, klen));
}

/* sess_use makes entry `i` the most recently used and returns a new reference to its
 * session. */
static SSL_SESSION *sess_use(struct tls_ctx *t, uint32_t i)
{
    sess_lru_unlink(t, i);
    sess_lru_push(t, i);
    SSL_SESSION_up_ref(t->_sess[i].sess);
    return t->_sess[i].sess;
}

SSL_SESSION *tls_ctx_sess_take(struct tls_ctx *t, const char *key)
{
    uint32_t i = sess_lookup(t, key);

    if (i == TLS_CTX_SESS_NONE) {
        t->sess_misses++;
        return NULL;
    }
    t->sess_hits++;
    return sess_use(t, i);
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

SSL_SESSION *tls_ctx_sess_take_wildcard(struct tls_ctx *t, const char *key, const char *host)
{
    uint32_t i = sess_lookup(t, key);
    X509 *leaf;
    bool ok;

    if (i == TLS_CTX_SESS_NONE)
        return NULL;
    /* Defence in depth: the entry was filed for "*.D", but only the certificate says which
     * names the session may serve (X509_check_host also refuses a wildcard for a label such
     * as "a_b" that the handshake's own verification would refuse). */
    leaf = sess_peer_leaf(t->_sess[i].sess);
    ok = leaf != NULL && X509_check_host(leaf, host, strlen(host), 0, NULL) == 1;
    X509_free(leaf);
    ERR_clear_error();
    if (!ok)
        return NULL;
    t->sess_wildcard_hits++;
    return sess_use(t, i);
}

bool tls_ctx_sess_has_dns_name(const SSL_SESSION *sess, const char *name, size_t len)
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

void tls_ctx_sess_put(struct tls_ctx *t, const char *key, SSL_SESSION *sess)
{
    size_t klen = strlen(key);
    struct tls_sess_entry *e;
    uint64_t hash;
    uint32_t i, *head;

    if (t->_sess == NULL || klen == 0 || klen >= TLS_CTX_SESS_KEY_MAX) {
        SSL_SESSION_free(sess);
        return;
    }
    hash = sess_hash(t, key, klen);
    i = sess_find(t, key, hash);
    if (i != TLS_CTX_SESS_NONE) {
        /* A newer session for the same upstream (TLS 1.3 sends several tickets). */
        e = &t->_sess[i];
        SSL_SESSION_free(e->sess);
        e->sess = sess;
        sess_lru_unlink(t, i);
        sess_lru_push(t, i);
        return;
    }
    if (t->_sess_used < TLS_CTX_SESS_CACHE_SIZE) {
        i = t->_sess_used++;
    } else {
        i = t->_sess_oldest; /* full: reuse the least recently used slot */
        sess_bucket_unlink(t, i);
        sess_lru_unlink(t, i);
        SSL_SESSION_free(t->_sess[i].sess);
        t->sess_evictions++;
    }
    e = &t->_sess[i];
    e->sess = sess;
    e->hash = hash;
    memcpy(e->key, key, klen + 1);
    head = sess_bucket_of(t, hash);
    e->next = *head;
    *head = i;
    sess_lru_push(t, i);
}
