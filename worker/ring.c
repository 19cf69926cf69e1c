/* ring.c - see ring.h. */
#include "worker/ring.h"

#include <errno.h>
#include <string.h>

void ring_op_init(struct ring_op *op, ring_done_fn *done, unsigned *inflight)
{
    op->done = done;
    op->inflight = inflight;
    op->armed = false;
}

int ring_open(struct ring *r, unsigned entries)
{
    struct io_uring_params p;
    int err;

    /* One thread submits and reaps: completions run as deferred task work when we wait
     * (no IPIs, fewer context switches); fall back to plain flags on older kernels. */
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
              IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    p.cq_entries = entries * 2;
    err = io_uring_queue_init_params(entries, &r->uring, &p);
    if (err == -EINVAL) {
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = entries * 2;
        err = io_uring_queue_init_params(entries, &r->uring, &p);
    }
    if (err < 0)
        return err;
    r->pending = 0;
    return 0;
}

void ring_close(struct ring *r)
{
    io_uring_queue_exit(&r->uring);
}

int ring_flush(struct ring *r)
{
    int n;

    if (r->pending == 0)
        return 0;
    n = io_uring_submit(&r->uring);
    if (n < 0)
        return n;
    r->pending = 0;
    return 0;
}

/* ring_get_sqe returns a free SQE, submitting the queue first when it is full (liburing
 * echo-server). Returns NULL only if submitting failed. */
static struct io_uring_sqe *ring_get_sqe(struct ring *r, int *err)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);

    if (sqe != NULL)
        return sqe;
    *err = ring_flush(r);
    if (*err)
        return NULL;
    sqe = io_uring_get_sqe(&r->uring);
    if (sqe == NULL)
        *err = -EBUSY;
    return sqe;
}

/* ring_prep takes an SQE for `op` and accounts it; the caller fills in the operation. */
static struct io_uring_sqe *ring_prep(struct ring *r, struct ring_op *op, int *err)
{
    struct io_uring_sqe *sqe;

    *err = 0;
    if (op->armed) {
        *err = -EBUSY;
        return NULL;
    }
    sqe = ring_get_sqe(r, err);
    if (sqe == NULL)
        return NULL;
    op->armed = true;
    if (op->inflight != NULL)
        (*op->inflight)++;
    r->pending++;
    return sqe;
}

static void ring_set_data(struct io_uring_sqe *sqe, struct ring_op *op)
{
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op);
}

/* submit_recv queues a recv, waiting for readiness first with `poll_first`. */
static int submit_recv(struct ring *r, struct ring_op *op, int fd, void *buf, size_t len,
                       bool poll_first)
{
    int err;
    struct io_uring_sqe *sqe = ring_prep(r, op, &err);

    if (sqe == NULL)
        return err;
    io_uring_prep_recv(sqe, fd, buf, len, 0);
    if (poll_first)
        sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    ring_set_data(sqe, op);
    return 0;
}

int ring_submit_recv(struct ring *r, struct ring_op *op, int fd, void *buf, size_t len)
{
    return submit_recv(r, op, fd, buf, len, false);
}

int ring_submit_recv_polled(struct ring *r, struct ring_op *op, int fd, void *buf, size_t len)
{
    return submit_recv(r, op, fd, buf, len, true);
}

int ring_submit_send(struct ring *r, struct ring_op *op, int fd, const void *buf, size_t len)
{
    int err;
    struct io_uring_sqe *sqe = ring_prep(r, op, &err);

    if (sqe == NULL)
        return err;
    io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
    ring_set_data(sqe, op);
    return 0;
}

int ring_submit_read(struct ring *r, struct ring_op *op, int fd, void *buf, size_t len)
{
    int err;
    struct io_uring_sqe *sqe = ring_prep(r, op, &err);

    if (sqe == NULL)
        return err;
    io_uring_prep_read(sqe, fd, buf, (unsigned)len, (uint64_t)-1);
    ring_set_data(sqe, op);
    return 0;
}

int ring_submit_write(struct ring *r, struct ring_op *op, int fd, const void *buf, size_t len)
{
    int err;
    struct io_uring_sqe *sqe = ring_prep(r, op, &err);

    if (sqe == NULL)
        return err;
    /* offset -1: the file position, so O_APPEND files append atomically per write. */
    io_uring_prep_write(sqe, fd, buf, (unsigned)len, (uint64_t)-1);
    ring_set_data(sqe, op);
    return 0;
}

int ring_submit_writev(struct ring *r, struct ring_op *op, int fd, const struct iovec *iov,
                       unsigned n)
{
    int err;
    struct io_uring_sqe *sqe = ring_prep(r, op, &err);

    if (sqe == NULL)
        return err;
    /* offset -1: the file position (O_APPEND files append the whole vector at once) */
    io_uring_prep_writev(sqe, fd, iov, n, (uint64_t)-1);
    ring_set_data(sqe, op);
    return 0;
}

int ring_submit_connect(struct ring *r, struct ring_op *op, int fd, const struct sockaddr *sa,
                        socklen_t salen)
{
    int err;
    struct io_uring_sqe *sqe = ring_prep(r, op, &err);

    if (sqe == NULL)
        return err;
    io_uring_prep_connect(sqe, fd, sa, salen);
    ring_set_data(sqe, op);
    return 0;
}

int ring_submit_close(struct ring *r, struct ring_op *op, int fd)
{
    int err;
    struct io_uring_sqe *sqe = ring_prep(r, op, &err);

    if (sqe == NULL)
        return err;
    io_uring_prep_close(sqe, fd);
    ring_set_data(sqe, op);
    return 0;
}

int ring_submit_accept(struct ring *r, struct ring_op *op, int fd)
{
    int err;
    struct io_uring_sqe *sqe = ring_prep(r, op, &err);

    if (sqe == NULL)
        return err;
    io_uring_prep_accept(sqe, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ring_set_data(sqe, op);
    return 0;
}

int ring_submit_poll(struct ring *r, struct ring_op *op, int fd, unsigned events)
{
    int err;
    struct io_uring_sqe *sqe = ring_prep(r, op, &err);

    if (sqe == NULL)
        return err;
    io_uring_prep_poll_add(sqe, fd, events);
    ring_set_data(sqe, op);
    return 0;
}

int ring_submit_timeout(struct ring *r, struct ring_op *op, uint64_t ms)
{
    int err;
    struct io_uring_sqe *sqe = ring_prep(r, op, &err);

    if (sqe == NULL)
        return err;
    /* liburing's prep stores a pointer that the kernel reads when it consumes the SQE, which
     * may be a later ring_flush/ring_run: the interval lives in the op, not on our stack. */
    op->_ts.tv_sec = (long long)(ms / 1000);
    op->_ts.tv_nsec = (long long)(ms % 1000) * 1000000;
    io_uring_prep_timeout(sqe, &op->_ts, 0, 0);
    ring_set_data(sqe, op);
    return 0;
}

int ring_submit_cancel_fd(struct ring *r, struct ring_op *op, int fd)
{
    int err;
    struct io_uring_sqe *sqe = ring_prep(r, op, &err);

    if (sqe == NULL)
        return err;
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    ring_set_data(sqe, op);
    return 0;
}

int ring_submit_nop(struct ring *r, struct ring_op *op)
{
    int err;
    struct io_uring_sqe *sqe = ring_prep(r, op, &err);

    if (sqe == NULL)
        return err;
    io_uring_prep_nop(sqe);
    ring_set_data(sqe, op);
    return 0;
}

int ring_submit_cancel(struct ring *r, struct ring_op *op, struct ring_op *target)
{
    int err;
    struct io_uring_sqe *sqe;

    if (!target->armed)
        return 0;
    sqe = ring_prep(r, op, &err);
    if (sqe == NULL)
        return err;
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)target, 0);
    ring_set_data(sqe, op);
    return 0;
}

/* ring_dispatch routes one completion to its op (STYLE.md "io_uring"). */
static void ring_dispatch(const struct io_uring_cqe *cqe)
{
    struct ring_op *op = (struct ring_op *)(uintptr_t)cqe->user_data;

    if (op == NULL)
        return;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        op->armed = false;
        if (op->inflight != NULL)
            (*op->inflight)--;
    }
    op->done(op, cqe->res, cqe->flags);
}

int ring_run(struct ring *r, unsigned timeout_ms)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    int err;

    if (timeout_ms > 0) {
        struct __kernel_timespec ts = {
            .tv_sec = timeout_ms / 1000,
            .tv_nsec = (long long)(timeout_ms % 1000) * 1000000,
        };
        err = io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1, &ts, NULL);
    } else {
        err = io_uring_submit_and_wait(&r->uring, 1);
    }
    r->pending = 0;
    /* -EBUSY/-EAGAIN: the kernel could not take more work now (e.g. completions overflowed
     * the CQ); reaping them below is what frees it, so this is no reason to stop the loop. */
    if (err < 0 && err != -EINTR && err != -ETIME && err != -EBUSY && err != -EAGAIN)
        return err;
    io_uring_for_each_cqe(&r->uring, head, cqe)
    {
        ring_dispatch(cqe);
        n++;
    }
    io_uring_cq_advance(&r->uring, n);
    return (int)n;
}
