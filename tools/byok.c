/*
 * BYOK wrapping on the client: RSA-OAEP of a one-time AES-256 key, then
 * AES key wrap with padding of the secret. Every buffer that held the kek
 * or the secret is cleansed before it is freed.
 */
#include "byok.h"

#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include "ihsm_proto.h"

static int oaep_encrypt(EVP_PKEY *pub, const uint8_t *in, size_t in_len,
                        uint8_t **out, size_t *out_len)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    int ok = 0;

    *out = NULL;
    if (pctx == NULL || EVP_PKEY_encrypt_init(pctx) <= 0
        || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0
        || EVP_PKEY_CTX_set_rsa_oaep_md_name(pctx, "SHA256", NULL) <= 0
        || EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) <= 0
        || EVP_PKEY_encrypt(pctx, NULL, out_len, in, in_len) <= 0)
        goto done;
    *out = OPENSSL_malloc(*out_len);
    if (*out == NULL || EVP_PKEY_encrypt(pctx, *out, out_len, in, in_len) <= 0)
        goto done;
    ok = 1;
done:
    if (!ok) {
        OPENSSL_free(*out);
        *out = NULL;
    }
    EVP_PKEY_CTX_free(pctx);
    return ok ? 0 : -1;
}

/* RFC 5649 through OpenSSL's "id-aes256-wrap-pad"; out has room for
 * ceil8(in_len) + 8 bytes. */
static int kwp_wrap(const uint8_t kek[IHSM_BYOK_KEK_LEN], const uint8_t *in, size_t in_len,
                    uint8_t *out, size_t *out_len)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, "id-aes256-wrap-pad", NULL);
    int n = 0, m = 0, ok = 0;

    if (ctx == NULL || c == NULL || in_len == 0 || in_len > INT32_MAX - 16)
        goto done;
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_EncryptInit_ex2(ctx, c, kek, NULL, NULL) != 1
        || EVP_EncryptUpdate(ctx, out, &n, in, (int)in_len) != 1
        || EVP_EncryptFinal_ex(ctx, out + n, &m) != 1)
        goto done;
    *out_len = (size_t)n + (size_t)m;
    ok = 1;
done:
    EVP_CIPHER_free(c);
    EVP_CIPHER_CTX_free(ctx); /* cleanses the key schedule */
    return ok ? 0 : -1;
}

int ihsm_byok_wrap_with(EVP_PKEY *import_pub, const uint8_t kek[IHSM_BYOK_KEK_LEN],
                        const uint8_t *secret, size_t secret_len,
                        uint8_t **out, size_t *out_len)
{
    uint8_t *enc = NULL, *buf = NULL;
    size_t enc_len = 0, wrap_len = 0, cap;

    *out = NULL;
    *out_len = 0;
    if (import_pub == NULL || EVP_PKEY_get_base_id(import_pub) != EVP_PKEY_RSA
        || secret_len == 0 || secret_len > IHSM_MAX_PAYLOAD)
        return -1;
    if (oaep_encrypt(import_pub, kek, IHSM_BYOK_KEK_LEN, &enc, &enc_len) != 0)
        return -1;
    cap = enc_len + ((secret_len + 7) & ~(size_t)7) + 8;
    buf = OPENSSL_malloc(cap);
    if (buf == NULL) {
        OPENSSL_free(enc);
        return -1;
    }
    memcpy(buf, enc, enc_len);
    OPENSSL_free(enc);
    if (kwp_wrap(kek, secret, secret_len, buf + enc_len, &wrap_len) != 0
        || enc_len + wrap_len > cap) {
        OPENSSL_clear_free(buf, cap);
        return -1;
    }
    *out = buf;
    *out_len = enc_len + wrap_len;
    return 0;
}

int ihsm_byok_wrap(EVP_PKEY *import_pub, const uint8_t *secret, size_t secret_len,
                   uint8_t **out, size_t *out_len)
{
    uint8_t kek[IHSM_BYOK_KEK_LEN];
    int rc;

    if (RAND_priv_bytes(kek, sizeof(kek)) != 1)
        return -1;
    rc = ihsm_byok_wrap_with(import_pub, kek, secret, secret_len, out, out_len);
    OPENSSL_cleanse(kek, sizeof(kek));
    return rc;
}

int ihsm_byok_pkcs8(EVP_PKEY *pk, uint8_t **der, size_t *len)
{
    OSSL_ENCODER_CTX *ectx;
    unsigned char *data = NULL;
    size_t n = 0;
    int ok;

    *der = NULL;
    *len = 0;
    ectx = OSSL_ENCODER_CTX_new_for_pkey(pk, EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", NULL);
    if (ectx == NULL)
        return -1;
    ok = OSSL_ENCODER_CTX_get_num_encoders(ectx) > 0 && OSSL_ENCODER_to_data(ectx, &data, &n) == 1;
    OSSL_ENCODER_CTX_free(ectx);
    if (!ok) {
        if (data != NULL)
            OPENSSL_clear_free(data, n);
        return -1;
    }
    *der = data;
    *len = n;
    return 0;
}

int ihsm_byok_key_type(EVP_PKEY *pk, uint32_t *type, uint32_t *bits, char *why, size_t why_len)
{
    char group[64] = "";
    int b;

    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA:
        b = EVP_PKEY_get_bits(pk);
        if (b != 2048 && b != 3072 && b != 4096) {
            snprintf(why, why_len, "an RSA key of %d bits: the device holds RSA keys of "
                     "2048, 3072 or 4096 bits", b);
            return -1;
        }
        *type = IHSM_KEY_RSA;
        *bits = (uint32_t)b;
        return 0;
    case EVP_PKEY_EC:
        if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                            sizeof(group), NULL)) {
            snprintf(why, why_len, "an EC key with explicit parameters: use a named "
                     "curve (P-256 or P-384)");
            return -1;
        }
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
            *type = IHSM_KEY_EC_P256;
            *bits = 256;
        } else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            *type = IHSM_KEY_EC_P384;
            *bits = 384;
        } else {
            snprintf(why, why_len, "an EC key on curve %s: the device holds P-256 and "
                     "P-384 keys", group);
            return -1;
        }
        return 0;
    case EVP_PKEY_ED25519:
        *type = IHSM_KEY_ED25519;
        *bits = 256;
        return 0;
    case EVP_PKEY_X25519:
        *type = IHSM_KEY_X25519;
        *bits = 256;
        return 0;
    case EVP_PKEY_RSA_PSS:
        snprintf(why, why_len, "an RSA-PSS restricted key (id-RSASSA-PSS): import a plain "
                 "rsaEncryption key and sign with --scheme pss");
        return -1;
    default:
        snprintf(why, why_len, "a %s key: the device holds RSA, EC P-256/P-384, Ed25519, "
                 "X25519 and AES keys", EVP_PKEY_get0_type_name(pk) != NULL
                 ? EVP_PKEY_get0_type_name(pk) : "unknown");
        return -1;
    }
}
