/* reverse.c - see reverse.h. CONNECTING (dial at accept, as a CONNECT dials eagerly) ->
 * FIRST_BYTES (a failed dial is answered there: 502 inside TLS for a TLS client, in the clear
 * for a plain one): a TLS client goes to proxy_req_start_sniff (intercepted; with an http:// server
 * the intercept skips the upstream TLS, worker/modes.h server_plain); a plain client of an
 * http:// server too (relayed); a plain client of an https:// server -> UP_TLS (mitmd's own
 * TLS handshake with the server, HTTP/1.1 offered, as mitmproxy's ServerTLSLayer under a plain
 * client) -> the HTTP/1.1 relay. */
#include "worker/reverse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "worker/conn.h"
#include "worker/h1_conn.h"
#include "worker/intercept.h"
#include "worker/modes.h"
#include "worker/proxy_req.h"
#include "worker/tls_peek.h"
#include "worker/worker.h"

enum reverse_phase {
    REVERSE_CONNECTING = 0, /* dialling the server; client bytes wait in cl.rx */
    REVERSE_FIRST_BYTES,    /* connected; waiting for the client's first byte */
    REVERSE_UP_TLS,         /* plain client, https:// server: our TLS handshake with it */
    REVERSE_DONE,           /* answered; closing */
};

struct reverse {
    enum reverse_phase phase;
    bool dial_failed; /* the server could not be reached: answered 502 at the first bytes */
    char why[TLS_CONN_WHY_MAX + TARGET_HOST_MAX + 32];
};

static_assert(sizeof(struct reverse) <= CONN_PROTO_STATE_MAX, "fits the protocol state");

static struct reverse *reverse_of(struct conn *c)
{
    return conn_proto_state(c);
}

static void reverse_on_upstream(struct conn *c, int err, const char *why)
{
    struct reverse *rv = reverse_of(c);

    if (rv->phase != REVERSE_CONNECTING)
        return;
    if (err) {
        /* answered at the client's first bytes: a TLS client reads the 502 only inside TLS */
        rv->dial_failed = true;
        snprintf(rv->why, sizeof(rv->why), "cannot connect to %s:%u: %s", c->upstream.host,
                 c->upstream.port, why);
    }
    rv->phase = REVERSE_FIRST_BYTES;
}

/* reverse_dial_failed answers a client whose server could not be reached: a TLS client is
 * intercepted and its requests answered 502 with the reason (worker/intercept.h), a plain one
 * gets the 502 at once. */
static bool reverse_dial_failed(struct conn *c)
{
    struct reverse *rv = reverse_of(c);
    struct buf *rx = &c->cl.rx;
    char body[sizeof(rv->why) + 32];

    worker_count(c->w, MSG_STAT_UPSTREAM_ERRORS);
    if (tls_peek_is_client_hello(buf_head(rx), buf_used(rx))) {
        if (intercept_start_failed(c, rv->why) != 0)
            conn_close(c);
        return true;
    }
    snprintf(body, sizeof(body), "mitmd (reverse proxy): %s\n", rv->why);
    rv->phase = REVERSE_DONE;
    proxy_req_answer(c, 502, rv->why, body);
    return true;
}

/* reverse_relay_h1 hands `c` to the HTTP/1.1 relay once the server's TLS handshake ended:
 * `why` NULL = the relay gets the server, else the client's first request is answered 502
 * with `why` (the client speaks plain HTTP: it reads the reason). */
static void reverse_relay_h1(struct conn *c, const char *why)
{
    char msg[TLS_CONN_WHY_MAX];

    reverse_of(c)->phase = REVERSE_DONE;
    if (why == NULL) {
        /* as for an https:// URL sent in the clear: the record's TLS details are the server's */
        upstream_note_tls(c, true);
    } else {
        snprintf(msg, sizeof(msg), "%s", why); /* `why` may live in the leg we drop */
        worker_count(c->w, MSG_STAT_UPSTREAM_ERRORS);
    }
    if (h1_conn_start(c) != 0) {
        conn_close(c);
        return;
    }
    if (why != NULL) {
        conn_up_drop(c); /* never used again: the relay answers 502 with the reason */
        h1_relay_upstream_failed(h1_conn_relay(c), msg);
        return;
    }
    h1_relay_upstream_ready(h1_conn_relay(c), c->upstream.host, c->upstream.port, true);
}

/* reverse_start_up_tls begins mitmd's TLS handshake with an https:// server for a client that
 * spoke plain HTTP: the server is verified as the URL names it, and offered HTTP/1.1 only
 * (the client speaks HTTP/1.1; mitmproxy too kills HTTP/2 prior knowledge in the clear). */
static bool reverse_start_up_tls(struct conn *c)
{
    const char *why = NULL;

    if (upstream_tls_h1_start(c, &why) != 0)
        reverse_relay_h1(c, why);
    else
        reverse_of(c)->phase = REVERSE_UP_TLS;
    return true;
}

/* reverse_up_tls advances the handshake with the server (REVERSE_UP_TLS). */
static bool reverse_up_tls(struct conn *c)
{
    const char *why = NULL;
    int r;

    if (c->cl.failed) {
        conn_close(c);
        return true;
    }
    r = upstream_tls_step(c, &why);
    if (r == -EAGAIN)
        return false;
    reverse_relay_h1(c, r == 0 ? NULL : why);
    return true;
}

/* reverse_first_bytes decides from the client's first bytes: TLS, or plain HTTP to a plain
 * server, goes to the sniff that follows a CONNECT; plain HTTP to an https:// server first
 * gets mitmd's own TLS to the server. */
static bool reverse_first_bytes(struct conn *c)
{
    const struct mode_spec *m = c->mode->spec;
    struct buf *rx = &c->cl.rx;

    if (c->cl.failed || (c->cl.rd_eof && buf_used(rx) == 0)) {
        conn_close(c);
        return true;
    }
    if (buf_used(rx) == 0)
        return false; /* the server speaking first is the sniff's business */
    if (reverse_of(c)->dial_failed)
        return reverse_dial_failed(c);
    if (m->tls && !tls_peek_is_client_hello(buf_head(rx), buf_used(rx)) &&
        (buf_head(rx)[0] & 0x80) == 0) /* SSLv2 hellos: the sniff refuses them */
        return reverse_start_up_tls(c);
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
    case REVERSE_UP_TLS:
        return reverse_up_tls(c);
    case REVERSE_DONE:
        return false;
    }
    return false;
}

static bool reverse_on_timeout(struct conn *c, uint64_t now)
{
    const char *why = NULL;

    if (reverse_of(c)->phase == REVERSE_UP_TLS) {
        if (!upstream_tls_timed_out(c, now, &why))
            return false;
        reverse_relay_h1(c, why);
        return true;
    }
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
    flow_set_target(&c->flow, c->upstream.host, c->upstream.port);
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
