/* test_target_parse.c - CONNECT authority-form, absolute-form, origin-form, Host values and
 * the host-name validator, valid and invalid, each input ending at a guard page. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/guard_page.h"

#include "shared/target_parse.h"

enum kind { K_CONNECT, K_ABSOLUTE, K_HOST_PORT, K_REQUEST, K_REQUEST_CONNECT };

enum { T_IP = 1, T_IPV6 = 2, T_TLS = 4, T_PORT = 8 };

struct target_case {
    const char *note;
    enum kind kind;
    const char *in;
    uint16_t default_port; /* K_HOST_PORT only */
    int rc;
    enum target_form form;
    const char *host;
    uint16_t port;
    unsigned flags;
    const char *path;  /* NULL: no path */
    const char *query; /* NULL: no query */
};

static const struct target_case cases[] = {
    /* CONNECT authority-form */
    {.note = "name and port", K_CONNECT, "example.com:443", 0, 0, TARGET_FORM_AUTHORITY, "example.com",
     443, T_PORT},
    {.note = "IPv4", K_CONNECT, "127.0.0.1:8443", 0, 0, TARGET_FORM_AUTHORITY, "127.0.0.1", 8443,
     T_PORT | T_IP},
    {.note = "bracketed IPv6", K_CONNECT, "[::1]:443", 0, 0, TARGET_FORM_AUTHORITY, "::1", 443,
     T_PORT | T_IP | T_IPV6},
    {.note = "full IPv6", K_CONNECT, "[2001:db8::a:b:c]:1", 0, 0, TARGET_FORM_AUTHORITY,
     "2001:db8::a:b:c", 1, T_PORT | T_IP | T_IPV6},
    {.note = "IPv4-mapped IPv6", K_CONNECT, "[::ffff:10.0.0.1]:65535", 0, 0, TARGET_FORM_AUTHORITY,
     "::ffff:10.0.0.1", 65535, T_PORT | T_IP | T_IPV6},
    {.note = "underscore and digits in labels", K_CONNECT, "_srv.a-1.9x.test:80", 0, 0,
     TARGET_FORM_AUTHORITY, "_srv.a-1.9x.test", 80, T_PORT},
    {.note = "trailing dot is dropped", K_CONNECT, "example.com.:443", 0, 0, TARGET_FORM_AUTHORITY,
     "example.com", 443, T_PORT},
    {.note = "single label", K_CONNECT, "localhost:8080", 0, 0, TARGET_FORM_AUTHORITY, "localhost",
     8080, T_PORT},
    {.note = "case kept", K_CONNECT, "ExAmple.COM:443", 0, 0, TARGET_FORM_AUTHORITY, "ExAmple.COM",
     443, T_PORT},
    {.note = "leading zeros in port", K_CONNECT, "a:00443", 0, 0, TARGET_FORM_AUTHORITY, "a", 443,
     T_PORT},
    {.note = "no port", K_CONNECT, "example.com", 0, -EINVAL},
    {.note = "empty port", K_CONNECT, "example.com:", 0, -EINVAL},
    {.note = "port 0", K_CONNECT, "example.com:0", 0, -EINVAL},
    {.note = "port 65536", K_CONNECT, "example.com:65536", 0, -EINVAL},
    {.note = "six-digit port", K_CONNECT, "example.com:000443", 0, -EINVAL},
    {.note = "signed port", K_CONNECT, "example.com:+443", 0, -EINVAL},
    {.note = "port with junk", K_CONNECT, "example.com:443x", 0, -EINVAL},
    {.note = "two colons", K_CONNECT, "example.com:443:1", 0, -EINVAL},
    {.note = "bare IPv6", K_CONNECT, "::1:443", 0, -EINVAL},
    {.note = "unterminated IPv6", K_CONNECT, "[::1:443", 0, -EINVAL},
    {.note = "invalid IPv6", K_CONNECT, "[::g]:443", 0, -EINVAL},
    {.note = "IPv6 zone id", K_CONNECT, "[fe80::1%25eth0]:443", 0, -EINVAL},
    {.note = "IPv4 in brackets", K_CONNECT, "[1.2.3.4]:443", 0, -EINVAL},
    {.note = "junk after IPv6", K_CONNECT, "[::1]x:443", 0, -EINVAL},
    {.note = "empty host", K_CONNECT, ":443", 0, -EINVAL},
    {.note = "empty input", K_CONNECT, "", 0, -EINVAL},
    {.note = "userinfo", K_CONNECT, "user@example.com:443", 0, -EINVAL},
    {.note = "path", K_CONNECT, "example.com:443/", 0, -EINVAL},
    {.note = "absolute URL", K_CONNECT, "https://example.com:443", 0, -EINVAL},
    {.note = "label starting with hyphen", K_CONNECT, "-a.test:443", 0, -EINVAL},
    {.note = "label ending with hyphen", K_CONNECT, "a-.test:443", 0, -EINVAL},
    {.note = "empty label", K_CONNECT, "a..test:443", 0, -EINVAL},
    {.note = "leading dot", K_CONNECT, ".a.test:443", 0, -EINVAL},
    {.note = "two trailing dots", K_CONNECT, "a.test..:443", 0, -EINVAL},
    {.note = "space in name", K_CONNECT, "a b:443", 0, -EINVAL},
    {.note = "percent in name", K_CONNECT, "a%2e:443", 0, -EINVAL},
    {.note = "all-digit name that is no IPv4", K_CONNECT, "1.2.3:443", 0, -EINVAL},
    {.note = "IPv4 octet over 255", K_CONNECT, "256.1.1.1:443", 0, -EINVAL},
    {.note = "IPv4 with leading zero", K_CONNECT, "01.2.3.4:443", 0, -EINVAL},
    {.note = "64-byte label",
     K_CONNECT, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test:443", 0,
     -EINVAL},
    {.note = "63-byte label",
     K_CONNECT, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test:443", 0, 0,
     TARGET_FORM_AUTHORITY, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test",
     443, T_PORT},

    /* absolute-form */
    {.note = "http with path and query", K_ABSOLUTE, "http://a.test/p/q?x=1&y", 0, 0,
     TARGET_FORM_ABSOLUTE, "a.test", 80, 0, "/p/q", "?x=1&y"},
    {.note = "http with port", K_ABSOLUTE, "http://a.test:8080/", 0, 0, TARGET_FORM_ABSOLUTE, "a.test",
     8080, T_PORT, "/", NULL},
    {.note = "no path defaults to /", K_ABSOLUTE, "http://a.test", 0, 0, TARGET_FORM_ABSOLUTE, "a.test",
     80, 0, "/", NULL},
    {.note = "query without path", K_ABSOLUTE, "http://a.test?x", 0, 0, TARGET_FORM_ABSOLUTE, "a.test",
     80, 0, "/", "?x"},
    {.note = "https defaults to 443", K_ABSOLUTE, "https://a.test/x", 0, 0, TARGET_FORM_ABSOLUTE,
     "a.test", 443, T_TLS, "/x", NULL},
    {.note = "scheme is case-insensitive", K_ABSOLUTE, "HTTP://a.test/", 0, 0, TARGET_FORM_ABSOLUTE,
     "a.test", 80, 0, "/", NULL},
    {.note = "IPv6 host", K_ABSOLUTE, "http://[::1]:8080/x", 0, 0, TARGET_FORM_ABSOLUTE, "::1", 8080,
     T_PORT | T_IP | T_IPV6, "/x", NULL},
    {.note = "IPv4 host", K_ABSOLUTE, "http://10.1.2.3/", 0, 0, TARGET_FORM_ABSOLUTE, "10.1.2.3", 80,
     T_IP, "/", NULL},
    {.note = "empty query", K_ABSOLUTE, "http://a/?", 0, 0, TARGET_FORM_ABSOLUTE, "a", 80, 0, "/", "?"},
    {.note = "ftp scheme", K_ABSOLUTE, "ftp://a.test/", 0, -EINVAL},
    {.note = "ws scheme", K_ABSOLUTE, "ws://a.test/", 0, -EINVAL},
    {.note = "no scheme", K_ABSOLUTE, "a.test/", 0, -EINVAL},
    {.note = "one slash", K_ABSOLUTE, "http:/a.test/", 0, -EINVAL},
    {.note = "scheme only", K_ABSOLUTE, "http:", 0, -EINVAL},
    {.note = "userinfo", K_ABSOLUTE, "http://user:pw@a.test/", 0, -EINVAL},
    {.note = "empty userinfo", K_ABSOLUTE, "http://@a.test/", 0, -EINVAL},
    {.note = "empty host", K_ABSOLUTE, "http:///x", 0, -EINVAL},
    {.note = "empty host with port", K_ABSOLUTE, "http://:80/x", 0, -EINVAL},
    {.note = "empty port", K_ABSOLUTE, "http://a.test:/x", 0, -EINVAL},
    {.note = "fragment", K_ABSOLUTE, "http://a.test/x#frag", 0, -EINVAL},
    {.note = "fragment after host", K_ABSOLUTE, "http://a.test#frag", 0, -EINVAL},
    {.note = "space in path", K_ABSOLUTE, "http://a.test/a b", 0, -EINVAL},
    {.note = "control character in path", K_ABSOLUTE, "http://a.test/\x01", 0, -EINVAL},
    {.note = "obs-text in path", K_ABSOLUTE, "http://a.test/\xc3\xa9", 0, -EINVAL},
    {.note = "backslash host", K_ABSOLUTE, "http://a.test\\b/", 0, -EINVAL},

    /* Host field values */
    {.note = "Host without port", K_HOST_PORT, "a.test", 80, 0, TARGET_FORM_AUTHORITY, "a.test", 80, 0},
    {.note = "Host with port", K_HOST_PORT, "a.test:81", 80, 0, TARGET_FORM_AUTHORITY, "a.test", 81,
     T_PORT},
    {.note = "Host IPv6 without port", K_HOST_PORT, "[::1]", 443, 0, TARGET_FORM_AUTHORITY, "::1", 443,
     T_IP | T_IPV6},
    {.note = "Host port required", K_HOST_PORT, "a.test", 0, -EINVAL},
    {.note = "Host empty", K_HOST_PORT, "", 80, -EINVAL},

    /* request-target dispatch */
    {.note = "origin-form", K_REQUEST, "/index.html?q=1", 0, 0, TARGET_FORM_ORIGIN, NULL, 0, 0,
     "/index.html", "?q=1"},
    {.note = "origin-form root", K_REQUEST, "/", 0, 0, TARGET_FORM_ORIGIN, NULL, 0, 0, "/", NULL},
    {.note = "origin-form with // ", K_REQUEST, "//a/b", 0, 0, TARGET_FORM_ORIGIN, NULL, 0, 0, "//a/b",
     NULL},
    {.note = "origin-form fragment", K_REQUEST, "/x#f", 0, -EINVAL},
    {.note = "asterisk-form", K_REQUEST, "*", 0, 0, TARGET_FORM_ASTERISK, NULL, 0, 0, NULL, NULL},
    {.note = "absolute-form", K_REQUEST, "http://a.test/x", 0, 0, TARGET_FORM_ABSOLUTE, "a.test", 80, 0,
     "/x", NULL},
    {.note = "authority-form outside CONNECT", K_REQUEST, "a.test:443", 0, -EINVAL},
    {.note = "empty target", K_REQUEST, "", 0, -EINVAL},
    {.note = "CONNECT takes authority-form", K_REQUEST_CONNECT, "a.test:443", 0, 0,
     TARGET_FORM_AUTHORITY, "a.test", 443, T_PORT},
    {.note = "CONNECT refuses origin-form", K_REQUEST_CONNECT, "/x", 0, -EINVAL},
};

static void test_target_table(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct target_case *c = &cases[i];
        size_t len = strlen(c->in);
        const char *in = guard_tail(*state, c->in, len);
        struct target t;
        const char *why = NULL;
        int rc = -1;

        print_message("case: %s\n", c->note);
        switch (c->kind) {
        case K_CONNECT:
            rc = target_parse_connect(in, len, &t, &why);
            break;
        case K_ABSOLUTE:
            rc = target_parse_absolute(in, len, &t, &why);
            break;
        case K_HOST_PORT:
            rc = target_parse_host_port(in, len, c->default_port, &t, &why);
            break;
        case K_REQUEST:
            rc = target_parse_request(in, len, false, &t, &why);
            break;
        case K_REQUEST_CONNECT:
            rc = target_parse_request(in, len, true, &t, &why);
            break;
        }
        assert_int_equal(rc, c->rc);
        if (rc != 0) {
            assert_non_null(why);
            continue;
        }
        assert_int_equal(t.form, c->form);
        if (c->host != NULL) {
            assert_int_equal(t.host_len, strlen(c->host));
            assert_memory_equal(t.host, c->host, t.host_len);
            assert_true(t.host >= in && t.host + t.host_len <= in + len); /* a slice */
        } else {
            assert_null(t.host);
        }
        assert_int_equal(t.port, c->port);
        assert_int_equal(t.port_explicit, (c->flags & T_PORT) != 0);
        assert_int_equal(t.is_ip, (c->flags & T_IP) != 0);
        assert_int_equal(t.is_ipv6, (c->flags & T_IPV6) != 0);
        assert_int_equal(t.tls, (c->flags & T_TLS) != 0);
        if (c->path != NULL) {
            assert_non_null(t.path);
            assert_int_equal(t.path_len, strlen(c->path));
            assert_memory_equal(t.path, c->path, t.path_len);
        } else if (c->kind == K_CONNECT || c->form == TARGET_FORM_AUTHORITY ||
                   c->form == TARGET_FORM_ASTERISK) {
            assert_null(t.path);
        }
        if (c->query != NULL) {
            assert_non_null(t.query);
            assert_int_equal(t.query_len, strlen(c->query));
            assert_memory_equal(t.query, c->query, t.query_len);
        } else {
            assert_null(t.query);
            assert_int_equal(t.query_len, 0);
        }
    }
}

static void test_host_validator(void **state)
{
    static const struct {
        const char *note, *host;
        bool valid, ip;
    } hosts[] = {
        {"name", "example.com", true, false},
        {"fqdn", "example.com.", true, false},
        {"IPv4", "192.0.2.1", true, true},
        {"IPv6 without brackets", "2001:db8::1", true, true},
        {"IPv6 with brackets is not a host", "[::1]", false, false},
        {"IPv4 with a port is not a host", "1.2.3.4:80", false, false},
        {"only a dot", ".", false, false},
        {"empty", "", false, false},
        {"digits and letters in the last label", "a.1b", true, false},
        {"all-digit last label, not IPv4", "a.123", false, false},
        {"IPv4 with five parts", "1.2.3.4.5", false, false},
        {"hex IPv4 is not accepted", "0x7f.0.0.1", false, false},
        {"non-ASCII", "caf\xc3\xa9.test", false, false},
    };

    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        size_t len = strlen(hosts[i].host);
        const char *in = guard_tail(*state, hosts[i].host, len);

        print_message("case: %s\n", hosts[i].note);
        assert_int_equal(target_host_is_valid(in, len), hosts[i].valid);
        assert_int_equal(target_host_is_ip(in, len), hosts[i].ip);
    }
    /* NUL inside a name or an address */
    assert_false(target_host_is_valid(guard_tail(*state, "a\0b", 3), 3));
    assert_false(target_host_is_ip(guard_tail(*state, "1.2.3.4\0", 8), 8));
    assert_false(target_host_is_ip(guard_tail(*state, "::1\0", 4), 4));
}

static void test_host_length_limits(void **state)
{
    char name[300];
    size_t len = 0;

    /* 63-byte labels joined by dots up to exactly 253 bytes: valid; 254: invalid */
    while (len < 253) {
        size_t label = 253 - len < 63 ? 253 - len : 63;

        if (len > 0) {
            name[len++] = '.';
            if (label > 253 - len)
                label = 253 - len;
        }
        memset(name + len, 'a', label);
        len += label;
    }
    assert_int_equal(len, TARGET_HOST_MAX);
    assert_true(target_host_is_valid(guard_tail(*state, name, len), len));
    name[len] = '.';
    assert_true(target_host_is_valid(guard_tail(*state, name, len + 1), len + 1));
    name[len] = 'a';
    assert_false(target_host_is_valid(guard_tail(*state, name, len + 1), len + 1));
    assert_true(target_is_origin_form("/", 1));
    assert_false(target_is_origin_form("*", 1));
    assert_false(target_is_origin_form("", 0));
}

/* Every prefix of every input parses without reading past its end (the guard page). */
/* check_result asserts what holds for any parse of `in` (`n` bytes): 0 or -EINVAL (with a
 * reason), and on success slices that lie inside the input, a valid host and a port. */
static void check_result(const char *in, size_t n, int rc, const struct target *t,
                         const char *why)
{
    assert_true(rc == 0 || rc == -EINVAL);
    if (rc != 0) {
        assert_non_null(why);
        return;
    }
    if (t->form != TARGET_FORM_AUTHORITY && t->form != TARGET_FORM_ABSOLUTE)
        return; /* origin-form and "*" name no host */
    assert_true(t->host >= in && t->host + t->host_len <= in + n);
    assert_true(target_host_is_valid(t->host, t->host_len));
    assert_true(t->port != 0);
    if (t->path != NULL && !(t->path_len == 1 && t->path[0] == '/')) /* "/": the default */
        assert_true(t->path >= in && t->path + t->path_len <= in + n);
}

/* Every prefix of every table input, ending at the guard page: each parser stays inside the
 * bytes it was given, returns 0 or -EINVAL with a reason, and gives the same answer as for
 * the same bytes elsewhere in memory (nothing read past the end). */
static void test_target_prefixes(void **state)
{
    char copy[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].in);

        for (size_t n = 0; n <= len && n < sizeof(copy); n++) {
            const char *in = guard_tail(*state, cases[i].in, n);
            struct target t, u;
            const char *why = NULL, *why2 = NULL;
            int rc, rc2;

            memcpy(copy, cases[i].in, n);
            memset(copy + n, 'x', sizeof(copy) - n); /* what follows must not matter */
            for (int form = 0; form < 3; form++) {
                if (form == 0) {
                    rc = target_parse_request(in, n, false, &t, &why);
                    rc2 = target_parse_request(copy, n, false, &u, &why2);
                } else if (form == 1) {
                    rc = target_parse_request(in, n, true, &t, &why);
                    rc2 = target_parse_request(copy, n, true, &u, &why2);
                } else {
                    rc = target_parse_host_port(in, n, 80, &t, &why);
                    rc2 = target_parse_host_port(copy, n, 80, &u, &why2);
                }
                check_result(in, n, rc, &t, why);
                assert_int_equal(rc, rc2);
                if (rc == 0) {
                    assert_int_equal(t.host_len, u.host_len);
                    assert_int_equal(t.port, u.port);
                    assert_int_equal(t.form, u.form);
                }
            }
            /* the empty string is never a host */
            if (n == 0)
                assert_false(target_host_is_valid(in, n));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_table),
        cmocka_unit_test(test_host_validator),
        cmocka_unit_test(test_host_length_limits),
        cmocka_unit_test(test_target_prefixes),
    };

    return cmocka_run_group_tests(tests, guard_setup, guard_teardown);
}
