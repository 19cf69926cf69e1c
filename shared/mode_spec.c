/* mode_spec.c - see mode_spec.h. Follows mitmproxy's mode_specs.py and server_spec.py. */
#include "shared/mode_spec.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const mode_spec_names[MODE_SPEC_COUNT] = {
    [MODE_SPEC_REGULAR] = "regular",       [MODE_SPEC_SOCKS5] = "socks5",
    [MODE_SPEC_REVERSE] = "reverse",       [MODE_SPEC_UPSTREAM] = "upstream",
    [MODE_SPEC_TRANSPARENT] = "transparent",
};

uint16_t mode_spec_default_port(const struct mode_spec *m)
{
    return m->kind == MODE_SPEC_SOCKS5 ? 1080 : 8080; /* Socks5Mode.default_port = 1080 */
}

const char *mode_spec_kind_name(enum mode_spec_kind k)
{
    return k < MODE_SPEC_COUNT ? mode_spec_names[k] : "?";
}

/* mode_spec_memrchr returns the last `ch` in `s[0..len)`, or NULL. */
static const char *mode_spec_memrchr(const char *s, size_t len, char ch)
{
    while (len > 0) {
        len--;
        if (s[len] == ch)
            return s + len;
    }
    return NULL;
}

/* mode_spec_port parses a decimal port 0-65535 (mitmproxy accepts 0: any free port). */
static int mode_spec_port(const char *s, size_t len, uint16_t *out)
{
    unsigned long v = 0;

    if (len == 0 || len > 5)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *out = (uint16_t)v;
    return 0;
}

/* mode_spec_listen parses "PORT" or "HOST:PORT" ("[v6]:PORT" too) after the '@'. */
static int mode_spec_listen(const char *s, size_t len, struct mode_spec *out, const char **why)
{
    const char *colon = mode_spec_memrchr(s, len, ':');
    const char *host = s;
    size_t hlen;

    if (colon == NULL) {
        if (mode_spec_port(s, len, &out->listen_port) != 0) {
            *why = "invalid listen port after '@' (expected @PORT or @HOST:PORT, PORT 0-65535)";
            return -EINVAL;
        }
        out->has_listen_port = true;
        return 0;
    }
    if (mode_spec_port(colon + 1, len - (size_t)(colon + 1 - s), &out->listen_port) != 0) {
        *why = "invalid listen port after '@' (expected @PORT or @HOST:PORT, PORT 0-65535)";
        return -EINVAL;
    }
    hlen = (size_t)(colon - s);
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen > MODE_SPEC_LISTEN_HOST_MAX || !target_host_is_valid(host, hlen)) {
        *why = "invalid listen host after '@'";
        return -EINVAL;
    }
    memcpy(out->listen_host, host, hlen);
    out->listen_host[hlen] = '\0';
    out->has_listen_host = out->has_listen_port = true;
    return 0;
}

/* mode_spec_server parses "[scheme://]host[:port][/]" for reverse and upstream modes. */
static int mode_spec_server(const char *s, size_t len, struct mode_spec *out, const char **why)
{
    const char *sep = NULL;
    struct target t;
    bool https;

    for (size_t i = 0; i + 2 < len; i++) {
        if (s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/') {
            sep = s + i;
            break;
        }
        if (s[i] == ':' || s[i] == '/' || s[i] == '[')
            break; /* no scheme: host:port */
    }
    https = out->kind == MODE_SPEC_REVERSE; /* mitmproxy's default schemes */
    if (sep != NULL) {
        size_t sl = (size_t)(sep - s);

        if (sl == 4 && strncasecmp(s, "http", 4) == 0) {
            https = false;
        } else if (sl == 5 && strncasecmp(s, "https", 5) == 0) {
            https = true;
        } else {
            *why = "unsupported scheme: mitmd serves http:// and https:// servers only";
            return -EINVAL;
        }
        len -= sl + 3;
        s = sep + 3;
    }
    if (len > 0 && s[len - 1] == '/')
        len--; /* a trailing slash, but no path */
    if (len == 0) {
        *why = "expected a server: MODE:http[s]://HOST[:PORT]";
        return -EINVAL;
    }
    if (memchr(s, '/', len) != NULL || memchr(s, '@', len) != NULL) {
        *why = "the server takes no path and no user: MODE:http[s]://HOST[:PORT]";
        return -EINVAL;
    }
    if (target_parse_host_port(s, len, https ? 443 : 80, &t, why) != 0)
        return -EINVAL;
    if (t.host_len == 0 || t.host_len > TARGET_HOST_MAX || t.port == 0) {
        *why = "invalid server host or port";
        return -EINVAL;
    }
    memcpy(out->host, t.host, t.host_len);
    out->host[t.host_len] = '\0';
    out->port = t.port;
    out->tls = https;
    out->host_is_ip = t.is_ip;
    out->host_is_ipv6 = t.is_ipv6;
    return 0;
}

int mode_spec_parse(const char *s, size_t len, struct mode_spec *out, const char **why)
{
    const char *at = mode_spec_memrchr(s, len, '@');
    size_t hlen = at != NULL ? (size_t)(at - s) : len;
    const char *colon = memchr(s, ':', hlen);
    size_t nlen = colon != NULL ? (size_t)(colon - s) : hlen;
    const char *data = colon != NULL ? colon + 1 : s + hlen;
    size_t dlen = hlen - (size_t)(data - s);
    int k;

    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (len > MODE_SPEC_FULL_MAX) {
        *why = "mode spec too long";
        return -EINVAL;
    }
    memcpy(out->full_spec, s, len);
    out->full_spec[len] = '\0';
    if (memchr(s, '\0', len) != NULL) {
        *why = "a NUL byte in the mode spec";
        return -EINVAL;
    }
    if (nlen == 0) {
        *why = "expected a mode: regular, socks5, reverse:URL, upstream:URL or transparent";
        return -EINVAL;
    }
    for (k = 0; k < MODE_SPEC_COUNT; k++)
        if (strlen(mode_spec_names[k]) == nlen && strncasecmp(s, mode_spec_names[k], nlen) == 0)
            break;
    if (k == MODE_SPEC_COUNT) {
        *why = "unknown mode (expected regular, socks5, reverse:URL, upstream:URL or "
               "transparent)";
        return -EINVAL;
    }
    out->kind = (enum mode_spec_kind)k;
    if (at != NULL && mode_spec_listen(at + 1, len - hlen - 1, out, why) != 0)
        return -EINVAL;
    if (out->kind == MODE_SPEC_REVERSE || out->kind == MODE_SPEC_UPSTREAM)
        return mode_spec_server(data, dlen, out, why);
    if (dlen != 0) {
        *why = "this mode takes no argument after ':'";
        return -EINVAL;
    }
    return 0;
}

const char *mode_spec_describe(const struct mode_spec *m, char *out, size_t cap)
{
    if (cap == 0)
        return out;
    switch (m->kind) {
    case MODE_SPEC_REVERSE: /* mitmproxy: f"{description} to {data}"; ours is canonical */
        snprintf(out, cap, m->host_is_ipv6 ? "reverse proxy to %s://[%s]:%u"
                                           : "reverse proxy to %s://%s:%u",
                 m->tls ? "https" : "http", m->host, (unsigned)m->port);
        break;
    case MODE_SPEC_UPSTREAM:
        snprintf(out, cap, "HTTP(S) proxy (upstream mode)");
        break;
    case MODE_SPEC_SOCKS5:
        snprintf(out, cap, "SOCKS v5 proxy");
        break;
    case MODE_SPEC_TRANSPARENT:
        snprintf(out, cap, "Transparent Proxy");
        break;
    case MODE_SPEC_REGULAR:
    default:
        snprintf(out, cap, "HTTP(S) proxy");
        break;
    }
    return out;
}
