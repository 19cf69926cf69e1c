/* h1_parse.c - strict, zero-copy HTTP/1.x head parser, body framing rules and chunked decoder.
 * Owns the HTTP/1.x grammar (RFC 9112) and its request-smuggling defences; callers get
 * slices of their own buffers. Never allocates, never blocks, keeps no global state. */
#include "shared/h1_parse.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "shared/target_parse.h"

/* ---- character classes (ASCII only, no locale) ------------------------------------- */

/* Byte classes, one lookup per byte on the hot path (nginx and picohttpparser do the same).
 * H1_C_TCHAR: tchar (RFC 9110 §5.6.2). H1_C_FIELD: allowed inside a field value: VCHAR,
 * obs-text, SP, HTAB (RFC 9110 §5.5). H1_C_TARGET: allowed in a request-target: VCHAR. */
enum { H1_C_TCHAR = 1, H1_C_FIELD = 2, H1_C_TARGET = 4 };

#define H1_C_VCHAR (H1_C_FIELD | H1_C_TARGET)
#define H1_C_TOKEN (H1_C_TCHAR | H1_C_VCHAR)

/* clang-format off */
static const uint8_t h1_class[256] = {
    ['\t'] = H1_C_FIELD,
    [' '] = H1_C_FIELD,
    ['!'] = H1_C_TOKEN, ['"'] = H1_C_VCHAR, ['#'] = H1_C_TOKEN, ['$'] = H1_C_TOKEN,
    ['%'] = H1_C_TOKEN, ['&'] = H1_C_TOKEN, ['\''] = H1_C_TOKEN, ['('] = H1_C_VCHAR,
    [')'] = H1_C_VCHAR, ['*'] = H1_C_TOKEN, ['+'] = H1_C_TOKEN, [','] = H1_C_VCHAR,
    ['-'] = H1_C_TOKEN, ['.'] = H1_C_TOKEN, ['/'] = H1_C_VCHAR,
    ['0' ... '9'] = H1_C_TOKEN,
    [':'] = H1_C_VCHAR, [';'] = H1_C_VCHAR, ['<'] = H1_C_VCHAR, ['='] = H1_C_VCHAR,
    ['>'] = H1_C_VCHAR, ['?'] = H1_C_VCHAR, ['@'] = H1_C_VCHAR,
    ['A' ... 'Z'] = H1_C_TOKEN,
    ['['] = H1_C_VCHAR, ['\\'] = H1_C_VCHAR, [']'] = H1_C_VCHAR, ['^'] = H1_C_TOKEN,
    ['_'] = H1_C_TOKEN, ['`'] = H1_C_TOKEN,
    ['a' ... 'z'] = H1_C_TOKEN,
    ['{'] = H1_C_VCHAR, ['|'] = H1_C_TOKEN, ['}'] = H1_C_VCHAR, ['~'] = H1_C_TOKEN,
    [0x80 ... 0xff] = H1_C_FIELD,
};
/* clang-format on */

static bool h1_is_tchar(uint8_t c)
{
    return (h1_class[c] & H1_C_TCHAR) != 0;
}

static bool h1_is_field_byte(uint8_t c)
{
    return (h1_class[c] & H1_C_FIELD) != 0;
}

/* Word-at-a-time scanning of values and targets, eight bytes per step, as picohttpparser
 * does with SSE4.2 but portable. Each test is exact for "some byte of the word matches"; the
 * byte loop then finds which one. Loads never pass `end`. */
#define H1_ONES 0x0101010101010101ull
#define H1_HIGHS 0x8080808080808080ull

static uint64_t h1_load64(const uint8_t *p)
{
    uint64_t w;

    memcpy(&w, p, sizeof(w));
    return w;
}

/* bytes < n for n <= 128 (bytes >= 0x80 never count) */
static uint64_t h1_word_less(uint64_t w, uint8_t n)
{
    return (w - H1_ONES * n) & ~w & H1_HIGHS;
}

static uint64_t h1_word_has(uint64_t w, uint8_t v)
{
    uint64_t x = w ^ (H1_ONES * v);

    return (x - H1_ONES) & ~x & H1_HIGHS;
}

/* h1_skip_field_bytes returns the offset of the first byte in [p, end) that cannot be in a
 * field value (a CTL other than HTAB, or DEL), or `end`. */
static size_t h1_skip_field_bytes(const uint8_t *b, size_t p, size_t end)
{
    for (;;) {
        size_t stop;

        while (end - p >= 8) {
            uint64_t w = h1_load64(b + p);

            if ((h1_word_less(w, 0x20) | h1_word_has(w, 0x7f)) != 0)
                break;
            p += 8;
        }
        /* a word with a HTAB lands here too: check it byte by byte, then go on */
        stop = end - p >= 8 ? p + 8 : end;
        while (p < stop && (h1_class[b[p]] & H1_C_FIELD) != 0)
            p++;
        if (p < stop || p == end)
            return p;
    }
}

/* h1_skip_target_bytes returns the offset of the first byte in [p, end) that is not VCHAR
 * (RFC 9112 §3.2: no SP, CTL or non-ASCII in a request-target), or `end`. */
static size_t h1_skip_target_bytes(const uint8_t *b, size_t p, size_t end)
{
    while (end - p >= 8) {
        uint64_t w = h1_load64(b + p);

        if ((h1_word_less(w, 0x21) | h1_word_has(w, 0x7f) | (w & H1_HIGHS)) != 0)
            break;
        p += 8;
    }
    while (p < end && (h1_class[b[p]] & H1_C_TARGET) != 0)
        p++;
    return p;
}

static uint8_t h1_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

bool h1_name_ieq(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (a_len != b_len)
        return false;
    for (size_t i = 0; i < a_len; i++)
        if (h1_lower((uint8_t)a[i]) != h1_lower((uint8_t)b[i]))
            return false;
    return true;
}

static bool h1_ieq(const char *a, size_t a_len, const char *b)
{
    return h1_name_ieq(a, a_len, b, strlen(b));
}

/* ---- small public helpers ------------------------------------------------------------ */

int h1_err_status(enum h1_err e)
{
    switch (e) {
    case H1_ERR_NONE:
        return 0;
    case H1_ERR_URI_TOO_LONG:
        return 414;
    case H1_ERR_TOO_LARGE:
    case H1_ERR_TOO_MANY_HEADERS:
        return 431;
    case H1_ERR_NOT_IMPLEMENTED:
        return 501;
    case H1_ERR_VERSION:
        return 505;
    case H1_ERR_MALFORMED:
    case H1_ERR_COUNT:
        break;
    }
    return 400;
}

/* clang-format off */
const char *h1_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
/* clang-format on */

const char *h1_err_name(enum h1_err e)
{
    switch (e) {
    case H1_ERR_NONE:
        return "none";
    case H1_ERR_MALFORMED:
        return "malformed";
    case H1_ERR_URI_TOO_LONG:
        return "uri-too-long";
    case H1_ERR_TOO_LARGE:
        return "header-too-large";
    case H1_ERR_TOO_MANY_HEADERS:
        return "too-many-headers";
    case H1_ERR_NOT_IMPLEMENTED:
        return "not-implemented";
    case H1_ERR_VERSION:
        return "version-not-supported";
    case H1_ERR_COUNT:
        break;
    }
    return "unknown";
}

const char *h1_body_name(enum h1_body b)
{
    switch (b) {
    case H1_BODY_NONE:
        return "none";
    case H1_BODY_LENGTH:
        return "length";
    case H1_BODY_CHUNKED:
        return "chunked";
    case H1_BODY_CLOSE:
        return "close";
    case H1_BODY_TUNNEL:
        return "tunnel";
    }
    return "unknown";
}

ssize_t h1_header_find(const struct h1_header *headers, size_t num_headers, const char *name,
                       size_t from)
{
    for (size_t i = from; i < num_headers; i++)
        if (h1_header_name_is(&headers[i], name))
            return (ssize_t)i;
    return -1;
}

bool h1_header_is_hop_by_hop(const char *name, size_t name_len)
{
    /* by length first: most fields a relay sees have a length no hop-by-hop name has */
    switch (name_len) {
    case 2:
        return h1_name_ieq(name, name_len, "te", 2);
    case 7:
        return h1_name_ieq(name, name_len, "trailer", 7) ||
               h1_name_ieq(name, name_len, "upgrade", 7);
    case 10:
        return h1_name_ieq(name, name_len, "connection", 10) ||
               h1_name_ieq(name, name_len, "keep-alive", 10);
    case 16:
        return h1_name_ieq(name, name_len, "proxy-connection", 16);
    case 17:
        return h1_name_ieq(name, name_len, "transfer-encoding", 17);
    case 18:
        return h1_name_ieq(name, name_len, "proxy-authenticate", 18);
    case 19:
        return h1_name_ieq(name, name_len, "proxy-authorization", 19);
    default:
        return false;
    }
}

/* h1_list_next walks a comma-separated list (RFC 9110 §5.6.1): it returns the next element
 * of value[*pos, len) with optional whitespace trimmed, skipping empty elements, in
 * `*elem`/`*elem_len`. Returns false at the end of the list. */
static bool h1_list_next(const char *value, size_t len, size_t *pos, const char **elem,
                         size_t *elem_len)
{
    size_t i = *pos;

    while (i < len) {
        size_t start, stop;

        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        if (i == len)
            break;
        start = i;
        while (i < len && value[i] != ',')
            i++;
        stop = i;
        while (stop > start && (value[stop - 1] == ' ' || value[stop - 1] == '\t'))
            stop--;
        *pos = i;
        *elem = value + start;
        *elem_len = stop - start;
        return true;
    }
    *pos = len;
    return false;
}

bool h1_token_list_has(const char *value, size_t value_len, const char *token)
{
    size_t pos = 0, elem_len;
    const char *elem;

    while (h1_list_next(value, value_len, &pos, &elem, &elem_len))
        if (h1_ieq(elem, elem_len, token))
            return true;
    return false;
}

/* ---- head scanning ----------------------------------------------------------------- */

/* struct h1_scan is the state of one head parse. Positions are offsets into `b`. */
struct h1_scan {
    const uint8_t *b;
    size_t len;      /* bytes available */
    size_t max_head; /* the head must be complete within this many bytes */
    size_t line_end; /* offset where an unfinished request line is too long, or SIZE_MAX */
    size_t end;      /* current bound: min(len, max_head, line_end) */
    bool is_request;
    bool bare_lf; /* a line ended in a lone LF */
    enum h1_err err;
    const char *why;
};

static size_t h1_min(size_t a, size_t b)
{
    return a < b ? a : b;
}

static void h1_scan_set_line_limit(struct h1_scan *s, size_t line_end)
{
    s->line_end = line_end;
    s->end = h1_min(h1_min(s->len, s->max_head), line_end);
}

static ssize_t h1_fail(struct h1_scan *s, int code, enum h1_err err, const char *why)
{
    s->err = err;
    s->why = why;
    return code;
}

static ssize_t h1_malformed(struct h1_scan *s, const char *why)
{
    return h1_fail(s, -EPROTO, H1_ERR_MALFORMED, why);
}

/* h1_eof decides what running into s->end means: a limit was hit, or more data is needed. */
static ssize_t h1_eof(struct h1_scan *s)
{
    if (s->end == s->line_end)
        return h1_fail(s, -EMSGSIZE, H1_ERR_URI_TOO_LONG, "request line too long");
    if (s->end == s->max_head)
        return h1_fail(s, -EMSGSIZE, H1_ERR_TOO_LARGE,
                       s->is_request ? "request header too large" : "response header too large");
    return -EAGAIN;
}

/* h1_expect_crlf checks for a line end at *pos (CRLF, or a lone LF) and steps over it. RFC
 * 9112 §2.2: a recipient MAY recognise a single LF as a line terminator and ignore a
 * preceding CR; testssl.sh, netcat users and old scripts send LF-only heads, and nginx and
 * HAProxy accept them. A CR not followed by LF stays malformed (bare CR). Heads only: the
 * chunked framing keeps its own strict CRLF rules. `why` names the line for the generic
 * error. */
static ssize_t h1_expect_crlf(struct h1_scan *s, size_t *pos, const char *why)
{
    size_t p = *pos;

    if (p == s->end)
        return h1_eof(s);
    if (s->b[p] == '\n') {
        s->bare_lf = true;
        *pos = p + 1;
        return 0;
    }
    if (s->b[p] != '\r')
        return h1_malformed(s, why);
    if (p + 1 == s->end)
        return h1_eof(s);
    if (s->b[p + 1] != '\n')
        return h1_malformed(s, "bare CR");
    *pos = p + 2;
    return 0;
}

/* h1_parse_version reads "HTTP/1.0" or "HTTP/1.1" at *pos (RFC 9112 §2.3: case-sensitive). */
static ssize_t h1_parse_version(struct h1_scan *s, size_t *pos, int *minor)
{
    static const char name[] = "HTTP/";
    size_t p = *pos;
    uint8_t major, dot, min;

    for (size_t i = 0; i < sizeof(name) - 1; i++, p++) {
        if (p == s->end)
            return h1_eof(s);
        if (s->b[p] != (uint8_t)name[i])
            return h1_malformed(s, "invalid HTTP version");
    }
    if (p == s->end)
        return h1_eof(s);
    major = s->b[p++];
    if (p == s->end)
        return h1_eof(s);
    dot = s->b[p++];
    if (p == s->end)
        return h1_eof(s);
    min = s->b[p++];
    if (major < '0' || major > '9' || dot != '.' || min < '0' || min > '9')
        return h1_malformed(s, "invalid HTTP version");
    if (major != '1' || (min != '0' && min != '1'))
        return h1_fail(s, -EPROTO, H1_ERR_VERSION, "unsupported HTTP version");
    *minor = min - '0';
    *pos = p;
    return 0;
}

/* h1_parse_fields reads field lines and the empty line that ends the head, from *pos.
 * RFC 9112 §5: no whitespace before the colon, no obs-fold, values without CTLs. */
static ssize_t h1_parse_fields(struct h1_scan *s, size_t *pos, struct h1_header *headers,
                               size_t max_headers, size_t *num_headers)
{
    const uint8_t *b = s->b;
    const size_t end = s->end;
    size_t p = *pos, n = 0;

    if (max_headers > H1_MAX_HEADERS)
        max_headers = H1_MAX_HEADERS;
    for (;;) {
        size_t name_start, name_end, value_start, value_stop;
        uint8_t c;
        ssize_t rc;

        if (p == end)
            return h1_eof(s);
        c = b[p];
        if (c == '\r' || c == '\n') {
            rc = h1_expect_crlf(s, &p, "invalid header line");
            if (rc != 0)
                return rc;
            break;
        }
        if (c == ' ' || c == '\t')
            return h1_malformed(s, "obs-fold or whitespace before a header line");
        name_start = p;
        while (p < end && h1_is_tchar(b[p]))
            p++;
        if (p == end)
            return h1_eof(s);
        c = b[p];
        if (c != ':') {
            if (c == ' ' || c == '\t')
                return h1_malformed(s, "whitespace between header name and colon");
            if (c == '\r' || c == '\n')
                return h1_malformed(s, "header line without colon");
            return h1_malformed(s, "invalid character in header name");
        }
        if (p == name_start)
            return h1_malformed(s, "empty header name");
        name_end = p++;
        while (p < end && (b[p] == ' ' || b[p] == '\t')) /* leading OWS */
            p++;
        value_start = p;
        p = h1_skip_field_bytes(b, p, end);
        if (p == end)
            return h1_eof(s);
        if (b[p] != '\r' && b[p] != '\n')
            return h1_malformed(s, "control character in header value");
        value_stop = p;
        while (value_stop > value_start && (b[value_stop - 1] == ' ' || b[value_stop - 1] == '\t'))
            value_stop--; /* trailing OWS */
        rc = h1_expect_crlf(s, &p, "invalid header line");
        if (rc != 0)
            return rc;
        if (n == max_headers)
            return h1_fail(s, -EMSGSIZE, H1_ERR_TOO_MANY_HEADERS, "too many headers");
        headers[n].name = (const char *)s->b + name_start;
        headers[n].name_len = name_end - name_start;
        headers[n].value = (const char *)s->b + value_start;
        headers[n].value_len = value_stop - value_start;
        n++;
    }
    *pos = p;
    *num_headers = n;
    return 0;
}

/* ---- framing analysis -------------------------------------------------------------- */

/* h1_parse_content_length parses a Content-Length value: 1*DIGIT, at most INT64_MAX. A list
 * ("5, 5") is rejected, as nginx does; equal repeated fields are merged by the caller. */
static int h1_parse_content_length(const char *v, size_t len, int64_t *out)
{
    uint64_t n = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)v[i];

        if (c < '0' || c > '9')
            return -1;
        if (n > ((uint64_t)INT64_MAX - (c - '0')) / 10)
            return -2;
        n = n * 10 + (c - '0');
    }
    *out = (int64_t)n;
    return 0;
}

/* struct h1_te summarises all Transfer-Encoding fields of a head, in order. */
struct h1_te {
    size_t codings;    /* transfer codings listed */
    size_t chunked;    /* how many of them are "chunked" */
    size_t unknown;    /* how many are something else */
    bool last_chunked; /* the final coding is "chunked" */
    bool invalid;      /* a coding is not a token, or "chunked" has parameters */
};

static void h1_te_add(struct h1_te *te, const char *value, size_t len)
{
    size_t pos = 0, elem_len;
    const char *elem;

    while (h1_list_next(value, len, &pos, &elem, &elem_len)) {
        size_t tok = 0;

        while (tok < elem_len && h1_is_tchar((uint8_t)elem[tok]))
            tok++;
        te->codings++;
        if (tok == 0) {
            te->invalid = true;
            continue;
        }
        if (tok != elem_len) {
            /* only transfer-parameters may follow the coding: OWS ";" ... */
            size_t i = tok;

            while (i < elem_len && (elem[i] == ' ' || elem[i] == '\t'))
                i++;
            if (i == elem_len || elem[i] != ';')
                te->invalid = true;
        }
        if (h1_ieq(elem, tok, "chunked")) {
            te->chunked++;
            te->last_chunked = true;
            if (tok != elem_len)
                te->invalid = true; /* chunked takes no parameters */
        } else {
            te->unknown++;
            te->last_chunked = false;
        }
    }
}

/* Fields that decide framing, found by length first so other fields cost one switch. */
enum h1_field {
    H1_FIELD_OTHER = 0,
    H1_FIELD_HOST,
    H1_FIELD_EXPECT,
    H1_FIELD_UPGRADE,
    H1_FIELD_CONNECTION,
    H1_FIELD_CONTENT_LENGTH,
    H1_FIELD_TRANSFER_ENCODING,
};

static enum h1_field h1_field_kind(const struct h1_header *h)
{
    switch (h->name_len) {
    case 4:
        return h1_header_name_is(h, "host") ? H1_FIELD_HOST : H1_FIELD_OTHER;
    case 6:
        return h1_header_name_is(h, "expect") ? H1_FIELD_EXPECT : H1_FIELD_OTHER;
    case 7:
        return h1_header_name_is(h, "upgrade") ? H1_FIELD_UPGRADE : H1_FIELD_OTHER;
    case 10:
        return h1_header_name_is(h, "connection") ? H1_FIELD_CONNECTION : H1_FIELD_OTHER;
    case 14:
        return h1_header_name_is(h, "content-length") ? H1_FIELD_CONTENT_LENGTH : H1_FIELD_OTHER;
    case 17:
        return h1_header_name_is(h, "transfer-encoding") ? H1_FIELD_TRANSFER_ENCODING
                                                         : H1_FIELD_OTHER;
    default:
        return H1_FIELD_OTHER;
    }
}

/* h1_analyse_fields derives the framing from the fields. For a request it also finds and
 * checks Host. Returns 0 or a parse error code with s->err / s->why set. */
static ssize_t h1_analyse_fields(struct h1_scan *s, const struct h1_header *headers, size_t n,
                                 int minor, struct h1_framing *f, const char **host,
                                 size_t *host_len)
{
    struct h1_te te = {0};
    bool has_te = false, conn_ka = false, conn_upgrade = false, upgrade_hdr = false;
    bool websocket = false;
    size_t hosts = 0;

    f->content_length = -1;
    f->chunked = false;
    f->has_te = false;
    f->conn_close = false;
    f->keep_alive = false;
    f->expect_continue = false;
    f->upgrade = false;
    f->websocket = false;
    for (size_t i = 0; i < n; i++) {
        const struct h1_header *h = &headers[i];
        enum h1_field kind = h1_field_kind(h);

        if (kind == H1_FIELD_OTHER)
            continue;
        if (kind == H1_FIELD_CONTENT_LENGTH) {
            int64_t v;
            int rc = h1_parse_content_length(h->value, h->value_len, &v);

            if (rc == -2)
                return h1_malformed(s, "Content-Length too large");
            if (rc != 0)
                return h1_malformed(s, "invalid Content-Length");
            if (f->content_length != -1 && f->content_length != v)
                return h1_malformed(s, "conflicting Content-Length headers");
            f->content_length = v;
        } else if (kind == H1_FIELD_TRANSFER_ENCODING) {
            has_te = true;
            h1_te_add(&te, h->value, h->value_len);
        } else if (kind == H1_FIELD_CONNECTION) {
            if (h1_token_list_has(h->value, h->value_len, "close"))
                f->conn_close = true;
            if (h1_token_list_has(h->value, h->value_len, "keep-alive"))
                conn_ka = true;
            if (h1_token_list_has(h->value, h->value_len, "upgrade"))
                conn_upgrade = true;
        } else if (kind == H1_FIELD_UPGRADE) {
            size_t pos = 0, elem_len;
            const char *elem;

            upgrade_hdr = true;
            /* protocol-name ["/" protocol-version], RFC 9110 §7.8 */
            while (h1_list_next(h->value, h->value_len, &pos, &elem, &elem_len)) {
                const char *slash = memchr(elem, '/', elem_len);

                if (h1_ieq(elem, slash != NULL ? (size_t)(slash - elem) : elem_len, "websocket"))
                    websocket = true;
            }
        } else if (s->is_request && kind == H1_FIELD_EXPECT) {
            /* RFC 9110 §10.1.1: ignored in HTTP/1.0 requests */
            if (minor == 1 && h1_ieq(h->value, h->value_len, "100-continue"))
                f->expect_continue = true;
        } else if (s->is_request && kind == H1_FIELD_HOST) {
            if (++hosts > 1)
                return h1_malformed(s, "duplicate Host header"); /* RFC 9112 §3.2 */
            *host = h->value;
            *host_len = h->value_len;
        }
    }

    if (has_te) {
        f->has_te = true;
        /* RFC 9112 §6.1: TE with CL may be smuggling; we do not guess which one wins */
        if (f->content_length != -1)
            return h1_malformed(s, "both Transfer-Encoding and Content-Length");
        /* RFC 9112 §6.1: an HTTP/1.0 message with TE has faulty framing */
        if (minor == 0)
            return h1_malformed(s, "Transfer-Encoding in an HTTP/1.0 message");
        if (te.codings == 0 || te.invalid)
            return h1_malformed(s, "invalid Transfer-Encoding");
        if (te.chunked > 1)
            return h1_malformed(s, "chunked applied more than once");
        if (s->is_request) {
            /* RFC 9112 §6.3 item 4: a request TE must end in chunked, else 400 */
            if (!te.last_chunked)
                return h1_malformed(s, "Transfer-Encoding does not end in chunked");
            /* RFC 9112 §6.1: a coding we do not understand is 501 */
            if (te.unknown > 0)
                return h1_fail(s, -EPROTO, H1_ERR_NOT_IMPLEMENTED, "unsupported transfer coding");
        }
        f->chunked = te.last_chunked;
    }

    if (minor == 1)
        f->keep_alive = !f->conn_close;
    else
        f->keep_alive = conn_ka && !f->conn_close;
    /* a response TE not ending in chunked is read until close (RFC 9112 §6.3 item 4) */
    if (has_te && !f->chunked)
        f->keep_alive = false;
    f->upgrade = conn_upgrade && upgrade_hdr;
    f->websocket = f->upgrade && websocket;
    return 0;
}

/* ---- request and response heads ---------------------------------------------------- */

ssize_t h1_parse_request(const uint8_t *buf, size_t len, size_t max_head, struct h1_request *req,
                         struct h1_header *headers, size_t max_headers, const char **why)
{
    struct h1_scan s = {
        .b = buf,
        .len = len,
        .max_head = max_head != 0 ? max_head : H1_HEAD_MAX_DEFAULT,
        .is_request = true,
        .err = H1_ERR_NONE,
    };
    size_t p = 0, start;
    ssize_t rc;
    uint8_t c;

    memset(req, 0, sizeof(*req));
    req->headers = headers;
    h1_scan_set_line_limit(&s, SIZE_MAX);

    /* RFC 9112 §2.2: ignore empty lines before the request line */
    for (;;) {
        if (p == s.end) {
            rc = h1_eof(&s);
            goto out;
        }
        if (s.b[p] != '\r' && s.b[p] != '\n')
            break;
        rc = h1_expect_crlf(&s, &p, "invalid request line");
        if (rc != 0)
            goto out;
    }
    s.bare_lf = false; /* skipped empty lines are not forwarded */

    h1_scan_set_line_limit(&s, p + H1_REQUEST_LINE_MAX + 2 < p ? SIZE_MAX
                                                               : p + H1_REQUEST_LINE_MAX + 2);
    /* method = token */
    start = p;
    while (p < s.end && h1_is_tchar(buf[p]))
        p++;
    if (p == s.end) {
        rc = h1_eof(&s);
        goto out;
    }
    c = buf[p];
    if (c != ' ' || p == start) {
        rc = h1_malformed(&s, "invalid method");
        goto out;
    }
    req->method = (const char *)buf + start;
    req->method_len = p - start;
    p++;

    /* request-target: visible ASCII up to a single SP (RFC 9112 §3.2) */
    start = p;
    p = h1_skip_target_bytes(buf, p, s.end);
    if (p == s.end) {
        rc = h1_eof(&s);
        goto out;
    }
    c = buf[p];
    if (c != ' ') {
        rc = h1_malformed(&s, c == '\r' || c == '\n' ? "request line without HTTP version"
                                                     : "invalid character in request-target");
        goto out;
    }
    if (p == start) {
        rc = h1_malformed(&s, "empty request-target");
        goto out;
    }
    req->target = (const char *)buf + start;
    req->target_len = p - start;
    p++;

    rc = h1_parse_version(&s, &p, &req->minor_version);
    if (rc != 0)
        goto out;
    rc = h1_expect_crlf(&s, &p, "invalid request line");
    if (rc != 0)
        goto out;

    h1_scan_set_line_limit(&s, SIZE_MAX);
    rc = h1_parse_fields(&s, &p, headers, max_headers, &req->num_headers);
    if (rc != 0)
        goto out;
    rc = h1_analyse_fields(&s, headers, req->num_headers, req->minor_version, &req->framing,
                           &req->host, &req->host_len);
    if (rc != 0)
        goto out;
    if (req->host == NULL && req->minor_version == 1 &&
        !h1_method_is(req->method, req->method_len, "CONNECT")) {
        rc = h1_malformed(&s, "missing Host header"); /* RFC 9112 §3.2 */
        goto out;
    }
    if (req->host != NULL && req->host_len > 0) {
        struct target t;
        const char *twhy;

        if (target_parse_host_port(req->host, req->host_len, 80, &t, &twhy) != 0) {
            rc = h1_malformed(&s, "invalid Host header");
            goto out;
        }
    }
    req->bare_lf = s.bare_lf;
    return (ssize_t)p;
out:
    req->bare_lf = s.bare_lf;
    req->err = s.err;
    if (rc != -EAGAIN)
        *why = s.why;
    return rc;
}

ssize_t h1_parse_response(const uint8_t *buf, size_t len, size_t max_head, struct h1_response *resp,
                          struct h1_header *headers, size_t max_headers, const char **why)
{
    struct h1_scan s = {
        .b = buf,
        .len = len,
        .max_head = max_head != 0 ? max_head : H1_HEAD_MAX_DEFAULT,
        .is_request = false,
        .err = H1_ERR_NONE,
    };
    size_t p = 0, start;
    ssize_t rc;
    int status = 0;

    memset(resp, 0, sizeof(*resp));
    resp->headers = headers;
    h1_scan_set_line_limit(&s, SIZE_MAX);

    rc = h1_parse_version(&s, &p, &resp->minor_version);
    if (rc != 0)
        goto out;
    /* SP 3DIGIT (RFC 9112 §4) */
    for (size_t i = 0; i < 4; i++, p++) {
        uint8_t c;

        if (p == s.end) {
            rc = h1_eof(&s);
            goto out;
        }
        c = s.b[p];
        if (i == 0) {
            if (c != ' ') {
                rc = h1_malformed(&s, "invalid status line");
                goto out;
            }
            continue;
        }
        if (c < '0' || c > '9' || (i == 1 && c == '0')) {
            rc = h1_malformed(&s, "invalid status code");
            goto out;
        }
        status = status * 10 + (c - '0');
    }
    resp->status = status;
    /* SP reason-phrase; a missing SP before an empty reason is tolerated */
    if (p == s.end) {
        rc = h1_eof(&s);
        goto out;
    }
    if (s.b[p] == ' ') {
        p++;
    } else if (s.b[p] != '\r' && s.b[p] != '\n') {
        rc = h1_malformed(&s, "invalid status code");
        goto out;
    }
    start = p;
    for (;;) {
        uint8_t c;

        if (p == s.end) {
            rc = h1_eof(&s);
            goto out;
        }
        c = s.b[p];
        if (c == '\r' || c == '\n')
            break;
        if (!h1_is_field_byte(c)) {
            rc = h1_malformed(&s, "control character in reason phrase");
            goto out;
        }
        p++;
    }
    resp->reason = (const char *)buf + start;
    resp->reason_len = p - start;
    rc = h1_expect_crlf(&s, &p, "invalid status line");
    if (rc != 0)
        goto out;

    rc = h1_parse_fields(&s, &p, headers, max_headers, &resp->num_headers);
    if (rc != 0)
        goto out;
    rc = h1_analyse_fields(&s, headers, resp->num_headers, resp->minor_version, &resp->framing,
                           NULL, NULL);
    if (rc != 0)
        goto out;
    resp->bare_lf = s.bare_lf;
    return (ssize_t)p;
out:
    resp->bare_lf = s.bare_lf;
    resp->err = s.err;
    if (rc != -EAGAIN)
        *why = s.why;
    return rc;
}

/* ---- body framing ------------------------------------------------------------------ */

enum h1_body h1_request_body(const struct h1_request *req)
{
    if (req->framing.chunked)
        return H1_BODY_CHUNKED;
    if (req->framing.content_length > 0)
        return H1_BODY_LENGTH;
    return H1_BODY_NONE;
}

enum h1_body h1_response_body(const char *req_method, size_t req_method_len,
                              const struct h1_response *resp)
{
    int st = resp->status;

    /* RFC 9112 §6.3 items 1-2 */
    if (st == 101)
        return H1_BODY_TUNNEL;
    if (h1_method_is(req_method, req_method_len, "CONNECT") && st >= 200 && st < 300)
        return H1_BODY_TUNNEL;
    if (st < 200 || st == 204 || st == 304 || h1_method_is(req_method, req_method_len, "HEAD"))
        return H1_BODY_NONE;
    /* items 3-6 */
    if (resp->framing.chunked)
        return H1_BODY_CHUNKED;
    if (resp->framing.has_te)
        return H1_BODY_CLOSE;
    if (resp->framing.content_length > 0)
        return H1_BODY_LENGTH;
    if (resp->framing.content_length == 0)
        return H1_BODY_NONE;
    return H1_BODY_CLOSE;
}

/* ---- chunked decoder (RFC 9112 §7.1) ------------------------------------------------- */

void h1_chunk_decoder_init(struct h1_chunk_decoder *d, size_t max_trailer)
{
    memset(d, 0, sizeof(*d));
    d->_state = H1_CHUNK_SIZE_START;
    d->_max_trailer = max_trailer != 0 ? max_trailer : H1_HEAD_MAX_DEFAULT;
}

bool h1_chunk_decoder_is_done(const struct h1_chunk_decoder *d)
{
    return d->_state == H1_CHUNK_DONE;
}

uint64_t h1_chunk_decoder_payload(const struct h1_chunk_decoder *d)
{
    return d->_payload_total;
}

static ssize_t h1_chunk_fail(struct h1_chunk_decoder *d, int err, const char *why)
{
    d->_state = H1_CHUNK_ERROR;
    d->_err = err;
    d->_why = why;
    return err;
}

static int h1_hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = h1_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* h1_chunk_step advances `d` over one framing byte `c`. Returns 0 or an error. */
static ssize_t h1_chunk_step(struct h1_chunk_decoder *d, uint8_t c)
{
    int hex;

    switch (d->_state) {
    case H1_CHUNK_SIZE_START:
        hex = h1_hex_value(c);
        if (hex < 0)
            return h1_chunk_fail(
                d, -EPROTO, c == '\r' || c == '\n' ? "empty chunk size" : "invalid chunk size");
        d->_remaining = (uint64_t)hex;
        d->_line_len = 1;
        d->_state = H1_CHUNK_SIZE;
        return 0;
    case H1_CHUNK_SIZE:
        hex = h1_hex_value(c);
        if (hex >= 0) {
            if (d->_remaining > ((uint64_t)INT64_MAX >> 4))
                return h1_chunk_fail(d, -EPROTO, "chunk size too large");
            d->_remaining = (d->_remaining << 4) | (uint64_t)hex;
            break;
        }
        if (c == ';') {
            d->_state = H1_CHUNK_EXT;
        } else if (c == ' ' || c == '\t') {
            d->_state = H1_CHUNK_SIZE_WS;
        } else if (c == '\r') {
            d->_state = H1_CHUNK_SIZE_LF;
        } else if (c == '\n') {
            return h1_chunk_fail(d, -EPROTO, "bare LF in chunked framing");
        } else {
            return h1_chunk_fail(d, -EPROTO, "invalid chunk size");
        }
        break;
    case H1_CHUNK_SIZE_WS:
        /* BWS before ';' only (RFC 9112 §7.1.1); "5 \r\n" is rejected */
        if (c == ';')
            d->_state = H1_CHUNK_EXT;
        else if (c != ' ' && c != '\t')
            return h1_chunk_fail(d, -EPROTO, "invalid chunk size");
        break;
    case H1_CHUNK_EXT:
        if (c == '\r')
            d->_state = H1_CHUNK_SIZE_LF;
        else if (c == '\n')
            return h1_chunk_fail(d, -EPROTO, "bare LF in chunked framing");
        else if (!h1_is_field_byte(c))
            return h1_chunk_fail(d, -EPROTO, "control character in chunk extension");
        break;
    case H1_CHUNK_SIZE_LF:
        if (c != '\n')
            return h1_chunk_fail(d, -EPROTO, "bare CR in chunked framing");
        d->_line_len = 0;
        d->_state = d->_remaining == 0 ? H1_CHUNK_TRAILER_START : H1_CHUNK_DATA;
        return 0;
    case H1_CHUNK_DATA_CR:
        if (c != '\r')
            return h1_chunk_fail(d, -EPROTO, "missing CRLF after chunk data");
        d->_state = H1_CHUNK_DATA_LF;
        return 0;
    case H1_CHUNK_DATA_LF:
        if (c != '\n')
            return h1_chunk_fail(d, -EPROTO, "bare CR in chunked framing");
        d->_state = H1_CHUNK_SIZE_START;
        return 0;
    case H1_CHUNK_TRAILER_START:
        if (c == '\r')
            d->_state = H1_CHUNK_END_LF;
        else if (h1_is_tchar(c))
            d->_state = H1_CHUNK_TRAILER_NAME;
        else if (c == ' ' || c == '\t')
            return h1_chunk_fail(d, -EPROTO, "obs-fold in trailer section");
        else if (c == '\n')
            return h1_chunk_fail(d, -EPROTO, "bare LF in chunked framing");
        else
            return h1_chunk_fail(d, -EPROTO, "invalid trailer field name");
        break;
    case H1_CHUNK_TRAILER_NAME:
        if (c == ':')
            d->_state = H1_CHUNK_TRAILER_VALUE;
        else if (c == ' ' || c == '\t')
            return h1_chunk_fail(d, -EPROTO, "whitespace between trailer name and colon");
        else if (!h1_is_tchar(c))
            return h1_chunk_fail(d, -EPROTO, "invalid trailer field name");
        break;
    case H1_CHUNK_TRAILER_VALUE:
        if (c == '\r')
            d->_state = H1_CHUNK_TRAILER_LF;
        else if (c == '\n')
            return h1_chunk_fail(d, -EPROTO, "bare LF in chunked framing");
        else if (!h1_is_field_byte(c))
            return h1_chunk_fail(d, -EPROTO, "control character in trailer value");
        break;
    case H1_CHUNK_TRAILER_LF:
        if (c != '\n')
            return h1_chunk_fail(d, -EPROTO, "bare CR in chunked framing");
        d->_state = H1_CHUNK_TRAILER_START;
        break;
    case H1_CHUNK_END_LF:
        if (c != '\n')
            return h1_chunk_fail(d, -EPROTO, "bare CR in chunked framing");
        d->_state = H1_CHUNK_DONE;
        break;
    case H1_CHUNK_DATA:
    case H1_CHUNK_DONE:
    case H1_CHUNK_ERROR:
    case H1_CHUNK_STATE_COUNT:
        return h1_chunk_fail(d, -EPROTO, "chunk decoder misuse");
    }
    /* size-line and trailer bounds */
    switch (d->_state) {
    case H1_CHUNK_SIZE:
    case H1_CHUNK_SIZE_WS:
    case H1_CHUNK_EXT:
        if (++d->_line_len > H1_CHUNK_LINE_MAX)
            return h1_chunk_fail(d, -EPROTO, "chunk size line too long");
        break;
    case H1_CHUNK_TRAILER_NAME:
    case H1_CHUNK_TRAILER_VALUE:
    case H1_CHUNK_TRAILER_LF:
    case H1_CHUNK_TRAILER_START:
    case H1_CHUNK_END_LF:
    case H1_CHUNK_DONE:
        if (++d->_trailer_len > d->_max_trailer)
            return h1_chunk_fail(d, -EMSGSIZE, "trailer section too large");
        break;
    default:
        break;
    }
    return 0;
}

ssize_t h1_chunk_decode(struct h1_chunk_decoder *d, const uint8_t *buf, size_t len,
                        size_t *data_off, size_t *data_len, const char **why)
{
    size_t p = 0;

    *data_off = 0;
    *data_len = 0;
    if (d->_state == H1_CHUNK_ERROR) {
        *why = d->_why;
        return d->_err;
    }
    while (p < len && d->_state != H1_CHUNK_DONE) {
        ssize_t rc;

        if (d->_state == H1_CHUNK_DATA) {
            size_t n = len - p;

            if ((uint64_t)n > d->_remaining)
                n = (size_t)d->_remaining;
            *data_off = p;
            *data_len = n;
            d->_remaining -= n;
            d->_payload_total += n;
            p += n;
            if (d->_remaining == 0)
                d->_state = H1_CHUNK_DATA_CR;
            return (ssize_t)p;
        }
        rc = h1_chunk_step(d, buf[p]);
        if (rc != 0) {
            *why = d->_why;
            return rc;
        }
        p++;
    }
    return (ssize_t)p;
}

ssize_t h1_chunk_decode_all(struct h1_chunk_decoder *d, const uint8_t *buf, size_t len,
                            uint64_t *payload, const char **why)
{
    size_t p = 0;

    for (;;) {
        size_t off, n;
        ssize_t rc = h1_chunk_decode(d, buf + p, len - p, &off, &n, why);

        if (rc < 0)
            return rc;
        *payload += n;
        p += (size_t)rc;
        if (p == len || h1_chunk_decoder_is_done(d))
            return (ssize_t)p;
    }
}
