/* replay.c - see replay.h. */
#include "worker/replay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shared/http_date.h"
#include "shared/shorthash.h"
#include "worker/flow_body.h"

struct replay {
    const uint8_t *map;       /* the whole index, read-only */
    size_t size;
    _Atomic uint32_t *cursors; /* the shared page(s), writable */
    size_t cursors_len;
    const struct replay_hdr *hdr;
    const uint32_t *buckets;
    const struct replay_group *groups;
    const struct replay_entry *entries;
    const struct replay_field *fields;
    struct replay_key_opts ko;
    bool reuse;
    bool refresh; /* server_replay_refresh */
    enum replay_verdict extra;
    int extra_status;
    struct replay_stats st;
    uint8_t *scratch; /* a chunked HTTP/1.1 request body, decoded for the key (grows to the
                       * connection input buffer's size at most) */
    size_t scratch_cap;
};

static bool span_ok(const struct replay_hdr *h, uint64_t off, uint64_t n, uint64_t size)
{
    (void)h;
    return off <= size && n <= size - off;
}

/* replay_check validates every offset of the index against its size (the master wrote it,
 * but a mapping is read as untrusted input anyway). */
static bool replay_check(const struct replay *rp)
{
    const struct replay_hdr *h = rp->hdr;
    uint64_t sz = rp->size, nf;

    if (h->magic != REPLAY_MAGIC || h->version != REPLAY_VERSION || h->size != sz ||
        h->n_buckets == 0 || (h->n_buckets & (h->n_buckets - 1)) != 0 ||
        !span_ok(h, h->buckets_off, (uint64_t)h->n_buckets * 4, sz) ||
        !span_ok(h, h->groups_off, (uint64_t)h->n_groups * sizeof(struct replay_group), sz) ||
        !span_ok(h, h->entries_off, (uint64_t)h->n_entries * sizeof(struct replay_entry), sz) ||
        !span_ok(h, h->data_off, h->data_len, sz) || h->fields_off > h->data_off ||
        h->counters_off % 4096 != 0 || !span_ok(h, h->counters_off, (uint64_t)h->n_groups * 4, sz) ||
        h->buckets_off % 4 != 0 || h->groups_off % 8 != 0 || h->entries_off % 8 != 0 ||
        h->fields_off % 8 != 0)
        return false;
    nf = (h->data_off - h->fields_off) / sizeof(struct replay_field);
    for (uint32_t i = 0; i < h->n_buckets; i++)
        if (rp->buckets[i] != REPLAY_NONE && rp->buckets[i] >= h->n_groups)
            return false;
    for (uint32_t g = 0; g < h->n_groups; g++) {
        const struct replay_group *gr = &rp->groups[g];

        if ((gr->next != REPLAY_NONE && gr->next >= h->n_groups) ||
            !span_ok(h, gr->key_off, gr->key_len, sz) || gr->first > h->n_entries ||
            gr->count > h->n_entries - gr->first)
            return false;
    }
    for (uint32_t i = 0; i < h->n_entries; i++) {
        const struct replay_entry *e = &rp->entries[i];

        if (!span_ok(h, e->h1_off, e->h1_len, sz) || !span_ok(h, e->body_off, e->body_len, sz) ||
            !span_ok(h, e->reason_off, e->reason_len, sz) || e->first_field > nf ||
            e->n_fields > nf - e->first_field)
            return false;
        for (uint32_t k = 0; k < e->n_fields; k++) {
            const struct replay_field *f = &rp->fields[e->first_field + k];

            if (!span_ok(h, f->name_off, f->name_len, sz) ||
                !span_ok(h, f->value_off, f->value_len, sz))
                return false;
        }
    }
    return true;
}

/* path_fd returns N for "/dev/fd/N", else -1. */
static int path_fd(const char *path)
{
    char *end = NULL;
    long n;

    if (strncmp(path, "/dev/fd/", 8) != 0)
        return -1;
    n = strtol(path + 8, &end, 10);
    return end != path + 8 && *end == '\0' && n >= 0 && n <= INT_MAX ? (int)n : -1;
}

int replay_open(const char *path, const struct config *cfg, struct replay **out,
                const char **why)
{
    struct replay *rp = calloc(1, sizeof(*rp));
    int fd = path_fd(path), own = -1, err;
    struct stat st;
    const char *extra = cfg->server_replay_extra;

    if (rp == NULL) {
        *why = "out of memory";
        return -ENOMEM;
    }
    if (fd < 0)
        fd = own = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(struct replay_hdr)) {
        err = fd < 0 ? -errno : -EINVAL;
        *why = "cannot read the server replay index";
        goto out_free;
    }
    rp->size = (size_t)st.st_size;
    rp->map = mmap(NULL, rp->size, PROT_READ, MAP_SHARED, fd, 0);
    if (rp->map == MAP_FAILED) {
        err = -errno;
        *why = "cannot map the server replay index";
        goto out_free;
    }
    rp->hdr = (const struct replay_hdr *)rp->map;
    rp->buckets = (const uint32_t *)(rp->map + rp->hdr->buckets_off);
    rp->groups = (const struct replay_group *)(rp->map + rp->hdr->groups_off);
    rp->entries = (const struct replay_entry *)(rp->map + rp->hdr->entries_off);
    rp->fields = (const struct replay_field *)(rp->map + rp->hdr->fields_off);
    if (rp->hdr->magic != REPLAY_MAGIC || rp->hdr->size != rp->size || !replay_check(rp)) {
        err = -EINVAL;
        *why = "not a server replay index (or a damaged one)";
        goto out_unmap;
    }
    rp->cursors_len = rp->size - rp->hdr->counters_off;
    rp->cursors = mmap(NULL, rp->cursors_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                       (off_t)rp->hdr->counters_off);
    if (rp->cursors == MAP_FAILED) {
        err = -errno;
        *why = "cannot map the server replay cursors";
        goto out_unmap;
    }
    if (own >= 0)
        close(own);
    replay_key_opts_from(&rp->ko, cfg);
    rp->reuse = cfg->server_replay_reuse;
    rp->refresh = cfg->server_replay_refresh;
    rp->extra = REPLAY_FORWARD;
    if (cfg->server_replay_kill_extra || (extra != NULL && strcmp(extra, "kill") == 0)) {
        rp->extra = REPLAY_KILL;
    } else if (extra != NULL && strcmp(extra, "forward") != 0) {
        rp->extra = REPLAY_STATUS;
        rp->extra_status = atoi(extra);
        if (rp->extra_status < 100 || rp->extra_status > 599)
            rp->extra_status = 404;
    }
    *out = rp;
    return 0;
out_unmap:
    munmap((void *)rp->map, rp->size);
out_free:
    if (own >= 0)
        close(own);
    free(rp);
    return err;
}

void replay_close(struct replay *rp)
{
    if (rp == NULL)
        return;
    munmap((void *)rp->cursors, rp->cursors_len);
    munmap((void *)rp->map, rp->size);
    free(rp->scratch);
    free(rp);
}

bool replay_needs_body(const struct replay *rp)
{
    return !rp->ko.ignore_content;
}

const char *replay_str(const struct replay *rp, uint64_t off)
{
    return (const char *)rp->map + off;
}

struct replay_stats replay_get_stats(const struct replay *rp)
{
    return rp->st;
}

/* take picks the entry for a request of group `g`: the first with reuse, else the next
 * unused one across all workers. Returns its index or REPLAY_NONE (used up). */
static uint32_t take(struct replay *rp, uint32_t g)
{
    const struct replay_group *gr = &rp->groups[g];
    uint32_t cur;

    if (gr->count == 0)
        return REPLAY_NONE;
    if (rp->reuse)
        return gr->first;
    cur = atomic_load_explicit(&rp->cursors[g], memory_order_relaxed);
    while (cur < gr->count)
        if (atomic_compare_exchange_weak_explicit(&rp->cursors[g], &cur, cur + 1,
                                                  memory_order_relaxed, memory_order_relaxed))
            return gr->first + cur;
    return REPLAY_NONE;
}

/* record puts the replayed response into the flow. */
static void record(struct replay *rp, struct flow *f, const struct replay_entry *e)
{
    char clen[24];
    int n;

    f->status = (int)e->status;
    f->replayed = true;
    flow_str_set(f, &f->reason, replay_str(rp, e->reason_off), e->reason_len);
    flow_str_set(f, &f->resp_version, "HTTP/1.1", 8);
    for (uint32_t i = 0; i < e->n_fields; i++) {
        const struct replay_field *fl = &rp->fields[e->first_field + i];
        char v[512]; /* a refreshed value, as the client gets it (server_replay_refresh) */
        size_t vl = replay_refresh_field(rp, e, (int64_t)time(NULL), replay_str(rp, fl->name_off),
                                         fl->name_len, replay_str(rp, fl->value_off),
                                         fl->value_len, v, sizeof(v));

        flow_add_header(f, FLOW_RESPONSE, replay_str(rp, fl->name_off), fl->name_len,
                        vl > 0 ? v : replay_str(rp, fl->value_off), vl > 0 ? vl : fl->value_len);
    }
    n = snprintf(clen, sizeof(clen), "%u", e->body_len);
    flow_add_header(f, FLOW_RESPONSE, "content-length", 14, clen, (size_t)n);
    f->resp_body_size = e->body_len;
    flow_body_feed(f, FLOW_RESPONSE, rp->map + e->body_off, e->body_len);
    f->t_request_sent = f->t_response_first = flow_now_ns();
}

/* flow_hdr is replay_key_hdrs.get over the request fields of a flow. */
static bool flow_hdr(const void *ctx, const char *name, const char **v, size_t *len)
{
    const struct flow *f = ctx;
    size_t n = strlen(name);

    for (uint16_t i = 0; i < f->n_req_headers; i++) {
        const struct flow_header *h = &f->req_headers[i];

        if (h->name.len == n && strncasecmp(flow_str_ptr(f, h->name), name, n) == 0) {
            *v = flow_str_ptr(f, h->value);
            *len = h->value.len;
            return true;
        }
    }
    return false;
}

enum replay_verdict replay_miss(struct replay *rp, struct replay_answer *out)
{
    memset(out, 0, sizeof(*out));
    rp->st.misses++;
    out->status = rp->extra_status;
    return rp->extra;
}

enum replay_verdict replay_match(struct replay *rp, struct flow *f, const void *body,
                                 size_t body_len, struct replay_answer *out)
{
    char key[REPLAY_KEY_MAX];
    const char *why = NULL;
    ssize_t klen;
    uint64_t h;
    uint32_t g, idx = REPLAY_NONE;
    bool known = false;

    memset(out, 0, sizeof(*out));
    struct replay_key_hdrs hdrs = {.get = flow_hdr, .ctx = f};

    klen = replay_key_build(&rp->ko, flow_str_ptr(f, f->method), f->method.len,
                            flow_str_ptr(f, f->url), f->url.len, body, body_len, &hdrs, key,
                            sizeof(key), &why);
    if (klen >= 0) {
        h = shorthash64(key, (size_t)klen, rp->hdr->hash_key);
        for (g = rp->buckets[h & (rp->hdr->n_buckets - 1)]; g != REPLAY_NONE;
             g = rp->groups[g].next) {
            const struct replay_group *gr = &rp->groups[g];

            if (gr->hash == h && gr->key_len == (uint64_t)klen &&
                memcmp(rp->map + gr->key_off, key, (size_t)klen) == 0) {
                known = true;
                idx = take(rp, g);
                break;
            }
        }
    }
    if (idx == REPLAY_NONE) {
        if (known)
            rp->st.used_up++;
        else
            rp->st.misses++;
        out->status = rp->extra_status;
        return rp->extra;
    }
    rp->st.hits++;
    out->entry = &rp->entries[idx];
    out->h1 = rp->map + out->entry->h1_off;
    out->body = rp->map + out->entry->body_off;
    out->fields = &rp->fields[out->entry->first_field];
    record(rp, f, out->entry);
    return REPLAY_ANSWER;
}

/* chunked_body decodes the chunked body at `p` (`n` bytes in the buffer, at most `cap`)
 * into the scratch buffer: 1 when it ended (`*raw_len` framed bytes), 0 when more must be
 * read, -1 when it cannot be keyed (malformed, or it does not fit the buffer). */
static int chunked_body(struct replay *rp, const uint8_t *p, size_t n, size_t cap,
                        const uint8_t **body, size_t *body_len, size_t *raw_len)
{
    struct h1_chunk_decoder d;
    size_t at = 0, len = 0;
    const char *why = NULL;

    h1_chunk_decoder_init(&d, 0);
    while (at < n && !h1_chunk_decoder_is_done(&d)) {
        size_t off = 0, dl = 0;
        ssize_t c = h1_chunk_decode(&d, p + at, n - at, &off, &dl, &why);

        if (c < 0)
            return -1;
        if (dl > 0) {
            if (len + dl > rp->scratch_cap) {
                size_t want = rp->scratch_cap == 0 ? 4096 : rp->scratch_cap;
                uint8_t *g;

                while (want < len + dl)
                    want *= 2;
                if (want > cap)
                    want = cap;
                if (want < len + dl || (g = realloc(rp->scratch, want)) == NULL)
                    return -1;
                rp->scratch = g;
                rp->scratch_cap = want;
            }
            memcpy(rp->scratch + len, p + at + off, dl);
            len += dl;
        }
        at += (size_t)c;
        if (c == 0)
            break;
    }
    if (!h1_chunk_decoder_is_done(&d))
        return n >= cap ? -1 : 0;
    *body = len > 0 ? rp->scratch : NULL;
    *body_len = len;
    *raw_len = at;
    return 1;
}

size_t replay_refresh_field(const struct replay *rp, const struct replay_entry *e, int64_t now,
                            const char *name, size_t nlen, const char *v, size_t vlen,
                            char *out, size_t cap)
{
    int64_t t, delta = now - e->recorded_s;

    if (!rp->refresh || e->recorded_s == 0)
        return 0;
    if ((nlen == 4 && strncasecmp(name, "date", 4) == 0) ||
        (nlen == 7 && strncasecmp(name, "expires", 7) == 0) ||
        (nlen == 13 && strncasecmp(name, "last-modified", 13) == 0)) {
        if (cap <= HTTP_DATE_LEN || !http_date_parse(v, vlen, &t))
            return 0;
        return http_date_format(t + delta, out);
    }
    if (nlen == 10 && strncasecmp(name, "set-cookie", 10) == 0)
        return http_date_refresh_cookie(v, vlen, delta, out, cap);
    return 0;
}

size_t replay_h1_head(const struct replay *rp, const struct replay_answer *a, int64_t now,
                      uint8_t *out, size_t cap)
{
    const char *p = (const char *)a->h1, *end = p + (a->entry->h1_len - a->entry->body_len);
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t o, changed = 0;

    if (!rp->refresh || a->entry->recorded_s == 0 || nl == NULL ||
        (size_t)(nl + 1 - p) > cap)
        return 0;
    o = (size_t)(nl + 1 - p);
    memcpy(out, p, o); /* the status line */
    for (p = nl + 1; p < end; p = nl + 1) {
        const char *colon;
        size_t len, k;

        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            return 0;
        len = (size_t)(nl + 1 - p);
        colon = memchr(p, ':', len);
        if (colon != NULL && colon + 2 <= nl - 1 && colon[1] == ' ' &&
            (size_t)(colon - p) + 2 <= cap - o) {
            k = replay_refresh_field(rp, a->entry, now, p, (size_t)(colon - p), colon + 2,
                                     (size_t)(nl - 1 - colon - 2), (char *)out + o +
                                     (size_t)(colon - p) + 2, cap - o - (size_t)(colon - p) - 2);
            if (k > 0 && cap - o - (size_t)(colon - p) - 2 - k >= 2) {
                memcpy(out + o, p, (size_t)(colon - p) + 2); /* "name: " */
                o += (size_t)(colon - p) + 2 + k;
                memcpy(out + o, "\r\n", 2);
                o += 2;
                changed++;
                continue;
            }
        }
        if (len > cap - o)
            return 0;
        memcpy(out + o, p, len);
        o += len;
    }
    return changed > 0 ? o : 0;
}

int replay_h1_body(struct replay *rp, const struct h1_request *req, const uint8_t *head,
                   size_t head_len, size_t used, size_t cap, const uint8_t **body,
                   size_t *body_len, size_t *raw_len)
{
    *body = NULL;
    *body_len = *raw_len = 0;
    /* with server_replay_ignore_content the body is not keyed, but its extent is still needed:
     * a replayed answer consumes it, or it would be read as the next request */
    switch (h1_request_body(req)) {
    case H1_BODY_NONE:
        return 1;
    case H1_BODY_LENGTH:
        if (req->framing.content_length < 0 || (uint64_t)req->framing.content_length > cap ||
            head_len > cap - (size_t)req->framing.content_length)
            return -1;
        *body = head + head_len;
        *body_len = *raw_len = (size_t)req->framing.content_length;
        return used >= head_len + *body_len ? 1 : 0;
    case H1_BODY_CHUNKED:
        return chunked_body(rp, head + head_len, used - head_len, cap - head_len, body,
                            body_len, raw_len);
    default:
        return -1;
    }
}
