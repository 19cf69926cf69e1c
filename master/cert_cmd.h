/* cert_cmd.h - `mitmd cert NAME...`: print a forged chain for NAMEs from the confdir's CA.
 * Owns nothing past the call: loads (or creates) the CA, forges one leaf, prints, frees.
 * Called by master/main.c only; never starts workers or touches the certcache. */
#ifndef MITMD_MASTER_CERT_CMD_H
#define MITMD_MASTER_CERT_CMD_H

#include <stdio.h>

/* cert_cmd_run loads the CA in `confdir` (creating it, as the proxy's first start would, if it
 * is missing, and then saying so in one line on `err`), forges a leaf for `names[0..n)` and
 * prints the chain in PEM to `out`: the leaf, then the CA certificate. Returns the process exit status: 0, or 1 after writing one line
 * starting with "mitmd cert: " to `err` (no name, invalid name, unusable CA, write error).
 * Blocks on file I/O; allocates. */
int cert_cmd_run(const char *confdir, int n, char **names, FILE *out, FILE *err);

#endif
