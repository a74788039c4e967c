/*
 * Client connections and the pool of frame buffers.
 *
 * A connection is shared by the event loop (which reads it) and the workers
 * (which answer on it), so it is reference counted and its fd is closed
 * only when the last reference goes: a worker never writes to a recycled
 * descriptor. Each request frame in flight owns a pool buffer because its
 * entries point into it; the loop takes a fresh one for the next read.
 */
#include "dev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <openssl/crypto.h>

/* ---- buffer pool ---- */

int dev_pool_init(struct dev_pool *p, size_t keep)
{
    pthread_mutex_init(&p->mu, NULL);
    p->n = 0;
    p->cap = keep;
    p->free = calloc(keep, sizeof(*p->free));
    return p->free != NULL ? 0 : -1;
}

void dev_pool_destroy(struct dev_pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->free[i]);
    free(p->free);
    p->free = NULL;
    p->n = 0;
    pthread_mutex_destroy(&p->mu);
}

uint8_t *dev_pool_get(struct dev_pool *p)
{
    uint8_t *b = NULL;

    pthread_mutex_lock(&p->mu);
    if (p->n > 0)
        b = p->free[--p->n];
    pthread_mutex_unlock(&p->mu);
    return b != NULL ? b : malloc(IHSM_MAX_FRAME);
}

void dev_pool_put(struct dev_pool *p, uint8_t *buf, size_t used)
{
    if (buf == NULL)
        return;
    /* request frames carry PINs and AEAD plaintext */
    OPENSSL_cleanse(buf, used < IHSM_MAX_FRAME ? used : IHSM_MAX_FRAME);
    pthread_mutex_lock(&p->mu);
    if (p->n < p->cap) {
        p->free[p->n++] = buf;
        buf = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    free(buf);
}

/* ---- connections ---- */

struct dev_conn *dev_conn_new(struct ihsmd *d, int fd)
{
    struct dev_conn *c = calloc(1, sizeof(*c));
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    struct timeval tv = { .tv_sec = DEV_SEND_TIMEOUT_S };

    if (c == NULL)
        return NULL;
    /* the peer's identity as the kernel saw it at connect(): the only uid
     * access decisions use */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
        dev_log("connection refused: SO_PEERCRED failed: %s", strerror(errno));
        free(c);
        return NULL;
    }
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    c->rbuf = dev_pool_get(&d->pool);
    if (c->rbuf == NULL) {
        free(c);
        return NULL;
    }
    c->op.type = DEV_OP_RECV;
    c->fd = fd;
    c->uid = cred.uid;
    c->pid = cred.pid;
    c->serial = atomic_fetch_add(&d->conn_serial, 1) + 1;
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->send_mu, NULL);
    pthread_mutex_init(&c->sess_mu, NULL);
    atomic_fetch_add_explicit(&d->stats.connections, 1, memory_order_relaxed);
    return c;
}

void dev_conn_get(struct dev_conn *c)
{
    atomic_fetch_add(&c->refs, 1);
}

void dev_conn_put(struct ihsmd *d, struct dev_conn *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    close(c->fd);
    dev_pool_put(&d->pool, c->rbuf, c->rbuf_used);
    pthread_mutex_destroy(&c->send_mu);
    pthread_mutex_destroy(&c->sess_mu);
    atomic_fetch_sub_explicit(&d->stats.connections, 1, memory_order_relaxed);
    free(c);
}

void dev_conn_kill(struct dev_conn *c)
{
    if (atomic_exchange(&c->dead, 1) == 0)
        shutdown(c->fd, SHUT_RDWR);
}

void dev_conn_hangup(struct dev_conn *c)
{
    /* set before looking at jobs: the worker finishing the last job sees it */
    atomic_store(&c->hangup, 1);
    if (atomic_load(&c->jobs) == 0)
        dev_conn_kill(c);
}

int dev_conn_send(struct ihsmd *d, struct dev_conn *c, const uint8_t *p, size_t len)
{
    ssize_t n = -1;
    int e = 0;

    pthread_mutex_lock(&c->send_mu);
    if (!atomic_load(&c->dead)) {
        do {
            n = send(c->fd, p, len, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        e = errno;
    }
    pthread_mutex_unlock(&c->send_mu);
    if (n == (ssize_t)len) {
        atomic_fetch_add_explicit(&d->stats.frames_out, 1, memory_order_relaxed);
        return 0;
    }
    if (!atomic_load(&c->dead)) {
        if (e == EAGAIN)
            dev_log("client uid %ld pid %ld stopped reading for %d s: dropping it",
                    (long)c->uid, (long)c->pid, DEV_SEND_TIMEOUT_S);
        else
            dev_log("client uid %ld pid %ld: send failed (%s): dropping it",
                    (long)c->uid, (long)c->pid, strerror(e));
        dev_conn_kill(c);
    }
    return -1;
}
