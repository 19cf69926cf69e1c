/* ca_dir.h - mitmproxy's ssl_verify_upstream_trusted_confdir: a directory of trusted CA
 * certificates (as `openssl rehash` / c_rehash prepare it) turned into one PEM bundle, with
 * the --upstream-ca file's certificates first, which the master hands to the workers as
 * their --upstream-ca (they may not open the directory). Owns the directory walk and the
 * bundle's limits. Called by master/preflight.c and master/master.c at start-up; blocking
 * file I/O; the bundle is heap memory the caller frees. */
#ifndef MITMD_MASTER_CA_DIR_H
#define MITMD_MASTER_CA_DIR_H

#include <stddef.h>
#include <stdint.h>

#define CA_DIR_MAX_BYTES (16u << 20) /* the whole bundle */
#define CA_DIR_MAX_FILE (1u << 20)   /* one file of the directory */

/* ca_dir_bundle builds the bundle: the bytes of `ca_file` (NULL: none), then every regular
 * file of `dir` (symbolic links followed, each file once however many links name it, in name
 * order) that holds a PEM certificate, each ending in a newline. Files without a certificate
 * (CRLs, notes) are left out. Returns 0 with `*out` (free() it) and `*len`, or -errno with
 * one line in `err`: the directory cannot be read, it holds no certificate, or the bundle
 * would exceed CA_DIR_MAX_BYTES. */
int ca_dir_bundle(const char *ca_file, const char *dir, uint8_t **out, size_t *len, char *err,
                  size_t errlen);

#endif
