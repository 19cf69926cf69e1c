/* config.c - see config.h. One table (config_opts) names every option: its --set name
 * (mitmproxy's where mitmproxy has the option), its long and short forms, its type and
 * limits, and its --help line; parsing, `--set`, config_check_set and --help all read it. */
#include "shared/config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "shared/proxyauth.h"

enum config_type {
    CONFIG_T_BOOL = 0, /* bool; true/false/toggle, bare = true */
    CONFIG_T_INT,      /* int in [lo, hi] */
    CONFIG_T_PORT,     /* uint16_t in [lo, hi] */
    CONFIG_T_SIZE,     /* size_t in [lo, hi] */
    CONFIG_T_STR,      /* const char *, borrowed; bare --set NAME = NULL (none) */
    CONFIG_T_BUF,      /* char[hi], copied */
    CONFIG_T_LIST,     /* const char *[CONFIG_MAX_PATTERNS] at off, int count at count_off */
    CONFIG_T_SPECIAL,  /* handled by config_set_special */
};

/* struct config_opt is one option. Options with no `lopt` exist only as `--set NAME`. */
struct config_opt {
    const char *name;    /* --set and config.yaml name */
    const char *lopt;    /* long option without "--", or NULL */
    char sopt;           /* short option, or 0 */
    enum config_type type;
    size_t off, count_off;
    long lo, hi;
    const char *metavar; /* NULL for flags */
    const char *help;
};

#define F(field) offsetof(struct config, field)

static const struct config_opt config_opts[] = {
    {"confdir", "confdir", 0, CONFIG_T_BUF, F(confdir), 0, 1, sizeof(((struct config *)0)->confdir),
     "DIR", "CA and state directory, holds config.yaml (default ~/.mitmd)"},
    {"listen_host", "listen-host", 0, CONFIG_T_BUF, F(listen_host), 0, 1,
     sizeof(((struct config *)0)->listen_host), "HOST",
     "address or name to listen on (default 127.0.0.1; a name: each of its addresses)"},
    {"listen_port", "listen-port", 'p', CONFIG_T_PORT, F(listen_port), 0, 0, 65535, "PORT",
     "port to listen on (default: the mode's own, 8080, socks5 1080; 0 = pick a free port)"},
    {"workers", "workers", 0, CONFIG_T_INT, F(workers), 0, 1, 256, "N",
     "worker processes (default: usable CPUs)"},
    {"cert_cache_mb", "cert-cache-mb", 0, CONFIG_T_INT, F(cert_cache_mb), 0, 1, 4096, "N",
     "shared certificate cache size in MiB (default 64)"},
    {"quiet", "quiet", 'q', CONFIG_T_BOOL, F(quiet), 0, 0, 0, NULL,
     "do not print flow lines on stdout"},
    {"flow_detail", NULL, 0, CONFIG_T_SPECIAL, 0, 0, 0, 4, "0..4",
     "mitmproxy's flow detail: 0 = no flow lines (as -q), 1-4 = one line per flow"},
    {"verbose", "verbose", 'v', CONFIG_T_BOOL, F(verbose), 0, 0, 0, NULL,
     "debug logging on stderr"},
    {"termlog_verbosity", NULL, 0, CONFIG_T_SPECIAL, 0, 0, 0, 0, "LEVEL",
     "error, warn, info (default) or debug (as -v)"},
    {"save_stream_file", "save-stream-file", 'w', CONFIG_T_SPECIAL, F(flow_file), 0, 0, 0,
     "FILE", "append every exchange to FILE as JSON Lines (\"+FILE\" accepted, same)"},
    {"ssl_insecure", "ssl-insecure", 'k', CONFIG_T_BOOL, F(ssl_insecure), 0, 0, 0, NULL,
     "do not verify upstream certificates"},
    /* PROXY protocol (mitmd's own option; mitmproxy has none) */
    {"websocket", NULL, 0, CONFIG_T_BOOL, F(websocket), 0, 0, 0, "BOOL",
     "relay a 101 upgrade to WebSocket as WebSocket: messages counted, ~websocket matches\n"
     "        (default true; false relays it as opaque bytes, as mitmproxy's websocket=false)"},
    {"validate_inbound_headers", NULL, 0, CONFIG_T_BOOL, F(validate_inbound_headers), 0, 0, 0,
     "BOOL", "true only: mitmd always refuses malformed requests (request smuggling)"},
    {"normalize_outbound_headers", NULL, 0, CONFIG_T_BOOL, F(normalize_outbound_headers), 0, 0,
     0, "BOOL", "true only: HTTP/2 field names mitmd sends are always lowercase"},
    {"websocket_message_lines", NULL, 0, CONFIG_T_BOOL, F(websocket_message_lines), 0, 0, 0,
     "BOOL", "print a line per WebSocket message, as mitmdump does (mitmd's own; default false)"},
    {"proxy_protocol", NULL, 0, CONFIG_T_BOOL, F(proxy_protocol), 0, 0, 0, "true|false",
     "every connection starts with a PROXY protocol v1/v2 header (from HAProxy or an L4 "
     "balancer); its client address is recorded; a connection without one is closed"},
    {"proxy_protocol_listeners", NULL, 0, CONFIG_T_LIST, F(proxy_protocol_listeners),
     F(n_proxy_protocol_listeners), 0, 0, "SPEC",
     "proxy_protocol on this listener only: its --mode SPEC as given (repeatable)"},
    /* operations (mitmd's own; master/metrics.h) */
    {"metrics_listen", NULL, 0, CONFIG_T_STR, F(metrics_listen), 0, 0, 0, "HOST:PORT",
     "serve Prometheus /metrics and /healthz from the master on HOST:PORT (default: off)"},
    {"add_upstream_certs_to_client_chain", NULL, 0, CONFIG_T_BOOL, F(add_upstream_certs), 0, 0,
     0, "BOOL", "serve the upstream server's certificates after the forged chain (default false)"},
    {"ssl_verify_upstream_trusted_confdir", NULL, 0, CONFIG_T_STR, F(upstream_ca_dir), 0, 0, 0,
     "DIR", "also trust the CA certificates in DIR upstream (PEM files, as c_rehash or\n"
     "        `openssl rehash` prepare it; read by the master at start)"},
    {"ssl_verify_upstream_trusted_ca", "upstream-ca", 0, CONFIG_T_STR, F(upstream_ca), 0, 0, 0,
     "FILE", "also trust the CA certificates in FILE (PEM) upstream"},
    {"ignore_hosts", "ignore-hosts", 0, CONFIG_T_LIST, F(ignore_hosts), F(n_ignore_hosts), 0, 0,
     "REGEX", "pass matching hosts through untouched (repeatable)"},
    {"allow_hosts", "allow-hosts", 0, CONFIG_T_LIST, F(allow_hosts), F(n_allow_hosts), 0, 0,
     "REGEX", "intercept only matching hosts, pass the rest through (repeatable)"},
    {"resolve", "resolve", 0, CONFIG_T_SPECIAL, 0, 0, 0, 0, "PATTERN=ADDR",
     "resolve PATTERN (name or *.suffix) to ADDR (repeatable)"},
    {"http2", "http2", 0, CONFIG_T_BOOL, F(http2), 0, 0, 0, NULL,
     "negotiate HTTP/2 on both sides (default true; off: --no-http2)"},
    {"ciphers_client", NULL, 0, CONFIG_T_STR, F(ciphers_client), 0, 0, 0, "LIST",
     "TLS 1.2 cipher suites offered to clients, OpenSSL syntax (default: AEAD only)"},
    {"ciphers_server", NULL, 0, CONFIG_T_STR, F(ciphers_server), 0, 0, 0, "LIST",
     "TLS 1.2 cipher suites offered to upstreams, OpenSSL syntax (default: AEAD only)"},
    {"tls_version_client_min", NULL, 0, CONFIG_T_SPECIAL, F(tls_version_client_min), 0, 0, 0,
     "VERSION", "lowest TLS version accepted from clients: UNBOUNDED, SSL3, TLS1, TLS1_1, TLS1_2\n"
     "        (default) or TLS1_3 (below TLS1_2 needs a ciphers_client list with CBC suites)"},
    {"tls_version_client_max", NULL, 0, CONFIG_T_SPECIAL, F(tls_version_client_max), 0, 0, 0,
     "VERSION", "highest TLS version accepted from clients (default UNBOUNDED: TLS1_3)"},
    {"tls_version_server_min", NULL, 0, CONFIG_T_SPECIAL, F(tls_version_server_min), 0, 0, 0,
     "VERSION", "lowest TLS version offered to upstream servers (default TLS1_2; below it\n"
     "        needs a ciphers_server list with CBC suites)"},
    {"tls_version_server_max", NULL, 0, CONFIG_T_SPECIAL, F(tls_version_server_max), 0, 0, 0,
     "VERSION", "highest TLS version offered to upstream servers (default UNBOUNDED: TLS1_3)"},
    {"connection_strategy", NULL, 0, CONFIG_T_SPECIAL, 0, 0, 0, 0, "eager",
     "mitmd always connects upstream at once (eager); lazy is refused"},
    {"upstream_cert", NULL, 0, CONFIG_T_SPECIAL, 0, 0, 0, 0, "true",
     "mitmd always copies names from the upstream certificate; false is refused"},
    {"connect_timeout", "connect-timeout", 0, CONFIG_T_INT, F(connect_timeout_s), 0, 1, 86400,
     "S", "upstream TCP connect timeout (default 10)"},
    {"handshake_timeout", "handshake-timeout", 0, CONFIG_T_INT, F(handshake_timeout_s), 0, 1,
     86400, "S", "TLS handshake timeout, each side (default 10)"},
    {"idle_timeout", "idle-timeout", 0, CONFIG_T_INT, F(idle_timeout_s), 0, 1, 86400, "S",
     "close connections idle this long (default 60)"},
    {"request_timeout", "request-timeout", 0, CONFIG_T_INT, F(request_timeout_s), 0, 1, 86400,
     "S", "time allowed for a request head (default 30)"},
    {"shutdown_timeout", "shutdown-timeout", 0, CONFIG_T_INT, F(shutdown_timeout_s), 0, 0,
     86400, "S", "on reload or stop, let exchanges in flight finish this long (default 30)"},
    {"max_header_size", "max-header-size", 0, CONFIG_T_SIZE, F(max_header_size), 0, 1024,
     1 << 20, "BYTES", "largest request/response head (default 65536)"},
    {"max_conns", "max-conns", 0, CONFIG_T_INT, F(max_conns), 0, 1, 1 << 20, "N",
     "client connections per worker (default 4096)"},
    {"user", "user", 0, CONFIG_T_STR, F(user), 0, 0, 0, "NAME",
     "when started as root, workers run as this user (default nobody)"},
    /* modes (worker/modes, shared/mode_spec) */
    {"mode", "mode", 'm', CONFIG_T_SPECIAL, F(modes), 0, 0, 0, "SPEC",
     "regular (default), socks5, reverse:http[s]://HOST[:PORT], upstream:http://HOST:PORT\n"
     "        or transparent, optionally @[HOST:]PORT (else --listen-host and -p or the\n"
     "        mode's default port); repeatable:\n"
     "        one listener per --mode (--mode regular@8080 --mode socks5@1080)"},
    {"upstream_auth", "upstream-auth", 0, CONFIG_T_SPECIAL, F(upstream_auth), 0, 0, 0,
     "USER:PASS", "upstream mode: Basic credentials for the next proxy"},
    /* access control (shared/proxyauth, worker/access) */
    {"proxyauth", "proxyauth", 0, CONFIG_T_SPECIAL, F(proxyauth), 0, 0, 0, "SPEC",
     "require proxy authentication: USER:PASS, @FILE (htpasswd: bcrypt, SHA1, APR1) or any"},
    {"proxyauth_file", "proxyauth-file", 0, CONFIG_T_STR, F(proxyauth_file), 0, 0, 0, "PATH",
     "(internal) where workers read the master's copy of the --proxyauth @FILE"},
    {"block_global", NULL, 0, CONFIG_T_BOOL, F(block_global), 0, 0, 0, "BOOL",
     "refuse clients from globally routable addresses (default true; loopback always passes)"},
    {"block_private", NULL, 0, CONFIG_T_BOOL, F(block_private), 0, 0, 0, "BOOL",
     "refuse clients from private addresses (default false; loopback always passes)"},
    {"connect_addr", NULL, 0, CONFIG_T_SPECIAL, F(connect_addr), 0, 0, 0, "IP",
     "local address of every upstream connection (numeric IPv4 or IPv6; default: the\n"
     "        kernel's choice)"},
    {"anticache", "anticache", 0, CONFIG_T_BOOL, F(anticache), 0, 0, 0, NULL,
     "remove If-Modified-Since and If-None-Match from requests (no 304 answers)"},
    {"anticomp", "anticomp", 0, CONFIG_T_BOOL, F(anticomp), 0, 0, 0, NULL,
     "send Accept-Encoding: identity on every request (uncompressed answers)"},
    {"showhost", "showhost", 0, CONFIG_T_BOOL, F(showhost), 0, 0, 0, NULL,
     "flow lines show URLs with the Host field's (or :authority's) host, not the target's"},
    {"keep_host_header", NULL, 0, CONFIG_T_BOOL, F(keep_host_header), 0, 0, 0, "BOOL",
     "reverse mode: keep the client's Host (mitmproxy's default false: the server's name)"},
    /* flow filters and rules (worker/flowfilter.h, worker/rules.h); checked at start-up */
    {"rfile", "rfile", 'r', CONFIG_T_STR, F(rfile), 0, 0, 0, "PATH",
     "read the flows of a -w recording (or mitmproxy's flow file): print their lines (and -w\n"
     "        the ones it keeps), then exit, or go on proxying with --keepserving"},
    {"readfile_filter", NULL, 0, CONFIG_T_STR, F(readfile_filter), 0, 0, 0, "FILTER",
     "-r reads only the flows matching FILTER"},
    {"keepserving", "keepserving", 0, CONFIG_T_BOOL, F(keepserving), 0, 0, 0, NULL,
     "after -r, go on proxying (default: exit once the file is read), and with -S go on\n"
     "        once every recorded response is used (default: stop then, as mitmdump)"},
    {"server", "server", 0, CONFIG_T_BOOL, F(server), 0, 0, 0, NULL,
     "run the proxy (default true; -n, --no-server: with -r, only read the file)"},
    {"dumper_filter", NULL, 0, CONFIG_T_STR, F(view_filter), 0, 0, 0, "FILTER",
     "print only the flow lines matching FILTER (also: FILTER as the last arguments)"},
    {"save_stream_filter", NULL, 0, CONFIG_T_STR, F(save_stream_filter), 0, 0, 0, "FILTER",
     "-w writes only the flows matching FILTER (the positional filter sets it too)"},
    {"modify_headers", "modify-headers", 0, CONFIG_T_LIST, F(modify_headers),
     F(n_modify_headers), 0, 0, "[/FILTER]/NAME/[@]VALUE",
     "set header NAME to VALUE (@FILE: read it; empty: remove) on matching flows"},
    {"map_remote", "map-remote", 0, CONFIG_T_LIST, F(map_remote), F(n_map_remote), 0, 0,
     "[|FILTER]|REGEX|REPLACEMENT", "rewrite matching request URLs (Python re.sub syntax)"},
    {"block_list", NULL, 0, CONFIG_T_LIST, F(block_list), F(n_block_list), 0, 0,
     "/FILTER/STATUS", "answer matching requests STATUS without contacting the upstream "
     "(444: close)"},
    {"inject_latency", NULL, 0, CONFIG_T_LIST, F(inject_latency), F(n_inject_latency), 0, 0,
     "/FILTER/DELAY[~JITTER]", "hold matching requests DELAY (250ms, 2s; +- JITTER) first"},
    {"inject_error", NULL, 0, CONFIG_T_LIST, F(inject_error), F(n_inject_error), 0, 0,
     "/FILTER/STATUS[@PERCENT]", "answer STATUS instead of the upstream (PERCENT of matches)"},
    {"inject_fault", NULL, 0, CONFIG_T_LIST, F(inject_fault), F(n_inject_fault), 0, 0,
     "/FILTER/PERCENT/ACTION", "for PERCENT of matching requests: a STATUS, reset or stall"},
    /* record and replay (worker/flow_body, shared/har, worker/replay) */
    {"save_bodies", NULL, 0, CONFIG_T_SIZE, F(save_bodies), 0, 0, 1 << 20, "SIZE",
     "-w and hardump keep bodies up to SIZE bytes (64k, 1m at most), base64; 0 = none"},
    {"hardump", "hardump", 0, CONFIG_T_STR, F(hardump), 0, 0, 0, "FILE",
     "write every flow to FILE as HAR 1.2, closed on stop (`mitmd har FILE` repairs a cut one)"},
    {"client_replay", "client-replay", 'C', CONFIG_T_STR, F(client_replay), 0, 0, 0, "FILE",
     "send the requests recorded in FILE (a -w recording, save_bodies for bodies, or\n"
     "        mitmproxy's flow file) to their servers, one at a time; stop once all are\n"
     "        answered (--keepserving: go on)"},
    {"client_replay_concurrency", NULL, 0, CONFIG_T_INT, F(client_replay_concurrency), 0, 1, 1,
     "1", "requests client replay has in flight: 1 (mitmproxy's default; -1 is refused)"},
    {"server_replay", "server-replay", 'S', CONFIG_T_STR, F(server_replay), 0, 0, 0, "FILE",
     "answer requests from the responses in FILE (a -w recording with save_bodies, or\n"
     "        mitmproxy's flow file); stop once all are used (--keepserving: go on)"},
    {"server_replay_extra", NULL, 0, CONFIG_T_STR, F(server_replay_extra), 0, 0, 0,
     "forward|kill|STATUS", "what requests not in the recording get (default forward)"},
    {"server_replay_reuse", NULL, 0, CONFIG_T_BOOL, F(server_replay_reuse), 0, 0, 0, "BOOL",
     "answer with a recorded response again and again (default: each once, in order)"},
    {"server_replay_nopop", NULL, 0, CONFIG_T_BOOL, F(server_replay_reuse), 0, 0, 0, "BOOL",
     "mitmproxy's older name of server_replay_reuse"},
    {"server_replay_ignore_content", NULL, 0, CONFIG_T_BOOL, F(server_replay_ignore_content),
     0, 0, 0, "BOOL", "match requests without their body"},
    {"server_replay_ignore_params", NULL, 0, CONFIG_T_LIST, F(server_replay_ignore_params),
     F(n_server_replay_ignore_params), 0, 0, "NAME", "match requests without this query parameter"},
    {"server_replay_ignore_host", NULL, 0, CONFIG_T_BOOL, F(server_replay_ignore_host), 0, 0,
     0, "BOOL", "match requests without their host"},
    {"server_replay_ignore_port", NULL, 0, CONFIG_T_BOOL, F(server_replay_ignore_port), 0, 0,
     0, "BOOL", "match requests without their port"},
    {"server_replay_use_headers", NULL, 0, CONFIG_T_LIST, F(server_replay_use_headers),
     F(n_server_replay_use_headers), 0, 0, "NAME", "match requests on this header field too"},
    {"server_replay_ignore_payload_params", NULL, 0, CONFIG_T_LIST,
     F(server_replay_ignore_payload_params), F(n_server_replay_ignore_payload_params), 0, 0,
     "NAME", "match form bodies (urlencoded, multipart) without this form field"},
    {"server_replay_kill_extra", NULL, 0, CONFIG_T_BOOL, F(server_replay_kill_extra), 0, 0, 0,
     "BOOL", "mitmproxy's deprecated spelling of server_replay_extra=kill"},
    {"server_replay_refresh", NULL, 0, CONFIG_T_BOOL, F(server_replay_refresh), 0, 0, 0, "BOOL",
     "shift replayed Date, Expires, Last-Modified and cookie expiry by the recording's age "
     "(default true)"},
    {"map_local", "map-local", 0, CONFIG_T_LIST, F(map_local), F(n_map_local), 0, 0,
     "[|FILTER]|URL-REGEX|PATH", "answer matching requests from a local file or directory"},
    {"modify_body", "modify-body", 0, CONFIG_T_LIST, F(modify_body), F(n_modify_body), 0, 0,
     "[/FILTER]/REGEX/[@]REPLACEMENT", "re.sub on request and response bodies up to "
     "body_size_limit (larger ones pass untouched)"},
    {"stream_large_bodies", NULL, 0, CONFIG_T_STR, F(stream_large_bodies), 0, 0, 0, "SIZE",
     "mitmd streams every body; a body over SIZE is also never buffered for --modify-body\n"
     "        (passed unchanged, as mitmproxy streams it past its addons)"},
    {"body_size_limit", NULL, 0, CONFIG_T_STR, F(body_size_limit), 0, 0, 0, "SIZE",
     "largest body --modify-body buffers and rewrites: 3m, 512k, 1g (default 1m)"},
    /* certificates and onboarding (certcache/certstore, worker/onboarding) */
    {"certs", "certs", 0, CONFIG_T_LIST, F(certs), F(n_certs), 0, 0, "[DOMAIN=]FILE",
     "serve FILE (PEM: certificate, chain, key) for DOMAIN (a name, *.SUFFIX or *; without\n"
     "        DOMAIN: the names in the certificate) instead of a forged one (repeatable)"},
    {"client_certs", NULL, 0, CONFIG_T_STR, F(client_certs), 0, 0, 0, "FILE|DIR",
     "client certificate (PEM with key) for upstreams that ask, or a directory of HOST.pem"},
    {"onboarding", NULL, 0, CONFIG_T_BOOL, F(onboarding), 0, 0, 0, "BOOL",
     "serve the CA install page at http://ONBOARDING_HOST/ through the proxy (default true)"},
    {"onboarding_host", NULL, 0, CONFIG_T_STR, F(onboarding_host), 0, 0, 0, "HOST",
     "host name of the onboarding page (default mitm.it)"},
    {"onboarding_port", NULL, 0, CONFIG_T_PORT, F(onboarding_port), 0, 0, 65535, "PORT",
     "port of the onboarding page (default 80)"},
    {"certs_bundle", "certs-bundle", 0, CONFIG_T_STR, F(certs_bundle), 0, 0, 0, "FILE",
     "internal: the certificates the master hands its workers (set by the master)"},
};

#undef F

#define CONFIG_N_OPTS (sizeof(config_opts) / sizeof(config_opts[0]))
_Static_assert(CONFIG_N_OPTS <= 128, "struct config _given holds 128 bits");

/* getopt_long values: table index + CONFIG_VAL_OPT (or + CONFIG_VAL_NO for --no-NAME). */
enum {
    CONFIG_VAL_SET = 256,
    CONFIG_VAL_WORKER,
    CONFIG_VAL_VERSION,
    CONFIG_VAL_OPT = 1024,
    CONFIG_VAL_NO = 2048,
};

static const struct config_opt *config_find(const char *name, size_t len)
{
    for (size_t i = 0; i < CONFIG_N_OPTS; i++)
        if (strlen(config_opts[i].name) == len && strncmp(config_opts[i].name, name, len) == 0)
            return &config_opts[i];
    return NULL;
}

/* config_left renders an option's left column ("-p, --listen-port PORT") into buf. */
static void config_left(const struct config_opt *o, char *buf, size_t len)
{
    char s[8] = "";

    if (o->sopt != 0)
        snprintf(s, sizeof(s), "-%c, ", o->sopt);
    if (o->lopt == NULL)
        snprintf(buf, len, "--set %s=%s", o->name, o->metavar);
    else if (o->type == CONFIG_T_BOOL)
        snprintf(buf, len, "%s--%s", s, o->lopt);
    else
        snprintf(buf, len, "%s--%s %s", s, o->lopt, o->metavar);
}

void config_usage(void *out)
{
    FILE *f = out;
    char left[96];

    fputs("Usage: mitmd [options] [FILTER]   FILTER: print and -w only matching flows\n"
          "       mitmd [options] cert NAME...   print a forged chain for NAMEs (PEM)\n"
          "A TLS-intercepting HTTP proxy: point clients at it (https_proxy=http://HOST:PORT),\n"
          "trust CONFDIR/mitmd-ca-cert.pem, and every exchange is decrypted and recorded.\n"
          "\n"
          "Options (mitmproxy's names). Each also works as --set NAME=VALUE with the name in\n"
          "[brackets], and as `NAME: VALUE` in CONFDIR/config.yaml (the command line wins).\n"
          "Booleans take true, false or toggle (--set NAME alone means true); list options\n"
          "append, and --set NAME alone empties the list.\n",
          f);
    for (size_t i = 0; i < CONFIG_N_OPTS; i++) {
        const struct config_opt *o = &config_opts[i];

        config_left(o, left, sizeof(left));
        fprintf(f, "  %-36s [%s]\n        %s\n", left, o->name, o->help);
    }
    fputs("  --set NAME[=VALUE]\n        set any option above by its [name]\n"
          "  -h, --help\n        this text\n"
          "  --version\n        print the version\n"
          "\n"
          "Signals to the master process:\n"
          "  SIGHUP           reload: reopen the -w file, replace the workers (listeners kept)\n"
          "  SIGUSR1          print statistics on stderr\n"
          "  SIGTERM, SIGINT  graceful stop: finish exchanges in flight (--shutdown-timeout);\n"
          "                   a second SIGTERM or SIGINT stops at once\n",
          f);
}

/* config_long parses a decimal integer in [lo, hi]. Returns 0 or -EINVAL. */
static int config_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

/* config_size is config_long with an optional k or m suffix (KiB, MiB), as mitmproxy's sizes
 * ("64k", "1m"). */
static int config_size(const char *s, long lo, long hi, long *out)
{
    char num[32];
    size_t n = strlen(s);
    long mul = 1, v;

    if (n > 0 && n < sizeof(num) && strchr("kKmM", s[n - 1]) != NULL) {
        mul = (s[n - 1] == 'k' || s[n - 1] == 'K') ? 1024 : 1024 * 1024;
        memcpy(num, s, n - 1);
        num[n - 1] = '\0';
        if (config_long(num, 0, hi / mul, &v) != 0 || v * mul < lo)
            return -EINVAL;
        *out = v * mul;
        return 0;
    }
    return config_long(s, lo, hi, out);
}

/* config_bool parses mitmproxy's boolean forms (true, false, toggle; a bare --set NAME is
 * true), case-insensitively as YAML writes them. Returns 0 or -EINVAL. */
static int config_bool(const char *s, bool cur, bool *out)
{
    if (s == NULL || s[0] == '\0' || strcasecmp(s, "true") == 0)
        *out = true;
    else if (strcasecmp(s, "false") == 0)
        *out = false;
    else if (strcasecmp(s, "toggle") == 0)
        *out = !cur;
    else
        return -EINVAL;
    return 0;
}

static int config_add_resolve(struct config *cfg, const char *arg)
{
    const char *eq = strchr(arg, '=');
    struct config_resolve *r;
    unsigned char tmp[sizeof(struct in6_addr)];
    size_t plen;

    if (eq == NULL || eq == arg || eq[1] == '\0' || cfg->n_resolve >= CONFIG_MAX_PATTERNS)
        return -EINVAL;
    if (inet_pton(AF_INET, eq + 1, tmp) != 1 && inet_pton(AF_INET6, eq + 1, tmp) != 1)
        return -EINVAL;
    plen = (size_t)(eq - arg);
    r = &cfg->resolve[cfg->n_resolve];
    r->pattern = strndup(arg, plen);
    r->address = strdup(eq + 1);
    if (r->pattern == NULL || r->address == NULL) {
        free(r->pattern);
        free(r->address);
        r->pattern = r->address = NULL;
        return -ENOMEM;
    }
    for (size_t i = 0; i < plen; i++)
        r->pattern[i] = (char)tolower((unsigned char)r->pattern[i]);
    cfg->n_resolve++;
    return 0;
}

static void config_clear_resolve(struct config *cfg)
{
    for (int i = 0; i < cfg->n_resolve; i++) {
        free(cfg->resolve[i].pattern);
        free(cfg->resolve[i].address);
        cfg->resolve[i].pattern = cfg->resolve[i].address = NULL;
    }
    cfg->n_resolve = 0;
}

/* config_set_mode appends one --mode SPEC (mode_spec.h) to cfg->modes; a bare --set mode (or
 * an empty value) empties the list, as for mitmproxy's sequence options. upstream:https://
 * parses but is not served yet. */
static int config_set_mode(struct config *cfg, const char *v, const char **why)
{
    struct mode_spec *m;

    if (v == NULL || v[0] == '\0') {
        cfg->n_modes = 0;
        return 0;
    }
    if (cfg->n_modes >= CONFIG_MAX_MODES) {
        *why = "too many --mode listeners (at most 16)";
        return -EINVAL;
    }
    m = &cfg->modes[cfg->n_modes];
    if (mode_spec_parse(v, strlen(v), m, why) != 0)
        return -EINVAL;
    if (m->kind == MODE_SPEC_UPSTREAM && m->tls) {
        *why = "upstream:https:// (TLS to the next proxy) is not yet supported by mitmd; use "
               "upstream:http://HOST:PORT";
        return -EINVAL;
    }
    cfg->n_modes++;
    return 0;
}

/* config_set_upstream_auth checks --upstream-auth USER:PASS (sent as Basic credentials to
 * the next proxy in upstream mode); a bare --set upstream_auth clears it. */
static int config_set_upstream_auth(struct config *cfg, const char *v, const char **why)
{
    if (v == NULL || v[0] == '\0') {
        cfg->upstream_auth = NULL;
        return 0;
    }
    if (strchr(v, ':') == NULL || strlen(v) > CONFIG_UPSTREAM_AUTH_MAX ||
        strpbrk(v, "\r\n") != NULL) {
        *why = "expected USER:PASS (at most 512 bytes, one line)";
        return -EINVAL;
    }
    cfg->upstream_auth = v;
    return 0;
}

const char *config_mode_listen_host(const struct config *cfg, int i)
{
    const struct mode_spec *m = &cfg->modes[i];

    return m->has_listen_host ? m->listen_host : cfg->listen_host;
}

bool config_mode_proxy_protocol(const struct config *cfg, int i)
{
    if (cfg->proxy_protocol)
        return true;
    for (int k = 0; k < cfg->n_proxy_protocol_listeners; k++)
        if (strcmp(cfg->modes[i].full_spec, cfg->proxy_protocol_listeners[k]) == 0)
            return true;
    return false;
}

uint16_t config_mode_listen_port(const struct config *cfg, int i)
{
    const struct mode_spec *m = &cfg->modes[i];

    if (m->has_listen_port)
        return m->listen_port;
    /* as mitmproxy's ProxyMode.listen_port: --listen-port (argv, --set or config.yaml), else
     * the mode's own default (socks5: 1080) */
    return config_was_given(cfg, "listen_port") ? cfg->listen_port : mode_spec_default_port(m);
}

/* config_same_host compares two listen hosts as written, case-insensitively, IPv6 brackets
 * ignored ("[::1]" is "::1"). Names are compared as names: master/listen.c compares what
 * they resolve to. */
static bool config_same_host(const char *a, const char *b)
{
    size_t al = strlen(a), bl = strlen(b);

    if (al >= 2 && a[0] == '[' && a[al - 1] == ']') {
        a++;
        al -= 2;
    }
    if (bl >= 2 && b[0] == '[' && b[bl - 1] == ']') {
        b++;
        bl -= 2;
    }
    return al == bl && strncasecmp(a, b, al) == 0;
}

/* config_check_mode_listen completes the listeners after parsing: no --mode means one regular
 * listener; proxy_mode copies the first; two modes that listen on the same host and port (as
 * written; port 0 picks a free port each) are refused, as mitmproxy refuses ("Cannot spawn
 * multiple servers on the same address"). Returns 0 or -EINVAL with the message in `err`. */
static int config_check_mode_listen(struct config *cfg, char *err, size_t errlen)
{
    const char *why = NULL;

    if (cfg->n_modes == 0) {
        (void)mode_spec_parse("regular", 7, &cfg->modes[0], &why);
        cfg->n_modes = 1;
    }
    cfg->proxy_mode = cfg->modes[0];
    for (int k = 0; k < cfg->n_proxy_protocol_listeners; k++) {
        int i = 0;

        while (i < cfg->n_modes &&
               strcmp(cfg->modes[i].full_spec, cfg->proxy_protocol_listeners[k]) != 0)
            i++;
        if (i == cfg->n_modes) {
            snprintf(err, errlen, "--set proxy_protocol_listeners=%s: no --mode %s (name a "
                     "listener by its --mode spec as given)", cfg->proxy_protocol_listeners[k],
                     cfg->proxy_protocol_listeners[k]);
            return -EINVAL;
        }
    }
    for (int i = 0; i < cfg->n_modes; i++) {
        uint16_t port = config_mode_listen_port(cfg, i);
        const char *host = config_mode_listen_host(cfg, i);

        if (port == 0)
            continue;
        for (int j = 0; j < i; j++) {
            if (config_mode_listen_port(cfg, j) != port ||
                !config_same_host(config_mode_listen_host(cfg, j), host))
                continue;
            snprintf(err, errlen, "--mode %s and --mode %s both listen on %s%s%s:%u: give each "
                     "its own @PORT", cfg->modes[j].full_spec, cfg->modes[i].full_spec,
                     strchr(host, ':') != NULL && host[0] != '[' ? "[" : "", host,
                     strchr(host, ':') != NULL && host[0] != '[' ? "]" : "", (unsigned)port);
            return -EINVAL;
        }
    }
    return 0;
}

/* config_set_tls_version sets one of the tls_version_* options (mitmproxy's names and values)
 * to the protocol number `v` names; UNBOUNDED is CONFIG_TLS_LOWEST as a minimum and
 * CONFIG_TLS_HIGHEST as a maximum; SSL3 as a minimum is TLS 1.0 (BoringSSL has no SSL 3.0),
 * as a maximum an error. Returns 0 or -EINVAL with `*why`. */
static int config_set_tls_version(struct config *cfg, const struct config_opt *o, const char *v,
                                  const char **why)
{
    static const struct {
        const char *name;
        uint16_t version;
    } names[] = {
        {"UNBOUNDED", 0},   {"SSL3", 0x0300},   {"TLS1", 0x0301},
        {"TLS1_1", 0x0302}, {"TLS1_2", 0x0303}, {"TLS1_3", 0x0304},
    };
    bool is_max = strcmp(o->name + strlen(o->name) - 4, "_max") == 0;
    uint16_t *out = (uint16_t *)((char *)cfg + o->off);

    for (size_t i = 0; v != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(v, names[i].name) != 0)
            continue;
        if (names[i].version == 0x0300 && is_max) {
            *why = "SSL 3.0 is not available (BoringSSL's lowest version is TLS1)";
            return -EINVAL;
        }
        if (names[i].version == 0)
            *out = is_max ? CONFIG_TLS_HIGHEST : CONFIG_TLS_LOWEST;
        else
            *out = names[i].version == 0x0300 ? CONFIG_TLS_LOWEST : names[i].version;
        return 0;
    }
    *why = "expected UNBOUNDED, SSL3, TLS1, TLS1_1, TLS1_2 or TLS1_3";
    return -EINVAL;
}

/* config_set_connect_addr sets cfg->connect_addr to numeric address `v` (port 0), or unsets it
 * for NULL or "". Returns 0 or -EINVAL with `*why`. */
static int config_set_connect_addr(struct config *cfg, const char *v, const char **why)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)&cfg->connect_addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&cfg->connect_addr;

    memset(&cfg->connect_addr, 0, sizeof(cfg->connect_addr));
    cfg->connect_addr_len = 0;
    if (v == NULL || v[0] == '\0')
        return 0;
    if (inet_pton(AF_INET, v, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        cfg->connect_addr_len = sizeof(*a4);
    } else if (inet_pton(AF_INET6, v, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        cfg->connect_addr_len = sizeof(*a6);
    } else {
        *why = "expected a numeric IPv4 or IPv6 address";
        return -EINVAL;
    }
    return 0;
}

/* config_set_special applies the options whose value syntax is their own. `v` may be NULL
 * (a bare --set NAME). Returns 0, -EINVAL with `*why` naming what is expected, or -ENOMEM. */
static int config_set_special(struct config *cfg, const struct config_opt *o, const char *v,
                              const char **why)
{
    long n;
    int e;

    if (strcmp(o->name, "resolve") == 0) {
        if (v == NULL || v[0] == '\0') {
            config_clear_resolve(cfg);
            return 0;
        }
        e = config_add_resolve(cfg, v);
        if (e == -EINVAL)
            *why = cfg->n_resolve >= CONFIG_MAX_PATTERNS
                       ? "too many entries"
                       : "expected NAME=ADDRESS or *.SUFFIX=ADDRESS, ADDRESS numeric";
        return e;
    }
    if (strcmp(o->name, "save_stream_file") == 0) {
        if (v != NULL && v[0] == '+') /* mitmproxy's "append" prefix: mitmd always appends */
            v++;
        if (v != NULL && v[0] == '\0') {
            *why = "expected a file name";
            return -EINVAL;
        }
        cfg->flow_file = v;
        return 0;
    }
    if (strcmp(o->name, "flow_detail") == 0) {
        if (v == NULL || config_long(v, o->lo, o->hi, &n) != 0) {
            *why = "expected 0, 1, 2, 3 or 4";
            return -EINVAL;
        }
        cfg->quiet = n == 0;
        return 0;
    }
    if (strcmp(o->name, "termlog_verbosity") == 0) {
        if (v != NULL && strcmp(v, "debug") == 0) {
            cfg->verbose = true;
        } else if (v != NULL && (strcmp(v, "info") == 0 || strcmp(v, "warn") == 0 ||
                                 strcmp(v, "error") == 0 || strcmp(v, "alert") == 0)) {
            cfg->verbose = false;
        } else {
            *why = "expected error, warn, info or debug";
            return -EINVAL;
        }
        return 0;
    }
    if (strcmp(o->name, "mode") == 0)
        return config_set_mode(cfg, v, why);
    if (strcmp(o->name, "upstream_auth") == 0)
        return config_set_upstream_auth(cfg, v, why);
    if (strcmp(o->name, "proxyauth") == 0) { /* a bare --set proxyauth: none */
        if (v != NULL && v[0] != '\0' && proxyauth_spec_check(v, why) != 0)
            return -EINVAL;
        cfg->proxyauth = v != NULL && v[0] != '\0' ? v : NULL;
        return 0;
    }
    if (strcmp(o->name, "connect_addr") == 0) /* a bare --set connect_addr: none */
        return config_set_connect_addr(cfg, v, why);
    if (strncmp(o->name, "tls_version_", 12) == 0)
        return config_set_tls_version(cfg, o, v, why);
    if (strcmp(o->name, "connection_strategy") == 0) {
        if (v != NULL && strcmp(v, "eager") == 0)
            return 0;
        *why = "mitmd connects upstream eagerly; only eager is supported";
        return -EINVAL;
    }
    if (strcmp(o->name, "upstream_cert") == 0) {
        bool b;

        if (config_bool(v, true, &b) == 0 && b)
            return 0;
        *why = "mitmd always takes names from the upstream certificate; only true is supported";
        return -EINVAL;
    }
    *why = "not settable";
    return -EINVAL;
}

/* config_set applies value `v` (NULL for a bare --set NAME) to option `o`. Returns 0,
 * -EINVAL with `*why` set, or -ENOMEM. */
static int config_set(struct config *cfg, const struct config_opt *o, const char *v,
                      const char **why)
{
    char *base = (char *)cfg;
    long n;

    switch (o->type) {
    case CONFIG_T_BOOL:
        if (config_bool(v, *(bool *)(base + o->off), (bool *)(base + o->off)) != 0) {
            *why = "expected true, false or toggle";
            return -EINVAL;
        }
        return 0;
    case CONFIG_T_INT:
    case CONFIG_T_PORT:
    case CONFIG_T_SIZE:
        if (v == NULL || (o->type == CONFIG_T_SIZE ? config_size(v, o->lo, o->hi, &n)
                                                   : config_long(v, o->lo, o->hi, &n)) != 0) {
            *why = "expected a whole number in range";
            return -EINVAL;
        }
        if (o->type == CONFIG_T_INT)
            *(int *)(base + o->off) = (int)n;
        else if (o->type == CONFIG_T_PORT)
            *(uint16_t *)(base + o->off) = (uint16_t)n;
        else
            *(size_t *)(base + o->off) = (size_t)n;
        return 0;
    case CONFIG_T_STR:
        if (v != NULL && v[0] == '\0') {
            *why = "expected a non-empty value";
            return -EINVAL;
        }
        *(const char **)(base + o->off) = v;
        if (v == NULL && strcmp(o->name, "user") == 0)
            *(const char **)(base + o->off) = "nobody";
        return 0;
    case CONFIG_T_BUF:
        if (v == NULL || v[0] == '\0' || strlen(v) >= (size_t)o->hi) {
            *why = "expected a non-empty value of reasonable length";
            return -EINVAL;
        }
        snprintf(base + o->off, (size_t)o->hi, "%s", v);
        return 0;
    case CONFIG_T_LIST: {
        const char **list = (const char **)(base + o->off);
        int *count = (int *)(base + o->count_off);

        if (v == NULL || v[0] == '\0') { /* mitmproxy: a bare --set empties a sequence */
            *count = 0;
            return 0;
        }
        if (*count >= CONFIG_MAX_PATTERNS) {
            *why = "too many entries";
            return -EINVAL;
        }
        list[(*count)++] = v;
        return 0;
    }
    case CONFIG_T_SPECIAL:
        return config_set_special(cfg, o, v, why);
    }
    *why = "unknown type";
    return -EINVAL;
}

int config_usable_cpus(void)
{
    cpu_set_t set;
    long online;
    int n;

    /* The CPUs this process may run on (taskset, cgroup cpusets), like nginx's
     * "worker_processes auto"; the online count when the mask cannot be read. */
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 && online < INT_MAX ? (int)online : 1;
}

static void config_defaults(struct config *cfg)
{
    const char *home = getenv("HOME");

    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->confdir, sizeof(cfg->confdir), "%s/.mitmd",
             home != NULL && home[0] != '\0' ? home : ".");
    snprintf(cfg->listen_host, sizeof(cfg->listen_host), "127.0.0.1");
    cfg->listen_port = 8080;
    cfg->workers = config_usable_cpus();
    cfg->cert_cache_mb = 64;
    cfg->http2 = true;
    cfg->server = true; /* mitmdump's default; -n turns it off */
    cfg->websocket = true;
    cfg->validate_inbound_headers = true;
    cfg->normalize_outbound_headers = true;
    cfg->block_global = true; /* as mitmproxy: --listen-host 0.0.0.0 is no open proxy */
    cfg->server_replay_refresh = true; /* as mitmproxy */
    cfg->client_replay_concurrency = 1;
    cfg->connect_timeout_s = 10;
    cfg->handshake_timeout_s = 10;
    cfg->idle_timeout_s = 60;
    cfg->request_timeout_s = 30;
    cfg->shutdown_timeout_s = 30;
    cfg->max_header_size = 65536;
    cfg->max_conns = 4096;
    cfg->tls_version_client_min = CONFIG_TLS_DEFAULT; /* as mitmproxy */
    cfg->tls_version_server_min = CONFIG_TLS_DEFAULT;
    cfg->tls_version_client_max = CONFIG_TLS_HIGHEST;
    cfg->tls_version_server_max = CONFIG_TLS_HIGHEST;
    cfg->user = "nobody";
    cfg->onboarding = true;
    cfg->onboarding_host = "mitm.it";
    cfg->onboarding_port = 80;
}

/* config_apply sets option `o` and records that argv gave it; on error it writes the one-line
 * message naming `spelling` (how the user wrote the option) and the value. */
static int config_apply(struct config *cfg, const struct config_opt *o, const char *v,
                        const char *spelling, char *err, size_t errlen)
{
    const char *why = NULL;
    size_t idx = (size_t)(o - config_opts);
    int e = config_set(cfg, o, v, &why);

    if (e == -ENOMEM) {
        snprintf(err, errlen, "out of memory parsing %s", spelling);
        return e;
    }
    if (e != 0) {
        if (o->type == CONFIG_T_INT || o->type == CONFIG_T_PORT || o->type == CONFIG_T_SIZE)
            snprintf(err, errlen, "invalid value '%s' for %s: expected a whole number from %ld "
                     "to %ld", v != NULL ? v : "", spelling, o->lo, o->hi);
        else
            snprintf(err, errlen, "invalid value '%s' for %s: %s", v != NULL ? v : "",
                     spelling, why);
        return e;
    }
    cfg->_given[idx / 64] |= (uint64_t)1 << (idx % 64);
    return 0;
}

/* mitmproxy 8 options mitmd does not have, with why: a mitmproxy command line naming one
 * gets the reason, not just "unknown option". */
static const struct {
    const char *name, *why;
} config_refused[] = {
    {"stickycookie", "cookie jars would differ between workers (not supported)"},
    {"stickyauth", "credentials would differ between workers (not supported)"},
    {"key_size", "forged keys are ECDSA P-256, not RSA (not settable)"},
    {"rawtcp", "raw TCP interception is not supported (--ignore-hosts passes TLS through)"},
    {"tcp_hosts", "raw TCP interception is not supported (--ignore-hosts passes TLS through)"},
    {"dns_server", "DNS mode is not supported"},
    {"dns_listen_host", "DNS mode is not supported"},
    {"dns_listen_port", "DNS mode is not supported"},
    {"dns_mode", "DNS mode is not supported"},
    {"scripts", "Python scripts and addons are not supported (rules: --modify-headers, "
                "--map-remote, --map-local, --modify-body)"},
    {"cert_passphrase", "not supported (mitmd keeps its CA key 0600 in the confdir and out of "
                        "the workers)"},
    {"export_preserve_original_ip", "mitmd has no export commands"},
    {"proxy_debug", "not supported (-v logs mitmd's debug lines)"},
};

/* config_refused_why returns the reason mitmd refuses the mitmproxy option spelled `name`
 * (`len` bytes; "--no-x-y" and "x-y" are read as x_y), or NULL if it is no such option. */
static const char *config_refused_why(const char *name, size_t len)
{
    char n[48];

    while (len > 0 && *name == '-') {
        name++;
        len--;
    }
    if (len > 3 && memcmp(name, "no-", 3) == 0) {
        name += 3;
        len -= 3;
    }
    if (len == 0 || len >= sizeof(n))
        return NULL;
    for (size_t i = 0; i < len; i++)
        n[i] = name[i] == '-' ? '_' : name[i];
    n[len] = '\0';
    for (size_t i = 0; i < sizeof(config_refused) / sizeof(config_refused[0]); i++)
        if (strcmp(n, config_refused[i].name) == 0)
            return config_refused[i].why;
    return NULL;
}

/* config_apply_set handles one `--set NAME[=VALUE]`. */
static int config_apply_set(struct config *cfg, const char *spec, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '=');
    size_t nlen = eq != NULL ? (size_t)(eq - spec) : strlen(spec);
    const struct config_opt *o = config_find(spec, nlen);
    char spelling[80];

    if (o == NULL) {
        const char *why = config_refused_why(spec, nlen);

        if (why != NULL)
            snprintf(err, errlen, "mitmproxy's option %.*s in --set %s: %s",
                     (int)(nlen > 64 ? 64 : nlen), spec, spec, why);
        else
            snprintf(err, errlen, "unknown option '%.*s' in --set %s",
                     (int)(nlen > 64 ? 64 : nlen), spec, spec);
        return -EINVAL;
    }
    snprintf(spelling, sizeof(spelling), "--set %s", o->name);
    return config_apply(cfg, o, eq != NULL ? eq + 1 : NULL, spelling, err, errlen);
}

int config_check_set(const char *spec, char *err, size_t errlen)
{
    struct config *scratch = malloc(sizeof(*scratch));
    int e;

    if (scratch == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    config_defaults(scratch);
    e = config_apply_set(scratch, spec, err, errlen);
    config_dispose(scratch);
    free(scratch);
    return e;
}

bool config_is_list(const char *name)
{
    const struct config_opt *o = config_find(name, strlen(name));

    return o != NULL && (o->type == CONFIG_T_LIST || strcmp(o->name, "resolve") == 0 ||
                         strcmp(o->name, "mode") == 0);
}

bool config_was_given(const struct config *cfg, const char *name)
{
    const struct config_opt *o = config_find(name, strlen(name));
    size_t idx;

    if (o == NULL)
        return false;
    idx = (size_t)(o - config_opts);
    return (cfg->_given[idx / 64] >> (idx % 64)) & 1;
}

/* config_opt_name renders the option getopt is looking at, for error messages. */
static const char *config_opt_name(char **argv, int idx)
{
    return idx > 0 && argv[idx] != NULL ? argv[idx] : "?";
}

int config_parse(int argc, char **argv, struct config *cfg, char *err, size_t errlen)
{
    struct option lopts[2 * CONFIG_N_OPTS + 8];
    char nonames[CONFIG_N_OPTS][48];
    char shorts[40] = "hn";
    char spelling[64];
    size_t nl = 0;
    int c, e;
    long v;

    config_defaults(cfg);
    for (size_t i = 0; i < CONFIG_N_OPTS; i++) {
        const struct config_opt *o = &config_opts[i];
        bool flag = o->type == CONFIG_T_BOOL;

        if (o->sopt != 0) {
            size_t sl = strlen(shorts);

            shorts[sl] = o->sopt;
            shorts[sl + 1] = flag ? '\0' : ':';
            shorts[sl + 2] = '\0';
        }
        if (o->lopt == NULL)
            continue;
        lopts[nl++] = (struct option){o->lopt, flag ? no_argument : required_argument, NULL,
                                      CONFIG_VAL_OPT + (int)i};
        if (flag) { /* mitmproxy gives every boolean a --no- form */
            snprintf(nonames[i], sizeof(nonames[i]), "no-%s", o->lopt);
            lopts[nl++] = (struct option){nonames[i], no_argument, NULL, CONFIG_VAL_NO + (int)i};
        }
    }
    lopts[nl++] = (struct option){"set", required_argument, NULL, CONFIG_VAL_SET};
    lopts[nl++] = (struct option){"worker", required_argument, NULL, CONFIG_VAL_WORKER};
    lopts[nl++] = (struct option){"help", no_argument, NULL, 'h'};
    lopts[nl++] = (struct option){"version", no_argument, NULL, CONFIG_VAL_VERSION};
    lopts[nl] = (struct option){NULL, 0, NULL, 0};

    optind = 0; /* GNU: full re-initialisation; arguments are permuted, so options may come
                 * before or after `cert` */
    opterr = 0;
    for (;;) {
        int cur = optind == 0 ? 1 : optind;
        int longidx = -1;
        const struct config_opt *o = NULL;
        const char *val = NULL;

        c = getopt_long(argc, argv, shorts, lopts, &longidx);
        if (c == -1)
            break;
        if (c >= CONFIG_VAL_NO) {
            o = &config_opts[c - CONFIG_VAL_NO];
            val = "false";
        } else if (c >= CONFIG_VAL_OPT) {
            o = &config_opts[c - CONFIG_VAL_OPT];
            val = o->type == CONFIG_T_BOOL ? "true" : optarg;
        } else if (c == 'n') { /* mitmdump's -n: --no-server */
            for (size_t i = 0; i < CONFIG_N_OPTS && o == NULL; i++)
                if (strcmp(config_opts[i].name, "server") == 0)
                    o = &config_opts[i];
            val = "false";
        } else if (c != ':' && c != '?' && c < 256 && strchr("pqvwkmSrC", c) != NULL) {
            for (size_t i = 0; i < CONFIG_N_OPTS && o == NULL; i++)
                if (config_opts[i].sopt == c)
                    o = &config_opts[i];
            val = o->type == CONFIG_T_BOOL ? "true" : optarg;
        }
        if (o != NULL) {
            if (longidx >= 0)
                snprintf(spelling, sizeof(spelling), "--%s", lopts[longidx].name);
            else
                snprintf(spelling, sizeof(spelling), "-%c", c);
            e = config_apply(cfg, o, val, spelling, err, errlen);
            if (e != 0)
                return e;
            continue;
        }
        switch (c) {
        case CONFIG_VAL_SET:
            e = config_apply_set(cfg, optarg, err, errlen);
            if (e != 0)
                return e;
            break;
        case CONFIG_VAL_WORKER:
            if (config_long(optarg, 0, 255, &v) != 0) {
                snprintf(err, errlen, "invalid value '%s' for --worker", optarg);
                return -EINVAL;
            }
            cfg->mode = CONFIG_MODE_WORKER;
            cfg->worker_id = (int)v;
            break;
        case 'h':
            cfg->mode = CONFIG_MODE_HELP;
            break;
        case CONFIG_VAL_VERSION:
            cfg->mode = CONFIG_MODE_VERSION;
            break;
        case ':':
            snprintf(err, errlen, "option %s requires an argument", config_opt_name(argv, cur));
            return -EINVAL;
        default: {
            const char *arg = config_opt_name(argv, cur), *why;
            size_t alen = strcspn(arg, "=");

            /* mitmdump's -C and -s, and its long options for what mitmd does not have */
            why = optopt == 's' ? config_refused_why("scripts", 7)
                  : optopt == 0 && arg[0] == '-' && arg[1] == '-' ? config_refused_why(arg, alen)
                                                                  : NULL;
            if (optopt != 0 && optopt < 256)
                snprintf(err, errlen, "unknown option -%c%s%s", optopt, why != NULL ? ": " : "",
                         why != NULL ? why : "");
            else if (why != NULL)
                snprintf(err, errlen, "mitmproxy's option %.*s: %s", (int)(alen > 64 ? 64 : alen),
                         arg, why);
            else
                snprintf(err, errlen, "unknown option %s", arg);
            return -EINVAL;
        }
        }
    }
    if (optind < argc && strcmp(argv[optind], "cert") == 0 && cfg->mode == CONFIG_MODE_PROXY) {
        cfg->mode = CONFIG_MODE_CERT;
        cfg->cert_names = argv + optind + 1;
        cfg->n_cert_names = argc - optind - 1;
        if (cfg->n_cert_names == 0) {
            snprintf(err, errlen, "mitmd cert: give at least one NAME");
            return -EINVAL;
        }
    } else if (optind < argc && cfg->mode != CONFIG_MODE_HELP &&
               cfg->mode != CONFIG_MODE_VERSION) {
        /* mitmdump: the remaining words, joined by spaces, are a filter that sets both the
         * printed lines (dumper_filter) and -w (save_stream_filter), over --set values */
        size_t len = 0;

        for (int i = optind; i < argc; i++)
            len += strlen(argv[i]) + 1;
        free(cfg->_filter_args);
        cfg->_filter_args = malloc(len);
        if (cfg->_filter_args == NULL) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        cfg->_filter_args[0] = '\0';
        for (int i = optind; i < argc; i++) {
            if (i > optind)
                strcat(cfg->_filter_args, " ");
            strcat(cfg->_filter_args, argv[i]);
        }
        cfg->view_filter = cfg->save_stream_filter = cfg->_filter_args;
    }
    if (cfg->n_ignore_hosts > 0 && cfg->n_allow_hosts > 0) {
        snprintf(err, errlen, "--ignore-hosts and --allow-hosts are mutually exclusive");
        return -EINVAL;
    }
    if (!cfg->validate_inbound_headers) { /* mitmproxy: "vulnerable to HTTP smuggling" */
        snprintf(err, errlen, "--set validate_inbound_headers=false is not supported: mitmd "
                              "always answers a malformed request 400 (request smuggling)");
        return -EINVAL;
    }
    if (!cfg->normalize_outbound_headers) {
        snprintf(err, errlen, "--set normalize_outbound_headers=false is not supported: HTTP/2 "
                              "field names mitmd sends are always lowercase (RFC 9113)");
        return -EINVAL;
    }
    return config_check_mode_listen(cfg, err, errlen);
}

void config_dispose(struct config *cfg)
{
    config_clear_resolve(cfg);
    free(cfg->_filter_args);
    cfg->_filter_args = NULL;
}

const char *config_resolve_lookup(const struct config *cfg, const char *host)
{
    size_t hlen = strlen(host);

    for (int i = 0; i < cfg->n_resolve; i++) {
        const char *pat = cfg->resolve[i].pattern;

        if (pat[0] == '*' && pat[1] == '.') {
            size_t slen = strlen(pat + 1); /* ".suffix" */

            if (hlen > slen && strcasecmp(host + hlen - slen, pat + 1) == 0)
                return cfg->resolve[i].address;
        } else if (strcasecmp(host, pat) == 0) {
            return cfg->resolve[i].address;
        }
    }
    return NULL;
}
