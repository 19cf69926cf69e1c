/* stats.h - the classes and histogram buckets of the counters in struct msg_stats (msg.h).
 * Owns the mapping of a method, a status and a duration to their slots, and the sums of
 * whole stats structs. Called by the workers (observing) and the master (summing, metrics
 * rendering). Never allocates, never blocks. */
#ifndef MITMD_SHARED_STATS_H
#define MITMD_SHARED_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "shared/msg.h"

/* STATS_HIST_BOUNDS_US lists the upper bounds of the MSG_HIST_BUCKETS finite buckets in
 * microseconds (Prometheus `le` labels: 0.0001 .. 30 seconds). */
extern const uint64_t STATS_HIST_BOUNDS_US[MSG_HIST_BUCKETS];

/* stats_method_class maps a request method (`len` bytes, not NUL-terminated) to its class;
 * anything not listed in enum msg_method is MSG_METHOD_OTHER. */
enum msg_method stats_method_class(const char *m, size_t len);

/* stats_status_class maps an HTTP status to its class; 0 and statuses outside 100..599 are
 * MSG_STATUS_NONE. */
enum msg_status_class stats_status_class(int status);

/* stats_method_name and stats_status_name return the label values ("GET", "2xx", "none"). */
const char *stats_method_name(enum msg_method m);
const char *stats_status_name(enum msg_status_class c);

/* stats_rule_kind_name returns the option name of rule kind `k` (0..MSG_RULE_KINDS-1),
 * "modify_headers" ... (the order of worker/rules.h enum rules_kind). */
const char *stats_rule_kind_name(int k);

/* stats_hist_observe adds one observation of `us` microseconds to the histogram that starts
 * at `h` (MSG_HIST_STRIDE slots: buckets, +Inf, sum). */
void stats_hist_observe(uint64_t *h, uint64_t us);

/* stats_add adds every slot of `src` to `dst`, the gauges (msg_stat_is_gauge) too when
 * `with_gauges`. */
void stats_add(struct msg_stats *dst, const struct msg_stats *src, int with_gauges);

#endif
