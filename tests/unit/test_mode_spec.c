/* test_mode_spec.c - shared/mode_spec: mitmproxy's mode specs from a table (each with a
 * note), every prefix of each valid spec parsed without reading past its end (a guard page),
 * and the refusals with their reasons. */
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

#include "shared/mode_spec.h"

struct spec_case {
    const char *note;
    const char *in;
    int rc;
    enum mode_spec_kind kind;
    bool tls;
    const char *host;
    uint16_t port;
    int listen_port;         /* -1: none */
    const char *listen_host; /* NULL: none */
};

static const struct spec_case cases[] = {
    {"regular", "regular", 0, MODE_SPEC_REGULAR, false, "", 0, -1, NULL},
    {"case-insensitive", "SOCKS5", 0, MODE_SPEC_SOCKS5, false, "", 0, -1, NULL},
    {"socks5 with a port", "socks5@1080", 0, MODE_SPEC_SOCKS5, false, "", 0, 1080, NULL},
    {"regular with host and port", "regular@127.0.0.1:8080", 0, MODE_SPEC_REGULAR, false, "", 0,
     8080, "127.0.0.1"},
    {"IPv6 listen host", "regular@[::1]:8080", 0, MODE_SPEC_REGULAR, false, "", 0, 8080, "::1"},
    {"reverse https with port", "reverse:https://api.internal:443", 0, MODE_SPEC_REVERSE, true,
     "api.internal", 443, -1, NULL},
    {"reverse http", "reverse:http://127.0.0.1:8081", 0, MODE_SPEC_REVERSE, false, "127.0.0.1",
     8081, -1, NULL},
    {"reverse: https is the default scheme", "reverse:example.com", 0, MODE_SPEC_REVERSE, true,
     "example.com", 443, -1, NULL},
    {"reverse http default port, trailing slash", "reverse:http://example.com/", 0,
     MODE_SPEC_REVERSE, false, "example.com", 80, -1, NULL},
    {"reverse IPv6 server", "reverse:https://[::1]:8443", 0, MODE_SPEC_REVERSE, true, "::1", 8443,
     -1, NULL},
    {"reverse with listen spec", "reverse:https://api.internal:443@8443", 0, MODE_SPEC_REVERSE,
     true, "api.internal", 443, 8443, NULL},
    {"upstream: http is the default scheme", "upstream:proxy.corp:3128", 0, MODE_SPEC_UPSTREAM,
     false, "proxy.corp", 3128, -1, NULL},
    {"transparent", "transparent", 0, MODE_SPEC_TRANSPARENT, false, "", 0, -1, NULL},
    {"port 0 (any free port)", "socks5@0", 0, MODE_SPEC_SOCKS5, false, "", 0, 0, NULL},
    {"unknown mode", "wireguard", -EINVAL, 0, false, NULL, 0, -1, NULL},
    {"empty", "", -EINVAL, 0, false, NULL, 0, -1, NULL},
    {"only a listen spec", "@8080", -EINVAL, 0, false, NULL, 0, -1, NULL},
    {"regular takes no argument", "regular:foo", -EINVAL, 0, false, NULL, 0, -1, NULL},
    {"reverse needs a server", "reverse", -EINVAL, 0, false, NULL, 0, -1, NULL},
    {"reverse with an empty server", "reverse:", -EINVAL, 0, false, NULL, 0, -1, NULL},
    {"reverse: unsupported scheme", "reverse:tls://a.test:443", -EINVAL, 0, false, NULL, 0, -1,
     NULL},
    {"reverse: a path", "reverse:https://a.test/x", -EINVAL, 0, false, NULL, 0, -1, NULL},
    {"reverse: bad port", "reverse:https://a.test:99999", -EINVAL, 0, false, NULL, 0, -1, NULL},
    {"bad listen port", "socks5@http", -EINVAL, 0, false, NULL, 0, -1, NULL},
    {"listen port too large", "socks5@65536", -EINVAL, 0, false, NULL, 0, -1, NULL},
    {"empty listen port", "socks5@", -EINVAL, 0, false, NULL, 0, -1, NULL},
    {"bad listen host", "socks5@a b:80", -EINVAL, 0, false, NULL, 0, -1, NULL},
};

static void test_spec_table(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct spec_case *c = &cases[i];
        size_t len = strlen(c->in);
        struct mode_spec m;
        const char *why = NULL;
        int rc = mode_spec_parse(guard_tail(*state, c->in, len), len, &m, &why);

        if (rc != c->rc)
            fail_msg("%s: rc %d, expected %d (%s)", c->note, rc, c->rc, why ? why : "");
        if (rc != 0) {
            if (why == NULL)
                fail_msg("%s: no reason", c->note);
            continue;
        }
        if (m.kind != c->kind || m.tls != c->tls || strcmp(m.host, c->host) != 0 ||
            m.port != c->port)
            fail_msg("%s: kind %d tls %d host '%s' port %u", c->note, m.kind, m.tls, m.host,
                     m.port);
        if (m.has_listen_port != (c->listen_port >= 0) ||
            (c->listen_port >= 0 && m.listen_port != c->listen_port))
            fail_msg("%s: listen port %d/%u", c->note, m.has_listen_port, m.listen_port);
        if (m.has_listen_host != (c->listen_host != NULL) ||
            (c->listen_host != NULL && strcmp(m.listen_host, c->listen_host) != 0))
            fail_msg("%s: listen host '%s'", c->note, m.listen_host);
        /* every prefix parses or fails cleanly, reading nothing past its end */
        for (size_t n = 0; n < len; n++)
            (void)mode_spec_parse(guard_tail(*state, c->in, n), n, &m, &why);
    }
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(mode_spec_kind_name(MODE_SPEC_REGULAR), "regular");
    assert_string_equal(mode_spec_kind_name(MODE_SPEC_SOCKS5), "socks5");
    assert_string_equal(mode_spec_kind_name(MODE_SPEC_REVERSE), "reverse");
    assert_string_equal(mode_spec_kind_name(MODE_SPEC_COUNT), "?");
}

/* mode_spec_describe: mitmproxy 10's words for each mode (its start-up lines); the spec as
 * given is kept in full_spec (mitmproxy's full_spec, for messages and flow records). */
static void test_describe_and_full_spec(void **state)
{
    static const struct {
        const char *in, *desc;
    } descs[] = {
        {"regular@8080", "HTTP(S) proxy"},
        {"SOCKS5@1080", "SOCKS v5 proxy"},
        {"reverse:api.internal@8443", "reverse proxy to https://api.internal:443"},
        {"reverse:http://[::1]:8081", "reverse proxy to http://[::1]:8081"},
        {"upstream:http://proxy.corp:3128", "HTTP(S) proxy (upstream mode)"},
        {"transparent", "Transparent Proxy"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(descs) / sizeof(descs[0]); i++) {
        struct mode_spec m;
        const char *why = NULL;
        char desc[MODE_SPEC_DESC_MAX], small[8];

        assert_int_equal(mode_spec_parse(descs[i].in, strlen(descs[i].in), &m, &why), 0);
        assert_string_equal(m.full_spec, descs[i].in);
        assert_string_equal(mode_spec_describe(&m, desc, sizeof(desc)), descs[i].desc);
        /* truncated, never overrun */
        assert_int_equal(strlen(mode_spec_describe(&m, small, sizeof(small))), sizeof(small) - 1);
    }
}

/* A spec longer than MODE_SPEC_FULL_MAX, or with a NUL byte, is refused with a reason. */
static void test_too_long_and_nul(void **state)
{
    static char big[MODE_SPEC_FULL_MAX + 2];
    struct mode_spec m;
    const char *why = NULL;
    (void)state;

    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "reverse:", 8);
    assert_int_equal(mode_spec_parse(big, MODE_SPEC_FULL_MAX + 1, &m, &why), -EINVAL);
    assert_non_null(strstr(why, "too long"));
    assert_int_equal(mode_spec_parse("regular\0@80", 11, &m, &why), -EINVAL);
    assert_non_null(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_table),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_describe_and_full_spec),
        cmocka_unit_test(test_too_long_and_nul),
    };

    return cmocka_run_group_tests(tests, guard_setup, guard_teardown);
}
