/* ca.c - the confdir's certificate authority: creation, loading and the public copies.
 * Owns the CA key and certificate; called by the master at start-up and by `mitmd cert`.
 * Never modifies an existing mitmd-ca.pem and never leaves a partly written one. */
#include "master/ca.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/pkcs8.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "shared/fileio.h"
#include "shared/log.h"

struct ca {
    X509 *cert;
    EVP_PKEY *key;
    uint8_t *der; /* OPENSSL_malloc'd DER of cert */
    size_t der_len;
    time_t not_after;
    bool created;
    bool from_mitmproxy;
    char cert_path[PATH_MAX];
};

/* ca_errf formats a one-line message into err (if any room) and returns `ret`. */
__attribute__((format(printf, 4, 5))) static int ca_errf(char *err, size_t errlen, int ret,
                                                          const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return ret;
}

/* ca_ssl_reason returns BoringSSL's last error reason as a static string and clears the
 * thread's error queue, so it does not leak into later calls. */
static const char *ca_ssl_reason(void)
{
    uint32_t e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return r != NULL ? r : "unknown error";
}

static int ca_path(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);

    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    return 0;
}

/* ca_time_to_posix converts an ASN1_TIME to seconds since the epoch. Returns 0 or -EINVAL. */
static int ca_time_to_posix(const ASN1_TIME *t, time_t *out)
{
    ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
    int days, secs, ok;

    if (epoch == NULL)
        return -ENOMEM;
    ok = ASN1_TIME_diff(&days, &secs, epoch, t);
    ASN1_TIME_free(epoch);
    if (ok != 1)
        return -EINVAL;
    *out = (time_t)days * 86400 + secs;
    return 0;
}

static int ca_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int err = 0;

    if (fd == -1)
        return -errno;
    if (fsync(fd) == -1 && errno != EINVAL) /* some filesystems cannot sync a directory */
        err = -errno;
    close(fd);
    return err;
}

/* ca_write_file_new creates dir/name holding `data` with mode `mode`, or returns -EEXIST
 * without touching anything if dir/name exists. The data goes to a temporary file in the same
 * directory (O_CREAT|O_EXCL, created with `mode`, so no other user can ever open it when mode
 * is 0600), is fsync'ed, and is then moved into place with renameat2(RENAME_NOREPLACE) (or
 * link+unlink where the filesystem lacks it), so readers see no file or the whole file. */
static int ca_write_file_new(const char *dir, const char *name, const void *data, size_t len,
                             mode_t mode, char *err, size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    uint8_t rnd[6];
    char rnd_hex[sizeof(rnd) * 2 + 1];
    int fd, ret;

    ret = ca_path(path, sizeof(path), dir, name);
    if (ret)
        return ca_errf(err, errlen, ret, "%s/%s: path too long", dir, name);
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(rnd_hex, sizeof(rnd_hex), rnd, sizeof(rnd));
    if (snprintf(tmp, sizeof(tmp), "%s/.%s.%s.tmp", dir, name, rnd_hex) >= (int)sizeof(tmp))
        return ca_errf(err, errlen, -ENAMETOOLONG, "%s: path too long", path);

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd == -1) {
        ret = -errno;
        return ca_errf(err, errlen, ret, "%s: cannot create: %s", tmp, strerror(-ret));
    }
    if (fchmod(fd, mode) == -1) { /* the umask may have removed bits of a public file */
        ret = -errno;
        goto out_close;
    }
    ret = fileio_write_all(fd, data, len);
    if (ret)
        goto out_close;
    if (fsync(fd) == -1) {
        ret = -errno;
        goto out_close;
    }
    if (close(fd) == -1) {
        fd = -1;
        ret = -errno;
        goto out_unlink;
    }
    fd = -1;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == -1) {
        ret = -errno;
        if (ret != -EINVAL && ret != -ENOSYS)
            goto out_unlink;
        /* No RENAME_NOREPLACE on this filesystem: link(2) also refuses to replace. */
        if (link(tmp, path) == -1) {
            ret = -errno;
            goto out_unlink;
        }
        unlink(tmp);
    }
    ret = ca_fsync_dir(dir);
    if (ret)
        return ca_errf(err, errlen, ret, "%s: cannot sync directory: %s", dir, strerror(-ret));
    return 0;
out_close:
    close(fd);
out_unlink:
    unlink(tmp);
    if (ret == -EEXIST)
        return ca_errf(err, errlen, ret, "%s: already exists", path);
    return ca_errf(err, errlen, ret, "%s: cannot write: %s", path, strerror(-ret));
}

/* ca_read_file reads at most CA_FILE_MAX bytes of a regular file into a new malloc'd buffer.
 * A file holding a private key must not be readable by group or others: like OpenSSH with
 * an unprotected private key, it is refused (-EPERM), not used and not changed. Returns 0,
 * -ENOENT if the file does not exist (no message), or another -errno with a message. The
 * caller wipes and frees *out. */
static int ca_read_file(const char *path, uint8_t **out, size_t *out_len, char *err,
                        size_t errlen)
{
    struct stat st;
    uint8_t *buf;
    size_t len = 0;
    int fd, ret;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd == -1) {
        ret = -errno;
        if (ret == -ENOENT)
            return ret;
        return ca_errf(err, errlen, ret, "%s: cannot open: %s", path, strerror(-ret));
    }
    if (fstat(fd, &st) == -1) {
        ret = -errno;
        close(fd);
        return ca_errf(err, errlen, ret, "%s: cannot stat: %s", path, strerror(-ret));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        ret = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        return ca_errf(err, errlen, ret, "%s: not a regular file", path);
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        return ca_errf(err, errlen, -EPERM,
                       "%s: the CA private key is readable by group or others (mode %04o); "
                       "refusing to use it: chmod 600 %s (and consider the key exposed)",
                       path, (unsigned)(st.st_mode & 07777), path);
    }
    buf = malloc(CA_FILE_MAX + 1);
    if (buf == NULL) {
        close(fd);
        return ca_errf(err, errlen, -ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, CA_FILE_MAX + 1 - len);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            ret = -errno;
            ca_errf(err, errlen, ret, "%s: cannot read: %s", path, strerror(-ret));
            goto out_free;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > CA_FILE_MAX) {
            ret = ca_errf(err, errlen, -EFBIG, "%s: larger than %d bytes, not a CA file", path,
                          CA_FILE_MAX);
            goto out_free;
        }
    }
    close(fd);
    *out = buf;
    *out_len = len;
    return 0;
out_free:
    OPENSSL_cleanse(buf, len);
    free(buf);
    close(fd);
    return ret;
}

/* ca_no_password refuses to prompt for a passphrase: an encrypted CA key is an error. */
static int ca_no_password(char *buf, int size, int rwflag, void *u)
{
    return 0;
}

/* ca_parse parses the PEM private key and certificate in `buf` into `ca`, checks that they
 * match and that the certificate may sign others. Returns 0 or -EINVAL/-ENOMEM with a message
 * naming `path`. */
static int ca_parse(struct ca *ca, const char *path, const uint8_t *buf, size_t len, char *err,
                    size_t errlen)
{
    const char *fix = "fix or move it away (mitmd never overwrites it)";
    BIO *bio;

    if (len > INT_MAX)
        return ca_errf(err, errlen, -EFBIG, "%s: too large", path);
    bio = BIO_new_mem_buf(buf, (int)len);
    if (bio == NULL)
        return ca_errf(err, errlen, -ENOMEM, "%s: out of memory", path);
    ca->key = PEM_read_bio_PrivateKey(bio, NULL, ca_no_password, NULL);
    BIO_free(bio);
    if (ca->key == NULL)
        return ca_errf(err, errlen, -EINVAL,
                       "%s: no usable PEM private key (%s); %s", path, ca_ssl_reason(), fix);

    bio = BIO_new_mem_buf(buf, (int)len);
    if (bio == NULL)
        return ca_errf(err, errlen, -ENOMEM, "%s: out of memory", path);
    ca->cert = PEM_read_bio_X509(bio, NULL, ca_no_password, NULL);
    BIO_free(bio);
    if (ca->cert == NULL)
        return ca_errf(err, errlen, -EINVAL, "%s: no usable PEM certificate (%s); %s", path,
                       ca_ssl_reason(), fix);
    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        ERR_clear_error();
        return ca_errf(err, errlen, -EINVAL,
                       "%s: private key does not match the certificate; %s", path, fix);
    }
    if (X509_check_ca(ca->cert) == 0)
        return ca_errf(err, errlen, -EINVAL, "%s: certificate is not a CA certificate; %s",
                       path, fix);
    return 0;
}

/* ca_new_key generates an ECDSA P-256 key. Returns NULL on allocation failure. */
static EVP_PKEY *ca_new_key(void)
{
    EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    EVP_PKEY *pkey = EVP_PKEY_new();

    if (ec == NULL || pkey == NULL || EC_KEY_generate_key(ec) != 1 ||
        EVP_PKEY_assign_EC_KEY(pkey, ec) != 1) {
        EC_KEY_free(ec);
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

static int ca_add_ext(X509 *x, int nid, void *value, int crit)
{
    return X509_add1_ext_i2d(x, nid, value, crit, X509V3_ADD_DEFAULT) == 1 ? 0 : -ENOMEM;
}

/* ca_build_cert makes the self-signed CA certificate for `key`: random positive 128-bit
 * serial, CN=mitmd O=mitmd, valid from a day before `now` for CA_VALIDITY_DAYS,
 * basicConstraints critical CA:TRUE, keyUsage critical keyCertSign+cRLSign, SKI. */
static X509 *ca_build_cert(EVP_PKEY *key, time_t now)
{
    uint8_t serial[16], ski[SHA_DIGEST_LENGTH];
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    ASN1_OCTET_STRING *skid = ASN1_OCTET_STRING_new();
    BIGNUM *bn = NULL;
    const ASN1_BIT_STRING *pub;
    int ok = 0;

    if (x == NULL || name == NULL || bc == NULL || ku == NULL || skid == NULL)
        goto out;
    randombytes_buf(serial, sizeof(serial));
    serial[0] &= 0x7f;
    serial[0] |= 0x40; /* positive and always 16 bytes long */
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        goto out;
    if (X509_set_version(x, X509_VERSION_3) != 1 ||
        X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                   (const uint8_t *)"mitmd", -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                   (const uint8_t *)"mitmd", -1, -1, 0) != 1 ||
        X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 ||
        X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, &now) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), CA_VALIDITY_DAYS, 0, &now) == NULL ||
        X509_set_pubkey(x, key) != 1)
        goto out;

    bc->ca = 0xff; /* ASN1_BOOLEAN true */
    if (ca_add_ext(x, NID_basic_constraints, bc, 1) != 0)
        goto out;
    if (ASN1_BIT_STRING_set_bit(ku, 5, 1) != 1 || /* keyCertSign, RFC 5280 §4.2.1.3 */
        ASN1_BIT_STRING_set_bit(ku, 6, 1) != 1 || /* cRLSign */
        ca_add_ext(x, NID_key_usage, ku, 1) != 0)
        goto out;
    pub = X509_get0_pubkey_bitstr(x); /* RFC 5280 §4.2.1.2 method (1) */
    if (pub == NULL)
        goto out;
    SHA1(ASN1_STRING_get0_data(pub), (size_t)ASN1_STRING_length(pub), ski);
    if (ASN1_OCTET_STRING_set(skid, ski, sizeof(ski)) != 1 ||
        ca_add_ext(x, NID_subject_key_identifier, skid, 0) != 0)
        goto out;
    if (X509_sign(x, key, EVP_sha256()) <= 0)
        goto out;
    ok = 1;
out:
    BN_free(bn);
    ASN1_OCTET_STRING_free(skid);
    ASN1_BIT_STRING_free(ku);
    BASIC_CONSTRAINTS_free(bc);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* ca_create makes a new CA and writes mitmd-ca.pem. Returns 0, -EEXIST if another process
 * created the file meanwhile (nothing written), or another -errno with a message. */
static int ca_create(const char *confdir, char *err, size_t errlen)
{
    EVP_PKEY *key = ca_new_key();
    X509 *cert = NULL;
    BIO *mem = NULL;
    const uint8_t *data;
    size_t len;
    int ret = -ENOMEM;

    if (key == NULL)
        goto out;
    cert = ca_build_cert(key, time(NULL));
    mem = BIO_new(BIO_s_mem());
    if (cert == NULL || mem == NULL)
        goto out;
    if (PEM_write_bio_PKCS8PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_X509(mem, cert) != 1 || BIO_mem_contents(mem, &data, &len) != 1)
        goto out;
    ret = ca_write_file_new(confdir, CA_FILE_KEY, data, len, 0600, err, errlen);
    /* the memory BIO is OPENSSL_free'd below, which wipes the key bytes */
out:
    if (ret == -ENOMEM)
        ca_errf(err, errlen, ret, "%s: cannot create a CA: %s", confdir, ca_ssl_reason());
    BIO_free(mem);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ret;
}

/* ca_write_public creates the missing public copies of the CA certificate. */
static int ca_write_public(const struct ca *ca, const char *confdir, char *err, size_t errlen)
{
    static const char *const names[] = {CA_FILE_CERT_PEM, CA_FILE_CERT_CER, CA_FILE_CERT_P12};
    char path[PATH_MAX];
    struct stat st;
    int ret = 0;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        BIO *mem = NULL;
        PKCS12 *p12 = NULL;
        uint8_t *p12_der = NULL;
        const uint8_t *data = NULL;
        size_t len = 0;
        int n;

        if (ca_path(path, sizeof(path), confdir, names[i]) != 0)
            return ca_errf(err, errlen, -ENAMETOOLONG, "%s: path too long", confdir);
        if (lstat(path, &st) == 0)
            continue;
        if (errno != ENOENT) {
            ret = -errno;
            return ca_errf(err, errlen, ret, "%s: %s", path, strerror(-ret));
        }
        ret = -ENOMEM;
        if (i == 0) {
            mem = BIO_new(BIO_s_mem());
            if (mem != NULL && PEM_write_bio_X509(mem, ca->cert) == 1 &&
                BIO_mem_contents(mem, &data, &len) == 1)
                ret = 0;
        } else if (i == 1) {
            data = ca->der;
            len = ca->der_len;
            ret = 0;
        } else {
            /* Certificate only, unencrypted bag (-1) so that any PKCS#12 reader accepts it;
             * empty password for the MAC, as mitmproxy's p12. */
            p12 = PKCS12_create("", NULL, NULL, ca->cert, NULL, 0, -1, 0, 0, 0);
            n = p12 != NULL ? i2d_PKCS12(p12, &p12_der) : -1;
            if (n > 0) {
                data = p12_der;
                len = (size_t)n;
                ret = 0;
            }
        }
        if (ret == 0) {
            ret = ca_write_file_new(confdir, names[i], data, len, 0644, err, errlen);
            if (ret == -EEXIST) /* a concurrent start wrote it */
                ret = 0;
        } else {
            ca_errf(err, errlen, ret, "%s: cannot encode: %s", path, ca_ssl_reason());
        }
        OPENSSL_free(p12_der);
        PKCS12_free(p12);
        BIO_free(mem);
        if (ret)
            return ret;
    }
    return 0;
}

/* ca_pick_mitmproxy switches `path` to the confdir's mitmproxy-ca.pem when there is no
 * mitmd-ca.pem but mitmproxy's CA is there (someone moving from mitmproxy keeps the CA their
 * clients trust). Returns 1 when it did, 0 when not, or -errno with a message. */
static int ca_pick_mitmproxy(const char *confdir, char *path, size_t cap, char *err,
                             size_t errlen)
{
    char mp[PATH_MAX];
    struct stat st;
    int ret;

    if (lstat(path, &st) == 0 || errno != ENOENT)
        return 0; /* mitmd's own CA file (or an error ca_read_file will report) */
    if (ca_path(mp, sizeof(mp), confdir, CA_FILE_MITMPROXY_KEY) != 0)
        return 0;
    if (lstat(mp, &st) == -1) {
        ret = -errno;
        if (ret == -ENOENT)
            return 0;
        return ca_errf(err, errlen, ret, "%s: %s", mp, strerror(-ret));
    }
    snprintf(path, cap, "%s", mp);
    return 1;
}

static int ca_ensure_dir(const char *confdir, char *err, size_t errlen)
{
    struct stat st;
    int ret;

    if (mkdir(confdir, 0700) == -1 && errno != EEXIST) {
        ret = -errno;
        return ca_errf(err, errlen, ret, "%s: cannot create directory: %s", confdir,
                       strerror(-ret));
    }
    if (stat(confdir, &st) == -1) {
        ret = -errno;
        return ca_errf(err, errlen, ret, "%s: %s", confdir, strerror(-ret));
    }
    if (!S_ISDIR(st.st_mode))
        return ca_errf(err, errlen, -ENOTDIR, "%s: not a directory", confdir);
    /* Whoever can write the confdir can swap the CA key or read a new one being created. */
    if ((st.st_mode & 022) != 0)
        return ca_errf(err, errlen, -EPERM,
                       "%s: the confdir is writable by group or others (mode %04o); refusing to "
                       "keep a CA key there: chmod go-w %s",
                       confdir, (unsigned)(st.st_mode & 07777), confdir);
    return 0;
}

int ca_load_or_create(const char *confdir, struct ca **out, char *err, size_t errlen)
{
    char path[PATH_MAX];
    struct ca *ca;
    uint8_t *buf = NULL;
    size_t len = 0;
    int ret, attempts = 0, der_len;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    ret = ca_ensure_dir(confdir, err, errlen);
    if (ret)
        return ret;
    ca = calloc(1, sizeof(*ca));
    if (ca == NULL)
        return ca_errf(err, errlen, -ENOMEM, "out of memory");
    /* the .p12 name is the longest: if it fits, every file name fits */
    if (ca_path(path, sizeof(path), confdir, CA_FILE_CERT_P12) != 0) {
        ret = ca_errf(err, errlen, -ENAMETOOLONG, "%s: path too long", confdir);
        goto out_free;
    }
    ca_path(path, sizeof(path), confdir, CA_FILE_KEY);
    ca_path(ca->cert_path, sizeof(ca->cert_path), confdir, CA_FILE_CERT_PEM);
    ret = ca_pick_mitmproxy(confdir, path, sizeof(path), err, errlen);
    if (ret < 0)
        goto out_free;
    ca->from_mitmproxy = ret == 1;

    for (;;) {
        ret = ca_read_file(path, &buf, &len, err, errlen);
        if (ret != -ENOENT)
            break;
        if (attempts++ > 0) /* created then vanished: someone is deleting it */
            break;
        ret = ca_create(confdir, err, errlen);
        if (ret != 0 && ret != -EEXIST)
            goto out_free;
        ca->created = ret == 0;
    }
    if (ret == -ENOENT)
        ca_errf(err, errlen, ret, "%s: disappeared while being created", path);
    if (ret)
        goto out_free;
    ret = ca_parse(ca, path, buf, len, err, errlen);
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (ret)
        goto out_free;
    if (ca->from_mitmproxy)
        log_info("using mitmproxy's CA %s (the confdir has no %s), so clients that trust it "
                 "keep working", path, CA_FILE_KEY);

    ret = ca_time_to_posix(X509_get0_notAfter(ca->cert), &ca->not_after);
    if (ret) {
        ca_errf(err, errlen, ret, "%s: unreadable notAfter in the certificate", path);
        goto out_free;
    }
    if (ca->not_after <= time(NULL)) {
        ret = ca_errf(err, errlen, -EKEYEXPIRED,
                      "%s: the CA certificate has expired; move it away to create a new one",
                      path);
        goto out_free;
    }
    der_len = i2d_X509(ca->cert, &ca->der);
    if (der_len <= 0) {
        ret = ca_errf(err, errlen, -ENOMEM, "%s: cannot encode the certificate", path);
        goto out_free;
    }
    ca->der_len = (size_t)der_len;
    ret = ca_write_public(ca, confdir, err, errlen);
    if (ret)
        goto out_free;
    *out = ca;
    return 0;
out_free:
    ca_free(ca);
    ERR_clear_error();
    return ret;
}

void ca_free(struct ca *ca)
{
    if (ca == NULL)
        return;
    EVP_PKEY_free(ca->key); /* BoringSSL wipes freed key material */
    X509_free(ca->cert);
    OPENSSL_free(ca->der);
    free(ca);
}

const uint8_t *ca_cert_der(const struct ca *ca, size_t *len)
{
    *len = ca->der_len;
    return ca->der;
}

time_t ca_not_after(const struct ca *ca)
{
    return ca->not_after;
}

const char *ca_cert_path(const struct ca *ca)
{
    return ca->cert_path;
}

bool ca_was_created(const struct ca *ca)
{
    return ca->created;
}

bool ca_is_mitmproxy(const struct ca *ca)
{
    return ca->from_mitmproxy;
}

X509 *ca_get0_cert(const struct ca *ca)
{
    return ca->cert;
}

EVP_PKEY *ca_get0_key(const struct ca *ca)
{
    return ca->key;
}
