/* creplay.c - see creplay.h. One request in flight: the driver end of its socketpair is
 * written (send op) until the request is out while it is read (recv op) until the connection
 * ends; the request is done when neither op is armed. */
#include "worker/creplay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/creplay_layout.h"
#include "shared/log.h"
#include "shared/mode_spec.h"
#include "worker/conn.h"
#include "worker/modes.h"
#include "worker/ring.h"
#include "worker/worker.h"

struct creplay {
    struct worker *w;
    uint8_t *map;
    size_t size;
    const struct creplay_hdr *hdr;
    const struct creplay_entry *ents;
    struct creplay_progress *progress;
    struct mode_spec spec;  /* "regular", when the first --mode is not upstream */
    struct modes_conf mode; /* what the replayed connections are served as */
    int fd;                 /* the driver's end of the current socketpair, -1 = none */
    uint32_t cur;           /* the request in flight */
    size_t sent;
    bool stopping;
    unsigned inflight;
    struct ring_op send_op, recv_op;
    uint8_t sink[4096]; /* the answer, read and dropped */
};

static void creplay_next(struct creplay *cr);

/* creplay_settle ends request `cur` once neither op is armed: its answer has ended (EOF or an
 * error) or it could not be sent; then the next request goes. */
static void creplay_settle(struct creplay *cr)
{
    if (cr->fd < 0 || cr->send_op.armed || cr->recv_op.armed)
        return;
    close(cr->fd);
    cr->fd = -1;
    __atomic_store_n(&cr->progress->done, cr->cur + 1, __ATOMIC_RELEASE);
    creplay_next(cr);
}

/* creplay_arm_send sends the rest of the request; returns false when it cannot be armed (the
 * socket is shut so that the op still armed completes). */
static bool creplay_arm_send(struct creplay *cr)
{
    const struct creplay_entry *e = &cr->ents[cr->cur];

    if (ring_submit_send(&cr->w->ring, &cr->send_op, cr->fd, cr->map + e->off + cr->sent,
                         (size_t)e->len - cr->sent) == 0)
        return true;
    shutdown(cr->fd, SHUT_RDWR);
    return false;
}

static bool creplay_arm_recv(struct creplay *cr)
{
    if (ring_submit_recv(&cr->w->ring, &cr->recv_op, cr->fd, cr->sink, sizeof(cr->sink)) == 0)
        return true;
    shutdown(cr->fd, SHUT_RDWR);
    return false;
}

static void creplay_on_send(struct ring_op *op, int res, uint32_t flags)
{
    struct creplay *cr = (struct creplay *)((char *)op - offsetof(struct creplay, send_op));

    (void)flags;
    if (res >= 0) {
        cr->sent += (size_t)res;
        if (cr->sent < cr->ents[cr->cur].len)
            (void)creplay_arm_send(cr);
    } /* else the connection closed before taking the whole request (an early answer) */
    creplay_settle(cr);
}

static void creplay_on_recv(struct ring_op *op, int res, uint32_t flags)
{
    struct creplay *cr = (struct creplay *)((char *)op - offsetof(struct creplay, recv_op));

    (void)flags;
    if (res > 0)
        (void)creplay_arm_recv(cr);
    else if (cr->send_op.armed) /* the answer ended mid-request: the send fails next */
        shutdown(cr->fd, SHUT_RDWR);
    creplay_settle(cr);
}

/* creplay_next starts the next request, if any and not stopping: the whole request is sent
 * while the answer is read, until the connection ends. */
static void creplay_next(struct creplay *cr)
{
    int sv[2];

    for (;;) {
        bool sending, reading;

        cr->cur = __atomic_load_n(&cr->progress->done, __ATOMIC_ACQUIRE);
        if (cr->stopping || cr->w->stopping || cr->cur >= cr->hdr->n)
            return;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
            log_warn("client replay: request %u left out: socketpair: %s", cr->cur + 1,
                     strerror(errno));
            __atomic_store_n(&cr->progress->done, cr->cur + 1, __ATOMIC_RELEASE);
            continue;
        }
        cr->fd = sv[1];
        cr->sent = 0;
        conn_accept(cr->w, sv[0], &cr->mode); /* owns sv[0] now, whatever happens */
        sending = creplay_arm_send(cr);
        reading = creplay_arm_recv(cr);
        if (sending || reading)
            return; /* creplay_settle goes on when both are done */
        log_warn("client replay: request %u left out: cannot queue its I/O", cr->cur + 1);
        close(cr->fd);
        cr->fd = -1;
        __atomic_store_n(&cr->progress->done, cr->cur + 1, __ATOMIC_RELEASE);
    }
}

/* creplay_check validates the list as a reader must: every offset and length inside. */
static bool creplay_check(const struct creplay *cr)
{
    const struct creplay_hdr *h = cr->hdr;

    if (h->magic != CREPLAY_MAGIC || h->version != CREPLAY_VERSION || h->size != cr->size ||
        h->entries_off > h->size || (h->size - h->entries_off) / sizeof(struct creplay_entry) < h->n ||
        h->entries_off % 8 != 0 || h->progress_off % 4096 != 0 ||
        h->progress_off > h->size - sizeof(struct creplay_progress))
        return false;
    for (uint32_t i = 0; i < h->n; i++) {
        const struct creplay_entry *e = &cr->ents[i];

        if (e->off > h->progress_off || e->len == 0 || e->len > h->progress_off - e->off)
            return false;
    }
    return true;
}

int creplay_open(struct worker *w, const char *path, struct creplay **out, const char **why)
{
    struct creplay *cr;
    struct stat st;
    char *end = NULL;
    long n = -1;
    int fd, err;

    *out = NULL;
    if (w->id != 0)
        return 0;
    if (strncmp(path, "/dev/fd/", 8) == 0)
        n = strtol(path + 8, &end, 10);
    fd = n >= 0 && n <= INT_MAX && end != path + 8 && *end == '\0' ? (int)n
                                                                   : open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(struct creplay_hdr)) {
        *why = "cannot read the client replay list";
        return fd < 0 ? -errno : -EINVAL;
    }
    cr = calloc(1, sizeof(*cr));
    if (cr == NULL) {
        *why = "out of memory";
        return -ENOMEM;
    }
    cr->w = w;
    cr->fd = -1;
    cr->size = (size_t)st.st_size;
    cr->map = mmap(NULL, cr->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (cr->map == MAP_FAILED) {
        err = -errno;
        *why = "cannot map the client replay list";
        free(cr);
        return err;
    }
    cr->hdr = (const struct creplay_hdr *)cr->map;
    cr->ents = (const struct creplay_entry *)(cr->map + cr->hdr->entries_off);
    if (!creplay_check(cr)) {
        munmap(cr->map, cr->size);
        free(cr);
        *why = "not a client replay list (or a damaged one)";
        return -EINVAL;
    }
    cr->progress = (struct creplay_progress *)(cr->map + cr->hdr->progress_off);
    if (w->cfg->n_modes > 0 && w->cfg->modes[0].kind == MODE_SPEC_UPSTREAM) {
        (void)modes_conf_init(&cr->mode, w->cfg, 0); /* through the next proxy, as mitmproxy */
        cr->mode.proxy_protocol = false;
        cr->mode.start = cr->mode.mode_start;
    } else {
        const char *bad = NULL;

        (void)mode_spec_parse("regular", 7, &cr->spec, &bad);
        memset(&cr->mode, 0, sizeof(cr->mode));
        cr->mode.spec = &cr->spec;
        cr->mode.start = cr->mode.mode_start = modes_start_fn(&cr->spec);
    }
    cr->mode.client_replay = true;
    ring_op_init(&cr->send_op, creplay_on_send, &cr->inflight);
    ring_op_init(&cr->recv_op, creplay_on_recv, &cr->inflight);
    *out = cr;
    log_info("client replay: %u requests, from request %u", cr->hdr->n,
             cr->progress->done + 1);
    creplay_next(cr);
    return 0;
}

void creplay_stop(struct creplay *cr)
{
    if (cr != NULL)
        cr->stopping = true;
}

void creplay_close(struct creplay *cr)
{
    if (cr == NULL)
        return;
    if (cr->fd >= 0)
        close(cr->fd);
    munmap(cr->map, cr->size);
    free(cr);
}
