/* rules.h - the rules an operator sets on the command line, compiled once at start-up and
 * applied by the relays at fixed points of each exchange (request head, response head), so
 * that HTTP/1.1 and HTTP/2 behave the same. Owns the compiled specs, their filters and per-rule
 * hit counters. Called by worker start-up (rules_compile), the master's start-up check
 * (rules_check) and the relays (rules_on_request_head, rules_on_response_head). Never does I/O
 * or allocates after rules_compile; never touches a socket: the verdict says what to do.
 *
 * Spec syntax (mitmproxy's: the first character is the separator, any character):
 *   --modify-headers [/FILTER]/NAME/[@]VALUE   remove every NAME field, then add NAME: VALUE
 *       unless VALUE is empty; @FILE reads the value from FILE (once, at start; one trailing
 *       newline dropped). NAME and VALUE take Python escapes (\n, \xHH, ...) as mitmproxy
 *       does. Applied to requests (no response yet) and to responses, as in mitmproxy.
 *   --map-remote [|FILTER]|REGEX|REPLACEMENT   re.sub(REGEX, REPLACEMENT, URL): every match,
 *       Python replacement syntax (\1, \g<name>); the URL recorded in the flow changes.
 *   --set block_list=/FILTER/STATUS            answer STATUS (empty body) without contacting
 *       the upstream; 444 closes the client connection without an answer. STATUS is one of
 *       mitmproxy's known codes. As in mitmproxy the spec is lower-cased before parsing.
 *   mitmd's own, for load tests (same separator style):
 *   --set inject_latency=/FILTER/DELAY[~JITTER]  hold the request DELAY (+- up to JITTER,
 *       uniformly) before it goes upstream. DELAY and JITTER: 250, 250ms, 2s, 1.5s.
 *   --set inject_error=/FILTER/STATUS[@PERCENT]  answer STATUS (100..599) instead of going
 *       upstream, for PERCENT (default 100, decimals allowed) of the matching requests.
 *   --set inject_fault=/FILTER/PERCENT/ACTION     as the issue names it: ACTION is a status,
 *       `reset` (abort the client connection; HTTP/2: RST_STREAM) or `stall` (hold the
 *       response until the idle timeout, then 504). inject_error=/F/503@5 is
 *       inject_fault=/F/5/503.
 *   --map-local [|FILTER]|URL-REGEX|PATH       answer from a file or directory
 *       (worker/maplocal.h; rules_map_local).
 *   --modify-body [/FILTER]/REGEX/[@]REPLACEMENT  re.sub on whole bodies up to
 *       --set body_size_limit (rules_body_wanted at the head, rules_body_apply at the end).
 * FILTER is a flow filter (worker/flowfilter.h); it is required where the brackets are absent.
 * Order of application at the request head: block_list (the last matching spec wins, as in
 * mitmproxy; a blocked request gets nothing else), map_remote (in order, each filter sees the
 * URL the previous specs made), map_local (the first matching spec: the request is answered
 * locally and nothing else applies), modify_headers (all filters evaluated first, on the
 * mapped request), inject_error/inject_fault (in order, the first that fires wins),
 * inject_latency (the first matching spec). The filters of one verdict share one lookup of
 * the flow's hosts (struct flowfilter_memo). */
#ifndef MITMD_WORKER_RULES_H
#define MITMD_WORKER_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/config.h"
#include "worker/flow.h"

#define RULES_MAX_PER_KIND CONFIG_MAX_PATTERNS
#define RULES_VALUE_FILE_MAX 65536 /* largest @FILE header value */
#define RULES_MAX_DELAY_MS 3600000u
#define RULES_BODY_LIMIT_DEFAULT (1u << 20) /* body_size_limit when unset, for modify_body */
#define RULES_STATS_MAX 32 /* rules whose hits reach the statistics (msg.h MSG_STAT_RULE_0..) */

enum rules_kind {
    RULES_MODIFY_HEADERS = 0,
    RULES_MAP_REMOTE,
    RULES_BLOCK_LIST,
    RULES_INJECT_LATENCY,
    RULES_INJECT_ERROR,
    RULES_INJECT_FAULT,
    RULES_MAP_LOCAL,   /* --map-local: answered from a file (worker/maplocal.h) */
    RULES_MODIFY_BODY, /* --modify-body: re.sub on whole bodies up to body_size_limit */
    RULES_KIND_COUNT   /* must be last */
};

enum rules_fault {
    RULES_FAULT_NONE = 0,
    RULES_FAULT_STATUS, /* answer fault_status without contacting the upstream */
    RULES_FAULT_RESET,  /* abort the client connection (TCP RST; HTTP/2: RST_STREAM) */
    RULES_FAULT_STALL,  /* send the request on, hold the response until the idle timeout */
};

/* struct rules_header is one compiled --modify-headers spec. `name` and `value` are owned by
 * the rules and live as long as they do; value_len == 0 means "remove only". Neither holds
 * CR, LF or NUL; the name is an HTTP token. */
struct rules_header {
    const char *name;
    const char *lname; /* `name` in lower case (HTTP/2 field names) */
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* struct rules_verdict is what the relay does with one message head. */
struct rules_verdict {
    int block_status;       /* block_list: answer this status (444: close); 0 = not blocked */
    enum rules_fault fault; /* inject_error / inject_fault */
    int fault_status;       /* RULES_FAULT_STATUS: the status to answer */
    const char *fault_why;  /* "injected by inject_error" or "... inject_fault" (static) */
    uint32_t delay_ms;      /* inject_latency: hold the request this long first; 0 = none */
    bool url_changed;       /* map_remote changed f->url: re-target the request */
    int map_local;          /* --map-local: index + 1 of the spec that matched; 0 = none
                             * (answer with rules_map_local, worker/maplocal.h) */
    int n_edits;            /* modify_headers for this message, in spec order */
    const struct rules_header *edits[RULES_MAX_PER_KIND];
};

/* struct rules_stat names one rule and how often it applied (for the statistics). */
struct rules_stat {
    enum rules_kind kind;
    int index;        /* among the specs of its kind, in command-line order */
    const char *spec; /* as given (borrowed from the config) */
    uint64_t hits;
};

struct rules;

/* rules_kind_name returns the option name of `kind` ("modify_headers", ...). */
const char *rules_kind_name(enum rules_kind kind);

/* rules_new returns an empty rule set (every verdict empty), or NULL without memory. */
struct rules *rules_new(void);

/* rules_add parses and compiles one spec of `kind` and appends it; `spec` is borrowed and
 * must outlive the rules (argv does). Reads the @FILE of a modify_headers spec (may block).
 * Returns 0, or -EINVAL/-ENOMEM with one line in `err`: "KIND: 'SPEC': WHY", where WHY
 * may be a filter's message with its column. */
int rules_add(struct rules *r, enum rules_kind kind, const char *spec, char *err, size_t errlen);

/* rules_compile builds the rules of `cfg` (every list above; anticache and anticomp become
 * request header edits counted as modify_headers, ahead of the user's). Returns 0 and a new set in
 * `*out` (rules_free it; an empty set when no rule is given), or -EINVAL/-ENOMEM with the
 * first error in `err`. Start-up only: allocates and may read files. */
int rules_compile(const struct config *cfg, struct rules **out, char *err, size_t errlen);

/* rules_check compiles the rules and the output filters (dumper_filter / the positional
 * filter, save_stream_filter) of `cfg` and throws them away: the master's start-up check.
 * Returns 0 or -EINVAL/-ENOMEM with one line in `err`. */
int rules_check(const struct config *cfg, char *err, size_t errlen);

/* rules_free frees a rule set; NULL is a no-op. */
void rules_free(struct rules *r);

/* rules_is_empty returns whether no rule is set (the relays may skip the calls). */
bool rules_is_empty(const struct rules *r);

/* rules_on_request_head evaluates the rules for a request whose head is recorded in `f`
 * (method, url, request fields; no response yet) and fills `out`. map_remote writes the new
 * URL into f->url (flow_str_set) and sets url_changed. `rng` is the caller's PRNG state
 * (any non-zero seed; advanced only when a percentage or a jitter is drawn). Counts a hit on
 * each rule that applies. Never allocates. Returns 0, or -ENOSPC if a mapped URL did not fit
 * the flow (the URL is then unchanged and the flow `truncated`). */
int rules_on_request_head(struct rules *r, struct flow *f, uint64_t *rng,
                          struct rules_verdict *out);

/* rules_on_response_head evaluates modify_headers for a response whose head is recorded in
 * `f` (status and response fields set) and fills out->edits; nothing else is set. Flows with
 * an error get no edits (as mitmproxy). Never allocates. */
void rules_on_response_head(struct rules *r, struct flow *f, struct rules_verdict *out);

/* rules_verdict_drops returns whether the verdict removes the field `name` (ASCII case
 * ignored): a relay copying a head skips such fields, then appends each edit with a value. */
bool rules_verdict_drops(const struct rules_verdict *v, const char *name, size_t name_len);

/* rules_map_url applies the map_remote specs that match `f` to `url` (without changing `f`)
 * and writes the result into `out` (NUL-terminated). Returns its length, or -ENOSPC if `cap`
 * is too small. For tests and tools; relays call rules_on_request_head. Never allocates. */
ssize_t rules_map_url(struct rules *r, const struct flow *f, const char *url, size_t url_len,
                      char *out, size_t cap);

/* rules_may_remap_host returns whether some --map-remote spec could rewrite the scheme, host
 * or port of a URL of this origin (`tls`: https, `host`, `port`): whether its regex can match
 * starting anywhere in "SCHEME://HOST/" or "SCHEME://HOST:PORT/" (PCRE2 hard partial
 * matching: a match that would need more of the URL counts). A match that can only start in
 * the path leaves the origin as it is. Filters are not evaluated (a connection's flows are not
 * known yet), so the answer errs towards true. For the TLS interception, which offers HTTP/2
 * upstream only where every request of the connection keeps its origin. Never allocates. */
bool rules_may_remap_host(struct rules *r, bool tls, const char *host, uint16_t port);

struct maplocal_answer;

/* rules_map_local answers a request whose verdict has map_local set: it tries the matching
 * map_local specs in order (worker/maplocal.h) and fills `a` with the first file found (200,
 * 206 or 416 for the single Range `range`, may be NULL), or a 404 (403 if a candidate escaped
 * PATH). `head`: the method is HEAD (no body). Counts a hit on the spec that answered (or on
 * the first matching one for a 404). Returns a->status. The caller owns a->fd (closes it with
 * maplocal_answer_close). Blocking calls: openat2 and fstat, never a data read. */
int rules_map_local(struct rules *r, const struct rules_verdict *v, const struct flow *f,
                    const char *range, size_t range_len, bool head, struct maplocal_answer *a);

/* rules_body_limit returns the largest body --modify-body rewrites (body_size_limit, or
 * mitmproxy's stream_large_bodies when that is smaller: a streamed body is not rewritten). */
size_t rules_body_limit(const struct rules *r);

/* rules_body_limit_note returns the flow note for a body over that limit, naming the option
 * that set it (a static string). */
const char *rules_body_limit_note(const struct rules *r);

/* rules_body_wanted returns whether some --modify-body spec matches `f` now: at the request
 * head (no response yet) for the request body, at the response head for the response body.
 * Never allocates. */
bool rules_body_wanted(struct rules *r, const struct flow *f);

/* rules_body_apply runs every --modify-body spec that matches `f` over body[0, len), in
 * order (re.sub, Python replacement syntax), and returns the result in `*out` (malloc'd:
 * the caller frees it) and `*out_len`. Counts a hit on each spec that matched. Returns 0,
 * -ENOMEM, or -E2BIG when a result outgrew 4 x body_size_limit: the caller then sends the
 * body unchanged. Allocates; cost linear in the body. */
int rules_body_apply(struct rules *r, const struct flow *f, const uint8_t *body, size_t len,
                     uint8_t **out, size_t *out_len);

/* rules_parse_size parses mitmproxy's size syntax ("3m", "512k", "1g", "100b", "2048") into
 * bytes (powers of 1024). Returns 0 or -EINVAL. */
int rules_parse_size(const char *s, size_t *out);

/* rules_export_stats writes the hit count of every rule, in rules_stats order, into v[0..max)
 * (the worker's struct msg_stats from MSG_STAT_RULE_0; rules past `max` are not exported). */
void rules_export_stats(const struct rules *r, uint64_t *v, int max);

/* rules_format_stats writes " KIND#N=HITS" for each rule of `cfg` (N from 1, in command-line
 * order within its kind) with hits[i] in rules_export_stats order, into `out` (NUL-terminated,
 * truncated to `cap`). Returns the number of rules. For the master's statistics line. */
int rules_format_stats(const struct config *cfg, const uint64_t *hits, int max, char *out,
                       size_t cap);

/* rules_stats writes up to `max` entries (every rule, by kind then order) and returns how
 * many rules there are. */
int rules_stats(const struct rules *r, struct rules_stat *out, int max);

#endif
