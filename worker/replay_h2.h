/* replay_h2.h - server replay on an HTTP/2 stream: the hook h2_forward_request calls with a
 * complete request head (worker/replay.h decides; this submits the recorded response on the
 * client session). Called by worker/h2_stream.c only; never allocates. */
#ifndef MITMD_WORKER_REPLAY_H2_H
#define MITMD_WORKER_REPLAY_H2_H

#include <stdbool.h>

struct h2_relay;
struct h2_stream;

/* replay_h2_request looks the request of `st` (its flow already filled) up in the server
 * replay recording and answers, kills or refuses it as replay_match says. A request with a
 * body (`end_stream` false) is only keyed with server_replay_ignore_content; otherwise it is
 * forwarded. Returns true when the stream was handled here, false to forward it. */
bool replay_h2_request(struct h2_relay *r, struct h2_stream *st, bool end_stream);

#endif
