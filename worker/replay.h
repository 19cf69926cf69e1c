/* replay.h - server replay in a worker (-S/--server-replay): answers requests that match a
 * recorded one from the index the master built (shared/replay_layout.h), mapped read-only,
 * with the per-key pop cursors in a shared writable page. Owns the mapping. Called by worker
 * start-up (replay_open) and the relays at the complete request head (replay_match). Never
 * allocates after replay_open; no I/O on the data path.
 *
 * Which response a match gets (mitmproxy's server_replay_reuse / server_replay_nopop): by
 * default each recorded response is used once, in recording order, across all workers (the
 * cursor is one atomic counter per key in the shared page: the n-th matching request of the
 * whole mitmd gets the n-th recorded response); once a key's responses are used up, its
 * requests are "extra". With reuse, every match gets the key's first response. */
#ifndef MITMD_WORKER_REPLAY_H
#define MITMD_WORKER_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/config.h"
#include "shared/h1_parse.h"
#include "shared/replay_key.h"
#include "shared/replay_layout.h"
#include "worker/flow.h"

enum replay_verdict {
    REPLAY_FORWARD = 0, /* not in the recording (or used up), server_replay_extra=forward */
    REPLAY_ANSWER,      /* answer with `entry` */
    REPLAY_KILL,        /* server_replay_extra=kill: close the client connection / stream */
    REPLAY_STATUS,      /* server_replay_extra=STATUS: answer that status */
};

/* struct replay_answer is what replay_match found. Pointers are into the mapping, valid
 * while the replay is open. */
struct replay_answer {
    const struct replay_entry *entry;
    const uint8_t *h1;                 /* HTTP/1.1 response bytes (entry->h1_len) */
    const uint8_t *body;               /* entry->body_len bytes */
    const struct replay_field *fields; /* entry->n_fields */
    int status;                        /* REPLAY_STATUS: the status to answer */
};

struct replay;

/* replay_open maps the index at `path` ("/dev/fd/N" from the master, or a file holding an
 * index) with the options of `cfg` (key options, reuse, extra). Returns 0 and the replay in
 * `*out`, or -errno with `*why` set (not an index, inconsistent offsets, mmap failed).
 * Start-up: may block. */
int replay_open(const char *path, const struct config *cfg, struct replay **out,
                const char **why);

/* replay_close unmaps; NULL is a no-op. */
void replay_close(struct replay *rp);

/* replay_needs_body returns whether a request's body is part of its key (not
 * server_replay_ignore_content): the relay must have the whole body before replay_match. */
bool replay_needs_body(const struct replay *rp);

/* replay_match looks up the request recorded in `f` (method, url) with its `body` (may be NULL
 * when empty; ignored with server_replay_ignore_content). On REPLAY_ANSWER the response is
 * recorded in `f` (status, reason, fields, body size, the captured body with save_bodies,
 * response timings) and `out` points at it. Counts hits and misses. Never allocates. */
enum replay_verdict replay_match(struct replay *rp, struct flow *f, const void *body,
                                 size_t body_len, struct replay_answer *out);

/* replay_miss counts a request that cannot be in the recording (its body is larger than any
 * recorded one) and returns server_replay_extra's verdict (`out->status` for REPLAY_STATUS). */
enum replay_verdict replay_miss(struct replay *rp, struct replay_answer *out);

/* replay_refresh_field returns the value of recorded response field `name` (`nlen` bytes)
 * with value `v` (`vlen`) refreshed as mitmproxy's server_replay_refresh does, `now` (Unix
 * seconds) minus the entry's recording time added to a Date, Expires or Last-Modified date
 * and to a Set-Cookie's Expires attribute, written into `out` (`cap` bytes). Returns its
 * length, or 0 when the field stays as recorded (refresh off, not such a field, not a date,
 * no room). */
size_t replay_refresh_field(const struct replay *rp, const struct replay_entry *e, int64_t now,
                            const char *name, size_t nlen, const char *v, size_t vlen,
                            char *out, size_t cap);

/* replay_h1_head writes the HTTP/1.1 head of answer `a` (status line to the empty line) with
 * its fields refreshed (replay_refresh_field) into `out` (`cap` bytes); the body then follows
 * from a->body. Returns the head's length, or 0 when the recorded bytes go as they are
 * (refresh off, nothing to refresh, or no room). */
size_t replay_h1_head(const struct replay *rp, const struct replay_answer *a, int64_t now,
                      uint8_t *out, size_t cap);

/* replay_str returns the bytes at offset `off` of the mapping (a field name or value, a
 * reason: the lengths are in the entry). */
const char *replay_str(const struct replay *rp, uint64_t off);

/* replay_h1_body says where the body of an HTTP/1.1 request (head of `head_len` bytes at
 * `head`, the front of a buffer holding `used` of `cap` bytes) stands for replay_match: 1
 * when it is complete in the buffer (`*body`, `*body_len`: the payload, chunked framing
 * removed (decoded into a scratch buffer of `rp`, valid until the next call); `*raw_len`:
 * the bytes it takes after the head), 0 when more must be read first, -1 when it cannot be
 * keyed (larger than the buffer, or malformed chunked framing). The same with
 * server_replay_ignore_content: the body is then left out of the key, but a replayed answer
 * still has to consume it. */
int replay_h1_body(struct replay *rp, const struct h1_request *req, const uint8_t *head,
                   size_t head_len, size_t used, size_t cap, const uint8_t **body,
                   size_t *body_len, size_t *raw_len);

/* REPLAY_BODY_MAX: the largest request body a recording can hold (save_bodies' maximum);
 * an HTTP/2 relay collects at most this much of a request body to key it. */
#define REPLAY_BODY_MAX (1u << 20)

/* struct replay_stats counts the matches of this worker. */
struct replay_stats {
    uint64_t hits, misses, used_up;
};

/* replay_stats returns this worker's counters. */
struct replay_stats replay_get_stats(const struct replay *rp);

#endif
