/* test_h1_relay.c - cmocka tests of worker/h1_relay: scripted exchanges between a fake client
 * and a fake upstream, byte-exact on both sides, plus the flow records they produce.
 * Each case is a table row with a note; split and backpressure cases run in loops. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "worker/flow.h"
#include "worker/h1_relay.h"

#define CAP_DEFAULT 16384
#define CAP_MAX 65536
#define GOT_MAX (256 * 1024)
#define MAX_RECS 16

struct rec {
    int status;
    bool answered;
    char error[FLOW_ERROR_MAX];
    char url[512];
    char method[32];
    uint64_t req_body, resp_body;
    uint64_t ws_sent, ws_received;
    char line[2048];
    ssize_t json_len;
};

/* struct harness plays the worker loop: it owns the four buffers, feeds them, drains them
 * (optionally a few bytes at a time) and collects flow records. */
struct harness {
    uint8_t ci_mem[CAP_MAX], co_mem[CAP_MAX], ui_mem[CAP_MAX], uo_mem[CAP_MAX];
    struct buf ci, co, ui, uo;
    struct flow flow;
    struct h1_relay r;
    char up_got[GOT_MAX];
    size_t up_len;
    char cl_got[GOT_MAX];
    size_t cl_len;
    struct rec recs[MAX_RECS];
    size_t n_recs;
    size_t drain_step; /* 0 = drain everything at once */
    unsigned wants;
    size_t max_out_seen; /* largest buf_used(co/uo) observed: must never exceed cap */
    /* pass mode (opts.pass, as worker/h1_conn.c sets it): body bytes go straight to the wire
     * captures, at most `pass_budget` between drains; every 5th call declines (-EAGAIN) */
    size_t pass_budget, pass_used, passed;
    unsigned pass_calls;
};

/* pass_mode makes harness_new give the relay a pass function (the *_pass tests). */
static bool pass_mode;

static void on_flow(void *arg, const struct flow *f)
{
    struct harness *h = arg;
    struct rec *rec;
    char json[16384];

    assert_true(h->n_recs < MAX_RECS);
    rec = &h->recs[h->n_recs++];
    memset(rec, 0, sizeof(*rec));
    rec->status = f->status;
    rec->answered = f->answered;
    snprintf(rec->error, sizeof(rec->error), "%s", f->error);
    snprintf(rec->url, sizeof(rec->url), "%.*s", (int)f->url.len, flow_str_ptr(f, f->url));
    snprintf(rec->method, sizeof(rec->method), "%.*s", (int)f->method.len,
             flow_str_ptr(f, f->method));
    rec->req_body = f->req_body_size;
    rec->resp_body = f->resp_body_size;
    rec->ws_sent = f->ws_messages[0];
    rec->ws_received = f->ws_messages[1];
    assert_true(flow_format_line(f, rec->line, sizeof(rec->line)) > 0);
    rec->json_len = flow_format_json(f, json, sizeof(json));
    assert_true(rec->json_len > 0);
}

struct setup {
    size_t ci_cap, co_cap, ui_cap, uo_cap; /* 0 = CAP_DEFAULT */
    size_t max_header_size;
    bool no_upstream; /* plain proxy: no upstream until a request asks for one */
};

/* harness_pass is the relay's h1_relay_pass_fn: only while `out` is empty (the relay's
 * contract), straight into the capture that `out` drains to. */
static ssize_t harness_pass(void *arg, struct buf *out, const uint8_t *p, size_t n)
{
    struct harness *h = arg;
    size_t k;

    assert_int_equal(buf_used(out), 0);
    if (++h->pass_calls % 5 == 0)
        return -EAGAIN;
    k = h->pass_budget - h->pass_used;
    if (n < k)
        k = n;
    if (k == 0)
        return 0;
    if (out == &h->co) {
        assert_true(h->cl_len + k <= GOT_MAX);
        memcpy(h->cl_got + h->cl_len, p, k);
        h->cl_len += k;
    } else {
        assert_ptr_equal(out, &h->uo);
        assert_true(h->up_len + k <= GOT_MAX);
        memcpy(h->up_got + h->up_len, p, k);
        h->up_len += k;
    }
    h->pass_used += k;
    h->passed += k;
    return (ssize_t)k;
}

static size_t cap_or_default(size_t c)
{
    return c == 0 ? CAP_DEFAULT : c;
}

static struct harness *harness_new(const struct setup *s)
{
    struct harness *h = test_calloc(1, sizeof(*h));
    struct h1_relay_opts opts = {
        .max_header_size = s->max_header_size,
        .client_tls = !s->no_upstream,
        .on_flow = on_flow,
    };

    assert_non_null(h);
    opts.on_flow_arg = h;
    if (pass_mode) {
        opts.pass = harness_pass;
        opts.pass_arg = h;
        h->pass_budget = 3000; /* less than a buffer: passing stops and resumes */
    }
    buf_init(&h->ci, h->ci_mem, cap_or_default(s->ci_cap));
    buf_init(&h->co, h->co_mem, cap_or_default(s->co_cap));
    buf_init(&h->ui, h->ui_mem, cap_or_default(s->ui_cap));
    buf_init(&h->uo, h->uo_mem, cap_or_default(s->uo_cap));
    flow_init(&h->flow);
    h1_relay_init(&h->r, &opts, &h->flow, &h->ci, &h->co, &h->ui, &h->uo);
    if (!s->no_upstream)
        h1_relay_upstream_ready(&h->r, "example.test", 443, true);
    return h;
}

static void note_out(struct harness *h)
{
    if (buf_used(&h->co) > h->max_out_seen)
        h->max_out_seen = buf_used(&h->co);
    if (buf_used(&h->uo) > h->max_out_seen)
        h->max_out_seen = buf_used(&h->uo);
    assert_true(h->co.len <= h->co.cap);
    assert_true(h->uo.len <= h->uo.cap);
}

/* drain moves what the relay produced to the "wire" captures; returns bytes moved. */
static size_t drain(struct harness *h)
{
    size_t moved = 0, n;

    note_out(h);
    n = buf_used(&h->co);
    if (h->drain_step != 0 && n > h->drain_step)
        n = h->drain_step;
    assert_true(h->cl_len + n <= GOT_MAX);
    memcpy(h->cl_got + h->cl_len, buf_head(&h->co), n);
    h->cl_len += n;
    buf_consume(&h->co, n);
    moved += n;
    n = buf_used(&h->uo);
    if (h->drain_step != 0 && n > h->drain_step)
        n = h->drain_step;
    assert_true(h->up_len + n <= GOT_MAX);
    memcpy(h->up_got + h->up_len, buf_head(&h->uo), n);
    h->up_len += n;
    buf_consume(&h->uo, n);
    moved += n;
    moved += h->pass_used; /* the wire took what was passed: room again */
    h->pass_used = 0;
    return moved;
}

/* settle pumps and drains until nothing moves. */
static void settle(struct harness *h)
{
    for (int i = 0; i < 1000000; i++) {
        h->wants = h1_relay_pump(&h->r);
        if (drain(h) == 0)
            return;
    }
    fail_msg("relay did not settle");
}

/* feed appends `n` bytes to `in` as room allows, settling in between (the loop's recv only
 * runs when the relay wants it and the buffer has room). Returns bytes accepted. */
static size_t feed(struct harness *h, struct buf *in, const char *p, size_t n, unsigned want_bit)
{
    size_t done = 0;

    settle(h);
    while (done < n) {
        size_t k;

        if (!(h->wants & want_bit))
            break;
        k = buf_append(in, p + done, n - done);
        if (k == 0)
            break;
        done += k;
        settle(h);
    }
    return done;
}

static void harness_free(struct harness *h)
{
    test_free(h);
}

/* ---- scripted cases ---------------------------------------------------------------------- */

enum op {
    OP_END = 0,
    OP_C,           /* client sends `s` (all of it must be accepted) */
    OP_C_PARTIAL,   /* client sends `s`; the relay may refuse part of it */
    OP_U,           /* upstream sends `s` */
    OP_U_PUSH,      /* upstream bytes land in up_in whether or not the relay asked */
    OP_C_EOF,
    OP_U_EOF,
    OP_U_ERROR,     /* upstream connection failed mid-way with reason `s` */
    OP_U_READY,     /* loop connected the upstream target (host `s`, port `n`) */
    OP_U_FAILED,    /* loop reports an upstream failure with reason `s` */
    OP_TIMEOUT,     /* timer `n` expired */
    OP_EXPECT_UP,   /* upstream received exactly `s` since the last check */
    OP_EXPECT_CL,   /* client received exactly `s` since the last check */
    OP_EXPECT_CL_STATUS, /* client received a response starting "HTTP/1.1 <n> " */
    OP_EXPECT_STATE,     /* relay is in state `n` */
    OP_EXPECT_WANT,      /* wants include all bits of `n` */
    OP_EXPECT_NOWANT,    /* wants include none of the bits of `n` */
    OP_EXPECT_FLOWS,     /* `n` flow records so far */
    OP_EXPECT_FLOW_STATUS, /* last record has status `n` */
    OP_EXPECT_FLOW_ERROR,  /* last record's error contains `s` ("" = no error) */
    OP_EXPECT_WS,          /* last record: `n` WebSocket messages sent, `m` received */
    OP_EXPECT_FLOW_URL,    /* last record's URL is `s` */
    OP_EXPECT_FLOW_BODIES, /* last record: request body `n`, response body `m` */
    OP_EXPECT_TARGET,      /* h1_relay_target() is host `s`, port `n`, tls `m` */
};

struct step {
    enum op op;
    const char *s;
    long n;
    long m;
};

struct relay_case {
    const char *note;
    struct setup setup;
    struct step steps[40];
};

#define GET_A "GET /a HTTP/1.1\r\nHost: example.test\r\n\r\n"
#define RESP_HELLO "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
#define CHUNKED_REQ                                                                          \
    "POST /up HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n"          \
    "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
#define CHUNKED_RESP                                                                         \
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"                                   \
    "3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"
#define WS_REQ                                                                               \
    "GET /ws HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" \
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
#define WS_RESP                                                                              \
    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
/* what each side receives: the hop-by-hop Connection is mitmd's own, after the other fields */
#define WS_REQ_OUT                                                                           \
    "GET /ws HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\n"                       \
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"             \
    "Connection: upgrade\r\n\r\n"
#define WS_RESP_OUT                                                                          \
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
#define RESP_HELLO_CLOSE "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"

static const struct relay_case relay_cases[] = {
    {"GET keep-alive x3: each request forwarded unchanged, each response relayed, 3 flows",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_EXPECT_NOWANT, .n = H1_WANT_CLOSE},
      {.op = OP_U, .s = RESP_HELLO}, {.op = OP_EXPECT_CL, .s = RESP_HELLO}, {.op = OP_EXPECT_FLOWS, .n = 1},
      {.op = OP_EXPECT_FLOW_URL, .s = "https://example.test/a"}, {.op = OP_EXPECT_FLOW_BODIES, .n = 0, .m = 5},
      {.op = OP_EXPECT_STATE, .n = H1_STATE_REQ_HEAD},
      {.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_U, .s = RESP_HELLO}, {.op = OP_EXPECT_CL, .s = RESP_HELLO},
      {.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_U, .s = RESP_HELLO}, {.op = OP_EXPECT_CL, .s = RESP_HELLO},
      {.op = OP_EXPECT_FLOWS, .n = 3}, {.op = OP_EXPECT_FLOW_STATUS, .n = 200},
      {.op = OP_EXPECT_FLOW_ERROR, .s = ""}, {.op = OP_EXPECT_STATE, .n = H1_STATE_REQ_HEAD},
      {.op = OP_EXPECT_WANT, .n = H1_WANT_CLIENT_READ}, {.op = OP_END}}},
    {"chunked request and response with extensions and trailers: framing forwarded unchanged",
     {0},
     {{.op = OP_C, .s = CHUNKED_REQ}, {.op = OP_EXPECT_UP, .s = CHUNKED_REQ}, {.op = OP_EXPECT_STATE, .n = H1_STATE_RESP_HEAD},
      {.op = OP_U, .s = CHUNKED_RESP}, {.op = OP_EXPECT_CL, .s = CHUNKED_RESP}, {.op = OP_EXPECT_FLOWS, .n = 1},
      {.op = OP_EXPECT_FLOW_BODIES, .n = 11, .m = 3}, {.op = OP_EXPECT_STATE, .n = H1_STATE_REQ_HEAD}, {.op = OP_END}}},
    {"close-delimited response: relayed until upstream EOF, then the client is closed",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_U, .s = "HTTP/1.1 200 OK\r\n\r\nabc"},
      {.op = OP_EXPECT_CL, .s = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc"}, {.op = OP_EXPECT_FLOWS, .n = 0},
      {.op = OP_U, .s = "defg"}, {.op = OP_EXPECT_CL, .s = "defg"}, {.op = OP_U_EOF}, {.op = OP_EXPECT_FLOWS, .n = 1},
      {.op = OP_EXPECT_FLOW_BODIES, .n = 0, .m = 7}, {.op = OP_EXPECT_FLOW_ERROR, .s = ""},
      {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE}, {.op = OP_END}}},
    {"HEAD: Content-Length in the response announces no body; next request keeps going",
     {0},
     {{.op = OP_C, .s = "HEAD /h HTTP/1.1\r\nHost: example.test\r\n\r\n"},
      {.op = OP_EXPECT_UP, .s = "HEAD /h HTTP/1.1\r\nHost: example.test\r\n\r\n"},
      {.op = OP_U, .s = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"},
      {.op = OP_EXPECT_CL, .s = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"},
      {.op = OP_EXPECT_FLOWS, .n = 1}, {.op = OP_EXPECT_FLOW_BODIES, .n = 0, .m = 0},
      {.op = OP_EXPECT_STATE, .n = H1_STATE_REQ_HEAD}, {.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A},
      {.op = OP_U, .s = RESP_HELLO}, {.op = OP_EXPECT_CL, .s = RESP_HELLO}, {.op = OP_EXPECT_FLOWS, .n = 2}, {.op = OP_END}}},
    {"204 and 304 have no body even with a Content-Length; keep-alive continues",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_U, .s = "HTTP/1.1 204 No Content\r\n\r\n"},
      {.op = OP_EXPECT_CL, .s = "HTTP/1.1 204 No Content\r\n\r\n"}, {.op = OP_EXPECT_FLOW_STATUS, .n = 204},
      {.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A},
      {.op = OP_U, .s = "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"},
      {.op = OP_EXPECT_CL, .s = "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"},
      {.op = OP_EXPECT_FLOWS, .n = 2}, {.op = OP_EXPECT_FLOW_STATUS, .n = 304},
      {.op = OP_EXPECT_STATE, .n = H1_STATE_REQ_HEAD}, {.op = OP_END}}},
    {"Expect: 100-continue: the 100 is relayed back, the body follows, the final response ends it",
     {0},
     {{.op = OP_C, .s = "PUT /p HTTP/1.1\r\nHost: example.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"},
      {.op = OP_EXPECT_UP, .s = "PUT /p HTTP/1.1\r\nHost: example.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"},
      {.op = OP_U, .s = "HTTP/1.1 100 Continue\r\n\r\n"}, {.op = OP_EXPECT_CL, .s = "HTTP/1.1 100 Continue\r\n\r\n"},
      {.op = OP_EXPECT_FLOWS, .n = 0}, {.op = OP_EXPECT_STATE, .n = H1_STATE_REQ_BODY},
      {.op = OP_C, .s = "data"}, {.op = OP_EXPECT_UP, .s = "data"}, {.op = OP_EXPECT_STATE, .n = H1_STATE_RESP_HEAD},
      {.op = OP_U, .s = "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"},
      {.op = OP_EXPECT_CL, .s = "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"},
      {.op = OP_EXPECT_FLOWS, .n = 1}, {.op = OP_EXPECT_FLOW_STATUS, .n = 201},
      {.op = OP_EXPECT_FLOW_BODIES, .n = 4, .m = 0}, {.op = OP_EXPECT_STATE, .n = H1_STATE_REQ_HEAD}, {.op = OP_END}}},
    {"pipelined: two requests in one read; the second is forwarded only after the first response",
     {0},
     {{.op = OP_C, .s = GET_A "GET /b HTTP/1.1\r\nHost: example.test\r\n\r\n"}, {.op = OP_EXPECT_UP, .s = GET_A},
      {.op = OP_U, .s = RESP_HELLO}, {.op = OP_EXPECT_CL, .s = RESP_HELLO},
      {.op = OP_EXPECT_UP, .s = "GET /b HTTP/1.1\r\nHost: example.test\r\n\r\n"},
      {.op = OP_U, .s = "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"},
      {.op = OP_EXPECT_CL, .s = "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno"},
      {.op = OP_EXPECT_FLOWS, .n = 2}, {.op = OP_EXPECT_FLOW_URL, .s = "https://example.test/b"},
      {.op = OP_EXPECT_FLOW_STATUS, .n = 404}, {.op = OP_END}}},
    {"Upgrade: websocket -> 101 -> raw two-way relay, messages counted; the flow is reported "
     "when the WebSocket ends",
     {0},
     {{.op = OP_C, .s = WS_REQ}, {.op = OP_EXPECT_UP, .s = WS_REQ_OUT}, {.op = OP_U, .s = WS_RESP}, {.op = OP_EXPECT_CL, .s = WS_RESP_OUT},
      {.op = OP_EXPECT_STATE, .n = H1_STATE_RAW}, {.op = OP_EXPECT_WANT, .n = H1_WANT_RAW},
      {.op = OP_EXPECT_FLOWS, .n = 0},
      {.op = OP_C, .s = "\x81\x02hi\x81\x0f GET / HTTP/1.1"}, {.op = OP_EXPECT_UP, .s = "\x81\x02hi\x81\x0f GET / HTTP/1.1"},
      {.op = OP_U, .s = "\x81\x03yo!"}, {.op = OP_EXPECT_CL, .s = "\x81\x03yo!"}, {.op = OP_C_EOF},
      {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE}, {.op = OP_EXPECT_FLOWS, .n = 1},
      {.op = OP_EXPECT_FLOW_STATUS, .n = 101}, {.op = OP_EXPECT_WS, .n = 2, .m = 1}, {.op = OP_END}}},
    {"Connection: close from the client: response relayed, then close",
     {0},
     {{.op = OP_C, .s = "GET /c HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"},
      {.op = OP_EXPECT_UP, .s = "GET /c HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n"},
      {.op = OP_U, .s = RESP_HELLO}, {.op = OP_EXPECT_CL, .s = RESP_HELLO_CLOSE}, {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE},
      {.op = OP_END}}},
    {"hop-by-hop fields (RFC 9110 §7.6.1) and the fields Connection names stay on their hop, "
     "both ways",
     {0},
     {{.op = OP_C, .s = "GET /h HTTP/1.1\r\nHost: example.test\r\nConnection: X-Secret, keep-alive\r\n"
             "X-Secret: s3cret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-T\r\n"
             "Proxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\n"
             "Accept: */*\r\n\r\n"},
      {.op = OP_EXPECT_UP, .s = "GET /h HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n\r\n"},
      {.op = OP_U, .s = "HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: 1\r\n"
             "Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nContent-Length: 2\r\n\r\nok"},
      {.op = OP_EXPECT_CL, .s = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
      {.op = OP_EXPECT_STATE, .n = H1_STATE_REQ_HEAD}, {.op = OP_EXPECT_FLOWS, .n = 1},
      {.op = OP_END}}},
    {"HTTP/1.0 client asking for keep-alive: kept, and said so on both hops",
     {0},
     {{.op = OP_C, .s = "GET /k HTTP/1.0\r\nHost: example.test\r\nConnection: keep-alive\r\n\r\n"},
      {.op = OP_EXPECT_UP, .s = "GET /k HTTP/1.0\r\nHost: example.test\r\nConnection: keep-alive\r\n\r\n"},
      {.op = OP_U, .s = RESP_HELLO},
      {.op = OP_EXPECT_CL, .s = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"},
      {.op = OP_EXPECT_STATE, .n = H1_STATE_REQ_HEAD}, {.op = OP_EXPECT_NOWANT, .n = H1_WANT_CLOSE},
      {.op = OP_END}}},
    {"Connection: close from the upstream: response relayed, then close",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A},
      {.op = OP_U, .s = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx"},
      {.op = OP_EXPECT_CL, .s = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"},
      {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE}, {.op = OP_EXPECT_FLOWS, .n = 1}, {.op = OP_END}}},
    {"HTTP/1.0 client without keep-alive: closes after the response; 1xx is not sent to it",
     {0},
     {{.op = OP_C, .s = "GET /old HTTP/1.0\r\n\r\n"}, {.op = OP_EXPECT_UP, .s = "GET /old HTTP/1.0\r\n\r\n"},
      {.op = OP_U, .s = "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"}, {.op = OP_EXPECT_CL, .s = ""},
      {.op = OP_U, .s = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
      {.op = OP_EXPECT_CL, .s = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"},
      {.op = OP_EXPECT_FLOW_URL, .s = "https://example.test/old"}, {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE},
      {.op = OP_END}}},
    {"client half-closes after a complete request: the response still arrives, then close",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_C_EOF}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_EXPECT_NOWANT, .n = H1_WANT_CLOSE},
      {.op = OP_U, .s = RESP_HELLO}, {.op = OP_EXPECT_CL, .s = RESP_HELLO}, {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE},
      {.op = OP_EXPECT_FLOWS, .n = 1}, {.op = OP_END}}},
    {"TLS upstream closes an idle keep-alive connection: the idle client is closed too",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_U, .s = RESP_HELLO},
      {.op = OP_EXPECT_CL, .s = RESP_HELLO}, {.op = OP_U_EOF},
      {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE}, {.op = OP_EXPECT_CL, .s = ""},
      {.op = OP_EXPECT_FLOWS, .n = 1}, {.op = OP_END}}},
    {"TLS upstream closes while the next request is arriving: ask for a new upstream",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_U, .s = RESP_HELLO},
      {.op = OP_EXPECT_CL, .s = RESP_HELLO}, {.op = OP_C, .s = "GET /a HT"}, {.op = OP_U_EOF},
      {.op = OP_C, .s = "TP/1.1\r\nHost: example.test\r\n\r\n"},
      {.op = OP_EXPECT_WANT, .n = H1_WANT_UPSTREAM},
      {.op = OP_EXPECT_TARGET, .s = "example.test", .n = 443, .m = 1}, {.op = OP_EXPECT_UP, .s = ""},
      {.op = OP_U_READY, .s = "example.test", .n = 443}, {.op = OP_EXPECT_UP, .s = GET_A},
      {.op = OP_U, .s = RESP_HELLO}, {.op = OP_EXPECT_CL, .s = RESP_HELLO},
      {.op = OP_EXPECT_FLOWS, .n = 2}, {.op = OP_END}}},
    {"plain upstream closes an idle keep-alive connection: the next request reconnects",
     {.no_upstream = true},
     {{.op = OP_C, .s = "GET http://p.test/1 HTTP/1.1\r\nHost: p.test\r\n\r\n"},
      {.op = OP_U_READY, .s = "p.test", .n = 80},
      {.op = OP_EXPECT_UP, .s = "GET /1 HTTP/1.1\r\nHost: p.test\r\n\r\n"},
      {.op = OP_U, .s = RESP_HELLO}, {.op = OP_EXPECT_CL, .s = RESP_HELLO}, {.op = OP_U_EOF},
      {.op = OP_EXPECT_NOWANT, .n = H1_WANT_CLOSE},
      {.op = OP_C, .s = "GET http://p.test/2 HTTP/1.1\r\nHost: p.test\r\n\r\n"},
      {.op = OP_EXPECT_WANT, .n = H1_WANT_UPSTREAM}, {.op = OP_EXPECT_TARGET, .s = "p.test", .n = 80},
      {.op = OP_U_READY, .s = "p.test", .n = 80},
      {.op = OP_EXPECT_UP, .s = "GET /2 HTTP/1.1\r\nHost: p.test\r\n\r\n"},
      {.op = OP_U, .s = RESP_HELLO}, {.op = OP_EXPECT_CL, .s = RESP_HELLO},
      {.op = OP_EXPECT_FLOWS, .n = 2}, {.op = OP_END}}},
    {"upstream sends bytes while idle: they are not taken as the next response; reconnect",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_U, .s = RESP_HELLO},
      {.op = OP_EXPECT_CL, .s = RESP_HELLO},
      {.op = OP_U_PUSH, .s = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad"},
      {.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_WANT, .n = H1_WANT_UPSTREAM},
      {.op = OP_EXPECT_CL, .s = ""}, {.op = OP_U_READY, .s = "example.test", .n = 443},
      {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_U, .s = RESP_HELLO},
      {.op = OP_EXPECT_CL, .s = RESP_HELLO}, {.op = OP_EXPECT_FLOWS, .n = 2}, {.op = OP_END}}},
    {"absolute-form: target exposed, rewritten to origin-form, Proxy-* dropped, Host from URL",
     {.no_upstream = true},
     {{.op = OP_C, .s = "GET http://Origin.test:8080/x?y=1 HTTP/1.1\r\nHost: wrong.test\r\n"
             "Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\nAccept: */*\r\n\r\n"},
      {.op = OP_EXPECT_STATE, .n = H1_STATE_NEED_UPSTREAM}, {.op = OP_EXPECT_WANT, .n = H1_WANT_UPSTREAM},
      {.op = OP_EXPECT_TARGET, .s = "Origin.test", .n = 8080, .m = 0}, {.op = OP_EXPECT_UP, .s = ""},
      {.op = OP_U_READY, .s = "Origin.test", .n = 8080},
      {.op = OP_EXPECT_UP, .s = "GET /x?y=1 HTTP/1.1\r\nHost: Origin.test:8080\r\nAccept: */*\r\n\r\n"},
      {.op = OP_U, .s = RESP_HELLO}, {.op = OP_EXPECT_CL, .s = RESP_HELLO},
      {.op = OP_EXPECT_FLOW_URL, .s = "http://Origin.test:8080/x?y=1"},
      {.op = OP_C, .s = "GET http://origin.test:8080/z HTTP/1.1\r\nHost: origin.test:8080\r\n\r\n"},
      {.op = OP_EXPECT_UP, .s = "GET /z HTTP/1.1\r\nHost: origin.test:8080\r\n\r\n"},
      {.op = OP_C, .s = ""}, {.op = OP_U, .s = RESP_HELLO}, {.op = OP_EXPECT_CL, .s = RESP_HELLO},
      {.op = OP_C, .s = "GET http://[::1]/v6 HTTP/1.0\r\n\r\n"}, {.op = OP_EXPECT_TARGET, .s = "::1", .n = 80, .m = 0},
      {.op = OP_U_READY, .s = "::1", .n = 80}, {.op = OP_EXPECT_UP, .s = "GET /v6 HTTP/1.0\r\nHost: [::1]\r\n\r\n"},
      {.op = OP_U, .s = RESP_HELLO}, {.op = OP_EXPECT_CL, .s = RESP_HELLO_CLOSE}, {.op = OP_EXPECT_FLOW_URL, .s = "http://[::1]/v6"},
      {.op = OP_EXPECT_FLOWS, .n = 3}, {.op = OP_END}}},
    /* ---- errors answered by the relay ---- */
    {"malformed request head (field without colon) -> 400, flow error, close",
     {0},
     {{.op = OP_C, .s = "GET / HTTP/1.1\r\nHost: example.test\r\nBad Header\r\n\r\n"},
      {.op = OP_EXPECT_CL_STATUS, .n = 400}, {.op = OP_EXPECT_UP, .s = ""}, {.op = OP_EXPECT_FLOWS, .n = 1},
      {.op = OP_EXPECT_FLOW_STATUS, .n = 400}, {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE}, {.op = OP_END}}},
    {"smuggling: Transfer-Encoding with Content-Length -> 400",
     {0},
     {{.op = OP_C, .s = "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 3\r\n"
             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {.op = OP_EXPECT_CL_STATUS, .n = 400}, {.op = OP_EXPECT_UP, .s = ""},
      {.op = OP_EXPECT_FLOW_ERROR, .s = "Transfer-Encoding"}, {.op = OP_END}}},
    {"smuggling: conflicting Content-Length values -> 400",
     {0},
     {{.op = OP_C, .s = "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
      {.op = OP_EXPECT_CL_STATUS, .n = 400}, {.op = OP_EXPECT_UP, .s = ""}, {.op = OP_END}}},
    {"smuggling: obs-fold -> 400",
     {0},
     {{.op = OP_C, .s = "GET / HTTP/1.1\r\nHost: example.test\r\nX-A: a\r\n  folded\r\n\r\n"},
      {.op = OP_EXPECT_CL_STATUS, .n = 400}, {.op = OP_EXPECT_UP, .s = ""}, {.op = OP_END}}},
    {"smuggling: bare CR in a field -> 400",
     {0},
     {{.op = OP_C, .s = "GET / HTTP/1.1\r\nHost: example.test\r\nX-A: a\rb\r\n\r\n"},
      {.op = OP_EXPECT_CL_STATUS, .n = 400}, {.op = OP_EXPECT_UP, .s = ""}, {.op = OP_END}}},
    {"smuggling: bad chunk size in the request body -> 400 after the head went upstream",
     {0},
     {{.op = OP_C, .s = "POST / HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
      {.op = OP_EXPECT_UP, .s = "POST / HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n"},
      {.op = OP_EXPECT_CL_STATUS, .n = 400}, {.op = OP_EXPECT_FLOWS, .n = 1},
      {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE}, {.op = OP_END}}},
    {"unsupported transfer coding (gzip, chunked) -> 501",
     {0},
     {{.op = OP_C, .s = "POST / HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
      {.op = OP_EXPECT_CL_STATUS, .n = 501}, {.op = OP_EXPECT_UP, .s = ""}, {.op = OP_EXPECT_FLOW_STATUS, .n = 501},
      {.op = OP_END}}},
    {"header block over --max-header-size (256) -> 431",
     {.max_header_size = 256},
     {{.op = OP_C, .s = "GET / HTTP/1.1\r\nHost: example.test\r\nX-Big: "
             "0123456789012345678901234567890123456789012345678901234567890123456789"
             "0123456789012345678901234567890123456789012345678901234567890123456789"
             "0123456789012345678901234567890123456789012345678901234567890123456789"
             "0123456789012345678901234567890123456789012345678901234567890123456789"},
      {.op = OP_EXPECT_CL_STATUS, .n = 431}, {.op = OP_EXPECT_UP, .s = ""}, {.op = OP_EXPECT_FLOW_STATUS, .n = 431},
      {.op = OP_END}}},
    {"header block larger than the client buffer (64 bytes) -> 431",
     {.ci_cap = 64},
     {{.op = OP_C_PARTIAL, .s = "GET / HTTP/1.1\r\nHost: example.test\r\nX-Big: 01234567890123456789012345"},
      {.op = OP_EXPECT_CL_STATUS, .n = 431}, {.op = OP_END}}},
    {"request head timeout with a partial head -> 408",
     {0},
     {{.op = OP_C, .s = "GET / HTTP/1.1\r\nHost: exa"}, {.op = OP_TIMEOUT, .n = H1_TIMEOUT_REQUEST_HEAD},
      {.op = OP_EXPECT_CL_STATUS, .n = 408}, {.op = OP_EXPECT_FLOWS, .n = 1},
      {.op = OP_EXPECT_FLOW_ERROR, .s = "request head"}, {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE}, {.op = OP_END}}},
    {"request head timeout with nothing received: silent close, no flow",
     {0},
     {{.op = OP_TIMEOUT, .n = H1_TIMEOUT_REQUEST_HEAD}, {.op = OP_EXPECT_CL, .s = ""},
      {.op = OP_EXPECT_FLOWS, .n = 0}, {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE}, {.op = OP_END}}},
    {"upstream timeout before the response -> 504",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_TIMEOUT, .n = H1_TIMEOUT_UPSTREAM},
      {.op = OP_EXPECT_CL_STATUS, .n = 504}, {.op = OP_EXPECT_FLOW_STATUS, .n = 504},
      {.op = OP_EXPECT_FLOW_ERROR, .s = "timed out"}, {.op = OP_END}}},
    {"upstream closes before responding -> 502 with the reason",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_U_EOF}, {.op = OP_EXPECT_CL_STATUS, .n = 502},
      {.op = OP_EXPECT_FLOW_ERROR, .s = "upstream closed before responding"},
      {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE}, {.op = OP_END}}},
    {"upstream closes in the middle of the response head -> 502",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_U, .s = "HTTP/1.1 200 OK\r\nContent-"}, {.op = OP_U_EOF},
      {.op = OP_EXPECT_CL_STATUS, .n = 502}, {.op = OP_EXPECT_FLOW_ERROR, .s = "upstream closed while responding"},
      {.op = OP_END}}},
    {"malformed response head -> 502 \"bad response from upstream: ...\"",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_U, .s = "HTTP/1.1 2x0 OK\r\n\r\n"},
      {.op = OP_EXPECT_CL_STATUS, .n = 502}, {.op = OP_EXPECT_FLOW_ERROR, .s = "bad response from upstream: "},
      {.op = OP_END}}},
    {"upstream reset before responding -> 502 with the transport's reason",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_U_ERROR, .s = "connection reset by upstream"},
      {.op = OP_EXPECT_CL_STATUS, .n = 502}, {.op = OP_EXPECT_FLOW_ERROR, .s = "connection reset by upstream"},
      {.op = OP_END}}},
    {"upstream closes in the middle of a Content-Length body: no answer possible, flow error",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_U, .s = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"},
      {.op = OP_EXPECT_CL, .s = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"}, {.op = OP_U_EOF},
      {.op = OP_EXPECT_CL, .s = ""}, {.op = OP_EXPECT_FLOWS, .n = 1}, {.op = OP_EXPECT_FLOW_STATUS, .n = 200},
      {.op = OP_EXPECT_FLOW_ERROR, .s = "upstream closed while responding"},
      {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE}, {.op = OP_END}}},
    {"TLS verify failure before any request: the next request head is answered 502 + reason",
     {0},
     {{.op = OP_U_FAILED, .s = "certificate verify failed: certificate has expired"}, {.op = OP_C, .s = GET_A},
      {.op = OP_EXPECT_UP, .s = ""}, {.op = OP_EXPECT_CL_STATUS, .n = 502},
      {.op = OP_EXPECT_FLOW_ERROR, .s = "certificate verify failed: certificate has expired"},
      {.op = OP_EXPECT_FLOW_URL, .s = "https://example.test/a"}, {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE},
      {.op = OP_END}}},
    {"absolute-form upstream connect fails -> 502 with the reason",
     {.no_upstream = true},
     {{.op = OP_C, .s = "GET http://nowhere.test/ HTTP/1.1\r\nHost: nowhere.test\r\n\r\n"},
      {.op = OP_EXPECT_WANT, .n = H1_WANT_UPSTREAM}, {.op = OP_U_FAILED, .s = "connection refused"},
      {.op = OP_EXPECT_CL_STATUS, .n = 502}, {.op = OP_EXPECT_FLOW_ERROR, .s = "connection refused"},
      {.op = OP_EXPECT_FLOW_URL, .s = "http://nowhere.test/"}, {.op = OP_END}}},
    {"absolute-form upstream connect times out -> 504",
     {.no_upstream = true},
     {{.op = OP_C, .s = "GET http://slow.test/ HTTP/1.1\r\nHost: slow.test\r\n\r\n"},
      {.op = OP_TIMEOUT, .n = H1_TIMEOUT_UPSTREAM}, {.op = OP_EXPECT_CL_STATUS, .n = 504}, {.op = OP_END}}},
    {"origin-form request to a plain proxy (no upstream) -> 400",
     {.no_upstream = true},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_CL_STATUS, .n = 400}, {.op = OP_EXPECT_FLOW_ERROR, .s = "not a proxy request"},
      {.op = OP_END}}},
    {"unsupported HTTP version -> 505",
     {0},
     {{.op = OP_C, .s = "GET / HTTP/1.2\r\nHost: example.test\r\n\r\n"}, {.op = OP_EXPECT_CL_STATUS, .n = 505},
      {.op = OP_END}}},
    {"client closes in the middle of a request body: flow reported with the error, close",
     {0},
     {{.op = OP_C, .s = "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10\r\n\r\nabc"},
      {.op = OP_EXPECT_UP, .s = "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10\r\n\r\nabc"},
      {.op = OP_C_EOF}, {.op = OP_EXPECT_FLOWS, .n = 1},
      {.op = OP_EXPECT_FLOW_ERROR, .s = "client closed while sending the request body"},
      {.op = OP_EXPECT_WANT, .n = H1_WANT_CLOSE}, {.op = OP_END}}},
    {"101 without an Upgrade request -> 502",
     {0},
     {{.op = OP_C, .s = GET_A}, {.op = OP_EXPECT_UP, .s = GET_A}, {.op = OP_U, .s = WS_RESP}, {.op = OP_EXPECT_CL_STATUS, .n = 502},
      {.op = OP_EXPECT_FLOW_ERROR, .s = "bad response from upstream"}, {.op = OP_END}}},
};

static const struct rec *last_rec(const struct harness *h)
{
    assert_true(h->n_recs > 0);
    return &h->recs[h->n_recs - 1];
}

static void expect_bytes(const char *note, const char *what, char *got, size_t *len,
                         const char *want)
{
    size_t wl = strlen(want);

    if (*len != wl || memcmp(got, want, wl) != 0)
        fail_msg("%s: %s got %zu bytes \"%.*s\", want %zu bytes \"%s\"", note, what, *len,
                 (int)*len, got, wl, want);
    *len = 0;
}

static void run_case(const struct relay_case *c)
{
    struct harness *h = harness_new(&c->setup);

    for (const struct step *s = c->steps; s->op != OP_END; s++) {
        switch (s->op) {
        case OP_C: {
            size_t n = strlen(s->s);

            if (feed(h, &h->ci, s->s, n, H1_WANT_CLIENT_READ) != n)
                fail_msg("%s: client bytes not accepted", c->note);
            break;
        }
        case OP_C_PARTIAL:
            feed(h, &h->ci, s->s, strlen(s->s), H1_WANT_CLIENT_READ);
            break;
        case OP_U: {
            size_t n = strlen(s->s);

            if (feed(h, &h->ui, s->s, n, H1_WANT_UPSTREAM_READ) != n)
                fail_msg("%s: upstream bytes not accepted", c->note);
            break;
        }
        case OP_U_PUSH:
            assert_int_equal(buf_append(&h->ui, s->s, strlen(s->s)), strlen(s->s));
            break;
        case OP_C_EOF:
            h1_relay_client_eof(&h->r);
            break;
        case OP_U_EOF:
            h1_relay_upstream_eof(&h->r);
            break;
        case OP_U_ERROR:
            h1_relay_upstream_error(&h->r, s->s);
            break;
        case OP_U_READY:
            h1_relay_upstream_ready(&h->r, s->s, (uint16_t)s->n, false);
            break;
        case OP_U_FAILED:
            h1_relay_upstream_failed(&h->r, s->s);
            break;
        case OP_TIMEOUT:
            h1_relay_timeout(&h->r, (enum h1_timeout)s->n);
            break;
        case OP_EXPECT_UP:
            settle(h);
            expect_bytes(c->note, "upstream", h->up_got, &h->up_len, s->s);
            break;
        case OP_EXPECT_CL:
            settle(h);
            expect_bytes(c->note, "client", h->cl_got, &h->cl_len, s->s);
            break;
        case OP_EXPECT_CL_STATUS: {
            char prefix[32];

            settle(h);
            snprintf(prefix, sizeof(prefix), "HTTP/1.1 %ld ", s->n);
            if (h->cl_len < strlen(prefix) || memcmp(h->cl_got, prefix, strlen(prefix)) != 0)
                fail_msg("%s: client got \"%.*s\", want status %ld", c->note, (int)h->cl_len,
                         h->cl_got, s->n);
            if (memmem(h->cl_got, h->cl_len, "Connection: close\r\n", 19) == NULL)
                fail_msg("%s: error answer without Connection: close", c->note);
            h->cl_len = 0;
            break;
        }
        case OP_EXPECT_STATE:
            settle(h);
            if (h1_relay_state(&h->r) != (enum h1_state)s->n)
                fail_msg("%s: state %s, want %s", c->note, h1_state_name(h1_relay_state(&h->r)),
                         h1_state_name((enum h1_state)s->n));
            break;
        case OP_EXPECT_WANT:
            settle(h);
            if ((h->wants & (unsigned)s->n) != (unsigned)s->n)
                fail_msg("%s: wants 0x%x, want bits 0x%lx", c->note, h->wants, s->n);
            break;
        case OP_EXPECT_NOWANT:
            settle(h);
            if ((h->wants & (unsigned)s->n) != 0)
                fail_msg("%s: wants 0x%x, unexpected bits 0x%lx", c->note, h->wants, s->n);
            break;
        case OP_EXPECT_FLOWS:
            settle(h);
            if (h->n_recs != (size_t)s->n)
                fail_msg("%s: %zu flows, want %ld", c->note, h->n_recs, s->n);
            break;
        case OP_EXPECT_FLOW_STATUS:
            settle(h);
            if (last_rec(h)->status != s->n)
                fail_msg("%s: flow status %d, want %ld", c->note, last_rec(h)->status, s->n);
            break;
        case OP_EXPECT_FLOW_ERROR:
            settle(h);
            if ((s->s[0] == '\0' && last_rec(h)->error[0] != '\0') ||
                strstr(last_rec(h)->error, s->s) == NULL)
                fail_msg("%s: flow error \"%s\", want \"%s\"", c->note, last_rec(h)->error, s->s);
            if (s->s[0] != '\0' && strstr(last_rec(h)->line, s->s) == NULL)
                fail_msg("%s: console line \"%s\" lacks the error", c->note, last_rec(h)->line);
            break;
        case OP_EXPECT_WS:
            settle(h);
            if (last_rec(h)->ws_sent != (uint64_t)s->n || last_rec(h)->ws_received != (uint64_t)s->m)
                fail_msg("%s: websocket messages %llu/%llu, want %ld/%ld", c->note,
                         (unsigned long long)last_rec(h)->ws_sent,
                         (unsigned long long)last_rec(h)->ws_received, s->n, s->m);
            break;
        case OP_EXPECT_FLOW_URL:
            settle(h);
            if (strcmp(last_rec(h)->url, s->s) != 0)
                fail_msg("%s: flow url \"%s\", want \"%s\"", c->note, last_rec(h)->url, s->s);
            break;
        case OP_EXPECT_FLOW_BODIES:
            settle(h);
            if (last_rec(h)->req_body != (uint64_t)s->n || last_rec(h)->resp_body != (uint64_t)s->m)
                fail_msg("%s: bodies %llu/%llu, want %ld/%ld", c->note,
                         (unsigned long long)last_rec(h)->req_body,
                         (unsigned long long)last_rec(h)->resp_body, s->n, s->m);
            break;
        case OP_EXPECT_TARGET: {
            const struct h1_target *t;

            settle(h);
            t = h1_relay_target(&h->r);
            if (strcmp(t->host, s->s) != 0 || t->port != s->n || t->tls != (s->m != 0))
                fail_msg("%s: target %s:%u tls=%d, want %s:%ld tls=%ld", c->note, t->host,
                         (unsigned)t->port, t->tls, s->s, s->n, s->m);
            break;
        }
        case OP_END:
            break;
        }
    }
    harness_free(h);
}

static void test_relay_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(relay_cases) / sizeof(relay_cases[0]); i++)
        run_case(&relay_cases[i]);
}

/* ---- loops over split points and buffer sizes -------------------------------------------- */

#define POST_CL "POST /form HTTP/1.1\r\nHost: example.test\r\nContent-Length: 11\r\n\r\nhello world"
#define RESP_CL "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nthanks"

/* A POST with a Content-Length body, and its response, each split at every byte boundary:
 * the upstream and the client must see exactly the original bytes, one flow per exchange. */
static void test_post_split_every_boundary(void **state)
{
    static const struct setup s = {0};
    const size_t req_len = sizeof(POST_CL) - 1, resp_len = sizeof(RESP_CL) - 1;

    (void)state;
    for (size_t k = 0; k <= req_len; k++) {
        struct harness *h = harness_new(&s);
        size_t j = k % (resp_len + 1);

        assert_int_equal(feed(h, &h->ci, POST_CL, k, H1_WANT_CLIENT_READ), k);
        assert_int_equal(feed(h, &h->ci, &POST_CL[k], req_len - k, H1_WANT_CLIENT_READ),
                         req_len - k);
        settle(h);
        assert_int_equal(h->up_len, req_len);
        assert_memory_equal(h->up_got, POST_CL, req_len);
        assert_int_equal(feed(h, &h->ui, RESP_CL, j, H1_WANT_UPSTREAM_READ), j);
        assert_int_equal(h->n_recs, j == resp_len ? 1 : 0);
        assert_int_equal(feed(h, &h->ui, &RESP_CL[j], resp_len - j, H1_WANT_UPSTREAM_READ),
                         resp_len - j);
        settle(h);
        assert_int_equal(h->cl_len, resp_len);
        assert_memory_equal(h->cl_got, RESP_CL, resp_len);
        assert_int_equal(h->n_recs, 1);
        assert_int_equal(h->recs[0].req_body, 11);
        assert_int_equal(h->recs[0].resp_body, 6);
        assert_int_equal(h1_relay_state(&h->r), H1_STATE_REQ_HEAD);
        harness_free(h);
    }
}

/* Chunked request and response fed one byte per read: same bytes out, body sizes exact. */
static void test_chunked_byte_by_byte(void **state)
{
    static const struct setup s = {0};
    struct harness *h = harness_new(&s);

    (void)state;
    for (size_t i = 0; i < sizeof(CHUNKED_REQ) - 1; i++)
        assert_int_equal(feed(h, &h->ci, &CHUNKED_REQ[i], 1, H1_WANT_CLIENT_READ), 1);
    settle(h);
    assert_int_equal(h->up_len, sizeof(CHUNKED_REQ) - 1);
    assert_memory_equal(h->up_got, CHUNKED_REQ, h->up_len);
    for (size_t i = 0; i < sizeof(CHUNKED_RESP) - 1; i++)
        assert_int_equal(feed(h, &h->ui, &CHUNKED_RESP[i], 1, H1_WANT_UPSTREAM_READ), 1);
    settle(h);
    assert_int_equal(h->cl_len, sizeof(CHUNKED_RESP) - 1);
    assert_memory_equal(h->cl_got, CHUNKED_RESP, h->cl_len);
    assert_int_equal(h->n_recs, 1);
    assert_int_equal(h->recs[0].req_body, 11);
    assert_int_equal(h->recs[0].resp_body, 3);
    harness_free(h);
}

struct bp_case {
    const char *note;
    struct setup setup;
    size_t drain_step;
};

static const struct bp_case bp_cases[] = {
    {"output buffers of 7 bytes, drained 3 at a time", {.uo_cap = 7, .co_cap = 7}, 3},
    {"output buffers of 1 byte, drained 1 at a time", {.uo_cap = 1, .co_cap = 1}, 1},
    {"input buffers of 96 bytes (head fits), outputs of 5", {.ci_cap = 96, .ui_cap = 96, .uo_cap = 5, .co_cap = 5}, 2},
    {"absolute-form rebuilt head through a 3-byte output", {.uo_cap = 3, .co_cap = 4, .no_upstream = true}, 1},
};

/* bp_feed_response feeds the response `resp` to the relay as it accepts it, drains, and
 * checks that the client got exactly those bytes and no output buffer held more than its
 * capacity. */
static void bp_feed_response(struct harness *h, const struct bp_case *bc, const char *resp,
                             size_t resp_len)
{
    size_t off = 0;

        while (off < resp_len) {
            size_t k = feed(h, &h->ui, resp + off, resp_len - off, H1_WANT_UPSTREAM_READ);

            if (k == 0)
                fail_msg("%s: upstream feed stalled at %zu", bc->note, off);
            off += k;
        }
        settle(h);
        if (h->cl_len != resp_len || memcmp(h->cl_got, resp, h->cl_len) != 0)
            fail_msg("%s: client got %zu bytes, want %zu", bc->note, h->cl_len, resp_len);
        if (h->max_out_seen > (bc->setup.uo_cap > bc->setup.co_cap ? bc->setup.uo_cap : bc->setup.co_cap))
            fail_msg("%s: %zu bytes in an output buffer", bc->note, h->max_out_seen);
}

/* Backpressure: a large body through tiny output buffers. The relay never writes more than
 * the room, stops reading when full, resumes after a drain, and the bytes arrive intact. */
static void test_backpressure(void **state)
{
    enum { BODY = 20000 };
    static char req[BODY + 256], resp[BODY + 256];
    static char want_up[BODY + 256];
    int req_len, resp_len, want_up_len;

    (void)state;
    for (size_t c = 0; c < sizeof(bp_cases) / sizeof(bp_cases[0]); c++) {
        const struct bp_case *bc = &bp_cases[c];
        struct harness *h = harness_new(&bc->setup);
        size_t off = 0;

        if (bc->setup.no_upstream) {
            req_len = snprintf(req, sizeof(req),
                               "PUT http://big.test/b HTTP/1.1\r\nHost: big.test\r\n"
                               "Content-Length: %d\r\n\r\n", BODY);
            want_up_len = snprintf(want_up, sizeof(want_up),
                                   "PUT /b HTTP/1.1\r\nHost: big.test\r\nContent-Length: %d\r\n\r\n",
                                   BODY);
        } else {
            req_len = snprintf(req, sizeof(req),
                               "PUT /b HTTP/1.1\r\nHost: example.test\r\nContent-Length: %d\r\n\r\n",
                               BODY);
            memcpy(want_up, req, (size_t)req_len);
            want_up_len = req_len;
        }
        for (int i = 0; i < BODY; i++) {
            req[req_len + i] = (char)('a' + i % 26);
            want_up[want_up_len + i] = (char)('a' + i % 26);
        }
        req_len += BODY;
        want_up_len += BODY;
        resp_len = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
                            BODY);
        for (int i = 0; i < BODY; i++)
            resp[resp_len + i] = (char)('A' + i % 26);
        resp_len += BODY;

        h->drain_step = bc->drain_step;
        /* Feed the client side in slices as the relay accepts them. */
        while (off < (size_t)req_len) {
            size_t k = feed(h, &h->ci, req + off, (size_t)req_len - off, H1_WANT_CLIENT_READ);

            if (bc->setup.no_upstream && (h->wants & H1_WANT_UPSTREAM))
                h1_relay_upstream_ready(&h->r, "big.test", 80, false);
            if (k == 0 && !(h->wants & H1_WANT_UPSTREAM))
                fail_msg("%s: client feed stalled at %zu", bc->note, off);
            off += k;
        }
        settle(h);
        if (h->up_len != (size_t)want_up_len || memcmp(h->up_got, want_up, h->up_len) != 0)
            fail_msg("%s: upstream got %zu bytes, want %d", bc->note, h->up_len, want_up_len);
        bp_feed_response(h, bc, resp, (size_t)resp_len);
        assert_int_equal(h->n_recs, 1);
        assert_int_equal(h->recs[0].req_body, BODY);
        assert_int_equal(h->recs[0].resp_body, BODY);
        if (pass_mode && h->passed == 0) /* declines refill `out`, so not all of them */
            fail_msg("%s: no body byte passed", bc->note);
        harness_free(h);
    }
}

/* Backpressure on a chunked response: 20 chunks of 1000 bytes (and the last chunk) through
 * the tiny buffers of bp_cases; the framing arrives unchanged, the recorded body size is the
 * payload's, and no output buffer holds more than its capacity. */
static void test_chunked_backpressure(void **state)
{
    enum { CHUNKS = 20, CHUNK = 1000 };
    static const char req[] = "GET /c HTTP/1.1\r\nHost: example.test\r\n\r\n";
    static char resp[CHUNKS * (CHUNK + 16) + 128];
    int resp_len = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");

    (void)state;
    for (int c = 0; c < CHUNKS; c++) {
        resp_len += snprintf(resp + resp_len, sizeof(resp) - (size_t)resp_len, "3e8\r\n");
        for (int i = 0; i < CHUNK; i++)
            resp[resp_len++] = (char)('a' + (c + i) % 26);
        resp[resp_len++] = '\r';
        resp[resp_len++] = '\n';
    }
    resp_len += snprintf(resp + resp_len, sizeof(resp) - (size_t)resp_len, "0\r\n\r\n");
    for (size_t c = 0; c < sizeof(bp_cases) / sizeof(bp_cases[0]); c++) {
        const struct bp_case *bc = &bp_cases[c];
        struct harness *h;

        if (bc->setup.no_upstream)
            continue;
        h = harness_new(&bc->setup);
        h->drain_step = bc->drain_step;
        assert_int_equal(feed(h, &h->ci, req, sizeof(req) - 1, H1_WANT_CLIENT_READ), sizeof(req) - 1);
        settle(h);
        assert_int_equal(h->up_len, sizeof(req) - 1);
        bp_feed_response(h, bc, resp, (size_t)resp_len);
        assert_int_equal(h->n_recs, 1);
        assert_int_equal(h->recs[0].resp_body, CHUNKS * CHUNK);
        assert_int_equal(h1_relay_state(&h->r), H1_STATE_REQ_HEAD);
        if (pass_mode && h->passed == 0)
            fail_msg("%s: no chunked byte passed", bc->note);
        harness_free(h);
    }
}

/* with_pass runs the test `fn` with opts.pass (pass_mode): bodies skip the output buffers
 * (in bounded bites, sometimes declined), and both sides must still see exactly the original
 * bytes in order, with the same flow records. */
static void with_pass(void (*fn)(void **), void **state)
{
    pass_mode = true;
    fn(state);
    pass_mode = false;
}

static void test_chunked_backpressure_pass(void **state)
{
    with_pass(test_chunked_backpressure, state);
}

static void test_chunked_byte_by_byte_pass(void **state)
{
    with_pass(test_chunked_byte_by_byte, state);
}

static void test_relay_cases_pass(void **state)
{
    with_pass(test_relay_cases, state);
}

static void test_backpressure_pass(void **state)
{
    with_pass(test_backpressure, state);
}

/* With the upstream-bound buffer full, the relay must stop asking for client bytes once the
 * client buffer fills, and ask again after a drain. */
static void test_backpressure_stops_reading(void **state)
{
    static const struct setup s = {.ci_cap = 128, .uo_cap = 64};
    struct harness *h = harness_new(&s);
    char body[300];
    char head[] = "POST /x HTTP/1.1\r\nHost: example.test\r\nContent-Length: 300\r\n\r\n";
    size_t n;

    (void)state;
    memset(body, 'z', sizeof(body));
    /* Nobody drains the outputs: pump only. */
    assert_int_equal(buf_append(&h->ci, head, sizeof(head) - 1), sizeof(head) - 1);
    h->wants = h1_relay_pump(&h->r);
    assert_true(buf_used(&h->uo) <= 64);
    n = 0;
    for (;;) { /* fill the client buffer up while the relay forwards what fits */
        size_t k = buf_append(&h->ci, body + n, sizeof(body) - n);

        n += k;
        h->wants = h1_relay_pump(&h->r);
        if (k == 0)
            break;
    }
    assert_true(n < sizeof(body));
    assert_int_equal(buf_used(&h->uo), 64);           /* full, never more */
    assert_int_equal(buf_used(&h->ci), 128);          /* the rest waits in the client buffer */
    assert_false(h->wants & H1_WANT_CLIENT_READ);      /* so no more reads */
    settle(h);                                         /* drain: moves on */
    assert_true(h->wants & H1_WANT_CLIENT_READ);
    assert_int_equal(feed(h, &h->ci, body + n, sizeof(body) - n, H1_WANT_CLIENT_READ),
                     sizeof(body) - n);
    settle(h);
    assert_int_equal(h->up_len, sizeof(head) - 1 + sizeof(body));
    assert_int_equal(h1_relay_state(&h->r), H1_STATE_RESP_HEAD);
    harness_free(h);
}

/* An error answer larger than the free room in client_out is delivered over several flushes,
 * and H1_WANT_CLOSE comes only after its last byte. */
static void test_answer_through_small_buffer(void **state)
{
    static const struct setup s = {.co_cap = 8};
    struct harness *h = harness_new(&s);
    const char *why = "certificate verify failed: self-signed certificate";
    int rounds = 0;

    (void)state;
    h1_relay_upstream_failed(&h->r, why);
    assert_int_equal(buf_append(&h->ci, GET_A, sizeof(GET_A) - 1), sizeof(GET_A) - 1);
    for (;;) {
        h->wants = h1_relay_pump(&h->r);
        assert_true(buf_used(&h->co) <= 8);
        if (h->wants & H1_WANT_CLOSE)
            break;
        assert_true(drain(h) > 0);
        rounds++;
    }
    drain(h);
    assert_true(rounds > 5);
    assert_non_null(memmem(h->cl_got, h->cl_len, why, strlen(why)));
    assert_memory_equal(h->cl_got, "HTTP/1.1 502 Bad Gateway\r\n", 26);
    assert_int_equal(h->n_recs, 1);
    harness_free(h);
}


/* An error answer must never be appended after part of an interim (1xx) head: with the client
 * not reading, only 8 bytes of "100 Continue" reach client_out when the upstream times out.
 * The client must then get a prefix of the interim head and nothing else (the relay closes),
 * never "HTTP/1.1HTTP/1.1 504 ...", which a client would parse as garbage. */
static void test_no_answer_after_partial_interim(void **state)
{
    static const struct setup s = {.co_cap = 8};
    static const char req[] = "POST /e HTTP/1.1\r\nHost: example.test\r\nExpect: 100-continue\r\n"
                              "Content-Length: 3\r\n\r\n";
    static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct harness *h = harness_new(&s);

    (void)state;
    assert_int_equal(buf_append(&h->ci, req, sizeof(req) - 1), sizeof(req) - 1);
    h->wants = h1_relay_pump(&h->r);
    assert_int_equal(buf_append(&h->ui, interim, sizeof(interim) - 1), sizeof(interim) - 1);
    h->wants = h1_relay_pump(&h->r);
    assert_int_equal(buf_used(&h->co), 8); /* part of the interim head, client not reading */
    h1_relay_timeout(&h->r, H1_TIMEOUT_UPSTREAM);
    for (int i = 0; i < 1000 && !(h->wants & H1_WANT_CLOSE); i++) {
        h->wants = h1_relay_pump(&h->r);
        drain(h);
    }
    drain(h);
    assert_true(h->wants & H1_WANT_CLOSE);
    if (h->cl_len < sizeof(interim) - 1) {
        assert_memory_equal(h->cl_got, interim, h->cl_len);
    } else {
        assert_memory_equal(h->cl_got, interim, sizeof(interim) - 1);
        assert_memory_equal(h->cl_got + sizeof(interim) - 1, "HTTP/1.1 504 ", 13);
    }
    assert_int_equal(h->n_recs, 1);
    assert_non_null(strstr(h->recs[0].error, "timed out"));
    harness_free(h);
}

/* ---- robustness ---------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static const char *const seeds[] = {
    GET_A, POST_CL, CHUNKED_REQ, WS_REQ, RESP_HELLO, RESP_CL, CHUNKED_RESP, WS_RESP,
    "GET http://a.test:81/x HTTP/1.1\r\nHost: a.test:81\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nclose-delimited",
};

/* Mutated messages fed from both sides in random slices, with random events and buffer
 * sizes: the relay must terminate every pump, never overfill an output buffer, and end each
 * run in a consistent state (checked under ASan/UBSan in the sanitizer build). A fixed seed
 * keeps it reproducible. */
static void test_mutations_never_break_invariants(void **state)
{
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    char msg[512];

    (void)state;
    for (int run = 0; run < 3000; run++) {
        struct setup s = {
            .ci_cap = 16 + rng_next(&rng) % 300,
            .co_cap = 1 + rng_next(&rng) % 64,
            .ui_cap = 16 + rng_next(&rng) % 300,
            .uo_cap = 1 + rng_next(&rng) % 64,
            .max_header_size = rng_next(&rng) % 2 ? 0 : 64 + rng_next(&rng) % 200,
            .no_upstream = rng_next(&rng) % 4 == 0,
        };
        struct harness *h = harness_new(&s);

        h->drain_step = rng_next(&rng) % 8;
        for (int step = 0; step < 12; step++) {
            const char *seed = seeds[rng_next(&rng) % (sizeof(seeds) / sizeof(seeds[0]))];
            size_t len = strlen(seed);
            int flips = (int)(rng_next(&rng) % 4);

            memcpy(msg, seed, len);
            for (int f = 0; f < flips; f++)
                msg[rng_next(&rng) % len] = (char)rng_next(&rng);
            len = 1 + rng_next(&rng) % len;
            switch (rng_next(&rng) % 10) {
            case 0:
                h1_relay_client_eof(&h->r);
                break;
            case 1:
                h1_relay_upstream_eof(&h->r);
                break;
            case 2:
                h1_relay_timeout(&h->r, (enum h1_timeout)(rng_next(&rng) % 2));
                break;
            case 3:
                if (h->wants & H1_WANT_UPSTREAM)
                    h1_relay_upstream_ready(&h->r, h1_relay_target(&h->r)->host,
                                            h1_relay_target(&h->r)->port, false);
                else
                    h1_relay_upstream_failed(&h->r, "random failure");
                break;
            case 4:
            case 5:
            case 6:
                feed(h, &h->ui, msg, len, H1_WANT_UPSTREAM_READ);
                break;
            default:
                feed(h, &h->ci, msg, len, H1_WANT_CLIENT_READ);
                break;
            }
            settle(h);
            assert_true(h1_relay_state(&h->r) < H1_STATE_COUNT);
            if (h->wants & H1_WANT_CLOSE)
                assert_int_equal(h1_relay_state(&h->r), H1_STATE_CLOSING);
        }
        for (size_t i = 0; i < h->n_recs; i++)
            assert_true(h->recs[i].json_len > 0);
        harness_free(h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_cases),
        cmocka_unit_test(test_post_split_every_boundary),
        cmocka_unit_test(test_chunked_byte_by_byte),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_relay_cases_pass),
        cmocka_unit_test(test_chunked_backpressure),
        cmocka_unit_test(test_chunked_backpressure_pass),
        cmocka_unit_test(test_chunked_byte_by_byte_pass),
        cmocka_unit_test(test_backpressure_pass),
        cmocka_unit_test(test_backpressure_stops_reading),
        cmocka_unit_test(test_answer_through_small_buffer),
        cmocka_unit_test(test_no_answer_after_partial_interim),
        cmocka_unit_test(test_mutations_never_break_invariants),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
