/* h2peer.c - scripted HTTP/2 peer for mitmd's h2 integration tests: a client (CONNECT through
 * the proxy, TLS with ALPN h2, N streams, optional reset or upload, JSON report on stdout) and
 * a TLS h2 origin (/bytes/N, /drip/N, POST /sha256, optional GOAWAY after K streams; one
 * event line per happening in a log file). Test tool only: blocks in poll(), exits on error. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#define H2PEER_MAX_STREAMS 1024
#define H2PEER_OUT_MAX (64 * 1024) /* serialised frames held before TLS takes them */
#define H2PEER_DRIP_CHUNK 1000     /* /drip/N: N chunks of this size, one per DRIP_MS */
#define H2PEER_DRIP_MS 50

/* Byte i of every generated body (/bytes/N, uploads): tests recompute it in Python as
 * bytes(range(251)) repeated. */
static uint8_t h2peer_pattern(uint64_t i) { return (uint8_t)(i % 251); }

static uint64_t h2peer_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void h2peer_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "h2peer: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static void h2peer_hex(const uint8_t *md, char out[2 * SHA256_DIGEST_LENGTH + 1])
{
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- one TLS connection driven by nghttp2, non-blocking ----------------------------------- */

struct h2peer_stream {
    int32_t id;
    int status;
    uint64_t bytes; /* response body bytes received (client) / request body (server) */
    SHA256_CTX sha;
    bool closed;
    bool reset_sent; /* client: we reset it */
    bool reset_recv; /* RST_STREAM received */
    uint32_t close_code;
    char path[256];
    /* what we send: generated body of `send_len` bytes, or `send_buf` */
    uint64_t send_len, send_off;
    char send_buf[160];
    size_t send_buf_len;
    bool send_is_buf;
    uint64_t drip_left; /* server /drip: chunks still to send */
    uint64_t drip_next_ms;
    bool deferred;
};

struct h2peer_conn {
    int fd;
    SSL *ssl;
    nghttp2_session *s;
    uint8_t out[H2PEER_OUT_MAX + 16384];
    size_t out_len, out_off;
    bool eof;
    struct h2peer_stream *streams;
    size_t nstreams, cap;
    /* client */
    int reset_index; /* -1: none; else reset the stream with this index after its headers */
    bool goaway_recv;
    int32_t goaway_last;
    uint32_t goaway_code;
    /* server */
    FILE *log;
    unsigned conn_no;
    int goaway_after; /* 0: never */
    unsigned requests;
    bool goaway_sent;
};

static struct h2peer_stream *h2peer_find(struct h2peer_conn *c, int32_t id)
{
    for (size_t i = 0; i < c->nstreams; i++)
        if (c->streams[i].id == id)
            return &c->streams[i];
    return NULL;
}

static struct h2peer_stream *h2peer_add(struct h2peer_conn *c, int32_t id)
{
    if (c->nstreams == c->cap)
        return NULL;
    struct h2peer_stream *st = &c->streams[c->nstreams++];
    memset(st, 0, sizeof(*st));
    st->id = id;
    SHA256_Init(&st->sha);
    return st;
}

static void h2peer_log(struct h2peer_conn *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    if (c->log == NULL)
        return;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    /* one write per line on an O_APPEND file: lines of forked connections never mix */
    if (write(fileno(c->log), line, (size_t)n) != n)
        return;
}

static ssize_t h2peer_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                                uint32_t *flags, nghttp2_data_source *src, void *arg)
{
    struct h2peer_conn *c = arg;
    struct h2peer_stream *st = src->ptr;
    (void)s;
    (void)id;
    if (st->send_is_buf) {
        size_t n = st->send_buf_len - st->send_off;
        if (n > len)
            n = len;
        memcpy(buf, st->send_buf + st->send_off, n);
        st->send_off += n;
        if (st->send_off == st->send_buf_len)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    if (st->drip_left > 0) {
        /* /drip: one chunk per tick, deferred in between */
        if (h2peer_now_ms() < st->drip_next_ms) {
            st->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
        size_t n = H2PEER_DRIP_CHUNK < len ? H2PEER_DRIP_CHUNK : len;
        for (size_t i = 0; i < n; i++)
            buf[i] = h2peer_pattern(st->send_off + i);
        st->send_off += n;
        st->drip_left--;
        st->drip_next_ms = h2peer_now_ms() + H2PEER_DRIP_MS;
        if (st->drip_left == 0)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        (void)c;
        return (ssize_t)n;
    }
    uint64_t left = st->send_len - st->send_off;
    size_t n = left < len ? (size_t)left : len;
    for (size_t i = 0; i < n; i++)
        buf[i] = h2peer_pattern(st->send_off + i);
    st->send_off += n;
    if (st->send_off == st->send_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* h2peer_pump moves bytes: TLS -> nghttp2, nghttp2 -> TLS. Returns false once the connection
 * is over (EOF, error, or nghttp2 wants neither reading nor writing). */
static bool h2peer_pump(struct h2peer_conn *c, int timeout_ms)
{
    /* refill the output buffer from nghttp2 */
    while (c->out_len < H2PEER_OUT_MAX) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->s, &data);
        if (n < 0)
            h2peer_die("nghttp2_session_mem_send: %s", nghttp2_strerror((int)n));
        if (n == 0)
            break;
        if (c->out_off > 0) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        if ((size_t)n > sizeof(c->out) - c->out_len)
            h2peer_die("frame larger than the output buffer");
        memcpy(c->out + c->out_len, data, (size_t)n);
        c->out_len += (size_t)n;
    }
    while (c->out_off < c->out_len) {
        int n = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                break;
            c->eof = true;
            return false;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;

    bool want_r = nghttp2_session_want_read(c->s);
    bool want_w = nghttp2_session_want_write(c->s) || c->out_len > 0;
    if (!want_r && !want_w)
        return false;
    if (c->eof)
        return false;

    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (c->out_len > 0)
        p.events |= POLLOUT;
    if (SSL_pending(c->ssl) == 0 && poll(&p, 1, timeout_ms) == -1 && errno != EINTR)
        h2peer_die("poll: %s", strerror(errno));
    for (int budget = 0; budget < 64; budget++) {
        uint8_t buf[16384];
        int n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                break;
            c->eof = true;
            return false;
        }
        ssize_t r = nghttp2_session_mem_recv(c->s, buf, (size_t)n);
        if (r < 0) {
            fprintf(stderr, "h2peer: nghttp2_session_mem_recv: %s\n", nghttp2_strerror((int)r));
            c->eof = true;
            return false;
        }
    }
    /* resume deferred /drip streams whose tick came */
    uint64_t now = h2peer_now_ms();
    for (size_t i = 0; i < c->nstreams; i++) {
        struct h2peer_stream *st = &c->streams[i];
        if (st->deferred && !st->closed && now >= st->drip_next_ms) {
            st->deferred = false;
            nghttp2_session_resume_data(c->s, st->id);
        }
    }
    return true;
}

static int h2peer_on_close(nghttp2_session *s, int32_t id, uint32_t code, void *arg)
{
    struct h2peer_conn *c = arg;
    struct h2peer_stream *st = h2peer_find(c, id);
    (void)s;
    if (st == NULL)
        return 0;
    st->closed = true;
    st->close_code = code;
    h2peer_log(c, "close conn=%u id=%d code=%u bytes=%llu", c->conn_no, id, code,
               (unsigned long long)st->bytes);
    return 0;
}

static int h2peer_on_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                           size_t len, void *arg)
{
    struct h2peer_conn *c = arg;
    struct h2peer_stream *st = h2peer_find(c, id);
    (void)s;
    (void)flags;
    if (st == NULL)
        return 0;
    st->bytes += len;
    SHA256_Update(&st->sha, data, len);
    return 0;
}

/* ---- server ------------------------------------------------------------------------------- */

static int h2peer_srv_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                                size_t namelen, const uint8_t *value, size_t valuelen,
                                uint8_t flags, void *arg)
{
    struct h2peer_conn *c = arg;
    struct h2peer_stream *st = h2peer_find(c, f->hd.stream_id);
    (void)s;
    (void)flags;
    if (st != NULL && namelen == 5 && memcmp(name, ":path", 5) == 0 &&
        valuelen < sizeof(st->path)) {
        memcpy(st->path, value, valuelen);
        st->path[valuelen] = '\0';
    }
    return 0;
}

static int h2peer_srv_on_begin(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
    struct h2peer_conn *c = arg;
    (void)s;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST &&
        h2peer_add(c, f->hd.stream_id) == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static void h2peer_srv_respond(struct h2peer_conn *c, struct h2peer_stream *st)
{
    char status[4] = "200", len[24];
    nghttp2_nv nv[3];
    size_t nnv = 0;
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = h2peer_read_body};
    const char *ctype = "application/octet-stream";
    unsigned long long n;

    if (sscanf(st->path, "/bytes/%llu", &n) == 1) {
        st->send_len = n;
        snprintf(len, sizeof(len), "%llu", n);
    } else if (sscanf(st->path, "/drip/%llu", &n) == 1 && n > 0) {
        st->drip_left = n;
        st->drip_next_ms = 0;
        snprintf(len, sizeof(len), "%llu", n * H2PEER_DRIP_CHUNK);
    } else if (strcmp(st->path, "/sha256") == 0) {
        uint8_t md[SHA256_DIGEST_LENGTH];
        char hex[2 * SHA256_DIGEST_LENGTH + 1];
        SHA256_Final(md, &st->sha);
        h2peer_hex(md, hex);
        st->send_buf_len = (size_t)snprintf(st->send_buf, sizeof(st->send_buf),
                                            "{\"sha256\": \"%s\", \"length\": %llu}", hex,
                                            (unsigned long long)st->bytes);
        st->send_is_buf = true;
        ctype = "application/json";
        snprintf(len, sizeof(len), "%zu", st->send_buf_len);
    } else {
        memcpy(status, "404", 4);
        st->send_is_buf = true;
        st->send_buf_len = (size_t)snprintf(st->send_buf, sizeof(st->send_buf), "not found\n");
        snprintf(len, sizeof(len), "%zu", st->send_buf_len);
    }
    nv[nnv++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, 0};
    nv[nnv++] = (nghttp2_nv){(uint8_t *)"content-type", (uint8_t *)ctype, 12, strlen(ctype), 0};
    nv[nnv++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)len, 14, strlen(len), 0};
    if (nghttp2_submit_response(c->s, st->id, nv, nnv, &dp) != 0)
        h2peer_die("nghttp2_submit_response failed");
}

static int h2peer_srv_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
    struct h2peer_conn *c = arg;
    struct h2peer_stream *st = h2peer_find(c, f->hd.stream_id);
    (void)s;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        if (st == NULL || f->headers.cat != NGHTTP2_HCAT_REQUEST)
            break;
        c->requests++;
        h2peer_log(c, "request conn=%u id=%d path=%s", c->conn_no, st->id, st->path);
        if (c->goaway_after > 0 && !c->goaway_sent && c->requests >= (unsigned)c->goaway_after) {
            /* RFC 9113 §6.8: streams up to last_stream_id still complete */
            if (nghttp2_submit_goaway(c->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR, NULL, 0) !=
                0)
                h2peer_die("nghttp2_submit_goaway failed");
            c->goaway_sent = true;
            h2peer_log(c, "goaway-sent conn=%u last=%d", c->conn_no, st->id);
        }
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            h2peer_srv_respond(c, st);
        break;
    case NGHTTP2_DATA:
        if (st != NULL && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            h2peer_srv_respond(c, st);
        break;
    case NGHTTP2_RST_STREAM:
        if (st != NULL)
            st->reset_recv = true;
        h2peer_log(c, "rst-recv conn=%u id=%d code=%u path=%s", c->conn_no, f->hd.stream_id,
                   f->rst_stream.error_code, st != NULL ? st->path : "?");
        break;
    case NGHTTP2_GOAWAY:
        h2peer_log(c, "goaway-recv conn=%u last=%d code=%u", c->conn_no, f->goaway.last_stream_id,
                   f->goaway.error_code);
        break;
    default:
        break;
    }
    return 0;
}

static int h2peer_alpn_select(SSL *ssl, const uint8_t **out, uint8_t *outlen, const uint8_t *in,
                              unsigned inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned i = 0; i < inlen;) {
        unsigned l = in[i];
        if (i + 1 + l > inlen)
            break;
        if (l == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + l;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL; /* an h2-only origin */
}

static void h2peer_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
        h2peer_die("fcntl: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* h2peer_handshake runs the TLS handshake on a non-blocking socket. */
static bool h2peer_handshake(SSL *ssl, int fd, int timeout_ms)
{
    uint64_t end = h2peer_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int r = SSL_do_handshake(ssl);
        if (r == 1)
            return true;
        int e = SSL_get_error(ssl, r);
        struct pollfd p = {.fd = fd};
        if (e == SSL_ERROR_WANT_READ)
            p.events = POLLIN;
        else if (e == SSL_ERROR_WANT_WRITE)
            p.events = POLLOUT;
        else
            return false;
        uint64_t now = h2peer_now_ms();
        if (now >= end || poll(&p, 1, (int)(end - now)) <= 0)
            return false;
    }
}

/* h2peer_serve_conn serves one connection; `window` > 0 is the receive window (stream and
 * connection) it advertises instead of nghttp2's 64 KiB (an origin for long-path uploads). */
static void h2peer_serve_conn(SSL_CTX *ctx, int fd, unsigned conn_no, FILE *log, int goaway_after,
                              int32_t window)
{
    struct h2peer_stream *streams = calloc(H2PEER_MAX_STREAMS, sizeof(*streams));
    struct h2peer_conn *c = calloc(1, sizeof(*c));
    nghttp2_session_callbacks *cb;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)window}};

    if (c == NULL || streams == NULL)
        h2peer_die("out of memory");
    c->fd = fd;
    c->log = log;
    c->conn_no = conn_no;
    c->goaway_after = goaway_after;
    c->streams = streams;
    c->cap = H2PEER_MAX_STREAMS;
    h2peer_set_nonblock(fd);
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1)
        h2peer_die("SSL_new");
    SSL_set_accept_state(c->ssl);
    if (!h2peer_handshake(c->ssl, fd, 10000)) {
        h2peer_log(c, "handshake-failed conn=%u", conn_no);
        return;
    }
    h2peer_log(c, "conn-open conn=%u", conn_no);
    if (nghttp2_session_callbacks_new(&cb) != 0)
        h2peer_die("nghttp2_session_callbacks_new");
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2peer_srv_on_begin);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2peer_srv_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2peer_srv_on_frame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2peer_on_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2peer_on_close);
    if (nghttp2_session_server_new(&c->s, cb, c) != 0)
        h2peer_die("nghttp2_session_server_new");
    nghttp2_session_callbacks_del(cb);
    if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, window > 0 ? 2 : 1) != 0 ||
        (window > 0 && nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, window)))
        h2peer_die("nghttp2_submit_settings");
    while (h2peer_pump(c, H2PEER_DRIP_MS))
        ;
    h2peer_log(c, "conn-closed conn=%u requests=%u", conn_no, c->requests);
    nghttp2_session_del(c->s);
    SSL_free(c->ssl);
    close(fd);
    free(streams);
    free(c);
}

static int h2peer_server(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL, *logpath = NULL;
    int port = 0, goaway_after = 0;
    int32_t window = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc)
            cert = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            key = argv[++i];
        else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc)
            logpath = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--goaway-after") == 0 && i + 1 < argc)
            goaway_after = atoi(argv[++i]);
        else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc)
            window = atoi(argv[++i]);
        else
            h2peer_die("server: unknown argument %s", argv[i]);
    }
    if (cert == NULL || key == NULL || logpath == NULL)
        h2peer_die("server needs --cert, --key and --log");
    FILE *log = fopen(logpath, "a");
    if (log == NULL)
        h2peer_die("%s: %s", logpath, strerror(errno));
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        h2peer_die("cannot load %s / %s", cert, key);
    SSL_CTX_set_alpn_select_cb(ctx, h2peer_alpn_select, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t sl = sizeof(sa);
    int one = 1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd == -1 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(lfd, 1024) == -1 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) == -1)
        h2peer_die("listen: %s", strerror(errno));
    printf("listening %u\n", ntohs(sa.sin_port));
    fflush(stdout);
    signal(SIGCHLD, SIG_IGN); /* connection children are reaped by the kernel */
    for (unsigned conn_no = 1;; conn_no++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            h2peer_die("accept: %s", strerror(errno));
        }
        pid_t pid = fork();
        if (pid == -1)
            h2peer_die("fork: %s", strerror(errno));
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM); /* stopping the server stops its connections */
            close(lfd);
            h2peer_serve_conn(ctx, fd, conn_no, log, goaway_after, window);
            _exit(0);
        }
        close(fd);
    }
}

/* ---- client ------------------------------------------------------------------------------- */

static int h2peer_cli_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                                size_t namelen, const uint8_t *value, size_t valuelen,
                                uint8_t flags, void *arg)
{
    struct h2peer_conn *c = arg;
    struct h2peer_stream *st = h2peer_find(c, f->hd.stream_id);
    (void)s;
    (void)flags;
    if (st != NULL && namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen == 3)
        st->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    return 0;
}

static int h2peer_cli_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
    struct h2peer_conn *c = arg;
    struct h2peer_stream *st = h2peer_find(c, f->hd.stream_id);
    (void)s;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway_recv = true;
        c->goaway_last = f->goaway.last_stream_id;
        c->goaway_code = f->goaway.error_code;
    } else if (f->hd.type == NGHTTP2_RST_STREAM && st != NULL) {
        st->reset_recv = true;
    } else if (f->hd.type == NGHTTP2_HEADERS && st != NULL && c->reset_index >= 0 &&
               st == &c->streams[c->reset_index] && !st->reset_sent) {
        /* the client changes its mind once the response began */
        if (nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL) != 0)
            h2peer_die("nghttp2_submit_rst_stream failed");
        st->reset_sent = true;
    }
    return 0;
}

/* h2peer_cli_submit opens one request stream. A stream nghttp2 will not open (the peer sent
 * GOAWAY) is recorded as closed with REFUSED_STREAM and id 0: the client may retry it. */
static void h2peer_cli_submit(struct h2peer_conn *c, const char *method, const char *authority,
                              const char *path, bool have_upload, unsigned long long upload)
{
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)method, 7, strlen(method), 0},
        {(uint8_t *)":scheme", (uint8_t *)"https", 7, 5, 0},
        {(uint8_t *)":authority", (uint8_t *)authority, 10, strlen(authority), 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
    };
    struct h2peer_stream *st = &c->streams[c->nstreams];
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = h2peer_read_body};
    int32_t id = nghttp2_submit_request(c->s, NULL, nv, 4, have_upload ? &dp : NULL, NULL);
    if (id < 0 && id != NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE)
        h2peer_die("nghttp2_submit_request: %s", nghttp2_strerror(id));
    st = h2peer_add(c, id < 0 ? 0 : id);
    if (st == NULL)
        h2peer_die("too many streams");
    st->send_len = upload;
    snprintf(st->path, sizeof(st->path), "%s", path);
    if (id < 0) {
        st->closed = true;
        st->close_code = NGHTTP2_REFUSED_STREAM;
    }
}

static int h2peer_connect_tcp(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host))
        h2peer_die("bad address %s", hostport);
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
        h2peer_die("cannot resolve %s", hostport);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1 || connect(fd, ai->ai_addr, ai->ai_addrlen) == -1)
        h2peer_die("connect %s: %s", hostport, strerror(errno));
    freeaddrinfo(ai);
    return fd;
}

/* h2peer_connect_proxy sends CONNECT target and reads the answer head (blocking). */
static void h2peer_connect_proxy(int fd, const char *target)
{
    char req[600], head[4096];
    size_t len = 0;
    int n = snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target);
    if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n)
        h2peer_die("CONNECT write failed");
    while (len < sizeof(head) - 1) {
        ssize_t r = read(fd, head + len, 1); /* byte-wise: leave TLS bytes in the socket */
        if (r <= 0)
            h2peer_die("proxy closed before answering CONNECT");
        len++;
        head[len] = '\0';
        if (len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    if (strncmp(head, "HTTP/1.1 200", 12) != 0 && strncmp(head, "HTTP/1.0 200", 12) != 0)
        h2peer_die("CONNECT refused: %.80s", head);
}

static int h2peer_client(int argc, char **argv)
{
    const char *proxy = NULL, *target = NULL, *ca = NULL, *path = "/bytes/1000";
    const char *sni = NULL;
    int nstreams = 1, reset_index = -1, timeout_s = 15, stagger_ms = 0;
    unsigned long long upload = 0;
    bool have_upload = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--proxy") == 0 && i + 1 < argc)
            proxy = argv[++i];
        else if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc)
            target = argv[++i];
        else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc)
            ca = argv[++i];
        else if (strcmp(argv[i], "--path") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            nstreams = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reset") == 0 && i + 1 < argc)
            reset_index = atoi(argv[++i]);
        else if (strcmp(argv[i], "--upload") == 0 && i + 1 < argc) {
            upload = strtoull(argv[++i], NULL, 10);
            have_upload = true;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout_s = atoi(argv[++i]);
        else if (strcmp(argv[i], "--stagger") == 0 && i + 1 < argc)
            stagger_ms = atoi(argv[++i]);
        else
            h2peer_die("client: unknown argument %s", argv[i]);
    }
    if (proxy == NULL || target == NULL || ca == NULL)
        h2peer_die("client needs --proxy, --connect and --ca");
    if (nstreams < 1 || nstreams > H2PEER_MAX_STREAMS || reset_index >= nstreams)
        h2peer_die("bad -n / --reset");
    char authority[256];
    snprintf(authority, sizeof(authority), "%s", target);
    char host[256];
    snprintf(host, sizeof(host), "%s", target);
    char *colon = strrchr(host, ':');
    if (colon != NULL)
        *colon = '\0';
    sni = host;

    int fd = h2peer_connect_tcp(proxy);
    h2peer_connect_proxy(fd, target);
    h2peer_set_nonblock(fd);

    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    static const uint8_t alpn[] = {2, 'h', '2'};
    if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
        h2peer_die("cannot load CA %s", ca);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn)) != 0)
        h2peer_die("SSL_CTX_set_alpn_protos");
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_set_tlsext_host_name(ssl, sni) != 1 ||
        SSL_set1_host(ssl, sni) != 1)
        h2peer_die("SSL_new");
    SSL_set_connect_state(ssl);
    if (!h2peer_handshake(ssl, fd, 10000))
        h2peer_die("TLS handshake through the proxy failed");
    const uint8_t *proto;
    unsigned proto_len;
    SSL_get0_alpn_selected(ssl, &proto, &proto_len);
    if (proto_len != 2 || memcmp(proto, "h2", 2) != 0)
        h2peer_die("ALPN did not select h2");

    struct h2peer_conn *c = calloc(1, sizeof(*c));
    struct h2peer_stream *streams = calloc(H2PEER_MAX_STREAMS, sizeof(*streams));
    nghttp2_session_callbacks *cb;
    if (c == NULL || streams == NULL)
        h2peer_die("out of memory");
    c->fd = fd;
    c->ssl = ssl;
    c->streams = streams;
    c->cap = H2PEER_MAX_STREAMS;
    c->reset_index = reset_index;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        h2peer_die("nghttp2_session_callbacks_new");
    nghttp2_session_callbacks_set_on_header_callback(cb, h2peer_cli_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2peer_cli_on_frame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2peer_on_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2peer_on_close);
    if (nghttp2_session_client_new(&c->s, cb, c) != 0)
        h2peer_die("nghttp2_session_client_new");
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 1) != 0)
        h2peer_die("nghttp2_submit_settings");

    const char *method = have_upload ? "POST" : "GET";
    uint64_t start = h2peer_now_ms();
    int submitted = 0;
    uint64_t end = start + (uint64_t)timeout_s * 1000;
    bool timed_out = false;
    for (;;) {
        uint64_t now = h2peer_now_ms();
        while (submitted < nstreams && now >= start + (uint64_t)submitted * (uint64_t)stagger_ms) {
            h2peer_cli_submit(c, method, authority, path, have_upload, upload);
            submitted++;
        }
        size_t open = 0;
        for (size_t i = 0; i < c->nstreams; i++)
            open += !c->streams[i].closed;
        if (open == 0 && submitted == nstreams)
            break;
        if (now >= end) {
            timed_out = true;
            break;
        }
        if (!h2peer_pump(c, submitted < nstreams && stagger_ms < 100 ? stagger_ms : 100))
            break;
    }
    bool conn_ended = c->eof;
    if (!conn_ended && !timed_out) {
        /* all streams are done: say goodbye, then see whether the proxy ends the connection
         * by itself when it had sent GOAWAY (a short wait) */
        if (c->goaway_recv) {
            uint64_t wait_end = h2peer_now_ms() + 3000;
            while (h2peer_now_ms() < wait_end && h2peer_pump(c, 100))
                ;
            conn_ended = c->eof || !nghttp2_session_want_read(c->s);
        }
    }

    printf("{\"alpn\": \"h2\", \"timed_out\": %s, \"conn_ended\": %s, ",
           timed_out ? "true" : "false", conn_ended ? "true" : "false");
    if (c->goaway_recv)
        printf("\"goaway\": {\"last_stream_id\": %d, \"error_code\": %u}, ", c->goaway_last,
               c->goaway_code);
    else
        printf("\"goaway\": null, ");
    printf("\"streams\": [");
    for (size_t i = 0; i < c->nstreams; i++) {
        struct h2peer_stream *st = &c->streams[i];
        uint8_t md[SHA256_DIGEST_LENGTH];
        char hex[2 * SHA256_DIGEST_LENGTH + 1];
        SHA256_Final(md, &st->sha);
        h2peer_hex(md, hex);
        printf("%s\n  {\"index\": %zu, \"id\": %d, \"status\": %d, \"bytes\": %llu, "
               "\"sha256\": \"%s\", \"closed\": %s, \"close_code\": %u, \"reset_sent\": %s, "
               "\"reset_recv\": %s}",
               i == 0 ? "" : ",", i, st->id, st->status, (unsigned long long)st->bytes, hex,
               st->closed ? "true" : "false", st->close_code, st->reset_sent ? "true" : "false",
               st->reset_recv ? "true" : "false");
    }
    printf("\n]}\n");
    fflush(stdout);
    nghttp2_session_del(c->s);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    free(streams);
    free(c);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "server") == 0)
        return h2peer_server(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "client") == 0)
        return h2peer_client(argc - 2, argv + 2);
    fprintf(stderr,
            "usage: h2peer server --cert PEM --key PEM --log FILE [--port P] [--goaway-after K]\n"
            "                     [--window BYTES]\n"
            "       h2peer client --proxy HOST:PORT --connect HOST:PORT --ca PEM [-n N]\n"
            "                     [--path P] [--reset INDEX] [--upload BYTES] [--timeout S]\n"
            "                     [--stagger MS]  (open stream i at i x MS ms)\n"
            "server paths: GET /bytes/N, GET /drip/N (N x 1000 bytes, one per 50 ms),\n"
            "              POST /sha256 (JSON sha256 + length of the body)\n");
    return 2;
}
