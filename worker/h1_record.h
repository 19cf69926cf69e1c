/* h1_record.h - the flow record of an HTTP/1.1 exchange as the relay sees it: the request line
 * (with the URL rebuilt as scheme://authority/path) and fields, the response line and fields.
 * Called by worker/h1_relay.c only; writes into the relay's struct flow arena, never
 * allocates, never does I/O. */
#ifndef MITMD_WORKER_H1_RECORD_H
#define MITMD_WORKER_H1_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "shared/h1_parse.h"
#include "shared/target_parse.h"
#include "worker/h1_relay.h"

/* h1_record_default_port returns the scheme's port: 443 with TLS, else 80. */
uint16_t h1_record_default_port(bool tls);

/* h1_record_authority writes the "host[:port]" authority of `t` (brackets for IPv6, no port
 * when it is the scheme's default) into `out`, NUL-terminated (truncated to `cap`): the Host
 * of a rebuilt request head and the authority of a recorded URL alike. */
void h1_record_authority(const struct h1_target *t, char *out, size_t cap);

/* h1_record_request copies the request line and fields of `req` into r's flow; the URL is
 * scheme://authority/path, with the authority from the absolute target `t` (when
 * `target_ok`), else from the relay's Host rewrite, the Host field, or the upstream. */
void h1_record_request(struct h1_relay *r, const struct h1_request *req, const struct target *t,
                       bool target_ok);

/* h1_record_response copies the status line and fields of `resp` into r's flow. */
void h1_record_response(struct h1_relay *r, const struct h1_response *resp);

#endif
