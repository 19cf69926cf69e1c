/* fuzz_maplocal.c - libFuzzer target for worker/maplocal: the URL suffix decoding and the
 * Range parser, against a directory made at start (a 1000-byte file, a sub-directory with an
 * index.html, a symlink leading out). Input: URL NUL RANGE. Invariants: the status is one of
 * 200/206/403/404/416; a 206 names a range inside the file and reads exactly its length; a 416
 * reads nothing; no file outside the directory is ever answered. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker/maplocal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct maplocal *fz_ml;

static void fz_setup(void)
{
    char dir[] = "/tmp/fuzz_maplocal.XXXXXX", p[256];
    uint8_t buf[1000];
    const char *why = NULL;
    char msg[256];
    int fd;

    if (mkdtemp(dir) == NULL)
        abort();
    memset(buf, 'a', sizeof(buf));
    snprintf(p, sizeof(p), "%s/f.txt", dir);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
        abort();
    close(fd);
    snprintf(p, sizeof(p), "%s/d", dir);
    (void)mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/d/index.html", dir);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "<p>\n", 4) != 4)
        abort();
    close(fd);
    snprintf(p, sizeof(p), "%s/out", dir);
    (void)symlink("/etc/hostname", p);
    if (maplocal_new("/s/", 3, dir, strlen(dir), &fz_ml, &why, msg, sizeof(msg)) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct maplocal_answer a;
    const uint8_t *nul = memchr(data, '\0', size);
    size_t ulen = nul != NULL ? (size_t)(nul - data) : size;
    const char *range = nul != NULL ? (const char *)nul + 1 : NULL;
    size_t rlen = nul != NULL ? size - ulen - 1 : 0;
    uint8_t buf[4096];
    uint64_t got = 0;
    ssize_t n;
    int rc;

    if (fz_ml == NULL)
        fz_setup();
    rc = maplocal_open(fz_ml, (const char *)data, ulen, range, rlen, false, &a);
    if (a.status != 200 && a.status != 206 && a.status != 403 && a.status != 404 && a.status != 416)
        abort();
    if ((rc == 1) != (a.status == 200 || a.status == 206 || a.status == 416))
        abort();
    if (a.status == 206 && (a.content_range[0] == '\0' || a.off + a.length > a.size))
        abort();
    if (a.status == 200 && a.size != 1000 && a.size != 4)
        abort(); /* only the directory's own files */
    while ((n = maplocal_read(&a, buf, sizeof(buf))) > 0)
        got += (uint64_t)n;
    if (n < 0 || (rc == 1 && a.status != 416 && got != a.length) || (a.status == 416 && got != 0))
        abort();
    maplocal_answer_close(&a);
    return 0;
}
