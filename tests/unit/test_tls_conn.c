/* test_tls_conn.c - tls_conn/tls_ctx/tls_peek: a server-role and a client-role tls_conn
 * wired back to back in memory, with a test CA and leaves made here with BoringSSL.
 * Covers the ClientHello pause (SNI + ALPN captured, chain set, handshake resumed), the
 * forged chain verified by the client, the ALPN mirror, exact upstream verification
 * reasons, handshake failures, session resumption through tls_sess (also across the names
 * of a wildcard certificate, never across addresses), bounded output and the SNI peek. The
 * session cache itself is tested in test_tls_sess.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bytestring.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "worker/tls_conn.h"
#include "worker/tls_ctx.h"
#include "worker/tls_peek.h"

#define DAY (24L * 3600)
#define ALPN_H2_H1 "\x02h2\x08http/1.1"

/* ---- certificates --------------------------------------------------------------------- */

static EVP_PKEY *key_new(void)
{
    EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    EVP_PKEY *k = EVP_PKEY_new();

    assert_non_null(ec);
    assert_non_null(k);
    assert_int_equal(EC_KEY_generate_key(ec), 1);
    assert_int_equal(EVP_PKEY_assign_EC_KEY(k, ec), 1);
    return k;
}

struct cert_spec {
    const char *cn;
    const char *org;   /* NULL = none */
    const char *san;   /* "DNS:a,IP:1.2.3.4" or NULL */
    long not_before_s; /* relative to now */
    long not_after_s;
    bool ca;
};

/* cert_new makes a certificate for `pub`, signed by `signer` as `issuer` (NULL: self). */
static X509 *cert_new(const struct cert_spec *s, EVP_PKEY *pub, EVP_PKEY *signer, X509 *issuer)
{
    static long serial = 1;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX v3;
    X509_EXTENSION *ext;

    assert_non_null(x);
    assert_non_null(name);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), s->not_before_s));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), s->not_after_s));
    /* Most significant first, as CAs issue them: O, then CN. */
    if (s->org != NULL)
        assert_int_equal(
            X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const uint8_t *)s->org, -1, -1, 0),
            1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const uint8_t *)s->cn, -1, -1, 0), 1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name),
                     1);
    assert_int_equal(X509_set_pubkey(x, pub), 1);
    X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &v3, NID_basic_constraints,
                               s->ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    if (s->ca) {
        ext = X509V3_EXT_nconf_nid(NULL, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        ext = X509V3_EXT_nconf_nid(NULL, &v3, NID_ext_key_usage, "serverAuth");
    }
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    if (s->san != NULL) {
        ext = X509V3_EXT_nconf_nid(NULL, &v3, NID_subject_alt_name, s->san);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

/* der_of returns the DER of `x` in a malloc'd buffer. */
static uint8_t *der_of(X509 *x, size_t *len)
{
    uint8_t *der = NULL;
    int n = i2d_X509(x, &der);

    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

/* ---- fixture -------------------------------------------------------------------------- */

struct fx {
    EVP_PKEY *ca_key, *leaf_key, *other_key;
    X509 *ca, *other_ca;
    uint8_t *ca_der;
    size_t ca_der_len;
    uint8_t *key_der;
    size_t key_der_len;
    char ca_pem[64];
    struct tls_ctx mitm;     /* server role, forged chains + our CA (what clients see) */
    struct tls_ctx bare;     /* server role, leaf alone (test upstreams with odd chains) */
    struct tls_ctx browser;  /* client role trusting our CA, offers h2 and http/1.1 */
    struct tls_ctx upstream; /* client role trusting our CA, relays http/1.1 only */
    struct tls_ctx insecure; /* client role, -k */
};

static void ctx_opts(struct fx *f, struct tls_ctx_opts *o, bool with_ca)
{
    memset(o, 0, sizeof(*o));
    o->ca_cert_der = with_ca ? f->ca_der : NULL;
    o->ca_cert_der_len = with_ca ? f->ca_der_len : 0;
    o->leaf_key_der = f->key_der;
    o->leaf_key_der_len = f->key_der_len;
    o->system_ca_file = "";
    o->upstream_ca_file = f->ca_pem;
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const struct cert_spec ca_spec = {"mitmd test CA", "mitmd", NULL, -DAY, 365 * DAY, true};
    const struct cert_spec other_spec = {"other CA", NULL, NULL, -DAY, 365 * DAY, true};
    struct tls_ctx_opts o;
    const char *why = NULL;
    CBB cbb;
    FILE *fp;
    int fd;

    assert_non_null(f);
    f->ca_key = key_new();
    f->leaf_key = key_new();
    f->other_key = key_new();
    f->ca = cert_new(&ca_spec, f->ca_key, f->ca_key, NULL);
    f->other_ca = cert_new(&other_spec, f->other_key, f->other_key, NULL);
    f->ca_der = der_of(f->ca, &f->ca_der_len);
    assert_int_equal(CBB_init(&cbb, 0), 1);
    assert_int_equal(EVP_marshal_private_key(&cbb, f->leaf_key), 1);
    assert_int_equal(CBB_finish(&cbb, &f->key_der, &f->key_der_len), 1);
    snprintf(f->ca_pem, sizeof(f->ca_pem), "/tmp/test_tls_conn_ca_XXXXXX");
    fd = mkstemp(f->ca_pem);
    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_X509(fp, f->ca), 1);
    assert_int_equal(fclose(fp), 0);

    ctx_opts(f, &o, true);
    assert_int_equal(tls_ctx_init(&f->mitm, &o, &why), 0);
    ctx_opts(f, &o, false);
    assert_int_equal(tls_ctx_init(&f->bare, &o, &why), 0);
    ctx_opts(f, &o, true);
    o.alpn_allowed = (const uint8_t *)ALPN_H2_H1;
    o.alpn_allowed_len = sizeof(ALPN_H2_H1) - 1;
    assert_int_equal(tls_ctx_init(&f->browser, &o, &why), 0);
    ctx_opts(f, &o, true);
    assert_int_equal(tls_ctx_init(&f->upstream, &o, &why), 0);
    ctx_opts(f, &o, true);
    o.insecure = true;
    o.upstream_ca_file = NULL;
    assert_int_equal(tls_ctx_init(&f->insecure, &o, &why), 0);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    tls_ctx_dispose(&f->mitm);
    tls_ctx_dispose(&f->bare);
    tls_ctx_dispose(&f->browser);
    tls_ctx_dispose(&f->upstream);
    tls_ctx_dispose(&f->insecure);
    unlink(f->ca_pem);
    OPENSSL_free(f->ca_der);
    OPENSSL_free(f->key_der);
    X509_free(f->ca);
    X509_free(f->other_ca);
    EVP_PKEY_free(f->ca_key);
    EVP_PKEY_free(f->leaf_key);
    EVP_PKEY_free(f->other_key);
    free(f);
    return 0;
}

/* leaf_der makes a leaf for the fixture's leaf key, signed by `signer`/`issuer` (NULL =
 * self-signed with the leaf key). */
static uint8_t *leaf_der(struct fx *f, const struct cert_spec *s, EVP_PKEY *signer, X509 *issuer,
                         size_t *len)
{
    X509 *x = cert_new(s, f->leaf_key, signer != NULL ? signer : f->leaf_key, issuer);
    uint8_t *der = der_of(x, len);

    X509_free(x);
    return der;
}

/* ---- wiring --------------------------------------------------------------------------- */

/* struct wire is ciphertext in flight from one tls_conn to the other. */
struct wire {
    uint8_t b[1 << 16];
    size_t len;
};

static void wire_move(struct tls_conn *from, struct tls_conn *to, struct wire *w)
{
    size_t n;

    w->len += tls_conn_take(from, w->b + w->len, sizeof(w->b) - w->len);
    n = tls_conn_feed(to, w->b, w->len);
    memmove(w->b, w->b + n, w->len - n);
    w->len -= n;
}

/* struct pair is a client-role tls_conn `c` talking to a server-role tls_conn `s`. */
struct pair {
    struct tls_conn s, c;
    struct wire c2s, s2c;
    int rs, rc;          /* last handshake results */
    const char *ws, *wc; /* their reasons */
    int paused;          /* times the server reported -EINPROGRESS */
    char sni_seen[TLS_CONN_NAME_MAX];
    uint8_t offers_seen[TLS_CTX_ALPN_MAX];
    size_t offers_seen_len;
};

static bool hs_running(int r)
{
    return r == -EAGAIN || r == -EINPROGRESS;
}

/* pair_handshake drives both handshakes to their end. When the server pauses, it records
 * what was captured, serves `leaf` and selects `alpn_choice`. */
static void pair_handshake(struct pair *p, const uint8_t *leaf, size_t leaf_len,
                           const char *alpn_choice)
{
    p->rs = p->rc = -EAGAIN;
    for (int i = 0; i < 64 && (hs_running(p->rs) || hs_running(p->rc)); i++) {
        if (hs_running(p->rc))
            p->rc = tls_conn_handshake(&p->c, &p->wc);
        wire_move(&p->c, &p->s, &p->c2s);
        if (hs_running(p->rs)) {
            p->rs = tls_conn_handshake(&p->s, &p->ws);
            if (p->rs == -EINPROGRESS) {
                const uint8_t *o;

                p->paused++;
                snprintf(p->sni_seen, sizeof(p->sni_seen), "%s", tls_conn_sni(&p->s));
                o = tls_conn_alpn_offers(&p->s, &p->offers_seen_len);
                memcpy(p->offers_seen, o, p->offers_seen_len);
                /* Still paused until the chain is there. */
                assert_int_equal(tls_conn_handshake(&p->s, &p->ws), -EINPROGRESS);
                assert_int_equal(tls_conn_state(&p->s), TLS_CONN_STATE_PAUSED);
                assert_int_equal(tls_conn_set_chain(&p->s, leaf, leaf_len), 0);
                tls_conn_set_alpn_choice(&p->s, alpn_choice);
                p->rs = tls_conn_handshake(&p->s, &p->ws);
            }
        }
        wire_move(&p->s, &p->c, &p->s2c);
    }
}

/* pair_settle lets both sides process what is in flight (TLS 1.3 session tickets). */
static void pair_settle(struct pair *p)
{
    uint8_t tmp[256];

    for (int i = 0; i < 4; i++) {
        wire_move(&p->s, &p->c, &p->s2c);
        wire_move(&p->c, &p->s, &p->c2s);
        if (tls_conn_state(&p->c) == TLS_CONN_STATE_OPEN)
            assert_int_equal(tls_conn_read(&p->c, tmp, sizeof(tmp), NULL), -EAGAIN);
        if (tls_conn_state(&p->s) == TLS_CONN_STATE_OPEN)
            assert_int_equal(tls_conn_read(&p->s, tmp, sizeof(tmp), NULL), -EAGAIN);
    }
}

static void transfer(struct tls_conn *a, struct tls_conn *b, struct wire *w, const uint8_t *data,
                     size_t n);

/* pair_exchange sends one request and one response, then lets both sides settle: BoringSSL
 * sends TLS 1.3 session tickets with the server's first write. */
static void pair_exchange(struct pair *p)
{
    static const uint8_t req[] = "GET / HTTP/1.1\r\nHost: example.test\r\n\r\n";
    static const uint8_t resp[] = "HTTP/1.1 204 No Content\r\n\r\n";

    transfer(&p->c, &p->s, &p->c2s, req, sizeof(req) - 1);
    transfer(&p->s, &p->c, &p->s2c, resp, sizeof(resp) - 1);
    pair_settle(p);
}

/* pair_new_addr starts a pair whose client side says it is connected to `dst` (NULL =
 * through tls_conn_init_client, which gives no address). */
static struct pair *pair_new_addr(struct tls_ctx *server, struct tls_ctx *client,
                                  const char *sni, const char *host, const char *alpn,
                                  const struct sockaddr *dst, socklen_t dstlen)
{
    struct pair *p = calloc(1, sizeof(*p));
    size_t alen = alpn != NULL ? strlen(alpn) : 0;

    assert_non_null(p);
    assert_int_equal(tls_conn_init_server(&p->s, server), 0);
    if (dst == NULL)
        assert_int_equal(
            tls_conn_init_client(&p->c, client, sni, host, 443, (const uint8_t *)alpn, alen), 0);
    else
        assert_int_equal(tls_conn_init_client_addr(&p->c, client, sni, host, 443,
                                                   (const uint8_t *)alpn, alen, dst, dstlen),
                         0);
    return p;
}

static struct pair *pair_new(struct tls_ctx *server, struct tls_ctx *client, const char *sni,
                             const char *host, const char *alpn)
{
    return pair_new_addr(server, client, sni, host, alpn, NULL, 0);
}

static void pair_free(struct pair *p)
{
    tls_conn_dispose(&p->s);
    tls_conn_dispose(&p->c);
    tls_conn_dispose(&p->s); /* twice is harmless */
    free(p);
}

/* transfer sends `n` bytes of `data` from `a` to `b` through `w`, with bounded output:
 * every write either consumes or asks for the output to be taken first. */
static void transfer(struct tls_conn *a, struct tls_conn *b, struct wire *w, const uint8_t *data,
                     size_t n)
{
    uint8_t *got = malloc(n);
    size_t sent = 0, recvd = 0;
    const char *why = NULL;

    assert_non_null(got);
    for (int guard = 0; recvd < n && guard < 100000; guard++) {
        if (sent < n) {
            ssize_t r = tls_conn_write(a, data + sent, n - sent, &why);

            assert_true(r > 0 || r == -EAGAIN);
            if (r > 0)
                sent += (size_t)r;
            assert_true(tls_conn_pending(a) <= TLS_CONN_OUT_CAP);
        }
        wire_move(a, b, w);
        for (;;) {
            ssize_t r = tls_conn_read(b, got + recvd, n - recvd, &why);

            if (r == -EAGAIN)
                break;
            assert_true(r > 0);
            recvd += (size_t)r;
            if (recvd == n)
                break;
        }
    }
    assert_int_equal(recvd, n);
    assert_memory_equal(got, data, n);
    free(got);
}

/* ---- tests: interception -------------------------------------------------------------- */

static const struct cert_spec LEAF_EXAMPLE = {
    "example.test", "Example Org", "DNS:example.test,DNS:www.example.test,IP:127.0.0.1",
    -DAY,           30 * DAY,      false};

static void test_pause_capture_chain_verify(void **state)
{
    struct fx *f = *state;
    struct pair *p = pair_new(&f->mitm, &f->browser, "example.test", "example.test", ALPN_H2_H1);
    char alpn[32], names[8][TLS_CONN_NAME_MAX], org[64], line[256];
    size_t leaf_len, n = 8;
    uint8_t *leaf = leaf_der(f, &LEAF_EXAMPLE, f->ca_key, f->ca, &leaf_len);
    const uint8_t req[] = "GET / HTTP/1.1\r\nHost: example.test\r\n\r\n";
    const uint8_t resp[] = "HTTP/1.1 204 No Content\r\n\r\n";
    uint8_t tmp[64];

    assert_string_equal(tls_conn_version(&p->c), "");
    pair_handshake(p, leaf, leaf_len, "http/1.1");
    assert_int_equal(p->rc, 0);
    assert_int_equal(p->rs, 0);
    assert_int_equal(p->paused, 1);
    assert_string_equal(p->sni_seen, "example.test");
    assert_int_equal(p->offers_seen_len, sizeof(ALPN_H2_H1) - 1);
    assert_memory_equal(p->offers_seen, ALPN_H2_H1, p->offers_seen_len);
    /* The client verified the forged chain (leaf + CA) against the CA it trusts. */
    assert_int_equal(tls_conn_alpn(&p->c, alpn, sizeof(alpn)), 8);
    assert_string_equal(alpn, "http/1.1");
    assert_int_equal(tls_conn_alpn(&p->s, alpn, sizeof(alpn)), 8);
    assert_string_equal(tls_conn_version(&p->c), "TLSv1.3");
    assert_string_equal(tls_conn_version(&p->s), "TLSv1.3");
    assert_false(tls_conn_is_session_reused(&p->c));
    assert_int_equal(tls_conn_peer_names(&p->c, names, &n, org, sizeof(org)), 0);
    assert_int_equal(n, 3); /* CN = first DNS SAN, counted once */
    assert_string_equal(names[0], "example.test");
    assert_string_equal(names[1], "www.example.test");
    assert_string_equal(names[2], "127.0.0.1");
    assert_string_equal(org, "Example Org");
    assert_int_equal(tls_conn_peer_subject(&p->c, line, sizeof(line)), 0);
    assert_string_equal(line, "CN=example.test,O=Example Org");
    assert_int_equal(tls_conn_peer_issuer(&p->c, line, sizeof(line)), 0);
    assert_string_equal(line, "CN=mitmd test CA,O=mitmd");
    /* The server role has no peer certificate. */
    n = 8;
    assert_int_equal(tls_conn_peer_names(&p->s, names, &n, NULL, 0), -ENOENT);
    assert_int_equal(n, 0);
    assert_int_equal(tls_conn_peer_subject(&p->s, line, sizeof(line)), -ENOENT);

    /* Application data both ways, then close_notify. */
    pair_settle(p);
    transfer(&p->c, &p->s, &p->c2s, req, sizeof(req) - 1);
    transfer(&p->s, &p->c, &p->s2c, resp, sizeof(resp) - 1);
    assert_int_equal(tls_conn_shutdown(&p->c), 0);
    wire_move(&p->c, &p->s, &p->c2s);
    assert_int_equal(tls_conn_read(&p->s, tmp, sizeof(tmp), NULL), 0);
    assert_true(tls_conn_is_clean_close(&p->s));
    assert_int_equal(tls_conn_state(&p->s), TLS_CONN_STATE_CLOSED);
    assert_int_equal(tls_conn_read(&p->s, tmp, sizeof(tmp), NULL), 0);
    OPENSSL_free(leaf);
    pair_free(p);
}

/* Upstream certificates carry names the forge refuses (an e-mail CN, a double wildcard, an
 * empty label, a space); one of them in the name set would fail the whole forge and leave
 * the client without a certificate. tls_conn_peer_names keeps only forgeable names. */
static void test_peer_names_only_forgeable(void **state)
{
    static const struct cert_spec odd = {
        "admin@example.test", NULL,
        "DNS:example.test,DNS:*.*.example.test,DNS:a..b.test,DNS:bad name.test,"
        "DNS:-dash.test,DNS:*.wild.test,DNS:under_score.test,IP:::1",
        -DAY, 30 * DAY, false};
    struct fx *f = *state;
    /* a host of its own, so that no session of another test is resumed */
    struct pair *p =
        pair_new(&f->mitm, &f->browser, "under_score.test", "under_score.test", ALPN_H2_H1);
    char names[16][TLS_CONN_NAME_MAX];
    size_t leaf_len, n = 16;
    uint8_t *leaf = leaf_der(f, &odd, f->ca_key, f->ca, &leaf_len);

    (void)state;
    pair_handshake(p, leaf, leaf_len, "http/1.1");
    assert_int_equal(p->rc, 0);
    assert_false(tls_conn_is_session_reused(&p->c));
    assert_int_equal(tls_conn_peer_names(&p->c, names, &n, NULL, 0), 0);
    assert_int_equal(n, 4);
    assert_string_equal(names[0], "example.test");
    assert_string_equal(names[1], "*.wild.test");
    assert_string_equal(names[2], "under_score.test");
    assert_string_equal(names[3], "::1");
    OPENSSL_free(leaf);
    pair_free(p);
}

/* The client's SNI: one trailing dot is dropped (same host); a name no certificate can be
 * forged for is refused at the ClientHello, before any upstream work. */
static void test_sni_checked(void **state)
{
    struct fx *f = *state;
    size_t leaf_len;
    uint8_t *leaf = leaf_der(f, &LEAF_EXAMPLE, f->ca_key, f->ca, &leaf_len);
    struct pair *p = pair_new(&f->mitm, &f->browser, "www.example.test.", "www.example.test",
                              ALPN_H2_H1);

    pair_handshake(p, leaf, leaf_len, "http/1.1");
    assert_int_equal(p->paused, 1);
    assert_string_equal(p->sni_seen, "www.example.test");
    assert_int_equal(p->rc, 0);
    pair_free(p);

    p = pair_new(&f->mitm, &f->insecure, "bad!name.test", NULL, ALPN_H2_H1);
    pair_handshake(p, leaf, leaf_len, "http/1.1");
    assert_int_equal(p->paused, 0);
    assert_int_equal(p->rs, -EPROTO);
    pair_free(p);
    OPENSSL_free(leaf);
}

/* ALPN toward the client mirrors the upstream's choice, only if the client offered it. */
static void test_alpn_mirror(void **state)
{
    static const struct {
        const char *note, *offer, *choice, *want;
    } cases[] = {
        {"upstream chose h2", ALPN_H2_H1, "h2", "h2"},
        {"upstream chose http/1.1", ALPN_H2_H1, "http/1.1", "http/1.1"},
        {"upstream chose nothing", ALPN_H2_H1, "", ""},
        {"client sent no ALPN", NULL, "http/1.1", ""},
        {"choice the client did not offer", "\x08http/1.1", "h2", ""},
    };
    struct fx *f = *state;
    size_t leaf_len;
    uint8_t *leaf = leaf_der(f, &LEAF_EXAMPLE, f->ca_key, f->ca, &leaf_len);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pair *p = pair_new(&f->mitm, &f->browser, "example.test", NULL, cases[i].offer);
        char got[32];

        print_message("case: %s\n", cases[i].note);
        pair_handshake(p, leaf, leaf_len, cases[i].choice);
        assert_int_equal(p->rc, 0);
        assert_int_equal(p->rs, 0);
        assert_int_equal(p->offers_seen_len, cases[i].offer ? strlen(cases[i].offer) : 0);
        tls_conn_alpn(&p->c, got, sizeof(got));
        assert_string_equal(got, cases[i].want);
        tls_conn_alpn(&p->s, got, sizeof(got));
        assert_string_equal(got, cases[i].want);
        pair_free(p);
    }
    OPENSSL_free(leaf);
}

/* Toward upstream, the client's offer is reduced to what mitmd relays. */
static void test_alpn_filter(void **state)
{
    static const struct {
        const char *note, *offer, *want;
    } cases[] = {
        {"h2 dropped, http/1.1 kept", ALPN_H2_H1, "\x08http/1.1"},
        {"only h2: nothing offered", "\x02h2", ""},
        {"unknown protocol dropped", "\x06spdy/3\x08http/1.1", "\x08http/1.1"},
        {"duplicate collapsed", "\x08http/1.1\x08http/1.1", "\x08http/1.1"},
        {"malformed list: nothing", "\x09http/1.1", ""},
        {"empty entry: nothing", "\x00\x08http/1.1", ""},
    };
    struct fx *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[64];
        size_t in_len = strlen(cases[i].offer);
        size_t n;

        if (cases[i].offer[0] == '\0')
            in_len = 10; /* "\0" + "\x08http/1.1" */
        print_message("case: %s\n", cases[i].note);
        n = tls_ctx_alpn_filter(&f->upstream, (const uint8_t *)cases[i].offer, in_len, out,
                                sizeof(out));
        assert_int_equal(n, strlen(cases[i].want));
        assert_memory_equal(out, cases[i].want, n);
    }
    /* With h2 allowed, both survive in the client's order. */
    {
        uint8_t out[64];
        size_t n = tls_ctx_alpn_filter(&f->browser, (const uint8_t *)"\x08http/1.1\x02h2", 12, out,
                                       sizeof(out));

        assert_int_equal(n, 12);
        assert_memory_equal(out, "\x08http/1.1\x02h2", 12);
        /* The output capacity is respected: only whole entries. */
        n = tls_ctx_alpn_filter(&f->browser, (const uint8_t *)"\x08http/1.1\x02h2", 12, out, 11);
        assert_int_equal(n, 9);
    }
}

/* ---- tests: upstream verification ------------------------------------------------------ */

static void test_upstream_verify_reasons(void **state)
{
    struct fx *f = *state;
    struct {
        const char *note;
        struct cert_spec leaf;
        int signer;       /* 0 = our CA, 1 = self-signed, 2 = untrusted other CA */
        bool ca_in_chain; /* served after the leaf */
        const char *sni, *host;
        bool insecure;
        const char *want; /* NULL = handshake succeeds */
    } cases[] = {
        {"valid",
         {"ok.test", NULL, "DNS:ok.test", -DAY, DAY, false},
         0,
         true,
         "ok.test",
         "ok.test",
         false,
         NULL},
        {"expired",
         {"old.test", NULL, "DNS:old.test", -30 * DAY, -DAY, false},
         0,
         true,
         "old.test",
         "old.test",
         false,
         "certificate verify failed: certificate has expired"},
        {"not yet valid",
         {"new.test", NULL, "DNS:new.test", DAY, 30 * DAY, false},
         0,
         true,
         "new.test",
         "new.test",
         false,
         "certificate verify failed: certificate is not yet valid"},
        {"wrong host",
         {"other.test", NULL, "DNS:other.test", -DAY, DAY, false},
         0,
         true,
         "example.test",
         "example.test",
         false,
         "certificate verify failed: Hostname mismatch"},
        {"wildcard matches one label",
         {"w", NULL, "DNS:*.wild.test", -DAY, DAY, false},
         0,
         true,
         "a.wild.test",
         "a.wild.test",
         false,
         NULL},
        {"wildcard does not match two labels",
         {"w", NULL, "DNS:*.wild.test", -DAY, DAY, false},
         0,
         true,
         "a.b.wild.test",
         "a.b.wild.test",
         false,
         "certificate verify failed: Hostname mismatch"},
        {"self-signed",
         {"self.test", NULL, "DNS:self.test", -DAY, DAY, false},
         1,
         false,
         "self.test",
         "self.test",
         false,
         "certificate verify failed: self-signed certificate"},
        {"unknown CA",
         {"u.test", NULL, "DNS:u.test", -DAY, DAY, false},
         2,
         false,
         "u.test",
         "u.test",
         false,
         "certificate verify failed: unable to get local issuer certificate"},
        {"IP target, IP SAN",
         {"ip", NULL, "IP:127.0.0.1", -DAY, DAY, false},
         0,
         true,
         NULL,
         "127.0.0.1",
         false,
         NULL},
        {"IP target, other IP",
         {"ip", NULL, "IP:127.0.0.1", -DAY, DAY, false},
         0,
         true,
         NULL,
         "127.0.0.2",
         false,
         "certificate verify failed: IP address mismatch"},
        {"IPv6 target in brackets",
         {"ip6", NULL, "IP:::1", -DAY, DAY, false},
         0,
         true,
         NULL,
         "[::1]",
         false,
         NULL},
        {"IP as SNI is not sent, host still verified",
         {"ip", NULL, "IP:127.0.0.1", -DAY, DAY, false},
         0,
         true,
         "127.0.0.1",
         "127.0.0.1",
         false,
         NULL},
        {"-k accepts expired self-signed",
         {"x.test", NULL, "DNS:x.test", -30 * DAY, -DAY, false},
         1,
         false,
         "y.test",
         "y.test",
         true,
         NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY *signer = cases[i].signer == 0   ? f->ca_key
                           : cases[i].signer == 1 ? f->leaf_key
                                                  : f->other_key;
        X509 *issuer = cases[i].signer == 0 ? f->ca : cases[i].signer == 1 ? NULL : f->other_ca;
        size_t leaf_len;
        uint8_t *leaf = leaf_der(f, &cases[i].leaf, signer, issuer, &leaf_len);
        struct pair *p = pair_new(cases[i].ca_in_chain ? &f->mitm : &f->bare,
                                  cases[i].insecure ? &f->insecure : &f->upstream, cases[i].sni,
                                  cases[i].host, "\x08http/1.1");

        print_message("case: %s\n", cases[i].note);
        pair_handshake(p, leaf, leaf_len, "http/1.1");
        if (cases[i].want == NULL) {
            assert_int_equal(p->rc, 0);
            assert_int_equal(p->rs, 0);
        } else {
            assert_int_equal(p->rc, -EPROTO);
            assert_non_null(p->wc);
            assert_string_equal(p->wc, cases[i].want);
            assert_int_equal(tls_conn_state(&p->c), TLS_CONN_STATE_FAILED);
            /* The alert reached the upstream side, which names it. */
            assert_int_equal(p->rs, -EPROTO);
            assert_non_null(strstr(p->ws, "tls handshake failed: "));
            /* Later calls repeat the failure. */
            assert_int_equal(tls_conn_handshake(&p->c, &p->wc), -EPROTO);
            assert_string_equal(p->wc, cases[i].want);
        }
        /* IP literals never go out as SNI (RFC 6066 §3). */
        if (cases[i].sni != NULL && strcmp(cases[i].sni, "127.0.0.1") == 0)
            assert_string_equal(p->sni_seen, "");
        pair_free(p);
        OPENSSL_free(leaf);
    }
}

/* --upstream-ca may hold an intermediate or the upstream's own certificate (curl's partial
 * chain behaviour): a leaf from an unknown CA verifies when it is itself trusted. */
static void test_upstream_ca_partial_chain(void **state)
{
    struct fx *f = *state;
    const struct cert_spec spec = {"pinned.test", NULL, "DNS:pinned.test", -DAY, DAY, false};
    X509 *x = cert_new(&spec, f->leaf_key, f->other_key, f->other_ca);
    struct tls_ctx *t = malloc(sizeof(*t));
    struct tls_ctx_opts o;
    char path[64] = "/tmp/test_tls_conn_pin_XXXXXX";
    const char *why = NULL;
    size_t len;
    uint8_t *der = der_of(x, &len);
    struct pair *p;
    FILE *fp;
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_X509(fp, x), 1);
    assert_int_equal(fclose(fp), 0);
    assert_non_null(t);
    ctx_opts(f, &o, true);
    o.upstream_ca_file = path;
    assert_int_equal(tls_ctx_init(t, &o, &why), 0);
    p = pair_new(&f->bare, t, "pinned.test", NULL, NULL);
    pair_handshake(p, der, len, "");
    assert_int_equal(p->rc, 0);
    assert_int_equal(p->rs, 0);
    pair_free(p);
    /* The same leaf is still refused by a context that does not trust it. */
    p = pair_new(&f->bare, &f->upstream, "pinned.test", NULL, NULL);
    pair_handshake(p, der, len, "");
    assert_int_equal(p->rc, -EPROTO);
    assert_string_equal(p->wc, "certificate verify failed: unable to get local issuer certificate");
    pair_free(p);
    tls_ctx_dispose(t);
    free(t);
    unlink(path);
    OPENSSL_free(der);
    X509_free(x);
}

/* ---- tests: handshake failures -------------------------------------------------------- */

static void test_handshake_failures(void **state)
{
    struct fx *f = *state;
    struct tls_conn c = {0}, s = {0};
    const char *why = NULL;
    static const uint8_t http[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    uint8_t hello[4096];
    size_t n;

    /* A plain-HTTP server answering a ClientHello. */
    assert_int_equal(tls_conn_init_client(&c, &f->upstream, "a.test", NULL, 443, NULL, 0), 0);
    assert_int_equal(tls_conn_handshake(&c, &why), -EAGAIN);
    n = tls_conn_take(&c, hello, sizeof(hello));
    assert_true(n > 0);
    assert_int_equal(tls_conn_feed(&c, http, sizeof(http) - 1), sizeof(http) - 1);
    assert_int_equal(tls_conn_handshake(&c, &why), -EPROTO);
    assert_string_equal(why, "tls handshake failed: wrong version number");
    tls_conn_dispose(&c);

    /* The upstream closes after our ClientHello. */
    assert_int_equal(tls_conn_init_client(&c, &f->upstream, "a.test", NULL, 443, NULL, 0), 0);
    assert_int_equal(tls_conn_handshake(&c, &why), -EAGAIN);
    tls_conn_feed_eof(&c);
    assert_int_equal(tls_conn_handshake(&c, &why), -EPROTO);
    assert_string_equal(why, "connection closed during TLS handshake");
    tls_conn_dispose(&c);

    /* A client sends half a ClientHello, then closes. */
    assert_int_equal(tls_conn_init_server(&s, &f->mitm), 0);
    assert_int_equal(tls_conn_feed(&s, hello, n / 2), n / 2);
    assert_int_equal(tls_conn_handshake(&s, &why), -EAGAIN);
    tls_conn_feed_eof(&s);
    assert_int_equal(tls_conn_handshake(&s, &why), -EPROTO);
    assert_string_equal(why, "connection closed during TLS handshake");
    tls_conn_dispose(&s);

    /* A client speaking plain HTTP to the TLS side. */
    assert_int_equal(tls_conn_init_server(&s, &f->mitm), 0);
    assert_int_equal(tls_conn_feed(&s, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18), 18);
    assert_int_equal(tls_conn_handshake(&s, &why), -EPROTO);
    assert_non_null(strstr(why, "tls handshake failed: "));
    tls_conn_dispose(&s);

    /* Wrong-state calls are refused, not crashes. */
    assert_int_equal(tls_conn_init_client(&c, &f->upstream, "a.test", NULL, 443, NULL, 0), 0);
    assert_int_equal(tls_conn_set_chain(&c, hello, 1), -EINVAL);
    assert_int_equal(tls_conn_write(&c, http, 4, &why), -EINVAL);
    assert_int_equal(tls_conn_read(&c, hello, sizeof(hello), &why), -EINVAL);
    tls_conn_dispose(&c);
    assert_int_equal(tls_conn_init_server(&s, &f->mitm), 0);
    assert_int_equal(tls_conn_set_chain(&s, hello, 1), -EINVAL); /* not paused yet */
    tls_conn_dispose(&s);
    /* Verification needs a host unless -k. */
    assert_int_equal(tls_conn_init_client(&c, &f->upstream, NULL, NULL, 443, NULL, 0), -EINVAL);
    assert_int_equal(tls_conn_init_client(&c, &f->insecure, NULL, NULL, 443, NULL, 0), 0);
    tls_conn_dispose(&c);
}

/* A leaf that does not belong to the leaf key is refused by tls_conn_set_chain. */
static void test_set_chain_wrong_key(void **state)
{
    struct fx *f = *state;
    struct pair *p = pair_new(&f->mitm, &f->browser, "example.test", NULL, NULL);
    X509 *x = cert_new(&LEAF_EXAMPLE, f->other_key, f->ca_key, f->ca);
    size_t len;
    uint8_t *der = der_of(x, &len);

    p->rc = tls_conn_handshake(&p->c, &p->wc);
    wire_move(&p->c, &p->s, &p->c2s);
    assert_int_equal(tls_conn_handshake(&p->s, &p->ws), -EINPROGRESS);
    assert_int_equal(tls_conn_set_chain(&p->s, der, len), -EPROTO);
    assert_int_equal(tls_conn_set_chain(&p->s, NULL, 0), -EINVAL);
    OPENSSL_free(der);
    X509_free(x);
    pair_free(p);
}

static void test_ctx_init_errors(void **state)
{
    struct fx *f = *state;
    struct tls_ctx *t = malloc(sizeof(*t));
    struct tls_ctx_opts o;
    const char *why = NULL;
    static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};

    assert_non_null(t);
    ctx_opts(f, &o, true);
    o.leaf_key_der = junk;
    o.leaf_key_der_len = sizeof(junk);
    assert_int_equal(tls_ctx_init(t, &o, &why), -EINVAL);
    assert_string_equal(why, "the leaf private key is not valid PKCS#8 DER");
    ctx_opts(f, &o, true);
    o.ca_cert_der = junk;
    o.ca_cert_der_len = sizeof(junk);
    assert_int_equal(tls_ctx_init(t, &o, &why), -EINVAL);
    assert_string_equal(why, "the CA certificate is not valid DER");
    ctx_opts(f, &o, true);
    o.upstream_ca_file = "/nonexistent/ca.pem";
    assert_int_equal(tls_ctx_init(t, &o, &why), -EINVAL);
    assert_string_equal(why, "cannot load --upstream-ca (no PEM certificate in it)");
    ctx_opts(f, &o, true);
    o.upstream_ca_file = NULL;
    assert_int_equal(tls_ctx_init(t, &o, &why), -EINVAL);
    ctx_opts(f, &o, true);
    o.alpn_allowed = (const uint8_t *)"\x05h2";
    o.alpn_allowed_len = 3;
    assert_int_equal(tls_ctx_init(t, &o, &why), -EINVAL);
    assert_string_equal(why, "malformed ALPN protocol list");
    ctx_opts(f, &o, true);
    o.ciphers_client = "ECDHE-ECDSA-AES128-GCM-SHA256:NO-SUCH-CIPHER";
    assert_int_equal(tls_ctx_init(t, &o, &why), -EINVAL);
    assert_string_equal(why, "bad ciphers_client list (unknown cipher, or none left)");
    ctx_opts(f, &o, true);
    o.ciphers_server = "NO-SUCH-CIPHER";
    assert_int_equal(tls_ctx_init(t, &o, &why), -EINVAL);
    assert_string_equal(why, "bad ciphers_server list (unknown cipher, or none left)");
    /* The system bundle loads when present (Debian: ca-certificates). */
    if (access(TLS_CTX_SYSTEM_CA_FILE, R_OK) == 0) {
        ctx_opts(f, &o, true);
        o.system_ca_file = NULL;
        o.upstream_ca_file = NULL;
        assert_int_equal(tls_ctx_init(t, &o, &why), 0);
        tls_ctx_dispose(t);
    }
    free(t);
}

/* ---- tests: cipher suites ------------------------------------------------------------- */

/* cipher_ctx_new makes a context whose server side offers `ciphers_client` and whose client
 * side offers `ciphers_server` (NULL = the default), the client side limited to
 * `max_version`. */
static struct tls_ctx *cipher_ctx_new(struct fx *f, const char *ciphers_client,
                                      const char *ciphers_server, uint16_t max_version)
{
    struct tls_ctx *t = calloc(1, sizeof(*t));
    struct tls_ctx_opts o;
    const char *why = NULL;

    assert_non_null(t);
    ctx_opts(f, &o, true);
    o.ciphers_client = ciphers_client;
    o.ciphers_server = ciphers_server;
    assert_int_equal(tls_ctx_init(t, &o, &why), 0);
    assert_int_equal(SSL_CTX_set_max_proto_version(t->_client, max_version), 1);
    return t;
}

/* Both contexts default to ECDHE with an AEAD on TLS 1.2 (no CBC); the ciphers_client and
 * ciphers_server options replace the lists; TLS 1.3 is not affected. */
static void test_cipher_suites(void **state)
{
    static const char CBC[] = "ECDHE-ECDSA-AES128-SHA";
    struct fx *f = *state;
    struct {
        const char *note;
        const char *server_list; /* ciphers_client of the server-role side */
        const char *client_list; /* ciphers_server of the client-role side */
        uint16_t max_version;
        bool ok;
        const char *cipher; /* negotiated, when ok */
    } cases[] = {
        {"TLS 1.2 client offering only a CBC suite: refused by the default server context",
         NULL, CBC, TLS1_2_VERSION, false, NULL},
        {"TLS 1.2 client offering only AES-GCM: accepted", NULL, "ECDHE-ECDSA-AES128-GCM-SHA256",
         TLS1_2_VERSION, true, "ECDHE-ECDSA-AES128-GCM-SHA256"},
        {"TLS 1.2 client offering only ChaCha20-Poly1305: accepted", NULL,
         "ECDHE-ECDSA-CHACHA20-POLY1305", TLS1_2_VERSION, true, "ECDHE-ECDSA-CHACHA20-POLY1305"},
        {"default client context against a TLS 1.2 server offering only CBC: refused", CBC, NULL,
         TLS1_2_VERSION, false, NULL},
        {"ciphers_client allowing CBC: a CBC-only client is accepted", CBC, CBC, TLS1_2_VERSION,
         true, CBC},
        {"default contexts, TLS 1.2: an AEAD is chosen", NULL, NULL, TLS1_2_VERSION, true, NULL},
        {"TLS 1.3 is not governed by the lists", CBC, CBC, TLS1_3_VERSION, true, NULL},
    };
    size_t leaf_len;
    uint8_t *leaf = leaf_der(f, &LEAF_EXAMPLE, f->ca_key, f->ca, &leaf_len);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tls_ctx *server = cipher_ctx_new(f, cases[i].server_list, NULL, TLS1_3_VERSION);
        struct tls_ctx *client =
            cipher_ctx_new(f, NULL, cases[i].client_list, cases[i].max_version);
        struct pair *p = pair_new(server, client, "example.test", "example.test", NULL);

        print_message("case: %s\n", cases[i].note);
        pair_handshake(p, leaf, leaf_len, "");
        if (cases[i].ok) {
            const SSL_CIPHER *c = SSL_get_current_cipher(p->c._ssl);

            assert_int_equal(p->rc, 0);
            assert_int_equal(p->rs, 0);
            assert_non_null(c);
            assert_true(SSL_CIPHER_is_aead(c) || cases[i].cipher == CBC);
            if (cases[i].cipher != NULL)
                assert_string_equal(SSL_CIPHER_get_name(c), cases[i].cipher);
            assert_string_equal(tls_conn_version(&p->c),
                                cases[i].max_version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2");
        } else {
            assert_int_equal(p->rc, -EPROTO);
            assert_int_equal(p->rs, -EPROTO);
            assert_non_null(p->ws);
            assert_non_null(p->wc);
            /* the side that had to choose says why */
            assert_non_null(strstr(cases[i].server_list == NULL ? p->ws : p->wc,
                                   cases[i].server_list == NULL ? "no shared cipher"
                                                                : "handshake failure"));
        }
        pair_free(p);
        tls_ctx_dispose(server);
        tls_ctx_dispose(client);
        free(server);
        free(client);
    }
    OPENSSL_free(leaf);
}

/* ---- tests: resumption ---------------------------------------------------------------- */

static void test_session_resumption(void **state)
{
    struct fx *f = *state;
    size_t leaf_len;
    uint8_t *leaf = leaf_der(f, &LEAF_EXAMPLE, f->ca_key, f->ca, &leaf_len);
    struct {
        const char *note, *sni;
        bool reused;
    } cases[] = {
        {"first connection: full handshake", "example.test", false},
        {"second connection, same key: resumed", "example.test", true},
        {"third connection resumes too", "example.test", true},
        {"other SNI is another cache key", "www.example.test", false},
    };
    uint64_t hits = f->upstream.sess.hits;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pair *p =
            pair_new(&f->mitm, &f->upstream, cases[i].sni, cases[i].sni, "\x08http/1.1");
        char names[4][TLS_CONN_NAME_MAX];
        size_t n = 4;

        print_message("case: %s\n", cases[i].note);
        pair_handshake(p, leaf, leaf_len, "http/1.1");
        assert_int_equal(p->rc, 0);
        assert_int_equal(p->rs, 0);
        assert_int_equal(tls_conn_is_session_reused(&p->c), cases[i].reused);
        /* mitmd's server side issued the ticket and accepted it. */
        assert_int_equal(tls_conn_is_session_reused(&p->s), cases[i].reused);
        /* A resumed session still names the upstream certificate. */
        assert_int_equal(tls_conn_peer_names(&p->c, names, &n, NULL, 0), 0);
        assert_string_equal(names[0], "example.test");
        pair_exchange(p); /* the ticket rides with the first response (BoringSSL) */
        pair_free(p);
    }
    assert_int_equal(f->upstream.sess.hits - hits, 2);
    OPENSSL_free(leaf);
}

/* struct peer_facts is everything tls_conn_peer_* give for one upstream connection, at
 * several capacities (the names cut at 1 slot, the O and the subject line cut short). */
struct peer_facts {
    int rc_all, rc_one, rc_org;
    size_t n_all, n_one, n_org;
    char names[48][TLS_CONN_NAME_MAX], one[1][TLS_CONN_NAME_MAX];
    char org[400], org_small[6], subject[600], issuer[600], subject_small[9];
};

static void peer_facts_get(const struct tls_conn *c, struct peer_facts *pf)
{
    char names_org[48][TLS_CONN_NAME_MAX];

    memset(pf, 0, sizeof(*pf));
    pf->n_all = 48;
    pf->rc_all = tls_conn_peer_names(c, pf->names, &pf->n_all, pf->org, sizeof(pf->org));
    pf->n_one = 1;
    pf->rc_one = tls_conn_peer_names(c, pf->one, &pf->n_one, NULL, 0);
    pf->n_org = 48;
    pf->rc_org =
        tls_conn_peer_names(c, names_org, &pf->n_org, pf->org_small, sizeof(pf->org_small));
    assert_int_equal(pf->n_org, pf->n_all);
    for (size_t i = 0; i < pf->n_all; i++)
        assert_string_equal(names_org[i], pf->names[i]);
    assert_int_equal(tls_conn_peer_subject(c, pf->subject, sizeof(pf->subject)), 0);
    assert_int_equal(tls_conn_peer_issuer(c, pf->issuer, sizeof(pf->issuer)), 0);
    assert_int_equal(tls_conn_peer_subject(c, pf->subject_small, sizeof(pf->subject_small)), 0);
}

/* The names of the forged certificate and the subject/issuer of flow records come from the
 * worker's per-leaf cache (tls_peer_cache.h) once a leaf has been seen: a resumed upstream
 * (and a second full handshake with the same leaf) must give exactly what decoding the
 * certificate gave, at every capacity, also for leaves with more names than a cache entry
 * holds. (A subject line longer than an entry holds needs more than a CN and an O of at most
 * 64 characters each, which is all this file's certificates carry; that fallback is the same
 * code as the names'.) */
static void test_peer_facts_cached(void **state)
{
    struct fx *f = *state;
    char many[48 * 24] = "DNS:peercache.test", longo[65];
    struct {
        const char *note;
        struct cert_spec spec;
        size_t want_names;
    } cases[] = {
        {"small leaf: served from the cache",
         {"peercache.test", "Peer Cache Org",
          "DNS:peercache.test,DNS:www.peercache.test,IP:10.0.0.1", -DAY, 30 * DAY, false},
         3},
        {"more names than an entry holds: decoded each time", {"peercache.test", NULL, many,
                                                               -DAY, 30 * DAY, false},
         41},
        {"O at its upper bound (RFC 5280: 64 characters)",
         {"peercache.test", longo, "DNS:peercache.test", -DAY, 30 * DAY, false},
         1},
    };

    for (int i = 0; i < 40; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), ",DNS:n%d.peercache.test", i);
    memset(longo, 'o', sizeof(longo) - 1);
    longo[sizeof(longo) - 1] = '\0';
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t leaf_len;
        uint8_t *leaf = leaf_der(f, &cases[i].spec, f->ca_key, f->ca, &leaf_len);
        struct peer_facts *pf[4];
        uint64_t hits = f->upstream.peer.hits;

        print_message("case: %s\n", cases[i].note);
        /* a fresh session cache entry per case: the first connection is a full handshake */
        tls_sess_cache_dispose(&f->upstream.sess);
        assert_int_equal(tls_sess_cache_init(&f->upstream.sess, TLS_SESS_CACHE_SIZE), 0);
        for (size_t k = 0; k < 4; k++) {
            struct pair *p;

            if (k == 3) { /* a full handshake again: the pool gives the same leaf buffer */
                tls_sess_cache_dispose(&f->upstream.sess);
                assert_int_equal(tls_sess_cache_init(&f->upstream.sess, TLS_SESS_CACHE_SIZE), 0);
            }
            p = pair_new(&f->mitm, &f->upstream, "peercache.test", "peercache.test",
                         "\x08http/1.1");

            pf[k] = malloc(sizeof(*pf[k]));
            assert_non_null(pf[k]);
            pair_handshake(p, leaf, leaf_len, "http/1.1");
            assert_int_equal(p->rc, 0);
            assert_int_equal(tls_conn_is_session_reused(&p->c), k == 1 || k == 2);
            peer_facts_get(&p->c, pf[k]);
            pair_exchange(p);
            pair_free(p);
        }
        assert_int_equal(pf[0]->rc_all, 0);
        assert_int_equal(pf[0]->n_all, cases[i].want_names);
        assert_string_equal(pf[0]->names[0], "peercache.test");
        if (i == 0) {
            assert_string_equal(pf[0]->names[1], "www.peercache.test");
            assert_string_equal(pf[0]->names[2], "10.0.0.1");
        }
        if (i == 1)
            assert_string_equal(pf[0]->names[40], "n39.peercache.test");
        assert_int_equal(pf[0]->rc_one, cases[i].want_names > 1 ? -E2BIG : 0);
        assert_int_equal(pf[0]->n_one, 1);
        assert_string_equal(pf[0]->org, cases[i].spec.org != NULL ? cases[i].spec.org : "");
        assert_int_equal(strlen(pf[0]->org_small), cases[i].spec.org != NULL ? 5 : 0);
        assert_int_equal(strncmp(pf[0]->subject, "CN=peercache.test", 17), 0);
        assert_string_equal(pf[0]->issuer, "CN=mitmd test CA,O=mitmd");
        assert_string_equal(pf[0]->subject_small, "CN=peerc");
        for (size_t k = 1; k < 4; k++) /* resumed, and full again: the same facts */
            assert_memory_equal(pf[k], pf[0], sizeof(*pf[0]));
        if (i == 0) /* every call after the first connection's first one is a hit */
            assert_true(f->upstream.peer.hits - hits >= 4 * 6 - 1);
        for (size_t k = 0; k < 4; k++)
            free(pf[k]);
        OPENSSL_free(leaf);
    }
}

/* A leaf longer than TLS_PEER_LEAF_MAX is never filed (the references the cache holds stay
 * bounded): every call decodes it, and a resumed upstream still gives the same names. */
static void test_peer_cache_big_leaf_not_filed(void **state)
{
    struct fx *f = *state;
    static char sans[40000];
    struct cert_spec spec = {"bigleaf.test", NULL, sans, -DAY, 30 * DAY, false};
    size_t leaf_len;
    uint8_t *leaf;

    snprintf(sans, sizeof(sans), "DNS:bigleaf.test");
    for (int i = 0; strlen(sans) < TLS_PEER_LEAF_MAX * 3 / 2; i++) /* text: ~1.3x the DER */
        snprintf(sans + strlen(sans), sizeof(sans) - strlen(sans), ",DNS:name%d.bigleaf.test", i);
    leaf = leaf_der(f, &spec, f->ca_key, f->ca, &leaf_len);
    assert_true(leaf_len > TLS_PEER_LEAF_MAX);
    tls_sess_cache_dispose(&f->upstream.sess);
    assert_int_equal(tls_sess_cache_init(&f->upstream.sess, TLS_SESS_CACHE_SIZE), 0);
    for (size_t k = 0; k < 2; k++) {
        struct pair *p =
            pair_new(&f->mitm, &f->upstream, "bigleaf.test", "bigleaf.test", "\x08http/1.1");
        char names[2][TLS_CONN_NAME_MAX], line[64];
        size_t n = 2;
        uint64_t misses = f->upstream.peer.misses, hits = f->upstream.peer.hits;

        print_message("case: %s\n", k == 0 ? "full handshake" : "resumed");
        pair_handshake(p, leaf, leaf_len, "http/1.1");
        assert_int_equal(p->rc, 0);
        assert_int_equal(tls_conn_is_session_reused(&p->c), k == 1);
        assert_int_equal(tls_conn_peer_names(&p->c, names, &n, NULL, 0), -E2BIG);
        assert_int_equal(n, 2);
        assert_string_equal(names[0], "bigleaf.test");
        assert_string_equal(names[1], "name0.bigleaf.test");
        assert_int_equal(tls_conn_peer_subject(&p->c, line, sizeof(line)), 0);
        assert_string_equal(line, "CN=bigleaf.test");
        assert_int_equal(f->upstream.peer.misses - misses, 2);
        assert_int_equal(f->upstream.peer.hits, hits);
        pair_exchange(p);
        pair_free(p);
    }
    OPENSSL_free(leaf);
}

/* ---- tests: wildcard resumption ------------------------------------------------------- */

/* LEAF_WILD is an upstream certificate for every name one label below example.test. */
static const struct cert_spec LEAF_WILD = {"*.example.test", NULL, "DNS:*.example.test", -DAY,
                                           30 * DAY,         false};
/* WILD_KEY is its wildcard key for connections that give no address (pair_new). */
#define WILD_KEY "*.example.test|443|*.example.test|"

/* client_ctx_new makes a client-role context of its own (an empty session cache), verifying
 * against the fixture's CA unless `insecure`, limited to `max_version`. */
static struct tls_ctx *client_ctx_new(struct fx *f, bool insecure, uint16_t max_version)
{
    struct tls_ctx *t = calloc(1, sizeof(*t));
    struct tls_ctx_opts o;
    const char *why = NULL;

    assert_non_null(t);
    ctx_opts(f, &o, true);
    o.insecure = insecure;
    assert_int_equal(tls_ctx_init(t, &o, &why), 0);
    assert_int_equal(SSL_CTX_set_max_proto_version(t->_client, max_version), 1);
    return t;
}

static void client_ctx_free(struct tls_ctx *t)
{
    tls_ctx_dispose(t);
    free(t);
}

/* entry_of returns the session cached under `key` (borrowed), or NULL; it neither counts
 * nor reorders (a scan, for tests only). */
static SSL_SESSION *entry_of(struct tls_ctx *t, const char *key)
{
    for (uint32_t i = 0; i < t->sess._used; i++)
        if (strcmp(t->sess._entry[i].key, key) == 0)
            return t->sess._entry[i].sess;
    return NULL;
}

/* A session of a.example.test (certificate *.example.test) is resumed for b.example.test
 * and other one-label names; never for names the certificate does not cover, never before
 * the exact key's own session, and never by a name that would pose as a wildcard key. */
static void test_wildcard_resumption(void **state)
{
    enum wild_entry {
        ENTRY_NONE = 0,  /* no wildcard entry after the connection */
        ENTRY_NEW,       /* a new session was filed under the wildcard key */
        ENTRY_UNCHANGED, /* the wildcard entry is the one from before */
    };
    struct fx *f = *state;
    struct {
        const char *note, *sni;
        bool plant;           /* first file the wildcard session under *.other.test too */
        const char *want;     /* client handshake failure, NULL = success */
        bool reused;          /* both sides report a resumed session */
        int hits, misses;     /* expected changes of sess.hits / sess.misses */
        int wild_hits;        /* expected change of sess.wildcard_hits */
        enum wild_entry wild; /* what the wildcard key holds afterwards (TLS 1.3) */
    } cases[] = {
        {"a.example.test: full handshake, the session is filed under the wildcard key too",
         "a.example.test", false, NULL, false, 0, 1, 0, ENTRY_NEW},
        {"b.example.test: exact miss, resumed from the wildcard key; its tickets refresh it",
         "b.example.test", false, NULL, true, 0, 1, 1, ENTRY_NEW},
        {"b.example.test again: its exact key is preferred; the wildcard entry is untouched",
         "b.example.test", false, NULL, true, 1, 0, 0, ENTRY_UNCHANGED},
        {"C.Example.TEST: the wildcard key is case-insensitive", "C.Example.TEST", false, NULL,
         true, 0, 1, 1, ENTRY_NEW},
        {"x.y.example.test: two labels in front, no wildcard reuse, verification fails",
         "x.y.example.test", false, "certificate verify failed: Hostname mismatch", false, 0, 1, 0,
         ENTRY_UNCHANGED},
        {"a_b.example.test: the leaf check refuses what verification would refuse",
         "a_b.example.test", false, "certificate verify failed: Hostname mismatch", false, 0, 1, 0,
         ENTRY_UNCHANGED},
        {"c.other.test: a (planted) *.other.test entry whose leaf does not cover it is refused",
         "c.other.test", true, "certificate verify failed: Hostname mismatch", false, 0, 1, 0,
         ENTRY_UNCHANGED},
        {"*.example.test as a name: no cache lookup at all (mitmd's server side refuses it)",
         "*.example.test", false, "tls handshake failed: handshake failure on client hello", false,
         0, 0, 0, ENTRY_UNCHANGED},
        {"d.example.test: still resumed after all that", "d.example.test", false, NULL, true, 0, 1,
         1, ENTRY_NEW},
    };
    const uint16_t versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};
    size_t leaf_len;
    uint8_t *leaf = leaf_der(f, &LEAF_WILD, f->ca_key, f->ca, &leaf_len);

    for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
        struct tls_ctx *t = client_ctx_new(f, false, versions[v]);
        bool tls13 = versions[v] == TLS1_3_VERSION;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            uint64_t hits = t->sess.hits, misses = t->sess.misses;
            uint64_t wild_hits = t->sess.wildcard_hits;
            SSL_SESSION *before = entry_of(t, WILD_KEY), *after;
            char names[4][TLS_CONN_NAME_MAX];
            size_t n = 4;
            struct pair *p;

            print_message("case (%s): %s\n", tls13 ? "TLS 1.3" : "TLS 1.2", cases[i].note);
            if (cases[i].plant) {
                assert_non_null(before);
                SSL_SESSION_up_ref(before);
                tls_sess_put(&t->sess, "*.other.test|443|*.other.test|", before);
            }
            p = pair_new(&f->mitm, t, cases[i].sni, cases[i].sni, "\x08http/1.1");
            pair_handshake(p, leaf, leaf_len, "http/1.1");
            if (cases[i].want == NULL) {
                assert_int_equal(p->rc, 0);
                assert_int_equal(p->rs, 0);
                assert_string_equal(tls_conn_version(&p->c), tls13 ? "TLSv1.3" : "TLSv1.2");
                /* The names for the forged leaf come from the (resumed) certificate; the
                 * worker adds the client's SNI (intercept_get_cert). */
                assert_int_equal(tls_conn_peer_names(&p->c, names, &n, NULL, 0), 0);
                assert_int_equal(n, 1);
                assert_string_equal(names[0], "*.example.test");
                assert_int_equal(tls_conn_is_session_reused(&p->s), cases[i].reused);
                pair_exchange(p); /* TLS 1.3 tickets ride with the first response */
            } else {
                assert_int_equal(p->rc, -EPROTO);
                assert_string_equal(p->wc, cases[i].want);
            }
            assert_int_equal(tls_conn_is_session_reused(&p->c), cases[i].reused);
            if (tls13 || cases[i].hits == 0) {
                assert_int_equal(t->sess.hits - hits, cases[i].hits);
                assert_int_equal(t->sess.misses - misses, cases[i].misses);
                assert_int_equal(t->sess.wildcard_hits - wild_hits, cases[i].wild_hits);
            } else {
                /* TLS 1.2 servers issue no new ticket on a resumption, so the session b
                 * resumed was never filed under b's exact key: the wildcard key again. */
                assert_int_equal(t->sess.hits - hits, 0);
                assert_int_equal(t->sess.misses - misses, 1);
                assert_int_equal(t->sess.wildcard_hits - wild_hits, 1);
            }
            after = entry_of(t, WILD_KEY);
            assert_non_null(after);
            /* TLS 1.2 servers issue no new ticket on a resumption: the entry stays. */
            if (cases[i].wild == ENTRY_NEW && (tls13 || !cases[i].reused))
                assert_ptr_not_equal(after, before);
            else
                assert_ptr_equal(after, before);
            pair_free(p);
        }
        client_ctx_free(t);
    }
    OPENSSL_free(leaf);
}

/* Only certificates that name "*.D" exactly get a wildcard entry, and only connections
 * that verify their upstream (not -k) and send SNI == the verified name use one. */
static void test_wildcard_not_filed(void **state)
{
    static const struct cert_spec both = {
        "a.example.test", NULL, "DNS:a.example.test,DNS:b.example.test", -DAY, 30 * DAY, false};
    static const struct cert_spec deeper = {"w",  NULL,     "DNS:*.a.example.test",
                                            -DAY, 30 * DAY, false};
    struct fx *f = *state;
    struct {
        const char *note;
        const struct cert_spec *leaf;
        bool insecure;
        const char *sni1, *host1, *sni2, *host2;
        bool reused2; /* the second connection resumed */
        bool entry;   /* WILD_KEY has an entry at the end */
    } cases[] = {
        {"names listed one by one, no wildcard: no entry, no reuse", &both, false, "a.example.test",
         "a.example.test", "b.example.test", "b.example.test", false, false},
        {"*.a.example.test: shared by x. and y.a.example.test, not filed as *.example.test",
         &deeper, false, "x.a.example.test", "x.a.example.test", "y.a.example.test",
         "y.a.example.test", true, false},
        {"-k: no wildcard entries (nothing was verified)", &LEAF_WILD, true, "a.example.test",
         "a.example.test", "b.example.test", "b.example.test", false, false},
        {"SNI differs from the verified name: not filed under the wildcard key", &LEAF_WILD, false,
         "b.example.test", "a.example.test", "c.example.test", "c.example.test", false, false},
        {"SNI differs from the verified name: the wildcard key is not looked up", &LEAF_WILD, false,
         "a.example.test", "a.example.test", "b.example.test", "c.example.test", false, true},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tls_ctx *t = client_ctx_new(f, cases[i].insecure, TLS1_3_VERSION);
        size_t leaf_len;
        uint8_t *leaf = leaf_der(f, cases[i].leaf, f->ca_key, f->ca, &leaf_len);
        struct pair *p;

        print_message("case: %s\n", cases[i].note);
        p = pair_new(&f->mitm, t, cases[i].sni1, cases[i].host1, "\x08http/1.1");
        pair_handshake(p, leaf, leaf_len, "http/1.1");
        assert_int_equal(p->rc, 0);
        pair_exchange(p);
        pair_free(p);
        p = pair_new(&f->mitm, t, cases[i].sni2, cases[i].host2, "\x08http/1.1");
        pair_handshake(p, leaf, leaf_len, "http/1.1");
        assert_int_equal(tls_conn_is_session_reused(&p->c), cases[i].reused2);
        assert_int_equal(t->sess.wildcard_hits, cases[i].reused2 ? 1 : 0);
        if (cases[i].entry)
            assert_non_null(entry_of(t, WILD_KEY));
        else
            assert_null(entry_of(t, WILD_KEY));
        pair_free(p);
        OPENSSL_free(leaf);
        client_ctx_free(t);
    }
}

/* Issue 10 item 12: a session is offered only to the address it came from. The keys hold
 * the address actually connected to (tls_conn_init_client_addr), so neither the exact key
 * nor the wildcard key of one address serves another address with the same names. Before
 * the address was part of the keys, the rows marked (*) resumed. */
static void test_session_keyed_by_address(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in v4[4];
    struct sockaddr_in6 v6;
    static const char *const ip4[] = {"192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.4"};
    static const uint16_t port4[] = {443, 443, 8443, 443};
    struct {
        const char *note, *sni;
        int addr; /* index into v4, 4 = the IPv6 address, -1 = none given */
        bool reused, across_names;
    } cases[] = {
        {"a.example.test at 192.0.2.1:443: full handshake", "a.example.test", 0, false, false},
        {"a.example.test at 192.0.2.1:443 again: resumed", "a.example.test", 0, true, false},
        {"(*) a.example.test at 192.0.2.2:443: another address, full handshake", "a.example.test",
         1, false, false},
        {"(*) a.example.test at 192.0.2.1:8443: another port, full handshake", "a.example.test", 2,
         false, false},
        {"(*) a.example.test at [2001:db8::1]:443: full handshake", "a.example.test", 4, false,
         false},
        {"(*) a.example.test with no address: keyed apart, full handshake", "a.example.test", -1,
         false, false},
        {"(*) b.example.test at 192.0.2.4:443: no wildcard session of that address",
         "b.example.test", 3, false, false},
        {"c.example.test at 192.0.2.1:443: the wildcard session of that address", "c.example.test",
         0, true, true},
        {"a.example.test at 192.0.2.2:443: its own session now", "a.example.test", 1, true, false},
    };
    size_t leaf_len;
    uint8_t *leaf = leaf_der(f, &LEAF_WILD, f->ca_key, f->ca, &leaf_len);
    struct tls_ctx *t = client_ctx_new(f, false, TLS1_3_VERSION);

    for (size_t i = 0; i < 4; i++) {
        memset(&v4[i], 0, sizeof(v4[i]));
        v4[i].sin_family = AF_INET;
        v4[i].sin_port = htons(port4[i]);
        assert_int_equal(inet_pton(AF_INET, ip4[i], &v4[i].sin_addr), 1);
    }
    memset(&v6, 0, sizeof(v6));
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(443);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr), 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct sockaddr *dst = NULL;
        socklen_t dstlen = 0;
        struct pair *p;

        if (cases[i].addr == 4) {
            dst = (const struct sockaddr *)&v6;
            dstlen = sizeof(v6);
        } else if (cases[i].addr >= 0) {
            dst = (const struct sockaddr *)&v4[cases[i].addr];
            dstlen = sizeof(v4[0]);
        }
        print_message("case: %s\n", cases[i].note);
        p = pair_new_addr(&f->mitm, t, cases[i].sni, cases[i].sni, "\x08http/1.1", dst, dstlen);
        pair_handshake(p, leaf, leaf_len, "http/1.1");
        assert_int_equal(p->rc, 0);
        assert_int_equal(p->rs, 0);
        assert_int_equal(tls_conn_is_session_reused(&p->c), cases[i].reused);
        assert_int_equal(tls_conn_is_resumed_across_names(&p->c), cases[i].across_names);
        pair_exchange(p);
        pair_free(p);
    }
    print_message("case: a malformed address is refused\n");
    {
        struct tls_conn c = {0};

        assert_int_equal(tls_conn_init_client_addr(&c, t, "a.example.test", NULL, 443, NULL, 0,
                                                   (const struct sockaddr *)&v6,
                                                   sizeof(struct sockaddr_in)),
                         -EINVAL);
        tls_conn_dispose(&c);
    }
    client_ctx_free(t);
    OPENSSL_free(leaf);
}

/* ---- tests: bounded staging ----------------------------------------------------------- */

static void test_bounded_output_and_bulk(void **state)
{
    struct fx *f = *state;
    size_t leaf_len, total = 0;
    uint8_t *leaf = leaf_der(f, &LEAF_EXAMPLE, f->ca_key, f->ca, &leaf_len);
    struct pair *p = pair_new(&f->mitm, &f->browser, "example.test", NULL, NULL);
    size_t big = 1 << 20;
    uint8_t *data = malloc(big);
    const char *why = NULL;
    ssize_t r;

    assert_non_null(data);
    for (size_t i = 0; i < big; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    pair_handshake(p, leaf, leaf_len, "");
    pair_settle(p);
    /* Nobody takes the output: writes stop with -EAGAIN, staging stays bounded. */
    while ((r = tls_conn_write(&p->s, data + total, big - total, &why)) > 0)
        total += (size_t)r;
    assert_int_equal(r, -EAGAIN);
    assert_true(total > 0 && total <= TLS_CONN_OUT_CAP);
    assert_true(tls_conn_pending(&p->s) <= TLS_CONN_OUT_CAP);
    /* What was written arrives intact once the output is taken. */
    {
        uint8_t *got = malloc(total);
        size_t recvd = 0;

        assert_non_null(got);
        for (int guard = 0; recvd < total && guard < 1000; guard++) {
            wire_move(&p->s, &p->c, &p->s2c);
            r = tls_conn_read(&p->c, got + recvd, total - recvd, &why);
            assert_true(r > 0 || r == -EAGAIN);
            if (r > 0)
                recvd += (size_t)r;
        }
        assert_int_equal(recvd, total);
        assert_memory_equal(got, data, total);
        free(got);
    }
    /* Input staging is bounded too: feed takes only what fits. */
    {
        struct tls_conn s = {0};
        static uint8_t junk[3 * TLS_CONN_IN_CAP];

        assert_int_equal(tls_conn_init_server(&s, &f->mitm), 0);
        assert_int_equal(tls_conn_in_room(&s), TLS_CONN_IN_CAP);
        assert_int_equal(tls_conn_feed(&s, junk, sizeof(junk)), TLS_CONN_IN_CAP);
        assert_int_equal(tls_conn_feed(&s, junk, sizeof(junk)), 0);
        assert_int_equal(tls_conn_in_room(&s), 0);
        tls_conn_dispose(&s);
    }
    /* 1 MiB each way through the bounded staging. */
    transfer(&p->s, &p->c, &p->s2c, data, big);
    transfer(&p->c, &p->s, &p->c2s, data, big);
    /* A bare EOF (no close_notify) ends the stream too, but is not a clean close. */
    {
        uint8_t tmp[16];

        tls_conn_feed_eof(&p->c);
        assert_int_equal(tls_conn_read(&p->c, tmp, sizeof(tmp), &why), 0);
        assert_false(tls_conn_is_clean_close(&p->c));
        assert_int_equal(tls_conn_state(&p->c), TLS_CONN_STATE_CLOSED);
        /* Our side may still send (half-close), e.g. the rest of a response. */
        assert_int_equal(tls_conn_write(&p->c, (const uint8_t *)"bye", 3, &why), 3);
    }
    free(data);
    OPENSSL_free(leaf);
    pair_free(p);
}

/* ext_move moves all of `out` (the caller's outbound buffer of an external-staging side) into
 * `to` (an own-staging side), as far as it takes. */
static void ext_move(struct buf *out, struct tls_conn *to)
{
    buf_consume(out, tls_conn_feed(to, buf_head(out), buf_used(out)));
}

/* With tls_conn_set_io, the caller's buffers are the staging: the server side reads records
 * from `in` and writes them to `out` (nothing to feed or take), never compacts `out` while it
 * is pinned (a send of its head in flight), and keeps the buffers across dispose and init. */
static void test_caller_buffers(void **state)
{
    struct fx *f = *state;
    static uint8_t in_mem[1 << 16], out_mem[1 << 16], data[256 * 1024], got[256 * 1024];
    struct buf in, out;
    bool pinned = false;
    struct tls_conn s = {0}, c = {0};
    size_t leaf_len, sent = 0, recvd = 0;
    uint8_t *leaf = leaf_der(f, &LEAF_EXAMPLE, f->ca_key, f->ca, &leaf_len);
    const char *why = NULL;
    int rs = -EAGAIN, rc = -EAGAIN;
    ssize_t r;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 2654435761u >> 11);
    buf_init(&in, in_mem, sizeof(in_mem));
    buf_init(&out, out_mem, sizeof(out_mem));
    for (int round = 0; round < 2; round++) { /* the second init keeps the buffers */
        tls_conn_set_io(&s, &in, &out, &pinned);
        assert_int_equal(tls_conn_init_server(&s, &f->mitm), 0);
        assert_int_equal(tls_conn_init_client(&c, &f->browser, "example.test", NULL, 443, NULL, 0),
                         0);
        rs = rc = -EAGAIN;
        for (int i = 0; i < 64 && (hs_running(rs) || hs_running(rc)); i++) {
            uint8_t tmp[4096];
            size_t n;

            if (hs_running(rc))
                rc = tls_conn_handshake(&c, &why);
            while ((n = tls_conn_take(&c, tmp, sizeof(tmp))) > 0)
                assert_int_equal(buf_append(&in, tmp, n), n);
            assert_int_equal(tls_conn_feed(&s, tmp, 1), 0); /* nothing to feed */
            if (hs_running(rs)) {
                rs = tls_conn_handshake(&s, &why);
                if (rs == -EINPROGRESS) {
                    assert_int_equal(tls_conn_set_chain(&s, leaf, leaf_len), 0);
                    rs = tls_conn_handshake(&s, &why);
                }
            }
            assert_int_equal(tls_conn_pending(&s), 0); /* records went straight to `out` */
            ext_move(&out, &c);
        }
        assert_int_equal(rs, 0);
        assert_int_equal(rc, 0);
        if (round == 0) {
            tls_conn_dispose(&s);
            tls_conn_dispose(&c);
            buf_init(&in, in_mem, sizeof(in_mem));
            buf_init(&out, out_mem, sizeof(out_mem));
        }
    }
    /* Pinned: a send of out's head is in flight. Writes append after the tail only, so the
     * head does not move even when consumed bytes leave room at the front. */
    assert_int_equal(tls_conn_write(&s, data, 1000, &why), 1000);
    assert_int_equal(tls_conn_feed(&c, buf_head(&out), 100), 100);
    buf_consume(&out, 100); /* the kernel took the first 100 bytes; the rest is in flight */
    pinned = true;
    {
        const uint8_t *head = buf_head(&out);
        uint8_t copy[64];

        memcpy(copy, head, sizeof(copy));
        while ((r = tls_conn_write(&s, data + sent, sizeof(data) - sent, &why)) > 0)
            sent += (size_t)r;
        assert_int_equal(r, -EAGAIN);
        assert_ptr_equal(buf_head(&out), head);
        assert_memory_equal(buf_head(&out), copy, sizeof(copy));
        assert_true(out.cap - out.len <= 16384 + 512); /* filled to about the end */
        assert_true(tls_conn_is_quiet(&s));           /* the caller's buffers are its own */
    }
    pinned = false;
    /* Everything arrives intact: 1000 bytes, then the rest of 256 KiB. */
    {
        size_t want = 1000 + sizeof(data);
        uint8_t *all = malloc(want);

        assert_non_null(all);
        memcpy(all, data, 1000);
        memcpy(all + 1000, data, sizeof(data));
        for (int guard = 0; recvd < want && guard < 100000; guard++) {
            if (sent < sizeof(data)) {
                r = tls_conn_write(&s, data + sent, sizeof(data) - sent, &why);
                assert_true(r > 0 || r == -EAGAIN);
                if (r > 0)
                    sent += (size_t)r;
            }
            ext_move(&out, &c);
            while (recvd < want && (r = tls_conn_read(&c, got, sizeof(got), &why)) > 0) {
                assert_true(recvd + (size_t)r <= want);
                assert_memory_equal(got, all + recvd, (size_t)r);
                recvd += (size_t)r;
            }
        }
        assert_int_equal(recvd, want);
        free(all);
    }
    /* And the other way: the client's records are read straight from `in`. */
    for (sent = recvd = 0; recvd < sizeof(data);) {
        uint8_t tmp[4096];
        size_t n;

        if (sent < sizeof(data) &&
            (r = tls_conn_write(&c, data + sent, sizeof(data) - sent, &why)) > 0)
            sent += (size_t)r;
        while (buf_room(&in) > 0 && (n = tls_conn_take(&c, tmp, buf_room(&in) < sizeof(tmp)
                                                                     ? buf_room(&in)
                                                                     : sizeof(tmp))) > 0)
            assert_int_equal(buf_append(&in, tmp, n), n);
        while ((r = tls_conn_read(&s, got + recvd, sizeof(got) - recvd, &why)) > 0)
            recvd += (size_t)r;
        assert_true(r == -EAGAIN || recvd == sizeof(data));
    }
    assert_memory_equal(got, data, sizeof(data));
    tls_conn_dispose(&s);
    tls_conn_dispose(&c);
    OPENSSL_free(leaf);
}

/* tls_conn_read skips SSL_read while its input has not grown, without ever losing data that
 * BoringSSL holds: decrypted bytes beyond `cap` (SSL_pending), a record completed by a
 * later feed, close_notify. */
static void test_read_idle_skip(void **state)
{
    struct fx *f = *state;
    size_t leaf_len, half;
    uint8_t *leaf = leaf_der(f, &LEAF_EXAMPLE, f->ca_key, f->ca, &leaf_len);
    struct pair *p = pair_new(&f->mitm, &f->insecure, "idle.test", NULL, NULL);
    uint8_t wire[512], got[16];
    size_t wlen, rec1;
    const char *why = NULL;

    pair_handshake(p, leaf, leaf_len, "");
    pair_exchange(p);
    assert_int_equal(tls_conn_write(&p->c, (const uint8_t *)"hello", 5, &why), 5);
    rec1 = tls_conn_take(&p->c, wire, sizeof(wire));
    assert_int_equal(tls_conn_write(&p->c, (const uint8_t *)"world", 5, &why), 5);
    wlen = rec1 + tls_conn_take(&p->c, wire + rec1, sizeof(wire) - rec1);
    assert_true(rec1 > 5 && wlen > rec1 + 5);

    print_message("case: nothing fed: -EAGAIN, again and again\n");
    for (int i = 0; i < 3; i++)
        assert_int_equal(tls_conn_read(&p->s, got, sizeof(got), &why), -EAGAIN);
    print_message("case: a partial record header, then the rest byte by byte\n");
    assert_int_equal(tls_conn_feed(&p->s, wire, 3), 3);
    assert_int_equal(tls_conn_read(&p->s, got, sizeof(got), &why), -EAGAIN);
    for (size_t i = 3; i < rec1 - 1; i++) {
        assert_int_equal(tls_conn_feed(&p->s, wire + i, 1), 1);
        assert_int_equal(tls_conn_read(&p->s, got, sizeof(got), &why), -EAGAIN);
        assert_int_equal(tls_conn_read(&p->s, got, sizeof(got), &why), -EAGAIN);
    }
    /* The last byte of record 1 and half of record 2 arrive together. */
    half = (wlen - rec1) / 2;
    assert_int_equal(tls_conn_feed(&p->s, wire + rec1 - 1, 1 + half), 1 + half);
    print_message("case: decrypted bytes left over by a small cap are read without a feed\n");
    assert_int_equal(tls_conn_read(&p->s, got, 2, &why), 2);
    assert_memory_equal(got, "he", 2);
    assert_int_equal(tls_conn_read(&p->s, got, sizeof(got), &why), 3);
    assert_memory_equal(got, "llo", 3);
    assert_int_equal(tls_conn_read(&p->s, got, sizeof(got), &why), -EAGAIN);
    assert_int_equal(tls_conn_read(&p->s, got, sizeof(got), &why), -EAGAIN);
    print_message("case: the rest of record 2 completes it\n");
    assert_int_equal(tls_conn_feed(&p->s, wire + rec1 + half, wlen - rec1 - half),
                     wlen - rec1 - half);
    assert_int_equal(tls_conn_read(&p->s, got, sizeof(got), &why), 5);
    assert_memory_equal(got, "world", 5);
    assert_int_equal(tls_conn_read(&p->s, got, sizeof(got), &why), -EAGAIN);
    print_message("case: close_notify after an idle read is seen\n");
    assert_int_equal(tls_conn_shutdown(&p->c), 0);
    wire_move(&p->c, &p->s, &p->c2s);
    assert_int_equal(tls_conn_read(&p->s, got, sizeof(got), &why), 0);
    assert_true(tls_conn_is_clean_close(&p->s));
    pair_free(p);

    print_message("case: a bare EOF after an idle read is seen\n");
    p = pair_new(&f->mitm, &f->insecure, "idle.test", NULL, NULL);
    pair_handshake(p, leaf, leaf_len, "");
    pair_exchange(p);
    assert_int_equal(tls_conn_read(&p->s, got, sizeof(got), &why), -EAGAIN);
    tls_conn_feed_eof(&p->s);
    assert_int_equal(tls_conn_read(&p->s, got, sizeof(got), &why), 0);
    assert_false(tls_conn_is_clean_close(&p->s));
    pair_free(p);
    OPENSSL_free(leaf);
}

/* stale_error leaves an unrelated error in the thread's queue, as other code might. */
static void stale_error(void)
{
    ERR_put_error(ERR_LIB_SSL, 0, SSL_R_WRONG_VERSION_NUMBER, __FILE__, __LINE__);
}

/* A stale error in the queue must not turn a handshake step, a read or a write that merely
 * waits into a failure: tls_conn leaves the clearing to SSL_do_handshake/SSL_read/
 * SSL_write themselves (BoringSSL clears the queue at their start). */
static void test_stale_errors_ignored(void **state)
{
    struct fx *f = *state;
    size_t leaf_len, total = 0;
    uint8_t *leaf = leaf_der(f, &LEAF_EXAMPLE, f->ca_key, f->ca, &leaf_len);
    struct pair *p = pair_new(&f->mitm, &f->upstream, "example.test", NULL, "\x08http/1.1");
    static uint8_t data[4 * TLS_CONN_OUT_CAP];
    uint8_t got[64];
    const char *why = NULL;
    ssize_t r;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 2654435761u >> 11);
    print_message("case: every handshake step starts with a stale error\n");
    p->rs = p->rc = -EAGAIN;
    for (int i = 0; i < 64 && (hs_running(p->rs) || hs_running(p->rc)); i++) {
        if (hs_running(p->rc)) {
            stale_error();
            p->rc = tls_conn_handshake(&p->c, &p->wc);
        }
        wire_move(&p->c, &p->s, &p->c2s);
        if (hs_running(p->rs)) {
            stale_error();
            p->rs = tls_conn_handshake(&p->s, &p->ws);
            if (p->rs == -EINPROGRESS) {
                assert_int_equal(tls_conn_set_chain(&p->s, leaf, leaf_len), 0);
                tls_conn_set_alpn_choice(&p->s, "http/1.1");
                stale_error();
                p->rs = tls_conn_handshake(&p->s, &p->ws);
            }
        }
        wire_move(&p->s, &p->c, &p->s2c);
    }
    assert_int_equal(p->rc, 0);
    assert_int_equal(p->rs, 0);
    print_message("case: a read that finds no record\n");
    stale_error();
    assert_int_equal(tls_conn_read(&p->s, got, sizeof(got), &why), -EAGAIN);
    stale_error();
    assert_int_equal(tls_conn_read(&p->c, got, sizeof(got), &why), -EAGAIN);
    print_message("case: a write that finds no output room\n");
    do {
        stale_error();
        r = tls_conn_write(&p->s, data + total, sizeof(data) - total, &why);
        if (r > 0)
            total += (size_t)r;
    } while (r > 0);
    assert_int_equal(r, -EAGAIN);
    assert_true(total > 0);
    print_message("case: reads of the written bytes, each after a stale error\n");
    {
        uint8_t *in = malloc(total);
        size_t recvd = 0;

        assert_non_null(in);
        for (int guard = 0; recvd < total && guard < 1000; guard++) {
            wire_move(&p->s, &p->c, &p->s2c);
            stale_error();
            r = tls_conn_read(&p->c, in + recvd, total - recvd, &why);
            assert_true(r > 0 || r == -EAGAIN);
            if (r > 0)
                recvd += (size_t)r;
        }
        assert_int_equal(recvd, total);
        assert_memory_equal(in, data, total);
        free(in);
    }
    ERR_clear_error();
    pair_free(p);
    OPENSSL_free(leaf);
}

/* ---- tests: ClientHello peek ---------------------------------------------------------- */

/* guard_tail copies `n` bytes so that they end exactly at a PROT_NONE page: any read past
 * the end faults. */
static const uint8_t *guard_tail(const uint8_t *src, size_t n, uint8_t **map, size_t *maplen)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t pages = (n + (size_t)pg - 1) / (size_t)pg + 1;
    uint8_t *m =
        mmap(NULL, pages * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    assert_true(m != MAP_FAILED);
    assert_int_equal(mprotect(m + (pages - 1) * (size_t)pg, (size_t)pg, PROT_NONE), 0);
    memcpy(m + (pages - 1) * (size_t)pg - n, src, n);
    *map = m;
    *maplen = pages * (size_t)pg;
    return m + (pages - 1) * (size_t)pg - n;
}

/* client_hello makes a real ClientHello with a client-role tls_conn. */
static size_t client_hello(struct tls_ctx *t, const char *sni, uint8_t *out, size_t cap)
{
    struct tls_conn c = {0};
    size_t n;

    assert_int_equal(tls_conn_init_client(&c, t, sni, sni, 443, (const uint8_t *)"\x08http/1.1", 9),
                     0);
    assert_int_equal(tls_conn_handshake(&c, NULL), -EAGAIN);
    n = tls_conn_take(&c, out, cap);
    assert_int_equal(tls_conn_pending(&c), 0);
    tls_conn_dispose(&c);
    return n;
}

static void test_peek_sni_every_prefix(void **state)
{
    struct fx *f = *state;
    uint8_t hello[4096], *map;
    size_t n = client_hello(&f->upstream, "peek.example.test", hello, sizeof(hello)), maplen;
    char out[TLS_CONN_NAME_MAX];

    assert_true(n > 100);
    assert_true(tls_peek_is_client_hello(hello, n));
    for (size_t k = 0; k <= n; k++) {
        const uint8_t *p = guard_tail(hello, k, &map, &maplen);
        ssize_t r = tls_peek_client_hello_sni(p, k, out, sizeof(out));

        if (k < n) {
            assert_int_equal(r, -EAGAIN);
            assert_true(k == 0 || tls_peek_is_client_hello(p, k));
        } else {
            assert_int_equal(r, strlen("peek.example.test"));
            assert_string_equal(out, "peek.example.test");
        }
        munmap(map, maplen);
    }
    /* Too small an output buffer. */
    assert_int_equal(tls_peek_client_hello_sni(hello, n, out, 5), -EMSGSIZE);
    assert_string_equal(out, "");
}

static void test_peek_sni_cases(void **state)
{
    struct fx *f = *state;
    uint8_t hello[4096], split[4200], bad[4096];
    size_t n, body;
    char out[TLS_CONN_NAME_MAX];

    /* No SNI: 0 and "". */
    n = client_hello(&f->insecure, NULL, hello, sizeof(hello));
    assert_int_equal(tls_peek_client_hello_sni(hello, n, out, sizeof(out)), 0);
    assert_string_equal(out, "");

    /* The same ClientHello split over two records gives the same SNI, and every prefix of
     * the split form is incomplete. */
    n = client_hello(&f->upstream, "split.test", hello, sizeof(hello));
    body = n - 5;
    memcpy(split, hello, 5 + 10);
    split[3] = 0;
    split[4] = 10;
    memcpy(split + 15, "\x16\x03\x01", 3);
    split[18] = (uint8_t)((body - 10) >> 8);
    split[19] = (uint8_t)(body - 10);
    memcpy(split + 20, hello + 15, body - 10);
    for (size_t k = 0; k < n + 5; k++)
        assert_int_equal(tls_peek_client_hello_sni(split, k, out, sizeof(out)), -EAGAIN);
    assert_int_equal(tls_peek_client_hello_sni(split, n + 5, out, sizeof(out)), 10);
    assert_string_equal(out, "split.test");

    /* Garbage and near misses. */
    {
        static const struct {
            const char *note;
            const char *bytes;
            size_t len;
            ssize_t want;
        } cases[] = {
            {"plain HTTP", "GET / HTTP/1.1\r\n\r\n", 18, -EPROTO},
            {"alert record", "\x15\x03\x01\x00\x02\x02\x28", 7, -EPROTO},
            {"not version 3", "\x16\x02\x00\x00\x04\x01\x00\x00\x00", 9, -EPROTO},
            {"ServerHello", "\x16\x03\x03\x00\x04\x02\x00\x00\x00", 9, -EPROTO},
            {"empty record", "\x16\x03\x01\x00\x00", 5, -EPROTO},
            {"oversized record", "\x16\x03\x01\x40\x01\x01", 6, -EPROTO},
            {"empty ClientHello body", "\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9, -EPROTO},
            {"ClientHello too big", "\x16\x03\x01\x00\x04\x01\x01\x00\x00", 9, -EMSGSIZE},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            print_message("case: %s\n", cases[i].note);
            assert_int_equal(tls_peek_client_hello_sni((const uint8_t *)cases[i].bytes,
                                                       cases[i].len, out, sizeof(out)),
                             cases[i].want);
        }
    }
    /* A corrupted length inside the extensions is caught. */
    n = client_hello(&f->upstream, "corrupt.test", hello, sizeof(hello));
    memcpy(bad, hello, n);
    {
        /* find "corrupt.test" and bump its length prefix past the end */
        uint8_t *h = memmem(bad, n, "corrupt.test", 12);

        assert_non_null(h);
        h[-1] = 0xff;
        assert_int_equal(tls_peek_client_hello_sni(bad, n, out, sizeof(out)), -EPROTO);
        h[-1] = 12;
        h[3] = 0x01; /* a control byte in the name */
        assert_int_equal(tls_peek_client_hello_sni(bad, n, out, sizeof(out)), -EPROTO);
    }
}

static void test_is_client_hello(void **state)
{
    static const struct {
        const char *note, *bytes;
        size_t len;
        bool want;
    } cases[] = {
        {"nothing yet", "", 0, false},
        {"handshake record byte", "\x16", 1, true},
        {"TLS version byte", "\x16\x03", 2, true},
        {"SSLv2-ish", "\x16\x02", 2, false},
        {"ClientHello type", "\x16\x03\x01\x02\x00\x01", 6, true},
        {"ServerHello type", "\x16\x03\x01\x02\x00\x02", 6, false},
        {"GET", "GET ", 4, false},
        {"CONNECT", "CONNECT", 7, false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].note);
        assert_int_equal(tls_peek_is_client_hello((const uint8_t *)cases[i].bytes, cases[i].len),
                         cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pause_capture_chain_verify),
        cmocka_unit_test(test_peer_names_only_forgeable),
        cmocka_unit_test(test_sni_checked),
        cmocka_unit_test(test_alpn_mirror),
        cmocka_unit_test(test_alpn_filter),
        cmocka_unit_test(test_upstream_verify_reasons),
        cmocka_unit_test(test_upstream_ca_partial_chain),
        cmocka_unit_test(test_handshake_failures),
        cmocka_unit_test(test_set_chain_wrong_key),
        cmocka_unit_test(test_ctx_init_errors),
        cmocka_unit_test(test_cipher_suites),
        cmocka_unit_test(test_session_resumption),
        cmocka_unit_test(test_peer_facts_cached),
        cmocka_unit_test(test_peer_cache_big_leaf_not_filed),
        cmocka_unit_test(test_wildcard_resumption),
        cmocka_unit_test(test_wildcard_not_filed),
        cmocka_unit_test(test_session_keyed_by_address),
        cmocka_unit_test(test_bounded_output_and_bulk),
        cmocka_unit_test(test_caller_buffers),
        cmocka_unit_test(test_read_idle_skip),
        cmocka_unit_test(test_stale_errors_ignored),
        cmocka_unit_test(test_peek_sni_every_prefix),
        cmocka_unit_test(test_peek_sni_cases),
        cmocka_unit_test(test_is_client_hello),
    };

    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
