/* config.c - see config.h. */
#include "shared/config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

enum config_opt {
    OPT_CONFDIR = 256,
    OPT_LISTEN_HOST,
    OPT_WORKERS,
    OPT_CERT_CACHE_MB,
    OPT_UPSTREAM_CA,
    OPT_IGNORE_HOSTS,
    OPT_RESOLVE,
    OPT_NO_HTTP2,
    OPT_CONNECT_TIMEOUT,
    OPT_HANDSHAKE_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_REQUEST_TIMEOUT,
    OPT_MAX_HEADER_SIZE,
    OPT_MAX_CONNS,
    OPT_WORKER,
    OPT_VERSION,
};

static const struct option config_long_opts[] = {
    {"confdir", required_argument, NULL, OPT_CONFDIR},
    {"listen-host", required_argument, NULL, OPT_LISTEN_HOST},
    {"listen-port", required_argument, NULL, 'p'},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"cert-cache-mb", required_argument, NULL, OPT_CERT_CACHE_MB},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"save-stream-file", required_argument, NULL, 'w'},
    {"ssl-insecure", no_argument, NULL, 'k'},
    {"upstream-ca", required_argument, NULL, OPT_UPSTREAM_CA},
    {"ignore-hosts", required_argument, NULL, OPT_IGNORE_HOSTS},
    {"resolve", required_argument, NULL, OPT_RESOLVE},
    {"no-http2", no_argument, NULL, OPT_NO_HTTP2},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT},
    {"max-header-size", required_argument, NULL, OPT_MAX_HEADER_SIZE},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"worker", required_argument, NULL, OPT_WORKER},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

void config_usage(void *out)
{
    fputs("Usage: mitmd [options]\n"
          "       mitmd cert [--confdir DIR] NAME...\n"
          "A TLS-intercepting HTTP proxy: point clients at it (https_proxy=http://HOST:PORT),\n"
          "trust CONFDIR/mitmd-ca-cert.pem, and every exchange is decrypted and recorded.\n"
          "\n"
          "  --confdir DIR            CA and state directory (default ~/.mitmd)\n"
          "  --listen-host HOST       address to listen on (default 127.0.0.1)\n"
          "  -p, --listen-port PORT   port to listen on (default 8080; 0 = pick a free port)\n"
          "  --workers N              worker processes (default: usable CPUs)\n"
          "  --cert-cache-mb N        shared certificate cache size in MiB (default 64)\n"
          "  -q, --quiet              do not print flow lines on stdout\n"
          "  -v, --verbose            debug logging on stderr\n"
          "  -w, --save-stream-file FILE  append every exchange to FILE as JSON Lines\n"
          "  -k, --ssl-insecure       do not verify upstream certificates\n"
          "  --upstream-ca FILE       also trust the CA certificates in FILE (PEM) upstream\n"
          "  --ignore-hosts REGEX     pass matching hosts through untouched (repeatable)\n"
          "  --resolve PATTERN=ADDR   resolve PATTERN (name or *.suffix) to ADDR (repeatable)\n"
          "  --no-http2               do not negotiate HTTP/2 on either side\n"
          "  --connect-timeout S      upstream TCP connect timeout (default 10)\n"
          "  --handshake-timeout S    TLS handshake timeout, each side (default 10)\n"
          "  --idle-timeout S         close connections idle this long (default 60)\n"
          "  --request-timeout S      time allowed for a request head (default 30)\n"
          "  --max-header-size BYTES  largest request/response head (default 65536)\n"
          "  --max-conns N            client connections per worker (default 4096)\n"
          "  -h, --help               this text\n"
          "  --version                print the version\n",
          (FILE *)out);
}

/* config_int parses a decimal integer in [lo, hi]. Returns 0 or -EINVAL. */
static int config_int(const char *s, long lo, long hi, long *out)
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
    cfg->connect_timeout_s = 10;
    cfg->handshake_timeout_s = 10;
    cfg->idle_timeout_s = 60;
    cfg->request_timeout_s = 30;
    cfg->max_header_size = 65536;
    cfg->max_conns = 4096;
}

/* config_opt_name renders the option getopt is looking at, for error messages. */
static const char *config_opt_name(char **argv, int idx)
{
    return idx > 0 && argv[idx] != NULL ? argv[idx] : "?";
}

int config_parse(int argc, char **argv, struct config *cfg, char *err, size_t errlen)
{
    int first = 1, c, longidx;
    long v;

    config_defaults(cfg);
    if (argc > 1 && strcmp(argv[1], "cert") == 0) {
        cfg->mode = CONFIG_MODE_CERT;
        first = 2;
    }
    /* getopt_long over argv[first - 1 ..]: it treats its argv[0] as the program name. */
    char **av = argv + first - 1;
    int ac = argc - first + 1;

    optind = 0; /* GNU: full re-initialisation */
    opterr = 0;
    for (;;) {
        int cur = optind == 0 ? 1 : optind;

        longidx = -1;
        c = getopt_long(ac, av, "p:qvw:kh", config_long_opts, &longidx);
        if (c == -1)
            break;
        switch (c) {
        case OPT_CONFDIR:
            if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(cfg->confdir))
                goto bad_value;
            snprintf(cfg->confdir, sizeof(cfg->confdir), "%s", optarg);
            break;
        case OPT_LISTEN_HOST:
            if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(cfg->listen_host))
                goto bad_value;
            snprintf(cfg->listen_host, sizeof(cfg->listen_host), "%s", optarg);
            break;
        case 'p':
            if (config_int(optarg, 0, 65535, &v) != 0)
                goto bad_value;
            cfg->listen_port = (uint16_t)v;
            break;
        case OPT_WORKERS:
            if (config_int(optarg, 1, 256, &v) != 0)
                goto bad_value;
            cfg->workers = (int)v;
            break;
        case OPT_CERT_CACHE_MB:
            if (config_int(optarg, 1, 4096, &v) != 0)
                goto bad_value;
            cfg->cert_cache_mb = (int)v;
            break;
        case 'q':
            cfg->quiet = true;
            break;
        case 'v':
            cfg->verbose = true;
            break;
        case 'w':
            if (optarg[0] == '\0')
                goto bad_value;
            cfg->flow_file = optarg;
            break;
        case 'k':
            cfg->ssl_insecure = true;
            break;
        case OPT_UPSTREAM_CA:
            if (optarg[0] == '\0')
                goto bad_value;
            cfg->upstream_ca = optarg;
            break;
        case OPT_IGNORE_HOSTS:
            if (optarg[0] == '\0' || cfg->n_ignore_hosts >= CONFIG_MAX_PATTERNS)
                goto bad_value;
            cfg->ignore_hosts[cfg->n_ignore_hosts++] = optarg;
            break;
        case OPT_RESOLVE: {
            int e = config_add_resolve(cfg, optarg);

            if (e == -ENOMEM) {
                snprintf(err, errlen, "out of memory parsing --resolve");
                return -ENOMEM;
            }
            if (e != 0)
                goto bad_value;
            break;
        }
        case OPT_NO_HTTP2:
            cfg->http2 = false;
            break;
        case OPT_CONNECT_TIMEOUT:
        case OPT_HANDSHAKE_TIMEOUT:
        case OPT_IDLE_TIMEOUT:
        case OPT_REQUEST_TIMEOUT:
            if (config_int(optarg, 1, 86400, &v) != 0)
                goto bad_value;
            if (c == OPT_CONNECT_TIMEOUT)
                cfg->connect_timeout_s = (int)v;
            else if (c == OPT_HANDSHAKE_TIMEOUT)
                cfg->handshake_timeout_s = (int)v;
            else if (c == OPT_IDLE_TIMEOUT)
                cfg->idle_timeout_s = (int)v;
            else
                cfg->request_timeout_s = (int)v;
            break;
        case OPT_MAX_HEADER_SIZE:
            if (config_int(optarg, 1024, 1 << 20, &v) != 0)
                goto bad_value;
            cfg->max_header_size = (size_t)v;
            break;
        case OPT_MAX_CONNS:
            if (config_int(optarg, 1, 1 << 20, &v) != 0)
                goto bad_value;
            cfg->max_conns = (int)v;
            break;
        case OPT_WORKER:
            if (config_int(optarg, 0, 255, &v) != 0)
                goto bad_value;
            cfg->mode = CONFIG_MODE_WORKER;
            cfg->worker_id = (int)v;
            break;
        case 'h':
            cfg->mode = CONFIG_MODE_HELP;
            break;
        case OPT_VERSION:
            cfg->mode = CONFIG_MODE_VERSION;
            break;
        case ':':
            snprintf(err, errlen, "option %s requires an argument", config_opt_name(av, cur));
            return -EINVAL;
        default:
            if (optopt != 0 && optopt < 256)
                snprintf(err, errlen, "unknown option -%c", optopt);
            else
                snprintf(err, errlen, "unknown option %s", config_opt_name(av, cur));
            return -EINVAL;
        }
        continue;
bad_value:
        snprintf(err, errlen, "invalid value '%s' for option %s", optarg,
                 longidx >= 0 ? config_long_opts[longidx].name : config_opt_name(av, cur));
        return -EINVAL;
    }
    if (cfg->mode == CONFIG_MODE_CERT) {
        cfg->cert_names = av + optind;
        cfg->n_cert_names = ac - optind;
        if (cfg->n_cert_names == 0) {
            snprintf(err, errlen, "mitmd cert: give at least one NAME");
            return -EINVAL;
        }
    } else if (optind < ac) {
        snprintf(err, errlen, "unexpected argument '%s'", av[optind]);
        return -EINVAL;
    }
    return 0;
}

void config_dispose(struct config *cfg)
{
    for (int i = 0; i < cfg->n_resolve; i++) {
        free(cfg->resolve[i].pattern);
        free(cfg->resolve[i].address);
        cfg->resolve[i].pattern = cfg->resolve[i].address = NULL;
    }
    cfg->n_resolve = 0;
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
