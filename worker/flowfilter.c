/* flowfilter.c - see flowfilter.h. A recursive-descent parser writes nodes into one array
 * (children by index); flowfilter_match walks it with short-circuit AND/OR. Regexes are PCRE2
 * with the flags mitmproxy 8.1.1 gives each operator (Python re -> PCRE2):
 *   ~u ~d ~src ~dst: text (UTF, Unicode classes, invalid UTF-8 tolerated); ~d and ~m ignore
 *   case; ~h ~hq ~hs: MULTILINE over "name: value\r\n" lines; ~b ~bq ~bs: DOTALL.
 * What each operator reads from struct flow (mitmproxy's meaning in brackets):
 *   ~q  no response yet (status == 0)              [request with no response]
 *   ~s  a response (status != 0)                   [has a response]
 *   ~c  status == CODE                             [response status code]
 *   ~e  error text set                             [flow.error]
 *   ~u  the URL as recorded and printed            [pretty_url]
 *   ~d  the URL's host, then the Host field's      [request.host, pretty_host]
 *   ~m  method, ignoring case
 *   ~h ~hq ~hs  request and/or response fields as "name: value\r\n" lines
 *   ~t ~tq ~ts  each Content-Type value (field name ignoring case)
 *   ~a  response Content-Type contains text/javascript, application/x-javascript,
 *       application/javascript, text/css, image/, font/ or application/font
 *   ~src "ADDR:PORT" of the client (IPv6 without brackets, as Python's peername)
 *   ~dst "HOST:PORT" of the upstream: the name it was reached by (else its address), the
 *       port connected to (else the URL's)                 [server_conn.address]
 *   ~websocket  status 101 with "Upgrade: websocket"       [flow.websocket is set]
 *   ~http ~all  every flow (mitmd records HTTP flows only)
 *   ~b ~bq ~bs  no flow: bodies are streamed, never kept (the regex is still checked)
 *   ~tcp ~dns ~marked ~replay ~replayq ~replays  no flow (mitmd has none of these)
 *   ~meta ~marker ~comment  the regex against "" (mitmd flows have none), decided at compile */
#include "worker/flowfilter.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "worker/flowfilter_internal.h"

static const struct ff_opdef ff_ops[] = {
    {"a", FF_ASSET, FF_ARG_NONE, 0},
    {"all", FF_TRUE, FF_ARG_NONE, 0},
    {"b", FF_BODY, FF_ARG_REGEX, PCRE2_DOTALL},
    {"bq", FF_BODY, FF_ARG_REGEX, PCRE2_DOTALL},
    {"bs", FF_BODY, FF_ARG_REGEX, PCRE2_DOTALL},
    {"c", FF_CODE, FF_ARG_CODE, 0},
    {"comment", FF_EMPTY, FF_ARG_REGEX, PCRE2_MULTILINE | FF_TEXT},
    {"d", FF_DOMAIN, FF_ARG_REGEX, PCRE2_CASELESS | FF_TEXT},
    {"dns", FF_FALSE, FF_ARG_NONE, 0},
    {"dst", FF_DST, FF_ARG_REGEX, FF_TEXT},
    {"e", FF_ERR, FF_ARG_NONE, 0},
    {"h", FF_HEAD, FF_ARG_REGEX, PCRE2_MULTILINE},
    {"hq", FF_HEAD_REQ, FF_ARG_REGEX, PCRE2_MULTILINE},
    {"hs", FF_HEAD_RESP, FF_ARG_REGEX, PCRE2_MULTILINE},
    {"http", FF_TRUE, FF_ARG_NONE, 0},
    {"m", FF_METHOD, FF_ARG_REGEX, PCRE2_CASELESS},
    {"marked", FF_FALSE, FF_ARG_NONE, 0},
    {"marker", FF_EMPTY, FF_ARG_REGEX, FF_TEXT},
    {"meta", FF_EMPTY, FF_ARG_REGEX, PCRE2_MULTILINE | FF_TEXT},
    {"q", FF_REQ, FF_ARG_NONE, 0},
    {"replay", FF_FALSE, FF_ARG_NONE, 0},
    {"replayq", FF_FALSE, FF_ARG_NONE, 0},
    {"replays", FF_FALSE, FF_ARG_NONE, 0},
    {"s", FF_RESP, FF_ARG_NONE, 0},
    {"src", FF_SRC, FF_ARG_REGEX, FF_TEXT},
    {"t", FF_CTYPE, FF_ARG_REGEX, 0},
    {"tcp", FF_FALSE, FF_ARG_NONE, 0},
    {"tq", FF_CTYPE_REQ, FF_ARG_REGEX, 0},
    {"ts", FF_CTYPE_RESP, FF_ARG_REGEX, 0},
    {"u", FF_URL, FF_ARG_REGEX, FF_TEXT},
    {"websocket", FF_WEBSOCKET, FF_ARG_NONE, 0},
};

/* ---- parser ---------------------------------------------------------------------------- */

struct ff_parser {
    struct flowfilter *ff;
    const char *s;
    size_t len, pos;
    int depth;
    int err;        /* 0, or -EINVAL/-ENOMEM once an error is recorded */
    size_t err_pos; /* byte offset the error points at */
    char why[192];
    char buf[FLOWFILTER_MAX_LEN + 1]; /* an unquoted regex */
};

static bool ff_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r'; /* pyparsing's whitespace */
}

/* ff_is_word_char: pyparsing CharsNotIn("()~'\"" + whitespace), mitmproxy's bare regex */
static bool ff_is_word_char(char c)
{
    return c != '\0' && !ff_is_ws(c) && strchr("()~'\"", c) == NULL;
}

static void ff_skip_ws(struct ff_parser *p)
{
    while (p->pos < p->len && ff_is_ws(p->s[p->pos]))
        p->pos++;
}

/* ff_fail records the first error: `why` at byte offset `at`. Always returns -1. */
static int ff_fail(struct ff_parser *p, size_t at, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ff_fail(struct ff_parser *p, size_t at, int err, const char *fmt, ...)
{
    va_list ap;

    if (p->err != 0)
        return -1;
    p->err = err;
    p->err_pos = at;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof(p->why), fmt, ap);
    va_end(ap);
    return -1;
}

/* ff_new_node appends a node. Returns its index or -1 (too many). */
static int ff_new_node(struct ff_parser *p, uint8_t op, int a, int b)
{
    struct flowfilter *ff = p->ff;
    struct ff_node *n;

    if (ff->n_nodes >= FLOWFILTER_MAX_NODES)
        return ff_fail(p, p->pos, -EINVAL, "too many operators (at most %d)", FLOWFILTER_MAX_NODES);
    n = &ff->nodes[ff->n_nodes];
    memset(n, 0, sizeof(*n));
    n->op = op;
    n->a = (uint16_t)(a < 0 ? 0 : a);
    n->b = (uint16_t)(b < 0 ? 0 : b);
    return ff->n_nodes++;
}

/* ff_read_regex reads a bare word or a quoted string at p->pos into p->buf. Returns its
 * length, or -1 (error recorded). `*col0` receives the offset of its first byte in the
 * expression, for error columns. */
static int ff_read_regex(struct ff_parser *p, const char *what, size_t *col0)
{
    size_t start = p->pos, n = 0;
    char q;

    *col0 = start;
    if (p->pos >= p->len ||
        (!ff_is_word_char(p->s[p->pos]) && p->s[p->pos] != '"' && p->s[p->pos] != '\''))
        return ff_fail(p, p->pos, -EINVAL, "expected %s", what);
    q = p->s[p->pos];
    if (q != '"' && q != '\'') {
        while (p->pos < p->len && ff_is_word_char(p->s[p->pos]))
            p->buf[n++] = p->s[p->pos++];
        return (int)n;
    }
    /* pyparsing QuotedString(q, escChar='\\'): no raw CR/LF inside; first \t \n \f \r become
     * those characters, then every \X (X not a newline) becomes X */
    *col0 = start + 1;
    p->pos++;
    for (;;) {
        char c;

        if (p->pos >= p->len || p->s[p->pos] == '\n' || p->s[p->pos] == '\r')
            return ff_fail(p, start, -EINVAL, "unterminated quoted regex");
        c = p->s[p->pos];
        if (c == q) {
            p->pos++;
            break;
        }
        if (c == '\\' && p->pos + 1 < p->len && p->s[p->pos + 1] != '\n' &&
            p->s[p->pos + 1] != '\r') {
            char e = p->s[p->pos + 1];

            p->buf[n++] = e == 't' ? '\t' : e == 'n' ? '\n' : e == 'f' ? '\f' : e == 'r' ? '\r' : e;
            /* "\\t": the whitespace pass sees the second backslash and "t" first */
            if (e == '\\' && p->pos + 2 < p->len && strchr("tnfr", p->s[p->pos + 2]) != NULL &&
                p->s[p->pos + 2] != '\0') {
                char w = p->s[p->pos + 2];

                /* "\\n": the escape pass leaves a backslash before a newline alone */
                if (w == 'n')
                    p->buf[n++] = '\n';
                else
                    p->buf[n - 1] = w == 't' ? '\t' : w == 'f' ? '\f' : '\r';
                p->pos += 3;
                continue;
            }
            p->pos += 2;
            continue;
        }
        p->buf[n++] = c;
        p->pos++;
    }
    return (int)n;
}

/* ff_literal sees whether p->buf[0, n) is a plain string (letters, digits, other bytes,
 * metacharacters escaped with a backslash) and if so keeps it in `node` for a memmem-like
 * search, which costs a fraction of a PCRE2 call. Caseless literals must be ASCII; a caseless
 * miss on a subject with non-ASCII bytes is asked again of PCRE2 (Unicode folds KELVIN SIGN
 * onto k, LONG S onto s). Returns 0 or -1 (out of memory). */
static int ff_literal(struct ff_parser *p, struct ff_node *node, size_t n, uint32_t flags)
{
    char *lit = malloc(n + 1);
    size_t k = 0;

    if (lit == NULL)
        return ff_fail(p, p->pos, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p->buf[i];

        if (c == '\\') {
            if (i + 1 == n || isalnum((unsigned char)p->buf[i + 1]) ||
                (unsigned char)p->buf[i + 1] >= 0x80)
                goto out_not_literal; /* \d, \b, \x41 ... */
            c = (unsigned char)p->buf[++i];
        } else if (c != '\0' && strchr("^$.|?*+()[]{}", c) != NULL) {
            goto out_not_literal;
        }
        if ((flags & PCRE2_CASELESS) != 0 && c >= 0x80)
            goto out_not_literal;
        lit[k++] = (char)((flags & PCRE2_CASELESS) != 0 ? tolower(c) : c);
    }
    node->lit = lit;
    node->lit_len = (uint32_t)k;
    node->icase = (flags & PCRE2_CASELESS) != 0;
    return 0;
out_not_literal:
    free(lit);
    return 0;
}

/* ff_compile_regex compiles p->buf[0, n) with `flags` into node `idx`. */
static int ff_compile_regex(struct ff_parser *p, int idx, size_t n, uint32_t flags, size_t col0)
{
    struct ff_node *node = &p->ff->nodes[idx];
    PCRE2_SIZE eoff = 0;
    int ecode = 0;
    PCRE2_UCHAR msg[120];

    node->re = pcre2_compile((PCRE2_SPTR)p->buf, n, flags, &ecode, &eoff, NULL);
    if (node->re == NULL) {
        if (ecode == PCRE2_ERROR_NOMEMORY)
            return ff_fail(p, col0, -ENOMEM, "out of memory compiling a regex");
        pcre2_get_error_message(ecode, msg, sizeof(msg));
        return ff_fail(p, col0 + (eoff <= n ? eoff : 0), -EINVAL, "bad regex '%.*s': %s",
                       (int)(n > 60 ? 60 : n), p->buf, (const char *)msg);
    }
    node->jit = pcre2_jit_compile(node->re, PCRE2_JIT_COMPLETE) == 0;
    return ff_literal(p, node, n, flags);
}

/* ff_regex_matches_empty returns whether node `idx`'s regex matches "" (then frees it). */
static bool ff_regex_matches_empty(struct ff_parser *p, int idx)
{
    struct ff_node *node = &p->ff->nodes[idx];
    int rc = pcre2_match(node->re, (PCRE2_SPTR) "", 0, 0, 0, p->ff->md, p->ff->mctx);

    pcre2_code_free(node->re);
    node->re = NULL;
    node->jit = false;
    return rc >= 0;
}

static int ff_parse_seq(struct ff_parser *p);

/* ff_parse_op parses "~NAME [ARG]" at p->pos. */
static int ff_parse_op(struct ff_parser *p)
{
    size_t start = p->pos, end = p->pos + 1;
    const struct ff_opdef *d = NULL;
    size_t col0;
    int idx, n;

    while (end < p->len && p->s[end] >= 'a' && p->s[end] <= 'z')
        end++;
    for (size_t i = 0; i < sizeof(ff_ops) / sizeof(ff_ops[0]) && d == NULL; i++)
        if (strlen(ff_ops[i].name) == end - start - 1 &&
            memcmp(ff_ops[i].name, p->s + start + 1, end - start - 1) == 0)
            d = &ff_ops[i];
    if (d == NULL) {
        size_t w = end;

        while (w < p->len && ff_is_word_char(p->s[w]))
            w++;
        return ff_fail(p, start, -EINVAL, "unknown operator '%.*s'",
                       (int)(w - start > 40 ? 40 : w - start), p->s + start);
    }
    p->pos = end;
    if (d->arg == FF_ARG_NONE) {
        /* mitmproxy wants whitespace after the name; ) & | are accepted too */
        if (p->pos < p->len && !ff_is_ws(p->s[p->pos]) && strchr(")&|", p->s[p->pos]) == NULL)
            return ff_fail(p, p->pos, -EINVAL, "expected a space after ~%s", d->name);
        return ff_new_node(p, d->op, -1, -1);
    }
    if (p->pos < p->len && !ff_is_ws(p->s[p->pos]))
        return ff_fail(p, p->pos, -EINVAL, "expected a space after ~%s", d->name);
    ff_skip_ws(p);
    if (d->arg == FF_ARG_CODE) {
        size_t s0 = p->pos;
        long v = 0;

        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
            v = v * 10 + (p->s[p->pos] - '0');
            if (v > 999)
                return ff_fail(p, s0, -EINVAL, "status code out of range (0 to 999)");
            p->pos++;
        }
        if (p->pos == s0 ||
            (p->pos < p->len && !ff_is_ws(p->s[p->pos]) && strchr(")&|", p->s[p->pos]) == NULL))
            return ff_fail(p, s0, -EINVAL, "expected a status code");
        idx = ff_new_node(p, FF_CODE, -1, -1);
        if (idx >= 0)
            p->ff->nodes[idx].code = (int)v;
        return idx;
    }
    n = ff_read_regex(p, "a regex", &col0);
    if (n < 0)
        return -1;
    idx = ff_new_node(p, d->op, -1, -1);
    if (idx < 0 || ff_compile_regex(p, idx, (size_t)n, d->flags, col0) != 0)
        return -1;
    if (d->op == FF_BODY) {
        /* bodies are not kept: the operator is checked, then matches nothing */
        pcre2_code_free(p->ff->nodes[idx].re);
        p->ff->nodes[idx].re = NULL;
        p->ff->nodes[idx].op = FF_FALSE;
        p->ff->uses_body = true;
    } else if (d->op == FF_EMPTY) {
        p->ff->nodes[idx].op = ff_regex_matches_empty(p, idx) ? FF_TRUE : FF_FALSE;
    }
    return idx;
}

/* ff_parse_unary: "!" unary | "(" seq ")" | ~op | regex (a bare regex is ~u). */
static int ff_parse_unary(struct ff_parser *p)
{
    size_t col0;
    int idx, a, n;
    char c;

    ff_skip_ws(p);
    if (p->pos >= p->len)
        return ff_fail(p, p->pos, -EINVAL, "expected an expression");
    if (p->depth >= FLOWFILTER_MAX_DEPTH)
        return ff_fail(p, p->pos, -EINVAL, "nested too deeply (at most %d)", FLOWFILTER_MAX_DEPTH);
    c = p->s[p->pos];
    if (c == '!') {
        p->pos++;
        p->depth++;
        a = ff_parse_unary(p);
        p->depth--;
        return a < 0 ? -1 : ff_new_node(p, FF_NOT, a, -1);
    }
    if (c == '(') {
        size_t open = p->pos++;

        p->depth++;
        a = ff_parse_seq(p);
        p->depth--;
        if (a < 0)
            return -1;
        ff_skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ')')
            return ff_fail(p, open, -EINVAL, "unclosed '('");
        p->pos++;
        return a;
    }
    if (c == ')')
        return ff_fail(p, p->pos, -EINVAL, "expected an expression before ')'");
    if (c == '~')
        return ff_parse_op(p);
    n = ff_read_regex(p, "an expression", &col0);
    if (n < 0)
        return -1;
    idx = ff_new_node(p, FF_URL, -1, -1);
    if (idx < 0 || ff_compile_regex(p, idx, (size_t)n, FF_TEXT, col0) != 0)
        return -1;
    return idx;
}

static int ff_parse_and(struct ff_parser *p)
{
    int a = ff_parse_unary(p), b;

    while (a >= 0) {
        ff_skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '&')
            break;
        p->pos++;
        b = ff_parse_unary(p);
        a = b < 0 ? -1 : ff_new_node(p, FF_AND, a, b);
    }
    return a;
}

static int ff_parse_or(struct ff_parser *p)
{
    int a = ff_parse_and(p), b;

    while (a >= 0) {
        ff_skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '|')
            break;
        p->pos++;
        b = ff_parse_and(p);
        a = b < 0 ? -1 : ff_new_node(p, FF_OR, a, b);
    }
    return a;
}

/* ff_parse_seq: or_expr { or_expr }, juxtaposition being AND (mitmproxy's OneOrMore). */
static int ff_parse_seq(struct ff_parser *p)
{
    int a = ff_parse_or(p), b;

    while (a >= 0) {
        ff_skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] == ')')
            break;
        b = ff_parse_or(p);
        a = b < 0 ? -1 : ff_new_node(p, FF_AND, a, b);
    }
    return a;
}

void flowfilter_free(struct flowfilter *ff)
{
    if (ff == NULL)
        return;
    for (int i = 0; ff->nodes != NULL && i < ff->n_nodes; i++) {
        pcre2_code_free(ff->nodes[i].re);
        free(ff->nodes[i].lit);
    }
    pcre2_match_data_free(ff->md);
    pcre2_match_context_free(ff->mctx);
    free(ff->nodes);
    free(ff->hdr);
    free(ff->expr);
    free(ff);
}

/* ff_cost is a rough price of evaluating one operand, in units of a status compare. */
static unsigned ff_cost(uint8_t op)
{
    switch ((enum ff_op)op) {
    case FF_URL:
    case FF_METHOD:
    case FF_DOMAIN:
        return 20;
    case FF_CTYPE:
    case FF_CTYPE_REQ:
    case FF_CTYPE_RESP:
        return 25;
    case FF_SRC:
    case FF_DST:
        return 30;
    case FF_HEAD:
    case FF_HEAD_REQ:
    case FF_HEAD_RESP:
        return 40;
    case FF_ASSET:
    case FF_WEBSOCKET:
        return 5;
    default:
        return 1;
    }
}

/* ff_order makes every AND and OR evaluate its cheaper operand first. Operands have no side
 * effects, so the answer is the same; `~d api.test & ~c 500` then costs a status compare on
 * most flows. Children always precede their parent in the array, so one pass suffices. */
static void ff_order(struct flowfilter *ff)
{
    unsigned cost[FLOWFILTER_MAX_NODES];

    for (int i = 0; i < ff->n_nodes; i++) {
        struct ff_node *n = &ff->nodes[i];

        if (n->op == FF_AND || n->op == FF_OR) {
            if (cost[n->b] < cost[n->a]) {
                uint16_t t = n->a;

                n->a = n->b;
                n->b = t;
            }
            cost[i] = cost[n->a] + cost[n->b];
        } else if (n->op == FF_NOT) {
            cost[i] = cost[n->a];
        } else {
            cost[i] = ff_cost(n->op);
        }
    }
}

/* ff_write_error writes "filter: EXPR: WHY at column N" into err. */
static void ff_write_error(const char *expr, const char *why, size_t pos, char *err, size_t errlen)
{
    size_t elen = strlen(expr);

    if (errlen == 0)
        return;
    snprintf(err, errlen, "filter: %.*s%s: %s at column %zu", (int)(elen > 200 ? 200 : elen), expr,
             elen > 200 ? "..." : "", why, pos + 1);
}

int flowfilter_compile(const char *expr, struct flowfilter **out, char *err, size_t errlen)
{
    struct ff_parser *p = NULL;
    struct flowfilter *ff;
    size_t len = strlen(expr);
    int e = -ENOMEM;

    if (len == 0 || len > FLOWFILTER_MAX_LEN) {
        ff_write_error(expr, len == 0 ? "empty filter expression" : "expression too long", 0, err,
                       errlen);
        return -EINVAL;
    }
    ff = calloc(1, sizeof(*ff));
    if (ff == NULL)
        goto out_nomem;
    ff->expr = strdup(expr);
    ff->nodes = calloc(FLOWFILTER_MAX_NODES, sizeof(*ff->nodes));
    ff->hdr = malloc(FLOWFILTER_HDR_CAP);
    ff->md = pcre2_match_data_create(1, NULL);
    ff->mctx = pcre2_match_context_create(NULL);
    p = calloc(1, sizeof(*p));
    if (ff->expr == NULL || ff->nodes == NULL || ff->hdr == NULL || ff->md == NULL ||
        ff->mctx == NULL || p == NULL)
        goto out_free_ff;
    pcre2_set_match_limit(ff->mctx, FLOWFILTER_MATCH_LIMIT);
    pcre2_set_depth_limit(ff->mctx, FLOWFILTER_DEPTH_LIMIT);
    p->ff = ff;
    p->s = expr;
    p->len = len;
    ff->root = ff_parse_seq(p);
    if (ff->root >= 0 && p->pos < p->len)
        ff_fail(p, p->pos, -EINVAL, "unexpected '%c'", p->s[p->pos]);
    if (p->err != 0) {
        e = p->err;
        ff_write_error(expr, p->why, p->err_pos, err, errlen);
        goto out_free_ff;
    }
    free(p);
    ff_order(ff);
    *out = ff;
    return 0;
out_free_ff:
    free(p);
    flowfilter_free(ff);
out_nomem:
    if (e == -ENOMEM && errlen > 0)
        snprintf(err, errlen, "filter: out of memory");
    return e;
}

int flowfilter_check(const char *expr, char *err, size_t errlen)
{
    struct flowfilter *ff = NULL;
    int e = flowfilter_compile(expr, &ff, err, errlen);

    flowfilter_free(ff);
    return e;
}

bool flowfilter_uses_body(const struct flowfilter *ff)
{
    return ff != NULL && ff->uses_body;
}

const char *flowfilter_expr(const struct flowfilter *ff)
{
    return ff != NULL ? ff->expr : "";
}
