/* fuzz_socks5.c - libFuzzer target: shared/socks5_parse on arbitrary bytes, with invariants:
 * a greeting or request taken is re-parsed to the same length alone, one byte less is -EAGAIN;
 * a request's host is a valid host name or address of host_len bytes and its port is not 0;
 * errors come with a reason; an RFC 1929 username/password request taken holds exactly its
 * bytes. The first byte picks: bit 1 set, username/password; else greeting (even) or request
 * (odd). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/socks5_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_greeting(const uint8_t *p, size_t n)
{
    struct socks5_greeting g;
    const char *why = NULL;
    ssize_t rc = socks5_parse_greeting(p, n, &g, &why);

    if (rc == -EAGAIN)
        return;
    if (rc < 0) {
        if (rc != -EPROTO || why == NULL)
            abort();
        return;
    }
    if ((size_t)rc > n || (size_t)rc != 2 + (size_t)g.n_methods || g.n_methods == 0)
        abort();
    if (socks5_parse_greeting(p, (size_t)rc, &g, &why) != rc)
        abort();
    if (socks5_parse_greeting(p, (size_t)rc - 1, &g, &why) != -EAGAIN)
        abort();
}

static void fuzz_request(const uint8_t *p, size_t n)
{
    struct socks5_request r;
    const char *why = NULL;
    ssize_t rc = socks5_parse_request(p, n, &r, &why);

    if (rc == -EAGAIN)
        return;
    if (rc < 0) {
        if ((rc != -EPROTO && rc != -EAFNOSUPPORT) || why == NULL)
            abort();
        return;
    }
    if ((size_t)rc > n || (size_t)rc > SOCKS5_REQUEST_MAX || r.port == 0)
        abort();
    if (r.host_len == 0 || r.host_len > TARGET_HOST_MAX || strlen(r.host) != r.host_len)
        abort();
    if (!target_host_is_valid(r.host, r.host_len))
        abort();
    if ((r.atyp != SOCKS5_ATYP_DOMAIN) != target_host_is_ip(r.host, r.host_len) &&
        r.atyp != SOCKS5_ATYP_DOMAIN)
        abort(); /* an address type gives an address */
    if (socks5_parse_request(p, (size_t)rc, &r, &why) != rc)
        abort();
    if (socks5_parse_request(p, (size_t)rc - 1, &r, &why) != -EAGAIN)
        abort();
}

static void fuzz_userpass(const uint8_t *p, size_t n)
{
    struct socks5_userpass u;
    const char *why = NULL;
    ssize_t rc = socks5_parse_userpass(p, n, &u, &why);

    if (rc == -EAGAIN)
        return;
    if (rc < 0) {
        if (rc != -EPROTO || why == NULL)
            abort();
        return;
    }
    if ((size_t)rc > n || (size_t)rc > SOCKS5_USERPASS_MAX || (size_t)rc != 3 + u.user_len + u.pass_len)
        abort();
    if (memcmp(u.user, p + 2, u.user_len) != 0 || memcmp(u.pass, p + 3 + u.user_len, u.pass_len) != 0)
        abort();
    if (socks5_parse_userpass(p, (size_t)rc, &u, &why) != rc)
        abort();
    if (socks5_parse_userpass(p, (size_t)rc - 1, &u, &why) != -EAGAIN)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy;

    if (size == 0)
        return 0;
    copy = malloc(size - 1 + 1); /* exactly the bytes: ASan sees any overread */
    if (copy == NULL)
        return 0;
    memcpy(copy, data + 1, size - 1);
    if (data[0] & 2)
        fuzz_userpass(copy, size - 1);
    else if (data[0] & 1)
        fuzz_request(copy, size - 1);
    else
        fuzz_greeting(copy, size - 1);
    free(copy);
    return 0;
}
