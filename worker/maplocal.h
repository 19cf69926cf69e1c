/* maplocal.h - --map-local: answers a request from a local file or directory (mitmproxy's
 * addons/maplocal.py semantics). Owns one compiled spec (URL regex, PATH kept open as a
 * directory descriptor) and the answer being read. Called by worker/rules.c (compile, match)
 * and by the relays through rules_map_local (open) and maplocal_read (body, chunk by chunk as
 * the client drains). Never lets a path escape PATH: files under a directory are opened with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so `..` and symlinks leading out fail.
 *
 * File-vs-directory (as mitmproxy): PATH a file: every matching URL gets that file. PATH a
 * directory: the part of the URL after the regex match (or the regex's first group), without
 * the query and outer slashes, percent-decoded, names a file under PATH; SUFFIX/index.html is
 * tried next, then the same with characters outside [0-9a-zA-Z-_.=(),/] replaced by '_'; an
 * empty suffix means PATH/index.html. The first regular file found is answered 200 (or 206 for
 * a satisfiable single Range, 416 for an unsatisfiable one), none: 404, an escape: 403. */
#ifndef MITMD_WORKER_MAPLOCAL_H
#define MITMD_WORKER_MAPLOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MAPLOCAL_PATH_MAX 1024 /* a candidate path under PATH */
#define MAPLOCAL_RANGE_MAX 96  /* a Content-Range value */

struct maplocal;

/* struct maplocal_answer is what a relay sends for a map_local hit. The relay owns `fd` once
 * rules_map_local returned: maplocal_read advances it, maplocal_answer_close closes it. */
struct maplocal_answer {
    int status;        /* 200, 206, 403, 404, 416 */
    int fd;            /* -1: no body from a file (status != 200/206, or HEAD) */
    uint64_t off;      /* next byte of the file to send */
    uint64_t left;     /* body bytes still to send */
    uint64_t length;   /* Content-Length of the answer (the range's, or the file's) */
    uint64_t size;     /* the file's size */
    const char *ctype; /* static Content-Type from the extension, NULL: none */
    char content_range[MAPLOCAL_RANGE_MAX]; /* "" unless 206/416 */
    const char *why;                        /* static, for 403/404/416 and the flow's error */
};

/* maplocal_new compiles REGEX (PCRE2, the length given) and opens PATH (which must exist: a
 * regular file or a directory, as mitmproxy requires). Start-up only: may block, allocates.
 * Returns 0 and the spec in `*out`, or -EINVAL with a static reason in `*why` (or one written
 * to `buf`), or -ENOMEM. */
int maplocal_new(const char *regex, size_t regex_len, const char *path, size_t path_len,
                 struct maplocal **out, const char **why, char *buf, size_t cap);

/* maplocal_free frees `m` and closes PATH; NULL is a no-op. */
void maplocal_free(struct maplocal *m);

/* maplocal_matches returns whether the spec's regex matches somewhere in `url`. Never
 * allocates. */
bool maplocal_matches(const struct maplocal *m, const char *url, size_t url_len);

/* maplocal_open looks the file for `url` up under the spec (see the header comment) and fills
 * `a`. `range` (may be NULL) is the request's Range value; `head` says the method is HEAD (no
 * body is read). Returns 1 with a 200/206/416 answer, 0 when no candidate exists (a later
 * spec may have one; `a` holds the 404), or 0 with status 403 when a candidate escaped PATH.
 * Opens one descriptor (O_CLOEXEC) on a 200/206 with a body. Blocking calls: openat2 and
 * fstat (metadata, no data read). */
int maplocal_open(const struct maplocal *m, const char *url, size_t url_len, const char *range,
                  size_t range_len, bool head, struct maplocal_answer *a);

/* maplocal_read reads up to `cap` of the answer's next bytes into `buf` (one pread) and
 * advances it. Returns bytes read (0: the body is complete), or -errno (the file shrank:
 * -EIO). A read from the page cache does not block; a cold one waits for the disk once. */
ssize_t maplocal_read(struct maplocal_answer *a, uint8_t *buf, size_t cap);

/* maplocal_answer_close closes the answer's descriptor (if any); safe to call twice. */
void maplocal_answer_close(struct maplocal_answer *a);

/* maplocal_ctype returns the Content-Type for a file name's extension, or NULL. */
const char *maplocal_ctype(const char *name);

#endif
