/* worker.c - see worker.h. Start-up (may block: HELLO, certcache, TLS contexts, resolver
 * config, flow file), then the loop: accept, signals, the 1 s tick (timeouts, resolver
 * timeouts, STATS), and every connection's completions. */
#include "worker/worker.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/msgcodec.h"
#include "shared/stats.h"
#include "shared/h1_parse.h"
#include "worker/creplay.h"
#include "worker/flow.h"
#include "worker/h2_relay.h"
#include "worker/modes.h"

/* worker_re_any returns whether `s` (may be NULL or "") matches one of `n` patterns. */
static bool worker_re_any(const regex_t *re, int n, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    for (int i = 0; i < n; i++)
        if (regexec(&re[i], s, 0, NULL, 0) == 0)
            return true;
    return false;
}

bool worker_has_host_rules(const struct worker *w)
{
    return w->n_ignore_re > 0 || w->n_allow_re > 0;
}

bool worker_host_passes(const struct worker *w, const char *host, const char *sni)
{
    if (worker_re_any(w->ignore_re, w->n_ignore_re, host) ||
        worker_re_any(w->ignore_re, w->n_ignore_re, sni))
        return true;
    return w->n_allow_re > 0 && !worker_re_any(w->allow_re, w->n_allow_re, host) &&
           !worker_re_any(w->allow_re, w->n_allow_re, sni);
}

/* worker_observe_flow counts a finished exchange for the metrics (issue 13): its method and
 * status class, its duration, and its upstream connect, TLS handshake and first-byte times. */
static void worker_observe_flow(struct worker *w, const struct flow *f)
{
    uint64_t *v = w->stats.v;
    enum msg_method m = stats_method_class(flow_str_ptr(f, f->method), f->method.len);

    v[MSG_REQ_SLOT(m, stats_status_class(f->status))]++;
    if (f->t_done > f->t_start && f->t_start != 0)
        stats_hist_observe(&v[MSG_HIST_SLOT(MSG_HIST_REQUEST, 0)],
                           (f->t_done - f->t_start) / 1000);
    if (f->connect_ns >= 0)
        stats_hist_observe(&v[MSG_HIST_SLOT(MSG_HIST_UP_CONNECT, 0)],
                           (uint64_t)f->connect_ns / 1000);
    if (f->tls_ns >= 0)
        stats_hist_observe(&v[MSG_HIST_SLOT(MSG_HIST_UP_TLS, 0)], (uint64_t)f->tls_ns / 1000);
    if (f->t_response_first != 0 && f->t_request_sent != 0 &&
        f->t_response_first >= f->t_request_sent)
        stats_hist_observe(&v[MSG_HIST_SLOT(MSG_HIST_UP_TTFB, 0)],
                           (f->t_response_first - f->t_request_sent) / 1000);
}

void worker_on_ws_message(void *arg, const struct flow *f, bool from_client, int opcode,
                          uint64_t len)
{
    struct worker *w = arg;
    char line[FLOW_JSON_COMPACT_STR * 6 + 256];
    ssize_t n;

    if (!flowfilter_match(w->view_filter, f))
        return;
    n = flow_format_ws_message(f, from_client, opcode, len, line, sizeof(line));
    if (n > 0 && flow_out_line(&w->out, line, (size_t)n) == -ENOBUFS)
        worker_count(w, MSG_STAT_FLOWS_DROPPED);
}

void worker_on_flow(void *arg, const struct flow *f)
{
    struct worker *w = arg;

    worker_count(w, MSG_STAT_FLOWS);
    worker_observe_flow(w, f);
    /* answers made by mitmd itself are counted here, once: 4xx (400/408/413/431...) are the
     * client's fault, 502/504 the upstream's (refused, DNS, TLS verify, reset, timeout) */
    if (f->answered && f->status >= 400 && f->status < 500)
        worker_count(w, MSG_STAT_CLIENT_ERRORS);
    else if (f->answered && (f->status == 502 || f->status == 504))
        worker_count(w, MSG_STAT_UPSTREAM_ERRORS);
    bool line = w->out.streams[0].fd >= 0 && flowfilter_match(w->view_filter, f);
    bool json = w->out.streams[1].fd >= 0 && flowfilter_match(w->save_filter, f);
    int e = flow_out_record_to(&w->out, f, (line ? 1u : 0u) | (json ? 2u : 0u) | 4u);

    if (e == -ENOBUFS)
        worker_count(w, MSG_STAT_FLOWS_DROPPED);
    /* the bodies belong to the record: the relays hand their own flow, const only to keep
     * the formatters honest */
    flow_body_release((struct flow *)f);
}

void worker_publish_load(struct worker *w)
{
    if (w->board != NULL)
        board_publish(w->board, w->id, w->pool.used);
}

/* worker_above_share is true when this worker holds more connections than its share. */
static bool worker_above_share(const struct worker *w)
{
    return w->board != NULL && board_should_defer(w->board, w->cfg->workers, w->id);
}

/* worker_arm_listener waits for the next connection on listener `l` (shared with the
 * siblings). A worker within its share queues a one-shot accept: the kernel wakes one queued
 * worker per connection. A worker above its share (shared/board.h) only watches the listener
 * (POLLIN); when a connection is pending it gives its siblings WORKER_ACCEPT_DEFER_MS to take
 * it, then takes it itself if they did not (they may be busy): balance never leaves a
 * connection waiting. Each listener is balanced on its own queue, against the worker's total
 * connection count. */
static void worker_arm_listener(struct worker_listener *l)
{
    struct worker *w = l->w;
    int err;

    if (!w->accepting || l->accept_op.armed || l->accept_poll_op.armed ||
        l->accept_defer_op.armed)
        return;
    if (worker_above_share(w))
        err = ring_submit_poll(&w->ring, &l->accept_poll_op, l->fd, POLLIN);
    else
        err = ring_submit_accept(&w->ring, &l->accept_op, l->fd);
    if (err)
        log_error("cannot arm accept on listener %d (--mode %s): %s", l->fd,
                  l->mode->spec->full_spec, strerror(-err));
}

/* worker_arm_accept arms every listener that is not armed. */
static void worker_arm_accept(struct worker *w)
{
    for (int i = 0; i < w->n_listeners; i++)
        worker_arm_listener(&w->listeners[i]);
}

/* worker_took reports the outcome of one accept on `l` (a descriptor or -errno). Returns false
 * when accepting should pause until the next tick (out of descriptors). */
static bool worker_took(struct worker_listener *l, int res)
{
    struct worker *w = l->w;

    if (res >= 0) {
        conn_accept(w, res, l->mode);
        worker_publish_load(w);
    } else if (res != -ECANCELED && res != -EAGAIN && res != -EINTR) {
        log_warn("accept failed: %s", strerror(-res)); /* EMFILE & co: retried next tick */
    }
    return res != -EMFILE && res != -ENFILE;
}

static void worker_on_accept(struct ring_op *op, int res, uint32_t flags)
{
    struct worker_listener *l =
        (struct worker_listener *)((char *)op - offsetof(struct worker_listener, accept_op));

    (void)flags;
    if (worker_took(l, res))
        worker_arm_listener(l);
}

/* worker_on_accept_poll: a connection is pending while this worker is above its share. */
static void worker_on_accept_poll(struct ring_op *op, int res, uint32_t flags)
{
    struct worker_listener *l =
        (struct worker_listener *)((char *)op - offsetof(struct worker_listener, accept_poll_op));

    (void)flags;
    if (!l->w->accepting)
        return;
    if (res < 0) {
        worker_arm_listener(l);
        return;
    }
    if (ring_submit_timeout(&l->w->ring, &l->accept_defer_op, WORKER_ACCEPT_DEFER_MS) != 0)
        log_error("cannot arm the accept timer");
}

/* worker_on_accept_defer: the siblings had WORKER_ACCEPT_DEFER_MS. Back in our share, queue
 * for connections again; still above it, take a connection nobody took (if any) and go on
 * watching. */
static void worker_on_accept_defer(struct ring_op *op, int res, uint32_t flags)
{
    struct worker_listener *l =
        (struct worker_listener *)((char *)op - offsetof(struct worker_listener, accept_defer_op));
    int fd;

    (void)res;
    (void)flags;
    if (!l->w->accepting)
        return;
    if (worker_above_share(l->w)) {
        fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (!worker_took(l, fd >= 0 ? fd : -errno))
            return;
    }
    worker_arm_listener(l);
}

/* worker_is_listener returns whether `fd` is an open listening TCP socket. */
static bool worker_is_listener(int fd)
{
    int on = 0, type = 0;
    socklen_t len = sizeof(on), tlen = sizeof(type);

    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on == 1 &&
           getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_STREAM;
}

/* worker_find_listeners prepares each mode of the configuration (worker/modes.h) and finds
 * its listening sockets where the master put them (config_listen_fd: one per address its
 * listen host resolved to, in order; the first missing number ends the mode's list). Runs
 * before the worker opens any descriptor of its own. Returns 0, or -1 after logging a mode
 * without a listener (a master/worker mismatch). */
static int worker_find_listeners(struct worker *w)
{
    const struct config *cfg = w->cfg;

    for (int i = 0; i < cfg->n_modes; i++) {
        if (modes_conf_init(&w->modes[i], cfg, i) != 0) {
            log_error("--mode %s: reverse server name too long", cfg->modes[i].full_spec);
            return -1;
        }
        for (int k = 0; k < CONFIG_MODE_MAX_ADDRS; k++) {
            struct worker_listener *l;
            int fd = config_listen_fd(i, k);

            if (!worker_is_listener(fd))
                break;
            l = &w->listeners[w->n_listeners++];
            l->w = w;
            l->fd = fd;
            l->mode = &w->modes[i];
        }
        if (w->n_listeners == 0 || w->listeners[w->n_listeners - 1].mode != &w->modes[i]) {
            log_error("no listening socket for --mode %s at fd %d", cfg->modes[i].full_spec,
                      config_listen_fd(i, 0));
            return -1;
        }
    }
    return 0;
}

/* worker_close_idle closes connections that are between requests (nothing to drain). */
static void worker_close_idle(struct worker *w)
{
    struct conn *c, *next;

    for (c = w->pool.active; c != NULL; c = next) {
        next = c->next;
        conn_drain(c); /* idle ones close now; HTTP/2 sends GOAWAY */
    }
}

static void worker_stop(struct worker *w, const char *why)
{
    if (w->stopping)
        return;
    log_info("stopping (%s), %d connections open", why, w->pool.used);
    w->stopping = true;
    creplay_stop(w->creplay);
    w->accepting = false;
    /* The board slot is left alone: on a reload the successor already owns it, and the master
     * clears it when a worker that is not replaced dies. */
    /* exchanges in flight may finish within --shutdown-timeout (graceful stop and reload) */
    w->stop_deadline_ns = flow_now_ns() + (uint64_t)w->cfg->shutdown_timeout_s * 1000000000ull;
    /* the accept or the listener watch, whichever is armed (a pending timer finds
     * accepting false) */
    for (int i = 0; i < w->n_listeners; i++) {
        struct worker_listener *l = &w->listeners[i];

        if ((l->accept_op.armed || l->accept_poll_op.armed) && !l->cancel_op.armed)
            (void)ring_submit_cancel_fd(&w->ring, &l->cancel_op, l->fd);
    }
    /* this worker's copies of the listening sockets go (the cancels are submitted first: they
     * name the descriptors): on a stop the master closes its own, so the kernel refuses new
     * connections rather than queueing them; on a reload the master and the new workers
     * still hold the sockets */
    (void)ring_flush(&w->ring);
    for (int i = 0; i < w->n_listeners; i++) {
        struct worker_listener *l = &w->listeners[i];

        if (l->fd >= 0)
            close(l->fd);
        l->fd = -1;
    }
    worker_close_idle(w);
}

static void worker_arm_signal(struct worker *w)
{
    if (ring_submit_read(&w->ring, &w->signal_op, w->signal_fd, w->signal_buf,
                         sizeof(struct signalfd_siginfo)) != 0)
        log_error("cannot watch signals");
}

static void worker_on_signal(struct ring_op *op, int res, uint32_t flags)
{
    struct worker *w = (struct worker *)((char *)op - offsetof(struct worker, signal_op));
    struct signalfd_siginfo si;

    (void)flags;
    if (res == (int)sizeof(si)) {
        memcpy(&si, w->signal_buf, sizeof(si));
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
            worker_stop(w, si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    if (res != -ECANCELED)
        worker_arm_signal(w);
}

static void worker_on_aux(struct ring_op *op, int res, uint32_t flags)
{
    (void)op;
    (void)res;
    (void)flags;
}

/* worker_count_rules copies the rules' hit counts, summed by kind, into the stats (issue 13:
 * mitmd_rule_applications_total). */
static void worker_count_rules(struct worker *w)
{
    static_assert(RULES_KIND_COUNT == MSG_RULE_KINDS, "msg.h rule kinds = worker/rules.h");
    static_assert(CONFIG_MAX_MODES <= MSG_MAX_LISTENERS, "msg.h listener slots cover --mode");
    struct rules_stat rs[RULES_KIND_COUNT * CONFIG_MAX_PATTERNS];
    int n;

    if (w->rules == NULL || rules_is_empty(w->rules))
        return;
    n = rules_stats(w->rules, rs, (int)(sizeof(rs) / sizeof(rs[0])));
    if (n > (int)(sizeof(rs) / sizeof(rs[0])))
        n = (int)(sizeof(rs) / sizeof(rs[0]));
    for (int k = 0; k < MSG_RULE_KINDS; k++)
        w->stats.v[MSG_RULE_BASE + k] = 0;
    for (int i = 0; i < n; i++)
        if ((int)rs[i].kind >= 0 && (int)rs[i].kind < MSG_RULE_KINDS)
            w->stats.v[MSG_RULE_BASE + rs[i].kind] += rs[i].hits;
}

static void worker_send_stats(struct worker *w)
{
    /* records the flow writer dropped itself (a failed write: a full disk) */
    w->stats.v[MSG_STAT_FLOWS_DROPPED] += w->out.write_dropped - w->out_dropped_told;
    w->out_dropped_told = w->out.write_dropped;
    w->stats.v[MSG_STAT_ACTIVE] = (uint64_t)w->pool.used;
    /* open connections by listener: one walk of the pool a second */
    for (int i = 0; i < w->cfg->n_modes; i++)
        w->stats.v[MSG_LSTN_SLOT(i, MSG_LSTN_ACTIVE)] = 0;
    for (struct conn *c = w->pool.active; c != NULL; c = c->next) {
        w->stats.v[MSG_LSTN_SLOT(c->mode->index, MSG_LSTN_ACTIVE)]++;
        if (c->proto != NULL && c->proto->report != NULL)
            c->proto->report(c); /* HTTP/2 streams and resets as they happen */
    }
    w->stats.v[MSG_STAT_CACHE_HITS] = w->cache_reader.hits;
    w->stats.v[MSG_STAT_CACHE_MISSES] = w->cache_reader.misses;
    worker_count_rules(w);
    ipc_send_stats(&w->ipc, &w->stats);
}

/* worker_trim_heap gives the heap's free memory back to the kernel once no connection has
 * moved a byte for a tick (glibc keeps up to WORKER_HEAP_KEEP while traffic flows). */
static void worker_trim_heap(struct worker *w, bool quiet)
{
    if (!quiet) {
        w->heap_busy = true;
        return;
    }
    if (w->heap_busy)
        (void)malloc_trim(0);
    w->heap_busy = false;
}

static void worker_on_tick(struct ring_op *op, int res, uint32_t flags)
{
    struct worker *w = (struct worker *)((char *)op - offsetof(struct worker, tick_op));
    uint64_t now = flow_now_ns();
    uint64_t tick_ns = (uint64_t)WORKER_TICK_MS * 1000000ull;
    struct conn *c, *next;
    bool quiet = true;

    (void)res;
    (void)flags;
    for (c = w->pool.active; c != NULL; c = next) {
        next = c->next;
        if (now - c->t_io < tick_ns)
            quiet = false;
        conn_check_timeouts(c, now);
    }
    worker_trim_heap(w, quiet);
    dns_tick(&w->dns);
    (void)ipc_expire(&w->ipc, now);
    if (w->stopping)
        worker_close_idle(w);
    rules_export_stats(w->rules, &w->stats.v[MSG_STAT_RULE_0], RULES_STATS_MAX);
    worker_send_stats(w);
    worker_publish_load(w);
    worker_arm_accept(w);
    if (ring_submit_timeout(&w->ring, &w->tick_op, WORKER_TICK_MS) != 0)
        log_error("cannot arm the tick timer");
}

/* worker_setup_signals blocks SIGTERM/SIGINT and returns a signalfd for them. */
static int worker_setup_signals(void)
{
    sigset_t set;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
        return -errno;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* worker_compile_hosts compiles `n` patterns of option `opt` into `re`, counting them in
 * `*count` (so that the ones compiled are freed on failure). The master checked them already
 * (master/preflight.c); a failure here is logged and returns -EINVAL. */
static int worker_compile_hosts(regex_t *re, int *count, const char *const *pat, int n,
                                const char *opt)
{
    char err[256];

    for (int i = 0; i < n; i++) {
        int rc = regcomp(&re[i], pat[i], CONFIG_HOSTS_REGEX_FLAGS);

        if (rc != 0) {
            regerror(rc, &re[i], err, sizeof(err));
            log_error("%s '%s': %s", opt, pat[i], err);
            return -EINVAL;
        }
        (*count)++;
    }
    return 0;
}

static int worker_compile_ignores(struct worker *w)
{
    if (worker_compile_hosts(w->ignore_re, &w->n_ignore_re, w->cfg->ignore_hosts,
                             w->cfg->n_ignore_hosts, "--ignore-hosts") != 0)
        return -EINVAL;
    return worker_compile_hosts(w->allow_re, &w->n_allow_re, w->cfg->allow_hosts,
                                w->cfg->n_allow_hosts, "--allow-hosts");
}

/* worker_raise_nofile lifts the soft fd limit to the hard one and returns how many client
 * connections it allows: each needs two sockets, plus headroom for the worker's own. Fewer
 * than --max-conns (logged once): the pool is sized to it, so a full worker answers 503
 * instead of leaving clients in the backlog or failing upstream sockets with EMFILE. */
static int worker_raise_nofile(int max_conns)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)max_conns * 2 + WORKER_FD_HEADROOM, cap;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return max_conns;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return max_conns;
    cap = rl.rlim_cur > WORKER_FD_HEADROOM + 2 ? (rl.rlim_cur - WORKER_FD_HEADROOM) / 2 : 1;
    log_warn("open file limit %llu holds %llu client connections per worker, not --max-conns "
             "%d: beyond it clients get 503",
             (unsigned long long)rl.rlim_cur, (unsigned long long)cap, max_conns);
    return (int)cap;
}

/* worker_drain closes what is left after a stop and waits (bounded) for the ring to settle. */
static void worker_drain(struct worker *w)
{
    struct conn *c, *next;

    for (c = w->pool.active; c != NULL; c = next) {
        next = c->next;
        conn_close(c);
        conn_pump(c);
    }
    for (int i = 0; i < 50 && (w->pool.used > 0 || !flow_out_is_idle(&w->out)); i++)
        if (ring_run(&w->ring, 20) < 0)
            break;
}

static int worker_run(struct worker *w)
{
    int n;

    for (;;) {
        n = ring_run(&w->ring, 0);
        if (n < 0) {
            log_error("io_uring wait failed: %s", strerror(-n));
            return 1;
        }
        if (w->ipc.eof && !w->stopping)
            worker_stop(w, "master gone");
        if (w->stopping && ((w->pool.used == 0 && flow_out_is_idle(&w->out)) ||
                            flow_now_ns() >= w->stop_deadline_ns))
            return 0;
    }
}

/* worker_stage is how far worker_open got; worker_close undoes exactly that much. */
enum worker_stage {
    WORKER_STAGE_NONE = 0,
    WORKER_STAGE_SIGNAL,
    WORKER_STAGE_CACHE,
    WORKER_STAGE_TLS,
    WORKER_STAGE_REGEX,
    WORKER_STAGE_RING,
    WORKER_STAGE_POOL,
    WORKER_STAGE_H2,
    WORKER_STAGE_DNS,
    WORKER_STAGE_FLOW,
    WORKER_STAGE_IPC,
};

/* worker_open_tls builds the TLS contexts from the master's HELLO (CA certificate, leaf key,
 * ticket key); the key bytes are wiped from `hello_buf` whatever happens. Returns 0 or -1. */
static int worker_open_tls(struct worker *w, uint8_t *hello_buf, const struct msg_hello_view *hello)
{
    const struct config *cfg = w->cfg;
    struct tls_ctx_opts topts;
    const char *why = "";
    int e;

    memset(&topts, 0, sizeof(topts));
    topts.ca_cert_der = hello->ca_der.p;
    topts.ca_cert_der_len = hello->ca_der.len;
    topts.leaf_key_der = hello->key_der.p;
    topts.leaf_key_der_len = hello->key_der.len;
    topts.upstream_ca_file = cfg->upstream_ca;
    topts.insecure = cfg->ssl_insecure;
    topts.ciphers_client = cfg->ciphers_client;
    topts.ciphers_server = cfg->ciphers_server;
    topts.version_client_min = cfg->tls_version_client_min;
    topts.version_client_max = cfg->tls_version_client_max;
    topts.version_server_min = cfg->tls_version_server_min;
    topts.version_server_max = cfg->tls_version_server_max;
    topts.certs_bundle_file = cfg->certs_bundle; /* --certs, client_certs, onboarding */
    /* the same ticket key in every worker: clients resume whichever worker they reach */
    if (hello->ticket_key.len == TLS_CTX_TICKET_KEY_LEN)
        topts.ticket_key = hello->ticket_key.p;
    if (cfg->http2) {
        static const uint8_t alpn_h2[] = "\x02h2\x08http/1.1";

        topts.alpn_allowed = alpn_h2;
        topts.alpn_allowed_len = sizeof(alpn_h2) - 1;
    }
    e = tls_ctx_init(&w->tls, &topts, &why);
    memset(hello_buf, 0, MSG_MAX_SIZE); /* the leaf key now lives in the TLS context only */
    if (e) {
        log_error("TLS setup failed: %s", why);
        return -1;
    }
    return 0;
}

/* worker_open_master attaches what the master hands over: HELLO on fd 3, the certcache (fd 5),
 * the accept board (fd 6, optional), and builds the TLS contexts. Returns 0 or -1 (logged). */
static int worker_open_master(struct worker *w)
{
    const struct config *cfg = w->cfg;
    struct msg_hello_view hello;
    uint8_t *hello_buf = malloc(MSG_MAX_SIZE);
    const char *why = "";
    int e, rc = -1;

    if (hello_buf == NULL)
        return -1;
    e = ipc_recv_hello(WORKER_FD_IPC, hello_buf, &hello, &why);
    if (e) {
        log_error("no HELLO from the master: %s", why);
        goto out_free;
    }
    e = certcache_attach(WORKER_FD_CERTCACHE, &w->cache, &why);
    if (e) {
        log_error("cannot attach the certificate cache: %s", why);
        goto out_wipe;
    }
    w->stage = WORKER_STAGE_CACHE;
    if (w->id < 0 || w->id >= cfg->workers ||
        (e = board_map(WORKER_FD_BOARD, cfg->workers, &w->board)) != 0) {
        log_warn("no accept board (%s): connections are not balanced across workers",
                 w->id < 0 || w->id >= cfg->workers ? "worker id out of range" : strerror(-e));
        w->board = NULL;
    } else {
        board_set_alive(w->board, w->id, true);
    }
    if (worker_open_tls(w, hello_buf, &hello) != 0)
        goto out_free;
    w->stage = WORKER_STAGE_TLS;
    rc = 0;
    goto out_free;
out_wipe:
    memset(hello_buf, 0, MSG_MAX_SIZE);
out_free:
    free(hello_buf);
    return rc;
}

/* worker_open sets up everything the loop needs, in order, recording in w->stage how far it
 * got. Returns 0, or -1 after logging why (worker_close undoes the stages reached). */
static int worker_open(struct worker *w)
{
    const struct config *cfg = w->cfg;
    const char *why = "";
    char err[512];
    int e, max_conns = worker_raise_nofile(cfg->max_conns > 0 ? cfg->max_conns : 4096);

    w->signal_fd = worker_setup_signals();
    if (w->signal_fd < 0) {
        log_error("signalfd: %s", strerror(-w->signal_fd));
        return -1;
    }
    w->stage = WORKER_STAGE_SIGNAL;
    if (worker_open_master(w) != 0)
        return -1;
    if (worker_compile_ignores(w) != 0)
        return -1;
    w->stage = WORKER_STAGE_REGEX;
    /* flow filters and rules: the master checked them (rules_check); errors are logged here
     * only if the two disagree (e.g. an @FILE this user may not read) */
    if ((cfg->view_filter != NULL &&
         flowfilter_compile(cfg->view_filter, &w->view_filter, err, sizeof(err)) != 0) ||
        (cfg->save_stream_filter != NULL &&
         flowfilter_compile(cfg->save_stream_filter, &w->save_filter, err, sizeof(err)) != 0) ||
        rules_compile(cfg, &w->rules, err, sizeof(err)) != 0 ||
        access_open(w, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return -1;
    }
    if (w->id == 0 &&
        (flowfilter_uses_body(w->view_filter) || flowfilter_uses_body(w->save_filter)))
        log_warn("~b, ~bq and ~bs match no flow: mitmd streams bodies and keeps none");
    w->rules_rng = flow_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)w->id;
    /* best effort: without it the heap only shrinks and regrows more often */
    (void)mallopt(M_TRIM_THRESHOLD, (int)WORKER_HEAP_KEEP);
    e = ring_open(&w->ring, WORKER_RING_ENTRIES);
    if (e) {
        log_error("io_uring setup failed: %s", strerror(-e));
        return -1;
    }
    w->stage = WORKER_STAGE_RING;
    e = conn_pool_init(&w->pool, max_conns,
                       cfg->max_header_size > 0 ? cfg->max_header_size : H1_HEAD_MAX_DEFAULT);
    if (e) {
        log_error("cannot allocate %d connections: %s", cfg->max_conns, strerror(-e));
        return -1;
    }
    w->stage = WORKER_STAGE_POOL;
    if (cfg->http2) {
        w->h2_pool = h2_pool_new(H2_POOL_STREAMS_DEFAULT);
        if (w->h2_pool == NULL) {
            log_error("cannot allocate the HTTP/2 stream pool");
            return -1;
        }
    }
    w->stage = WORKER_STAGE_H2;
    e = dns_init(&w->dns, &w->ring, cfg, &why);
    if (e) {
        log_error("resolver setup failed: %s", why);
        return -1;
    }
    w->stage = WORKER_STAGE_DNS;
    e = flow_out_init(&w->out, &w->ring, cfg->quiet ? -1 : STDOUT_FILENO, cfg->flow_file, &why);
    if (e == 0 && cfg->hardump != NULL)
        e = flow_out_open_har(&w->out, cfg->hardump, &why);
    if (e) {
        log_error("%s: %s", why, strerror(-e));
        return -1;
    }
    flow_body_cfg_init(&w->bodies, cfg->save_bodies);
    if (cfg->server_replay != NULL &&
        (e = replay_open(cfg->server_replay, cfg, &w->replay, &why)) != 0) {
        log_error("--server-replay %s: %s: %s", cfg->server_replay, why, strerror(-e));
        flow_out_dispose(&w->out);
        return -1;
    }
    if (cfg->client_replay != NULL &&
        (e = creplay_open(w, cfg->client_replay, &w->creplay, &why)) != 0) {
        log_error("--client-replay %s: %s: %s", cfg->client_replay, why, strerror(-e));
        flow_out_dispose(&w->out);
        replay_close(w->replay);
        return -1;
    }
    w->stage = WORKER_STAGE_FLOW;
    /* the last step: ipc_init tells the master this worker is ready */
    e = ipc_init(&w->ipc, &w->ring, WORKER_FD_IPC);
    if (e) {
        log_error("master channel setup failed: %s", strerror(-e));
        return -1;
    }
    w->stage = WORKER_STAGE_IPC;
    /* a certificate reply that never comes fails its handshake instead of holding a slot */
    ipc_set_timeout(&w->ipc,
                    (unsigned)(cfg->handshake_timeout_s > 0 ? cfg->handshake_timeout_s : 10) * 1000u);
    return 0;
}

/* worker_start arms the accepts, the signal watch and the tick. */
static void worker_start(struct worker *w)
{
    for (int i = 0; i < w->n_listeners; i++) {
        struct worker_listener *l = &w->listeners[i];

        ring_op_init(&l->accept_op, worker_on_accept, NULL);
        ring_op_init(&l->accept_poll_op, worker_on_accept_poll, NULL);
        ring_op_init(&l->accept_defer_op, worker_on_accept_defer, NULL);
        ring_op_init(&l->cancel_op, worker_on_aux, NULL);
    }
    ring_op_init(&w->signal_op, worker_on_signal, NULL);
    ring_op_init(&w->tick_op, worker_on_tick, NULL);
    w->accepting = true;
    worker_arm_accept(w);
    worker_arm_signal(w);
    if (ring_submit_timeout(&w->ring, &w->tick_op, WORKER_TICK_MS) != 0)
        log_error("cannot arm the tick timer");
    log_debug("worker %d ready", w->id);
    creplay_start(w->creplay); /* -C: worker 0 sends the recorded requests */
}

/* worker_finish ends a run: closes what is left, sends the last statistics, and lets
 * pending resolver queries close their connections. */
static void worker_finish(struct worker *w)
{
    worker_drain(w);
    worker_send_stats(w);
    (void)ring_flush(&w->ring);
}

/* worker_close undoes worker_open's stages in reverse, from w->stage down. */
static void worker_close(struct worker *w)
{
    switch (w->stage) {
    case WORKER_STAGE_IPC:
        /* queries still in progress call back with -ECANCELED and close their connections;
         * what is left holds TLS or HTTP/2 sessions (and may report last flows) */
        dns_dispose(&w->dns);
        for (struct conn *c = w->pool.active, *next; c != NULL; c = next) {
            next = c->next;
            conn_dispose(c);
        }
        ipc_dispose(&w->ipc);
        flow_out_dispose(&w->out);
        replay_close(w->replay);
        goto out_h2;
    case WORKER_STAGE_FLOW:
        flow_out_dispose(&w->out);
        replay_close(w->replay);
        /* fallthrough */
    case WORKER_STAGE_DNS:
        dns_dispose(&w->dns);
        /* fallthrough */
    case WORKER_STAGE_H2:
    out_h2:
        h2_pool_free(w->h2_pool);
        /* fallthrough */
    case WORKER_STAGE_POOL:
        conn_pool_dispose(&w->pool);
        /* fallthrough */
    case WORKER_STAGE_RING:
        ring_close(&w->ring);
        creplay_close(w->creplay); /* after the ring: its ops may be armed until then */
        w->creplay = NULL;
        /* fallthrough */
    case WORKER_STAGE_REGEX:
        rules_free(w->rules);
        access_close(w);
        flowfilter_free(w->save_filter);
        flowfilter_free(w->view_filter);
        w->rules = NULL;
        w->save_filter = w->view_filter = NULL;
        for (int i = 0; i < w->n_ignore_re; i++)
            regfree(&w->ignore_re[i]);
        for (int i = 0; i < w->n_allow_re; i++)
            regfree(&w->allow_re[i]);
        /* fallthrough */
    case WORKER_STAGE_TLS:
        tls_ctx_dispose(&w->tls);
        /* fallthrough */
    case WORKER_STAGE_CACHE:
        board_unmap(w->board, w->cfg->workers);
        certcache_close(w->cache);
        /* fallthrough */
    case WORKER_STAGE_SIGNAL:
        close(w->signal_fd);
        /* fallthrough */
    case WORKER_STAGE_NONE:
        break;
    }
    w->stage = WORKER_STAGE_NONE;
}

int worker_main(int argc, char **argv)
{
    struct worker *w; /* big (contexts, tables): on the heap, one per process */
    struct config cfg;
    char err[512], prefix[32];
    int rc = 1;

    /* a worker holds the leaf and ticket keys: no core dumps, no ptrace by its user's peers */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    memset(&cfg, 0, sizeof(cfg));
    if (config_parse(argc, argv, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "mitmd: %s\n", err);
        config_dispose(&cfg);
        return 2;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        fprintf(stderr, "mitmd: worker: out of memory\n");
        config_dispose(&cfg);
        return 1;
    }
    w->cfg = &cfg;
    w->id = cfg.worker_id;
    snprintf(prefix, sizeof(prefix), "mitmd[w%d]", w->id);
    log_setup(prefix, cfg.verbose ? LOG_DEBUG : LOG_INFO);
    /* first, before anything else takes a descriptor number */
    if (worker_find_listeners(w) == 0 && worker_open(w) == 0) {
        worker_start(w);
        rc = worker_run(w);
        worker_finish(w);
    }
    worker_close(w);
    config_dispose(&cfg);
    free(w);
    return rc;
}
