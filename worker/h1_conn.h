/* h1_conn.h - the HTTP/1.1 relay as a connection protocol: connects worker/h1_relay (the
 * exchange state machine over four plaintext buffers) to a connection's legs, dials the
 * upstream each absolute-form request asks for, and applies the request-head and idle
 * timeouts. Never blocks, never allocates. */
#ifndef MITMD_WORKER_H1_CONN_H
#define MITMD_WORKER_H1_CONN_H

#include "worker/h1_relay.h"

struct conn;

/* h1_conn_start makes the HTTP/1.1 relay drive `c` over the legs' plaintext (through TLS
 * where a leg has it). The relay has no upstream yet: the caller tells it with
 * h1_relay_upstream_ready / _failed on h1_conn_relay(c), or absolute-form requests make it
 * dial. Returns 0. */
int h1_conn_start(struct conn *c);

/* h1_conn_start_proxy is h1_conn_start for a connection whose requests are the client's own
 * proxy requests (regular and upstream mode, no CONNECT before): with --proxyauth each
 * absolute-form request needs accepted Proxy-Authorization credentials, or gets a 407. */
int h1_conn_start_proxy(struct conn *c);

/* h1_conn_relay returns the relay of `c`, which h1_conn_start must have started. */
struct h1_relay *h1_conn_relay(struct conn *c);

#endif
