/* test_ca.c - unit tests for master/ca: first start creates the CA files with the right modes
 * and contents, later starts load the same CA, broken CA files stop start-up untouched, and
 * foreign CAs (RSA, made elsewhere) load and sign leaves that verify. */
#include <dirent.h>
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

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/pkcs8.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tests/unit/pki_testutil.h"
#include "master/ca.h"
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

struct tmp {
    char root[64];
    char conf[128]; /* root/conf, not created: ca_load_or_create makes it */
};

static int setup_tmp(void **state)
{
    struct tmp *t = calloc(1, sizeof(*t));

    assert_non_null(t);
    strcpy(t->root, "/tmp/mitmd-test-ca-XXXXXX");
    assert_non_null(mkdtemp(t->root));
    snprintf(t->conf, sizeof(t->conf), "%s/conf", t->root);
    *state = t;
    return 0;
}

static int teardown_tmp(void **state)
{
    struct tmp *t = *state;

    chmod(t->conf, 0700);
    rm_rf(t->root);
    free(t);
    return 0;
}

static void path_of(char *out, size_t cap, const char *dir, const char *name)
{
    assert_true((size_t)snprintf(out, cap, "%s/%s", dir, name) < cap);
}

/* slurp reads a whole (small) file; returns its length, or -errno. */
static long slurp(const char *path, uint8_t *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    long len = 0;
    ssize_t n;

    if (fd == -1)
        return -errno;
    while ((n = read(fd, buf + len, cap - (size_t)len)) > 0)
        len += n;
    close(fd);
    assert_true((size_t)len < cap);
    return len;
}

static void spew(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    assert_true(fd != -1);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* make_ca_pem builds a self-signed CA for `cert_key` (signed by it) and returns the PEM of
 * `file_key` followed by the certificate, as another tool would have written mitmd-ca.pem.
 * `is_ca` false makes a plain self-signed end-entity certificate instead. */
static size_t make_ca_pem(EVP_PKEY *file_key, EVP_PKEY *cert_key, bool is_ca, uint8_t *out,
                          size_t cap)
{
    X509 *x = X509_new();
    X509_NAME *name;
    time_t now = time(NULL);
    BIO *mem = BIO_new(BIO_s_mem());
    const uint8_t *data;
    size_t len;

    assert_true(x != NULL && mem != NULL);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 77), 1);
    name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const uint8_t *)"foreign CA", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_non_null(X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, &now));
    assert_non_null(X509_time_adj_ex(X509_getm_notAfter(x), 365, 0, &now));
    assert_int_equal(X509_set_pubkey(x, cert_key), 1);
    pki_testutil_add_ext(x, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    if (is_ca)
        pki_testutil_add_ext(x, NID_key_usage, "critical,keyCertSign,cRLSign");
    pki_testutil_add_ext(x, NID_subject_key_identifier, "hash");
    assert_true(X509_sign(x, cert_key, EVP_sha256()) > 0);
    /* the traditional "RSA PRIVATE KEY" / "EC PRIVATE KEY" form, as openssl/mitmproxy write */
    assert_int_equal(PEM_write_bio_PrivateKey(mem, file_key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(PEM_write_bio_X509(mem, x), 1);
    assert_int_equal(BIO_mem_contents(mem, &data, &len), 1);
    assert_true(len < cap);
    memcpy(out, data, len);
    BIO_free(mem);
    X509_free(x);
    return len;
}

static X509 *parse_der(const uint8_t *der, size_t len)
{
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);

    assert_non_null(x);
    return x;
}

static int verify_chain(X509 *ca, X509 *leaf, const char *host)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc;

    assert_true(store != NULL && ctx != NULL);
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    assert_int_equal(X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER), 1);
    assert_int_equal(
        X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), host, strlen(host)), 1);
    rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return rc;
}

/* forge_and_verify forges a leaf for `host` with `ca` and checks it verifies against the CA
 * and carries the signature algorithm `sig_nid`. */
static void forge_and_verify(const struct ca *ca, const char *host, int sig_nid)
{
    const char *why = NULL;
    struct forge *f = forge_new(ca, &why);
    const char *names[] = {host};
    uint8_t *der = NULL;
    size_t len, ca_len;
    const uint8_t *ca_der = ca_cert_der(ca, &ca_len);
    X509 *leaf, *cax;

    assert_non_null(f);
    assert_int_equal(forge_leaf(f, names, 1, NULL, &der, &len, NULL, &why), 0);
    leaf = parse_der(der, len);
    cax = parse_der(ca_der, ca_len);
    assert_int_equal(verify_chain(cax, leaf, host), X509_V_OK);
    assert_int_equal(X509_get_signature_nid(leaf), sig_nid);
    X509_free(leaf);
    X509_free(cax);
    free(der);
    forge_free(f);
}

static int file_mode(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return (int)(st.st_mode & 07777);
}

/* ---- creation ------------------------------------------------------------------------ */

static void test_ca_create(void **state)
{
    struct tmp *t = *state;
    char err[512], path[256];
    uint8_t buf[8192];
    struct ca *ca = NULL;
    EVP_PKEY *key;
    X509 *x, *pem_x;
    BIO *bio;
    const uint8_t *der;
    size_t der_len;
    long n;
    time_t now = time(NULL), nb, na;
    char cn[64];
    DIR *d;
    struct dirent *de;
    int files = 0;

    assert_int_equal(ca_load_or_create(t->conf, &ca, err, sizeof(err)), 0);
    assert_true(ca_was_created(ca));
    /* the confdir is created private */
    assert_int_equal(file_mode(t->conf), 0700);
    /* the key file is 0600 and holds a P-256 key and a certificate that match */
    path_of(path, sizeof(path), t->conf, CA_FILE_KEY);
    assert_int_equal(file_mode(path), 0600);
    n = slurp(path, buf, sizeof(buf));
    assert_true(n > 0);
    bio = BIO_new_mem_buf(buf, (int)n);
    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(key);
    assert_int_equal(EVP_PKEY_id(key), EVP_PKEY_EC);
    assert_int_equal(EC_GROUP_get_curve_name(EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(key))),
                     NID_X9_62_prime256v1);
    bio = BIO_new_mem_buf(buf, (int)n);
    pem_x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(pem_x);
    assert_int_equal(X509_check_private_key(pem_x, key), 1);

    /* the in-memory certificate is that one */
    der = ca_cert_der(ca, &der_len);
    x = parse_der(der, der_len);
    assert_int_equal(X509_cmp(x, pem_x), 0);
    /* CN=mitmd O=mitmd, self-issued, 10 years from about now */
    assert_int_equal(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                               sizeof(cn)),
                     5);
    assert_string_equal(cn, "mitmd");
    assert_int_equal(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
                                               NID_organizationName, cn, sizeof(cn)),
                     5);
    assert_string_equal(cn, "mitmd");
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    nb = pki_testutil_asn1_to_posix(X509_get0_notBefore(x));
    na = pki_testutil_asn1_to_posix(X509_get0_notAfter(x));
    assert_true(nb <= now && nb >= now - 2 * DAY);
    assert_true(na >= now + 3650 * DAY - 60 && na <= now + 3654 * DAY);
    assert_int_equal(ca_not_after(ca), na);
    /* basicConstraints critical CA:TRUE, keyUsage critical keyCertSign+cRLSign, SKI */
    assert_int_equal(X509_EXTENSION_get_critical(
                         X509_get_ext(x, X509_get_ext_by_NID(x, NID_basic_constraints, -1))),
                     1);
    assert_int_equal(X509_check_ca(x), 1);
    assert_int_equal(X509_EXTENSION_get_critical(
                         X509_get_ext(x, X509_get_ext_by_NID(x, NID_key_usage, -1))),
                     1);
    assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);

    /* public copies: 0644, PEM and DER of the same certificate, PKCS#12 with only the cert */
    path_of(path, sizeof(path), t->conf, CA_FILE_CERT_PEM);
    assert_string_equal(ca_cert_path(ca), path);
    assert_int_equal(file_mode(path), 0644);
    n = slurp(path, buf, sizeof(buf));
    bio = BIO_new_mem_buf(buf, (int)n);
    X509_free(pem_x);
    pem_x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(pem_x);
    assert_int_equal(X509_cmp(x, pem_x), 0);
    assert_null(memmem(buf, (size_t)n, "PRIVATE KEY", 11)); /* no key in the public file */

    path_of(path, sizeof(path), t->conf, CA_FILE_CERT_CER);
    assert_int_equal(file_mode(path), 0644);
    n = slurp(path, buf, sizeof(buf));
    assert_int_equal(n, (long)der_len);
    assert_memory_equal(buf, der, der_len);

    path_of(path, sizeof(path), t->conf, CA_FILE_CERT_P12);
    assert_int_equal(file_mode(path), 0644);
    n = slurp(path, buf, sizeof(buf));
    {
        STACK_OF(X509) *certs = sk_X509_new_null();
        EVP_PKEY *p12_key = NULL;
        CBS cbs;

        CBS_init(&cbs, buf, (size_t)n);
        assert_non_null(certs);
        assert_int_equal(PKCS12_get_key_and_certs(&p12_key, certs, &cbs, ""), 1);
        assert_null(p12_key);
        assert_int_equal(sk_X509_num(certs), 1);
        assert_int_equal(X509_cmp(sk_X509_value(certs, 0), x), 0);
        sk_X509_pop_free(certs, X509_free);
    }

    /* exactly the four files: no temporary file left behind */
    d = opendir(t->conf);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        print_message("file: %s\n", de->d_name);
        assert_int_not_equal(de->d_name[0], '.');
        files++;
    }
    closedir(d);
    assert_int_equal(files, 4);

    /* and it signs leaves that verify */
    forge_and_verify(ca, "created.test", NID_ecdsa_with_SHA256);
    X509_free(pem_x);
    X509_free(x);
    EVP_PKEY_free(key);
    ca_free(ca);
}

static void test_ca_create_with_umask(void **state)
{
    struct tmp *t = *state;
    char err[512], path[256];
    struct ca *ca = NULL;
    mode_t old = umask(0077);

    /* a strict umask must not make the public files unreadable for clients, nor a lax one
     * (tested in test_ca_create with the default) widen the key file */
    assert_int_equal(ca_load_or_create(t->conf, &ca, err, sizeof(err)), 0);
    umask(old);
    path_of(path, sizeof(path), t->conf, CA_FILE_CERT_PEM);
    assert_int_equal(file_mode(path), 0644);
    path_of(path, sizeof(path), t->conf, CA_FILE_KEY);
    assert_int_equal(file_mode(path), 0600);
    ca_free(ca);
}

static void test_ca_create_lax_umask(void **state)
{
    struct tmp *t = *state;
    char err[512], path[256];
    struct ca *ca = NULL;
    mode_t old = umask(0);

    assert_int_equal(ca_load_or_create(t->conf, &ca, err, sizeof(err)), 0);
    umask(old);
    path_of(path, sizeof(path), t->conf, CA_FILE_KEY);
    assert_int_equal(file_mode(path), 0600);
    assert_int_equal(file_mode(t->conf), 0700);
    ca_free(ca);
}

/* ---- loading ------------------------------------------------------------------------- */

static void test_ca_load_same(void **state)
{
    struct tmp *t = *state;
    char err[512], path[256];
    uint8_t before[8192], after[8192];
    struct ca *a = NULL, *b = NULL;
    const uint8_t *da, *db;
    size_t la, lb;
    long nb, na;

    assert_int_equal(ca_load_or_create(t->conf, &a, err, sizeof(err)), 0);
    path_of(path, sizeof(path), t->conf, CA_FILE_KEY);
    nb = slurp(path, before, sizeof(before));
    /* the second start loads the same CA and rewrites nothing */
    assert_int_equal(ca_load_or_create(t->conf, &b, err, sizeof(err)), 0);
    assert_false(ca_was_created(b));
    da = ca_cert_der(a, &la);
    db = ca_cert_der(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(da, db, la);
    assert_int_equal(ca_not_after(a), ca_not_after(b));
    assert_int_equal(EVP_PKEY_cmp(ca_get0_key(a), ca_get0_key(b)), 1);
    na = slurp(path, after, sizeof(after));
    assert_int_equal(na, nb);
    assert_memory_equal(before, after, (size_t)na);
    ca_free(a);
    ca_free(b);
}

static void test_ca_public_files_recreated(void **state)
{
    struct tmp *t = *state;
    static const char *const names[] = {CA_FILE_CERT_PEM, CA_FILE_CERT_CER, CA_FILE_CERT_P12};
    char err[512], path[256];
    uint8_t before[3][8192], after[8192];
    long len[3];
    struct ca *ca = NULL;

    assert_int_equal(ca_load_or_create(t->conf, &ca, err, sizeof(err)), 0);
    ca_free(ca);
    for (size_t i = 0; i < 3; i++) {
        path_of(path, sizeof(path), t->conf, names[i]);
        len[i] = slurp(path, before[i], sizeof(before[i]));
        assert_int_equal(unlink(path), 0);
    }
    /* a load with the public files deleted writes them again, with the same certificate */
    assert_int_equal(ca_load_or_create(t->conf, &ca, err, sizeof(err)), 0);
    assert_false(ca_was_created(ca));
    for (size_t i = 0; i < 2; i++) { /* the .p12 has a random MAC salt: checked in create */
        path_of(path, sizeof(path), t->conf, names[i]);
        assert_int_equal(slurp(path, after, sizeof(after)), len[i]);
        assert_memory_equal(after, before[i], (size_t)len[i]);
        assert_int_equal(file_mode(path), 0644);
    }
    path_of(path, sizeof(path), t->conf, CA_FILE_CERT_P12);
    assert_true(slurp(path, after, sizeof(after)) > 0);
    ca_free(ca);
}

/* load_foreign_ca writes a CA of `key` (cert + traditional PEM key, as another tool would)
 * to t->conf and loads it; returns the loaded CA, checked not to be a new one. */
static struct ca *load_foreign_ca(struct tmp *t, EVP_PKEY *key)
{
    char err[512], path[256];
    uint8_t pem[16384];
    struct ca *ca = NULL;
    size_t len = make_ca_pem(key, key, true, pem, sizeof(pem));

    assert_int_equal(mkdir(t->conf, 0700), 0);
    path_of(path, sizeof(path), t->conf, CA_FILE_KEY);
    spew(path, pem, len, 0600);
    assert_int_equal(ca_load_or_create(t->conf, &ca, err, sizeof(err)), 0);
    assert_false(ca_was_created(ca));
    return ca;
}

static void test_ca_rsa_loads(void **state)
{
    EVP_PKEY *key = pki_testutil_gen_key(EVP_PKEY_RSA);
    struct ca *ca = load_foreign_ca(*state, key);

    /* an RSA CA made by another tool (traditional PEM key) loads and signs with SHA-256 */
    assert_int_equal(EVP_PKEY_id(ca_get0_key(ca)), EVP_PKEY_RSA);
    assert_int_equal(EVP_PKEY_cmp(ca_get0_key(ca), key), 1);
    forge_and_verify(ca, "rsa.test", NID_sha256WithRSAEncryption);
    ca_free(ca);
    EVP_PKEY_free(key);
}

static void test_ca_ec_traditional_loads(void **state)
{
    EVP_PKEY *key = pki_testutil_gen_key(EVP_PKEY_EC);
    struct ca *ca = load_foreign_ca(*state, key);

    /* "EC PRIVATE KEY" PEM + cert, as `openssl ecparam -genkey` users would write */
    assert_int_equal(EVP_PKEY_cmp(ca_get0_key(ca), key), 1);
    forge_and_verify(ca, "ec.test", NID_ecdsa_with_SHA256);
    ca_free(ca);
    EVP_PKEY_free(key);
}

/* ---- broken CA files: error, message, file unchanged ---------------------------------- */

enum bad_kind {
    BAD_GARBAGE,
    BAD_EMPTY,
    BAD_TRUNCATED,
    BAD_KEY_ONLY,
    BAD_CERT_ONLY,
    BAD_MISMATCH,
    BAD_NOT_CA,
    BAD_BINARY,
};

struct bad_case {
    const char *note;
    enum bad_kind kind;
    const char *want_in_msg; /* substring of the error message */
};

static const struct bad_case BAD_CASES[] = {
    {"garbage text", BAD_GARBAGE, "private key"},
    {"empty file", BAD_EMPTY, "private key"},
    {"PEM truncated halfway through the certificate", BAD_TRUNCATED, "certificate"},
    {"key without certificate", BAD_KEY_ONLY, "certificate"},
    {"certificate without key", BAD_CERT_ONLY, "private key"},
    {"key does not match the certificate", BAD_MISMATCH, "does not match"},
    {"certificate is not a CA", BAD_NOT_CA, "not a CA"},
    {"binary noise", BAD_BINARY, "private key"},
};

static size_t make_bad(enum bad_kind kind, uint8_t *out, size_t cap)
{
    EVP_PKEY *a = pki_testutil_gen_key(EVP_PKEY_EC), *b = pki_testutil_gen_key(EVP_PKEY_EC);
    size_t len = 0;
    char *end;

    switch (kind) {
    case BAD_GARBAGE:
        len = (size_t)snprintf((char *)out, cap, "this is not a CA\n");
        break;
    case BAD_EMPTY:
        len = 0;
        break;
    case BAD_TRUNCATED:
        len = make_ca_pem(a, a, true, out, cap);
        end = strstr((char *)out, "-----BEGIN CERTIFICATE-----");
        assert_non_null(end);
        len = (size_t)(end - (char *)out) + 120; /* cut inside the certificate */
        break;
    case BAD_KEY_ONLY:
        len = make_ca_pem(a, a, true, out, cap);
        end = strstr((char *)out, "-----BEGIN CERTIFICATE-----");
        len = (size_t)(end - (char *)out);
        break;
    case BAD_CERT_ONLY: {
        size_t full = make_ca_pem(a, a, true, out, cap);
        char *cert = strstr((char *)out, "-----BEGIN CERTIFICATE-----");

        len = full - (size_t)(cert - (char *)out);
        memmove(out, cert, len);
        break;
    }
    case BAD_MISMATCH:
        len = make_ca_pem(a, b, true, out, cap); /* key a, certificate of key b */
        break;
    case BAD_NOT_CA:
        len = make_ca_pem(a, a, false, out, cap);
        break;
    case BAD_BINARY:
        for (len = 0; len < 2000; len++)
            out[len] = (uint8_t)(len * 131 + 7);
        break;
    }
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    return len;
}

static void test_ca_bad_files(void **state)
{
    struct tmp *t = *state;
    char err[512], path[256], pub[256];
    static uint8_t content[16384], after[16384];

    assert_int_equal(mkdir(t->conf, 0700), 0);
    path_of(path, sizeof(path), t->conf, CA_FILE_KEY);
    path_of(pub, sizeof(pub), t->conf, CA_FILE_CERT_PEM);
    for (size_t i = 0; i < sizeof(BAD_CASES) / sizeof(BAD_CASES[0]); i++) {
        const struct bad_case *c = &BAD_CASES[i];
        size_t len = make_bad(c->kind, content, sizeof(content));
        struct ca *ca = (struct ca *)0x1;
        struct stat st;

        print_message("case: %s\n", c->note);
        spew(path, content, len, 0600);
        err[0] = '\0';
        assert_int_equal(ca_load_or_create(t->conf, &ca, err, sizeof(err)), -EINVAL);
        assert_ptr_equal(ca, (struct ca *)0x1); /* untouched on failure */
        print_message("  -> %s\n", err);
        /* one line that names the file and says what is wrong */
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, c->want_in_msg));
        assert_null(strchr(err, '\n'));
        /* never overwritten, and no public files made from it */
        assert_int_equal(slurp(path, after, sizeof(after)), (long)len);
        assert_memory_equal(after, content, len);
        assert_int_equal(stat(pub, &st), -1);
        assert_int_equal(errno, ENOENT);
    }
}

static void test_ca_unreadable(void **state)
{
    struct tmp *t = *state;
    char err[512], path[256];
    struct ca *ca = NULL;
    struct stat st;

    /* A directory where the key file should be: cannot be read, and is left as it is. (As
     * root, chmod 000 would not make a file unreadable; that case runs only for other users
     * below.) */
    assert_int_equal(mkdir(t->conf, 0700), 0);
    path_of(path, sizeof(path), t->conf, CA_FILE_KEY);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(ca_load_or_create(t->conf, &ca, err, sizeof(err)), -EISDIR);
    assert_null(ca);
    assert_non_null(strstr(err, path));
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(rmdir(path), 0);

    if (geteuid() != 0) {
        uint8_t pem[16384];
        EVP_PKEY *key = pki_testutil_gen_key(EVP_PKEY_EC);
        size_t len = make_ca_pem(key, key, true, pem, sizeof(pem));

        spew(path, pem, len, 0000);
        assert_int_equal(ca_load_or_create(t->conf, &ca, err, sizeof(err)), -EACCES);
        assert_non_null(strstr(err, path));
        chmod(path, 0600);
        assert_int_equal(slurp(path, pem + len, sizeof(pem) - len), (long)len);
        assert_memory_equal(pem, pem + len, len);
        EVP_PKEY_free(key);
    }
}

static void test_ca_confdir_not_dir(void **state)
{
    struct tmp *t = *state;
    char err[512];
    struct ca *ca = NULL;

    /* the confdir path is a file: refused, not replaced */
    spew(t->conf, "x", 1, 0600);
    assert_int_equal(ca_load_or_create(t->conf, &ca, err, sizeof(err)), -ENOTDIR);
    assert_non_null(strstr(err, t->conf));
    assert_int_equal(unlink(t->conf), 0);
}

static void test_ca_confdir_parent_missing(void **state)
{
    struct tmp *t = *state;
    char err[512], deep[256];
    struct ca *ca = NULL;

    snprintf(deep, sizeof(deep), "%s/missing/conf", t->root);
    assert_int_equal(ca_load_or_create(deep, &ca, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, deep));
}

static void test_ca_expired(void **state)
{
    struct tmp *t = *state;
    char err[512], path[256];
    uint8_t pem[16384];
    EVP_PKEY *key = pki_testutil_gen_key(EVP_PKEY_EC);
    X509 *x = X509_new();
    time_t now = time(NULL);
    BIO *mem = BIO_new(BIO_s_mem());
    const uint8_t *data;
    size_t len;
    struct ca *ca = NULL;

    /* an expired CA stops start-up with a message, and is left in place */
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const uint8_t *)"old", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_time_adj_ex(X509_getm_notBefore(x), -20, 0, &now);
    X509_time_adj_ex(X509_getm_notAfter(x), -10, 0, &now);
    X509_set_pubkey(x, key);
    pki_testutil_add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL);
    PEM_write_bio_X509(mem, x);
    BIO_mem_contents(mem, &data, &len);
    memcpy(pem, data, len);
    assert_int_equal(mkdir(t->conf, 0700), 0);
    path_of(path, sizeof(path), t->conf, CA_FILE_KEY);
    spew(path, pem, len, 0600);
    assert_int_equal(ca_load_or_create(t->conf, &ca, err, sizeof(err)), -EKEYEXPIRED);
    assert_non_null(strstr(err, "expired"));
    assert_int_equal(slurp(path, pem + len, sizeof(pem) - len), (long)len);
    BIO_free(mem);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* ---- moving from mitmproxy, and file modes (issue 15 item 5, issue 10 item 8) --------- */

/* A confdir that holds mitmproxy's CA and no mitmd-ca.pem: mitmproxy's CA is used (clients
 * that trust it keep working), no new CA is made, and the public copies carry its cert. */
static void test_ca_mitmproxy_ca_used(void **state)
{
    struct tmp *t = *state;
    EVP_PKEY *key = pki_testutil_gen_key(EVP_PKEY_RSA); /* mitmproxy makes RSA CAs */
    char err[512], path[256];
    uint8_t pem[16384], pub[8192];
    size_t len = make_ca_pem(key, key, true, pem, sizeof(pem));
    struct ca *ca = NULL;
    struct stat st;
    const uint8_t *der;
    size_t der_len;
    long pub_len;
    BIO *bio;
    X509 *x;

    assert_int_equal(mkdir(t->conf, 0700), 0);
    path_of(path, sizeof(path), t->conf, CA_FILE_MITMPROXY_KEY);
    spew(path, pem, len, 0600);
    assert_int_equal(ca_load_or_create(t->conf, &ca, err, sizeof(err)), 0);
    assert_false(ca_was_created(ca));
    assert_true(ca_is_mitmproxy(ca));
    assert_int_equal(EVP_PKEY_cmp(ca_get0_key(ca), key), 1);
    path_of(path, sizeof(path), t->conf, CA_FILE_KEY);
    assert_int_equal(lstat(path, &st), -1); /* no second CA beside mitmproxy's */
    assert_int_equal(errno, ENOENT);
    path_of(path, sizeof(path), t->conf, CA_FILE_CERT_PEM);
    pub_len = slurp(path, pub, sizeof(pub));
    assert_true(pub_len > 0);
    bio = BIO_new_mem_buf(pub, (int)pub_len);
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    assert_non_null(x);
    der = ca_cert_der(ca, &der_len);
    assert_int_equal(X509_cmp(x, ca_get0_cert(ca)), 0);
    assert_true(der_len > 0 && der != NULL);
    forge_and_verify(ca, "moved.test", NID_sha256WithRSAEncryption);
    X509_free(x);
    BIO_free(bio);
    ca_free(ca);
    EVP_PKEY_free(key);
}

/* Both CAs present: mitmd's own wins. */
static void test_ca_mitmd_ca_preferred(void **state)
{
    struct tmp *t = *state;
    EVP_PKEY *mine = pki_testutil_gen_key(EVP_PKEY_EC), *theirs = pki_testutil_gen_key(EVP_PKEY_RSA);
    char err[512], path[256];
    uint8_t pem[16384];
    size_t len;
    struct ca *ca = NULL;

    assert_int_equal(mkdir(t->conf, 0700), 0);
    len = make_ca_pem(theirs, theirs, true, pem, sizeof(pem));
    path_of(path, sizeof(path), t->conf, CA_FILE_MITMPROXY_KEY);
    spew(path, pem, len, 0600);
    len = make_ca_pem(mine, mine, true, pem, sizeof(pem));
    path_of(path, sizeof(path), t->conf, CA_FILE_KEY);
    spew(path, pem, len, 0600);
    assert_int_equal(ca_load_or_create(t->conf, &ca, err, sizeof(err)), 0);
    assert_false(ca_is_mitmproxy(ca));
    assert_int_equal(EVP_PKEY_cmp(ca_get0_key(ca), mine), 1);
    ca_free(ca);
    EVP_PKEY_free(mine);
    EVP_PKEY_free(theirs);
}

/* A CA key file readable by group or others is refused, as OpenSSH refuses an unprotected
 * private key, and left exactly as it was (mode and bytes). */
static void test_ca_key_file_too_open(void **state)
{
    static const struct {
        const char *note;
        const char *file;
        mode_t mode;
    } cases[] = {
        {"world-readable mitmd key", CA_FILE_KEY, 0644},
        {"group-readable mitmd key", CA_FILE_KEY, 0640},
        {"others-only readable mitmd key", CA_FILE_KEY, 0604},
        {"group-writable mitmd key", CA_FILE_KEY, 0620},
        {"world-readable mitmproxy key", CA_FILE_MITMPROXY_KEY, 0644},
    };
    struct tmp *t = *state;
    EVP_PKEY *key = pki_testutil_gen_key(EVP_PKEY_EC);
    uint8_t pem[16384], back[16384];
    size_t len = make_ca_pem(key, key, true, pem, sizeof(pem));

    assert_int_equal(mkdir(t->conf, 0700), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512] = "", path[256];
        struct ca *ca = NULL;

        path_of(path, sizeof(path), t->conf, cases[i].file);
        spew(path, pem, len, 0600);
        assert_int_equal(chmod(path, cases[i].mode), 0);
        if (ca_load_or_create(t->conf, &ca, err, sizeof(err)) != -EPERM)
            fail_msg("case '%s' accepted (%s)", cases[i].note, err);
        assert_null(ca);
        if (strstr(err, path) == NULL || strstr(err, "chmod 600") == NULL)
            fail_msg("case '%s': message '%s' lacks the path or the fix", cases[i].note, err);
        assert_int_equal(file_mode(path), (int)cases[i].mode);
        assert_int_equal(slurp(path, back, sizeof(back)), (long)len);
        assert_memory_equal(back, pem, len);
        assert_int_equal(unlink(path), 0);
    }
    EVP_PKEY_free(key);
}

/* A confdir writable by group or others is refused before anything is read or created. */
static void test_ca_confdir_writable_by_others(void **state)
{
    static const mode_t modes[] = {0770, 0702, 0777, 01777};
    struct tmp *t = *state;

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        char err[512] = "", path[256];
        struct ca *ca = NULL;
        struct stat st;

        assert_int_equal(mkdir(t->conf, 0700), 0);
        assert_int_equal(chmod(t->conf, modes[i]), 0);
        assert_int_equal(ca_load_or_create(t->conf, &ca, err, sizeof(err)), -EPERM);
        assert_null(ca);
        assert_non_null(strstr(err, t->conf));
        assert_non_null(strstr(err, "chmod go-w"));
        path_of(path, sizeof(path), t->conf, CA_FILE_KEY);
        assert_int_equal(lstat(path, &st), -1); /* no CA created there */
        assert_int_equal(rmdir(t->conf), 0);
    }
}

static void test_ca_free_null(void **state)
{
    ca_free(NULL); /* no-op */
    forge_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ca_create, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_create_with_umask, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_create_lax_umask, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_load_same, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_public_files_recreated, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_rsa_loads, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_ec_traditional_loads, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_bad_files, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_unreadable, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_mitmproxy_ca_used, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_mitmd_ca_preferred, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_key_file_too_open, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_confdir_writable_by_others, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_confdir_not_dir, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_confdir_parent_missing, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(test_ca_expired, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_ca_free_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
