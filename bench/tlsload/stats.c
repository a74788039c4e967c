/*
 * Counters and the latency histogram. Log-linear buckets (HDR-like): exact
 * below 128 ns, then 64 buckets per power of two, so p99 is within 1.6% and
 * memory does not grow with the run.
 */
#include <string.h>

#include "tlsload.h"

const char *const tl_err_names[TL_ERR__COUNT] = {
    [TL_ERR_CONNECT] = "connect",
    [TL_ERR_HANDSHAKE] = "handshake",
    [TL_ERR_VERIFY] = "verify",
    [TL_ERR_HTTP] = "http",
    [TL_ERR_ALPN] = "alpn",
    [TL_ERR_H2] = "h2",
    [TL_ERR_IO] = "io",
    [TL_ERR_TIMEOUT] = "timeout",
    [TL_ERR_RESUMED] = "resumed",
};

#define SUB (1u << TL_HIST_SUB_BITS)

static unsigned bucket_of(uint64_t v)
{
    unsigned msb, shift;

    if (v >= (1ULL << TL_HIST_MAX_BITS))
        v = (1ULL << TL_HIST_MAX_BITS) - 1;
    if (v < 2 * SUB)
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - TL_HIST_SUB_BITS;
    return shift * SUB + (unsigned)(v >> shift);
}

/* Lower bound and width of a bucket: the inverse of bucket_of(). */
static void bucket_range(unsigned idx, uint64_t *low, uint64_t *width)
{
    unsigned shift;

    if (idx < 2 * SUB) {
        *low = idx;
        *width = 1;
        return;
    }
    shift = idx / SUB - 1;
    *low = (uint64_t)(idx - shift * SUB) << shift;
    *width = 1ULL << shift;
}

void tl_hist_add(struct tl_hist *h, uint64_t ns)
{
    h->b[bucket_of(ns)]++;
    if (h->count == 0 || ns < h->min_ns)
        h->min_ns = ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
    h->count++;
    h->sum_ns += ns;
}

void tl_hist_merge(struct tl_hist *dst, const struct tl_hist *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min_ns < dst->min_ns)
        dst->min_ns = src->min_ns;
    if (src->max_ns > dst->max_ns)
        dst->max_ns = src->max_ns;
    dst->count += src->count;
    dst->sum_ns += src->sum_ns;
    for (unsigned i = 0; i < TL_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
}

uint64_t tl_hist_quantile(const struct tl_hist *h, double q)
{
    uint64_t rank, seen = 0, low, width, v;

    if (h->count == 0)
        return 0;
    if (q <= 0)
        return h->min_ns;
    if (q >= 1)
        return h->max_ns;
    rank = (uint64_t)(q * (double)h->count);
    if ((double)rank < q * (double)h->count)
        rank++;
    if (rank == 0)
        rank = 1;
    for (unsigned i = 0; i < TL_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen < rank)
            continue;
        bucket_range(i, &low, &width);
        v = low + width / 2;
        if (v < h->min_ns)
            v = h->min_ns;
        if (v > h->max_ns)
            v = h->max_ns;
        return v;
    }
    return h->max_ns;
}

void tl_stats_merge(struct tl_stats *dst, const struct tl_stats *src)
{
    dst->ok += src->ok;
    for (unsigned i = 0; i < TL_ERR__COUNT; i++)
        dst->errors[i] += src->errors[i];
    dst->connections += src->connections;
    dst->bytes_in += src->bytes_in;
    dst->bytes_out += src->bytes_out;
    dst->body_bytes += src->body_bytes;
    tl_hist_merge(&dst->lat, &src->lat);
}

uint64_t tl_stats_errors(const struct tl_stats *s)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < TL_ERR__COUNT; i++)
        n += s->errors[i];
    return n;
}
