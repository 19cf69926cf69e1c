/* test_listen.c - the master's listeners: listen hosts given as numbers or names, the
 * start-up text for several addresses and listeners, several sockets sharing one port, one
 * listener per --mode, and two listeners on one address refused. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "master/listen.h"

static void test_resolve_numeric_and_names(void **state)
{
    static const struct {
        const char *note, *host;
        int family; /* of the first address */
    } cases[] = {
        {"IPv4 literal", "127.0.0.1", AF_INET},
        {"IPv6 literal", "::1", AF_INET6},
        {"bracketed IPv6 literal", "[::1]", AF_INET6},
        {"a name: localhost, IPv4 first", "localhost", AF_INET},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct listen_addrs a;
        char err[256] = "";

        if (listen_resolve(cases[i].host, 8080, &a, err, sizeof(err)) != 0)
            fail_msg("%s: %s", cases[i].note, err);
        assert_true(a.n >= 1);
        assert_int_equal(a.ss[0].ss_family, cases[i].family);
        for (int k = 0; k < a.n; k++)
            assert_int_equal(ntohs(((struct sockaddr_in *)&a.ss[k])->sin_port), 8080);
    }
}

static void test_resolve_failure_names_host(void **state)
{
    struct listen_addrs a;
    char err[256] = "";
    (void)state;

    assert_int_not_equal(listen_resolve("no-such-host.invalid", 1, &a, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "--listen-host no-such-host.invalid"));
}

static void test_format_and_open_several(void **state)
{
    struct listen_addrs a, one;
    char text[256], err[256] = "";
    int fds[2] = {-1, -1};
    uint16_t port = 0;
    (void)state;

    assert_int_equal(listen_resolve("127.0.0.1", 0, &a, err, sizeof(err)), 0);
    assert_int_equal(listen_resolve("::1", 0, &one, err, sizeof(err)), 0);
    a.ss[1] = one.ss[0];
    a.len[1] = one.len[0];
    a.n = 2;
    listen_format(&a, 8080, text, sizeof(text));
    assert_string_equal(text, "127.0.0.1:8080 and [::1]:8080");
    /* both listeners share the port the kernel picked for the first (needs IPv6 on lo) */
    if (listen_open_addrs(&a, fds, &port, err, sizeof(err)) != 0) {
        print_message("skipped: %s\n", err);
        return;
    }
    assert_true(port != 0);
    for (int i = 0; i < 2; i++) {
        struct sockaddr_storage got;
        socklen_t len = sizeof(got);

        assert_int_equal(getsockname(fds[i], (struct sockaddr *)&got, &len), 0);
        assert_int_equal(ntohs(((struct sockaddr_in *)&got)->sin_port), port);
    }
    listen_close_all(fds, 2);
    assert_int_equal(fds[0], -1);
}

/* parse builds a config from a NULL-terminated argument list (argv[0] implied). */
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

/* One listener per --mode, one socket per address of its host (localhost: 127.0.0.1 and
 * ::1 where both exist), every socket of a mode on one port; the slots share the first. */
static void test_set_open_by_name(void **state)
{
    static const char *const args[] = {"--listen-host", "localhost", "-p", "0", "--mode",
                                       "regular", "--mode", "socks5@127.0.0.1:0", NULL};
    struct listen_set *ls = calloc(1, sizeof(*ls));
    struct config cfg;
    int slots[3];
    char err[512] = "";
    (void)state;

    assert_non_null(ls);
    parse(&cfg, args);
    if (listen_set_open(&cfg, ls, 3, slots, err, sizeof(err)) != 0)
        fail_msg("localhost: %s", err);
    assert_int_equal(ls->n_modes, 2);
    assert_true(ls->addrs[0].n >= 1);
    assert_int_equal(ls->addrs[1].n, 1);
    assert_true(ls->port[0] != 0 && ls->port[1] != 0 && ls->port[0] != ls->port[1]);
    assert_true(slots[0] >= 0 && slots[1] >= 0 && slots[2] >= 0);
    assert_int_equal(ls->fd[0][0], -1); /* handed to the slots */
    for (int k = 1; k < ls->addrs[0].n; k++)
        assert_true(ls->fd[0][k] >= 0);
    assert_true(ls->fd[1][0] >= 0);
    for (int k = 0; k < ls->addrs[0].n; k++) {
        struct sockaddr_storage got;
        socklen_t len = sizeof(got);
        int fd = k == 0 ? slots[0] : ls->fd[0][k];

        assert_int_equal(getsockname(fd, (struct sockaddr *)&got, &len), 0);
        assert_int_equal(ntohs(((struct sockaddr_in *)&got)->sin_port), ls->port[0]);
    }
    listen_close_all(slots, 3);
    listen_set_close(ls);
    assert_int_equal(ls->fd[1][0], -1);
    config_dispose(&cfg);
    free(ls);
}

/* Two listeners on one address are refused by name before anything is bound: as written
 * differently (localhost and 127.0.0.1), or a wildcard and an address of its family. Port 0
 * never clashes; other families or ports do not either. */
static void test_set_plan_refuses_same_address(void **state)
{
    static const struct {
        const char *note, *a, *b;
        int rc;
        const char *where; /* in the message */
    } cases[] = {
        {"a name and its address", "regular@localhost:18090", "socks5@127.0.0.1:18090",
         -EADDRINUSE, "127.0.0.1:18090"},
        {"a wildcard and an address", "regular@0.0.0.0:18091", "socks5@127.0.0.1:18091",
         -EADDRINUSE, "127.0.0.1:18091"},
        {"IPv6 wildcard and ::1", "regular@[::]:18092", "socks5@[::1]:18092", -EADDRINUSE,
         "[::1]:18092"},
        {"other ports", "regular@127.0.0.1:18093", "socks5@127.0.0.1:18094", 0, NULL},
        {"other families", "regular@0.0.0.0:18095", "socks5@[::1]:18095", 0, NULL},
        {"port 0 twice", "regular@127.0.0.1:0", "socks5@localhost:0", 0, NULL},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *args[] = {"--mode", cases[i].a, "--mode", cases[i].b, NULL};
        struct listen_set *ls = calloc(1, sizeof(*ls));
        struct config cfg;
        char err[512] = "";
        int rc;

        assert_non_null(ls);
        parse(&cfg, args);
        rc = listen_set_plan(&cfg, ls, err, sizeof(err));
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d (%s), expected %d", cases[i].note, rc, err, cases[i].rc);
        if (cases[i].where != NULL &&
            (strstr(err, cases[i].where) == NULL || strstr(err, cases[i].a) == NULL ||
             strstr(err, cases[i].b) == NULL))
            fail_msg("%s: message '%s'", cases[i].note, err);
        for (int k = 0; k < LISTEN_MAX_ADDRS; k++)
            assert_int_equal(ls->fd[0][k], -1); /* nothing opened */
        config_dispose(&cfg);
        free(ls);
    }
}

/* A mode's own listen host that does not resolve is named with its --mode. */
static void test_set_plan_names_mode_host(void **state)
{
    static const char *const args[] = {"--mode", "regular@0", "--mode",
                                       "socks5@no-such-host.invalid:1080", NULL};
    struct listen_set *ls = calloc(1, sizeof(*ls));
    struct config cfg;
    char err[512] = "";
    (void)state;

    assert_non_null(ls);
    parse(&cfg, args);
    assert_int_not_equal(listen_set_plan(&cfg, ls, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "--mode socks5@no-such-host.invalid:1080"));
    config_dispose(&cfg);
    free(ls);
}

/* The start-up lines: each listener in mitmproxy 10's words, then the line scripts wait for. */
static void test_set_announce(void **state)
{
    static const char *const args[] = {"--mode", "regular@127.0.0.1:8080", "--mode",
                                       "reverse:https://api.internal@[::1]:8443", "--mode",
                                       "socks5@127.0.0.1:1080", NULL};
    struct listen_set *ls = calloc(1, sizeof(*ls));
    struct config cfg;
    char err[512] = "", *text = NULL;
    size_t len = 0;
    FILE *out;
    (void)state;

    assert_non_null(ls);
    parse(&cfg, args);
    assert_int_equal(listen_set_plan(&cfg, ls, err, sizeof(err)), 0);
    out = open_memstream(&text, &len);
    assert_non_null(out);
    listen_set_announce(ls, &cfg, 1, out);
    fclose(out);
    assert_string_equal(text, "mitmd: HTTP(S) proxy listening at 127.0.0.1:8080.\n"
                              "mitmd: reverse proxy to https://api.internal:443 listening at "
                              "[::1]:8443.\n"
                              "mitmd: SOCKS v5 proxy listening at 127.0.0.1:1080.\n"
                              "mitmd: listening on 127.0.0.1:8080 with 1 worker\n");
    free(text);
    config_dispose(&cfg);
    free(ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_numeric_and_names),
        cmocka_unit_test(test_resolve_failure_names_host),
        cmocka_unit_test(test_format_and_open_several),
        cmocka_unit_test(test_set_open_by_name),
        cmocka_unit_test(test_set_plan_refuses_same_address),
        cmocka_unit_test(test_set_plan_names_mode_host),
        cmocka_unit_test(test_set_announce),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
