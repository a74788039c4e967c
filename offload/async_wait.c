/*
 * OpenSSL ASYNC jobs (SSL_MODE_ASYNC: HAProxy's ssl-mode-async, `openssl
 * speed -async_jobs`). A request made inside a job pauses the job instead
 * of blocking the thread: the job's wait ctx gets an eventfd of ours (one
 * per wait ctx, as the QAT engine does: HAProxy polls each connection's fd
 * separately), and the completion writes 1 to it.
 *
 * With every job paused nobody on the application thread turns the ring,
 * so a reaper thread per process does while requests are in flight and no
 * one else drives. It is started on the first async request (again in a
 * forked child) and sleeps on a futex when there is nothing to do.
 */
#include "offload_int.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <openssl/async.h>

/* The key of our fd in a wait ctx: the address is what is unique. */
static const char wait_key = 'i';

static void wait_fd_cleanup(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD fd,
                            void *custom)
{
    close(fd);
}

int ihsm_async_wait_fd(void)
{
    ASYNC_JOB *job = ASYNC_get_current_job();
    ASYNC_WAIT_CTX *ctx;
    OSSL_ASYNC_FD fd;
    void *custom = NULL;

    if (job == NULL || (ctx = ASYNC_get_wait_ctx(job)) == NULL)
        return -1;
    if (ASYNC_WAIT_CTX_get_fd(ctx, &wait_key, &fd, &custom) == 1)
        return fd;
    fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        DBG("eventfd for an ASYNC wait ctx: %s: waiting blocking instead", strerror(errno));
        return -1;
    }
    if (ASYNC_WAIT_CTX_set_wait_fd(ctx, &wait_key, fd, NULL, wait_fd_cleanup) != 1) {
        close(fd);
        return -1;
    }
    return fd;
}

static void drain_fd(int fd)
{
    uint64_t v;

    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
}

/* ---- reaper ---- */

static void reaper_turns(struct ihsm_proc *p)
{
    while (!atomic_load(&p->reaper_stop) && atomic_load(&p->inflight) > 0)
        ihsm_ring_turn(p, REAPER_TURN_NS, TURN_FLUSH_ON_REAP);
}

static void *reaper_main(void *arg)
{
    struct ihsm_proc *p = arg;

    DBG("reaper thread started");
    while (!atomic_load(&p->reaper_stop)) {
        uint32_t w;

        if (atomic_load(&p->inflight) > 0 && ihsm_driver_trylock(p)) {
            reaper_turns(p);
            ihsm_driver_release(p);
            continue;
        }
        w = atomic_load(&p->reaper_word);
        atomic_store(&p->reaper_sleeping, 1);
        if (atomic_load(&p->inflight) > 0 && atomic_load(&p->driver) == 0) {
            atomic_store(&p->reaper_sleeping, 0);
            continue;
        }
        /* bounded: paused jobs whose requests time out need a sweep */
        ihsm_futex_wait(&p->reaper_word, w,
                        atomic_load(&p->async_inflight) > 0 ? EXPIRE_EVERY_NS : 1000000000ull);
        atomic_store(&p->reaper_sleeping, 0);
        ihsm_expire_sweep(p, ihsm_now_ns());
    }
    DBG("reaper thread stopped");
    return NULL;
}

static void reaper_ensure(struct ihsm_proc *p)
{
    sigset_t all, old;
    int r;

    if (atomic_load(&p->reaper_started))
        return;
    pthread_mutex_lock(&p->conn_lock);
    if (!atomic_load(&p->reaper_started)) {
        /* signals stay with the application's threads */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = pthread_create(&p->reaper, NULL, reaper_main, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r == 0)
            atomic_store(&p->reaper_started, 1);
        else
            DBG("cannot start the reaper thread: %s", strerror(r));
    }
    pthread_mutex_unlock(&p->conn_lock);
}

void ihsm_reaper_wake(struct ihsm_proc *p)
{
    if (!atomic_load(&p->reaper_started))
        return;
    atomic_fetch_add(&p->reaper_word, 1);
    /* Only the first waker pays the futex call: the exchange claims the
     * wakeup, so jobs that give up the driver role while the reaper is
     * already runnable do not each wake it again. The word bump above
     * still makes a reaper about to sleep return at once. */
    if (atomic_load(&p->reaper_sleeping) && atomic_exchange(&p->reaper_sleeping, 0))
        ihsm_futex_wake(&p->reaper_word, 1);
}

void ihsm_reaper_stop(struct ihsm_proc *p)
{
    if (!atomic_load(&p->reaper_started))
        return;
    atomic_store(&p->reaper_stop, 1);
    atomic_fetch_add(&p->reaper_word, 1);
    ihsm_futex_wake(&p->reaper_word, 1);
    ihsm_kick(p); /* in case it waits in the ring */
    pthread_join(p->reaper, NULL);
    atomic_store(&p->reaper_started, 0);
}

/* ---- the wait ---- */

int ihsm_wait_async(struct ihsm_proc *p, struct ihsm_req *r)
{
    int fd = r->efd, paused = 0, turned = 0;

    if (ASYNC_get_current_job() == NULL)
        return 0;
    reaper_ensure(p);
    for (;;) {
        uint64_t s = atomic_load(&r->sg);

        if (RQ_FLAGS(s) & (RQ_DONE | RQ_TIMEDOUT)) {
            /* The fd went into the wait ctx at submit, so the application
             * must see the job pause at least once: HAProxy registers a
             * job's fds only on SSL_ERROR_WANT_ASYNC and aborts when it
             * later meets one it never registered. The fd is written
             * already, so the job is resumed at once. */
            if (paused)
                break;
        } else if (ihsm_now_ns() >= r->deadline) {
            ihsm_req_expire(r, s);
            continue;
        } else if (!atomic_load(&p->reaper_started)) {
            /* no thread could resume us: block (the fd still gets written) */
            ihsm_wait_blocking(p, r);
            continue;
        } else if (!turned && ihsm_driver_trylock(p)) {
            /* turn the ring once without waiting: sends what is due,
             * reaps what has come; leaving the role wakes the reaper */
            ihsm_ring_turn(p, 0, TURN_FLUSH_DUE);
            ihsm_driver_release(p);
            turned = 1;
            continue;
        }
        /* resumed when the fd is readable, or spuriously: either way the
         * loop looks at the state; only our outcome writes the fd */
        if (ASYNC_pause_job() == 0) {
            DBG("ASYNC_pause_job failed: waiting blocking");
            ihsm_wait_blocking(p, r);
            break;
        }
        paused = 1;
        turned = 0;
    }
    ihsm_req_wait_notified(r);
    /* leave the fd quiet for the wait ctx's next request */
    drain_fd(fd);
    return 1;
}
