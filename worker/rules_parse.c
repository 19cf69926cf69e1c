/* rules_parse.c - parsing the rule options into compiled specs: mitmproxy's spec syntax
 * (separator, filter, escapes, @file values), durations, percentages, status codes, the
 * map_remote replacement template, body_size_limit, and rules_add/rules_compile/rules_check
 * over a config. The verdicts on flows are rules.c's. Runs at start (and in the master's
 * check); allocates the specs, reads @file values, never runs on the data path. */
#include "worker/rules_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* mitmproxy 8.1.1's known status codes (net/http/status_codes.py), which block_list takes */
static const int rules_known_status[] = {
    100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 300, 301, 302, 303,
    304, 305, 307, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412,
    413, 414, 415, 416, 417, 418, 444, 499, 500, 501, 502, 503, 504, 505, 507, 510,
};

/* ---- parsing --------------------------------------------------------------------------- */

/* struct rules_part is a slice of a spec. */
struct rules_part {
    const char *p;
    size_t len;
};

/* rules_split is Python's `spec[1:].split(spec[0], maxsplit)`: returns the number of parts
 * (at most maxsplit + 1) written to `parts`. */
static int rules_split(const char *spec, int maxsplit, struct rules_part *parts)
{
    char sep = spec[0];
    const char *p = spec + 1, *q;
    int n = 0;

    while (n < maxsplit && (q = strchr(p, sep)) != NULL) {
        parts[n++] = (struct rules_part){p, (size_t)(q - p)};
        p = q + 1;
    }
    parts[n++] = (struct rules_part){p, strlen(p)};
    return n;
}

/* rules_unescape is Python's codecs.escape_decode (mitmproxy's escaped_str_to_bytes) into a
 * new NUL-terminated string. Returns 0, -EINVAL with `*why`, or -ENOMEM. */
static int rules_unescape(const char *s, size_t len, char **out, size_t *out_len, const char **why)
{
    char *o = malloc(len + 1);
    size_t n = 0;

    if (o == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        char c = s[i], e;

        if (c != '\\') {
            o[n++] = c;
            continue;
        }
        if (++i == len) {
            free(o);
            *why = "trailing \\ in string";
            return -EINVAL;
        }
        e = s[i];
        switch (e) {
        case '\n':
            break; /* line continuation */
        case '\\':
            o[n++] = '\\';
            break;
        case '\'':
            o[n++] = '\'';
            break;
        case '"':
            o[n++] = '"';
            break;
        case 'a':
            o[n++] = '\a';
            break;
        case 'b':
            o[n++] = '\b';
            break;
        case 'f':
            o[n++] = '\f';
            break;
        case 'n':
            o[n++] = '\n';
            break;
        case 'r':
            o[n++] = '\r';
            break;
        case 't':
            o[n++] = '\t';
            break;
        case 'v':
            o[n++] = '\v';
            break;
        case 'x':
            if (i + 2 >= len || !isxdigit((unsigned char)s[i + 1]) ||
                !isxdigit((unsigned char)s[i + 2])) {
                free(o);
                *why = "invalid \\x escape";
                return -EINVAL;
            } else {
                char hex[3] = {s[i + 1], s[i + 2], '\0'};

                o[n++] = (char)strtol(hex, NULL, 16);
                i += 2;
            }
            break;
        default:
            if (e >= '0' && e <= '7') {
                int v = e - '0';

                for (int d = 0; d < 2 && i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '7'; d++)
                    v = v * 8 + (s[++i] - '0');
                o[n++] = (char)(v & 0xff);
            } else {
                o[n++] = '\\'; /* unknown escapes stay as written */
                o[n++] = e;
            }
        }
    }
    o[n] = '\0';
    *out = o;
    *out_len = n;
    return 0;
}

/* rules_is_tchar: RFC 9110 §5.6.2 token characters (a field name) */
static bool rules_is_tchar(unsigned char c)
{
    return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* rules_read_file reads FILE (at most RULES_VALUE_FILE_MAX bytes) into a new string. */
static int rules_read_file(const char *path, char **out, size_t *out_len, const char **why)
{
    char *buf = malloc(RULES_VALUE_FILE_MAX + 1);
    size_t n = 0;
    ssize_t got;
    int fd, e = 0;

    if (buf == NULL)
        return -ENOMEM;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        e = -errno;
        *why = strerror(errno);
        goto out_free;
    }
    while ((got = read(fd, buf + n, RULES_VALUE_FILE_MAX + 1 - n)) > 0) {
        n += (size_t)got;
        if (n > RULES_VALUE_FILE_MAX)
            break;
    }
    if (got == -1) {
        e = -errno;
        *why = strerror(errno);
    } else if (n > RULES_VALUE_FILE_MAX) {
        e = -EINVAL;
        *why = "file larger than 64 KiB";
    }
    close(fd);
    if (e != 0)
        goto out_free;
    if (n > 0 && buf[n - 1] == '\n') /* `echo value > file` */
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
out_free:
    free(buf);
    return e == -ENOENT || e == -EACCES || e == -EISDIR ? -EINVAL : e;
}

/* rules_filter compiles part `pt` as the spec's filter (empty is refused, as mitmproxy). */
static int rules_filter(struct rules_spec *s, struct rules_part pt, char *fmsg, size_t fcap)
{
    char *expr = strndup(pt.p, pt.len);
    int e;

    if (expr == NULL)
        return -ENOMEM;
    e = flowfilter_compile(expr, &s->filter, fmsg, fcap);
    free(expr);
    return e;
}

/* rules_number parses "250", "250ms", "2s" or "1.5s" into milliseconds. */
static int rules_duration(const char *p, size_t len, uint32_t *ms)
{
    uint64_t whole = 0, frac = 0, scale = 1;
    size_t i = 0;
    bool secs;

    while (i < len && isdigit((unsigned char)p[i]) && whole <= RULES_MAX_DELAY_MS)
        whole = whole * 10 + (uint64_t)(p[i++] - '0');
    if (i == 0)
        return -EINVAL;
    if (i < len && p[i] == '.') {
        i++;
        while (i < len && isdigit((unsigned char)p[i]) && scale < 1000000) {
            frac = frac * 10 + (uint64_t)(p[i++] - '0');
            scale *= 10;
        }
        if (scale == 1)
            return -EINVAL;
    }
    secs = len - i == 1 && p[i] == 's';
    if (!secs && !(len == i || (len - i == 2 && p[i] == 'm' && p[i + 1] == 's')))
        return -EINVAL;
    if (!secs && scale != 1)
        return -EINVAL; /* no fractions of a millisecond */
    whole = secs ? whole * 1000 + frac * 1000 / scale : whole;
    if (whole > RULES_MAX_DELAY_MS)
        return -EINVAL;
    *ms = (uint32_t)whole;
    return 0;
}

/* rules_percent parses "5", "0.5" or "100" (0 < P <= 100) into parts per million. */
static int rules_percent(const char *p, size_t len, uint32_t *ppm)
{
    uint64_t v = 0, scale = 10000; /* 1 % = 10000 ppm */
    size_t i = 0;

    while (i < len && isdigit((unsigned char)p[i]) && v <= 1000000)
        v = v * 10 + (uint64_t)(p[i++] - '0');
    if (i == 0)
        return -EINVAL;
    v *= scale;
    if (i < len && p[i] == '.') {
        i++;
        if (i == len)
            return -EINVAL;
        while (i < len && isdigit((unsigned char)p[i])) {
            scale /= 10;
            if (scale == 0)
                return -EINVAL; /* more than 4 decimals */
            v += scale * (uint64_t)(p[i++] - '0');
        }
    }
    if (i != len || v == 0 || v > 1000000)
        return -EINVAL;
    *ppm = (uint32_t)v;
    return 0;
}

static int rules_status(const char *p, size_t len, int lo, int hi, int *out)
{
    int v = 0;

    if (len == 0 || len > 3)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -EINVAL;
        v = v * 10 + (p[i] - '0');
    }
    if (v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

/* rules_piece_add appends a group reference, or literal bytes to the current literal. */
static int rules_piece_add(struct rules_spec *s, int group, const char *lit, size_t n, size_t *used,
                           const char **why)
{
    struct rules_piece *last = s->n_pieces > 0 ? &s->pieces[s->n_pieces - 1] : NULL;

    if (group >= 0 || last == NULL || last->group >= 0) {
        if (s->n_pieces >= RULES_MAX_PIECES) {
            *why = "replacement too complex";
            return -EINVAL;
        }
        last = &s->pieces[s->n_pieces++];
        *last = (struct rules_piece){group, (uint32_t)*used, 0};
    }
    if (group < 0) {
        memcpy(s->lit + *used, lit, n);
        *used += n;
        last->len += (uint32_t)n;
    }
    return 0;
}

/* rules_template parses a Python re.sub replacement (\1..\99, \g<N>, \g<name>, \n and the
 * other C escapes, \\) into pieces. Returns 0, -EINVAL with `*why`, or -ENOMEM. */
static int rules_template(struct rules_spec *s, const char *t, size_t len, const char **why)
{
    uint32_t ngroups = 0;
    size_t used = 0;

    pcre2_pattern_info(s->re, PCRE2_INFO_CAPTURECOUNT, &ngroups);
    s->lit = malloc(len + 1);
    if (s->lit == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        char lit[2] = {t[i], 0};
        size_t nlit = 1;
        int group = -1;

        if (t[i] == '\\' && i + 1 < len) {
            char e = t[++i];

            if (e >= '1' && e <= '9') {
                group = e - '0';
                if (i + 1 < len && isdigit((unsigned char)t[i + 1]))
                    group = group * 10 + (t[++i] - '0');
            } else if (e == 'g' && i + 1 < len && t[i + 1] == '<') {
                const char *nm = t + i + 2;
                const char *end = memchr(nm, '>', len - (i + 2));
                char name[64];
                size_t nl = end != NULL ? (size_t)(end - nm) : 0;

                if (nl == 0 || nl >= sizeof(name)) {
                    *why = "bad \\g<...> in the replacement";
                    return -EINVAL;
                }
                memcpy(name, nm, nl);
                name[nl] = '\0';
                if (isdigit((unsigned char)name[0])) {
                    char *ep;
                    long g = strtol(name, &ep, 10);

                    group = *ep == '\0' && g < 100 ? (int)g : 100;
                } else if ((group = pcre2_substring_number_from_name(s->re, (PCRE2_SPTR)name)) <
                           0) {
                    *why = "unknown group name in the replacement";
                    return -EINVAL;
                }
                i = (size_t)(end - t);
            } else if (e == '0') {
                *why = "\\0 (NUL) in the replacement";
                return -EINVAL;
            } else if (e != '\0' && strchr("abfnrtv", e) != NULL) {
                lit[0] = e == 'a'   ? '\a'
                         : e == 'b' ? '\b'
                         : e == 'f' ? '\f'
                         : e == 'n' ? '\n'
                         : e == 'r' ? '\r'
                         : e == 't' ? '\t'
                                    : '\v';
            } else if (isalpha((unsigned char)e)) {
                *why = "bad escape in the replacement";
                return -EINVAL;
            } else if (e == '\\') {
                lit[0] = '\\';
            } else { /* unknown non-letter escapes stay as written (Python) */
                lit[0] = '\\';
                lit[1] = e;
                nlit = 2;
            }
            if (group >= 0 && (uint32_t)group > ngroups) {
                *why = "invalid group reference in the replacement";
                return -EINVAL;
            }
        }
        if (rules_piece_add(s, group, lit, nlit, &used, why) != 0)
            return -EINVAL;
    }
    return 0;
}

static int rules_grow(struct rules *r, enum rules_kind kind, struct rules_spec **out)
{
    struct rules_spec *v;

    if (r->n[kind] >= RULES_MAX_PER_KIND)
        return -E2BIG;
    v = realloc(r->specs[kind], ((size_t)r->n[kind] + 1) * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    r->specs[kind] = v;
    *out = &v[r->n[kind]];
    memset(*out, 0, sizeof(**out));
    return 0;
}

/* rules_parse fills `s` from `spec`. Returns 0 or -errno with `why` (static or in `buf`). */
static int rules_parse(enum rules_kind kind, const char *spec, struct rules_spec *s,
                       const char **why, char *buf, size_t cap)
{
    struct rules_part pt[4];
    char lower[1024];
    int n, e;

    s->spec = spec;
    s->ppm = 1000000;
    if (spec[0] == '\0') {
        *why = "empty spec";
        return -EINVAL;
    }
    switch (kind) {
    case RULES_MODIFY_HEADERS:
    case RULES_MAP_LOCAL:
    case RULES_MODIFY_BODY:
    case RULES_MAP_REMOTE: {
        /* [SEP FILTER] SEP SUBJECT SEP REPLACEMENT (mitmproxy utils/spec.py) */
        struct rules_part subj, repl;

        n = rules_split(spec, 2, pt);
        if (n < 2) {
            *why = "expected [SEP FILTER]SEP SUBJECT SEP REPLACEMENT (2 or 3 parts)";
            return -EINVAL;
        }
        if (n == 3 && (e = rules_filter(s, pt[0], buf, cap)) != 0) {
            *why = buf;
            return e;
        }
        subj = pt[n - 2];
        repl = pt[n - 1];
        if (kind == RULES_MAP_LOCAL)
            return maplocal_new(subj.p, subj.len, repl.p, repl.len, &s->ml, why, buf, cap);
        if (kind == RULES_MODIFY_HEADERS) {
            const char *w = NULL;

            e = rules_unescape(subj.p, subj.len, &s->owned_name, &s->hdr.name_len, &w);
            if (e == 0 && s->hdr.name_len == 0)
                w = "empty header name", e = -EINVAL;
            for (size_t i = 0; e == 0 && i < s->hdr.name_len; i++)
                if (!rules_is_tchar((unsigned char)s->owned_name[i]))
                    w = "the header name is not an HTTP token", e = -EINVAL;
            if (e == 0 && repl.len > 0 && repl.p[0] == '@') {
                char *path = strndup(repl.p + 1, repl.len - 1);

                if (path == NULL)
                    return -ENOMEM;
                e = rules_read_file(path, &s->owned_value, &s->hdr.value_len, &w);
                if (e != 0 && w != NULL) {
                    snprintf(buf, cap, "cannot read %s: %s", path, w);
                    w = buf;
                }
                free(path);
            } else if (e == 0) {
                e = rules_unescape(repl.p, repl.len, &s->owned_value, &s->hdr.value_len, &w);
            }
            for (size_t i = 0; e == 0 && i < s->hdr.value_len; i++)
                if (s->owned_value[i] == '\r' || s->owned_value[i] == '\n' ||
                    s->owned_value[i] == '\0')
                    w = "CR, LF or NUL in the header value", e = -EINVAL;
            s->hdr.name = s->owned_name;
            s->hdr.value = s->owned_value;
            if (e == 0 && (s->owned_lname = strdup(s->owned_name)) == NULL)
                return -ENOMEM;
            for (size_t i = 0; e == 0 && i < s->hdr.name_len; i++)
                s->owned_lname[i] = (char)tolower((unsigned char)s->owned_lname[i]);
            s->hdr.lname = s->owned_lname;
            *why = w;
            return e;
        } else {
            char pat[1024];
            int ecode;
            PCRE2_SIZE eoff;
            PCRE2_UCHAR msg[120];

            if (subj.len >= sizeof(pat)) {
                *why = "regex too long";
                return -EINVAL;
            }
            memcpy(pat, subj.p, subj.len);
            pat[subj.len] = '\0';
            s->re =
                pcre2_compile((PCRE2_SPTR)pat, subj.len,
                              PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ecode, &eoff, NULL);
            if (s->re == NULL) {
                pcre2_get_error_message(ecode, msg, sizeof(msg));
                snprintf(buf, cap, "invalid regular expression '%s' (%s at offset %zu)", pat,
                         (const char *)msg, (size_t)eoff);
                *why = buf;
                return -EINVAL;
            }
            s->jit = pcre2_jit_compile(s->re, PCRE2_JIT_COMPLETE) == 0;
            if (kind == RULES_MODIFY_BODY && repl.len > 0 && repl.p[0] == '@') {
                /* @FILE: the file's bytes, literally (mitmproxy reads them as the value) */
                char *path = strndup(repl.p + 1, repl.len - 1), *v = NULL;
                size_t vl = 0;
                const char *w = NULL;

                if (path == NULL)
                    return -ENOMEM;
                e = rules_read_file(path, &v, &vl, &w);
                if (e != 0) {
                    snprintf(buf, cap, "cannot read %s: %s", path, w != NULL ? w : "?");
                    *why = buf;
                    free(path);
                    return e;
                }
                free(path);
                s->lit = v;
                s->n_pieces = 1;
                s->pieces[0] = (struct rules_piece){-1, 0, (uint32_t)vl};
                return 0;
            }
            return rules_template(s, repl.p, repl.len, why);
        }
    }
    case RULES_BLOCK_LIST:
    case RULES_INJECT_LATENCY:
    case RULES_INJECT_ERROR: {
        const char *src = spec;
        struct rules_part v;

        if (kind == RULES_BLOCK_LIST) { /* mitmproxy lower-cases the whole spec */
            size_t l = strlen(spec);

            if (l >= sizeof(lower)) {
                *why = "spec too long";
                return -EINVAL;
            }
            for (size_t i = 0; i <= l; i++)
                lower[i] = (char)tolower((unsigned char)spec[i]);
            src = lower;
        }
        if (rules_split(src, 2, pt) != 2) {
            *why = kind == RULES_BLOCK_LIST       ? "expected SEP FILTER SEP STATUS"
                   : kind == RULES_INJECT_LATENCY ? "expected SEP FILTER SEP DELAY[~JITTER]"
                                                  : "expected SEP FILTER SEP STATUS[@PERCENT]";
            return -EINVAL;
        }
        if ((e = rules_filter(s, pt[0], buf, cap)) != 0) {
            *why = buf;
            return e;
        }
        v = pt[1];
        if (kind == RULES_BLOCK_LIST) {
            bool known = false;

            if (rules_status(v.p, v.len, 100, 999, &s->status) == 0)
                for (size_t i = 0; i < sizeof(rules_known_status) / sizeof(int); i++)
                    known = known || rules_known_status[i] == s->status;
            if (!known) {
                *why = "invalid HTTP status code (mitmproxy's known codes; 444 closes)";
                return -EINVAL;
            }
            return 0;
        }
        if (kind == RULES_INJECT_LATENCY) {
            const char *tilde = memchr(v.p, '~', v.len);
            size_t dl = tilde != NULL ? (size_t)(tilde - v.p) : v.len;

            if (rules_duration(v.p, dl, &s->delay_ms) != 0 ||
                (tilde != NULL && rules_duration(tilde + 1, v.len - dl - 1, &s->jitter_ms) != 0)) {
                *why = "expected DELAY[~JITTER] as 250, 250ms, 2s or 1.5s (at most 3600s)";
                return -EINVAL;
            }
            return 0;
        }
        {
            const char *at = memchr(v.p, '@', v.len);
            size_t sl = at != NULL ? (size_t)(at - v.p) : v.len;

            s->fault = RULES_FAULT_STATUS;
            if (rules_status(v.p, sl, 100, 599, &s->status) != 0 ||
                (at != NULL && rules_percent(at + 1, v.len - sl - 1, &s->ppm) != 0)) {
                *why = "expected STATUS[@PERCENT]: a status 100-599, a percentage in (0, 100]";
                return -EINVAL;
            }
            return 0;
        }
    }
    case RULES_INJECT_FAULT:
        if (rules_split(spec, 3, pt) != 3) {
            *why = "expected SEP FILTER SEP PERCENT SEP ACTION (a status, reset or stall)";
            return -EINVAL;
        }
        if ((e = rules_filter(s, pt[0], buf, cap)) != 0) {
            *why = buf;
            return e;
        }
        if (rules_percent(pt[1].p, pt[1].len, &s->ppm) != 0) {
            *why = "expected a percentage in (0, 100]";
            return -EINVAL;
        }
        if (pt[2].len == 5 && strncmp(pt[2].p, "reset", 5) == 0) {
            s->fault = RULES_FAULT_RESET;
        } else if (pt[2].len == 5 && strncmp(pt[2].p, "stall", 5) == 0) {
            s->fault = RULES_FAULT_STALL;
        } else if (rules_status(pt[2].p, pt[2].len, 100, 599, &s->status) == 0) {
            s->fault = RULES_FAULT_STATUS;
        } else {
            *why = "expected the action to be a status 100-599, reset or stall";
            return -EINVAL;
        }
        return 0;
    case RULES_KIND_COUNT:
        break;
    }
    *why = "unknown rule kind";
    return -EINVAL;
}

int rules_add(struct rules *r, enum rules_kind kind, const char *spec, char *err, size_t errlen)
{
    struct rules_spec *s = NULL;
    const char *why = "?";
    char buf[512];
    int e;

    if (kind >= RULES_KIND_COUNT)
        return -EINVAL;
    e = rules_grow(r, kind, &s);
    if (e == -E2BIG) {
        snprintf(err, errlen, "%s: too many specs (at most %d)", rules_kind_name(kind),
                 RULES_MAX_PER_KIND);
        return -EINVAL;
    }
    if (e != 0) {
        snprintf(err, errlen, "%s: out of memory", rules_kind_name(kind));
        return e;
    }
    e = rules_parse(kind, spec, s, &why, buf, sizeof(buf));
    if (e != 0) {
        if (e == -ENOMEM)
            snprintf(err, errlen, "%s: out of memory", rules_kind_name(kind));
        else
            snprintf(err, errlen, "%s: '%s': %s", rules_kind_name(kind), spec, why);
        rules_spec_dispose(s);
        return e == -ENOMEM ? e : -EINVAL;
    }
    r->n[kind]++;
    return 0;
}

int rules_compile(const struct config *cfg, struct rules **out, char *err, size_t errlen)
{
    const char *const *lists[RULES_KIND_COUNT] = {
        cfg->modify_headers, cfg->map_remote,   cfg->block_list, cfg->inject_latency,
        cfg->inject_error,   cfg->inject_fault, cfg->map_local,  cfg->modify_body,
    };
    const int counts[RULES_KIND_COUNT] = {
        cfg->n_modify_headers, cfg->n_map_remote,   cfg->n_block_list, cfg->n_inject_latency,
        cfg->n_inject_error,   cfg->n_inject_fault, cfg->n_map_local,  cfg->n_modify_body,
    };
    struct rules *r = rules_new();
    int e = 0;

    if (r == NULL) {
        snprintf(err, errlen, "rules: out of memory");
        return -ENOMEM;
    }
    r->body_limit = RULES_BODY_LIMIT_DEFAULT;
    if (cfg->body_size_limit != NULL && rules_parse_size(cfg->body_size_limit, &r->body_limit)) {
        snprintf(err, errlen, "body_size_limit: '%s': expected a size such as 3m, 512k or 1g",
                 cfg->body_size_limit);
        rules_free(r);
        return -EINVAL;
    }
    if (cfg->stream_large_bodies != NULL) {
        size_t stream = 0;

        if (rules_parse_size(cfg->stream_large_bodies, &stream)) {
            snprintf(err, errlen,
                     "stream_large_bodies: '%s': expected a size such as 3m, 512k or 1g",
                     cfg->stream_large_bodies);
            rules_free(r);
            return -EINVAL;
        }
        if (stream < r->body_limit) {
            r->body_limit = stream;
            r->body_limit_by_stream = true;
        }
    }
    /* mitmproxy's anticache and anticomp, as header edits on requests ahead of the user's
     * modify_headers (mitmproxy runs those addons first): remove every If-Modified-Since and
     * If-None-Match; replace Accept-Encoding with identity. */
    if (cfg->anticache)
        e = rules_add(r, RULES_MODIFY_HEADERS, "/~q/if-modified-since/", err, errlen);
    if (cfg->anticache && e == 0)
        e = rules_add(r, RULES_MODIFY_HEADERS, "/~q/if-none-match/", err, errlen);
    if (cfg->anticomp && e == 0)
        e = rules_add(r, RULES_MODIFY_HEADERS, "/~q/accept-encoding/identity", err, errlen);
    for (int k = 0; k < RULES_KIND_COUNT && e == 0; k++)
        for (int i = 0; i < counts[k] && e == 0; i++)
            e = rules_add(r, (enum rules_kind)k, lists[k][i], err, errlen);
    if (e != 0) {
        rules_free(r);
        return e;
    }
    *out = r;
    return 0;
}

int rules_check(const struct config *cfg, char *err, size_t errlen)
{
    struct rules *r = NULL;
    char msg[512];
    int e;

    if (cfg->view_filter != NULL &&
        (e = flowfilter_check(cfg->view_filter, msg, sizeof(msg))) != 0) {
        /* the positional filter's message is the filter's own; --set names the option */
        snprintf(err, errlen, "%s%s",
                 cfg->view_filter == cfg->_filter_args ? "" : "dumper_filter: ", msg);
        return e;
    }
    if (cfg->save_stream_filter != NULL &&
        (e = flowfilter_check(cfg->save_stream_filter, msg, sizeof(msg))) != 0) {
        snprintf(err, errlen, "save_stream_filter: %s", msg);
        return e;
    }
    if (cfg->readfile_filter != NULL && /* checked with or without -r, as mitmproxy */
        (e = flowfilter_check(cfg->readfile_filter, msg, sizeof(msg))) != 0) {
        snprintf(err, errlen, "readfile_filter: %s", msg);
        return e;
    }
    e = rules_compile(cfg, &r, err, errlen);
    rules_free(r);
    return e;
}

int rules_parse_size(const char *s, size_t *out)
{
    uint64_t v = 0, mul = 1;
    size_t i = 0, n = strlen(s);

    while (i < n && isdigit((unsigned char)s[i]) && v < (1ull << 40))
        v = v * 10 + (uint64_t)(s[i++] - '0');
    if (i == 0)
        return -EINVAL;
    if (i < n) {
        switch (tolower((unsigned char)s[i++])) {
        case 'b':
            break;
        case 'k':
            mul = 1024;
            break;
        case 'm':
            mul = 1024 * 1024;
            break;
        case 'g':
            mul = 1024 * 1024 * 1024;
            break;
        default:
            return -EINVAL;
        }
    }
    if (i != n || v == 0 || v > (1ull << 40) / mul)
        return -EINVAL;
    *out = (size_t)(v * mul);
    return 0;
}
