/* fuzz_client_hello.c - libFuzzer target: tls_peek_client_hello_sni and
 * tls_peek_is_client_hello on arbitrary first bytes of a client connection (peer input,
 * parsed before any TLS state exists). Aborts when a result breaks the documented contract. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/tls_peek.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[254], small[8];
    ssize_t r = tls_peek_client_hello_sni(data, size, out, sizeof(out));
    bool hello = tls_peek_is_client_hello(data, size);

    if (r >= 0) {
        /* A complete ClientHello: the name is printable, NUL-terminated, r bytes long. */
        if ((size_t)r != strlen(out) || !hello)
            abort();
        for (ssize_t i = 0; i < r; i++)
            if (out[i] <= 0x20 || out[i] >= 0x7f)
                abort();
    } else if (r != -EAGAIN && r != -EPROTO && r != -EMSGSIZE) {
        abort();
    } else if (out[0] != '\0') {
        abort();
    }
    if (r == -EAGAIN && size > 0 && !hello)
        abort(); /* "need more" only for bytes that can still become a ClientHello */
    /* A smaller output buffer changes only the too-long case. */
    r = tls_peek_client_hello_sni(data, size, small, sizeof(small));
    if (r >= (ssize_t)sizeof(small))
        abort();
    return 0;
}
