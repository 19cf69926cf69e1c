/* mb_stats.h - counters, latency histograms and the first error of one mitmd-bench thread.
 * Owns only numbers: each bench thread has its own struct mb_stats (no sharing, no locks);
 * the main thread merges them after the threads are joined. Never allocates. */
#ifndef MITMD_BENCH_MB_STATS_H
#define MITMD_BENCH_MB_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "bench/mb_hist.h"

#define MB_STATS_ERROR_MAX 256

/* What went wrong; each failure is counted under exactly one kind. */
enum mb_err_kind {
    MB_ERR_CONNECT = 0, /* TCP connect to the proxy or origin failed */
    MB_ERR_PROXY,       /* the proxy refused or garbled the CONNECT */
    MB_ERR_TLS,         /* handshake, verification or record-layer failure */
    MB_ERR_STATUS,      /* a complete response whose status was not 200 */
    MB_ERR_PROTOCOL,    /* malformed response or connection closed mid-response */
    MB_ERR_TIMEOUT,     /* no progress within --timeout */
    MB_ERR_IO,          /* socket error after the connection was up */
    MB_ERR_KIND_COUNT   /* must be last */
};

struct mb_stats {
    bool recording;    /* false during --warmup: nothing is counted */
    uint64_t requests; /* responses with status 200 */
    uint64_t errors;   /* sum of errors_by_kind */
    uint64_t errors_by_kind[MB_ERR_KIND_COUNT];
    uint64_t handshakes;      /* completed TLS handshakes (full + resumed) */
    uint64_t resumed;         /* of which abbreviated (session resumption) */
    uint64_t connects;        /* TCP connections established */
    uint64_t retried;         /* GETs sent again on a new connection because a reused keep-alive
                               * connection closed before any response byte (mb_conn.c) */
    uint64_t bytes_rx;        /* decrypted response bytes (head + body) */
    uint64_t bytes_tx;        /* request bytes written (head + body) */
    struct mb_hist latency;   /* request latency in ns, successful requests only */
    struct mb_hist handshake; /* TCP connect start to TLS handshake done, ns */
    uint64_t first_error_ns;  /* CLOCK_MONOTONIC time of first_error, 0 if none */
    char first_error[MB_STATS_ERROR_MAX];
};

/* mb_stats_init empties `s`; recording starts off. */
void mb_stats_init(struct mb_stats *s);

/* mb_err_kind_name returns a static lower-case name for `k` (JSON keys). */
const char *mb_err_kind_name(enum mb_err_kind k);

/* mb_stats_error counts one error of kind `k` when recording (not during warm-up), and
 * keeps its formatted reason if it is the first one counted. `now_ns` orders first errors
 * across threads. Never allocates. */
void mb_stats_error(struct mb_stats *s, enum mb_err_kind k, uint64_t now_ns, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* mb_stats_merge adds `src` into `dst`; the earlier first error wins. */
void mb_stats_merge(struct mb_stats *dst, const struct mb_stats *src);

#endif
