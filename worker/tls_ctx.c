/* tls_ctx.c - builds the per-worker server and client SSL_CTXs once. The callbacks that need
 * a connection (ClientHello pause, ALPN choice, new session) live in tls_conn.c and are
 * installed through tls_conn_internal.h; the upstream session cache is tls_sess.c's. Never
 * touches a socket; file reads happen only in tls_ctx_init. */
#include "worker/tls_ctx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/pool.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "worker/tls_conn_internal.h"

/* TLS_CTX_SERVER_SESS_CACHE bounds BoringSSL's internal cache of server sessions (TLS 1.2
 * session IDs); tickets need no server state. */
#define TLS_CTX_SERVER_SESS_CACHE 1024

bool tls_ctx_alpn_next(const uint8_t *p, size_t n, size_t *off, const uint8_t **proto,
                       size_t *len)
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
        if (!tls_ctx_alpn_next(p, n, &off, &proto, &len))
            return false;
    return true;
}

/* alpn_contains is true when the wire list `p`/`n` holds `proto`/`len`. */
static bool alpn_contains(const uint8_t *p, size_t n, const uint8_t *proto, size_t len)
{
    size_t off = 0, l;
    const uint8_t *q;

    while (tls_ctx_alpn_next(p, n, &off, &q, &l))
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
    while (tls_ctx_alpn_next(offer, offer_len, &off, &proto, &len)) {
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

/* ctx_set_versions limits `ctx` to the versions from `min` to `max` (0 = TLS 1.2 and TLS 1.3).
 * Returns 0 or -EINVAL (a version BoringSSL does not know, or min above max). */
static int ctx_set_versions(SSL_CTX *ctx, uint16_t min, uint16_t max)
{
    min = min != 0 ? min : TLS1_2_VERSION;
    max = max != 0 ? max : TLS1_3_VERSION;
    if (min > max || SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, max) != 1)
        return -EINVAL;
    return 0;
}

/* ctx_set_ciphers sets the TLS 1.2 cipher list of `ctx` to `list` (NULL =
 * TLS_CTX_CIPHERS_DEFAULT). Strict: an unknown name is an error, not skipped. */
static int ctx_set_ciphers(SSL_CTX *ctx, const char *list, const char *what, const char **why)
{
    if (SSL_CTX_set_strict_cipher_list(ctx, list != NULL ? list : TLS_CTX_CIPHERS_DEFAULT) != 1) {
        *why = what;
        return -EINVAL;
    }
    return 0;
}

/* ctx_init_server builds the context that faces clients. No X509 code: chains are
 * CRYPTO_BUFFERs set per connection once the forged leaf is known. */
static int ctx_init_server(struct tls_ctx *t, const struct tls_ctx_opts *o, const char **why)
{
    int err;

    t->_server = SSL_CTX_new(TLS_with_buffers_method());
    if (t->_server == NULL) {
        *why = "cannot create the server TLS context";
        return -ENOMEM;
    }
    if (ctx_set_versions(t->_server, o->version_client_min, o->version_client_max) != 0) {
        *why = "bad tls_version_client_min/max (minimum above maximum)";
        return -EINVAL;
    }
    err = ctx_set_ciphers(t->_server, o->ciphers_client,
                          "bad ciphers_client list (unknown cipher, or none left)", why);
    if (err)
        return err;
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

/* TLS_CTX_BUNDLE_MAX bounds the certificate bundle a worker reads. */
#define TLS_CTX_BUNDLE_MAX ((size_t)64 << 20)

/* ctx_load_certs reads the master's certificate bundle (a sealed memfd, /dev/fd/N) into
 * t->certs. The bytes hold private keys: wiped once decoded. */
static int ctx_load_certs(struct tls_ctx *t, const char *path, const char **why)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

    if (fd == -1 || fstat(fd, &st) == -1 || st.st_size <= 0 ||
        (size_t)st.st_size > TLS_CTX_BUNDLE_MAX) {
        *why = "cannot read the certificate bundle";
        err = -EINVAL;
        goto out_close;
    }
    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        *why = "out of memory";
        err = -ENOMEM;
        goto out_close;
    }
    /* pread from 0: the open file is shared with sibling workers (one file offset) */
    while (len < (size_t)st.st_size) {
        ssize_t r = pread(fd, buf + len, (size_t)st.st_size - len, (off_t)len);

        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0) {
            *why = "cannot read the certificate bundle";
            err = -EINVAL;
            goto out_close;
        }
        len += (size_t)r;
    }
    err = certstore_decode(&t->certs, buf, len, why);
    if (err == -ENOSPC)
        err = -EINVAL;
out_close:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, len);
        free(buf);
    }
    if (fd != -1)
        close(fd);
    return err;
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
    if (ctx_set_versions(t->_client, o->version_server_min, o->version_server_max) != 0) {
        *why = "bad tls_version_server_min/max (minimum above maximum)";
        return -EINVAL;
    }
    err = ctx_set_ciphers(t->_client, o->ciphers_server,
                          "bad ciphers_server list (unknown cipher, or none left)", why);
    if (err)
        return err;
    SSL_CTX_set_mode(t->_client, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Upstream certificates share one buffer per distinct DER: a leaf seen before is found in
     * the peer cache (tls_peer_cache.h) after a full handshake too, and is held once. */
    SSL_CTX_set0_buffer_pool(t->_client, t->_pool);
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
    /* Our own cache (tls_sess.c) keyed by host, port, SNI and address (and a wildcard key for
     * "*.D" certificates); BoringSSL's internal client cache would not know which upstream
     * a session belongs to. */
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
    err = tls_sess_cache_init(&t->sess, TLS_SESS_CACHE_SIZE);
    if (err) {
        *why = "out of memory";
        goto out_dispose;
    }
    err = tls_peer_cache_init(&t->peer);
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
    if (o->certs_bundle_file != NULL) {
        err = ctx_load_certs(t, o->certs_bundle_file, why);
        if (err)
            goto out_dispose;
        for (size_t i = 0; i < t->certs.n; i++)
            if (t->certs.e[i].kind == CERTSTORE_CLIENT && t->certs.e[i].name[0] != '\0')
                t->_client_certs_by_host = true;
        t->_has_server_certs = certstore_has_kind(&t->certs, CERTSTORE_SERVER);
        t->_has_client_certs = certstore_has_kind(&t->certs, CERTSTORE_CLIENT);
    }
    ERR_clear_error();
    return 0;
out_dispose:
    ERR_clear_error();
    tls_ctx_dispose(t);
    return err;
}

void tls_ctx_dispose(struct tls_ctx *t)
{
    tls_sess_cache_dispose(&t->sess);
    tls_peer_cache_dispose(&t->peer);
    certstore_dispose(&t->certs);
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
