/*
 * Key exchange with device keys: ECDH (P-256, P-384) and X25519. The private
 * key is a handle in ihsmd; the peer's public value goes to the device as
 * given (DERIVE), and the device checks it: a point off the curve, of the
 * wrong length, the identity, or an X25519 key of small order is refused with
 * IHSM_ERR_BAD_INPUT. The shared secret comes back: TLS needs it in process
 * for its key schedule, by design (the long-term keys stay in the device).
 *
 * One context for both algorithms; each dispatch table differs only in the
 * keys it takes. Nothing here holds a lock across a device call.
 */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include "prov_int.h"

typedef struct {
    const char *name;
    int (*key_ok)(uint32_t type);
} IHSM_KEX_ALG;

typedef struct {
    IHSM_PROV_CTX *provctx;
    const IHSM_KEX_ALG *alg;
    IHSM_PROV_KEY *key;   /* ours: a device key */
    IHSM_PROV_KEY *peer;  /* theirs: only its public value is used */
} IHSM_KEX_CTX;

#define KEX_DBG(c, fmt, ...) IHSM_PROV_DBG("keyexch %s: " fmt, (c)->alg->name, ##__VA_ARGS__)

static int ecdh_key_ok(uint32_t type)
{
    return type == IHSM_KEY_EC_P256 || type == IHSM_KEY_EC_P384;
}

static int x25519_key_ok(uint32_t type)
{
    return type == IHSM_KEY_X25519;
}

static const IHSM_KEX_ALG ecdh_alg = { "ECDH", ecdh_key_ok };
static const IHSM_KEX_ALG x25519_alg = { "X25519", x25519_key_ok };

static void *kex_newctx(const IHSM_KEX_ALG *alg, void *provctx)
{
    IHSM_KEX_CTX *c = OPENSSL_zalloc(sizeof(*c));

    if (c == NULL)
        return NULL;
    c->provctx = provctx;
    c->alg = alg;
    KEX_DBG(c, "newctx %p", (void *)c);
    return c;
}

static void *ecdh_newctx(void *provctx)
{
    return kex_newctx(&ecdh_alg, provctx);
}

static void *x25519_newctx(void *provctx)
{
    return kex_newctx(&x25519_alg, provctx);
}

static void kex_freectx(void *vctx)
{
    IHSM_KEX_CTX *c = vctx;

    if (c == NULL)
        return;
    ihsm_prov_key_free(c->key);
    ihsm_prov_key_free(c->peer);
    OPENSSL_free(c);
}

static void *kex_dupctx(void *vctx)
{
    IHSM_KEX_CTX *c = vctx, *d;

    if ((d = OPENSSL_memdup(c, sizeof(*c))) == NULL)
        return NULL;
    if (d->key != NULL)
        ihsm_prov_key_up_ref(d->key);
    if (d->peer != NULL)
        ihsm_prov_key_up_ref(d->peer);
    return d;
}

static const char *type_name(uint32_t type)
{
    switch (type) {
    case IHSM_KEY_EC_P256:
        return "P-256";
    case IHSM_KEY_EC_P384:
        return "P-384";
    case IHSM_KEY_X25519:
        return "X25519";
    }
    return type == IHSM_KEY_RSA ? "RSA" : type == IHSM_KEY_ED25519 ? "Ed25519" : "unknown";
}

static int kex_set_ctx_params(void *vctx, const OSSL_PARAM params[]);

static int kex_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    IHSM_KEX_CTX *c = vctx;
    IHSM_PROV_KEY *k = provkey;
    char desc[IHSM_MAX_LABEL + 32];

    KEX_DBG(c, "init");
    if (c == NULL || k == NULL) {
        ihsm_prov_raise(c != NULL ? c->provctx : NULL, IHSM_R_INVALID_ARGUMENT, "no key given");
        return 0;
    }
    if (!c->alg->key_ok(k->type)) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                        "%s key exchange cannot use a %s key", c->alg->name, type_name(k->type));
        return 0;
    }
    if ((c->provctx->route & IHSM_ROUTE_DERIVE) == 0) {
        ihsm_prov_raise(c->provctx, IHSM_R_BAD_CONFIG,
                        "key exchange is not routed to the device: add derive to ihsm-route "
                        "in openssl.cnf (the key exists only in ihsmd)");
        return 0;
    }
    if (!ihsm_prov_key_has_private(k)) {
        ihsm_prov_raise(c->provctx, IHSM_R_NO_PRIVATE_KEY,
                        "this key object holds only a public key, so it cannot derive: use a "
                        "key generated in ihsmd, its key file, or ihsm:NAME");
        return 0;
    }
    if (k->usage != 0 && (k->usage & IHSM_USAGE_DERIVE) == 0) {
        ihsm_prov_raise(c->provctx, IHSM_R_USAGE_NOT_ALLOWED,
                        "%s: the key's usage flags forbid key exchange: use a key generated "
                        "with usage derive (ihsmctl keygen --usage sign,derive)",
                        ihsm_prov_key_desc(k, desc, sizeof(desc)));
        return 0;
    }
    ihsm_prov_key_up_ref(k);
    ihsm_prov_key_free(c->key);
    c->key = k;
    /* A peer set before a new key may be of another curve: set it again. */
    if (c->peer != NULL && c->peer->type != k->type) {
        ihsm_prov_key_free(c->peer);
        c->peer = NULL;
    }
    return kex_set_ctx_params(c, params);
}

static int kex_set_peer(void *vctx, void *provkey)
{
    IHSM_KEX_CTX *c = vctx;
    IHSM_PROV_KEY *p = provkey;
    const uint8_t *pub;
    size_t len;

    KEX_DBG(c, "set_peer");
    if (p == NULL || !c->alg->key_ok(p->type)
        || (c->key != NULL && p->type != c->key->type)) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                        "the peer's key (%s) is not of the key's type (%s)",
                        p != NULL ? type_name(p->type) : "none",
                        c->key != NULL ? type_name(c->key->type) : c->alg->name);
        return 0;
    }
    /* Only that it has a public value: its validity is the device's call. */
    if (!ihsm_prov_key_encoded_public(p, &pub, &len)) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT, "the peer's key has no public key");
        return 0;
    }
    ihsm_prov_key_up_ref(p);
    ihsm_prov_key_free(c->peer);
    c->peer = p;
    return 1;
}

/* The device's answer to DERIVE: bytes shared_secret. */
static int take_secret(IHSM_KEX_CTX *c, const ihsm_result *res, unsigned char *secret,
                       size_t *secretlen, size_t want)
{
    const uint8_t *s;
    size_t slen;
    ihsm_rd r;

    ihsm_rd_init(&r, res->data, res->len);
    s = ihsm_rd_bytes(&r, &slen, 64);
    if (s == NULL || ihsm_rd_end(&r) != 0 || slen != want) {
        ihsm_prov_raise(c->provctx, IHSM_R_DEVICE_ERROR,
                        "malformed shared secret from the device (%zu bytes, expected %zu)",
                        s != NULL ? slen : 0, want);
        return 0;
    }
    memcpy(secret, s, slen);
    *secretlen = slen;
    return 1;
}

static int kex_derive(void *vctx, unsigned char *secret, size_t *secretlen, size_t outlen)
{
    IHSM_KEX_CTX *c = vctx;
    size_t want, publen;
    const uint8_t *pub;
    ihsm_result res = { 0 };
    ihsm_wr args;
    int st, ok = 0;

    if (c->key == NULL || c->peer == NULL) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                        c->key == NULL ? "no key: call EVP_PKEY_derive_init first"
                                       : "no peer key: call EVP_PKEY_derive_set_peer first");
        return 0;
    }
    want = ihsm_prov_kex_secret_len(c->key->type);
    if (secret == NULL) {
        *secretlen = want;
        return 1;
    }
    KEX_DBG(c, "derive (%s)", type_name(c->key->type));
    if (outlen < want) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                        "shared secret buffer too small (%zu bytes, need %zu)", outlen, want);
        return 0;
    }
    if (!ihsm_prov_key_encoded_public(c->peer, &pub, &publen))
        return 0;
    ihsm_wr_init(&args);
    ihsm_wr_bytes(&args, pub, publen);
    st = ihsm_prov_key_call(c->key, IHSM_CMD_DERIVE, &args, &res);
    if (st == IHSM_OK) {
        ok = take_secret(c, &res, secret, secretlen, want);
    } else if (st == IHSM_ERR_BAD_INPUT) {
        /* On top of the device error ihsm_prov_key_call raised: the peer's. */
        ihsm_prov_raise(c->provctx, IHSM_R_BAD_PEER_KEY,
                        "ihsmd refused the peer's %s public key of %zu bytes (not on the "
                        "curve, the wrong length, the identity, or of small order): the peer "
                        "sent an invalid key share",
                        type_name(c->key->type), publen);
    }
    ihsm_result_clear(&res); /* cleanses the secret */
    ihsm_wr_free(&args);
    return ok;
}

/* ---------------------------------------------------------------- params */

/*
 * ECDH: the cofactor mode changes nothing on P-256/P-384 (cofactor 1), and
 * only the plain shared secret is given out (no X9.63 KDF), as libssl uses it.
 */
static int kex_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    IHSM_KEX_CTX *c = vctx;
    const OSSL_PARAM *p;
    const char *s;
    int mode;

    if (c == NULL)
        return 0;
    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE)) != NULL
        && (!OSSL_PARAM_get_int(p, &mode) || mode < -1 || mode > 1))
        return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_TYPE)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s))
            return 0;
        if (s[0] != '\0') {
            ihsm_prov_raise(c->provctx, IHSM_R_UNSUPPORTED,
                            "%s in ihsmd gives the plain shared secret: KDF %s is not "
                            "supported", c->alg->name, s);
            return 0;
        }
    }
    return 1;
}

static int kex_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    IHSM_KEX_CTX *c = vctx;
    OSSL_PARAM *p;

    if (c == NULL)
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE)) != NULL
        && !OSSL_PARAM_set_int(p, 0))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_TYPE)) != NULL
        && !OSSL_PARAM_set_utf8_string(p, ""))
        return 0;
    return 1;
}

static const OSSL_PARAM ecdh_settable[] = {
    OSSL_PARAM_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, NULL),
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ecdh_gettable[] = {
    OSSL_PARAM_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, NULL),
    OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM none[] = { OSSL_PARAM_END };

static const OSSL_PARAM *ecdh_settable_ctx_params(void *vctx, void *provctx)
{
    return ecdh_settable;
}

static const OSSL_PARAM *ecdh_gettable_ctx_params(void *vctx, void *provctx)
{
    return ecdh_gettable;
}

static const OSSL_PARAM *x25519_ctx_params(void *vctx, void *provctx)
{
    return none;
}

const OSSL_DISPATCH ihsm_ecdh_keyexch_functions[] = {
    { OSSL_FUNC_KEYEXCH_NEWCTX, (void (*)(void))ecdh_newctx },
    { OSSL_FUNC_KEYEXCH_INIT, (void (*)(void))kex_init },
    { OSSL_FUNC_KEYEXCH_SET_PEER, (void (*)(void))kex_set_peer },
    { OSSL_FUNC_KEYEXCH_DERIVE, (void (*)(void))kex_derive },
    { OSSL_FUNC_KEYEXCH_FREECTX, (void (*)(void))kex_freectx },
    { OSSL_FUNC_KEYEXCH_DUPCTX, (void (*)(void))kex_dupctx },
    { OSSL_FUNC_KEYEXCH_SET_CTX_PARAMS, (void (*)(void))kex_set_ctx_params },
    { OSSL_FUNC_KEYEXCH_SETTABLE_CTX_PARAMS, (void (*)(void))ecdh_settable_ctx_params },
    { OSSL_FUNC_KEYEXCH_GET_CTX_PARAMS, (void (*)(void))kex_get_ctx_params },
    { OSSL_FUNC_KEYEXCH_GETTABLE_CTX_PARAMS, (void (*)(void))ecdh_gettable_ctx_params },
    { 0, NULL }
};

const OSSL_DISPATCH ihsm_x25519_keyexch_functions[] = {
    { OSSL_FUNC_KEYEXCH_NEWCTX, (void (*)(void))x25519_newctx },
    { OSSL_FUNC_KEYEXCH_INIT, (void (*)(void))kex_init },
    { OSSL_FUNC_KEYEXCH_SET_PEER, (void (*)(void))kex_set_peer },
    { OSSL_FUNC_KEYEXCH_DERIVE, (void (*)(void))kex_derive },
    { OSSL_FUNC_KEYEXCH_FREECTX, (void (*)(void))kex_freectx },
    { OSSL_FUNC_KEYEXCH_DUPCTX, (void (*)(void))kex_dupctx },
    { OSSL_FUNC_KEYEXCH_SET_CTX_PARAMS, (void (*)(void))kex_set_ctx_params },
    { OSSL_FUNC_KEYEXCH_SETTABLE_CTX_PARAMS, (void (*)(void))x25519_ctx_params },
    { OSSL_FUNC_KEYEXCH_GET_CTX_PARAMS, (void (*)(void))kex_get_ctx_params },
    { OSSL_FUNC_KEYEXCH_GETTABLE_CTX_PARAMS, (void (*)(void))x25519_ctx_params },
    { 0, NULL }
};
