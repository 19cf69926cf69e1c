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
    size_t bad_lines;  /* not JSON, or not a flow record */
    bool mitmproxy;    /* the file was mitmproxy's flow format: `lines` counts flows */
};

/* creplay_load_request writes the HTTP/1.1 request of one record line into `out` (appended):
 * "METHOD URL HTTP/1.1", the recorded fields but those of the connection and the framing, a
 * Host field from the URL when none was recorded (HTTP/2's :authority), Content-Length when
 * there is a body, "connection: close", the body. Returns 0, or -EINVAL with `*why` (static)
 * for a record that cannot be replayed (`*cut` set when only its body is missing), -ENOMEM. */
struct har_buf;
int creplay_load_request(const char *line, size_t len, struct har_buf *out, const char **why,
                         bool *cut);

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
 * `watch`. Returns 0 or -errno (logged). */
int creplay_load_start(struct supervise *s, const struct config *cfg, struct creplay_watch *watch);

/* creplay_watch_left returns how many requests have not been replayed yet. */
uint32_t creplay_watch_left(const struct creplay_watch *w);

/* creplay_watch_close unmaps the list (a watch that is not watching is left as it is). */
void creplay_watch_close(struct creplay_watch *w);

#endif
