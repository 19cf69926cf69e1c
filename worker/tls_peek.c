/* tls_peek.c - reads the SNI of a ClientHello from raw record bytes (RFC 8446 §4.1.2,
 * RFC 6066 §3) before any TLS state exists. Every read goes through the bounded cursor
 * below; nothing is allocated and no byte past p + n is touched. */
#include "worker/tls_peek.h"

#include <errno.h>
#include <string.h>

#define TLS_PEEK_RECORD_HANDSHAKE 22
#define TLS_PEEK_HANDSHAKE_CLIENT_HELLO 1
#define TLS_PEEK_RECORD_HDR 5
#define TLS_PEEK_RECORD_MAX 16384 /* RFC 8446 §5.1: plaintext records <= 2^14 */
#define TLS_PEEK_EXT_SERVER_NAME 0
#define TLS_PEEK_SNI_HOST_NAME 0

/* struct cur is a read cursor over [p, p + n). */
struct cur {
    const uint8_t *p;
    size_t n, off;
};

static bool cur_u8(struct cur *c, size_t *v)
{
    if (c->n - c->off < 1)
        return false;
    *v = c->p[c->off];
    c->off += 1;
    return true;
}

static bool cur_u16(struct cur *c, size_t *v)
{
    if (c->n - c->off < 2)
        return false;
    *v = (size_t)c->p[c->off] << 8 | c->p[c->off + 1];
    c->off += 2;
    return true;
}

/* cur_sub splits off the next `len` bytes as their own cursor. */
static bool cur_sub(struct cur *c, size_t len, struct cur *sub)
{
    if (c->n - c->off < len)
        return false;
    sub->p = c->p + c->off;
    sub->n = len;
    sub->off = 0;
    c->off += len;
    return true;
}

static bool cur_skip(struct cur *c, size_t len)
{
    struct cur ignored;

    return cur_sub(c, len, &ignored);
}

bool tls_peek_is_client_hello(const uint8_t *p, size_t n)
{
    if (n == 0 || p[0] != TLS_PEEK_RECORD_HANDSHAKE)
        return false;
    if (n >= 2 && p[1] != 3)
        return false;
    if (n >= TLS_PEEK_RECORD_HDR + 1 && p[TLS_PEEK_RECORD_HDR] != TLS_PEEK_HANDSHAKE_CLIENT_HELLO)
        return false;
    return true;
}

/* sni_from_body finds the host_name in the ClientHello body `b` (after the 4-byte handshake
 * header). Returns the length written to `out`, 0 for none, -EPROTO or -EMSGSIZE. */
static ssize_t sni_from_body(struct cur *b, char *out, size_t cap)
{
    struct cur exts, ext, list, name;
    size_t v, len, type;

    if (!cur_skip(b, 2 + 32)) /* legacy_version, random */
        return -EPROTO;
    if (!cur_u8(b, &len) || len > 32 || !cur_skip(b, len)) /* legacy_session_id */
        return -EPROTO;
    if (!cur_u16(b, &len) || len < 2 || len % 2 != 0 || !cur_skip(b, len)) /* cipher_suites */
        return -EPROTO;
    if (!cur_u8(b, &len) || len < 1 || !cur_skip(b, len)) /* legacy_compression_methods */
        return -EPROTO;
    if (b->off == b->n)
        return 0; /* TLS 1.2 allows a ClientHello without extensions */
    if (!cur_u16(b, &len) || !cur_sub(b, len, &exts) || b->off != b->n)
        return -EPROTO;
    while (exts.off < exts.n) {
        if (!cur_u16(&exts, &type) || !cur_u16(&exts, &len) || !cur_sub(&exts, len, &ext))
            return -EPROTO;
        if (type != TLS_PEEK_EXT_SERVER_NAME)
            continue;
        if (!cur_u16(&ext, &len) || !cur_sub(&ext, len, &list) || ext.off != ext.n || list.n == 0)
            return -EPROTO;
        while (list.off < list.n) {
            if (!cur_u8(&list, &v) || !cur_u16(&list, &len) || !cur_sub(&list, len, &name))
                return -EPROTO;
            if (v != TLS_PEEK_SNI_HOST_NAME)
                continue;
            if (name.n == 0)
                return -EPROTO;
            for (size_t i = 0; i < name.n; i++)
                if (name.p[i] <= 0x20 || name.p[i] >= 0x7f)
                    return -EPROTO;
            if (name.n >= cap)
                return -EMSGSIZE;
            memcpy(out, name.p, name.n);
            out[name.n] = '\0';
            return (ssize_t)name.n;
        }
        return 0;
    }
    return 0;
}

ssize_t tls_peek_client_hello_sni(const uint8_t *p, size_t n, char *out, size_t cap)
{
    uint8_t hello[TLS_PEEK_HELLO_MAX];
    struct cur rec = {p, n, 0}, frag, body;
    size_t have = 0, need = 0, len, v;
    ssize_t ret;

    if (cap == 0)
        return -EMSGSIZE;
    out[0] = '\0';
    /* Gather the handshake message, which may span records (RFC 8446 §5.1). */
    for (;;) {
        if (!cur_u8(&rec, &v))
            return -EAGAIN;
        if (v != TLS_PEEK_RECORD_HANDSHAKE)
            return -EPROTO;
        if (!cur_u8(&rec, &v))
            return -EAGAIN;
        if (v != 3)
            return -EPROTO;
        if (!cur_skip(&rec, 1) || !cur_u16(&rec, &len))
            return -EAGAIN;
        if (len == 0 || len > TLS_PEEK_RECORD_MAX)
            return -EPROTO;
        if (!cur_sub(&rec, len, &frag)) {
            /* Incomplete record: still reject a wrong handshake type early. */
            if (have == 0 && rec.n - rec.off >= 1 &&
                rec.p[rec.off] != TLS_PEEK_HANDSHAKE_CLIENT_HELLO)
                return -EPROTO;
            return -EAGAIN;
        }
        if (have == 0) {
            if (frag.p[0] != TLS_PEEK_HANDSHAKE_CLIENT_HELLO)
                return -EPROTO;
            if (frag.n < 4) /* a header split across records: legal but never seen */
                return -EPROTO;
            need = 4 + ((size_t)frag.p[1] << 16 | (size_t)frag.p[2] << 8 | frag.p[3]);
            if (need > sizeof(hello))
                return -EMSGSIZE;
            if (frag.n >= need) { /* the common case: one record, parse in place */
                body = (struct cur){frag.p + 4, need - 4, 0};
                break;
            }
        }
        if (frag.n > need - have)
            return -EPROTO; /* another message after the ClientHello: not a first flight */
        memcpy(hello + have, frag.p, frag.n);
        have += frag.n;
        if (have == need) {
            body = (struct cur){hello + 4, need - 4, 0};
            break;
        }
    }
    ret = sni_from_body(&body, out, cap);
    if (ret < 0)
        out[0] = '\0';
    return ret;
}
