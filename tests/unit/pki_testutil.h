/* pki_testutil.h - certificate helpers shared by the unit tests of the CA, forging and TLS
 * modules. Test code only: every failure is a cmocka assertion. */
#ifndef MITMD_TESTS_PKI_TESTUTIL_H
#define MITMD_TESTS_PKI_TESTUTIL_H

#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* pki_testutil_asn1_to_posix converts an ASN1_TIME to seconds since the epoch. */
time_t pki_testutil_asn1_to_posix(const ASN1_TIME *t);

/* pki_testutil_gen_key returns a new EVP_PKEY of `type` (EVP_PKEY_RSA: 2048 bits; otherwise
 * EC P-256). The caller frees it with EVP_PKEY_free. */
EVP_PKEY *pki_testutil_gen_key(int type);

/* pki_testutil_add_ext adds the extension `nid` given in OpenSSL config syntax to `x`, which
 * is its own issuer for the purpose of the extension context. */
void pki_testutil_add_ext(X509 *x, int nid, const char *value);

#endif
