/* fuzz_msgcodec.c - libFuzzer target: every master <-> worker decoder on arbitrary datagrams
 * (the master treats worker messages as untrusted input). A decoded CERT_REQ must respect
 * every msg.h limit (abort otherwise), not only stay in bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/msgcodec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct msg_hdr h;
    struct msg_cert_req_view req;
    struct msg_cert_reply_view rep;
    struct msg_hello_view hello;
    struct msg_stats st;
    const char *why = NULL;
    size_t sum = 0;

    if (msgcodec_decode_hdr(data, size, &h, &why) != 0)
        return 0;
    if (msgcodec_decode_cert_req(data, size, &req, &why) == 0) {
        /* the limits receivers size their buffers by (issue 10 item 1) */
        if (req.n_names == 0 || req.n_names > MSG_MAX_NAMES || req.org.len > MSG_MAX_ORG_LEN)
            abort();
        for (size_t i = 0; i < req.n_names; i++) {
            if (req.names[i].len == 0 || req.names[i].len > MSG_MAX_NAME_LEN)
                abort();
            sum += req.names[i].len + req.names[i].p[0];
        }
    }
    if (msgcodec_decode_cert_reply(data, size, &rep, &why) == 0 && rep.der.len > 0)
        sum += rep.der.p[rep.der.len - 1];
    if (msgcodec_decode_hello(data, size, &hello, &why) == 0)
        sum += hello.ca_der.p[hello.ca_der.len - 1] + hello.key_der.p[0];
    if (msgcodec_decode_ready(data, size, &why) == 0 && size != sizeof(struct msg_hdr))
        abort();
    if (msgcodec_decode_stats(data, size, &st, &why) == 0)
        sum += st.v[0];
    sink = sum; /* keep the reads */
    return 0;
}
