/* fuzz_mitmflow.c - libFuzzer target for mitmproxy flow files (master/mitmflow.c): one input
 * is a file's bytes. Invariants: each flow either converts to a record that -r reads
 * (master/rfile.c) and formats as a flow line, or is refused with a reason; the reader stops
 * at the end or with a reason, never past the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "master/mitmflow.h"
#include "master/rfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* need aborts when an invariant does not hold (asserts vanish in release replays). */
static void need(int ok)
{
    if (!ok)
        abort();
}

static struct flow flow;
static struct rfile_strs keep;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char text[FLOW_ARENA_SIZE * 4 + 2048];
    FILE *in;
    char *line = NULL;
    size_t len = 0;
    const char *why = NULL;
    int r, flows = 0;

    if (size == 0)
        return 0;
    in = fmemopen((void *)data, size, "rb");
    if (in == NULL)
        return 0;
    while ((r = mitmflow_read(in, &line, &len, &why)) != 0 && flows++ < 64) {
        if (r != 1) {
            need(why != NULL && why[0] != '\0');
            free(line);
            line = NULL;
            if (r < 0)
                break;
            continue;
        }
        need(line != NULL && line[len] == '\n');
        why = NULL;
        need(rfile_flow_from_line(line, len, &flow, &keep, &why) == 0);
        need(flow_format_line(&flow, text, sizeof(text)) > 0);
        free(line);
        line = NULL;
    }
    fclose(in);
    return 0;
}
