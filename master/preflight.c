/* preflight.c - see preflight.h. */
#include "master/preflight.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "master/certs_pass.h"
#include "master/listen.h"
#include "master/ca_dir.h"
#include "shared/memfd_copy.h"
#include "shared/mode_spec.h"
#include "shared/proxyauth.h"
#include "worker/rules.h"

/* preflight_upstream_ca checks the --upstream-ca file the way worker/tls_ctx.c loads it;
 * messages name it as `label` (the option and its value). */
static int preflight_upstream_ca(const char *label, const char *path, char *err, size_t errlen)
{
    struct stat st;
    SSL_CTX *ctx;
    BIO *bio;
    X509 *x;
    int fd, e = 0, certs = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd == -1) {
        e = -errno;
        snprintf(err, errlen, "%s: %s", label, strerror(-e));
        return e;
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "%s: %s", label, strerror(EISDIR));
        return -EISDIR;
    }
    close(fd);
    bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        snprintf(err, errlen, "%s: cannot open", label);
        ERR_clear_error();
        return -EIO;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        certs++;
        X509_free(x);
    }
    BIO_free(bio);
    ERR_clear_error();
    if (certs == 0) {
        snprintf(err, errlen, "%s: no PEM certificate in it", label);
        return -EINVAL;
    }
    ctx = SSL_CTX_new(TLS_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "%s: out of memory", label);
        return -ENOMEM;
    }
    if (SSL_CTX_load_verify_locations(ctx, path, NULL) != 1) {
        uint32_t code = ERR_peek_last_error();
        const char *r = code != 0 ? ERR_reason_error_string(code) : NULL;

        snprintf(err, errlen, "%s: BoringSSL cannot load it (%s)", label,
                 r != NULL ? r : "unknown error");
        e = -EINVAL;
    }
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return e;
}

/* preflight_upstream_ca_dir builds the ssl_verify_upstream_trusted_confdir bundle as the
 * master will (master/ca_dir.h) and checks it as a worker will load it (/dev/fd/N). */
static int preflight_upstream_ca_dir(const struct config *cfg, char *err, size_t errlen)
{
    char label[PATH_MAX + 64], path[32];
    uint8_t *bundle = NULL;
    size_t len = 0;
    int e, fd;

    e = ca_dir_bundle(cfg->upstream_ca, cfg->upstream_ca_dir, &bundle, &len, err, errlen);
    if (e != 0)
        return e;
    fd = memfd_sealed_bytes("mitmd-upstream-ca-check", bundle, len);
    free(bundle);
    if (fd < 0) {
        snprintf(err, errlen, "ssl_verify_upstream_trusted_confdir: %s", strerror(-fd));
        return fd;
    }
    snprintf(path, sizeof(path), "/dev/fd/%d", fd);
    snprintf(label, sizeof(label), "ssl_verify_upstream_trusted_confdir %s",
             cfg->upstream_ca_dir);
    e = preflight_upstream_ca(label, path, err, errlen);
    close(fd);
    return e;
}

static int preflight_regexes(const char *opt, const char *const *pats, int n, char *err,
                             size_t errlen)
{
    for (int i = 0; i < n; i++) {
        char why[256];
        regex_t re;
        int rc = regcomp(&re, pats[i], CONFIG_HOSTS_REGEX_FLAGS);

        if (rc != 0) {
            regerror(rc, &re, why, sizeof(why));
            snprintf(err, errlen, "%s '%s': %s", opt, pats[i], why);
            return -EINVAL;
        }
        regfree(&re);
    }
    return 0;
}

/* preflight_flow_file opens -w FILE for append (creating it 0600), as the workers will. */
static int preflight_flow_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    int e;

    if (fd == -1) {
        e = -errno;
        snprintf(err, errlen, "-w %s: %s", path, strerror(-e));
        return e;
    }
    close(fd);
    return 0;
}

/* preflight_tls_versions checks that tls_version_SIDE_min is not above tls_version_SIDE_max
 * (protocol numbers, 0x0301 TLS1 ... 0x0304 TLS1_3). Returns 0 or -EINVAL. */
static int preflight_tls_versions(const char *side, uint16_t min, uint16_t max, char *err,
                                  size_t errlen)
{
    static const char *const names[] = {"TLS1", "TLS1_1", "TLS1_2", "TLS1_3"};

    if (min <= max)
        return 0;
    snprintf(err, errlen, "--set tls_version_%s_min=%s is above tls_version_%s_max=%s", side,
             names[(min - CONFIG_TLS_LOWEST) & 3], side, names[(max - CONFIG_TLS_LOWEST) & 3]);
    return -EINVAL;
}

static int preflight_ciphers(const char *name, const char *list, char *err, size_t errlen)
{
    SSL_CTX *ctx;
    int e = 0;

    if (list == NULL)
        return 0;
    ctx = SSL_CTX_new(TLS_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "--set %s: out of memory", name);
        return -ENOMEM;
    }
    if (SSL_CTX_set_strict_cipher_list(ctx, list) != 1) {
        snprintf(err, errlen, "--set %s=%s: not a cipher list BoringSSL accepts", name, list);
        e = -EINVAL;
    }
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return e;
}

int preflight_check(const struct config *cfg, char *err, size_t errlen)
{
    struct listen_set listeners;
    int e;

    if (cfg->upstream_ca != NULL) {
        char label[PATH_MAX + 32];

        snprintf(label, sizeof(label), "--upstream-ca %s", cfg->upstream_ca);
        e = preflight_upstream_ca(label, cfg->upstream_ca, err, errlen);
        if (e != 0)
            return e;
    }
    if (cfg->upstream_ca_dir != NULL) {
        e = preflight_upstream_ca_dir(cfg, err, errlen);
        if (e != 0)
            return e;
    }
    e = preflight_regexes("--ignore-hosts", cfg->ignore_hosts, cfg->n_ignore_hosts, err, errlen);
    if (e != 0)
        return e;
    e = preflight_regexes("--allow-hosts", cfg->allow_hosts, cfg->n_allow_hosts, err, errlen);
    if (e != 0)
        return e;
    e = rules_check(cfg, err, errlen); /* flow filters and rules, compiled as workers will */
    if (e != 0)
        return e;
    if (cfg->flow_file != NULL) {
        e = preflight_flow_file(cfg->flow_file, err, errlen);
        if (e != 0)
            return e;
    }
    e = certs_pass_check(cfg, err, errlen); /* --certs, client_certs (master/certs_pass.c) */
    if (e != 0)
        return e;
    if (cfg->proxyauth != NULL) { /* an @FILE is read and parsed as the workers will */
        struct proxyauth *a = NULL;

        e = proxyauth_load(cfg->proxyauth, &a, err, errlen);
        proxyauth_free(a);
        if (e != 0)
            return e;
    }
    e = preflight_ciphers("ciphers_client", cfg->ciphers_client, err, errlen);
    if (e != 0)
        return e;
    e = preflight_ciphers("ciphers_server", cfg->ciphers_server, err, errlen);
    if (e != 0)
        return e;
    e = preflight_tls_versions("client", cfg->tls_version_client_min,
                               cfg->tls_version_client_max, err, errlen);
    if (e != 0)
        return e;
    e = preflight_tls_versions("server", cfg->tls_version_server_min,
                               cfg->tls_version_server_max, err, errlen);
    if (e != 0)
        return e;
    e = listen_set_plan(cfg, &listeners, err, errlen); /* names resolve, no address twice */
    if (e != 0)
        return e;
    if (geteuid() == 0 && getpwnam(cfg->user) == NULL) {
        snprintf(err, errlen, "--user %s: no such user (workers started as root run as it)",
                 cfg->user);
        return -ENOENT;
    }
    return 0;
}
