/* fuzz_rules.c - libFuzzer target for worker/rules spec parsing: the first byte picks the
 * kind, the rest (up to a NUL) is the spec. Invariants: a refused spec leaves the set empty
 * with one line "KIND: ..."; an accepted one is listed once by rules_stats with its spec, and
 * a request and a response verdict on a fixed flow stay within their bounds. Specs naming an
 * @FILE are skipped (a fuzzer must not read /dev/stdin). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct flow fz_flow;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char spec[2048];
    struct rules_verdict v;
    struct rules_stat st[2];
    struct rules *r;
    enum rules_kind kind;
    uint64_t rng = 1;
    const uint8_t *nul;
    size_t len;
    char err[1024];
    int e;

    if (size < 1)
        return 0;
    kind = (enum rules_kind)(data[0] % RULES_KIND_COUNT);
    nul = memchr(data + 1, '\0', size - 1);
    len = nul != NULL ? (size_t)(nul - data - 1) : size - 1;
    if (len >= sizeof(spec) || ((kind == RULES_MODIFY_HEADERS || kind == RULES_MODIFY_BODY) && memchr(data + 1, '@', len)))
        return 0;
    memcpy(spec, data + 1, len);
    spec[len] = '\0';
    r = rules_new();
    if (r == NULL)
        return 0;
    err[0] = '\0';
    e = rules_add(r, kind, spec, err, sizeof(err));
    if (e != 0) {
        if (e != -EINVAL || !rules_is_empty(r) ||
            strncmp(err, rules_kind_name(kind), strlen(rules_kind_name(kind))) != 0)
            abort();
        rules_free(r);
        return 0;
    }
    if (rules_stats(r, st, 2) != 1 || st[0].kind != kind || strcmp(st[0].spec, spec) != 0)
        abort();
    flow_init(&fz_flow);
    flow_begin(&fz_flow);
    flow_str_set(&fz_flow, &fz_flow.method, "GET", 3);
    flow_str_set(&fz_flow, &fz_flow.url, "https://api.test/v1/items?id=7", 30);
    flow_add_header(&fz_flow, FLOW_REQUEST, "Host", 4, "api.test", 8);
    e = rules_on_request_head(r, &fz_flow, &rng, &v);
    if ((e != 0 && e != -ENOSPC) || v.n_edits > 1 || v.delay_ms > RULES_MAX_DELAY_MS ||
        (v.block_status != 0 && (v.block_status < 100 || v.block_status > 999)))
        abort();
    for (int i = 0; i < v.n_edits; i++)
        if (memchr(v.edits[i]->value, '\n', v.edits[i]->value_len) != NULL ||
            v.edits[i]->name_len == 0)
            abort();
    fz_flow.status = 200;
    rules_on_response_head(r, &fz_flow, &v);
    if (v.n_edits > 1 || v.block_status != 0 || v.url_changed)
        abort();
    rules_free(r);
    return 0;
}
