/* memfd_copy.c - see memfd_copy.h. */
#include "shared/memfd_copy.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "shared/fileio.h"

#define MEMFD_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

int memfd_copy(const char *name, const char *path, uint64_t max, const char **stage)
{
    struct stat st;
    int in, mfd = -1, e = 0;

    *stage = NULL;
    in = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (in == -1 || fstat(in, &st) == -1) {
        e = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        e = -EINVAL;
        goto out;
    }
    mfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd == -1) {
        e = -errno;
        *stage = "memfd_create";
        goto out;
    }
    for (uint64_t total = 0;;) {
        uint8_t buf[16384];
        ssize_t n = read(in, buf, sizeof(buf));

        if (n == -1 && errno == EINTR)
            continue;
        if (n == 0)
            break;
        if (n == -1) {
            e = -errno;
            goto out;
        }
        total += (uint64_t)n;
        e = total > max ? -EINVAL : fileio_write_all(mfd, buf, (size_t)n);
        sodium_memzero(buf, sizeof(buf));
        if (e != 0) {
            goto out;
        }
    }
    if (fcntl(mfd, F_ADD_SEALS, MEMFD_SEALS) == -1) {
        e = -errno;
        *stage = "sealing its copy";
        goto out;
    }
    close(in);
    return mfd;
out:
    if (mfd != -1)
        close(mfd);
    if (in != -1)
        close(in);
    return e;
}

int memfd_sealed_bytes(const char *name, const uint8_t *p, size_t n)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), e;

    if (fd == -1)
        return -errno;
    e = fileio_write_all(fd, p, n);
    if (e == 0 && fcntl(fd, F_ADD_SEALS, MEMFD_SEALS) == -1)
        e = -errno;
    if (e != 0) {
        close(fd);
        return e;
    }
    return fd;
}
