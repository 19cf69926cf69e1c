/* mb_loop.h - one mitmd-bench thread: an epoll loop over its share of the connections,
 * the closed-loop or open-loop (--rate) request schedule, warm-up and stop conditions.
 * Owns its epoll fd, its connections and its mb_stats; shares only the read-only options,
 * SSL_CTX and body filler. Allocates at mb_loop_init only, never in mb_loop_run's loop. */
#ifndef MITMD_BENCH_MB_LOOP_H
#define MITMD_BENCH_MB_LOOP_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "bench/mb_conn.h"
#include "bench/mb_opts.h"
#include "bench/mb_stats.h"

struct mb_loop {
    pthread_t thread; /* set by the creator */
    unsigned id, nthreads;
    const struct mb_opts *opts;
    const volatile sig_atomic_t *stop; /* set by the signal handler: stop early */
    struct mb_conn_env env;
    struct mb_stats stats;
    struct mb_conn *conns;
    unsigned nconns;
    unsigned conns_inited;  /* how many need mb_conn_dispose */
    struct mb_conn **ready; /* connections that can take a request */
    unsigned nready;
    struct mb_conn **retry; /* failed to start: back to `ready` next iteration */
    unsigned nretry;
    struct mb_conn **again; /* budget ran out with work left: drive again (2 * nconns) */
    unsigned nagain;
    bool have_quota; /* -n: this thread issues at most `quota` measured requests */
    uint64_t quota, issued;
    uint64_t start_ns, measure_ns, end_ns; /* end_ns 0: no time limit */
    double interval_ns;                 /* open loop: time between this thread's intended sends */
    uint64_t next_seq;                  /* open loop: index of the next intended send */
    uint64_t measure_start_ns, stop_ns; /* the measured window actually run */
    bool no_pwait2;                     /* kernel lacks epoll_pwait2: millisecond timeouts */
    /* Set-up backoff: a round is a batch of connections that failed before their TLS
     * handshake completed (connect refused, CONNECT refused, handshake failed) with none
     * succeeding; after round r no new connection is opened for
     * MB_LOOP_BACKOFF_MIN_NS << (r - 1) (capped at MB_LOOP_BACKOFF_MAX_NS), then one
     * connection probes. Any completed handshake ends the backoff. */
    uint64_t seen_ok, seen_failed; /* env.setup_ok/setup_failed at the last check */
    unsigned backoff_round;        /* failed rounds since the last successful connect */
    uint64_t backoff_until_ns;     /* no new connection before this (0: none held) */
    uint64_t backoff_start_ns;     /* first failure of the current streak */
    bool probing;                  /* a probe connection is out: open no other */
    bool gave_up;                  /* stopped after MB_LOOP_CONNECT_ROUNDS failed rounds */
    int err;                       /* 0, or -errno if the loop itself failed */
};

#define MB_LOOP_BACKOFF_MIN_NS (10ull * 1000000ull)   /* pause after the first failed round */
#define MB_LOOP_BACKOFF_MAX_NS (1000ull * 1000000ull) /* the pause doubles up to this */
#define MB_LOOP_CONNECT_ROUNDS 8 /* failed rounds in a row before the thread gives up */

/* mb_loop_init prepares thread `id` of `nthreads`: its share of -c connections, of -n and
 * of --rate, and its epoll fd. `start_ns` is the common start time (warm-up begins there).
 * Borrows `o`, `ctx`, `body` and `stop` for the loop's life. Returns 0 or -errno
 * (-ENOMEM, or epoll_create1's error). Allocates the connection table. */
int mb_loop_init(struct mb_loop *l, const struct mb_opts *o, SSL_CTX *ctx, const uint8_t *body,
                 size_t body_chunk, unsigned id, unsigned nthreads, uint64_t start_ns,
                 const volatile sig_atomic_t *stop);

/* mb_loop_run is the thread body (pthread start routine; `arg` is a struct mb_loop). It
 * runs until the deadline, the request quota or `*stop`, then closes every connection.
 * While connections fail to come up it backs off (see struct mb_loop); after
 * MB_LOOP_CONNECT_ROUNDS failed rounds with no completed handshake it stops early with
 * l->gave_up set and the reason in l->env.setup_why. Results are in l->stats,
 * l->measure_start_ns/stop_ns and l->err. Returns NULL. */
void *mb_loop_run(void *arg);

/* mb_loop_measured_ns returns how long `l` was measuring (0 if it never got past warm-up). */
uint64_t mb_loop_measured_ns(const struct mb_loop *l);

/* mb_loop_backoff_ns returns the pause after failed connect round `round` (>= 1). */
uint64_t mb_loop_backoff_ns(unsigned round);

/* mb_loop_dispose frees what mb_loop_init allocated. Safe after a failed init. */
void mb_loop_dispose(struct mb_loop *l);

#endif
