/* test_proxyauth.c - shared/proxyauth: --proxyauth specs, htpasswd lines, Basic credentials,
 * MD5-crypt against libxcrypt, and verification of every hash kind htpasswd makes (the
 * hashes below were made with Apache's htpasswd -m / -s / -B and openssl passwd -apr1). */
#include <crypt.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "shared/proxyauth.h"

/* ---- specs ------------------------------------------------------------------------------- */

static const struct {
    const char *spec;
    int rc;
    const char *note;
} spec_cases[] = {
    {"any", 0, "any user and password"},
    {"alice:s3cret", 0, "one user"},
    {"alice:pa:ss", 0, "split at the first colon: the password holds a colon (RFC 7617)"},
    {":", 0, "empty user and password"},
    {"@/etc/htpasswd", 0, "an htpasswd file (not read here)"},
    {"@", -EINVAL, "@ without a file"},
    {"", -EINVAL, "empty"},
    {"alice", -EINVAL, "no colon"},
    {"ldap:localhost:cn=x:pw:dc=y", -EINVAL, "LDAP is refused by name"},
    {"ldaps:localhost:cn=x:pw:dc=y", -EINVAL, "LDAPS too"},
    {"al\nice:x", -EINVAL, "a line break"},
};

static void test_spec_check(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(spec_cases) / sizeof(spec_cases[0]); i++) {
        const char *why = NULL;
        int rc = proxyauth_spec_check(spec_cases[i].spec, &why);

        if (rc != spec_cases[i].rc)
            fail_msg("%s: '%s' gave %d", spec_cases[i].note, spec_cases[i].spec, rc);
        if (rc != 0)
            assert_non_null(why);
    }
}

/* ---- htpasswd lines ---------------------------------------------------------------------- */

#define ALICE_APR1 "$apr1$gwm3Ij7Q$0U19kzlpjKZuPw0Y8VWgF/"  /* htpasswd -m: s3cret */
#define BOB_SHA "{SHA}87u9ZqY9S/F0eUBXjsPQEDUw4h0="           /* htpasswd -s: hunter2 */
#define CAROL_BCRYPT "$2y$05$U55UXTW2.Z2tmv08Bq9jDuD1ovAof4mYnfrc6UHHdmT9RHHlajJL." /* pa:ss w0rd */

static const struct {
    const char *line;
    int rc;
    int scheme;
    const char *user;
    const char *note;
} line_cases[] = {
    {"alice:" ALICE_APR1, 1, PROXYAUTH_SCHEME_APR1, "alice", "APR1 (htpasswd -m)"},
    {"bob:" BOB_SHA, 1, PROXYAUTH_SCHEME_SHA1, "bob", "SHA1 (htpasswd -s)"},
    {"carol:" CAROL_BCRYPT, 1, PROXYAUTH_SCHEME_BCRYPT, "carol", "bcrypt (htpasswd -B)"},
    {"  carol:" CAROL_BCRYPT "\r", 1, PROXYAUTH_SCHEME_BCRYPT, "carol", "spaces and CR trimmed"},
    {"carol:" CAROL_BCRYPT ":a comment", 1, PROXYAUTH_SCHEME_BCRYPT, "carol",
     "a comment field after the hash"},
    {"dave:$2b$05$U55UXTW2.Z2tmv08Bq9jDuD1ovAof4mYnfrc6UHHdmT9RHHlajJL.", 1,
     PROXYAUTH_SCHEME_BCRYPT, "dave", "$2b$"},
    {"", 0, 0, NULL, "blank line"},
    {"   ", 0, 0, NULL, "white line"},
    {"# a comment", 0, 0, NULL, "comment"},
    {"nocolon", -EPROTO, 0, NULL, "no colon"},
    {":" BOB_SHA, -EPROTO, 0, NULL, "empty user"},
    {"eve:plaintext", -EPROTO, 0, NULL, "plain text password (unsupported, as mitmproxy)"},
    {"eve:$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1", -EPROTO, 0, NULL, "glibc MD5 $1$ is not htpasswd's"},
    {"eve:rqXexS6ZhobKA", -EPROTO, 0, NULL, "DES crypt (htpasswd -d) unsupported"},
    {"eve:{SHA}abc", -EPROTO, 0, NULL, "short {SHA}"},
    {"eve:{SHA}87u9ZqY9S/F0eUBXjsPQEDUw4h0!", -EPROTO, 0, NULL, "bad base64 in {SHA}"},
    {"eve:$2y$05$short", -EPROTO, 0, NULL, "short bcrypt"},
    {"eve:$2y$99$U55UXTW2.Z2tmv08Bq9jDuD1ovAof4mYnfrc6UHHdmT9RHHlajJL.", -EPROTO, 0, NULL,
     "bcrypt cost out of range"},
    {"eve:$apr1$$0U19kzlpjKZuPw0Y8VWgF/", -EPROTO, 0, NULL, "APR1 without salt"},
    {"eve:$apr1$gwm3Ij7Q$0U19kzlp", -EPROTO, 0, NULL, "short APR1"},
    {"eve:$apr1$gwm3Ij7Q9$0U19kzlpjKZuPw0Y8VWgF/", -EPROTO, 0, NULL, "APR1 salt of 9"},
};

static void test_parse_line(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
        struct proxyauth_entry e;
        const char *why = NULL;
        size_t n = strlen(line_cases[i].line);
        char *copy = malloc(n + 1); /* exactly the bytes: ASan sees an overread */
        int rc;

        assert_non_null(copy);
        memcpy(copy, line_cases[i].line, n);
        rc = proxyauth_parse_line(copy, n, &e, &why);
        if (rc != line_cases[i].rc)
            fail_msg("%s: gave %d (%s)", line_cases[i].note, rc, why != NULL ? why : "-");
        if (rc < 0)
            assert_non_null(why);
        if (rc == 1) {
            assert_int_equal(e.scheme, line_cases[i].scheme);
            assert_string_equal(e.user, line_cases[i].user);
            assert_int_equal(e.user_len, strlen(line_cases[i].user));
        }
        /* every prefix parses without reading past it */
        for (size_t k = 0; k < n; k++)
            (void)proxyauth_parse_line(copy, k, &e, &why);
        free(copy);
    }
}

/* ---- Basic credentials ------------------------------------------------------------------- */

static const struct {
    const char *value;
    int rc;
    const char *user, *pass;
    const char *note;
} basic_cases[] = {
    {"Basic YWxpY2U6czNjcmV0", 0, "alice", "s3cret", "curl's form"},
    {"basic   YWxpY2U6czNjcmV0  ", 0, "alice", "s3cret", "scheme in any case, spaces"},
    {"BASIC\tYWxpY2U6czNjcmV0", 0, "alice", "s3cret", "a tab"},
    {"Basic YWxpY2U6cGE6c3M=", 0, "alice", "pa:ss", "a colon in the password (RFC 7617)"},
    {"Basic YWxpY2U6cGE6c3M", 0, "alice", "pa:ss", "padding left out"},
    {"Basic Og==", 0, "", "", "empty user and password"},
    {"Basic OnBhc3M=", 0, "", "pass", "empty user"},
    {"Bearer YWxpY2U6czNjcmV0", -EPROTO, NULL, NULL, "another scheme"},
    {"Basic", -EPROTO, NULL, NULL, "no credentials"},
    {"Basic ", -EPROTO, NULL, NULL, "empty credentials"},
    {"BasicYWxpY2U6czNjcmV0", -EPROTO, NULL, NULL, "no space after the scheme"},
    {"Basic YWxpY2U", -EPROTO, NULL, NULL, "no colon in the decoded bytes"},
    {"Basic YW!pY2U6czNjcmV0", -EPROTO, NULL, NULL, "not base64"},
    {"Basic YWxpY2U6czNjcmV0 extra", -EPROTO, NULL, NULL, "two tokens"},
};

static void test_parse_basic(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(basic_cases) / sizeof(basic_cases[0]); i++) {
        char user[PROXYAUTH_CRED_MAX + 1], pass[PROXYAUTH_CRED_MAX + 1];
        size_t ulen, plen, n = strlen(basic_cases[i].value);
        const char *why = NULL;
        char *copy = malloc(n + 1);
        int rc;

        assert_non_null(copy);
        memcpy(copy, basic_cases[i].value, n);
        rc = proxyauth_parse_basic(copy, n, user, &ulen, pass, &plen, &why);
        if (rc != basic_cases[i].rc)
            fail_msg("%s: gave %d (%s)", basic_cases[i].note, rc, why != NULL ? why : "-");
        if (rc == 0) {
            assert_string_equal(user, basic_cases[i].user);
            assert_string_equal(pass, basic_cases[i].pass);
            assert_int_equal(ulen, strlen(basic_cases[i].user));
            assert_int_equal(plen, strlen(basic_cases[i].pass));
        } else {
            assert_non_null(why);
        }
        for (size_t k = 0; k < n; k++)
            (void)proxyauth_parse_basic(copy, k, user, &ulen, pass, &plen, &why);
        free(copy);
    }
}

static void test_parse_basic_too_long(void **state)
{
    char value[2048], user[PROXYAUTH_CRED_MAX + 1], pass[PROXYAUTH_CRED_MAX + 1];
    const char *why = NULL;
    size_t ulen, plen;

    (void)state;
    memcpy(value, "Basic ", 6);
    memset(value + 6, 'Q', 1200);
    assert_int_equal(proxyauth_parse_basic(value, 6 + 1200, user, &ulen, pass, &plen, &why),
                     -EMSGSIZE);
    assert_non_null(why);
}

/* ---- MD5-crypt --------------------------------------------------------------------------- */

/* "$1$" is the same algorithm as "$apr1$" with another magic: libxcrypt checks ours */
static void test_md5_crypt_matches_libxcrypt(void **state)
{
    static const char *const pw[] = {"", "a", "secret", "0123456789abcdef", "0123456789abcdefg",
                                     "a much longer password of more than thirty-two bytes"};
    static const char *const salt[] = {"$1$abcdefgh$", "$1$x$", "$1$ab.d/fgh", "$1$12345678"};
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    char out[64];

    (void)state;
    assert_non_null(cd);
    for (size_t i = 0; i < sizeof(pw) / sizeof(pw[0]); i++)
        for (size_t k = 0; k < sizeof(salt) / sizeof(salt[0]); k++) {
            const char *want = crypt_r(pw[i], salt[k], cd);
            int n = proxyauth_md5_crypt("$1$", (const uint8_t *)pw[i], strlen(pw[i]), salt[k],
                                        out);

            assert_non_null(want);
            assert_true(n > 0);
            assert_string_equal(out, want);
        }
    free(cd);
    /* openssl passwd -apr1 -salt abcdefgh secret */
    assert_true(proxyauth_md5_crypt("$apr1$", (const uint8_t *)"secret", 6, "$apr1$abcdefgh$",
                                    out) > 0);
    assert_string_equal(out, "$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/");
    assert_int_equal(proxyauth_md5_crypt("$apr1$", (const uint8_t *)"x", 1, "$1$ab$", out),
                     -EINVAL);
}

/* ---- verification ------------------------------------------------------------------------ */

static struct proxyauth *load_file(const char *content)
{
    char path[] = "/tmp/test_proxyauth_XXXXXX", spec[64], err[256];
    struct proxyauth *a = NULL;
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    snprintf(spec, sizeof(spec), "@%s", path);
    if (proxyauth_load(spec, &a, err, sizeof(err)) != 0)
        fail_msg("load: %s", err);
    unlink(path);
    return a;
}

static bool check(struct proxyauth *a, const char *user, const char *pass)
{
    return proxyauth_verify(a, (const uint8_t *)user, strlen(user), (const uint8_t *)pass,
                            strlen(pass));
}

static void test_verify_htpasswd(void **state)
{
    struct proxyauth *a = load_file("# users\n"
                                    "alice:" ALICE_APR1 "\n"
                                    "bob:" BOB_SHA "\r\n"
                                    "\n"
                                    "carol:" CAROL_BCRYPT "\n");

    (void)state;
    assert_int_equal(proxyauth_kind(a), PROXYAUTH_HTPASSWD);
    assert_int_equal(proxyauth_users(a), 3);
    for (int round = 0; round < 2; round++) { /* the second round answers from the cache */
        assert_true(check(a, "alice", "s3cret"));
        assert_false(check(a, "alice", "s3cret "));
        assert_false(check(a, "alice", ""));
        assert_true(check(a, "bob", "hunter2"));
        assert_false(check(a, "bob", "hunter3"));
        assert_true(check(a, "carol", "pa:ss w0rd"));
        assert_false(check(a, "carol", "pa:ss w0rd!"));
        assert_false(check(a, "mallory", "s3cret"));
        assert_false(check(a, "Alice", "s3cret"));
        assert_false(check(a, "bob", "s3cret")); /* one user's password for another */
    }
    /* a NUL in a bcrypt password never reaches crypt_r truncated */
    assert_false(proxyauth_verify(a, (const uint8_t *)"carol", 5, (const uint8_t *)"pa:ss w0rd\0x",
                                  12));
    proxyauth_free(a);
}

static void test_verify_single_and_any(void **state)
{
    struct proxyauth *a = NULL;
    char err[256];

    (void)state;
    assert_int_equal(proxyauth_load("alice:pa:ss", &a, err, sizeof(err)), 0);
    assert_int_equal(proxyauth_kind(a), PROXYAUTH_SINGLE);
    assert_true(check(a, "alice", "pa:ss"));
    assert_false(check(a, "alice", "pa"));
    assert_false(check(a, "alice:pa", "ss")); /* the same bytes split elsewhere */
    assert_false(check(a, "", ""));
    proxyauth_free(a);
    assert_int_equal(proxyauth_load("any", &a, err, sizeof(err)), 0);
    assert_true(check(a, "", ""));
    assert_true(check(a, "x", "y"));
    proxyauth_free(a);
    proxyauth_free(NULL);
}

static void test_load_errors(void **state)
{
    struct proxyauth *a = (struct proxyauth *)1;
    char err[256];

    (void)state;
    assert_int_equal(proxyauth_load("@/nonexistent/htpasswd", &a, err, sizeof(err)), -ENOENT);
    assert_null(a);
    assert_non_null(strstr(err, "/nonexistent/htpasswd"));
    assert_int_equal(proxyauth_load("@/tmp", &a, err, sizeof(err)), -EINVAL);
    assert_int_equal(proxyauth_load("nocolon", &a, err, sizeof(err)), -EINVAL);
}

static void test_load_bad_line_named(void **state)
{
    char path[] = "/tmp/test_proxyauth_XXXXXX", spec[64], err[256];
    const char *content = "alice:" ALICE_APR1 "\neve:plaintext\n";
    struct proxyauth *a = NULL;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    snprintf(spec, sizeof(spec), "@%s", path);
    assert_int_equal(proxyauth_load(spec, &a, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "line 2"));
    unlink(path);
}

static void test_check_fields(void **state)
{
    struct proxyauth *a = NULL;
    char err[256];
    const char *why = NULL;
    struct h1_header h[3] = {
        {"Host", 4, "example.com", 11},
        {"proxy-authorization", 19, "Basic YWxpY2U6czNjcmV0", 22},
        {"Proxy-Authorization", 19, "Basic YWxpY2U6czNjcmV0", 22},
    };

    (void)state;
    assert_int_equal(proxyauth_load("alice:s3cret", &a, err, sizeof(err)), 0);
    assert_true(proxyauth_check_fields(a, h, 2, &why));
    assert_false(proxyauth_check_fields(a, h, 1, &why));
    assert_string_equal(why, "no Proxy-Authorization");
    assert_false(proxyauth_check_fields(a, h, 3, &why)); /* two fields: ambiguous */
    h[1].value = "Basic YWxpY2U6czNjcmVU";
    assert_false(proxyauth_check_fields(a, h, 2, &why));
    assert_string_equal(why, "wrong user or password");
    proxyauth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_check),
        cmocka_unit_test(test_parse_line),
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_parse_basic_too_long),
        cmocka_unit_test(test_md5_crypt_matches_libxcrypt),
        cmocka_unit_test(test_verify_htpasswd),
        cmocka_unit_test(test_verify_single_and_any),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_bad_line_named),
        cmocka_unit_test(test_check_fields),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
