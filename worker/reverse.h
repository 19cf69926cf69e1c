/* reverse.h - the reverse-proxy protocol of a new client connection (mitmproxy's
 * --mode reverse:URL): every connection goes to the URL's host and port; once connected, the
 * client's first bytes decide the client side (TLS -> intercepted with a certificate forged
 * for the SNI, or the server's names and the address the client reached; HTTP -> relayed and
 * recorded) and the URL's scheme the server side, independently (mitmproxy's next_layer): an
 * http:// server gets no TLS from a TLS client, an https:// server gets mitmd's own verified
 * TLS under a plain client. A failed dial is answered 502 in the clear and recorded. Never
 * blocks, never allocates. */
#ifndef MITMD_WORKER_REVERSE_H
#define MITMD_WORKER_REVERSE_H

#include <stdbool.h>
#include <stddef.h>

struct conn;

/* reverse_start makes the reverse protocol drive the new connection `c` (a conn_start_fn for
 * reverse-mode listeners); the server is the mode of the listener `c` came in on (c->mode). */
void reverse_start(struct conn *c);

/* reverse_host_rewrite writes into `out` the Host a reverse proxy sends its server (mitmproxy's
 * keep_host_header=false, the default): the server's "host[:port]" (brackets for IPv6, no port
 * when it is the scheme's default). Returns its length, or 0 when `m` is not reverse mode or
 * `keep_host_header` is set (the client's Host goes as sent), or -ENOSPC. For the relays' Host /
 * :authority rewrite. Never allocates. */
struct mode_spec;
int reverse_host_rewrite(const struct mode_spec *m, bool keep_host_header, char *out,
                         size_t cap);

#endif
