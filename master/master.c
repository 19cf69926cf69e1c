/* master.c - see master.h. The loop is poll(2) over a signalfd and the workers' sockets:
 * the master is not a hot path (DESIGN: certificate requests and statistics only). */
#include "master/master.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "certcache/certcache.h"
#include "master/ca.h"
#include "master/ca_dir.h"
#include "master/certs_pass.h"
#include "master/forge.h"
#include "master/forge_service.h"
#include "master/har_file.h"
#include "master/creplay_load.h"
#include "master/replay_load.h"
#include "master/listen.h"
#include "master/metrics.h"
#include "master/sdnotify.h"
#include "master/supervise.h"
#include "master/upgrade.h"
#include "shared/board.h"
#include "shared/log.h"
#include "shared/memfd_copy.h"
#include "shared/mode_spec.h"
#include "shared/msgcodec.h"
#include "shared/proxyauth.h"
#include "worker/rules.h"

/* MASTER_READ_BUDGET is how many datagrams the master reads from one worker per loop turn
 * (issue 10 item 10): with the round-robin start, a worker flooding certificate requests
 * gets its budget, never the whole batch, and the others are read in the same turn. */
#define MASTER_READ_BUDGET 16
static_assert(MASTER_READ_BUDGET <= FORGE_SERVICE_BATCH, "a budget fits a batch");
static_assert(2 * SUPERVISE_MAX_WORKERS <= FORGE_SERVICE_MAX_PEERS,
              "a reply queue per running and per draining worker");

struct master {
    const struct config *cfg;
    struct ca *ca;
    struct forge *forge;
    struct certcache *cache;
    struct forge_service fs;
    struct supervise sup;
    int sig_fd;
    uint8_t hello[MSG_MAX_SIZE];
    size_t hello_len;
    struct forge_service_req *batch; /* FORGE_SERVICE_BATCH entries, allocated at start */
    int rr;                          /* slot read first in the next turn (round robin) */
    struct listen_set listen;        /* the listeners, for the start-up lines */
    /* SIGUSR1: the line waits for the next report of every running worker (they report once a
     * second), so a request made just before the signal is counted */
    bool stats_wanted;
    uint64_t stats_seq_at[SUPERVISE_MAX_WORKERS];
    uint64_t stats_deadline_ms;
    bool announced;                  /* "listening on" printed: every worker was ready */
    bool reloading;                  /* SIGHUP: READY=1 once every successor is ready */
    struct metrics *mx;              /* metrics_listen's server, NULL when off */
    struct metrics_view view;        /* what /metrics and /healthz show */
    struct sdnotify sd;              /* $NOTIFY_SOCKET (systemd Type=notify) */
    struct upgrade up;               /* SIGUSR2: binary upgrade (both sides) */
    bool mx_deferred;                /* metrics inherited in an upgrade: served once ready */
    bool upgraded;                   /* a new master took over: drain and exit 0 */
    bool took_over;                  /* this master took over from an upgraded one */
    uint64_t stop_deadline_ms;       /* stopping: SIGKILL the workers still running then */
    bool stop_killed;                /* stopping: SIGKILL sent */
    char **argv;                     /* the master's argv (re-executed by an upgrade) */
    struct replay_watch rw;          /* -S without keepserving: stop once it is used up */
    struct creplay_watch cw;         /* -C without keepserving: stop once it is done */
    uint64_t rw_next_ms;             /* when to look at it next */
};

/* MASTER_REPLAY_CHECK_MS is how often the master looks at server replay's cursors (what
 * mitmdump's keepserving watch does every 0.1 s). */
#define MASTER_REPLAY_CHECK_MS 100

/* MASTER_STATS_WAIT_MS bounds how long SIGUSR1 waits for the workers' next reports. */
#define MASTER_STATS_WAIT_MS 1500

static void master_log_stats(struct master *m)
{
    struct certcache_stats cs;
    uint64_t sum[MSG_STAT_COUNT];

    struct msg_stats st;

    certcache_get_stats(m->cache, &cs);
    /* exited workers' totals included: counters never go back across reloads and deaths */
    supervise_sum_stats(&m->sup, &st);
    for (int k = 0; k < MSG_STAT_COUNT; k++)
        sum[k] = st.v[k];
    log_info("stats: accepted=%llu active=%llu flows=%llu client_errors=%llu "
             "upstream_errors=%llu timeouts=%llu cache_hits=%llu cache_misses=%llu "
             "cert_requests=%llu forges=%llu coalesced=%llu cache_inserts=%llu "
             "cache_evictions=%llu flows_dropped=%llu h2_streams=%llu h2_refused=%llu "
             "h2_resets=%llu h2_client_errors=%llu h2_floods=%llu upstream_tls=%llu "
             "upstream_resumed=%llu upstream_resumed_wildcard=%llu reclaimed=%llu "
             "auth_failed=%llu clients_blocked=%llu",
             (unsigned long long)sum[MSG_STAT_ACCEPTED], (unsigned long long)sum[MSG_STAT_ACTIVE],
             (unsigned long long)sum[MSG_STAT_FLOWS],
             (unsigned long long)sum[MSG_STAT_CLIENT_ERRORS],
             (unsigned long long)sum[MSG_STAT_UPSTREAM_ERRORS],
             (unsigned long long)sum[MSG_STAT_TIMEOUTS],
             (unsigned long long)sum[MSG_STAT_CACHE_HITS],
             (unsigned long long)sum[MSG_STAT_CACHE_MISSES],
             (unsigned long long)sum[MSG_STAT_CERT_REQS], (unsigned long long)m->fs.forges,
             (unsigned long long)m->fs.coalesced, (unsigned long long)cs.inserts,
             (unsigned long long)cs.evictions, (unsigned long long)sum[MSG_STAT_FLOWS_DROPPED],
             (unsigned long long)sum[MSG_STAT_H2_STREAMS],
             (unsigned long long)sum[MSG_STAT_H2_REFUSED],
             (unsigned long long)sum[MSG_STAT_H2_RESETS],
             (unsigned long long)sum[MSG_STAT_H2_CLIENT_ERRORS],
             (unsigned long long)sum[MSG_STAT_H2_FLOODS],
             (unsigned long long)sum[MSG_STAT_UP_TLS],
             (unsigned long long)sum[MSG_STAT_UP_RESUMED],
             (unsigned long long)sum[MSG_STAT_UP_WILDCARD],
             (unsigned long long)sum[MSG_STAT_RECLAIMED],
             (unsigned long long)sum[MSG_STAT_AUTH_FAILED],
             (unsigned long long)sum[MSG_STAT_BLOCKED]);
    {
        char rules[1024];

        if (rules_format_stats(m->cfg, &sum[MSG_STAT_RULE_0], RULES_STATS_MAX, rules,
                               sizeof(rules)) > 0)
            log_info("stats: rule hits:%s", rules);
    }
}

/* master_read_worker reads at most `budget` datagrams from one worker's socket: CERT_REQs
 * go to the batch (while it has room), STATS are stored, READY marks the worker set up,
 * anything else is logged and dropped. Returns the new batch size. */
static size_t master_read_worker(struct master *m, struct worker_slot *slot, size_t nbatch,
                                 int budget)
{
    while (budget-- > 0 && nbatch < FORGE_SERVICE_BATCH) {
        struct forge_service_req *r = &m->batch[nbatch];
        struct msg_hdr h;
        const char *why = NULL;
        ssize_t n = recv(slot->ipc_fd, r->dgram, sizeof(r->dgram), MSG_DONTWAIT | MSG_TRUNC);

        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EAGAIN, or EOF: the reaper handles a dead worker */
        if ((size_t)n > sizeof(r->dgram)) {
            log_warn("worker %d: oversized message (%zd bytes) dropped", slot->id, n);
            continue;
        }
        if (msgcodec_decode_hdr(r->dgram, (size_t)n, &h, &why) != 0) {
            log_warn("worker %d: malformed message dropped: %s", slot->id, why);
            continue;
        }
        if (h.type == MSG_CERT_REQ) {
            r->slot = slot->peer;
            r->fd = slot->ipc_fd;
            r->len = (size_t)n;
            nbatch++;
            supervise_mark_ready(&m->sup, slot);
        } else if (h.type == MSG_STATS) {
            if (msgcodec_decode_stats(r->dgram, (size_t)n, &slot->stats, &why) != 0) {
                log_warn("worker %d: bad stats: %s", slot->id, why);
            } else {
                slot->stats_seq++;
                supervise_mark_ready(&m->sup, slot);
            }
        } else if (h.type == MSG_READY) {
            supervise_mark_ready(&m->sup, slot);
        } else {
            log_warn("worker %d: unexpected message type %u dropped", slot->id, h.type);
        }
    }
    return nbatch;
}

/* master_now_ms returns CLOCK_MONOTONIC in milliseconds. */
static uint64_t master_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* master_want_stats starts waiting for every running worker's next report (SIGUSR1). */
static void master_want_stats(struct master *m)
{
    if (m->stats_wanted)
        return;
    for (int i = 0; i < m->sup.n; i++)
        m->stats_seq_at[i] = m->sup.slots[i].stats_seq;
    m->stats_wanted = true;
    m->stats_deadline_ms = master_now_ms() + MASTER_STATS_WAIT_MS;
}

/* master_stats_due logs the statistics once every running worker reported after SIGUSR1, or
 * at the deadline. Returns the milliseconds to wait for it (-1: nothing pending). */
static int master_stats_due(struct master *m)
{
    uint64_t now = master_now_ms();
    bool all = true;

    if (!m->stats_wanted)
        return -1;
    for (int i = 0; i < m->sup.n; i++)
        if (m->sup.slots[i].pid != 0 && m->sup.slots[i].stats_seq <= m->stats_seq_at[i])
            all = false;
    if (all || now >= m->stats_deadline_ms) {
        m->stats_wanted = false;
        master_log_stats(m);
        return -1;
    }
    return (int)(m->stats_deadline_ms - now);
}

static void master_begin_stop(struct master *m);

/* master_replay_due starts the drain, as mitmdump exits, once -S has used every recorded
 * response and -C has sent every recorded request (what is watched: neither with keepserving,
 * -S not with server_replay_reuse either). Requests still in flight are answered first.
 * Returns the milliseconds to the next look (-1: none). */
static int master_replay_due(struct master *m)
{
    uint64_t now = master_now_ms();

    if ((m->rw.map == NULL && m->cw.map == NULL) || m->sup.stopping)
        return -1;
    if (now < m->rw_next_ms)
        return (int)(m->rw_next_ms - now);
    m->rw_next_ms = now + MASTER_REPLAY_CHECK_MS;
    if ((m->rw.map != NULL && replay_watch_left(&m->rw) > 0) ||
        (m->cw.map != NULL && creplay_watch_left(&m->cw) > 0))
        return MASTER_REPLAY_CHECK_MS;
    log_info("%s: stopping (--keepserving keeps mitmd running)",
             m->cw.map == NULL   ? "server replay: every recorded response has been used"
             : m->rw.map == NULL ? "client replay: every recorded request has been replayed"
                                 : "client and server replay are done");
    master_begin_stop(m);
    return -1;
}

/* master_peer returns peer `i` of the loop: 0..n-1 the running workers, n..2n-1 the
 * workers draining after a reload. */
static struct worker_slot *master_peer(struct master *m, int i)
{
    return i < m->sup.n ? &m->sup.slots[i] : &m->sup.old[i - m->sup.n];
}

/* master_collect fills the batch from the workers whose socket is readable (`readable`,
 * indexed as master_peer): in turn from the round-robin start, at most MASTER_READ_BUDGET
 * datagrams each, skipping a worker whose reply queue is full (it is not reading its
 * replies: reading more of its requests would only grow the queue). The next turn starts
 * after the last worker read from when the batch filled up, else one further. Returns the
 * batch size. */
static size_t master_collect(struct master *m, const bool *readable)
{
    size_t nbatch = 0;
    int n = 2 * m->sup.n, start = n > 0 ? m->rr % n : 0, last = start;

    for (int k = 0; k < n && nbatch < FORGE_SERVICE_BATCH; k++) {
        int i = (start + k) % n;
        struct worker_slot *slot = master_peer(m, i);

        if (!readable[i] || slot->ipc_fd < 0 || forge_service_is_backlogged(&m->fs, slot->peer))
            continue;
        nbatch = master_read_worker(m, slot, nbatch, MASTER_READ_BUDGET);
        last = i;
    }
    m->rr = nbatch >= FORGE_SERVICE_BATCH ? last + 1 : start + 1;
    if (n > 0)
        m->rr %= n;
    return nbatch;
}

/* master_flush_replies sends the certificate replies queued for `slot` (its socket became
 * writable). A socket error is left to the reaper. */
static void master_flush_replies(struct master *m, struct worker_slot *slot)
{
    if (slot->ipc_fd >= 0)
        (void)forge_service_flush(&m->fs, slot->peer, slot->ipc_fd);
}

/* MASTER_UPSTREAM_CA_MAX bounds the --upstream-ca file the master copies for workers. */
#define MASTER_UPSTREAM_CA_MAX (16u << 20)

/* master_worker_user names the user workers run as when the master is root: --user, else
 * SUPERVISE_DEFAULT_USER. */
static const char *master_worker_user(const struct config *cfg)
{
    return cfg->user != NULL && cfg->user[0] != '\0' ? cfg->user : SUPERVISE_DEFAULT_USER;
}

/* master_open_flow_file opens the -w file for the workers (they may run as a user that
 * cannot open it, and may be denied its directory): created 0600 (it holds decrypted
 * cookies and tokens), appended to. Passed to workers as -w /dev/fd/N. Returns 0 or -errno
 * (logged). */
static int master_open_flow_file(struct master *m)
{
    int fd, e;

    if (m->cfg->flow_file == NULL)
        return 0;
    fd = open(m->cfg->flow_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd == -1) {
        e = -errno;
        log_error("-w %s: %s", m->cfg->flow_file, strerror(errno));
        return e;
    }
    e = supervise_pass_fd(&m->sup, fd, "-w");
    if (e)
        log_error("-w %s: cannot pass it to the workers: %s", m->cfg->flow_file, strerror(-e));
    return e;
}

/* master_pass_upstream_ca copies the --upstream-ca file (with the certificates of
 * ssl_verify_upstream_trusted_confdir, master/ca_dir.h) into a sealed memfd that every
 * worker reads as --upstream-ca /dev/fd/N: a worker running as another user, denied the
 * directory by Landlock, still gets exactly the file the master could read. Returns 0 or
 * -errno (logged). */
static int master_pass_upstream_ca(struct master *m)
{
    const char *path = m->cfg->upstream_ca, *stage;
    int mfd, e;

    if (m->cfg->upstream_ca_dir != NULL) { /* the directory's certificates, with the file's */
        char err[PATH_MAX + 256];
        uint8_t *bundle = NULL;
        size_t len = 0;

        e = ca_dir_bundle(path, m->cfg->upstream_ca_dir, &bundle, &len, err, sizeof(err));
        if (e != 0) {
            log_error("%s", err);
            return e;
        }
        mfd = memfd_sealed_bytes("mitmd-upstream-ca", bundle, len);
        free(bundle);
        if (mfd < 0) {
            log_error("ssl_verify_upstream_trusted_confdir: %s", strerror(-mfd));
            return mfd;
        }
        goto pass;
    }
    if (path == NULL)
        return 0;
    mfd = memfd_copy("mitmd-upstream-ca", path, MASTER_UPSTREAM_CA_MAX, &stage);
    if (mfd < 0) {
        if (mfd == -EINVAL && stage == NULL)
            log_error("--upstream-ca %s: not a regular file of at most %u MiB", path,
                      MASTER_UPSTREAM_CA_MAX >> 20);
        else
            log_error("--upstream-ca %s: %s%s%s", path, stage != NULL ? stage : "",
                      stage != NULL ? ": " : "", strerror(-mfd));
        return mfd;
    }
pass:
    e = supervise_pass_fd(&m->sup, mfd, "--upstream-ca"); /* owns mfd now, also on failure */
    if (e)
        log_error("--upstream-ca: cannot pass it to the workers: %s", strerror(-e));
    return e;
}

/* master_pass_proxyauth hands the --proxyauth @FILE to the workers as a sealed copy
 * (proxyauth_file_memfd), read as --proxyauth-file /dev/fd/N. Returns 0 or -errno (logged). */
static int master_pass_proxyauth(struct master *m)
{
    char err[512];
    int fd, e = proxyauth_file_memfd(m->cfg->proxyauth, &fd, err, sizeof(err));

    if (e == 0 && fd != -1 && (e = supervise_pass_fd(&m->sup, fd, "--proxyauth-file")) != 0)
        snprintf(err, sizeof(err), "--proxyauth: cannot pass it to the workers: %s",
                 strerror(-e));
    if (e != 0)
        log_error("%s", err);
    return e;
}

/* master_begin_stop starts the drain: every worker gets SIGTERM (it stops accepting and
 * finishes what it has in flight); the loop goes on, forging for the handshakes still in
 * flight and answering /healthz 503, until they are gone, and SIGKILLs those still running
 * after the shutdown timeout (m->sup.drain_ms) or on a second SIGTERM/SIGINT. */
static void master_begin_stop(struct master *m)
{
    m->sup.stopping = true;
    m->view.state = METRICS_STATE_DRAINING;
    m->stop_deadline_ms = master_now_ms() + m->sup.drain_ms;
    supervise_signal_all(&m->sup, SIGTERM);
    /* new connections are refused from now on, not queued (the workers close theirs too); after
     * an upgrade the new master holds the sockets, so this closes only this one's copies */
    supervise_close_listeners(&m->sup);
}

/* master_running returns how many workers (running and draining) have not exited. */
static int master_running(const struct master *m)
{
    int n = 0;

    for (int i = 0; i < m->sup.n; i++)
        n += (m->sup.slots[i].pid != 0) + (m->sup.old[i].pid != 0);
    return n;
}

/* master_upgrade_start starts the new master of a binary upgrade (SIGUSR2): the binary now
 * at the path this one started from, the same arguments, every listening socket of this
 * master (each --mode's, with its spec) and the metrics listener. This master serves on
 * until the new one is ready (master_upgrade_check). */
static void master_upgrade_start(struct master *m)
{
    struct upgrade_listener ul[UPGRADE_MAX_FDS];
    int e, n = 0;

    if (!m->announced) {
        log_warn("SIGUSR2: not serving yet; upgrade ignored");
        return;
    }
    for (int i = 0; i < m->listen.n_modes; i++)
        for (int k = 0; k < m->listen.addrs[i].n && n < UPGRADE_MAX_FDS; k++) {
            int fd = i == 0 && k == 0 ? m->sup.slots[0].listen_fd
                                      : supervise_shared_fd(&m->sup, config_listen_fd(i, k));

            if (fd < 0) {
                log_warn("SIGUSR2: listener %d.%d is closed; upgrade ignored", i, k);
                return;
            }
            ul[n++] = (struct upgrade_listener){.fd = fd, .mode = i, .addr = k};
        }
    e = upgrade_start(&m->up, m->argv, m->cfg, ul, n, metrics_listen_fd(m->mx));
    if (e == -EBUSY) {
        log_warn("SIGUSR2: an upgrade is in progress (new master pid %d)", (int)m->up.pid);
        return;
    }
    if (e) {
        log_error("SIGUSR2: cannot start %s: %s", m->up.exe, strerror(-e));
        return;
    }
    log_info("SIGUSR2: upgrading: new master %s started, pid %d (%d listening socket%s handed "
             "over)", m->up.exe, (int)m->up.pid, n, n == 1 ? "" : "s");
    (void)sdnotify_send(&m->sd, "STATUS=upgrading: new master pid %d starting", (int)m->up.pid);
}

/* master_upgrade_check follows the new master of an upgrade. Returns true when it serves:
 * this master hands it the service (and the metrics listener) and starts its drain. */
static bool master_upgrade_check(struct master *m)
{
    pid_t pid = m->up.pid;
    int r = upgrade_check(&m->up);

    if (r <= 0)
        return false;
    log_info("upgrade: new master (pid %d) serving; draining this one's workers", (int)pid);
    /* systemd (NotifyAccess=main) now follows the new master */
    (void)sdnotify_send(&m->sd, "MAINPID=%d\nSTATUS=upgraded: new master pid %d", (int)pid,
                        (int)pid);
    metrics_close(m->mx);
    m->mx = NULL;
    m->upgraded = true;
    master_begin_stop(m);
    return true;
}

/* master_handle_signals reads the signalfd. SIGTERM/SIGINT start the drain
 * (master_begin_stop). */
static void master_handle_signals(struct master *m)
{
    struct signalfd_siginfo si;

    while (read(m->sig_fd, &si, sizeof(si)) == sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            supervise_reap(&m->sup);
            break;
        case SIGHUP:
            /* Reload: replace every worker (they re-read nothing from the master but their
             * fresh start clears per-worker caches); listeners are kept, so nothing queued
             * is lost. */
            log_info("SIGHUP: replacing workers");
            m->view.reloads++;
            m->view.state = METRICS_STATE_RELOADING;
            m->reloading = true;
            (void)sdnotify_reloading(&m->sd, "reloading: replacing workers");
            /* reopen -w (log rotation): the new workers append to the file now at the path */
            (void)master_open_flow_file(m);
            {
                char err[256];

                if (supervise_sandbox_prepare(&m->sup, master_worker_user(m->cfg),
                                              m->cfg->confdir, err, sizeof(err)) != 0)
                    log_warn("%s (keeping the previous worker sandbox)", err);
            }
            supervise_replace_all(&m->sup);
            break;
        case SIGUSR1:
            master_want_stats(m);
            break;
        case SIGUSR2:
            master_upgrade_start(m);
            break;
        default:
            if (m->sup.stopping) {
                if (!m->stop_killed) {
                    log_info("%s again: stopping at once", strsignal((int)si.ssi_signo));
                    supervise_signal_all(&m->sup, SIGKILL);
                    m->stop_killed = true;
                }
                break;
            }
            log_info("%s: stopping", strsignal((int)si.ssi_signo));
            (void)sdnotify_send(&m->sd, "STOPPING=1\nSTATUS=draining (%s)",
                                strsignal((int)si.ssi_signo));
            master_begin_stop(m);
        }
    }
}

/* master_forget_dead discards the queued replies of workers that have exited: their
 * successors have new sockets and new request ids. */
static void master_forget_dead(struct master *m)
{
    for (int i = 0; i < 2 * m->sup.n; i++)
        if (master_peer(m, i)->ipc_fd < 0)
            forge_service_forget(&m->fs, master_peer(m, i)->peer);
}

/* master_announce prints "listening on" once every worker has reported ready, so that a
 * client (or a test) that waits for the line finds workers accepting, and a worker that
 * cannot set up stops the master before it claims to listen. */
static void master_announce(struct master *m)
{
    if ((m->announced && !m->reloading) || m->sup.stopping)
        return;
    for (int i = 0; i < m->sup.n; i++)
        if (!m->sup.slots[i].ready)
            return;
    m->view.state = METRICS_STATE_SERVING;
    if (m->announced) {
        /* a reload is over: every successor is ready */
        m->reloading = false;
        (void)sdnotify_send(&m->sd, "READY=1\nSTATUS=serving with %d worker%s (reloaded)",
                            m->sup.n, m->sup.n == 1 ? "" : "s");
        return;
    }
    listen_set_announce(&m->listen, m->cfg, m->sup.n, stderr);
    fflush(stderr);
    m->mx_deferred = false;
    upgrade_tell_ready(&m->up);
    /* after the line: whoever waits for either finds the listener accepting */
    (void)sdnotify_send(&m->sd, "READY=1\nSTATUS=serving on %s with %d worker%s",
                        m->view.listen_addr, m->sup.n, m->sup.n == 1 ? "" : "s");
    m->announced = true;
    m->reloading = false;
}

static void master_loop(struct master *m)
{
    struct pollfd pfd[2 * SUPERVISE_MAX_WORKERS + 1 + METRICS_POLL_MAX + 1];
    int owner[2 * SUPERVISE_MAX_WORKERS + 1];
    bool readable[2 * SUPERVISE_MAX_WORKERS];

    for (;;) {
        int n = 0, due = supervise_due_ms(&m->sup), stats_due = master_stats_due(m);
        int mx_due = metrics_due_ms(m->mx), nmx, up_due = upgrade_due_ms(&m->up), up_idx = -1;
        int rw_due = m->announced ? master_replay_due(m) : -1; /* from the first request on */
        size_t nbatch;

        if (stats_due >= 0 && (due < 0 || stats_due < due))
            due = stats_due;
        if (mx_due >= 0 && (due < 0 || mx_due < due))
            due = mx_due;
        if (up_due >= 0 && (due < 0 || up_due < due))
            due = up_due;
        if (rw_due >= 0 && (due < 0 || rw_due < due))
            due = rw_due;
        if (m->sup.stopping) {
            uint64_t now = master_now_ms();
            int left = m->stop_killed ? 100
                       : now >= m->stop_deadline_ms ? 0
                                                    : (int)(m->stop_deadline_ms - now);

            if (due < 0 || left < due)
                due = left;
        }
        pfd[n].fd = m->sig_fd;
        pfd[n].events = POLLIN;
        owner[n++] = -1;
        for (int i = 0; i < 2 * m->sup.n; i++) {
            const struct worker_slot *slot = master_peer(m, i);

            readable[i] = false;
            if (slot->ipc_fd < 0)
                continue;
            pfd[n].fd = slot->ipc_fd;
            pfd[n].events = 0;
            if (!forge_service_is_backlogged(&m->fs, slot->peer))
                pfd[n].events |= POLLIN;
            if (forge_service_queued(&m->fs, slot->peer) > 0)
                pfd[n].events |= POLLOUT;
            owner[n++] = i;
        }
        nmx = m->mx_deferred ? 0 : metrics_poll_fill(m->mx, pfd + n, METRICS_POLL_MAX);
        if (m->up.pid != 0 && m->up.ready_fd >= 0) {
            up_idx = n + nmx;
            pfd[up_idx].fd = m->up.ready_fd;
            pfd[up_idx].events = POLLIN;
            pfd[up_idx].revents = 0;
        }
        if (poll(pfd, (nfds_t)(n + nmx + (up_idx >= 0)), due) == -1 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            return;
        }
        for (int i = 1; i < n; i++) {
            if (pfd[i].revents & (POLLOUT | POLLERR | POLLHUP))
                master_flush_replies(m, master_peer(m, owner[i]));
            readable[owner[i]] = (pfd[i].revents & POLLIN) != 0;
        }
        nbatch = master_collect(m, readable);
        if (nbatch > 0)
            forge_service_answer(&m->fs, m->batch, nbatch);
        metrics_poll_handle(m->mx, pfd + n, nmx);
        if (m->up.pid != 0 && !m->sup.stopping &&
            ((up_idx >= 0 && pfd[up_idx].revents != 0) || up_due == 0))
            (void)master_upgrade_check(m);
        if (pfd[0].revents & POLLIN)
            master_handle_signals(m);
        if (m->sup.stopping) {
            (void)supervise_reap(&m->sup);
            if (master_running(m) == 0)
                return;
            if (!m->stop_killed && master_now_ms() >= m->stop_deadline_ms) {
                log_warn("workers still running after %u ms: killing them", m->sup.drain_ms);
                supervise_signal_all(&m->sup, SIGKILL);
                m->stop_killed = true;
            }
        }
        master_forget_dead(m);
        if (supervise_has_failed(&m->sup))
            return;
        master_announce(m);
        supervise_retire_due(&m->sup);
        supervise_restart_due(&m->sup);
    }
}

/* master_stop ends the workers still running when the loop ended without draining them
 * (start-up failure, failed worker set-up, poll error; after a SIGTERM the loop drains them
 * itself, master_begin_stop): SIGTERM, then SIGKILL after the shutdown timeout
 * (m->sup.drain_ms), or at once on a second SIGTERM or SIGINT. */
static void master_stop(struct master *m)
{
    struct timespec start, now;
    unsigned grace = m->sup.drain_ms;
    bool killed = false;

    m->sup.stopping = true;
    m->view.state = METRICS_STATE_DRAINING;
    supervise_signal_all(&m->sup, SIGTERM);
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (supervise_reap(&m->sup) > 0) {
        struct pollfd p[1 + METRICS_POLL_MAX] = {{.fd = m->sig_fd, .events = POLLIN}};
        struct signalfd_siginfo si;
        int nmx, wait, mx_due;
        long ms;

        clock_gettime(CLOCK_MONOTONIC, &now);
        ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (ms >= (long)grace && !killed) {
            log_warn("workers still running after %u ms: killing them", grace);
            supervise_signal_all(&m->sup, SIGKILL);
            killed = true;
        }
        /* /healthz answers 503 while the workers drain: balancers move away */
        nmx = metrics_poll_fill(m->mx, p + 1, METRICS_POLL_MAX);
        wait = killed ? 100 : (int)((long)grace - ms);
        mx_due = metrics_due_ms(m->mx);
        if (mx_due >= 0 && mx_due < wait)
            wait = mx_due;
        if (poll(p, (nfds_t)(1 + nmx), wait) <= 0)
            continue;
        metrics_poll_handle(m->mx, p + 1, nmx);
        if (!(p[0].revents & POLLIN))
            continue;
        while (read(m->sig_fd, &si, sizeof(si)) == sizeof(si)) {
            if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && !killed) {
                log_info("%s again: stopping at once", strsignal((int)si.ssi_signo));
                supervise_signal_all(&m->sup, SIGKILL);
                killed = true;
            }
        }
    }
}

/* master_open_listeners opens the listeners (listen.h), or takes over those an old master
 * handed over in a binary upgrade (upgrade.h: every socket of every --mode), and gives every
 * worker slot a descriptor of the first; the others stay in m->listen for
 * listen_set_hand_over. Stores the first listener's port in *port. Returns 0 or -errno with
 * `err` set. */
static int master_open_listeners(struct master *m, int *fds, uint16_t *port, char *err,
                                 size_t errlen)
{
    const struct config *cfg = m->cfg;
    int e;

    if (m->up.n_listen == 0) {
        e = listen_set_open(cfg, &m->listen, cfg->workers, fds, err, errlen);
        *port = m->listen.port[0];
        return e;
    }
    e = listen_set_plan(cfg, &m->listen, err, errlen);
    if (e == 0)
        e = upgrade_take_listeners(&m->up, cfg, &m->listen, err, errlen) == 1 ? 0 : -EINVAL;
    else
        upgrade_close_listeners(&m->up);
    if (e)
        return e;
    *port = m->listen.port[0];
    m->took_over = true;
    log_info("upgrade: serving on the listeners of the previous master (first port %u)",
             (unsigned)*port);
    fds[0] = m->listen.fd[0][0];
    m->listen.fd[0][0] = -1;
    for (int i = 1; i < cfg->workers; i++) {
        fds[i] = fcntl(fds[0], F_DUPFD_CLOEXEC, 0);
        if (fds[i] == -1) {
            e = -errno;
            snprintf(err, errlen, "cannot duplicate the listener: %s", strerror(errno));
            listen_close_all(fds, i);
            listen_set_close(&m->listen);
            return e;
        }
    }
    return 0;
}

static int master_signals_open(void)
{
    sigset_t set;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
        return -errno;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int master_run(const struct config *cfg, int argc, char **argv)
{
    struct master *m;
    int listen_fds[SUPERVISE_MAX_WORKERS];
    const uint8_t *key_der;
    const char *why = NULL;
    size_t key_len = 0, ca_len = 0;
    uint8_t ticket_key[MSG_TICKET_KEY_LEN];
    int reader_fd = -1, board_fd = -1;
    struct board_slot *board = NULL;
    const uint8_t *ca_der;
    char err[512];
    ssize_t hl;
    uint16_t port = 0;
    int status = 1, e;

    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        log_error("out of memory");
        return 1;
    }
    m->cfg = cfg;
    m->sig_fd = -1;
    m->argv = argv;
    e = upgrade_init(&m->up, err, sizeof(err));
    if (e) {
        log_error("%s", err);
        free(m);
        return 1;
    }
    (void)sdnotify_open(&m->sd);
    {
        struct timespec now;

        clock_gettime(CLOCK_REALTIME, &now);
        m->view.start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    }
    /* No core dump, no ptrace by a same-uid process, no /proc/<pid>/mem: the master holds
     * the CA key (issue 10 item 2). */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
        log_warn("cannot make the master non-dumpable: %s", strerror(errno));
    m->batch = calloc(FORGE_SERVICE_BATCH, sizeof(*m->batch));
    if (m->batch == NULL) {
        log_error("out of memory");
        goto out_free;
    }
    if (cfg->workers > SUPERVISE_MAX_WORKERS) {
        log_error("--workers: at most %d", SUPERVISE_MAX_WORKERS);
        goto out_free;
    }
    e = ca_load_or_create(cfg->confdir, &m->ca, err, sizeof(err));
    if (e) {
        log_error("%s", err);
        goto out_free;
    }
    fprintf(stderr, "mitmd: CA certificate: %s\n", ca_cert_path(m->ca));
    fprintf(stderr, "mitmd: %s CA; trust it in clients: curl --cacert %s, or copy it to "
                    "/usr/local/share/ca-certificates/mitmd.crt and run update-ca-certificates\n",
            ca_was_created(m->ca) ? "created a new" : "using the existing", ca_cert_path(m->ca));
    m->forge = forge_new(m->ca, &why);
    if (m->forge == NULL) {
        log_error("cannot prepare forging: %s", why != NULL ? why : "out of memory");
        goto out_free_ca;
    }
    ca_der = ca_cert_der(m->ca, &ca_len);
    key_der = forge_leaf_key_der(m->forge, &key_len);
    randombytes_buf(ticket_key, sizeof(ticket_key));
    hl = msgcodec_encode_hello(m->hello, sizeof(m->hello), 0, ca_der, ca_len, key_der, key_len,
                               ticket_key);
    sodium_memzero(ticket_key, sizeof(ticket_key));
    if (hl < 0) {
        log_error("cannot encode the worker hello: %s", strerror((int)-hl));
        goto out_free_forge;
    }
    m->hello_len = (size_t)hl;
    e = certcache_create((size_t)cfg->cert_cache_mb << 20, &m->cache, &why);
    if (e) {
        log_error("cannot create the certificate cache (%d MiB): %s: %s", cfg->cert_cache_mb,
                  why != NULL ? why : "error", strerror(-e));
        goto out_free_forge;
    }
    /* Workers get a read-only file description: they cannot map the cache writable. */
    e = certcache_open_reader_fd(m->cache, &reader_fd);
    if (e) {
        log_error("cannot open a read-only certificate cache descriptor: %s", strerror(-e));
        goto out_close_cache;
    }
    if (forge_service_init(&m->fs, m->forge, m->cache) != 0) {
        log_error("out of memory");
        goto out_close_reader;
    }
    e = board_create(cfg->workers, &board_fd, &board);
    if (e) {
        log_error("cannot create the accept board: %s", strerror(-e));
        goto out_close_reader;
    }
    e = master_open_listeners(m, listen_fds, &port, err, sizeof(err));
    if (e) {
        log_error("%s", err);
        goto out_close_board;
    }
    m->sig_fd = master_signals_open();
    if (m->sig_fd < 0) {
        log_error("signalfd: %s", strerror(errno));
        listen_close_all(listen_fds, cfg->workers);
        listen_set_close(&m->listen);
        goto out_close_board;
    }
    supervise_init(&m->sup, cfg->workers, listen_fds, reader_fd, board_fd, board, argc, argv,
                   m->hello, m->hello_len);
    if (listen_set_hand_over(&m->listen, &m->sup) != 0)
        goto out_stop;
    m->view.sup = &m->sup;
    m->view.fs = &m->fs;
    m->view.cache = m->cache;
    m->view.mode = mode_spec_kind_name(cfg->proxy_mode.kind);
    for (int i = 0; i < m->listen.n_modes; i++)
        metrics_view_add_listener(&m->view, m->listen.addrs[i].ss, m->listen.addrs[i].n,
                                  m->listen.port[i], mode_spec_kind_name(cfg->modes[i].kind));
    snprintf(m->view.listen_addr, sizeof(m->view.listen_addr), "%s%s%s:%u",
             strchr(cfg->listen_host, ':') ? "[" : "", cfg->listen_host,
             strchr(cfg->listen_host, ':') ? "]" : "", (unsigned)port);
    if (m->up.metrics_fd >= 0 || cfg->metrics_listen != NULL) {
        char addr[128];

        if (m->up.metrics_fd >= 0) {
            /* a binary upgrade: the old master serves the endpoint until this one is ready */
            e = metrics_adopt(m->up.metrics_fd, &m->view, &m->mx, err, sizeof(err));
            m->up.metrics_fd = -1;
            m->mx_deferred = true;
        } else {
            e = metrics_open(cfg->metrics_listen, &m->view, &m->mx, err, sizeof(err));
        }
        if (e) {
            log_error("%s", err);
            goto out_stop;
        }
        metrics_address(m->mx, addr, sizeof(addr));
        fprintf(stderr, "mitmd: metrics on http://%s/metrics and /healthz\n", addr);
    }
    if (cfg->shutdown_timeout_s > 0)
        m->sup.drain_ms = (unsigned)cfg->shutdown_timeout_s * 1000u;
    if (master_open_flow_file(m) != 0 || master_pass_upstream_ca(m) != 0 ||
        har_file_start(&m->sup, cfg) != 0 || replay_load_start(&m->sup, cfg, &m->rw) != 0 ||
        creplay_load_start(&m->sup, cfg, m->took_over, &m->cw) != 0 ||
        certs_pass_open(&m->sup, cfg) != 0 || master_pass_proxyauth(m) != 0)
        goto out_stop;
    e = supervise_sandbox_prepare(&m->sup, master_worker_user(cfg), cfg->confdir, err,
                                  sizeof(err));
    if (e) {
        log_error("%s", err);
        goto out_stop;
    }
    for (int i = 0; i < cfg->workers; i++)
        if (supervise_start(&m->sup, &m->sup.slots[i]) != 0)
            goto out_stop;
    master_loop(m);
    status = supervise_has_failed(&m->sup) ? 1 : 0;
out_stop:
    master_stop(m);
    replay_watch_close(&m->rw);
    creplay_watch_close(&m->cw);
    har_file_stop(cfg);
    master_log_stats(m);
    metrics_close(m->mx);
    supervise_dispose(&m->sup);
    close(m->sig_fd);
out_close_board:
    board_unmap(board, cfg->workers);
    if (board_fd >= 0)
        close(board_fd);
out_close_reader:
    forge_service_dispose(&m->fs);
    close(reader_fd);
out_close_cache:
    certcache_close(m->cache);
out_free_forge:
    forge_free(m->forge);
out_free_ca:
    ca_free(m->ca);
out_free:
    sdnotify_close(&m->sd);
    free(m->batch);
    free(m);
    return status;
}
