/* fuzz_h1_request.c - libFuzzer target: h1_parse_request on arbitrary bytes, with invariants
 * (slices inside the head, consistent results on the head alone and on its prefixes, Host
 * and request-target accepted by target_parse, and the head rebuilt with CRLF from the slices
 * parses to the same fields and framing, whatever line ends the input used). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/h1_parse.h"
#include "shared/target_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_slice(const uint8_t *base, size_t len, const char *p, size_t n)
{
    if (n == 0)
        return;
    if ((const uint8_t *)p < base || (const uint8_t *)p + n > base + len)
        abort();
}

/* reserialise rebuilds the parsed head with CRLF line ends from its slices (what a relay
 * that re-emits heads sends) and checks that it parses to the same request. */
static void reserialise(const struct h1_request *req, const struct h1_header *hdrs, size_t rc)
{
    struct h1_header h2[H1_MAX_HEADERS];
    struct h1_request back;
    const char *why = NULL;
    size_t cap = 2 * rc + 64, n = 0;
    char *out = malloc(cap);

    if (out == NULL)
        abort();
    n += (size_t)snprintf(out + n, cap - n, "%.*s %.*s HTTP/1.%d\r\n", (int)req->method_len,
                          req->method, (int)req->target_len, req->target, req->minor_version);
    for (size_t i = 0; i < req->num_headers; i++)
        n += (size_t)snprintf(out + n, cap - n, "%.*s: %.*s\r\n", (int)hdrs[i].name_len,
                              hdrs[i].name, (int)hdrs[i].value_len, hdrs[i].value);
    n += (size_t)snprintf(out + n, cap - n, "\r\n");
    if (n >= cap)
        abort();
    if (n < H1_HEAD_MAX_DEFAULT) {
        if (h1_parse_request((const uint8_t *)out, n, 0, &back, h2, H1_MAX_HEADERS, &why) !=
            (ssize_t)n)
            abort();
        if (back.num_headers != req->num_headers ||
            back.framing.content_length != req->framing.content_length ||
            back.framing.chunked != req->framing.chunked ||
            back.framing.keep_alive != req->framing.keep_alive || back.host_len != req->host_len ||
            back.bare_lf)
            abort();
        for (size_t i = 0; i < req->num_headers; i++)
            if (h2[i].value_len != hdrs[i].value_len ||
                memcmp(h2[i].value, hdrs[i].value, hdrs[i].value_len) != 0)
                abort();
    }
    free(out);
}

static void parse(const uint8_t *data, size_t size, size_t max_head)
{
    struct h1_header hdrs[H1_MAX_HEADERS];
    struct h1_request req, again;
    const char *why = NULL;
    ssize_t rc = h1_parse_request(data, size, max_head, &req, hdrs, H1_MAX_HEADERS, &why);
    size_t limit = max_head != 0 ? max_head : H1_HEAD_MAX_DEFAULT;

    if (rc == -EAGAIN) {
        if (req.err != H1_ERR_NONE || size >= limit)
            abort(); /* an incomplete head never exceeds the limit */
        return;
    }
    if (rc < 0) {
        if (why == NULL || req.err == H1_ERR_NONE || h1_err_status(req.err) < 400)
            abort();
        if (rc != -EPROTO && rc != -EMSGSIZE)
            abort();
        if (req.err == H1_ERR_TOO_LARGE && size < limit)
            abort();
        return;
    }
    if ((size_t)rc > size || (size_t)rc > limit || req.num_headers > H1_MAX_HEADERS)
        abort();
    check_slice(data, (size_t)rc, req.method, req.method_len);
    check_slice(data, (size_t)rc, req.target, req.target_len);
    if (req.method_len == 0 || req.target_len == 0)
        abort();
    for (size_t i = 0; i < req.num_headers; i++) {
        check_slice(data, (size_t)rc, hdrs[i].name, hdrs[i].name_len);
        check_slice(data, (size_t)rc, hdrs[i].value, hdrs[i].value_len);
        if (hdrs[i].name_len == 0 || memchr(hdrs[i].value, '\r', hdrs[i].value_len) != NULL ||
            memchr(hdrs[i].value, '\n', hdrs[i].value_len) != NULL)
            abort();
    }
    if (req.framing.chunked && req.framing.content_length != -1)
        abort(); /* never both framings */
    if (req.host != NULL && req.host_len > 0) {
        struct target t;

        check_slice(data, (size_t)rc, req.host, req.host_len);
        if (target_parse_host_port(req.host, req.host_len, 80, &t, &why) != 0)
            abort();
    }
    {
        struct target t;

        (void)target_parse_request(req.target, req.target_len,
                                   h1_method_is(req.method, req.method_len, "CONNECT"), &t, &why);
    }
    (void)h1_request_body(&req);
    reserialise(&req, hdrs, (size_t)rc);
    /* the head alone parses to the same length; one byte less is incomplete */
    if (h1_parse_request(data, (size_t)rc, max_head, &again, hdrs, H1_MAX_HEADERS, &why) != rc)
        abort();
    if (h1_parse_request(data, (size_t)rc - 1, max_head, &again, hdrs, H1_MAX_HEADERS, &why) !=
        -EAGAIN)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse(data, size, 0);
    parse(data, size, 64); /* a tiny limit exercises the 431 path on short inputs */
    return 0;
}
