/* proxy_req.h - the proxy protocol of a new client connection: reads the first request head,
 * answers CONNECT (eager upstream resolve + connect, 200 or 502 with the reason), hands
 * absolute-form requests to the h1 relay, refuses origin-form requests with a 400 that
 * explains how to use a proxy, and sniffs the first bytes after CONNECT (TLS ClientHello ->
 * intercept or --ignore-hosts passthrough; anything else -> plain relay or raw tunnel).
 * Called by conn.c only; never blocks, never allocates. */
#ifndef MITMD_WORKER_PROXY_REQ_H
#define MITMD_WORKER_PROXY_REQ_H

#include <stdbool.h>

struct conn;

/* proxy_req_step runs the proxy-protocol state of `c` (CONN_STATE_REQ_HEAD, _CONNECTING,
 * _SNIFF, _TUNNEL) over the bytes in its buffers. Returns true when it changed something
 * (moved bytes or state), false when it waits for I/O. */
bool proxy_req_step(struct conn *c);

/* proxy_req_upstream_needed starts resolving and connecting the relay's current target
 * (h1_relay_target) for an absolute-form request; the outcome goes to the relay. */
void proxy_req_upstream_needed(struct conn *c);

/* proxy_req_on_connected is called by conn.c when the upstream connect completed with
 * `res` (0 or -errno). */
void proxy_req_on_connected(struct conn *c, int res);

/* proxy_req_connect_timeout fails the upstream connect in progress ("connect timeout"). */
void proxy_req_connect_timeout(struct conn *c);

/* proxy_req_answer queues a complete error answer with `status`, `reason` phrase and a
 * text body on the client leg (before any TLS), records it as a flow with `error` (the
 * request fields are those proxy_req_head parsed, if any), then closes after the flush. */
void proxy_req_answer(struct conn *c, int status, const char *reason, const char *body,
                      const char *error);

#endif
