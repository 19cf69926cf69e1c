/* mb_loop.c - one mitmd-bench thread's event loop and request schedule.
 * Owns the ready/retry/again lists, warm-up and stop rules, and the open-loop clock. Runs on
 * its own thread; touches no other thread's data. Never allocates after mb_loop_init. */
#include "bench/mb_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define MB_LOOP_EVENTS 256
#define MB_LOOP_SCAN_NS (100ull * 1000000ull) /* timeout scan period */
#define MB_LOOP_RETRY_NS (1ull * 1000000ull)  /* pause before retrying a failed start */

/* share splits `total` over `n` parts; part `i` gets the remainder first. */
static uint64_t share(uint64_t total, unsigned n, unsigned i)
{
    return total / n + (i < total % n ? 1 : 0);
}

int mb_loop_init(struct mb_loop *l, const struct mb_opts *o, SSL_CTX *ctx, const uint8_t *body,
                 size_t body_chunk, unsigned id, unsigned nthreads, uint64_t start_ns,
                 const volatile sig_atomic_t *stop)
{
    int err;

    memset(l, 0, sizeof(*l));
    l->env.epfd = -1;
    l->id = id;
    l->nthreads = nthreads;
    l->opts = o;
    l->stop = stop;
    l->nconns = (unsigned)share(o->connections, nthreads, id);
    mb_stats_init(&l->stats);
    l->env.opts = o;
    l->env.ssl_ctx = ctx;
    l->env.body = body;
    l->env.body_chunk = body_chunk;
    l->env.stats = &l->stats;
    l->env.host_base = id;
    l->env.host_stride = nthreads;

    l->conns = calloc(l->nconns, sizeof(*l->conns));
    l->ready = calloc(l->nconns, sizeof(*l->ready));
    l->retry = calloc(l->nconns, sizeof(*l->retry));
    l->again = calloc(2 * (size_t)l->nconns, sizeof(*l->again));
    if (l->conns == NULL || l->ready == NULL || l->retry == NULL || l->again == NULL) {
        err = -ENOMEM;
        goto out_free;
    }
    l->env.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->env.epfd == -1) {
        err = -errno;
        goto out_free;
    }
    for (unsigned i = 0; i < l->nconns; i++) {
        err = mb_conn_init(&l->conns[i], &l->env, i);
        l->conns_inited = i + 1;
        if (err != 0)
            goto out_free;
        l->conns[i].queued = true;
        l->ready[l->nready++] = &l->conns[i];
    }
    l->have_quota = o->requests != 0;
    l->quota = share(o->requests, nthreads, id);
    l->start_ns = start_ns;
    l->measure_ns = start_ns + o->warmup_ns;
    l->end_ns = o->duration_ns != 0 ? l->measure_ns + o->duration_ns : 0;
    if (o->rate > 0)
        l->interval_ns = 1e9 * nthreads / o->rate;
    return 0;
out_free:
    mb_loop_dispose(l);
    return err;
}

void mb_loop_dispose(struct mb_loop *l)
{
    if (l->conns != NULL) {
        for (unsigned i = 0; i < l->conns_inited; i++)
            mb_conn_dispose(&l->conns[i]);
    }
    l->conns_inited = 0;
    SSL_SESSION_free(l->env.session);
    l->env.session = NULL;
    if (l->env.epfd != -1)
        close(l->env.epfd);
    l->env.epfd = -1;
    free(l->conns);
    free(l->ready);
    free(l->retry);
    free(l->again);
    l->conns = NULL;
    l->ready = l->retry = l->again = NULL;
}

uint64_t mb_loop_measured_ns(const struct mb_loop *l)
{
    if (l->measure_start_ns == 0 || l->stop_ns < l->measure_start_ns)
        return 0;
    return l->stop_ns - l->measure_start_ns;
}

uint64_t mb_loop_backoff_ns(unsigned round)
{
    uint64_t ns = MB_LOOP_BACKOFF_MIN_NS;

    for (unsigned i = 1; i < round && ns < MB_LOOP_BACKOFF_MAX_NS; i++)
        ns *= 2;
    return ns < MB_LOOP_BACKOFF_MAX_NS ? ns : MB_LOOP_BACKOFF_MAX_NS;
}

/* check_connects updates the backoff from the connection set-ups that ended since the last
 * call: any completed handshake ends it; failures after the pause (the probe's, or a first
 * batch's) start the next round. Failures that arrive while paused belong to the round
 * already counted. */
static void check_connects(struct mb_loop *l, uint64_t now)
{
    bool failed = l->env.setup_failed != l->seen_failed;

    l->seen_failed = l->env.setup_failed;
    if (l->env.setup_ok != l->seen_ok) {
        l->seen_ok = l->env.setup_ok;
        l->backoff_round = 0;
        l->backoff_until_ns = 0;
        l->probing = false;
        return;
    }
    if (!failed || (l->backoff_round > 0 && !l->probing && now < l->backoff_until_ns))
        return;
    if (l->backoff_round == 0)
        l->backoff_start_ns = now;
    l->backoff_round++;
    l->probing = false;
    if (l->backoff_round >= MB_LOOP_CONNECT_ROUNDS) {
        l->gave_up = true;
        return;
    }
    l->backoff_until_ns = now + mb_loop_backoff_ns(l->backoff_round);
}

/* connect_held: while backing off, a closed connection may not open a socket: none before
 * the pause ends, then one probe at a time. */
static bool connect_held(const struct mb_loop *l, uint64_t now)
{
    return l->backoff_round > 0 && (l->probing || now < l->backoff_until_ns);
}

static bool quota_reached(const struct mb_loop *l)
{
    return l->have_quota && l->stats.recording && l->issued >= l->quota;
}

/* intended_ns is when the open loop's next request should go out. Threads are phased so
 * that their schedules interleave. */
static uint64_t intended_ns(const struct mb_loop *l)
{
    double off = l->interval_ns * ((double)l->next_seq + (double)l->id / l->nthreads);

    return l->start_ns + (uint64_t)off;
}

/* drive runs a connection and files it on the lists its new state calls for. */
static void drive(struct mb_loop *l, struct mb_conn *c, uint32_t events, uint64_t now)
{
    bool again = mb_conn_drive(c, events, now);

    if (again && !c->again_queued) {
        c->again_queued = true;
        l->again[l->nagain++] = c;
    }
    if (mb_conn_is_ready(c) && !c->queued) {
        c->queued = true;
        l->ready[l->nready++] = c;
    }
}

/* issue hands the next request to a ready connection. */
static void issue(struct mb_loop *l, uint64_t start_ns, uint64_t now)
{
    struct mb_conn *c = l->ready[--l->nready];

    c->queued = false;
    if (l->stats.recording)
        l->issued++;
    if (mb_conn_issue(c, start_ns, now) != 0) {
        c->queued = true; /* stays closed; back on `ready` after a pause */
        l->retry[l->nretry++] = c;
        return;
    }
    drive(l, c, 0, now);
}

static void dispatch(struct mb_loop *l, uint64_t now)
{
    /* At most one pass over the request slots that were ready on entry, so a connection
     * that fails at once cannot keep this loop from returning to epoll. */
    uint64_t budget = (uint64_t)l->nready * l->opts->streams;

    while (budget-- > 0 && l->nready > 0 && !quota_reached(l)) {
        struct mb_conn *c = l->ready[l->nready - 1];

        if (mb_conn_is_closed(c) && connect_held(l, now)) {
            l->nready--; /* parked: back on `ready` with the retries */
            l->retry[l->nretry++] = c;
            continue;
        }
        if (mb_conn_is_closed(c) && l->backoff_round > 0)
            l->probing = true; /* this one opens; the others wait for its outcome */
        if (l->opts->rate > 0) {
            uint64_t due = intended_ns(l);

            if (due > now)
                break;
            l->next_seq++;
            issue(l, due, now); /* latency counts from `due`, even if it was late */
        } else {
            issue(l, now, now);
        }
    }
}

static void drive_again(struct mb_loop *l, uint64_t now)
{
    unsigned n = l->nagain;

    /* Entries [0, n) are this pass; drive() appends re-queued connections after them (the
     * list has room for 2 * nconns), and those move to the front for the next pass. */
    for (unsigned i = 0; i < n; i++) {
        struct mb_conn *c = l->again[i];

        c->again_queued = false;
        drive(l, c, EPOLLIN | EPOLLOUT, now);
    }
    memmove(l->again, l->again + n, (l->nagain - n) * sizeof(*l->again));
    l->nagain -= n;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* wait_ns is how long epoll may sleep before something is due. */
static uint64_t wait_ns(const struct mb_loop *l, uint64_t now, uint64_t next_scan)
{
    uint64_t w = next_scan > now ? next_scan - now : 0;

    if (l->nagain > 0)
        return 0;
    if (l->nready > 0 && !quota_reached(l)) {
        if (l->opts->rate <= 0)
            return 0;
        w = min_u64(w, intended_ns(l) > now ? intended_ns(l) - now : 0);
    }
    if (l->nretry > 0 && l->backoff_round > 0 && !l->probing)
        w = min_u64(w, l->backoff_until_ns > now ? l->backoff_until_ns - now : 0);
    else if (l->nretry > 0 && l->backoff_round == 0)
        w = min_u64(w, MB_LOOP_RETRY_NS);
    if (!l->stats.recording)
        w = min_u64(w, l->measure_ns > now ? l->measure_ns - now : 0);
    if (l->end_ns != 0)
        w = min_u64(w, l->end_ns > now ? l->end_ns - now : 0);
    return w;
}

static int wait_events(struct mb_loop *l, struct epoll_event *ev, uint64_t ns)
{
    int n;

    if (!l->no_pwait2) {
        struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
                              .tv_nsec = (long)(ns % 1000000000ull)};

        n = epoll_pwait2(l->env.epfd, ev, MB_LOOP_EVENTS, &ts, NULL);
        if (n != -1 || errno != ENOSYS)
            return n;
        l->no_pwait2 = true;
    }
    return epoll_wait(l->env.epfd, ev, MB_LOOP_EVENTS, (int)((ns + 999999ull) / 1000000ull));
}

/* all_idle: no connection has a request in flight (checked only once -n is reached). */
static bool all_idle(const struct mb_loop *l)
{
    for (unsigned i = 0; i < l->nconns; i++)
        if (!mb_conn_is_idle(&l->conns[i]))
            return false;
    return true;
}

void *mb_loop_run(void *arg)
{
    struct mb_loop *l = arg;
    struct epoll_event ev[MB_LOOP_EVENTS];
    uint64_t now = mb_now_ns(), next_scan = now + MB_LOOP_SCAN_NS;

    for (;;) {
        int n;

        now = mb_now_ns();
        if (!l->stats.recording && now >= l->measure_ns) {
            l->stats.recording = true;
            l->measure_start_ns = now;
        }
        if (*l->stop != 0 || (l->end_ns != 0 && now >= l->end_ns))
            break;
        if (quota_reached(l) && all_idle(l))
            break;
        check_connects(l, now);
        if (l->gave_up)
            break;
        while (l->nretry > 0)
            l->ready[l->nready++] = l->retry[--l->nretry];
        dispatch(l, now);
        drive_again(l, now);

        n = wait_events(l, ev, wait_ns(l, now, next_scan));
        if (n == -1) {
            if (errno == EINTR)
                continue;
            l->err = -errno;
            break;
        }
        now = mb_now_ns();
        for (int i = 0; i < n; i++)
            drive(l, ev[i].data.ptr, ev[i].events, now);
        if (now >= next_scan) {
            for (unsigned i = 0; i < l->nconns; i++) {
                struct mb_conn *c = &l->conns[i];

                if (mb_conn_check_timeout(c, now) && !c->queued) {
                    c->queued = true;
                    l->ready[l->nready++] = c;
                }
            }
            next_scan = now + MB_LOOP_SCAN_NS;
        }
    }
    l->stop_ns = now;
    for (unsigned i = 0; i < l->nconns; i++)
        mb_conn_close(&l->conns[i]);
    return NULL;
}
