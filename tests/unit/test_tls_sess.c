/* test_tls_sess.c - unit tests of worker/tls_sess.c: the key formats (with the connected
 * address), the bounded cache (put/take, replacement, LRU eviction at the limit, the hash
 * index at the default size), and the wildcard policy (which names are eligible, which
 * certificates file a wildcard entry, which names a wildcard entry may serve). Sessions
 * with peer certificates come from real TLS 1.2 handshakes over a BIO pair. */
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
#include <sys/un.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "worker/tls_sess.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers -------------------------------------------------------------------------- */

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
    struct sockaddr_in a;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return a;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port, uint32_t scope)
{
    struct sockaddr_in6 a;

    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    a.sin6_scope_id = scope;
    assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    return a;
}

/* cert_new makes a self-signed certificate for `key` with subjectAltName `san`. */
static X509 *cert_new(EVP_PKEY *key, const char *san)
{
    X509 *x = X509_new();
    X509V3_CTX v3;
    X509_EXTENSION *ext;

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                                (const uint8_t *)"test", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &v3, NID_subject_alt_name, san);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

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

/* struct hs is one finished TLS 1.2 handshake: `c` (client, full handshake) talked to a
 * server presenting a certificate with subjectAltName `san`. */
struct hs {
    SSL_CTX *cctx, *sctx;
    SSL *c, *s;
};

static void hs_run(struct hs *h, const char *san)
{
    EVP_PKEY *key = key_new();
    X509 *cert = cert_new(key, san);
    BIO *bc, *bs;
    int rc = -1, rs = -1;

    memset(h, 0, sizeof(*h));
    h->cctx = SSL_CTX_new(TLS_method());
    h->sctx = SSL_CTX_new(TLS_method());
    assert_non_null(h->cctx);
    assert_non_null(h->sctx);
    assert_int_equal(SSL_CTX_set_max_proto_version(h->cctx, TLS1_2_VERSION), 1);
    assert_int_equal(SSL_CTX_use_certificate(h->sctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(h->sctx, key), 1);
    SSL_CTX_set_session_cache_mode(h->cctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    h->c = SSL_new(h->cctx);
    h->s = SSL_new(h->sctx);
    assert_non_null(h->c);
    assert_non_null(h->s);
    assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(h->c, bc, bc);
    SSL_set_bio(h->s, bs, bs);
    SSL_set_connect_state(h->c);
    SSL_set_accept_state(h->s);
    for (int i = 0; i < 32 && (rc != 1 || rs != 1); i++) {
        if (rc != 1)
            rc = SSL_do_handshake(h->c);
        if (rs != 1)
            rs = SSL_do_handshake(h->s);
    }
    assert_int_equal(rc, 1);
    assert_int_equal(rs, 1);
    assert_int_equal(SSL_session_reused(h->c), 0);
    X509_free(cert);
    EVP_PKEY_free(key);
}

static void hs_free(struct hs *h)
{
    SSL_free(h->c);
    SSL_free(h->s);
    SSL_CTX_free(h->cctx);
    SSL_CTX_free(h->sctx);
}

/* entry_of returns the session cached under `key` (borrowed) without counting or
 * reordering, or NULL. */
static SSL_SESSION *entry_of(const struct tls_sess_cache *s, const char *key)
{
    for (uint32_t i = 0; i < s->_used; i++)
        if (strcmp(s->_entry[i].key, key) == 0)
            return s->_entry[i].sess;
    return NULL;
}

/* ---- keys ----------------------------------------------------------------------------- */

static void test_addr_text(void **state)
{
    (void)state;
    struct sockaddr_in a4 = v4("192.0.2.1", 443);
    struct sockaddr_in6 a6 = v6("2001:db8::1", 8443, 0);
    struct sockaddr_in6 ll = v6("fe80::1", 443, 3);
    struct sockaddr_in6 max = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 4294967295u);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    struct {
        const char *note;
        const struct sockaddr *sa;
        socklen_t len;
        int ret;
        const char *want;
    } cases[] = {
        {"no address: empty part", NULL, 0, 0, ""},
        {"IPv4 with its port", (const struct sockaddr *)&a4, sizeof(a4), 0, "192.0.2.1:443"},
        {"IPv6 in brackets", (const struct sockaddr *)&a6, sizeof(a6), 0, "[2001:db8::1]:8443"},
        {"IPv6 link-local keeps its scope id", (const struct sockaddr *)&ll, sizeof(ll), 0,
         "[fe80::1%3]:443"},
        {"the longest address fits TLS_SESS_ADDR_MAX", (const struct sockaddr *)&max,
         sizeof(max), 0, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535"},
        {"IPv4 length too short", (const struct sockaddr *)&a4, sizeof(a4) - 1, -EINVAL, ""},
        {"IPv6 with an IPv4 length", (const struct sockaddr *)&a6, sizeof(a4), -EINVAL, ""},
        {"another family", (const struct sockaddr *)&un, sizeof(un), -EINVAL, ""},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char out[TLS_SESS_ADDR_MAX];

        print_message("case: %s\n", cases[i].note);
        assert_int_equal(tls_sess_addr_text(cases[i].sa, cases[i].len, out, sizeof(out)),
                         cases[i].ret);
        assert_string_equal(out, cases[i].want);
    }
}

static void test_key_make(void **state)
{
    (void)state;
    char long_host[254];
    struct {
        const char *note, *host;
        uint16_t port;
        const char *sni, *addr;
        size_t cap;
        int ret;
        const char *want;
    } cases[] = {
        {"all parts", "example.test", 443, "example.test", "192.0.2.1:443", TLS_SESS_KEY_MAX, 0,
         "example.test|443|example.test|192.0.2.1:443"},
        {"no SNI (an IP literal host)", "192.0.2.1", 443, NULL, "192.0.2.1:443",
         TLS_SESS_KEY_MAX, 0, "192.0.2.1|443||192.0.2.1:443"},
        {"no address given", "example.test", 8443, "example.test", NULL, TLS_SESS_KEY_MAX, 0,
         "example.test|8443|example.test|"},
        {"no verify host (-k, no SNI)", NULL, 443, NULL, "[2001:db8::1]:443", TLS_SESS_KEY_MAX, 0,
         "|443||[2001:db8::1]:443"},
        {"a '*' in the host is never a key", "*.example.test", 443, "x", "", TLS_SESS_KEY_MAX,
         -EINVAL, ""},
        {"a '*' in the SNI is never a key", "a.test", 443, "*.test", "", TLS_SESS_KEY_MAX, -EINVAL,
         ""},
        {"does not fit", "example.test", 443, "example.test", "", 20, -ENAMETOOLONG, ""},
        {"the longest names and address fit TLS_SESS_KEY_MAX", long_host, 65535, long_host,
         "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535", TLS_SESS_KEY_MAX, 0,
         NULL},
    };

    memset(long_host, 'a', sizeof(long_host) - 1);
    long_host[sizeof(long_host) - 1] = '\0';
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char out[TLS_SESS_KEY_MAX];

        print_message("case: %s\n", cases[i].note);
        assert_true(cases[i].cap <= sizeof(out));
        assert_int_equal(tls_sess_key_make(out, cases[i].cap, cases[i].host, cases[i].port,
                                           cases[i].sni, cases[i].addr),
                         cases[i].ret);
        if (cases[i].want != NULL)
            assert_string_equal(out, cases[i].want);
    }
}

/* Which connections may share sessions with the other names of a "*.D" certificate. */
static void test_wild_key_eligibility(void **state)
{
    (void)state;
    struct {
        const char *note;
        bool verified;
        const char *host, *sni;
        const char *want; /* NULL = not eligible */
    } cases[] = {
        {"one label below a two-label domain", true, "a.example.test", "a.example.test",
         "*.example.test|443|*.example.test|192.0.2.1:443"},
        {"the domain is lower-cased, the first label dropped", true, "Www.Example.TEST",
         "Www.Example.TEST", "*.example.test|443|*.example.test|192.0.2.1:443"},
        {"-k: nothing was verified", false, "a.example.test", "a.example.test", NULL},
        {"no SNI sent", true, "a.example.test", NULL, NULL},
        {"SNI differs from the verified name", true, "a.example.test", "b.example.test", NULL},
        {"a one-label domain (*.test matches nothing)", true, "example.test", "example.test",
         NULL},
        {"an empty first label", true, ".example.test", ".example.test", NULL},
        {"a trailing dot", true, "a.example.test.", "a.example.test.", NULL},
        {"a single label", true, "localhost", "localhost", NULL},
        {"a '*' in the name", true, "*.example.test", "*.example.test", NULL},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char out[TLS_SESS_KEY_MAX];
        bool ok;

        print_message("case: %s\n", cases[i].note);
        ok = tls_sess_wild_key_make(out, sizeof(out), cases[i].verified, cases[i].host, 443,
                                    cases[i].sni, "192.0.2.1:443");
        assert_int_equal(ok, cases[i].want != NULL);
        assert_string_equal(out, cases[i].want != NULL ? cases[i].want : "");
    }
}

/* Issue 10 item 12: the same names at two addresses (or two ports of one address) get two
 * keys, exact and wildcard; a link that gives no address gets a third. Fails when the
 * address is left out of the keys. */
static void test_link_keys_differ_by_address(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("192.0.2.1", 443), b = v4("192.0.2.2", 443);
    struct sockaddr_in c = v4("192.0.2.1", 8443);
    struct sockaddr_in6 d = v6("2001:db8::1", 443, 0);
    const struct {
        const struct sockaddr *sa;
        socklen_t len;
    } addrs[] = {
        {(const struct sockaddr *)&a, sizeof(a)},
        {(const struct sockaddr *)&b, sizeof(b)},
        {(const struct sockaddr *)&c, sizeof(c)},
        {(const struct sockaddr *)&d, sizeof(d)},
        {NULL, 0},
    };
    struct tls_sess_link l[ARRAY_LEN(addrs)];
    struct tls_sess_cache cache;

    memset(&cache, 0, sizeof(cache));
    for (size_t i = 0; i < ARRAY_LEN(addrs); i++) {
        assert_int_equal(tls_sess_link_init(&l[i], &cache, true, "a.example.test",
                                            "a.example.test", 443, addrs[i].sa, addrs[i].len),
                         0);
        assert_int_not_equal(l[i]._key[0], '\0');
        assert_int_not_equal(l[i]._wild_key[0], '\0');
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(l[i]._key, l[j]._key);
            assert_string_not_equal(l[i]._wild_key, l[j]._wild_key);
        }
    }
    assert_string_equal(l[0]._key, "a.example.test|443|a.example.test|192.0.2.1:443");
    assert_string_equal(l[0]._wild_key, "*.example.test|443|*.example.test|192.0.2.1:443");
    print_message("case: a malformed address is refused and the link caches nothing\n");
    assert_int_equal(tls_sess_link_init(&l[0], &cache, true, "a.example.test", "a.example.test",
                                        443, (const struct sockaddr *)&d, sizeof(a)),
                     -EINVAL);
    assert_string_equal(l[0]._key, "");
    assert_string_equal(l[0]._wild_key, "");
}

/* ---- the table ------------------------------------------------------------------------ */

static void test_cache_init(void **state)
{
    (void)state;
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    struct tls_sess_cache s;

    assert_non_null(ctx);
    print_message("case: a cache of 0 entries is refused, and leaves nothing to free\n");
    assert_int_equal(tls_sess_cache_init(&s, 0), -EINVAL);
    assert_null(s._entry);
    tls_sess_cache_dispose(&s);
    print_message("case: the index has a power of two buckets, at least twice the entries\n");
    assert_int_equal(tls_sess_cache_init(&s, 5), 0);
    assert_int_equal(s._cap, 5);
    assert_int_equal(s._nbuckets, 16);
    tls_sess_cache_dispose(&s);
    tls_sess_cache_dispose(&s); /* twice is harmless */
    print_message("case: a zeroed cache takes nothing and frees what it is given\n");
    memset(&s, 0, sizeof(s));
    tls_sess_put(&s, "k|443||", SSL_SESSION_new(ctx)); /* ASan: no leak */
    assert_null(tls_sess_take(&s, "k|443||"));
    SSL_CTX_free(ctx);
}

static void test_put_take(void **state)
{
    (void)state;
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    struct tls_sess_cache s;
    SSL_SESSION *a, *b, *got;
    char long_key[TLS_SESS_KEY_MAX + 1];

    assert_non_null(ctx);
    assert_int_equal(tls_sess_cache_init(&s, 8), 0);
    a = SSL_SESSION_new(ctx);
    b = SSL_SESSION_new(ctx);
    print_message("case: a miss counts a miss\n");
    assert_null(tls_sess_take(&s, "a.test|443|a.test|192.0.2.1:443"));
    assert_int_equal(s.misses, 1);
    print_message("case: put then take returns a new reference and counts a hit\n");
    SSL_SESSION_up_ref(a);
    tls_sess_put(&s, "a.test|443|a.test|192.0.2.1:443", a);
    got = tls_sess_take(&s, "a.test|443|a.test|192.0.2.1:443");
    assert_ptr_equal(got, a);
    SSL_SESSION_free(got);
    assert_int_equal(s.hits, 1);
    print_message("case: the same names at another address miss\n");
    assert_null(tls_sess_take(&s, "a.test|443|a.test|192.0.2.2:443"));
    assert_null(tls_sess_take(&s, "a.test|443|a.test|"));
    assert_int_equal(s.misses, 3);
    print_message("case: a newer session replaces the old one in place\n");
    SSL_SESSION_up_ref(b);
    tls_sess_put(&s, "a.test|443|a.test|192.0.2.1:443", b);
    assert_int_equal(s._used, 1);
    got = tls_sess_take(&s, "a.test|443|a.test|192.0.2.1:443");
    assert_ptr_equal(got, b);
    SSL_SESSION_free(got);
    print_message("case: an empty or over-long key is not stored (the reference is freed)\n");
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    SSL_SESSION_up_ref(a);
    tls_sess_put(&s, "", a);
    SSL_SESSION_up_ref(a);
    tls_sess_put(&s, long_key, a);
    assert_int_equal(s._used, 1);
    assert_null(tls_sess_take(&s, long_key));
    assert_null(tls_sess_take(&s, ""));
    SSL_SESSION_free(a);
    SSL_SESSION_free(b);
    tls_sess_cache_dispose(&s); /* frees the cached reference of b */
    SSL_CTX_free(ctx);
}

/* At the limit the least recently used entry goes; taking an entry or replacing its
 * session makes it the most recently used. */
static void test_lru_limit(void **state)
{
    (void)state;
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    SSL_SESSION *a = SSL_SESSION_new(ctx);
    struct tls_sess_cache s;
    struct {
        const char *note;
        char op;           /* 'p' put, 't' take */
        const char *key;
        bool hit;          /* take: expected to hit */
        uint64_t evictions; /* total after the step */
    } steps[] = {
        {"fill: k0", 'p', "k0", false, 0},
        {"fill: k1", 'p', "k1", false, 0},
        {"fill: k2", 'p', "k2", false, 0},
        {"full at 3; taking k0 makes k1 the oldest", 't', "k0", true, 0},
        {"k3 evicts k1", 'p', "k3", false, 1},
        {"k1 is gone", 't', "k1", false, 1},
        {"replacing k2 makes k0 the oldest", 'p', "k2", false, 1},
        {"k4 evicts k0", 'p', "k4", false, 2},
        {"k0 is gone", 't', "k0", false, 2},
        {"k2 stays", 't', "k2", true, 2},
        {"k3 stays", 't', "k3", true, 2},
        {"k4 stays", 't', "k4", true, 2},
        {"k5 evicts k2, now the oldest", 'p', "k5", false, 3},
        {"k2 is gone", 't', "k2", false, 3},
    };

    assert_non_null(a);
    assert_int_equal(tls_sess_cache_init(&s, 3), 0);
    for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
        print_message("step: %s\n", steps[i].note);
        if (steps[i].op == 'p') {
            SSL_SESSION_up_ref(a);
            tls_sess_put(&s, steps[i].key, a);
        } else {
            SSL_SESSION *got = tls_sess_take(&s, steps[i].key);

            assert_int_equal(got != NULL, steps[i].hit);
            SSL_SESSION_free(got);
        }
        assert_int_equal(s.evictions, steps[i].evictions);
        assert_true(s._used <= 3);
    }
    SSL_SESSION_free(a);
    tls_sess_cache_dispose(&s);
    SSL_CTX_free(ctx);
}

/* The default cache holds TLS_SESS_CACHE_SIZE keys, each found through the hash index; when
 * full, the least recently used keys go, in order. */
static void test_default_size_index(void **state)
{
    (void)state;
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    SSL_SESSION *a = SSL_SESSION_new(ctx), *got;
    struct tls_sess_cache s;
    const int n = TLS_SESS_CACHE_SIZE;
    char key[96];

    assert_non_null(a);
    assert_int_equal(tls_sess_cache_init(&s, TLS_SESS_CACHE_SIZE), 0);
    print_message("case: %d distinct keys all fit\n", n);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "h%d.example.test|443|h%d.example.test|192.0.2.1:443", i, i);
        SSL_SESSION_up_ref(a);
        tls_sess_put(&s, key, a);
    }
    assert_int_equal(s.evictions, 0);
    print_message("case: every key hits, taken newest first (h%d becomes the oldest)\n", n - 1);
    for (int i = n - 1; i >= 0; i--) {
        snprintf(key, sizeof(key), "h%d.example.test|443|h%d.example.test|192.0.2.1:443", i, i);
        got = tls_sess_take(&s, key);
        assert_ptr_equal(got, a);
        SSL_SESSION_free(got);
    }
    assert_int_equal(s.hits, n);
    print_message("case: %d new keys evict exactly h%d .. h%d\n", n / 2, n / 2, n - 1);
    for (int i = 0; i < n / 2; i++) {
        snprintf(key, sizeof(key), "new%d|443||", i);
        SSL_SESSION_up_ref(a);
        tls_sess_put(&s, key, a);
    }
    assert_int_equal(s.evictions, n / 2);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "h%d.example.test|443|h%d.example.test|192.0.2.1:443", i, i);
        got = tls_sess_take(&s, key);
        assert_int_equal(got != NULL, i < n / 2);
        SSL_SESSION_free(got);
    }
    SSL_SESSION_free(a);
    tls_sess_cache_dispose(&s);
    SSL_CTX_free(ctx);
}

/* ---- the wildcard policy -------------------------------------------------------------- */

/* A wildcard entry serves only the names its certificate covers. */
static void test_take_wildcard(void **state)
{
    (void)state;
    struct hs wild, list;
    struct tls_sess_cache s;
    SSL_SESSION *sw, *sl, *got;
    const char *wk = "*.example.test|443|*.example.test|192.0.2.1:443";
    struct {
        const char *note, *key, *host;
        bool hit;
    } cases[] = {
        {"b.example.test is covered by *.example.test", wk, "b.example.test", true},
        {"case-insensitive", wk, "C.EXAMPLE.test", true},
        {"two labels in front are not covered", wk, "x.y.example.test", false},
        {"a label verification would refuse is not covered", wk, "a_b.example.test", false},
        {"the domain itself is not covered", wk, "example.test", false},
        {"another domain is not covered", wk, "b.other.test", false},
        {"a leaf without *.example.test, filed under it by mistake, serves nothing else",
         "*.other.test|443|*.other.test|", "b.other.test", false},
        {"a missing key", "*.none.test|443|*.none.test|", "a.none.test", false},
    };

    hs_run(&wild, "DNS:*.example.test");
    hs_run(&list, "DNS:a.other.test,DNS:c.other.test");
    sw = SSL_get1_session(wild.c);
    sl = SSL_get1_session(list.c);
    assert_non_null(sw);
    assert_non_null(sl);
    print_message("case: has_dns_name finds the SAN exactly (case-insensitive)\n");
    assert_true(tls_sess_has_dns_name(sw, "*.example.test", 14));
    assert_true(tls_sess_has_dns_name(sw, "*.EXAMPLE.test", 14));
    assert_false(tls_sess_has_dns_name(sw, "a.example.test", 14));
    assert_false(tls_sess_has_dns_name(sw, "*.example.tes", 13));
    assert_false(tls_sess_has_dns_name(sl, "*.other.test", 12));
    assert_int_equal(tls_sess_cache_init(&s, 8), 0);
    SSL_SESSION_up_ref(sw);
    tls_sess_put(&s, wk, sw);
    SSL_SESSION_up_ref(sl);
    tls_sess_put(&s, "*.other.test|443|*.other.test|", sl);
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint64_t before = s.wildcard_hits;

        print_message("case: %s\n", cases[i].note);
        got = tls_sess_take_wildcard(&s, cases[i].key, cases[i].host);
        assert_int_equal(got != NULL, cases[i].hit);
        assert_int_equal(s.wildcard_hits - before, cases[i].hit ? 1 : 0);
        SSL_SESSION_free(got);
    }
    assert_int_equal(s.hits, 0);
    assert_int_equal(s.misses, 0);
    tls_sess_cache_dispose(&s);
    SSL_SESSION_free(sw);
    SSL_SESSION_free(sl);
    hs_free(&wild);
    hs_free(&list);
}

/* A link files a full handshake's session under its exact key, and under its wildcard key
 * only when eligible and the leaf names "*.D"; another name at the same address is then
 * offered it, another address is not. */
static void test_link_file_and_offer(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("192.0.2.1", 443), b = v4("192.0.2.2", 443);
    struct {
        const char *note, *san;
        bool verified;
        const char *sni1;
        const struct sockaddr_in *addr2;
        const char *sni2;
        bool wild_filed, offered2, across2;
    } cases[] = {
        {"*.example.test leaf: both keys; b at the same address is offered a's session",
         "DNS:*.example.test", true, "a.example.test", &a, "b.example.test", true, true, true},
        {"*.example.test leaf: b at another address is offered nothing", "DNS:*.example.test",
         true, "a.example.test", &b, "b.example.test", true, false, false},
        {"a at the same address is offered its own session (exact key)", "DNS:*.example.test",
         true, "a.example.test", &a, "a.example.test", true, true, false},
        {"a at another address is offered nothing", "DNS:*.example.test", true,
         "a.example.test", &b, "a.example.test", true, false, false},
        {"names listed one by one: the exact key only", "DNS:a.example.test,DNS:b.example.test",
         true, "a.example.test", &a, "b.example.test", false, false, false},
        {"-k: the exact key only", "DNS:*.example.test", false, "a.example.test", &a,
         "b.example.test", false, false, false},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct tls_sess_link l1, l2;
        struct tls_sess_cache s;
        struct hs h;
        SSL_SESSION *sess;
        SSL *ssl;

        print_message("case: %s\n", cases[i].note);
        assert_int_equal(tls_sess_cache_init(&s, 8), 0);
        hs_run(&h, cases[i].san);
        sess = SSL_get1_session(h.c);
        assert_non_null(sess);
        assert_int_equal(tls_sess_link_init(&l1, &s, cases[i].verified, cases[i].sni1,
                                            cases[i].sni1, 443, (const struct sockaddr *)&a,
                                            sizeof(a)),
                         0);
        assert_true(tls_sess_link_file(&l1, h.c, sess)); /* takes the reference */
        assert_non_null(entry_of(&s, l1._key));
        assert_int_equal(entry_of(&s, "*.example.test|443|*.example.test|192.0.2.1:443") != NULL,
                         cases[i].wild_filed);
        assert_int_equal(tls_sess_link_init(&l2, &s, cases[i].verified, cases[i].sni2,
                                            cases[i].sni2, 443,
                                            (const struct sockaddr *)cases[i].addr2,
                                            sizeof(*cases[i].addr2)),
                         0);
        ssl = SSL_new(h.cctx);
        assert_non_null(ssl);
        assert_int_equal(tls_sess_link_offer(&l2, ssl, cases[i].sni2), 0);
        assert_int_equal(SSL_get_session(ssl) != NULL, cases[i].offered2);
        assert_int_equal(tls_sess_link_is_across_names(&l2), cases[i].across2);
        SSL_free(ssl);
        tls_sess_cache_dispose(&s);
        hs_free(&h);
    }
}

/* A link that cannot be keyed files and offers nothing (the callback returns 0). */
static void test_link_uncacheable(void **state)
{
    (void)state;
    struct tls_sess_link l;
    struct tls_sess_cache s;
    struct hs h;
    SSL_SESSION *sess;

    assert_int_equal(tls_sess_cache_init(&s, 8), 0);
    hs_run(&h, "DNS:*.example.test");
    sess = SSL_get1_session(h.c);
    assert_int_equal(tls_sess_link_init(&l, &s, true, "*.example.test", "*.example.test", 443,
                                        NULL, 0),
                     0);
    assert_false(tls_sess_link_file(&l, h.c, sess));
    assert_int_equal(s._used, 0);
    SSL_SESSION_free(sess);
    print_message("case: a zeroed link files nothing\n");
    memset(&l, 0, sizeof(l));
    sess = SSL_get1_session(h.c);
    assert_false(tls_sess_link_file(&l, h.c, sess));
    SSL_SESSION_free(sess);
    tls_sess_cache_dispose(&s);
    hs_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_text),
        cmocka_unit_test(test_key_make),
        cmocka_unit_test(test_wild_key_eligibility),
        cmocka_unit_test(test_link_keys_differ_by_address),
        cmocka_unit_test(test_cache_init),
        cmocka_unit_test(test_put_take),
        cmocka_unit_test(test_lru_limit),
        cmocka_unit_test(test_default_size_index),
        cmocka_unit_test(test_take_wildcard),
        cmocka_unit_test(test_link_file_and_offer),
        cmocka_unit_test(test_link_uncacheable),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
