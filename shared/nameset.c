/* nameset.c - canonical name sets (see nameset.h). Sorting is an insertion sort of at most
 * NAMESET_MAX_NAMES indices on the stack: no allocation, and n is small. */
#include "shared/nameset.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static unsigned char lower(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch - 'A' + 'a') : ch;
}

static bool is_ctl(unsigned char ch)
{
    return ch < 0x20 || ch == 0x7f;
}

/* name_check returns 0 if `name` is a valid name, else -EINVAL with `*why` set. */
static int name_check(const char *p, size_t len, const char **why)
{
    if (len == 0) {
        *why = "empty name";
        return -EINVAL;
    }
    if (len > NAMESET_NAME_MAX) {
        *why = "name longer than 253 bytes";
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (is_ctl((unsigned char)p[i])) {
            *why = "control character in name";
            return -EINVAL;
        }
    }
    return 0;
}

/* name_cmp orders two names by their lower-cased bytes; a prefix sorts first. */
static int name_cmp(const struct nameset_name *a, const struct nameset_name *b)
{
    size_t n = a->len < b->len ? a->len : b->len;

    for (size_t i = 0; i < n; i++) {
        unsigned char x = lower((unsigned char)a->ptr[i]);
        unsigned char y = lower((unsigned char)b->ptr[i]);

        if (x != y)
            return x < y ? -1 : 1;
    }
    if (a->len == b->len)
        return 0;
    return a->len < b->len ? -1 : 1;
}

ssize_t nameset_canon(const struct nameset_name *names, size_t n, char *out, size_t cap,
                      const char **why)
{
    uint8_t order[NAMESET_MAX_NAMES];
    const char *dummy;
    size_t len = 0;
    int err;

    if (why == NULL)
        why = &dummy;
    if (n == 0) {
        *why = "empty name set";
        return -EINVAL;
    }
    if (n > NAMESET_MAX_NAMES) {
        *why = "more than 64 names";
        return -EMSGSIZE;
    }
    for (size_t i = 0; i < n; i++) {
        err = name_check(names[i].ptr, names[i].len, why);
        if (err)
            return err;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = i;

        while (j > 0 && name_cmp(&names[order[j - 1]], &names[i]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = (uint8_t)i;
    }
    for (size_t i = 0; i < n; i++) {
        const struct nameset_name *nm = &names[order[i]];

        if (i > 0 && name_cmp(&names[order[i - 1]], nm) == 0)
            continue;
        if (len > 0) {
            if (len == cap)
                goto out_too_long;
            out[len++] = '\n';
        }
        if (nm->len > cap - len)
            goto out_too_long;
        for (size_t k = 0; k < nm->len; k++)
            out[len + k] = (char)lower((unsigned char)nm->ptr[k]);
        len += nm->len;
    }
    return (ssize_t)len;
out_too_long:
    *why = "name set longer than the buffer";
    return -EMSGSIZE;
}

ssize_t nameset_canon_cstr(const char *const *names, size_t n, char *out, size_t cap,
                           const char **why)
{
    struct nameset_name v[NAMESET_MAX_NAMES];
    const char *dummy;

    if (why == NULL)
        why = &dummy;
    if (n > NAMESET_MAX_NAMES) {
        *why = "more than 64 names";
        return -EMSGSIZE;
    }
    for (size_t i = 0; i < n; i++) {
        v[i].ptr = names[i];
        /* one past the limit is enough to reject a long name without reading it all */
        v[i].len = strnlen(names[i], NAMESET_NAME_MAX + 1);
    }
    return nameset_canon(v, n, out, cap, why);
}

ssize_t nameset_split(const char *key, size_t len, struct nameset_name *names, size_t max,
                      const char **why)
{
    const char *dummy;
    size_t n = 0, start = 0;
    int err;

    if (why == NULL)
        why = &dummy;
    if (len == 0) {
        *why = "empty name set";
        return -EINVAL;
    }
    while (start <= len) {
        const char *nl = memchr(key + start, '\n', len - start);
        size_t end = nl != NULL ? (size_t)(nl - key) : len;
        struct nameset_name nm = {key + start, end - start};

        err = name_check(nm.ptr, nm.len, why);
        if (err)
            return err;
        for (size_t i = 0; i < nm.len; i++) {
            if (lower((unsigned char)nm.ptr[i]) != (unsigned char)nm.ptr[i]) {
                *why = "upper-case name";
                return -EINVAL;
            }
        }
        if (n > 0 && name_cmp(&names[n - 1], &nm) >= 0) {
            *why = "names not sorted or duplicated";
            return -EINVAL;
        }
        if (n == max) {
            *why = "too many names";
            return -EMSGSIZE;
        }
        names[n++] = nm;
        start = end + 1;
    }
    return (ssize_t)n;
}
