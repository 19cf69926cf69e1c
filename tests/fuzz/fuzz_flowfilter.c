/* fuzz_flowfilter.c - libFuzzer target for worker/flowfilter: the input up to the first NUL is
 * an expression, the rest fills a flow (method, URL, a request and a response field, the
 * status). Invariants: a failure is -EINVAL with one line "filter: ...: WHY at column N",
 * N within the expression; a compiled program answers the same twice; when "!(EXPR)" also
 * compiles it answers the opposite; "EXPR | ~all" matches and "EXPR & !~all" does not. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/flowfilter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct flow fz_flow;

/* fz_take returns the next `want` bytes (fewer at the end) of the tail. */
static const uint8_t *fz_take(const uint8_t **p, size_t *left, size_t want, size_t *got)
{
    const uint8_t *r = *p;

    *got = want < *left ? want : *left;
    *p += *got;
    *left -= *got;
    return r;
}

static void fz_fill(const uint8_t *p, size_t n)
{
    struct flow *f = &fz_flow;
    const uint8_t *s;
    size_t got;

    flow_init(f);
    flow_begin(f);
    s = fz_take(&p, &n, 8, &got);
    flow_str_set(f, &f->method, s, got);
    s = fz_take(&p, &n, 64, &got);
    flow_str_set(f, &f->url, s, got);
    s = fz_take(&p, &n, 32, &got);
    flow_add_header(f, FLOW_REQUEST, "Host", 4, s, got);
    s = fz_take(&p, &n, 32, &got);
    flow_add_header(f, FLOW_RESPONSE, "Content-Type", 12, s, got);
    s = fz_take(&p, &n, 2, &got);
    f->status = got == 2 ? (s[0] << 8 | s[1]) % 1000 : 0;
    s = fz_take(&p, &n, 16, &got);
    if (got > 0)
        flow_set_error(f, (const char *)memcpy((char[17]){0}, s, got));
}

static void fz_check_error(const char *expr, const char *err)
{
    const char *col = NULL;
    unsigned long c;

    /* the last one: the expression echoed in the message may contain the words too */
    for (const char *p = strstr(err, " at column "); p != NULL; p = strstr(p + 1, " at column "))
        col = p;
    if (strncmp(err, "filter: ", 8) != 0 || col == NULL)
        abort();
    c = strtoul(col + 11, NULL, 10);
    if (c == 0 || c > strlen(expr) + 1)
        abort();
}

/* fz_compile_wrapped compiles fmt around expr; returns NULL if it does not compile. */
static struct flowfilter *fz_compile_wrapped(const char *fmt, const char *expr, char *buf,
                                             size_t cap)
{
    struct flowfilter *ff = NULL;
    char err[512];

    snprintf(buf, cap, fmt, expr);
    return flowfilter_compile(buf, &ff, err, sizeof(err)) == 0 ? ff : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char expr[FLOWFILTER_MAX_LEN + 2], buf[FLOWFILTER_MAX_LEN + 32];
    const uint8_t *nul = memchr(data, '\0', size);
    size_t elen = nul != NULL ? (size_t)(nul - data) : size;
    struct flowfilter *ff = NULL, *w;
    char err[512];
    bool m;
    int e;

    if (elen > FLOWFILTER_MAX_LEN + 1)
        return 0;
    memcpy(expr, data, elen);
    expr[elen] = '\0';
    fz_fill(nul != NULL ? nul + 1 : data + size, nul != NULL ? size - elen - 1 : 0);
    err[0] = '\0';
    e = flowfilter_compile(expr, &ff, err, sizeof(err));
    if (e != 0) {
        if (e != -EINVAL || ff != NULL)
            abort();
        fz_check_error(expr, err);
        return 0;
    }
    m = flowfilter_match(ff, &fz_flow);
    if (flowfilter_match(ff, &fz_flow) != m)
        abort();
    if ((w = fz_compile_wrapped("!(%s)", expr, buf, sizeof(buf))) != NULL) {
        if (flowfilter_match(w, &fz_flow) == m)
            abort();
        flowfilter_free(w);
    }
    if ((w = fz_compile_wrapped("(%s) | ~all", expr, buf, sizeof(buf))) != NULL) {
        if (!flowfilter_match(w, &fz_flow))
            abort();
        flowfilter_free(w);
    }
    if ((w = fz_compile_wrapped("(%s) & !~all", expr, buf, sizeof(buf))) != NULL) {
        if (flowfilter_match(w, &fz_flow))
            abort();
        flowfilter_free(w);
    }
    flowfilter_free(ff);
    return 0;
}
