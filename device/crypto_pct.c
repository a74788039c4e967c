/*
 * Pairwise consistency tests (FIPS 140-3 conditional self-tests): every key
 * pair the device generates or imports is exercised once for each usage it
 * has, before anyone gets a handle to it.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
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

/*
 * A key agreement key: the public key recomputed from the private key must
 * be the one the key carries (SP 800-56A rev. 3, 5.6.2.1.4: the owner's
 * assurance of pair-wise consistency). One fixed-base multiplication, where
 * a trial agreement with a fresh key costs three scalar multiplications: it
 * was three quarters of generating a TLS ephemeral key, one per handshake.
 */
static int recompute_x25519(const ihsm_key *k, uint8_t *got, size_t cap, size_t *glen)
{
    uint8_t priv[32];
    size_t plen = sizeof(priv);
    EVP_PKEY *re = NULL;
    int ok = EVP_PKEY_get_raw_private_key(k->pkey, priv, &plen) && plen == sizeof(priv)
             && (re = EVP_PKEY_new_raw_private_key_ex(ihsm_crypto_libctx(), "X25519", NULL,
                                                      priv, plen)) != NULL
             && EVP_PKEY_get_octet_string_param(re, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, got,
                                                cap, glen);

    OPENSSL_cleanse(priv, sizeof(priv));
    EVP_PKEY_free(re); /* cleanses its copy */
    return ok;
}

static int recompute_ec(const ihsm_key *k, uint8_t *got, size_t cap, size_t *glen)
{
    OSSL_LIB_CTX *lc = ihsm_crypto_libctx();
    EC_GROUP *g = EC_GROUP_new_by_curve_name_ex(lc, NULL, k->type == IHSM_KEY_EC_P256
                                                              ? NID_X9_62_prime256v1
                                                              : NID_secp384r1);
    BN_CTX *bn = BN_CTX_secure_new_ex(lc);
    BIGNUM *d = BN_secure_new();
    EC_POINT *q = g != NULL ? EC_POINT_new(g) : NULL;
    int ok = q != NULL && bn != NULL && d != NULL
             && EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d)
             && EC_POINT_mul(g, q, d, NULL, NULL, bn)
             && (*glen = EC_POINT_point2oct(g, q, POINT_CONVERSION_UNCOMPRESSED, got, cap,
                                            bn)) > 0;

    BN_clear_free(d);
    EC_POINT_free(q);
    BN_CTX_free(bn);
    EC_GROUP_free(g);
    return ok;
}

static int pct_derive(const ihsm_key *k)
{
    uint8_t want[97], got[97];
    size_t wlen = 0, glen = 0;
    int ok;

    if (!EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, want,
                                         sizeof(want), &wlen))
        return IHSM_ERR_CRYPTO;
    if (k->type == IHSM_KEY_X25519)
        ok = recompute_x25519(k, got, sizeof(got), &glen);
    else if (k->type == IHSM_KEY_EC_P256 || k->type == IHSM_KEY_EC_P384)
        ok = recompute_ec(k, got, sizeof(got), &glen);
    else
        ok = 0;
    ok = ok && glen == wlen && CRYPTO_memcmp(got, want, wlen) == 0;
    return ok ? IHSM_OK : IHSM_ERR_CRYPTO;
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
