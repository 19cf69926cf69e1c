/* replay_h2.h - server replay on an HTTP/2 stream: the hook h2_forward_request calls with a
 * complete request head (worker/replay.h decides; this submits the recorded response on the
 * client session). Called by worker/h2_stream.c only; never allocates. */
#ifndef MITMD_WORKER_REPLAY_H2_H
#define MITMD_WORKER_REPLAY_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2_relay;
struct h2_stream;

/* replay_h2_request looks the request of `st` (its flow already filled) up in the server
 * replay recording and answers, kills or refuses it as replay_match says. A request with a
 * body (`end_stream` false) is held (st->replay_wait) and keyed once its body is complete
 * (replay_h2_body_end), unless server_replay_ignore_content; one whose content-length exceeds
 * REPLAY_BODY_MAX is not in any recording (server_replay_extra). Returns true when the stream was handled here, false to forward it. */
bool replay_h2_request(struct h2_relay *r, struct h2_stream *st, bool end_stream);

/* replay_h2_body_end keys a request whose body the relay held whole (st->replay_wait, set
 * by replay_h2_request for a request with a body: `body`, `len` bytes, as the DATA frames
 * carried it) and answers, kills or refuses it as replay_match says. Returns true when the
 * stream was handled here (the relay then frees the held copy), false to forward it. */
bool replay_h2_body_end(struct h2_relay *r, struct h2_stream *st, const uint8_t *body,
                        size_t len);

/* replay_h2_too_large is called when a held request body grows past REPLAY_BODY_MAX: no
 * recording holds it, so it gets server_replay_extra (counted as a miss). Returns true when
 * the stream was handled (killed or answered), false to forward it (the relay sends what it
 * held and streams the rest). Clears st->replay_wait. */
bool replay_h2_too_large(struct h2_relay *r, struct h2_stream *st);

/* replay_h2_body_limit returns how much of direction `d`'s body (enum h2_dir) the relay may
 * hold for stream `st`: --modify-body's body_size_limit, or at least REPLAY_BODY_MAX for a
 * request body that server replay keys. */
size_t replay_h2_body_limit(const struct h2_relay *r, const struct h2_stream *st, int d);

#endif
