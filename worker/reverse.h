/* reverse.h - the reverse-proxy protocol of a new client connection (mitmproxy's
 * --mode reverse:URL): every connection goes to the URL's host and port; once connected, the
 * client's first bytes decide as after a CONNECT (TLS -> intercepted with a certificate forged
 * for the SNI or the server's names, HTTP -> relayed and recorded). A failed dial is answered
 * 502 in the clear and recorded. Never blocks, never allocates. */
#ifndef MITMD_WORKER_REVERSE_H
#define MITMD_WORKER_REVERSE_H

struct conn;

/* reverse_start makes the reverse protocol drive the new connection `c` (a conn_start_fn for
 * reverse-mode listeners); the server is the worker's configured mode (cfg->proxy_mode). */
void reverse_start(struct conn *c);

#endif
