/* flowfilter_eval.c - flowfilter_match: walks a compiled filter over one struct flow with
 * short-circuit AND/OR (see flowfilter.c for what each operator reads). Never allocates. */
#include "worker/flowfilter.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "worker/flowfilter_internal.h"

/* ---- evaluation ------------------------------------------------------------------------ */

/* struct ff_eval is one evaluation: the flow and the header blocks built so far. */
struct ff_eval {
    struct flowfilter *ff;
    const struct flow *f;
    size_t used;                    /* bytes of ff->hdr in use */
    int32_t blk_off[2], blk_len[2]; /* per side; blk_off -1 = not built yet */
    struct flowfilter_memo *memo;   /* never NULL during an evaluation */
};

/* ff_find returns the first occurrence of needle in s, or NULL: memchr on the first byte,
 * then memcmp (subjects are short; glibc's memmem pays for a two-way setup each call). */
static const char *ff_find(const char *s, size_t len, const char *needle, size_t nlen)
{
    const char *end = s + len, *p = s;

    if (nlen == 0)
        return s;
    while (nlen <= (size_t)(end - p) &&
           (p = memchr(p, needle[0], (size_t)(end - p) - nlen + 1)) != NULL) {
        if (memcmp(p + 1, needle + 1, nlen - 1) == 0)
            return p;
        p++;
    }
    return NULL;
}

static bool ff_search(struct ff_eval *ev, const struct ff_node *n, const char *s, size_t len)
{
    int rc;

    if (n->lit != NULL) {
        if (n->lit_len > len)
            return false;
        if (!n->icase)
            return ff_find(s, len, n->lit, n->lit_len) != NULL;
        for (size_t i = 0; i + n->lit_len <= len; i++) {
            size_t j = 0;

            while (j < n->lit_len && tolower((unsigned char)s[i + j]) == n->lit[j])
                j++;
            if (j == n->lit_len)
                return true;
        }
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] >= 0x80)
                goto out_pcre2;
        return false;
    }
out_pcre2:
    if (len == 0)
        s = "";
    if (n->jit)
        rc = pcre2_jit_match(n->re, (PCRE2_SPTR)s, len, 0, 0, ev->ff->md, ev->ff->mctx);
    else
        rc = pcre2_match(n->re, (PCRE2_SPTR)s, len, 0, 0, ev->ff->md, ev->ff->mctx);
    return rc >= 0; /* 0: matched, ovector too small */
}

static bool ff_name_is(const struct flow *f, struct flow_str name, const char *want)
{
    size_t wl = strlen(want);

    return name.len == wl && strncasecmp(flow_str_ptr(f, name), want, wl) == 0;
}

/* ff_header_block returns the side's fields as "name: value\r\n" lines (mitmproxy's
 * bytes(headers)), built into the scratch on first use in this evaluation. */
static const char *ff_header_block(struct ff_eval *ev, enum flow_side side, size_t *len)
{
    const struct flow *f = ev->f;
    const struct flow_header *h = side == FLOW_REQUEST ? f->req_headers : f->resp_headers;
    uint16_t n = side == FLOW_REQUEST ? f->n_req_headers : f->n_resp_headers;
    char *p;

    if (ev->blk_off[side] < 0) {
        p = ev->ff->hdr + ev->used;
        ev->blk_off[side] = (int32_t)ev->used;
        for (uint16_t i = 0; i < n && i < FLOW_MAX_HEADERS; i++) {
            size_t need = (size_t)h[i].name.len + h[i].value.len + 4;

            if (ev->used + need > FLOWFILTER_HDR_CAP)
                break; /* cannot happen: names and values come from one arena */
            memcpy(p, flow_str_ptr(f, h[i].name), h[i].name.len);
            p += h[i].name.len;
            *p++ = ':';
            *p++ = ' ';
            memcpy(p, flow_str_ptr(f, h[i].value), h[i].value.len);
            p += h[i].value.len;
            *p++ = '\r';
            *p++ = '\n';
            ev->used += need;
        }
        ev->blk_len[side] = (int32_t)(ev->used - (size_t)ev->blk_off[side]);
    }
    *len = (size_t)ev->blk_len[side];
    return ev->ff->hdr + ev->blk_off[side];
}

/* ff_ctype returns whether a Content-Type value of the side matches the node's regex. */
static bool ff_ctype(struct ff_eval *ev, const struct ff_node *n, enum flow_side side)
{
    const struct flow *f = ev->f;
    const struct flow_header *h = side == FLOW_REQUEST ? f->req_headers : f->resp_headers;
    uint16_t cnt = side == FLOW_REQUEST ? f->n_req_headers : f->n_resp_headers;

    for (uint16_t i = 0; i < cnt && i < FLOW_MAX_HEADERS; i++)
        if (ff_name_is(f, h[i].name, "content-type") &&
            ff_search(ev, n, flow_str_ptr(f, h[i].value), h[i].value.len))
            return true;
    return false;
}

static bool ff_contains(const char *s, size_t len, const char *needle)
{
    return ff_find(s, len, needle, strlen(needle)) != NULL;
}

static bool ff_asset(const struct flow *f)
{
    static const char *const types[] = {"text/javascript",
                                        "application/x-javascript",
                                        "application/javascript",
                                        "text/css",
                                        "image/",
                                        "font/",
                                        "application/font"};

    if (f->status == 0)
        return false;
    for (uint16_t i = 0; i < f->n_resp_headers && i < FLOW_MAX_HEADERS; i++) {
        const struct flow_header *h = &f->resp_headers[i];

        if (!ff_name_is(f, h->name, "content-type"))
            continue;
        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
            if (ff_contains(flow_str_ptr(f, h->value), h->value.len, types[t]))
                return true;
    }
    return false;
}

static bool ff_websocket(const struct flow *f)
{
    if (f->status != 101)
        return false;
    for (uint16_t i = 0; i < f->n_resp_headers && i < FLOW_MAX_HEADERS; i++) {
        const struct flow_header *h = &f->resp_headers[i];

        if (ff_name_is(f, h->name, "upgrade") && h->value.len == 9 &&
            strncasecmp(flow_str_ptr(f, h->value), "websocket", 9) == 0)
            return true;
    }
    return false;
}

/* ff_host_of takes the host out of an authority or URL ("https://[::1]:8443/x" -> "::1").
 * Returns false if there is none. */
static bool ff_host_of(const char *s, size_t len, bool is_url, const char **host, size_t *hlen)
{
    const char *end = s + len, *p = s, *h;
    const char *sep = is_url ? ff_find(s, len, "://", 3) : NULL;

    if (sep != NULL)
        p = sep + 3;
    else if (is_url && len > 0 && s[0] == '/')
        return false; /* origin-form: no authority */
    h = p;
    while (p < end && *p != '/' && *p != '?' && *p != '#')
        p++;
    end = p;
    for (const char *at = h; at < end; at++) /* userinfo@ */
        if (*at == '@')
            h = at + 1;
    if (h < end && *h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));

        if (rb == NULL)
            return false;
        *host = h + 1;
        *hlen = (size_t)(rb - h - 1);
        return true;
    }
    for (const char *c = end; c > h; c--)
        if (c[-1] == ':') {
            end = c - 1;
            break;
        }
    *host = h;
    *hlen = (size_t)(end - h);
    return *hlen > 0;
}

/* ff_url_port returns the URL's explicit port, else its scheme's default, else 0. */
static unsigned ff_url_port(const char *s, size_t len)
{
    const char *sep = ff_find(s, len, "://", 3);
    const char *p, *end = s + len, *colon = NULL;
    unsigned port = 0;

    if (sep == NULL)
        return 0;
    for (p = sep + 3; p < end && *p != '/' && *p != '?' && *p != '#'; p++)
        if (*p == ':')
            colon = p;
        else if (*p == ']')
            colon = NULL;
    if (colon != NULL && colon + 1 < p) {
        for (const char *d = colon + 1; d < p && *d >= '0' && *d <= '9' && port < 65536; d++)
            port = port * 10 + (unsigned)(*d - '0');
        return port < 65536 ? port : 0;
    }
    if (sep - s == 5 && strncasecmp(s, "https", 5) == 0)
        return 443;
    if (sep - s == 4 && strncasecmp(s, "http", 4) == 0)
        return 80;
    return 0;
}

/* ff_addr_text writes "ADDR:PORT" (no brackets, as Python's peername) or returns 0. */
static size_t ff_addr_text(const struct sockaddr_storage *ss, const char *name, unsigned port,
                           char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "";
    int n;

    if (ss->ss_family == AF_INET && (name == NULL || name[0] == '\0') && cap >= 22) {
        /* the common case by hand: inet_ntop + snprintf cost more than the regex */
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        const uint8_t *b = (const uint8_t *)&sin->sin_addr;
        char tmp[8];
        size_t k = 0;
        int t = 0;

        port = ntohs(sin->sin_port);
        for (int i = 0; i < 4; i++) {
            if (b[i] >= 100)
                out[k++] = (char)('0' + b[i] / 100);
            if (b[i] >= 10)
                out[k++] = (char)('0' + b[i] / 10 % 10);
            out[k++] = (char)('0' + b[i] % 10);
            out[k++] = i < 3 ? '.' : ':';
        }
        do
            tmp[t++] = (char)('0' + port % 10);
        while ((port /= 10) > 0);
        while (t > 0)
            out[k++] = tmp[--t];
        return k;
    }
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        port = ntohs(sin->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        port = ntohs(sin6->sin6_port);
    }
    if (name == NULL || name[0] == '\0')
        name = ip;
    if (name[0] == '\0')
        return 0;
    n = snprintf(out, cap, "%s:%u", name, port);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* ff_memo_hosts finds the URL's host and the first Host field's once per flow. */
static void ff_memo_hosts(struct ff_eval *ev)
{
    struct flowfilter_memo *m = ev->memo;
    const struct flow *f = ev->f;

    if (m->done)
        return;
    m->done = true;
    m->hdr_found = m->hdr_ok = false; /* no Host field (HTTP/2): nothing from one */
    m->url_ok = ff_host_of(flow_str_ptr(f, f->url), f->url.len, true, &m->url_host, &m->url_hlen);
    for (uint16_t i = 0; i < f->n_req_headers && i < FLOW_MAX_HEADERS; i++) {
        const struct flow_header *hd = &f->req_headers[i];

        if (!ff_name_is(f, hd->name, "host"))
            continue;
        m->hdr_found = true;
        m->hdr_ok = ff_host_of(flow_str_ptr(f, hd->value), hd->value.len, false, &m->hdr_host,
                               &m->hdr_hlen);
        /* the same host again (the usual case) cannot match where the URL's did not */
        if (m->hdr_ok && m->url_ok && m->hdr_hlen == m->url_hlen &&
            memcmp(m->hdr_host, m->url_host, m->url_hlen) == 0)
            m->hdr_ok = false;
        break;
    }
}

static bool ff_domain(struct ff_eval *ev, const struct ff_node *n)
{
    const struct flowfilter_memo *m = ev->memo;

    ff_memo_hosts(ev);
    if (m->url_ok && ff_search(ev, n, m->url_host, m->url_hlen))
        return true;
    if (m->hdr_ok && ff_search(ev, n, m->hdr_host, m->hdr_hlen))
        return true;
    /* mitmproxy's request.host too: the target the client addressed, where the URL's host
     * came from the Host field (a CONNECT to one name, Host naming another) */
    return ev->f->url_from_host && ev->f->target_host[0] != '\0' &&
           ff_search(ev, n, ev->f->target_host, strlen(ev->f->target_host));
}

static bool ff_eval_node(struct ff_eval *ev, int i)
{
    const struct ff_node *n = &ev->ff->nodes[i];
    const struct flow *f = ev->f;
    char addr[FLOW_HOST_MAX + 16];
    const char *s;
    size_t len;

    switch ((enum ff_op)n->op) {
    case FF_TRUE:
        return true;
    case FF_FALSE:
    case FF_BODY:
    case FF_EMPTY:
        return false;
    case FF_AND:
        return ff_eval_node(ev, n->a) && ff_eval_node(ev, n->b);
    case FF_OR:
        return ff_eval_node(ev, n->a) || ff_eval_node(ev, n->b);
    case FF_NOT:
        return !ff_eval_node(ev, n->a);
    case FF_REQ:
        return f->status == 0;
    case FF_RESP:
        return f->status != 0;
    case FF_ERR:
        return f->error[0] != '\0';
    case FF_ASSET:
        return ff_asset(f);
    case FF_WEBSOCKET:
        return ff_websocket(f);
    case FF_CODE:
        return f->status != 0 && f->status == n->code;
    case FF_URL:
        return ff_search(ev, n, flow_str_ptr(f, f->url), f->url.len);
    case FF_DOMAIN:
        return ff_domain(ev, n);
    case FF_METHOD:
        return ff_search(ev, n, flow_str_ptr(f, f->method), f->method.len);
    case FF_HEAD:
        s = ff_header_block(ev, FLOW_REQUEST, &len);
        if (ff_search(ev, n, s, len))
            return true;
        if (f->status == 0)
            return false;
        s = ff_header_block(ev, FLOW_RESPONSE, &len);
        return ff_search(ev, n, s, len);
    case FF_HEAD_REQ:
        s = ff_header_block(ev, FLOW_REQUEST, &len);
        return ff_search(ev, n, s, len);
    case FF_HEAD_RESP:
        if (f->status == 0)
            return false;
        s = ff_header_block(ev, FLOW_RESPONSE, &len);
        return ff_search(ev, n, s, len);
    case FF_CTYPE:
        return ff_ctype(ev, n, FLOW_REQUEST) || (f->status != 0 && ff_ctype(ev, n, FLOW_RESPONSE));
    case FF_CTYPE_REQ:
        return ff_ctype(ev, n, FLOW_REQUEST);
    case FF_CTYPE_RESP:
        return f->status != 0 && ff_ctype(ev, n, FLOW_RESPONSE);
    case FF_SRC:
        len = ff_addr_text(&f->client_addr, NULL, 0, addr, sizeof(addr));
        return len > 0 && ff_search(ev, n, addr, len);
    case FF_DST:
        len = f->server_addr.ss_family != 0 || f->server_host[0] == '\0'
                  ? ff_addr_text(&f->server_addr, f->server_host, 0, addr, sizeof(addr))
                  : ff_addr_text(&f->server_addr, f->server_host,
                                 ff_url_port(flow_str_ptr(f, f->url), f->url.len), addr,
                                 sizeof(addr));
        return len > 0 && ff_search(ev, n, addr, len);
    }
    return false;
}

bool flowfilter_match_memo(struct flowfilter *ff, const struct flow *f,
                           struct flowfilter_memo *memo)
{
    struct flowfilter_memo local;
    struct ff_eval ev = {.ff = ff, .f = f, .blk_off = {-1, -1}, .memo = memo};

    if (ff == NULL)
        return true;
    if (memo == NULL) {
        local = (struct flowfilter_memo){0};
        ev.memo = &local;
    }
    return ff_eval_node(&ev, ff->root);
}

bool flowfilter_match(struct flowfilter *ff, const struct flow *f)
{
    return flowfilter_match_memo(ff, f, NULL);
}
