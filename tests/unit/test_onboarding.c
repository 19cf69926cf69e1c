/* test_onboarding.c - worker/onboarding: which request lines are for the onboarding host
 * (absolute-form http:// only, host case-insensitive, the configured port written or implied,
 * never a longer host or another port; every prefix of a matching line is not yet a match),
 * and the answers (page, files with their types, 404, 405, HEAD without body). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shared/config.h"
#include "worker/onboarding.h"

struct line_case {
    const char *note;
    const char *line;
    bool want;
};

static const struct line_case lines[] = {
    {"GET /", "GET http://mitm.it/ HTTP/1.1\r\n", true},
    {"file", "GET http://mitm.it/cert/pem HTTP/1.1\r\n", true},
    {"explicit port 80", "GET http://mitm.it:80/ HTTP/1.1\r\n", true},
    {"host case", "HEAD http://MITM.It/ HTTP/1.1\r\n", true},
    {"scheme case", "GET HTTP://mitm.it/ HTTP/1.1\r\n", true},
    {"no path", "GET http://mitm.it HTTP/1.1\r\n", true},
    {"query on the bare host", "GET http://mitm.it?x HTTP/1.1\r\n", true},
    {"POST is still ours (405)", "POST http://mitm.it/ HTTP/1.1\r\n", true},
    {"another port", "GET http://mitm.it:8080/ HTTP/1.1\r\n", false},
    {"a longer host", "GET http://mitm.it.evil.test/ HTTP/1.1\r\n", false},
    {"a host ending in it", "GET http://xmitm.it/ HTTP/1.1\r\n", false},
    {"https", "GET https://mitm.it/ HTTP/1.1\r\n", false},
    {"origin-form", "GET / HTTP/1.1\r\n", false},
    {"CONNECT", "CONNECT mitm.it:443 HTTP/1.1\r\n", false},
    {"lower-case method", "get http://mitm.it/ HTTP/1.1\r\n", false},
    {"userinfo", "GET http://user@mitm.it/ HTTP/1.1\r\n", false},
};

static void test_is_for(void **state)
{
    struct config cfg;

    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    cfg.onboarding = true;
    cfg.onboarding_host = "mitm.it";
    cfg.onboarding_port = 80;
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        const char *l = lines[i].line;
        size_t n = strlen(l);

        if (onboarding_is_for(&cfg, l, n) != lines[i].want)
            fail_msg("%s: %s", lines[i].note, l);
        for (size_t k = 0; k < n && lines[i].want; k++) /* not before the host has ended */
            if (k < strlen("GET http://mitm.it") && onboarding_is_for(&cfg, l, k))
                fail_msg("%s: prefix %zu matched", lines[i].note, k);
    }
    cfg.onboarding = false;
    assert_false(onboarding_is_for(&cfg, lines[0].line, strlen(lines[0].line)));
    cfg.onboarding = true;
    cfg.onboarding_port = 8081;
    assert_false(onboarding_is_for(&cfg, "GET http://mitm.it/ HTTP/1.1\r\n", 31));
    assert_true(onboarding_is_for(&cfg, "GET http://mitm.it:8081/ HTTP/1.1\r\n", 36));
}

static void test_render(void **state)
{
    static char out[ONBOARDING_PAGE_MAX + 1024];
    int status = 0;
    size_t blen = 0;
    ssize_t n;

    (void)state;
    n = onboarding_render(out, sizeof(out), "/", 1, false, true, "/c", "P", 1, "Q", 1, "R", 1,
                          &status, &blen);
    assert_true(n > 0 && status == 200 && blen > 1000);
    out[n] = '\0';
    assert_non_null(strstr(out, "Content-Type: text/html; charset=utf-8\r\n"));
    for (const char *const *h = (const char *const[]){"/cert/pem", "/cert/p12", "/cert/cer",
                                                      "Windows", "Android", NULL};
         *h != NULL; h++)
        assert_non_null(strstr(out, *h));
    n = onboarding_render(out, sizeof(out), "/cert/p12?x=1", 13, false, true, "/c", "P", 1,
                          "Q12", 3, "R", 1, &status, &blen);
    out[n] = '\0';
    assert_int_equal(status, 200);
    assert_non_null(strstr(out, "Content-Type: application/x-pkcs12\r\n"));
    assert_non_null(strstr(out, "Content-Disposition: inline; filename=mitmd-ca-cert.p12\r\n"));
    assert_string_equal(out + n - 3, "Q12");
    n = onboarding_render(out, sizeof(out), "/cert/cer", 9, true, false, "/c", NULL, 0, NULL, 0,
                          "DER", 3, &status, &blen);
    out[n] = '\0';
    assert_true(status == 200 && blen == 3 && strstr(out, "\r\n\r\n") == out + n - 4);
    onboarding_render(out, sizeof(out), "/cert/pem", 9, false, true, "/c", NULL, 0, NULL, 0,
                      NULL, 0, &status, &blen);
    assert_int_equal(status, 404); /* a file the confdir does not have */
    onboarding_render(out, sizeof(out), "/x", 2, false, true, "/c", NULL, 0, NULL, 0, NULL, 0,
                      &status, &blen);
    assert_int_equal(status, 404);
    onboarding_render(out, sizeof(out), "/", 1, false, false, "/c", NULL, 0, NULL, 0, NULL, 0,
                      &status, &blen);
    assert_int_equal(status, 405);
    assert_int_equal(onboarding_render(out, 64, "/", 1, false, true, "/c", NULL, 0, NULL, 0, NULL,
                                       0, &status, &blen),
                     -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_for),
        cmocka_unit_test(test_render),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
