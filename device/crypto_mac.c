/*
 * The audit log's chain MAC: HMAC-SHA256 over the previous record's MAC and
 * this record's text, in our own library context. The key object lives in
 * the HMAC implementation's context (secure heap) only for the call.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "crypto_internal.h"

int ihsm_audit_mac(const uint8_t key[32], const uint8_t prev[32], const uint8_t *rec,
                   size_t len, uint8_t out[32])
{
    EVP_MAC *mac = EVP_MAC_fetch(ihsm_crypto_libctx(), "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[2];
    size_t outlen = 0;
    int ok;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    ok = ctx != NULL && EVP_MAC_init(ctx, key, 32, params)
         && EVP_MAC_update(ctx, prev, 32) && EVP_MAC_update(ctx, rec, len)
         && EVP_MAC_final(ctx, out, &outlen, 32) && outlen == 32;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    if (!ok) {
        OPENSSL_cleanse(out, 32);
        ihsm_crypto_drop_errors("audit MAC");
        return IHSM_ERR_CRYPTO;
    }
    return IHSM_OK;
}
