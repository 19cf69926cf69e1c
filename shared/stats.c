/* stats.c - see stats.h. */
#include "shared/stats.h"

#include <string.h>

const uint64_t STATS_HIST_BOUNDS_US[MSG_HIST_BUCKETS] = {
    100,    250,    500,    1000,    2500,    5000,    10000,    25000,    50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000,
};

static const char *const stats_methods[MSG_METHOD_COUNT] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "other",
};

static const char *const stats_statuses[MSG_STATUS_COUNT] = {
    "none", "1xx", "2xx", "3xx", "4xx", "5xx",
};

static const char *const stats_rule_kinds[MSG_RULE_KINDS] = {
    "modify_headers", "map_remote", "block_list", "inject_latency", "inject_error", "inject_fault",
    "map_local", "modify_body",
};

const char *stats_rule_kind_name(int k)
{
    return k >= 0 && k < MSG_RULE_KINDS ? stats_rule_kinds[k] : "other";
}

enum msg_method stats_method_class(const char *m, size_t len)
{
    for (int i = 0; i < MSG_METHOD_OTHER; i++)
        if (strlen(stats_methods[i]) == len && memcmp(stats_methods[i], m, len) == 0)
            return (enum msg_method)i;
    return MSG_METHOD_OTHER;
}

enum msg_status_class stats_status_class(int status)
{
    if (status < 100 || status > 599)
        return MSG_STATUS_NONE;
    return (enum msg_status_class)(status / 100);
}

const char *stats_method_name(enum msg_method m)
{
    return (unsigned)m < MSG_METHOD_COUNT ? stats_methods[m] : "other";
}

const char *stats_status_name(enum msg_status_class c)
{
    return (unsigned)c < MSG_STATUS_COUNT ? stats_statuses[c] : "none";
}

void stats_hist_observe(uint64_t *h, uint64_t us)
{
    int b = 0;

    while (b < MSG_HIST_BUCKETS && us > STATS_HIST_BOUNDS_US[b])
        b++;
    h[b]++; /* b == MSG_HIST_INF past the last bound */
    h[MSG_HIST_SUM] += us;
}

void stats_add(struct msg_stats *dst, const struct msg_stats *src, int with_gauges)
{
    for (int k = 0; k < MSG_STAT_SLOTS; k++)
        if (with_gauges || !msg_stat_is_gauge(k))
            dst->v[k] += src->v[k];
}
