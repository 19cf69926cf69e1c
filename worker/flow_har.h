/* flow_har.h - a flow as a HAR 1.2 entry (--set hardump) and the body fields of its -w record
 * (--set save_bodies). Owns these two text forms; the JSON Lines record itself is flow.c's.
 * Called by worker/flow_out.c. Writes into a struct har_buf (heap, grows); never does I/O. */
#ifndef MITMD_WORKER_FLOW_HAR_H
#define MITMD_WORKER_FLOW_HAR_H

#include <stdbool.h>

#include "shared/har.h"
#include "worker/flow.h"

/* flow_har_entry appends ",\n" and `f` as one HAR 1.2 entry object (no trailing newline):
 * startedDateTime, time, request (with queryString, postData when a body was captured),
 * response (content with the captured body: text when it is UTF-8 text, else base64 with
 * "encoding": "base64"), cache, timings, serverIPAddress, and mitmd's "_error" and
 * "_truncated" (a body cut at save_bodies). A flow without a response gets status 0. */
void flow_har_entry(struct har_buf *b, const struct flow *f);

/* flow_har_has_bodies returns whether `f` carries a captured body (flow_body.h). */
bool flow_har_has_bodies(const struct flow *f);

/* flow_har_body_fields appends the -w record's body fields, each `,"request_body":{"size":N,
 * "truncated":B,"base64":"..."}` (and response_body), for the bodies captured. */
void flow_har_body_fields(struct har_buf *b, const struct flow *f);

#endif
