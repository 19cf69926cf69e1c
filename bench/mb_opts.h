/* mb_opts.h - the command line of mitmd-bench and what it resolves to.
 * Owns option parsing, validation and the --help text; resolves --connect/--proxy with
 * getaddrinfo (blocking: call before starting threads). Called by main only. The parsed
 * struct is read-only afterwards and shared by all bench threads. */
#ifndef MITMD_BENCH_MB_OPTS_H
#define MITMD_BENCH_MB_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define MB_OPTS_HOST_MAX 256
#define MB_OPTS_PATH_MAX 1024
#define MB_OPTS_MAX_CONNECTIONS 100000
#define MB_OPTS_MAX_THREADS 256
#define MB_OPTS_MAX_STREAMS 1000
#define MB_OPTS_DEFAULT_STREAMS 10

enum mb_mode {
    MB_MODE_KEEPALIVE = 0, /* -c connections, many requests each */
    MB_MODE_NEWCONN,       /* --new-conn: one request per connection */
    MB_MODE_HOSTS,         /* --hosts N: every connection a new host name */
};

/* struct mb_endpoint is a resolved HOST:PORT from the command line. */
struct mb_endpoint {
    char host[MB_OPTS_HOST_MAX]; /* as given, without IPv6 brackets */
    uint16_t port;
    struct sockaddr_storage addr;
    socklen_t addr_len;
};

struct mb_opts {
    enum mb_mode mode;
    unsigned threads;          /* -t */
    unsigned connections;      /* -c: concurrent connections over all threads */
    uint64_t duration_ns;      /* -d; 0 when only -n bounds the run */
    uint64_t requests;         /* -n; 0 when only -d bounds the run */
    uint64_t warmup_ns;        /* --warmup */
    uint64_t timeout_ns;       /* --timeout: no progress for this long is an error */
    double rate;               /* --rate: aggregate requests/s (open loop); 0 = closed loop */
    bool have_proxy;           /* --proxy given */
    bool proxy_socks5;         /* --proxy socks5h://HOST:PORT: SOCKS5 CONNECT (RFC 1928) */
    struct mb_endpoint proxy;  /* --proxy */
    struct mb_endpoint origin; /* --connect */
    char host_pattern[MB_OPTS_HOST_MAX]; /* --host, at most one %d */
    unsigned hosts;                      /* --hosts: number of distinct host indexes */
    char path[MB_OPTS_PATH_MAX];
    const char *cafile;     /* --cafile; NULL = system trust store */
    bool insecure;          /* -k */
    bool resume;            /* --resume */
    uint64_t body_size;     /* --body-size: POST with this many bytes */
    unsigned reqs_per_conn; /* requests before the client closes; 0 = unlimited */
    bool h2;                /* --h2: HTTP/2 (ALPN h2) instead of HTTP/1.1 */
    unsigned streams;       /* -m: concurrent requests per connection (1 without --h2) */
    const char *json_path;  /* --json */
    const char *replay;     /* --replay FLOWS.jsonl (bench/mb_replay.h); NULL = synthetic load */
    double speed;           /* --speed: recorded pace times this (default 1); 0 = no pauses */
    bool have_origin;       /* --connect given (optional with --replay) */
    bool help;              /* --help was given: print usage, exit 0 */
};

/* mb_opts_parse fills `o` from `argv`. On error it returns -EINVAL and writes a one-line
 * reason to `err` (size `errlen`). It resolves host names (may block) and never keeps
 * pointers into anything but `argv`. */
int mb_opts_parse(struct mb_opts *o, int argc, char **argv, char *err, size_t errlen);

/* mb_opts_usage prints the --help text to `f`. */
void mb_opts_usage(FILE *f);

/* mb_opts_mode_name returns "keepalive", "newconn" or "hosts". */
const char *mb_opts_mode_name(enum mb_mode m);

/* mb_opts_format_host writes the host name for index `idx` of `pattern` (its "%d", if any,
 * replaced by `idx`, "%%" by "%") into `out`. Returns 0, or -ENAMETOOLONG if it does not
 * fit in `cap` bytes including the NUL. Never allocates. */
int mb_opts_format_host(const char *pattern, unsigned idx, char *out, size_t cap);

/* mb_opts_parse_duration parses "10s", "500ms", "250us", "2m", "1h" or a bare number of
 * seconds (fractions allowed) into nanoseconds. Returns 0 or -EINVAL. */
int mb_opts_parse_duration(const char *s, uint64_t *out_ns);

#endif
