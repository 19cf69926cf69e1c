/* certcache.h - fixed-size, set-associative cache of forged certificates in a memfd.
 * Owns the mapping and its layout (certcache/layout.h). The master is the only writer
 * (certcache_create, certcache_insert); workers map it read-only (certcache_attach,
 * certcache_lookup) and never take a lock. Never allocates after certcache_create/_attach.
 *
 * Keys are canonical name sets (shared/nameset.h), so the same names in any order or case
 * give the same entry. Values are opaque bytes (the master stores the leaf DER) of at most
 * CERTCACHE_DER_MAX bytes. Readers use a per-slot seqlock: a lookup either copies out a
 * complete, unexpired entry whose full key equals the requested key, or reports a miss. */
#ifndef MITMD_CERTCACHE_CERTCACHE_H
#define MITMD_CERTCACHE_CERTCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "certcache/layout.h"

#define CERTCACHE_DEFAULT_MB 64
/* CERTCACHE_MIN_BYTES is the smallest region certcache_create accepts (one set). */
#define CERTCACHE_MIN_BYTES (2u * CERTCACHE_PAGE + CERTCACHE_WAYS * CERTCACHE_SLOT_SIZE)
/* CERTCACHE_READ_RETRIES bounds how often a reader re-reads a slot the master is writing
 * before it reports a miss: about a microsecond of spinning, enough for any write unless
 * the master was descheduled mid-write (then a miss and a request to the master is better). */
#define CERTCACHE_READ_RETRIES 256

struct certcache;

/* struct certcache_reader holds one reader's counters. The mapping is read-only for
 * workers, so each worker keeps one of these and reports it to the master. */
struct certcache_reader {
    uint64_t hits;      /* lookups that copied out an entry */
    uint64_t misses;    /* lookups that returned an error (all of the below included) */
    uint64_t expired;   /* misses because the entry had expired */
    uint64_t contended; /* misses because the slot kept changing under the reader */
    uint64_t corrupt;   /* misses because a slot held impossible lengths */
};

/* struct certcache_stats is a snapshot for the master's statistics output. */
struct certcache_stats {
    uint64_t bytes;   /* size of the region */
    uint64_t slots;   /* capacity in entries */
    uint64_t inserts; /* see struct certcache_hdr */
    uint64_t updates;
    uint64_t evictions;
    uint64_t reclaims;
    uint64_t refused;
    uint64_t forges;
    uint64_t hits; /* sum of the readers added with certcache_stats_add_reader */
    uint64_t misses;
};

/* certcache_create creates a cache of at most `bytes` bytes (rounded down to whole sets) in
 * a new memfd (close-on-exec; the master clears FD_CLOEXEC in the child it execs, or
 * passes certcache_open_reader_fd's fd), maps it read-write, with a random hash key, and
 * then seals it (no shrink, no grow, no write but through this mapping: F_SEAL_FUTURE_WRITE,
 * so no descriptor of it, even reopened read-write, can write or map it writable). It
 * allocates and must be called at start-up. On success it sets `*out` (free with
 * certcache_close) and returns 0. Otherwise it returns -EINVAL if `bytes` is below
 * CERTCACHE_MIN_BYTES or beyond CERTCACHE_MAX_SETS sets, -ENOMEM, or the -errno of
 * memfd_create/ftruncate/fcntl/mmap, with `*why` (if `why` is not NULL) set to a static
 * string naming the failed step. */
int certcache_create(size_t bytes, struct certcache **out, const char **why);

/* certcache_attach maps the cache in `fd` read-only (PROT_READ, MAP_SHARED) after
 * validating the header: magic, version, geometry matching this build, sizes consistent
 * with the fd's size, and the memfd sealed against shrinking (so a read can never fault).
 * It allocates. On success it sets `*out`, takes ownership of `fd` (closed by
 * certcache_close) and returns 0. On failure the caller keeps `fd` and it returns -EINVAL
 * (not a valid cache; `*why` says what is wrong), -ENOMEM, or the -errno of fstat/mmap. */
int certcache_attach(int fd, struct certcache **out, const char **why);

/* certcache_close unmaps the cache, closes its fd and frees `c`. NULL is a no-op. */
void certcache_close(struct certcache *c);

/* certcache_fd returns the cache's memfd (read-write for a created cache). The fd stays
 * owned by `c`. */
int certcache_fd(const struct certcache *c);

/* certcache_open_reader_fd opens a new, read-only file description of a created cache's
 * memfd (through /proc/self/fd), close-on-exec, for handing to a worker: with it, neither
 * mmap(PROT_WRITE, MAP_SHARED) nor mprotect can make the mapping writable. On success it
 * sets `*fd_out` (owned by the caller) and returns 0; otherwise -EROFS for an attached
 * cache or the -errno of open(2). */
int certcache_open_reader_fd(const struct certcache *c, int *fd_out);

/* certcache_insert stores `der` under `key` (a canonical name set), replacing the entry
 * with the same key if there is one, else using a free slot of the key's set, else the
 * expired entry that expired first, else the entry inserted longest ago. The entry is a
 * miss for readers at `expires` and later; the master sets it before the certificate's
 * notAfter. Master only, from one thread; never blocks or allocates. Returns 0; -EROFS on
 * an attached (read-only) cache; -EINVAL if `keylen` or `derlen` is 0 or `expires <= now`;
 * -EMSGSIZE if `derlen > CERTCACHE_DER_MAX` (the caller then simply does not cache this
 * certificate). A key longer than CERTCACHE_KEY_MAX is stored as a NUL byte followed by its
 * BLAKE2b-256 digest (a name set has no NUL, so this never equals a short key). */
int certcache_insert(struct certcache *c, const char *key, size_t keylen, const uint8_t *der,
                     size_t derlen, time_t expires, time_t now);

/* certcache_lookup copies the entry for `key` into `out` (at most `cap` bytes) if it is
 * cached and unexpired at `now`. Lock-free and syscall-free; safe in any number of
 * processes concurrently with the master's inserts. Counts the outcome in `r` (not NULL).
 * Returns the entry's length; -ENOENT if there is no such entry, it has expired, or the slot
 * kept changing for
 * CERTCACHE_READ_RETRIES reads; -ENOSPC if the entry is longer than `cap`. The contents of
 * `out` are unspecified after an error. */
ssize_t certcache_lookup(const struct certcache *c, const char *key, size_t keylen, time_t now,
                         uint8_t *out, size_t cap, struct certcache_reader *r);

/* certcache_count_forge counts one certificate forged by the master. Master only. */
void certcache_count_forge(struct certcache *c);

/* certcache_get_stats fills `out` from the header's counters; hits and misses are set to 0
 * for the caller to add readers' counters to. Works on created and attached caches. */
void certcache_get_stats(const struct certcache *c, struct certcache_stats *out);

/* certcache_stats_add_reader adds one reader's hits and misses to `s`. */
void certcache_stats_add_reader(struct certcache_stats *s, const struct certcache_reader *r);

#endif
