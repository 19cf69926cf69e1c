/* mitmflow.c - see mitmflow.h. A flow is parsed in place: struct tn spans point into the
 * element's bytes and dictionaries are searched by key, so nothing is built but the record,
 * which is written with shared/har.h's JSON string and base64 writers. */
#include "master/mitmflow.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "shared/har.h"

/* struct tn is one tnetstring element: its payload and its type (',' bytes, ';' text, '#'
 * integer, '^' float, '!' boolean, '~' null, '}' dictionary, ']' list); type 0 = absent. */
struct tn {
    const uint8_t *p;
    size_t len;
    char type;
};

/* tn_parse reads the element at *cur (before `end`) into *out and moves *cur past it.
 * Returns false when it is not a well-formed element. */
static bool tn_parse(const uint8_t **cur, const uint8_t *end, struct tn *out)
{
    const uint8_t *p = *cur;
    size_t n = 0, digits = 0;

    while (p < end && *p >= '0' && *p <= '9') {
        if (++digits > 10)
            return false;
        n = n * 10 + (size_t)(*p - '0');
        p++;
    }
    if (digits == 0 || p >= end || *p != ':')
        return false;
    p++;
    if ((size_t)(end - p) < n + 1)
        return false;
    out->p = p;
    out->len = n;
    out->type = (char)p[n];
    if (out->type == '\0' || strchr(",;#^!~}]", out->type) == NULL)
        return false;
    *cur = p + n + 1;
    return true;
}

static bool tn_is_str(struct tn v)
{
    return v.type == ',' || v.type == ';';
}

/* tn_get returns the value of `key` in dictionary `d` (absent: type 0). */
static struct tn tn_get(struct tn d, const char *key)
{
    const uint8_t *cur = d.p, *end;
    size_t kl = strlen(key);
    struct tn k, v, none = {0};

    if (d.type != '}')
        return none; /* absent too: no pointer arithmetic on its NULL */
    end = d.p + d.len;
    while (cur < end) {
        if (!tn_parse(&cur, end, &k) || !tn_parse(&cur, end, &v))
            return none;
        if (tn_is_str(k) && k.len == kl && memcmp(k.p, key, kl) == 0)
            return v;
    }
    return none;
}

/* tn_item returns item `i` of list `l` (absent: type 0). */
static struct tn tn_item(struct tn l, size_t i)
{
    const uint8_t *cur = l.p, *end;
    struct tn v, none = {0};

    if (l.type != ']')
        return none;
    end = l.p + l.len;
    for (size_t k = 0; cur < end; k++) {
        if (!tn_parse(&cur, end, &v))
            return none;
        if (k == i)
            return v;
    }
    return none;
}

/* struct tn_iter walks a list's items in order (a list that is absent or not a list has
 * none). */
struct tn_iter {
    const uint8_t *cur, *end;
};

static void tn_iter_init(struct tn_iter *it, struct tn l)
{
    it->cur = l.type == ']' ? l.p : NULL;
    it->end = l.type == ']' ? l.p + l.len : NULL;
}

static bool tn_iter_next(struct tn_iter *it, struct tn *v)
{
    return it->cur != NULL && it->cur < it->end && tn_parse(&it->cur, it->end, v);
}

/* tn_num reads an integer or float element; false if it is neither (or not a number). */
static bool tn_num(struct tn v, double *out)
{
    char s[64], *e;

    if ((v.type != '#' && v.type != '^') || v.len == 0 || v.len >= sizeof(s))
        return false;
    memcpy(s, v.p, v.len);
    s[v.len] = '\0';
    *out = strtod(s, &e);
    return *e == '\0' && isfinite(*out); /* casts after range checks need a finite value */
}

static bool tn_eq(struct tn v, const char *s)
{
    return tn_is_str(v) && v.len == strlen(s) && memcmp(v.p, s, v.len) == 0;
}

static bool tn_true(struct tn v)
{
    return v.type == '!' && v.len == 4 && memcmp(v.p, "true", 4) == 0;
}

/* put_text writes `n` bytes as a JSON string (har_buf_json: invalid UTF-8 as U+FFFD), a NUL
 * byte as U+FFFD too: jansson, with which -r and -S read records, refuses \u0000. */
static void put_text(struct har_buf *b, const void *p, size_t n)
{
    uint8_t *copy;

    if (n == 0 || memchr(p, 0, n) == NULL) {
        har_buf_json(b, p, n);
        return;
    }
    copy = malloc(n);
    if (copy == NULL) {
        b->oom = true;
        return;
    }
    memcpy(copy, p, n);
    for (size_t i = 0; i < n; i++)
        if (copy[i] == 0)
            copy[i] = 0xFF; /* never valid UTF-8: written as U+FFFD */
    har_buf_json(b, copy, n);
    free(copy);
}

static void put_str_or_null(struct har_buf *b, struct tn v)
{
    if (tn_is_str(v))
        put_text(b, v.p, v.len);
    else
        har_buf_str(b, "null");
}

/* put_addr writes "address":..,"port":.. from a [host, port] list (or null, null). */
static void put_addr(struct har_buf *b, struct tn a)
{
    struct tn ip = tn_item(a, 0);
    double port;

    har_buf_str(b, "\"address\":");
    put_str_or_null(b, ip);
    if (tn_num(tn_item(a, 1), &port) && port >= 0 && port <= 65535)
        har_buf_printf(b, ",\"port\":%u", (unsigned)port);
    else
        har_buf_str(b, ",\"port\":null");
}

/* put_headers writes [[name, value], ...] as [{"name":..,"value":..}, ...]; returns false
 * when the list is not of that shape. */
static bool put_headers(struct har_buf *b, struct tn l)
{
    struct tn_iter it;
    struct tn h;
    bool first = true;

    har_buf_str(b, "[");
    if (l.type == ']') {
        for (tn_iter_init(&it, l); tn_iter_next(&it, &h);) {
            struct tn n = tn_item(h, 0), v = tn_item(h, 1);

            if (!tn_is_str(n) || !tn_is_str(v))
                return false;
            har_buf_str(b, first ? "{\"name\":" : ",{\"name\":");
            put_text(b, n.p, n.len);
            har_buf_str(b, ",\"value\":");
            put_text(b, v.p, v.len);
            har_buf_str(b, "}");
            first = false;
        }
    } else if (l.type != '~') {
        return false;
    }
    har_buf_str(b, "]");
    return true;
}

/* put_message_rest writes a request's or response's httpVersion, headers and bodySize and
 * closes its object; false when its headers are not a list of [name, value]. */
static bool put_message_rest(struct har_buf *b, struct tn m)
{
    struct tn content = tn_get(m, "content");

    har_buf_str(b, ",\"httpVersion\":");
    put_str_or_null(b, tn_get(m, "http_version"));
    har_buf_str(b, ",\"headers\":");
    if (!put_headers(b, tn_get(m, "headers")))
        return false;
    har_buf_printf(b, ",\"bodySize\":%zu}", tn_is_str(content) ? content.len : 0);
    return true;
}

/* host_field finds the first Host field of a [[name, value], ...] list. */
static struct tn host_field(struct tn l)
{
    struct tn_iter it;
    struct tn h, none = {0};

    for (tn_iter_init(&it, l); tn_iter_next(&it, &h);) {
        struct tn n = tn_item(h, 0);

        if (tn_is_str(n) && n.len == 4 && strncasecmp((const char *)n.p, "host", 4) == 0)
            return tn_item(h, 1);
    }
    return none;
}

/* put_url writes the request's URL as mitmd records it: the Host field's authority (or
 * HTTP/2's :authority), else host and port; sets *from_host when the authority came from the
 * request's own fields (the record then names the host the client addressed as target). */
static void put_url(struct har_buf *b, struct tn req, bool *from_host)
{
    struct tn scheme = tn_get(req, "scheme"), host = tn_get(req, "host");
    struct tn path = tn_get(req, "path"), auth = host_field(tn_get(req, "headers"));
    struct har_buf u = {0};
    bool tls = tn_eq(scheme, "https");
    double port = 0;

    (void)tn_num(tn_get(req, "port"), &port);
    if (!(tn_is_str(auth) && auth.len > 0))
        auth = tn_get(req, "authority");
    *from_host = tn_is_str(auth) && auth.len > 0;
    if (tn_is_str(scheme) && scheme.len > 0) {
        har_buf_put(&u, scheme.p, scheme.len);
        har_buf_str(&u, "://");
    }
    if (*from_host) {
        har_buf_put(&u, auth.p, auth.len);
    } else if (tn_is_str(host)) {
        bool v6 = memchr(host.p, ':', host.len) != NULL;

        har_buf_str(&u, v6 ? "[" : "");
        har_buf_put(&u, host.p, host.len);
        har_buf_str(&u, v6 ? "]" : "");
        if (port > 0 && port <= 65535 && port != (tls ? 443 : 80))
            har_buf_printf(&u, ":%u", (unsigned)port);
    }
    if (tn_is_str(path))
        har_buf_put(&u, path.p, path.len);
    put_text(b, u.p, u.len);
    b->oom |= u.oom;
    free(u.p);
}

static void put_started(struct har_buf *b, double t)
{
    bool in_range = t > 0 && t < 1e11; /* before the cast, which needs it */
    time_t secs = in_range ? (time_t)t : 0;

    if (!in_range || !har_buf_iso_time(b, secs, (long)((t - (double)secs) * 1000) % 1000))
        har_buf_str(b, "null");
}

/* put_body writes ,"NAME":{"size":N,"truncated":false,"base64":".."} for a content element
 * (bytes), or a truncated one for null (content missing); nothing when there is no content. */
static void put_body(struct har_buf *b, const char *name, struct tn content)
{
    if (content.type == '~') {
        har_buf_printf(b, ",\"%s\":{\"size\":0,\"truncated\":true}", name);
    } else if (tn_is_str(content) && content.len > 0) {
        har_buf_printf(b, ",\"%s\":{\"size\":%zu,\"truncated\":false,\"base64\":\"", name,
                       content.len);
        har_buf_base64(b, content.p, content.len);
        har_buf_str(b, "\"}");
    }
}

/* put_websocket writes the message counts of a WebSocket flow's messages
 * ([[type, from_client, content, timestamp], ...]), or null. */
static void put_websocket(struct har_buf *b, struct tn ws)
{
    struct tn_iter it;
    struct tn m;
    unsigned long long n[2] = {0, 0}, bytes[2] = {0, 0};

    if (ws.type != '}') {
        har_buf_str(b, "null");
        return;
    }
    for (tn_iter_init(&it, tn_get(ws, "messages")); tn_iter_next(&it, &m);) {
        int side = tn_true(tn_item(m, 1)) ? 0 : 1; /* [0] client to server */
        struct tn content = tn_item(m, 2);

        n[side]++;
        bytes[side] += tn_is_str(content) ? content.len : 0;
    }
    har_buf_printf(b, "{\"messages_sent\":%llu,\"messages_received\":%llu,", n[0], n[1]);
    har_buf_printf(b, "\"bytes_sent\":%llu,\"bytes_received\":%llu}", bytes[0], bytes[1]);
}

int mitmflow_to_record(const uint8_t *buf, size_t len, char **line, size_t *line_len,
                       const char **why)
{
    const uint8_t *cur = buf;
    struct tn f, req, resp, cc, sc, err, status, type;
    struct har_buf b = {0};
    double t0 = 0, t1 = 0, st;
    bool from_host = false;

    *line = NULL;
    *line_len = 0;
    if (!tn_parse(&cur, buf + len, &f) || cur != buf + len || f.type != '}') {
        *why = "not a mitmproxy flow (a tnetstring dictionary)";
        return -EINVAL;
    }
    type = tn_get(f, "type");
    if (!tn_eq(type, "http")) {
        *why = tn_is_str(type) ? "not an HTTP flow" : "not a mitmproxy flow (no type)";
        return -EINVAL;
    }
    req = tn_get(f, "request");
    resp = tn_get(f, "response");
    cc = tn_get(f, "client_conn");
    sc = tn_get(f, "server_conn");
    err = tn_get(f, "error");
    if (req.type != '}' || !tn_is_str(tn_get(req, "method"))) {
        *why = "an HTTP flow without a request";
        return -EINVAL;
    }
    (void)tn_num(tn_get(req, "timestamp_start"), &t0);
    if (!tn_num(tn_get(resp, "timestamp_end"), &t1) &&
        !tn_num(tn_get(err, "timestamp"), &t1))
        (void)tn_num(tn_get(req, "timestamp_end"), &t1);

    har_buf_str(&b, "{\"startedDateTime\":");
    put_started(&b, t0);
    har_buf_printf(&b, ",\"time\":%.3f", /* a day at most: a wild value stays short */
                   t1 > t0 && t0 > 0 && t1 - t0 < 86400 ? (t1 - t0) * 1000 : 0.0);
    har_buf_str(&b, ",\"client\":{");
    put_addr(&b, tn_get(cc, tn_get(cc, "peername").type != 0 ? "peername" : "address"));
    har_buf_str(&b, ",\"proxy_mode\":null"); /* mitmproxy 8's flows do not say which mode */
    /* the URL goes first into a buffer of its own: the target follows from it */
    {
        struct har_buf url = {0};
        struct tn host = tn_get(req, "host");
        double port = 0;

        put_url(&url, req, &from_host);
        (void)tn_num(tn_get(req, "port"), &port);
        if (from_host && tn_is_str(host) && host.len > 0) {
            har_buf_str(&b, ",\"target\":{\"host\":");
            put_text(&b, host.p, host.len);
            har_buf_printf(&b, ",\"port\":%u}", port >= 0 && port <= 65535 ? (unsigned)port : 0);
        }
        har_buf_str(&b, "},\"server\":{");
        put_addr(&b, tn_get(sc, "ip_address"));
        har_buf_str(&b, ",\"host\":");
        put_str_or_null(&b, tn_item(tn_get(sc, "address"), 0));
        har_buf_str(&b, "},\"tls\":");
        if (tn_true(tn_get(sc, "tls_established"))) {
            har_buf_str(&b, "{\"sni\":");
            put_str_or_null(&b, tn_get(sc, "sni"));
            har_buf_str(&b, ",\"alpn\":");
            put_str_or_null(&b, tn_get(sc, "alpn"));
            har_buf_str(&b, ",\"version\":");
            put_str_or_null(&b, tn_get(sc, "tls_version"));
            har_buf_str(&b, ",\"cert_subject\":null,\"cert_issuer\":null}");
        } else {
            har_buf_str(&b, "null");
        }
        har_buf_str(&b, ",\"request\":{\"method\":");
        put_str_or_null(&b, tn_get(req, "method"));
        har_buf_str(&b, ",\"url\":");
        har_buf_put(&b, url.p, url.len);
        b.oom |= url.oom;
        free(url.p);
    }
    if (!put_message_rest(&b, req)) {
        *why = "request headers not a list of [name, value]";
        goto bad;
    }
    har_buf_str(&b, ",\"response\":");
    status = tn_get(resp, "status_code");
    if (resp.type == '}' && tn_num(status, &st) && st >= 100 && st <= 999) {
        har_buf_printf(&b, "{\"status\":%d,\"statusText\":", (int)st);
        put_str_or_null(&b, tn_get(resp, "reason"));
        if (!put_message_rest(&b, resp)) {
            *why = "response headers not a list of [name, value]";
            goto bad;
        }
    } else {
        har_buf_str(&b, "null");
        resp.type = 0;
    }
    har_buf_str(&b, ",\"timings\":{\"connect\":-1,\"ssl\":-1,\"send\":-1,\"wait\":-1,"
                    "\"receive\":-1},\"websocket\":");
    put_websocket(&b, tn_get(f, "websocket"));
    if (tn_eq(tn_get(f, "is_replay"), "response"))
        har_buf_str(&b, ",\"is_replay\":\"response\"");
    else if (tn_eq(tn_get(f, "is_replay"), "request"))
        har_buf_str(&b, ",\"is_replay\":\"request\"");
    har_buf_str(&b, ",\"error\":");
    put_str_or_null(&b, tn_get(err, "msg"));
    har_buf_str(&b, ",\"truncated\":false");
    put_body(&b, "request_body", tn_get(req, "content"));
    if (resp.type != 0)
        put_body(&b, "response_body", tn_get(resp, "content"));
    har_buf_str(&b, "}\n"); /* the newline: callers may write the line as it is */
    if (b.oom) {
        free(b.p);
        *why = "out of memory";
        return -ENOMEM;
    }
    *line = b.p;
    *line_len = b.len - 1;
    return 0;
bad:
    free(b.p);
    return -EINVAL;
}

bool mitmflow_sniff(FILE *in)
{
    int c = getc(in);

    if (c == EOF)
        return false;
    ungetc(c, in);
    return c >= '0' && c <= '9';
}

int mitmflow_read(FILE *in, char **line, size_t *line_len, const char **why)
{
    char head[16];
    size_t n = 0, digits = 0;
    uint8_t *buf;
    int c, rc;

    c = getc(in);
    if (c == EOF) {
        *why = ferror(in) ? "read error" : NULL;
        return ferror(in) ? -1 : 0;
    }
    while (c >= '0' && c <= '9' && digits < 10) {
        head[digits++] = (char)c;
        n = n * 10 + (size_t)(c - '0');
        c = getc(in);
    }
    if (digits == 0 || c != ':') {
        *why = "not a tnetstring (a length and ':' expected)";
        return -1;
    }
    if (n > MITMFLOW_FLOW_MAX) {
        *why = "a flow over 256 MiB";
        return -1;
    }
    head[digits] = ':';
    buf = malloc(digits + 1 + n + 1);
    if (buf == NULL) {
        *why = "out of memory";
        return -1;
    }
    memcpy(buf, head, digits + 1);
    if (fread(buf + digits + 1, 1, n + 1, in) != n + 1) {
        free(buf);
        *why = "the file ends inside a flow";
        return -1;
    }
    rc = mitmflow_to_record(buf, digits + 1 + n + 1, line, line_len, why);
    free(buf);
    if (rc == -ENOMEM)
        return -1;
    return rc == 0 ? 1 : 2;
}
