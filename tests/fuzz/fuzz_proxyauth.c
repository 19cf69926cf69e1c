/* fuzz_proxyauth.c - libFuzzer target: shared/proxyauth's two parsers on arbitrary bytes. The
 * first byte picks: even = one htpasswd line (proxyauth_parse_line), odd = a Proxy-Authorization
 * value (proxyauth_parse_basic). Invariants: an entry has a user of 1..255 bytes without NUL
 * or colon and a hash of at most PROXYAUTH_HASH_MAX bytes of a supported scheme; errors come
 * with a reason; decoded credentials fit their bounds, and "Basic " + base64(user:pass) of
 * what was decoded parses back to the same bytes. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/base64.h>

#include "shared/proxyauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_line(const char *p, size_t n)
{
    struct proxyauth_entry e;
    const char *why = NULL;
    int rc = proxyauth_parse_line(p, n, &e, &why);

    if (rc < 0) {
        if (rc != -EPROTO || why == NULL)
            abort();
        return;
    }
    if (rc == 0)
        return;
    if (rc != 1 || e.user_len == 0 || e.user_len > PROXYAUTH_CRED_MAX ||
        memchr(e.user, ':', e.user_len) != NULL || memchr(e.user, '\0', e.user_len) != NULL ||
        e.user[e.user_len] != '\0' || e.hash_len > PROXYAUTH_HASH_MAX ||
        e.hash[e.hash_len] != '\0')
        abort();
    if (e.scheme != PROXYAUTH_SCHEME_BCRYPT && e.scheme != PROXYAUTH_SCHEME_SHA1 &&
        e.scheme != PROXYAUTH_SCHEME_APR1)
        abort();
}

static void fuzz_basic(const char *p, size_t n)
{
    char user[PROXYAUTH_CRED_MAX + 1], pass[PROXYAUTH_CRED_MAX + 1];
    char user2[PROXYAUTH_CRED_MAX + 1], pass2[PROXYAUTH_CRED_MAX + 1];
    uint8_t raw[2 * PROXYAUTH_CRED_MAX + 1];
    char value[6 + PROXYAUTH_TOKEN_MAX + 8];
    size_t ulen, plen, ulen2, plen2;
    const char *why = NULL;
    int rc = proxyauth_parse_basic(p, n, user, &ulen, pass, &plen, &why);

    if (rc != 0) {
        if ((rc != -EPROTO && rc != -EMSGSIZE) || why == NULL)
            abort();
        return;
    }
    if (ulen > PROXYAUTH_CRED_MAX || plen > PROXYAUTH_CRED_MAX || user[ulen] != '\0' ||
        pass[plen] != '\0' || memchr(user, ':', ulen) != NULL)
        abort();
    memcpy(raw, user, ulen);
    raw[ulen] = ':';
    memcpy(raw + ulen + 1, pass, plen);
    memcpy(value, "Basic ", 6);
    EVP_EncodeBlock((uint8_t *)value + 6, raw, ulen + 1 + plen);
    if (proxyauth_parse_basic(value, strlen(value), user2, &ulen2, pass2, &plen2, &why) != 0 ||
        ulen2 != ulen || plen2 != plen || memcmp(user, user2, ulen) != 0 ||
        memcmp(pass, pass2, plen) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy;

    if (size == 0)
        return 0;
    copy = malloc(size - 1 + 1); /* exactly the bytes: ASan sees any overread */
    if (copy == NULL)
        return 0;
    memcpy(copy, data + 1, size - 1);
    if (data[0] & 1)
        fuzz_basic(copy, size - 1);
    else
        fuzz_line(copy, size - 1);
    free(copy);
    return 0;
}
