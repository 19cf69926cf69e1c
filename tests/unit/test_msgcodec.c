/* test_msgcodec.c - master <-> worker message encoding and decoding, including truncated,
 * oversized and inconsistent datagrams. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shared/msgcodec.h"

static uint8_t dgram[MSG_MAX_SIZE + 16];

static void test_cert_req_roundtrip(void **state)
{
    (void)state;
    const char *names[] = {"www.example.test", "example.test", "10.0.0.1"};
    struct msg_cert_req_view v;
    struct msg_hdr h;
    const char *why = NULL;
    ssize_t n = msgcodec_encode_cert_req(dgram, sizeof(dgram), 42, names, 3, "Example Org");

    assert_true(n > 0);
    assert_int_equal(msgcodec_decode_hdr(dgram, (size_t)n, &h, &why), 0);
    assert_int_equal(h.type, MSG_CERT_REQ);
    assert_int_equal(h.id, 42);
    assert_int_equal(msgcodec_decode_cert_req(dgram, (size_t)n, &v, &why), 0);
    assert_int_equal(v.n_names, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(v.names[i].len, strlen(names[i]));
        assert_memory_equal(v.names[i].p, names[i], v.names[i].len);
    }
    assert_int_equal(v.org.len, strlen("Example Org"));
    assert_memory_equal(v.org.p, "Example Org", v.org.len);
}

static void test_cert_req_every_truncation_rejected(void **state)
{
    (void)state;
    const char *names[] = {"a.test", "b.test"};
    struct msg_cert_req_view v;
    struct msg_hdr h;
    const char *why = NULL;
    ssize_t n = msgcodec_encode_cert_req(dgram, sizeof(dgram), 1, names, 2, NULL);

    assert_true(n > 0);
    /* A datagram cut anywhere fails: its header length no longer matches, and with the
     * length field patched to match, the body walk runs out. */
    for (size_t cut = 0; cut < (size_t)n; cut++) {
        assert_int_equal(msgcodec_decode_cert_req(dgram, cut, &v, &why), -EPROTO);
        if (cut >= sizeof(h)) {
            uint8_t copy[256];
            uint32_t len = (uint32_t)cut;

            memcpy(copy, dgram, cut);
            memcpy(copy + offsetof(struct msg_hdr, len), &len, sizeof(len));
            assert_int_equal(msgcodec_decode_cert_req(copy, cut, &v, &why), -EPROTO);
            assert_non_null(why);
        }
    }
}

struct bad_field_case {
    const char *note;
    size_t offset; /* into the datagram */
    uint16_t value;
};

static void test_cert_req_bad_fields(void **state)
{
    (void)state;
    const char *names[] = {"a.test"};
    const size_t body = sizeof(struct msg_hdr);
    static const struct bad_field_case cases[] = {
        {"zero names", body + offsetof(struct msg_cert_req, n_names), 0},
        {"too many names", body + offsetof(struct msg_cert_req, n_names), MSG_MAX_NAMES + 1},
        {"more names than bytes", body + offsetof(struct msg_cert_req, n_names), 2},
        {"org too long", body + offsetof(struct msg_cert_req, org_len), MSG_MAX_ORG_LEN + 1},
        {"org longer than datagram", body + offsetof(struct msg_cert_req, org_len), 40},
        {"wrong version", offsetof(struct msg_hdr, version), MSG_VERSION + 1},
        {"unknown type", offsetof(struct msg_hdr, type), 99},
        {"type zero", offsetof(struct msg_hdr, type), 0},
        {"other type", offsetof(struct msg_hdr, type), MSG_STATS},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct msg_cert_req_view v;
        const char *why = NULL;
        ssize_t n = msgcodec_encode_cert_req(dgram, sizeof(dgram), 7, names, 1, NULL);

        assert_true(n > 0);
        memcpy(dgram + cases[i].offset, &cases[i].value, sizeof(cases[i].value));
        if (msgcodec_decode_cert_req(dgram, (size_t)n, &v, &why) != -EPROTO)
            fail_msg("case '%s' was accepted", cases[i].note);
        assert_non_null(why);
    }
}

/* raw_cert_req builds a CERT_REQ by hand (as a hostile worker would) with `n` names, each
 * `name_len` bytes of valid DNS text, bypassing the encoder's checks. Returns its length. */
static size_t raw_cert_req(uint8_t *out, size_t n, size_t name_len)
{
    struct msg_cert_req body = {.n_names = (uint16_t)n, .org_len = 0};
    size_t off = sizeof(struct msg_hdr);
    struct msg_hdr h = {.version = MSG_VERSION, .type = MSG_CERT_REQ, .id = 9};

    memcpy(out + off, &body, sizeof(body));
    off += sizeof(body);
    for (size_t i = 0; i < n; i++) {
        out[off++] = (uint8_t)name_len;
        for (size_t k = 0; k < name_len; k++)
            out[off++] = (uint8_t)(k % 32 == 31 ? '.' : 'a'); /* labels of 31 bytes */
    }
    h.len = (uint32_t)off;
    memcpy(out, &h, sizeof(h));
    return off;
}

/* A name is at most MSG_MAX_NAME_LEN bytes on the wire: the length byte can say 255, and
 * the master copies names into MSG_MAX_NAME_LEN + 1 byte buffers (issue 10 item 1). */
static void test_cert_req_name_length_bound(void **state)
{
    (void)state;
    static const struct {
        const char *note;
        size_t name_len;
        int want;
    } cases[] = {
        {"longest allowed name", MSG_MAX_NAME_LEN, 0},
        {"one byte over", MSG_MAX_NAME_LEN + 1, -EPROTO},
        {"length byte 255", 255, -EPROTO},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t n = 1; n <= MSG_MAX_NAMES; n *= 4) {
            struct msg_cert_req_view v;
            const char *why = NULL;
            size_t len = raw_cert_req(dgram, n, cases[i].name_len);

            if (msgcodec_decode_cert_req(dgram, len, &v, &why) != cases[i].want)
                fail_msg("case '%s' with %zu names: wrong result (%s)", cases[i].note, n,
                         why ? why : "accepted");
            if (cases[i].want == 0)
                for (size_t k = 0; k < v.n_names; k++)
                    assert_true(v.names[k].len <= MSG_MAX_NAME_LEN);
        }
    }
}

static void test_cert_req_encode_limits(void **state)
{
    (void)state;
    char longname[MSG_MAX_NAME_LEN + 2];
    const char *names[MSG_MAX_NAMES + 1];
    const char *one[] = {longname};
    const char *empty[] = {""};

    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(msgcodec_encode_cert_req(dgram, sizeof(dgram), 1, one, 1, NULL), -EINVAL);
    assert_int_equal(msgcodec_encode_cert_req(dgram, sizeof(dgram), 1, empty, 1, NULL), -EINVAL);
    assert_int_equal(msgcodec_encode_cert_req(dgram, sizeof(dgram), 1, names, 0, NULL), -EINVAL);
    for (size_t i = 0; i <= MSG_MAX_NAMES; i++)
        names[i] = "x.test";
    assert_int_equal(msgcodec_encode_cert_req(dgram, sizeof(dgram), 1, names, MSG_MAX_NAMES + 1,
                                              NULL),
                     -EINVAL);
    /* the largest legal request fits MSG_CERT_REQ_MAX */
    longname[MSG_MAX_NAME_LEN] = '\0';
    for (size_t i = 0; i < MSG_MAX_NAMES; i++)
        names[i] = longname;
    assert_true(msgcodec_encode_cert_req(dgram, MSG_CERT_REQ_MAX, 1, names, MSG_MAX_NAMES, NULL) >
                0);
    assert_int_equal(msgcodec_encode_cert_req(dgram, 64, 1, names, MSG_MAX_NAMES, NULL),
                     -EMSGSIZE);
}

static void test_cert_reply_roundtrip_and_errors(void **state)
{
    (void)state;
    uint8_t der[3000];
    struct msg_cert_reply_view v;
    const char *why = NULL;
    ssize_t n;

    for (size_t i = 0; i < sizeof(der); i++)
        der[i] = (uint8_t)(i * 7);
    n = msgcodec_encode_cert_reply(dgram, sizeof(dgram), 9, 0, NULL, der, sizeof(der), 12345);
    assert_true(n > 0);
    assert_int_equal(msgcodec_decode_cert_reply(dgram, (size_t)n, &v, &why), 0);
    assert_int_equal(v.status, 0);
    assert_int_equal(v.not_after, 12345);
    assert_int_equal(v.der.len, sizeof(der));
    assert_memory_equal(v.der.p, der, sizeof(der));

    n = msgcodec_encode_cert_reply(dgram, sizeof(dgram), 9, -EINVAL, "bad name", NULL, 0, 0);
    assert_true(n > 0);
    assert_int_equal(msgcodec_decode_cert_reply(dgram, (size_t)n, &v, &why), 0);
    assert_int_equal(v.status, -EINVAL);
    assert_int_equal(v.reason.len, strlen("bad name"));
    assert_int_equal(v.der.len, 0);

    /* a success without DER and an oversized DER are refused */
    assert_int_equal(msgcodec_encode_cert_reply(dgram, sizeof(dgram), 1, 0, NULL, der, 0, 0),
                     -EMSGSIZE);
    assert_int_equal(
        msgcodec_encode_cert_reply(dgram, sizeof(dgram), 1, 0, NULL, dgram, MSG_MAX_DER + 1, 0),
        -EMSGSIZE);
    /* status 0 with the DER length patched to 0 is inconsistent */
    n = msgcodec_encode_cert_reply(dgram, sizeof(dgram), 9, 0, NULL, der, 10, 0);
    uint32_t zero = 0;
    memcpy(dgram + sizeof(struct msg_hdr) + offsetof(struct msg_cert_reply, der_len), &zero, 4);
    assert_int_equal(msgcodec_decode_cert_reply(dgram, (size_t)n, &v, &why), -EPROTO);
}

static void test_hello_and_stats(void **state)
{
    (void)state;
    uint8_t ca[500], key[120], ticket[MSG_TICKET_KEY_LEN];
    struct msg_hello_view hv;
    struct msg_stats s = {{0}}, got;
    const char *why = NULL;
    ssize_t n;

    memset(ca, 0xca, sizeof(ca));
    memset(key, 0x4e, sizeof(key));
    for (size_t i = 0; i < sizeof(ticket); i++)
        ticket[i] = (uint8_t)i;
    n = msgcodec_encode_hello(dgram, sizeof(dgram), 3, ca, sizeof(ca), key, sizeof(key), ticket);
    assert_true(n > 0);
    assert_int_equal(msgcodec_decode_hello(dgram, (size_t)n, &hv, &why), 0);
    assert_int_equal(hv.worker_id, 3);
    assert_int_equal(hv.ca_der.len, sizeof(ca));
    assert_memory_equal(hv.key_der.p, key, sizeof(key));
    assert_int_equal(hv.ticket_key.len, sizeof(ticket));
    assert_memory_equal(hv.ticket_key.p, ticket, sizeof(ticket));
    /* a trailing byte is refused */
    dgram[n] = 0;
    uint32_t len = (uint32_t)n + 1;
    memcpy(dgram + offsetof(struct msg_hdr, len), &len, 4);
    assert_int_equal(msgcodec_decode_hello(dgram, (size_t)n + 1, &hv, &why), -EPROTO);

    s.v[MSG_STAT_FLOWS] = 77;
    s.v[MSG_STAT_CACHE_HITS] = 5;
    n = msgcodec_encode_stats(dgram, sizeof(dgram), &s);
    assert_true(n > 0);
    assert_int_equal(msgcodec_decode_stats(dgram, (size_t)n, &got, &why), 0);
    assert_memory_equal(&got, &s, sizeof(s));
    assert_int_equal(msgcodec_decode_stats(dgram, (size_t)n - 1, &got, &why), -EPROTO);
}

static void test_hdr_oversized(void **state)
{
    (void)state;
    struct msg_hdr h;
    const char *why = NULL;

    memset(dgram, 0, sizeof(dgram));
    assert_int_equal(msgcodec_decode_hdr(dgram, MSG_MAX_SIZE + 1, &h, &why), -EPROTO);
    assert_int_equal(msgcodec_decode_hdr(dgram, 3, &h, &why), -EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cert_req_roundtrip),
        cmocka_unit_test(test_cert_req_every_truncation_rejected),
        cmocka_unit_test(test_cert_req_bad_fields),
        cmocka_unit_test(test_cert_req_encode_limits),
        cmocka_unit_test(test_cert_req_name_length_bound),
        cmocka_unit_test(test_cert_reply_roundtrip_and_errors),
        cmocka_unit_test(test_hello_and_stats),
        cmocka_unit_test(test_hdr_oversized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
