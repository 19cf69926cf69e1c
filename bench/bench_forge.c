/* bench_forge.c - mitmd-bench-forge: cold leaf forges per second on one core.
 * Owns nothing beyond its run: loads (or creates, in a temporary confdir removed at exit) a CA,
 * then forges distinct names h<N>.bench.test back to back for about `seconds`, as the master
 * does on certcache misses. Usage: mitmd-bench-forge [seconds] [--confdir DIR]. Prints one
 * human line and one JSON line. */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "master/ca.h"
#include "master/forge.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void remove_tmp_confdir(const char *dir)
{
    static const char *const files[] = {CA_FILE_KEY, CA_FILE_CERT_PEM, CA_FILE_CERT_CER,
                                        CA_FILE_CERT_P12};
    char path[512];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static const char *ca_kind(const struct ca *ca)
{
    switch (EVP_PKEY_id(ca_get0_key(ca))) {
    case EVP_PKEY_EC:
        return "ecdsa";
    case EVP_PKEY_RSA:
        return "rsa";
    default:
        return "other";
    }
}

int main(int argc, char **argv)
{
    double seconds = 2.0, t0, t, elapsed;
    char tmpdir[] = "/tmp/mitmd-bench-forge-XXXXXX", err[512], name[64];
    const char *confdir = NULL, *why = NULL;
    struct ca *ca = NULL;
    struct forge *f = NULL;
    uint64_t n = 0, der_total = 0;
    size_t der_min = SIZE_MAX, der_max = 0;
    cpu_set_t cpus;
    int cpu, ret, status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--confdir") == 0 && i + 1 < argc)
            confdir = argv[++i];
        else if (atof(argv[i]) > 0)
            seconds = atof(argv[i]);
        else {
            fprintf(stderr, "usage: mitmd-bench-forge [seconds] [--confdir DIR]\n");
            return 2;
        }
    }
    if (confdir == NULL) {
        if (mkdtemp(tmpdir) == NULL) {
            perror("mkdtemp");
            return 1;
        }
        confdir = tmpdir;
    }
    /* one core: stay on the CPU we start on */
    cpu = sched_getcpu();
    if (cpu >= 0) {
        CPU_ZERO(&cpus);
        CPU_SET(cpu, &cpus);
        sched_setaffinity(0, sizeof(cpus), &cpus);
    }
    ret = ca_load_or_create(confdir, &ca, err, sizeof(err));
    if (ret) {
        fprintf(stderr, "mitmd-bench-forge: %s\n", err);
        goto out;
    }
    f = forge_new(ca, &why);
    if (f == NULL) {
        fprintf(stderr, "mitmd-bench-forge: %s\n", why);
        goto out;
    }

    t0 = now_s();
    t = t0;
    while (t - t0 < seconds) {
        for (int i = 0; i < 256; i++, n++) {
            const char *names[1] = {name};
            uint8_t *der;
            size_t len;

            snprintf(name, sizeof(name), "h%llu.bench.test", (unsigned long long)n);
            ret = forge_leaf(f, names, 1, NULL, &der, &len, NULL, &why);
            if (ret) {
                fprintf(stderr, "mitmd-bench-forge: forge_leaf: %s\n", why);
                goto out;
            }
            der_total += len;
            der_min = len < der_min ? len : der_min;
            der_max = len > der_max ? len : der_max;
            free(der);
        }
        t = now_s();
    }
    elapsed = t - t0;
    printf("forge (%s CA, P-256 leaf): %.0f certs/s on one core, %.1f us/cert, DER %zu..%zu B "
           "(mean %.0f), %llu certs in %.2f s\n",
           ca_kind(ca), (double)n / elapsed, elapsed * 1e6 / (double)n, der_min, der_max,
           (double)der_total / (double)n, (unsigned long long)n, elapsed);
    printf("{\"bench\":\"forge\",\"ca\":\"%s\",\"certs\":%llu,\"seconds\":%.3f,"
           "\"forges_per_sec\":%.0f,\"us_per_forge\":%.2f,\"der_bytes_mean\":%.0f,"
           "\"der_bytes_min\":%zu,\"der_bytes_max\":%zu}\n",
           ca_kind(ca), (unsigned long long)n, elapsed, (double)n / elapsed,
           elapsed * 1e6 / (double)n, (double)der_total / (double)n, der_min, der_max);
    status = 0;
out:
    forge_free(f);
    ca_free(ca);
    if (confdir == tmpdir)
        remove_tmp_confdir(tmpdir);
    return status;
}
