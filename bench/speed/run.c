/*
 * One slice of one side. Threads are made for every slice, and each builds
 * its slots (and ASYNC job pool) before the slice starts, so set-up is never
 * measured. The measured window runs from "go" to the moment every worker
 * has finished what it had in flight after "stop": operations and CPU time
 * are counted over the same window. CPU time: getrusage(RUSAGE_SELF) covers
 * all our threads (the offload queue's reaper included), /proc/PID/stat
 * covers ihsmd's workers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "speed.h"

#define PROGRESS_EVERY_NS 250000000ull

atomic_int sp_interrupted;

static void nap_us(unsigned us)
{
    struct timespec ts = { 0, (long)us * 1000L };

    nanosleep(&ts, NULL);
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double cpu_self_s(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
}

static void *worker_main(void *arg)
{
    struct sp_worker *w = arg;
    struct sp_run *run = w->run;
    struct sp_side *s = run->side;
    int prepared = 0;
    char name[16];

    /* thread names tell the two sides apart in perf and top */
    snprintf(name, sizeof(name), "%s-%u", s->propq != NULL ? "sp-ihsm" : "sp-base", w->id);
    pthread_setname_np(pthread_self(), name);
    w->slots = calloc(w->nslots, sizeof(*w->slots));
    if (w->slots == NULL)
        w->failed = 1;
    for (unsigned i = 0; !w->failed && i < w->nslots; i++)
        if ((w->slots[i] = s->ops->slot_new(s, w->id * run->slots_per_worker + i)) == NULL)
            w->failed = 1;
    if (!w->failed) {
        if (run->loop->prepare(w))
            prepared = 1;
        else
            w->failed = 1;
    }
    atomic_fetch_add(&run->ready, 1);
    while (!atomic_load(&run->go))
        nap_us(50);
    if (!w->failed)
        run->loop->run(w);
    atomic_fetch_add(&run->done, 1);
    while (!atomic_load(&run->release))
        nap_us(200);
    if (prepared)
        run->loop->finish(w);
    for (unsigned i = 0; w->slots != NULL && i < w->nslots; i++)
        s->ops->slot_free(w->slots[i]);
    free(w->slots);
    return NULL;
}

int sp_slice_run(struct sp_side *side, enum sp_mode mode, unsigned nworkers,
                 unsigned slots_per_worker, double seconds, const struct sp_device *dev,
                 struct sp_hist *hist, sp_progress_fn progress, void *parg,
                 struct sp_slice *out)
{
    struct sp_run run;
    struct sp_worker *ws;
    unsigned started = 0, failed = 0;
    uint64_t t0, deadline, last_progress, last_done = 0;
    double cpu0 = 0, dcpu0 = -1, cpu1, dcpu1;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    memset(&run, 0, sizeof(run));
    run.side = side;
    run.loop = mode == SP_MODE_ASYNC ? &sp_loop_async : &sp_loop_sync;
    run.nworkers = nworkers;
    run.slots_per_worker = slots_per_worker;
    run.record = hist != NULL;
    if ((ws = calloc(nworkers, sizeof(*ws))) == NULL) {
        fprintf(stderr, "ihsm-speed: out of memory for %u workers\n", nworkers);
        return -1;
    }
    for (unsigned i = 0; i < nworkers; i++) {
        int e;

        ws[i].run = &run;
        ws[i].id = i;
        ws[i].nslots = slots_per_worker;
        if ((e = pthread_create(&ws[i].th, NULL, worker_main, &ws[i])) != 0) {
            fprintf(stderr, "ihsm-speed: cannot start a worker thread: %s\n", strerror(e));
            rc = -1;
            break;
        }
        started++;
    }
    while (atomic_load(&run.ready) < started)
        nap_us(100);
    for (unsigned i = 0; i < started; i++)
        failed += ws[i].failed;
    if (rc != 0 || failed != 0) {
        rc = -1;
        atomic_store(&run.stop, 1);
    }

    cpu0 = cpu_self_s();
    dcpu0 = sp_device_cpu_s(dev);
    t0 = sp_now_ns();
    deadline = t0 + (uint64_t)(seconds * 1e9);
    last_progress = t0;
    atomic_store(&run.go, 1);
    for (;;) {
        uint64_t now = sp_now_ns(), left;

        if (now >= deadline || atomic_load(&sp_interrupted) || atomic_load(&run.done) > 0)
            break;
        left = deadline - now;
        nap_us(left > 20000000ull ? 20000 : (unsigned)(left / 1000) + 1);
        if (progress != NULL && sp_now_ns() - last_progress >= PROGRESS_EVERY_NS) {
            uint64_t ops = 0;

            for (unsigned i = 0; i < started; i++)
                ops += atomic_load_explicit(&ws[i].ops, memory_order_relaxed);
            last_progress = sp_now_ns();
            progress(parg, ops, (double)(last_progress - t0) / 1e9);
        }
    }
    atomic_store(&run.stop, 1);
    while (atomic_load(&run.done) < started)
        nap_us(100);
    cpu1 = cpu_self_s();
    dcpu1 = sp_device_cpu_s(dev);

    for (unsigned i = 0; i < started; i++) {
        out->ops += atomic_load(&ws[i].ops);
        if (ws[i].last_done_ns > last_done)
            last_done = ws[i].last_done_ns;
        if (ws[i].failed)
            rc = -1;
        if (hist != NULL)
            sp_hist_merge(hist, &ws[i].hist);
    }
    out->elapsed_s = last_done > t0 ? (double)(last_done - t0) / 1e9 : 0;
    out->cpu_caller_s = cpu1 - cpu0;
    out->cpu_device_s = dcpu0 >= 0 && dcpu1 >= 0 ? dcpu1 - dcpu0 : -1;

    atomic_store(&run.release, 1);
    for (unsigned i = 0; i < started; i++)
        pthread_join(ws[i].th, NULL);
    free(ws);
    return rc;
}
