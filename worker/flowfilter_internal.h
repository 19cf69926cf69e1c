/* flowfilter_internal.h - the compiled form of a filter, shared by the parser
 * (worker/flowfilter.c) and the evaluator (worker/flowfilter_eval.c). Types only. */
#ifndef MITMD_WORKER_FLOWFILTER_INTERNAL_H
#define MITMD_WORKER_FLOWFILTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/flow.h"
#include "worker/flowfilter.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* PCRE2's work bounds per match: a user's runaway regex costs at most this, then fails. */
#define FLOWFILTER_MATCH_LIMIT 200000
#define FLOWFILTER_DEPTH_LIMIT 2000
/* scratch for the "name: value\r\n" blocks of both messages */
#define FLOWFILTER_HDR_CAP (FLOW_ARENA_SIZE + 2 * FLOW_MAX_HEADERS * 4)

enum ff_op {
    FF_TRUE = 0,
    FF_FALSE,
    FF_AND, /* a && b */
    FF_OR,  /* a || b */
    FF_NOT, /* !a */
    FF_REQ, /* ~q */
    FF_RESP,
    FF_ERR,
    FF_ASSET,
    FF_WEBSOCKET,
    FF_CODE,
    FF_URL,
    FF_DOMAIN,
    FF_METHOD,
    FF_HEAD,
    FF_HEAD_REQ,
    FF_HEAD_RESP,
    FF_CTYPE,
    FF_CTYPE_REQ,
    FF_CTYPE_RESP,
    FF_SRC,
    FF_DST,
    FF_BODY,  /* parse-time only: becomes FF_FALSE */
    FF_EMPTY, /* parse-time only: regex against "", becomes FF_TRUE or FF_FALSE */
};

enum ff_arg { FF_ARG_NONE = 0, FF_ARG_REGEX, FF_ARG_CODE };

#define FF_TEXT (PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF)

struct ff_opdef {
    const char *name;
    uint8_t op;
    uint8_t arg;
    uint32_t flags; /* PCRE2 compile options */
};


struct ff_node {
    uint8_t op;
    bool jit;       /* `re` was JIT-compiled */
    uint16_t a, b;  /* children (FF_AND, FF_OR: a and b; FF_NOT: a) */
    bool icase;     /* `lit` is compared ignoring ASCII case */
    int code;       /* FF_CODE */
    pcre2_code *re; /* regex operators */
    char *lit;      /* the regex is this plain string: searched without PCRE2 */
    uint32_t lit_len;
};

struct flowfilter {
    char *expr;
    struct ff_node *nodes;
    int n_nodes;
    int root;
    bool uses_body;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    char *hdr; /* FLOWFILTER_HDR_CAP bytes of scratch for header blocks */
};

#endif
