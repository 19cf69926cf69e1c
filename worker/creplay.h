/* creplay.h - client replay in a worker (mitmdump's -C): worker 0 maps the request list the
 * master built (shared/creplay_layout.h) and sends its requests one at a time, each as a new
 * client connection of its own - one end of a socketpair handed to conn_accept in regular
 * mode (upstream mode when the first --mode is upstream), the other end written and read
 * here - so a replayed request takes the path of any request (upstream TLS and its checks,
 * rules, -S, flow lines, -w) and its flow says [replay]. The answer is read and dropped; when
 * the connection closes the next request goes. Progress is in the list's shared page: a
 * restarted worker 0 goes on from there, and the master stops once all are done. */
#ifndef MITMD_WORKER_CREPLAY_H
#define MITMD_WORKER_CREPLAY_H

struct worker;
struct creplay;

/* creplay_open maps the list at `path` ("/dev/fd/N" from the master) for worker `w` and checks
 * it (worker 0 only: other workers get NULL and 0). Returns 0 with *out set (NULL when this
 * worker does not replay), or -errno with *why (static) when the list cannot be used: a
 * start-up failure. Start-up only (allocates); sends nothing yet. */
int creplay_open(struct worker *w, const char *path, struct creplay **out, const char **why);

/* creplay_start begins sending, from the first request not yet answered, once the worker
 * serves (its ring, pool and TLS contexts are ready). NULL or an empty list: nothing. */
void creplay_start(struct creplay *cr);

/* creplay_stop sends nothing more (the worker is stopping); the exchange in flight ends with
 * its connection. NULL is a no-op. */
void creplay_stop(struct creplay *cr);

/* creplay_close unmaps and frees; NULL is a no-op. Call after ring_close: ops may still be
 * armed on the ring until then. */
void creplay_close(struct creplay *cr);

#endif
