/* msgcodec.h - encode and decode the master <-> worker messages of msg.h.
 * Owns the validation of every length field: decoders accept only datagrams whose lengths
 * add up exactly. Used by both processes; never allocates, never blocks. */
#ifndef MITMD_SHARED_MSGCODEC_H
#define MITMD_SHARED_MSGCODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "shared/msg.h"

/* struct msg_slice is a borrowed byte range inside a received datagram. */
struct msg_slice {
    const uint8_t *p;
    size_t len;
};

/* Decoded views. Every slice points into the datagram passed to the decoder and is valid
 * while it is; nothing is copied. */
struct msg_hello_view {
    uint32_t worker_id;
    struct msg_slice ca_der, key_der;
    struct msg_slice ticket_key; /* MSG_TICKET_KEY_LEN bytes */
};
struct msg_cert_req_view {
    size_t n_names;
    struct msg_slice names[MSG_MAX_NAMES];
    struct msg_slice org;
};
struct msg_cert_reply_view {
    int32_t status;
    int64_t not_after;
    struct msg_slice reason, der;
};

/* msgcodec_encode_hello writes a MSG_HELLO into `out` (capacity `cap`); `ticket_key` is
 * MSG_TICKET_KEY_LEN bytes. Returns the datagram length, or -EMSGSIZE if a DER exceeds
 * MSG_MAX_DER or `cap` is too small. */
ssize_t msgcodec_encode_hello(uint8_t *out, size_t cap, uint32_t worker_id, const uint8_t *ca_der,
                              size_t ca_len, const uint8_t *key_der, size_t key_len,
                              const uint8_t *ticket_key);

/* msgcodec_encode_cert_req writes a MSG_CERT_REQ for `n` NUL-terminated names and an
 * optional organization (`org` may be NULL). Returns the datagram length, -EINVAL for an
 * empty or over-long name or n == 0 or n > MSG_MAX_NAMES, or -EMSGSIZE when it does not fit. */
ssize_t msgcodec_encode_cert_req(uint8_t *out, size_t cap, uint64_t id, const char *const *names,
                                 size_t n, const char *org);

/* msgcodec_encode_cert_reply writes a MSG_CERT_REPLY. With status 0, `der` is the leaf;
 * otherwise `reason` (NUL-terminated, truncated to MSG_MAX_REASON) says why. Returns the
 * datagram length or -EMSGSIZE. */
ssize_t msgcodec_encode_cert_reply(uint8_t *out, size_t cap, uint64_t id, int32_t status,
                                   const char *reason, const uint8_t *der, size_t der_len,
                                   int64_t not_after);

/* msgcodec_encode_stats writes a MSG_STATS. Returns the datagram length or -EMSGSIZE. */
ssize_t msgcodec_encode_stats(uint8_t *out, size_t cap, const struct msg_stats *s);

/* msgcodec_encode_ready writes a MSG_READY (a header alone). Returns the datagram length or
 * -EMSGSIZE. */
ssize_t msgcodec_encode_ready(uint8_t *out, size_t cap);

/* msgcodec_decode_hdr validates the header of the datagram `p`/`len` (version, known type,
 * `len` field equal to the datagram length) and copies it to `*hdr`. Returns 0, or -EPROTO
 * with `*why` set to a static string. */
int msgcodec_decode_hdr(const uint8_t *p, size_t len, struct msg_hdr *hdr, const char **why);

/* The body decoders take the whole datagram (already accepted by msgcodec_decode_hdr with
 * the matching type) and fill a view. Each returns 0, or -EPROTO with `*why` set. Every
 * length is checked against its msg.h limit and against the bytes left before it is used:
 * a decoded CERT_REQ has 1..MSG_MAX_NAMES names of 1..MSG_MAX_NAME_LEN bytes without NUL
 * and an organization of at most MSG_MAX_ORG_LEN bytes, so fixed buffers of those sizes
 * (plus a NUL) always hold them. */
int msgcodec_decode_hello(const uint8_t *p, size_t len, struct msg_hello_view *v, const char **why);
int msgcodec_decode_cert_req(const uint8_t *p, size_t len, struct msg_cert_req_view *v,
                             const char **why);
int msgcodec_decode_cert_reply(const uint8_t *p, size_t len, struct msg_cert_reply_view *v,
                               const char **why);
int msgcodec_decode_stats(const uint8_t *p, size_t len, struct msg_stats *s, const char **why);
int msgcodec_decode_ready(const uint8_t *p, size_t len, const char **why);

#endif
