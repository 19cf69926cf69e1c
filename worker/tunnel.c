/* tunnel.c - see tunnel.h. */
#include "worker/tunnel.h"

#include <string.h>
#include <sys/socket.h>

#include "worker/conn.h"

/* tunnel_copy moves what fits from one leg's rx to the other leg's tx. */
static bool tunnel_copy(struct conn_leg *from, struct conn_leg *to)
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
    struct conn_leg *cl = &c->cl, *up = &c->up;
    bool moved = tunnel_copy(cl, up);

    moved = tunnel_copy(up, cl) || moved; /* both directions, every time */
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

static const struct conn_proto tunnel_proto = {
    .name = "tunnel",
    .step = tunnel_step,
    .on_timeout = tunnel_on_timeout,
};

void tunnel_start(struct conn *c)
{
    conn_set_proto(c, &tunnel_proto);
}
