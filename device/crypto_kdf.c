/*
 * Key derivation: the partition masking key and the audit key
 * (HKDF-SHA256 of the root secret, each with its own info string) and the
 * PIN verifier (PBKDF2-HMAC-SHA256), all through EVP_KDF in our own library
 * context (PKCS5_PBKDF2_HMAC would use the process-wide one).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "crypto_internal.h"

#define MASK_INFO "ihsm partition mask v1"
#define AUDIT_INFO "ihsm audit log v1"

/* One EVP_KDF derivation; params must end with OSSL_PARAM_END. */
static int kdf(const char *alg, const OSSL_PARAM *params, uint8_t *out, size_t outlen)
{
    EVP_KDF *k = EVP_KDF_fetch(ihsm_crypto_libctx(), alg, NULL);
    EVP_KDF_CTX *ctx = k != NULL ? EVP_KDF_CTX_new(k) : NULL;
    int ok = ctx != NULL && EVP_KDF_derive(ctx, out, outlen, params) > 0;

    EVP_KDF_CTX_free(ctx); /* cleanses its copy of the key */
    EVP_KDF_free(k);
    if (!ok) {
        OPENSSL_cleanse(out, outlen);
        ihsm_crypto_drop_errors(alg);
        return IHSM_ERR_CRYPTO;
    }
    return IHSM_OK;
}

int ihsm_crypto_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
                            size_t salt_len, const uint8_t *info, size_t info_len,
                            uint8_t *out, size_t outlen)
{
    OSSL_PARAM p[5];

    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    p[4] = OSSL_PARAM_construct_end();
    return kdf("HKDF", p, out, outlen);
}

int ihsm_derive_mask_key(const uint8_t root[32], const uint8_t part_id[16],
                         uint8_t mask_key[32])
{
    if (ihsm_crypto_failed())
        return IHSM_ERR_DEVICE_FAILED;
    return ihsm_crypto_hkdf_sha256(root, 32, part_id, 16, (const uint8_t *)MASK_INFO,
                                   strlen(MASK_INFO), mask_key, 32);
}

/* Allowed in the failed state: what happens to a failed device (its
 * zeroization above all) must still be recorded in a verifiable log. */
int ihsm_derive_audit_key(const uint8_t root[32], uint8_t key[32])
{
    static const uint8_t no_salt[32]; /* RFC 5869's default: HashLen zeros */

    return ihsm_crypto_hkdf_sha256(root, 32, no_salt, sizeof(no_salt), (const uint8_t *)AUDIT_INFO,
                                   strlen(AUDIT_INFO), key, 32);
}

/* Allowed in the failed state: an operator must still be able to open a
 * session to ZEROIZE a failed device. */
int ihsm_pin_hash(const uint8_t *pin, size_t pin_len, const uint8_t salt[16],
                  uint32_t iterations, uint8_t out[32])
{
    OSSL_PARAM p[5];

    if (iterations == 0 || pin == NULL)
        return IHSM_ERR_BAD_INPUT;
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pin, pin_len);
    p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, 16);
    p[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_ITER, &iterations);
    p[4] = OSSL_PARAM_construct_end();
    return kdf("PBKDF2", p, out, 32);
}
