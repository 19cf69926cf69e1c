/* rules.c - see rules.h. Each kind is an array of compiled specs (parsed by rules_parse.c, layout
 * in rules_internal.h); a verdict is a walk over them with their filters. map_remote is re.sub
 * done with PCRE2: the replacement template is parsed at start into literal pieces and group
 * numbers, and the substitution loop follows Python 3.7+ for empty matches (pcre2demo's
 * NOTEMPTY_ATSTART retry). This file owns the lifecycle, verdicts and stats. */
#include "worker/rules.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shared/msg.h"
#include "shared/target_parse.h"
#include "worker/rules_internal.h"

#define RULES_MATCH_LIMIT 200000

static_assert(RULES_STATS_MAX == MSG_STAT_RULE_LAST - MSG_STAT_RULE_0 + 1, "one slot per rule");

static const char *const rules_names[RULES_KIND_COUNT] = {
    "modify_headers", "map_remote",   "block_list", "inject_latency",
    "inject_error",   "inject_fault", "map_local",  "modify_body",
};

const char *rules_kind_name(enum rules_kind kind)
{
    return kind < RULES_KIND_COUNT ? rules_names[kind] : "?";
}

struct rules *rules_new(void)
{
    struct rules *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->md = pcre2_match_data_create(100, NULL); /* groups \1..\99 */
    r->mctx = pcre2_match_context_create(NULL);
    if (r->md == NULL || r->mctx == NULL) {
        rules_free(r);
        return NULL;
    }
    pcre2_set_match_limit(r->mctx, RULES_MATCH_LIMIT);
    r->body_limit = RULES_BODY_LIMIT_DEFAULT;
    return r;
}

void rules_spec_dispose(struct rules_spec *s)
{
    flowfilter_free(s->filter);
    pcre2_code_free(s->re);
    free(s->lit);
    free(s->owned_name);
    free(s->owned_value);
    free(s->owned_lname);
    maplocal_free(s->ml);
}

void rules_free(struct rules *r)
{
    if (r == NULL)
        return;
    for (int k = 0; k < RULES_KIND_COUNT; k++) {
        for (int i = 0; i < r->n[k]; i++)
            rules_spec_dispose(&r->specs[k][i]);
        free(r->specs[k]);
    }
    pcre2_match_data_free(r->md);
    pcre2_match_context_free(r->mctx);
    free(r);
}

bool rules_is_empty(const struct rules *r)
{
    for (int k = 0; r != NULL && k < RULES_KIND_COUNT; k++)
        if (r->n[k] > 0)
            return false;
    return true;
}

/* ---- verdicts -------------------------------------------------------------------------- */

/* rules_rand is xorshift64* on the caller's state. */
static uint64_t rules_rand(uint64_t *st)
{
    uint64_t x = *st != 0 ? *st : 0x9e3779b97f4a7c15ull;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return x * 0x2545f4914f6cdd1dull;
}

static bool rules_fires(const struct rules_spec *s, uint64_t *rng)
{
    return s->ppm >= 1000000 || (rules_rand(rng) >> 11) % 1000000 < s->ppm;
}

static bool rules_matches(struct rules_spec *s, const struct flow *f)
{
    return s->filter == NULL || flowfilter_match(s->filter, f);
}

/* rules_matches_m is rules_matches sharing the flow's memo with the other rules. */
static bool rules_matches_m(struct rules_spec *s, const struct flow *f, struct flowfilter_memo *m)
{
    return s->filter == NULL || flowfilter_match_memo(s->filter, f, m);
}

/* rules_sub is re.sub(s->re, template, url) into out. Returns the length or -ENOSPC. */
static ssize_t rules_sub(struct rules *r, const struct rules_spec *s, const char *url, size_t len,
                         char *out, size_t cap)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
    size_t pos = 0, copied = 0, n = 0;
    uint32_t opts = 0;

    for (;;) {
        int rc = s->jit ? pcre2_jit_match(s->re, (PCRE2_SPTR)url, len, pos, opts, r->md, r->mctx)
                        : pcre2_match(s->re, (PCRE2_SPTR)url, len, pos, opts, r->md, r->mctx);

        if (rc == PCRE2_ERROR_NOMATCH && opts != 0) {
            /* no non-empty match at pos after an empty one: step one character */
            if (pos >= len)
                break;
            pos++;
            while (pos < len && ((unsigned char)url[pos] & 0xc0) == 0x80)
                pos++;
            opts = 0;
            continue;
        }
        if (rc < 0)
            break;
        /* copy the text before the match, then the template */
        if (n + (ov[0] - copied) >= cap)
            return -ENOSPC;
        memcpy(out + n, url + copied, ov[0] - copied);
        n += ov[0] - copied;
        for (int p = 0; p < s->n_pieces; p++) {
            const struct rules_piece *pc = &s->pieces[p];
            const char *src = s->lit + pc->off;
            size_t l = pc->len;

            if (pc->group >= 0) {
                if (pc->group >= (rc == 0 ? 100 : rc) || ov[2 * pc->group] == PCRE2_UNSET) {
                    l = 0;
                } else {
                    src = url + ov[2 * pc->group];
                    l = ov[2 * pc->group + 1] - ov[2 * pc->group];
                }
            }
            if (n + l >= cap)
                return -ENOSPC;
            memcpy(out + n, src, l);
            n += l;
        }
        copied = ov[1];
        pos = ov[1];
        opts = ov[0] == ov[1] ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
    }
    if (n + (len - copied) >= cap)
        return -ENOSPC;
    memcpy(out + n, url + copied, len - copied);
    n += len - copied;
    out[n] = '\0';
    return (ssize_t)n;
}

ssize_t rules_map_url(struct rules *r, const struct flow *f, const char *url, size_t url_len,
                      char *out, size_t cap)
{
    const char *cur = url;
    size_t n = url_len;
    char *bufs[2] = {r->url, r->url2};
    int which = 0;

    for (int i = 0; i < r->n[RULES_MAP_REMOTE]; i++) {
        struct rules_spec *s = &r->specs[RULES_MAP_REMOTE][i];
        ssize_t got;

        if (!rules_matches(s, f))
            continue;
        got = rules_sub(r, s, cur, n, bufs[which], sizeof(r->url));
        if (got < 0)
            return got;
        cur = bufs[which];
        n = (size_t)got;
        which ^= 1;
    }
    if (n >= cap)
        return -ENOSPC;
    memmove(out, cur, n);
    out[n] = '\0';
    return (ssize_t)n;
}

/* origin_prefix_hit returns whether `s`'s regex has a complete or partial match starting in
 * the `len` bytes at `url` (see rules_may_remap_host). */
static bool origin_prefix_hit(struct rules *r, const struct rules_spec *s, const char *url,
                              size_t len)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
    /* the interpreter: the JIT code was compiled for complete matches only */
    int rc = pcre2_match(s->re, (PCRE2_SPTR)url, len, 0, PCRE2_PARTIAL_HARD | PCRE2_NO_JIT, r->md,
                         r->mctx);

    if (rc != PCRE2_ERROR_PARTIAL && (rc < 0 || ov[0] >= len))
        return false; /* no match, or an empty one after the last '/': in the path */
    if (ov[0] + 1 < len)
        return true;
    /* it starts at the path's first '/': the origin stays unless the replacement begins with
     * something else than '/' */
    return s->n_pieces == 0 || s->pieces[0].group >= 0 || s->pieces[0].len == 0 ||
           s->lit[s->pieces[0].off] != '/';
}

bool rules_may_remap_host(struct rules *r, bool tls, const char *host, uint16_t port)
{
    char url[TARGET_HOST_MAX + 40];
    bool v6 = strchr(host, ':') != NULL; /* an IPv6 literal goes in brackets */
    int n1, n2;

    if (r == NULL || r->n[RULES_MAP_REMOTE] == 0)
        return false;
    n1 = snprintf(url, sizeof(url), "%s://%s%s%s/", tls ? "https" : "http", v6 ? "[" : "", host,
                  v6 ? "]" : "");
    if (n1 < 0 || (size_t)n1 >= sizeof(url))
        return true;
    for (int i = 0; i < r->n[RULES_MAP_REMOTE]; i++)
        if (origin_prefix_hit(r, &r->specs[RULES_MAP_REMOTE][i], url, (size_t)n1))
            return true;
    n2 = snprintf(url, sizeof(url), "%s://%s%s%s:%u/", tls ? "https" : "http", v6 ? "[" : "", host,
                  v6 ? "]" : "", (unsigned)port);
    if (n2 < 0 || (size_t)n2 >= sizeof(url))
        return true;
    for (int i = 0; i < r->n[RULES_MAP_REMOTE]; i++)
        if (origin_prefix_hit(r, &r->specs[RULES_MAP_REMOTE][i], url, (size_t)n2))
            return true;
    return false;
}

/* rules_header_edits collects the modify_headers specs that match `f` (all evaluated before
 * any edit, as mitmproxy). */
static void rules_header_edits(struct rules *r, const struct flow *f, struct rules_verdict *out,
                               struct flowfilter_memo *memo)
{
    for (int i = 0; i < r->n[RULES_MODIFY_HEADERS]; i++) {
        struct rules_spec *s = &r->specs[RULES_MODIFY_HEADERS][i];

        if (rules_matches_m(s, f, memo)) {
            s->hits++;
            out->edits[out->n_edits++] = &s->hdr;
        }
    }
}

int rules_on_request_head(struct rules *r, struct flow *f, uint64_t *rng, struct rules_verdict *out)
{
    struct rules_spec *blocked = NULL;
    struct flowfilter_memo memo = {.done = false};
    int err = 0;

    memset(out, 0, offsetof(struct rules_verdict, edits));
    if (r == NULL)
        return 0;
    for (int i = 0; i < r->n[RULES_BLOCK_LIST]; i++) /* every spec runs: the last one wins */
        if (rules_matches_m(&r->specs[RULES_BLOCK_LIST][i], f, &memo))
            blocked = &r->specs[RULES_BLOCK_LIST][i];
    if (blocked != NULL) {
        blocked->hits++;
        out->block_status = blocked->status;
        return 0;
    }
    for (int i = 0; i < r->n[RULES_MAP_REMOTE]; i++) {
        struct rules_spec *s = &r->specs[RULES_MAP_REMOTE][i];
        ssize_t n;

        if (!rules_matches_m(s, f, &memo))
            continue;
        n = rules_sub(r, s, flow_str_ptr(f, f->url), f->url.len, r->url, sizeof(r->url));
        if (n < 0) {
            err = (int)n;
            f->truncated = true;
            continue;
        }
        if ((size_t)n == f->url.len && memcmp(r->url, flow_str_ptr(f, f->url), (size_t)n) == 0)
            continue;
        {
            struct flow_str old = f->url;

            if (flow_str_set(f, &f->url, r->url, (size_t)n) != 0) {
                f->url = old; /* keep the whole old URL rather than a cut new one */
                err = -ENOSPC;
                continue;
            }
        }
        s->hits++;
        out->url_changed = true;
        f->url_from_host = false; /* the new URL is the request's (mitmproxy sets request.url) */
        memo.done = false; /* the URL changed: its host is found again */
    }
    for (int i = 0; i < r->n[RULES_MAP_LOCAL]; i++) { /* answered locally: nothing else */
        struct rules_spec *s = &r->specs[RULES_MAP_LOCAL][i];

        if (rules_matches_m(s, f, &memo) &&
            maplocal_matches(s->ml, flow_str_ptr(f, f->url), f->url.len)) {
            out->map_local = i + 1;
            return err;
        }
    }
    rules_header_edits(r, f, out, &memo);
    for (int k = RULES_INJECT_ERROR; k <= RULES_INJECT_FAULT && out->fault == RULES_FAULT_NONE; k++)
        for (int i = 0; i < r->n[k]; i++) {
            struct rules_spec *s = &r->specs[k][i];

            if (rules_matches_m(s, f, &memo) && rules_fires(s, rng)) {
                s->hits++;
                out->fault = s->fault;
                out->fault_status = s->status;
                out->fault_why = k == RULES_INJECT_ERROR ? "injected by inject_error"
                                                         : "injected by inject_fault";
                break;
            }
        }
    for (int i = 0; i < r->n[RULES_INJECT_LATENCY]; i++) {
        struct rules_spec *s = &r->specs[RULES_INJECT_LATENCY][i];
        int64_t d = s->delay_ms;

        if (!rules_matches_m(s, f, &memo))
            continue;
        if (s->jitter_ms > 0)
            d += (int64_t)(rules_rand(rng) % (2 * (uint64_t)s->jitter_ms + 1)) - s->jitter_ms;
        out->delay_ms = d > 0 ? (uint32_t)d : 0;
        s->hits++;
        break;
    }
    return err;
}

void rules_on_response_head(struct rules *r, struct flow *f, struct rules_verdict *out)
{
    memset(out, 0, offsetof(struct rules_verdict, edits));
    if (r == NULL || f->error[0] != '\0')
        return;
    rules_header_edits(r, f, out, NULL);
}

bool rules_verdict_drops(const struct rules_verdict *v, const char *name, size_t name_len)
{
    for (int i = 0; i < v->n_edits; i++)
        if (v->edits[i]->name_len == name_len &&
            strncasecmp(v->edits[i]->name, name, name_len) == 0)
            return true;
    return false;
}

int rules_stats(const struct rules *r, struct rules_stat *out, int max)
{
    int n = 0;

    for (int k = 0; r != NULL && k < RULES_KIND_COUNT; k++)
        for (int i = 0; i < r->n[k]; i++, n++)
            if (n < max)
                out[n] = (struct rules_stat){(enum rules_kind)k, i, r->specs[k][i].spec,
                                             r->specs[k][i].hits};
    return n;
}

int rules_map_local(struct rules *r, const struct rules_verdict *v, const struct flow *f,
                    const char *range, size_t range_len, bool head, struct maplocal_answer *a)
{
    struct maplocal_answer miss;
    bool escaped = false;

    memset(&miss, 0, sizeof(miss));
    miss.fd = -1;
    miss.status = 404;
    miss.why = "no local file for this URL (map_local)";
    /* as mitmproxy: every matching spec in order, the first existing file wins, else 404 */
    for (int i = v->map_local - 1; r != NULL && i >= 0 && i < r->n[RULES_MAP_LOCAL]; i++) {
        struct rules_spec *s = &r->specs[RULES_MAP_LOCAL][i];

        if (!rules_matches(s, f) || !maplocal_matches(s->ml, flow_str_ptr(f, f->url), f->url.len))
            continue;
        if (maplocal_open(s->ml, flow_str_ptr(f, f->url), f->url.len, range, range_len, head, a) ==
            1) {
            s->hits++;
            return a->status;
        }
        if (a->status == 403 && !escaped) {
            escaped = true;
            miss = *a;
        }
    }
    if (v->map_local > 0 && v->map_local <= r->n[RULES_MAP_LOCAL])
        r->specs[RULES_MAP_LOCAL][v->map_local - 1].hits++;
    *a = miss;
    return a->status;
}

void rules_export_stats(const struct rules *r, uint64_t *v, int max)
{
    int n = 0;

    for (int k = 0; r != NULL && k < RULES_KIND_COUNT; k++)
        for (int i = 0; i < r->n[k] && n < max; i++)
            v[n++] = r->specs[k][i].hits;
}

int rules_format_stats(const struct config *cfg, const uint64_t *hits, int max, char *out,
                       size_t cap)
{
    const int counts[RULES_KIND_COUNT] = {
        cfg->n_modify_headers, cfg->n_map_remote,   cfg->n_block_list, cfg->n_inject_latency,
        cfg->n_inject_error,   cfg->n_inject_fault, cfg->n_map_local,  cfg->n_modify_body,
    };
    size_t used = 0;
    int n = 0;

    if (cap > 0)
        out[0] = '\0';
    for (int k = 0; k < RULES_KIND_COUNT; k++)
        for (int i = 0; i < counts[k]; i++, n++) {
            int w;

            if (n >= max || used >= cap)
                continue;
            w = snprintf(out + used, cap - used, " %s#%d=%llu", rules_names[k], i + 1,
                         (unsigned long long)hits[n]);
            if (w > 0)
                used += (size_t)w < cap - used ? (size_t)w : cap - used - 1;
        }
    return n;
}

size_t rules_body_limit(const struct rules *r) { return r != NULL ? r->body_limit : 0; }

const char *rules_body_limit_note(const struct rules *r)
{
    return r != NULL && r->body_limit_by_stream
               ? "modify_body: body over stream_large_bodies, passed unchanged"
               : "modify_body: body over body_size_limit, passed unchanged";
}

bool rules_body_wanted(struct rules *r, const struct flow *f)
{
    for (int i = 0; r != NULL && i < r->n[RULES_MODIFY_BODY]; i++)
        if (rules_matches(&r->specs[RULES_MODIFY_BODY][i], f))
            return true;
    return false;
}

int rules_body_apply(struct rules *r, const struct flow *f, const uint8_t *body, size_t len,
                     uint8_t **out, size_t *out_len)
{
    size_t max = 4 * r->body_limit + 1, n = len;
    uint8_t *cur = malloc(len + 1);

    if (cur == NULL)
        return -ENOMEM;
    memcpy(cur, body, len);
    for (int i = 0; i < r->n[RULES_MODIFY_BODY]; i++) {
        struct rules_spec *s = &r->specs[RULES_MODIFY_BODY][i];
        size_t cap = n + n / 2 + 4096;
        ssize_t got = -ENOSPC;
        uint8_t *next = NULL;

        if (!rules_matches(s, f))
            continue;
        s->hits++;
        while (got == -ENOSPC && cap <= 2 * max) {
            uint8_t *grown = realloc(next, cap);

            if (grown == NULL) {
                free(next);
                free(cur);
                return -ENOMEM;
            }
            next = grown;
            got = rules_sub(r, s, (const char *)cur, n, (char *)next, cap);
            cap *= 2;
        }
        if (got < 0 || (size_t)got > max) {
            free(next);
            free(cur);
            return -E2BIG;
        }
        free(cur);
        cur = next;
        n = (size_t)got;
    }
    *out = cur;
    *out_len = n;
    return 0;
}
