/*
 * Ed25519 in the device: one shot over the message (PureEdDSA hashes the
 * message itself, twice, so the device must see all of it).
 */
#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include "signature.h"

static int ed25519_key_ok(const IHSM_PROV_KEY *k)
{
    return k->type == IHSM_KEY_ED25519;
}

static int ed25519_sign_args(IHSM_SIG_CTX *c, const unsigned char *tbs, size_t tbslen,
                             ihsm_wr *w)
{
    /* The request must fit one frame with room for its headers. */
    if (tbslen > IHSM_MAX_PAYLOAD - 64) {
        ihsm_prov_raise(c->provctx, IHSM_R_INVALID_ARGUMENT,
                        "Ed25519 message of %zu bytes is too large for the device "
                        "(at most %d bytes)", tbslen, IHSM_MAX_PAYLOAD - 64);
        return 0;
    }
    ihsm_sig_write_args(w, IHSM_SIG_ED25519, IHSM_MD_NONE, 0, 0, tbs, tbslen);
    return 1;
}

static int ed25519_algor(IHSM_SIG_CTX *c, X509_ALGOR *alg)
{
    /* id-Ed25519, parameters absent (RFC 8410) */
    return X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ED25519), V_ASN1_UNDEF, NULL);
}

static const IHSM_SIG_ALG ed25519_alg = {
    "ED25519", 1, ed25519_key_ok, NULL, ed25519_sign_args, ed25519_algor, NULL, NULL, NULL,
};

static const OSSL_PARAM ed25519_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_END
};

static void *ed25519_newctx(void *provctx, const char *propq)
{
    return ihsm_sig_newctx(&ed25519_alg, provctx, propq);
}

static const OSSL_PARAM *ed25519_gettable_ctx_params(void *vctx, void *provctx)
{
    return ed25519_gettable;
}

const OSSL_DISPATCH ihsm_ed25519_signature_functions[] = {
    { OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))ed25519_newctx },
    { OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))ihsm_sig_freectx },
    { OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))ihsm_sig_dupctx },
    { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))ihsm_sig_digest_sign_init },
    { OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))ihsm_sig_digest_sign },
    { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))ihsm_sig_digest_verify_init },
    { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY, (void (*)(void))ihsm_sig_digest_verify },
    { OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))ihsm_sig_get_ctx_params },
    { OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))ed25519_gettable_ctx_params },
    { 0, NULL }
};
