/* rfile.c - see rfile.h. */
#include "master/rfile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "master/mitmflow.h"
#include "shared/fileio.h"
#include "shared/target_parse.h"
#include "worker/flowfilter.h"

#define RFILE_LINE_MAX (64u << 20) /* a record with bodies is a few MiB at most */
#define RFILE_TEXT_MAX (48u * 1024) /* a flow line, as the live writer's slot */

/* rfile_addr sets `ss` from a record's {"address": "IP", "port": N}; unknown stays zero. */
static void rfile_addr(json_t *o, struct sockaddr_storage *ss)
{
    const char *ip = json_string_value(json_object_get(o, "address"));
    json_int_t port = json_integer_value(json_object_get(o, "port"));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (ip == NULL || port < 0 || port > 65535)
        return;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
    }
}

/* rfile_target sets the target the client addressed from a record's client "target"
 * ({"host": NAME, "port": N}, written when the flow line shows it rather than the Host
 * field's authority); a host that no client could have addressed is not taken. */
static void rfile_target(struct flow *f, json_t *client)
{
    json_t *t = json_object_get(client, "target");
    const char *host = json_string_value(json_object_get(t, "host"));
    json_int_t port = json_integer_value(json_object_get(t, "port"));
    size_t len = host != NULL ? strlen(host) : 0;

    if (len == 0 || len >= sizeof(f->target_host) || !target_host_is_valid(host, len) ||
        port < 0 || port > 65535)
        return;
    memcpy(f->target_host, host, len + 1);
    f->target_port = (uint16_t)port;
    f->url_from_host = true; /* as when it was written: the line shows the target */
}

/* rfile_str copies a JSON string member into the flow's arena (absent: ""). */
static void rfile_str(struct flow *f, struct flow_str *dst, json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (json_is_string(v))
        flow_str_set(f, dst, json_string_value(v), json_string_length(v));
}

/* rfile_headers adds a record's [{"name": ..., "value": ...}] to one side of the flow. */
static void rfile_headers(struct flow *f, enum flow_side side, json_t *msg)
{
    json_t *h = json_object_get(msg, "headers"), *e;
    size_t i;

    json_array_foreach(h, i, e) {
        json_t *n = json_object_get(e, "name"), *v = json_object_get(e, "value");

        if (json_is_string(n) && json_is_string(v))
            flow_add_header(f, side, json_string_value(n), json_string_length(n),
                            json_string_value(v), json_string_length(v));
    }
}

/* rfile_count returns a record's non-negative integer member, else 0. */
static uint64_t rfile_count(json_t *o, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));

    return v > 0 ? (uint64_t)v : 0;
}

/* rfile_ms_to_ns converts a record's milliseconds (a number; -1 or absent: not applicable)
 * to ns, or -1. */
static int64_t rfile_ms_to_ns(json_t *v)
{
    double ms = json_is_number(v) ? json_number_value(v) : -1;

    if (!(ms >= 0) || ms > 1e12) /* NaN, negative, or beyond any recorded exchange */
        return -1;
    return (int64_t)(ms * 1e6 + 0.5);
}

int rfile_flow_from_line(const char *line, size_t len, struct flow *f, struct rfile_strs *keep,
                         const char **why)
{
    json_t *rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *req = json_object_get(rec, "request"), *resp = json_object_get(rec, "response");
    json_t *srv = json_object_get(rec, "server"), *tls = json_object_get(rec, "tls");
    json_t *ws = json_object_get(rec, "websocket");
    const char *replay;
    const char *host = json_string_value(json_object_get(srv, "host"));
    int64_t total;
    int rc = -EINVAL;

    flow_init(f);
    if (rec == NULL) {
        *why = "not JSON";
        goto out;
    }
    if (!json_is_object(rec) || !json_is_object(req) ||
        !json_is_string(json_object_get(req, "method")) ||
        !json_is_string(json_object_get(req, "url"))) {
        *why = "not a flow record (no request with method and url)";
        goto out;
    }
    rfile_addr(json_object_get(rec, "client"), &f->client_addr);
    rfile_addr(srv, &f->server_addr);
    flow_set_server(f, host, NULL, 0);
    if (json_is_object(tls)) {
        flow_set_tls(f, json_string_value(json_object_get(tls, "sni")),
                     json_string_value(json_object_get(tls, "alpn")),
                     json_string_value(json_object_get(tls, "version")));
        flow_set_cert(f, json_string_value(json_object_get(tls, "cert_subject")),
                      json_string_value(json_object_get(tls, "cert_issuer")));
    }
    flow_begin(f);
    rfile_target(f, json_object_get(rec, "client")); /* an exchange field: after flow_begin */
    /* the line's time is the record's (the exchange with its connect and handshake) */
    total = rfile_ms_to_ns(json_object_get(rec, "time"));
    f->t_start = 1;
    f->t_done = 1 + (uint64_t)(total > 0 ? total : 0);
    rfile_str(f, &f->method, req, "method");
    rfile_str(f, &f->url, req, "url");
    rfile_str(f, &f->req_version, req, "httpVersion");
    rfile_headers(f, FLOW_REQUEST, req);
    f->req_body_size = rfile_count(req, "bodySize");
    if (json_is_object(resp)) {
        json_int_t status = json_integer_value(json_object_get(resp, "status"));

        f->status = status >= 100 && status <= 999 ? (int)status : 0;
        rfile_str(f, &f->reason, resp, "statusText");
        rfile_str(f, &f->resp_version, resp, "httpVersion");
        rfile_headers(f, FLOW_RESPONSE, resp);
        f->resp_body_size = rfile_count(resp, "bodySize");
    }
    if (json_is_object(ws)) {
        f->websocket = true;
        f->ws_messages[0] = rfile_count(ws, "messages_sent");
        f->ws_messages[1] = rfile_count(ws, "messages_received");
        f->ws_bytes[0] = rfile_count(ws, "bytes_sent");
        f->ws_bytes[1] = rfile_count(ws, "bytes_received");
    }
    if (json_is_string(json_object_get(rec, "error")))
        flow_set_error(f, json_string_value(json_object_get(rec, "error")));
    replay = json_string_value(json_object_get(rec, "is_replay"));
    f->replayed = replay != NULL && strcmp(replay, "response") == 0;
    f->replay_request = replay != NULL && strcmp(replay, "request") == 0;
    if (json_is_true(json_object_get(rec, "truncated")))
        f->truncated = true;
    if (keep != NULL) { /* the strings the flow only points to */
        const char *mode = json_string_value(json_object_get(json_object_get(rec, "client"),
                                                             "proxy_mode"));
        const char *note = json_string_value(json_object_get(rec, "rules_note"));

        if (mode != NULL && mode[0] != '\0') {
            snprintf(keep->proxy_mode, sizeof(keep->proxy_mode), "%s", mode);
            f->proxy_mode = keep->proxy_mode;
        }
        if (note != NULL && note[0] != '\0') {
            snprintf(keep->rules_note, sizeof(keep->rules_note), "%s", note);
            f->rules_note = keep->rules_note;
        }
    }
    rc = 0;
out:
    json_decref(rec);
    return rc;
}

/* rfile_line_mode finds the "proxy_mode" string of a record line without parsing it (the
 * writer's form: "proxy_mode":"..."); returns its length and start, or 0. */
static size_t rfile_line_mode(const char *line, size_t n, const char **start)
{
    static const char key[] = "\"proxy_mode\":\"";
    const char *p = memmem(line, n, key, sizeof(key) - 1), *q;

    if (p == NULL)
        return 0;
    p += sizeof(key) - 1;
    q = memchr(p, '"', n - (size_t)(p - line));
    *start = p;
    return q != NULL ? (size_t)(q - p) : 0;
}

/* rfile_several_modes returns whether the records of `in` (seekable; rewound after) came
 * from more than one listener, as the live lines then name each one's mode. */
static bool rfile_several_modes(FILE *in)
{
    char *line = NULL, first[RFILE_STR_MAX];
    size_t cap = 0, first_len = 0;
    bool several = false, have = false;
    ssize_t len;

    while (!several && (len = getline(&line, &cap, in)) != -1) {
        const char *m = NULL;
        size_t n = rfile_line_mode(line, (size_t)len, &m);

        if (n == 0 || n >= sizeof(first))
            continue;
        if (!have) {
            memcpy(first, m, n);
            first_len = n;
            have = true;
        } else {
            several = n != first_len || memcmp(first, m, n) != 0;
        }
    }
    free(line);
    clearerr(in);
    rewind(in);
    return several;
}

/* struct rfile_filters holds the three compiled filters; NULL matches every flow. */
struct rfile_filters {
    struct flowfilter *read, *view, *save;
};

static void rfile_filters_free(struct rfile_filters *ff)
{
    flowfilter_free(ff->read);
    flowfilter_free(ff->view);
    flowfilter_free(ff->save);
}

/* rfile_filters_compile compiles the ones that are set; returns 0 or -errno (named on
 * `err`). */
static int rfile_filters_compile(const struct config *cfg, struct rfile_filters *ff, FILE *err)
{
    const char *exprs[3] = {cfg->readfile_filter, cfg->view_filter, cfg->save_stream_filter};
    struct flowfilter **outs[3] = {&ff->read, &ff->view, &ff->save};
    char ebuf[512];

    for (int i = 0; i < 3; i++) {
        int e;

        if (exprs[i] == NULL || exprs[i][0] == '\0')
            continue;
        e = flowfilter_compile(exprs[i], outs[i], ebuf, sizeof(ebuf));
        if (e != 0) {
            fprintf(err, "mitmd: %s\n", ebuf);
            return e;
        }
    }
    return 0;
}

/* rfile_open_save opens the -w file for appending (created 0600), refusing the file being
 * read; returns the fd, -1 without -w, or -2 (named on `err`). */
static int rfile_open_save(const struct config *cfg, int in_fd, FILE *err)
{
    struct stat a, b;
    int fd;

    if (cfg->flow_file == NULL)
        return -1;
    fd = open(cfg->flow_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd == -1) {
        fprintf(err, "mitmd: -w %s: %s\n", cfg->flow_file, strerror(errno));
        return -2;
    }
    if (fstat(fd, &a) == 0 && fstat(in_fd, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
        fprintf(err, "mitmd: -r and -w name the same file (%s): it would read its own "
                     "output\n", cfg->flow_file);
        close(fd);
        return -2;
    }
    return fd;
}

int rfile_run(const struct config *cfg, FILE *out, FILE *err)
{
    struct rfile_filters ff = {0};
    struct flow *f = malloc(sizeof(*f));
    struct rfile_strs keep;
    char *line = NULL, *text = malloc(RFILE_TEXT_MAX);
    bool several = false, mitm, is_stdin = strcmp(cfg->rfile, "-") == 0;
    size_t cap = 0, lineno = 0, n_ok = 0, n_bad = 0;
    int status = 2, save_fd = -1, fd;
    FILE *in = NULL;
    ssize_t len;

    fd = is_stdin ? fcntl(0, F_DUPFD_CLOEXEC, 3) : open(cfg->rfile, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        fprintf(err, "mitmd: -r %s: %s\n", cfg->rfile, strerror(errno));
        goto out;
    }
    in = fdopen(fd, "r");
    if (in == NULL || f == NULL || text == NULL) {
        fprintf(err, "mitmd: -r %s: %s\n", cfg->rfile, strerror(errno));
        if (in == NULL)
            close(fd);
        goto out;
    }
    if (rfile_filters_compile(cfg, &ff, err) != 0)
        goto out;
    save_fd = rfile_open_save(cfg, fd, err);
    if (save_fd == -2)
        goto out;
    mitm = mitmflow_sniff(in);
    if (!mitm && !is_stdin && lseek(fd, 0, SEEK_CUR) != -1)
        several = rfile_several_modes(in);
    for (;;) {
        const char *why = NULL;
        size_t n;

        lineno++;
        if (mitm) { /* mitmproxy's flow file: each flow converted to a record line */
            int r;

            free(line); /* each flow's record is a new allocation */
            line = NULL;
            r = mitmflow_read(in, &line, &n, &why);
            if (r == 0)
                break;
            if (r < 0 && n_ok == 0 && n_bad == 0) {
                fprintf(err, "mitmd: -r %s: not a mitmd -w recording (JSON Lines) nor a "
                             "mitmproxy flow file: flow 1: %s\n", cfg->rfile, why);
                goto out;
            }
            if (r < 0) { /* e.g. cut short while mitmdump wrote it: what came before counts */
                n_bad++;
                fprintf(err, "mitmd: -r %s: flow %zu: %s (the rest is not read)\n",
                        cfg->rfile, lineno, why);
                break;
            }
            if (r == 2) {
                n_bad++;
                fprintf(err, "mitmd: -r %s: flow %zu: %s (skipped)\n", cfg->rfile, lineno, why);
                continue;
            }
        } else {
            if ((len = getline(&line, &cap, in)) == -1)
                break;
            n = (size_t)len;
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                n--;
            if (n == 0)
                continue;
        }
        if (n > RFILE_LINE_MAX || rfile_flow_from_line(line, n, f, &keep, &why) != 0) {
            if (why == NULL)
                why = "line too long";
            if (n_ok == 0 && n_bad == 0) { /* the first record decides what the file is */
                fprintf(err, "mitmd: -r %s: not a mitmd -w recording (JSON Lines) nor a "
                             "mitmproxy flow file: %s %zu is %s\n", cfg->rfile,
                        mitm ? "flow" : "line", lineno, why);
                goto out;
            }
            n_bad++;
            fprintf(err, "mitmd: -r %s:%zu: %s (skipped)\n", cfg->rfile, lineno, why);
            continue;
        }
        n_ok++;
        f->proxy_mode_in_line = several;
        f->showhost = cfg->showhost;
        if (!flowfilter_match(ff.read, f))
            continue;
        if (!cfg->quiet && flowfilter_match(ff.view, f)) {
            ssize_t tn = flow_format_line(f, text, RFILE_TEXT_MAX);

            if (tn < 0) {
                fprintf(err, "mitmd: -r %s:%zu: the flow line does not fit %u bytes\n",
                        cfg->rfile, lineno, RFILE_TEXT_MAX);
                goto out;
            }
            if (fwrite(text, 1, (size_t)tn, out) != (size_t)tn) {
                fprintf(err, "mitmd: writing flow lines failed: %s\n", strerror(errno));
                goto out;
            }
        }
        if (save_fd >= 0 && flowfilter_match(ff.save, f)) {
            line[n] = '\n'; /* as read, one line */
            if (fileio_write_all(save_fd, line, n + 1) != 0) {
                fprintf(err, "mitmd: -w %s: %s\n", cfg->flow_file, strerror(errno));
                goto out;
            }
        }
    }
    if (ferror(in)) {
        fprintf(err, "mitmd: -r %s: %s\n", cfg->rfile, strerror(errno));
        goto out;
    }
    if (fflush(out) == EOF) {
        fprintf(err, "mitmd: writing flow lines failed: %s\n", strerror(errno));
        goto out;
    }
    status = n_bad > 0 ? 1 : 0;
out:
    if (save_fd >= 0)
        close(save_fd);
    if (in != NULL)
        fclose(in);
    rfile_filters_free(&ff);
    free(line);
    free(text);
    free(f);
    return status;
}
