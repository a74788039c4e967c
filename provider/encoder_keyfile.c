/*
 * ENCODER: the private half of a device key, which is its masked key file.
 * `openssl genpkey -provider ihsm ... -out key.pem` and any
 * PEM_write_bio_PrivateKey caller write
 *
 *   -----BEGIN IHSM MASKED KEY-----
 *
 * which the decoder reads back. It is registered for the structure callers
 * ask for, "PrivateKeyInfo": for a device key the masked form is the only
 * private form there is. A passphrase cipher is not applied: the blob is
 * already wrapped by the device and useless without it.
 */
#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>

#include "ihsm_prov_io.h"

static OSSL_FUNC_encoder_does_selection_fn keyfile_does_selection;
static OSSL_FUNC_encoder_encode_fn keyfile_pem_encode;
static OSSL_FUNC_encoder_encode_fn keyfile_der_encode;

static int keyfile_does_selection(void *provctx, int selection)
{
    /* only when the private key is asked for: a public-only request must
     * find the SubjectPublicKeyInfo encoders instead */
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
}

static int keyfile_encode(ihsm_io_ctx *ctx, OSSL_CORE_BIO *cout, const void *obj,
                          const OSSL_PARAM obj_abstract[], int selection, int pem)
{
    /* not const: a named key asks the device for its blob (KEY_MASK) */
    IHSM_PROV_KEY *k = (IHSM_PROV_KEY *)obj;
    ihsm_keyfile kf = { 0 };
    uint8_t *out = NULL;
    size_t outlen = 0;
    BIO *bio = NULL;
    int ok = 0;

    if (k == NULL || obj_abstract != NULL) {
        ihsm_prov_raise(ctx->provctx, IHSM_R_INVALID_ARGUMENT,
                        "the masked key encoder takes ihsm key objects only");
        return 0;
    }
    if (!keyfile_does_selection(ctx->provctx, selection)) {
        ihsm_prov_raise(ctx->provctx, IHSM_R_UNSUPPORTED,
                        "a masked key file holds the private key: select it");
        return 0;
    }
    kf.key_type = k->type;
    if (!ihsm_io_key_spki(k, &kf.spki, &kf.spki_len)
        || !ihsm_io_key_blob(k, &kf.blob, &kf.blob_len))
        goto end;
    if (pem) {
        char *text = NULL;

        if (ihsm_keyfile_encode_pem(&kf, &text, &outlen) == 0)
            out = (uint8_t *)text;
    } else if (ihsm_keyfile_encode_der(&kf, &out, &outlen) != 0) {
        out = NULL;
    }
    if (out == NULL || outlen > INT32_MAX) {
        ihsm_prov_raise(ctx->provctx, IHSM_R_BAD_KEYFILE,
                        "cannot encode the masked key file");
        goto end;
    }
    if ((bio = ihsm_io_bio(ctx->provctx, cout)) != NULL)
        ok = BIO_write(bio, out, (int)outlen) == (int)outlen;
    IHSM_PROV_DBG("encoder: masked key file (%s), %zu bytes: %s",
                  pem ? "PEM" : "DER", outlen, ok ? "ok" : "failed");
 end:
    BIO_free(bio);
    OPENSSL_free(out);
    ihsm_keyfile_clear(&kf);
    return ok;
}

static int keyfile_pem_encode(void *vctx, OSSL_CORE_BIO *cout, const void *obj,
                              const OSSL_PARAM obj_abstract[], int selection,
                              OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    return keyfile_encode(vctx, cout, obj, obj_abstract, selection, 1);
}

static int keyfile_der_encode(void *vctx, OSSL_CORE_BIO *cout, const void *obj,
                              const OSSL_PARAM obj_abstract[], int selection,
                              OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    return keyfile_encode(vctx, cout, obj, obj_abstract, selection, 0);
}

const OSSL_DISPATCH ihsm_keyfile_pem_encoder_functions[] = {
    { OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))ihsm_io_newctx },
    { OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))ihsm_io_freectx },
    { OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))keyfile_does_selection },
    { OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))keyfile_pem_encode },
    { 0, NULL }
};

const OSSL_DISPATCH ihsm_keyfile_der_encoder_functions[] = {
    { OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))ihsm_io_newctx },
    { OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))ihsm_io_freectx },
    { OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))keyfile_does_selection },
    { OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))keyfile_der_encode },
    { 0, NULL }
};
