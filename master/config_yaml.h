/* config_yaml.h - CONFDIR/config.yaml (mitmproxy's format: option names as keys, scalars and
 * lists as values) turned into `--set NAME=VALUE` arguments placed before the user's own.
 * Owns the expanded argv it builds. Called by main() for the master and `mitmd cert` only:
 * workers get the expanded argv and never read the confdir. Blocks on one file read. */
#ifndef MITMD_MASTER_CONFIG_YAML_H
#define MITMD_MASTER_CONFIG_YAML_H

#include <stddef.h>

#include "shared/config.h"

#define CONFIG_YAML_FILE "config.yaml"

/* struct config_yaml_args is an argv built by config_yaml_expand: argv[0], the config.yaml
 * entries as `--set NAME=VALUE` pairs, then the user's argv[1..], NULL-terminated. */
struct config_yaml_args {
    int argc;
    char **argv;
    int n_added;  /* how many entries config.yaml added (2 per value) */
    char **owned; /* the added strings, n_added of them (getopt may permute argv) */
};

/* config_yaml_expand reads `confdir`/config.yaml if it exists and fills `out` (dispose with
 * config_yaml_args_dispose, also after a failure). Entries for options that the user's
 * command line already gave (`given`, parsed from the same argv) are left out, so the
 * command line wins for lists too. Every entry is checked with config_check_set. Returns 0
 * (no file: `out` is a copy of argv), or -EINVAL/-errno with a one-line message in `err`
 * naming the file and line (unknown option, bad value, a key that is not a scalar or list of
 * scalars, YAML syntax, unreadable file). Allocates. */
int config_yaml_expand(const char *confdir, const struct config *given, int argc, char **argv,
                       struct config_yaml_args *out, char *err, size_t errlen);

/* config_yaml_args_dispose frees what config_yaml_expand allocated; safe on a zeroed one. */
void config_yaml_args_dispose(struct config_yaml_args *a);

#endif
