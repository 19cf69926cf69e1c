/* bench_certcache.c - mitmd-bench-certcache: warm certcache lookups per second on one core.
 * Owns nothing beyond its run: creates a default-size cache, fills it with NKEYS entries of
 * 3-name keys and ~1 KB DER, then times lookups through a read-only (worker) attachment.
 * Usage: mitmd-bench-certcache [seconds]. Prints one human line and one JSON line each for
 * lookup alone and for nameset_canon + lookup (the worker's full path from names). */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "certcache/certcache.h"
#include "shared/nameset.h"

#define NKEYS 1000
#define DER_LEN 1024

struct bench_key {
    char names[3][64];
    char key[256];
    size_t keylen;
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* run_lookups looks keys up round-robin for about `seconds`; with `canon`, each lookup
 * first builds the key from the three names. Returns the lookups done, or 0 on a miss. */
static uint64_t run_lookups(const struct certcache *w, const struct bench_key *keys, bool canon,
                            double seconds, double *elapsed)
{
    struct certcache_reader r = {0};
    uint8_t out[CERTCACHE_DER_MAX];
    uint64_t n = 0;
    double t0 = now_s(), t = t0;

    while (t - t0 < seconds) {
        time_t now = time(NULL); /* a worker reads the clock once per loop turn, too */

        for (int i = 0; i < 65536; i++, n++) {
            const struct bench_key *k = &keys[n % NKEYS];
            const char *key = k->key;
            size_t keylen = k->keylen;
            char buf[256];

            if (canon) {
                const char *v[3] = {k->names[0], k->names[1], k->names[2]};
                ssize_t len = nameset_canon_cstr(v, 3, buf, sizeof(buf), NULL);

                if (len < 0)
                    return 0;
                key = buf;
                keylen = (size_t)len;
            }
            if (certcache_lookup(w, key, keylen, now, out, sizeof(out), &r) != DER_LEN)
                return 0;
        }
        t = now_s();
    }
    *elapsed = t - t0;
    return n;
}

static void report(const char *what, uint64_t n, double secs, size_t keylen)
{
    double ns = secs * 1e9 / (double)n, rate = (double)n / secs;

    printf("certcache %s: %.0f lookups/s, %.1f ns/lookup (%d keys of 3 names, ~%zu B key, "
           "%d B DER, one core)\n",
           what, rate, ns, NKEYS, keylen, DER_LEN);
    printf("{\"bench\":\"certcache_%s\",\"keys\":%d,\"names_per_key\":3,\"der_bytes\":%d,"
           "\"lookups\":%llu,\"seconds\":%.3f,\"ns_per_lookup\":%.1f,\"lookups_per_sec\":%.0f}\n",
           what, NKEYS, DER_LEN, (unsigned long long)n, secs, ns, rate);
}

int main(int argc, char **argv)
{
    static struct bench_key keys[NKEYS];
    struct certcache *c = NULL, *w = NULL;
    double seconds = 2.0, elapsed = 0;
    uint8_t der[DER_LEN];
    const char *why = "";
    cpu_set_t one;
    uint64_t n;
    int err, fd;

    if (argc > 1)
        seconds = strtod(argv[1], NULL);
    if (seconds <= 0)
        seconds = 2.0;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    (void)sched_setaffinity(0, sizeof(one), &one); /* best effort: one core */

    err = certcache_create((size_t)CERTCACHE_DEFAULT_MB << 20, &c, &why);
    if (err) {
        fprintf(stderr, "certcache_create: %s: %s\n", why, strerror(-err));
        return 1;
    }
    err = certcache_open_reader_fd(c, &fd);
    if (err == 0) {
        err = certcache_attach(fd, &w, &why);
        if (err)
            close(fd);
    }
    if (err) {
        fprintf(stderr, "attach: %s\n", strerror(-err));
        certcache_close(c);
        return 1;
    }
    for (size_t i = 0; i < sizeof(der); i++)
        der[i] = (uint8_t)(i * 13);
    for (int i = 0; i < NKEYS; i++) {
        struct bench_key *k = &keys[i];
        const char *v[3] = {k->names[0], k->names[1], k->names[2]};
        ssize_t len;

        snprintf(k->names[0], sizeof(k->names[0]), "www.shop-%d.example.com", i);
        snprintf(k->names[1], sizeof(k->names[1]), "shop-%d.example.com", i);
        snprintf(k->names[2], sizeof(k->names[2]), "cdn.shop-%d.example.net", i);
        len = nameset_canon_cstr(v, 3, k->key, sizeof(k->key), &why);
        if (len < 0) {
            fprintf(stderr, "nameset_canon: %s\n", why);
            return 1;
        }
        k->keylen = (size_t)len;
        err =
            certcache_insert(c, k->key, k->keylen, der, sizeof(der), time(NULL) + 3600, time(NULL));
        if (err) {
            fprintf(stderr, "certcache_insert: %s\n", strerror(-err));
            return 1;
        }
    }

    run_lookups(w, keys, false, 0.2, &elapsed); /* warm caches and TLB */
    n = run_lookups(w, keys, false, seconds, &elapsed);
    if (n == 0) {
        fprintf(stderr, "unexpected miss\n");
        return 1;
    }
    report("lookup", n, elapsed, keys[0].keylen);
    n = run_lookups(w, keys, true, seconds, &elapsed);
    if (n == 0) {
        fprintf(stderr, "unexpected miss\n");
        return 1;
    }
    report("canon_lookup", n, elapsed, keys[0].keylen);
    certcache_close(w);
    certcache_close(c);
    return 0;
}
