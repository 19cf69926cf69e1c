/* test_dns.c - worker/dns: --resolve overrides win (first match, wildcards), IP literals
 * need no query, answers always arrive from the loop (never inside dns_resolve), the cache
 * honours TTLs and stays bounded, and c-ares resolves through the ring. dns.c is included
 * to reach the cache helpers. */
#include "worker/dns.c"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

struct result {
    struct dns_req req;
    int calls;
    int err;
    char addr[INET6_ADDRSTRLEN];
    const char *why;
};

static bool in_resolve;

static void on_done(struct dns_req *req, int err, const struct sockaddr *sa, socklen_t salen,
                    const char *why)
{
    struct result *r = (struct result *)((char *)req - offsetof(struct result, req));

    (void)salen;
    assert_false(in_resolve); /* never called from inside dns_resolve */
    r->calls++;
    r->err = err;
    r->why = why;
    r->addr[0] = '\0';
    if (err == 0 && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->addr, sizeof(r->addr));
    else if (err == 0)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->addr,
                  sizeof(r->addr));
}

struct fixture {
    struct ring ring;
    struct dns dns;
    struct config cfg;
};

static int setup(void **state)
{
    static struct fixture f;
    const char *why = NULL;

    memset(&f, 0, sizeof(f));
    f.cfg.resolve[0].pattern = "*.bench.test";
    f.cfg.resolve[0].address = "127.0.0.2";
    f.cfg.resolve[1].pattern = "exact.test";
    f.cfg.resolve[1].address = "::1";
    f.cfg.resolve[2].pattern = "bad.test";
    f.cfg.resolve[2].address = "not-an-ip";
    f.cfg.n_resolve = 3;
    if (ring_open(&f.ring, 64) != 0 || dns_init(&f.dns, &f.ring, &f.cfg, &why) != 0)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    dns_dispose(&f->dns);
    ring_close(&f->ring);
    return 0;
}

static void resolve(struct fixture *f, struct result *r, const char *host)
{
    memset(r, 0, sizeof(*r));
    r->req.done = on_done;
    in_resolve = true;
    assert_int_equal(dns_resolve(&f->dns, &r->req, host), 0);
    in_resolve = false;
    for (int i = 0; i < 200 && r->calls == 0; i++) {
        ring_run(&f->ring, 50);
        if (i % 20 == 19)
            dns_tick(&f->dns);
    }
    assert_int_equal(r->calls, 1);
}

static void test_overrides_and_literals(void **state)
{
    static const struct {
        const char *host, *want; /* want NULL: an error */
        const char *note;
    } cases[] = {
        {"a.bench.test", "127.0.0.2", "wildcard override"},
        {"X.Y.BENCH.TEST", "127.0.0.2", "case-insensitive, several labels"},
        {"exact.test", "::1", "exact override, IPv6 address"},
        {"bad.test", NULL, "an override that is not an address fails, no query"},
        {"10.1.2.3", "10.1.2.3", "IPv4 literal"},
        {"fe80::1", "fe80::1", "IPv6 literal"},
    };
    struct fixture *f = *state;
    struct result r;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].note);
        resolve(f, &r, cases[i].host);
        if (cases[i].want == NULL) {
            assert_true(r.err < 0);
            assert_non_null(r.why);
        } else {
            assert_int_equal(r.err, 0);
            assert_string_equal(r.addr, cases[i].want);
        }
    }
    assert_int_equal(f->dns.misses, 0); /* none of these asked the resolver */
}

static void test_bad_host(void **state)
{
    struct fixture *f = *state;
    struct dns_req req;
    char longname[400];

    memset(&req, 0, sizeof(req));
    req.done = on_done;
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(dns_resolve(&f->dns, &req, ""), -EINVAL);
    assert_int_equal(dns_resolve(&f->dns, &req, longname), -EINVAL);
}

static void test_cache_ttl_and_bound(void **state)
{
    struct fixture *f = *state;
    struct dns_addrs a = {.n = 1, .len = {sizeof(struct sockaddr_in)}};
    struct sockaddr_in *a4 = (struct sockaddr_in *)&a.a[0];
    struct result r;
    char name[64];
    uint64_t now = dns_now_ns();

    a4->sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.7", &a4->sin_addr);
    dns_cache_put(&f->dns, "cached.test", &a, 60, now);
    assert_non_null(dns_cache_find(&f->dns, "cached.test", now));
    assert_null(dns_cache_find(&f->dns, "cached.test", now + 61ull * 1000000000ull)); /* TTL */
    resolve(f, &r, "CACHED.test");
    assert_int_equal(r.err, 0);
    assert_string_equal(r.addr, "192.0.2.7");
    assert_int_equal(f->dns.hits, 1);

    /* TTL 0 is not cached; huge TTLs are capped */
    dns_cache_put(&f->dns, "zero.test", &a, 0, now);
    assert_null(dns_cache_find(&f->dns, "zero.test", now));
    dns_cache_put(&f->dns, "long.test", &a, 86400, now);
    assert_null(dns_cache_find(&f->dns, "long.test", now + (DNS_TTL_MAX_S + 1ull) * 1000000000ull));

    /* many more names than entries: the table never grows, recent names stay */
    for (int i = 0; i < DNS_CACHE_SETS * DNS_CACHE_WAYS * 4; i++) {
        snprintf(name, sizeof(name), "n%d.test", i);
        dns_cache_put(&f->dns, name, &a, 30 + (uint32_t)i, now);
    }
    assert_non_null(dns_cache_find(&f->dns, name, now));
}

/* mk_node fills one c-ares answer node for `ip` (IPv4 or IPv6) with `ttl`. */
static void mk_node(struct ares_addrinfo_node *n, struct sockaddr_storage *ss, const char *ip,
                    int ttl, struct ares_addrinfo_node *next)
{
    memset(n, 0, sizeof(*n));
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':') != NULL) {
        ((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)ss)->sin6_addr);
        n->ai_family = AF_INET6;
        n->ai_addrlen = sizeof(struct sockaddr_in6);
    } else {
        ((struct sockaddr_in *)ss)->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &((struct sockaddr_in *)ss)->sin_addr);
        n->ai_family = AF_INET;
        n->ai_addrlen = sizeof(struct sockaddr_in);
    }
    n->ai_addr = (struct sockaddr *)ss;
    n->ai_ttl = ttl;
    n->ai_next = next;
}

static const char *addr_str(const struct sockaddr *sa, char *buf, size_t cap)
{
    if (sa->sa_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, cap);
    return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, cap);
}

/* An answer with several addresses keeps them all (IPv4 first, DNS order within a family, at
 * most DNS_MAX_ADDRS) so that a failed connect can go on to the next; the cache keeps the
 * list and the smallest TTL. */
static void test_answer_keeps_every_address(void **state)
{
    static const struct {
        const char *note;
        const char *in[6];
        int ttl[6];
        const char *want[DNS_MAX_ADDRS + 1];
        uint32_t want_ttl;
    } cases[] = {
        {"one A", {"192.0.2.1"}, {30}, {"192.0.2.1"}, 30},
        {"AAAA before A in the answer: A tried first",
         {"2001:db8::1", "192.0.2.1"}, {60, 20}, {"192.0.2.1", "2001:db8::1"}, 20},
        {"two A, two AAAA interleaved",
         {"2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2"}, {9, 9, 9, 9},
         {"192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"}, 9},
        {"more than DNS_MAX_ADDRS: the first ones kept",
         {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "2001:db8::1"},
         {5, 5, 5, 5, 5, 5}, {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}, 5},
        {"a TTL of 0 anywhere: not cached", {"192.0.2.1", "192.0.2.2"}, {30, 0},
         {"192.0.2.1", "192.0.2.2"}, 0},
    };
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ares_addrinfo_node nodes[6];
        struct sockaddr_storage ss[6];
        struct ares_addrinfo ai;
        struct dns_req req;
        const struct sockaddr *sa;
        struct dns_cache_entry *e;
        socklen_t len;
        char buf[INET6_ADDRSTRLEN], host[32];
        int n = 0;
        unsigned k;

        while (n < 6 && cases[i].in[n] != NULL)
            n++;
        for (int j = n - 1; j >= 0; j--)
            mk_node(&nodes[j], &ss[j], cases[i].in[j], cases[i].ttl[j],
                    j + 1 < n ? &nodes[j + 1] : NULL);
        memset(&ai, 0, sizeof(ai));
        ai.nodes = &nodes[0];
        memset(&req, 0, sizeof(req));
        assert_int_equal(dns_collect(&ai, &req._addrs), cases[i].want_ttl);
        for (k = 0; cases[i].want[k] != NULL; k++) {
            sa = dns_req_addr(&req, k, &len);
            assert_non_null(sa);
            assert_string_equal(addr_str(sa, buf, sizeof(buf)), cases[i].want[k]);
            assert_int_equal(len, sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                           : sizeof(struct sockaddr_in6));
        }
        assert_null(dns_req_addr(&req, k, &len)); /* no more than were kept */

        snprintf(host, sizeof(host), "multi%zu.test", i);
        dns_cache_put(&f->dns, host, &req._addrs, cases[i].want_ttl, dns_now_ns());
        e = dns_cache_find(&f->dns, host, dns_now_ns());
        if (cases[i].want_ttl == 0) {
            assert_null(e);
            continue;
        }
        assert_non_null(e);
        assert_int_equal(e->addrs.n, k);
    }
}

static void test_cares_localhost(void **state)
{
    struct fixture *f = *state;
    struct result r;

    if (!f->dns.channel_ok)
        skip();
    resolve(f, &r, "localhost"); /* /etc/hosts through c-ares; may answer synchronously */
    assert_int_equal(r.err, 0);
    assert_true(strcmp(r.addr, "127.0.0.1") == 0 || strcmp(r.addr, "::1") == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_overrides_and_literals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_ttl_and_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_keeps_every_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cares_localhost, setup, teardown),
    };
    struct ring probe;

    if (ring_open(&probe, 4) != 0)
        return 77;
    ring_close(&probe);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
