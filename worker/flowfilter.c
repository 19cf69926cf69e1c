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

/* ---- evaluation ------------------------------------------------------------------------ */

/* struct ff_eval is one evaluation: the flow and the header blocks built so far. */
struct ff_eval {
    struct flowfilter *ff;
    const struct flow *f;
    size_t used;                    /* bytes of ff->hdr in use */
    int32_t blk_off[2], blk_len[2]; /* per side; blk_off -1 = not built yet */
};

/* ff_find returns the first occurrence of needle in s, or NULL: memchr on the first byte,
 * then memcmp (subjects are short; glibc's memmem pays for a two-way setup each call). */
static const char *ff_find(const char *s, size_t len, const char *needle, size_t nlen)
{
    const char *end = s + len, *p = s;

    if (nlen == 0)
        return s;
    while (nlen <= (size_t)(end - p) &&
           (p = memchr(p, needle[0], (size_t)(end - p) - nlen + 1)) != NULL) {
        if (memcmp(p + 1, needle + 1, nlen - 1) == 0)
            return p;
        p++;
    }
    return NULL;
}

static bool ff_search(struct ff_eval *ev, const struct ff_node *n, const char *s, size_t len)
{
    int rc;

    if (n->lit != NULL) {
        if (n->lit_len > len)
            return false;
        if (!n->icase)
            return ff_find(s, len, n->lit, n->lit_len) != NULL;
        for (size_t i = 0; i + n->lit_len <= len; i++) {
            size_t j = 0;

            while (j < n->lit_len && tolower((unsigned char)s[i + j]) == n->lit[j])
                j++;
            if (j == n->lit_len)
                return true;
        }
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] >= 0x80)
                goto out_pcre2;
        return false;
    }
out_pcre2:
    if (len == 0)
        s = "";
    if (n->jit)
        rc = pcre2_jit_match(n->re, (PCRE2_SPTR)s, len, 0, 0, ev->ff->md, ev->ff->mctx);
    else
        rc = pcre2_match(n->re, (PCRE2_SPTR)s, len, 0, 0, ev->ff->md, ev->ff->mctx);
    return rc >= 0; /* 0: matched, ovector too small */
}

static bool ff_name_is(const struct flow *f, struct flow_str name, const char *want)
{
    size_t wl = strlen(want);

    return name.len == wl && strncasecmp(flow_str_ptr(f, name), want, wl) == 0;
}

/* ff_header_block returns the side's fields as "name: value\r\n" lines (mitmproxy's
 * bytes(headers)), built into the scratch on first use in this evaluation. */
static const char *ff_header_block(struct ff_eval *ev, enum flow_side side, size_t *len)
{
    const struct flow *f = ev->f;
    const struct flow_header *h = side == FLOW_REQUEST ? f->req_headers : f->resp_headers;
    uint16_t n = side == FLOW_REQUEST ? f->n_req_headers : f->n_resp_headers;
    char *p;

    if (ev->blk_off[side] < 0) {
        p = ev->ff->hdr + ev->used;
        ev->blk_off[side] = (int32_t)ev->used;
        for (uint16_t i = 0; i < n && i < FLOW_MAX_HEADERS; i++) {
            size_t need = (size_t)h[i].name.len + h[i].value.len + 4;

            if (ev->used + need > FLOWFILTER_HDR_CAP)
                break; /* cannot happen: names and values come from one arena */
            memcpy(p, flow_str_ptr(f, h[i].name), h[i].name.len);
            p += h[i].name.len;
            *p++ = ':';
            *p++ = ' ';
            memcpy(p, flow_str_ptr(f, h[i].value), h[i].value.len);
            p += h[i].value.len;
            *p++ = '\r';
            *p++ = '\n';
            ev->used += need;
        }
        ev->blk_len[side] = (int32_t)(ev->used - (size_t)ev->blk_off[side]);
    }
    *len = (size_t)ev->blk_len[side];
    return ev->ff->hdr + ev->blk_off[side];
}

/* ff_ctype returns whether a Content-Type value of the side matches the node's regex. */
static bool ff_ctype(struct ff_eval *ev, const struct ff_node *n, enum flow_side side)
{
    const struct flow *f = ev->f;
    const struct flow_header *h = side == FLOW_REQUEST ? f->req_headers : f->resp_headers;
    uint16_t cnt = side == FLOW_REQUEST ? f->n_req_headers : f->n_resp_headers;

    for (uint16_t i = 0; i < cnt && i < FLOW_MAX_HEADERS; i++)
        if (ff_name_is(f, h[i].name, "content-type") &&
            ff_search(ev, n, flow_str_ptr(f, h[i].value), h[i].value.len))
            return true;
    return false;
}

static bool ff_contains(const char *s, size_t len, const char *needle)
{
    return ff_find(s, len, needle, strlen(needle)) != NULL;
}

static bool ff_asset(const struct flow *f)
{
    static const char *const types[] = {"text/javascript",
                                        "application/x-javascript",
                                        "application/javascript",
                                        "text/css",
                                        "image/",
                                        "font/",
                                        "application/font"};

    if (f->status == 0)
        return false;
    for (uint16_t i = 0; i < f->n_resp_headers && i < FLOW_MAX_HEADERS; i++) {
        const struct flow_header *h = &f->resp_headers[i];

        if (!ff_name_is(f, h->name, "content-type"))
            continue;
        for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
            if (ff_contains(flow_str_ptr(f, h->value), h->value.len, types[t]))
                return true;
    }
    return false;
}

static bool ff_websocket(const struct flow *f)
{
    if (f->status != 101)
        return false;
    for (uint16_t i = 0; i < f->n_resp_headers && i < FLOW_MAX_HEADERS; i++) {
        const struct flow_header *h = &f->resp_headers[i];

        if (ff_name_is(f, h->name, "upgrade") && h->value.len == 9 &&
            strncasecmp(flow_str_ptr(f, h->value), "websocket", 9) == 0)
            return true;
    }
    return false;
}

/* ff_host_of takes the host out of an authority or URL ("https://[::1]:8443/x" -> "::1").
 * Returns false if there is none. */
static bool ff_host_of(const char *s, size_t len, bool is_url, const char **host, size_t *hlen)
{
    const char *end = s + len, *p = s, *h;
    const char *sep = is_url ? ff_find(s, len, "://", 3) : NULL;

    if (sep != NULL)
        p = sep + 3;
    else if (is_url && len > 0 && s[0] == '/')
        return false; /* origin-form: no authority */
    h = p;
    while (p < end && *p != '/' && *p != '?' && *p != '#')
        p++;
    end = p;
    for (const char *at = h; at < end; at++) /* userinfo@ */
        if (*at == '@')
            h = at + 1;
    if (h < end && *h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));

        if (rb == NULL)
            return false;
        *host = h + 1;
        *hlen = (size_t)(rb - h - 1);
        return true;
    }
    for (const char *c = end; c > h; c--)
        if (c[-1] == ':') {
            end = c - 1;
            break;
        }
    *host = h;
    *hlen = (size_t)(end - h);
    return *hlen > 0;
}

/* ff_url_port returns the URL's explicit port, else its scheme's default, else 0. */
static unsigned ff_url_port(const char *s, size_t len)
{
    const char *sep = ff_find(s, len, "://", 3);
    const char *p, *end = s + len, *colon = NULL;
    unsigned port = 0;

    if (sep == NULL)
        return 0;
    for (p = sep + 3; p < end && *p != '/' && *p != '?' && *p != '#'; p++)
        if (*p == ':')
            colon = p;
        else if (*p == ']')
            colon = NULL;
    if (colon != NULL && colon + 1 < p) {
        for (const char *d = colon + 1; d < p && *d >= '0' && *d <= '9' && port < 65536; d++)
            port = port * 10 + (unsigned)(*d - '0');
        return port < 65536 ? port : 0;
    }
    if (sep - s == 5 && strncasecmp(s, "https", 5) == 0)
        return 443;
    if (sep - s == 4 && strncasecmp(s, "http", 4) == 0)
        return 80;
    return 0;
}

/* ff_addr_text writes "ADDR:PORT" (no brackets, as Python's peername) or returns 0. */
static size_t ff_addr_text(const struct sockaddr_storage *ss, const char *name, unsigned port,
                           char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "";
    int n;

    if (ss->ss_family == AF_INET && (name == NULL || name[0] == '\0') && cap >= 22) {
        /* the common case by hand: inet_ntop + snprintf cost more than the regex */
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        const uint8_t *b = (const uint8_t *)&sin->sin_addr;
        char tmp[8];
        size_t k = 0;
        int t = 0;

        port = ntohs(sin->sin_port);
        for (int i = 0; i < 4; i++) {
            if (b[i] >= 100)
                out[k++] = (char)('0' + b[i] / 100);
            if (b[i] >= 10)
                out[k++] = (char)('0' + b[i] / 10 % 10);
            out[k++] = (char)('0' + b[i] % 10);
            out[k++] = i < 3 ? '.' : ':';
        }
        do
            tmp[t++] = (char)('0' + port % 10);
        while ((port /= 10) > 0);
        while (t > 0)
            out[k++] = tmp[--t];
        return k;
    }
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        port = ntohs(sin->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        port = ntohs(sin6->sin6_port);
    }
    if (name == NULL || name[0] == '\0')
        name = ip;
    if (name[0] == '\0')
        return 0;
    n = snprintf(out, cap, "%s:%u", name, port);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static bool ff_domain(struct ff_eval *ev, const struct ff_node *n)
{
    const struct flow *f = ev->f;
    const char *h;
    size_t hl;

    const char *uh = NULL, *hh;
    size_t uhl = 0, hhl;

    if (ff_host_of(flow_str_ptr(f, f->url), f->url.len, true, &h, &hl)) {
        if (ff_search(ev, n, h, hl))
            return true;
        uh = h;
        uhl = hl;
    }
    for (uint16_t i = 0; i < f->n_req_headers && i < FLOW_MAX_HEADERS; i++) {
        const struct flow_header *hd = &f->req_headers[i];

        if (!ff_name_is(f, hd->name, "host"))
            continue;
        if (!ff_host_of(flow_str_ptr(f, hd->value), hd->value.len, false, &hh, &hhl))
            return false;
        /* the same host again (the usual case) cannot match where the URL's did not */
        if (uh != NULL && hhl == uhl && memcmp(hh, uh, uhl) == 0)
            return false;
        return ff_search(ev, n, hh, hhl);
    }
    return false;
}

static bool ff_eval_node(struct ff_eval *ev, int i)
{
    const struct ff_node *n = &ev->ff->nodes[i];
    const struct flow *f = ev->f;
    char addr[FLOW_HOST_MAX + 16];
    const char *s;
    size_t len;

    switch ((enum ff_op)n->op) {
    case FF_TRUE:
        return true;
    case FF_FALSE:
    case FF_BODY:
    case FF_EMPTY:
        return false;
    case FF_AND:
        return ff_eval_node(ev, n->a) && ff_eval_node(ev, n->b);
    case FF_OR:
        return ff_eval_node(ev, n->a) || ff_eval_node(ev, n->b);
    case FF_NOT:
        return !ff_eval_node(ev, n->a);
    case FF_REQ:
        return f->status == 0;
    case FF_RESP:
        return f->status != 0;
    case FF_ERR:
        return f->error[0] != '\0';
    case FF_ASSET:
        return ff_asset(f);
    case FF_WEBSOCKET:
        return ff_websocket(f);
    case FF_CODE:
        return f->status != 0 && f->status == n->code;
    case FF_URL:
        return ff_search(ev, n, flow_str_ptr(f, f->url), f->url.len);
    case FF_DOMAIN:
        return ff_domain(ev, n);
    case FF_METHOD:
        return ff_search(ev, n, flow_str_ptr(f, f->method), f->method.len);
    case FF_HEAD:
        s = ff_header_block(ev, FLOW_REQUEST, &len);
        if (ff_search(ev, n, s, len))
            return true;
        if (f->status == 0)
            return false;
        s = ff_header_block(ev, FLOW_RESPONSE, &len);
        return ff_search(ev, n, s, len);
    case FF_HEAD_REQ:
        s = ff_header_block(ev, FLOW_REQUEST, &len);
        return ff_search(ev, n, s, len);
    case FF_HEAD_RESP:
        if (f->status == 0)
            return false;
        s = ff_header_block(ev, FLOW_RESPONSE, &len);
        return ff_search(ev, n, s, len);
    case FF_CTYPE:
        return ff_ctype(ev, n, FLOW_REQUEST) || (f->status != 0 && ff_ctype(ev, n, FLOW_RESPONSE));
    case FF_CTYPE_REQ:
        return ff_ctype(ev, n, FLOW_REQUEST);
    case FF_CTYPE_RESP:
        return f->status != 0 && ff_ctype(ev, n, FLOW_RESPONSE);
    case FF_SRC:
        len = ff_addr_text(&f->client_addr, NULL, 0, addr, sizeof(addr));
        return len > 0 && ff_search(ev, n, addr, len);
    case FF_DST:
        len = f->server_addr.ss_family != 0 || f->server_host[0] == '\0'
                  ? ff_addr_text(&f->server_addr, f->server_host, 0, addr, sizeof(addr))
                  : ff_addr_text(&f->server_addr, f->server_host,
                                 ff_url_port(flow_str_ptr(f, f->url), f->url.len), addr,
                                 sizeof(addr));
        return len > 0 && ff_search(ev, n, addr, len);
    }
    return false;
}

bool flowfilter_match(struct flowfilter *ff, const struct flow *f)
{
    struct ff_eval ev = {.ff = ff, .f = f, .blk_off = {-1, -1}};

    if (ff == NULL)
        return true;
    return ff_eval_node(&ev, ff->root);
}
