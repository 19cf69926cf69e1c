/* test_socks5_parse.c - shared/socks5_parse: greetings and requests from a table (each with a
 * note), every prefix of every valid message ending at a guard page (-EAGAIN, never a read
 * past the end), the invalid ones refused as soon as their bad byte arrives, the replies'
 * bytes and the errno -> reply code map. */
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

#include "shared/socks5_parse.h"

#define IN(s) .in = (const uint8_t *)(s), .in_len = sizeof(s) - 1

/* ---- greetings ---------------------------------------------------------------------- */

struct greeting_case {
    const char *note;
    const uint8_t *in;
    size_t in_len;
    ssize_t rc;       /* on the whole input */
    size_t bad_at;    /* for -EPROTO: the shortest prefix already refused */
    bool no_auth, userpass;
};

static const struct greeting_case greeting_cases[] = {
    {"curl: one method, no auth", IN("\x05\x01\x00"), 3, 0, true, false},
    {"no auth and user/pass", IN("\x05\x02\x00\x02"), 4, 0, true, true},
    {"user/pass only", IN("\x05\x01\x02"), 3, 0, false, true},
    {"GSSAPI only", IN("\x05\x01\x01"), 3, 0, false, false},
    {"bytes after the greeting are not taken", IN("\x05\x01\x00\x05\x01"), 3, 0, true, false},
    {"SOCKS4 request", IN("\x04\x01\x00\x50\x7f\x00\x00\x01\x00"), -EPROTO, 1, false, false},
    {"HTTP request on the socks port", IN("GET / HTTP/1.1\r\n"), -EPROTO, 1, false, false},
    {"zero methods", IN("\x05\x00"), -EPROTO, 2, false, false},
    {"TLS ClientHello", IN("\x16\x03\x01\x00\x05"), -EPROTO, 1, false, false},
};

static void test_greeting_table(void **state)
{
    for (size_t i = 0; i < sizeof(greeting_cases) / sizeof(greeting_cases[0]); i++) {
        const struct greeting_case *c = &greeting_cases[i];
        struct socks5_greeting g;
        const char *why = NULL;
        ssize_t rc = socks5_parse_greeting(guard_tail(*state, c->in, c->in_len), c->in_len, &g,
                                           &why);

        if (rc != c->rc)
            fail_msg("%s: rc %zd, expected %zd", c->note, rc, c->rc);
        if (rc == -EPROTO && why == NULL)
            fail_msg("%s: no reason", c->note);
        if (rc > 0 && (g.offers_no_auth != c->no_auth || g.offers_userpass != c->userpass))
            fail_msg("%s: methods no_auth %d userpass %d", c->note, g.offers_no_auth,
                     g.offers_userpass);
        /* every shorter prefix: -EAGAIN, or the same refusal once the bad byte is in */
        for (size_t n = 0; n < c->in_len && (rc > 0 ? n < (size_t)rc : true); n++) {
            ssize_t r = socks5_parse_greeting(guard_tail(*state, c->in, n), n, &g, &why);
            ssize_t want = rc == -EPROTO && n >= c->bad_at ? -EPROTO : -EAGAIN;

            if (r != want)
                fail_msg("%s: prefix %zu: rc %zd, expected %zd", c->note, n, r, want);
        }
    }
}

static void test_greeting_all_methods(void **state)
{
    uint8_t in[SOCKS5_GREETING_MAX];
    struct socks5_greeting g;
    const char *why = NULL;

    in[0] = 5;
    in[1] = 255;
    for (size_t i = 0; i < 255; i++)
        in[2 + i] = (uint8_t)(254 - i); /* 254 .. 0: 0x00 last */
    for (size_t n = 0; n < sizeof(in); n++) /* every prefix at the guard page */
        assert_int_equal(socks5_parse_greeting(guard_tail(*state, in, n), n, &g, &why), -EAGAIN);
    assert_int_equal(socks5_parse_greeting(guard_tail(*state, in, sizeof(in)), sizeof(in), &g,
                                           &why),
                     (ssize_t)sizeof(in));
    assert_int_equal(g.n_methods, 255);
    assert_true(g.offers_no_auth);
    assert_true(g.offers_userpass);
}

/* ---- requests ----------------------------------------------------------------------- */

struct request_case {
    const char *note;
    const uint8_t *in;
    size_t in_len;
    ssize_t rc;
    size_t bad_at; /* for errors: the shortest prefix already refused */
    uint8_t cmd, atyp;
    const char *host;
    uint16_t port;
};

static const struct request_case request_cases[] = {
    {"CONNECT domain (curl --socks5-hostname)",
     IN("\x05\x01\x00\x03\x0fwww.origin.test\x01\xbb"), 22, 0, 1, 3, "www.origin.test", 443},
    {"CONNECT IPv4", IN("\x05\x01\x00\x01\x7f\x00\x00\x01\x1f\x90"), 10, 0, 1, 1, "127.0.0.1",
     8080},
    {"CONNECT IPv6 ::1",
     IN("\x05\x01\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00"
        "\x50"),
     22, 0, 1, 4, "::1", 80},
    {"CONNECT domain with a final dot", IN("\x05\x01\x00\x03\x05" "a.te.\x00\x50"), 12, 0, 1, 3,
     "a.te", 80},
    {"CONNECT domain that is an IP literal", IN("\x05\x01\x00\x03\x09\x31\x32\x37.0.0.1\x00\x50"),
     16, 0, 1, 3, "127.0.0.1", 80},
    {"BIND is parsed whole (refused by the caller)", IN("\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50"),
     10, 0, 2, 1, "127.0.0.1", 80},
    {"UDP ASSOCIATE parsed whole", IN("\x05\x03\x00\x01\x00\x00\x00\x00\x00\x35"), 10, 0, 3, 1,
     "0.0.0.0", 53},
    {"bytes after the request are not taken (a ClientHello)",
     IN("\x05\x01\x00\x01\x7f\x00\x00\x01\x01\xbb\x16\x03\x01"), 10, 0, 1, 1, "127.0.0.1", 443},
    {"version 4", IN("\x04\x01\x00\x01\x7f\x00\x00\x01\x00\x50"), -EPROTO, 1, 0, 0, NULL, 0},
    {"reserved byte set", IN("\x05\x01\x01\x01\x7f\x00\x00\x01\x00\x50"), -EPROTO, 3, 0, 0, NULL,
     0},
    {"unknown address type", IN("\x05\x01\x00\x02\x7f\x00\x00\x01\x00\x50"), -EAFNOSUPPORT, 4, 0,
     0, NULL, 0},
    {"empty domain", IN("\x05\x01\x00\x03\x00\x00\x50"), -EPROTO, 5, 0, 0, NULL, 0},
    {"domain with a space", IN("\x05\x01\x00\x03\x03\x61 b\x00\x50"), -EPROTO, 10, 0, 0, NULL, 0},
    {"domain with a NUL", IN("\x05\x01\x00\x03\x03\x61\x00\x62\x00\x50"), -EPROTO, 10, 0, 0, NULL,
     0},
    {"port 0", IN("\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x00"), -EPROTO, 10, 0, 0, NULL, 0},
};

static void test_request_table(void **state)
{
    for (size_t i = 0; i < sizeof(request_cases) / sizeof(request_cases[0]); i++) {
        const struct request_case *c = &request_cases[i];
        struct socks5_request req;
        const char *why = NULL;
        ssize_t rc = socks5_parse_request(guard_tail(*state, c->in, c->in_len), c->in_len, &req,
                                          &why);
        size_t whole = rc > 0 ? (size_t)rc : c->in_len;

        if (rc != c->rc)
            fail_msg("%s: rc %zd, expected %zd (%s)", c->note, rc, c->rc, why ? why : "");
        if (rc < 0 && why == NULL)
            fail_msg("%s: no reason", c->note);
        if (rc > 0) {
            if (req.cmd != c->cmd || req.atyp != c->atyp || req.port != c->port ||
                strcmp(req.host, c->host) != 0 || req.host_len != strlen(c->host))
                fail_msg("%s: cmd %u atyp %u host '%s' port %u", c->note, req.cmd, req.atyp,
                         req.host, req.port);
        }
        for (size_t n = 0; n < whole; n++) {
            ssize_t r = socks5_parse_request(guard_tail(*state, c->in, n), n, &req, &why);
            ssize_t want = rc < 0 && n >= c->bad_at ? rc : -EAGAIN;

            if (r != want)
                fail_msg("%s: prefix %zu: rc %zd, expected %zd", c->note, n, r, want);
        }
    }
}

static void test_request_longest_domain(void **state)
{
    uint8_t in[SOCKS5_REQUEST_MAX];
    struct socks5_request req;
    const char *why = NULL;
    size_t len = 4 + 1 + 253 + 2;

    /* 253 bytes: labels of 63 'a' separated by dots (63*4 + 3 = 255 is too long) */
    memcpy(in, "\x05\x01\x00\x03", 4);
    in[4] = 253;
    for (size_t i = 0; i < 253; i++)
        in[5 + i] = (i % 64 == 63) ? '.' : 'a';
    in[5 + 253] = 0x01;
    in[5 + 254] = 0xbb;
    for (size_t n = 0; n < len; n++)
        assert_int_equal(socks5_parse_request(guard_tail(*state, in, n), n, &req, &why), -EAGAIN);
    assert_int_equal(socks5_parse_request(guard_tail(*state, in, len), len, &req, &why),
                     (ssize_t)len);
    assert_int_equal(req.host_len, 253);
    assert_int_equal(req.port, 443);

    in[4] = 255; /* 255 bytes: longer than a host name may be */
    for (size_t i = 0; i < 255; i++)
        in[5 + i] = (i % 64 == 63) ? '.' : 'a';
    in[5 + 255] = 0x01;
    in[5 + 256] = 0xbb;
    assert_int_equal(socks5_parse_request(guard_tail(*state, in, sizeof(in)), sizeof(in), &req,
                                          &why),
                     -EPROTO);
}

/* ---- replies ------------------------------------------------------------------------ */

/* RFC 1929 username/password requests: what is taken, and every prefix is -EAGAIN */
static void test_userpass(void **state)
{
    static const uint8_t ok[] = "\x01\x05" "alice" "\x06" "s3cret";
    static const uint8_t empty[] = "\x01\x00\x00";
    static const uint8_t badver[] = "\x05\x05" "alice" "\x06" "s3cret";
    struct socks5_userpass up;
    const char *why = NULL;
    uint8_t longest[3 + 255 + 255], reply[2];

    assert_int_equal(socks5_parse_userpass(guard_tail(*state, ok, sizeof(ok) - 1),
                                           sizeof(ok) - 1, &up, &why),
                     (ssize_t)sizeof(ok) - 1);
    assert_int_equal(up.user_len, 5);
    assert_memory_equal(up.user, "alice", 5);
    assert_int_equal(up.pass_len, 6);
    assert_memory_equal(up.pass, "s3cret", 6);
    for (size_t n = 0; n < sizeof(ok) - 1; n++)
        assert_int_equal(socks5_parse_userpass(guard_tail(*state, ok, n), n, &up, &why),
                         -EAGAIN);
    /* empty name and password are taken (as mitmproxy); the verifier decides */
    assert_int_equal(socks5_parse_userpass(guard_tail(*state, empty, 3), 3, &up, &why), 3);
    assert_int_equal(up.user_len + up.pass_len, 0);
    /* the sub-negotiation's version is 1, not SOCKS' 5 */
    assert_int_equal(socks5_parse_userpass(guard_tail(*state, badver, sizeof(badver) - 1),
                                           sizeof(badver) - 1, &up, &why),
                     -EPROTO);
    assert_non_null(why);
    /* 255-byte fields, the longest, with a following request left alone */
    longest[0] = 1;
    longest[1] = 255;
    memset(longest + 2, 'u', 255);
    longest[257] = 255;
    memset(longest + 258, 'p', 255);
    assert_int_equal(socks5_parse_userpass(guard_tail(*state, longest, sizeof(longest)),
                                           sizeof(longest), &up, &why),
                     (ssize_t)sizeof(longest));
    assert_int_equal(up.user_len, 255);
    assert_int_equal(up.pass_len, 255);
    assert_int_equal(up.pass[254], 'p');
    socks5_format_userpass_reply(reply, true);
    assert_memory_equal(reply, "\x01\x00", 2);
    socks5_format_userpass_reply(reply, false);
    assert_memory_equal(reply, "\x01\x01", 2);
}

static void test_replies(void **state)
{
    uint8_t m[2], r[SOCKS5_REPLY_LEN];
    static const uint8_t ok[SOCKS5_REPLY_LEN] = {5, 0, 0, 1, 0, 0, 0, 0, 0, 0};

    (void)state;
    socks5_format_method(m, SOCKS5_METHOD_NO_AUTH);
    assert_memory_equal(m, "\x05\x00", 2);
    socks5_format_method(m, SOCKS5_METHOD_NONE);
    assert_memory_equal(m, "\x05\xff", 2);
    socks5_format_reply(r, SOCKS5_REP_SUCCEEDED);
    assert_memory_equal(r, ok, sizeof(ok));
    socks5_format_reply(r, SOCKS5_REP_CONN_REFUSED);
    assert_int_equal(r[1], 5);
    /* errno -> reply code */
    assert_int_equal(socks5_reply_for_errno(-ECONNREFUSED), SOCKS5_REP_CONN_REFUSED);
    assert_int_equal(socks5_reply_for_errno(-EHOSTUNREACH), SOCKS5_REP_HOST_UNREACHABLE);
    assert_int_equal(socks5_reply_for_errno(-ETIMEDOUT), SOCKS5_REP_HOST_UNREACHABLE);
    assert_int_equal(socks5_reply_for_errno(-ENETUNREACH), SOCKS5_REP_NET_UNREACHABLE);
    assert_int_equal(socks5_reply_for_errno(-EIO), SOCKS5_REP_GENERAL_FAILURE);
    assert_string_equal(socks5_reply_name(SOCKS5_REP_CMD_NOT_SUPPORTED), "command not supported");
    assert_string_equal(socks5_reply_name(0x42), "unassigned");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_table),
        cmocka_unit_test(test_greeting_all_methods),
        cmocka_unit_test(test_request_table),
        cmocka_unit_test(test_request_longest_domain),
        cmocka_unit_test(test_userpass),
        cmocka_unit_test(test_replies),
    };

    return cmocka_run_group_tests(tests, guard_setup, guard_teardown);
}
