/* mb_hist.c - log-bucket latency histogram for mitmd-bench.
 * Owns the value <-> bucket mapping. Called by bench threads (record) and the main thread
 * (merge, percentile). Never allocates. */
#include "bench/mb_hist.h"

#include <math.h>
#include <string.h>

void mb_hist_init(struct mb_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned mb_hist_bucket_of(uint64_t v)
{
    unsigned msb, octave;

    if (v < MB_HIST_SUB_COUNT)
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v); /* >= MB_HIST_SUB_BITS */
    octave = msb - MB_HIST_SUB_BITS + 1u;     /* 1 .. 64 - SUB_BITS */
    /* The top SUB_BITS+1 bits of v are in [SUB_COUNT, 2*SUB_COUNT). */
    return octave * MB_HIST_SUB_COUNT +
           (unsigned)((v >> (msb - MB_HIST_SUB_BITS)) - MB_HIST_SUB_COUNT);
}

uint64_t mb_hist_bucket_low(unsigned idx)
{
    unsigned octave = idx / MB_HIST_SUB_COUNT, sub = idx % MB_HIST_SUB_COUNT;

    if (octave == 0)
        return sub;
    return ((uint64_t)MB_HIST_SUB_COUNT + sub) << (octave - 1u);
}

uint64_t mb_hist_bucket_high(unsigned idx)
{
    unsigned octave = idx / MB_HIST_SUB_COUNT;

    if (octave == 0)
        return idx;
    return mb_hist_bucket_low(idx) + (((uint64_t)1 << (octave - 1u)) - 1u);
}

void mb_hist_record(struct mb_hist *h, uint64_t v)
{
    h->buckets[mb_hist_bucket_of(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void mb_hist_merge(struct mb_hist *dst, const struct mb_hist *src)
{
    if (src->count == 0)
        return;
    for (unsigned i = 0; i < MB_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t mb_hist_percentile(const struct mb_hist *h, double p)
{
    uint64_t rank, seen = 0;

    if (h->count == 0)
        return 0;
    if (p >= 100.0)
        return h->max;
    if (p <= 0.0)
        return h->min;
    rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank == 0)
        rank = 1;
    for (unsigned i = 0; i < MB_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = mb_hist_bucket_high(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}
