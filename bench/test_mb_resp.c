/* test_mb_resp.c - mitmd-bench's response reader: framing by Content-Length, chunked and
 * close; interim responses; CONNECT answers; keep-alive decisions; malformed input. Every
 * response is also fed split at every byte position, as a socket may deliver it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bench/mb_resp.h"

struct resp_case {
    const char *note;
    const char *in;
    bool connect;
    int rc; /* 0: a complete response; -EAGAIN: incomplete; else the error */
    int status;
    bool keep_alive;
    uint64_t body;   /* payload bytes */
    size_t trailing; /* bytes after the response that must stay unconsumed */
    bool needs_eof;  /* close-delimited: complete only after mb_resp_eof */
};

static const struct resp_case cases[] = {
    {.note = "content-length body",
     .in = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
     .status = 200,
     .keep_alive = true,
     .body = 5},
    {.note = "empty body",
     .in = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
     .status = 200,
     .keep_alive = true},
    {.note = "next response stays unconsumed",
     .in = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
     .status = 200,
     .keep_alive = true,
     .body = 2,
     .trailing = 17},
    {.note = "chunked with extension and trailer",
     .in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5;x=y\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n",
     .status = 200,
     .keep_alive = true,
     .body = 31},
    {.note = "connection close",
     .in = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
     .status = 200,
     .body = 1},
    {.note = "HTTP/1.0 without keep-alive",
     .in = "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
     .status = 200,
     .body = 1},
    {.note = "close-delimited body",
     .in = "HTTP/1.1 200 OK\r\n\r\nuntil close",
     .status = 200,
     .body = 11,
     .needs_eof = true},
    {.note = "404 with body is complete",
     .in = "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnah",
     .status = 404,
     .keep_alive = true,
     .body = 3},
    {.note = "204 has no body",
     .in = "HTTP/1.1 204 No Content\r\n\r\n",
     .status = 204,
     .keep_alive = true},
    {.note = "304 ignores Content-Length",
     .in = "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
     .status = 304,
     .keep_alive = true},
    {.note = "100 continue is skipped",
     .in = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     .status = 200,
     .keep_alive = true,
     .body = 2},
    {.note = "CONNECT established",
     .in = "HTTP/1.1 200 Connection established\r\n\r\n",
     .connect = true,
     .status = 200,
     .keep_alive = true},
    {.note = "CONNECT refused with body: done after head",
     .in = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 4\r\n\r\nnope",
     .connect = true,
     .status = 502,
     .keep_alive = true,
     .trailing = 4},
    {.note = "incomplete head", .in = "HTTP/1.1 200 OK\r\nContent-Len", .rc = -EAGAIN},
    {.note = "incomplete body",
     .in = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
     .rc = -EAGAIN},
    {.note = "chunked without last chunk",
     .in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
     .rc = -EAGAIN},
    {.note = "not HTTP", .in = "SSH-2.0-OpenSSH_9.2\r\n\r\n", .rc = -EPROTO},
    {.note = "bad content-length",
     .in = "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
     .rc = -EPROTO},
    {.note = "conflicting content-length",
     .in = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
     .rc = -EPROTO},
    {.note = "bad chunk size",
     .in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
     .rc = -EPROTO},
    {.note = "missing CRLF after chunk",
     .in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab",
     .rc = -EPROTO},
};

/* feed_split feeds `in` as two pieces cut at `cut`, the way a reader with a buffer does:
 * unconsumed bytes are presented again with the next piece. */
static int feed_split(const struct resp_case *tc, size_t cut, struct mb_resp *r, size_t *unconsumed)
{
    const uint8_t *in = (const uint8_t *)tc->in;
    size_t len = strlen(tc->in), have = cut, off = 0;
    const char *why = NULL;
    ssize_t n;

    mb_resp_init(r, tc->connect);
    for (int round = 0; round < 2; round++) {
        n = mb_resp_feed(r, in + off, have - off, &why);
        if (n < 0) {
            assert_non_null(why);
            return (int)n;
        }
        assert_true((size_t)n <= have - off);
        off += (size_t)n;
        if (mb_resp_is_done(r))
            break;
        have = len;
    }
    *unconsumed = len - off;
    if (!mb_resp_is_done(r) && tc->needs_eof) {
        assert_int_equal(mb_resp_eof(r, &why), 0);
    }
    return mb_resp_is_done(r) ? 0 : -EAGAIN;
}

static void test_mb_resp_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct resp_case *tc = &cases[i];
        size_t len = strlen(tc->in);

        for (size_t cut = 0; cut <= len; cut++) {
            struct mb_resp r;
            size_t unconsumed = 0;
            int rc = feed_split(tc, cut, &r, &unconsumed);

            if (rc != tc->rc)
                fail_msg("%s (cut at %zu): rc %d, want %d", tc->note, cut, rc, tc->rc);
            if (rc != 0)
                continue;
            if (r.status != tc->status || r.keep_alive != tc->keep_alive ||
                r.body_bytes != tc->body || unconsumed != tc->trailing)
                fail_msg("%s (cut at %zu): status %d keep %d body %llu left %zu", tc->note, cut,
                         r.status, r.keep_alive, (unsigned long long)r.body_bytes, unconsumed);
        }
    }
}

static void test_mb_resp_eof_cut_short(void **state)
{
    struct mb_resp r;
    const char *why = NULL;
    static const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";

    (void)state;
    mb_resp_init(&r, false);
    assert_int_equal(mb_resp_eof(&r, &why), -EPIPE); /* nothing at all */
    assert_non_null(why);
    assert_int_equal(mb_resp_feed(&r, (const uint8_t *)in, sizeof(in) - 1, &why),
                     (ssize_t)sizeof(in) - 1);
    assert_false(mb_resp_is_done(&r));
    why = NULL;
    assert_int_equal(mb_resp_eof(&r, &why), -EPIPE); /* inside the body */
    assert_non_null(why);
}

static void test_mb_resp_head_too_large(void **state)
{
    static uint8_t big[MB_RESP_HEAD_MAX + 64];
    struct mb_resp r;
    const char *why = NULL;
    size_t n = 0;

    (void)state;
    n += (size_t)snprintf((char *)big, sizeof(big), "HTTP/1.1 200 OK\r\n");
    while (n + 16 < sizeof(big))
        n += (size_t)snprintf((char *)big + n, sizeof(big) - n, "X-Pad: 12345678\r\n");
    mb_resp_init(&r, false);
    assert_int_equal(mb_resp_feed(&r, big, n, &why), -EMSGSIZE);
    assert_non_null(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mb_resp_cases),
        cmocka_unit_test(test_mb_resp_eof_cut_short),
        cmocka_unit_test(test_mb_resp_head_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
