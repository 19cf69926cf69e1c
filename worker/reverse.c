/* reverse.c - see reverse.h. CONNECTING (dial at accept, as a CONNECT dials eagerly) ->
 * FIRST_BYTES (the client's scheme must match the server's: the relays cannot yet bridge TLS
 * to plain or plain to TLS) -> proxy_req_start_sniff. */
#include "worker/reverse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shared/log.h"
#include "worker/conn.h"
#include "worker/modes.h"
#include "worker/proxy_req.h"
#include "worker/tls_peek.h"
#include "worker/worker.h"

enum reverse_phase {
    REVERSE_CONNECTING = 0, /* dialling the server; client bytes wait in cl.rx */
    REVERSE_FIRST_BYTES,    /* connected; waiting for the client's first byte */
    REVERSE_DONE,           /* answered; closing */
};

struct reverse {
    enum reverse_phase phase;
};

static_assert(sizeof(struct reverse) <= CONN_PROTO_STATE_MAX, "fits the protocol state");

static struct reverse *reverse_of(struct conn *c)
{
    return conn_proto_state(c);
}

/* reverse_answer answers 502 in the clear with `why` (a TLS client cannot read it, but the
 * flow records it) and counts an upstream error. */
static void reverse_answer(struct conn *c, const char *why, const char *body)
{
    reverse_of(c)->phase = REVERSE_DONE;
    worker_count(c->w, MSG_STAT_UPSTREAM_ERRORS);
    proxy_req_answer(c, 502, why, body);
}

static void reverse_on_upstream(struct conn *c, int err, const char *why)
{
    char body[TLS_CONN_WHY_MAX + TARGET_HOST_MAX + 64];

    if (reverse_of(c)->phase != REVERSE_CONNECTING)
        return;
    if (err) {
        snprintf(body, sizeof(body), "mitmd (reverse proxy): cannot connect to %s:%u: %s\n",
                 c->upstream.host, c->upstream.port, why);
        reverse_answer(c, why, body);
        return;
    }
    reverse_of(c)->phase = REVERSE_FIRST_BYTES;
}

/* reverse_first_bytes checks that the client speaks the server's scheme, then hands the
 * connection to the sniff that follows a CONNECT. */
static bool reverse_first_bytes(struct conn *c)
{
    const struct mode_spec *m = c->mode->spec;
    struct buf *rx = &c->cl.rx;
    bool hello;

    if (c->cl.failed || (c->cl.rd_eof && buf_used(rx) == 0)) {
        conn_close(c);
        return true;
    }
    if (buf_used(rx) == 0)
        return false; /* the server speaking first is the sniff's business */
    hello = tls_peek_is_client_hello(buf_head(rx), buf_used(rx));
    if (hello && !m->tls) {
        reverse_answer(c, "reverse:http:// upstream with a TLS client is not supported yet",
                       "mitmd: this reverse proxy's server is http://; a TLS client to a plain "
                       "server is not supported yet: use reverse:https:// or plain HTTP\n");
        return true;
    }
    if (!hello && m->tls && (buf_head(rx)[0] & 0x80) == 0) { /* SSLv2 hellos: the sniff's */
        reverse_answer(c, "reverse:https:// upstream with a plain HTTP client is not supported yet",
                       "mitmd: this reverse proxy's server is https://; speak TLS to mitmd "
                       "(https://), plain HTTP to a TLS server is not supported yet\n");
        return true;
    }
    proxy_req_start_sniff(c);
    return true;
}

static bool reverse_step(struct conn *c)
{
    switch (reverse_of(c)->phase) {
    case REVERSE_CONNECTING:
        if (c->cl.failed) {
            conn_close(c);
            return true;
        }
        return false;
    case REVERSE_FIRST_BYTES:
        return reverse_first_bytes(c);
    case REVERSE_DONE:
        return false;
    }
    return false;
}

static bool reverse_on_timeout(struct conn *c, uint64_t now)
{
    if (reverse_of(c)->phase != REVERSE_FIRST_BYTES || !conn_idle_expired(c, now))
        return false; /* CONNECTING: the upstream's connect timeout applies */
    conn_close(c);
    return true;
}

static bool reverse_is_idle(struct conn *c)
{
    return buf_used(&c->cl.rx) == 0 && reverse_of(c)->phase != REVERSE_DONE;
}

static const struct conn_proto reverse_proto = {
    .name = "reverse",
    .state_size = sizeof(struct reverse),
    .step = reverse_step,
    .on_upstream = reverse_on_upstream,
    .on_timeout = reverse_on_timeout,
    .is_idle = reverse_is_idle,
};

void reverse_start(struct conn *c)
{
    const struct mode_spec *m = c->mode->spec;

    conn_set_proto(c, &reverse_proto);
    reverse_of(c)->phase = REVERSE_CONNECTING;
    /* the host fits: both are bounded by TARGET_HOST_MAX */
    (void)upstream_set_target(c, m->host, strlen(m->host), m->port);
    c->upstream.name_fixed = true; /* the server is verified as the URL names it, whatever SNI */
    flow_set_server(&c->flow, c->upstream.host, NULL, 0);
    upstream_dial(c); /* may call reverse_on_upstream at once */
}

int reverse_host_rewrite(const struct mode_spec *m, bool keep_host_header, char *out,
                         size_t cap)
{
    char port[8] = "";
    int n;

    if (m->kind != MODE_SPEC_REVERSE || keep_host_header)
        return 0;
    if (m->port != (m->tls ? 443 : 80))
        snprintf(port, sizeof(port), ":%u", (unsigned)m->port);
    n = snprintf(out, cap, m->host_is_ipv6 ? "[%s]%s" : "%s%s", m->host, port);
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    return n;
}
