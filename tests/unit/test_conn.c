/* test_conn.c - worker/conn: the connection loop driven by a stub protocol over a real
 * io_uring and real sockets. The loop must deliver bytes to the protocol and its output to the
 * socket byte-exact, stop reading at the watermark unless the protocol waits for a head,
 * flush then close, apply the protocol's timeouts, drain (idle: at once; busy: through the
 * protocol, then once idle), refuse with 503 when the pool is full, and free every slot once
 * nothing is in flight. Skips (77) without io_uring. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker/conn.h"
#include "worker/worker.h"

/* what the stub protocol saw and does */
struct stub {
    int steps, timeouts, drains, disposes;
    bool consume;    /* echo the input; false: leave it in the buffer */
    bool head;       /* reads_head answer */
    bool idle;       /* is_idle answer */
    bool fire;       /* on_timeout fires (and closes) */
};

static struct stub S;

static bool stub_step(struct conn *c)
{
    struct buf *in = transport_in(&c->cl);
    size_t n = buf_used(in);

    S.steps++;
    if (!S.consume || n == 0)
        return false;
    if (n >= 3 && memcmp(buf_head(in), "bye", 3) == 0) {
        buf_consume(in, 3);
        buf_append(&c->cl.pout, "ok\n", 3);
        conn_close_after_flush(c);
        return true;
    }
    n = buf_append(&c->cl.pout, buf_head(in), n); /* echo what fits */
    buf_consume(in, n);
    return n > 0;
}

static bool stub_reads_head(struct conn *c, const struct conn_leg *leg)
{
    (void)c;
    (void)leg;
    return S.head;
}

static bool stub_on_timeout(struct conn *c, uint64_t now)
{
    (void)now;
    S.timeouts++;
    if (!S.fire)
        return false;
    conn_close(c);
    return true;
}

static bool stub_is_idle(struct conn *c)
{
    (void)c;
    return S.idle;
}

static void stub_drain(struct conn *c)
{
    (void)c;
    S.drains++;
}

static void stub_dispose(struct conn *c)
{
    (void)c;
    S.disposes++;
}

static const struct conn_proto stub_proto = {
    .name = "stub",
    .step = stub_step,
    .reads_head = stub_reads_head,
    .on_timeout = stub_on_timeout,
    .is_idle = stub_is_idle,
    .drain = stub_drain,
    .dispose = stub_dispose,
};

static void stub_start(struct conn *c)
{
    conn_set_proto(c, &stub_proto);
}

static const struct modes_conf stub_mode = {.start = stub_start};

static struct config CFG;
static struct worker *W;

static int setup(void **state)
{
    (void)state;
    memset(&S, 0, sizeof(S));
    S.consume = true;
    memset(&CFG, 0, sizeof(CFG));
    CFG.idle_timeout_s = 60;
    CFG.connect_timeout_s = 10;
    CFG.request_timeout_s = 30;
    CFG.workers = 1;
    W = calloc(1, sizeof(*W));
    if (W == NULL)
        return -1;
    W->cfg = &CFG;
    if (ring_open(&W->ring, 64) != 0) {
        free(W);
        return -1;
    }
    if (conn_pool_init(&W->pool, 2, 1024) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ring_close(&W->ring);
    conn_pool_dispose(&W->pool);
    free(W);
    return 0;
}

/* run turns the loop a few times (bounded wait each). */
static void run(int turns)
{
    for (int i = 0; i < turns; i++)
        assert_true(ring_run(&W->ring, 20) >= 0);
}

/* open_conn accepts one side of a socketpair into the pool; returns the test's side. */
static int open_conn(struct conn **out)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    conn_accept(W, sv[1], &stub_mode);
    *out = W->pool.active;
    assert_non_null(*out);
    return sv[0];
}

/* read_all reads what arrives within a few loop turns. Returns bytes, or -1 at EOF with
 * nothing read. */
static ssize_t read_all(int fd, char *buf, size_t cap, bool *eof)
{
    size_t got = 0;

    *eof = false;
    for (int i = 0; i < 50 && !*eof; i++) {
        ssize_t n;

        run(1);
        n = recv(fd, buf + got, cap - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0)
            *eof = true;
        else if (got > 0 && i > 5)
            break;
    }
    return (ssize_t)got;
}

static void test_echo_byte_exact(void **state)
{
    struct conn *c;
    char out[64];
    bool eof;
    int fd = open_conn(&c);

    (void)state;
    assert_int_equal(W->pool.used, 1);
    assert_int_equal(send(fd, "hello, loop", 11, 0), 11);
    assert_int_equal(read_all(fd, out, sizeof(out), &eof), 11);
    assert_memory_equal(out, "hello, loop", 11);
    assert_false(eof);
    assert_true(S.steps > 0);
    close(fd);
    run(10); /* EOF: the stub does not close; a failed/EOF leg stays until the protocol acts */
    conn_close(c);
    run(10);
    assert_int_equal(W->pool.used, 0);
    assert_int_equal(S.disposes, 1);
}

static void test_close_after_flush(void **state)
{
    struct conn *c;
    char out[64];
    bool eof;
    int fd = open_conn(&c);

    (void)state;
    assert_int_equal(send(fd, "bye", 3, 0), 3);
    assert_int_equal(read_all(fd, out, sizeof(out), &eof), 3);
    assert_memory_equal(out, "ok\n", 3);
    if (!eof)
        assert_int_equal(read_all(fd, out, sizeof(out), &eof), 0);
    assert_true(eof); /* flushed, then closed */
    run(5);
    assert_int_equal(W->pool.used, 0); /* freed once nothing was in flight */
    close(fd);
}

/* Without reads_head, input stops at the CONN_IO_SIZE watermark (backpressure); with it, the
 * buffer takes a whole head. */
static void test_watermark_and_head(void **state)
{
    static char big[2 * CONN_IO_SIZE];
    struct conn *c;
    int fd;

    (void)state;
    memset(big, 'h', sizeof(big));
    for (int head = 0; head < 2; head++) {
        S.consume = false;
        S.head = head;
        fd = open_conn(&c);
        assert_int_equal(send(fd, big, sizeof(big), 0), (ssize_t)sizeof(big));
        run(20);
        if (head)
            assert_true(buf_used(&c->cl.rx) > CONN_IO_SIZE);
        else
            assert_int_equal(buf_used(&c->cl.rx), CONN_IO_SIZE);
        conn_close(c);
        run(10);
        close(fd);
        assert_int_equal(W->pool.used, 0);
    }
}

static void test_timeouts(void **state)
{
    struct conn *c;
    int fd = open_conn(&c);
    uint64_t before = W->stats.v[MSG_STAT_TIMEOUTS];
    bool eof;
    char out[8];

    (void)state;
    conn_check_timeouts(c, flow_now_ns());
    assert_int_equal(S.timeouts, 1);
    assert_int_equal(W->stats.v[MSG_STAT_TIMEOUTS], before); /* nothing fired: not counted */
    S.fire = true;
    conn_check_timeouts(c, flow_now_ns());
    assert_int_equal(S.timeouts, 2);
    assert_int_equal(W->stats.v[MSG_STAT_TIMEOUTS], before + 1);
    assert_int_equal(read_all(fd, out, sizeof(out), &eof), 0);
    assert_true(eof);
    run(5);
    assert_int_equal(W->pool.used, 0);
    close(fd);
}

/* conn_drain lets the protocol drain, and closes only once the connection is idle and quiet
 * for CONN_DRAIN_QUIET_MS: an idle keep-alive client may have sent a request already. */
static void test_drain(void **state)
{
    struct conn *c;
    bool eof;
    char out[8];
    int fd;

    (void)state;
    /* busy: the protocol's drain runs, the connection stays while it is busy */
    fd = open_conn(&c);
    conn_drain(c);
    assert_int_equal(S.drains, 1);
    assert_int_equal(W->pool.used, 1);
    S.idle = true;
    assert_int_equal(send(fd, "x", 1, 0), 1); /* served: not cut by the drain */
    assert_int_equal(read_all(fd, out, sizeof(out), &eof), 1);
    assert_false(eof);
    assert_int_equal(W->pool.used, 1); /* idle, but not quiet long enough yet */
    usleep((CONN_DRAIN_QUIET_MS + 100) * 1000);
    conn_drain(c); /* the worker's tick, while it stops */
    assert_int_equal(read_all(fd, out, sizeof(out), &eof), 0);
    assert_true(eof);
    run(5);
    assert_int_equal(W->pool.used, 0);
    close(fd);
    /* idle from the start: still given the quiet time, then closed */
    fd = open_conn(&c);
    conn_drain(c);
    assert_int_equal(S.drains, 2);
    run(2);
    assert_int_equal(W->pool.used, 1);
    usleep((CONN_DRAIN_QUIET_MS + 100) * 1000);
    conn_drain(c);
    assert_int_equal(read_all(fd, out, sizeof(out), &eof), 0);
    assert_true(eof);
    run(5);
    assert_int_equal(W->pool.used, 0);
    close(fd);
}

static void test_pool_full_503(void **state)
{
    struct conn *a, *b;
    int fa, fb, sv[2];
    char out[512];
    ssize_t n;

    (void)state;
    fa = open_conn(&a);
    fb = open_conn(&b);
    assert_int_equal(W->pool.used, 2);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    conn_accept(W, sv[1], &stub_mode); /* the pool holds 2: answered and closed */
    n = recv(sv[0], out, sizeof(out) - 1, 0);
    assert_true(n > 0);
    out[n] = '\0';
    assert_true(strncmp(out, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
    assert_non_null(strstr(out, "\r\nProxy-Status: mitmd; error=connection_limit_reached"));
    assert_int_equal(recv(sv[0], out, sizeof(out), 0), 0); /* then closed */
    close(sv[0]);
    conn_close(a);
    conn_close(b);
    run(10);
    assert_int_equal(W->pool.used, 0);
    close(fa);
    close(fb);
}

int main(void)
{
    struct ring probe;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_byte_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_after_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watermark_and_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_full_503, setup, teardown),
    };

    if (ring_open(&probe, 8) != 0)
        return 77; /* no io_uring here */
    ring_close(&probe);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
