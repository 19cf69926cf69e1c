/* forge_service.h - the master's answer to CERT_REQ messages.
 * Owns the coalescing of concurrent requests for one name set (one forge per name set per
 * batch, and later requests hit the certcache) and the inserts into the certcache. Called
 * by the master loop only. Owns the per-worker queues of replies a full socket could not
 * take yet. Treats every request as hostile input (a worker is the untrusted side). */
#ifndef MITMD_MASTER_FORGE_SERVICE_H
#define MITMD_MASTER_FORGE_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/msg.h"

struct certcache;
struct forge;

#define FORGE_SERVICE_BATCH 64     /* requests answered per loop iteration */
#define FORGE_SERVICE_MAX_PEERS 512 /* workers: running and draining (2 x SUPERVISE_MAX_WORKERS) */
/* FORGE_SERVICE_QUEUE_MAX bounds the replies kept for one worker whose socket is full. The
 * master stops reading that worker's requests while its queue is full (backpressure), so a
 * reply is dropped only if a worker keeps sending while refusing to read. */
#define FORGE_SERVICE_QUEUE_MAX 64

/* struct forge_service_req is one received CERT_REQ, copied out of its datagram. */
struct forge_service_req {
    int slot;           /* the worker (peer) to answer, 0..FORGE_SERVICE_MAX_PEERS-1 */
    int fd;             /* that worker's socket */
    uint8_t dgram[MSG_CERT_REQ_MAX];
    size_t len;
};

struct forge_service_scratch;
struct forge_service_outbox;

struct forge_service {
    struct forge *forge;       /* borrowed */
    struct certcache *cache;   /* borrowed; the master is its only writer */
    uint64_t forges;           /* certificates forged */
    uint64_t coalesced;        /* requests answered by a forge done for another request */
    uint64_t cache_answers;    /* requests answered from the certcache */
    uint64_t rejected;         /* malformed requests and forge failures */
    uint64_t replies_queued;   /* replies kept because the worker's socket was full */
    uint64_t replies_dropped;  /* replies lost: queue full, or the socket failed */
    uint64_t forge_hist[MSG_HIST_STRIDE]; /* forge latency (shared/stats.h histogram) */
    struct forge_service_scratch *scratch; /* per-batch working memory (forge_service_init) */
    struct forge_service_outbox *outbox[FORGE_SERVICE_MAX_PEERS]; /* allocated on first use */
};

/* forge_service_init prepares `fs` to answer with `forge` and `cache` (both borrowed). It
 * allocates the batch working memory (~1.3 MB) once. Returns 0 or -ENOMEM. */
int forge_service_init(struct forge_service *fs, struct forge *forge, struct certcache *cache);

/* forge_service_dispose frees what forge_service_init allocated and every queued reply;
 * safe on a zeroed struct. */
void forge_service_dispose(struct forge_service *fs);

/* forge_service_answer answers `n` requests (n <= FORGE_SERVICE_BATCH) received in one loop
 * iteration: each distinct name set is looked up in the certcache, else forged once and
 * inserted, and every request gets a CERT_REPLY (an error reply for a malformed request or
 * a name that cannot be forged). A reply the worker's socket cannot take now (EAGAIN) is
 * queued for forge_service_flush, behind any reply already queued for that worker, up to
 * FORGE_SERVICE_QUEUE_MAX; beyond that, or on another send error, it is counted in
 * replies_dropped (the worker's request then times out: ipc_expire). Whatever the bytes of
 * a request, nothing is written outside its buffers. Allocates only the DER of a forged
 * certificate and queued replies. Never fails as a whole. */
void forge_service_answer(struct forge_service *fs, struct forge_service_req *reqs, size_t n);

/* forge_service_flush sends the replies queued for worker `slot` on `fd` until the socket is
 * full. Returns the number of replies still queued (0 when none), or -errno if the socket
 * failed (the queue is then discarded and counted as dropped). Never blocks. */
int forge_service_flush(struct forge_service *fs, int slot, int fd);

/* forge_service_queued returns the number of replies queued for worker `slot`. */
size_t forge_service_queued(const struct forge_service *fs, int slot);

/* forge_service_is_backlogged is true when worker `slot`'s reply queue is full: the caller
 * should not read more requests from it until forge_service_flush has made room. */
bool forge_service_is_backlogged(const struct forge_service *fs, int slot);

/* forge_service_forget discards the replies queued for worker `slot` (the worker exited;
 * its successor has a new socket and new request ids). */
void forge_service_forget(struct forge_service *fs, int slot);

#endif
