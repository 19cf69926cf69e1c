/* certcache.c - the shared-memory certificate cache: memfd region, seqlocked slots,
 * set-associative index with a tag array, eviction. See certcache.h for the contract and
 * certcache/layout.h for the bytes.
 *
 * Concurrency: exactly one writer (the master's thread) and any number of readers in other
 * processes. Each slot has a sequence counter (seqlock, Boehm's "Can seqlocks get along
 * with programming language memory models?"):
 *   writer: seq = odd (relaxed); release fence; relaxed data stores; seq = even (release)
 *   reader: s1 = seq (acquire); relaxed data loads; acquire fence; s2 = seq (relaxed);
 *           the copy is valid iff s1 == s2 and s1 is even.
 * All shared data is accessed with __atomic builtins so that the racing accesses are
 * defined behaviour. The tag array (one u64 per slot, the hash of its key) is only a hint
 * that saves touching slots of other keys; every decision is made on the seqlocked slot. */
#include "certcache/certcache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "shared/shorthash.h"

static_assert(crypto_shorthash_KEYBYTES == CERTCACHE_HASHKEY_SIZE, "SipHash key size");
static_assert(crypto_shorthash_BYTES == sizeof(uint64_t), "SipHash output size");

struct certcache {
    uint8_t *base; /* the mapping, `size` bytes */
    size_t size;
    int fd;
    bool writable;                /* created by the master: the only writer */
    uint32_t nsets;               /* copied from the validated header */
    struct certcache_hdr *hdr;    /* counters; geometry is never re-read after attach */
    uint64_t *tags;               /* nsets * CERTCACHE_WAYS hints */
    struct certcache_slot *slots; /* nsets * CERTCACHE_WAYS */
    uint8_t hashkey[CERTCACHE_HASHKEY_SIZE];
};

/* Outcomes of reading one slot; a hit is the (non-negative) entry length. */
enum slot_result {
    SLOT_NOMATCH = -1, /* empty, or holds another key */
    SLOT_EXPIRED = -2,
    SLOT_NOSPC = -3,     /* our key, but longer than the caller's buffer */
    SLOT_CONTENDED = -4, /* still being rewritten after CERTCACHE_READ_RETRIES reads */
    SLOT_CORRUPT = -5,   /* stable, but with lengths no writer produces */
};

/* ---- geometry ---------------------------------------------------------------------- */

static uint64_t layout_slots_off(uint64_t nsets)
{
    uint64_t tags = nsets * CERTCACHE_WAYS * sizeof(uint64_t);

    return CERTCACHE_PAGE + (tags + CERTCACHE_PAGE - 1) / CERTCACHE_PAGE * CERTCACHE_PAGE;
}

/* layout_total is the region size for `nsets` sets; no overflow for nsets <= MAX_SETS. */
static uint64_t layout_total(uint64_t nsets)
{
    return layout_slots_off(nsets) + nsets * CERTCACHE_WAYS * CERTCACHE_SLOT_SIZE;
}

/* layout_nsets returns the most sets that fit in `bytes`, 0 if none, or -1 if more than
 * CERTCACHE_MAX_SETS would. */
static int64_t layout_nsets(uint64_t bytes)
{
    uint64_t n;

    if (bytes < CERTCACHE_PAGE)
        return 0;
    n = (bytes - CERTCACHE_PAGE) / (CERTCACHE_WAYS * (CERTCACHE_SLOT_SIZE + sizeof(uint64_t)));
    if (n > CERTCACHE_MAX_SETS)
        return -1;
    while (n > 0 && layout_total(n) > bytes)
        n--;
    return (int64_t)n;
}

static void cache_bind(struct certcache *c, uint32_t nsets)
{
    c->nsets = nsets;
    c->hdr = (struct certcache_hdr *)c->base;
    c->tags = (uint64_t *)(c->base + CERTCACHE_PAGE);
    c->slots = (struct certcache_slot *)(c->base + layout_slots_off(nsets));
}

/* CACHE_DIGEST_KEY_LEN is the stored form of a key longer than CERTCACHE_KEY_MAX: a NUL
 * (never in a name set, so it cannot equal a short key) and the key's BLAKE2b-256 digest. */
#define CACHE_DIGEST_KEY_LEN (1 + crypto_generichash_BYTES)

/* cache_key returns the form of `key` that is hashed and stored: the key itself when it fits
 * a slot, else its digest form written to `tmp`. Certificates of CDNs carry 100+ names; their
 * sets would otherwise never be cached and the master would forge one on every connection. */
static const char *cache_key(const char *key, size_t *keylen, char tmp[CACHE_DIGEST_KEY_LEN])
{
    if (*keylen <= CERTCACHE_KEY_MAX)
        return key;
    tmp[0] = '\0';
    crypto_generichash((unsigned char *)tmp + 1, crypto_generichash_BYTES,
                       (const unsigned char *)key, *keylen, NULL, 0);
    *keylen = CACHE_DIGEST_KEY_LEN;
    return tmp;
}

static uint64_t cache_hash(const struct certcache *c, const char *key, size_t keylen)
{
    return shorthash64(key, keylen, c->hashkey);
}

/* cache_set maps a hash to a set with a multiply-shift (Lemire), using its high bits. */
static size_t cache_set(const struct certcache *c, uint64_t h)
{
    return (size_t)(((unsigned __int128)h * c->nsets) >> 64);
}

/* ---- word copies under the seqlock ------------------------------------------------- */

static inline uint64_t word_load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void word_store(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* shm_write stores `n` bytes of `src` into the words at `dst`; the last word is zero
 * padded. */
static void shm_write(uint64_t *dst, const void *src, size_t n)
{
    const uint8_t *s = src;
    size_t i = 0;
    uint64_t w;

    for (; n - i >= sizeof(w); i += sizeof(w)) {
        memcpy(&w, s + i, sizeof(w));
        word_store(dst++, w);
    }
    if (i < n) {
        w = 0;
        memcpy(&w, s + i, n - i);
        word_store(dst, w);
    }
}

/* shm_read copies `n` bytes from the words at `src` to `dst`, writing nothing past
 * dst + n. */
static void shm_read(void *dst, const uint64_t *src, size_t n)
{
    uint8_t *d = dst;
    size_t i = 0;
    uint64_t w;

    for (; n - i >= sizeof(w); i += sizeof(w)) {
        w = word_load(src++);
        memcpy(d + i, &w, sizeof(w));
    }
    if (i < n) {
        w = word_load(src);
        memcpy(d + i, &w, n - i);
    }
}

/* shm_equal compares `n` bytes at the words `src` with `mem`. */
static bool shm_equal(const uint64_t *src, const void *mem, size_t n)
{
    const uint8_t *m = mem;
    size_t i = 0;
    uint64_t w;

    for (; n - i >= sizeof(w); i += sizeof(w)) {
        w = word_load(src++);
        if (memcmp(&w, m + i, sizeof(w)) != 0)
            return false;
    }
    if (i < n) {
        w = word_load(src);
        if (memcmp(&w, m + i, n - i) != 0)
            return false;
    }
    return true;
}

static void counter_add(uint64_t *p, uint64_t n)
{
    /* single writer: a load and a store, not a locked read-modify-write */
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static uint64_t counter_get(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* ---- lifecycle --------------------------------------------------------------------- */

int certcache_create(size_t bytes, struct certcache **out, const char **why)
{
    const char *dummy;
    struct certcache *c;
    int64_t nsets;
    uint64_t total;
    int err;

    if (why == NULL)
        why = &dummy;
    nsets = layout_nsets(bytes);
    if (nsets <= 0) {
        *why = nsets == 0 ? "cert cache smaller than one set" : "cert cache too large";
        return -EINVAL;
    }
    total = layout_total((uint64_t)nsets);
    if (total > SIZE_MAX || total > (uint64_t)INT64_MAX) {
        *why = "cert cache too large";
        return -EINVAL;
    }
    if (sodium_init() == -1) {
        *why = "sodium_init failed";
        return -EIO;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        *why = "out of memory";
        return -ENOMEM;
    }
    c->fd = memfd_create("mitmd-certcache", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (c->fd == -1) {
        err = -errno;
        *why = "memfd_create";
        goto out_free;
    }
    if (ftruncate(c->fd, (off_t)total) == -1) {
        err = -errno;
        *why = "ftruncate";
        goto out_close;
    }
    c->size = (size_t)total;
    c->base = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
    if (c->base == MAP_FAILED) {
        err = -errno;
        *why = "mmap";
        goto out_close;
    }
    /* Fixed size for good: a reader's access can never fall past the end (SIGBUS). And no
     * write but through the mapping just made (F_SEAL_FUTURE_WRITE, Linux 5.1): a worker
     * that reopens its descriptor read-write through /proc/self/fd can neither write(2) nor
     * map it writable. F_SEAL_SEAL: nobody can change this later. */
    if (fcntl(c->fd, F_ADD_SEALS,
              F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) == -1) {
        err = -errno;
        *why = "fcntl(F_ADD_SEALS)";
        goto out_unmap;
    }
    c->writable = true;
    randombytes_buf(c->hashkey, sizeof(c->hashkey));
    cache_bind(c, (uint32_t)nsets);

    /* The memfd is zero-filled: every slot starts with seq 0 (empty). No reader can see
     * the header before the fd is handed over, so plain stores suffice. */
    c->hdr->magic = CERTCACHE_MAGIC;
    c->hdr->version = CERTCACHE_VERSION;
    c->hdr->hdr_size = CERTCACHE_PAGE;
    c->hdr->slot_size = CERTCACHE_SLOT_SIZE;
    c->hdr->ways = CERTCACHE_WAYS;
    c->hdr->key_max = CERTCACHE_KEY_MAX;
    c->hdr->der_max = CERTCACHE_DER_MAX;
    c->hdr->nsets = (uint32_t)nsets;
    c->hdr->tags_off = CERTCACHE_PAGE;
    c->hdr->slots_off = layout_slots_off((uint64_t)nsets);
    c->hdr->total_size = total;
    memcpy(c->hdr->hashkey, c->hashkey, sizeof(c->hashkey));
    *out = c;
    return 0;
out_unmap:
    munmap(c->base, c->size);
out_close:
    close(c->fd);
out_free:
    free(c);
    return err;
}

/* hdr_check validates a header copy against this build and the fd's size. */
static int hdr_check(const struct certcache_hdr *h, uint64_t fd_size, const char **why)
{
    if (h->magic != CERTCACHE_MAGIC) {
        *why = "bad magic";
        return -EINVAL;
    }
    if (h->version != CERTCACHE_VERSION) {
        *why = "unsupported version";
        return -EINVAL;
    }
    if (h->hdr_size != CERTCACHE_PAGE || h->slot_size != CERTCACHE_SLOT_SIZE ||
        h->ways != CERTCACHE_WAYS || h->key_max != CERTCACHE_KEY_MAX ||
        h->der_max != CERTCACHE_DER_MAX) {
        *why = "slot geometry differs from this build";
        return -EINVAL;
    }
    if (h->nsets == 0 || h->nsets > CERTCACHE_MAX_SETS) {
        *why = "bad set count";
        return -EINVAL;
    }
    if (h->tags_off != CERTCACHE_PAGE || h->slots_off != layout_slots_off(h->nsets) ||
        h->total_size != layout_total(h->nsets)) {
        *why = "offsets inconsistent with set count";
        return -EINVAL;
    }
    if (h->total_size != fd_size) {
        *why = "size differs from the fd's size";
        return -EINVAL;
    }
    return 0;
}

int certcache_attach(int fd, struct certcache **out, const char **why)
{
    const char *dummy;
    struct certcache_hdr hdr;
    struct certcache *c;
    struct stat st;
    int seals, err;

    if (why == NULL)
        why = &dummy;
    if (fstat(fd, &st) == -1) {
        *why = "fstat";
        return -errno;
    }
    if (st.st_size < (off_t)CERTCACHE_MIN_BYTES ||
        (uint64_t)st.st_size > layout_total(CERTCACHE_MAX_SETS) ||
        (uint64_t)st.st_size > SIZE_MAX) {
        *why = "fd size out of range";
        return -EINVAL;
    }
    seals = fcntl(fd, F_GET_SEALS);
    if (seals == -1 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
        *why = "not a memfd sealed against resizing";
        return -EINVAL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        *why = "out of memory";
        return -ENOMEM;
    }
    c->size = (size_t)st.st_size;
    c->base = mmap(NULL, c->size, PROT_READ, MAP_SHARED, fd, 0);
    if (c->base == MAP_FAILED) {
        err = -errno;
        *why = "mmap";
        goto out_free;
    }
    /* Validate a private copy: the shared header could change under us (it cannot through
     * a sealed memfd written only by the master, but readers trust nothing in the shm). */
    memcpy(&hdr, c->base, offsetof(struct certcache_hdr, inserts));
    err = hdr_check(&hdr, (uint64_t)st.st_size, why);
    if (err)
        goto out_unmap;
    memcpy(c->hashkey, hdr.hashkey, sizeof(c->hashkey));
    c->fd = fd;
    c->writable = false;
    cache_bind(c, hdr.nsets);
    *out = c;
    return 0;
out_unmap:
    munmap(c->base, c->size);
out_free:
    free(c);
    return err;
}

void certcache_close(struct certcache *c)
{
    if (c == NULL)
        return;
    munmap(c->base, c->size);
    close(c->fd);
    free(c);
}

int certcache_fd(const struct certcache *c)
{
    return c->fd;
}

int certcache_open_reader_fd(const struct certcache *c, int *fd_out)
{
    char path[40];
    int fd;

    if (!c->writable)
        return -EROFS;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", c->fd);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -errno;
    *fd_out = fd;
    return 0;
}

/* ---- writer ------------------------------------------------------------------------ */

enum pick_kind { PICK_SAME_KEY, PICK_FREE, PICK_EXPIRED, PICK_OLDEST };

/* cache_pick chooses the slot of set `set` for `key`. The writer reads its own stores, so
 * plain reads are race-free here. */
static size_t cache_pick(const struct certcache *c, size_t set, uint64_t h, const char *key,
                         size_t keylen, time_t now, enum pick_kind *kind)
{
    size_t first = set * CERTCACHE_WAYS, free_idx = SIZE_MAX, exp_idx = SIZE_MAX;
    size_t old_idx = first;

    for (size_t i = first; i < first + CERTCACHE_WAYS; i++) {
        const struct certcache_slot *s = &c->slots[i];

        if (s->seq == 0) {
            if (free_idx == SIZE_MAX)
                free_idx = i;
            continue;
        }
        if (s->hash == h && s->keylen == keylen && memcmp(s->key, key, keylen) == 0) {
            *kind = PICK_SAME_KEY;
            return i;
        }
        if (s->expires <= (int64_t)now) {
            if (exp_idx == SIZE_MAX || s->expires < c->slots[exp_idx].expires)
                exp_idx = i;
        }
        if (s->stamp < c->slots[old_idx].stamp)
            old_idx = i;
    }
    if (free_idx != SIZE_MAX) {
        *kind = PICK_FREE;
        return free_idx;
    }
    if (exp_idx != SIZE_MAX) {
        *kind = PICK_EXPIRED;
        return exp_idx;
    }
    *kind = PICK_OLDEST;
    return old_idx;
}

int certcache_insert(struct certcache *c, const char *key, size_t keylen, const uint8_t *der,
                     size_t derlen, time_t expires, time_t now)
{
    struct certcache_slot *s;
    enum pick_kind kind;
    uint64_t h, seq, stamp;
    size_t idx;
    char digest[CACHE_DIGEST_KEY_LEN];

    if (!c->writable)
        return -EROFS;
    if (keylen == 0 || derlen == 0 || expires <= now)
        return -EINVAL;
    if (derlen > CERTCACHE_DER_MAX) {
        counter_add(&c->hdr->refused, 1);
        return -EMSGSIZE;
    }
    key = cache_key(key, &keylen, digest);
    h = cache_hash(c, key, keylen);
    idx = cache_pick(c, cache_set(c, h), h, key, keylen, now, &kind);
    s = &c->slots[idx];
    stamp = c->hdr->clock + 1;
    counter_add(&c->hdr->clock, 1);

    seq = s->seq;
    __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    word_store(&s->hash, h);
    __atomic_store_n(&s->expires, (int64_t)expires, __ATOMIC_RELAXED);
    word_store(&s->stamp, stamp);
    __atomic_store_n(&s->keylen, (uint32_t)keylen, __ATOMIC_RELAXED);
    __atomic_store_n(&s->derlen, (uint32_t)derlen, __ATOMIC_RELAXED);
    shm_write(s->key, key, keylen);
    shm_write(s->der, der, derlen);
    __atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
    /* The tag is a hint published after the slot: a stale tag only costs a probe. */
    word_store(&c->tags[idx], h);

    switch (kind) {
    case PICK_SAME_KEY:
        counter_add(&c->hdr->updates, 1);
        break;
    case PICK_FREE:
        counter_add(&c->hdr->inserts, 1);
        break;
    case PICK_EXPIRED:
        counter_add(&c->hdr->inserts, 1);
        counter_add(&c->hdr->reclaims, 1);
        break;
    case PICK_OLDEST:
        counter_add(&c->hdr->inserts, 1);
        counter_add(&c->hdr->evictions, 1);
        break;
    }
    return 0;
}

void certcache_count_forge(struct certcache *c)
{
    if (c->writable)
        counter_add(&c->hdr->forges, 1);
}

/* ---- reader ------------------------------------------------------------------------ */

/* slot_read reads slot `s` under its seqlock. The slot is untrusted: lengths are checked
 * against the slot's arrays before any copy, and nothing read is used unless the sequence
 * was even and unchanged across the read. */
static ssize_t slot_read(const struct certcache_slot *s, uint64_t h, const char *key, size_t keylen,
                         time_t now, uint8_t *out, size_t cap)
{
    for (int tries = 0; tries < CERTCACHE_READ_RETRIES; tries++) {
        uint64_t s1, s2;
        ssize_t res;
        uint32_t klen, dlen;
        bool key_ok = false;

        s1 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if (s1 == 0)
            return SLOT_NOMATCH;
        if (s1 & 1)
            continue; /* the master is mid-write; it holds no lock, so just re-read */
        klen = __atomic_load_n(&s->keylen, __ATOMIC_RELAXED);
        dlen = __atomic_load_n(&s->derlen, __ATOMIC_RELAXED);
        if (word_load(&s->hash) != h || klen != keylen) {
            res = SLOT_NOMATCH;
        } else if (dlen == 0 || dlen > CERTCACHE_DER_MAX) {
            res = SLOT_CORRUPT;
        } else {
            /* klen == keylen <= CERTCACHE_KEY_MAX, checked by the caller */
            key_ok = shm_equal(s->key, key, keylen);
            if (!key_ok)
                res = SLOT_NOMATCH;
            else if (__atomic_load_n(&s->expires, __ATOMIC_RELAXED) <= (int64_t)now)
                res = SLOT_EXPIRED;
            else if (dlen > cap)
                res = SLOT_NOSPC;
            else {
                shm_read(out, s->der, dlen);
                res = (ssize_t)dlen;
            }
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        s2 = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
        if (s1 == s2)
            return res;
    }
    return SLOT_CONTENDED;
}

ssize_t certcache_lookup(const struct certcache *c, const char *key, size_t keylen, time_t now,
                         uint8_t *out, size_t cap, struct certcache_reader *r)
{
    size_t first;
    uint64_t h;
    char digest[CACHE_DIGEST_KEY_LEN];

    if (keylen == 0)
        goto miss;
    key = cache_key(key, &keylen, digest);
    h = cache_hash(c, key, keylen);
    first = cache_set(c, h) * CERTCACHE_WAYS;
    for (size_t i = first; i < first + CERTCACHE_WAYS; i++) {
        ssize_t res;

        if (word_load(&c->tags[i]) != h)
            continue;
        res = slot_read(&c->slots[i], h, key, keylen, now, out, cap);
        if (res >= 0) {
            r->hits++;
            return res;
        }
        switch ((enum slot_result)res) {
        case SLOT_NOMATCH:
            continue;
        case SLOT_CORRUPT:
            r->corrupt++;
            continue;
        case SLOT_EXPIRED:
            r->expired++;
            goto miss;
        case SLOT_NOSPC:
            r->misses++;
            return -ENOSPC;
        case SLOT_CONTENDED:
            r->contended++;
            goto miss;
        }
    }
miss:
    r->misses++;
    return -ENOENT;
}

/* ---- statistics -------------------------------------------------------------------- */

void certcache_get_stats(const struct certcache *c, struct certcache_stats *out)
{
    const struct certcache_hdr *h = c->hdr;

    memset(out, 0, sizeof(*out));
    out->bytes = c->size;
    out->slots = (uint64_t)c->nsets * CERTCACHE_WAYS;
    out->inserts = counter_get(&h->inserts);
    out->updates = counter_get(&h->updates);
    out->evictions = counter_get(&h->evictions);
    out->reclaims = counter_get(&h->reclaims);
    out->refused = counter_get(&h->refused);
    out->forges = counter_get(&h->forges);
}

void certcache_stats_add_reader(struct certcache_stats *s, const struct certcache_reader *r)
{
    s->hits += r->hits;
    s->misses += r->misses;
}
