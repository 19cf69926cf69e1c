/* test_config_modes.c - shared/config's --mode list (one listener per --mode): defaults,
 * where each listener listens (its "@[HOST:]PORT", else --listen-host and -p), the refusals
 * (the same address twice, too many modes, modes mitmd cannot serve) with their one-line
 * messages, the --set / config.yaml list forms, and the descriptor layout the master and
 * the workers share (config_listen_fd). Each case has a note. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "shared/config.h"

#define MAX_ARGS 48

/* parse runs config_parse on "mitmd" + the NULL-terminated `args`. */
static int parse(struct config *cfg, const char *const *args, char *err, size_t errlen)
{
    char *argv[MAX_ARGS] = {"mitmd"};
    int argc = 1;

    while (args[argc - 1] != NULL && argc < MAX_ARGS - 1) {
        argv[argc] = (char *)args[argc - 1];
        argc++;
    }
    err[0] = '\0';
    return config_parse(argc, argv, cfg, err, errlen);
}

struct listener_want {
    enum mode_spec_kind kind;
    const char *full_spec;
    const char *host;
    uint16_t port;
};

struct modes_case {
    const char *note;
    const char *args[12];
    int n;
    struct listener_want want[4];
};

static const struct modes_case accepted[] = {
    {"no --mode: one regular listener on --listen-host and -p",
     {NULL},
     1,
     {{MODE_SPEC_REGULAR, "regular", "127.0.0.1", 8080}}},
    {"the brief's example: four listeners, each on its @PORT",
     {"--mode", "regular@8080", "--mode", "socks5@1080", "--mode",
      "reverse:https://api.internal:443@8443", "--mode", "transparent@127.0.0.1:8081", NULL},
     4,
     {{MODE_SPEC_REGULAR, "regular@8080", "127.0.0.1", 8080},
      {MODE_SPEC_SOCKS5, "socks5@1080", "127.0.0.1", 1080},
      {MODE_SPEC_REVERSE, "reverse:https://api.internal:443@8443", "127.0.0.1", 8443},
      {MODE_SPEC_TRANSPARENT, "transparent@127.0.0.1:8081", "127.0.0.1", 8081}}},
    {"a mode without @PORT takes --listen-host and -p; -p does not move the others",
     {"--listen-host", "localhost", "-p", "9000", "--mode", "socks5@1080", "--mode", "regular",
      NULL},
     2,
     {{MODE_SPEC_SOCKS5, "socks5@1080", "localhost", 1080},
      {MODE_SPEC_REGULAR, "regular", "localhost", 9000}}},
    {"@HOST:PORT overrides --listen-host for that mode only",
     {"--listen-host", "::1", "--mode", "regular@0.0.0.0:8080", "--mode", "socks5@8080", NULL},
     2,
     {{MODE_SPEC_REGULAR, "regular@0.0.0.0:8080", "0.0.0.0", 8080},
      {MODE_SPEC_SOCKS5, "socks5@8080", "::1", 8080}}},
    {"port 0 twice: each gets its own free port",
     {"--mode", "regular@0", "--mode", "socks5@0", NULL},
     2,
     {{MODE_SPEC_REGULAR, "regular@0", "127.0.0.1", 0},
      {MODE_SPEC_SOCKS5, "socks5@0", "127.0.0.1", 0}}},
    {"--set mode= appends, -m too",
     {"--set", "mode=socks5@1080", "-m", "regular@8081", NULL},
     2,
     {{MODE_SPEC_SOCKS5, "socks5@1080", "127.0.0.1", 1080},
      {MODE_SPEC_REGULAR, "regular@8081", "127.0.0.1", 8081}}},
    {"a bare --set mode empties the list (config.yaml's list overridden): regular",
     {"--mode", "socks5@1080", "--set", "mode", NULL},
     1,
     {{MODE_SPEC_REGULAR, "regular", "127.0.0.1", 8080}}},
    {"same port, other host: two listeners",
     {"--mode", "regular@127.0.0.1:8080", "--mode", "socks5@127.0.0.2:8080", NULL},
     2,
     {{MODE_SPEC_REGULAR, "regular@127.0.0.1:8080", "127.0.0.1", 8080},
      {MODE_SPEC_SOCKS5, "socks5@127.0.0.2:8080", "127.0.0.2", 8080}}},
};

static void test_modes_accepted(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        const struct modes_case *c = &accepted[i];
        struct config cfg;
        char err[512];

        if (parse(&cfg, c->args, err, sizeof(err)) != 0)
            fail_msg("%s: %s", c->note, err);
        if (cfg.n_modes != c->n)
            fail_msg("%s: %d modes, expected %d", c->note, cfg.n_modes, c->n);
        for (int k = 0; k < c->n; k++) {
            const struct listener_want *w = &c->want[k];

            if (cfg.modes[k].kind != w->kind || strcmp(cfg.modes[k].full_spec, w->full_spec) != 0 ||
                strcmp(config_mode_listen_host(&cfg, k), w->host) != 0 ||
                config_mode_listen_port(&cfg, k) != w->port)
                fail_msg("%s: listener %d: %s '%s' on %s port %u", c->note, k,
                         mode_spec_kind_name(cfg.modes[k].kind), cfg.modes[k].full_spec,
                         config_mode_listen_host(&cfg, k), config_mode_listen_port(&cfg, k));
        }
        /* proxy_mode, for code that knows one mode, is the first */
        assert_int_equal(cfg.proxy_mode.kind, cfg.modes[0].kind);
        assert_string_equal(cfg.proxy_mode.full_spec, cfg.modes[0].full_spec);
        config_dispose(&cfg);
    }
}

struct refusal_case {
    const char *note;
    const char *args[12];
    const char *musts[4]; /* in the one-line message */
};

static const struct refusal_case refused[] = {
    {"two listeners on one port of the default host",
     {"--mode", "regular@8080", "--mode", "socks5@8080", NULL},
     {"--mode regular@8080", "--mode socks5@8080", "127.0.0.1:8080", NULL}},
    {"-p and an @PORT on the same port",
     {"-p", "8080", "--mode", "regular", "--mode", "socks5@8080", NULL},
     {"--mode regular and --mode socks5@8080", "127.0.0.1:8080", NULL}},
    {"the same host written with and without brackets",
     {"--listen-host", "[::1]", "-p", "8080", "--mode", "regular", "--mode", "socks5@[::1]:8080",
      NULL},
     {"socks5@[::1]:8080", "[::1]:8080", NULL}},
    {"a host name in other case",
     {"--mode", "regular@LocalHost:8080", "--mode", "socks5@localhost:8080", NULL},
     {"both listen on", "localhost:8080", NULL}},
    {"the same spec twice",
     {"--mode", "socks5@1080", "--mode", "socks5@1080", NULL},
     {"--mode socks5@1080 and --mode socks5@1080", NULL}},
    {"an unknown mode in the list names itself",
     {"--mode", "regular@8080", "--mode", "wireguard@51820", NULL},
     {"wireguard@51820", "unknown mode", NULL}},
    {"upstream:https:// is not served yet",
     {"--mode", "regular@8080", "--mode", "upstream:https://127.0.0.1:3128@8081", NULL},
     {"upstream:https://", "not yet supported", NULL}},
};

static void test_modes_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        const struct refusal_case *c = &refused[i];
        struct config cfg;
        char err[512];
        int rc = parse(&cfg, c->args, err, sizeof(err));

        if (rc != -EINVAL)
            fail_msg("%s: rc %d, expected -EINVAL", c->note, rc);
        if (strchr(err, '\n') != NULL)
            fail_msg("%s: more than one line: %s", c->note, err);
        for (int k = 0; c->musts[k] != NULL; k++)
            if (strstr(err, c->musts[k]) == NULL)
                fail_msg("%s: '%s' not in '%s'", c->note, c->musts[k], err);
        config_dispose(&cfg);
    }
}

/* At most CONFIG_MAX_MODES listeners; one more is refused by name. */
static void test_modes_too_many(void **state)
{
    static char specs[CONFIG_MAX_MODES + 1][32];
    const char *args[2 * (CONFIG_MAX_MODES + 1) + 1];
    struct config cfg;
    char err[512];
    int n = 0;

    (void)state;
    for (int i = 0; i <= CONFIG_MAX_MODES; i++) {
        snprintf(specs[i], sizeof(specs[i]), "regular@%d", 20000 + i);
        args[n++] = "--mode";
        args[n++] = specs[i];
    }
    args[n - 2] = NULL; /* first exactly the maximum */
    assert_int_equal(parse(&cfg, args, err, sizeof(err)), 0);
    assert_int_equal(cfg.n_modes, CONFIG_MAX_MODES);
    config_dispose(&cfg);
    args[n - 2] = "--mode";
    args[n] = NULL;
    assert_int_equal(parse(&cfg, args, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "too many"));
    config_dispose(&cfg);
}

/* mode is a list option: config.yaml `mode: [a, b]` gives two listeners; config_check_set
 * checks each entry as --set would. */
static void test_mode_is_a_list(void **state)
{
    char err[512];

    (void)state;
    assert_true(config_is_list("mode"));
    assert_int_equal(config_check_set("mode=socks5@1080", err, sizeof(err)), 0);
    assert_int_equal(config_check_set("mode=socks5@http", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "--set mode"));
}

/* The listener descriptors: the first at fd 4, the others from 16 on, all distinct and below
 * the soft descriptor limit of any sane system. */
static void test_listen_fd_layout(void **state)
{
    bool seen[1024] = {false};

    (void)state;
    assert_int_equal(config_listen_fd(0, 0), 4);
    assert_int_equal(config_listen_fd(0, 1), 17);
    assert_int_equal(config_listen_fd(1, 0), 16 + CONFIG_MODE_MAX_ADDRS);
    for (int m = 0; m < CONFIG_MAX_MODES; m++)
        for (int a = 0; a < CONFIG_MODE_MAX_ADDRS; a++) {
            int fd = config_listen_fd(m, a);

            assert_true(fd == 4 || (fd >= 16 && fd < 256));
            assert_false(seen[fd]);
            seen[fd] = true;
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes_accepted),
        cmocka_unit_test(test_modes_refused),
        cmocka_unit_test(test_modes_too_many),
        cmocka_unit_test(test_mode_is_a_list),
        cmocka_unit_test(test_listen_fd_layout),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
