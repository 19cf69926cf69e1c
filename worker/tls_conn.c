/* tls_conn.c - one SSL over bounded ciphertext staging: its lifecycle, the handshake, the
 * ClientHello pause, the forged chain, ALPN mirror, upstream verification, and the one place
 * BoringSSL errors become -errno + reason. The staging BIO, read and write are tls_conn_io.c's,
 * the peer certificate's names tls_conn_peer.c's. Upstream sessions are tls_sess.c's: this file
 * only hands them over (new-session callback, offer at init). Never touches a socket;
 * allocates only in the init functions and inside BoringSSL. */
#include "worker/tls_conn.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pool.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "shared/target_parse.h"
#include "worker/tls_conn_internal.h"

static const char *const tls_conn_state_names[TLS_CONN_STATE_COUNT] = {
    [TLS_CONN_STATE_HANDSHAKE] = "handshake", [TLS_CONN_STATE_PAUSED] = "paused",
    [TLS_CONN_STATE_OPEN] = "open",           [TLS_CONN_STATE_CLOSED] = "closed",
    [TLS_CONN_STATE_FAILED] = "failed",
};

const char *tls_conn_state_name(enum tls_conn_state s)
{
    if ((unsigned)s >= TLS_CONN_STATE_COUNT)
        return "?";
    return tls_conn_state_names[s];
}

enum tls_conn_state tls_conn_state(const struct tls_conn *c)
{
    return c->_state;
}

/* ---- server callbacks ----------------------------------------------------------------- */

/* hello_capture copies the SNI and the ALPN list of the ClientHello into `c`. Returns false
 * when the SNI is not a printable name (the handshake is then refused). */
static bool hello_capture(struct tls_conn *c, const SSL_CLIENT_HELLO *ch)
{
    const char *sni = SSL_get_servername(ch->ssl, TLSEXT_NAMETYPE_host_name);
    const uint8_t *ext, *proto;
    size_t ext_len, list_len, off, l;

    c->_sni[0] = '\0';
    if (sni != NULL) {
        size_t n = strlen(sni);

        /* RFC 6066 §3: a DNS host name without the trailing dot. One trailing dot is dropped
         * (the same host); any other SNI would never get a forged certificate, so the
         * handshake is refused now rather than after an upstream connection. */
        if (n > 0 && sni[n - 1] == '.')
            n--;
        if (n == 0 || n >= sizeof(c->_sni) || !target_host_is_valid(sni, n))
            return false;
        memcpy(c->_sni, sni, n);
        c->_sni[n] = '\0';
    }
    c->_alpn_offer_len = 0;
    if (SSL_early_callback_ctx_extension_get(ch, TLSEXT_TYPE_application_layer_protocol_negotiation,
                                             &ext, &ext_len) != 1)
        return true;
    /* RFC 7301 §3.1: uint16 list length, then non-empty uint8-prefixed names. A malformed
     * list is left for BoringSSL to reject; we keep only the whole entries that fit. */
    if (ext_len < 2)
        return true;
    list_len = (size_t)ext[0] << 8 | ext[1];
    if (list_len != ext_len - 2)
        return true;
    ext += 2;
    off = 0;
    while (tls_ctx_alpn_next(ext, list_len, &off, &proto, &l)) {
        if (1 + l > sizeof(c->_alpn_offer) - c->_alpn_offer_len)
            break;
        memcpy(c->_alpn_offer + c->_alpn_offer_len, proto - 1, 1 + l);
        c->_alpn_offer_len += 1 + l;
    }
    return true;
}

/* select_cert_cb runs when the ClientHello is complete and again on every later
 * SSL_do_handshake until it lets the handshake go on: it pauses (ssl_select_cert_retry)
 * until tls_conn_set_chain has given the forged chain. */
static enum ssl_select_cert_result_t select_cert_cb(const SSL_CLIENT_HELLO *ch)
{
    struct tls_conn *c = SSL_get_app_data(ch->ssl);

    if (c == NULL)
        return ssl_select_cert_error;
    if (c->_chain_set)
        return ssl_select_cert_success;
    if (c->_state == TLS_CONN_STATE_HANDSHAKE) {
        if (!hello_capture(c, ch))
            return ssl_select_cert_error;
        tls_conn_set_state(c, TLS_CONN_STATE_PAUSED);
    }
    return ssl_select_cert_retry;
}

/* alpn_select_cb selects for the client the protocol the upstream negotiated, when the
 * client offered it; otherwise no ALPN (the client then speaks HTTP/1.1). */
static int alpn_select_cb(SSL *ssl, const uint8_t **out, uint8_t *out_len, const uint8_t *in,
                          unsigned in_len, void *arg)
{
    struct tls_conn *c = SSL_get_app_data(ssl);
    const uint8_t *proto;
    size_t want, off = 0, l;

    if (c == NULL || c->_alpn_choice[0] == '\0')
        return SSL_TLSEXT_ERR_NOACK;
    want = strlen(c->_alpn_choice);
    while (tls_ctx_alpn_next(in, in_len, &off, &proto, &l))
        if (l == want && memcmp(proto, c->_alpn_choice, l) == 0) {
            *out = proto;
            *out_len = (uint8_t)l;
            return SSL_TLSEXT_ERR_OK;
        }
    return SSL_TLSEXT_ERR_NOACK;
}

void tls_conn_install_server_callbacks(SSL_CTX *ctx)
{
    SSL_CTX_set_select_certificate_cb(ctx, select_cert_cb);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, NULL);
}

/* ---- client callbacks ----------------------------------------------------------------- */

/* new_session_cb hands a session the upstream gave us to the connection's session link,
 * which files it (tls_sess_link_file). */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_conn *c = SSL_get_app_data(ssl);

    if (c == NULL || c->_role != TLS_CONN_ROLE_CLIENT)
        return 0;
    return tls_sess_link_file(&c->_sess, ssl, sess) ? 1 : 0; /* 1: it took the reference */
}

void tls_conn_install_client_callbacks(SSL_CTX *ctx)
{
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

/* conn_init_common allocates the staging and the SSL from `ssl_ctx` and wires the BIO. */
static int conn_init_common(struct tls_conn *c, struct tls_ctx *t, SSL_CTX *ssl_ctx,
                            enum tls_conn_role role)
{
    struct buf *ext_in = c->_ext_in, *ext_out = c->_ext_out;
    const bool *ext_pinned = c->_ext_pinned;
    BIO *bio;

    memset(c, 0, sizeof(*c));
    c->_ctx = t;
    c->_role = role;
    c->_ext_in = ext_in;
    c->_ext_out = ext_out;
    c->_ext_pinned = ext_pinned;
    if (ext_in != NULL) {
        c->_ib = ext_in;
        c->_ob = ext_out;
    } else {
        c->_mem = malloc(TLS_CONN_STAGING_SIZE);
        if (c->_mem == NULL)
            return -ENOMEM;
        buf_init(&c->_in, c->_mem, TLS_CONN_IN_CAP);
        buf_init(&c->_out, c->_mem + TLS_CONN_IN_CAP, TLS_CONN_OUT_CAP);
        c->_ib = &c->_in;
        c->_ob = &c->_out;
    }
    c->_ssl = SSL_new(ssl_ctx);
    if (c->_ssl == NULL)
        goto out_free_mem;
    bio = BIO_new(t->_bio_method);
    if (bio == NULL)
        goto out_free_ssl;
    BIO_set_data(bio, c);
    SSL_set_bio(c->_ssl, bio, bio); /* one reference for both directions */
    if (SSL_set_app_data(c->_ssl, c) != 1)
        goto out_free_ssl;
    /* Drop the handshake configuration (chain, verify params) once it is done. */
    SSL_set_shed_handshake_config(c->_ssl, 1);
    return 0;
out_free_ssl:
    SSL_free(c->_ssl);
    c->_ssl = NULL;
out_free_mem:
    free(c->_mem);
    c->_mem = NULL;
    c->_ib = c->_ob = NULL;
    ERR_clear_error();
    return -ENOMEM;
}

int tls_conn_init_server(struct tls_conn *c, struct tls_ctx *t)
{
    int err = conn_init_common(c, t, t->_server, TLS_CONN_ROLE_SERVER);

    if (err)
        return err;
    SSL_set_accept_state(c->_ssl);
    return 0;
}

/* host_ip_literal copies `host` without IPv6 brackets into `out` and is true when it is a
 * numeric IPv4 or IPv6 address. */
static bool host_ip_literal(const char *host, char *out, size_t cap)
{
    size_t n = strlen(host);
    unsigned char addr[16];

    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n >= cap)
        return false;
    memcpy(out, host, n);
    out[n] = '\0';
    return inet_pton(AF_INET, out, addr) == 1 || inet_pton(AF_INET6, out, addr) == 1;
}

/* client_set_verify makes the handshake require a certificate for `host`. */
static int client_set_verify(struct tls_conn *c, const char *host)
{
    X509_VERIFY_PARAM *param = SSL_get0_param(c->_ssl);
    char ip[TLS_CONN_NAME_MAX];

    if (param == NULL)
        return -ENOMEM;
    if (host_ip_literal(host, ip, sizeof(ip)))
        return X509_VERIFY_PARAM_set1_ip_asc(param, ip) == 1 ? 0 : -EINVAL;
    return X509_VERIFY_PARAM_set1_host(param, host, strlen(host)) == 1 ? 0 : -EINVAL;
}

/* client_set_cert gives the client SSL of `c` the client_certs entry for `host`, if any: it is
 * sent only when the upstream asks (CertificateRequest). Returns 0 or -ENOMEM. */
static int client_set_cert(struct tls_conn *c, const char *host)
{
    const struct certstore_entry *e;

    if (!c->_ctx->_has_client_certs)
        return 0;
    e = certstore_match_client(&c->_ctx->certs, host);
    if (e == NULL)
        return 0;
    if (SSL_set_chain_and_key(c->_ssl, e->chain, e->n_chain, e->key, NULL) != 1) {
        ERR_clear_error();
        return -ENOMEM;
    }
    c->_client_cert = true;
    return 0;
}

int tls_conn_init_client_addr(struct tls_conn *c, struct tls_ctx *t, const char *sni,
                              const char *verify_host, uint16_t port, const uint8_t *alpn,
                              size_t alpn_len, const struct sockaddr *dst, socklen_t dstlen)
{
    uint8_t offer[TLS_CTX_ALPN_MAX];
    char ip[TLS_CONN_NAME_MAX];
    size_t offer_len;
    int err;

    if (sni != NULL && sni[0] == '\0')
        sni = NULL;
    if (verify_host == NULL || verify_host[0] == '\0')
        verify_host = sni;
    if (sni != NULL && strlen(sni) >= TLS_CONN_NAME_MAX)
        return -EINVAL;
    if (verify_host != NULL && strlen(verify_host) >= TLS_CONN_NAME_MAX)
        return -EINVAL;
    if (verify_host == NULL && !t->_insecure)
        return -EINVAL;
    err = conn_init_common(c, t, t->_client, TLS_CONN_ROLE_CLIENT);
    if (err)
        return err;
    SSL_set_connect_state(c->_ssl);
    /* RFC 6066 §3: literal IP addresses are not permitted in server_name. */
    if (sni != NULL && !host_ip_literal(sni, ip, sizeof(ip))) {
        if (SSL_set_tlsext_host_name(c->_ssl, sni) != 1) {
            err = -EINVAL;
            goto out_dispose;
        }
        memcpy(c->_sni, sni, strlen(sni) + 1);
    }
    if (!t->_insecure) {
        err = client_set_verify(c, verify_host);
        if (err)
            goto out_dispose;
    }
    offer_len = tls_ctx_alpn_filter(t, alpn, alpn_len, offer, sizeof(offer));
    if (offer_len > 0 && SSL_set_alpn_protos(c->_ssl, offer, (unsigned)offer_len) != 0) {
        err = -ENOMEM;
        goto out_dispose;
    }
    /* client_certs (mitmproxy: the file, or DIR/<SNI or address>.pem) */
    err = client_set_cert(c, sni != NULL ? sni : verify_host);
    if (err)
        goto out_dispose;
    /* Keyed by the SNI actually sent (none for an IP literal). */
    /* A session carries the client certificate it was made with: with client_certs=DIR the
     * names of one "*.D" certificate may have different ones, so no session crosses names. */
    err = tls_sess_link_init(&c->_sess, &t->sess, !t->_insecure && !t->_client_certs_by_host,
                             c->_sni, verify_host, port, dst, dstlen);
    if (err)
        goto out_dispose;
    err = tls_sess_link_offer(&c->_sess, c->_ssl, verify_host);
    if (err)
        goto out_dispose;
    return 0;
out_dispose:
    ERR_clear_error();
    tls_conn_dispose(c);
    return err;
}

int tls_conn_init_client(struct tls_conn *c, struct tls_ctx *t, const char *sni,
                         const char *verify_host, uint16_t port, const uint8_t *alpn,
                         size_t alpn_len)
{
    return tls_conn_init_client_addr(c, t, sni, verify_host, port, alpn, alpn_len, NULL, 0);
}

void tls_conn_set_io(struct tls_conn *c, struct buf *in, struct buf *out, const bool *out_pinned)
{
    c->_ext_in = in;
    c->_ext_out = out;
    c->_ext_pinned = out_pinned;
}

void tls_conn_dispose(struct tls_conn *c)
{
    SSL_free(c->_ssl); /* frees the BIO too */
    c->_ssl = NULL;
    free(c->_mem);
    c->_mem = NULL;
    c->_ib = c->_ob = NULL;
    buf_init(&c->_in, NULL, 0);
    buf_init(&c->_out, NULL, 0);
}

/* ---- errors --------------------------------------------------------------------------- */

/* tls_conn_verify_reasons words verification results like OpenSSL 3 and curl do. */
static const struct {
    long v;
    const char *reason;
} tls_conn_verify_reasons[] = {
    {X509_V_ERR_CERT_HAS_EXPIRED, "certificate has expired"},
    {X509_V_ERR_CERT_NOT_YET_VALID, "certificate is not yet valid"},
    {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "self-signed certificate"},
    {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, "self-signed certificate in certificate chain"},
    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "unable to get local issuer certificate"},
    {X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, "unable to verify the first certificate"},
    {X509_V_ERR_HOSTNAME_MISMATCH, "Hostname mismatch"},
    {X509_V_ERR_IP_ADDRESS_MISMATCH, "IP address mismatch"},
    {X509_V_ERR_CERT_REVOKED, "certificate revoked"},
    {X509_V_ERR_INVALID_CA, "invalid CA certificate"},
};

/* verify_reason words a verification result (tls_conn_verify_reasons, else BoringSSL's). */
static const char *verify_reason(long v)
{
    for (size_t i = 0; i < sizeof(tls_conn_verify_reasons) / sizeof(tls_conn_verify_reasons[0]);
         i++)
        if (tls_conn_verify_reasons[i].v == v)
            return tls_conn_verify_reasons[i].reason;
    return X509_verify_cert_error_string(v);
}

/* compose_ssl_error writes "<prefix>: <reason>" for the error queue into c->_why and clears
 * the queue. BoringSSL's reason codes read "WRONG_VERSION_NUMBER"; OpenSSL and curl users
 * know them as "wrong version number". */
static const char *compose_ssl_error(struct tls_conn *c, const char *prefix)
{
    uint32_t e, first = 0, last_ssl = 0, pick;
    const char *r;
    char reason[96];
    size_t i;

    while ((e = ERR_get_error()) != 0) {
        if (first == 0)
            first = e;
        if (ERR_GET_LIB(e) == ERR_LIB_SSL)
            last_ssl = e;
    }
    pick = last_ssl != 0 ? last_ssl : first;
    if (c->_role == TLS_CONN_ROLE_CLIENT && ERR_GET_LIB(pick) == ERR_LIB_SSL &&
        ERR_GET_REASON(pick) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        long v = SSL_get_verify_result(c->_ssl);

        snprintf(c->_why, sizeof(c->_why), "certificate verify failed: %s",
                 v != X509_V_OK ? verify_reason(v) : "unknown reason");
        return c->_why;
    }
    r = pick != 0 ? ERR_reason_error_string(pick) : NULL;
    if (r == NULL) {
        snprintf(reason, sizeof(reason), "error %08x", (unsigned)pick);
    } else {
        for (i = 0; r[i] != '\0' && i < sizeof(reason) - 1; i++)
            reason[i] = r[i] == '_' ? ' ' : (char)tolower((unsigned char)r[i]);
        reason[i] = '\0';
    }
    snprintf(c->_why, sizeof(c->_why), "%s: %s", prefix, reason);
    return c->_why;
}

int tls_conn_classify(struct tls_conn *c, int ret, const char **why)
{
    const char *ignored;
    int e = SSL_get_error(c->_ssl, ret);

    if (why == NULL)
        why = &ignored;
    switch (e) {
    case SSL_ERROR_NONE:
        return 0;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return -EAGAIN;
    case SSL_ERROR_PENDING_CERTIFICATE:
        return -EINPROGRESS;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        return -ESHUTDOWN;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0)
            return -ECONNRESET; /* the staging BIO reported EOF */
        /* fall through */
    case SSL_ERROR_SSL:
        *why = compose_ssl_error(c, c->_state == TLS_CONN_STATE_HANDSHAKE ||
                                            c->_state == TLS_CONN_STATE_PAUSED
                                        ? "tls handshake failed"
                                        : "tls error");
        return -EPROTO;
    default:
        ERR_clear_error();
        snprintf(c->_why, sizeof(c->_why), "tls error: unexpected SSL_get_error %d", e);
        *why = c->_why;
        return -EPROTO;
    }
}

/* tls_conn_fail records a fatal error and hands its reason to the caller. */
int tls_conn_fail(struct tls_conn *c, const char *reason, const char **why)
{
    if (reason != c->_why)
        snprintf(c->_why, sizeof(c->_why), "%s", reason);
    tls_conn_set_state(c, TLS_CONN_STATE_FAILED);
    if (why != NULL)
        *why = c->_why;
    return -EPROTO;
}

/* ---- handshake, read, write ----------------------------------------------------------- */

int tls_conn_handshake(struct tls_conn *c, const char **why)
{
    const char *reason = NULL;
    int ret, err;

    if (c->_ssl == NULL)
        return -EINVAL;
    switch (c->_state) {
    case TLS_CONN_STATE_OPEN:
    case TLS_CONN_STATE_CLOSED:
        return 0;
    case TLS_CONN_STATE_FAILED:
        if (why != NULL)
            *why = c->_why;
        return -EPROTO;
    default:
        break;
    }
    /* No ERR_clear_error here or before SSL_read/SSL_write: each of them starts by clearing
     * the thread's error queue (BoringSSL ssl_reset_error_state), so tls_conn_classify
     * sees only this call's errors; a second clear costs ~300 instructions per call. */
    ret = SSL_do_handshake(c->_ssl);
    if (ret == 1) {
        tls_conn_set_state(c, TLS_CONN_STATE_OPEN);
        return 0;
    }
    err = tls_conn_classify(c, ret, &reason);
    switch (err) {
    case -EAGAIN:
        return -EAGAIN;
    case -EINPROGRESS:
        return -EINPROGRESS;
    case -ESHUTDOWN:
    case -ECONNRESET:
        return tls_conn_fail(c, "connection closed during TLS handshake", why);
    default:
        return tls_conn_fail(c, reason != NULL ? reason : "tls handshake failed", why);
    }
}

int tls_conn_set_chain(struct tls_conn *c, const uint8_t *leaf_der, size_t leaf_len)
{
    return tls_conn_set_chain_extra(c, leaf_der, leaf_len, NULL);
}

int tls_conn_set_chain_extra(struct tls_conn *c, const uint8_t *leaf_der, size_t leaf_len,
                             const struct tls_conn *peer)
{
    struct tls_ctx *t = c->_ctx;
    CRYPTO_BUFFER *chain[2 + TLS_CONN_EXTRA_MAX];
    const STACK_OF(CRYPTO_BUFFER) *up = NULL;
    size_t n = 0;
    int ok;

    if (c->_role != TLS_CONN_ROLE_SERVER || c->_state != TLS_CONN_STATE_PAUSED ||
        leaf_der == NULL || leaf_len == 0)
        return -EINVAL;
    chain[n] = CRYPTO_BUFFER_new(leaf_der, leaf_len, t->_pool);
    if (chain[n] == NULL)
        return -ENOMEM;
    n++;
    if (t->_ca != NULL)
        chain[n++] = t->_ca;
    if (peer != NULL && peer->_ssl != NULL)
        up = SSL_get0_peer_certificates(peer->_ssl);
    for (size_t i = 0; up != NULL && i < sk_CRYPTO_BUFFER_num(up) && i < TLS_CONN_EXTRA_MAX; i++)
        chain[n++] = sk_CRYPTO_BUFFER_value(up, i); /* SSL_set_chain_and_key takes its refs */
    ERR_clear_error();
    ok = SSL_set_chain_and_key(c->_ssl, chain, n, t->_leaf_key, NULL);
    CRYPTO_BUFFER_free(chain[0]); /* the SSL holds its own reference */
    if (ok != 1) {
        ERR_clear_error();
        return -EPROTO;
    }
    c->_chain_set = true;
    tls_conn_set_state(c, TLS_CONN_STATE_HANDSHAKE);
    return 0;
}

int tls_conn_set_user_chain(struct tls_conn *c, const char *const *names, size_t n)
{
    const char *first[1] = {c->_sni};
    const struct certstore_entry *e;
    int ok;

    if (c->_role != TLS_CONN_ROLE_SERVER || c->_state != TLS_CONN_STATE_PAUSED)
        return -EINVAL;
    if (!c->_ctx->_has_server_certs)
        return -ENOENT;
    /* the name the client asked for decides first, then the upstream's names */
    e = certstore_match_server(&c->_ctx->certs, first, 1);
    if (e == NULL)
        e = certstore_match_server(&c->_ctx->certs, names, n);
    if (e == NULL)
        return -ENOENT;
    ERR_clear_error();
    ok = SSL_set_chain_and_key(c->_ssl, e->chain, e->n_chain, e->key, NULL);
    if (ok != 1) {
        ERR_clear_error();
        return -EPROTO;
    }
    c->_chain_set = true;
    c->_user_chain = true;
    tls_conn_set_state(c, TLS_CONN_STATE_HANDSHAKE);
    return 0;
}

bool tls_conn_is_user_chain(const struct tls_conn *c)
{
    return c->_user_chain;
}

bool tls_conn_is_client_cert_set(const struct tls_conn *c)
{
    return c->_client_cert;
}

void tls_conn_set_alpn_choice(struct tls_conn *c, const char *proto)
{
    size_t n = proto != NULL ? strlen(proto) : 0;

    if (n >= sizeof(c->_alpn_choice))
        n = 0;
    memcpy(c->_alpn_choice, proto != NULL ? proto : "", n);
    c->_alpn_choice[n] = '\0';
}


/* ---- accessors ------------------------------------------------------------------------ */

const char *tls_conn_sni(const struct tls_conn *c)
{
    return c->_sni;
}

const uint8_t *tls_conn_alpn_offers(const struct tls_conn *c, size_t *len)
{
    *len = c->_alpn_offer_len;
    return c->_alpn_offer;
}

size_t tls_conn_alpn(const struct tls_conn *c, char *out, size_t cap)
{
    const uint8_t *p = NULL;
    unsigned n = 0;

    if (cap == 0)
        return 0;
    out[0] = '\0';
    if (c->_ssl == NULL)
        return 0;
    SSL_get0_alpn_selected(c->_ssl, &p, &n);
    if (p == NULL || n == 0 || n >= cap)
        return 0;
    memcpy(out, p, n);
    out[n] = '\0';
    return n;
}

const char *tls_conn_version(const struct tls_conn *c)
{
    if (c->_ssl == NULL || (c->_state != TLS_CONN_STATE_OPEN && c->_state != TLS_CONN_STATE_CLOSED))
        return "";
    return SSL_get_version(c->_ssl);
}

bool tls_conn_is_session_reused(const struct tls_conn *c)
{
    return c->_ssl != NULL && SSL_session_reused(c->_ssl) == 1;
}

bool tls_conn_is_resumed_across_names(const struct tls_conn *c)
{
    return tls_sess_link_is_across_names(&c->_sess) && tls_conn_is_session_reused(c);
}

bool tls_conn_is_clean_close(const struct tls_conn *c)
{
    return c->_clean_close;
}
