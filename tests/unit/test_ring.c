/* test_ring.c - worker/ring: ops through a real io_uring complete once each, carry their
 * result, keep the owner's inflight count, and can be cancelled. Skips (77) without
 * io_uring. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker/ring.h"

struct seen {
    struct ring_op op;
    int calls;
    int res;
    uint32_t flags;
};

static void on_done(struct ring_op *op, int res, uint32_t flags)
{
    struct seen *s = (struct seen *)((char *)op - offsetof(struct seen, op));

    s->calls++;
    s->res = res;
    s->flags = flags;
}

static struct ring R;

static int setup(void **state)
{
    (void)state;
    return ring_open(&R, 64) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ring_close(&R);
    return 0;
}

/* run_until waits until `s` completed (bounded). */
static void run_until(struct seen *s, int calls)
{
    for (int i = 0; i < 100 && s->calls < calls; i++)
        assert_true(ring_run(&R, 50) >= 0);
    assert_int_equal(s->calls, calls);
}

static void test_send_recv(void **state)
{
    int sv[2];
    char buf[16];
    struct seen tx, rx;
    unsigned fake;

    (void)state;
    memset(&fake, 0, sizeof(fake));
    memset(&tx, 0, sizeof(tx));
    memset(&rx, 0, sizeof(rx));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ring_op_init(&tx.op, on_done, &fake);
    ring_op_init(&rx.op, on_done, &fake);
    assert_int_equal(ring_submit_recv(&R, &rx.op, sv[1], buf, sizeof(buf)), 0);
    assert_int_equal(ring_submit_send(&R, &tx.op, sv[0], "hello", 5), 0);
    assert_int_equal(fake, 2);                                    /* counted on submit */
    assert_int_equal(ring_submit_recv(&R, &rx.op, sv[1], buf, 1), -EBUSY); /* armed once */
    run_until(&tx, 1);
    run_until(&rx, 1);
    assert_int_equal(tx.res, 5);
    assert_int_equal(rx.res, 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(fake, 0); /* released on completion */
    assert_false(rx.op.armed);

    /* EOF is a completion with 0 */
    close(sv[0]);
    assert_int_equal(ring_submit_recv(&R, &rx.op, sv[1], buf, sizeof(buf)), 0);
    run_until(&rx, 2);
    assert_int_equal(rx.res, 0);
    close(sv[1]);
}

static void test_timeout_and_nop(void **state)
{
    struct seen t, n;

    (void)state;
    memset(&t, 0, sizeof(t));
    memset(&n, 0, sizeof(n));
    ring_op_init(&t.op, on_done, NULL);
    ring_op_init(&n.op, on_done, NULL);
    assert_int_equal(ring_submit_timeout(&R, &t.op, 20), 0);
    assert_int_equal(ring_submit_nop(&R, &n.op), 0);
    run_until(&n, 1);
    assert_int_equal(n.res, 0);
    run_until(&t, 1);
    assert_int_equal(t.res, -ETIME);
}

/* scribble overwrites a large stack area, as the loop's later calls do. */
static __attribute__((noinline)) void scribble(void)
{
    volatile char junk[4096];

    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)0xff;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A timeout prepared but not yet submitted must still have its interval when the kernel
 * consumes the SQE later (the interval once lived on ring_submit_timeout's stack). */
static void test_timeout_submitted_later(void **state)
{
    struct seen t;
    uint64_t t0;

    (void)state;
    memset(&t, 0, sizeof(t));
    ring_op_init(&t.op, on_done, NULL);
    t0 = now_ms();
    assert_int_equal(ring_submit_timeout(&R, &t.op, 60), 0);
    scribble();
    run_until(&t, 1);
    assert_int_equal(t.res, -ETIME);
    assert_true(now_ms() - t0 >= 50);
    assert_true(now_ms() - t0 < 2000);
}

static void test_cancel(void **state)
{
    int sv[2];
    char buf[4];
    struct seen rx, cancel;
    unsigned fake;

    (void)state;
    memset(&fake, 0, sizeof(fake));
    memset(&rx, 0, sizeof(rx));
    memset(&cancel, 0, sizeof(cancel));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ring_op_init(&rx.op, on_done, &fake);
    ring_op_init(&cancel.op, on_done, &fake);
    assert_int_equal(ring_submit_recv(&R, &rx.op, sv[1], buf, sizeof(buf)), 0);
    assert_int_equal(ring_flush(&R), 0);
    assert_int_equal(ring_submit_cancel_fd(&R, &cancel.op, sv[1]), 0);
    run_until(&rx, 1);
    run_until(&cancel, 1);
    assert_int_equal(rx.res, -ECANCELED);
    assert_int_equal(fake, 0); /* a conn may be freed now */

    /* cancelling an op that is not armed is a no-op that never completes */
    assert_int_equal(ring_submit_cancel(&R, &cancel.op, &rx.op), 0);
    assert_false(cancel.op.armed);
    close(sv[0]);
    close(sv[1]);
}

static void test_accept(void **state)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int l, c1, c2;
    struct seen acc;

    (void)state;
    memset(&acc, 0, sizeof(acc));
    l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(l >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 8), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&ss, &sl), 0);
    ring_op_init(&acc.op, on_done, NULL);
    assert_int_equal(ring_submit_accept(&R, &acc.op, l), 0);
    c1 = socket(AF_INET, SOCK_STREAM, 0);
    c2 = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c1, (struct sockaddr *)&ss, sl), 0);
    run_until(&acc, 1);
    assert_true(acc.res >= 0);
    assert_false(acc.flags & IORING_CQE_F_MORE); /* one connection per accept */
    assert_false(acc.op.armed);
    close(acc.res);
    assert_int_equal(connect(c2, (struct sockaddr *)&ss, sl), 0);
    assert_int_equal(ring_submit_accept(&R, &acc.op, l), 0); /* re-armed: the next one */
    run_until(&acc, 2);
    assert_true(acc.res >= 0);
    close(acc.res);
    close(c1);
    close(c2);
    close(l);
    for (int i = 0; i < 20 && acc.op.armed; i++)
        ring_run(&R, 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_recv),
        cmocka_unit_test(test_timeout_and_nop),
        cmocka_unit_test(test_timeout_submitted_later),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_accept),
    };
    struct ring probe;

    if (ring_open(&probe, 4) != 0)
        return 77; /* no io_uring here */
    ring_close(&probe);
    return cmocka_run_group_tests(tests, setup, teardown);
}
