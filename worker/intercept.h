/* intercept.h - TLS interception of one CONNECTed connection: pauses the client handshake at
 * its ClientHello, runs the upstream handshake with the client's SNI and ALPN, forms the
 * forged certificate's name set, gets the leaf from certcache or the master, resumes the
 * client handshake, then starts the h1 relay over the two plaintext streams. Called by conn.c
 * and proxy_req.c; never blocks, never allocates beyond the two tls_conns. */
#ifndef MITMD_WORKER_INTERCEPT_H
#define MITMD_WORKER_INTERCEPT_H

#include <stdbool.h>

struct conn;

/* intercept_start begins interception after the client's first bytes were recognised as a
 * ClientHello. Returns 0 or -errno (the caller closes the connection). */
int intercept_start(struct conn *c);

/* intercept_step advances the handshakes (CONN_STATE_TLS_UP, _CERT_WAIT, _TLS_CLIENT) with
 * the bytes in the buffers. Returns true when it made progress. */
bool intercept_step(struct conn *c);

/* intercept_handshake_timeout handles --handshake-timeout: an upstream that did not finish
 * becomes "upstream TLS handshake timed out" (502 to the client); a client that did not
 * finish is closed. */
void intercept_handshake_timeout(struct conn *c);

/* intercept_dispose cancels a pending certificate wait and frees both tls_conns of `c`.
 * Safe to call more than once. */
void intercept_dispose(struct conn *c);

#endif
