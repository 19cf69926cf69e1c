/* proxyauth.h - mitmproxy's --proxyauth: the spec (USER:PASS, @HTPASSWD, any), the htpasswd
 * file (bcrypt, {SHA}, $apr1$), Basic credentials (RFC 7617) and their verification. Owns the
 * loaded credentials and a small per-process cache of verdicts. Called by the master's
 * start-up check (proxyauth_load, then proxyauth_free) and by the worker's proxy protocols
 * (worker/proxy_req, worker/h1_relay, worker/socks5). Does no network I/O; reads a file only
 * in proxyauth_load. Secrets are compared in constant time (CRYPTO_memcmp, sodium_memcmp). */
#ifndef MITMD_SHARED_PROXYAUTH_H
#define MITMD_SHARED_PROXYAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/h1_parse.h"

#define PROXYAUTH_REALM "mitmd"
/* the field a 407 carries (RFC 9110 §11.7.1), one line without CRLF */
#define PROXYAUTH_CHALLENGE "Proxy-Authenticate: Basic realm=\"" PROXYAUTH_REALM "\""
/* the challenge of a 401 (reverse and transparent mode: mitmd is the server, as mitmproxy) */
#define PROXYAUTH_WWW_CHALLENGE "WWW-Authenticate: Basic realm=\"" PROXYAUTH_REALM "\""
#define PROXYAUTH_CRED_MAX 255      /* bytes of a user name or a password (RFC 1929's bound) */
#define PROXYAUTH_HASH_MAX 128      /* bytes of one htpasswd hash field */
#define PROXYAUTH_LINE_MAX 1024     /* bytes of one htpasswd line */
#define PROXYAUTH_MAX_USERS 65536   /* htpasswd entries */
#define PROXYAUTH_FILE_MAX (16u << 20) /* bytes of an htpasswd file */
/* a Basic token68 of two PROXYAUTH_CRED_MAX fields and a colon, base64 */
#define PROXYAUTH_TOKEN_MAX (4 * ((2 * PROXYAUTH_CRED_MAX + 1 + 2) / 3))

enum proxyauth_kind {
    PROXYAUTH_ANY = 1,  /* "any": any user and password, but credentials must be sent */
    PROXYAUTH_SINGLE,   /* "USER:PASS" */
    PROXYAUTH_HTPASSWD, /* "@FILE" */
};

enum proxyauth_scheme {
    PROXYAUTH_SCHEME_BCRYPT = 1, /* $2y$, $2b$, $2a$: libxcrypt crypt_r */
    PROXYAUTH_SCHEME_SHA1,       /* {SHA}base64(SHA-1(password)): BoringSSL SHA1 */
    PROXYAUTH_SCHEME_APR1,       /* $apr1$: Apache's MD5-crypt variant, on BoringSSL's MD5 */
};

/* struct proxyauth_entry is one parsed htpasswd line. */
struct proxyauth_entry {
    char user[PROXYAUTH_CRED_MAX + 1]; /* NUL-terminated */
    size_t user_len;
    enum proxyauth_scheme scheme;
    char hash[PROXYAUTH_HASH_MAX + 1]; /* the hash field as written, NUL-terminated */
    size_t hash_len;
    uint8_t sha1[20]; /* PROXYAUTH_SCHEME_SHA1: the decoded digest */
};

struct proxyauth;

/* proxyauth_spec_check checks the syntax of a --proxyauth value without reading any file:
 * "any", "@FILE" (a non-empty path) or "USER:PASS" (split at the first colon; each at most
 * PROXYAUTH_CRED_MAX bytes, no CR, LF or NUL). Returns 0, or -EINVAL with `*why` set to a
 * static string (LDAP specs are refused by name). */
int proxyauth_spec_check(const char *spec, const char **why);

/* proxyauth_load compiles `spec` (proxyauth_spec_check's syntax) into `*out`, reading and
 * parsing the htpasswd file for "@FILE". Start-up only: blocks on the file, allocates. Returns
 * 0, or -errno / -EINVAL with `err` holding one line naming the option, file and line (e.g.
 * "--proxyauth @/etc/p: line 3: unsupported hash (only bcrypt, {SHA} and $apr1$)"). */
int proxyauth_load(const char *spec, struct proxyauth **out, char *err, size_t errlen);

/* proxyauth_file_memfd copies the htpasswd file of an "@FILE" spec into a sealed memfd, so
 * that workers running as another user (and confined by Landlock) read exactly the file the
 * master could: the master passes it as --proxyauth-file /dev/fd/N. Stores the descriptor
 * (close-on-exec, owned by the caller) in `*fd`, or -1 for a spec that names no file.
 * Start-up only: blocks on the file. Returns 0, or -errno with `err` holding one line. */
int proxyauth_file_memfd(const char *spec, int *fd, char *err, size_t errlen);

/* proxyauth_free frees what proxyauth_load made; NULL is a no-op. */
void proxyauth_free(struct proxyauth *a);

/* proxyauth_kind returns how `a` verifies. */
enum proxyauth_kind proxyauth_kind(const struct proxyauth *a);

/* proxyauth_users returns the number of htpasswd entries (0 for the other kinds). */
size_t proxyauth_users(const struct proxyauth *a);

/* proxyauth_verify returns whether `user`/`pass` (bytes, not NUL-terminated) are accepted.
 * The first check of a pair against an htpasswd entry runs its hash (bcrypt: a millisecond
 * or more, on the caller's thread); the verdict, good or bad, is then remembered under a
 * keyed SHA-256 digest of the pair (PROXYAUTH_CACHE_SLOTS slots, no allocation), so a client
 * that sends the same credentials on every request costs one digest. Compares secrets in
 * constant time. */
bool proxyauth_verify(struct proxyauth *a, const uint8_t *user, size_t user_len,
                      const uint8_t *pass, size_t pass_len);

/* proxyauth_parse_basic decodes the value of an Authorization / Proxy-Authorization field,
 * "Basic" (any case), whitespace, base64 of "user:password" (split at the first colon, RFC
 * 7617 §2; padding optional). Copies at most PROXYAUTH_CRED_MAX bytes of each into `user` and
 * `pass` (each PROXYAUTH_CRED_MAX + 1 bytes, NUL-terminated) and their lengths. Returns 0, or
 * -EPROTO (another scheme, bad base64, no colon) / -EMSGSIZE (too long) with `*why` set to a
 * static string. Never allocates. */
int proxyauth_parse_basic(const char *value, size_t len, char *user, size_t *user_len,
                          char *pass, size_t *pass_len, const char **why);

/* proxyauth_parse_line parses one htpasswd line of `len` bytes (no line break) into `e`.
 * Leading and trailing whitespace is ignored; blank lines and "#" comments hold no entry.
 * Returns 1 for an entry, 0 for none, or -EPROTO with `*why` set (no colon, empty user, a
 * field too long, an unsupported or malformed hash). Never allocates. */
int proxyauth_parse_line(const char *line, size_t len, struct proxyauth_entry *e,
                         const char **why);

/* proxyauth_check_fields returns whether the Proxy-Authorization fields among `headers`
 * carry credentials `a` accepts: exactly one such field, Basic, verified. `*why` (may be
 * NULL) gets a static reason on refusal ("no Proxy-Authorization", "wrong user or
 * password", ...). */
bool proxyauth_check_fields(struct proxyauth *a, const struct h1_header *headers,
                            size_t num_headers, const char **why);

/* proxyauth_md5_crypt computes the MD5-crypt hash of `pass` with `magic` ("$1$" or "$apr1$")
 * and the salt taken from `setting` (after the magic, up to 8 characters, up to a '$') into
 * `out` (at least 64 bytes): "MAGIC SALT $ 22 characters". Returns its length, or -EINVAL
 * when `setting` does not start with `magic`. Exposed for the unit test, which checks "$1$"
 * against libxcrypt. */
int proxyauth_md5_crypt(const char *magic, const uint8_t *pass, size_t pass_len,
                        const char *setting, char *out);

#endif
