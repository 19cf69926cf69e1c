/* tls_conn_peer.c - the peer certificate of a tls_conn as mitmd uses it: the names to forge
 * for the client (CN and subjectAltName, filtered to what the master can forge) and the
 * subject and issuer lines of flow records. Reads the verified peer chain of the SSL, through
 * the context's per-leaf cache (tls_peer_cache.h: a resumed upstream is not decoded again);
 * never does I/O; allocates only inside BoringSSL (freed before return). */
#include "worker/tls_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pool.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "shared/target_parse.h"
#include "worker/tls_peer_cache.h"

/* ---- peer certificate ----------------------------------------------------------------- */

/* name_is_forgeable returns whether `s`/`len` is a name the master will put in a forged
 * certificate (master/forge.c forge_name_check accepts it): a host name of letter, digit,
 * '-' and '_' labels, optionally behind one leading "*." wildcard label, or an IP literal.
 * Upstream certificates carry anything in CN and dNSName ("admin@example.com", "a b",
 * "*.*.x"); one such name in the set would make the whole forge fail and cost the client
 * its certificate, so it is left out here. target_host_is_valid is the stricter check. */
static bool name_is_forgeable(const char *s, size_t len)
{
    if (len >= 2 && s[0] == '*' && s[1] == '.') {
        s += 2;
        len -= 2;
    }
    if (len == 0 || s[len - 1] == '.' || memchr(s, '\0', len) != NULL)
        return false;
    return target_host_is_valid(s, len);
}

/* name_add appends `s`/`len` to `names` unless it is empty, too long, not a forgeable name
 * (name_is_forgeable) or already there (case-insensitive). Returns false when it was wanted
 * but no slot was left. */
static bool name_add(char names[][TLS_CONN_NAME_MAX], size_t cap, size_t *n, const char *s,
                     size_t len)
{
    if (len == 0 || len >= TLS_CONN_NAME_MAX || !name_is_forgeable(s, len))
        return true;
    for (size_t i = 0; i < *n; i++)
        if (strlen(names[i]) == len && strncasecmp(names[i], s, len) == 0)
            return true;
    if (*n == cap)
        return false;
    memcpy(names[*n], s, len);
    names[*n][len] = '\0';
    (*n)++;
    return true;
}

/* name_entry_text returns the UTF-8 text of the last `nid` entry of `name` (the caller frees
 * it with OPENSSL_free), its length in `*len`, or NULL. */
static char *name_entry_text(X509_NAME *name, int nid, size_t *len)
{
    int i = -1, last = -1;
    unsigned char *utf8 = NULL;
    int n;

    while ((i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0)
        last = i;
    if (last < 0)
        return NULL;
    n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last)));
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return (char *)utf8;
}

/* org_copy writes the O text `s`/`len` into `org` (capacity `orglen` > 0), NUL terminated,
 * cut at a character boundary when it does not fit: forge drops an organization that is not
 * valid UTF-8. */
static void org_copy(const char *s, size_t len, char *org, size_t orglen)
{
    if (len >= orglen) {
        len = orglen - 1;
        while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
            len--;
    }
    memcpy(org, s, len);
    org[len] = '\0';
}

/* collect_names is tls_conn_peer_names on the certificate `x` (see tls_conn.h). */
static int collect_names(X509 *x, char names[][TLS_CONN_NAME_MAX], size_t *n, char *org,
                         size_t orglen)
{
    size_t cap = *n, len;
    GENERAL_NAMES *sans;
    bool fit = true;
    char *s;

    *n = 0;
    if (org != NULL && orglen > 0)
        org[0] = '\0';
    s = name_entry_text(X509_get_subject_name(x), NID_commonName, &len);
    if (s != NULL) {
        fit &= name_add(names, cap, n, s, len);
        OPENSSL_free(s);
    }
    if (org != NULL && orglen > 0) {
        s = name_entry_text(X509_get_subject_name(x), NID_organizationName, &len);
        if (s != NULL) {
            org_copy(s, len, org, orglen);
            OPENSSL_free(s);
        }
    }
    sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (size_t i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        char ip[INET6_ADDRSTRLEN];

        if (g->type == GEN_DNS) {
            fit &= name_add(names, cap, n, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                            (size_t)ASN1_STRING_length(g->d.dNSName));
        } else if (g->type == GEN_IPADD) {
            int l = ASN1_STRING_length(g->d.iPAddress);
            const void *a = ASN1_STRING_get0_data(g->d.iPAddress);

            if ((l == 4 && inet_ntop(AF_INET, a, ip, sizeof(ip)) != NULL) ||
                (l == 16 && inet_ntop(AF_INET6, a, ip, sizeof(ip)) != NULL))
                fit &= name_add(names, cap, n, ip, strlen(ip));
        }
    }
    GENERAL_NAMES_free(sans);
    return fit ? 0 : -E2BIG;
}

/* name_line prints the subject or issuer of `x` as one RFC 2253 line into `out` (capacity
 * `cap` > 0, truncated, NUL terminated) and its untruncated length into `*full`. Returns 0 or
 * -ENOMEM (out = ""). */
static int name_line(X509 *x, bool issuer, char *out, size_t cap, size_t *full)
{
    BIO *mem = BIO_new(BIO_s_mem());
    const uint8_t *p;
    size_t len;
    int err = -ENOMEM;

    out[0] = '\0';
    if (mem == NULL)
        return -ENOMEM;
    if (X509_NAME_print_ex(mem, issuer ? X509_get_issuer_name(x) : X509_get_subject_name(x), 0,
                           XN_FLAG_RFC2253) < 0 ||
        BIO_mem_contents(mem, &p, &len) != 1)
        goto out_free_mem;
    *full = len;
    if (len >= cap)
        len = cap - 1;
    memcpy(out, p, len);
    out[len] = '\0';
    err = 0;
out_free_mem:
    BIO_free(mem);
    return err;
}

/* info_fill computes every fact tls_peer_info holds from `x`. */
static void info_fill(X509 *x, struct tls_peer_info *pi)
{
    char names[TLS_PEER_NAMES_MAX][TLS_CONN_NAME_MAX];
    size_t n = TLS_PEER_NAMES_MAX, len;
    char *s;

    memset(pi, 0, sizeof(*pi));
    pi->names_all = collect_names(x, names, &n, NULL, 0) == 0;
    for (size_t i = 0; i < n && pi->names_all; i++)
        pi->names_all = tls_peer_info_add_name(pi, names[i], strlen(names[i]));
    pi->org_all = true;
    s = name_entry_text(X509_get_subject_name(x), NID_organizationName, &len);
    if (s != NULL) {
        pi->org_all = len < sizeof(pi->org);
        if (pi->org_all) {
            memcpy(pi->org, s, len);
            pi->org_len = (uint16_t)len;
        }
        OPENSSL_free(s);
    }
    pi->subject_all = name_line(x, false, pi->subject, sizeof(pi->subject), &len) == 0 &&
                      len < sizeof(pi->subject);
    pi->issuer_all = name_line(x, true, pi->issuer, sizeof(pi->issuer), &len) == 0 &&
                     len < sizeof(pi->issuer);
}

/* peer_info returns the facts of the peer leaf of `c` from the context's cache, computing
 * and filing them on a miss; NULL when there is no peer certificate, no cache or a leaf too
 * big to file (the callers then compute what they need from the certificate). */
static const struct tls_peer_info *peer_info(const struct tls_conn *c)
{
    const STACK_OF(CRYPTO_BUFFER) *certs;
    const struct tls_peer_info *pi;
    struct tls_peer_info fresh;
    CRYPTO_BUFFER *leaf;
    X509 *x;

    if (c->_ssl == NULL || c->_ctx == NULL)
        return NULL;
    certs = SSL_get0_peer_certificates(c->_ssl);
    if (certs == NULL || sk_CRYPTO_BUFFER_num(certs) == 0)
        return NULL;
    leaf = sk_CRYPTO_BUFFER_value(certs, 0);
    pi = tls_peer_cache_get(&c->_ctx->peer, leaf);
    if (pi != NULL || CRYPTO_BUFFER_len(leaf) > TLS_PEER_LEAF_MAX) /* too big: not filed */
        return pi;
    x = SSL_get_peer_certificate(c->_ssl);
    if (x == NULL)
        return NULL;
    info_fill(x, &fresh);
    X509_free(x);
    ERR_clear_error();
    return tls_peer_cache_put(&c->_ctx->peer, leaf, &fresh);
}

int tls_conn_peer_names(const struct tls_conn *c, char names[][TLS_CONN_NAME_MAX], size_t *n,
                        char *org, size_t orglen)
{
    const struct tls_peer_info *pi = peer_info(c);
    bool want_org = org != NULL && orglen > 0;
    X509 *x;
    int err;

    if (pi != NULL && pi->names_all && (!want_org || pi->org_all)) {
        size_t cap = *n;

        for (*n = 0; *n < cap && *n < pi->n_names; (*n)++)
            memcpy(names[*n], tls_peer_info_name(pi, *n),
                   strlen(tls_peer_info_name(pi, *n)) + 1);
        if (want_org)
            org_copy(pi->org, pi->org_len, org, orglen);
        return pi->n_names > cap ? -E2BIG : 0;
    }
    if (want_org)
        org[0] = '\0';
    x = c->_ssl != NULL ? SSL_get_peer_certificate(c->_ssl) : NULL;
    if (x == NULL) {
        *n = 0;
        return -ENOENT;
    }
    err = collect_names(x, names, n, org, orglen); /* takes the capacity from *n */
    X509_free(x);
    ERR_clear_error();
    return err;
}

/* peer_name_line prints the subject or issuer of the peer leaf as one RFC 2253 line. */
static int peer_name_line(const struct tls_conn *c, bool issuer, char *out, size_t cap)
{
    const struct tls_peer_info *pi;
    size_t len;
    X509 *x;
    int err;

    if (cap == 0)
        return -EINVAL;
    out[0] = '\0';
    pi = peer_info(c);
    if (pi != NULL && (issuer ? pi->issuer_all : pi->subject_all)) {
        const char *line = issuer ? pi->issuer : pi->subject;

        len = strlen(line);
        if (len >= cap)
            len = cap - 1;
        memcpy(out, line, len);
        out[len] = '\0';
        return 0;
    }
    if (c->_ssl == NULL)
        return -ENOENT;
    x = SSL_get_peer_certificate(c->_ssl);
    if (x == NULL)
        return -ENOENT;
    err = name_line(x, issuer, out, cap, &len);
    X509_free(x);
    ERR_clear_error();
    return err;
}

int tls_conn_peer_subject(const struct tls_conn *c, char *out, size_t cap)
{
    return peer_name_line(c, false, out, cap);
}

int tls_conn_peer_issuer(const struct tls_conn *c, char *out, size_t cap)
{
    return peer_name_line(c, true, out, cap);
}
