/* proxy_proto.c - see proxy_proto.h.
 *
 * Both versions are parsed over whatever has arrived: a check fails (-EPROTO) as soon as the
 * bytes that decide it are there, and running out of bytes before the end is -EAGAIN. So an
 * invalid header is refused at its first wrong byte (spec §2.1: "abort the connection as soon
 * as possible"), and every prefix of a valid header is -EAGAIN. */
#include "shared/proxy_proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#define PROXY_PROTO_V1_ADDR_MAX 45 /* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" */

/* ---- version 1: "PROXY TCP4 1.2.3.4 5.6.7.8 1234 443\r\n" -------------------------------- */

/* struct proxy_proto_v1 is a cursor over the v1 line: `end` is where the bytes stop, `full`
 * whether `end` is the 107-byte limit (running out is then an error, not "need more"). */
struct proxy_proto_v1 {
    const uint8_t *p, *end;
    bool full;
    const char **why;
};

/* proxy_proto_v1_out is the result of running out of bytes at the cursor. */
static int proxy_proto_v1_out(struct proxy_proto_v1 *v)
{
    if (!v->full)
        return -EAGAIN;
    *v->why = "PROXY v1 line without CRLF in its first 107 bytes";
    return -EPROTO;
}

/* proxy_proto_v1_lit matches the literal `s`, comparing what has arrived. */
static int proxy_proto_v1_lit(struct proxy_proto_v1 *v, const char *s, const char *why)
{
    size_t n = strlen(s), have = (size_t)(v->end - v->p);
    size_t cmp = have < n ? have : n;

    if (memcmp(v->p, s, cmp) != 0) {
        *v->why = why;
        return -EPROTO;
    }
    if (have < n)
        return proxy_proto_v1_out(v);
    v->p += n;
    return 0;
}

/* proxy_proto_v1_addr reads an address of `family` ended by a space into `sa`. */
static int proxy_proto_v1_addr(struct proxy_proto_v1 *v, int family, struct sockaddr_storage *sa)
{
    char tok[PROXY_PROTO_V1_ADDR_MAX + 1];
    size_t n = 0;

    for (;; n++) {
        uint8_t ch;

        if (v->p + n == v->end)
            return proxy_proto_v1_out(v);
        ch = v->p[n];
        if (ch == ' ')
            break;
        if (n == PROXY_PROTO_V1_ADDR_MAX ||
            !((ch >= '0' && ch <= '9') || ch == '.' ||
              (family == AF_INET6 &&
               (ch == ':' || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'))))) {
            *v->why = "PROXY v1 address malformed";
            return -EPROTO;
        }
    }
    memcpy(tok, v->p, n);
    tok[n] = '\0';
    memset(sa, 0, sizeof(*sa));
    sa->ss_family = (sa_family_t)family;
    /* inet_pton's IPv4 form is exactly 4 decimal parts without leading zeroes (spec §2.1) */
    if (family == AF_INET
            ? inet_pton(AF_INET, tok, &((struct sockaddr_in *)sa)->sin_addr) != 1
            : inet_pton(AF_INET6, tok, &((struct sockaddr_in6 *)sa)->sin6_addr) != 1) {
        *v->why = family == AF_INET ? "PROXY v1 TCP4 address is not an IPv4 address"
                                    : "PROXY v1 TCP6 address is not an IPv6 address";
        return -EPROTO;
    }
    v->p += n + 1;
    return 0;
}

/* proxy_proto_v1_port reads a port ended by `term` (space, or CR then LF) into `*port`. */
static int proxy_proto_v1_port(struct proxy_proto_v1 *v, char term, uint16_t *port)
{
    uint32_t val = 0;
    size_t n = 0;

    for (;; n++) {
        uint8_t ch;

        if (v->p + n == v->end)
            return proxy_proto_v1_out(v);
        ch = v->p[n];
        if (ch == (uint8_t)term && n > 0)
            break;
        /* decimal, 0..65535, no heading zeroes (spec §2.1) */
        if (ch < '0' || ch > '9' || n == 5 || (n == 1 && v->p[0] == '0')) {
            *v->why = "PROXY v1 port malformed";
            return -EPROTO;
        }
        val = val * 10 + (uint32_t)(ch - '0');
        if (val > 65535) {
            *v->why = "PROXY v1 port out of range";
            return -EPROTO;
        }
    }
    *port = (uint16_t)val;
    v->p += n + 1;
    if (term == '\r')
        return proxy_proto_v1_lit(v, "\n", "PROXY v1 line ends in CR without LF");
    return 0;
}

/* proxy_proto_v1_unknown skips the rest of an UNKNOWN line up to its CRLF (spec §2.1: the
 * receiver ignores it), refusing a lone CR or LF. */
static int proxy_proto_v1_unknown(struct proxy_proto_v1 *v)
{
    if (v->p == v->end)
        return proxy_proto_v1_out(v);
    if (*v->p == '\r')
        return proxy_proto_v1_lit(v, "\r\n", "PROXY v1 line ends in CR without LF");
    if (*v->p != ' ') {
        *v->why = "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN";
        return -EPROTO;
    }
    for (v->p++; v->p < v->end; v->p++) {
        if (*v->p == '\n') {
            *v->why = "PROXY v1 line ends in LF without CR";
            return -EPROTO;
        }
        if (*v->p == '\r')
            return proxy_proto_v1_lit(v, "\r\n", "PROXY v1 line ends in CR without LF");
    }
    return proxy_proto_v1_out(v);
}

static ssize_t proxy_proto_parse_v1(const uint8_t *buf, size_t len, struct proxy_proto_hdr *hdr,
                                    const char **why)
{
    struct proxy_proto_v1 v = {
        .p = buf,
        .end = buf + (len < PROXY_PROTO_V1_MAX ? len : PROXY_PROTO_V1_MAX),
        .full = len >= PROXY_PROTO_V1_MAX,
        .why = why,
    };
    struct proxy_proto_hdr h;
    uint16_t sport = 0, dport = 0;
    int family, err;

    memset(&h, 0, sizeof(h));
    h.version = 1;
    err = proxy_proto_v1_lit(&v, "PROXY ", "not a PROXY protocol header");
    if (err)
        return err;
    /* "TCP4 ", "TCP6 " or "UNKNOWN": the first differing byte decides */
    if (v.p < v.end && *v.p == 'U') {
        err = proxy_proto_v1_lit(&v, "UNKNOWN", "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN");
        if (err == 0)
            err = proxy_proto_v1_unknown(&v);
        if (err)
            return err;
        h.local = true;
        *hdr = h;
        return v.p - buf;
    }
    err = proxy_proto_v1_lit(&v, "TCP", "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN");
    if (err)
        return err;
    if (v.p == v.end)
        return proxy_proto_v1_out(&v);
    family = *v.p == '4' ? AF_INET : *v.p == '6' ? AF_INET6 : AF_UNSPEC;
    if (family == AF_UNSPEC) {
        *why = "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN";
        return -EPROTO;
    }
    v.p++;
    err = proxy_proto_v1_lit(&v, " ", "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN");
    if (err == 0)
        err = proxy_proto_v1_addr(&v, family, &h.src);
    if (err == 0)
        err = proxy_proto_v1_addr(&v, family, &h.dst);
    if (err == 0)
        err = proxy_proto_v1_port(&v, ' ', &sport);
    if (err == 0)
        err = proxy_proto_v1_port(&v, '\r', &dport);
    if (err)
        return err;
    if (family == AF_INET) {
        ((struct sockaddr_in *)&h.src)->sin_port = htons(sport);
        ((struct sockaddr_in *)&h.dst)->sin_port = htons(dport);
        h.addr_len = sizeof(struct sockaddr_in);
    } else {
        ((struct sockaddr_in6 *)&h.src)->sin6_port = htons(sport);
        ((struct sockaddr_in6 *)&h.dst)->sin6_port = htons(dport);
        h.addr_len = sizeof(struct sockaddr_in6);
    }
    *hdr = h;
    return v.p - buf;
}

/* ---- version 2: binary ------------------------------------------------------------------ */

/* proxy_proto_v2_tlvs checks that `n` bytes are a whole number of TLVs (type, 2-byte length,
 * value), each inside the header; their meaning is not needed (spec §2.2: a receiver ignores the
 * TLVs it does not know). CRC32C TLVs are not verified. */
static int proxy_proto_v2_tlvs(const uint8_t *p, size_t n, const char **why)
{
    while (n > 0) {
        size_t vlen;

        if (n < 3) {
            *why = "PROXY v2 TLV header cut by the header's end";
            return -EPROTO;
        }
        vlen = ((size_t)p[1] << 8) | p[2];
        if (vlen > n - 3) {
            *why = "PROXY v2 TLV runs past the header's end";
            return -EPROTO;
        }
        p += 3 + vlen;
        n -= 3 + vlen;
    }
    return 0;
}

static ssize_t proxy_proto_parse_v2(const uint8_t *buf, size_t len, struct proxy_proto_hdr *hdr,
                                    const char **why)
{
    size_t sig = len < PROXY_PROTO_V2_SIG_LEN ? len : PROXY_PROTO_V2_SIG_LEN;
    size_t body, need, addr = 0;
    struct proxy_proto_hdr h;
    uint8_t cmd, fam, proto;

    if (memcmp(buf, PROXY_PROTO_V2_SIG, sig) != 0) {
        *why = "not a PROXY protocol header";
        return -EPROTO;
    }
    if (len > 12 && (buf[12] >> 4) != 2) {
        *why = "PROXY v2 version is not 2";
        return -EPROTO;
    }
    if (len > 12 && (buf[12] & 0x0f) > 1) {
        *why = "PROXY v2 command is neither LOCAL nor PROXY";
        return -EPROTO;
    }
    if (len > 13 && ((buf[13] >> 4) > 3 || (buf[13] & 0x0f) > 2 ||
                     /* PROXY: one of \x00 \x11 \x12 \x21 \x22 \x31 \x32 (spec §2.2) */
                     ((buf[12] & 0x0f) == 1 && ((buf[13] >> 4) == 0) != ((buf[13] & 0x0f) == 0)))) {
        *why = "PROXY v2 address family or protocol unknown";
        return -EPROTO;
    }
    if (len < PROXY_PROTO_V2_FIXED)
        return -EAGAIN;
    cmd = buf[12] & 0x0f;
    fam = buf[13] >> 4;
    proto = buf[13] & 0x0f;
    body = ((size_t)buf[14] << 8) | buf[15];
    /* the address block of a relayed connection (spec §2.2: 12, 36 or 216 bytes), then TLVs;
     * LOCAL and UNSPEC blocks are skipped unread, as the spec says */
    if (cmd == 1 && fam != 0) {
        addr = fam == 1 ? 12 : fam == 2 ? 36 : 216;
        if (body < addr) {
            *why = "PROXY v2 address block shorter than its family needs";
            return -EPROTO;
        }
    }
    need = PROXY_PROTO_V2_FIXED + body;
    if (len < need)
        return -EAGAIN;
    if (addr > 0 && proxy_proto_v2_tlvs(buf + PROXY_PROTO_V2_FIXED + addr, body - addr, why) != 0)
        return -EPROTO;
    memset(&h, 0, sizeof(h));
    h.version = 2;
    h.tlv_len = addr > 0 ? (uint16_t)(body - addr) : 0;
    /* LOCAL: the real endpoints stand (health checks). PROXY over UNSPEC, UDP or UNIX: the
     * spec lets a receiver that does not support them fall back to UNSPEC, i.e. the same. */
    h.local = addr == 0 || proto != 1 || fam == 3;
    if (!h.local && fam == 1) {
        const uint8_t *a = buf + PROXY_PROTO_V2_FIXED;
        struct sockaddr_in *s = (struct sockaddr_in *)&h.src, *d = (struct sockaddr_in *)&h.dst;

        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2); /* network order on the wire and in sockaddr */
        memcpy(&d->sin_port, a + 10, 2);
        h.addr_len = sizeof(*s);
    } else if (!h.local) {
        const uint8_t *a = buf + PROXY_PROTO_V2_FIXED;
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h.src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&h.dst;

        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
        h.addr_len = sizeof(*s);
    }
    *hdr = h;
    return (ssize_t)need;
}

ssize_t proxy_proto_parse(const uint8_t *buf, size_t len, struct proxy_proto_hdr *hdr,
                          const char **why)
{
    if (len == 0)
        return -EAGAIN;
    if (buf[0] == 'P')
        return proxy_proto_parse_v1(buf, len, hdr, why);
    if (buf[0] == '\r')
        return proxy_proto_parse_v2(buf, len, hdr, why);
    *why = "not a PROXY protocol header";
    return -EPROTO;
}

/* ---- formatting ------------------------------------------------------------------------- */

static ssize_t proxy_proto_format_v1(const struct proxy_proto_hdr *hdr, uint8_t *out, size_t cap)
{
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    unsigned sport, dport;
    int n;

    if (hdr->local) {
        n = snprintf((char *)out, cap, "PROXY UNKNOWN\r\n");
    } else if (hdr->src.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)&hdr->src, *b = (const void *)&hdr->dst;

        inet_ntop(AF_INET, &a->sin_addr, s, sizeof(s));
        inet_ntop(AF_INET, &b->sin_addr, d, sizeof(d));
        sport = ntohs(a->sin_port);
        dport = ntohs(b->sin_port);
        n = snprintf((char *)out, cap, "PROXY TCP4 %s %s %u %u\r\n", s, d, sport, dport);
    } else {
        const struct sockaddr_in6 *a = (const void *)&hdr->src, *b = (const void *)&hdr->dst;

        inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof(s));
        inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof(d));
        sport = ntohs(a->sin6_port);
        dport = ntohs(b->sin6_port);
        n = snprintf((char *)out, cap, "PROXY TCP6 %s %s %u %u\r\n", s, d, sport, dport);
    }
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC; /* snprintf needs room for its NUL, which is not part of the header */
    return n;
}

static ssize_t proxy_proto_format_v2(const struct proxy_proto_hdr *hdr, uint8_t *out, size_t cap)
{
    size_t body = hdr->local ? 0 : hdr->src.ss_family == AF_INET ? 12 : 36;
    uint8_t *a = out + PROXY_PROTO_V2_FIXED;

    if (cap < PROXY_PROTO_V2_FIXED + body)
        return -ENOSPC;
    memcpy(out, PROXY_PROTO_V2_SIG, PROXY_PROTO_V2_SIG_LEN);
    out[12] = hdr->local ? 0x20 : 0x21;
    out[13] = hdr->local ? 0x00 : hdr->src.ss_family == AF_INET ? 0x11 : 0x21;
    out[14] = 0;
    out[15] = (uint8_t)body;
    if (body == 12) {
        const struct sockaddr_in *s = (const void *)&hdr->src, *d = (const void *)&hdr->dst;

        memcpy(a, &s->sin_addr, 4);
        memcpy(a + 4, &d->sin_addr, 4);
        memcpy(a + 8, &s->sin_port, 2);
        memcpy(a + 10, &d->sin_port, 2);
    } else if (body == 36) {
        const struct sockaddr_in6 *s = (const void *)&hdr->src, *d = (const void *)&hdr->dst;

        memcpy(a, &s->sin6_addr, 16);
        memcpy(a + 16, &d->sin6_addr, 16);
        memcpy(a + 32, &s->sin6_port, 2);
        memcpy(a + 34, &d->sin6_port, 2);
    }
    return (ssize_t)(PROXY_PROTO_V2_FIXED + body);
}

ssize_t proxy_proto_format(int version, const struct proxy_proto_hdr *hdr, uint8_t *out,
                           size_t cap)
{
    if (version != 1 && version != 2)
        return -EINVAL;
    if (!hdr->local && ((hdr->src.ss_family != AF_INET && hdr->src.ss_family != AF_INET6) ||
                        hdr->dst.ss_family != hdr->src.ss_family))
        return -EINVAL;
    return version == 1 ? proxy_proto_format_v1(hdr, out, cap)
                        : proxy_proto_format_v2(hdr, out, cap);
}
