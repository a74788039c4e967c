/*
 * One row: keys, the correctness check, warmup, then slices that alternate
 * the ihsm side and the baseline (ABBA order, so a drift in machine load
 * hits both sides alike), and the medians over slices.
 *
 * Fair by construction: ihsmd's workers use every CPU, so the baseline gets
 * every CPU too. sync: max(T, nCPU) threads of the default provider. async:
 * nCPU threads, each running the same ASYNC job loop with D/nCPU slots (at
 * least one). The default provider's jobs never pause, so each of those
 * threads is in effect a plain loop plus a fibre switch per operation: the
 * same code path as the ihsm side, the best the CPUs can do in process.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "speed.h"

#define MIN_SLICES 3

struct prog {
    const struct sp_opts *o;
    const char *row, *what;
    unsigned k, n;
};

static void on_progress(void *arg, uint64_t ops, double elapsed_s)
{
    struct prog *p = arg;

    sp_progress(p->o, "%s: %s %u/%u: %.0f ops/s", p->row, p->what, p->k, p->n,
                elapsed_s > 0 ? (double)ops / elapsed_s : 0.0);
}

struct side_acc {
    double rates[(size_t)SP_MAX_SECONDS + MIN_SLICES];
    unsigned n;
    uint64_t ops;
    double secs, cpu, dcpu;
    int dcpu_known;
    struct sp_hist hist;
};

static int run_slice(const struct sp_opts *o, struct sp_side *s, enum sp_mode mode,
                     unsigned workers, unsigned slots, double secs, const struct sp_device *dev,
                     struct side_acc *acc, struct prog *p, uint64_t *ops_out)
{
    struct sp_slice sl;

    if (sp_slice_run(s, mode, workers, slots, secs, dev, acc != NULL ? &acc->hist : NULL,
                     on_progress, p, &sl) != 0)
        return -1;
    if (ops_out != NULL)
        *ops_out += sl.ops;
    if (atomic_load(&sp_interrupted))
        return -1;
    if (acc == NULL)
        return 0;
    acc->rates[acc->n++] = sl.elapsed_s > 0 ? (double)sl.ops / sl.elapsed_s : 0;
    acc->ops += sl.ops;
    acc->secs += sl.elapsed_s;
    acc->cpu += sl.cpu_caller_s;
    if (sl.cpu_device_s >= 0)
        acc->dcpu += sl.cpu_device_s;
    else
        acc->dcpu_known = 0;
    return 0;
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

int sp_bench_row(const struct sp_opts *o, const struct sp_libs *libs,
                 const struct sp_device *dev, const struct sp_row *row,
                 struct sp_result *res, int *skipped)
{
    const struct sp_op_ops *ops = sp_ops_for(row);
    struct sp_side ihsm = { .row = row, .ops = ops, .lc = libs->ihsm, .sw = libs->base,
                            .propq = SP_PROPQ_IHSM, .label = "ihsm" };
    struct sp_side base = { .row = row, .ops = ops, .lc = libs->base, .sw = libs->base,
                            .propq = NULL, .label = "baseline" };
    struct side_acc *ai = calloc(1, sizeof(*ai)), *ab = calloc(1, sizeof(*ab));
    struct sp_devstats d0, d1;
    struct prog p = { .o = o, .row = row->name };
    unsigned ncpu = sp_ncpu(), nslices, iw, is, bw, bs;
    const char *missing;
    double slice_s, la[1];
    int rc = SP_EXIT_FAIL, ihsm_ok = 0, base_ok = 0;

    memset(res, 0, sizeof(*res));
    *skipped = 0;
    if (ai == NULL || ab == NULL) {
        fprintf(stderr, "ihsm-speed: out of memory\n");
        goto out;
    }
    if ((missing = ops->missing(row, libs->ihsm, SP_PROPQ_IHSM)) != NULL) {
        *skipped = 1;
        sp_report_skip(o, row, missing);
        rc = SP_EXIT_OK;
        goto out;
    }
    if ((missing = ops->missing(row, libs->base, NULL)) != NULL) {
        fprintf(stderr, "ihsm-speed: %s: OpenSSL's default provider has no %s: nothing to "
                "compare with\n", row->name, missing);
        goto out;
    }
    sp_progress(o, "%s: making keys", row->name);
    if (!(ihsm_ok = ops->side_init(&ihsm)) || !(base_ok = ops->side_init(&base)))
        goto out;
    memset(&d0, 0, sizeof(d0));
    memset(&d1, 0, sizeof(d1));
    sp_devstats_read(dev->socket, &d0);
    if (!ops->check(&ihsm, &base))
        goto out;
    res->verified = 1;

    res->row = row;
    res->mode = o->mode;
    res->ncpu = ncpu;
    if (o->mode == SP_MODE_SYNC) {
        iw = o->threads, is = 1;
        bw = o->threads > ncpu ? o->threads : ncpu, bs = 1;
        res->threads = iw, res->depth = 1;
        res->base_threads = bw, res->base_depth = 1;
    } else {
        iw = 1, is = o->depth;
        bw = ncpu, bs = o->depth / ncpu > 0 ? o->depth / ncpu : 1;
        res->threads = 1, res->depth = o->depth;
        res->base_threads = bw, res->base_depth = bs;
    }

    if (o->warmup > 0) {
        p.what = "warmup ihsm", p.k = 1, p.n = 1;
        if (run_slice(o, &ihsm, o->mode, iw, is, o->warmup, dev, NULL, &p, &res->device_ops))
            goto out;
        p.what = "warmup baseline";
        if (run_slice(o, &base, o->mode, bw, bs, o->warmup, dev, NULL, &p, NULL))
            goto out;
    }
    nslices = (unsigned)lround(o->seconds);
    if (nslices < MIN_SLICES)
        nslices = MIN_SLICES;
    slice_s = o->seconds / nslices;
    ai->dcpu_known = 1;
    p.n = nslices;
    for (unsigned k = 0; k < nslices; k++) {
        p.k = k + 1;
        for (int half = 0; half < 2; half++) {
            int ihsm_turn = (half == 0) == (k % 2 == 0);

            p.what = ihsm_turn ? "ihsm slice" : "baseline slice";
            if (ihsm_turn ? run_slice(o, &ihsm, o->mode, iw, is, slice_s, dev, ai, &p,
                                      &res->device_ops)
                          : run_slice(o, &base, o->mode, bw, bs, slice_s, dev, ab, &p, NULL))
                goto out;
        }
    }
    sp_progress_end(o);
    res->device_ops += ihsm.check_ops;
    res->device_counter = -1;
    res->requests_per_frame = -1;
    if (d0.ok && sp_devstats_read(dev->socket, &d1) == 0 && d1.ok) {
        res->device_counter = (int64_t)(sp_devstats_counter(&d1, row->kind)
                                        - sp_devstats_counter(&d0, row->kind));
        if (d1.frames_in > d0.frames_in)
            res->requests_per_frame = (double)(d1.requests - d0.requests)
                                      / (double)(d1.frames_in - d0.frames_in);
    }

    res->slices = nslices;
    res->seconds_each = ai->secs;
    res->ops = ai->ops;
    res->base_ops = ab->ops;
    res->ops_per_s = sp_median(ai->rates, ai->n);
    res->base_ops_per_s = sp_median(ab->rates, ab->n);
    res->ratio = res->base_ops_per_s > 0 ? res->ops_per_s / res->base_ops_per_s : 0;
    res->p50_us = us(sp_hist_quantile(&ai->hist, 0.50));
    res->p99_us = us(sp_hist_quantile(&ai->hist, 0.99));
    res->base_p50_us = us(sp_hist_quantile(&ab->hist, 0.50));
    res->base_p99_us = us(sp_hist_quantile(&ab->hist, 0.99));
    res->cpu_caller_s = ai->cpu;
    res->cpu_device_s = ai->dcpu_known ? ai->dcpu : -1;
    res->base_cpu_s = ab->cpu;
    res->cpu_ratio = -1;
    if (ai->dcpu_known && ai->cpu + ai->dcpu > 0 && ab->cpu > 0 && ab->ops > 0)
        res->cpu_ratio = ((double)ai->ops / (ai->cpu + ai->dcpu)) / ((double)ab->ops / ab->cpu);
    res->loadavg1 = getloadavg(la, 1) == 1 ? la[0] : -1;
    rc = SP_EXIT_OK;
out:
    sp_progress_end(o);
    if (atomic_load(&sp_interrupted) && rc != SP_EXIT_OK)
        fprintf(stderr, "ihsm-speed: %s: interrupted\n", row->name);
    if (ihsm_ok)
        ops->side_fini(&ihsm);
    if (base_ok)
        ops->side_fini(&base);
    free(ai);
    free(ab);
    return rc;
}
