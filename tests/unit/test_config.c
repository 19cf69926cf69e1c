/* test_config.c - command-line parsing: defaults, every option, and the one-line errors for
 * unknown and malformed options. */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <stdio.h>

/* the table and static helpers are tested directly (STYLE.md: include the .c file) */
#include "shared/config.c"


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

/* parse_ok parses a NULL-terminated argv that must be accepted. */
static void parse_ok(char **argv, struct config *cfg)
{
    char err[256] = "";
    int argc = 0;

    while (argv[argc] != NULL)
        argc++;
    if (config_parse(argc, argv, cfg, err, sizeof(err)) != 0)
        fail_msg("'%s ...' refused: %s", argv[1], err);
}

/* mitmproxy's underscore names through --set, for mitmproxy's options and mitmd's own. */
static void test_set_names(void **state)
{
    (void)state;
    char *argv[] = {"mitmd", "--set", "listen_port=8081", "--set", "ssl_insecure=true",
                    "--set", "confdir=/tmp/c", "--set", "ignore_hosts=^a$", "--set",
                    "ignore_hosts=^b$", "--set", "http2=false", "--set", "workers=4", "--set",
                    "cert_cache_mb=16", "--set", "listen_host=localhost", "--set",
                    "ciphers_client=ECDHE-ECDSA-AES128-GCM-SHA256", "--set",
                    "ciphers_server=ECDHE-RSA-AES256-GCM-SHA384", "--set", "user=mitmd",
                    "--set", "shutdown_timeout=7", "--set", "save_stream_file=+/tmp/f.jsonl",
                    "--set", "ssl_verify_upstream_trusted_ca=/tmp/ca.pem", "--set",
                    "connect_timeout=3", "--set", "max_conns=9", "--set",
                    "connection_strategy=eager", "--set", "upstream_cert=true", "--set",
                    "resolve=a.test=127.0.0.2", "--set", "flow_detail=0", "--set",
                    "termlog_verbosity=debug", NULL};
    struct config cfg;

    parse_ok(argv, &cfg);
    assert_int_equal(cfg.listen_port, 8081);
    assert_true(cfg.ssl_insecure);
    assert_string_equal(cfg.confdir, "/tmp/c");
    assert_int_equal(cfg.n_ignore_hosts, 2); /* sequences append, as mitmproxy's --set */
    assert_string_equal(cfg.ignore_hosts[0], "^a$");
    assert_string_equal(cfg.ignore_hosts[1], "^b$");
    assert_false(cfg.http2);
    assert_int_equal(cfg.workers, 4);
    assert_int_equal(cfg.cert_cache_mb, 16);
    assert_string_equal(cfg.listen_host, "localhost");
    assert_string_equal(cfg.ciphers_client, "ECDHE-ECDSA-AES128-GCM-SHA256");
    assert_string_equal(cfg.ciphers_server, "ECDHE-RSA-AES256-GCM-SHA384");
    assert_string_equal(cfg.user, "mitmd");
    assert_int_equal(cfg.shutdown_timeout_s, 7);
    assert_string_equal(cfg.flow_file, "/tmp/f.jsonl"); /* mitmproxy's "+" append prefix */
    assert_string_equal(cfg.upstream_ca, "/tmp/ca.pem");
    assert_int_equal(cfg.connect_timeout_s, 3);
    assert_int_equal(cfg.max_conns, 9);
    assert_string_equal(config_resolve_lookup(&cfg, "a.test"), "127.0.0.2");
    assert_true(cfg.quiet);
    assert_true(cfg.verbose);
    assert_true(config_was_given(&cfg, "listen_port"));
    assert_true(config_was_given(&cfg, "ignore_hosts"));
    assert_false(config_was_given(&cfg, "idle_timeout"));
    assert_false(config_was_given(&cfg, "no_such_option"));
    config_dispose(&cfg);
}

/* New fields' defaults, and mitmproxy's long forms: --http2/--no-http2, --no-ssl-insecure,
 * --allow-hosts, --shutdown-timeout, --user, --opt=value. */
static void test_long_forms_and_defaults(void **state)
{
    (void)state;
    char *none[] = {"mitmd", NULL};
    char *argv[] = {"mitmd", "--no-http2", "--http2", "-k", "--no-ssl-insecure",
                    "--allow-hosts", "^api\\.", "--allow-hosts=^b\\.", "--shutdown-timeout",
                    "0", "--user=proxy", "--listen-port=9000", NULL};
    struct config cfg;

    parse_ok(none, &cfg);
    assert_null(cfg.ciphers_client);
    assert_null(cfg.ciphers_server);
    assert_string_equal(cfg.user, "nobody");
    assert_int_equal(cfg.shutdown_timeout_s, 30);
    assert_int_equal(cfg.n_allow_hosts, 0);
    config_dispose(&cfg);
    parse_ok(argv, &cfg);
    assert_true(cfg.http2); /* the last one wins */
    assert_false(cfg.ssl_insecure);
    assert_int_equal(cfg.n_allow_hosts, 2);
    assert_string_equal(cfg.allow_hosts[1], "^b\\.");
    assert_int_equal(cfg.shutdown_timeout_s, 0);
    assert_string_equal(cfg.user, "proxy");
    assert_int_equal(cfg.listen_port, 9000);
    config_dispose(&cfg);
}

/* Booleans take mitmproxy's forms: true, false, toggle, and a bare --set NAME (true); a bare
 * --set on a list empties it, on a string resets it. */
static void test_set_value_forms(void **state)
{
    (void)state;
    char *argv[] = {"mitmd", "--set", "ssl_insecure", "--set", "http2=toggle", "--set",
                    "quiet=TRUE", "--set", "verbose=False", "--ignore-hosts", "x", "--set",
                    "ignore_hosts", "--set", "ignore_hosts=y", "--set", "ciphers_client=AES",
                    "--set", "ciphers_client", "--set", "user", NULL};
    struct config cfg;

    parse_ok(argv, &cfg);
    assert_true(cfg.ssl_insecure);
    assert_false(cfg.http2);
    assert_true(cfg.quiet);
    assert_false(cfg.verbose);
    assert_int_equal(cfg.n_ignore_hosts, 1);
    assert_string_equal(cfg.ignore_hosts[0], "y");
    assert_null(cfg.ciphers_client);
    assert_string_equal(cfg.user, "nobody");
    config_dispose(&cfg);
}

/* `mitmd cert` takes its options before or after the word cert (issue 15 item 5). */
static void test_cert_options_anywhere(void **state)
{
    (void)state;
    char *before[] = {"mitmd", "--confdir", "/tmp/d", "cert", "a.test", NULL};
    char *mixed[] = {"mitmd", "--set", "confdir=/tmp/e", "cert", "a.test", "-v", "b.test", NULL};
    struct config cfg;

    parse_ok(before, &cfg);
    assert_int_equal(cfg.mode, CONFIG_MODE_CERT);
    assert_string_equal(cfg.confdir, "/tmp/d");
    assert_int_equal(cfg.n_cert_names, 1);
    assert_string_equal(cfg.cert_names[0], "a.test");
    config_dispose(&cfg);
    parse_ok(mixed, &cfg);
    assert_int_equal(cfg.mode, CONFIG_MODE_CERT);
    assert_string_equal(cfg.confdir, "/tmp/e");
    assert_true(cfg.verbose);
    assert_int_equal(cfg.n_cert_names, 2);
    assert_string_equal(cfg.cert_names[1], "b.test");
    config_dispose(&cfg);
}

/* Every option in the table is reachable by --set with its name, is listed by --help with
 * that name, and each long option is listed too. */
static void test_every_option_in_help_and_set(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    config_usage(f);
    fclose(f);
    for (size_t i = 0; i < CONFIG_N_OPTS; i++) {
        const struct config_opt *o = &config_opts[i];
        char want[96];

        snprintf(want, sizeof(want), "[%s]", o->name);
        if (strstr(text, want) == NULL)
            fail_msg("--help does not list %s", want);
        if (o->lopt != NULL) {
            snprintf(want, sizeof(want), "--%s", o->lopt);
            if (strstr(text, want) == NULL)
                fail_msg("--help does not list %s", want);
        }
        assert_ptr_equal(config_find(o->name, strlen(o->name)), o);
    }
    for (const char *const *sig = (const char *const[]){"SIGHUP", "SIGUSR1", "SIGTERM",
                                                         "SIGINT", NULL};
         *sig != NULL; sig++)
        if (strstr(text, *sig) == NULL)
            fail_msg("--help does not mention %s", *sig);
    free(text);
}

/* config_check_set: what config.yaml entries are checked with. */
static void test_check_set(void **state)
{
    (void)state;
    char err[256];

    assert_int_equal(config_check_set("listen_port=8081", err, sizeof(err)), 0);
    assert_int_equal(config_check_set("http2", err, sizeof(err)), 0);
    assert_int_equal(config_check_set("listen_port=http", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "listen_port"));
    assert_int_equal(config_check_set("nope=1", err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "nope"));
    assert_true(config_is_list("ignore_hosts"));
    assert_true(config_is_list("allow_hosts"));
    assert_true(config_is_list("resolve"));
    assert_false(config_is_list("listen_port"));
    assert_false(config_is_list("nope"));
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
        {"negative timeout", "--idle-timeout", "-1", "idle-timeout"},
        {"unknown --set name", "--set", "bogus_option=1", "bogus_option"},
        {"bad boolean", "--set", "http2=maybe", "http2"},
        {"bad boolean value named", "--set", "ssl_insecure=yes", "yes"},
        {"bad --set number", "--set", "listen_port=99999", "listen_port"},
        {"--set without a name", "--set", "=1", "--set"},
        {"lazy connections", "--set", "connection_strategy=lazy", "connection_strategy"},
        {"upstream_cert off", "--set", "upstream_cert=false", "upstream_cert"},
        {"bad flow_detail", "--set", "flow_detail=9", "flow_detail"},
        {"bad termlog_verbosity", "--set", "termlog_verbosity=loud", "termlog_verbosity"},
        {"empty user", "--user", "", "--user"},
        {"empty cipher list", "--set", "ciphers_client=", "ciphers_client"},
        {"bad shutdown timeout", "--shutdown-timeout", "soon", "shutdown-timeout"},
        {"empty -w", "-w", "+", "-w"},
        {"unknown TLS version", "--set", "tls_version_client_min=TLS1_4", "tls_version_client_min"},
        {"SSL3 as a maximum", "--set", "tls_version_server_max=SSL3", "SSL 3.0"},
        {"bare TLS version", "--set", "tls_version_server_min", "tls_version_server_min"},
        {"anticache with a value", "--set", "anticache=maybe", "anticache"},
        {"connect_addr a name", "--set", "connect_addr=localhost", "connect_addr"},
        /* mitmproxy options mitmd does not have: named, with why */
        {"stickycookie by --set", "--set", "stickycookie=~d a", "between workers"},
        {"stickycookie long", "--stickycookie", "~d a", "mitmproxy's option --stickycookie"},
        {"client replay without a file", "-C", NULL, "-C"},
        {"client replay concurrency -1", "--set", "client_replay_concurrency=-1",
         "client_replay_concurrency"},
        {"scripts -s", "-s", "a.py", "scripts"},
        {"key_size", "--key-size", "4096", "ECDSA P-256"},
        {"--no-rawtcp", "--no-rawtcp", NULL, "raw TCP"},
        {"dns_mode", "--set", "dns_mode=regular", "DNS mode"},
        {"smuggling check off", "--set", "validate_inbound_headers=false", "smuggling"},
        {"uppercase h2 names", "--set", "normalize_outbound_headers=false", "lowercase"},
        {"bad websocket", "--set", "websocket=maybe", "websocket"},
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

/* mitmproxy's tls_version_* options (names case-insensitive, SSL3 as a minimum = no bound)
 * and --anticache / --anticomp (long flags with --no- forms, and --set). */
static void test_tls_versions_and_anti(void **state)
{
    (void)state;
    char *none[] = {"mitmd", NULL};
    char *argv[] = {"mitmd", "--set", "tls_version_client_min=tls1_3", "--set",
                    "tls_version_client_max=UNBOUNDED", "--set", "tls_version_server_min=SSL3",
                    "--set", "tls_version_server_max=TLS1_2", "--anticache", "--no-anticache",
                    "--set", "anticache=true", "--anticomp", NULL};
    struct config cfg;

    parse_ok(none, &cfg);
    assert_int_equal(cfg.tls_version_client_min, 0x0303); /* TLS1_2, as mitmproxy */
    assert_int_equal(cfg.tls_version_server_min, 0x0303);
    assert_int_equal(cfg.tls_version_client_max, 0x0304); /* UNBOUNDED: TLS1_3 */
    assert_int_equal(cfg.tls_version_server_max, 0x0304);
    assert_false(cfg.anticache);
    assert_false(cfg.anticomp);
    config_dispose(&cfg);
    parse_ok(argv, &cfg);
    assert_int_equal(cfg.tls_version_client_min, 0x0304);
    assert_int_equal(cfg.tls_version_client_max, 0x0304); /* UNBOUNDED as a maximum */
    assert_int_equal(cfg.tls_version_server_min, 0x0301); /* SSL3 as a minimum: TLS1 */
    assert_int_equal(cfg.tls_version_server_max, 0x0303);
    assert_true(cfg.anticache); /* the last one wins */
    assert_true(cfg.anticomp);
    config_dispose(&cfg);
}

/* mitmproxy's websocket (default true, false accepted), validate_inbound_headers and
 * normalize_outbound_headers (true accepted: what mitmd always does). */
static void test_websocket_and_header_checks(void **state)
{
    (void)state;
    char *none[] = {"mitmd", NULL};
    char *set[] = {"mitmd", "--set", "websocket=false", "--set", "validate_inbound_headers=true",
                   "--set", "normalize_outbound_headers", NULL};
    struct config cfg;

    parse_ok(none, &cfg);
    assert_true(cfg.websocket);
    assert_true(cfg.validate_inbound_headers);
    assert_true(cfg.normalize_outbound_headers);
    config_dispose(&cfg);
    parse_ok(set, &cfg);
    assert_false(cfg.websocket);
    assert_true(cfg.validate_inbound_headers);
    assert_true(cfg.normalize_outbound_headers);
    config_dispose(&cfg);
}

/* mitmproxy's --showhost: off by default, the long flag, --no-showhost, --set. */
static void test_showhost(void **state)
{
    (void)state;
    char *none[] = {"mitmd", NULL};
    char *on[] = {"mitmd", "--showhost", NULL};
    char *off[] = {"mitmd", "--showhost", "--no-showhost", NULL};
    char *set[] = {"mitmd", "--set", "showhost=true", NULL};
    struct config cfg;

    parse_ok(none, &cfg);
    assert_false(cfg.showhost);
    config_dispose(&cfg);
    parse_ok(on, &cfg);
    assert_true(cfg.showhost);
    config_dispose(&cfg);
    parse_ok(off, &cfg);
    assert_false(cfg.showhost);
    config_dispose(&cfg);
    parse_ok(set, &cfg);
    assert_true(cfg.showhost);
    config_dispose(&cfg);
}

/* mitmdump's -r, -n (--no-server), --keepserving: -nr FILE is -n -r FILE. */
static void test_rfile_server(void **state)
{
    (void)state;
    char *none[] = {"mitmd", NULL};
    char *nr[] = {"mitmd", "-nr", "flows.jsonl", NULL};
    char *longs[] = {"mitmd", "--rfile", "a.jsonl", "--no-server", "--server", "--keepserving",
                     "--set", "readfile_filter=~c 500", NULL};
    char *set[] = {"mitmd", "--set", "server=false", "--set", "rfile=b.jsonl", NULL};
    struct config cfg;

    parse_ok(none, &cfg);
    assert_true(cfg.server);
    assert_null(cfg.rfile);
    assert_false(cfg.keepserving);
    config_dispose(&cfg);
    parse_ok(nr, &cfg);
    assert_false(cfg.server);
    assert_string_equal(cfg.rfile, "flows.jsonl");
    assert_null(cfg.view_filter); /* the file is not a positional filter */
    config_dispose(&cfg);
    parse_ok(longs, &cfg);
    assert_true(cfg.server); /* the last one wins */
    assert_true(cfg.keepserving);
    assert_string_equal(cfg.rfile, "a.jsonl");
    assert_string_equal(cfg.readfile_filter, "~c 500");
    config_dispose(&cfg);
    parse_ok(set, &cfg);
    assert_false(cfg.server);
    assert_string_equal(cfg.rfile, "b.jsonl");
    config_dispose(&cfg);
}

/* --set connect_addr: numeric IPv4 or IPv6, a bare --set NAME clears it. */
static void test_connect_addr(void **state)
{
    (void)state;
    char *v4[] = {"mitmd", "--set", "connect_addr=10.1.2.3", NULL};
    char *v6[] = {"mitmd", "--set", "connect_addr=127.0.0.2", "--set", "connect_addr=fd00::7", NULL};
    char *cleared[] = {"mitmd", "--set", "connect_addr=10.1.2.3", "--set", "connect_addr", NULL};
    const uint8_t want4[4] = {10, 1, 2, 3};
    const uint8_t want6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
    struct config cfg;

    parse_ok(v4, &cfg);
    assert_int_equal(cfg.connect_addr.ss_family, AF_INET);
    assert_int_equal(cfg.connect_addr_len, sizeof(struct sockaddr_in));
    assert_memory_equal(&((struct sockaddr_in *)&cfg.connect_addr)->sin_addr, want4, 4);
    assert_int_equal(((struct sockaddr_in *)&cfg.connect_addr)->sin_port, 0);
    config_dispose(&cfg);
    parse_ok(v6, &cfg); /* the last one wins */
    assert_int_equal(cfg.connect_addr.ss_family, AF_INET6);
    assert_int_equal(cfg.connect_addr_len, sizeof(struct sockaddr_in6));
    assert_memory_equal(&((struct sockaddr_in6 *)&cfg.connect_addr)->sin6_addr, want6, 16);
    config_dispose(&cfg);
    parse_ok(cleared, &cfg);
    assert_int_equal(cfg.connect_addr_len, 0);
    config_dispose(&cfg);
}

/* mitmproxy refuses --ignore-hosts together with --allow-hosts; so does mitmd. */
static void test_exclusive_hosts(void **state)
{
    (void)state;
    char *argv[] = {"mitmd", "--ignore-hosts", "a", "--set", "allow_hosts=b", NULL};
    struct config cfg;
    char err[256] = "";

    assert_int_equal(config_parse(5, argv, &cfg, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "--ignore-hosts"));
    assert_non_null(strstr(err, "--allow-hosts"));
    config_dispose(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_default_workers_follow_affinity),
        cmocka_unit_test(test_all_options),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_errors_name_the_option),
        cmocka_unit_test(test_set_names),
        cmocka_unit_test(test_long_forms_and_defaults),
        cmocka_unit_test(test_set_value_forms),
        cmocka_unit_test(test_cert_options_anywhere),
        cmocka_unit_test(test_every_option_in_help_and_set),
        cmocka_unit_test(test_check_set),
        cmocka_unit_test(test_exclusive_hosts),
        cmocka_unit_test(test_tls_versions_and_anti),
        cmocka_unit_test(test_showhost),
        cmocka_unit_test(test_websocket_and_header_checks),
        cmocka_unit_test(test_rfile_server),
        cmocka_unit_test(test_connect_addr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
