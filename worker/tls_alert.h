/* tls_alert.h - finds the alert a TLS client sent in the clear, by walking the record headers
 * of the bytes it sent (RFC 8446 §5.1). A TLS 1.3 client that rejects the server's certificate
 * often sends its alert unencrypted (it has no handshake write key yet), which the server can
 * only report as "decryption failed"; the walk recovers "unknown_ca" for the person reading
 * the flow. Pure parsing of untrusted bytes: no allocation, no I/O. */
#ifndef MITMD_WORKER_TLS_ALERT_H
#define MITMD_WORKER_TLS_ALERT_H

#include <stddef.h>
#include <stdint.h>

/* struct tls_alert_walk is the state of a walk over one direction of a connection. Zero it
 * to start at a record boundary. */
struct tls_alert_walk {
    uint8_t hdr[5];  /* the record header being collected */
    uint8_t hdr_len; /* bytes of it collected */
    uint8_t body[2]; /* the first bytes of a plaintext alert record */
    uint8_t body_len;
    uint16_t rec_left; /* body bytes of the current record still to skip */
    uint8_t rec_type;
    uint16_t rec_len;
    int alert;   /* the last plaintext alert's description, -1 none */
    int level;   /* its level (1 warning, 2 fatal) */
    int invalid; /* 1 once the bytes stopped looking like TLS records; the walk then stops */
};

/* tls_alert_walk_init starts a walk at a record boundary. */
void tls_alert_walk_init(struct tls_alert_walk *w);

/* tls_alert_walk_feed walks the next `n` bytes of the stream (`p` may be NULL when n == 0).
 * A record of type alert (21) and length 2 is plaintext: its description is kept in
 * w->alert. Anything that is not a TLS record header sets w->invalid. */
void tls_alert_walk_feed(struct tls_alert_walk *w, const uint8_t *p, size_t n);

/* tls_alert_name returns the RFC 8446 §6 name of alert description `desc` ("unknown_ca"),
 * or "unknown alert" for one not registered. Static string. */
const char *tls_alert_name(int desc);

/* tls_alert_is_untrusted returns whether `desc` says the client rejected our certificate
 * (bad_certificate, unsupported_certificate, certificate_revoked, certificate_expired,
 * certificate_unknown, unknown_ca). */
int tls_alert_is_untrusted(int desc);

#endif
