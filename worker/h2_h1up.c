/* h2_h1up.c - see h2_h1up.h. One exchange at a time: the request head is serialised from the
 * HTTP/2 fields (RFC 9113 §8.3.1: :authority -> Host, cookies joined, §8.2.2 connection-specific
 * fields dropped), the body written as it arrives (Content-Length when the client gave one, else
 * chunked), the response head parsed with shared/h1_parse and submitted as an HTTP/2 response
 * (hop-by-hop fields dropped, names lower-cased, RFC 9113 §8.2.2), its body read from up_in by
 * the data source as the relay's windows allow (chunked framing removed). */
#include "worker/h2_h1up.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "shared/h1_parse.h"
#include "worker/h1_head.h"
#include "worker/h2_answer.h"
#include "worker/h2_relay_internal.h"

#define H2_H1UP_ROUNDS 32       /* per h2_h1up_pump call */
#define H2_H1UP_RECV_CHUNK 16384
#define H2_H1UP_METHOD_MAX 32
#define H2_H1UP_AUTH_MAX 1024
#define H2_H1UP_MAX_NV 128

enum h2_h1up_resp {
    H2_H1UP_RESP_NONE = 0, /* no exchange */
    H2_H1UP_RESP_HEAD,     /* waiting for the response head */
    H2_H1UP_RESP_BODY,     /* the head was submitted; the body is read by the data source */
    H2_H1UP_RESP_DONE,     /* the whole response was read from up_in (or answered by us) */
};

struct h2_h1up {
    nghttp2_session *ss; /* server session toward the relay */
    struct buf to_relay, from_relay;
    struct buf *up_in, *up_out;
    const uint8_t *pend; /* serialised by nghttp2, not yet in to_relay */
    size_t pend_len;
    size_t hmax;
    struct buf hout;   /* request head not yet in up_out */
    struct buf cookie; /* cookie fields of the head being received, joined with "; " */
    struct buf stage;  /* request body received, not yet in up_out */

    /* the exchange in progress */
    int32_t id;          /* bridge stream id, 0 = none */
    bool line_done;      /* request line (and Host) written to hout */
    bool host_written;
    bool has_cl;         /* the request has content-length */
    bool head_over;      /* the head does not fit hout: answered 431 */
    bool head_done;      /* the whole head is in hout */
    bool req_chunked;    /* body sent chunked */
    bool req_ended;      /* END_STREAM received from the relay */
    bool req_written;    /* the whole request is in up_out */
    bool wrote_any;      /* some request byte went to up_out */
    bool answered;       /* the response is ours (431/502): the request body is dropped */
    bool resp_deferred;  /* the data source waits for up_in */
    bool keep_alive;     /* the server keeps the connection after this response */
    enum h2_h1up_resp resp;
    enum h1_body body;
    uint64_t remaining;  /* H1_BODY_LENGTH bytes left */
    struct h1_chunk_decoder dec;
    char method[H2_H1UP_METHOD_MAX];
    size_t method_len;
    char path[H1_REQUEST_LINE_MAX];
    size_t path_len;
    char auth[H2_H1UP_AUTH_MAX];
    size_t auth_len;
    char answer[H2_RELAY_REASON_MAX + 1]; /* the body of our answer, as the relay's */
    size_t answer_len, answer_off;

    bool up_eof;      /* the server's side ended */
    bool conn_gone;   /* the server connection takes no more exchanges */
    bool up_dead;     /* and there will be no other: new streams are refused (GOAWAY) */
    bool redial;      /* the caller dials a new server connection when one is wanted */
    h2_h1up_note_fn *on_note;
    void *on_note_arg;
    h2_h1up_head_fn *on_head;
    void *on_head_arg;
    bool goaway_sent;
    bool failed;      /* the session failed: nothing more is done */
    uint64_t exchanges;
    uint64_t redials; /* new server connections after the first */
    char why[H2_H1UP_REASON_MAX];
    struct h1_header hdrs[H1_MAX_HEADERS];
    uint8_t mem[]; /* to_relay, from_relay, hout, cookie, stage */
};

/* ---- small helpers ----------------------------------------------------------------------- */

/* put appends all `n` bytes of `p` to `b`, or nothing. Returns false when they do not fit.
 * The free space before the unread bytes counts: buf_room compacts only a buffer full to its
 * end, and the request body staging is sized to the window, not to the window plus what was
 * already moved out of it. */
static bool put(struct buf *b, const void *p, size_t n)
{
    if (buf_room(b) < n)
        buf_compact(b);
    if (buf_room(b) < n)
        return false;
    buf_append(b, p, n);
    return true;
}

static bool put_str(struct buf *b, const char *s)
{
    return put(b, s, strlen(s));
}

/* mark_dead records that the server connection takes no more exchanges, with `why`: the next
 * stream gets a new one (h2_h1up_set_redial), else no stream is taken any more. */
static void mark_dead(struct h2_h1up *b, const char *why)
{
    if (!b->conn_gone && b->why[0] == '\0')
        snprintf(b->why, sizeof(b->why), "%s", why);
    b->conn_gone = true;
    if (!b->redial)
        b->up_dead = true;
}

static void exchange_reset(struct h2_h1up *b)
{
    b->id = 0;
    b->line_done = b->host_written = b->has_cl = false;
    b->head_over = b->head_done = b->req_chunked = b->req_ended = b->req_written = false;
    b->wrote_any = b->answered = b->resp_deferred = false;
    b->keep_alive = false;
    b->resp = H2_H1UP_RESP_NONE;
    b->body = H1_BODY_NONE;
    b->remaining = 0;
    b->method_len = b->path_len = b->auth_len = 0;
    b->answer_len = b->answer_off = 0;
    buf_consume(&b->hout, buf_used(&b->hout));
    buf_consume(&b->cookie, buf_used(&b->cookie));
}

/* ---- answers of our own ------------------------------------------------------------------ */

/* note tells the relay why the current stream is answered by us or reset. */
static void note(struct h2_h1up *b, bool answered, const char *why)
{
    if (b->on_note != NULL && b->id != 0)
        b->on_note(b->on_note_arg, b->id, answered, why);
}

static ssize_t answer_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct h2_h1up *b = ud;
    size_t n = b->answer_len - b->answer_off;

    (void)s, (void)id, (void)src;
    if (n > len)
        n = len;
    memcpy(out, b->answer + b->answer_off, n);
    b->answer_off += n;
    if (b->answer_off == b->answer_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* answer responds to the current stream with `status` and `why` as mitmd's own answers over
 * HTTP/2 are (worker/h2_answer.h), unless a response head already went: then the stream is
 * reset. */
static void answer(struct h2_h1up *b, int status, const char *why)
{
    nghttp2_data_provider prd = {.source = {.ptr = b}, .read_callback = answer_read};
    struct h2_answer a;

    if (b->id == 0)
        return;
    if (b->resp == H2_H1UP_RESP_BODY || b->resp == H2_H1UP_RESP_DONE) {
        note(b, false, why);
        nghttp2_submit_rst_stream(b->ss, NGHTTP2_FLAG_NONE, b->id, NGHTTP2_INTERNAL_ERROR);
        b->resp = H2_H1UP_RESP_DONE;
        return;
    }
    note(b, true, why);
    b->answer_len = h2_answer_init(&a, status, why, b->answer, sizeof(b->answer));
    b->answer_off = 0;
    b->answered = true;
    b->resp = H2_H1UP_RESP_DONE;
    buf_consume(&b->hout, buf_used(&b->hout));
    if (nghttp2_submit_response(b->ss, b->id, a.nva, a.nv, &prd) != 0)
        nghttp2_submit_rst_stream(b->ss, NGHTTP2_FLAG_NONE, b->id, NGHTTP2_INTERNAL_ERROR);
}

/* ---- request head ------------------------------------------------------------------------ */

/* write_line puts the request line and Host (from :authority) into hout. */
static void write_line(struct h2_h1up *b)
{
    struct buf *h = &b->hout;

    b->line_done = true;
    if (b->method_len == 0 || b->path_len == 0) {
        b->head_over = true; /* nghttp2 checks the pseudo-fields: never expected */
        return;
    }
    if (!put(h, b->method, b->method_len) || !put(h, " ", 1) || !put(h, b->path, b->path_len) ||
        !put_str(h, " HTTP/1.1\r\n"))
        b->head_over = true;
    if (b->auth_len > 0) {
        b->host_written = true;
        if (!put_str(h, "Host: ") || !put(h, b->auth, b->auth_len) || !put_str(h, "\r\n"))
            b->head_over = true;
    }
}

/* copy_pseudo keeps a pseudo-field value in `dst` (`cap` bytes). */
static void copy_pseudo(struct h2_h1up *b, char *dst, size_t cap, size_t *len, nghttp2_vec v)
{
    if (v.len > cap) {
        b->head_over = true;
        return;
    }
    memcpy(dst, v.base, v.len);
    *len = v.len;
}

/* is_connection_specific: RFC 9113 §8.2.2 fields, which HTTP/1.1 hop-by-hop rules cover. */
static bool is_connection_specific(nghttp2_vec nm)
{
    return h1_header_is_hop_by_hop((const char *)nm.base, nm.len);
}

static void on_request_field(struct h2_h1up *b, nghttp2_vec nm, nghttp2_vec v)
{
    struct buf *h = &b->hout;

    if (nm.len > 0 && nm.base[0] == ':') {
        if (h2_vec_is(nm, ":method"))
            copy_pseudo(b, b->method, sizeof(b->method), &b->method_len, v);
        else if (h2_vec_is(nm, ":path"))
            copy_pseudo(b, b->path, sizeof(b->path), &b->path_len, v);
        else if (h2_vec_is(nm, ":authority"))
            copy_pseudo(b, b->auth, sizeof(b->auth), &b->auth_len, v);
        return; /* :scheme: the connection's; :protocol is never enabled */
    }
    if (!b->line_done)
        write_line(b);
    if (is_connection_specific(nm))
        return;
    if (h2_vec_is(nm, "host")) {
        if (b->host_written)
            return;
        b->host_written = true;
    } else if (h2_vec_is(nm, "cookie")) { /* RFC 9113 §8.2.3: one field for HTTP/1.1 */
        if ((buf_used(&b->cookie) > 0 && !put_str(&b->cookie, "; ")) ||
            !put(&b->cookie, v.base, v.len))
            b->head_over = true;
        return;
    } else if (h2_vec_is(nm, "content-length")) {
        b->has_cl = true;
    }
    if (!put(h, nm.base, nm.len) || !put_str(h, ": ") || !put(h, v.base, v.len) ||
        !put_str(h, "\r\n"))
        b->head_over = true;
}

/* finish_head ends the request head in hout with the cookies and the body's framing. */
static void finish_head(struct h2_h1up *b, bool end_stream)
{
    struct buf *h = &b->hout;
    bool wants_body_field = h1_method_is(b->method, b->method_len, "POST") ||
                            h1_method_is(b->method, b->method_len, "PUT") ||
                            h1_method_is(b->method, b->method_len, "PATCH");

    if (!b->line_done)
        write_line(b);
    b->req_ended = end_stream;
    if (buf_used(&b->cookie) > 0 &&
        (!put_str(h, "Cookie: ") || !put(h, buf_head(&b->cookie), buf_used(&b->cookie)) ||
         !put_str(h, "\r\n")))
        b->head_over = true;
    if (end_stream) {
        if (!b->has_cl && wants_body_field && !put_str(h, "Content-Length: 0\r\n"))
            b->head_over = true;
    } else if (!b->has_cl) {
        b->req_chunked = true;
        if (!put_str(h, "Transfer-Encoding: chunked\r\n"))
            b->head_over = true;
    }
    if (!put_str(h, "\r\n"))
        b->head_over = true;
    b->head_done = true;
    b->resp = H2_H1UP_RESP_HEAD;
    if (b->head_over) {
        answer(b, 431, "request header fields too large for the HTTP/1.1 server");
        return;
    }
    if (b->up_dead) {
        answer(b, 502, b->why[0] != '\0' ? b->why : "upstream connection closed");
        return;
    }
    b->exchanges++;
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct h2_h1up *b = ud;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (b->id != 0 || b->up_dead || b->goaway_sent) {
        /* the relay's session honours MAX_CONCURRENT_STREAMS 1: never expected */
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    exchange_reset(b);
    b->id = frame->hd.stream_id;
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
    struct h2_h1up *b = ud;

    (void)s, (void)flags;
    if (frame->hd.stream_id != b->id || frame->headers.cat != NGHTTP2_HCAT_REQUEST ||
        b->head_over)
        return 0; /* trailers are dropped (the body is chunked without them) */
    on_request_field(b, nghttp2_rcbuf_get_buf(name), nghttp2_rcbuf_get_buf(value));
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct h2_h1up *b = ud;
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    (void)s;
    if (frame->hd.stream_id == 0 || frame->hd.stream_id != b->id)
        return 0;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            finish_head(b, end);
        else if (end)
            b->req_ended = true;
        return 0;
    case NGHTTP2_DATA:
        if (end)
            b->req_ended = true;
        return 0;
    default:
        return 0;
    }
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    struct h2_h1up *b = ud;

    (void)flags;
    if (id != b->id || b->answered || b->up_dead) {
        nghttp2_session_consume(s, id, len);
        return 0;
    }
    if (!put(&b->stage, data, len)) { /* the window forbids it: never expected */
        nghttp2_session_consume(s, id, len);
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR);
    }
    return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct h2_h1up *b = ud;

    if (frame->hd.stream_id == 0 || frame->hd.stream_id != b->id ||
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0 ||
        (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA))
        return 0;
    /* RFC 9113 §8.1: a complete response ends the exchange; the rest of the request is not
     * wanted */
    if (!b->req_ended)
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, b->id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct h2_h1up *b = ud;
    size_t staged;

    (void)code;
    if (id != b->id)
        return 0;
    /* a message cut off on the HTTP/1.1 connection leaves it unusable (its framing is lost) */
    if (b->wrote_any && (!b->req_written || b->resp != H2_H1UP_RESP_DONE))
        mark_dead(b, "the previous exchange on the HTTP/1.1 upstream connection was cut short");
    else if (b->wrote_any && !b->keep_alive)
        mark_dead(b, "the HTTP/1.1 upstream closes the connection after a response");
    staged = buf_used(&b->stage);
    buf_consume(&b->stage, staged);
    if (staged > 0)
        nghttp2_session_consume_connection(s, staged);
    exchange_reset(b);
    return 0;
}

/* ---- moving the request to the server ---------------------------------------------------- */

/* move_request writes hout, then the staged body (chunked or as is), then the last chunk, to
 * up_out as far as room allows. Returns whether anything moved. */
static bool move_request(struct h2_h1up *b)
{
    struct buf *out = b->up_out;
    bool moved = false;
    size_t n;

    if (b->id == 0 || !b->head_done || b->answered || b->up_dead || b->req_written ||
        (b->conn_gone && !b->wrote_any)) /* a new exchange waits for a new connection */
        return false;
    if (buf_used(&b->hout) > 0) {
        n = buf_append(out, buf_head(&b->hout), buf_used(&b->hout));
        buf_consume(&b->hout, n);
        if (n > 0)
            moved = b->wrote_any = true;
        if (buf_used(&b->hout) > 0)
            return moved;
    }
    while (buf_used(&b->stage) > 0) {
        size_t room = buf_room(out), k = buf_used(&b->stage);
        char line[24];
        int ll = 0;

        if (b->req_chunked) {
            if (room <= 16)
                break;
            if (k > room - 16)
                k = room - 16;
            ll = snprintf(line, sizeof(line), "%zx\r\n", k);
            buf_append(out, line, (size_t)ll);
        } else if (k > room) {
            k = room;
        }
        if (k == 0)
            break;
        buf_append(out, buf_head(&b->stage), k);
        if (b->req_chunked)
            buf_append(out, "\r\n", 2);
        buf_consume(&b->stage, k);
        nghttp2_session_consume(b->ss, b->id, k);
        moved = true;
    }
    if (b->req_ended && buf_used(&b->stage) == 0) {
        if (!b->req_chunked || put_str(out, "0\r\n\r\n")) {
            b->req_written = true;
            moved = true;
        }
    }
    return moved;
}

/* ---- the response ------------------------------------------------------------------------ */

/* resp_complete notes that the whole response was read from up_in. */
static void resp_complete(struct h2_h1up *b)
{
    b->resp = H2_H1UP_RESP_DONE;
    if (buf_used(b->up_in) > 0) /* bytes after the response: the framing is lost */
        mark_dead(b, "upstream sent bytes after its response");
}

static ssize_t resp_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct h2_h1up *b = ud;
    struct buf *in = b->up_in;
    size_t got = 0;

    (void)s, (void)src;
    if (id != b->id || b->resp != H2_H1UP_RESP_BODY)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    switch (b->body) {
    case H1_BODY_LENGTH:
        got = buf_used(in);
        if (got > len)
            got = len;
        if (got > b->remaining)
            got = (size_t)b->remaining;
        memcpy(out, buf_head(in), got);
        buf_consume(in, got);
        b->remaining -= got;
        if (b->remaining == 0) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            resp_complete(b);
        }
        break;
    case H1_BODY_CHUNKED:
        while (got < len && buf_used(in) > 0 && !h1_chunk_decoder_is_done(&b->dec)) {
            size_t avail = buf_used(in), off = 0, dl = 0;
            const char *why = NULL;
            ssize_t k;

            if (avail > len - got)
                avail = len - got; /* a data run never exceeds what `out` still takes */
            k = h1_chunk_decode(&b->dec, buf_head(in), avail, &off, &dl, &why);
            if (k < 0) {
                mark_dead(b, why != NULL ? why : "invalid chunked response body");
                note(b, false, "invalid chunked response body from upstream");
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM(INTERNAL_ERROR) */
            }
            memcpy(out + got, buf_head(in) + off, dl);
            got += dl;
            buf_consume(in, (size_t)k);
            if (k == 0)
                break;
        }
        if (h1_chunk_decoder_is_done(&b->dec)) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            resp_complete(b);
        }
        break;
    case H1_BODY_CLOSE:
        got = buf_used(in);
        if (got > len)
            got = len;
        memcpy(out, buf_head(in), got);
        buf_consume(in, got);
        if (buf_used(in) == 0 && b->up_eof) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            resp_complete(b);
        }
        break;
    default:
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (got == 0 && (*flags & NGHTTP2_DATA_FLAG_EOF) == 0) {
        if (b->up_eof) {
            mark_dead(b, "upstream closed the connection in the middle of the response body");
            note(b, false, "upstream closed the connection in the middle of the response body");
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        b->resp_deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)got;
}

/* resp_to_nv lists the fields of `resp` for nghttp2 after `nva[0]` (:status), lower-casing
 * the names in up_in where they lie and leaving out connection-specific fields (RFC 9113
 * §8.2.2: the hop-by-hop ones, Transfer-Encoding included, and those the Connection field
 * names). Repeated Content-Length fields (h1_parse accepts them only with equal values, as
 * RFC 9110 §8.6 allows) become one: an HTTP/2 peer treats a second one as a malformed
 * response. Returns the count including :status. */
static size_t resp_to_nv(struct h1_response *resp, nghttp2_nv *nva, const char *status,
                         enum h1_body body)
{
    size_t nv = 0;
    bool cl_sent = false;

    nva[nv++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < resp->num_headers && nv < H2_H1UP_MAX_NV; i++) {
        struct h1_header *h = &resp->headers[i];
        char *name = (char *)h->name; /* in up_in, which the bridge owns until consumed */

        if (h->name_len == 0 || h1_header_is_hop_by_hop(h->name, h->name_len) ||
            !h1_head_field_is_forwarded(resp->headers, resp->num_headers, h, false))
            continue;
        if (h1_header_name_is(h, "content-length")) {
            if (cl_sent || body == H1_BODY_CHUNKED || resp->status == 204 || resp->status < 200)
                continue;
            cl_sent = true;
        }
        for (size_t k = 0; k < h->name_len; k++)
            if (name[k] >= 'A' && name[k] <= 'Z')
                name[k] = (char)(name[k] - 'A' + 'a');
        nva[nv++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)h->value, h->name_len, h->value_len,
                                 NGHTTP2_NV_FLAG_NONE};
    }
    return nv;
}

/* parse_response reads response heads from up_in: interim ones are relayed, the final one
 * submitted with the body as data source. Returns whether anything moved. */
static bool parse_response(struct h2_h1up *b)
{
    nghttp2_data_provider prd = {.source = {.ptr = b}, .read_callback = resp_read};
    nghttp2_nv nva[H2_H1UP_MAX_NV];
    struct h1_response resp;
    char status[4];
    const char *why = NULL;
    bool moved = false;

    while (b->resp == H2_H1UP_RESP_HEAD && buf_used(b->up_in) > 0) {
        ssize_t n = h1_parse_response(buf_head(b->up_in), buf_used(b->up_in), b->hmax, &resp,
                                      b->hdrs, H1_MAX_HEADERS, &why);
        size_t nv;
        char msg[H2_H1UP_REASON_MAX];

        if (n == -EAGAIN)
            break;
        moved = true;
        if (n < 0) {
            snprintf(msg, sizeof(msg), "invalid HTTP/1.1 response from upstream: %s",
                     why != NULL ? why : "malformed");
            mark_dead(b, msg);
            buf_consume(b->up_in, buf_used(b->up_in));
            answer(b, 502, msg);
            break;
        }
        snprintf(status, sizeof(status), "%03d", resp.status);
        if (resp.status == 101) {
            mark_dead(b, "upstream switched protocols (101), which HTTP/2 cannot relay");
            buf_consume(b->up_in, buf_used(b->up_in));
            answer(b, 502, b->why);
            break;
        }
        if (resp.status < 200) { /* interim (100 Continue, 103 Early Hints): relayed */
            nv = resp_to_nv(&resp, nva, status, H1_BODY_NONE);
            (void)nghttp2_submit_headers(b->ss, NGHTTP2_FLAG_NONE, b->id, NULL, nva, nv, NULL);
            buf_consume(b->up_in, (size_t)n);
            continue;
        }
        b->body = h1_response_body(b->method, b->method_len, &resp);
        if (b->body == H1_BODY_TUNNEL) {
            mark_dead(b, "upstream answered with a tunnel, which HTTP/2 cannot relay");
            buf_consume(b->up_in, buf_used(b->up_in));
            answer(b, 502, b->why);
            break;
        }
        if (b->on_head != NULL)
            b->on_head(b->on_head_arg, b->id, resp.minor_version, resp.reason, resp.reason_len);
        b->keep_alive = resp.framing.keep_alive && b->body != H1_BODY_CLOSE;
        b->remaining = b->body == H1_BODY_LENGTH ? (uint64_t)resp.framing.content_length : 0;
        h1_chunk_decoder_init(&b->dec, b->hmax);
        nv = resp_to_nv(&resp, nva, status, b->body);
        b->resp = b->body == H1_BODY_NONE ? H2_H1UP_RESP_DONE : H2_H1UP_RESP_BODY;
        /* nghttp2 copies the fields: the head may leave up_in right after */
        if (nghttp2_submit_response(b->ss, b->id, nva, nv,
                                    b->body == H1_BODY_NONE ? NULL : &prd) != 0) {
            mark_dead(b, "cannot relay the upstream response");
            note(b, false, "cannot relay the upstream response");
            nghttp2_submit_rst_stream(b->ss, NGHTTP2_FLAG_NONE, b->id, NGHTTP2_INTERNAL_ERROR);
        }
        buf_consume(b->up_in, (size_t)n);
        if (b->resp == H2_H1UP_RESP_DONE)
            resp_complete(b);
    }
    return moved;
}

/* ---- public side ------------------------------------------------------------------------- */

static int session_new(struct h2_h1up *b)
{
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    size_t block = b->hmax * 2 + 4096;
    nghttp2_settings_entry set[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1}, /* one HTTP/1.1 exchange at a time */
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_H1UP_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)b->hmax},
    };
    int err = -ENOMEM;

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -ENOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    if (nghttp2_option_new(&opt) != 0)
        goto out_del_cb;
    /* the window opens only as the body reaches up_out (bounded staging) */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_max_send_header_block_length(opt, block > 65536 ? block : 65536);
    if (nghttp2_session_server_new2(&b->ss, cb, b, opt) != 0)
        goto out_del_opt;
    if (nghttp2_submit_settings(b->ss, NGHTTP2_FLAG_NONE, set, 3) != 0) {
        nghttp2_session_del(b->ss);
        b->ss = NULL;
        goto out_del_opt;
    }
    err = 0;
out_del_opt:
    nghttp2_option_del(opt);
out_del_cb:
    nghttp2_session_callbacks_del(cb);
    return err;
}

struct h2_h1up *h2_h1up_new(size_t max_header_size, struct buf *up_in, struct buf *up_out)
{
    size_t hmax = max_header_size != 0 ? max_header_size : 65536;
    size_t head_cap = hmax + H1_REQUEST_LINE_MAX + 2048;
    size_t total;
    struct h2_h1up *b;
    uint8_t *p;

    if (hmax > (SIZE_MAX - sizeof(*b)) / 8)
        return NULL;
    total = sizeof(*b) + 2 * H2_H1UP_MID_SIZE + 2 * head_cap + H2_H1UP_WINDOW + 1;
    b = calloc(1, total);
    if (b == NULL)
        return NULL;
    b->hmax = hmax;
    b->up_in = up_in;
    b->up_out = up_out;
    p = b->mem;
    buf_init(&b->to_relay, p, H2_H1UP_MID_SIZE);
    p += H2_H1UP_MID_SIZE;
    buf_init(&b->from_relay, p, H2_H1UP_MID_SIZE);
    p += H2_H1UP_MID_SIZE;
    buf_init(&b->hout, p, head_cap);
    p += head_cap;
    buf_init(&b->cookie, p, head_cap);
    p += head_cap;
    buf_init(&b->stage, p, H2_H1UP_WINDOW + 1);
    if (session_new(b) != 0) {
        free(b);
        return NULL;
    }
    return b;
}

void h2_h1up_free(struct h2_h1up *b)
{
    if (b == NULL)
        return;
    nghttp2_session_del(b->ss);
    free(b);
}

struct buf *h2_h1up_relay_in(struct h2_h1up *b)
{
    return &b->to_relay;
}

struct buf *h2_h1up_relay_out(struct h2_h1up *b)
{
    return &b->from_relay;
}

bool h2_h1up_is_reading_head(const struct h2_h1up *b)
{
    return b->id != 0 && b->wrote_any && b->resp == H2_H1UP_RESP_HEAD && !b->answered;
}

void h2_h1up_set_on_head(struct h2_h1up *b, h2_h1up_head_fn *fn, void *arg)
{
    b->on_head = fn;
    b->on_head_arg = arg;
}

int32_t h2_h1up_stream(const struct h2_h1up *b)
{
    return b->id;
}

void h2_h1up_set_on_note(struct h2_h1up *b, h2_h1up_note_fn *fn, void *arg)
{
    b->on_note = fn;
    b->on_note_arg = arg;
}

void h2_h1up_set_redial(struct h2_h1up *b, bool on)
{
    b->redial = on;
}

bool h2_h1up_wants_dial(const struct h2_h1up *b)
{
    return b->redial && b->conn_gone && !b->up_dead && b->id != 0 && b->head_done &&
           !b->answered && !b->wrote_any;
}

void h2_h1up_upstream_ready(struct h2_h1up *b)
{
    b->conn_gone = false;
    b->up_eof = false;
    b->why[0] = '\0';
    b->redials++;
}

void h2_h1up_upstream_failed(struct h2_h1up *b, const char *why)
{
    snprintf(b->why, sizeof(b->why), "%s", why != NULL ? why : "upstream connection failed");
    b->conn_gone = b->up_dead = true;
    if (b->id != 0 && !b->answered && b->resp == H2_H1UP_RESP_HEAD)
        answer(b, 502, b->why);
}

uint64_t h2_h1up_redials(const struct h2_h1up *b)
{
    return b->redials;
}

uint64_t h2_h1up_exchanges(const struct h2_h1up *b)
{
    return b->exchanges;
}

void h2_h1up_upstream_eof(struct h2_h1up *b, const char *why)
{
    char msg[H2_H1UP_REASON_MAX];

    if (b->up_eof)
        return;
    b->up_eof = true;
    snprintf(msg, sizeof(msg), "%s", why != NULL ? why : "upstream closed connection");
    mark_dead(b, msg);
    if (b->id == 0 || b->answered || !b->wrote_any) /* a waiting exchange never used it */
        return;
    if (b->resp == H2_H1UP_RESP_HEAD)
        (void)parse_response(b); /* the whole response may have come with the close */
    if (b->resp == H2_H1UP_RESP_HEAD) {
        buf_consume(b->up_in, buf_used(b->up_in));
        answer(b, 502, msg);
    } else if (b->resp == H2_H1UP_RESP_BODY && b->resp_deferred) {
        /* a close-delimited body ends here; any other one was cut short (reset) */
        b->resp_deferred = false;
        nghttp2_session_resume_data(b->ss, b->id);
    }
}

/* send_to_relay serialises the session's frames into to_relay as room allows. */
static bool send_to_relay(struct h2_h1up *b)
{
    bool moved = false;

    if (b->pend_len > 0) {
        size_t k = buf_append(&b->to_relay, b->pend, b->pend_len);

        b->pend += k;
        b->pend_len -= k;
        moved = k > 0;
    }
    while (b->pend_len == 0 && buf_room(&b->to_relay) > 0) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(b->ss, &p);
        size_t k;

        if (n <= 0) {
            if (n < 0)
                b->failed = true;
            break;
        }
        moved = true;
        k = buf_append(&b->to_relay, p, (size_t)n);
        if (k < (size_t)n) {
            b->pend = p + k;
            b->pend_len = (size_t)n - k;
        }
    }
    return moved;
}

static bool pump_round(struct h2_h1up *b)
{
    bool moved = false;
    size_t n = buf_used(&b->from_relay);

    if (n > 0) {
        ssize_t rv;

        if (n > H2_H1UP_RECV_CHUNK)
            n = H2_H1UP_RECV_CHUNK;
        rv = nghttp2_session_mem_recv(b->ss, buf_head(&b->from_relay), n);
        if (rv < 0) { /* the relay's own session broke the protocol: never expected */
            b->failed = true;
            mark_dead(b, "internal HTTP/2 error between relay and HTTP/1.1 bridge");
            b->up_dead = true;
            return true;
        }
        buf_consume(&b->from_relay, (size_t)rv);
        moved |= rv > 0;
    }
    moved |= move_request(b);
    if (b->id != 0 && b->resp == H2_H1UP_RESP_HEAD && !b->answered)
        moved |= parse_response(b);
    else if (b->id == 0 && buf_used(b->up_in) > 0 && !b->conn_gone) {
        mark_dead(b, "upstream sent bytes with no request outstanding");
        moved = true;
    }
    if (b->conn_gone && (b->id == 0 || b->answered || b->resp == H2_H1UP_RESP_DONE ||
                         !b->wrote_any))
        buf_consume(b->up_in, buf_used(b->up_in)); /* nobody reads it any more */
    if (b->resp == H2_H1UP_RESP_BODY && b->resp_deferred &&
        (buf_used(b->up_in) > 0 || b->up_eof)) {
        b->resp_deferred = false;
        nghttp2_session_resume_data(b->ss, b->id);
        moved = true;
    }
    if (b->up_dead && !b->goaway_sent) {
        /* the relay takes no new stream; the one in progress (if any) finishes */
        b->goaway_sent = true;
        nghttp2_submit_goaway(b->ss, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(b->ss), NGHTTP2_NO_ERROR,
                              NULL, 0);
        moved = true;
    }
    moved |= send_to_relay(b);
    return moved;
}

bool h2_h1up_pump(struct h2_h1up *b)
{
    bool any = false;

    for (int i = 0; i < H2_H1UP_ROUNDS && !b->failed; i++) {
        if (!pump_round(b))
            break;
        any = true;
    }
    return any;
}
