/* test_h2_relay.c - cmocka tests of worker/h2_relay with real nghttp2 sessions on both ends,
 * in memory: a test client session writes client_in and reads client_out, a test origin
 * session reads up_out and writes up_in. Bodies are a position-dependent byte pattern checked
 * byte by byte on arrival. Each case is a table row with a note. */
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

#include "worker/flow.h"
#include "worker/h2_relay.h"
#include "worker/h2_relay_internal.h"

#define BUF_CAP 16384
#define MAX_IDS 1024 /* stream slots per peer, indexed by (id - 1) / 2 */
#define MAX_FLOWS 2048
#define POOL_STREAMS 256
#define ROUNDS 200000

static uint8_t pattern(uint64_t i) { return (uint8_t)(i * 131u + (i >> 9) * 7u + 5u); }

/* ---- per-stream records -------------------------------------------------------------- */

/* struct cstream is what the test client saw of one of its streams. */
struct cstream {
    bool used;
    int status;
    int interim; /* last 1xx status seen */
    uint64_t body, mismatches;
    bool closed;
    uint32_t close_code;
    bool got_trailer;
    char body_text[256];             /* first bytes of the body (for mitmd's own answers) */
    char proxy_status[256];          /* the Proxy-Status field of mitmd's own answers */
    uint64_t upload_len, upload_off; /* request body we send */
    bool upload_trailers;
};

/* struct sstream is what the test origin saw of one stream. */
struct sstream {
    bool used;
    char path[128];
    char method[16];
    uint64_t body, mismatches;
    bool req_ended;
    bool got_trailer;
    bool closed;
    uint32_t close_code;
    bool responded;
    uint64_t resp_len, resp_off; /* response body we send */
    bool resp_trailers;
};

struct rec {
    int status;
    bool answered;
    char error[FLOW_ERROR_MAX];
    char url[512];
    char method[16];
    char req_version[16], resp_version[16];
    uint64_t req_body, resp_body;
    char line[1024];
    unsigned n_req_headers;
    int64_t connect_ns, tls_ns;
};

struct peer {
    nghttp2_session *s;
    struct buf *to_relay;   /* the peer writes here (client_in / up_in) */
    struct buf *from_relay; /* the peer reads here (client_out / up_out) */
    const uint8_t *pend;
    size_t pend_len;
    bool no_read;  /* stop draining from_relay (slow peer) */
    bool no_write; /* stop writing to_relay (stalled peer) */
    int fatal;     /* a fatal nghttp2 error of the peer session */
    bool got_goaway;
    int32_t goaway_last;
    uint32_t goaway_code;
    uint64_t body_sent; /* DATA payload bytes this peer produced */
};

struct world {
    uint8_t mem[4][BUF_CAP];
    struct buf ci, co, ui, uo;
    struct flow conn_flow;
    struct h2_pool *pool;
    struct h2_relay r;
    bool relay_on;
    unsigned wants;
    struct peer cli, srv;
    struct cstream cs[MAX_IDS];
    struct sstream ss[MAX_IDS];
    struct rec *recs;
    size_t n_recs;
    bool raw_client; /* the client side is written by hand (no client session) */
    size_t pool_streams;
    bool manual_window;
    int32_t stalled; /* with manual_window: this stream's window is never reopened */
};

static struct cstream *cst(struct world *w, int32_t id)
{
    if (id <= 0 || (id - 1) / 2 >= MAX_IDS)
        return NULL;
    return &w->cs[(id - 1) / 2];
}

static struct sstream *sst(struct world *w, int32_t id)
{
    if (id <= 0 || (id - 1) / 2 >= MAX_IDS)
        return NULL;
    return &w->ss[(id - 1) / 2];
}

static void on_flow(void *arg, const struct flow *f)
{
    struct world *w = arg;
    struct rec *rec;

    assert_true(w->n_recs < MAX_FLOWS);
    rec = &w->recs[w->n_recs++];
    memset(rec, 0, sizeof(*rec));
    rec->status = f->status;
    rec->answered = f->answered;
    snprintf(rec->error, sizeof(rec->error), "%s", f->error);
    snprintf(rec->url, sizeof(rec->url), "%.*s", (int)f->url.len, flow_str_ptr(f, f->url));
    snprintf(rec->method, sizeof(rec->method), "%.*s", (int)f->method.len,
             flow_str_ptr(f, f->method));
    snprintf(rec->req_version, sizeof(rec->req_version), "%.*s", (int)f->req_version.len,
             flow_str_ptr(f, f->req_version));
    snprintf(rec->resp_version, sizeof(rec->resp_version), "%.*s", (int)f->resp_version.len,
             flow_str_ptr(f, f->resp_version));
    rec->req_body = f->req_body_size;
    rec->resp_body = f->resp_body_size;
    rec->n_req_headers = f->n_req_headers;
    rec->connect_ns = f->connect_ns;
    rec->tls_ns = f->tls_ns;
    assert_true(flow_format_line(f, rec->line, sizeof(rec->line)) > 0);
    {
        static char json[65536];
        ssize_t n = flow_format_json(f, json, sizeof(json) - 1);

        assert_true(n > 0);
        json[n] = '\0';
        assert_non_null(strstr(json, "\"httpVersion\":\"HTTP/2.0\""));
        assert_non_null(strstr(json, "\"alpn\":\"h2\""));
    }
}

static const struct rec *rec_by_url_suffix(struct world *w, const char *suffix)
{
    size_t n = strlen(suffix);

    for (size_t i = 0; i < w->n_recs; i++) {
        size_t l = strlen(w->recs[i].url);

        if (l >= n && strcmp(w->recs[i].url + l - n, suffix) == 0)
            return &w->recs[i];
    }
    return NULL;
}

/* ---- test client callbacks ----------------------------------------------------------- */

static int cli_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *ud)
{
    struct world *w = ud;
    struct cstream *c = cst(w, frame->hd.stream_id);

    if (c == NULL)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        int st = atoi((const char *)value);

        if (st >= 200)
            c->status = st;
        else
            c->interim = st;
    }
    if (namelen == 12 && memcmp(name, "proxy-status", 12) == 0)
        snprintf(c->proxy_status, sizeof(c->proxy_status), "%.*s", (int)valuelen,
                 (const char *)value);
    if (namelen == 14 && memcmp(name, "x-resp-trailer", 14) == 0 && valuelen == 3 &&
        memcmp(value, "yes", 3) == 0)
        c->got_trailer = true;
    return 0;
}

static int cli_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                       size_t len, void *ud)
{
    struct world *w = ud;
    struct cstream *c = cst(w, id);

    if (c == NULL)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (c->body + i < sizeof(c->body_text) - 1)
            c->body_text[c->body + i] = (char)data[i];
        if (data[i] != pattern(c->body + i))
            c->mismatches++;
    }
    c->body += len;
    if (w->manual_window) {
        nghttp2_session_consume_connection(s, len);
        if (id != w->stalled)
            nghttp2_session_consume_stream(s, id, len);
    }
    return 0;
}

static int cli_on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct world *w = ud;
    struct cstream *c = cst(w, id);

    if (c != NULL) {
        c->closed = true;
        c->close_code = code;
    }
    return 0;
}

static int peer_on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud);

static ssize_t upload_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct cstream *c = src->ptr;
    size_t n = c->upload_len - c->upload_off;
    struct world *w = ud;

    if (n > len)
        n = len;
    for (size_t i = 0; i < n; i++)
        out[i] = pattern(c->upload_off + i);
    c->upload_off += n;
    w->cli.body_sent += n;
    if (c->upload_off == c->upload_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (c->upload_trailers) {
            nghttp2_nv t[] = {{(uint8_t *)"x-req-trailer", (uint8_t *)"1", 13, 1, 0}};

            if (nghttp2_submit_trailer(s, id, t, 1) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
    }
    return (ssize_t)n;
}

/* ---- test origin callbacks ----------------------------------------------------------- */

static int srv_on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct world *w = ud;
    struct sstream *x = sst(w, frame->hd.stream_id);

    if (x != NULL && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        memset(x, 0, sizeof(*x));
        x->used = true;
    }
    return 0;
}

static int srv_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *ud)
{
    struct world *w = ud;
    struct sstream *x = sst(w, frame->hd.stream_id);

    if (x == NULL)
        return 0;
    if (namelen == 5 && memcmp(name, ":path", 5) == 0)
        snprintf(x->path, sizeof(x->path), "%.*s", (int)valuelen, (const char *)value);
    if (namelen == 7 && memcmp(name, ":method", 7) == 0)
        snprintf(x->method, sizeof(x->method), "%.*s", (int)valuelen, (const char *)value);
    if (namelen == 13 && memcmp(name, "x-req-trailer", 13) == 0)
        x->got_trailer = true;
    return 0;
}

static int srv_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                       size_t len, void *ud)
{
    struct world *w = ud;
    struct sstream *x = sst(w, id);

    if (x == NULL)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (data[i] != pattern(x->body + i))
            x->mismatches++;
    x->body += len;
    return 0;
}

static int srv_on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct world *w = ud;
    struct sstream *x = sst(w, id);

    if (x != NULL) {
        x->closed = true;
        x->close_code = code;
    }
    return 0;
}

static ssize_t resp_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    struct sstream *x = src->ptr;
    struct world *w = ud;
    size_t n = x->resp_len - x->resp_off;

    if (n > len)
        n = len;
    for (size_t i = 0; i < n; i++)
        out[i] = pattern(x->resp_off + i);
    x->resp_off += n;
    w->srv.body_sent += n;
    if (x->resp_off == x->resp_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (x->resp_trailers) {
            nghttp2_nv t[] = {{(uint8_t *)"x-resp-trailer", (uint8_t *)"yes", 14, 3, 0}};

            if (nghttp2_submit_trailer(s, id, t, 1) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
    }
    return (ssize_t)n;
}

/* srv_respond answers origin stream `id` with 200 and `len` pattern bytes. */
static void srv_respond(struct world *w, int32_t id, uint64_t len, bool trailers)
{
    struct sstream *x = sst(w, id);
    char clen[24], rb[24], mm[24];
    nghttp2_data_provider prd = {.source = {.ptr = x}, .read_callback = resp_read};

    assert_non_null(x);
    x->responded = true;
    x->resp_len = len;
    x->resp_trailers = trailers;
    snprintf(clen, sizeof(clen), "%llu", (unsigned long long)len);
    snprintf(rb, sizeof(rb), "%llu", (unsigned long long)x->body);
    snprintf(mm, sizeof(mm), "%llu", (unsigned long long)x->mismatches);
    {
        nghttp2_nv nva[] = {
            {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
            {(uint8_t *)"content-length", (uint8_t *)clen, 14, strlen(clen), 0},
            {(uint8_t *)"x-req-bytes", (uint8_t *)rb, 11, strlen(rb), 0},
            {(uint8_t *)"x-req-mismatch", (uint8_t *)mm, 14, strlen(mm), 0},
        };

        assert_int_equal(nghttp2_submit_response(w->srv.s, id, nva, trailers ? 2 : 4,
                                                 len > 0 || trailers ? &prd : NULL),
                         0);
    }
}

/* The origin's behaviour by path: /bytes/N -> N bytes; /echo -> after the request body, 200
 * with x-req-bytes; /trailers -> 5 bytes + trailers; /hold/... -> the test answers. */
static void srv_maybe_respond(struct world *w, int32_t id)
{
    struct sstream *x = sst(w, id);

    if (x == NULL || x->responded || strncmp(x->path, "/hold", 5) == 0)
        return;
    if (strcmp(x->path, "/early") == 0 && x->req_ended) {
        nghttp2_nv hints[] = {{(uint8_t *)":status", (uint8_t *)"103", 7, 3, 0},
                              {(uint8_t *)"link", (uint8_t *)"</s.css>", 4, 8, 0}};

        assert_int_equal(
            nghttp2_submit_headers(w->srv.s, NGHTTP2_FLAG_NONE, id, NULL, hints, 2, NULL), 0);
        srv_respond(w, id, 9, false);
        return;
    }
    if (strcmp(x->path, "/badheader") == 0 && x->req_ended) {
        nghttp2_nv bad[] = {{(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
                            {(uint8_t *)"connection", (uint8_t *)"close", 10, 5, 0}};

        x->responded = true;
        assert_int_equal(nghttp2_submit_response(w->srv.s, id, bad, 2, NULL), 0);
        return;
    }
    if (strncmp(x->path, "/bytes/", 7) == 0)
        srv_respond(w, id, strtoull(x->path + 7, NULL, 10), false);
    else if (strcmp(x->path, "/echo") == 0 && x->req_ended)
        srv_respond(w, id, 0, false);
    else if (strcmp(x->path, "/trailers") == 0 && x->req_ended)
        srv_respond(w, id, 5, true);
}

static int peer_on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct world *w = ud;
    struct peer *p = s == w->cli.s ? &w->cli : &w->srv;

    if (frame->hd.type == NGHTTP2_GOAWAY) {
        p->got_goaway = true;
        p->goaway_last = frame->goaway.last_stream_id;
        p->goaway_code = frame->goaway.error_code;
    }
    if (p == &w->srv && (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA)) {
        struct sstream *x = sst(w, frame->hd.stream_id);

        if (x != NULL && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            x->req_ended = true;
        srv_maybe_respond(w, frame->hd.stream_id);
    }
    return 0;
}

/* ---- the world ----------------------------------------------------------------------- */

struct setup {
    size_t small_out;    /* capacity of client_out and up_out (0 = BUF_CAP) */
    bool manual_window;  /* the test client opens stream windows itself (stall one stream) */
    size_t pool_streams; /* 0 = POOL_STREAMS */
    size_t max_header_size;
    uint32_t origin_max_streams; /* 0 = 100 */
    bool raw_client;
};

static void world_init(struct world *w, const struct setup *su)
{
    nghttp2_session_callbacks *cb;
    struct h2_relay_opts opts = {0};

    memset(w, 0, sizeof(*w));
    w->recs = calloc(MAX_FLOWS, sizeof(*w->recs));
    assert_non_null(w->recs);
    buf_init(&w->ci, w->mem[0], BUF_CAP);
    buf_init(&w->co, w->mem[1], su->small_out ? su->small_out : BUF_CAP);
    buf_init(&w->ui, w->mem[2], BUF_CAP);
    buf_init(&w->uo, w->mem[3], su->small_out ? su->small_out : BUF_CAP);
    flow_init(&w->conn_flow);
    flow_set_tls(&w->conn_flow, "a.test", "h2", "TLSv1.3");
    flow_set_server(&w->conn_flow, "a.test", NULL, 0);
    w->conn_flow.connect_ns = 1000000;
    w->conn_flow.tls_ns = 2000000;
    w->pool_streams = su->pool_streams ? su->pool_streams : POOL_STREAMS;
    w->pool = h2_pool_new(w->pool_streams);
    assert_non_null(w->pool);
    opts.pool = w->pool;
    opts.max_header_size = su->max_header_size;
    opts.on_flow = on_flow;
    opts.on_flow_arg = w;
    assert_int_equal(h2_relay_init(&w->r, &opts, &w->conn_flow, &w->ci, &w->co, &w->ui, &w->uo), 0);
    w->relay_on = true;

    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, cli_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, cli_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, cli_on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, peer_on_frame_recv);
    w->raw_client = su->raw_client;
    if (!su->raw_client) {
        nghttp2_settings_entry set[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};

        nghttp2_option *opt;

        assert_int_equal(nghttp2_option_new(&opt), 0);
        nghttp2_option_set_no_auto_window_update(opt, su->manual_window);
        w->manual_window = su->manual_window;
        assert_int_equal(nghttp2_session_client_new2(&w->cli.s, cb, w, opt), 0);
        nghttp2_option_del(opt);
        assert_int_equal(nghttp2_submit_settings(w->cli.s, NGHTTP2_FLAG_NONE, set, 1), 0);
    }
    nghttp2_session_callbacks_del(cb);
    w->cli.to_relay = &w->ci;
    w->cli.from_relay = &w->co;

    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, srv_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, srv_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, srv_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, srv_on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, peer_on_frame_recv);
    assert_int_equal(nghttp2_session_server_new(&w->srv.s, cb, w), 0);
    nghttp2_session_callbacks_del(cb);
    {
        nghttp2_settings_entry set[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
                                         su->origin_max_streams ? su->origin_max_streams : 100}};

        assert_int_equal(nghttp2_submit_settings(w->srv.s, NGHTTP2_FLAG_NONE, set, 1), 0);
    }
    w->srv.to_relay = &w->ui;
    w->srv.from_relay = &w->uo;
}

static void world_free(struct world *w)
{
    if (w->relay_on)
        h2_relay_dispose(&w->r);
    /* every slot went back to the pool */
    assert_int_equal(h2_pool_available(w->pool), w->pool_streams);
    h2_pool_free(w->pool);
    nghttp2_session_del(w->cli.s);
    nghttp2_session_del(w->srv.s);
    free(w->recs);
}

/* peer_send writes what the peer session has into its to_relay buffer. */
static size_t peer_send(struct peer *p)
{
    size_t moved = 0;

    if (p->s == NULL || p->fatal || p->no_write)
        return 0;
    for (;;) {
        size_t k;

        if (p->pend_len > 0) {
            k = buf_append(p->to_relay, p->pend, p->pend_len);
            p->pend += k;
            p->pend_len -= k;
            moved += k;
            if (p->pend_len > 0)
                return moved;
        }
        {
            const uint8_t *d;
            ssize_t n = nghttp2_session_mem_send(p->s, &d);

            if (n < 0) {
                p->fatal = (int)n;
                return moved;
            }
            if (n == 0)
                return moved;
            p->pend = d;
            p->pend_len = (size_t)n;
        }
    }
}

/* peer_recv feeds the peer session what the relay wrote for it. */
static size_t peer_recv(struct peer *p)
{
    size_t n = buf_used(p->from_relay);
    ssize_t rv;

    if (p->no_read || n == 0)
        return 0;
    if (p->s == NULL)
        return 0; /* raw client: the case reads client_out itself */
    if (p->fatal) {
        buf_consume(p->from_relay, n);
        return n;
    }
    rv = nghttp2_session_mem_recv(p->s, buf_head(p->from_relay), n);
    if (rv < 0) {
        p->fatal = (int)rv;
        return 0;
    }
    buf_consume(p->from_relay, (size_t)rv);
    return (size_t)rv;
}

static size_t sig(const struct world *w)
{
    return w->ci.len + w->ci.off * 3 + w->co.len * 5 + w->co.off * 7 + w->ui.len * 11 +
           w->ui.off * 13 + w->uo.len * 17 + w->uo.off * 19;
}

/* run plays the loop until nothing moves (or the relay wants to close). */
static void run(struct world *w)
{
    for (int i = 0; i < ROUNDS; i++) {
        size_t moved = 0, before = sig(w);

        moved += peer_send(&w->cli);
        w->wants = h2_relay_pump(&w->r);
        moved += peer_recv(&w->srv);
        moved += peer_send(&w->srv);
        w->wants = h2_relay_pump(&w->r);
        moved += peer_recv(&w->cli);
        w->wants = h2_relay_pump(&w->r);
        if (moved == 0 && sig(w) == before) {
            /* held output is only ever left behind a peer that stopped reading */
            if ((w->wants & H2_WANT_FLUSH) != 0)
                assert_true(w->cli.no_read || w->srv.no_read || w->raw_client);
            return;
        }
    }
    fail_msg("the relay never settled");
}

/* cli_request submits a request from the test client and returns its stream id. */
static int32_t cli_request(struct world *w, const char *method, const char *path, uint64_t upload,
                           bool trailers, const nghttp2_nv *extra, size_t n_extra)
{
    nghttp2_nv nva[16] = {
        {(uint8_t *)":method", (uint8_t *)method, 7, strlen(method), 0},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
        {(uint8_t *)":authority", (uint8_t *)"a.test", 10, 6, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
        {(uint8_t *)"user-agent", (uint8_t *)"test/1", 10, 6, 0},
    };
    size_t n = 5;
    int32_t id;
    struct cstream *c;
    nghttp2_data_provider prd = {.source = {.ptr = NULL}, .read_callback = upload_read};

    for (size_t i = 0; i < n_extra && n < 16; i++)
        nva[n++] = extra[i];
    /* nghttp2 assigns the next stream id at submission */
    id = nghttp2_session_get_next_stream_id(w->cli.s);
    c = cst(w, id);
    assert_non_null(c);
    memset(c, 0, sizeof(*c));
    c->used = true;
    c->upload_len = upload;
    c->upload_trailers = trailers;
    prd.source.ptr = c;
    assert_int_equal(
        nghttp2_submit_request(w->cli.s, NULL, nva, n, upload > 0 || trailers ? &prd : NULL, NULL),
        id);
    return id;
}

/* origin_id_for finds the origin stream whose path is `path`. */
static int32_t origin_id_for(struct world *w, const char *path)
{
    for (int i = 0; i < MAX_IDS; i++)
        if (w->ss[i].used && strcmp(w->ss[i].path, path) == 0)
            return 2 * i + 1;
    return 0;
}

/* ---- raw frames (for malformed clients) ---------------------------------------------- */

static const char MAGIC[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static size_t frame_hdr(uint8_t *o, size_t len, uint8_t type, uint8_t flags, uint32_t id)
{
    o[0] = (uint8_t)(len >> 16);
    o[1] = (uint8_t)(len >> 8);
    o[2] = (uint8_t)len;
    o[3] = type;
    o[4] = flags;
    o[5] = (uint8_t)(id >> 24);
    o[6] = (uint8_t)(id >> 16);
    o[7] = (uint8_t)(id >> 8);
    o[8] = (uint8_t)id;
    return 9;
}

/* raw_feed appends `n` bytes to client_in, pumping and dropping client_out when full. */
static void raw_feed(struct world *w, const uint8_t *p, size_t n)
{
    while (n > 0 && (w->wants & H2_WANT_CLOSE) == 0) {
        size_t k = buf_append(&w->ci, p, n);

        p += k;
        n -= k;
        run(w);
        if (k == 0 && buf_room(&w->ci) == 0)
            break;
    }
}

/* scan_goaway moves the relay's client output into `acc` and parses whole frames from it;
 * returns the error code of the first GOAWAY, or -1. Parsed frames are dropped from `acc`. */
static long scan_goaway(struct world *w, uint8_t *acc, size_t *acc_len, size_t acc_cap)
{
    long code = -1;

    for (;;) {
        size_t n = buf_used(&w->co), off = 0;

        if (n > acc_cap - *acc_len)
            n = acc_cap - *acc_len;
        memcpy(acc + *acc_len, buf_head(&w->co), n);
        buf_consume(&w->co, n);
        *acc_len += n;
        while (off + 9 <= *acc_len) {
            size_t len = ((size_t)acc[off] << 16) | ((size_t)acc[off + 1] << 8) | acc[off + 2];

            if (off + 9 + len > *acc_len)
                break;
            if (code == -1 && acc[off + 3] == NGHTTP2_GOAWAY && len >= 8)
                code = ((long)acc[off + 13] << 24) | ((long)acc[off + 14] << 16) |
                       ((long)acc[off + 15] << 8) | acc[off + 16];
            off += 9 + len;
        }
        memmove(acc, acc + off, *acc_len - off);
        *acc_len -= off;
        if (n == 0 || code != -1)
            return code;
    }
}

/* ---- cases --------------------------------------------------------------------------- */

struct h2_case {
    const char *note;
    void (*run)(struct world *w, const struct h2_case *c);
    struct setup setup;
    uint64_t n; /* a size or a count, per case */
};

static void case_get_big(struct world *w, const struct h2_case *tc)
{
    char path[64];
    int32_t id;
    const struct cstream *c;
    const struct rec *rec;

    snprintf(path, sizeof(path), "/bytes/%llu", (unsigned long long)tc->n);
    id = cli_request(w, "GET", path, 0, false, NULL, 0);
    run(w);
    c = cst(w, id);
    assert_true(c->closed);
    assert_int_equal(c->close_code, NGHTTP2_NO_ERROR);
    assert_int_equal(c->status, 200);
    assert_int_equal(c->body, tc->n);
    assert_int_equal(c->mismatches, 0);
    assert_int_equal(w->n_recs, 1);
    rec = &w->recs[0];
    assert_int_equal(rec->status, 200);
    assert_string_equal(rec->method, "GET");
    assert_string_equal(rec->req_version, "HTTP/2.0");
    assert_string_equal(rec->resp_version, "HTTP/2.0");
    assert_true(strstr(rec->url, "https://a.test/bytes/") == rec->url);
    assert_int_equal(rec->resp_body, tc->n);
    assert_string_equal(rec->error, "");
    assert_false(rec->answered);
    assert_int_equal(rec->n_req_headers, 1); /* user-agent; pseudo-headers are not headers */
    assert_non_null(strstr(rec->line, "GET https://a.test/bytes/"));
    assert_non_null(strstr(rec->line, "HTTP/2.0 << 200"));
    assert_true(h2_relay_is_idle(&w->r));
    assert_int_equal(h2_pool_available(w->pool), POOL_STREAMS);
    assert_int_equal(h2_relay_stats(&w->r)->streams, 1);
}

static void case_post_upload(struct world *w, const struct h2_case *tc)
{
    int32_t id = cli_request(w, "POST", "/echo", tc->n, false, NULL, 0);
    int32_t oid;

    run(w);
    oid = origin_id_for(w, "/echo");
    assert_true(oid > 0);
    assert_int_equal(sst(w, oid)->body, tc->n);
    assert_int_equal(sst(w, oid)->mismatches, 0);
    assert_true(sst(w, oid)->req_ended);
    assert_int_equal(cst(w, id)->status, 200);
    assert_true(cst(w, id)->closed);
    assert_int_equal(w->n_recs, 1);
    assert_int_equal(w->recs[0].req_body, tc->n);
    assert_string_equal(w->recs[0].method, "POST");
}

static void case_many_streams(struct world *w, const struct h2_case *tc)
{
    int32_t ids[H2_MAX_CONCURRENT_STREAMS];
    char path[64];

    assert_true(tc->n <= H2_MAX_CONCURRENT_STREAMS);
    run(w); /* SETTINGS exchanged first, as a real client would */
    for (uint64_t i = 0; i < tc->n; i++) {
        snprintf(path, sizeof(path), "/bytes/%llu", (unsigned long long)(20000 + i * 97));
        ids[i] = cli_request(w, "GET", path, 0, false, NULL, 0);
    }
    run(w);
    for (uint64_t i = 0; i < tc->n; i++) {
        const struct cstream *c = cst(w, ids[i]);

        assert_true(c->closed);
        assert_int_equal(c->close_code, NGHTTP2_NO_ERROR);
        assert_int_equal(c->status, 200);
        assert_int_equal(c->body, 20000 + i * 97);
        assert_int_equal(c->mismatches, 0);
    }
    assert_int_equal(w->n_recs, tc->n);
    for (size_t i = 0; i < w->n_recs; i++) {
        assert_int_equal(w->recs[i].status, 200);
        assert_string_equal(w->recs[i].error, "");
    }
    assert_true(h2_relay_is_idle(&w->r));
    assert_int_equal(h2_relay_stats(&w->r)->streams_refused, 0);
}

static void case_trailers(struct world *w, const struct h2_case *tc)
{
    int32_t id = cli_request(w, "POST", "/trailers", tc->n, true, NULL, 0);
    int32_t oid;

    run(w);
    oid = origin_id_for(w, "/trailers");
    assert_true(oid > 0);
    assert_true(sst(w, oid)->got_trailer); /* request trailers reached the origin */
    assert_int_equal(sst(w, oid)->body, tc->n);
    assert_int_equal(sst(w, oid)->mismatches, 0);
    assert_int_equal(cst(w, id)->status, 200);
    assert_true(cst(w, id)->got_trailer); /* response trailers reached the client */
    assert_int_equal(cst(w, id)->body, 5);
    assert_int_equal(cst(w, id)->close_code, NGHTTP2_NO_ERROR);
}

static void case_client_rst(struct world *w, const struct h2_case *tc)
{
    int32_t a = cli_request(w, "GET", "/hold/a", 0, false, NULL, 0);
    int32_t b = cli_request(w, "GET", "/hold/b", 0, false, NULL, 0);
    int32_t c = cli_request(w, "GET", "/hold/c", 0, false, NULL, 0);
    int32_t oa, ob, oc;
    const struct rec *rec;

    run(w);
    oa = origin_id_for(w, "/hold/a");
    ob = origin_id_for(w, "/hold/b");
    oc = origin_id_for(w, "/hold/c");
    assert_true(oa > 0 && ob > 0 && oc > 0);
    assert_int_equal(nghttp2_submit_rst_stream(w->cli.s, NGHTTP2_FLAG_NONE, b, NGHTTP2_CANCEL), 0);
    run(w);
    assert_true(sst(w, ob)->closed);
    assert_int_equal(sst(w, ob)->close_code, NGHTTP2_CANCEL);
    assert_false(sst(w, oa)->closed);
    srv_respond(w, oa, 3000, false);
    srv_respond(w, oc, 4000, false);
    run(w);
    assert_int_equal(cst(w, a)->status, 200);
    assert_int_equal(cst(w, a)->body, 3000);
    assert_int_equal(cst(w, c)->status, 200);
    assert_int_equal(cst(w, c)->body, 4000);
    assert_int_equal(cst(w, c)->mismatches, 0);
    rec = rec_by_url_suffix(w, "/hold/b");
    assert_non_null(rec);
    assert_string_equal(rec->error, "client reset stream: CANCEL");
    assert_int_equal(h2_relay_stats(&w->r)->client_resets, 1);
    assert_true(h2_relay_is_idle(&w->r));
}

static void case_upstream_goaway(struct world *w, const struct h2_case *tc)
{
    int32_t ids[3];
    int32_t last;
    const char *paths[3] = {"/hold/1", "/hold/2", "/hold/3"};

    for (int i = 0; i < 3; i++)
        ids[i] = cli_request(w, "GET", paths[i], 0, false, NULL, 0);
    run(w);
    /* tc->n: how many streams the origin says it processed (3 = graceful) */
    last = origin_id_for(w, paths[tc->n - 1]);
    assert_int_equal(
        nghttp2_submit_goaway(w->srv.s, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0), 0);
    run(w);
    assert_true(w->cli.got_goaway);
    assert_int_equal(w->cli.goaway_code, NGHTTP2_NO_ERROR);
    for (uint64_t i = 0; i < tc->n; i++)
        srv_respond(w, origin_id_for(w, paths[i]), 1000 + i, false);
    run(w);
    for (uint64_t i = 0; i < 3; i++) {
        const struct cstream *c = cst(w, ids[i]);

        assert_true(c->closed);
        if (i < tc->n) {
            assert_int_equal(c->status, 200);
            assert_int_equal(c->body, 1000 + i);
        } else {
            /* not processed upstream: refused, safe to retry (RFC 9113 §8.7) */
            assert_int_equal(c->status, 0);
            assert_int_equal(c->close_code, NGHTTP2_REFUSED_STREAM);
        }
    }
    /* the in-flight streams finished; now the relay has nothing left and closes */
    assert_true(w->wants & H2_WANT_CLOSE);
    assert_int_equal(w->n_recs, 3);
}

static void case_slow_client(struct world *w, const struct h2_case *tc)
{
    char path[64];
    int32_t id, oid;
    /* what the origin can send ahead: one stream window staged in the relay, plus what the
     * relay already put in client_out (the buffer and one pending frame) */
    uint64_t bound = H2_STAGE_SIZE + BUF_CAP + 16384 + 9 + 64;

    run(w); /* settings first */
    snprintf(path, sizeof(path), "/bytes/%llu", (unsigned long long)tc->n);
    id = cli_request(w, "GET", path, 0, false, NULL, 0);
    w->cli.no_read = true; /* the client stops reading as its request goes out */
    run(w);
    print_message("    origin sent %llu bytes ahead of the client (bound %llu)\n",
                  (unsigned long long)w->srv.body_sent, (unsigned long long)bound);
    oid = origin_id_for(w, path);
    assert_true(oid > 0);
    assert_true(w->srv.body_sent > 0);
    assert_true(w->srv.body_sent <= bound);
    assert_true(w->srv.body_sent < tc->n);
    /* the origin is blocked by flow control, not by a full buffer */
    assert_int_equal(nghttp2_session_get_stream_remote_window_size(w->srv.s, oid), 0);
    assert_int_equal(buf_used(&w->ui), 0);
    /* the client reads again: everything arrives intact */
    w->cli.no_read = false;
    run(w);
    assert_int_equal(cst(w, id)->body, tc->n);
    assert_int_equal(cst(w, id)->mismatches, 0);
    assert_int_equal(cst(w, id)->status, 200);
}

/* case_slow_client_first is case_slow_client on a connection's first stream: it goes
 * upstream before the session's round trip is measured, so its window starts at H2_WIN_FIRST
 * (worker/h2_window.c); the relay still stages no more than that window. */
static void case_slow_client_first(struct world *w, const struct h2_case *tc)
{
    char path[64];
    int32_t id, oid;
    uint64_t bound = H2_WIN_FIRST + BUF_CAP + 16384 + 9 + 64;

    snprintf(path, sizeof(path), "/bytes/%llu", (unsigned long long)tc->n);
    id = cli_request(w, "GET", path, 0, false, NULL, 0);
    w->cli.no_read = true; /* no SETTINGS exchange first: the request leads */
    run(w);
    print_message("    origin sent %llu bytes ahead of the client (bound %llu)\n",
                  (unsigned long long)w->srv.body_sent, (unsigned long long)bound);
    oid = origin_id_for(w, path);
    assert_true(oid > 0);
    assert_true(w->srv.body_sent > H2_STAGE_SIZE);
    assert_true(w->srv.body_sent <= bound);
    assert_int_equal(nghttp2_session_get_stream_remote_window_size(w->srv.s, oid), 0);
    w->cli.no_read = false;
    run(w);
    assert_int_equal(cst(w, id)->body, tc->n);
    assert_int_equal(cst(w, id)->mismatches, 0);
    assert_int_equal(cst(w, id)->status, 200);
}

/* case_window_grows makes both sessions' round trips 50 ms (as if measured over a long path):
 * in memory every window is taken at once, so a 64 KiB window limits the stream and grows
 * (worker/h2_window.c), both ways; the bodies stay byte-exact, the connection never reserves
 * more than H2_WIN_CONN_MAX, and every reservation and chunk is back once the streams end. */
static void case_window_grows(struct world *w, const struct h2_case *tc)
{
    char path[64];
    int32_t id, oid;

    run(w); /* SETTINGS both ways: the round trips are measured (microseconds here) */
    assert_true(w->r._rtt_ns[0] > 0 && w->r._rtt_ns[1] > 0);
    w->r._rtt_ns[0] = w->r._rtt_ns[1] = 50000000ull;
    snprintf(path, sizeof(path), "/bytes/%llu", (unsigned long long)tc->n);
    id = cli_request(w, "GET", path, 0, false, NULL, 0);
    run(w);
    assert_int_equal(cst(w, id)->status, 200);
    assert_int_equal(cst(w, id)->body, tc->n);
    assert_int_equal(cst(w, id)->mismatches, 0);
    print_message("    response window grew to %u, request window %u\n", w->r._win_hint[H2_RESP],
                  w->r._win_hint[H2_REQ]);
    assert_true(w->r._win_hint[H2_RESP] > H2_STAGE_SIZE);
    assert_true(w->r._win_hint[H2_RESP] <= H2_WIN_STREAM_MAX);

    id = cli_request(w, "POST", "/echo", tc->n, false, NULL, 0);
    run(w);
    oid = origin_id_for(w, "/echo");
    assert_int_equal(sst(w, oid)->body, tc->n);
    assert_int_equal(sst(w, oid)->mismatches, 0);
    assert_int_equal(cst(w, id)->status, 200);
    assert_true(w->r._win_hint[H2_REQ] > H2_STAGE_SIZE);
    assert_true(w->r._win_hint[H2_REQ] <= H2_WIN_STREAM_MAX);

    /* the streams ended: nothing reserved or staged is left */
    assert_true(h2_relay_is_idle(&w->r));
    assert_int_equal(w->r._win_chunks, 0);
    assert_int_equal(w->pool->chunks.resv, 0);
    assert_int_equal(w->pool->chunks.used, 0);
}

/* case_window_conn_bound runs 20 downloads at once over 50 ms round trips: their windows
 * grow, but after every step of the exchange the connection holds at most H2_WIN_CONN_MAX of
 * reservations and the pool never hands out chunks beyond what is reserved; every body is
 * byte-exact and every reservation back at the end. */
static void case_window_conn_bound(struct world *w, const struct h2_case *tc)
{
    int32_t ids[32];
    char path[64];
    size_t peak = 0;

    assert_true(tc->n <= 32);
    run(w);
    w->r._rtt_ns[0] = w->r._rtt_ns[1] = 50000000ull;
    for (uint64_t i = 0; i < tc->n; i++) {
        snprintf(path, sizeof(path), "/bytes/%llu", (unsigned long long)(2000000 + i * 97));
        ids[i] = cli_request(w, "GET", path, 0, false, NULL, 0);
    }
    for (int i = 0; i < ROUNDS; i++) { /* run(), checking the bounds after every step */
        size_t moved = 0, before = sig(w);

        moved += peer_send(&w->cli);
        w->wants = h2_relay_pump(&w->r);
        moved += peer_recv(&w->srv);
        moved += peer_send(&w->srv);
        w->wants = h2_relay_pump(&w->r);
        moved += peer_recv(&w->cli);
        w->wants = h2_relay_pump(&w->r);
        assert_true(w->r._win_chunks <= H2_WIN_CONN_MAX / H2_CHUNK_PAYLOAD);
        assert_true(w->pool->chunks.used <= w->pool->chunks.resv);
        if (w->r._win_chunks > peak)
            peak = w->r._win_chunks;
        if (moved == 0 && sig(w) == before)
            break;
    }
    print_message("    peak reservation %zu chunks of %zu\n", peak,
                  (size_t)(H2_WIN_CONN_MAX / H2_CHUNK_PAYLOAD));
    assert_true(peak > 0);
    for (uint64_t i = 0; i < tc->n; i++) {
        assert_int_equal(cst(w, ids[i])->status, 200);
        assert_int_equal(cst(w, ids[i])->body, 2000000 + i * 97);
        assert_int_equal(cst(w, ids[i])->mismatches, 0);
    }
    assert_true(h2_relay_is_idle(&w->r));
    assert_int_equal(w->r._win_chunks, 0);
    assert_int_equal(w->pool->chunks.resv, 0);
    assert_int_equal(w->pool->chunks.used, 0);
}

/* case_window_worker_bound: with the worker's chunk pool all but 100 chunks reserved (as by
 * other connections), a growing window stops at what is left, and the download is intact. */
static void case_window_worker_bound(struct world *w, const struct h2_case *tc)
{
    struct h2_chunks *c = &w->pool->chunks;
    size_t others = c->n - 100;
    char path[64];
    int32_t id;

    run(w);
    w->r._rtt_ns[0] = w->r._rtt_ns[1] = 50000000ull;
    assert_true(h2_chunks_reserve(c, others));
    snprintf(path, sizeof(path), "/bytes/%llu", (unsigned long long)tc->n);
    id = cli_request(w, "GET", path, 0, false, NULL, 0);
    run(w);
    assert_int_equal(cst(w, id)->body, tc->n);
    assert_int_equal(cst(w, id)->mismatches, 0);
    print_message("    window grew to %u with 100 chunks left in the worker\n",
                  w->r._win_hint[H2_RESP]);
    assert_true(w->r._win_hint[H2_RESP] > H2_STAGE_SIZE);
    assert_true(w->r._win_hint[H2_RESP] <= 99 * H2_CHUNK_PAYLOAD);
    assert_int_equal(c->resv, others);
    h2_chunks_unreserve(c, others);
}

static void case_slow_origin(struct world *w, const struct h2_case *tc)
{
    int32_t id, oid;
    uint64_t bound = H2_STAGE_SIZE + BUF_CAP + 16384 + 9 + 64;

    run(w);
    w->srv.no_read = true;
    id = cli_request(w, "POST", "/echo", tc->n, false, NULL, 0);
    run(w);
    /* the client is held back by the window; the relay buffers at most one window */
    assert_true(w->cli.body_sent > 0);
    assert_true(w->cli.body_sent <= bound + BUF_CAP);
    assert_true(w->cli.body_sent < tc->n);
    w->srv.no_read = false;
    run(w);
    oid = origin_id_for(w, "/echo");
    assert_int_equal(sst(w, oid)->body, tc->n);
    assert_int_equal(sst(w, oid)->mismatches, 0);
    assert_int_equal(cst(w, id)->status, 200);
}

static void case_push_disabled(struct world *w, const struct h2_case *tc)
{
    cli_request(w, "GET", "/bytes/10", 0, false, NULL, 0);
    run(w);
    /* the relay told the origin ENABLE_PUSH=0, and the client MAX_CONCURRENT_STREAMS=100 */
    assert_int_equal(nghttp2_session_get_remote_settings(w->srv.s, NGHTTP2_SETTINGS_ENABLE_PUSH),
                     0);
    assert_int_equal(
        nghttp2_session_get_remote_settings(w->cli.s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
        H2_MAX_CONCURRENT_STREAMS);
    assert_int_equal(nghttp2_session_get_remote_settings(w->cli.s, NGHTTP2_SETTINGS_ENABLE_PUSH),
                     0);
    assert_int_equal(
        nghttp2_session_get_remote_settings(w->cli.s, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE),
        tc->setup.max_header_size ? tc->setup.max_header_size : 65536);
}

static void case_push_from_origin(struct world *w, const struct h2_case *tc)
{
    int32_t id = cli_request(w, "GET", "/hold/p", 0, false, NULL, 0);
    int32_t oid, pid;
    nghttp2_nv push[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
        {(uint8_t *)":authority", (uint8_t *)"a.test", 10, 6, 0},
        {(uint8_t *)":path", (uint8_t *)"/pushed", 5, 7, 0},
    };

    run(w);
    oid = origin_id_for(w, "/hold/p");
    /* nghttp2 refuses to send a push to a peer that disabled it: the setting is in force */
    pid = nghttp2_submit_push_promise(w->srv.s, NGHTTP2_FLAG_NONE, oid, push, 4, NULL);
    srv_respond(w, oid, 7, false);
    run(w);
    if (pid > 0)
        assert_null(nghttp2_session_find_stream(w->srv.s, pid));
    assert_int_equal(cst(w, id)->body, 7);
    assert_int_equal(h2_relay_stats(&w->r)->upstream_errors, 0);
}

static void case_bad_preface(struct world *w, const struct h2_case *tc)
{
    static const char junk[] = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    uint8_t acc[4096];
    size_t acc_len = 0;
    long code;

    raw_feed(w, (const uint8_t *)junk, sizeof(junk) - 1);
    w->wants = h2_relay_pump(&w->r);
    code = scan_goaway(w, acc, &acc_len, sizeof(acc));
    assert_int_equal(code, NGHTTP2_PROTOCOL_ERROR);
    assert_true(w->wants & H2_WANT_CLOSE);
    assert_int_equal(h2_relay_stats(&w->r)->client_errors, 1);
    assert_int_equal(h2_relay_stats(&w->r)->client_floods, 0);
}

/* flood_frames writes the preface then `n` copies of a small control frame. */
static void case_flood(struct world *w, const struct h2_case *tc)
{
    static uint8_t raw[64 * 1024 * 2];
    size_t off = 0;
    static uint8_t acc[64 * 1024];
    size_t acc_len = 0;
    long code = -1;
    uint8_t kind = (uint8_t)(tc->n >> 32);
    uint64_t count = tc->n & 0xffffffffu;

    memcpy(raw, MAGIC, 24);
    off = 24;
    off += frame_hdr(raw + off, 0, NGHTTP2_SETTINGS, 0, 0);
    for (uint64_t i = 0; i < count && off + 64 < sizeof(raw); i++) {
        if (kind == NGHTTP2_PING) {
            off += frame_hdr(raw + off, 8, NGHTTP2_PING, 0, 0);
            memset(raw + off, (int)i, 8);
            off += 8;
        } else if (kind == NGHTTP2_SETTINGS) {
            off += frame_hdr(raw + off, 6, NGHTTP2_SETTINGS, 0, 0);
            raw[off++] = 0;
            raw[off++] = NGHTTP2_SETTINGS_HEADER_TABLE_SIZE;
            raw[off++] = 0;
            raw[off++] = 0;
            raw[off++] = 0x10;
            raw[off++] = 0;
        } else if (kind == NGHTTP2_CONTINUATION) {
            /* one header block that never ends: HEADERS then CONTINUATION after CONTINUATION */
            if (i == 0) {
                off += frame_hdr(raw + off, 3, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1);
                raw[off++] = 0x82;
                raw[off++] = 0x87;
                raw[off++] = 0x84;
            }
            off += frame_hdr(raw + off, 4, NGHTTP2_CONTINUATION, 0, 1);
            memcpy(raw + off, "\x40\x01x", 3); /* literal, new name "x" ... */
            off += 3;
            raw[off++] = 0x00; /* ... empty value */
        } else { /* rapid reset: HEADERS (GET https://a.test/) then RST_STREAM, new stream each */
            uint32_t id = 2 * (uint32_t)i + 1;
            static const uint8_t block[] = {0x82, 0x87, 0x84, 0x01, 6,  'a',
                                            '.',  't',  'e',  's',  't'};

            off += frame_hdr(raw + off, sizeof(block), NGHTTP2_HEADERS,
                             NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, id);
            memcpy(raw + off, block, sizeof(block));
            off += sizeof(block);
            off += frame_hdr(raw + off, 4, NGHTTP2_RST_STREAM, 0, id);
            raw[off++] = 0;
            raw[off++] = 0;
            raw[off++] = 0;
            raw[off++] = NGHTTP2_CANCEL;
        }
    }
    /* feed in pieces, reading the relay's answers as a client would */
    for (size_t pos = 0; pos < off && (w->wants & H2_WANT_CLOSE) == 0 && code == -1;) {
        size_t k = buf_append(&w->ci, raw + pos, off - pos);

        pos += k;
        run(w);
        code = scan_goaway(w, acc, &acc_len, sizeof(acc));
    }
    if (code == -1) {
        w->wants = h2_relay_pump(&w->r);
        code = scan_goaway(w, acc, &acc_len, sizeof(acc));
    }
    assert_int_equal(code, NGHTTP2_ENHANCE_YOUR_CALM);
    w->wants = h2_relay_pump(&w->r);
    assert_true(w->wants & H2_WANT_CLOSE);
    assert_int_equal(h2_relay_stats(&w->r)->client_errors, 1);
    assert_int_equal(h2_relay_stats(&w->r)->client_floods, 1);
}

static void case_upstream_failed(struct world *w, const struct h2_case *tc)
{
    int32_t id;

    h2_relay_upstream_failed(&w->r, "certificate verify failed: certificate has expired");
    id = cli_request(w, "GET", "/bytes/10", 0, false, NULL, 0);
    run(w);
    assert_int_equal(cst(w, id)->status, 502);
    assert_string_equal(cst(w, id)->body_text,
                        "certificate verify failed: certificate has expired\n");
    assert_string_equal(cst(w, id)->proxy_status,
                        "mitmd; error=tls_certificate_error; details=\"certificate verify failed: "
                        "certificate has expired\"");
    assert_int_equal(w->n_recs, 1);
    assert_int_equal(w->recs[0].status, 502);
    assert_true(w->recs[0].answered);
    assert_string_equal(w->recs[0].error, "certificate verify failed: certificate has expired");
    assert_int_equal(buf_used(&w->uo), 0); /* nothing was written toward the upstream */
}

/* A redialed server connection's times go to the stream it was opened for; when that stream is
 * gone (its client reset it while the dial ran), the bridge passes id 0, which must match no
 * stream: here a live stream that never went upstream (its 502 waits in a full client_out). */
static void case_times_need_upstream_stream(struct world *w, const struct h2_case *tc)
{
    int32_t id;

    (void)tc;
    h2_relay_upstream_failed(&w->r, "connection refused");
    run(w);
    w->cli.no_read = true;
    id = cli_request(w, "GET", "/bytes/10", 0, false, NULL, 0);
    run(w);
    assert_int_equal(w->n_recs, 0); /* the answer has not gone out: the stream is live */
    h2_relay_upstream_times(&w->r, 0, 111, 222);
    w->cli.no_read = false;
    run(w);
    assert_int_equal(cst(w, id)->status, 502);
    assert_int_equal(w->n_recs, 1);
    assert_true(w->recs[0].connect_ns != 111);
    assert_true(w->recs[0].tls_ns != 222);
}

static void case_upstream_eof(struct world *w, const struct h2_case *tc)
{
    int32_t held = cli_request(w, "GET", "/hold/x", 0, false, NULL, 0);
    int32_t big = cli_request(w, "GET", "/hold/y", 0, false, NULL, 0);

    run(w);
    /* larger than the window a connection's first stream starts with (H2_WIN_FIRST) */
    srv_respond(w, origin_id_for(w, "/hold/y"), 4 << 20, false);
    w->cli.no_read = true; /* the response is mid-way when the upstream goes */
    run(w);
    h2_relay_upstream_eof(&w->r);
    w->cli.no_read = false;
    run(w);
    assert_int_equal(cst(w, held)->status, 502);
    assert_string_equal(cst(w, held)->body_text, "upstream closed connection\n");
    assert_true(cst(w, big)->closed);
    assert_int_equal(cst(w, big)->close_code, NGHTTP2_INTERNAL_ERROR);
    assert_true(cst(w, big)->body < (4 << 20));
    assert_true(w->cli.got_goaway);
    assert_true(w->wants & H2_WANT_CLOSE);
    assert_string_equal(rec_by_url_suffix(w, "/hold/y")->error, "upstream closed connection");
}

static void case_upstream_rst(struct world *w, const struct h2_case *tc)
{
    int32_t id = cli_request(w, "GET", "/hold/r", 0, false, NULL, 0);

    run(w);
    assert_int_equal(nghttp2_submit_rst_stream(w->srv.s, NGHTTP2_FLAG_NONE,
                                               origin_id_for(w, "/hold/r"), (uint32_t)tc->n),
                     0);
    run(w);
    assert_true(cst(w, id)->closed);
    if (tc->n == NGHTTP2_REFUSED_STREAM) {
        assert_int_equal(cst(w, id)->close_code, NGHTTP2_REFUSED_STREAM);
        assert_int_equal(h2_relay_stats(&w->r)->streams_refused, 1);
    } else {
        assert_int_equal(cst(w, id)->status, 502);
        assert_non_null(strstr(cst(w, id)->body_text, "upstream reset stream"));
    }
    assert_int_equal(h2_relay_stats(&w->r)->upstream_resets, 1);
    assert_true(h2_relay_is_idle(&w->r));
}

static void case_header_too_large(struct world *w, const struct h2_case *tc)
{
    static char big[6000];
    nghttp2_nv extra[1];
    int32_t id;

    memset(big, 'x', sizeof(big));
    extra[0] = (nghttp2_nv){(uint8_t *)"x-big", (uint8_t *)big, 5, sizeof(big), 0};
    id = cli_request(w, "GET", "/bytes/10", 0, false, extra, 1);
    run(w);
    assert_int_equal(cst(w, id)->status, 431);
    assert_int_equal(origin_id_for(w, "/bytes/10"), 0); /* never sent upstream */
    assert_int_equal(w->recs[0].status, 431);
}

static void case_connect_refused(struct world *w, const struct h2_case *tc)
{
    nghttp2_nv nva[] = {
        {(uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, 0},
        {(uint8_t *)":authority", (uint8_t *)"b.test:443", 10, 10, 0},
    };
    int32_t id = nghttp2_submit_request(w->cli.s, NULL, nva, 2, NULL, NULL);
    struct cstream *c = cst(w, id);

    c->used = true;
    run(w);
    assert_int_equal(c->status, 501);
    assert_non_null(strstr(c->body_text, "CONNECT over HTTP/2 is not supported"));
    assert_int_equal(w->recs[0].status, 501);
}

static void case_extended_connect(struct world *w, const struct h2_case *tc)
{
    nghttp2_nv nva[] = {
        {(uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, 0},
        {(uint8_t *)":protocol", (uint8_t *)"websocket", 9, 9, 0},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
        {(uint8_t *)":path", (uint8_t *)"/chat", 5, 5, 0},
        {(uint8_t *)":authority", (uint8_t *)"a.test", 10, 6, 0},
    };
    int32_t id;
    struct cstream *c;

    run(w);
    /* RFC 8441 §3: never advertised, so browsers use WebSockets over HTTP/1.1 */
    assert_int_equal(
        nghttp2_session_get_remote_settings(w->cli.s, NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL), 0);
    id = nghttp2_submit_request(w->cli.s, NULL, nva, 5, NULL, NULL);
    c = cst(w, id);
    c->used = true;
    run(w);
    assert_true(c->closed);
    assert_int_equal(c->close_code, NGHTTP2_PROTOCOL_ERROR);
    assert_int_equal(origin_id_for(w, "/chat"), 0);
    assert_int_equal(w->n_recs, 1);
    assert_non_null(strstr(w->recs[0].error, "WebSocket over HTTP/2 are not supported"));
    assert_true(h2_relay_is_idle(&w->r));
}

static void case_timeouts(struct world *w, const struct h2_case *tc)
{
    int32_t id;

    if (tc->n == H2_TIMEOUT_UPSTREAM) {
        id = cli_request(w, "GET", "/hold/t", 0, false, NULL, 0);
        run(w);
        assert_true(h2_relay_is_waiting_upstream(&w->r));
        h2_relay_timeout(&w->r, H2_TIMEOUT_UPSTREAM);
        run(w);
        assert_int_equal(cst(w, id)->status, 504);
        assert_true(w->cli.got_goaway);
        assert_true(w->wants & H2_WANT_CLOSE);
        return;
    }
    run(w);
    assert_true(h2_relay_is_idle(&w->r));
    assert_false(h2_relay_is_reading_head(&w->r));
    h2_relay_timeout(&w->r, H2_TIMEOUT_IDLE);
    run(w);
    assert_true(w->cli.got_goaway);
    assert_int_equal(w->cli.goaway_code, NGHTTP2_NO_ERROR);
    assert_true(w->wants & H2_WANT_CLOSE);
}

static void case_drain(struct world *w, const struct h2_case *tc)
{
    int32_t a = cli_request(w, "GET", "/hold/d1", 0, false, NULL, 0);
    int32_t b = cli_request(w, "POST", "/hold/d2", 3000, false, NULL, 0);
    int32_t late;

    run(w);
    h2_relay_drain(&w->r);
    run(w);
    assert_true(w->cli.got_goaway);
    assert_int_equal(w->cli.goaway_code, NGHTTP2_NO_ERROR);
    assert_int_equal(w->cli.goaway_last, b);
    assert_false(w->wants & H2_WANT_CLOSE); /* two streams still in flight */
    srv_respond(w, origin_id_for(w, "/hold/d1"), 100, false);
    srv_respond(w, origin_id_for(w, "/hold/d2"), 200, false);
    late = cli_request(w, "GET", "/hold/late", 0, false, NULL, 0);
    run(w);
    assert_int_equal(cst(w, a)->status, 200);
    assert_int_equal(cst(w, a)->body, 100);
    assert_int_equal(cst(w, b)->status, 200);
    assert_int_equal(sst(w, origin_id_for(w, "/hold/d2"))->body, 3000);
    /* a stream opened after the GOAWAY is not served (the client may retry it elsewhere) */
    assert_int_equal(origin_id_for(w, "/hold/late"), 0);
    assert_int_equal(cst(w, late)->status, 0);
    assert_true(w->wants & H2_WANT_CLOSE);
    assert_int_equal(w->n_recs, 2);
}

static void case_stalled_timeouts(struct world *w, const struct h2_case *tc)
{
    int32_t id;

    run(w);
    if (tc->n == 0) {
        /* the client stops reading mid-response: nothing can be delivered any more */
        w->cli.no_read = true;
        id = cli_request(w, "GET", "/bytes/1048576", 0, false, NULL, 0);
        run(w);
        h2_relay_timeout(&w->r, H2_TIMEOUT_IDLE); /* streams open: acts as UPSTREAM */
        run(w);
        assert_false(w->wants & H2_WANT_CLOSE); /* the RST waits behind unread bytes */
        h2_relay_timeout(&w->r, H2_TIMEOUT_IDLE);
        w->wants = h2_relay_pump(&w->r);
        assert_true(w->wants & H2_WANT_CLOSE); /* the second timeout closes at once */
        assert_int_equal(w->n_recs, 1);
        assert_string_equal(w->recs[0].error, "client did not read the response in time");
        return;
    }
    /* the origin stops sending mid-response */
    id = cli_request(w, "GET", "/hold/stall", 0, false, NULL, 0);
    run(w);
    srv_respond(w, origin_id_for(w, "/hold/stall"), 1 << 20, false);
    peer_send(&w->srv); /* the head and a first part */
    w->srv.no_write = true;
    run(w);
    assert_int_equal(cst(w, id)->status, 200);
    h2_relay_timeout(&w->r, H2_TIMEOUT_UPSTREAM);
    run(w);
    assert_true(cst(w, id)->closed);
    assert_int_equal(cst(w, id)->close_code, NGHTTP2_CANCEL);
    assert_true(w->cli.got_goaway);
    assert_true(w->wants & H2_WANT_CLOSE);
    assert_string_equal(w->recs[0].error, "upstream did not send the response in time");
}

static void case_client_eof(struct world *w, const struct h2_case *tc)
{
    cli_request(w, "GET", "/hold/e", 0, false, NULL, 0);
    run(w);
    h2_relay_client_eof(&w->r);
    w->wants = h2_relay_pump(&w->r);
    assert_true(w->wants & H2_WANT_CLOSE);
    assert_int_equal(w->n_recs, 1);
    assert_string_equal(w->recs[0].error, "client closed connection");
}

static void case_origin_fewer_streams(struct world *w, const struct h2_case *tc)
{
    int32_t ids[40];
    char path[64];

    run(w);
    for (int i = 0; i < 40; i++) {
        snprintf(path, sizeof(path), "/bytes/%d", 5000 + i);
        ids[i] = cli_request(w, "GET", path, 0, false, NULL, 0);
    }
    /* one queued request is cancelled by its client before it ever left */
    run(w);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(cst(w, ids[i])->status, 200);
        assert_int_equal(cst(w, ids[i])->body, 5000 + i);
    }
    assert_int_equal(w->n_recs, 40);
}

static void case_queued_cancel(struct world *w, const struct h2_case *tc)
{
    int32_t ids[4];
    const char *paths[4] = {"/hold/q1", "/hold/q2", "/hold/q3", "/hold/q4"};

    run(w);
    for (int i = 0; i < 4; i++)
        ids[i] = cli_request(w, "GET", paths[i], 0, false, NULL, 0);
    run(w);
    /* origin allows 1 stream: q1 is open there, q2..q4 wait inside the relay */
    assert_true(origin_id_for(w, "/hold/q1") > 0);
    assert_int_equal(origin_id_for(w, "/hold/q3"), 0);
    nghttp2_submit_rst_stream(w->cli.s, NGHTTP2_FLAG_NONE, ids[2], NGHTTP2_CANCEL);
    run(w);
    srv_respond(w, origin_id_for(w, "/hold/q1"), 10, false);
    run(w);
    srv_respond(w, origin_id_for(w, "/hold/q2"), 10, false);
    run(w);
    assert_int_equal(origin_id_for(w, "/hold/q3"), 0); /* the cancelled one never went */
    srv_respond(w, origin_id_for(w, "/hold/q4"), 10, false);
    run(w);
    assert_int_equal(cst(w, ids[0])->status, 200);
    assert_int_equal(cst(w, ids[1])->status, 200);
    assert_int_equal(cst(w, ids[3])->status, 200);
    assert_int_equal(cst(w, ids[2])->close_code, NGHTTP2_CANCEL);
    assert_true(h2_relay_is_idle(&w->r));
}

static void case_interim(struct world *w, const struct h2_case *tc)
{
    int32_t id = cli_request(w, "GET", "/early", 0, false, NULL, 0);

    run(w);
    assert_int_equal(cst(w, id)->interim, 103);
    assert_int_equal(cst(w, id)->status, 200);
    assert_int_equal(cst(w, id)->body, 9);
    assert_int_equal(w->recs[0].status, 200); /* the flow records the final response */
}

static void case_invalid_response(struct world *w, const struct h2_case *tc)
{
    int32_t id = cli_request(w, "GET", "/badheader", 0, false, NULL, 0);

    run(w);
    assert_int_equal(cst(w, id)->status, 502);
    assert_string_equal(cst(w, id)->body_text,
                        "invalid HTTP/2 response from upstream: PROTOCOL_ERROR\n");
    assert_true(h2_relay_is_idle(&w->r));
}

static void case_pool_exhausted(struct world *w, const struct h2_case *tc)
{
    int32_t ids[5];
    char path[32];
    int served = 0, refused = 0;

    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "/hold/%d", i);
        ids[i] = cli_request(w, "GET", path, 0, false, NULL, 0);
    }
    run(w);
    assert_int_equal(h2_pool_available(w->pool), 0);
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "/hold/%d", i);
        if (origin_id_for(w, path) > 0) {
            srv_respond(w, origin_id_for(w, path), 1, false);
            served++;
        }
    }
    run(w);
    for (int i = 0; i < 5; i++) {
        if (cst(w, ids[i])->status == 200)
            continue;
        /* the worker's pool is full: refused, retryable, never a crash */
        assert_int_equal(cst(w, ids[i])->close_code, NGHTTP2_REFUSED_STREAM);
        refused++;
    }
    assert_int_equal(served, 3);
    assert_int_equal(refused, 2);
    assert_int_equal(h2_relay_stats(&w->r)->streams_refused, 2);
}

static void case_head_timeout(struct world *w, const struct h2_case *tc)
{
    static const uint8_t part[] = {0x82, 0x87, 0x84};
    uint8_t raw[128], acc[4096];
    size_t off = 0, acc_len = 0;

    memcpy(raw, MAGIC, 24);
    off = 24 + frame_hdr(raw + 24, 0, NGHTTP2_SETTINGS, 0, 0);
    assert_true(h2_relay_is_reading_head(&w->r)); /* no preface yet */
    /* a header block without END_HEADERS: the rest never comes (slowloris) */
    off += frame_hdr(raw + off, sizeof(part), NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1);
    memcpy(raw + off, part, sizeof(part));
    off += sizeof(part);
    raw_feed(w, raw, off);
    assert_true(h2_relay_is_reading_head(&w->r));
    assert_false(w->wants & H2_WANT_CLOSE);
    h2_relay_timeout(&w->r, H2_TIMEOUT_REQUEST_HEAD);
    run(w);
    assert_int_equal(scan_goaway(w, acc, &acc_len, sizeof(acc)), NGHTTP2_NO_ERROR);
    assert_true(w->wants & H2_WANT_CLOSE);
}

static void case_stalled_stream(struct world *w, const struct h2_case *tc)
{
    int32_t ids[20];
    char path[64];
    uint64_t size = tc->n;

    run(w);
    for (int i = 0; i < 20; i++) {
        snprintf(path, sizeof(path), "/bytes/%llu", (unsigned long long)(size + (uint64_t)i));
        ids[i] = cli_request(w, "GET", path, 0, false, NULL, 0);
    }
    w->stalled = ids[0];
    run(w);
    /* every other stream completes although stream 1 never opens its window again */
    for (int i = 1; i < 20; i++) {
        assert_int_equal(cst(w, ids[i])->body, size + (uint64_t)i);
        assert_int_equal(cst(w, ids[i])->mismatches, 0);
        assert_true(cst(w, ids[i])->closed);
    }
    assert_false(cst(w, ids[0])->closed);
    assert_true(cst(w, ids[0])->body <= NGHTTP2_INITIAL_WINDOW_SIZE);
    /* the relay holds at most one window of the stalled stream; the origin is blocked */
    snprintf(path, sizeof(path), "/bytes/%llu", (unsigned long long)size);
    assert_int_equal(
        nghttp2_session_get_stream_remote_window_size(w->srv.s, origin_id_for(w, path)), 0);
    assert_true(sst(w, origin_id_for(w, path))->resp_off <= 2 * NGHTTP2_INITIAL_WINDOW_SIZE);
    /* the client catches up */
    w->stalled = 0;
    nghttp2_session_consume_stream(w->cli.s, ids[0], cst(w, ids[0])->body);
    run(w);
    assert_int_equal(cst(w, ids[0])->body, size);
    assert_int_equal(cst(w, ids[0])->mismatches, 0);
    assert_true(h2_relay_is_idle(&w->r));
}

static void case_eof_mid_head(struct world *w, const struct h2_case *tc)
{
    static char big[20000];
    nghttp2_nv extra[1];
    int32_t id;

    memset(big, 'v', sizeof(big));
    extra[0] = (nghttp2_nv){(uint8_t *)"x-big", (uint8_t *)big, 5, sizeof(big), 0};
    run(w);
    id = cli_request(w, "GET", "/bytes/10", 0, false, extra, 1);
    peer_send(&w->cli); /* HEADERS without END_HEADERS; CONTINUATION still to come */
    w->wants = h2_relay_pump(&w->r);
    assert_true(h2_relay_is_reading_head(&w->r));
    h2_relay_upstream_eof(&w->r);
    run(w);
    assert_int_equal(cst(w, id)->status, 502);
    assert_string_equal(cst(w, id)->body_text, "upstream closed connection\n");
    assert_int_equal(origin_id_for(w, "/bytes/10"), 0);
    assert_true(w->wants & H2_WANT_CLOSE);
}

#define FLOOD(kind, count) (((uint64_t)(kind) << 32) | (count))

static const struct h2_case CASES[] = {
    {"GET with a 1 MiB response arrives byte-exact; one HTTP/2.0 flow with status 200",
     case_get_big,
     {0},
     1 << 20},
    {"GET with an empty response", case_get_big, {0}, 0},
    {"client_out and up_out of 100 bytes: frames held (H2_WANT_FLUSH) and split, 256 KiB intact",
     case_get_big,
     {.small_out = 100},
     256 * 1024},
    {"outputs of 1 byte", case_get_big, {.small_out = 1}, 40000},
    {"POST uploads 1 MiB, streamed to the origin byte-exact", case_post_upload, {0}, 1 << 20},
    {"100 concurrent streams all complete with their own bodies", case_many_streams, {0}, 100},
    {"request and response trailers are relayed after the bodies", case_trailers, {0}, 70000},
    {"client RST of one stream resets its upstream twin; the others complete",
     case_client_rst,
     {0},
     0},
    {"upstream graceful GOAWAY: client gets GOAWAY, in-flight streams finish, then close",
     case_upstream_goaway,
     {0},
     3},
    {"upstream GOAWAY processed 1 of 3: the other two are refused (retryable)",
     case_upstream_goaway,
     {0},
     1},
    {"slow client: the origin is held by its window, the relay stages at most one window",
     case_slow_client,
     {0},
     1 << 20},
    {"a 64 KiB window that limits its stream over a 50 ms round trip grows, both ways; all "
     "reservations back at the end",
     case_window_grows,
     {0},
     8 << 20},
    {"20 downloads growing their windows at once stay within H2_WIN_CONN_MAX of reservations",
     case_window_conn_bound,
     {0},
     20},
    {"a growing window stops at what the worker's chunk pool has left", case_window_worker_bound,
     {0}, 8 << 20},
    {"slow client on a connection's first stream: its window starts at H2_WIN_FIRST, the "
     "relay stages at most that",
     case_slow_client_first,
     {0},
     4 << 20},
    {"one stalled stream (client window closed) never blocks the 19 others",
     case_stalled_stream,
     {.manual_window = true},
     1 << 20},
    {"slow origin: the client upload is held by its window", case_slow_origin, {0}, 1 << 20},
    {"SETTINGS: push disabled upstream, 100 streams and header list size to the client",
     case_push_disabled,
     {0},
     0},
    {"SETTINGS: --max-header-size is advertised", case_push_disabled, {.max_header_size = 8192}, 0},
    {"the origin cannot push (ENABLE_PUSH=0 is in force)", case_push_from_origin, {0}, 0},
    {"bad preface (HTTP/1.1 bytes) -> GOAWAY PROTOCOL_ERROR, close, counted",
     case_bad_preface,
     {.raw_client = true},
     0},
    {"PING flood -> GOAWAY ENHANCE_YOUR_CALM, close, counted",
     case_flood,
     {.raw_client = true},
     FLOOD(NGHTTP2_PING, 5000)},
    {"SETTINGS flood -> GOAWAY ENHANCE_YOUR_CALM, close, counted",
     case_flood,
     {.raw_client = true},
     FLOOD(NGHTTP2_SETTINGS, 5000)},
    {"CONTINUATION flood (CVE-2024-27316 class) -> GOAWAY ENHANCE_YOUR_CALM, counted",
     case_flood,
     {.raw_client = true},
     FLOOD(NGHTTP2_CONTINUATION, 100)},
    {"rapid reset (CVE-2023-44487) -> GOAWAY ENHANCE_YOUR_CALM, close, counted",
     case_flood,
     {.raw_client = true},
     FLOOD(NGHTTP2_RST_STREAM, 3000)},
    {"upstream TLS failed: every request is answered 502 with the reason",
     case_upstream_failed,
     {0},
     0},
    {"upstream EOF: waiting stream 502, streaming stream reset, GOAWAY, close",
     case_upstream_eof,
     {0},
     0},
    {"upstream EOF while a request head is half received: that request is answered 502",
     case_eof_mid_head,
     {0},
     0},
    {"upstream RST_STREAM before the response -> 502 with the reason",
     case_upstream_rst,
     {0},
     NGHTTP2_INTERNAL_ERROR},
    {"connect/TLS times for stream id 0 (its stream went away) land on no stream",
     case_times_need_upstream_stream,
     {.small_out = 64},
     0},
    {"upstream RST_STREAM(REFUSED_STREAM) -> client RST REFUSED_STREAM",
     case_upstream_rst,
     {0},
     NGHTTP2_REFUSED_STREAM},
    {"request header block over --max-header-size -> 431, never sent upstream",
     case_header_too_large,
     {.max_header_size = 4096},
     0},
    {"CONNECT over HTTP/2 -> 501 with a clear reason", case_connect_refused, {0}, 0},
    {"the worker's stream pool is full: extra streams are refused (REFUSED_STREAM)",
     case_pool_exhausted,
     {.pool_streams = 3},
     0},
    {"an incomplete request header block: --request-timeout -> GOAWAY, close",
     case_head_timeout,
     {.raw_client = true},
     0},
    {"extended CONNECT (:protocol websocket) is refused: RST PROTOCOL_ERROR, clear flow error",
     case_extended_connect,
     {0},
     0},
    {"103 Early Hints is relayed before the final 200", case_interim, {0}, 0},
    {"upstream response with a connection header -> 502 naming the invalid response",
     case_invalid_response,
     {0},
     0},
    {"idle timeout -> GOAWAY(NO_ERROR), close", case_timeouts, {0}, H2_TIMEOUT_IDLE},
    {"upstream timeout -> 504 on the waiting stream, close",
     case_timeouts,
     {0},
     H2_TIMEOUT_UPSTREAM},
    {"drain (SIGTERM): GOAWAY(NO_ERROR) with the last stream, in-flight streams finish, close",
     case_drain,
     {0},
     0},
    {"timeout with a client that stopped reading: RST, then the next timeout closes",
     case_stalled_timeouts,
     {0},
     0},
    {"timeout with an origin that stopped mid-response: RST CANCEL, GOAWAY, close",
     case_stalled_timeouts,
     {0},
     1},
    {"client EOF reports the open stream and closes", case_client_eof, {0}, 0},
    {"origin allows 5 streams: 40 requests queue inside nghttp2 and all complete",
     case_origin_fewer_streams,
     {.origin_max_streams = 5},
     0},
    {"a request still queued for the origin is cancelled by the client; it never leaves",
     case_queued_cancel,
     {.origin_max_streams = 1},
     0},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        struct world *w = calloc(1, sizeof(*w));

        assert_non_null(w);
        print_message("case %zu: %s\n", i, CASES[i].note);
        world_init(w, &CASES[i].setup);
        CASES[i].run(w, &CASES[i]);
        world_free(w);
        free(w);
    }
}

static void test_pool_limits(void **state)
{
    struct h2_pool *p = h2_pool_new(2);
    struct h2_relay r;
    struct h2_relay_opts opts = {0};
    uint8_t m[4][64];
    struct buf b[4];

    (void)state;
    assert_null(h2_pool_new(0));
    assert_null(h2_pool_new(SIZE_MAX / 2));
    assert_non_null(p);
    assert_int_equal(h2_pool_available(p), 2);
    for (int i = 0; i < 4; i++)
        buf_init(&b[i], m[i], sizeof(m[i]));
    assert_int_equal(h2_relay_init(&r, &opts, NULL, &b[0], &b[1], &b[2], &b[3]), -EINVAL);
    h2_relay_dispose(&r); /* harmless after a failed init */
    h2_pool_free(p);
    h2_pool_free(NULL);
}

/* One client with many connections of slow streams cannot take the whole pool: once only
 * its last eighth is free, a connection holding H2_POOL_LIGHT_STREAMS or more is refused,
 * and a light connection (a newcomer) still gets streams. */
static void test_pool_reserve(void **state)
{
    struct h2_pool *p = h2_pool_new(64);
    struct h2_stream *taken[64];
    size_t n = 0;

    (void)state;
    assert_non_null(p);
    /* heavy connections fill the pool down to its reserve of 64 / 8 = 8 */
    while (h2_pool_may_take(p, 100)) {
        taken[n] = h2_pool_get(p);
        assert_non_null(taken[n]);
        n++;
    }
    assert_int_equal(n, 56);
    assert_int_equal(h2_pool_available(p), 8);
    assert_false(h2_pool_may_take(p, H2_POOL_LIGHT_STREAMS));
    /* a newcomer holding fewer than H2_POOL_LIGHT_STREAMS streams is served from the reserve */
    for (size_t held = 0; held < 8; held++) {
        assert_true(h2_pool_may_take(p, held));
        taken[n] = h2_pool_get(p);
        assert_non_null(taken[n]);
        n++;
    }
    assert_int_equal(h2_pool_available(p), 0);
    assert_null(h2_pool_get(p));
    h2_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_pool_limits),
        cmocka_unit_test(test_pool_reserve),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
