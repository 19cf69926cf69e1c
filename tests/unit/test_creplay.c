/* test_creplay.c - cmocka tests of master/creplay_load's record-to-request step (client
 * replay): a -w record becomes the HTTP/1.1 request mitmd sends again - absolute form, the
 * recorded fields without those of the connection and the framing, Host from the URL when
 * HTTP/2 recorded only :authority, the CONNECT target as the request's authority, the body
 * byte for byte with its length, "connection: close" - and mitmdump 8.1.1's own flows (the
 * committed fixture) convert to the requests mitmdump -C sends; what cannot be replayed is
 * refused with a reason. */
#include "master/creplay_load.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "master/mitmflow.h"
#include "shared/har.h"

/* request returns the request made of `rec` (NUL-terminated, free()), or NULL with *why. */
static char *request(const char *rec, int *err, const char **why, enum creplay_skip *skip)
{
    struct har_buf b = {0};

    *why = NULL;
    *err = creplay_load_request(rec, strlen(rec), &b, why, skip);
    if (*err != 0) {
        free(b.p);
        return NULL;
    }
    har_buf_put(&b, "", 1);
    assert_false(b.oom);
    return b.p;
}

struct ok_case {
    const char *note, *rec, *want;
};

static const struct ok_case ok_cases[] = {
    {"a GET: hop-by-hop and framing fields dropped, connection: close added",
     "{\"request\":{\"method\":\"GET\",\"url\":\"https://a.test/p?q=1\",\"httpVersion\":\"HTTP/1.1\","
     "\"headers\":[{\"name\":\"Host\",\"value\":\"a.test\"},{\"name\":\"Connection\",\"value\":"
     "\"keep-alive\"},{\"name\":\"Accept\",\"value\":\"*/*\"},{\"name\":\"Content-Length\","
     "\"value\":\"0\"},{\"name\":\"Proxy-Connection\",\"value\":\"x\"}],\"bodySize\":0}}",
     "GET https://a.test/p?q=1 HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\n"
     "connection: close\r\n\r\n"},
    {"HTTP/2: pseudo-fields dropped, Host from the URL's authority",
     "{\"request\":{\"method\":\"GET\",\"url\":\"https://b.test:8443/x\",\"httpVersion\":\"HTTP/2.0\","
     "\"headers\":[{\"name\":\":authority\",\"value\":\"b.test:8443\"},{\"name\":\"user-agent\","
     "\"value\":\"curl\"}],\"bodySize\":0}}",
     "GET https://b.test:8443/x HTTP/1.1\r\nuser-agent: curl\r\nhost: b.test:8443\r\n"
     "connection: close\r\n\r\n"},
    {"a POST: its body (base64 in the record) with its length",
     "{\"request\":{\"method\":\"POST\",\"url\":\"http://c.test/up\",\"headers\":[{\"name\":\"Host\","
     "\"value\":\"c.test\"},{\"name\":\"Transfer-Encoding\",\"value\":\"chunked\"}],\"bodySize\":5},"
     "\"request_body\":{\"size\":5,\"truncated\":false,\"base64\":\"aGVsbG8=\"}}",
     "POST http://c.test/up HTTP/1.1\r\nHost: c.test\r\ncontent-length: 5\r\n"
     "connection: close\r\n\r\nhello"},
    {"an empty POST says content-length: 0",
     "{\"request\":{\"method\":\"POST\",\"url\":\"http://c.test/\",\"headers\":[],\"bodySize\":0}}",
     "POST http://c.test/ HTTP/1.1\r\nhost: c.test\r\ncontent-length: 0\r\n"
     "connection: close\r\n\r\n"},
    {"a CONNECT target other than the Host field's: the request goes to the target",
     "{\"client\":{\"address\":\"127.0.0.1\",\"port\":1,\"target\":{\"host\":\"127.0.0.1\","
     "\"port\":9443}},\"request\":{\"method\":\"GET\",\"url\":\"https://www.test:9443/1k\","
     "\"headers\":[{\"name\":\"Host\",\"value\":\"www.test:9443\"}],\"bodySize\":0}}",
     "GET https://127.0.0.1:9443/1k HTTP/1.1\r\nHost: www.test:9443\r\n"
     "connection: close\r\n\r\n"},
    {"an IPv6 target is bracketed",
     "{\"client\":{\"target\":{\"host\":\"::1\",\"port\":80}},\"request\":{\"method\":\"GET\","
     "\"url\":\"http://v6.test/\",\"headers\":[],\"bodySize\":0}}",
     "GET http://[::1]:80/ HTTP/1.1\r\nhost: v6.test\r\nconnection: close\r\n\r\n"},
    {"several Cookie fields (HTTP/2) joined with \"; \" where the first stood",
     "{\"request\":{\"method\":\"GET\",\"url\":\"https://e.test/\",\"httpVersion\":\"HTTP/2.0\","
     "\"headers\":[{\"name\":\"cookie\",\"value\":\"a=1\"},{\"name\":\"accept\",\"value\":\"*/*\"},"
     "{\"name\":\"cookie\",\"value\":\"b=2\"}],\"bodySize\":0}}",
     "GET https://e.test/ HTTP/1.1\r\ncookie: a=1; b=2\r\naccept: */*\r\nhost: e.test\r\n"
     "connection: close\r\n\r\n"},
    {"a target that is not a name is not used",
     "{\"client\":{\"target\":{\"host\":\"a b/c\",\"port\":80}},\"request\":{\"method\":\"GET\","
     "\"url\":\"http://d.test/\",\"headers\":[],\"bodySize\":0}}",
     "GET http://d.test/ HTTP/1.1\r\nhost: d.test\r\nconnection: close\r\n\r\n"},
};

static void test_requests(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const char *why;
        enum creplay_skip skip;
        int err;
        char *got = request(ok_cases[i].rec, &err, &why, &skip);

        if (got == NULL)
            fail_msg("%s: refused (%d): %s", ok_cases[i].note, err, why);
        if (strcmp(got, ok_cases[i].want) != 0)
            fail_msg("%s:\ngot  %s\nwant %s", ok_cases[i].note, got, ok_cases[i].want);
        free(got);
    }
}

struct bad_case {
    const char *note, *rec, *why_has;
    enum creplay_skip skip;
};

static const struct bad_case bad_cases[] = {
    {"not JSON", "{\"request\":", "not a flow record", CREPLAY_SKIP_BAD},
    {"no request", "{\"response\":{}}", "not a flow record", CREPLAY_SKIP_BAD},
    {"a CONNECT", "{\"request\":{\"method\":\"CONNECT\",\"url\":\"https://a.test:443\"}}", "CONNECT",
     CREPLAY_SKIP_BAD},
    {"a method with a space",
     "{\"request\":{\"method\":\"GET X\",\"url\":\"http://a.test/\"}}", "method", CREPLAY_SKIP_BAD},
    {"a WebSocket URL", "{\"request\":{\"method\":\"GET\",\"url\":\"wss://a.test/ws\"}}", "URL",
     CREPLAY_SKIP_NOT_HTTP},
    {"a URL with a space (a request line cannot carry it)",
     "{\"request\":{\"method\":\"GET\",\"url\":\"http://a.test/a b\"}}", "URL", CREPLAY_SKIP_NOT_HTTP},
    {"a URL with CR LF", "{\"request\":{\"method\":\"GET\",\"url\":\"http://a.test/\\r\\nX: y\"}}",
     "URL", CREPLAY_SKIP_NOT_HTTP},
    {"no authority", "{\"request\":{\"method\":\"GET\",\"url\":\"http:///p\"}}", "URL", CREPLAY_SKIP_NOT_HTTP},
    {"a body that was not recorded",
     "{\"request\":{\"method\":\"POST\",\"url\":\"http://a.test/\",\"bodySize\":10}}",
     "save_bodies", CREPLAY_SKIP_CUT_BODY},
    {"a body cut by save_bodies",
     "{\"request\":{\"method\":\"POST\",\"url\":\"http://a.test/\",\"bodySize\":10},"
     "\"request_body\":{\"size\":10,\"truncated\":true,\"base64\":\"aGVsbG8=\"}}",
     "save_bodies", CREPLAY_SKIP_CUT_BODY},
    {"a truncated record (fields left out when it was written)",
     "{\"request\":{\"method\":\"GET\",\"url\":\"http://a.test/\",\"bodySize\":0},"
     "\"truncated\":true}",
     "truncated", CREPLAY_SKIP_TRUNCATED},
};

static void test_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const char *why;
        enum creplay_skip skip;
        int err;
        char *got = request(bad_cases[i].rec, &err, &why, &skip);

        if (got != NULL)
            fail_msg("%s: accepted as %s", bad_cases[i].note, got);
        if (err != -EINVAL || why == NULL || strstr(why, bad_cases[i].why_has) == NULL ||
            skip != bad_cases[i].skip)
            fail_msg("%s: %d, why '%s', skip %d", bad_cases[i].note, err, why ? why : "(null)",
                     (int)skip);
    }
}

/* mitmdump 8.1.1's recording: the requests mitmdump -C sends (checked side by side: its
 * "[replay]: GET http://127.0.0.1:18681/hello?x=1" lines), the POST with its body. */
static void test_mitmproxy_flows(void **state)
{
    static const char *const want_lines[] = {
        "GET http://127.0.0.1:18681/hello?x=1 HTTP/1.1\r\n",
        "POST http://127.0.0.1:18681/sha HTTP/1.1\r\n",
        "GET http://127.0.0.1:18681/missing HTTP/1.1\r\n",
        "GET http://127.0.0.1:18681/bin HTTP/1.1\r\n",
        "GET http://127.0.0.1:18690/closed HTTP/1.1\r\n",
        "GET https://127.0.0.1:18443/1k HTTP/1.1\r\n",
        "GET https://127.0.0.1:18443/1k HTTP/1.1\r\n",
    };
    FILE *in = fopen(MITMFLOW_FIXTURE, "rb");
    const char *why = NULL;
    char *line = NULL;
    size_t len = 0, n = 0;

    (void)state;
    assert_non_null(in);
    assert_true(mitmflow_sniff(in));
    while (mitmflow_read(in, &line, &len, &why) == 1) {
        struct har_buf b = {0};
        enum creplay_skip skip;

        assert_true(n < sizeof(want_lines) / sizeof(want_lines[0]));
        if (creplay_load_request(line, len, &b, &why, &skip) != 0)
            fail_msg("flow %zu refused: %s", n, why);
        har_buf_put(&b, "", 1);
        if (strncmp(b.p, want_lines[n], strlen(want_lines[n])) != 0)
            fail_msg("flow %zu: %s", n, b.p);
        assert_non_null(strstr(b.p, "\r\nconnection: close\r\n\r\n"));
        if (n == 1) { /* the POST: "payload bytes", as curl sent it through mitmdump */
            assert_non_null(strstr(b.p, "\r\ncontent-length: 13\r\n"));
            assert_string_equal(b.p + strlen(b.p) - 13, "payload bytes");
        }
        if (n == 5) /* through CONNECT 127.0.0.1: the Host field stays www.origin.test */
            assert_non_null(strcasestr(b.p, "\r\nhost: www.origin.test"));
        free(b.p);
        free(line);
        line = NULL;
        n++;
    }
    free(line);
    fclose(in);
    assert_int_equal(n, sizeof(want_lines) / sizeof(want_lines[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_mitmproxy_flows),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
