/* forge_service.c - see forge_service.h. */
#include "master/forge_service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "certcache/certcache.h"
#include "master/forge.h"
#include "shared/log.h"
#include "shared/msgcodec.h"
#include "shared/stats.h"
#include "shared/nameset.h"

/* Cache entries expire this long before the certificate does, so that a client never gets
 * a certificate about to run out (DESIGN: "entries expire before the certificate does"). */
#define FORGE_SERVICE_EXPIRY_MARGIN (7 * 24 * 3600)
#define FORGE_SERVICE_KEY_MAX (MSG_MAX_NAMES * (MSG_MAX_NAME_LEN + 1))

/* struct forge_service_job is one distinct name set of a batch and its answer. */
struct forge_service_job {
    char key[FORGE_SERVICE_KEY_MAX];
    size_t keylen;
    uint8_t der[MSG_MAX_DER];
    size_t der_len;
    int64_t not_after;
    int status;              /* 0 or -errno */
    const char *why;         /* static reason when status != 0 */
};

/* struct forge_service_scratch is the per-batch working memory: one job per request at most. */
struct forge_service_scratch {
    struct forge_service_job jobs[FORGE_SERVICE_BATCH];
    size_t njobs;
};

/* struct forge_service_outbox is one worker's FIFO of encoded replies not yet sent. */
struct forge_service_outbox {
    unsigned head, count;
    struct {
        uint8_t *msg; /* malloc'd datagram */
        size_t len;
    } q[FORGE_SERVICE_QUEUE_MAX];
};

static bool forge_service_slot_ok(int slot)
{
    return slot >= 0 && slot < FORGE_SERVICE_MAX_PEERS;
}

/* forge_service_enqueue keeps a copy of the datagram `msg` for worker `slot`. Returns 0, or
 * -ENOBUFS (queue full) / -ENOMEM / -EINVAL (bad slot); the caller counts the drop. */
static int forge_service_enqueue(struct forge_service *fs, int slot, const uint8_t *msg,
                                 size_t len)
{
    struct forge_service_outbox *ob;
    uint8_t *copy;
    unsigned tail;

    if (!forge_service_slot_ok(slot))
        return -EINVAL;
    ob = fs->outbox[slot];
    if (ob == NULL) {
        ob = calloc(1, sizeof(*ob));
        if (ob == NULL)
            return -ENOMEM;
        fs->outbox[slot] = ob;
    }
    if (ob->count == FORGE_SERVICE_QUEUE_MAX)
        return -ENOBUFS;
    copy = malloc(len);
    if (copy == NULL)
        return -ENOMEM;
    memcpy(copy, msg, len);
    tail = (ob->head + ob->count) % FORGE_SERVICE_QUEUE_MAX;
    ob->q[tail].msg = copy;
    ob->q[tail].len = len;
    ob->count++;
    fs->replies_queued++;
    return 0;
}

/* forge_service_pop frees the oldest queued reply of `ob`. */
static void forge_service_pop(struct forge_service_outbox *ob)
{
    free(ob->q[ob->head].msg);
    ob->q[ob->head].msg = NULL;
    ob->head = (ob->head + 1) % FORGE_SERVICE_QUEUE_MAX;
    ob->count--;
}

void forge_service_forget(struct forge_service *fs, int slot)
{
    struct forge_service_outbox *ob;

    if (!forge_service_slot_ok(slot) || (ob = fs->outbox[slot]) == NULL)
        return;
    while (ob->count > 0)
        forge_service_pop(ob);
    ob->head = 0;
}

size_t forge_service_queued(const struct forge_service *fs, int slot)
{
    if (!forge_service_slot_ok(slot) || fs->outbox[slot] == NULL)
        return 0;
    return fs->outbox[slot]->count;
}

bool forge_service_is_backlogged(const struct forge_service *fs, int slot)
{
    return forge_service_queued(fs, slot) >= FORGE_SERVICE_QUEUE_MAX;
}

int forge_service_flush(struct forge_service *fs, int slot, int fd)
{
    struct forge_service_outbox *ob;

    if (!forge_service_slot_ok(slot) || (ob = fs->outbox[slot]) == NULL)
        return 0;
    while (ob->count > 0) {
        ssize_t n = send(fd, ob->q[ob->head].msg, ob->q[ob->head].len,
                         MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && (errno == EAGAIN || errno == ENOBUFS))
            break;
        if (n == -1) {
            int err = -errno;

            log_warn("worker %d: %u queued certificate replies lost: %s", slot, ob->count,
                     strerror(errno));
            fs->replies_dropped += ob->count;
            forge_service_forget(fs, slot);
            return err;
        }
        forge_service_pop(ob);
    }
    return (int)ob->count;
}

/* forge_service_reply encodes the answer to request `id` and sends it to the worker of `r`,
 * or queues it when the socket is full or older replies are still queued (order kept). */
static void forge_service_reply(struct forge_service *fs, struct forge_service_req *r,
                                uint64_t id, const struct forge_service_job *job, int status,
                                const char *why)
{
    uint8_t out[sizeof(struct msg_hdr) + sizeof(struct msg_cert_reply) + MSG_MAX_DER];
    ssize_t n, sent = -1;
    int err;

    if (status == 0)
        n = msgcodec_encode_cert_reply(out, sizeof(out), id, 0, NULL, job->der, job->der_len,
                                       job->not_after);
    else
        n = msgcodec_encode_cert_reply(out, sizeof(out), id, status, why, NULL, 0, 0);
    if (n < 0) {
        log_error("worker %d: cannot encode certificate reply: %s", r->slot, strerror((int)-n));
        return;
    }
    if (forge_service_queued(fs, r->slot) == 0) {
        do
            sent = send(r->fd, out, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (sent == -1 && errno == EINTR);
        if (sent == n)
            return;
        if (sent == -1 && errno != EAGAIN && errno != ENOBUFS) {
            /* EPIPE & co: the worker is gone; the reaper handles it */
            fs->replies_dropped++;
            log_warn("worker %d: certificate reply not sent: %s", r->slot, strerror(errno));
            return;
        }
    }
    err = forge_service_enqueue(fs, r->slot, out, (size_t)n);
    if (err) {
        fs->replies_dropped++;
        log_warn("worker %d: certificate reply dropped: %s", r->slot,
                 err == -ENOBUFS ? "reply queue full" : strerror(-err));
    }
}

/* forge_service_fill answers `job` from the certcache or by forging `names`. */
static void forge_service_fill(struct forge_service *fs, struct forge_service_job *job,
                               const char *const *names, size_t n, const char *org)
{
    struct certcache_reader reader = {0};
    time_t now = time(NULL);
    uint8_t *der = NULL;
    size_t der_len = 0;
    time_t not_after = 0;
    struct timespec t0, t1;
    ssize_t got;
    int err;

    got = certcache_lookup(fs->cache, job->key, job->keylen, now, job->der, sizeof(job->der),
                           &reader);
    if (got > 0) {
        /* The cache does not keep notAfter; the entry's own expiry bounds it from below. */
        job->der_len = (size_t)got;
        job->not_after = (int64_t)now + FORGE_SERVICE_EXPIRY_MARGIN;
        job->status = 0;
        fs->cache_answers++;
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    err = forge_leaf(fs->forge, names, n, org, &der, &der_len, &not_after, &job->why);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    stats_hist_observe(fs->forge_hist, (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
                                                  (t1.tv_nsec - t0.tv_nsec) / 1000));
    if (err) {
        job->status = err;
        fs->rejected++;
        return;
    }
    fs->forges++;
    certcache_count_forge(fs->cache);
    if (der_len > sizeof(job->der)) {
        job->status = -EMSGSIZE;
        job->why = "forged certificate too large";
        free(der);
        return;
    }
    memcpy(job->der, der, der_len);
    free(der);
    job->der_len = der_len;
    job->not_after = (int64_t)not_after;
    job->status = 0;
    err = certcache_insert(fs->cache, job->key, job->keylen, job->der, job->der_len,
                           not_after - FORGE_SERVICE_EXPIRY_MARGIN, now);
    if (err && err != -EMSGSIZE)
        log_warn("certcache insert failed: %s", strerror(-err));
}

int forge_service_init(struct forge_service *fs, struct forge *forge, struct certcache *cache)
{
    memset(fs, 0, sizeof(*fs));
    fs->forge = forge;
    fs->cache = cache;
    fs->scratch = calloc(1, sizeof(*fs->scratch));
    return fs->scratch != NULL ? 0 : -ENOMEM;
}

void forge_service_dispose(struct forge_service *fs)
{
    for (int i = 0; i < FORGE_SERVICE_MAX_PEERS; i++) {
        forge_service_forget(fs, i);
        free(fs->outbox[i]);
        fs->outbox[i] = NULL;
    }
    free(fs->scratch);
    fs->scratch = NULL;
}

/* forge_service_copy_names copies the decoded names and organization of `v` into the
 * NUL-terminated buffers (the decoder bounds every length; checked again here, since a
 * worker is hostile and these buffers are on the stack). Returns 0 or -EPROTO. */
static int forge_service_copy_names(const struct msg_cert_req_view *v,
                                    char (*namebuf)[MSG_MAX_NAME_LEN + 1], const char **names,
                                    char *org, size_t org_cap, const char **why)
{
    if (v->n_names == 0 || v->n_names > MSG_MAX_NAMES || v->org.len >= org_cap) {
        *why = "cert request: counts out of range";
        return -EPROTO;
    }
    for (size_t k = 0; k < v->n_names; k++) {
        if (v->names[k].len == 0 || v->names[k].len > MSG_MAX_NAME_LEN) {
            *why = "cert request: name length out of range";
            return -EPROTO;
        }
        memcpy(namebuf[k], v->names[k].p, v->names[k].len);
        namebuf[k][v->names[k].len] = '\0';
        names[k] = namebuf[k];
    }
    memcpy(org, v->org.p, v->org.len);
    org[v->org.len] = '\0';
    return 0;
}

void forge_service_answer(struct forge_service *fs, struct forge_service_req *reqs, size_t n)
{
    struct forge_service_scratch *sc = fs->scratch;
    char namebuf[MSG_MAX_NAMES][MSG_MAX_NAME_LEN + 1];
    const char *names[MSG_MAX_NAMES];
    char org[MSG_MAX_ORG_LEN + 1];

    sc->njobs = 0;
    for (size_t i = 0; i < n && i < FORGE_SERVICE_BATCH; i++) {
        struct forge_service_req *r = &reqs[i];
        struct msg_cert_req_view v;
        struct msg_hdr h;
        struct forge_service_job *job = NULL;
        const char *why = NULL;
        char key[FORGE_SERVICE_KEY_MAX];
        ssize_t keylen;

        memset(&h, 0, sizeof(h));
        if (r->len > sizeof(r->dgram) || msgcodec_decode_hdr(r->dgram, r->len, &h, &why) != 0 ||
            msgcodec_decode_cert_req(r->dgram, r->len, &v, &why) != 0 ||
            forge_service_copy_names(&v, namebuf, names, org, sizeof(org), &why) != 0) {
            log_warn("worker %d: malformed certificate request: %s", r->slot, why);
            fs->rejected++;
            forge_service_reply(fs, r, h.id, NULL, -EPROTO, why);
            continue;
        }
        keylen = nameset_canon_cstr(names, v.n_names, key, sizeof(key), &why);
        if (keylen < 0) {
            log_warn("worker %d: certificate request with invalid names: %s", r->slot, why);
            fs->rejected++;
            forge_service_reply(fs, r, h.id, NULL, (int)keylen, why);
            continue;
        }
        /* Coalesce: the same name set asked for by several workers in one batch. */
        for (size_t j = 0; j < sc->njobs; j++) {
            if (sc->jobs[j].keylen == (size_t)keylen &&
                memcmp(sc->jobs[j].key, key, (size_t)keylen) == 0) {
                job = &sc->jobs[j];
                fs->coalesced++;
                break;
            }
        }
        if (job == NULL) {
            job = &sc->jobs[sc->njobs++];
            memcpy(job->key, key, (size_t)keylen);
            job->keylen = (size_t)keylen;
            job->why = NULL;
            forge_service_fill(fs, job, names, v.n_names, v.org.len > 0 ? org : NULL);
        }
        forge_service_reply(fs, r, h.id, job, job->status, job->why ? job->why : "forging failed");
    }
}
