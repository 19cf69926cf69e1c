/* transport.h - the transport of one connection side: raw TCP or TLS on memory buffers. Moves
 * received bytes to the protocol's plaintext input and the protocol's output to the socket
 * buffer, drives a handshake and queues close_notify; the protocol above sees plaintext only.
 * Owns nothing but the leg's TLS flags; never does socket I/O (conn.c arms the ring), never
 * allocates (the tls_conn is created by the protocol that starts TLS). */
#ifndef MITMD_WORKER_TRANSPORT_H
#define MITMD_WORKER_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "worker/leg.h"

/* transport_in returns the protocol's plaintext input of `leg`: pin under TLS, rx when raw. */
struct buf *transport_in(struct conn_leg *leg);

/* transport_ingress decrypts what `leg` received (rx -> pin) when TLS is open; a raw leg has
 * nothing to do. Input stops at the CONN_BUF_SIZE watermark of pin unless `may_grow` (the protocol
 * waits for the rest of a head). Sets leg->tls_closed at close_notify or EOF, and
 * leg->failed / leg->why on a TLS error. Returns whether anything moved or changed. */
bool transport_ingress(struct conn_leg *leg, bool may_grow);

/* transport_egress moves the protocol's output (pout) toward the socket: encrypted when TLS
 * is on, copied as is when raw, as far as tx has room. Returns whether anything moved. */
bool transport_egress(struct conn_leg *leg);

/* transport_pass writes plaintext `p`/`n` (the other side's input, still in its buffer) straight
 * toward `leg`'s socket: encrypted into tx when TLS is open, copied into tx when raw, so a body
 * relayed between two legs skips the copy into pout. Only while pout is empty (its bytes come
 * first). Returns the bytes taken (> 0); 0 when tx has no room now (the send in flight makes
 * some; the caller keeps the bytes and calls again after the next completion); -EAGAIN when
 * passing does not apply now (pout holds bytes, TLS not open, or the leg failed: move the bytes
 * through pout instead). A TLS error marks the leg failed, as transport_egress does, and
 * returns the bytes taken before it, or -EAGAIN when there were none (never 0: the caller must
 * not take a failure for "no room" and wait for a completion that may not come). */
ssize_t transport_pass(struct conn_leg *leg, const uint8_t *p, size_t n);

/* transport_handshake feeds what `leg` received to its TLS handshake and advances it.
 * Returns 0 when the handshake is complete, -EAGAIN when it waits for the peer,
 * -EINPROGRESS when a server handshake paused at the ClientHello (see tls_conn_handshake),
 * or -EPROTO with `*why` set (valid until the next call on the leg). */
int transport_handshake(struct conn_leg *leg, const char **why);

/* transport_shutdown queues close_notify once on an open TLS leg whose output is flushed; a
 * raw leg needs nothing (closing the socket ends it). Returns whether anything was queued. */
bool transport_shutdown(struct conn_leg *leg);

/* transport_is_done returns whether the peer of `leg` finished sending (FIN, or close_notify /
 * EOF under TLS) and the protocol has read every byte of it. */
bool transport_is_done(struct conn_leg *leg);

/* transport_has_output returns whether `leg` still holds bytes for its socket (pout, TLS
 * records not yet taken, tx, or a send in flight). */
bool transport_has_output(struct conn_leg *leg);

#endif
