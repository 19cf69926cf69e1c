/* onboarding.h - mitmproxy's onboarding app: a plain-HTTP request through the proxy for
 * http://ONBOARDING_HOST[:ONBOARDING_PORT]/ (default mitm.it:80) is answered by mitmd itself
 * (and any request inside an intercepted CONNECT to that host, any port, as mitmproxy 10+)
 * with a page telling a person how to trust mitmd's CA on each platform, and /cert/pem,
 * /cert/p12, /cert/cer with the confdir's mitmd-ca-cert.* bytes (handed over by the master in
 * the certificate bundle, tls_ctx certs). Owns the page, the routes and the answers. Called by
 * the HTTP/1.1 protocol driver (h1_conn.c) on a plaintext client leg before the relay sees a
 * request head. Never contacts an upstream, never allocates, never blocks. */
#ifndef MITMD_WORKER_ONBOARDING_H
#define MITMD_WORKER_ONBOARDING_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct conn;
struct config;

/* ONBOARDING_PAGE_MAX bounds the HTML page (it must fit one leg's output with its head). */
#define ONBOARDING_PAGE_MAX 12288

/* onboarding_step answers the request at the head of `c`'s plaintext client input when it is
 * for the onboarding host (onboarding on, the client leg not TLS): it consumes the input,
 * queues the answer (200 page or file, 404, 405), records the flow and closes the connection
 * after the answer (Connection: close, so that a browser's next request starts a new
 * connection). Returns 1 when it answered, 0 when the request is not for it (the relay goes
 * on), -EAGAIN when it is but the head is incomplete or the output has no room yet (the
 * caller must not let the relay read it: call again on the next step). */
int onboarding_step(struct conn *c);

/* onboarding_connect takes over a CONNECT to the onboarding host (any port, as mitmproxy 10+;
 * the head already consumed): no upstream is dialled; it answers 200 and lets the proxy
 * request sniff the client's first bytes, so that TLS is intercepted with a forged
 * certificate for the host (intercept.c skips the upstream: onboarding_is_host) and the
 * requests inside are answered by onboarding_step. Returns true when it took the connection
 * (or closed it), false when the CONNECT is not for it. Never allocates. */
bool onboarding_connect(struct conn *c);

/* onboarding_is_host is true when `c` was opened by a CONNECT to the onboarding host (with
 * onboarding on): its upstream is never dialled. */
bool onboarding_is_host(const struct conn *c);

/* onboarding_is_for reports whether the request head starting at `p`/`n` (method SP
 * request-target ...) names the onboarding host of `cfg` in absolute form
 * ("http://mitm.it/...", host case-insensitive, port ONBOARDING_PORT whether or not it is
 * written). Looks only at the request line's first bytes; false while they are incomplete
 * unless they already differ. Never allocates. */
bool onboarding_is_for(const struct config *cfg, const char *p, size_t n);

/* onboarding_render writes the response for `path` (origin-form, query allowed) and `method`
 * into `out` (capacity `cap`): status line, Content-Type, Content-Disposition for files,
 * Content-Length, Cache-Control: no-store, Connection: close, then the body unless `head`.
 * `pem`/`p12`/`cer` are the CA files (NULL or 0 length = not available: 404). `confdir` is
 * named on the page. Stores the status in `*status` and the body length in `*body_len`.
 * Returns the total length, or -ENOSPC. Never allocates. */
ssize_t onboarding_render(char *out, size_t cap, const char *path, size_t path_len, bool head,
                          bool get, const char *confdir, const void *pem, size_t pem_len,
                          const void *p12, size_t p12_len, const void *cer, size_t cer_len,
                          int *status, size_t *body_len);

#endif
