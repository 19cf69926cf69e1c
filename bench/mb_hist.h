/* mb_hist.h - log-bucket latency histogram for mitmd-bench (HDR-like, ~1.6% precision).
 * Owns only the bucket arithmetic: one histogram per bench thread, merged at the end by the
 * main thread. Never allocates (the histogram is a fixed-size struct) and never blocks. */
#ifndef MITMD_BENCH_MB_HIST_H
#define MITMD_BENCH_MB_HIST_H

#include <stdint.h>

/* Each power-of-two octave is split into 2^MB_HIST_SUB_BITS linear sub-buckets. */
#define MB_HIST_SUB_BITS 6
#define MB_HIST_SUB_COUNT (1u << MB_HIST_SUB_BITS)
/* Octave 0 holds values [0, MB_HIST_SUB_COUNT) exactly; octaves 1..58 cover the rest of
 * the uint64_t range. */
#define MB_HIST_BUCKETS ((64u - MB_HIST_SUB_BITS + 1u) * MB_HIST_SUB_COUNT)

/* struct mb_hist counts recorded values (nanoseconds in mitmd-bench) by bucket, and keeps
 * the exact minimum, maximum and sum. */
struct mb_hist {
    uint64_t count;
    uint64_t min, max;
    uint64_t sum;
    uint64_t buckets[MB_HIST_BUCKETS];
};

/* mb_hist_init empties `h`. */
void mb_hist_init(struct mb_hist *h);

/* mb_hist_bucket_of returns the bucket index for `v`; always < MB_HIST_BUCKETS. */
unsigned mb_hist_bucket_of(uint64_t v);

/* mb_hist_bucket_low returns the smallest value that falls into bucket `idx`, and
 * mb_hist_bucket_high the largest. `idx` must be < MB_HIST_BUCKETS. */
uint64_t mb_hist_bucket_low(unsigned idx);
uint64_t mb_hist_bucket_high(unsigned idx);

/* mb_hist_record adds one observation of `v`. */
void mb_hist_record(struct mb_hist *h, uint64_t v);

/* mb_hist_merge adds every count of `src` into `dst`. */
void mb_hist_merge(struct mb_hist *dst, const struct mb_hist *src);

/* mb_hist_percentile returns the value at percentile `p` (0 < p <= 100): the upper bound of
 * the bucket holding the ceil(p% * count)-th smallest value, clamped to the exact max (so
 * p=100 is the max). Returns 0 for an empty histogram. */
uint64_t mb_hist_percentile(const struct mb_hist *h, double p);

#endif
