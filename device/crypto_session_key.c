/*
 * Session keys: an AES key the client already holds in clear (a TLS record
 * key that libssl derived) loaded into device memory for the life of a
 * session (KEY_LOAD_SESSION), so AEAD_SEAL / AEAD_OPEN can run in the
 * device. Nothing secret of the device is involved: the key came from the
 * client and goes nowhere but the secure heap.
 */
#include <openssl/crypto.h>

#include "crypto_internal.h"

int ihsm_key_from_secret(uint32_t type, uint32_t bits, const uint8_t *raw,
                         size_t len, ihsm_key **out)
{
    uint32_t usage = IHSM_USAGE_ENCRYPT | IHSM_USAGE_DECRYPT;
    ihsm_key *k;
    int st;

    *out = NULL;
    if (ihsm_crypto_failed())
        return IHSM_ERR_DEVICE_FAILED;
    if (type != IHSM_KEY_AES)
        return IHSM_ERR_UNSUPPORTED;
    if ((st = ihsm_key_check_params(type, bits, &usage, 0, 1)) != IHSM_OK)
        return st;
    if (raw == NULL || len * 8 != bits)
        return IHSM_ERR_BAD_INPUT;
    /* a full secure heap refuses new keys rather than failing later */
    if (!ihsm_crypto_secure_room())
        return IHSM_ERR_LIMIT_KEYS;
    if ((k = ihsm_key_new(type, bits, usage, NULL, 0)) == NULL)
        return IHSM_ERR_CRYPTO;
    if ((st = ihsm_key_adopt_secret(k, raw, len)) != IHSM_OK) {
        ihsm_key_free(k);
        return st;
    }
    *out = k;
    return IHSM_OK;
}
