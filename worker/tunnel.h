/* tunnel.h - the raw tunnel protocol: bytes relayed untouched both ways between the client and
 * the connected upstream, half-closes passed on (--ignore-hosts passthrough, and what is
 * neither TLS nor HTTP after a CONNECT). Each tunnel ends in one flow record: the CONNECT,
 * why it was not intercepted, and the bytes each way. Never blocks, never allocates. */
#ifndef MITMD_WORKER_TUNNEL_H
#define MITMD_WORKER_TUNNEL_H

struct conn;

/* tunnel_start makes the raw tunnel drive `c`, whose upstream is connected; `why` (static
 * string) says why the bytes are not intercepted, e.g. "passthrough (--ignore-hosts)". */
void tunnel_start(struct conn *c, const char *why);

#endif
