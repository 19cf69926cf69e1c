/* test_mb_h2.c - mitmd-bench's HTTP/2 client against an in-memory nghttp2 server session:
 * responses counted with their status, a REFUSED_STREAM retried, retries bounded, and
 * requests past a GOAWAY carried over to the next session. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "bench/mb_conn.h"
#include "bench/mb_h2.h"
#include "bench/mb_opts.h"
#include "bench/mb_stats.h"

/* struct server scripts the origin's answers. */
struct server {
    nghttp2_session *session;
    int status;           /* :status of every response */
    unsigned refuse;      /* RST_STREAM(REFUSED_STREAM) the first `refuse` requests */
    int32_t goaway_after; /* > 0: GOAWAY with this last-stream-id on the first request */
    unsigned requests;    /* request streams seen */
    bool goaway_sent;
};

struct fixture {
    struct mb_opts opts;
    struct mb_stats stats;
    struct mb_conn_env env;
    struct mb_conn conn;
    struct server srv;
};

static ssize_t srv_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *ud)
{
    (void)s, (void)id, (void)src, (void)ud;
    assert_true(len >= 5);
    memcpy(buf, "hello", 5);
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return 5;
}

static int srv_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct server *srv = ud;
    char status[4];
    nghttp2_nv nv = {(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
    nghttp2_data_provider body = {.read_callback = srv_body};

    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST ||
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0)
        return 0;
    srv->requests++;
    if (srv->goaway_after > 0 && !srv->goaway_sent) {
        srv->goaway_sent = true;
        assert_int_equal(nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, srv->goaway_after,
                                               NGHTTP2_NO_ERROR, NULL, 0),
                         0);
    }
    if (srv->goaway_after > 0 && f->hd.stream_id > srv->goaway_after)
        return 0; /* past the GOAWAY: never answered, the client must retry elsewhere */
    if (srv->refuse > 0) {
        srv->refuse--;
        return nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                         NGHTTP2_REFUSED_STREAM);
    }
    snprintf(status, sizeof(status), "%03d", srv->status);
    return nghttp2_submit_response(s, f->hd.stream_id, &nv, 1, &body);
}

static void server_open(struct server *srv)
{
    nghttp2_session_callbacks *cbs;

    assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, srv_frame);
    assert_int_equal(nghttp2_session_server_new(&srv->session, cbs, srv), 0);
    nghttp2_session_callbacks_del(cbs);
    assert_int_equal(nghttp2_submit_settings(srv->session, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    srv->goaway_sent = false;
}

static void server_close(struct server *srv)
{
    nghttp2_session_del(srv->session);
    srv->session = NULL;
}

/* pump moves bytes both ways until neither side has anything to say, resubmitting
 * refused requests the way mb_conn does after every read. */
static void pump(struct fixture *fx)
{
    struct mb_h2 *h = &fx->conn.h2;
    const char *why = NULL;

    for (int round = 0; round < 100; round++) {
        const uint8_t *p;
        ssize_t n = mb_h2_next_out(h, &p, &why), m;
        bool moved = n > 0;

        assert_true(n >= 0);
        if (n > 0) {
            assert_int_equal(nghttp2_session_mem_recv(fx->srv.session, p, (size_t)n), n);
            mb_h2_sent(h, (size_t)n);
        }
        m = nghttp2_session_mem_send(fx->srv.session, &p);
        assert_true(m >= 0);
        if (m > 0) {
            assert_int_equal(mb_h2_recv(h, p, (size_t)m, &why), 0);
            assert_int_equal(mb_h2_submit_queued(h, &why), 0);
            moved = true;
        }
        if (!moved)
            return;
    }
    fail_msg("sessions never went quiet");
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    fx->opts.h2 = true;
    fx->opts.streams = 4;
    fx->opts.origin.port = 8443;
    strcpy(fx->opts.path, "/x");
    mb_stats_init(&fx->stats);
    fx->stats.recording = true;
    fx->env.opts = &fx->opts;
    fx->env.stats = &fx->stats;
    if (mb_conn_init(&fx->conn, &fx->env, 0) != 0)
        return -1;
    strcpy(fx->conn.host, "h.test");
    fx->srv.status = 200;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    mb_conn_dispose(&fx->conn);
    if (fx->srv.session != NULL)
        server_close(&fx->srv);
    free(fx);
    return 0;
}

static void submit(struct fixture *fx, unsigned n)
{
    const char *why = NULL;

    for (unsigned i = 0; i < n; i++)
        assert_int_equal(mb_h2_submit(&fx->conn.h2, mb_now_ns(), true, &why), 0);
}

static void open_both(struct fixture *fx)
{
    const char *why = NULL;

    server_open(&fx->srv);
    assert_int_equal(mb_h2_open(&fx->conn.h2, &why), 0);
}

static void test_mb_h2_responses_counted(void **state)
{
    struct fixture *fx = *state;

    submit(fx, 2); /* queued before the session exists, sent by mb_h2_open */
    open_both(fx);
    submit(fx, 2);
    assert_false(mb_h2_has_room(&fx->conn.h2)); /* 4 slots, 4 in flight */
    pump(fx);
    assert_int_equal(fx->stats.requests, 4);
    assert_int_equal(fx->stats.errors, 0);
    assert_int_equal(fx->stats.latency.count, 4);
    assert_int_equal(fx->conn.h2.used, 0);
    assert_int_equal(fx->conn.reqs_done, 4);
    assert_int_equal(fx->srv.requests, 4);
}

static void test_mb_h2_status_is_error(void **state)
{
    struct fixture *fx = *state;

    fx->srv.status = 404;
    open_both(fx);
    submit(fx, 1);
    pump(fx);
    assert_int_equal(fx->stats.requests, 0);
    assert_int_equal(fx->stats.errors_by_kind[MB_ERR_STATUS], 1);
    assert_non_null(strstr(fx->stats.first_error, "GET /x: status 404"));
}

static void test_mb_h2_refused_is_retried(void **state)
{
    struct fixture *fx = *state;

    fx->srv.refuse = MB_H2_MAX_RETRIES; /* refused as often as we retry: still served */
    open_both(fx);
    submit(fx, 1);
    pump(fx);
    assert_int_equal(fx->stats.requests, 1);
    assert_int_equal(fx->stats.errors, 0);
    assert_int_equal(fx->srv.requests, 1 + MB_H2_MAX_RETRIES);
}

static void test_mb_h2_retries_bounded(void **state)
{
    struct fixture *fx = *state;

    fx->srv.refuse = 100;
    open_both(fx);
    submit(fx, 1);
    pump(fx);
    assert_int_equal(fx->stats.requests, 0);
    assert_int_equal(fx->stats.errors_by_kind[MB_ERR_PROTOCOL], 1);
    assert_non_null(strstr(fx->stats.first_error, "REFUSED_STREAM"));
    assert_int_equal(fx->conn.h2.used, 0);
}

static void test_mb_h2_goaway_carries_over(void **state)
{
    struct fixture *fx = *state;
    const char *why = NULL;

    fx->srv.goaway_after = 1; /* serve stream 1 only */
    open_both(fx);
    submit(fx, 3);
    pump(fx);
    assert_int_equal(fx->stats.requests, 1);
    assert_true(mb_h2_is_finished(&fx->conn.h2));
    assert_false(mb_h2_has_room(&fx->conn.h2));
    assert_int_equal(mb_h2_queued(&fx->conn.h2), 2);

    /* what mb_conn does: close, keep the queued requests, open a new connection */
    mb_h2_reset(&fx->conn.h2, true);
    assert_int_equal(fx->conn.h2.used, 2);
    server_close(&fx->srv);
    fx->srv.goaway_after = 0;
    open_both(fx);
    pump(fx);
    assert_int_equal(fx->stats.requests, 3);
    assert_int_equal(fx->stats.errors, 0);
    (void)why;
}

static void test_mb_h2_fail_all_counts_each(void **state)
{
    struct fixture *fx = *state;

    open_both(fx);
    submit(fx, 3);
    assert_int_equal(mb_h2_fail_all(&fx->conn.h2, MB_ERR_IO, "reading", "reset"), 3);
    assert_int_equal(fx->stats.errors_by_kind[MB_ERR_IO], 3);
    assert_int_equal(fx->conn.h2.used, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mb_h2_responses_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mb_h2_status_is_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mb_h2_refused_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mb_h2_retries_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mb_h2_goaway_carries_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mb_h2_fail_all_counts_each, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
