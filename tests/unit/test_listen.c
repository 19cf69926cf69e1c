/* test_listen.c - the master's listeners: listen hosts given as numbers or names, the
 * start-up text for several addresses, and several listeners sharing one port. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "master/listen.h"

static void test_resolve_numeric_and_names(void **state)
{
    static const struct {
        const char *note, *host;
        int family; /* of the first address */
    } cases[] = {
        {"IPv4 literal", "127.0.0.1", AF_INET},
        {"IPv6 literal", "::1", AF_INET6},
        {"bracketed IPv6 literal", "[::1]", AF_INET6},
        {"a name: localhost, IPv4 first", "localhost", AF_INET},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct listen_addrs a;
        char err[256] = "";

        if (listen_resolve(cases[i].host, 8080, &a, err, sizeof(err)) != 0)
            fail_msg("%s: %s", cases[i].note, err);
        assert_true(a.n >= 1);
        assert_int_equal(a.ss[0].ss_family, cases[i].family);
        for (int k = 0; k < a.n; k++)
            assert_int_equal(ntohs(((struct sockaddr_in *)&a.ss[k])->sin_port), 8080);
    }
}

static void test_resolve_failure_names_host(void **state)
{
    struct listen_addrs a;
    char err[256] = "";
    (void)state;

    assert_int_not_equal(listen_resolve("no-such-host.invalid", 1, &a, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "--listen-host no-such-host.invalid"));
}

static void test_format_and_open_several(void **state)
{
    struct listen_addrs a, one;
    char text[256], err[256] = "";
    int fds[2] = {-1, -1};
    uint16_t port = 0;
    (void)state;

    assert_int_equal(listen_resolve("127.0.0.1", 0, &a, err, sizeof(err)), 0);
    assert_int_equal(listen_resolve("::1", 0, &one, err, sizeof(err)), 0);
    a.ss[1] = one.ss[0];
    a.len[1] = one.len[0];
    a.n = 2;
    listen_format(&a, 8080, text, sizeof(text));
    assert_string_equal(text, "127.0.0.1:8080 and [::1]:8080");
    /* both listeners share the port the kernel picked for the first (needs IPv6 on lo) */
    if (listen_open_addrs(&a, fds, &port, err, sizeof(err)) != 0) {
        print_message("skipped: %s\n", err);
        return;
    }
    assert_true(port != 0);
    for (int i = 0; i < 2; i++) {
        struct sockaddr_storage got;
        socklen_t len = sizeof(got);

        assert_int_equal(getsockname(fds[i], (struct sockaddr *)&got, &len), 0);
        assert_int_equal(ntohs(((struct sockaddr_in *)&got)->sin_port), port);
    }
    listen_close_all(fds, 2);
    assert_int_equal(fds[0], -1);
}

static void test_open_all_by_name(void **state)
{
    int fds[3];
    uint16_t port = 0;
    char err[256] = "";
    (void)state;

    if (listen_open_all("localhost", 0, 3, fds, &port, err, sizeof(err)) != 0)
        fail_msg("localhost: %s", err);
    assert_true(port != 0);
    assert_true(fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0);
    listen_close_all(fds, 3);
    assert_int_not_equal(listen_open_all("no-such-host.invalid", 0, 1, fds, &port, err,
                                         sizeof(err)), 0);
    assert_int_equal(fds[0], -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_numeric_and_names),
        cmocka_unit_test(test_resolve_failure_names_host),
        cmocka_unit_test(test_format_and_open_several),
        cmocka_unit_test(test_open_all_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
