/* supervise.c - see supervise.h. */
#include "master/supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/log.h"

#define SUPERVISE_BACKOFF_MIN_MS 100
#define SUPERVISE_BACKOFF_MAX_MS 5000
#define SUPERVISE_STABLE_S 10 /* a worker that lived this long resets the backoff */

/* Fixed fd numbers a worker finds its resources at (the worker's contract). */
enum { SUPERVISE_FD_IPC = 3, SUPERVISE_FD_LISTEN = 4, SUPERVISE_FD_CACHE = 5, SUPERVISE_FD_BOARD = 6 };

static void supervise_now(struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
}

static int64_t supervise_ms_between(const struct timespec *a, const struct timespec *b)
{
    return (int64_t)(b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

void supervise_init(struct supervise *s, int n, const int *listen_fds, int cache_fd,
                    int board_fd, struct board_slot *board, int argc, char **argv,
                    const uint8_t *hello, size_t hello_len)
{
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->cache_fd = cache_fd;
    s->board_fd = board_fd;
    s->board = board;
    s->argc = argc;
    s->argv = argv;
    s->hello = hello;
    s->hello_len = hello_len;
    for (int i = 0; i < n; i++) {
        s->slots[i].id = i;
        s->slots[i].ipc_fd = -1;
        s->slots[i].listen_fd = listen_fds[i];
    }
}

/* supervise_child_fd moves `fd` to number `want` without close-on-exec. Async-signal-safe. */
static int supervise_child_fd(int fd, int want)
{
    if (fd == want)
        return fcntl(fd, F_SETFD, 0);
    return dup2(fd, want) == -1 ? -1 : 0;
}

/* supervise_exec runs in the forked child: only async-signal-safe calls until execv. */
static void supervise_exec(struct supervise *s, struct worker_slot *slot, int child_end,
                           pid_t parent, char **args)
{
    sigset_t none;
    int fds[4] = {child_end, slot->listen_fd, s->cache_fd, s->board_fd};
    int tmp[4];

    /* A worker ends when the master does, however the master ends. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != parent)
        _exit(127);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Two steps so that a source fd that happens to sit on 3..6 is not clobbered. */
    for (int i = 0; i < 4; i++) {
        tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
        if (tmp[i] == -1)
            _exit(127);
    }
    if (supervise_child_fd(tmp[0], SUPERVISE_FD_IPC) == -1 ||
        supervise_child_fd(tmp[1], SUPERVISE_FD_LISTEN) == -1 ||
        supervise_child_fd(tmp[2], SUPERVISE_FD_CACHE) == -1 ||
        supervise_child_fd(tmp[3], SUPERVISE_FD_BOARD) == -1)
        _exit(127);
    execv("/proc/self/exe", args);
    _exit(127);
}

int supervise_start(struct supervise *s, struct worker_slot *slot)
{
    char idbuf[16];
    char **args;
    int sv[2], err;
    pid_t pid, parent = getpid();

    /* args: argv[0] --worker ID argv[1..] NULL */
    args = calloc((size_t)s->argc + 3, sizeof(*args));
    if (args == NULL)
        return -ENOMEM;
    snprintf(idbuf, sizeof(idbuf), "%d", slot->id);
    args[0] = s->argv[0];
    args[1] = "--worker";
    args[2] = idbuf;
    for (int i = 1; i < s->argc; i++)
        args[i + 2] = s->argv[i];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
        err = -errno;
        log_error("worker %d: socketpair: %s", slot->id, strerror(errno));
        goto out_free_args;
    }
    /* Queue the HELLO before the worker exists: it reads it first thing. */
    if (send(sv[0], s->hello, s->hello_len, MSG_NOSIGNAL) != (ssize_t)s->hello_len) {
        err = -errno;
        log_error("worker %d: cannot queue hello: %s", slot->id, strerror(errno));
        goto out_close_pair;
    }
    pid = fork();
    if (pid == -1) {
        err = -errno;
        log_error("worker %d: fork: %s", slot->id, strerror(errno));
        goto out_close_pair;
    }
    if (pid == 0)
        supervise_exec(s, slot, sv[1], parent, args);
    close(sv[1]);
    if (fcntl(sv[0], F_SETFL, O_NONBLOCK) == -1)
        log_warn("worker %d: cannot make socket non-blocking: %s", slot->id, strerror(errno));
    slot->pid = pid;
    slot->ipc_fd = sv[0];
    slot->ready = false;
    slot->replacing = false;
    memset(&slot->stats, 0, sizeof(slot->stats));
    supervise_now(&slot->started);
    free(args);
    log_debug("worker %d started, pid %d", slot->id, (int)pid);
    return 0;
out_close_pair:
    close(sv[0]);
    close(sv[1]);
out_free_args:
    free(args);
    return err;
}

static struct worker_slot *supervise_find(struct supervise *s, pid_t pid)
{
    for (int i = 0; i < s->n; i++)
        if (s->slots[i].pid == pid)
            return &s->slots[i];
    return NULL;
}

int supervise_reap(struct supervise *s)
{
    int status, running = 0;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct worker_slot *slot = supervise_find(s, pid);
        struct timespec now;
        char cause[64];
        unsigned backoff;

        if (slot == NULL)
            continue;
        if (WIFSIGNALED(status))
            snprintf(cause, sizeof(cause), "killed by signal %d (%s)", WTERMSIG(status),
                     strsignal(WTERMSIG(status)));
        else
            snprintf(cause, sizeof(cause), "exited with status %d", WEXITSTATUS(status));
        close(slot->ipc_fd);
        slot->ipc_fd = -1;
        slot->pid = 0;
        /* Its connections died with it: siblings must not defer to a stale count. */
        board_set_alive(s->board, slot->id, false);
        if (s->stopping) {
            log_debug("worker %d (pid %d) %s", slot->id, (int)pid, cause);
            continue;
        }
        supervise_now(&now);
        if (slot->replacing) {
            /* a planned replacement (reload): not a failure, no backoff */
            log_info("worker %d (pid %d) replaced (%s)", slot->id, (int)pid, cause);
            slot->replacing = false;
            slot->restarts++;
            slot->restart_at = now;
            continue;
        }
        if (!slot->ready && ++slot->setup_failures >= SUPERVISE_SETUP_FAILURES) {
            log_error("worker %d (pid %d) %s before it was ready, %u times in a row: "
                      "stopping (the worker's own error above says why)",
                      slot->id, (int)pid, cause, slot->setup_failures);
            s->failed = true;
            continue;
        }
        if (supervise_ms_between(&slot->started, &now) >= SUPERVISE_STABLE_S * 1000)
            slot->failures = 0;
        backoff = SUPERVISE_BACKOFF_MIN_MS << (slot->failures < 6 ? slot->failures : 6);
        if (backoff > SUPERVISE_BACKOFF_MAX_MS)
            backoff = SUPERVISE_BACKOFF_MAX_MS;
        slot->failures++;
        slot->restarts++;
        slot->restart_at = now;
        slot->restart_at.tv_sec += backoff / 1000;
        slot->restart_at.tv_nsec += (long)(backoff % 1000) * 1000000;
        if (slot->restart_at.tv_nsec >= 1000000000) {
            slot->restart_at.tv_sec++;
            slot->restart_at.tv_nsec -= 1000000000;
        }
        log_error("worker %d (pid %d) %s; restarting in %u ms", slot->id, (int)pid, cause,
                  backoff);
    }
    for (int i = 0; i < s->n; i++)
        running += s->slots[i].pid != 0;
    return running;
}

void supervise_mark_ready(struct supervise *s, struct worker_slot *slot)
{
    (void)s;
    if (slot->ready)
        return;
    slot->ready = true;
    slot->setup_failures = 0;
    log_debug("worker %d (pid %d) ready", slot->id, (int)slot->pid);
}

bool supervise_has_failed(const struct supervise *s)
{
    return s->failed;
}

void supervise_replace_all(struct supervise *s)
{
    for (int i = 0; i < s->n; i++) {
        struct worker_slot *slot = &s->slots[i];

        slot->failures = 0;
        if (slot->pid > 0) {
            slot->replacing = true;
            kill(slot->pid, SIGTERM);
        }
    }
}

int supervise_due_ms(const struct supervise *s)
{
    struct timespec now;
    int64_t best = -1;

    if (s->stopping || s->failed)
        return -1;
    supervise_now(&now);
    for (int i = 0; i < s->n; i++) {
        const struct worker_slot *slot = &s->slots[i];
        int64_t ms;

        if (slot->pid != 0)
            continue;
        ms = supervise_ms_between(&now, &slot->restart_at);
        if (ms < 0)
            ms = 0;
        if (best == -1 || ms < best)
            best = ms;
    }
    return (int)best;
}

void supervise_restart_due(struct supervise *s)
{
    struct timespec now;

    if (s->stopping || s->failed)
        return;
    supervise_now(&now);
    for (int i = 0; i < s->n; i++) {
        struct worker_slot *slot = &s->slots[i];

        if (slot->pid == 0 && supervise_ms_between(&now, &slot->restart_at) <= 0 &&
            supervise_start(s, slot) != 0) {
            slot->restart_at = now;
            slot->restart_at.tv_sec += 1;
        }
    }
}

void supervise_signal_all(struct supervise *s, int sig)
{
    for (int i = 0; i < s->n; i++)
        if (s->slots[i].pid > 0)
            kill(s->slots[i].pid, sig);
}

void supervise_dispose(struct supervise *s)
{
    for (int i = 0; i < s->n; i++) {
        if (s->slots[i].ipc_fd >= 0)
            close(s->slots[i].ipc_fd);
        s->slots[i].ipc_fd = -1;
        if (s->slots[i].listen_fd >= 0)
            close(s->slots[i].listen_fd);
        s->slots[i].listen_fd = -1;
    }
}
