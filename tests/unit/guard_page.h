/* guard_page.h - test inputs that end right before a PROT_NONE page, so that a parser reading
 * one byte past its input crashes the test instead of passing by luck (picohttpparser's
 * trick). For cmocka group setup/teardown; include after <cmocka.h>. Header-only: every
 * parser test includes it. */
#ifndef MITMD_TESTS_GUARD_PAGE_H
#define MITMD_TESTS_GUARD_PAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUARD_PAGES 32 /* readable pages before the guard; inputs up to 128 KiB */

struct guard {
    uint8_t *base;
    size_t size; /* readable bytes before the guard page */
};

/* guard_setup maps GUARD_PAGES readable pages and a PROT_NONE one after them into *state. */
static inline int guard_setup(void **state)
{
    struct guard *g = calloc(1, sizeof(*g));
    long page = sysconf(_SC_PAGESIZE);

    if (g == NULL || page <= 0) {
        free(g);
        return -1;
    }
    g->size = (size_t)page * GUARD_PAGES;
    g->base = mmap(NULL, g->size + (size_t)page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->base == MAP_FAILED) {
        free(g);
        return -1;
    }
    if (mprotect(g->base + g->size, (size_t)page, PROT_NONE) != 0) {
        munmap(g->base, g->size + (size_t)page);
        free(g);
        return -1;
    }
    *state = g;
    return 0;
}

static inline int guard_teardown(void **state)
{
    struct guard *g = *state;

    munmap(g->base, g->size + (size_t)sysconf(_SC_PAGESIZE));
    free(g);
    return 0;
}

/* guard_tail copies `n` bytes of `src` so that they end exactly at the guard page and returns
 * where they start. */
static inline const void *guard_tail(struct guard *g, const void *src, size_t n)
{
    uint8_t *dst;

    assert_true(n <= g->size);
    dst = g->base + g->size - n;
    if (n > 0)
        memcpy(dst, src, n);
    return dst;
}

#endif
