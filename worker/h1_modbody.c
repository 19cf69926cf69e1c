/* h1_modbody.c - --modify-body in the HTTP/1.1 relay: a request or response body within
 * body_size_limit is collected whole (its head held back), rewritten by the rules
 * (rules_body_apply), and sent with a new Content-Length; larger bodies pass unchanged. Owns
 * the relay's one allocation, the collection buffer (_mb). Called through
 * h1_relay_internal.h; no I/O. */
#include "worker/h1_relay_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "worker/h1_head.h"

static int mb_append(struct h1_relay *r, const uint8_t *p, size_t n);
static size_t mb_payload(struct h1_relay *r);

/* ---- --modify-body on the request ---------------------------------------------------- */

/* h1_modbody_step_request collects the request body when --modify-body wants it (the head is
 * taken from client_in into _mb first), then lets the head go out (from _mb, with the new
 * Content-Length) and sends the rewritten body. Returns -1 when the request streams as
 * usual, else whether it made progress. */
int h1_modbody_step_request(struct h1_relay *r)
{
    struct buf *in = r->_client_in;
    const char *why = NULL;
    bool done = false;
    size_t n;

    if (!r->_mb_req)
        return -1;
    if (!r->_mb_req_head) { /* take the head */
        if (mb_append(r, buf_head(in), r->_req_head_len) != 0) {
            r->_mb_req = false;
            r->_flow->rules_note = "modify_body: out of memory, passed unchanged";
            h1_modbody_free(r);
            return -1;
        }
        buf_consume(in, r->_req_head_len);
        r->_mb_head = r->_req_head_len;
        r->_mb_req_head = r->_mb_on = true;
    }
    if (h1_held_src(r->_held) != NULL) /* a body held for server replay goes first */
        in = h1_held_src(r->_held);
    if (r->_mb_on) {
        n = buf_used(in);
        if (r->_req_body == H1_BODY_LENGTH) {
            if (n > r->_req_remaining)
                n = (size_t)r->_req_remaining;
        } else {
            uint64_t seen = 0;
            ssize_t c = n == 0 ? 0 : h1_chunk_decode_all(&r->_req_chunks, buf_head(in), n, &seen,
                                                         &why);

            if (c < 0) {
                h1_answer_error(r, 400, why);
                return 1;
            }
            n = (size_t)c;
            done = h1_chunk_decoder_is_done(&r->_req_chunks);
        }
        if (n > 0 && mb_append(r, buf_head(in), n) != 0) {
            r->_flow->rules_note = "modify_body: out of memory, passed unchanged";
            done = false;
            goto overflow;
        }
        buf_consume(in, n);
        if (r->_req_body == H1_BODY_LENGTH) {
            r->_req_remaining -= n;
            done = r->_req_remaining == 0;
        }
        if (done) {
            size_t plen;
            uint8_t *out = NULL;
            size_t out_len = 0;

            r->_mb_on = false;
            plen = r->_req_body == H1_BODY_CHUNKED ? 0 : r->_mb_len - r->_mb_head;
            if (r->_req_body == H1_BODY_CHUNKED) { /* decode in place, as for responses */
                enum h1_body keep = r->_resp_body;

                r->_resp_body = H1_BODY_CHUNKED;
                plen = mb_payload(r);
                r->_resp_body = keep;
            }
            if (rules_body_apply(r->_opts.rules, r->_flow, r->_mb + r->_mb_head, plen, &out,
                                 &out_len) != 0) {
                r->_flow->rules_note = "modify_body: rewriting failed, passed unchanged";
                out = r->_mb + r->_mb_head;
                out_len = plen;
            } else {
                r->_mb_rewrite = true;
            }
            r->_mb_body = out;
            r->_mb_body_len = out_len;
            r->_mb_body_off = 0;
            r->_flow->req_body_size = out_len;
            snprintf(r->_mb_clen, sizeof(r->_mb_clen), "%zu", out_len);
            r->_mb_hdr[0] = (struct rules_header){"Content-Length", "content-length", 14,
                                                  r->_mb_clen, strlen(r->_mb_clen)};
            r->_mb_hdr[1] = (struct rules_header){"Transfer-Encoding", "transfer-encoding", 17,
                                                  "", 0};
            if (!r->_edits_on)
                r->_verdict.n_edits = 0;
            if (r->_verdict.n_edits + 2 <= RULES_MAX_PER_KIND) {
                r->_verdict.edits[r->_verdict.n_edits++] = &r->_mb_hdr[0];
                r->_verdict.edits[r->_verdict.n_edits++] = &r->_mb_hdr[1];
            }
            r->_edits_on = true;
            r->_req_body = H1_BODY_LENGTH;
            r->_req_remaining = 0;
            r->_mb_out = true;
            return 1;
        }
        if (r->_mb_len - r->_mb_head <= rules_body_limit(r->_opts.rules)) {
            if (r->_client_eof && buf_used(in) == 0) {
                h1_relay_abort_exchange(r, "client closed while sending the request body");
                return 1;
            }
            return n > 0;
        }
        r->_flow->rules_note = rules_body_limit_note(r->_opts.rules);
    overflow: /* the head and the raw bytes collected go out, the rest streams as usual */
        r->_mb_on = false;
        r->_mb_body = r->_mb + r->_mb_head;
        r->_mb_body_len = r->_mb_len - r->_mb_head;
        r->_mb_body_off = 0;
        r->_mb_out = true;
        return 1;
    }
    if (!r->_req_head_done) {
        bool p = h1_req_step_head_out(r);

        if (!r->_req_head_done)
            return p;
    }
    n = buf_append(r->_up_out, r->_mb_body + r->_mb_body_off, r->_mb_body_len - r->_mb_body_off);
    r->_mb_body_off += n;
    if (r->_mb_body_off < r->_mb_body_len)
        return n > 0;
    r->_mb_req = r->_mb_out = false; /* sent: the rest (nothing after a rewrite) as usual */
    if (r->_req_body == H1_BODY_LENGTH && r->_req_remaining == 0) {
        r->_req_head_done = true;
        h1_modbody_free(r);
        r->_mb_req_head = false;
        h1_req_done(r);
    }
    return 1;
}


/* ---- --modify-body on the response -------------------------------------------------- */

void h1_modbody_free(struct h1_relay *r)
{
    if (r->_mb_rewrite)
        free(r->_mb_body);
    free(r->_mb);
    r->_mb = r->_mb_body = NULL;
    r->_mb_len = r->_mb_cap = r->_mb_head = r->_mb_body_len = r->_mb_body_off = 0;
    r->_mb_on = r->_mb_out = r->_mb_rewrite = false;
}

static int mb_append(struct h1_relay *r, const uint8_t *p, size_t n)
{
    if (r->_mb_len + n > r->_mb_cap) {
        size_t cap = r->_mb_cap == 0 ? 16384 : r->_mb_cap;
        uint8_t *g;

        while (cap < r->_mb_len + n)
            cap *= 2;
        g = realloc(r->_mb, cap);
        if (g == NULL)
            return -ENOMEM;
        r->_mb = g;
        r->_mb_cap = cap;
    }
    memcpy(r->_mb + r->_mb_len, p, n);
    r->_mb_len += n;
    return 0;
}

/* h1_modbody_start holds the parsed response head (`head_len` bytes at the front of up_in) when a
 * --modify-body spec wants its body. Returns true when the head was taken. */
bool h1_modbody_start(struct h1_relay *r, enum h1_body body, uint64_t content_length)
{
    struct rules *rules = r->_opts.rules;

    if (rules == NULL || (body != H1_BODY_LENGTH && body != H1_BODY_CHUNKED) ||
        !rules_body_wanted(rules, r->_flow))
        return false;
    if (body == H1_BODY_LENGTH && content_length > rules_body_limit(rules)) {
        r->_flow->rules_note = rules_body_limit_note(rules);
        return false;
    }
    h1_modbody_free(r); /* what the request body left */
    r->_mb_req_head = false;
    if (mb_append(r, buf_head(r->_up_in), r->_resp_head_len) != 0) {
        r->_flow->rules_note = "modify_body: out of memory, passed unchanged";
        h1_modbody_free(r);
        return false;
    }
    buf_consume(r->_up_in, r->_resp_head_len);
    r->_mb_head = r->_resp_head_len;
    r->_resp_head_len = 0;
    r->_resp_head_forward = false;
    r->_mb_on = true;
    return true;
}

/* mb_payload decodes the chunked body collected in _mb in place. Returns its length. */
static size_t mb_payload(struct h1_relay *r)
{
    struct h1_chunk_decoder d;
    uint8_t *p = r->_mb + r->_mb_head;
    size_t len = r->_mb_len - r->_mb_head, at = 0, out = 0;
    const char *why = NULL;

    if (r->_resp_body != H1_BODY_CHUNKED)
        return len;
    h1_chunk_decoder_init(&d, head_limit(r, r->_up_in));
    while (at < len && !h1_chunk_decoder_is_done(&d)) {
        size_t off = 0, dl = 0;
        ssize_t c = h1_chunk_decode(&d, p + at, len - at, &off, &dl, &why);

        if (c <= 0)
            break;
        memmove(p + out, p + at + off, dl); /* out <= at + off: compaction moves forward */
        out += dl;
        at += (size_t)c;
    }
    return out;
}

/* mb_finish rewrites the collected body and starts sending head and result. */
static void mb_finish(struct h1_relay *r)
{
    struct rules_verdict *v = &r->_verdict;
    size_t plen = mb_payload(r);
    uint8_t *out = NULL;
    size_t out_len = 0;

    r->_mb_on = false;
    if (rules_body_apply(r->_opts.rules, r->_flow, r->_mb + r->_mb_head, plen, &out, &out_len) !=
        0) {
        r->_flow->rules_note = "modify_body: rewriting failed, passed unchanged";
        out = r->_mb + r->_mb_head; /* the decoded body, unchanged */
        out_len = plen;
    } else {
        r->_mb_rewrite = true;
    }
    r->_mb_body = out;
    r->_mb_body_len = out_len;
    r->_mb_body_off = 0;
    r->_flow->resp_body_size = out_len;
    snprintf(r->_mb_clen, sizeof(r->_mb_clen), "%zu", out_len);
    r->_mb_hdr[0] = (struct rules_header){"Content-Length", "content-length", 14, r->_mb_clen,
                                          strlen(r->_mb_clen)};
    r->_mb_hdr[1] = (struct rules_header){"Transfer-Encoding", "transfer-encoding", 17, "", 0};
    if (!r->_edits_on)
        v->n_edits = 0;
    if (v->n_edits + 2 <= RULES_MAX_PER_KIND) {
        v->edits[v->n_edits++] = &r->_mb_hdr[0];
        v->edits[v->n_edits++] = &r->_mb_hdr[1];
    }
    r->_edits_on = true;
    r->_resp_body = H1_BODY_LENGTH;
    r->_resp_remaining = 0;
    r->_resp_head_moved = 0;
    r->_mb_out = true;
}

/* mb_overflow gives up on a body larger than body_size_limit: the head and the raw bytes
 * collected go out as they are, and the rest streams as usual. */
static void mb_overflow(struct h1_relay *r, const char *note)
{
    r->_flow->rules_note = note;
    r->_mb_on = false;
    r->_mb_body = r->_mb + r->_mb_head;
    r->_mb_body_len = r->_mb_len - r->_mb_head;
    r->_mb_body_off = 0;
    r->_resp_head_moved = 0;
    r->_mb_out = true;
}

/* h1_modbody_collect takes response body bytes from up_in into _mb. */
bool h1_modbody_collect(struct h1_relay *r)
{
    struct buf *in = r->_up_in;
    size_t n = buf_used(in);
    const char *why = NULL;
    bool done = false;

    if (r->_resp_body == H1_BODY_LENGTH) {
        if (n > r->_resp_remaining)
            n = (size_t)r->_resp_remaining;
    } else {
        uint64_t seen = 0;
        ssize_t c = n == 0 ? 0 : h1_chunk_decode_all(&r->_resp_chunks, buf_head(in), n, &seen, &why);

        if (c < 0) {
            char msg[H1_RELAY_REASON_MAX];

            snprintf(msg, sizeof(msg), "bad response from upstream: %s", why);
            h1_answer_error(r, 502, msg);
            return true;
        }
        n = (size_t)c;
        r->_flow->resp_body_size += seen;
        done = h1_chunk_decoder_is_done(&r->_resp_chunks);
    }
    if (n > 0 && mb_append(r, buf_head(in), n) != 0) {
        mb_overflow(r, "modify_body: out of memory, passed unchanged");
        return true; /* the bytes stay in up_in and stream after the collected ones */
    }
    buf_consume(in, n);
    if (r->_resp_body == H1_BODY_LENGTH) {
        r->_resp_remaining -= n;
        r->_flow->resp_body_size += n;
        done = r->_resp_remaining == 0;
    }
    if (done) {
        mb_finish(r);
        return true;
    }
    if (r->_mb_len - r->_mb_head > rules_body_limit(r->_opts.rules)) {
        mb_overflow(r, rules_body_limit_note(r->_opts.rules));
        return true;
    }
    if (r->_up_eof && buf_used(in) == 0) {
        h1_answer_error(r, 502, "upstream closed while responding");
        return true;
    }
    return n > 0;
}

/* h1_modbody_send writes the held head (with the new Content-Length after a rewrite) and the
 * body. */
bool h1_modbody_send(struct h1_relay *r)
{
    struct h1_header headers[H1_MAX_HEADERS];
    struct h1_response resp;
    const char *why = NULL;
    size_t n;

    if (r->_resp_head_moved != SIZE_MAX) {
        struct h1_emitter e = {.out = r->_client_out, .skip = r->_resp_head_moved};

        if (h1_parse_response(r->_mb, r->_mb_head, r->_mb_head, &resp, headers, H1_MAX_HEADERS,
                              &why) < 0) {
            h1_answer_error(r, 502, "response head changed while buffered");
            return true;
        }
        if (!r->_resp_conn_set) {
            r->_resp_conn = h1_resp_conn(r);
            r->_resp_conn_set = true;
        }
        h1_head_response(&e, &resp, r->_resp_conn, r->_edits_on ? &r->_verdict : NULL);
        r->_resp_head_moved += e.written;
        if (e.full)
            return e.written > 0;
        r->_resp_head_moved = SIZE_MAX; /* the head is out */
        r->_resp_conn_set = r->_resp_conn == H1_HEAD_CONN_CLOSE;
    }
    n = buf_append(r->_client_out, r->_mb_body + r->_mb_body_off,
                   r->_mb_body_len - r->_mb_body_off);
    r->_mb_body_off += n;
    if (r->_mb_body_off < r->_mb_body_len)
        return n > 0;
    if (r->_resp_body == H1_BODY_LENGTH && r->_resp_remaining == 0) { /* rewritten, or whole */
        h1_modbody_free(r);
        h1_resp_finish(r);
        return true;
    }
    /* after an overflow: the rest of the body streams as usual */
    r->_mb_out = false;
    r->_resp_head_moved = 0;
    return true;
}

