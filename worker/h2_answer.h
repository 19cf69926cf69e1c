/* h2_answer.h - the head and body of mitmd's own HTTP/2 answers (502, 504, 431, 401...), one
 * format for the relay (worker/h2_stream.c h2_stream_answer) and the HTTP/1.1 bridge under it
 * (worker/h2_h1up.c): the fields worker/answer.h writes for HTTP/1.1, as nghttp2 header
 * fields. Pure formatting: no I/O, no allocation. */
#ifndef MITMD_WORKER_H2_ANSWER_H
#define MITMD_WORKER_H2_ANSWER_H

#include <stddef.h>

#include <nghttp2/nghttp2.h>

#include "worker/answer.h"

/* struct h2_answer is an answer's header block. `nva` points into the struct itself: use it
 * where h2_answer_init filled it (nghttp2_submit_response copies the fields). */
struct h2_answer {
    nghttp2_nv nva[5];
    size_t nv;
    char status[8];
    char clen[24];                     /* content-length's value */
    char ps[2 * ANSWER_WHY_MAX + 96];  /* proxy-status's value (RFC 9209) */
};

/* h2_answer_init fills `a` for an answer with `status` (sent as 502 outside 100..999) and
 * reason `why`: ":status", content-type FLOW_ANSWER_CTYPE, content-length, proxy-status
 * (answer_proxy_status; left out when it does not fit) and, for a 401, www-authenticate
 * (PROXYAUTH_REALM). The body, "<why>\n", goes to `body` (`cap` bytes, NUL-terminated,
 * truncated to `cap` - 1). Returns the body's length. */
size_t h2_answer_init(struct h2_answer *a, int status, const char *why, char *body, size_t cap);

#endif
