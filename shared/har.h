/* har.h - the pieces of HAR 1.2 output both processes use: a growable text buffer with JSON
 * string and base64 writers, the document's head and tail, and the repair of a HAR file
 * whose writer was killed. Owns no state. Workers format entries (worker/flow_har.c), the
 * master writes the head and tail (master/har_file.c) and converts recordings
 * (master/har_cmd.c). The buffer allocates (heap, bounded by what is written); nothing else
 * does; har_file_repair does file I/O and may block. */
#ifndef MITMD_SHARED_HAR_H
#define MITMD_SHARED_HAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* HAR_HEAD is the start of a HAR document written by mitmd, up to and including the '[' of
 * the entries array. Every entry that follows is written as ",\n{...}"; the first entry's
 * comma is overwritten with a space when the document is closed (har_file_finish). */
#define HAR_HEAD_FMT                                                                               \
    "{\"log\":{\"version\":\"1.2\",\"creator\":{\"name\":\"mitmd\",\"version\":\"%s\"},"        \
    "\"pages\":[],\"entries\":["
#define HAR_TAIL "\n]}}\n"

/* struct har_buf is a heap text buffer that grows as written. After an allocation failure
 * `oom` is set and further writes are ignored. Free `p` with free(). */
struct har_buf {
    char *p;
    size_t len, cap;
    bool oom;
};

/* har_buf_put appends `n` bytes. */
void har_buf_put(struct har_buf *b, const void *s, size_t n);

/* har_buf_str appends the NUL-terminated `s`. */
void har_buf_str(struct har_buf *b, const char *s);

/* har_buf_printf appends printf-formatted text (at most 256 bytes a call). */
void har_buf_printf(struct har_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* har_buf_json appends `n` bytes of `s` as a JSON string with its quotes: control characters
 * as \uXXXX, invalid UTF-8 bytes as U+FFFD. */
void har_buf_json(struct har_buf *b, const void *s, size_t n);

/* har_buf_iso_time appends the UTC time `secs` and `ms` (0-999) as a quoted ISO 8601 string,
 * "2026-12-04T11:56:19.075Z" (HAR's startedDateTime and the records'). Returns false, having
 * written nothing, when the time cannot be formatted. */
bool har_buf_iso_time(struct har_buf *b, time_t secs, long ms);

/* har_buf_base64 appends `n` bytes as standard base64 (with padding), without quotes. */
void har_buf_base64(struct har_buf *b, const void *s, size_t n);

/* har_is_text returns whether `n` bytes are valid UTF-8 without NUL or other control
 * characters than TAB, CR and LF: such a body goes into HAR as text, others as base64. */
bool har_is_text(const void *s, size_t n);

/* har_base64_decode decodes standard base64 (padding optional, no whitespace) from `in` into
 * `out` (at least n/4*3+3 bytes). Returns the decoded length, or -EINVAL. Never allocates. */
ssize_t har_base64_decode(const char *in, size_t n, uint8_t *out);

/* har_scan_entries finds the end of the last complete entry of a HAR document written by
 * mitmd (`buf`, `len` bytes, starting with a head such as HAR_HEAD_FMT's). Sets `*head_len`
 * (the offset just past the entries' '['), `*end` (the offset just past the last complete
 * entry, or *head_len when there is none), `*entries` (their count) and `*closed` (the
 * document already ends with its tail). Returns 0, or -EINVAL when `buf` does not start as a
 * HAR document with an entries array. Never allocates. */
int har_scan_entries(const char *buf, size_t len, size_t *head_len, size_t *end,
                     size_t *entries, bool *closed);

/* har_file_finish closes the HAR document in the file `fd` (open read-write): the first
 * entry's leading comma becomes a space, anything after the last complete entry is cut (a
 * writer killed mid-record), and HAR_TAIL is appended. A document already closed is left
 * alone. Returns the number of entries (>= 0) or -errno with `*why` set. Blocks. */
ssize_t har_file_finish(int fd, const char **why);

#endif
