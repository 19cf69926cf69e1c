/* test_mb_loop.c - mitmd-bench's set-up backoff (mb_loop.c, included for its static helpers):
 * the pause doubles and is capped, late failures of a batch do not count as a new round,
 * one probe at a time, a completed handshake ends the backoff, 8 failed rounds give up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bench/mb_loop.c"

#define MS (1000000ull)

static void test_mb_loop_backoff_doubles_and_caps(void **state)
{
    static const struct {
        unsigned round;
        uint64_t ns;
        const char *note;
    } cases[] = {
        {1, 10 * MS, "first failed round: the minimum"},   {2, 20 * MS, "doubles"},
        {7, 640 * MS, "the last pause before giving up"},  {8, 1000 * MS, "capped"},
        {1000, 1000 * MS, "no overflow for a huge round"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (mb_loop_backoff_ns(cases[i].round) != cases[i].ns)
            fail_msg("%s: round %u", cases[i].note, cases[i].round);
    }
}

static void test_mb_loop_rounds_and_probe(void **state)
{
    struct mb_loop l;

    (void)state;
    memset(&l, 0, sizeof(l));
    check_connects(&l, 0);
    assert_false(connect_held(&l, 0)); /* nothing happened: no backoff */

    l.env.setup_failed = 4; /* the first batch fails */
    check_connects(&l, 1 * MS);
    assert_int_equal(l.backoff_round, 1);
    assert_true(connect_held(&l, 5 * MS));
    l.env.setup_failed = 6; /* late failures of the same batch, during the pause */
    check_connects(&l, 3 * MS);
    assert_int_equal(l.backoff_round, 1);
    assert_false(connect_held(&l, 11 * MS)); /* pause over: one may open */

    l.probing = true; /* dispatch let one connection open */
    assert_true(connect_held(&l, 12 * MS));
    l.env.setup_failed = 7; /* the probe fails */
    check_connects(&l, 13 * MS);
    assert_int_equal(l.backoff_round, 2);
    assert_false(l.probing);
    assert_true(connect_held(&l, 32 * MS));
    assert_false(connect_held(&l, 33 * MS));

    l.probing = true;
    l.env.setup_ok = 1; /* the next probe completes its handshake: backoff over */
    check_connects(&l, 40 * MS);
    assert_int_equal(l.backoff_round, 0);
    assert_false(l.probing);
    assert_false(connect_held(&l, 40 * MS));
    assert_false(l.gave_up);
}

static void test_mb_loop_success_wins_over_failures(void **state)
{
    struct mb_loop l;

    (void)state;
    memset(&l, 0, sizeof(l));
    l.env.setup_failed = 3; /* a rare failure among successes (same check) */
    l.env.setup_ok = 100;
    check_connects(&l, 1 * MS);
    assert_int_equal(l.backoff_round, 0);
    assert_false(connect_held(&l, 1 * MS));
}

static void test_mb_loop_gives_up(void **state)
{
    struct mb_loop l;
    uint64_t now = 0;

    (void)state;
    memset(&l, 0, sizeof(l));
    for (unsigned round = 1; round <= MB_LOOP_CONNECT_ROUNDS; round++) {
        assert_false(l.gave_up);
        l.env.setup_failed++;
        check_connects(&l, now);
        assert_int_equal(l.backoff_round, round);
        now = l.backoff_until_ns; /* the probe goes out when the pause ends, and fails */
        l.probing = true;
    }
    assert_true(l.gave_up);
    /* The pauses before giving up: 10 + 20 + ... + 640 ms. */
    assert_int_equal(now, 1270 * MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mb_loop_backoff_doubles_and_caps),
        cmocka_unit_test(test_mb_loop_rounds_and_probe),
        cmocka_unit_test(test_mb_loop_success_wins_over_failures),
        cmocka_unit_test(test_mb_loop_gives_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
