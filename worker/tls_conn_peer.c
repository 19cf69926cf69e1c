/* tls_conn_peer.c - the peer certificate of a tls_conn as mitmd uses it: the names to forge
 * for the client (CN and subjectAltName, filtered to what the master can forge) and the
 * subject and issuer lines of flow records. Reads the verified peer chain of the SSL; never
 * does I/O; allocates only inside BoringSSL (freed before return). */
#include "worker/tls_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "shared/target_parse.h"

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

int tls_conn_peer_names(const struct tls_conn *c, char names[][TLS_CONN_NAME_MAX], size_t *n,
                        char *org, size_t orglen)
{
    size_t cap = *n, len;
    GENERAL_NAMES *sans;
    bool fit = true;
    X509 *x;
    char *s;

    *n = 0;
    if (org != NULL && orglen > 0)
        org[0] = '\0';
    if (c->_ssl == NULL)
        return -ENOENT;
    x = SSL_get_peer_certificate(c->_ssl);
    if (x == NULL)
        return -ENOENT;
    s = name_entry_text(X509_get_subject_name(x), NID_commonName, &len);
    if (s != NULL) {
        fit &= name_add(names, cap, n, s, len);
        OPENSSL_free(s);
    }
    if (org != NULL && orglen > 0) {
        s = name_entry_text(X509_get_subject_name(x), NID_organizationName, &len);
        if (s != NULL) {
            if (len >= orglen) {
                len = orglen - 1;
                /* cut at a character boundary: forge drops an organization that is not
                 * valid UTF-8 */
                while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
                    len--;
            }
            memcpy(org, s, len);
            org[len] = '\0';
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
    X509_free(x);
    ERR_clear_error();
    return fit ? 0 : -E2BIG;
}

/* peer_name_line prints the subject or issuer of the peer leaf as one RFC 2253 line. */
static int peer_name_line(const struct tls_conn *c, bool issuer, char *out, size_t cap)
{
    X509 *x;
    BIO *mem;
    const uint8_t *p;
    size_t len;
    int err = -ENOENT;

    if (cap == 0)
        return -EINVAL;
    out[0] = '\0';
    if (c->_ssl == NULL)
        return -ENOENT;
    x = SSL_get_peer_certificate(c->_ssl);
    if (x == NULL)
        return -ENOENT;
    mem = BIO_new(BIO_s_mem());
    if (mem == NULL) {
        err = -ENOMEM;
        goto out_free_x;
    }
    if (X509_NAME_print_ex(mem, issuer ? X509_get_issuer_name(x) : X509_get_subject_name(x), 0,
                           XN_FLAG_RFC2253) < 0 ||
        BIO_mem_contents(mem, &p, &len) != 1) {
        err = -ENOMEM;
        goto out_free_mem;
    }
    if (len >= cap)
        len = cap - 1;
    memcpy(out, p, len);
    out[len] = '\0';
    err = 0;
out_free_mem:
    BIO_free(mem);
out_free_x:
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
