/* test_flowfilter.c - cmocka tests of worker/flowfilter: every operator against recorded
 * flows (the meanings of mitmproxy 8.1.1), precedence and juxtaposition, pyparsing's quoting
 * rules, one-line errors with their columns, limits, and every prefix of valid expressions
 * (a prefix either compiles or fails with a message; never crashes). */
#include "worker/flowfilter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* make_get: 127.0.0.1:54321 -> api.test (10.0.0.2:443), GET https://api.test/v1/items?id=7,
 * answered 200 application/json. */
static void make_get(struct flow *f)
{
    struct sockaddr_in c = {.sin_family = AF_INET, .sin_port = htons(54321)};
    struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(443)};

    inet_pton(AF_INET, "127.0.0.1", &c.sin_addr);
    inet_pton(AF_INET, "10.0.0.2", &s.sin_addr);
    flow_init(f);
    flow_set_client(f, (struct sockaddr *)&c, sizeof(c));
    flow_set_server(f, "api.test", (struct sockaddr *)&s, sizeof(s));
    flow_begin(f);
    flow_str_set(f, &f->method, "GET", 3);
    flow_str_set(f, &f->url, "https://api.test/v1/items?id=7", 30);
    flow_add_header(f, FLOW_REQUEST, "Host", 4, "api.test", 8);
    flow_add_header(f, FLOW_REQUEST, "User-Agent", 10, "curl/7.88.1", 11);
    flow_add_header(f, FLOW_REQUEST, "Accept", 6, "*/*", 3);
    f->status = 200;
    flow_add_header(f, FLOW_RESPONSE, "Content-Type", 12, "application/json", 16);
    flow_add_header(f, FLOW_RESPONSE, "Server", 6, "nginx", 5);
}

/* make_pending: POST http://[::1]:8080/upload from [::1]:40000, no response yet, with a
 * form content type and a Host field naming another host than the URL. */
static void make_pending(struct flow *f)
{
    struct sockaddr_in6 c = {.sin6_family = AF_INET6, .sin6_port = htons(40000)};

    inet_pton(AF_INET6, "::1", &c.sin6_addr);
    flow_init(f);
    flow_set_client(f, (struct sockaddr *)&c, sizeof(c));
    flow_begin(f);
    flow_str_set(f, &f->method, "post", 4);
    flow_str_set(f, &f->url, "http://[::1]:8080/upload", 24);
    flow_add_header(f, FLOW_REQUEST, "Host", 4, "Upload.Example:8080", 19);
    flow_add_header(f, FLOW_REQUEST, "Content-Type", 12, "multipart/form-data; b=x", 24);
    f->req_body_size = 1000;
}

/* make_error: GET https://down.test/ answered 502 by mitmd with an error, an asset type */
static void make_error(struct flow *f)
{
    flow_init(f);
    flow_set_server(f, "down.test", NULL, 0);
    flow_begin(f);
    flow_str_set(f, &f->method, "GET", 3);
    flow_str_set(f, &f->url, "https://down.test/app.js", 24);
    flow_set_answer(f, 502, "Bad Gateway", "20", 20, "connection refused");
}

/* make_other_host: a CONNECT to tunnel.test:443, where the request's Host field names
 * api.test (the URL's host, url_from_host): mitmproxy's request.host is tunnel.test. */
static void make_other_host(struct flow *f)
{
    make_get(f);
    flow_set_target(f, "tunnel.test", 443); /* the upstream stays api.test */
    f->url_from_host = true;
}

/* make_other_abs: the same target, with a URL that did not come from the Host field (an
 * absolute target, the reverse rewrite): the URL's host is request.host. */
static void make_other_abs(struct flow *f)
{
    make_other_host(f);
    f->url_from_host = false;
}

static void make_ws(struct flow *f)
{
    make_get(f);
    f->status = 101;
    f->n_resp_headers = 0;
    flow_add_header(f, FLOW_RESPONSE, "Upgrade", 7, "WebSocket", 9);
    flow_add_header(f, FLOW_RESPONSE, "Content-Type", 12, "image/png", 9);
}

/* make_kelvin: a host with U+212A KELVIN SIGN, which Unicode folds onto k */
static void make_kelvin(struct flow *f)
{
    flow_init(f);
    flow_begin(f);
    flow_str_set(f, &f->method, "GET", 3);
    flow_str_set(f, &f->url, "https://\xe2\x84\xaa.test/", 16);
}

typedef void make_fn(struct flow *f);

struct match_case {
    const char *expr;
    make_fn *make;
    bool want;
    const char *note;
};

static const struct match_case match_cases[] = {
    {"~all", make_get, true, "~all matches everything"},
    {"~http", make_pending, true, "every mitmd flow is HTTP"},
    {"~tcp | ~dns | ~marked | ~replay", make_get, false, "kinds mitmd never has"},
    {"~q", make_get, false, "~q: request with no response"},
    {"~q", make_pending, true, "no response yet"},
    {"~s", make_get, true, "~s: has a response"},
    {"~s", make_pending, false, "no response"},
    {"~c 200", make_get, true, "status equal"},
    {"~c 0200", make_get, true, "leading zero, as int()"},
    {"~c 404", make_get, false, "status differs"},
    {"~c 0", make_pending, false, "no response never matches a code"},
    {"~c 502", make_error, true, "mitmd's own answer has its status"},
    {"~e", make_error, true, "error text set"},
    {"~e", make_get, false, "no error"},
    {"~u items", make_get, true, "URL search, unanchored"},
    {"~u ^https://api\\.test/v1/", make_get, true, "anchored regex, backslash kept unquoted"},
    {"~u ITEMS", make_get, false, "~u is case-sensitive (mitmproxy 8)"},
    {"items", make_get, true, "a bare regex is ~u"},
    {"id=7", make_get, true, "bare regex with ="},
    {"~u id=8", make_get, false, "no such query"},
    {"~d api.test", make_get, true, "URL host"},
    {"~d ^api\\.test$", make_get, true, "host without port or scheme"},
    {"~d API.TEST", make_get, true, "~d ignores case"},
    {"~d ^::1$", make_pending, true, "IPv6 host without brackets"},
    {"~d ^upload\\.example$", make_pending, true, "Host field's host, port dropped"},
    {"~d 8080", make_pending, false, "the port is not part of the domain"},
    {"~d ^tunnel\\.test$", make_other_host, true, "the CONNECT target (request.host) too"},
    {"~d ^api\\.test$", make_other_host, true, "... and the Host field's host"},
    {"~d ^api\\.test$ & ~d tunnel", make_other_host, true, "both, in one flow"},
    {"~d ^down\\.test$", make_other_host, false, "neither"},
    {"~d ^tunnel\\.test$", make_other_abs, false, "URL not from the Host field: its host only"},
    {"~m GET", make_get, true, "method"},
    {"~m POST", make_pending, true, "~m ignores case"},
    {"~m PUT", make_get, false, "other method"},
    {"~h \"User-Agent: curl\"", make_get, true, "request field line"},
    {"~h ^Server:\\snginx", make_get, true, "response field line, MULTILINE ^"},
    {"~h user-agent", make_get, false, "~h is case-sensitive"},
    {"~hq Server", make_get, false, "~hq: request only"},
    {"~hs Server", make_get, true, "~hs: response"},
    {"~hs Host", make_get, false, "~hs: not the request"},
    {"~hs .", make_pending, false, "~hs without a response"},
    {"~h \"curl/7.88.1$\"", make_get, false, "$ does not match before \\r\\n (bytes(headers))"},
    {"~h \"curl/7.88.1\\r$\"", make_get, true, "... but after the \\r"},
    {"~t json", make_get, true, "~t: response content type"},
    {"~t form-data", make_pending, true, "~t: request content type"},
    {"~tq json", make_get, false, "~tq: request only"},
    {"~ts json", make_get, true, "~ts: response"},
    {"~ts form", make_pending, false, "~ts without a response"},
    {"~a", make_get, false, "json is not an asset"},
    {"~a", make_error, false, "text/plain answer is not an asset"},
    {"~a", make_ws, true, "image/png is an asset"},
    {"~websocket", make_ws, true, "101 with Upgrade: websocket"},
    {"~websocket", make_get, false, "plain exchange"},
    {"~src ^127\\.0\\.0\\.1:54321$", make_get, true, "client ADDR:PORT"},
    {"~src ^::1:40000$", make_pending, true, "IPv6 client without brackets"},
    {"~src 10.0.0.2", make_get, false, "not the server"},
    {"~dst ^api\\.test:443$", make_get, true, "upstream name and port connected to"},
    {"~dst ^down\\.test:443$", make_error, true, "not connected: the URL's default port"},
    {"~dst .", make_pending, false, "no upstream at all"},
    {"~b .", make_get, false, "bodies are not kept: ~b matches nothing"},
    {"!~bq x", make_pending, true, "... so !~bq matches everything"},
    {"~meta x", make_get, false, "no metadata: regex against \"\""},
    {"~comment \"\"", make_get, true, "empty regex matches the empty comment"},
    {"!~q", make_get, true, "not"},
    {"!!~q", make_get, false, "double not"},
    {"~q | ~c 200", make_get, true, "or"},
    {"~q & ~c 200", make_get, false, "and"},
    {"~m GET ~c 200", make_get, true, "juxtaposition is and"},
    {"~m GET ~c 404", make_get, false, "juxtaposition is and (false)"},
    {"~c 404 | ~c 200 & ~m PUT", make_get, false, "& binds tighter than |"},
    {"~c 200 | ~c 404 & ~m PUT", make_get, true, "& binds tighter than | (2)"},
    {"~q ~s | ~c 200", make_get, false, "juxtaposition is weaker than |: ~q & (~s | ~c 200)"},
    {"(~q | ~s) & ~m GET", make_get, true, "parentheses"},
    {"!(~q | ~s)", make_get, false, "not of a group"},
    {"!(~q & ~t \"text/html\")", make_get, true, "mitmproxy docs example"},
    {"( ~c 200 )", make_get, true, "spaces inside parentheses"},
    {"(~c 200)", make_get, true, "accepted without spaces (mitmproxy rejects)"},
    {"~u items&~c 404", make_get, false, "& inside a bare word ends at ~: ~u 'items&' & ~c 404"},
    {"~d \"api.test\"", make_get, true, "double-quoted regex"},
    {"~d 'api.test'", make_get, true, "single-quoted regex"},
    {"~u \"v1/items\\?id\"", make_get, false, "\\? in quotes becomes ? (pyparsing): '1/item' + 's?id'"},
    {"~u \"v1/items\\\\?id\"", make_get, true, "\\\\? in quotes is the regex \\?"},
    {"~u \"^https://api\"", make_get, true, "quoted with ://"},
    {"~u \"\"", make_get, true, "empty quoted regex matches"},
    {"~d api \"v1\"", make_get, true, "quoted bare regex after an operator"},
    /* plain strings are searched without PCRE2: same answers */
    {"~d API\\.TEST", make_get, true, "literal, caseless"},
    {"~d api\\.tesx", make_get, false, "literal, caseless, no match"},
    {"~m post", make_pending, true, "literal method, caseless"},
    {"~u items?id", make_get, false, "? is a quantifier: 'item' 's'? 'id'"},
    {"~u items\\?id", make_get, true, "escaped ? is literal"},
    {"~u V1", make_get, false, "literal ~u is case-sensitive"},
    {"~d k", make_kelvin, true, "KELVIN SIGN folds onto k (Python and PCRE2 agree)"},
    {"~d K\\.test", make_kelvin, true, "... also in a longer literal"},
    {"~u k", make_kelvin, false, "~u is case-sensitive: no folding"},
    {"~hq \"Accept: \\*/\\*\"", make_get, true, "escaped * in quotes (\\\\*) is literal"},
};

static void test_flowfilter_match_table(void **state)
{
    (void)state;
    struct flow *f = malloc(sizeof(*f));
    char err[512];

    assert_non_null(f);
    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        const struct match_case *c = &match_cases[i];
        struct flowfilter *ff = NULL;
        int e;

        err[0] = '\0';
        e = flowfilter_compile(c->expr, &ff, err, sizeof(err));
        if (e != 0)
            fail_msg("%s: %s (%s)", c->expr, err, c->note);
        c->make(f);
        if (flowfilter_match(ff, f) != c->want)
            fail_msg("'%s' should %smatch: %s", c->expr, c->want ? "" : "not ", c->note);
        /* a second evaluation gives the same answer (scratch reused) */
        assert_true(flowfilter_match(ff, f) == c->want);
        flowfilter_free(ff);
    }
    free(f);
}

struct error_case {
    const char *expr;
    const char *want; /* the whole message */
    const char *note;
};

static const struct error_case error_cases[] = {
    {"~c abc", "filter: ~c abc: expected a status code at column 4", "the brief's example"},
    {"~c", "filter: ~c: expected a status code at column 3", "missing code"},
    {"~c 200x", "filter: ~c 200x: expected a status code at column 4",
     "mitmproxy reads 200 & ~u x; mitmd refuses"},
    {"~c 1000", "filter: ~c 1000: status code out of range (0 to 999) at column 4", "range"},
    {"", "filter: : empty filter expression at column 1", "empty"},
    {"   ", "filter:    : expected an expression at column 4", "blank"},
    {"~foo", "filter: ~foo: unknown operator '~foo' at column 1", "unknown operator"},
    {"~q ~Q", "filter: ~q ~Q: unknown operator '~Q' at column 4", "names are lower case"},
    {"~h", "filter: ~h: expected a regex at column 3", "missing regex"},
    {"~h ", "filter: ~h : expected a regex at column 4", "missing regex after space"},
    {"~d\"x\"", "filter: ~d\"x\": expected a space after ~d at column 3", "as mitmproxy"},
    {"~q~s", "filter: ~q~s: expected a space after ~q at column 3", "as mitmproxy"},
    {"(~q", "filter: (~q: unclosed '(' at column 1", "unclosed"},
    {"~q)", "filter: ~q): unexpected ')' at column 3", "stray )"},
    {"()", "filter: (): expected an expression before ')' at column 2", "empty group"},
    {"~q &", "filter: ~q &: expected an expression at column 5",
     "dangling & (mitmproxy reads ~u &)"},
    {"~q | ", "filter: ~q | : expected an expression at column 6", "dangling |"},
    {"!", "filter: !: expected an expression at column 2", "dangling !"},
    {"~u \"abc", "filter: ~u \"abc: unterminated quoted regex at column 4", "quote"},
    {"'a\nb'", "filter: 'a\nb': unterminated quoted regex at column 1", "no raw newline in quotes"},
    {"~u [", "filter: ~u [: bad regex '[': missing terminating ] for character class at column 5",
     "PCRE2's message, column at the regex's end"},
    {"a(b", "filter: a(b: unclosed '(' at column 2", "( ends a bare word: a (b"},
    {"~d x)", "filter: ~d x): unexpected ')' at column 5", "as mitmproxy"},
};

static void test_flowfilter_errors(void **state)
{
    (void)state;
    char err[512];

    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        const struct error_case *c = &error_cases[i];
        struct flowfilter *ff = NULL;

        err[0] = '\0';
        if (flowfilter_compile(c->expr, &ff, err, sizeof(err)) != -EINVAL)
            fail_msg("'%s' compiled (%s)", c->expr, c->note);
        assert_null(ff);
        if (strcmp(err, c->want) != 0)
            fail_msg("'%s': got \"%s\", want \"%s\" (%s)", c->expr, err, c->want, c->note);
        assert_int_equal(flowfilter_check(c->expr, err, sizeof(err)), -EINVAL);
    }
}

/* Limits: nesting, node count and length fail with a message rather than recursing. */
static void test_flowfilter_limits(void **state)
{
    (void)state;
    char expr[FLOWFILTER_MAX_LEN + 2];
    char err[512];
    struct flowfilter *ff = NULL;
    size_t n = 0;

    for (int i = 0; i < FLOWFILTER_MAX_DEPTH + 1; i++)
        expr[n++] = '(';
    expr[n++] = 'x';
    for (int i = 0; i < FLOWFILTER_MAX_DEPTH + 1; i++)
        expr[n++] = ')';
    expr[n] = '\0';
    assert_int_equal(flowfilter_compile(expr, &ff, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "nested too deeply"));

    memset(expr, '!', FLOWFILTER_MAX_DEPTH - 1);
    strcpy(expr + FLOWFILTER_MAX_DEPTH - 1, "~q");
    assert_int_equal(flowfilter_compile(expr, &ff, err, sizeof(err)), 0);
    flowfilter_free(ff);

    n = 0;
    for (int i = 0; i < FLOWFILTER_MAX_NODES; i++) {
        memcpy(expr + n, "~q ", 3);
        n += 3;
    }
    expr[n] = '\0';
    assert_int_equal(flowfilter_compile(expr, &ff, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "too many operators"));

    memset(expr, 'a', FLOWFILTER_MAX_LEN + 1);
    expr[FLOWFILTER_MAX_LEN + 1] = '\0';
    assert_int_equal(flowfilter_compile(expr, &ff, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "expression too long"));
    expr[FLOWFILTER_MAX_LEN] = '\0';
    assert_int_equal(flowfilter_compile(expr, &ff, err, sizeof(err)), 0);
    flowfilter_free(ff);
}

/* A runaway regex stops at PCRE2's match limit and counts as no match. */
static void test_flowfilter_runaway_regex(void **state)
{
    (void)state;
    struct flow *f = malloc(sizeof(*f));
    struct flowfilter *ff = NULL;
    char url[2048];
    char err[256];

    assert_non_null(f);
    memset(url, 'a', sizeof(url));
    flow_init(f);
    flow_begin(f);
    flow_str_set(f, &f->url, url, sizeof(url));
    assert_int_equal(flowfilter_compile("\"(a|aa)+(a|aa)+b\"", &ff, err, sizeof(err)), 0);
    assert_false(flowfilter_match(ff, f));
    flowfilter_free(ff);
    free(f);
}

/* Every prefix of a valid expression compiles or fails with a one-line message. */
static void test_flowfilter_prefixes(void **state)
{
    (void)state;
    static const char full[] = "!(~d \"api\\\\.test\" & ~c 200) | ~hq 'x-a: b' ~m GET ~src ^127";
    char expr[sizeof(full)];
    char err[512];

    for (size_t n = 0; n < sizeof(full); n++) {
        struct flowfilter *ff = NULL;
        int e;

        memcpy(expr, full, n);
        expr[n] = '\0';
        err[0] = '\0';
        e = flowfilter_compile(expr, &ff, err, sizeof(err));
        if (e == 0) {
            assert_non_null(ff);
            assert_string_equal(flowfilter_expr(ff), expr);
        } else {
            assert_int_equal(e, -EINVAL);
            assert_null(ff);
            assert_non_null(strstr(err, " at column "));
        }
        flowfilter_free(ff);
    }
}

/* dirty_stack fills the stack below the caller with 'A's, as a previous deep call would. */
static __attribute__((noinline)) void dirty_stack(void)
{
    volatile char junk[8192];

    memset((char *)junk, 'A', sizeof(junk));
}

/* A flow without a Host field (an HTTP/2 request: :authority only) and a ~d that does not
 * match its URL: flowfilter_match's own memo must not read a Host field's host it never
 * found (it read whatever the stack held: UBSan "invalid bool", a wild pointer). */
static void test_flowfilter_no_host_field(void **state)
{
    struct flow *f = test_malloc(sizeof(*f));
    struct flowfilter *ff;
    char err[256];

    (void)state;
    flow_init(f);
    flow_begin(f);
    flow_str_set(f, &f->method, "GET", 3);
    flow_str_set(f, &f->url, "https://h2.test/x", 17);
    assert_int_equal(flowfilter_compile("~d nomatch", &ff, err, sizeof(err)), 0);
    for (int i = 0; i < 3; i++) {
        dirty_stack();
        assert_false(flowfilter_match(ff, f));
    }
    flowfilter_free(ff);
    assert_int_equal(flowfilter_compile("~d ^h2\\.test$", &ff, err, sizeof(err)), 0);
    dirty_stack();
    assert_true(flowfilter_match(ff, f));
    flowfilter_free(ff);
    test_free(f);
}

static void test_flowfilter_null_and_body(void **state)
{
    (void)state;
    struct flow *f = malloc(sizeof(*f));
    struct flowfilter *ff = NULL;
    char err[256];

    assert_non_null(f);
    make_get(f);
    assert_true(flowfilter_match(NULL, f)); /* no filter: everything */
    flowfilter_free(NULL);
    assert_int_equal(flowfilter_compile("~c 200", &ff, err, sizeof(err)), 0);
    assert_false(flowfilter_uses_body(ff));
    flowfilter_free(ff);
    assert_int_equal(flowfilter_compile("~c 200 | ~bs token", &ff, err, sizeof(err)), 0);
    assert_true(flowfilter_uses_body(ff));
    flowfilter_free(ff);
    /* the body regex is still checked */
    assert_int_equal(flowfilter_compile("~b (", &ff, err, sizeof(err)), -EINVAL);
    assert_int_equal(flowfilter_compile("~b \"(\"", &ff, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "bad regex"));
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flowfilter_match_table),
        cmocka_unit_test(test_flowfilter_errors),
        cmocka_unit_test(test_flowfilter_limits),
        cmocka_unit_test(test_flowfilter_runaway_regex),
        cmocka_unit_test(test_flowfilter_prefixes),
        cmocka_unit_test(test_flowfilter_null_and_body),
        cmocka_unit_test(test_flowfilter_no_host_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
