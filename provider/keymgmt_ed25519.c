/*
 * KEYMGMT for Ed25519 keys held in ihsmd.
 */
#include <openssl/core_names.h>
#include <openssl/params.h>
#include "keymgmt_common.h"

static const IHSM_KM_DESC ed25519_desc = { "ED25519", 0 };

static const OSSL_PARAM ed25519_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ed25519_public_types[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ed25519_gen_settable[] = {
    OSSL_PARAM_utf8_string(IHSM_PKEY_PARAM_NAME, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *ed25519_gettable_params(void *provctx)
{
    return ed25519_gettable;
}

static const OSSL_PARAM *ed25519_types(int selection)
{
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        return NULL;
    return ed25519_public_types;
}

static int ed25519_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    return ihsm_km_import(&ed25519_desc, keydata, selection, params);
}

static void *ed25519_load(const void *reference, size_t reference_sz)
{
    return ihsm_km_load(&ed25519_desc, reference, reference_sz);
}

static const char *ed25519_query_operation_name(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? "ED25519" : NULL;
}

static int ed25519_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    IHSM_KM_GEN *g = genctx;

    if (g == NULL)
        return 0;
    return params == NULL || ihsm_km_gen_set_common(g, params);
}

static const OSSL_PARAM *ed25519_gen_settable_params(void *genctx, void *provctx)
{
    return ed25519_gen_settable;
}

static void *ed25519_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    IHSM_KM_GEN *g = ihsm_km_gen_init(&ed25519_desc, provctx, selection);

    if (g == NULL)
        return NULL;
    g->type = IHSM_KEY_ED25519;
    if (!ed25519_gen_set_params(g, params)) {
        ihsm_km_gen_cleanup(g);
        return NULL;
    }
    return g;
}

const OSSL_DISPATCH ihsm_ed25519_keymgmt_functions[] = {
    { OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))ihsm_km_new },
    { OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))ihsm_km_free },
    { OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))ihsm_km_has },
    { OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))ihsm_km_match },
    { OSSL_FUNC_KEYMGMT_VALIDATE, (void (*)(void))ihsm_km_validate },
    { OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))ihsm_km_get_params },
    { OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))ed25519_gettable_params },
    { OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))ed25519_import },
    { OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))ed25519_types },
    { OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))ihsm_km_export },
    { OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))ed25519_types },
    { OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))ed25519_load },
    { OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))ihsm_km_dup },
    { OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))ed25519_gen_init },
    { OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, (void (*)(void))ed25519_gen_set_params },
    { OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, (void (*)(void))ed25519_gen_settable_params },
    { OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))ihsm_km_gen },
    { OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))ihsm_km_gen_cleanup },
    { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))ed25519_query_operation_name },
    { 0, NULL }
};
