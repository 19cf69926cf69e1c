/* flowfilter.h - mitmproxy's flow filter language (`~d api.test & !~c 200`), compiled once
 * into a small array of nodes and evaluated against a struct flow without allocating.
 * Owns the parser, the compiled program and its PCRE2 regexes (JIT when available). Called
 * at start-up (compile, check) by the master and the workers, per flow by the worker. Never
 * reads or changes a flow; never allocates after flowfilter_compile.
 *
 * Grammar (mitmproxy 8.1.1's flowfilter.py, lowest precedence first):
 *   expr    := or_expr { or_expr }          juxtaposition is AND, weaker than |
 *   or_expr := and_expr { "|" and_expr }
 *   and_expr:= unary { "&" unary }
 *   unary   := "!" unary | "(" expr ")" | "~" NAME [ARG] | REGEX (a bare REGEX is ~u REGEX)
 *   REGEX   := a word of bytes other than whitespace and ( ) ~ ' "  (kept as written), or
 *              '...' / "..." where \t \n \f \r become those characters and \X becomes X, as
 *              pyparsing's QuotedString does for mitmproxy (write \\d for the regex \d)
 * Operators with a REGEX: ~b ~bq ~bs ~d ~dst ~h ~hq ~hs ~m ~src ~t ~tq ~ts ~u (and ~meta
 * ~marker ~comment); with a status code: ~c; without: ~a ~all ~dns ~e ~http ~marked ~q
 * ~replay ~replayq ~replays ~s ~tcp ~websocket. See flowfilter.c for each one's meaning. */
#ifndef MITMD_WORKER_FLOWFILTER_H
#define MITMD_WORKER_FLOWFILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "worker/flow.h"

#define FLOWFILTER_MAX_LEN 4096  /* longest expression accepted (bytes) */
#define FLOWFILTER_MAX_NODES 256 /* operators and operands in one expression */
#define FLOWFILTER_MAX_DEPTH 32  /* nesting of ( and ! */

struct flowfilter;

/* flowfilter_compile parses `expr` (NUL-terminated) and compiles its regexes. On success
 * returns 0 and stores a new program in `*out` (free it with flowfilter_free). On failure
 * returns -EINVAL (or -ENOMEM) and writes one line into `err` (when errlen > 0) of the form
 * "filter: EXPR: WHAT at column N" (N counts bytes from 1). May block only in the sense of
 * compiling regexes; allocates the program. */
int flowfilter_compile(const char *expr, struct flowfilter **out, char *err, size_t errlen);

/* flowfilter_check compiles `expr` and throws the program away: the start-up check the
 * master runs before it starts any worker. Returns 0, or -EINVAL/-ENOMEM with the one-line
 * message of flowfilter_compile in `err`. */
int flowfilter_check(const char *expr, char *err, size_t errlen);

/* flowfilter_free frees a program; NULL is a no-op. */
void flowfilter_free(struct flowfilter *ff);

/* flowfilter_match returns whether flow `f` matches `ff`. A NULL program matches every flow.
 * Never allocates; uses scratch space inside `ff`, so one program is evaluated by one thread
 * at a time (each worker compiles its own). A regex that exceeds PCRE2's match limit counts
 * as no match. */
bool flowfilter_match(struct flowfilter *ff, const struct flow *f);

/* struct flowfilter_memo caches what every ~d of a rule set reads from one flow (the URL's
 * host and the Host field's), so that a set of filters finds them once per flow. Zero it
 * before the first match of a flow, and again when the flow's URL or fields change. */
struct flowfilter_memo {
    bool done;                /* the fields below are set */
    bool url_ok, hdr_found, hdr_ok;
    const char *url_host, *hdr_host; /* point into the flow */
    size_t url_hlen, hdr_hlen;
};

/* flowfilter_match_memo is flowfilter_match sharing `memo` (may be NULL) with other filters
 * evaluated on the same flow. */
bool flowfilter_match_memo(struct flowfilter *ff, const struct flow *f,
                           struct flowfilter_memo *memo);

/* flowfilter_uses_body returns whether the program contains ~b, ~bq or ~bs. mitmd streams
 * bodies and keeps none, so these operators match no flow: callers warn about it once. */
bool flowfilter_uses_body(const struct flowfilter *ff);

/* flowfilter_expr returns the expression the program was compiled from (owned by `ff`). */
const char *flowfilter_expr(const struct flowfilter *ff);

#endif
