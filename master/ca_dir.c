/* ca_dir.c - see ca_dir.h. */
#include "master/ca_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/fileio.h"
#include "shared/har.h"

#define CA_DIR_MAX_ENTRIES 4096

/* ca_buf_put appends `n` bytes to the bundle; returns 0, -EFBIG (over CA_DIR_MAX_BYTES) or
 * -ENOMEM. */
static int ca_buf_put(struct har_buf *b, const void *s, size_t n)
{
    if (n > CA_DIR_MAX_BYTES - b->len)
        return -EFBIG;
    har_buf_put(b, s, n);
    return b->oom ? -ENOMEM : 0;
}

/* ca_has_cert returns whether `n` bytes hold a PEM certificate block's first line. */
static bool ca_has_cert(const uint8_t *p, size_t n)
{
    static const char tag[] = "-----BEGIN CERTIFICATE-----";

    return n >= sizeof(tag) - 1 && memmem(p, n, tag, sizeof(tag) - 1) != NULL;
}

/* ca_put_file appends one file's bytes and a newline. */
static int ca_put_file(struct har_buf *b, const uint8_t *p, size_t n)
{
    int e = ca_buf_put(b, p, n);

    return e != 0 ? e : ca_buf_put(b, "\n", 1);
}

static int ca_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ca_dir_bundle(const char *ca_file, const char *dir, uint8_t **out, size_t *len, char *err,
                  size_t errlen)
{
    struct har_buf b = {0};
    char **names = NULL, **seen = NULL;
    size_t n_names = 0, n_seen = 0, n_certs = 0;
    struct dirent *de;
    DIR *d = NULL;
    uint8_t *p;
    size_t n;
    int e = 0;

    if (ca_file != NULL) {
        e = fileio_read_all(ca_file, CA_DIR_MAX_BYTES, &p, &n);
        if (e != 0) {
            snprintf(err, errlen, "--upstream-ca %s: %s", ca_file,
                     e == -EINVAL || e == -EFBIG || e == -EISDIR
                         ? "not a regular file of at most 16 MiB"
                         : strerror(-e));
            goto out;
        }
        e = ca_put_file(&b, p, n);
        free(p);
        if (e != 0)
            goto too_big;
    }
    d = opendir(dir);
    names = calloc(CA_DIR_MAX_ENTRIES, sizeof(*names));
    seen = calloc(CA_DIR_MAX_ENTRIES, sizeof(*seen));
    if (d == NULL || names == NULL || seen == NULL) {
        e = d == NULL ? -errno : -ENOMEM;
        snprintf(err, errlen, "ssl_verify_upstream_trusted_confdir %s: %s", dir, strerror(-e));
        goto out;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n_names == CA_DIR_MAX_ENTRIES) {
            e = -EFBIG;
            snprintf(err, errlen, "ssl_verify_upstream_trusted_confdir %s: more than %d "
                                  "files", dir, CA_DIR_MAX_ENTRIES);
            goto out;
        }
        names[n_names] = strdup(de->d_name);
        if (names[n_names++] == NULL) {
            e = -ENOMEM;
            snprintf(err, errlen, "ssl_verify_upstream_trusted_confdir: out of memory");
            goto out;
        }
    }
    qsort(names, n_names, sizeof(*names), ca_name_cmp);
    for (size_t i = 0; i < n_names; i++) {
        char path[PATH_MAX], real[PATH_MAX];
        bool dup = false;

        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= sizeof(path) ||
            realpath(path, real) == NULL)
            continue; /* a dangling link, or a name too long: nothing to trust there */
        for (size_t k = 0; k < n_seen && !dup; k++)
            dup = strcmp(seen[k], real) == 0;
        if (dup)
            continue; /* c_rehash's hash links name files already taken */
        if (fileio_read_all(real, CA_DIR_MAX_FILE, &p, &n) != 0)
            continue; /* a subdirectory, a device, an unreadable or oversized file */
        seen[n_seen] = strdup(real);
        if (seen[n_seen] != NULL)
            n_seen++;
        if (ca_has_cert(p, n)) {
            e = ca_put_file(&b, p, n);
            n_certs++;
        }
        free(p);
        if (e != 0)
            goto too_big;
    }
    if (n_certs == 0) {
        e = -ENOENT;
        snprintf(err, errlen, "ssl_verify_upstream_trusted_confdir %s: no PEM certificate in "
                              "it", dir);
        goto out;
    }
    *out = (uint8_t *)b.p;
    *len = b.len;
    b.p = NULL;
    goto out;
too_big:
    snprintf(err, errlen, "ssl_verify_upstream_trusted_confdir %s: %s", dir,
             e == -EFBIG ? "the certificates exceed 16 MiB" : strerror(-e));
out:
    if (d != NULL)
        closedir(d);
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    for (size_t i = 0; i < n_seen; i++)
        free(seen[i]);
    free(names);
    free(seen);
    free(b.p);
    return e;
}
