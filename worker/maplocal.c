/* maplocal.c - see maplocal.h. The directory is held open from start-up (O_PATH); a request's
 * candidates are opened relative to it with openat2(RESOLVE_BENEATH), so the kernel refuses
 * `..` and symlinks that lead outside (EXDEV) without a realpath race. */
#include "worker/maplocal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

struct maplocal {
    pcre2_code *re;
    bool jit;
    pcre2_match_data *md;
    int fd; /* PATH: O_PATH of the file or the directory */
    bool is_dir;
    char *path; /* as given (for a file: opened again per request) */
};

static const struct {
    const char *ext, *type;
} maplocal_types[] = {
    {"html", "text/html"},
    {"htm", "text/html"},
    {"css", "text/css"},
    {"js", "text/javascript"},
    {"mjs", "text/javascript"},
    {"json", "application/json"},
    {"txt", "text/plain"},
    {"xml", "application/xml"},
    {"csv", "text/csv"},
    {"md", "text/markdown"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/vnd.microsoft.icon"},
    {"avif", "image/avif"},
    {"pdf", "application/pdf"},
    {"wasm", "application/wasm"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
    {"bin", "application/octet-stream"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"wav", "audio/x-wav"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"map", "application/json"},
    {"yaml", "application/yaml"},
};

const char *maplocal_ctype(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash != NULL ? slash : name, '.');

    if (dot == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(maplocal_types) / sizeof(maplocal_types[0]); i++)
        if (strcasecmp(dot + 1, maplocal_types[i].ext) == 0)
            return maplocal_types[i].type;
    return NULL;
}

int maplocal_new(const char *regex, size_t regex_len, const char *path, size_t path_len,
                 struct maplocal **out, const char **why, char *buf, size_t cap)
{
    struct maplocal *m = calloc(1, sizeof(*m));
    struct stat sb;
    PCRE2_SIZE eoff;
    int ecode;

    if (m == NULL)
        return -ENOMEM;
    m->fd = -1;
    m->path = strndup(path, path_len);
    if (m->path == NULL)
        goto out_nomem;
    m->re = pcre2_compile((PCRE2_SPTR)regex, regex_len, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ecode,
                          &eoff, NULL);
    if (m->re == NULL) {
        PCRE2_UCHAR msg[120];

        pcre2_get_error_message(ecode, msg, sizeof(msg));
        snprintf(buf, cap, "invalid regular expression '%.*s' (%s at offset %zu)", (int)regex_len,
                 regex, (const char *)msg, (size_t)eoff);
        *why = buf;
        goto out_inval;
    }
    m->jit = pcre2_jit_compile(m->re, PCRE2_JIT_COMPLETE) == 0;
    m->md = pcre2_match_data_create_from_pattern(m->re, NULL);
    if (m->md == NULL)
        goto out_nomem;
    m->fd = open(m->path, O_PATH | O_CLOEXEC);
    if (m->fd == -1 || fstat(m->fd, &sb) != 0) {
        snprintf(buf, cap, "invalid file path: %s: %s", m->path, strerror(errno));
        *why = buf;
        goto out_inval;
    }
    if (!S_ISDIR(sb.st_mode) && !S_ISREG(sb.st_mode)) {
        *why = "the path is neither a file nor a directory";
        goto out_inval;
    }
    m->is_dir = S_ISDIR(sb.st_mode);
    *out = m;
    return 0;
out_inval:
    maplocal_free(m);
    return -EINVAL;
out_nomem:
    maplocal_free(m);
    return -ENOMEM;
}

void maplocal_free(struct maplocal *m)
{
    if (m == NULL)
        return;
    if (m->fd >= 0)
        close(m->fd);
    pcre2_match_data_free(m->md);
    pcre2_code_free(m->re);
    free(m->path);
    free(m);
}

/* maplocal_search runs the regex on `url`; returns the match count (>0) or <= 0. */
static int maplocal_search(const struct maplocal *m, const char *url, size_t len)
{
    return m->jit ? pcre2_jit_match(m->re, (PCRE2_SPTR)url, len, 0, 0, m->md, NULL)
                  : pcre2_match(m->re, (PCRE2_SPTR)url, len, 0, 0, m->md, NULL);
}

bool maplocal_matches(const struct maplocal *m, const char *url, size_t url_len)
{
    return maplocal_search(m, url, url_len) > 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* maplocal_suffix writes the decoded URL suffix (see maplocal.h) into `out`. Returns its
 * length or -ENAMETOOLONG / -EINVAL (a NUL byte). */
static ssize_t maplocal_suffix(const struct maplocal *m, const char *url, size_t len, int rc,
                               char *out, size_t cap)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
    const char *s;
    size_t n, o = 0;

    if (rc > 1 && ov[2] != PCRE2_UNSET) { /* m.group(1) */
        s = url + ov[2];
        n = ov[3] - ov[2];
    } else if (rc > 1) {
        s = url;
        n = 0;
    } else { /* re.split(...)[1], query cut, outer slashes stripped */
        const char *q;

        s = url + ov[1];
        n = len - ov[1];
        q = memchr(s, '?', n);
        if (q != NULL)
            n = (size_t)(q - s);
        while (n > 0 && s[0] == '/')
            s++, n--;
        while (n > 0 && s[n - 1] == '/')
            n--;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (c == '\0')
            return -EINVAL;
        if (o + 1 >= cap)
            return -ENAMETOOLONG;
        out[o++] = c;
    }
    out[o] = '\0';
    return (ssize_t)o;
}

/* maplocal_try opens `rel` beneath the directory. Returns an fd, -ENOENT (no such regular
 * file), or -EXDEV (it escapes). */
static int maplocal_try(const struct maplocal *m, const char *rel, struct stat *sb)
{
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, m->fd, rel, &how, sizeof(how));

    if (fd < 0)
        return errno == EXDEV ? -EXDEV : -ENOENT;
    if (fstat((int)fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
        close((int)fd);
        return -ENOENT;
    }
    return (int)fd;
}

/* maplocal_range applies a single "bytes=A-B" / "bytes=A-" / "bytes=-N" range to `a`
 * (RFC 9110 §14.1.2). Returns 1 (206), 0 (ignored: whole file) or -1 (416). */
static int maplocal_range(const char *v, size_t len, struct maplocal_answer *a)
{
    uint64_t first = 0, last = 0, size = a->size;
    bool has_first = false, has_last = false;
    size_t i = 0;

    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    if (len < 6 || strncasecmp(v, "bytes=", 6) != 0)
        return 0;
    i = 6;
    if (memchr(v + i, ',', len - i) != NULL)
        return 0; /* several ranges: the whole file (RFC 9110 §14.2 lets us ignore Range) */
    while (i < len && v[i] >= '0' && v[i] <= '9' && first < UINT64_MAX / 20)
        first = first * 10 + (uint64_t)(v[i++] - '0'), has_first = true;
    if (i >= len || v[i] != '-')
        return 0;
    i++;
    while (i < len && v[i] >= '0' && v[i] <= '9' && last < UINT64_MAX / 20)
        last = last * 10 + (uint64_t)(v[i++] - '0'), has_last = true;
    if (i != len || (!has_first && !has_last) || (has_first && has_last && last < first))
        return 0;     /* malformed: ignored */
    if (!has_first) { /* suffix: the last N bytes */
        if (last == 0)
            return -1;
        first = last >= size ? 0 : size - last;
        last = size - 1;
    } else {
        if (first >= size)
            return -1;
        if (!has_last || last >= size)
            last = size - 1;
    }
    if (size == 0)
        return -1;
    a->off = first;
    a->length = last - first + 1;
    snprintf(a->content_range, sizeof(a->content_range), "bytes %llu-%llu/%llu",
             (unsigned long long)first, (unsigned long long)last, (unsigned long long)size);
    return 1;
}

/* maplocal_found fills `a` for the open file `fd`. */
static int maplocal_found(struct maplocal_answer *a, int fd, const struct stat *sb,
                          const char *name, const char *range, size_t range_len, bool head)
{
    int rg = 0;

    a->size = (uint64_t)sb->st_size;
    a->off = 0;
    a->length = a->size;
    a->status = 200;
    a->ctype = maplocal_ctype(name);
    if (range != NULL)
        rg = maplocal_range(range, range_len, a);
    if (rg < 0) {
        close(fd);
        a->status = 416;
        a->why = "range not satisfiable";
        a->length = 0;
        snprintf(a->content_range, sizeof(a->content_range), "bytes */%llu",
                 (unsigned long long)a->size);
        return 1;
    }
    if (rg > 0)
        a->status = 206;
    a->left = head ? 0 : a->length;
    if (head || a->left == 0)
        close(fd);
    else
        a->fd = fd;
    return 1;
}

int maplocal_open(const struct maplocal *m, const char *url, size_t url_len, const char *range,
                  size_t range_len, bool head, struct maplocal_answer *a)
{
    char suffix[MAPLOCAL_PATH_MAX], cand[MAPLOCAL_PATH_MAX + 16];
    struct stat sb;
    ssize_t n;
    int rc, fd;
    bool escaped = false;

    memset(a, 0, sizeof(*a));
    a->fd = -1;
    a->status = 404;
    a->why = "no local file for this URL (map_local)";
    if (!m->is_dir) {
        fd = open(m->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            if (fd >= 0)
                close(fd);
            return 0;
        }
        return maplocal_found(a, fd, &sb, m->path, range, range_len, head);
    }
    rc = maplocal_search(m, url, url_len);
    if (rc <= 0)
        return 0;
    n = maplocal_suffix(m, url, url_len, rc, suffix, sizeof(suffix));
    if (n < 0)
        return 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) { /* mitmproxy's escaped variant */
            bool changed = false;

            for (ssize_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)suffix[i]) && strchr("-_.=(),/", suffix[i]) == NULL)
                    suffix[i] = '_', changed = true;
            if (!changed)
                break;
        }
        for (int idx = 0; idx < 2; idx++) {
            if (n == 0 && idx == 0)
                continue; /* empty suffix: PATH/index.html only */
            snprintf(cand, sizeof(cand), "%s%s%s", n > 0 ? suffix : "",
                     n > 0 && idx == 1 ? "/" : "", idx == 1 ? "index.html" : "");
            if (cand[0] == '/') /* an absolute suffix is taken relative to PATH */
                memmove(cand, cand + strspn(cand, "/"), strlen(cand + strspn(cand, "/")) + 1);
            if (cand[0] == '\0')
                continue;
            fd = maplocal_try(m, cand, &sb);
            if (fd == -EXDEV) {
                escaped = true;
                continue;
            }
            if (fd >= 0)
                return maplocal_found(a, fd, &sb, cand, range, range_len, head);
        }
        if (n == 0)
            break;
    }
    if (escaped) {
        a->status = 403;
        a->why = "refused: the path leads outside the map_local directory";
    }
    return 0;
}

ssize_t maplocal_read(struct maplocal_answer *a, uint8_t *buf, size_t cap)
{
    ssize_t n;

    if (a->fd < 0 || a->left == 0)
        return 0;
    if (cap > a->left)
        cap = (size_t)a->left;
    do
        n = pread(a->fd, buf, cap, (off_t)a->off);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -EIO; /* the file shrank under us */
    a->off += (uint64_t)n;
    a->left -= (uint64_t)n;
    return n;
}

void maplocal_answer_close(struct maplocal_answer *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
}
