/* replay_key.c - see replay_key.h. */
#include "shared/replay_key.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/sha.h>

#include "shared/target_parse.h"

void replay_key_opts_from(struct replay_key_opts *o, const struct config *cfg)
{
    o->ignore_content = cfg->server_replay_ignore_content;
    o->ignore_host = cfg->server_replay_ignore_host;
    o->ignore_port = cfg->server_replay_ignore_port;
    o->ignore_params = cfg->server_replay_ignore_params;
    o->n_ignore_params = cfg->n_server_replay_ignore_params;
    o->use_headers = cfg->server_replay_use_headers;
    o->n_use_headers = cfg->n_server_replay_use_headers;
    o->ignore_payload_params = cfg->server_replay_ignore_payload_params;
    o->n_ignore_payload_params = cfg->n_server_replay_ignore_payload_params;
}

struct kw {
    char *p;
    size_t cap, len;
    bool full;
};

static void kw_put(struct kw *w, const void *s, size_t n)
{
    if (n > w->cap - w->len) {
        w->full = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static bool param_ignored(const struct replay_key_opts *o, const char *name, size_t n)
{
    for (int i = 0; i < o->n_ignore_params; i++)
        if (strlen(o->ignore_params[i]) == n && memcmp(o->ignore_params[i], name, n) == 0)
            return true;
    return false;
}

static void hex_put(struct kw *w, const uint8_t *md, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char h[2] = {"0123456789abcdef"[md[i] >> 4], "0123456789abcdef"[md[i] & 15]};

        kw_put(w, h, 2);
    }
}

/* ci_contains returns whether `s` (n bytes) contains the lower-case ASCII `lc`,
 * case-insensitively. */
static bool ci_contains(const char *s, size_t n, const char *lc)
{
    size_t k = strlen(lc);

    for (size_t i = 0; k <= n && i <= n - k; i++) {
        size_t j = 0;

        while (j < k && (char)tolower((unsigned char)s[i + j]) == lc[j])
            j++;
        if (j == k)
            return true;
    }
    return false;
}

static bool payload_ignored(const struct replay_key_opts *o, const uint8_t *name, size_t n)
{
    for (int i = 0; i < o->n_ignore_payload_params; i++)
        if (strlen(o->ignore_payload_params[i]) == n &&
            memcmp(o->ignore_payload_params[i], name, n) == 0)
            return true;
    return false;
}

static int hexval(uint8_t c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* form_decode percent-decodes (and turns '+' into ' ') `n` bytes of a urlencoded key or
 * value into `out` (at most `cap` bytes; the rest is dropped and *over set). Returns the
 * decoded length. */
static size_t form_decode(const uint8_t *p, size_t n, uint8_t *out, size_t cap, bool *over)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];

        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
            c = (uint8_t)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
            i += 2;
        }
        if (k < cap)
            out[k++] = c;
        else
            *over = true;
    }
    return k;
}

/* form_field adds one form field to the digest unless its key is ignored. */
static void form_field(const struct replay_key_opts *o, SHA256_CTX *c, const uint8_t *k,
                       size_t kn, const uint8_t *v, size_t vn, int *kept)
{
    if (payload_ignored(o, k, kn))
        return;
    SHA256_Update(c, k, kn);
    SHA256_Update(c, "\0", 1);
    SHA256_Update(c, v, vn);
    SHA256_Update(c, "\0", 1);
    (*kept)++;
}

/* urlencoded_digest digests the fields of an application/x-www-form-urlencoded body (Python's
 * parse_qsl with keep_blank_values: '&'-separated, decoded) minus the ignored keys. Returns
 * the number of fields parsed (0: not a form, key on the raw body). */
static int urlencoded_digest(const struct replay_key_opts *o, const uint8_t *p, size_t n,
                             SHA256_CTX *c)
{
    static _Thread_local uint8_t kb[1024], vb[8192];
    int fields = 0, kept = 0;
    size_t at = 0;

    while (at < n) {
        const uint8_t *amp = memchr(p + at, '&', n - at), *eq;
        size_t end = amp != NULL ? (size_t)(amp - p) : n, kn, vn;
        bool over = false;

        if (end > at) {
            eq = memchr(p + at, '=', end - at);
            kn = form_decode(p + at, (size_t)((eq != NULL ? (size_t)(eq - p) : end) - at), kb,
                             sizeof(kb), &over);
            vn = eq != NULL ? form_decode(eq + 1, (size_t)(p + end - eq - 1), vb, sizeof(vb),
                                          &over)
                            : 0;
            if (over) { /* too long to hold: digest the raw bytes of the pair instead */
                SHA256_Update(c, p + at, end - at);
                SHA256_Update(c, "\0", 1);
            } else {
                form_field(o, c, kb, kn, vb, vn, &kept);
            }
            fields++;
        }
        at = end + 1;
    }
    return fields;
}

/* multipart_digest digests the fields of a multipart/form-data body as mitmproxy's
 * decode_multipart reads them (split at "--BOUNDARY"; a part whose first header line holds
 * name="KEY"; its value: the lines after the first empty one, joined without line breaks)
 * minus the ignored keys. Returns the number of fields (0: key on the raw body). */
static int multipart_digest(const struct replay_key_opts *o, const char *ctype, size_t ctlen,
                            const uint8_t *p, size_t n, SHA256_CTX *c)
{
    char delim[80] = "--";
    const char *b = NULL;
    size_t bl = 0, dl;
    int fields = 0;
    const uint8_t *at = p, *end = p + n;

    for (size_t i = 0; i + 9 <= ctlen; i++)
        if (strncasecmp(ctype + i, "boundary=", 9) == 0) {
            b = ctype + i + 9;
            while (b + bl < ctype + ctlen && b[bl] != ';' && b[bl] != ' ')
                bl++;
            break;
        }
    if (b != NULL && bl >= 2 && b[0] == '"' && b[bl - 1] == '"')
        b++, bl -= 2;
    if (b == NULL || bl == 0 || bl > sizeof(delim) - 3)
        return 0;
    memcpy(delim + 2, b, bl);
    dl = bl + 2;
    while (at < end) { /* one piece: from here to the next delimiter */
        const uint8_t *next = memmem(at, (size_t)(end - at), delim, dl), *ln = at, *pe;
        const uint8_t *line[3] = {NULL, NULL, NULL}, *name = NULL, *val = NULL;
        size_t len[3] = {0, 0, 0}, nl = 0;
        int nlines = 0;

        pe = next != NULL ? next : end;
        /* lines (splitlines on \r\n or \n): the first three are what decode_multipart uses
         * to find the key; the value starts after the first empty line from the third on */
        while (ln < pe) {
            const uint8_t *e = memchr(ln, '\n', (size_t)(pe - ln)), *stop;
            size_t l;

            stop = e != NULL ? e : pe;
            l = (size_t)(stop - ln);
            if (l > 0 && ln[l - 1] == '\r')
                l--;
            if (nlines < 3) {
                line[nlines] = ln;
                len[nlines] = l;
            }
            if (nlines >= 2 && l == 0 && val == NULL) {
                val = stop < pe ? stop + 1 : pe;
                break;
            }
            nlines++;
            ln = stop < pe ? stop + 1 : pe;
        }
        if (line[1] != NULL && !(len[0] >= 2 && line[0][0] == '-' && line[0][1] == '-') &&
            val != NULL) {
            const uint8_t *q = line[1];

            for (size_t i = 0; i + 6 <= len[1]; i++) /* \bname="KEY" */
                if (memcmp(q + i, "name=\"", 6) == 0 &&
                    (i == 0 || !(isalnum(q[i - 1]) || q[i - 1] == '_'))) {
                    const uint8_t *qe = memchr(q + i + 6, '"', len[1] - i - 6);

                    if (qe != NULL && qe > q + i + 6) {
                        name = q + i + 6;
                        nl = (size_t)(qe - name);
                    }
                    break;
                }
        }
        if (name != NULL) {
            const uint8_t *v = val; /* the value: its lines without the breaks */

            if (!payload_ignored(o, name, nl)) {
                SHA256_Update(c, name, nl);
                SHA256_Update(c, "\0", 1);
                while (v < pe) {
                    const uint8_t *e = memchr(v, '\n', (size_t)(pe - v)), *stop;
                    size_t l;

                    stop = e != NULL ? e : pe;
                    l = (size_t)(stop - v);
                    if (l > 0 && v[l - 1] == '\r')
                        l--;
                    SHA256_Update(c, v, l);
                    v = stop < pe ? stop + 1 : pe;
                }
                SHA256_Update(c, "\0", 1);
            }
            fields++;
        }
        if (next == NULL)
            break;
        at = next + dl;
    }
    return fields;
}

/* body_put adds the body part of the key: the SHA-256 of the body, or with
 * ignore_payload_params and a form body, of its fields minus the ignored ones. */
static void body_put(const struct replay_key_opts *o, struct kw *w, const void *body,
                     size_t body_len, const struct replay_key_hdrs *hdrs)
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    const char *ct = NULL;
    size_t ctlen = 0;

    if (o->n_ignore_payload_params > 0 && body_len > 0 && hdrs != NULL &&
        hdrs->get(hdrs->ctx, "content-type", &ct, &ctlen)) {
        SHA256_CTX c;
        int n = 0;

        SHA256_Init(&c);
        if (ci_contains(ct, ctlen, "application/x-www-form-urlencoded"))
            n = urlencoded_digest(o, body, body_len, &c);
        else if (ci_contains(ct, ctlen, "multipart/form-data"))
            n = multipart_digest(o, ct, ctlen, body, body_len, &c);
        if (n > 0) {
            SHA256_Final(md, &c);
            kw_put(w, "\nF ", 3);
            hex_put(w, md, sizeof(md));
            return;
        }
    }
    SHA256(body_len > 0 ? body : (const void *)"", body_len, md);
    kw_put(w, "\nB ", 3);
    hex_put(w, md, sizeof(md));
}

ssize_t replay_key_build(const struct replay_key_opts *o, const char *method, size_t method_len,
                         const char *url, size_t url_len, const void *body, size_t body_len,
                         const struct replay_key_hdrs *hdrs, char *out, size_t cap,
                         const char **why)
{
    struct kw w = {.p = out, .cap = cap};
    struct target t;
    char num[16];

    if (target_parse_absolute(url, url_len, &t, why) != 0)
        return -EINVAL;
    kw_put(&w, "M ", 2);
    kw_put(&w, method, method_len);
    kw_put(&w, t.tls ? "\nS https" : "\nS http", t.tls ? 8 : 7);
    if (!o->ignore_host) {
        kw_put(&w, "\nH ", 3);
        for (size_t i = 0; i < t.host_len; i++) { /* names are case-insensitive */
            char c = t.host[i];

            c = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
            kw_put(&w, &c, 1);
        }
    }
    if (!o->ignore_port) {
        int n = snprintf(num, sizeof(num), "\nP %u", (unsigned)t.port);

        kw_put(&w, num, (size_t)n);
    }
    kw_put(&w, "\nU ", 3);
    kw_put(&w, t.path, t.path_len);
    kw_put(&w, "\nQ", 2);
    if (t.query != NULL) {
        const char *q = t.query + 1, *end = t.query + t.query_len;

        while (q < end) {
            const char *amp = memchr(q, '&', (size_t)(end - q)), *eq;

            if (amp == NULL)
                amp = end;
            eq = memchr(q, '=', (size_t)(amp - q));
            if (amp > q) { /* as Python's parse_qsl: '+' and %XX decoded */
                static _Thread_local uint8_t nb[1024], vb[4096];
                bool over = false;
                size_t nn = form_decode((const uint8_t *)q,
                                        (size_t)((eq != NULL ? eq : amp) - q), nb, sizeof(nb),
                                        &over);
                size_t vn = eq == NULL ? 0 : form_decode((const uint8_t *)eq + 1,
                                                         (size_t)(amp - eq - 1), vb, sizeof(vb),
                                                         &over);

                if (over) { /* too long to decode here: as sent */
                    kw_put(&w, " ", 1);
                    kw_put(&w, q, (size_t)(amp - q));
                } else if (!param_ignored(o, (const char *)nb, nn)) {
                    char len[48]; /* length-prefixed: decoded bytes may be anything */
                    int k = snprintf(len, sizeof(len), " %zu:%zu:", nn, vn);

                    kw_put(&w, len, (size_t)k);
                    kw_put(&w, nb, nn);
                    kw_put(&w, vb, vn);
                }
            }
            q = amp + 1;
        }
    }
    if (!o->ignore_content)
        body_put(o, &w, body, body_len, hdrs);
    for (int i = 0; i < o->n_use_headers; i++) { /* server_replay_use_headers */
        const char *v = NULL;
        size_t vl = 0;

        kw_put(&w, "\nX ", 3);
        for (const char *c = o->use_headers[i]; *c != '\0'; c++) {
            char lc = (char)tolower((unsigned char)*c);

            kw_put(&w, &lc, 1);
        }
        if (hdrs != NULL && hdrs->get(hdrs->ctx, o->use_headers[i], &v, &vl)) {
            kw_put(&w, ": ", 2);
            kw_put(&w, v, vl);
        } else {
            kw_put(&w, " (none)", 7); /* ":" never follows a name otherwise: no collision */
        }
    }
    if (w.full) {
        *why = "request too long to match";
        return -ENOSPC;
    }
    return (ssize_t)w.len;
}
