/* proxy_hdr.h - the first protocol of a connection on a PROXY protocol listener (--set
 * proxy_protocol=true): reads the v1/v2 header (shared/proxy_proto) within --request-timeout,
 * makes the address it names the flow's client, then hands the connection to the listener's
 * mode. A connection without a valid header is recorded as a flow with the reason, counted as
 * a client error and closed, unanswered. Never blocks, never allocates. */
#ifndef MITMD_WORKER_PROXY_HDR_H
#define MITMD_WORKER_PROXY_HDR_H

#include "worker/conn.h"

/* proxy_hdr_start_then makes the PROXY header protocol drive the new connection `c`; once the
 * header is read and consumed, `next` starts the connection's real first protocol (with the
 * bytes after the header in the client's input). */
void proxy_hdr_start_then(struct conn *c, conn_start_fn *next);

/* proxy_hdr_start is proxy_hdr_start_then(c, modes_start_fn(cfg)): a conn_start_fn for a
 * listener whose connections all come through a PROXY protocol sender. */
void proxy_hdr_start(struct conn *c);

#endif
