/* tls_conn_io.c - the I/O side of a tls_conn: the staging BIO (BoringSSL reads ciphertext
 * from struct buf _in and appends to _out), feeding and taking ciphertext, and SSL_read,
 * SSL_write and SSL_shutdown over it with their backpressure (record overhead, the pending
 * write BoringSSL holds). Handshake, certificates and errors are tls_conn.c's. Never touches a
 * socket; never allocates but inside BoringSSL. */
#include "worker/tls_conn.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "worker/tls_conn_internal.h"

/* TLS_CONN_RECORD_OVERHEAD is the most one record adds to its plaintext (header, explicit
 * IV, MAC/tag, CBC padding), with room for a small pending post-handshake message. */
#define TLS_CONN_RECORD_OVERHEAD 512
/* TLS_CONN_RECORD_MAX is the largest plaintext per record (RFC 8446 §5.1). */
#define TLS_CONN_RECORD_MAX 16384

/* ---- staging BIO ---------------------------------------------------------------------- */

/* out_room returns how many bytes may be appended to the outbound staging now: with the
 * caller's buffer while its head is being sent, only the room after its tail (no compaction). */
static size_t out_room(struct tls_conn *c)
{
    struct buf *b = c->_ob;

    if (c->_ext_pinned != NULL && *c->_ext_pinned)
        return b->cap - b->len;
    return buf_room(b);
}

static int staging_read(BIO *bio, char *out, int len)
{
    struct tls_conn *c = BIO_get_data(bio);
    size_t n = buf_used(c->_ib);

    BIO_clear_retry_flags(bio);
    if (len <= 0)
        return 0;
    if (n == 0) {
        if (c->_in_eof)
            return 0; /* EOF: no retry flag, so BoringSSL sees the peer's close */
        BIO_set_retry_read(bio);
        return -1;
    }
    if (n > (size_t)len)
        n = (size_t)len;
    memcpy(out, buf_head(c->_ib), n);
    buf_consume(c->_ib, n);
    return (int)n;
}

static int staging_write(BIO *bio, const char *p, int len)
{
    struct tls_conn *c = BIO_get_data(bio);
    size_t n;

    BIO_clear_retry_flags(bio);
    if (len <= 0)
        return 0;
    n = out_room(c);
    if (n > (size_t)len)
        n = (size_t)len;
    if (n > 0) {
        memcpy(buf_tail(c->_ob), p, n);
        buf_commit(c->_ob, n);
    }
    if (n == 0) {
        BIO_set_retry_write(bio); /* BoringSSL keeps the rest and retries later */
        return -1;
    }
    return (int)n;
}

static long staging_ctrl(BIO *bio, int cmd, long larg, void *parg)
{
    struct tls_conn *c = BIO_get_data(bio);

    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* the caller takes and sends */
    case BIO_CTRL_PENDING:
        return (long)buf_used(c->_ib);
    case BIO_CTRL_WPENDING:
        return (long)buf_used(c->_ob);
    default:
        return 0;
    }
}

static int staging_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    return 1;
}

BIO_METHOD *tls_conn_bio_method_new(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOURCE_SINK | 0x80, "mitmd staging");

    if (m == NULL)
        return NULL;
    if (BIO_meth_set_read(m, staging_read) != 1 || BIO_meth_set_write(m, staging_write) != 1 ||
        BIO_meth_set_ctrl(m, staging_ctrl) != 1 || BIO_meth_set_create(m, staging_create) != 1) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

/* ---- staging -------------------------------------------------------------------------- */

size_t tls_conn_feed(struct tls_conn *c, const uint8_t *p, size_t n)
{
    size_t took;

    if (c->_mem == NULL || n == 0)
        return 0; /* not initialized, or the caller's buffers are the staging */
    took = buf_append(c->_ib, p, n);
    if (took > 0)
        c->_rd_starved = false; /* new ciphertext: SSL_read may find a record */
    return took;
}

void tls_conn_feed_eof(struct tls_conn *c)
{
    c->_in_eof = true;
    c->_rd_starved = false; /* SSL_read must see the EOF */
}

bool tls_conn_is_quiet(const struct tls_conn *c)
{
    return c->_mem == NULL || (buf_used(c->_ib) == 0 && buf_used(c->_ob) == 0);
}

size_t tls_conn_in_room(struct tls_conn *c)
{
    if (c->_mem == NULL)
        return 0;
    return buf_room(c->_ib);
}

size_t tls_conn_pending(const struct tls_conn *c)
{
    if (c->_mem == NULL)
        return 0;
    return buf_used(c->_ob);
}

size_t tls_conn_take(struct tls_conn *c, uint8_t *out, size_t cap)
{
    size_t n = tls_conn_pending(c);

    if (n > cap)
        n = cap;
    if (n == 0)
        return 0;
    memcpy(out, buf_head(c->_ob), n);
    buf_consume(c->_ob, n);
    return n;
}

/* ---- read, write, shutdown ----------------------------------------------------------- */

/* tls_conn_read_is_idle is true when SSL_read cannot return anything new: its last call
 * wanted input, none was fed since (tls_conn_feed/_feed_eof clear _rd_starved), and
 * BoringSSL holds neither decrypted plaintext (SSL_pending) nor an unprocessed record
 * (SSL_has_pending). Post-handshake messages (NewSessionTicket, KeyUpdate) and
 * close_notify arrive as ciphertext, so they clear _rd_starved too. */
static bool tls_conn_read_is_idle(const struct tls_conn *c)
{
    return c->_rd_starved && buf_used(c->_ib) == 0 && SSL_pending(c->_ssl) == 0 &&
           SSL_has_pending(c->_ssl) == 0;
}

ssize_t tls_conn_read(struct tls_conn *c, uint8_t *out, size_t cap, const char **why)
{
    const char *reason = NULL;
    int ret, err;

    if (c->_ssl == NULL || cap == 0)
        return -EINVAL;
    switch (c->_state) {
    case TLS_CONN_STATE_OPEN:
        break;
    case TLS_CONN_STATE_CLOSED:
        return 0;
    case TLS_CONN_STATE_FAILED:
        if (why != NULL)
            *why = c->_why;
        return -EPROTO;
    default:
        return -EINVAL;
    }
    if (tls_conn_read_is_idle(c))
        return -EAGAIN;
    if (cap > INT_MAX)
        cap = INT_MAX;
    ret = SSL_read(c->_ssl, out, (int)cap); /* clears the error queue itself */
    if (ret > 0)
        return ret;
    err = tls_conn_classify(c, ret, &reason);
    switch (err) {
    case -EAGAIN:
        /* WANT_READ means the staging BIO ran dry (buf_used(c->_ib) == 0): until more
         * ciphertext or the EOF is fed, another SSL_read can only say the same. Not for
         * WANT_WRITE (an answer to a post-handshake message waits for output room). */
        c->_rd_starved = SSL_want_read(c->_ssl) && buf_used(c->_ib) == 0;
        return -EAGAIN;
    case -ESHUTDOWN:
        c->_clean_close = true;
        tls_conn_set_state(c, TLS_CONN_STATE_CLOSED);
        return 0;
    case -ECONNRESET:
        tls_conn_set_state(c, TLS_CONN_STATE_CLOSED);
        return 0;
    default:
        return tls_conn_fail(c, reason != NULL ? reason : "tls error", why);
    }
}

ssize_t tls_conn_write(struct tls_conn *c, const uint8_t *p, size_t n, const char **why)
{
    const char *reason = NULL;
    size_t room, chunk;
    int ret, err;

    if (c->_ssl == NULL)
        return -EINVAL;
    if (c->_state == TLS_CONN_STATE_FAILED) {
        if (why != NULL)
            *why = c->_why;
        return -EPROTO;
    }
    if (c->_state != TLS_CONN_STATE_OPEN && c->_state != TLS_CONN_STATE_CLOSED)
        return -EINVAL;
    if (n == 0)
        return 0;
    if (c->_wpend > 0) {
        /* BoringSSL holds a record of exactly these bytes; it must see them again. */
        if (n < c->_wpend)
            return -EINVAL;
        chunk = c->_wpend;
    } else {
        room = out_room(c);
        if (room <= TLS_CONN_RECORD_OVERHEAD)
            return -EAGAIN;
        chunk = room - TLS_CONN_RECORD_OVERHEAD;
        if (chunk > TLS_CONN_RECORD_MAX)
            chunk = TLS_CONN_RECORD_MAX;
        if (chunk > n)
            chunk = n;
    }
    ret = SSL_write(c->_ssl, p, (int)chunk); /* clears the error queue itself */
    if (ret > 0) {
        c->_wpend = 0;
        return ret;
    }
    err = tls_conn_classify(c, ret, &reason);
    if (err == -EAGAIN) {
        c->_wpend = chunk;
        return -EAGAIN;
    }
    return tls_conn_fail(c, reason != NULL ? reason : "tls error", why);
}

int tls_conn_shutdown(struct tls_conn *c)
{
    int ret, err;

    if (c->_ssl == NULL)
        return -EINVAL;
    if (c->_state != TLS_CONN_STATE_OPEN && c->_state != TLS_CONN_STATE_CLOSED)
        return -EPROTO;
    if (out_room(c) <= TLS_CONN_RECORD_OVERHEAD)
        return -EAGAIN;
    c->_rd_starved = false; /* a repeated SSL_shutdown reads records too */
    ERR_clear_error();
    ret = SSL_shutdown(c->_ssl);
    if (ret >= 0) /* 0: our close_notify is queued, theirs not seen; 1: both */
        return 0;
    err = tls_conn_classify(c, ret, NULL);
    return err == -EAGAIN ? -EAGAIN : -EPROTO;
}
