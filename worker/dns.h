/* dns.h - asynchronous name resolution for one worker: --resolve overrides, a bounded
 * per-worker cache honouring TTLs, and c-ares driven by poll ops on the worker's ring.
 * Owns the c-ares channel, its sockets' poll ops and the cache. Called by proxy_req.c;
 * never blocks (c-ares sockets are non-blocking) and never allocates after dns_init except
 * inside c-ares for a query in progress. */
#ifndef MITMD_WORKER_DNS_H
#define MITMD_WORKER_DNS_H

#include <ares.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "shared/config.h"
#include "worker/ring.h"

#define DNS_MAX_SOCKS 16   /* c-ares sockets watched at once */
#define DNS_CACHE_SETS 256 /* cache = DNS_CACHE_SETS * DNS_CACHE_WAYS entries */
#define DNS_CACHE_WAYS 4
#define DNS_TTL_MAX_S 300 /* cap on a cached answer's lifetime */
#define DNS_HOST_MAX 254  /* 253 + NUL */
#define DNS_MAX_ADDRS 4   /* addresses kept per answer: IPv4 first, then IPv6, in DNS order */

struct dns;
struct dns_req;

/* struct dns_addrs is an answer: up to DNS_MAX_ADDRS addresses (port 0), best first. */
struct dns_addrs {
    unsigned n;
    socklen_t len[DNS_MAX_ADDRS];
    struct sockaddr_storage a[DNS_MAX_ADDRS];
};

/* dns_done_fn reports the outcome of dns_resolve: `err` 0 with `sa`/`salen` the first address
 * (port 0, the caller sets it; dns_req_addr gives the others) or -errno with `why` a static
 * string. Always called from the loop. */
typedef void dns_done_fn(struct dns_req *req, int err, const struct sockaddr *sa, socklen_t salen,
                         const char *why);

/* struct dns_req is one resolution in progress, embedded in its owner (a connection, which
 * counts it as in flight until `done` runs). Fields other than `done` are private. */
struct dns_req {
    dns_done_fn *done;
    struct dns *_d;
    struct ring_op _post; /* delivers an already-known answer from the loop */
    int _err;
    const char *_why;
    struct dns_addrs _addrs;
    char _host[DNS_HOST_MAX];
};

/* dns_req_addr returns the `i`th address (0 = the one `done` got) of the answer `req` last
 * received, with its length in `*len`, or NULL when there is none. Port 0. Valid until the
 * next dns_resolve on `req`. Lets a caller try the next address when a connect fails. */
const struct sockaddr *dns_req_addr(const struct dns_req *req, unsigned i, socklen_t *len);

struct dns_sock {
    struct dns *d;
    int fd;
    bool in_use; /* c-ares still owns the fd */
    bool want_read, want_write;
    struct ring_op poll_op, cancel_op;
};

struct dns_cache_entry {
    char host[DNS_HOST_MAX]; /* "" = free */
    uint64_t expires_ns;     /* CLOCK_MONOTONIC */
    struct dns_addrs addrs;
};

struct dns {
    struct ring *ring;
    const struct config *cfg;
    ares_channel channel;
    bool channel_ok;
    struct dns_sock socks[DNS_MAX_SOCKS];
    struct dns_cache_entry *cache; /* DNS_CACHE_SETS * DNS_CACHE_WAYS, allocated at init */
    struct dns_req *in_call;       /* the request inside ares_getaddrinfo, if any */
    bool post_failed;
    uint64_t hits, misses, failures;
};

/* dns_init sets up the resolver (reads /etc/resolv.conf once: call at start-up) and
 * allocates the cache. Returns 0 or -errno with `*why` set. */
int dns_init(struct dns *d, struct ring *r, const struct config *cfg, const char **why);

/* dns_dispose cancels queries in progress (their callbacks run with -ECANCELED) and frees
 * the channel and cache. Safe on a zeroed or failed struct. */
void dns_dispose(struct dns *d);

/* dns_resolve starts resolving `host` (NUL-terminated, no brackets) for `req`, whose `done`
 * must be set. An IP literal, a --resolve override or a cache hit is answered without a
 * query. Returns 0, after which `done` runs exactly once from the loop (never from inside
 * dns_resolve), or -errno (no callback) if the request could not be started. */
int dns_resolve(struct dns *d, struct dns_req *req, const char *host);

/* dns_tick drives c-ares timeouts and retries; the worker calls it every tick. */
void dns_tick(struct dns *d);

#endif
