/* test_rfile.c - cmocka tests of master/rfile's record to flow mapping: a flow written as a
 * -w record and read back gives the same flow line and matches the same filters (HTTP/1.1,
 * HTTP/2, IPv6, an error answer, a WebSocket, a request without response); lines that are
 * not flow records are refused with a reason; out-of-range values are not taken. */
#include "master/rfile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "worker/flowfilter.h"

static void base_flow(struct flow *f, int family)
{
    struct sockaddr_storage c = {0}, s = {0};

    flow_init(f);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&c, *b = (struct sockaddr_in *)&s;

        a->sin_family = b->sin_family = AF_INET;
        a->sin_port = htons(54321);
        b->sin_port = htons(8443);
        inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
        inet_pton(AF_INET, "10.0.0.2", &b->sin_addr);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&c, *b = (struct sockaddr_in6 *)&s;

        a->sin6_family = b->sin6_family = AF_INET6;
        a->sin6_port = htons(40000);
        b->sin6_port = htons(443);
        inet_pton(AF_INET6, "::1", &a->sin6_addr);
        inet_pton(AF_INET6, "2001:db8::2", &b->sin6_addr);
    }
    flow_set_client(f, (struct sockaddr *)&c, sizeof(c));
    flow_set_server(f, "api.test", (struct sockaddr *)&s, sizeof(s));
    flow_set_tls(f, "api.test", "h2", "TLSv1.3");
    flow_set_cert(f, "CN=api.test", "CN=Test CA");
    flow_begin(f);
    f->started.tv_sec = 1795798800;
    f->t_start = 1000;
    f->t_done = 1000 + 12345678; /* 12.3 ms */
    f->connect_ns = 1500000;
    f->tls_ns = 700000;
}

static void make_h1(struct flow *f)
{
    base_flow(f, AF_INET);
    flow_str_set(f, &f->method, "POST", 4);
    flow_str_set(f, &f->url, "https://api.test:8443/v1/items?id=7", 35);
    flow_str_set(f, &f->req_version, "HTTP/1.1", 8);
    flow_add_header(f, FLOW_REQUEST, "Host", 4, "api.test:8443", 13);
    flow_add_header(f, FLOW_REQUEST, "Content-Type", 12, "application/json", 16);
    f->req_body_size = 17;
    f->status = 201;
    flow_str_set(f, &f->reason, "Created", 7);
    flow_str_set(f, &f->resp_version, "HTTP/1.1", 8);
    flow_add_header(f, FLOW_RESPONSE, "Content-Type", 12, "text/html; charset=utf-8", 24);
    f->resp_body_size = 3 * 1024 * 1024;
}

static void make_h2_v6(struct flow *f)
{
    base_flow(f, AF_INET6);
    flow_str_set(f, &f->method, "GET", 3);
    flow_str_set(f, &f->url, "https://[2001:db8::2]/x", 23);
    flow_str_set(f, &f->req_version, "HTTP/2.0", 8);
    f->status = 404;
    flow_str_set(f, &f->resp_version, "HTTP/2.0", 8);
}

static void make_error(struct flow *f)
{
    base_flow(f, AF_INET);
    flow_str_set(f, &f->method, "GET", 3);
    flow_str_set(f, &f->url, "https://down.test/app.js", 24);
    flow_str_set(f, &f->req_version, "HTTP/1.1", 8);
    flow_set_answer(f, 502, "Bad Gateway", "20", 20, "cannot connect: refused\x01");
}

static void make_ws(struct flow *f)
{
    make_h1(f);
    f->status = 101;
    f->websocket = true;
    f->ws_messages[0] = 3;
    f->ws_messages[1] = 5;
    f->ws_bytes[0] = 100;
    f->ws_bytes[1] = 2000;
}

static void make_no_response(struct flow *f)
{
    make_h1(f);
    f->status = 0;
    f->n_resp_headers = 0;
    flow_set_error(f, "client closed");
}

/* make_noted: a flow from one of several listeners, with a rules note. */
static void make_noted(struct flow *f)
{
    make_h1(f);
    f->proxy_mode = "socks5@1080";
    f->proxy_mode_in_line = true;
    f->rules_note = "modify_body: body over body_size_limit, passed unchanged";
}

/* make_tunnelled: a CONNECT to another name and port than the Host field's; the line shows
 * the CONNECT target, as mitmdump's request.url. */
static void make_tunnelled(struct flow *f)
{
    make_h1(f);
    strcpy(f->target_host, "tunnel.test"); /* the server stays api.test at 10.0.0.2 */
    f->target_port = 9443;
    f->url_from_host = true;
}

/* make_replayed: a response from -S's recording. */
static void make_replayed(struct flow *f)
{
    make_h1(f);
    f->replayed = true;
}

/* make_client_replayed: a request -C sent: "[replay]" stands for the client. */
static void make_client_replayed(struct flow *f)
{
    make_h1(f);
    f->replay_request = true;
}

typedef void (*make_fn)(struct flow *);

static const char *const filters[] = {
    "~d api.test", "~m POST", "~c 201", "~t json", "~ts html", "~e", "~s", "~q",
    "~websocket", "~src 127.0.0.1", "~dst 10.0.0.2", "~h content-type", "~u /v1/", "~hq host",
    "~d tunnel.test",
};

/* Every flow written as a record and read back prints the same line and matches the same
 * filters. */
static void test_round_trip(void **state)
{
    static const make_fn makers[] = {make_h1,         make_h2_v6, make_error,
                                     make_ws,         make_no_response, make_noted,
                                     make_tunnelled,  make_replayed, make_client_replayed};
    struct rfile_strs keep;
    struct flow *a = test_malloc(sizeof(*a)), *b = test_malloc(sizeof(*b));
    char json[32768], la[1024], lb[1024];
    struct flowfilter *ff[sizeof(filters) / sizeof(filters[0])];
    char err[256];

    (void)state;
    for (size_t k = 0; k < sizeof(filters) / sizeof(filters[0]); k++)
        assert_int_equal(flowfilter_compile(filters[k], &ff[k], err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(makers) / sizeof(makers[0]); i++) {
        const char *why = NULL;
        ssize_t n, na, nb;

        makers[i](a);
        n = flow_format_json(a, json, sizeof(json));
        assert_true(n > 1);
        assert_int_equal(rfile_flow_from_line(json, (size_t)n - 1, b, &keep, &why), 0);
        b->proxy_mode_in_line = a->proxy_mode_in_line; /* rfile_run decides it per file */
        na = flow_format_line(a, la, sizeof(la) - 1);
        nb = flow_format_line(b, lb, sizeof(lb) - 1);
        assert_true(na > 0 && nb > 0);
        la[na] = lb[nb] = '\0';
        assert_string_equal(lb, la);
        assert_int_equal(b->n_req_headers, a->n_req_headers);
        assert_int_equal(b->n_resp_headers, a->n_resp_headers);
        assert_int_equal(b->req_body_size, a->req_body_size);
        assert_string_equal(b->sni, a->sni);
        assert_string_equal(b->server_host, a->server_host);
        assert_string_equal(b->target_host, a->url_from_host ? a->target_host : "");
        assert_int_equal(b->replayed, a->replayed);
        assert_int_equal(b->replay_request, a->replay_request);
        if (a->replay_request && strncmp(la, "[replay]: POST ", 15) != 0)
            fail_msg("a client replay's line: %s", la);
        for (size_t k = 0; k < sizeof(filters) / sizeof(filters[0]); k++)
            if (flowfilter_match(ff[k], a) != flowfilter_match(ff[k], b))
                fail_msg("flow %zu, filter %s: %d before, %d read back", i, filters[k],
                         flowfilter_match(ff[k], a), flowfilter_match(ff[k], b));
    }
    for (size_t k = 0; k < sizeof(filters) / sizeof(filters[0]); k++)
        flowfilter_free(ff[k]);
    test_free(a);
    test_free(b);
}

/* A duration is printed from the microseconds the record keeps, so the line read back is the
 * live one even on a rounding edge (CI once saw 1.5ms live and 1.6ms read back). */
static void test_duration_round_trip(void **state)
{
    static const uint64_t totals_ns[] = {
        1549500,   /* 1.5495 ms: "1.550" in the record */
        1549499,   /* just below: "1.549" */
        1550499,   /* a half microsecond below the next one */
        99949999,  /* the 0.1 s boundary of the line's formats */
        99950000,  /* "100.0ms" in both */
        999500000, /* the 1 s boundary */
        12345678,
    };
    struct rfile_strs keep;
    struct flow *a = test_malloc(sizeof(*a)), *b = test_malloc(sizeof(*b));
    char json[32768], la[1024], lb[1024];

    (void)state;
    for (size_t i = 0; i < sizeof(totals_ns) / sizeof(totals_ns[0]); i++) {
        const char *why = NULL;
        ssize_t n, na, nb;

        make_h2_v6(a);
        a->connect_ns = -1;
        a->tls_ns = -1;
        a->t_done = a->t_start + totals_ns[i];
        n = flow_format_json(a, json, sizeof(json));
        assert_true(n > 1);
        assert_int_equal(rfile_flow_from_line(json, (size_t)n - 1, b, &keep, &why), 0);
        na = flow_format_line(a, la, sizeof(la) - 1);
        nb = flow_format_line(b, lb, sizeof(lb) - 1);
        assert_true(na > 0 && nb > 0);
        la[na] = lb[nb] = '\0';
        if (strcmp(la, lb) != 0)
            fail_msg("%llu ns: live \"%s\", read back \"%s\"", (unsigned long long)totals_ns[i],
                     la, lb);
    }
    make_h2_v6(a);
    a->connect_ns = a->tls_ns = -1;
    a->t_done = a->t_start + 1549500;
    {
        ssize_t n = flow_format_json(a, json, sizeof(json));
        ssize_t na = flow_format_line(a, la, sizeof(la) - 1);

        assert_true(n > 0 && na > 0);
        json[n] = la[na] = '\0';
        if (strstr(json, "\"time\":1.550,") == NULL)
            fail_msg("1549500 ns: the record's time is not 1.550: %s", json);
        assert_non_null(strstr(la, " 1.6ms"));
    }
    test_free(a);
    test_free(b);
}

struct bad_case {
    const char *line;
    const char *why_has;
};

static void test_not_records(void **state)
{
    static const struct bad_case cases[] = {
        {"", "not JSON"},
        {"2041:5:state;", "not JSON"}, /* a mitmproxy flow file starts like this */
        {"[1,2]", "not a flow record"},
        {"{\"request\":{\"method\":\"GET\"}}", "not a flow record"},
        {"{\"request\":{\"url\":\"http://a/\"}}", "not a flow record"},
        {"{\"request\":{\"method\":1,\"url\":\"http://a/\"}}", "not a flow record"},
        {"{\"request\":\"GET\"}", "not a flow record"},
        {"{\"a\":1,\"a\":2,\"request\":{\"method\":\"GET\",\"url\":\"/\"}}", "not JSON"},
    };
    struct flow *f = test_malloc(sizeof(*f));

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = NULL;

        assert_int_equal(
            rfile_flow_from_line(cases[i].line, strlen(cases[i].line), f, NULL, &why), -EINVAL);
        assert_non_null(why);
        if (strstr(why, cases[i].why_has) == NULL)
            fail_msg("%s: why %s", cases[i].line, why);
    }
    test_free(f);
}

/* Values a recording never holds are not taken: a port over 65535, a status outside
 * 100-999, negative sizes and times, an address that is not one. */
static void test_out_of_range(void **state)
{
    static const char line[] =
        "{\"time\":-5,\"client\":{\"address\":\"not-an-ip\",\"port\":1},"
        "\"server\":{\"address\":\"10.0.0.1\",\"port\":70000,\"host\":\"x.test\"},"
        "\"request\":{\"method\":\"GET\",\"url\":\"http://x.test/\",\"bodySize\":-3,"
        "\"headers\":[{\"name\":\"A\"},7,{\"name\":\"B\",\"value\":\"b\"}]},"
        "\"response\":{\"status\":5000,\"bodySize\":\"big\"},\"websocket\":null,\"error\":7}";
    struct flow *f = test_malloc(sizeof(*f));
    const char *why = NULL;
    char out[512];
    ssize_t n;

    (void)state;
    assert_int_equal(rfile_flow_from_line(line, strlen(line), f, NULL, &why), 0);
    assert_int_equal(f->client_addr.ss_family, 0);
    assert_int_equal(f->server_addr.ss_family, 0);
    assert_int_equal(f->status, 0);
    assert_int_equal(f->req_body_size, 0);
    assert_int_equal(f->n_req_headers, 1); /* only the complete one */
    assert_false(f->websocket);
    assert_string_equal(f->error, "");
    n = flow_format_line(f, out, sizeof(out) - 1);
    assert_true(n > 0);
    out[n] = '\0';
    assert_string_equal(out, "-: GET http://x.test/ << error: no response\n");
    test_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_duration_round_trip),
        cmocka_unit_test(test_not_records),
        cmocka_unit_test(test_out_of_range),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
