/* replay_key.c - see replay_key.h. */
#include "shared/replay_key.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "shared/target_parse.h"

void replay_key_opts_from(struct replay_key_opts *o, const struct config *cfg)
{
    o->ignore_content = cfg->server_replay_ignore_content;
    o->ignore_host = cfg->server_replay_ignore_host;
    o->ignore_port = cfg->server_replay_ignore_port;
    o->ignore_params = cfg->server_replay_ignore_params;
    o->n_ignore_params = cfg->n_server_replay_ignore_params;
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

ssize_t replay_key_build(const struct replay_key_opts *o, const char *method, size_t method_len,
                         const char *url, size_t url_len, const void *body, size_t body_len,
                         char *out, size_t cap, const char **why)
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
            if (amp > q && !param_ignored(o, q, (size_t)((eq != NULL ? eq : amp) - q))) {
                kw_put(&w, " ", 1);
                kw_put(&w, q, (size_t)(amp - q));
            }
            q = amp + 1;
        }
    }
    if (!o->ignore_content) {
        uint8_t md[SHA256_DIGEST_LENGTH];
        char hex[2 * SHA256_DIGEST_LENGTH];

        SHA256(body_len > 0 ? body : (const void *)"", body_len, md);
        for (size_t i = 0; i < sizeof(md); i++) {
            hex[2 * i] = "0123456789abcdef"[md[i] >> 4];
            hex[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
        }
        kw_put(&w, "\nB ", 3);
        kw_put(&w, hex, sizeof(hex));
    }
    if (w.full) {
        *why = "request too long to match";
        return -ENOSPC;
    }
    return (ssize_t)w.len;
}
