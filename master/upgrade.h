/* upgrade.h - zero-downtime binary upgrade (SIGUSR2, as nginx): the running master forks and
 * execs the binary now at its start-up path with the same arguments, handing over its
 * listening sockets (MITMD_LISTEN_FDS: every socket of every --mode, with the specs in
 * MITMD_LISTEN_SPECS), its metrics listener (MITMD_METRICS_FD) and a pipe
 * (MITMD_UPGRADE_FD) on which the new master says it is ready; then the old master drains
 * its workers and exits. The new master loads the CA from the same confdir. Owns that
 * hand-over on both sides. Called by master.c only; never blocks. */
#ifndef MITMD_MASTER_UPGRADE_H
#define MITMD_MASTER_UPGRADE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/config.h"

struct listen_set;

#define UPGRADE_ENV_LISTEN "MITMD_LISTEN_FDS"  /* "FD:MODE.ADDR,..." (or one bare "FD") */
#define UPGRADE_ENV_SPECS "MITMD_LISTEN_SPECS" /* the --mode specs, hex, "," between */
#define UPGRADE_ENV_METRICS "MITMD_METRICS_FD"
#define UPGRADE_ENV_READY "MITMD_UPGRADE_FD"
#define UPGRADE_READY_WAIT_MS 30000 /* the new master must be serving within this */
#define UPGRADE_MAX_FDS (CONFIG_MAX_MODES * CONFIG_MODE_MAX_ADDRS)

/* struct upgrade_listener is one listening socket handed over: address `addr` (in the order
 * the listen host resolved to) of mode `mode` (--mode order). */
struct upgrade_listener {
    int fd;
    int mode, addr;
};

struct upgrade {
    /* old side: the new master being started */
    pid_t pid;            /* 0: no upgrade in progress */
    int ready_fd;         /* read end of the readiness pipe, -1 */
    uint64_t deadline_ms; /* CLOCK_MONOTONIC ms */
    char exe[PATH_MAX];   /* the binary's path at start-up ("" if unknown) */
    /* new side: what the old master handed over (read and removed from the environment by
     * upgrade_init) */
    struct upgrade_listener listen[UPGRADE_MAX_FDS];
    int n_listen;    /* 0: started normally */
    int n_specs;     /* -1: the old master sent no specs (one listener, an older mitmd) */
    char specs[CONFIG_MAX_MODES][MODE_SPEC_FULL_MAX + 1]; /* its --mode specs, in order */
    int metrics_fd;  /* -1: none */
    int tell_fd;     /* write end: "ready" goes there once; -1 */
    char env[2][48]; /* scratch for the child's environment */
};

/* upgrade_init records the binary's path and takes over what an old master handed to this
 * one through the environment (the variables are then removed, so workers never see them).
 * Returns 0, or -EINVAL with `err` set when a variable is malformed. */
int upgrade_init(struct upgrade *u, char *err, size_t errlen);

/* upgrade_take_listeners gives `ls` (planned by listen_set_plan for `cfg`: every fd -1) the
 * listening sockets the old master handed over, each at the mode and address it served
 * (ls->port[] set from the sockets). Returns 1 when it did, 0 when nothing was handed over
 * (the caller opens its own), or -EINVAL with `err` set when they do not fit `cfg` (another
 * set of --mode specs or addresses, or not listening TCP sockets): then every inherited
 * socket is closed. */
int upgrade_take_listeners(struct upgrade *u, const struct config *cfg, struct listen_set *ls,
                           char *err, size_t errlen);

/* upgrade_close_listeners closes the inherited listening sockets not taken yet. */
void upgrade_close_listeners(struct upgrade *u);

/* upgrade_start forks and execs the new master (u->exe with `argv`), handing it the `n`
 * listening sockets `ls` of the configuration `cfg` (every socket of every --mode, with the
 * specs) and `metrics_fd` (-1: none). Returns 0 (u->pid and u->ready_fd set), -EBUSY when
 * an upgrade is in progress, or -errno (logged). Allocates the child's environment
 * temporarily. */
int upgrade_start(struct upgrade *u, char **argv, const struct config *cfg,
                  const struct upgrade_listener *ls, int n, int metrics_fd);

/* upgrade_check reads the readiness pipe (call when it is readable, or at the deadline).
 * Returns 1 when the new master is ready (the upgrade is over for this side), -1 when it
 * failed (exited, or not ready by the deadline: then it is sent SIGTERM), 0 while pending. */
int upgrade_check(struct upgrade *u);

/* upgrade_due_ms returns the milliseconds until the readiness deadline, or -1. */
int upgrade_due_ms(const struct upgrade *u);

/* upgrade_tell_ready tells the old master (if this master replaced one) that this one
 * serves. Once. */
void upgrade_tell_ready(struct upgrade *u);

#endif
