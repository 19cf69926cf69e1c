/* replay_key.h - the match key of a request for server replay (mitmproxy's
 * server_replay_* semantics): method, scheme, host, port, path, query parameters (minus the
 * ignored ones, in order), the SHA-256 of the body (or, with ignore_payload_params, of the
 * fields of a urlencoded or multipart form body minus the ignored ones, as mitmproxy's
 * urlencoded_form / multipart_form parse them) and the values of the use_headers fields,
 * each left out as the options say. The
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
    const char *const *use_headers;           /* server_replay_use_headers */
    int n_use_headers;
    const char *const *ignore_payload_params; /* server_replay_ignore_payload_params */
    int n_ignore_payload_params;
};

/* struct replay_key_hdrs gives replay_key_build the request's header fields: `get` returns
 * the value of the first field named `name` (compared case-insensitively) in *v, *len, or
 * false when there is none. Needed for use_headers and (Content-Type) ignore_payload_params;
 * NULL means no fields. */
struct replay_key_hdrs {
    bool (*get)(const void *ctx, const char *name, const char **v, size_t *len);
    const void *ctx;
};

/* replay_key_opts_from takes the server_replay_ignore_* options of `cfg` (borrowed). */
void replay_key_opts_from(struct replay_key_opts *o, const struct config *cfg);

/* replay_key_build writes the key of a request (`method`, absolute `url`, `body` of
 * `body_len` bytes (NULL when empty), header fields `hdrs` (may be NULL)) into `out`.
 * Returns its length, or -EINVAL (`*why` set) when the URL is not absolute http(s), or
 * -ENOSPC when it exceeds `cap`. */
ssize_t replay_key_build(const struct replay_key_opts *o, const char *method, size_t method_len,
                         const char *url, size_t url_len, const void *body, size_t body_len,
                         const struct replay_key_hdrs *hdrs, char *out, size_t cap,
                         const char **why);

#endif
