/*
 * The event loop: one io_uring on the main thread does all socket reads.
 *
 *   - a multishot accept on the listening socket;
 *   - one recv per connection into that connection's frame buffer
 *     (MSG_TRUNC: an oversized message reports its real length);
 *   - a read on a signalfd for SIGTERM/SIGINT.
 *
 * A decoded request frame becomes a job for the workers, which answer on
 * the connection themselves, so the loop never blocks on a client. Frames
 * that do not decode are answered with one completion (id 0) and count a
 * strike; a bad magic or a third strike closes that connection only.
 */
#include "dev.h"
#include "ihsm_transport.h"

#include <errno.h>
#include <liburing.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define RING_ENTRIES 256

struct loop {
    struct ihsmd *d;
    struct io_uring ring;
    struct dev_op accept_op, signal_op, timeout_op;
    struct signalfd_siginfo si;
    struct __kernel_timespec retry;
    int sig_fd;
    int accept_armed;
    int stopping;
    struct dev_conn *conns;
    ihsm_entry ents[IHSM_MAX_BATCH];
};

/* ---- the listening socket ---- */

static int mkdir_parents(const char *sock)
{
    char dir[4096], *p;

    if (strlen(sock) >= sizeof(dir))
        return -ENAMETOOLONG;
    strcpy(dir, sock);
    p = strrchr(dir, '/');
    if (p == NULL || p == dir)
        return 0;
    *p = '\0';
    for (p = dir + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int dev_listen(struct ihsmd *d)
{
    const char *path = d->cfg.socket_path;
    struct sockaddr_un sa;
    struct stat st;
    int fd, r;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        dev_log("socket path %s is longer than %zu bytes: choose a shorter --socket",
                path, sizeof(sa.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    if ((r = mkdir_parents(path)) != 0) {
        dev_log("cannot create the directory of %s: %s", path, strerror(-r));
        return r;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            dev_log("%s exists and is not a socket: remove it or choose another --socket", path);
            return -EEXIST;
        }
        fd = ihsm_transport_connect(path);
        if (fd >= 0) {
            close(fd);
            dev_log("a live ihsmd is already listening on %s: stop it or choose another --socket",
                    path);
            return -EADDRINUSE;
        }
        dev_log("replacing the stale socket %s (no daemon behind it)", path);
        if (unlink(path) != 0 && errno != ENOENT) {
            dev_log("cannot remove the stale socket %s: %s", path, strerror(errno));
            return -errno;
        }
    }
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        r = -errno;
        dev_log("cannot bind %s: %s", path, strerror(errno));
        close(fd);
        return r;
    }
    /* Anyone may connect: access is decided per partition from the peer's
     * SO_PEERCRED uid when a session opens (and INIT_PARTITION checks the
     * admin uids), so the socket mode adds nothing but would stop e.g. an
     * nginx worker running as www-data from reaching its partition. */
    chmod(path, 0666);
    if (listen(fd, SOMAXCONN) != 0) {
        r = -errno;
        close(fd);
        unlink(path);
        return r;
    }
    d->listen_fd = fd;
    return 0;
}

/* ---- submission helpers ---- */

static struct io_uring_sqe *sqe_get(struct loop *l)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

    if (sqe == NULL) {
        io_uring_submit(&l->ring);
        sqe = io_uring_get_sqe(&l->ring);
    }
    return sqe;
}

static void arm_accept(struct loop *l)
{
    struct io_uring_sqe *sqe = sqe_get(l);

    if (sqe == NULL)
        return;
    io_uring_prep_multishot_accept(sqe, l->d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data(sqe, &l->accept_op);
    l->accept_armed = 1;
}

static void arm_signal(struct loop *l)
{
    struct io_uring_sqe *sqe = sqe_get(l);

    if (sqe == NULL)
        return;
    io_uring_prep_read(sqe, l->sig_fd, &l->si, sizeof(l->si), 0);
    io_uring_sqe_set_data(sqe, &l->signal_op);
}

static void arm_retry(struct loop *l)
{
    struct io_uring_sqe *sqe = sqe_get(l);

    if (sqe == NULL)
        return;
    l->retry.tv_sec = 0;
    l->retry.tv_nsec = 100 * 1000 * 1000;
    io_uring_prep_timeout(sqe, &l->retry, 0, 0);
    io_uring_sqe_set_data(sqe, &l->timeout_op);
}

static int arm_recv(struct loop *l, struct dev_conn *c)
{
    struct io_uring_sqe *sqe = sqe_get(l);

    if (sqe == NULL)
        return -1;
    io_uring_prep_recv(sqe, c->fd, c->rbuf, IHSM_MAX_FRAME, MSG_TRUNC);
    io_uring_sqe_set_data(sqe, &c->op);
    c->recv_armed = 1;
    return 0;
}

/* ---- connections ---- */

static void conn_close(struct loop *l, struct dev_conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    dev_debug("connection %llu (uid %ld pid %ld) closed", (unsigned long long)c->serial,
              (long)c->uid, (long)c->pid);
    dev_session_close_all(l->d, c);
    dev_conn_kill(c);
    dev_conn_put(l->d, c); /* the loop's reference */
}

static void on_accept(struct loop *l, int res, unsigned flags)
{
    struct dev_conn *c;

    if (!(flags & IORING_CQE_F_MORE))
        l->accept_armed = 0;
    if (res < 0) {
        if (res == -EMFILE || res == -ENFILE || res == -ENOMEM || res == -ENOBUFS) {
            dev_log("accept: %s: retrying in 100 ms", strerror(-res));
            if (!l->accept_armed && !l->stopping)
                arm_retry(l);
            return;
        }
        if (res != -ECANCELED && res != -EINTR && res != -ECONNABORTED)
            dev_log("accept: %s", strerror(-res));
    } else if (l->stopping) {
        close(res);
    } else if ((c = dev_conn_new(l->d, res)) == NULL) {
        close(res);
    } else {
        c->next = l->conns;
        if (c->next != NULL)
            c->next->prev = c;
        l->conns = c;
        dev_debug("connection %llu from uid %ld pid %ld", (unsigned long long)c->serial,
                  (long)c->uid, (long)c->pid);
        if (arm_recv(l, c) != 0)
            conn_close(l, c);
    }
    if (!l->accept_armed && !l->stopping)
        arm_accept(l);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One completion (id 0) for a frame that could not be decoded. */
static void answer_bad_frame(struct loop *l, struct dev_conn *c, int status)
{
    struct dev_job *j = dev_job_new(c, 1);

    if (j == NULL)
        return;
    j->res[0].status = (uint16_t)status;
    j->res[0].preset = 1;
    dev_job_submit(l->d, j);
}

/* Stop serving c: answers in flight (and the one just queued) still go
 * out, then the socket is shut and the pending recv ends the connection. */
static void hang_up(struct dev_conn *c)
{
    c->draining = 1;
    dev_conn_hangup(c);
}

/* Returns 0 to keep reading, -1 to close the connection now. */
static int on_frame(struct loop *l, struct dev_conn *c, size_t len)
{
    struct ihsmd *d = l->d;
    struct dev_job *j;
    uint16_t kind = 0;
    size_t count = 0;
    uint8_t *next;
    int st;

    atomic_fetch_add_explicit(&d->stats.frames_in, 1, memory_order_relaxed);
    if (len > IHSM_MAX_FRAME)
        st = IHSM_ERR_LIMIT_FRAME; /* MSG_TRUNC told the real length */
    else
        st = ihsm_frame_decode(c->rbuf, len, &kind, l->ents, IHSM_MAX_BATCH, &count);
    if (st == IHSM_OK && kind != IHSM_FRAME_REQUEST)
        st = IHSM_ERR_MALFORMED;
    if (st != IHSM_OK) {
        atomic_fetch_add_explicit(&d->stats.malformed_frames, 1, memory_order_relaxed);
        if (len < 4 || get32(c->rbuf) != IHSM_FRAME_MAGIC) {
            /* not speaking the protocol at all: nothing to answer */
            dev_log("client uid %ld pid %ld sent a frame without the IHSM magic: closing it",
                    (long)c->uid, (long)c->pid);
            hang_up(c);
            return 0;
        }
        dev_debug("client pid %ld: undecodable frame of %zu bytes: %s", (long)c->pid, len,
                  ihsm_status_name(st));
        answer_bad_frame(l, c, st);
        if (++c->strikes >= DEV_MAX_STRIKES) {
            dev_log("client uid %ld pid %ld sent %d undecodable frames: closing it",
                    (long)c->uid, (long)c->pid, c->strikes);
            hang_up(c);
        }
        return 0;
    }
    dev_stats_max(&d->stats.largest_batch, count);
    dev_debug("frame from pid %ld: %zu requests, %zu bytes", (long)c->pid, count, len);

    j = dev_job_new(c, (uint32_t)count);
    if (j == NULL)
        return -1;
    memcpy(j->ent, l->ents, count * sizeof(ihsm_entry));
    next = NULL;
    if (atomic_load(&c->inflight) + count > d->cfg.max_inflight
        || (next = dev_pool_get(&d->pool)) == NULL) {
        /* answer every entry now; the frame buffer stays with the loop */
        for (size_t i = 0; i < count; i++) {
            j->ent[i].payload = NULL;
            j->ent[i].len = 0;
            j->res[i].status = IHSM_ERR_LIMIT_INFLIGHT;
            j->res[i].preset = 1;
        }
        dev_debug("client pid %ld: over %u requests in flight", (long)c->pid,
                  d->cfg.max_inflight);
    } else {
        /* the job owns this buffer (its entries point into it) */
        j->buf = c->rbuf;
        j->buf_len = c->rbuf_used; /* all of it may hold old secrets */
        c->rbuf = next;
        c->rbuf_used = 0;
        j->inflight = (uint32_t)count;
        atomic_fetch_add(&c->inflight, (unsigned)count);
    }
    dev_job_submit(d, j);
    return 0;
}

static void on_recv(struct loop *l, struct dev_conn *c, int res)
{
    c->recv_armed = 0;
    if (l->stopping)
        return; /* the shutdown path closes it */
    if (res == -EINTR || res == -EAGAIN) {
        if (arm_recv(l, c) != 0)
            conn_close(l, c);
        return;
    }
    if (res <= 0 || atomic_load(&c->dead)) {
        if (res < 0 && res != -ECONNRESET)
            dev_debug("connection %llu: recv: %s", (unsigned long long)c->serial,
                      strerror(-res));
        conn_close(l, c);
        return;
    }
    if (c->rbuf_used < (size_t)res)
        c->rbuf_used = (size_t)res < IHSM_MAX_FRAME ? (size_t)res : IHSM_MAX_FRAME;
    /* a connection being hung up on is read only to see it end */
    if ((!c->draining && on_frame(l, c, (size_t)res) != 0) || arm_recv(l, c) != 0)
        conn_close(l, c);
}

static void dispatch(struct loop *l, struct io_uring_cqe *cqe)
{
    struct dev_op *op = io_uring_cqe_get_data(cqe);

    if (op == NULL)
        return;
    switch (op->type) {
    case DEV_OP_ACCEPT:
        on_accept(l, cqe->res, cqe->flags);
        break;
    case DEV_OP_SIGNAL:
        if (cqe->res == (int)sizeof(l->si)) {
            dev_log("%s: stopping: finishing requests in flight",
                    strsignal((int)l->si.ssi_signo));
            l->stopping = 1;
        } else if (!l->stopping) {
            arm_signal(l);
        }
        break;
    case DEV_OP_RECV:
        on_recv(l, (struct dev_conn *)op, cqe->res);
        break;
    case DEV_OP_TIMEOUT:
        if (!l->accept_armed && !l->stopping)
            arm_accept(l);
        break;
    }
}

static void reap(struct loop *l)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;

    io_uring_for_each_cqe(&l->ring, head, cqe) {
        dispatch(l, cqe);
        n++;
    }
    io_uring_cq_advance(&l->ring, n);
}

static int armed_recvs(const struct loop *l)
{
    int n = 0;

    for (const struct dev_conn *c = l->conns; c != NULL; c = c->next)
        n += c->recv_armed;
    return n;
}

/* SIGTERM: no new clients, answer what is in flight, then hang up on
 * everyone, closing their sessions (which frees and zeroizes keys). */
static void shutdown_loop(struct loop *l)
{
    struct ihsmd *d = l->d;
    struct io_uring_sqe *sqe;
    struct dev_conn *c;

    atomic_store(&d->stopping, 1);
    if (unlink(d->cfg.socket_path) != 0 && errno != ENOENT)
        dev_log("cannot remove %s: %s", d->cfg.socket_path, strerror(errno));
    if (l->accept_armed && (sqe = sqe_get(l)) != NULL) {
        io_uring_prep_cancel(sqe, &l->accept_op, 0);
        io_uring_sqe_set_data(sqe, NULL);
        io_uring_submit(&l->ring);
    }
    close(d->listen_fd);
    d->listen_fd = -1;

    dev_workers_drain(d);

    /* a pending recv writes into its connection's buffer: have every one
     * complete (shutdown makes it return 0) before the buffers go */
    for (c = l->conns; c != NULL; c = c->next)
        dev_conn_kill(c);
    for (int i = 0; i < 50 && armed_recvs(l) > 0; i++) {
        struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 20 * 1000 * 1000 };
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
        reap(l);
    }
    while (l->conns != NULL)
        conn_close(l, l->conns);
}

int dev_loop_run(struct ihsmd *d)
{
    struct loop *l = calloc(1, sizeof(*l));
    sigset_t mask;
    int r;

    if (l == NULL)
        return -ENOMEM;
    l->d = d;
    l->accept_op.type = DEV_OP_ACCEPT;
    l->signal_op.type = DEV_OP_SIGNAL;
    l->timeout_op.type = DEV_OP_TIMEOUT;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    l->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (l->sig_fd < 0) {
        r = -errno;
        free(l);
        return r;
    }
    r = io_uring_queue_init(RING_ENTRIES, &l->ring, 0);
    if (r < 0) {
        dev_log("io_uring_queue_init: %s: ihsmd needs io_uring (Linux 5.19 or later, "
                "not disabled by kernel.io_uring_disabled)", strerror(-r));
        close(l->sig_fd);
        free(l);
        return r;
    }
    arm_signal(l);
    arm_accept(l);
    dev_log("ready: listening on %s (%u workers)", d->cfg.socket_path, d->cfg.workers);

    while (!l->stopping) {
        r = io_uring_submit_and_wait(&l->ring, 1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
            dev_log("io_uring_submit_and_wait: %s", strerror(-r));
            break;
        }
        reap(l);
    }
    shutdown_loop(l);
    io_uring_queue_exit(&l->ring);
    close(l->sig_fd);
    free(l);
    return 0;
}
