/* fuzz_creplay.c - libFuzzer target for client replay's record-to-request step
 * (master/creplay_load.c): one input is one line of a recording. Invariants: a refused line
 * has a reason; a converted one is one whole HTTP/1.1 request in absolute form ending in
 * "connection: close" - its head is complete (never -EAGAIN: mitmd's parser, the one the
 * replayed connection meets, either takes it or refuses what it would refuse from any client)
 * and the bytes after the head are exactly the body its Content-Length announces. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/creplay_load.h"
#include "shared/h1_parse.h"
#include "shared/har.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* need aborts when an invariant does not hold (asserts vanish in release replays). */
static void need(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct h1_header headers[H1_MAX_HEADERS];
    struct har_buf b = {0};
    struct h1_request req;
    const char *why = NULL, *pwhy = NULL;
    enum creplay_skip skip = CREPLAY_SKIP_NONE;
    ssize_t head;
    int e = creplay_load_request((const char *)data, size, &b, &why, &skip);

    if (e != 0) {
        need(e == -EINVAL || e == -ENOMEM);
        need(e == -ENOMEM || (why != NULL && why[0] != '\0' && skip != CREPLAY_SKIP_NONE));
        free(b.p);
        return 0;
    }
    need(b.len > 0 && !b.oom);
    head = h1_parse_request((const uint8_t *)b.p, b.len, 1 << 20, &req, headers, H1_MAX_HEADERS,
                            &pwhy);
    need(head != -EAGAIN);
    if (head > 0) {
        size_t rest = b.len - (size_t)head;

        need(req.minor_version == 1);
        need(!req.framing.chunked && req.framing.conn_close);
        need(req.framing.content_length >= 0 ? (uint64_t)req.framing.content_length == rest
                                             : rest == 0);
        need(memmem(b.p, (size_t)head, "\r\nconnection: close\r\n\r\n", 23) != NULL);
    }
    free(b.p);
    return 0;
}
