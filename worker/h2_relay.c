/* h2_relay.c - HTTP/2 relay: nghttp2 server session toward the client, client session toward
 * the upstream, streams mapped one to one, bodies staged per stream within the flow-control
 * window so that windows only open when the other side took the bytes. Called only by the
 * worker loop; never does I/O; stream slots come from struct h2_pool. */
#include "worker/h2_relay.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <nghttp2/nghttp2.h>

#include "worker/h1_relay.h"

static_assert((unsigned)H2_WANT_CLIENT_READ == (unsigned)H1_WANT_CLIENT_READ, "want bits match h1");
static_assert((unsigned)H2_WANT_UPSTREAM_READ == (unsigned)H1_WANT_UPSTREAM_READ,
              "want bits match h1");
static_assert((unsigned)H2_WANT_CLOSE == (unsigned)H1_WANT_CLOSE, "want bits match h1");
static_assert(H2_STAGE_SIZE == NGHTTP2_INITIAL_WINDOW_SIZE,
              "a peer may send a whole default window before it acknowledges our SETTINGS");

#define H2_HEADER_SIZE_DEFAULT 65536
#define H2_PUMP_ROUNDS 64    /* per h2_relay_pump call (HAProxy-style work budget) */
#define H2_RECV_CHUNK 16384  /* bytes fed to one mem_recv call */
#define H2_FIELD_OVERHEAD 32 /* RFC 9113 §6.5.2: name + value + 32 per field */
#define H2_RST_BURST 500     /* incoming RST_STREAM token bucket (rapid reset, */
#define H2_RST_RATE 30       /* CVE-2023-44487); nghttp2's own (1000, 33/s) backs it */
#define H2_NGHTTP2_RST_BURST 1000
#define H2_NGHTTP2_RST_RATE 33
#define H2_MAX_OUTBOUND_ACK 1000 /* queued SETTINGS/PING ACKs before FLOODED */

enum h2_dir {
    H2_REQ = 0, /* client -> upstream */
    H2_RESP,    /* upstream -> client */
};

/* struct h2_field is a received header field, kept by reference until forwarded. */
struct h2_field {
    nghttp2_rcbuf *name, *value;
};

/* struct h2_half is one direction of a stream: the header block being received (or trailers
 * waiting for the body to drain) and the body staging. */
struct h2_half {
    struct buf stage; /* body received from the source, not yet taken by the sink */
    struct h2_field fields[H2_MAX_FIELDS];
    uint16_t n_fields;
    size_t fields_size; /* RFC 9113 §6.5.2 size of the block */
    bool fields_over;   /* too many or too large: the block is refused */
    bool ended;         /* END_STREAM received from the source */
    bool has_trailers;  /* `fields` are trailers for after the body */
    bool deferred;      /* the sink's data source returned NGHTTP2_ERR_DEFERRED */
};

/* struct h2_stream is one client stream and its upstream twin, in a pool slot followed by
 * the two stagings. */
struct h2_stream {
    struct h2_stream *next, *prev; /* relay's live list; `next` links the pool's free list */
    struct h2_relay *r;
    int32_t cid;     /* client stream id */
    int32_t uid;     /* upstream stream id, 0 = not submitted */
    bool c_closed;   /* the client session closed the stream */
    bool u_closed;   /* the upstream stream closed, was never opened, or is abandoned */
    bool head_open;  /* the request header block is being received */
    bool client_rst; /* the client sent RST_STREAM */
    bool resp_head;  /* a final response head was submitted to the client */
    bool resp_done;  /* END_STREAM was sent to the client */
    bool answered;   /* the response is mitmd's own */
    bool u_rst_sent; /* a RST_STREAM went upstream (ours, or nghttp2's on bad input) */
    bool c_rst_sent; /* we reset the client stream (once) */
    bool reported;   /* on_flow was called */
    struct h2_half half[2];
    char answer[H2_RELAY_REASON_MAX + 1];
    size_t answer_len, answer_off;
    struct flow flow;
};

struct h2_pool {
    uint8_t *mem;
    size_t map_len;
    size_t slot_size;
    size_t n, used_hw, n_free;
    struct h2_stream *free_list;
};

/* ---- pool ---------------------------------------------------------------------------- */

static size_t slot_header_size(void) { return (sizeof(struct h2_stream) + 63) & ~(size_t)63; }

struct h2_pool *h2_pool_new(size_t nstreams)
{
    struct h2_pool *p;
    size_t slot = slot_header_size() + 2 * (size_t)H2_STAGE_SIZE;
    void *mem;

    slot = (slot + 63) & ~(size_t)63;
    if (nstreams == 0 || nstreams > SIZE_MAX / slot)
        return NULL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    /* one reservation; pages are touched only as slots are used (LIFO reuse keeps it hot) */
    mem = mmap(NULL, nstreams * slot, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
        free(p);
        return NULL;
    }
    p->mem = mem;
    p->map_len = nstreams * slot;
    p->slot_size = slot;
    p->n = nstreams;
    p->n_free = nstreams;
    return p;
}

void h2_pool_free(struct h2_pool *p)
{
    if (p == NULL)
        return;
    munmap(p->mem, p->map_len);
    free(p);
}

size_t h2_pool_available(const struct h2_pool *p) { return p->n_free; }

/* pool_get returns a cleared stream with its two stagings set up, or NULL when exhausted. */
static struct h2_stream *pool_get(struct h2_pool *p)
{
    struct h2_stream *st;
    uint8_t *slot;

    if (p->free_list != NULL) {
        st = p->free_list;
        p->free_list = st->next;
    } else if (p->used_hw < p->n) {
        st = (struct h2_stream *)(p->mem + p->used_hw * p->slot_size);
        p->used_hw++;
    } else {
        return NULL;
    }
    p->n_free--;
    slot = (uint8_t *)st;
    memset(st, 0, offsetof(struct h2_stream, flow));
    flow_init(&st->flow);
    buf_init(&st->half[H2_REQ].stage, slot + slot_header_size(), H2_STAGE_SIZE);
    buf_init(&st->half[H2_RESP].stage, slot + slot_header_size() + H2_STAGE_SIZE, H2_STAGE_SIZE);
    return st;
}

static void pool_put(struct h2_pool *p, struct h2_stream *st)
{
    st->next = p->free_list;
    p->free_list = st;
    p->n_free++;
}

/* ---- small helpers ------------------------------------------------------------------- */

static nghttp2_session *sink_session(const struct h2_relay *r, enum h2_dir d)
{
    return d == H2_REQ ? r->_us : r->_cs;
}

static bool upstream_usable(const struct h2_relay *r) { return r->_us != NULL && !r->_up_dead; }

static bool client_usable(const struct h2_relay *r)
{
    return r->_cs != NULL && !r->_client_dead && !r->_done;
}

static void fields_clear(struct h2_half *h)
{
    for (uint16_t i = 0; i < h->n_fields; i++) {
        nghttp2_rcbuf_decref(h->fields[i].name);
        nghttp2_rcbuf_decref(h->fields[i].value);
    }
    h->n_fields = 0;
    h->fields_size = 0;
    h->fields_over = false;
    h->has_trailers = false;
}

/* fields_to_nv fills `nva` (H2_MAX_FIELDS entries) from `h` and returns the count. */
static size_t fields_to_nv(const struct h2_half *h, nghttp2_nv *nva)
{
    for (uint16_t i = 0; i < h->n_fields; i++) {
        nghttp2_vec n = nghttp2_rcbuf_get_buf(h->fields[i].name);
        nghttp2_vec v = nghttp2_rcbuf_get_buf(h->fields[i].value);

        nva[i].name = n.base;
        nva[i].namelen = n.len;
        nva[i].value = v.base;
        nva[i].valuelen = v.len;
        nva[i].flags = NGHTTP2_NV_FLAG_NONE;
    }
    return h->n_fields;
}

static bool vec_is(nghttp2_vec v, const char *s)
{
    size_t n = strlen(s);

    return v.len == n && memcmp(v.base, s, n) == 0;
}

/* field_find returns the value of the first field named `name`, or {NULL, 0}. */
static nghttp2_vec field_find(const struct h2_half *h, const char *name)
{
    nghttp2_vec none = {NULL, 0};

    for (uint16_t i = 0; i < h->n_fields; i++)
        if (vec_is(nghttp2_rcbuf_get_buf(h->fields[i].name), name))
            return nghttp2_rcbuf_get_buf(h->fields[i].value);
    return none;
}

static void stream_error(struct h2_stream *st, const char *prefix, uint32_t code)
{
    char why[FLOW_ERROR_MAX];

    snprintf(why, sizeof(why), "%s: %s", prefix, nghttp2_http2_strerror(code));
    flow_set_error(&st->flow, why);
}

/* ---- stream lifecycle ---------------------------------------------------------------- */

static void stream_report(struct h2_stream *st, const char *why)
{
    struct h2_relay *r = st->r;

    if (st->reported)
        return;
    st->reported = true;
    if (why != NULL && (!st->resp_done || st->flow.status == 0))
        flow_set_error(&st->flow, why);
    st->flow.t_done = flow_now_ns();
    if (r->_opts.on_flow != NULL)
        r->_opts.on_flow(r->_opts.on_flow_arg, &st->flow);
}

/* half_discard drops what `d` staged and tells the source session the bytes were consumed,
 * so that its connection window stays open. */
static void half_discard(struct h2_relay *r, struct h2_stream *st, enum h2_dir d)
{
    struct h2_half *h = &st->half[d];
    size_t n = buf_used(&h->stage);

    buf_consume(&h->stage, n);
    if (n == 0)
        return;
    if (d == H2_REQ && client_usable(r))
        nghttp2_session_consume(r->_cs, st->cid, n);
    else if (d == H2_RESP && upstream_usable(r))
        nghttp2_session_consume(r->_us, st->uid, n);
}

static void stream_release(struct h2_relay *r, struct h2_stream *st)
{
    stream_report(st, "connection closed");
    fields_clear(&st->half[H2_REQ]);
    fields_clear(&st->half[H2_RESP]);
    if (st->head_open && r->_heads_open > 0)
        r->_heads_open--;
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        r->_live = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    r->_n_live--;
    pool_put(r->_opts.pool, st);
}

static void stream_maybe_release(struct h2_relay *r, struct h2_stream *st)
{
    if (st->c_closed && st->u_closed)
        stream_release(r, st);
}

static struct h2_stream *stream_by_uid(const struct h2_relay *r, int32_t uid)
{
    for (struct h2_stream *st = r->_live; st != NULL; st = st->next)
        if (st->uid == uid)
            return st;
    return NULL;
}

/* flow_from_conn starts the stream's flow with the connection's fields. */
static void flow_from_conn(struct h2_relay *r, struct flow *f)
{
    const struct flow *c = r->_conn_flow;

    flow_init(f);
    if (c != NULL) {
        f->client_addr = c->client_addr;
        f->server_addr = c->server_addr;
        memcpy(f->server_host, c->server_host, sizeof(f->server_host));
        f->tls = c->tls;
        memcpy(f->sni, c->sni, sizeof(f->sni));
        memcpy(f->alpn, c->alpn, sizeof(f->alpn));
        memcpy(f->tls_version, c->tls_version, sizeof(f->tls_version));
        memcpy(f->cert_subject, c->cert_subject, sizeof(f->cert_subject));
        memcpy(f->cert_issuer, c->cert_issuer, sizeof(f->cert_issuer));
        if (!r->_conn_times_used) {
            f->connect_ns = c->connect_ns;
            f->tls_ns = c->tls_ns;
        }
    }
    r->_conn_times_used = true;
    f->exchange_index = r->_exchange_index++;
    flow_begin(f);
    /* set now: a stream whose head never completes is still reported as HTTP/2.0 */
    flow_str_set(f, &f->req_version, "HTTP/2.0", 8);
}

static void flow_fill_request(struct h2_stream *st)
{
    const struct h2_half *h = &st->half[H2_REQ];
    struct flow *f = &st->flow;
    nghttp2_vec method = field_find(h, ":method");
    nghttp2_vec scheme = field_find(h, ":scheme");
    nghttp2_vec auth = field_find(h, ":authority");
    nghttp2_vec path = field_find(h, ":path");
    char url[FLOW_ARENA_SIZE];
    size_t n = 0;

    if (auth.len == 0)
        auth = field_find(h, "host");
    flow_str_set(f, &f->method, method.base, method.len);
    if (scheme.len > 0) {
        n = snprintf(url, sizeof(url), "%.*s://", (int)scheme.len, (const char *)scheme.base);
        n = n < sizeof(url) ? n : sizeof(url) - 1;
    }
    if (auth.len > 0 && n < sizeof(url))
        n += snprintf(url + n, sizeof(url) - n, "%.*s", (int)auth.len, (const char *)auth.base);
    n = n < sizeof(url) ? n : sizeof(url) - 1;
    if (path.len > 0 && n < sizeof(url))
        n += snprintf(url + n, sizeof(url) - n, "%.*s", (int)path.len, (const char *)path.base);
    n = n < sizeof(url) ? n : sizeof(url) - 1;
    flow_str_set(f, &f->url, url, n);
    for (uint16_t i = 0; i < h->n_fields; i++) {
        nghttp2_vec nm = nghttp2_rcbuf_get_buf(h->fields[i].name);
        nghttp2_vec v = nghttp2_rcbuf_get_buf(h->fields[i].value);

        if (nm.len > 0 && nm.base[0] != ':')
            flow_add_header(f, FLOW_REQUEST, nm.base, nm.len, v.base, v.len);
    }
}

/* flow_fill_response records a final response head (pseudo-fields left out). */
static void flow_fill_response(struct h2_stream *st, int status)
{
    const struct h2_half *h = &st->half[H2_RESP];
    struct flow *f = &st->flow;

    f->status = status;
    flow_str_set(f, &f->resp_version, "HTTP/2.0", 8);
    for (uint16_t i = 0; i < h->n_fields; i++) {
        nghttp2_vec nm = nghttp2_rcbuf_get_buf(h->fields[i].name);
        nghttp2_vec v = nghttp2_rcbuf_get_buf(h->fields[i].value);

        if (nm.len > 0 && nm.base[0] != ':')
            flow_add_header(f, FLOW_RESPONSE, nm.base, nm.len, v.base, v.len);
    }
}

/* parse_status returns the value of a 3-digit :status, or -1. */
static int parse_status(nghttp2_vec v)
{
    if (v.len != 3)
        return -1;
    for (size_t i = 0; i < 3; i++)
        if (v.base[i] < '0' || v.base[i] > '9')
            return -1;
    return (v.base[0] - '0') * 100 + (v.base[1] - '0') * 10 + (v.base[2] - '0');
}

/* rst_client resets the client stream (if still open) with `code`. */
static void rst_client(struct h2_relay *r, struct h2_stream *st, uint32_t code)
{
    if (st->c_closed || st->c_rst_sent || !client_usable(r))
        return;
    st->c_rst_sent = true;
    nghttp2_submit_rst_stream(r->_cs, NGHTTP2_FLAG_NONE, st->cid, code);
}

/* rst_upstream resets (or cancels, if its HEADERS are still queued) the upstream stream. */
static void rst_upstream(struct h2_relay *r, struct h2_stream *st, uint32_t code)
{
    if (st->uid > 0 && !st->u_closed && upstream_usable(r))
        nghttp2_submit_rst_stream(r->_us, NGHTTP2_FLAG_NONE, st->uid, code);
    else
        st->u_closed = true;
}

/* goaway_client tells the client, once, that no stream after the last processed one will be
 * served (RFC 9113 §6.8); the client session finishes when its streams have. */
static void goaway_client(struct h2_relay *r)
{
    if (!client_usable(r) || r->_client_goaway_sent)
        return;
    r->_client_goaway_sent = true;
    nghttp2_submit_goaway(r->_cs, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(r->_cs), NGHTTP2_NO_ERROR, NULL,
                          0);
}

/* ---- local answers (502/504/431/501) -------------------------------------------------- */

static ssize_t answer_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct h2_stream *st = src->ptr;
    size_t n = st->answer_len - st->answer_off;

    if (n > len)
        n = len;
    memcpy(out, st->answer + st->answer_off, n);
    st->answer_off += n;
    st->flow.resp_body_size += n;
    if (st->answer_off == st->answer_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* stream_answer responds to the client stream with `status` and `why` (plus "\n") as a
 * text/plain body, records it in the flow, and abandons the upstream stream. */
static void stream_answer(struct h2_relay *r, struct h2_stream *st, int status, const char *why)
{
    char sbuf[8], lbuf[24];
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = answer_read};
    struct flow *f = &st->flow;
    int n;

    if (st->c_closed || st->resp_head || st->c_rst_sent || !client_usable(r))
        return;
    n = snprintf(st->answer, sizeof(st->answer), "%s\n", why);
    st->answer_len =
        n < 0 ? 0 : ((size_t)n < sizeof(st->answer) ? (size_t)n : sizeof(st->answer) - 1);
    st->answer_off = 0;
    snprintf(sbuf, sizeof(sbuf), "%03d", (status >= 100 && status <= 999) ? status : 502);
    snprintf(lbuf, sizeof(lbuf), "%zu", st->answer_len);
    {
        static const char ctype[] = "text/plain; charset=utf-8";
        nghttp2_nv nva[] = {
            {(uint8_t *)":status", (uint8_t *)sbuf, 7, 3, NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"content-type", (uint8_t *)ctype, 12, sizeof(ctype) - 1,
             NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"content-length", (uint8_t *)lbuf, 14, strlen(lbuf), NGHTTP2_NV_FLAG_NONE},
        };

        if (nghttp2_submit_response(r->_cs, st->cid, nva, 3, &prd) != 0) {
            rst_client(r, st, NGHTTP2_INTERNAL_ERROR);
            return;
        }
    }
    st->resp_head = true;
    st->answered = true;
    f->status = status;
    f->answered = true;
    flow_str_set(f, &f->resp_version, "HTTP/2.0", 8);
    flow_add_header(f, FLOW_RESPONSE, "content-type", 12, "text/plain; charset=utf-8", 25);
    flow_add_header(f, FLOW_RESPONSE, "content-length", 14, lbuf, strlen(lbuf));
    if (f->t_response_first == 0)
        f->t_response_first = flow_now_ns();
    flow_set_error(f, why);
    /* nothing more goes upstream or comes back for this stream */
    rst_upstream(r, st, NGHTTP2_CANCEL);
    half_discard(r, st, H2_REQ);
    half_discard(r, st, H2_RESP);
}

/* ---- body relay ---------------------------------------------------------------------- */

/* relay_read is the sink session's data source: it takes staged body bytes, opens the
 * source's window by as much (end-to-end flow control), and ends the body (with trailers)
 * once the source ended and the staging is empty. */
static ssize_t relay_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len, uint32_t *flags,
                          nghttp2_data_source *src, void *ud)
{
    struct h2_relay *r = ud;
    struct h2_stream *st = src->ptr;
    enum h2_dir d = s == r->_us ? H2_REQ : H2_RESP;
    struct h2_half *h = &st->half[d];
    size_t n = buf_used(&h->stage);

    if (n > len)
        n = len;
    if (n > 0) {
        memcpy(out, buf_head(&h->stage), n);
        buf_consume(&h->stage, n);
        if (d == H2_REQ && !st->c_closed && client_usable(r))
            nghttp2_session_consume(r->_cs, st->cid, n);
        else if (d == H2_REQ && client_usable(r))
            nghttp2_session_consume_connection(r->_cs, n);
        else if (d == H2_RESP && upstream_usable(r))
            nghttp2_session_consume(r->_us, st->uid, n);
    }
    if (buf_used(&h->stage) == 0 && h->ended) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (h->has_trailers) {
            nghttp2_nv nva[H2_MAX_FIELDS];
            size_t nv = fields_to_nv(h, nva);

            if (nghttp2_submit_trailer(s, id, nva, nv) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            fields_clear(h);
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        h->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

/* half_kick resumes the sink's data source after bytes or the end arrived. */
static void half_kick(struct h2_relay *r, struct h2_stream *st, enum h2_dir d)
{
    struct h2_half *h = &st->half[d];

    if (!h->deferred)
        return;
    if (d == H2_REQ && (st->u_closed || !upstream_usable(r)))
        return;
    if (d == H2_RESP && (st->c_closed || !client_usable(r)))
        return;
    h->deferred = false;
    nghttp2_session_resume_data(sink_session(r, d), d == H2_REQ ? st->uid : st->cid);
}

/* half_stage appends a received body chunk; the source's window guarantees room. Returns 0
 * or -ENOSPC (a peer overran its window: nghttp2 would have caught it, so never expected). */
static int half_stage(struct h2_half *h, const uint8_t *p, size_t n)
{
    if (n > h->stage.cap - buf_used(&h->stage))
        return -ENOSPC; /* all or nothing: the caller consumes and resets */
    while (n > 0) {
        size_t k = buf_append(&h->stage, p, n);

        if (k == 0)
            return -ENOSPC;
        p += k;
        n -= k;
    }
    return 0;
}

/* ---- forwarding heads ------------------------------------------------------------------ */

static void forward_request(struct h2_relay *r, struct h2_stream *st, bool end_stream)
{
    struct h2_half *h = &st->half[H2_REQ];
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = relay_read};
    nghttp2_nv nva[H2_MAX_FIELDS];
    nghttp2_vec method;
    size_t nv;
    int32_t id;

    flow_fill_request(st);
    h->ended = end_stream;
    method = field_find(h, ":method");
    if (h->fields_over) {
        fields_clear(h);
        stream_answer(r, st, 431, "request header fields too large");
        return;
    }
    if (vec_is(method, "CONNECT")) {
        /* RFC 9113 §8.5 tunnels (and RFC 8441 extended CONNECT, which we never enable in
         * SETTINGS, so clients fall back to HTTP/1.1 for WebSockets) are not relayed */
        fields_clear(h);
        stream_answer(r, st, 501, "mitmd: CONNECT over HTTP/2 is not supported");
        return;
    }
    if (r->_up_failed || r->_up_dead) {
        fields_clear(h);
        stream_answer(r, st, 502, r->_why[0] != '\0' ? r->_why : "upstream connection closed");
        return;
    }
    if (r->_up_goaway) {
        /* the upstream takes no new stream: the client may safely retry (RFC 9113 §8.7) */
        fields_clear(h);
        flow_set_error(&st->flow, "upstream sent GOAWAY: stream refused");
        r->_stats.streams_refused++;
        st->u_closed = true;
        rst_client(r, st, NGHTTP2_REFUSED_STREAM);
        return;
    }
    nv = fields_to_nv(h, nva);
    id = nghttp2_submit_request(r->_us, NULL, nva, nv, end_stream ? NULL : &prd, st);
    fields_clear(h);
    if (id < 0) {
        char why[FLOW_ERROR_MAX];

        snprintf(why, sizeof(why), "cannot open upstream stream: %s", nghttp2_strerror(id));
        st->u_closed = true;
        stream_answer(r, st, 502, why);
        return;
    }
    st->uid = id;
}

static void forward_response_head(struct h2_relay *r, struct h2_stream *st, bool end_stream)
{
    struct h2_half *h = &st->half[H2_RESP];
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = relay_read};
    nghttp2_nv nva[H2_MAX_FIELDS];
    int status = parse_status(field_find(h, ":status"));
    size_t nv;
    int rv;

    if (st->c_closed || !client_usable(r)) {
        fields_clear(h);
        return;
    }
    if (h->fields_over) {
        fields_clear(h);
        stream_answer(r, st, 502, "upstream response header fields too large");
        return;
    }
    nv = fields_to_nv(h, nva);
    if (status >= 100 && status < 200) {
        /* interim response (e.g. 103 Early Hints, 100 Continue): relayed as is */
        rv = nghttp2_submit_headers(r->_cs, NGHTTP2_FLAG_NONE, st->cid, NULL, nva, nv, NULL);
        fields_clear(h);
        if (rv != 0)
            rst_client(r, st, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    flow_fill_response(st, status);
    h->ended = end_stream;
    rv = nghttp2_submit_response(r->_cs, st->cid, nva, nv, end_stream ? NULL : &prd);
    fields_clear(h);
    if (rv != 0) {
        stream_error(st, "cannot relay response", NGHTTP2_INTERNAL_ERROR);
        rst_client(r, st, NGHTTP2_INTERNAL_ERROR);
        rst_upstream(r, st, NGHTTP2_CANCEL);
        return;
    }
    st->resp_head = true;
}

/* ---- callbacks shared by both sessions ----------------------------------------------- */

static bool is_client(const struct h2_relay *r, const nghttp2_session *s) { return s == r->_cs; }

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
    struct h2_relay *r = ud;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    struct h2_half *h;
    nghttp2_vec nv = nghttp2_rcbuf_get_buf(name), vv = nghttp2_rcbuf_get_buf(value);
    size_t limit = r->_opts.max_header_size;

    if (st == NULL)
        return 0;
    h = &st->half[is_client(r, s) ? H2_REQ : H2_RESP];
    h->fields_size += nv.len + vv.len + H2_FIELD_OVERHEAD;
    if (h->n_fields >= H2_MAX_FIELDS || h->fields_size > limit) {
        h->fields_over = true;
        return 0;
    }
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    h->fields[h->n_fields].name = name;
    h->fields[h->n_fields].value = value;
    h->n_fields++;
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    struct h2_relay *r = ud;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    bool from_client = is_client(r, s);
    enum h2_dir d = from_client ? H2_REQ : H2_RESP;
    bool sink_gone;

    if (st == NULL) {
        nghttp2_session_consume(s, id, len);
        return 0;
    }
    if (from_client)
        st->flow.req_body_size += len;
    else
        st->flow.resp_body_size += len;
    sink_gone = from_client ? (st->u_closed || st->answered || !upstream_usable(r))
                            : (st->c_closed || st->answered || !client_usable(r));
    if (sink_gone) {
        nghttp2_session_consume(s, id, len);
        return 0;
    }
    if (half_stage(&st->half[d], data, len) != 0) {
        nghttp2_session_consume(s, id, len);
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR);
        return 0;
    }
    half_kick(r, st, d);
    return 0;
}

/* bucket_take takes one token from a bucket of `burst` tokens refilled at `rate` per second.
 * Returns false when the bucket is empty (the peer floods). */
static bool bucket_take(uint64_t *tokens, uint64_t *last_ns, uint64_t burst, uint64_t rate)
{
    uint64_t now = flow_now_ns();
    uint64_t elapsed = now - *last_ns;
    uint64_t add;

    if (elapsed > 1000000000ull * burst / rate)
        elapsed = 1000000000ull * burst / rate;
    add = elapsed * rate / 1000000000ull;
    if (add > 0) {
        *tokens += add;
        *last_ns += add * 1000000000ull / rate;
        if (*tokens >= burst) {
            *tokens = burst;
            *last_ns = now;
        }
    }
    if (*tokens == 0)
        return false;
    (*tokens)--;
    return true;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct h2_relay *r = ud;
    int32_t id = frame->hd.stream_id;
    struct h2_stream *st;

    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (!is_client(r, s)) {
        st = nghttp2_session_get_stream_user_data(s, id);
        if (st != NULL) {
            fields_clear(&st->half[H2_RESP]);
            if (st->flow.t_response_first == 0)
                st->flow.t_response_first = flow_now_ns();
        }
        return 0;
    }
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        st = nghttp2_session_get_stream_user_data(s, id);
        if (st != NULL)
            fields_clear(&st->half[H2_REQ]); /* trailers follow */
        return 0;
    }
    st = NULL;
    if (r->_n_live < H2_MAX_LIVE_STREAMS && !r->_up_goaway && !r->_closing)
        st = pool_get(r->_opts.pool);
    if (st == NULL) {
        r->_stats.streams_refused++;
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    st->r = r;
    st->cid = id;
    st->head_open = true;
    st->next = r->_live;
    st->prev = NULL;
    if (r->_live != NULL)
        r->_live->prev = st;
    r->_live = st;
    r->_n_live++;
    r->_heads_open++;
    r->_stats.streams++;
    flow_from_conn(r, &st->flow);
    if (nghttp2_session_set_stream_user_data(s, id, st) != 0) {
        st->c_closed = st->u_closed = true;
        stream_release(r, st);
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
    }
    return 0;
}

static void client_frame_recv(struct h2_relay *r, const nghttp2_frame *frame)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(r->_cs, frame->hd.stream_id);
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (st == NULL)
            return;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            st->head_open = false;
            if (r->_heads_open > 0)
                r->_heads_open--;
            forward_request(r, st, end);
            return;
        }
        /* trailers (RFC 9113 §8.1): forwarded after the staged body */
        st->half[H2_REQ].has_trailers = !st->half[H2_REQ].fields_over;
        if (!st->half[H2_REQ].has_trailers)
            fields_clear(&st->half[H2_REQ]);
        st->half[H2_REQ].ended = true;
        half_kick(r, st, H2_REQ);
        return;
    case NGHTTP2_DATA:
        if (st != NULL && end) {
            st->half[H2_REQ].ended = true;
            half_kick(r, st, H2_REQ);
        }
        return;
    case NGHTTP2_RST_STREAM:
        r->_stats.client_resets++;
        if (st != NULL)
            st->client_rst = true;
        return;
    default:
        return;
    }
}

static void upstream_gone(struct h2_relay *r, int status, const char *why);

static void upstream_frame_recv(struct h2_relay *r, const nghttp2_frame *frame)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(r->_us, frame->hd.stream_id);
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (st == NULL)
            return;
        if (!st->resp_head) {
            forward_response_head(r, st, end);
            return;
        }
        st->half[H2_RESP].has_trailers = !st->half[H2_RESP].fields_over;
        if (!st->half[H2_RESP].has_trailers)
            fields_clear(&st->half[H2_RESP]);
        st->half[H2_RESP].ended = true;
        half_kick(r, st, H2_RESP);
        return;
    case NGHTTP2_DATA:
        if (st != NULL && end) {
            st->half[H2_RESP].ended = true;
            half_kick(r, st, H2_RESP);
        }
        return;
    case NGHTTP2_RST_STREAM:
        r->_stats.upstream_resets++;
        return;
    case NGHTTP2_GOAWAY:
        r->_up_goaway = true;
        r->_up_last_id = frame->goaway.last_stream_id;
        if (frame->goaway.error_code != NGHTTP2_NO_ERROR) {
            r->_stats.upstream_errors++;
            snprintf(r->_why, sizeof(r->_why), "upstream sent GOAWAY: %s",
                     nghttp2_http2_strerror(frame->goaway.error_code));
        }
        /* tell the client: streams the upstream processed finish; the others are refused
         * one by one (REFUSED_STREAM) as nghttp2 closes them */
        goaway_client(r);
        return;
    default:
        return;
    }
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct h2_relay *r = ud;

    if (is_client(r, s)) {
        bool ctrl = false;

        switch (frame->hd.type) {
        case NGHTTP2_PING:
        case NGHTTP2_SETTINGS:
            ctrl = (frame->hd.flags & NGHTTP2_FLAG_ACK) == 0;
            if (frame->hd.type == NGHTTP2_SETTINGS)
                r->_preface_done = true;
            break;
        case NGHTTP2_PRIORITY:
            ctrl = true;
            break;
        case NGHTTP2_RST_STREAM:
            /* rapid reset (CVE-2023-44487): stricter than nghttp2's own limiter, so that it
             * is answered ENHANCE_YOUR_CALM and counted as a flood */
            if (!bucket_take(&r->_rst_tokens, &r->_rst_last_ns, H2_RST_BURST, H2_RST_RATE)) {
                r->_flood = true;
                return NGHTTP2_ERR_CALLBACK_FAILURE;
            }
            break;
        case NGHTTP2_DATA:
            /* empty DATA frames without END_STREAM (CVE-2019-9518) */
            ctrl = frame->hd.length == 0 && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0;
            break;
        default:
            break;
        }
        if (ctrl &&
            !bucket_take(&r->_ctrl_tokens, &r->_ctrl_last_ns, H2_CTRL_BURST, H2_CTRL_RATE)) {
            r->_flood = true;
            return NGHTTP2_ERR_CALLBACK_FAILURE; /* -> GOAWAY ENHANCE_YOUR_CALM */
        }
        client_frame_recv(r, frame);
    } else {
        upstream_frame_recv(r, frame);
    }
    return 0;
}

static void client_stream_closed(struct h2_relay *r, struct h2_stream *st, uint32_t code)
{
    bool normal = code == NGHTTP2_NO_ERROR && st->resp_done;
    bool head_open = st->head_open;

    st->c_closed = true;
    if (st->head_open) {
        st->head_open = false;
        if (r->_heads_open > 0)
            r->_heads_open--;
    }
    if (!normal) {
        if (st->client_rst)
            stream_error(st, "client reset stream", code);
        else if (head_open && code == NGHTTP2_PROTOCOL_ERROR)
            /* nghttp2 rejected the request head (RFC 9113 §8.1.1), e.g. RFC 8441 :protocol,
             * which we never enable: browsers then use WebSockets over HTTP/1.1 */
            flow_set_error(&st->flow, "malformed HTTP/2 request (extended CONNECT and "
                                      "WebSocket over HTTP/2 are not supported): PROTOCOL_ERROR");
        else if (code != NGHTTP2_NO_ERROR)
            stream_error(st, "stream error", code);
        else
            flow_set_error(&st->flow, "stream closed before the response ended");
        rst_upstream(r, st, code == NGHTTP2_NO_ERROR ? NGHTTP2_CANCEL : code);
        half_discard(r, st, H2_REQ);
    }
    half_discard(r, st, H2_RESP);
    stream_report(st, NULL);
    stream_maybe_release(r, st);
}

static void upstream_stream_closed(struct h2_relay *r, struct h2_stream *st, uint32_t code)
{
    st->u_closed = true;
    if (!st->c_closed && !st->answered && !st->half[H2_RESP].ended) {
        if (!st->resp_head && code == NGHTTP2_REFUSED_STREAM) {
            /* not processed: the client may retry (RFC 9113 §8.7) */
            r->_stats.streams_refused++;
            flow_set_error(&st->flow, "upstream refused stream");
            rst_client(r, st, NGHTTP2_REFUSED_STREAM);
        } else if (!st->resp_head) {
            char why[FLOW_ERROR_MAX];

            if (st->u_rst_sent)
                /* nghttp2 reset it: the response broke RFC 9113 §8 (e.g. a connection
                 * header, a bad :status); we never cancel a stream the client still wants */
                snprintf(why, sizeof(why), "invalid HTTP/2 response from upstream: %s",
                         nghttp2_http2_strerror(code));
            else if (code == NGHTTP2_NO_ERROR)
                snprintf(why, sizeof(why), "upstream closed stream without a response");
            else
                snprintf(why, sizeof(why), "upstream reset stream: %s",
                         nghttp2_http2_strerror(code));
            stream_answer(r, st, 502, why);
        } else {
            stream_error(st,
                         st->u_rst_sent ? "invalid HTTP/2 response from upstream"
                                        : "upstream reset stream",
                         code);
            rst_client(r, st, code == NGHTTP2_NO_ERROR ? NGHTTP2_INTERNAL_ERROR : code);
        }
    } else if (!st->c_closed && st->resp_done && !st->half[H2_REQ].ended) {
        /* RFC 9113 §8.1: the response is complete, the rest of the request is not wanted */
        rst_client(r, st, NGHTTP2_NO_ERROR);
    }
    half_discard(r, st, H2_REQ);
    stream_maybe_release(r, st);
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct h2_relay *r = ud;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, id);

    if (st == NULL)
        return 0;
    if (is_client(r, s)) {
        if (!st->c_closed)
            client_stream_closed(r, st, code);
    } else if (!st->u_closed) {
        upstream_stream_closed(r, st, code);
    }
    return 0;
}

static void count_client_error(struct h2_relay *r, bool flood)
{
    if (!r->_client_err_counted) {
        r->_client_err_counted = true;
        r->_stats.client_errors++;
    }
    if (flood && !r->_flood_counted) {
        r->_flood_counted = true;
        r->_stats.client_floods++;
    }
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct h2_relay *r = ud;
    struct h2_stream *st;
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    if (frame->hd.type == NGHTTP2_GOAWAY) {
        uint32_t code = frame->goaway.error_code;

        if (is_client(r, s)) {
            r->_client_goaway_sent = true;
            if (code != NGHTTP2_NO_ERROR)
                count_client_error(r, code == NGHTTP2_ENHANCE_YOUR_CALM);
        } else if (code != NGHTTP2_NO_ERROR) {
            /* nghttp2 found the upstream broke the protocol (RFC 9113 §5.4.1) */
            r->_stats.upstream_errors++;
            if (r->_why[0] == '\0')
                snprintf(r->_why, sizeof(r->_why), "upstream HTTP/2 protocol error: %s",
                         nghttp2_http2_strerror(code));
        }
        return 0;
    }
    if (frame->hd.type == NGHTTP2_RST_STREAM && !is_client(r, s)) {
        st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
        if (st != NULL)
            st->u_rst_sent = true;
        return 0;
    }
    if (!end || (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA))
        return 0;
    st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    if (is_client(r, s)) {
        st->resp_done = true;
        if (st->u_closed && !st->half[H2_REQ].ended)
            rst_client(r, st, NGHTTP2_NO_ERROR); /* RFC 9113 §8.1 */
    } else {
        st->flow.t_request_sent = flow_now_ns();
    }
    return 0;
}

static int on_frame_not_send(nghttp2_session *s, const nghttp2_frame *frame, int lib_error,
                             void *ud)
{
    struct h2_relay *r = ud;
    struct h2_stream *st;

    if (is_client(r, s) || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    /* a queued request never left (cancelled, or refused after GOAWAY): its stream was never
     * created, so no close callback comes */
    st = stream_by_uid(r, frame->hd.stream_id);
    if (st == NULL || st->u_closed)
        return 0;
    upstream_stream_closed(r, st, NGHTTP2_REFUSED_STREAM);
    return 0;
}

/* ---- session setup ------------------------------------------------------------------- */

static int callbacks_new(nghttp2_session_callbacks **out)
{
    nghttp2_session_callbacks *cb;

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -ENOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_frame_not_send);
    *out = cb;
    return 0;
}

static int option_new(const struct h2_relay *r, nghttp2_option **out)
{
    nghttp2_option *opt;
    size_t block = r->_opts.max_header_size * 2 + 4096;

    if (nghttp2_option_new(&opt) != 0)
        return -ENOMEM;
    /* windows open only when the other side took the bytes (nghttp2_session_consume) */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, H2_MAX_OUTBOUND_ACK);
    nghttp2_option_set_stream_reset_rate_limit(opt, H2_NGHTTP2_RST_BURST, H2_NGHTTP2_RST_RATE);
    nghttp2_option_set_max_send_header_block_length(opt, block > 65536 ? block : 65536);
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
    *out = opt;
    return 0;
}

int h2_relay_init(struct h2_relay *r, const struct h2_relay_opts *opts,
                  const struct flow *conn_flow, struct buf *client_in, struct buf *client_out,
                  struct buf *up_in, struct buf *up_out)
{
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    int err;

    memset(r, 0, sizeof(*r));
    if (opts == NULL || opts->pool == NULL)
        return -EINVAL;
    r->_opts = *opts;
    if (r->_opts.max_header_size == 0)
        r->_opts.max_header_size = H2_HEADER_SIZE_DEFAULT;
    if (r->_opts.max_header_size > UINT32_MAX)
        r->_opts.max_header_size = UINT32_MAX;
    r->_conn_flow = conn_flow;
    r->_client_in = client_in;
    r->_client_out = client_out;
    r->_up_in = up_in;
    r->_up_out = up_out;
    r->_ctrl_tokens = H2_CTRL_BURST;
    r->_ctrl_last_ns = flow_now_ns();
    r->_rst_tokens = H2_RST_BURST;
    r->_rst_last_ns = r->_ctrl_last_ns;

    err = callbacks_new(&cb);
    if (err)
        return err;
    err = option_new(r, &opt);
    if (err)
        goto out_del_cb;
    if (nghttp2_session_server_new2(&r->_cs, cb, r, opt) != 0) {
        err = -ENOMEM;
        goto out_del_opt;
    }
    if (nghttp2_session_client_new2(&r->_us, cb, r, opt) != 0) {
        err = -ENOMEM;
        goto out_del_cs;
    }
    {
        nghttp2_settings_entry cs_set[] = {
            {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_CONCURRENT_STREAMS},
            {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STAGE_SIZE},
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)r->_opts.max_header_size},
            {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
        };
        nghttp2_settings_entry us_set[] = {
            {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}, /* server push refused (RFC 9113 §8.4) */
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STAGE_SIZE},
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)r->_opts.max_header_size},
            {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
        };

        if (nghttp2_submit_settings(r->_cs, NGHTTP2_FLAG_NONE, cs_set, 5) != 0 ||
            nghttp2_submit_settings(r->_us, NGHTTP2_FLAG_NONE, us_set, 4) != 0 ||
            nghttp2_session_set_local_window_size(r->_cs, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) !=
                0 ||
            nghttp2_session_set_local_window_size(r->_us, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) !=
                0) {
            err = -ENOMEM;
            goto out_del_us;
        }
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    r->_inited = true;
    return 0;
out_del_us:
    nghttp2_session_del(r->_us);
    r->_us = NULL;
out_del_cs:
    nghttp2_session_del(r->_cs);
    r->_cs = NULL;
out_del_opt:
    nghttp2_option_del(opt);
out_del_cb:
    nghttp2_session_callbacks_del(cb);
    return err;
}

void h2_relay_dispose(struct h2_relay *r)
{
    if (!r->_inited)
        return;
    r->_inited = false;
    r->_done = true;
    r->_client_dead = true;
    r->_up_dead = true;
    /* header references go back while their sessions exist; then the sessions go, as they
     * hold pointers to the streams as stream user data; then the streams */
    for (struct h2_stream *st = r->_live; st != NULL; st = st->next) {
        fields_clear(&st->half[H2_REQ]);
        fields_clear(&st->half[H2_RESP]);
    }
    nghttp2_session_del(r->_cs);
    nghttp2_session_del(r->_us);
    r->_cs = NULL;
    r->_us = NULL;
    while (r->_live != NULL)
        stream_release(r, r->_live);
}

/* ---- connection-level events --------------------------------------------------------- */

/* finish marks the client side as done: every stream still open is reported with `why` and
 * the relay wants to close. */
static void finish(struct h2_relay *r, const char *why)
{
    if (r->_done)
        return;
    r->_done = true;
    for (struct h2_stream *st = r->_live; st != NULL; st = st->next)
        stream_report(st, why);
}

static void upstream_gone(struct h2_relay *r, int status, const char *why)
{
    struct h2_stream *st, *next;

    if (r->_up_dead || !r->_inited)
        return;
    if (r->_why[0] == '\0')
        snprintf(r->_why, sizeof(r->_why), "%s", why);
    for (st = r->_live; st != NULL; st = st->next) {
        if (st->c_closed || st->answered || st->c_rst_sent)
            continue;
        if (st->head_open)
            continue; /* answered when its head completes (forward_request) */
        if (!st->resp_head) {
            stream_answer(r, st, status, why);
        } else if (!st->half[H2_RESP].ended) {
            flow_set_error(&st->flow, why);
            rst_client(r, st, NGHTTP2_INTERNAL_ERROR);
        }
    }
    r->_up_dead = true;
    r->_u_pend = NULL;
    r->_u_pend_len = 0;
    for (st = r->_live; st != NULL; st = next) {
        next = st->next;
        st->u_closed = true;
        st->half[H2_REQ].deferred = false;
        stream_maybe_release(r, st);
    }
    goaway_client(r);
}

void h2_relay_upstream_failed(struct h2_relay *r, const char *why)
{
    if (!r->_inited)
        return;
    snprintf(r->_why, sizeof(r->_why), "%s", why != NULL ? why : "upstream unavailable");
    r->_up_failed = true;
    if (r->_live == NULL) {
        r->_up_dead = true;
        r->_u_pend = NULL;
        r->_u_pend_len = 0;
        return;
    }
    upstream_gone(r, 502, r->_why);
}

void h2_relay_upstream_eof(struct h2_relay *r)
{
    r->_up_eof = true;
    upstream_gone(r, 502, "upstream closed connection");
}

void h2_relay_upstream_error(struct h2_relay *r, const char *why)
{
    r->_up_eof = true;
    upstream_gone(r, 502, why != NULL ? why : "upstream connection failed");
}

void h2_relay_client_eof(struct h2_relay *r)
{
    r->_client_eof = true;
    r->_client_dead = true;
    finish(r, "client closed connection");
}

void h2_relay_client_error(struct h2_relay *r, const char *why)
{
    r->_client_eof = true;
    r->_client_dead = true;
    finish(r, why != NULL ? why : "client connection failed");
}

void h2_relay_drain(struct h2_relay *r)
{
    if (!r->_inited || r->_done)
        return;
    r->_closing = true;
    goaway_client(r);
}

/* timeout_streams ends a connection that stopped moving: a half-received head or a response
 * under way is reset (CANCEL) with the flow's error naming the side that stalled, streams
 * without a response head are answered 504, and the client gets GOAWAY; the connection closes
 * once that is flushed. */
static void timeout_streams(struct h2_relay *r)
{
    for (struct h2_stream *st = r->_live; st != NULL; st = st->next) {
        const char *why;

        if (st->c_closed || st->answered || st->resp_done)
            continue;
        if (st->head_open)
            why = "request head timed out";
        else if (!st->resp_head)
            continue; /* 504 below */
        else if (buf_used(&st->half[H2_RESP].stage) > 0 || st->half[H2_RESP].ended)
            why = "client did not read the response in time";
        else
            why = "upstream did not send the response in time";
        flow_set_error(&st->flow, why);
        rst_client(r, st, NGHTTP2_CANCEL);
    }
    upstream_gone(r, 504, "upstream did not answer in time");
}

void h2_relay_timeout(struct h2_relay *r, enum h2_timeout which)
{
    if (!r->_inited || r->_done)
        return;
    if (r->_timed_out) {
        /* the first timeout's answers could not be delivered either: give up */
        finish(r, "connection timed out");
        return;
    }
    switch (which) {
    case H2_TIMEOUT_IDLE:
        r->_timed_out = true;
        r->_closing = true;
        if (!h2_relay_is_idle(r)) {
            timeout_streams(r);
            return;
        }
        goaway_client(r);
        if (upstream_usable(r))
            nghttp2_submit_goaway(r->_us, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
        return;
    case H2_TIMEOUT_REQUEST_HEAD:
        if (!h2_relay_is_reading_head(r))
            return;
        r->_timed_out = true;
        r->_closing = true;
        for (struct h2_stream *st = r->_live; st != NULL; st = st->next)
            if (st->head_open)
                flow_set_error(&st->flow, "request head timed out");
        if (client_usable(r))
            nghttp2_session_terminate_session(r->_cs, NGHTTP2_NO_ERROR);
        return;
    case H2_TIMEOUT_UPSTREAM:
        r->_timed_out = true;
        r->_closing = true;
        timeout_streams(r);
        return;
    }
}

/* ---- pumping ------------------------------------------------------------------------- */

/* client_fatal handles a fatal error of the client session (bad preface, flood, callback
 * failure): GOAWAY with a matching code, counted; the session then finishes. */
static void client_fatal(struct h2_relay *r, int rv)
{
    uint32_t code = NGHTTP2_PROTOCOL_ERROR;
    /* flood patterns: ours (PING/SETTINGS/PRIORITY/empty DATA/RST_STREAM), nghttp2's queued
     * ACKs, CONTINUATION floods (CVE-2024-27316 class) and oversized SETTINGS */
    bool flood = r->_flood || rv == NGHTTP2_ERR_FLOODED ||
                 rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS || rv == NGHTTP2_ERR_TOO_MANY_SETTINGS;
    const char *why = "HTTP/2 protocol error from client";

    if (flood) {
        code = NGHTTP2_ENHANCE_YOUR_CALM;
        why = "HTTP/2 flood from client";
    } else if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
        why = "bad HTTP/2 client preface";
    }
    count_client_error(r, flood);
    r->_closing = true;
    for (struct h2_stream *st = r->_live; st != NULL; st = st->next)
        flow_set_error(&st->flow, why);
    if (rv == NGHTTP2_ERR_NOMEM || nghttp2_session_terminate_session(r->_cs, code) != 0)
        finish(r, why);
}

/* flush_pending moves bytes nghttp2 serialised earlier into `out`. Returns true if any moved. */
static bool flush_pending(struct buf *out, const uint8_t **pend, size_t *len)
{
    size_t k;

    if (*len == 0)
        return false;
    k = buf_append(out, *pend, *len);
    *pend += k;
    *len -= k;
    if (*len == 0)
        *pend = NULL;
    return k > 0;
}

/* send_side serialises frames of `s` into `out` while it has room. Returns true on progress,
 * and sets `*fatal` to a fatal nghttp2 error. */
static bool send_side(nghttp2_session *s, struct buf *out, const uint8_t **pend, size_t *len,
                      int *fatal)
{
    bool progress = false;

    if (flush_pending(out, pend, len))
        progress = true;
    while (*len == 0 && buf_room(out) > 0) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(s, &p);
        size_t k;

        if (n < 0) {
            *fatal = (int)n;
            break;
        }
        if (n == 0)
            break;
        progress = true;
        k = buf_append(out, p, (size_t)n);
        if (k < (size_t)n) {
            *pend = p + k;
            *len = (size_t)n - k;
        }
    }
    return progress;
}

/* recv_side feeds up to H2_RECV_CHUNK bytes of `in` to `s`. */
static bool recv_side(nghttp2_session *s, struct buf *in, int *fatal)
{
    size_t n = buf_used(in);
    ssize_t rv;

    if (n == 0)
        return false;
    if (n > H2_RECV_CHUNK)
        n = H2_RECV_CHUNK;
    rv = nghttp2_session_mem_recv(s, buf_head(in), n);
    if (rv < 0) {
        *fatal = (int)rv;
        buf_consume(in, buf_used(in));
        return true;
    }
    buf_consume(in, (size_t)rv);
    return rv > 0;
}

static bool pump_round(struct h2_relay *r)
{
    bool progress = false;
    int fatal;

    if (client_usable(r) && !r->_closing_recv) {
        fatal = 0;
        progress |= recv_side(r->_cs, r->_client_in, &fatal);
        if (fatal != 0) {
            r->_closing_recv = true;
            client_fatal(r, fatal);
        }
    } else if (buf_used(r->_client_in) > 0) {
        buf_consume(r->_client_in, buf_used(r->_client_in)); /* nobody reads it any more */
    }
    if (upstream_usable(r)) {
        fatal = 0;
        progress |= recv_side(r->_us, r->_up_in, &fatal);
        if (fatal != 0) {
            char why[H2_RELAY_REASON_MAX];

            snprintf(why, sizeof(why), "upstream HTTP/2 error: %s", nghttp2_strerror(fatal));
            r->_stats.upstream_errors++;
            upstream_gone(r, 502, why);
        }
    } else if (buf_used(r->_up_in) > 0) {
        buf_consume(r->_up_in, buf_used(r->_up_in));
    }
    if (upstream_usable(r)) {
        fatal = 0;
        progress |= send_side(r->_us, r->_up_out, &r->_u_pend, &r->_u_pend_len, &fatal);
        if (fatal != 0) {
            r->_stats.upstream_errors++;
            upstream_gone(r, 502, "upstream HTTP/2 session failed");
        }
    }
    if (client_usable(r)) {
        fatal = 0;
        progress |= send_side(r->_cs, r->_client_out, &r->_c_pend, &r->_c_pend_len, &fatal);
        if (fatal != 0)
            finish(r, "HTTP/2 session to client failed");
    }
    return progress;
}

/* check_sessions notices sessions that have nothing more to do. */
static void check_sessions(struct h2_relay *r)
{
    if (upstream_usable(r) && nghttp2_session_want_read(r->_us) == 0 &&
        nghttp2_session_want_write(r->_us) == 0 && r->_u_pend_len == 0)
        upstream_gone(r, 502, r->_why[0] != '\0' ? r->_why : "upstream ended the HTTP/2 session");
    if (client_usable(r) && nghttp2_session_want_read(r->_cs) == 0 &&
        nghttp2_session_want_write(r->_cs) == 0 && r->_c_pend_len == 0)
        finish(r, "connection closed");
}

unsigned h2_relay_pump(struct h2_relay *r)
{
    if (!r->_inited)
        return H2_WANT_CLOSE;
    for (int round = 0; round < H2_PUMP_ROUNDS && !r->_done; round++) {
        bool progress = pump_round(r);

        check_sessions(r);
        if (!progress)
            break;
    }
    return h2_relay_wants(r);
}

static bool has_room(const struct buf *b) { return b->cap > buf_used(b); }

unsigned h2_relay_wants(const struct h2_relay *r)
{
    unsigned w = 0;

    if (!r->_inited || r->_done)
        return H2_WANT_CLOSE;
    if (!r->_client_dead && !r->_closing_recv && has_room(r->_client_in) &&
        nghttp2_session_want_read(r->_cs) != 0)
        w |= H2_WANT_CLIENT_READ;
    if (upstream_usable(r) && has_room(r->_up_in) && nghttp2_session_want_read(r->_us) != 0)
        w |= H2_WANT_UPSTREAM_READ;
    if (r->_c_pend_len > 0 || (upstream_usable(r) && r->_u_pend_len > 0))
        w |= H2_WANT_FLUSH;
    return w;
}

bool h2_relay_is_idle(const struct h2_relay *r) { return r->_live == NULL; }

bool h2_relay_is_reading_head(const struct h2_relay *r)
{
    return r->_inited && !r->_done && (!r->_preface_done || r->_heads_open > 0);
}

bool h2_relay_is_waiting_upstream(const struct h2_relay *r)
{
    for (const struct h2_stream *st = r->_live; st != NULL; st = st->next)
        if (st->uid > 0 && !st->resp_head && !st->c_closed && !st->u_closed)
            return true;
    return false;
}

const struct h2_relay_stats *h2_relay_stats(const struct h2_relay *r) { return &r->_stats; }
