/* forge.c - leaf certificates for intercepted names, encoded directly with CBB.
 * Owns the run's leaf key and the precomputed parts of every TBSCertificate (issuer, SPKI,
 * key identifiers); signs with the CA key it borrows from master/ca. Master only. */
#include "master/forge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bytestring.h>
#include <openssl/digest.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

/* FORGE_SCRATCH bounds a TBSCertificate without the issuer name: FORGE_MAX_NAMES SANs of
 * FORGE_NAME_MAX bytes (with 3-byte headers) plus the fixed fields fit with room to spare. */
#define FORGE_SCRATCH 32768
#define FORGE_DAY 86400

enum forge_sig { FORGE_SIG_ECDSA_SHA256 = 0, FORGE_SIG_RSA_SHA256 };

struct forge {
    EVP_PKEY *ca_key; /* borrowed from the ca */
    time_t ca_not_after;
    enum forge_sig sig;
    EVP_PKEY *leaf_key;
    uint8_t *leaf_pkcs8; /* OPENSSL_malloc'd (wiped by OPENSSL_free) */
    size_t leaf_pkcs8_len;
    uint8_t *spki; /* leaf SubjectPublicKeyInfo DER, OPENSSL_malloc'd */
    size_t spki_len;
    uint8_t *issuer; /* CA subject Name DER, OPENSSL_malloc'd */
    size_t issuer_len;
    uint8_t leaf_keyid[SHA_DIGEST_LENGTH];
    uint8_t ca_keyid[64];
    size_t ca_keyid_len;
    uint8_t *sig_buf; /* EVP_PKEY_size(ca_key) bytes */
    size_t sig_cap;
    uint8_t *scratch; /* FORGE_SCRATCH + issuer_len bytes for the TBSCertificate */
    size_t scratch_cap;
};

/* DER contents of the object identifiers we write. */
static const uint8_t OID_CN[] = {0x55, 0x04, 0x03};                         /* 2.5.4.3 */
static const uint8_t OID_O[] = {0x55, 0x04, 0x0a};                          /* 2.5.4.10 */
static const uint8_t OID_BASIC_CONSTRAINTS[] = {0x55, 0x1d, 0x13};          /* 2.5.29.19 */
static const uint8_t OID_KEY_USAGE[] = {0x55, 0x1d, 0x0f};                  /* 2.5.29.15 */
static const uint8_t OID_EXT_KEY_USAGE[] = {0x55, 0x1d, 0x25};              /* 2.5.29.37 */
static const uint8_t OID_SKI[] = {0x55, 0x1d, 0x0e};                        /* 2.5.29.14 */
static const uint8_t OID_AKI[] = {0x55, 0x1d, 0x23};                        /* 2.5.29.35 */
static const uint8_t OID_SAN[] = {0x55, 0x1d, 0x11};                        /* 2.5.29.17 */
static const uint8_t OID_SERVER_AUTH[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01};
static const uint8_t OID_ECDSA_SHA256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t OID_RSA_SHA256[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                         0x0d, 0x01, 0x01, 0x0b};

/* A parsed name: an IP literal (ip_len 4 or 16) or a DNS name (ip_len 0). */
struct forge_name {
    const char *s;
    size_t len;
    uint8_t ip[16];
    size_t ip_len;
};

static size_t forge_parse_ip(const char *s, uint8_t ip[16])
{
    if (inet_pton(AF_INET, s, ip) == 1)
        return 4;
    if (inet_pton(AF_INET6, s, ip) == 1)
        return 16;
    return 0;
}

static bool forge_is_label_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

int forge_name_check(const char *name, const char **why)
{
    size_t len = strnlen(name, FORGE_NAME_MAX + 1), label = 0;
    uint8_t ip[16];
    const char *p = name;

    if (len == 0) {
        *why = "empty name";
        return -EINVAL;
    }
    if (len > FORGE_NAME_MAX) {
        *why = "name longer than 253 bytes";
        return -EINVAL;
    }
    if (forge_parse_ip(name, ip) != 0)
        return 0;
    if (p[0] == '*' && p[1] == '.')
        p += 2; /* the wildcard label; RFC 6125 §6.4.3 only allows it leftmost and whole */
    for (;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0) {
                *why = "empty label in name";
                return -EINVAL;
            }
            if (*p == '\0')
                return 0;
            label = 0;
            continue;
        }
        if (!forge_is_label_char((unsigned char)*p)) {
            *why = "invalid character in name";
            return -EINVAL;
        }
        if (++label > 63) {
            *why = "label longer than 63 bytes";
            return -EINVAL;
        }
    }
}

/* forge_org_len validates `org` as printable UTF-8 and returns how many bytes of it fit
 * FORGE_ORG_MAX without splitting a character, or -EINVAL. */
static long forge_org_len(const char *org)
{
    const unsigned char *p = (const unsigned char *)org;
    size_t keep = 0, i = 0;

    while (p[i] != '\0') {
        size_t n, k;

        if (p[i] < 0x20 || p[i] == 0x7f)
            return -EINVAL;
        if (p[i] < 0x80)
            n = 1;
        else if ((p[i] & 0xe0) == 0xc0 && p[i] >= 0xc2)
            n = 2;
        else if ((p[i] & 0xf0) == 0xe0)
            n = 3;
        else if ((p[i] & 0xf8) == 0xf0 && p[i] <= 0xf4)
            n = 4;
        else
            return -EINVAL;
        for (k = 1; k < n; k++)
            if ((p[i + k] & 0xc0) != 0x80) /* also stops at the NUL */
                return -EINVAL;
        /* RFC 3629 §4: no overlong forms, no surrogates, nothing above U+10FFFF */
        if ((p[i] == 0xe0 && p[i + 1] < 0xa0) || (p[i] == 0xed && p[i + 1] > 0x9f) ||
            (p[i] == 0xf0 && p[i + 1] < 0x90) || (p[i] == 0xf4 && p[i + 1] > 0x8f))
            return -EINVAL;
        i += n;
        if (i <= FORGE_ORG_MAX)
            keep = i;
        if (i > 4096) /* bound the scan: the rest would be cut anyway */
            break;
    }
    return (long)keep;
}

/* forge_spki_keyid computes the RFC 5280 §4.2.1.2 (1) key identifier of an SPKI. */
static int forge_spki_keyid(const uint8_t *spki, size_t len, uint8_t out[SHA_DIGEST_LENGTH])
{
    CBS cbs, seq, bits;
    uint8_t unused;

    CBS_init(&cbs, spki, len);
    if (CBS_get_asn1(&cbs, &seq, CBS_ASN1_SEQUENCE) != 1 ||
        CBS_get_asn1(&seq, NULL, CBS_ASN1_SEQUENCE) != 1 ||
        CBS_get_asn1(&seq, &bits, CBS_ASN1_BITSTRING) != 1 || CBS_get_u8(&bits, &unused) != 1)
        return -EINVAL;
    SHA1(CBS_data(&bits), CBS_len(&bits), out);
    return 0;
}

struct forge *forge_new(const struct ca *ca, const char **why)
{
    struct forge *f = calloc(1, sizeof(*f));
    X509 *ca_cert = ca_get0_cert(ca);
    const ASN1_OCTET_STRING *skid;
    EC_KEY *ec = NULL;
    CBB cbb;
    int n;
    const char *reason = "out of memory";

    if (f == NULL)
        goto out;
    f->ca_key = ca_get0_key(ca);
    f->ca_not_after = ca_not_after(ca);
    switch (EVP_PKEY_id(f->ca_key)) {
    case EVP_PKEY_EC:
        f->sig = FORGE_SIG_ECDSA_SHA256;
        break;
    case EVP_PKEY_RSA:
        f->sig = FORGE_SIG_RSA_SHA256;
        break;
    default:
        reason = "the CA key is neither EC nor RSA";
        goto out_free;
    }
    f->sig_cap = EVP_PKEY_size(f->ca_key);
    f->sig_buf = malloc(f->sig_cap);
    if (f->sig_buf == NULL)
        goto out_free;

    /* the run's leaf key */
    ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    f->leaf_key = EVP_PKEY_new();
    if (ec == NULL || f->leaf_key == NULL || EC_KEY_generate_key(ec) != 1 ||
        EVP_PKEY_assign_EC_KEY(f->leaf_key, ec) != 1)
        goto out_free;
    ec = NULL; /* owned by leaf_key now */
    if (CBB_init(&cbb, 160) != 1)
        goto out_free;
    if (EVP_marshal_private_key(&cbb, f->leaf_key) != 1 ||
        CBB_finish(&cbb, &f->leaf_pkcs8, &f->leaf_pkcs8_len) != 1) {
        CBB_cleanup(&cbb);
        goto out_free;
    }
    if (CBB_init(&cbb, 100) != 1)
        goto out_free;
    if (EVP_marshal_public_key(&cbb, f->leaf_key) != 1 ||
        CBB_finish(&cbb, &f->spki, &f->spki_len) != 1) {
        CBB_cleanup(&cbb);
        goto out_free;
    }
    if (forge_spki_keyid(f->spki, f->spki_len, f->leaf_keyid) != 0)
        goto out_free;

    /* issuer = the CA's subject, byte for byte, so that chain building matches it */
    n = i2d_X509_NAME(X509_get_subject_name(ca_cert), &f->issuer);
    if (n <= 0)
        goto out_free;
    f->issuer_len = (size_t)n;
    skid = X509_get0_subject_key_id(ca_cert);
    if (skid != NULL && (size_t)ASN1_STRING_length(skid) <= sizeof(f->ca_keyid) &&
        ASN1_STRING_length(skid) > 0) {
        f->ca_keyid_len = (size_t)ASN1_STRING_length(skid);
        memcpy(f->ca_keyid, ASN1_STRING_get0_data(skid), f->ca_keyid_len);
    } else {
        /* a CA without SKI: compute it the way RFC 5280 §4.2.1.2 (1) does */
        const ASN1_BIT_STRING *pub = X509_get0_pubkey_bitstr(ca_cert);

        if (pub == NULL)
            goto out_free;
        SHA1(ASN1_STRING_get0_data(pub), (size_t)ASN1_STRING_length(pub), f->ca_keyid);
        f->ca_keyid_len = SHA_DIGEST_LENGTH;
    }
    f->scratch_cap = FORGE_SCRATCH + f->issuer_len;
    f->scratch = malloc(f->scratch_cap);
    if (f->scratch == NULL)
        goto out_free;
    ERR_clear_error();
    return f;
out_free:
    EC_KEY_free(ec);
    forge_free(f);
out:
    ERR_clear_error();
    if (why != NULL)
        *why = reason;
    return NULL;
}

void forge_free(struct forge *f)
{
    if (f == NULL)
        return;
    if (f->leaf_pkcs8 != NULL)
        OPENSSL_cleanse(f->leaf_pkcs8, f->leaf_pkcs8_len);
    OPENSSL_free(f->leaf_pkcs8);
    EVP_PKEY_free(f->leaf_key);
    OPENSSL_free(f->spki);
    OPENSSL_free(f->issuer);
    free(f->sig_buf);
    free(f->scratch);
    free(f);
}

const uint8_t *forge_leaf_key_der(const struct forge *f, size_t *len)
{
    *len = f->leaf_pkcs8_len;
    return f->leaf_pkcs8;
}

static int forge_add_oid(CBB *cbb, const uint8_t *oid, size_t len)
{
    CBB c;

    return CBB_add_asn1(cbb, &c, CBS_ASN1_OBJECT) == 1 && CBB_add_bytes(&c, oid, len) == 1 &&
           CBB_flush(cbb) == 1;
}

/* forge_add_time writes UTCTime for 1950..2049 and GeneralizedTime otherwise (RFC 5280
 * §4.1.2.5). */
static int forge_add_time(CBB *cbb, time_t t)
{
    struct tm tm;
    char buf[32];
    int n;
    CBB c;

    if (gmtime_r(&t, &tm) == NULL)
        return 0;
    if (tm.tm_year >= 50 && tm.tm_year < 150) {
        n = snprintf(buf, sizeof(buf), "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (CBB_add_asn1(cbb, &c, CBS_ASN1_UTCTIME) != 1)
            return 0;
    } else {
        n = snprintf(buf, sizeof(buf), "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (CBB_add_asn1(cbb, &c, CBS_ASN1_GENERALIZEDTIME) != 1)
            return 0;
    }
    return n > 0 && CBB_add_bytes(&c, (const uint8_t *)buf, (size_t)n) == 1 && CBB_flush(cbb) == 1;
}

/* forge_add_serial writes a random positive 128-bit INTEGER in minimal DER. */
static int forge_add_serial(CBB *cbb)
{
    uint8_t serial[16];
    size_t i = 0;
    CBB c;

    randombytes_buf(serial, sizeof(serial));
    serial[0] &= 0x7f;                     /* positive */
    if (sodium_is_zero(serial, sizeof(serial))) /* RFC 5280 §4.1.2.2: non-zero */
        serial[sizeof(serial) - 1] = 1;
    while (i + 1 < sizeof(serial) && serial[i] == 0 && serial[i + 1] < 0x80)
        i++; /* X.690 §8.3.2: no redundant leading zero octets */
    return CBB_add_asn1(cbb, &c, CBS_ASN1_INTEGER) == 1 &&
           CBB_add_bytes(&c, serial + i, sizeof(serial) - i) == 1 && CBB_flush(cbb) == 1;
}

static int forge_add_sigalg(CBB *cbb, enum forge_sig sig)
{
    static const uint8_t der_null[] = {0x05, 0x00};
    CBB alg;

    if (CBB_add_asn1(cbb, &alg, CBS_ASN1_SEQUENCE) != 1)
        return 0;
    if (sig == FORGE_SIG_ECDSA_SHA256) /* RFC 5758 §3.2: parameters absent */
        return forge_add_oid(&alg, OID_ECDSA_SHA256, sizeof(OID_ECDSA_SHA256)) &&
               CBB_flush(cbb) == 1;
    /* RFC 4055 §5: parameters NULL */
    return forge_add_oid(&alg, OID_RSA_SHA256, sizeof(OID_RSA_SHA256)) &&
           CBB_add_bytes(&alg, der_null, sizeof(der_null)) == 1 && CBB_flush(cbb) == 1;
}

static int forge_add_rdn(CBB *name, const uint8_t *oid, size_t oid_len, const char *v,
                         size_t len)
{
    CBB set, atv, val;

    return CBB_add_asn1(name, &set, CBS_ASN1_SET) == 1 &&
           CBB_add_asn1(&set, &atv, CBS_ASN1_SEQUENCE) == 1 && forge_add_oid(&atv, oid, oid_len) &&
           CBB_add_asn1(&atv, &val, CBS_ASN1_UTF8STRING) == 1 &&
           CBB_add_bytes(&val, (const uint8_t *)v, len) == 1 && CBB_flush(name) == 1;
}

/* forge_begin_ext opens an Extension and its extnValue OCTET STRING in `val`. */
static int forge_begin_ext(CBB *exts, CBB *ext, CBB *val, const uint8_t *oid, size_t oid_len,
                           bool critical)
{
    if (CBB_add_asn1(exts, ext, CBS_ASN1_SEQUENCE) != 1 || !forge_add_oid(ext, oid, oid_len))
        return 0;
    if (critical) {
        CBB b;

        if (CBB_add_asn1(ext, &b, CBS_ASN1_BOOLEAN) != 1 || CBB_add_u8(&b, 0xff) != 1)
            return 0;
    }
    return CBB_add_asn1(ext, val, CBS_ASN1_OCTETSTRING) == 1;
}

static int forge_add_extensions(const struct forge *f, CBB *tbs, const struct forge_name *nm,
                                size_t n, bool subject_empty)
{
    CBB wrap, exts, ext, val, seq, c;
    static const uint8_t ku_digital_signature[] = {0x07, 0x80}; /* RFC 5280 §4.2.1.3 bit 0 */

    if (CBB_add_asn1(tbs, &wrap, CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 3) != 1 ||
        CBB_add_asn1(&wrap, &exts, CBS_ASN1_SEQUENCE) != 1)
        return 0;
    /* basicConstraints, critical, CA:FALSE (the DEFAULT, so an empty SEQUENCE) */
    if (!forge_begin_ext(&exts, &ext, &val, OID_BASIC_CONSTRAINTS, sizeof(OID_BASIC_CONSTRAINTS),
                         true) ||
        CBB_add_asn1(&val, &seq, CBS_ASN1_SEQUENCE) != 1 || CBB_flush(&exts) != 1)
        return 0;
    /* keyUsage, critical, digitalSignature */
    if (!forge_begin_ext(&exts, &ext, &val, OID_KEY_USAGE, sizeof(OID_KEY_USAGE), true) ||
        CBB_add_asn1(&val, &c, CBS_ASN1_BITSTRING) != 1 ||
        CBB_add_bytes(&c, ku_digital_signature, sizeof(ku_digital_signature)) != 1 ||
        CBB_flush(&exts) != 1)
        return 0;
    /* extKeyUsage serverAuth */
    if (!forge_begin_ext(&exts, &ext, &val, OID_EXT_KEY_USAGE, sizeof(OID_EXT_KEY_USAGE),
                         false) ||
        CBB_add_asn1(&val, &seq, CBS_ASN1_SEQUENCE) != 1 ||
        !forge_add_oid(&seq, OID_SERVER_AUTH, sizeof(OID_SERVER_AUTH)) || CBB_flush(&exts) != 1)
        return 0;
    /* subjectKeyIdentifier of the leaf key */
    if (!forge_begin_ext(&exts, &ext, &val, OID_SKI, sizeof(OID_SKI), false) ||
        CBB_add_asn1_octet_string(&val, f->leaf_keyid, sizeof(f->leaf_keyid)) != 1 ||
        CBB_flush(&exts) != 1)
        return 0;
    /* authorityKeyIdentifier: [0] keyIdentifier of the CA */
    if (!forge_begin_ext(&exts, &ext, &val, OID_AKI, sizeof(OID_AKI), false) ||
        CBB_add_asn1(&val, &seq, CBS_ASN1_SEQUENCE) != 1 ||
        CBB_add_asn1(&seq, &c, CBS_ASN1_CONTEXT_SPECIFIC | 0) != 1 ||
        CBB_add_bytes(&c, f->ca_keyid, f->ca_keyid_len) != 1 || CBB_flush(&exts) != 1)
        return 0;
    /* subjectAltName; critical when the subject is empty (RFC 5280 §4.2.1.6) */
    if (!forge_begin_ext(&exts, &ext, &val, OID_SAN, sizeof(OID_SAN), subject_empty) ||
        CBB_add_asn1(&val, &seq, CBS_ASN1_SEQUENCE) != 1)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (nm[i].ip_len != 0) { /* iPAddress [7] OCTET STRING */
            if (CBB_add_asn1(&seq, &c, CBS_ASN1_CONTEXT_SPECIFIC | 7) != 1 ||
                CBB_add_bytes(&c, nm[i].ip, nm[i].ip_len) != 1)
                return 0;
        } else { /* dNSName [2] IA5String */
            if (CBB_add_asn1(&seq, &c, CBS_ASN1_CONTEXT_SPECIFIC | 2) != 1 ||
                CBB_add_bytes(&c, (const uint8_t *)nm[i].s, nm[i].len) != 1)
                return 0;
        }
    }
    return CBB_flush(tbs) == 1;
}

/* forge_tbs encodes the TBSCertificate into f->scratch. Returns its length or 0. */
static size_t forge_tbs(struct forge *f, const struct forge_name *nm, size_t n, const char *org,
                        size_t org_len, time_t not_before, time_t not_after)
{
    CBB cbb, tbs, c, validity, subject;
    bool has_cn = nm[0].len <= FORGE_CN_MAX;
    uint8_t *out;
    size_t len;

    if (CBB_init_fixed(&cbb, f->scratch, f->scratch_cap) != 1)
        return 0;
    if (CBB_add_asn1(&cbb, &tbs, CBS_ASN1_SEQUENCE) != 1 ||
        /* version [0] EXPLICIT v3 (2) */
        CBB_add_asn1(&tbs, &c, CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 0) != 1 ||
        CBB_add_asn1_uint64(&c, 2) != 1 || !forge_add_serial(&tbs) ||
        !forge_add_sigalg(&tbs, f->sig) || CBB_add_bytes(&tbs, f->issuer, f->issuer_len) != 1 ||
        CBB_add_asn1(&tbs, &validity, CBS_ASN1_SEQUENCE) != 1 ||
        !forge_add_time(&validity, not_before) || !forge_add_time(&validity, not_after) ||
        CBB_flush(&tbs) != 1 || CBB_add_asn1(&tbs, &subject, CBS_ASN1_SEQUENCE) != 1)
        goto fail;
    if (org_len > 0 && !forge_add_rdn(&subject, OID_O, sizeof(OID_O), org, org_len))
        goto fail;
    if (has_cn && !forge_add_rdn(&subject, OID_CN, sizeof(OID_CN), nm[0].s, nm[0].len))
        goto fail;
    if (CBB_flush(&tbs) != 1 || CBB_add_bytes(&tbs, f->spki, f->spki_len) != 1 ||
        !forge_add_extensions(f, &tbs, nm, n, !has_cn && org_len == 0) ||
        CBB_finish(&cbb, &out, &len) != 1)
        goto fail;
    return len;
fail:
    CBB_cleanup(&cbb);
    return 0;
}

int forge_leaf(struct forge *f, const char *const *names, size_t n, const char *org,
               uint8_t **der_out, size_t *der_len, time_t *not_after, const char **why)
{
    struct forge_name nm[FORGE_MAX_NAMES];
    size_t count = 0, tbs_len, sig_len, cap, len;
    long org_len = 0;
    time_t now = time(NULL), nb, na;
    EVP_MD_CTX md;
    uint8_t *der;
    CBB cbb, cert, bits;
    int ret;

    if (n == 0 || n > FORGE_MAX_NAMES) {
        *why = n == 0 ? "no name to forge a certificate for" : "too many names";
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        bool dup = false;

        ret = forge_name_check(names[i], why);
        if (ret)
            return ret;
        for (size_t j = 0; j < count && !dup; j++)
            dup = strcasecmp(nm[j].s, names[i]) == 0;
        if (dup)
            continue;
        nm[count].s = names[i];
        nm[count].len = strlen(names[i]);
        nm[count].ip_len = forge_parse_ip(names[i], nm[count].ip);
        count++;
    }
    if (org != NULL) {
        /* The organization is copied from the upstream's certificate, which we do not control:
         * one that is not printable UTF-8 is left out rather than costing the client its
         * certificate. */
        org_len = forge_org_len(org);
        if (org_len < 0)
            org_len = 0;
    }
    nb = now - FORGE_DAY;
    na = now + (time_t)(FORGE_VALIDITY_DAYS - 1) * FORGE_DAY;
    if (na > f->ca_not_after)
        na = f->ca_not_after;
    if (na <= now) {
        *why = "the CA certificate has expired";
        return -EKEYEXPIRED;
    }

    *why = "out of memory";
    tbs_len = forge_tbs(f, nm, count, org, (size_t)org_len, nb, na);
    if (tbs_len == 0)
        return -ENOMEM;
    EVP_MD_CTX_init(&md);
    sig_len = f->sig_cap;
    if (EVP_DigestSignInit(&md, NULL, EVP_sha256(), NULL, f->ca_key) != 1 ||
        EVP_DigestSign(&md, f->sig_buf, &sig_len, f->scratch, tbs_len) != 1) {
        EVP_MD_CTX_cleanup(&md);
        ERR_clear_error();
        *why = "signing failed";
        return -ENOMEM;
    }
    EVP_MD_CTX_cleanup(&md);

    /* Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signatureValue BIT STRING } */
    cap = tbs_len + sig_len + 64;
    der = malloc(cap);
    if (der == NULL)
        return -ENOMEM;
    if (CBB_init_fixed(&cbb, der, cap) != 1 || CBB_add_asn1(&cbb, &cert, CBS_ASN1_SEQUENCE) != 1 ||
        CBB_add_bytes(&cert, f->scratch, tbs_len) != 1 || !forge_add_sigalg(&cert, f->sig) ||
        CBB_add_asn1(&cert, &bits, CBS_ASN1_BITSTRING) != 1 || CBB_add_u8(&bits, 0) != 1 ||
        CBB_add_bytes(&bits, f->sig_buf, sig_len) != 1 || CBB_finish(&cbb, NULL, &len) != 1) {
        CBB_cleanup(&cbb);
        free(der);
        return -ENOMEM;
    }
    *der_out = der;
    *der_len = len;
    if (not_after != NULL)
        *not_after = na;
    *why = NULL;
    return 0;
}
