/* worker.h - one worker process: `mitmd --worker ID`, its context (struct worker) and loop.
 * Owns the ring, the connection pool, the TLS contexts, the resolver, the master channel and
 * the flow writer of this process. Called only by master/main.c (worker_main) and by the
 * worker modules (through the struct). Never holds the CA private key; never blocks on the
 * loop (start-up and the final drain may). */
#ifndef MITMD_WORKER_WORKER_H
#define MITMD_WORKER_WORKER_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "certcache/certcache.h"
#include "shared/board.h"
#include "shared/config.h"
#include "shared/msg.h"
#include "worker/access.h"
#include "worker/conn.h"
#include "worker/dns.h"
#include "worker/flow.h"
#include "worker/flow_body.h"
#include "worker/flow_out.h"
#include "worker/replay.h"
#include "worker/flowfilter.h"
#include "worker/ipc.h"
#include "worker/modes.h"
#include "worker/ring.h"
#include "worker/rules.h"
#include "worker/tls_ctx.h"

struct h2_pool;

/* File descriptors inherited from the master across exec (see DESIGN.md "Processes"). The
 * listeners: the first at fd 4, the others where config_listen_fd() says (from 16 on). */
#define WORKER_FD_IPC 3
#define WORKER_FD_LISTEN CONFIG_LISTEN_FD_FIRST
#define WORKER_FD_CERTCACHE 5
#define WORKER_FD_BOARD 6
#define WORKER_MAX_LISTENERS (CONFIG_MAX_MODES * CONFIG_MODE_MAX_ADDRS)

/* A worker above its share of connections (shared/board.h) leaves a pending connection to
 * its siblings for WORKER_ACCEPT_DEFER_MS before it takes it itself. */
#define WORKER_ACCEPT_DEFER_MS 1

#define WORKER_RING_ENTRIES 1024
#define WORKER_FD_HEADROOM 64 /* descriptors a worker keeps for itself (ring, resolver, files) */
#define WORKER_TICK_MS 1000  /* timeouts scan, resolver timeouts, STATS */
/* free heap glibc keeps at the top of the heap while traffic flows (M_TRIM_THRESHOLD): a
 * TLS record buffer freed and taken again per read must not shrink and regrow the heap
 * (a page fault per read and a TLB shootdown per shrink); given back once the worker is
 * quiet for a tick */
#define WORKER_HEAP_KEEP (16u << 20)

/* struct worker_listener is one inherited listening socket: its mode and its accept, which is
 * balanced on its own (one accept queue per socket, shared by every worker). */
struct worker_listener {
    struct worker *w;
    int fd;
    const struct modes_conf *mode;  /* &w->modes[mode index] */
    struct ring_op accept_op;       /* one-shot accept on the shared listener */
    struct ring_op accept_poll_op;  /* above its share: watches the listener instead */
    struct ring_op accept_defer_op; /* the siblings' head start on a pending connection */
    struct ring_op cancel_op;       /* cancels the accept (or the listener watch) on stop */
};

/* struct worker is the whole state of one worker process; there is no other mutable
 * global. Modules reach it through conn->w. */
struct worker {
    const struct config *cfg;
    int id;
    struct ring ring;
    struct conn_pool pool;
    struct tls_ctx tls;
    struct dns dns;
    struct ipc ipc;
    struct flow_out out;
    struct flow_body_cfg bodies; /* save_bodies (worker/flow_body.h) */
    struct replay *replay;       /* -S: server replay (worker/replay.h), NULL = none */
    struct creplay *creplay;     /* -C: client replay, worker 0 (worker/creplay.h), or NULL */
    struct certcache *cache;
    struct h2_pool *h2_pool; /* HTTP/2 stream slots; NULL with --no-http2 */
    struct certcache_reader cache_reader;
    regex_t ignore_re[CONFIG_MAX_PATTERNS]; /* --ignore-hosts */
    int n_ignore_re;
    regex_t allow_re[CONFIG_MAX_PATTERNS]; /* --allow-hosts */
    int n_allow_re;

    struct modes_conf modes[CONFIG_MAX_MODES]; /* cfg->modes as served (worker/modes.h) */
    struct worker_listener listeners[WORKER_MAX_LISTENERS]; /* every inherited listener */
    int n_listeners;
    bool accepting;
    struct board_slot *board; /* the accept board (fd 6), cfg->workers slots; NULL = none */
    int signal_fd;
    struct ring_op signal_op;
    uint8_t signal_buf[128]; /* one struct signalfd_siginfo */
    struct ring_op tick_op;
    bool heap_busy;           /* bytes moved since the heap was last trimmed (worker_on_tick) */
    bool stopping;            /* SIGTERM/SIGINT or master gone: drain then exit */
    uint64_t stop_deadline_ns;

    struct msg_stats stats; /* counters sent to the master every tick */
    uint64_t hs_log_ns;     /* last client-handshake failure logged (rate limit) */
    unsigned hs_log_skipped; /* failures not logged since */
    uint64_t out_dropped_told; /* out.write_dropped already added to stats */
    int stage;              /* how far start-up got (worker.c: enum worker_stage) */

    /* flow filters and rules, compiled at start-up (stage REGEX); NULL filter = every flow */
    struct flowfilter *view_filter; /* dumper_filter / positional: printed lines */
    struct flowfilter *save_filter; /* save_stream_filter / positional: -w records */
    struct rules *rules;            /* for the relays: rules_on_request/response_head */
    uint64_t rules_rng;             /* PRNG state for inject_* percentages and jitter */
    struct access access;           /* block_global/block_private, --proxyauth (access.h) */
};

/* worker_publish_load tells the sibling workers how many connections this one holds (the
 * accept board); conn.c calls it when a connection is freed. */
void worker_publish_load(struct worker *w);

/* worker_main runs `mitmd --worker ID ...`: parses argv like the master, waits for HELLO on
 * fd 3, attaches the certcache (fd 5) and the accept board (fd 6), builds the TLS contexts,
 * then serves its listeners (fd 4 and config_listen_fd(), shared with its siblings) until
 * SIGTERM/SIGINT or the master's socket closes. Returns the process exit status (0 after a
 * clean stop, 1 on a start-up failure, which it logs). */
int worker_main(int argc, char **argv);

/* worker_count increments one statistics counter. */
static inline void worker_count(struct worker *w, enum msg_stat s)
{
    w->stats.v[s]++;
}

/* worker_count_add adds `n` to one statistics counter (bytes). */
static inline void worker_count_add(struct worker *w, enum msg_stat s, uint64_t n)
{
    w->stats.v[s] += n;
}

/* worker_on_ws_message prints one console line for a WebSocket message (h1_relay_ws_fn; arg
 * is the worker), when the view filter matches the upgrade's flow. */
void worker_on_ws_message(void *arg, const struct flow *f, bool from_client, int opcode,
                          uint64_t len);

/* worker_on_flow is the relays' flow callback (`arg` is the worker): counts the flow (and an
 * answer mitmd made itself: 4xx as a client error, 502/504 as an upstream error) and queues
 * its console line if it matches the view filter and its JSON record if it matches
 * save_stream_filter. */
void worker_on_flow(void *arg, const struct flow *f);

/* worker_has_host_rules returns whether --ignore-hosts or --allow-hosts is in effect. */
bool worker_has_host_rules(const struct worker *w);

/* worker_host_passes returns whether a connection to `host` with client SNI `sni` (NULL or
 * "" when none) is passed through untouched, as mitmproxy decides: --ignore-hosts matches the
 * host or the SNI, or --allow-hosts is given and matches neither. Never allocates. */
bool worker_host_passes(const struct worker *w, const char *host, const char *sni);

#endif
