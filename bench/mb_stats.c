/* mb_stats.c - per-thread counters of mitmd-bench.
 * Owns counting and the first-error rule. Called by the bench thread that owns the struct,
 * and by the main thread after join (merge). Never allocates. */
#include "bench/mb_stats.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const kind_names[MB_ERR_KIND_COUNT] = {
    [MB_ERR_CONNECT] = "connect", [MB_ERR_PROXY] = "proxy",       [MB_ERR_TLS] = "tls",
    [MB_ERR_STATUS] = "status",   [MB_ERR_PROTOCOL] = "protocol", [MB_ERR_TIMEOUT] = "timeout",
    [MB_ERR_IO] = "io",
};

void mb_stats_init(struct mb_stats *s)
{
    memset(s, 0, sizeof(*s));
    mb_hist_init(&s->latency);
    mb_hist_init(&s->handshake);
}

const char *mb_err_kind_name(enum mb_err_kind k)
{
    if ((unsigned)k >= MB_ERR_KIND_COUNT)
        return "unknown";
    return kind_names[k];
}

void mb_stats_error(struct mb_stats *s, enum mb_err_kind k, uint64_t now_ns, const char *fmt, ...)
{
    va_list ap;

    if (!s->recording || (unsigned)k >= MB_ERR_KIND_COUNT)
        return;
    s->errors++;
    s->errors_by_kind[k]++;
    if (s->first_error_ns != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(s->first_error, sizeof(s->first_error), fmt, ap);
    va_end(ap);
    s->first_error_ns = now_ns != 0 ? now_ns : 1;
}

void mb_stats_merge(struct mb_stats *dst, const struct mb_stats *src)
{
    dst->requests += src->requests;
    dst->errors += src->errors;
    for (unsigned k = 0; k < MB_ERR_KIND_COUNT; k++)
        dst->errors_by_kind[k] += src->errors_by_kind[k];
    dst->handshakes += src->handshakes;
    dst->resumed += src->resumed;
    dst->connects += src->connects;
    dst->retried += src->retried;
    dst->bytes_rx += src->bytes_rx;
    dst->bytes_tx += src->bytes_tx;
    mb_hist_merge(&dst->latency, &src->latency);
    mb_hist_merge(&dst->handshake, &src->handshake);
    if (src->first_error_ns != 0 &&
        (dst->first_error_ns == 0 || src->first_error_ns < dst->first_error_ns)) {
        dst->first_error_ns = src->first_error_ns;
        memcpy(dst->first_error, src->first_error, sizeof(dst->first_error));
    }
}
