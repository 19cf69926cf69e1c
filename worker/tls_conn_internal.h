/* tls_conn_internal.h - what tls_ctx.c needs from tls_conn.c to build its contexts (the
 * callbacks that act on a struct tls_conn and the staging BIO method), and what the files of
 * tls_conn share (tls_conn.c: lifecycle, handshake, errors; tls_conn_io.c: staging, read,
 * write; tls_conn_peer.c: the peer certificate): the state transitions and tls_conn_fail.
 * Private to worker/tls_*.c; never included elsewhere. */
#ifndef MITMD_WORKER_TLS_CONN_INTERNAL_H
#define MITMD_WORKER_TLS_CONN_INTERNAL_H

#include <assert.h>
#include <stdbool.h>

#include <openssl/base.h>

#include "worker/tls_conn.h"

/* tls_conn_install_server_callbacks sets the select-certificate (ClientHello pause) and
 * ALPN select callbacks on the client-facing context. */
void tls_conn_install_server_callbacks(SSL_CTX *ctx);

/* tls_conn_install_client_callbacks sets the new-session callback that hands upstream
 * sessions to the connection's session link (tls_sess_link_file), which files them. */
void tls_conn_install_client_callbacks(SSL_CTX *ctx);

/* tls_conn_bio_method_new returns a new BIO_METHOD for the staging BIO (the caller frees it
 * with BIO_meth_free after every BIO made from it), or NULL. Defined in tls_conn_io.c. */
BIO_METHOD *tls_conn_bio_method_new(void);

/* tls_conn_transition_ok (inline: used by assert only, gone under NDEBUG) says which state
 * changes the code makes; anything else is a bug in this file, not peer input. FAILED is
 * terminal. */
static inline bool tls_conn_transition_ok(enum tls_conn_state from, enum tls_conn_state to)
{
    switch (from) {
    case TLS_CONN_STATE_HANDSHAKE:
    case TLS_CONN_STATE_PAUSED:
        return to != TLS_CONN_STATE_CLOSED;
    case TLS_CONN_STATE_OPEN:
        return to == TLS_CONN_STATE_CLOSED || to == TLS_CONN_STATE_FAILED;
    case TLS_CONN_STATE_CLOSED:
        return to == TLS_CONN_STATE_FAILED;
    default:
        return false;
    }
}

/* tls_conn_set_state is the only code that assigns c->_state. Returns nothing. */
static inline void tls_conn_set_state(struct tls_conn *c, enum tls_conn_state next)
{
    if (c->_state == next)
        return;
    assert(tls_conn_transition_ok(c->_state, next));
    c->_state = next;
}

/* tls_conn_fail records a fatal error (`reason`, copied into c->_why) and moves `c` to
 * TLS_CONN_STATE_FAILED; `*why` (if `why` is not NULL) points at c->_why. Returns -EPROTO. */
int tls_conn_fail(struct tls_conn *c, const char *reason, const char **why);

#endif
