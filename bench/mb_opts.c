/* mb_opts.c - the command line of mitmd-bench.
 * Owns getopt handling, value validation and address resolution. Called by main before any
 * bench thread starts; the result is read-only afterwards. Allocates nothing that outlives
 * mb_opts_parse (getaddrinfo results are freed before returning). */
#include "bench/mb_opts.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "shared/target_parse.h"

#define MB_OPTS_DEFAULT_CONNECTIONS 10
#define MB_OPTS_DEFAULT_THREADS 2
#define MB_OPTS_DEFAULT_DURATION_NS (10ull * 1000000000ull)
#define MB_OPTS_DEFAULT_TIMEOUT_NS (10ull * 1000000000ull)

enum {
    OPT_WARMUP = 256,
    OPT_PROXY,
    OPT_CONNECT,
    OPT_HOST,
    OPT_HOSTS,
    OPT_PATH,
    OPT_CAFILE,
    OPT_NEW_CONN,
    OPT_RESUME,
    OPT_BODY_SIZE,
    OPT_RATE,
    OPT_JSON,
    OPT_TIMEOUT,
    OPT_REQS_PER_CONN,
    OPT_H2,
    OPT_REPLAY,
    OPT_SPEED,
};

static const struct option long_opts[] = {
    {"connections", required_argument, NULL, 'c'},
    {"threads", required_argument, NULL, 't'},
    {"duration", required_argument, NULL, 'd'},
    {"requests", required_argument, NULL, 'n'},
    {"insecure", no_argument, NULL, 'k'},
    {"help", no_argument, NULL, 'h'},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"proxy", required_argument, NULL, OPT_PROXY},
    {"connect", required_argument, NULL, OPT_CONNECT},
    {"replay", required_argument, NULL, OPT_REPLAY},
    {"speed", required_argument, NULL, OPT_SPEED},
    {"host", required_argument, NULL, OPT_HOST},
    {"hosts", required_argument, NULL, OPT_HOSTS},
    {"path", required_argument, NULL, OPT_PATH},
    {"cafile", required_argument, NULL, OPT_CAFILE},
    {"new-conn", no_argument, NULL, OPT_NEW_CONN},
    {"resume", no_argument, NULL, OPT_RESUME},
    {"body-size", required_argument, NULL, OPT_BODY_SIZE},
    {"rate", required_argument, NULL, OPT_RATE},
    {"json", required_argument, NULL, OPT_JSON},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"reqs-per-conn", required_argument, NULL, OPT_REQS_PER_CONN},
    {"h2", no_argument, NULL, OPT_H2},
    {"streams", required_argument, NULL, 'm'},
    {NULL, 0, NULL, 0},
};

void mb_opts_usage(FILE *f)
{
    fputs("usage: mitmd-bench --connect HOST:PORT [options]\n"
          "\n"
          "HTTPS load generator: HTTP/1.1 or HTTP/2 over TLS, directly or through an HTTP\n"
        "proxy's CONNECT (mitmd).\n"
          "\n"
          "target:\n"
          "  --connect HOST:PORT   origin address; dialled directly without --proxy, else its\n"
          "                        port is the CONNECT port (required)\n"
          "  --proxy HOST:PORT     send CONNECT host:port to this HTTP proxy first\n"
          "  --proxy socks5h://HOST:PORT\n"
          "                        or a SOCKS5 CONNECT with the host name (RFC 1928, no auth)\n"
          "  --host NAME           host name for SNI, Host and CONNECT (default: HOST of\n"
          "                        --connect); may contain one %d, replaced by a host index\n"
          "  --hosts N             distinct host indexes 0..N-1; each new connection takes the\n"
          "                        next index (cold cert cache); implies one request per\n"
          "                        connection unless --reqs-per-conn says otherwise\n"
          "  --path PATH           request target (default /)\n"
          "  --body-size N         send POST with an N-byte body instead of GET\n"
          "\n"
          "TLS:\n"
          "  --cafile FILE         verify the server against these PEM CA certificates\n"
          "                        (default: the system trust store)\n"
          "  -k, --insecure        do not verify the server certificate\n"
          "  --resume              resume TLS sessions across new connections (off by default)\n"
          "\n"
          "load:\n"
          "  -c, --connections N   concurrent connections (default 10)\n"
          "  -t, --threads N       threads, one epoll loop each (default 2)\n"
          "  --new-conn            one request per connection (handshake-bound)\n"
          "  --reqs-per-conn N     requests per connection before the client closes it\n"
          "                        (default: unlimited; 1 with --new-conn or --hosts)\n"
          "  --h2                  HTTP/2 (ALPN h2 only) instead of HTTP/1.1\n"
          "  -m, --streams N       with --h2: concurrent requests per connection (default 10)\n"
          "  --rate R              open loop: R requests/s in total; latency counts from the\n"
          "                        intended send time, so stalls are not hidden\n"
          "\n"
          "run length and output:\n"
          "  -d, --duration T      measure for T (10s, 500ms, 2m; default 10s, or unbounded\n"
          "                        when only -n is given)\n"
          "  -n, --requests N      stop after N requests (successes and errors)\n"
          "  --warmup T            run T before measuring; not counted (default 0)\n"
          "  --timeout T           a connection with no progress for T is an error (10s)\n"
          "  --json FILE           also write the one-line JSON summary to FILE\n"
          "  --replay FLOWS.jsonl  send the requests of a mitmd -w recording (method, URL,\n"
          "                        headers, body with save_bodies) in their recorded order, at\n"
          "                        the recorded pace times --speed, or at --rate R; over -c\n"
          "                        connections, through --proxy or directly (--connect overrides\n"
          "                        the address); a status other than the recorded one is an\n"
          "                        error; -n/-d do not apply (each request is sent once)\n"
          "  --speed X             with --replay: X times the recorded pace (default 1; 0 = as\n"
          "                        fast as the connections go)\n"
          "  -h, --help            show this text\n"
          "\n"
          "Latency is measured per request from when it was issued (from the connection start\n"
          "in --new-conn/--hosts modes, from the intended time with --rate). A status other\n"
          "than 200 and any connect, proxy, TLS or protocol failure count as errors.\n"
          "While connections fail to come up (connect, CONNECT or TLS handshake refused)\n"
          "each thread backs off: no new connection for 10 ms, doubling up to 640 ms, then\n"
          "one probe; after 8 failed rounds in a row with no handshake completed it stops\n"
          "and prints one line naming the cause.\n"
          "Exit status: 0 if requests completed and none failed, 1 if any failed or none\n"
        "completed (or setup failed), 2 on usage errors.\n",
          f);
}

const char *mb_opts_mode_name(enum mb_mode m)
{
    switch (m) {
    case MB_MODE_KEEPALIVE:
        return "keepalive";
    case MB_MODE_NEWCONN:
        return "newconn";
    case MB_MODE_HOSTS:
        return "hosts";
    }
    return "unknown";
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int mb_opts_parse_duration(const char *s, uint64_t *out_ns)
{
    static const struct {
        const char *suffix;
        double scale;
    } units[] = {
        {"ns", 1.0}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}, {"", 1e9},
    };
    char *end;
    double v;

    if ((*s < '0' || *s > '9') && *s != '.')
        return -EINVAL;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || !isfinite(v) || v < 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            double ns = v * units[i].scale;

            if (ns >= 1e18)
                return -EINVAL;
            *out_ns = (uint64_t)ns;
            return 0;
        }
    }
    return -EINVAL;
}

/* check_host_pattern accepts plain text, "%%", and at most one "%d". */
static int check_host_pattern(const char *p)
{
    unsigned conversions = 0;

    for (; *p != '\0'; p++) {
        if (*p != '%')
            continue;
        p++;
        if (*p == 'd')
            conversions++;
        else if (*p != '%')
            return -EINVAL;
    }
    return conversions <= 1 ? 0 : -EINVAL;
}

int mb_opts_format_host(const char *pattern, unsigned idx, char *out, size_t cap)
{
    size_t n = 0;
    char num[16];

    for (const char *p = pattern; *p != '\0'; p++) {
        const char *piece = p;
        size_t len = 1;

        if (*p == '%' && p[1] == 'd') {
            len = (size_t)snprintf(num, sizeof(num), "%u", idx);
            piece = num;
            p++;
        } else if (*p == '%' && p[1] == '%') {
            p++;
        }
        if (n + len >= cap)
            return -ENAMETOOLONG;
        memcpy(out + n, piece, len);
        n += len;
    }
    if (n >= cap)
        return -ENAMETOOLONG;
    out[n] = '\0';
    return 0;
}

/* parse_endpoint parses "host:port" or "[v6]:port" (shared/target_parse, the CONNECT
 * authority grammar) and resolves it (may block). */
static int parse_endpoint(const char *what, const char *s, struct mb_endpoint *ep, char *err,
                          size_t errlen)
{
    struct target t;
    const char *why = NULL;
    char port[8];
    struct addrinfo hints, *res = NULL;
    int rc;

    if (target_parse_connect(s, strlen(s), &t, &why) != 0)
        return fail(err, errlen, "%s: expected HOST:PORT, got '%s': %s", what, s,
                    why != NULL ? why : "invalid");
    if (t.host_len >= sizeof(ep->host))
        return fail(err, errlen, "%s: host name too long", what);
    memcpy(ep->host, t.host, t.host_len);
    ep->host[t.host_len] = '\0';
    ep->port = t.port;
    snprintf(port, sizeof(port), "%u", (unsigned)t.port);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(ep->host, port, &hints, &res);
    if (rc != 0)
        return fail(err, errlen, "%s: cannot resolve '%s': %s", what, ep->host, gai_strerror(rc));
    if (res->ai_addrlen > sizeof(ep->addr)) {
        freeaddrinfo(res);
        return fail(err, errlen, "%s: address too long", what);
    }
    memcpy(&ep->addr, res->ai_addr, res->ai_addrlen);
    ep->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int parse_count(const char *opt, const char *arg, uint64_t max, uint64_t *out, char *err,
                       size_t errlen)
{
    if (parse_u64(arg, max, out) != 0)
        return fail(err, errlen, "%s: expected a whole number up to %llu, got '%s'", opt,
                    (unsigned long long)max, arg);
    return 0;
}

int mb_opts_parse(struct mb_opts *o, int argc, char **argv, char *err, size_t errlen)
{
    const char *connect_arg = NULL, *proxy_arg = NULL, *host_arg = NULL, *path_arg = "/";
    bool new_conn = false, have_duration = false, have_rpc = false, have_hosts = false;
    bool have_streams = false;
    uint64_t v = 0;
    int opt, rc;

    memset(o, 0, sizeof(*o));
    o->speed = 1.0;
    o->threads = MB_OPTS_DEFAULT_THREADS;
    o->connections = MB_OPTS_DEFAULT_CONNECTIONS;
    o->duration_ns = MB_OPTS_DEFAULT_DURATION_NS;
    o->timeout_ns = MB_OPTS_DEFAULT_TIMEOUT_NS;
    o->hosts = 1;

    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":c:t:d:n:m:kh", long_opts, NULL)) != -1) {
        rc = 0;
        switch (opt) {
        case 'c':
            rc = parse_count("-c", optarg, MB_OPTS_MAX_CONNECTIONS, &v, err, errlen);
            o->connections = (unsigned)v;
            break;
        case 't':
            rc = parse_count("-t", optarg, MB_OPTS_MAX_THREADS, &v, err, errlen);
            o->threads = (unsigned)v;
            break;
        case 'd':
            if (mb_opts_parse_duration(optarg, &o->duration_ns) != 0 || o->duration_ns == 0)
                rc = fail(err, errlen, "-d: bad duration '%s'", optarg);
            have_duration = true;
            break;
        case 'n':
            rc = parse_count("-n", optarg, UINT64_MAX / 2, &o->requests, err, errlen);
            break;
        case 'k':
            o->insecure = true;
            break;
        case 'm':
            rc = parse_count("-m", optarg, MB_OPTS_MAX_STREAMS, &v, err, errlen);
            o->streams = (unsigned)v;
            have_streams = true;
            break;
        case OPT_H2:
            o->h2 = true;
            break;
        case 'h':
            o->help = true;
            return 0;
        case OPT_WARMUP:
            if (mb_opts_parse_duration(optarg, &o->warmup_ns) != 0)
                rc = fail(err, errlen, "--warmup: bad duration '%s'", optarg);
            break;
        case OPT_TIMEOUT:
            if (mb_opts_parse_duration(optarg, &o->timeout_ns) != 0 || o->timeout_ns == 0)
                rc = fail(err, errlen, "--timeout: bad duration '%s'", optarg);
            break;
        case OPT_PROXY:
            proxy_arg = optarg;
            break;
        case OPT_CONNECT:
            connect_arg = optarg;
            break;
        case OPT_HOST:
            host_arg = optarg;
            break;
        case OPT_HOSTS:
            rc = parse_count("--hosts", optarg, UINT32_MAX / 2, &v, err, errlen);
            o->hosts = (unsigned)v;
            have_hosts = true;
            break;
        case OPT_PATH:
            path_arg = optarg;
            break;
        case OPT_CAFILE:
            o->cafile = optarg;
            break;
        case OPT_NEW_CONN:
            new_conn = true;
            break;
        case OPT_RESUME:
            o->resume = true;
            break;
        case OPT_BODY_SIZE:
            rc = parse_count("--body-size", optarg, UINT64_MAX / 2, &o->body_size, err, errlen);
            break;
        case OPT_RATE: {
            char *end;

            errno = 0;
            o->rate = strtod(optarg, &end);
            if (errno != 0 || *end != '\0' || !isfinite(o->rate) || o->rate <= 0 || o->rate > 1e8)
                rc = fail(err, errlen, "--rate: expected requests/s > 0, got '%s'", optarg);
            break;
        }
        case OPT_JSON:
            o->json_path = optarg;
            break;
        case OPT_REPLAY:
            o->replay = optarg;
            break;
        case OPT_SPEED: {
            char *end;

            errno = 0;
            o->speed = strtod(optarg, &end);
            if (errno != 0 || *end != '\0' || !isfinite(o->speed) || o->speed < 0 ||
                o->speed > 1e6)
                rc = fail(err, errlen, "--speed: expected a factor >= 0, got '%s'", optarg);
            break;
        }
        case OPT_REQS_PER_CONN:
            rc = parse_count("--reqs-per-conn", optarg, UINT32_MAX / 2, &v, err, errlen);
            o->reqs_per_conn = (unsigned)v;
            have_rpc = true;
            break;
        case ':':
            return fail(err, errlen, "option '%s' needs a value", argv[optind - 1]);
        default:
            return fail(err, errlen, "unknown option '%s'", argv[optind - 1]);
        }
        if (rc != 0)
            return rc;
    }
    if (optind < argc)
        return fail(err, errlen, "unexpected argument '%s'", argv[optind]);

    if (connect_arg == NULL && o->replay == NULL)
        return fail(err, errlen, "--connect HOST:PORT is required");
    if (connect_arg != NULL) {
        rc = parse_endpoint("--connect", connect_arg, &o->origin, err, errlen);
        if (rc != 0)
            return rc;
        o->have_origin = true;
    } else {
        strcpy(o->origin.host, "replay"); /* --replay: each request names its own */
    }
    if (o->replay != NULL && o->h2)
        return fail(err, errlen, "--replay sends HTTP/1.1 (no --h2)");

    if (proxy_arg != NULL) {
        /* curl's spelling: socks5h:// (the proxy resolves the name) or socks5:// alike */
        if (strncmp(proxy_arg, "socks5h://", 10) == 0 || strncmp(proxy_arg, "socks5://", 9) == 0) {
            o->proxy_socks5 = true;
            proxy_arg = strstr(proxy_arg, "://") + 3;
        }
        if (o->proxy_socks5 && o->replay != NULL)
            return fail(err, errlen, "--replay goes through an HTTP proxy (no socks5h://)");
        rc = parse_endpoint("--proxy", proxy_arg, &o->proxy, err, errlen);
        if (rc != 0)
            return rc;
        o->have_proxy = true;
    }
    if (host_arg == NULL)
        host_arg = o->origin.host;
    if (strlen(host_arg) == 0 || strlen(host_arg) >= sizeof(o->host_pattern) ||
        check_host_pattern(host_arg) != 0)
        return fail(err, errlen, "--host: expected a name with at most one %%d, got '%s'",
                    host_arg);
    strcpy(o->host_pattern, host_arg);
    {
        char probe[MB_OPTS_HOST_MAX];

        if (mb_opts_format_host(o->host_pattern, UINT32_MAX, probe, sizeof(probe)) != 0)
            return fail(err, errlen, "--host: '%s' is too long", host_arg);
    }
    if (path_arg[0] != '/' || strlen(path_arg) >= sizeof(o->path) ||
        strpbrk(path_arg, " \r\n\t") != NULL)
        return fail(err, errlen, "--path: expected /something without spaces, got '%s'", path_arg);
    strcpy(o->path, path_arg);

    if (o->connections == 0)
        return fail(err, errlen, "-c must be at least 1");
    if (o->threads == 0)
        return fail(err, errlen, "-t must be at least 1");
    if (o->threads > o->connections)
        o->threads = o->connections;
    if (have_hosts && o->hosts == 0)
        return fail(err, errlen, "--hosts must be at least 1");
    if (o->insecure && o->cafile != NULL)
        return fail(err, errlen, "--cafile and -k exclude each other");
    if (have_streams && !o->h2)
        return fail(err, errlen, "-m/--streams needs --h2");
    if (have_streams && o->streams == 0)
        return fail(err, errlen, "-m must be at least 1");
    if (!have_streams)
        o->streams = o->h2 ? MB_OPTS_DEFAULT_STREAMS : 1;
    if (o->requests != 0 && !have_duration)
        o->duration_ns = 0;

    if (have_hosts) {
        o->mode = MB_MODE_HOSTS;
        if (!have_rpc)
            o->reqs_per_conn = 1;
    } else if (new_conn) {
        o->mode = MB_MODE_NEWCONN;
        if (have_rpc && o->reqs_per_conn != 1)
            return fail(err, errlen, "--new-conn means --reqs-per-conn 1");
        o->reqs_per_conn = 1;
    } else {
        o->mode = MB_MODE_KEEPALIVE;
    }
    return 0;
}
