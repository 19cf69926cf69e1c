/* test_board.c - the accept board: shared between processes, the defer rule, bad sizes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shared/board.h"

static void test_defer_rule(void **state)
{
    (void)state;
    struct board_slot *b;
    int fd;

    assert_int_equal(board_create(3, &fd, &b), 0);
    /* Nobody alive but me: never defer, however many connections I hold. */
    board_set_alive(b, 0, true);
    board_publish(b, 0, 100);
    assert_false(board_should_defer(b, 3, 0));
    board_set_alive(b, 1, true);
    board_publish(b, 0, 3);
    board_publish(b, 1, 1);
    assert_true(board_should_defer(b, 3, 0));  /* 3 > 1 + slack */
    assert_false(board_should_defer(b, 3, 1)); /* the least loaded accepts */
    board_publish(b, 0, 1 + BOARD_SLACK);
    assert_false(board_should_defer(b, 3, 0)); /* within the slack */
    /* A dead slot does not count, whatever it last published. */
    board_publish(b, 0, 5);
    board_publish(b, 1, 5);
    board_set_alive(b, 2, true);
    board_publish(b, 2, 0);
    assert_true(board_should_defer(b, 3, 0));
    board_set_alive(b, 2, false);
    assert_int_equal(atomic_load(&b[2].active), 0);
    assert_false(board_should_defer(b, 3, 0));
    board_unmap(b, 3);
    close(fd);
}

/* What a worker publishes through its own mapping is what the other processes see. */
static void test_shared_between_processes(void **state)
{
    (void)state;
    struct board_slot *b;
    int fd, status;
    pid_t pid;

    assert_int_equal(board_create(2, &fd, &b), 0);
    board_set_alive(b, 0, true);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct board_slot *mine;

        if (board_map(fd, 2, &mine) != 0)
            _exit(1);
        board_set_alive(mine, 1, true);
        board_publish(mine, 1, 7);
        _exit(board_should_defer(mine, 2, 1) ? 0 : 2); /* 7 > 0 + slack */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(atomic_load(&b[1].alive), 1);
    assert_int_equal(atomic_load(&b[1].active), 7);
    assert_false(board_should_defer(b, 2, 0));
    board_unmap(b, 2);
    close(fd);
}

static void test_bad_sizes(void **state)
{
    (void)state;
    struct board_slot *b;
    int fd;

    assert_int_equal(board_create(0, &fd, &b), -EINVAL);
    assert_int_equal(board_create(BOARD_MAX_SLOTS + 1, &fd, &b), -EINVAL);
    assert_int_equal(board_create(2, &fd, &b), 0);
    board_unmap(b, 2);
    assert_int_equal(board_map(fd, 3, &b), -EINVAL); /* the file holds 2 slots */
    assert_int_equal(board_map(-1, 2, &b), -EBADF);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defer_rule),
        cmocka_unit_test(test_shared_between_processes),
        cmocka_unit_test(test_bad_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
