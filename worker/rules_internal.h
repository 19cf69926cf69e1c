/* rules_internal.h - the compiled form of the rules, shared by the parser (rules_parse.c:
 * specs from the config strings) and the verdicts (rules.c: matching, map_remote, stats).
 * Included only by worker/rules*.c; never by the rest of the worker. */
#ifndef MITMD_WORKER_RULES_INTERNAL_H
#define MITMD_WORKER_RULES_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "worker/flowfilter.h"
#include "worker/maplocal.h"
#include "worker/rules.h"

#define RULES_MAX_PIECES 64 /* literal runs and group references in one replacement */

/* struct rules_piece is one part of a map_remote replacement: a literal or a group. */
struct rules_piece {
    int group; /* -1: literal [off, off + len) of the spec's `lit` */
    uint32_t off, len;
};

struct rules_spec {
    const char *spec;          /* as given (borrowed) */
    struct flowfilter *filter; /* NULL = every flow */
    uint64_t hits;
    /* modify_headers */
    struct rules_header hdr;
    char *owned_name, *owned_value, *owned_lname;
    /* map_local */
    struct maplocal *ml;
    /* map_remote */
    pcre2_code *re;
    bool jit;
    char *lit; /* the replacement's literal bytes */
    struct rules_piece pieces[RULES_MAX_PIECES];
    int n_pieces;
    /* block_list, inject_error, inject_fault */
    int status;
    enum rules_fault fault;
    uint32_t ppm; /* per million of matching requests; 1000000 = always */
    /* inject_latency */
    uint32_t delay_ms, jitter_ms;
};

struct rules {
    struct rules_spec *specs[RULES_KIND_COUNT];
    int n[RULES_KIND_COUNT];
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    char url[FLOW_ARENA_SIZE];  /* map_remote scratch */
    char url2[FLOW_ARENA_SIZE]; /* rules_map_url's second scratch */
    size_t body_limit;          /* body_size_limit (modify_body), or stream_large_bodies when
                                 * that is smaller */
    bool body_limit_by_stream;  /* body_limit is stream_large_bodies */
};

/* rules_spec_dispose frees what `s` owns (filter, regex, strings, map_local); `s` itself is
 * the caller's. Returns nothing. */
void rules_spec_dispose(struct rules_spec *s);

#endif
