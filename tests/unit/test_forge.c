/* test_forge.c - unit tests for master/forge (leaf forging) and master/cert_cmd.
 * Every forged chain is checked the way a client would: BoringSSL X509 verification against
 * the CA with the hostname/IP and the TLS-server purpose, then field by field. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tests/unit/pki_testutil.h"
#include "master/ca.h"
#include "master/cert_cmd.h"
#include "master/forge.h"

#define DAY 86400

/* ---- helpers ------------------------------------------------------------------------ */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *make_tmpdir(void)
{
    char *dir = strdup("/tmp/mitmd-test-forge-XXXXXX");

    assert_non_null(dir);
    assert_non_null(mkdtemp(dir));
    return dir;
}

/* write_test_ca writes dir/mitmd-ca.pem: a CA of key `type`, valid `days` from now, made with
 * BoringSSL directly (not with master/ca), without SKI so forge computes the key id itself. */
static void write_test_ca(const char *dir, int type, long days)
{
    char path[512];
    EVP_PKEY *key = pki_testutil_gen_key(type);
    X509 *x = X509_new();
    X509_NAME *name;
    time_t now = time(NULL);
    FILE *fp;

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 4242), 1);
    name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const uint8_t *)"test CA", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), -2, 0, &now));
    assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, &now));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    pki_testutil_add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
    pki_testutil_add_ext(x, NID_key_usage, "critical,keyCertSign,cRLSign");
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    snprintf(path, sizeof(path), "%s/" CA_FILE_KEY, dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(PEM_write_X509(fp, x), 1);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(path, 0600), 0); /* ca.c refuses a key readable by others */
    X509_free(x);
    EVP_PKEY_free(key);
}

static X509 *parse_der(const uint8_t *der, size_t len)
{
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);

    assert_non_null(x);
    assert_ptr_equal(p, der + len); /* no trailing bytes */
    return x;
}

/* verify_chain verifies `leaf` against the single trusted root `ca` as a TLS client would,
 * for DNS name `host` or IP literal `ip` (either may be NULL). Returns the X509_V_ code. */
static int verify_chain(X509 *ca, X509 *leaf, const char *host, const char *ip)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_VERIFY_PARAM *param;
    int rc;

    assert_true(store != NULL && ctx != NULL);
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    assert_int_equal(X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER), 1);
    param = X509_STORE_CTX_get0_param(ctx);
    if (host != NULL)
        assert_int_equal(X509_VERIFY_PARAM_set1_host(param, host, strlen(host)), 1);
    if (ip != NULL)
        assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(param, ip), 1);
    rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return rc;
}

/* san_list renders the SANs of `x` as "DNS:name" / "IP:addr" into out[], returns the count. */
static size_t san_list(X509 *x, char out[][300], size_t cap)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    size_t n = 0;

    assert_non_null(gens);
    for (size_t i = 0; i < sk_GENERAL_NAME_num(gens) && n < cap; i++, n++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char ip[INET6_ADDRSTRLEN];

        if (g->type == GEN_DNS) {
            snprintf(out[n], 300, "DNS:%.*s", ASN1_STRING_length(g->d.dNSName),
                     (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        } else if (g->type == GEN_IPADD) {
            int len = ASN1_STRING_length(g->d.iPAddress);

            assert_true(len == 4 || len == 16);
            assert_non_null(inet_ntop(len == 4 ? AF_INET : AF_INET6,
                                      ASN1_STRING_get0_data(g->d.iPAddress), ip, sizeof(ip)));
            snprintf(out[n], 300, "IP:%s", ip);
        } else {
            snprintf(out[n], 300, "other:%d", g->type);
        }
    }
    GENERAL_NAMES_free(gens);
    return n;
}

/* subject_entry returns the value of the (single) `nid` entry in the subject, or "" if none. */
static const char *subject_entry(X509 *x, int nid, char *buf, size_t cap)
{
    X509_NAME *name = X509_get_subject_name(x);
    int idx = X509_NAME_get_index_by_NID(name, nid, -1);
    const ASN1_STRING *s;

    buf[0] = '\0';
    if (idx < 0)
        return buf;
    assert_int_equal(X509_NAME_get_index_by_NID(name, nid, idx), -1);
    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    snprintf(buf, cap, "%.*s", ASN1_STRING_length(s), (const char *)ASN1_STRING_get0_data(s));
    return buf;
}

struct fixture {
    char *dir;
    struct ca *ca;
    struct forge *forge;
    X509 *ca_x509;
};

static int fixture_setup_days(void **state, int type, long days)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char err[512];
    const char *why = NULL;
    const uint8_t *der;
    size_t len;

    assert_non_null(fx);
    fx->dir = make_tmpdir();
    if (days != 0)
        write_test_ca(fx->dir, type, days);
    assert_int_equal(ca_load_or_create(fx->dir, &fx->ca, err, sizeof(err)), 0);
    fx->forge = forge_new(fx->ca, &why);
    assert_non_null(fx->forge);
    der = ca_cert_der(fx->ca, &len);
    fx->ca_x509 = parse_der(der, len);
    *state = fx;
    return 0;
}

static int setup_mitmd_ca(void **state)
{
    return fixture_setup_days(state, EVP_PKEY_EC, 0); /* created by master/ca */
}

static int setup_ca_30_days(void **state)
{
    return fixture_setup_days(state, EVP_PKEY_EC, 30);
}

static int setup_rsa_ca(void **state)
{
    return fixture_setup_days(state, EVP_PKEY_RSA, 3650);
}

static int teardown_fixture(void **state)
{
    struct fixture *fx = *state;

    X509_free(fx->ca_x509);
    forge_free(fx->forge);
    ca_free(fx->ca);
    rm_rf(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

static X509 *forge_x509(struct fixture *fx, const char *const *names, size_t n, const char *org,
                        time_t *not_after)
{
    uint8_t *der = NULL;
    size_t len = 0;
    const char *why = NULL;
    X509 *x;

    assert_int_equal(forge_leaf(fx->forge, names, n, org, &der, &len, not_after, &why), 0);
    assert_null(why);
    x = parse_der(der, len);
    free(der);
    return x;
}

/* ---- forging: valid names ----------------------------------------------------------- */

struct leaf_case {
    const char *note;
    const char *names[5];
    size_t n;
    const char *org;
    const char *want_san[5]; /* exact, in order */
    size_t want_n;
    const char *want_cn; /* "" = no CN */
    const char *host;    /* verified with X509_VERIFY_PARAM_set1_host */
    const char *ip;      /* verified with X509_VERIFY_PARAM_set1_ip_asc */
};

#define LONG_LABEL "abcdefghijabcdefghijabcdefghijabcdefghij" /* 40 */
static const struct leaf_case LEAF_CASES[] = {
    {"one DNS name: CN and the only SAN", {"example.test"}, 1, NULL,
     {"DNS:example.test"}, 1, "example.test", "example.test", NULL},
    {"DNS names and IP literals keep their order; IPs become iPAddress SANs",
     {"example.test", "www.example.test", "127.0.0.1", "::1"}, 4, NULL,
     {"DNS:example.test", "DNS:www.example.test", "IP:127.0.0.1", "IP:::1"}, 4, "example.test",
     NULL, "127.0.0.1"},
    {"IPv6 literal verifies as an IP", {"2001:db8::5"}, 1, NULL, {"IP:2001:db8::5"}, 1,
     "2001:db8::5", NULL, "2001:db8::5"},
    {"IPv4 first name: CN is the literal, SAN is iPAddress", {"10.1.2.3"}, 1, NULL,
     {"IP:10.1.2.3"}, 1, "10.1.2.3", NULL, "10.1.2.3"},
    {"wildcard kept as a wildcard and matches one label", {"*.example.test"}, 1, NULL,
     {"DNS:*.example.test"}, 1, "*.example.test", "a.example.test", NULL},
    {"upstream organization goes into the subject O", {"org.test"}, 1, "Example Org, Inc.",
     {"DNS:org.test"}, 1, "org.test", "org.test", NULL},
    {"UTF-8 organization kept", {"utf8.test"}, 1, "Ünïcødé GmbH", {"DNS:utf8.test"}, 1,
     "utf8.test", "utf8.test", NULL},
    {"duplicate names (any case) listed once", {"dup.test", "DUP.test", "dup.test"}, 3, NULL,
     {"DNS:dup.test"}, 1, "dup.test", "dup.test", NULL},
    {"first name over 64 chars: no CN, still a SAN that verifies",
     {LONG_LABEL "." LONG_LABEL ".test", "short.test"}, 2, NULL,
     {"DNS:" LONG_LABEL "." LONG_LABEL ".test", "DNS:short.test"}, 2, "",
     LONG_LABEL "." LONG_LABEL ".test", NULL},
    {"empty org means no O", {"noorg.test"}, 1, "", {"DNS:noorg.test"}, 1, "noorg.test",
     "noorg.test", NULL},
    {"underscore and hyphen allowed", {"_svc.my-host.test"}, 1, NULL, {"DNS:_svc.my-host.test"},
     1, "_svc.my-host.test", NULL, NULL},
};

static void check_leaf_case(struct fixture *fx, const struct leaf_case *c, int sig_nid)
{
    char sans[8][300], buf[300];
    X509 *leaf;
    size_t n;

    print_message("case: %s\n", c->note);
    leaf = forge_x509(fx, c->names, c->n, c->org, NULL);
    assert_int_equal(verify_chain(fx->ca_x509, leaf, c->host, c->ip), X509_V_OK);
    n = san_list(leaf, sans, 8);
    assert_int_equal(n, c->want_n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(sans[i], c->want_san[i]);
    assert_string_equal(subject_entry(leaf, NID_commonName, buf, sizeof(buf)), c->want_cn);
    assert_string_equal(subject_entry(leaf, NID_organizationName, buf, sizeof(buf)),
                        c->org != NULL ? c->org : "");
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(fx->ca_x509)),
                     0);
    assert_int_equal(X509_get_signature_nid(leaf), sig_nid);
    X509_free(leaf);
}

static void test_forge_leaf_cases(void **state)
{
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(LEAF_CASES) / sizeof(LEAF_CASES[0]); i++)
        check_leaf_case(fx, &LEAF_CASES[i], NID_ecdsa_with_SHA256);
}

static void test_forge_leaf_rsa_ca(void **state)
{
    struct fixture *fx = *state;

    /* an RSA CA signs with sha256WithRSAEncryption; same expectations otherwise */
    assert_int_equal(EVP_PKEY_id(ca_get0_key(fx->ca)), EVP_PKEY_RSA);
    for (size_t i = 0; i < sizeof(LEAF_CASES) / sizeof(LEAF_CASES[0]); i++)
        check_leaf_case(fx, &LEAF_CASES[i], NID_sha256WithRSAEncryption);
}

static void test_forge_leaf_wrong_host_fails(void **state)
{
    struct fixture *fx = *state;
    static const char *const names[] = {"*.example.test", "192.0.2.1"};
    X509 *leaf = forge_x509(fx, names, 2, NULL, NULL);

    /* the verifier really checks names: these must fail (guards the tests above) */
    assert_int_equal(verify_chain(fx->ca_x509, leaf, "other.test", NULL),
                     X509_V_ERR_HOSTNAME_MISMATCH);
    assert_int_equal(verify_chain(fx->ca_x509, leaf, "a.b.example.test", NULL),
                     X509_V_ERR_HOSTNAME_MISMATCH);
    assert_int_equal(verify_chain(fx->ca_x509, leaf, NULL, "192.0.2.2"),
                     X509_V_ERR_IP_ADDRESS_MISMATCH);
    X509_free(leaf);
}

/* ---- forging: extensions, key, validity, serials ------------------------------------- */

static void test_forge_leaf_extensions(void **state)
{
    struct fixture *fx = *state;
    static const char *const names[] = {"ext.test"};
    X509 *leaf = forge_x509(fx, names, 1, NULL, NULL);
    const ASN1_OCTET_STRING *skid, *akid, *ca_skid;
    uint8_t keyid[SHA_DIGEST_LENGTH];
    const ASN1_BIT_STRING *pub;
    int idx;

    assert_int_equal(X509_get_version(leaf), X509_VERSION_3);
    /* basicConstraints critical CA:FALSE */
    idx = X509_get_ext_by_NID(leaf, NID_basic_constraints, -1);
    assert_true(idx >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(leaf, idx)), 1);
    assert_int_equal(X509_check_ca(leaf), 0);
    /* keyUsage critical, digitalSignature only */
    idx = X509_get_ext_by_NID(leaf, NID_key_usage, -1);
    assert_true(idx >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(leaf, idx)), 1);
    assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
    /* EKU serverAuth only */
    assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER);
    /* SKI = SHA-1 of the leaf public key; AKI = the CA's key id */
    pub = X509_get0_pubkey_bitstr(leaf);
    SHA1(ASN1_STRING_get0_data(pub), (size_t)ASN1_STRING_length(pub), keyid);
    skid = X509_get0_subject_key_id(leaf);
    assert_non_null(skid);
    assert_int_equal(ASN1_STRING_length(skid), SHA_DIGEST_LENGTH);
    assert_memory_equal(ASN1_STRING_get0_data(skid), keyid, SHA_DIGEST_LENGTH);
    akid = X509_get0_authority_key_id(leaf);
    assert_non_null(akid);
    ca_skid = X509_get0_subject_key_id(fx->ca_x509);
    if (ca_skid != NULL) {
        assert_int_equal(ASN1_STRING_cmp(akid, ca_skid), 0);
    } else { /* test CA without SKI: RFC 5280 §4.2.1.2 (1) */
        pub = X509_get0_pubkey_bitstr(fx->ca_x509);
        SHA1(ASN1_STRING_get0_data(pub), (size_t)ASN1_STRING_length(pub), keyid);
        assert_int_equal(ASN1_STRING_length(akid), SHA_DIGEST_LENGTH);
        assert_memory_equal(ASN1_STRING_get0_data(akid), keyid, SHA_DIGEST_LENGTH);
    }
    /* SAN not critical when the subject has a CN */
    idx = X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(leaf, idx)), 0);
    X509_free(leaf);
}

static void test_forge_leaf_empty_subject_san_critical(void **state)
{
    struct fixture *fx = *state;
    static const char *const names[] = {LONG_LABEL "." LONG_LABEL ".test"};
    X509 *leaf = forge_x509(fx, names, 1, NULL, NULL);
    int idx;

    /* no CN and no O: RFC 5280 §4.2.1.6 wants the SAN critical */
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(leaf)), 0);
    idx = X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1);
    assert_true(idx >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(leaf, idx)), 1);
    assert_int_equal(verify_chain(fx->ca_x509, leaf, names[0], NULL), X509_V_OK);
    X509_free(leaf);
}

static void test_forge_leaf_key_shared(void **state)
{
    struct fixture *fx = *state;
    static const char *const a[] = {"a.test"}, *const b[] = {"b.test"};
    X509 *la = forge_x509(fx, a, 1, NULL, NULL), *lb = forge_x509(fx, b, 1, NULL, NULL);
    const uint8_t *der;
    size_t len;
    EVP_PKEY *key;
    CBS cbs;

    /* one P-256 key per run, handed to workers as PKCS#8, matches every forged leaf */
    der = forge_leaf_key_der(fx->forge, &len);
    assert_true(der != NULL && len > 0);
    CBS_init(&cbs, der, len);
    key = EVP_parse_private_key(&cbs);
    assert_non_null(key);
    assert_int_equal(CBS_len(&cbs), 0);
    assert_int_equal(EVP_PKEY_id(key), EVP_PKEY_EC);
    assert_int_equal(EC_GROUP_get_curve_name(EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(key))),
                     NID_X9_62_prime256v1);
    assert_int_equal(X509_check_private_key(la, key), 1);
    assert_int_equal(X509_check_private_key(lb, key), 1);
    /* and the CA key is not it */
    assert_int_not_equal(EVP_PKEY_cmp(key, ca_get0_key(fx->ca)), 1);
    EVP_PKEY_free(key);
    X509_free(la);
    X509_free(lb);
}

static void test_forge_leaf_validity(void **state)
{
    struct fixture *fx = *state;
    static const char *const names[] = {"validity.test"};
    time_t now = time(NULL), nb, na, reported;
    X509 *leaf = forge_x509(fx, names, 1, NULL, &reported);

    nb = pki_testutil_asn1_to_posix(X509_get0_notBefore(leaf));
    na = pki_testutil_asn1_to_posix(X509_get0_notAfter(leaf));
    assert_int_equal(na, reported);
    /* notBefore a day back (within the test's own runtime) */
    assert_true(nb >= now - DAY - 60 && nb <= now - DAY + 60);
    /* notAfter at most 397 days ahead and never past the CA; whole validity under 398 days */
    assert_true(na <= now + 397 * DAY + 60);
    assert_true(na <= ca_not_after(fx->ca));
    assert_true(na - nb <= 397 * DAY);
    if (ca_not_after(fx->ca) > now + 397 * DAY)
        assert_true(na >= now + 395 * DAY); /* not needlessly short either */
    X509_free(leaf);
}

static void test_forge_leaf_capped_by_ca(void **state)
{
    struct fixture *fx = *state;
    static const char *const names[] = {"capped.test"};
    time_t now = time(NULL), na;
    X509 *leaf = forge_x509(fx, names, 1, NULL, NULL);

    /* a CA expiring in 30 days: the leaf ends exactly with it and still verifies now */
    assert_true(ca_not_after(fx->ca) <= now + 30 * DAY + 60);
    na = pki_testutil_asn1_to_posix(X509_get0_notAfter(leaf));
    assert_int_equal(na, ca_not_after(fx->ca));
    assert_int_equal(verify_chain(fx->ca_x509, leaf, "capped.test", NULL), X509_V_OK);
    X509_free(leaf);
}

static void test_forge_leaf_serials(void **state)
{
    struct fixture *fx = *state;
    static const char *const names[] = {"serial.test"};
    BIGNUM *serials[100];
    int min_bits = 200;

    /* 100 serials: positive, distinct, about 128 bits (top bit cleared: at most 127) */
    for (size_t i = 0; i < 100; i++) {
        X509 *leaf = forge_x509(fx, names, 1, NULL, NULL);
        int bits;

        serials[i] = ASN1_INTEGER_to_BN(X509_get_serialNumber(leaf), NULL);
        assert_non_null(serials[i]);
        assert_false(BN_is_negative(serials[i]));
        assert_false(BN_is_zero(serials[i]));
        bits = (int)BN_num_bits(serials[i]);
        assert_true(bits <= 127);
        if (bits < min_bits)
            min_bits = bits;
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(BN_cmp(serials[i], serials[j]), 0);
        X509_free(leaf);
    }
    assert_true(min_bits >= 112); /* P(any of 100 below 112 bits) ~ 100 * 2^-15 */
    for (size_t i = 0; i < 100; i++)
        BN_free(serials[i]);
}

/* ---- forging: rejected input --------------------------------------------------------- */

struct bad_case {
    const char *note;
    const char *names[3];
    size_t n;
    const char *org;
};

static char name_254[255], label_64[70];

static const struct bad_case BAD_CASES[] = {
    {"empty name", {""}, 1, NULL},
    {"empty label", {"a..test"}, 1, NULL},
    {"trailing dot (empty last label)", {"a.test."}, 1, NULL},
    {"leading dot", {".a.test"}, 1, NULL},
    {"space", {"exa mple.test"}, 1, NULL},
    {"wildcard not leftmost", {"foo.*.test"}, 1, NULL},
    {"partial-label wildcard", {"f*.test"}, 1, NULL},
    {"bare wildcard", {"*"}, 1, NULL},
    {"wildcard without domain", {"*."}, 1, NULL},
    {"bracketed IPv6", {"[::1]"}, 1, NULL},
    {"IPv6 zone id", {"fe80::1%eth0"}, 1, NULL},
    {"NUL-free control char", {"a\tb.test"}, 1, NULL},
    {"non-ASCII (IDN must come as A-label)", {"b\xc3\xbc.test"}, 1, NULL},
    {"a bad name after a good one", {"good.test", "bad/name"}, 2, NULL},
    {"name longer than 253", {name_254}, 1, NULL},
    {"label longer than 63", {label_64}, 1, NULL},
    {"no names", {NULL}, 0, NULL},
};

static void test_forge_leaf_rejects(void **state)
{
    struct fixture *fx = *state;

    memset(name_254, 'a', sizeof(name_254) - 1);
    for (size_t i = 63; i < sizeof(name_254) - 1; i += 64)
        name_254[i] = '.'; /* labels of 63, total 254 */
    memset(label_64, 'b', 64);
    strcpy(label_64 + 64, ".test");
    for (size_t i = 0; i < sizeof(BAD_CASES) / sizeof(BAD_CASES[0]); i++) {
        const struct bad_case *c = &BAD_CASES[i];
        uint8_t *der = (uint8_t *)"untouched";
        size_t len = 0;
        const char *why = NULL;

        print_message("case: %s\n", c->note);
        assert_int_equal(forge_leaf(fx->forge, c->names, c->n, c->org, &der, &len, NULL, &why),
                         -EINVAL);
        assert_non_null(why);
        assert_string_equal((const char *)der, "untouched");
    }
}

static void test_forge_leaf_too_many_names(void **state)
{
    struct fixture *fx = *state;
    const char *names[FORGE_MAX_NAMES + 1];
    char buf[FORGE_MAX_NAMES + 1][32];
    uint8_t *der = NULL;
    size_t len;
    const char *why = NULL;
    X509 *leaf;
    char sans[FORGE_MAX_NAMES][300];

    for (size_t i = 0; i <= FORGE_MAX_NAMES; i++) {
        snprintf(buf[i], sizeof(buf[i]), "h%zu.many.test", i);
        names[i] = buf[i];
    }
    /* exactly the limit works and lists every name; one more is refused */
    leaf = forge_x509(fx, names, FORGE_MAX_NAMES, NULL, NULL);
    assert_int_equal(san_list(leaf, sans, FORGE_MAX_NAMES), FORGE_MAX_NAMES);
    assert_int_equal(verify_chain(fx->ca_x509, leaf, "h99.many.test", NULL), X509_V_OK);
    X509_free(leaf);
    assert_int_equal(forge_leaf(fx->forge, names, FORGE_MAX_NAMES + 1, NULL, &der, &len, NULL,
                                &why),
                     -EINVAL);
    assert_null(der);
}

static void test_forge_org_truncated(void **state)
{
    struct fixture *fx = *state;
    static const char *const names[] = {"longorg.test"};
    char org[200], buf[300];
    X509 *leaf;

    /* 63 ASCII bytes then a 2-byte character: cut before it, never inside it */
    memset(org, 'o', 63);
    strcpy(org + 63, "\xc3\xa9tail");
    leaf = forge_x509(fx, names, 1, org, NULL);
    subject_entry(leaf, NID_organizationName, buf, sizeof(buf));
    assert_int_equal(strlen(buf), 63);
    assert_memory_equal(buf, org, 63);
    X509_free(leaf);
}

static void test_forge_org_dropped_if_bad(void **state)
{
    struct fixture *fx = *state;
    static const char *const names[] = {"badorg.test"};
    static const struct {
        const char *note;
        const char *org;
    } cases[] = {
        {"org not UTF-8", "\xff\xfe"},
        {"org with a control character", "Evil\nOrg"},
        {"org with a truncated UTF-8 sequence", "Caf\xc3"},
        {"org with an overlong encoding", "\xc0\xafslash"},
        {"org with a 3-byte overlong encoding", "\xe0\x80\xafslash"},
        {"org with a UTF-16 surrogate", "a\xed\xa0\x80" "b"},
        {"org above U+10FFFF", "a\xf4\x90\x80\x80" "b"},
    };

    /* the upstream's organization is cosmetic: a bad one is left out, the cert still made */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[300];
        X509 *leaf;

        print_message("case: %s\n", cases[i].note);
        leaf = forge_x509(fx, names, 1, cases[i].org, NULL);
        assert_string_equal(subject_entry(leaf, NID_organizationName, buf, sizeof(buf)), "");
        assert_string_equal(subject_entry(leaf, NID_commonName, buf, sizeof(buf)),
                            "badorg.test");
        assert_int_equal(verify_chain(fx->ca_x509, leaf, "badorg.test", NULL), X509_V_OK);
        X509_free(leaf);
    }
}

/* ---- mitmd cert ---------------------------------------------------------------------- */

static size_t read_pem_chain(FILE *fp, X509 **out, size_t cap)
{
    size_t n = 0;
    X509 *x;

    rewind(fp);
    while (n < cap && (x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL)
        out[n++] = x;
    ERR_clear_error();
    return n;
}

static void test_cert_cmd(void **state)
{
    char *dir = make_tmpdir(), confdir[512], line[512], ca_path[600];
    char *names[] = {"cmd.test", "127.0.0.1"};
    char *bad[] = {"ok.test", "not a name"};
    FILE *out = tmpfile(), *err = tmpfile(), *fp;
    X509 *chain[3], *file_ca;
    struct stat st;

    assert_true(out != NULL && err != NULL);
    snprintf(confdir, sizeof(confdir), "%s/conf", dir);
    /* first use creates the CA, says so in one line on err, prints leaf then CA */
    assert_int_equal(cert_cmd_run(confdir, 2, names, out, err), 0);
    rewind(err);
    assert_non_null(fgets(line, sizeof(line), err));
    assert_non_null(strstr(line, "created a new CA"));
    assert_null(fgets(line, sizeof(line), err));
    rewind(err);
    assert_int_equal(ftruncate(fileno(err), 0), 0);
    assert_int_equal(read_pem_chain(out, chain, 3), 2);
    snprintf(ca_path, sizeof(ca_path), "%s/" CA_FILE_CERT_PEM, confdir);
    fp = fopen(ca_path, "r");
    assert_non_null(fp);
    file_ca = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(file_ca);
    assert_int_equal(X509_cmp(chain[1], file_ca), 0);
    assert_int_equal(verify_chain(file_ca, chain[0], "cmd.test", NULL), X509_V_OK);
    assert_int_equal(verify_chain(file_ca, chain[0], NULL, "127.0.0.1"), X509_V_OK);
    assert_int_equal(stat(confdir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    X509_free(chain[0]);
    X509_free(chain[1]);
    X509_free(file_ca);

    /* an invalid name: exit 1, nothing on out, one line on err naming it */
    assert_int_equal(ftruncate(fileno(out), 0), 0);
    rewind(out);
    assert_int_equal(cert_cmd_run(confdir, 2, bad, out, err), 1);
    assert_int_equal(ftell(out), 0);
    rewind(err);
    assert_non_null(fgets(line, sizeof(line), err));
    assert_non_null(strstr(line, "mitmd cert: not a name: "));
    assert_null(fgets(line, sizeof(line), err));

    /* no names: usage, exit 1 */
    rewind(err);
    assert_int_equal(cert_cmd_run(confdir, 0, NULL, out, err), 1);
    assert_int_equal(ftell(out), 0);
    fclose(out);
    fclose(err);
    rm_rf(dir);
    free(dir);
}

static void test_cert_cmd_bad_ca(void **state)
{
    char *dir = make_tmpdir(), path[600], line[600];
    char *names[] = {"cmd.test"};
    FILE *out = tmpfile(), *err = tmpfile(), *fp;

    /* a corrupt CA: exit 1 with one line naming the file, the file untouched */
    snprintf(path, sizeof(path), "%s/" CA_FILE_KEY, dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("garbage\n", fp);
    fclose(fp);
    assert_int_equal(cert_cmd_run(dir, 1, names, out, err), 1);
    assert_int_equal(ftell(out), 0);
    rewind(err);
    assert_non_null(fgets(line, sizeof(line), err));
    assert_non_null(strstr(line, path));
    assert_null(fgets(line, sizeof(line), err));
    fp = fopen(path, "r");
    assert_non_null(fgets(line, sizeof(line), fp));
    assert_string_equal(line, "garbage\n");
    fclose(fp);
    fclose(out);
    fclose(err);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_forge_leaf_cases, setup_mitmd_ca, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_forge_leaf_rsa_ca, setup_rsa_ca, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_forge_leaf_wrong_host_fails, setup_mitmd_ca,
                                        teardown_fixture),
        cmocka_unit_test_setup_teardown(test_forge_leaf_extensions, setup_mitmd_ca,
                                        teardown_fixture),
        cmocka_unit_test_setup_teardown(test_forge_leaf_extensions, setup_rsa_ca,
                                        teardown_fixture),
        cmocka_unit_test_setup_teardown(test_forge_leaf_empty_subject_san_critical,
                                        setup_mitmd_ca, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_forge_leaf_key_shared, setup_mitmd_ca,
                                        teardown_fixture),
        cmocka_unit_test_setup_teardown(test_forge_leaf_validity, setup_mitmd_ca,
                                        teardown_fixture),
        cmocka_unit_test_setup_teardown(test_forge_leaf_capped_by_ca, setup_ca_30_days,
                                        teardown_fixture),
        cmocka_unit_test_setup_teardown(test_forge_leaf_serials, setup_mitmd_ca,
                                        teardown_fixture),
        cmocka_unit_test_setup_teardown(test_forge_leaf_rejects, setup_mitmd_ca,
                                        teardown_fixture),
        cmocka_unit_test_setup_teardown(test_forge_leaf_too_many_names, setup_mitmd_ca,
                                        teardown_fixture),
        cmocka_unit_test_setup_teardown(test_forge_org_truncated, setup_mitmd_ca,
                                        teardown_fixture),
        cmocka_unit_test_setup_teardown(test_forge_org_dropped_if_bad, setup_mitmd_ca,
                                        teardown_fixture),
        cmocka_unit_test(test_cert_cmd),
        cmocka_unit_test(test_cert_cmd_bad_ca),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
