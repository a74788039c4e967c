/*
 * The hot commands: SIGN, DERIVE, AEAD_SEAL, AEAD_OPEN, RANDOM. Each looks
 * the handle up (pinning the key for the duration), then hands the rest of
 * the payload to the crypto core, which parses and checks it.
 */
#include "dev.h"

static int with_key(struct dev_ctx *c, struct dev_keyobj **o)
{
    uint32_t h = ihsm_rd_u32(c->rd);

    if (c->rd->err)
        return IHSM_ERR_MALFORMED;
    *o = dev_keys_get(&c->sess->part->keys, h);
    return *o != NULL ? IHSM_OK : IHSM_ERR_BAD_HANDLE;
}

int dev_cmd_sign(struct dev_ctx *c)
{
    struct dev_keyobj *o;
    int st = with_key(c, &o);

    if (st != IHSM_OK)
        return st;
    st = ihsm_op_sign(o->key, c->rd, c->out);
    dev_keyobj_put(c->d, o);
    atomic_fetch_add_explicit(&c->d->stats.sign, 1, memory_order_relaxed);
    return st;
}

int dev_cmd_derive(struct dev_ctx *c)
{
    struct dev_keyobj *o;
    int st = with_key(c, &o);

    if (st != IHSM_OK)
        return st;
    st = ihsm_op_derive(o->key, c->rd, c->out);
    dev_keyobj_put(c->d, o);
    atomic_fetch_add_explicit(&c->d->stats.derive, 1, memory_order_relaxed);
    return st;
}

static int aead(struct dev_ctx *c, int seal)
{
    struct dev_keyobj *o;
    int st = with_key(c, &o);

    if (st != IHSM_OK)
        return st;
    st = ihsm_op_aead(o->key, seal, c->rd, c->out);
    dev_keyobj_put(c->d, o);
    atomic_fetch_add_explicit(&c->d->stats.aead, 1, memory_order_relaxed);
    return st;
}

int dev_cmd_aead_seal(struct dev_ctx *c)
{
    return aead(c, 1);
}

int dev_cmd_aead_open(struct dev_ctx *c)
{
    return aead(c, 0);
}

int dev_cmd_random(struct dev_ctx *c)
{
    atomic_fetch_add_explicit(&c->d->stats.random, 1, memory_order_relaxed);
    return ihsm_op_random(c->rd, c->out);
}
