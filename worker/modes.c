/* modes.c - see modes.h. */
#include "worker/modes.h"

#include <stdio.h>
#include <string.h>

#include "worker/proxy_hdr.h"
#include "worker/proxy_req.h"
#include "worker/reverse.h"
#include "worker/socks5.h"
#include "worker/transparent.h"

conn_start_fn *modes_start_fn(const struct mode_spec *m)
{
    switch (m->kind) {
    case MODE_SPEC_SOCKS5:
        return socks5_start;
    case MODE_SPEC_REVERSE:
        return reverse_start;
    case MODE_SPEC_TRANSPARENT:
        return transparent_start;
    case MODE_SPEC_UPSTREAM: /* regular; every dial goes through the next proxy (mc->via) */
    case MODE_SPEC_REGULAR:
    default:
        return proxy_req_start;
    }
}

int modes_conf_init(struct modes_conf *mc, const struct config *cfg, int index)
{
    const struct mode_spec *m = &cfg->modes[index];
    int n;

    memset(mc, 0, sizeof(*mc));
    mc->spec = m;
    mc->index = index;
    mc->mode_start = modes_start_fn(m);
    /* a PROXY protocol listener reads the header first; proxy_hdr_start then starts the mode */
    mc->proxy_protocol = config_mode_proxy_protocol(cfg, index);
    mc->start = mc->proxy_protocol ? proxy_hdr_start : mc->mode_start;
    if (m->kind == MODE_SPEC_UPSTREAM) {
        snprintf(mc->via_store.host, sizeof(mc->via_store.host), "%s", m->host);
        mc->via_store.port = m->port;
        mc->via_store.is_ipv6 = m->host_is_ipv6;
        mc->via_store.auth = cfg->upstream_auth;
        upstream_via_set_auth(&mc->via_store);
        mc->via = &mc->via_store;
    }
    mc->server_plain = m->kind == MODE_SPEC_REVERSE && !m->tls;
    mc->server_tls = m->kind == MODE_SPEC_REVERSE && m->tls;
    n = reverse_host_rewrite(m, cfg->keep_host_header, mc->host_rewrite,
                             sizeof(mc->host_rewrite));
    if (n <= 0)
        mc->host_rewrite[0] = '\0'; /* not reverse mode, or keep_host_header */
    return n < 0 ? n : 0;
}

bool modes_url_is_tls(const struct conn *c)
{
    if (c->mode != NULL && (c->mode->server_plain || c->mode->server_tls))
        return c->mode->server_tls;
    return c->cl.tls_on;
}
