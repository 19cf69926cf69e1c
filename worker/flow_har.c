/* flow_har.c - see flow_har.h. */
#include "worker/flow_har.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "worker/flow_body.h"

static void har_ms(struct har_buf *b, int64_t ns)
{
    if (ns < 0)
        har_buf_str(b, "-1");
    else
        har_buf_printf(b, "%.3f", (double)ns / 1e6);
}

/* phases computes send, wait and receive in ns, 0 for a phase that did not happen (HAR
 * requires them non-negative; flow_phases gives -1 there). */
static void phases(const struct flow *f, int64_t *send, int64_t *wait, int64_t *receive)
{
    flow_phases(f, send, wait, receive);
    *send = *send < 0 ? 0 : *send;
    *wait = *wait < 0 ? 0 : *wait;
    *receive = *receive < 0 ? 0 : *receive;
}

static void har_fstr(struct har_buf *b, const struct flow *f, struct flow_str s)
{
    har_buf_json(b, flow_str_ptr(f, s), s.len);
}

static void har_headers(struct har_buf *b, const struct flow *f, const struct flow_header *h,
                        uint16_t n)
{
    har_buf_str(b, "[");
    for (uint16_t i = 0; i < n; i++) {
        har_buf_str(b, i == 0 ? "{\"name\":" : ",{\"name\":");
        har_fstr(b, f, h[i].name);
        har_buf_str(b, ",\"value\":");
        har_fstr(b, f, h[i].value);
        har_buf_str(b, "}");
    }
    har_buf_str(b, "]");
}

/* header_value returns the first field `name` of a table, or NULL (with *len 0). */
static const char *header_value(const struct flow *f, const struct flow_header *h, uint16_t n,
                                const char *name, size_t *len)
{
    size_t nl = strlen(name);

    for (uint16_t i = 0; i < n; i++)
        if (h[i].name.len == nl && strncasecmp(flow_str_ptr(f, h[i].name), name, nl) == 0) {
            *len = h[i].value.len;
            return flow_str_ptr(f, h[i].value);
        }
    *len = 0;
    return NULL;
}

/* har_query writes the URL's query parameters as HAR's queryString (raw, not decoded). */
static void har_query(struct har_buf *b, const char *url, size_t len)
{
    const char *q = memchr(url, '?', len), *end = url + len, *hash;
    bool first = true;

    har_buf_str(b, "[");
    if (q != NULL) {
        q++;
        hash = memchr(q, '#', (size_t)(end - q));
        if (hash != NULL)
            end = hash;
        while (q < end) {
            const char *amp = memchr(q, '&', (size_t)(end - q)), *eq;

            if (amp == NULL)
                amp = end;
            if (amp > q) {
                eq = memchr(q, '=', (size_t)(amp - q));
                har_buf_str(b, first ? "{\"name\":" : ",{\"name\":");
                har_buf_json(b, q, (size_t)((eq != NULL ? eq : amp) - q));
                har_buf_str(b, ",\"value\":");
                if (eq != NULL)
                    har_buf_json(b, eq + 1, (size_t)(amp - eq - 1));
                else
                    har_buf_json(b, "", 0);
                har_buf_str(b, "}");
                first = false;
            }
            q = amp + 1;
        }
    }
    har_buf_str(b, "]");
}

static void har_started(struct har_buf *b, const struct flow *f)
{
    long ms = f->started.tv_nsec / 1000000L;

    if (!har_buf_iso_time(b, f->started.tv_sec, ms))
        har_buf_printf(b, "\"1970-01-01T00:00:00.%03ldZ\"", ms);
}

/* har_body_text writes "text" (and "encoding" or "_encoding") for a captured body. */
static void har_body_text(struct har_buf *b, const struct flow_body_side *s, const char *enc_key)
{
    if (s == NULL)
        return;
    if (har_is_text(s->data, s->len)) {
        har_buf_str(b, ",\"text\":");
        har_buf_json(b, s->data, s->len);
    } else {
        har_buf_str(b, ",\"text\":\"");
        har_buf_base64(b, s->data, s->len);
        har_buf_printf(b, "\",\"%s\":\"base64\"", enc_key);
    }
    if (flow_body_side_truncated(s))
        har_buf_str(b, ",\"_truncated\":true");
}

static void har_server_ip(struct har_buf *b, const struct flow *f)
{
    char ip[INET6_ADDRSTRLEN];
    const struct sockaddr_storage *ss = &f->server_addr;
    const void *a = NULL;

    if (ss->ss_family == AF_INET)
        a = &((const struct sockaddr_in *)ss)->sin_addr;
    else if (ss->ss_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (a != NULL && inet_ntop(ss->ss_family, a, ip, sizeof(ip)) != NULL) {
        har_buf_str(b, ",\"serverIPAddress\":");
        har_buf_json(b, ip, strlen(ip));
    }
}

void flow_har_entry(struct har_buf *b, const struct flow *f)
{
    const struct flow_body_side *req = flow_body_get(f, FLOW_REQUEST);
    const struct flow_body_side *resp = flow_body_get(f, FLOW_RESPONSE);
    int64_t send, wait, receive, total = 0;
    const char *ct, *loc;
    size_t ct_len, loc_len;

    phases(f, &send, &wait, &receive);
    total = send + wait + receive + (f->connect_ns > 0 ? f->connect_ns : 0) +
            (f->tls_ns > 0 ? f->tls_ns : 0);
    har_buf_str(b, ",\n{\"startedDateTime\":");
    har_started(b, f);
    har_buf_str(b, ",\"time\":");
    har_ms(b, total);

    har_buf_str(b, ",\"request\":{\"method\":");
    har_fstr(b, f, f->method);
    har_buf_str(b, ",\"url\":");
    har_fstr(b, f, f->url);
    har_buf_str(b, ",\"httpVersion\":");
    har_fstr(b, f, f->req_version);
    har_buf_str(b, ",\"cookies\":[],\"headers\":");
    har_headers(b, f, f->req_headers, f->n_req_headers);
    har_buf_str(b, ",\"queryString\":");
    har_query(b, flow_str_ptr(f, f->url), f->url.len);
    if (f->req_body_size > 0) {
        ct = header_value(f, f->req_headers, f->n_req_headers, "content-type", &ct_len);
        har_buf_str(b, ",\"postData\":{\"mimeType\":");
        har_buf_json(b, ct != NULL ? ct : "", ct_len);
        har_body_text(b, req, "_encoding");
        if (req == NULL)
            har_buf_str(b, ",\"text\":\"\"");
        har_buf_str(b, "}");
    }
    har_buf_printf(b, ",\"headersSize\":-1,\"bodySize\":%llu}",
                   (unsigned long long)f->req_body_size);

    har_buf_str(b, ",\"response\":{");
    if (f->status != 0) {
        har_buf_printf(b, "\"status\":%d,\"statusText\":", f->status);
        har_fstr(b, f, f->reason);
        har_buf_str(b, ",\"httpVersion\":");
        har_fstr(b, f, f->resp_version);
        har_buf_str(b, ",\"cookies\":[],\"headers\":");
        har_headers(b, f, f->resp_headers, f->n_resp_headers);
        ct = header_value(f, f->resp_headers, f->n_resp_headers, "content-type", &ct_len);
        loc = header_value(f, f->resp_headers, f->n_resp_headers, "location", &loc_len);
        har_buf_printf(b, ",\"content\":{\"size\":%llu,\"mimeType\":",
                       (unsigned long long)f->resp_body_size);
        har_buf_json(b, ct != NULL ? ct : "", ct_len);
        har_body_text(b, resp, "encoding");
        har_buf_str(b, "},\"redirectURL\":");
        har_buf_json(b, loc != NULL ? loc : "", loc_len);
        har_buf_printf(b, ",\"headersSize\":-1,\"bodySize\":%llu}",
                       (unsigned long long)f->resp_body_size);
    } else {
        har_buf_str(b, "\"status\":0,\"statusText\":\"\",\"httpVersion\":\"\",\"cookies\":[],"
                       "\"headers\":[],\"content\":{\"size\":0,\"mimeType\":\"\"},"
                       "\"redirectURL\":\"\",\"headersSize\":-1,\"bodySize\":-1}");
    }
    har_buf_str(b, ",\"cache\":{},\"timings\":{\"blocked\":-1,\"dns\":-1,\"connect\":");
    har_ms(b, f->connect_ns);
    har_buf_str(b, ",\"ssl\":");
    har_ms(b, f->tls_ns);
    har_buf_str(b, ",\"send\":");
    har_ms(b, send);
    har_buf_str(b, ",\"wait\":");
    har_ms(b, wait);
    har_buf_str(b, ",\"receive\":");
    har_ms(b, receive);
    har_buf_str(b, "}");
    har_server_ip(b, f);
    if (f->error[0] != '\0') {
        har_buf_str(b, ",\"_error\":");
        har_buf_json(b, f->error, strlen(f->error));
    }
    har_buf_str(b, "}");
}

bool flow_har_has_bodies(const struct flow *f)
{
    return flow_body_get(f, FLOW_REQUEST) != NULL || flow_body_get(f, FLOW_RESPONSE) != NULL;
}

void flow_har_body_fields(struct har_buf *b, const struct flow *f)
{
    static const char *const names[2] = {",\"request_body\":", ",\"response_body\":"};

    for (int side = 0; side < 2; side++) {
        const struct flow_body_side *s = flow_body_get(f, (enum flow_side)side);

        if (s == NULL)
            continue;
        har_buf_str(b, names[side]);
        har_buf_printf(b, "{\"size\":%llu,\"truncated\":%s,\"base64\":\"",
                       (unsigned long long)s->total, flow_body_side_truncated(s) ? "true" : "false");
        har_buf_base64(b, s->data, s->len);
        har_buf_str(b, "\"}");
    }
}
