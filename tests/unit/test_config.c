/* test_config.c - command-line parsing: defaults, every option, and the one-line errors for
 * unknown and malformed options. */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shared/config.h"


static void test_defaults(void **state)
{
    (void)state;
    char *argv[] = {"mitmd", NULL};
    struct config cfg;
    char err[256];

    setenv("HOME", "/home/tester", 1);
    assert_int_equal(config_parse(1, argv, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.mode, CONFIG_MODE_PROXY);
    assert_string_equal(cfg.confdir, "/home/tester/.mitmd");
    assert_string_equal(cfg.listen_host, "127.0.0.1");
    assert_int_equal(cfg.listen_port, 8080);
    assert_true(cfg.workers >= 1);
    assert_int_equal(cfg.cert_cache_mb, 64);
    assert_false(cfg.quiet);
    assert_true(cfg.http2);
    assert_null(cfg.flow_file);
    assert_int_equal(cfg.max_header_size, 65536);
    config_dispose(&cfg);
}

/* The default worker count follows the CPU affinity mask (taskset, cpusets), not the
 * machine's online CPUs. */
static void test_default_workers_follow_affinity(void **state)
{
    (void)state;
    char *argv[] = {"mitmd", NULL};
    cpu_set_t saved, one;
    struct config cfg;
    char err[256];
    int first = -1;

    assert_int_equal(sched_getaffinity(0, sizeof(saved), &saved), 0);
    assert_int_equal(config_usable_cpus(), CPU_COUNT(&saved));
    for (int i = 0; i < CPU_SETSIZE && first < 0; i++)
        if (CPU_ISSET(i, &saved))
            first = i;
    assert_true(first >= 0);
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
    assert_int_equal(config_parse(1, argv, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.workers, 1);
    config_dispose(&cfg);
    assert_int_equal(sched_setaffinity(0, sizeof(saved), &saved), 0);
    assert_int_equal(config_parse(1, argv, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.workers, CPU_COUNT(&saved));
    config_dispose(&cfg);
}

static void test_all_options(void **state)
{
    (void)state;
    char *argv[] = {"mitmd", "--confdir", "/tmp/x", "--listen-host", "::1", "-p", "0",
                    "--workers", "3", "--cert-cache-mb", "8", "-q", "-w", "/tmp/f.jsonl", "-k",
                    "--upstream-ca", "/tmp/ca.pem", "--ignore-hosts", "^a\\.test$",
                    "--ignore-hosts", "b", "--resolve", "*.Bench.test=127.0.0.1", "--resolve",
                    "one.test=::1", "--no-http2", "--connect-timeout", "2",
                    "--request-timeout", "5", "--max-header-size", "8192", NULL};
    int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;
    struct config cfg;
    char err[256];

    assert_int_equal(config_parse(argc, argv, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.confdir, "/tmp/x");
    assert_string_equal(cfg.listen_host, "::1");
    assert_int_equal(cfg.listen_port, 0);
    assert_int_equal(cfg.workers, 3);
    assert_int_equal(cfg.cert_cache_mb, 8);
    assert_true(cfg.quiet);
    assert_string_equal(cfg.flow_file, "/tmp/f.jsonl");
    assert_true(cfg.ssl_insecure);
    assert_string_equal(cfg.upstream_ca, "/tmp/ca.pem");
    assert_int_equal(cfg.n_ignore_hosts, 2);
    assert_string_equal(cfg.ignore_hosts[1], "b");
    assert_false(cfg.http2);
    assert_int_equal(cfg.connect_timeout_s, 2);
    assert_int_equal(cfg.request_timeout_s, 5);
    assert_int_equal(cfg.max_header_size, 8192);
    /* --resolve: wildcard matches subdomains only, case-insensitively; exact names exactly */
    assert_string_equal(config_resolve_lookup(&cfg, "h1.bench.test"), "127.0.0.1");
    assert_string_equal(config_resolve_lookup(&cfg, "A.B.BENCH.TEST"), "127.0.0.1");
    assert_null(config_resolve_lookup(&cfg, "bench.test"));
    assert_string_equal(config_resolve_lookup(&cfg, "one.test"), "::1");
    assert_null(config_resolve_lookup(&cfg, "xone.test"));
    config_dispose(&cfg);
}

static void test_modes(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    char *cert[] = {"mitmd", "cert", "--confdir", "/tmp/d", "a.test", "10.0.0.1", NULL};
    char *worker[] = {"mitmd", "--worker", "2", "-p", "0", NULL};
    char *certnone[] = {"mitmd", "cert", NULL};

    assert_int_equal(config_parse(6, cert, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.mode, CONFIG_MODE_CERT);
    assert_int_equal(cfg.n_cert_names, 2);
    assert_string_equal(cfg.cert_names[0], "a.test");
    assert_string_equal(cfg.cert_names[1], "10.0.0.1");
    assert_string_equal(cfg.confdir, "/tmp/d");
    config_dispose(&cfg);
    assert_int_equal(config_parse(5, worker, &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.mode, CONFIG_MODE_WORKER);
    assert_int_equal(cfg.worker_id, 2);
    config_dispose(&cfg);
    assert_int_equal(config_parse(2, certnone, &cfg, err, sizeof(err)), -EINVAL);
    config_dispose(&cfg);
}

struct bad_case {
    const char *note;
    char *arg1, *arg2;
    const char *must_mention; /* the error names the option or value */
};

static void test_errors_name_the_option(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"unknown long option", "--bogus", NULL, "--bogus"},
        {"unknown short option", "-Z", NULL, "-Z"},
        {"port out of range", "-p", "70000", "70000"},
        {"port not a number", "--listen-port", "http", "http"},
        {"zero workers", "--workers", "0", "workers"},
        {"missing argument", "--confdir", NULL, "--confdir"},
        {"resolve without =", "--resolve", "a.test", "resolve"},
        {"resolve to a name", "--resolve", "a.test=b.test", "resolve"},
        {"stray argument", "extra", NULL, "extra"},
        {"negative timeout", "--idle-timeout", "-1", "idle-timeout"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[] = {"mitmd", cases[i].arg1, cases[i].arg2, NULL};
        int argc = cases[i].arg2 != NULL ? 3 : 2;
        struct config cfg;
        char err[256] = "";

        if (config_parse(argc, argv, &cfg, err, sizeof(err)) != -EINVAL)
            fail_msg("case '%s' accepted", cases[i].note);
        if (strstr(err, cases[i].must_mention) == NULL)
            fail_msg("case '%s': error '%s' does not mention '%s'", cases[i].note, err,
                     cases[i].must_mention);
        if (strchr(err, '\n') != NULL)
            fail_msg("case '%s': error is not one line", cases[i].note);
        config_dispose(&cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_default_workers_follow_affinity),
        cmocka_unit_test(test_all_options),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_errors_name_the_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
