/* intercept.c - see intercept.h. The order follows DESIGN.md "One intercepted connection":
 * ClientHello (paused) -> upstream handshake with the client's SNI and ALPN -> name set ->
 * certcache or master -> resume the client handshake -> the relay for the chosen ALPN. */
#include "worker/intercept.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "certcache/certcache.h"
#include "shared/log.h"
#include "shared/nameset.h"
#include "worker/conn.h"
#include "worker/h1_conn.h"
#include "worker/h2_conn.h"
#include "worker/modes.h"
#include "worker/onboarding.h"
#include "worker/tls_alert.h"
#include "worker/worker.h"

#define INTERCEPT_MAX_NAMES 64

enum intercept_phase {
    INTERCEPT_UP = 0,    /* client paused at ClientHello; upstream TLS handshake */
    INTERCEPT_CERT_WAIT, /* waiting for the master to forge the leaf */
    INTERCEPT_CLIENT,    /* finishing the client handshake with the forged chain */
};

struct intercept {
    struct conn *c;
    enum intercept_phase phase;
    uint64_t t_phase;   /* the phase began: --handshake-timeout runs per phase */
    bool hello_done;    /* the client's ClientHello was read */
    bool up_tls_failed; /* the client gets a forged certificate, then 502 + up_why */
    char up_why[TLS_CONN_WHY_MAX];
    struct ipc_wait cert_wait;
    struct tls_alert_walk walk; /* the client's records, for an alert it sends in the clear */
    size_t walked;              /* bytes at the head of cl.rx the walk has seen */
};

static_assert(sizeof(struct intercept) <= CONN_PROTO_STATE_MAX, "fits the protocol state");

static void intercept_on_cert(struct ipc_wait *wait, int status, const uint8_t *der, size_t der_len,
                              const char *reason);

static struct intercept *intercept_of(struct conn *c)
{
    return conn_proto_state(c);
}

static void intercept_set_phase(struct intercept *ic, enum intercept_phase next)
{
    ic->phase = next;
    ic->t_phase = flow_now_ns();
}

/* intercept_sni returns the client's SNI ("" when it sent none). */
static const char *intercept_sni(struct conn *c)
{
    const char *sni = tls_conn_sni(&c->cl.tls);

    return sni != NULL ? sni : "";
}

/* intercept_client_handshake advances the client handshake, letting the alert walk see every
 * byte the client sent first. Same returns as transport_handshake. */
static int intercept_client_handshake(struct conn *c, const char **why)
{
    struct intercept *ic = intercept_of(c);
    size_t used = buf_used(&c->cl.rx);
    int r;

    if (used > ic->walked)
        tls_alert_walk_feed(&ic->walk, buf_head(&c->cl.rx) + ic->walked, used - ic->walked);
    r = transport_handshake(&c->cl, why);
    ic->walked = buf_used(&c->cl.rx); /* what is left was walked; the rest was fed */
    return r;
}

/* intercept_client_failed reports a client that did not complete the handshake: one flow
 * (the CONNECT, with the alert the client sent and a hint when it does not trust our CA) and,
 * at most once a second per worker, a warning. */
static void intercept_client_failed(struct conn *c, const char *why)
{
    struct intercept *ic = intercept_of(c);
    struct worker *w = c->w;
    const char *sni = intercept_sni(c);
    char host[TARGET_HOST_MAX + 8], msg[FLOW_ERROR_MAX];
    uint64_t now = flow_now_ns();

    snprintf(host, sizeof(host), "%s:%u", sni[0] ? sni : c->upstream.host, c->upstream.port);
    if (ic->walk.alert >= 0 && tls_alert_is_untrusted(ic->walk.alert))
        snprintf(msg, sizeof(msg),
                 "client TLS handshake failed: the client does not trust mitmd's certificate "
                 "for %s (alert %s); install the CA certificate %s/mitmd-ca-cert.pem in it",
                 host, tls_alert_name(ic->walk.alert), w->cfg->confdir);
    else if (ic->walk.alert >= 0)
        snprintf(msg, sizeof(msg), "client TLS handshake failed for %s (alert %s)", host,
                 tls_alert_name(ic->walk.alert));
    else if (why == NULL)
        snprintf(msg, sizeof(msg),
                 "client closed the connection during the TLS handshake for %s (does it trust "
                 "mitmd's CA %s/mitmd-ca-cert.pem?)",
                 host, w->cfg->confdir);
    else
        snprintf(msg, sizeof(msg), "client TLS handshake failed for %s: %s", host, why);
    worker_count(w, MSG_STAT_CLIENT_ERRORS);
    conn_record_error(c, msg);
    /* a misconfigured load generator must not flood stderr: one line a second, with a count */
    if (now - w->hs_log_ns >= 1000000000ull) {
        if (w->hs_log_skipped > 0)
            log_warn("%s (and %u more client handshake failures)", msg, w->hs_log_skipped);
        else
            log_warn("%s", msg);
        w->hs_log_ns = now;
        w->hs_log_skipped = 0;
    } else {
        w->hs_log_skipped++;
    }
}

/* intercept_up_is_h2 returns whether the upstream's TLS chose h2. */
static bool intercept_up_is_h2(struct conn *c)
{
    char alpn[TLS_CTX_ALPN_MAX];

    if (!c->up.tls_on)
        return false;
    tls_conn_alpn(&c->up.tls, alpn, sizeof(alpn));
    return strcmp(alpn, "h2") == 0;
}

/* intercept_bridges_h2 returns whether the client, which offered h2, is served HTTP/2 over an
 * upstream that speaks HTTP/1.1 (worker/h2_h1up.h): reverse mode with an http:// server, or an
 * https:// one that did not choose h2, as mitmproxy does (or one that failed: the 502 then
 * comes over HTTP/2). Not when --map-remote may send a
 * request of this origin elsewhere (an HTTP/2 connection has one upstream): the client then
 * gets HTTP/1.1 as before. */
static bool intercept_bridges_h2(struct conn *c)
{
    const uint8_t *offers, *proto;
    size_t len, off = 0, l;

    if (c->mode == NULL || !(c->mode->server_plain || c->mode->server_tls) ||
        c->w->h2_pool == NULL || intercept_up_is_h2(c))
        return false;
    if (c->w->rules != NULL && rules_may_remap_host(c->w->rules, modes_url_is_tls(c),
                                                    c->upstream.host, c->upstream.port))
        return false;
    offers = tls_conn_alpn_offers(&c->cl.tls, &len);
    while (tls_ctx_alpn_next(offers, len, &off, &proto, &l))
        if (l == 2 && memcmp(proto, "h2", 2) == 0)
            return true;
    return false;
}

/* intercept_chain_ready moves on to the rest of the client handshake once its chain is set. */
static int intercept_chain_ready(struct conn *c)
{
    struct intercept *ic = intercept_of(c);
    char alpn[TLS_CTX_ALPN_MAX];

    /* mirror the upstream's ALPN choice; with no working upstream offer http/1.1; in reverse
     * mode h2 to a client that offers it, whatever the server speaks (the bridge) */
    if (intercept_bridges_h2(c))
        snprintf(alpn, sizeof(alpn), "h2");
    else if (!ic->up_tls_failed && c->up.tls_on)
        tls_conn_alpn(&c->up.tls, alpn, sizeof(alpn));
    else
        snprintf(alpn, sizeof(alpn), "http/1.1");
    tls_conn_set_alpn_choice(&c->cl.tls, alpn);
    intercept_set_phase(ic, INTERCEPT_CLIENT);
    return 0;
}

/* intercept_set_chain installs the forged leaf on the client leg (with the upstream's
 * certificates after it when add_upstream_certs_to_client_chain) and moves on to the rest of
 * the client handshake. */
static int intercept_set_chain(struct conn *c, const uint8_t *der, size_t len)
{
    const struct tls_conn *up = c->w->cfg->add_upstream_certs && c->up.tls_on &&
                                        !intercept_of(c)->up_tls_failed
                                    ? &c->up.tls
                                    : NULL; /* add_upstream_certs_to_client_chain */
    int err = tls_conn_set_chain_extra(&c->cl.tls, der, len, up);

    if (err) {
        log_warn("conn %llu: forged chain rejected: %s", (unsigned long long)c->id, strerror(-err));
        return err;
    }
    return intercept_chain_ready(c);
}

/* intercept_local_ip writes the address the client connected to (mitmd's side of its socket;
 * an IPv4-mapped IPv6 address as IPv4) into `out`. Returns 0, or -1 when it is not an IP. */
static int intercept_local_ip(struct conn *c, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

    if (getsockname(c->cl.fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)&ss)->sin_addr, out,
                         (socklen_t)cap) != NULL ? 0 : -1;
    if (ss.ss_family != AF_INET6)
        return -1;
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
        return inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)cap) != NULL ? 0
                                                                                          : -1;
    return inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)cap) != NULL ? 0 : -1;
}

/* intercept_get_cert forms the name set and gets the forged leaf from certcache, or asks
 * the master (the connection then waits in INTERCEPT_CERT_WAIT). */
static int intercept_get_cert(struct conn *c)
{
    struct intercept *ic = intercept_of(c);
    char names[INTERCEPT_MAX_NAMES][TLS_CONN_NAME_MAX];
    const char *ptrs[INTERCEPT_MAX_NAMES];
    char key[NAMESET_KEY_MAX];
    uint8_t der[CERTCACHE_DER_MAX];
    const char *sni = intercept_sni(c);
    size_t n = 0;
    ssize_t klen, dlen;
    const char *why = NULL;
    struct worker *w = c->w;
    int err;

    if (!ic->up_tls_failed && c->up.tls_on) {
        n = INTERCEPT_MAX_NAMES - 2;
        err = tls_conn_peer_names(&c->up.tls, names, &n, NULL, 0);
        if (err && err != -E2BIG)
            n = 0;
    }
    if (sni[0] != '\0')
        snprintf(names[n++], TLS_CONN_NAME_MAX, "%s", sni);
    /* reverse mode without SNI (a client that addressed mitmd by IP): the address it connected
     * to, as mitmproxy's tlsconfig adds client.sockname */
    if (sni[0] == '\0' && c->mode != NULL && (c->mode->server_plain || c->mode->server_tls) &&
        intercept_local_ip(c, names[n], TLS_CONN_NAME_MAX) == 0 &&
        strcmp(names[n], c->upstream.host) != 0)
        n++;
    if (c->upstream.host_is_ip || n == 0)
        snprintf(names[n++], TLS_CONN_NAME_MAX, "%s", c->upstream.host);
    for (size_t i = 0; i < n; i++)
        ptrs[i] = names[i];
    if (tls_conn_set_user_chain(&c->cl.tls, ptrs, n) == 0) /* --certs: the operator's own */
        return intercept_chain_ready(c);
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
    ipc_wait_init(&ic->cert_wait, intercept_on_cert);
    err = ipc_cert_request(&w->ipc, &ic->cert_wait, key, (size_t)klen, ptrs, n);
    if (err) {
        log_warn("conn %llu: cannot request a certificate: %s", (unsigned long long)c->id,
                 strerror(-err));
        return err;
    }
    worker_count(w, MSG_STAT_CERT_REQS);
    intercept_set_phase(ic, INTERCEPT_CERT_WAIT);
    return 0;
}

static void intercept_on_cert(struct ipc_wait *wait, int status, const uint8_t *der, size_t der_len,
                              const char *reason)
{
    struct intercept *ic = (struct intercept *)((char *)wait - offsetof(struct intercept, cert_wait));
    struct conn *c = ic->c;

    if (ic->phase != INTERCEPT_CERT_WAIT)
        return;
    if (status != 0 || intercept_set_chain(c, der, der_len) != 0) {
        log_warn("conn %llu: no forged certificate for %s: %s", (unsigned long long)c->id,
                 intercept_sni(c)[0] ? intercept_sni(c) : c->upstream.host,
                 status ? reason : "chain rejected");
        conn_close(c);
    }
    conn_pump(c);
}

/* intercept_upstream_failed records why the upstream TLS failed; the client still gets a
 * forged certificate and then a 502 with this reason. */
static void intercept_upstream_failed(struct conn *c, const char *why)
{
    struct intercept *ic = intercept_of(c);

    ic->up_tls_failed = true;
    snprintf(ic->up_why, sizeof(ic->up_why), "%s", why != NULL ? why : "upstream TLS failed");
    flow_set_error(&c->flow, ic->up_why);
    log_debug("conn %llu: upstream TLS failed: %s", (unsigned long long)c->id, ic->up_why);
}

/* intercept_start_relay runs once the client handshake is complete: the relay for the ALPN
 * protocol the client and the upstream agreed on takes over the connection. */
static void intercept_start_relay(struct conn *c)
{
    struct intercept *ic = intercept_of(c);
    char alpn[TLS_CTX_ALPN_MAX], subj[FLOW_CERT_NAME_MAX], iss[FLOW_CERT_NAME_MAX];
    char why[TLS_CONN_WHY_MAX];
    bool failed = ic->up_tls_failed;
    const char *sni = intercept_sni(c);
    int err;

    tls_conn_alpn(&c->cl.tls, alpn, sizeof(alpn));
    flow_set_tls(&c->flow, sni, alpn, tls_conn_version(&c->cl.tls));
    if (!failed && c->up.tls_on) {
        tls_conn_peer_subject(&c->up.tls, subj, sizeof(subj));
        tls_conn_peer_issuer(&c->up.tls, iss, sizeof(iss));
        flow_set_cert(&c->flow, subj, iss);
    }
    snprintf(why, sizeof(why), "%s", ic->up_why); /* the relay's state replaces ours */
    /* A TLS 1.3 upstream judges our client certificate after its handshake is over for us:
     * one that requires one we did not send (client_certs) answers our Finished with an
     * alert. Decrypt what arrived meanwhile so that the client gets a 502 with that alert. */
    if (!failed && c->up.tls_on)
        (void)transport_ingress(&c->up, false);
    if (!failed && c->up.tls_on && c->up.failed) {
        failed = true;
        snprintf(why, sizeof(why), "upstream refused the connection: %s",
                 c->up.why[0] ? c->up.why : "TLS error");
        flow_set_error(&c->flow, why);
    }
    if (strcmp(alpn, "h2") == 0 && c->w->h2_pool != NULL) {
        if (failed) {
            conn_up_drop(c); /* never used again: the relay answers 502 with the reason */
            err = h2_conn_start_failed(c, why);
        } else {
            /* an HTTP/1.1 server under an HTTP/2 client: worker/h2_h1up.h bridges them */
            err = intercept_up_is_h2(c) ? h2_conn_start(c) : h2_conn_start_h1up(c);
        }
        if (err != 0)
            conn_close(c);
        return;
    }
    if (h1_conn_start(c) != 0) {
        conn_close(c);
        return;
    }
    if (failed) {
        conn_up_drop(c); /* never used again: the relay answers 502 with the reason */
        h1_relay_upstream_failed(h1_conn_relay(c), why);
    } else {
        h1_relay_upstream_ready(h1_conn_relay(c),
                                sni[0] && !c->upstream.name_fixed ? sni : c->upstream.host,
                                c->upstream.port, c->up.tls_on);
    }
}

/* intercept_fail_up records an upstream failure and goes on with a forged certificate. */
static bool intercept_fail_up(struct conn *c, const char *why)
{
    intercept_upstream_failed(c, why);
    if (intercept_get_cert(c) != 0)
        conn_close(c);
    return true;
}

/* offers_for_origin returns the ALPN offers to pass upstream: the client's, without h2 when a
 * --map-remote rule may send a request of this origin (`sni`, or the CONNECT target) to
 * another one. An HTTP/2 connection has one upstream for all its streams; over HTTP/1.1 each
 * request can go where its URL says (h1_conn re-dials), so the client then gets HTTP/1.1 by
 * the ALPN mirror. `buf` (`cap` bytes) holds the filtered list. */
static const uint8_t *offers_for_origin(struct conn *c, const char *sni, const uint8_t *offers,
                                        size_t *len, uint8_t *buf, size_t cap)
{
    const uint8_t *proto;
    size_t off = 0, l, w = 0;

    if (c->w->rules == NULL ||
        (!rules_may_remap_host(c->w->rules, true, c->upstream.host, c->upstream.port) &&
         (sni[0] == '\0' || !rules_may_remap_host(c->w->rules, true, sni, c->upstream.port))))
        return offers;
    while (tls_ctx_alpn_next(offers, *len, &off, &proto, &l)) {
        if ((l == 2 && memcmp(proto, "h2", 2) == 0) || cap - w < 1 + l)
            continue;
        buf[w] = (uint8_t)l;
        memcpy(buf + w + 1, proto, l);
        w += 1 + l;
    }
    log_debug("conn %llu: --map-remote may send %s elsewhere: HTTP/1.1 upstream",
              (unsigned long long)c->id, sni[0] ? sni : c->upstream.host);
    *len = w;
    return buf;
}

/* intercept_read_hello reads the ClientHello and starts the upstream handshake with its SNI
 * and ALPN offers. Returns whether it made progress. */
static bool intercept_read_hello(struct conn *c)
{
    struct intercept *ic = intercept_of(c);
    const char *why = NULL, *sni;
    const uint8_t *offers;
    uint8_t h1_offers[TLS_CTX_ALPN_MAX];
    size_t offers_len;
    int r = intercept_client_handshake(c, &why);

    if (r == -EAGAIN)
        return false;
    if (r != -EINPROGRESS) {
        intercept_client_failed(c, why != NULL ? why : "no valid ClientHello");
        conn_close_after_flush(c);
        return true;
    }
    ic->hello_done = true;
    if (ic->up_tls_failed) { /* intercept_start_failed: no upstream to shake hands with */
        if (intercept_get_cert(c) != 0)
            conn_close(c);
        return true;
    }
    if (onboarding_is_host(c)) /* CONNECT mitm.it: the requests inside are answered by mitmd */
        return intercept_fail_up(c, "onboarding host: no upstream");
    if (c->mode != NULL && c->mode->server_plain) { /* reverse:http://: no TLS upstream */
        if (intercept_get_cert(c) != 0) /* forged for the SNI or the server's name */
            conn_close(c);
        return true;
    }
    sni = intercept_sni(c);
    offers = tls_conn_alpn_offers(&c->cl.tls, &offers_len);
    offers = offers_for_origin(c, sni, offers, &offers_len, h1_offers, sizeof(h1_offers));
    /* the session key includes the address connected to: a ticket is never offered to
     * another address with the same name */
    if (c->upstream.name_fixed) /* reverse mode: the URL's name, not what the client asked */
        sni = c->upstream.host_is_ip ? "" : c->upstream.host;
    r = tls_conn_init_client_addr(&c->up.tls, &c->w->tls, sni[0] ? sni : NULL,
                                  sni[0] ? sni : c->upstream.host, c->upstream.port, offers,
                                  offers_len, (const struct sockaddr *)&c->up.addr,
                                  c->up.addrlen);
    if (r)
        return intercept_fail_up(c, "cannot start the upstream TLS handshake");
    c->up.tls_on = true;
    intercept_set_phase(ic, INTERCEPT_UP);
    return true;
}

/* intercept_step_up: ClientHello, then the upstream handshake. */
static bool intercept_step_up(struct conn *c)
{
    struct intercept *ic = intercept_of(c);
    const char *why = NULL;
    int r;

    if (c->cl.failed) {
        conn_close(c);
        return true;
    }
    if (!ic->hello_done)
        return intercept_read_hello(c);
    r = transport_handshake(&c->up, &why);
    if (r == -EAGAIN) {
        if (c->up.failed && tls_conn_pending(&c->up.tls) == 0)
            return intercept_fail_up(c, "upstream connection failed during TLS handshake");
        return false;
    }
    if (r != 0)
        return intercept_fail_up(c, why);
    c->flow.tls_ns = (int64_t)(flow_now_ns() - ic->t_phase);
    log_debug("conn %llu: upstream TLS %s done%s", (unsigned long long)c->id,
              tls_conn_version(&c->up.tls),
              tls_conn_is_session_reused(&c->up.tls) ? " (resumed)" : "");
    worker_count(c->w, MSG_STAT_UP_TLS);
    if (tls_conn_is_session_reused(&c->up.tls))
        worker_count(c->w, MSG_STAT_UP_RESUMED);
    if (tls_conn_is_resumed_across_names(&c->up.tls))
        worker_count(c->w, MSG_STAT_UP_WILDCARD);
    if (intercept_get_cert(c) != 0)
        conn_close(c);
    return true;
}

/* intercept_step_client finishes the client handshake with the forged chain. */
static bool intercept_step_client(struct conn *c)
{
    const char *why = NULL;
    int r = intercept_client_handshake(c, &why);

    if (r == -EAGAIN) {
        if (c->cl.failed || (c->cl.rd_eof && buf_used(&c->cl.rx) == 0)) {
            intercept_client_failed(c, NULL);
            conn_close(c);
            return true;
        }
        return false;
    }
    if (r != 0) {
        log_debug("conn %llu: client rejected the handshake: %s", (unsigned long long)c->id,
                  why != NULL ? why : "?");
        intercept_client_failed(c, why); /* e.g. it does not trust our CA */
        conn_close_after_flush(c);       /* our alert goes out first */
        return true;
    }
    intercept_start_relay(c);
    return true;
}

static bool intercept_step(struct conn *c)
{
    switch (intercept_of(c)->phase) {
    case INTERCEPT_UP:
        return intercept_step_up(c);
    case INTERCEPT_CERT_WAIT:
        if (c->cl.failed || c->cl.rd_eof) {
            conn_close(c);
            return true;
        }
        return false;
    case INTERCEPT_CLIENT:
        return intercept_step_client(c);
    }
    return false;
}

static bool intercept_reads_head(struct conn *c, const struct conn_leg *leg)
{
    (void)leg;
    return intercept_of(c)->phase != INTERCEPT_CERT_WAIT;
}

/* intercept_on_timeout handles --handshake-timeout: an upstream that did not finish becomes
 * "upstream TLS handshake timed out" (502 to the client); a client that did not finish is
 * closed. */
static bool intercept_on_timeout(struct conn *c, uint64_t now)
{
    struct intercept *ic = intercept_of(c);

    if (now - ic->t_phase < (uint64_t)c->w->cfg->handshake_timeout_s * 1000000000ull)
        return false;
    if (ic->phase == INTERCEPT_UP && ic->hello_done)
        (void)intercept_fail_up(c, "upstream TLS handshake timed out");
    else
        conn_close(c);
    return true;
}

static void intercept_dispose(struct conn *c)
{
    ipc_cert_cancel(&c->w->ipc, &intercept_of(c)->cert_wait);
}

static const struct conn_proto intercept_proto = {
    .name = "intercept",
    .state_size = sizeof(struct intercept),
    .step = intercept_step,
    .reads_head = intercept_reads_head,
    .on_timeout = intercept_on_timeout,
    .dispose = intercept_dispose,
};

int intercept_start_failed(struct conn *c, const char *why)
{
    char msg[TLS_CONN_WHY_MAX];
    int err;

    snprintf(msg, sizeof(msg), "%s", why != NULL ? why : "upstream unavailable"); /* `why` may
                                                                  * live in the state we reset */
    err = intercept_start(c);
    if (err)
        return err;
    intercept_upstream_failed(c, msg);
    return 0;
}

int intercept_start(struct conn *c)
{
    struct intercept *ic;
    int err = tls_conn_init_server(&c->cl.tls, &c->w->tls);

    if (err) {
        log_warn("conn %llu: cannot start TLS: %s", (unsigned long long)c->id, strerror(-err));
        return err;
    }
    c->cl.tls_on = true;
    conn_set_proto(c, &intercept_proto);
    ic = intercept_of(c);
    ic->c = c;
    tls_alert_walk_init(&ic->walk);
    intercept_set_phase(ic, INTERCEPT_UP);
    return 0;
}
