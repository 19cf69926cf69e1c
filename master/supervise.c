/* supervise.c - see supervise.h. */
#include "master/supervise.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/landlock.h>

#include "shared/log.h"
#include "shared/msgcodec.h"
#include "shared/stats.h"

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
    s->sb.landlock_fd = -1;
    s->drain_ms = SUPERVISE_DRAIN_MS_DEFAULT;
    for (int i = 0; i < n; i++) {
        s->old[i].id = i;
        s->old[i].peer = SUPERVISE_MAX_WORKERS + i;
        s->old[i].ipc_fd = -1;
        s->old[i].listen_fd = -1;
        s->slots[i].peer = i;
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

/* supervise_child_fail reports why a worker could not be started and ends the child (exit
 * 127). Async-signal-safe. */
static void supervise_child_fail(const char *what)
{
    static const char pre[] = "mitmd: cannot start a worker: ";

    (void)!write(STDERR_FILENO, pre, sizeof(pre) - 1);
    (void)!write(STDERR_FILENO, what, strlen(what));
    (void)!write(STDERR_FILENO, "\n", 1);
    _exit(127);
}

/* supervise_confine drops the child's privileges in the order that leaves no way back:
 * supplementary groups, group, user (each checked), then no_new_privs and the Landlock
 * ruleset. Runs in the forked child; async-signal-safe. */
static void supervise_confine(const struct supervise *s, pid_t parent)
{
    const struct supervise_sandbox *sb = &s->sb;

    if (sb->drop) {
        if (setgroups(0, NULL) == -1)
            supervise_child_fail("setgroups failed");
        if (setgid(sb->gid) == -1 || getgid() != sb->gid || getegid() != sb->gid)
            supervise_child_fail("setgid failed");
        if (setuid(sb->uid) == -1 || getuid() != sb->uid || geteuid() != sb->uid)
            supervise_child_fail("setuid failed");
        if (setuid(0) != -1)
            supervise_child_fail("could regain root after setuid");
        /* a credential change clears the parent-death signal: set it again */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != parent)
            _exit(127);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
        supervise_child_fail("PR_SET_NO_NEW_PRIVS failed");
    if (sb->landlock_fd >= 0 && syscall(SYS_landlock_restrict_self, sb->landlock_fd, 0) == -1)
        supervise_child_fail("landlock_restrict_self failed");
}

/* supervise_exec runs in the forked child: only async-signal-safe calls until execv. */
static void supervise_exec(struct supervise *s, struct worker_slot *slot, int child_end,
                           pid_t parent, char **args)
{
    sigset_t none;
    int fds[4 + SUPERVISE_MAX_PASSED + SUPERVISE_MAX_SHARED] = {child_end, slot->listen_fd,
                                                                s->cache_fd, s->board_fd};
    int tmp[4 + SUPERVISE_MAX_PASSED + SUPERVISE_MAX_SHARED];
    int nfds = 4 + s->n_passed + s->n_shared, tmp_min = 10 + SUPERVISE_MAX_PASSED;

    /* A worker ends when the master does, however the master ends. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != parent)
        _exit(127);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int i = 0; i < s->n_passed; i++)
        fds[4 + i] = s->passed_fd[i];
    for (int i = 0; i < s->n_shared; i++) {
        fds[4 + s->n_passed + i] = s->shared_fd[i];
        if (s->shared_at[i] >= tmp_min)
            tmp_min = s->shared_at[i] + 1;
    }
    /* The Landlock ruleset may sit on one of the fixed numbers below (7 + k with files
     * passed, or a shared listener's number): move it above all of them first, or a dup2
     * replaces it and confining fails. */
    if (s->sb.landlock_fd >= 0 &&
        (s->sb.landlock_fd = fcntl(s->sb.landlock_fd, F_DUPFD_CLOEXEC, tmp_min)) == -1)
        _exit(127);
    /* Two steps so that a source fd that happens to sit on 3..N is not clobbered. */
    for (int i = 0; i < nfds; i++) {
        tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, tmp_min);
        if (tmp[i] == -1)
            _exit(127);
    }
    if (supervise_child_fd(tmp[0], SUPERVISE_FD_IPC) == -1 ||
        supervise_child_fd(tmp[1], SUPERVISE_FD_LISTEN) == -1 ||
        supervise_child_fd(tmp[2], SUPERVISE_FD_CACHE) == -1 ||
        supervise_child_fd(tmp[3], SUPERVISE_FD_BOARD) == -1)
        _exit(127);
    for (int i = 0; i < s->n_passed; i++)
        if (supervise_child_fd(tmp[4 + i], SUPERVISE_FD_FIRST_PASSED + i) == -1)
            _exit(127);
    for (int i = 0; i < s->n_shared; i++)
        if (supervise_child_fd(tmp[4 + s->n_passed + i], s->shared_at[i]) == -1)
            _exit(127);
    supervise_confine(s, parent);
    execv("/proc/self/exe", args);
    supervise_child_fail("execv /proc/self/exe failed");
}

int supervise_pass_fd(struct supervise *s, int fd, const char *opt)
{
    int k;

    if (fd < 0 || opt == NULL || strlen(opt) >= sizeof(s->passed_opt[0])) {
        if (fd >= 0)
            close(fd);
        return -EINVAL;
    }
    for (k = 0; k < s->n_passed; k++)
        if (strcmp(s->passed_opt[k], opt) == 0)
            break;
    if (k == SUPERVISE_MAX_PASSED) {
        close(fd);
        return -ENOSPC;
    }
    if (k < s->n_passed)
        close(s->passed_fd[k]);
    else
        s->n_passed++;
    s->passed_fd[k] = fd;
    snprintf(s->passed_opt[k], sizeof(s->passed_opt[k]), "%s", opt);
    snprintf(s->passed_arg[k], sizeof(s->passed_arg[k]), "/dev/fd/%d",
             SUPERVISE_FD_FIRST_PASSED + k);
    return 0;
}

int supervise_share_fd(struct supervise *s, int fd, int at)
{
    bool taken = at < SUPERVISE_FD_FIRST_PASSED + SUPERVISE_MAX_PASSED || at >= 1024;

    for (int k = 0; k < s->n_shared && !taken; k++)
        taken = s->shared_at[k] == at;
    if (fd < 0 || taken || s->n_shared == SUPERVISE_MAX_SHARED) {
        if (fd >= 0)
            close(fd);
        return fd >= 0 && !taken ? -ENOSPC : -EINVAL;
    }
    s->shared_fd[s->n_shared] = fd;
    s->shared_at[s->n_shared++] = at;
    return 0;
}

/* Landlock (ABI 1) file-system rights: all of them are handled, so that only the rules below
 * grant any. Directories get all of them, other files those that apply to files. */
#define SUPERVISE_LL_DIR_RIGHTS ((uint64_t)(LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1)
#define SUPERVISE_LL_FILE_RIGHTS                                                                   \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE)
#define SUPERVISE_LL_MAX_RULES 20000 /* entries next to the confdir and its ancestors */

/* supervise_ll_allow adds a rule allowing everything beneath `name` (in directory `dfd`) to
 * `ruleset`. Symbolic links get no rule (their targets are covered where they are). Returns
 * 0 (also when the entry vanished) or -errno. */
static int supervise_ll_allow(int ruleset, int dfd, const char *name)
{
    struct landlock_path_beneath_attr pb = {0};
    struct stat st;
    int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), err = 0;

    if (fd == -1)
        return errno == ENOENT ? 0 : -errno;
    if (fstat(fd, &st) == -1) {
        err = -errno;
    } else if (!S_ISLNK(st.st_mode)) {
        pb.allowed_access = S_ISDIR(st.st_mode) ? SUPERVISE_LL_DIR_RIGHTS
                                                : SUPERVISE_LL_FILE_RIGHTS;
        pb.parent_fd = fd;
        if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) == -1)
            err = -errno;
    }
    close(fd);
    return err;
}

/* supervise_ll_build creates a Landlock ruleset that allows the whole file system but
 * `confdir` (Landlock only allows): for each ancestor of the confdir, every entry but the
 * next one down gets a rule. Returns the ruleset fd, -EOPNOTSUPP without Landlock, or
 * another -errno with `*why` set. */
static int supervise_ll_build(const char *confdir, const char **why)
{
    struct landlock_ruleset_attr attr = {.handled_access_fs = SUPERVISE_LL_DIR_RIGHTS};
    char real[PATH_MAX], cur[PATH_MAX] = "/";
    char *comp, *save = NULL;
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    int ruleset, err = 0, rules = 0;

    if (abi < 1) {
        *why = "the kernel has no Landlock";
        return -EOPNOTSUPP;
    }
    if (realpath(confdir, real) == NULL) {
        *why = "cannot resolve the confdir";
        return -errno;
    }
    if (strcmp(real, "/") == 0) {
        *why = "the confdir is the root directory";
        return -EINVAL;
    }
    ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (ruleset == -1) {
        *why = "landlock_create_ruleset failed";
        return -errno;
    }
    for (comp = strtok_r(real + 1, "/", &save); comp != NULL && err == 0;
         comp = strtok_r(NULL, "/", &save)) {
        int dfd = open(cur, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = dfd == -1 ? NULL : fdopendir(dfd);
        struct dirent *de;

        if (d == NULL) {
            err = -errno;
            *why = "cannot list an ancestor of the confdir";
            if (dfd != -1)
                close(dfd);
            break;
        }
        while (err == 0 && (de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                strcmp(de->d_name, comp) == 0)
                continue;
            if (++rules > SUPERVISE_LL_MAX_RULES) {
                err = -E2BIG;
                *why = "too many files next to the confdir's ancestors";
                break;
            }
            err = supervise_ll_allow(ruleset, dirfd(d), de->d_name);
            if (err)
                *why = "landlock_add_rule failed";
        }
        closedir(d);
        if (strlen(cur) + strlen(comp) + 2 > sizeof(cur)) {
            err = -ENAMETOOLONG;
            *why = "confdir path too long";
            break;
        }
        if (strcmp(cur, "/") != 0)
            strcat(cur, "/");
        strcat(cur, comp);
    }
    if (err) {
        close(ruleset);
        return err;
    }
    return ruleset;
}

int supervise_sandbox_prepare(struct supervise *s, const char *user, const char *confdir,
                              char *err, size_t errlen)
{
    struct supervise_sandbox *sb = &s->sb;
    const char *why = NULL;
    int fd;

    if (user == NULL || user[0] == '\0')
        user = SUPERVISE_DEFAULT_USER;
    snprintf(sb->user, sizeof(sb->user), "%s", user);
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam(user);

        if (pw == NULL) {
            snprintf(err, errlen, "--user %s: no such user (workers must not run as root)",
                     user);
            return -ENOENT;
        }
        if (pw->pw_uid == 0) {
            snprintf(err, errlen, "--user %s: is root; workers must run unprivileged", user);
            return -EPERM;
        }
        sb->drop = true;
        sb->uid = pw->pw_uid;
        sb->gid = pw->pw_gid;
    }
    fd = supervise_ll_build(confdir, &why);
    if (sb->landlock_fd >= 0 && fd >= 0) {
        close(sb->landlock_fd); /* rebuilt (SIGHUP): the new one sees files created since */
        sb->landlock_fd = -1;
    }
    if (fd == -EOPNOTSUPP) {
        log_info("workers are not confined by Landlock: %s", why);
    } else if (fd < 0) {
        snprintf(err, errlen, "cannot prepare the Landlock ruleset for %s: %s: %s", confdir, why,
                 strerror(-fd));
        return fd;
    } else {
        sb->landlock_fd = fd;
    }
    if (sb->drop)
        log_debug("workers run as %s (uid %d, gid %d)%s", sb->user, (int)sb->uid, (int)sb->gid,
                  sb->landlock_fd >= 0 ? ", denied the confdir by Landlock" : "");
    return 0;
}

int supervise_start(struct supervise *s, struct worker_slot *slot)
{
    char idbuf[16];
    char **args;
    int sv[2], err;
    pid_t pid, parent = getpid();

    /* args: argv[0] --worker ID argv[1..] (OPT /dev/fd/N)... NULL, the passed files before a
     * "--" if there is one, so that they are parsed as options and win as the last value */
    args = calloc((size_t)s->argc + 3 + 2 * SUPERVISE_MAX_PASSED, sizeof(*args));
    if (args == NULL)
        return -ENOMEM;
    snprintf(idbuf, sizeof(idbuf), "%d", slot->id);
    args[0] = s->argv[0];
    args[1] = "--worker";
    args[2] = idbuf;
    {
        int n = 3, i;

        for (i = 1; i < s->argc && strcmp(s->argv[i], "--") != 0; i++)
            args[n++] = s->argv[i];
        for (int k = 0; k < s->n_passed; k++) {
            args[n++] = s->passed_opt[k];
            args[n++] = s->passed_arg[k];
        }
        for (; i < s->argc; i++)
            args[n++] = s->argv[i];
    }
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
    for (int i = 0; i < s->n; i++) {
        if (s->slots[i].pid == pid)
            return &s->slots[i];
        if (s->old[i].pid == pid)
            return &s->old[i];
    }
    return NULL;
}

static bool supervise_is_old(const struct supervise *s, const struct worker_slot *slot)
{
    return slot >= s->old && slot < s->old + SUPERVISE_MAX_WORKERS;
}

/* supervise_last_stats reads what an exited worker left on its socket (it sends its final
 * STATS as it exits) and adds its counters to the totals, so that they never go back. */
static void supervise_last_stats(struct supervise *s, struct worker_slot *slot)
{
    static uint8_t buf[MSG_MAX_SIZE];
    ssize_t n;

    while ((n = recv(slot->ipc_fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        struct msg_hdr h;
        struct msg_stats st;
        const char *why = NULL;

        if (msgcodec_decode_hdr(buf, (size_t)n, &h, &why) == 0 && h.type == MSG_STATS &&
            msgcodec_decode_stats(buf, (size_t)n, &st, &why) == 0)
            slot->stats = st;
    }
    stats_add(&s->totals, &slot->stats, 0);
    s->id_totals[slot->id].accepted += slot->stats.v[MSG_STAT_ACCEPTED];
    s->id_totals[slot->id].flows += slot->stats.v[MSG_STAT_FLOWS];
    memset(&slot->stats, 0, sizeof(slot->stats));
}

static void supervise_add_ms(struct timespec *ts, unsigned ms)
{
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
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
        supervise_last_stats(s, slot);
        close(slot->ipc_fd);
        slot->ipc_fd = -1;
        slot->pid = 0;
        if (supervise_is_old(s, slot)) {
            /* drained after a reload; its successor owns the board slot */
            log_info("worker %d (pid %d) replaced (%s)", slot->id, (int)pid, cause);
            continue;
        }
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
        running += (s->slots[i].pid != 0) + (s->old[i].pid != 0);
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
    struct timespec now;

    supervise_now(&now);
    for (int i = 0; i < s->n; i++) {
        struct worker_slot *slot = &s->slots[i], *old = &s->old[i];

        slot->failures = 0;
        if (slot->pid <= 0)
            continue;
        if (old->pid != 0) {
            /* the previous one still drains: no third process, replace the old way */
            slot->replacing = true;
            kill(slot->pid, SIGTERM);
            continue;
        }
        /* the running worker becomes the old one; a successor starts at once */
        *old = *slot;
        old->peer = SUPERVISE_MAX_WORKERS + i;
        old->listen_fd = -1;
        old->termed = false;
        old->replacing = false;
        old->term_at = now;
        supervise_add_ms(&old->term_at, SUPERVISE_READY_WAIT_MS);
        slot->pid = 0;
        slot->ipc_fd = -1;
        slot->ready = false;
        memset(&slot->stats, 0, sizeof(slot->stats));
        slot->restarts++;
        slot->restart_at = now;
        if (supervise_start(s, slot) != 0)
            supervise_add_ms(&slot->restart_at, 1000);
    }
}

void supervise_retire_due(struct supervise *s)
{
    struct timespec now;

    supervise_now(&now);
    for (int i = 0; i < s->n; i++) {
        struct worker_slot *old = &s->old[i];

        if (old->pid == 0)
            continue;
        if (!old->termed && (s->slots[i].ready || s->stopping ||
                             supervise_ms_between(&now, &old->term_at) <= 0)) {
            log_debug("worker %d (pid %d): successor %s; draining", i, (int)old->pid,
                      s->slots[i].ready ? "ready" : "not ready in time");
            kill(old->pid, SIGTERM);
            old->termed = true;
            old->kill_at = now;
            supervise_add_ms(&old->kill_at, s->drain_ms);
        } else if (old->termed && supervise_ms_between(&now, &old->kill_at) <= 0) {
            log_warn("worker %d (pid %d) still draining after %u ms: killing it", i,
                     (int)old->pid, s->drain_ms);
            kill(old->pid, SIGKILL);
            old->kill_at.tv_sec += 3600; /* once */
        }
    }
}

void supervise_sum_stats(const struct supervise *s, struct msg_stats *out)
{
    *out = s->totals;
    for (int i = 0; i < s->n; i++) {
        stats_add(out, &s->slots[i].stats, 1);
        stats_add(out, &s->old[i].stats, 1);
    }
}

int supervise_due_ms(const struct supervise *s)
{
    struct timespec now;
    int64_t best = -1;

    supervise_now(&now);
    for (int i = 0; i < s->n; i++) {
        const struct worker_slot *old = &s->old[i];
        int64_t ms;

        if (old->pid == 0)
            continue;
        if (!old->termed)
            ms = s->slots[i].ready ? 0 : supervise_ms_between(&now, &old->term_at);
        else
            ms = supervise_ms_between(&now, &old->kill_at);
        if (ms < 0)
            ms = 0;
        if (best == -1 || ms < best)
            best = ms;
    }
    if (s->stopping || s->failed)
        return (int)best;
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
    for (int i = 0; i < s->n; i++) {
        if (s->slots[i].pid > 0)
            kill(s->slots[i].pid, sig);
        if (s->old[i].pid > 0)
            kill(s->old[i].pid, sig);
    }
}

int supervise_shared_fd(const struct supervise *s, int at)
{
    for (int k = 0; k < s->n_shared; k++)
        if (s->shared_at[k] == at)
            return s->shared_fd[k];
    return -1;
}

void supervise_close_listeners(struct supervise *s)
{
    for (int k = 0; k < s->n_shared; k++)
        close(s->shared_fd[k]);
    s->n_shared = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->slots[i].listen_fd >= 0)
            close(s->slots[i].listen_fd);
        s->slots[i].listen_fd = -1;
    }
}

void supervise_dispose(struct supervise *s)
{
    for (int k = 0; k < s->n_passed; k++)
        close(s->passed_fd[k]);
    s->n_passed = 0;
    for (int k = 0; k < s->n_shared; k++)
        close(s->shared_fd[k]);
    s->n_shared = 0;
    if (s->sb.landlock_fd >= 0)
        close(s->sb.landlock_fd);
    s->sb.landlock_fd = -1;
    for (int i = 0; i < s->n; i++) {
        if (s->old[i].ipc_fd >= 0)
            close(s->old[i].ipc_fd);
        s->old[i].ipc_fd = -1;
        if (s->slots[i].ipc_fd >= 0)
            close(s->slots[i].ipc_fd);
        s->slots[i].ipc_fd = -1;
        if (s->slots[i].listen_fd >= 0)
            close(s->slots[i].listen_fd);
        s->slots[i].listen_fd = -1;
    }
}
