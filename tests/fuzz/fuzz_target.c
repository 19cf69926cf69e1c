/* fuzz_target.c - libFuzzer target: every target_parse entry point on arbitrary bytes, with
 * invariants (slices inside the input, valid hosts, ports in range) and a round trip of
 * accepted authorities through their canonical "host:port" text. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/target_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_slice(const char *base, size_t len, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (p < base || p + n > base + len)
        abort();
}

static void check_target(const char *s, size_t len, const struct target *t)
{
    if (t->host != NULL) {
        check_slice(s, len, t->host, t->host_len);
        if (!target_host_is_valid(t->host, t->host_len))
            abort();
        if (t->is_ip != target_host_is_ip(t->host, t->host_len))
            abort();
        if (t->port == 0)
            abort();
    }
    if (t->path != NULL && (t->path_len == 0 || t->path[0] != '/'))
        abort();
    /* path is a slice of the input, or the static "/" */
    if (t->path != NULL && (t->path < s || t->path >= s + len)) {
        if (t->path_len != 1)
            abort();
    } else if (t->path != NULL) {
        check_slice(s, len, t->path, t->path_len);
    }
    if (t->query != NULL) {
        check_slice(s, len, t->query, t->query_len);
        if (t->query[0] != '?')
            abort();
    }
}

/* roundtrip formats an accepted authority and parses it again: same host, port, flags. */
static void roundtrip(const struct target *t)
{
    char text[TARGET_HOST_MAX + 16];
    struct target u;
    const char *why = NULL;
    int n;

    if (t->host_len > TARGET_HOST_MAX)
        abort();
    n = snprintf(text, sizeof(text), t->is_ipv6 ? "[%.*s]:%u" : "%.*s:%u", (int)t->host_len,
                 t->host, (unsigned)t->port);
    if (n < 0 || (size_t)n >= sizeof(text))
        abort();
    if (target_parse_connect(text, (size_t)n, &u, &why) != 0)
        abort();
    if (u.host_len != t->host_len || memcmp(u.host, t->host, u.host_len) != 0 ||
        u.port != t->port || u.is_ip != t->is_ip || u.is_ipv6 != t->is_ipv6)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct target t;
    const char *why = NULL;

    if (target_parse_connect(s, size, &t, &why) == 0) {
        check_target(s, size, &t);
        if (!t.port_explicit)
            abort();
        roundtrip(&t);
    }
    if (target_parse_absolute(s, size, &t, &why) == 0) {
        check_target(s, size, &t);
        if (t.path == NULL)
            abort();
        roundtrip(&t);
    }
    if (target_parse_host_port(s, size, 80, &t, &why) == 0) {
        check_target(s, size, &t);
        roundtrip(&t);
    }
    if (target_parse_request(s, size, false, &t, &why) == 0)
        check_target(s, size, &t);
    (void)target_host_is_valid(s, size);
    (void)target_host_is_ip(s, size);
    return 0;
}
