/*
 * derive rows: X25519 and ECDH P-256 with the side's own key and a fixed
 * software peer, a derive context set up once per slot (EVP_PKEY_derive, as
 * `openssl speed ecdh` does). The side's key is made as libssl makes its
 * ECDHE share, from the group its provider publishes for TLS: on the ihsm
 * side that is a key-exchange key in the device.
 */
#include <string.h>

#include "speed.h"

#define SECRET_MAX 66

struct derive_slot {
    struct sp_slot base;
    EVP_PKEY_CTX *pctx;
    size_t len;
    unsigned char secret[SECRET_MAX];
};

static const char *derive_missing(const struct sp_row *row, OSSL_LIB_CTX *lc,
                                  const char *propq)
{
    EVP_KEYEXCH *kx = EVP_KEYEXCH_fetch(lc, row->algname, propq);
    EVP_KEYMGMT *km = EVP_KEYMGMT_fetch(lc, row->keytype, propq);
    const char *missing = kx == NULL ? row->algname : km == NULL ? row->keytype : NULL;

    EVP_KEYEXCH_free(kx);
    EVP_KEYMGMT_free(km);
    return missing;
}

static void derive_side_fini(struct sp_side *s)
{
    EVP_PKEY_free(s->key);
    EVP_PKEY_free(s->peer);
    EVP_PKEY_free(s->peer_priv);
    s->key = s->peer = s->peer_priv = NULL;
}

/* The peer is a software key of the default provider whatever the side:
 * its private half stays for the check, its public half is what the side
 * derives against, decoded in the side's own context as libssl would. */
static int derive_side_init(struct sp_side *s)
{
    if ((s->key = sp_keygen_kex(s->lc, s->propq != NULL ? "ihsm" : "default", s->propq,
                                s->row)) == NULL) {
        sp_ossl_err("%s: cannot generate the %s key", s->row->name, s->label);
        goto err;
    }
    if ((s->peer_priv = sp_keygen(s->sw, NULL, s->row)) == NULL
        || (s->peer = sp_pub_in(s->lc, s->peer_priv)) == NULL) {
        sp_ossl_err("%s: cannot make the peer's key", s->row->name);
        goto err;
    }
    return 1;
err:
    derive_side_fini(s);
    return 0;
}

static EVP_PKEY_CTX *derive_ctx(OSSL_LIB_CTX *lc, EVP_PKEY *key, const char *propq,
                                EVP_PKEY *peer)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(lc, key, propq);

    if (c == NULL || EVP_PKEY_derive_init(c) <= 0 || EVP_PKEY_derive_set_peer_ex(c, peer, 0) <= 0) {
        EVP_PKEY_CTX_free(c);
        return NULL;
    }
    return c;
}

static void derive_slot_free(struct sp_slot *sl)
{
    struct derive_slot *ds = (struct derive_slot *)sl;

    if (ds == NULL)
        return;
    EVP_PKEY_CTX_free(ds->pctx);
    OPENSSL_cleanse(ds->secret, sizeof(ds->secret));
    OPENSSL_free(ds);
}

static struct sp_slot *derive_slot_new(struct sp_side *s, unsigned idx)
{
    struct derive_slot *ds = OPENSSL_zalloc(sizeof(*ds));

    if (ds == NULL)
        return NULL;
    ds->base.side = s;
    ds->base.idx = idx;
    if ((ds->pctx = derive_ctx(s->lc, s->key, s->propq, s->peer)) == NULL) {
        sp_ossl_err("%s: cannot set up a %s derive context", s->row->name, s->label);
        derive_slot_free(&ds->base);
        return NULL;
    }
    return &ds->base;
}

static int derive_op(struct sp_slot *sl)
{
    struct derive_slot *ds = (struct derive_slot *)sl;

    ds->len = sizeof(ds->secret);
    return EVP_PKEY_derive(ds->pctx, ds->secret, &ds->len) == 1;
}

/* The side's secret equals what the default provider derives from the
 * peer's private key and the side's public key. */
static int check_side(struct sp_side *s, OSSL_LIB_CTX *base)
{
    struct derive_slot *ds = (struct derive_slot *)derive_slot_new(s, 0);
    EVP_PKEY *pub = NULL;
    EVP_PKEY_CTX *c = NULL;
    unsigned char other[SECRET_MAX];
    size_t len = sizeof(other);
    int ok = 0;

    if (ds == NULL)
        return 0;
    s->check_ops++;
    if (!derive_op(&ds->base)) {
        sp_ossl_err("%s: the %s side could not derive", s->row->name, s->label);
        goto out;
    }
    if ((pub = sp_pub_in(base, s->key)) == NULL
        || (c = derive_ctx(base, s->peer_priv, NULL, pub)) == NULL
        || EVP_PKEY_derive(c, other, &len) != 1) {
        sp_ossl_err("%s: the default provider cannot derive the %s side's secret",
                    s->row->name, s->label);
        goto out;
    }
    ok = len == ds->len && CRYPTO_memcmp(other, ds->secret, len) == 0;
    if (!ok)
        fprintf(stderr, "ihsm-speed: %s: the secret derived through the %s side differs "
                "from OpenSSL's default provider's\n", s->row->name, s->label);
out:
    OPENSSL_cleanse(other, sizeof(other));
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(pub);
    derive_slot_free(&ds->base);
    return ok;
}

static int derive_check(struct sp_side *ihsm, struct sp_side *base)
{
    return check_side(ihsm, base->lc) && check_side(base, base->lc);
}

const struct sp_op_ops sp_derive_ops = {
    .missing = derive_missing,
    .side_init = derive_side_init,
    .side_fini = derive_side_fini,
    .slot_new = derive_slot_new,
    .slot_free = derive_slot_free,
    .op = derive_op,
    .check = derive_check,
};
