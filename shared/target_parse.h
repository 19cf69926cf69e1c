/* target_parse.h - proxy request-targets (RFC 9112 §3.2) and host names.
 * Owns the grammar of CONNECT authority-form, absolute-form URLs, Host field values and the
 * host-name validator; worker/proxy_req and h1_relay call it. Never allocates, never
 * resolves names, keeps no state: outputs are slices of the caller's input. */
#ifndef MITMD_SHARED_TARGET_PARSE_H
#define MITMD_SHARED_TARGET_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* TARGET_HOST_MAX is the longest accepted host name (RFC 1035 §2.3.4, without final dot). */
#define TARGET_HOST_MAX 253
/* TARGET_LABEL_MAX is the longest label of a host name. */
#define TARGET_LABEL_MAX 63

/* enum target_form is the form of a request-target (RFC 9112 §3.2). */
enum target_form {
    TARGET_FORM_ORIGIN = 0, /* "/path?query" */
    TARGET_FORM_ABSOLUTE,   /* "http://host[:port]/path?query" */
    TARGET_FORM_AUTHORITY,  /* "host:port", CONNECT only */
    TARGET_FORM_ASTERISK,   /* "*", OPTIONS only */
};

/* struct target is a parsed request-target or Host value. Slices point into the parsed
 * string, except `path` which may point at a static "/" (never into freed memory either
 * way). Unused slices are NULL with length 0. */
struct target {
    enum target_form form;
    const char *host; /* without IPv6 brackets and without a trailing dot; case kept */
    size_t host_len;
    uint16_t port;      /* explicit, or the default of the scheme / caller; 0 in origin-form */
    bool port_explicit; /* a ":port" was present */
    bool is_ip;         /* host is an IPv4 or IPv6 literal */
    bool is_ipv6;       /* host is an IPv6 literal (it was bracketed) */
    bool tls;           /* absolute-form "https://" */
    const char *path;   /* origin-form path: starts with '/', "/" when the URL had none */
    size_t path_len;
    const char *query; /* "?..." including the '?', or NULL */
    size_t query_len;
};

/* target_parse_connect parses a CONNECT request-target "host:port" (names, IPv4, bracketed
 * IPv6; port 1-65535 required). Returns 0, or -EINVAL with `*why` set to a static string. */
int target_parse_connect(const char *s, size_t len, struct target *out, const char **why);

/* target_parse_absolute parses an absolute-form target "http://host[:port][/path][?query]"
 * (scheme "http", default port 80; "https" is accepted with default port 443 and sets
 * `tls`). The scheme is case-insensitive. Userinfo, fragments, empty hosts, and bytes
 * outside VCHAR are rejected. Returns 0 or -EINVAL with `*why` set. */
int target_parse_absolute(const char *s, size_t len, struct target *out, const char **why);

/* target_parse_host_port parses a Host field value or similar "host[:port]". When
 * `default_port` is 0 the port is required; otherwise a missing port means `default_port`.
 * Returns 0 or -EINVAL with `*why` set. */
int target_parse_host_port(const char *s, size_t len, uint16_t default_port, struct target *out,
                           const char **why);

/* target_parse_request parses the request-target of a request: authority-form when
 * `is_connect`, otherwise origin-form ("/..."), asterisk-form ("*") or absolute-form. In
 * origin-form only path and query are set. Returns 0 or -EINVAL with `*why` set. */
int target_parse_request(const char *s, size_t len, bool is_connect, struct target *out,
                         const char **why);

/* target_is_origin_form returns whether `s` is an origin-form target (starts with '/'). */
bool target_is_origin_form(const char *s, size_t len);

/* target_host_is_valid returns whether `host` (no brackets, no port) is a host name made of
 * dot-separated labels of letters, digits, '-' and '_' (no label starting or ending with
 * '-', 1-63 bytes each, 253 in all, one trailing dot allowed), or an IPv4 / IPv6 literal.
 * A name whose last label is all digits must be a valid IPv4 address. */
bool target_host_is_valid(const char *host, size_t len);

/* target_host_is_ip returns whether `host` (no brackets) is an IPv4 or IPv6 literal. */
bool target_host_is_ip(const char *host, size_t len);

#endif
