/*
 * ENCODER: the public half of a device key as SubjectPublicKeyInfo, DER and
 * PEM, for RSA, RSA-PSS, EC and Ed25519 (one table: the output does not
 * depend on the type, only on the key's SPKI). This is what X509_PUBKEY_set
 * (openssl req, x509), i2d_PUBKEY and `openssl pkey -pubout` call.
 */
#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "ihsm_prov_io.h"

static OSSL_FUNC_encoder_does_selection_fn spki_does_selection;
static OSSL_FUNC_encoder_encode_fn spki_der_encode;
static OSSL_FUNC_encoder_encode_fn spki_pem_encode;

static int spki_does_selection(void *provctx, int selection)
{
    return ihsm_io_check_selection(selection, OSSL_KEYMGMT_SELECT_PUBLIC_KEY);
}

static int spki_encode(ihsm_io_ctx *ctx, OSSL_CORE_BIO *cout, const void *obj,
                       const OSSL_PARAM obj_abstract[], int selection, int pem)
{
    const IHSM_PROV_KEY *k = obj;
    uint8_t *der = NULL;
    size_t len = 0;
    BIO *out;
    int ok = 0;

    if (k == NULL || obj_abstract != NULL) {
        ihsm_prov_raise(ctx->provctx, IHSM_R_INVALID_ARGUMENT,
                        "the SPKI encoder takes ihsm key objects only");
        return 0;
    }
    if (!spki_does_selection(ctx->provctx, selection)) {
        ihsm_prov_raise(ctx->provctx, IHSM_R_UNSUPPORTED,
                        "SubjectPublicKeyInfo holds the public key only");
        return 0;
    }
    if (!ihsm_io_key_spki(k, &der, &len))
        return 0;
    if ((out = ihsm_io_bio(ctx->provctx, cout)) != NULL) {
        if (pem)
            ok = PEM_write_bio(out, PEM_STRING_PUBLIC, "", der, (long)len) > 0;
        else
            ok = BIO_write(out, der, (int)len) == (int)len;
        BIO_free(out);
    }
    IHSM_PROV_DBG("encoder: SubjectPublicKeyInfo %s, %zu bytes: %s",
                  pem ? "PEM" : "DER", len, ok ? "ok" : "failed");
    OPENSSL_free(der);
    return ok;
}

static int spki_der_encode(void *vctx, OSSL_CORE_BIO *cout, const void *obj,
                           const OSSL_PARAM obj_abstract[], int selection,
                           OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    return spki_encode(vctx, cout, obj, obj_abstract, selection, 0);
}

static int spki_pem_encode(void *vctx, OSSL_CORE_BIO *cout, const void *obj,
                           const OSSL_PARAM obj_abstract[], int selection,
                           OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    return spki_encode(vctx, cout, obj, obj_abstract, selection, 1);
}

const OSSL_DISPATCH ihsm_spki_der_encoder_functions[] = {
    { OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))ihsm_io_newctx },
    { OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))ihsm_io_freectx },
    { OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))spki_does_selection },
    { OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))spki_der_encode },
    { 0, NULL }
};

const OSSL_DISPATCH ihsm_spki_pem_encoder_functions[] = {
    { OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))ihsm_io_newctx },
    { OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))ihsm_io_freectx },
    { OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))spki_does_selection },
    { OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))spki_pem_encode },
    { 0, NULL }
};
