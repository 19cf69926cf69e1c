/* fuzz_ws_frame.c - libFuzzer target for shared/ws_frame. Invariants, not only "no crash":
 * the counts are the same whether the stream comes whole or split where the first input byte
 * says, and payload bytes never exceed what was fed. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shared/ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ws_frame_count whole, parts;
    size_t split, off = 0;

    if (size == 0)
        return 0;
    split = (size_t)data[0] + 1;
    data++;
    size--;
    memset(&whole, 0, sizeof(whole));
    memset(&parts, 0, sizeof(parts));
    ws_frame_count_feed(&whole, data, size);
    while (off < size) {
        size_t n = size - off < split ? size - off : split;

        ws_frame_count_feed(&parts, data + off, n);
        off += n;
    }
    assert(whole.messages == parts.messages && whole.bytes == parts.bytes &&
           whole.control == parts.control && whole.invalid == parts.invalid);
    assert(whole.messages <= size && whole.control <= size);
    return 0;
}
