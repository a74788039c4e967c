/*
 * STATS: counters kept with relaxed atomics (workers bump them without a
 * lock) and reported as (name, u64) pairs.
 */
#include "dev.h"

#include <string.h>

void dev_stats_max(atomic_ullong *a, unsigned long long v)
{
    unsigned long long cur = atomic_load_explicit(a, memory_order_relaxed);

    while (v > cur
           && !atomic_compare_exchange_weak_explicit(a, &cur, v, memory_order_relaxed,
                                                     memory_order_relaxed))
        ;
}

static unsigned long long ld(atomic_ullong *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static unsigned long long gauge(atomic_llong *a)
{
    long long v = atomic_load_explicit(a, memory_order_relaxed);

    return v < 0 ? 0 : (unsigned long long)v;
}

int dev_stats_write(struct ihsmd *d, ihsm_wr *out)
{
    struct dev_stats *s = &d->stats;
    unsigned long long frames = ld(&s->frames_in), req = ld(&s->requests);
    struct {
        const char *name;
        unsigned long long v;
    } rows[] = {
        { "requests", req },
        { "frames_in", frames },
        { "frames_out", ld(&s->frames_out) },
        { "requests_per_frame_x100", frames != 0 ? req * 100 / frames : 0 },
        { "largest_batch", ld(&s->largest_batch) },
        { "sign", ld(&s->sign) },
        { "derive", ld(&s->derive) },
        { "aead", ld(&s->aead) },
        { "random", ld(&s->random) },
        { "errors", ld(&s->errors) },
        { "malformed_frames", ld(&s->malformed_frames) },
        { "sessions_open", gauge(&s->sessions_open) },
        { "keys_loaded", gauge(&s->keys_loaded) },
        { "connections", gauge(&s->connections) },
        { "uptime_s", (unsigned long long)(dev_now_mono() - d->started) },
        { "state", dev_failed(d) ? IHSM_STATE_FAILED : IHSM_STATE_OPERATIONAL },
        { "workers", d->cfg.workers },
        /* memory hardening in effect (tests/device/hardening.sh) */
        { "secure_heap_bytes", ihsm_crypto_secure_heap_size() },
        { "heap_wipe", (unsigned long long)ihsm_crypto_mem_wiping() },
    };
    size_t n = sizeof(rows) / sizeof(rows[0]);

    ihsm_wr_u32(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        ihsm_wr_bytes(out, rows[i].name, strlen(rows[i].name));
        ihsm_wr_u64(out, rows[i].v);
    }
    return out->err ? IHSM_ERR_LIMIT_FRAME : IHSM_OK;
}
