/* intercept.c - see intercept.h. The order follows DESIGN.md "One intercepted connection":
 * ClientHello (paused) -> upstream handshake with the client's SNI and ALPN -> name set ->
 * certcache or master -> resume the client handshake -> h1 relay. */
#include "worker/intercept.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "certcache/certcache.h"
#include "shared/log.h"
#include "shared/nameset.h"
#include "worker/conn.h"
#include "worker/worker.h"

#define INTERCEPT_MAX_NAMES 64

static void intercept_on_cert(struct ipc_wait *wait, int status, const uint8_t *der, size_t der_len,
                              const char *reason);

/* intercept_feed moves received ciphertext of `leg` into its TLS staging. */
static void intercept_feed(struct conn_leg *leg)
{
    size_t used = buf_used(&leg->rx);

    if (used > 0)
        buf_consume(&leg->rx, tls_conn_feed(&leg->tls, buf_head(&leg->rx), used));
    if ((leg->rd_eof || leg->failed) && buf_used(&leg->rx) == 0 && !leg->tls_eof_fed) {
        tls_conn_feed_eof(&leg->tls);
        leg->tls_eof_fed = true;
    }
}

int intercept_start(struct conn *c)
{
    int err = tls_conn_init_server(&c->cl.tls, &c->w->tls);

    if (err) {
        log_warn("conn %llu: cannot start TLS: %s", (unsigned long long)c->id, strerror(-err));
        return err;
    }
    c->cl.tls_on = true;
    c->hello_done = false;
    conn_set_state(c, CONN_STATE_TLS_UP);
    return 0;
}

/* intercept_set_chain installs the forged leaf on the client leg and moves on to the rest of
 * the client handshake. */
static int intercept_set_chain(struct conn *c, const uint8_t *der, size_t len)
{
    char alpn[TLS_CTX_ALPN_MAX];
    int err = tls_conn_set_chain(&c->cl.tls, der, len);

    if (err) {
        log_warn("conn %llu: forged chain rejected: %s", (unsigned long long)c->id, strerror(-err));
        return err;
    }
    /* mirror the upstream's ALPN choice; with no working upstream offer http/1.1 */
    if (!c->up_tls_failed && c->up.tls_on)
        tls_conn_alpn(&c->up.tls, alpn, sizeof(alpn));
    else
        snprintf(alpn, sizeof(alpn), "http/1.1");
    tls_conn_set_alpn_choice(&c->cl.tls, alpn);
    conn_set_state(c, CONN_STATE_TLS_CLIENT);
    return 0;
}

/* intercept_get_cert forms the name set and gets the forged leaf from certcache, or asks
 * the master (the connection then waits in CONN_STATE_CERT_WAIT). */
static int intercept_get_cert(struct conn *c)
{
    char names[INTERCEPT_MAX_NAMES][TLS_CONN_NAME_MAX];
    const char *ptrs[INTERCEPT_MAX_NAMES];
    char key[NAMESET_KEY_MAX];
    uint8_t der[CERTCACHE_DER_MAX];
    size_t n = 0;
    ssize_t klen, dlen;
    const char *why = NULL;
    struct worker *w = c->w;
    int err;

    if (!c->up_tls_failed) {
        n = INTERCEPT_MAX_NAMES - 2;
        err = tls_conn_peer_names(&c->up.tls, names, &n, NULL, 0);
        if (err && err != -E2BIG)
            n = 0;
    }
    if (c->sni[0] != '\0')
        snprintf(names[n++], TLS_CONN_NAME_MAX, "%s", c->sni);
    if (c->host_is_ip || n == 0)
        snprintf(names[n++], TLS_CONN_NAME_MAX, "%s", c->host);
    for (size_t i = 0; i < n; i++)
        ptrs[i] = names[i];
    klen = nameset_canon_cstr(ptrs, n, key, sizeof(key), &why);
    if (klen < 0) {
        log_warn("conn %llu: cannot form the certificate names: %s", (unsigned long long)c->id,
                 why != NULL ? why : "invalid");
        return (int)klen;
    }
    dlen = certcache_lookup(w->cache, key, (size_t)klen, time(NULL), der, sizeof(der),
                            &w->cache_reader);
    if (dlen > 0) {
        worker_count(w, MSG_STAT_CACHE_HITS);
        return intercept_set_chain(c, der, (size_t)dlen);
    }
    worker_count(w, MSG_STAT_CACHE_MISSES);
    ipc_wait_init(&c->cert_wait, intercept_on_cert);
    err = ipc_cert_request(&w->ipc, &c->cert_wait, key, (size_t)klen, ptrs, n);
    if (err) {
        log_warn("conn %llu: cannot request a certificate: %s", (unsigned long long)c->id,
                 strerror(-err));
        return err;
    }
    worker_count(w, MSG_STAT_CERT_REQS);
    conn_set_state(c, CONN_STATE_CERT_WAIT);
    return 0;
}

static void intercept_on_cert(struct ipc_wait *wait, int status, const uint8_t *der, size_t der_len,
                              const char *reason)
{
    struct conn *c = (struct conn *)((char *)wait - offsetof(struct conn, cert_wait));

    if (c->state != CONN_STATE_CERT_WAIT)
        return;
    if (status != 0 || intercept_set_chain(c, der, der_len) != 0) {
        log_warn("conn %llu: no forged certificate for %s: %s", (unsigned long long)c->id,
                 c->sni[0] ? c->sni : c->host, status ? reason : "chain rejected");
        conn_close(c);
    }
    conn_pump(c);
}

/* intercept_upstream_failed records why the upstream TLS failed; the client still gets a
 * forged certificate and then a 502 with this reason. */
static void intercept_upstream_failed(struct conn *c, const char *why)
{
    c->up_tls_failed = true;
    snprintf(c->up_why, sizeof(c->up_why), "%s", why != NULL ? why : "upstream TLS failed");
    flow_set_error(&c->flow, c->up_why);
    log_debug("conn %llu: upstream TLS failed: %s", (unsigned long long)c->id, c->up_why);
}

/* intercept_start_relay runs once the client handshake is complete. */
static void intercept_start_relay(struct conn *c)
{
    struct h1_relay_opts o;
    char alpn[TLS_CTX_ALPN_MAX], subj[FLOW_CERT_NAME_MAX], iss[FLOW_CERT_NAME_MAX];

    tls_conn_alpn(&c->cl.tls, alpn, sizeof(alpn));
    flow_set_tls(&c->flow, c->sni, alpn, tls_conn_version(&c->cl.tls));
    if (!c->up_tls_failed) {
        tls_conn_peer_subject(&c->up.tls, subj, sizeof(subj));
        tls_conn_peer_issuer(&c->up.tls, iss, sizeof(iss));
        flow_set_cert(&c->flow, subj, iss);
    }
    if (!c->up_tls_failed && strcmp(alpn, "h2") == 0 && c->w->h2_pool != NULL) {
        struct h2_relay_opts ho;
        int err;

        memset(&ho, 0, sizeof(ho));
        ho.max_header_size = c->w->cfg->max_header_size;
        ho.pool = c->w->h2_pool;
        ho.on_flow = worker_on_flow;
        ho.on_flow_arg = c->w;
        err =
            h2_relay_init(&c->h2, &ho, &c->flow, &c->cl.pin, &c->cl.pout, &c->up.pin, &c->up.pout);
        if (err) {
            log_warn("conn %llu: cannot start HTTP/2: %s", (unsigned long long)c->id,
                     strerror(-err));
            conn_close(c);
            return;
        }
        c->h2_on = true;
        conn_set_state(c, CONN_STATE_RELAY);
        return;
    }
    memset(&o, 0, sizeof(o));
    o.max_header_size = c->w->cfg->max_header_size;
    o.client_tls = true;
    o.on_flow = worker_on_flow;
    o.on_flow_arg = c->w;
    h1_relay_init(&c->relay, &o, &c->flow, &c->cl.pin, &c->cl.pout, &c->up.pin, &c->up.pout);
    c->relay_on = true;
    if (c->up_tls_failed) {
        conn_up_drop(c); /* never used again: the relay answers 502 with the reason */
        h1_relay_upstream_failed(&c->relay, c->up_why);
    } else
        h1_relay_upstream_ready(&c->relay, c->sni[0] ? c->sni : c->host, c->port, true);
    conn_set_state(c, CONN_STATE_RELAY);
}

/* intercept_step_up: ClientHello, then the upstream handshake. */
static bool intercept_step_up(struct conn *c)
{
    const char *why = NULL;
    const uint8_t *offers;
    size_t offers_len;
    int r;

    if (!c->hello_done) {
        intercept_feed(&c->cl);
        r = tls_conn_handshake(&c->cl.tls, &why);
        if (r == -EAGAIN)
            return false;
        if (r != -EINPROGRESS) {
            log_debug("conn %llu: client handshake failed before ClientHello: %s",
                      (unsigned long long)c->id, why != NULL ? why : "?");
            worker_count(c->w, MSG_STAT_CLIENT_ERRORS);
            conn_close_after_flush(c);
            return true;
        }
        c->hello_done = true;
        snprintf(c->sni, sizeof(c->sni), "%s", tls_conn_sni(&c->cl.tls));
        offers = tls_conn_alpn_offers(&c->cl.tls, &offers_len);
        r = tls_conn_init_client(&c->up.tls, &c->w->tls, c->sni[0] ? c->sni : NULL,
                                 c->sni[0] ? c->sni : c->host, c->port, offers, offers_len);
        if (r) {
            intercept_upstream_failed(c, "cannot start the upstream TLS handshake");
            if (intercept_get_cert(c) != 0)
                conn_close(c);
            return true;
        }
        c->up.tls_on = true;
        c->t_tls = flow_now_ns();
    }
    intercept_feed(&c->up);
    r = tls_conn_handshake(&c->up.tls, &why);
    if (r == -EAGAIN) {
        if (c->up.failed && tls_conn_pending(&c->up.tls) == 0) {
            intercept_upstream_failed(c, "upstream connection failed during TLS handshake");
            if (intercept_get_cert(c) != 0)
                conn_close(c);
            return true;
        }
        return false;
    }
    if (r == 0) {
        c->flow.tls_ns = (int64_t)(flow_now_ns() - c->t_tls);
        log_debug("conn %llu: upstream TLS %s done%s", (unsigned long long)c->id,
                  tls_conn_version(&c->up.tls),
                  tls_conn_is_session_reused(&c->up.tls) ? " (resumed)" : "");
        worker_count(c->w, MSG_STAT_UP_TLS);
        if (tls_conn_is_session_reused(&c->up.tls))
            worker_count(c->w, MSG_STAT_UP_RESUMED);
        if (tls_conn_is_resumed_across_names(&c->up.tls))
            worker_count(c->w, MSG_STAT_UP_WILDCARD);
    } else {
        intercept_upstream_failed(c, why);
    }
    if (intercept_get_cert(c) != 0)
        conn_close(c);
    return true;
}

bool intercept_step(struct conn *c)
{
    const char *why = NULL;
    int r;

    switch (c->state) {
    case CONN_STATE_TLS_UP:
        if (c->cl.failed) {
            conn_close(c);
            return true;
        }
        return intercept_step_up(c);
    case CONN_STATE_CERT_WAIT:
        if (c->cl.failed || c->cl.rd_eof) {
            conn_close(c);
            return true;
        }
        return false;
    case CONN_STATE_TLS_CLIENT:
        intercept_feed(&c->cl);
        r = tls_conn_handshake(&c->cl.tls, &why);
        if (r == -EAGAIN) {
            if (c->cl.failed) {
                conn_close(c);
                return true;
            }
            return false;
        }
        if (r != 0) {
            log_debug("conn %llu: client rejected the handshake: %s", (unsigned long long)c->id,
                      why != NULL ? why : "?");
            worker_count(c->w, MSG_STAT_CLIENT_ERRORS); /* e.g. it does not trust our CA */
            conn_close_after_flush(c); /* the alert goes out first */
            return true;
        }
        intercept_start_relay(c);
        return true;
    default:
        return false;
    }
}

void intercept_handshake_timeout(struct conn *c)
{
    if (c->state == CONN_STATE_TLS_UP && c->hello_done) {
        intercept_upstream_failed(c, "upstream TLS handshake timed out");
        if (intercept_get_cert(c) != 0)
            conn_close(c);
        return;
    }
    conn_close(c);
}

void intercept_dispose(struct conn *c)
{
    ipc_cert_cancel(&c->w->ipc, &c->cert_wait);
    tls_conn_dispose(&c->cl.tls);
    tls_conn_dispose(&c->up.tls);
    c->cl.tls_on = false;
    c->up.tls_on = false;
}
