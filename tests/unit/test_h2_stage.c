/* test_h2_stage.c - worker/h2_stage.c: a stream direction's staging (fixed base + chain of pool
 * chunks) keeps bytes in order across the base and the chain, never goes beyond its window or
 * its reserved chunks, gives drained chunks back at once, and the pool trims itself when idle. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "worker/h2_stage.h"

#define BASE 65535

static uint8_t byte_at(size_t i) { return (uint8_t)(i * 131 + 7); }

/* fill writes `n` pattern bytes starting at pattern position `from`. */
static void fill(uint8_t *p, size_t from, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = byte_at(from + i);
}

struct stage_case {
    const char *note;
    size_t win;     /* window: BASE = no growth */
    size_t in_step; /* bytes per append (a DATA chunk) */
    size_t out_step; /* bytes per read */
    size_t total;   /* bytes moved through */
};

static const struct stage_case CASES[] = {
    {"base only: DATA-sized appends, odd reads", BASE, 16384, 1000, 1 << 20},
    {"base only: appends that wrap the base tail (compaction)", BASE, 16383, 16384, 1 << 20},
    {"grown to 1 MiB: chain in use, reads smaller than appends", 1 << 20, 16384, 4096, 8 << 20},
    {"grown to 1 MiB: one-byte reads at first, then large", 1 << 20, 9000, 1, 200000},
    {"grown to 16 MiB: reads larger than chunks", 16 << 20, 16384, 40000, 40 << 20},
};

/* run_case keeps the stage as full as its window allows, reads in `out_step`s, and checks
 * every byte's order; the chain never holds more chunks than reserved. */
static void run_case(const struct stage_case *tc)
{
    struct h2_chunks c;
    struct h2_stage s;
    uint8_t *base = malloc(BASE);
    uint8_t *in = malloc(tc->in_step), *out = malloc(tc->out_step);
    size_t wrote = 0, read = 0, resv = 0;

    print_message("%s\n", tc->note);
    assert_non_null(base);
    assert_int_equal(h2_chunks_init(&c, 4096), 0);
    h2_stage_init(&s, base, BASE);
    if (tc->win > BASE) {
        resv = h2_chunks_for_window(tc->win);
        assert_true(h2_chunks_reserve(&c, resv));
        s.resv = (uint32_t)resv;
        s.win = (uint32_t)tc->win;
    }
    while (read < tc->total) {
        while (wrote < tc->total) {
            size_t n = tc->total - wrote < tc->in_step ? tc->total - wrote : tc->in_step;

            fill(in, wrote, n);
            if (h2_stage_used(&s) + n > tc->win) {
                /* beyond the window: refused whole, nothing staged */
                size_t before = h2_stage_used(&s);

                assert_int_equal(h2_stage_append(&s, &c, in, n), -ENOSPC);
                assert_int_equal(h2_stage_used(&s), before);
                break;
            }
            assert_int_equal(h2_stage_append(&s, &c, in, n), 0);
            wrote += n;
            assert_true(s.chain_chunks <= s.resv);
            assert_true(c.used <= c.resv);
        }
        {
            size_t n = h2_stage_read(&s, &c, out, tc->out_step);

            assert_true(n > 0);
            for (size_t i = 0; i < n; i++)
                if (out[i] != byte_at(read + i))
                    fail_msg("byte %zu out of order", read + i);
            read += n;
        }
    }
    assert_int_equal(h2_stage_used(&s), 0);
    assert_int_equal(c.used, 0); /* drained chunks went back */
    assert_int_equal(h2_stage_dispose(&s, &c), resv);
    assert_int_equal(c.resv, 0);
    h2_chunks_dispose(&c);
    free(base);
    free(in);
    free(out);
}

static void test_stage_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++)
        run_case(&CASES[i]);
}

/* A stage without a reservation never takes a chunk, even with its window raised by mistake;
 * peek and consume see the base before the chain. */
static void test_stage_no_reservation(void **state)
{
    struct h2_chunks c;
    struct h2_stage s;
    static uint8_t base[BASE];
    static uint8_t in[BASE + 10];
    const uint8_t *p;

    (void)state;
    assert_int_equal(h2_chunks_init(&c, 8), 0);
    h2_stage_init(&s, base, BASE);
    s.win = BASE + 10; /* no chunks reserved */
    fill(in, 0, sizeof(in));
    assert_int_equal(h2_stage_append(&s, &c, in, sizeof(in)), -ENOSPC);
    assert_int_equal(c.used, 0);
    h2_stage_consume(&s, &c, h2_stage_used(&s));
    assert_int_equal(h2_stage_peek(&s, &p), 0);
    assert_null(p);
    h2_chunks_dispose(&c);
}

/* The pool backs only what it has: reservations beyond it fail whole; chunks are handed out
 * within reservations, and the pool restarts (trimmed) once idle. */
static void test_chunks_reserve(void **state)
{
    struct h2_chunks c;
    struct h2_stage s;
    static uint8_t base[BASE];
    uint8_t *big = malloc(4 << 20);
    size_t k = h2_chunks_for_window(4 << 20);

    (void)state;
    assert_non_null(big);
    assert_int_equal(h2_chunks_init(&c, 0), -EINVAL);
    assert_int_equal(h2_chunks_init(&c, 400), 0);
    assert_true(h2_chunks_reserve(&c, 300));
    assert_false(h2_chunks_reserve(&c, 101));
    assert_true(h2_chunks_reserve(&c, 100));
    h2_chunks_unreserve(&c, 400);
    assert_int_equal(c.resv, 0);

    h2_stage_init(&s, base, BASE);
    assert_true(h2_chunks_reserve(&c, k));
    s.resv = (uint32_t)k;
    s.win = 4 << 20;
    fill(big, 0, 4 << 20);
    assert_int_equal(h2_stage_append(&s, &c, big, BASE), 0);  /* the base */
    assert_int_equal(h2_stage_append(&s, &c, big + BASE, (4 << 20) - BASE), 0); /* the chain */
    assert_true(c.used > 64 && c.used <= k);
    assert_true(c.hw == c.used);
    h2_stage_consume(&s, &c, h2_stage_used(&s));
    assert_int_equal(c.used, 0);
    assert_int_equal(c.hw, 0); /* idle: trimmed, bump allocation restarts */
    assert_null(c.free_list);
    assert_int_equal(h2_stage_dispose(&s, &c), k);
    h2_chunks_dispose(&c);
    h2_chunks_dispose(&c); /* twice is harmless */
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage_cases),
        cmocka_unit_test(test_stage_no_reservation),
        cmocka_unit_test(test_chunks_reserve),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
