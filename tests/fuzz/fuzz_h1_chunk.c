/* fuzz_h1_chunk.c - libFuzzer target: the chunked decoder fed the same bytes in one go, byte
 * by byte and in pieces; all three must agree on consumed bytes, payload, end and error.
 * The first input byte picks the piece size and a trailer limit. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/h1_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
    ssize_t err; /* 0 or the error returned */
    size_t consumed;
    uint64_t payload;
    bool done;
};

static struct run feed(const uint8_t *in, size_t len, size_t step, size_t max_trailer)
{
    struct h1_chunk_decoder d;
    struct run r = {0};
    const char *why = NULL;

    h1_chunk_decoder_init(&d, max_trailer);
    while (r.consumed < len && !h1_chunk_decoder_is_done(&d)) {
        size_t n = len - r.consumed < step ? len - r.consumed : step;
        size_t off, dlen;
        ssize_t rc = h1_chunk_decode(&d, in + r.consumed, n, &off, &dlen, &why);

        if (rc < 0) {
            if (why == NULL)
                abort();
            r.err = rc;
            break;
        }
        if ((size_t)rc > n || off + dlen > (size_t)rc)
            abort();
        if (rc == 0 && n > 0 && !h1_chunk_decoder_is_done(&d))
            abort(); /* no progress on non-empty input */
        r.payload += dlen;
        r.consumed += (size_t)rc;
    }
    r.done = h1_chunk_decoder_is_done(&d);
    if (r.err == 0 && r.payload != h1_chunk_decoder_payload(&d))
        abort();
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run all, bytes, pieces;
    size_t step, max_trailer;

    if (size < 1)
        return 0;
    step = (size_t)(data[0] & 0x1f) + 1;
    max_trailer = (data[0] & 0x80) != 0 ? 32 : 0;
    data++;
    size--;
    all = feed(data, size, size > 0 ? size : 1, max_trailer);
    bytes = feed(data, size, 1, max_trailer);
    pieces = feed(data, size, step, max_trailer);
    if (all.err != bytes.err || all.err != pieces.err)
        abort();
    if (all.err == 0 && (all.consumed != bytes.consumed || all.consumed != pieces.consumed ||
                         all.payload != bytes.payload || all.payload != pieces.payload ||
                         all.done != bytes.done || all.done != pieces.done))
        abort();
    if (all.err == 0 && !all.done && all.consumed != size)
        abort(); /* unless the body ended, everything is consumed */
    return 0;
}
