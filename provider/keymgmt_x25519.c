/*
 * KEYMGMT for X25519 keys held in ihsmd: the ephemeral keys of TLS key
 * exchange (libssl generates one per handshake, usage derive, released when
 * freed) and X25519 keys generated for keeping (a masked key file). Peer keys
 * (the other side's key share) are public-only: the raw 32 bytes as received,
 * checked by ihsmd when it derives.
 */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include "keymgmt_common.h"

static const IHSM_KM_DESC x25519_desc = { "X25519", 0 };

static const OSSL_PARAM x25519_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM x25519_settable[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM x25519_public_types[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM x25519_gen_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(IHSM_PKEY_PARAM_NAME, NULL, 0),
    OSSL_PARAM_END
};

static void *x25519_new(void *provctx)
{
    IHSM_PROV_KEY *k = ihsm_km_new(provctx);

    /* X25519 has no parameters: a new key is already of its type (libssl's
     * EVP_PKEY_new + set_type + set1_encoded_public_key path). */
    if (k != NULL)
        k->type = IHSM_KEY_X25519;
    return k;
}

static const OSSL_PARAM *x25519_gettable_params(void *provctx)
{
    return x25519_gettable;
}

static int x25519_set_params(void *keydata, const OSSL_PARAM params[])
{
    return ihsm_km_set_encoded_params(keydata, IHSM_KEY_X25519, params);
}

static const OSSL_PARAM *x25519_settable_params(void *provctx)
{
    return x25519_settable;
}

static const OSSL_PARAM *x25519_types(int selection)
{
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        return NULL;
    return x25519_public_types;
}

/*
 * A public key from another provider (the peer of EVP_PKEY_derive_set_peer,
 * exported to us) or from EVP_PKEY_fromdata: its 32 bytes. A private key in
 * clear is refused without an error, as every ihsm keymgmt does, so that a
 * mixed-provider probe falls back to the key's own provider.
 */
static int x25519_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    IHSM_PROV_KEY *k = keydata;
    const OSSL_PARAM *p;
    const void *pub = NULL;
    size_t len = 0;
    int ok;

    IHSM_PROV_DBG("keymgmt X25519: import selection 0x%x", (unsigned)selection);
    if (k == NULL || k->encpub != NULL || k->pub != NULL || ihsm_prov_key_has_private(k))
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0
        && OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY) != NULL) {
        IHSM_PROV_DBG("keymgmt X25519: import of a private key in clear refused");
        return 0;
    }
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0)
        return (selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0; /* none to take */
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PUB_KEY);
    if (p == NULL || !OSSL_PARAM_get_octet_string_ptr(p, &pub, &len) || len != 32)
        return 0;
    ERR_set_mark();
    ok = ihsm_prov_key_set_encoded_public(k, IHSM_KEY_X25519, pub, len);
    ERR_pop_to_mark();
    return ok;
}

static void *x25519_load(const void *reference, size_t reference_sz)
{
    return ihsm_km_load(&x25519_desc, reference, reference_sz);
}

static const char *x25519_query_operation_name(int operation_id)
{
    return operation_id == OSSL_OP_KEYEXCH ? "X25519" : NULL;
}

static int x25519_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    IHSM_KM_GEN *g = genctx;
    const OSSL_PARAM *p;
    const char *s = NULL;

    if (g == NULL)
        return 0;
    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s)
            || (strcmp(s, IHSM_KEX_GROUP_X25519) != 0 && strcasecmp(s, "x25519") != 0)) {
            ihsm_prov_raise(g->ctx, IHSM_R_INVALID_ARGUMENT, "X25519 keys have no group %s",
                            s != NULL ? s : "(not a string)");
            return 0;
        }
        /* ihsm's TLS group name: libssl's ephemeral key for a handshake */
        if (strcmp(s, IHSM_KEX_GROUP_X25519) == 0)
            g->kex = 1;
    }
    return ihsm_km_gen_set_common(g, params);
}

static const OSSL_PARAM *x25519_gen_settable_params(void *genctx, void *provctx)
{
    return x25519_gen_settable;
}

static int x25519_gen_set_template(void *genctx, void *templ)
{
    IHSM_KM_GEN *g = genctx;
    IHSM_PROV_KEY *t = templ;

    if (g == NULL || t == NULL || t->type != IHSM_KEY_X25519)
        return 0;
    /* A key like the peer's key share (libssl's TLS 1.3 server) is ephemeral. */
    g->kex = t->kex;
    return 1;
}

static void *x25519_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    IHSM_KM_GEN *g = ihsm_km_gen_init(&x25519_desc, provctx, selection);

    if (g == NULL)
        return NULL;
    g->type = IHSM_KEY_X25519;
    if (!x25519_gen_set_params(g, params)) {
        ihsm_km_gen_cleanup(g);
        return NULL;
    }
    return g;
}

const OSSL_DISPATCH ihsm_x25519_keymgmt_functions[] = {
    { OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))x25519_new },
    { OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))ihsm_km_free },
    { OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))ihsm_km_has },
    { OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))ihsm_km_match },
    { OSSL_FUNC_KEYMGMT_VALIDATE, (void (*)(void))ihsm_km_validate },
    { OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))ihsm_km_get_params },
    { OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))x25519_gettable_params },
    { OSSL_FUNC_KEYMGMT_SET_PARAMS, (void (*)(void))x25519_set_params },
    { OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, (void (*)(void))x25519_settable_params },
    { OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))x25519_import },
    { OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))x25519_types },
    { OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))ihsm_km_export },
    { OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))x25519_types },
    { OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))x25519_load },
    { OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))ihsm_km_dup },
    { OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))x25519_gen_init },
    { OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, (void (*)(void))x25519_gen_set_params },
    { OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, (void (*)(void))x25519_gen_settable_params },
    { OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE, (void (*)(void))x25519_gen_set_template },
    { OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))ihsm_km_gen },
    { OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))ihsm_km_gen_cleanup },
    { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))x25519_query_operation_name },
    { 0, NULL }
};
