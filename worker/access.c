/* access.c - see access.h. The address tables are Python's ipaddress (3.13) `_private_networks`
 * and their exceptions, which mitmproxy's block addon uses through is_private / is_global. */
#include "worker/access.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <openssl/mem.h>

#include "shared/log.h"
#include "shared/proxyauth.h"
#include "worker/conn.h"
#include "worker/modes.h"
#include "worker/worker.h"

/* struct access_net is one prefix of a table. */
struct access_net {
    uint8_t addr[16];
    unsigned bits;
};

#define V4(a, b, c, d, n) {{a, b, c, d}, n}

/* IANA IPv4 special-purpose registry: not globally reachable */
static const struct access_net access_v4_private[] = {
    V4(0, 0, 0, 0, 8),       V4(10, 0, 0, 0, 8),      V4(127, 0, 0, 0, 8),
    V4(169, 254, 0, 0, 16),  V4(172, 16, 0, 0, 12),   V4(192, 0, 0, 0, 24),
    V4(192, 0, 0, 170, 31),  V4(192, 0, 2, 0, 24),    V4(192, 168, 0, 0, 16),
    V4(198, 18, 0, 0, 15),   V4(198, 51, 100, 0, 24), V4(203, 0, 113, 0, 24),
    V4(240, 0, 0, 0, 4),     V4(255, 255, 255, 255, 32),
};
static const struct access_net access_v4_private_except[] = {
    V4(192, 0, 0, 9, 32), /* PCP anycast */
    V4(192, 0, 0, 10, 32), /* TURN anycast */
};
static const struct access_net access_v4_shared = V4(100, 64, 0, 0, 10); /* RFC 6598 */

/* IANA IPv6 special-purpose registry: not globally reachable */
static const struct access_net access_v6_private[] = {
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128},             /* ::1 */
    {{0}, 128},                                                             /* :: */
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96},                       /* ::ffff:0:0/96 */
    {{0, 0x64, 0xff, 0x9b, 0, 1}, 48},                                      /* 64:ff9b:1::/48 */
    {{0x01, 0x00}, 64},                                                     /* 100::/64 */
    {{0x20, 0x01, 0x00, 0x00}, 23},                                         /* 2001::/23 */
    {{0x20, 0x01, 0x0d, 0xb8}, 32},                                         /* 2001:db8::/32 */
    {{0x20, 0x02}, 16},                                                     /* 2002::/16 */
    {{0x3f, 0xff}, 20},                                                     /* 3fff::/20 */
    {{0xfc}, 7},                                                            /* fc00::/7 */
    {{0xfe, 0x80}, 10},                                                     /* fe80::/10 */
};
static const struct access_net access_v6_private_except[] = {
    {{0x20, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128}, /* 2001:1::1 */
    {{0x20, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 128}, /* 2001:1::2 */
    {{0x20, 0x01, 0x00, 0x03}, 32},                                         /* 2001:3::/32 */
    {{0x20, 0x01, 0x00, 0x04, 0x01, 0x12}, 48},                             /* 2001:4:112::/48 */
    {{0x20, 0x01, 0x00, 0x20}, 28},                                         /* 2001:20::/28 */
    {{0x20, 0x01, 0x00, 0x30}, 28},                                         /* 2001:30::/28 */
};

#define ACCESS_N(t) (sizeof(t) / sizeof((t)[0]))

static bool access_in(const uint8_t *a, const struct access_net *n)
{
    unsigned full = n->bits / 8, rest = n->bits % 8;

    if (memcmp(a, n->addr, full) != 0)
        return false;
    return rest == 0 || ((a[full] ^ n->addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static bool access_in_any(const uint8_t *a, const struct access_net *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (access_in(a, &t[i]))
            return true;
    return false;
}

static enum access_class access_classify_v4(const uint8_t a[4])
{
    if (a[0] == 127)
        return ACCESS_CLASS_LOOPBACK;
    if (access_in_any(a, access_v4_private, ACCESS_N(access_v4_private)) &&
        !access_in_any(a, access_v4_private_except, ACCESS_N(access_v4_private_except)))
        return ACCESS_CLASS_PRIVATE;
    if (access_in(a, &access_v4_shared))
        return ACCESS_CLASS_NEITHER;
    return ACCESS_CLASS_GLOBAL;
}

enum access_class access_classify(const struct sockaddr *sa, socklen_t len)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const uint8_t *a;

    if (sa == NULL)
        return ACCESS_CLASS_UNKNOWN;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in))
        return access_classify_v4(
            (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr);
    if (sa->sa_family != AF_INET6 || len < (socklen_t)sizeof(struct sockaddr_in6))
        return ACCESS_CLASS_UNKNOWN;
    a = (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (memcmp(a, mapped, sizeof(mapped)) == 0)
        return access_classify_v4(a + 12); /* mitmproxy: address.ipv4_mapped or address */
    if (memcmp(a, loop6, sizeof(loop6)) == 0)
        return ACCESS_CLASS_LOOPBACK;
    if (access_in_any(a, access_v6_private, ACCESS_N(access_v6_private)) &&
        !access_in_any(a, access_v6_private_except, ACCESS_N(access_v6_private_except)))
        return ACCESS_CLASS_PRIVATE;
    return ACCESS_CLASS_GLOBAL;
}

const char *access_refusal(const struct config *cfg, const struct sockaddr *sa, socklen_t len)
{
    switch (access_classify(sa, len)) {
    case ACCESS_CLASS_PRIVATE:
        return cfg->block_private ? "block_private" : NULL;
    case ACCESS_CLASS_GLOBAL:
        return cfg->block_global ? "block_global" : NULL;
    default:
        return NULL;
    }
}

/* access_addr_text writes the address of `ss` for a log line. */
static void access_addr_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    const void *a = ss->ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)(const void *)ss)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr;

    if (inet_ntop(ss->ss_family, a, out, (socklen_t)cap) == NULL)
        snprintf(out, cap, "?");
}

bool access_admit(struct conn *c, bool with_header)
{
    struct worker *w = c->w;
    const struct sockaddr_storage *ss = &c->flow.client_addr;
    const char *opt;
    char addr[INET6_ADDRSTRLEN];
    uint64_t now;

    if (!with_header && c->mode != NULL && c->mode->proxy_protocol)
        return true; /* the PROXY header names the client: checked once it is read */
    opt = access_refusal(w->cfg, (const struct sockaddr *)ss, sizeof(*ss));
    if (opt == NULL)
        return true;
    worker_count(w, MSG_STAT_BLOCKED);
    now = flow_now_ns();
    /* a scan of the internet must not flood stderr: one line a second, with a count */
    if (now - w->access.log_ns >= 1000000000ull) {
        access_addr_text(ss, addr, sizeof(addr));
        if (w->access.log_skipped > 0)
            log_warn("client %s refused by %s (--set %s=false admits it; %u more refused "
                     "since the last line)",
                     addr, opt, opt, w->access.log_skipped);
        else
            log_warn("client %s refused by %s (--set %s=false admits it)", addr, opt, opt);
        w->access.log_ns = now;
        w->access.log_skipped = 0;
    } else {
        w->access.log_skipped++;
    }
    conn_close(c);
    return false;
}

int access_open(struct worker *w, char *err, size_t errlen)
{
    const struct config *cfg = w->cfg;
    char spec[4096 + 2];

    w->access.auth = NULL;
    if (cfg->proxyauth == NULL)
        return 0;
    /* an @FILE is read from the master's copy (master.c): this worker's user may not read it */
    if (cfg->proxyauth[0] == '@' && cfg->proxyauth_file != NULL) {
        snprintf(spec, sizeof(spec), "@%s", cfg->proxyauth_file);
        return proxyauth_load(spec, &w->access.auth, err, errlen);
    }
    return proxyauth_load(cfg->proxyauth, &w->access.auth, err, errlen);
}

void access_close(struct worker *w)
{
    proxyauth_free(w->access.auth);
    w->access.auth = NULL;
}

struct proxyauth *access_auth(struct worker *w)
{
    return w->access.auth;
}

bool access_check_request(struct worker *w, const struct h1_header *headers, size_t num_headers,
                          const char **why)
{
    if (w->access.auth == NULL)
        return true;
    if (proxyauth_check_fields(w->access.auth, headers, num_headers, why))
        return true;
    worker_count(w, MSG_STAT_AUTH_FAILED);
    return false;
}

bool access_h1_check(void *w, const struct h1_header *headers, size_t num_headers,
                     const char **why)
{
    return access_check_request(w, headers, num_headers, why);
}

bool access_check_login(struct worker *w, const uint8_t *user, size_t user_len,
                        const uint8_t *pass, size_t pass_len)
{
    if (w->access.auth == NULL)
        return true;
    if (proxyauth_verify(w->access.auth, user, user_len, pass, pass_len))
        return true;
    worker_count(w, MSG_STAT_AUTH_FAILED);
    return false;
}

bool access_check_www(void *arg, const char *value, size_t len, size_t n, const char **why)
{
    struct worker *w = arg;
    char user[PROXYAUTH_CRED_MAX + 1], pass[PROXYAUTH_CRED_MAX + 1];
    size_t ulen, plen;
    bool ok = false;

    if (w->access.auth == NULL)
        return true;
    if (n == 0) {
        *why = "no Authorization";
    } else if (n > 1) {
        *why = "more than one Authorization field";
    } else if (proxyauth_parse_basic(value, len, user, &ulen, pass, &plen, why) == 0) {
        ok = proxyauth_verify(w->access.auth, (const uint8_t *)user, ulen, (const uint8_t *)pass,
                              plen);
        OPENSSL_cleanse(pass, sizeof(pass));
        if (!ok)
            *why = "wrong user or password";
    }
    if (!ok)
        worker_count(w, MSG_STAT_AUTH_FAILED);
    return ok;
}

bool access_is_www(const struct conn *c)
{
    const struct mode_spec *m = c->mode != NULL ? c->mode->spec : NULL;

    return m != NULL && (m->kind == MODE_SPEC_REVERSE || m->kind == MODE_SPEC_TRANSPARENT);
}
