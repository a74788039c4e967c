/*
 * The key table of one partition. A loaded key is a dev_keyobj in a handle
 * table. Two counts keep it alive:
 *  - holders: sessions that generated, imported, unmasked or found it
 *    (each session once); at zero the key leaves the table;
 *  - pins: the table's reference plus one per operation running on it, so
 *    a key deleted while a worker signs with it is freed (and zeroized by
 *    ihsm_key_free) only when that signature is done.
 * The table lock is held only to look up and to count, never during crypto.
 */
#include "dev.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

void dev_blob_hash(const uint8_t *blob, size_t len, uint8_t hash[32])
{
    SHA256(blob, len, hash);
}

int dev_keytab_init(struct dev_keytab *kt)
{
    pthread_mutex_init(&kt->mu, NULL);
    return dev_table_init(&kt->t, 0xFFFF);
}

void dev_keyobj_put(struct ihsmd *d, struct dev_keyobj *o)
{
    if (o == NULL || atomic_fetch_sub(&o->pins, 1) != 1)
        return;
    ihsm_key_free(o->key); /* cleanses the key material */
    OPENSSL_cleanse(o, sizeof(*o));
    free(o);
    atomic_fetch_sub_explicit(&d->stats.keys_loaded, 1, memory_order_relaxed);
}

struct dev_keyobj *dev_keys_get(struct dev_keytab *kt, uint32_t handle)
{
    struct dev_keyobj *o;

    pthread_mutex_lock(&kt->mu);
    o = dev_table_get(&kt->t, handle);
    if (o != NULL)
        atomic_fetch_add(&o->pins, 1);
    pthread_mutex_unlock(&kt->mu);
    return o;
}

/* Under kt->mu. Linear: unmask and find are rare next to sign. */
static struct dev_keyobj *find_hash(struct dev_keytab *kt, const uint8_t hash[32])
{
    for (uint32_t i = 0; i < kt->t.cap; i++) {
        struct dev_keyobj *o = dev_table_slot(&kt->t, i, NULL);
        if (o != NULL && CRYPTO_memcmp(o->hash, hash, 32) == 0)
            return o;
    }
    return NULL;
}

int dev_keys_hold(struct ihsmd *d, struct dev_keytab *kt, struct dev_session *s,
                  const uint8_t hash[32], ihsm_key **key, struct dev_keyobj **out)
{
    struct dev_keyobj *o, *fresh = NULL;
    int st = IHSM_OK;

    *out = NULL;
    if (key != NULL && *key != NULL) {
        fresh = calloc(1, sizeof(*fresh));
        if (fresh == NULL)
            return IHSM_ERR_LIMIT_KEYS;
    }
    pthread_mutex_lock(&s->mu);
    if (s->closed) {
        st = IHSM_ERR_NO_SESSION;
        goto done_sess;
    }
    /* room for the handle first, so nothing below can fail half way */
    if (dev_session_reserve(s) != 0) {
        st = IHSM_ERR_LIMIT_KEYS;
        goto done_sess;
    }
    pthread_mutex_lock(&kt->mu);
    o = find_hash(kt, hash);
    if (o != NULL) {
        if (dev_session_add_handle(s, o->handle) == 1)
            o->holders++;
        atomic_fetch_add(&o->pins, 1);
        *out = o;
        if (fresh != NULL) {
            ihsm_key_free(*key); /* the same blob is loaded already */
            *key = NULL;
        }
    } else if (fresh == NULL) {
        st = IHSM_ERR_NOT_FOUND;
    } else if (atomic_fetch_add(&d->stats.keys_loaded, 1) >= (long long)d->cfg.max_keys) {
        atomic_fetch_sub(&d->stats.keys_loaded, 1);
        st = IHSM_ERR_LIMIT_KEYS;
    } else if ((fresh->handle = dev_table_add(&kt->t, fresh)) == 0) {
        atomic_fetch_sub(&d->stats.keys_loaded, 1);
        st = IHSM_ERR_LIMIT_KEYS;
    } else {
        fresh->key = *key;
        *key = NULL;
        memcpy(fresh->hash, hash, 32);
        fresh->holders = 1;
        atomic_init(&fresh->pins, 2); /* the table's and the caller's */
        dev_session_add_handle(s, fresh->handle);
        *out = fresh;
        fresh = NULL;
    }
    pthread_mutex_unlock(&kt->mu);
done_sess:
    pthread_mutex_unlock(&s->mu);
    free(fresh);
    return st;
}

/* Under kt->mu: one holder fewer; returns the object to put if it left. */
static struct dev_keyobj *unhold_locked(struct dev_keytab *kt, uint32_t handle)
{
    struct dev_keyobj *o = dev_table_get(&kt->t, handle);

    if (o == NULL || o->holders == 0 || --o->holders > 0)
        return NULL;
    dev_table_remove(&kt->t, handle);
    return o;
}

void dev_keys_unhold(struct ihsmd *d, struct dev_keytab *kt, uint32_t handle)
{
    struct dev_keyobj *o;

    pthread_mutex_lock(&kt->mu);
    o = unhold_locked(kt, handle);
    pthread_mutex_unlock(&kt->mu);
    dev_keyobj_put(d, o);
}

int dev_keys_release(struct ihsmd *d, struct dev_keytab *kt,
                     struct dev_session *s, uint32_t handle)
{
    int held;

    pthread_mutex_lock(&s->mu);
    held = !s->closed && dev_session_drop_handle(s, handle);
    pthread_mutex_unlock(&s->mu);
    if (held) {
        dev_keys_unhold(d, kt, handle);
        return IHSM_OK;
    }
    /* not this session's: fine if the handle is valid at all */
    pthread_mutex_lock(&kt->mu);
    held = dev_table_get(&kt->t, handle) != NULL;
    pthread_mutex_unlock(&kt->mu);
    return held ? IHSM_OK : IHSM_ERR_BAD_HANDLE;
}

int dev_keys_delete(struct ihsmd *d, struct dev_keytab *kt, uint32_t handle)
{
    struct dev_keyobj *o;

    pthread_mutex_lock(&kt->mu);
    o = dev_table_remove(&kt->t, handle);
    pthread_mutex_unlock(&kt->mu);
    if (o == NULL)
        return IHSM_ERR_BAD_HANDLE;
    /* sessions still list the handle; its generation no longer matches */
    dev_keyobj_put(d, o);
    return IHSM_OK;
}

int dev_keys_delete_hash(struct ihsmd *d, struct dev_keytab *kt,
                         const uint8_t hash[32])
{
    struct dev_keyobj *o;

    pthread_mutex_lock(&kt->mu);
    o = find_hash(kt, hash);
    if (o != NULL)
        dev_table_remove(&kt->t, o->handle);
    pthread_mutex_unlock(&kt->mu);
    if (o == NULL)
        return IHSM_ERR_BAD_HANDLE;
    dev_keyobj_put(d, o);
    return IHSM_OK;
}

size_t dev_keys_zeroize(struct ihsmd *d, struct dev_keytab *kt)
{
    struct dev_keyobj **all;
    size_t n = 0;

    pthread_mutex_lock(&kt->mu);
    all = calloc(kt->t.cap + 1, sizeof(*all));
    for (uint32_t i = 0; i < kt->t.cap; i++) {
        uint32_t h;
        struct dev_keyobj *o = dev_table_slot(&kt->t, i, &h);
        if (o == NULL)
            continue;
        dev_table_remove(&kt->t, h);
        if (all != NULL)
            all[n] = o;
        else
            dev_keyobj_put(d, o); /* no list: put under the lock (no cycle) */
        n++;
    }
    pthread_mutex_unlock(&kt->mu);
    if (all != NULL) {
        for (size_t i = 0; i < n; i++)
            dev_keyobj_put(d, all[i]);
        free(all);
    }
    return n;
}

void dev_keytab_destroy(struct ihsmd *d, struct dev_keytab *kt)
{
    dev_keys_zeroize(d, kt);
    dev_table_free(&kt->t);
    pthread_mutex_destroy(&kt->mu);
}
