/* h2_stream.c - the streams of the HTTP/2 relay: the pool of stream slots (mmap'd once per
 * worker), a stream's lifecycle and flow record, mitmd's own answers (502/504/431/501), the
 * per-stream body staging that nghttp2 data sources read from, and --modify-body's held
 * bodies. Forwarding header blocks from one session to the other is h2_forward.c's. Called by
 * h2_session.c, h2_forward.c and h2_relay.c; never does I/O. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <nghttp2/nghttp2.h>

#include "worker/flow_body.h"
#include "worker/h2_answer.h"
#include "worker/h2_relay_internal.h"
#include "worker/replay_h2.h"
#include "worker/www_auth.h"

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
    if (h2_chunks_init(&p->chunks, H2_WIN_WORKER_MAX / H2_CHUNK_SIZE) != 0) {
        free(p);
        return NULL;
    }
    /* one reservation; pages are touched only as slots are used (LIFO reuse keeps it hot) */
    mem = mmap(NULL, nstreams * slot, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
        h2_chunks_dispose(&p->chunks);
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
    h2_chunks_dispose(&p->chunks);
    free(p);
}

size_t h2_pool_available(const struct h2_pool *p) { return p->n_free; }

bool h2_pool_may_take(const struct h2_pool *p, size_t held)
{
    /* the last eighth of the pool is kept for connections that hold few streams: however many
     * connections one client opens with slow streams, a newcomer still gets served */
    return held < H2_POOL_LIGHT_STREAMS || p->n_free > p->n / 8;
}

/* h2_pool_get returns a cleared stream with its two stagings set up, or NULL when exhausted. */
/* stream_clear zeroes `st` up to its flow except the field tables of its two header blocks and
 * of its two --modify-body heads, which are read only up to their counts: about 1 KiB cleared
 * per stream instead of 15 KiB. */
static void stream_clear(struct h2_stream *st)
{
    size_t a = offsetof(struct h2_stream, body), b = offsetof(struct h2_stream, answer);

    memset(st, 0, a);
    memset((char *)st + b, 0, offsetof(struct h2_stream, flow) - b);
    for (int d = 0; d < 2; d++) {
        struct h2_body *bd = &st->body[d];
        struct h2_half *h = &st->half[d];

        memset(bd, 0, offsetof(struct h2_body, nva));
        memset(&bd->nv, 0, sizeof(*bd) - offsetof(struct h2_body, nv));
        memset(h, 0, offsetof(struct h2_half, fields));
        memset(&h->n_fields, 0, sizeof(*h) - offsetof(struct h2_half, n_fields));
    }
}

struct h2_stream *h2_pool_get(struct h2_pool *p)
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
    stream_clear(st);
    flow_init(&st->flow);
    st->ml.fd = -1;
    h2_stage_init(&st->half[H2_REQ].stage, slot + slot_header_size(), H2_STAGE_SIZE);
    h2_stage_init(&st->half[H2_RESP].stage, slot + slot_header_size() + H2_STAGE_SIZE,
                  H2_STAGE_SIZE);
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

bool h2_upstream_is_usable(const struct h2_relay *r) { return r->_us != NULL && !r->_up_dead; }

bool h2_client_is_usable(const struct h2_relay *r)
{
    return r->_cs != NULL && !r->_client_dead && !r->_done;
}

void h2_fields_clear(struct h2_half *h)
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

/* h2_fields_to_nv fills `nva` (H2_MAX_FIELDS entries) from `h` and returns the count. */
/* h2_fields_to_nv lists the fields of `h` for nghttp2, leaving out proxy-authorization (the
 * client's credentials for mitmd never reach an origin, as on HTTP/1.1). Returns the count. */
size_t h2_fields_to_nv(const struct h2_half *h, nghttp2_nv *nva)
{
    size_t k = 0;

    for (uint16_t i = 0; i < h->n_fields; i++) {
        nghttp2_vec n = nghttp2_rcbuf_get_buf(h->fields[i].name);
        nghttp2_vec v = nghttp2_rcbuf_get_buf(h->fields[i].value);

        if (n.len == 19 && memcmp(n.base, "proxy-authorization", 19) == 0)
            continue;
        nva[k].name = n.base;
        nva[k].namelen = n.len;
        nva[k].value = v.base;
        nva[k].valuelen = v.len;
        nva[k].flags = NGHTTP2_NV_FLAG_NONE;
        k++;
    }
    return k;
}

/* h2_field_find returns the value of the first field named `name`, or {NULL, 0}. */
nghttp2_vec h2_field_find(const struct h2_half *h, const char *name)
{
    nghttp2_vec none = {NULL, 0};

    for (uint16_t i = 0; i < h->n_fields; i++)
        if (h2_vec_is(nghttp2_rcbuf_get_buf(h->fields[i].name), name))
            return nghttp2_rcbuf_get_buf(h->fields[i].value);
    return none;
}

void h2_stream_error(struct h2_stream *st, const char *prefix, uint32_t code)
{
    char why[FLOW_ERROR_MAX];

    snprintf(why, sizeof(why), "%s: %s", prefix, nghttp2_http2_strerror(code));
    flow_set_error(&st->flow, why);
}

static void body_free(struct h2_relay *r, struct h2_body *b);

/* ---- stream lifecycle ---------------------------------------------------------------- */

void h2_stream_report(struct h2_stream *st, const char *why)
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

/* h2_half_discard drops what `d` staged and tells the source session the bytes were consumed,
 * so that its connection window stays open. */
void h2_half_discard(struct h2_relay *r, struct h2_stream *st, enum h2_dir d)
{
    struct h2_half *h = &st->half[d];
    size_t n = h2_stage_used(&h->stage);

    h2_stage_consume(&h->stage, &r->_opts.pool->chunks, n);
    if (n == 0)
        return;
    if (d == H2_REQ && h2_client_is_usable(r))
        nghttp2_session_consume(r->_cs, st->cid, n);
    else if (d == H2_RESP && h2_upstream_is_usable(r))
        nghttp2_session_consume(r->_us, st->uid, n);
}

void h2_stream_release(struct h2_relay *r, struct h2_stream *st)
{
    h2_stream_report(st, "connection closed");
    h2_window_release(r, st);
    flow_body_release(&st->flow);
    maplocal_answer_close(&st->ml);
    body_free(r, &st->body[H2_REQ]);
    body_free(r, &st->body[H2_RESP]);
    if ((st->held || st->stall) && r->_n_timed > 0)
        r->_n_timed--;
    h2_fields_clear(&st->half[H2_REQ]);
    h2_fields_clear(&st->half[H2_RESP]);
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

void h2_stream_maybe_release(struct h2_relay *r, struct h2_stream *st)
{
    if (st->c_closed && st->u_closed)
        h2_stream_release(r, st);
}

struct h2_stream *h2_stream_by_uid(const struct h2_relay *r, int32_t uid)
{
    if (uid <= 0)
        return NULL; /* 0 is every stream that never went upstream */
    for (struct h2_stream *st = r->_live; st != NULL; st = st->next)
        if (st->uid == uid)
            return st;
    return NULL;
}

/* h2_flow_from_conn starts the stream's flow with the connection's fields. */
void h2_flow_from_conn(struct h2_relay *r, struct flow *f)
{
    const struct flow *c = r->_conn_flow;

    flow_init(f);
    if (c != NULL) {
        f->client_addr = c->client_addr;
        f->server_addr = c->server_addr;
        memcpy(f->server_host, c->server_host, sizeof(f->server_host));
        memcpy(f->target_host, c->target_host, sizeof(f->target_host));
        f->target_port = c->target_port;
        f->showhost = c->showhost;
        f->tls = c->tls;
        memcpy(f->sni, c->sni, sizeof(f->sni));
        memcpy(f->alpn, c->alpn, sizeof(f->alpn));
        memcpy(f->tls_version, c->tls_version, sizeof(f->tls_version));
        memcpy(f->cert_subject, c->cert_subject, sizeof(f->cert_subject));
        memcpy(f->cert_issuer, c->cert_issuer, sizeof(f->cert_issuer));
        f->proxy_mode = c->proxy_mode;
        f->proxy_mode_in_line = c->proxy_mode_in_line;
        f->bodies = c->bodies;
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

/* h2_rst_client resets the client stream (if still open) with `code`. */
void h2_rst_client(struct h2_relay *r, struct h2_stream *st, uint32_t code)
{
    if (st->c_closed || st->c_rst_sent || !h2_client_is_usable(r))
        return;
    st->c_rst_sent = true;
    nghttp2_submit_rst_stream(r->_cs, NGHTTP2_FLAG_NONE, st->cid, code);
}

/* h2_rst_upstream resets (or cancels, if its HEADERS are still queued) the upstream stream. */
void h2_rst_upstream(struct h2_relay *r, struct h2_stream *st, uint32_t code)
{
    if (st->uid > 0 && !st->u_closed && h2_upstream_is_usable(r))
        nghttp2_submit_rst_stream(r->_us, NGHTTP2_FLAG_NONE, st->uid, code);
    else
        st->u_closed = true;
}

/* h2_goaway_client tells the client, once, that no stream after the last processed one will be
 * served (RFC 9113 §6.8); the client session finishes when its streams have. */
void h2_goaway_client(struct h2_relay *r)
{
    if (!h2_client_is_usable(r) || r->_client_goaway_sent)
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

/* h2_stream_answer responds to the client stream with `status` and `why` (plus "\n") as a
 * text/plain body, records it in the flow, and abandons the upstream stream. */
void h2_stream_answer(struct h2_relay *r, struct h2_stream *st, int status, const char *why)
{
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = answer_read};
    struct flow *f = &st->flow;
    struct h2_answer a;

    if (st->c_closed || st->resp_head || st->c_rst_sent || !h2_client_is_usable(r))
        return;
    st->answer_len = h2_answer_init(&a, status, why, st->answer, sizeof(st->answer));
    st->answer_off = 0;
    if (nghttp2_submit_response(r->_cs, st->cid, a.nva, a.nv, &prd) != 0) {
        h2_rst_client(r, st, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    st->resp_head = true;
    st->answered = true;
    f->status = status;
    f->answered = true;
    flow_str_set(f, &f->resp_version, "HTTP/2.0", 8);
    flow_add_header(f, FLOW_RESPONSE, "content-type", 12, FLOW_ANSWER_CTYPE,
                    sizeof(FLOW_ANSWER_CTYPE) - 1);
    flow_add_header(f, FLOW_RESPONSE, "content-length", 14, a.clen, strlen(a.clen));
    if (f->t_response_first == 0)
        f->t_response_first = flow_now_ns();
    flow_set_error(f, why);
    /* nothing more goes upstream or comes back for this stream */
    h2_rst_upstream(r, st, NGHTTP2_CANCEL);
    h2_half_discard(r, st, H2_REQ);
    h2_half_discard(r, st, H2_RESP);
}

/* ---- body relay ---------------------------------------------------------------------- */

/* h2_half_read is the sink session's data source: it takes staged body bytes, opens the
 * source's window by as much (end-to-end flow control), and ends the body (with trailers)
 * once the source ended and the staging is empty. */
ssize_t h2_half_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len, uint32_t *flags,
                            nghttp2_data_source *src, void *ud)
{
    struct h2_relay *r = ud;
    struct h2_stream *st = src->ptr;
    enum h2_dir d = s == r->_us ? H2_REQ : H2_RESP;
    struct h2_half *h = &st->half[d];
    size_t n = h2_stage_read(&h->stage, &r->_opts.pool->chunks, out, len);

    if (n > 0) {
        if (d == H2_REQ && !st->c_closed && h2_client_is_usable(r)) {
            nghttp2_session_consume(r->_cs, st->cid, n);
            h2_window_taken(r, st, d, n);
        } else if (d == H2_REQ && h2_client_is_usable(r)) {
            nghttp2_session_consume_connection(r->_cs, n);
        } else if (d == H2_RESP && h2_upstream_is_usable(r)) {
            nghttp2_session_consume(r->_us, st->uid, n);
            h2_window_taken(r, st, d, n);
        }
    }
    if (h2_stage_used(&h->stage) == 0 && h->ended) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (h->has_trailers) {
            nghttp2_nv nva[H2_MAX_FIELDS];
            size_t nv = h2_fields_to_nv(h, nva);

            if (nghttp2_submit_trailer(s, id, nva, nv) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            h2_fields_clear(h);
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        h->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}


/* ---- --modify-body ------------------------------------------------------------------------ */

/* h2_held_bytes is what this worker's collected bodies hold (their buffers' capacity), at
 * most H2_HELD_BYTES_MAX: a worker is one single-threaded process, so one counter serves all
 * its connections. */
static size_t h2_held_bytes;

static void body_free(struct h2_relay *r, struct h2_body *b)
{
    if ((b->on || b->out || b->buf != NULL) && b->hdr != NULL && r->_n_bodies > 0)
        r->_n_bodies--;
    h2_held_bytes -= b->cap <= h2_held_bytes ? b->cap : h2_held_bytes;
    free(b->buf);
    free(b->hdr);
    memset(b, 0, sizeof(*b));
}

/* h2_body_hold decides whether the body of `d` is collected for --modify-body; if so it copies
 * the head (`nva`, `nv`) to send later. Returns true when the head is held. */
bool h2_body_hold(struct h2_relay *r, struct h2_stream *st, enum h2_dir d,
                         const nghttp2_nv *nva, size_t nv)
{
    struct h2_body *b = &st->body[d];
    size_t limit = replay_h2_body_limit(r, st, d), size = 0, at = 0;

    if (!(d == H2_REQ && st->replay_wait) && /* server replay keys the body (replay_h2.h) */
        (r->_opts.rules == NULL || !rules_body_wanted(r->_opts.rules, &st->flow)))
        return false;
    for (size_t i = 0; i < nv; i++) {
        size += nva[i].namelen + nva[i].valuelen;
        if (nva[i].namelen == 14 && memcmp(nva[i].name, "content-length", 14) == 0) {
            char v[24] = "";

            memcpy(v, nva[i].value, nva[i].valuelen < 23 ? nva[i].valuelen : 23);
            if (strtoull(v, NULL, 10) > limit) {
                st->flow.rules_note = rules_body_limit_note(r->_opts.rules);
                return false;
            }
        }
    }
    if (r->_n_bodies >= H2_BODIES_MAX) {
        st->flow.rules_note = "modify_body: too many bodies buffered on the connection, "
                              "passed unchanged";
        return false;
    }
    b->hdr = malloc(size + 1);
    if (b->hdr == NULL)
        return false;
    for (size_t i = 0; i < nv; i++) {
        b->nva[i] = nva[i];
        b->nva[i].name = b->hdr + at;
        memcpy(b->hdr + at, nva[i].name, nva[i].namelen);
        at += nva[i].namelen;
        b->nva[i].value = b->hdr + at;
        memcpy(b->hdr + at, nva[i].value, nva[i].valuelen);
        at += nva[i].valuelen;
    }
    b->nv = nv;
    b->on = true;
    r->_n_bodies++;
    return true;
}

/* body_read is the data source of a body sent from `buf`: those bytes first, then what was
 * staged after them (an overflowed body streams on through h2_half_read). */
static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct h2_relay *r = ud;
    struct h2_stream *st = src->ptr;
    enum h2_dir d = s == r->_us ? H2_REQ : H2_RESP;
    struct h2_body *b = &st->body[d == H2_REQ ? H2_REQ : H2_RESP];
    struct h2_half *h = &st->half[d == H2_REQ ? H2_REQ : H2_RESP];

    if (b->off < b->len) {
        size_t n = b->len - b->off < len ? b->len - b->off : len;

        memcpy(out, b->buf + b->off, n);
        b->off += n;
        if (b->off == b->len && h->ended && h2_stage_used(&h->stage) == 0 && !h->has_trailers)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    return h2_half_read(s, id, out, len, flags, src, ud);
}

/* body_send submits the held head of `d` (content-length set to `clen` unless NULL) with
 * body_read as its data source. */
static void body_send(struct h2_relay *r, struct h2_stream *st, enum h2_dir d, const char *clen)
{
    struct h2_body *b = &st->body[d];
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = body_read};
    bool empty = b->len == 0 && st->half[d].ended && h2_stage_used(&st->half[d].stage) == 0 &&
                 !st->half[d].has_trailers;
    size_t nv = b->nv;
    int32_t rv;

    if (clen != NULL) {
        size_t k = 0;

        for (size_t i = 0; i < nv; i++) /* the old length goes; the new one is added */
            if (!(b->nva[i].namelen == 14 && memcmp(b->nva[i].name, "content-length", 14) == 0))
                b->nva[k++] = b->nva[i];
        nv = k;
        if (nv < H2_MAX_FIELDS) {
            snprintf(b->clen, sizeof(b->clen), "%s", clen);
            b->nva[nv++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)b->clen, 14,
                                        strlen(b->clen), NGHTTP2_NV_FLAG_NONE};
        }
    }
    b->on = false;
    b->out = true;
    b->off = 0;
    if (d == H2_REQ) {
        rv = nghttp2_submit_request(r->_us, NULL, b->nva, nv, empty ? NULL : &prd, st);
        if (rv < 0) {
            st->u_closed = true;
            h2_stream_answer(r, st, 502, "cannot open upstream stream");
            return;
        }
        st->uid = rv;
        return;
    }
    if (st->c_closed || !h2_client_is_usable(r))
        return;
    if (nghttp2_submit_response(r->_cs, st->cid, b->nva, nv, empty ? NULL : &prd) != 0) {
        h2_rst_client(r, st, NGHTTP2_INTERNAL_ERROR);
        h2_rst_upstream(r, st, NGHTTP2_CANCEL);
        return;
    }
    st->resp_head = true;
}

void h2_body_feed(struct h2_relay *r, struct h2_stream *st, enum h2_dir d, const uint8_t *p,
                  size_t n)
{
    struct h2_body *b = &st->body[d];
    size_t limit = replay_h2_body_limit(r, st, d);

    if (b->len + n > b->cap) {
        size_t cap = b->cap == 0 ? 16384 : b->cap;
        uint8_t *g = NULL;

        while (cap < b->len + n)
            cap *= 2;
        if (cap > limit) /* doubling stops at the limit (plus the frame that crosses it) */
            cap = b->len + n > limit ? b->len + n : limit;
        if (h2_held_bytes + (cap - b->cap) <= H2_HELD_BYTES_MAX)
            g = realloc(b->buf, cap);
        if (g == NULL) { /* cannot collect (worker budget or memory) */
            if (d == H2_REQ && st->replay_wait && replay_h2_too_large(r, st)) {
                body_free(r, b); /* server replay cannot key it: never sent live unkeyed */
                return;
            }
            st->flow.rules_note = "modify_body: no room to collect (worker budget or memory), "
                                  "passed unchanged";
            body_send(r, st, d, NULL); /* stage it, send unchanged */
            (void)h2_half_stage(r, st, d, p, n);
            return;
        }
        h2_held_bytes += cap - b->cap;
        b->buf = g;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    if (b->len > limit) { /* larger than body_size_limit: it streams on untouched */
        if (d == H2_REQ && st->replay_wait && replay_h2_too_large(r, st)) {
            body_free(r, b); /* server replay: in no recording; answered as extra */
            return;
        }
        if (r->_opts.rules != NULL && rules_body_wanted(r->_opts.rules, &st->flow))
            st->flow.rules_note = rules_body_limit_note(r->_opts.rules);
        body_send(r, st, d, NULL);
    }
}

void h2_body_end(struct h2_relay *r, struct h2_stream *st, enum h2_dir d)
{
    struct h2_body *b = &st->body[d];
    uint8_t *out = NULL;
    size_t out_len = 0;
    char clen[24];

    if (!b->on)
        return;
    if (d == H2_REQ && st->replay_wait) { /* server replay: key the whole body (replay_h2.h) */
        st->replay_wait = false;
        if (replay_h2_body_end(r, st, b->buf, b->len)) {
            body_free(r, b);
            return;
        }
        if (r->_opts.rules == NULL || !rules_body_wanted(r->_opts.rules, &st->flow) ||
            b->len > rules_body_limit(r->_opts.rules)) { /* forwarded as it came */
            snprintf(clen, sizeof(clen), "%zu", b->len);
            body_send(r, st, d, clen);
            return;
        }
    }
    h2_fields_clear(&st->half[d]); /* trailers of a rewritten body are dropped */
    if (rules_body_apply(r->_opts.rules, &st->flow, b->buf, b->len, &out, &out_len) != 0) {
        st->flow.rules_note = "modify_body: rewriting failed, passed unchanged";
        snprintf(clen, sizeof(clen), "%zu", b->len);
        body_send(r, st, d, clen);
        return;
    }
    free(b->buf);
    h2_held_bytes -= b->cap <= h2_held_bytes ? b->cap : h2_held_bytes;
    h2_held_bytes += out_len;
    b->buf = out;
    b->len = b->cap = out_len;
    if (d == H2_REQ)
        st->flow.req_body_size = out_len;
    else
        st->flow.resp_body_size = out_len;
    snprintf(clen, sizeof(clen), "%zu", out_len);
    body_send(r, st, d, clen);
}

/* h2_half_kick resumes the sink's data source after bytes or the end arrived. */
void h2_half_kick(struct h2_relay *r, struct h2_stream *st, enum h2_dir d)
{
    /* d is H2_REQ or H2_RESP; spelled out, GCC 12's -Warray-bounds sees no third value (it
     * did once this function stopped being static). */
    struct h2_half *h = &st->half[d == H2_REQ ? H2_REQ : H2_RESP];

    if (!h->deferred)
        return;
    if (d == H2_REQ && (st->u_closed || !h2_upstream_is_usable(r)))
        return;
    if (d == H2_RESP && (st->c_closed || !h2_client_is_usable(r)))
        return;
    h->deferred = false;
    nghttp2_session_resume_data(sink_session(r, d), d == H2_REQ ? st->uid : st->cid);
}

/* h2_half_stage appends a received body chunk to direction `d` of `st`; the source's window
 * guarantees room. Returns 0 or -ENOSPC (a peer overran its window: nghttp2 would have caught
 * it, so never expected). */
int h2_half_stage(struct h2_relay *r, struct h2_stream *st, enum h2_dir d, const uint8_t *p,
                  size_t n)
{
    struct h2_half *h = &st->half[d == H2_REQ ? H2_REQ : H2_RESP];

    return h2_stage_append(&h->stage, &r->_opts.pool->chunks, p, n);
}
