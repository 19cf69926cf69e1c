/* creplay.c - see creplay.h. One request in flight: the driver end of its socketpair is
 * written (send op) until the request is out while it is read (recv op) until the connection
 * ends; the request is done when neither op is armed. */
#include "worker/creplay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
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

/* CREPLAY_RETRY_MS is how long the replay waits after it could not start a request (no
 * descriptor for a socket pair, a full ring) before it tries again. */
#define CREPLAY_RETRY_MS 100

struct creplay {
    struct worker *w;
    const uint8_t *map; /* the list, read-only */
    size_t size;
    const struct creplay_hdr *hdr;
    const struct creplay_entry *ents;
    struct creplay_progress *progress; /* its own shared-writable mapping of the last page */
    struct mode_spec spec;  /* "regular", when the first --mode is not upstream */
    struct modes_conf mode; /* what the replayed connections are served as */
    int fd;                 /* the driver's end of the current socketpair, -1 = none */
    uint32_t cur;           /* the request in flight */
    size_t sent;
    bool stopping;
    unsigned inflight;
    struct ring_op send_op, recv_op, retry_op;
    uint8_t sink[4096]; /* the answer, read and dropped */
};

static void creplay_next(struct creplay *cr);

/* creplay_mark_done records that requests up to `cur` have ended (never moving back: a
 * sibling worker 0 of a reload may have gone further). */
static void creplay_mark_done(struct creplay *cr)
{
    uint32_t seen = __atomic_load_n(&cr->progress->done, __ATOMIC_ACQUIRE);

    while (seen < cr->cur + 1 &&
           !__atomic_compare_exchange_n(&cr->progress->done, &seen, cr->cur + 1, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        ;
}

/* creplay_settle ends request `cur` once neither op is armed: its answer has ended (EOF or an
 * error) or it could not be sent; then the next request goes. */
static void creplay_settle(struct creplay *cr)
{
    if (cr->fd < 0 || cr->send_op.armed || cr->recv_op.armed)
        return;
    close(cr->fd);
    cr->fd = -1;
    creplay_mark_done(cr);
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

static void creplay_on_retry(struct ring_op *op, int res, uint32_t flags)
{
    struct creplay *cr = (struct creplay *)((char *)op - offsetof(struct creplay, retry_op));

    (void)res;
    (void)flags;
    creplay_next(cr);
}

/* creplay_claim takes the next request to send into cr->cur; false when none is left. */
static bool creplay_claim(struct creplay *cr)
{
    uint32_t k = __atomic_load_n(&cr->progress->claimed, __ATOMIC_ACQUIRE);

    do {
        if (k >= cr->hdr->n)
            return false;
    } while (!__atomic_compare_exchange_n(&cr->progress->claimed, &k, k + 1, false,
                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    cr->cur = k;
    __atomic_store_n(&cr->progress->claimer, (int32_t)getpid(), __ATOMIC_RELEASE);
    return true;
}

/* creplay_unclaim gives request cr->cur back when it could not be started (only if no other
 * worker claimed further meanwhile). */
static void creplay_unclaim(struct creplay *cr)
{
    uint32_t k = cr->cur + 1;

    (void)__atomic_compare_exchange_n(&cr->progress->claimed, &k, cr->cur, false,
                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* creplay_next starts the next request, if any and not stopping: the whole request is sent
 * while the answer is read, until the connection ends. When it cannot start one it tries
 * again CREPLAY_RETRY_MS later. */
static void creplay_next(struct creplay *cr)
{
    int sv[2];
    bool sending, reading;

    if (cr->stopping || cr->w->stopping || cr->retry_op.armed || !creplay_claim(cr))
        return;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        log_warn("client replay: request %u waits: socketpair: %s", cr->cur + 1,
                 strerror(errno));
        goto retry;
    }
    cr->fd = sv[1];
    cr->sent = 0;
    conn_accept(cr->w, sv[0], &cr->mode); /* owns sv[0] now, whatever happens */
    sending = creplay_arm_send(cr);
    reading = creplay_arm_recv(cr);
    if (sending || reading)
        return; /* creplay_settle goes on when both are done */
    log_warn("client replay: request %u waits: cannot queue its I/O", cr->cur + 1);
    close(cr->fd);
    cr->fd = -1;
retry:
    creplay_unclaim(cr);
    if (ring_submit_timeout(&cr->w->ring, &cr->retry_op, CREPLAY_RETRY_MS) != 0)
        log_error("client replay: cannot arm its retry timer: stopped at request %u",
                  cr->cur + 1);
}

/* creplay_check validates the list as a reader must: every offset and length inside. */
static bool creplay_check(const struct creplay_hdr *h, size_t size, size_t page)
{
    const struct creplay_entry *ents;

    if (h->magic != CREPLAY_MAGIC || h->version != CREPLAY_VERSION || h->size != size ||
        h->entries_off % 8 != 0 || h->entries_off > size ||
        (size - h->entries_off) / sizeof(struct creplay_entry) < h->n ||
        size < page || h->progress_off % page != 0 || h->progress_off > size - page)
        return false;
    ents = (const struct creplay_entry *)((const uint8_t *)h + h->entries_off);
    for (uint32_t i = 0; i < h->n; i++)
        if (ents[i].off > h->progress_off || ents[i].len == 0 ||
            ents[i].len > h->progress_off - ents[i].off)
            return false;
    return true;
}

int creplay_open(struct worker *w, const char *path, struct creplay **out, const char **why)
{
    struct creplay *cr = NULL;
    struct stat st;
    char *end = NULL;
    long n = -1;
    int fd = -1, own = -1, err = 0;
    void *list = MAP_FAILED, *page = MAP_FAILED;
    size_t page_size = (size_t)sysconf(_SC_PAGESIZE); /* the master aligns the progress page */

    *out = NULL;
    if (w->id != 0)
        return 0;
    if (strncmp(path, "/dev/fd/", 8) == 0)
        n = strtol(path + 8, &end, 10);
    if (n >= 0 && n <= INT_MAX && end != path + 8 && *end == '\0')
        fd = (int)n;
    else
        fd = own = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(struct creplay_hdr)) {
        err = fd < 0 ? -errno : -EINVAL;
        *why = "cannot read the client replay list";
        goto out;
    }
    list = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (list == MAP_FAILED) {
        err = -errno;
        *why = "cannot map the client replay list";
        goto out;
    }
    if (!creplay_check(list, (size_t)st.st_size, page_size)) {
        err = -EINVAL;
        *why = "not a client replay list (or a damaged one)";
        goto out;
    }
    page = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                (off_t)((const struct creplay_hdr *)list)->progress_off);
    cr = calloc(1, sizeof(*cr));
    if (page == MAP_FAILED || cr == NULL) {
        err = page == MAP_FAILED ? -errno : -ENOMEM;
        *why = "cannot map the client replay progress";
        goto out;
    }
    cr->w = w;
    cr->fd = -1;
    cr->map = list;
    cr->size = (size_t)st.st_size;
    cr->hdr = list;
    cr->ents = (const struct creplay_entry *)(cr->map + cr->hdr->entries_off);
    cr->progress = page;
    list = page = MAP_FAILED; /* owned by cr now */
    ring_op_init(&cr->send_op, creplay_on_send, &cr->inflight);
    ring_op_init(&cr->recv_op, creplay_on_recv, &cr->inflight);
    ring_op_init(&cr->retry_op, creplay_on_retry, &cr->inflight);
    *out = cr;
    cr = NULL;
out:
    if (page != MAP_FAILED)
        munmap(page, page_size);
    if (list != MAP_FAILED)
        munmap(list, (size_t)st.st_size);
    if (own >= 0)
        close(own);
    free(cr);
    return err;
}

void creplay_start(struct creplay *cr)
{
    const struct config *cfg;
    uint32_t done, claimed;
    int32_t claimer;

    if (cr == NULL || cr->hdr->n == 0)
        return;
    cfg = cr->w->cfg;
    if (cfg->n_modes > 0 && cfg->modes[0].kind == MODE_SPEC_UPSTREAM) {
        (void)modes_conf_init(&cr->mode, cfg, 0); /* through the next proxy, as mitmproxy */
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
    /* in a reload the old worker 0 still lives and finishes what it claimed; a worker 0
     * started after a death sends again what was in flight (from `done` on) */
    done = __atomic_load_n(&cr->progress->done, __ATOMIC_ACQUIRE);
    claimed = __atomic_load_n(&cr->progress->claimed, __ATOMIC_ACQUIRE);
    claimer = __atomic_load_n(&cr->progress->claimer, __ATOMIC_ACQUIRE);
    if (claimed > done && !(claimer > 0 && claimer != getpid() && kill(claimer, 0) == 0))
        __atomic_store_n(&cr->progress->claimed, done, __ATOMIC_RELEASE);
    log_info("client replay: %u requests, from request %u",
             cr->hdr->n, __atomic_load_n(&cr->progress->claimed, __ATOMIC_ACQUIRE) + 1);
    creplay_next(cr);
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
    munmap((void *)cr->progress, (size_t)sysconf(_SC_PAGESIZE));
    munmap((void *)cr->map, cr->size);
    free(cr);
}
