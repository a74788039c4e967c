/*
 * KEYMGMT for EC keys held in ihsmd: P-256 and P-384, named curves,
 * uncompressed points.
 */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include "keymgmt_common.h"

static const IHSM_KM_DESC ec_desc = { "EC", 0 };

static const OSSL_PARAM ec_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_X, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_Y, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ec_public_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ec_gen_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_utf8_string(IHSM_PKEY_PARAM_NAME, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ec_settable[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *ec_gettable_params(void *provctx)
{
    return ec_gettable;
}

/* libssl's EVP_PKEY_set1_encoded_public_key: the peer's ECDHE key share on a
 * parameters-only key of the same curve. */
static int ec_set_params(void *keydata, const OSSL_PARAM params[])
{
    return ihsm_km_set_encoded_params(keydata, 0, params);
}

static const OSSL_PARAM *ec_settable_params(void *provctx)
{
    return ec_settable;
}

static const OSSL_PARAM *ec_types(int selection)
{
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        return NULL;
    return ec_public_types;
}

static int ec_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    return ihsm_km_import(&ec_desc, keydata, selection, params);
}

static void *ec_load(const void *reference, size_t reference_sz)
{
    return ihsm_km_load(&ec_desc, reference, reference_sz);
}

static const char *ec_query_operation_name(int operation_id)
{
    switch (operation_id) {
    case OSSL_OP_SIGNATURE:
        return "ECDSA";
    case OSSL_OP_KEYEXCH:
        return "ECDH";
    }
    return NULL;
}

static int ec_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    IHSM_KM_GEN *g = genctx;
    const OSSL_PARAM *p;
    const char *s = NULL;
    uint32_t type;

    if (g == NULL)
        return 0;
    if (params == NULL)
        return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME)) != NULL) {
        /* ihsm's TLS group names: libssl's ephemeral ECDHE keys */
        if (OSSL_PARAM_get_utf8_string_ptr(p, &s)
            && (strcmp(s, IHSM_KEX_GROUP_P256) == 0 || strcmp(s, IHSM_KEX_GROUP_P384) == 0)) {
            g->type = strcmp(s, IHSM_KEX_GROUP_P256) == 0 ? IHSM_KEY_EC_P256 : IHSM_KEY_EC_P384;
            g->kex = 1;
        } else if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) || (type = ihsm_km_ec_type(s)) == 0) {
            ihsm_prov_raise(g->ctx, IHSM_R_UNSUPPORTED,
                            "EC curve %s not supported by the device: use P-256 or P-384",
                            s != NULL ? s : "(not a string)");
            return 0;
        } else {
            g->type = type;
        }
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_EC_ENCODING)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s)
            || strcasecmp(s, OSSL_PKEY_EC_ENCODING_GROUP) != 0) {
            ihsm_prov_raise(g->ctx, IHSM_R_UNSUPPORTED,
                            "device EC keys use named curves only (ec_param_enc:named_curve)");
            return 0;
        }
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT)) != NULL) {
        if (!OSSL_PARAM_get_utf8_string_ptr(p, &s)
            || strcasecmp(s, OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) != 0) {
            ihsm_prov_raise(g->ctx, IHSM_R_UNSUPPORTED,
                            "device EC public keys are uncompressed points only");
            return 0;
        }
    }
    return ihsm_km_gen_set_common(g, params);
}

static const OSSL_PARAM *ec_gen_settable_params(void *genctx, void *provctx)
{
    return ec_gen_settable;
}

static int ec_gen_set_template(void *genctx, void *templ)
{
    IHSM_KM_GEN *g = genctx;
    IHSM_PROV_KEY *t = templ;

    if (g == NULL || t == NULL
        || (t->type != IHSM_KEY_EC_P256 && t->type != IHSM_KEY_EC_P384))
        return 0;
    g->type = t->type;
    /* A key like the peer's ECDHE share (libssl's TLS 1.3 server) is ephemeral too. */
    g->kex = t->kex;
    return 1;
}

static void *ec_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    IHSM_KM_GEN *g = ihsm_km_gen_init(&ec_desc, provctx, selection);

    if (g != NULL && !ec_gen_set_params(g, params)) {
        ihsm_km_gen_cleanup(g);
        g = NULL;
    }
    return g;
}

const OSSL_DISPATCH ihsm_ec_keymgmt_functions[] = {
    { OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))ihsm_km_new },
    { OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))ihsm_km_free },
    { OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))ihsm_km_has },
    { OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))ihsm_km_match },
    { OSSL_FUNC_KEYMGMT_VALIDATE, (void (*)(void))ihsm_km_validate },
    { OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))ihsm_km_get_params },
    { OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))ec_gettable_params },
    { OSSL_FUNC_KEYMGMT_SET_PARAMS, (void (*)(void))ec_set_params },
    { OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, (void (*)(void))ec_settable_params },
    { OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))ec_import },
    { OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))ec_types },
    { OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))ihsm_km_export },
    { OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))ec_types },
    { OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))ec_load },
    { OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))ihsm_km_dup },
    { OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))ec_gen_init },
    { OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, (void (*)(void))ec_gen_set_params },
    { OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, (void (*)(void))ec_gen_settable_params },
    { OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE, (void (*)(void))ec_gen_set_template },
    { OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))ihsm_km_gen },
    { OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))ihsm_km_gen_cleanup },
    { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))ec_query_operation_name },
    { 0, NULL }
};
