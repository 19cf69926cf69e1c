/* access.h - who may use a worker's proxy: mitmproxy's block_global / block_private on the
 * client's address (at accept, or from the PROXY protocol header when that is on) and the
 * --proxyauth credentials (shared/proxyauth) that the proxy protocols check (CONNECT and
 * absolute-form requests, SOCKS5 RFC 1929). Owns the worker's compiled credentials and the
 * rate limit of the refusal log. Called by the worker's set-up and the connection protocols;
 * never blocks on the loop, never allocates after access_open. */
#ifndef MITMD_WORKER_ACCESS_H
#define MITMD_WORKER_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "shared/config.h"
#include "shared/h1_parse.h"

struct conn;
struct worker;
struct proxyauth;

/* enum access_class is how mitmproxy's block addon (Python's ipaddress) sees an address. */
enum access_class {
    ACCESS_CLASS_LOOPBACK = 0, /* 127.0.0.0/8, ::1 (and ::ffff:127.x): always admitted */
    ACCESS_CLASS_PRIVATE,      /* not globally reachable (IANA special registries) */
    ACCESS_CLASS_GLOBAL,       /* globally reachable */
    ACCESS_CLASS_NEITHER,      /* 100.64.0.0/10 (shared CGN space): neither private nor global */
    ACCESS_CLASS_UNKNOWN,      /* not an IP address (unix socket, none known): admitted */
};

/* struct access is embedded in struct worker. */
struct access {
    struct proxyauth *auth; /* --proxyauth compiled; NULL = none */
    uint64_t log_ns;        /* last refusal logged (CLOCK_MONOTONIC ns) */
    unsigned log_skipped;   /* refusals not logged since */
};

/* access_open compiles the worker's --proxyauth (reading an @FILE: start-up only, may block)
 * into w->access. Returns 0, or -errno with `err` holding one line. */
int access_open(struct worker *w, char *err, size_t errlen);

/* access_close frees what access_open made; safe after a failed or no access_open. */
void access_close(struct worker *w);

/* access_classify returns the class of `sa` (`len` bytes), IPv4-mapped IPv6 addresses as
 * their IPv4 address, as mitmproxy does. Pure; never allocates. */
enum access_class access_classify(const struct sockaddr *sa, socklen_t len);

/* access_refusal returns the option that refuses a client at `sa` under `cfg` ("block_global"
 * or "block_private", static strings), or NULL when the client is admitted: loopback always,
 * a private address unless block_private, a global one unless block_global (mitmproxy's
 * addons/block.py). */
const char *access_refusal(const struct config *cfg, const struct sockaddr *sa, socklen_t len);

/* access_admit is the hook where a connection's client address becomes known: at accept
 * (skipped when --set proxy_protocol is on: the header's address decides) and after the PROXY
 * protocol header (with_header true). It checks c->flow.client_addr; a refused client is
 * counted (MSG_STAT_BLOCKED), logged (one line a second at most, with a count of the rest)
 * and closed without a byte, as mitmproxy kills the connection. Returns whether `c` goes on. */
bool access_admit(struct conn *c, bool with_header);

/* access_auth returns the worker's compiled --proxyauth, or NULL when none is set. */
struct proxyauth *access_auth(struct worker *w);

/* access_check_request returns whether a proxy request whose fields are `headers` may pass:
 * true without --proxyauth, else when its Proxy-Authorization is accepted. A refusal is
 * counted (MSG_STAT_AUTH_FAILED) and `*why` (may be NULL) gets a static reason; the caller
 * answers 407 (answer_format adds the Proxy-Authenticate challenge). */
bool access_check_request(struct worker *w, const struct h1_header *headers, size_t num_headers,
                          const char **why);

/* access_h1_check is access_check_request as an h1_relay_auth_fn (`w` is the worker), for
 * the HTTP/1.1 relay's absolute-form requests. */
bool access_h1_check(void *w, const struct h1_header *headers, size_t num_headers,
                     const char **why);

/* access_check_www returns whether a request to a reverse or transparent listener may pass
 * --proxyauth, as mitmproxy's proxyauth addon when the proxy is not explicit: `n` fields named
 * Authorization were found (exactly one must be), `value`/`len` is the first one's value. True
 * without --proxyauth. A refusal is counted (MSG_STAT_AUTH_FAILED) and `*why` gets a static
 * reason; the caller answers 401 with PROXYAUTH_WWW_CHALLENGE and never forwards the field. */
bool access_check_www(void *w, const char *value, size_t len, size_t n, const char **why);

/* access_is_www returns whether --proxyauth on `c`'s listener is the 401 kind (reverse and
 * transparent mode: mitmproxy's is_http_proxy false). */
bool access_is_www(const struct conn *c);

/* access_check_login returns whether a SOCKS5 username/password login (RFC 1929) passes the
 * worker's --proxyauth; a refusal is counted (MSG_STAT_AUTH_FAILED). */
bool access_check_login(struct worker *w, const uint8_t *user, size_t user_len,
                        const uint8_t *pass, size_t pass_len);

#endif
