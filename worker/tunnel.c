/* tunnel.c - see tunnel.h. */
#include "worker/tunnel.h"

#include <string.h>
#include <sys/socket.h>

#include "worker/conn.h"
#include "worker/worker.h"

struct tunnel {
    const char *why;
    uint64_t up_bytes, down_bytes; /* client -> upstream, upstream -> client */
};

static_assert(sizeof(struct tunnel) <= CONN_PROTO_STATE_MAX, "fits the protocol state");

static struct tunnel *tunnel_of(struct conn *c)
{
    return conn_proto_state(c);
}

/* tunnel_copy moves what fits from one leg's rx to the other leg's tx, counting it. */
static bool tunnel_copy(struct conn_leg *from, struct conn_leg *to, uint64_t *count)
{
    size_t used = buf_used(&from->rx), room, n;

    if (used == 0 || to->fd < 0)
        return false;
    room = leg_tx_room(to);
    n = used < room ? used : room;
    if (n == 0)
        return false;
    memcpy(buf_tail(&to->tx), buf_head(&from->rx), n);
    buf_commit(&to->tx, n);
    buf_consume(&from->rx, n);
    *count += n;
    return true;
}

/* tunnel_pass_fin passes `from`'s FIN on to `to` once its bytes are delivered. */
static bool tunnel_pass_fin(struct conn_leg *from, struct conn_leg *to)
{
    if (!from->rd_eof || buf_used(&from->rx) > 0 || buf_used(&to->tx) > 0 ||
        to->send_op.armed || from->eof_told)
        return false;
    from->eof_told = true;
    (void)shutdown(to->fd, SHUT_WR);
    return true;
}

static bool tunnel_step(struct conn *c)
{
    struct tunnel *t = tunnel_of(c);
    struct conn_leg *cl = &c->cl, *up = &c->up;
    bool moved = tunnel_copy(cl, up, &t->up_bytes);

    moved = tunnel_copy(up, cl, &t->down_bytes) || moved; /* both directions, every time */
    if (cl->failed || up->failed) {
        conn_close(c);
        return true;
    }
    moved = tunnel_pass_fin(cl, up) || moved;
    moved = tunnel_pass_fin(up, cl) || moved;
    if (cl->eof_told && up->eof_told) {
        conn_close(c);
        return true;
    }
    return moved;
}

static bool tunnel_on_timeout(struct conn *c, uint64_t now)
{
    if (!conn_idle_expired(c, now))
        return false;
    conn_close(c);
    return true;
}

/* tunnel_dispose reports the tunnel as one flow: the CONNECT request already recorded,
 * "200 <why>" as its answer, and the bytes each way as the two body sizes. */
static void tunnel_dispose(struct conn *c)
{
    struct tunnel *t = tunnel_of(c);
    struct flow *f = &c->flow;

    if (f->t_start == 0)
        flow_begin(f);
    f->status = 200;
    flow_str_set(f, &f->reason, t->why, strlen(t->why));
    flow_str_set(f, &f->resp_version, "HTTP/1.1", 8);
    f->req_body_size = t->up_bytes;
    f->resp_body_size = t->down_bytes;
    f->t_response_first = f->t_response_first != 0 ? f->t_response_first : flow_now_ns();
    f->t_done = flow_now_ns();
    worker_on_flow(c->w, f);
    flow_next(f);
}

static const struct conn_proto tunnel_proto = {
    .name = "tunnel",
    .state_size = sizeof(struct tunnel),
    .step = tunnel_step,
    .on_timeout = tunnel_on_timeout,
    .dispose = tunnel_dispose,
};

void tunnel_start(struct conn *c, const char *why)
{
    conn_set_proto(c, &tunnel_proto);
    tunnel_of(c)->why = why;
}
