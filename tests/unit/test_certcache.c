/* test_certcache.c - unit tests for certcache: hits, misses, collisions, eviction, expiry,
 * size limits, header validation on attach, the read-only worker mapping, a writer caught
 * mid-write, and a multi-process stress test that detects torn reads.
 * Includes certcache.c to reach its internals (slots, tags, hash), as STYLE.md suggests. */
#include "certcache/certcache.c"

#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "shared/nameset.h"

#define T0 ((time_t)1800000000) /* a fixed "now" */

static uint64_t mix64(uint64_t x);

static struct certcache *cache_new(size_t bytes)
{
    struct certcache *c = NULL;
    const char *why = NULL;

    assert_int_equal(certcache_create(bytes, &c, &why), 0);
    assert_non_null(c);
    return c;
}

/* key_make writes a canonical 3-name key for host `i` and returns its length. */
static size_t key_make(char *out, size_t cap, unsigned i)
{
    char a[64], b[64], d[64];
    const char *v[3] = {a, b, d};
    ssize_t n;

    snprintf(a, sizeof(a), "host%u.example.com", i);
    snprintf(b, sizeof(b), "www.host%u.example.com", i);
    snprintf(d, sizeof(d), "api.host%u.example.com", i);
    n = nameset_canon_cstr(v, 3, out, cap, NULL);
    assert_true(n > 0);
    return (size_t)n;
}

static void der_fill(uint8_t *der, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++)
        der[i] = (uint8_t)(seed * 31u + i * 7u);
}

/* ---- helpers ------------------------------------------------------------------------- */

static void test_word_copies(void **state)
{
    (void)state;
    uint64_t words[4];
    uint8_t src[24], dst[25];

    for (size_t i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)(0xa0 + i);
    for (size_t n = 0; n <= sizeof(src); n++) {
        memset(words, 0xee, sizeof(words));
        memset(dst, 0x55, sizeof(dst));
        shm_write(words, src, n);
        shm_read(dst, words, n);
        assert_memory_equal(dst, src, n);
        assert_int_equal(dst[n], 0x55); /* nothing written past n */
        assert_true(shm_equal(words, src, n));
        if (n > 0) {
            dst[n - 1] ^= 1;
            assert_false(shm_equal(words, dst, n));
        }
    }
}

static void test_create_sizes(void **state)
{
    (void)state;
    struct certcache *c = NULL;
    struct certcache_stats st;
    const char *why = NULL;

    print_message("case: below one set is refused\n");
    assert_int_equal(certcache_create(CERTCACHE_MIN_BYTES - 1, &c, &why), -EINVAL);
    assert_non_null(why);
    print_message("case: exactly one set\n");
    c = cache_new(CERTCACHE_MIN_BYTES);
    certcache_get_stats(c, &st);
    assert_int_equal(st.slots, CERTCACHE_WAYS);
    assert_int_equal(st.bytes, CERTCACHE_MIN_BYTES);
    certcache_close(c);
    print_message("case: 64 MiB default stays within 64 MiB\n");
    c = cache_new((size_t)CERTCACHE_DEFAULT_MB << 20);
    certcache_get_stats(c, &st);
    assert_true(st.bytes <= (uint64_t)CERTCACHE_DEFAULT_MB << 20);
    assert_true(st.slots >= 8000);
    certcache_close(c);
    certcache_close(NULL);
}

/* ---- lookups ------------------------------------------------------------------------- */

struct lookup_case {
    const char *note;
    const char *key; /* looked up; the cache holds "a.test\nb.test" -> 100 bytes */
    time_t now;
    size_t cap;
    ssize_t want;
    uint64_t expired; /* reader counter after the lookup */
};

#define K_AB "a.test\nb.test"
#define EXP (T0 + 3600)

static const struct lookup_case lookup_cases[] = {
    {"hit", K_AB, T0, 4096, 100, 0},
    {"hit one second before expiry", K_AB, EXP - 1, 4096, 100, 0},
    {"expired at the expiry time", K_AB, EXP, 4096, -ENOENT, 1},
    {"expired after the expiry time", K_AB, EXP + 86400, 4096, -ENOENT, 1},
    {"other key misses", "c.test", T0, 4096, -ENOENT, 0},
    {"a prefix of the key misses", "a.test", T0, 4096, -ENOENT, 0},
    {"a longer key misses", K_AB "\nc.test", T0, 4096, -ENOENT, 0},
    {"case matters: keys are canonical", "A.test\nb.test", T0, 4096, -ENOENT, 0},
    {"empty key misses", "", T0, 4096, -ENOENT, 0},
    {"buffer one byte short", K_AB, T0, 99, -ENOSPC, 0},
    {"buffer exactly the size", K_AB, T0, 100, 100, 0},
};

static void test_lookup_table(void **state)
{
    (void)state;
    struct certcache *c = cache_new(1 << 20);
    uint8_t der[100], out[4096];

    der_fill(der, sizeof(der), 1);
    assert_int_equal(certcache_insert(c, K_AB, strlen(K_AB), der, sizeof(der), EXP, T0), 0);
    for (size_t i = 0; i < sizeof(lookup_cases) / sizeof(lookup_cases[0]); i++) {
        const struct lookup_case *tc = &lookup_cases[i];
        struct certcache_reader r = {0};
        ssize_t got;

        print_message("case: %s\n", tc->note);
        memset(out, 0, sizeof(out));
        got = certcache_lookup(c, tc->key, strlen(tc->key), tc->now, out, tc->cap, &r);
        assert_int_equal(got, tc->want);
        assert_int_equal(r.expired, tc->expired);
        assert_int_equal(r.hits + r.misses, 1);
        assert_int_equal(r.hits, got >= 0 ? 1 : 0);
        if (got >= 0)
            assert_memory_equal(out, der, sizeof(der));
    }
    certcache_close(c);
}

/* Name sets longer than a slot's key (a CDN certificate with 100+ SANs) are cached under
 * their digest: hit for the same set, miss for a set differing in its last byte, and no
 * confusion with a short key. */
static void test_long_keys_cached(void **state)
{
    (void)state;
    struct certcache *c = cache_new(1 << 20);
    static char key[4 * CERTCACHE_KEY_MAX], other[4 * CERTCACHE_KEY_MAX];
    struct certcache_reader r = {0};
    uint8_t der[100], out[128];
    struct certcache_stats st;

    memset(key, 'k', sizeof(key));
    memcpy(other, key, sizeof(other));
    other[sizeof(other) - 1] = 'j';
    der_fill(der, sizeof(der), 7);
    assert_int_equal(certcache_lookup(c, key, sizeof(key), T0, out, sizeof(out), &r), -ENOENT);
    assert_int_equal(r.misses, 1);
    assert_int_equal(certcache_insert(c, key, sizeof(key), der, sizeof(der), EXP, T0), 0);
    assert_int_equal(certcache_lookup(c, key, sizeof(key), T0, out, sizeof(out), &r),
                     (ssize_t)sizeof(der));
    assert_memory_equal(out, der, sizeof(der));
    assert_int_equal(certcache_lookup(c, other, sizeof(other), T0, out, sizeof(out), &r), -ENOENT);
    assert_int_equal(certcache_lookup(c, key, CERTCACHE_KEY_MAX, T0, out, sizeof(out), &r),
                     -ENOENT);
    assert_int_equal(certcache_lookup(c, key, CERTCACHE_KEY_MAX + 1, T0, out, sizeof(out), &r),
                     -ENOENT);
    assert_int_equal(r.hits, 1);
    certcache_get_stats(c, &st);
    assert_int_equal(st.refused, 0);
    assert_int_equal(st.inserts, 1);
    certcache_close(c);
}

struct insert_case {
    const char *note;
    size_t keylen, derlen;
    time_t expires;
    int want;
};

static const struct insert_case insert_cases[] = {
    {"largest key and DER fit", CERTCACHE_KEY_MAX, CERTCACHE_DER_MAX, EXP, 0},
    {"one-byte key and DER", 1, 1, EXP, 0},
    {"key one byte too long: stored by digest", CERTCACHE_KEY_MAX + 1, 10, EXP, 0},
    {"DER one byte too long", 10, CERTCACHE_DER_MAX + 1, EXP, -EMSGSIZE},
    {"empty key", 0, 10, EXP, -EINVAL},
    {"empty DER", 10, 0, EXP, -EINVAL},
    {"already expired", 10, 10, T0, -EINVAL},
};

static void test_insert_table(void **state)
{
    (void)state;
    struct certcache *c = cache_new(1 << 20);
    static char key[CERTCACHE_KEY_MAX + 1];
    static uint8_t der[CERTCACHE_DER_MAX + 1], out[CERTCACHE_DER_MAX + 1];
    struct certcache_stats st;
    uint64_t refused = 0;

    for (size_t i = 0; i < sizeof(insert_cases) / sizeof(insert_cases[0]); i++) {
        const struct insert_case *tc = &insert_cases[i];
        struct certcache_reader r = {0};

        print_message("case: %s\n", tc->note);
        memset(key, 'a' + (int)i, sizeof(key));
        der_fill(der, sizeof(der), (uint8_t)i);
        assert_int_equal(certcache_insert(c, key, tc->keylen, der, tc->derlen, tc->expires, T0),
                         tc->want);
        if (tc->want == -EMSGSIZE)
            refused++;
        if (tc->keylen == 0)
            continue;
        /* stored iff accepted, and stored exactly */
        if (tc->want == 0) {
            assert_int_equal(certcache_lookup(c, key, tc->keylen, T0, out, sizeof(out), &r),
                             (ssize_t)tc->derlen);
            assert_memory_equal(out, der, tc->derlen);
        } else {
            assert_int_equal(certcache_lookup(c, key, tc->keylen, T0, out, sizeof(out), &r),
                             -ENOENT);
        }
    }
    certcache_get_stats(c, &st);
    assert_int_equal(st.refused, refused);
    assert_int_equal(st.inserts, 3);
    certcache_close(c);
}

static void test_update_in_place(void **state)
{
    (void)state;
    struct certcache *c = cache_new(1 << 20);
    struct certcache_reader r = {0};
    struct certcache_stats st;
    uint8_t d1[300], d2[200], out[512];

    der_fill(d1, sizeof(d1), 1);
    der_fill(d2, sizeof(d2), 2);
    assert_int_equal(certcache_insert(c, K_AB, strlen(K_AB), d1, sizeof(d1), EXP, T0), 0);
    assert_int_equal(certcache_insert(c, K_AB, strlen(K_AB), d2, sizeof(d2), EXP, T0), 0);
    assert_int_equal(certcache_lookup(c, K_AB, strlen(K_AB), T0, out, sizeof(out), &r), 200);
    assert_memory_equal(out, d2, sizeof(d2));
    certcache_get_stats(c, &st);
    assert_int_equal(st.inserts, 1);
    assert_int_equal(st.updates, 1);
    assert_int_equal(st.evictions, 0);
    certcache_close(c);
}

/* plant writes an entry into slot `idx` by the writer protocol, with a chosen hash: it
 * stands in for a SipHash collision, which cannot be found by search. */
static void plant(struct certcache *c, size_t idx, uint64_t hash, const char *key,
                  const uint8_t *der, size_t derlen)
{
    struct certcache_slot *s = &c->slots[idx];

    s->seq++;
    s->hash = hash;
    s->expires = EXP;
    s->keylen = (uint32_t)strlen(key);
    s->derlen = (uint32_t)derlen;
    shm_write(s->key, key, strlen(key));
    shm_write(s->der, der, derlen);
    s->seq++;
    c->tags[idx] = hash;
}

static void test_collision_safety(void **state)
{
    (void)state;
    struct certcache *c = cache_new(1 << 20);
    struct certcache_reader r = {0};
    uint8_t da[50], db[60], out[128];
    const char *ka = "a.test", *kb = "b.test";
    uint64_t hb = cache_hash(c, kb, strlen(kb));
    size_t set = cache_set(c, hb) * CERTCACHE_WAYS;

    der_fill(da, sizeof(da), 1);
    der_fill(db, sizeof(db), 2);
    print_message("case: same hash, different key is a miss, not A's certificate\n");
    plant(c, set, hb, ka, da, sizeof(da));
    assert_int_equal(certcache_lookup(c, kb, strlen(kb), T0, out, sizeof(out), &r), -ENOENT);
    print_message("case: B inserted next to its colliding neighbour returns B's bytes\n");
    assert_int_equal(certcache_insert(c, kb, strlen(kb), db, sizeof(db), EXP, T0), 0);
    assert_int_equal(certcache_lookup(c, kb, strlen(kb), T0, out, sizeof(out), &r), 60);
    assert_memory_equal(out, db, sizeof(db));

    /* a one-set cache: every key shares the set, each still gets its own bytes */
    certcache_close(c);
    c = cache_new(CERTCACHE_MIN_BYTES);
    print_message("case: %u keys in one set each return their own entry\n", CERTCACHE_WAYS);
    for (unsigned i = 0; i < CERTCACHE_WAYS; i++) {
        char key[256];
        size_t klen = key_make(key, sizeof(key), i);

        der_fill(da, sizeof(da), (uint8_t)i);
        assert_int_equal(certcache_insert(c, key, klen, da, 10 + i, EXP, T0), 0);
    }
    for (unsigned i = 0; i < CERTCACHE_WAYS; i++) {
        char key[256];
        size_t klen = key_make(key, sizeof(key), i);

        der_fill(da, sizeof(da), (uint8_t)i);
        assert_int_equal(certcache_lookup(c, key, klen, T0, out, sizeof(out), &r), 10 + i);
        assert_memory_equal(out, da, 10 + i);
    }
    certcache_close(c);
}

/* ---- eviction ------------------------------------------------------------------------ */

struct evict_case {
    const char *note;
    time_t expires[CERTCACHE_WAYS]; /* of the 8 entries filling the set, inserted in order */
    time_t now;                     /* of the 9th insert */
    int gone;                       /* index of the entry the 9th insert replaces */
    uint64_t evictions, reclaims;
};

static const struct evict_case evict_cases[] = {
    {"all live: the oldest insert goes", {EXP, EXP, EXP, EXP, EXP, EXP, EXP, EXP}, T0, 0, 1, 0},
    {"an expired entry goes before live ones",
     {EXP, EXP, EXP, EXP, T0 + 10, EXP, EXP, EXP},
     T0 + 20,
     4,
     0,
     1},
    {"of two expired, the one that expired first goes",
     {EXP, T0 + 15, EXP, EXP, EXP, EXP, T0 + 10, EXP},
     T0 + 20,
     6,
     0,
     1},
    {"an entry not yet expired counts as live",
     {EXP, EXP, EXP, T0 + 21, EXP, EXP, EXP, EXP},
     T0 + 20,
     0,
     1,
     0},
};

static void test_evict_table(void **state)
{
    (void)state;
    for (size_t t = 0; t < sizeof(evict_cases) / sizeof(evict_cases[0]); t++) {
        const struct evict_case *tc = &evict_cases[t];
        struct certcache *c = cache_new(CERTCACHE_MIN_BYTES); /* one set */
        struct certcache_stats st;
        uint8_t der[64], out[64];
        char key[256];
        size_t klen;

        print_message("case: %s\n", tc->note);
        der_fill(der, sizeof(der), 9);
        for (unsigned i = 0; i < CERTCACHE_WAYS; i++) {
            klen = key_make(key, sizeof(key), i);
            assert_int_equal(certcache_insert(c, key, klen, der, sizeof(der), tc->expires[i], T0),
                             0);
        }
        klen = key_make(key, sizeof(key), 100);
        assert_int_equal(certcache_insert(c, key, klen, der, sizeof(der), EXP, tc->now), 0);
        for (unsigned i = 0; i <= CERTCACHE_WAYS; i++) {
            struct certcache_reader r = {0};
            unsigned host = i == CERTCACHE_WAYS ? 100 : i;
            ssize_t got;

            klen = key_make(key, sizeof(key), host);
            got = certcache_lookup(c, key, klen, T0, out, sizeof(out), &r); /* T0: none expired */
            assert_int_equal(got, (int)i == tc->gone ? -ENOENT : (ssize_t)sizeof(der));
        }
        certcache_get_stats(c, &st);
        assert_int_equal(st.inserts, CERTCACHE_WAYS + 1);
        assert_int_equal(st.evictions, tc->evictions);
        assert_int_equal(st.reclaims, tc->reclaims);
        certcache_close(c);
    }
}

/* ---- the seqlock seen from a reader -------------------------------------------------- */

static void test_reader_bounded_retries(void **state)
{
    (void)state;
    struct certcache *c = cache_new(CERTCACHE_MIN_BYTES);
    struct certcache_reader r = {0};
    uint8_t der[64], out[64];
    size_t idx;

    der_fill(der, sizeof(der), 3);
    assert_int_equal(certcache_insert(c, K_AB, strlen(K_AB), der, sizeof(der), EXP, T0), 0);
    idx = 0; /* the first insert into an empty one-set cache takes way 0 */
    assert_int_equal(c->tags[idx], cache_hash(c, K_AB, strlen(K_AB)));

    print_message("case: a slot left mid-write (odd seq) is a miss, not a hang\n");
    c->slots[idx].seq++;
    assert_int_equal(certcache_lookup(c, K_AB, strlen(K_AB), T0, out, sizeof(out), &r), -ENOENT);
    assert_int_equal(r.contended, 1);
    c->slots[idx].seq++;
    assert_int_equal(certcache_lookup(c, K_AB, strlen(K_AB), T0, out, sizeof(out), &r), 64);

    print_message("case: impossible DER length is a miss and counted\n");
    c->slots[idx].derlen = CERTCACHE_DER_MAX + 1;
    assert_int_equal(certcache_lookup(c, K_AB, strlen(K_AB), T0, out, sizeof(out), &r), -ENOENT);
    assert_int_equal(r.corrupt, 1);
    c->slots[idx].derlen = 0;
    assert_int_equal(certcache_lookup(c, K_AB, strlen(K_AB), T0, out, sizeof(out), &r), -ENOENT);
    assert_int_equal(r.corrupt, 2);
    certcache_close(c);
}

/* ---- attach -------------------------------------------------------------------------- */

/* clone_fd copies the first `size` bytes of `c` (zero-extended) into a new memfd, applies
 * `mutate` at header offset `off` (width 4 or 8; width 0 = none), and seals it if asked. */
static int clone_fd(const struct certcache *c, size_t size, size_t off, int width, uint64_t val,
                    bool seal)
{
    int fd = memfd_create("test-certcache", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    uint8_t *p;

    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(p != MAP_FAILED);
    memcpy(p, c->base, size < c->size ? size : c->size);
    if (width == 4) {
        uint32_t v = (uint32_t)val;
        memcpy(p + off, &v, 4);
    } else if (width == 8) {
        memcpy(p + off, &val, 8);
    }
    munmap(p, size);
    if (seal)
        assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    return fd;
}

struct attach_case {
    const char *note;
    size_t off;
    int width;
    uint64_t val;
    long size_delta; /* fd size relative to the real cache */
    size_t abs_size; /* if not 0: the fd size */
    bool seal;
    int want;
};

#define HOFF(f) offsetof(struct certcache_hdr, f)

static const struct attach_case attach_cases[] = {
    {"an exact copy attaches", 0, 0, 0, 0, 0, true, 0},
    {"bad magic", HOFF(magic), 8, 0x4141414141414141ull, 0, 0, true, -EINVAL},
    {"future version", HOFF(version), 4, CERTCACHE_VERSION + 1, 0, 0, true, -EINVAL},
    {"other slot size", HOFF(slot_size), 4, 4096, 0, 0, true, -EINVAL},
    {"other way count", HOFF(ways), 4, 4, 0, 0, true, -EINVAL},
    {"other key max", HOFF(key_max), 4, 2048, 0, 0, true, -EINVAL},
    {"zero sets", HOFF(nsets), 4, 0, 0, 0, true, -EINVAL},
    {"more sets than the fd holds", HOFF(nsets), 4, 16, 0, 0, true, -EINVAL},
    {"huge set count", HOFF(nsets), 4, 0xffffffffu, 0, 0, true, -EINVAL},
    {"tags offset moved", HOFF(tags_off), 8, 0, 0, 0, true, -EINVAL},
    {"slots offset moved", HOFF(slots_off), 8, 12288, 0, 0, true, -EINVAL},
    {"total size lies", HOFF(total_size), 8, 1ull << 40, 0, 0, true, -EINVAL},
    {"fd one page larger than the header says", 0, 0, 0, 4096, 0, true, -EINVAL},
    {"fd one page smaller than the header says", 0, 0, 0, -4096, 0, true, -EINVAL},
    {"fd smaller than a header", 0, 0, 0, 0, 100, true, -EINVAL},
    {"memfd not sealed", 0, 0, 0, 0, 0, false, -EINVAL},
};

static void test_attach_table(void **state)
{
    (void)state;
    struct certcache *c = cache_new(1 << 20); /* 15 sets */

    assert_int_equal(c->nsets, 15);
    for (size_t i = 0; i < sizeof(attach_cases) / sizeof(attach_cases[0]); i++) {
        const struct attach_case *tc = &attach_cases[i];
        struct certcache *w = NULL;
        const char *why = NULL;
        size_t size;
        int fd, err;

        print_message("case: %s\n", tc->note);
        size = tc->abs_size ? tc->abs_size : (size_t)((long)c->size + tc->size_delta);
        fd = clone_fd(c, size, tc->off, tc->width, tc->val, tc->seal);
        err = certcache_attach(fd, &w, &why);
        assert_int_equal(err, tc->want);
        if (err == 0) {
            certcache_close(w); /* owns fd */
        } else {
            assert_non_null(why);
            print_message("  why: %s\n", why);
            assert_int_equal(fcntl(fd, F_GETFD), FD_CLOEXEC); /* still ours, still open */
            close(fd);
        }
    }
    print_message("case: a regular pipe is not a cache\n");
    {
        int p[2];
        struct certcache *w = NULL;

        assert_int_equal(pipe(p), 0);
        assert_int_equal(certcache_attach(p[0], &w, NULL), -EINVAL);
        close(p[0]);
        close(p[1]);
    }
    certcache_close(c);
}

/* ---- the worker's mapping is read-only ----------------------------------------------- */

static void test_reader_is_readonly(void **state)
{
    (void)state;
    struct certcache *c = cache_new(1 << 20), *w = NULL;
    struct certcache_reader r = {0};
    uint8_t der[32], out[32];
    int rofd = -1, status;
    pid_t pid;
    void *p;

    der_fill(der, sizeof(der), 5);
    assert_int_equal(certcache_insert(c, K_AB, strlen(K_AB), der, sizeof(der), EXP, T0), 0);

    print_message("case: a write through an attached mapping dies with SIGSEGV\n");
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct certcache *cw = NULL;
        int fd = dup(certcache_fd(c));

        signal(SIGSEGV, SIG_DFL);
        if (fd == -1 || certcache_attach(fd, &cw, NULL) != 0)
            _exit(2);
        ((volatile uint8_t *)cw->slots)[100] = 1; /* must fault */
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);

    print_message("case: the reader fd cannot be mapped or mprotect'ed writable\n");
    assert_int_equal(certcache_open_reader_fd(c, &rofd), 0);
    p = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, rofd, 0);
    assert_true(p == MAP_FAILED);
    assert_int_equal(errno, EACCES);
    assert_int_equal(certcache_attach(rofd, &w, NULL), 0);
    assert_int_equal(mprotect(w->base, c->size, PROT_READ | PROT_WRITE), -1);
    assert_int_equal(errno, EACCES);

    /* Issue 10 item 2: a worker can reopen its descriptor read-write through /proc/self/fd
     * (same owner); F_SEAL_FUTURE_WRITE makes that useless: no write, no writable mapping. */
    print_message("case: the memfd reopened read-write through /proc cannot be written\n");
    {
        char path[64];
        int rw;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", rofd);
        rw = open(path, O_RDWR | O_CLOEXEC);
        if (rw >= 0) {
            assert_int_equal(pwrite(rw, "X", 1, 4096), -1);
            assert_int_equal(errno, EPERM);
            p = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
            assert_true(p == MAP_FAILED);
            assert_int_equal(errno, EPERM);
            close(rw);
        }
        assert_true((fcntl(rofd, F_GET_SEALS) & F_SEAL_FUTURE_WRITE) != 0);
        /* the master's own mapping, made before the seal, still writes */
        assert_int_equal(certcache_insert(c, K_AB, strlen(K_AB), der, sizeof(der), EXP, T0), 0);
    }

    print_message("case: the attached cache sees the master's entries and refuses writes\n");
    assert_int_equal(certcache_lookup(w, K_AB, strlen(K_AB), T0, out, sizeof(out), &r), 32);
    assert_memory_equal(out, der, sizeof(der));
    assert_int_equal(certcache_insert(w, "x", 1, der, 1, EXP, T0), -EROFS);
    assert_int_equal(certcache_open_reader_fd(w, &rofd), -EROFS);
    certcache_close(w);
    certcache_close(c);
}

/* Readers treat the shm as untrusted: slots full of random bytes, with tags and hashes
 * pointing the lookup at them, never make a lookup read out of bounds (ASan build) or return
 * more than the slot can hold or the buffer takes. */
static void test_reader_garbage_slots(void **state)
{
    (void)state;
    struct certcache *c = cache_new(1 << 20);
    struct certcache_reader r = {0};
    static uint8_t out[CERTCACHE_DER_MAX + 16];
    uint64_t rnd = 7;

    for (unsigned round = 0; round < 2000; round++) {
        char key[256];
        size_t klen = key_make(key, sizeof(key), round % 50);
        uint64_t h = cache_hash(c, key, klen);
        size_t first = cache_set(c, h) * CERTCACHE_WAYS;
        size_t cap = (size_t)((rnd = mix64(rnd)) % sizeof(out));
        ssize_t got;

        for (size_t i = first; i < first + CERTCACHE_WAYS; i++) {
            struct certcache_slot *s = &c->slots[i];

            randombytes_buf(s, CERTCACHE_SLOT_HDR_SIZE);
            s->seq &= ~1ull;
            s->hash = h;
            if ((rnd = mix64(rnd)) % 2) {
                s->keylen = (uint32_t)klen;
                shm_write(s->key, key, klen);
            }
            if ((rnd = mix64(rnd)) % 2)
                s->derlen = (uint32_t)((rnd >> 8) % (CERTCACHE_DER_MAX + 100));
            if ((rnd = mix64(rnd)) % 2)
                s->expires = T0 + 1000;
            c->tags[i] = h;
        }
        got = certcache_lookup(c, key, klen, T0, out, cap, &r);
        assert_true(got == -ENOENT || got == -ENOSPC || (got > 0 && (size_t)got <= cap));
        assert_true(got <= (ssize_t)CERTCACHE_DER_MAX);
    }
    print_message("garbage: %llu hits, %llu misses, %llu corrupt, %llu expired\n",
                  (unsigned long long)r.hits, (unsigned long long)r.misses,
                  (unsigned long long)r.corrupt, (unsigned long long)r.expired);
    assert_true(r.corrupt > 0);
    assert_true(r.hits > 0); /* in-range garbage is served: the shm cannot be authenticated */
    certcache_close(c);
}

static void test_stats(void **state)
{
    (void)state;
    struct certcache *c = cache_new(1 << 20), *w = NULL;
    struct certcache_reader r1 = {0}, r2 = {0};
    struct certcache_stats st;
    uint8_t der[8] = {1}, out[8];
    int fd = -1;

    assert_int_equal(certcache_insert(c, K_AB, strlen(K_AB), der, sizeof(der), EXP, T0), 0);
    certcache_count_forge(c);
    certcache_count_forge(c);
    assert_int_equal(certcache_open_reader_fd(c, &fd), 0);
    assert_int_equal(certcache_attach(fd, &w, NULL), 0);
    certcache_count_forge(w); /* ignored: readers cannot write */
    certcache_lookup(w, K_AB, strlen(K_AB), T0, out, sizeof(out), &r1);
    certcache_lookup(w, "zz", 2, T0, out, sizeof(out), &r2);
    certcache_lookup(w, K_AB, strlen(K_AB), T0, out, sizeof(out), &r2);
    certcache_get_stats(w, &st); /* readers may read the master's counters too */
    assert_int_equal(st.forges, 2);
    assert_int_equal(st.inserts, 1);
    assert_int_equal(st.hits + st.misses, 0);
    certcache_stats_add_reader(&st, &r1);
    certcache_stats_add_reader(&st, &r2);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 1);
    certcache_close(w);
    certcache_close(c);
}

/* ---- multi-process stress ------------------------------------------------------------ */

#define STRESS_KEYS 400
#define STRESS_READERS 3
#define STRESS_SECONDS 2.0

struct stress_result {
    uint64_t lookups, hits, misses, torn, contended;
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t key_seed(const char *key, size_t klen)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < klen; i++)
        h = (h ^ (uint8_t)key[i]) * 0x100000001b3ull;
    return h;
}

/* stress_der builds the entry for (key, gen): [gen u64][len u32][keylen u32][key][filler],
 * every byte a function of key and gen, and the length too, so any mix of two versions is
 * detected by stress_check. */
static size_t stress_der(uint8_t *der, const char *key, size_t klen, uint64_t gen)
{
    uint64_t seed = key_seed(key, klen) ^ mix64(gen);
    size_t len = 16 + klen + 64 + (size_t)(mix64(seed) % 4000);
    uint32_t l32 = (uint32_t)len, k32 = (uint32_t)klen;

    memcpy(der, &gen, 8);
    memcpy(der + 8, &l32, 4);
    memcpy(der + 12, &k32, 4);
    memcpy(der + 16, key, klen);
    for (size_t i = 16 + klen; i < len; i++)
        der[i] = (uint8_t)(mix64(seed + i) >> 56);
    return len;
}

static bool stress_check(const uint8_t *der, size_t len, const char *key, size_t klen)
{
    static uint8_t want[CERTCACHE_DER_MAX];
    uint64_t gen;

    if (len < 16)
        return false;
    memcpy(&gen, der, 8);
    if (stress_der(want, key, klen, gen) != len)
        return false;
    return memcmp(der, want, len) == 0;
}

static void stress_reader(int cfd, int stop_fd, int res_fd, unsigned id)
{
    static uint8_t out[CERTCACHE_DER_MAX];
    struct stress_result res = {0};
    struct certcache_reader r = {0};
    struct certcache *w = NULL;
    uint64_t rnd = 0x9e3779b97f4a7c15ull * (id + 1);
    char keys[STRESS_KEYS][128];
    size_t klens[STRESS_KEYS];

    if (certcache_attach(cfd, &w, NULL) != 0)
        _exit(3);
    for (unsigned i = 0; i < STRESS_KEYS; i++)
        klens[i] = key_make(keys[i], sizeof(keys[i]), i);
    for (;;) {
        for (int n = 0; n < 1024; n++) {
            unsigned k = (unsigned)((rnd = mix64(rnd)) % STRESS_KEYS);
            ssize_t got = certcache_lookup(w, keys[k], klens[k], T0, out, sizeof(out), &r);

            res.lookups++;
            if (got >= 0 && !stress_check(out, (size_t)got, keys[k], klens[k]))
                res.torn++;
        }
        struct pollfd pfd = {.fd = stop_fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) != 0)
            break;
    }
    res.hits = r.hits;
    res.misses = r.misses;
    res.contended = r.contended;
    if (write(res_fd, &res, sizeof(res)) != (ssize_t)sizeof(res))
        _exit(4);
    _exit(0);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_stress_multiprocess(void **state)
{
    (void)state;
    struct certcache *c = cache_new(1 << 20); /* 120 slots for 400 keys: constant eviction */
    static uint8_t der[CERTCACHE_DER_MAX];
    pid_t pids[STRESS_READERS];
    int stop[2], res[2];
    uint64_t gen = 0, rnd = 42;
    struct certcache_stats st;
    double t_end;

    assert_int_equal(pipe(stop), 0);
    assert_int_equal(pipe(res), 0);
    /* warm: every key once, so readers hit from the start */
    for (unsigned i = 0; i < STRESS_KEYS; i++) {
        char key[128];
        size_t klen = key_make(key, sizeof(key), i), dlen = stress_der(der, key, klen, ++gen);

        assert_int_equal(certcache_insert(c, key, klen, der, dlen, EXP, T0), 0);
    }
    for (unsigned i = 0; i < STRESS_READERS; i++) {
        int rofd = -1;

        assert_int_equal(certcache_open_reader_fd(c, &rofd), 0);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            /* drop the master's writable mapping: the child only has what a worker has */
            certcache_close(c);
            close(stop[1]);
            close(res[0]);
            stress_reader(rofd, stop[0], res[1], i);
        }
        close(rofd);
    }
    close(stop[0]);
    close(res[1]);

    /* a time budget, but at least the writes the checks below need: a loaded machine (an
     * ASan build next to fuzzers) made the count, not the cache, fail this test */
    t_end = now_s() + STRESS_SECONDS;
    while (now_s() < t_end || gen < 12000) {
        for (int n = 0; n < 256; n++) {
            unsigned k = (unsigned)((rnd = mix64(rnd)) % STRESS_KEYS);
            char key[128];
            size_t klen = key_make(key, sizeof(key), k), dlen;

            dlen = stress_der(der, key, klen, ++gen);
            assert_int_equal(certcache_insert(c, key, klen, der, dlen, EXP, T0), 0);
        }
    }
    close(stop[1]); /* readers see EOF and report */

    for (unsigned i = 0; i < STRESS_READERS; i++) {
        struct stress_result sr;
        int status;

        assert_int_equal(read(res[0], &sr, sizeof(sr)), (ssize_t)sizeof(sr));
        print_message("reader: %llu lookups, %llu hits, %llu misses (%llu contended), %llu torn\n",
                      (unsigned long long)sr.lookups, (unsigned long long)sr.hits,
                      (unsigned long long)sr.misses, (unsigned long long)sr.contended,
                      (unsigned long long)sr.torn);
        assert_int_equal(sr.torn, 0);
        assert_true(sr.hits >= 1000);
        assert_int_equal(sr.hits + sr.misses, sr.lookups);
        (void)status;
    }
    for (unsigned i = 0; i < STRESS_READERS; i++) {
        int status;

        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    close(res[0]);
    certcache_get_stats(c, &st);
    print_message("master: %llu writes (%llu inserts, %llu updates, %llu evictions)\n",
                  (unsigned long long)gen, (unsigned long long)st.inserts,
                  (unsigned long long)st.updates, (unsigned long long)st.evictions);
    assert_true(gen > 10000);
    assert_true(st.evictions > 1000);
    assert_int_equal(st.inserts + st.updates, gen);
    certcache_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_word_copies),
        cmocka_unit_test(test_create_sizes),
        cmocka_unit_test(test_lookup_table),
        cmocka_unit_test(test_long_keys_cached),
        cmocka_unit_test(test_insert_table),
        cmocka_unit_test(test_update_in_place),
        cmocka_unit_test(test_collision_safety),
        cmocka_unit_test(test_evict_table),
        cmocka_unit_test(test_reader_bounded_retries),
        cmocka_unit_test(test_attach_table),
        cmocka_unit_test(test_reader_is_readonly),
        cmocka_unit_test(test_reader_garbage_slots),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_stress_multiprocess),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
