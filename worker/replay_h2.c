/* replay_h2.c - see replay_h2.h. */
#include "worker/replay_h2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nghttp2/nghttp2.h>

#include "worker/h2_relay_internal.h"
#include "worker/replay.h"

/* body_read serves the replayed body from the mapping. */
static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *out, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct h2_stream *st = src->ptr;
    size_t n = st->answer_len - st->answer_off;

    (void)s;
    (void)id;
    (void)ud;
    if (n > len)
        n = len;
    memcpy(out, st->answer_ext + st->answer_off, n);
    st->answer_off += n;
    if (st->answer_off == st->answer_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* content_length returns the request's content-length field, or -1 when it has none. */
static long long content_length(const struct h2_half *h)
{
    for (uint16_t i = 0; i < h->n_fields; i++) {
        nghttp2_vec nm = nghttp2_rcbuf_get_buf(h->fields[i].name);
        nghttp2_vec v = nghttp2_rcbuf_get_buf(h->fields[i].value);
        char num[24] = "";

        if (nm.len == 14 && memcmp(nm.base, "content-length", 14) == 0) {
            memcpy(num, v.base, v.len < sizeof(num) - 1 ? v.len : sizeof(num) - 1);
            return strtoll(num, NULL, 10);
        }
    }
    return -1;
}

/* answer carries out replay_match's verdict `vd` on stream `st`. Returns true when the
 * stream was handled (answered, killed or refused), false to forward it. */
static bool answer(struct h2_relay *r, struct h2_stream *st, enum replay_verdict vd,
                   const struct replay_answer *a)
{
    struct replay *rp = r->_opts.replay;
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = body_read};
    nghttp2_nv nva[H2_MAX_FIELDS];
    char sbuf[8], lbuf[24], rbuf[4096]; /* rbuf: refreshed values (server_replay_refresh) */
    size_t n = 0, used = 0;
    int64_t now = (int64_t)time(NULL);

    switch (vd) {
    case REPLAY_FORWARD:
        return false;
    case REPLAY_KILL:
        h2_fields_clear(&st->half[H2_REQ]);
        flow_set_error(&st->flow, "not in the server replay recording: killed "
                                  "(server_replay_extra)");
        h2_rst_upstream(r, st, NGHTTP2_CANCEL);
        h2_rst_client(r, st, NGHTTP2_CANCEL);
        return true;
    case REPLAY_STATUS:
        h2_fields_clear(&st->half[H2_REQ]);
        h2_rst_upstream(r, st, NGHTTP2_CANCEL);
        h2_stream_answer(r, st, a->status,
                         "not in the server replay recording (server_replay_extra)");
        return true;
    case REPLAY_ANSWER:
        break;
    }
    h2_fields_clear(&st->half[H2_REQ]);
    snprintf(sbuf, sizeof(sbuf), "%03u", a->entry->status);
    snprintf(lbuf, sizeof(lbuf), "%u", a->entry->body_len);
    nva[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)sbuf, 7, 3, NGHTTP2_NV_FLAG_NONE};
    nva[n++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)lbuf, 14, strlen(lbuf),
                            NGHTTP2_NV_FLAG_NONE};
    for (uint32_t i = 0; i < a->entry->n_fields && n < H2_MAX_FIELDS; i++) {
        const struct replay_field *f = &a->fields[i];
        const char *v = replay_str(rp, f->value_off);
        size_t vl = replay_refresh_field(rp, a->entry, now, replay_str(rp, f->name_off),
                                         f->name_len, v, f->value_len, rbuf + used,
                                         sizeof(rbuf) - used);

        if (vl > 0) { /* nghttp2 copies the fields: rbuf may be reused after the submit */
            v = rbuf + used;
            used += vl;
        } else {
            vl = f->value_len;
        }
        nva[n++] = (nghttp2_nv){(uint8_t *)replay_str(rp, f->name_off), (uint8_t *)v,
                                f->name_len, vl, NGHTTP2_NV_FLAG_NONE};
    }
    st->answer_ext = a->body;
    st->answer_len = a->entry->body_len;
    st->answer_off = 0;
    if (nghttp2_submit_response(r->_cs, st->cid, nva, n, a->entry->body_len > 0 ? &prd : NULL) !=
        0) {
        h2_rst_client(r, st, NGHTTP2_INTERNAL_ERROR);
        return true;
    }
    st->resp_head = true;
    st->answered = true;
    flow_str_set(&st->flow, &st->flow.resp_version, "HTTP/2.0", 8);
    h2_rst_upstream(r, st, NGHTTP2_CANCEL); /* nothing goes upstream for this stream */
    h2_half_discard(r, st, H2_REQ);
    return true;
}

bool replay_h2_request(struct h2_relay *r, struct h2_stream *st, bool end_stream)
{
    struct replay *rp = r->_opts.replay;
    struct replay_answer a;

    if (!end_stream && replay_needs_body(rp)) {
        long long cl = content_length(&st->half[H2_REQ]);

        if (cl > (long long)REPLAY_BODY_MAX) /* no recording holds such a body: extra */
            return answer(r, st, replay_miss(rp, &a), &a);
        st->replay_wait = true; /* held whole by the relay, keyed in replay_h2_body_end */
        return false;
    }
    return answer(r, st, replay_match(rp, &st->flow, NULL, 0, &a), &a);
}

bool replay_h2_body_end(struct h2_relay *r, struct h2_stream *st, const uint8_t *body,
                        size_t len)
{
    struct replay_answer a;

    return answer(r, st, replay_match(r->_opts.replay, &st->flow, body, len, &a), &a);
}

bool replay_h2_too_large(struct h2_relay *r, struct h2_stream *st)
{
    struct replay_answer a;

    st->replay_wait = false;
    return answer(r, st, replay_miss(r->_opts.replay, &a), &a);
}

size_t replay_h2_body_limit(const struct h2_relay *r, const struct h2_stream *st, int d)
{
    size_t limit = rules_body_limit(r->_opts.rules);

    if (d == H2_REQ && st->replay_wait && limit < REPLAY_BODY_MAX)
        limit = REPLAY_BODY_MAX;
    return limit;
}
