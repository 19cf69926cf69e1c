/* test_mitmflow.c - cmocka tests of master/mitmflow: a flow file written by mitmdump 8.1.1
 * (tests/unit/data/mitmdump-8.1.1.flows: plain GET, POST with a body, 404, a binary body, a
 * refused connection, HTTPS through CONNECT to 127.0.0.1 with Host www.origin.test) converts
 * to records that -r reads, with mitmdump's URLs, the bodies byte for byte and the error; and
 * what is not a well-formed HTTP flow is refused with a reason. */
#include "master/mitmflow.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "master/rfile.h"
#include "shared/har.h"

#define NFLOWS 7

static char *lines[NFLOWS];
static size_t lens[NFLOWS];

/* read_fixture converts every flow of the fixture; returns how many. */
static int read_fixture(void)
{
    FILE *in = fopen(MITMFLOW_FIXTURE, "rb");
    const char *why = NULL;
    char *line = NULL;
    size_t len = 0;
    int n = 0, r;

    assert_non_null(in);
    assert_true(mitmflow_sniff(in));
    while ((r = mitmflow_read(in, &line, &len, &why)) == 1) {
        assert_true(n < NFLOWS); /* the fixture holds NFLOWS flows */
        lines[n] = line;
        lens[n++] = len;
    }
    assert_int_equal(r, 0);
    fclose(in);
    return n;
}

static void free_lines(void)
{
    for (int i = 0; i < NFLOWS; i++) {
        free(lines[i]);
        lines[i] = NULL;
    }
}

/* body_sha256 decodes a record's NAME {"base64": ...} and returns its SHA-256 in hex. */
static void body_sha256(json_t *rec, const char *name, char hex[65], size_t *len)
{
    const char *b64 = json_string_value(json_object_get(json_object_get(rec, name), "base64"));
    uint8_t *raw, d[32];
    ssize_t n;

    assert_non_null(b64);
    raw = malloc(strlen(b64) / 4 * 3 + 3);
    n = har_base64_decode(b64, strlen(b64), raw);
    assert_true(n >= 0);
    crypto_hash_sha256(d, raw, (unsigned long long)n);
    sodium_bin2hex(hex, 65, d, sizeof(d));
    *len = (size_t)n;
    free(raw);
}

/* line_of reads record i back as -r does and formats its flow line. */
static void line_of(int i, char *out, size_t cap)
{
    static struct flow f;
    struct rfile_strs keep;
    const char *why = NULL;
    ssize_t n;

    assert_int_equal(rfile_flow_from_line(lines[i], lens[i], &f, &keep, &why), 0);
    n = flow_format_line(&f, out, cap - 1);
    assert_true(n > 0);
    out[n] = '\0';
}

static void test_fixture(void **state)
{
    static const char *const want[NFLOWS] = {
        "127.0.0.1:35932: GET http://127.0.0.1:18681/hello?x=1 HTTP/1.1 << 200 OK 22b ",
        "127.0.0.1:35936: POST http://127.0.0.1:18681/sha HTTP/1.1 << 201 Created 65b ",
        "127.0.0.1:35940: GET http://127.0.0.1:18681/missing HTTP/1.1 << 404 Not Found 13b ",
        "127.0.0.1:35950: GET http://127.0.0.1:18681/bin HTTP/1.1 << 200 OK 1.0k ",
        "127.0.0.1:35958: GET http://127.0.0.1:18690/closed HTTP/1.1 << no response ",
        "127.0.0.1:35966: GET https://127.0.0.1:18443/1k HTTP/1.1 << 200 OK 1.0k ",
        "127.0.0.1:35980: GET https://127.0.0.1:18443/1k HTTP/1.1 << 200 OK 1.0k ",
    };
    uint8_t bin[1024], d[32];
    char line[4096], hex[65], bin_hex[65];
    size_t len;
    json_t *rec;

    (void)state;
    assert_int_equal(read_fixture(), NFLOWS);
    for (int i = 0; i < NFLOWS; i++) {
        line_of(i, line, sizeof(line));
        if (i != 4 && strncmp(line, want[i], strlen(want[i])) != 0)
            fail_msg("flow %d: '%s', want '%s...'", i, line, want[i]);
    }
    /* the refused connection: no response, mitmdump's error text */
    line_of(4, line, sizeof(line));
    assert_non_null(strstr(line, "GET http://127.0.0.1:18690/closed HTTP/1.1 << "));
    assert_non_null(strstr(line, "[Errno 111] Connect call failed ('127.0.0.1', 18690)"));
    /* the POST: its body and the origin's answer (the SHA-256 of the body, in hex) */
    rec = json_loadb(lines[1], lens[1], 0, NULL);
    assert_non_null(rec);
    body_sha256(rec, "request_body", hex, &len);
    assert_int_equal(len, 13);
    crypto_hash_sha256(d, (const uint8_t *)"payload bytes", 13);
    sodium_bin2hex(bin_hex, sizeof(bin_hex), d, sizeof(d));
    assert_string_equal(hex, bin_hex);
    json_decref(rec);
    /* the binary body, byte for byte */
    for (size_t k = 0; k < sizeof(bin); k++)
        bin[k] = (uint8_t)k;
    crypto_hash_sha256(d, bin, sizeof(bin));
    sodium_bin2hex(bin_hex, sizeof(bin_hex), d, sizeof(d));
    rec = json_loadb(lines[3], lens[3], 0, NULL);
    body_sha256(rec, "response_body", hex, &len);
    assert_int_equal(len, 1024);
    assert_string_equal(hex, bin_hex);
    json_decref(rec);
    /* HTTPS through CONNECT 127.0.0.1: the Host field's URL, the target, the upstream TLS */
    rec = json_loadb(lines[5], lens[5], 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "request"), "url")),
                        "https://www.origin.test:18443/1k");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(rec, "client"), "target"), "host")),
                        "127.0.0.1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "tls"), "sni")),
                        "www.origin.test");
    assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "tls"), "alpn")),
                        "http/1.1");
    json_decref(rec);
    free_lines();
}

struct bad_case {
    const char *in;
    const char *why_has;
};

static void test_refused(void **state)
{
    static const struct bad_case cases[] = {
        {"", "not a mitmproxy flow"},
        {"5:hello,", "not a mitmproxy flow"},
        {"3:abc}", "not a mitmproxy flow"}, /* a dictionary whose key has no value */
        {"20:4:type;3:tcp;1:x;0:~}", "not an HTTP flow"},
        {"21:4:type;4:http;1:x;0:~}", "without a request"},
        {"9:0:~}", "not a mitmproxy flow"},
        {"99999999999:", "not a mitmproxy flow"},
        {"12:4:type;4:http;}trailing", "not a mitmproxy flow"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *line = NULL;
        size_t len = 0;
        const char *why = NULL;

        if (mitmflow_to_record((const uint8_t *)cases[i].in, strlen(cases[i].in), &line, &len,
                               &why) != -EINVAL)
            fail_msg("case %zu accepted", i);
        assert_null(line);
        if (why == NULL || strstr(why, cases[i].why_has) == NULL)
            fail_msg("case %zu: why '%s', want '%s'", i, why ? why : "(null)", cases[i].why_has);
    }
}

/* A file cut inside a flow (mitmdump killed while writing): the flows before it convert, then
 * the reader says so instead of reading on. */
static void test_cut_file(void **state)
{
    FILE *in = fopen(MITMFLOW_FIXTURE, "rb"), *cut;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf), in), len;
    char *line = NULL;
    const char *why = NULL;
    int got = 0, r;

    (void)state;
    fclose(in);
    assert_true(n > 100);
    cut = fmemopen(buf, n - 50, "rb");
    while ((r = mitmflow_read(cut, &line, &len, &why)) == 1) {
        free(line);
        line = NULL;
        got++;
    }
    assert_int_equal(got, NFLOWS - 1);
    assert_int_equal(r, -1);
    assert_string_equal(why, "the file ends inside a flow");
    fclose(cut);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_cut_file),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
