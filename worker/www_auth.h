/* www_auth.h - --proxyauth on reverse and transparent listeners, as the relays apply it
 * (mitmproxy's proxyauth addon when is_http_proxy is false: mitmd is the server, so a 401 with
 * WWW-Authenticate and the Authorization field, which is then consumed). The checks for the
 * HTTP/1.1 relay and the HTTP/2 relay, kept out of both so that each only calls a hook. The
 * verdict itself is worker/access.h's access_check_www. Never blocks, never allocates. */
#ifndef MITMD_WORKER_WWW_AUTH_H
#define MITMD_WORKER_WWW_AUTH_H

#include <stdbool.h>

#include "shared/h1_parse.h"

struct h1_relay;
struct h2_relay;
struct h2_stream;

/* www_auth_h1_passes returns whether the request `req` of relay `r` passes the relay's
 * www_auth check (exactly one Authorization field, accepted); on false `*why` holds a static
 * reason for the 401. */
bool www_auth_h1_passes(struct h1_relay *r, const struct h1_request *req, const char **why);

/* www_auth_h1_drop adds "remove Authorization" to the header edits of the request of `r`
 * about to be forwarded: credentials that were mitmd's never reach the server (mitmproxy
 * deletes the field). Returns 0, or -ENOSPC when the edit list is full (the caller answers
 * rather than forward the field). */
int www_auth_h1_drop(struct h1_relay *r);

/* www_auth_h2_passes checks the request head of stream `st` against the relay's www_auth and,
 * when it fails, answers the stream 401 (h2_stream_answer adds www-authenticate). Returns
 * whether the request may go on. */
bool www_auth_h2_passes(struct h2_relay *r, struct h2_stream *st);

#endif
