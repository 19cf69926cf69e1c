/* mb_resp.c - incremental reader of one HTTP/1.1 response for mitmd-bench.
 * Owns only the client's read state machine; the grammar (head, framing rules, chunked
 * coding) is shared/h1_parse's. Called by mb_conn only. Never allocates and never reads past
 * the length it is given. */
#include "bench/mb_resp.h"

#include <errno.h>
#include <string.h>

static const char *const state_names[MB_RESP_STATE_COUNT] = {
    [MB_RESP_STATE_HEAD] = "head",
    [MB_RESP_STATE_BODY_LENGTH] = "body",
    [MB_RESP_STATE_BODY_CHUNKED] = "chunked-body",
    [MB_RESP_STATE_BODY_EOF] = "body-until-close",
    [MB_RESP_STATE_DONE] = "done",
};

const char *mb_resp_state_name(enum mb_resp_state s)
{
    if ((unsigned)s >= MB_RESP_STATE_COUNT)
        return "invalid";
    return state_names[s];
}

static void set_state(struct mb_resp *r, enum mb_resp_state next) { r->state = next; }

void mb_resp_init(struct mb_resp *r, bool connect)
{
    memset(r, 0, sizeof(*r));
    r->connect = connect;
    r->keep_alive = true;
    set_state(r, MB_RESP_STATE_HEAD);
}

bool mb_resp_is_done(const struct mb_resp *r) { return r->state == MB_RESP_STATE_DONE; }

/* feed_head parses a complete head if `buf` holds one; returns its size, 0 if incomplete. */
static ssize_t feed_head(struct mb_resp *r, const uint8_t *buf, size_t len, const char **why)
{
    struct h1_header headers[H1_MAX_HEADERS];
    struct h1_response resp;
    const char *method = r->connect ? "CONNECT" : "GET";
    ssize_t n = h1_parse_response(buf, len, MB_RESP_HEAD_MAX, &resp, headers, H1_MAX_HEADERS, why);

    if (n == -EAGAIN)
        return 0;
    if (n < 0)
        return n;
    if (resp.status < 200 && resp.status != 101) {
        /* Interim response (RFC 9110 §15.2): the final one follows. */
        return n;
    }
    r->status = resp.status;
    r->head_bytes = (size_t)n;
    r->keep_alive = resp.framing.keep_alive;
    if (r->connect) {
        set_state(r, MB_RESP_STATE_DONE);
        return n;
    }
    /* GET and POST responses are framed alike (RFC 9112 §6.3). */
    switch (h1_response_body(method, strlen(method), &resp)) {
    case H1_BODY_NONE:
    case H1_BODY_TUNNEL: /* 101: nothing more we could read as HTTP */
        set_state(r, MB_RESP_STATE_DONE);
        break;
    case H1_BODY_LENGTH:
        r->remaining = (uint64_t)resp.framing.content_length;
        set_state(r, MB_RESP_STATE_BODY_LENGTH);
        break;
    case H1_BODY_CHUNKED:
        h1_chunk_decoder_init(&r->chunks, MB_RESP_HEAD_MAX);
        set_state(r, MB_RESP_STATE_BODY_CHUNKED);
        break;
    case H1_BODY_CLOSE:
        r->keep_alive = false;
        set_state(r, MB_RESP_STATE_BODY_EOF);
        break;
    }
    return n;
}

ssize_t mb_resp_feed(struct mb_resp *r, const uint8_t *buf, size_t len, const char **why)
{
    size_t off = 0;

    while (off < len && r->state != MB_RESP_STATE_DONE) {
        size_t avail = len - off, n;
        ssize_t got;

        switch (r->state) {
        case MB_RESP_STATE_HEAD:
            got = feed_head(r, buf + off, avail, why);
            if (got < 0)
                return got;
            if (got == 0)
                return (ssize_t)off;
            off += (size_t)got;
            break;
        case MB_RESP_STATE_BODY_LENGTH:
            n = avail < r->remaining ? avail : (size_t)r->remaining;
            r->remaining -= n;
            r->body_bytes += n;
            off += n;
            if (r->remaining == 0)
                set_state(r, MB_RESP_STATE_DONE);
            break;
        case MB_RESP_STATE_BODY_CHUNKED:
            got = h1_chunk_decode_all(&r->chunks, buf + off, avail, &r->body_bytes, why);
            if (got < 0)
                return got;
            off += (size_t)got;
            if (h1_chunk_decoder_is_done(&r->chunks))
                set_state(r, MB_RESP_STATE_DONE);
            else if (got == 0)
                return (ssize_t)off;
            break;
        case MB_RESP_STATE_BODY_EOF:
            r->body_bytes += avail;
            off = len;
            break;
        case MB_RESP_STATE_DONE:
        case MB_RESP_STATE_COUNT:
            return (ssize_t)off;
        }
    }
    return (ssize_t)off;
}

int mb_resp_eof(struct mb_resp *r, const char **why)
{
    if (r->state == MB_RESP_STATE_BODY_EOF) {
        set_state(r, MB_RESP_STATE_DONE);
        return 0;
    }
    if (r->state == MB_RESP_STATE_DONE)
        return 0;
    *why = r->state == MB_RESP_STATE_HEAD ? "connection closed before the response head"
                                          : "connection closed in the response body";
    return -EPIPE;
}
