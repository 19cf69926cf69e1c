/* har.c - see har.h. */
#include "shared/har.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool har_buf_reserve(struct har_buf *b, size_t n)
{
    size_t ncap;
    char *p;

    if (b->oom)
        return false;
    if (n <= b->cap - b->len)
        return true;
    ncap = b->cap == 0 ? 4096 : b->cap;
    while (ncap - b->len < n) {
        if (ncap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        ncap *= 2;
    }
    p = realloc(b->p, ncap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = ncap;
    return true;
}

void har_buf_put(struct har_buf *b, const void *s, size_t n)
{
    if (n == 0 || !har_buf_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void har_buf_str(struct har_buf *b, const char *s)
{
    har_buf_put(b, s, strlen(s));
}

void har_buf_printf(struct har_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        har_buf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* utf8_len returns the length of the valid UTF-8 sequence at `s` (at most `n` bytes), or 0. */
static size_t utf8_len(const uint8_t *s, size_t n)
{
    size_t len;
    uint32_t cp, min;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2, cp = s[0] & 0x1f, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, cp = s[0] & 0x0f, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4, cp = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void har_buf_json(struct har_buf *b, const void *s, size_t n)
{
    const uint8_t *p = s;
    size_t i = 0, run = 0;

    if (n == 0) { /* `s` may be NULL then (an empty har_buf's p): no pointer arithmetic */
        har_buf_put(b, "\"\"", 2);
        return;
    }
    if (!har_buf_reserve(b, n + 2))
        return;
    har_buf_put(b, "\"", 1);
    while (i < n) {
        uint8_t c = p[i];
        size_t k;

        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            run++;
            continue;
        }
        har_buf_put(b, p + i - run, run);
        run = 0;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};

            har_buf_put(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            har_buf_printf(b, "\\u%04x", c);
            i++;
        } else if ((k = utf8_len(p + i, n - i)) > 0) {
            har_buf_put(b, p + i, k);
            i += k;
        } else {
            har_buf_put(b, "\xef\xbf\xbd", 3); /* U+FFFD */
            i++;
        }
    }
    har_buf_put(b, p + i - run, run);
    har_buf_put(b, "\"", 1);
}

bool har_buf_iso_time(struct har_buf *b, time_t secs, long ms)
{
    struct tm tm;
    char date[32];

    if (gmtime_r(&secs, &tm) == NULL || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return false;
    har_buf_printf(b, "\"%s.%03ldZ\"", date, ms);
    return true;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void har_buf_base64(struct har_buf *b, const void *s, size_t n)
{
    const uint8_t *p = s;
    char *o;
    size_t i;

    if (!har_buf_reserve(b, (n + 2) / 3 * 4))
        return;
    o = b->p + b->len;
    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;

        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = '=';
    }
    b->len = (size_t)(o - b->p);
}

bool har_is_text(const void *s, size_t n)
{
    const uint8_t *p = s;
    size_t i = 0, k;

    while (i < n) {
        if (p[i] < 0x20 && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
            return false;
        if (p[i] == 0x7f || (k = utf8_len(p + i, n - i)) == 0)
            return false;
        i += k;
    }
    return true;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

ssize_t har_base64_decode(const char *in, size_t n, uint8_t *out)
{
    size_t o = 0, q = 0;
    uint32_t acc = 0;

    while (n > 0 && in[n - 1] == '=')
        n--;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val(in[i]);

        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        if (++q == 4) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
            q = 0;
        }
    }
    if (q == 1)
        return -EINVAL;
    if (q == 2) {
        out[o++] = (uint8_t)(acc >> 4);
    } else if (q == 3) {
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    return (ssize_t)o;
}

/* ---- repair ------------------------------------------------------------------------- */

int har_scan_entries(const char *buf, size_t len, size_t *head_len, size_t *end,
                     size_t *entries, bool *closed)
{
    static const char key[] = "\"entries\":[";
    const char *k;
    size_t i, depth = 0, n = 0, last;
    bool in_str = false, esc = false;

    *closed = false;
    *entries = 0;
    if (len < 8 || memcmp(buf, "{\"log\":", 7) != 0)
        return -EINVAL;
    k = memmem(buf, len < 4096 ? len : 4096, key, sizeof(key) - 1);
    if (k == NULL)
        return -EINVAL;
    *head_len = (size_t)(k - buf) + sizeof(key) - 1;
    last = *head_len;
    for (i = *head_len; i < len; i++) {
        char c = buf[i];

        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) { /* the entries array's own ']': the tail */
                *closed = true;
                break;
            }
            if (--depth == 0) {
                n++;
                last = i + 1;
            }
        } else if (c == '\0') {
            break; /* a hole left by a writer that died between reserve and write */
        }
    }
    *end = last;
    *entries = n;
    return 0;
}

ssize_t har_file_finish(int fd, const char **why)
{
    struct stat st;
    size_t head, end, n;
    bool closed;
    char *map;
    ssize_t ret;

    if (fstat(fd, &st) != 0) {
        *why = "cannot stat the HAR file";
        return -errno;
    }
    if (st.st_size == 0) {
        *why = "the HAR file is empty";
        return -EINVAL;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        *why = "cannot map the HAR file";
        return -errno;
    }
    if (har_scan_entries(map, (size_t)st.st_size, &head, &end, &n, &closed) != 0) {
        munmap(map, (size_t)st.st_size);
        *why = "not a HAR file written by mitmd (no {\"log\":... \"entries\":[ at its start)";
        return -EINVAL;
    }
    munmap(map, (size_t)st.st_size);
    if (closed)
        return (ssize_t)n;
    if (ftruncate(fd, (off_t)end) != 0 ||
        (n > 0 && pwrite(fd, " ", 1, (off_t)head) != 1) ||
        pwrite(fd, HAR_TAIL, sizeof(HAR_TAIL) - 1, (off_t)end) != (ssize_t)(sizeof(HAR_TAIL) - 1)) {
        *why = "cannot write the HAR file";
        return -errno;
    }
    ret = (ssize_t)n;
    return ret;
}
