/* fuzz_rfile.c - libFuzzer target for -r (master/rfile.c): one input is one line of a
 * recording. Invariants: a refused line has a reason; a read flow formats as a flow line
 * ending in '\n' and as a record that reads back to the same line; filters evaluate on it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/rfile.h"
#include "worker/flowfilter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* need aborts when an invariant does not hold (asserts vanish in release replays). */
static void need(int ok)
{
    if (!ok)
        abort();
}

static struct flow flow_a, flow_b;
static struct rfile_strs keep;
static struct flowfilter *ff;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char json[65536], la[FLOW_ARENA_SIZE * 4 + 2048], lb[FLOW_ARENA_SIZE * 4 + 2048];
    const char *why = NULL;
    ssize_t n, na, nb;
    char err[256];

    if (ff == NULL &&
        flowfilter_compile("~d a | ~u b | ~h c | ~c 200 | ~e | ~websocket | ~src 1 | ~dst 2",
                           &ff, err, sizeof(err)) != 0)
        abort();
    if (rfile_flow_from_line((const char *)data, size, &flow_a, &keep, &why) != 0) {
        need(why != NULL && why[0] != '\0');
        return 0;
    }
    flow_a.proxy_mode_in_line = true;
    (void)flowfilter_match(ff, &flow_a);
    na = flow_format_line(&flow_a, la, sizeof(la));
    need(na > 0 && la[na - 1] == '\n');
    n = flow_format_json(&flow_a, json, sizeof(json));
    need(n > 1 && json[n - 1] == '\n');
    need(rfile_flow_from_line(json, (size_t)n - 1, &flow_b, &keep, &why) == 0);
    flow_b.proxy_mode_in_line = true; /* as flow_a's: the mode is shown */
    nb = flow_format_line(&flow_b, lb, sizeof(lb));
    need(nb == na && memcmp(la, lb, (size_t)na) == 0);
    return 0;
}
