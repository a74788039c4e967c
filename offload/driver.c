/*
 * Leader/follower driving. A blocked caller that gets the driver role turns
 * the ring until its own request is done, reaping everyone's completions on
 * the way; callers that do not get it sleep on their own request (futex,
 * bounded) and are woken by the completion, or promoted when the driver
 * leaves while requests are still in flight. No lock is held in the kernel
 * except the role itself, and submitters never wait for the driver.
 */
#include "offload_int.h"

int ihsm_driver_trylock(struct ihsm_proc *p)
{
    int z = 0;

    return atomic_load_explicit(&p->driver, memory_order_relaxed) == 0
           && atomic_compare_exchange_strong(&p->driver, &z, 1);
}

static void follower_add(struct ihsm_proc *p, struct ihsm_req *r)
{
    pthread_mutex_lock(&p->wlock);
    r->fprev = NULL;
    r->fnext = p->followers;
    if (p->followers != NULL)
        p->followers->fprev = r;
    p->followers = r;
    r->following = 1;
    pthread_mutex_unlock(&p->wlock);
    atomic_fetch_add(&p->nfollowers, 1);
}

static void follower_remove(struct ihsm_proc *p, struct ihsm_req *r)
{
    pthread_mutex_lock(&p->wlock);
    if (r->following) {
        if (r->fprev != NULL)
            r->fprev->fnext = r->fnext;
        else
            p->followers = r->fnext;
        if (r->fnext != NULL)
            r->fnext->fprev = r->fprev;
        r->following = 0;
    }
    pthread_mutex_unlock(&p->wlock);
    atomic_fetch_sub(&p->nfollowers, 1);
}

/* Wake one follower whose request is still out, so that someone keeps
 * turning the ring. Returns 1 if one was woken. */
static int promote_one(struct ihsm_proc *p)
{
    struct ihsm_req *r;
    int woke = 0;

    pthread_mutex_lock(&p->wlock);
    for (r = p->followers; r != NULL; r = r->fnext) {
        if (RQ_FLAGS(atomic_load(&r->sg)) & (RQ_DONE | RQ_TIMEDOUT))
            continue;
        atomic_fetch_add(&r->wake, 1);
        ihsm_futex_wake(&r->wake, 1);
        woke = 1;
        break;
    }
    pthread_mutex_unlock(&p->wlock);
    return woke;
}

void ihsm_driver_release(struct ihsm_proc *p)
{
    /* seq_cst store then loads: pairs with a follower's registration
     * followed by its last trylock */
    atomic_store(&p->driver, 0);
    if (atomic_load(&p->inflight) == 0)
        return;
    if (atomic_load(&p->nfollowers) > 0 && promote_one(p))
        return;
    ihsm_reaper_wake(p);
}

/* Wait for r without an ASYNC job: drive, or follow. */
int ihsm_wait_blocking(struct ihsm_proc *p, struct ihsm_req *r)
{
    for (;;) {
        uint64_t s = atomic_load(&r->sg), now;
        uint32_t w;

        if (RQ_FLAGS(s) & (RQ_DONE | RQ_TIMEDOUT))
            return 0;
        now = ihsm_now_ns();
        if (now >= r->deadline) {
            ihsm_req_expire(r, s);
            continue;
        }
        if (ihsm_driver_trylock(p)) {
            while (!(RQ_FLAGS(atomic_load(&r->sg)) & (RQ_DONE | RQ_TIMEDOUT))) {
                now = ihsm_now_ns();
                if (now >= r->deadline)
                    break;
                ihsm_ring_turn(p, r->deadline - now, TURN_FLUSH_ON_REAP);
            }
            ihsm_driver_release(p);
            continue;
        }
        /* follower: register, then try the role once more so that a
         * driver leaving right now either sees us or lets us in */
        atomic_store(&r->sleeping, 1);
        follower_add(p, r);
        w = atomic_load(&r->wake);
        if (!(RQ_FLAGS(atomic_load(&r->sg)) & (RQ_DONE | RQ_TIMEDOUT))
            && atomic_load(&p->driver) != 0) {
            uint64_t left = r->deadline - now;

            ihsm_futex_wait(&r->wake, w, left < FOLLOWER_NAP_NS ? left : FOLLOWER_NAP_NS);
        }
        follower_remove(p, r);
        atomic_store(&r->sleeping, 0);
    }
}
