/* upgrade.c - see upgrade.h. */
#include "master/upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "shared/log.h"

extern char **environ;

static uint64_t upgrade_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* upgrade_parse_fd parses a descriptor number (3..INT_MAX) of `s`. Returns it or -1. */
static int upgrade_parse_fd(const char *s, const char **end)
{
    char *e;
    long v;

    errno = 0;
    v = strtol(s, &e, 10);
    if (e == s || errno != 0 || v < 3 || v > INT_MAX)
        return -1;
    *end = e;
    return (int)v;
}

int upgrade_init(struct upgrade *u, char *err, size_t errlen)
{
    const char *v, *end;
    ssize_t n;

    memset(u, 0, sizeof(*u));
    u->ready_fd = u->metrics_fd = u->tell_fd = -1;
    n = readlink("/proc/self/exe", u->exe, sizeof(u->exe) - 1);
    u->exe[n > 0 ? n : 0] = '\0';
    v = getenv(UPGRADE_ENV_LISTEN);
    if (v != NULL) {
        for (;;) {
            int fd = upgrade_parse_fd(v, &end);

            if (fd < 0 || u->n_listen == UPGRADE_MAX_FDS || (*end != ',' && *end != '\0'))
                goto out_bad;
            u->listen_fds[u->n_listen++] = fd;
            if (*end == '\0')
                break;
            v = end + 1;
        }
    }
    v = getenv(UPGRADE_ENV_METRICS);
    if (v != NULL && ((u->metrics_fd = upgrade_parse_fd(v, &end)) < 0 || *end != '\0'))
        goto out_bad;
    v = getenv(UPGRADE_ENV_READY);
    if (v != NULL && ((u->tell_fd = upgrade_parse_fd(v, &end)) < 0 || *end != '\0'))
        goto out_bad;
    if (u->metrics_fd >= 0)
        (void)fcntl(u->metrics_fd, F_SETFD, FD_CLOEXEC);
    if (u->tell_fd >= 0)
        (void)fcntl(u->tell_fd, F_SETFD, FD_CLOEXEC);
    unsetenv(UPGRADE_ENV_LISTEN);
    unsetenv(UPGRADE_ENV_METRICS);
    unsetenv(UPGRADE_ENV_READY);
    return 0;
out_bad:
    snprintf(err, errlen,
             "malformed %s, %s or %s in the environment (set by mitmd for a binary "
             "upgrade only)",
             UPGRADE_ENV_LISTEN, UPGRADE_ENV_METRICS, UPGRADE_ENV_READY);
    return -EINVAL;
}

int upgrade_take_listener(struct upgrade *u, int i, uint16_t *port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss), il;
    int fd, acc = 0;

    if (i >= u->n_listen)
        return -1;
    fd = u->listen_fds[i];
    il = sizeof(acc);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &il) == -1 || acc != 1 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) == -1 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
        snprintf(err, errlen, "%s: descriptor %d is not a listening TCP socket", UPGRADE_ENV_LISTEN,
                 fd);
        return -EINVAL;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                          : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

/* upgrade_is_ours returns whether the environment entry `e` is one of upgrade's variables. */
static bool upgrade_is_ours(const char *e)
{
    static const char *const names[] = {UPGRADE_ENV_LISTEN, UPGRADE_ENV_METRICS,
                                        UPGRADE_ENV_READY};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = strlen(names[i]);

        if (strncmp(e, names[i], n) == 0 && e[n] == '=')
            return true;
    }
    return false;
}

int upgrade_start(struct upgrade *u, char **argv, int listen_fd, int metrics_fd)
{
    int pfd[2], n = 0, e;
    char **envp;
    sigset_t none;
    pid_t pid;

    if (u->pid != 0)
        return -EBUSY;
    if (u->exe[0] == '\0')
        return -ENOENT;
    for (char **p = environ; *p != NULL; p++)
        n++;
    envp = calloc((size_t)n + 4, sizeof(*envp));
    if (envp == NULL)
        return -ENOMEM;
    if (pipe2(pfd, O_CLOEXEC) == -1) {
        e = -errno;
        free(envp);
        return e;
    }
    (void)fcntl(pfd[0], F_SETFL, O_NONBLOCK); /* upgrade_check reads at the deadline too */
    n = 0;
    for (char **p = environ; *p != NULL; p++)
        if (!upgrade_is_ours(*p))
            envp[n++] = *p;
    snprintf(u->env[0], sizeof(u->env[0]), "%s=%d", UPGRADE_ENV_LISTEN, listen_fd);
    snprintf(u->env[1], sizeof(u->env[1]), "%s=%d", UPGRADE_ENV_READY, pfd[1]);
    envp[n++] = u->env[0];
    envp[n++] = u->env[1];
    if (metrics_fd >= 0) {
        snprintf(u->env[2], sizeof(u->env[2]), "%s=%d", UPGRADE_ENV_METRICS, metrics_fd);
        envp[n++] = u->env[2];
    }
    sigemptyset(&none);
    pid = fork();
    if (pid == 0) {
        /* the child: async-signal-safe calls only until execve */
        if (fcntl(listen_fd, F_SETFD, 0) == -1 || fcntl(pfd[1], F_SETFD, 0) == -1 ||
            (metrics_fd >= 0 && fcntl(metrics_fd, F_SETFD, 0) == -1))
            _exit(127);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(u->exe, argv, envp);
        _exit(127);
    }
    e = pid == -1 ? -errno : 0;
    free(envp);
    close(pfd[1]);
    if (e) {
        close(pfd[0]);
        return e;
    }
    u->pid = pid;
    u->ready_fd = pfd[0];
    u->deadline_ms = upgrade_now_ms() + UPGRADE_READY_WAIT_MS;
    return 0;
}

int upgrade_check(struct upgrade *u)
{
    char c;
    ssize_t n;
    int res;

    if (u->pid == 0)
        return 0;
    n = read(u->ready_fd, &c, 1);
    if (n == 1 && c == 'R') {
        res = 1;
    } else if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
        log_warn("upgrade: the new master (pid %d) exited before it was ready; this master "
                 "keeps serving",
                 (int)u->pid);
        res = -1;
    } else if (upgrade_now_ms() >= u->deadline_ms) {
        log_warn("upgrade: the new master (pid %d) not ready within %d s: stopping it, this "
                 "master keeps serving",
                 (int)u->pid, UPGRADE_READY_WAIT_MS / 1000);
        kill(u->pid, SIGTERM);
        res = -1;
    } else {
        return 0;
    }
    close(u->ready_fd);
    u->ready_fd = -1;
    if (res < 0)
        u->pid = 0; /* reaped by the master's SIGCHLD handling (an unknown child) */
    return res;
}

int upgrade_due_ms(const struct upgrade *u)
{
    uint64_t now;

    if (u->pid == 0 || u->ready_fd < 0)
        return -1;
    now = upgrade_now_ms();
    return u->deadline_ms <= now ? 0 : (int)(u->deadline_ms - now);
}

void upgrade_tell_ready(struct upgrade *u)
{
    if (u->tell_fd < 0)
        return;
    (void)!write(u->tell_fd, "R", 1);
    close(u->tell_fd);
    u->tell_fd = -1;
}
