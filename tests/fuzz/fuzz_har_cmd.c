/* fuzz_har_cmd.c - libFuzzer target for `mitmd har`: one input is one -w line (the record to
 * HAR entry converter, master/har_cmd.c) and a HAR document to scan (shared/har.c, the kill -9
 * repair). Invariants: a converted entry is JSON that starts with {"startedDateTime"; a
 * refused line has a reason; the scan's end lies between the head and the input's end. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/har_cmd.h"
#include "shared/har.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    char *e = har_cmd_entry((const char *)data, size, err, sizeof(err));
    size_t head = 0, end = 0, n = 0;
    bool closed = false;
    uint8_t *out;

    if (e != NULL) {
        assert(strncmp(e, "{\"startedDateTime\":", 19) == 0);
        free(e);
    } else {
        assert(err[0] != '\0');
    }
    if (har_scan_entries((const char *)data, size, &head, &end, &n, &closed) == 0) {
        assert(head <= end && end <= size && (n == 0) == (end == head));
        (void)closed;
    }
    out = malloc(size / 4 * 3 + 3);
    if (out != NULL) {
        ssize_t m = har_base64_decode((const char *)data, size, out);

        assert(m < 0 || (size_t)m <= size / 4 * 3 + 3);
        (void)m;
        free(out);
    }
    return 0;
}
