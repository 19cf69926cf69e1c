/* creplay_layout.h - client replay's request list in a memfd (master/creplay_load.c writes it
 * once, worker 0 maps it with worker/creplay.c and sends the requests in order): types and
 * static asserts only. Each request is whole HTTP/1.1 bytes in absolute form ending with
 * "connection: close" and its body. The progress page that follows is mapped shared-writable:
 * `done` counts the requests whose exchange has ended (the master watches it to stop, as
 * mitmdump does once client replay is done; a restarted worker 0 goes on from it), `claimed`
 * which one goes next. Offsets
 * are from the start of the memfd; readers re-check every offset and length against `size`. */
#ifndef MITMD_SHARED_CREPLAY_LAYOUT_H
#define MITMD_SHARED_CREPLAY_LAYOUT_H

#include <assert.h>
#include <stdint.h>

#define CREPLAY_MAGIC 0x3152434dU /* "MCR1" */
#define CREPLAY_VERSION 1U

struct creplay_hdr {
    uint32_t magic, version;
    uint32_t n;            /* requests */
    uint32_t _pad;
    uint64_t entries_off;  /* struct creplay_entry[n] */
    uint64_t data_off, data_len;
    uint64_t progress_off; /* page-aligned: struct creplay_progress (shared, writable) */
    uint64_t size;         /* bytes of the memfd */
};
static_assert(sizeof(struct creplay_hdr) == 56, "creplay_hdr layout");

/* struct creplay_entry is one request: its bytes at [off, off + len). */
struct creplay_entry {
    uint64_t off;
    uint64_t len;
};
static_assert(sizeof(struct creplay_entry) == 16, "creplay_entry layout");

/* struct creplay_progress is written by worker 0 (atomic compare-and-swap: during a reload
 * the old and the new worker 0 both run for a moment) and read by the master. */
struct creplay_progress {
    uint32_t done;    /* the requests before it have ended: never goes back */
    uint32_t claimed; /* the next request to send: a worker sends request k after moving this
                       * from k to k + 1; a worker 0 started after a death sets it back to
                       * `done`, so the request that was in flight is sent again */
    int32_t claimer;  /* pid of the worker that claimed last: a new worker 0 leaves the
                       * request in flight to it while it lives (a reload) */
    uint32_t _pad;
};

#endif
