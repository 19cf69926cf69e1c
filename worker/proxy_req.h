/* proxy_req.h - the explicit-proxy protocol of a new client connection (mitmproxy's regular
 * mode): reads the first request head, answers CONNECT (eager upstream dial, 200 or 502 with
 * the reason), hands absolute-form requests to the HTTP/1.1 relay, refuses origin-form
 * requests with a 400 that explains how to use a proxy, and sniffs the first bytes after
 * CONNECT (TLS ClientHello -> intercept or --ignore-hosts tunnel; HTTP -> relay; anything
 * else -> tunnel). Also the one place that answers before a relay exists. Never blocks,
 * never allocates. */
#ifndef MITMD_WORKER_PROXY_REQ_H
#define MITMD_WORKER_PROXY_REQ_H

struct conn;

/* proxy_req_start makes the proxy-request protocol drive the new connection `c` (a
 * conn_start_fn for regular-mode listeners). */
void proxy_req_start(struct conn *c);

/* proxy_req_start_sniff makes the proxy-request protocol drive `c` from the point after a
 * CONNECT was answered: its upstream is connected, and the client's first bytes decide (TLS
 * ClientHello -> intercept or passthrough, HTTP -> relay, else tunnel). For modes that know
 * the upstream without a CONNECT (reverse, transparent, socks5). */
void proxy_req_start_sniff(struct conn *c);

/* proxy_req_answer queues a complete answer with `status` and reason `why` (answer.h; `body`
 * NULL = the reason and its hint) on the client leg in the clear, records it as a flow with
 * `why` as its error (the request fields already recorded, if any), then closes after the
 * flush. */
void proxy_req_answer(struct conn *c, int status, const char *why, const char *body);

#endif
