/* flow_out.h - writes flow records (console lines to stdout, JSON Lines to the -w file, HAR
 * entries to the hardump file) through the ring. A record is never split across write ops (so workers sharing a file
 * never interleave inside a line); queued records go out together in one writev.
 * Owns a fixed pool of record slots and one FIFO per output; when the pool is exhausted the
 * record is dropped and counted (never blocks, never allocates after flow_out_init). */
#ifndef MITMD_WORKER_FLOW_OUT_H
#define MITMD_WORKER_FLOW_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "worker/flow.h"
#include "worker/ring.h"

#define FLOW_OUT_SLOTS 512 /* records queued at once (both outputs); pages touched on use */
#define FLOW_OUT_SLOT_SIZE (48 * 1024)
#define FLOW_OUT_IOV 64 /* records per writev */
#define FLOW_OUT_STREAMS 3 /* console, -w (JSON Lines), hardump (HAR entries) */
#define FLOW_OUT_HEAP_MAX (64u << 20) /* bytes of records with bodies / HAR queued at once */

struct flow_out;

struct flow_out_slot {
    uint32_t len, off;
    int next;      /* FIFO / free list link, -1 = none */
    uint8_t *data; /* FLOW_OUT_SLOT_SIZE bytes, or `heap` */
    uint8_t *heap; /* a record larger than a slot (bodies, HAR entries), freed when written */
};

struct flow_out_stream {
    struct flow_out *o;
    int fd;         /* -1 = disabled */
    int head, tail; /* FIFO of slots; the first `niov` are being written */
    bool busy;
    int niov;
    struct ring_op op;
    struct iovec iov[FLOW_OUT_IOV];
};

struct flow_out {
    struct ring *ring;
    struct flow_out_stream streams[FLOW_OUT_STREAMS];
    struct flow_out_slot slots[FLOW_OUT_SLOTS];
    uint8_t *storage;
    int free_head;
    uint64_t written, dropped, errors;
    uint64_t heap_bytes;    /* of records in `heap` slots now queued (FLOW_OUT_HEAP_MAX) */
    uint64_t write_dropped; /* of `dropped`: records lost to a failed write (e.g. a full disk) */
};

/* FLOW_OUT_FILE_MODE is the mode of a -w file mitmd creates: records hold decrypted
 * cookies and tokens, so only the owner may read them (issue 10 item 7). An existing file
 * keeps its mode. */
#define FLOW_OUT_FILE_MODE 0600

/* flow_out_open_path opens the -w file for appending: "/dev/fd/N" or "/proc/self/fd/N" name
 * a descriptor inherited from the master (duplicated, close-on-exec; it must be open for
 * writing), anything else is opened O_WRONLY|O_APPEND|O_CREAT with FLOW_OUT_FILE_MODE.
 * Returns the new descriptor (owned by the caller) or -errno. May block (start-up). */
int flow_out_open_path(const char *path);

/* flow_out_init sets up the writer: console lines go to `console_fd` (-1 = none, e.g. -q),
 * JSON Lines to `path` opened with flow_out_open_path (NULL = none). Allocates the slots
 * and opens the file (start-up: may block). Returns 0 or -errno with `*why` set. */
int flow_out_init(struct flow_out *o, struct ring *r, int console_fd, const char *path,
                  const char **why);

/* flow_out_open_har makes `path` (opened with flow_out_open_path; the master created it and
 * wrote the document's head, shared/har.h) the destination of one HAR entry per record.
 * Start-up: may block. Returns 0 or -errno with `*why` set. */
int flow_out_open_har(struct flow_out *o, const char *path, const char **why);

/* flow_out_dispose closes the file and frees the slots; writes still queued are lost. */
void flow_out_dispose(struct flow_out *o);

/* flow_out_record formats `f` for each enabled output and queues the writes. With bodies
 * captured (worker/flow_body.h) the -w record carries them, and the record goes out of a
 * heap buffer (at most FLOW_OUT_HEAP_MAX bytes queued; beyond, bodies are left out and the
 * record says "bodies_dropped": true). Returns 0, or
 * -ENOBUFS if a record was dropped because the writers are behind (counted in `dropped`). */
int flow_out_record(struct flow_out *o, const struct flow *f);

/* flow_out_record_to is flow_out_record for the outputs in `streams` only: bit 0 the console,
 * bit 1 the -w file, bit 2 the HAR file (disabled outputs are skipped either way). */
int flow_out_record_to(struct flow_out *o, const struct flow *f, unsigned streams);

/* flow_out_line queues `len` bytes of text (one or more whole lines) for the console, as a
 * flow line goes (nothing when the console is off). Returns 0, -ENOBUFS when the writer is
 * behind (counted in `dropped`) or -EMSGSIZE for text longer than a slot. */
int flow_out_line(struct flow_out *o, const char *text, size_t len);

/* flow_out_is_idle returns whether nothing is queued or being written. */
bool flow_out_is_idle(const struct flow_out *o);

#endif
