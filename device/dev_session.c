/*
 * Sessions: opened on a connection after the PIN check, usable only on
 * that connection, closed with it. A session records the key handles it
 * holds so closing it releases them (and frees keys nobody else holds).
 *
 * Locks: conn->sess_mu (the connection's list) -> sessions.mu (the id
 * table) -> s->mu (the held handles). A session is reference counted: a
 * worker running a request keeps it alive while another closes it.
 */
#include "dev.h"

#include <stdlib.h>
#include <string.h>

int dev_sessions_init(struct ihsmd *d)
{
    pthread_mutex_init(&d->sessions.mu, NULL);
    return dev_table_init(&d->sessions.t, d->cfg.max_sessions);
}

void dev_sessions_destroy(struct ihsmd *d)
{
    dev_table_free(&d->sessions.t);
    pthread_mutex_destroy(&d->sessions.mu);
}

void dev_session_put(struct dev_session *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    free(s->handles);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int dev_session_open(struct ihsmd *d, struct dev_conn *c,
                     struct dev_partition *p, uint32_t role, uint32_t *id)
{
    struct dev_session *s = calloc(1, sizeof(*s));
    int st = IHSM_OK;

    *id = 0;
    if (s == NULL)
        return IHSM_ERR_LIMIT_SESSIONS;
    atomic_init(&s->refs, 1); /* the table's */
    s->conn = c;
    s->part = p;
    s->role = role;
    pthread_mutex_init(&s->mu, NULL);

    pthread_mutex_lock(&c->sess_mu);
    if (c->closing) {
        st = IHSM_ERR_SHUTTING_DOWN; /* the connection is going away */
    } else {
        pthread_mutex_lock(&d->sessions.mu);
        s->id = dev_table_add(&d->sessions.t, s);
        pthread_mutex_unlock(&d->sessions.mu);
        if (s->id == 0) {
            st = IHSM_ERR_LIMIT_SESSIONS;
        } else {
            s->conn_next = c->sessions;
            c->sessions = s;
        }
    }
    pthread_mutex_unlock(&c->sess_mu);
    if (st != IHSM_OK) {
        dev_session_put(s);
        return st;
    }
    atomic_fetch_add_explicit(&d->stats.sessions_open, 1, memory_order_relaxed);
    *id = s->id;
    return IHSM_OK;
}

struct dev_session *dev_session_get(struct ihsmd *d, struct dev_conn *c, uint32_t id)
{
    struct dev_session *s;

    if (id == 0)
        return NULL;
    pthread_mutex_lock(&d->sessions.mu);
    s = dev_table_get(&d->sessions.t, id);
    /* another connection's session does not exist for this one */
    if (s != NULL && s->conn == c)
        atomic_fetch_add(&s->refs, 1);
    else
        s = NULL;
    pthread_mutex_unlock(&d->sessions.mu);
    return s;
}

/* Out of the id table and the connection's list already: drop its keys. */
static void finish_close(struct ihsmd *d, struct dev_conn *c, struct dev_session *s)
{
    uint32_t *handles;
    size_t n;

    pthread_mutex_lock(&s->mu);
    s->closed = 1;
    handles = s->handles;
    n = s->n_handles;
    s->handles = NULL;
    s->n_handles = s->cap_handles = 0;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++)
        dev_keys_unhold(d, &s->part->keys, handles[i]);
    free(handles);
    atomic_fetch_sub_explicit(&d->stats.sessions_open, 1, memory_order_relaxed);
    dev_audit(d, c, "session_close", s->part->name, NULL, 0, "ok");
    dev_debug("session %08x of partition %s closed (%zu keys released)", s->id,
              s->part->name, n);
    dev_session_put(s); /* the table's reference */
}

int dev_session_close(struct ihsmd *d, struct dev_conn *c, uint32_t id)
{
    struct dev_session *s, **pp;

    pthread_mutex_lock(&c->sess_mu);
    pthread_mutex_lock(&d->sessions.mu);
    s = dev_table_get(&d->sessions.t, id);
    if (s != NULL && s->conn == c)
        dev_table_remove(&d->sessions.t, id);
    else
        s = NULL;
    pthread_mutex_unlock(&d->sessions.mu);
    if (s != NULL) {
        for (pp = &c->sessions; *pp != NULL; pp = &(*pp)->conn_next) {
            if (*pp == s) {
                *pp = s->conn_next;
                break;
            }
        }
    }
    pthread_mutex_unlock(&c->sess_mu);
    if (s == NULL)
        return IHSM_ERR_NO_SESSION;
    finish_close(d, c, s);
    return IHSM_OK;
}

void dev_session_close_all(struct ihsmd *d, struct dev_conn *c)
{
    struct dev_session *list, *next;

    pthread_mutex_lock(&c->sess_mu);
    c->closing = 1;
    list = c->sessions;
    c->sessions = NULL;
    pthread_mutex_lock(&d->sessions.mu);
    for (struct dev_session *s = list; s != NULL; s = s->conn_next)
        dev_table_remove(&d->sessions.t, s->id);
    pthread_mutex_unlock(&d->sessions.mu);
    pthread_mutex_unlock(&c->sess_mu);
    for (; list != NULL; list = next) {
        next = list->conn_next;
        finish_close(d, c, list);
    }
}

int dev_session_reserve(struct dev_session *s)
{
    if (s->n_handles < s->cap_handles)
        return 0;
    size_t ncap = s->cap_handles ? s->cap_handles * 2 : 8;
    uint32_t *nh = realloc(s->handles, ncap * sizeof(*nh));
    if (nh == NULL)
        return -1;
    s->handles = nh;
    s->cap_handles = ncap;
    return 0;
}

int dev_session_add_handle(struct dev_session *s, uint32_t h)
{
    for (size_t i = 0; i < s->n_handles; i++)
        if (s->handles[i] == h)
            return 0;
    if (dev_session_reserve(s) != 0)
        return -1;
    s->handles[s->n_handles++] = h;
    return 1;
}

int dev_session_drop_handle(struct dev_session *s, uint32_t h)
{
    for (size_t i = 0; i < s->n_handles; i++) {
        if (s->handles[i] == h) {
            s->handles[i] = s->handles[--s->n_handles];
            return 1;
        }
    }
    return 0;
}
