/*
 * KEY_LOAD_SESSION: a client's own AES key (a TLS record key) held by the
 * session that loaded it, for AEAD_SEAL / AEAD_OPEN. It is never stored and
 * never shared with another load of the same bytes: each load gets a fresh
 * handle (its table identity is random, not a hash of the key, so nothing
 * about the key is kept beside it). KEY_RELEASE or closing the session
 * frees and zeroizes it; the keys_loaded counter follows.
 */
#include "dev.h"

int dev_cmd_key_load_session(struct dev_ctx *c)
{
    struct dev_partition *p = c->sess->part;
    const uint8_t *raw;
    uint8_t ident[32];
    uint32_t type, bits;
    size_t len;
    ihsm_key *k = NULL;
    struct dev_keyobj *o;
    int st;

    type = ihsm_rd_u32(c->rd);
    bits = ihsm_rd_u32(c->rd);
    raw = ihsm_rd_bytes(c->rd, &len, 32);
    if (ihsm_rd_end(c->rd) != 0)
        return IHSM_ERR_MALFORMED;
    st = ihsm_key_from_secret(type, bits, raw, len, &k);
    if (st != IHSM_OK)
        return st;
    st = ihsm_random_bytes(ident, sizeof(ident));
    if (st == IHSM_OK)
        st = dev_keys_hold(c->d, &p->keys, c->sess, ident, &k, &o);
    ihsm_key_free(k); /* NULL once the table took it */
    if (st != IHSM_OK)
        return st;
    ihsm_wr_u32(c->out, o->handle);
    dev_debug("session key: partition %s handle %08x AES-%u for pid %ld", p->name,
              o->handle, (unsigned)bits, (long)c->conn->pid);
    dev_keyobj_put(c->d, o);
    return IHSM_OK;
}
