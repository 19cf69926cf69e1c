/* tls_peek.h - looks at a client's first bytes before any TLS state exists: is it a TLS
 * ClientHello, and which SNI does it carry (for --ignore-hosts passthrough decisions).
 * Pure parsers over caller bytes: no BoringSSL, no allocation, never reads past p + n. */
#ifndef MITMD_WORKER_TLS_PEEK_H
#define MITMD_WORKER_TLS_PEEK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* TLS_PEEK_HELLO_MAX bounds the ClientHello message the peek reassembles (it may span
 * several records); real ones are well under 4 KiB. */
#define TLS_PEEK_HELLO_MAX 16384

/* tls_peek_is_client_hello is true when the `n` bytes at `p` are consistent with the start
 * of a TLS handshake record carrying a ClientHello (RFC 8446 §5.1: type 22, version 3.x,
 * handshake type 1), judged on the bytes present: one byte 0x16 is enough to say true,
 * plain HTTP ("GET ", "POST") is false. n == 0 is false. */
bool tls_peek_is_client_hello(const uint8_t *p, size_t n);

/* tls_peek_client_hello_sni parses the TLS records at `p`/`n` far enough to read the
 * ClientHello's server_name (RFC 6066 §3, host_name type). It writes the name
 * NUL-terminated to `out` (capacity `cap`) and returns its length, or 0 with out = "" when
 * the ClientHello has no SNI. Returns -EAGAIN when more bytes are needed, -EPROTO when the
 * bytes are not a well-formed ClientHello (or the name holds bytes other than printable
 * ASCII), -EMSGSIZE when the ClientHello exceeds TLS_PEEK_HELLO_MAX or the name does not
 * fit `out`. Uses about TLS_PEEK_HELLO_MAX bytes of stack. */
ssize_t tls_peek_client_hello_sni(const uint8_t *p, size_t n, char *out, size_t cap);

#endif
