/* mb_replay.c - see mb_replay.h. */
#include "bench/mb_replay.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>

#include "bench/mb_conn.h"
#include "bench/mb_resp.h"
#include "shared/har.h"
#include "shared/target_parse.h"

/* ---- loading ------------------------------------------------------------------------- */

/* iso_ns parses "2026-12-02T13:04:05.123Z" into ns since the epoch (0 when unreadable). */
static uint64_t iso_ns(const char *s)
{
    struct tm tm;
    const char *p;
    double frac = 0;

    if (s == NULL)
        return 0;
    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL)
        return 0;
    if (*p == '.')
        frac = strtod(p, NULL);
    return (uint64_t)timegm(&tm) * 1000000000ull + (uint64_t)(frac * 1e9);
}

static bool hop_field(const char *n)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
                                      "transfer-encoding", "te", "upgrade", "content-length",
                                      "host", "proxy-authorization"};

    if (n[0] == ':')
        return true;
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (strcasecmp(n, hop[i]) == 0)
            return true;
    return false;
}

/* build_head writes the request head (target given) into a new string. */
static char *build_head(const char *method, const char *target, size_t tlen, const char *authority,
                        json_t *headers, size_t body_len, bool with_len, size_t *len)
{
    struct har_buf b = {0};
    json_t *h;
    size_t i;

    har_buf_str(&b, method);
    har_buf_put(&b, " ", 1);
    har_buf_put(&b, target, tlen);
    har_buf_str(&b, " HTTP/1.1\r\nHost: ");
    har_buf_str(&b, authority);
    har_buf_str(&b, "\r\n");
    json_array_foreach(headers, i, h) {
        const char *n = json_string_value(json_object_get(h, "name"));
        const char *v = json_string_value(json_object_get(h, "value"));

        if (n == NULL || v == NULL || hop_field(n) || strpbrk(n, "\r\n: ") != NULL ||
            strpbrk(v, "\r\n") != NULL)
            continue;
        har_buf_str(&b, n);
        har_buf_str(&b, ": ");
        har_buf_str(&b, v);
        har_buf_str(&b, "\r\n");
    }
    if (with_len)
        har_buf_printf(&b, "Content-Length: %zu\r\n", body_len);
    har_buf_put(&b, "\r\n", 3); /* with a NUL */
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len - 1;
    return b.p;
}

static int add_line(struct mb_replay *rp, size_t *cap, const char *line, size_t len,
                    uint64_t *t0)
{
    json_t *rec = json_loadb(line, len, 0, NULL);
    json_t *req = json_object_get(rec, "request"), *rb = json_object_get(rec, "request_body");
    const char *method = json_string_value(json_object_get(req, "method"));
    const char *url = json_string_value(json_object_get(req, "url"));
    const char *why = NULL;
    struct mb_replay_req *q;
    struct target t;
    char authority[TARGET_HOST_MAX + 16];
    const char *b64;
    bool with_len;
    int err = 0;

    if (method == NULL || url == NULL || strpbrk(method, " \r\n") != NULL ||
        target_parse_absolute(url, strlen(url), &t, &why) != 0) {
        rp->skipped++;
        goto out;
    }
    if (rp->n == *cap) {
        size_t ncap = *cap == 0 ? 1024 : *cap * 2;
        struct mb_replay_req *r = realloc(rp->reqs, ncap * sizeof(*r));

        if (r == NULL) {
            err = -ENOMEM;
            goto out;
        }
        rp->reqs = r;
        *cap = ncap;
    }
    q = &rp->reqs[rp->n];
    memset(q, 0, sizeof(*q));
    q->at_ns = iso_ns(json_string_value(json_object_get(rec, "startedDateTime")));
    if (*t0 == 0 || (q->at_ns != 0 && q->at_ns < *t0))
        *t0 = q->at_ns;
    q->status = (int)json_integer_value(json_object_get(json_object_get(rec, "response"),
                                                        "status"));
    q->tls = t.tls;
    q->port = t.port;
    q->host = strndup(t.host, t.host_len);
    b64 = json_string_value(json_object_get(rb, "base64"));
    if (b64 != NULL) {
        q->body = malloc(strlen(b64) / 4 * 3 + 3);
        ssize_t n = q->body != NULL ? har_base64_decode(b64, strlen(b64), q->body) : -1;

        q->body_len = n > 0 ? (size_t)n : 0;
        if (json_is_true(json_object_get(rb, "truncated")))
            rp->cut_bodies++;
    } else if (json_integer_value(json_object_get(req, "bodySize")) > 0) {
        rp->cut_bodies++; /* recorded without save_bodies: sent without a body */
    }
    snprintf(authority, sizeof(authority), "%s%.*s%s", t.is_ipv6 ? "[" : "", (int)t.host_len,
             t.host, t.is_ipv6 ? "]" : "");
    if (t.port_explicit)
        snprintf(authority + strlen(authority), sizeof(authority) - strlen(authority), ":%u",
                 (unsigned)t.port);
    with_len = q->body_len > 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
               strcmp(method, "PATCH") == 0;
    {
        char target[8192];
        int tl = snprintf(target, sizeof(target), "%.*s%.*s", (int)t.path_len, t.path,
                          (int)t.query_len, t.query != NULL ? t.query : "");

        if (tl < 0 || (size_t)tl >= sizeof(target)) {
            free(q->host);
            free(q->body);
            rp->skipped++;
            goto out;
        }
        q->head = build_head(method, target, (size_t)tl, authority,
                             json_object_get(req, "headers"), q->body_len, with_len,
                             &q->head_len);
        q->head_proxy = build_head(method, url, strlen(url), authority,
                                   json_object_get(req, "headers"), q->body_len, with_len,
                                   &q->head_proxy_len);
    }
    if (q->host == NULL || q->head == NULL || q->head_proxy == NULL) {
        err = -ENOMEM;
        goto out;
    }
    rp->n++;
out:
    json_decref(rec);
    return err;
}

static int by_time(const void *a, const void *b)
{
    const struct mb_replay_req *x = a, *y = b;

    return x->at_ns < y->at_ns ? -1 : x->at_ns > y->at_ns;
}

int mb_replay_load(const char *path, struct mb_replay *rp, char *err, size_t errlen)
{
    FILE *in = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0, lcap = 0;
    uint64_t t0 = 0;
    ssize_t n;
    int e = 0;

    memset(rp, 0, sizeof(*rp));
    if (in == NULL) {
        snprintf(err, errlen, "--replay %s: %s", path, strerror(errno));
        return -errno;
    }
    while (e == 0 && (n = getline(&line, &lcap, in)) != -1) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        rp->lines++;
        e = add_line(rp, &cap, line, (size_t)n, &t0);
    }
    free(line);
    fclose(in);
    if (e != 0) {
        snprintf(err, errlen, "--replay %s: out of memory", path);
        mb_replay_free(rp);
        return e;
    }
    if (rp->n == 0) {
        snprintf(err, errlen, "--replay %s: no request to replay (%zu lines)", path, rp->lines);
        return -EINVAL;
    }
    for (size_t i = 0; i < rp->n; i++)
        rp->reqs[i].at_ns = rp->reqs[i].at_ns >= t0 ? rp->reqs[i].at_ns - t0 : 0;
    qsort(rp->reqs, rp->n, sizeof(*rp->reqs), by_time);
    return 0;
}

void mb_replay_free(struct mb_replay *rp)
{
    for (size_t i = 0; i < rp->n; i++) {
        free(rp->reqs[i].host);
        free(rp->reqs[i].head);
        free(rp->reqs[i].head_proxy);
        free(rp->reqs[i].body);
    }
    free(rp->reqs);
    memset(rp, 0, sizeof(*rp));
}

/* ---- running ------------------------------------------------------------------------- */

struct shared_run {
    const struct mb_opts *o;
    SSL_CTX *ctx;
    const struct mb_replay *rp;
    volatile sig_atomic_t *stop;
    _Atomic size_t next;
    uint64_t start_ns;
};

#define MB_REPLAY_CONNS 4 /* connections a runner keeps open, one per origin (LRU) */

struct rconn {
    int fd; /* -1 = free */
    SSL *ssl;
    bool tls;
    uint16_t port;
    char host[MB_OPTS_HOST_MAX];
    uint64_t used_ns;
};

struct runner {
    pthread_t thread;
    struct shared_run *s;
    struct mb_stats stats;
    struct rconn conns[MB_REPLAY_CONNS];
    struct rconn *c; /* the connection of the request in flight */
    int fd;          /* c->fd and c->ssl while a request is in flight */
    SSL *ssl;
    uint64_t end_ns;
};

/* runner_close closes the connection in flight. */
static void runner_close(struct runner *r)
{
    if (r->ssl != NULL)
        SSL_free(r->ssl);
    if (r->fd >= 0)
        close(r->fd);
    r->ssl = NULL;
    r->fd = -1;
    if (r->c != NULL) {
        r->c->fd = -1;
        r->c->ssl = NULL;
    }
}

static int dial(const struct runner *r, const struct mb_replay_req *q)
{
    const struct mb_opts *o = r->s->o;
    struct timeval tv = {.tv_sec = (time_t)(o->timeout_ns / 1000000000ull),
                         .tv_usec = (suseconds_t)(o->timeout_ns % 1000000000ull / 1000)};
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, one = 1;

    if (o->have_proxy) {
        ss = o->proxy.addr;
        sl = o->proxy.addr_len;
    } else if (o->have_origin) {
        ss = o->origin.addr;
        sl = o->origin.addr_len;
    } else {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
        char port[8];

        snprintf(port, sizeof(port), "%u", (unsigned)q->port);
        if (getaddrinfo(q->host, port, &hints, &res) != 0 || res == NULL)
            return -EHOSTUNREACH;
        memcpy(&ss, res->ai_addr, res->ai_addrlen);
        sl = res->ai_addrlen;
        freeaddrinfo(res);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -errno;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        int e = -errno;

        close(fd);
        return e;
    }
    return fd;
}

static int io_write(struct runner *r, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        ssize_t k = r->ssl != NULL ? SSL_write(r->ssl, b, (int)(n > INT32_MAX ? INT32_MAX : n))
                                   : write(r->fd, b, n);

        if (k <= 0)
            return -EIO;
        b += k;
        n -= (size_t)k;
        r->stats.bytes_tx += (uint64_t)k;
    }
    return 0;
}

static ssize_t io_read(struct runner *r, uint8_t *p, size_t n)
{
    ssize_t k = r->ssl != NULL ? SSL_read(r->ssl, p, (int)n) : read(r->fd, p, n);

    if (k > 0)
        r->stats.bytes_rx += (uint64_t)k;
    return k;
}

/* read_response reads one response; returns its status (>0), or -EPROTO/-EIO. */
static int read_response(struct runner *r, bool connect, bool *keep)
{
    struct mb_resp resp;
    uint8_t buf[16384];
    const char *why = NULL;

    mb_resp_init(&resp, connect);
    while (!mb_resp_is_done(&resp)) {
        ssize_t n = io_read(r, buf, sizeof(buf)), off = 0;

        if (n <= 0) {
            if (n == 0 && mb_resp_eof(&resp, &why) == 0)
                break;
            return -EIO;
        }
        while (off < n && !mb_resp_is_done(&resp)) {
            ssize_t c = mb_resp_feed(&resp, buf + off, (size_t)(n - off), &why);

            if (c < 0)
                return -EPROTO;
            if (c == 0)
                break;
            off += c;
        }
    }
    *keep = resp.keep_alive;
    return resp.status;
}

/* ensure_conn opens (or reuses) a connection for `q`. Returns 0 or an error kind (>0). */
static int ensure_conn(struct runner *r, const struct mb_replay_req *q, uint64_t now)
{
    const struct mb_opts *o = r->s->o;
    bool keep;
    int st = 0;

    struct rconn *lru = &r->conns[0];

    for (int i = 0; i < MB_REPLAY_CONNS; i++) {
        struct rconn *c = &r->conns[i];

        if (c->fd >= 0 && c->tls == q->tls && c->port == q->port && strcmp(c->host, q->host) == 0) {
            r->c = c;
            r->fd = c->fd;
            r->ssl = c->ssl;
            c->used_ns = now;
            return 0;
        }
        if (c->fd < 0 || (lru->fd >= 0 && c->used_ns < lru->used_ns))
            lru = c;
    }
    r->c = lru;
    r->fd = lru->fd;
    r->ssl = lru->ssl;
    runner_close(r);
    lru->used_ns = now;
    r->fd = dial(r, q);
    if (r->fd < 0) {
        mb_stats_error(&r->stats, MB_ERR_CONNECT, now, "connect for %s:%u: %s", q->host,
                       (unsigned)q->port, strerror(-r->fd));
        r->fd = -1;
        return 1;
    }
    r->stats.connects++;
    r->c->fd = r->fd;
    r->c->tls = q->tls;
    r->c->port = q->port;
    snprintf(r->c->host, sizeof(r->c->host), "%s", q->host);
    if (o->have_proxy && q->tls) {
        char c[MB_OPTS_HOST_MAX + 96];
        bool v6 = strchr(q->host, ':') != NULL;
        int n = snprintf(c, sizeof(c), "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n\r\n",
                         v6 ? "[" : "", q->host, v6 ? "]" : "", (unsigned)q->port, v6 ? "[" : "",
                         q->host, v6 ? "]" : "", (unsigned)q->port);

        if (io_write(r, c, (size_t)n) != 0 || (st = read_response(r, true, &keep)) != 200) {
            mb_stats_error(&r->stats, MB_ERR_PROXY, now, "CONNECT %s:%u: %d", q->host,
                           (unsigned)q->port, st);
            runner_close(r);
            return 1;
        }
    }
    if (q->tls) {
        r->ssl = SSL_new(r->s->ctx);
        if (r->ssl == NULL || SSL_set_fd(r->ssl, r->fd) != 1 ||
            SSL_set_tlsext_host_name(r->ssl, q->host) != 1 ||
            SSL_set1_host(r->ssl, q->host) != 1 || SSL_connect(r->ssl) != 1) {
            mb_stats_error(&r->stats, MB_ERR_TLS, now, "TLS with %s: %s", q->host,
                           ERR_reason_error_string(ERR_peek_last_error()));
            ERR_clear_error();
            runner_close(r);
            return 1;
        }
        r->stats.handshakes++;
        r->c->ssl = r->ssl;
    }
    return 0;
}

static void sleep_until(uint64_t when_ns, volatile sig_atomic_t *stop)
{
    while (!*stop) {
        uint64_t now = mb_now_ns(), d;
        struct timespec ts;

        if (now >= when_ns)
            return;
        d = when_ns - now;
        if (d > 100000000ull)
            d = 100000000ull; /* wake for SIGINT at least every 100 ms */
        ts.tv_sec = (time_t)(d / 1000000000ull);
        ts.tv_nsec = (long)(d % 1000000000ull);
        nanosleep(&ts, NULL);
    }
}

static void *runner_main(void *arg)
{
    struct runner *r = arg;
    struct shared_run *s = r->s;
    const struct mb_opts *o = s->o;

    for (;;) {
        size_t i = atomic_fetch_add(&s->next, 1);
        const struct mb_replay_req *q;
        uint64_t due, done;
        bool proxy_abs, keep = true;
        int st;

        if (i >= s->rp->n || *s->stop)
            break;
        q = &s->rp->reqs[i];
        if (o->rate > 0)
            due = s->start_ns + (uint64_t)((double)i * 1e9 / o->rate);
        else if (o->speed > 0)
            due = s->start_ns + (uint64_t)((double)q->at_ns / o->speed);
        else
            due = mb_now_ns();
        sleep_until(due, s->stop);
        if (ensure_conn(r, q, mb_now_ns()) != 0)
            continue;
        proxy_abs = o->have_proxy && !q->tls;
        if (io_write(r, proxy_abs ? q->head_proxy : q->head,
                     proxy_abs ? q->head_proxy_len : q->head_len) != 0 ||
            io_write(r, q->body, q->body_len) != 0) {
            mb_stats_error(&r->stats, MB_ERR_IO, mb_now_ns(), "sending to %s: write failed",
                           q->host);
            runner_close(r);
            continue;
        }
        st = read_response(r, false, &keep);
        done = mb_now_ns();
        if (st <= 0) {
            mb_stats_error(&r->stats, st == -EPROTO ? MB_ERR_PROTOCOL : MB_ERR_IO, done,
                           "response from %s: %s", q->host,
                           st == -EPROTO ? "malformed" : "connection closed or timed out");
            runner_close(r);
            continue;
        }
        r->stats.requests++;
        mb_hist_record(&r->stats.latency, done - (due < done ? due : done));
        if (q->status != 0 && st != q->status)
            mb_stats_error(&r->stats, MB_ERR_STATUS, done, "%s:%u: status %d, recorded %d",
                           q->host, (unsigned)q->port, st, q->status);
        if (!keep)
            runner_close(r);
    }
    for (int i = 0; i < MB_REPLAY_CONNS; i++) {
        r->c = &r->conns[i];
        r->fd = r->c->fd;
        r->ssl = r->c->ssl;
        runner_close(r);
    }
    r->end_ns = mb_now_ns();
    return NULL;
}

int mb_replay_run(const struct mb_opts *o, SSL_CTX *ctx, const struct mb_replay *rp,
                  volatile sig_atomic_t *stop, struct mb_stats *total, uint64_t *measured_ns)
{
    struct shared_run s = {.o = o, .ctx = ctx, .rp = rp, .stop = stop};
    unsigned n = o->connections, started = 0;
    struct runner *rs = calloc(n, sizeof(*rs));
    uint64_t end = 0;
    int err = 0;

    if (rs == NULL)
        return -ENOMEM;
    atomic_init(&s.next, 0);
    s.start_ns = mb_now_ns();
    for (; started < n; started++) {
        rs[started].s = &s;
        rs[started].fd = -1;
        for (int k = 0; k < MB_REPLAY_CONNS; k++)
            rs[started].conns[k].fd = -1;
        mb_stats_init(&rs[started].stats);
        rs[started].stats.recording = true;
        err = -pthread_create(&rs[started].thread, NULL, runner_main, &rs[started]);
        if (err != 0) {
            *stop = 1;
            break;
        }
    }
    mb_stats_init(total);
    for (unsigned i = 0; i < started; i++) {
        pthread_join(rs[i].thread, NULL);
        mb_stats_merge(total, &rs[i].stats);
        if (rs[i].end_ns > end)
            end = rs[i].end_ns;
    }
    *measured_ns = end > s.start_ns ? end - s.start_ns : 1;
    free(rs);
    return err;
}
