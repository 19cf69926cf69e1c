/* flow_out.c - see flow_out.h. One write op in flight per output keeps records in order;
 * a short write (rare: a full disk, a pipe) resubmits the rest of the same record. */
#include "worker/flow_out.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/har.h"
#include "shared/log.h"
#include "worker/flow_har.h"

/* a record always fits a slot: flow_format_json falls back to a compact form */
static_assert(FLOW_OUT_SLOT_SIZE >= FLOW_JSON_COMPACT_MAX, "a compact JSON record fits a slot");

static void flow_out_kick(struct flow_out *o, int stream);

static void flow_out_slot_free(struct flow_out *o, int idx)
{
    struct flow_out_slot *s = &o->slots[idx];

    if (s->heap != NULL) {
        o->heap_bytes -= s->len;
        free(s->heap);
        s->heap = NULL;
        s->data = o->storage + (size_t)idx * FLOW_OUT_SLOT_SIZE;
    }
    o->slots[idx].next = o->free_head;
    o->free_head = idx;
}

/* flow_out_pop frees the head slot of `st`. */
static void flow_out_pop(struct flow_out *o, struct flow_out_stream *st)
{
    int idx = st->head;

    st->head = o->slots[idx].next;
    if (st->head == -1)
        st->tail = -1;
    flow_out_slot_free(o, idx);
}

/* flow_out_cut_partial removes from a regular file the start of a record that a short write
 * left there before the write failed (a full disk: nobody else can append either), so that the
 * file holds whole lines only. Rare path: the blocking fstat/ftruncate are acceptable. */
static void flow_out_cut_partial(struct flow_out_stream *st)
{
    struct flow_out *o = st->o;
    struct stat sb;
    uint32_t part;

    if (st->head == -1 || (part = o->slots[st->head].off) == 0)
        return;
    if (fstat(st->fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= (off_t)part &&
        ftruncate(st->fd, sb.st_size - (off_t)part) == 0)
        o->slots[st->head].off = 0;
}

static void flow_out_on_write(struct ring_op *op, int res, uint32_t flags)
{
    struct flow_out_stream *st =
        (struct flow_out_stream *)((char *)op - offsetof(struct flow_out_stream, op));
    struct flow_out *o = st->o;
    size_t done = res > 0 ? (size_t)res : 0;
    int n = st->niov;

    (void)flags;
    st->busy = false;
    st->niov = 0;
    if (res < 0) {
        if (o->errors++ == 0)
            log_warn("flow output write failed: %s", strerror(-res));
        flow_out_cut_partial(st);
        for (int i = 0; i < n && st->head != -1; i++) {
            flow_out_pop(o, st); /* lost: counted as dropped */
            o->dropped++;
            o->write_dropped++;
        }
        flow_out_kick(o, (int)(st - o->streams));
        return;
    }
    /* whole records are done; a short write leaves the rest of one record for the next */
    for (int i = 0; i < n && st->head != -1; i++) {
        struct flow_out_slot *s = &o->slots[st->head];
        size_t rest = s->len - s->off;

        if (done < rest) {
            s->off += (uint32_t)done;
            break;
        }
        done -= rest;
        o->written++;
        flow_out_pop(o, st);
    }
    flow_out_kick(o, (int)(st - o->streams));
}

/* flow_out_kick writes the queued records of `stream` in one writev unless one is in
 * flight. */
static void flow_out_kick(struct flow_out *o, int stream)
{
    struct flow_out_stream *st = &o->streams[stream];
    int idx, n = 0, err;

    if (st->busy || st->head == -1)
        return;
    for (idx = st->head; idx != -1 && n < FLOW_OUT_IOV; idx = o->slots[idx].next) {
        st->iov[n].iov_base = o->slots[idx].data + o->slots[idx].off;
        st->iov[n].iov_len = o->slots[idx].len - o->slots[idx].off;
        n++;
    }
    err = ring_submit_writev(o->ring, &st->op, st->fd, st->iov, (unsigned)n);
    if (err) {
        /* cannot submit now: keep the records; the next record or completion retries */
        if (o->errors++ == 0)
            log_warn("flow output: cannot queue a write: %s", strerror(-err));
        return;
    }
    st->busy = true;
    st->niov = n;
}

/* flow_out_inherited_fd returns N if `path` names an inherited descriptor ("/dev/fd/N" or
 * "/proc/self/fd/N", as the master passes the -w file it opened), else -1. */
static int flow_out_inherited_fd(const char *path)
{
    static const char *const prefixes[] = {"/dev/fd/", "/proc/self/fd/"};

    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t plen = strlen(prefixes[i]);
        char *end = NULL;
        long n;

        if (strncmp(path, prefixes[i], plen) != 0 || path[plen] < '0' || path[plen] > '9')
            continue;
        errno = 0;
        n = strtol(path + plen, &end, 10);
        if (errno == 0 && *end == '\0' && n >= 0 && n <= INT_MAX)
            return (int)n;
    }
    return -1;
}

int flow_out_open_path(const char *path)
{
    int inherited = flow_out_inherited_fd(path), fd;

    if (inherited >= 0) {
        /* reopening through /proc would redo the permission check (the worker may run as
         * another user than the one that opened the file): duplicate it instead */
        fd = fcntl(inherited, F_DUPFD_CLOEXEC, 0);
        if (fd == -1)
            return -errno;
        if ((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY) {
            close(fd);
            return -EBADF;
        }
        return fd;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, FLOW_OUT_FILE_MODE);
    return fd == -1 ? -errno : fd;
}

int flow_out_init(struct flow_out *o, struct ring *r, int console_fd, const char *path,
                  const char **why)
{
    size_t len = (size_t)FLOW_OUT_SLOTS * FLOW_OUT_SLOT_SIZE;
    int i;

    memset(o, 0, sizeof(*o));
    o->ring = r;
    o->streams[0].fd = console_fd;
    o->streams[1].fd = -1;
    o->streams[2].fd = -1;
    for (i = 0; i < FLOW_OUT_STREAMS; i++) {
        o->streams[i].o = o;
        o->streams[i].head = -1;
        o->streams[i].tail = -1;
        ring_op_init(&o->streams[i].op, flow_out_on_write, NULL);
    }
    o->storage = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (o->storage == MAP_FAILED) {
        o->storage = NULL;
        *why = "cannot map the flow output buffers";
        return -ENOMEM;
    }
    o->free_head = -1;
    for (i = FLOW_OUT_SLOTS - 1; i >= 0; i--) {
        o->slots[i].data = o->storage + (size_t)i * FLOW_OUT_SLOT_SIZE;
        flow_out_slot_free(o, i);
    }
    if (path != NULL) {
        int fd = flow_out_open_path(path);

        if (fd < 0) {
            int err = fd;

            *why = "cannot open the flow file (-w)";
            munmap(o->storage, len);
            o->storage = NULL;
            return err;
        }
        o->streams[1].fd = fd;
    }
    return 0;
}
int flow_out_open_har(struct flow_out *o, const char *path, const char **why)
{
    int fd = flow_out_open_path(path);

    if (fd < 0) {
        *why = "cannot open the HAR file (hardump)";
        return fd;
    }
    o->streams[2].fd = fd;
    return 0;
}

void flow_out_dispose(struct flow_out *o)
{
    for (int i = 1; i < FLOW_OUT_STREAMS; i++) {
        if (o->streams[i].fd >= 0)
            close(o->streams[i].fd);
        o->streams[i].fd = -1;
    }
    for (int i = 0; i < FLOW_OUT_SLOTS && o->storage != NULL; i++)
        if (o->slots[i].heap != NULL)
            flow_out_slot_free(o, i); /* (free list order no longer matters) */
    if (o->storage != NULL)
        munmap(o->storage, (size_t)FLOW_OUT_SLOTS * FLOW_OUT_SLOT_SIZE);
    o->storage = NULL;
}

/* flow_out_format_heap formats a record that may not fit a slot into a heap buffer owned by
 * `s`: the -w record with its bodies, or a HAR entry. Over FLOW_OUT_HEAP_MAX queued, the -w
 * record goes into the slot without bodies (marked) and the HAR entry is dropped. Returns
 * the record's length, or -ENOSPC/-ENOBUFS. */
static ssize_t flow_out_format_heap(struct flow_out *o, int stream, const struct flow *f,
                                    struct flow_out_slot *s)
{
    struct har_buf b = {0};
    ssize_t n;

    if (o->heap_bytes >= FLOW_OUT_HEAP_MAX) {
        if (stream == 2)
            return -ENOBUFS;
        n = flow_format_json(f, (char *)s->data, FLOW_OUT_SLOT_SIZE);
        static const char mark[] = ",\"bodies_dropped\":true}\n";

        if (n >= 2 && (size_t)n - 2 + sizeof(mark) - 1 <= FLOW_OUT_SLOT_SIZE) {
            memcpy(s->data + n - 2, mark, sizeof(mark) - 1);
            n = n - 2 + (ssize_t)(sizeof(mark) - 1);
        }
        return n;
    }
    if (stream == 2) {
        flow_har_entry(&b, f);
    } else {
        b.p = malloc(FLOW_OUT_SLOT_SIZE);
        if (b.p == NULL)
            return -ENOBUFS;
        b.cap = FLOW_OUT_SLOT_SIZE;
        n = flow_format_json(f, b.p, b.cap);
        if (n < 2) {
            free(b.p);
            return -ENOSPC;
        }
        b.len = (size_t)n - 2; /* without the closing "}\n" */
        flow_har_body_fields(&b, f);
        har_buf_put(&b, "}\n", 2);
    }
    if (b.oom || b.len == 0 || b.len > UINT32_MAX) {
        free(b.p);
        return -ENOBUFS;
    }
    s->heap = (uint8_t *)b.p;
    s->data = s->heap;
    o->heap_bytes += b.len;
    return (ssize_t)b.len;
}

/* flow_out_queue formats one record of `f` for `stream` into a free slot and queues it. */
/* flow_out_append takes free slot `idx` (holding `len` bytes) off the free list, appends it
 * to `stream`'s queue and starts the write. */
static void flow_out_append(struct flow_out *o, int stream, int idx, size_t len)
{
    struct flow_out_stream *st = &o->streams[stream];
    struct flow_out_slot *s = &o->slots[idx];

    o->free_head = s->next;
    s->len = (uint32_t)len;
    s->off = 0;
    s->next = -1;
    if (st->tail == -1)
        st->head = idx;
    else
        o->slots[st->tail].next = idx;
    st->tail = idx;
    flow_out_kick(o, stream);
}

static int flow_out_queue(struct flow_out *o, int stream, const struct flow *f)
{
    struct flow_out_slot *s;
    ssize_t n;
    int idx = o->free_head;

    if (idx == -1 || o->storage == NULL) {
        o->dropped++;
        return -ENOBUFS;
    }
    s = &o->slots[idx];
    if (stream == 2 || (stream == 1 && flow_har_has_bodies(f))) {
        n = flow_out_format_heap(o, stream, f, s);
    } else if (stream == 0) {
        n = flow_format_line(f, (char *)s->data, FLOW_OUT_SLOT_SIZE);
    } else {
        n = flow_format_json(f, (char *)s->data, FLOW_OUT_SLOT_SIZE);
    }
    if (n <= 0) {
        o->dropped++;
        return -ENOSPC;
    }
    flow_out_append(o, stream, idx, (size_t)n);
    return 0;
}

int flow_out_record(struct flow_out *o, const struct flow *f)
{
    return flow_out_record_to(o, f, ~0u);
}

int flow_out_record_to(struct flow_out *o, const struct flow *f, unsigned streams)
{
    int err = 0, e;

    for (int i = 0; i < FLOW_OUT_STREAMS; i++) {
        if (o->streams[i].fd < 0 || (streams & (1u << i)) == 0)
            continue;
        e = flow_out_queue(o, i, f);
        if (e)
            err = e;
    }
    return err;
}

int flow_out_line(struct flow_out *o, const char *text, size_t len)
{
    struct flow_out_stream *st = &o->streams[0];
    struct flow_out_slot *s;
    int idx = o->free_head;

    if (st->fd < 0 || len == 0)
        return 0;
    if (len > FLOW_OUT_SLOT_SIZE)
        return -EMSGSIZE;
    if (idx == -1 || o->storage == NULL) {
        o->dropped++;
        return -ENOBUFS;
    }
    s = &o->slots[idx];
    memcpy(s->data, text, len);
    flow_out_append(o, 0, idx, len);
    return 0;
}

bool flow_out_is_idle(const struct flow_out *o)
{
    for (int i = 0; i < FLOW_OUT_STREAMS; i++)
        if (o->streams[i].busy || o->streams[i].head != -1)
            return false;
    return true;
}
