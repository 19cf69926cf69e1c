/* replay_load.c - see replay_load.h. Entries are gathered in memory (jansson for the
 * records), grouped by key in recording order, then laid out once into the memfd. */
#include "master/replay_load.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "master/mitmflow.h"
#include "shared/har.h"
#include "shared/log.h"
#include "shared/replay_key.h"
#include "shared/replay_layout.h"
#include "shared/shorthash.h"

struct pending {       /* one response before layout */
    uint32_t group;
    struct replay_entry e; /* offsets into `data` (relative until the layout) */
};

struct build {
    struct har_buf data;                 /* keys, heads, bodies */
    struct replay_group *groups;
    size_t n_groups, cap_groups;
    struct pending *ents;
    size_t n_ents, cap_ents;
    struct replay_field *fields;
    size_t n_fields, cap_fields;
    uint32_t *table;                     /* open addressing over groups while loading */
    size_t table_cap;
    uint8_t key[16];
};

static bool grow(void **p, size_t *cap, size_t n, size_t size)
{
    size_t ncap;
    void *q;

    if (n < *cap)
        return true;
    ncap = *cap == 0 ? 256 : *cap * 2;
    if (ncap > SIZE_MAX / size)
        return false;
    q = realloc(*p, ncap * size);
    if (q == NULL)
        return false;
    *p = q;
    *cap = ncap;
    return true;
}

static bool table_rehash(struct build *b)
{
    size_t ncap = b->table_cap == 0 ? 1024 : b->table_cap * 2;
    uint32_t *t = malloc(ncap * sizeof(*t));

    if (t == NULL)
        return false;
    memset(t, 0xff, ncap * sizeof(*t));
    for (size_t g = 0; g < b->n_groups; g++) {
        size_t i = b->groups[g].hash & (ncap - 1);

        while (t[i] != REPLAY_NONE)
            i = (i + 1) & (ncap - 1);
        t[i] = (uint32_t)g;
    }
    free(b->table);
    b->table = t;
    b->table_cap = ncap;
    return true;
}

/* group_of returns the group of `key`, creating it; REPLAY_NONE without memory. */
static uint32_t group_of(struct build *b, const char *key, size_t len)
{
    uint64_t h = shorthash64(key, len, b->key);
    size_t i;

    if ((b->n_groups + 1) * 2 > b->table_cap && !table_rehash(b))
        return REPLAY_NONE;
    for (i = h & (b->table_cap - 1); b->table[i] != REPLAY_NONE; i = (i + 1) & (b->table_cap - 1)) {
        struct replay_group *g = &b->groups[b->table[i]];

        if (g->hash == h && g->key_len == len && memcmp(b->data.p + g->key_off, key, len) == 0)
            return b->table[i];
    }
    if (!grow((void **)&b->groups, &b->cap_groups, b->n_groups, sizeof(*b->groups)))
        return REPLAY_NONE;
    b->groups[b->n_groups] = (struct replay_group){
        .hash = h, .key_off = b->data.len, .key_len = (uint32_t)len, .first = 0, .count = 0,
        .next = REPLAY_NONE};
    har_buf_put(&b->data, key, len);
    b->table[i] = (uint32_t)b->n_groups;
    return (uint32_t)b->n_groups++;
}

uint8_t *replay_load_body(json_t *body, size_t *len, bool *cut)
{
    const char *b64 = json_string_value(json_object_get(body, "base64"));
    uint8_t *raw;
    ssize_t n;

    *len = 0;
    if (body == NULL)
        return NULL;
    if (b64 == NULL || json_is_true(json_object_get(body, "truncated"))) {
        *cut = true;
        return NULL;
    }
    raw = malloc(strlen(b64) / 4 * 3 + 3);
    if (raw == NULL || (n = har_base64_decode(b64, strlen(b64), raw)) < 0) {
        free(raw);
        *cut = true;
        return NULL;
    }
    *len = (size_t)n;
    return raw;
}

bool replay_load_is_token(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && strchr("!#$%&'*+-.^_`|~", *p) == NULL)
            return false;
    return true;
}

bool replay_load_field_ok(const char *n, const char *v)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
                                      "transfer-encoding", "te", "trailer", "upgrade",
                                      "content-length"};

    if (v == NULL || !replay_load_is_token(n))
        return false; /* a pseudo-field's ':' is not a token character either */
    if (strpbrk(v, "\r\n") != NULL)
        return false;
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (strcasecmp(n, hop[i]) == 0)
            return false;
    return true;
}

/* add_response appends the response of `rec` (whose body is `body`) to group `g`. */
static int add_response(struct build *b, uint32_t g, json_t *resp, const uint8_t *body,
                        size_t blen, int64_t recorded_s)
{
    struct pending *p;
    const char *reason = json_string_value(json_object_get(resp, "statusText"));
    json_int_t status = json_integer_value(json_object_get(resp, "status"));
    json_t *hs = json_object_get(resp, "headers"), *h;
    size_t i;

    if (status < 100 || status > 599)
        status = 502;
    if (reason == NULL || strpbrk(reason, "\r\n") != NULL)
        reason = "";
    if (!grow((void **)&b->ents, &b->cap_ents, b->n_ents, sizeof(*b->ents)))
        return -ENOMEM;
    p = &b->ents[b->n_ents];
    memset(p, 0, sizeof(*p));
    p->group = g;
    p->e.recorded_s = recorded_s;
    p->e.status = (uint32_t)status;
    p->e.first_field = (uint32_t)b->n_fields;
    p->e.reason_off = b->data.len;
    p->e.reason_len = (uint32_t)strlen(reason);
    har_buf_str(&b->data, reason);
    /* the HTTP/1.1 bytes: status line, fields (names lower-cased, as HTTP/2 needs them too) */
    p->e.h1_off = b->data.len;
    har_buf_printf(&b->data, "HTTP/1.1 %d %s\r\n", (int)status, reason);
    json_array_foreach(hs, i, h) {
        const char *n = json_string_value(json_object_get(h, "name"));
        const char *v = json_string_value(json_object_get(h, "value"));
        struct replay_field *f;

        if (!replay_load_field_ok(n, v))
            continue;
        if (!grow((void **)&b->fields, &b->cap_fields, b->n_fields, sizeof(*b->fields)))
            return -ENOMEM;
        f = &b->fields[b->n_fields++];
        f->name_off = b->data.len;
        f->name_len = (uint32_t)strlen(n);
        for (const char *c = n; *c != '\0'; c++) {
            char lc = (char)tolower((unsigned char)*c);

            har_buf_put(&b->data, &lc, 1);
        }
        har_buf_put(&b->data, ": ", 2);
        f->value_off = b->data.len;
        f->value_len = (uint32_t)strlen(v);
        har_buf_str(&b->data, v);
        har_buf_put(&b->data, "\r\n", 2);
        p->e.n_fields++;
    }
    har_buf_printf(&b->data, "content-length: %zu\r\n\r\n", blen);
    p->e.body_off = b->data.len;
    p->e.body_len = (uint32_t)blen;
    har_buf_put(&b->data, body, blen);
    p->e.h1_len = (uint32_t)(b->data.len - p->e.h1_off);
    b->groups[g].count++;
    b->n_ents++;
    return b->data.oom ? -ENOMEM : 0;
}

/* json_hdr is replay_key_hdrs.get over a record's request "headers" ([{name, value}]). */
static bool json_hdr(const void *ctx, const char *name, const char **v, size_t *len)
{
    json_t *h;
    size_t i;

    json_array_foreach((json_t *)ctx, i, h) {
        const char *n = json_string_value(json_object_get(h, "name"));
        const char *val = json_string_value(json_object_get(h, "value"));

        if (n != NULL && val != NULL && strcasecmp(n, name) == 0) {
            *v = val;
            *len = strlen(val);
            return true;
        }
    }
    return false;
}

/* started_s returns the record's startedDateTime ("2026-12-02T15:38:12.123Z", UTC) as Unix
 * seconds, or 0. */
static int64_t started_s(json_t *rec)
{
    const char *s = json_string_value(json_object_get(rec, "startedDateTime"));
    struct tm tm;
    const char *end;

    memset(&tm, 0, sizeof(tm));
    if (s == NULL || (end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
        return 0;
    return (int64_t)timegm(&tm);
}

/* add_record indexes one -w line. Returns 0 (kept or counted as left out) or -ENOMEM. */
static int add_record(struct build *b, const struct replay_key_opts *ko, const char *line,
                      size_t len, struct replay_load_stats *st)
{
    json_t *rec = json_loadb(line, len, 0, NULL), *req, *resp;
    const char *method, *url, *why = NULL;
    uint8_t *qbody = NULL, *rbody = NULL;
    size_t qlen = 0, rlen = 0;
    bool cut = false;
    char key[REPLAY_KEY_MAX];
    struct replay_key_hdrs hdrs = {.get = json_hdr};
    ssize_t klen;
    uint32_t g;
    int err = 0;

    req = json_object_get(rec, "request");
    resp = json_object_get(rec, "response");
    method = json_string_value(json_object_get(req, "method"));
    url = json_string_value(json_object_get(req, "url"));
    if (rec == NULL || method == NULL || url == NULL) {
        st->bad_lines++;
        goto out;
    }
    if (!json_is_object(resp)) {
        st->no_response++;
        goto out;
    }
    if (!ko->ignore_content) {
        qbody = replay_load_body(json_object_get(rec, "request_body"), &qlen, &cut);
        if (qbody == NULL && json_integer_value(json_object_get(req, "bodySize")) > 0)
            cut = true;
    }
    rbody = replay_load_body(json_object_get(rec, "response_body"), &rlen, &cut);
    if (rbody == NULL && json_integer_value(json_object_get(resp, "bodySize")) > 0)
        cut = true;
    if (cut) {
        st->cut_bodies++;
        goto out;
    }
    hdrs.ctx = json_object_get(req, "headers");
    klen = replay_key_build(ko, method, strlen(method), url, strlen(url), qbody, qlen, &hdrs,
                            key, sizeof(key), &why);
    if (klen < 0) {
        st->bad_lines++;
        goto out;
    }
    g = group_of(b, key, (size_t)klen);
    err = g == REPLAY_NONE ? -ENOMEM : add_response(b, g, resp, rbody, rlen,
                                                       started_s(rec));
    if (err == 0)
        st->entries++;
out:
    free(qbody);
    free(rbody);
    json_decref(rec);
    return err;
}

/* struct add_arg carries add_record's arguments through replay_load_each. */
struct add_arg {
    struct build *b;
    const struct replay_key_opts *ko;
    struct replay_load_stats *st;
};

static int add_line(void *arg, char *line, size_t len)
{
    struct add_arg *a = arg;

    return add_record(a->b, a->ko, line, len, a->st);
}

int replay_load_memfd(const char *name, size_t size, void **map)
{
    int fd = memfd_create(name, MFD_CLOEXEC);

    if (fd == -1)
        return -errno;
    if (ftruncate(fd, (off_t)size) != 0) {
        close(fd);
        return -errno;
    }
    *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (*map == MAP_FAILED) {
        close(fd);
        return -ENOMEM;
    }
    return fd;
}

/* layout writes the index into a new memfd. Returns it or -errno. */
static int layout(struct build *b)
{
    size_t nb = 16, page = (size_t)sysconf(_SC_PAGESIZE);
    uint64_t off, counters_off, size;
    struct replay_hdr *hdr;
    uint32_t *buckets, *next_slot;
    struct replay_group *groups;
    struct replay_entry *ents;
    uint8_t *m;
    int fd;

    while (nb < b->n_groups * 2)
        nb *= 2;
    off = sizeof(*hdr);
    hdr = NULL;
    uint64_t buckets_off = off;
    off += nb * sizeof(uint32_t);
    off = (off + 7) & ~7ull;
    uint64_t groups_off = off;
    off += b->n_groups * sizeof(struct replay_group);
    uint64_t entries_off = off;
    off += b->n_ents * sizeof(struct replay_entry);
    uint64_t fields_off = off;
    off += b->n_fields * sizeof(struct replay_field);
    uint64_t data_off = off;
    off += b->data.len;
    counters_off = (off + page - 1) / page * page;
    size = counters_off + ((b->n_groups * sizeof(uint32_t) + page - 1) / page + 1) * page;

    fd = replay_load_memfd("mitmd-server-replay", size, (void **)&m);
    if (fd < 0)
        return fd;
    hdr = (struct replay_hdr *)m;
    *hdr = (struct replay_hdr){.magic = REPLAY_MAGIC, .version = REPLAY_VERSION,
                               .n_groups = (uint32_t)b->n_groups, .n_entries = (uint32_t)b->n_ents,
                               .n_buckets = (uint32_t)nb, .buckets_off = buckets_off,
                               .groups_off = groups_off, .entries_off = entries_off,
                               .fields_off = fields_off, .data_off = data_off,
                               .data_len = b->data.len, .counters_off = counters_off,
                               .size = size};
    memcpy(hdr->hash_key, b->key, sizeof(b->key));
    buckets = (uint32_t *)(m + buckets_off);
    memset(buckets, 0xff, nb * sizeof(uint32_t));
    groups = (struct replay_group *)(m + groups_off);
    ents = (struct replay_entry *)(m + entries_off);
    /* each group's entries contiguous, in recording order (a counting sort) */
    next_slot = calloc(b->n_groups + 1, sizeof(*next_slot));
    if (next_slot == NULL) {
        munmap(m, size);
        close(fd);
        return -ENOMEM;
    }
    for (size_t g = 0, at = 0; g < b->n_groups; g++) {
        groups[g] = b->groups[g];
        groups[g].key_off += data_off;
        groups[g].first = (uint32_t)at;
        next_slot[g] = (uint32_t)at;
        at += b->groups[g].count;
        groups[g].next = buckets[groups[g].hash & (nb - 1)];
        buckets[groups[g].hash & (nb - 1)] = (uint32_t)g;
    }
    for (size_t i = 0; i < b->n_ents; i++) {
        struct replay_entry e = b->ents[i].e;

        e.h1_off += data_off;
        e.body_off += data_off;
        e.reason_off += data_off;
        ents[next_slot[b->ents[i].group]++] = e;
    }
    free(next_slot);
    for (size_t i = 0; i < b->n_fields; i++) {
        struct replay_field f = b->fields[i];

        f.name_off += data_off;
        f.value_off += data_off;
        ((struct replay_field *)(m + fields_off))[i] = f;
    }
    if (b->data.len > 0)
        memcpy(m + data_off, b->data.p, b->data.len);
    munmap(m, size);
    return fd;
}

int replay_load_each(FILE *in, const char *what, const char *path, replay_load_fn *fn, void *arg,
                     size_t *lines, size_t *bad, bool *mitmproxy)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool mitm = *mitmproxy = mitmflow_sniff(in);
    int err = 0;

    for (;;) {
        if (mitm) { /* mitmproxy's flow file: each flow converted to a record line */
            const char *why = NULL;
            size_t len = 0;
            int r;

            free(line);
            line = NULL;
            r = mitmflow_read(in, &line, &len, &why);
            if (r == 0)
                break;
            (*lines)++;
            if (r < 0) { /* a broken length or a cut file: the flows before it count */
                log_warn("%s %s: flow %zu: %s (the rest is not read)", what, path, *lines, why);
                (*bad)++;
                break;
            }
            if (r == 2) {
                (*bad)++;
                continue;
            }
            n = (ssize_t)len;
        } else {
            if ((n = getline(&line, &cap, in)) == -1)
                break;
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                n--;
            if (n == 0)
                continue;
            (*lines)++;
        }
        if ((err = fn(arg, line, (size_t)n)) != 0)
            break;
    }
    free(line);
    return err;
}

int replay_load_build(const struct config *cfg, const char *path, struct replay_load_stats *st,
                      char *err, size_t errlen)
{
    struct build b = {0};
    struct replay_key_opts ko;
    const char *extra = cfg->server_replay_extra;
    char *end;
    struct add_arg ra;
    FILE *in;
    int fd = 0;

    memset(st, 0, sizeof(*st));
    if (extra != NULL && strcmp(extra, "forward") != 0 && strcmp(extra, "kill") != 0) {
        long s = strtol(extra, &end, 10);

        if (*end != '\0' || s < 100 || s > 599) {
            snprintf(err, errlen, "server_replay_extra: '%s': expected forward, kill or a "
                     "status 100-599", extra);
            return -EINVAL;
        }
    }
    in = fopen(path, "re");
    if (in == NULL) {
        snprintf(err, errlen, "--server-replay %s: %s", path, strerror(errno));
        return -errno;
    }
    replay_key_opts_from(&ko, cfg);
    randombytes_buf(b.key, sizeof(b.key));
    ra = (struct add_arg){.b = &b, .ko = &ko, .st = st};
    if (replay_load_each(in, "--server-replay", path, add_line, &ra, &st->lines, &st->bad_lines,
                         &st->mitmproxy) != 0)
        fd = -ENOMEM;
    fclose(in);
    st->keys = b.n_groups;
    if (fd == 0)
        fd = layout(&b);
    if (fd < 0)
        snprintf(err, errlen, "--server-replay %s: cannot build the index: %s", path,
                 strerror(-fd));
    free(b.data.p);
    free(b.groups);
    free(b.ents);
    free(b.fields);
    free(b.table);
    return fd;
}

int replay_load_map_ro(int fd, size_t min, void **map, size_t *size)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        return -errno;
    if ((size_t)st.st_size < min)
        return -EINVAL;
    *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (*map == MAP_FAILED)
        return -errno;
    *size = (size_t)st.st_size;
    return 0;
}

/* replay_watch_open maps the index `fd` read-only into `w`; returns 0 or -errno. The
 * master wrote it, but its offsets are checked as a reader's would be. */
static int replay_watch_open(int fd, struct replay_watch *w)
{
    const struct replay_hdr *h;
    void *map = NULL;
    size_t size = 0;
    int e = replay_load_map_ro(fd, sizeof(*h), &map, &size);

    if (e)
        return e;
    h = map;
    if (h->magic != REPLAY_MAGIC || h->size != (uint64_t)size ||
        h->groups_off > h->size || h->counters_off > h->size ||
        (h->size - h->groups_off) / sizeof(struct replay_group) < h->n_groups ||
        (h->size - h->counters_off) / sizeof(uint32_t) < h->n_groups) {
        munmap(map, size);
        return -EINVAL;
    }
    w->map = map;
    w->size = size;
    w->groups = (const struct replay_group *)((const char *)map + h->groups_off);
    w->cursors = (const uint32_t *)((const char *)map + h->counters_off);
    w->n_groups = h->n_groups;
    return 0;
}

uint64_t replay_watch_left(const struct replay_watch *w)
{
    uint64_t left = 0;

    for (uint32_t g = 0; g < w->n_groups; g++) {
        uint32_t used = __atomic_load_n(&w->cursors[g], __ATOMIC_RELAXED);

        if (used < w->groups[g].count)
            left += w->groups[g].count - used;
    }
    return left;
}

void replay_watch_close(struct replay_watch *w)
{
    if (w->map != NULL)
        munmap(w->map, w->size);
    w->map = NULL;
}

int replay_load_start(struct supervise *s, const struct config *cfg, struct replay_watch *watch)
{
    struct replay_load_stats st;
    char err[512];
    int fd, e;

    if (cfg->server_replay == NULL)
        return 0;
    fd = replay_load_build(cfg, cfg->server_replay, &st, err, sizeof(err));
    if (fd < 0) {
        log_error("%s", err);
        return fd;
    }
    log_info("server replay: %zu responses under %zu keys from %s (%zu %s; left out: %zu "
             "without a response, %zu with a body cut or not recorded (save_bodies), %zu not "
             "flow records)", st.entries, st.keys, cfg->server_replay, st.lines,
             st.mitmproxy ? "mitmproxy flows" : "lines", st.no_response, st.cut_bodies,
             st.bad_lines);
    if (watch != NULL && !cfg->keepserving && !cfg->server_replay_reuse) {
        e = replay_watch_open(fd, watch);
        if (e) {
            log_error("--server-replay: cannot map the index: %s", strerror(-e));
            close(fd);
            return e;
        }
    }
    e = supervise_pass_fd(s, fd, "--server-replay");
    if (e)
        log_error("--server-replay: cannot pass the index to the workers: %s", strerror(-e));
    return e;
}
