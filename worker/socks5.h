/* socks5.h - the SOCKS5 protocol of a new client connection (mitmproxy's --mode socks5,
 * RFC 1928): method greeting (no authentication, or username/password of RFC 1929 checked
 * against --proxyauth when that is set), CONNECT to a domain, IPv4 or IPv6 target,
 * the reply mapped from the upstream dial's outcome, then the proxy-request sniff (TLS ->
 * intercept, HTTP -> relay, else tunnel). A malformed greeting or request closes that
 * connection only and is counted and recorded. Never blocks, never allocates. */
#ifndef MITMD_WORKER_SOCKS5_H
#define MITMD_WORKER_SOCKS5_H

struct conn;

/* socks5_start makes the SOCKS5 protocol drive the new connection `c` (a conn_start_fn for
 * socks5-mode listeners). */
void socks5_start(struct conn *c);

#endif
