/* intercept.h - the TLS interception handshake of one connection: pauses the client handshake
 * at its ClientHello, runs the upstream handshake with the client's SNI and ALPN, forms the
 * forged certificate's name set, gets the leaf from certcache or the master, resumes the
 * client handshake, then hands the connection to the HTTP/1.1 or HTTP/2 relay (the ALPN
 * choice). A conn_proto; never blocks, never allocates beyond the two tls_conns. */
#ifndef MITMD_WORKER_INTERCEPT_H
#define MITMD_WORKER_INTERCEPT_H

struct conn;

/* intercept_start begins interception of `c`, whose upstream is connected, after the
 * client's first bytes were recognised as a ClientHello. Returns 0 or -errno (the caller
 * closes the connection). */
int intercept_start(struct conn *c);

#endif
