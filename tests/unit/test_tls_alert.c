/* test_tls_alert.c - worker/tls_alert: the alert a client sends in the clear is found in its
 * record stream however the bytes are split; encrypted alerts and non-TLS bytes are not
 * mistaken for one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "worker/tls_alert.h"

struct alert_case {
    const char *note;
    const uint8_t *in;
    size_t len;
    int alert;   /* expected description, -1 none */
    int invalid; /* expected invalid flag */
};

/* a ClientHello-sized handshake record, a CCS, then a plaintext fatal unknown_ca */
static const uint8_t HELLO_CCS_ALERT[] = {
    0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00, /* handshake, 4-byte body */
    0x14, 0x03, 0x03, 0x00, 0x01, 0x01,                   /* change_cipher_spec */
    0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x30,             /* alert fatal unknown_ca (48) */
};
/* TLS 1.2 encrypted alert: type 21 but 26 bytes of ciphertext: not readable, not reported */
static uint8_t ENCRYPTED_ALERT[5 + 26] = {0x15, 0x03, 0x03, 0x00, 0x1a};
/* TLS 1.3: application_data records, then a plaintext bad_certificate */
static const uint8_t APPDATA_ALERT[] = {
    0x17, 0x03, 0x03, 0x00, 0x03, 0xaa, 0xbb, 0xcc, 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x2a,
};
static const uint8_t HTTP[] = "GET / HTTP/1.1\r\n\r\n";
static const uint8_t TOO_LONG[] = {0x17, 0x03, 0x03, 0xff, 0xff};

static const struct alert_case cases[] = {
    {"hello, CCS, plaintext unknown_ca", HELLO_CCS_ALERT, sizeof(HELLO_CCS_ALERT), 48, 0},
    {"TLS 1.2 encrypted alert is not read", ENCRYPTED_ALERT, sizeof(ENCRYPTED_ALERT), -1, 0},
    {"application data, then plaintext bad_certificate", APPDATA_ALERT, sizeof(APPDATA_ALERT),
     42, 0},
    {"HTTP is not TLS", HTTP, sizeof(HTTP) - 1, -1, 1},
    {"record longer than TLS allows", TOO_LONG, sizeof(TOO_LONG), -1, 1},
    {"nothing", NULL, 0, -1, 0},
};

/* every case, fed whole, byte by byte, and split at every point */
static void test_alert_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct alert_case *c = &cases[i];

        for (size_t split = 0; split <= c->len; split++) {
            struct tls_alert_walk w;

            tls_alert_walk_init(&w);
            tls_alert_walk_feed(&w, c->in, split);
            tls_alert_walk_feed(&w, c->in != NULL ? c->in + split : NULL, c->len - split);
            if (w.alert != c->alert || w.invalid != c->invalid)
                fail_msg("%s (split %zu): alert %d invalid %d, want %d %d", c->note, split,
                         w.alert, w.invalid, c->alert, c->invalid);
        }
        {
            struct tls_alert_walk w;

            tls_alert_walk_init(&w);
            for (size_t k = 0; k < c->len; k++)
                tls_alert_walk_feed(&w, c->in + k, 1);
            assert_int_equal(w.alert, c->alert);
            assert_int_equal(w.invalid, c->invalid);
        }
    }
}

static void test_alert_names(void **state)
{
    (void)state;
    assert_string_equal(tls_alert_name(48), "unknown_ca");
    assert_string_equal(tls_alert_name(42), "bad_certificate");
    assert_string_equal(tls_alert_name(250), "unknown alert");
    assert_true(tls_alert_is_untrusted(48));
    assert_true(tls_alert_is_untrusted(45));
    assert_false(tls_alert_is_untrusted(40)); /* handshake_failure: not about our certificate */
    assert_false(tls_alert_is_untrusted(0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alert_cases),
        cmocka_unit_test(test_alert_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
