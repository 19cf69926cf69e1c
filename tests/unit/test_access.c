/* test_access.c - worker/access: which client addresses block_global and block_private refuse.
 * The expected classes are Python 3.13's ipaddress is_loopback / is_private / is_global, which
 * mitmproxy's block addon uses (IPv4-mapped IPv6 addresses as their IPv4 address). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/un.h>

#include <cmocka.h>

#include "shared/config.h"
#include "worker/access.h"

#define L ACCESS_CLASS_LOOPBACK
#define P ACCESS_CLASS_PRIVATE
#define G ACCESS_CLASS_GLOBAL
#define N ACCESS_CLASS_NEITHER

static const struct {
    const char *addr;
    enum access_class want;
    const char *note;
} cases[] = {
    {"127.0.0.1", L, "loopback"},
    {"127.255.255.254", L, "all of 127/8"},
    {"::1", L, "IPv6 loopback"},
    {"::ffff:127.0.0.1", L, "IPv4-mapped loopback"},
    {"10.1.2.3", P, "RFC 1918"},
    {"172.16.0.1", P, "RFC 1918 /12 start"},
    {"172.31.255.255", P, "RFC 1918 /12 end"},
    {"172.32.0.1", G, "just past 172.16/12"},
    {"192.168.1.1", P, "RFC 1918"},
    {"169.254.10.10", P, "link-local"},
    {"0.0.0.0", P, "this network"},
    {"0.1.2.3", P, "0/8"},
    {"192.0.0.1", P, "IETF protocol assignments"},
    {"192.0.0.9", G, "PCP anycast: an exception, globally reachable"},
    {"192.0.0.10", G, "TURN anycast: an exception"},
    {"192.0.0.170", P, "NAT64 discovery"},
    {"192.0.2.5", P, "TEST-NET-1"},
    {"198.18.0.1", P, "benchmarking"},
    {"198.19.255.255", P, "benchmarking /15 end"},
    {"198.20.0.1", G, "past benchmarking"},
    {"198.51.100.7", P, "TEST-NET-2"},
    {"203.0.113.9", P, "TEST-NET-3"},
    {"240.0.0.1", P, "reserved"},
    {"255.255.255.255", P, "limited broadcast"},
    {"100.64.0.1", N, "shared address space: neither private nor global"},
    {"100.127.255.255", N, "shared address space end"},
    {"100.128.0.1", G, "past the shared space"},
    {"8.8.8.8", G, "a public resolver"},
    {"1.1.1.1", G, "public"},
    {"224.0.0.1", G, "multicast: Python calls it global"},
    {"::ffff:8.8.8.8", G, "IPv4-mapped global"},
    {"::ffff:10.0.0.1", P, "IPv4-mapped private"},
    {"::ffff:100.64.0.1", N, "IPv4-mapped shared"},
    {"::", P, "IPv6 unspecified"},
    {"fe80::1", P, "link-local"},
    {"fc00::1", P, "unique local"},
    {"fd12:3456::1", P, "unique local fd00::/8"},
    {"2001:db8::1", P, "documentation"},
    {"2001::1", P, "TEREDO in 2001::/23"},
    {"2001:1::1", G, "an exception inside 2001::/23"},
    {"2001:1::3", P, "not an exception"},
    {"2001:3::1", G, "AMT: an exception"},
    {"2001:4:112::1", G, "AS112-v6: an exception"},
    {"2001:20::1", G, "ORCHIDv2: an exception"},
    {"2001:1ff::1", P, "end of 2001::/23"},
    {"2001:200::1", G, "just past 2001::/23"},
    {"2002::1", P, "6to4"},
    {"3fff::1", P, "documentation (RFC 9637)"},
    {"64:ff9b:1::1", P, "local-use NAT64"},
    {"64:ff9b::1", G, "well-known NAT64 prefix is global"},
    {"100::1", P, "discard-only"},
    {"2606:4700::1111", G, "public"},
    {"2a00:1450:4001::1", G, "public"},
    {"ff02::1", G, "multicast: Python calls it global"},
};

static socklen_t make_addr(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(text, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
        return sizeof(*s6);
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

    s4->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    return sizeof(*s4);
}

static void test_classify_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t len = make_addr(cases[i].addr, &ss);
        enum access_class got = access_classify((struct sockaddr *)&ss, len);

        if (got != cases[i].want)
            fail_msg("%s (%s): class %d, want %d", cases[i].addr, cases[i].note, (int)got,
                     (int)cases[i].want);
    }
}

static void test_classify_not_ip(void **state)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    struct sockaddr_in short4 = {.sin_family = AF_INET};

    (void)state;
    assert_int_equal(access_classify((struct sockaddr *)&un, sizeof(un)), ACCESS_CLASS_UNKNOWN);
    assert_int_equal(access_classify(NULL, 0), ACCESS_CLASS_UNKNOWN);
    assert_int_equal(access_classify((struct sockaddr *)&short4, 4), ACCESS_CLASS_UNKNOWN);
}

/* the options, as mitmproxy: loopback always passes; the defaults refuse global clients */
static void test_refusal(void **state)
{
    struct config cfg;
    struct sockaddr_storage ss;
    socklen_t len;

    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    cfg.block_global = true; /* the default */
    len = make_addr("8.8.8.8", &ss);
    assert_string_equal(access_refusal(&cfg, (struct sockaddr *)&ss, len), "block_global");
    len = make_addr("192.168.0.2", &ss);
    assert_null(access_refusal(&cfg, (struct sockaddr *)&ss, len));
    len = make_addr("100.64.0.1", &ss);
    assert_null(access_refusal(&cfg, (struct sockaddr *)&ss, len));
    cfg.block_private = true;
    len = make_addr("192.168.0.2", &ss);
    assert_string_equal(access_refusal(&cfg, (struct sockaddr *)&ss, len), "block_private");
    len = make_addr("::ffff:10.0.0.1", &ss);
    assert_string_equal(access_refusal(&cfg, (struct sockaddr *)&ss, len), "block_private");
    len = make_addr("127.0.0.1", &ss);
    assert_null(access_refusal(&cfg, (struct sockaddr *)&ss, len));
    len = make_addr("::1", &ss);
    assert_null(access_refusal(&cfg, (struct sockaddr *)&ss, len));
    cfg.block_global = false;
    len = make_addr("2606:4700::1111", &ss);
    assert_null(access_refusal(&cfg, (struct sockaddr *)&ss, len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_table),
        cmocka_unit_test(test_classify_not_ip),
        cmocka_unit_test(test_refusal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
