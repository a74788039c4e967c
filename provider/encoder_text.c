/*
 * ENCODER: a device key as text (`openssl pkey -text`, EVP_PKEY_print_*).
 * Says where the private key is instead of printing it, then the public
 * key as the default provider prints it.
 */
#include <openssl/core_dispatch.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "ihsm_prov_io.h"

static OSSL_FUNC_encoder_does_selection_fn text_does_selection;
static OSSL_FUNC_encoder_encode_fn text_encode;

static int text_does_selection(void *provctx, int selection)
{
    return 1; /* private, public and parameters all have something to say */
}

static const char *curve_or_size(const IHSM_PROV_KEY *k, char *buf, size_t len)
{
    switch (k->type) {
    case IHSM_KEY_EC_P256:
        return "P-256";
    case IHSM_KEY_EC_P384:
        return "P-384";
    case IHSM_KEY_ED25519:
        return "255 bit";
    case IHSM_KEY_X25519:
        return "X25519";
    default:
        BIO_snprintf(buf, len, "%u bit", (unsigned)k->bits);
        return buf;
    }
}

static int text_encode(void *vctx, OSSL_CORE_BIO *cout, const void *obj,
                       const OSSL_PARAM obj_abstract[], int selection,
                       OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    ihsm_io_ctx *ctx = vctx;
    const IHSM_PROV_KEY *k = obj;
    const char *type;
    char size[32];
    EVP_PKEY *pub;
    BIO *out;
    int ok = 1;

    if (k == NULL || obj_abstract != NULL) {
        ihsm_prov_raise(ctx->provctx, IHSM_R_INVALID_ARGUMENT,
                        "the text encoder takes ihsm key objects only");
        return 0;
    }
    if ((out = ihsm_io_bio(ctx->provctx, cout)) == NULL)
        return 0;
    type = ihsm_prov_key_keymgmt_name(k);
    if (!ihsm_prov_key_has_private(k)) {
        /* a public key imported into ihsm (key comparison, verification) */
        ok = BIO_printf(out, "ihsm %s public key (%s): no device part\n",
                        type != NULL ? type : "?", curve_or_size(k, size, sizeof(size))) > 0;
    } else if (selection == 0 || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0) {
        ok = BIO_printf(out, "ihsm %s private key (%s): held in ihsmd, not exportable\n",
                        type != NULL ? type : "?", curve_or_size(k, size, sizeof(size))) > 0;
        if (ok && k->name != NULL)
            ok = BIO_printf(out, "key name: %s\n", k->name) > 0;
        if (ok && k->blob_len > 0)
            ok = BIO_printf(out, "masked blob: %zu bytes\n", k->blob_len) > 0;
    }
    /* key exchange keys make their EVP_PKEY on demand */
    ERR_set_mark();
    pub = ihsm_prov_key_pub((IHSM_PROV_KEY *)k);
    ERR_pop_to_mark();
    if (ok && (selection == 0 || (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)) {
        if (pub != NULL)
            ok = EVP_PKEY_print_public(out, pub, 0, NULL) > 0;
        else
            ok = BIO_printf(out, "(public key not available)\n") > 0;
    } else if (ok && pub != NULL) {
        ok = EVP_PKEY_print_params(out, pub, 0, NULL) > 0;
    }
    BIO_free(out);
    return ok;
}

const OSSL_DISPATCH ihsm_text_encoder_functions[] = {
    { OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))ihsm_io_newctx },
    { OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))ihsm_io_freectx },
    { OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))text_does_selection },
    { OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))text_encode },
    { 0, NULL }
};
