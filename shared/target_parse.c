/* target_parse.c - proxy request-targets (RFC 9112 §3.2) and host names.
 * Owns the grammar of CONNECT authority-form, absolute-form URLs, Host field values and the
 * host-name validator. Never allocates, never resolves names, keeps no state. */
#include "shared/target_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

/* Room for the longest textual IPv6 address plus NUL; longer input is never an address. */
#define TARGET_IP_TEXT_MAX 64

static int target_fail(const char **why, const char *reason)
{
    *why = reason;
    return -EINVAL;
}

static bool target_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool target_is_ldh(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || target_is_digit(c) || c == '-' ||
           c == '_';
}

/* target_inet_pton runs inet_pton on a slice (it needs a NUL-terminated copy). */
static bool target_inet_pton(int af, const char *s, size_t len)
{
    char text[TARGET_IP_TEXT_MAX];
    unsigned char addr[16];

    if (len == 0 || len >= sizeof(text) || memchr(s, '\0', len) != NULL)
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    return inet_pton(af, text, addr) == 1;
}

bool target_host_is_ip(const char *host, size_t len)
{
    if (memchr(host, ':', len) != NULL)
        return target_inet_pton(AF_INET6, host, len);
    return target_inet_pton(AF_INET, host, len);
}

bool target_host_is_valid(const char *host, size_t len)
{
    size_t label_start = 0;
    bool last_all_digits = true;

    if (len == 0)
        return false;
    if (memchr(host, ':', len) != NULL)
        return target_inet_pton(AF_INET6, host, len);
    if (host[len - 1] == '.')
        len--; /* one trailing dot: a fully qualified name */
    if (len == 0 || len > TARGET_HOST_MAX)
        return false;
    for (size_t i = 0; i <= len; i++) {
        size_t label_len;

        if (i < len && host[i] != '.') {
            if (!target_is_ldh(host[i]))
                return false;
            continue;
        }
        label_len = i - label_start;
        if (label_len == 0 || label_len > TARGET_LABEL_MAX)
            return false;
        if (host[label_start] == '-' || host[i - 1] == '-')
            return false;
        last_all_digits = true;
        for (size_t j = label_start; j < i; j++)
            if (!target_is_digit(host[j]))
                last_all_digits = false;
        label_start = i + 1;
    }
    /* "1.2.3" or "999.1.1.1" is neither a name (no numeric TLDs) nor an address */
    if (last_all_digits)
        return target_inet_pton(AF_INET, host, len);
    return true;
}

/* target_parse_port parses 1*5DIGIT with a value in 1..65535. */
static int target_parse_port(const char *s, size_t len, uint16_t *port, const char **why)
{
    unsigned v = 0;

    if (len == 0)
        return target_fail(why, "empty port");
    if (len > 5)
        return target_fail(why, "invalid port");
    for (size_t i = 0; i < len; i++) {
        if (!target_is_digit(s[i]))
            return target_fail(why, "invalid port");
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return target_fail(why, "port out of range");
    *port = (uint16_t)v;
    return 0;
}

int target_parse_host_port(const char *s, size_t len, uint16_t default_port, struct target *out,
                           const char **why)
{
    const char *host, *colon;
    size_t host_len, rest;
    int err;

    memset(out, 0, sizeof(*out));
    out->form = TARGET_FORM_AUTHORITY;
    if (len == 0)
        return target_fail(why, "empty host");
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);

        if (close == NULL)
            return target_fail(why, "unterminated IPv6 literal");
        host = s + 1;
        host_len = (size_t)(close - host);
        if (!target_inet_pton(AF_INET6, host, host_len))
            return target_fail(why, "invalid IPv6 literal");
        out->is_ip = true;
        out->is_ipv6 = true;
        rest = (size_t)(close + 1 - s);
        if (rest < len && s[rest] != ':')
            return target_fail(why, "junk after IPv6 literal");
        colon = rest < len ? s + rest : NULL;
    } else {
        colon = memchr(s, ':', len);
        host = s;
        host_len = colon != NULL ? (size_t)(colon - s) : len;
        if (host_len == 0)
            return target_fail(why, "empty host");
        if (!target_host_is_valid(host, host_len))
            return target_fail(why, "invalid host name");
        if (host[host_len - 1] == '.')
            host_len--;
        out->is_ip = target_inet_pton(AF_INET, host, host_len);
    }
    out->host = host;
    out->host_len = host_len;
    if (colon != NULL) {
        err = target_parse_port(colon + 1, len - (size_t)(colon + 1 - s), &out->port, why);
        if (err != 0)
            return err;
        out->port_explicit = true;
    } else if (default_port == 0) {
        return target_fail(why, "missing port");
    } else {
        out->port = default_port;
    }
    return 0;
}

int target_parse_connect(const char *s, size_t len, struct target *out, const char **why)
{
    return target_parse_host_port(s, len, 0, out, why);
}

/* target_split_path checks the path-and-query part "/p?q", "?q" or "" of a target and
 * stores its slices. Bytes must be visible ASCII; a fragment is never sent (RFC 9112 §3.2). */
static int target_split_path(const char *s, size_t len, struct target *out, const char **why)
{
    const char *q;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= 0x20 || c >= 0x7f)
            return target_fail(why, "invalid character in request-target");
        if (c == '#')
            return target_fail(why, "fragment in request-target");
    }
    q = memchr(s, '?', len);
    if (q != NULL) {
        out->query = q;
        out->query_len = len - (size_t)(q - s);
        len = (size_t)(q - s);
    }
    if (len == 0) {
        out->path = "/";
        out->path_len = 1;
    } else {
        out->path = s;
        out->path_len = len;
    }
    return 0;
}

int target_parse_absolute(const char *s, size_t len, struct target *out, const char **why)
{
    static const char sep[] = "://";
    size_t scheme_len = 0, auth_start, auth_end;
    uint16_t default_port;
    bool tls;
    int err;

    memset(out, 0, sizeof(*out));
    while (scheme_len < len && s[scheme_len] != ':')
        scheme_len++;
    if (scheme_len == 4 && strncasecmp(s, "http", 4) == 0) {
        default_port = 80;
        tls = false;
    } else if (scheme_len == 5 && strncasecmp(s, "https", 5) == 0) {
        default_port = 443;
        tls = true;
    } else {
        return target_fail(why, "unsupported scheme in request-target");
    }
    if (len - scheme_len < sizeof(sep) - 1 || memcmp(s + scheme_len, sep, sizeof(sep) - 1) != 0)
        return target_fail(why, "invalid absolute-form request-target");
    auth_start = scheme_len + sizeof(sep) - 1;
    auth_end = auth_start;
    while (auth_end < len && s[auth_end] != '/' && s[auth_end] != '?' && s[auth_end] != '#')
        auth_end++;
    if (memchr(s + auth_start, '@', auth_end - auth_start) != NULL)
        return target_fail(why, "userinfo in request-target");
    if (auth_end == auth_start)
        return target_fail(why, "empty host");
    err = target_parse_host_port(s + auth_start, auth_end - auth_start, default_port, out, why);
    if (err != 0)
        return err;
    out->form = TARGET_FORM_ABSOLUTE;
    out->tls = tls;
    return target_split_path(s + auth_end, len - auth_end, out, why);
}

bool target_is_origin_form(const char *s, size_t len)
{
    return len > 0 && s[0] == '/';
}

int target_parse_request(const char *s, size_t len, bool is_connect, struct target *out,
                         const char **why)
{
    if (is_connect)
        return target_parse_connect(s, len, out, why);
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return target_fail(why, "empty request-target");
    if (len == 1 && s[0] == '*') {
        out->form = TARGET_FORM_ASTERISK;
        return 0;
    }
    if (target_is_origin_form(s, len)) {
        out->form = TARGET_FORM_ORIGIN;
        return target_split_path(s, len, out, why);
    }
    return target_parse_absolute(s, len, out, why);
}
