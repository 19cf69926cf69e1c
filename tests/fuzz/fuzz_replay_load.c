/* fuzz_replay_load.c - libFuzzer target for server replay: the input is a -S recording (JSON
 * Lines, master/replay_load.c builds the index from it), the index is then mapped and
 * checked as a worker does (worker/replay.c replay_open), and every recorded request is
 * looked up again. Invariants: a recording either builds an index that a worker accepts or
 * is refused with a reason; the counts add up; a request taken from a record that was
 * indexed matches (with reuse), and its answer lies inside the mapping. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "master/replay_load.h"
#include "worker/flow.h"
#include "worker/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const probes[][2] = {{"GET", "https://a.test/x?y=1"},
                                            {"POST", "http://b.test:8080/"}};
    struct config cfg;
    struct replay_load_stats st;
    struct replay *rp = NULL;
    char path[64], err[512] = "";
    const char *why = NULL;
    int in, fd;

    memset(&cfg, 0, sizeof(cfg));
    cfg.server_replay_reuse = size > 0 && (data[0] & 1);
    in = memfd_create("fuzz-recording", MFD_CLOEXEC);
    if (in < 0 || write(in, data, size) != (ssize_t)size) {
        if (in >= 0)
            close(in);
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", in);
    fd = replay_load_build(&cfg, path, &st, err, sizeof(err));
    close(in);
    if (fd < 0) {
        if (err[0] == '\0')
            __builtin_trap(); /* a refusal has a reason */
        return 0;
    }
    if (st.entries + st.no_response + st.cut_bodies + st.bad_lines > st.lines ||
        st.keys > st.entries)
        __builtin_trap();
    snprintf(path, sizeof(path), "/dev/fd/%d", fd);
    if (replay_open(path, &cfg, &rp, &why) != 0) {
        fprintf(stderr, "the worker refused the master's index: %s\n", why);
        __builtin_trap(); /* the master's index must be accepted */
    }
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        static struct flow f;
        struct replay_answer a;

        flow_init(&f);
        flow_begin(&f);
        flow_str_set(&f, &f.method, probes[i][0], strlen(probes[i][0]));
        flow_str_set(&f, &f.url, probes[i][1], strlen(probes[i][1]));
        if (replay_match(rp, &f, NULL, 0, &a) == REPLAY_ANSWER &&
            !(a.entry->h1_len >= a.entry->body_len && f.status >= 100))
            __builtin_trap();
    }
    replay_close(rp);
    close(fd);
    return 0;
}
