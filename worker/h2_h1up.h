/* h2_h1up.h - the bridge under an HTTP/2 relay whose upstream speaks HTTP/1.1 (reverse mode with
 * an http:// server, or an https:// server that did not choose h2): an nghttp2 server session
 * facing the relay's upstream side (over two memory buffers) and one HTTP/1.1 connection to the
 * server. Each stream becomes one HTTP/1.1 exchange; exchanges go one at a time (the relay's
 * upstream session is told SETTINGS_MAX_CONCURRENT_STREAMS 1, so nghttp2 queues the other
 * requests in the relay, bounded by H2_MAX_LIVE_STREAMS); a new server connection is dialled
 * by the caller when the next stream needs one. Called only by worker/h2_conn.c;
 * never does I/O; allocates once in h2_h1up_new (2 x --max-header-size + about 150 KiB). */
#ifndef MITMD_WORKER_H2_H1UP_H
#define MITMD_WORKER_H2_H1UP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/buf.h"

/* H2_H1UP_MID_SIZE: each of the two buffers between the relay and the bridge. */
#define H2_H1UP_MID_SIZE (32 * 1024)
/* H2_H1UP_WINDOW: the bridge's stream and connection receive window (request body staging). */
#define H2_H1UP_WINDOW 65535
/* H2_H1UP_REASON_MAX: a failure reason kept for 502 answers (NUL included). */
#define H2_H1UP_REASON_MAX 256

struct h2_h1up;

/* h2_h1up_note_fn is told, for the bridge stream `id` (the relay's upstream stream id), why
 * its response is the bridge's own 502/431 (`answered`) or why the stream is about to be reset
 * (`answered` false), so that the relay records the reason rather than a bare status or
 * "upstream reset stream". Runs inside h2_h1up_pump or h2_h1up_upstream_eof; must not call
 * back into the bridge. `why` is borrowed for the call. */
typedef void h2_h1up_note_fn(void *arg, int32_t id, bool answered, const char *why);

/* h2_h1up_head_fn is told, for the bridge stream `id`, the HTTP/1.x version (`minor_version`
 * 0 or 1) and reason phrase (`reason`, `reason_len` bytes, borrowed for the call) of the
 * server's final response head, before the head is serialised for the relay, so that the
 * relay records them as the server sent them. Same calling rules as h2_h1up_note_fn. */
typedef void h2_h1up_head_fn(void *arg, int32_t id, int minor_version, const char *reason,
                             size_t reason_len);

/* h2_h1up_new allocates a bridge whose HTTP/1.1 side reads `up_in` (plaintext from the server)
 * and appends to `up_out` (plaintext for it); both are borrowed for the bridge's life. Request
 * and response heads are limited to `max_header_size` bytes (0 = 65536). It queues the
 * server-side SETTINGS (MAX_CONCURRENT_STREAMS 1) for the relay. Returns NULL on allocation
 * failure. */
struct h2_h1up *h2_h1up_new(size_t max_header_size, struct buf *up_in, struct buf *up_out);

/* h2_h1up_free frees `b` and its session. NULL is a no-op. */
void h2_h1up_free(struct h2_h1up *b);

/* h2_h1up_set_on_note installs `fn` (NULL: none) with `arg`. */
void h2_h1up_set_on_note(struct h2_h1up *b, h2_h1up_note_fn *fn, void *arg);

/* h2_h1up_set_on_head installs `fn` (NULL: none) with `arg`. */
void h2_h1up_set_on_head(struct h2_h1up *b, h2_h1up_head_fn *fn, void *arg);

/* h2_h1up_stream returns the bridge stream (the relay's upstream stream id) being served or
 * waiting for a server connection, 0 if none. */
int32_t h2_h1up_stream(const struct h2_h1up *b);

/* h2_h1up_relay_in returns the buffer the relay reads as its upstream input (what the bridge's
 * session sends); h2_h1up_relay_out the one the relay writes its upstream output to. Both live
 * as long as `b`. */
struct buf *h2_h1up_relay_in(struct h2_h1up *b);
struct buf *h2_h1up_relay_out(struct h2_h1up *b);

/* h2_h1up_pump feeds what the relay wrote to the session, writes request heads and bodies to
 * up_out as room allows, parses the server's responses from up_in and serialises them for the
 * relay. Work per call is bounded. Returns whether anything moved. */
bool h2_h1up_pump(struct h2_h1up *b);

/* h2_h1up_upstream_eof records that the server's side ended (`why` NULL: it closed cleanly;
 * else the failure, copied). A response delimited by the close ends there; a stream waiting
 * for its response head is answered 502 with the reason; a response cut short is reset
 * (INTERNAL_ERROR). The next stream then wants a new connection (h2_h1up_set_redial), or,
 * without redial, GOAWAY: the relay takes no new stream (its client gets GOAWAY and retries on
 * a new connection). Call once all of up_in was read (transport_is_done), or while a response
 * head is incomplete (h2_h1up_is_reading_head). */
void h2_h1up_upstream_eof(struct h2_h1up *b, const char *why);

/* h2_h1up_is_reading_head returns whether the bridge waits for the rest of a response head in
 * up_in (which may then grow past its watermark, up to the head limit). */
bool h2_h1up_is_reading_head(const struct h2_h1up *b);

/* h2_h1up_set_redial says whether the caller dials a new server connection when the current
 * one ends (closed by the server, Connection: close, an exchange cut short): the next stream
 * then waits until h2_h1up_upstream_ready or h2_h1up_upstream_failed, instead of the relay
 * being refused new streams (GOAWAY). Off at h2_h1up_new. */
void h2_h1up_set_redial(struct h2_h1up *b, bool on);

/* h2_h1up_wants_dial returns whether a stream waits for a new server connection: the caller
 * drops the old one (up_in and up_out emptied) and dials. */
bool h2_h1up_wants_dial(const struct h2_h1up *b);

/* h2_h1up_upstream_ready tells the bridge that the new server connection (same up_in and
 * up_out) is connected, and for https:// verified: the waiting stream goes on it. */
void h2_h1up_upstream_ready(struct h2_h1up *b);

/* h2_h1up_upstream_failed tells the bridge that the dial failed with `why` (copied): the
 * waiting stream is answered 502 with it, then GOAWAY (no stream is taken any more). */
void h2_h1up_upstream_failed(struct h2_h1up *b, const char *why);

/* h2_h1up_redials returns the number of server connections dialled after the first. */
uint64_t h2_h1up_redials(const struct h2_h1up *b);

/* h2_h1up_exchanges returns the number of HTTP/1.1 exchanges begun on the server connection. */
uint64_t h2_h1up_exchanges(const struct h2_h1up *b);

#endif
