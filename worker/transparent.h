/* transparent.h - the first protocol of a connection in transparent mode (--mode transparent):
 * the client connected to some server and the kernel redirected it to mitmd (nftables or
 * iptables REDIRECT/DNAT on this host); the original destination, read from the socket
 * (SO_ORIGINAL_DST, IP6T_SO_ORIGINAL_DST), becomes the upstream, which is dialled at once; then
 * the client's first bytes decide as after a CONNECT (worker/proxy_req sniff: a ClientHello is
 * intercepted with its SNI, HTTP relayed, anything else tunnelled). Never blocks, never
 * allocates. */
#ifndef MITMD_WORKER_TRANSPARENT_H
#define MITMD_WORKER_TRANSPARENT_H

#include <stdint.h>
#include <sys/socket.h>

struct conn;

/* transparent_start makes the transparent protocol drive the new connection `c` (a
 * conn_start_fn for transparent-mode listeners). A connection with no original destination
 * (not redirected: connected to mitmd directly) is recorded as a flow with the reason and
 * closed; an upstream that cannot be reached is recorded and the client reset, as the server
 * itself would have refused it. */
void transparent_start(struct conn *c);

/* transparent_original_dst reads where the client of the accepted socket `fd` originally
 * connected before a NAT redirect, into `out` (AF_INET or AF_INET6), and its length into
 * `*len`. Returns 0, -ENOENT when the connection was not redirected (no NAT entry, or the
 * destination is the socket's own address), or another -errno. Never blocks. */
int transparent_original_dst(int fd, struct sockaddr_storage *out, socklen_t *len);

#endif
