/* mb_report.c - text and JSON summaries of a mitmd-bench run.
 * Owns the output formats. Called by main only, after all bench threads have been joined.
 * Never allocates. */
#include "bench/mb_report.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

/* struct out appends formatted text to a fixed buffer and remembers overflow. */
struct out {
    char *p;
    size_t cap, len;
    bool overflow;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->overflow)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->overflow = true;
        return;
    }
    o->len += (size_t)n;
}

int mb_report_json_escape(const char *in, char *out, size_t cap)
{
    size_t n = 0;

    if (cap < 3)
        return -ENOSPC;
    out[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)in; *p != '\0'; p++) {
        char esc[8];
        size_t k;

        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            k = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            k = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", *p);
        } else {
            esc[0] = (char)*p;
            k = 1;
        }
        if (n + k + 2 > cap)
            return -ENOSPC;
        memcpy(out + n, esc, k);
        n += k;
    }
    out[n++] = '"';
    out[n] = '\0';
    return (int)n;
}

static double per_s(uint64_t count, uint64_t ns)
{
    return ns == 0 ? 0.0 : (double)count * 1e9 / (double)ns;
}

static double us(uint64_t ns) { return (double)ns / 1e3; }

int mb_report_json(const struct mb_opts *o, const struct mb_stats *s, uint64_t measured_ns,
                   char *buf, size_t cap)
{
    struct out out = {.p = buf, .cap = cap};
    char proxy[MB_OPTS_HOST_MAX + 16], proxy_json[6 * sizeof(proxy) + 3];
    char err_json[6 * MB_STATS_ERROR_MAX + 3];
    const struct mb_hist *h = &s->latency;

    if (o->have_proxy) {
        snprintf(proxy, sizeof(proxy), "%s%s%s:%u", strchr(o->proxy.host, ':') ? "[" : "",
                 o->proxy.host, strchr(o->proxy.host, ':') ? "]" : "", (unsigned)o->proxy.port);
        if (mb_report_json_escape(proxy, proxy_json, sizeof(proxy_json)) < 0)
            return -ENOSPC;
    } else {
        strcpy(proxy_json, "null");
    }
    if (s->first_error_ns != 0) {
        if (mb_report_json_escape(s->first_error, err_json, sizeof(err_json)) < 0)
            return -ENOSPC;
    } else {
        strcpy(err_json, "null");
    }
    put(&out, "{\"mode\":\"%s\",\"protocol\":\"%s\",\"proxy\":%s,\"connections\":%u,",
        mb_opts_mode_name(o->mode), o->h2 ? "h2" : "http/1.1", proxy_json, o->connections);
    put(&out, "\"streams\":%u,\"threads\":%u,", o->streams, o->threads);
    put(&out, "\"duration_s\":%.3f,\"requests\":%llu,\"errors\":%llu,\"rps\":%.1f,",
        (double)measured_ns / 1e9, (unsigned long long)s->requests, (unsigned long long)s->errors,
        per_s(s->requests, measured_ns));
    put(&out, "\"handshakes\":%llu,\"resumed\":%llu,\"handshakes_per_s\":%.1f,\"retried\":%llu,",
        (unsigned long long)s->handshakes, (unsigned long long)s->resumed,
        per_s(s->handshakes, measured_ns), (unsigned long long)s->retried);
    put(&out, "\"bytes_rx\":%llu,\"bytes_tx\":%llu,\"bytes_per_s\":%.0f,",
        (unsigned long long)s->bytes_rx, (unsigned long long)s->bytes_tx,
        per_s(s->bytes_rx + s->bytes_tx, measured_ns));
    put(&out, "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"mean\":%.1f},",
        us(mb_hist_percentile(h, 50)), us(mb_hist_percentile(h, 90)), us(mb_hist_percentile(h, 99)),
        us(mb_hist_percentile(h, 100)), h->count != 0 ? us(h->sum / h->count) : 0.0);
    put(&out, "\"handshake_us\":{\"p50\":%.1f,\"p99\":%.1f},",
        us(mb_hist_percentile(&s->handshake, 50)), us(mb_hist_percentile(&s->handshake, 99)));
    put(&out, "\"errors_by_kind\":{");
    for (unsigned k = 0; k < MB_ERR_KIND_COUNT; k++)
        put(&out, "%s\"%s\":%llu", k == 0 ? "" : ",", mb_err_kind_name(k),
            (unsigned long long)s->errors_by_kind[k]);
    put(&out, "},");
    if (o->rate > 0)
        put(&out, "\"rate\":%.1f,", o->rate);
    else
        put(&out, "\"rate\":null,");
    put(&out, "\"first_error\":%s}", err_json);
    if (out.overflow)
        return -ENOSPC;
    return (int)out.len;
}

void mb_report_text(FILE *f, const struct mb_opts *o, const struct mb_stats *s,
                    uint64_t measured_ns)
{
    const struct mb_hist *h = &s->latency;
    double secs = (double)measured_ns / 1e9;

    fprintf(f, "mitmd-bench: %s, ", mb_opts_mode_name(o->mode));
    if (o->have_proxy)
        fprintf(f, "via proxy %s:%u to %s:%u", o->proxy.host, (unsigned)o->proxy.port,
                o->host_pattern, (unsigned)o->origin.port);
    else
        fprintf(f, "direct to %s:%u (host %s)", o->origin.host, (unsigned)o->origin.port,
                o->host_pattern);
    fprintf(f, ", %s, %u connections", o->h2 ? "h2" : "http/1.1", o->connections);
    if (o->h2)
        fprintf(f, " x %u streams", o->streams);
    fprintf(f, ", %u threads", o->threads);
    if (o->rate > 0)
        fprintf(f, ", open loop at %.1f req/s", o->rate);
    fprintf(f, "\n  measured   %.3f s\n", secs);
    fprintf(f, "  requests   %llu (%.1f/s), errors %llu\n", (unsigned long long)s->requests,
            per_s(s->requests, measured_ns), (unsigned long long)s->errors);
    fprintf(f, "  handshakes %llu (%.1f/s, %llu resumed), connects %llu, retried %llu\n",
            (unsigned long long)s->handshakes, per_s(s->handshakes, measured_ns),
            (unsigned long long)s->resumed, (unsigned long long)s->connects,
            (unsigned long long)s->retried);
    fprintf(f, "  bytes      rx %llu, tx %llu (%.2f MB/s)\n", (unsigned long long)s->bytes_rx,
            (unsigned long long)s->bytes_tx, per_s(s->bytes_rx + s->bytes_tx, measured_ns) / 1e6);
    fprintf(f, "  latency us p50 %.1f  p90 %.1f  p99 %.1f  max %.1f  mean %.1f\n",
            us(mb_hist_percentile(h, 50)), us(mb_hist_percentile(h, 90)),
            us(mb_hist_percentile(h, 99)), us(mb_hist_percentile(h, 100)),
            h->count != 0 ? us(h->sum / h->count) : 0.0);
    if (s->handshake.count != 0)
        fprintf(f, "  handshake  us p50 %.1f  p99 %.1f (connect start to handshake done)\n",
                us(mb_hist_percentile(&s->handshake, 50)),
                us(mb_hist_percentile(&s->handshake, 99)));
    if (s->errors != 0) {
        fprintf(f, "  errors by kind:");
        for (unsigned k = 0; k < MB_ERR_KIND_COUNT; k++)
            if (s->errors_by_kind[k] != 0)
                fprintf(f, " %s %llu", mb_err_kind_name(k),
                        (unsigned long long)s->errors_by_kind[k]);
        fprintf(f, "\n  first error: %s\n", s->first_error);
    }
}
