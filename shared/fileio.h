/* fileio.h - whole-file reads and whole-buffer writes for start-up and command code (the
 * master's CA, certificate and recording files, the memfd copies for workers). Owns nothing;
 * blocking I/O, never on a worker's data path. */
#ifndef MITMD_SHARED_FILEIO_H
#define MITMD_SHARED_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* fileio_read_all reads the regular file `path` whole (at most `max` bytes) into a new heap
 * buffer (one spare byte after the data; free() it). Returns 0, -EISDIR, -EINVAL (not a
 * regular file), -EFBIG (larger than `max`), -ENOMEM or another -errno. */
int fileio_read_all(const char *path, size_t max, uint8_t **out, size_t *len);

/* fileio_write_all writes `n` bytes of `p` to `fd`, retrying short writes and EINTR. Returns
 * 0 or -errno (-EIO when write makes no progress). */
int fileio_write_all(int fd, const void *p, size_t n);

#endif
