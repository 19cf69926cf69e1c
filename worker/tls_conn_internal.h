/* tls_conn_internal.h - what tls_ctx.c needs from tls_conn.c to build its contexts: the
 * callbacks that act on a struct tls_conn and the staging BIO method. Private to
 * worker/tls_*.c; never included elsewhere. */
#ifndef MITMD_WORKER_TLS_CONN_INTERNAL_H
#define MITMD_WORKER_TLS_CONN_INTERNAL_H

#include <openssl/base.h>

/* tls_conn_install_server_callbacks sets the select-certificate (ClientHello pause) and
 * ALPN select callbacks on the client-facing context. */
void tls_conn_install_server_callbacks(SSL_CTX *ctx);

/* tls_conn_install_client_callbacks sets the new-session callback that hands upstream
 * sessions to the connection's session link (tls_sess_link_file), which files them. */
void tls_conn_install_client_callbacks(SSL_CTX *ctx);

/* tls_conn_bio_method_new returns a new BIO_METHOD for the staging BIO (the caller frees it
 * with BIO_meth_free after every BIO made from it), or NULL. */
BIO_METHOD *tls_conn_bio_method_new(void);

#endif
