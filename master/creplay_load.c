/* creplay_load.c - see creplay_load.h. Requests are gathered in one buffer (jansson for the
 * records), then laid out once into the memfd. */
#include "master/creplay_load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "master/replay_load.h"
#include "shared/har.h"
#include "shared/log.h"
#include "shared/target_parse.h"

/* put_host writes `t`'s host (IPv6 bracketed) with its port when the URL gave one. */
static void put_host(struct har_buf *out, const struct target *t)
{
    har_buf_str(out, t->is_ipv6 ? "[" : "");
    har_buf_put(out, t->host, t->host_len);
    har_buf_str(out, t->is_ipv6 ? "]" : "");
    if (t->port_explicit)
        har_buf_printf(out, ":%u", (unsigned)t->port);
}

/* put_url writes the request target: `url`, or - when the record names the target the client
 * addressed (a CONNECT to another name than the Host field's; {"host", "port"}) - the URL
 * (`t`, parsed) with that authority, so the request goes where it went (mitmproxy's
 * request.host), its Host field unchanged. */
static void put_url(struct har_buf *out, const char *url, const struct target *t,
                    json_t *target)
{
    const char *host = json_string_value(json_object_get(target, "host"));
    json_int_t port = json_integer_value(json_object_get(target, "port"));
    bool v6 = host != NULL && strchr(host, ':') != NULL;

    if (host == NULL || !target_host_is_valid(host, strlen(host)) || port <= 0 ||
        port > 65535) {
        har_buf_str(out, url);
        return;
    }
    har_buf_str(out, t->tls ? "https://" : "http://");
    har_buf_str(out, v6 ? "[" : "");
    har_buf_str(out, host);
    har_buf_printf(out, "%s:%lld", v6 ? "]" : "", (long long)port);
    har_buf_put(out, t->path, t->path_len);
    if (t->query != NULL)
        har_buf_put(out, t->query, t->query_len);
}

/* put_fields writes the replayable fields of `hdrs`: the first Host, every Cookie joined into
 * one field where the first stood. Returns whether a Host field was written. */
static bool put_fields(struct har_buf *out, json_t *hdrs)
{
    bool has_host = false, cookies_done = false;
    size_t i, k;
    json_t *h, *c;

    json_array_foreach(hdrs, i, h)
    {
        const char *n = json_string_value(json_object_get(h, "name"));
        const char *v = json_string_value(json_object_get(h, "value"));

        if (!replay_load_field_ok(n, v))
            continue; /* hop-by-hop, framing, pseudo-fields (HTTP/2), or not valid */
        if (strcasecmp(n, "host") == 0) {
            if (has_host)
                continue;
            has_host = true;
        }
        if (strcasecmp(n, "cookie") == 0) {
            const char *sep = "";

            if (cookies_done)
                continue;
            cookies_done = true;
            har_buf_str(out, n);
            har_buf_str(out, ": ");
            json_array_foreach(hdrs, k, c)
            {
                const char *cn = json_string_value(json_object_get(c, "name"));
                const char *cv = json_string_value(json_object_get(c, "value"));

                if (k >= i && replay_load_field_ok(cn, cv) && strcasecmp(cn, "cookie") == 0) {
                    har_buf_str(out, sep);
                    har_buf_str(out, cv);
                    sep = "; ";
                }
            }
            har_buf_str(out, "\r\n");
            continue;
        }
        har_buf_str(out, n);
        har_buf_str(out, ": ");
        har_buf_str(out, v);
        har_buf_str(out, "\r\n");
    }
    return has_host;
}

int creplay_load_request(const char *line, size_t len, struct har_buf *out, const char **why,
                         enum creplay_skip *skip)
{
    json_t *rec = json_loadb(line, len, 0, NULL), *req;
    const char *method, *url, *twhy = NULL;
    struct target t;
    uint8_t *body = NULL;
    size_t blen = 0;
    bool cut = false;
    int err = -EINVAL;

    *skip = CREPLAY_SKIP_BAD;
    req = json_object_get(rec, "request");
    method = json_string_value(json_object_get(req, "method"));
    url = json_string_value(json_object_get(req, "url"));
    if (!json_is_object(req)) {
        *why = "not a flow record";
        goto out;
    }
    if (!replay_load_is_token(method) || strlen(method) > 32 ||
        strcasecmp(method, "CONNECT") == 0) {
        *why = "not a request mitmd replays (no method, or CONNECT)";
        goto out;
    }
    if (url == NULL || target_parse_absolute(url, strlen(url), &t, &twhy) != 0) {
        *skip = CREPLAY_SKIP_NOT_HTTP;
        *why = "its URL is not http:// or https://";
        goto out;
    }
    if (json_is_true(json_object_get(rec, "truncated"))) {
        *skip = CREPLAY_SKIP_TRUNCATED;
        *why = "the record is truncated (some of its fields were not recorded)";
        goto out;
    }
    body = replay_load_body(json_object_get(rec, "request_body"), &blen, &cut);
    if (cut || (body == NULL && json_integer_value(json_object_get(req, "bodySize")) > 0)) {
        *skip = CREPLAY_SKIP_CUT_BODY;
        *why = "its request body was not recorded whole (save_bodies)";
        goto out;
    }
    har_buf_printf(out, "%s ", method);
    put_url(out, url, &t, json_object_get(json_object_get(rec, "client"), "target"));
    har_buf_str(out, " HTTP/1.1\r\n");
    if (!put_fields(out, json_object_get(req, "headers"))) {
        har_buf_str(out, "host: ");
        put_host(out, &t);
        har_buf_str(out, "\r\n");
    }
    if (blen > 0 || strcasecmp(method, "POST") == 0 || strcasecmp(method, "PUT") == 0 ||
        strcasecmp(method, "PATCH") == 0)
        har_buf_printf(out, "content-length: %zu\r\n", blen);
    har_buf_str(out, "connection: close\r\n\r\n");
    if (blen > 0)
        har_buf_put(out, body, blen);
    *skip = CREPLAY_SKIP_NONE;
    err = out->oom ? -ENOMEM : 0;
out:
    free(body);
    json_decref(rec);
    return err;
}

/* struct build is the list before its layout: every request's bytes, one after another. */
struct build {
    struct har_buf data;
    struct creplay_entry *ents; /* offsets into `data` (relative until the layout) */
    size_t n, cap;
    struct creplay_load_stats *st;
    const char *path;
};

static int add_line(void *arg, char *line, size_t len)
{
    struct build *b = arg;
    size_t at = b->data.len;
    const char *why = "";
    enum creplay_skip skip = CREPLAY_SKIP_NONE;
    int e = creplay_load_request(line, len, &b->data, &why, &skip);

    if (e == -ENOMEM)
        return e;
    if (e != 0) {
        b->data.len = at;
        *(skip == CREPLAY_SKIP_CUT_BODY   ? &b->st->cut_bodies
          : skip == CREPLAY_SKIP_NOT_HTTP ? &b->st->not_http
          : skip == CREPLAY_SKIP_TRUNCATED ? &b->st->truncated
                                          : &b->st->bad_lines) += 1;
        log_debug("--client-replay %s: record %zu left out: %s", b->path, b->st->lines, why);
        return 0;
    }
    if (b->n == UINT32_MAX - 1)
        return -ENOMEM;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct creplay_entry *p = realloc(b->ents, cap * sizeof(*p));

        if (p == NULL)
            return -ENOMEM;
        b->ents = p;
        b->cap = cap;
    }
    b->ents[b->n++] = (struct creplay_entry){.off = at, .len = b->data.len - at};
    b->st->requests++;
    return 0;
}

/* layout writes the list into a new memfd. Returns it or -errno. */
static int layout(const struct build *b)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint64_t entries_off = sizeof(struct creplay_hdr);
    uint64_t data_off = entries_off + b->n * sizeof(struct creplay_entry);
    uint64_t progress_off = (data_off + b->data.len + page - 1) / page * page;
    uint64_t size = progress_off + page;
    struct creplay_hdr *hdr;
    struct creplay_entry *ents;
    uint8_t *m;
    int fd = replay_load_memfd("mitmd-client-replay", size, (void **)&m);

    if (fd < 0)
        return fd;
    hdr = (struct creplay_hdr *)m;
    *hdr = (struct creplay_hdr){.magic = CREPLAY_MAGIC, .version = CREPLAY_VERSION,
                                .n = (uint32_t)b->n, .entries_off = entries_off,
                                .data_off = data_off, .data_len = b->data.len,
                                .progress_off = progress_off, .size = size};
    ents = (struct creplay_entry *)(m + entries_off);
    for (size_t i = 0; i < b->n; i++)
        ents[i] = (struct creplay_entry){.off = b->ents[i].off + data_off, .len = b->ents[i].len};
    if (b->data.len > 0)
        memcpy(m + data_off, b->data.p, b->data.len);
    munmap(m, size);
    return fd;
}

int creplay_load_build(const char *path, struct creplay_load_stats *st, char *err, size_t errlen)
{
    struct build b = {.st = st, .path = path};
    FILE *in;
    int fd = 0;

    memset(st, 0, sizeof(*st));
    in = fopen(path, "re");
    if (in == NULL) {
        fd = -errno;
        snprintf(err, errlen, "--client-replay %s: %s", path, strerror(-fd));
        return fd;
    }
    if (replay_load_each(in, "--client-replay", path, add_line, &b, &st->lines, &st->bad_lines,
                         &st->mitmproxy) != 0 ||
        b.data.oom)
        fd = -ENOMEM;
    fclose(in);
    if (fd == 0)
        fd = layout(&b);
    if (fd < 0)
        snprintf(err, errlen, "--client-replay %s: cannot build the request list: %s", path,
                 strerror(-fd));
    free(b.data.p);
    free(b.ents);
    return fd;
}

/* creplay_watch_open maps the list `fd` read-only into `w`; returns 0 or -errno. */
static int creplay_watch_open(int fd, struct creplay_watch *w)
{
    const struct creplay_hdr *h;
    void *map = NULL;
    size_t size = 0;
    int e = replay_load_map_ro(fd, sizeof(*h), &map, &size);

    if (e)
        return e;
    h = map;
    if (h->magic != CREPLAY_MAGIC || h->size != (uint64_t)size ||
        h->progress_off > h->size - sizeof(struct creplay_progress)) {
        munmap(map, size);
        return -EINVAL;
    }
    w->map = map;
    w->size = size;
    w->n = h->n;
    w->progress = (const struct creplay_progress *)((const char *)map + h->progress_off);
    return 0;
}

uint32_t creplay_watch_left(const struct creplay_watch *w)
{
    uint32_t done = __atomic_load_n(&w->progress->done, __ATOMIC_ACQUIRE);

    return done >= w->n ? 0 : w->n - done;
}

void creplay_watch_close(struct creplay_watch *w)
{
    if (w->map != NULL)
        munmap(w->map, w->size);
    w->map = NULL;
}

int creplay_load_start(struct supervise *s, const struct config *cfg, bool took_over,
                       struct creplay_watch *watch)
{
    struct creplay_load_stats st = {0};
    struct build none = {.st = &st};
    char err[512];
    int fd, e;

    if (cfg->client_replay == NULL)
        return 0;
    if (took_over) {
        log_info("client replay: not sent again after the binary upgrade (the previous "
                 "master's worker 0 sent %s)", cfg->client_replay);
        fd = layout(&none); /* the workers are given an empty list */
        if (fd < 0)
            snprintf(err, sizeof(err), "--client-replay: cannot build the request list: %s",
                     strerror(-fd));
    } else {
        fd = creplay_load_build(cfg->client_replay, &st, err, sizeof(err));
    }
    if (fd < 0) {
        log_error("%s", err);
        return fd;
    }
    if (!took_over)
        log_info("client replay: %zu requests from %s (%zu %s; left out: %zu not http(s), %zu "
                 "with a body cut or not recorded (save_bodies), %zu truncated records, %zu "
                 "not flow records or not requests to replay)",
                 st.requests, cfg->client_replay, st.lines,
                 st.mitmproxy ? "mitmproxy flows" : "lines", st.not_http, st.cut_bodies,
                 st.truncated, st.bad_lines);
    if (watch != NULL && !cfg->keepserving && !took_over) {
        e = creplay_watch_open(fd, watch);
        if (e) {
            log_error("--client-replay: cannot map the request list: %s", strerror(-e));
            close(fd);
            return e;
        }
    }
    e = supervise_pass_fd(s, fd, "--client-replay");
    if (e)
        log_error("--client-replay: cannot pass the request list to the workers: %s",
                  strerror(-e));
    return e;
}
