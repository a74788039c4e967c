/*
 * ECDSA in the device (P-256, P-384). The device answers with the DER
 * Ecdsa-Sig-Value, the form EVP callers and TLS expect, so no conversion is
 * needed; max-size (the key's get_params) is the largest DER signature.
 */
#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include "signature.h"

static int ecdsa_key_ok(const IHSM_PROV_KEY *k)
{
    return k->type == IHSM_KEY_EC_P256 || k->type == IHSM_KEY_EC_P384;
}

static int ecdsa_sign_args(IHSM_SIG_CTX *c, const unsigned char *tbs, size_t tbslen,
                           ihsm_wr *w)
{
    int md = ihsm_sig_md_id(c, tbslen);

    if (c->md != NULL && tbslen != (size_t)EVP_MD_get_size(c->md)) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                        "input of %zu bytes is not a %s digest", tbslen, EVP_MD_get0_name(c->md));
        return 0;
    }
    if (tbslen == 0 || tbslen > EVP_MAX_MD_SIZE) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                        "ECDSA signs a digest: %zu bytes is not one", tbslen);
        return 0;
    }
    /* ECDSA needs only the digest value; a digest the device has no id for
     * goes as "none" and is used as given. */
    ihsm_sig_write_args(w, IHSM_SIG_ECDSA, md > 0 ? (uint32_t)md : IHSM_MD_NONE, 0, 0,
                        tbs, tbslen);
    return 1;
}

static int ecdsa_algor(IHSM_SIG_CTX *c, X509_ALGOR *alg)
{
    int nid;

    if (c->md == NULL
        || !OBJ_find_sigid_by_algs(&nid, EVP_MD_get_type(c->md), NID_X9_62_id_ecPublicKey)) {
        ihsm_prov_raise(c->provctx, IHSM_R_UNSUPPORTED,
                        "no X.509 signature algorithm for ECDSA with %s",
                        c->md != NULL ? EVP_MD_get0_name(c->md) : "no digest");
        return 0;
    }
    /* ecdsa-with-SHA*: parameters absent (RFC 5758) */
    return X509_ALGOR_set0(alg, OBJ_nid2obj(nid), V_ASN1_UNDEF, NULL);
}

static const IHSM_SIG_ALG ecdsa_alg = {
    "ECDSA", 0, ecdsa_key_ok, NULL, ecdsa_sign_args, ecdsa_algor, NULL, NULL, NULL,
};

static const OSSL_PARAM ecdsa_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_size_t(OSSL_SIGNATURE_PARAM_DIGEST_SIZE, NULL),
    OSSL_PARAM_END
};

static const OSSL_PARAM ecdsa_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_END
};

static void *ecdsa_newctx(void *provctx, const char *propq)
{
    return ihsm_sig_newctx(&ecdsa_alg, provctx, propq);
}

static const OSSL_PARAM *ecdsa_gettable_ctx_params(void *vctx, void *provctx)
{
    return ecdsa_gettable;
}

static const OSSL_PARAM *ecdsa_settable_ctx_params(void *vctx, void *provctx)
{
    return ecdsa_settable;
}

const OSSL_DISPATCH ihsm_ecdsa_signature_functions[] = {
    { OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))ecdsa_newctx },
    { OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))ihsm_sig_freectx },
    { OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))ihsm_sig_dupctx },
    { OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))ihsm_sig_sign_init },
    { OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))ihsm_sig_sign },
    { OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))ihsm_sig_verify_init },
    { OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))ihsm_sig_verify },
    { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))ihsm_sig_digest_sign_init },
    { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))ihsm_sig_digest_sign_update },
    { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))ihsm_sig_digest_sign_final },
    { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))ihsm_sig_digest_verify_init },
    { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))ihsm_sig_digest_verify_update },
    { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))ihsm_sig_digest_verify_final },
    { OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))ihsm_sig_get_ctx_params },
    { OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))ecdsa_gettable_ctx_params },
    { OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))ihsm_sig_set_ctx_params },
    { OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))ecdsa_settable_ctx_params },
    { 0, NULL }
};
