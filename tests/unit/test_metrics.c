/* test_metrics.c - the metrics page (master/metrics.c, included for its static helpers) and
 * the stats classes and buckets (shared/stats.c): counters of exited workers stay in the
 * sums, histograms are cumulative with +Inf == _count, a page that does not fit is
 * -ENOSPC, and every sample line is in the text format. */
#include "master/metrics.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "shared/stats.h"

struct fixture {
    struct supervise sup;
    struct forge_service fs;
    struct certcache *cache;
    struct metrics_view view;
    char page[1 << 18];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    int listen_fds[2] = {-1, -1};
    static char *argv[] = {"mitmd", NULL};

    if (f == NULL)
        return -1;
    supervise_init(&f->sup, 2, listen_fds, -1, -1, NULL, 1, argv, NULL, 0);
    if (certcache_create(CERTCACHE_MIN_BYTES, &f->cache, NULL) != 0)
        return -1;
    f->view = (struct metrics_view){
        .sup = &f->sup, .fs = &f->fs, .cache = f->cache, .state = METRICS_STATE_SERVING};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    certcache_close(f->cache);
    free(f);
    return 0;
}

/* sample returns the value of the sample line `name` (name plus labels, exact) or -1. */
static long long sample(const char *page, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = page; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return atoll(p + n + 1);
    return -1;
}

static void test_stats_buckets_and_classes(void **state)
{
    /* each case: observation in microseconds -> bucket index */
    static const struct {
        uint64_t us;
        int bucket;
        const char *note;
    } cases[] = {
        {0, 0, "zero is in the first bucket"},
        {100, 0, "a bound belongs to its bucket (le = less or equal)"},
        {101, 1, "just above a bound: next bucket"},
        {30000000, MSG_HIST_BUCKETS - 1, "the last finite bound"},
        {30000001, MSG_HIST_INF, "above every bound: +Inf"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t h[MSG_HIST_STRIDE] = {0};

        stats_hist_observe(h, cases[i].us);
        assert_int_equal(h[cases[i].bucket], 1);
        assert_int_equal(h[MSG_HIST_SUM], cases[i].us);
    }
    assert_int_equal(stats_method_class("GET", 3), MSG_METHOD_GET);
    assert_int_equal(stats_method_class("GETX", 4), MSG_METHOD_OTHER);
    assert_int_equal(stats_method_class("GE", 2), MSG_METHOD_OTHER);
    assert_int_equal(stats_method_class("CONNECT", 7), MSG_METHOD_CONNECT);
    assert_int_equal(stats_method_class("", 0), MSG_METHOD_OTHER);
    assert_int_equal(stats_status_class(0), MSG_STATUS_NONE);
    assert_int_equal(stats_status_class(99), MSG_STATUS_NONE);
    assert_int_equal(stats_status_class(101), MSG_STATUS_1XX);
    assert_int_equal(stats_status_class(599), MSG_STATUS_5XX);
    assert_int_equal(stats_status_class(600), MSG_STATUS_NONE);
    assert_string_equal(stats_status_name(MSG_STATUS_4XX), "4xx");
}

static void test_render_sums_exited_workers(void **state)
{
    struct fixture *f = *state;
    long n;

    /* an exited worker's counters are in the totals; a running one's in its slot */
    f->sup.totals.v[MSG_REQ_SLOT(MSG_METHOD_GET, MSG_STATUS_2XX)] = 5;
    f->sup.slots[0].stats.v[MSG_REQ_SLOT(MSG_METHOD_GET, MSG_STATUS_2XX)] = 2;
    f->sup.old[1].stats.v[MSG_REQ_SLOT(MSG_METHOD_POST, MSG_STATUS_5XX)] = 1;
    f->sup.slots[0].stats.v[MSG_STAT_ACTIVE] = 3;
    /* by listener: counters of exited workers stay, their gauges do not */
    {
        struct sockaddr_storage ss[2] = {0};
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss[0];
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss[1];
        struct msg_stats exited = {0};

        a4->sin_family = AF_INET;
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a6->sin6_family = AF_INET6;
        a6->sin6_addr = in6addr_loopback;
        metrics_view_add_listener(&f->view, ss, 1, 8080, "regular");
        metrics_view_add_listener(&f->view, ss, 2, 1080, "socks5");
        exited.v[MSG_LSTN_SLOT(1, MSG_LSTN_ACCEPTED)] = 10;
        exited.v[MSG_LSTN_SLOT(1, MSG_LSTN_ACTIVE)] = 4;
        stats_add(&f->sup.totals, &exited, 0);
        f->sup.slots[0].stats.v[MSG_LSTN_SLOT(0, MSG_LSTN_ACCEPTED)] = 6;
        f->sup.slots[0].stats.v[MSG_LSTN_SLOT(0, MSG_LSTN_REFUSED)] = 1;
        f->sup.slots[0].stats.v[MSG_LSTN_SLOT(0, MSG_LSTN_ACTIVE)] = 2;
        f->sup.old[1].stats.v[MSG_LSTN_SLOT(1, MSG_LSTN_ACCEPTED)] = 5;
        f->sup.old[1].stats.v[MSG_LSTN_SLOT(1, MSG_LSTN_ACTIVE)] = 1;
    }
    f->sup.id_totals[1].flows = 7;
    f->sup.slots[1].stats.v[MSG_STAT_FLOWS] = 1;
    stats_hist_observe(&f->sup.slots[0].stats.v[MSG_HIST_SLOT(MSG_HIST_REQUEST, 0)], 50);
    stats_hist_observe(&f->sup.totals.v[MSG_HIST_SLOT(MSG_HIST_REQUEST, 0)], 2000);
    stats_hist_observe(&f->sup.totals.v[MSG_HIST_SLOT(MSG_HIST_REQUEST, 0)], 99999999);
    n = metrics_render(&f->view, f->page, sizeof(f->page));
    assert_true(n > 0);
    assert_int_equal(sample(f->page, "mitmd_requests_total{method=\"GET\",status_class=\"2xx\"}"),
                     7);
    assert_int_equal(sample(f->page, "mitmd_requests_total{method=\"POST\",status_class=\"5xx\"}"),
                     1);
    assert_int_equal(sample(f->page, "mitmd_connections_accepted_total{listener=\"127.0.0.1:8080\","
                                     "mode=\"regular\"}"), 6);
    assert_int_equal(sample(f->page, "mitmd_connections_refused_total{listener=\"127.0.0.1:8080\","
                                     "mode=\"regular\"}"), 1);
    assert_int_equal(sample(f->page, "mitmd_connections_active{listener=\"127.0.0.1:8080\","
                                     "mode=\"regular\"}"), 2);
    assert_int_equal(sample(f->page, "mitmd_connections_accepted_total{listener=\"127.0.0.1:1080,"
                                     "[::1]:1080\",mode=\"socks5\"}"), 15);
    assert_int_equal(sample(f->page, "mitmd_connections_active{listener=\"127.0.0.1:1080,"
                                     "[::1]:1080\",mode=\"socks5\"}"), 1);
    assert_int_equal(sample(f->page, "mitmd_listener_info{address=\"127.0.0.1:8080\","
                                     "mode=\"regular\"}"), 1);
    assert_int_equal(sample(f->page, "mitmd_worker_flows_total{worker=\"1\"}"), 8);
    assert_int_equal(sample(f->page, "mitmd_request_duration_seconds_bucket{le=\"0.0001\"}"), 1);
    assert_int_equal(sample(f->page, "mitmd_request_duration_seconds_bucket{le=\"0.0025\"}"), 2);
    assert_int_equal(sample(f->page, "mitmd_request_duration_seconds_bucket{le=\"30\"}"), 2);
    assert_int_equal(sample(f->page, "mitmd_request_duration_seconds_bucket{le=\"+Inf\"}"), 3);
    assert_int_equal(sample(f->page, "mitmd_request_duration_seconds_count"), 3);
    assert_int_equal(sample(f->page, "mitmd_state{state=\"serving\"}"), 1);
    /* every line is a comment or "name[{labels}] value" */
    for (const char *p = f->page; *p != '\0';) {
        const char *e = strchr(p, '\n');

        assert_non_null(e);
        assert_true(*p == '#' || strncmp(p, "mitmd_", 6) == 0);
        assert_non_null(memchr(p, ' ', (size_t)(e - p)));
        p = e + 1;
    }
}

static void test_render_too_small(void **state)
{
    struct fixture *f = *state;
    long full = metrics_render(&f->view, f->page, sizeof(f->page));

    assert_true(full > 0);
    /* one byte short of the page (its NUL) and much shorter: -ENOSPC, never a cut page */
    assert_int_equal(metrics_render(&f->view, f->page, (size_t)full), -ENOSPC);
    assert_int_equal(metrics_render(&f->view, f->page, 100), -ENOSPC);
    assert_int_equal(metrics_render(&f->view, f->page, (size_t)full + 1), full);
}

static void test_healthz_states(void **state)
{
    struct fixture *f = *state;

    f->sup.slots[0].pid = 1234; /* not a real process: only read */
    f->sup.slots[0].ready = true;
    f->view.state = METRICS_STATE_SERVING;
    assert_true(metrics_is_healthy(&f->view));
    f->view.state = METRICS_STATE_RELOADING;
    assert_true(metrics_is_healthy(&f->view));
    f->view.state = METRICS_STATE_DRAINING;
    assert_false(metrics_is_healthy(&f->view));
    f->view.state = METRICS_STATE_STARTING;
    assert_false(metrics_is_healthy(&f->view));
    f->view.state = METRICS_STATE_SERVING;
    f->sup.slots[0].ready = false; /* no worker up */
    assert_false(metrics_is_healthy(&f->view));
    f->sup.slots[0].pid = 0;
}

static void test_label_escape(void **state)
{
    /* each case: input -> label value (cap 12: room for 9 bytes, an escape never cut) */
    static const struct {
        const char *in, *want, *note;
    } cases[] = {
        {"127.0.0.1:80", "127.0.0.1", "cut to fit, never a dangling escape"},
        {"a\"b", "a\\\"b", "double quote escaped"},
        {"a\\b", "a\\\\b", "backslash escaped"},
        {"a\nb", "a\\nb", "newline as \\n"},
        {"", "", "empty"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[12];

        metrics_label_escape(cases[i].in, out, sizeof(out));
        assert_string_equal(out, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_escape),
        cmocka_unit_test(test_stats_buckets_and_classes),
        cmocka_unit_test_setup_teardown(test_render_sums_exited_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_too_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthz_states, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
