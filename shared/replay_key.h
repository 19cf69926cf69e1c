/* replay_key.h - the match key of a request for server replay (mitmproxy's
 * server_replay_* semantics): method, scheme, host, port, path, query parameters (minus the
 * ignored ones, in order) and the SHA-256 of the body, each left out as the options say. The
 * master keys the recording with it (master/replay_load.c), workers key live requests
 * (worker/replay.c). Pure: no allocation, no I/O. */
#ifndef MITMD_SHARED_REPLAY_KEY_H
#define MITMD_SHARED_REPLAY_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/config.h"

#define REPLAY_KEY_MAX 8192 /* longer keys (huge URLs) are not replayed */

struct replay_key_opts {
    bool ignore_content, ignore_host, ignore_port;
    const char *const *ignore_params;
    int n_ignore_params;
};

/* replay_key_opts_from takes the server_replay_ignore_* options of `cfg` (borrowed). */
void replay_key_opts_from(struct replay_key_opts *o, const struct config *cfg);

/* replay_key_build writes the key of a request (`method`, absolute `url`, `body` of
 * `body_len` bytes; body may be NULL when empty) into `out`. Returns its length, or -EINVAL
 * (`*why` set) when the URL is not absolute http(s), or -ENOSPC when it exceeds `cap`. */
ssize_t replay_key_build(const struct replay_key_opts *o, const char *method, size_t method_len,
                         const char *url, size_t url_len, const void *body, size_t body_len,
                         char *out, size_t cap, const char **why);

#endif
