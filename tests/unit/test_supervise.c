/* test_supervise.c - the confinement a worker gets between fork and exec (supervise.c is
 * included to reach supervise_confine, STYLE.md): the Landlock ruleset denies the confdir
 * and nothing else, even where file modes would allow; as root, the child switches to the
 * unprivileged user with no groups and no_new_privs; root and unknown users are refused.
 * Each check runs in a forked child, as a worker would be confined. */
#include "master/supervise.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

struct fixture {
    char dir[64];     /* 0755: ancestors a worker must traverse */
    char conf[96];    /* the confdir, 0755, with a 0644 "key": only Landlock can deny it */
    char key[128];
    char other[128];  /* a file next to the confdir: must stay readable */
    struct supervise s;
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, 0644), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    static char *argv[] = {"mitmd", NULL};
    int listen_fds[1] = {-1};

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/mitmd-test-sup-XXXXXX");
    if (mkdtemp(f->dir) == NULL || chmod(f->dir, 0755) != 0)
        return -1;
    snprintf(f->conf, sizeof(f->conf), "%s/conf", f->dir);
    snprintf(f->key, sizeof(f->key), "%s/mitmd-ca.pem", f->conf);
    snprintf(f->other, sizeof(f->other), "%s/upstream-ca.pem", f->dir);
    if (mkdir(f->conf, 0755) != 0)
        return -1;
    write_file(f->key, "-----BEGIN PRIVATE KEY-----\n");
    write_file(f->other, "-----BEGIN CERTIFICATE-----\n");
    supervise_init(&f->s, 1, listen_fds, -1, -1, NULL, 1, argv, NULL, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    supervise_dispose(&f->s);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

enum {
    PROBE_KEY_OPENED = 1,    /* the confdir's file could be read */
    PROBE_CONF_LISTED = 2,   /* the confdir could be listed */
    PROBE_OTHER_DENIED = 4,  /* a file next to the confdir could not be read */
    PROBE_ETC_DENIED = 8,    /* /etc/hosts could not be read */
    PROBE_STILL_ROOT = 16,   /* (root only) uid or gid unchanged, or groups kept */
    PROBE_PRIVS = 32,        /* no_new_privs not set */
    PROBE_KEY_ERRNO = 64,    /* the key was refused with another errno than EACCES */
};

/* probe forks a child that confines itself as a worker would and reports what it can
 * reach (PROBE_* bits; 0 = confined as wanted). */
static int probe(struct fixture *f)
{
    pid_t parent = getpid(), pid = fork();
    int status;

    assert_true(pid >= 0);
    if (pid == 0) {
        int bits = 0, fd;
        DIR *d;

        supervise_confine(&f->s, parent);
        fd = open(f->key, O_RDONLY);
        if (fd >= 0)
            bits |= PROBE_KEY_OPENED;
        else if (errno != EACCES)
            bits |= PROBE_KEY_ERRNO;
        d = opendir(f->conf);
        if (d != NULL)
            bits |= PROBE_CONF_LISTED;
        if (open(f->other, O_RDONLY) < 0)
            bits |= PROBE_OTHER_DENIED;
        if (open("/etc/hosts", O_RDONLY) < 0)
            bits |= PROBE_ETC_DENIED;
        if (f->s.sb.drop && (getuid() != f->s.sb.uid || getgid() != f->s.sb.gid ||
                             getgroups(0, NULL) != 0))
            bits |= PROBE_STILL_ROOT;
        if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
            bits |= PROBE_PRIVS;
        _exit(bits);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Issue 10 item 2: the confdir is denied (even with modes that let anyone read it), while
 * files next to it and the rest of the system stay readable. */
static void test_landlock_denies_confdir_only(void **state)
{
    struct fixture *f = *state;
    char err[256];
    int bits;

    assert_int_equal(supervise_sandbox_prepare(&f->s, NULL, f->conf, err, sizeof(err)), 0);
    if (f->s.sb.landlock_fd < 0)
        skip(); /* no Landlock in this kernel: supervise_sandbox_prepare said so */
    bits = probe(f);
    if (bits != 0)
        fail_msg("confined child: %s%s%s%s%s%s%s", bits & PROBE_KEY_OPENED ? "read the key; " : "",
                 bits & PROBE_CONF_LISTED ? "listed the confdir; " : "",
                 bits & PROBE_OTHER_DENIED ? "denied a sibling file; " : "",
                 bits & PROBE_ETC_DENIED ? "denied /etc/hosts; " : "",
                 bits & PROBE_STILL_ROOT ? "kept root credentials; " : "",
                 bits & PROBE_PRIVS ? "no no_new_privs; " : "",
                 bits & PROBE_KEY_ERRNO ? "key refused with an unexpected errno; " : "");
}

/* Without the ruleset (no Landlock), the same child reads the key: the probe can fail. */
static void test_probe_sees_unconfined_key(void **state)
{
    struct fixture *f = *state;

    f->s.sb.landlock_fd = -1;
    f->s.sb.drop = false;
    assert_true(probe(f) & PROBE_KEY_OPENED);
}

/* As root: the worker's user must exist and must not be root. */
static void test_user_checks(void **state)
{
    struct fixture *f = *state;
    char err[256];

    if (geteuid() != 0)
        skip();
    assert_int_equal(supervise_sandbox_prepare(&f->s, "root", f->conf, err, sizeof(err)),
                     -EPERM);
    assert_int_equal(
        supervise_sandbox_prepare(&f->s, "no-such-user-mitmd", f->conf, err, sizeof(err)),
        -ENOENT);
    assert_non_null(strstr(err, "no-such-user-mitmd"));
    assert_int_equal(supervise_sandbox_prepare(&f->s, "nobody", f->conf, err, sizeof(err)), 0);
    assert_true(f->s.sb.drop);
    assert_true(f->s.sb.uid != 0);
}

/* supervise_pass_fd: a file per option, replaced when passed again, bounded. */
static void test_pass_fd(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(supervise_pass_fd(&f->s, open("/dev/null", O_WRONLY | O_CLOEXEC), "-w"), 0);
    assert_int_equal(
        supervise_pass_fd(&f->s, open("/dev/null", O_RDONLY | O_CLOEXEC), "--upstream-ca"), 0);
    assert_int_equal(supervise_pass_fd(&f->s, open("/dev/null", O_WRONLY | O_CLOEXEC), "-w"), 0);
    assert_int_equal(f->s.n_passed, 2);
    assert_string_equal(f->s.passed_arg[0], "/dev/fd/7");
    assert_string_equal(f->s.passed_arg[1], "/dev/fd/8");
    assert_int_equal(supervise_pass_fd(&f->s, -1, "-x"), -EINVAL);
}

/* supervise_share_fd: listeners beyond the first, each at its own number above the passed
 * files; a taken or reserved number is refused (and the descriptor closed). */
static void test_share_fd(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(supervise_share_fd(&f->s, open("/dev/null", O_RDONLY | O_CLOEXEC), 17), 0);
    assert_int_equal(supervise_share_fd(&f->s, open("/dev/null", O_RDONLY | O_CLOEXEC), 24), 0);
    assert_int_equal(supervise_share_fd(&f->s, open("/dev/null", O_RDONLY | O_CLOEXEC), 17),
                     -EINVAL);
    assert_int_equal(supervise_share_fd(&f->s, open("/dev/null", O_RDONLY | O_CLOEXEC), 4),
                     -EINVAL);
    assert_int_equal(supervise_share_fd(&f->s, -1, 30), -EINVAL);
    assert_int_equal(f->s.n_shared, 2);
    assert_int_equal(f->s.shared_at[1], 24);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_landlock_denies_confdir_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_sees_unconfined_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_share_fd, setup, teardown),
    };

    log_setup("test", LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
