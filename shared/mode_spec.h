/* mode_spec.h - mitmproxy's proxy mode specifications ("regular", "socks5",
 * "reverse:https://api.internal:443", "upstream:http://proxy:3128", each optionally followed by
 * "@[HOST:]PORT"). Owns that grammar only; shared/config keeps the result and worker/modes
 * acts on it. Never allocates, never resolves names, keeps no state. */
#ifndef MITMD_SHARED_MODE_SPEC_H
#define MITMD_SHARED_MODE_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/target_parse.h"

#define MODE_SPEC_LISTEN_HOST_MAX 255
#define MODE_SPEC_FULL_MAX 600 /* bytes of a whole spec (the longest valid one is ~550) */
#define MODE_SPEC_DESC_MAX (TARGET_HOST_MAX + 64) /* mode_spec_describe's longest text */

/* enum mode_spec_kind is the mode a listener serves (mitmproxy's type names). */
enum mode_spec_kind {
    MODE_SPEC_REGULAR = 0, /* explicit HTTP(S) proxy: CONNECT and absolute-form */
    MODE_SPEC_SOCKS5,      /* SOCKS v5 (RFC 1928) */
    MODE_SPEC_REVERSE,     /* every connection goes to one server */
    MODE_SPEC_UPSTREAM,    /* regular, through a next-hop HTTP proxy */
    MODE_SPEC_TRANSPARENT, /* redirected connections (SO_ORIGINAL_DST) */
    MODE_SPEC_COUNT        /* must be last */
};

/* struct mode_spec is one parsed mode. Strings are copies (NUL-terminated). */
struct mode_spec {
    enum mode_spec_kind kind;
    /* reverse and upstream: the server spec "[scheme://]host[:port][/]" */
    bool tls;                       /* scheme https (reverse default), http otherwise */
    char host[TARGET_HOST_MAX + 1]; /* without IPv6 brackets */
    uint16_t port;                  /* explicit, or the scheme's default (80/443) */
    bool host_is_ip;
    bool host_is_ipv6;
    /* "@[HOST:]PORT" */
    bool has_listen_port;
    uint16_t listen_port;
    bool has_listen_host;
    char listen_host[MODE_SPEC_LISTEN_HOST_MAX + 1]; /* without IPv6 brackets */
    /* the spec as given ("socks5@1080"): mitmproxy's full_spec, which names the listener in
     * start-up lines, errors and flow records */
    char full_spec[MODE_SPEC_FULL_MAX + 1];
};

/* mode_spec_parse parses the whole of `s` (`len` bytes, NUL not required) as mitmproxy's
 * ProxyMode.parse does: the listen part after the last '@', the mode name (case-insensitive)
 * before the first ':', and the server spec after it. Reverse defaults to https, upstream to
 * http; the schemes mitmd cannot serve (tls, dns, quic, ...) are refused. Fills `out` (zeroed
 * first) and returns 0, or -EINVAL with `*why` set to a static one-line reason. */
int mode_spec_parse(const char *s, size_t len, struct mode_spec *out, const char **why);

/* mode_spec_describe writes mitmproxy 10's description of the mode into `out` (`cap` bytes,
 * truncated, NUL-terminated when cap > 0): "HTTP(S) proxy", "HTTP(S) proxy (upstream mode)",
 * "SOCKS v5 proxy", "Transparent Proxy", or "reverse proxy to https://host:port" (IPv6 in
 * brackets). MODE_SPEC_DESC_MAX bytes always suffice. Returns `out`. */
const char *mode_spec_describe(const struct mode_spec *m, char *out, size_t cap);

/* mode_spec_default_port returns the port a listener of mode `m` takes when neither its
 * "@PORT" nor --listen-port says one: mitmproxy 10's ProxyMode.default_port (mode_specs.py),
 * 1080 for socks5 and 8080 for regular, upstream, reverse and transparent. */
uint16_t mode_spec_default_port(const struct mode_spec *m);

/* mode_spec_kind_name returns mitmproxy's name of `k` ("regular", "socks5", ...). */
const char *mode_spec_kind_name(enum mode_spec_kind k);

#endif
