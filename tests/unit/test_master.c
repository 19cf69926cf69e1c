/* test_master.c - the master loop's reading of worker sockets (master.c is included to reach
 * its static functions, STYLE.md; forge_service.c too, to fill a reply queue by hand): one worker flooding certificate requests cannot starve
 * the others (issue 10 item 10), READY marks a worker set up, and a worker whose reply
 * queue is full is not read. Workers are socketpairs; nothing is forged. */
#include "master/forge_service.c"
#include "master/master.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define T_WORKERS 5

struct fixture {
    struct master m;
    int peer[T_WORKERS]; /* the workers' ends */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    int listen_fds[T_WORKERS];
    static char *argv[] = {"mitmd", NULL};

    if (f == NULL)
        return -1;
    for (int i = 0; i < T_WORKERS; i++)
        listen_fds[i] = -1;
    supervise_init(&f->m.sup, T_WORKERS, listen_fds, -1, -1, NULL, 1, argv, NULL, 0);
    f->m.batch = calloc(FORGE_SERVICE_BATCH, sizeof(*f->m.batch));
    if (f->m.batch == NULL || forge_service_init(&f->m.fs, NULL, NULL) != 0)
        return -1;
    for (int i = 0; i < T_WORKERS; i++) {
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
            return -1;
        f->m.sup.slots[i].ipc_fd = sv[0];
        f->peer[i] = sv[1];
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    for (int i = 0; i < T_WORKERS; i++) {
        close(f->m.sup.slots[i].ipc_fd);
        close(f->peer[i]);
    }
    forge_service_dispose(&f->m.fs);
    free(f->m.batch);
    free(f);
    return 0;
}

/* send_reqs makes worker `w` send up to `n` certificate requests, as many as its socket
 * takes without blocking. Returns how many it sent. */
static int send_reqs(struct fixture *f, int w, int n)
{
    const char *names[] = {"fair.test"};
    uint8_t out[MSG_CERT_REQ_MAX];
    int i;

    for (i = 0; i < n; i++) {
        ssize_t len = msgcodec_encode_cert_req(out, sizeof(out), (uint64_t)i + 1, names, 1, NULL);

        assert_true(len > 0);
        if (send(f->peer[w], out, (size_t)len, MSG_DONTWAIT) != len)
            break;
    }
    return i;
}

/* count_by_slot counts the batch's requests per worker. */
static void count_by_slot(const struct fixture *f, size_t nbatch, int *count)
{
    memset(count, 0, sizeof(int) * T_WORKERS);
    for (size_t i = 0; i < nbatch; i++)
        count[f->m.batch[i].slot]++;
}

/* One worker floods (its socket full of requests), the others have a few each: one turn reads the
 * others' requests too, and the flooder gets at most its budget. Before the fix the master
 * read the first readable socket until the batch was full: 64 of worker 0's, none else. */
static void test_flooding_worker_does_not_starve_others(void **state)
{
    struct fixture *f = *state;
    bool readable[2 * T_WORKERS] = {false};
    int count[T_WORKERS];
    size_t nbatch;

    assert_true(send_reqs(f, 0, 500) > FORGE_SERVICE_BATCH);
    for (int w = 1; w < T_WORKERS; w++)
        assert_int_equal(send_reqs(f, w, 3), 3);
    for (int w = 0; w < T_WORKERS; w++)
        readable[w] = true;
    nbatch = master_collect(&f->m, readable);
    count_by_slot(f, nbatch, count);
    assert_true(count[0] <= MASTER_READ_BUDGET);
    for (int w = 1; w < T_WORKERS; w++)
        if (count[w] != 3)
            fail_msg("worker %d: %d of its 3 requests read in the turn (flooder: %d)", w,
                     count[w], count[0]);
}

/* Every worker floods: over many turns, each gets the same share within one budget. */
static void test_round_robin_shares_evenly(void **state)
{
    struct fixture *f = *state;
    bool readable[2 * T_WORKERS] = {false};
    int count[T_WORKERS], total[T_WORKERS] = {0};

    for (int w = 0; w < T_WORKERS; w++) {
        assert_true(send_reqs(f, w, 200) >= 100);
        readable[w] = true;
    }
    for (int turn = 0; turn < 6; turn++) { /* 6 x 64 reads < 5 x 100 queued */
        size_t nbatch = master_collect(&f->m, readable);

        assert_int_equal(nbatch, FORGE_SERVICE_BATCH);
        count_by_slot(f, nbatch, count);
        for (int w = 0; w < T_WORKERS; w++)
            total[w] += count[w];
    }
    for (int w = 1; w < T_WORKERS; w++) {
        int d = total[w] - total[0];

        if (d > MASTER_READ_BUDGET || d < -MASTER_READ_BUDGET)
            fail_msg("worker %d read %d times, worker 0 %d times", w, total[w], total[0]);
    }
}

/* READY (and the first STATS or CERT_REQ) marks a worker set up; a backlogged worker (its
 * reply queue is full) is not read. */
static void test_ready_and_backlog(void **state)
{
    struct fixture *f = *state;
    bool readable[2 * T_WORKERS] = {true, true, false, false, false};
    uint8_t ready[sizeof(struct msg_hdr)];
    uint8_t dummy[8] = {0};
    size_t nbatch;

    assert_int_equal(msgcodec_encode_ready(ready, sizeof(ready)), sizeof(ready));
    assert_int_equal(send(f->peer[0], ready, sizeof(ready), 0), sizeof(ready));
    assert_false(f->m.sup.slots[0].ready);
    /* fill worker 1's reply queue by hand */
    for (int i = 0; i < FORGE_SERVICE_QUEUE_MAX; i++)
        assert_int_equal(forge_service_enqueue(&f->m.fs, 1, dummy, sizeof(dummy)), 0);
    assert_int_equal(send_reqs(f, 1, 2), 2);
    nbatch = master_collect(&f->m, readable);
    assert_int_equal(nbatch, 0);
    assert_true(f->m.sup.slots[0].ready);
    assert_false(f->m.sup.slots[1].ready); /* not read at all */
    forge_service_forget(&f->m.fs, 1);
    nbatch = master_collect(&f->m, readable);
    assert_int_equal(nbatch, 2);
    assert_true(f->m.sup.slots[1].ready);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flooding_worker_does_not_starve_others, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_round_robin_shares_evenly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_and_backlog, setup, teardown),
    };

    log_setup("test", LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
