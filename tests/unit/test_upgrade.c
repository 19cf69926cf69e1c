/* test_upgrade.c - the new master's side of a binary upgrade (master/upgrade.c): the
 * environment an old master sets is parsed (FD:MODE.ADDR entries with the hex specs, or one
 * bare FD from an older mitmd), every socket lands at its mode and address with its port, and
 * a configuration that does not fit (other specs, another count, another address) or a
 * malformed variable is refused with every inherited socket closed. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "master/listen.h"
#include "master/upgrade.h"

static void parse(struct config *cfg, const char *const *args)
{
    char *argv[32] = {"mitmd"};
    char err[512] = "";
    int argc = 1;

    for (; args[argc - 1] != NULL; argc++)
        argv[argc] = (char *)args[argc - 1];
    if (config_parse(argc, argv, cfg, err, sizeof(err)) != 0)
        fail_msg("config_parse: %s", err);
}

/* listener opens a listening socket on 127.0.0.1 (free port) and returns it; *port set. */
static int listener(uint16_t *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void hex(const char *s, char *out)
{
    for (; *s != '\0'; s++, out += 2)
        sprintf(out, "%02x", (unsigned char)*s);
    *out = '\0';
}

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

/* setenv_for hands over fds[0] as mode 0 and fds[1] as mode 1 with the specs `s0`, `s1`. */
static void setenv_for(const int *fds, const char *s0, const char *s1)
{
    char v[256], h0[128], h1[128], specs[300];

    snprintf(v, sizeof(v), "%d:0.0,%d:1.0", fds[0], fds[1]);
    hex(s0, h0);
    hex(s1, h1);
    snprintf(specs, sizeof(specs), "%s,%s", h0, h1);
    setenv(UPGRADE_ENV_LISTEN, v, 1);
    setenv(UPGRADE_ENV_SPECS, specs, 1);
}

static void test_two_listeners_taken(void **state)
{
    static const char *const args[] = {"--mode", "regular@127.0.0.1:0", "--mode",
                                       "socks5@127.0.0.1:0", NULL};
    struct config cfg;
    struct listen_set *ls = calloc(1, sizeof(*ls));
    struct upgrade *u = calloc(1, sizeof(*u));
    char err[512];
    uint16_t p0, p1;
    int fds[2];

    (void)state;
    fds[0] = listener(&p0);
    fds[1] = listener(&p1);
    setenv_for(fds, "regular@127.0.0.1:0", "socks5@127.0.0.1:0");
    assert_int_equal(upgrade_init(u, err, sizeof(err)), 0);
    assert_null(getenv(UPGRADE_ENV_LISTEN)); /* workers never see it */
    assert_null(getenv(UPGRADE_ENV_SPECS));
    assert_int_equal(u->n_listen, 2);
    assert_int_equal(u->n_specs, 2);
    parse(&cfg, args);
    assert_int_equal(listen_set_plan(&cfg, ls, err, sizeof(err)), 0);
    assert_int_equal(upgrade_take_listeners(u, &cfg, ls, err, sizeof(err)), 1);
    assert_int_equal(ls->fd[0][0], fds[0]);
    assert_int_equal(ls->fd[1][0], fds[1]);
    assert_int_equal(ls->port[0], p0);
    assert_int_equal(ls->port[1], p1);
    assert_int_equal(u->n_listen, 0);
    listen_set_close(ls);
    config_dispose(&cfg);
    free(ls);
    free(u);
}

static void test_mismatch_refused(void **state)
{
    static const char *const swapped[] = {"--mode", "socks5@127.0.0.1:0", "--mode",
                                          "regular@127.0.0.1:0", NULL};
    static const char *const one_mode[] = {"--mode", "regular@127.0.0.1:0", NULL};
    static const char *const other_addr[] = {"--mode", "regular@127.0.0.2:0", "--mode",
                                             "socks5@127.0.0.1:0", NULL};
    static const struct {
        const char *old0, *old1; /* the old master's specs (NULL: none sent, one bare FD) */
        const char *const *args;
    } cases[] = {
        {"regular@127.0.0.1:0", "socks5@127.0.0.1:0", swapped},  /* other order */
        {"regular@127.0.0.1:0", "socks5@127.0.0.1:0", one_mode}, /* a mode fewer */
        {"regular@127.0.0.2:0", "socks5@127.0.0.1:0", other_addr}, /* socket not on 127.0.0.2 */
        {NULL, NULL, swapped}, /* an older mitmd's one socket, two modes here */
    };

    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct config cfg;
        struct listen_set *ls = calloc(1, sizeof(*ls));
        struct upgrade *u = calloc(1, sizeof(*u));
        char err[512] = "", v[32];
        uint16_t p;
        int fds[2] = {listener(&p), listener(&p)};

        if (cases[c].old0 != NULL) {
            setenv_for(fds, cases[c].old0, cases[c].old1);
        } else {
            snprintf(v, sizeof(v), "%d", fds[0]);
            setenv(UPGRADE_ENV_LISTEN, v, 1);
            unsetenv(UPGRADE_ENV_SPECS);
            close(fds[1]);
        }
        assert_int_equal(upgrade_init(u, err, sizeof(err)), 0);
        parse(&cfg, cases[c].args);
        assert_int_equal(listen_set_plan(&cfg, ls, err, sizeof(err)), 0);
        assert_int_equal(upgrade_take_listeners(u, &cfg, ls, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "upgrade"));
        assert_false(is_open(fds[0]));
        assert_false(is_open(fds[1]));
        for (int i = 0; i < CONFIG_MAX_MODES; i++)
            for (int k = 0; k < CONFIG_MODE_MAX_ADDRS; k++)
                assert_int_equal(ls->fd[i][k], -1);
        config_dispose(&cfg);
        free(ls);
        free(u);
    }
}

static void test_malformed_env(void **state)
{
    static const char *const bad[] = {"x", "7:", "7:0", "7:0.", "7:99.0", "7:0.99", "7,8", "7:0.0,",
                                      "2:0.0"};
    struct upgrade *u = calloc(1, sizeof(*u));
    char err[512];

    (void)state;
    unsetenv(UPGRADE_ENV_SPECS);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv(UPGRADE_ENV_LISTEN, bad[i], 1);
        assert_int_equal(upgrade_init(u, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, UPGRADE_ENV_LISTEN));
    }
    unsetenv(UPGRADE_ENV_LISTEN);
    setenv(UPGRADE_ENV_SPECS, "7265677", 1); /* odd length */
    assert_int_equal(upgrade_init(u, err, sizeof(err)), -EINVAL);
    setenv(UPGRADE_ENV_SPECS, "00", 1); /* a NUL in a spec */
    assert_int_equal(upgrade_init(u, err, sizeof(err)), -EINVAL);
    unsetenv(UPGRADE_ENV_SPECS);
    setenv(UPGRADE_ENV_LISTEN, "9", 1); /* an older mitmd: one bare descriptor */
    assert_int_equal(upgrade_init(u, err, sizeof(err)), 0);
    assert_int_equal(u->n_listen, 1);
    assert_int_equal(u->listen[0].fd, 9);
    assert_int_equal(u->n_specs, -1);
    unsetenv(UPGRADE_ENV_LISTEN);
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_listeners_taken),
        cmocka_unit_test(test_mismatch_refused),
        cmocka_unit_test(test_malformed_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
