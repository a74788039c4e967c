/*
 * The queue's public face: configuration, the per-process state (and its
 * re-creation after fork), submission, frames, one-shot calls and stats.
 *
 * Submission policy (DESIGN.md, "The offload engine"):
 *   - nothing sent and awaiting an answer: the request leaves at once, in
 *     a frame of its own, sent by the submitter;
 *   - otherwise it waits on the pending list and leaves with the others
 *     in the turn of the ring that reaps completions, when the list holds
 *     batch_max, or once the oldest has waited delay_us (a driver asleep
 *     with nothing pending is kicked by the first one to queue).
 */
#include "offload_int.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "ihsm_transport.h"

static _Atomic unsigned fork_gen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* ---- helpers ---- */

uint64_t ihsm_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void ihsm_futex_wait(_Atomic uint32_t *w, uint32_t val, uint64_t timeout_ns)
{
    struct timespec ts = { .tv_sec = (time_t)(timeout_ns / 1000000000ull),
                           .tv_nsec = (long)(timeout_ns % 1000000000ull) };

    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

void ihsm_futex_wake(_Atomic uint32_t *w, int n)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

void ihsm_stat_max(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(a, memory_order_relaxed);

    while (cur < v && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

static void atfork_child(void)
{
    atomic_fetch_add(&fork_gen, 1);
}

static void init_once(void)
{
    ihsm_debug_init();
    pthread_atfork(NULL, NULL, atfork_child);
}

/* ---- per-process state ---- */

static struct ihsm_proc *proc_new(struct ihsm_queue *q, unsigned gen)
{
    struct ihsm_proc *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->q = q;
    p->fork_gen = gen;
    p->fd = -1;
    p->kick_fd = -1;
    p->recv_op.kind = OP_RECV;
    p->kick_op.kind = OP_KICK;
    ihsm_wr_init(&p->sendbuf);
    if (pthread_mutex_init(&p->lock, NULL) != 0
        || pthread_mutex_init(&p->conn_lock, NULL) != 0
        || pthread_mutex_init(&p->wlock, NULL) != 0 || ihsm_pool_init(p) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

/* In a forked child: the parent's ring, socket and eventfd are shared
 * kernel objects. Close our copies only; the memory stays until the queue
 * is freed because requests made before the fork may still point at it. */
static void proc_orphan(struct ihsm_proc *p)
{
    p->orphan = 1;
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    atomic_store(&p->up, 0);
    ihsm_ring_exit(p); /* munmaps our mapping and closes our ring fd */
    DBG("forked child: left the parent's connection and ring behind");
}

static void proc_free(struct ihsm_proc *p)
{
    if (!p->orphan) {
        ihsm_reaper_stop(p);
        if (p->fd >= 0) {
            shutdown(p->fd, SHUT_RDWR);
            close(p->fd);
        }
        ihsm_ring_exit(p);
        /* sends the ring still held: their frames may carry secrets */
        for (struct ring_op *op = atomic_load(&p->backlog), *n; op != NULL; op = n) {
            n = op->next;
            ihsm_wr_free(&op->frame);
            free(op);
        }
    }
    ihsm_pool_destroy(p);
    ihsm_wr_free(&p->sendbuf);
    OPENSSL_cleanse(p->last_error, sizeof(p->last_error));
    /* mutexes of an orphan may have been held by a parent thread at fork:
     * they are never touched, only freed with the memory */
    if (!p->orphan) {
        pthread_mutex_destroy(&p->lock);
        pthread_mutex_destroy(&p->conn_lock);
        pthread_mutex_destroy(&p->wlock);
    }
    free(p);
}

struct ihsm_proc *ihsm_proc_get(struct ihsm_queue *q)
{
    for (;;) {
        struct ihsm_proc *p = atomic_load_explicit(&q->proc, memory_order_acquire), *np;
        unsigned gen = atomic_load(&fork_gen);

        if (p != NULL && p->fork_gen == gen)
            return p;
        np = proc_new(q, gen);
        if (np == NULL)
            return NULL;
        np->older = p;
        if (atomic_compare_exchange_strong(&q->proc, &p, np)) {
            if (np->older != NULL)
                proc_orphan(np->older);
            return np;
        }
        np->older = NULL;
        proc_free(np);
    }
}

/* ---- queue ---- */

int ihsm_queue_new(const ihsm_queue_config *cfg, ihsm_queue **out)
{
    ihsm_queue_config def = { 0 };
    const char *cred_path;
    struct ihsm_queue *q;
    char why[512];

    pthread_once(&once, init_once);
    *out = NULL;
    if (cfg == NULL)
        cfg = &def;
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return IHSM_ERR_NOMEM;
    q->socket_path = strdup(ihsm_socket_path(cfg->socket_path));
    cred_path = ihsm_credential_path(cfg->credential_path);
    q->cred_path = cred_path != NULL ? strdup(cred_path) : NULL;
    if (q->socket_path == NULL || (cred_path != NULL && q->cred_path == NULL)) {
        ihsm_queue_free(q);
        return IHSM_ERR_NOMEM;
    }
    q->batch_max = cfg->batch_max != 0 ? cfg->batch_max : IHSM_DEFAULT_BATCH;
    if (q->batch_max > IHSM_MAX_BATCH)
        q->batch_max = IHSM_MAX_BATCH;
    q->delay_us = cfg->delay_us != 0 ? cfg->delay_us : IHSM_DEFAULT_DELAY;
    q->timeout_ms = cfg->timeout_ms != 0 ? cfg->timeout_ms : IHSM_DEFAULT_TIMEOUT;
    if (q->cred_path != NULL) {
        /* read it now: a missing or malformed file is a setup error, better
         * said at start than at the first handshake */
        if (ihsm_credential_load(q->cred_path, &q->cred, why, sizeof(why)) != IHSM_OK) {
            DBG("%s", why);
            ihsm_queue_free(q);
            return IHSM_ERR_CREDENTIAL_FILE;
        }
        q->have_cred = 1;
    }
    DBG("queue: socket %s, credential %s, batch %u, delay %u us, timeout %u ms",
        q->socket_path, q->cred_path != NULL ? q->cred_path : "(none: no session)",
        q->batch_max, q->delay_us, q->timeout_ms);
    *out = q;
    return IHSM_OK;
}

void ihsm_queue_free(ihsm_queue *q)
{
    struct ihsm_proc *p, *older;

    if (q == NULL)
        return;
    for (p = atomic_load(&q->proc); p != NULL; p = older) {
        older = p->older;
        /* the parent's, in a child that never used the queue */
        if (p->fork_gen != atomic_load(&fork_gen) && !p->orphan)
            proc_orphan(p);
        proc_free(p);
    }
    ihsm_credential_clear(&q->cred);
    free(q->socket_path);
    free(q->cred_path);
    free(q);
}

int ihsm_queue_connect(ihsm_queue *q)
{
    struct ihsm_proc *p = ihsm_proc_get(q);

    return p != NULL ? ihsm_conn_ensure(p) : IHSM_ERR_NOMEM;
}

void ihsm_queue_get_stats(ihsm_queue *q, ihsm_queue_stats *st)
{
    struct ihsm_proc *p = ihsm_proc_get(q);

    st->requests = atomic_load(&q->st.requests);
    st->completions = atomic_load(&q->st.completions);
    st->frames_sent = atomic_load(&q->st.frames_sent);
    st->frames_received = atomic_load(&q->st.frames_received);
    st->largest_batch = atomic_load(&q->st.largest_batch);
    st->inflight = p != NULL ? atomic_load(&p->inflight) : 0;
    st->reconnects = atomic_load(&q->st.reconnects);
    st->timeouts = atomic_load(&q->st.timeouts);
    st->device_gone = atomic_load(&q->st.device_gone);
}

const char *ihsm_queue_last_error(ihsm_queue *q)
{
    static __thread char copy[sizeof(((struct ihsm_proc *)0)->last_error)];
    struct ihsm_proc *p = ihsm_proc_get(q);

    if (p == NULL)
        return "out of memory";
    pthread_mutex_lock(&p->conn_lock);
    memcpy(copy, p->last_error, sizeof(copy));
    pthread_mutex_unlock(&p->conn_lock);
    return copy;
}

/* ---- frames ---- */

/* Requests the caller gave up on before they left are not sent at all. */
static int skip_unwanted(struct ihsm_req *r)
{
    uint32_t f = RQ_FLAGS(atomic_load(&r->sg));

    if ((f & RQ_OWNED) && !(f & RQ_TIMEDOUT))
        return 0;
    ihsm_req_finish_local(r, IHSM_ERR_TIMEOUT);
    return 1;
}

static void fail_list(struct ihsm_req *list, int status)
{
    while (list != NULL) {
        struct ihsm_req *next = list->next_pending;

        ihsm_req_finish_local(list, status);
        list = next;
    }
}

/* Encode up to batch_max requests of *list into w; advances *list. */
static unsigned encode_frame(struct ihsm_proc *p, ihsm_wr *w, struct ihsm_req **list,
                             uint32_t cgen, uint32_t session)
{
    size_t size = IHSM_FRAME_HDR_LEN;
    unsigned n = 0;

    ihsm_frame_begin(w, IHSM_FRAME_REQUEST);
    while (*list != NULL && n < p->q->batch_max) {
        struct ihsm_req *r = *list;
        size_t add = ihsm_frame_entry_size(r->payload.len), mark;

        if (skip_unwanted(r)) {
            *list = r->next_pending;
            continue;
        }
        if (n > 0 && size + add > IHSM_MAX_FRAME)
            break;
        *list = r->next_pending;
        mark = ihsm_frame_entry_begin(w, ihsm_req_id(r, atomic_load(&r->sg)), r->cmd, 0,
                                      session);
        ihsm_wr_raw(w, r->payload.p, r->payload.len);
        ihsm_frame_entry_end(w, mark);
        /* before the send: the answer may arrive before send(2) returns */
        r->sent_cgen = cgen;
        atomic_fetch_or(&r->sg, RQ_SENT);
        atomic_fetch_add(&p->sent_inflight, 1);
        size += add;
        n++;
    }
    return n;
}

/* Send one encoded frame; under p->lock. Returns 0, or -1 if the
 * connection failed (the driver will close it). */
static int send_frame(struct ihsm_proc *p, ihsm_wr *w, int by_driver, uint32_t cgen)
{
    struct ring_op *op;
    ssize_t n;

    do {
        n = send(p->fd, w->p, w->len, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)w->len)
        return 0;
    if (n >= 0 || (errno != EAGAIN && errno != ENOBUFS)) {
        DBG("send of a %zu-byte frame failed: %s", w->len, n < 0 ? strerror(errno) : "short");
        atomic_store(&p->broken, cgen);
        if (!by_driver)
            ihsm_kick(p);
        return -1;
    }
    /* the socket is full (ihsmd is behind): the ring sends it when there
     * is room, keeping the frame alive until its CQE */
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        atomic_store(&p->broken, cgen);
        return -1;
    }
    op->kind = OP_SEND;
    op->cgen = cgen;
    op->frame = *w;
    ihsm_wr_init(w);
    op->next = atomic_load(&p->backlog);
    while (!atomic_compare_exchange_weak(&p->backlog, &op->next, op))
        ;
    DBG("socket full: frame of %zu bytes handed to the ring", op->frame.len);
    if (!by_driver)
        ihsm_kick(p);
    return 0;
}

void ihsm_flush(struct ihsm_proc *p, int by_driver)
{
    struct ihsm_queue *q = p->q;
    struct ihsm_req *head, *list = NULL;
    uint32_t cgen, session;
    int n = 0;

    head = atomic_exchange(&p->pending, NULL);
    if (head == NULL)
        return;
    while (head != NULL) { /* the stack is newest first: reverse */
        struct ihsm_req *next = head->next_pending;

        head->next_pending = list;
        list = head;
        head = next;
        n++;
    }
    atomic_fetch_sub(&p->pending_n, n);

    pthread_mutex_lock(&p->lock);
    if (!atomic_load(&p->up)) {
        pthread_mutex_unlock(&p->lock);
        fail_list(list, IHSM_ERR_DEVICE_GONE);
        return;
    }
    cgen = atomic_load(&p->cgen);
    session = p->session;
    while (list != NULL) {
        unsigned cnt = encode_frame(p, &p->sendbuf, &list, cgen, session);
        int st;

        if (cnt == 0)
            break;
        st = ihsm_frame_finish(&p->sendbuf);
        if (st != IHSM_OK) { /* payloads were checked at submit: cannot happen */
            DBG("cannot encode a request frame: %s", ihsm_status_name(st));
            atomic_store(&p->broken, cgen);
            break;
        }
        if (send_frame(p, &p->sendbuf, by_driver, cgen) != 0)
            break;
        atomic_fetch_add_explicit(&q->st.frames_sent, 1, memory_order_relaxed);
        ihsm_stat_max(&q->st.largest_batch, cnt);
    }
    pthread_mutex_unlock(&p->lock);
    DBG("flush: %d pending, by %s", n, by_driver ? "driver" : "submitter");
    /* what did not go out goes nowhere: the connection is failing */
    fail_list(list, IHSM_ERR_DEVICE_GONE);
    if (!by_driver) {
        /* a driver asleep without a recv armed (it saw nothing sent: we had
         * popped the list but not sent yet) would never hear the answer */
        int w = DRV_WAIT_NORECV;

        if (atomic_load(&p->drv_waiting) == DRV_WAIT_NORECV
            && atomic_compare_exchange_strong(&p->drv_waiting, &w, DRV_RUNNING))
            ihsm_kick(p);
    }
}

/* Is the pending list due to leave? */
int ihsm_flush_due(struct ihsm_proc *p, uint64_t now)
{
    if (atomic_load(&p->pending) == NULL)
        return 0;
    return atomic_load(&p->sent_inflight) == 0
           || (unsigned)atomic_load(&p->pending_n) >= p->q->batch_max
           || now - atomic_load(&p->pending_since) >= (uint64_t)p->q->delay_us * 1000;
}

/* ---- requests ---- */

ihsm_req *ihsm_req_new(ihsm_queue *q, uint16_t cmd)
{
    struct ihsm_proc *p;
    struct ihsm_req *r;

    if (q == NULL)
        return NULL;
    p = ihsm_proc_get(q);
    if (p == NULL)
        return NULL;
    r = ihsm_pool_get(p);
    if (r != NULL)
        r->cmd = cmd;
    return r;
}

ihsm_wr *ihsm_req_payload(ihsm_req *r)
{
    return &r->payload;
}

static int req_foreign(struct ihsm_req *r)
{
    return r->p != ihsm_proc_get(r->q);
}

int ihsm_req_submit(ihsm_req *r)
{
    struct ihsm_proc *p = r->p;
    struct ihsm_queue *q = r->q;
    struct ihsm_req *old;
    uint64_t now;
    int st, first;

    if (req_foreign(r))
        return IHSM_ERR_DEVICE_GONE; /* made before fork(): the parent's */
    if (RQ_FLAGS(atomic_load(&r->sg)) != RQ_OWNED)
        return IHSM_ERR_BAD_INPUT; /* submitted already */
    if (r->payload.err)
        return r->payload.err == IHSM_ERR_NOMEM ? IHSM_ERR_NOMEM : IHSM_ERR_LIMIT_FRAME;
    st = ihsm_conn_ensure(p);
    if (st != IHSM_OK)
        return st;

    now = ihsm_now_ns();
    r->deadline = now + (uint64_t)q->timeout_ms * 1000000ull;
    r->efd = ihsm_async_wait_fd();
    atomic_fetch_add_explicit(&q->st.requests, 1, memory_order_relaxed);
    atomic_fetch_add(&p->inflight, 1);
    if (r->efd >= 0)
        atomic_fetch_add(&p->async_inflight, 1);
    atomic_fetch_or(&r->sg, RQ_INFLIGHT);

    old = atomic_load(&p->pending);
    do {
        r->next_pending = old;
    } while (!atomic_compare_exchange_weak(&p->pending, &old, r));
    first = old == NULL;
    if (first)
        atomic_store(&p->pending_since, now);
    atomic_fetch_add(&p->pending_n, 1);

    if (ihsm_flush_due(p, now)) {
        /* idle (leave at once), a full batch, or waited long enough */
        ihsm_flush(p, 0);
    } else if (first && atomic_load(&p->drv_waiting) != DRV_RUNNING
               && atomic_exchange(&p->drv_waiting, DRV_RUNNING) != DRV_RUNNING) {
        /* the driver sleeps with nothing pending: it must learn that the
         * clock of this batch started */
        ihsm_kick(p);
    }
    return IHSM_OK;
}

int ihsm_req_done(const ihsm_req *r)
{
    struct ihsm_req *rr = (struct ihsm_req *)r;

    if (req_foreign(rr))
        return 1;
    return (RQ_FLAGS(atomic_load(&rr->sg)) & (RQ_DONE | RQ_TIMEDOUT)) != 0;
}

int ihsm_req_wait(ihsm_req *r, ihsm_result *res)
{
    struct ihsm_proc *p = r->p;
    uint32_t f;

    memset(res, 0, sizeof(*res));
    if (req_foreign(r))
        return res->status = IHSM_ERR_DEVICE_GONE;
    f = RQ_FLAGS(atomic_load(&r->sg));
    if (!(f & (RQ_INFLIGHT | RQ_DONE | RQ_TIMEDOUT)))
        return res->status = IHSM_ERR_BAD_INPUT; /* never submitted */
    /* an ASYNC job pauses even for an answer already there (see
     * ihsm_wait_async) */
    if (r->efd < 0 || !ihsm_wait_async(p, r))
        ihsm_wait_blocking(p, r);
    ihsm_req_wait_notified(r);
    f = RQ_FLAGS(atomic_load(&r->sg));
    if (!(f & RQ_DONE))
        return res->status = IHSM_ERR_TIMEOUT;
    res->status = r->status;
    res->data = r->data;
    res->len = r->len;
    r->data = NULL;
    r->len = 0;
    return res->status;
}

void ihsm_req_free(ihsm_req *r)
{
    uint64_t s;

    if (r == NULL)
        return;
    if (req_foreign(r))
        return; /* the parent's memory: freed with the queue */
    ihsm_req_wait_notified(r);
    s = atomic_fetch_and(&r->sg, ~(uint64_t)RQ_OWNED);
    if (RQ_FLAGS(s) & RQ_INFLIGHT)
        return; /* still out: whoever finishes it recycles it */
    if (RQ_FLAGS(s) & RQ_DONE) {
        if (r->data != NULL)
            OPENSSL_clear_free(r->data, r->len);
        r->data = NULL;
    }
    ihsm_pool_put(r);
}

int ihsm_queue_call(ihsm_queue *q, uint16_t cmd, const void *payload, size_t len,
                    ihsm_result *res)
{
    struct ihsm_req *r;
    int st;

    memset(res, 0, sizeof(*res));
    r = ihsm_req_new(q, cmd);
    if (r == NULL)
        return res->status = IHSM_ERR_NOMEM;
    if (len > 0)
        ihsm_wr_raw(&r->payload, payload, len);
    st = ihsm_req_submit(r);
    if (st == IHSM_OK)
        st = ihsm_req_wait(r, res);
    else
        res->status = st;
    ihsm_req_free(r);
    return st;
}

void ihsm_result_clear(ihsm_result *res)
{
    if (res == NULL)
        return;
    if (res->data != NULL)
        OPENSSL_clear_free(res->data, res->len);
    res->data = NULL;
    res->len = 0;
}

int ihsm_queue_poll(ihsm_queue *q, int wait_ms)
{
    struct ihsm_proc *p = ihsm_proc_get(q);
    uint64_t deadline;
    int n;

    if (p == NULL)
        return -IHSM_ERR_NOMEM;
    deadline = ihsm_now_ns() + (wait_ms > 0 ? (uint64_t)wait_ms * 1000000ull : 0);
    while (!ihsm_driver_trylock(p)) {
        /* another thread drives; what is ours still leaves now */
        uint64_t now = ihsm_now_ns();

        ihsm_flush(p, 0);
        if (now >= deadline)
            return 0;
        nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
    }
    n = ihsm_ring_turn(p, 0, TURN_FLUSH_ON_REAP);
    for (;;) {
        uint64_t now = ihsm_now_ns();

        if (n > 0 || now >= deadline || atomic_load(&p->inflight) == 0)
            break;
        n += ihsm_ring_turn(p, deadline - now, TURN_FLUSH_ON_REAP);
    }
    ihsm_driver_release(p);
    return n;
}
