/* test_h2_h1up.c - cmocka tests of worker/h2_h1up (the HTTP/2 -> HTTP/1.1 bridge) with a real
 * nghttp2 client session standing for the relay, in memory: the test writes HTTP/1.1 responses
 * into up_in and reads the requests the bridge wrote to up_out byte for byte. Responses are fed
 * whole and one byte per pump. Each case is a table row with a note. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "worker/h2_h1up.h"

#define UP_CAP (128 * 1024)
#define BODY_MAX (64 * 1024)

/* struct client is the relay's side: one nghttp2 client session and what it received. */
struct client {
    nghttp2_session *s;
    struct h2_h1up *b;
    struct buf up_in, up_out;
    uint8_t in_mem[UP_CAP], out_mem[UP_CAP];
    const uint8_t *pend;
    size_t pend_len;
    int status, interim;
    char fields[4096]; /* "name: value\n" of the final response */
    size_t fields_len;
    uint8_t body[BODY_MAX];
    size_t body_len;
    bool closed;
    uint32_t close_code;
    bool goaway;
    char note[256];        /* the last h2_h1up_note_fn call: "A|R id why" */
    const uint8_t *upload; /* request body sent by the data source */
    size_t upload_len, upload_off;
};

static int c_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                       size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                       void *ud)
{
    struct client *c = ud;

    (void)s, (void)frame, (void)flags;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = atoi((const char *)value);

        (void)valuelen;
        if (st < 200)
            c->interim = st;
        else
            c->status = st;
        return 0;
    }
    if (c->status >= 200)
        c->fields_len += (size_t)snprintf(c->fields + c->fields_len,
                                          sizeof(c->fields) - c->fields_len, "%.*s: %.*s\n",
                                          (int)namelen, name, (int)valuelen, value);
    return 0;
}

static int c_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                     size_t len, void *ud)
{
    struct client *c = ud;

    (void)s, (void)flags, (void)id;
    assert_true(c->body_len + len <= sizeof(c->body));
    memcpy(c->body + c->body_len, data, len);
    c->body_len += len;
    return 0;
}

static int c_on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct client *c = ud;

    (void)s, (void)id;
    c->closed = true;
    c->close_code = code;
    return 0;
}

static int c_on_frame(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct client *c = ud;

    (void)s;
    if (frame->hd.type == NGHTTP2_GOAWAY)
        c->goaway = true;
    return 0;
}

static ssize_t c_upload(nghttp2_session *s, int32_t id, uint8_t *out, size_t len,
                        uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct client *c = ud;
    size_t n = c->upload_len - c->upload_off;

    (void)s, (void)id, (void)src;
    if (n > len)
        n = len;
    memcpy(out, c->upload + c->upload_off, n);
    c->upload_off += n;
    if (c->upload_off == c->upload_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void c_note(void *arg, int32_t id, bool answered, const char *why)
{
    struct client *c = arg;

    snprintf(c->note, sizeof(c->note), "%c %d %s", answered ? 'A' : 'R', (int)id, why);
}

static struct client *client_new(void)
{
    struct client *c = calloc(1, sizeof(*c));
    nghttp2_session_callbacks *cb;

    assert_non_null(c);
    buf_init(&c->up_in, c->in_mem, UP_CAP);
    buf_init(&c->up_out, c->out_mem, UP_CAP);
    c->b = h2_h1up_new(0, &c->up_in, &c->up_out);
    assert_non_null(c->b);
    h2_h1up_set_on_note(c->b, c_note, c);
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame);
    assert_int_equal(nghttp2_session_client_new(&c->s, cb, c), 0);
    nghttp2_session_callbacks_del(cb);
    assert_int_equal(nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    return c;
}

static void client_free(struct client *c)
{
    nghttp2_session_del(c->s);
    h2_h1up_free(c->b);
    free(c);
}

/* pump moves bytes between the client session and the bridge until nothing moves. */
static void pump(struct client *c)
{
    for (int round = 0; round < 10000; round++) {
        bool moved = false;
        struct buf *to = h2_h1up_relay_out(c->b), *from = h2_h1up_relay_in(c->b);
        const uint8_t *p;
        ssize_t n;

        if (c->pend_len > 0) {
            size_t k = buf_append(to, c->pend, c->pend_len);

            c->pend += k;
            c->pend_len -= k;
            moved |= k > 0;
        }
        while (c->pend_len == 0 && (n = nghttp2_session_mem_send(c->s, &p)) > 0) {
            size_t k = buf_append(to, p, (size_t)n);

            moved = true;
            if (k < (size_t)n) {
                c->pend = p + k;
                c->pend_len = (size_t)n - k;
            }
        }
        moved |= h2_h1up_pump(c->b);
        if (buf_used(from) > 0) {
            n = nghttp2_session_mem_recv(c->s, buf_head(from), buf_used(from));
            assert_true(n >= 0);
            buf_consume(from, (size_t)n);
            moved |= n > 0;
        }
        if (!moved)
            return;
    }
    fail_msg("pump did not settle");
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE}

/* upstream_take returns (NUL-terminated, static) what the bridge wrote to up_out and empties
 * it. */
static const char *upstream_take(struct client *c)
{
    static char out[UP_CAP + 1];
    size_t n = buf_used(&c->up_out);

    memcpy(out, buf_head(&c->up_out), n);
    out[n] = '\0';
    buf_consume(&c->up_out, n);
    return out;
}

/* feed writes `resp` into up_in, whole or one byte per pump. */
static void feed(struct client *c, const char *resp, bool bytewise)
{
    size_t n = strlen(resp);

    if (!bytewise) {
        assert_int_equal(buf_append(&c->up_in, resp, n), n);
        pump(c);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(buf_append(&c->up_in, resp + i, 1), 1);
        pump(c);
    }
}

static void get(struct client *c, const char *path)
{
    nghttp2_nv nva[] = {NV(":method", "GET"), NV(":scheme", "http"),
                        NV(":authority", "origin.test"), {(uint8_t *)":path", (uint8_t *)path,
                        5, strlen(path), NGHTTP2_NV_FLAG_NONE}};

    assert_true(nghttp2_submit_request(c->s, NULL, nva, 4, NULL, NULL) > 0);
    pump(c);
}

/* ---- cases ---------------------------------------------------------------------------- */

/* The request head: request line, Host from :authority, cookies joined into one field (RFC
 * 9113 §8.2.3), te dropped; a GET has no framing field. */
static void test_request_head(void **state)
{
    struct client *c = client_new();
    nghttp2_nv nva[] = {NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "a.test:8443"),
                        NV(":path", "/p?q=1"), NV("cookie", "a=1"), NV("x-one", "1"),
                        NV("te", "trailers"), NV("cookie", "b=2")};

    (void)state;
    assert_true(nghttp2_submit_request(c->s, NULL, nva, 8, NULL, NULL) > 0);
    pump(c);
    assert_string_equal(upstream_take(c), "GET /p?q=1 HTTP/1.1\r\nHost: a.test:8443\r\n"
                                          "x-one: 1\r\nCookie: a=1; b=2\r\n\r\n");
    assert_true(h2_h1up_is_reading_head(c->b));
    client_free(c);
}

/* A request body without content-length goes chunked; with one, as is. */
static void test_request_body(void **state)
{
    static const uint8_t body[] = "hello world";
    nghttp2_data_provider prd = {.read_callback = c_upload};
    struct client *c = client_new();
    nghttp2_nv nva[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":authority", "a"),
                        NV(":path", "/u"), NV("content-length", "11")};

    (void)state;
    c->upload = body;
    c->upload_len = 11;
    assert_true(nghttp2_submit_request(c->s, NULL, nva, 4, &prd, NULL) > 0);
    pump(c);
    assert_string_equal(upstream_take(c), "POST /u HTTP/1.1\r\nHost: a\r\n"
                                          "Transfer-Encoding: chunked\r\n\r\n"
                                          "b\r\nhello world\r\n0\r\n\r\n");
    feed(c, "HTTP/1.1 204 No Content\r\n\r\n", false);
    assert_int_equal(c->status, 204);
    assert_true(c->closed);
    c->closed = false;
    c->upload_off = 0;
    assert_true(nghttp2_submit_request(c->s, NULL, nva, 5, &prd, NULL) > 0);
    pump(c);
    assert_string_equal(upstream_take(c), "POST /u HTTP/1.1\r\nHost: a\r\n"
                                          "content-length: 11\r\n\r\nhello world");
    client_free(c);
}

/* A chunked upload larger than the window, with the server side drained a few KiB at a time:
 * every DATA frame the window allows fits in the staging (a staging not compacted refused one
 * and reset the stream with FLOW_CONTROL_ERROR), and the chunks carry the body byte for byte. */
static void test_request_body_drained_slowly(void **state)
{
    enum { LEN = 1024 * 1024, STEP = 1000 };
    static uint8_t body[LEN], got[LEN], wire[2 * LEN];
    nghttp2_data_provider prd = {.read_callback = c_upload};
    struct client *c = client_new();
    nghttp2_nv nva[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":authority", "a"),
                        NV(":path", "/u")};
    size_t wire_len = 0, got_len = 0, off;
    const char *head_end;

    (void)state;
    for (size_t i = 0; i < LEN; i++)
        body[i] = (uint8_t)(i * 7 + i / 251);
    c->upload = body;
    c->upload_len = LEN;
    assert_true(nghttp2_submit_request(c->s, NULL, nva, 4, &prd, NULL) > 0);
    for (int round = 0; round < 100000; round++) {
        size_t n = buf_used(&c->up_out);

        pump(c);
        n = buf_used(&c->up_out);
        if (n > STEP)
            n = STEP;
        if (n == 0)
            break;
        assert_true(wire_len + n <= sizeof(wire));
        memcpy(wire + wire_len, buf_head(&c->up_out), n);
        wire_len += n;
        buf_consume(&c->up_out, n);
    }
    assert_false(c->closed); /* no reset: the stream waits for the response */
    head_end = memmem(wire, wire_len, "\r\n\r\n", 4);
    assert_non_null(head_end);
    off = (size_t)(head_end - (const char *)wire) + 4;
    for (;;) { /* de-chunk */
        char *end;
        unsigned long k = strtoul((const char *)wire + off, &end, 16);

        assert_true(end[0] == '\r' && end[1] == '\n');
        off = (size_t)(end - (char *)wire) + 2;
        if (k == 0)
            break;
        assert_true(got_len + k <= LEN && off + k + 2 <= wire_len);
        memcpy(got + got_len, wire + off, k);
        got_len += k;
        off += k;
        assert_memory_equal(wire + off, "\r\n", 2);
        off += 2;
    }
    assert_memory_equal(wire + off, "\r\n", 2);
    assert_int_equal(off + 2, wire_len);
    assert_int_equal(got_len, LEN);
    assert_memory_equal(got, body, LEN);
    client_free(c);
}

struct resp_case {
    const char *note;
    const char *resp;
    int status;
    const char *body;
    const char *has;     /* a field the client must get ("" none) */
    const char *has_not; /* a field it must not get */
    bool keeps;          /* the server connection stays usable (no GOAWAY) */
};

static const struct resp_case RESP_CASES[] = {
    {"Content-Length body; Connection and the field it names are dropped",
     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: X-Hop\r\nX-Hop: 1\r\nX-Keep: 2\r\n"
     "Keep-Alive: timeout=5\r\n\r\nhello",
     200, "hello", "x-keep: 2\n", "x-hop", true},
    {"every Connection field counts, tokens in any case, names up to 127 bytes",
     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: x-a\r\nX-A: drop\r\nX-B: drop\r\n"
     "Connection: X-B, x-long-name-long-name-long-name-long-name-long-name-long-name-long\r\n"
     "X-long-name-long-name-long-name-long-name-long-name-long-name-long: drop\r\n"
     "X-C: 4\r\n\r\nok",
     200, "ok", "x-c: 4\n", ": drop", true},
    {"chunked body: framing removed, transfer-encoding dropped",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n"
     "T: 1\r\n\r\n",
     200, "abcde", "", "transfer-encoding", true},
    {"an interim 103 is relayed before the final head",
     "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     200, "ok", "content-length: 2\n", "link", true},
    {"repeated equal Content-Length fields reach the client as one (a second one is a "
     "malformed HTTP/2 response: the client would reset the stream)",
     "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: 1\r\ncontent-length:3\r\n\r\nabc", 200,
     "abc", "content-length: 3\nx-a: 1\n", "", true},
    {"close-delimited body ends at the server's close; then GOAWAY",
     "HTTP/1.1 200 OK\r\n\r\nuntil close", 200, "until close", "", "", false},
    {"Connection: close: the response is relayed, then GOAWAY",
     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx", 200, "x", "",
     "connection", false},
    {"a malformed head is a 502 naming it",
     "HTTP/1.1 2x0 OK\r\n\r\n", 502, NULL, "content-type: text/plain; charset=utf-8\n", "",
     false},
    {"a 101 cannot be bridged: 502",
     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", 502, NULL,
     "", "upgrade", false},
};

static void run_resp_case(const struct resp_case *rc, bool bytewise)
{
    struct client *c = client_new();

    get(c, "/r");
    (void)upstream_take(c);
    feed(c, rc->resp, bytewise);
    if (!rc->keeps && rc->status == 200 && strstr(rc->resp, "Content-Length") == NULL) {
        assert_false(c->closed); /* close-delimited: open until the close */
        h2_h1up_upstream_eof(c->b, NULL);
        pump(c);
    }
    assert_int_equal(c->status, rc->status);
    if (rc->body != NULL) {
        assert_int_equal(c->body_len, strlen(rc->body));
        assert_memory_equal(c->body, rc->body, c->body_len);
    }
    if (rc->has[0] != '\0' && strstr(c->fields, rc->has) == NULL)
        fail_msg("%s: no '%s' in:\n%s", rc->note, rc->has, c->fields);
    if (rc->has_not[0] != '\0' && strstr(c->fields, rc->has_not) != NULL)
        fail_msg("%s: '%s' in:\n%s", rc->note, rc->has_not, c->fields);
    assert_true(c->closed);
    assert_int_equal(c->close_code, NGHTTP2_NO_ERROR);
    assert_int_equal(c->goaway, !rc->keeps);
    client_free(c);
}

static void test_responses(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(RESP_CASES) / sizeof(RESP_CASES[0]); i++) {
        run_resp_case(&RESP_CASES[i], false);
        run_resp_case(&RESP_CASES[i], true);
    }
}

/* Two streams in turn share the server connection: the second request is written only after
 * the first response. */
static void test_sequential_streams(void **state)
{
    struct client *c = client_new();

    (void)state;
    get(c, "/one");
    assert_string_equal(upstream_take(c), "GET /one HTTP/1.1\r\nHost: origin.test\r\n\r\n");
    feed(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1", false);
    assert_true(c->closed);
    c->closed = false;
    get(c, "/two");
    assert_string_equal(upstream_take(c), "GET /two HTTP/1.1\r\nHost: origin.test\r\n\r\n");
    feed(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2", false);
    assert_true(c->closed && !c->goaway);
    assert_int_equal(h2_h1up_exchanges(c->b), 2);
    client_free(c);
}

/* The server closes before the head, or in the middle of a Content-Length body: 502 with the
 * reason, or the stream reset. */
static void test_upstream_eof(void **state)
{
    struct client *c = client_new();

    (void)state;
    get(c, "/x");
    h2_h1up_upstream_eof(c->b, NULL);
    pump(c);
    assert_int_equal(c->status, 502);
    /* byte for byte what the relay's own answers are (worker/h2_answer.h) */
    assert_int_equal(c->body_len, strlen("upstream closed connection\n"));
    assert_memory_equal(c->body, "upstream closed connection\n", c->body_len);
    assert_non_null(strstr(c->fields, "content-type: text/plain; charset=utf-8\n"));
    assert_non_null(strstr(c->fields, "content-length: 27\n"));
    assert_string_equal(c->note, "A 1 upstream closed connection"); /* the relay records it */
    assert_non_null(strstr(c->fields, "proxy-status: mitmd; error="));
    assert_true(c->goaway);
    client_free(c);

    c = client_new();
    get(c, "/x");
    feed(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false);
    assert_false(c->closed);
    h2_h1up_upstream_eof(c->b, "connection reset");
    pump(c);
    assert_true(c->closed);
    assert_int_equal(c->close_code, NGHTTP2_INTERNAL_ERROR);
    assert_int_equal(c->body_len, 3);
    assert_string_equal(c->note,
                        "R 1 upstream closed the connection in the middle of the response body");
    client_free(c);
}

/* With redial on, a server that closes after its response is replaced for the next stream:
 * nothing is written until the new connection is ready; a failed dial is that stream's 502 and
 * then GOAWAY. */
static void test_redial(void **state)
{
    struct client *c = client_new();

    (void)state;
    h2_h1up_set_redial(c->b, true);
    get(c, "/one");
    (void)upstream_take(c);
    feed(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n1", false);
    assert_true(c->closed && !c->goaway);
    h2_h1up_upstream_eof(c->b, NULL); /* the server's close, told after the stream ended */
    c->closed = false;
    get(c, "/two");
    assert_true(h2_h1up_wants_dial(c->b));
    assert_int_equal(buf_used(&c->up_out), 0);
    h2_h1up_upstream_ready(c->b);
    pump(c);
    assert_false(h2_h1up_wants_dial(c->b));
    assert_string_equal(upstream_take(c), "GET /two HTTP/1.1\r\nHost: origin.test\r\n\r\n");
    feed(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n2", false);
    assert_true(c->closed && !c->goaway);
    assert_int_equal(h2_h1up_redials(c->b), 1);
    c->closed = false;
    c->body_len = 0;
    get(c, "/three");
    assert_true(h2_h1up_wants_dial(c->b));
    h2_h1up_upstream_failed(c->b, "cannot connect to origin.test:80: connection refused");
    pump(c);
    assert_int_equal(c->status, 502);
    assert_non_null(memmem(c->body, c->body_len, "refused", 7));
    assert_true(c->goaway);
    client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_head),    cmocka_unit_test(test_request_body),
        cmocka_unit_test(test_request_body_drained_slowly),
        cmocka_unit_test(test_responses),       cmocka_unit_test(test_sequential_streams),
        cmocka_unit_test(test_upstream_eof),    cmocka_unit_test(test_redial),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
