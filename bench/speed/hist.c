/*
 * Latency histogram: log-linear buckets over nanoseconds, exact below 64 ns,
 * then 32 buckets per power of two (quantiles within ~3%), a fixed 9 KiB per
 * worker however long the run: per-op samples in bounded memory.
 */
#include <string.h>

#include "speed.h"

#define SUB (1u << SP_HIST_SUB_BITS)

static unsigned bucket_of(uint64_t v)
{
    unsigned msb, shift;

    if (v >= (1ull << SP_HIST_MAX_BITS))
        v = (1ull << SP_HIST_MAX_BITS) - 1;
    if (v < 2 * SUB)
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - SP_HIST_SUB_BITS;
    return shift * SUB + (unsigned)(v >> shift);
}

/* Midpoint of a bucket: the inverse of bucket_of(). */
static uint64_t bucket_mid(unsigned idx)
{
    unsigned shift;

    if (idx < 2 * SUB)
        return idx;
    shift = idx / SUB - 1;
    return ((uint64_t)(idx - shift * SUB) << shift) + (1ull << shift) / 2;
}

void sp_hist_add(struct sp_hist *h, uint64_t ns)
{
    h->b[bucket_of(ns)]++;
    h->count++;
}

void sp_hist_merge(struct sp_hist *dst, const struct sp_hist *src)
{
    for (unsigned i = 0; i < SP_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
}

uint64_t sp_hist_quantile(const struct sp_hist *h, double q)
{
    uint64_t rank, seen = 0;

    if (h->count == 0)
        return 0;
    rank = (uint64_t)(q * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    for (unsigned i = 0; i < SP_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > rank)
            return bucket_mid(i);
    }
    return bucket_mid(SP_HIST_BUCKETS - 1);
}
