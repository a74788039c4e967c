/*
 * The driver's io_uring. Only the driver touches it: the recv armed on the
 * socket, a read armed on the kick eventfd (how a submitter wakes a driver
 * asleep in io_uring_enter), and sends that met a full socket. One turn
 * reaps every completion frame, sends what is due and waits, arming and
 * waiting in a single io_uring_enter.
 */
#include "offload_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

int ihsm_ring_init(struct ihsm_proc *p)
{
    int r;

    p->rbuf = malloc(IHSM_MAX_FRAME);
    p->ents = calloc(IHSM_MAX_BATCH, sizeof(*p->ents));
    p->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->rbuf == NULL || p->ents == NULL || p->kick_fd < 0) {
        ihsm_set_error(p, "cannot set up the request queue: %s", strerror(errno));
        goto fail;
    }
    r = io_uring_queue_init(RING_ENTRIES, &p->ring, 0);
    if (r < 0) {
        ihsm_set_error(p, "io_uring is not available (%s): the offload queue needs "
                       "Linux 5.11 or later with io_uring enabled (sysctl "
                       "kernel.io_uring_disabled=0)", strerror(-r));
        goto fail;
    }
    p->ring_ok = 1;
    return 0;
fail:
    free(p->rbuf);
    free(p->ents);
    p->rbuf = NULL;
    p->ents = NULL;
    if (p->kick_fd >= 0)
        close(p->kick_fd);
    p->kick_fd = -1;
    return -1;
}

void ihsm_ring_exit(struct ihsm_proc *p)
{
    if (p->ring_ok)
        io_uring_queue_exit(&p->ring);
    p->ring_ok = 0;
    if (p->kick_fd >= 0)
        close(p->kick_fd);
    p->kick_fd = -1;
    free(p->rbuf);
    free(p->ents);
    p->rbuf = NULL;
    p->ents = NULL;
}

void ihsm_kick(struct ihsm_proc *p)
{
    uint64_t one = 1;

    if (p->kick_fd >= 0 && write(p->kick_fd, &one, sizeof(one)) < 0)
        DBG("kick: %s", strerror(errno));
}

static struct io_uring_sqe *get_sqe(struct ihsm_proc *p)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);

    if (sqe == NULL) { /* full: push what is queued to make room */
        io_uring_submit(&p->ring);
        sqe = io_uring_get_sqe(&p->ring);
    }
    return sqe;
}

/* ---- completions ---- */

static int process_frame(struct ihsm_proc *p, uint32_t cgen, size_t len)
{
    struct ihsm_queue *q = p->q;
    uint16_t kind = 0;
    size_t count = 0;
    int st, done = 0;

    st = ihsm_frame_decode(p->rbuf, len, &kind, p->ents, IHSM_MAX_BATCH, &count);
    if (st != IHSM_OK || kind != IHSM_FRAME_COMPLETION) {
        DBG("ihsmd sent an undecodable frame (%zu bytes): %s", len,
            st != IHSM_OK ? ihsm_status_name(st) : "not a completion");
        ihsm_conn_teardown(p, cgen, IHSM_ERR_DEVICE_GONE, "undecodable frame from ihsmd");
        return 0;
    }
    atomic_fetch_add_explicit(&q->st.frames_received, 1, memory_order_relaxed);
    for (size_t i = 0; i < count; i++) {
        const ihsm_entry *e = &p->ents[i];
        struct ihsm_req *r;

        if (e->id == 0 && e->status != IHSM_OK) {
            /* the device could not read one of our frames, and cannot say
             * which: fail everything on this connection rather than leave
             * requests to time out */
            DBG("ihsmd rejected a request frame: %s", ihsm_status_name(e->status));
            ihsm_conn_teardown(p, cgen, e->status, "ihsmd rejected a request frame");
            return done;
        }
        r = ihsm_pool_slot(p, (uint32_t)e->id);
        if (r == NULL || !ihsm_req_claim(r, (uint32_t)(e->id >> 32), 1, cgen)) {
            DBG("completion for unknown or stale request %#llx dropped",
                (unsigned long long)e->id);
            continue;
        }
        ihsm_req_publish(r, e->status, e->payload, e->len);
        atomic_fetch_add_explicit(&q->st.completions, 1, memory_order_relaxed);
        done++;
    }
    return done;
}

static int handle_cqe(struct ihsm_proc *p, struct io_uring_cqe *cqe)
{
    struct ring_op *op = io_uring_cqe_get_data(cqe);
    int res = cqe->res;

    if (op == NULL)
        return 0;
    switch (op->kind) {
    case OP_RECV:
        p->recv_armed = 0;
        if (op->cgen != atomic_load(&p->cgen) || !atomic_load(&p->up))
            return 0; /* a connection already closed */
        if (res > IHSM_MAX_FRAME) {
            ihsm_conn_teardown(p, op->cgen, IHSM_ERR_DEVICE_GONE, "oversized frame from ihsmd");
            return 0;
        }
        if (res > 0)
            return process_frame(p, op->cgen, (size_t)res);
        if (res == -EINTR || res == -EAGAIN || res == -ECANCELED)
            return 0; /* e.g. the thread that armed it exited: re-armed next turn */
        ihsm_conn_teardown(p, op->cgen, IHSM_ERR_DEVICE_GONE,
                           res == 0 ? "ihsmd closed the connection" : strerror(-res));
        return 0;
    case OP_KICK:
        p->kick_armed = 0;
        return 0;
    case OP_SEND:
        if (res < 0 && op->cgen == atomic_load(&p->cgen))
            ihsm_conn_teardown(p, op->cgen, IHSM_ERR_DEVICE_GONE, strerror(-res));
        ihsm_wr_free(&op->frame); /* cleansed */
        free(op);
        return 0;
    }
    return 0;
}

static int reap(struct ihsm_proc *p)
{
    struct io_uring_cqe *cqe;
    int done = 0;

    /* one CQE at a time: a completion may tear the connection down, which
     * must not race with iterating the ring */
    while (io_uring_peek_cqe(&p->ring, &cqe) == 0) {
        struct io_uring_cqe c = *cqe;

        io_uring_cqe_seen(&p->ring, cqe);
        done += handle_cqe(p, &c);
    }
    return done;
}

/* ---- arming ---- */

/* Backlog sends always; the recv and the kick read only for a thread
 * about to wait (want_wait): a poll-armed request completes through task
 * work run by the thread that armed it, so arming from a thread that will
 * not wait would cost that thread a wakeup on every completion frame. */
static void arm(struct ihsm_proc *p, int want_wait, int want_kick)
{
    struct ring_op *ops = atomic_exchange(&p->backlog, NULL), *op;
    struct io_uring_sqe *sqe;

    /* frames a full socket refused; only this connection's still matter */
    while ((op = ops) != NULL) {
        ops = op->next;
        if (op->cgen != atomic_load(&p->cgen) || !atomic_load(&p->up)
            || (sqe = get_sqe(p)) == NULL) {
            ihsm_wr_free(&op->frame);
            free(op);
            continue;
        }
        /* the fd stays open: only the driver (we) closes it */
        io_uring_prep_send(sqe, p->fd, op->frame.p, op->frame.len, MSG_NOSIGNAL);
        io_uring_sqe_set_data(sqe, op);
    }
    if (!want_wait)
        return;
    if (!p->recv_armed && atomic_load(&p->up) && atomic_load(&p->sent_inflight) > 0
        && (sqe = get_sqe(p)) != NULL) {
        pthread_mutex_lock(&p->lock); /* a consistent fd and cgen */
        p->recv_op.cgen = atomic_load(&p->cgen);
        io_uring_prep_recv(sqe, p->fd, p->rbuf, IHSM_MAX_FRAME, MSG_TRUNC);
        pthread_mutex_unlock(&p->lock);
        io_uring_sqe_set_data(sqe, &p->recv_op);
        p->recv_armed = 1;
    }
    if (want_kick && !p->kick_armed && (sqe = get_sqe(p)) != NULL) {
        io_uring_prep_read(sqe, p->kick_fd, &p->kick_val, sizeof(p->kick_val), 0);
        io_uring_sqe_set_data(sqe, &p->kick_op);
        p->kick_armed = 1;
    }
}

int ihsm_ring_turn(struct ihsm_proc *p, uint64_t wait_ns, enum ihsm_turn_flush how)
{
    struct io_uring_cqe *cqe;
    uint64_t now;
    uint32_t broken;
    int done, want_kick = 0;

    done = reap(p);
    broken = atomic_exchange(&p->broken, 0);
    /* the requests a failed send took down are completions of this turn:
     * the caller's own may be among them, so it must not go to sleep */
    if (broken != 0)
        done += (int)ihsm_conn_teardown(p, broken, IHSM_ERR_DEVICE_GONE, "send to ihsmd failed");
    now = ihsm_now_ns();
    /* pending requests leave with the enter that reaps completions: the
     * device just freed up, and whoever queued meanwhile goes together */
    if ((done > 0 && how == TURN_FLUSH_ON_REAP) || ihsm_flush_due(p, now))
        ihsm_flush(p, 1);
    ihsm_expire_sweep(p, now);
    if (done > 0)
        wait_ns = 0;
    if (wait_ns > 0) {
        /* about to sleep: a submitter that starts a batch, or that sends a
         * frame while no recv is armed, must kick us. Dekker with
         * ihsm_req_submit and ihsm_flush: publish first, then look. */
        atomic_store(&p->drv_waiting, DRV_WAIT_NORECV);
        if (atomic_load(&p->pending) == NULL) {
            want_kick = 1;
        } else {
            uint64_t since = atomic_load(&p->pending_since), due;

            atomic_store(&p->drv_waiting, DRV_RUNNING);
            due = since + (uint64_t)p->q->delay_us * 1000;
            wait_ns = due <= now ? 1000 : (due - now < wait_ns ? due - now : wait_ns);
        }
    }
    arm(p, wait_ns > 0, want_kick);
    if (want_kick && p->recv_armed) {
        int w = DRV_WAIT_NORECV;

        atomic_compare_exchange_strong(&p->drv_waiting, &w, DRV_WAIT_RECV);
    }
    if (wait_ns == 0) {
        if (io_uring_sq_ready(&p->ring) > 0)
            io_uring_submit(&p->ring);
    } else {
        struct __kernel_timespec ts = { .tv_sec = (long long)(wait_ns / 1000000000ull),
                                        .tv_nsec = (long long)(wait_ns % 1000000000ull) };
        int r = io_uring_submit_and_wait_timeout(&p->ring, &cqe, 1, &ts, NULL);

        if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY)
            DBG("io_uring_enter: %s", strerror(-r));
        atomic_store(&p->drv_waiting, DRV_RUNNING);
    }
    return done + reap(p);
}
