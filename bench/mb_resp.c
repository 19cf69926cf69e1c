/* mb_resp.c - incremental HTTP/1.1 response reader for mitmd-bench.
 * Owns the response grammar as a client sees it (RFC 9112 §4-§7): status line, the header
 * fields that decide framing, and chunked framing. Called by mb_conn only. Never allocates
 * and never reads past the length it is given. */
#include "bench/mb_resp.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* Header blocks may not exceed what fits in a bench connection's receive buffer; this
 * bound only limits how far we scan for one line. */
#define MB_RESP_MAX_LINE 8192

static const char *const state_names[MB_RESP_STATE_COUNT] = {
    [MB_RESP_STATE_HEAD] = "head",
    [MB_RESP_STATE_BODY_LENGTH] = "body",
    [MB_RESP_STATE_CHUNK_SIZE] = "chunk-size",
    [MB_RESP_STATE_CHUNK_DATA] = "chunk-data",
    [MB_RESP_STATE_CHUNK_CRLF] = "chunk-crlf",
    [MB_RESP_STATE_TRAILERS] = "trailers",
    [MB_RESP_STATE_BODY_EOF] = "body-until-close",
    [MB_RESP_STATE_DONE] = "done",
};

const char *mb_resp_state_name(enum mb_resp_state s)
{
    if ((unsigned)s >= MB_RESP_STATE_COUNT)
        return "invalid";
    return state_names[s];
}

void mb_resp_init(struct mb_resp *r, bool head_only)
{
    memset(r, 0, sizeof(*r));
    r->state = MB_RESP_STATE_HEAD;
    r->head_only = head_only;
    r->keep_alive = true;
}

bool mb_resp_is_done(const struct mb_resp *r)
{
    return r->state == MB_RESP_STATE_DONE;
}

/* find_line returns the length of the line at `p` including its LF, or 0 if no LF occurs
 * in the first min(len, limit) bytes. `*content` gets the length without CR LF. */
static size_t find_line(const uint8_t *p, size_t len, size_t limit, size_t *content)
{
    const uint8_t *nl;

    if (len > limit)
        len = limit;
    nl = memchr(p, '\n', len);
    if (nl == NULL)
        return 0;
    *content = (size_t)(nl - p);
    if (*content > 0 && p[*content - 1] == '\r')
        (*content)--;
    return (size_t)(nl - p) + 1;
}

static bool is_tchar(uint8_t c)
{
    /* RFC 9110 §5.6.2 token characters */
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* trim strips optional whitespace around [*v, *v + *n). */
static void trim(const uint8_t **v, size_t *n)
{
    while (*n > 0 && is_ows((*v)[0])) {
        (*v)++;
        (*n)--;
    }
    while (*n > 0 && is_ows((*v)[*n - 1]))
        (*n)--;
}

/* token_eq compares [p, p + n) to the lower-case string `lit`, ignoring case. */
static bool token_eq(const uint8_t *p, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp((const char *)p, lit, n) == 0;
}

/* list_has_token returns true if the comma-separated list `v` has a member `tok`; when
 * `last_only` is set only the final member counts (Transfer-Encoding, RFC 9112 §6.3). */
static bool list_has_token(const uint8_t *v, size_t n, const char *tok, bool last_only)
{
    bool found = false;

    while (n > 0) {
        const uint8_t *comma = memchr(v, ',', n);
        size_t item = comma != NULL ? (size_t)(comma - v) : n;
        const uint8_t *iv = v;
        size_t in = item;

        trim(&iv, &in);
        if (in > 0) {
            found = token_eq(iv, in, tok);
            if (found && !last_only)
                return true;
        }
        if (comma == NULL)
            break;
        v += item + 1;
        n -= item + 1;
    }
    return found;
}

/* parse_u64 parses a non-empty decimal number with overflow checking. */
static int parse_u64(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0)
        return -EPROTO;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EPROTO;
        if (v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
            return -EPROTO;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return 0;
}

struct head_fields {
    bool has_length, chunked, has_te, conn_close, conn_keep_alive;
    uint64_t length;
};

/* parse_field interprets one header line that matters for framing. */
static int parse_field(const uint8_t *line, size_t n, struct head_fields *f, const char **why)
{
    const uint8_t *colon = memchr(line, ':', n);
    const uint8_t *v;
    size_t name_len, vn;
    uint64_t len;

    if (colon == NULL || colon == line) {
        *why = "malformed header line";
        return -EPROTO;
    }
    name_len = (size_t)(colon - line);
    for (size_t i = 0; i < name_len; i++) {
        if (!is_tchar(line[i])) {
            *why = "invalid header name"; /* includes space before colon, RFC 9112 §5.1 */
            return -EPROTO;
        }
    }
    v = colon + 1;
    vn = n - name_len - 1;
    trim(&v, &vn);
    if (token_eq(line, name_len, "content-length")) {
        if (parse_u64(v, vn, &len) != 0) {
            *why = "invalid Content-Length";
            return -EPROTO;
        }
        if (f->has_length && f->length != len) {
            *why = "conflicting Content-Length headers";
            return -EPROTO;
        }
        f->has_length = true;
        f->length = len;
    } else if (token_eq(line, name_len, "transfer-encoding")) {
        f->has_te = true;
        f->chunked = list_has_token(v, vn, "chunked", true);
    } else if (token_eq(line, name_len, "connection")) {
        if (list_has_token(v, vn, "close", false))
            f->conn_close = true;
        if (list_has_token(v, vn, "keep-alive", false))
            f->conn_keep_alive = true;
    }
    return 0;
}

/* parse_status parses "HTTP/1.x NNN[ reason]"; sets `*http10` for HTTP/1.0. */
static int parse_status(const uint8_t *line, size_t n, int *status, bool *http10,
                        const char **why)
{
    if (n < 12 || memcmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ') {
        *why = "malformed status line";
        return -EPROTO;
    }
    for (int i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9') {
            *why = "malformed status code";
            return -EPROTO;
        }
    }
    if (n > 12 && line[12] != ' ') {
        *why = "malformed status line";
        return -EPROTO;
    }
    *status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (*status < 100) {
        *why = "status code below 100";
        return -EPROTO;
    }
    *http10 = line[7] == '0';
    return 0;
}

/* feed_head parses a whole head if `buf` holds one; returns bytes consumed or 0. */
static ssize_t feed_head(struct mb_resp *r, const uint8_t *buf, size_t len, const char **why)
{
    struct head_fields f;
    size_t off, line_len, content;
    bool http10 = false;
    int status = 0, err;

    memset(&f, 0, sizeof(f));
    line_len = find_line(buf, len, MB_RESP_MAX_LINE, &content);
    if (line_len == 0)
        goto incomplete_line;
    err = parse_status(buf, content, &status, &http10, why);
    if (err)
        return err;
    off = line_len;
    for (;;) {
        line_len = find_line(buf + off, len - off, MB_RESP_MAX_LINE, &content);
        if (line_len == 0) {
            if (len - off >= MB_RESP_MAX_LINE)
                goto too_long;
            return 0;
        }
        if (content == 0)
            break;
        if (is_ows(buf[off])) {
            *why = "obsolete header line folding"; /* RFC 9112 §5.2 */
            return -EPROTO;
        }
        err = parse_field(buf + off, content, &f, why);
        if (err)
            return err;
        off += line_len;
    }
    off += line_len;

    r->status = status;
    r->head_bytes = off;
    r->keep_alive = http10 ? f.conn_keep_alive && !f.conn_close : !f.conn_close;
    if (status >= 100 && status < 200 && status != 101) {
        /* Interim response (RFC 9110 §15.2): the final one follows. */
        bool head_only = r->head_only;

        mb_resp_init(r, head_only);
        return (ssize_t)off;
    }
    if (r->head_only || status == 204 || status == 304 || status == 101) {
        r->state = MB_RESP_STATE_DONE;
    } else if (f.has_te) {
        /* RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; a body that is not
         * chunked-last is delimited by close, and the connection cannot be reused after
         * a message that carried both. */
        if (f.has_length)
            r->keep_alive = false;
        if (f.chunked) {
            r->state = MB_RESP_STATE_CHUNK_SIZE;
        } else {
            r->keep_alive = false;
            r->state = MB_RESP_STATE_BODY_EOF;
        }
    } else if (f.has_length) {
        r->remaining = f.length;
        r->state = f.length == 0 ? MB_RESP_STATE_DONE : MB_RESP_STATE_BODY_LENGTH;
    } else {
        r->keep_alive = false;
        r->state = MB_RESP_STATE_BODY_EOF;
    }
    return (ssize_t)off;

incomplete_line:
    if (len >= MB_RESP_MAX_LINE)
        goto too_long;
    return 0;
too_long:
    *why = "response head line too long";
    return -EMSGSIZE;
}

/* feed_chunk_size parses "1*HEXDIG [ chunk-ext ] CRLF" (RFC 9112 §7.1). */
static ssize_t feed_chunk_size(struct mb_resp *r, const uint8_t *buf, size_t len,
                               const char **why)
{
    size_t content, line_len = find_line(buf, len, MB_RESP_MAX_CHUNK_LINE, &content);
    uint64_t v = 0;
    size_t i = 0;

    if (line_len == 0) {
        if (len >= MB_RESP_MAX_CHUNK_LINE) {
            *why = "chunk-size line too long";
            return -EMSGSIZE;
        }
        return 0;
    }
    for (; i < content; i++) {
        uint8_t c = buf[i];
        unsigned d;

        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            break;
        if (v >> 60) {
            *why = "chunk size overflows";
            return -EPROTO;
        }
        v = v << 4 | d;
    }
    if (i == 0 || (i < content && buf[i] != ';' && !is_ows(buf[i]))) {
        *why = "malformed chunk size";
        return -EPROTO;
    }
    if (v == 0) {
        r->state = MB_RESP_STATE_TRAILERS;
    } else {
        r->remaining = v;
        r->state = MB_RESP_STATE_CHUNK_DATA;
    }
    return (ssize_t)line_len;
}

ssize_t mb_resp_feed(struct mb_resp *r, const uint8_t *buf, size_t len, const char **why)
{
    size_t off = 0;

    while (off < len && r->state != MB_RESP_STATE_DONE) {
        size_t avail = len - off, n, content;
        ssize_t got;

        switch (r->state) {
        case MB_RESP_STATE_HEAD:
            got = feed_head(r, buf + off, avail, why);
            if (got <= 0)
                return got < 0 ? got : (ssize_t)off;
            off += (size_t)got;
            break;
        case MB_RESP_STATE_BODY_LENGTH:
        case MB_RESP_STATE_CHUNK_DATA:
            n = avail < r->remaining ? avail : (size_t)r->remaining;
            r->remaining -= n;
            r->body_bytes += n;
            off += n;
            if (r->remaining == 0)
                r->state = r->state == MB_RESP_STATE_BODY_LENGTH ? MB_RESP_STATE_DONE
                                                                 : MB_RESP_STATE_CHUNK_CRLF;
            break;
        case MB_RESP_STATE_CHUNK_SIZE:
            got = feed_chunk_size(r, buf + off, avail, why);
            if (got <= 0)
                return got < 0 ? got : (ssize_t)off;
            off += (size_t)got;
            break;
        case MB_RESP_STATE_CHUNK_CRLF:
            n = find_line(buf + off, avail, 2, &content);
            if (n == 0) {
                if (avail >= 2 || buf[off] != '\r') {
                    *why = "missing CRLF after chunk data";
                    return -EPROTO;
                }
                return (ssize_t)off;
            }
            if (content != 0) {
                *why = "missing CRLF after chunk data";
                return -EPROTO;
            }
            off += n;
            r->state = MB_RESP_STATE_CHUNK_SIZE;
            break;
        case MB_RESP_STATE_TRAILERS:
            n = find_line(buf + off, avail, MB_RESP_MAX_LINE, &content);
            if (n == 0) {
                if (avail >= MB_RESP_MAX_LINE) {
                    *why = "trailer line too long";
                    return -EMSGSIZE;
                }
                return (ssize_t)off;
            }
            off += n;
            if (content == 0)
                r->state = MB_RESP_STATE_DONE;
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
        r->state = MB_RESP_STATE_DONE;
        return 0;
    }
    if (r->state == MB_RESP_STATE_DONE)
        return 0;
    *why = r->state == MB_RESP_STATE_HEAD ? "connection closed before response head"
                                          : "connection closed in response body";
    return -EPIPE;
}
