/* ca.h - the confdir's certificate authority: created on first start, loaded afterwards.
 * Owns the CA private key and certificate and the files mitmd-ca.pem (key + cert, 0600) and
 * the public copies for clients. Master only: workers never see the key. Never overwrites an
 * existing mitmd-ca.pem, whatever state it is in. */
#ifndef MITMD_MASTER_CA_H
#define MITMD_MASTER_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/base.h>

/* File names inside the confdir. */
#define CA_FILE_KEY "mitmd-ca.pem"          /* PEM private key + PEM certificate, mode 0600 */
#define CA_FILE_CERT_PEM "mitmd-ca-cert.pem" /* certificate only, PEM, mode 0644 */
#define CA_FILE_CERT_CER "mitmd-ca-cert.cer" /* certificate only, DER, mode 0644 */
#define CA_FILE_CERT_P12 "mitmd-ca-cert.p12" /* PKCS#12, certificate only, empty password */
#define CA_FILE_MITMPROXY_KEY "mitmproxy-ca.pem" /* mitmproxy's key + cert, used if no mitmd's */

/* CA_VALIDITY_DAYS is the lifetime of a CA created by mitmd (10 years, leap days included). */
#define CA_VALIDITY_DAYS 3653

/* CA_FILE_MAX bounds how much of mitmd-ca.pem is read; a larger file is refused. */
#define CA_FILE_MAX (1024 * 1024)

struct ca;

/* ca_load_or_create loads the CA in `confdir`, or creates one if `confdir`/mitmd-ca.pem does
 * not exist. When mitmd-ca.pem does not exist but mitmproxy's mitmproxy-ca.pem does, that CA
 * is loaded instead (and said so in one log_info line), and the public mitmd-ca-cert.* copies
 * are written from it; nothing is created. The confdir must not be writable by group or
 * others and the key file must not be readable by them (-EPERM, refused as OpenSSH refuses
 * an unprotected private key; the file is not changed). `confdir` is created with mode 0700 if missing (its parent must exist). A new CA
 * is ECDSA P-256, CN=mitmd O=mitmd, valid CA_VALIDITY_DAYS from a day ago; its key file is
 * written to a temporary file (O_EXCL, 0600), fsync'ed and moved into place without replacing
 * anything, so a crash leaves either no CA or a whole one. An existing CA with any key type
 * that BoringSSL parses (EC, RSA, ...) is loaded as is. Missing public files (cert .pem, .cer,
 * .p12) are re-created from the loaded CA; existing ones are left alone.
 *
 * On success it stores a new `struct ca` in `*out` (free with ca_free) and returns 0. On
 * failure it returns -errno (-EINVAL for a corrupt or mismatched file, -EACCES/-EISDIR/... for
 * an unreadable one, -ENOMEM) and writes a one-line human message naming the file into `err`
 * (always NUL-terminated when errlen > 0). An existing mitmd-ca.pem is never modified. Blocks
 * on file I/O; allocates. */
int ca_load_or_create(const char *confdir, struct ca **out, char *err, size_t errlen);

/* ca_free releases `ca` and wipes its key material. ca_free(NULL) is a no-op. */
void ca_free(struct ca *ca);

/* ca_cert_der returns the DER of the CA certificate and sets `*len`. The bytes belong to `ca`
 * and are valid until ca_free. */
const uint8_t *ca_cert_der(const struct ca *ca, size_t *len);

/* ca_not_after returns the CA certificate's notAfter as seconds since the epoch. */
time_t ca_not_after(const struct ca *ca);

/* ca_cert_path returns the path of the public mitmd-ca-cert.pem (for the start-up line). The
 * string belongs to `ca`. */
const char *ca_cert_path(const struct ca *ca);

/* ca_was_created returns true if this ca_load_or_create call created the CA. */
bool ca_was_created(const struct ca *ca);

/* ca_is_mitmproxy returns true if the CA loaded is the confdir's mitmproxy-ca.pem. */
bool ca_is_mitmproxy(const struct ca *ca);

/* ca_get0_cert and ca_get0_key return the CA certificate and private key for the forging
 * service (master/forge.c). Both belong to `ca`; callers must not free or modify them. */
X509 *ca_get0_cert(const struct ca *ca);
EVP_PKEY *ca_get0_key(const struct ca *ca);

#endif
