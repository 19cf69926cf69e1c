/* flow.c - flow records: per-exchange arena copies and the console / JSON Lines forms.
 * Owns the text formats of a flow (mitmdump-like line, HAR-like JSON object). Callers are
 * the h1 relay (filling) and the loop (connection fields, formatting). Never allocates. */
#include "worker/flow.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* ---- filling -------------------------------------------------------------------------- */

/* clear_exchange zeroes the exchange fields of `f` but the two header tables and the error
 * text, which are read only up to n_req_headers / n_resp_headers and the NUL (about 2.3 KiB a
 * flow that every HTTP/2 stream and HTTP/1.1 exchange would otherwise clear). */
static void clear_exchange(struct flow *f)
{
    size_t a = offsetof(struct flow, started), b = offsetof(struct flow, req_headers);
    size_t c = offsetof(struct flow, n_req_headers), d = offsetof(struct flow, error);

    memset((char *)f + a, 0, b - a);
    memset((char *)f + c, 0, d - c);
    f->error[0] = '\0';
    f->arena_used = 0;
}

void flow_init(struct flow *f)
{
    memset(f, 0, offsetof(struct flow, started));
    clear_exchange(f);
    f->connect_ns = -1;
    f->tls_ns = -1;
}

uint64_t flow_now_ns(void)
{
    struct timespec ts;
    uint64_t ns;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 1;
    ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    return ns == 0 ? 1 : ns;
}

void flow_begin(struct flow *f)
{
    clear_exchange(f);
    if (clock_gettime(CLOCK_REALTIME, &f->started) != 0)
        memset(&f->started, 0, sizeof(f->started));
    f->t_start = flow_now_ns();
}

void flow_next(struct flow *f)
{
    f->exchange_index++;
    f->connect_ns = -1;
    f->tls_ns = -1;
}

/* copy_cstr copies NUL-terminated `src` (NULL = "") into `dst` of `cap` bytes, truncating. */
static void copy_cstr(char *dst, size_t cap, const char *src)
{
    size_t n = src == NULL ? 0 : strnlen(src, cap - 1);

    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static void copy_addr(struct sockaddr_storage *dst, const struct sockaddr *sa, socklen_t len)
{
    memset(dst, 0, sizeof(*dst));
    if (sa == NULL || len == 0)
        return;
    if ((size_t)len > sizeof(*dst))
        len = sizeof(*dst);
    memcpy(dst, sa, len);
}

void flow_set_client(struct flow *f, const struct sockaddr *sa, socklen_t len)
{
    copy_addr(&f->client_addr, sa, len);
}

void flow_set_server(struct flow *f, const char *host, const struct sockaddr *sa, socklen_t len)
{
    copy_cstr(f->server_host, sizeof(f->server_host), host);
    copy_addr(&f->server_addr, sa, len);
}

void flow_set_target(struct flow *f, const char *host, uint16_t port)
{
    copy_cstr(f->target_host, sizeof(f->target_host), host);
    f->target_port = port;
    flow_set_server(f, host, NULL, 0);
}

void flow_set_tls(struct flow *f, const char *sni, const char *alpn, const char *version)
{
    f->tls = true;
    copy_cstr(f->sni, sizeof(f->sni), sni);
    copy_cstr(f->alpn, sizeof(f->alpn), alpn);
    copy_cstr(f->tls_version, sizeof(f->tls_version), version);
}

void flow_set_cert(struct flow *f, const char *subject, const char *issuer)
{
    copy_cstr(f->cert_subject, sizeof(f->cert_subject), subject);
    copy_cstr(f->cert_issuer, sizeof(f->cert_issuer), issuer);
}

void flow_set_error(struct flow *f, const char *why)
{
    if (f->error[0] != '\0' || why == NULL || why[0] == '\0')
        return;
    copy_cstr(f->error, sizeof(f->error), why);
}

void flow_set_answer(struct flow *f, int status, const char *reason, const char *clen,
                     uint64_t body_len, const char *error)
{
    f->status = status;
    f->answered = true;
    flow_str_set(f, &f->reason, reason, strlen(reason));
    flow_str_set(f, &f->resp_version, "HTTP/1.1", 8);
    flow_add_header(f, FLOW_RESPONSE, "Content-Type", 12, FLOW_ANSWER_CTYPE,
                    sizeof(FLOW_ANSWER_CTYPE) - 1);
    flow_add_header(f, FLOW_RESPONSE, "Content-Length", 14, clen, strlen(clen));
    flow_add_header(f, FLOW_RESPONSE, "Connection", 10, "close", 5);
    f->resp_body_size = body_len;
    flow_set_error(f, error);
}

int flow_str_set(struct flow *f, struct flow_str *dst, const void *p, size_t n)
{
    size_t room = FLOW_ARENA_SIZE - f->arena_used;
    int err = 0;

    if (n > room) {
        n = room;
        f->truncated = true;
        err = -ENOSPC;
    }
    dst->off = f->arena_used;
    dst->len = (uint32_t)n;
    if (n > 0)
        memcpy(f->arena + f->arena_used, p, n);
    f->arena_used += (uint32_t)n;
    return err;
}

int flow_add_header(struct flow *f, enum flow_side side, const void *name, size_t name_len,
                    const void *value, size_t value_len)
{
    struct flow_header *table = side == FLOW_REQUEST ? f->req_headers : f->resp_headers;
    uint16_t *n = side == FLOW_REQUEST ? &f->n_req_headers : &f->n_resp_headers;
    size_t room = FLOW_ARENA_SIZE - f->arena_used;
    struct flow_header *h;

    if (*n >= FLOW_MAX_HEADERS || name_len > room || value_len > room - name_len) {
        f->truncated = true;
        return -ENOSPC;
    }
    h = &table[*n];
    flow_str_set(f, &h->name, name, name_len);
    flow_str_set(f, &h->value, value, value_len);
    (*n)++;
    return 0;
}

/* ---- output writer -------------------------------------------------------------------- */

/* struct out appends into a caller buffer and remembers an overflow instead of failing at
 * every call site. */
struct out {
    char *p;
    size_t cap, len;
    bool overflow;
    size_t max_str; /* JSON strings: bytes of input kept, 0 = all (see flow_format_json) */
};

static void out_bytes(struct out *o, const void *src, size_t n)
{
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, src, n);
    o->len += n;
}

static void out_str(struct out *o, const char *s)
{
    out_bytes(o, s, strlen(s));
}

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_printf(struct out *o, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        o->overflow = true;
        return;
    }
    out_bytes(o, tmp, (size_t)n);
}

static ssize_t out_finish(const struct out *o)
{
    return o->overflow ? -ENOSPC : (ssize_t)o->len;
}

/* ---- shared formatting pieces --------------------------------------------------------- */

ssize_t flow_format_size(uint64_t bytes, char *out, size_t cap)
{
    static const char units[] = "kmgtp";
    double v = (double)bytes;
    int n;
    size_t u = 0;

    if (bytes < 1024) {
        n = snprintf(out, cap, "%" PRIu64 "b", bytes);
    } else {
        v /= 1024.0;
        while (v >= 1024.0 && u + 1 < sizeof(units) - 1) {
            v /= 1024.0;
            u++;
        }
        n = snprintf(out, cap, "%.1f%c", v, units[u]);
    }
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    return n;
}

/* flow_round_us is `ns` rounded to whole microseconds, the precision a record keeps: the
 * console line is formatted from it too, so `-r` prints a record's line exactly as it was
 * printed live (1.5495 ms is "1.550" in the record and "1.6ms" in both lines). */
static uint64_t flow_round_us(uint64_t ns)
{
    return ns / 1000 + (ns % 1000 >= 500);
}

/* format_duration writes a mitmdump-like duration: "0.4ms", "2.7ms", "35.1ms", "350ms",
 * "1.25s", "12.5s", "125s" (a tenth of a millisecond below 100 ms: local exchanges take
 * less than one), from the duration in whole microseconds. */
static void format_duration(struct out *o, uint64_t ns)
{
    double s = (double)flow_round_us(ns) / 1e6;

    if (s >= 100.0)
        out_printf(o, "%.0fs", s);
    else if (s >= 10.0)
        out_printf(o, "%.1fs", s);
    else if (s >= 1.0)
        out_printf(o, "%.2fs", s);
    else if (s >= 0.1)
        out_printf(o, "%.0fms", s * 1000.0);
    else
        out_printf(o, "%.1fms", s * 1000.0);
}

/* addr_parts extracts the numeric address and port of `ss`; returns false when unknown. */
static bool addr_parts(const struct sockaddr_storage *ss, char *ip, size_t iplen, uint16_t *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

        if (inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)iplen) == NULL)
            return false;
        *port = ntohs(sin->sin_port);
        return true;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

        if (inet_ntop(AF_INET6, &sin6->sin6_addr, ip, (socklen_t)iplen) == NULL)
            return false;
        *port = ntohs(sin6->sin6_port);
        return true;
    }
    return false;
}

static uint64_t flow_elapsed_ns(const struct flow *f)
{
    if (f->t_start == 0 || f->t_done < f->t_start)
        return 0;
    return f->t_done - f->t_start;
}

/* flow_total_ns is the exchange's time as both forms report it (HAR "time"): from the
 * request's first byte to the response's last, plus the upstream connect and TLS handshake
 * it waited for. */
static uint64_t flow_total_ns(const struct flow *f)
{
    uint64_t total = flow_elapsed_ns(f);

    if (f->connect_ns > 0)
        total += (uint64_t)f->connect_ns;
    if (f->tls_ns > 0)
        total += (uint64_t)f->tls_ns;
    return total;
}

/* ---- console line --------------------------------------------------------------------- */

/* out_printable writes `n` bytes, with anything outside printable ASCII as \xNN. */
static void out_printable(struct out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && !o->overflow; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 0x20 && c < 0x7f)
            out_bytes(o, &s[i], 1);
        else
            out_printf(o, "\\x%02x", c);
    }
}

static void out_fstr_printable(struct out *o, const struct flow *f, struct flow_str s)
{
    out_printable(o, flow_str_ptr(f, s), s.len);
}

/* out_client writes the client's address as "ip:port" ("[ip]:port" for IPv6), "[replay]" for
 * a request client replay sent (mitmdump's), or "-". */
static void out_client(struct out *o, const struct flow *f)
{
    char ip[INET6_ADDRSTRLEN];
    uint16_t port = 0;

    if (f->replay_request)
        out_str(o, "[replay]");
    else if (addr_parts(&f->client_addr, ip, sizeof(ip), &port))
        out_printf(o, f->client_addr.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
                   (unsigned)port);
    else
        out_str(o, "-");
}

/* out_url writes the URL of `f` as mitmdump prints it: request.url, whose authority is the
 * target the client addressed (the CONNECT, SOCKS or reverse target, the transparent
 * destination), or with --showhost (when `showhost`) pretty_url, the Host field's (the
 * recorded URL). A URL recorded from an absolute target or not as scheme://authority is
 * written as it is. */
static void out_url(struct out *o, const struct flow *f, bool showhost)
{
    const char *u = flow_str_ptr(f, f->url), *sep = NULL;
    size_t n = f->url.len, a, e;
    bool tls;

    if (!showhost && f->url_from_host && f->target_host[0] != '\0') {
        for (e = 0; e < n && (isalnum((unsigned char)u[e]) || u[e] == '+' || u[e] == '-' ||
                              u[e] == '.');
             e++)
            ; /* the scheme: "://" must follow it */
        if (e > 0 && n - e >= 3 && memcmp(u + e, "://", 3) == 0)
            sep = u + e;
    }
    if (sep == NULL) {
        out_printable(o, u, n);
        return;
    }
    a = (size_t)(sep - u) + 3;
    for (e = a; e < n && u[e] != '/' && u[e] != '?' && u[e] != '#'; e++)
        ;
    out_printable(o, u, a);
    if (strchr(f->target_host, ':') != NULL) { /* an IPv6 literal */
        out_str(o, "[");
        out_printable(o, f->target_host, strlen(f->target_host));
        out_str(o, "]");
    } else {
        out_printable(o, f->target_host, strlen(f->target_host));
    }
    tls = (a == 8 && memcmp(u, "https", 5) == 0) || (a == 6 && memcmp(u, "wss", 3) == 0);
    if (f->target_port != 0 && f->target_port != (tls ? 443 : 80))
        out_printf(o, ":%u", (unsigned)f->target_port);
    out_printable(o, u + e, n - e);
}

ssize_t flow_format_line(const struct flow *f, char *buf, size_t cap)
{
    struct out o = {.p = buf, .cap = cap};
    char size[32];

    out_client(&o, f);
    if (f->proxy_mode_in_line && f->proxy_mode != NULL) { /* several listeners: which one */
        out_str(&o, " [");
        out_printable(&o, f->proxy_mode, strlen(f->proxy_mode));
        out_str(&o, "]");
    }
    out_str(&o, ": ");
    if (f->method.len == 0) {
        out_str(&o, "<invalid request>");
    } else {
        out_fstr_printable(&o, f, f->method);
        out_str(&o, " ");
        out_url(&o, f, f->showhost);
        if (f->req_version.len > 0) {
            out_str(&o, " ");
            out_fstr_printable(&o, f, f->req_version);
        }
    }
    out_str(&o, f->replayed ? " [replay] << " : " << "); /* mitmdump: "[replay] <<" */
    if (f->status != 0) {
        out_printf(&o, "%d", f->status);
        if (f->reason.len > 0) {
            out_str(&o, " ");
            out_fstr_printable(&o, f, f->reason);
        }
        if (flow_format_size(f->resp_body_size, size, sizeof(size)) < 0)
            o.overflow = true;
        out_str(&o, " ");
        out_str(&o, size);
        out_str(&o, " ");
        format_duration(&o, flow_total_ns(f));
        if (f->websocket)
            out_printf(&o, " websocket %llu/%llu messages",
                       (unsigned long long)f->ws_messages[0],
                       (unsigned long long)f->ws_messages[1]);
        if (f->rules_note != NULL) {
            out_str(&o, " [");
            out_str(&o, f->rules_note);
            out_str(&o, "]");
        }
        if (f->error[0] != '\0') {
            out_str(&o, " error: ");
            out_printable(&o, f->error, strlen(f->error));
        }
    } else {
        out_str(&o, "error: ");
        if (f->error[0] != '\0')
            out_printable(&o, f->error, strlen(f->error));
        else
            out_str(&o, "no response");
    }
    out_str(&o, "\n");
    return out_finish(&o);
}

/* ---- JSON ----------------------------------------------------------------------------- */

ssize_t flow_format_ws_message(const struct flow *f, bool from_client, int opcode, uint64_t len,
                               char *buf, size_t cap)
{
    struct out o = {.p = buf, .cap = cap};
    const char *dir = from_client ? "->" : "<-";
    char size[32];

    out_client(&o, f);
    out_printf(&o, " %s WebSocket %s message %s ", dir, opcode == 2 ? "binary" : "text", dir);
    out_url(&o, f, false); /* mitmdump names the server here whatever showhost says */
    if (flow_format_size(len, size, sizeof(size)) < 0)
        o.overflow = true;
    out_str(&o, " ");
    out_str(&o, size);
    out_str(&o, "\n");
    return out_finish(&o);
}

/* utf8_seq_len returns the length of the valid UTF-8 sequence at s[0, n) (s[0] >= 0x80), or
 * 0 if it is invalid: overlong forms, surrogates and code points over U+10FFFF are invalid
 * (RFC 3629 §4). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t len;

    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* out_json_string writes `n` bytes as a JSON string (RFC 8259 §7): quote and backslash
 * escaped, control characters as \uXXXX, each byte of invalid UTF-8 as U+FFFD. In a
 * compact record (o->max_str != 0) at most o->max_str bytes of `s` are written. */
static void out_json_string(struct out *o, const char *s, size_t n)
{
    static const char replacement[] = "\xef\xbf\xbd";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    if (o->max_str != 0 && n > o->max_str)
        n = o->max_str; /* a sequence cut here becomes U+FFFD: still valid JSON */
    out_str(o, "\"");
    while (i < n && !o->overflow) {
        size_t run = i;

        while (run < n && u[run] >= 0x20 && u[run] < 0x7f && u[run] != '"' && u[run] != '\\')
            run++;
        if (run > i) {
            out_bytes(o, s + i, run - i);
            i = run;
            continue;
        }
        if (u[i] == '"' || u[i] == '\\') {
            char esc[2] = {'\\', (char)u[i]};

            out_bytes(o, esc, 2);
            i++;
        } else if (u[i] < 0x20 || u[i] == 0x7f) {
            out_printf(o, "\\u%04x", u[i]);
            i++;
        } else {
            size_t len = utf8_seq_len(u + i, n - i);

            if (len == 0) {
                out_bytes(o, replacement, 3);
                i++;
            } else {
                out_bytes(o, s + i, len);
                i += len;
            }
        }
    }
    out_str(o, "\"");
}

static void out_json_cstr(struct out *o, const char *s)
{
    out_json_string(o, s, strlen(s));
}

static void out_json_cstr_or_null(struct out *o, const char *s)
{
    if (s[0] == '\0')
        out_str(o, "null");
    else
        out_json_cstr(o, s);
}

static void out_json_fstr(struct out *o, const struct flow *f, struct flow_str s)
{
    out_json_string(o, flow_str_ptr(f, s), s.len);
}

static void out_json_headers(struct out *o, const struct flow *f, const struct flow_header *h,
                             size_t n)
{
    if (o->max_str != 0)
        n = 0; /* compact record: headers left out */
    out_str(o, "[");
    for (size_t i = 0; i < n; i++) {
        out_str(o, i == 0 ? "{\"name\":" : ",{\"name\":");
        out_json_fstr(o, f, h[i].name);
        out_str(o, ",\"value\":");
        out_json_fstr(o, f, h[i].value);
        out_str(o, "}");
    }
    out_str(o, "]");
}

static void out_json_addr(struct out *o, const struct sockaddr_storage *ss)
{
    char ip[INET6_ADDRSTRLEN];
    uint16_t port = 0;

    if (addr_parts(ss, ip, sizeof(ip), &port)) {
        out_str(o, "\"address\":");
        out_json_cstr(o, ip);
        out_printf(o, ",\"port\":%u", (unsigned)port);
    } else {
        out_str(o, "\"address\":null,\"port\":null");
    }
}

/* out_json_ms writes a duration in milliseconds with three decimals (whole microseconds,
 * rounded as the console line rounds them), or -1 when `ns` is negative. */
static void out_json_ms(struct out *o, int64_t ns)
{
    uint64_t us;

    if (ns < 0) {
        out_str(o, "-1");
        return;
    }
    us = flow_round_us((uint64_t)ns);
    out_printf(o, "%" PRIu64 ".%03u", us / 1000, (unsigned)(us % 1000));
}

void flow_phases(const struct flow *f, int64_t *send, int64_t *wait, int64_t *receive)
{
    uint64_t base;

    *send = -1;
    *wait = -1;
    *receive = -1;
    if (f->t_start == 0)
        return;
    if (f->t_request_sent >= f->t_start)
        *send = (int64_t)(f->t_request_sent - f->t_start);
    if (f->t_response_first >= f->t_start) {
        base = f->t_request_sent != 0 && f->t_request_sent <= f->t_response_first
                   ? f->t_request_sent
                   : f->t_start;
        *wait = (int64_t)(f->t_response_first - base);
        if (f->t_done >= f->t_response_first)
            *receive = (int64_t)(f->t_done - f->t_response_first);
    }
}

static void out_json_started(struct out *o, const struct flow *f)
{
    struct tm tm;
    char date[32];
    time_t secs = f->started.tv_sec;

    if (gmtime_r(&secs, &tm) == NULL ||
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        out_str(o, "null");
        return;
    }
    out_printf(o, "\"%s.%03ldZ\"", date, f->started.tv_nsec / 1000000L);
}

/* format_json writes the record; `max_str` != 0 makes the compact form (no headers, strings
 * cut to max_str bytes, "truncated": true). */
static ssize_t format_json(const struct flow *f, char *buf, size_t cap, size_t max_str)
{
    struct out o = {.p = buf, .cap = cap, .max_str = max_str};
    int64_t send, wait, receive;
    int64_t total = (int64_t)flow_total_ns(f);

    flow_phases(f, &send, &wait, &receive);

    out_str(&o, "{\"startedDateTime\":");
    out_json_started(&o, f);
    out_str(&o, ",\"time\":");
    out_json_ms(&o, total);

    out_str(&o, ",\"client\":{");
    out_json_addr(&o, &f->client_addr);
    out_str(&o, ",\"proxy_mode\":");
    out_json_cstr_or_null(&o, f->proxy_mode != NULL ? f->proxy_mode : "");
    if (f->url_from_host && f->target_host[0] != '\0') { /* what the flow line shows */
        out_str(&o, ",\"target\":{\"host\":");
        out_json_cstr_or_null(&o, f->target_host);
        out_printf(&o, ",\"port\":%u}", (unsigned)f->target_port);
    }
    out_str(&o, "},\"server\":{");
    out_json_addr(&o, &f->server_addr);
    out_str(&o, ",\"host\":");
    out_json_cstr_or_null(&o, f->server_host);
    out_str(&o, "}");

    out_str(&o, ",\"tls\":");
    if (f->tls) {
        out_str(&o, "{\"sni\":");
        out_json_cstr_or_null(&o, f->sni);
        out_str(&o, ",\"alpn\":");
        out_json_cstr_or_null(&o, f->alpn);
        out_str(&o, ",\"version\":");
        out_json_cstr_or_null(&o, f->tls_version);
        out_str(&o, ",\"cert_subject\":");
        out_json_cstr_or_null(&o, f->cert_subject);
        out_str(&o, ",\"cert_issuer\":");
        out_json_cstr_or_null(&o, f->cert_issuer);
        out_str(&o, "}");
    } else {
        out_str(&o, "null");
    }

    out_str(&o, ",\"request\":{\"method\":");
    out_json_fstr(&o, f, f->method);
    out_str(&o, ",\"url\":");
    out_json_fstr(&o, f, f->url);
    out_str(&o, ",\"httpVersion\":");
    out_json_fstr(&o, f, f->req_version);
    out_str(&o, ",\"headers\":");
    out_json_headers(&o, f, f->req_headers, f->n_req_headers);
    out_printf(&o, ",\"bodySize\":%" PRIu64 "}", f->req_body_size);

    out_str(&o, ",\"response\":");
    if (f->status != 0) {
        out_printf(&o, "{\"status\":%d,\"statusText\":", f->status);
        out_json_fstr(&o, f, f->reason);
        out_str(&o, ",\"httpVersion\":");
        out_json_fstr(&o, f, f->resp_version);
        out_str(&o, ",\"headers\":");
        out_json_headers(&o, f, f->resp_headers, f->n_resp_headers);
        out_printf(&o, ",\"bodySize\":%" PRIu64 "}", f->resp_body_size);
    } else {
        out_str(&o, "null");
    }

    out_str(&o, ",\"timings\":{\"connect\":");
    out_json_ms(&o, f->connect_ns);
    out_str(&o, ",\"ssl\":");
    out_json_ms(&o, f->tls_ns);
    out_str(&o, ",\"send\":");
    out_json_ms(&o, send);
    out_str(&o, ",\"wait\":");
    out_json_ms(&o, wait);
    out_str(&o, ",\"receive\":");
    out_json_ms(&o, receive);
    out_str(&o, "},\"websocket\":");
    if (f->websocket)
        out_printf(&o,
                   "{\"messages_sent\":%llu,\"messages_received\":%llu,\"bytes_sent\":%llu,"
                   "\"bytes_received\":%llu}",
                   (unsigned long long)f->ws_messages[0], (unsigned long long)f->ws_messages[1],
                   (unsigned long long)f->ws_bytes[0], (unsigned long long)f->ws_bytes[1]);
    else
        out_str(&o, "null");
    if (f->replayed)
        out_str(&o, ",\"is_replay\":\"response\"");
    else if (f->replay_request)
        out_str(&o, ",\"is_replay\":\"request\"");
    if (f->rules_note != NULL) {
        out_str(&o, ",\"rules_note\":");
        out_json_cstr_or_null(&o, f->rules_note);
    }
    out_str(&o, ",\"error\":");
    out_json_cstr_or_null(&o, f->error);
    out_str(&o, f->truncated || max_str != 0 ? ",\"truncated\":true}\n"
                                             : ",\"truncated\":false}\n");
    return out_finish(&o);
}

ssize_t flow_format_json(const struct flow *f, char *buf, size_t cap)
{
    ssize_t n = format_json(f, buf, cap, 0);

    /* Escaping can grow the arena six-fold (a header value of HTABs is 6 bytes a byte), so a
     * peer could push a full record past any fixed slot and have it dropped. Every exchange
     * gets a record: the compact form is bounded (FLOW_JSON_COMPACT_MAX). */
    if (n == -ENOSPC)
        n = format_json(f, buf, cap, FLOW_JSON_COMPACT_STR);
    return n;
}
