/* dns.c - see dns.h. c-ares tells us which sockets it wants watched (sock_state_cb); each
 * gets a one-shot poll op on the ring, re-armed after ares_process_fd. A slot whose socket
 * c-ares dropped stays reserved until its poll op has completed (after a cancel). */
#include "worker/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shared/log.h"

static uint64_t dns_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t dns_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *s != '\0'; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

/* dns_lower copies `host` lower-cased into `out` (DNS_HOST_MAX). Returns -EINVAL if it does
 * not fit or is empty. */
static int dns_lower(const char *host, char *out)
{
    size_t i;

    for (i = 0; host[i] != '\0'; i++) {
        if (i + 1 >= DNS_HOST_MAX)
            return -EINVAL;
        out[i] = (host[i] >= 'A' && host[i] <= 'Z') ? (char)(host[i] - 'A' + 'a') : host[i];
    }
    out[i] = '\0';
    return i == 0 ? -EINVAL : 0;
}

static struct dns_cache_entry *dns_cache_find(struct dns *d, const char *host, uint64_t now)
{
    struct dns_cache_entry *set = &d->cache[(dns_hash(host) % DNS_CACHE_SETS) * DNS_CACHE_WAYS];

    for (int i = 0; i < DNS_CACHE_WAYS; i++)
        if (set[i].host[0] != '\0' && set[i].expires_ns > now && strcmp(set[i].host, host) == 0)
            return &set[i];
    return NULL;
}

static void dns_cache_put(struct dns *d, const char *host, const struct dns_addrs *addrs,
                          uint32_t ttl_s, uint64_t now)
{
    struct dns_cache_entry *set = &d->cache[(dns_hash(host) % DNS_CACHE_SETS) * DNS_CACHE_WAYS];
    struct dns_cache_entry *victim = &set[0];

    if (ttl_s == 0 || addrs->n == 0)
        return;
    if (ttl_s > DNS_TTL_MAX_S)
        ttl_s = DNS_TTL_MAX_S;
    for (int i = 0; i < DNS_CACHE_WAYS; i++) {
        if (set[i].host[0] == '\0' || strcmp(set[i].host, host) == 0 || set[i].expires_ns <= now) {
            victim = &set[i];
            break;
        }
        if (set[i].expires_ns < victim->expires_ns)
            victim = &set[i];
    }
    snprintf(victim->host, sizeof(victim->host), "%s", host);
    victim->addrs = *addrs;
    victim->expires_ns = now + (uint64_t)ttl_s * 1000000000ull;
}

/* dns_on_post delivers an answer known at dns_resolve time, from the loop. */
static void dns_on_post(struct ring_op *op, int res, uint32_t flags)
{
    struct dns_req *req = (struct dns_req *)((char *)op - offsetof(struct dns_req, _post));

    (void)res;
    (void)flags;
    if (req->_err)
        req->done(req, req->_err, NULL, 0, req->_why);
    else
        req->done(req, 0, (const struct sockaddr *)&req->_addrs.a[0], req->_addrs.len[0], NULL);
}

const struct sockaddr *dns_req_addr(const struct dns_req *req, unsigned i, socklen_t *len)
{
    if (req->_err != 0 || i >= req->_addrs.n || i >= DNS_MAX_ADDRS)
        return NULL;
    *len = req->_addrs.len[i];
    return (const struct sockaddr *)&req->_addrs.a[i];
}

static int dns_post(struct dns *d, struct dns_req *req)
{
    return ring_submit_nop(d->ring, &req->_post);
}

/* dns_parse_literal makes `out` the one address `s` when it is a numeric IPv4/IPv6 one. */
static bool dns_parse_literal(const char *s, struct dns_addrs *out)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)&out->a[0];
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&out->a[0];

    out->n = 0;
    memset(&out->a[0], 0, sizeof(out->a[0]));
    if (inet_pton(AF_INET, s, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        out->len[0] = sizeof(*a4);
        out->n = 1;
        return true;
    }
    if (inet_pton(AF_INET6, s, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        out->len[0] = sizeof(*a6);
        out->n = 1;
        return true;
    }
    return false;
}

/* dns_collect copies the answer's addresses into `out`: IPv4 first (they are what most
 * origins listen on), then IPv6, each family in the resolver's order, at most DNS_MAX_ADDRS.
 * Returns the smallest TTL among them (0 if none). */
static uint32_t dns_collect(const struct ares_addrinfo *res, struct dns_addrs *out)
{
    static const int families[2] = {AF_INET, AF_INET6};
    const struct ares_addrinfo_node *node;
    uint32_t ttl = 0, t;

    out->n = 0;
    for (int f = 0; f < 2; f++) {
        for (node = res->nodes; node != NULL && out->n < DNS_MAX_ADDRS; node = node->ai_next) {
            if (node->ai_family != families[f] || node->ai_addr == NULL ||
                node->ai_addrlen <= 0 || (size_t)node->ai_addrlen > sizeof(out->a[0]))
                continue;
            memset(&out->a[out->n], 0, sizeof(out->a[0]));
            memcpy(&out->a[out->n], node->ai_addr, (size_t)node->ai_addrlen);
            out->len[out->n] = (socklen_t)node->ai_addrlen;
            t = node->ai_ttl > 0 ? (uint32_t)node->ai_ttl : 0;
            if (out->n == 0 || t < ttl)
                ttl = t;
            out->n++;
        }
    }
    return ttl;
}

/* dns_finish delivers req's stored outcome: through the ring when we are still inside
 * dns_resolve (c-ares may answer synchronously, e.g. from /etc/hosts), else directly. */
static void dns_finish(struct dns *d, struct dns_req *req)
{
    if (d->in_call == req) {
        if (dns_post(d, req) != 0)
            d->post_failed = true;
        return;
    }
    dns_on_post(&req->_post, 0, 0);
}

static void dns_on_ares(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct dns_req *req = arg;
    struct dns *d = req->_d;
    uint32_t ttl = 0;

    (void)timeouts;
    req->_addrs.n = 0;
    if (status == ARES_SUCCESS && res != NULL)
        ttl = dns_collect(res, &req->_addrs);
    if (req->_addrs.n == 0) {
        d->failures++;
        if (status == ARES_ECANCELLED || status == ARES_EDESTRUCTION) {
            req->_err = -ECANCELED;
            req->_why = "DNS lookup cancelled";
        } else if (status == ARES_ETIMEOUT) {
            req->_err = -ETIMEDOUT;
            req->_why = "DNS lookup timed out";
        } else if (status == ARES_ENOTFOUND || status == ARES_ENODATA || status == ARES_SUCCESS) {
            req->_err = -ENOENT;
            req->_why = "DNS lookup failed: no such host";
        } else {
            req->_err = -EHOSTUNREACH;
            req->_why = "DNS lookup failed";
        }
        if (res != NULL)
            ares_freeaddrinfo(res);
        dns_finish(d, req);
        return;
    }
    req->_err = 0;
    dns_cache_put(d, req->_host, &req->_addrs, ttl, dns_now_ns());
    ares_freeaddrinfo(res);
    dns_finish(d, req);
}

int dns_resolve(struct dns *d, struct dns_req *req, const char *host)
{
    const char *over;
    struct dns_cache_entry *e;
    struct ares_addrinfo_hints hints;

    req->_d = d;
    req->_err = 0;
    req->_why = NULL;
    req->_addrs.n = 0;
    ring_op_init(&req->_post, dns_on_post, NULL);
    if (dns_lower(host, req->_host) != 0)
        return -EINVAL;
    over = config_resolve_lookup(d->cfg, req->_host);
    if (over != NULL) {
        if (!dns_parse_literal(over, &req->_addrs)) {
            req->_err = -EINVAL;
            req->_why = "--resolve address is not numeric";
        }
        return dns_post(d, req);
    }
    if (dns_parse_literal(req->_host, &req->_addrs))
        return dns_post(d, req);
    e = dns_cache_find(d, req->_host, dns_now_ns());
    if (e != NULL) {
        d->hits++;
        req->_addrs = e->addrs;
        return dns_post(d, req);
    }
    d->misses++;
    if (!d->channel_ok) {
        req->_err = -EHOSTUNREACH;
        req->_why = "DNS resolver unavailable";
        return dns_post(d, req);
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    d->in_call = req;
    d->post_failed = false;
    ares_getaddrinfo(d->channel, req->_host, NULL, &hints, dns_on_ares, req);
    d->in_call = NULL;
    /* a synchronous answer that could not be posted: report failure, no callback */
    return d->post_failed ? -EBUSY : 0;
}

static struct dns_sock *dns_sock_of(struct ring_op *op, size_t off)
{
    return (struct dns_sock *)((char *)op - off);
}

static void dns_sock_arm(struct dns_sock *s)
{
    unsigned ev = 0;

    if (s->poll_op.armed || !s->in_use)
        return;
    if (s->want_read)
        ev |= POLLIN;
    if (s->want_write)
        ev |= POLLOUT;
    if (ev == 0)
        return;
    if (ring_submit_poll(s->d->ring, &s->poll_op, s->fd, ev) != 0)
        log_warn("cannot watch a DNS socket");
}

static void dns_on_poll(struct ring_op *op, int res, uint32_t flags)
{
    struct dns_sock *s = dns_sock_of(op, offsetof(struct dns_sock, poll_op));
    struct dns *d = s->d;
    ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

    (void)flags;
    if (!s->in_use || d->channel == NULL)
        return; /* c-ares dropped the socket; the slot is free again */
    if (res < 0) {
        if (res != -ECANCELED)
            ares_process_fd(d->channel, s->fd, s->fd);
    } else {
        if (res & (POLLIN | POLLERR | POLLHUP))
            rfd = s->fd;
        if (res & (POLLOUT | POLLERR | POLLHUP))
            wfd = s->fd;
        ares_process_fd(d->channel, rfd, wfd);
    }
    dns_sock_arm(s);
}

static void dns_on_cancel(struct ring_op *op, int res, uint32_t flags)
{
    (void)op;
    (void)res;
    (void)flags;
}

static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *d = data;
    struct dns_sock *s = NULL, *free_slot = NULL;

    for (int i = 0; i < DNS_MAX_SOCKS; i++) {
        if (d->socks[i].in_use && d->socks[i].fd == fd) {
            s = &d->socks[i];
            break;
        }
        if (free_slot == NULL && !d->socks[i].in_use && !d->socks[i].poll_op.armed &&
            !d->socks[i].cancel_op.armed)
            free_slot = &d->socks[i];
    }
    if (!readable && !writable) {
        if (s == NULL)
            return;
        s->in_use = false;
        if (s->poll_op.armed)
            ring_submit_cancel(d->ring, &s->cancel_op, &s->poll_op);
        return;
    }
    if (s == NULL) {
        if (free_slot == NULL) {
            log_warn("too many DNS sockets; a lookup will time out");
            return;
        }
        s = free_slot;
        s->fd = fd;
        s->in_use = true;
    }
    s->want_read = readable != 0;
    s->want_write = writable != 0;
    if (s->poll_op.armed && !s->cancel_op.armed)
        ring_submit_cancel(d->ring, &s->cancel_op, &s->poll_op); /* re-armed with new events */
    else
        dns_sock_arm(s);
}

int dns_init(struct dns *d, struct ring *r, const struct config *cfg, const char **why)
{
    struct ares_options opts;
    int status;

    memset(d, 0, sizeof(*d));
    d->ring = r;
    d->cfg = cfg;
    for (int i = 0; i < DNS_MAX_SOCKS; i++) {
        d->socks[i].d = d;
        d->socks[i].fd = -1;
        ring_op_init(&d->socks[i].poll_op, dns_on_poll, NULL);
        ring_op_init(&d->socks[i].cancel_op, dns_on_cancel, NULL);
    }
    d->cache = calloc((size_t)DNS_CACHE_SETS * DNS_CACHE_WAYS, sizeof(*d->cache));
    if (d->cache == NULL) {
        *why = "cannot allocate the DNS cache";
        return -ENOMEM;
    }
    status = ares_library_init(ARES_LIB_INIT_ALL);
    if (status != ARES_SUCCESS) {
        *why = "c-ares initialisation failed";
        return -EIO;
    }
    memset(&opts, 0, sizeof(opts));
    opts.sock_state_cb = dns_sock_state;
    opts.sock_state_cb_data = d;
    opts.timeout = 2000; /* ms per try */
    opts.tries = 2;
    status = ares_init_options(&d->channel, &opts,
                               ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (status != ARES_SUCCESS) {
        /* no resolver configuration: --resolve and IP literals still work */
        log_warn("DNS resolver unavailable: %s", ares_strerror(status));
        d->channel = NULL;
        return 0;
    }
    d->channel_ok = true;
    return 0;
}

void dns_dispose(struct dns *d)
{
    if (d->channel != NULL) {
        ares_destroy(d->channel);
        d->channel = NULL;
        ares_library_cleanup();
    }
    d->channel_ok = false;
    free(d->cache);
    d->cache = NULL;
}

void dns_tick(struct dns *d)
{
    if (d->channel != NULL)
        ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}
