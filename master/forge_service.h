/* forge_service.h - the master's answer to CERT_REQ messages.
 * Owns the coalescing of concurrent requests for one name set (one forge per name set per
 * batch, and later requests hit the certcache) and the inserts into the certcache. Called
 * by the master loop only; allocates only the DER of a forged certificate, freed before
 * returning. */
#ifndef MITMD_MASTER_FORGE_SERVICE_H
#define MITMD_MASTER_FORGE_SERVICE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/msg.h"

struct certcache;
struct forge;

#define FORGE_SERVICE_BATCH 64  /* requests answered per loop iteration */

/* struct forge_service_req is one received CERT_REQ, copied out of its datagram. */
struct forge_service_req {
    int slot;           /* the worker slot to answer */
    int fd;             /* that worker's socket */
    uint8_t dgram[MSG_CERT_REQ_MAX];
    size_t len;
};

struct forge_service_scratch;

struct forge_service {
    struct forge *forge;       /* borrowed */
    struct certcache *cache;   /* borrowed; the master is its only writer */
    uint64_t forges;           /* certificates forged */
    uint64_t coalesced;        /* requests answered by a forge done for another request */
    uint64_t cache_answers;    /* requests answered from the certcache */
    uint64_t rejected;         /* malformed requests and forge failures */
    struct forge_service_scratch *scratch; /* per-batch working memory (forge_service_init) */
};

/* forge_service_init prepares `fs` to answer with `forge` and `cache` (both borrowed). It
 * allocates the batch working memory (~1.3 MB) once. Returns 0 or -ENOMEM. */
int forge_service_init(struct forge_service *fs, struct forge *forge, struct certcache *cache);

/* forge_service_dispose frees what forge_service_init allocated; safe on a zeroed struct. */
void forge_service_dispose(struct forge_service *fs);

/* forge_service_answer answers `n` requests (n <= FORGE_SERVICE_BATCH) received in one loop
 * iteration: each distinct name set is looked up in the certcache, else forged once and
 * inserted, and every request gets a CERT_REPLY (an error reply for a malformed request or
 * a name that cannot be forged). A reply that cannot be sent is logged and dropped (the
 * worker's request times out). Never fails as a whole. */
void forge_service_answer(struct forge_service *fs, struct forge_service_req *reqs, size_t n);

#endif
