/* fuzz_tls_alert.c - libFuzzer target for worker/tls_alert. Invariants, not only "no crash":
 * the walk gives the same alert and validity whether the bytes come whole or split where the
 * first input byte says, and a reported alert is a byte value (0..255). */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/tls_alert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tls_alert_walk whole, parts;
    size_t split, off = 0;

    if (size == 0)
        return 0;
    split = (size_t)data[0] + 1;
    data++;
    size--;
    tls_alert_walk_init(&whole);
    tls_alert_walk_feed(&whole, data, size);
    tls_alert_walk_init(&parts);
    while (off < size) {
        size_t n = size - off < split ? size - off : split;

        tls_alert_walk_feed(&parts, data + off, n);
        off += n;
    }
    assert(whole.alert == parts.alert && whole.invalid == parts.invalid);
    assert(whole.alert >= -1 && whole.alert <= 255);
    return 0;
}
