/* config.h - the command line of `mitmd` and `mitmd --worker`, parsed into struct config.
 * Owns option names, defaults and validation. Master and workers parse the same argv, so
 * a worker sees exactly the master's options. Allocates only inside config_parse (the
 * pattern lists); config_dispose frees that. */
#ifndef MITMD_SHARED_CONFIG_H
#define MITMD_SHARED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_PATTERNS 64 /* --ignore-hosts and --resolve entries each */

/* struct config_resolve is one --resolve PATTERN=ADDRESS override. `pattern` is a host name
 * or a "*.suffix" wildcard (matching any name ending in ".suffix"), lower-cased. */
struct config_resolve {
    char *pattern;
    char *address; /* numeric IPv4 or IPv6 */
};

enum config_mode {
    CONFIG_MODE_PROXY = 0, /* master: run the proxy */
    CONFIG_MODE_WORKER,    /* `--worker ID`: run one worker (started by the master) */
    CONFIG_MODE_CERT,      /* `cert NAME...`: print a forged chain */
    CONFIG_MODE_HELP,      /* --help */
    CONFIG_MODE_VERSION,   /* --version */
};

struct config {
    enum config_mode mode;
    int worker_id;          /* CONFIG_MODE_WORKER */
    char **cert_names;      /* CONFIG_MODE_CERT: borrowed from argv */
    int n_cert_names;

    char confdir[4096];     /* --confdir, default ~/.mitmd */
    char listen_host[256];  /* --listen-host, default 127.0.0.1 */
    uint16_t listen_port;   /* -p/--listen-port, default 8080; 0 = any free port */
    int workers;            /* --workers, default: config_usable_cpus() */
    int cert_cache_mb;      /* --cert-cache-mb, default 64 */
    bool quiet;             /* -q */
    bool verbose;           /* -v */
    const char *flow_file;  /* -w/--save-stream-file (borrowed from argv), NULL = none */
    bool ssl_insecure;      /* -k */
    const char *upstream_ca;/* --upstream-ca FILE (borrowed), NULL = none */
    bool http2;             /* false with --no-http2 */
    int connect_timeout_s;  /* --connect-timeout, default 10 */
    int handshake_timeout_s;/* --handshake-timeout, default 10 */
    int idle_timeout_s;     /* --idle-timeout, default 60 */
    int request_timeout_s;  /* --request-timeout (request head), default 30 */
    size_t max_header_size; /* --max-header-size, default 65536 */
    int max_conns;          /* --max-conns per worker, default 4096 */

    const char *ignore_hosts[CONFIG_MAX_PATTERNS]; /* --ignore-hosts REGEX (borrowed) */
    int n_ignore_hosts;
    struct config_resolve resolve[CONFIG_MAX_PATTERNS]; /* --resolve (owned) */
    int n_resolve;
};

/* config_parse fills `cfg` from argv (argv[0] is the program). Strings marked borrowed stay
 * pointers into argv. Returns 0, or -EINVAL with `err` holding a one-line message that names
 * the offending option (the caller prints it and exits 2). Allocates the --resolve copies;
 * call config_dispose on success and on failure. */
int config_parse(int argc, char **argv, struct config *cfg, char *err, size_t errlen);

/* config_dispose frees what config_parse allocated; safe on a zeroed or failed config. */
void config_dispose(struct config *cfg);

/* config_usable_cpus returns how many CPUs this process may run on (its affinity mask, so
 * taskset and cgroup cpusets count), or the online CPUs if the mask is unreadable; >= 1.
 * The default --workers. */
int config_usable_cpus(void);

/* config_usage writes the --help text to `out` (a FILE *). */
void config_usage(void *out);

/* config_resolve_lookup returns the --resolve address for `host` (case-insensitive, first
 * matching pattern wins), or NULL when no pattern matches. Never allocates. */
const char *config_resolve_lookup(const struct config *cfg, const char *host);

#endif
