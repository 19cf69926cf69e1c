/* socks5_parse.c - see socks5_parse.h. Every read is checked against `len` before it is made
 * (picohttpparser's rule); the only length field on the wire (NMETHODS, the domain length) is
 * one byte, so no arithmetic can overflow. */
#include "shared/socks5_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

static ssize_t socks5_fail(const char **why, const char *reason)
{
    *why = reason;
    return -EPROTO;
}

ssize_t socks5_parse_greeting(const uint8_t *buf, size_t len, struct socks5_greeting *out,
                              const char **why)
{
    size_t need;

    memset(out, 0, sizeof(*out));
    if (len < 1)
        return -EAGAIN;
    if (buf[0] != SOCKS5_VERSION)
        return socks5_fail(why, "not a SOCKS5 greeting (version byte is not 5)");
    if (len < 2)
        return -EAGAIN;
    if (buf[1] == 0)
        return socks5_fail(why, "SOCKS5 greeting offers no authentication method");
    need = 2 + (size_t)buf[1];
    if (len < need)
        return -EAGAIN;
    out->n_methods = buf[1];
    for (size_t i = 2; i < need; i++) {
        if (buf[i] == SOCKS5_METHOD_NO_AUTH)
            out->offers_no_auth = true;
        else if (buf[i] == SOCKS5_METHOD_USERPASS)
            out->offers_userpass = true;
    }
    return (ssize_t)need;
}

ssize_t socks5_parse_request(const uint8_t *buf, size_t len, struct socks5_request *out,
                             const char **why)
{
    size_t alen, need;
    int af;

    memset(out, 0, sizeof(*out));
    if (len < 1)
        return -EAGAIN;
    if (buf[0] != SOCKS5_VERSION)
        return socks5_fail(why, "not a SOCKS5 request (version byte is not 5)");
    if (len < 3)
        return -EAGAIN;
    if (buf[2] != 0)
        return socks5_fail(why, "SOCKS5 request: reserved byte is not 0");
    if (len < 4)
        return -EAGAIN;
    out->cmd = buf[1];
    out->atyp = buf[3];
    switch (buf[3]) {
    case SOCKS5_ATYP_IPV4:
        alen = 4;
        need = 4 + alen + 2;
        break;
    case SOCKS5_ATYP_IPV6:
        alen = 16;
        need = 4 + alen + 2;
        break;
    case SOCKS5_ATYP_DOMAIN:
        if (len < 5)
            return -EAGAIN;
        alen = buf[4];
        if (alen == 0)
            return socks5_fail(why, "SOCKS5 request: empty domain name");
        need = 5 + alen + 2;
        break;
    default:
        *why = "SOCKS5 request: unknown address type";
        return -EAFNOSUPPORT;
    }
    if (len < need)
        return -EAGAIN;
    if (buf[3] == SOCKS5_ATYP_DOMAIN) {
        /* alen <= 255; a valid name is at most TARGET_HOST_MAX + a final dot */
        if (!target_host_is_valid((const char *)buf + 5, alen))
            return socks5_fail(why, "SOCKS5 request: invalid domain name");
        if (buf[5 + alen - 1] == '.')
            alen--; /* "example.com." is example.com */
        if (alen > TARGET_HOST_MAX)
            return socks5_fail(why, "SOCKS5 request: domain name too long");
        memcpy(out->host, buf + 5, alen);
        out->host[alen] = '\0';
        out->host_len = alen;
    } else {
        af = buf[3] == SOCKS5_ATYP_IPV4 ? AF_INET : AF_INET6;
        if (inet_ntop(af, buf + 4, out->host, sizeof(out->host)) == NULL)
            return socks5_fail(why, "SOCKS5 request: invalid address");
        out->host_len = strlen(out->host);
    }
    out->port = (uint16_t)((buf[need - 2] << 8) | buf[need - 1]);
    if (out->port == 0)
        return socks5_fail(why, "SOCKS5 request: port 0");
    return (ssize_t)need;
}

ssize_t socks5_parse_userpass(const uint8_t *buf, size_t len, struct socks5_userpass *out,
                              const char **why)
{
    size_t ulen, plen;

    memset(out, 0, sizeof(*out));
    if (len < 1)
        return -EAGAIN;
    if (buf[0] != SOCKS5_USERPASS_VERSION)
        return socks5_fail(why, "not a SOCKS5 username/password request (version byte is not 1)");
    if (len < 2)
        return -EAGAIN;
    ulen = buf[1];
    if (len < 2 + ulen + 1)
        return -EAGAIN;
    plen = buf[2 + ulen];
    if (len < 3 + ulen + plen)
        return -EAGAIN;
    memcpy(out->user, buf + 2, ulen); /* ulen, plen <= 255: they fit */
    out->user_len = ulen;
    memcpy(out->pass, buf + 3 + ulen, plen);
    out->pass_len = plen;
    return (ssize_t)(3 + ulen + plen);
}

void socks5_format_userpass_reply(uint8_t out[2], bool ok)
{
    out[0] = SOCKS5_USERPASS_VERSION;
    out[1] = ok ? 0x00 : 0x01;
}

void socks5_format_method(uint8_t out[2], uint8_t method)
{
    out[0] = SOCKS5_VERSION;
    out[1] = method;
}

void socks5_format_reply(uint8_t out[SOCKS5_REPLY_LEN], uint8_t rep)
{
    memset(out, 0, SOCKS5_REPLY_LEN);
    out[0] = SOCKS5_VERSION;
    out[1] = rep;
    out[3] = SOCKS5_ATYP_IPV4;
}

uint8_t socks5_reply_for_errno(int err)
{
    switch (err) {
    case -ECONNREFUSED:
        return SOCKS5_REP_CONN_REFUSED;
    case -EHOSTUNREACH: /* also a failed DNS lookup (upstream.c) */
    case -EHOSTDOWN:
    case -ETIMEDOUT:
        return SOCKS5_REP_HOST_UNREACHABLE;
    case -ENETUNREACH:
    case -ENETDOWN:
        return SOCKS5_REP_NET_UNREACHABLE;
    default:
        return SOCKS5_REP_GENERAL_FAILURE;
    }
}

const char *socks5_reply_name(uint8_t rep)
{
    static const char *const names[] = {
        "succeeded",           "general SOCKS server failure", "connection not allowed",
        "network unreachable", "host unreachable",             "connection refused",
        "TTL expired",         "command not supported",        "address type not supported",
    };

    return rep < sizeof(names) / sizeof(names[0]) ? names[rep] : "unassigned";
}
