/* certs_pass.h - the master's side of the operator's certificates (--certs, client_certs) and
 * the onboarding page's CA files: checked once at start (certs_pass_check, from preflight),
 * then loaded and handed to every worker as one bundle in a sealed memfd (certs_pass_open).
 * Master only; workers never open the operator's files (they may run as nobody under Landlock). */
#ifndef MITMD_MASTER_CERTS_PASS_H
#define MITMD_MASTER_CERTS_PASS_H

#include <stddef.h>

#include "shared/config.h"

struct supervise;

/* certs_pass_check loads every --certs and client_certs file of `cfg` as the workers will use
 * them (certificate, chain, key, key matches the leaf) and throws them away. Returns 0, or
 * -errno with one line in `err` naming the option, the file and the cause; the caller exits 2.
 * Blocks on file I/O; allocates temporarily. */
int certs_pass_check(const struct config *cfg, char *err, size_t errlen);

/* certs_pass_open loads the --certs and client_certs files and, when cfg->onboarding is on,
 * the CA files the onboarding page serves (mitmd-ca-cert.pem/.p12/.cer in the confdir), encodes
 * them (certcache/certstore.h) into a sealed memfd and passes it to every worker as
 * --certs-bundle /dev/fd/N (supervise_pass_fd). Does nothing when there is nothing to pass.
 * Returns 0 or -errno (logged, one line). The bundle holds private keys: the memfd is sealed,
 * close-on-exec except in workers, and the master's copies are wiped. Blocks; allocates. */
int certs_pass_open(struct supervise *sup, const struct config *cfg);

#endif
