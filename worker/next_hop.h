/* next_hop.h - the first protocol of a connection in mitmproxy's upstream mode
 * (--mode upstream:http://HOST:PORT): reads the client's CONNECT, dials the next-hop proxy,
 * sends it a CONNECT for the same target (with --upstream-auth as Proxy-Authorization), reads
 * its answer, and on 2xx answers the client 200 and continues as after a regular CONNECT (the
 * client's first bytes decide: TLS intercepted, HTTP relayed, else tunnelled). The next hop's
 * refusal reaches the client as a 502 with its status in the reason. Plain absolute-form
 * http:// requests are answered 501 until the HTTP/1.1 relay can send absolute-form to a
 * proxy. Never blocks, never allocates. */
#ifndef MITMD_WORKER_NEXT_HOP_H
#define MITMD_WORKER_NEXT_HOP_H

struct conn;

/* next_hop_start makes the upstream-mode protocol drive the new connection `c` (a
 * conn_start_fn for upstream-mode listeners); the next hop is cfg->proxy_mode's server. */
void next_hop_start(struct conn *c);

#endif
