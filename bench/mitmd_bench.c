/* mitmd_bench.c - main of mitmd-bench, the HTTPS load generator for mitmd.
 * Owns process setup: options, signals, the shared SSL_CTX and body filler, starting and
 * joining one mb_loop thread per -t, merging their stats and printing the summaries. The
 * only global is the stop flag the signal handler sets. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench/mb_conn.h"
#include "bench/mb_loop.h"
#include "bench/mb_opts.h"
#include "bench/mb_replay.h"
#include "bench/mb_report.h"
#include "bench/mb_stats.h"

#define MB_BODY_CHUNK_MAX 16384

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int setup_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN; /* BoringSSL writes with write(2): a reset peer must not kill us */
    if (sigaction(SIGPIPE, &sa, NULL) == -1)
        return -errno;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) == -1 || sigaction(SIGTERM, &sa, NULL) == -1)
        return -errno;
    return 0;
}

/* raise_nofile lifts the soft descriptor limit towards the hard one so that -c sockets fit;
 * if it cannot, the connects that do not fit fail and are counted. */
static void raise_nofile(unsigned connections)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)connections + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        fprintf(stderr, "mitmd-bench: warning: only %llu file descriptors for %u connections\n",
                (unsigned long long)rl.rlim_cur, connections);
}

static int new_session_cb(SSL *ssl, SSL_SESSION *session)
{
    return mb_conn_new_session(ssl, session);
}

/* make_ssl_ctx builds the client context shared by all threads. Returns NULL with a
 * message printed on failure. */
static SSL_CTX *make_ssl_ctx(const struct mb_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        goto out_err;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        goto out_free;
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o->insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (o->cafile != NULL) {
            if (SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1) {
                fprintf(stderr, "mitmd-bench: cannot load CA file '%s': %s\n", o->cafile,
                        ERR_reason_error_string(ERR_peek_last_error()));
                goto out_free_quiet;
            }
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            goto out_free;
        }
    }
    if (o->resume) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
        SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    return ctx;
out_free:
    fprintf(stderr, "mitmd-bench: TLS setup failed: %s\n",
            ERR_reason_error_string(ERR_peek_last_error()));
out_free_quiet:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
out_err:
    fprintf(stderr, "mitmd-bench: SSL_CTX_new failed\n");
    return NULL;
}

static int write_json_file(const char *path, const char *json)
{
    FILE *f = fopen(path, "w");
    int err = 0;

    if (f == NULL)
        return -errno;
    if (fprintf(f, "%s\n", json) < 0)
        err = -EIO;
    if (fclose(f) != 0 && err == 0)
        err = -errno;
    return err;
}

/* run_replay is main for --replay (bench/mb_replay.h): load, send, report as for the
 * synthetic load. Returns the exit status. */
static int run_replay(const struct mb_opts *o, SSL_CTX *ctx)
{
    struct mb_replay rp;
    struct mb_stats *total = malloc(sizeof(*total));
    char err[512], json[MB_REPORT_JSON_MAX];
    uint64_t measured_ns = 0;
    int rc, status = 1;

    if (total == NULL || mb_replay_load(o->replay, &rp, err, sizeof(err)) != 0) {
        fprintf(stderr, "mitmd-bench: %s\n", total == NULL ? "out of memory" : err);
        free(total);
        return 1;
    }
    fprintf(stderr, "mitmd-bench: replaying %zu requests from %s (%zu lines, %zu skipped, %zu "
            "bodies cut by save_bodies) over %u connections, %s\n", rp.n, o->replay, rp.lines,
            rp.skipped, rp.cut_bodies, o->connections,
            o->rate > 0 ? "at --rate" : o->speed > 0 ? "at the recorded pace x --speed"
                                                     : "as fast as possible");
    rc = mb_replay_run(o, ctx, &rp, &stop_flag, total, &measured_ns);
    if (rc != 0)
        fprintf(stderr, "mitmd-bench: replay threads: %s\n", strerror(-rc));
    mb_report_text(stdout, o, total, measured_ns);
    if (mb_report_json(o, total, measured_ns, json, sizeof(json)) >= 0) {
        printf("%s\n", json);
        if (o->json_path != NULL && write_json_file(o->json_path, json) != 0)
            fprintf(stderr, "mitmd-bench: cannot write %s\n", o->json_path);
    }
    fflush(stdout);
    status = rc == 0 && total->errors == 0 && total->requests == rp.n ? 0 : 1;
    mb_replay_free(&rp);
    free(total);
    return status;
}

int main(int argc, char **argv)
{
    struct mb_opts opts;
    struct mb_loop *loops = NULL;
    struct mb_stats *total = NULL;
    SSL_CTX *ctx = NULL;
    uint8_t *body = NULL;
    size_t body_chunk;
    char err[512];
    char json[MB_REPORT_JSON_MAX];
    uint64_t start_ns, measured_ns = 0;
    unsigned started = 0, gave_up = 0;
    uint64_t gave_up_ns = 0;
    char gave_up_why[MB_STATS_ERROR_MAX] = "";
    int rc, status = 1;

    if (mb_opts_parse(&opts, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "mitmd-bench: %s (see --help)\n", err);
        return 2;
    }
    if (opts.help) {
        mb_opts_usage(stdout);
        return 0;
    }
    rc = setup_signals();
    if (rc != 0) {
        fprintf(stderr, "mitmd-bench: sigaction: %s\n", strerror(-rc));
        return 1;
    }
    raise_nofile(opts.connections);
    ctx = make_ssl_ctx(&opts);
    if (ctx == NULL)
        goto out;
    if (opts.replay != NULL) {
        status = run_replay(&opts, ctx);
        goto out;
    }
    body_chunk = opts.body_size < MB_BODY_CHUNK_MAX ? (size_t)opts.body_size : MB_BODY_CHUNK_MAX;
    body = malloc(body_chunk + 1);
    loops = calloc(opts.threads, sizeof(*loops));
    total = malloc(sizeof(*total));
    if (body == NULL || loops == NULL || total == NULL) {
        fprintf(stderr, "mitmd-bench: out of memory\n");
        goto out;
    }
    memset(body, 'x', body_chunk + 1);

    start_ns = mb_now_ns();
    for (; started < opts.threads; started++) {
        rc = mb_loop_init(&loops[started], &opts, ctx, body, body_chunk, started, opts.threads,
                          start_ns, &stop_flag);
        if (rc != 0) {
            fprintf(stderr, "mitmd-bench: thread %u setup: %s\n", started, strerror(-rc));
            goto out_stop;
        }
        rc = pthread_create(&loops[started].thread, NULL, mb_loop_run, &loops[started]);
        if (rc != 0) {
            mb_loop_dispose(&loops[started]);
            fprintf(stderr, "mitmd-bench: pthread_create: %s\n", strerror(rc));
            goto out_stop;
        }
    }

    mb_stats_init(total);
    for (unsigned i = 0; i < started; i++) {
        pthread_join(loops[i].thread, NULL);
        if (loops[i].err != 0)
            fprintf(stderr, "mitmd-bench: thread %u: epoll: %s\n", i, strerror(-loops[i].err));
        mb_stats_merge(total, &loops[i].stats);
        if (mb_loop_measured_ns(&loops[i]) > measured_ns)
            measured_ns = mb_loop_measured_ns(&loops[i]);
        if (loops[i].gave_up) {
            gave_up++;
            if (loops[i].stop_ns - start_ns > gave_up_ns)
                gave_up_ns = loops[i].stop_ns - start_ns;
            memcpy(gave_up_why, loops[i].env.setup_why, sizeof(gave_up_why));
        }
        mb_loop_dispose(&loops[i]);
    }
    started = 0;

    if (gave_up != 0 && total->requests == 0) {
        /* Nothing to report: one line, and the JSON file for a script that asked for it. */
        if (opts.json_path != NULL &&
            mb_report_json(&opts, total, measured_ns, json, sizeof(json)) >= 0)
            (void)write_json_file(opts.json_path, json);
        fprintf(stderr,
                "mitmd-bench: %s; gave up after %d tries in %.1f s (pauses of %llu ms doubling "
                "to %llu ms)\n",
                gave_up_why[0] != '\0' ? gave_up_why : "no connection succeeded",
                MB_LOOP_CONNECT_ROUNDS, (double)gave_up_ns / 1e9,
                MB_LOOP_BACKOFF_MIN_NS / 1000000ull,
                (unsigned long long)(mb_loop_backoff_ns(MB_LOOP_CONNECT_ROUNDS - 1) / 1000000ull));
        goto out;
    }
    if (gave_up != 0)
        fprintf(stderr, "mitmd-bench: stopped early: %s; %d tries in a row failed\n", gave_up_why,
                MB_LOOP_CONNECT_ROUNDS);
    mb_report_text(stdout, &opts, total, measured_ns);
    rc = mb_report_json(&opts, total, measured_ns, json, sizeof(json));
    if (rc < 0) {
        fprintf(stderr, "mitmd-bench: JSON summary does not fit\n");
        goto out;
    }
    printf("%s\n", json);
    fflush(stdout);
    if (opts.json_path != NULL) {
        rc = write_json_file(opts.json_path, json);
        if (rc != 0) {
            fprintf(stderr, "mitmd-bench: cannot write %s: %s\n", opts.json_path, strerror(-rc));
            goto out;
        }
    }
    /* An interrupted run (SIGINT) still reports, and its numbers are valid. */
    status = total->errors == 0 && total->requests > 0 ? 0 : 1;
    goto out;

out_stop:
    stop_flag = 1;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(loops[i].thread, NULL);
        mb_loop_dispose(&loops[i]);
    }
out:
    free(total);
    free(loops);
    free(body);
    SSL_CTX_free(ctx);
    return status;
}
