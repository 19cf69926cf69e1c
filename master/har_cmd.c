/* har_cmd.c - see har_cmd.h. Records are parsed with jansson; each becomes a HAR entry with
 * the fields worker/flow_har.c writes for a live hardump. */
#include "master/har_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "shared/har.h"

/* header_get returns the value of the first header `name` of a HAR headers array, or "". */
static const char *header_get(json_t *headers, const char *name)
{
    size_t i;
    json_t *h;

    json_array_foreach(headers, i, h) {
        const char *n = json_string_value(json_object_get(h, "name"));
        const char *v = json_string_value(json_object_get(h, "value"));

        if (n != NULL && v != NULL && strcasecmp(n, name) == 0)
            return v;
    }
    return "";
}

/* query_string builds HAR's queryString from a URL (raw, not decoded). */
static json_t *query_string(const char *url)
{
    json_t *a = json_array();
    const char *q = url != NULL ? strchr(url, '?') : NULL;

    if (q == NULL)
        return a;
    for (q++; *q != '\0' && *q != '#';) {
        size_t n = strcspn(q, "&#"), k = strcspn(q, "=&#");

        if (n > 0) {
            json_t *p = json_object();

            json_object_set_new(p, "name", json_stringn_nocheck(q, k < n ? k : n));
            json_object_set_new(p, "value", k < n ? json_stringn_nocheck(q + k + 1, n - k - 1)
                                                  : json_string(""));
            json_array_append_new(a, p);
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return a;
}

/* body_fields sets "text" (and `enc_key`: "base64" when the body is not text) from a
 * record's request_body / response_body. */
static void body_fields(json_t *dst, json_t *body, const char *enc_key)
{
    const char *b64 = json_string_value(json_object_get(body, "base64"));
    size_t n;
    uint8_t *raw;
    ssize_t m;

    if (b64 == NULL)
        return;
    n = strlen(b64);
    raw = malloc(n / 4 * 3 + 3);
    if (raw == NULL)
        return;
    m = har_base64_decode(b64, n, raw);
    if (m >= 0 && har_is_text(raw, (size_t)m)) {
        json_object_set_new(dst, "text", json_stringn(( const char *)raw, (size_t)m));
    } else {
        json_object_set_new(dst, "text", json_string(b64));
        json_object_set_new(dst, enc_key, json_string("base64"));
    }
    if (json_is_true(json_object_get(body, "truncated")))
        json_object_set_new(dst, "_truncated", json_true());
    free(raw);
}

static json_t *copy_headers(json_t *h)
{
    return json_is_array(h) ? json_deep_copy(h) : json_array();
}

static double num_or(json_t *v, double dflt)
{
    return json_is_number(v) ? json_number_value(v) : dflt;
}

/* int_or returns a record's number as an integer: an integer as it is, a real within the
 * range of json_int_t cut to its integer part, anything else (or a real out of range, which
 * a hostile line can hold) `dflt`. */
static json_int_t int_or(json_t *v, json_int_t dflt)
{
    double d;

    if (json_is_integer(v))
        return json_integer_value(v);
    if (!json_is_real(v))
        return dflt;
    d = json_real_value(v);
    return d > -9.0e18 && d < 9.0e18 ? (json_int_t)d : dflt;
}

static json_t *entry_from_record(json_t *rec, const char **why)
{
    json_t *req = json_object_get(rec, "request"), *resp = json_object_get(rec, "response");
    json_t *tim = json_object_get(rec, "timings"), *e, *r, *s, *t, *c;
    const char *url = json_string_value(json_object_get(req, "url"));
    const char *started = json_string_value(json_object_get(rec, "startedDateTime"));
    const char *ip = json_string_value(json_object_get(json_object_get(rec, "server"), "address"));
    const char *err = json_string_value(json_object_get(rec, "error"));
    double send = num_or(json_object_get(tim, "send"), 0), wait = num_or(json_object_get(tim, "wait"), 0);
    double recv = num_or(json_object_get(tim, "receive"), 0);

    if (!json_is_object(rec) || !json_is_object(req) || url == NULL ||
        json_string_value(json_object_get(req, "method")) == NULL) {
        *why = "not a flow record (no request with method and url)";
        return NULL;
    }
    e = json_object();
    json_object_set_new(e, "startedDateTime",
                        json_string(started != NULL ? started : "1970-01-01T00:00:00.000Z"));
    json_object_set_new(e, "time", json_real(num_or(json_object_get(rec, "time"), 0) < 0
                                                 ? 0
                                                 : num_or(json_object_get(rec, "time"), 0)));
    r = json_object();
    json_object_set(r, "method", json_object_get(req, "method"));
    json_object_set_new(r, "url", json_string(url));
    json_object_set_new(r, "httpVersion",
                        json_string(json_string_value(json_object_get(req, "httpVersion")) != NULL
                                        ? json_string_value(json_object_get(req, "httpVersion"))
                                        : ""));
    json_object_set_new(r, "cookies", json_array());
    json_object_set_new(r, "headers", copy_headers(json_object_get(req, "headers")));
    json_object_set_new(r, "queryString", query_string(url));
    if (num_or(json_object_get(req, "bodySize"), 0) > 0 ||
        json_object_get(rec, "request_body") != NULL) {
        json_t *pd = json_object();

        json_object_set_new(pd, "mimeType",
                            json_string(header_get(json_object_get(req, "headers"), "content-type")));
        json_object_set_new(pd, "text", json_string(""));
        body_fields(pd, json_object_get(rec, "request_body"), "_encoding");
        json_object_set_new(r, "postData", pd);
    }
    json_object_set_new(r, "headersSize", json_integer(-1));
    json_object_set_new(r, "bodySize",
                        json_integer(int_or(json_object_get(req, "bodySize"), 0)));
    json_object_set_new(e, "request", r);

    s = json_object();
    if (json_is_object(resp)) {
        json_t *hs = json_object_get(resp, "headers");
        const char *st = json_string_value(json_object_get(resp, "statusText"));
        const char *hv = json_string_value(json_object_get(resp, "httpVersion"));

        json_object_set_new(s, "status",
                            json_integer(int_or(json_object_get(resp, "status"), 0)));
        json_object_set_new(s, "statusText", json_string(st != NULL ? st : ""));
        json_object_set_new(s, "httpVersion", json_string(hv != NULL ? hv : ""));
        json_object_set_new(s, "cookies", json_array());
        json_object_set_new(s, "headers", copy_headers(hs));
        c = json_object();
        json_object_set_new(c, "size",
                            json_integer(int_or(json_object_get(resp, "bodySize"), 0)));
        json_object_set_new(c, "mimeType", json_string(header_get(hs, "content-type")));
        body_fields(c, json_object_get(rec, "response_body"), "encoding");
        json_object_set_new(s, "content", c);
        json_object_set_new(s, "redirectURL", json_string(header_get(hs, "location")));
        json_object_set_new(s, "headersSize", json_integer(-1));
        json_object_set_new(s, "bodySize",
                            json_integer(int_or(json_object_get(resp, "bodySize"), 0)));
    } else {
        json_object_set_new(s, "status", json_integer(0));
        json_object_set_new(s, "statusText", json_string(""));
        json_object_set_new(s, "httpVersion", json_string(""));
        json_object_set_new(s, "cookies", json_array());
        json_object_set_new(s, "headers", json_array());
        c = json_object();
        json_object_set_new(c, "size", json_integer(0));
        json_object_set_new(c, "mimeType", json_string(""));
        json_object_set_new(s, "content", c);
        json_object_set_new(s, "redirectURL", json_string(""));
        json_object_set_new(s, "headersSize", json_integer(-1));
        json_object_set_new(s, "bodySize", json_integer(-1));
    }
    json_object_set_new(e, "response", s);
    json_object_set_new(e, "cache", json_object());
    t = json_object();
    json_object_set_new(t, "blocked", json_integer(-1));
    json_object_set_new(t, "dns", json_integer(-1));
    json_object_set_new(t, "connect", json_real(num_or(json_object_get(tim, "connect"), -1)));
    json_object_set_new(t, "ssl", json_real(num_or(json_object_get(tim, "ssl"), -1)));
    json_object_set_new(t, "send", json_real(send < 0 ? 0 : send));
    json_object_set_new(t, "wait", json_real(wait < 0 ? 0 : wait));
    json_object_set_new(t, "receive", json_real(recv < 0 ? 0 : recv));
    json_object_set_new(e, "timings", t);
    if (ip != NULL)
        json_object_set_new(e, "serverIPAddress", json_string(ip));
    if (err != NULL)
        json_object_set_new(e, "_error", json_string(err));
    return e;
}

char *har_cmd_entry(const char *line, size_t len, char *errbuf, size_t errlen)
{
    json_error_t jerr;
    json_t *rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr), *e;
    const char *why = NULL;
    char *text;

    if (rec == NULL) {
        snprintf(errbuf, errlen, "not JSON: %s (column %d)", jerr.text, jerr.column);
        return NULL;
    }
    e = entry_from_record(rec, &why);
    json_decref(rec);
    if (e == NULL) {
        snprintf(errbuf, errlen, "%s", why);
        return NULL;
    }
    text = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(e);
    if (text == NULL)
        snprintf(errbuf, errlen, "out of memory");
    return text;
}

/* har_cmd_repair completes a HAR document in place. */
static int har_cmd_repair(const char *path, int fd, FILE *err)
{
    const char *why = NULL;
    ssize_t n = har_file_finish(fd, &why);

    if (n < 0) {
        fprintf(err, "mitmd har: %s: %s: %s\n", path, why, strerror((int)-n));
        return 2;
    }
    fprintf(err, "mitmd har: %s: %zd entries, document closed\n", path, n);
    return 0;
}

int har_cmd_run(const char *path, FILE *out, FILE *err)
{
    char head[8] = "";
    char *line = NULL, ebuf[256];
    size_t cap = 0, lineno = 0, n_bad = 0, n_ok = 0;
    ssize_t len;
    FILE *in;
    int fd = open(path, O_RDWR | O_CLOEXEC), status;

    if (fd == -1)
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        fprintf(err, "mitmd har: %s: %s\n", path, strerror(errno));
        return 2;
    }
    if (pread(fd, head, 7, 0) == 7 && memcmp(head, "{\"log\":", 7) == 0) {
        status = har_cmd_repair(path, fd, err);
        close(fd);
        return status;
    }
    in = fdopen(fd, "r");
    if (in == NULL) {
        close(fd);
        fprintf(err, "mitmd har: %s: %s\n", path, strerror(errno));
        return 2;
    }
    fprintf(out, HAR_HEAD_FMT, MITMD_VERSION);
    while ((len = getline(&line, &cap, in)) != -1) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (len == 0)
            continue;
        char *text = har_cmd_entry(line, (size_t)len, ebuf, sizeof(ebuf));

        if (text != NULL) {
            fputs(n_ok == 0 ? "\n" : ",\n", out);
            fputs(text, out);
            free(text);
            n_ok++;
        } else {
            n_bad++;
            fprintf(err, "mitmd har: %s:%zu: %s (left out)\n", path, lineno, ebuf);
        }
    }
    free(line);
    fputs(HAR_TAIL, out);
    fclose(in);
    if (fflush(out) == EOF) {
        fprintf(err, "mitmd har: writing the HAR document failed: %s\n", strerror(errno));
        return 2;
    }
    return n_bad > 0 ? 1 : 0;
}
