/* test_mb_hist.c - mitmd-bench's log-bucket histogram: bucket bounds tile the value range,
 * relative error stays under 1/64, percentiles of known distributions, merge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "bench/mb_hist.h"

static void test_mb_hist_buckets_tile(void **state)
{
    (void)state;
    assert_int_equal(mb_hist_bucket_low(0), 0);
    for (unsigned i = 0; i + 1 < MB_HIST_BUCKETS; i++) {
        /* consecutive buckets touch, never overlap */
        assert_true(mb_hist_bucket_low(i) <= mb_hist_bucket_high(i));
        assert_true(mb_hist_bucket_high(i) + 1 == mb_hist_bucket_low(i + 1));
        assert_int_equal(mb_hist_bucket_of(mb_hist_bucket_low(i)), i);
        assert_int_equal(mb_hist_bucket_of(mb_hist_bucket_high(i)), i);
    }
    assert_true(mb_hist_bucket_high(MB_HIST_BUCKETS - 1) == UINT64_MAX);
    assert_int_equal(mb_hist_bucket_of(UINT64_MAX), MB_HIST_BUCKETS - 1);
}

static void test_mb_hist_precision(void **state)
{
    static const uint64_t values[] = {0,
                                      1,
                                      63,
                                      64,
                                      65,
                                      127,
                                      128,
                                      1000,
                                      4095,
                                      123456,
                                      999999999,
                                      1ull << 40,
                                      (1ull << 63) + 12345};

    (void)state;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        unsigned b = mb_hist_bucket_of(values[i]);
        uint64_t width = mb_hist_bucket_high(b) - mb_hist_bucket_low(b);

        assert_true(values[i] >= mb_hist_bucket_low(b) && values[i] <= mb_hist_bucket_high(b));
        /* width/low <= 1/64: percentiles are within ~1.6% */
        assert_true(width * 64 <= mb_hist_bucket_low(b) || values[i] < 64);
    }
}

static void test_mb_hist_percentiles(void **state)
{
    struct mb_hist *h = malloc(sizeof(*h));
    uint64_t p50, p99;

    (void)state;
    assert_non_null(h);
    mb_hist_init(h);
    assert_int_equal(mb_hist_percentile(h, 50), 0); /* empty */
    for (uint64_t v = 1; v <= 10000; v++)
        mb_hist_record(h, v * 1000); /* 1 us .. 10 ms, uniform */
    p50 = mb_hist_percentile(h, 50);
    p99 = mb_hist_percentile(h, 99);
    assert_true(p50 >= 5000000 && p50 <= 5000000 + 5000000 / 64);
    assert_true(p99 >= 9900000 && p99 <= 9900000 + 9900000 / 64);
    assert_int_equal(mb_hist_percentile(h, 100), 10000000);
    assert_int_equal(h->min, 1000);
    assert_int_equal(h->count, 10000);
    free(h);
}

static void test_mb_hist_merge(void **state)
{
    struct mb_hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    mb_hist_init(a);
    mb_hist_init(b);
    for (int i = 0; i < 99; i++)
        mb_hist_record(a, 100);
    mb_hist_record(b, 1000000); /* one slow request in another thread */
    mb_hist_merge(a, b);
    assert_int_equal(a->count, 100);
    assert_int_equal(a->max, 1000000);
    assert_int_equal(mb_hist_percentile(a, 99), 100);
    assert_int_equal(mb_hist_percentile(a, 99.5), 1000000);
    mb_hist_init(b);
    mb_hist_merge(a, b); /* merging an empty histogram changes nothing */
    assert_int_equal(a->min, 100);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mb_hist_buckets_tile),
        cmocka_unit_test(test_mb_hist_precision),
        cmocka_unit_test(test_mb_hist_percentiles),
        cmocka_unit_test(test_mb_hist_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
