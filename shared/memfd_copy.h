/* memfd_copy.h - a file the workers may not open, handed to them as a sealed memfd: the
 * master copies it (or bytes it built) into an anonymous memory file sealed against any
 * change, and passes the descriptor (read as /dev/fd/N). Used for --upstream-ca,
 * --proxyauth @FILE and the --certs bundle. Blocking file I/O: start-up and reload only. */
#ifndef MITMD_SHARED_MEMFD_COPY_H
#define MITMD_SHARED_MEMFD_COPY_H

#include <stddef.h>
#include <stdint.h>

/* memfd_copy copies the regular file `path` (at most `max` bytes) into a new sealed memfd
 * named `name` (close-on-exec; the copy buffer is wiped, for secrets). Returns the descriptor,
 * or -errno with `*stage` naming the step that failed: NULL for the file and its copy (open,
 * read, write; -EINVAL: not a regular file or over `max`), "memfd_create" or "sealing its
 * copy". */
int memfd_copy(const char *name, const char *path, uint64_t max, const char **stage);

/* memfd_sealed_bytes copies `p`/`n` into a new sealed memfd named `name`. Returns the
 * descriptor or -errno. */
int memfd_sealed_bytes(const char *name, const uint8_t *p, size_t n);

#endif
