/* mb_h2.c - HTTP/2 requests of a mitmd-bench connection over nghttp2.
 * Owns the nghttp2 session, its callbacks and the stream slot table. Called by mb_conn only,
 * on the owning bench thread. Never blocks; slots are allocated once, in mb_h2_init. */
#include "bench/mb_h2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/mb_conn.h"

/* Flow-control window we grant the server per stream and per connection: large enough that
 * a 1 MiB response is not throttled by WINDOW_UPDATE round trips (RFC 9113 §6.9). */
#define MB_H2_WINDOW (16 * 1024 * 1024)

int mb_h2_init(struct mb_h2 *h, struct mb_conn *conn, unsigned cap)
{
    memset(h, 0, sizeof(*h));
    h->conn = conn;
    h->cap = cap;
    h->streams = calloc(cap, sizeof(*h->streams));
    if (h->streams == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < cap; i++)
        h->streams[i].h2 = h;
    return 0;
}

void mb_h2_dispose(struct mb_h2 *h)
{
    mb_h2_reset(h, false);
    free(h->streams);
    h->streams = NULL;
    h->cap = 0;
}

void mb_h2_reset(struct mb_h2 *h, bool keep_queued)
{
    if (h->session != NULL)
        nghttp2_session_del(h->session);
    h->session = NULL;
    h->out = NULL;
    h->out_len = 0;
    h->goaway = false;
    h->used = 0;
    for (unsigned i = 0; i < h->cap; i++) {
        struct mb_h2_stream *s = &h->streams[i];

        if (keep_queued && s->in_use && s->id == 0) {
            h->used++;
            continue;
        }
        s->in_use = false;
        s->id = 0;
    }
}

unsigned mb_h2_queued(const struct mb_h2 *h)
{
    unsigned n = 0;

    for (unsigned i = 0; i < h->cap; i++)
        n += h->streams[i].in_use && h->streams[i].id == 0;
    return n;
}

static void release_stream(struct mb_h2_stream *s)
{
    s->in_use = false;
    s->id = 0;
    s->h2->used--;
}

/* count_error counts one error for stream `s` if it was issued after warm-up. */
static void count_error(struct mb_h2_stream *s, enum mb_err_kind kind, const char *fmt_what,
                        const char *why)
{
    struct mb_conn *c = s->h2->conn;
    struct mb_stats *st = c->env->stats;
    bool saved = st->recording;

    st->recording = s->measured;
    mb_stats_error(st, kind, mb_now_ns(), "%s: %s: %s", c->host, fmt_what, why);
    st->recording = saved;
}

unsigned mb_h2_fail_all(struct mb_h2 *h, int kind, const char *what, const char *why)
{
    unsigned n = 0;

    for (unsigned i = 0; i < h->cap; i++) {
        struct mb_h2_stream *s = &h->streams[i];

        if (!s->in_use)
            continue;
        count_error(s, (enum mb_err_kind)kind, what, why);
        release_stream(s);
        n++;
    }
    return n;
}

bool mb_h2_has_room(const struct mb_h2 *h) { return h->used < h->cap && !h->goaway; }

bool mb_h2_is_finished(const struct mb_h2 *h)
{
    return h->session != NULL && h->out_len == 0 && !nghttp2_session_want_read(h->session) &&
           !nghttp2_session_want_write(h->session);
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct mb_h2_stream *s;

    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || namelen != 7 || memcmp(name, ":status", 7) != 0)
        return 0;
    s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (s == NULL)
        return 0;
    /* nghttp2 has validated :status as three digits (RFC 9113 §8.3.2); a final response
     * after a 1xx overwrites it. */
    if (valuelen == 3)
        s->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct mb_h2 *h = user_data;

    (void)session;
    if (frame->hd.type == NGHTTP2_GOAWAY)
        h->goaway = true;
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    struct mb_h2 *h = user_data;
    struct mb_h2_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    struct mb_conn *c = h->conn;
    const struct mb_opts *o = c->env->opts;
    struct mb_stats *st = c->env->stats;
    char what[MB_OPTS_PATH_MAX + 8], status[24];

    if (s == NULL || !s->in_use)
        return 0;
    if (error_code == NGHTTP2_REFUSED_STREAM && s->retries < MB_H2_MAX_RETRIES) {
        /* Not processed (RFC 9113 §8.7): queue it again, on this session if it goes on,
         * else on the next one. */
        s->retries++;
        s->id = 0;
        s->status = 0;
        return 0;
    }
    c->reqs_done++;
    if (error_code == NGHTTP2_NO_ERROR && s->status == 200) {
        if (s->measured) {
            st->requests++;
            mb_hist_record(&st->latency, mb_now_ns() - s->start_ns);
        }
    } else if (error_code == NGHTTP2_NO_ERROR) {
        snprintf(status, sizeof(status), "status %d", s->status);
        snprintf(what, sizeof(what), "%s %s", o->body_size > 0 ? "POST" : "GET", o->path);
        count_error(s, MB_ERR_STATUS, what, status);
    } else {
        count_error(s, MB_ERR_PROTOCOL, "stream reset", nghttp2_http2_strerror(error_code));
    }
    release_stream(s);
    return 0;
}

static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    struct mb_h2_stream *s = source->ptr;
    struct mb_conn_env *env = s->h2->conn->env;
    size_t n = length;

    (void)session;
    (void)stream_id;
    (void)user_data;
    if (n > s->body_left)
        n = (size_t)s->body_left;
    if (n > env->body_chunk)
        n = env->body_chunk;
    memcpy(buf, env->body, n);
    s->body_left -= n;
    if (s->body_left == 0)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* nv makes a header field for nghttp2_submit_request, which copies it. */
static nghttp2_nv nv(const char *name, const char *value, size_t value_len)
{
    nghttp2_nv f = {(uint8_t *)name, (uint8_t *)value, strlen(name), value_len,
                    NGHTTP2_NV_FLAG_NONE};

    return f;
}

/* submit_stream hands one reserved slot to nghttp2. */
static int submit_stream(struct mb_h2 *h, struct mb_h2_stream *s, const char **why)
{
    struct mb_conn *c = h->conn;
    const struct mb_opts *o = c->env->opts;
    bool v6 = strchr(c->host, ':') != NULL;
    char authority[MB_OPTS_HOST_MAX + 16], length[24];
    const char *method = o->body_size > 0 ? "POST" : "GET";
    nghttp2_data_provider body;
    int alen, llen, id;

    alen = snprintf(authority, sizeof(authority), "%s%s%s", v6 ? "[" : "", c->host, v6 ? "]" : "");
    if (o->origin.port != 443 && alen > 0 && (size_t)alen < sizeof(authority))
        alen += snprintf(authority + alen, sizeof(authority) - (size_t)alen, ":%u",
                         (unsigned)o->origin.port);
    llen = snprintf(length, sizeof(length), "%llu", (unsigned long long)o->body_size);
    if (alen < 0 || (size_t)alen >= sizeof(authority) || llen < 0) {
        *why = "authority too long";
        return -EPROTO;
    }
    {
        const nghttp2_nv nva[] = {
            nv(":method", method, strlen(method)),
            nv(":scheme", "https", 5),
            nv(":authority", authority, (size_t)alen),
            nv(":path", o->path, strlen(o->path)),
            nv("user-agent", "mitmd-bench/" MITMD_VERSION,
               sizeof("mitmd-bench/" MITMD_VERSION) - 1),
            nv("content-length", length, (size_t)llen),
        };
        size_t nnv = o->body_size > 0 ? 6 : 5;

        s->body_left = o->body_size;
        body.source.ptr = s;
        body.read_callback = read_body;
        id = nghttp2_submit_request(h->session, NULL, nva, nnv, o->body_size > 0 ? &body : NULL, s);
    }
    if (id < 0) {
        *why = nghttp2_strerror(id);
        return -EPROTO;
    }
    s->id = id;
    return 0;
}

int mb_h2_open(struct mb_h2 *h, const char **why)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, MB_H2_WINDOW},
    };
    int rv;

    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        *why = "out of memory";
        return -ENOMEM;
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    rv = nghttp2_session_client_new(&h->session, cbs, h);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
        h->session = NULL;
        *why = nghttp2_strerror(rv);
        return -ENOMEM;
    }
    rv = nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, settings,
                                 sizeof(settings) / sizeof(settings[0]));
    if (rv == 0)
        rv = nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0, MB_H2_WINDOW);
    if (rv != 0) {
        *why = nghttp2_strerror(rv);
        return -EPROTO;
    }
    return mb_h2_submit_queued(h, why);
}

int mb_h2_submit_queued(struct mb_h2 *h, const char **why)
{
    if (h->session == NULL || h->goaway)
        return 0;
    for (unsigned i = 0; i < h->cap; i++) {
        struct mb_h2_stream *s = &h->streams[i];

        if (s->in_use && s->id == 0 && submit_stream(h, s, why) != 0)
            return -EPROTO;
    }
    return 0;
}

int mb_h2_submit(struct mb_h2 *h, uint64_t start_ns, bool measured, const char **why)
{
    struct mb_h2_stream *s = NULL;

    if (!mb_h2_has_room(h))
        return -ENOBUFS;
    for (unsigned i = 0; i < h->cap; i++) {
        if (!h->streams[i].in_use) {
            s = &h->streams[i];
            break;
        }
    }
    if (s == NULL)
        return -ENOBUFS;
    s->in_use = true;
    s->id = 0;
    s->status = 0;
    s->retries = 0;
    s->measured = measured;
    s->start_ns = start_ns;
    h->used++;
    if (h->session == NULL)
        return 0; /* submitted by mb_h2_open */
    if (submit_stream(h, s, why) != 0) {
        release_stream(s);
        return -EPROTO;
    }
    return 0;
}

int mb_h2_recv(struct mb_h2 *h, const uint8_t *data, size_t len, const char **why)
{
    ssize_t n = nghttp2_session_mem_recv(h->session, data, len);

    if (n < 0) {
        *why = nghttp2_strerror((int)n);
        return -EPROTO;
    }
    return 0;
}

ssize_t mb_h2_next_out(struct mb_h2 *h, const uint8_t **p, const char **why)
{
    if (h->out_len == 0) {
        ssize_t n = nghttp2_session_mem_send(h->session, &h->out);

        if (n < 0) {
            *why = nghttp2_strerror((int)n);
            return -EPROTO;
        }
        h->out_len = (size_t)n;
    }
    *p = h->out;
    return (ssize_t)h->out_len;
}

void mb_h2_sent(struct mb_h2 *h, size_t n)
{
    if (n > h->out_len)
        n = h->out_len;
    h->out += n;
    h->out_len -= n;
}
