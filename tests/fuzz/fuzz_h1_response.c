/* fuzz_h1_response.c - libFuzzer target: h1_parse_response and the body framing rules on
 * arbitrary bytes, with invariants (slices inside the head, prefixes incomplete, and the head
 * rebuilt with CRLF from the slices parses to the same status, fields and framing). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/h1_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_slice(const uint8_t *base, size_t len, const char *p, size_t n)
{
    if (n == 0)
        return;
    if ((const uint8_t *)p < base || (const uint8_t *)p + n > base + len)
        abort();
}

/* reserialise rebuilds the parsed head with CRLF line ends from its slices (what a relay
 * that re-emits heads sends) and checks that it parses to the same response. */
static void reserialise(const struct h1_response *resp, const struct h1_header *hdrs,
                        size_t rc)
{
    struct h1_header h2[H1_MAX_HEADERS];
    struct h1_response back;
    const char *why = NULL;
    size_t cap = 2 * rc + 64, n = 0;
    char *out = malloc(cap);

    if (out == NULL)
        abort();
    n += (size_t)snprintf(out + n, cap - n, "HTTP/1.%d %03d %.*s\r\n", resp->minor_version,
                          resp->status, (int)resp->reason_len, resp->reason);
    for (size_t i = 0; i < resp->num_headers; i++)
        n += (size_t)snprintf(out + n, cap - n, "%.*s: %.*s\r\n", (int)hdrs[i].name_len,
                              hdrs[i].name, (int)hdrs[i].value_len, hdrs[i].value);
    n += (size_t)snprintf(out + n, cap - n, "\r\n");
    if (n >= cap)
        abort();
    if (n < H1_HEAD_MAX_DEFAULT) {
        if (h1_parse_response((const uint8_t *)out, n, 0, &back, h2, H1_MAX_HEADERS, &why) !=
            (ssize_t)n)
            abort();
        if (back.status != resp->status || back.num_headers != resp->num_headers ||
            back.framing.content_length != resp->framing.content_length ||
            back.framing.chunked != resp->framing.chunked || back.bare_lf)
            abort();
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "CONNECT", "POST"};
    struct h1_header hdrs[H1_MAX_HEADERS];
    struct h1_response resp, again;
    const char *why = NULL;
    ssize_t rc = h1_parse_response(data, size, 0, &resp, hdrs, H1_MAX_HEADERS, &why);

    if (rc == -EAGAIN) {
        if (size >= H1_HEAD_MAX_DEFAULT)
            abort();
        return 0;
    }
    if (rc < 0) {
        if (why == NULL || resp.err == H1_ERR_NONE || (rc != -EPROTO && rc != -EMSGSIZE))
            abort();
        return 0;
    }
    if ((size_t)rc > size || resp.status < 100 || resp.status > 999)
        abort();
    check_slice(data, (size_t)rc, resp.reason, resp.reason_len);
    for (size_t i = 0; i < resp.num_headers; i++) {
        check_slice(data, (size_t)rc, hdrs[i].name, hdrs[i].name_len);
        check_slice(data, (size_t)rc, hdrs[i].value, hdrs[i].value_len);
    }
    if (resp.framing.chunked && resp.framing.content_length != -1)
        abort();
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        enum h1_body b = h1_response_body(methods[i], strlen(methods[i]), &resp);

        if (b == H1_BODY_LENGTH && resp.framing.content_length <= 0)
            abort();
        if (b == H1_BODY_CHUNKED && !resp.framing.chunked)
            abort();
        if (strcmp(methods[i], "HEAD") == 0 && b != H1_BODY_NONE && b != H1_BODY_TUNNEL)
            abort();
    }
    reserialise(&resp, hdrs, (size_t)rc);
    if (h1_parse_response(data, (size_t)rc, 0, &again, hdrs, H1_MAX_HEADERS, &why) != rc)
        abort();
    if (h1_parse_response(data, (size_t)rc - 1, 0, &again, hdrs, H1_MAX_HEADERS, &why) != -EAGAIN)
        abort();
    return 0;
}
