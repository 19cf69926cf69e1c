/* har_file.c - see har_file.h. */
#include "master/har_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shared/har.h"
#include "shared/log.h"

int har_file_start(struct supervise *s, const struct config *cfg)
{
    char head[256];
    int fd, n, e;

    if (cfg->hardump == NULL)
        return 0;
    fd = open(cfg->hardump, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd == -1) {
        e = -errno;
        log_error("hardump %s: %s", cfg->hardump, strerror(errno));
        return e;
    }
    n = snprintf(head, sizeof(head), HAR_HEAD_FMT, MITMD_VERSION);
    if (n <= 0 || write(fd, head, (size_t)n) != n) {
        e = errno != 0 ? -errno : -EIO;
        log_error("hardump %s: cannot write: %s", cfg->hardump, strerror(-e));
        close(fd);
        return e;
    }
    e = supervise_pass_fd(s, fd, "--hardump");
    if (e)
        log_error("hardump %s: cannot pass it to the workers: %s", cfg->hardump, strerror(-e));
    return e;
}

void har_file_stop(const struct config *cfg)
{
    const char *why = NULL;
    ssize_t n;
    int fd;

    if (cfg->hardump == NULL)
        return;
    /* a descriptor without O_APPEND: pwrite on an O_APPEND one appends (Linux) */
    fd = open(cfg->hardump, O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd == -1) {
        log_error("hardump %s: cannot close the document: %s", cfg->hardump, strerror(errno));
        return;
    }
    n = har_file_finish(fd, &why);
    if (n < 0)
        log_error("hardump %s: %s: %s", cfg->hardump, why, strerror((int)-n));
    else
        log_info("hardump %s: %zd entries", cfg->hardump, n);
    close(fd);
}
