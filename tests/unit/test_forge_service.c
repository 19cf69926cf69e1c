/* test_forge_service.c - the master's answer to certificate requests, with a real CA, real
 * forging and a real certcache: coalescing (N requests for one name set -> one forge),
 * answers from the cache, and error replies for malformed requests. Requests arrive over a
 * real SOCK_SEQPACKET socketpair, as from a worker. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certcache/certcache.h"
#include "master/ca.h"
#include "master/forge.h"
#include "master/forge_service.h"
#include "shared/msgcodec.h"

struct fixture {
    char dir[64];
    struct ca *ca;
    struct forge *forge;
    struct certcache *cache;
    struct forge_service fs;
    struct forge_service_req *batch;
    int sv[2]; /* sv[0] = master end, sv[1] = worker end */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[256];
    const char *why = NULL;

    snprintf(f->dir, sizeof(f->dir), "/tmp/mitmd-test-fs-XXXXXX");
    if (f == NULL || mkdtemp(f->dir) == NULL)
        return -1;
    if (ca_load_or_create(f->dir, &f->ca, err, sizeof(err)) != 0)
        return -1;
    f->forge = forge_new(f->ca, &why);
    if (f->forge == NULL || certcache_create(4 << 20, &f->cache, &why) != 0)
        return -1;
    if (forge_service_init(&f->fs, f->forge, f->cache) != 0)
        return -1;
    f->batch = calloc(FORGE_SERVICE_BATCH, sizeof(*f->batch));
    if (f->batch == NULL || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, f->sv) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    close(f->sv[0]);
    close(f->sv[1]);
    free(f->batch);
    forge_service_dispose(&f->fs);
    certcache_close(f->cache);
    forge_free(f->forge);
    ca_free(f->ca);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* send_req sends a CERT_REQ from the worker end and moves it into the batch at `i`. */
static void send_req(struct fixture *f, size_t i, uint64_t id, const char *const *names, size_t n)
{
    uint8_t out[MSG_CERT_REQ_MAX];
    ssize_t len = msgcodec_encode_cert_req(out, sizeof(out), id, names, n, NULL);

    assert_true(len > 0);
    assert_int_equal(send(f->sv[1], out, (size_t)len, 0), len);
    f->batch[i].slot = 0;
    f->batch[i].fd = f->sv[0];
    f->batch[i].len = (size_t)recv(f->sv[0], f->batch[i].dgram, sizeof(f->batch[i].dgram), 0);
    assert_int_equal(f->batch[i].len, len);
}

/* recv_reply reads one CERT_REPLY at the worker end and returns its status; with a leaf it
 * checks that the certificate names `must_have` among its SANs. */
static int recv_reply(struct fixture *f, uint64_t want_id, const char *must_have)
{
    static uint8_t in[MSG_MAX_SIZE];
    struct msg_cert_reply_view v;
    struct msg_hdr h;
    const char *why = NULL;
    ssize_t n = recv(f->sv[1], in, sizeof(in), MSG_DONTWAIT);

    assert_true(n > 0);
    assert_int_equal(msgcodec_decode_hdr(in, (size_t)n, &h, &why), 0);
    assert_int_equal(h.id, want_id);
    assert_int_equal(msgcodec_decode_cert_reply(in, (size_t)n, &v, &why), 0);
    if (v.status == 0 && must_have != NULL) {
        const uint8_t *p = v.der.p;
        X509 *x = d2i_X509(NULL, &p, (long)v.der.len);

        assert_non_null(x);
        assert_int_equal(X509_check_host(x, must_have, strlen(must_have), 0, NULL), 1);
        X509_free(x);
    }
    return v.status;
}

static void test_coalesces_one_name_set(void **state)
{
    struct fixture *f = *state;
    const char *a[] = {"www.coalesce.test", "coalesce.test"};
    const char *b[] = {"COALESCE.test", "www.coalesce.test"}; /* same set, other order/case */
    const size_t n = 8;

    for (size_t i = 0; i < n; i++)
        send_req(f, i, 100 + i, i % 2 ? b : a, 2);
    forge_service_answer(&f->fs, f->batch, n);
    assert_int_equal(f->fs.forges, 1);
    assert_int_equal(f->fs.coalesced, n - 1);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(recv_reply(f, 100 + i, "www.coalesce.test"), 0);

    /* the next batch is answered from the certcache, without forging */
    send_req(f, 0, 200, a, 2);
    forge_service_answer(&f->fs, f->batch, 1);
    assert_int_equal(f->fs.forges, 1);
    assert_int_equal(f->fs.cache_answers, 1);
    assert_int_equal(recv_reply(f, 200, "coalesce.test"), 0);
}

static void test_distinct_sets_forge_each(void **state)
{
    struct fixture *f = *state;
    char names[5][32];
    const char *one[1];

    for (size_t i = 0; i < 5; i++) {
        snprintf(names[i], sizeof(names[i]), "h%zu.distinct.test", i);
        one[0] = names[i];
        send_req(f, i, i, one, 1);
    }
    forge_service_answer(&f->fs, f->batch, 5);
    assert_int_equal(f->fs.forges, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(recv_reply(f, i, names[i]), 0);
}

static void test_bad_requests_get_error_replies(void **state)
{
    struct fixture *f = *state;
    const char *bad[] = {"bad name with spaces"};
    const char *good[] = {"fine.test"};

    send_req(f, 0, 1, bad, 1);
    send_req(f, 1, 2, good, 1);
    /* a truncated datagram in the same batch */
    send_req(f, 2, 3, good, 1);
    f->batch[2].len -= 2;
    forge_service_answer(&f->fs, f->batch, 3);
    assert_true(recv_reply(f, 1, NULL) < 0);
    assert_int_equal(recv_reply(f, 2, "fine.test"), 0);
    assert_int_equal(recv_reply(f, 3, NULL), -EPROTO);
    assert_int_equal(f->fs.rejected, 2);
    assert_int_equal(f->fs.forges, 1);
}

/* put_raw moves a hand-made datagram (as a hostile worker sends it) into the batch at `i`. */
static void put_raw(struct fixture *f, size_t i, const uint8_t *dgram, size_t len)
{
    assert_true(len <= sizeof(f->batch[i].dgram));
    memcpy(f->batch[i].dgram, dgram, len);
    f->batch[i].len = len;
    f->batch[i].slot = 0;
    f->batch[i].fd = f->sv[0];
}

/* hostile_req builds a CERT_REQ with `n` names whose length bytes say `name_len`, bypassing
 * the encoder. Returns its length. */
static size_t hostile_req(uint8_t *out, uint64_t id, size_t n, size_t name_len)
{
    struct msg_cert_req body = {.n_names = (uint16_t)n};
    struct msg_hdr h = {.version = MSG_VERSION, .type = MSG_CERT_REQ, .id = id};
    size_t off = sizeof(h);

    memcpy(out + off, &body, sizeof(body));
    off += sizeof(body);
    for (size_t i = 0; i < n; i++) {
        out[off++] = (uint8_t)name_len;
        for (size_t k = 0; k < name_len; k++)
            out[off++] = (uint8_t)(k % 32 == 31 ? '.' : 'a' + (char)(i % 26));
    }
    h.len = (uint32_t)off;
    memcpy(out, &h, sizeof(h));
    return off;
}

/* Issue 10 item 1: names longer than MSG_MAX_NAME_LEN (the length byte says up to 255) used
 * to be copied into MSG_MAX_NAME_LEN + 1 byte stack buffers. They must be refused as
 * malformed (-EPROTO) before any copy, and the next request still served. */
static void test_overlong_names_refused(void **state)
{
    struct fixture *f = *state;
    static uint8_t raw[MSG_CERT_REQ_MAX + 2 * MSG_MAX_NAMES];
    static const struct {
        const char *note;
        size_t n, name_len;
    } cases[] = {
        {"one name of 254 bytes", 1, MSG_MAX_NAME_LEN + 1},
        {"one name of 255 bytes", 1, 255},
        {"64 names of 255 bytes", MSG_MAX_NAMES, 255},
    };
    const char *good[] = {"after.overlong.test"};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = hostile_req(raw, 50 + i, cases[i].n, cases[i].name_len);

        if (len > sizeof(f->batch[0].dgram)) {
            len = sizeof(f->batch[0].dgram); /* the master's recv truncates it the same way */
        }
        put_raw(f, 0, raw, len);
        send_req(f, 1, 60 + i, good, 1);
        forge_service_answer(&f->fs, f->batch, 2);
        if (recv_reply(f, 50 + i, NULL) != -EPROTO)
            fail_msg("case '%s' was not refused as malformed", cases[i].note);
        assert_int_equal(recv_reply(f, 60 + i, "after.overlong.test"), 0);
    }
    assert_int_equal(f->fs.rejected, 3);
}

/* Issue 10 item 3: a reply the worker's socket cannot take (EAGAIN: the worker is not
 * reading) is queued and sent once the socket drains, in request order; none is lost. */
static void test_full_socket_replies_queued(void **state)
{
    struct fixture *f = *state;
    const char *a[] = {"queued.test"};
    const size_t n = 40; /* far more than a SEQPACKET receive queue holds (max_dgram_qlen) */
    size_t got = 0;
    int left, sndbuf = 4096;

    /* a small send buffer: a few replies fill the socket, as a busy worker's backlog does */
    assert_int_equal(setsockopt(f->sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);

    for (size_t round = 0; round < n / 20; round++) {
        for (size_t i = 0; i < 20; i++)
            send_req(f, i, 1000 + round * 20 + i, a, 1);
        forge_service_answer(&f->fs, f->batch, 20);
    }
    assert_true(forge_service_queued(&f->fs, 0) > 0); /* the socket did fill up */
    assert_int_equal(f->fs.replies_dropped, 0);
    /* the worker reads what is there; the master flushes when writable; repeat */
    for (int turn = 0; turn < 100 && got < n; turn++) {
        while (got < n) {
            static uint8_t in[MSG_MAX_SIZE];
            struct msg_hdr h;
            const char *why = NULL;
            ssize_t r = recv(f->sv[1], in, sizeof(in), MSG_DONTWAIT);

            if (r <= 0)
                break;
            assert_int_equal(msgcodec_decode_hdr(in, (size_t)r, &h, &why), 0);
            assert_int_equal(h.id, 1000 + got); /* in order */
            got++;
        }
        left = forge_service_flush(&f->fs, 0, f->sv[0]);
        assert_true(left >= 0);
    }
    assert_int_equal(got, n);
    assert_int_equal(forge_service_queued(&f->fs, 0), 0);
    assert_int_equal(f->fs.replies_dropped, 0);
}

/* The queue is bounded: beyond FORGE_SERVICE_QUEUE_MAX replies are counted as dropped, the
 * worker is reported backlogged, and forgetting a dead worker frees its queue. */
static void test_reply_queue_bounded(void **state)
{
    struct fixture *f = *state;
    const char *a[] = {"bounded.test"};
    size_t sent = 0;
    int sndbuf = 4096;

    assert_int_equal(setsockopt(f->sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);

    while (sent < FORGE_SERVICE_QUEUE_MAX + 64) {
        for (size_t i = 0; i < 16; i++)
            send_req(f, i, sent + i, a, 1);
        forge_service_answer(&f->fs, f->batch, 16);
        sent += 16;
    }
    assert_true(forge_service_is_backlogged(&f->fs, 0));
    assert_int_equal(forge_service_queued(&f->fs, 0), FORGE_SERVICE_QUEUE_MAX);
    assert_true(f->fs.replies_dropped > 0);
    forge_service_forget(&f->fs, 0);
    assert_int_equal(forge_service_queued(&f->fs, 0), 0);
    assert_false(forge_service_is_backlogged(&f->fs, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_coalesces_one_name_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_distinct_sets_forge_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests_get_error_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlong_names_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_socket_replies_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_queue_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
