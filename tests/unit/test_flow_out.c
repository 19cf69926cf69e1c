/* test_flow_out.c - worker/flow_out: every record becomes exactly one whole console line and
 * one whole JSON line, in order, written through the ring; when the writers fall behind,
 * records are dropped and counted instead of blocking or growing. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker/flow_out.h"
#include "worker/ring.h"

static void make_flow(struct flow *f, int i)
{
    char url[64];

    flow_init(f);
    flow_begin(f);
    snprintf(url, sizeof(url), "https://example.test/item/%d", i);
    flow_str_set(f, &f->method, "GET", 3);
    flow_str_set(f, &f->url, url, strlen(url));
    flow_str_set(f, &f->req_version, "HTTP/1.1", 8);
    flow_str_set(f, &f->resp_version, "HTTP/1.1", 8);
    flow_str_set(f, &f->reason, "OK", 2);
    f->status = 200;
}

static size_t count_char(const char *s, size_t n, char ch)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        k += s[i] == ch;
    return k;
}

static void test_lines_in_order(void **state)
{
    char path[] = "/tmp/test_flow_out_XXXXXX";
    static struct flow f;
    static struct flow_out o;
    static char got[1 << 20];
    struct ring ring;
    const char *why = NULL;
    int pipefd[2], fd;
    ssize_t n;
    char want[64];

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path); /* flow_out creates it (O_CREAT) */
    assert_int_equal(pipe2(pipefd, O_NONBLOCK), 0);
    assert_int_equal(ring_open(&ring, 64), 0);
    assert_int_equal(flow_out_init(&o, &ring, pipefd[1], path, &why), 0);
    for (int i = 0; i < 20; i++) {
        make_flow(&f, i);
        assert_int_equal(flow_out_record(&o, &f), 0);
    }
    for (int i = 0; i < 100 && !flow_out_is_idle(&o); i++)
        ring_run(&ring, 20);
    assert_true(flow_out_is_idle(&o));
    assert_int_equal(o.dropped, 0);
    assert_int_equal(o.written, 40);

    n = read(pipefd[0], got, sizeof(got));
    assert_true(n > 0);
    assert_int_equal(count_char(got, (size_t)n, '\n'), 20);
    assert_non_null(strstr(got, "GET https://example.test/item/0 HTTP/1.1 << 200 OK"));
    assert_true(strstr(got, "/item/3 ") < strstr(got, "/item/4 ")); /* in order */

    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    n = read(fd, got, sizeof(got));
    close(fd);
    assert_true(n > 0);
    assert_int_equal(count_char(got, (size_t)n, '\n'), 20);
    for (int i = 0; i < 20; i++) {
        snprintf(want, sizeof(want), "\"url\":\"https://example.test/item/%d\"", i);
        assert_non_null(strstr(got, want));
    }
    assert_int_equal(got[0], '{');

    flow_out_dispose(&o);
    ring_close(&ring);
    close(pipefd[0]);
    close(pipefd[1]);
    unlink(path);
}

static void test_drop_when_behind(void **state)
{
    static struct flow f;
    static struct flow_out o;
    struct ring ring;
    const char *why = NULL;
    int pipefd[2], accepted = 0, dropped = 0;

    (void)state;
    assert_int_equal(pipe2(pipefd, O_NONBLOCK), 0);
    assert_int_equal(ring_open(&ring, 64), 0);
    assert_int_equal(flow_out_init(&o, &ring, pipefd[1], NULL, &why), 0);
    make_flow(&f, 1);
    /* nobody reads the pipe and the loop does not run: the slots fill up */
    for (int i = 0; i < FLOW_OUT_SLOTS * 2; i++) {
        int err = flow_out_record(&o, &f);

        if (err == 0)
            accepted++;
        else {
            assert_int_equal(err, -ENOBUFS);
            dropped++;
        }
    }
    assert_int_equal(accepted, FLOW_OUT_SLOTS);
    assert_int_equal(dropped, FLOW_OUT_SLOTS);
    assert_int_equal(o.dropped, FLOW_OUT_SLOTS);
    flow_out_dispose(&o);
    ring_close(&ring);
    close(pipefd[0]);
    close(pipefd[1]);
}

static void test_bad_path(void **state)
{
    static struct flow_out o;
    struct ring ring;
    const char *why = NULL;

    (void)state;
    assert_int_equal(ring_open(&ring, 8), 0);
    assert_true(flow_out_init(&o, &ring, -1, "/nonexistent-dir/flows.jsonl", &why) < 0);
    assert_non_null(why);
    ring_close(&ring);
}

/* Issue 10 item 7: the -w file holds decrypted cookies and tokens; a file mitmd creates is
 * 0600 whatever the umask (it was 0644). */
static void test_created_file_is_private(void **state)
{
    static struct flow_out o;
    struct ring ring;
    const char *why = NULL;
    char dir[] = "/tmp/mitmd-test-flowout-XXXXXX", path[64];
    struct stat st;
    mode_t old = umask(0);

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/flows.jsonl", dir);
    assert_int_equal(ring_open(&ring, 8), 0);
    assert_int_equal(flow_out_init(&o, &ring, -1, path, &why), 0);
    umask(old);
    assert_int_equal(stat(path, &st), 0);
    if ((st.st_mode & 07777) != 0600)
        fail_msg("flow file created with mode %04o, want 0600", (unsigned)(st.st_mode & 07777));
    flow_out_dispose(&o);
    ring_close(&ring);
    unlink(path);
    rmdir(dir);
}

/* "/dev/fd/N" and "/proc/self/fd/N" use the descriptor the master opened and passed (the
 * worker may not be allowed to open the path itself): records land in that file even when
 * its path is gone; a read-only or closed descriptor is refused. */
static void test_inherited_descriptor(void **state)
{
    static struct flow_out o;
    static const char *const forms[] = {"/dev/fd/%d", "/proc/self/fd/%d"};
    struct ring ring;
    struct flow f;
    char path[] = "/tmp/mitmd-test-flowfd-XXXXXX", name[64], buf[4096];
    const char *why = NULL;

    (void)state;
    assert_int_equal(ring_open(&ring, 8), 0);
    for (size_t k = 0; k < 2; k++) {
        int fd, rd;
        ssize_t n;

        memcpy(path + sizeof(path) - 7, "XXXXXX", 6);
        fd = mkstemp(path);
        assert_true(fd >= 0);
        rd = open(path, O_RDONLY);
        assert_true(rd >= 0);
        unlink(path); /* nobody can open it by path any more */
        snprintf(name, sizeof(name), forms[k], fd);
        assert_int_equal(flow_out_init(&o, &ring, -1, name, &why), 0);
        assert_true(o.streams[1].fd != fd); /* a duplicate, owned by flow_out */
        make_flow(&f, (int)k);
        assert_int_equal(flow_out_record(&o, &f), 0);
        for (int i = 0; i < 100 && !flow_out_is_idle(&o); i++)
            ring_run(&ring, 10);
        flow_out_dispose(&o);
        n = read(rd, buf, sizeof(buf) - 1);
        assert_true(n > 0);
        buf[n] = '\0';
        assert_non_null(strstr(buf, "example.test/item/"));
        assert_int_equal(count_char(buf, (size_t)n, '\n'), 1);
        /* read-only descriptors cannot carry records */
        snprintf(name, sizeof(name), forms[k], rd);
        assert_int_equal(flow_out_init(&o, &ring, -1, name, &why), -EBADF);
        close(rd);
        close(fd);
        assert_true(flow_out_init(&o, &ring, -1, name, &why) < 0); /* closed */
    }
    ring_close(&ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_in_order),
        cmocka_unit_test(test_drop_when_behind),
        cmocka_unit_test(test_bad_path),
        cmocka_unit_test(test_created_file_is_private),
        cmocka_unit_test(test_inherited_descriptor),
    };
    struct ring probe;

    if (ring_open(&probe, 4) != 0)
        return 77;
    ring_close(&probe);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
