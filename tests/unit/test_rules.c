/* test_rules.c - cmocka tests of worker/rules: spec parsing (mitmproxy's separator rules,
 * escapes, @FILE, one-line errors naming the option, the spec and, for filters, the column),
 * verdicts at the request and response heads (block_list last-wins, map_remote as re.sub
 * with Python's replacement syntax and empty-match rules, modify_headers evaluated before
 * editing, inject_error/inject_fault percentages, inject_latency jitter bounds), counters,
 * and rules_check over a parsed command line. */
#include "worker/rules.h"

#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker/flowfilter.h"
#include "worker/maplocal.h"

static void make_req(struct flow *f, const char *method, const char *url)
{
    flow_init(f);
    flow_begin(f);
    flow_str_set(f, &f->method, method, strlen(method));
    flow_str_set(f, &f->url, url, strlen(url));
    flow_add_header(f, FLOW_REQUEST, "Host", 4, "api.test", 8);
    flow_add_header(f, FLOW_REQUEST, "Accept", 6, "*/*", 3);
}

struct bad_case {
    enum rules_kind kind;
    const char *spec;
    const char *want; /* whole message */
};

static const struct bad_case bad_cases[] = {
    {RULES_MODIFY_HEADERS, "/X-A", "modify_headers: '/X-A': expected [SEP FILTER]SEP SUBJECT "
                                   "SEP REPLACEMENT (2 or 3 parts)"},
    {RULES_MODIFY_HEADERS, "/~c abc/X-A/1",
     "modify_headers: '/~c abc/X-A/1': filter: ~c abc: expected a status code at column 4"},
    {RULES_MODIFY_HEADERS, "//b", "modify_headers: '//b': empty header name"},
    {RULES_MODIFY_HEADERS, "/X A/b", "modify_headers: '/X A/b': the header name is not an HTTP token"},
    {RULES_MODIFY_HEADERS, "/X-A/a\\r\\nX-B: 1",
     "modify_headers: '/X-A/a\\r\\nX-B: 1': CR, LF or NUL in the header value"},
    {RULES_MODIFY_HEADERS, "/X-A/\\x4", "modify_headers: '/X-A/\\x4': invalid \\x escape"},
    {RULES_MODIFY_HEADERS, "|X-A|@/nonexistent/file",
     "modify_headers: '|X-A|@/nonexistent/file': cannot read /nonexistent/file: No such file "
     "or directory"},
    {RULES_MODIFY_HEADERS, "/X-A/@/etc/hostname",
     "modify_headers: '/X-A/@/etc/hostname': the header name is not an HTTP token"},
    {RULES_MODIFY_HEADERS, "", "modify_headers: '': empty spec"},
    {RULES_MAP_REMOTE, "|a(|b", "map_remote: '|a(|b': invalid regular expression 'a(' "
                               "(missing closing parenthesis at offset 2)"},
    {RULES_MAP_REMOTE, "|a|\\2", "map_remote: '|a|\\2': invalid group reference in the replacement"},
    {RULES_MAP_REMOTE, "|a|\\q", "map_remote: '|a|\\q': bad escape in the replacement"},
    {RULES_MAP_REMOTE, "|a|\\g<x>", "map_remote: '|a|\\g<x>': unknown group name in the replacement"},
    {RULES_BLOCK_LIST, "/~u x/4040", "block_list: '/~u x/4040': invalid HTTP status code "
                                     "(mitmproxy's known codes; 444 closes)"},
    {RULES_BLOCK_LIST, "/~u x/299", "block_list: '/~u x/299': invalid HTTP status code "
                                    "(mitmproxy's known codes; 444 closes)"},
    {RULES_BLOCK_LIST, "/404", "block_list: '/404': expected SEP FILTER SEP STATUS"},
    {RULES_BLOCK_LIST, "//404", "block_list: '//404': filter: : empty filter expression at column 1"},
    {RULES_INJECT_LATENCY, "/~all/fast", "inject_latency: '/~all/fast': expected DELAY[~JITTER] "
                                         "as 250, 250ms, 2s or 1.5s (at most 3600s)"},
    {RULES_INJECT_LATENCY, "/~all/1.5ms", "inject_latency: '/~all/1.5ms': expected DELAY[~JITTER] "
                                          "as 250, 250ms, 2s or 1.5s (at most 3600s)"},
    {RULES_INJECT_LATENCY, "/~all/100~", "inject_latency: '/~all/100~': expected DELAY[~JITTER] "
                                         "as 250, 250ms, 2s or 1.5s (at most 3600s)"},
    {RULES_INJECT_ERROR, "/~all/503@0", "inject_error: '/~all/503@0': expected STATUS[@PERCENT]: "
                                        "a status 100-599, a percentage in (0, 100]"},
    {RULES_INJECT_ERROR, "/~all/600", "inject_error: '/~all/600': expected STATUS[@PERCENT]: "
                                      "a status 100-599, a percentage in (0, 100]"},
    {RULES_INJECT_ERROR, "/~all/503@101", "inject_error: '/~all/503@101': expected "
                                          "STATUS[@PERCENT]: a status 100-599, a percentage in "
                                          "(0, 100]"},
    {RULES_INJECT_FAULT, "/~all/5/boom", "inject_fault: '/~all/5/boom': expected the action to be "
                                         "a status 100-599, reset or stall"},
    {RULES_INJECT_FAULT, "/~all/reset", "inject_fault: '/~all/reset': expected SEP FILTER SEP "
                                        "PERCENT SEP ACTION (a status, reset or stall)"},
    {RULES_MAP_LOCAL, "|a|/nonexistent/dir",
     "map_local: '|a|/nonexistent/dir': invalid file path: /nonexistent/dir: No such file or "
     "directory"},
    {RULES_MAP_LOCAL, "|a(|/tmp", "map_local: '|a(|/tmp': invalid regular expression 'a(' "
                                  "(missing closing parenthesis at offset 2)"},
    {RULES_MODIFY_BODY, "/a(/b", "modify_body: '/a(/b': invalid regular expression 'a(' "
                                 "(missing closing parenthesis at offset 2)"},
    {RULES_MODIFY_BODY, "/a/\\2", "modify_body: '/a/\\2': invalid group reference in the "
                                  "replacement"},
};

static void test_rules_bad_specs(void **state)
{
    (void)state;
    char err[512];

    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        struct rules *r = rules_new();

        assert_non_null(r);
        err[0] = '\0';
        if (rules_add(r, bad_cases[i].kind, bad_cases[i].spec, err, sizeof(err)) != -EINVAL)
            fail_msg("'%s' was accepted", bad_cases[i].spec);
        if (strcmp(err, bad_cases[i].want) != 0)
            fail_msg("'%s': got \"%s\"\n want \"%s\"", bad_cases[i].spec, err, bad_cases[i].want);
        assert_true(rules_is_empty(r));
        rules_free(r);
    }
}

static const struct {
    enum rules_kind kind;
    const char *spec;
} good_cases[] = {
    {RULES_MODIFY_HEADERS, "/X-A/1"},                 /* no filter */
    {RULES_MODIFY_HEADERS, ":~q:X-A:1"},              /* any separator */
    {RULES_MODIFY_HEADERS, "/X-A/"},                  /* empty value: remove */
    {RULES_MODIFY_HEADERS, "/~d x/X-A/a/b"},          /* three parts: filter, name, value */
    {RULES_MAP_REMOTE, "|//a.test/|//b.test/"},       /* the example */
    {RULES_MAP_REMOTE, "|~d a|(?P<h>a)\\.test|\\g<h>\\g<0>\\1"},
    {RULES_BLOCK_LIST, "/~d ADS.test/444"},           /* lower-cased as mitmproxy */
    {RULES_BLOCK_LIST, ":~u /admin:403"},
    {RULES_INJECT_LATENCY, "/~all/250"},
    {RULES_INJECT_LATENCY, "/~all/250ms~50ms"},
    {RULES_INJECT_LATENCY, "/~d slow/1.5s~0.5s"},
    {RULES_INJECT_ERROR, "/~all/503"},
    {RULES_INJECT_ERROR, "/~all/503@0.5"},
    {RULES_INJECT_FAULT, "/~all/5/reset"},
    {RULES_INJECT_FAULT, "/~all/100/stall"},
    {RULES_INJECT_FAULT, "/~all/12.5/502"},
};

static void test_rules_good_specs(void **state)
{
    (void)state;
    struct rules *r = rules_new();
    struct rules_stat st[32];
    char err[512];
    int n;

    assert_non_null(r);
    assert_true(rules_is_empty(r));
    for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++)
        if (rules_add(r, good_cases[i].kind, good_cases[i].spec, err, sizeof(err)) != 0)
            fail_msg("'%s': %s", good_cases[i].spec, err);
    assert_false(rules_is_empty(r));
    n = rules_stats(r, st, 32);
    assert_int_equal(n, (int)(sizeof(good_cases) / sizeof(good_cases[0])));
    assert_int_equal(st[0].kind, RULES_MODIFY_HEADERS);
    assert_string_equal(st[0].spec, "/X-A/1");
    assert_int_equal(st[n - 1].kind, RULES_INJECT_FAULT);
    rules_free(r);
}

/* map_remote follows Python's re.sub: every match, groups, empty matches. */
static void test_rules_map_url(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *url, *want, *note;
    } cases[] = {
        {"|//a.test/|//b.test/", "https://a.test/x", "https://b.test/x", "the issue's example"},
        {"|//a.test/|//b.test/", "https://c.test/x", "https://c.test/x", "no match: unchanged"},
        {"|o|0", "http://foo.test/boo", "http://f00.test/b00", "every match"},
        {"|x*|-", "abxd", "-a-b--d-", "Python 3.7 empty matches"},
        {"|(\\w+)\\.test|\\1.example", "https://api.test/", "https://api.example/", "group \\1"},
        {"|(?P<h>api)|\\g<h>2", "https://api.test/", "https://api2.test/", "named group"},
        {"|^http://|https://", "http://a/", "https://a/", "scheme change"},
        {"|a(b)?|[\\1]", "ac", "[]c", "unmatched group is empty"},
        {"|a|\\\\", "a", "\\", "\\\\ is one backslash"},
        {"|a|\\&", "a", "\\&", "unknown non-letter escape kept"},
        {"|a|x\\ty", "a", "x\ty", "\\t"},
        {"|é|e", "https://café.test/", "https://cafe.test/", "UTF-8 literal"},
        {"|$|/", "https://a.test", "https://a.test/", "empty match at the end"},
    };
    struct flow *f = malloc(sizeof(*f));
    char out[256], err[512];

    assert_non_null(f);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rules *r = rules_new();
        ssize_t n;

        assert_non_null(r);
        if (rules_add(r, RULES_MAP_REMOTE, cases[i].spec, err, sizeof(err)) != 0)
            fail_msg("%s: %s", cases[i].spec, err);
        make_req(f, "GET", cases[i].url);
        n = rules_map_url(r, f, cases[i].url, strlen(cases[i].url), out, sizeof(out));
        assert_true(n >= 0);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("%s on %s: got %s want %s (%s)", cases[i].spec, cases[i].url, out,
                     cases[i].want, cases[i].note);
        assert_int_equal((size_t)n, strlen(out));
        /* the result and its NUL must fit */
        assert_int_equal(rules_map_url(r, f, cases[i].url, strlen(cases[i].url), out,
                                       strlen(cases[i].want) + 1), (ssize_t)strlen(out));
        assert_int_equal(rules_map_url(r, f, cases[i].url, strlen(cases[i].url), out,
                                       strlen(cases[i].want)), -ENOSPC);
        rules_free(r);
    }
    free(f);
}

static void test_rules_may_remap_host(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *host;
        uint16_t port;
        bool tls, want;
    } cases[] = {
        {"|//a.test/|//b.test/", "a.test", 443, true, true},
        {"|//a.test/|//b.test/", "c.test", 443, true, false},
        {"|//a.test/|//b.test/", "a.test.example", 443, true, false},
        {"|//a.test:8443/|//b.test/", "a.test", 8443, true, true},
        {"|/api/v1/|/api/v2/", "a.test", 443, true, false},  /* the path only */
        {"|^https://a.test/api/|http://b.test/", "a.test", 443, true, true}, /* needs the path */
        {"|^https://a.test/api/|http://b.test/", "a.test", 443, false, false}, /* http:// */
        {"|test/|example/", "a.test", 443, true, true},  /* the '/' after the host is hit */
        {"|^http://|https://", "a.test", 80, false, true},
        {"|^http://|https://", "a.test", 443, true, false},
        {"|x*|-", "a.test", 443, true, true},            /* empty match at 0 */
        {"|$|/", "a.test", 443, true, false},             /* empty match at the end */
        {"|zz|y", "a.test", 443, true, false},
        {"|/a|.evil/a", "c.test", 443, true, true},     /* "c.test/a" -> "c.test.evil/a" */
        {"|/(a)|/\\1", "c.test", 443, true, false},     /* a path may start with /a */
        {"|//\\[::1\\]|//b.test", "::1", 443, true, true},
    };
    char err[512];

    assert_false(rules_may_remap_host(NULL, true, "a.test", 443));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rules *r = rules_new();

        assert_non_null(r);
        if (rules_add(r, RULES_MAP_REMOTE, cases[i].spec, err, sizeof(err)) != 0)
            fail_msg("%s: %s", cases[i].spec, err);
        if (rules_may_remap_host(r, cases[i].tls, cases[i].host, cases[i].port) != cases[i].want)
            fail_msg("%s on %s:%u: want %d", cases[i].spec, cases[i].host,
                     (unsigned)cases[i].port, cases[i].want);
        rules_free(r);
    }
    {
        struct rules *r = rules_new(); /* no map_remote spec: never */

        assert_non_null(r);
        assert_int_equal(rules_add(r, RULES_BLOCK_LIST, "/~d a.test/403", err, sizeof(err)), 0);
        assert_false(rules_may_remap_host(r, true, "a.test", 443));
        rules_free(r);
    }
}

static void test_rules_request_verdicts(void **state)
{
    (void)state;
    struct flow *f = malloc(sizeof(*f));
    struct rules *r = rules_new();
    struct rules_verdict v;
    struct rules_stat st[16];
    uint64_t rng = 1;
    char err[512];

    assert_non_null(f);
    assert_non_null(r);
    assert_int_equal(rules_add(r, RULES_BLOCK_LIST, "/~d ads/403", err, sizeof(err)), 0);
    assert_int_equal(rules_add(r, RULES_BLOCK_LIST, ":~u /ads/track:444", err, sizeof(err)), 0);
    assert_int_equal(rules_add(r, RULES_MAP_REMOTE, "|~d ^a\\.test$|//a\\.test/|//b.test/",
                               err, sizeof(err)), 0);
    assert_int_equal(rules_add(r, RULES_MAP_REMOTE, "|~d ^b\\.test$|/v1/|/v2/", err,
                               sizeof(err)), 0);
    assert_int_equal(rules_add(r, RULES_MODIFY_HEADERS, "/~d b.test/X-Mapped/yes", err,
                               sizeof(err)), 0);
    assert_int_equal(rules_add(r, RULES_MODIFY_HEADERS, "/~hq X-Mapped/X-Seen/1", err,
                               sizeof(err)), 0);
    assert_int_equal(rules_add(r, RULES_MODIFY_HEADERS, "/Accept/", err, sizeof(err)), 0);
    assert_int_equal(rules_add(r, RULES_INJECT_LATENCY, "/~m POST/100ms~20ms", err,
                               sizeof(err)), 0);
    assert_int_equal(rules_add(r, RULES_INJECT_LATENCY, "/~all/5", err, sizeof(err)), 0);

    /* blocked: the last matching block_list spec wins; nothing else applies */
    make_req(f, "GET", "https://ads.test/ads/track?x");
    assert_int_equal(rules_on_request_head(r, f, &rng, &v), 0);
    assert_int_equal(v.block_status, 444);
    assert_int_equal(v.n_edits, 0);
    assert_int_equal(v.delay_ms, 0);
    make_req(f, "GET", "https://ads.test/banner");
    assert_int_equal(rules_on_request_head(r, f, &rng, &v), 0);
    assert_int_equal(v.block_status, 403);

    /* mapped: the second map_remote spec sees the URL the first made; modify_headers sees
     * the mapped URL, and all its filters run before any edit (X-Seen does not fire) */
    make_req(f, "GET", "https://a.test/v1/items");
    f->url_from_host = true; /* the Host field's URL: the line would show the target's */
    assert_int_equal(rules_on_request_head(r, f, &rng, &v), 0);
    assert_int_equal(v.block_status, 0);
    assert_true(v.url_changed);
    assert_false(f->url_from_host); /* mapped: the line shows the new URL, as mitmdump */
    assert_int_equal(f->url.len, strlen("https://b.test/v2/items"));
    assert_memory_equal(flow_str_ptr(f, f->url), "https://b.test/v2/items", f->url.len);
    assert_int_equal(v.n_edits, 2);
    assert_string_equal(v.edits[0]->name, "X-Mapped");
    assert_int_equal(v.edits[0]->value_len, 3);
    assert_string_equal(v.edits[1]->name, "Accept");
    assert_int_equal(v.edits[1]->value_len, 0);
    assert_true(rules_verdict_drops(&v, "accept", 6));
    assert_true(rules_verdict_drops(&v, "x-mapped", 8));
    assert_false(rules_verdict_drops(&v, "host", 4));
    assert_int_equal(v.delay_ms, 5); /* the first matching latency spec */
    assert_int_equal(v.fault, RULES_FAULT_NONE);

    /* latency with jitter stays in [80, 120] and varies */
    {
        uint32_t lo = 1000, hi = 0;

        for (int i = 0; i < 2000; i++) {
            make_req(f, "POST", "https://c.test/");
            assert_int_equal(rules_on_request_head(r, f, &rng, &v), 0);
            lo = v.delay_ms < lo ? v.delay_ms : lo;
            hi = v.delay_ms > hi ? v.delay_ms : hi;
        }
        assert_int_equal(lo, 80);
        assert_int_equal(hi, 120);
    }
    assert_int_equal(rules_stats(r, st, 16), 9);
    /* by kind (modify_headers, map_remote, block_list, inject_latency), then order */
    assert_int_equal(st[0].hits, 1);    /* X-Mapped */
    assert_int_equal(st[1].hits, 0);    /* X-Seen: filters run before edits */
    assert_int_equal(st[2].hits, 2001); /* /Accept/ with no filter; blocked requests skip it */
    assert_int_equal(st[3].hits, 1);    /* a -> b */
    assert_int_equal(st[4].hits, 1);    /* v1 -> v2 */
    assert_int_equal(st[5].hits, 1);    /* 403 */
    assert_int_equal(st[6].hits, 1);    /* 444 */
    assert_int_equal(st[7].hits, 2000); /* POST latency */
    assert_int_equal(st[8].hits, 1);
    rules_free(r);
    free(f);
}

/* inject_error fires for about PERCENT of matching requests; inject_fault's actions. */
static void test_rules_faults(void **state)
{
    (void)state;
    struct flow *f = malloc(sizeof(*f));
    struct rules *r = rules_new();
    struct rules_verdict v;
    uint64_t rng = 42;
    int fired = 0, resets = 0;
    char err[512];

    assert_non_null(f);
    assert_non_null(r);
    assert_int_equal(rules_add(r, RULES_INJECT_ERROR, "/~d flaky/503@10", err, sizeof(err)), 0);
    assert_int_equal(rules_add(r, RULES_INJECT_FAULT, "/~d flaky/100/reset", err, sizeof(err)),
                     0);
    assert_int_equal(rules_add(r, RULES_INJECT_FAULT, "/~d stall/100/stall", err, sizeof(err)),
                     0);
    for (int i = 0; i < 10000; i++) {
        make_req(f, "GET", "https://flaky.test/");
        assert_int_equal(rules_on_request_head(r, f, &rng, &v), 0);
        if (v.fault == RULES_FAULT_STATUS) {
            assert_int_equal(v.fault_status, 503);
            fired++;
        } else {
            assert_int_equal(v.fault, RULES_FAULT_RESET); /* the next rule always fires */
            resets++;
        }
    }
    assert_true(fired > 850 && fired < 1150);
    assert_int_equal(fired + resets, 10000);
    make_req(f, "GET", "https://stall.test/");
    assert_int_equal(rules_on_request_head(r, f, &rng, &v), 0);
    assert_int_equal(v.fault, RULES_FAULT_STALL);
    make_req(f, "GET", "https://fine.test/");
    assert_int_equal(rules_on_request_head(r, f, &rng, &v), 0);
    assert_int_equal(v.fault, RULES_FAULT_NONE);
    rules_free(r);
    free(f);
}

/* modify_headers on responses: filters see the response; flows with an error get nothing. */
static void test_rules_response_head(void **state)
{
    (void)state;
    struct flow *f = malloc(sizeof(*f));
    struct rules *r = rules_new();
    struct rules_verdict v;
    uint64_t rng = 7;
    char err[512];

    assert_non_null(f);
    assert_non_null(r);
    assert_int_equal(rules_add(r, RULES_MODIFY_HEADERS, "/~s/Server/mitmd", err, sizeof(err)), 0);
    assert_int_equal(rules_add(r, RULES_MODIFY_HEADERS, "/~c 404/X-Missing/\\x31", err,
                               sizeof(err)), 0);
    make_req(f, "GET", "https://a.test/");
    assert_int_equal(rules_on_request_head(r, f, &rng, &v), 0);
    assert_int_equal(v.n_edits, 0); /* ~s and ~c do not match a request */
    f->status = 404;
    rules_on_response_head(r, f, &v);
    assert_int_equal(v.n_edits, 2);
    assert_string_equal(v.edits[1]->value, "1");
    flow_set_error(f, "upstream reset");
    rules_on_response_head(r, f, &v);
    assert_int_equal(v.n_edits, 0);
    rules_on_response_head(NULL, f, &v);
    assert_int_equal(v.n_edits, 0);
    rules_free(r);
    free(f);
}

/* @FILE: read once, one trailing newline dropped. */
static void test_rules_value_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_rules_XXXXXX";
    char spec[128], err[512];
    struct rules *r = rules_new();
    struct flow *f = malloc(sizeof(*f));
    struct rules_verdict v;
    uint64_t rng = 1;
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_non_null(r);
    assert_non_null(f);
    assert_int_equal(write(fd, "Bearer abc\n", 11), 11);
    close(fd);
    snprintf(spec, sizeof(spec), "|Authorization|@%s", path); /* "/" is in the path */
    assert_int_equal(rules_add(r, RULES_MODIFY_HEADERS, spec, err, sizeof(err)), 0);
    unlink(path);
    make_req(f, "GET", "https://a.test/");
    assert_int_equal(rules_on_request_head(r, f, &rng, &v), 0);
    assert_int_equal(v.n_edits, 1);
    assert_int_equal(v.edits[0]->value_len, 10);
    assert_memory_equal(v.edits[0]->value, "Bearer abc", 10);
    rules_free(r);
    free(f);
}

/* config_parse + rules_check: the positional filter and the option names. */
static void test_rules_check_config(void **state)
{
    (void)state;
    struct config cfg;
    char err[512];
    char *good[] = {"mitmd", "--modify-headers", "/X-A/1", "--map-remote", "|a|b",
                    "--set", "block_list=/~u ads/404", "--set", "inject_latency=/~all/10ms",
                    "--set", "inject_error=/~d x/503@1", "--set", "inject_fault=/~d y/1/reset",
                    "~d", "api.test", "&", "~c", "500", NULL};
    char *bad_pos[] = {"mitmd", "~c", "abc", NULL};
    char *bad_save[] = {"mitmd", "--set", "save_stream_filter=~q &", NULL};
    char *bad_rule[] = {"mitmd", "--set", "block_list=/~d (/404", NULL};
    char *bad_dump[] = {"mitmd", "--set", "dumper_filter=!", NULL};

    assert_int_equal(config_parse(18, good, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.view_filter, "~d api.test & ~c 500");
    assert_string_equal(cfg.save_stream_filter, "~d api.test & ~c 500");
    assert_int_equal(cfg.n_modify_headers, 1);
    assert_int_equal(cfg.n_map_remote, 1);
    assert_int_equal(cfg.n_block_list, 1);
    assert_int_equal(rules_check(&cfg, err, sizeof(err)), 0);
    config_dispose(&cfg);

    assert_int_equal(config_parse(3, bad_pos, &cfg, err, sizeof(err)), 0);
    assert_int_equal(rules_check(&cfg, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "filter: ~c abc: expected a status code at column 4");
    config_dispose(&cfg);

    assert_int_equal(config_parse(3, bad_save, &cfg, err, sizeof(err)), 0);
    assert_null(cfg.view_filter);
    assert_int_equal(rules_check(&cfg, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "save_stream_filter: filter: ~q &: expected an expression at column 5");
    config_dispose(&cfg);

    assert_int_equal(config_parse(3, bad_rule, &cfg, err, sizeof(err)), 0);
    assert_int_equal(rules_check(&cfg, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "block_list: '/~d (/404': filter: ~d (: expected a regex at column 4");
    config_dispose(&cfg);

    assert_int_equal(config_parse(3, bad_dump, &cfg, err, sizeof(err)), 0);
    assert_int_equal(rules_check(&cfg, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "dumper_filter: filter: !: expected an expression at column 2");
    config_dispose(&cfg);
}

/* mitmproxy's human.parse_size: b/k/m/g, powers of 1024 */
static void test_rules_parse_size(void **state)
{
    static const struct {
        const char *in;
        int rc;
        size_t want;
    } cases[] = {
        {"2048", 0, 2048}, {"100b", 0, 100},          {"512k", 0, 512 << 10},
        {"3m", 0, 3 << 20}, {"1G", 0, (size_t)1 << 30}, {"", -EINVAL, 0},
        {"3x", -EINVAL, 0}, {"m", -EINVAL, 0},          {"0", -EINVAL, 0},
        {"3mb", -EINVAL, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t got = 0;

        assert_int_equal(rules_parse_size(cases[i].in, &got), cases[i].rc);
        if (cases[i].rc == 0)
            assert_int_equal(got, cases[i].want);
    }
}

/* modify_body: every matching spec in order, Python replacement syntax, hits counted; a
 * request-side filter does not match once the response is there */
static void test_rules_modify_body(void **state)
{
    static const char body[] = "user=alice&pass=secret&note=secret2";
    struct rules *r = rules_new();
    struct flow *f = malloc(sizeof(*f));
    struct rules_stat st[4];
    char err[256];
    uint8_t *out = NULL;
    size_t out_len = 0;

    (void)state;
    assert_non_null(r);
    assert_non_null(f);
    assert_int_equal(rules_add(r, RULES_MODIFY_BODY, "/~q/secret(\\d?)/X\\1X", err, sizeof(err)), 0);
    assert_int_equal(rules_add(r, RULES_MODIFY_BODY, "|alice|bob", err, sizeof(err)), 0);
    make_req(f, "POST", "https://api.test/login");
    assert_true(rules_body_wanted(r, f));
    assert_int_equal(rules_body_apply(r, f, (const uint8_t *)body, strlen(body), &out, &out_len),
                     0);
    assert_int_equal(out_len, strlen("user=bob&pass=XX&note=X2X"));
    assert_memory_equal(out, "user=bob&pass=XX&note=X2X", out_len);
    free(out);
    f->status = 200; /* the response side: ~q no longer matches, the second spec does */
    assert_int_equal(rules_body_apply(r, f, (const uint8_t *)body, strlen(body), &out, &out_len),
                     0);
    assert_memory_equal(out, "user=bob&pass=secret&note=secret2", out_len);
    free(out);
    assert_int_equal(rules_stats(r, st, 4), 2);
    assert_int_equal(st[0].hits, 1);
    assert_int_equal(st[1].hits, 2);
    assert_int_equal(rules_body_limit(r), RULES_BODY_LIMIT_DEFAULT); /* body_size_limit unset */
    rules_free(r);
    free(f);
}

/* map_local: the verdict names the first matching spec; a directory answers files under it,
 * index.html, 206/416 for a Range, 404 for a missing file and 403 for an escape */
static void test_rules_map_local(void **state)
{
    char dir[] = "/tmp/test_rules_ml.XXXXXX", path[256], spec[512], err[256];
    struct rules *r = rules_new();
    struct flow *f = malloc(sizeof(*f));
    struct rules_verdict v;
    struct maplocal_answer a;
    uint64_t rng = 1;
    uint8_t buf[64];
    FILE *fp;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/a.json", dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("0123456789", fp);
    fclose(fp);
    snprintf(path, sizeof(path), "%s/out", dir);
    assert_int_equal(symlink("/etc/hostname", path), 0);
    snprintf(spec, sizeof(spec), "|~m GET|//api.test/s/|%s", dir);
    assert_int_equal(rules_add(r, RULES_MAP_LOCAL, spec, err, sizeof(err)), 0);

    make_req(f, "GET", "https://api.test/s/a.json?x=1");
    assert_int_equal(rules_on_request_head(r, f, &rng, &v), 0);
    assert_int_equal(v.map_local, 1);
    assert_int_equal(rules_map_local(r, &v, f, NULL, 0, false, &a), 200);
    assert_string_equal(a.ctype, "application/json");
    assert_int_equal(maplocal_read(&a, buf, sizeof(buf)), 10);
    assert_memory_equal(buf, "0123456789", 10);
    maplocal_answer_close(&a);
    assert_int_equal(rules_map_local(r, &v, f, "bytes=2-4", 9, false, &a), 206);
    assert_string_equal(a.content_range, "bytes 2-4/10");
    assert_int_equal(maplocal_read(&a, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "234", 3);
    maplocal_answer_close(&a);
    assert_int_equal(rules_map_local(r, &v, f, "bytes=-3", 8, false, &a), 206);
    assert_string_equal(a.content_range, "bytes 7-9/10");
    maplocal_answer_close(&a);
    assert_int_equal(rules_map_local(r, &v, f, "bytes=10-", 9, false, &a), 416);
    assert_string_equal(a.content_range, "bytes */10");
    assert_int_equal(a.fd, -1);
    assert_int_equal(rules_map_local(r, &v, f, "bytes=1-2,5-6", 13, false, &a), 200);
    maplocal_answer_close(&a);

    make_req(f, "GET", "https://api.test/s/missing.css");
    assert_int_equal(rules_on_request_head(r, f, &rng, &v), 0);
    assert_int_equal(rules_map_local(r, &v, f, NULL, 0, false, &a), 404);
    make_req(f, "GET", "https://api.test/s/%2e%2e/%2e%2e/etc/passwd");
    assert_int_equal(rules_on_request_head(r, f, &rng, &v), 0);
    assert_int_equal(rules_map_local(r, &v, f, NULL, 0, false, &a), 403);
    make_req(f, "GET", "https://api.test/s/out");
    assert_int_equal(rules_on_request_head(r, f, &rng, &v), 0);
    assert_int_equal(rules_map_local(r, &v, f, NULL, 0, false, &a), 403);
    make_req(f, "POST", "https://api.test/s/a.json"); /* the filter (~m GET) does not match */
    assert_int_equal(rules_on_request_head(r, f, &rng, &v), 0);
    assert_int_equal(v.map_local, 0);

    unlink(path);
    snprintf(path, sizeof(path), "%s/a.json", dir);
    unlink(path);
    rmdir(dir);
    rules_free(r);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_bad_specs),
        cmocka_unit_test(test_rules_good_specs),
        cmocka_unit_test(test_rules_map_url),
        cmocka_unit_test(test_rules_may_remap_host),
        cmocka_unit_test(test_rules_request_verdicts),
        cmocka_unit_test(test_rules_faults),
        cmocka_unit_test(test_rules_response_head),
        cmocka_unit_test(test_rules_value_file),
        cmocka_unit_test(test_rules_check_config),
        cmocka_unit_test(test_rules_parse_size),
        cmocka_unit_test(test_rules_modify_body),
        cmocka_unit_test(test_rules_map_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
