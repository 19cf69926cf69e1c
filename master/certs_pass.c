/* certs_pass.c - see certs_pass.h. */
#include "master/certs_pass.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "certcache/certstore.h"
#include "master/ca.h"
#include "master/supervise.h"
#include "shared/log.h"
#include "shared/memfd_copy.h"

int certs_pass_check(const struct config *cfg, char *err, size_t errlen)
{
    struct certstore s = {0};
    int e;

    if (cfg->certs_bundle != NULL) {
        snprintf(err, errlen, "--certs-bundle is set by mitmd for its workers; use --certs and "
                              "--set client_certs");
        return -EINVAL;
    }
    e = certstore_load_config(&s, cfg, err, errlen);

    certstore_dispose(&s);
    return e;
}

/* add_confdir_file adds confdir/name as the onboarding file `tag`; a missing file is skipped
 * (the page then answers 404 for it). Returns 0 or -ENOMEM. */
static int add_confdir_file(struct certstore *s, const char *confdir, const char *name,
                            const char *tag)
{
    char path[4200];
    uint8_t buf[65536];
    size_t len = 0;
    ssize_t r;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", confdir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        log_warn("onboarding: %s: %s (not served)", path, strerror(errno));
        return 0;
    }
    while (len < sizeof(buf) && ((r = read(fd, buf + len, sizeof(buf) - len)) > 0 ||
                                 (r == -1 && errno == EINTR)))
        if (r > 0)
            len += (size_t)r;
    close(fd);
    return certstore_add_file(s, tag, buf, len) == -ENOMEM ? -ENOMEM : 0;
}

int certs_pass_open(struct supervise *sup, const struct config *cfg)
{
    struct certstore s = {0};
    uint8_t *bundle = NULL;
    size_t len = 0;
    char err[1024];
    int e, fd;

    e = certstore_load_config(&s, cfg, err, sizeof(err));
    if (e) {
        log_error("%s", err);
        goto out_dispose;
    }
    if (cfg->onboarding && ((e = add_confdir_file(&s, cfg->confdir, CA_FILE_CERT_PEM, "pem")) ||
                            (e = add_confdir_file(&s, cfg->confdir, CA_FILE_CERT_P12, "p12")) ||
                            (e = add_confdir_file(&s, cfg->confdir, CA_FILE_CERT_CER, "cer")))) {
        log_error("onboarding: out of memory");
        goto out_dispose;
    }
    if (s.n == 0)
        goto out_dispose;
    e = certstore_encode(&s, &bundle, &len);
    if (e) {
        log_error("--certs: cannot encode the certificates for the workers: %s", strerror(-e));
        goto out_dispose;
    }
    fd = memfd_sealed_bytes("mitmd-certs", bundle, len);
    if (fd < 0) {
        e = fd;
        log_error("--certs: cannot copy the certificates for the workers: %s", strerror(-e));
        goto out_dispose;
    }
    e = supervise_pass_fd(sup, fd, "--certs-bundle");
    if (e)
        log_error("--certs: cannot pass the certificates to the workers: %s", strerror(-e));
out_dispose:
    certstore_free_bundle(bundle, len);
    certstore_dispose(&s);
    return e;
}
