/* ipc.c - see ipc.h. A pending request is freed when both its send has completed and its
 * reply has been delivered, whichever comes last (the two CQEs may arrive in any order). */
#include "worker/ipc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "shared/log.h"

static void ipc_arm_recv(struct ipc *c);

static uint64_t ipc_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct ipc_pending *ipc_pending_of(struct ring_op *op)
{
    return (struct ipc_pending *)((char *)op - offsetof(struct ipc_pending, send_op));
}

int ipc_recv_hello(int fd, uint8_t *buf, struct msg_hello_view *v, const char **why)
{
    struct msg_hdr hdr;
    ssize_t n;
    int err;

    for (;;) {
        n = recv(fd, buf, MSG_MAX_SIZE, 0);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            *why = "cannot read from the master";
            return -errno;
        }
        if (n == 0) {
            *why = "the master closed the channel before HELLO";
            return -EPIPE;
        }
        err = msgcodec_decode_hdr(buf, (size_t)n, &hdr, why);
        if (err)
            return err;
        if (hdr.type != MSG_HELLO) {
            *why = "expected HELLO from the master";
            return -EPROTO;
        }
        return msgcodec_decode_hello(buf, (size_t)n, v, why);
    }
}

/* ipc_pending_release frees slot `p` once its send and its reply are both done. */
static void ipc_pending_release(struct ipc_pending *p)
{
    if (p->replied && !p->send_op.armed) {
        p->in_use = false;
        p->waiters = NULL;
    }
}

/* ipc_deliver hands the answer to every waiter of `p` (each is unlinked first, so a
 * callback may start a new request or close its connection). */
static void ipc_deliver(struct ipc_pending *p, int status, const uint8_t *der, size_t der_len,
                        const char *reason)
{
    struct ipc_wait *w;

    p->replied = true;
    while ((w = p->waiters) != NULL) {
        p->waiters = w->_next;
        if (p->waiters != NULL)
            p->waiters->_prev = NULL;
        w->_next = w->_prev = NULL;
        w->_slot = 0;
        w->done(w, status, der, der_len, reason);
    }
    ipc_pending_release(p);
}

static void ipc_on_send(struct ring_op *op, int res, uint32_t flags)
{
    struct ipc_pending *p = ipc_pending_of(op);

    (void)flags;
    if (res < 0 && !p->replied) {
        log_warn("certificate request to the master failed: %s", strerror(-res));
        ipc_deliver(p, res, NULL, 0, "cannot reach the master to forge a certificate");
        return;
    }
    ipc_pending_release(p);
}

static void ipc_handle_reply(struct ipc *c, const uint8_t *msg, size_t len, uint64_t id)
{
    struct msg_cert_reply_view v;
    const char *why = NULL;
    char reason[MSG_MAX_REASON + 1];
    size_t rl;

    if (msgcodec_decode_cert_reply(msg, len, &v, &why) != 0) {
        c->errors++;
        log_warn("bad CERT_REPLY from the master: %s", why);
        return;
    }
    for (int i = 0; i < IPC_MAX_PENDING; i++) {
        struct ipc_pending *p = &c->pending[i];

        if (!p->in_use || p->replied || p->id != id)
            continue;
        log_debug("cert reply %llu: status %d", (unsigned long long)id, (int)v.status);
        rl = v.reason.len < MSG_MAX_REASON ? v.reason.len : MSG_MAX_REASON;
        memcpy(reason, v.reason.p, rl);
        reason[rl] = '\0';
        if (v.status == 0 && v.der.len == 0)
            ipc_deliver(p, -EPROTO, NULL, 0, "the master sent an empty certificate");
        else
            ipc_deliver(p, v.status, v.der.p, v.der.len, v.status ? reason : "");
        return;
    }
    log_debug("cert reply %llu: no such request", (unsigned long long)id);
}

static void ipc_on_recv(struct ring_op *op, int res, uint32_t flags)
{
    struct ipc *c = (struct ipc *)((char *)op - offsetof(struct ipc, recv_op));
    struct msg_hdr hdr;
    const char *why = NULL;

    (void)flags;
    if (res == 0 || res == -ECONNRESET || res == -EPIPE) {
        c->eof = true;
        for (int i = 0; i < IPC_MAX_PENDING; i++)
            if (c->pending[i].in_use && !c->pending[i].replied)
                ipc_deliver(&c->pending[i], -EPIPE, NULL, 0, "the master is gone");
        return;
    }
    if (res < 0) {
        if (res != -EINTR && res != -EAGAIN && c->errors++ == 0)
            log_warn("recv from the master failed: %s", strerror(-res));
        if (res == -ECANCELED)
            return;
        ipc_arm_recv(c);
        return;
    }
    if (msgcodec_decode_hdr(c->rx, (size_t)res, &hdr, &why) != 0) {
        c->errors++;
        log_warn("bad message from the master: %s", why);
    } else if (hdr.type == MSG_CERT_REPLY) {
        ipc_handle_reply(c, c->rx, (size_t)res, hdr.id);
    }
    ipc_arm_recv(c);
}

static void ipc_arm_recv(struct ipc *c)
{
    int err;

    if (c->eof)
        return;
    err = ring_submit_recv(c->ring, &c->recv_op, c->fd, c->rx, sizeof(c->rx));
    if (err) {
        log_error("cannot arm the master channel: %s", strerror(-err));
        c->eof = true;
    }
}

static void ipc_on_stats(struct ring_op *op, int res, uint32_t flags)
{
    (void)op;
    (void)res;
    (void)flags;
}

/* ipc_send_ready tells the master the worker is set up. A failure is logged, not fatal:
 * the master also counts the first STATS or CERT_REQ as ready. */
static void ipc_send_ready(struct ipc *c)
{
    uint8_t msg[sizeof(struct msg_hdr)];
    ssize_t len = msgcodec_encode_ready(msg, sizeof(msg));

    if (len < 0 || send(c->fd, msg, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL) != len)
        log_warn("cannot tell the master this worker is ready: %s", strerror(errno));
}

void ipc_set_timeout(struct ipc *c, unsigned ms)
{
    c->timeout_ns = (uint64_t)(ms > 0 ? ms : IPC_REPLY_TIMEOUT_MS_DEFAULT) * 1000000u;
}

int ipc_expire(struct ipc *c, uint64_t now_ns)
{
    int n = 0;

    if (c->pending == NULL)
        return 0;
    for (int i = 0; i < IPC_MAX_PENDING; i++) {
        struct ipc_pending *p = &c->pending[i];

        if (!p->in_use || p->replied || p->deadline_ns > now_ns)
            continue;
        log_debug("cert request %llu: no reply from the master in time",
                  (unsigned long long)p->id);
        c->expired++;
        n++;
        ipc_deliver(p, -ETIMEDOUT, NULL, 0, "the master did not answer the certificate request "
                                            "in time");
    }
    return n;
}

int ipc_init(struct ipc *c, struct ring *r, int fd)
{
    memset(c, 0, sizeof(*c));
    c->ring = r;
    c->fd = fd;
    c->next_id = 1;
    c->pending = calloc(IPC_MAX_PENDING, sizeof(*c->pending));
    if (c->pending == NULL)
        return -ENOMEM;
    for (int i = 0; i < IPC_MAX_PENDING; i++)
        ring_op_init(&c->pending[i].send_op, ipc_on_send, NULL);
    ring_op_init(&c->recv_op, ipc_on_recv, NULL);
    ring_op_init(&c->stats_op, ipc_on_stats, NULL);
    ipc_set_timeout(c, IPC_REPLY_TIMEOUT_MS_DEFAULT);
    ipc_arm_recv(c);
    if (c->eof)
        return -EIO;
    ipc_send_ready(c);
    return 0;
}

void ipc_dispose(struct ipc *c)
{
    free(c->pending);
    c->pending = NULL;
}

void ipc_wait_init(struct ipc_wait *w, ipc_cert_fn *done)
{
    w->done = done;
    w->_next = w->_prev = NULL;
    w->_slot = 0;
}

static void ipc_link(struct ipc_pending *p, struct ipc_wait *w, int slot)
{
    w->_prev = NULL;
    w->_next = p->waiters;
    if (p->waiters != NULL)
        p->waiters->_prev = w;
    p->waiters = w;
    w->_slot = slot + 1;
}

int ipc_cert_request(struct ipc *c, struct ipc_wait *w, const char *key, size_t keylen,
                     const char *const *names, size_t n)
{
    struct ipc_pending *p = NULL;
    int free_slot = -1, err;
    ssize_t len;

    if (c->eof)
        return -EPIPE;
    if (keylen > IPC_KEY_MAX)
        return -EMSGSIZE;
    for (int i = 0; i < IPC_MAX_PENDING; i++) {
        p = &c->pending[i];
        if (!p->in_use) {
            if (free_slot == -1)
                free_slot = i;
            continue;
        }
        if (!p->replied && p->keylen == keylen && memcmp(p->key, key, keylen) == 0) {
            ipc_link(p, w, i);
            c->coalesced++;
            return 0;
        }
    }
    if (free_slot == -1)
        return -ENOBUFS;
    p = &c->pending[free_slot];
    len = msgcodec_encode_cert_req(p->msg, sizeof(p->msg), c->next_id, names, n, NULL);
    if (len < 0)
        return (int)len;
    err = ring_submit_send(c->ring, &p->send_op, c->fd, p->msg, (size_t)len);
    if (err)
        return err;
    p->in_use = true;
    p->replied = false;
    p->id = c->next_id++;
    p->deadline_ns = ipc_now_ns() + c->timeout_ns;
    p->msg_len = (size_t)len;
    memcpy(p->key, key, keylen);
    p->keylen = keylen;
    p->waiters = NULL;
    ipc_link(p, w, free_slot);
    c->sent++;
    log_debug("cert request %llu (slot %d)", (unsigned long long)p->id, free_slot);
    return 0;
}

void ipc_cert_cancel(struct ipc *c, struct ipc_wait *w)
{
    struct ipc_pending *p;

    if (w->_slot <= 0 || w->_slot > IPC_MAX_PENDING || c->pending == NULL)
        return;
    p = &c->pending[w->_slot - 1];
    if (w->_prev != NULL)
        w->_prev->_next = w->_next;
    else
        p->waiters = w->_next;
    if (w->_next != NULL)
        w->_next->_prev = w->_prev;
    w->_next = w->_prev = NULL;
    w->_slot = 0;
}

void ipc_send_stats(struct ipc *c, const struct msg_stats *s)
{
    ssize_t len;

    if (c->eof || c->stats_op.armed)
        return;
    len = msgcodec_encode_stats(c->stats_msg, sizeof(c->stats_msg), s);
    if (len < 0)
        return;
    if (ring_submit_send(c->ring, &c->stats_op, c->fd, c->stats_msg, (size_t)len) != 0)
        c->errors++;
}
