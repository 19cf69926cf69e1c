/* preflight.h - the master's start-up check of everything a worker will load or compile, so
 * that a bad option stops mitmd once, with its cause, before it says "listening" (instead of
 * workers crash-looping). Owns no state. Called by main() for the proxy only, before
 * master_run; never starts a worker or binds a socket. */
#ifndef MITMD_MASTER_PREFLIGHT_H
#define MITMD_MASTER_PREFLIGHT_H

#include <stddef.h>

#include "shared/config.h"

/* preflight_check loads or compiles, as a worker will: --upstream-ca (exists, readable, at
 * least one PEM certificate, parsed by BoringSSL as the worker's TLS context does),
 * --ignore-hosts/--allow-hosts (POSIX regcomp with CONFIG_HOSTS_REGEX_FLAGS), -w FILE (its
 * directory exists and the file opens for append; a missing file is created, mode 0600, as
 * it holds decrypted traffic), ciphers_client/ciphers_server (BoringSSL's strict cipher-list
 * parser), --proxyauth (not with reverse or transparent mode; an @FILE exists, is readable and every line is a supported htpasswd
 * entry), --listen-host (resolves) and, when run as root, --user (exists). Returns 0, or
 * -errno/-EINVAL with `err` holding one line that names the option, its value and the real
 * cause (e.g. "--upstream-ca /nope.pem: No such file or directory"); the caller exits 2.
 * Blocks on file I/O and DNS; allocates only temporarily. */
int preflight_check(const struct config *cfg, char *err, size_t errlen);

#endif
