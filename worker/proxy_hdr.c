/* proxy_hdr.c - see proxy_hdr.h. */
#include "worker/proxy_hdr.h"

#include <errno.h>
#include <string.h>

#include "shared/log.h"
#include "shared/proxy_proto.h"
#include "worker/access.h"
#include "worker/modes.h"
#include "worker/worker.h"

struct proxy_hdr {
    conn_start_fn *next; /* the listener's mode, started once the header is consumed */
};

static_assert(sizeof(struct proxy_hdr) <= CONN_PROTO_STATE_MAX, "fits the protocol state");

static struct proxy_hdr *proxy_hdr_of(struct conn *c)
{
    return conn_proto_state(c);
}

/* proxy_hdr_refuse records a flow that ended with `why` (the client named is the socket's
 * peer: the sender of the bad header), counts a client error and closes without an answer:
 * the bytes may be TLS or anything else, and the spec wants the connection aborted. */
static void proxy_hdr_refuse(struct conn *c, const char *why)
{
    log_debug("conn %llu: refused: %s", (unsigned long long)c->id, why);
    conn_record_error(c, why);
    worker_count(c->w, MSG_STAT_CLIENT_ERRORS);
    conn_close(c);
}

static bool proxy_hdr_step(struct conn *c)
{
    struct buf *rx = &c->cl.rx;
    struct proxy_proto_hdr hdr;
    const char *why = NULL;
    conn_start_fn *next;
    ssize_t n;

    if (c->cl.failed || (c->cl.rd_eof && buf_used(rx) == 0)) {
        conn_close(c); /* connected and closed, nothing sent: a balancer's TCP check */
        return true;
    }
    if (buf_used(rx) == 0)
        return false;
    if (c->flow.t_start == 0)
        flow_begin(&c->flow); /* the first byte: a refusal is timed from here */
    n = proxy_proto_parse(buf_head(rx), buf_used(rx), &hdr, &why);
    if (n == -EAGAIN) {
        if (c->cl.rd_eof)
            proxy_hdr_refuse(c, "connection closed inside the PROXY protocol header");
        else if (buf_used(rx) >= rx->cap)
            proxy_hdr_refuse(c, "PROXY protocol header larger than --max-header-size");
        else
            return false;
        return true;
    }
    if (n < 0) {
        proxy_hdr_refuse(c, why);
        return true;
    }
    buf_consume(rx, (size_t)n);
    if (!hdr.local)
        flow_set_client(&c->flow, (const struct sockaddr *)&hdr.src, hdr.addr_len);
    log_debug("conn %llu: PROXY v%d header of %zd bytes%s", (unsigned long long)c->id,
              hdr.version, n, hdr.local ? " (local: the socket's addresses stand)" : "");
    if (!access_admit(c, true)) /* the header's client, or the socket's for LOCAL */
        return true;
    c->flow.t_start = 0; /* the exchange proper starts with the mode's first byte */
    next = proxy_hdr_of(c)->next;
    next(c); /* replaces this protocol and its state */
    return true;
}

static bool proxy_hdr_reads_head(struct conn *c, const struct conn_leg *leg)
{
    return leg == &c->cl; /* a v2 header may be 64 KiB; the input grows to --max-header-size */
}

static bool proxy_hdr_on_timeout(struct conn *c, uint64_t now)
{
    uint64_t limit = (uint64_t)c->w->cfg->request_timeout_s * 1000000000ull;

    if (now - c->t_proto < limit)
        return false;
    proxy_hdr_refuse(c, buf_used(&c->cl.rx) > 0
                            ? "PROXY protocol header incomplete after --request-timeout"
                            : "no PROXY protocol header within --request-timeout");
    return true;
}

static bool proxy_hdr_is_idle(struct conn *c)
{
    return buf_used(&c->cl.rx) == 0;
}

static const struct conn_proto proxy_hdr_proto = {
    .name = "proxy-header",
    .state_size = sizeof(struct proxy_hdr),
    .step = proxy_hdr_step,
    .reads_head = proxy_hdr_reads_head,
    .on_timeout = proxy_hdr_on_timeout,
    .is_idle = proxy_hdr_is_idle,
};

void proxy_hdr_start_then(struct conn *c, conn_start_fn *next)
{
    conn_set_proto(c, &proxy_hdr_proto);
    proxy_hdr_of(c)->next = next;
}

void proxy_hdr_start(struct conn *c)
{
    proxy_hdr_start_then(c, c->mode->mode_start);
}
