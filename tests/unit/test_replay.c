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

#include <cmocka.h>

#include "shared/har.h"
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
                            body != NULL ? strlen(body) : 0, out, REPLAY_KEY_MAX, &why);
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
    assert_int_equal(replay_key_build(&none, "GET", 3, "/x", 2, NULL, 0, k, sizeof(k), &why),
                     -EINVAL);
    assert_non_null(why);
    assert_int_equal(replay_key_build(&none, "GET", 3, "https://a.test/x", 16, NULL, 0, k, 10,
                                      &why),
                     -ENOSPC);
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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
