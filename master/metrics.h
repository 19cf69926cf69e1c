/* metrics.h - the master's operations endpoint: GET /metrics (Prometheus text format 0.0.4)
 * and GET /healthz on --set metrics_listen=HOST:PORT. Owns that listener, its few client
 * connections (fixed table, bounded request and response, a deadline each) and the
 * rendering of the counters the master holds. Called by the master loop only, with poll(2);
 * never blocks, and a slow or hostile scraper costs at most METRICS_MAX_CLIENTS slots. */
#ifndef MITMD_MASTER_METRICS_H
#define MITMD_MASTER_METRICS_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "shared/msg.h"

struct supervise;
struct forge_service;
struct certcache;

#define METRICS_MAX_CLIENTS 8          /* scrapes served at once; more are answered 503 */
#define METRICS_REQ_MAX 4096           /* request head; larger is answered 431 */
#define METRICS_CLIENT_TIMEOUT_MS 5000 /* a whole exchange, head to last byte */
#define METRICS_BODY_MAX (4u << 20)    /* largest /metrics page rendered */
#define METRICS_POLL_MAX (1 + METRICS_MAX_CLIENTS)

/* enum metrics_state is what the master is doing, for /healthz and mitmd_state. */
enum metrics_state {
    METRICS_STATE_STARTING = 0, /* workers not all ready yet: /healthz 503 */
    METRICS_STATE_SERVING,      /* /healthz 200 (while a worker is up) */
    METRICS_STATE_RELOADING,    /* SIGHUP: successors starting; /healthz 200 */
    METRICS_STATE_DRAINING,     /* SIGTERM: /healthz 503 */
};

/* struct metrics_view is what the master shows; it keeps the fields current, metrics reads
 * them when a request arrives. Pointers are borrowed. */
struct metrics_view {
    const struct supervise *sup;
    const struct forge_service *fs;
    const struct certcache *cache;
    enum metrics_state state;
    uint64_t reloads;  /* SIGHUPs handled */
    double start_time; /* Unix time the master started */
    const char *mode;  /* the first listener's mode ("regular", "socks5", ...) */
    char listen_addr[300]; /* the first listener's address ("127.0.0.1:8080") */
    int n_listeners;       /* listeners (--mode order = msg.h MSG_LSTN_SLOT index) */
    struct metrics_listener {
        char addr[160];   /* "127.0.0.1:8080" ("127.0.0.1:8080,[::1]:8080" for a name) */
        const char *mode; /* "regular", "socks5", ... (borrowed) */
    } listeners[MSG_MAX_LISTENERS];
};

struct metrics;

/* metrics_open resolves `hostport` ("HOST:PORT", "[V6]:PORT"; PORT 0 = a free port; may
 * block on a name lookup: start-up only) and listens on it, non-blocking. `view` is
 * borrowed for the life of the server. On success sets `*out` and returns 0; otherwise
 * returns -errno with a one-line reason in `err`. Allocates. */
int metrics_open(const char *hostport, const struct metrics_view *view, struct metrics **out,
                 char *err, size_t errlen);

/* metrics_adopt serves on `fd`, a listening socket opened by metrics_open in the master
 * this one replaces (binary upgrade; ownership moves to the server, also on failure).
 * Returns 0 or -errno with `err` set. */
int metrics_adopt(int fd, const struct metrics_view *view, struct metrics **out, char *err,
                  size_t errlen);

/* metrics_listen_fd returns the listening socket (to hand over in a binary upgrade). */
int metrics_listen_fd(const struct metrics *mx);

/* metrics_close closes the listener and every client and frees `mx`; NULL is a no-op. */
void metrics_close(struct metrics *mx);

/* metrics_address writes the bound address ("127.0.0.1:9100") into `out`. */
void metrics_address(const struct metrics *mx, char *out, size_t cap);

/* metrics_poll_fill writes the descriptors metrics waits on into `pfd` (at most `cap`,
 * METRICS_POLL_MAX suffice) and returns how many. NULL `mx`: 0. */
int metrics_poll_fill(struct metrics *mx, struct pollfd *pfd, int cap);

/* metrics_poll_handle serves what poll reported on the `n` entries metrics_poll_fill wrote
 * (`pfd` points at the first): accepts, reads heads, answers, writes, closes; then ends
 * clients past their deadline. Never blocks; allocates one response per request (at most
 * METRICS_BODY_MAX). NULL `mx`: nothing. */
void metrics_poll_handle(struct metrics *mx, const struct pollfd *pfd, int n);

/* metrics_due_ms returns the milliseconds until a client's deadline, or -1 when none. */
int metrics_due_ms(const struct metrics *mx);

/* metrics_render writes the /metrics page for `view` into `out` (`cap` bytes). Returns the
 * length, or -ENOSPC when it does not fit. Never allocates. For the server and the tests. */
long metrics_render(const struct metrics_view *view, char *out, size_t cap);

/* metrics_view_add_listener appends a listener to `view` (at most MSG_MAX_LISTENERS, in
 * --mode order): its `n` addresses `ss` with `port` as the label "127.0.0.1:8080" (several
 * joined by ","), and `mode` (borrowed). */
void metrics_view_add_listener(struct metrics_view *view, const struct sockaddr_storage *ss,
                               int n, uint16_t port, const char *mode);

/* metrics_is_healthy is /healthz's answer: serving or reloading, and a worker is up. */
bool metrics_is_healthy(const struct metrics_view *view);

#endif
