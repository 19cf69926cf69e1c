/* supervise.h - worker processes: start with fork+exec, reap, restart with backoff, stop.
 * Owns the worker slots (pid, master end of the socketpair, listener, restart state).
 * Called by the master loop only. A worker never inherits master memory: the child execs
 * /proc/self/exe at once, with only fds 0-2 and 3 (socket), 4 (listener), 5 (certcache),
 * 6 (accept board), and from 7 on the files the master opened for it (supervise_pass_fd).
 * Between fork and exec the child is confined (supervise_sandbox_prepare): another user
 * when the master is root, no_new_privs, and a Landlock ruleset that denies the confdir. */
#ifndef MITMD_MASTER_SUPERVISE_H
#define MITMD_MASTER_SUPERVISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "shared/board.h"
#include "shared/msg.h"

#define SUPERVISE_MAX_WORKERS 256
#define SUPERVISE_FD_FIRST_PASSED 7 /* first fd number of the files passed with _pass_fd */
#define SUPERVISE_MAX_PASSED 8
#define SUPERVISE_MAX_SHARED 128 /* sockets every worker gets at fixed numbers (listeners) */
#define SUPERVISE_DEFAULT_USER "nobody"
#define SUPERVISE_DRAIN_MS_DEFAULT 30000 /* --shutdown-timeout's default */
#define SUPERVISE_READY_WAIT_MS 5000     /* reload: longest wait for a successor's READY */

/* struct supervise_sandbox is what confines a worker, prepared once by the master. */
struct supervise_sandbox {
    bool drop;          /* switch to uid/gid in the child (the master runs as root) */
    uid_t uid;
    gid_t gid;
    char user[64];
    int landlock_fd;    /* ruleset that denies the confdir; -1: none (no kernel support) */
};

struct worker_slot {
    int id;
    int peer;               /* key of its reply queue in forge_service: id, or
                             * SUPERVISE_MAX_WORKERS + id for a retiring worker */
    pid_t pid;              /* 0 when not running */
    int ipc_fd;             /* master end of the socketpair, -1 when not running */
    int listen_fd;          /* this slot's listener, kept across restarts */
    unsigned failures;      /* consecutive early deaths, for backoff */
    struct timespec started;
    struct timespec restart_at; /* valid when pid == 0 and the slot should run */
    struct msg_stats stats; /* latest STATS from this worker */
    uint64_t stats_seq;     /* STATS messages received from this worker */
    uint64_t restarts;
    bool ready;             /* the worker reported its set-up done (READY, STATS, CERT_REQ) */
    bool replacing;         /* told to exit by a reload: its exit is planned, not a failure */
    unsigned setup_failures; /* consecutive exits before ready */
    struct timespec term_at;  /* retiring: when to send SIGTERM (the successor is ready or
                               * SUPERVISE_READY_WAIT_MS passed) */
    struct timespec kill_at;  /* retiring, after SIGTERM: SIGKILL if still running */
    bool termed;              /* retiring: SIGTERM sent */
};

struct supervise {
    struct worker_slot slots[SUPERVISE_MAX_WORKERS];
    /* old[i]: the worker slot i had before a reload, draining while its successor serves
     * (pid 0 when none). Its socket stays open: it may still need certificates for the
     * handshakes it is finishing, and its last STATS count. */
    struct worker_slot old[SUPERVISE_MAX_WORKERS];
    struct msg_stats totals; /* counters of every worker that has exited (not ACTIVE) */
    struct {
        uint64_t accepted, flows;
    } id_totals[SUPERVISE_MAX_WORKERS]; /* the same per worker id (metrics: per-worker load) */
    unsigned drain_ms;       /* reload and stop: SIGKILL this long after SIGTERM */
    int n;
    int cache_fd;           /* certcache memfd handed to every worker */
    int board_fd;           /* accept board memfd (shared/board.h) handed to every worker */
    struct board_slot *board; /* the master's mapping: a dead worker's slot is cleared */
    int argc;
    char **argv;            /* the master's argv, passed to workers after --worker ID */
    const uint8_t *hello;   /* HELLO datagram sent to every new worker (borrowed) */
    size_t hello_len;
    struct supervise_sandbox sb;
    int n_passed;
    int passed_fd[SUPERVISE_MAX_PASSED];    /* owned; at fd SUPERVISE_FD_FIRST_PASSED + i */
    char passed_opt[SUPERVISE_MAX_PASSED][32]; /* the option naming it, e.g. "-w" */
    char passed_arg[SUPERVISE_MAX_PASSED][24]; /* "/dev/fd/N" */
    int n_shared;
    int shared_fd[SUPERVISE_MAX_SHARED]; /* owned; at fd shared_at[i] in every worker */
    int shared_at[SUPERVISE_MAX_SHARED];
    bool stopping;
    bool failed;            /* a worker failed its set-up SUPERVISE_SETUP_FAILURES times */
};

/* SUPERVISE_SETUP_FAILURES consecutive exits before READY stop the master (issue 15: a
 * worker that cannot set up, e.g. an unreadable --upstream-ca, would only restart-loop). */
#define SUPERVISE_SETUP_FAILURES 2

/* supervise_init prepares `n` slots with the given listeners (borrowed until
 * supervise_dispose, which closes them) and accept board (borrowed). Never fails. */
void supervise_init(struct supervise *s, int n, const int *listen_fds, int cache_fd,
                    int board_fd, struct board_slot *board, int argc, char **argv,
                    const uint8_t *hello, size_t hello_len);

/* supervise_pass_fd hands `fd` (ownership moves to `s`, also on failure) to every worker
 * started from now on, at fd SUPERVISE_FD_FIRST_PASSED + k, with `opt /dev/fd/N` appended
 * to its arguments (so the worker's own option parsing, last value wins, points it at the
 * descriptor: the worker may not be allowed to open the path itself). Passing the same
 * `opt` again replaces the descriptor (e.g. SIGHUP reopens -w). Returns 0, -ENOSPC
 * (SUPERVISE_MAX_PASSED) or -EINVAL. */
int supervise_pass_fd(struct supervise *s, int fd, const char *opt);

/* supervise_share_fd hands `fd` (ownership moves to `s`, also on failure) to every worker
 * started from now on at descriptor number `at` (from SUPERVISE_FD_FIRST_PASSED +
 * SUPERVISE_MAX_PASSED up, below 1024; master/listen.c puts the listeners beyond the first
 * there). Returns 0, -ENOSPC (SUPERVISE_MAX_SHARED) or -EINVAL (a bad or taken number). */
int supervise_share_fd(struct supervise *s, int fd, int at);

/* supervise_shared_fd returns the master's descriptor of what every worker gets at `at`
 * (supervise_share_fd), or -1. */
int supervise_shared_fd(const struct supervise *s, int at);

/* supervise_close_listeners closes the master's descriptors of every listening socket (the
 * first listener's, one per slot, and the shared ones). Called when a stop begins: once the
 * draining workers have closed theirs too, the kernel refuses new connections (a balancer
 * retries them elsewhere at once) instead of queueing them on a listener nobody accepts
 * from. No worker can be started afterwards. */
void supervise_close_listeners(struct supervise *s);

/* supervise_sandbox_prepare prepares the confinement of every worker: when the master runs
 * as root, the worker switches to `user` (NULL: SUPERVISE_DEFAULT_USER; resolved now, root
 * refused); in any case a Landlock ruleset is built that allows the whole file system except
 * `confdir` (the CA key), where the kernel has Landlock (otherwise logged once and skipped).
 * Files created later next to the confdir or its ancestors are not reachable by workers
 * started before the next call: the master calls it again on SIGHUP (a failure then keeps
 * the previous ruleset). Start-up and reload only (allocates, may block). Returns 0, or
 * -errno with `err` set. */
int supervise_sandbox_prepare(struct supervise *s, const char *user, const char *confdir,
                              char *err, size_t errlen);

/* supervise_start starts the worker of `slot`: socketpair, fork, exec; the HELLO is queued
 * on the socket before the worker reads it. Returns 0 or -errno (logged; the caller retries
 * later through the restart schedule). */
int supervise_start(struct supervise *s, struct worker_slot *slot);

/* supervise_reap collects every exited child without blocking, logs each death with its
 * cause and schedules a restart with exponential backoff (unless stopping). Returns the
 * number of workers still running. */
int supervise_reap(struct supervise *s);

/* supervise_mark_ready records that `slot`'s worker finished its set-up (first READY,
 * STATS or CERT_REQ), which resets its count of set-up failures. */
void supervise_mark_ready(struct supervise *s, struct worker_slot *slot);

/* supervise_has_failed is true once a worker has exited before ready
 * SUPERVISE_SETUP_FAILURES times in a row (logged once): the master should stop, exit 1. */
bool supervise_has_failed(const struct supervise *s);

/* supervise_replace_all replaces every running worker (SIGHUP) without a gap: its successor
 * starts at once on the same listener, and the old worker (moved to s->old) is sent SIGTERM
 * (it stops accepting and drains) once the successor is ready or SUPERVISE_READY_WAIT_MS
 * passed, and SIGKILL after s->drain_ms more. Its exit is logged as info. A worker whose
 * predecessor is still draining is replaced the old way (SIGTERM, then restart). */
void supervise_replace_all(struct supervise *s);

/* supervise_retire_due sends the SIGTERMs and SIGKILLs of supervise_replace_all that are due.
 * The master loop calls it every turn (supervise_due_ms accounts for them). */
void supervise_retire_due(struct supervise *s);

/* supervise_sum_stats adds up the counters of every worker that has run: the totals of the
 * exited ones, the latest STATS of the running and draining ones. Gauges (ACTIVE) count
 * running and draining workers only. Counters never go backwards across worker exits. */
void supervise_sum_stats(const struct supervise *s, struct msg_stats *out);

/* supervise_due_ms returns the milliseconds until the next scheduled restart, or -1. */
int supervise_due_ms(const struct supervise *s);

/* supervise_restart_due starts every worker whose restart time has come. */
void supervise_restart_due(struct supervise *s);

/* supervise_signal_all sends `sig` to every running and draining worker. */
void supervise_signal_all(struct supervise *s, int sig);

/* supervise_dispose closes every socket, listener, passed file and the Landlock ruleset.
 * Workers must be gone already. */
void supervise_dispose(struct supervise *s);

#endif
