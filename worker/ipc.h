/* ipc.h - the worker's end of the SOCK_SEQPACKET channel to the master (fd 3): HELLO at
 * start, READY when set up, CERT_REQ/CERT_REPLY by request id with local coalescing of
 * identical name sets and a deadline per request, STATS. Owns the socket's ring ops and the
 * table of pending certificate requests. Called by worker.c and intercept.c; blocks only in
 * ipc_recv_hello (start-up); never allocates after ipc_init. */
#ifndef MITMD_WORKER_IPC_H
#define MITMD_WORKER_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/msg.h"
#include "shared/msgcodec.h"
#include "shared/nameset.h"
#include "worker/ring.h"

#define IPC_MAX_PENDING 128         /* distinct name sets awaiting the master at once */
#define IPC_KEY_MAX NAMESET_KEY_MAX /* longest canonical name-set key */
/* IPC_REPLY_TIMEOUT_MS_DEFAULT is how long a certificate request may wait for the master
 * (the default handshake timeout): a reply lost on the way must not hold a slot forever. */
#define IPC_REPLY_TIMEOUT_MS_DEFAULT 10000

struct ipc;
struct ipc_wait;

/* ipc_cert_fn delivers the master's answer to one waiter: `status` 0 with the leaf `der`
 * (borrowed for the call only), or -errno with `reason` (NUL-terminated, borrowed). */
typedef void ipc_cert_fn(struct ipc_wait *wait, int status, const uint8_t *der, size_t der_len,
                         const char *reason);

/* struct ipc_wait is one connection waiting for a certificate, embedded in the connection.
 * It is linked to a pending request until the answer arrives or ipc_cert_cancel. */
struct ipc_wait {
    ipc_cert_fn *done;
    struct ipc_wait *_next, *_prev;
    int _slot; /* pending slot + 1; 0 when not waiting (a zeroed
                * struct is a valid "not waiting" one) */
};

struct ipc_pending {
    bool in_use;
    bool replied; /* the reply came (or the request failed) */
    uint64_t id;
    uint64_t deadline_ns; /* CLOCK_MONOTONIC; ipc_expire fails the waiters after it */
    size_t keylen;
    char key[IPC_KEY_MAX];
    struct ipc_wait *waiters;
    struct ring_op send_op;
    size_t msg_len;
    uint8_t msg[MSG_CERT_REQ_MAX];
};

struct ipc {
    struct ring *ring;
    int fd;
    bool eof; /* the master closed its end */
    uint64_t next_id;
    struct ring_op recv_op;
    uint8_t rx[MSG_MAX_SIZE];
    struct ring_op stats_op;
    uint8_t stats_msg[sizeof(struct msg_hdr) + sizeof(struct msg_stats)];
    struct ipc_pending *pending; /* IPC_MAX_PENDING, allocated at init */
    uint64_t timeout_ns;         /* reply deadline after a request (ipc_set_timeout) */
    uint64_t sent, coalesced, errors;
    uint64_t expired;            /* requests failed by ipc_expire (no reply in time) */
};

/* ipc_recv_hello blocks on `fd` until the master's HELLO arrives and copies it into `buf`
 * (MSG_MAX_SIZE bytes), filling `v` with slices of `buf`. Start-up only. Returns 0, or
 * -EPIPE if the master closed the socket, -EPROTO with `*why` set for anything else. */
int ipc_recv_hello(int fd, uint8_t *buf, struct msg_hello_view *v, const char **why);

/* ipc_init prepares the channel on `fd` (not owned), arms the receive op and tells the
 * master that this worker is set up (MSG_READY, one non-blocking send): call it as the last
 * step of the worker's set-up, so that a worker that fails before never reports ready (the
 * master stops after two such failures in a row). Allocates the pending table. The reply
 * timeout starts at IPC_REPLY_TIMEOUT_MS_DEFAULT. Returns 0 or -errno. */
int ipc_init(struct ipc *c, struct ring *r, int fd);

/* ipc_dispose frees the pending table; waiters still linked are dropped without callback. */
void ipc_dispose(struct ipc *c);

/* ipc_cert_request asks the master for a leaf covering `names` (n entries, NUL-terminated),
 * coalescing with a pending request of the same canonical `key`. `w->done` must be set; it
 * runs once from the loop unless ipc_cert_cancel is called first. Returns 0 (waiting),
 * -ENOBUFS when IPC_MAX_PENDING distinct requests are pending, -EPIPE after the master
 * closed the channel, or -EINVAL / -EMSGSIZE for names the message cannot carry. */
int ipc_cert_request(struct ipc *c, struct ipc_wait *w, const char *key, size_t keylen,
                     const char *const *names, size_t n);

/* ipc_set_timeout sets how long later requests may wait for the master's reply (ms > 0;
 * the worker passes its handshake timeout). */
void ipc_set_timeout(struct ipc *c, unsigned ms);

/* ipc_expire fails every request whose reply deadline is at or before `now_ns`
 * (CLOCK_MONOTONIC nanoseconds, as flow_now_ns) with -ETIMEDOUT through each waiter's
 * callback, and frees its slot once its send has completed; a reply arriving later is
 * ignored. The worker's tick calls it (once a second is enough). Returns the number of
 * requests failed. Never blocks. */
int ipc_expire(struct ipc *c, uint64_t now_ns);

/* ipc_cert_cancel unlinks `w` if it is waiting (its callback will not run). */
void ipc_cert_cancel(struct ipc *c, struct ipc_wait *w);

/* ipc_wait_init sets the callback and marks `w` as not waiting (as a zeroed struct is). */
void ipc_wait_init(struct ipc_wait *w, ipc_cert_fn *done);

/* ipc_send_stats sends a STATS message unless the previous one is still in flight. */
void ipc_send_stats(struct ipc *c, const struct msg_stats *s);

#endif
