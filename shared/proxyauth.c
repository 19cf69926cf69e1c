/* proxyauth.c - see proxyauth.h. Hashes come from libraries: bcrypt from libxcrypt's crypt_r,
 * SHA-1, MD5 and SHA-256 (the keyed digest of the verdict cache) from BoringSSL, random keys
 * and constant-time compares from libsodium. $apr1$ is
 * not in libxcrypt (crypt_r returns its failure token "*0"), so it is Poul-Henning Kamp's
 * MD5-crypt with Apache's magic, written here over BoringSSL's MD5 and checked in the unit
 * test against libxcrypt's "$1$" (the same algorithm with another magic) and against hashes
 * made by Apache's htpasswd. */
#include "shared/proxyauth.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/base64.h>
#include <openssl/md5.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <sodium.h>

#include "shared/memfd_copy.h"

#define PROXYAUTH_CACHE_SLOTS 256
#define PROXYAUTH_KEY_LEN 32

struct proxyauth_slot {
    uint8_t digest[PROXYAUTH_KEY_LEN]; /* proxyauth_digest of the credentials */
    bool used;
    bool ok;
};

struct proxyauth {
    enum proxyauth_kind kind;
    uint8_t key[32]; /* random per process: digests mean nothing elsewhere */
    uint8_t single[PROXYAUTH_KEY_LEN];        /* PROXYAUTH_SINGLE: digest of USER:PASS */
    struct proxyauth_entry *entries;          /* PROXYAUTH_HTPASSWD */
    size_t n_entries;
    struct proxyauth_slot cache[PROXYAUTH_CACHE_SLOTS];
};

/* ---- the spec ---------------------------------------------------------------------------- */

static bool proxyauth_has_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return true;
    return false;
}

int proxyauth_spec_check(const char *spec, const char **why)
{
    const char *colon;
    size_t n;

    if (spec == NULL || spec[0] == '\0') {
        *why = "expected USER:PASS, @HTPASSWD_FILE or any";
        return -EINVAL;
    }
    n = strlen(spec);
    if (strcmp(spec, "any") == 0)
        return 0;
    if (spec[0] == '@') {
        if (spec[1] == '\0') {
            *why = "@ needs a file name (an htpasswd file)";
            return -EINVAL;
        }
        return 0;
    }
    if (strncmp(spec, "ldap:", 5) == 0 || strncmp(spec, "ldaps:", 6) == 0) {
        *why = "LDAP authentication is not supported (use USER:PASS, @HTPASSWD_FILE or any)";
        return -EINVAL;
    }
    colon = strchr(spec, ':');
    if (colon == NULL) {
        *why = "expected USER:PASS, @HTPASSWD_FILE or any";
        return -EINVAL;
    }
    if ((size_t)(colon - spec) > PROXYAUTH_CRED_MAX || n - (size_t)(colon - spec) - 1 >
                                                           PROXYAUTH_CRED_MAX ||
        proxyauth_has_ctl(spec, n)) {
        *why = "USER and PASS are at most 255 bytes each, on one line";
        return -EINVAL;
    }
    return 0;
}

/* proxyauth_digest writes SHA-256 of the process's random key and the length-prefixed user
 * and password. The digests are compared for equality only and never leave the process, so
 * the secret prefix is enough (no length extension can help anyone). SHA-256 rather than
 * libsodium's keyed BLAKE2b: 0.3 us against 2.2 us on Debian's builds, on every plain request. */
static void proxyauth_digest(const struct proxyauth *a, const uint8_t *user, size_t user_len,
                             const uint8_t *pass, size_t pass_len,
                             uint8_t out[PROXYAUTH_KEY_LEN])
{
    SHA256_CTX st;
    uint8_t len[2];

    SHA256_Init(&st);
    SHA256_Update(&st, a->key, sizeof(a->key));
    len[0] = (uint8_t)(user_len >> 8);
    len[1] = (uint8_t)user_len;
    SHA256_Update(&st, len, 2);
    SHA256_Update(&st, user, user_len);
    len[0] = (uint8_t)(pass_len >> 8);
    len[1] = (uint8_t)pass_len;
    SHA256_Update(&st, len, 2);
    SHA256_Update(&st, pass, pass_len);
    SHA256_Final(out, &st);
    OPENSSL_cleanse(&st, sizeof(st));
}

/* ---- htpasswd ---------------------------------------------------------------------------- */

static bool proxyauth_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool proxyauth_is_crypt64(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '/';
}

/* proxyauth_check_bcrypt checks "$2y$NN$" + 53 crypt64 characters (22 salt + 31 hash). */
static bool proxyauth_check_bcrypt(const char *h, size_t n)
{
    if (n != 60 || h[0] != '$' || h[1] != '2' || (h[2] != 'y' && h[2] != 'b' && h[2] != 'a') ||
        h[3] != '$' || h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9' || h[6] != '$')
        return false;
    if ((h[4] - '0') * 10 + (h[5] - '0') < 4 || (h[4] - '0') * 10 + (h[5] - '0') > 31)
        return false;
    for (size_t i = 7; i < n; i++)
        if (!proxyauth_is_crypt64(h[i]))
            return false;
    return true;
}

/* proxyauth_check_apr1 checks "$apr1$" SALT(1..8) "$" + 22 crypt64 characters. */
static bool proxyauth_check_apr1(const char *h, size_t n)
{
    size_t i = 6, salt = 0;

    if (n < 6 || memcmp(h, "$apr1$", 6) != 0)
        return false;
    while (i < n && h[i] != '$') {
        if (!proxyauth_is_crypt64(h[i]))
            return false;
        i++;
        salt++;
    }
    if (salt == 0 || salt > 8 || i >= n || n - i - 1 != 22)
        return false;
    for (i++; i < n; i++)
        if (!proxyauth_is_crypt64(h[i]))
            return false;
    return true;
}

int proxyauth_parse_line(const char *line, size_t len, struct proxyauth_entry *e,
                         const char **why)
{
    const char *colon, *h;
    size_t ulen, hlen;

    memset(e, 0, sizeof(*e));
    while (len > 0 && proxyauth_is_space(line[0])) {
        line++;
        len--;
    }
    while (len > 0 && proxyauth_is_space(line[len - 1]))
        len--;
    if (len == 0 || line[0] == '#')
        return 0;
    colon = memchr(line, ':', len);
    if (colon == NULL) {
        *why = "no colon (expected USER:HASH)";
        return -EPROTO;
    }
    ulen = (size_t)(colon - line);
    if (ulen == 0) {
        *why = "empty user name";
        return -EPROTO;
    }
    if (ulen > PROXYAUTH_CRED_MAX || memchr(line, '\0', ulen) != NULL) {
        *why = "user name longer than 255 bytes";
        return -EPROTO;
    }
    h = colon + 1;
    hlen = len - ulen - 1;
    /* Apache allows a comment field after the hash ("user:hash:comment"), as mitmproxy does */
    if (memchr(h, ':', hlen) != NULL)
        hlen = (size_t)((const char *)memchr(h, ':', hlen) - h);
    if (hlen > PROXYAUTH_HASH_MAX) {
        *why = "hash field too long";
        return -EPROTO;
    }
    memcpy(e->user, line, ulen);
    e->user_len = ulen;
    memcpy(e->hash, h, hlen);
    e->hash_len = hlen;
    if (hlen >= 5 && memcmp(h, "{SHA}", 5) == 0) {
        size_t out = 0;
        uint8_t dec[32];

        if (hlen != 5 + 28 || EVP_DecodeBase64(dec, &out, sizeof(dec), (const uint8_t *)h + 5,
                                               hlen - 5) != 1 || out != 20) {
            *why = "malformed {SHA} hash (expected base64 of 20 bytes)";
            return -EPROTO;
        }
        memcpy(e->sha1, dec, 20);
        e->scheme = PROXYAUTH_SCHEME_SHA1;
        return 1;
    }
    if (hlen >= 3 && h[0] == '$' && h[1] == '2') {
        if (!proxyauth_check_bcrypt(h, hlen)) {
            *why = "malformed bcrypt hash";
            return -EPROTO;
        }
        e->scheme = PROXYAUTH_SCHEME_BCRYPT;
        return 1;
    }
    if (hlen >= 6 && memcmp(h, "$apr1$", 6) == 0) {
        if (!proxyauth_check_apr1(h, hlen)) {
            *why = "malformed $apr1$ hash";
            return -EPROTO;
        }
        e->scheme = PROXYAUTH_SCHEME_APR1;
        return 1;
    }
    *why = "unsupported hash (only bcrypt, {SHA} and $apr1$: htpasswd -B, -s or -m)";
    return -EPROTO;
}

/* proxyauth_load_file reads and parses an htpasswd file into `a`. */
static int proxyauth_load_file(struct proxyauth *a, const char *path, char *err, size_t errlen)
{
    struct proxyauth_entry e;
    const char *why = NULL;
    struct stat st;
    char *data = NULL;
    size_t len = 0, line_no = 0, cap = 0;
    int fd, rc = 0;
    ssize_t n;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd == -1) {
        rc = -errno;
        snprintf(err, errlen, "--proxyauth @%s: %s", path, strerror(-rc));
        return rc;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > PROXYAUTH_FILE_MAX) {
        snprintf(err, errlen, "--proxyauth @%s: not a regular file of at most 16 MiB", path);
        close(fd);
        return -EINVAL;
    }
    data = malloc((size_t)st.st_size + 1);
    if (data == NULL) {
        close(fd);
        return -ENOMEM;
    }
    while (len < (size_t)st.st_size) {
        n = read(fd, data + len, (size_t)st.st_size - len);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    data[len] = '\0';
    for (size_t off = 0; off < len && rc == 0;) {
        const char *nl = memchr(data + off, '\n', len - off);
        size_t ll = nl != NULL ? (size_t)(nl - (data + off)) : len - off;
        int r;

        line_no++;
        if (ll > PROXYAUTH_LINE_MAX) {
            snprintf(err, errlen, "--proxyauth @%s: line %zu: longer than %d bytes", path,
                     line_no, PROXYAUTH_LINE_MAX);
            rc = -EINVAL;
            break;
        }
        r = proxyauth_parse_line(data + off, ll, &e, &why);
        off += ll + 1;
        if (r < 0) {
            snprintf(err, errlen, "--proxyauth @%s: line %zu: %s", path, line_no, why);
            rc = -EINVAL;
        } else if (r == 1) {
            if (a->n_entries == cap) {
                size_t ncap = cap == 0 ? 16 : cap * 2;
                struct proxyauth_entry *ne;

                if (ncap > PROXYAUTH_MAX_USERS) {
                    snprintf(err, errlen, "--proxyauth @%s: more than %d users", path,
                             PROXYAUTH_MAX_USERS);
                    rc = -EINVAL;
                    break;
                }
                ne = realloc(a->entries, ncap * sizeof(*ne));
                if (ne == NULL) {
                    rc = -ENOMEM;
                    break;
                }
                a->entries = ne;
                cap = ncap;
            }
            a->entries[a->n_entries++] = e;
        }
    }
    sodium_memzero(data, len);
    free(data);
    if (rc == 0 && a->n_entries == 0) {
        snprintf(err, errlen, "--proxyauth @%s: no user in it", path);
        rc = -EINVAL;
    }
    return rc;
}

int proxyauth_load(const char *spec, struct proxyauth **out, char *err, size_t errlen)
{
    const char *why = NULL;
    struct proxyauth *a;
    int e;

    *out = NULL;
    if (proxyauth_spec_check(spec, &why) != 0) {
        snprintf(err, errlen, "--proxyauth %s: %s", spec != NULL ? spec : "", why);
        return -EINVAL;
    }
    if (sodium_init() < 0) {
        snprintf(err, errlen, "--proxyauth: libsodium failed to start");
        return -EIO;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    randombytes_buf(a->key, sizeof(a->key));
    if (strcmp(spec, "any") == 0) {
        a->kind = PROXYAUTH_ANY;
    } else if (spec[0] == '@') {
        a->kind = PROXYAUTH_HTPASSWD;
        e = proxyauth_load_file(a, spec + 1, err, errlen);
        if (e != 0) {
            proxyauth_free(a);
            return e;
        }
    } else {
        const char *colon = strchr(spec, ':');

        a->kind = PROXYAUTH_SINGLE;
        proxyauth_digest(a, (const uint8_t *)spec, (size_t)(colon - spec),
                         (const uint8_t *)colon + 1, strlen(colon + 1), a->single);
    }
    *out = a;
    return 0;
}

int proxyauth_file_memfd(const char *spec, int *fd, char *err, size_t errlen)
{
    const char *stage;
    int mfd;

    *fd = -1;
    if (spec == NULL || spec[0] != '@')
        return 0;
    mfd = memfd_copy("mitmd-htpasswd", spec + 1, PROXYAUTH_FILE_MAX, &stage);
    if (mfd < 0) {
        if (mfd == -EINVAL && stage == NULL)
            snprintf(err, errlen, "--proxyauth %s: not a regular file of at most 16 MiB", spec);
        else if (stage != NULL)
            snprintf(err, errlen, "--proxyauth: %s: %s", stage, strerror(-mfd));
        else
            snprintf(err, errlen, "--proxyauth %s: %s", spec, strerror(-mfd));
        return mfd;
    }
    *fd = mfd;
    return 0;
}

void proxyauth_free(struct proxyauth *a)
{
    if (a == NULL)
        return;
    if (a->entries != NULL) {
        sodium_memzero(a->entries, a->n_entries * sizeof(*a->entries));
        free(a->entries);
    }
    sodium_memzero(a, sizeof(*a));
    free(a);
}

enum proxyauth_kind proxyauth_kind(const struct proxyauth *a)
{
    return a->kind;
}

size_t proxyauth_users(const struct proxyauth *a)
{
    return a->n_entries;
}

/* ---- verification ------------------------------------------------------------------------ */

static const char proxyauth_itoa64[] =
    "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static char *proxyauth_to64(char *s, unsigned long v, int n)
{
    while (--n >= 0) {
        *s++ = proxyauth_itoa64[v & 0x3f];
        v >>= 6;
    }
    return s;
}

int proxyauth_md5_crypt(const char *magic, const uint8_t *pass, size_t pass_len,
                        const char *setting, char *out)
{
    size_t mlen = strlen(magic), slen = 0;
    const char *salt;
    uint8_t fin[MD5_DIGEST_LENGTH];
    MD5_CTX ctx, ctx1;
    char *p;

    if (strncmp(setting, magic, mlen) != 0)
        return -EINVAL;
    salt = setting + mlen;
    while (slen < 8 && salt[slen] != '\0' && salt[slen] != '$')
        slen++;

    MD5_Init(&ctx);
    MD5_Update(&ctx, pass, pass_len);
    MD5_Update(&ctx, magic, mlen);
    MD5_Update(&ctx, salt, slen);
    MD5_Init(&ctx1);
    MD5_Update(&ctx1, pass, pass_len);
    MD5_Update(&ctx1, salt, slen);
    MD5_Update(&ctx1, pass, pass_len);
    MD5_Final(fin, &ctx1);
    for (size_t pl = pass_len; pl > 0; pl -= pl > MD5_DIGEST_LENGTH ? MD5_DIGEST_LENGTH : pl)
        MD5_Update(&ctx, fin, pl > MD5_DIGEST_LENGTH ? MD5_DIGEST_LENGTH : pl);
    memset(fin, 0, sizeof(fin));
    for (size_t i = pass_len; i != 0; i >>= 1)
        MD5_Update(&ctx, (i & 1) ? (const void *)fin : (const void *)pass, 1);
    MD5_Final(fin, &ctx);
    /* 1000 rounds, to slow an attacker down (as the original) */
    for (int i = 0; i < 1000; i++) {
        MD5_Init(&ctx1);
        if (i & 1)
            MD5_Update(&ctx1, pass, pass_len);
        else
            MD5_Update(&ctx1, fin, MD5_DIGEST_LENGTH);
        if (i % 3)
            MD5_Update(&ctx1, salt, slen);
        if (i % 7)
            MD5_Update(&ctx1, pass, pass_len);
        if (i & 1)
            MD5_Update(&ctx1, fin, MD5_DIGEST_LENGTH);
        else
            MD5_Update(&ctx1, pass, pass_len);
        MD5_Final(fin, &ctx1);
    }
    memcpy(out, magic, mlen);
    memcpy(out + mlen, salt, slen);
    p = out + mlen + slen;
    *p++ = '$';
    p = proxyauth_to64(p, ((unsigned long)fin[0] << 16) | ((unsigned long)fin[6] << 8) | fin[12], 4);
    p = proxyauth_to64(p, ((unsigned long)fin[1] << 16) | ((unsigned long)fin[7] << 8) | fin[13], 4);
    p = proxyauth_to64(p, ((unsigned long)fin[2] << 16) | ((unsigned long)fin[8] << 8) | fin[14], 4);
    p = proxyauth_to64(p, ((unsigned long)fin[3] << 16) | ((unsigned long)fin[9] << 8) | fin[15], 4);
    p = proxyauth_to64(p, ((unsigned long)fin[4] << 16) | ((unsigned long)fin[10] << 8) | fin[5], 4);
    p = proxyauth_to64(p, fin[11], 2);
    *p = '\0';
    OPENSSL_cleanse(fin, sizeof(fin));
    OPENSSL_cleanse(&ctx, sizeof(ctx));
    OPENSSL_cleanse(&ctx1, sizeof(ctx1));
    return (int)(p - out);
}

/* proxyauth_check_entry runs the entry's hash over `pass`. */
static bool proxyauth_check_entry(const struct proxyauth_entry *e, const uint8_t *pass,
                                  size_t pass_len)
{
    char pw[PROXYAUTH_CRED_MAX + 1], buf[64];
    uint8_t md[SHA_DIGEST_LENGTH];
    struct crypt_data *cd;
    const char *r;
    bool ok = false;
    int n;

    switch (e->scheme) {
    case PROXYAUTH_SCHEME_SHA1:
        SHA1(pass, pass_len, md);
        ok = CRYPTO_memcmp(md, e->sha1, sizeof(md)) == 0;
        OPENSSL_cleanse(md, sizeof(md));
        return ok;
    case PROXYAUTH_SCHEME_APR1:
        n = proxyauth_md5_crypt("$apr1$", pass, pass_len, e->hash, buf);
        ok = n > 0 && (size_t)n == e->hash_len && CRYPTO_memcmp(buf, e->hash, e->hash_len) == 0;
        OPENSSL_cleanse(buf, sizeof(buf));
        return ok;
    case PROXYAUTH_SCHEME_BCRYPT:
        if (pass_len > PROXYAUTH_CRED_MAX || memchr(pass, '\0', pass_len) != NULL)
            return false; /* crypt_r takes a C string */
        cd = calloc(1, sizeof(*cd)); /* 32 KiB: not on the loop's stack */
        if (cd == NULL)
            return false;
        memcpy(pw, pass, pass_len);
        pw[pass_len] = '\0';
        r = crypt_r(pw, e->hash, cd);
        ok = r != NULL && r[0] != '*' && strlen(r) == e->hash_len &&
             CRYPTO_memcmp(r, e->hash, e->hash_len) == 0;
        OPENSSL_cleanse(pw, sizeof(pw));
        sodium_memzero(cd, sizeof(*cd));
        free(cd);
        return ok;
    }
    return false;
}

bool proxyauth_verify(struct proxyauth *a, const uint8_t *user, size_t user_len,
                      const uint8_t *pass, size_t pass_len)
{
    uint8_t d[PROXYAUTH_KEY_LEN];
    struct proxyauth_slot *s;
    const struct proxyauth_entry *e = NULL;
    bool ok;

    if (a->kind == PROXYAUTH_ANY)
        return true;
    if (user_len > PROXYAUTH_CRED_MAX || pass_len > PROXYAUTH_CRED_MAX)
        return false;
    proxyauth_digest(a, user, user_len, pass, pass_len, d);
    if (a->kind == PROXYAUTH_SINGLE)
        return sodium_memcmp(d, a->single, sizeof(d)) == 0;
    s = &a->cache[d[0] % PROXYAUTH_CACHE_SLOTS];
    if (s->used && sodium_memcmp(s->digest, d, sizeof(d)) == 0)
        return s->ok;
    for (size_t i = 0; i < a->n_entries; i++)
        if (a->entries[i].user_len == user_len && memcmp(a->entries[i].user, user, user_len) == 0) {
            e = &a->entries[i]; /* the first line of a user counts, as Apache's */
            break;
        }
    ok = e != NULL && proxyauth_check_entry(e, pass, pass_len);
    memcpy(s->digest, d, sizeof(d));
    s->used = true;
    s->ok = ok;
    return ok;
}

/* ---- Basic credentials ------------------------------------------------------------------- */

int proxyauth_parse_basic(const char *value, size_t len, char *user, size_t *user_len,
                          char *pass, size_t *pass_len, const char **why)
{
    uint8_t dec[PROXYAUTH_TOKEN_MAX];
    char tok[PROXYAUTH_TOKEN_MAX + 4];
    const uint8_t *colon;
    size_t i = 0, tlen, out = 0;

    *user_len = *pass_len = 0;
    user[0] = pass[0] = '\0';
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    if (len - i < 6 || strncasecmp(value + i, "basic", 5) != 0 ||
        (value[i + 5] != ' ' && value[i + 5] != '\t')) {
        *why = "not Basic credentials";
        return -EPROTO;
    }
    i += 5;
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    while (len > i && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    tlen = len - i;
    if (tlen == 0) {
        *why = "empty Basic credentials";
        return -EPROTO;
    }
    if (tlen > PROXYAUTH_TOKEN_MAX) {
        *why = "Basic credentials too long";
        return -EMSGSIZE;
    }
    memcpy(tok, value + i, tlen);
    while (tlen % 4 != 0) /* padding is optional in practice (RFC 7617 sends it) */
        tok[tlen++] = '=';
    if (EVP_DecodeBase64(dec, &out, sizeof(dec), (const uint8_t *)tok, tlen) != 1) {
        *why = "Basic credentials are not base64";
        return -EPROTO;
    }
    colon = memchr(dec, ':', out);
    if (colon == NULL) {
        *why = "Basic credentials without a colon";
        return -EPROTO;
    }
    *user_len = (size_t)(colon - dec);
    *pass_len = out - *user_len - 1;
    if (*user_len > PROXYAUTH_CRED_MAX || *pass_len > PROXYAUTH_CRED_MAX) {
        *user_len = *pass_len = 0;
        *why = "Basic user or password longer than 255 bytes";
        return -EMSGSIZE;
    }
    memcpy(user, dec, *user_len);
    user[*user_len] = '\0';
    memcpy(pass, colon + 1, *pass_len);
    pass[*pass_len] = '\0';
    OPENSSL_cleanse(dec, sizeof(dec));
    OPENSSL_cleanse(tok, sizeof(tok));
    return 0;
}

bool proxyauth_check_fields(struct proxyauth *a, const struct h1_header *headers,
                            size_t num_headers, const char **why)
{
    char user[PROXYAUTH_CRED_MAX + 1], pass[PROXYAUTH_CRED_MAX + 1];
    const struct h1_header *found = NULL;
    const char *w = NULL;
    size_t ulen, plen;
    bool ok;

    for (size_t i = 0; i < num_headers; i++) {
        if (!h1_header_name_is(&headers[i], "Proxy-Authorization"))
            continue;
        if (found != NULL) {
            if (why != NULL)
                *why = "more than one Proxy-Authorization field";
            return false;
        }
        found = &headers[i];
    }
    if (found == NULL) {
        if (why != NULL)
            *why = "no Proxy-Authorization";
        return false;
    }
    if (proxyauth_parse_basic(found->value, found->value_len, user, &ulen, pass, &plen, &w) !=
        0) {
        if (why != NULL)
            *why = w;
        return false;
    }
    ok = proxyauth_verify(a, (const uint8_t *)user, ulen, (const uint8_t *)pass, plen);
    OPENSSL_cleanse(pass, sizeof(pass));
    if (!ok && why != NULL)
        *why = "wrong user or password";
    return ok;
}
