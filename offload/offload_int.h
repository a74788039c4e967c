/*
 * Internals of the offload queue, shared by its files only.
 *
 * A queue (one per config) owns a per-process state, struct ihsm_proc:
 * the socket, the io_uring, the session, the request pool. A forked child
 * notices a new fork generation on its next call, closes its copies of the
 * parent's descriptors without touching anything else of the parent's, and
 * builds a proc of its own.
 *
 * Roles inside a proc:
 *   driver   whoever holds p->driver (a trylock) owns the ring: only it
 *            touches the SQ and CQ, arms the recv, reaps completions and
 *            closes the socket, so it can arm and wait in one
 *            io_uring_enter without a lock.
 *   flusher  whoever sends a frame (a submitter, or the driver) encodes it
 *            and send(2)s it with MSG_DONTWAIT under p->lock, which keeps
 *            the fd alive against the driver's close. A frame that meets a
 *            full socket goes to the ring as IORING_OP_SEND, kept alive
 *            until its CQE. Sends are not SQEs by default: a non-driver
 *            cannot touch the SQ, and a SEND CQE would wake the sleeping
 *            driver for nothing (a wakeup costs an ECDSA sign).
 *   reaper   a thread (lazily, for OpenSSL ASYNC jobs) that drives while
 *            requests are in flight and nobody else does.
 */
#ifndef IHSM_OFFLOAD_INT_H
#define IHSM_OFFLOAD_INT_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "ihsm_credential.h"
#include "ihsm_offload.h"

#define IHSM_DEFAULT_BATCH   64
#define IHSM_DEFAULT_DELAY   50    /* µs */
#define IHSM_DEFAULT_TIMEOUT 10000 /* ms */

#define POOL_CHUNK      256 /* requests per slab */
#define POOL_MAX_CHUNKS 256 /* 65536 requests in flight per process at most */
#define RING_ENTRIES    64

#define FOLLOWER_NAP_NS  (5 * 1000000ull)  /* a follower re-checks the driver role */
#define REAPER_TURN_NS   (20 * 1000000ull) /* reaper's longest wait in the ring */
#define EXPIRE_EVERY_NS  (20 * 1000000ull) /* deadline sweeps for unwaited requests */

/* What a submitter must know of a sleeping driver (p->drv_waiting) */
#define DRV_RUNNING     0 /* not in a long wait: it will look at pending */
#define DRV_WAIT_RECV   1 /* asleep, a recv armed: sent frames get answered */
#define DRV_WAIT_NORECV 2 /* asleep, no recv armed: a frame sent now needs a kick */

/* Request state word: generation << 32 | flags. The generation is in the
 * request id too, so a completion, a timeout or a sweep racing with the
 * slot's reuse fails its compare-and-swap instead of hitting the new user. */
#define RQ_OWNED      0x01u /* the caller still holds it */
#define RQ_INFLIGHT   0x02u /* submitted, outcome not known yet */
#define RQ_SENT       0x04u /* in a frame sent on connection sent_cgen */
#define RQ_COMPLETING 0x08u /* a completer claimed it and is storing the result */
#define RQ_DONE       0x10u /* result stored */
#define RQ_TIMEDOUT   0x20u /* the waiter gave up; a late result is dropped */
#define RQ_NOTIFYING  0x40u /* a completer is still writing the async wait fd */
#define RQ_FLAGS(s)   ((uint32_t)(s))
#define RQ_GEN(s)     ((uint32_t)((s) >> 32))

struct ihsm_proc;

struct ihsm_req {
    _Atomic uint64_t sg;       /* generation << 32 | RQ_* */
    _Atomic uint32_t wake;     /* futex: bumped on completion or promotion */
    _Atomic uint32_t sleeping; /* a blocked waiter may be asleep on wake */
    _Atomic uint32_t next_free;/* freelist link: index + 1, 0 ends */
    uint32_t idx;
    uint32_t sent_cgen;
    uint16_t cmd;
    int efd;                   /* ASYNC job's wait fd, or -1 */
    uint64_t deadline;         /* ns, CLOCK_MONOTONIC */
    struct ihsm_queue *q;
    struct ihsm_proc *p;
    struct ihsm_req *next_pending;
    struct ihsm_req *fnext, *fprev; /* followers list, under p->wlock */
    int following;
    ihsm_wr payload;
    /* result */
    int status;
    uint8_t *data;
    size_t len;
};

enum ring_op_kind { OP_RECV = 1, OP_KICK, OP_SEND };

/* user_data of every SQE: what completed */
struct ring_op {
    enum ring_op_kind kind;
    uint32_t cgen;
    struct ring_op *next; /* backlog of sends */
    ihsm_wr frame;        /* OP_SEND: kept alive until the CQE */
};

struct ihsm_proc {
    struct ihsm_queue *q;
    struct ihsm_proc *older; /* the parent's, abandoned after fork */
    unsigned fork_gen;
    int orphan;              /* belongs to another process */

    /* ---- connection: changed under lock; up/cgen also read bare ---- */
    pthread_mutex_t lock;      /* fd lifetime, direct sends, sendbuf */
    pthread_mutex_t conn_lock; /* serialises connects; last_error */
    int fd;
    uint32_t session;
    _Atomic uint32_t cgen;     /* connection generation, bumped per connect */
    _Atomic int up;
    _Atomic uint32_t broken;   /* cgen a non-driver saw fail; the driver closes it */
    int connected_once;
    char last_error[512];
    ihsm_wr sendbuf;           /* non-drivers' frame, under lock */

    /* ---- the ring: driver only ---- */
    struct io_uring ring;
    int ring_ok;
    int kick_fd;               /* eventfd a submitter writes to wake the driver */
    uint64_t kick_val;
    int kick_armed;
    int recv_armed;
    uint8_t *rbuf;             /* IHSM_MAX_FRAME */
    ihsm_entry *ents;          /* IHSM_MAX_BATCH */
    struct ring_op recv_op, kick_op;
    _Atomic(struct ring_op *) backlog; /* sends that met a full socket */

    /* ---- submission ---- */
    _Atomic(struct ihsm_req *) pending; /* lock-free stack, newest first */
    _Atomic int pending_n;
    _Atomic uint64_t pending_since;     /* ns, first push onto an empty stack */
    _Atomic uint32_t inflight;          /* submitted, no outcome */
    _Atomic uint32_t sent_inflight;     /* of those, sent in a frame */
    _Atomic uint32_t async_inflight;
    _Atomic uint64_t next_expire;

    /* ---- driving ---- */
    _Atomic int driver;
    _Atomic int drv_waiting;   /* DRV_*: the driver asleep with nothing pending */
    pthread_mutex_t wlock;
    struct ihsm_req *followers;
    _Atomic int nfollowers;

    /* ---- reaper ---- */
    pthread_t reaper;
    _Atomic int reaper_started;
    _Atomic int reaper_stop;
    _Atomic uint32_t reaper_word;
    _Atomic int reaper_sleeping;

    /* ---- pool ---- */
    pthread_mutex_t grow_lock;
    struct ihsm_req *chunks[POOL_MAX_CHUNKS];
    _Atomic uint32_t nchunks;
    _Atomic uint64_t free_head; /* tag << 32 | (index + 1) */
};

struct ihsm_queue {
    char *socket_path;
    char *cred_path;
    ihsm_credential cred;
    int have_cred;
    unsigned batch_max, delay_us, timeout_ms;
    _Atomic(struct ihsm_proc *) proc;
    struct {
        _Atomic uint64_t requests, completions, frames_sent, frames_received,
            largest_batch, reconnects, timeouts, device_gone;
    } st;
};

/* ---- time, futex (queue.c) ---- */
uint64_t ihsm_now_ns(void);
void ihsm_futex_wait(_Atomic uint32_t *w, uint32_t val, uint64_t timeout_ns);
void ihsm_futex_wake(_Atomic uint32_t *w, int n);
void ihsm_stat_max(_Atomic uint64_t *a, uint64_t v);

/* ---- the process state (queue.c) ---- */
struct ihsm_proc *ihsm_proc_get(struct ihsm_queue *q);

/* ---- request_pool.c ---- */
int ihsm_pool_init(struct ihsm_proc *p);
void ihsm_pool_destroy(struct ihsm_proc *p);
struct ihsm_req *ihsm_pool_get(struct ihsm_proc *p);
void ihsm_pool_put(struct ihsm_req *r);
struct ihsm_req *ihsm_pool_slot(struct ihsm_proc *p, uint32_t idx); /* NULL past the end */
uint32_t ihsm_pool_size(struct ihsm_proc *p);
static inline uint64_t ihsm_req_id(const struct ihsm_req *r, uint64_t s)
{
    return (uint64_t)RQ_GEN(s) << 32 | r->idx;
}
/* Claim the right to complete r of generation gen. need_sent: only if it
 * went out in a frame, on connection cgen when cgen != 0. */
int ihsm_req_claim(struct ihsm_req *r, uint32_t gen, int need_sent, uint32_t cgen);
/* Store the outcome of a claimed request and wake whoever waits for it. */
void ihsm_req_publish(struct ihsm_req *r, int status, const uint8_t *data, size_t len);
/* claim + publish for a request that never reached the device */
void ihsm_req_finish_local(struct ihsm_req *r, int status);
/* The deadline passed: mark it given up (and wake an ASYNC job). */
int ihsm_req_expire(struct ihsm_req *r, uint64_t s);
void ihsm_expire_sweep(struct ihsm_proc *p, uint64_t now);
void ihsm_req_wait_notified(struct ihsm_req *r);

/* ---- session.c: connection life ---- */
int ihsm_conn_ensure(struct ihsm_proc *p);
/* Driver only: close connection cgen and fail what was in flight on it. */
/* Returns how many requests it failed (0 if cgen is no longer current). */
unsigned ihsm_conn_teardown(struct ihsm_proc *p, uint32_t cgen, int status, const char *why);
void ihsm_set_error(struct ihsm_proc *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- ring.c: the driver's ring ---- */
int ihsm_ring_init(struct ihsm_proc *p);
void ihsm_ring_exit(struct ihsm_proc *p);
/* One turn: reap, send what is due, arm, wait up to wait_ns for a
 * completion (0: no wait). Returns requests completed. */
enum ihsm_turn_flush {
    TURN_FLUSH_DUE,     /* only a due batch (ihsm_flush_due) leaves */
    TURN_FLUSH_ON_REAP, /* and, after reaping completions, all that is pending */
};
int ihsm_ring_turn(struct ihsm_proc *p, uint64_t wait_ns, enum ihsm_turn_flush how);
void ihsm_kick(struct ihsm_proc *p);

/* ---- queue.c: pending list and frames ---- */
/* Send what is pending. by_driver: a full socket goes to the ring, else
 * to the backlog and the driver is kicked. */
void ihsm_flush(struct ihsm_proc *p, int by_driver);
int ihsm_flush_due(struct ihsm_proc *p, uint64_t now);

/* ---- driver.c ---- */
int ihsm_driver_trylock(struct ihsm_proc *p);
void ihsm_driver_release(struct ihsm_proc *p);
int ihsm_wait_blocking(struct ihsm_proc *p, struct ihsm_req *r);

/* ---- async_wait.c ---- */
int ihsm_async_wait_fd(void); /* the current ASYNC job's fd, or -1 */
/* 1 if handled (r finished or timed out), 0 if not in a job after all */
int ihsm_wait_async(struct ihsm_proc *p, struct ihsm_req *r);
void ihsm_reaper_wake(struct ihsm_proc *p);
void ihsm_reaper_stop(struct ihsm_proc *p);

#define DBG(...)                 \
    do {                         \
        if (ihsm_debug)          \
            ihsm_dbg(__VA_ARGS__); \
    } while (0)

#endif
