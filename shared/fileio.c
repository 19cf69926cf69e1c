/* fileio.c - see fileio.h. */
#include "shared/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int fileio_read_all(const char *path, size_t max, uint8_t **out, size_t *len)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), err = 0;

    if (fd == -1)
        return -errno;
    if (fstat(fd, &st) == -1) {
        err = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        err = -EFBIG;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        err = -ENOMEM;
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0) {
            err = r == 0 ? -EIO : -errno;
            goto out;
        }
        got += (size_t)r;
    }
    *out = buf;
    *len = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return err;
}

int fileio_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *q = p;

    while (n > 0) {
        ssize_t w = write(fd, q, n);

        if (w == -1 && errno == EINTR)
            continue;
        if (w <= 0)
            return w == 0 ? -EIO : -errno;
        q += w;
        n -= (size_t)w;
    }
    return 0;
}
