/* answer.h - the HTTP/1.1 answers mitmd makes itself (400, 407, 408, 431, 502, 503, 504...):
 * one format for every protocol and mode, with the reason in the body and in a Proxy-Status
 * field (RFC 9209), and the matching flow record. Pure formatting: no I/O, no allocation;
 * callers queue the bytes (proxy_req_answer before a relay exists, the relays later). */
#ifndef MITMD_WORKER_ANSWER_H
#define MITMD_WORKER_ANSWER_H

#include <stddef.h>
#include <sys/types.h>

#include "worker/flow.h"

/* ANSWER_MAX bounds one formatted answer: status line, four fields, a reason of
 * ANSWER_WHY_MAX bytes twice (Proxy-Status details and body) and a hint. */
#define ANSWER_WHY_MAX 256
#define ANSWER_MAX 1536

/* RFC 9209 §2.3 error types mitmd uses (the registered names). */
#define ANSWER_DNS_ERROR "dns_error"
#define ANSWER_DESTINATION_NOT_FOUND "destination_not_found"
#define ANSWER_DESTINATION_UNAVAILABLE "destination_unavailable"
#define ANSWER_CONNECTION_REFUSED "connection_refused"
#define ANSWER_CONNECTION_TERMINATED "connection_terminated"
#define ANSWER_CONNECTION_TIMEOUT "connection_timeout"
#define ANSWER_CONNECTION_LIMIT "connection_limit_reached"
#define ANSWER_TLS_PROTOCOL_ERROR "tls_protocol_error"
#define ANSWER_TLS_CERTIFICATE_ERROR "tls_certificate_error"
#define ANSWER_HTTP_REQUEST_ERROR "http_request_error"
#define ANSWER_HTTP_REQUEST_DENIED "http_request_denied"
#define ANSWER_HTTP_RESPONSE_INCOMPLETE "http_response_incomplete"
#define ANSWER_HTTP_RESPONSE_TIMEOUT "http_response_timeout"
#define ANSWER_HTTP_PROTOCOL_ERROR "http_protocol_error"
#define ANSWER_PROXY_INTERNAL_ERROR "proxy_internal_error"
#define ANSWER_PROXY_LOOP_DETECTED "proxy_loop_detected"

/* the body of the 400 for a request sent to the proxy as if it were the server */
#define ANSWER_NOT_PROXY_BODY                                                                        \
    "mitmd is an HTTP proxy, not a web server: this request names no host to forward to.\n"     \
    "Configure your client to use it as its proxy, for example:\n"                               \
    "  curl -x http://HOST:PORT --cacert ~/.mitmd/mitmd-ca-cert.pem https://example.com/\n"      \
    "  export https_proxy=http://HOST:PORT http_proxy=http://HOST:PORT\n"                        \
    "and trust the mitmd CA certificate (mitmd-ca-cert.pem in the confdir) for HTTPS.\n"

/* answer_error_type returns the RFC 9209 error type (a static string) that fits an answer
 * with `status` and human reason `why` (e.g. 502 "connection refused" ->
 * "connection_refused", 502 "certificate verify failed: ..." -> "tls_certificate_error"). */
const char *answer_error_type(int status, const char *why);

/* answer_hint returns advice for a person who reads the reason (e.g. how to trust an upstream's
 * CA when its certificate failed verification), or "" when there is none. Static string. */
const char *answer_hint(const char *type);

/* answer_proxy_status writes the value of a Proxy-Status field for an answer with `status`
 * and reason `why` ("mitmd; error=TYPE; details=\"WHY\""; for HTTP/2, where fields are not
 * lines). Returns its length, or -ENOSPC. */
int answer_proxy_status(char *out, size_t cap, int status, const char *why);

/* answer_format writes a complete answer to `out`: "HTTP/1.1 STATUS REASON", Content-Type
 * FLOW_ANSWER_CTYPE, Content-Length, Connection: close, for a 407 the challenge
 * PROXYAUTH_CHALLENGE (Proxy-Authenticate: Basic realm="mitmd"), Proxy-Status: mitmd; error=TYPE;
 * details="WHY", then the body: `body` when not NULL, else "WHY\n" followed by
 * answer_hint(TYPE). `type` NULL means answer_error_type(status, why). `why` is truncated to
 * ANSWER_WHY_MAX bytes. Stores the body's length in `*body_len` (may be NULL). Returns the
 * total length, or -ENOSPC when `cap` is too small (nothing usable is written). */
ssize_t answer_format(char *out, size_t cap, int status, const char *why, const char *type,
                      const char *body, size_t *body_len);

/* answer_record records the answer in `f` as the exchange's response (status, reason,
 * the fields answer_format writes, `body_len`) and `why` as its error. */
void answer_record(struct flow *f, int status, const char *why, size_t body_len);

#endif
