/* msgcodec.c - see msgcodec.h. Every decoder checks each length against what is left of
 * the datagram before reading it (STYLE: readers validate the length before the body). */
#include "shared/msgcodec.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

static size_t msgcodec_put(uint8_t *out, size_t off, const void *src, size_t n)
{
    if (n > 0)
        memcpy(out + off, src, n);
    return off + n;
}

static void msgcodec_put_hdr(uint8_t *out, uint16_t type, size_t len, uint64_t id)
{
    struct msg_hdr h = {.version = MSG_VERSION, .type = type, .len = (uint32_t)len, .id = id};

    memcpy(out, &h, sizeof(h));
}

ssize_t msgcodec_encode_hello(uint8_t *out, size_t cap, uint32_t worker_id, const uint8_t *ca_der,
                              size_t ca_len, const uint8_t *key_der, size_t key_len,
                              const uint8_t *ticket_key)
{
    struct msg_hello body = {.worker_id = worker_id};

    memcpy(body.ticket_key, ticket_key, sizeof(body.ticket_key));
    size_t total, off;

    if (ca_len > MSG_MAX_DER || key_len > MSG_MAX_DER)
        return -EMSGSIZE;
    total = sizeof(struct msg_hdr) + sizeof(body) + ca_len + key_len;
    if (total > cap || total > MSG_MAX_SIZE)
        return -EMSGSIZE;
    body.ca_der_len = (uint32_t)ca_len;
    body.key_der_len = (uint32_t)key_len;
    msgcodec_put_hdr(out, MSG_HELLO, total, 0);
    off = msgcodec_put(out, sizeof(struct msg_hdr), &body, sizeof(body));
    off = msgcodec_put(out, off, ca_der, ca_len);
    msgcodec_put(out, off, key_der, key_len);
    return (ssize_t)total;
}

ssize_t msgcodec_encode_cert_req(uint8_t *out, size_t cap, uint64_t id, const char *const *names,
                                 size_t n, const char *org)
{
    struct msg_cert_req body;
    size_t org_len = org != NULL ? strlen(org) : 0;
    size_t total = sizeof(struct msg_hdr) + sizeof(body);
    size_t off, i;

    if (n == 0 || n > MSG_MAX_NAMES || org_len > MSG_MAX_ORG_LEN)
        return -EINVAL;
    total += org_len;
    for (i = 0; i < n; i++) {
        size_t l = strlen(names[i]);

        if (l == 0 || l > MSG_MAX_NAME_LEN)
            return -EINVAL;
        total += 1 + l;
    }
    if (total > cap || total > MSG_MAX_SIZE)
        return -EMSGSIZE;
    body.n_names = (uint16_t)n;
    body.org_len = (uint16_t)org_len;
    msgcodec_put_hdr(out, MSG_CERT_REQ, total, id);
    off = msgcodec_put(out, sizeof(struct msg_hdr), &body, sizeof(body));
    off = msgcodec_put(out, off, org, org_len);
    for (i = 0; i < n; i++) {
        uint8_t l = (uint8_t)strlen(names[i]);

        out[off++] = l;
        off = msgcodec_put(out, off, names[i], l);
    }
    return (ssize_t)total;
}

ssize_t msgcodec_encode_cert_reply(uint8_t *out, size_t cap, uint64_t id, int32_t status,
                                   const char *reason, const uint8_t *der, size_t der_len,
                                   int64_t not_after)
{
    struct msg_cert_reply body = {.status = status, .not_after = not_after};
    size_t reason_len = 0, total, off;

    if (status != 0) {
        reason_len = reason != NULL ? strlen(reason) : 0;
        if (reason_len > MSG_MAX_REASON)
            reason_len = MSG_MAX_REASON;
        der_len = 0;
    } else if (der_len == 0 || der_len > MSG_MAX_DER) {
        return -EMSGSIZE;
    }
    total = sizeof(struct msg_hdr) + sizeof(body) + reason_len + der_len;
    if (total > cap || total > MSG_MAX_SIZE)
        return -EMSGSIZE;
    body.reason_len = (uint16_t)reason_len;
    body.der_len = (uint32_t)der_len;
    msgcodec_put_hdr(out, MSG_CERT_REPLY, total, id);
    off = msgcodec_put(out, sizeof(struct msg_hdr), &body, sizeof(body));
    off = msgcodec_put(out, off, reason, reason_len);
    msgcodec_put(out, off, der, der_len);
    return (ssize_t)total;
}

ssize_t msgcodec_encode_stats(uint8_t *out, size_t cap, const struct msg_stats *s)
{
    size_t total = sizeof(struct msg_hdr) + sizeof(*s);

    if (total > cap)
        return -EMSGSIZE;
    msgcodec_put_hdr(out, MSG_STATS, total, 0);
    msgcodec_put(out, sizeof(struct msg_hdr), s, sizeof(*s));
    return (ssize_t)total;
}

ssize_t msgcodec_encode_ready(uint8_t *out, size_t cap)
{
    if (cap < sizeof(struct msg_hdr))
        return -EMSGSIZE;
    msgcodec_put_hdr(out, MSG_READY, sizeof(struct msg_hdr), 0);
    return (ssize_t)sizeof(struct msg_hdr);
}

int msgcodec_decode_hdr(const uint8_t *p, size_t len, struct msg_hdr *hdr, const char **why)
{
    if (len < sizeof(*hdr)) {
        *why = "message shorter than its header";
        return -EPROTO;
    }
    if (len > MSG_MAX_SIZE) {
        *why = "message larger than MSG_MAX_SIZE";
        return -EPROTO;
    }
    memcpy(hdr, p, sizeof(*hdr));
    if (hdr->version != MSG_VERSION) {
        *why = "message version mismatch";
        return -EPROTO;
    }
    if (hdr->type == 0 || hdr->type >= MSG_TYPE_COUNT) {
        *why = "unknown message type";
        return -EPROTO;
    }
    if (hdr->len != len) {
        *why = "message length field does not match the datagram";
        return -EPROTO;
    }
    return 0;
}

/* struct msgcodec_reader walks a datagram body; every take is bounds-checked. */
struct msgcodec_reader {
    const uint8_t *p;
    size_t left;
};

static int msgcodec_take(struct msgcodec_reader *r, size_t n, const uint8_t **out)
{
    if (n > r->left)
        return -EPROTO;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return 0;
}

static int msgcodec_body(const uint8_t *p, size_t len, uint16_t type, struct msgcodec_reader *r,
                         const char **why)
{
    struct msg_hdr h;
    int err = msgcodec_decode_hdr(p, len, &h, why);

    if (err)
        return err;
    if (h.type != type) {
        *why = "unexpected message type";
        return -EPROTO;
    }
    r->p = p + sizeof(h);
    r->left = len - sizeof(h);
    return 0;
}

int msgcodec_decode_hello(const uint8_t *p, size_t len, struct msg_hello_view *v, const char **why)
{
    struct msgcodec_reader r;
    struct msg_hello body;
    const uint8_t *q;
    int err = msgcodec_body(p, len, MSG_HELLO, &r, why);

    if (err)
        return err;
    if (msgcodec_take(&r, sizeof(body), &q) != 0)
        goto truncated;
    memcpy(&body, q, sizeof(body));
    if (body.ca_der_len == 0 || body.ca_der_len > MSG_MAX_DER || body.key_der_len == 0 ||
        body.key_der_len > MSG_MAX_DER) {
        *why = "hello: DER length out of range";
        return -EPROTO;
    }
    v->worker_id = body.worker_id;
    v->ticket_key.p = q + offsetof(struct msg_hello, ticket_key);
    v->ticket_key.len = MSG_TICKET_KEY_LEN;
    if (msgcodec_take(&r, body.ca_der_len, &v->ca_der.p) != 0)
        goto truncated;
    v->ca_der.len = body.ca_der_len;
    if (msgcodec_take(&r, body.key_der_len, &v->key_der.p) != 0)
        goto truncated;
    v->key_der.len = body.key_der_len;
    if (r.left != 0) {
        *why = "hello: trailing bytes";
        return -EPROTO;
    }
    return 0;
truncated:
    *why = "hello: truncated";
    return -EPROTO;
}

int msgcodec_decode_cert_req(const uint8_t *p, size_t len, struct msg_cert_req_view *v,
                             const char **why)
{
    struct msgcodec_reader r;
    struct msg_cert_req body;
    const uint8_t *q;
    size_t i;
    int err = msgcodec_body(p, len, MSG_CERT_REQ, &r, why);

    if (err)
        return err;
    if (msgcodec_take(&r, sizeof(body), &q) != 0)
        goto truncated;
    memcpy(&body, q, sizeof(body));
    if (body.n_names == 0 || body.n_names > MSG_MAX_NAMES) {
        *why = "cert request: name count out of range";
        return -EPROTO;
    }
    if (body.org_len > MSG_MAX_ORG_LEN) {
        *why = "cert request: organization too long";
        return -EPROTO;
    }
    if (msgcodec_take(&r, body.org_len, &v->org.p) != 0)
        goto truncated;
    v->org.len = body.org_len;
    if (memchr(v->org.p, '\0', v->org.len) != NULL) {
        *why = "cert request: NUL in organization";
        return -EPROTO;
    }
    v->n_names = body.n_names;
    for (i = 0; i < body.n_names; i++) {
        const uint8_t *lp;

        if (msgcodec_take(&r, 1, &lp) != 0)
            goto truncated;
        if (*lp == 0) {
            *why = "cert request: empty name";
            return -EPROTO;
        }
        /* The length byte can say up to 255; receivers size name buffers by the limit. */
        if (*lp > MSG_MAX_NAME_LEN) {
            *why = "cert request: name longer than MSG_MAX_NAME_LEN";
            return -EPROTO;
        }
        if (msgcodec_take(&r, *lp, &v->names[i].p) != 0)
            goto truncated;
        v->names[i].len = *lp;
        if (memchr(v->names[i].p, '\0', *lp) != NULL) {
            *why = "cert request: NUL in name";
            return -EPROTO;
        }
    }
    if (r.left != 0) {
        *why = "cert request: trailing bytes";
        return -EPROTO;
    }
    return 0;
truncated:
    *why = "cert request: truncated";
    return -EPROTO;
}

int msgcodec_decode_cert_reply(const uint8_t *p, size_t len, struct msg_cert_reply_view *v,
                               const char **why)
{
    struct msgcodec_reader r;
    struct msg_cert_reply body;
    const uint8_t *q;
    int err = msgcodec_body(p, len, MSG_CERT_REPLY, &r, why);

    if (err)
        return err;
    if (msgcodec_take(&r, sizeof(body), &q) != 0)
        goto truncated;
    memcpy(&body, q, sizeof(body));
    if (body.reason_len > MSG_MAX_REASON || body.der_len > MSG_MAX_DER) {
        *why = "cert reply: length out of range";
        return -EPROTO;
    }
    if (body.status > 0 || (body.status == 0) != (body.der_len > 0)) {
        *why = "cert reply: status and DER disagree";
        return -EPROTO;
    }
    v->status = body.status;
    v->not_after = body.not_after;
    if (msgcodec_take(&r, body.reason_len, &v->reason.p) != 0)
        goto truncated;
    v->reason.len = body.reason_len;
    if (msgcodec_take(&r, body.der_len, &v->der.p) != 0)
        goto truncated;
    v->der.len = body.der_len;
    if (r.left != 0) {
        *why = "cert reply: trailing bytes";
        return -EPROTO;
    }
    return 0;
truncated:
    *why = "cert reply: truncated";
    return -EPROTO;
}

int msgcodec_decode_stats(const uint8_t *p, size_t len, struct msg_stats *s, const char **why)
{
    struct msgcodec_reader r;
    const uint8_t *q;
    int err = msgcodec_body(p, len, MSG_STATS, &r, why);

    if (err)
        return err;
    if (r.left != sizeof(*s) || msgcodec_take(&r, sizeof(*s), &q) != 0) {
        *why = "stats: wrong length";
        return -EPROTO;
    }
    memcpy(s, q, sizeof(*s));
    return 0;
}

int msgcodec_decode_ready(const uint8_t *p, size_t len, const char **why)
{
    struct msgcodec_reader r;
    int err = msgcodec_body(p, len, MSG_READY, &r, why);

    if (err)
        return err;
    if (r.left != 0) {
        *why = "ready: trailing bytes";
        return -EPROTO;
    }
    return 0;
}
