/* test_memfd_copy.c - shared/memfd_copy: the copy has the file's bytes and every seal (a
 * write, a truncate and a new seal fail), a file over the limit, a directory and a missing
 * file are refused with the stage NULL, and memfd_sealed_bytes seals what it is given. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "shared/memfd_copy.h"

#define SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* check_sealed asserts that `fd` holds exactly `want`/`n` and cannot be changed. */
static void check_sealed(int fd, const uint8_t *want, size_t n)
{
    uint8_t got[70000];

    assert_true(n <= sizeof(got));
    assert_int_equal(pread(fd, got, sizeof(got), 0), (ssize_t)n);
    assert_memory_equal(got, want, n);
    assert_int_equal(fcntl(fd, F_GET_SEALS) & SEALS, SEALS);
    assert_int_equal(pwrite(fd, "x", 1, 0), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(ftruncate(fd, (off_t)n + 1), -1); /* F_SEAL_GROW */
    if (n > 0)
        assert_int_equal(ftruncate(fd, 0), -1); /* F_SEAL_SHRINK */
    assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

static void test_copy(void **state)
{
    char dir[] = "/tmp/test_memfd_copy.XXXXXX", path[64];
    static uint8_t data[70000]; /* over one read buffer */
    const char *stage = "unset";
    FILE *f;
    int fd;

    (void)state;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/file", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, sizeof(data), f), sizeof(data));
    fclose(f);

    fd = memfd_copy("test", path, sizeof(data), &stage);
    assert_true(fd >= 0);
    check_sealed(fd, data, sizeof(data));
    close(fd);

    assert_int_equal(memfd_copy("test", path, sizeof(data) - 1, &stage), -EINVAL);
    assert_null(stage);
    assert_int_equal(memfd_copy("test", dir, 1 << 20, &stage), -EINVAL);
    assert_null(stage);
    unlink(path);
    assert_int_equal(memfd_copy("test", path, 1 << 20, &stage), -ENOENT);
    assert_null(stage);
    rmdir(dir);

    fd = memfd_sealed_bytes("test", data, 100);
    assert_true(fd >= 0);
    check_sealed(fd, data, 100);
    close(fd);
    fd = memfd_sealed_bytes("test", data, 0);
    assert_true(fd >= 0);
    check_sealed(fd, data, 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_copy)};

    return cmocka_run_group_tests(tests, NULL, NULL);
}
