/* upgrade.h - zero-downtime binary upgrade (SIGUSR2, as nginx): the running master forks and
 * execs the binary now at its start-up path with the same arguments, handing over its
 * listening sockets (MITMD_LISTEN_FDS), its metrics listener (MITMD_METRICS_FD) and a pipe
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

#define UPGRADE_ENV_LISTEN "MITMD_LISTEN_FDS"
#define UPGRADE_ENV_METRICS "MITMD_METRICS_FD"
#define UPGRADE_ENV_READY "MITMD_UPGRADE_FD"
#define UPGRADE_READY_WAIT_MS 30000 /* the new master must be serving within this */
#define UPGRADE_MAX_FDS 16

struct upgrade {
    /* old side: the new master being started */
    pid_t pid;            /* 0: no upgrade in progress */
    int ready_fd;         /* read end of the readiness pipe, -1 */
    uint64_t deadline_ms; /* CLOCK_MONOTONIC ms */
    char exe[PATH_MAX];   /* the binary's path at start-up ("" if unknown) */
    /* new side: what the old master handed over (read and removed from the environment by
     * upgrade_init) */
    int listen_fds[UPGRADE_MAX_FDS];
    int n_listen;    /* 0: started normally */
    int metrics_fd;  /* -1: none */
    int tell_fd;     /* write end: "ready" goes there once; -1 */
    char env[3][48]; /* scratch for the child's environment */
};

/* upgrade_init records the binary's path and takes over what an old master handed to this
 * one through the environment (the variables are then removed, so workers never see them).
 * Returns 0, or -EINVAL with `err` set when a variable is malformed. */
int upgrade_init(struct upgrade *u, char *err, size_t errlen);

/* upgrade_take_listener returns the inherited listener `i` (checked to be a listening
 * socket, made close-on-exec) with its port in *port, or -1 when there is none: the
 * caller opens its own. Returns -EINVAL with `err` set when the descriptor is not a
 * listening TCP socket. */
int upgrade_take_listener(struct upgrade *u, int i, uint16_t *port, char *err, size_t errlen);

/* upgrade_start forks and execs the new master (u->exe with `argv`), handing it `listen_fd`
 * and `metrics_fd` (-1: none). Returns 0 (u->pid and u->ready_fd set), -EBUSY when an
 * upgrade is in progress, or -errno (logged). Allocates the child's environment
 * temporarily. */
int upgrade_start(struct upgrade *u, char **argv, int listen_fd, int metrics_fd);

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
