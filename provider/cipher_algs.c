/*
 * The AEAD ciphers' dispatch tables and the algorithm list provider.c
 * offers for OSSL_OP_CIPHER when ihsm-route includes aead. The names are
 * OpenSSL's (with the object names libssl fetches by: id-aes128-GCM ...),
 * so a fetch by any of them can find ours.
 */
#include <openssl/core_dispatch.h>

#include "cipher_aead.h"

#define NEWCTX(fn, alg)                                                     \
    static void *fn(void *provctx)                                          \
    {                                                                       \
        return ihsm_aead_newctx(provctx, &alg);                             \
    }
#define GET_PARAMS(fn, alg)                                                 \
    static int fn(OSSL_PARAM params[])                                      \
    {                                                                       \
        return ihsm_aead_get_params(params, &alg);                          \
    }

NEWCTX(aes128gcm_newctx, ihsm_aead_aes128gcm)
NEWCTX(aes256gcm_newctx, ihsm_aead_aes256gcm)
NEWCTX(chacha_newctx, ihsm_aead_chacha)
GET_PARAMS(aes128gcm_get_params, ihsm_aead_aes128gcm)
GET_PARAMS(aes256gcm_get_params, ihsm_aead_aes256gcm)
GET_PARAMS(chacha_get_params, ihsm_aead_chacha)

#define F(id, fn) { id, (void (*)(void))(fn) }
#define AEAD_FUNCTIONS(name, kind)                                               \
    const OSSL_DISPATCH name##_functions[] = {                                   \
        F(OSSL_FUNC_CIPHER_NEWCTX, name##_newctx),                               \
        F(OSSL_FUNC_CIPHER_FREECTX, ihsm_aead_freectx),                          \
        F(OSSL_FUNC_CIPHER_DUPCTX, ihsm_aead_dupctx),                            \
        F(OSSL_FUNC_CIPHER_ENCRYPT_INIT, ihsm_aead_einit),                       \
        F(OSSL_FUNC_CIPHER_DECRYPT_INIT, ihsm_aead_dinit),                       \
        F(OSSL_FUNC_CIPHER_UPDATE, ihsm_aead_update),                            \
        F(OSSL_FUNC_CIPHER_FINAL, ihsm_aead_final),                              \
        F(OSSL_FUNC_CIPHER_CIPHER, ihsm_aead_cipher),                            \
        F(OSSL_FUNC_CIPHER_GET_PARAMS, name##_get_params),                       \
        F(OSSL_FUNC_CIPHER_GETTABLE_PARAMS, ihsm_aead_gettable_params),          \
        F(OSSL_FUNC_CIPHER_GET_CTX_PARAMS, ihsm_aead_get_ctx_params),            \
        F(OSSL_FUNC_CIPHER_SET_CTX_PARAMS, ihsm_aead_set_ctx_params),            \
        F(OSSL_FUNC_CIPHER_GETTABLE_CTX_PARAMS, ihsm_aead_##kind##_gettable_ctx_params), \
        F(OSSL_FUNC_CIPHER_SETTABLE_CTX_PARAMS, ihsm_aead_##kind##_settable_ctx_params), \
        { 0, NULL }                                                              \
    }

static AEAD_FUNCTIONS(aes128gcm, gcm);
static AEAD_FUNCTIONS(aes256gcm, gcm);
static AEAD_FUNCTIONS(chacha, chacha);

const OSSL_ALGORITHM ihsm_cipher_algs[] = {
    { "AES-128-GCM:id-aes128-GCM:2.16.840.1.101.3.4.1.6", IHSM_AEAD_PROPS,
      aes128gcm_functions, "AES-128-GCM sealed and opened in ihsmd" },
    { "AES-256-GCM:id-aes256-GCM:2.16.840.1.101.3.4.1.46", IHSM_AEAD_PROPS,
      aes256gcm_functions, "AES-256-GCM sealed and opened in ihsmd" },
    { "ChaCha20-Poly1305", IHSM_AEAD_PROPS, chacha_functions,
      "ChaCha20-Poly1305 sealed and opened in ihsmd" },
    { NULL, NULL, NULL, NULL }
};
