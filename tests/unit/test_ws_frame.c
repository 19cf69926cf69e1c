/* test_ws_frame.c - shared/ws_frame: WebSocket messages and payload bytes counted from the
 * frames as they pass, whatever the split: masked and unmasked, 7/16/64-bit lengths,
 * fragmented messages, control frames between fragments, and broken frames stopping the walk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shared/ws_frame.h"

struct ws_case {
    const char *note;
    const uint8_t *in;
    size_t len;
    uint64_t messages, bytes, control;
    bool invalid;
};

/* "hi" unmasked text; "yo!" masked binary (mask 01 02 03 04) */
static const uint8_t TWO_MESSAGES[] = {0x81, 0x02, 'h', 'i', 0x82, 0x83, 1, 2, 3, 4, 'y' ^ 1,
                                       'o' ^ 2, '!' ^ 3};
/* "ab" + "c" fragmented text with a ping (payload "p") between the fragments, then close */
static const uint8_t FRAGMENTED[] = {0x01, 0x02, 'a', 'b', 0x89, 0x01, 'p', 0x80, 0x01, 'c',
                                     0x88, 0x00};
/* a 300-byte binary frame (16-bit length) */
static uint8_t LEN16[4 + 300] = {0x82, 126, 0x01, 0x2c};
/* a 70,000-byte binary frame (64-bit length) */
static uint8_t LEN64[10 + 70000] = {0x82, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70};
/* an empty text message */
static const uint8_t EMPTY[] = {0x81, 0x00};
/* reserved opcode 3 */
static const uint8_t RESERVED[] = {0x83, 0x00, 0x81, 0x00};
/* a fragmented ping (control frames must not be fragmented) */
static const uint8_t FRAG_PING[] = {0x09, 0x00};

static const struct ws_case cases[] = {
    {"two messages, unmasked and masked", TWO_MESSAGES, sizeof(TWO_MESSAGES), 2, 5, 0, false},
    {"a fragmented message with a ping between, then close", FRAGMENTED, sizeof(FRAGMENTED), 1,
     3, 2, false},
    {"16-bit length", LEN16, sizeof(LEN16), 1, 300, 0, false},
    {"64-bit length", LEN64, sizeof(LEN64), 1, 70000, 0, false},
    {"an empty message", EMPTY, sizeof(EMPTY), 1, 0, 0, false},
    {"reserved opcode stops the walk", RESERVED, sizeof(RESERVED), 0, 0, 0, true},
    {"a fragmented control frame stops the walk", FRAG_PING, sizeof(FRAG_PING), 0, 0, 0, true},
};

static void check(const struct ws_case *c, const struct ws_frame_count *w, const char *how)
{
    if (w->messages != c->messages || w->bytes != c->bytes || w->control != c->control ||
        w->invalid != c->invalid)
        fail_msg("%s (%s): messages %llu bytes %llu control %llu invalid %d", c->note, how,
                 (unsigned long long)w->messages, (unsigned long long)w->bytes,
                 (unsigned long long)w->control, w->invalid);
}

/* every case whole, split at every point, and byte by byte */
static void test_ws_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct ws_case *c = &cases[i];
        struct ws_frame_count w;
        size_t step = c->len > 1000 ? 997 : 1; /* the long frame: a sample of split points */

        for (size_t split = 0; split <= c->len; split += step) {
            memset(&w, 0, sizeof(w));
            ws_frame_count_feed(&w, c->in, split);
            ws_frame_count_feed(&w, c->in + split, c->len - split);
            check(c, &w, "split");
        }
        memset(&w, 0, sizeof(w));
        for (size_t k = 0; k < c->len; k++)
            ws_frame_count_feed(&w, c->in + k, 1);
        check(c, &w, "byte by byte");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_cases),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
