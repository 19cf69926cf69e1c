/* upstream.h - the upstream side of a connection: where it goes (host, port), resolving the
 * name, walking its addresses, the TCP connect with its timeout, and the human reason of a
 * failure. Every mode and protocol dials through it; the outcome goes to the connection's
 * protocol (conn_proto.on_upstream). Never blocks (DNS is asynchronous), never allocates. */
#ifndef MITMD_WORKER_UPSTREAM_H
#define MITMD_WORKER_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "shared/target_parse.h"
#include "worker/dns.h"
#include "worker/ring.h"

struct conn;

#define UPSTREAM_VIA_AUTH_MAX 512 /* USER:PASS of --upstream-auth */
/* "Basic " and the base64 of USER:PASS, NUL-terminated */
#define UPSTREAM_VIA_AUTH_VALUE_MAX (6 + 4 * ((UPSTREAM_VIA_AUTH_MAX + 2) / 3) + 1)

/* struct upstream_via is the next proxy of mitmproxy's upstream mode: every dial goes to it
 * and asks for the real target with CONNECT, except the dial of a plain http:// request, whose
 * head goes to the next proxy in absolute-form instead (the worker's, fixed at start). */
struct upstream_via {
    char host[TARGET_HOST_MAX + 1];
    uint16_t port;
    bool is_ipv6;
    const char *auth; /* "USER:PASS" for Proxy-Authorization: Basic, or NULL */
    char auth_value[UPSTREAM_VIA_AUTH_VALUE_MAX]; /* its Proxy-Authorization value; "" none */
};

/* struct upstream is embedded in struct conn. Fields are read by protocols; written here. */
struct upstream {
    char host[TARGET_HOST_MAX + 1]; /* NUL-terminated, no IPv6 brackets */
    uint16_t port;
    bool host_is_ip;
    bool name_fixed;   /* TLS upstream: SNI and verification use `host`, not the client's SNI
                        * (reverse mode: the server is the one the URL names) */
    bool dialing;      /* a resolve or connect is in progress */
    bool via_wait;     /* connected to the next proxy; waiting for its answer to CONNECT */
    const struct upstream_via *via; /* upstream mode's next proxy, or NULL (direct) */
    bool via_plain;    /* this dial ends at the next proxy itself, no CONNECT: the protocol
                        * sends it plain http:// requests in absolute-form */
    bool retry;        /* connect again once the cancelled connect completes */
    unsigned addr_idx; /* which of dns's addresses the connect uses */
    uint64_t t_start;   /* dial started (CLOCK_MONOTONIC ns) */
    uint64_t t_connect; /* the current address's TCP connect started */
    uint64_t t_tls;     /* upstream_tls_h1_start began the TLS handshake */
    struct dns_req dns;
    struct ring_op connect_op;
};

/* upstream_init prepares the embedded upstream of a fresh connection. */
void upstream_init(struct conn *c);

/* upstream_set_target sets where the upstream goes: `host` (`len` bytes, no brackets) and
 * `port`. Returns 0, or -ENAMETOOLONG when the name does not fit. */
int upstream_set_target(struct conn *c, const char *host, size_t len, uint16_t port);

/* upstream_via_set_auth fills v->auth_value from v->auth ("" when auth is NULL or longer
 * than UPSTREAM_VIA_AUTH_MAX). Called once per worker when the listeners are set up. */
void upstream_via_set_auth(struct upstream_via *v);

/* upstream_dial_plain_via makes the next dial of `c` (after upstream_set_target, which clears
 * it) end at upstream mode's next proxy without a CONNECT: the protocol then writes plain
 * http:// requests to it in absolute-form with the next proxy's Proxy-Authorization, as
 * mitmproxy does. A no-op outside upstream mode. */
void upstream_dial_plain_via(struct conn *c);

/* upstream_dial drops any upstream socket, resolves the target and connects to its addresses
 * in turn (--connect-timeout for the whole dial). The outcome goes to c->proto->on_upstream
 * exactly once: from a later completion, or from inside this call when the dial cannot even
 * start. On success c->up is connected and the flow names the server's address. */
void upstream_dial(struct conn *c);

/* upstream_step advances a dial through the next proxy (upstream mode): it reads the answer
 * to CONNECT from the upstream leg and ends the dial (2xx: connected to the target through the
 * tunnel; else the proxy's status in the reason). The connection loop calls it before the
 * protocol's step. Returns whether it made progress. */
bool upstream_step(struct conn *c);

/* upstream_check_timeout fails a dial older than --connect-timeout at `now` ("connect
 * timeout"). Returns whether it did. */
bool upstream_check_timeout(struct conn *c, uint64_t now);

/* upstream_tls_h1_start begins mitmd's own TLS handshake on the connected upstream leg of `c`
 * for an https:// target that is spoken to in HTTP/1.1 (the HTTP/1.1 relay's dials, reverse
 * mode's plain clients, the HTTP/2 bridge's redials): HTTP/1.1 is the only ALPN offer, SNI is
 * the target's name (none for an IP literal) and the certificate is verified for that name.
 * Sets c->up.tls_on and the start time. Returns 0, or -errno (logged, with the connection id)
 * with `*why` set to the 502's reason (static). */
int upstream_tls_h1_start(struct conn *c, const char **why);

/* upstream_tls_step advances the handshake upstream_tls_h1_start began. Returns 0 when it is
 * complete, -EAGAIN while it waits for the server, or another -errno with `*why` set to the
 * 502's reason: the TLS failure (pointing into the leg: copy it before conn_up_drop), or the
 * server's close during the handshake. */
int upstream_tls_step(struct conn *c, const char **why);

/* upstream_tls_timed_out returns whether the handshake upstream_tls_h1_start began has run
 * for --handshake-timeout at `now` (CLOCK_MONOTONIC ns); if so `*why` is set to the 502's
 * reason (static). */
bool upstream_tls_timed_out(const struct conn *c, uint64_t now, const char **why);

/* upstream_note_tls records the upstream TLS handshake of `c` that upstream_tls_h1_start began
 * and that just completed: its duration, the server certificate's subject and issuer in the
 * flow, and the handshake and resumption counters; with `as_record_tls` also the server name,
 * ALPN and version as the record's TLS details (a client that speaks plain HTTP to an https://
 * server: the record's TLS is the server's). */
void upstream_note_tls(struct conn *c, bool as_record_tls);

/* upstream_errno_why returns a short human reason for a connect error (-errno). */
const char *upstream_errno_why(int err);

#endif
