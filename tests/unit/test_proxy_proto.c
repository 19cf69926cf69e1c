/* test_proxy_proto.c - PROXY protocol v1/v2 parser: valid headers (addresses, ports, local
 * forms, TLVs), invalid ones refused with a reason, every prefix of a valid header -EAGAIN and
 * every input ending at a guard page, bytes after the header left alone, and the formatter's
 * output parsing back to the same header. */
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

#include "tests/unit/guard_page.h"

#include "shared/proxy_proto.h"

/* IN("...") gives a literal with its exact length (v2 headers contain NUL bytes). */
#define IN(s) .in = (const uint8_t *)(s), .in_len = sizeof(s) - 1

#define SIG "\r\n\r\n\0\r\nQUIT\n"

/* ---- valid headers -------------------------------------------------------------------- */

struct ok_case {
    const char *note;
    const uint8_t *in;
    size_t in_len;
    int version;
    bool local;
    const char *src, *dst; /* numeric addresses (NULL when local) */
    uint16_t sport, dport;
    uint16_t tlv_len;
};

static const struct ok_case ok_cases[] = {
    {"v1 TCP4, the spec's example", IN("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"), 1,
     false, "192.168.0.1", "192.168.0.11", 56324, 443, 0},
    {"v1 TCP4 longest", IN("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"), 1,
     false, "255.255.255.255", "255.255.255.255", 65535, 65535, 0},
    {"v1 ports 0", IN("PROXY TCP4 0.0.0.0 1.2.3.4 0 0\r\n"), 1, false, "0.0.0.0", "1.2.3.4", 0,
     0, 0},
    {"v1 TCP6 compressed", IN("PROXY TCP6 2001:db8::1 ::1 40000 8080\r\n"), 1, false,
     "2001:db8::1", "::1", 40000, 8080, 0},
    {"v1 TCP6 full length, upper case",
     IN("PROXY TCP6 FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF "
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
     1, false, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 65535, 0},
    {"v1 UNKNOWN short form", IN("PROXY UNKNOWN\r\n"), 1, true, NULL, NULL, 0, 0, 0},
    {"v1 UNKNOWN worst case (107 bytes) is ignored after the keyword",
     IN("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
     1, true, NULL, NULL, 0, 0, 0},
    {"v2 PROXY TCP4", IN(SIG "\x21\x11\x00\x0c" "\x0a\x00\x00\x01" "\xc0\xa8\x01\x02"
                         "\x1f\x90" "\x01\xbb"),
     2, false, "10.0.0.1", "192.168.1.2", 8080, 443, 0},
    {"v2 PROXY TCP6",
     IN(SIG "\x21\x21\x00\x24" "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07"
            "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" "\xff\xff"
            "\x00\x50"),
     2, false, "2001:db8::7", "::1", 65535, 80, 0},
    {"v2 TCP4 with TLVs (ALPN, authority, NOOP padding of 0)",
     IN(SIG "\x21\x11\x00\x22" "\x7f\x00\x00\x02" "\x7f\x00\x00\x01" "\x30\x39" "\x00\x50"
            "\x01\x00\x02h2" "\x02\x00\x0b" "example.com" "\x04\x00\x00"),
     2, false, "127.0.0.2", "127.0.0.1", 12345, 80, 22},
    {"v2 LOCAL (health check), no block", IN(SIG "\x20\x00\x00\x00"), 2, true, NULL, NULL, 0, 0,
     0},
    {"v2 LOCAL with a TCP4 block: the block is skipped unread",
     IN(SIG "\x20\x11\x00\x0c" "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"), 2, true, NULL,
     NULL, 0, 0, 0},
    {"v2 PROXY UNSPEC with junk: ignored", IN(SIG "\x21\x00\x00\x03" "abc"), 2, true, NULL, NULL,
     0, 0, 0},
    {"v2 PROXY UDP4: falls back to the real endpoints",
     IN(SIG "\x21\x12\x00\x0c" "\x0a\x00\x00\x01\x0a\x00\x00\x02\x00\x35\x00\x35"), 2, true, NULL,
     NULL, 0, 0, 0},
};

/* check_ok parses one valid case ending at the guard page and checks every field. */
static void check_ok(struct guard *g, const struct ok_case *tc, size_t extra)
{
    uint8_t *copy = malloc(tc->in_len + extra + 1);
    struct proxy_proto_hdr h;
    const char *why = NULL;
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    ssize_t n;

    assert_non_null(copy);
    memcpy(copy, tc->in, tc->in_len);
    memset(copy + tc->in_len, 'G', extra); /* what the client sends after the header */
    memset(&h, 0xa5, sizeof(h));
    n = proxy_proto_parse(guard_tail(g, copy, tc->in_len + extra), tc->in_len + extra, &h, &why);
    free(copy);
    if (n != (ssize_t)tc->in_len)
        fail_msg("%s: returned %zd (%s), expected %zu", tc->note, n, why ? why : "-",
                 tc->in_len);
    assert_int_equal(h.version, tc->version);
    assert_int_equal(h.local, tc->local);
    assert_int_equal(h.tlv_len, tc->tlv_len);
    if (tc->local) {
        assert_int_equal(h.src.ss_family, AF_UNSPEC);
        assert_int_equal(h.addr_len, 0);
        return;
    }
    if (h.src.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)&h.src, *b = (const void *)&h.dst;

        assert_int_equal(h.addr_len, sizeof(*a));
        inet_ntop(AF_INET, &a->sin_addr, s, sizeof(s));
        inet_ntop(AF_INET, &b->sin_addr, d, sizeof(d));
        assert_int_equal(ntohs(a->sin_port), tc->sport);
        assert_int_equal(ntohs(b->sin_port), tc->dport);
    } else {
        const struct sockaddr_in6 *a = (const void *)&h.src, *b = (const void *)&h.dst;

        assert_int_equal(h.src.ss_family, AF_INET6);
        assert_int_equal(h.addr_len, sizeof(*a));
        inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof(s));
        inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof(d));
        assert_int_equal(ntohs(a->sin6_port), tc->sport);
        assert_int_equal(ntohs(b->sin6_port), tc->dport);
    }
    assert_int_equal(h.dst.ss_family, h.src.ss_family);
    assert_string_equal(s, tc->src);
    assert_string_equal(d, tc->dst);
}

static void test_proxy_proto_valid(void **state)
{
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        check_ok(*state, &ok_cases[i], 0);
        check_ok(*state, &ok_cases[i], 1);   /* the client's first byte is not consumed */
        check_ok(*state, &ok_cases[i], 200); /* nor a whole request */
    }
}

static void test_proxy_proto_every_prefix(void **state)
{
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const struct ok_case *tc = &ok_cases[i];

        for (size_t n = 0; n < tc->in_len; n++) {
            struct proxy_proto_hdr h;
            const char *why = NULL;
            ssize_t r = proxy_proto_parse(guard_tail(*state, tc->in, n), n, &h, &why);

            if (r != -EAGAIN)
                fail_msg("%s: prefix of %zu bytes returned %zd (%s), expected -EAGAIN",
                         tc->note, n, r, why ? why : "-");
        }
    }
}

/* ---- invalid headers ------------------------------------------------------------------ */

struct bad_case {
    const char *note;
    const uint8_t *in;
    size_t in_len;
    const char *why_part; /* a substring of *why */
};

static const struct bad_case bad_cases[] = {
    {"an HTTP request instead of a header", IN("GET / HTTP/1.1\r\n"), "not a PROXY"},
    {"a TLS ClientHello instead of a header", IN("\x16\x03\x01\x00\x05hello"), "not a PROXY"},
    {"a CONNECT", IN("CONNECT a:443 HTTP/1.1\r\n\r\n"), "not a PROXY"},
    {"lower-case proxy", IN("proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n"), "not a PROXY"},
    {"refused at its first wrong byte", IN("PRX"), "not a PROXY"},
    {"two spaces after PROXY", IN("PROXY  TCP4 1.2.3.4 1.2.3.4 1 2\r\n"), "protocol"},
    {"TCP5", IN("PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n"), "protocol"},
    {"UDP4", IN("PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n"), "protocol"},
    {"UNKNOWNX", IN("PROXY UNKNOWNX\r\n"), "protocol"},
    {"UNKNOWN with a bare LF", IN("PROXY UNKNOWN foo\nbar\r\n"), "LF without CR"},
    {"UNKNOWN, CR without LF", IN("PROXY UNKNOWN\rX"), "CR without LF"},
    {"TCP4 with an IPv6 address", IN("PROXY TCP4 ::1 ::1 1 2\r\n"), "malformed"},
    {"TCP6 with an IPv4 address", IN("PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n"), "not an IPv6"},
    {"IPv4 with a heading zero", IN("PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n"), "not an IPv4"},
    {"IPv4 with 3 parts", IN("PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n"), "not an IPv4"},
    {"IPv4 part > 255", IN("PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n"), "not an IPv4"},
    {"IPv6 with two ::", IN("PROXY TCP6 1::2::3 ::1 1 2\r\n"), "not an IPv6"},
    {"address too long",
     IN("PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0000:0000:0000 ::1 1 2\r\n"), "malformed"},
    {"port with a heading zero", IN("PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n"), "port malformed"},
    {"port 65536", IN("PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n"), "out of range"},
    {"port with 6 digits", IN("PROXY TCP4 1.2.3.4 1.2.3.4 1 100000\r\n"), "port"},
    {"empty port", IN("PROXY TCP4 1.2.3.4 1.2.3.4  2\r\n"), "port malformed"},
    {"missing destination port", IN("PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n"), "port malformed"},
    {"extra field", IN("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n"), "port malformed"},
    {"line ends in LF only", IN("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n"), "port malformed"},
    {"line ends in CR only", IN("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX"), "CR without LF"},
    {"tab as separator", IN("PROXY TCP4\t1.2.3.4 1.2.3.4 1 2\r\n"), "protocol"},
    {"UNKNOWN without CRLF in 107 bytes",
     IN("PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxx\r\n"),
     "107"},
    {"v2 signature wrong", IN("\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x00"), "not a PROXY"},
    {"v2 version 1", IN(SIG "\x11\x11\x00\x0c"), "version"},
    {"v2 version 3", IN(SIG "\x31"), "version"},
    {"v2 command 2", IN(SIG "\x22\x11\x00\x0c"), "command"},
    {"v2 family 4", IN(SIG "\x21\x41\x00\x0c"), "family"},
    {"v2 protocol 3", IN(SIG "\x21\x13\x00\x0c"), "family"},
    {"v2 PROXY family UNSPEC over STREAM", IN(SIG "\x21\x01\x00\x00"), "family"},
    {"v2 PROXY family INET over UNSPEC", IN(SIG "\x21\x10\x00\x00"), "family"},
    {"v2 TCP4 block too short", IN(SIG "\x21\x11\x00\x0b"), "shorter"},
    {"v2 TCP6 block too short", IN(SIG "\x21\x21\x00\x0c"), "shorter"},
    {"v2 UNIX block too short", IN(SIG "\x21\x31\x00\x24"), "shorter"},
    {"v2 TLV header cut",
     IN(SIG "\x21\x11\x00\x0e" "\x7f\x00\x00\x02\x7f\x00\x00\x01\x30\x39\x00\x50" "\x01\x00"),
     "TLV header"},
    {"v2 TLV value past the end",
     IN(SIG "\x21\x11\x00\x10" "\x7f\x00\x00\x02\x7f\x00\x00\x01\x30\x39\x00\x50" "\x01\x00\x02h"),
     "past"},
};

static void test_proxy_proto_invalid(void **state)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *tc = &bad_cases[i];
        struct proxy_proto_hdr h, before;
        const char *why = NULL;
        ssize_t r;

        memset(&h, 0x5a, sizeof(h));
        before = h;
        r = proxy_proto_parse(guard_tail(*state, tc->in, tc->in_len), tc->in_len, &h, &why);
        if (r != -EPROTO)
            fail_msg("%s: returned %zd, expected -EPROTO", tc->note, r);
        assert_non_null(why);
        if (strstr(why, tc->why_part) == NULL)
            fail_msg("%s: why \"%s\" lacks \"%s\"", tc->note, why, tc->why_part);
        assert_memory_equal(&h, &before, sizeof(h)); /* untouched on failure */
    }
}

/* test_proxy_proto_v1_limit: a v1 line is refused once 107 bytes hold no CRLF, and not one
 * byte earlier (a well-formed UNKNOWN line of 106 bytes is still waiting for its LF). */
static void test_proxy_proto_v1_limit(void **state)
{
    uint8_t line[PROXY_PROTO_V1_MAX + 1];
    struct proxy_proto_hdr h;
    const char *why = NULL;

    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    for (size_t n = 14; n < PROXY_PROTO_V1_MAX; n++)
        assert_int_equal(proxy_proto_parse(guard_tail(*state, line, n), n, &h, &why), -EAGAIN);
    assert_int_equal(proxy_proto_parse(guard_tail(*state, line, PROXY_PROTO_V1_MAX),
                                       PROXY_PROTO_V1_MAX, &h, &why),
                     -EPROTO);
    /* 105 x's then CRLF is exactly 107 bytes: accepted */
    line[PROXY_PROTO_V1_MAX - 2] = '\r';
    line[PROXY_PROTO_V1_MAX - 1] = '\n';
    assert_int_equal(proxy_proto_parse(guard_tail(*state, line, PROXY_PROTO_V1_MAX),
                                       PROXY_PROTO_V1_MAX, &h, &why),
                     PROXY_PROTO_V1_MAX);
}

/* test_proxy_proto_v2_longest: a v2 header of 16 + 65535 bytes (TLVs up to the end) parses
 * at the guard page, and is -EAGAIN one byte short. */
static void test_proxy_proto_v2_longest(void **state)
{
    size_t total = PROXY_PROTO_V2_MAX, off = 28;
    uint8_t *buf = calloc(1, total);
    struct proxy_proto_hdr h;
    const char *why = NULL;

    assert_non_null(buf);
    memcpy(buf, SIG "\x21\x11\xff\xff" "\x0a\x00\x00\x01\x0a\x00\x00\x02\x00\x01\x00\x02", 28);
    while (off < total) { /* NOOP TLVs of up to 1000 bytes fill the rest exactly */
        size_t v = total - off - 3 < 1000 ? total - off - 3 : 1000;

        assert_true(total - off >= 3);
        buf[off] = PROXY_PROTO_V2_TLV_NOOP;
        buf[off + 1] = (uint8_t)(v >> 8);
        buf[off + 2] = (uint8_t)v;
        off += 3 + v;
    }
    assert_int_equal(proxy_proto_parse(guard_tail(*state, buf, total), total, &h, &why), total);
    assert_int_equal(h.tlv_len, 65535 - 12);
    assert_int_equal(proxy_proto_parse(guard_tail(*state, buf, total - 1), total - 1, &h, &why),
                     -EAGAIN);
    free(buf);
}

/* test_proxy_proto_format_round_trip: what proxy_proto_format writes, in both versions, parses
 * back to the same header. */
static void test_proxy_proto_format_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        struct proxy_proto_hdr h, back;
        const char *why = NULL;
        uint8_t out[256];

        assert_true(proxy_proto_parse(ok_cases[i].in, ok_cases[i].in_len, &h, &why) > 0);
        for (int v = 1; v <= 2; v++) {
            ssize_t n = proxy_proto_format(v, &h, out, sizeof(out));

            assert_true(n > 0);
            assert_int_equal(proxy_proto_parse(out, (size_t)n, &back, &why), n);
            assert_int_equal(back.version, v);
            assert_int_equal(back.local, h.local);
            assert_int_equal(back.addr_len, h.addr_len);
            assert_memory_equal(&back.src, &h.src, sizeof(h.src));
            assert_memory_equal(&back.dst, &h.dst, sizeof(h.dst));
            assert_int_equal(proxy_proto_format(v, &h, out, (size_t)n - 1), -ENOSPC);
        }
        assert_int_equal(proxy_proto_format(3, &h, out, sizeof(out)), -EINVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_proto_valid),
        cmocka_unit_test(test_proxy_proto_every_prefix),
        cmocka_unit_test(test_proxy_proto_invalid),
        cmocka_unit_test(test_proxy_proto_v1_limit),
        cmocka_unit_test(test_proxy_proto_v2_longest),
        cmocka_unit_test(test_proxy_proto_format_round_trip),
    };

    return cmocka_run_group_tests(tests, guard_setup, guard_teardown);
}
