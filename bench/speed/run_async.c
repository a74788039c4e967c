/*
 * async mode: one thread keeps every slot's operation in flight as an
 * OpenSSL ASYNC job, the way HAProxy (ssl-mode-async) and `openssl speed
 * -async_jobs` do. ASYNC_start_job per slot; a job that pauses has told its
 * wait ctx which fd will become readable (the offload queue's eventfd);
 * one epoll set holds every slot's fds (kept up to date from
 * ASYNC_WAIT_CTX_get_changed_fds), and the slots whose fd is ready are
 * resumed. While jobs are paused the queue collects their requests into one
 * frame: this is how it batches.
 *
 * A job that finishes without pausing (every default-provider operation)
 * is simply started again: the baseline's ASYNC loop costs what a plain
 * loop costs plus a fibre switch.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <openssl/async.h>

#include "speed.h"

#define FD_CHANGES_ON_STACK 8
#define EPOLL_WAIT_MS 100

struct aslot {
    ASYNC_JOB *job;
    ASYNC_WAIT_CTX *wctx;
    struct sp_worker *w;
    struct sp_slot *sl;
    uint64_t t0;
    int paused, has_fd;
};

struct astate {
    struct aslot *s;
    struct epoll_event *evs;
    unsigned *retry;     /* paused without any wait fd: resume on the next turn */
    unsigned *retry_turn;/* the ones being resumed in this turn */
    unsigned nretry, paused;
    int epfd;
};

static int job_fn(void *arg)
{
    struct aslot *a = *(struct aslot **)arg;

    return a->w->run->side->ops->op(a->sl);
}

static void fail(struct sp_worker *w, const char *what)
{
    if (!w->failed)
        sp_ossl_err("%s: %s (%s side, async)", w->run->side->row->name, what,
                    w->run->side->label);
    w->failed = 1;
}

/* Mirror the wait ctx's fd changes into the epoll set. */
static void track_fds(struct sp_worker *w, struct astate *st, unsigned i)
{
    struct aslot *a = &st->s[i];
    OSSL_ASYNC_FD add_stack[FD_CHANGES_ON_STACK], del_stack[FD_CHANGES_ON_STACK];
    OSSL_ASYNC_FD *add = add_stack, *del = del_stack;
    size_t nadd = 0, ndel = 0, nall = 0;

    if (ASYNC_WAIT_CTX_get_changed_fds(a->wctx, NULL, &nadd, NULL, &ndel) && (nadd || ndel)) {
        if (nadd > FD_CHANGES_ON_STACK)
            add = malloc(nadd * sizeof(*add));
        if (ndel > FD_CHANGES_ON_STACK)
            del = malloc(ndel * sizeof(*del));
        if (add != NULL && del != NULL
            && ASYNC_WAIT_CTX_get_changed_fds(a->wctx, add, &nadd, del, &ndel)) {
            for (size_t k = 0; k < ndel; k++)
                epoll_ctl(st->epfd, EPOLL_CTL_DEL, del[k], NULL); /* may be closed already */
            for (size_t k = 0; k < nadd; k++) {
                struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

                if (epoll_ctl(st->epfd, EPOLL_CTL_ADD, add[k], &ev) != 0 && errno != EEXIST)
                    fail(w, "cannot watch a job's wait fd");
            }
        }
        if (add != add_stack)
            free(add);
        if (del != del_stack)
            free(del);
        if (ndel > 0)
            a->has_fd = ASYNC_WAIT_CTX_get_all_fds(a->wctx, NULL, &nall) && nall > 0;
        else
            a->has_fd = 1;
    }
    if (!a->has_fd)
        a->has_fd = ASYNC_WAIT_CTX_get_all_fds(a->wctx, NULL, &nall) && nall > 0;
    if (!a->has_fd)
        st->retry[st->nretry++] = i;
}

/* Start (or resume) slot i's job; start again each time one finishes until
 * one pauses or the slice is over. */
static void kick(struct sp_worker *w, struct astate *st, unsigned i)
{
    struct aslot *a = &st->s[i];
    int ret = 0;

    for (;;) {
        if (a->job == NULL) {
            if (sp_should_stop(w))
                return;
            a->t0 = sp_now_ns();
        }
        switch (ASYNC_start_job(&a->job, a->wctx, &ret, job_fn, &a, sizeof(a))) {
        case ASYNC_PAUSE:
            a->paused = 1;
            st->paused++;
            track_fds(w, st, i);
            return;
        case ASYNC_FINISH:
            if (!ret) {
                fail(w, "an operation failed");
                return;
            }
            sp_worker_record(w, a->t0, sp_now_ns());
            break;
        case ASYNC_NO_JOBS:
            fail(w, "no ASYNC job left in the pool");
            return;
        default:
            fail(w, "ASYNC_start_job failed");
            return;
        }
    }
}

static void resume(struct sp_worker *w, struct astate *st, unsigned i)
{
    if (!st->s[i].paused)
        return; /* a second fd of the same slot, already resumed */
    st->s[i].paused = 0;
    st->paused--;
    kick(w, st, i);
}

static void async_run(struct sp_worker *w)
{
    struct astate *st = w->priv;

    for (unsigned i = 0; i < w->nslots; i++)
        kick(w, st, i);
    while (st->paused > 0) {
        unsigned nretry = st->nretry;
        int n = epoll_wait(st->epfd, st->evs, (int)w->nslots, nretry ? 0 : EPOLL_WAIT_MS);

        if (n < 0 && errno != EINTR) {
            fail(w, "epoll_wait failed");
            /* cannot wait any more: jobs stay paused and are abandoned */
            return;
        }
        for (int k = 0; k < n; k++)
            resume(w, st, st->evs[k].data.u32);
        /* the ones queued before this turn; kick() may queue new ones */
        if (nretry > 0) {
            unsigned *turn = st->retry;

            st->retry = st->retry_turn;
            st->retry_turn = turn;
            st->nretry = 0;
            for (unsigned k = 0; k < nretry; k++)
                resume(w, st, turn[k]);
        }
    }
}

static void async_finish(struct sp_worker *w)
{
    struct astate *st = w->priv;

    if (st == NULL)
        return;
    for (unsigned i = 0; st->s != NULL && i < w->nslots; i++)
        ASYNC_WAIT_CTX_free(st->s[i].wctx); /* closes the queue's eventfd */
    if (st->epfd >= 0)
        close(st->epfd);
    free(st->s);
    free(st->evs);
    free(st->retry);
    free(st->retry_turn);
    free(st);
    w->priv = NULL;
    ASYNC_cleanup_thread();
}

static int async_prepare(struct sp_worker *w)
{
    struct astate *st = calloc(1, sizeof(*st));

    if ((w->priv = st) == NULL)
        return 0;
    st->epfd = -1;
    if (!ASYNC_init_thread(w->nslots, w->nslots)) {
        fail(w, "cannot make the ASYNC job pool");
        free(st);
        w->priv = NULL;
        return 0;
    }
    st->s = calloc(w->nslots, sizeof(*st->s));
    st->evs = calloc(w->nslots, sizeof(*st->evs));
    st->retry = calloc(w->nslots, sizeof(*st->retry));
    st->retry_turn = calloc(w->nslots, sizeof(*st->retry_turn));
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (st->s == NULL || st->evs == NULL || st->retry == NULL || st->retry_turn == NULL
        || st->epfd < 0)
        goto err;
    for (unsigned i = 0; i < w->nslots; i++) {
        st->s[i].w = w;
        st->s[i].sl = w->slots[i];
        if ((st->s[i].wctx = ASYNC_WAIT_CTX_new()) == NULL)
            goto err;
    }
    return 1;
err:
    fail(w, "out of memory for the ASYNC slots");
    async_finish(w);
    return 0;
}

const struct sp_loop sp_loop_async = { async_prepare, async_run, async_finish };
