/* ring.h - the worker's io_uring glue: one ring per worker, every operation in flight is a
 * struct ring_op embedded in its owner, and one dispatcher routes completions to op->done.
 * Used only by the worker loop modules; never blocks except in ring_run's wait, never
 * allocates after ring_open. */
#ifndef MITMD_WORKER_RING_H
#define MITMD_WORKER_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct ring_op;

/* ring_done_fn is called once per completion of `op` with the CQE's result (bytes,
 * fd, 0 or -errno) and flags (IORING_CQE_F_MORE while a multishot op stays armed). When the
 * op counts into its owner's `inflight`, the counter has already been decremented for the
 * final completion, so the callback may free the owner when it reaches 0. The owner finds
 * itself from `op` with container_of. */
typedef void ring_done_fn(struct ring_op *op, int res, uint32_t flags);

/* struct ring_op is one operation in flight. `inflight` (may be NULL) is the owner's count
 * of ops in flight: ++ on submit, -- on the final completion. `armed` is true from submit
 * until the final completion (no IORING_CQE_F_MORE). */
struct ring_op {
    ring_done_fn *done;
    unsigned *inflight;
    bool armed;
    struct __kernel_timespec _ts; /* a timeout's interval: the kernel reads it at submit */
};

struct ring {
    struct io_uring uring;
    unsigned pending; /* SQEs prepared but not submitted yet */
};

/* ring_op_init sets the callback and the owner's in-flight counter (NULL: not counted) of
 * an embedded op (not armed). */
void ring_op_init(struct ring_op *op, ring_done_fn *done, unsigned *inflight);

/* ring_open creates the io_uring with `entries` SQEs (CQ twice that). Returns 0 or -errno.
 * Allocates kernel memory only. */
int ring_open(struct ring *r, unsigned entries);

/* ring_close tears the ring down; ops still armed never complete. */
void ring_close(struct ring *r);

/* The ring_submit_* functions prepare one SQE for `op` (submitting the queue first when it
 * is full), mark the op armed and count it in *op->inflight. They return 0, or
 * -EBUSY if `op` is already armed, or -errno from io_uring_submit. The kernel sees them on
 * the next ring_flush or ring_run. Buffers must stay valid until the completion. */
int ring_submit_recv(struct ring *r, struct ring_op *op, int fd, void *buf, size_t len);
/* ring_submit_recv_polled is ring_submit_recv for a socket the last recv drained: the kernel
 * waits for readiness before it tries (IORING_RECVSEND_POLL_FIRST), which saves the receive
 * attempt that would find nothing. Same results and returns as ring_submit_recv. */
int ring_submit_recv_polled(struct ring *r, struct ring_op *op, int fd, void *buf, size_t len);
int ring_submit_send(struct ring *r, struct ring_op *op, int fd, const void *buf, size_t len);
int ring_submit_read(struct ring *r, struct ring_op *op, int fd, void *buf, size_t len);
int ring_submit_write(struct ring *r, struct ring_op *op, int fd, const void *buf, size_t len);
int ring_submit_writev(struct ring *r, struct ring_op *op, int fd, const struct iovec *iov,
                       unsigned n);
int ring_submit_connect(struct ring *r, struct ring_op *op, int fd, const struct sockaddr *sa,
                        socklen_t salen);
int ring_submit_close(struct ring *r, struct ring_op *op, int fd);
/* ring_submit_accept arms one accept that completes with one connection (or an error). */
int ring_submit_accept(struct ring *r, struct ring_op *op, int fd);
/* ring_submit_poll arms a one-shot poll for `events` (POLLIN/POLLOUT) on `fd`. */
int ring_submit_poll(struct ring *r, struct ring_op *op, int fd, unsigned events);
/* ring_submit_timeout arms a standalone relative timeout of `ms` milliseconds; it
 * completes with -ETIME when it fires. */
int ring_submit_timeout(struct ring *r, struct ring_op *op, uint64_t ms);
/* ring_submit_cancel_fd cancels every op in flight on `fd`; `op` carries its completion. */
int ring_submit_cancel_fd(struct ring *r, struct ring_op *op, int fd);
/* ring_submit_nop arms an op that completes at once (res 0): a deferred callback. */
int ring_submit_nop(struct ring *r, struct ring_op *op);
/* ring_submit_cancel asks the kernel to cancel `target` (if armed); `op` carries the
 * cancel's own completion. The target still completes (usually -ECANCELED). */
int ring_submit_cancel(struct ring *r, struct ring_op *op, struct ring_op *target);

/* ring_flush submits prepared SQEs without waiting. Returns 0 or -errno. */
int ring_flush(struct ring *r);

/* ring_run submits, waits for at least one completion (or `timeout_ms`, when nonzero), then
 * dispatches every available CQE in one batch and advances the CQ once. Returns the number
 * of CQEs handled, or -errno (-EINTR and -ETIME are returned as 0). */
int ring_run(struct ring *r, unsigned timeout_ms);

#endif
