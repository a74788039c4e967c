/*
 * Pairwise consistency tests (FIPS 140-3 conditional self-tests): every key
 * pair the device generates or imports is exercised once for each usage it
 * has, before anyone gets a handle to it.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rsa.h>

#include "crypto_internal.h"

static int pct_sign(const ihsm_key *k)
{
    static const uint8_t msg[32] = "ihsm pairwise consistency test.";
    ihsm_sig_params sp = {0, IHSM_MD_SHA256, 0, IHSM_PSS_SALT_DIGEST};
    uint8_t sig[IHSM_MAX_SIG];
    size_t siglen = sizeof(sig);
    int st;

    switch (k->type) {
    case IHSM_KEY_RSA:
        sp.scheme = IHSM_SIG_RSA_PKCS1;
        break;
    case IHSM_KEY_ED25519:
        sp.scheme = IHSM_SIG_ED25519;
        sp.md = IHSM_MD_NONE;
        break;
    default:
        sp.scheme = IHSM_SIG_ECDSA; /* msg stands in for a SHA-256 digest */
        break;
    }
    st = ihsm_pkey_sign(k->pkey, k->type, &sp, msg, sizeof(msg), sig, &siglen);
    if (st == IHSM_OK)
        st = ihsm_pkey_verify(k->pkey, k->type, &sp, msg, sizeof(msg), sig, siglen);
    return st;
}

/* k's secret with a fresh ephemeral key's public part must equal the
 * ephemeral's secret with k's public part. */
static int pct_derive(const ihsm_key *k)
{
    uint8_t s1[64], s2[64];
    size_t l1 = sizeof(s1), l2 = sizeof(s2);
    EVP_PKEY *eph;
    int st;

    if (k->type == IHSM_KEY_X25519)
        eph = EVP_PKEY_Q_keygen(ihsm_crypto_libctx(), NULL, "X25519");
    else
        eph = EVP_PKEY_Q_keygen(ihsm_crypto_libctx(), NULL, "EC",
                                k->type == IHSM_KEY_EC_P256 ? "P-256" : "P-384");
    if (eph == NULL)
        return IHSM_ERR_CRYPTO;
    st = ihsm_pkey_derive(k->pkey, eph, s1, &l1);
    if (st == IHSM_OK)
        st = ihsm_pkey_derive(eph, k->pkey, s2, &l2);
    if (st == IHSM_OK && (l1 != l2 || CRYPTO_memcmp(s1, s2, l1) != 0))
        st = IHSM_ERR_CRYPTO;
    OPENSSL_cleanse(s1, sizeof(s1));
    OPENSSL_cleanse(s2, sizeof(s2));
    EVP_PKEY_free(eph);
    return st;
}

/* RSA keys that decrypt (the import key): OAEP round trip. */
static int pct_rsa_oaep(const ihsm_key *k)
{
    OSSL_LIB_CTX *lc = ihsm_crypto_libctx();
    const EVP_MD *sha256 = ihsm_crypto_md(IHSM_MD_SHA256);
    uint8_t pt[32], ct[IHSM_MAX_SIG], back[IHSM_MAX_SIG];
    size_t ctlen = sizeof(ct), backlen = sizeof(back);
    EVP_PKEY_CTX *e = EVP_PKEY_CTX_new_from_pkey(lc, k->pkey, NULL);
    EVP_PKEY_CTX *d = EVP_PKEY_CTX_new_from_pkey(lc, k->pkey, NULL);
    int ok;

    ok = ihsm_crypto_rand(pt, sizeof(pt)) == IHSM_OK && e != NULL && d != NULL
         && EVP_PKEY_encrypt_init(e) > 0
         && EVP_PKEY_CTX_set_rsa_padding(e, RSA_PKCS1_OAEP_PADDING) > 0
         && EVP_PKEY_CTX_set_rsa_oaep_md(e, sha256) > 0
         && EVP_PKEY_encrypt(e, ct, &ctlen, pt, sizeof(pt)) > 0
         && EVP_PKEY_decrypt_init(d) > 0
         && EVP_PKEY_CTX_set_rsa_padding(d, RSA_PKCS1_OAEP_PADDING) > 0
         && EVP_PKEY_CTX_set_rsa_oaep_md(d, sha256) > 0
         && EVP_PKEY_decrypt(d, back, &backlen, ct, ctlen) > 0
         && backlen == sizeof(pt) && CRYPTO_memcmp(back, pt, sizeof(pt)) == 0
         /* and the ciphertext is not the plaintext */
         && (ctlen != sizeof(pt) || memcmp(ct, pt, sizeof(pt)) != 0);
    OPENSSL_cleanse(pt, sizeof(pt));
    OPENSSL_cleanse(back, sizeof(back));
    EVP_PKEY_CTX_free(e);
    EVP_PKEY_CTX_free(d);
    return ok ? IHSM_OK : IHSM_ERR_CRYPTO;
}

int ihsm_key_pct(const ihsm_key *k)
{
    int st = IHSM_OK;

    if (k->pkey == NULL)
        return IHSM_OK; /* AES: no pair to test */
    if (ihsm_key_has(k, IHSM_USAGE_SIGN))
        st = pct_sign(k);
    if (st == IHSM_OK && ihsm_key_has(k, IHSM_USAGE_DERIVE))
        st = pct_derive(k);
    if (st == IHSM_OK && k->type == IHSM_KEY_RSA
        && (k->usage & (IHSM_USAGE_ENCRYPT | IHSM_USAGE_DECRYPT)) != 0)
        st = pct_rsa_oaep(k);
    if (st != IHSM_OK) {
        ihsm_crypto_drop_errors("pairwise consistency test");
        ihsm_crypto_debug("pairwise consistency test failed: type %u bits %u",
                          k->type, k->bits);
    }
    return st;
}
