/* metrics.c - see metrics.h. The server reads one request head per connection (parsed by
 * shared/h1_parse, the one HTTP/1 grammar), answers it with Connection: close and closes:
 * a scraper opens a connection per scrape, which costs the master nothing it would notice.
 * Rendering sums the workers' latest STATS and the totals the supervisor keeps of exited
 * workers (supervise_sum_stats), so counters never go back across deaths and reloads. */
#include "master/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "certcache/certcache.h"
#include "master/forge_service.h"
#include "master/supervise.h"
#include "master/version.h"
#include "shared/h1_parse.h"
#include "shared/log.h"
#include "shared/stats.h"

#define METRICS_ACCEPT_BUDGET 16 /* connections accepted per loop turn */
#define METRICS_PAGE_START (64u << 10)
#define METRICS_LINGER_MS 1000 /* after the answer, unread request bytes are read this long */

struct metrics_client {
    int fd; /* -1: free slot */
    uint64_t deadline_ms;
    size_t req_len;
    char *resp; /* owned; NULL until the head is answered */
    size_t resp_len, resp_off;
    bool lingering; /* answer sent, FIN sent: reading until the client closes */
    char req[METRICS_REQ_MAX];
};

struct metrics {
    int listen_fd;
    const struct metrics_view *view;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct metrics_client cl[METRICS_MAX_CLIENTS];
    int polled[METRICS_MAX_CLIENTS]; /* pollfd index (after the listener) -> client, or -1 */
    int npolled;
};

static uint64_t metrics_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- rendering -------------------------------------------------------------------------- */

/* struct metrics_out is a bounded text writer: once something does not fit, `full` is set
 * and later writes are ignored. */
struct metrics_out {
    char *p;
    size_t cap, len;
    bool full;
};

static void metrics_printf(struct metrics_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void metrics_printf(struct metrics_out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->full)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->full = true;
        return;
    }
    o->len += (size_t)n;
}

/* metrics_head writes the HELP and TYPE lines of one metric family. */
static void metrics_head(struct metrics_out *o, const char *name, const char *type,
                         const char *help)
{
    metrics_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_scalar(struct metrics_out *o, const char *name, const char *type,
                           const char *help, uint64_t v)
{
    metrics_head(o, name, type, help);
    metrics_printf(o, "%s %llu\n", name, (unsigned long long)v);
}

/* metrics_hist writes one histogram (`h`: MSG_HIST_STRIDE slots, shared/stats.h layout). */
static void metrics_hist(struct metrics_out *o, const char *name, const char *help,
                         const uint64_t *h)
{
    uint64_t cum = 0;

    metrics_head(o, name, "histogram", help);
    for (int b = 0; b < MSG_HIST_BUCKETS; b++) {
        cum += h[b];
        metrics_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name,
                       (double)STATS_HIST_BOUNDS_US[b] / 1e6, (unsigned long long)cum);
    }
    cum += h[MSG_HIST_INF];
    metrics_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    metrics_printf(o, "%s_sum %.6f\n", name, (double)h[MSG_HIST_SUM] / 1e6);
    metrics_printf(o, "%s_count %llu\n", name, (unsigned long long)cum);
}

/* metrics_label_escape copies `in` into `out` as a label value of the text format:
 * backslash, double quote and newline escaped; cut to fit `cap` (NUL-terminated). */
static void metrics_label_escape(const char *in, char *out, size_t cap)
{
    size_t j = 0;

    for (; *in != '\0' && j + 3 < cap; in++) {
        if (*in == '\\' || *in == '"' || *in == '\n') {
            out[j++] = '\\';
            out[j++] = *in == '\n' ? 'n' : *in;
        } else {
            out[j++] = *in;
        }
    }
    out[j] = '\0';
}

/* struct metrics_counter names one scalar of struct msg_stats. */
struct metrics_counter {
    int stat;
    const char *name, *type, *help;
};

static const struct metrics_counter metrics_counters[] = {
    {MSG_STAT_FLOWS, "mitmd_flows_total", "counter", "Exchanges completed (flow records)."},
    {MSG_STAT_FLOWS_DROPPED, "mitmd_flows_dropped_total", "counter",
     "Flow records dropped because the writer fell behind or failed."},
    {MSG_STAT_CLIENT_ERRORS, "mitmd_client_errors_total", "counter",
     "Answers mitmd made for a client's fault (400, 408, 431, 503 at accept...)."},
    {MSG_STAT_UPSTREAM_ERRORS, "mitmd_upstream_errors_total", "counter",
     "Answers mitmd made for an upstream failure (502, 504)."},
    {MSG_STAT_TIMEOUTS, "mitmd_timeouts_total", "counter",
     "Connections closed or answered by a timeout."},
    {MSG_STAT_CLIENT_RX_BYTES, "mitmd_client_received_bytes_total", "counter",
     "Bytes received from clients (on the wire, TLS records included)."},
    {MSG_STAT_CLIENT_TX_BYTES, "mitmd_client_sent_bytes_total", "counter",
     "Bytes sent to clients (on the wire)."},
    {MSG_STAT_UP_RX_BYTES, "mitmd_upstream_received_bytes_total", "counter",
     "Bytes received from upstream servers (on the wire)."},
    {MSG_STAT_UP_TX_BYTES, "mitmd_upstream_sent_bytes_total", "counter",
     "Bytes sent to upstream servers (on the wire)."},
    {MSG_STAT_CACHE_HITS, "mitmd_cert_cache_hits_total", "counter",
     "Certificate cache lookups by the workers that hit."},
    {MSG_STAT_CACHE_MISSES, "mitmd_cert_cache_misses_total", "counter",
     "Certificate cache lookups by the workers that missed."},
    {MSG_STAT_CERT_REQS, "mitmd_cert_requests_total", "counter",
     "Certificate requests the workers sent to the master."},
    {MSG_STAT_UP_TLS, "mitmd_upstream_tls_handshakes_total", "counter",
     "Upstream TLS handshakes completed."},
    {MSG_STAT_UP_RESUMED, "mitmd_upstream_tls_resumptions_total", "counter",
     "Upstream TLS handshakes that resumed a cached session."},
    {MSG_STAT_UP_WILDCARD, "mitmd_upstream_tls_resumptions_wildcard_total", "counter",
     "Upstream resumptions with another name's session (wildcard certificate)."},
    {MSG_STAT_H2_STREAMS, "mitmd_http2_streams_total", "counter",
     "HTTP/2 client streams accepted."},
    {MSG_STAT_H2_REFUSED, "mitmd_http2_streams_refused_total", "counter",
     "HTTP/2 client streams refused (limits, GOAWAY)."},
    {MSG_STAT_H2_RESETS, "mitmd_http2_resets_total", "counter",
     "HTTP/2 RST_STREAM frames received from clients and upstreams."},
    {MSG_STAT_H2_CLIENT_ERRORS, "mitmd_http2_client_errors_total", "counter",
     "HTTP/2 client connections ended by a GOAWAY with an error."},
    {MSG_STAT_H2_FLOODS, "mitmd_http2_floods_total", "counter",
     "HTTP/2 client connections ended as floods (PING, SETTINGS, rapid reset...)."},
};

/* metrics_listener_families are the connection counts by listener (msg.h MSG_LSTN_*). */
static const struct metrics_counter metrics_listener_families[] = {
    {MSG_LSTN_ACCEPTED, "mitmd_connections_accepted_total", "counter",
     "Client connections accepted, by listener and mode (refused ones included)."},
    {MSG_LSTN_ACTIVE, "mitmd_connections_active", "gauge",
     "Client connections open now, by listener and mode."},
    {MSG_LSTN_REFUSED, "mitmd_connections_refused_total", "counter",
     "Client connections refused at accept with 503 (connection limit), by listener and mode."},
};

/* metrics_listeners writes the listener families: one sample per listener of the view, the
 * address and the mode as labels. */
static void metrics_listeners(struct metrics_out *o, const struct metrics_view *view,
                              const struct msg_stats *st)
{
    char addr[2 * sizeof(view->listeners[0].addr)];

    for (size_t k = 0; k < sizeof(metrics_listener_families) / sizeof(metrics_listener_families[0]);
         k++) {
        const struct metrics_counter *c = &metrics_listener_families[k];

        metrics_head(o, c->name, c->type, c->help);
        for (int i = 0; i < view->n_listeners && i < MSG_MAX_LISTENERS; i++) {
            metrics_label_escape(view->listeners[i].addr, addr, sizeof(addr));
            metrics_printf(o, "%s{listener=\"%s\",mode=\"%s\"} %llu\n", c->name, addr,
                           view->listeners[i].mode != NULL ? view->listeners[i].mode : "",
                           (unsigned long long)st->v[MSG_LSTN_SLOT(i, c->stat)]);
        }
    }
}

/* Per-worker values (worker slot i): over every process that has held the slot for the
 * counters, the running and the draining process for the gauge. */
static uint64_t metrics_worker_up(const struct supervise *sup, int i)
{
    return sup->slots[i].pid != 0 && sup->slots[i].ready ? 1 : 0;
}

static uint64_t metrics_worker_active(const struct supervise *sup, int i)
{
    return sup->slots[i].stats.v[MSG_STAT_ACTIVE] + sup->old[i].stats.v[MSG_STAT_ACTIVE];
}

static uint64_t metrics_worker_accepted(const struct supervise *sup, int i)
{
    return sup->id_totals[i].accepted + sup->slots[i].stats.v[MSG_STAT_ACCEPTED] +
           sup->old[i].stats.v[MSG_STAT_ACCEPTED];
}

static uint64_t metrics_worker_flows(const struct supervise *sup, int i)
{
    return sup->id_totals[i].flows + sup->slots[i].stats.v[MSG_STAT_FLOWS] +
           sup->old[i].stats.v[MSG_STAT_FLOWS];
}

static uint64_t metrics_worker_restarts(const struct supervise *sup, int i)
{
    return sup->slots[i].restarts;
}

/* metrics_worker_families are the per-worker families, one sample per worker slot. */
static const struct {
    const char *name, *type, *help;
    uint64_t (*value)(const struct supervise *sup, int i);
} metrics_worker_families[] = {
    {"mitmd_worker_up", "gauge", "1 while the worker runs and reported ready.", metrics_worker_up},
    {"mitmd_worker_connections_active", "gauge",
     "Client connections open now, per worker (draining predecessor included).",
     metrics_worker_active},
    {"mitmd_worker_connections_accepted_total", "counter",
     "Client connections accepted, per worker slot (all its processes).",
     metrics_worker_accepted},
    {"mitmd_worker_flows_total", "counter",
     "Exchanges completed, per worker slot (all its processes).", metrics_worker_flows},
    {"mitmd_worker_restarts_total", "counter",
     "Times the worker slot got a new process (crash or reload).", metrics_worker_restarts},
};

/* metrics_workers writes the per-worker families (metrics_worker_families). */
static void metrics_workers(struct metrics_out *o, const struct supervise *sup)
{
    for (size_t k = 0; k < sizeof(metrics_worker_families) / sizeof(metrics_worker_families[0]);
         k++) {
        const char *name = metrics_worker_families[k].name;

        metrics_head(o, name, metrics_worker_families[k].type, metrics_worker_families[k].help);
        for (int i = 0; i < sup->n; i++)
            metrics_printf(o, "%s{worker=\"%d\"} %llu\n", name, i,
                           (unsigned long long)metrics_worker_families[k].value(sup, i));
    }
}

long metrics_render(const struct metrics_view *view, char *out, size_t cap)
{
    static const char *const state_names[] = {"starting", "serving", "reloading", "draining"};
    struct metrics_out o = {.p = out, .cap = cap};
    const struct supervise *sup = view->sup;
    struct certcache_stats cs;
    struct msg_stats st;
    char addr[2 * sizeof(view->listeners[0].addr)];

    supervise_sum_stats(sup, &st);
    certcache_get_stats(view->cache, &cs);
    metrics_head(&o, "mitmd_build_info", "gauge",
                 "Always 1; the version and the build tag as labels.");
    metrics_label_escape(version_build(), addr, sizeof(addr));
    metrics_printf(&o, "mitmd_build_info{version=\"%s\",build=\"%s\"} 1\n", MITMD_VERSION,
                   addr);
    metrics_head(&o, "mitmd_start_time_seconds", "gauge", "Unix time the master started.");
    metrics_printf(&o, "mitmd_start_time_seconds %.3f\n", view->start_time);
    metrics_head(&o, "mitmd_state", "gauge", "1 for the master's current state.");
    for (int i = 0; i < 4; i++)
        metrics_printf(&o, "mitmd_state{state=\"%s\"} %d\n", state_names[i],
                       (int)view->state == i ? 1 : 0);
    metrics_head(&o, "mitmd_listener_info", "gauge", "Always 1 per listener: address and mode.");
    for (int i = 0; i < view->n_listeners && i < MSG_MAX_LISTENERS; i++) {
        metrics_label_escape(view->listeners[i].addr, addr, sizeof(addr));
        metrics_printf(&o, "mitmd_listener_info{address=\"%s\",mode=\"%s\"} 1\n", addr,
                       view->listeners[i].mode != NULL ? view->listeners[i].mode : "");
    }
    metrics_scalar(&o, "mitmd_workers", "gauge", "Worker processes configured.", (uint64_t)sup->n);
    metrics_scalar(&o, "mitmd_reloads_total", "counter", "SIGHUP reloads handled.", view->reloads);
    metrics_listeners(&o, view, &st);
    for (size_t k = 0; k < sizeof(metrics_counters) / sizeof(metrics_counters[0]); k++) {
        const struct metrics_counter *c = &metrics_counters[k];

        metrics_scalar(&o, c->name, c->type, c->help, st.v[c->stat]);
    }
    metrics_head(&o, "mitmd_requests_total", "counter",
                 "Exchanges by request method and response status class (none: no response).");
    for (int m = 0; m < MSG_METHOD_COUNT; m++)
        for (int s = 0; s < MSG_STATUS_COUNT; s++)
            metrics_printf(&o, "mitmd_requests_total{method=\"%s\",status_class=\"%s\"} %llu\n",
                           stats_method_name((enum msg_method)m),
                           stats_status_name((enum msg_status_class)s),
                           (unsigned long long)st.v[MSG_REQ_SLOT(m, s)]);
    metrics_head(&o, "mitmd_rule_applications_total", "counter",
                 "Exchanges a rule applied to, by rule kind (the option that set it).");
    for (int k = 0; k < MSG_RULE_KINDS; k++)
        metrics_printf(&o, "mitmd_rule_applications_total{rule=\"%s\"} %llu\n",
                       stats_rule_kind_name(k), (unsigned long long)st.v[MSG_RULE_BASE + k]);
    metrics_hist(&o, "mitmd_request_duration_seconds",
                 "Client's first request byte to the last response byte.",
                 &st.v[MSG_HIST_SLOT(MSG_HIST_REQUEST, 0)]);
    metrics_hist(&o, "mitmd_upstream_connect_duration_seconds", "Upstream TCP connect.",
                 &st.v[MSG_HIST_SLOT(MSG_HIST_UP_CONNECT, 0)]);
    metrics_hist(&o, "mitmd_upstream_tls_handshake_duration_seconds", "Upstream TLS handshake.",
                 &st.v[MSG_HIST_SLOT(MSG_HIST_UP_TLS, 0)]);
    metrics_hist(&o, "mitmd_upstream_first_byte_duration_seconds",
                 "Request sent upstream to the first response byte (time to first byte).",
                 &st.v[MSG_HIST_SLOT(MSG_HIST_UP_TTFB, 0)]);
    metrics_scalar(&o, "mitmd_cert_forges_total", "counter", "Leaf certificates forged.",
                   view->fs->forges);
    metrics_scalar(&o, "mitmd_cert_requests_coalesced_total", "counter",
                   "Certificate requests answered by a forge done for another request.",
                   view->fs->coalesced);
    metrics_scalar(&o, "mitmd_cert_forge_failures_total", "counter",
                   "Certificate requests refused (malformed, or the forge failed).",
                   view->fs->rejected);
    metrics_hist(&o, "mitmd_cert_forge_duration_seconds", "Time to forge one leaf certificate.",
                 view->fs->forge_hist);
    metrics_scalar(&o, "mitmd_cert_cache_inserts_total", "counter",
                   "Certificates inserted into the shared cache.", cs.inserts);
    metrics_scalar(&o, "mitmd_cert_cache_evictions_total", "counter",
                   "Certificates evicted from the shared cache to make room.", cs.evictions);
    metrics_scalar(&o, "mitmd_cert_cache_capacity_entries", "gauge",
                   "Certificates the shared cache holds at most.", cs.slots);
    metrics_workers(&o, sup);
    return o.full ? -ENOSPC : (long)o.len;
}

bool metrics_is_healthy(const struct metrics_view *view)
{
    const struct supervise *sup = view->sup;

    if (view->state != METRICS_STATE_SERVING && view->state != METRICS_STATE_RELOADING)
        return false;
    for (int i = 0; i < sup->n; i++)
        if ((sup->slots[i].pid != 0 && sup->slots[i].ready) || sup->old[i].pid != 0)
            return true;
    return false;
}

void metrics_view_add_listener(struct metrics_view *view, const struct sockaddr_storage *ss,
                               int n, uint16_t port, const char *mode)
{
    struct metrics_listener *l;
    size_t used = 0;

    if (view->n_listeners >= MSG_MAX_LISTENERS)
        return;
    l = &view->listeners[view->n_listeners++];
    l->mode = mode;
    l->addr[0] = '\0';
    for (int k = 0; k < n && used < sizeof(l->addr); k++) {
        char a[INET6_ADDRSTRLEN] = "?";
        bool v6 = ss[k].ss_family == AF_INET6;
        int w;

        if (v6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&ss[k])->sin6_addr, a, sizeof(a));
        else if (ss[k].ss_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)&ss[k])->sin_addr, a, sizeof(a));
        w = snprintf(l->addr + used, sizeof(l->addr) - used, "%s%s%s%s:%u", k > 0 ? "," : "",
                     v6 ? "[" : "", a, v6 ? "]" : "", (unsigned)port);
        if (w < 0 || (size_t)w >= sizeof(l->addr) - used) {
            l->addr[used] = '\0'; /* cut at the last whole address */
            break;
        }
        used += (size_t)w;
    }
}

/* ---- server ----------------------------------------------------------------------------- */

int metrics_open(const char *hostport, const struct metrics_view *view, struct metrics **out,
                 char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    char host[256];
    const char *colon = strrchr(hostport, ':'), *port;
    size_t hl;
    struct metrics *mx;
    int fd = -1, one = 1, e;

    if (colon == NULL || colon[1] == '\0') {
        snprintf(err, errlen, "metrics_listen '%s': expected HOST:PORT", hostport);
        return -EINVAL;
    }
    port = colon + 1;
    hl = (size_t)(colon - hostport);
    if (hl >= 2 && hostport[0] == '[' && hostport[hl - 1] == ']') {
        hostport++;
        hl -= 2;
    }
    if (hl >= sizeof(host) || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 ||
        atoi(port) > 65535) {
        snprintf(err, errlen, "metrics_listen '%s': expected HOST:PORT", hostport);
        return -EINVAL;
    }
    memcpy(host, hostport, hl);
    host[hl] = '\0';
    e = getaddrinfo(hl > 0 ? host : NULL, port, &hints, &res);
    if (e != 0) {
        snprintf(err, errlen, "metrics_listen '%s': %s", host, gai_strerror(e));
        return -EINVAL;
    }
    mx = calloc(1, sizeof(*mx));
    if (mx == NULL) {
        freeaddrinfo(res);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        goto out_errno;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) == -1 || listen(fd, 64) == -1)
        goto out_errno;
    mx->addr_len = sizeof(mx->addr);
    if (getsockname(fd, (struct sockaddr *)&mx->addr, &mx->addr_len) == -1)
        goto out_errno;
    freeaddrinfo(res);
    mx->listen_fd = fd;
    mx->view = view;
    for (int i = 0; i < METRICS_MAX_CLIENTS; i++)
        mx->cl[i].fd = -1;
    *out = mx;
    return 0;
out_errno:
    e = -errno;
    snprintf(err, errlen, "metrics_listen %s: %s", hostport, strerror(errno));
    if (fd != -1)
        close(fd);
    freeaddrinfo(res);
    free(mx);
    return e;
}

int metrics_adopt(int fd, const struct metrics_view *view, struct metrics **out, char *err,
                  size_t errlen)
{
    struct metrics *mx = calloc(1, sizeof(*mx));
    int acc = 0;
    socklen_t il = sizeof(acc);

    if (mx == NULL) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    mx->addr_len = sizeof(mx->addr);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &il) == -1 || acc != 1 ||
        getsockname(fd, (struct sockaddr *)&mx->addr, &mx->addr_len) == -1 ||
        fcntl(fd, F_SETFL, O_NONBLOCK) == -1) {
        snprintf(err, errlen, "inherited metrics descriptor %d is not a listening socket", fd);
        close(fd);
        free(mx);
        return -EINVAL;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    mx->listen_fd = fd;
    mx->view = view;
    for (int i = 0; i < METRICS_MAX_CLIENTS; i++)
        mx->cl[i].fd = -1;
    *out = mx;
    return 0;
}

int metrics_listen_fd(const struct metrics *mx)
{
    return mx != NULL ? mx->listen_fd : -1;
}

static void metrics_client_end(struct metrics_client *c)
{
    if (c->fd == -1)
        return;
    close(c->fd);
    c->fd = -1;
    free(c->resp);
    c->resp = NULL;
    c->req_len = c->resp_len = c->resp_off = 0;
    c->lingering = false;
}

void metrics_close(struct metrics *mx)
{
    if (mx == NULL)
        return;
    for (int i = 0; i < METRICS_MAX_CLIENTS; i++)
        metrics_client_end(&mx->cl[i]);
    close(mx->listen_fd);
    free(mx);
}

void metrics_address(const struct metrics *mx, char *out, size_t cap)
{
    char a[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (mx->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&mx->addr;

        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
        port = ntohs(s6->sin6_port);
        snprintf(out, cap, "[%s]:%u", a, port);
        return;
    }
    if (mx->addr.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&mx->addr;

        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
        port = ntohs(s4->sin_port);
    }
    snprintf(out, cap, "%s:%u", a, port);
}

/* metrics_answer prepares the response to `c`: status, content type, body (`body_len`
 * bytes; with `head_only` only the head is sent, Content-Length as for GET), with
 * Connection: close. Returns 0 or -ENOMEM (the client is then closed). */
static int metrics_answer(struct metrics_client *c, int status, const char *ctype,
                          const char *extra, const char *body, size_t body_len, bool head_only)
{
    char head[512];
    int hn = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                      "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                      status, h1_status_reason(status), ctype, body_len, extra);
    size_t total;

    if (hn < 0 || (size_t)hn >= sizeof(head))
        return -ENOMEM;
    total = (size_t)hn + (head_only ? 0 : body_len);
    c->resp = malloc(total);
    if (c->resp == NULL)
        return -ENOMEM;
    memcpy(c->resp, head, (size_t)hn);
    if (!head_only)
        memcpy(c->resp + hn, body, body_len);
    c->resp_len = total;
    c->resp_off = 0;
    return 0;
}

static int metrics_answer_text(struct metrics_client *c, int status, const char *text,
                               const char *extra, bool head_only)
{
    return metrics_answer(c, status, "text/plain; charset=utf-8", extra, text, strlen(text),
                          head_only);
}

/* metrics_render_page renders /metrics into a buffer it allocates (doubling from
 * METRICS_PAGE_START up to METRICS_BODY_MAX). Returns it with `*len` set, or NULL. */
static char *metrics_render_page(const struct metrics_view *view, size_t *len)
{
    for (size_t cap = METRICS_PAGE_START; cap <= METRICS_BODY_MAX; cap *= 2) {
        char *p = malloc(cap);
        long n;

        if (p == NULL)
            return NULL;
        n = metrics_render(view, p, cap);
        if (n >= 0) {
            *len = (size_t)n;
            return p;
        }
        free(p);
    }
    return NULL;
}

/* metrics_route answers the parsed request `req` (or a parse failure: `perr` != 0). */
static int metrics_route(struct metrics *mx, struct metrics_client *c, const struct h1_request *req,
                         enum h1_err perr)
{
    bool head_only;
    size_t plen;
    int e;

    if (perr != H1_ERR_NONE) {
        int status = h1_err_status(perr);

        return metrics_answer_text(c, status != 0 ? status : 400, "bad request\n", "", false);
    }
    head_only = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    {
        const char *q = memchr(req->target, '?', req->target_len); /* not NUL-terminated */

        plen = q != NULL ? (size_t)(q - req->target) : req->target_len;
    }
    if (!head_only && !(req->method_len == 3 && memcmp(req->method, "GET", 3) == 0))
        return metrics_answer_text(c, 405, "method not allowed\n", "Allow: GET, HEAD\r\n", false);
    if (plen == 8 && memcmp(req->target, "/metrics", 8) == 0) {
        size_t len = 0;
        char *page = metrics_render_page(mx->view, &len);

        if (page == NULL) {
            log_warn("metrics: cannot render the page (over %u bytes or out of memory)",
                     METRICS_BODY_MAX);
            return metrics_answer_text(c, 500, "cannot render\n", "", head_only);
        }
        e = metrics_answer(c, 200, "text/plain; version=0.0.4; charset=utf-8", "", page, len,
                           head_only);
        free(page);
        return e;
    }
    if (plen == 8 && memcmp(req->target, "/healthz", 8) == 0) {
        if (metrics_is_healthy(mx->view))
            return metrics_answer_text(c, 200, "ok\n", "", head_only);
        return metrics_answer_text(
            c, 503, mx->view->state == METRICS_STATE_DRAINING ? "draining\n" : "not ready\n", "",
            head_only);
    }
    return metrics_answer_text(c, 404, "not found: try /metrics or /healthz\n", "", head_only);
}

/* metrics_client_read reads what the client sent; once the head is complete (or cannot
 * be), prepares the answer. Returns false when the client is to be closed now. */
static bool metrics_client_read(struct metrics *mx, struct metrics_client *c)
{
    for (;;) {
        ssize_t n;

        if (c->req_len == sizeof(c->req)) {
            if (metrics_answer_text(c, 431, "request head too large\n", "", false) != 0)
                return false;
            return true;
        }
        n = recv(c->fd, c->req + c->req_len, sizeof(c->req) - c->req_len, MSG_DONTWAIT);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0)
            return false; /* closed or failed before a whole head */
        c->req_len += (size_t)n;
        {
            struct h1_header hdrs[32];
            struct h1_request req;
            const char *why = NULL;
            ssize_t got = h1_parse_request((const uint8_t *)c->req, c->req_len, sizeof(c->req),
                                           &req, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &why);

            if (got == -EAGAIN)
                continue;
            return metrics_route(mx, c, &req,
                                 got < 0 ? (req.err != H1_ERR_NONE ? req.err : H1_ERR_MALFORMED)
                                         : H1_ERR_NONE) == 0;
        }
    }
}

/* metrics_client_linger reads and drops what the client still sends after the answer
 * (a body, the rest of an oversized head): closing with unread bytes would send a reset,
 * which can make the client's kernel discard the answer. Returns false once the client
 * closed (or failed). */
static bool metrics_client_linger(struct metrics_client *c)
{
    for (int k = 0; k < 16; k++) {
        ssize_t n = recv(c->fd, c->req, sizeof(c->req), MSG_DONTWAIT);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0)
            return false;
    }
    return true;
}

/* metrics_client_write sends what is left of the answer; once all is sent, shuts down the
 * sending side and lingers. Returns false when the client is to be closed now (the socket
 * failed). */
static bool metrics_client_write(struct metrics_client *c)
{
    while (c->resp_off < c->resp_len) {
        ssize_t n = send(c->fd, c->resp + c->resp_off, c->resp_len - c->resp_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0)
            return false;
        c->resp_off += (size_t)n;
    }
    (void)shutdown(c->fd, SHUT_WR);
    c->lingering = true;
    if (c->deadline_ms > metrics_now_ms() + METRICS_LINGER_MS)
        c->deadline_ms = metrics_now_ms() + METRICS_LINGER_MS;
    return metrics_client_linger(c);
}

/* metrics_accept takes pending connections: into a free slot, or answered 503 at once. */
static void metrics_accept(struct metrics *mx)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n"
                               "Connection: close\r\n\r\nbusy\n";

    for (int k = 0; k < METRICS_ACCEPT_BUDGET; k++) {
        int fd = accept4(mx->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), i;

        if (fd == -1)
            return; /* EAGAIN, or a transient error (EMFILE...): retried next turn */
        for (i = 0; i < METRICS_MAX_CLIENTS && mx->cl[i].fd != -1; i++)
            ;
        if (i == METRICS_MAX_CLIENTS) {
            char sink[METRICS_REQ_MAX];

            /* what the client sent already is read first, so that close() sends a FIN, not
             * a reset that could discard the answer; a fresh socket's send buffer takes the
             * answer without blocking */
            (void)!recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
            (void)send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            (void)shutdown(fd, SHUT_WR);
            close(fd);
            continue;
        }
        mx->cl[i].fd = fd;
        mx->cl[i].req_len = 0;
        mx->cl[i].deadline_ms = metrics_now_ms() + METRICS_CLIENT_TIMEOUT_MS;
    }
}

int metrics_poll_fill(struct metrics *mx, struct pollfd *pfd, int cap)
{
    int n = 0;

    if (mx == NULL || cap < 1)
        return 0;
    pfd[n].fd = mx->listen_fd;
    pfd[n].events = POLLIN;
    pfd[n++].revents = 0;
    mx->npolled = 0;
    for (int i = 0; i < METRICS_MAX_CLIENTS && n < cap; i++) {
        struct metrics_client *c = &mx->cl[i];

        if (c->fd == -1)
            continue;
        pfd[n].fd = c->fd;
        pfd[n].events = c->resp != NULL && !c->lingering ? POLLOUT : POLLIN;
        pfd[n++].revents = 0;
        mx->polled[mx->npolled++] = i;
    }
    return n;
}

void metrics_poll_handle(struct metrics *mx, const struct pollfd *pfd, int n)
{
    uint64_t now;

    if (mx == NULL || n < 1)
        return;
    for (int k = 1; k < n && k - 1 < mx->npolled; k++) {
        struct metrics_client *c = &mx->cl[mx->polled[k - 1]];
        bool keep = true;

        if (c->fd == -1 || pfd[k].fd != c->fd || pfd[k].revents == 0)
            continue;
        if (c->lingering)
            keep = metrics_client_linger(c);
        else if (c->resp == NULL && (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
            keep = metrics_client_read(mx, c);
        if (keep && c->resp != NULL && !c->lingering)
            keep = metrics_client_write(c); /* try at once: usually it all fits */
        if (!keep)
            metrics_client_end(c);
    }
    if (pfd[0].revents & POLLIN)
        metrics_accept(mx);
    now = metrics_now_ms();
    for (int i = 0; i < METRICS_MAX_CLIENTS; i++)
        if (mx->cl[i].fd != -1 && now >= mx->cl[i].deadline_ms)
            metrics_client_end(&mx->cl[i]);
}

int metrics_due_ms(const struct metrics *mx)
{
    uint64_t now, best = UINT64_MAX;

    if (mx == NULL)
        return -1;
    for (int i = 0; i < METRICS_MAX_CLIENTS; i++)
        if (mx->cl[i].fd != -1 && mx->cl[i].deadline_ms < best)
            best = mx->cl[i].deadline_ms;
    if (best == UINT64_MAX)
        return -1;
    now = metrics_now_ms();
    return best <= now ? 0 : (int)(best - now);
}
