/* fuzz_mode_spec.c - libFuzzer target: shared/mode_spec on arbitrary bytes, with invariants:
 * an accepted spec names a known mode, a server spec has a valid host and a port, a listen
 * host is valid, full_spec is the input, its description fits MODE_SPEC_DESC_MAX, and the
 * canonical text of an accepted spec parses again to the same fields;
 * a refusal comes with a reason. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/mode_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* roundtrip formats `m` as a spec and checks that it parses back to the same fields. */
static void roundtrip(const struct mode_spec *m)
{
    char text[2 * TARGET_HOST_MAX + 64], lp[MODE_SPEC_LISTEN_HOST_MAX + 16] = "";
    struct mode_spec n;
    const char *why = NULL;
    int len;

    if (m->has_listen_host)
        snprintf(lp, sizeof(lp), strchr(m->listen_host, ':') ? "@[%s]:%u" : "@%s:%u",
                 m->listen_host, (unsigned)m->listen_port);
    else if (m->has_listen_port)
        snprintf(lp, sizeof(lp), "@%u", (unsigned)m->listen_port);
    if (m->kind == MODE_SPEC_REVERSE || m->kind == MODE_SPEC_UPSTREAM)
        len = snprintf(text, sizeof(text),
                       m->host_is_ipv6 ? "%s:%s://[%s]:%u%s" : "%s:%s://%s:%u%s",
                       mode_spec_kind_name(m->kind), m->tls ? "https" : "http", m->host,
                       (unsigned)m->port, lp);
    else
        len = snprintf(text, sizeof(text), "%s%s", mode_spec_kind_name(m->kind), lp);
    if (len < 0 || (size_t)len >= sizeof(text))
        abort();
    if (mode_spec_parse(text, (size_t)len, &n, &why) != 0)
        abort();
    if (n.kind != m->kind || n.tls != m->tls || strcmp(n.host, m->host) != 0 ||
        n.port != m->port || n.has_listen_port != m->has_listen_port ||
        n.listen_port != m->listen_port || n.has_listen_host != m->has_listen_host ||
        strcmp(n.listen_host, m->listen_host) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mode_spec m;
    const char *why = NULL;
    char *copy = malloc(size + 1); /* exactly the bytes (+1 so that size 0 is valid) */
    int rc;

    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    rc = mode_spec_parse(copy, size, &m, &why);
    free(copy);
    if (rc != 0) {
        if (rc != -EINVAL || why == NULL)
            abort();
        return 0;
    }
    /* full_spec is the input itself, NUL-terminated */
    if (strlen(m.full_spec) != size || memcmp(m.full_spec, data, size) != 0)
        abort();
    {
        char desc[MODE_SPEC_DESC_MAX];

        if (strlen(mode_spec_describe(&m, desc, sizeof(desc))) >= sizeof(desc) - 1)
            abort(); /* MODE_SPEC_DESC_MAX always suffices */
    }
    if (m.kind >= MODE_SPEC_COUNT)
        abort();
    if (m.kind == MODE_SPEC_REVERSE || m.kind == MODE_SPEC_UPSTREAM) {
        if (m.port == 0 || !target_host_is_valid(m.host, strlen(m.host)))
            abort();
    } else if (m.host[0] != '\0' || m.port != 0) {
        abort();
    }
    if (m.has_listen_host && !target_host_is_valid(m.listen_host, strlen(m.listen_host)))
        abort();
    roundtrip(&m);
    return 0;
}
