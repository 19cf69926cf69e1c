/* test_flow.c - cmocka tests of worker/flow: console line, sizes, JSON Lines records checked by
 * Python's json module, string escaping (control characters, invalid UTF-8), arena limits.
 * Includes flow.c to reach the static JSON string writer. */
#include "worker/flow.c"

#include <setjmp.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

/* make_flow builds a typical finished exchange: 127.0.0.1:54321 -> example.test:443. */
static void make_flow(struct flow *f, int status, uint64_t resp_body, uint64_t elapsed_ms)
{
    struct sockaddr_in c = {.sin_family = AF_INET, .sin_port = htons(54321)};
    struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(443)};

    inet_pton(AF_INET, "127.0.0.1", &c.sin_addr);
    inet_pton(AF_INET, "127.0.0.2", &s.sin_addr);
    flow_init(f);
    flow_set_client(f, (struct sockaddr *)&c, sizeof(c));
    flow_set_server(f, "example.test", (struct sockaddr *)&s, sizeof(s));
    flow_begin(f);
    f->started.tv_sec = 1795798800; /* 2026-11-27T17:00:00Z */
    f->started.tv_nsec = 123456789;
    f->t_start = 1000000000;
    f->t_request_sent = f->t_start + 100000;
    f->t_response_first = f->t_start + 3000000;
    f->t_done = f->t_start + elapsed_ms * 1000000;
    flow_str_set(f, &f->method, "GET", 3);
    flow_str_set(f, &f->url, "https://example.test/path", 25);
    flow_str_set(f, &f->req_version, "HTTP/1.1", 8);
    f->status = status;
    if (status != 0) {
        const char *reason = status == 200 ? "OK" : "Bad Gateway";

        flow_str_set(f, &f->reason, reason, strlen(reason));
        flow_str_set(f, &f->resp_version, "HTTP/1.1", 8);
    }
    f->resp_body_size = resp_body;
    flow_add_header(f, FLOW_REQUEST, "Host", 4, "example.test", 12);
}

struct size_case {
    const char *note;
    uint64_t bytes;
    const char *want;
};

static const struct size_case size_cases[] = {
    {"zero bytes", 0, "0b"},
    {"bytes below 1 KiB stay exact", 512, "512b"},
    {"largest byte count", 1023, "1023b"},
    {"exactly 1 KiB", 1024, "1.0k"},
    {"1.2 KiB rounds to one decimal", 1229, "1.2k"},
    {"just under 1 MiB stays in k", 1024 * 1024 - 1, "1024.0k"},
    {"10 MiB", 10u * 1024 * 1024, "10.0m"},
    {"3 GiB", 3ull * 1024 * 1024 * 1024, "3.0g"},
    {"2 TiB", 2ull << 40, "2.0t"},
};

static void test_format_size(void **state)
{
    char out[32];

    (void)state;
    for (size_t i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
        const struct size_case *c = &size_cases[i];
        ssize_t n = flow_format_size(c->bytes, out, sizeof(out));

        if (n < 0 || strcmp(out, c->want) != 0 || (size_t)n != strlen(c->want))
            fail_msg("%s: got \"%s\" (%zd), want \"%s\"", c->note, out, n, c->want);
    }
    assert_int_equal(flow_format_size(512, out, 4), -ENOSPC); /* "512b" needs 5 with NUL */
}

struct line_case {
    const char *note;
    int status;
    uint64_t resp_body;
    uint64_t elapsed_ms;
    const char *error;
    bool ipv6;
    const char *want;
};

static const struct line_case line_cases[] = {
    {"a normal exchange, mitmdump-like", 200, 1229, 35, NULL, false,
     "127.0.0.1:54321: GET https://example.test/path HTTP/1.1 << 200 OK 1.2k 35.0ms\n"},
    {"answered error carries its text", 502, 52, 3, "certificate verify failed: certificate has expired",
     false,
     "127.0.0.1:54321: GET https://example.test/path HTTP/1.1 << 502 Bad Gateway 52b 3.0ms "
     "error: certificate verify failed: certificate has expired\n"},
    {"no response at all", 0, 0, 10, "client closed while sending the request body", false,
     "127.0.0.1:54321: GET https://example.test/path HTTP/1.1 << error: client closed while "
     "sending the request body\n"},
    {"durations of seconds", 200, 10u * 1024 * 1024, 1250, NULL, false,
     "127.0.0.1:54321: GET https://example.test/path HTTP/1.1 << 200 OK 10.0m 1.25s\n"},
    {"IPv6 client in brackets", 200, 0, 0, NULL, true,
     "[::1]:54321: GET https://example.test/path HTTP/1.1 << 200 OK 0b 0.0ms\n"},
    {"control bytes in an error are shown as \\xNN", 0, 0, 1, "bad\r\nthing", false,
     "127.0.0.1:54321: GET https://example.test/path HTTP/1.1 << error: bad\\x0d\\x0athing\n"},
};

/* struct url_case: the URL a flow line shows, as mitmdump shows request.url by default and
 * pretty_url with --showhost (mitmproxy's addons/dumper.py). */
struct url_case {
    const char *note;
    const char *url;      /* as recorded (the Host field's authority when from_host) */
    bool from_host;
    const char *host;     /* target_host: the target the client addressed */
    uint16_t port;
    bool showhost;
    const char *want;     /* the URL in the line */
};

static const struct url_case url_cases[] = {
    {"CONNECT to one name, Host naming another: the CONNECT target", "https://b.test/p?q=1",
     true, "a.test", 443, false, "https://a.test/p?q=1"},
    {"--showhost: the Host field's", "https://b.test/p?q=1", true, "a.test", 443, true,
     "https://b.test/p?q=1"},
    {"the target's port when not the scheme's", "https://b.test:8443/x", true, "a.test", 9443,
     false, "https://a.test:9443/x"},
    {"the scheme's port is left out, even if the Host field gave one", "http://b.test:81/", true,
     "a.test", 80, false, "http://a.test/"},
    {"a transparent destination, IPv6: bracketed", "https://www.test/w", true, "2001:db8::1",
     443, false, "https://[2001:db8::1]/w"},
    {"port unknown (0): none written", "https://b.test:8443/x", true, "a.test", 0, false,
     "https://a.test/x"},
    {"no path: the authority only", "https://b.test", true, "a.test", 443, false,
     "https://a.test"},
    {"a query straight after the authority", "http://b.test?x", true, "a.test", 8080, false,
     "http://a.test:8080?x"},
    {"an absolute target is shown as sent", "http://b.test/p", false, "a.test", 80, false,
     "http://b.test/p"},
    {"no target known", "https://b.test/p", true, "", 0, false, "https://b.test/p"},
    {"not scheme://authority (an invalid target): as it is", "/relative", true, "a.test", 443,
     false, "/relative"},
    {"WebSocket scheme wss: 443 is its default", "wss://b.test/ws", true, "a.test", 443, false,
     "wss://a.test/ws"},
    {"'://' later in a URL without a scheme: as it is", "/r?u=http://b.test/", true, "a.test",
     443, false, "/r?u=http://b.test/"},
};

static void test_line_url(void **state)
{
    struct flow *f = test_malloc(sizeof(*f));
    char line[512], want[512];
    ssize_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
        const struct url_case *c = &url_cases[i];

        make_flow(f, 200, 10, 1);
        flow_set_target(f, c->host, c->port);
        f->showhost = c->showhost;
        flow_str_set(f, &f->url, c->url, strlen(c->url));
        f->url_from_host = c->from_host;
        n = flow_format_line(f, line, sizeof(line) - 1);
        assert_true(n > 0);
        line[n] = '\0';
        snprintf(want, sizeof(want), "127.0.0.1:54321: GET %s HTTP/1.1 << 200 OK 10b 1.0ms\n",
                 c->want);
        if (strcmp(line, want) != 0)
            fail_msg("%s: got %s want %s", c->note, line, want);
    }
    /* WebSocket message lines name the target whatever showhost says (mitmdump's) */
    flow_str_set(f, &f->url, "https://b.test/ws", 17);
    f->url_from_host = true;
    f->showhost = true;
    n = flow_format_ws_message(f, true, 1, 5, line, sizeof(line) - 1);
    assert_true(n > 0);
    line[n] = '\0';
    assert_non_null(strstr(line, " https://a.test/ws 5b\n"));
    /* flow_begin clears url_from_host (an exchange field); showhost and the target stay */
    f->showhost = true;
    flow_begin(f);
    assert_false(f->url_from_host);
    assert_true(f->showhost);
    assert_string_equal(f->target_host, "a.test");
    test_free(f);
}

/* The console line and the JSON record give one time: the exchange plus the upstream connect
 * and TLS handshake it waited for, with a tenth of a millisecond below 100 ms. */
static void test_line_time_is_record_time(void **state)
{
    struct flow *f = test_malloc(sizeof(*f));
    char line[512], json[16384];
    ssize_t n;

    (void)state;
    make_flow(f, 200, 10, 0);
    f->t_done = f->t_start + 500000; /* 0.5 ms exchange */
    f->connect_ns = 1500000;         /* 1.5 ms connect */
    f->tls_ns = 700000;              /* 0.7 ms handshake */
    n = flow_format_line(f, line, sizeof(line) - 1);
    assert_true(n > 0);
    line[n] = '\0';
    assert_non_null(strstr(line, " 10b 2.7ms\n"));
    n = flow_format_json(f, json, sizeof(json) - 1);
    assert_true(n > 0);
    json[n] = '\0';
    assert_non_null(strstr(json, "\"time\":2.7"));
    test_free(f);
}

static void test_format_line(void **state)
{
    char out[512];

    (void)state;
    for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
        const struct line_case *c = &line_cases[i];
        struct flow *f = test_malloc(sizeof(*f));
        ssize_t n;

        make_flow(f, c->status, c->resp_body, c->elapsed_ms);
        if (c->error != NULL)
            flow_set_error(f, c->error);
        if (c->ipv6) {
            struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(54321)};

            inet_pton(AF_INET6, "::1", &a.sin6_addr);
            flow_set_client(f, (struct sockaddr *)&a, sizeof(a));
        }
        n = flow_format_line(f, out, sizeof(out));
        if (n < 0 || (size_t)n != strlen(c->want) || memcmp(out, c->want, (size_t)n) != 0)
            fail_msg("%s: got \"%.*s\", want \"%s\"", c->note, n < 0 ? 0 : (int)n, out, c->want);
        /* every shorter buffer is refused, never a partial line */
        for (size_t cap = 0; cap < (size_t)n; cap++)
            assert_int_equal(flow_format_line(f, out, cap), -ENOSPC);
        test_free(f);
    }
}

struct esc_case {
    const char *note;
    const char *in;
    size_t len;
    const char *want;
};

#define E(note, in, want) {note, in, sizeof(in) - 1, want}

static const struct esc_case esc_cases[] = {
    E("plain ASCII unchanged", "abc", "\"abc\""),
    E("quote and backslash escaped", "a\"b\\c", "\"a\\\"b\\\\c\""),
    E("control characters as \\u00XX", "\x01\t\n\x1f", "\"\\u0001\\u0009\\u000a\\u001f\""),
    E("DEL escaped too", "\x7f", "\"\\u007f\""),
    E("NUL inside a value", "a\0b", "\"a\\u0000b\""),
    E("valid 2-byte UTF-8 kept", "caf\xc3\xa9", "\"caf\xc3\xa9\""),
    E("valid 3-byte UTF-8 kept", "\xe2\x82\xac", "\"\xe2\x82\xac\""),
    E("valid 4-byte UTF-8 kept", "\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""),
    E("lone byte 0xff -> U+FFFD", "a\xff" "b", "\"a\xef\xbf\xbd" "b\""),
    E("lone continuation byte -> U+FFFD", "\x80", "\"\xef\xbf\xbd\""),
    E("overlong 0xc0 0xaf -> two U+FFFD", "\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\""),
    E("surrogate half ED A0 80 -> three U+FFFD", "\xed\xa0\x80",
      "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""),
    E("truncated 3-byte sequence at the end", "x\xe2\x82", "\"x\xef\xbf\xbd\xef\xbf\xbd\""),
    E("above U+10FFFF rejected", "\xf4\x90\x80\x80",
      "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""),
};

static void test_json_escape(void **state)
{
    char buf[256];

    (void)state;
    for (size_t i = 0; i < sizeof(esc_cases) / sizeof(esc_cases[0]); i++) {
        const struct esc_case *c = &esc_cases[i];
        struct out o = {.p = buf, .cap = sizeof(buf)};

        out_json_string(&o, c->in, c->len);
        assert_false(o.overflow);
        if (o.len != strlen(c->want) || memcmp(buf, c->want, o.len) != 0)
            fail_msg("%s: got \"%.*s\", want \"%s\"", c->note, (int)o.len, buf, c->want);
    }
}

/* run_python writes `json` to a file and runs a Python check script on it; returns its exit
 * status (0 = the JSON parsed and every assertion held). */
static int run_python(const char *json, size_t len, const char *script)
{
    char dir[] = "/tmp/test_flow.XXXXXX";
    char jpath[64], ppath[64], cmd[256];
    FILE *fp;
    int rc;

    assert_non_null(mkdtemp(dir));
    snprintf(jpath, sizeof(jpath), "%s/flow.json", dir);
    snprintf(ppath, sizeof(ppath), "%s/check.py", dir);
    fp = fopen(jpath, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(json, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    fp = fopen(ppath, "w");
    assert_non_null(fp);
    fputs("import json, sys\nraw = open(sys.argv[1], 'rb').read()\n"
          "assert raw.endswith(b'\\n') and raw.count(b'\\n') == 1, 'one line'\n"
          "d = json.loads(raw.decode('utf-8'))\n", fp);
    fputs(script, fp);
    assert_int_equal(fclose(fp), 0);
    snprintf(cmd, sizeof(cmd), "python3 %s %s", ppath, jpath);
    rc = system(cmd);
    unlink(jpath);
    unlink(ppath);
    rmdir(dir);
    return rc;
}

static void test_json_full_record(void **state)
{
    struct flow *f = test_malloc(sizeof(*f));
    static char json[65536];
    ssize_t n;

    (void)state;
    make_flow(f, 200, 1024, 12);
    flow_set_tls(f, "example.test", "http/1.1", "TLSv1.3");
    flow_set_cert(f, "CN=example.test", "CN=Test CA,O=Test");
    f->connect_ns = 1100000;
    f->tls_ns = 2200000;
    f->proxy_mode = "socks5@1080"; /* the listener it came in on */
    flow_add_header(f, FLOW_REQUEST, "X-Ctl", 5, "a\x01\"b\\\n", 6);
    flow_add_header(f, FLOW_REQUEST, "X-Bin", 5, "\xff\xfe ok \xc3\xa9", 8);
    flow_add_header(f, FLOW_RESPONSE, "Content-Length", 14, "1024", 4);
    f->req_body_size = 0;
    n = flow_format_json(f, json, sizeof(json));
    assert_true(n > 0);
    assert_int_equal(
        run_python(json, (size_t)n,
                   "assert d['startedDateTime'] == '2026-11-27T17:00:00.123Z', d['startedDateTime']\n"
                   "assert abs(d['time'] - (12 + 1.1 + 2.2)) < 1e-6, d['time']\n"
                   "assert d['client'] == {'address': '127.0.0.1', 'port': 54321, "
                   "'proxy_mode': 'socks5@1080'}, d['client']\n"
                   "assert d['server'] == {'address': '127.0.0.2', 'port': 443, 'host': 'example.test'}\n"
                   "assert d['tls'] == {'sni': 'example.test', 'alpn': 'http/1.1', 'version': 'TLSv1.3',"
                   " 'cert_subject': 'CN=example.test', 'cert_issuer': 'CN=Test CA,O=Test'}, d['tls']\n"
                   "r = d['request']\n"
                   "assert r['method'] == 'GET' and r['url'] == 'https://example.test/path'\n"
                   "assert r['httpVersion'] == 'HTTP/1.1' and r['bodySize'] == 0\n"
                   "h = r['headers']\n"
                   "assert h[0] == {'name': 'Host', 'value': 'example.test'}\n"
                   "assert h[1]['value'] == 'a\\x01\"b\\\\\\n', repr(h[1])\n"
                   "assert h[2]['value'] == '\\ufffd\\ufffd ok \\u00e9', repr(h[2])\n"
                   "s = d['response']\n"
                   "assert s['status'] == 200 and s['statusText'] == 'OK' and s['bodySize'] == 1024\n"
                   "assert s['headers'] == [{'name': 'Content-Length', 'value': '1024'}]\n"
                   "t = d['timings']\n"
                   "assert t['connect'] == 1.1 and t['ssl'] == 2.2, t\n"
                   "assert t['send'] == 0.1 and t['wait'] == 2.9 and t['receive'] == 9.0, t\n"
                   "assert d['error'] is None and d['truncated'] is False\n"),
        0);
    /* Smaller buffers get the compact record (no headers, "truncated": true) or nothing. */
    for (size_t cap = 0; cap < (size_t)n; cap += 7) {
        ssize_t r = flow_format_json(f, json, cap);

        assert_true(r == -ENOSPC || (r > 0 && r < n));
        if (r > 0)
            assert_non_null(memmem(json, (size_t)r, "\"headers\":[],", 13));
        if (r > 0)
            assert_memory_equal(json + r - 19, ",\"truncated\":true}\n", 19);
    }
    assert_int_equal(flow_format_json(f, json, (size_t)n), n);
    test_free(f);
}

/* An answered error on a plain-HTTP connection: tls null, error text, reused connection
 * timings -1, no response -> null. */
static void test_json_error_records(void **state)
{
    struct flow *f = test_malloc(sizeof(*f));
    static char json[16384];
    ssize_t n;

    (void)state;
    make_flow(f, 502, 52, 3);
    flow_set_error(f, "certificate verify failed: certificate has expired");
    flow_set_error(f, "a later error does not replace the first");
    n = flow_format_json(f, json, sizeof(json));
    assert_true(n > 0);
    assert_int_equal(
        run_python(json, (size_t)n,
                   "assert d['tls'] is None\n"
                   "assert d['response']['status'] == 502\n"
                   "assert d['error'] == 'certificate verify failed: certificate has expired'\n"
                   "assert d['timings']['connect'] == -1 and d['timings']['ssl'] == -1\n"),
        0);

    make_flow(f, 0, 0, 5);
    f->t_response_first = 0;
    f->t_request_sent = 0;
    memset(&f->server_addr, 0, sizeof(f->server_addr));
    flow_set_error(f, "client closed while sending the request body");
    n = flow_format_json(f, json, sizeof(json));
    assert_true(n > 0);
    assert_int_equal(
        run_python(json, (size_t)n,
                   "assert d['response'] is None\n"
                   "assert d['server']['address'] is None and d['server']['port'] is None\n"
                   "assert d['timings']['send'] == -1 and d['timings']['wait'] == -1\n"
                   "assert d['error'].startswith('client closed')\n"),
        0);
    test_free(f);
}

/* flow_set_answer records mitmd's own answer the way the client received it. */
static void test_set_answer(void **state)
{
    struct flow *f = test_malloc(sizeof(*f));
    static char json[16384];
    ssize_t n;

    (void)state;
    flow_init(f);
    flow_begin(f);
    flow_set_answer(f, 502, "Bad Gateway", "41", 41, "cannot connect to a.test:443: refused");
    assert_true(f->answered);
    assert_int_equal(f->status, 502);
    assert_int_equal(f->resp_body_size, 41);
    assert_int_equal(f->n_resp_headers, 3);
    assert_string_equal(f->error, "cannot connect to a.test:443: refused");
    f->t_response_first = f->t_done = flow_now_ns();
    n = flow_format_json(f, json, sizeof(json));
    assert_true(n > 0);
    assert_int_equal(
        run_python(json, (size_t)n,
                   "r = d['response']\n"
                   "assert r['status'] == 502 and r['statusText'] == 'Bad Gateway'\n"
                   "assert r['httpVersion'] == 'HTTP/1.1' and r['bodySize'] == 41\n"
                   "h = [(x['name'], x['value']) for x in r['headers']]\n"
                   "assert h == [('Content-Type', 'text/plain; charset=utf-8'), "
                   "('Content-Length', '41'), ('Connection', 'close')], h\n"
                   "assert d['error'] == 'cannot connect to a.test:443: refused'\n"),
        0);
    test_free(f);
}

/* The arena and header table are bounded: overflow drops headers, sets `truncated`, and the
 * record stays valid JSON. flow_next marks the next exchange's connect/ssl as reused. */
static void test_arena_limits(void **state)
{
    struct flow *f = test_malloc(sizeof(*f));
    static char json[65536];
    char value[1000];
    int added = 0;
    ssize_t n;

    (void)state;
    make_flow(f, 200, 0, 1);
    memset(value, 'v', sizeof(value));
    value[10] = '\x02';
    for (int i = 0; i < 20; i++)
        if (flow_add_header(f, FLOW_RESPONSE, "X-Big", 5, value, sizeof(value)) == 0)
            added++;
    assert_true(added > 0 && added < 20);
    assert_true(f->truncated);
    assert_true(f->arena_used <= FLOW_ARENA_SIZE);
    for (int i = 0; i < FLOW_MAX_HEADERS + 5; i++)
        flow_add_header(f, FLOW_REQUEST, "", 0, "", 0);
    assert_int_equal(f->n_req_headers, FLOW_MAX_HEADERS);
    n = flow_format_json(f, json, sizeof(json));
    assert_true(n > 0);
    assert_int_equal(run_python(json, (size_t)n,
                                "assert d['truncated'] is True\n"
                                "assert len(d['request']['headers']) == 64\n"
                                "assert all(h['value'][10] == '\\x02' for h in d['response']['headers'])\n"),
                     0);

    f->connect_ns = 5;
    flow_next(f);
    assert_int_equal(f->connect_ns, -1);
    assert_int_equal(f->exchange_index, 1);
    flow_begin(f);
    assert_int_equal(f->n_req_headers, 0);
    assert_int_equal(f->arena_used, 0);
    assert_false(f->truncated);
    assert_string_equal(f->server_host, "example.test"); /* connection fields survive */
    test_free(f);
}

/* A response from -S's recording is marked as mitmdump marks it ("[replay] <<"), and its
 * record says is_replay "response", as mitmproxy's flow. */
static void test_replayed(void **state)
{
    struct flow *f = test_malloc(sizeof(*f));
    static char buf[65536];
    ssize_t n;

    (void)state;
    make_flow(f, 200, 10, 2);
    f->replayed = true;
    n = flow_format_line(f, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, ": GET https://example.test/path HTTP/1.1 [replay] << 200 OK 10b"));
    n = flow_format_json(f, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(run_python(buf, (size_t)n, "assert d['is_replay'] == 'response', d\n"), 0);
    make_flow(f, 200, 10, 2);
    n = flow_format_json(f, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(run_python(buf, (size_t)n, "assert 'is_replay' not in d, d\n"), 0);
    test_free(f);
}

/* A record carries the target the client addressed when the flow line shows it (the URL's
 * authority came from the Host field): -r prints the line again from it. A flow whose URL
 * is the upstream's own has none. */
static void test_json_target(void **state)
{
    struct flow *f = test_malloc(sizeof(*f));
    static char json[65536];
    ssize_t n;

    (void)state;
    make_flow(f, 200, 10, 2);
    flow_set_target(f, "10.9.8.7", 8443); /* a CONNECT to an address, Host: example.test */
    n = flow_format_json(f, json, sizeof(json));
    assert_true(n > 0);
    assert_int_equal(run_python(json, (size_t)n,
                                "assert 'target' not in d['client'], d['client']\n"),
                     0);
    f->url_from_host = true;
    n = flow_format_json(f, json, sizeof(json));
    assert_true(n > 0);
    assert_int_equal(run_python(json, (size_t)n,
                                "assert d['client']['target'] == {'host': '10.9.8.7', 'port': 8443}, "
                                "d['client']\n"
                                "assert d['request']['url'] == 'https://example.test/path'\n"),
                     0);
    test_free(f);
}

/* A peer controls header bytes, and escaping grows them up to six-fold (HTAB is "\u0009"):
 * a full arena of tabs and invalid UTF-8 must still give a record in a buffer of
 * FLOW_JSON_COMPACT_MAX bytes (the compact form), never -ENOSPC, so no exchange goes
 * unrecorded. Every string field is filled to its limit with the costliest bytes. */
static void test_json_worst_case_fits(void **state)
{
    struct flow *f = test_malloc(sizeof(*f));
    static char json[FLOW_JSON_COMPACT_MAX];
    char tabs[FLOW_ARENA_SIZE];
    static char tabs_note[700];
    ssize_t n;

    (void)state;
    make_flow(f, 200, 0, 1);
    memset(tabs, '\t', sizeof(tabs));
    memset(tabs_note, '\t', sizeof(tabs_note) - 1);
    flow_begin(f);
    flow_str_set(f, &f->method, tabs, 600);
    flow_str_set(f, &f->url, tabs, 600);
    flow_str_set(f, &f->req_version, tabs, 600);
    flow_str_set(f, &f->resp_version, tabs, 600);
    flow_str_set(f, &f->reason, tabs, 600);
    while (flow_add_header(f, FLOW_REQUEST, "X", 1, tabs, 200) == 0)
        ;
    memset(f->server_host, '\x01', sizeof(f->server_host) - 1);
    memset(f->sni, '\x01', sizeof(f->sni) - 1);
    memset(f->alpn, '\x01', sizeof(f->alpn) - 1);
    memset(f->tls_version, '\x01', sizeof(f->tls_version) - 1);
    memset(f->cert_subject, '\x01', sizeof(f->cert_subject) - 1);
    memset(f->cert_issuer, '\x01', sizeof(f->cert_issuer) - 1);
    memset(f->error, '\x01', sizeof(f->error) - 1);
    memset(f->target_host, '\x01', sizeof(f->target_host) - 1);
    f->target_port = 65535;
    f->url_from_host = true;
    f->rules_note = tabs_note;
    static char long_mode[700];
    memset(long_mode, '\x01', sizeof(long_mode) - 1);
    f->proxy_mode = long_mode;
    f->tls = true;
    f->status = 200;
    n = flow_format_json(f, json, sizeof(json));
    assert_true(n > 0);
    assert_int_equal(json[n - 1], '\n');
    assert_int_equal(run_python(json, (size_t)n,
                                "assert d['truncated'] is True\n"
                                "assert d['request']['headers'] == []\n"
                                "assert d['request']['method'] == '\\t' * 256\n"
                                "assert d['response']['status'] == 200\n"
                                "assert d['client']['target']['port'] == 65535\n"),
                     0);
    /* with room for everything, the full record is written */
    make_flow(f, 200, 0, 1);
    n = flow_format_json(f, json, sizeof(json));
    assert_true(n > 0);
    assert_int_equal(run_python(json, (size_t)n,
                                "assert d['truncated'] is False\n"
                                "assert d['request']['headers'][0]['name'] == 'Host'\n"),
                     0);
    test_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_size),
        cmocka_unit_test(test_format_line),
        cmocka_unit_test(test_line_time_is_record_time),
        cmocka_unit_test(test_line_url),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_json_full_record),
        cmocka_unit_test(test_json_target),
        cmocka_unit_test(test_replayed),
        cmocka_unit_test(test_json_error_records),
        cmocka_unit_test(test_set_answer),
        cmocka_unit_test(test_arena_limits),
        cmocka_unit_test(test_json_worst_case_fits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
