/* proxy_req.c - see proxy_req.h. */
#include "worker/proxy_req.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "shared/h1_parse.h"
#include "shared/log.h"
#include "shared/target_parse.h"
#include "worker/conn.h"
#include "worker/intercept.h"
#include "worker/tls_peek.h"
#include "worker/worker.h"

static const char proxy_req_established[] = "HTTP/1.1 200 Connection established\r\n\r\n";

static const char proxy_req_not_proxy[] =
    "mitmd is an HTTP proxy, not a web server: this request names no host to forward to.\n"
    "Configure your client to use it as its proxy, for example:\n"
    "  curl -x http://HOST:PORT --cacert ~/.mitmd/mitmd-ca-cert.pem https://example.com/\n"
    "  export https_proxy=http://HOST:PORT http_proxy=http://HOST:PORT\n"
    "and trust the mitmd CA certificate (mitmd-ca-cert.pem in the confdir) for HTTPS.\n";

/* proxy_req_flow_request records the parsed first request head of `c` (method, target as
 * sent, version, fields) in its flow, which proxy_req_head began. */
static void proxy_req_flow_request(struct conn *c, const struct h1_request *req)
{
    struct flow *f = &c->flow;

    flow_str_set(f, &f->method, req->method, req->method_len);
    flow_str_set(f, &f->url, req->target, req->target_len);
    flow_str_set(f, &f->req_version, req->minor_version == 0 ? "HTTP/1.0" : "HTTP/1.1", 8);
    for (size_t i = 0; i < req->num_headers; i++)
        if (flow_add_header(f, FLOW_REQUEST, req->headers[i].name, req->headers[i].name_len,
                            req->headers[i].value, req->headers[i].value_len) != 0)
            break;
}

/* proxy_req_flow_answer completes the flow of an answer made before any relay exists (like
 * mitmproxy's error flows) and hands it to the flow writer. */
static void proxy_req_flow_answer(struct conn *c, int status, const char *reason, size_t body_len,
                                  const char *clen, const char *error)
{
    struct flow *f = &c->flow;

    if (f->t_start == 0)
        flow_begin(f); /* nothing was parsed: the record still names the client */
    flow_set_answer(f, status, reason, clen, body_len, error);
    f->t_response_first = f->t_done = flow_now_ns();
    worker_on_flow(c->w, f);
    flow_next(f);
}

void proxy_req_answer(struct conn *c, int status, const char *reason, const char *body,
                      const char *error)
{
    char head[256], clen[24];
    size_t blen = strlen(body);
    int n;

    if (blen > CONN_BUF_SIZE / 2)
        blen = CONN_BUF_SIZE / 2; /* our bodies are short; the head always fits beside it */
    snprintf(clen, sizeof(clen), "%zu", blen);
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nContent-Type: " FLOW_ANSWER_CTYPE "\r\n"
                 "Content-Length: %s\r\nConnection: close\r\n\r\n",
                 status, reason, clen);
    if (n > 0 && (size_t)n < sizeof(head) && conn_tx_room(&c->cl) >= (size_t)n + blen) {
        (void)conn_queue_client(c, head, (size_t)n);
        (void)conn_queue_client(c, body, blen);
    }
    log_debug("conn %llu: answered %d %s", (unsigned long long)c->id, status, reason);
    proxy_req_flow_answer(c, status, reason, blen, clen, error);
    conn_close_after_flush(c);
}

/* proxy_req_upstream_failed reports that the upstream of `c` cannot be reached: a 502 on
 * the CONNECT itself, or the relay's 502 for an absolute-form request. */
static void proxy_req_upstream_failed(struct conn *c, const char *why)
{
    char body[TLS_CONN_WHY_MAX + TARGET_HOST_MAX + 64];

    log_debug("conn %llu: upstream %s:%u failed: %s", (unsigned long long)c->id, c->host, c->port,
              why);
    if (c->state == CONN_STATE_CONNECTING) {
        snprintf(body, sizeof(body), "mitmd: cannot connect to %s:%u: %s\n", c->host, c->port, why);
        proxy_req_answer(c, 502, "Bad Gateway", body, why);
        return;
    }
    if (c->relay_on && c->up_wanted) {
        c->up_wanted = false;
        snprintf(body, sizeof(body), "cannot connect to %s:%u: %s", c->host, c->port, why);
        h1_relay_upstream_failed(&c->relay, body);
    }
}

static const char *proxy_req_connect_why(int res)
{
    switch (-res) {
    case ECONNREFUSED:
        return "connection refused";
    case ETIMEDOUT:
        return "connect timeout";
    case ENETUNREACH:
        return "network unreachable";
    case EHOSTUNREACH:
        return "host unreachable";
    case ECONNRESET:
        return "connection reset";
    case ECANCELED:
        return "connect timeout";
    default:
        return strerror(-res);
    }
}

/* proxy_req_connect_next starts connecting to the resolved address c->up_addr_idx and, if
 * that cannot even start, to the ones after it. Returns 0 (a connect is in flight), or the
 * last -errno when no address is left. */
static int proxy_req_connect_next(struct conn *c, int err)
{
    struct sockaddr_storage ss;
    const struct sockaddr *sa;
    socklen_t salen;

    for (; (sa = dns_req_addr(&c->dns, c->up_addr_idx, &salen)) != NULL; c->up_addr_idx++) {
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, sa, salen);
        if (ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons(c->port);
        else
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(c->port);
        flow_set_server(&c->flow, c->host, (struct sockaddr *)&ss, salen);
        err = conn_up_open(c, (struct sockaddr *)&ss, salen);
        if (err == 0)
            return 0;
    }
    return err;
}

static void proxy_req_on_dns(struct dns_req *req, int err, const struct sockaddr *sa,
                             socklen_t salen, const char *why)
{
    struct conn *c = (struct conn *)((char *)req - offsetof(struct conn, dns));
    int e;

    (void)sa; /* dns_req_addr(req, 0) */
    (void)salen;
    c->inflight--;
    if (c->state == CONN_STATE_CLOSED) {
        conn_pump(c); /* frees it when nothing else is in flight */
        return;
    }
    if (err) {
        proxy_req_upstream_failed(c, why != NULL ? why : "DNS lookup failed");
        conn_pump(c);
        return;
    }
    c->up_addr_idx = 0;
    e = proxy_req_connect_next(c, -EHOSTUNREACH);
    if (e)
        proxy_req_upstream_failed(c, proxy_req_connect_why(e));
    conn_pump(c);
}

/* proxy_req_start_upstream resolves c->host and connects to it (c->port). */
static void proxy_req_start_upstream(struct conn *c)
{
    int err;

    c->dns.done = proxy_req_on_dns;
    c->t_connect = flow_now_ns();
    err = dns_resolve(&c->w->dns, &c->dns, c->host);
    if (err) {
        proxy_req_upstream_failed(c, "cannot start the DNS lookup");
        return;
    }
    c->inflight++;
}

void proxy_req_on_connected(struct conn *c, int res)
{
    if (res < 0) {
        conn_up_drop(c);
        /* the name has more addresses (an AAAA after a refused A, ...): try the next one */
        if (res != -ECANCELED && dns_req_addr(&c->dns, c->up_addr_idx + 1, &(socklen_t){0})) {
            log_debug("conn %llu: %s:%u address %u failed (%s), trying the next",
                      (unsigned long long)c->id, c->host, c->port, c->up_addr_idx,
                      proxy_req_connect_why(res));
            c->up_addr_idx++;
            res = proxy_req_connect_next(c, res);
            if (res == 0)
                return;
        }
        proxy_req_upstream_failed(c, proxy_req_connect_why(res));
        return;
    }
    c->up.connected = true;
    c->flow.connect_ns = (int64_t)(flow_now_ns() - c->t_connect);
    log_debug("conn %llu: connected to %s:%u", (unsigned long long)c->id, c->host, c->port);
    if (c->state == CONN_STATE_CONNECTING) {
        if (conn_queue_client(c, proxy_req_established, sizeof(proxy_req_established) - 1)) {
            conn_close(c);
            return;
        }
        conn_set_state(c, CONN_STATE_SNIFF);
        return;
    }
    if (c->relay_on && c->up_wanted) {
        c->up_wanted = false;
        h1_relay_upstream_ready(&c->relay, c->host, c->port, false);
    }
}

void proxy_req_connect_timeout(struct conn *c)
{
    conn_up_drop(c);
    proxy_req_upstream_failed(c, "connect timeout");
}

/* proxy_req_relay_init starts the h1 relay on plaintext legs. */
static void proxy_req_relay_init(struct conn *c)
{
    struct h1_relay_opts o;

    memset(&o, 0, sizeof(o));
    o.max_header_size = c->w->cfg->max_header_size;
    o.client_tls = c->cl.tls_on;
    o.on_flow = worker_on_flow;
    o.on_flow_arg = c->w;
    h1_relay_init(&c->relay, &o, &c->flow, c->cl.tls_on ? &c->cl.pin : &c->cl.rx, &c->cl.pout,
                  c->up.tls_on ? &c->up.pin : &c->up.rx, &c->up.pout);
    c->relay_on = true;
}

void proxy_req_upstream_needed(struct conn *c)
{
    const struct h1_target *t = h1_relay_target(&c->relay);

    if (t->tls) {
        /* an absolute https:// URL sent in the clear: we do not originate TLS for it */
        c->up_wanted = false;
        h1_relay_upstream_failed(&c->relay, "https:// URLs must be requested through CONNECT");
        return;
    }
    snprintf(c->host, sizeof(c->host), "%s", t->host);
    c->port = t->port;
    c->host_is_ip = target_host_is_ip(c->host, strlen(c->host));
    if (c->up.fd >= 0)
        conn_up_drop(c);
    proxy_req_start_upstream(c);
}

/* proxy_req_head parses the client's first request head. */
static bool proxy_req_head(struct conn *c)
{
    struct h1_header headers[H1_MAX_HEADERS];
    struct h1_request req;
    struct target t;
    const char *why = NULL;
    struct buf *rx = &c->cl.rx;
    ssize_t n;
    int status;

    if (c->cl.failed || (c->cl.rd_eof && buf_used(rx) == 0)) {
        conn_close(c);
        return true;
    }
    if (buf_used(rx) == 0)
        return false;
    if (c->flow.t_start == 0)
        flow_begin(&c->flow); /* the request's first byte: an error answer is recorded */
    n = h1_parse_request(buf_head(rx), buf_used(rx), c->w->cfg->max_header_size, &req, headers,
                         H1_MAX_HEADERS, &why);
    if (n == -EAGAIN) {
        if (buf_used(rx) < rx->cap && !c->cl.rd_eof)
            return false;
        proxy_req_answer(c, c->cl.rd_eof ? 400 : 431,
                         c->cl.rd_eof ? "Bad Request" : "Request Header Fields Too Large",
                         c->cl.rd_eof ? "mitmd: incomplete request head\n"
                                      : "mitmd: request head too large\n",
                         c->cl.rd_eof ? "incomplete request head" : "request head too large");
        return true;
    }
    if (n < 0) {
        char body[256];

        status = h1_err_status(req.err);
        if (status == 0)
            status = 400;
        snprintf(body, sizeof(body), "mitmd: %s\n", why != NULL ? why : "malformed request");
        proxy_req_answer(c, status, h1_status_reason(status), body,
                         why != NULL ? why : "malformed request");
        return true;
    }
    if (h1_method_is(req.method, req.method_len, "CONNECT")) {
        if (target_parse_connect(req.target, req.target_len, &t, &why) != 0 ||
            t.host_len > TARGET_HOST_MAX) {
            char body[256];

            snprintf(body, sizeof(body), "mitmd: bad CONNECT target: %s\n",
                     why != NULL ? why : "invalid");
            proxy_req_flow_request(c, &req);
            proxy_req_answer(c, 400, "Bad Request", body, "bad CONNECT target");
            return true;
        }
        memcpy(c->host, t.host, t.host_len);
        c->host[t.host_len] = '\0';
        c->port = t.port;
        c->host_is_ip = t.is_ip;
        c->is_connect = true;
        proxy_req_flow_request(c, &req);
        buf_consume(rx, (size_t)n);
        flow_set_server(&c->flow, c->host, NULL, 0);
        log_debug("conn %llu: CONNECT %s:%u", (unsigned long long)c->id, c->host, c->port);
        conn_set_state(c, CONN_STATE_CONNECTING);
        proxy_req_start_upstream(c);
        return true;
    }
    if (target_is_origin_form(req.target, req.target_len) ||
        target_parse_absolute(req.target, req.target_len, &t, &why) != 0) {
        proxy_req_flow_request(c, &req);
        proxy_req_answer(c, 400, "Bad Request", proxy_req_not_proxy,
                         target_is_origin_form(req.target, req.target_len)
                             ? "not a proxy request (origin-form)"
                             : "bad absolute-form target");
        return true;
    }
    /* absolute-form: the relay parses the head again and asks for its upstream */
    proxy_req_relay_init(c);
    conn_set_state(c, CONN_STATE_RELAY);
    return true;
}

/* proxy_req_copy moves what fits from one leg's rx to the other leg's tx (raw tunnel). */
static bool proxy_req_copy(struct conn_leg *from, struct conn_leg *to)
{
    size_t used = buf_used(&from->rx), room, n;

    if (used == 0 || to->fd < 0)
        return false;
    room = conn_tx_room(to);
    n = used < room ? used : room;
    if (n == 0)
        return false;
    memcpy(buf_tail(&to->tx), buf_head(&from->rx), n);
    buf_commit(&to->tx, n);
    buf_consume(&from->rx, n);
    return true;
}

/* proxy_req_tunnel relays raw bytes both ways and half-closes as the peers do. */
static bool proxy_req_tunnel(struct conn *c)
{
    struct conn_leg *cl = &c->cl, *up = &c->up;
    bool moved = proxy_req_copy(cl, up);

    moved = proxy_req_copy(up, cl) || moved; /* both directions, every time */

    if (cl->failed || up->failed) {
        conn_close(c);
        return true;
    }
    /* a side that finished sending: once its bytes are delivered, pass the FIN on */
    if (cl->rd_eof && buf_used(&cl->rx) == 0 && buf_used(&up->tx) == 0 && !up->send_op.armed &&
        !cl->eof_told) {
        cl->eof_told = true;
        (void)shutdown(up->fd, SHUT_WR);
    }
    if (up->rd_eof && buf_used(&up->rx) == 0 && buf_used(&cl->tx) == 0 && !cl->send_op.armed &&
        !up->eof_told) {
        up->eof_told = true;
        (void)shutdown(cl->fd, SHUT_WR);
    }
    if (cl->eof_told && up->eof_told) {
        conn_close(c);
        return true;
    }
    return moved;
}

/* proxy_req_sniff decides what follows the 200 from the client's first bytes. */
static bool proxy_req_sniff(struct conn *c)
{
    struct buf *rx = &c->cl.rx;
    struct h1_header headers[H1_MAX_HEADERS];
    struct h1_request req;
    const char *why = NULL;
    char sni[TLS_CONN_NAME_MAX];
    ssize_t n;

    if (c->cl.failed || (c->cl.rd_eof && buf_used(rx) == 0) || c->up.failed) {
        conn_close(c);
        return true;
    }
    if (buf_used(rx) == 0) {
        if (buf_used(&c->up.rx) > 0 || c->up.rd_eof) {
            conn_set_state(c, CONN_STATE_TUNNEL); /* the server speaks first: not HTTP */
            return true;
        }
        return false;
    }
    if (tls_peek_is_client_hello(buf_head(rx), buf_used(rx))) {
        if (c->w->n_ignore_re > 0) {
            if (worker_host_is_ignored(c->w, c->host)) {
                conn_set_state(c, CONN_STATE_TUNNEL);
                return true;
            }
            n = tls_peek_client_hello_sni(buf_head(rx), buf_used(rx), sni, sizeof(sni));
            if (n == -EAGAIN && buf_used(rx) < rx->cap && !c->cl.rd_eof)
                return false;
            if (n > 0 && worker_host_is_ignored(c->w, sni)) {
                log_debug("conn %llu: %s ignored: passthrough", (unsigned long long)c->id, sni);
                conn_set_state(c, CONN_STATE_TUNNEL);
                return true;
            }
        }
        if (intercept_start(c) != 0)
            conn_close(c);
        return true;
    }
    n = h1_parse_request(buf_head(rx), buf_used(rx), c->w->cfg->max_header_size, &req, headers,
                         H1_MAX_HEADERS, &why);
    if (n == -EPROTO) {
        conn_set_state(c, CONN_STATE_TUNNEL); /* not HTTP: relay it untouched */
        return true;
    }
    proxy_req_relay_init(c);
    h1_relay_upstream_ready(&c->relay, c->host, c->port, false);
    conn_set_state(c, CONN_STATE_RELAY);
    return true;
}

bool proxy_req_step(struct conn *c)
{
    switch (c->state) {
    case CONN_STATE_REQ_HEAD:
        return proxy_req_head(c);
    case CONN_STATE_CONNECTING:
        if (c->cl.failed) {
            conn_close(c);
            return true;
        }
        return false;
    case CONN_STATE_SNIFF:
        return proxy_req_sniff(c);
    case CONN_STATE_TUNNEL:
        return proxy_req_tunnel(c);
    default:
        return false;
    }
}
