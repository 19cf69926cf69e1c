/* creplay_load.h - client replay's start in the master (mitmdump's -C / client_replay): reads
 * the recording (JSON Lines from -w, with save_bodies for request bodies, or mitmproxy's flow
 * file) once, turns each recorded request into HTTP/1.1 bytes in absolute form, lays them out
 * in a memfd (shared/creplay_layout.h) and passes it to the workers as --client-replay
 * /dev/fd/N; worker 0 sends them (worker/creplay.h). The master maps the progress page to stop
 * once every request has been replayed, as mitmdump does without keepserving. Start-up only
 * allocates and blocks while it reads the file. */
#ifndef MITMD_MASTER_CREPLAY_LOAD_H
#define MITMD_MASTER_CREPLAY_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "master/supervise.h"
#include "shared/config.h"
#include "shared/creplay_layout.h"

/* struct creplay_load_stats says what a recording held. */
struct creplay_load_stats {
    size_t lines, requests;
    size_t not_http;   /* a URL that is not http:// or https:// (ws://, a bad one) */
    size_t cut_bodies; /* a request body cut by save_bodies, or not recorded at all */
    size_t truncated;  /* a record that says "truncated": some of its fields were left out */
    size_t bad_lines;  /* not JSON, not a flow record, or not a request to replay (CONNECT) */
    bool mitmproxy;    /* the file was mitmproxy's flow format: `lines` counts flows */
};

/* enum creplay_skip says why a record is not replayed (CREPLAY_SKIP_NONE: it is). */
enum creplay_skip {
    CREPLAY_SKIP_NONE = 0,
    CREPLAY_SKIP_BAD,       /* not a flow record, or a request mitmd does not replay */
    CREPLAY_SKIP_NOT_HTTP,  /* its URL is not http:// or https:// */
    CREPLAY_SKIP_CUT_BODY,  /* its body was not recorded whole */
    CREPLAY_SKIP_TRUNCATED, /* the record lost fields (flow arena full when recorded) */
};

struct har_buf;

/* creplay_load_request writes the HTTP/1.1 request of one record line into `out` (appended):
 * "METHOD URL HTTP/1.1" (the URL's authority the CONNECT target's when the record names one),
 * the recorded fields but those of the connection and the framing and HTTP/2's pseudo-fields
 * (several Cookie fields joined with "; " as RFC 9113 §8.2.3 says), a Host field from the
 * URL when none was recorded, Content-Length when there is a body and for POST, PUT and
 * PATCH (0 then), "connection: close", the body. Returns 0, or -EINVAL with `*why` (static)
 * and `*skip` for a record that cannot be replayed, or -ENOMEM. */
int creplay_load_request(const char *line, size_t len, struct har_buf *out, const char **why,
                         enum creplay_skip *skip);

/* creplay_load_build reads `path` and returns a memfd holding the request list (the caller
 * owns it), or -errno with a one-line reason in `err`. Fills `st`. */
int creplay_load_build(const char *path, struct creplay_load_stats *st, char *err, size_t errlen);

/* struct creplay_watch is the master's read-only view of the list's progress. */
struct creplay_watch {
    void *map; /* NULL: not watching */
    size_t size;
    uint32_t n;
    const struct creplay_progress *progress;
};

/* creplay_load_start does nothing without cfg->client_replay; otherwise builds the list, logs
 * what it holds and passes it to the workers. Unless cfg->keepserving it also maps it into
 * `watch`. A master that took over in a binary upgrade (`took_over`) passes an empty list
 * instead and watches nothing: the previous master's worker 0 sent the requests, and they
 * are not sent twice. Returns 0 or -errno (logged). */
int creplay_load_start(struct supervise *s, const struct config *cfg, bool took_over,
                       struct creplay_watch *watch);

/* creplay_watch_left returns how many requests have not been replayed yet. */
uint32_t creplay_watch_left(const struct creplay_watch *w);

/* creplay_watch_close unmaps the list (a watch that is not watching is left as it is). */
void creplay_watch_close(struct creplay_watch *w);

#endif
