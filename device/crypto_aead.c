/*
 * AEAD_SEAL / AEAD_OPEN: AES-GCM (128 or 256 from the key) and
 * ChaCha20-Poly1305. There is no separate ChaCha key type: a 256-bit key of
 * type AES is the device's generic 32-byte secret key and serves both.
 *
 * Limits: GCM IV 1..128 bytes (12 recommended; 128 is OpenSSL's maximum),
 * GCM tag 12..16 bytes (SP 800-38D's 4- and 8-byte tags need application
 * limits the device cannot enforce); ChaCha20-Poly1305 IV 12, tag 16.
 * Open writes nothing unless the tag verifies.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "crypto_internal.h"

#define MAX_IV 128

static int check_lengths(uint32_t alg, size_t key_len, size_t iv_len,
                         size_t tag_len, const EVP_CIPHER **cipher)
{
    switch (alg) {
    case IHSM_AEAD_AES_GCM:
        if (key_len != 16 && key_len != 32)
            return IHSM_ERR_UNSUPPORTED;
        if (iv_len < 1 || iv_len > MAX_IV || tag_len < 12 || tag_len > 16)
            return IHSM_ERR_BAD_INPUT;
        *cipher = ihsm_crypto_cipher(key_len == 16 ? "AES-128-GCM" : "AES-256-GCM");
        break;
    case IHSM_AEAD_CHACHA20_POLY1305:
        if (key_len != 32)
            return IHSM_ERR_UNSUPPORTED;
        if (iv_len != 12 || tag_len != 16)
            return IHSM_ERR_BAD_INPUT;
        *cipher = ihsm_crypto_cipher("ChaCha20-Poly1305");
        break;
    default:
        return IHSM_ERR_UNSUPPORTED;
    }
    return *cipher != NULL ? IHSM_OK : IHSM_ERR_CRYPTO;
}

int ihsm_aead_raw(uint32_t alg, int seal, const uint8_t *key, size_t key_len,
                  const uint8_t *iv, size_t iv_len, const uint8_t *aad,
                  size_t aad_len, const uint8_t *text, size_t text_len,
                  size_t tag_len, uint8_t *out)
{
    const EVP_CIPHER *cipher = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    size_t n;
    int len, st;

    if ((st = check_lengths(alg, key_len, iv_len, tag_len, &cipher)) != IHSM_OK)
        return st;
    if (!seal && text_len < tag_len)
        return IHSM_ERR_BAD_INPUT;
    if (text_len > INT32_MAX || aad_len > INT32_MAX)
        return IHSM_ERR_BAD_INPUT;
    n = seal ? text_len : text_len - tag_len; /* bytes through the cipher */

    st = IHSM_ERR_CRYPTO;
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL
        || !EVP_CipherInit_ex2(ctx, cipher, NULL, NULL, seal, NULL)
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)iv_len, NULL) <= 0
        || !EVP_CipherInit_ex2(ctx, NULL, key, iv, seal, NULL))
        goto end;
    if (aad_len != 0 && !EVP_CipherUpdate(ctx, NULL, &len, aad, (int)aad_len))
        goto end;
    if (n != 0 && !EVP_CipherUpdate(ctx, out, &len, text, (int)n))
        goto end;
    if (seal) {
        if (!EVP_CipherFinal_ex(ctx, out + n, &len)
            || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, (int)tag_len, out + n) <= 0)
            goto end;
    } else {
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, (int)tag_len,
                                (void *)(text + n)) <= 0)
            goto end;
        if (!EVP_CipherFinal_ex(ctx, out + n, &len)) {
            OPENSSL_cleanse(out, n); /* unauthenticated plaintext */
            st = IHSM_ERR_AEAD_TAG;
            goto end;
        }
    }
    st = IHSM_OK;
end:
    if (st != IHSM_OK)
        ihsm_crypto_drop_errors(seal ? "aead seal" : "aead open");
    EVP_CIPHER_CTX_free(ctx); /* cleanses the key schedule */
    return st;
}

int ihsm_op_aead(const ihsm_key *k, int seal, ihsm_rd *args, ihsm_wr *out)
{
    const uint8_t *iv, *aad, *text;
    size_t iv_len, aad_len, text_len, out_len, start, mark;
    uint32_t alg, tag_len;
    uint8_t *dst;
    int st;

    if (ihsm_crypto_failed())
        return IHSM_ERR_DEVICE_FAILED;
    alg = ihsm_rd_u32(args);
    iv = ihsm_rd_bytes(args, &iv_len, IHSM_MAX_PAYLOAD);
    aad = ihsm_rd_bytes(args, &aad_len, IHSM_MAX_PAYLOAD);
    text = ihsm_rd_bytes(args, &text_len, IHSM_MAX_PAYLOAD);
    tag_len = ihsm_rd_u32(args);
    if (ihsm_rd_end(args) != 0)
        return IHSM_ERR_MALFORMED;
    if (!ihsm_key_has(k, seal ? IHSM_USAGE_ENCRYPT : IHSM_USAGE_DECRYPT))
        return IHSM_ERR_USAGE;
    if (k->type != IHSM_KEY_AES || k->secret == NULL)
        return IHSM_ERR_UNSUPPORTED;
    if (tag_len > 16 || (!seal && text_len < tag_len))
        return IHSM_ERR_BAD_INPUT;
    out_len = seal ? text_len + tag_len : text_len - tag_len;

    start = out->len;
    mark = ihsm_wr_bytes_begin(out);
    if ((dst = ihsm_wr_reserve(out, out_len)) == NULL)
        return ihsm_crypto_wr_status(out);
    st = ihsm_aead_raw(alg, seal, k->secret, k->secret_len, iv, iv_len, aad,
                       aad_len, text, text_len, tag_len, dst);
    ihsm_crypto_debug("aead %s alg %u text %zu: %s", seal ? "seal" : "open", alg,
                      text_len, ihsm_status_name(st));
    if (st != IHSM_OK) {
        /* nothing of a failed operation stays in the answer */
        OPENSSL_cleanse(out->p + start, out->len - start);
        out->len = start;
        return st;
    }
    ihsm_wr_bytes_end(out, mark);
    return ihsm_crypto_wr_status(out);
}
