/* test_reverse.c - worker/reverse's pure helper: the Host a reverse proxy sends its server
 * (keep_host_header=false), from --mode specs parsed by config_parse, each case with a note. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "shared/config.h"
#include "worker/reverse.h"

struct rewrite_case {
    const char *note;
    const char *mode;
    const char *keep; /* --set keep_host_header=VALUE, or NULL */
    int rc;
    const char *want;
};

static const struct rewrite_case cases[] = {
    {"https default port: no port", "reverse:https://api.internal:443", NULL, 12, "api.internal"},
    {"http explicit port", "reverse:http://127.0.0.1:8081", NULL, 14, "127.0.0.1:8081"},
    {"IPv6 in brackets", "reverse:https://[::1]:8443", NULL, 10, "[::1]:8443"},
    {"keep_host_header=true: no rewrite", "reverse:https://api.internal", "true", 0, ""},
    {"regular mode: no rewrite", "regular", NULL, 0, ""},
};

static void test_host_rewrite(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct rewrite_case *c = &cases[i];
        char mode[128], keep[64], err[256], out[300] = "";
        char *argv[6] = {"mitmd", "--mode", mode, NULL, NULL, NULL};
        int argc = 3;
        struct config cfg;

        snprintf(mode, sizeof(mode), "%s", c->mode);
        if (c->keep != NULL) {
            snprintf(keep, sizeof(keep), "keep_host_header=%s", c->keep);
            argv[argc++] = "--set";
            argv[argc++] = keep;
        }
        if (config_parse(argc, argv, &cfg, err, sizeof(err)) != 0)
            fail_msg("%s: config_parse: %s", c->note, err);
        int rc = reverse_host_rewrite(&cfg.modes[0], cfg.keep_host_header, out, sizeof(out));
        if (rc != c->rc || (rc > 0 && strcmp(out, c->want) != 0))
            fail_msg("%s: rc %d '%s', expected %d '%s'", c->note, rc, out, c->rc, c->want);
        config_dispose(&cfg);
    }
}

static void test_host_rewrite_small_buffer(void **state)
{
    char err[256], out[4];
    char *argv[] = {"mitmd", "--mode", "reverse:https://api.internal", NULL};
    struct config cfg;

    (void)state;
    assert_int_equal(config_parse(3, argv, &cfg, err, sizeof(err)), 0);
    assert_int_equal(reverse_host_rewrite(&cfg.modes[0], false, out, sizeof(out)), -ENOSPC);
    config_dispose(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_rewrite),
        cmocka_unit_test(test_host_rewrite_small_buffer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
