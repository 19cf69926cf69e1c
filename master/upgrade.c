/* upgrade.c - see upgrade.h. */
#include "master/upgrade.h"

#include <ctype.h>
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

#include "master/listen.h"
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

/* upgrade_unhex decodes the hex of `s` up to `end` into out (cap bytes, NUL-terminated).
 * Returns 0 or -1. */
static int upgrade_unhex(const char *s, const char *end, char *out, size_t cap)
{
    size_t n = (size_t)(end - s), j = 0;

    if (n % 2 != 0 || n / 2 >= cap)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        char b[3] = {s[i], s[i + 1], '\0'};
        char *e;
        long v = strtol(b, &e, 16);

        if (*e != '\0' || v <= 0 || !isxdigit((unsigned char)b[0]))
            return -1;
        out[j++] = (char)v;
    }
    out[j] = '\0';
    return 0;
}

/* upgrade_parse_listen parses MITMD_LISTEN_FDS: "FD:MODE.ADDR" entries separated by ",", or
 * one bare "FD" (mode 0, address 0: what an older mitmd hands over). Returns 0 or -1. */
static int upgrade_parse_listen(struct upgrade *u, const char *v)
{
    const char *end;

    for (;;) {
        struct upgrade_listener *l;
        int fd = upgrade_parse_fd(v, &end);

        if (fd < 0 || u->n_listen == UPGRADE_MAX_FDS)
            return -1;
        l = &u->listen[u->n_listen++];
        l->fd = fd;
        l->mode = l->addr = 0;
        if (*end == ':') {
            char *e1, *e2;
            long mode = strtol(end + 1, &e1, 10), addr;

            if (e1 == end + 1 || *e1 != '.' || mode < 0 || mode >= CONFIG_MAX_MODES)
                return -1;
            addr = strtol(e1 + 1, &e2, 10);
            if (e2 == e1 + 1 || addr < 0 || addr >= CONFIG_MODE_MAX_ADDRS)
                return -1;
            l->mode = (int)mode;
            l->addr = (int)addr;
            end = e2;
        } else if (u->n_listen > 1 || *end != '\0') {
            return -1;
        }
        if (*end == '\0')
            return 0;
        if (*end != ',')
            return -1;
        v = end + 1;
    }
}

/* upgrade_parse_specs parses MITMD_LISTEN_SPECS (hex specs separated by ","). 0 or -1. */
static int upgrade_parse_specs(struct upgrade *u, const char *v)
{
    u->n_specs = 0;
    for (;;) {
        const char *end = strchr(v, ',');

        if (end == NULL)
            end = v + strlen(v);
        if (u->n_specs == CONFIG_MAX_MODES ||
            upgrade_unhex(v, end, u->specs[u->n_specs], sizeof(u->specs[0])) != 0)
            return -1;
        u->n_specs++;
        if (*end == '\0')
            return 0;
        v = end + 1;
    }
}

int upgrade_init(struct upgrade *u, char *err, size_t errlen)
{
    const char *v, *end;
    ssize_t n;

    memset(u, 0, sizeof(*u));
    u->ready_fd = u->metrics_fd = u->tell_fd = -1;
    u->n_specs = -1;
    n = readlink("/proc/self/exe", u->exe, sizeof(u->exe) - 1);
    u->exe[n > 0 ? n : 0] = '\0';
    v = getenv(UPGRADE_ENV_LISTEN);
    if (v != NULL && upgrade_parse_listen(u, v) != 0)
        goto out_bad;
    v = getenv(UPGRADE_ENV_SPECS);
    if (v != NULL && upgrade_parse_specs(u, v) != 0)
        goto out_bad;
    v = getenv(UPGRADE_ENV_METRICS);
    if (v != NULL && ((u->metrics_fd = upgrade_parse_fd(v, &end)) < 0 || *end != '\0'))
        goto out_bad;
    v = getenv(UPGRADE_ENV_READY);
    if (v != NULL && ((u->tell_fd = upgrade_parse_fd(v, &end)) < 0 || *end != '\0'))
        goto out_bad;
    for (int i = 0; i < u->n_listen; i++)
        (void)fcntl(u->listen[i].fd, F_SETFD, FD_CLOEXEC);
    if (u->metrics_fd >= 0)
        (void)fcntl(u->metrics_fd, F_SETFD, FD_CLOEXEC);
    if (u->tell_fd >= 0)
        (void)fcntl(u->tell_fd, F_SETFD, FD_CLOEXEC);
    unsetenv(UPGRADE_ENV_LISTEN);
    unsetenv(UPGRADE_ENV_SPECS);
    unsetenv(UPGRADE_ENV_METRICS);
    unsetenv(UPGRADE_ENV_READY);
    return 0;
out_bad:
    u->n_listen = 0;
    snprintf(err, errlen,
             "malformed %s, %s, %s or %s in the environment (set by mitmd for a binary "
             "upgrade only)",
             UPGRADE_ENV_LISTEN, UPGRADE_ENV_SPECS, UPGRADE_ENV_METRICS, UPGRADE_ENV_READY);
    return -EINVAL;
}

void upgrade_close_listeners(struct upgrade *u)
{
    for (int i = 0; i < u->n_listen; i++)
        if (u->listen[i].fd >= 0)
            close(u->listen[i].fd);
    u->n_listen = 0;
}

/* upgrade_same_addr returns whether `a` (a socket's address) is `b` (a planned one): the
 * family and address, and the port unless `b`'s is 0 (any). */
static bool upgrade_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

        return x->sin_addr.s_addr == y->sin_addr.s_addr &&
               (y->sin_port == 0 || x->sin_port == y->sin_port);
    }
    {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

        return memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 &&
               (y->sin6_port == 0 || x->sin6_port == y->sin6_port);
    }
}

int upgrade_take_listeners(struct upgrade *u, const struct config *cfg, struct listen_set *ls,
                           char *err, size_t errlen)
{
    int planned = 0;

    if (u->n_listen == 0)
        return 0;
    for (int i = 0; i < ls->n_modes; i++)
        planned += ls->addrs[i].n;
    if (u->n_specs >= 0) {
        bool same = u->n_specs == cfg->n_modes;

        for (int i = 0; same && i < cfg->n_modes; i++)
            same = strcmp(u->specs[i], cfg->modes[i].full_spec) == 0;
        if (!same) {
            snprintf(err, errlen, "upgrade: the previous master served %d --mode listener%s "
                     "(%s%s), this configuration has %d (%s%s): an upgrade keeps the listeners; "
                     "restart to change them", u->n_specs, u->n_specs == 1 ? "" : "s",
                     u->n_specs > 0 ? u->specs[0] : "", u->n_specs > 1 ? ", ..." : "",
                     cfg->n_modes, cfg->modes[0].full_spec, cfg->n_modes > 1 ? ", ..." : "");
            goto out_bad;
        }
    }
    if (u->n_listen != planned) {
        snprintf(err, errlen, "upgrade: the previous master handed over %d listening socket%s; "
                 "this configuration has %d", u->n_listen, u->n_listen == 1 ? "" : "s", planned);
        goto out_bad;
    }
    for (int j = 0; j < u->n_listen; j++) {
        struct upgrade_listener *l = &u->listen[j];
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss), il;
        int acc = 0;
        uint16_t port;

        il = sizeof(acc);
        if (getsockopt(l->fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &il) == -1 || acc != 1 ||
            getsockname(l->fd, (struct sockaddr *)&ss, &sl) == -1 ||
            (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
            snprintf(err, errlen, "%s: descriptor %d is not a listening TCP socket",
                     UPGRADE_ENV_LISTEN, l->fd);
            goto out_bad;
        }
        if (l->mode >= ls->n_modes || l->addr >= ls->addrs[l->mode].n ||
            ls->fd[l->mode][l->addr] >= 0 ||
            !upgrade_same_addr(&ss, &ls->addrs[l->mode].ss[l->addr])) {
            snprintf(err, errlen, "upgrade: listening socket %d.%d of the previous master is "
                     "not on an address of this configuration: restart to change them",
                     l->mode, l->addr);
            goto out_bad;
        }
        port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                             : ((struct sockaddr_in6 *)&ss)->sin6_port);
        ls->port[l->mode] = port;
        ls->fd[l->mode][l->addr] = l->fd;
    }
    u->n_listen = 0; /* all in `ls` now */
    return 1;
out_bad:
    for (int i = 0; i < CONFIG_MAX_MODES; i++)
        for (int k = 0; k < CONFIG_MODE_MAX_ADDRS; k++)
            ls->fd[i][k] = -1; /* the same descriptors: closed once, below */
    upgrade_close_listeners(u);
    return -EINVAL;
}

/* upgrade_is_ours returns whether the environment entry `e` is one of upgrade's variables. */
static bool upgrade_is_ours(const char *e)
{
    static const char *const names[] = {UPGRADE_ENV_LISTEN, UPGRADE_ENV_SPECS,
                                        UPGRADE_ENV_METRICS, UPGRADE_ENV_READY};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = strlen(names[i]);

        if (strncmp(e, names[i], n) == 0 && e[n] == '=')
            return true;
    }
    return false;
}

/* upgrade_listen_env builds "MITMD_LISTEN_FDS=..." and "MITMD_LISTEN_SPECS=..." for `ls`
 * (`n`) and `cfg`'s specs. Returns 0 (both allocated) or -ENOMEM. */
static int upgrade_listen_env(const struct config *cfg, const struct upgrade_listener *ls, int n,
                              char **fds_env, char **specs_env)
{
    size_t cap = sizeof(UPGRADE_ENV_LISTEN) + 1 + (size_t)n * 32, used;
    char *p = malloc(cap), *q;

    if (p == NULL)
        return -ENOMEM;
    used = (size_t)snprintf(p, cap, "%s=", UPGRADE_ENV_LISTEN);
    for (int i = 0; i < n; i++)
        used += (size_t)snprintf(p + used, cap - used, "%s%d:%d.%d", i > 0 ? "," : "",
                                 ls[i].fd, ls[i].mode, ls[i].addr);
    cap = sizeof(UPGRADE_ENV_SPECS) + 1;
    for (int i = 0; i < cfg->n_modes; i++)
        cap += 2 * strlen(cfg->modes[i].full_spec) + 1;
    q = malloc(cap);
    if (q == NULL) {
        free(p);
        return -ENOMEM;
    }
    used = (size_t)snprintf(q, cap, "%s=", UPGRADE_ENV_SPECS);
    for (int i = 0; i < cfg->n_modes; i++) {
        if (i > 0)
            q[used++] = ',';
        for (const char *c = cfg->modes[i].full_spec; *c != '\0'; c++)
            used += (size_t)snprintf(q + used, cap - used, "%02x", (unsigned char)*c);
    }
    q[used] = '\0';
    *fds_env = p;
    *specs_env = q;
    return 0;
}

int upgrade_start(struct upgrade *u, char **argv, const struct config *cfg,
                  const struct upgrade_listener *ls, int n, int metrics_fd)
{
    int pfd[2], k = 0, e;
    char **envp, *fds_env = NULL, *specs_env = NULL;
    sigset_t none;
    pid_t pid;

    if (u->pid != 0)
        return -EBUSY;
    if (u->exe[0] == '\0')
        return -ENOENT;
    for (char **p = environ; *p != NULL; p++)
        k++;
    envp = calloc((size_t)k + 5, sizeof(*envp));
    if (envp == NULL || upgrade_listen_env(cfg, ls, n, &fds_env, &specs_env) != 0) {
        free(envp);
        return -ENOMEM;
    }
    if (pipe2(pfd, O_CLOEXEC) == -1) {
        e = -errno;
        goto out;
    }
    (void)fcntl(pfd[0], F_SETFL, O_NONBLOCK); /* upgrade_check reads at the deadline too */
    k = 0;
    for (char **p = environ; *p != NULL; p++)
        if (!upgrade_is_ours(*p))
            envp[k++] = *p;
    snprintf(u->env[0], sizeof(u->env[0]), "%s=%d", UPGRADE_ENV_READY, pfd[1]);
    envp[k++] = fds_env;
    envp[k++] = specs_env;
    envp[k++] = u->env[0];
    if (metrics_fd >= 0) {
        snprintf(u->env[1], sizeof(u->env[1]), "%s=%d", UPGRADE_ENV_METRICS, metrics_fd);
        envp[k++] = u->env[1];
    }
    sigemptyset(&none);
    pid = fork();
    if (pid == 0) {
        /* the child: async-signal-safe calls only until execve */
        for (int i = 0; i < n; i++)
            if (fcntl(ls[i].fd, F_SETFD, 0) == -1)
                _exit(127);
        if (fcntl(pfd[1], F_SETFD, 0) == -1 ||
            (metrics_fd >= 0 && fcntl(metrics_fd, F_SETFD, 0) == -1))
            _exit(127);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(u->exe, argv, envp);
        _exit(127);
    }
    e = pid == -1 ? -errno : 0;
    close(pfd[1]);
    if (e) {
        close(pfd[0]);
        goto out;
    }
    u->pid = pid;
    u->ready_fd = pfd[0];
    u->deadline_ms = upgrade_now_ms() + UPGRADE_READY_WAIT_MS;
out:
    free(fds_env);
    free(specs_env);
    free(envp);
    return e;
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
