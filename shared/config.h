/* config.h - the command line of `mitmd` and `mitmd --worker`, parsed into struct config.
 * Owns option names (mitmproxy's where mitmproxy has the option), defaults, value syntax and
 * validation of each value on its own. Master and workers parse the same argv (the master
 * expands CONFDIR/config.yaml into `--set` entries first), so a worker sees exactly the
 * master's options and never reads a file here. Allocates only inside config_parse (the
 * --resolve copies); config_dispose frees that. */
#ifndef MITMD_SHARED_CONFIG_H
#define MITMD_SHARED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "shared/mode_spec.h"

#define CONFIG_MAX_PATTERNS 64 /* --ignore-hosts, --allow-hosts and --resolve entries each */
#define CONFIG_TLS_LOWEST 0x0301  /* tls_version_*: TLS 1.0, BoringSSL's lowest (UNBOUNDED min) */
#define CONFIG_TLS_DEFAULT 0x0303 /* TLS 1.2: tls_version_*_min's default, as mitmproxy's */
#define CONFIG_TLS_HIGHEST 0x0304 /* TLS 1.3, BoringSSL's highest (UNBOUNDED max, the default) */
#define CONFIG_UPSTREAM_AUTH_MAX 512 /* --upstream-auth USER:PASS bytes */
#define CONFIG_MAX_MODES 16          /* --mode given at most this many times */
#define CONFIG_MODE_MAX_ADDRS 8      /* listening sockets of one mode (a name's addresses) */

/* Listening sockets a worker inherits across exec (master/listen.c opens them,
 * master/supervise.c places them, worker/worker.c serves them): address `addr` of mode `mode`
 * (in --mode order; the addresses its listen host resolved to) is at this descriptor. The
 * first one is at fd 4, as before several listeners; the others from 16 on. */
#define CONFIG_LISTEN_FD_FIRST 4
#define CONFIG_LISTEN_FD_MORE 16
static inline int config_listen_fd(int mode, int addr)
{
    return mode == 0 && addr == 0 ? CONFIG_LISTEN_FD_FIRST
                                  : CONFIG_LISTEN_FD_MORE + mode * CONFIG_MODE_MAX_ADDRS + addr;
}

/* POSIX regcomp flags a worker compiles --ignore-hosts/--allow-hosts with; the master's
 * start-up check (master/preflight.c) compiles them with the same flags. */
#define CONFIG_HOSTS_REGEX_FLAGS (REG_EXTENDED | REG_ICASE | REG_NOSUB)

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

/* Strings marked "borrowed" point into argv (or are static defaults) and live as long as it. */
struct config {
    enum config_mode mode;
    int worker_id;          /* CONFIG_MODE_WORKER */
    char **cert_names;      /* CONFIG_MODE_CERT: borrowed from argv */
    int n_cert_names;

    char confdir[4096];     /* confdir: --confdir, default ~/.mitmd */
    char listen_host[256];  /* listen_host: --listen-host, default 127.0.0.1; address or name */
    uint16_t listen_port;   /* listen_port: -p/--listen-port, default 8080; 0 = any free port */
    int workers;            /* workers: --workers, default: config_usable_cpus() */
    int cert_cache_mb;      /* cert_cache_mb: --cert-cache-mb, default 64 */
    bool quiet;             /* quiet: -q (also flow_detail=0) */
    bool verbose;           /* verbose: -v (also termlog_verbosity=debug) */
    const char *flow_file;  /* save_stream_file: -w (borrowed; a leading '+' is dropped), NULL */
    bool ssl_insecure;      /* ssl_insecure: -k/--ssl-insecure */
    bool websocket;         /* websocket (default true): a 101 to WebSocket is relayed as
                             * WebSocket (messages counted); false: as opaque bytes */
    bool validate_inbound_headers;   /* validate_inbound_headers: true only (always validated) */
    bool normalize_outbound_headers; /* normalize_outbound_headers: true only */
    bool websocket_message_lines; /* websocket_message_lines (mitmd's own): a console line per
                                   * WebSocket message, as mitmdump prints them */
    bool proxy_protocol;    /* proxy_protocol: --set proxy_protocol (mitmd's own): connections
                             * start with a PROXY v1/v2 header (worker/proxy_hdr) */
    const char *metrics_listen; /* metrics_listen: --set metrics_listen=HOST:PORT (mitmd's own,
                                 * borrowed): the master's /metrics and /healthz; NULL = off */
    const char *upstream_ca;/* ssl_verify_upstream_trusted_ca: --upstream-ca FILE (borrowed) */
    bool add_upstream_certs;     /* add_upstream_certs_to_client_chain */
    const char *upstream_ca_dir; /* ssl_verify_upstream_trusted_confdir (borrowed), NULL */
    bool http2;             /* http2: --http2/--no-http2, default true */
    int connect_timeout_s;  /* connect_timeout: --connect-timeout, default 10 */
    int handshake_timeout_s;/* handshake_timeout: --handshake-timeout, default 10 */
    int idle_timeout_s;     /* idle_timeout: --idle-timeout, default 60 */
    int request_timeout_s;  /* request_timeout: --request-timeout (request head), default 30 */
    int shutdown_timeout_s; /* shutdown_timeout: --shutdown-timeout, drain bound, default 30 */
    size_t max_header_size; /* max_header_size: --max-header-size, default 65536 */
    int max_conns;          /* max_conns: --max-conns per worker, default 4096 */
    const char *ciphers_client; /* ciphers_client: TLS 1.2 suites offered to clients (OpenSSL
                                 * cipher string, borrowed); NULL = mitmd's AEAD-only default */
    const char *ciphers_server; /* ciphers_server: the same towards upstreams; NULL = default */
    /* tls_version_client_min/max (connections with clients) and tls_version_server_min/max
     * (connections with upstream servers), mitmproxy's options, as protocol numbers (0x0301
     * TLS 1.0 ... 0x0304 TLS 1.3): UNBOUNDED is stored as CONFIG_TLS_LOWEST for a minimum
     * and CONFIG_TLS_HIGHEST for a maximum. Defaults: TLS 1.2 to TLS 1.3, both sides. */
    uint16_t tls_version_client_min, tls_version_client_max;
    uint16_t tls_version_server_min, tls_version_server_max;
    const char *user;       /* user: --user, unprivileged user workers drop to when started as
                             * root (borrowed or static), default "nobody" */

    const char *ignore_hosts[CONFIG_MAX_PATTERNS]; /* ignore_hosts: --ignore-hosts (borrowed) */
    int n_ignore_hosts;
    const char *allow_hosts[CONFIG_MAX_PATTERNS];  /* allow_hosts: --allow-hosts (borrowed) */
    /* proxy_protocol_listeners: the --mode specs (full_spec as given) whose listeners read a
     * PROXY header, when proxy_protocol (all of them) is off (borrowed) */
    const char *proxy_protocol_listeners[CONFIG_MAX_PATTERNS];
    int n_proxy_protocol_listeners;
    int n_allow_hosts;
    struct config_resolve resolve[CONFIG_MAX_PATTERNS]; /* resolve: --resolve (owned) */
    int n_resolve;

    /* modes (worker/modes): one listener (one socket per address of its host) per mode */
    struct mode_spec modes[CONFIG_MAX_MODES]; /* mode: -m/--mode SPEC, repeatable; without any
                                               * --mode, modes[0] is regular */
    int n_modes;                 /* >= 1 after config_parse */
    struct mode_spec proxy_mode; /* a copy of modes[0], for code that knows one mode only;
                                  * a connection's own mode is c->mode (worker/modes.h) */
    bool keep_host_header;       /* keep_host_header: reverse mode keeps the client's Host */
    /* connect_addr: --set connect_addr=IP, the local address of every upstream connection
     * (numeric IPv4 or IPv6, parsed at start), port 0; connect_addr_len 0 when unset */
    struct sockaddr_storage connect_addr;
    socklen_t connect_addr_len;
    const char *rfile;           /* rfile: -r, a -w recording to read first (borrowed), NULL */
    const char *readfile_filter; /* readfile_filter: -r reads only matching flows, NULL */
    bool keepserving;            /* keepserving: after -r, go on proxying */
    bool server;                 /* server: run the proxy (default true; -n, --no-server) */
    bool showhost;  /* showhost: --showhost, flow lines show the Host field's authority */
    bool anticache; /* anticache: --anticache, requests lose If-Modified-Since, If-None-Match */
    bool anticomp;  /* anticomp: --anticomp, requests get Accept-Encoding: identity */
    const char *upstream_auth;   /* upstream_auth: --upstream-auth USER:PASS (borrowed), NULL */
    /* access control (shared/proxyauth, worker/access) */
    const char *proxyauth;       /* proxyauth: --proxyauth USER:PASS|@FILE|any (borrowed), NULL */
    const char *proxyauth_file;  /* proxyauth_file: the master's copy of @FILE for the workers
                                  * (/dev/fd/N, borrowed), NULL */
    bool block_global;           /* block_global: refuse clients from global addresses (true) */
    bool block_private;          /* block_private: refuse clients from private addresses */
    /* flow filters and rules (worker/flowfilter.h, worker/rules.h); all borrowed from argv */
    const char *view_filter;        /* dumper_filter, or the positional filter: which flow
                                     * lines are printed; NULL = all */
    const char *save_stream_filter; /* save_stream_filter: which records -w writes; NULL = all
                                     * (the positional filter sets it too, as in mitmdump) */
    const char *modify_headers[CONFIG_MAX_PATTERNS]; /* modify_headers: --modify-headers */
    int n_modify_headers;
    const char *map_remote[CONFIG_MAX_PATTERNS];     /* map_remote: --map-remote */
    int n_map_remote;
    const char *block_list[CONFIG_MAX_PATTERNS];     /* block_list */
    int n_block_list;
    const char *inject_latency[CONFIG_MAX_PATTERNS]; /* inject_latency (mitmd's own) */
    int n_inject_latency;
    const char *inject_error[CONFIG_MAX_PATTERNS];   /* inject_error (mitmd's own) */
    int n_inject_error;
    const char *inject_fault[CONFIG_MAX_PATTERNS];   /* inject_fault (mitmd's own) */
    int n_inject_fault;
    const char *map_local[CONFIG_MAX_PATTERNS];      /* map_local: --map-local */
    int n_map_local;
    const char *modify_body[CONFIG_MAX_PATTERNS];    /* modify_body: --modify-body */
    int n_modify_body;
    const char *body_size_limit;                     /* body_size_limit: "3m"; NULL = 1m */
    const char *stream_large_bodies; /* stream_large_bodies: "1m"; bodies above it are never
                                      * buffered for modify_body (mitmd streams every body) */
    /* certificates and onboarding (certcache/certstore.h, worker/onboarding.h); borrowed */
    const char *certs[CONFIG_MAX_PATTERNS]; /* certs: --certs [DOMAIN=]FILE */
    int n_certs;
    const char *client_certs;    /* client_certs: FILE or DIR of HOST.pem, NULL = none */
    bool onboarding;             /* onboarding: serve http://onboarding_host/ (default true) */
    const char *onboarding_host; /* onboarding_host, default "mitm.it" */
    uint16_t onboarding_port;    /* onboarding_port, default 80 */
    const char *certs_bundle;    /* certs_bundle: internal, the master's memfd for workers */
    char *_filter_args;     /* the positional filter words joined by spaces (owned) */
    /* record and replay (worker/flow_body.h, shared/har.h, worker/replay.h) */
    size_t save_bodies;             /* save_bodies: body bytes kept in -w / HAR; 0 = none */
    const char *hardump;            /* hardump: HAR 1.2 file (borrowed), NULL = none */
    const char *client_replay;      /* client_replay: -C FILE, requests to send (borrowed) */
    int client_replay_concurrency;  /* 1: one request in flight at a time */
    const char *server_replay;      /* server_replay: -S FILE, a -w recording (borrowed) */
    const char *server_replay_extra; /* forward (NULL), kill or a status */
    bool server_replay_reuse;       /* server_replay_reuse / server_replay_nopop */
    bool server_replay_ignore_content;
    bool server_replay_ignore_host;
    bool server_replay_ignore_port;
    const char *server_replay_ignore_params[CONFIG_MAX_PATTERNS];
    int n_server_replay_ignore_params;
    const char *server_replay_use_headers[CONFIG_MAX_PATTERNS]; /* match on these fields too */
    int n_server_replay_use_headers;
    const char *server_replay_ignore_payload_params[CONFIG_MAX_PATTERNS]; /* form keys left out */
    int n_server_replay_ignore_payload_params;
    bool server_replay_refresh; /* shift Date/Expires/Last-Modified/cookie expiry (default on) */
    bool server_replay_kill_extra; /* mitmproxy's deprecated server_replay_extra=kill */

    uint64_t _given[2];     /* options given in argv, by table index (config_was_given) */
};

/* config_parse fills `cfg` from argv (argv[0] is the program). Options may come before or
 * after the word `cert` (`mitmd --confdir D cert NAME`). Every option has a `--set NAME=VALUE`
 * form with mitmproxy's underscore name; list options (ignore_hosts, allow_hosts, resolve)
 * append, and a bare `--set NAME` empties them. Strings marked borrowed stay pointers into
 * argv. Returns 0, or -EINVAL with `err` holding a one-line message that names the offending
 * option and value (the caller prints it and exits 2), or -ENOMEM. Allocates the --resolve
 * copies; call config_dispose on success and on failure. Reads no file. */
int config_parse(int argc, char **argv, struct config *cfg, char *err, size_t errlen);

/* config_dispose frees what config_parse allocated; safe on a zeroed or failed config. */
void config_dispose(struct config *cfg);

/* config_check_set checks one `NAME=VALUE` (or bare `NAME`) as `--set` would take it, without
 * keeping anything. Returns 0, or -EINVAL/-ENOMEM with a one-line message in `err`. Used for
 * config.yaml entries so that their errors can name the file and line. */
int config_check_set(const char *spec, char *err, size_t errlen);

/* config_is_list returns true if the --set name `name` is a list option (each value appends). */
bool config_is_list(const char *name);

/* config_was_given returns true if argv set the option whose --set name is `name`, by any of
 * its spellings (long, short, --no-, --set). False for an unknown name. */
bool config_was_given(const struct config *cfg, const char *name);

/* config_usable_cpus returns how many CPUs this process may run on (its affinity mask, so
 * taskset and cgroup cpusets count), or the online CPUs if the mask is unreadable; >= 1.
 * The default --workers. */
int config_usable_cpus(void);

/* config_usage writes the --help text to `out` (a FILE *): every option with its --set name,
 * config.yaml and the signals. */
void config_usage(void *out);

/* config_mode_listen_host returns where mode `i` (0 <= i < cfg->n_modes) listens: the host of
 * its "@HOST:PORT", else --listen-host (a name or an address, IPv6 possibly in brackets). */
const char *config_mode_listen_host(const struct config *cfg, int i);

/* config_mode_proxy_protocol returns whether connections on mode `i`'s listener start with a
 * PROXY protocol header: proxy_protocol (every listener) or proxy_protocol_listeners. */
bool config_mode_proxy_protocol(const struct config *cfg, int i);

/* config_mode_listen_port returns the port of mode `i`'s "@PORT", else --listen-port when it was
 * given (0: the kernel picks a free port), else the mode's default (mode_spec_default_port:
 * socks5 1080, the others 8080), as mitmproxy 10. */
uint16_t config_mode_listen_port(const struct config *cfg, int i);

/* config_resolve_lookup returns the --resolve address for `host` (case-insensitive, first
 * matching pattern wins), or NULL when no pattern matches. Never allocates. */
const char *config_resolve_lookup(const struct config *cfg, const char *host);

#endif
