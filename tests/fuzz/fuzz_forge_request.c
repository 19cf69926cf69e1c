/* fuzz_forge_request.c - libFuzzer target: the master's handling of certificate requests
 * (forge_service_answer: decode, copy names, canonicalise, coalesce, certcache, forge, reply),
 * not only the decoder, with a real test CA and a real certcache. A worker is the untrusted
 * side of the socketpair (issue 10 item 1).
 *
 * Input: up to FORGE_SERVICE_BATCH records of { uint16_t len (little-endian); len bytes },
 * each one datagram as the master's recv would hand it over (cut at MSG_CERT_REQ_MAX).
 * Invariants checked (abort on violation), besides "no crash, no sanitizer report":
 * - every request gets exactly one reply, in request order, once the socket drains;
 * - every reply decodes; a request that decodes is answered under its own id;
 * - a reply with status 0 carries a parsable X.509 certificate; a request refused by the
 *   decoder is answered -EPROTO. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "certcache/certcache.h"
#include "master/ca.h"
#include "master/forge.h"
#include "master/forge_service.h"
#include "shared/log.h"
#include "shared/msgcodec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_state {
    char dir[64];
    struct ca *ca;
    struct forge *forge;
    struct certcache *cache;
    struct forge_service fs;
    struct forge_service_req *batch;
    int sv[2]; /* sv[0] master end, sv[1] worker end */
};

static struct fz_state *fz;

/* fz_setup creates the test CA (in a temp dir, removed once the CA is loaded: libFuzzer may
 * end the process without running atexit handlers), the forge, a 4 MiB certcache and the
 * socketpair, once per process. Aborts on failure: nothing can be fuzzed without. */
static struct fz_state *fz_setup(void)
{
    static struct fz_state st;
    const char *why = NULL;
    char err[256];

    if (fz != NULL)
        return fz;
    snprintf(st.dir, sizeof(st.dir), "/tmp/mitmd-fuzz-forge-XXXXXX");
    log_setup("fuzz", LOG_ERROR);
    if (mkdtemp(st.dir) == NULL || ca_load_or_create(st.dir, &st.ca, err, sizeof(err)) != 0)
        abort();
    snprintf(err, sizeof(err), "rm -rf '%s'", st.dir);
    if (system(err) != 0)
        fprintf(stderr, "fuzz_forge_request: cannot remove %s\n", st.dir);
    st.forge = forge_new(st.ca, &why);
    if (st.forge == NULL || certcache_create(4u << 20, &st.cache, &why) != 0 ||
        forge_service_init(&st.fs, st.forge, st.cache) != 0)
        abort();
    st.batch = calloc(FORGE_SERVICE_BATCH, sizeof(*st.batch));
    if (st.batch == NULL || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, st.sv) != 0)
        abort();
    fz = &st;
    return fz;
}

/* fz_check_reply validates one reply datagram against the request `r` it answers. */
static void fz_check_reply(const struct forge_service_req *r, const uint8_t *in, size_t n)
{
    struct msg_cert_reply_view v;
    struct msg_cert_req_view rv;
    struct msg_hdr h, rh;
    const char *why = NULL;
    bool req_ok;

    if (msgcodec_decode_hdr(in, n, &h, &why) != 0 || h.type != MSG_CERT_REPLY ||
        msgcodec_decode_cert_reply(in, n, &v, &why) != 0)
        abort(); /* the master sent something a worker cannot decode */
    req_ok = msgcodec_decode_hdr(r->dgram, r->len, &rh, &why) == 0 &&
             msgcodec_decode_cert_req(r->dgram, r->len, &rv, &why) == 0;
    if (req_ok && h.id != rh.id)
        abort(); /* answered under another request's id */
    if (!req_ok && v.status != -EPROTO)
        abort(); /* a malformed request must be refused as such */
    if (v.status == 0) {
        const uint8_t *p = v.der.p;
        X509 *x = d2i_X509(NULL, &p, (long)v.der.len);

        if (x == NULL || p != v.der.p + v.der.len)
            abort();
        X509_free(x);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_state *s = fz_setup();
    static uint8_t in[MSG_MAX_SIZE];
    size_t nreq = 0, got = 0, off = 0;
    uint64_t dropped0 = s->fs.replies_dropped;

    while (nreq < FORGE_SERVICE_BATCH && size - off >= 2) {
        size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8;
        struct forge_service_req *r = &s->batch[nreq];

        off += 2;
        if (len > size - off)
            len = size - off;
        /* the master's recv keeps at most sizeof(dgram) bytes and drops longer datagrams */
        r->len = len < sizeof(r->dgram) ? len : sizeof(r->dgram);
        memcpy(r->dgram, data + off, r->len);
        r->slot = 0;
        r->fd = s->sv[0];
        off += len;
        nreq++;
    }
    if (nreq == 0)
        return 0;
    forge_service_answer(&s->fs, s->batch, nreq);
    for (int turn = 0; turn < 1000 && got < nreq; turn++) {
        ssize_t n;

        while (got < nreq && (n = recv(s->sv[1], in, sizeof(in), MSG_DONTWAIT)) > 0)
            fz_check_reply(&s->batch[got++], in, (size_t)n);
        if (forge_service_flush(&s->fs, 0, s->sv[0]) < 0)
            abort();
    }
    if (got != nreq || s->fs.replies_dropped != dropped0 || forge_service_queued(&s->fs, 0) != 0)
        abort(); /* a reply was lost */
    return 0;
}
