/*
 * Crypto workers. A decoded request frame is one job; workers claim its
 * entries in chunks (so a batch of 64 signatures spreads over every core),
 * and the worker that completes the last entry encodes the completion
 * frame and sends it itself: no hop back through the event loop.
 *
 * The queue lock covers only taking a chunk; requests run unlocked.
 */
#include "dev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dev_job *dev_job_new(struct dev_conn *c, uint32_t count)
{
    struct dev_job *j;

    if (count == 0 || count > IHSM_MAX_BATCH)
        return NULL;
    j = calloc(1, sizeof(*j) + count * (sizeof(ihsm_entry) + sizeof(struct dev_result)));
    if (j == NULL)
        return NULL;
    j->ent = (ihsm_entry *)(j + 1);
    j->res = (struct dev_result *)(j->ent + count);
    j->count = count;
    for (uint32_t i = 0; i < count; i++)
        ihsm_wr_init(&j->res[i].out);
    j->conn = c;
    dev_conn_get(c);
    atomic_fetch_add(&c->jobs, 1);
    return j;
}

static void job_free(struct ihsmd *d, struct dev_job *j)
{
    for (uint32_t i = 0; i < j->count; i++)
        ihsm_wr_free(&j->res[i].out); /* cleansed: may hold plaintext */
    atomic_fetch_sub(&j->conn->inflight, j->inflight);
    /* the last answer to a client being hung up on has gone: hang up */
    if (atomic_fetch_sub(&j->conn->jobs, 1) == 1 && atomic_load(&j->conn->hangup))
        dev_conn_kill(j->conn);
    dev_pool_put(&d->pool, j->buf, j->buf_len);
    dev_conn_put(d, j->conn);
    free(j);
}

static void flush(struct ihsmd *d, struct dev_job *j, ihsm_wr *w)
{
    int st = ihsm_frame_finish(w);

    if (st == IHSM_OK)
        dev_conn_send(d, j->conn, w->p, w->len);
    else
        dev_log("cannot encode a completion frame: %s", ihsm_status_name(st));
    ihsm_frame_begin(w, IHSM_FRAME_COMPLETION);
}

/* One completion frame for the request frame; more only if the answers do
 * not fit in one (256 RANDOMs of 64 KiB). */
static void job_answer(struct ihsmd *d, struct dev_job *j)
{
    ihsm_wr w;
    uint32_t in_frame = 0;

    if (atomic_load(&j->conn->dead))
        return;
    ihsm_wr_init(&w);
    ihsm_frame_begin(&w, IHSM_FRAME_COMPLETION);
    for (uint32_t i = 0; i < j->count; i++) {
        struct dev_result *r = &j->res[i];
        size_t plen = r->status == IHSM_OK ? r->out.len : 0, mark;

        if (in_frame > 0 && w.len + IHSM_ENTRY_HDR_LEN + plen > IHSM_MAX_FRAME) {
            flush(d, j, &w);
            in_frame = 0;
        }
        mark = ihsm_frame_entry_begin(&w, j->ent[i].id, j->ent[i].cmd, r->status, 0);
        if (plen > 0)
            ihsm_wr_raw(&w, r->out.p, plen);
        ihsm_frame_entry_end(&w, mark);
        in_frame++;
    }
    flush(d, j, &w);
    ihsm_wr_free(&w);
}

static void job_done(struct ihsmd *d, struct dev_job *j)
{
    struct dev_workers *wk = &d->workers;

    /* out of the in-flight count before the answer leaves: a client that
     * waits for its answers never meets IHSM_ERR_LIMIT_INFLIGHT */
    atomic_fetch_sub(&j->conn->inflight, j->inflight);
    j->inflight = 0;
    job_answer(d, j);
    job_free(d, j);
    pthread_mutex_lock(&wk->mu);
    if (--wk->active == 0)
        pthread_cond_broadcast(&wk->idle_cv);
    pthread_mutex_unlock(&wk->mu);
}

static void run_entry(struct ihsmd *d, struct dev_job *j, uint32_t i)
{
    struct dev_result *r = &j->res[i];

    if (!r->preset) {
        r->status = (uint16_t)dev_cmd_execute(d, j->conn, &j->ent[i], &r->out);
        if (r->status == IHSM_OK && r->out.len > IHSM_MAX_PAYLOAD) {
            r->status = IHSM_ERR_LIMIT_FRAME;
            ihsm_wr_reset(&r->out);
        }
    }
    if (r->status != IHSM_OK)
        atomic_fetch_add_explicit(&d->stats.errors, 1, memory_order_relaxed);
}

static void *worker_main(void *arg)
{
    struct ihsmd *d = arg;
    struct dev_workers *wk = &d->workers;

    for (;;) {
        struct dev_job *j;
        uint32_t start, n, count;

        pthread_mutex_lock(&wk->mu);
        while (wk->head == NULL && !wk->stop)
            pthread_cond_wait(&wk->cv, &wk->mu);
        j = wk->head;
        if (j == NULL) {
            pthread_mutex_unlock(&wk->mu);
            break;
        }
        count = j->count;
        start = j->claimed;
        n = count - start < j->chunk ? count - start : j->chunk;
        j->claimed += n;
        if (j->claimed == j->count) {
            wk->head = j->next;
            if (wk->head == NULL)
                wk->tail = NULL;
        }
        pthread_mutex_unlock(&wk->mu);

        for (uint32_t i = start; i < start + n; i++)
            run_entry(d, j, i);
        /* count was read before: once done is added another worker may
         * finish the job and free it */
        if (atomic_fetch_add(&j->done, n) + n == count)
            job_done(d, j);
    }
    return NULL;
}

void dev_job_submit(struct ihsmd *d, struct dev_job *j)
{
    struct dev_workers *wk = &d->workers;
    int preset = 0;

    for (uint32_t i = 0; i < j->count; i++)
        preset |= j->res[i].preset;
    /* chunks: one per worker; answers known already need no spreading */
    j->chunk = preset ? j->count : (j->count + wk->n - 1) / wk->n;
    if (j->chunk == 0)
        j->chunk = 1;
    j->next = NULL;
    pthread_mutex_lock(&wk->mu);
    wk->active++;
    if (wk->tail != NULL)
        wk->tail->next = j;
    else
        wk->head = j;
    wk->tail = j;
    if (j->chunk < j->count)
        pthread_cond_broadcast(&wk->cv);
    else
        pthread_cond_signal(&wk->cv);
    pthread_mutex_unlock(&wk->mu);
}

int dev_workers_start(struct ihsmd *d)
{
    struct dev_workers *wk = &d->workers;
    pthread_attr_t attr;

    pthread_mutex_init(&wk->mu, NULL);
    pthread_cond_init(&wk->cv, NULL);
    pthread_cond_init(&wk->idle_cv, NULL);
    wk->n = d->cfg.workers;
    wk->th = calloc(wk->n, sizeof(*wk->th));
    if (wk->th == NULL)
        return -ENOMEM;
    pthread_attr_init(&attr);
    /* with mlockall every stack page is locked: keep stacks modest */
    pthread_attr_setstacksize(&attr, 1024 * 1024);
    for (unsigned i = 0; i < wk->n; i++) {
        int r = pthread_create(&wk->th[i], &attr, worker_main, d);
        if (r != 0) {
            pthread_attr_destroy(&attr);
            wk->n = i;
            return -r;
        }
    }
    pthread_attr_destroy(&attr);
    return 0;
}

void dev_workers_drain(struct ihsmd *d)
{
    struct dev_workers *wk = &d->workers;

    pthread_mutex_lock(&wk->mu);
    while (wk->active > 0)
        pthread_cond_wait(&wk->idle_cv, &wk->mu);
    pthread_mutex_unlock(&wk->mu);
}

void dev_workers_stop(struct ihsmd *d)
{
    struct dev_workers *wk = &d->workers;

    if (wk->th == NULL)
        return;
    pthread_mutex_lock(&wk->mu);
    wk->stop = 1;
    pthread_cond_broadcast(&wk->cv);
    pthread_mutex_unlock(&wk->mu);
    for (unsigned i = 0; i < wk->n; i++)
        pthread_join(wk->th[i], NULL);
    free(wk->th);
    wk->th = NULL;
    pthread_cond_destroy(&wk->cv);
    pthread_cond_destroy(&wk->idle_cv);
    pthread_mutex_destroy(&wk->mu);
}
