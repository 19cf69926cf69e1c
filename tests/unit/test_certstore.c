/* test_certstore.c - certcache/certstore: PEM files are loaded with their chain and key and
 * refused when the key is missing or belongs to another certificate; --certs names match as
 * mitmproxy's asterisk forms do (exact > longer wildcard > "*"; without DOMAIN the leaf's
 * names, a SAN wildcard covering one label); client_certs prefers the host's own file; the
 * bundle round-trips and every truncation of it is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certcache/certstore.h"
#include "shared/config.h"
#include "tests/unit/pki_testutil.h"

static char dir[] = "/tmp/test_certstore.XXXXXX";

/* write_pem writes a self-signed certificate for CN `cn` with SAN `san` (may be NULL) to
 * dir/name: the certificate, then the key (or another key when `wrong_key`, none when
 * `no_key`). Returns the path (static buffer rotation of 4). */
static const char *write_pem(const char *name, const char *cn, const char *san, bool no_key,
                             bool wrong_key)
{
    static char paths[4][256];
    static int k;
    char *path = paths[k++ % 4];
    EVP_PKEY *key = pki_testutil_gen_key(EVP_PKEY_EC), *other = NULL;
    X509 *x = X509_new();
    FILE *f;

    snprintf(path, 256, "%s/%s", dir, name);
    assert_non_null(x);
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, key);
    if (san != NULL)
        pki_testutil_add_ext(x, NID_subject_alt_name, san);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    if (wrong_key) {
        other = pki_testutil_gen_key(EVP_PKEY_EC);
        PEM_write_PrivateKey(f, other, NULL, NULL, 0, NULL, NULL);
    } else if (!no_key) {
        PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    }
    fclose(f);
    EVP_PKEY_free(other);
    EVP_PKEY_free(key);
    X509_free(x);
    return path;
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_load_refusals(void **state)
{
    struct certstore s = {0};
    char err[512];

    (void)state;
    assert_int_equal(certstore_add_pem(&s, CERTSTORE_SERVER, NULL,
                                       write_pem("ok.pem", "a.test", "DNS:a.test", false, false),
                                       err, sizeof(err)),
                     0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.e[0].n_chain, 1);
    assert_true(certstore_add_pem(&s, CERTSTORE_SERVER, NULL, "/nonexistent/x.pem", err,
                                  sizeof(err)) == -ENOENT);
    assert_non_null(strstr(err, "No such file"));
    assert_true(certstore_add_pem(&s, CERTSTORE_SERVER, NULL,
                                  write_pem("nokey.pem", "b.test", NULL, true, false), err,
                                  sizeof(err)) == -EINVAL);
    assert_non_null(strstr(err, "no (unencrypted) PEM private key"));
    assert_true(certstore_add_pem(&s, CERTSTORE_SERVER, NULL,
                                  write_pem("wrong.pem", "c.test", NULL, false, true), err,
                                  sizeof(err)) == -EINVAL);
    assert_non_null(strstr(err, "does not match"));
    assert_int_equal(s.n, 1); /* refused files leave nothing behind */
    certstore_dispose(&s);
}

struct match_case {
    const char *note;
    const char *names[3];
    const char *want; /* the entry's name, or its leaf CN for entries without DOMAIN; NULL */
};

static void test_match_server(void **state)
{
    struct certstore s = {0};
    char err[512];
    static const struct match_case cases[] = {
        {"exact DOMAIN beats every wildcard", {"api.shop.test"}, "api.shop.test"},
        {"longer wildcard suffix wins", {"x.eu.shop.test"}, "*.eu.shop.test"},
        {"DOMAIN wildcard covers any depth (mitmproxy)", {"a.b.shop.test"}, "*.shop.test"},
        {"a wildcard does not cover its own suffix", {"shop.test"}, NULL},
        {"leaf CN without DOMAIN", {"named.test"}, "named.test"},
        {"leaf SAN wildcard: one label", {"w.leaf.test"}, "named.test"},
        {"leaf SAN wildcard: not two labels", {"a.w.leaf.test"}, NULL},
        {"case-insensitive", {"API.Shop.Test"}, "api.shop.test"},
        {"the first name that matches decides", {"nothing.test", "named.test"}, "named.test"},
        {"no match", {"other.test"}, NULL},
    };

    (void)state;
    assert_int_equal(certstore_add_pem(&s, CERTSTORE_SERVER, "*.shop.test",
                                       write_pem("w1.pem", "w1", NULL, false, false), err,
                                       sizeof(err)),
                     0);
    assert_int_equal(certstore_add_pem(&s, CERTSTORE_SERVER, "*.eu.shop.test",
                                       write_pem("w2.pem", "w2", NULL, false, false), err,
                                       sizeof(err)),
                     0);
    assert_int_equal(certstore_add_pem(&s, CERTSTORE_SERVER, "API.shop.test",
                                       write_pem("e.pem", "e", NULL, false, false), err,
                                       sizeof(err)),
                     0);
    assert_int_equal(certstore_add_pem(&s, CERTSTORE_SERVER, NULL,
                                       write_pem("n.pem", "named.test", "DNS:*.leaf.test", false,
                                                 false),
                                       err, sizeof(err)),
                     0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct match_case *c = &cases[i];
        size_t n = 0;
        const struct certstore_entry *e;

        while (n < 3 && c->names[n] != NULL)
            n++;
        e = certstore_match_server(&s, c->names, n);
        if (c->want == NULL) {
            assert_null(e);
            continue;
        }
        assert_non_null(e);
        if (e->name[0] != '\0')
            assert_string_equal(e->name, c->want);
        else
            assert_string_equal(e->names[0], c->want);
    }
    /* "*" is the last resort for every name */
    assert_int_equal(certstore_add_pem(&s, CERTSTORE_SERVER, "*",
                                       write_pem("s.pem", "star", NULL, false, false), err,
                                       sizeof(err)),
                     0);
    {
        const char *other[] = {"other.test"}, *named[] = {"named.test"};

        assert_string_equal(certstore_match_server(&s, other, 1)->name, "*");
        assert_string_equal(certstore_match_server(&s, named, 1)->names[0], "named.test");
    }
    certstore_dispose(&s);
}

static void test_match_client_and_bundle(void **state)
{
    struct certstore s = {0}, d = {0};
    uint8_t *bundle = NULL;
    size_t len = 0;
    const char *why = NULL;
    char err[512];

    (void)state;
    assert_null(certstore_match_client(&s, "www.test"));
    assert_int_equal(certstore_add_pem(&s, CERTSTORE_CLIENT, "www.test",
                                       write_pem("c1.pem", "c1", NULL, false, false), err,
                                       sizeof(err)),
                     0);
    assert_null(certstore_match_client(&s, "api.test")); /* DIR mode: only the host's file */
    assert_int_equal(certstore_add_pem(&s, CERTSTORE_CLIENT, NULL,
                                       write_pem("c2.pem", "c2", NULL, false, false), err,
                                       sizeof(err)),
                     0);
    assert_string_equal(certstore_match_client(&s, "WWW.test")->name, "www.test");
    assert_string_equal(certstore_match_client(&s, "api.test")->name, "");
    assert_int_equal(certstore_add_file(&s, "pem", (const uint8_t *)"PEMBYTES", 8), 0);
    assert_int_equal(certstore_encode(&s, &bundle, &len), 0);
    assert_int_equal(certstore_decode(&d, bundle, len, &why), 0);
    assert_int_equal(d.n, s.n);
    assert_int_equal(certstore_file(&d, "pem")->data_len, 8);
    assert_memory_equal(certstore_file(&d, "pem")->data, "PEMBYTES", 8);
    assert_string_equal(certstore_match_client(&d, "www.test")->name, "www.test");
    certstore_dispose(&d);
    /* every proper prefix is refused (the entry count catches a cut at an entry boundary) */
    for (size_t n = 0; n < len; n++) {
        struct certstore t = {0};

        assert_int_equal(certstore_decode(&t, bundle, n, &why), -EINVAL);
        certstore_dispose(&t);
    }
    certstore_free_bundle(bundle, len);
    certstore_dispose(&s);
}

static void test_load_config(void **state)
{
    struct config cfg;
    struct certstore s = {0};
    char err[512], spec[300], cdir[300];

    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(spec, sizeof(spec), "bad domain!=%s", write_pem("d.pem", "d", NULL, false, false));
    cfg.certs[0] = spec;
    cfg.n_certs = 1;
    assert_int_equal(certstore_load_config(&s, &cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "--certs"));
    snprintf(spec, sizeof(spec), "*.Good.test=%s", write_pem("d.pem", "d", NULL, false, false));
    snprintf(cdir, sizeof(cdir), "%s/clients", dir);
    assert_int_equal(mkdir(cdir, 0700), 0);
    write_pem("clients/www.test.pem", "www", NULL, false, false);
    write_pem("clients/README", "not a pem name", NULL, true, false); /* skipped */
    cfg.client_certs = cdir; /* a directory: each HOST.pem in it */
    assert_int_equal(certstore_load_config(&s, &cfg, err, sizeof(err)), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.e[0].name, "*.good.test");
    assert_string_equal(certstore_match_client(&s, "www.test")->name, "www.test");
    assert_null(certstore_match_client(&s, "api.test"));
    certstore_dispose(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_refusals),
        cmocka_unit_test(test_match_server),
        cmocka_unit_test(test_match_client_and_bundle),
        cmocka_unit_test(test_load_config),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
