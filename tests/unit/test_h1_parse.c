/* test_h1_parse.c - HTTP/1.x head parser, body framing and chunked decoder: valid and invalid
 * heads (every request-smuggling defence), limits, every prefix ending at a guard page, and
 * the chunked decoder fed in one go, byte by byte and in random splits. */
#include <errno.h>
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

#include "shared/h1_parse.h"

/* IN("...") gives a literal with its exact length, so inputs may contain NUL bytes. */
#define IN(s) .in = (s), .in_len = sizeof(s) - 1

/* ---- request heads ------------------------------------------------------------------- */

enum {
    F_CHUNKED = 1 << 0,
    F_KEEP_ALIVE = 1 << 1,
    F_CONN_CLOSE = 1 << 2,
    F_EXPECT = 1 << 3,
    F_UPGRADE = 1 << 4,
    F_WEBSOCKET = 1 << 5,
    F_HAS_TE = 1 << 6,
};

struct req_case {
    const char *note;
    const char *in;
    size_t in_len;
    ssize_t rc;       /* 0: success, consuming all but the last `rest` bytes */
    size_t rest;
    enum h1_err err;
    int64_t cl;       /* expected content_length on success */
    unsigned flags;   /* expected F_* on success */
    const char *host; /* expected Host value on success, NULL when absent */
    enum h1_body body;
};

static const struct req_case req_cases[] = {
    /* valid */
    {"minimal HTTP/1.1 GET", IN("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"), 0, 0, 0, -1,
     F_KEEP_ALIVE, "a.test", H1_BODY_NONE},
    /* RFC 9112 §2.2: a lone LF ends a line of the head (issue 15 item 11) */
    {"bare LF ends the request line", IN("GET / HTTP/1.1\nHost: a\r\n\r\n"), 0, 0, 0, -1,
     F_KEEP_ALIVE, "a", H1_BODY_NONE},
    {"bare LF ends a header line", IN("GET / HTTP/1.1\r\nHost: a\n\r\n"), 0, 0, 0, -1,
     F_KEEP_ALIVE, "a", H1_BODY_NONE},
    {"bare LF ends the head", IN("GET / HTTP/1.1\r\nHost: a\r\n\n"), 0, 0, 0, -1, F_KEEP_ALIVE,
     "a", H1_BODY_NONE},
    {"LF-only request", IN("GET / HTTP/1.1\nHost: a\n\n"), 0, 0, 0, -1, F_KEEP_ALIVE, "a",
     H1_BODY_NONE},
    {"testssl.sh's LF-only CONNECT", IN("CONNECT 127.0.0.1:18444 HTTP/1.0\n\n"), 0, 0, 0, -1, 0,
     NULL, H1_BODY_NONE},
    {"LF-only head with a body", IN("POST / HTTP/1.1\nHost: a\nContent-Length: 2\n\nhi"), 0, 2,
     0, 2, F_KEEP_ALIVE, "a", H1_BODY_LENGTH},
    {"LF-only empty lines before the request line", IN("\n\r\n\nGET / HTTP/1.1\nHost: a\n\n"),
     0, 0, 0, -1, F_KEEP_ALIVE, "a", H1_BODY_NONE},
    {"trailing whitespace before a lone LF is not in the value",
     IN("GET / HTTP/1.1\nHost: a \t\n\n"), 0, 0, 0, -1, F_KEEP_ALIVE, "a", H1_BODY_NONE},
    {"HTTP/1.0 without Host is not persistent", IN("GET / HTTP/1.0\r\n\r\n"), 0, 0, 0, -1, 0,
     NULL, H1_BODY_NONE},
    {"HTTP/1.0 keep-alive", IN("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 0, 0, 0, -1,
     F_KEEP_ALIVE, NULL, H1_BODY_NONE},
    {"HTTP/1.1 Connection: close",
     IN("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n"), 0, 0, 0, -1,
     F_CONN_CLOSE, "a", H1_BODY_NONE},
    {"Content-Length body is not consumed",
     IN("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"), 0, 5, 0, 5,
     F_KEEP_ALIVE, "a", H1_BODY_LENGTH},
    {"Content-Length: 0 means no body",
     IN("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), 0, 0, 0, 0, F_KEEP_ALIVE,
     "a", H1_BODY_NONE},
    {"largest Content-Length",
     IN("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"), 0, 0, 0,
     INT64_MAX, F_KEEP_ALIVE, "a", H1_BODY_LENGTH},
    {"equal duplicate Content-Length is merged",
     IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\ncontent-length: 007\r\n\r\n"), 0, 0,
     0, 7, F_KEEP_ALIVE, "a", H1_BODY_LENGTH},
    {"chunked request", IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 0,
     0, 0, -1, F_KEEP_ALIVE | F_CHUNKED | F_HAS_TE, "a", H1_BODY_CHUNKED},
    {"chunked is case-insensitive, OWS and empty list elements ignored",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , CHUNKED \r\n\r\n"), 0, 0, 0, -1,
     F_KEEP_ALIVE | F_CHUNKED | F_HAS_TE, "a", H1_BODY_CHUNKED},
    {"Expect: 100-continue",
     IN("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n"), 0, 0,
     0, 3, F_KEEP_ALIVE | F_EXPECT, "a", H1_BODY_LENGTH},
    {"Expect: 100-continue is ignored in HTTP/1.0",
     IN("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"), 0, 0, 0, 3, 0,
     NULL, H1_BODY_LENGTH},
    {"websocket upgrade",
     IN("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: "
        "websocket\r\n\r\n"),
     0, 0, 0, -1, F_KEEP_ALIVE | F_UPGRADE | F_WEBSOCKET, "a", H1_BODY_NONE},
    {"Upgrade without Connection: upgrade is no upgrade",
     IN("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"), 0, 0, 0, -1, F_KEEP_ALIVE,
     "a", H1_BODY_NONE},
    {"h2c upgrade is an upgrade but not websocket",
     IN("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"),
     0, 0, 0, -1, F_KEEP_ALIVE | F_UPGRADE, "a", H1_BODY_NONE},
    {"CONNECT without Host", IN("CONNECT a.test:443 HTTP/1.1\r\n\r\n"), 0, 0, 0, -1,
     F_KEEP_ALIVE, NULL, H1_BODY_NONE},
    {"absolute-form with Host and port",
     IN("GET http://a.test:8080/p?q HTTP/1.1\r\nHost: a.test:8080\r\n\r\n"), 0, 0, 0, -1,
     F_KEEP_ALIVE, "a.test:8080", H1_BODY_NONE},
    {"empty lines before the request line are skipped",
     IN("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0, 0, 0, -1, F_KEEP_ALIVE, "a",
     H1_BODY_NONE},
    {"OWS trimmed, obs-text and inner spaces kept",
     IN("GET / HTTP/1.1\r\nHost:\t a \t\r\nX-T: caf\xc3\xa9 au lait  \r\n\r\n"), 0, 0, 0, -1,
     F_KEEP_ALIVE, "a", H1_BODY_NONE},
    {"empty header value", IN("GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n"), 0, 0, 0, -1,
     F_KEEP_ALIVE, "a", H1_BODY_NONE},
    {"lower-case method is a valid token", IN("get / HTTP/1.1\r\nHost: a\r\n\r\n"), 0, 0, 0, -1,
     F_KEEP_ALIVE, "a", H1_BODY_NONE},
    {"IPv6 Host", IN("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 0, 0, 0, -1, F_KEEP_ALIVE,
     "[::1]:8080", H1_BODY_NONE},
    {"pipelined second request is not consumed",
     IN("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"), 0, 28, 0, -1,
     F_KEEP_ALIVE, "a", H1_BODY_NONE},

    /* request smuggling defences */
    {"Transfer-Encoding with Content-Length",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"Content-Length with Transfer-Encoding",
     IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"conflicting Content-Length",
     IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"Content-Length list", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"Content-Length with sign", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"negative Content-Length",
     IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"hex Content-Length", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"Content-Length with trailing junk",
     IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"empty Content-Length", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"Content-Length over INT64_MAX",
     IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n"), -EPROTO,
     0, H1_ERR_MALFORMED},
    {"Content-Length over 2^64",
     IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 184467440737095516160\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"Transfer-Encoding gzip alone (chunked not final)",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"chunked not final", IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"chunked not final across two fields",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
        "gzip\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"unknown coding before chunked is 501",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), -EPROTO, 0,
     H1_ERR_NOT_IMPLEMENTED},
    {"chunked twice", IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"chunked twice across fields",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
        "chunked\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"identity is not chunked", IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"empty Transfer-Encoding", IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"chunked with parameters",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"chunked with junk (\"chunked x\")",
     IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked x\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"Transfer-Encoding in HTTP/1.0", IN("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"obs-fold", IN("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"obs-fold with tab", IN("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"whitespace before the first header line",
     IN("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), -EPROTO, 0, H1_ERR_MALFORMED},
    {"whitespace between name and colon",
     IN("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"tab between name and colon", IN("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"CR CR LF ends a header line", IN("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"bare CR ends the request line", IN("GET / HTTP/1.1\rHost: a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"bare CR ends the head after LF lines", IN("GET / HTTP/1.1\nHost: a\n\r"), -EAGAIN, 0,
     H1_ERR_NONE},
    {"bare CR then a byte ends the head", IN("GET / HTTP/1.1\nHost: a\n\rX"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"bare CR inside a value", IN("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"bare CR in the request line", IN("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"bare CR before the request line", IN("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"NUL in a header value", IN("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"NUL in a header name", IN("GET / HTTP/1.1\r\nHost: a\r\nX\0Y: b\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"control character in a value", IN("GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"DEL in a value", IN("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"non-token byte in a header name", IN("GET / HTTP/1.1\r\nHost: a\r\nX@Y: b\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"obs-text in a header name", IN("GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: b\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"header line without colon", IN("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), -EPROTO,
     0, H1_ERR_MALFORMED},
    {"empty header name", IN("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"invalid token in method", IN("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"empty method", IN(" / HTTP/1.1\r\nHost: a\r\n\r\n"), -EPROTO, 0, H1_ERR_MALFORMED},
    {"space inside request-target", IN("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"two spaces after the method", IN("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"tab as separator", IN("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"control character in request-target", IN("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n"),
     -EPROTO, 0, H1_ERR_MALFORMED},
    {"obs-text in request-target", IN("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"HTTP/0.9 style request line", IN("GET /\r\n\r\n"), -EPROTO, 0, H1_ERR_MALFORMED},
    {"trailing space after version", IN("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"lower-case HTTP name", IN("GET / http/1.1\r\nHost: a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"truncated version", IN("GET / HTTP/1\r\nHost: a\r\n\r\n"), -EPROTO, 0, H1_ERR_MALFORMED},
    {"HTTP/2.0 is 505", IN("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), -EPROTO, 0, H1_ERR_VERSION},
    {"HTTP/1.2 is 505", IN("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), -EPROTO, 0, H1_ERR_VERSION},
    {"missing Host in HTTP/1.1", IN("GET / HTTP/1.1\r\nX: a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"duplicate Host", IN("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"duplicate equal Host", IN("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"Host with a path", IN("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"Host with userinfo", IN("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"Host with a bad port", IN("GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},
    {"unterminated IPv6 Host", IN("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), -EPROTO, 0,
     H1_ERR_MALFORMED},

    /* incomplete */
    {"empty input", IN(""), -EAGAIN, 0, H1_ERR_NONE},
    {"only empty lines", IN("\r\n\r\n"), -EAGAIN, 0, H1_ERR_NONE},
    {"head without final CRLF", IN("GET / HTTP/1.1\r\nHost: a\r\n"), -EAGAIN, 0, H1_ERR_NONE},
    {"head ending in CR", IN("GET / HTTP/1.1\r\nHost: a\r\n\r"), -EAGAIN, 0, H1_ERR_NONE},
};

static void check_request_case(const struct req_case *c, const uint8_t *in)
{
    struct h1_header hdrs[H1_MAX_HEADERS];
    struct h1_request req;
    const char *why = NULL;
    ssize_t rc = h1_parse_request(in, c->in_len, 0, &req, hdrs, H1_MAX_HEADERS, &why);

    print_message("case: %s\n", c->note);
    if (c->rc != 0) {
        assert_int_equal(rc, c->rc);
        assert_int_equal(req.err, c->err);
        if (c->rc != -EAGAIN) {
            assert_non_null(why);
            assert_true(h1_err_status(req.err) >= 400);
        }
        return;
    }
    assert_int_equal(rc, c->in_len - c->rest);
    assert_int_equal(req.err, H1_ERR_NONE);
    assert_int_equal(req.framing.content_length, c->cl);
    assert_int_equal(req.framing.chunked, (c->flags & F_CHUNKED) != 0);
    assert_int_equal(req.framing.has_te, (c->flags & F_HAS_TE) != 0);
    assert_int_equal(req.framing.keep_alive, (c->flags & F_KEEP_ALIVE) != 0);
    assert_int_equal(req.framing.conn_close, (c->flags & F_CONN_CLOSE) != 0);
    assert_int_equal(req.framing.expect_continue, (c->flags & F_EXPECT) != 0);
    assert_int_equal(req.framing.upgrade, (c->flags & F_UPGRADE) != 0);
    assert_int_equal(req.framing.websocket, (c->flags & F_WEBSOCKET) != 0);
    assert_int_equal(h1_request_body(&req), c->body);
    if (c->host == NULL) {
        assert_null(req.host);
    } else {
        assert_non_null(req.host);
        assert_int_equal(req.host_len, strlen(c->host));
        assert_memory_equal(req.host, c->host, req.host_len);
    }
}

static void test_request_table(void **state)
{
    for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
        const struct req_case *c = &req_cases[i];

        check_request_case(c, guard_tail(*state, c->in, c->in_len));
    }
}

static void test_request_fields(void **state)
{
    static const char in[] = "POST http://a.test/x?y=1 HTTP/1.1\r\nHost: a.test\r\n"
                             "X-Spaced:  v a l  \r\nContent-Length: 3\r\n\r\nabc";
    struct h1_header hdrs[H1_MAX_HEADERS];
    struct h1_request req;
    const char *why = NULL;
    const uint8_t *p = guard_tail(*state, in, sizeof(in) - 1);
    ssize_t rc = h1_parse_request(p, sizeof(in) - 1, 0, &req, hdrs, H1_MAX_HEADERS, &why);

    assert_int_equal(rc, sizeof(in) - 1 - 3);
    assert_int_equal(req.method_len, 4);
    assert_memory_equal(req.method, "POST", 4);
    assert_ptr_equal(req.method, (const char *)p); /* zero-copy */
    assert_int_equal(req.target_len, strlen("http://a.test/x?y=1"));
    assert_memory_equal(req.target, "http://a.test/x?y=1", req.target_len);
    assert_int_equal(req.minor_version, 1);
    assert_ptr_equal(req.headers, hdrs);
    assert_int_equal(req.num_headers, 3);
    assert_int_equal(hdrs[1].name_len, strlen("X-Spaced"));
    assert_memory_equal(hdrs[1].name, "X-Spaced", hdrs[1].name_len);
    assert_int_equal(hdrs[1].value_len, strlen("v a l"));
    assert_memory_equal(hdrs[1].value, "v a l", hdrs[1].value_len);
    assert_int_equal(h1_header_find(hdrs, req.num_headers, "content-length", 0), 2);
    assert_int_equal(h1_header_find(hdrs, req.num_headers, "host", 1), -1);
    assert_int_equal(h1_header_find(hdrs, req.num_headers, "x-missing", 0), -1);
    assert_true(h1_header_name_is(&hdrs[0], "HOST"));
    assert_true(h1_method_is(req.method, req.method_len, "POST"));
    assert_false(h1_method_is(req.method, req.method_len, "post"));
}

/* build_request writes "GET / HTTP/1.1\r\nHost: a\r\n" + n fields + "\r\n" into out. */
static size_t build_request(char *out, size_t cap, size_t n_fields)
{
    size_t len = (size_t)snprintf(out, cap, "GET / HTTP/1.1\r\nHost: a\r\n");

    for (size_t i = 0; i < n_fields; i++)
        len += (size_t)snprintf(out + len, cap - len, "X-F%zu: v\r\n", i);
    len += (size_t)snprintf(out + len, cap - len, "\r\n");
    assert_true(len < cap);
    return len;
}

static void test_request_header_count_limit(void **state)
{
    static char in[8192];
    struct h1_header hdrs[H1_MAX_HEADERS];
    struct h1_request req;
    const char *why = NULL;
    size_t len;

    /* Host + 99 = 100 fields: accepted */
    len = build_request(in, sizeof(in), H1_MAX_HEADERS - 1);
    assert_int_equal(h1_parse_request(guard_tail(*state, in, len), len, 0, &req, hdrs,
                                      H1_MAX_HEADERS, &why),
                     len);
    assert_int_equal(req.num_headers, H1_MAX_HEADERS);
    /* 101 fields: too many, and already without the final CRLF */
    len = build_request(in, sizeof(in), H1_MAX_HEADERS);
    assert_int_equal(h1_parse_request(guard_tail(*state, in, len), len, 0, &req, hdrs,
                                      H1_MAX_HEADERS, &why),
                     -EMSGSIZE);
    assert_int_equal(req.err, H1_ERR_TOO_MANY_HEADERS);
    assert_string_equal(why, "too many headers");
    assert_int_equal(h1_err_status(req.err), 431);
    assert_int_equal(h1_parse_request(guard_tail(*state, in, len - 2), len - 2, 0, &req, hdrs,
                                      H1_MAX_HEADERS, &why),
                     -EMSGSIZE);
    /* a smaller caller array is a smaller limit */
    len = build_request(in, sizeof(in), 2);
    assert_int_equal(h1_parse_request(guard_tail(*state, in, len), len, 0, &req, hdrs, 2, &why),
                     -EMSGSIZE);
    assert_int_equal(h1_parse_request(guard_tail(*state, in, len), len, 0, &req, hdrs, 3, &why),
                     len);
}

static void test_request_head_size_limit(void **state)
{
    static char in[128 * 1024];
    struct h1_header hdrs[H1_MAX_HEADERS];
    struct h1_request req;
    const char *why = NULL;
    size_t len = build_request(in, sizeof(in), 3);

    /* exactly at the limit: accepted; one byte under: 431 */
    assert_int_equal(h1_parse_request(guard_tail(*state, in, len), len, len, &req, hdrs,
                                      H1_MAX_HEADERS, &why),
                     len);
    assert_int_equal(h1_parse_request(guard_tail(*state, in, len), len, len - 1, &req, hdrs,
                                      H1_MAX_HEADERS, &why),
                     -EMSGSIZE);
    assert_int_equal(req.err, H1_ERR_TOO_LARGE);
    assert_int_equal(h1_err_status(req.err), 431);

    /* a 100 KiB header line is rejected from the first 64 KiB, before it is complete */
    len = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(in + len, 'x', 100 * 1024);
    len += 100 * 1024;
    assert_int_equal(h1_parse_request(guard_tail(*state, in, len), len, 0, &req, hdrs,
                                      H1_MAX_HEADERS, &why),
                     -EMSGSIZE);
    assert_int_equal(req.err, H1_ERR_TOO_LARGE);
    assert_string_equal(why, "request header too large");
    /* ... and 64 KiB - 1 bytes of it is still just incomplete */
    assert_int_equal(h1_parse_request(guard_tail(*state, in, H1_HEAD_MAX_DEFAULT - 1),
                                      H1_HEAD_MAX_DEFAULT - 1, 0, &req, hdrs, H1_MAX_HEADERS,
                                      &why),
                     -EAGAIN);
    assert_int_equal(h1_parse_request(guard_tail(*state, in, H1_HEAD_MAX_DEFAULT),
                                      H1_HEAD_MAX_DEFAULT, 0, &req, hdrs, H1_MAX_HEADERS, &why),
                     -EMSGSIZE);
}

static void test_request_line_limit(void **state)
{
    static char in[32 * 1024];
    struct h1_header hdrs[H1_MAX_HEADERS];
    struct h1_request req;
    const char *why = NULL;
    /* request line "GET /aaa... HTTP/1.1" of exactly H1_REQUEST_LINE_MAX bytes */
    size_t fixed = strlen("GET / HTTP/1.1"), len;

    len = 0;
    memcpy(in, "GET /", 5);
    memset(in + 5, 'a', H1_REQUEST_LINE_MAX - fixed);
    len = 5 + H1_REQUEST_LINE_MAX - fixed;
    len += (size_t)snprintf(in + len, sizeof(in) - len, " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(h1_parse_request(guard_tail(*state, in, len), len, 0, &req, hdrs,
                                      H1_MAX_HEADERS, &why),
                     len);
    assert_int_equal(req.target_len, H1_REQUEST_LINE_MAX - fixed + 1);

    /* one byte longer: 414 */
    memcpy(in, "GET /", 5);
    memset(in + 5, 'a', H1_REQUEST_LINE_MAX - fixed + 1);
    len = 5 + H1_REQUEST_LINE_MAX - fixed + 1;
    len += (size_t)snprintf(in + len, sizeof(in) - len, " HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(h1_parse_request(guard_tail(*state, in, len), len, 0, &req, hdrs,
                                      H1_MAX_HEADERS, &why),
                     -EMSGSIZE);
    assert_int_equal(req.err, H1_ERR_URI_TOO_LONG);
    assert_int_equal(h1_err_status(req.err), 414);

    /* an unfinished 20 KiB target is 414 before the line ends */
    memcpy(in, "GET /", 5);
    memset(in + 5, 'a', 20 * 1024);
    len = 5 + 20 * 1024;
    assert_int_equal(h1_parse_request(guard_tail(*state, in, len), len, 0, &req, hdrs,
                                      H1_MAX_HEADERS, &why),
                     -EMSGSIZE);
    assert_int_equal(req.err, H1_ERR_URI_TOO_LONG);
    assert_string_equal(why, "request line too long");
    /* a long method is the same */
    memset(in, 'G', 9000);
    assert_int_equal(h1_parse_request(guard_tail(*state, in, 9000), 9000, 0, &req, hdrs,
                                      H1_MAX_HEADERS, &why),
                     -EMSGSIZE);
    assert_int_equal(req.err, H1_ERR_URI_TOO_LONG);
}

static const char *const valid_requests[] = {
    "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
    "\r\nPOST /upload?x=1 HTTP/1.1\r\nHost: a.test:8080\r\nContent-Length: 12\r\n"
    "Expect: 100-continue\r\nX-Empty:\r\n\r\n",
    "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Connection: keep-alive\r\n\r\n",
    "CONNECT 127.0.0.1:18444 HTTP/1.0\n\n",
    "\nGET /lf HTTP/1.1\nHost: a.test\r\nX-Mixed: 1\nX-Empty:\n\n",
    "PUT http://a.test/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\nHost: a\r\n\r\n",
};

static void test_request_every_prefix(void **state)
{
    struct h1_header hdrs[H1_MAX_HEADERS];
    struct h1_request req;

    for (size_t i = 0; i < sizeof(valid_requests) / sizeof(valid_requests[0]); i++) {
        const char *in = valid_requests[i];
        size_t len = strlen(in);
        const char *why = NULL;
        ssize_t full = h1_parse_request(guard_tail(*state, in, len), len, 0, &req, hdrs,
                                        H1_MAX_HEADERS, &why);

        /* the last one is invalid (TE in HTTP/1.0) but every prefix is still incomplete */
        if (i + 1 < sizeof(valid_requests) / sizeof(valid_requests[0]))
            assert_int_equal(full, len);
        else
            assert_int_equal(full, -EPROTO);
        for (size_t n = 0; n < len; n++) {
            ssize_t rc = h1_parse_request(guard_tail(*state, in, n), n, 0, &req, hdrs,
                                          H1_MAX_HEADERS, &why);

            if (rc != -EAGAIN)
                fail_msg("request %zu prefix %zu: %zd", i, n, rc);
        }
    }
}

/* Every prefix of an invalid head either needs more or fails; none succeeds, none reads
 * past the end (the guard page would fault). */
static void test_request_invalid_prefixes(void **state)
{
    struct h1_header hdrs[H1_MAX_HEADERS];
    struct h1_request req;

    for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
        const struct req_case *c = &req_cases[i];

        for (size_t n = 0; n < c->in_len; n++) {
            const char *why = NULL;
            ssize_t rc = h1_parse_request(guard_tail(*state, c->in, n), n, 0, &req, hdrs,
                                          H1_MAX_HEADERS, &why);

            if (c->rc == 0 && n >= c->in_len - c->rest)
                continue;
            if (rc != -EAGAIN && rc != -EPROTO)
                fail_msg("%s: prefix %zu returned %zd", c->note, n, rc);
        }
    }
}

/* Values and targets are scanned eight bytes at a time: put each interesting byte at every
 * offset of values and targets of many lengths, so every lane of the word test is exercised. */
static void test_request_byte_at_every_offset(void **state)
{
    static const struct {
        const char *note;
        uint8_t byte;
        bool value_ok, target_ok;
    } bytes[] = {
        {"NUL", 0x00, false, false},      {"SOH", 0x01, false, false},
        {"HTAB", 0x09, true, false},      {"VT", 0x0b, false, false},
        {"US", 0x1f, false, false},       {"SP", 0x20, true, false},
        {"'!'", 0x21, true, true},        {"'~'", 0x7e, true, true},
        {"DEL", 0x7f, false, false},      {"0x80", 0x80, true, false},
        {"0xff", 0xff, true, false},
    };
    struct h1_header hdrs[H1_MAX_HEADERS];
    struct h1_request req;
    char in[256];

    for (size_t b = 0; b < sizeof(bytes) / sizeof(bytes[0]); b++) {
        print_message("case: %s\n", bytes[b].note);
        for (size_t vlen = 1; vlen <= 40; vlen++) {
            for (size_t at = 0; at < vlen; at++) {
                const char *why = NULL;
                size_t len, start;
                ssize_t rc;
                bool ok;

                /* in a header value; a leading or trailing SP/HTAB is OWS, so guard the ends */
                len = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
                start = len;
                memset(in + len, 'v', vlen);
                in[start + at] = (char)bytes[b].byte;
                len += vlen;
                len += (size_t)snprintf(in + len, sizeof(in) - len, "z\r\n\r\n");
                rc = h1_parse_request(guard_tail(*state, in, len), len, 0, &req, hdrs,
                                      H1_MAX_HEADERS, &why);
                ok = bytes[b].value_ok;
                if (ok != (rc == (ssize_t)len))
                    fail_msg("value byte 0x%02x at %zu of %zu: %zd", bytes[b].byte, at, vlen, rc);
                if (ok) /* a SP/HTAB in front is leading OWS and not part of the value */
                    assert_int_equal(req.headers[1].value_len,
                                     vlen + 1 - (at == 0 && (bytes[b].byte == ' ' ||
                                                             bytes[b].byte == '\t')));

                /* in the request-target */
                len = (size_t)snprintf(in, sizeof(in), "GET /");
                start = len;
                memset(in + len, 't', vlen);
                in[start + at] = (char)bytes[b].byte;
                len += vlen;
                len += (size_t)snprintf(in + len, sizeof(in) - len, " HTTP/1.1\r\nHost: a\r\n\r\n");
                rc = h1_parse_request(guard_tail(*state, in, len), len, 0, &req, hdrs,
                                      H1_MAX_HEADERS, &why);
                ok = bytes[b].target_ok;
                if (ok != (rc == (ssize_t)len))
                    fail_msg("target byte 0x%02x at %zu of %zu: %zd", bytes[b].byte, at, vlen, rc);
                if (ok)
                    assert_int_equal(req.target_len, vlen + 1);
                else
                    assert_int_equal(rc, -EPROTO);
            }
        }
    }
}

/* ---- response heads ------------------------------------------------------------------ */

struct resp_case {
    const char *note;
    const char *method; /* of the request answered */
    const char *in;
    size_t in_len;
    ssize_t rc; /* 0: success consuming everything */
    int status;
    const char *reason;
    int64_t cl;
    unsigned flags;
    enum h1_body body;
};

static const struct resp_case resp_cases[] = {
    {"200 with Content-Length", "GET", IN("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), 0,
     200, "OK", 5, F_KEEP_ALIVE, H1_BODY_LENGTH},
    {"204 has no body", "GET", IN("HTTP/1.1 204 No Content\r\n\r\n"), 0, 204, "No Content", -1,
     F_KEEP_ALIVE, H1_BODY_NONE},
    {"304 with Content-Length has no body", "GET",
     IN("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"), 0, 304, "Not Modified",
     100, F_KEEP_ALIVE, H1_BODY_NONE},
    {"HEAD response with Content-Length has no body", "HEAD",
     IN("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), 0, 200, "OK", 100, F_KEEP_ALIVE,
     H1_BODY_NONE},
    {"HEAD response with chunked has no body", "HEAD",
     IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 0, 200, "OK", -1,
     F_KEEP_ALIVE | F_CHUNKED | F_HAS_TE, H1_BODY_NONE},
    {"no framing is close-delimited", "GET", IN("HTTP/1.1 200 OK\r\n\r\n"), 0, 200, "OK", -1,
     F_KEEP_ALIVE, H1_BODY_CLOSE},
    {"Content-Length: 0", "GET", IN("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 0, 200,
     "OK", 0, F_KEEP_ALIVE, H1_BODY_NONE},
    {"chunked", "POST", IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 0, 200,
     "OK", -1, F_KEEP_ALIVE | F_CHUNKED | F_HAS_TE, H1_BODY_CHUNKED},
    {"gzip, chunked is relayed chunked", "GET",
     IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 0, 200, "OK", -1,
     F_KEEP_ALIVE | F_CHUNKED | F_HAS_TE, H1_BODY_CHUNKED},
    {"TE not ending in chunked is close-delimited", "GET",
     IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), 0, 200, "OK", -1, F_HAS_TE,
     H1_BODY_CLOSE},
    {"bare LF status line", "GET", IN("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"), 0, 200,
     "OK", 0, F_KEEP_ALIVE, H1_BODY_NONE},
    {"LF-only response", "GET", IN("HTTP/1.1 404 Not Found\nContent-Length: 3\nX: y \n\n"), 0,
     404, "Not Found", 3, F_KEEP_ALIVE, H1_BODY_LENGTH},
    {"LF-only response without reason", "GET", IN("HTTP/1.1 204\n\n"), 0, 204, "", -1,
     F_KEEP_ALIVE, H1_BODY_NONE},
    {"HTTP/1.0 response is not persistent", "GET",
     IN("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"), 0, 200, "OK", 1, 0, H1_BODY_LENGTH},
    {"HTTP/1.0 keep-alive response", "GET",
     IN("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n"), 0, 200,
     "OK", 1, F_KEEP_ALIVE, H1_BODY_LENGTH},
    {"Connection: close", "GET",
     IN("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n"), 0, 200, "OK", 1,
     F_CONN_CLOSE, H1_BODY_LENGTH},
    {"101 switches to a tunnel", "GET",
     IN("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
     0, 101, "Switching Protocols", -1, F_KEEP_ALIVE | F_UPGRADE | F_WEBSOCKET, H1_BODY_TUNNEL},
    {"2xx to CONNECT is a tunnel", "CONNECT",
     IN("HTTP/1.1 200 Connection established\r\n\r\n"), 0, 200, "Connection established", -1,
     F_KEEP_ALIVE, H1_BODY_TUNNEL},
    {"407 to CONNECT has a body", "CONNECT",
     IN("HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\n"), 0, 407, "Proxy Auth", 2,
     F_KEEP_ALIVE, H1_BODY_LENGTH},
    {"100 Continue is interim", "PUT", IN("HTTP/1.1 100 Continue\r\n\r\n"), 0, 100, "Continue",
     -1, F_KEEP_ALIVE, H1_BODY_NONE},
    {"no reason phrase, no SP", "GET", IN("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), 0, 200,
     "", 0, F_KEEP_ALIVE, H1_BODY_NONE},
    {"empty reason phrase", "GET", IN("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n"), 0, 404, "",
     0, F_KEEP_ALIVE, H1_BODY_NONE},
    {"reason with obs-text and tab", "GET", IN("HTTP/1.1 200 \xc3\x89tat\tok\r\n\r\n"), 0, 200,
     "\xc3\x89tat\tok", -1, F_KEEP_ALIVE, H1_BODY_CLOSE},
    {"status 999", "GET", IN("HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n"), 0, 999, "Odd", 0,
     F_KEEP_ALIVE, H1_BODY_NONE},

    {"TE with Content-Length", "GET",
     IN("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), -EPROTO},
    {"conflicting Content-Length", "GET",
     IN("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n"), -EPROTO},
    {"invalid Content-Length", "GET", IN("HTTP/1.1 200 OK\r\nContent-Length: 5 5\r\n\r\n"),
     -EPROTO},
    {"chunked twice", "GET",
     IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), -EPROTO},
    {"TE in HTTP/1.0 response", "GET",
     IN("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), -EPROTO},
    {"two-digit status", "GET", IN("HTTP/1.1 20 OK\r\n\r\n"), -EPROTO},
    {"four-digit status", "GET", IN("HTTP/1.1 2000 OK\r\n\r\n"), -EPROTO},
    {"status below 100", "GET", IN("HTTP/1.1 099 Low\r\n\r\n"), -EPROTO},
    {"non-digit status", "GET", IN("HTTP/1.1 2x0 OK\r\n\r\n"), -EPROTO},
    {"no SP before reason", "GET", IN("HTTP/1.1 200OK\r\n\r\n"), -EPROTO},
    {"HTTP/2 status line", "GET", IN("HTTP/2 200\r\n\r\n"), -EPROTO},
    {"HTTP/2.0 version", "GET", IN("HTTP/2.0 200 OK\r\n\r\n"), -EPROTO},
    {"bare CR ends the status line", "GET", IN("HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n"),
     -EPROTO},
    {"CR CR LF in a response field", "GET", IN("HTTP/1.1 200 OK\r\nX: a\r\r\n\r\n"), -EPROTO},
    {"control character in reason", "GET", IN("HTTP/1.1 200 O\x01K\r\n\r\n"), -EPROTO},
    {"obs-fold in response", "GET", IN("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), -EPROTO},
    {"space before colon in response", "GET",
     IN("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n"), -EPROTO},
    {"leading empty line is not skipped in responses", "GET", IN("\r\nHTTP/1.1 200 OK\r\n\r\n"),
     -EPROTO},
    {"incomplete", "GET", IN("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"), -EAGAIN},
};

static void test_response_table(void **state)
{
    for (size_t i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]); i++) {
        const struct resp_case *c = &resp_cases[i];
        struct h1_header hdrs[H1_MAX_HEADERS];
        struct h1_response resp;
        const char *why = NULL;
        ssize_t rc = h1_parse_response(guard_tail(*state, c->in, c->in_len), c->in_len, 0,
                                       &resp, hdrs, H1_MAX_HEADERS, &why);

        print_message("case: %s\n", c->note);
        if (c->rc != 0) {
            assert_int_equal(rc, c->rc);
            if (c->rc != -EAGAIN) {
                assert_non_null(why);
                assert_int_not_equal(resp.err, H1_ERR_NONE);
            }
            continue;
        }
        assert_int_equal(rc, c->in_len);
        assert_int_equal(resp.status, c->status);
        assert_int_equal(resp.reason_len, strlen(c->reason));
        assert_memory_equal(resp.reason, c->reason, resp.reason_len);
        assert_int_equal(resp.framing.content_length, c->cl);
        assert_int_equal(resp.framing.chunked, (c->flags & F_CHUNKED) != 0);
        assert_int_equal(resp.framing.has_te, (c->flags & F_HAS_TE) != 0);
        assert_int_equal(resp.framing.keep_alive, (c->flags & F_KEEP_ALIVE) != 0);
        assert_int_equal(resp.framing.conn_close, (c->flags & F_CONN_CLOSE) != 0);
        assert_int_equal(resp.framing.upgrade, (c->flags & F_UPGRADE) != 0);
        assert_int_equal(resp.framing.websocket, (c->flags & F_WEBSOCKET) != 0);
        assert_int_equal(h1_response_body(c->method, strlen(c->method), &resp), c->body);
        /* every prefix is incomplete */
        for (size_t n = 0; n < c->in_len; n++)
            assert_int_equal(h1_parse_response(guard_tail(*state, c->in, n), n, 0, &resp, hdrs,
                                               H1_MAX_HEADERS, &why),
                             -EAGAIN);
    }
}

static void test_response_limits(void **state)
{
    static char in[80 * 1024];
    struct h1_header hdrs[H1_MAX_HEADERS];
    struct h1_response resp;
    const char *why = NULL;
    size_t len = (size_t)snprintf(in, sizeof(in), "HTTP/1.1 200 OK\r\n");

    for (size_t i = 0; i <= H1_MAX_HEADERS; i++)
        len += (size_t)snprintf(in + len, sizeof(in) - len, "X-%zu: v\r\n", i);
    len += (size_t)snprintf(in + len, sizeof(in) - len, "\r\n");
    assert_int_equal(h1_parse_response(guard_tail(*state, in, len), len, 0, &resp, hdrs,
                                       H1_MAX_HEADERS, &why),
                     -EMSGSIZE);
    assert_int_equal(resp.err, H1_ERR_TOO_MANY_HEADERS);

    len = (size_t)snprintf(in, sizeof(in), "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(in + len, 'y', 70 * 1024);
    len += 70 * 1024;
    assert_int_equal(h1_parse_response(guard_tail(*state, in, len), len, 0, &resp, hdrs,
                                       H1_MAX_HEADERS, &why),
                     -EMSGSIZE);
    assert_int_equal(resp.err, H1_ERR_TOO_LARGE);
    assert_string_equal(why, "response header too large");
    /* with a 128 KiB limit the same bytes are only incomplete */
    assert_int_equal(h1_parse_response(guard_tail(*state, in, len), len, 128 * 1024, &resp, hdrs,
                                       H1_MAX_HEADERS, &why),
                     -EAGAIN);
}

/* ---- helpers ------------------------------------------------------------------------- */

static void test_helpers(void **state)
{
    (void)state;
    static const struct {
        const char *note, *list, *token;
        bool has;
    } lists[] = {
        {"single", "close", "close", true},
        {"case-insensitive", "Keep-Alive", "keep-alive", true},
        {"OWS and empty elements", " ,, foo ,\tclose\t", "close", true},
        {"substring is not a token", "closed", "close", false},
        {"prefix is not a token", "clo", "close", false},
        {"empty list", "", "close", false},
    };

    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        print_message("case: %s\n", lists[i].note);
        assert_int_equal(h1_token_list_has(lists[i].list, strlen(lists[i].list), lists[i].token),
                         lists[i].has);
    }
    assert_true(h1_header_is_hop_by_hop("Transfer-Encoding", 17));
    assert_true(h1_header_is_hop_by_hop("proxy-connection", 16));
    assert_true(h1_header_is_hop_by_hop("TE", 2));
    assert_false(h1_header_is_hop_by_hop("Content-Length", 14));
    assert_false(h1_header_is_hop_by_hop("Tex", 3));
    assert_int_equal(h1_err_status(H1_ERR_NONE), 0);
    assert_int_equal(h1_err_status(H1_ERR_MALFORMED), 400);
    assert_int_equal(h1_err_status(H1_ERR_URI_TOO_LONG), 414);
    assert_int_equal(h1_err_status(H1_ERR_TOO_LARGE), 431);
    assert_int_equal(h1_err_status(H1_ERR_TOO_MANY_HEADERS), 431);
    assert_int_equal(h1_err_status(H1_ERR_NOT_IMPLEMENTED), 501);
    assert_int_equal(h1_err_status(H1_ERR_VERSION), 505);
    for (int e = 0; e < H1_ERR_COUNT; e++)
        assert_string_not_equal(h1_err_name((enum h1_err)e), "unknown");
    assert_string_equal(h1_body_name(H1_BODY_CHUNKED), "chunked");
    assert_string_equal(h1_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(h1_status_reason(502), "Bad Gateway");
    assert_string_equal(h1_status_reason(299), "Unknown");
    /* every status the parser asks for has its phrase */
    for (int e = 1; e < H1_ERR_COUNT; e++)
        assert_string_not_equal(h1_status_reason(h1_err_status((enum h1_err)e)), "Unknown");
}

/* ---- chunked decoder ----------------------------------------------------------------- */

struct chunk_case {
    const char *note;
    const char *in;
    size_t in_len;
    ssize_t rc;      /* >= 0: bytes consumed; else the error */
    bool done;
    const char *payload; /* concatenated chunk-data on success */
    size_t max_trailer;
};

static const struct chunk_case chunk_cases[] = {
    {"one chunk", IN("5\r\nhello\r\n0\r\n\r\n"), 15, true, "hello"},
    {"two chunks", IN("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), 26, true, "hello world"},
    {"empty body", IN("0\r\n\r\n"), 5, true, ""},
    {"next message is not consumed", IN("1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), 11, true, "x"},
    {"upper-case hex", IN("A\r\n0123456789\r\n0\r\n\r\n"), 20, true, "0123456789"},
    {"lower-case hex", IN("a\r\n0123456789\r\n0\r\n\r\n"), 20, true, "0123456789"},
    {"leading zeros", IN("0005\r\nhello\r\n000\r\n\r\n"), 20, true, "hello"},
    {"chunk extension", IN("5;name=value\r\nhello\r\n0;last\r\n\r\n"), 31, true, "hello"},
    {"quoted extension and BWS", IN("5 ;a=\"b c\"\r\nhello\r\n0\r\n\r\n"), 24, true, "hello"},
    {"trailer fields", IN("5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-Other:\r\n\r\n"), 37, true,
     "hello"},
    {"CRLF inside chunk data is data", IN("4\r\n\r\n\r\n\r\n0\r\n\r\n"), 14, true, "\r\n\r\n"},
    {"incomplete data", IN("ffff\r\nab"), 8, false, "ab"},
    {"incomplete size line", IN("5;ext"), 5, false, ""},
    {"largest chunk size", IN("7fffffffffffffff\r\n"), 18, false, ""},
    {"incomplete trailer", IN("0\r\nX: y\r\n"), 9, false, ""},
    {"incomplete final CRLF", IN("0\r\n\r"), 4, false, ""},

    {"non-hex size", IN("x\r\n"), -EPROTO},
    {"empty size", IN("\r\nhello\r\n"), -EPROTO},
    {"negative size", IN("-1\r\n"), -EPROTO},
    {"0x prefix", IN("0x5\r\nhello\r\n"), -EPROTO},
    {"whitespace before size", IN(" 5\r\nhello\r\n"), -EPROTO},
    {"whitespace after size without extension", IN("5 \r\nhello\r\n0\r\n\r\n"), -EPROTO},
    {"size of 2^63", IN("8000000000000000\r\n"), -EPROTO},
    {"size of 2^64", IN("10000000000000000\r\n"), -EPROTO},
    {"many leading zeros then too large", IN("0000000000000000000010000000000000000\r\n"),
     -EPROTO},
    {"bare LF after size", IN("5\nhello\r\n0\r\n\r\n"), -EPROTO},
    {"bare CR after size", IN("5\rhello\r\n0\r\n\r\n"), -EPROTO},
    {"bare LF after data", IN("5\r\nhello\n0\r\n\r\n"), -EPROTO},
    {"data longer than the size", IN("5\r\nhelloX\r\n0\r\n\r\n"), -EPROTO},
    {"bare CR after data", IN("5\r\nhello\rX"), -EPROTO},
    {"bare LF ends the body", IN("0\r\n\n"), -EPROTO},
    {"bare CR ends the body", IN("0\r\n\rX"), -EPROTO},
    {"control character in extension", IN("5;a\x01\r\nhello\r\n0\r\n\r\n"), -EPROTO},
    {"NUL in extension", IN("5;a\0\r\nhello\r\n0\r\n\r\n"), -EPROTO},
    {"bare LF in extension", IN("5;a\nhello\r\n"), -EPROTO},
    {"obs-fold in trailer", IN("0\r\nX: a\r\n b\r\n\r\n"), -EPROTO},
    {"trailer without colon", IN("0\r\nNoColon\r\n\r\n"), -EPROTO},
    {"space before trailer colon", IN("0\r\nX : a\r\n\r\n"), -EPROTO},
    {"control character in trailer", IN("0\r\nX: \x02\r\n\r\n"), -EPROTO},
    {"bare LF in trailer", IN("0\r\nX: a\n\r\n"), -EPROTO},
    {"trailer section over its limit", IN("0\r\nX-Long: 0123456789\r\n\r\n"), -EMSGSIZE, false,
     NULL, 16},
    {"trailer section exactly at its limit", IN("0\r\nX: 0123456\r\n\r\n"), 17, true, "", 14},
};

/* chunk_run feeds `c` to a fresh decoder in pieces of `step` bytes (0: all at once, via
 * h1_chunk_decode_all) and checks the result; `out` collects the chunk-data. */
static void chunk_run(struct guard *g, const struct chunk_case *c, size_t step)
{
    struct h1_chunk_decoder d;
    const uint8_t *in = guard_tail(g, c->in, c->in_len);
    char data[256];
    size_t data_len = 0, p = 0;
    const char *why = NULL;
    ssize_t err = 0;

    h1_chunk_decoder_init(&d, c->max_trailer);
    if (step == 0) {
        uint64_t payload = 0;
        ssize_t rc = h1_chunk_decode_all(&d, in, c->in_len, &payload, &why);

        if (rc < 0) {
            err = rc;
        } else {
            p = (size_t)rc;
            assert_int_equal(payload, h1_chunk_decoder_payload(&d));
        }
    }
    while (step != 0 && p < c->in_len && !h1_chunk_decoder_is_done(&d)) {
        size_t n = c->in_len - p < step ? c->in_len - p : step;
        size_t off, len;
        /* each piece ends at the guard page too */
        const uint8_t *piece = guard_tail(g, c->in + p, n);
        ssize_t rc = h1_chunk_decode(&d, piece, n, &off, &len, &why);

        if (rc < 0) {
            err = rc;
            break;
        }
        assert_true((size_t)rc <= n);
        assert_true(off + len <= (size_t)rc);
        assert_true(data_len + len <= sizeof(data));
        memcpy(data + data_len, c->in + p + off, len);
        data_len += len;
        p += (size_t)rc;
    }
    if (c->rc < 0) {
        assert_int_equal(err, c->rc);
        assert_non_null(why);
        /* the error is sticky */
        {
            size_t off, len;
            const char *why2 = NULL;

            assert_int_equal(h1_chunk_decode(&d, in, c->in_len, &off, &len, &why2), c->rc);
            assert_ptr_equal(why2, why);
        }
        return;
    }
    assert_int_equal(err, 0);
    assert_int_equal(p, c->rc);
    assert_int_equal(h1_chunk_decoder_is_done(&d), c->done);
    assert_int_equal(h1_chunk_decoder_payload(&d), strlen(c->payload));
    if (step != 0) {
        assert_int_equal(data_len, strlen(c->payload));
        assert_memory_equal(data, c->payload, data_len);
    }
}

static void test_chunk_table(void **state)
{
    for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
        print_message("case: %s\n", chunk_cases[i].note);
        chunk_run(*state, &chunk_cases[i], 0); /* one go */
        chunk_run(*state, &chunk_cases[i], 1); /* byte by byte */
        chunk_run(*state, &chunk_cases[i], 3);
        chunk_run(*state, &chunk_cases[i], 1000); /* one piece, one data run per call */
    }
}

static void test_chunk_random_splits(void **state)
{
    /* a body with many chunks, extensions and trailers, then the next request */
    static char body[16384];
    size_t len = 0, expect_payload = 0;
    unsigned seed = 12345;

    for (size_t i = 1; i <= 40; i++) {
        len += (size_t)snprintf(body + len, sizeof(body) - len, "%zx%s\r\n", i * 7,
                                i % 3 == 0 ? ";e=1" : "");
        memset(body + len, 'a' + (int)(i % 26), i * 7);
        len += i * 7;
        expect_payload += i * 7;
        body[len++] = '\r';
        body[len++] = '\n';
    }
    len += (size_t)snprintf(body + len, sizeof(body) - len, "0\r\nT: 1\r\n\r\n");
    const size_t body_len = len;
    len += (size_t)snprintf(body + len, sizeof(body) - len, "GET / HTTP/1.1\r\n");

    for (int round = 0; round < 200; round++) {
        struct h1_chunk_decoder d;
        size_t p = 0;
        uint64_t payload = 0;
        const char *why = NULL;

        h1_chunk_decoder_init(&d, 0);
        while (p < len && !h1_chunk_decoder_is_done(&d)) {
            size_t n;
            ssize_t rc;

            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % 97;
            if (n > len - p)
                n = len - p;
            rc = h1_chunk_decode_all(&d, guard_tail(*state, body + p, n), n, &payload, &why);
            assert_true(rc >= 0);
            p += (size_t)rc;
        }
        assert_true(h1_chunk_decoder_is_done(&d));
        assert_int_equal(p, body_len);
        assert_int_equal(payload, expect_payload);
    }
}

static void test_chunk_long_extension(void **state)
{
    static char in[H1_CHUNK_LINE_MAX + 64];
    struct h1_chunk_decoder d;
    const char *why = NULL;
    uint64_t payload = 0;
    size_t len;

    /* a size line of exactly H1_CHUNK_LINE_MAX bytes is accepted */
    in[0] = '5';
    in[1] = ';';
    memset(in + 2, 'e', H1_CHUNK_LINE_MAX - 2);
    len = H1_CHUNK_LINE_MAX;
    memcpy(in + len, "\r\nhello\r\n0\r\n\r\n", 14);
    len += 14;
    h1_chunk_decoder_init(&d, 0);
    assert_int_equal(h1_chunk_decode_all(&d, guard_tail(*state, in, len), len, &payload, &why),
                     len);
    assert_true(h1_chunk_decoder_is_done(&d));
    /* one more byte of extension is refused, before the line ends */
    memset(in + 2, 'e', H1_CHUNK_LINE_MAX - 1);
    len = H1_CHUNK_LINE_MAX + 1;
    h1_chunk_decoder_init(&d, 0);
    assert_int_equal(h1_chunk_decode_all(&d, guard_tail(*state, in, len), len, &payload, &why),
                     -EPROTO);
    assert_string_equal(why, "chunk size line too long");
}

/* bare_lf tells a relay when the head must be rebuilt with CRLF before it is forwarded;
 * skipped empty lines before a request line do not count (they are not forwarded). */
static void test_bare_lf_flag(void **state)
{
    static const struct {
        const char *note;
        const char *in;
        bool request, bare_lf;
    } cases[] = {
        {"CRLF request", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", true, false},
        {"LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", true, true},
        {"LF final line", "GET / HTTP/1.1\r\nHost: a\r\n\n", true, true},
        {"LF empty line before a CRLF head", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", true, false},
        {"CRLF response", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, false},
        {"LF field line in a response", "HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", false,
         true},
    };
    struct h1_header hdrs[H1_MAX_HEADERS];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].in);
        const uint8_t *in = guard_tail(*state, cases[i].in, len);
        const char *why = NULL;
        bool got;

        if (cases[i].request) {
            struct h1_request req;

            assert_int_equal(h1_parse_request(in, len, 0, &req, hdrs, H1_MAX_HEADERS, &why),
                             (ssize_t)len);
            got = req.bare_lf;
        } else {
            struct h1_response resp;

            assert_int_equal(h1_parse_response(in, len, 0, &resp, hdrs, H1_MAX_HEADERS, &why),
                             (ssize_t)len);
            got = resp.bare_lf;
        }
        if (got != cases[i].bare_lf)
            fail_msg("%s: bare_lf %d", cases[i].note, got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_table),
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_request_header_count_limit),
        cmocka_unit_test(test_request_head_size_limit),
        cmocka_unit_test(test_request_line_limit),
        cmocka_unit_test(test_request_every_prefix),
        cmocka_unit_test(test_bare_lf_flag),
        cmocka_unit_test(test_request_invalid_prefixes),
        cmocka_unit_test(test_request_byte_at_every_offset),
        cmocka_unit_test(test_response_table),
        cmocka_unit_test(test_response_limits),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_chunk_table),
        cmocka_unit_test(test_chunk_random_splits),
        cmocka_unit_test(test_chunk_long_extension),
    };

    return cmocka_run_group_tests(tests, guard_setup, guard_teardown);
}
