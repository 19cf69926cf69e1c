/* certstore.h - the certificates an operator gives mitmd (--certs, client_certs) and the
 * public CA files the onboarding page serves. Owns their loading and checking (master: PEM
 * files, chain + key that must match), the one bundle the master hands every worker in a
 * sealed memfd (certstore_encode / certstore_decode, length-prefixed, parsed with BoringSSL's
 * CBS), and the lookup by name (worker). Never touches a socket; allocates only in
 * certstore_add_* and certstore_decode.
 *
 * Matching (certstore_match_server), following mitmproxy's CertStore: `--certs DOMAIN=FILE`
 * serves FILE for DOMAIN, which is a name, "*.SUFFIX" (any name ending in ".SUFFIX", any
 * depth, as mitmproxy's asterisk forms) or "*" (every name); `--certs FILE` without DOMAIN
 * serves FILE for the names in its leaf certificate (subject CN and DNS SANs; a SAN
 * "*.SUFFIX" matches one label, as TLS clients check it). mitmproxy treats a missing DOMAIN
 * as "*"; mitmd does not (see the README). Exact names win over wildcards, longer wildcard
 * suffixes over shorter, "*" comes last; among equals the first given wins. */
#ifndef MITMD_CERTCACHE_CERTSTORE_H
#define MITMD_CERTCACHE_CERTSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>

struct config;

/* CERTSTORE_NAME_MAX holds one DNS name, "*.SUFFIX" or a file tag, plus NUL. */
#define CERTSTORE_NAME_MAX 254
/* CERTSTORE_MAX_CHAIN bounds the certificates of one entry (leaf + intermediates). */
#define CERTSTORE_MAX_CHAIN 8
/* CERTSTORE_MAX_NAMES bounds the names taken from one leaf for matching. */
#define CERTSTORE_MAX_NAMES 64
/* CERTSTORE_MAX_ENTRIES bounds the entries of one store (client_certs DIR files included). */
#define CERTSTORE_MAX_ENTRIES 1024
/* CERTSTORE_FILE_MAX bounds one file read and one bundle item. */
#define CERTSTORE_FILE_MAX (1024 * 1024)

enum certstore_kind {
    CERTSTORE_SERVER = 1, /* --certs: served to clients instead of a forged chain */
    CERTSTORE_CLIENT = 2, /* client_certs: presented to upstreams that ask */
    CERTSTORE_FILE = 3,   /* a public file for the onboarding page: name "pem"/"p12"/"cer" */
};

/* struct certstore_entry is one certificate (with its key) or one file. */
struct certstore_entry {
    enum certstore_kind kind;
    /* name: SERVER: DOMAIN ("" = the leaf's names, "*", "*.suffix" or a name, lower case);
     * CLIENT: the upstream host of a client_certs DIR file ("" = every upstream); FILE: tag */
    char name[CERTSTORE_NAME_MAX];
    CRYPTO_BUFFER *chain[CERTSTORE_MAX_CHAIN]; /* owned; [0] is the leaf */
    size_t n_chain;
    EVP_PKEY *key;   /* owned; matches chain[0] */
    uint8_t *data;   /* FILE: owned bytes */
    size_t data_len;
    char (*names)[CERTSTORE_NAME_MAX]; /* SERVER with name "": the leaf's names, lower case */
    size_t n_names;
};

/* struct certstore is a growable array of entries. A zeroed struct is an empty store. */
struct certstore {
    struct certstore_entry *e;
    size_t n, cap;
};

/* certstore_add_pem reads the PEM file `path` (at most CERTSTORE_FILE_MAX bytes): its
 * certificates in order (the leaf first, then its chain) and its private key (PKCS#8, RSA or
 * EC), and appends an entry of `kind` named `name` (copied, lower-cased; NULL = ""). Returns
 * 0, or -errno with one line in `err` naming the file and the cause: unreadable ("No such
 * file or directory"), "no certificate", "no private key", "the private key does not match
 * the certificate", more than CERTSTORE_MAX_CHAIN certificates; -ENOSPC when the store is
 * full. Blocks on file I/O; allocates. */
int certstore_add_pem(struct certstore *s, enum certstore_kind kind, const char *name,
                      const char *path, char *err, size_t errlen);

/* certstore_add_file appends a CERTSTORE_FILE entry `tag` holding a copy of `data`/`len`.
 * Returns 0, -EINVAL (empty or over-long tag, len > CERTSTORE_FILE_MAX), -ENOSPC or -ENOMEM.
 * Allocates. */
int certstore_add_file(struct certstore *s, const char *tag, const uint8_t *data, size_t len);

/* certstore_load_config adds what `cfg` names: every --certs "[DOMAIN=]FILE" (mitmproxy's
 * syntax: split at the first '=') and client_certs (a file: every upstream; a directory: each
 * "HOST.pem" in it for HOST). Returns 0 or -errno with one line in `err` that names the option
 * and the file ("--certs example.test=/x.pem: no private key"). Blocks; allocates. */
int certstore_load_config(struct certstore *s, const struct config *cfg, char *err,
                          size_t errlen);

/* certstore_encode writes every entry of `s` as one bundle (keys as PKCS#8) into a new
 * buffer `*out` of `*len` bytes, which the caller wipes and frees with certstore_free_bundle.
 * Returns 0 or -ENOMEM. Allocates. */
int certstore_encode(const struct certstore *s, uint8_t **out, size_t *len);

/* certstore_free_bundle wipes and frees a buffer from certstore_encode. NULL is a no-op. */
void certstore_free_bundle(uint8_t *p, size_t len);

/* certstore_decode appends the entries of the bundle `p`/`n` to `s`. Every length is checked
 * against the input; a chain's leaf must match its key. Returns 0, or -EINVAL with `*why` (a
 * static string) for a malformed bundle (the entries decoded before it stay), -ENOSPC or
 * -ENOMEM. Allocates. */
int certstore_decode(struct certstore *s, const uint8_t *p, size_t n, const char **why);

/* certstore_match_server returns the SERVER entry for the first of `names[0..n)` that one
 * matches (see the header comment), or NULL. Names are compared ASCII case-insensitively.
 * The entry belongs to `s`. Never allocates. */
const struct certstore_entry *certstore_match_server(const struct certstore *s,
                                                     const char *const *names, size_t n);

/* certstore_match_client returns the CLIENT entry for upstream `host` (a DIR file named for
 * it, case-insensitive), else the one for every upstream, else NULL. Never allocates. */
const struct certstore_entry *certstore_match_client(const struct certstore *s,
                                                     const char *host);

/* certstore_file returns the FILE entry `tag`, or NULL. */
const struct certstore_entry *certstore_file(const struct certstore *s, const char *tag);

/* certstore_has_kind is true when `s` holds an entry of `kind`. */
bool certstore_has_kind(const struct certstore *s, enum certstore_kind kind);

/* certstore_dispose frees every entry (keys included) and empties `s`. Safe on a zeroed or
 * disposed store. */
void certstore_dispose(struct certstore *s);

#endif
