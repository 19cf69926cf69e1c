/* nameset.h - the canonical form of a certificate's name set, which is the certcache key.
 * Owns nothing: pure functions over caller-supplied arrays and buffers, used by the worker
 * (lookup key) and the master (insert key, names to forge). Never allocates or blocks.
 *
 * Canonical form: every name ASCII-lower-cased, the names sorted bytewise, duplicates
 * removed, joined with '\n' (no trailing '\n'). The same names in any order, case or
 * multiplicity give the same bytes. A name is 1..NAMESET_NAME_MAX bytes with no control
 * character (< 0x20 or 0x7f, NUL included); bytes >= 0x80 are kept as they are. */
#ifndef MITMD_SHARED_NAMESET_H
#define MITMD_SHARED_NAMESET_H

#include <stddef.h>
#include <sys/types.h>

#define NAMESET_MAX_NAMES 64
#define NAMESET_NAME_MAX 253 /* RFC 1035 §2.3.4, as text without the root dot */
/* NAMESET_KEY_MAX is the longest possible canonical set. */
#define NAMESET_KEY_MAX (NAMESET_MAX_NAMES * (NAMESET_NAME_MAX + 1))

/* struct nameset_name is one name by pointer and length (not NUL-terminated; certificate
 * SANs are counted strings). */
struct nameset_name {
    const char *ptr;
    size_t len;
};

/* nameset_canon writes the canonical form of `names[0..n)` to `out` (at most `cap` bytes,
 * no NUL). Returns its length (> 0); -EINVAL if `n` is 0 or a name is empty, longer than
 * NAMESET_NAME_MAX or has a control character; -EMSGSIZE if `n` exceeds NAMESET_MAX_NAMES
 * or the result exceeds `cap`. On error `*why` (if `why` is not NULL) is set to a static
 * string and `out` is unspecified. */
ssize_t nameset_canon(const struct nameset_name *names, size_t n, char *out, size_t cap,
                      const char **why);

/* nameset_canon_cstr is nameset_canon for NUL-terminated names. */
ssize_t nameset_canon_cstr(const char *const *names, size_t n, char *out, size_t cap,
                           const char **why);

/* nameset_split checks that `key[0..len)` is in canonical form (as received from another
 * process) and points `names[i]` into `key` for each of its names (no copy; valid while
 * `key` is). Returns the number of names; -EINVAL with `*why` set if `key` is not canonical
 * (empty, bad or unsorted or duplicate or upper-case names); -EMSGSIZE if it has more than
 * `max` names. */
ssize_t nameset_split(const char *key, size_t len, struct nameset_name *names, size_t max,
                      const char **why);

#endif
