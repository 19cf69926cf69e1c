/* fuzz_proxy_proto.c - libFuzzer target: proxy_proto_parse on arbitrary bytes, with invariants
 * (a parsed header re-parses alone to the same length and fields; every shorter prefix of it,
 * and of an incomplete input, is -EAGAIN; a refusal has a reason; the fields are consistent;
 * what proxy_proto_format writes from them parses back to the same addresses in both
 * versions). */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "shared/proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check_prefixes aborts unless proxy_proto_parse says -EAGAIN for data[0..n) for the n to
 * check: all of them for short inputs, a sample of them for long v2 headers. */
static void check_prefixes(const uint8_t *data, size_t upto)
{
    struct proxy_proto_hdr h;
    const char *why = NULL;
    size_t step = upto <= 512 ? 1 : upto / 97;

    for (size_t n = 0; n < upto; n += step)
        if (proxy_proto_parse(data, n, &h, &why) != -EAGAIN)
            abort();
    if (upto > 0 && proxy_proto_parse(data, upto - 1, &h, &why) != -EAGAIN)
        abort();
}

static void check_fields(const struct proxy_proto_hdr *h, const uint8_t *data, ssize_t rc)
{
    if (h->version == 1) {
        if (rc > PROXY_PROTO_V1_MAX || data[rc - 2] != '\r' || data[rc - 1] != '\n')
            abort();
    } else if (h->version == 2) {
        if (rc < PROXY_PROTO_V2_FIXED ||
            (size_t)rc != PROXY_PROTO_V2_FIXED + (((size_t)data[14] << 8) | data[15]))
            abort();
    } else {
        abort();
    }
    if (h->local) {
        if (h->src.ss_family != AF_UNSPEC || h->dst.ss_family != AF_UNSPEC || h->addr_len != 0)
            abort();
        return;
    }
    if (h->src.ss_family != h->dst.ss_family)
        abort();
    if (h->src.ss_family == AF_INET ? h->addr_len != sizeof(struct sockaddr_in)
                                    : h->src.ss_family != AF_INET6 ||
                                          h->addr_len != sizeof(struct sockaddr_in6))
        abort();
}

static void check_round_trip(const struct proxy_proto_hdr *h)
{
    uint8_t out[256];

    for (int v = 1; v <= 2; v++) {
        struct proxy_proto_hdr back;
        const char *why = NULL;
        ssize_t n = proxy_proto_format(v, h, out, sizeof(out));

        if (n <= 0 || proxy_proto_parse(out, (size_t)n, &back, &why) != n)
            abort();
        if (back.local != h->local || back.addr_len != h->addr_len ||
            memcmp(&back.src, &h->src, sizeof(h->src)) != 0 ||
            memcmp(&back.dst, &h->dst, sizeof(h->dst)) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_proto_hdr h, again;
    const char *why = NULL;
    ssize_t rc = proxy_proto_parse(data, size, &h, &why);

    if (rc == -EAGAIN) {
        if (size >= PROXY_PROTO_V2_MAX ||
            (size > 0 && data[0] == 'P' && size >= PROXY_PROTO_V1_MAX))
            abort(); /* nothing longer than the longest header is still incomplete */
        check_prefixes(data, size);
        return 0;
    }
    if (rc < 0) {
        if (rc != -EPROTO || why == NULL || why[0] == '\0')
            abort();
        return 0;
    }
    if (rc == 0 || (size_t)rc > size)
        abort();
    check_fields(&h, data, rc);
    /* the header alone parses to the same length and fields; one byte less is incomplete */
    if (proxy_proto_parse(data, (size_t)rc, &again, &why) != rc ||
        memcmp(&again, &h, sizeof(h)) != 0)
        abort();
    check_prefixes(data, (size_t)rc);
    check_round_trip(&h);
    return 0;
}
