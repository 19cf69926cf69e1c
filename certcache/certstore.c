/* certstore.c - see certstore.h.
 *
 * Bundle layout (all lengths big-endian, checked with CBS on read):
 *   "MITMDCS1", u16 number of entries (a bundle cut at an entry boundary is refused too)
 *   entry*: u8 kind, u8-prefixed name,
 *           SERVER/CLIENT: u8 n_chain, n_chain x u24-prefixed DER certificate,
 *                          u24-prefixed PKCS#8 private key
 *           FILE:          u24-prefixed bytes */
#include "certcache/certstore.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/pool.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "shared/config.h"
#include "shared/fileio.h"

static const uint8_t certstore_magic[8] = {'M', 'I', 'T', 'M', 'D', 'C', 'S', '1'};

/* ---- entries --------------------------------------------------------------------------- */

static void entry_dispose(struct certstore_entry *e)
{
    for (size_t i = 0; i < e->n_chain; i++)
        CRYPTO_BUFFER_free(e->chain[i]);
    EVP_PKEY_free(e->key);
    if (e->data != NULL) {
        OPENSSL_cleanse(e->data, e->data_len);
        free(e->data);
    }
    free(e->names);
    memset(e, 0, sizeof(*e));
}

/* store_push returns a zeroed new entry at the end of `s`, or NULL (-ENOSPC/-ENOMEM in
 * `*err`). The caller fills it, or pops it with store_pop on failure. */
static struct certstore_entry *store_push(struct certstore *s, int *err)
{
    if (s->n == CERTSTORE_MAX_ENTRIES) {
        *err = -ENOSPC;
        return NULL;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap == 0 ? 8 : s->cap * 2;
        struct certstore_entry *e = reallocarray(s->e, cap, sizeof(*e));

        if (e == NULL) {
            *err = -ENOMEM;
            return NULL;
        }
        s->e = e;
        s->cap = cap;
    }
    memset(&s->e[s->n], 0, sizeof(s->e[0]));
    return &s->e[s->n++];
}

static void store_pop(struct certstore *s)
{
    entry_dispose(&s->e[--s->n]);
}

static void lower_copy(char *out, size_t cap, const char *in, size_t len)
{
    size_t i;

    for (i = 0; i < len && i + 1 < cap; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

/* entry_add_name appends `p`/`len` (lower-cased) to the leaf names of `e`, skipping empty,
 * over-long and duplicate names. Returns 0 or -ENOMEM. */
static int entry_add_name(struct certstore_entry *e, const char *p, size_t len)
{
    char name[CERTSTORE_NAME_MAX];

    if (len == 0 || len >= CERTSTORE_NAME_MAX || memchr(p, '\0', len) != NULL ||
        e->n_names == CERTSTORE_MAX_NAMES)
        return 0;
    lower_copy(name, sizeof(name), p, len);
    for (size_t i = 0; i < e->n_names; i++)
        if (strcmp(e->names[i], name) == 0)
            return 0;
    if (e->names == NULL) {
        e->names = calloc(CERTSTORE_MAX_NAMES, sizeof(*e->names));
        if (e->names == NULL)
            return -ENOMEM;
    }
    memcpy(e->names[e->n_names++], name, strlen(name) + 1);
    return 0;
}

/* entry_collect_names fills the leaf names of `e` from `leaf`: subject CN, DNS SANs. */
static int entry_collect_names(struct certstore_entry *e, X509 *leaf)
{
    X509_NAME *subj = X509_get_subject_name(leaf);
    GENERAL_NAMES *sans;
    int idx = -1, err = 0;

    while (subj != NULL && (idx = X509_NAME_get_index_by_NID(subj, NID_commonName, idx)) >= 0) {
        ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));

        if (d != NULL && (err = entry_add_name(e, (const char *)ASN1_STRING_get0_data(d),
                                               (size_t)ASN1_STRING_length(d))) != 0)
            return err;
    }
    sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    for (size_t i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && err == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);

        if (g->type == GEN_DNS)
            err = entry_add_name(e, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                                 (size_t)ASN1_STRING_length(g->d.dNSName));
    }
    GENERAL_NAMES_free(sans);
    ERR_clear_error();
    return err;
}

/* entry_set_identity takes the DER certificates `ders` (leaf first) and `key` into `e` after
 * checking that the key matches the leaf, and collects the leaf's names for a SERVER entry
 * without DOMAIN. Returns 0, -EINVAL with `*why` (static), or -ENOMEM. On failure `e` keeps
 * what it took (entry_dispose frees it) and `key` is owned by `e` in every case. */
static int entry_set_identity(struct certstore_entry *e, const CBS *ders, size_t n, EVP_PKEY *key,
                              const char **why)
{
    X509 *leaf;
    int err = 0;

    e->key = key;
    for (size_t i = 0; i < n; i++) {
        e->chain[i] = CRYPTO_BUFFER_new(CBS_data(&ders[i]), CBS_len(&ders[i]), NULL);
        if (e->chain[i] == NULL)
            return -ENOMEM;
        e->n_chain++;
    }
    leaf = X509_parse_from_buffer(e->chain[0]);
    if (leaf == NULL) {
        *why = "the first certificate does not parse";
        ERR_clear_error();
        return -EINVAL;
    }
    if (X509_check_private_key(leaf, key) != 1) {
        *why = "the private key does not match the certificate";
        err = -EINVAL;
    } else if (e->kind == CERTSTORE_SERVER && e->name[0] == '\0') {
        err = entry_collect_names(e, leaf);
        if (err == 0 && e->n_names == 0) {
            *why = "the certificate names no host (no CN, no DNS subjectAltName): give DOMAIN=";
            err = -EINVAL;
        }
    }
    X509_free(leaf);
    ERR_clear_error();
    return err;
}

/* ---- loading (master) ------------------------------------------------------------------ */

static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0; /* encrypted keys are refused, not prompted for */
}

int certstore_add_pem(struct certstore *s, enum certstore_kind kind, const char *name,
                      const char *path, char *err, size_t errlen)
{
    uint8_t *raw = NULL, *ders[CERTSTORE_MAX_CHAIN] = {0};
    CBS cbs[CERTSTORE_MAX_CHAIN];
    struct certstore_entry *e;
    const char *why = NULL;
    EVP_PKEY *key = NULL;
    size_t len = 0, n = 0;
    BIO *bio = NULL;
    X509 *x;
    int e_ = 0;

    if (errlen > 0)
        err[0] = '\0';
    e_ = fileio_read_all(path, CERTSTORE_FILE_MAX, &raw, &len);
    if (e_) {
        snprintf(err, errlen, "%s: %s", path,
                 e_ == -EFBIG ? "larger than 1 MiB" : strerror(-e_));
        return e_;
    }
    bio = BIO_new_mem_buf(raw, (int)len);
    if (bio == NULL) {
        e_ = -ENOMEM;
        goto out_free;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, no_password, NULL)) != NULL) {
        int dl;

        if (n == CERTSTORE_MAX_CHAIN) {
            X509_free(x);
            snprintf(err, errlen, "%s: more than %d certificates", path, CERTSTORE_MAX_CHAIN);
            e_ = -EINVAL;
            goto out_free;
        }
        dl = i2d_X509(x, &ders[n]);
        X509_free(x);
        if (dl <= 0) {
            e_ = -ENOMEM;
            goto out_free;
        }
        CBS_init(&cbs[n], ders[n], (size_t)dl);
        n++;
    }
    ERR_clear_error();
    if (n == 0) {
        snprintf(err, errlen, "%s: no PEM certificate in it", path);
        e_ = -EINVAL;
        goto out_free;
    }
    BIO_free(bio);
    bio = BIO_new_mem_buf(raw, (int)len);
    if (bio == NULL) {
        e_ = -ENOMEM;
        goto out_free;
    }
    key = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    ERR_clear_error();
    if (key == NULL) {
        snprintf(err, errlen, "%s: no (unencrypted) PEM private key in it; the file must hold "
                              "the certificate, its chain and the key", path);
        e_ = -EINVAL;
        goto out_free;
    }
    e = store_push(s, &e_);
    if (e == NULL) {
        EVP_PKEY_free(key);
        snprintf(err, errlen, "%s: %s", path, e_ == -ENOSPC ? "too many certificates" :
                                                             "out of memory");
        goto out_free;
    }
    e->kind = kind;
    lower_copy(e->name, sizeof(e->name), name != NULL ? name : "", name != NULL ? strlen(name) : 0);
    e_ = entry_set_identity(e, cbs, n, key, &why);
    if (e_) {
        snprintf(err, errlen, "%s: %s", path, why != NULL ? why : "out of memory");
        store_pop(s);
    }
out_free:
    if (e_ == -ENOMEM && (err[0] == '\0' || errlen == 0))
        snprintf(err, errlen, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++)
        OPENSSL_free(ders[i]);
    BIO_free(bio);
    OPENSSL_cleanse(raw, len);
    free(raw);
    return e_;
}

int certstore_add_file(struct certstore *s, const char *tag, const uint8_t *data, size_t len)
{
    struct certstore_entry *e;
    int err = 0;

    if (tag == NULL || tag[0] == '\0' || strlen(tag) >= CERTSTORE_NAME_MAX ||
        len > CERTSTORE_FILE_MAX)
        return -EINVAL;
    e = store_push(s, &err);
    if (e == NULL)
        return err;
    e->kind = CERTSTORE_FILE;
    snprintf(e->name, sizeof(e->name), "%s", tag);
    e->data = malloc(len > 0 ? len : 1);
    if (e->data == NULL) {
        store_pop(s);
        return -ENOMEM;
    }
    memcpy(e->data, data, len);
    e->data_len = len;
    return 0;
}

/* domain_is_valid accepts "*", "*.suffix" and names: letters, digits, '-', '.', '_', with
 * a '*' only as the whole first label. */
static bool domain_is_valid(const char *d, size_t len)
{
    size_t i = 0;

    if (len == 0 || len >= CERTSTORE_NAME_MAX)
        return false;
    if (len == 1 && d[0] == '*')
        return true;
    if (len >= 2 && d[0] == '*' && d[1] == '.')
        i = 2;
    if (i == len)
        return false;
    for (; i < len; i++) {
        unsigned char ch = (unsigned char)d[i];

        if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_')
            return false;
    }
    return true;
}

static int load_client_dir(struct certstore *s, const char *dir, char *err, size_t errlen)
{
    char path[4096], host[CERTSTORE_NAME_MAX];
    struct dirent *de;
    DIR *d = opendir(dir);
    int e = 0;

    if (d == NULL) {
        e = -errno;
        snprintf(err, errlen, "--set client_certs=%s: %s", dir, strerror(errno));
        return e;
    }
    while (e == 0 && (de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        char why[512];

        if (nl <= 4 || strcmp(de->d_name + nl - 4, ".pem") != 0 || de->d_name[0] == '.' ||
            nl - 4 >= sizeof(host))
            continue;
        memcpy(host, de->d_name, nl - 4);
        host[nl - 4] = '\0';
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
            continue;
        why[0] = '\0';
        e = certstore_add_pem(s, CERTSTORE_CLIENT, host, path, why, sizeof(why));
        if (e)
            snprintf(err, errlen, "--set client_certs=%s: %s", dir, why);
    }
    closedir(d);
    return e;
}

int certstore_load_config(struct certstore *s, const struct config *cfg, char *err,
                          size_t errlen)
{
    char why[512];
    struct stat st;
    int e;

    for (int i = 0; i < cfg->n_certs; i++) {
        const char *spec = cfg->certs[i], *eq = strchr(spec, '=');
        char domain[CERTSTORE_NAME_MAX] = "";
        const char *path = spec;

        if (eq != NULL) {
            if (!domain_is_valid(spec, (size_t)(eq - spec))) {
                snprintf(err, errlen, "--certs %s: '%.*s' is not a host name, *.SUFFIX or *",
                         spec, (int)(eq - spec), spec);
                return -EINVAL;
            }
            lower_copy(domain, sizeof(domain), spec, (size_t)(eq - spec));
            path = eq + 1;
        }
        if (path[0] == '\0') {
            snprintf(err, errlen, "--certs %s: no FILE", spec);
            return -EINVAL;
        }
        why[0] = '\0';
        e = certstore_add_pem(s, CERTSTORE_SERVER, domain, path, why, sizeof(why));
        if (e) {
            snprintf(err, errlen, "--certs %s: %s", spec, why);
            return e;
        }
    }
    if (cfg->client_certs == NULL || cfg->client_certs[0] == '\0')
        return 0;
    if (stat(cfg->client_certs, &st) == 0 && S_ISDIR(st.st_mode))
        return load_client_dir(s, cfg->client_certs, err, errlen);
    why[0] = '\0';
    e = certstore_add_pem(s, CERTSTORE_CLIENT, "", cfg->client_certs, why, sizeof(why));
    if (e)
        snprintf(err, errlen, "--set client_certs=%s", why);
    return e;
}

/* ---- bundle ---------------------------------------------------------------------------- */

int certstore_encode(const struct certstore *s, uint8_t **out, size_t *len)
{
    CBB cbb, name, item;

    if (!CBB_init(&cbb, 4096) || !CBB_add_bytes(&cbb, certstore_magic, sizeof(certstore_magic)) ||
        !CBB_add_u16(&cbb, (uint16_t)s->n))
        goto out_fail;
    for (size_t i = 0; i < s->n; i++) {
        const struct certstore_entry *e = &s->e[i];

        if (!CBB_add_u8(&cbb, (uint8_t)e->kind) || !CBB_add_u8_length_prefixed(&cbb, &name) ||
            !CBB_add_bytes(&name, (const uint8_t *)e->name, strlen(e->name)))
            goto out_fail;
        if (e->kind == CERTSTORE_FILE) {
            if (!CBB_add_u24_length_prefixed(&cbb, &item) ||
                !CBB_add_bytes(&item, e->data, e->data_len))
                goto out_fail;
        } else {
            if (!CBB_add_u8(&cbb, (uint8_t)e->n_chain))
                goto out_fail;
            for (size_t k = 0; k < e->n_chain; k++)
                if (!CBB_add_u24_length_prefixed(&cbb, &item) ||
                    !CBB_add_bytes(&item, CRYPTO_BUFFER_data(e->chain[k]),
                                   CRYPTO_BUFFER_len(e->chain[k])))
                    goto out_fail;
            if (!CBB_add_u24_length_prefixed(&cbb, &item) ||
                !EVP_marshal_private_key(&item, e->key))
                goto out_fail;
        }
        if (!CBB_flush(&cbb))
            goto out_fail;
    }
    if (!CBB_finish(&cbb, out, len))
        goto out_fail;
    return 0;
out_fail:
    CBB_cleanup(&cbb); /* BoringSSL's CBB_cleanup does not wipe: nothing secret escapes it
                        * except through the freed heap, as with every EVP_PKEY */
    ERR_clear_error();
    return -ENOMEM;
}

void certstore_free_bundle(uint8_t *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    OPENSSL_free(p);
}

/* decode_entry reads one entry from `in`. Returns 0, -EINVAL with `*why`, -ENOSPC, -ENOMEM. */
static int decode_entry(struct certstore *s, CBS *in, const char **why)
{
    CBS name, item, ders[CERTSTORE_MAX_CHAIN];
    struct certstore_entry *e;
    uint8_t kind, n_chain;
    EVP_PKEY *key;
    int err = 0;

    if (!CBS_get_u8(in, &kind) || !CBS_get_u8_length_prefixed(in, &name)) {
        *why = "truncated entry";
        return -EINVAL;
    }
    if (kind < CERTSTORE_SERVER || kind > CERTSTORE_FILE) {
        *why = "unknown entry kind";
        return -EINVAL;
    }
    if (CBS_len(&name) >= CERTSTORE_NAME_MAX || CBS_contains_zero_byte(&name)) {
        *why = "bad entry name";
        return -EINVAL;
    }
    if (kind == CERTSTORE_FILE) {
        char tag[CERTSTORE_NAME_MAX];

        if (!CBS_get_u24_length_prefixed(in, &item) || CBS_len(&name) == 0) {
            *why = "truncated file entry";
            return -EINVAL;
        }
        memcpy(tag, CBS_data(&name), CBS_len(&name));
        tag[CBS_len(&name)] = '\0';
        return certstore_add_file(s, tag, CBS_data(&item), CBS_len(&item));
    }
    if (!CBS_get_u8(in, &n_chain) || n_chain == 0 || n_chain > CERTSTORE_MAX_CHAIN) {
        *why = "bad chain length";
        return -EINVAL;
    }
    for (size_t i = 0; i < n_chain; i++)
        if (!CBS_get_u24_length_prefixed(in, &ders[i]) || CBS_len(&ders[i]) == 0) {
            *why = "truncated certificate";
            return -EINVAL;
        }
    if (!CBS_get_u24_length_prefixed(in, &item)) {
        *why = "truncated key";
        return -EINVAL;
    }
    key = EVP_parse_private_key(&item);
    if (key == NULL || CBS_len(&item) != 0) {
        EVP_PKEY_free(key);
        ERR_clear_error();
        *why = "bad private key";
        return -EINVAL;
    }
    e = store_push(s, &err);
    if (e == NULL) {
        EVP_PKEY_free(key);
        return err;
    }
    e->kind = (enum certstore_kind)kind;
    lower_copy(e->name, sizeof(e->name), (const char *)CBS_data(&name), CBS_len(&name));
    err = entry_set_identity(e, ders, n_chain, key, why);
    if (err)
        store_pop(s);
    return err;
}

int certstore_decode(struct certstore *s, const uint8_t *p, size_t n, const char **why)
{
    CBS in, magic;
    uint16_t count;
    int err;

    CBS_init(&in, p, n);
    if (!CBS_get_bytes(&in, &magic, sizeof(certstore_magic)) ||
        memcmp(CBS_data(&magic), certstore_magic, sizeof(certstore_magic)) != 0 ||
        !CBS_get_u16(&in, &count)) {
        *why = "not a certificate bundle";
        return -EINVAL;
    }
    for (uint16_t i = 0; i < count; i++) {
        err = decode_entry(s, &in, why);
        if (err)
            return err;
    }
    if (CBS_len(&in) != 0) {
        *why = "trailing bytes after the certificate bundle";
        return -EINVAL;
    }
    return 0;
}

/* ---- lookup (worker) ------------------------------------------------------------------- */

/* wild_rank returns how well the pattern `pat` ("*.suffix") matches `name`: the suffix length
 * + 1 when it matches (any depth when `any_depth`, else exactly one label), 0 otherwise. */
static size_t wild_rank(const char *pat, const char *name, bool any_depth)
{
    size_t pl, nl = strlen(name);
    const char *suffix;

    if (pat[0] != '*' || pat[1] != '.')
        return 0;
    suffix = pat + 1; /* ".suffix" */
    pl = strlen(suffix);
    if (nl <= pl || strcasecmp(name + nl - pl, suffix) != 0)
        return 0;
    if (!any_depth && memchr(name, '.', nl - pl) != NULL)
        return 0;
    return pl + 1;
}

/* entry_rank returns how well SERVER entry `e` matches `name`: 3 << 16 for an exact name,
 * (2 << 16) + suffix length for a wildcard, 1 for "*", 0 for no match. */
static size_t entry_rank(const struct certstore_entry *e, const char *name)
{
    size_t best = 0, r;

    if (e->name[0] != '\0') {
        if (strcmp(e->name, "*") == 0)
            return 1;
        if (strcasecmp(e->name, name) == 0)
            return (size_t)3 << 16;
        r = wild_rank(e->name, name, true);
        return r ? ((size_t)2 << 16) + r : 0;
    }
    for (size_t i = 0; i < e->n_names; i++) {
        if (strcasecmp(e->names[i], name) == 0)
            return (size_t)3 << 16;
        r = wild_rank(e->names[i], name, false);
        if (r && ((size_t)2 << 16) + r > best)
            best = ((size_t)2 << 16) + r;
    }
    return best;
}

const struct certstore_entry *certstore_match_server(const struct certstore *s,
                                                     const char *const *names, size_t n)
{
    const struct certstore_entry *star = NULL;

    for (size_t k = 0; k < n; k++) {
        const struct certstore_entry *best = NULL;
        size_t best_rank = 1;

        if (names[k] == NULL || names[k][0] == '\0')
            continue;
        for (size_t i = 0; i < s->n; i++) {
            size_t r;

            if (s->e[i].kind != CERTSTORE_SERVER)
                continue;
            r = entry_rank(&s->e[i], names[k]);
            if (r == 1 && star == NULL)
                star = &s->e[i];
            if (r > best_rank) {
                best = &s->e[i];
                best_rank = r;
            }
        }
        if (best != NULL)
            return best;
    }
    return star;
}

const struct certstore_entry *certstore_match_client(const struct certstore *s, const char *host)
{
    const struct certstore_entry *any = NULL;

    for (size_t i = 0; i < s->n; i++) {
        const struct certstore_entry *e = &s->e[i];

        if (e->kind != CERTSTORE_CLIENT)
            continue;
        if (e->name[0] == '\0') {
            if (any == NULL)
                any = e;
        } else if (host != NULL && strcasecmp(e->name, host) == 0) {
            return e;
        }
    }
    return any;
}

const struct certstore_entry *certstore_file(const struct certstore *s, const char *tag)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].kind == CERTSTORE_FILE && strcmp(s->e[i].name, tag) == 0)
            return &s->e[i];
    return NULL;
}

bool certstore_has_kind(const struct certstore *s, enum certstore_kind kind)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].kind == kind)
            return true;
    return false;
}

void certstore_dispose(struct certstore *s)
{
    for (size_t i = 0; i < s->n; i++)
        entry_dispose(&s->e[i]);
    free(s->e);
    memset(s, 0, sizeof(*s));
}
