/* fuzz_replay_key.c - libFuzzer target for server replay's request key and refresh parsers:
 * the input is [option byte][content-type NUL-terminated][body], keyed with the form
 * parsers (ignore_payload_params: urlencoded and multipart/form-data, shared/replay_key.c)
 * and use_headers, twice (a key is a pure function of its input); the same bytes are also
 * read as an HTTP date and as a Set-Cookie value to refresh (shared/http_date.c).
 * Invariants: the key is deterministic and within its bound; a parsed date formats and
 * parses back to itself; a refreshed cookie fits its buffer. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "shared/http_date.h"
#include "shared/replay_key.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct one_hdr {
    const char *ct;
    size_t len;
};

static bool get(const void *ctx, const char *name, const char **v, size_t *len)
{
    const struct one_hdr *h = ctx;

    if (strcasecmp(name, "content-type") != 0 && strcasecmp(name, "x-h") != 0)
        return false;
    *v = h->ct;
    *len = h->len;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char k1[REPLAY_KEY_MAX], k2[REPLAY_KEY_MAX], ck[4096];
    const char *ign[] = {"ts", "user", ""}, *use[] = {"X-H"}, *why = NULL;
    struct replay_key_opts o = {0};
    struct one_hdr h = {"", 0};
    struct replay_key_hdrs hd = {.get = get, .ctx = &h};
    const uint8_t *body = data, *nul;
    size_t blen = size;
    ssize_t n1, n2;
    int64_t t, t2;
    char d[HTTP_DATE_LEN + 1];

    if (size > 0) {
        o.ignore_payload_params = ign;
        o.n_ignore_payload_params = data[0] & 3;
        o.use_headers = use;
        o.n_use_headers = (data[0] >> 2) & 1;
        body = data + 1;
        blen = size - 1;
        nul = memchr(body, 0, blen);
        if (nul != NULL) {
            h.ct = (const char *)body;
            h.len = (size_t)(nul - body);
            blen -= h.len + 1;
            body = nul + 1;
        }
    }
    n1 = replay_key_build(&o, "POST", 4, "https://a.test/f?ts=1&b", 23, body, blen, &hd, k1,
                          sizeof(k1), &why);
    n2 = replay_key_build(&o, "POST", 4, "https://a.test/f?ts=1&b", 23, body, blen, &hd, k2,
                          sizeof(k2), &why);
    if (n1 != n2 || (n1 > 0 && memcmp(k1, k2, (size_t)n1) != 0) || n1 > (ssize_t)sizeof(k1))
        __builtin_trap();
    if (http_date_parse((const char *)data, size, &t) && http_date_format(t, d) != 0) {
        if (!http_date_parse(d, HTTP_DATE_LEN, &t2) || t2 != t)
            __builtin_trap();
    }
    if (http_date_refresh_cookie((const char *)data, size, 86400, ck, sizeof(ck)) > sizeof(ck))
        __builtin_trap();
    return 0;
}
