/* modes.h - the proxy modes a worker's listeners serve (mitmproxy's --mode, one listener per
 * mode): which protocol starts each accepted connection, and what that mode needs at run time
 * (upstream mode's next proxy, reverse mode's Host). regular (worker/proxy_req), socks5
 * (worker/socks5), reverse (worker/reverse), upstream (regular through worker/upstream's next
 * hop), transparent (worker/transparent). A new mode is a new protocol file and one entry
 * here. Never allocates. */
#ifndef MITMD_WORKER_MODES_H
#define MITMD_WORKER_MODES_H

#include "shared/config.h"
#include "worker/conn.h"
#include "worker/upstream.h"

/* struct modes_conf is one --mode as a worker serves it, made at start-up and read by every
 * connection accepted on its listener (c->mode). */
struct modes_conf {
    const struct mode_spec *spec; /* cfg->modes[index] (borrowed for the process) */
    int index;                    /* position in cfg->modes (--mode order) */
    conn_start_fn *start;         /* first protocol: the mode's, or the PROXY header's first */
    conn_start_fn *mode_start;    /* the mode's protocol (after a PROXY protocol header) */
    struct upstream_via via_store;   /* upstream mode's next proxy */
    const struct upstream_via *via;  /* &via_store in upstream mode, else NULL */
    char host_rewrite[TARGET_HOST_MAX + 16]; /* reverse mode's Host for the server, or "" */
    /* reverse mode: the server's scheme decides the upstream leg, whatever the client speaks
     * (mitmproxy's next_layer: a ClientTLSLayer only when the client's first bytes are TLS) */
    bool server_plain; /* reverse:http://: a TLS client is served with no TLS to the server */
    bool server_tls;   /* reverse:https://: a plain client is relayed over TLS to the server */
    bool proxy_protocol; /* connections start with a PROXY header (config_mode_proxy_protocol) */
    bool client_replay;  /* worker/creplay's connections: flows say [replay], no proxyauth */
};

/* modes_url_is_tls returns the scheme that origin-form requests of `c` are recorded with:
 * in reverse mode the server's (mitmproxy's request.scheme), else whether the client spoke
 * TLS. */
bool modes_url_is_tls(const struct conn *c);

/* modes_conf_init fills `mc` for cfg->modes[index]. Returns 0, or -ENOSPC when reverse mode's
 * Host does not fit (it always does: both are bounded by TARGET_HOST_MAX). */
int modes_conf_init(struct modes_conf *mc, const struct config *cfg, int index);

/* modes_start_fn returns the protocol that starts connections accepted in mode `m`. */
conn_start_fn *modes_start_fn(const struct mode_spec *m);

#endif
