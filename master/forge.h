/* forge.h - the forging service: leaf certificates for intercepted names, signed by the CA.
 * Owns the run's single leaf key (ECDSA P-256, shared by every forged certificate). Master
 * only; workers get the leaf key as PKCS#8 DER and never see the CA key. Never caches. */
#ifndef MITMD_MASTER_FORGE_H
#define MITMD_MASTER_FORGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "master/ca.h"

/* FORGE_MAX_NAMES bounds the names (SANs) in one certificate. */
#define FORGE_MAX_NAMES 100
/* FORGE_NAME_MAX is the longest accepted name (RFC 1035 §2.3.4, without the trailing dot). */
#define FORGE_NAME_MAX 253
/* FORGE_CN_MAX is ub-common-name (RFC 5280 Appendix A): a longer first name gets no CN. */
#define FORGE_CN_MAX 64
/* FORGE_ORG_MAX is ub-organization-name; a longer organization is cut at a UTF-8 boundary. */
#define FORGE_ORG_MAX 64
/* FORGE_VALIDITY_DAYS: notBefore is a day back and notAfter FORGE_VALIDITY_DAYS - 1 days ahead,
 * so the whole validity is 397 days, under the 398 days clients accept (Apple, CA/B BR). */
#define FORGE_VALIDITY_DAYS 397

/* A struct forge keeps scratch buffers for the certificate it is encoding: use it from one
 * thread at a time (the master's loop). */
struct forge;

/* forge_new prepares forging with `ca` (borrowed: it must outlive the forge) and generates the
 * run's leaf key. Returns NULL if allocation fails or the CA key is neither EC nor RSA (with
 * `*why` set to a static reason when `why` is not NULL). Allocates; does not block. */
struct forge *forge_new(const struct ca *ca, const char **why);

/* forge_free wipes the leaf key and releases `f`. forge_free(NULL) is a no-op. */
void forge_free(struct forge *f);

/* forge_leaf forges a leaf certificate for `names[0..n)` (each a NUL-terminated DNS name, a
 * "*."-wildcard name, or an IPv4/IPv6 literal without brackets; n in 1..FORGE_MAX_NAMES) and
 * optional organization `org` (NULL or "" for none; UTF-8, cut to FORGE_ORG_MAX bytes at a
 * character boundary; left out if not printable UTF-8, since it comes from upstream). The
 * subject is O=org (if any) and CN=names[0] (if it fits FORGE_CN_MAX); the SAN extension lists
 * every distinct name in order, IP literals as iPAddress, others as dNSName. Serial: 128
 * random bits with the top bit clear. Validity: a day back to FORGE_VALIDITY_DAYS - 1 days
 * ahead, capped at the CA's notAfter. Signed with SHA-256 by the CA (ECDSA or RSA).
 *
 * On success it stores a malloc'd DER certificate in `*der_out` (the caller frees it with
 * free()), its length in `*der_len`, its notAfter in `*not_after` (may be NULL) and returns 0.
 * Returns -EINVAL with `*why` set to a static reason for an invalid name or a bad `n`,
 * -EKEYEXPIRED if the CA has expired, or -ENOMEM. Allocates; does not block. */
int forge_leaf(struct forge *f, const char *const *names, size_t n, const char *org,
               uint8_t **der_out, size_t *der_len, time_t *not_after, const char **why);

/* forge_leaf_key_der returns the PKCS#8 DER of the leaf private key and sets `*len`; the master
 * sends it to workers in HELLO. The bytes belong to `f`, are valid until forge_free, and are
 * wiped by it. */
const uint8_t *forge_leaf_key_der(const struct forge *f, size_t *len);

/* forge_name_check validates one name as forge_leaf does: 1..FORGE_NAME_MAX bytes, labels of
 * 1..63 letters, digits, '-' or '_', an optional leading "*." wildcard label, or an IPv4/IPv6
 * literal. Returns 0, or -EINVAL with `*why` set to a static reason. */
int forge_name_check(const char *name, const char **why);

#endif
