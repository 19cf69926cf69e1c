/* test_mb_opts.c - mitmd-bench's command line: durations, host patterns, option validation
 * and the mode each combination selects. Addresses are IP literals (no DNS). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/mb_opts.h"

struct duration_case {
    const char *note;
    const char *in;
    int rc;
    uint64_t ns;
};

static const struct duration_case durations[] = {
    {.note = "bare seconds", .in = "10", .rc = 0, .ns = 10000000000ull},
    {.note = "seconds", .in = "10s", .rc = 0, .ns = 10000000000ull},
    {.note = "fraction", .in = "1.5s", .rc = 0, .ns = 1500000000ull},
    {.note = "milliseconds", .in = "500ms", .rc = 0, .ns = 500000000ull},
    {.note = "microseconds", .in = "250us", .rc = 0, .ns = 250000ull},
    {.note = "minutes", .in = "2m", .rc = 0, .ns = 120000000000ull},
    {.note = "hours", .in = "1h", .rc = 0, .ns = 3600000000000ull},
    {.note = "zero", .in = "0s", .rc = 0, .ns = 0},
    {.note = "unknown unit", .in = "5d", .rc = -EINVAL},
    {.note = "negative", .in = "-1s", .rc = -EINVAL},
    {.note = "empty", .in = "", .rc = -EINVAL},
    {.note = "unit only", .in = "s", .rc = -EINVAL},
    {.note = "space", .in = "1 s", .rc = -EINVAL},
    {.note = "overflow", .in = "1e30h", .rc = -EINVAL},
};

static void test_mb_opts_durations(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        uint64_t ns = 12345;
        int rc = mb_opts_parse_duration(durations[i].in, &ns);

        if (rc != durations[i].rc || (rc == 0 && ns != durations[i].ns))
            fail_msg("%s: '%s' -> rc %d ns %llu", durations[i].note, durations[i].in, rc,
                     (unsigned long long)ns);
    }
}

static void test_mb_opts_format_host(void **state)
{
    char out[32];

    (void)state;
    assert_int_equal(mb_opts_format_host("h%d.bench.test", 42, out, sizeof(out)), 0);
    assert_string_equal(out, "h42.bench.test");
    assert_int_equal(mb_opts_format_host("plain.test", 7, out, sizeof(out)), 0);
    assert_string_equal(out, "plain.test");
    assert_int_equal(mb_opts_format_host("100%%-%d", 3, out, sizeof(out)), 0);
    assert_string_equal(out, "100%-3");
    /* "h99.test" exactly fits 9 bytes with its NUL; "h100.test" is one byte too long */
    assert_int_equal(mb_opts_format_host("h%d.test", 99, out, 9), 0);
    assert_string_equal(out, "h99.test");
    assert_int_equal(mb_opts_format_host("h%d.test", 100, out, 9), -ENAMETOOLONG);
}

#define MAX_ARGS 16

struct parse_case {
    const char *note;
    const char *args[MAX_ARGS]; /* NULL-terminated, without argv[0] */
    int rc;
    enum mb_mode mode;
    unsigned reqs_per_conn;
    unsigned threads;
    unsigned streams; /* checked when non-zero */
};

static const struct parse_case parses[] = {
    {.note = "defaults: keep-alive",
     .args = {"--connect", "127.0.0.1:443", NULL},
     .rc = 0,
     .mode = MB_MODE_KEEPALIVE,
     .reqs_per_conn = 0,
     .threads = 2},
    {.note = "new-conn",
     .args = {"--connect", "127.0.0.1:443", "--new-conn", "--resume", NULL},
     .rc = 0,
     .mode = MB_MODE_NEWCONN,
     .reqs_per_conn = 1,
     .threads = 2},
    {.note = "hosts implies one request per connection",
     .args = {"--connect", "127.0.0.1:443", "--host", "h%d.bench.test", "--hosts", "10", NULL},
     .rc = 0,
     .mode = MB_MODE_HOSTS,
     .reqs_per_conn = 1,
     .threads = 2},
    {.note = "hosts with keep-alive",
     .args = {"--connect", "127.0.0.1:443", "--hosts", "10", "--reqs-per-conn", "0", NULL},
     .rc = 0,
     .mode = MB_MODE_HOSTS,
     .reqs_per_conn = 0,
     .threads = 2},
    {.note = "threads capped at connections",
     .args = {"--connect", "[::1]:8443", "-c", "1", "-t", "4", NULL},
     .rc = 0,
     .mode = MB_MODE_KEEPALIVE,
     .reqs_per_conn = 0,
     .threads = 1},
    {.note = "proxy, rate, body, json",
     .args = {"--proxy", "127.0.0.1:8080", "--connect", "127.0.0.1:443", "--rate", "100.5",
              "--body-size", "1000", "--json", "/tmp/x.json", "-d", "1s", "--warmup", "0.5s", NULL},
     .rc = 0,
     .mode = MB_MODE_KEEPALIVE,
     .reqs_per_conn = 0,
     .threads = 2},
    {.note = "h2 defaults to 10 streams",
     .args = {"--connect", "127.0.0.1:443", "--h2", NULL},
     .rc = 0,
     .mode = MB_MODE_KEEPALIVE,
     .reqs_per_conn = 0,
     .threads = 2,
     .streams = 10},
    {.note = "h2 with -m",
     .args = {"--connect", "127.0.0.1:443", "--h2", "-m", "64", NULL},
     .rc = 0,
     .mode = MB_MODE_KEEPALIVE,
     .reqs_per_conn = 0,
     .threads = 2,
     .streams = 64},
    {.note = "http/1.1 has one stream",
     .args = {"--connect", "127.0.0.1:443", NULL},
     .rc = 0,
     .mode = MB_MODE_KEEPALIVE,
     .reqs_per_conn = 0,
     .threads = 2,
     .streams = 1},
    {.note = "-m without --h2",
     .args = {"--connect", "127.0.0.1:443", "-m", "4", NULL},
     .rc = -EINVAL},
    {.note = "-m 0",
     .args = {"--connect", "127.0.0.1:443", "--h2", "-m", "0", NULL},
     .rc = -EINVAL},
    {.note = "missing --connect", .args = {"-c", "5", NULL}, .rc = -EINVAL},
    {.note = "unknown option",
     .args = {"--connect", "127.0.0.1:443", "--frobnicate", NULL},
     .rc = -EINVAL},
    {.note = "unknown short option",
     .args = {"--connect", "127.0.0.1:443", "-x", NULL},
     .rc = -EINVAL},
    {.note = "missing value", .args = {"--connect", NULL}, .rc = -EINVAL},
    {.note = "stray argument",
     .args = {"--connect", "127.0.0.1:443", "extra", NULL},
     .rc = -EINVAL},
    {.note = "port missing", .args = {"--connect", "127.0.0.1", NULL}, .rc = -EINVAL},
    {.note = "zero connections",
     .args = {"--connect", "127.0.0.1:443", "-c", "0", NULL},
     .rc = -EINVAL},
    {.note = "negative count",
     .args = {"--connect", "127.0.0.1:443", "-n", "-5", NULL},
     .rc = -EINVAL},
    {.note = "two conversions in host",
     .args = {"--connect", "127.0.0.1:443", "--host", "%d.%d", NULL},
     .rc = -EINVAL},
    {.note = "format injection in host",
     .args = {"--connect", "127.0.0.1:443", "--host", "%s.test", NULL},
     .rc = -EINVAL},
    {.note = "path without slash",
     .args = {"--connect", "127.0.0.1:443", "--path", "1k", NULL},
     .rc = -EINVAL},
    {.note = "path with space",
     .args = {"--connect", "127.0.0.1:443", "--path", "/a b", NULL},
     .rc = -EINVAL},
    {.note = "zero rate",
     .args = {"--connect", "127.0.0.1:443", "--rate", "0", NULL},
     .rc = -EINVAL},
    {.note = "cafile with -k",
     .args = {"--connect", "127.0.0.1:443", "--cafile", "x.pem", "-k", NULL},
     .rc = -EINVAL},
    {.note = "new-conn with reqs-per-conn 5",
     .args = {"--connect", "127.0.0.1:443", "--new-conn", "--reqs-per-conn", "5", NULL},
     .rc = -EINVAL},
};

static void test_mb_opts_parse(void **state)
{
    struct mb_opts *o = malloc(sizeof(*o));

    (void)state;
    assert_non_null(o);
    for (size_t i = 0; i < sizeof(parses) / sizeof(parses[0]); i++) {
        const struct parse_case *tc = &parses[i];
        char *argv[MAX_ARGS + 2];
        char err[256] = "";
        int argc = 0, rc;

        argv[argc++] = (char *)"mitmd-bench";
        for (size_t k = 0; tc->args[k] != NULL; k++)
            argv[argc++] = (char *)tc->args[k];
        argv[argc] = NULL;
        rc = mb_opts_parse(o, argc, argv, err, sizeof(err));
        if (rc != tc->rc)
            fail_msg("%s: rc %d (%s), want %d", tc->note, rc, err, tc->rc);
        if (rc != 0) {
            if (err[0] == '\0')
                fail_msg("%s: no reason given", tc->note);
            continue;
        }
        if (o->mode != tc->mode || o->reqs_per_conn != tc->reqs_per_conn ||
            o->threads != tc->threads || (tc->streams != 0 && o->streams != tc->streams))
            fail_msg("%s: mode %d rpc %u threads %u", tc->note, o->mode, o->reqs_per_conn,
                     o->threads);
    }
    free(o);
}

static void test_mb_opts_values(void **state)
{
    struct mb_opts *o = malloc(sizeof(*o));
    char err[256];
    char *argv[] = {"mitmd-bench",
                    "--proxy",
                    "127.0.0.1:8080",
                    "--connect",
                    "127.0.0.1:9443",
                    "--host",
                    "h%d.bench.test",
                    "-n",
                    "1000",
                    "--path",
                    "/1k",
                    NULL};

    (void)state;
    assert_non_null(o);
    assert_int_equal(mb_opts_parse(o, 11, argv, err, sizeof(err)), 0);
    assert_true(o->have_proxy);
    assert_int_equal(o->proxy.port, 8080);
    assert_int_equal(o->origin.port, 9443);
    assert_string_equal(o->host_pattern, "h%d.bench.test");
    assert_string_equal(o->path, "/1k");
    assert_int_equal(o->requests, 1000);
    assert_int_equal(o->duration_ns, 0); /* -n alone: no time limit */
    assert_false(o->insecure);
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mb_opts_durations),
        cmocka_unit_test(test_mb_opts_format_host),
        cmocka_unit_test(test_mb_opts_parse),
        cmocka_unit_test(test_mb_opts_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
