/* mb_replay.h - mitmd-bench --replay FLOWS.jsonl: client replay of a mitmd -w recording for
 * load. Owns the loaded requests (method, URL, headers, body, recorded start and status) and
 * the replay run: -c connections, one blocking thread each, taking requests in recorded
 * order at the recorded pace times --speed (or --rate R), through --proxy (CONNECT for https,
 * absolute-form for http) or directly. Called by main only; allocates at load, blocks. */
#ifndef MITMD_BENCH_MB_REPLAY_H
#define MITMD_BENCH_MB_REPLAY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "bench/mb_opts.h"
#include "bench/mb_stats.h"

struct mb_replay_req {
    uint64_t at_ns;      /* recorded start, from the first request's */
    int status;          /* recorded response status (0 = none recorded) */
    bool tls;
    uint16_t port;
    char *host;          /* NUL-terminated, no brackets */
    char *head;          /* the HTTP/1.1 request head for an origin (origin-form) */
    char *head_proxy;    /* the same in absolute-form, for http:// through a proxy */
    size_t head_len, head_proxy_len;
    uint8_t *body;
    size_t body_len;
};

struct mb_replay {
    struct mb_replay_req *reqs;
    size_t n;
    size_t lines, cut_bodies, skipped; /* skipped: not flows, or not http(s) URLs */
};

/* mb_replay_load reads a -w recording into `rp`, sorted by recorded start. A body cut by
 * save_bodies is sent as recorded (counted in cut_bodies). Returns 0, or -errno with a
 * one-line reason in `err`. */
int mb_replay_load(const char *path, struct mb_replay *rp, char *err, size_t errlen);

/* mb_replay_free frees what mb_replay_load allocated. */
void mb_replay_free(struct mb_replay *rp);

/* mb_replay_run sends every request once and fills `total` (a complete response is a
 * request; one whose status differs from the recorded one is also an MB_ERR_STATUS error)
 * and `*measured_ns`. Stops early when *stop is set. Returns 0 or -errno (threads). */
int mb_replay_run(const struct mb_opts *o, SSL_CTX *ctx, const struct mb_replay *rp,
                  volatile sig_atomic_t *stop, struct mb_stats *total, uint64_t *measured_ns);

#endif
