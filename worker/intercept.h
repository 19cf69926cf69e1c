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

/* intercept_start_failed begins interception of `c`, whose upstream could not be reached
 * (reverse mode: the dial at accept failed), with reason `why` (copied): the client still
 * gets a forged certificate, then every request a 502 whose body is `why` (over HTTP/2 when
 * the client offers h2). Returns 0 or -errno (the caller closes the connection). */
int intercept_start_failed(struct conn *c, const char *why);

#endif
