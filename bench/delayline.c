/* delayline.c - a userspace TCP delay line for long-path tests on kernels without netem: it
 * accepts on a loopback port, connects each client to one target, and forwards every chunk in
 * both directions after a one-way delay (and, optionally, through a rate limit: the chunk
 * queues behind the ones before it as on a link of that rate, then travels for the delay).
 * Used by bench/longpath.sh and tests/integration/longpath; single-threaded, poll-driven; a
 * direction buffers at most DL_QUEUE_MAX bytes (then stops reading: TCP backpressure).
 *
 *   delayline -t HOST:PORT -d MS [-p PORT] [-r MBYTES_PER_S]
 *
 * Prints "listening PORT" on stdout once ready; runs until killed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DL_MAX_PAIRS 64
#define DL_READ_SIZE 65536
#define DL_QUEUE_MAX ((size_t)64 << 20)

struct dl_chunk {
    struct dl_chunk *next;
    uint64_t release_ns;
    size_t len, off;
    uint8_t data[];
};

/* struct dl_dir is one direction of a pair: bytes read from `in`, queued, written to `out`. */
struct dl_dir {
    int in, out;
    struct dl_chunk *head, *tail;
    size_t queued;
    uint64_t link_free_ns; /* rate limit: when the modelled link is next idle */
    uint64_t eof_ns;       /* `in` ended: shut `out` down at this time (0 = not ended) */
    int eof_done;
};

struct dl_pair {
    int used;
    struct dl_dir dir[2];
};

struct dl_opts {
    struct sockaddr_in target;
    uint64_t delay_ns;
    double rate; /* bytes per second; 0 = unlimited */
    int port;
};

static uint64_t dl_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int dl_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fl == -1 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int dl_parse_args(int argc, char **argv, struct dl_opts *o)
{
    int c;
    char host[256];
    const char *colon;

    memset(o, 0, sizeof(*o));
    host[0] = '\0';
    while ((c = getopt(argc, argv, "t:d:p:r:")) != -1) {
        switch (c) {
        case 't':
            colon = strrchr(optarg, ':');
            if (colon == NULL || (size_t)(colon - optarg) >= sizeof(host))
                return -1;
            memcpy(host, optarg, (size_t)(colon - optarg));
            host[colon - optarg] = '\0';
            o->target.sin_family = AF_INET;
            o->target.sin_port = htons((uint16_t)atoi(colon + 1));
            if (inet_pton(AF_INET, host, &o->target.sin_addr) != 1)
                return -1;
            break;
        case 'd':
            o->delay_ns = (uint64_t)(atof(optarg) * 1e6);
            break;
        case 'p':
            o->port = atoi(optarg);
            break;
        case 'r':
            o->rate = atof(optarg) * 1e6;
            break;
        default:
            return -1;
        }
    }
    return host[0] == '\0' ? -1 : 0;
}

static void dl_dir_free(struct dl_dir *d)
{
    while (d->head != NULL) {
        struct dl_chunk *k = d->head;

        d->head = k->next;
        free(k);
    }
    d->tail = NULL;
    d->queued = 0;
}

static void dl_pair_close(struct dl_pair *p)
{
    close(p->dir[0].in);
    close(p->dir[0].out);
    dl_dir_free(&p->dir[0]);
    dl_dir_free(&p->dir[1]);
    memset(p, 0, sizeof(*p));
}

/* dl_read reads one chunk from d->in and queues it with its release time. Returns -1 on a
 * broken connection. */
static int dl_read(struct dl_dir *d, const struct dl_opts *o)
{
    struct dl_chunk *k = malloc(sizeof(*k) + DL_READ_SIZE);
    ssize_t n;
    uint64_t now, at;

    if (k == NULL)
        return -1;
    n = read(d->in, k->data, DL_READ_SIZE);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        free(k);
        return 0;
    }
    now = dl_now_ns();
    at = now;
    if (o->rate > 0 && n > 0) {
        uint64_t start = d->link_free_ns > now ? d->link_free_ns : now;

        d->link_free_ns = start + (uint64_t)((double)n * 1e9 / o->rate);
        at = d->link_free_ns;
    } else if (d->link_free_ns > now) {
        at = d->link_free_ns;
    }
    if (n <= 0) { /* EOF or reset: pass the end on after what is queued */
        free(k);
        d->eof_ns = at + o->delay_ns;
        return 0;
    }
    k->next = NULL;
    k->len = (size_t)n;
    k->off = 0;
    k->release_ns = at + o->delay_ns;
    if (d->tail != NULL)
        d->tail->next = k;
    else
        d->head = k;
    d->tail = k;
    d->queued += (size_t)n;
    return 0;
}

/* dl_write writes the chunks whose time came. Returns -1 when `out` broke. */
static int dl_write(struct dl_dir *d, uint64_t now)
{
    while (d->head != NULL && d->head->release_ns <= now) {
        struct dl_chunk *k = d->head;
        ssize_t n = write(d->out, k->data + k->off, k->len - k->off);

        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        k->off += (size_t)n;
        d->queued -= (size_t)n;
        if (k->off < k->len)
            return 0;
        d->head = k->next;
        if (d->head == NULL)
            d->tail = NULL;
        free(k);
    }
    if (d->head == NULL && d->eof_ns != 0 && !d->eof_done && d->eof_ns <= now) {
        shutdown(d->out, SHUT_WR);
        d->eof_done = 1;
    }
    return 0;
}

static void dl_accept(int lfd, struct dl_pair *pairs, const struct dl_opts *o)
{
    int a = accept(lfd, NULL, NULL), b;
    int i;

    if (a == -1)
        return;
    b = socket(AF_INET, SOCK_STREAM, 0);
    if (b == -1 || connect(b, (const struct sockaddr *)&o->target, sizeof(o->target)) != 0) {
        close(a);
        if (b != -1)
            close(b);
        return;
    }
    for (i = 0; i < DL_MAX_PAIRS && pairs[i].used; i++)
        ;
    if (i == DL_MAX_PAIRS || dl_set_nonblock(a) != 0 || dl_set_nonblock(b) != 0) {
        close(a);
        close(b);
        return;
    }
    memset(&pairs[i], 0, sizeof(pairs[i]));
    pairs[i].used = 1;
    pairs[i].dir[0].in = a;
    pairs[i].dir[0].out = b;
    pairs[i].dir[1].in = b;
    pairs[i].dir[1].out = a;
}

static int dl_listen(const struct dl_opts *o)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    socklen_t len = sizeof(sa);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd == -1)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        close(fd);
        return -1;
    }
    printf("listening %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    return fd;
}

int main(int argc, char **argv)
{
    static struct dl_pair pairs[DL_MAX_PAIRS];
    struct pollfd pfd[1 + 2 * DL_MAX_PAIRS];
    int owner[1 + 2 * DL_MAX_PAIRS];
    struct dl_opts o;
    int lfd;

    if (dl_parse_args(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: delayline -t IPV4:PORT -d MS [-p PORT] [-r MBYTES_PER_S]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    lfd = dl_listen(&o);
    if (lfd == -1) {
        perror("delayline: listen");
        return 1;
    }
    for (;;) {
        uint64_t now = dl_now_ns(), next = UINT64_MAX;
        struct timespec ts, *tsp = NULL;
        int n = 1;

        pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int i = 0; i < DL_MAX_PAIRS; i++) {
            if (!pairs[i].used)
                continue;
            for (int k = 0; k < 2; k++) {
                struct dl_dir *d = &pairs[i].dir[k];
                short ev = 0;

                if (d->eof_ns == 0 && d->queued < DL_QUEUE_MAX)
                    ev |= POLLIN;
                if (d->head != NULL && d->head->release_ns <= now)
                    ev |= POLLOUT; /* d->out is polled under d->in's slot: see below */
                else if (d->head != NULL && d->head->release_ns < next)
                    next = d->head->release_ns;
                if (d->head == NULL && d->eof_ns != 0 && !d->eof_done && d->eof_ns < next)
                    next = d->eof_ns;
                pfd[n] = (struct pollfd){.fd = d->in, .events = (short)(ev & POLLIN)};
                owner[n++] = i * 2 + k;
                pfd[n] = (struct pollfd){.fd = d->out, .events = (short)(ev & POLLOUT)};
                owner[n++] = i * 2 + k;
            }
        }
        if (next != UINT64_MAX) {
            uint64_t wait = next > now ? next - now : 0;

            ts.tv_sec = (time_t)(wait / 1000000000ull);
            ts.tv_nsec = (long)(wait % 1000000000ull);
            tsp = &ts;
        }
        if (ppoll(pfd, (nfds_t)n, tsp, NULL) == -1 && errno != EINTR)
            return 1;
        if (pfd[0].revents & POLLIN)
            dl_accept(lfd, pairs, &o);
        for (int j = 1; j < n; j += 2) {
            struct dl_pair *p = &pairs[owner[j] / 2];
            struct dl_dir *d = &p->dir[owner[j] % 2];

            if (!p->used)
                continue;
            if ((pfd[j].revents & (POLLIN | POLLHUP | POLLERR)) && d->eof_ns == 0 &&
                dl_read(d, &o) != 0) {
                dl_pair_close(p);
                continue;
            }
            if (dl_write(d, dl_now_ns()) != 0) {
                dl_pair_close(p);
                continue;
            }
            if (p->dir[0].eof_done && p->dir[1].eof_done)
                dl_pair_close(p);
        }
    }
}
