/* h2_forward.c - forwarding header blocks of the HTTP/2 relay from one session to the other:
 * the request head (the rules: block_list, inject_fault/latency, map_local answers, map_remote,
 * header edits; server replay; a held or stalled stream's deadline) and the response head
 * (interim or final, header edits, --modify-body hold), and the flow record of both. Called
 * by h2_session.c and h2_relay.c through h2_relay_internal.h; never does I/O but a
 * map_local file's reads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "shared/target_parse.h"
#include "worker/h2_relay_internal.h"
#include "worker/replay_h2.h"
#include "worker/www_auth.h"

static void flow_fill_request(const struct h2_relay *r, struct h2_stream *st)
{
    const struct h2_half *h = &st->half[H2_REQ];
    struct flow *f = &st->flow;
    nghttp2_vec method = h2_field_find(h, ":method");
    nghttp2_vec scheme = h2_field_find(h, ":scheme");
    nghttp2_vec auth = h2_field_find(h, ":authority");
    nghttp2_vec path = h2_field_find(h, ":path");
    char url[FLOW_ARENA_SIZE];
    size_t n = 0;

    if (auth.len == 0)
        auth = h2_field_find(h, "host");
    if (r->_opts.host_rewrite != NULL) /* reverse mode: recorded as sent */
        auth = (nghttp2_vec){(uint8_t *)r->_opts.host_rewrite, strlen(r->_opts.host_rewrite)};
    else /* the line shows the target's authority (flow.h) */
        f->url_from_host = auth.len > 0;
    flow_str_set(f, &f->method, method.base, method.len);
    if (r->_opts.url_scheme != NULL)
        scheme = (nghttp2_vec){(uint8_t *)r->_opts.url_scheme, strlen(r->_opts.url_scheme)};
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

        if (nm.len > 0 && nm.base[0] != ':' &&
            (r->_opts.www_auth == NULL || /* --proxyauth: no password in the record */
             (!h2_vec_is(nm, "authorization") && !h2_vec_is(nm, "proxy-authorization"))))
            flow_add_header(f, FLOW_REQUEST, nm.base, nm.len, v.base, v.len);
    }
}

/* flow_fill_response records a final response head (pseudo-fields left out). */
static void flow_fill_response(const struct h2_relay *r, struct h2_stream *st, int status)
{
    const struct h2_half *h = &st->half[H2_RESP];
    const char *version = !r->_opts.up_serial ? "HTTP/2.0" /* the server's */
                          : st->up_http10   ? "HTTP/1.0"
                                            : "HTTP/1.1";
    struct flow *f = &st->flow;

    f->status = status;
    flow_str_set(f, &f->resp_version, version, strlen(version));
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

/* ---- forwarding heads ------------------------------------------------------------------ */

/* ---- rules (worker/rules.h) ------------------------------------------------------------ */

/* struct h2_url is a mapped URL cut into the pseudo-header values it gives. */
struct h2_url {
    struct target t;
    const char *scheme, *authority;
    size_t scheme_len, authority_len;
    char path[FLOW_ARENA_SIZE];
    size_t path_len;
};

/* h2_url_parse cuts an absolute URL into scheme, authority and path (with the query). */
static int h2_url_parse(const char *url, size_t len, struct h2_url *u)
{
    const char *why = NULL, *sep = memmem(url, len, "://", 3);
    const char *a;
    int n;

    if (sep == NULL || target_parse_request(url, len, false, &u->t, &why) != 0 ||
        u->t.form != TARGET_FORM_ABSOLUTE)
        return -EINVAL;
    u->scheme = url;
    u->scheme_len = (size_t)(sep - url);
    a = sep + 3;
    u->authority = a;
    u->authority_len = strcspn(a, "/?") < (size_t)(url + len - a) ? strcspn(a, "/?")
                                                                 : (size_t)(url + len - a);
    n = snprintf(u->path, sizeof(u->path), "%.*s%.*s", (int)u->t.path_len, u->t.path,
                 u->t.query != NULL ? (int)u->t.query_len : 0,
                 u->t.query != NULL ? u->t.query : "");
    if (n < 0 || (size_t)n >= sizeof(u->path))
        return -EINVAL;
    u->path_len = (size_t)n;
    return 0;
}

/* same_upstream: the mapped URL still goes to the connection's upstream (the request's own
 * scheme, host and port), the only one an HTTP/2 connection has. */
static bool same_upstream(const struct h2_half *h, const struct h2_url *u)
{
    nghttp2_vec scheme = h2_field_find(h, ":scheme"), auth = h2_field_find(h, ":authority");
    char old[TARGET_HOST_MAX + 32];
    struct h2_url o;
    int n;

    if (auth.len == 0)
        auth = h2_field_find(h, "host");
    n = snprintf(old, sizeof(old), "%.*s://%.*s/", (int)scheme.len, (const char *)scheme.base,
                 (int)auth.len, (const char *)auth.base);
    if (n < 0 || (size_t)n >= sizeof(old) || h2_url_parse(old, (size_t)n, &o) != 0)
        return false;
    return o.t.tls == u->t.tls && o.t.port == u->t.port && o.t.host_len == u->t.host_len &&
           strncasecmp(o.t.host, u->t.host, o.t.host_len) == 0;
}

/* edits_to_nv filters `nva` (n fields) through the verdict's header edits and appends the
 * edits with a value (lower-case names, HTTP/2). Returns the new count. */
static size_t edits_to_nv(const struct rules_verdict *v, nghttp2_nv *nva, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        if (nva[i].namelen == 0 || nva[i].name[0] == ':' ||
            !rules_verdict_drops(v, (const char *)nva[i].name, nva[i].namelen))
            nva[k++] = nva[i];
    for (int i = 0; i < v->n_edits && k < H2_MAX_FIELDS; i++) {
        const struct rules_header *e = v->edits[i];

        if (e->value_len == 0)
            continue;
        nva[k++] = (nghttp2_nv){(uint8_t *)e->lname, (uint8_t *)e->value, e->name_len,
                                e->value_len, NGHTTP2_NV_FLAG_NONE};
    }
    return k;
}

/* local_read is the data source of a map_local answer: the file, read as the client's window
 * allows (one pread per DATA frame). */
static ssize_t local_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len,
                          uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct h2_stream *st = src->ptr;
    ssize_t n = maplocal_read(&st->ml, out, len);

    (void)s, (void)id, (void)ud;
    if (n < 0) {
        flow_set_error(&st->flow, "map_local: reading the file failed");
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    }
    st->flow.resp_body_size += (uint64_t)n;
    if (st->ml.left == 0) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        maplocal_answer_close(&st->ml);
    }
    return n;
}

/* answer_local answers the stream from --map-local (worker/maplocal.h). */
static void answer_local(struct h2_relay *r, struct h2_stream *st)
{
    struct h2_half *h = &st->half[H2_REQ];
    nghttp2_vec range = h2_field_find(h, "range"), method = h2_field_find(h, ":method");
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = local_read};
    struct maplocal_answer *a = &st->ml;
    struct flow *f = &st->flow;
    char sbuf[8], lbuf[24];
    nghttp2_nv nva[6];
    size_t nv = 0;

    rules_map_local(r->_opts.rules, &st->verdict, f, (const char *)range.base, range.len,
                    h2_vec_is(method, "HEAD"), a);
    h2_fields_clear(h);
    if (a->status == 403 || a->status == 404) {
        h2_stream_answer(r, st, a->status, a->why);
        return;
    }
    snprintf(sbuf, sizeof(sbuf), "%03d", a->status);
    snprintf(lbuf, sizeof(lbuf), "%llu", (unsigned long long)a->length);
#define NV(n, v, vl) (nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), strlen(n), (vl), NGHTTP2_NV_FLAG_NONE}
    nva[nv++] = NV(":status", sbuf, 3);
    nva[nv++] = NV("content-length", lbuf, strlen(lbuf));
    nva[nv++] = NV("accept-ranges", "bytes", 5);
    nva[nv++] = NV("server", "mitmd", 5);
    if (a->ctype != NULL)
        nva[nv++] = NV("content-type", a->ctype, strlen(a->ctype));
    if (a->content_range[0] != '\0')
        nva[nv++] = NV("content-range", a->content_range, strlen(a->content_range));
#undef NV
    if (nghttp2_submit_response(r->_cs, st->cid, nva, nv, a->fd >= 0 ? &prd : NULL) != 0) {
        maplocal_answer_close(a);
        h2_rst_client(r, st, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    st->resp_head = st->answered = st->local = true;
    f->status = a->status;
    flow_str_set(f, &f->resp_version, "HTTP/2.0", 8);
    for (size_t i = 1; i < nv; i++)
        flow_add_header(f, FLOW_RESPONSE, nva[i].name, nva[i].namelen, nva[i].value,
                        nva[i].valuelen);
    if (f->t_response_first == 0)
        f->t_response_first = flow_now_ns();
    if (a->status == 416)
        flow_set_error(f, a->why);
    h2_rst_upstream(r, st, NGHTTP2_CANCEL);
    h2_half_discard(r, st, H2_REQ);
}

/* apply_request_rules runs the rules on the recorded request head of `st`. Returns true when
 * the stream was answered, reset or held instead of going upstream now. */
static bool apply_request_rules(struct h2_relay *r, struct h2_stream *st)
{
    struct h2_half *h = &st->half[H2_REQ];
    struct rules_verdict *v = &st->verdict;
    uint64_t now = flow_now_ns();

    (void)rules_on_request_head(r->_opts.rules, &st->flow, r->_opts.rng, v);
    if (v->block_status == 444 || v->fault == RULES_FAULT_RESET) {
        h2_fields_clear(h);
        flow_set_error(&st->flow, v->block_status == 444 ? "closed by block_list (444)"
                                                         : "stream reset by inject_fault");
        st->u_closed = true;
        h2_rst_client(r, st, NGHTTP2_INTERNAL_ERROR);
        h2_half_discard(r, st, H2_REQ);
        return true;
    }
    if (v->block_status != 0 || v->fault == RULES_FAULT_STATUS) {
        h2_fields_clear(h);
        h2_stream_answer(r, st, v->block_status != 0 ? v->block_status : v->fault_status,
                         v->block_status != 0 ? "blocked by block_list" : v->fault_why);
        return true;
    }
    if (v->map_local > 0) {
        answer_local(r, st);
        return true;
    }
    if (v->fault == RULES_FAULT_STALL) {
        st->stall = true;
        st->due = now + (uint64_t)r->_opts.stall_ms * 1000000ull;
        r->_n_timed++;
    }
    if (v->delay_ms > 0) {
        st->held = true;
        st->due = now + (uint64_t)v->delay_ms * 1000000ull;
        if (!st->stall)
            r->_n_timed++;
        return true;
    }
    return false;
}

/* submit_request sends the request head of `st` upstream (header edits and map_remote from
 * its verdict), with the staged body as data source unless the request ended with its head. */
static void submit_request(struct h2_relay *r, struct h2_stream *st)
{
    struct h2_half *h = &st->half[H2_REQ];
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = h2_half_read};
    const struct rules_verdict *v = &st->verdict;
    bool end_stream = h->ended && h2_stage_used(&h->stage) == 0 && !h->has_trailers;
    nghttp2_nv nva[H2_MAX_FIELDS];
    struct h2_url u;
    size_t nv;
    int32_t id;

    if (r->_up_failed || r->_up_dead) {
        h2_fields_clear(h);
        h2_stream_answer(r, st, 502, r->_why[0] != '\0' ? r->_why : "upstream connection closed");
        return;
    }
    if (r->_up_goaway) {
        /* the upstream takes no new stream: the client may safely retry (RFC 9113 §8.7) */
        h2_fields_clear(h);
        flow_set_error(&st->flow, "upstream sent GOAWAY: stream refused");
        r->_stats.streams_refused++;
        st->u_closed = true;
        h2_rst_client(r, st, NGHTTP2_REFUSED_STREAM);
        return;
    }
    nv = h2_fields_to_nv(h, nva);
    for (size_t i = 0; r->_opts.www_auth != NULL && i < nv; i++) /* mitmd's, not the server's */
        if (h2_vec_is((nghttp2_vec){nva[i].name, nva[i].namelen}, "authorization"))
            nva[i--] = nva[--nv];
    if (r->_opts.host_rewrite != NULL) { /* reverse mode: the server's name (keep_host_header
                                          * keeps the client's: host_rewrite is NULL then) */
        for (size_t i = 0; i < nv; i++) {
            nghttp2_vec nm = {nva[i].name, nva[i].namelen};

            if (h2_vec_is(nm, ":authority") || h2_vec_is(nm, "host")) {
                nva[i].value = (uint8_t *)r->_opts.host_rewrite;
                nva[i].valuelen = strlen(r->_opts.host_rewrite);
            }
        }
    }
    if (r->_opts.rules != NULL && v->url_changed) {
        const struct flow *f = &st->flow;

        if (h2_url_parse(flow_str_ptr(f, f->url), f->url.len, &u) != 0) {
            h2_fields_clear(h);
            h2_stream_answer(r, st, 502, "map_remote made an invalid URL");
            return;
        }
        if (!same_upstream(h, &u)) {
            h2_fields_clear(h);
            h2_stream_answer(r, st, 502,
                             "map_remote to another host over HTTP/2 is not supported (one "
                             "upstream connection per client connection): use HTTP/1.1");
            return;
        }
        for (size_t i = 0; i < nv; i++) {
            nghttp2_vec nm = {nva[i].name, nva[i].namelen};

            if (h2_vec_is(nm, ":scheme"))
                nva[i].value = (uint8_t *)u.scheme, nva[i].valuelen = u.scheme_len;
            else if (h2_vec_is(nm, ":authority") || h2_vec_is(nm, "host"))
                nva[i].value = (uint8_t *)u.authority, nva[i].valuelen = u.authority_len;
            else if (h2_vec_is(nm, ":path"))
                nva[i].value = (uint8_t *)u.path, nva[i].valuelen = u.path_len;
        }
    }
    if (r->_opts.rules != NULL && v->n_edits > 0)
        nv = edits_to_nv(v, nva, nv);
    if (!end_stream && st->replay_wait && !h2_body_hold(r, st, H2_REQ, nva, nv)) {
        /* server replay must see the whole body before it decides, and this connection
         * holds as many bodies as it may (H2_BODIES_MAX): refused before anything was
         * processed, so the client may retry it (RFC 9113 §8.7) - never sent live */
        h2_fields_clear(h);
        st->replay_wait = false;
        flow_set_error(&st->flow, "server replay: too many request bodies held on the "
                                  "connection, stream refused");
        r->_stats.streams_refused++;
        st->u_closed = true;
        h2_rst_client(r, st, NGHTTP2_REFUSED_STREAM);
        return;
    }
    if (!end_stream && (st->body[H2_REQ].on || h2_body_hold(r, st, H2_REQ, nva, nv))) {
        /* --modify-body, or server replay (held above) */
        h2_fields_clear(h);
        const uint8_t *p;
        size_t n;

        /* staged while held by inject_latency */
        while (st->body[H2_REQ].on && (n = h2_stage_peek(&h->stage, &p)) > 0) {
            h2_body_feed(r, st, H2_REQ, p, n);
            h2_stage_consume(&h->stage, &r->_opts.pool->chunks, n);
            if (h2_client_is_usable(r))
                nghttp2_session_consume(r->_cs, st->cid, n);
        }
        if (h->ended)
            h2_body_end(r, st, H2_REQ);
        return;
    }
    id = nghttp2_submit_request(r->_us, NULL, nva, nv, end_stream ? NULL : &prd, st);
    h2_fields_clear(h);
    if (id < 0) {
        char why[FLOW_ERROR_MAX];

        snprintf(why, sizeof(why), "cannot open upstream stream: %s", nghttp2_strerror(id));
        st->u_closed = true;
        h2_stream_answer(r, st, 502, why);
        return;
    }
    st->uid = id;
}

/* forward_after_rules answers `st` from the server replay recording when it matches, else
 * sends it upstream: the last steps of a request, after the rules (and after a hold by
 * inject_latency), in HTTP/1.1's order (h1_req.c). */
static void forward_after_rules(struct h2_relay *r, struct h2_stream *st)
{
    const struct h2_half *h = &st->half[H2_REQ];
    bool body_done = h->ended && h2_stage_used(&h->stage) == 0 && !h->has_trailers;

    if (r->_opts.replay != NULL && replay_h2_request(r, st, body_done))
        return; /* answered from the server replay recording (worker/replay_h2.c) */
    submit_request(r, st);
}

void h2_stream_due(struct h2_relay *r, struct h2_stream *st, uint64_t now)
{
    if (st->due == 0 || now < st->due)
        return;
    if (st->held) {
        st->held = false;
        st->due = 0;
        if (st->stall) /* its stall runs from when the request goes */
            st->due = now + (uint64_t)r->_opts.stall_ms * 1000000ull;
        else if (r->_n_timed > 0)
            r->_n_timed--;
        if (!st->c_closed)
            forward_after_rules(r, st);
        return;
    }
    if (st->stall) {
        st->stall = false;
        st->due = 0;
        if (r->_n_timed > 0)
            r->_n_timed--;
        h2_half_discard(r, st, H2_RESP);
        h2_fields_clear(&st->half[H2_RESP]);
        h2_stream_answer(r, st, 504, "response held by inject_fault stall until the idle timeout");
    }
}

/* ---- forwarding heads ------------------------------------------------------------------ */

void h2_forward_request(struct h2_relay *r, struct h2_stream *st, bool end_stream)
{
    struct h2_half *h = &st->half[H2_REQ];
    nghttp2_vec method;

    flow_fill_request(r, st);
    h->ended = h->ended || end_stream;
    method = h2_field_find(h, ":method");
    if (h->fields_over) {
        h2_fields_clear(h);
        h2_stream_answer(r, st, 431, "request header fields too large");
        return;
    }
    /* --proxyauth (reverse, transparent) first: a replayed answer is the server's as much as
     * a forwarded one, and HTTP/1.1 checks it before replay too (h1_req.c) */
    if (r->_opts.www_auth != NULL && !www_auth_h2_passes(r, st))
        return; /* answered 401 */
    if (h2_vec_is(method, "CONNECT")) {
        /* RFC 9113 §8.5 tunnels (and RFC 8441 extended CONNECT, which we never enable in
         * SETTINGS, so clients fall back to HTTP/1.1 for WebSockets) are not relayed */
        h2_fields_clear(h);
        h2_stream_answer(r, st, 501, "mitmd: CONNECT over HTTP/2 is not supported");
        return;
    }
    /* the rules (block_list, map_local, faults, a latency hold) before server replay, as
     * over HTTP/1.1: a blocked request is blocked whether or not it was recorded */
    if (r->_opts.rules != NULL && !r->_up_failed && !r->_up_dead &&
        apply_request_rules(r, st))
        return;
    forward_after_rules(r, st);
}

void h2_forward_response_head(struct h2_relay *r, struct h2_stream *st, bool end_stream)
{
    struct h2_half *h = &st->half[H2_RESP];
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = h2_half_read};
    nghttp2_nv nva[H2_MAX_FIELDS];
    int status = parse_status(h2_field_find(h, ":status"));
    size_t nv;
    int rv;

    if (st->c_closed || !h2_client_is_usable(r)) {
        h2_fields_clear(h);
        return;
    }
    if (h->fields_over) {
        h2_fields_clear(h);
        h2_stream_answer(r, st, 502, "upstream response header fields too large");
        return;
    }
    nv = h2_fields_to_nv(h, nva);
    if (status >= 100 && status < 200) {
        /* interim response (e.g. 103 Early Hints, 100 Continue): relayed as is */
        rv = nghttp2_submit_headers(r->_cs, NGHTTP2_FLAG_NONE, st->cid, NULL, nva, nv, NULL);
        h2_fields_clear(h);
        if (rv != 0)
            h2_rst_client(r, st, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    flow_fill_response(r, st, status);
    h->ended = end_stream;
    if (st->stall) { /* inject_fault stall: the response is dropped, the client waits */
        h2_fields_clear(h);
        return;
    }
    if (r->_opts.rules != NULL) { /* --modify-headers on the response */
        struct rules_verdict *v = &st->verdict;

        rules_on_response_head(r->_opts.rules, &st->flow, v);
        if (v->n_edits > 0)
            nv = edits_to_nv(v, nva, nv);
        if (!end_stream && h2_body_hold(r, st, H2_RESP, nva, nv)) { /* --modify-body */
            h2_fields_clear(h);
            return;
        }
    }
    rv = nghttp2_submit_response(r->_cs, st->cid, nva, nv, end_stream ? NULL : &prd);
    h2_fields_clear(h);
    if (rv != 0) {
        h2_stream_error(st, "cannot relay response", NGHTTP2_INTERNAL_ERROR);
        h2_rst_client(r, st, NGHTTP2_INTERNAL_ERROR);
        h2_rst_upstream(r, st, NGHTTP2_CANCEL);
        return;
    }
    st->resp_head = true;
}
