/* test_replay.c - the pieces of record and replay that are pure functions: body capture
 * (worker/flow_body: limit, truncation, chunked framing split at every byte), HAR text
 * helpers (shared/har: base64 both ways, JSON strings, text detection, the kill -9 scan) and
 * the server replay key (shared/replay_key: what matches and what does not). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "shared/har.h"
#include "shared/http_date.h"
#include "shared/replay_key.h"
#include "worker/flow_body.h"

static void new_flow(struct flow *f, struct flow_body_cfg *cfg, uint64_t limit)
{
    flow_body_cfg_init(cfg, limit);
    flow_init(f);
    f->bodies = cfg;
    flow_begin(f);
}

static void test_flow_body_limit(void **state)
{
    struct flow_body_cfg cfg;
    struct flow f;
    uint8_t data[10000];
    const struct flow_body_side *s;

    (void)state;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7);
    new_flow(&f, &cfg, 4096);
    assert_null(flow_body_get(&f, FLOW_REQUEST)); /* nothing fed: no capture */
    for (size_t off = 0; off < sizeof(data); off += 333) /* in uneven pieces */
        flow_body_feed(&f, FLOW_REQUEST, data + off,
                       sizeof(data) - off < 333 ? sizeof(data) - off : 333);
    s = flow_body_get(&f, FLOW_REQUEST);
    assert_non_null(s);
    assert_int_equal(s->total, sizeof(data));
    assert_int_equal(s->len, 4096);
    assert_true(flow_body_side_truncated(s));
    assert_memory_equal(s->data, data, 4096);
    assert_null(flow_body_get(&f, FLOW_RESPONSE));
    assert_true(cfg.in_use >= 4096 && cfg.in_use <= 8192);
    flow_body_release(&f);
    assert_int_equal(cfg.in_use, 0);
    assert_null(f.body);

    /* a new exchange on the same flow does not see the old body */
    flow_body_feed(&f, FLOW_RESPONSE, "abc", 3);
    f.t_start++;
    assert_null(flow_body_get(&f, FLOW_RESPONSE));
    flow_body_feed(&f, FLOW_RESPONSE, "de", 2);
    s = flow_body_get(&f, FLOW_RESPONSE);
    assert_int_equal(s->len, 2);
    assert_memory_equal(s->data, "de", 2);
    flow_body_release(&f);

    /* capture off: nothing allocated */
    new_flow(&f, &cfg, 0);
    flow_body_feed(&f, FLOW_REQUEST, "abc", 3);
    assert_null(f.body);
    /* over the worker budget: counted, not kept */
    new_flow(&f, &cfg, 4096);
    cfg.budget = 100;
    flow_body_feed(&f, FLOW_REQUEST, data, 1000);
    s = flow_body_get(&f, FLOW_REQUEST);
    assert_int_equal(s->total, 1000);
    assert_int_equal(s->len, 0);
    assert_true(cfg.not_kept > 0);
    flow_body_release(&f);
}

static void test_flow_body_chunked_every_split(void **state)
{
    static const char wire[] = "5;ext=1\r\nhello\r\n1\r\n \r\nB\r\nfrom chunks\r\n0\r\nX-T: 1\r\n\r\n";
    static const char want[] = "hello from chunks";
    struct flow_body_cfg cfg;
    struct flow f;
    size_t n = sizeof(wire) - 1;

    (void)state;
    for (size_t split = 1; split <= n; split++) {
        const struct flow_body_side *s;

        new_flow(&f, &cfg, 64);
        for (size_t off = 0; off < n; off += split)
            flow_body_feed_chunked(&f, FLOW_RESPONSE, wire + off, n - off < split ? n - off : split);
        s = flow_body_get(&f, FLOW_RESPONSE);
        assert_non_null(s);
        assert_int_equal(s->total, sizeof(want) - 1);
        assert_memory_equal(s->data, want, sizeof(want) - 1);
        flow_body_release(&f);
    }
}

static void test_har_base64_roundtrip(void **state)
{
    uint8_t in[64], out[64 + 3];

    (void)state;
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(255 - i * 13);
    for (size_t n = 0; n <= sizeof(in); n++) {
        struct har_buf b = {0};

        har_buf_base64(&b, in, n);
        assert_int_equal(b.len, (n + 2) / 3 * 4);
        assert_int_equal(har_base64_decode(b.p != NULL ? b.p : "", b.len, out), (ssize_t)n);
        assert_memory_equal(out, in, n);
        free(b.p);
    }
    assert_int_equal(har_base64_decode("YWJj", 4, out), 3);
    assert_memory_equal(out, "abc", 3);
    assert_int_equal(har_base64_decode("YQ", 2, out), 1); /* padding optional */
    assert_int_equal(har_base64_decode("Y", 1, out), -EINVAL);
    assert_int_equal(har_base64_decode("YW J", 4, out), -EINVAL);
}

static void test_har_json_and_text(void **state)
{
    static const struct {
        const char *in;
        size_t n;
        const char *want;
        bool text;
        const char *note;
    } cases[] = {
        {"plain", 5, "\"plain\"", true, "ASCII as is"},
        {"a\"b\\c", 5, "\"a\\\"b\\\\c\"", true, "quote and backslash escaped"},
        {"t\tn\n", 4, "\"t\\u0009n\\u000a\"", true, "controls as \\u, still text"},
        {"\xc3\xa9t\xc3\xa9", 5, "\"\xc3\xa9t\xc3\xa9\"", true, "valid UTF-8 kept"},
        {"a\xff" "b", 3, "\"a\xef\xbf\xbd" "b\"", false, "invalid byte as U+FFFD"},
        {"\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"", false, "surrogate"},
        {"a\0b", 3, "\"a\\u0000b\"", false, "NUL is not text"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct har_buf b = {0};

        har_buf_json(&b, cases[i].in, cases[i].n);
        assert_int_equal(b.len, strlen(cases[i].want));
        if (memcmp(b.p, cases[i].want, b.len) != 0)
            fail_msg("%s: got %.*s", cases[i].note, (int)b.len, b.p);
        assert_int_equal(har_is_text(cases[i].in, cases[i].n), cases[i].text);
        free(b.p);
    }
}

static void test_har_scan(void **state)
{
#define HEAD "{\"log\":{\"version\":\"1.2\",\"entries\":["
    static const struct {
        const char *doc;
        int rc;
        size_t entries;
        size_t end_from_head; /* bytes after the head kept */
        bool closed;
        const char *note;
    } cases[] = {
        {HEAD, 0, 0, 0, false, "head only"},
        {HEAD ",\n{\"a\":1}", 0, 1, 9, false, "one entry, open"},
        {HEAD ",\n{\"a\":\"}{\"},\n{\"b\":[", 0, 1, 12, false, "braces in a string; cut"},
        {HEAD ",\n{\"a\":\"\\\"}\"}", 0, 1, 13, false, "escaped quote in a string"},
        {HEAD " \n{\"a\":1}\n]}}\n", 0, 1, 9, true, "closed"},
        {HEAD ",\n{\"a\":1},\n{\"b\":2}\0\0\0", 0, 2, 18, false, "hole at the end"},
        {"{\"foo\":1}", -EINVAL, 0, 0, false, "not HAR"},
        {"[1,2]", -EINVAL, 0, 0, false, "not an object"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t head = 0, end = 0, n = 0, len = strlen(cases[i].doc);
        bool closed = false;
        int rc;

        if (strstr(cases[i].note, "hole") != NULL)
            len += 3;
        rc = har_scan_entries(cases[i].doc, len, &head, &end, &n, &closed);
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d", cases[i].note, rc);
        if (rc != 0)
            continue;
        assert_int_equal(head, sizeof(HEAD) - 1);
        if (n != cases[i].entries || end - head != cases[i].end_from_head ||
            closed != cases[i].closed)
            fail_msg("%s: %zu entries, end +%zu, closed %d", cases[i].note, n, end - head, closed);
    }
#undef HEAD
}

static ssize_t key(const struct replay_key_opts *o, const char *m, const char *url,
                   const char *body, char *out)
{
    const char *why = NULL;

    return replay_key_build(o, m, strlen(m), url, strlen(url), body,
                            body != NULL ? strlen(body) : 0, NULL, out, REPLAY_KEY_MAX, &why);
}

static bool same(const struct replay_key_opts *o, const char *m1, const char *u1, const char *b1,
                 const char *m2, const char *u2, const char *b2)
{
    static char k1[REPLAY_KEY_MAX], k2[REPLAY_KEY_MAX];
    ssize_t n1 = key(o, m1, u1, b1, k1), n2 = key(o, m2, u2, b2, k2);

    assert_true(n1 > 0 && n2 > 0);
    return n1 == n2 && memcmp(k1, k2, (size_t)n1) == 0;
}

static void test_replay_key(void **state)
{
    const char *params[] = {"t", "cb"};
    struct replay_key_opts none = {0}, o = {0};
    char k[REPLAY_KEY_MAX];
    const char *why = NULL;

    (void)state;
    assert_true(same(&none, "GET", "https://a.test/x?q=1", NULL, "GET", "https://A.TEST:443/x?q=1",
                     NULL)); /* host case, default port */
    assert_false(same(&none, "GET", "https://a.test/x", NULL, "POST", "https://a.test/x", NULL));
    assert_false(same(&none, "GET", "https://a.test/x", NULL, "GET", "http://a.test/x", NULL));
    assert_false(same(&none, "GET", "https://a.test/x", NULL, "GET", "https://a.test:8443/x", NULL));
    assert_false(same(&none, "GET", "https://a.test/x", NULL, "GET", "https://b.test/x", NULL));
    assert_false(same(&none, "GET", "https://a.test/x", NULL, "GET", "https://a.test/y", NULL));
    assert_false(same(&none, "GET", "https://a.test/x?a=1&b=2", NULL, "GET",
                      "https://a.test/x?b=2&a=1", NULL)); /* parameter order counts */
    assert_false(same(&none, "POST", "https://a.test/x", "one", "POST", "https://a.test/x", "two"));
    assert_true(same(&none, "POST", "https://a.test/x", "", "POST", "https://a.test/x", NULL));
    o.ignore_content = true;
    assert_true(same(&o, "POST", "https://a.test/x", "one", "POST", "https://a.test/x", "two"));
    o.ignore_host = o.ignore_port = true;
    assert_true(same(&o, "GET", "https://a.test/x", NULL, "GET", "https://b.test:8443/x", NULL));
    assert_false(same(&o, "GET", "https://a.test/x", NULL, "GET", "http://b.test/x", NULL));
    o.ignore_params = params;
    o.n_ignore_params = 2;
    assert_true(same(&o, "GET", "https://a.test/x?a=1&t=5&cb", NULL, "GET",
                     "https://a.test/x?cb=9&a=1&t=6", NULL));
    assert_false(same(&o, "GET", "https://a.test/x?a=1", NULL, "GET", "https://a.test/x?a=2", NULL));
    /* parameters compared decoded, as mitmproxy's parse_qsl: '+', %XX; names too */
    assert_true(same(&o, "GET", "https://a.test/x?q=a+b&%74=1", NULL, "GET",
                     "https://a.test/x?q=a%20b", NULL));
    assert_false(same(&o, "GET", "https://a.test/x?q=a%2Bb", NULL, "GET", "https://a.test/x?q=a+b",
                      NULL));
    assert_false(same(&o, "GET", "https://a.test/x?a=1&b", NULL, "GET", "https://a.test/x?a=1b",
                      NULL));
    assert_int_equal(replay_key_build(&none, "GET", 3, "/x", 2, NULL, 0, NULL, k, sizeof(k), &why),
                     -EINVAL);
    assert_non_null(why);
    assert_int_equal(replay_key_build(&none, "GET", 3, "https://a.test/x", 16, NULL, 0, NULL, k, 10,
                                      &why),
                     -ENOSPC);
}

struct hdr_list {
    const char *const (*kv)[2];
    size_t n;
};

static bool list_hdr(const void *ctx, const char *name, const char **v, size_t *len)
{
    const struct hdr_list *l = ctx;

    for (size_t i = 0; i < l->n; i++)
        if (strcasecmp(l->kv[i][0], name) == 0) {
            *v = l->kv[i][1];
            *len = strlen(l->kv[i][1]);
            return true;
        }
    return false;
}

/* hkey builds the key of POST https://a.test/f with `body` and fields `kv` (n of them). */
static ssize_t hkey(const struct replay_key_opts *o, const char *body, const char *const (*kv)[2],
                    size_t n, char *out)
{
    struct hdr_list l = {kv, n};
    struct replay_key_hdrs h = {.get = list_hdr, .ctx = &l};
    const char *why = NULL;

    return replay_key_build(o, "POST", 4, "https://a.test/f", 16, body, strlen(body), &h, out,
                            REPLAY_KEY_MAX, &why);
}

static bool hsame(const struct replay_key_opts *o, const char *b1, const char *const (*kv1)[2],
                  size_t n1, const char *b2, const char *const (*kv2)[2], size_t n2)
{
    static char k1[REPLAY_KEY_MAX], k2[REPLAY_KEY_MAX];
    ssize_t a = hkey(o, b1, kv1, n1, k1), b = hkey(o, b2, kv2, n2, k2);

    assert_true(a > 0 && b > 0);
    return a == b && memcmp(k1, k2, (size_t)a) == 0;
}

static void test_replay_key_forms_and_headers(void **state)
{
    static const char *const form[][2] = {{"Content-Type",
                                           "application/x-www-form-urlencoded; charset=utf-8"}};
    static const char *const mp[][2] = {{"content-type",
                                         "multipart/form-data; boundary=XyZ"}};
    static const char *const plain[][2] = {{"Content-Type", "text/plain"}};
    static const char *const ua1[][2] = {{"User-Agent", "a/1"}, {"Accept", "*/*"}};
    static const char *const ua2[][2] = {{"user-agent", "a/2"}, {"Accept", "*/*"}};
    static const char *const ua1b[][2] = {{"USER-AGENT", "a/1"}, {"Accept", "text/html"}};
    const char *ign[] = {"ts", "nonce"}, *use[] = {"user-agent"};
    struct replay_key_opts o = {0};
    const char *mp1 = "--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nbob\r\n"
                      "--XyZ\r\nContent-Disposition: form-data; name=\"ts\"\r\n\r\n111\r\n"
                      "--XyZ--\r\n";
    const char *mp2 = "--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n"
                      "Content-Type: text/plain\r\n\r\nbob\r\n"
                      "--XyZ\r\nContent-Disposition: form-data; name=\"ts\"\r\n\r\n222\r\n"
                      "--XyZ--\r\n";
    const char *mp3 = "--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\neve\r\n"
                      "--XyZ\r\nContent-Disposition: form-data; name=\"ts\"\r\n\r\n111\r\n"
                      "--XyZ--\r\n";

    (void)state;
    /* without ignore_payload_params the body is hashed as it is */
    assert_false(hsame(&o, "a=1&ts=5", form, 1, "a=1&ts=6", form, 1));
    o.ignore_payload_params = ign;
    o.n_ignore_payload_params = 2;
    assert_true(hsame(&o, "a=1&ts=5", form, 1, "a=1&ts=6&nonce=x", form, 1));
    assert_true(hsame(&o, "a=b+c&ts=1", form, 1, "a=b%20c&t%73=2", form, 1)); /* decoded */
    assert_false(hsame(&o, "a=1&ts=5", form, 1, "a=2&ts=5", form, 1));
    assert_false(hsame(&o, "a=1&b=2", form, 1, "b=2&a=1", form, 1)); /* order counts */
    assert_false(hsame(&o, "a=1&ts=5", plain, 1, "a=1&ts=6", plain, 1)); /* not a form */
    assert_false(hsame(&o, "a=1&ts=5", NULL, 0, "a=1&ts=6", NULL, 0));
    assert_true(hsame(&o, mp1, mp, 1, mp2, mp, 1)); /* ts ignored; extra part header */
    assert_false(hsame(&o, mp1, mp, 1, mp3, mp, 1));
    o.n_ignore_payload_params = 0;
    assert_false(hsame(&o, mp1, mp, 1, mp2, mp, 1));
    /* use_headers: these fields' values (names case-insensitive) join the key */
    assert_true(hsame(&o, "", ua1, 2, "", ua2, 2));
    o.use_headers = use;
    o.n_use_headers = 1;
    assert_false(hsame(&o, "", ua1, 2, "", ua2, 2));
    assert_true(hsame(&o, "", ua1, 2, "", ua1b, 2)); /* Accept is not used */
    assert_false(hsame(&o, "", ua1, 2, "", NULL, 0)); /* present vs absent */
    assert_true(hsame(&o, "", NULL, 0, "", NULL, 0));
}

static void test_http_date(void **state)
{
    static const char *const forms[] = {"Sun, 06 Nov 1994 08:49:37 GMT",
                                        "Sunday, 06-Nov-94 08:49:37 GMT",
                                        "Sun Nov  6 08:49:37 1994",
                                        "Sun, 06 Nov 1994 10:49:37 +0200",
                                        /* what Python's parsedate_tz also reads */
                                        "Sun, 06 November 1994 08:49:37 GMT",
                                        "Sun, 06 Nov 1994 03:49:37 EST",
                                        "Sun, 06 Nov 1994 00:49:37 PST",
                                        "Sun, 06 Nov 1994 08:49:37 CET"}; /* unknown: +0000 */
    char out[HTTP_DATE_LEN + 1], ck[256];
    int64_t t = 0;
    const char *c = "id=1; Path=/; Expires=Sun, 06 Nov 1994 08:49:37 GMT; HttpOnly";
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        assert_true(http_date_parse(forms[i], strlen(forms[i]), &t));
        assert_int_equal(t, 784111777);
    }
    assert_int_equal(http_date_format(784111777 + 86400 + 3661, out), HTTP_DATE_LEN);
    assert_string_equal(out, "Mon, 07 Nov 1994 09:50:38 GMT");
    assert_int_equal(http_date_format(0, out), HTTP_DATE_LEN);
    assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_false(http_date_parse("garbage", 7, &t));
    assert_false(http_date_parse("Sun, 06 Nov 1994", 16, &t)); /* no time */
    assert_false(http_date_parse("", 0, &t));
    assert_false(http_date_parse("Sun, 06 Novembre 1994 08:49:37 GMT", 34, &t)); /* not a month */
    assert_false(http_date_parse("Sun, 06 Nov 1994 GMT1 08:49:37", 30, &t)); /* zone before time */
    n = http_date_refresh_cookie(c, strlen(c), 86400, ck, sizeof(ck));
    assert_int_equal(n, strlen("id=1; Path=/; Expires=Mon, 07 Nov 1994 08:49:37 GMT; HttpOnly"));
    assert_memory_equal(ck, "id=1; Path=/; Expires=Mon, 07 Nov 1994 08:49:37 GMT; HttpOnly", n);
    c = "id=1; expires=bogus; Path=/";
    n = http_date_refresh_cookie(c, strlen(c), 86400, ck, sizeof(ck));
    assert_memory_equal(ck, "id=1; Path=/", n); /* not a date: dropped, as mitmproxy */
    assert_int_equal(http_date_refresh_cookie("id=1; Path=/", 12, 5, ck, sizeof(ck)), 0);
    assert_int_equal(http_date_refresh_cookie(c, strlen(c), 5, ck, 4), 0); /* no room */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow_body_limit),
        cmocka_unit_test(test_flow_body_chunked_every_split),
        cmocka_unit_test(test_har_base64_roundtrip),
        cmocka_unit_test(test_har_json_and_text),
        cmocka_unit_test(test_har_scan),
        cmocka_unit_test(test_replay_key),
        cmocka_unit_test(test_replay_key_forms_and_headers),
        cmocka_unit_test(test_http_date),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
