/*
 * The connection to ihsmd: connect, open the partition session (one
 * synchronous exchange before the socket joins the ring), and tear down
 * when the device goes away. Errors say what is wrong and what to do.
 */
#include "offload_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "ihsm_transport.h"

#define SESSION_REQ_ID 1

void ihsm_set_error(struct ihsm_proc *p, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->last_error, sizeof(p->last_error), fmt, ap);
    va_end(ap);
    DBG("%s", p->last_error);
}

/* The OPEN_SESSION completion: its status and the session id. */
static int read_session_reply(const uint8_t *buf, size_t len, uint32_t *session, int *dev_status)
{
    ihsm_entry ent[1];
    uint16_t kind;
    size_t count;
    ihsm_rd rd;
    int st;

    st = ihsm_frame_decode(buf, len, &kind, ent, 1, &count);
    if (st != IHSM_OK || kind != IHSM_FRAME_COMPLETION || count != 1
        || ent[0].id != SESSION_REQ_ID)
        return IHSM_ERR_MALFORMED;
    *dev_status = ent[0].status;
    if (ent[0].status != IHSM_OK)
        return IHSM_OK;
    ihsm_rd_init(&rd, ent[0].payload, ent[0].len);
    *session = ihsm_rd_u32(&rd);
    return ihsm_rd_end(&rd) == 0 ? IHSM_OK : IHSM_ERR_MALFORMED;
}

/* Returns the device's status (or a transport failure) and explains it. */
static int open_session(struct ihsm_proc *p, int fd, uint32_t *session)
{
    struct ihsm_queue *q = p->q;
    const char *part = q->cred.partition;
    ihsm_wr w, pl;
    uint8_t *buf = NULL;
    size_t len = 0, mark;
    int st, dev_status = IHSM_OK;

    ihsm_wr_init(&w);
    ihsm_wr_init(&pl);
    ihsm_wr_bytes(&pl, part, strlen(part));
    ihsm_wr_bytes(&pl, q->cred.pin, IHSM_PIN_LEN);
    ihsm_wr_u32(&pl, q->cred.role != 0 ? q->cred.role : IHSM_ROLE_USER);
    ihsm_frame_begin(&w, IHSM_FRAME_REQUEST);
    mark = ihsm_frame_entry_begin(&w, SESSION_REQ_ID, IHSM_CMD_OPEN_SESSION, 0, 0);
    ihsm_wr_raw(&w, pl.p, pl.len);
    ihsm_frame_entry_end(&w, mark);
    st = pl.err ? IHSM_ERR_NOMEM : ihsm_frame_finish(&w);
    ihsm_wr_free(&pl); /* holds the PIN */
    if (st == IHSM_OK)
        st = ihsm_transport_send(fd, w.p, w.len);
    ihsm_wr_free(&w);
    if (st == IHSM_OK) {
        buf = malloc(IHSM_MAX_FRAME);
        st = buf == NULL ? IHSM_ERR_NOMEM
                         : ihsm_transport_recv(fd, buf, IHSM_MAX_FRAME, &len, (int)q->timeout_ms);
    }
    if (st == IHSM_OK)
        st = read_session_reply(buf, len, session, &dev_status);
    free(buf);

    switch (st) {
    case IHSM_OK:
        break;
    case IHSM_ERR_TIMEOUT:
        ihsm_set_error(p, "ihsmd at %s did not answer OPEN_SESSION within %u ms: is it "
                       "stopped or overloaded?", q->socket_path, q->timeout_ms);
        return st;
    case IHSM_ERR_DEVICE_GONE:
        ihsm_set_error(p, "ihsmd at %s closed the connection during OPEN_SESSION: see "
                       "its log", q->socket_path);
        return st;
    default:
        ihsm_set_error(p, "ihsmd at %s answered OPEN_SESSION with a malformed frame "
                       "(%s): client and ihsmd versions may differ", q->socket_path,
                       ihsm_status_name(st));
        return st;
    }
    switch (dev_status) {
    case IHSM_OK:
        return IHSM_OK;
    case IHSM_ERR_AUTH:
        ihsm_set_error(p, "wrong credential for partition %s (IHSM_ERR_AUTH): the PIN in %s "
                       "is not this partition's; use the file `ihsmctl init` wrote",
                       part, q->cred_path);
        break;
    case IHSM_ERR_LOCKED:
        ihsm_set_error(p, "partition locked: %s refuses sessions after repeated wrong PINs "
                       "(IHSM_ERR_LOCKED); wait and retry with the right credential", part);
        break;
    case IHSM_ERR_NO_PARTITION:
        ihsm_set_error(p, "no partition %s on ihsmd at %s (IHSM_ERR_NO_PARTITION): create "
                       "it with `ihsmctl init --partition %s`", part, q->socket_path, part);
        break;
    case IHSM_ERR_PERMISSION:
        ihsm_set_error(p, "uid %ld may not open sessions on partition %s "
                       "(IHSM_ERR_PERMISSION): see `ihsmctl init --allow-uid`",
                       (long)getuid(), part);
        break;
    default:
        ihsm_set_error(p, "OPEN_SESSION on partition %s failed: %s (%s)", part,
                       ihsm_status_str(dev_status), ihsm_status_name(dev_status));
        break;
    }
    return dev_status;
}

int ihsm_conn_ensure(struct ihsm_proc *p)
{
    struct ihsm_queue *q = p->q;
    uint32_t session = 0;
    int fd, st = IHSM_OK;

    if (atomic_load(&p->up))
        return IHSM_OK;
    pthread_mutex_lock(&p->conn_lock);
    if (atomic_load(&p->up))
        goto out;
    if (!p->ring_ok && ihsm_ring_init(p) != 0) {
        st = IHSM_ERR_CONNECT;
        goto out;
    }
    fd = ihsm_transport_connect(q->socket_path);
    if (fd < 0) {
        int e = errno;

        if (e == ENOENT || e == ECONNREFUSED)
            ihsm_set_error(p, "ihsmd is not running at %s (connect: %s): start it with "
                           "`ihsmd --state-dir DIR --socket %s`", q->socket_path,
                           strerror(e), q->socket_path);
        else
            ihsm_set_error(p, "cannot reach ihsmd at %s (connect: %s)", q->socket_path,
                           strerror(e));
        st = IHSM_ERR_CONNECT;
        goto out;
    }
    if (q->have_cred) {
        st = open_session(p, fd, &session);
        if (st != IHSM_OK) {
            close(fd);
            goto out;
        }
    }
    pthread_mutex_lock(&p->lock);
    p->fd = fd;
    p->session = session;
    atomic_fetch_add(&p->cgen, 1);
    atomic_store(&p->up, 1);
    pthread_mutex_unlock(&p->lock);
    if (p->connected_once)
        atomic_fetch_add(&q->st.reconnects, 1);
    p->connected_once = 1;
    p->last_error[0] = '\0';
    DBG("connected to %s, %s%u (connection %u)", q->socket_path,
        q->have_cred ? "session " : "no session: ", session, atomic_load(&p->cgen));
out:
    pthread_mutex_unlock(&p->conn_lock);
    return st;
}

unsigned ihsm_conn_teardown(struct ihsm_proc *p, uint32_t cgen, int status, const char *why)
{
    struct ihsm_req *head;
    unsigned failed = 0, n;

    pthread_mutex_lock(&p->lock);
    if (!atomic_load(&p->up) || atomic_load(&p->cgen) != cgen) {
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    atomic_store(&p->up, 0);
    /* shutdown first: the recv armed in the ring holds its own reference
     * to the socket and returns only once the socket is shut */
    shutdown(p->fd, SHUT_RDWR);
    close(p->fd);
    p->fd = -1;
    head = atomic_exchange(&p->pending, NULL);
    pthread_mutex_unlock(&p->lock);

    for (n = 0; head != NULL; n++) {
        struct ihsm_req *next = head->next_pending;

        ihsm_req_finish_local(head, status);
        head = next;
        failed++;
    }
    atomic_fetch_sub(&p->pending_n, (int)n);
    n = ihsm_pool_size(p);
    for (uint32_t i = 0; i < n; i++) {
        struct ihsm_req *r = ihsm_pool_slot(p, i);

        if (ihsm_req_claim(r, RQ_GEN(atomic_load(&r->sg)), 1, cgen)) {
            ihsm_req_publish(r, status, NULL, 0);
            failed++;
        }
    }
    atomic_fetch_add(&p->q->st.device_gone, failed);
    /* a connect in progress holds conn_lock for up to a timeout: the
     * driver does not wait for it just to write a message */
    if (pthread_mutex_trylock(&p->conn_lock) == 0) {
        ihsm_set_error(p, "connection to ihsmd at %s lost (%s): %u requests failed with "
                       "%s; the next request reconnects", p->q->socket_path, why, failed,
                       ihsm_status_name(status));
        pthread_mutex_unlock(&p->conn_lock);
    } else {
        DBG("connection to ihsmd lost (%s): %u requests failed", why, failed);
    }
    return failed;
}
