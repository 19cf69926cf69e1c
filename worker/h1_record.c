/* h1_record.c - see h1_record.h. */
#include "worker/h1_record.h"

#include <stdio.h>
#include <string.h>

uint16_t h1_record_default_port(bool tls)
{
    return tls ? 443 : 80;
}

/* struct url_writer builds a URL in a bounded stack buffer. */
struct url_writer {
    char *p;
    size_t cap, len;
};

static void url_put(struct url_writer *w, const char *s, size_t n)
{
    if (n > w->cap - w->len)
        n = w->cap - w->len;
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void url_put_authority(struct url_writer *w, const char *host, size_t host_len,
                              bool is_ipv6, uint16_t port, bool tls)
{
    char portbuf[8];
    size_t n = sizeof(portbuf);

    if (is_ipv6)
        url_put(w, "[", 1);
    url_put(w, host, host_len);
    if (is_ipv6)
        url_put(w, "]", 1);
    if (port != h1_record_default_port(tls)) {
        unsigned v = port;

        do { /* ":%u" by hand: this runs for every request of a non-default port */
            portbuf[--n] = (char)('0' + v % 10);
            v /= 10;
        } while (v > 0);
        portbuf[--n] = ':';
        url_put(w, portbuf + n, sizeof(portbuf) - n);
    }
}

void h1_record_authority(const struct h1_target *t, char *out, size_t cap)
{
    struct url_writer w = {.p = out, .cap = cap > 0 ? cap - 1 : 0};

    url_put_authority(&w, t->host, strlen(t->host), t->is_ipv6, t->port, t->tls);
    if (cap > 0)
        out[w.len] = '\0';
}

/* record_request copies the request line and fields of `req` into the flow; the URL is
 * scheme://authority/path, with the authority from the absolute target, else from the Host
 * field (url_from_host), else from the upstream. */
void h1_record_request(struct h1_relay *r, const struct h1_request *req, const struct target *t,
                           bool target_ok)
{
    struct flow *f = r->_flow;
    char url[H1_REQUEST_LINE_MAX + TARGET_HOST_MAX + 32];
    struct url_writer w = {.p = url, .cap = sizeof(url)};
    bool tls;

    flow_str_set(f, &f->method, req->method, req->method_len);
    flow_str_set(f, &f->req_version, req->minor_version == 0 ? "HTTP/1.0" : "HTTP/1.1", 8);
    if (!target_ok) {
        url_put(&w, req->target, req->target_len);
    } else if (t->form == TARGET_FORM_ABSOLUTE) {
        url_put(&w, t->tls ? "https://" : "http://", t->tls ? 8 : 7);
        url_put_authority(&w, t->host, t->host_len, t->is_ipv6, t->port, t->tls);
        url_put(&w, t->path, t->path_len);
        if (t->query != NULL)
            url_put(&w, t->query, t->query_len);
    } else {
        struct target host;
        const char *why = NULL;

        tls = r->_opts.client_tls;
        url_put(&w, tls ? "https://" : "http://", tls ? 8 : 7);
        f->url_from_host = r->_opts.host_rewrite == NULL; /* the line shows the target's */
        if (r->_opts.host_rewrite != NULL)
            url_put(&w, r->_opts.host_rewrite, strlen(r->_opts.host_rewrite));
        else if (req->host != NULL &&
                 target_parse_host_port(req->host, req->host_len, h1_record_default_port(tls), &host,
                                        &why) == 0)
            url_put_authority(&w, host.host, host.host_len, host.is_ipv6, host.port, tls);
        else if (r->_has_upstream)
            url_put_authority(&w, r->_home.host, strlen(r->_home.host), r->_home.is_ipv6,
                              r->_home.port, tls);
        if (t->form != TARGET_FORM_ASTERISK)
            url_put(&w, req->target, req->target_len);
    }
    flow_str_set(f, &f->url, url, w.len);
    for (size_t i = 0; i < req->num_headers; i++)
        if (((r->_opts.proxy_auth == NULL && r->_opts.www_auth == NULL) || /* --proxyauth: */
             !h1_header_name_is(&req->headers[i], "Proxy-Authorization")) && /* no password */
            (r->_opts.www_auth == NULL || !h1_header_name_is(&req->headers[i], "Authorization")))
            flow_add_header(f, FLOW_REQUEST, req->headers[i].name, req->headers[i].name_len,
                            req->headers[i].value, req->headers[i].value_len);
}

void h1_record_response(struct h1_relay *r, const struct h1_response *resp)
{
    struct flow *f = r->_flow;

    f->status = resp->status;
    flow_str_set(f, &f->reason, resp->reason, resp->reason_len);
    flow_str_set(f, &f->resp_version, resp->minor_version == 0 ? "HTTP/1.0" : "HTTP/1.1", 8);
    for (size_t i = 0; i < resp->num_headers; i++)
        flow_add_header(f, FLOW_RESPONSE, resp->headers[i].name, resp->headers[i].name_len,
                        resp->headers[i].value, resp->headers[i].value_len);
}

