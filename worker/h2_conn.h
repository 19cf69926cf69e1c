/* h2_conn.h - the HTTP/2 relay as a connection protocol: connects worker/h2_relay (two
 * nghttp2 sessions over four plaintext buffers) to an intercepted connection's TLS legs,
 * applies the request-head and idle timeouts, drains with GOAWAY and adds the relay's
 * counters to the worker's statistics when it ends. Never blocks; allocates only through
 * h2_relay (nghttp2 sessions, streams from the worker's pool). */
#ifndef MITMD_WORKER_H2_CONN_H
#define MITMD_WORKER_H2_CONN_H

struct conn;

/* h2_conn_start makes the HTTP/2 relay drive `c`, whose two TLS legs chose h2. Returns 0 or
 * -errno from h2_relay_init (the caller closes the connection). */
int h2_conn_start(struct conn *c);

/* h2_conn_start_h1up makes the HTTP/2 relay drive `c`, whose client chose h2 and whose upstream
 * (connected; plain, or TLS that chose http/1.1 or no ALPN) speaks HTTP/1.1: the relay's
 * upstream side is a bridge (worker/h2_h1up.h, allocated here) serving its streams one at a
 * time over that connection. Returns 0, -ENOMEM or -errno from h2_relay_init (the caller
 * closes the connection). */
int h2_conn_start_h1up(struct conn *c);

/* h2_conn_start_failed makes the HTTP/2 relay drive `c`, whose client chose h2 and whose
 * upstream is unusable (dropped by the caller): every request is answered 502 with `why`
 * (copied). Returns 0 or -errno from h2_relay_init (the caller closes the connection). */
int h2_conn_start_failed(struct conn *c, const char *why);

#endif
