/*
 * The request pool and the request life cycle.
 *
 * Requests live in slabs of POOL_CHUNK that stay until the process state is
 * freed, so a late completion, a sweep or a futex wake never touches freed
 * memory; a free list (a Treiber stack with a tag against ABA) hands them
 * out without a lock. A request's id is its slot index | generation << 32
 * and every transition is a compare-and-swap on generation|flags, so an
 * answer for a slot that was freed and reused is recognised and dropped.
 *
 * Outcomes are stored once: a completer first claims (RQ_COMPLETING), then
 * publishes. The caller may give up meanwhile (RQ_TIMEDOUT) or free the
 * request (clearing RQ_OWNED); whichever side goes last recycles the slot.
 */
#include "offload_int.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>

/* A payload above this is released rather than kept for the next user. */
#define KEEP_PAYLOAD_CAP 16384

int ihsm_pool_init(struct ihsm_proc *p)
{
    atomic_init(&p->nchunks, 0);
    atomic_init(&p->free_head, 0);
    return pthread_mutex_init(&p->grow_lock, NULL) == 0 ? 0 : -1;
}

static void req_cleanse_result(struct ihsm_req *r)
{
    if (r->data != NULL)
        OPENSSL_clear_free(r->data, r->len);
    r->data = NULL;
    r->len = 0;
}

void ihsm_pool_destroy(struct ihsm_proc *p)
{
    uint32_t n = atomic_load(&p->nchunks);

    for (uint32_t c = 0; c < n; c++) {
        for (uint32_t i = 0; i < POOL_CHUNK; i++) {
            struct ihsm_req *r = &p->chunks[c][i];

            /* results and payloads may hold secrets */
            if (RQ_FLAGS(atomic_load(&r->sg)) & RQ_DONE)
                req_cleanse_result(r);
            ihsm_wr_free(&r->payload);
        }
        free(p->chunks[c]);
        p->chunks[c] = NULL;
    }
    atomic_store(&p->nchunks, 0);
    pthread_mutex_destroy(&p->grow_lock);
}

uint32_t ihsm_pool_size(struct ihsm_proc *p)
{
    return atomic_load_explicit(&p->nchunks, memory_order_acquire) * POOL_CHUNK;
}

struct ihsm_req *ihsm_pool_slot(struct ihsm_proc *p, uint32_t idx)
{
    if (idx >= ihsm_pool_size(p))
        return NULL;
    return &p->chunks[idx / POOL_CHUNK][idx % POOL_CHUNK];
}

/* Push the chain first..last (linked by next_free) on the free list. */
static void free_push(struct ihsm_proc *p, struct ihsm_req *first, struct ihsm_req *last)
{
    uint64_t h = atomic_load(&p->free_head), nh;

    do {
        atomic_store_explicit(&last->next_free, (uint32_t)h, memory_order_relaxed);
        nh = (((h >> 32) + 1) << 32) | (first->idx + 1);
    } while (!atomic_compare_exchange_weak(&p->free_head, &h, nh));
}

static int pool_grow(struct ihsm_proc *p)
{
    struct ihsm_req *c;
    uint32_t n;
    int rc = 0;

    pthread_mutex_lock(&p->grow_lock);
    if ((uint32_t)atomic_load(&p->free_head) != 0) /* another thread grew it */
        goto out;
    n = atomic_load(&p->nchunks);
    if (n == POOL_MAX_CHUNKS) {
        DBG("request pool full: %u requests in flight", n * POOL_CHUNK);
        rc = -1;
        goto out;
    }
    c = calloc(POOL_CHUNK, sizeof(*c));
    if (c == NULL) {
        rc = -1;
        goto out;
    }
    for (uint32_t i = 0; i < POOL_CHUNK; i++) {
        c[i].idx = n * POOL_CHUNK + i;
        c[i].efd = -1;
        atomic_init(&c[i].sg, 0);
        atomic_init(&c[i].next_free, i + 1 < POOL_CHUNK ? c[i].idx + 2 : 0);
        ihsm_wr_init(&c[i].payload);
    }
    p->chunks[n] = c;
    atomic_store_explicit(&p->nchunks, n + 1, memory_order_release);
    free_push(p, &c[0], &c[POOL_CHUNK - 1]);
out:
    pthread_mutex_unlock(&p->grow_lock);
    return rc;
}

struct ihsm_req *ihsm_pool_get(struct ihsm_proc *p)
{
    uint64_t h = atomic_load(&p->free_head), nh;
    struct ihsm_req *r;
    uint32_t gen;

    for (;;) {
        uint32_t top = (uint32_t)h;

        if (top == 0) {
            if (pool_grow(p) != 0)
                return NULL;
            h = atomic_load(&p->free_head);
            continue;
        }
        r = ihsm_pool_slot(p, top - 1);
        nh = (((h >> 32) + 1) << 32)
             | atomic_load_explicit(&r->next_free, memory_order_relaxed);
        if (atomic_compare_exchange_weak(&p->free_head, &h, nh))
            break;
    }
    /* generation 0 is never handed out: the device answers id 0 for a
     * frame it could not read */
    gen = RQ_GEN(atomic_load(&r->sg)) + 1;
    if (gen == 0)
        gen = 1;
    r->q = p->q;
    r->p = p;
    r->efd = -1;
    r->status = IHSM_OK;
    r->data = NULL;
    r->len = 0;
    r->sent_cgen = 0;
    r->next_pending = NULL;
    r->following = 0;
    atomic_store(&r->sleeping, 0);
    ihsm_wr_reset(&r->payload);
    r->payload.limit = IHSM_MAX_PAYLOAD;
    atomic_store(&r->sg, (uint64_t)gen << 32 | RQ_OWNED);
    return r;
}

void ihsm_pool_put(struct ihsm_req *r)
{
    struct ihsm_proc *p = r->p;

    if (r->payload.cap > KEEP_PAYLOAD_CAP)
        ihsm_wr_free(&r->payload);
    else
        ihsm_wr_reset(&r->payload); /* cleansed */
    r->data = NULL;
    r->len = 0;
    r->efd = -1;
    atomic_store(&r->sg, (uint64_t)RQ_GEN(atomic_load(&r->sg)) << 32);
    free_push(p, r, r);
}

/* ---- life cycle ---- */

int ihsm_req_claim(struct ihsm_req *r, uint32_t gen, int need_sent, uint32_t cgen)
{
    uint64_t s = atomic_load(&r->sg);

    for (;;) {
        uint32_t f = RQ_FLAGS(s);

        if (RQ_GEN(s) != gen || !(f & RQ_INFLIGHT) || (f & RQ_COMPLETING))
            return 0;
        if (need_sent && !(f & RQ_SENT))
            return 0;
        /* sent_cgen was written before RQ_SENT was set; the CAS below fails
         * if the slot moved on since s was read */
        if (cgen != 0 && r->sent_cgen != cgen)
            return 0;
        if (atomic_compare_exchange_weak(&r->sg, &s, s | RQ_COMPLETING))
            return 1;
    }
}

void ihsm_req_publish(struct ihsm_req *r, int status, const uint8_t *data, size_t len)
{
    struct ihsm_proc *p = r->p;
    uint8_t *copy = NULL;
    uint64_t s, ns;
    uint32_t f;
    int keep, efd = r->efd;

    if (status == IHSM_OK && len > 0) {
        copy = OPENSSL_malloc(len);
        if (copy != NULL)
            memcpy(copy, data, len);
        else
            status = IHSM_ERR_NOMEM;
    }
    if (copy == NULL)
        len = 0;
    r->status = status;
    r->data = copy;
    r->len = len;

    s = atomic_load(&r->sg);
    do {
        f = RQ_FLAGS(s);
        keep = (f & RQ_OWNED) && !(f & RQ_TIMEDOUT);
        ns = s & ~(uint64_t)(RQ_INFLIGHT | RQ_SENT | RQ_COMPLETING);
        if (keep)
            ns |= RQ_DONE | (efd >= 0 ? RQ_NOTIFYING : 0);
    } while (!atomic_compare_exchange_weak(&r->sg, &s, ns));

    atomic_fetch_sub(&p->inflight, 1);
    if (f & RQ_SENT)
        atomic_fetch_sub(&p->sent_inflight, 1);
    if (efd >= 0)
        atomic_fetch_sub(&p->async_inflight, 1);

    if (!keep) {
        /* nobody will read it: a shared secret must not linger */
        if (copy != NULL)
            OPENSSL_clear_free(copy, len);
        if (!(RQ_FLAGS(ns) & RQ_OWNED))
            ihsm_pool_put(r);
        return;
    }
    if (efd >= 0) {
        uint64_t one = 1;

        /* the job may not free its wait ctx (closing efd) before
         * RQ_NOTIFYING clears: see ihsm_req_wait_notified */
        while (write(efd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
        atomic_fetch_and(&r->sg, ~(uint64_t)RQ_NOTIFYING);
    }
    if (atomic_load(&r->sleeping)) {
        atomic_fetch_add(&r->wake, 1);
        ihsm_futex_wake(&r->wake, 1);
    }
}

void ihsm_req_finish_local(struct ihsm_req *r, int status)
{
    if (ihsm_req_claim(r, RQ_GEN(atomic_load(&r->sg)), 0, 0))
        ihsm_req_publish(r, status, NULL, 0);
}

int ihsm_req_expire(struct ihsm_req *r, uint64_t s)
{
    uint64_t ns;
    int efd = r->efd;

    for (;;) {
        uint32_t f = RQ_FLAGS(s);

        if (!(f & RQ_INFLIGHT) || (f & (RQ_TIMEDOUT | RQ_DONE)) || !(f & RQ_OWNED))
            return 0;
        ns = s | RQ_TIMEDOUT | (efd >= 0 ? RQ_NOTIFYING : 0);
        if (atomic_compare_exchange_weak(&r->sg, &s, ns))
            break;
    }
    atomic_fetch_add(&r->q->st.timeouts, 1);
    DBG("request %#llx (%s) timed out: flags %#x, sent on %u, inflight %u sent %u pending %d"
        ", recv %s", (unsigned long long)ihsm_req_id(r, s), ihsm_cmd_name(r->cmd),
        RQ_FLAGS(s), r->sent_cgen, atomic_load(&r->p->inflight),
        atomic_load(&r->p->sent_inflight), atomic_load(&r->p->pending_n),
        r->p->recv_armed ? "armed" : "not armed");
    if (efd >= 0) {
        uint64_t one = 1;

        while (write(efd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
        atomic_fetch_and(&r->sg, ~(uint64_t)RQ_NOTIFYING);
    }
    if (atomic_load(&r->sleeping)) {
        atomic_fetch_add(&r->wake, 1);
        ihsm_futex_wake(&r->wake, 1);
    }
    return 1;
}

/* Requests nobody waits on (ihsm_req_* with polling, paused ASYNC jobs)
 * still get their timeout: sweep at most every EXPIRE_EVERY_NS. */
void ihsm_expire_sweep(struct ihsm_proc *p, uint64_t now)
{
    uint64_t next = atomic_load(&p->next_expire);
    uint32_t n;

    if (now < next || atomic_load(&p->inflight) == 0
        || !atomic_compare_exchange_strong(&p->next_expire, &next, now + EXPIRE_EVERY_NS))
        return;
    n = ihsm_pool_size(p);
    for (uint32_t i = 0; i < n; i++) {
        struct ihsm_req *r = ihsm_pool_slot(p, i);
        uint64_t s = atomic_load(&r->sg);

        /* a deadline read from a reused slot fails expire's CAS on s */
        if ((RQ_FLAGS(s) & RQ_INFLIGHT) && now >= r->deadline)
            ihsm_req_expire(r, s);
    }
}

void ihsm_req_wait_notified(struct ihsm_req *r)
{
    while (RQ_FLAGS(atomic_load(&r->sg)) & RQ_NOTIFYING)
        sched_yield();
}
