/*
 * KEYMGMT for RSA and RSA-PSS keys held in ihsmd (2048, 3072, 4096 bits,
 * e = 65537). An RSA-PSS key is the same device key seen as PSS-only: its
 * SubjectPublicKeyInfo says RSASSA-PSS and the signature refuses PKCS#1.
 */
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include "keymgmt_common.h"

static const IHSM_KM_DESC rsa_desc = { "RSA", 0 };
static const IHSM_KM_DESC rsapss_desc = { "RSA-PSS", 1 };

static const OSSL_PARAM rsa_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM rsa_public_types[] = {
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM rsa_gen_settable[] = {
    OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_BITS, NULL),
    OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_PRIMES, NULL),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_utf8_string(IHSM_PKEY_PARAM_NAME, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *rsa_gettable_params(void *provctx)
{
    return rsa_gettable;
}

static const OSSL_PARAM *rsa_types(int selection)
{
    /* Only public halves travel in or out of this provider. */
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        return NULL;
    return rsa_public_types;
}

static int rsa_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    return ihsm_km_import(&rsa_desc, keydata, selection, params);
}

static int rsapss_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    return ihsm_km_import(&rsapss_desc, keydata, selection, params);
}

static void *rsa_load(const void *reference, size_t reference_sz)
{
    return ihsm_km_load(&rsa_desc, reference, reference_sz);
}

static void *rsapss_load(const void *reference, size_t reference_sz)
{
    return ihsm_km_load(&rsapss_desc, reference, reference_sz);
}

static const char *rsa_query_operation_name(int operation_id)
{
    /* One SIGNATURE implementation ("RSA") serves RSA and RSA-PSS keys. */
    return operation_id == OSSL_OP_SIGNATURE ? "RSA" : NULL;
}

static int rsa_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    IHSM_KM_GEN *g = genctx;
    const OSSL_PARAM *p;
    BIGNUM *e = NULL;
    size_t v;
    int ok;

    if (g == NULL)
        return 0;
    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_BITS)) != NULL) {
        if (!OSSL_PARAM_get_size_t(p, &v) || (v != 2048 && v != 3072 && v != 4096)) {
            ihsm_prov_raise(g->ctx, IHSM_R_UNSUPPORTED,
                            "RSA key size not supported by the device: use 2048, 3072 or 4096 "
                            "bits (rsa_keygen_bits)");
            return 0;
        }
        g->bits = (uint32_t)v;
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_PRIMES)) != NULL) {
        if (!OSSL_PARAM_get_size_t(p, &v) || v != 2) {
            ihsm_prov_raise(g->ctx, IHSM_R_UNSUPPORTED,
                            "the device generates two-prime RSA keys only (rsa_keygen_primes)");
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_E)) != NULL) {
        ok = OSSL_PARAM_get_BN(p, &e) && BN_is_word(e, RSA_F4);
        BN_free(e);
        if (!ok) {
            ihsm_prov_raise(g->ctx, IHSM_R_UNSUPPORTED,
                            "the device generates RSA keys with public exponent 65537 only "
                            "(rsa_keygen_pubexp)");
            return 0;
        }
    }
    return ihsm_km_gen_set_common(g, params);
}

static const OSSL_PARAM *rsa_gen_settable_params(void *genctx, void *provctx)
{
    return rsa_gen_settable;
}

static void *gen_init(const IHSM_KM_DESC *d, void *provctx, int selection,
                      const OSSL_PARAM params[])
{
    IHSM_KM_GEN *g = ihsm_km_gen_init(d, provctx, selection);

    if (g == NULL)
        return NULL;
    g->type = IHSM_KEY_RSA;
    g->bits = 2048;
    if (!rsa_gen_set_params(g, params)) {
        ihsm_km_gen_cleanup(g);
        return NULL;
    }
    return g;
}

static void *rsa_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    return gen_init(&rsa_desc, provctx, selection, params);
}

static void *rsapss_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    return gen_init(&rsapss_desc, provctx, selection, params);
}

#define RSA_COMMON_FUNCTIONS                                                            \
    { OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))ihsm_km_new },                            \
    { OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))ihsm_km_free },                          \
    { OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))ihsm_km_has },                            \
    { OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))ihsm_km_match },                        \
    { OSSL_FUNC_KEYMGMT_VALIDATE, (void (*)(void))ihsm_km_validate },                  \
    { OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))ihsm_km_get_params },              \
    { OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))rsa_gettable_params },        \
    { OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))rsa_types },                     \
    { OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))ihsm_km_export },                      \
    { OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))rsa_types },                     \
    { OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))ihsm_km_dup },                            \
    { OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, (void (*)(void))rsa_gen_set_params },          \
    { OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, (void (*)(void))rsa_gen_settable_params },\
    { OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))ihsm_km_gen },                            \
    { OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))ihsm_km_gen_cleanup },            \
    { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))rsa_query_operation_name }

const OSSL_DISPATCH ihsm_rsa_keymgmt_functions[] = {
    RSA_COMMON_FUNCTIONS,
    { OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))rsa_import },
    { OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))rsa_load },
    { OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))rsa_gen_init },
    { 0, NULL }
};

const OSSL_DISPATCH ihsm_rsapss_keymgmt_functions[] = {
    RSA_COMMON_FUNCTIONS,
    { OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))rsapss_import },
    { OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))rsapss_load },
    { OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))rsapss_gen_init },
    { 0, NULL }
};
