/*
 * KEY_IMPORT (BYOK, the CKM_RSA_AES_KEY_WRAP form):
 *
 *   wrapped = RSA-OAEP(SHA-256, MGF1-SHA-256, no label) of a 32-byte AES key
 *             under the device import key (modulus length bytes)
 *          || AES-256 key wrap with padding (RFC 5649) of the private key's
 *             PKCS#8 DER (AES keys: the raw key bytes)
 *
 * Everything in `wrapped` is hostile: any failure is IHSM_ERR_BAD_INPUT,
 * with no hint which step failed (no padding oracle), and every clear
 * intermediate is in the secure heap and cleansed.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rsa.h>

#include "crypto_internal.h"

#define KEK_LEN 32

/* RSA-OAEP decrypt of the key-encryption key into kek[KEK_LEN]. */
static int oaep_unwrap_kek(EVP_PKEY *import_key, const uint8_t *in, size_t inlen,
                           uint8_t kek[KEK_LEN])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(ihsm_crypto_libctx(), import_key, NULL);
    const EVP_MD *sha256 = ihsm_crypto_md(IHSM_MD_SHA256);
    uint8_t *buf = OPENSSL_secure_malloc(inlen);
    size_t outlen = inlen;
    int ok = 0;

    if (ctx != NULL && buf != NULL && EVP_PKEY_decrypt_init(ctx) > 0
        && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0
        && EVP_PKEY_CTX_set_rsa_oaep_md(ctx, sha256) > 0
        && EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, sha256) > 0
        && EVP_PKEY_decrypt(ctx, buf, &outlen, in, inlen) > 0
        && outlen == KEK_LEN) {
        memcpy(kek, buf, KEK_LEN);
        ok = 1;
    }
    OPENSSL_secure_clear_free(buf, inlen);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* RFC 5649 unwrap into a fresh secure buffer *out of *outlen bytes. */
static int aes_unwrap_pad(const uint8_t kek[KEK_LEN], const uint8_t *in, size_t inlen,
                          uint8_t **out, size_t *outlen)
{
    const EVP_CIPHER *wrap = ihsm_crypto_cipher("AES-256-WRAP-PAD");
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t *buf = OPENSSL_secure_malloc(inlen);
    int n = 0, fin = 0, ok = 0;

    if (ctx != NULL && buf != NULL && wrap != NULL) {
        EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
        ok = EVP_DecryptInit_ex2(ctx, wrap, kek, NULL, NULL)
             && EVP_DecryptUpdate(ctx, buf, &n, in, (int)inlen)
             && EVP_DecryptFinal_ex(ctx, buf + n, &fin)
             && n > 0 && (size_t)n + (size_t)fin <= inlen;
    }
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        OPENSSL_secure_clear_free(buf, inlen);
        return 0;
    }
    /* keep the allocation size for the clear-free: copy out exactly */
    *outlen = (size_t)n + (size_t)fin;
    if ((*out = OPENSSL_secure_malloc(*outlen)) != NULL)
        memcpy(*out, buf, *outlen);
    OPENSSL_secure_clear_free(buf, inlen);
    return *out != NULL;
}

int ihsm_key_import(const ihsm_key *import_key, uint32_t type, uint32_t bits,
                    uint32_t usage, const uint8_t *label, size_t label_len,
                    const uint8_t *wrapped, size_t wrapped_len, ihsm_key **out)
{
    uint8_t *kek = NULL, *der = NULL;
    size_t modlen, der_len = 0;
    ihsm_key *k = NULL;
    int st;

    *out = NULL;
    if (ihsm_crypto_failed())
        return IHSM_ERR_DEVICE_FAILED;
    if ((st = ihsm_key_check_params(type, bits, &usage, label_len, 0)) != IHSM_OK)
        return st;
    if (label_len != 0 && label == NULL)
        return IHSM_ERR_BAD_INPUT;
    if (!ihsm_crypto_secure_room())
        return IHSM_ERR_LIMIT_KEYS;
    /* the import key is the daemon's RSA key made with usage DECRYPT */
    if (import_key == NULL || import_key->type != IHSM_KEY_RSA
        || import_key->pkey == NULL || !ihsm_key_has(import_key, IHSM_USAGE_DECRYPT))
        return IHSM_ERR_USAGE;
    modlen = (size_t)EVP_PKEY_get_size(import_key->pkey);
    /* RFC 5649 output: a multiple of 8, at least 16 */
    if (wrapped == NULL || wrapped_len < modlen + 16
        || (wrapped_len - modlen) % 8 != 0
        || wrapped_len - modlen > IHSM_MAX_KEY_DER + 16) {
        ihsm_crypto_debug("import: wrapped key of %zu bytes has the wrong length",
                          wrapped_len);
        return IHSM_ERR_BAD_INPUT;
    }

    st = IHSM_ERR_BAD_INPUT;
    if ((kek = OPENSSL_secure_malloc(KEK_LEN)) == NULL) {
        st = IHSM_ERR_CRYPTO;
        goto end;
    }
    if (!oaep_unwrap_kek(import_key->pkey, wrapped, modlen, kek)
        || !aes_unwrap_pad(kek, wrapped + modlen, wrapped_len - modlen, &der, &der_len)) {
        ihsm_crypto_debug("import: the wrapped key does not unwrap with the import key");
        goto end;
    }
    if ((k = ihsm_key_new(type, bits, usage, label, label_len)) == NULL) {
        st = IHSM_ERR_CRYPTO;
        goto end;
    }
    if (ihsm_key_import_private(k, der, der_len) != IHSM_OK) {
        ihsm_crypto_debug("import: the unwrapped key is not a type %u key of %u bits",
                          type, bits);
        goto end;
    }
    /* a client's inconsistent key is its own bad input, not a device fault,
     * so unlike generation this does not fail the device */
    if (k->pkey != NULL && ihsm_key_pct(k) != IHSM_OK) {
        ihsm_crypto_debug("import: pairwise consistency test failed");
        goto end;
    }
    ihsm_crypto_debug("imported key type %u bits %u usage 0x%x", k->type, k->bits,
                      k->usage);
    *out = k;
    k = NULL;
    st = IHSM_OK;
end:
    if (st != IHSM_OK)
        ihsm_crypto_drop_errors("import");
    OPENSSL_secure_clear_free(kek, KEK_LEN);
    OPENSSL_secure_clear_free(der, der_len);
    ihsm_key_free(k);
    return st;
}
