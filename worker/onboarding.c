/* onboarding.c - see onboarding.h. The page follows mitmproxy's onboarding app (the same
 * platforms, the same three files and content types), in one static HTML document with inline
 * CSS and no script, so that it needs nothing but this one response. */
#include "worker/onboarding.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "certcache/certstore.h"
#include "shared/config.h"
#include "shared/h1_parse.h"
#include "shared/log.h"
#include "shared/target_parse.h"
#include "worker/conn.h"
#include "worker/flow.h"
#include "worker/proxy_req.h"
#include "worker/worker.h"

/* ONBOARDING_ANSWER_MAX bounds a whole answer: the page or the largest file, plus the head. */
#define ONBOARDING_ANSWER_MAX (ONBOARDING_PAGE_MAX + 1024)

/* The page: %s is the confdir (twice). */
static const char onboarding_page[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>mitmd: install the CA certificate</title>\n<style>\n"
    "body{font:15px/1.45 system-ui,sans-serif;max-width:56em;margin:1.5em auto;padding:0 1em;"
    "color:#222}\nh1{font-size:1.5em;margin:.2em 0 .6em}h2{font-size:1.1em;margin:0 0 .3em}\n"
    ".p{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:.7em 0}\n"
    "a.b{display:inline-block;background:#2e7d32;color:#fff;padding:.2em .7em;"
    "border-radius:4px;text-decoration:none;margin:.1em .3em .3em 0;font-size:.92em}\n"
    "code{background:#f3f3f3;padding:0 .25em;border-radius:3px}ol{margin:.2em 0}"
    ".n{color:#666;font-size:.9em}\n</style></head><body>\n"
    "<h1>Install mitmd's Certificate Authority</h1>\n"
    "<p>Traffic from this device passes through mitmd. To let it inspect HTTPS, trust its CA "
    "certificate on this device. The certificate was generated for this mitmd only "
    "(<code>%s/mitmd-ca-cert.pem</code>).</p>\n"
    "<div class=\"p\" id=\"windows\"><h2>Windows</h2>"
    "<a class=\"b\" href=\"/cert/p12\">Get mitmd-ca-cert.p12</a>\n<ol>"
    "<li>Double-click the P12 file, pick the store location, <i>Next</i>.</li>"
    "<li>Leave the password empty, <i>Next</i>.</li>"
    "<li>Choose <i>Place all certificates in the following store</i> &rarr; "
    "<i>Trusted Root Certification Authorities</i>, <i>Next</i>, <i>Finish</i>.</li>"
    "<li>Or, as administrator: <code>certutil.exe -addstore root mitmd-ca-cert.cer</code></li>"
    "</ol></div>\n"
    "<div class=\"p\" id=\"macos\"><h2>macOS</h2>"
    "<a class=\"b\" href=\"/cert/pem\">Get mitmd-ca-cert.pem</a>\n<ol>"
    "<li>Double-click the PEM file: <i>Keychain Access</i> opens.</li>"
    "<li>Open the certificate \"mitmd\", set <i>When using this certificate</i> to "
    "<i>Always Trust</i>.</li>"
    "<li>Or: <code>sudo security add-trusted-cert -d -p ssl -p basic -k "
    "/Library/Keychains/System.keychain mitmd-ca-cert.pem</code></li></ol></div>\n"
    "<div class=\"p\" id=\"linux\"><h2>Linux (Debian, Ubuntu)</h2>"
    "<a class=\"b\" href=\"/cert/pem\">Get mitmd-ca-cert.pem</a>\n<ol>"
    "<li><code>sudo cp mitmd-ca-cert.pem /usr/local/share/ca-certificates/mitmd.crt</code>"
    "</li><li><code>sudo update-ca-certificates</code></li>"
    "<li>curl alone: <code>curl --cacert mitmd-ca-cert.pem ...</code></li></ol></div>\n"
    "<div class=\"p\" id=\"firefox\"><h2>Firefox <span class=\"n\">(its own trust store)</span>"
    "</h2><a class=\"b\" href=\"/cert/pem\">Get mitmd-ca-cert.pem</a>\n<ol>"
    "<li><i>Settings &rarr; Privacy &amp; Security &rarr; View Certificates &rarr; "
    "Authorities &rarr; Import</i>, pick the file.</li>"
    "<li>Tick <i>Trust this CA to identify websites</i>, <i>OK</i>.</li></ol></div>\n"
    "<div class=\"p\" id=\"ios\"><h2>iOS</h2>"
    "<a class=\"b\" href=\"/cert/pem\">Get mitmd-ca-cert.pem</a>\n<ol>"
    "<li>Open this page in Safari and download the certificate; allow the profile.</li>"
    "<li><i>Settings &rarr; General &rarr; VPN &amp; Device Management</i>: install it.</li>"
    "<li><b>Then</b> <i>Settings &rarr; General &rarr; About &rarr; Certificate Trust "
    "Settings</i>: turn on full trust for \"mitmd\".</li></ol></div>\n"
    "<div class=\"p\" id=\"android\"><h2>Android</h2>"
    "<a class=\"b\" href=\"/cert/cer\">Get mitmd-ca-cert.cer</a>\n<ol>"
    "<li>Open the CER file, name it \"mitmd\", use <i>VPN and apps</i>.</li>"
    "<li>Or <i>Settings &rarr; Security &rarr; Encryption &amp; credentials &rarr; Install a "
    "certificate &rarr; CA certificate</i>.</li>"
    "<li class=\"n\">Apps targeting Android 7+ trust user CAs only if they opt in "
    "(network security config); browsers do.</li></ol></div>\n"
    "<div class=\"p\" id=\"other\"><h2>Other platforms</h2>"
    "<a class=\"b\" href=\"/cert/pem\">mitmd-ca-cert.pem</a>"
    "<a class=\"b\" href=\"/cert/p12\">mitmd-ca-cert.p12</a>"
    "<a class=\"b\" href=\"/cert/cer\">mitmd-ca-cert.cer</a></div>\n"
    "<p class=\"n\">This page is served by the mitmd you are connected through (its files in "
    "<code>%s</code>); it never reaches the Internet.</p>\n</body></html>\n";

struct onboarding_file {
    const char *route;    /* path */
    const char *tag;      /* certstore FILE tag */
    const char *ctype;    /* mitmproxy's content types */
    const char *filename; /* Content-Disposition */
};

static const struct onboarding_file onboarding_files[] = {
    {"/cert/pem", "pem", "application/x-x509-ca-cert", "mitmd-ca-cert.pem"},
    {"/cert/p12", "p12", "application/x-pkcs12", "mitmd-ca-cert.p12"},
    {"/cert/cer", "cer", "application/x-x509-ca-cert", "mitmd-ca-cert.cer"},
};

bool onboarding_is_for(const struct config *cfg, const char *p, size_t n)
{
    static const char scheme[] = "http://";
    const char *host = cfg->onboarding_host;
    size_t i = 0, hl, k;

    if (!cfg->onboarding || host == NULL || host[0] == '\0')
        return false;
    hl = strlen(host);
    while (i < n && i < 16 && p[i] >= 'A' && p[i] <= 'Z') /* the method token */
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return false;
    i++;
    for (k = 0; k < sizeof(scheme) - 1; k++, i++)
        if (i >= n || (p[i] | 0x20) != scheme[k])
            return false;
    if (n - i <= hl || strncasecmp(p + i, host, hl) != 0)
        return false;
    i += hl;
    if (p[i] == ':') { /* an explicit port: it must be ONBOARDING_PORT */
        unsigned port = 0;

        for (i++; i < n && p[i] >= '0' && p[i] <= '9' && port <= 65535; i++)
            port = port * 10 + (unsigned)(p[i] - '0');
        return i < n && port == cfg->onboarding_port && (p[i] == '/' || p[i] == ' ');
    }
    return cfg->onboarding_port == 80 && (p[i] == '/' || p[i] == ' ' || p[i] == '?');
}

ssize_t onboarding_render(char *out, size_t cap, const char *path, size_t path_len, bool head,
                          bool get, const char *confdir, const void *pem, size_t pem_len,
                          const void *p12, size_t p12_len, const void *cer, size_t cer_len,
                          int *status, size_t *body_len)
{
    char page[ONBOARDING_PAGE_MAX];
    const void *body = NULL;
    const char *ctype = "text/plain; charset=utf-8", *fname = NULL, *reason = "OK";
    const void *data[3] = {pem, p12, cer};
    size_t len[3] = {pem_len, p12_len, cer_len}, blen = 0;
    const char *q = memchr(path, '?', path_len);
    int n, st = 200;

    if (q != NULL)
        path_len = (size_t)(q - path);
    if (!get && !head) {
        st = 405;
        reason = "Method Not Allowed";
        body = "mitmd onboarding: only GET and HEAD\n";
        blen = strlen(body);
    } else if (path_len == 1 && path[0] == '/') {
        n = snprintf(page, sizeof(page), onboarding_page, confdir, confdir);
        if (n < 0 || (size_t)n >= sizeof(page))
            return -ENOSPC;
        body = page;
        blen = (size_t)n;
        ctype = "text/html; charset=utf-8";
    } else {
        st = 404;
        for (size_t i = 0; i < sizeof(onboarding_files) / sizeof(onboarding_files[0]); i++) {
            const struct onboarding_file *f = &onboarding_files[i];

            if (strlen(f->route) != path_len || memcmp(f->route, path, path_len) != 0)
                continue;
            if (data[i] != NULL && len[i] > 0) {
                st = 200;
                body = data[i];
                blen = len[i];
                ctype = f->ctype;
                fname = f->filename;
            }
            break;
        }
        if (st == 404) {
            reason = "Not Found";
            body = "mitmd onboarding: no such page (see /)\n";
            blen = strlen(body);
        }
    }
    n = snprintf(out, cap,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s%s%sContent-Length: %zu\r\n"
                 "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                 st, reason, ctype, fname != NULL ? "Content-Disposition: inline; filename=" : "",
                 fname != NULL ? fname : "", fname != NULL ? "\r\n" : "", blen);
    if (n < 0 || (size_t)n >= cap || (!head && cap - (size_t)n < blen))
        return -ENOSPC;
    if (!head) {
        memcpy(out + n, body, blen);
        n += (int)blen;
    }
    *status = st;
    *body_len = blen;
    return n;
}

/* onboarding_record reports the exchange (method, URL, status, the answer's fields). */
static void onboarding_record(struct conn *c, const struct h1_request *req, int status,
                              size_t body_len)
{
    struct flow *f = &c->flow;
    char clen[24], url[2048];
    int ul;

    flow_str_set(f, &f->method, req->method, req->method_len);
    if (req->target_len > 0 && req->target[0] == '/') { /* inside a CONNECT: the full URL */
        ul = snprintf(url, sizeof(url), "%s://%s:%u%.*s", c->cl.tls_on ? "https" : "http",
                      c->upstream.host, c->upstream.port, (int)req->target_len, req->target);
        flow_str_set(f, &f->url, url, ul < 0 ? 0 : (size_t)ul < sizeof(url) ? (size_t)ul
                                                                            : sizeof(url) - 1);
    } else {
        flow_str_set(f, &f->url, req->target, req->target_len);
    }
    flow_str_set(f, &f->req_version, req->minor_version == 0 ? "HTTP/1.0" : "HTTP/1.1", 8);
    for (size_t i = 0; i < req->num_headers; i++)
        if (flow_add_header(f, FLOW_REQUEST, req->headers[i].name, req->headers[i].name_len,
                            req->headers[i].value, req->headers[i].value_len) != 0)
            break;
    flow_set_server(f, c->w->cfg->onboarding_host, NULL, 0);
    f->error[0] = '\0'; /* an onboarding CONNECT has no upstream by design: not an error */
    f->status = status;
    f->answered = true;
    flow_str_set(f, &f->resp_version, "HTTP/1.1", 8);
    flow_str_set(f, &f->reason, status == 200 ? "OK" : status == 404 ? "Not Found" : "Method "
                                                                            "Not Allowed",
                 status == 200 ? 2 : status == 404 ? 9 : 18);
    snprintf(clen, sizeof(clen), "%zu", body_len);
    flow_add_header(f, FLOW_RESPONSE, "Content-Length", 14, clen, strlen(clen));
    f->resp_body_size = body_len;
    f->t_response_first = f->t_done = flow_now_ns();
    worker_on_flow(c->w, f);
    flow_next(f);
}

bool onboarding_is_host(const struct conn *c)
{
    const struct config *cfg = c->w->cfg;

    return cfg->onboarding && cfg->onboarding_host != NULL && cfg->onboarding_host[0] != '\0' &&
           strcasecmp(c->upstream.host, cfg->onboarding_host) == 0;
}

bool onboarding_connect(struct conn *c)
{
    static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";

    if (!onboarding_is_host(c))
        return false;
    log_debug("conn %llu: CONNECT %s:%u: onboarding, no upstream", (unsigned long long)c->id,
              c->upstream.host, c->upstream.port);
    if (conn_queue_client(c, established, sizeof(established) - 1) != 0) {
        conn_close(c);
        return true;
    }
    proxy_req_start_sniff(c);
    return true;
}

int onboarding_step(struct conn *c)
{
    struct h1_header headers[H1_MAX_HEADERS];
    const struct certstore_entry *files[3];
    const struct config *cfg = c->w->cfg;
    char answer[ONBOARDING_ANSWER_MAX];
    struct buf *in = transport_in(&c->cl);
    struct h1_request req;
    struct target t;
    const char *why = NULL;
    size_t body_len = 0;
    int status = 0;
    ssize_t n, alen;

    bool inside = onboarding_is_host(c); /* every request inside a CONNECT to the host */

    if (!cfg->onboarding || buf_used(in) == 0 ||
        (!inside && (c->cl.tls_on || !onboarding_is_for(cfg, (const char *)buf_head(in),
                                                         buf_used(in)))))
        return 0;
    n = h1_parse_request(buf_head(in), buf_used(in), cfg->max_header_size, &req, headers,
                         H1_MAX_HEADERS, &why);
    if (n == -EAGAIN) /* cut off, or too large: the relay answers 400 / 431 */
        return c->cl.rd_eof || c->cl.failed || buf_used(in) >= cfg->max_header_size ||
                       buf_room(in) == 0
                   ? 0
                   : -EAGAIN;
    if (n < 0 || target_parse_request(req.target, req.target_len, false, &t, &why) != 0)
        return 0; /* malformed: the relay answers 400 with the reason */
    if (!inside && t.form != TARGET_FORM_ABSOLUTE)
        return 0;
    if (transport_has_output(&c->cl))
        return -EAGAIN; /* an earlier answer is still leaving: keep the order */
    if (c->flow.t_start == 0)
        flow_begin(&c->flow);
    for (size_t i = 0; i < 3; i++)
        files[i] = certstore_file(&c->w->tls.certs, onboarding_files[i].tag);
    alen = onboarding_render(
        answer, sizeof(answer), t.path, t.path_len,
        req.method_len == 4 && memcmp(req.method, "HEAD", 4) == 0,
        req.method_len == 3 && memcmp(req.method, "GET", 3) == 0, cfg->confdir,
        files[0] ? files[0]->data : NULL, files[0] ? files[0]->data_len : 0,
        files[1] ? files[1]->data : NULL, files[1] ? files[1]->data_len : 0,
        files[2] ? files[2]->data : NULL, files[2] ? files[2]->data_len : 0, &status, &body_len);
    /* the protocol's plaintext output: the transport encrypts it on a TLS leg */
    if (alen < 0 || buf_room(&c->cl.pout) < (size_t)alen ||
        buf_append(&c->cl.pout, answer, (size_t)alen) != (size_t)alen) {
        log_warn("conn %llu: onboarding answer does not fit the output",
                 (unsigned long long)c->id);
        conn_close(c);
        return 1;
    }
    buf_consume(in, buf_used(in)); /* Connection: close: nothing after this request is read */
    log_debug("conn %llu: onboarding %.*s %d", (unsigned long long)c->id, (int)req.target_len,
              req.target, status);
    onboarding_record(c, &req, status, body_len);
    conn_close_after_flush(c);
    return 1;
}
